/* patch.c — cross-attention injection (see patch.h). */
#include "patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

locus_status locus_injection_resolve(locus_injection *inj, const locus_unet *u, const char *spec) {
    static char all[LOCUS_MAX_PATCH_LAYERS][128];
    int nall = locus_unet_cross_layers(u, all, LOCUS_MAX_PATCH_LAYERS);
    inj->nlayers = 0;
    char *copy = strdup(spec), *save = NULL;
    locus_status st = LOCUS_OK;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        size_t tl = strlen(tok);
        while (tl && tok[tl - 1] == ' ') tok[--tl] = 0;
        int hits = 0;
        for (int i = 0; i < nall; i++) {
            size_t n = strlen(tok);
            if (strncmp(all[i], tok, n) || (all[i][n] && all[i][n] != '.')) continue;
            hits++;
            int dup = 0;
            for (int j = 0; j < inj->nlayers; j++) dup |= !strcmp(inj->layers[j], all[i]);
            if (!dup && inj->nlayers < LOCUS_MAX_PATCH_LAYERS) snprintf(inj->layers[inj->nlayers++], 128, "%s", all[i]);
        }
        if (!hits) {
            st = locus_fail(LOCUS_E_ARG, "--patch-layers: '%s' is not a cross-attention layer of this UNet (e.g. %s; see locus info --model)", tok,
                            nall ? all[0] : "none");
            break;
        }
    }
    free(copy);
    if (!st && !inj->nlayers) st = locus_fail(LOCUS_E_ARG, "--patch-layers: no layers given");
    return st;
}

const float *locus_injection_ctx(void *arg, const char *name, int step) {
    const locus_injection *inj = arg;
    if (step < inj->start_step) return NULL;
    for (int i = 0; i < inj->nlayers; i++)
        if (!strcmp(inj->layers[i], name)) return inj->ctx;
    return NULL;
}
