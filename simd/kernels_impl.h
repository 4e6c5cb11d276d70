/* kernels_impl.h — row kernels written once over the 16-lane v16 abstraction, compiled per ISA.
 *
 * Each simd/<isa>/kernels_<isa>.c includes its vec16 header and then this file, which defines
 * f32_<op>_<isa> for every row kernel.  The determinism contract lives here:
 *   - reductions (sum, max, sum of squares) use ONE 16-lane accumulator: element i goes to lane i % 16, in
 *     order; tails are loaded masked (sum: +0 in unused lanes, max: -inf); the 16 lanes are folded by the
 *     fixed tree of v16_hsum/v16_hmax.  Narrower ISAs emulate the 16 lanes, so every ISA adds the same
 *     numbers in the same order.
 *   - elementwise formulas are spelled as explicit v16 operations (no implicit contraction: the build uses
 *     -ffp-contract=off), and transcendentals come from SLEEF's deterministic family (sleef_names.h).
 * Tails are computed on full vectors with neutral fill and stored masked; there is no scalar tail loop with
 * different math.
 */
#ifndef V16_ISA
#error "include a vec16_<isa>.h first"
#endif

#include <math.h>
#include <stddef.h>

#include "kernels.h"

#define K_CAT2(a, b) a##_##b
#define K_CAT(a, b) K_CAT2(a, b)
#define K(name) K_CAT(f32_##name, V16_ISA)

static float K(rsum)(const float *x, size_t n) {
    v16 acc = v16_zero();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) acc = v16_add(acc, v16_load(x + i));
    if (i < n) acc = v16_add(acc, v16_loadn(x + i, (int)(n - i), 0.0f));
    return v16_hsum(acc);
}

static float K(rmax)(const float *x, size_t n) {
    v16 acc = v16_set1(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) acc = v16_max(acc, v16_load(x + i));
    if (i < n) acc = v16_max(acc, v16_loadn(x + i, (int)(n - i), -INFINITY));
    return v16_hmax(acc);
}

/* sum over i of (x[i] - mean)^2, computed as d*d + acc (FMA) */
static float K(rsumsq_dev)(const float *x, size_t n, float mean) {
    v16 acc = v16_zero(), m = v16_set1(mean);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16 d = v16_sub(v16_load(x + i), m);
        acc = v16_fma(d, d, acc);
    }
    if (i < n) {
        v16 d = v16_sub(v16_loadn(x + i, (int)(n - i), mean), m); /* fill with mean: d = 0 */
        acc = v16_fma(d, d, acc);
    }
    return v16_hsum(acc);
}

/* dot product, one FMA chain per lane */
static float K(rdot)(const float *x, const float *y, size_t n) {
    v16 acc = v16_zero();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) acc = v16_fma(v16_load(x + i), v16_load(y + i), acc);
    if (i < n) acc = v16_fma(v16_loadn(x + i, (int)(n - i), 0.0f), v16_loadn(y + i, (int)(n - i), 0.0f), acc);
    return v16_hsum(acc);
}

/* y = softmax(x * scale + mask) over n elements; mask may be NULL; y may alias x. */
static void K(softmax)(const float *x, float *y, size_t n, float scale, const float *mask) {
    v16 s = v16_set1(scale), mx = v16_set1(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16 t = v16_mul(v16_load(x + i), s);
        if (mask) t = v16_add(t, v16_load(mask + i));
        v16_store(y + i, t);
        mx = v16_max(mx, t);
    }
    int tail = (int)(n - i);
    if (tail) {
        v16 t = v16_mul(v16_loadn(x + i, tail, 0.0f), s);
        if (mask) t = v16_add(t, v16_loadn(mask + i, tail, 0.0f));
        v16_storen(y + i, t, tail);
        mx = v16_max(mx, v16_loadn(y + i, tail, -INFINITY));
    }
    v16 m = v16_set1(v16_hmax(mx)), acc = v16_zero();
    for (i = 0; i + 16 <= n; i += 16) {
        v16 e = v16_exp(v16_sub(v16_load(y + i), m));
        v16_store(y + i, e);
        acc = v16_add(acc, e);
    }
    if (tail) {
        v16 e = v16_exp(v16_sub(v16_loadn(y + i, tail, 0.0f), m));
        v16_storen(y + i, e, tail);
        acc = v16_add(acc, v16_loadn(y + i, tail, 0.0f));
    }
    v16 sum = v16_set1(v16_hsum(acc));
    for (i = 0; i + 16 <= n; i += 16) v16_store(y + i, v16_div(v16_load(y + i), sum));
    if (tail) v16_storen(y + i, v16_div(v16_loadn(y + i, tail, 1.0f), sum), tail);
}

