/* conv_bwd.c — gradients of 2-D convolution (NCHW, groups = 1) as GEMMs with implicit packing.
 *
 * Weight gradient, per image b in order:  dw[Cout, Cin*kh*kw] (+)= dy_b[Cout, Ho*Wo] . X_col_b^T, where
 *   X_col_b^T(p, (ci,ky,kx)) is the input tap of output position p (0 for padding), gathered by
 *   pack_im2col_t straight into GEMM panels.  The GEMM's K is the position index and every image after the
 *   first continues the chain from dw in memory, so each dw element is one FMA chain over (b, oy, ox).
 * Data gradient, per image: the transposed convolution as one GEMM
 *   dx_b[Cin, H*W] (+)= Wt[Cin, Cout*kh*kw] . DY_col_b[Cout*kh*kw, H*W], where DY_col_b((co,ky,kx), (iy,ix))
 *   is the dy element that tap reads for that input pixel, or 0 when no output position used the pixel
 *   through that tap (stride / border).  So each dx element is one FMA chain over (co, ky, kx) in order; the
 *   zero entries add exactly 0 (for finite weights the chain equals the chain over the touching taps only,
 *   up to the sign of an exact zero result).
 * Bias gradient: one add chain per output channel over (b, oy, ox), threads own channels.
 */
#include <assert.h>
#include <omp.h>
#include <string.h>

#include "par.h"
#include "../core/arena.h"
#include "ops_bwd.h"

/* B(k = position p, j = tap (ci, ky, kx)) of one image [Cin, H, W] */
typedef struct {
    const float *x;
    int H, W, kh, kw, stride, pad_t, pad_l, Wo;
} im2col_t_ctx;

#define PACK_KB 64 /* positions per block: the block's kb x ldbp destination stays in L1 while taps fill it */

static void pack_im2col_t(const void *vctx, int k0, int kc, int j0, int w, int ldbp, float *dst) {
    const im2col_t_ctx *c = vctx;
    const int khw = c->kh * c->kw, s = c->stride;
    for (int kb = 0; kb < kc; kb += PACK_KB) {
        int kend = kb + PACK_KB < kc ? kb + PACK_KB : kc;
        for (int j = 0; j < w; j++) {
            int kk = j0 + j, ci = kk / khw, r = kk % khw, ky = r / c->kw, kx = r % c->kw;
            const float *plane = c->x + (size_t)ci * c->H * c->W; /* [H, W] */
            float *o = dst + j;                                    /* o[k * ldbp] = B(k0 + k, j0 + j) */
            int oy = (k0 + kb) / c->Wo, ox = (k0 + kb) % c->Wo, k = kb;
            while (k < kend) { /* one output row segment at a time */
                int run = c->Wo - ox < kend - k ? c->Wo - ox : kend - k;
                int iy = oy * s - c->pad_t + ky, ix0 = ox * s - c->pad_l + kx;
                int ta = 0, te = 0; /* taps inside the image: t in [ta, te) */
                if (iy >= 0 && iy < c->H && ix0 + (run - 1) * s >= 0 && ix0 < c->W) {
                    ta = ix0 < 0 ? (-ix0 + s - 1) / s : 0;
                    te = (c->W - 1 - ix0) / s + 1;
                    if (te > run) te = run;
                    if (ta > te) ta = te;
                }
                const float *row = te > ta ? plane + (ptrdiff_t)iy * c->W + ix0 : plane; /* only read in [ta, te) */
                for (int t = 0; t < ta; t++) o[(size_t)(k + t) * ldbp] = 0.0f;
                for (int t = ta; t < te; t++) o[(size_t)(k + t) * ldbp] = row[(ptrdiff_t)t * s];
                for (int t = te; t < run; t++) o[(size_t)(k + t) * ldbp] = 0.0f;
                k += run;
                ox = 0;
                oy++;
            }
        }
    }
    for (int k = 0; k < kc; k++)
        for (int j = w; j < ldbp; j++) dst[(size_t)k * ldbp + j] = 0.0f;
}

