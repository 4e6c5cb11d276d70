/* patch.c — text patching through the text-K/V override point, and interventions on hook points (see patch.h). */
#include "patch.h"

#include "../core/numparse.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

locus_status locus_textpatch_init(locus_textpatch *tp, const locus_denoiser *d, int max_steps) {
    memset(tp, 0, sizeof *tp);
    tp->nlayers = d->ntext_layers;
    tp->max_steps = max_steps;
    size_t nl = (size_t)(tp->nlayers > 0 ? tp->nlayers : 1);
    tp->record = calloc(nl, 1);
    tp->active = calloc(nl, 1);
    tp->k = calloc(nl * (size_t)max_steps, sizeof(float *));
    tp->v = calloc(nl * (size_t)max_steps, sizeof(float *));
    if (!tp->record || !tp->active || !tp->k || !tp->v) {
        locus_textpatch_free(tp);
        return locus_fail(LOCUS_E_NOMEM, "out of memory for the text patcher");
    }
    return LOCUS_OK;
}

void locus_textpatch_free(locus_textpatch *tp) {
    for (size_t i = 0; tp->k && i < (size_t)tp->nlayers * tp->max_steps; i++) { free(tp->k[i]); free(tp->v[i]); }
    free(tp->k); free(tp->v); free(tp->record); free(tp->active); free(tp->kbuf); free(tp->vbuf);
    memset(tp, 0, sizeof *tp);
}

static void textpatch_kv(void *ctx, const locus_hook_at *at, const locus_text_kv *site) {
    locus_textpatch *tp = ctx;
    int j = site->index, step = at->step;
    if (j < 0 || j >= tp->nlayers || step < 0 || step >= tp->max_steps || tp->mode == LOCUS_TP_OFF) return;
    size_t row = (size_t)site->S * site->D, n = (size_t)site->B * row;
    float **ks = &tp->k[(size_t)j * tp->max_steps + step], **vs = &tp->v[(size_t)j * tp->max_steps + step];
    if (tp->mode == LOCUS_TP_RECORD) {
        if (!tp->record[j]) return;
        if (!*ks) *ks = malloc(n * sizeof(float));
        if (!*vs) *vs = malloc(n * sizeof(float));
        if (*ks) memcpy(*ks, site->k, n * sizeof(float));
        if (*vs) memcpy(*vs, site->v, n * sizeof(float));
        tp->n = n;
        return;
    }
    if (!tp->active[j] || step < tp->start_step) return;
    /* rows patched: the conditional one (the last) of a CFG pair, or all rows without CFG or with `both` */
    int r0 = at->cfg && !tp->both ? site->B - 1 : 0;
    if (tp->ctx_b && site->project) {
        if (tp->nbuf < row) {
            free(tp->kbuf); free(tp->vbuf);
            tp->kbuf = malloc(row * sizeof(float));
            tp->vbuf = malloc(row * sizeof(float));
            tp->nbuf = tp->kbuf && tp->vbuf ? row : 0;
            if (!tp->nbuf) return;
        }
        site->project(site, tp->ctx_b, tp->kbuf, tp->vbuf);
        /* B's text in the conditional rows; an unconditional row keeps the shared negative prompt */
        for (int b = at->cfg ? site->B - 1 : 0; b < site->B; b++) {
            memcpy(site->k + b * row, tp->kbuf, row * sizeof(float));
            memcpy(site->v + b * row, tp->vbuf, row * sizeof(float));
        }
        tp->hits++;
    } else if (*ks && *vs && n == tp->n) {
        memcpy(site->k + r0 * row, *ks + r0 * row, (n - r0 * row) * sizeof(float));
        memcpy(site->v + r0 * row, *vs + r0 * row, (n - r0 * row) * sizeof(float));
        tp->hits++;
    }
}

locus_hook_entry locus_textpatch_hook(locus_textpatch *tp) { return (locus_hook_entry){NULL, NULL, textpatch_kv, tp}; }

