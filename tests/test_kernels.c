/* test_kernels.c — every kernel against (1) a double-precision naive reference (tolerance) and (2) the scalar
 * reference table (bit-identical), for every ISA this CPU supports and 1/2/3 threads, at tile sizes, below,
 * above, odd tails, misaligned pointers and in place.
 *
 *   test_kernels            run the checks
 *   test_kernels --hash     print "name hash" lines of a fixed workload under the current LOCUS_ISA /
 *                           LOCUS_THREADS (compared across ISAs and threads by tests/run_tests.sh)
 *   test_kernels --hash-small   the same without the multi-block GEMM, for the aarch64 build under qemu-user
 *                           (tests/neon_compare.sh compares it with the x86 build)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/hash.h"
#include "../core/rng.h"
#include "../simd/ops.h"
#include "../simd/ops_bwd.h"
#include "testutil.h"

static float *fbuf(size_t n) { float *p = locus_alloc((n + 16) * sizeof(float)); memset(p, 0, (n + 16) * sizeof(float)); return p; }

/* ------------------------------------------------------------------ double references */

static void ref_gemm(int M, int N, int K, const float *A, int ta, const float *B, int tb, const float *bias, int bias_row, double *C) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
            if (bias) s += bias_row ? bias[i] : bias[j];
            C[i * N + j] = s;
        }
}


/* ------------------------------------------------------------------ per-op runners (use the active table) */

typedef struct { int M, N, K; } mnk;

static const mnk gemm_shapes[] = {
    {1, 1, 1}, {1, 17, 3}, {4, 16, 8}, {6, 16, 40}, {12, 32, 64}, {11, 31, 63}, {13, 33, 65}, {5, 8, 7},
    {24, 64, 384}, {25, 65, 385}, {23, 63, 383}, {77, 77, 40}, {145, 100, 800}, {7, 300, 33}, {160, 48, 1},
    {2, 3200, 20}, {300, 9, 17}, {200, 300, 600}, /* the last: few rows, many panels, two K blocks */
};

static void run_gemm(const mnk *s, int ta, int tb, int biaskind, int misalign, float *C) {
    int M = s->M, N = s->N, K = s->K;
    float *A = fbuf((size_t)M * K + 1) + misalign, *B = fbuf((size_t)K * N + 1) + misalign, *bias = fbuf(M > N ? M : N);
    t_fill(A, (size_t)M * K, 11 + M, -1, 1);
    t_fill(B, (size_t)K * N, 13 + N, -1, 1);
    t_fill(bias, M > N ? M : N, 17, -1, 1);
    locus_gemm_desc d = {0};
    d.M = M; d.N = N; d.K = K;
    d.A = A; d.a_rs = ta ? 1 : K; d.a_cs = ta ? M : 1;
    d.B = B; d.b_rs = tb ? 1 : N; d.b_cs = tb ? K : 1;
    d.C = C; d.ldc = N + misalign * 3;
    d.bias = biaskind ? bias : NULL;
    d.bias_kind = biaskind == 1 ? LOCUS_UKR_BIAS_COL : biaskind == 2 ? LOCUS_UKR_BIAS_ROW : 0;
    locus_gemm(&d);
    locus_free(A - misalign); locus_free(B - misalign); locus_free(bias);
}

static void check_gemm_reference(void) {
    for (size_t si = 0; si < sizeof gemm_shapes / sizeof *gemm_shapes; si++) {
        const mnk *s = &gemm_shapes[si];
        for (int v = 0; v < 8; v++) {
            int ta = v & 1, tb = (v >> 1) & 1, bk = (v >> 2) ? (si % 2 ? 1 : 2) : 0, mis = v == 5;
            size_t ldc = s->N + mis * 3;
            float *C = fbuf((size_t)s->M * ldc), *Cp = fbuf((size_t)s->M * s->N);
            run_gemm(s, ta, tb, bk, mis, C);
            for (int i = 0; i < s->M; i++) memcpy(Cp + (size_t)i * s->N, C + i * ldc, s->N * sizeof(float));
            float *A = fbuf((size_t)s->M * s->K + 1) + mis, *B = fbuf((size_t)s->K * s->N + 1) + mis, *bias = fbuf(s->M > s->N ? s->M : s->N);
            t_fill(A, (size_t)s->M * s->K, 11 + s->M, -1, 1);
            t_fill(B, (size_t)s->K * s->N, 13 + s->N, -1, 1);
            t_fill(bias, s->M > s->N ? s->M : s->N, 17, -1, 1);
            double *R = malloc(sizeof(double) * s->M * s->N);
            ref_gemm(s->M, s->N, s->K, A, ta, B, tb, bk ? bias : NULL, bk == 2, R);
            char what[96];
            snprintf(what, sizeof what, "gemm %s M=%d N=%d K=%d ta=%d tb=%d bias=%d mis=%d", locus_isa_name(), s->M, s->N, s->K, ta, tb, bk, mis);
            CHECK(close_enough(Cp, R, (size_t)s->M * s->N, 1e-5 * sqrt(s->K + 1.0), what), "%s", what);
            free(R);
            locus_free(C); locus_free(Cp); locus_free(A - mis); locus_free(B - mis); locus_free(bias);
        }
    }
}