/* y = ((x - mean) * rstd) * w + b with per-element w, b (either may be NULL: 1 / 0). */
static void K(norm_apply)(const float *x, float *y, size_t n, float mean, float rstd, const float *w, const float *b) {
    v16 m = v16_set1(mean), r = v16_set1(rstd);
    for (size_t i = 0; i < n; i += 16) {
        int c = n - i >= 16 ? 16 : (int)(n - i);
        v16 t = v16_mul(v16_sub(v16_loadn(x + i, c, 0.0f), m), r);
        if (w) t = v16_mul(t, v16_loadn(w + i, c, 0.0f));
        if (b) t = v16_add(t, v16_loadn(b + i, c, 0.0f));
        v16_storen(y + i, t, c);
    }
}

/* y = x * rstd * w  (RMS norm; w may be NULL) */
static void K(rms_apply)(const float *x, float *y, size_t n, float rstd, const float *w) {
    v16 r = v16_set1(rstd);
    for (size_t i = 0; i < n; i += 16) {
        int c = n - i >= 16 ? 16 : (int)(n - i);
        v16 t = v16_mul(v16_loadn(x + i, c, 0.0f), r);
        if (w) t = v16_mul(t, v16_loadn(w + i, c, 0.0f));
        v16_storen(y + i, t, c);
    }
}

static inline v16 K(act1)(v16 x, int kind) {
    v16 one = v16_set1(1.0f);
    switch (kind) {
    case LOCUS_ACT_SILU: /* x / (1 + exp(-x)) */
        return v16_div(x, v16_add(one, v16_exp(v16_sub(v16_zero(), x))));
    case LOCUS_ACT_GELU_ERF: /* (x * 0.5) * (1 + erf(x * (1/sqrt 2))) */
        return v16_mul(v16_mul(x, v16_set1(0.5f)), v16_add(one, v16_erf(v16_mul(x, v16_set1(0.70710678118654752440f)))));
    case LOCUS_ACT_GELU_TANH: { /* (0.5 * x) * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))) */
        v16 x3 = v16_mul(v16_mul(x, x), x);
        v16 in = v16_mul(v16_set1(0.79788456080286535588f), v16_add(x, v16_mul(v16_set1(0.044715f), x3)));
        return v16_mul(v16_mul(v16_set1(0.5f), x), v16_add(one, v16_tanh(in)));
    }
    case LOCUS_ACT_QUICK_GELU: /* x * (1 / (1 + exp(-1.702 x))) */
        return v16_mul(x, v16_div(one, v16_add(one, v16_exp(v16_mul(v16_set1(-1.702f), x)))));
    default: /* LOCUS_ACT_NONE */
        return x;
    }
}

/* y = act(x); y may alias x */
static void K(act)(const float *x, float *y, size_t n, int kind) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) v16_store(y + i, K(act1)(v16_load(x + i), kind));
    if (i < n) v16_storen(y + i, K(act1)(v16_loadn(x + i, (int)(n - i), 0.0f), kind), (int)(n - i));
}

static inline v16 K(bin1)(v16 a, v16 b, int op, v16 alpha) {
    switch (op) {
    case LOCUS_BIN_ADD: return v16_add(a, b);
    case LOCUS_BIN_SUB: return v16_sub(a, b);
    case LOCUS_BIN_MUL: return v16_mul(a, b);
    case LOCUS_BIN_MUL_ACT_GELU_ERF: return v16_mul(a, K(act1)(b, LOCUS_ACT_GELU_ERF)); /* GEGLU */
    case LOCUS_BIN_MUL_ACT_GELU_TANH: return v16_mul(a, K(act1)(b, LOCUS_ACT_GELU_TANH));
    case LOCUS_BIN_CFG: return v16_add(a, v16_mul(alpha, v16_sub(b, a))); /* a + alpha * (b - a), as torch */
    case LOCUS_BIN_AXPY: return v16_add(a, v16_mul(alpha, b));             /* a + alpha * b */
    default: return a;
    }
}

/* y = a (op) b elementwise; y may alias a or b */
static void K(binary)(const float *a, const float *b, float *y, size_t n, int op, float alpha) {
    v16 al = v16_set1(alpha);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) v16_store(y + i, K(bin1)(v16_load(a + i), v16_load(b + i), op, al));
    if (i < n) {
        int c = (int)(n - i);
        v16_storen(y + i, K(bin1)(v16_loadn(a + i, c, 0.0f), v16_loadn(b + i, c, 0.0f), op, al), c);
    }
}

/* y = x * s + t (multiply then add, two roundings) */
static void K(scale_shift)(const float *x, float *y, size_t n, float s, float t) {
    v16 vs = v16_set1(s), vt = v16_set1(t);
    for (size_t i = 0; i < n; i += 16) {
        int c = n - i >= 16 ? 16 : (int)(n - i);
        v16_storen(y + i, v16_add(v16_mul(v16_loadn(x + i, c, 0.0f), vs), vt), c);
    }
}