void locus_conv2d_bwd_weight(const float *dy, const float *x, int B, int Cin, int H, int W, int Cout, int kh, int kw,
                             int stride, int pad_t, int pad_l, int Ho, int Wo, float *dw, float *db, int accum) {
    const int P = Ho * Wo, KT = Cin * kh * kw;
    if (dw) {
        if (B == 0 && !accum) memset(dw, 0, (size_t)Cout * KT * sizeof(float));
        for (int b = 0; b < B; b++) {
            locus_gemm_desc d = {0};
            d.M = Cout; d.N = KT; d.K = P;
            const float *dyb = dy + (size_t)b * Cout * P, *xb = x + (size_t)b * Cin * H * W; /* [Cout,P], [Cin,H,W] */
            d.A = dyb; d.a_rs = P; d.a_cs = 1;
            d.C = dw; d.ldc = KT;
            d.accum = accum || b > 0;
            im2col_t_ctx ctx = {xb, H, W, kh, kw, stride, pad_t, pad_l, Wo};
            if (kh == 1 && kw == 1 && stride == 1 && pad_t == 0 && pad_l == 0 && Ho == H && Wo == W) {
                d.B = xb; d.b_rs = 1; d.b_cs = (ptrdiff_t)H * W; /* B(p, ci) = x[ci, p] */
            } else {
                d.pack_b = pack_im2col_t; d.pack_ctx = &ctx;
            }
            locus_gemm(&d);
        }
    }
    if (db) {
        int nt = omp_in_parallel() || (double)B * Cout * P < 32768.0 ? 1 : locus_threads();
        LOCUS_PAR_FOR(nt, for (int co = 0; co < Cout; co++) {
            float s = accum ? db[co] : 0.0f;
            for (int b = 0; b < B; b++) {
                const float *r = dy + ((size_t)b * Cout + co) * P; /* [P] */
                for (int p = 0; p < P; p++) s = s + r[p];
            }
            db[co] = s;
        });
    }
}

/* B(k = (co, ky, kx), j = (image, input pixel (iy, ix))) of dy [B, Cout, Ho, Wo] */
typedef struct {
    const float *dy; /* [B, Cout, Ho, Wo]: column j = b * H * W + input pixel */
    int Ho, Wo, H, W, kh, kw, stride, pad_t, pad_l;
    size_t img; /* floats between images of dy (Cout * Ho * Wo) */
} dycol_ctx;

static void pack_dycol(const void *vctx, int k0, int kc, int j0, int w, int ldbp, float *dst) {
    const dycol_ctx *c = vctx;
    const int khw = c->kh * c->kw, s = c->stride, HW = c->H * c->W;
    for (int k = 0; k < kc; k++) {
        int kk = k0 + k, co = kk / khw, r = kk % khw, ky = r / c->kw, kx = r % c->kw;
        int b = j0 / HW, iy = j0 % HW / c->W, ix = j0 % c->W, j = 0;
        const float *plane = c->dy + (size_t)b * c->img + (size_t)co * c->Ho * c->Wo; /* [Ho, Wo] */
        float *o = dst + (size_t)k * ldbp;
        while (j < w) { /* one input row segment at a time */
            if (iy == c->H) { /* the next image */
                iy = 0;
                plane += c->img;
            }
            int run = c->W - ix < w - j ? c->W - ix : w - j;
            int ty = iy + c->pad_t - ky;
            if (ty < 0 || ty % s || ty / s >= c->Ho) {
                for (int t = 0; t < run; t++) o[j + t] = 0.0f;
            } else {
                const float *row = plane + (size_t)(ty / s) * c->Wo;
                int tx0 = ix + c->pad_l - kx; /* tx of the run's first pixel */
                if (s == 1) { /* zeros left of dy's row, a contiguous copy, zeros right of it */
                    int a = tx0 < 0 ? (-tx0 < run ? -tx0 : run) : 0;
                    int e = c->Wo - tx0 < run ? c->Wo - tx0 : run;
                    if (e < a) e = a;
                    for (int t = 0; t < a; t++) o[j + t] = 0.0f;
                    if (e > a) memcpy(o + j + a, row + tx0 + a, (size_t)(e - a) * sizeof(float));
                    for (int t = e; t < run; t++) o[j + t] = 0.0f;
                } else {
                    for (int t = 0; t < run; t++) {
                        int tx = tx0 + t;
                        o[j + t] = (tx >= 0 && tx % s == 0 && tx / s < c->Wo) ? row[tx / s] : 0.0f;
                    }
                }
            }
            j += run;
            ix = 0;
            iy++;
        }
        for (j = w; j < ldbp; j++) o[j] = 0.0f;
    }
}

