/* patch.c — cross-attention injection (see patch.h). */
#include "patch.h"

#include <fnmatch.h>
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
        snprintf(kv->kname[kv->nblocks], 96, "transformer_blocks.%d.attn.add_k", idx);
        snprintf(kv->vname[kv->nblocks], 96, "transformer_blocks.%d.attn.add_v", idx);
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
        } else if (*slot && step >= kv->start_step && n == kv->n && (!kv->active || (kv->active >> j & 1))) {
            if (kv->mode == 2 || shape[0] < 2) memcpy(x, *slot, n * sizeof(float));
            else memcpy(x + n / 2, *slot + n / 2, n / 2 * sizeof(float)); /* batch row 1 = conditional half */
        }
        return;
    }
}

locus_status locus_interventions_parse(locus_interventions *v, const char *spec) {
    char *copy = strdup(spec), *save = NULL;
    locus_status st = LOCUS_OK;
    v->n = 0;
    for (char *t = strtok_r(copy, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        char *eq = strrchr(t, '=');
        if (!eq || eq == t || v->n == LOCUS_MAX_INTERVENTIONS) { st = locus_fail(LOCUS_E_ARG, "--intervene '%s': expected PATTERN=zero|scale:F|mean", t); break; }
        *eq = 0;
        size_t tl = strlen(t);
        if (tl >= 6 && !strcmp(t + tl - 6, ".probs")) {
            st = locus_fail(LOCUS_E_ARG, "--intervene '%s': attention probabilities are read-only hook points (cache them with --cache-points)", t);
            break;
        }
        locus_intervention *iv = &v->iv[v->n];
        snprintf(iv->pattern, sizeof iv->pattern, "%s", t);
        const char *op = eq + 1;
        char *end = NULL;
        iv->src = NULL;
        if (!strcmp(op, "zero")) iv->op = 0;
        else if (!strcmp(op, "mean")) iv->op = 2;
        else if (!strncmp(op, "replace:", 8) && op[8]) {
            iv->op = 3;
            iv->src = malloc(sizeof *iv->src);
            if (locus_st_open(iv->src, op + 8)) {
                char why[512];
                snprintf(why, sizeof why, "%s", locus_errmsg()); /* the message buffer is reused by locus_fail */
                free(iv->src);
                iv->src = NULL;
                st = locus_fail(LOCUS_E_IO, "--intervene replace: %s", why);
                break;
            }
        }
        else if (!strncmp(op, "scale:", 6) && (iv->factor = strtof(op + 6, &end), end && end != op + 6 && !*end)) iv->op = 1;
        else { st = locus_fail(LOCUS_E_ARG, "--intervene '%s=%s': the operation must be zero, mean, scale:F or replace:CACHE", t, op); break; }
        v->n++;
    }
    free(copy);
    if (st) locus_interventions_free(v);
    return st;
}

void locus_interventions_free(locus_interventions *v) {
    for (int i = 0; i < LOCUS_MAX_INTERVENTIONS; i++)
        if (v->iv[i].src) {
            locus_st_close(v->iv[i].src);
            free(v->iv[i].src);
            v->iv[i].src = NULL;
        }
}

void locus_interventions_hook(void *ctx, const char *name, float *x, int ndim, const int64_t *shape) {
    locus_interventions *v = ctx;
    if (v->next && v->next->fn) v->next->fn(v->next->ctx, name, x, ndim, shape);
    if (v->step < v->step_from || (v->step_to >= 0 && v->step > v->step_to) || ndim < 2) return;
    size_t nl = strlen(name);
    if (nl >= 6 && !strcmp(name + nl - 6, ".probs")) return; /* read-only */
    for (int i = 0; i < v->n; i++) {
        const locus_intervention *iv = &v->iv[i];
        if (fnmatch(iv->pattern, name, 0)) continue;
        /* view as [B, T, C] (a 2-D tensor is [B, C]) */
        int64_t B = shape[0], C = shape[ndim - 1], T = 1;
        for (int d = 1; d < ndim - 1; d++) T *= shape[d];
        int heads = v->heads > 0 ? v->heads : 1;
        if (C % heads) continue;
        int64_t hd = C / heads;
        float *rep = NULL; /* replace: the cached tensor of this hook point and step, as f32 */
        if (iv->op == 3) {
            char key[600];
            snprintf(key, sizeof key, "step%d.%s", v->step, name);
            const locus_st_tensor *t = locus_st_find(iv->src, key);
            int same = t && t->ndim == ndim;
            for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
            size_t n = (size_t)B * T * C;
            if (same) {
                rep = malloc(n * sizeof(float));
                if (locus_st_to_f32(t, rep, (int64_t)n)) { free(rep); rep = NULL; }
            }
            if (!rep) { v->missing++; return; }
        }
        for (int64_t b = 0; b < B; b++) {
            if ((v->half == 1 && b != B - 1) || (v->half == 2 && b != 0)) continue;
            for (int h = 0; h < heads; h++) {
                if (v->heads > 0 && v->head_mask_n && !(v->head_mask >> h & 1)) continue;
                float *base = x + (size_t)b * T * C + (size_t)h * hd;
                if (iv->op == 3) {
                    const float *r = rep + (size_t)b * T * C + (size_t)h * hd;
                    for (int64_t t = 0; t < T; t++) memcpy(base + (size_t)t * C, r + (size_t)t * C, (size_t)hd * sizeof(float));
                } else if (iv->op == 2) { /* mean over tokens, per channel */
                    for (int64_t c = 0; c < hd; c++) {
                        double s = 0;
                        for (int64_t t = 0; t < T; t++) s += base[(size_t)t * C + c];
                        float m = (float)(s / (double)T);
                        for (int64_t t = 0; t < T; t++) base[(size_t)t * C + c] = m;
                    }
                } else {
                    for (int64_t t = 0; t < T; t++)
                        for (int64_t c = 0; c < hd; c++) base[(size_t)t * C + c] = iv->op == 0 ? 0.0f : base[(size_t)t * C + c] * iv->factor;
                }
            }
        }
        free(rep);
        v->hits++;
        return;
    }
}