/* diffusers get_timestep_embedding for one timestep: freq_i = exp((-ln(max_period) * i) / (half - shift)),
 * arg_i = (t * freq_i) * scale, with neg_log_max_period = (float)-ln(max_period); out = [sin | cos] ([cos | sin] when flip); odd dim gets a trailing 0. */
static void K(timestep_embed)(float t, float *out, int dim, int flip, float shift, float scale, float neg_log_max_period) {
    int half = dim / 2;
    v16 vc = v16_set1(neg_log_max_period), den = v16_set1((float)half - shift), vt = v16_set1(t), vs = v16_set1(scale);
    for (int i = 0; i < half; i += 16) {
        int n = half - i >= 16 ? 16 : half - i;
        float idx[16];
        for (int j = 0; j < 16; j++) idx[j] = (float)(i + j);
        v16 fr = v16_exp(v16_div(v16_mul(vc, v16_load(idx)), den));
        v16 arg = v16_mul(v16_mul(vt, fr), vs);
        v16 s, co;
        v16_sincos(arg, &s, &co);
        v16_storen(out + i, flip ? co : s, n);
        v16_storen(out + half + i, flip ? s : co, n);
    }
    if (dim % 2) out[dim - 1] = 0.0f;
}

/* V16_BURN_ACC independent accumulators (enough to cover FMA latency x pipes on this ISA) */
static double K(fma_burn)(long iters, float *sink) {
    v16 acc[V16_BURN_ACC], x = v16_set1(0.999999f), y = v16_set1(1e-7f);
    for (int j = 0; j < V16_BURN_ACC; j++) acc[j] = v16_set1((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < V16_BURN_ACC; j++) acc[j] = v16_fma(acc[j], x, y);
    }
    v16 s = acc[0];
    for (int j = 1; j < V16_BURN_ACC; j++) s = v16_add(s, acc[j]);
    *sink = v16_hsum(s);
    return 2.0 * 16 * V16_BURN_ACC * (double)iters;
}

/* ---------------------------------------------------------------- backward (gradient) row kernels
 * Elementwise derivatives spelled as explicit v16 operations (same bits on every ISA), SLEEF functions as in
 * the forward.  `accum`: the result is added to the value in the output (out = out + value). */

/* act'(x) */
static inline v16 K(act_d1)(v16 x, int kind) {
    v16 one = v16_set1(1.0f);
    switch (kind) {
    case LOCUS_ACT_SILU: { /* s = 1 / (1 + exp(-x)); s * (1 + x * (1 - s)) */
        v16 s = v16_div(one, v16_add(one, v16_exp(v16_sub(v16_zero(), x))));
        return v16_mul(s, v16_add(one, v16_mul(x, v16_sub(one, s))));
    }
    case LOCUS_ACT_GELU_ERF: { /* 0.5 * (1 + erf(x / sqrt 2)) + x * (exp(-x^2 / 2) / sqrt(2 pi)) */
        v16 cdf = v16_mul(v16_set1(0.5f), v16_add(one, v16_erf(v16_mul(x, v16_set1(0.70710678118654752440f)))));
        v16 pdf = v16_mul(v16_exp(v16_mul(v16_mul(x, x), v16_set1(-0.5f))), v16_set1(0.39894228040143267794f));
        return v16_add(cdf, v16_mul(x, pdf));
    }
    case LOCUS_ACT_GELU_TANH: { /* t = tanh(c (x + 0.044715 x^3)): 0.5 (1 + t) + (0.5 x) ((1 - t^2) c (1 + 3 * 0.044715 x^2)) */
        v16 c = v16_set1(0.79788456080286535588f), x2 = v16_mul(x, x), x3 = v16_mul(x2, x);
        v16 t = v16_tanh(v16_mul(c, v16_add(x, v16_mul(v16_set1(0.044715f), x3))));
        v16 du = v16_mul(c, v16_add(one, v16_mul(v16_set1(0.134145f), x2)));
        v16 sech2 = v16_sub(one, v16_mul(t, t));
        return v16_add(v16_mul(v16_set1(0.5f), v16_add(one, t)), v16_mul(v16_mul(v16_set1(0.5f), x), v16_mul(sech2, du)));
    }
    case LOCUS_ACT_QUICK_GELU: { /* s = 1 / (1 + exp(-1.702 x)); s + (1.702 x) (s (1 - s)) */
        v16 a = v16_set1(1.702f);
        v16 s = v16_div(one, v16_add(one, v16_exp(v16_mul(v16_set1(-1.702f), x))));
        return v16_add(s, v16_mul(v16_mul(a, x), v16_mul(s, v16_sub(one, s))));
    }
    default:
        return one;
    }
}