static void run_conv(int idx, float *y, size_t *ny) {
    static const int cs[][7] = {/* Cin H W Cout k stride pad */
        {3, 8, 8, 4, 3, 1, 1}, {5, 7, 9, 6, 3, 2, 1}, {4, 6, 6, 8, 1, 1, 0}, {16, 16, 16, 33, 3, 1, 1},
        {1, 5, 5, 1, 3, 1, 0}, {8, 9, 9, 12, 3, 2, 0}, {32, 8, 8, 16, 1, 1, 0}};
    const int *c = cs[idx];
    int B = 2, Ho = (c[1] + 2 * c[6] - c[4]) / c[5] + 1, Wo = (c[2] + 2 * c[6] - c[4]) / c[5] + 1;
    size_t nx = (size_t)B * c[0] * c[1] * c[2], nw = (size_t)c[3] * c[0] * c[4] * c[4];
    float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(c[3]);
    t_fill(x, nx, 100 + idx, -1, 1); t_fill(w, nw, 200 + idx, -0.5f, 0.5f); t_fill(b, c[3], 300 + idx, -1, 1);
    locus_conv2d(x, B, c[0], c[1], c[2], w, idx % 2 ? NULL : b, c[3], c[4], c[4], c[5], c[6], y);
    *ny = (size_t)B * c[3] * Ho * Wo;
    if (y && getenv("T_CONV_REF")) {} /* (reference computed in check_conv) */
    locus_free(x); locus_free(w); locus_free(b);
}

static void check_conv_reference(void) {
    static const int cs[][7] = {
        {3, 8, 8, 4, 3, 1, 1}, {5, 7, 9, 6, 3, 2, 1}, {4, 6, 6, 8, 1, 1, 0}, {16, 16, 16, 33, 3, 1, 1},
        {1, 5, 5, 1, 3, 1, 0}, {8, 9, 9, 12, 3, 2, 0}, {32, 8, 8, 16, 1, 1, 0}};
    for (int idx = 0; idx < 7; idx++) {
        const int *c = cs[idx];
        int B = 2, Cin = c[0], H = c[1], W = c[2], Co = c[3], k = c[4], st = c[5], pd = c[6];
        int Ho = (H + 2 * pd - k) / st + 1, Wo = (W + 2 * pd - k) / st + 1;
        size_t ny;
        float *y = fbuf((size_t)B * Co * Ho * Wo);
        run_conv(idx, y, &ny);
        size_t nx = (size_t)B * Cin * H * W, nw = (size_t)Co * Cin * k * k;
        float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(Co);
        t_fill(x, nx, 100 + idx, -1, 1); t_fill(w, nw, 200 + idx, -0.5f, 0.5f); t_fill(b, Co, 300 + idx, -1, 1);
        double *R = malloc(sizeof(double) * ny);
        for (int bb = 0; bb < B; bb++)
            for (int o = 0; o < Co; o++)
                for (int oy = 0; oy < Ho; oy++)
                    for (int ox = 0; ox < Wo; ox++) {
                        double s = idx % 2 ? 0 : b[o];
                        for (int ci = 0; ci < Cin; ci++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    int iy = oy * st - pd + ky, ix = ox * st - pd + kx;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                    s += (double)x[((size_t)(bb * Cin + ci) * H + iy) * W + ix] * w[((size_t)(o * Cin + ci) * k + ky) * k + kx];
                                }
                        R[((size_t)(bb * Co + o) * Ho + oy) * Wo + ox] = s;
                    }
        char what[64];
        snprintf(what, sizeof what, "conv2d %s case %d", locus_isa_name(), idx);
        CHECK(close_enough(y, R, ny, 1e-5 * sqrt(Cin * k * k + 1.0), what), "%s", what);
        free(R); locus_free(x); locus_free(w); locus_free(b); locus_free(y);
    }
}

typedef struct { int B, H, Tq, Tk, D, mask, probs; } attn_case;
static const attn_case attn_cases[] = {
    {1, 1, 1, 1, 8, 0, 0}, {2, 2, 17, 7, 8, 1, 1}, {2, 3, 64, 77, 40, 0, 0}, {1, 2, 65, 100, 64, 1, 0},
    {2, 1, 130, 33, 16, 0, 1}, {1, 4, 200, 200, 24, 0, 0},
};

/* q,k,v laid out (B,T,H*D); out same */
static void run_attn(const attn_case *c, float *o, float *probs) {
    int C = c->H * c->D;
    size_t nq = (size_t)c->B * c->Tq * C, nk = (size_t)c->B * c->Tk * C;
    float *q = fbuf(nq), *k = fbuf(nk), *v = fbuf(nk), *m = fbuf((size_t)c->B * c->Tq * c->Tk);
    t_fill(q, nq, 1, -2, 2); t_fill(k, nk, 2, -2, 2); t_fill(v, nk, 3, -1, 1);
    t_fill(m, (size_t)c->B * c->Tq * c->Tk, 4, -3, 0);
    locus_attn_desc d = {c->B, c->H, c->Tq, c->Tk, c->D, q, (ptrdiff_t)c->Tq * C, C, k, (ptrdiff_t)c->Tk * C, C,
                         v, (ptrdiff_t)c->Tk * C, C, o, (ptrdiff_t)c->Tq * C, C, 1.0f / sqrtf((float)c->D),
                         c->mask ? m : NULL, (ptrdiff_t)c->Tq * c->Tk, c->Tk, c->probs ? probs : NULL};
    locus_attention(&d);
    locus_free(q); locus_free(k); locus_free(v); locus_free(m);
}

