/* generate.h — `locus generate` and `locus info --model`: text -> image on a pipeline folder. */
#ifndef LOCUS_GENERATE_H
#define LOCUS_GENERATE_H

int locus_cmd_generate(int argc, char **argv);

#endif
