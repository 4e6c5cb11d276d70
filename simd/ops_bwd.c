/* ops_bwd.c — backward (gradient) operators for linear layers, normalisation, activations and elementwise ops
 * (see ops_bwd.h; convolution in conv_bwd.c, attention in attention_bwd.c).
 *
 * Where determinism is enforced here:
 *   - GEMM-shaped gradients (dx = dy.W, dw = dy^T.x) go through locus_gemm with `accum`, so every element is
 *     one FMA chain over the reduction index in order, continued through memory across calls;
 *   - per-row math (norm statistics, elementwise derivatives) uses the row kernels (16-lane, SLEEF);
 *   - parameter gradients of norms (dw, db) are column chains: threads own column ranges (or channels) and
 *     walk the rows in increasing order, so no partial sums are ever combined across threads.
 */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "par.h"
#include "../core/arena.h"
#include "ops_bwd.h"

#define CHUNK 4096 /* elementwise ops: fixed chunks (the partition never changes results) */
#define COLS 256   /* column-chain ops: columns per task */

static int nthreads_for(double work) {
    if (omp_in_parallel() || work < 32768.0) return 1;
    return locus_threads();
}

/* ---------------------------------------------------------------- linear */

void locus_linear_bwd(const float *x, const float *W, const float *dy, int M, int K, int N, float *dx, int accum_dx,
                      float *dw, float *db, int accum_w) {
    /* parameter gradients first: dx may then overwrite x (in place) */
    if (dw) {
        locus_gemm_desc d = {0}; /* dw[N,K] = A . x, A(i = n, k = m) = dy[m, n]: a chain over rows m */
        d.M = N; d.N = K; d.K = M;
        d.A = dy; d.a_rs = 1; d.a_cs = N;
        d.B = x; d.b_rs = K; d.b_cs = 1;
        d.C = dw; d.ldc = K;
        d.accum = accum_w;
        locus_gemm(&d);
    }
    if (db) locus_colsum(dy, (size_t)M, (size_t)N, (size_t)N, db, accum_w);
    if (dx) {
        assert(W);
        locus_gemm_desc d = {0}; /* dx[M,K] = dy[M,N] . B, B(k = n, j = kin) = W[n, kin] */
        d.M = M; d.N = K; d.K = N;
        d.A = dy; d.a_rs = N; d.a_cs = 1;
        d.B = W; d.b_rs = K; d.b_cs = 1;
        d.C = dx; d.ldc = K;
        d.accum = accum_dx;
        locus_gemm(&d);
    }
}

void locus_colsum(const float *x, size_t rows, size_t n, size_t ld, float *out, int accum) {
    const locus_row_kernels *rk = locus_k()->row;
    size_t ntask = (n + COLS - 1) / COLS;
    int nt = nthreads_for((double)rows * n);
    LOCUS_PAR_FOR(nt, for (size_t t = 0; t < ntask; t++) {
        size_t j0 = t * COLS, len = n - j0 < COLS ? n - j0 : COLS;
        if (!accum) memset(out + j0, 0, len * sizeof(float));
        for (size_t r = 0; r < rows; r++) rk->binary(out + j0, x + r * ld + j0, out + j0, len, LOCUS_BIN_ADD, 0.0f);
    });
}

/* ---------------------------------------------------------------- layer norm / RMS norm */

