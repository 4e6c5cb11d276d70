/* ops.c — threaded drivers for normalisation, softmax, activations and elementwise ops (see ops.h).
 * Threads split rows (or fixed 4096-element chunks); each row/element is computed by one row kernel call,
 * so the partition never changes results. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "par.h"
#include "ops.h"

#define CHUNK 4096

static int nthreads_for(double work) {
    if (omp_in_parallel() || work < 32768.0) return 1;
    return locus_threads();
}

void locus_layer_norm(const float *x, float *y, size_t rows, size_t n, const float *w, const float *b, float eps) {
    const locus_row_kernels *rk = locus_k()->row;
    int nt = nthreads_for((double)rows * n);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float mean = rk->rsum(xr, n) / (float)n;
        float var = rk->rsumsq_dev(xr, n, mean) / (float)n;
        float rstd = 1.0f / sqrtf(var + eps);
        rk->norm_apply(xr, y + r * n, n, mean, rstd, w, b);
    });
}

void locus_rms_norm(const float *x, float *y, size_t rows, size_t n, const float *w, float eps) {
    const locus_row_kernels *rk = locus_k()->row;
    int nt = nthreads_for((double)rows * n);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float ms = rk->rsumsq_dev(xr, n, 0.0f) / (float)n;
        float rstd = 1.0f / sqrtf(ms + eps);
        rk->rms_apply(xr, y + r * n, n, rstd, w);
    });
}

void locus_group_norm(const float *x, float *y, int B, int C, size_t HW, int G, const float *w, const float *b,
                      float eps, int act) {
    const locus_row_kernels *rk = locus_k()->row;
    int cpg = C / G;
    size_t gsize = (size_t)cpg * HW;
    int nt = nthreads_for((double)B * C * HW);
    LOCUS_PAR_FOR(nt, for (long bg = 0; bg < (long)B * G; bg++) {
        const float *xg = x + (size_t)bg * gsize;
        float *yg = y + (size_t)bg * gsize;
        float mean = rk->rsum(xg, gsize) / (float)gsize;
        float var = rk->rsumsq_dev(xg, gsize, mean) / (float)gsize;
        float rstd = 1.0f / sqrtf(var + eps);
        int g = (int)(bg % G);
        for (int c = 0; c < cpg; c++) {
            int ch = g * cpg + c;
            /* ((x - mean) * rstd) * w + b with scalar w, b: scale_shift on the normalised row */
            rk->norm_apply(xg + (size_t)c * HW, yg + (size_t)c * HW, HW, mean, rstd, NULL, NULL);
            rk->scale_shift(yg + (size_t)c * HW, yg + (size_t)c * HW, HW, w ? w[ch] : 1.0f, b ? b[ch] : 0.0f);
            if (act != LOCUS_ACT_NONE) rk->act(yg + (size_t)c * HW, yg + (size_t)c * HW, HW, act);
        }
    });
}

void locus_softmax(const float *x, float *y, size_t rows, size_t n, float scale) {
    const locus_row_kernels *rk = locus_k()->row;
    int nt = nthreads_for((double)rows * n * 8);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) rk->softmax(x + r * n, y + r * n, n, scale, NULL););
}

void locus_act(const float *x, float *y, size_t n, int kind) {
    const locus_row_kernels *rk = locus_k()->row;
    size_t nch = (n + CHUNK - 1) / CHUNK;
    int nt = nthreads_for((double)n * 8);
    LOCUS_PAR_FOR(nt, for (size_t c = 0; c < nch; c++) {
        size_t o = c * CHUNK, len = n - o < CHUNK ? n - o : CHUNK;
        rk->act(x + o, y + o, len, kind);
    });
}

void locus_geglu(const float *x, float *y, size_t rows, size_t half) {
    const locus_row_kernels *rk = locus_k()->row;
    int nt = nthreads_for((double)rows * half * 8);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) rk->binary(x + r * 2 * half, x + r * 2 * half + half, y + r * half, half, LOCUS_BIN_MUL_ACT_GELU_ERF, 0.0f););
}

void locus_transpose(const float *x, float *y, int B, int R, int C) {
    int nt = nthreads_for((double)B * R * C);
    enum { TB = 32 };
    int nbr = (R + TB - 1) / TB;
    LOCUS_PAR_FOR(nt, for (long t = 0; t < (long)B * nbr; t++) {
        int b = (int)(t / nbr), r0 = (int)(t % nbr) * TB, r1 = r0 + TB < R ? r0 + TB : R;
        const float *xb = x + (size_t)b * R * C;
        float *yb = y + (size_t)b * R * C;
        for (int c0 = 0; c0 < C; c0 += TB) {
            int c1 = c0 + TB < C ? c0 + TB : C;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++) yb[(size_t)c * R + r] = xb[(size_t)r * C + c];
        }
    });
}

void locus_binary(const float *a, const float *b, float *y, size_t n, int op, float alpha) {
    const locus_row_kernels *rk = locus_k()->row;
    size_t nch = (n + CHUNK - 1) / CHUNK;
    int nt = nthreads_for((double)n);
    LOCUS_PAR_FOR(nt, for (size_t c = 0; c < nch; c++) {
        size_t o = c * CHUNK, len = n - o < CHUNK ? n - o : CHUNK;
        rk->binary(a + o, b + o, y + o, len, op, alpha);
    });
}

