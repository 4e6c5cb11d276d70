/* adamw.c — torch.optim.AdamW and clip_grad_norm_ in fp32 (see adamw.h for the exact operation order).
 *
 * Scalar setup is double arithmetic like Python's; beta^t uses exponentiation by squaring (IEEE multiplies
 * only, so every libm and machine gives the same bits; within a few double ulps of Python's pow, far below
 * the fp32 rounding the value goes through).  Norms use the kernel table's 16-lane fixed-tree dot product. */
#include "adamw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/kernels.h"
#include "../simd/par.h"

locus_adamw_cfg locus_adamw_defaults(void) {
    locus_adamw_cfg c = {1e-6, 0.9, 0.999, 1e-8, 1e-2, 0};
    return c;
}

void locus_adamw_init(locus_adamw *o, const locus_adamw_cfg *cfg) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
}

void locus_adamw_free(locus_adamw *o) {
    for (int i = 0; i < o->n; i++) {
        free(o->ps[i].name);
        locus_free(o->ps[i].m);
        locus_free(o->ps[i].v);
    }
    free(o->ps);
    memset(o, 0, sizeof *o);
}

locus_status locus_adamw_add(locus_adamw *o, const char *name, float *p, const float *g, size_t n) {
    if (o->n == o->cap) {
        int nc = o->cap ? 2 * o->cap : 32;
        locus_adamw_param *np = realloc(o->ps, (size_t)nc * sizeof *np);
        if (!np) return locus_fail(LOCUS_E_NOMEM, "out of memory");
        o->ps = np;
        o->cap = nc;
    }
    locus_adamw_param *q = &o->ps[o->n];
    q->name = strdup(name);
    q->m = locus_alloc((n ? n : 1) * sizeof(float));
    q->v = locus_alloc((n ? n : 1) * sizeof(float));
    if (!q->name || !q->m || !q->v) {
        free(q->name); locus_free(q->m); locus_free(q->v);
        return locus_fail(LOCUS_E_NOMEM, "out of memory for the optimizer state of %s", name);
    }
    memset(q->m, 0, n * sizeof(float));
    memset(q->v, 0, n * sizeof(float));
    q->p = p;
    q->g = g;
    q->n = n;
    o->n++;
    return LOCUS_OK;
}

double locus_adamw_lr(const locus_adamw *o, int64_t t) {
    int64_t k = t - 1; /* LambdaLR's step count when optimizer step t runs */
    if (o->cfg.warmup > 0 && k < o->cfg.warmup) return o->cfg.lr * ((double)k / (double)o->cfg.warmup);
    if (o->cfg.decay > 0 && k >= o->cfg.total - o->cfg.decay) {
        if (k >= o->cfg.total) return 0.0;
        double progress = (double)(k - (o->cfg.total - o->cfg.decay)) / (double)o->cfg.decay;
        return o->cfg.lr * (1.0 - progress);
    }
    return o->cfg.lr;
}

static double powi(double b, int64_t e) {
    double r = 1.0;
    while (e > 0) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}

void locus_adamw_step(locus_adamw *o) {
    int64_t t = ++o->step;
    double lr = locus_adamw_lr(o, t);
    const locus_adamw_cfg *c = &o->cfg;
    const float decay = (float)(1.0 - lr * c->weight_decay);
    const float b1 = (float)c->beta1, a1 = (float)(1.0 - c->beta1);
    const float b2 = (float)c->beta2, a2 = (float)(1.0 - c->beta2);
    const double bc1 = 1.0 - powi(c->beta1, t), bc2 = 1.0 - powi(c->beta2, t);
    const float neg_step = (float)(-(lr / bc1));
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)c->eps;
    for (int i = 0; i < o->n; i++) {
        locus_adamw_param *q = &o->ps[i];
        float *p = q->p, *m = q->m, *v = q->v;
        const float *g = q->g;
        long n = (long)q->n;
        int nt = n >= 65536 ? locus_threads() : 1;
        LOCUS_PAR_FOR(nt, for (long k = 0; k < n; k++) {
            float pk = p[k] * decay;
            float mk = fmaf(g[k], a1, m[k] * b1);
            float vk = v[k] * b2 + (a2 * g[k]) * g[k];
            float denom = sqrtf(vk) / bc2_sqrt + eps;
            p[k] = pk + (neg_step * mk) / denom;
            m[k] = mk;
            v[k] = vk;
        });
    }
}