/* dx for rows, given per-row statistics; rms != 0: RMS norm (xhat = x * rstd, no mean term) */
static void norm_rows_dx(const float *x, const float *dy, size_t rows, size_t n, const float *w, const float *mean,
                         const float *rstd, int rms, float *dx, int accum_dx) {
    const locus_row_kernels *rk = locus_k()->row;
    int nt = nthreads_for((double)rows * n * 4);
    float *scratch = locus_alloc((size_t)(nt > 0 ? nt : 1) * 2 * (n + 16) * sizeof(float));
    assert(scratch);
    LOCUS_PAR(nt, {
        float *xh = scratch + (size_t)omp_get_thread_num() * 2 * (n + 16), *g = xh + n + 16; /* [n] each */
        LOCUS_PRAGMA(omp for schedule(static))
        for (size_t r = 0; r < rows; r++) {
            const float *xr = x + r * n, *dyr = dy + r * n; /* [n] */
            if (rms) rk->rms_apply(xr, xh, n, rstd[r], NULL);
            else rk->norm_apply(xr, xh, n, mean[r], rstd[r], NULL, NULL);
            const float *gr = dyr; /* g = dy * w */
            if (w) { rk->binary(dyr, w, g, n, LOCUS_BIN_MUL, 0.0f); gr = g; }
            float c1 = rms ? 0.0f : rk->rsum(gr, n) / (float)n;
            float c2 = rk->rdot(gr, xh, n) / (float)n;
            rk->norm_bwd_apply(gr, xh, dx + r * n, n, c1, c2, rstd[r], accum_dx);
        }
    });
    locus_free(scratch);
}

/* dw[j] (+)= chain over rows of dy[r,j] * xhat[r,j] (FMA), db[j] (+)= chain over rows of dy[r,j] */
static void norm_cols_dwdb(const float *x, const float *dy, size_t rows, size_t n, const float *mean, const float *rstd,
                           int rms, float *dw, float *db, int accum_w) {
    const locus_row_kernels *rk = locus_k()->row;
    size_t ntask = (n + COLS - 1) / COLS;
    int nt = nthreads_for((double)rows * n * 2);
    LOCUS_PAR(nt, {
        float xh[COLS]; /* one row's xhat for this column range */
        LOCUS_PRAGMA(omp for schedule(static))
        for (size_t t = 0; t < ntask; t++) {
            size_t j0 = t * COLS, len = n - j0 < COLS ? n - j0 : COLS;
            if (!accum_w) {
                if (dw) memset(dw + j0, 0, len * sizeof(float));
                if (db) memset(db + j0, 0, len * sizeof(float));
            }
            for (size_t r = 0; r < rows; r++) {
                const float *xr = x + r * n + j0, *dyr = dy + r * n + j0;
                if (dw) {
                    if (rms) rk->rms_apply(xr, xh, len, rstd[r], NULL);
                    else rk->norm_apply(xr, xh, len, mean[r], rstd[r], NULL, NULL);
                    rk->fma_acc(dw + j0, dyr, xh, len);
                }
                if (db) rk->binary(db + j0, dyr, db + j0, len, LOCUS_BIN_ADD, 0.0f);
            }
        }
    });
}

/* per-row statistics exactly as the forward computes them */
static void norm_stats(const float *x, size_t rows, size_t n, float eps, int rms, float *mean, float *rstd) {
    const locus_row_kernels *rk = locus_k()->row;
    int nt = nthreads_for((double)rows * n);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        if (rms) {
            float ms = rk->rsumsq_dev(xr, n, 0.0f) / (float)n;
            rstd[r] = 1.0f / sqrtf(ms + eps);
        } else {
            float m = rk->rsum(xr, n) / (float)n;
            float var = rk->rsumsq_dev(xr, n, m) / (float)n;
            mean[r] = m;
            rstd[r] = 1.0f / sqrtf(var + eps);
        }
    });
}

static void norm_bwd(const float *x, const float *dy, size_t rows, size_t n, const float *w, float eps, int rms,
                     float *dx, int accum_dx, float *dw, float *db, int accum_w) {
    if (!dx && !dw && !db) return;
    float *st = locus_alloc((2 * rows + 1) * sizeof(float)), *mean = st, *rstd = st + rows; /* [rows] each */
    assert(st);
    norm_stats(x, rows, n, eps, rms, mean, rstd);
    /* parameter gradients first, then dx row by row (each row read before it is written): dx may alias x or dy */
    if (dw || db) norm_cols_dwdb(x, dy, rows, n, mean, rstd, rms, dw, db, accum_w);
    if (dx) norm_rows_dx(x, dy, rows, n, w, mean, rstd, rms, dx, accum_dx);
    locus_free(st);
}

