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

locus_status locus_kvpatch_init(locus_kvpatch *kv, const locus_mmdit *m, const char *spec) {
    memset(kv, 0, sizeof *kv);
    char *copy = strdup(spec), *save = NULL;
    locus_status st = LOCUS_OK;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        int idx = -1, used = 0;
        if (sscanf(tok, "transformer_blocks.%d%n", &idx, &used) != 1 || (tok[used] && strcmp(tok + used, ".attn")) || idx < 0 || idx >= m->nlayers) {
            st = locus_fail(LOCUS_E_ARG, "--patch-layers: '%s' is not a joint block of this transformer (transformer_blocks.0 .. transformer_blocks.%d)", tok,
                            m->nlayers - 1);
            break;
        }
        int dup = 0;
        for (int j = 0; j < kv->nblocks; j++) dup |= kv->blocks[j] == idx;
        if (dup || kv->nblocks == LOCUS_MAX_KV_BLOCKS) continue;
        kv->blocks[kv->nblocks] = idx;
        snprintf(kv->kname[kv->nblocks], 96, m->blocks[idx].nak ? "transformer_blocks.%d.attn.norm_added_k" : "transformer_blocks.%d.attn.add_k_proj", idx);
        snprintf(kv->vname[kv->nblocks], 96, "transformer_blocks.%d.attn.add_v_proj", idx);
        kv->nblocks++;
    }
    free(copy);
    if (!st && !kv->nblocks) st = locus_fail(LOCUS_E_ARG, "--patch-layers: no blocks given");
    if (!st) {
        kv->k = calloc((size_t)kv->nblocks * LOCUS_MAX_KV_STEPS, sizeof(float *));
        kv->v = calloc((size_t)kv->nblocks * LOCUS_MAX_KV_STEPS, sizeof(float *));
        if (!kv->k || !kv->v) st = locus_fail(LOCUS_E_NOMEM, "out of memory for the K/V cache");
    }
    return st;
}

void locus_kvpatch_free(locus_kvpatch *kv) {
    for (size_t i = 0; kv->k && i < (size_t)kv->nblocks * LOCUS_MAX_KV_STEPS; i++) { free(kv->k[i]); free(kv->v[i]); }
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
}

void locus_kvpatch_begin(locus_kvpatch *kv, int mode) {
    kv->mode = mode;
    memset(kv->kcalls, 0, sizeof kv->kcalls);
}

void locus_kvpatch_hook(void *ctx, const char *name, float *x, int ndim, const int64_t *shape) {
    locus_kvpatch *kv = ctx;
    for (int j = 0; j < kv->nblocks; j++) {
        int isk = !strcmp(name, kv->kname[j]), isv = !isk && !strcmp(name, kv->vname[j]);
        if (!isk && !isv) continue;
        int step = isk ? kv->kcalls[j]++ : kv->kcalls[j] - 1;
        if (step < 0 || step >= LOCUS_MAX_KV_STEPS) return;
        size_t n = (size_t)shape[0] * shape[1] * shape[2];
        float **slot = isk ? &kv->k[(size_t)j * LOCUS_MAX_KV_STEPS + step] : &kv->v[(size_t)j * LOCUS_MAX_KV_STEPS + step];
        if (kv->mode == 0) {
            if (!*slot) *slot = malloc(n * sizeof(float));
            if (*slot) memcpy(*slot, x, n * sizeof(float));
            kv->n = n;
        } else if (*slot && step >= kv->start_step && n == kv->n) {
            if (kv->mode == 2 || shape[0] < 2) memcpy(x, *slot, n * sizeof(float));
            else memcpy(x + n / 2, *slot + n / 2, n / 2 * sizeof(float)); /* batch row 1 = conditional half */
        }
        return;
    }
}
