/* localize.h — `locus localize` (the paper's layer localization sweep) and `locus merge` (join shards). */
#ifndef LOCUS_LOCALIZE_H
#define LOCUS_LOCALIZE_H

int locus_cmd_localize(int argc, char **argv);
int locus_cmd_merge(int argc, char **argv);

#endif