static void check_attn_reference(void) {
    for (size_t ci = 0; ci < sizeof attn_cases / sizeof *attn_cases; ci++) {
        const attn_case *c = &attn_cases[ci];
        int C = c->H * c->D;
        size_t nq = (size_t)c->B * c->Tq * C, nk = (size_t)c->B * c->Tk * C;
        float *o = fbuf(nq), *pr = fbuf((size_t)c->B * c->H * c->Tq * c->Tk);
        run_attn(c, o, pr);
        float *q = fbuf(nq), *k = fbuf(nk), *v = fbuf(nk), *m = fbuf((size_t)c->B * c->Tq * c->Tk);
        t_fill(q, nq, 1, -2, 2); t_fill(k, nk, 2, -2, 2); t_fill(v, nk, 3, -1, 1);
        t_fill(m, (size_t)c->B * c->Tq * c->Tk, 4, -3, 0);
        double *R = malloc(sizeof(double) * nq), *s = malloc(sizeof(double) * c->Tk);
        for (int b = 0; b < c->B; b++)
            for (int h = 0; h < c->H; h++)
                for (int i = 0; i < c->Tq; i++) {
                    double mx = -1e300, sum = 0;
                    for (int j = 0; j < c->Tk; j++) {
                        double acc = 0;
                        for (int d = 0; d < c->D; d++) acc += (double)q[((size_t)b * c->Tq + i) * C + h * c->D + d] * k[((size_t)b * c->Tk + j) * C + h * c->D + d];
                        acc /= sqrt((double)c->D);
                        if (c->mask) acc += m[((size_t)b * c->Tq + i) * c->Tk + j];
                        s[j] = acc;
                        if (acc > mx) mx = acc;
                    }
                    for (int j = 0; j < c->Tk; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
                    for (int d = 0; d < c->D; d++) {
                        double acc = 0;
                        for (int j = 0; j < c->Tk; j++) acc += s[j] / sum * v[((size_t)b * c->Tk + j) * C + h * c->D + d];
                        R[((size_t)b * c->Tq + i) * C + h * c->D + d] = acc;
                    }
                }
        char what[80];
        snprintf(what, sizeof what, "attention %s B=%d H=%d Tq=%d Tk=%d D=%d mask=%d", locus_isa_name(), c->B, c->H, c->Tq, c->Tk, c->D, c->mask);
        CHECK(close_enough(o, R, nq, 2e-5, what), "%s", what);
        if (c->probs) {
            /* each probability row sums to ~1 */
            double worst = 0;
            for (size_t r = 0; r < (size_t)c->B * c->H * c->Tq; r++) {
                double t = 0;
                for (int j = 0; j < c->Tk; j++) t += pr[r * c->Tk + j];
                if (fabs(t - 1) > worst) worst = fabs(t - 1);
            }
            CHECK(worst < 1e-5, "attention probs rows sum to 1 (worst %.3g)", worst);
        }
        free(R); free(s);
        locus_free(o); locus_free(pr); locus_free(q); locus_free(k); locus_free(v); locus_free(m);
    }
}

static const size_t row_lens[] = {1, 2, 15, 16, 17, 31, 32, 33, 100, 320, 1000, 4097};
#define NROWLEN (sizeof row_lens / sizeof *row_lens)

static void check_rows_reference(void) {
    for (size_t li = 0; li < NROWLEN; li++) {
        size_t n = row_lens[li], rows = 3;
        float *x = fbuf(rows * n + 1) + 1, *y = fbuf(rows * n), *w = fbuf(n), *b = fbuf(n); /* x misaligned */
        t_fill(x, rows * n, 5 + n, -3, 3); t_fill(w, n, 6, 0.5f, 1.5f); t_fill(b, n, 7, -1, 1);
        double *R = malloc(sizeof(double) * rows * n);
        char what[64];
        /* layer norm */
        locus_layer_norm(x, y, rows, n, w, b, 1e-5f);
        for (size_t r = 0; r < rows; r++) {
            double m = 0, v = 0;
            for (size_t i = 0; i < n; i++) m += x[r * n + i];
            m /= n;
            for (size_t i = 0; i < n; i++) v += (x[r * n + i] - m) * (x[r * n + i] - m);
            v /= n;
            for (size_t i = 0; i < n; i++) R[r * n + i] = (x[r * n + i] - m) / sqrt(v + 1e-5) * w[i] + b[i];
        }
        snprintf(what, sizeof what, "layer_norm %s n=%zu", locus_isa_name(), n);
        CHECK(close_enough(y, R, rows * n, 1e-5, what), "%s", what);
        /* rms norm */
        locus_rms_norm(x, y, rows, n, w, 1e-6f);
        for (size_t r = 0; r < rows; r++) {
            double ms = 0;
            for (size_t i = 0; i < n; i++) ms += (double)x[r * n + i] * x[r * n + i];
            ms /= n;
            for (size_t i = 0; i < n; i++) R[r * n + i] = x[r * n + i] / sqrt(ms + 1e-6) * w[i];
        }
        snprintf(what, sizeof what, "rms_norm %s n=%zu", locus_isa_name(), n);
        CHECK(close_enough(y, R, rows * n, 1e-5, what), "%s", what);
        /* softmax with scale */
        locus_softmax(x, y, rows, n, 0.7f);
        for (size_t r = 0; r < rows; r++) {
            double mx = -1e300, s = 0;
            for (size_t i = 0; i < n; i++) if (0.7 * x[r * n + i] > mx) mx = 0.7 * x[r * n + i];
            for (size_t i = 0; i < n; i++) s += exp(0.7 * x[r * n + i] - mx);
            for (size_t i = 0; i < n; i++) R[r * n + i] = exp(0.7 * x[r * n + i] - mx) / s;
        }
        snprintf(what, sizeof what, "softmax %s n=%zu", locus_isa_name(), n);
        CHECK(close_enough(y, R, rows * n, 1e-5, what), "%s", what);
        /* activations, in place on a copy */
        for (int kind = LOCUS_ACT_SILU; kind <= LOCUS_ACT_QUICK_GELU; kind++) {
            memcpy(y, x, rows * n * sizeof(float));
            locus_act(y, y, rows * n, kind);
            for (size_t i = 0; i < rows * n; i++) {
                double v = x[i];
                R[i] = kind == LOCUS_ACT_SILU ? v / (1 + exp(-v))
                       : kind == LOCUS_ACT_GELU_ERF ? 0.5 * v * (1 + erf(v / sqrt(2.0)))
                       : kind == LOCUS_ACT_GELU_TANH ? 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))
                                                      : v / (1 + exp(-1.702 * v));
            }
            snprintf(what, sizeof what, "act %d %s n=%zu", kind, locus_isa_name(), n);
            CHECK(close_enough(y, R, rows * n, 2e-6, what), "%s", what);
        }
        /* binary ops */
        for (int op = LOCUS_BIN_ADD; op <= LOCUS_BIN_AXPY; op++) {
            locus_binary(x, w, y, n, op, 7.5f);
            for (size_t i = 0; i < n; i++) {
                double a = x[i], c = w[i];
                double g = 0.5 * c * (1 + erf(c / sqrt(2.0))), gt = 0.5 * c * (1 + tanh(sqrt(2 / M_PI) * (c + 0.044715 * c * c * c)));
                R[i] = op == LOCUS_BIN_ADD ? a + c : op == LOCUS_BIN_SUB ? a - c : op == LOCUS_BIN_MUL ? a * c
                       : op == LOCUS_BIN_MUL_ACT_GELU_ERF ? a * g : op == LOCUS_BIN_MUL_ACT_GELU_TANH ? a * gt
                       : op == LOCUS_BIN_CFG ? a + 7.5 * (c - a) : a + 7.5 * c;
            }
            snprintf(what, sizeof what, "binary %d %s n=%zu", op, locus_isa_name(), n);
            CHECK(close_enough(y, R, n, 2e-6, what), "%s", what);
        }
        free(R);
        locus_free(x - 1); locus_free(y); locus_free(w); locus_free(b);
    }
}

