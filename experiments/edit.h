/* edit.h — `locus edit` (the paper's text-editing benchmark, with a Prompt-to-Prompt baseline) and `locus detox`
 * (toxic-text prevention, with negative-prompt and prompt-swap baselines); see edit.c. */
#ifndef LOCUS_EDIT_H
#define LOCUS_EDIT_H

int locus_cmd_edit(int argc, char **argv);
int locus_cmd_detox(int argc, char **argv);

#endif