float locus_clip_grad_norm(float *const *g, const size_t *n, int count, double max_norm) {
    if (count <= 0) return 0.0f;
    float *norms = malloc((size_t)count * sizeof *norms);
    if (!norms) abort();
    const locus_row_kernels *rk = locus_k()->row;
#pragma omp parallel for schedule(dynamic, 1) num_threads(locus_threads())
    for (int i = 0; i < count; i++) norms[i] = sqrtf(rk->rdot(g[i], g[i], n[i]));
    float total = sqrtf(rk->rdot(norms, norms, (size_t)count));
    free(norms);
    float coef = (float)max_norm / (total + 1e-6f);
    if (coef > 1.0f) coef = 1.0f;
    for (int i = 0; i < count; i++) {
        float *x = g[i];
        long m = (long)n[i];
        int nt = m >= 65536 ? locus_threads() : 1;
        LOCUS_PAR_FOR(nt, for (long k = 0; k < m; k++) x[k] = x[k] * coef;);
    }
    return total;
}

float locus_adamw_clip(locus_adamw *o, double max_norm) {
    float **g = malloc((size_t)(o->n ? o->n : 1) * sizeof *g);
    size_t *n = malloc((size_t)(o->n ? o->n : 1) * sizeof *n);
    if (!g || !n) abort();
    for (int i = 0; i < o->n; i++) {
        g[i] = (float *)o->ps[i].g;
        n[i] = o->ps[i].n;
    }
    float total = locus_clip_grad_norm(g, n, o->n, max_norm);
    free(g);
    free(n);
    return total;
}

locus_status locus_adamw_state_write(const locus_adamw *o, locus_st_writer *w, const char *prefix) {
    char key[1200];
    int64_t one = 1, step = o->step;
    snprintf(key, sizeof key, "%sstep", prefix);
    locus_status st = locus_st_writer_add(w, key, LOCUS_I64, 1, &one, &step);
    for (int i = 0; i < o->n && !st; i++) {
        int64_t n = (int64_t)o->ps[i].n;
        snprintf(key, sizeof key, "%s%s.exp_avg", prefix, o->ps[i].name);
        st = locus_st_writer_add(w, key, LOCUS_F32, 1, &n, o->ps[i].m);
        snprintf(key, sizeof key, "%s%s.exp_avg_sq", prefix, o->ps[i].name);
        if (!st) st = locus_st_writer_add(w, key, LOCUS_F32, 1, &n, o->ps[i].v);
    }
    return st;
}

locus_status locus_adamw_state_read(locus_adamw *o, const locus_st_file *f, const char *prefix) {
    char key[1200];
    snprintf(key, sizeof key, "%sstep", prefix);
    const locus_st_tensor *t = locus_st_find(f, key);
    int64_t step;
    if (!t || locus_st_numel(t) != 1 || locus_st_to_i64(t, &step, 1) || step < 0)
        return locus_fail(LOCUS_E_FORMAT, "%s: no valid optimizer step count '%s'", f->path, key);
    for (int i = 0; i < o->n; i++) {
        for (int j = 0; j < 2; j++) {
            snprintf(key, sizeof key, "%s%s.%s", prefix, o->ps[i].name, j ? "exp_avg_sq" : "exp_avg");
            t = locus_st_find(f, key);
            if (!t) return locus_fail(LOCUS_E_NOTFOUND, "%s: optimizer state '%s' missing", f->path, key);
            if (t->dtype != LOCUS_F32 || locus_st_numel(t) != (int64_t)o->ps[i].n)
                return locus_fail(LOCUS_E_SHAPE, "%s: optimizer state '%s' has %lld elements, expected %zu fp32", f->path, key,
                                  (long long)locus_st_numel(t), o->ps[i].n);
            locus_status st = locus_st_to_f32(t, j ? o->ps[i].v : o->ps[i].m, (int64_t)o->ps[i].n);
            if (st) return st;
        }
    }
    o->step = step;
    return LOCUS_OK;
}