static void check_groupnorm_reference(void) {
    static const int cs[][4] = {{2, 32, 17, 8}, {1, 16, 64, 16}, {2, 8, 1, 4}, {1, 64, 100, 32}};
    for (int ci = 0; ci < 4; ci++) {
        int B = cs[ci][0], C = cs[ci][1], HW = cs[ci][2], G = cs[ci][3];
        size_t n = (size_t)B * C * HW;
        float *x = fbuf(n), *y = fbuf(n), *w = fbuf(C), *b = fbuf(C);
        t_fill(x, n, 40 + ci, -2, 2); t_fill(w, C, 41, 0.5f, 1.5f); t_fill(b, C, 42, -1, 1);
        for (int act = 0; act <= 1; act++) {
            locus_group_norm(x, y, B, C, HW, G, w, b, 1e-6f, act ? LOCUS_ACT_SILU : LOCUS_ACT_NONE);
            double *R = malloc(sizeof(double) * n);
            int cpg = C / G;
            for (int bb = 0; bb < B; bb++)
                for (int g = 0; g < G; g++) {
                    const float *xg = x + ((size_t)bb * C + g * cpg) * HW;
                    size_t gs = (size_t)cpg * HW;
                    double m = 0, v = 0;
                    for (size_t i = 0; i < gs; i++) m += xg[i];
                    m /= gs;
                    for (size_t i = 0; i < gs; i++) v += (xg[i] - m) * (xg[i] - m);
                    v /= gs;
                    for (size_t i = 0; i < gs; i++) {
                        int ch = g * cpg + (int)(i / HW);
                        double t = (xg[i] - m) / sqrt(v + 1e-6) * w[ch] + b[ch];
                        R[((size_t)bb * C + g * cpg) * HW + i] = act ? t / (1 + exp(-t)) : t;
                    }
                }
            char what[64];
            snprintf(what, sizeof what, "group_norm %s case %d act %d", locus_isa_name(), ci, act);
            CHECK(close_enough(y, R, n, 1e-5, what), "%s", what);
            free(R);
        }
        locus_free(x); locus_free(y); locus_free(w); locus_free(b);
    }
}

