/* layers.h — `locus layers`: attention layers, their text parameters and share (the paper's Table 1). */
#ifndef LOCUS_LAYERS_H
#define LOCUS_LAYERS_H
int locus_cmd_layers(int argc, char **argv);
#endif