static void K(act_bwd)(const float *x, const float *dy, float *dx, size_t n, int kind, int accum) {
    for (size_t i = 0; i < n; i += 16) {
        int c = n - i >= 16 ? 16 : (int)(n - i);
        v16 t = v16_mul(v16_loadn(dy + i, c, 0.0f), K(act_d1)(v16_loadn(x + i, c, 0.0f), kind));
        if (accum) t = v16_add(v16_loadn(dx + i, c, 0.0f), t);
        v16_storen(dx + i, t, c);
    }
}

static void K(geglu_bwd)(const float *a, const float *g, const float *dy, float *da, float *dg, size_t n, int accum) {
    for (size_t i = 0; i < n; i += 16) {
        int c = n - i >= 16 ? 16 : (int)(n - i);
        v16 vg = v16_loadn(g + i, c, 0.0f), vd = v16_loadn(dy + i, c, 0.0f);
        v16 ta = v16_mul(vd, K(act1)(vg, LOCUS_ACT_GELU_ERF));
        v16 tg = v16_mul(v16_mul(vd, v16_loadn(a + i, c, 0.0f)), K(act_d1)(vg, LOCUS_ACT_GELU_ERF));
        if (accum) {
            ta = v16_add(v16_loadn(da + i, c, 0.0f), ta);
            tg = v16_add(v16_loadn(dg + i, c, 0.0f), tg);
        }
        v16_storen(da + i, ta, c);
        v16_storen(dg + i, tg, c);
    }
}

static void K(norm_bwd_apply)(const float *g, const float *xhat, float *dx, size_t n, float c1, float c2, float rstd,
                              int accum) {
    v16 v1 = v16_set1(c1), v2 = v16_set1(c2), r = v16_set1(rstd);
    for (size_t i = 0; i < n; i += 16) {
        int c = n - i >= 16 ? 16 : (int)(n - i);
        v16 t = v16_sub(v16_sub(v16_loadn(g + i, c, 0.0f), v1), v16_mul(v16_loadn(xhat + i, c, 0.0f), v2));
        t = v16_mul(t, r);
        if (accum) t = v16_add(v16_loadn(dx + i, c, 0.0f), t);
        v16_storen(dx + i, t, c);
    }
}

static void K(fma_acc)(float *acc, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        int c = n - i >= 16 ? 16 : (int)(n - i);
        v16_storen(acc + i, v16_fma(v16_loadn(a + i, c, 0.0f), v16_loadn(b + i, c, 0.0f), v16_loadn(acc + i, c, 0.0f)), c);
    }
}

static float K(sqdiff)(const float *a, const float *b, size_t n, float *grad, float cg) {
    v16 acc = v16_zero(), vc = v16_set1(cg);
    for (size_t i = 0; i < n; i += 16) {
        int c = n - i >= 16 ? 16 : (int)(n - i);
        v16 d = v16_sub(v16_loadn(a + i, c, 0.0f), v16_loadn(b + i, c, 0.0f)); /* unused lanes: 0 */
        acc = v16_fma(d, d, acc);
        if (grad) v16_storen(grad + i, v16_mul(d, vc), c);
    }
    return v16_hsum(acc);
}

static float K(fma_chain)(const float *a, const float *b, size_t n, float acc) {
    for (size_t i = 0; i < n; i++) acc = fmaf(a[i], b[i], acc);
    return acc;
}

static void K(softmax_bwd)(const float *p, const float *dp, float *ds, size_t n, float dsum, float scale) {
    v16 vs = v16_set1(dsum), sc = v16_set1(scale);
    for (size_t i = 0; i < n; i += 16) {
        int c = n - i >= 16 ? 16 : (int)(n - i);
        v16 t = v16_mul(v16_loadn(p + i, c, 0.0f), v16_sub(v16_loadn(dp + i, c, 0.0f), vs));
        v16_storen(ds + i, v16_mul(t, sc), c);
    }
}
/* ---------------------------------------------------------------- end of backward row kernels */

static const locus_row_kernels K(row_kernels) = {
    .rsum = K(rsum),
    .rmax = K(rmax),
    .rsumsq_dev = K(rsumsq_dev),
    .rdot = K(rdot),
    .softmax = K(softmax),
    .norm_apply = K(norm_apply),
    .rms_apply = K(rms_apply),
    .act = K(act),
    .binary = K(binary),
    .scale_shift = K(scale_shift),
    .timestep_embed = K(timestep_embed),
    .fma_burn = K(fma_burn),
    /* backward */
    .act_bwd = K(act_bwd),
    .geglu_bwd = K(geglu_bwd),
    .norm_bwd_apply = K(norm_bwd_apply),
    .fma_acc = K(fma_acc),
    .sqdiff = K(sqdiff),
    .fma_chain = K(fma_chain),
    .softmax_bwd = K(softmax_bwd),
    /* end backward */
};