static void check_misc_reference(void) {
    /* timestep embedding */
    static const int dims[] = {32, 33, 320, 8};
    float ts[3] = {999.0f, 10.0f, 0.5f};
    for (int di = 0; di < 4; di++)
        for (int flip = 0; flip <= 1; flip++) {
            int dim = dims[di], half = dim / 2;
            float *o = fbuf((size_t)3 * dim);
            locus_timestep_embedding(ts, 3, dim, flip, 1.0f, 1.0f, 10000.0f, o);
            double *R = malloc(sizeof(double) * 3 * dim);
            for (int i = 0; i < 3; i++) {
                for (int j = 0; j < half; j++) {
                    double fr = exp(-log(10000.0) * j / (half - 1.0)), a = ts[i] * fr;
                    R[i * dim + j] = flip ? cos(a) : sin(a);
                    R[i * dim + half + j] = flip ? sin(a) : cos(a);
                }
                if (dim % 2) R[i * dim + dim - 1] = 0;
            }
            char what[64];
            snprintf(what, sizeof what, "timestep_embedding %s dim=%d flip=%d", locus_isa_name(), dim, flip);
            /* fp32 argument rounding: |arg| up to 999, 1 ulp of it ~6e-5 */
            CHECK(close_enough(o, R, (size_t)3 * dim, 2e-4, what), "%s", what);
            free(R);
            locus_free(o);
        }
    /* upsample */
    float x[2 * 3 * 5], y[2 * 6 * 10];
    t_fill(x, 30, 9, -1, 1);
    locus_upsample_nearest2x(x, y, 1, 2, 3, 5);
    int ok = 1;
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 10; j++) ok &= y[(c * 6 + i) * 10 + j] == x[(c * 3 + i / 2) * 5 + j / 2];
    CHECK(ok, "upsample_nearest2x %s", locus_isa_name());
}

/* batched GEMM: each batch entry equals the corresponding single GEMM bit for bit (both threading modes) */
static void check_gemm_batched(void) {
    static const int cases[][4] = {{7, 5, 9, 13}, {3, 200, 150, 300}}; /* batch M N K */
    for (int c = 0; c < 2; c++) {
        int nb = cases[c][0], M = cases[c][1], N = cases[c][2], K = cases[c][3];
        float *A = fbuf((size_t)nb * M * K), *B = fbuf((size_t)nb * N * K), *C = fbuf((size_t)nb * M * N), *C1 = fbuf((size_t)M * N);
        float *bias = fbuf((size_t)nb * N);
        t_fill(A, (size_t)nb * M * K, 21, -1, 1); t_fill(B, (size_t)nb * N * K, 22, -1, 1); t_fill(bias, (size_t)nb * N, 23, -1, 1);
        locus_gemm_desc d = {0};
        d.M = M; d.N = N; d.K = K; d.A = A; d.a_rs = K; d.a_cs = 1; d.B = B; d.b_rs = 1; d.b_cs = K; /* B^T */
        d.C = C; d.ldc = N; d.bias = bias; d.bias_kind = LOCUS_UKR_BIAS_COL;
        locus_gemm_batched(&d, nb, (ptrdiff_t)M * K, (ptrdiff_t)N * K, (ptrdiff_t)M * N, N);
        size_t bad = 0;
        for (int b = 0; b < nb; b++) {
            locus_matmul(M, N, K, A + (size_t)b * M * K, 0, B + (size_t)b * N * K, 1, C1, bias + (size_t)b * N);
            bad += t_bitdiff(C + (size_t)b * M * N, C1, (size_t)M * N);
        }
        CHECK(bad == 0, "gemm_batched %s batch=%d M=%d N=%d K=%d: %zu elements differ from single GEMMs", locus_isa_name(), nb, M, N, K, bad);
        locus_free(A); locus_free(B); locus_free(C); locus_free(C1); locus_free(bias);
    }
}

/* ------------------------------------------------------------------ backward ops in the hashed workload (bwd-kernels)
 * (their reference checks are in tests/test_kernels_bwd.c; here only the bits, across processes and the
 * aarch64 build) */

static void rec(const char *name, const float *p, size_t n);