void locus_layer_norm_bwd(const float *x, const float *dy, size_t rows, size_t n, const float *w, float eps, float *dx,
                          int accum_dx, float *dw, float *db, int accum_w) {
    norm_bwd(x, dy, rows, n, w, eps, 0, dx, accum_dx, dw, db, accum_w);
}

void locus_rms_norm_bwd(const float *x, const float *dy, size_t rows, size_t n, const float *w, float eps, float *dx,
                        int accum_dx, float *dw, int accum_w) {
    norm_bwd(x, dy, rows, n, w, eps, 1, dx, accum_dx, dw, NULL, accum_w);
}

/* ---------------------------------------------------------------- group norm */

void locus_group_norm_bwd(const float *x, const float *dy, int B, int C, size_t HW, int G, const float *w, const float *b,
                          float eps, int act, float *dx, int accum_dx, float *dw, float *db, int accum_w) {
    if (!dx && !dw && !db) return;
    const locus_row_kernels *rk = locus_k()->row;
    assert(G > 0 && C % G == 0);
    const int cpg = C / G;
    const size_t gsize = (size_t)cpg * HW;
    const long nbg = (long)B * G;
    float *st = locus_alloc((2 * (size_t)nbg + 1) * sizeof(float)), *mean = st, *rstd = st + nbg; /* [B*G] each */
    /* gradient before the activation, [B, C, HW]: dy itself without activation */
    float *dpre_buf = act != LOCUS_ACT_NONE ? locus_alloc(((size_t)B * C * HW + 1) * sizeof(float)) : NULL;
    const float *dpre = dpre_buf ? dpre_buf : dy;
    int nt = nthreads_for((double)B * C * HW * 4);
    float *scratch = locus_alloc((size_t)(nt > 0 ? nt : 1) * 2 * (gsize + 16) * sizeof(float));
    assert(st && scratch && (dpre_buf || act == LOCUS_ACT_NONE));
    LOCUS_PAR(nt, {
        float *xh = scratch + (size_t)omp_get_thread_num() * 2 * (gsize + 16), *tmp = xh + gsize + 16; /* [gsize] each */
        LOCUS_PRAGMA(omp for schedule(static))
        for (long bg = 0; bg < nbg; bg++) {
            const float *xg = x + (size_t)bg * gsize, *dyg = dy + (size_t)bg * gsize; /* [cpg, HW] */
            int g = (int)(bg % G);
            float m = rk->rsum(xg, gsize) / (float)gsize;
            float var = rk->rsumsq_dev(xg, gsize, m) / (float)gsize;
            float r = 1.0f / sqrtf(var + eps);
            mean[bg] = m;
            rstd[bg] = r;
            for (int c = 0; c < cpg; c++) rk->norm_apply(xg + (size_t)c * HW, xh + (size_t)c * HW, HW, m, r, NULL, NULL);
            const float *dpg = dyg;
            if (dpre_buf) { /* pre-activation as the forward computed it, then dpre = dy * act'(pre) */
                float *dp = dpre_buf + (size_t)bg * gsize;
                for (int c = 0; c < cpg; c++) {
                    int ch = g * cpg + c;
                    float *pc = tmp + (size_t)c * HW;
                    rk->scale_shift(xh + (size_t)c * HW, pc, HW, w ? w[ch] : 1.0f, b ? b[ch] : 0.0f);
                    rk->act_bwd(pc, dyg + (size_t)c * HW, dp + (size_t)c * HW, HW, act, 0);
                }
                dpg = dp;
            }
            if (dx) {
                const float *gg = dpg; /* g = dpre * w[channel] */
                if (w) {
                    for (int c = 0; c < cpg; c++)
                        rk->scale_shift(dpg + (size_t)c * HW, tmp + (size_t)c * HW, HW, w[g * cpg + c], 0.0f);
                    gg = tmp;
                }
                float c1 = rk->rsum(gg, gsize) / (float)gsize;
                float c2 = rk->rdot(gg, xh, gsize) / (float)gsize;
                rk->norm_bwd_apply(gg, xh, dx + (size_t)bg * gsize, gsize, c1, c2, r, accum_dx);
            }
        }
    });
    if (dw || db) {
        /* one chain per channel over (b, position) in order; threads own channels */
        LOCUS_PAR(nt, {
            float *xh = scratch + (size_t)omp_get_thread_num() * 2 * (gsize + 16); /* [HW] */
            LOCUS_PRAGMA(omp for schedule(static))
            for (int c = 0; c < C; c++) {
                int g = c / cpg;
                float sw = dw && accum_w ? dw[c] : 0.0f, sb = db && accum_w ? db[c] : 0.0f;
                for (int bb = 0; bb < B; bb++) {
                    const float *dp = dpre + ((size_t)bb * C + c) * HW; /* [HW] */
                    if (dw) {
                        rk->norm_apply(x + ((size_t)bb * C + c) * HW, xh, HW, mean[(long)bb * G + g], rstd[(long)bb * G + g], NULL, NULL);
                        sw = rk->fma_chain(dp, xh, HW, sw);
                    }
                    if (db)
                        for (size_t p = 0; p < HW; p++) sb = sb + dp[p];
                }
                if (dw) dw[c] = sw;
                if (db) db[c] = sb;
            }
        });
    }
    locus_free(scratch);
    locus_free(dpre_buf);
    locus_free(st);
}