void locus_scale_shift(const float *x, float *y, size_t n, float s, float t) {
    const locus_row_kernels *rk = locus_k()->row;
    size_t nch = (n + CHUNK - 1) / CHUNK;
    int nt = nthreads_for((double)n);
    LOCUS_PAR_FOR(nt, for (size_t c = 0; c < nch; c++) {
        size_t o = c * CHUNK, len = n - o < CHUNK ? n - o : CHUNK;
        rk->scale_shift(x + o, y + o, len, s, t);
    });
}

/* ==== broadcast rows (see ops.h) ====
 * One row (or one scalar pair) per group, applied to every row of the group; threads split the G*R rows.  Each
 * row makes the same row-kernel calls, with the same operands in the same order, as the per-row loops these
 * ops replace (models/mmdit.c modulate/gated_add, the UNet resnet's temb add): elementwise kernels give the
 * same bits whatever the column chunking, so the column chunks below (sized for stack temporaries) change
 * nothing.  tests/test_kernels.c checks bit-equality with the per-row formulation for every ISA and 1/2/3
 * threads. */
enum { BCAST_COLS = 256 }; /* column chunk of the per-row temporaries (on each thread's stack) */

void locus_bcast_binary(const float *x, const float *row, size_t rs, float *y, size_t G, size_t R, size_t n, int op, float alpha) {
    const locus_row_kernels *rk = locus_k()->row;
    size_t rows = G * R;
    int nt = nthreads_for((double)rows * n);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) rk->binary(x + r * n, row + r / R * rs, y + r * n, n, op, alpha););
}

void locus_layer_norm_modulate(const float *x, float *y, size_t G, size_t R, size_t n, float eps, const float *scale,
                               const float *shift, size_t es) {
    const locus_row_kernels *rk = locus_k()->row;
    size_t rows = G * R;
    int nt = nthreads_for((double)rows * n);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n, *sc = scale + r / R * es, *sh = shift + r / R * es; /* xr: [n] */
        float *yr = y + r * n;                                                            /* yr: [n] */
        /* the statistics exactly as locus_layer_norm computes them */
        float mean = rk->rsum(xr, n) / (float)n;
        float var = rk->rsumsq_dev(xr, n, mean) / (float)n;
        float rstd = 1.0f / sqrtf(var + eps);
        float s1[BCAST_COLS]; /* 1 + scale, one chunk */
        for (size_t o = 0; o < n; o += BCAST_COLS) {
            size_t len = n - o < BCAST_COLS ? n - o : BCAST_COLS;
            for (size_t j = 0; j < len; j++) s1[j] = 1.0f + sc[o + j];
            /* ((x - mean) * rstd) * s1 + shift: the LayerNorm value, then the MUL and the ADD of the per-row loop */
            rk->norm_apply(xr + o, yr + o, len, mean, rstd, s1, sh + o);
        }
    });
}

void locus_bcast_gated_add(float *h, const float *a, const float *gate, size_t es, size_t G, size_t R, size_t n) {
    const locus_row_kernels *rk = locus_k()->row;
    size_t rows = G * R;
    int nt = nthreads_for((double)rows * n);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) {
        const float *ar = a + r * n, *gr = gate + r / R * es; /* ar, gr: [n] */
        float *hr = h + r * n;                                /* hr: [n] */
        float t[BCAST_COLS];                                  /* gate * a, one chunk */
        for (size_t o = 0; o < n; o += BCAST_COLS) {
            size_t len = n - o < BCAST_COLS ? n - o : BCAST_COLS;
            rk->binary(gr + o, ar + o, t, len, LOCUS_BIN_MUL, 0.0f);
            rk->binary(hr + o, t, hr + o, len, LOCUS_BIN_ADD, 0.0f);
        }
    });
}

void locus_scale_shift_rows(const float *x, float *y, size_t rows, size_t n, const float *s, const float *t) {
    const locus_row_kernels *rk = locus_k()->row;
    int nt = nthreads_for((double)rows * n);
    LOCUS_PAR_FOR(nt, for (size_t r = 0; r < rows; r++) rk->scale_shift(x + r * n, y + r * n, n, s ? s[r] : 1.0f, t ? t[r] : 0.0f););
}
/* ==== end of broadcast rows ==== */

/* pure data movement: no arithmetic, identical on every ISA by construction */
void locus_upsample_nearest2x(const float *x, float *y, int B, int C, int H, int W) {
    int nt = nthreads_for((double)B * C * H * W);
    LOCUS_PAR_FOR(nt, for (long p = 0; p < (long)B * C; p++) {
        const float *xp = x + (size_t)p * H * W;
        float *yp = y + (size_t)p * 4 * H * W;
        for (int i = 0; i < H; i++) {
            float *r0 = yp + (size_t)(2 * i) * 2 * W;
            for (int j = 0; j < W; j++) r0[2 * j] = r0[2 * j + 1] = xp[(size_t)i * W + j];
            memcpy(r0 + 2 * W, r0, (size_t)2 * W * sizeof(float));
        }
    });
}

void locus_timestep_embedding(const float *t, int n, int dim, int flip_sin_to_cos, float downscale_freq_shift,
                              float scale, float max_period, float *out) {
    const locus_row_kernels *rk = locus_k()->row;
    /* torch evaluates -math.log(max_period) in double and rounds it to fp32 when multiplying the fp32 arange */
    float c = (float)-log((double)max_period);
    for (int i = 0; i < n; i++)
        rk->timestep_embed(t[i], out + (size_t)i * dim, dim, flip_sin_to_cos, downscale_freq_shift, scale, c);
}