static void bwd_workload(int small) {
    { /* linear: dx, dw, db; the big case has several K blocks in dw (rows > 512) and runs threaded */
        static const int cs[][3] = {{37, 40, 24}, {5, 17, 3}, {600, 200, 96}}; /* M K N */
        for (int ci = 0; ci < (small ? 2 : 3); ci++) {
            int M = cs[ci][0], K = cs[ci][1], N = cs[ci][2];
            float *x = fbuf((size_t)M * K), *W = fbuf((size_t)N * K), *dy = fbuf((size_t)M * N);
            float *dx = fbuf((size_t)M * K), *dw = fbuf((size_t)N * K), *db = fbuf(N);
            t_fill(x, (size_t)M * K, 501, -1, 1); t_fill(W, (size_t)N * K, 502, -1, 1); t_fill(dy, (size_t)M * N, 503, -1, 1);
            locus_linear_bwd(x, W, dy, M, K, N, dx, 0, dw, db, 0);
            locus_linear_bwd(x, W, dy, M, K, N, dx, 1, dw, db, 1);
            char nm[48];
            snprintf(nm, sizeof nm, "bwd_linear%d.dx", ci); rec(nm, dx, (size_t)M * K);
            snprintf(nm, sizeof nm, "bwd_linear%d.dw", ci); rec(nm, dw, (size_t)N * K);
            snprintf(nm, sizeof nm, "bwd_linear%d.db", ci); rec(nm, db, N);
            locus_free(x); locus_free(W); locus_free(dy); locus_free(dx); locus_free(dw); locus_free(db);
        }
    }
    { /* conv: 3x3 pad 1, and 3x3 stride 2 with diffusers' (0,1,0,1) padding */
        static const int cs[][6] = {{2, 6, 9, 7, 1, 1}, {2, 5, 10, 8, 2, 0}}; /* B Cin H=W Cout stride pad */
        for (int ci = 0; ci < 2; ci++) {
            int B = cs[ci][0], Cin = cs[ci][1], H = cs[ci][2], Co = cs[ci][3], st = cs[ci][4], pd = cs[ci][5];
            int Ho = pd ? (H + 2 * pd - 3) / st + 1 : (H + 1 - 3) / st + 1, Wo = Ho;
            size_t nx = (size_t)B * Cin * H * H, nw = (size_t)Co * Cin * 9, ny = (size_t)B * Co * Ho * Wo;
            float *x = fbuf(nx), *w = fbuf(nw), *dy = fbuf(ny), *dx = fbuf(nx), *dw = fbuf(nw), *db = fbuf(Co);
            t_fill(x, nx, 511, -1, 1); t_fill(w, nw, 512, -0.5f, 0.5f); t_fill(dy, ny, 513, -1, 1);
            locus_conv2d_bwd_data(dy, B, Co, Ho, Wo, w, Cin, H, H, 3, 3, st, pd, pd, dx, 0);
            locus_conv2d_bwd_weight(dy, x, B, Cin, H, H, Co, 3, 3, st, pd, pd, Ho, Wo, dw, db, 0);
            char nm[48];
            snprintf(nm, sizeof nm, "bwd_conv%d.dx", ci); rec(nm, dx, nx);
            snprintf(nm, sizeof nm, "bwd_conv%d.dw", ci); rec(nm, dw, nw);
            snprintf(nm, sizeof nm, "bwd_conv%d.db", ci); rec(nm, db, Co);
            locus_free(x); locus_free(w); locus_free(dy); locus_free(dx); locus_free(dw); locus_free(db);
        }
    }
    { /* attention with a mask */
        int B = 2, H = 2, Tq = 17, Tk = 33, D = 8, C = H * D;
        size_t nq = (size_t)B * Tq * C, nk = (size_t)B * Tk * C, nm_ = (size_t)B * Tq * Tk;
        float *q = fbuf(nq), *k = fbuf(nk), *v = fbuf(nk), *m = fbuf(nm_), *o = fbuf(nq), *dO = fbuf(nq);
        float *dq = fbuf(nq), *dk = fbuf(nk), *dv = fbuf(nk);
        t_fill(q, nq, 521, -2, 2); t_fill(k, nk, 522, -2, 2); t_fill(v, nk, 523, -1, 1); t_fill(m, nm_, 524, -3, 0);
        t_fill(dO, nq, 525, -1, 1);
        locus_attn_desc f = {B, H, Tq, Tk, D, q, (ptrdiff_t)Tq * C, C, k, (ptrdiff_t)Tk * C, C, v, (ptrdiff_t)Tk * C, C,
                             o, (ptrdiff_t)Tq * C, C, 1.0f / sqrtf((float)D), m, (ptrdiff_t)Tq * Tk, Tk, NULL, 0};
        locus_attention_bwd(&f, dO, dq, dk, dv, 0);
        rec("bwd_attn.dq", dq, nq); rec("bwd_attn.dk", dk, nk); rec("bwd_attn.dv", dv, nk);
        locus_free(q); locus_free(k); locus_free(v); locus_free(m); locus_free(o); locus_free(dO);
        locus_free(dq); locus_free(dk); locus_free(dv);
    }
    { /* norms, activations, GEGLU, upsample, MSE */
        size_t rows = 9, n = 100, N = rows * n;
        float *x = fbuf(N), *dy = fbuf(N), *w = fbuf(n), *b = fbuf(n), *dx = fbuf(2 * N), *dw = fbuf(n), *db = fbuf(n);
        t_fill(x, N, 531, -3, 3); t_fill(dy, N, 532, -1, 1); t_fill(w, n, 533, 0.5f, 1.5f); t_fill(b, n, 534, -1, 1);
        locus_layer_norm_bwd(x, dy, rows, n, w, 1e-5f, dx, 0, dw, db, 0);
        rec("bwd_ln.dx", dx, N); rec("bwd_ln.dw", dw, n); rec("bwd_ln.db", db, n);
        locus_rms_norm_bwd(x, dy, rows, n, w, 1e-6f, dx, 0, dw, 0);
        rec("bwd_rms.dx", dx, N); rec("bwd_rms.dw", dw, n);
        locus_group_norm_bwd(x, dy, 3, 12, 25, 4, w, b, 1e-6f, LOCUS_ACT_SILU, dx, 0, dw, db, 0); /* [3,12,25] */
        rec("bwd_gn.dx", dx, N); rec("bwd_gn.dw", dw, 12); rec("bwd_gn.db", db, 12);
        char nm[48];
        for (int kind = 0; kind <= 4; kind++) {
            locus_act_bwd(x, dy, dx, N, kind, 0);
            snprintf(nm, sizeof nm, "bwd_act%d", kind); rec(nm, dx, N);
        }
        locus_geglu_bwd(x, dy, dx, rows / 2, n, 0); /* x as [4, 200], dy as [4, 100] */
        rec("bwd_geglu", dx, (rows / 2) * 2 * n);
        locus_upsample_nearest2x_bwd(x, dx, 1, 1, 15, 15, 0); /* x as [1,1,30,30] */
        rec("bwd_upsample", dx, 225);
        float loss = locus_mse_loss(x, dy, N, dx, 0.5f);
        rec("bwd_mse.grad", dx, N); rec("bwd_mse.loss", &loss, 1);
        locus_free(x); locus_free(dy); locus_free(w); locus_free(b); locus_free(dx); locus_free(dw); locus_free(db);
    }
}

