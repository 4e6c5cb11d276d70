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
};