/* ---------------------------------------------------------------- activations and elementwise */

void locus_act_bwd(const float *x, const float *dy, float *dx, size_t n, int kind, int accum) {
    const locus_row_kernels *rk = locus_k()->row;
    size_t nch = (n + CHUNK - 1) / CHUNK;
    int nt = nthreads_for((double)n * 8);
    LOCUS_PAR_FOR(nt, for (size_t c = 0; c < nch; c++) {
        size_t o = c * CHUNK, len = n - o < CHUNK ? n - o : CHUNK;
        rk->act_bwd(x + o, dy + o, dx + o, len, kind, accum);
    });
}

void locus_geglu_bwd(const float *x, const float *dy, float *dx, size_t rows, size_t half, int accum) {
    const locus_row_kernels *rk = locus_k()->row;
    int nt = nthreads_for((double)rows * half * 8);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * 2 * half; /* [2*half]: value | gate */
        float *dxr = dx + r * 2 * half;
        rk->geglu_bwd(xr, xr + half, dy + r * half, dxr, dxr + half, half, accum);
    });
}

/* pure adds in a fixed order: identical on every ISA by construction */
void locus_upsample_nearest2x_bwd(const float *dy, float *dx, int B, int C, int H, int W, int accum) {
    int nt = nthreads_for((double)B * C * H * W * 4);
    LOCUS_PAR_FOR(nt, for (long p = 0; p < (long)B * C; p++) {
        const float *dyp = dy + (size_t)p * 4 * H * W; /* [2H, 2W] */
        float *dxp = dx + (size_t)p * H * W;            /* [H, W] */
        for (int i = 0; i < H; i++) {
            const float *r0 = dyp + (size_t)(2 * i) * 2 * W, *r1 = r0 + 2 * W;
            float *o = dxp + (size_t)i * W;
            for (int j = 0; j < W; j++) {
                float s = accum ? o[j] + r0[2 * j] : r0[2 * j];
                s = s + r0[2 * j + 1];
                s = s + r1[2 * j];
                o[j] = s + r1[2 * j + 1];
            }
        }
    });
}

float locus_mse_loss(const float *a, const float *b, size_t n, float *grad, float scale) {
    if (n == 0) return 0.0f;
    float c = (float)(2.0 * (double)scale / (double)n); /* grad = (a - b) * c */
    return locus_k()->row->sqdiff(a, b, n, grad, c) / (float)n;
}
