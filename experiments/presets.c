/* presets.c — `--preset paper-sd3|paper-sdxl|paper-if`: the settings of the paper's experiments (Staniszewski
 * et al., ICLR 2025; the authors' src/attention_localization_*.py and src/edit_*_distr.py), and the paper's
 * layer numbers ("#N" in --layers).
 *
 * A preset sets defaults; options given on the command line override them (whatever their order).
 *
 *   preset      steps  CFG  edit layers (paper numbers)                             start index  paper t_s
 *   paper-sd3   28     7.0  transformer_blocks.10 (#10)                             2            26
 *   paper-sdxl  50     5.0  up_blocks.0.attentions.2.transformer_blocks.{1,2,3}.attn2 4          46
 *                           (#55, #56, #57)
 *   paper-if    50     7.0  #17                                                     2            48
 * and for all three: both CFG halves patched from B's run (the authors cache the whole CFG batch of B's run),
 * the uint8-wrap MSE (so PSNR from it) and truncating quantization, as the authors' scripts compute them.
 *
 * Start step: locus counts the denoiser evaluations 0..steps-1 and patches evaluations >= the start index;
 * the paper states the same point as a timestep index counted down, t_s = steps - start index (SD3: 28 - 2
 * = 26).  `locus localize` with a preset sweeps every text layer alone from step 0 (the authors' localization
 * scripts); `locus edit` and `locus detox` patch the preset's layers from its start index.
 *
 * Paper layer numbers: the authors number the attention layers that read the text, 0-based, in forward order
 * (UNet: down blocks, mid block, up blocks, each transformer block's attn2; MM-DiT: the joint blocks) — the
 * denoiser's text_index (`locus layers` prints it in the "paper" column).  SDXL's #55-#57 are
 * up_blocks.0.attentions.2.transformer_blocks.1-3.attn2 (24 down + 10 mid + 20 + 1 = 55).
 */
#include "presets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/strbuf.h"

static const lz_preset presets[] = {
    {"paper-sd3", 28, 7.0f, 2, "transformer_blocks.10"},
    {"paper-sdxl", 50, 5.0f, 4,
     "up_blocks.0.attentions.2.transformer_blocks.1.attn2,up_blocks.0.attentions.2.transformer_blocks.2.attn2,"
     "up_blocks.0.attentions.2.transformer_blocks.3.attn2"},
    {"paper-if", 50, 7.0f, 2, "#17"},
};

const lz_preset *lz_preset_find(const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        if (!strcmp(presets[i].name, name)) return &presets[i];
    return NULL;
}

char *lz_paper_layers(const locus_denoiser *den, const char *spec, char *err, size_t errlen) {
    locus_layer_info *L = NULL;
    int n = -1;
    locus_strbuf b = {0};
    for (const char *s = spec; *s;) {
        size_t k = strcspn(s, ",+");
        if (*s == '#') {
            char num[32];
            int idx = -1, used = 0;
            snprintf(num, sizeof num, "%.*s", (int)(k - 1 < 31 ? k - 1 : 31), s + 1);
            if (sscanf(num, "%d%n", &idx, &used) != 1 || num[used] || idx < 0) {
                snprintf(err, errlen, "%.*s: expected #N, a paper layer number", (int)k, s);
                goto fail;
            }
            if (n < 0 && (n = locus_denoiser_layers(den, &L)) < 0) { snprintf(err, errlen, "%s", locus_errmsg()); goto fail; }
            int hit = -1;
            for (int i = 0; i < n; i++)
                if (L[i].text_index == idx) hit = i;
            if (hit < 0) {
                snprintf(err, errlen, "#%d: this model has %d text-reading attention layers (#0-#%d)", idx, den->ntext_layers, den->ntext_layers - 1);
                goto fail;
            }
            locus_sb_puts(&b, L[hit].site);
        } else locus_sb_putn(&b, s, k);
        s += k;
        if (*s) locus_sb_putn(&b, s++, 1);
    }
    free(L);
    if (locus_sb_status(&b)) { snprintf(err, errlen, "out of memory"); locus_sb_free(&b); return NULL; }
    return locus_sb_take(&b);
fail:
    free(L);
    locus_sb_free(&b);
    return NULL;
}