/* ------------------------------------------------------------------ the deterministic workload (hashes) */

typedef struct { char name[48]; uint64_t h; } hrec;
static hrec g_h[1024];
static int g_nh;

static void rec(const char *name, const float *p, size_t n) {
    if (g_nh >= (int)(sizeof g_h / sizeof *g_h)) { fprintf(stderr, "too many hash records\n"); exit(1); }
    snprintf(g_h[g_nh].name, sizeof g_h[g_nh].name, "%s", name);
    g_h[g_nh++].h = locus_fnv1a(LOCUS_FNV_INIT, p, n * sizeof(float));
}


/* ==== broadcast rows: checked in tests/test_bcast.c; here only their workload records ==== */

/* workload records (hashed across ISAs, threads, processes and the aarch64 build) */
static void bcast_workload(void) {
    size_t G = 2, R = 300, n = 257, N = G * R * n, es = 3 * n + 1;
    float *x = fbuf(N), *y = fbuf(N), *e = fbuf(G * es), *s = fbuf(G * R);
    t_fill(x, N, 310, -3, 3); t_fill(e, G * es, 311, -1.5f, 1.5f); t_fill(s, G * R, 312, -1, 1);
    locus_layer_norm_modulate(x, y, G, R, n, 1e-6f, e + n, e, es);
    rec("bcast_modulate", y, N);
    locus_bcast_gated_add(y, x, e + 2 * n, es, G, R, n);
    rec("bcast_gated_add", y, N);
    locus_bcast_binary(x, e, es, y, G, R, n, LOCUS_BIN_MUL, 0.0f);
    rec("bcast_mul", y, N);
    locus_scale_shift_rows(x, y, G * R, n, s, s);
    rec("scale_shift_rows", y, N);
    locus_free(x); locus_free(y); locus_free(e); locus_free(s);
}
/* ==== end of broadcast rows ==== */


