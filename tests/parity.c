/* parity.c — golden comparison helpers (see parity.h). */
#include "parity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float *golden_f32(const locus_st_file *g, const char *name, int64_t *n) {
    const locus_st_tensor *t = locus_st_find(g, name);
    if (!t) return NULL;
    *n = locus_st_numel(t);
    float *p = malloc((size_t)(*n ? *n : 1) * sizeof(float));
    if (locus_st_to_f32(t, p, *n) != LOCUS_OK) { free(p); return NULL; }
    return p;
}

int64_t *golden_ids(const locus_st_file *g, const char *name, int *B, int *T) {
    const locus_st_tensor *t = locus_st_find(g, name);
    if (!t || t->ndim != 2) return NULL;
    *B = (int)t->shape[0];
    *T = (int)t->shape[1];
    size_t n = (size_t)*B * (size_t)*T;
    int64_t *ids = malloc(sizeof(int64_t) * (n ? n : 1));
    if (locus_st_to_i64(t, ids, (int64_t)n) != LOCUS_OK) { free(ids); return NULL; }
    return ids;
}

double parity_rel(const locus_st_file *g, const char *name, const float *x, int64_t n) {
    int64_t gn;
    float *gv = golden_f32(g, name, &gn);
    if (!gv || gn != n) { free(gv); return -1; }
    double md = 0, mr = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - gv[i]);
        if (!(d <= md)) md = d;
        if (fabs(gv[i]) > mr) mr = fabs(gv[i]);
    }
    free(gv);
    return md / mr;
}

void parity_hook(void *vctx, const locus_hook_at *at, float *x, int ndim, const int64_t *shape) {
    parity_ctx *c = vctx;
    const char *name = at->name;
    char key[320];
    snprintf(key, sizeof key, "%s%s", c->prefix, name);
    const locus_st_tensor *t = locus_st_find(c->golden, key);
    if (!t) return;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    double r = parity_rel(c->golden, key, x, n);
    if (r < 0) {
        c->shape_bad++;
        fprintf(stderr, "  %s: shape mismatch with golden\n", key);
        return;
    }
    c->matched++;
    if (c->verbose) printf("  %-70s rel %.2e\n", key, r);
    if (r > c->worst || r != r) { c->worst = r; snprintf(c->worst_name, sizeof c->worst_name, "%s", key); }
}

void parity_pair_hook(void *ctx, const locus_hook_at *at, float *x, int ndim, const int64_t *shape) {
    parity_pair *t = ctx;
    parity_hook(t->a, at, x, ndim, shape);
    parity_hook(t->b, at, x, ndim, shape);
}

void parity_step_cb(void *vc, int step, int nsteps, const float *unc, const float *cond, const float *guided, const float *lat, size_t n) {
    parity_steps *c = vc;
    const char *names[4] = {"noise_pred_uncond", "noise_pred_text", "noise_pred", "latent_out"};
    const float *ptr[4] = {unc, cond, guided, lat};
    (void)nsteps;
    for (int k = 0; k < 4; k++) {
        char key[128];
        snprintf(key, sizeof key, "%s.step%d.%s", c->run, step, names[k]);
        double r = parity_rel(c->g, key, ptr[k], (int64_t)n);
        c->n++;
        if (r < 0 || r > c->worst) { c->worst = r < 0 ? 1e9 : r; snprintf(c->wname, sizeof c->wname, "%s", key); }
    }
}