locus_status locus_interventions_parse(locus_interventions *v, const char *spec) {
    char *copy = strdup(spec), *next = copy;
    if (!copy) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    locus_status st = LOCUS_OK;
    v->n = 0;
    /* ';'-separated; an empty entry (';;;', a trailing ';') is an error, not a silent no-op */
    for (char *t = next; t; t = next) {
        char *semi = strchr(t, ';');
        if (semi) { *semi = 0; next = semi + 1; } else next = NULL;
        char *eq = strrchr(t, '=');
        if (!eq || eq == t || !eq[1]) { st = locus_fail(LOCUS_E_ARG, "--intervene '%s': expected PATTERN=zero|scale:F|mean|replace:CACHE (in '%s')", t, spec); break; }
        if (v->n == LOCUS_MAX_INTERVENTIONS) { st = locus_fail(LOCUS_E_ARG, "--intervene: more than %d interventions", LOCUS_MAX_INTERVENTIONS); break; }
        *eq = 0;
        if (strlen(t) >= sizeof v->iv[0].pattern) {
            st = locus_fail(LOCUS_E_ARG, "--intervene: pattern longer than %d characters", (int)sizeof v->iv[0].pattern - 1);
            break;
        }
        size_t tl = strlen(t);
        if (tl >= 6 && !strcmp(t + tl - 6, ".probs")) {
            st = locus_fail(LOCUS_E_ARG, "--intervene '%s': attention probabilities are read-only hook points (cache them with --cache-points)", t);
            break;
        }
        locus_intervention *iv = &v->iv[v->n];
        snprintf(iv->pattern, sizeof iv->pattern, "%s", t);
        const char *op = eq + 1;
        double factor = 0;
        iv->src = NULL;
        if (!strcmp(op, "zero")) iv->op = 0;
        else if (!strcmp(op, "mean")) iv->op = 2;
        else if (!strncmp(op, "replace:", 8) && op[8]) {
            iv->op = 3;
            iv->src = malloc(sizeof *iv->src);
            if (!iv->src) { st = locus_fail(LOCUS_E_NOMEM, "out of memory"); break; }
            if (locus_st_open(iv->src, op + 8)) {
                char why[512];
                snprintf(why, sizeof why, "%s", locus_errmsg()); /* the message buffer is reused by locus_fail */
                free(iv->src);
                iv->src = NULL;
                st = locus_fail(LOCUS_E_IO, "--intervene replace: %s", why);
                break;
            }
        }
        else if (!strncmp(op, "scale:", 6) && locus_parse_double(op + 6, -3.4e38, 3.4e38, &factor)) { iv->op = 1; iv->factor = (float)factor; }
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

static void interventions_fn(void *ctx, const locus_hook_at *at, float *x, int ndim, const int64_t *shape) {
    locus_interventions *v = ctx;
    const char *name = at->name;
    int step = at->step; /* denoiser evaluation index, as --intervene-steps and --cache keys count them */
    if (step < v->step_from || (v->step_to >= 0 && step > v->step_to) || ndim < 2) return;
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
            snprintf(key, sizeof key, "step%d.%s", step, name);
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

locus_hook_entry locus_interventions_hook(locus_interventions *v) { return (locus_hook_entry){interventions_fn, NULL, NULL, v}; }

locus_status locus_interventions_configure(locus_interventions *v, const char *steps, int nheads, const char *heads, const char *half) {
    v->step_from = 0;
    v->step_to = -1;
    v->half = 1;
    if (steps) {
        const char *colon = strchr(steps, ':');
        long long a, b;
        if (!colon || !locus_parse_lln(steps, (unsigned long)(colon - steps), 0, 100000, &a) || !locus_parse_ll(colon + 1, -1, 100000, &b) ||
            (b >= 0 && b < a))
            return locus_fail(LOCUS_E_ARG, "--intervene-steps %s: expected FROM:TO (inclusive, TO -1 = to the end)", steps);
        v->step_from = (int)a;
        v->step_to = (int)b;
    }
    v->heads = nheads;
    if (heads) {
        for (const char *t = heads, *e; ; t = e + 1) {
            e = strchr(t, ',');
            if (!e) e = t + strlen(t);
            long long hh;
            if (!locus_parse_lln(t, (unsigned long)(e - t), 0, 1000000, &hh))
                return locus_fail(LOCUS_E_ARG, "--intervene-heads %s: expected head numbers H1,H2", heads);
            if (hh >= nheads || hh >= 64)
                return locus_fail(LOCUS_E_ARG, "--intervene-heads: head %lld outside 0..%d", hh, nheads - 1);
            if (!(v->head_mask >> hh & 1)) v->head_mask_n++;
            v->head_mask |= 1ull << hh;
            if (!*e) break;
        }
    }
    if (half) {
        if (!strcmp(half, "cond")) v->half = 1;
        else if (!strcmp(half, "uncond")) v->half = 2;
        else if (!strcmp(half, "both")) v->half = 0;
        else return locus_fail(LOCUS_E_ARG, "--intervene-half %s: expected cond, uncond or both", half);
    }
    return LOCUS_OK;
}