/* small = 1: the subset run under qemu-user (emulated FMA is slow): no multi-block GEMM */
static void workload(int small) {
    g_nh = 0;
    char nm[48];
    bwd_workload(small); /* backward ops (bwd-kernels) */
    for (size_t si = 0; si < sizeof gemm_shapes / sizeof *gemm_shapes; si++)
        for (int v = 0; v < 8; v++) {
            const mnk *s = &gemm_shapes[si];
            if (v == 5) continue; /* misaligned/ldc variant: covered by the reference checks */
            float *C = fbuf((size_t)s->M * s->N);
            run_gemm(s, v & 1, (v >> 1) & 1, (v >> 2) ? (si % 2 ? 1 : 2) : 0, 0, C);
            snprintf(nm, sizeof nm, "gemm%zu.%d", si, v);
            rec(nm, C, (size_t)s->M * s->N);
            locus_free(C);
        }
    /* one big GEMM that exercises several K, M and N blocks and the threaded split */
    if (!small) {
        mnk big = {300, 3100, 800};
        float *C = fbuf((size_t)big.M * big.N);
        run_gemm(&big, 0, 1, 1, 0, C);
        rec("gemm_big", C, (size_t)big.M * big.N);
        locus_free(C);
        /* few rows (the column-panel schedule, threads owning column ranges) with K and N tails; gemm_shapes'
         * {145, 100, 800} takes that schedule at 1 and 2 threads and the row-block one at 3 (too few panels):
         * the thread-count hash comparison checks that both give the same bits */
        mnk few = {200, 700, 1100};
        C = fbuf((size_t)few.M * few.N);
        run_gemm(&few, 1, 0, 2, 0, C);
        rec("gemm_few_rows", C, (size_t)few.M * few.N);
        locus_free(C);
    }
    for (int idx = 0; idx < 7; idx++) {
        float *y = fbuf(2 * 33 * 16 * 16);
        size_t ny;
        run_conv(idx, y, &ny);
        snprintf(nm, sizeof nm, "conv%d", idx);
        rec(nm, y, ny);
        locus_free(y);
    }
    for (size_t ci = 0; ci < sizeof attn_cases / sizeof *attn_cases; ci++) {
        const attn_case *c = &attn_cases[ci];
        size_t nq = (size_t)c->B * c->Tq * c->H * c->D, np = (size_t)c->B * c->H * c->Tq * c->Tk;
        float *o = fbuf(nq), *pr = fbuf(np);
        run_attn(c, o, pr);
        snprintf(nm, sizeof nm, "attn%zu", ci);
        rec(nm, o, nq);
        if (c->probs) { snprintf(nm, sizeof nm, "attn%zu.probs", ci); rec(nm, pr, np); }
        locus_free(o); locus_free(pr);
    }
    for (size_t li = 0; li < NROWLEN; li++) {
        size_t n = row_lens[li], rows = 5;
        float *x = fbuf(rows * n), *y = fbuf(rows * n), *w = fbuf(n), *b = fbuf(n);
        t_fill(x, rows * n, 5 + n, -3, 3); t_fill(w, n, 6, 0.5f, 1.5f); t_fill(b, n, 7, -1, 1);
        locus_layer_norm(x, y, rows, n, w, b, 1e-5f); snprintf(nm, sizeof nm, "ln%zu", n); rec(nm, y, rows * n);
        locus_rms_norm(x, y, rows, n, w, 1e-6f); snprintf(nm, sizeof nm, "rms%zu", n); rec(nm, y, rows * n);
        locus_softmax(x, y, rows, n, 0.3f); snprintf(nm, sizeof nm, "softmax%zu", n); rec(nm, y, rows * n);
        for (int kind = 1; kind <= 4; kind++) { locus_act(x, y, rows * n, kind); snprintf(nm, sizeof nm, "act%d.%zu", kind, n); rec(nm, y, rows * n); }
        for (int op = 0; op <= 6; op++) { locus_binary(x, w, y, n, op, 3.0f); snprintf(nm, sizeof nm, "bin%d.%zu", op, n); rec(nm, y, n); }
        locus_free(x); locus_free(y); locus_free(w); locus_free(b);
    }
    {
        size_t n = 2 * 64 * 300;
        float *x = fbuf(n), *y = fbuf(n), *w = fbuf(64), *b = fbuf(64);
        t_fill(x, n, 77, -2, 2); t_fill(w, 64, 78, 0.5f, 1.5f); t_fill(b, 64, 79, -1, 1);
        locus_group_norm(x, y, 2, 64, 300, 32, w, b, 1e-6f, LOCUS_ACT_SILU);
        rec("groupnorm_silu", y, n);
        locus_free(x); locus_free(y); locus_free(w); locus_free(b);
    }
    {
        float ts[2] = {999.0f, 1.0f}, o[2 * 320];
        locus_timestep_embedding(ts, 2, 320, 1, 0.0f, 1.0f, 10000.0f, o);
        rec("temb", o, 640);
    }
    {
        float r[1000];
        locus_randn(42, r, 1000);
        rec("randn42", r, 1000);
        locus_randn(7, r, 5);
        rec("randn7_small", r, 5);
    }
    bcast_workload(); /* broadcast rows (mem-bcast) */
}

static int cmp_runs(const char *label, const hrec *a, int na, const hrec *b, int nb) {
    int diff = na != nb;
    for (int i = 0; !diff && i < na; i++)
        if (a[i].h != b[i].h || strcmp(a[i].name, b[i].name)) {
            fprintf(stderr, "  %s: %s differs\n", label, a[i].name);
            diff = 1;
        }
    return !diff;
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--hash") || !strcmp(argv[1], "--hash-small"))) {
        workload(!strcmp(argv[1], "--hash-small"));
        printf("# isa=%s threads=%d\n", locus_isa_name(), locus_threads());
        for (int i = 0; i < g_nh; i++) printf("%s %016llx\n", g_h[i].name, (unsigned long long)g_h[i].h);
        return 0;
    }
    static hrec base[1024];
    int nbase = 0;
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++) {
            locus_set_threads(th);
            if (th == 1) {
                check_gemm_reference();
            }
            check_gemm_batched();
            if (th == 1) {
                check_conv_reference();
                check_attn_reference();
                check_rows_reference();
                check_groupnorm_reference();
                check_misc_reference();
            }
            workload(0);
            if (!nbase) { memcpy(base, g_h, sizeof(hrec) * g_nh); nbase = g_nh; continue; }
            char label[64];
            snprintf(label, sizeof label, "%s threads=%d vs scalar threads=1", locus_isa_name(), th);
            CHECK(cmp_runs(label, g_h, g_nh, base, nbase), "bit-identical outputs: %s", label);
        }
    }
    printf("kernel outputs compared bitwise over %d workload tensors per (ISA, threads)\n", nbase);
    return t_finish("test_kernels");
}
