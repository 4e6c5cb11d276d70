/* presets.h — the paper's experiment settings (`--preset`) and its layer numbers ("#N"); see presets.c. */
#ifndef LOCUS_PRESETS_H
#define LOCUS_PRESETS_H

#include <stddef.h>

#include "../models/denoiser.h"

typedef struct {
    const char *name;
    int steps;
    float guidance;
    int start_step;         /* start index of patching in `locus edit` / `locus detox` (t_s = steps - start) */
    const char *edit_layers; /* the layers patched together in edit / detox (paths or #N, comma-separated) */
} lz_preset;
/* Every preset also means: both CFG halves, uint8-wrap MSE, truncating quantization. */

/* The preset called name, or NULL. */
const lz_preset *lz_preset_find(const char *name);

/* spec with every "#N" entry (entries separated by ',' or '+') replaced by the site of the layer whose
 * text_index is N (the paper's numbering); other entries kept.  malloc'd; NULL with a message in err for a bad
 * or out-of-range number. */
char *lz_paper_layers(const locus_denoiser *den, const char *spec, char *err, size_t errlen);

#endif