/* C[Cin, N] (+)= Wt[Cin, KT] . B[KT, N] with B the dy columns of ctx (N = images x H x W; ldc = N).  one: a
 * 1x1 stride-1 convolution of a single image, whose columns are dy itself (no packing callback). */
static void dx_gemm(const float *wt, int Cin, int KT, const dycol_ctx *ctx, int one, int N, float *C, int accum) {
    locus_gemm_desc d = {0};
    d.M = Cin; d.N = N; d.K = KT;
    d.A = wt; d.a_rs = KT; d.a_cs = 1;
    d.C = C; d.ldc = N;
    d.accum = accum;
    if (one) {
        d.B = ctx->dy; d.b_rs = N; d.b_cs = 1;
    } else {
        d.pack_b = pack_dycol; d.pack_ctx = ctx;
    }
    locus_gemm(&d);
}

void locus_conv2d_bwd_data(const float *dy, int B, int Cout, int Ho, int Wo, const float *w, int Cin, int H, int W, int kh,
                           int kw, int stride, int pad_t, int pad_l, float *dx, int accum) {
    const int khw = kh * kw, KT = Cout * khw;
    /* Wt[ci, (co, ky, kx)] = w[co, ci, ky, kx] */
    float *wt = locus_alloc(((size_t)Cin * KT + 1) * sizeof(float));
    assert(wt);
    for (int ci = 0; ci < Cin; ci++)
        for (int co = 0; co < Cout; co++)
            memcpy(wt + (size_t)ci * KT + (size_t)co * khw, w + ((size_t)co * Cin + ci) * khw, (size_t)khw * sizeof(float));
    const int one = kh == 1 && kw == 1 && stride == 1 && pad_t == 0 && pad_l == 0 && Ho == H && Wo == W;
    const size_t HW = (size_t)H * W, img = (size_t)Cout * Ho * Wo;
    if (B > 1 && HW >= 128 && HW < 512) {
        /* small images: one GEMM over all of them (N = B*H*W columns), so that the weights — much larger than a
         * 16x16 image's columns — are streamed once instead of once per image; dx is gathered into and scattered
         * from a [Cin, B*H*W] buffer.  Each element keeps its chain over k: the same bits (test_kernels_bwd).
         * Measured at 2 threads, SD1.5 shapes, batch 2, interleaved runs: 640 channels at 16x16 182.6 -> 195.1
         * GFLOP/s; at 8x8 (1280 channels) the per-image GEMMs are faster (two column panels each: A is read in
         * place, not packed), so not there. */
        float *t = locus_alloc((size_t)Cin * B * HW * sizeof(float) + 64);
        assert(t);
        if (accum)
            for (int b = 0; b < B; b++)
                for (int ci = 0; ci < Cin; ci++) memcpy(t + (size_t)ci * B * HW + b * HW, dx + ((size_t)b * Cin + ci) * HW, HW * sizeof(float));
        dycol_ctx ctx = {dy, Ho, Wo, H, W, kh, kw, stride, pad_t, pad_l, img};
        dx_gemm(wt, Cin, KT, &ctx, 0, (int)(B * HW), t, accum);
        for (int b = 0; b < B; b++)
            for (int ci = 0; ci < Cin; ci++) memcpy(dx + ((size_t)b * Cin + ci) * HW, t + (size_t)ci * B * HW + b * HW, HW * sizeof(float));
        locus_free(t);
    } else {
        for (int b = 0; b < B; b++) {
            dycol_ctx ctx = {dy + b * img, Ho, Wo, H, W, kh, kw, stride, pad_t, pad_l, img};
            dx_gemm(wt, Cin, KT, &ctx, one, (int)HW, dx + (size_t)b * Cin * HW, accum);
        }
    }
    locus_free(wt);
}
