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
 *   up to the sign of an exact zero result).  Below 512 pixels the same chains come from the transposed
 *   product over all images at once, dx^T = DY_col^T . W' (dx_gemm_t); strided convolutions go phase by
 *   phase over just the taps that touch each phase's pixels (dx_phases: the same chains without the zeros).
 * Bias gradient: one add chain per output channel over (b, oy, ox), threads own channels.
 */
#include <assert.h>
#include <omp.h>
#include <string.h>

#include "par.h"
#include "../core/arena.h"
#include "ops_bwd.h"

static int g_force_wpath; /* tests: 0 automatic, 1 one GEMM per image, 2 one over all images' positions */

void locus_conv2d_bwd_weight_path(int path) { g_force_wpath = path == 1 || path == 2 ? path : 0; }

/* B(k = position p, j = tap (ci, ky, kx)) of images [Cin, H, W]: k runs over (image, oy, ox) */
typedef struct {
    const float *x;
    int H, W, kh, kw, stride, pad_t, pad_l, Wo, Ho;
    size_t img; /* floats between images of x (Cin * H * W) */
} im2col_t_ctx;

#define PACK_KB 64 /* positions per block: the block's kb x ldbp destination stays in L1 while taps fill it */

static void pack_im2col_t(const void *vctx, int k0, int kc, int j0, int w, int ldbp, float *dst) {
    const im2col_t_ctx *c = vctx;
    const int khw = c->kh * c->kw, s = c->stride;
    for (int kb = 0; kb < kc; kb += PACK_KB) {
        int kend = kb + PACK_KB < kc ? kb + PACK_KB : kc;
        for (int j = 0; j < w; j++) {
            int kk = j0 + j, ci = kk / khw, r = kk % khw, ky = r / c->kw, kx = r % c->kw;
            const int P = c->Ho * c->Wo, b = (k0 + kb) / P;
            const float *plane = c->x + b * c->img + (size_t)ci * c->H * c->W; /* [H, W] */
            float *o = dst + j;                                                 /* o[k * ldbp] = B(k0 + k, j0 + j) */
            int oy = (k0 + kb) % P / c->Wo, ox = (k0 + kb) % c->Wo, k = kb;
            while (k < kend) { /* one output row segment at a time */
                if (oy == c->Ho) { /* the next image */
                    oy = 0;
                    plane += c->img;
                }
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
        const int one = kh == 1 && kw == 1 && stride == 1 && pad_t == 0 && pad_l == 0 && Ho == H && Wo == W;
        int all = g_force_wpath ? g_force_wpath == 2 : B > 1 && P < 512 && !one;
        if (all) {
            /* small images: one GEMM whose K runs over all images' positions, so dw — as large as the weights and
             * far larger than a 4x4 or 8x8 image — is written once, not read and written again per image; dy is
             * gathered into [Cout, B*P].  The chain over (b, oy, ox) is the same: the same bits. */
            float *a = locus_alloc((size_t)Cout * B * P * sizeof(float) + 64);
            assert(a);
            for (int co = 0; co < Cout; co++)
                for (int b = 0; b < B; b++) memcpy(a + ((size_t)co * B + b) * P, dy + ((size_t)b * Cout + co) * P, (size_t)P * sizeof(float));
            locus_gemm_desc d = {0};
            d.M = Cout; d.N = KT; d.K = B * P;
            d.A = a; d.a_rs = (ptrdiff_t)B * P; d.a_cs = 1;
            d.C = dw; d.ldc = KT;
            d.accum = accum;
            im2col_t_ctx ctx = {x, H, W, kh, kw, stride, pad_t, pad_l, Wo, Ho, (size_t)Cin * H * W};
            d.pack_b = pack_im2col_t; d.pack_ctx = &ctx;
            locus_gemm(&d);
            locus_free(a);
        } else {
            for (int b = 0; b < B; b++) {
                locus_gemm_desc d = {0};
                d.M = Cout; d.N = KT; d.K = P;
                const float *dyb = dy + (size_t)b * Cout * P, *xb = x + (size_t)b * Cin * H * W; /* [Cout,P], [Cin,H,W] */
                d.A = dyb; d.a_rs = P; d.a_cs = 1;
                d.C = dw; d.ldc = KT;
                d.accum = accum || b > 0;
                im2col_t_ctx ctx = {xb, H, W, kh, kw, stride, pad_t, pad_l, Wo, Ho, (size_t)Cin * H * W};
                if (one) {
                    d.B = xb; d.b_rs = 1; d.b_cs = (ptrdiff_t)H * W; /* B(p, ci) = x[ci, p] */
                } else {
                    d.pack_b = pack_im2col_t; d.pack_ctx = &ctx;
                }
                locus_gemm(&d);
            }
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

/* o[0, run) = row[tx0 + t] where 0 <= tx0 + t < Wo, else 0: zeros left of the row, a contiguous copy, zeros
 * right of it */
static void copy_row_padded(float *o, const float *row, int tx0, int run, int Wo) {
    int a = tx0 < 0 ? (-tx0 < run ? -tx0 : run) : 0;
    int e = Wo - tx0 < run ? Wo - tx0 : run;
    if (e < a) e = a;
    for (int t = 0; t < a; t++) o[t] = 0.0f;
    if (e > a) memcpy(o + a, row + tx0 + a, (size_t)(e - a) * sizeof(float));
    for (int t = e; t < run; t++) o[t] = 0.0f;
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
                if (s == 1) copy_row_padded(o + j, row, tx0, run, c->Wo);
                else {
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

/* B(k = (co, ky, kx), j = ci) = w[co, ci, ky, kx]: the weights as the right operand of the transposed
 * data-gradient GEMM, packed straight from the [Cout, Cin, kh, kw] tensor (the taps of one (co, ci) are
 * adjacent, so a panel's rows for one co come from one contiguous run of w). */
typedef struct {
    const float *w;
    int Cin, khw;
} wcol_ctx;

static void pack_wcol(const void *vctx, int k0, int kc, int j0, int w, int ldbp, float *dst) {
    const wcol_ctx *c = vctx;
    const int khw = c->khw;
    for (int k = 0; k < kc;) {
        int kk = k0 + k, co = kk / khw, r0 = kk % khw, nr = khw - r0 < kc - k ? khw - r0 : kc - k;
        const float *src = c->w + ((size_t)co * c->Cin + j0) * khw + r0; /* src[j * khw + r] = B(kk + r, j0 + j) */
        float *o = dst + (size_t)k * ldbp;
        if (khw == 1) memcpy(o, src, (size_t)w * sizeof(float));
        else if (khw == 9 && nr == 9) /* a whole 3x3 group, unrolled (1.6x faster than the loop below) */
            for (int j = 0; j < w; j++) {
                const float *s = src + (size_t)j * 9;
                float *c = o + j;
                c[0] = s[0]; c[ldbp] = s[1]; c[2 * ldbp] = s[2]; c[3 * ldbp] = s[3]; c[4 * ldbp] = s[4];
                c[5 * ldbp] = s[5]; c[6 * ldbp] = s[6]; c[7 * ldbp] = s[7]; c[8 * ldbp] = s[8];
            }
        else
            for (int j = 0; j < w; j++)
                for (int r = 0; r < nr; r++) o[(size_t)r * ldbp + j] = src[(size_t)j * khw + r];
        for (int r = 0; r < nr; r++)
            for (int j = w; j < ldbp; j++) o[(size_t)r * ldbp + j] = 0.0f;
        k += nr;
    }
}

static int g_force_path; /* tests: 0 automatic, 1 image by image, 2 transposed, 3 by phase (stride > 1) */

void locus_conv2d_bwd_data_path(int path) { g_force_path = path >= 1 && path <= 3 ? path : 0; }

/* B(k = (co, t), j = (image, phase pixel (qy, qx))) of one stride phase: input pixel (s*qy + ry, s*qx + rx)
 * reads tap t = (ky, kx) of the phase's taps at dy[co, qy + oy_off[ky], qx + ox_off[kx]] (0 outside dy) */
typedef struct {
    const float *dy; /* [B, Cout, Ho, Wo] */
    int Ho, Wo, Hq, Wq, nky, nkx;
    int oy_off[8], ox_off[8]; /* per phase tap row / column: (r + pad - k) / s, exact */
    size_t img;
} dyphase_ctx;

static void pack_dyphase(const void *vctx, int k0, int kc, int j0, int w, int ldbp, float *dst) {
    const dyphase_ctx *c = vctx;
    const int nt = c->nky * c->nkx, HWq = c->Hq * c->Wq;
    for (int k = 0; k < kc; k++) {
        int kk = k0 + k, co = kk / nt, t = kk % nt, dyo = c->oy_off[t / c->nkx], dxo = c->ox_off[t % c->nkx];
        int b = j0 / HWq, qy = j0 % HWq / c->Wq, qx = j0 % c->Wq, j = 0;
        const float *plane = c->dy + (size_t)b * c->img + (size_t)co * c->Ho * c->Wo; /* [Ho, Wo] */
        float *o = dst + (size_t)k * ldbp;
        while (j < w) { /* one phase row segment at a time */
            if (qy == c->Hq) { /* the next image */
                qy = 0;
                plane += c->img;
            }
            int run = c->Wq - qx < w - j ? c->Wq - qx : w - j, oy = qy + dyo;
            if (oy < 0 || oy >= c->Ho) {
                for (int t2 = 0; t2 < run; t2++) o[j + t2] = 0.0f;
            } else copy_row_padded(o + j, plane + (size_t)oy * c->Wo, qx + dxo, run, c->Wo);
            j += run;
            qx = 0;
            qy++;
        }
        for (j = w; j < ldbp; j++) o[j] = 0.0f;
    }
}

/* Strided convolutions by phase: input pixels (s*qy + ry, s*qx + rx) of one phase (ry, rx) are touched only by
 * the taps ky = ry + pad_t (mod s), kx = rx + pad_l (mod s), so per phase one GEMM
 *   T[Cin, B*Hq*Wq] (+)= Wp[Cin, Cout*nt] . DY_phase[Cout*nt, B*Hq*Wq]
 * over just those taps (a quarter of the full transposed product's K for stride 2), then T is scattered into
 * dx.  Each dx element is the chain over (co, ky, kx) in order with the taps that cannot touch it left out:
 * they add exactly 0 in the full product, so for finite weights the bits are those of the other paths (up to
 * the sign of an exact zero result).  Phases without taps give 0 (accum: dx unchanged). */
static void dx_phases(const float *dy, int B, int Cout, int Ho, int Wo, const float *w, int Cin, int H, int W, int kh, int kw,
                      int s, int pad_t, int pad_l, float *dx, int accum) {
    enum { MAXPH = 16 };
    const int khw = kh * kw, np = (s < H ? s : H) * (s < W ? s : W);
    const size_t img = (size_t)Cout * Ho * Wo, HW = (size_t)H * W;
    assert(s <= 4 && np <= MAXPH && kh <= 8 && kw <= 8);
    dyphase_ctx ph[MAXPH];
    int tap[MAXPH][64], pry[MAXPH], prx[MAXPH]; /* per phase: its taps' offsets ky * kw + kx in order */
    size_t woff[MAXPH + 1], toff[MAXPH + 1];    /* phase weights at wp + woff[p] ([Cin, Cout*nt]), T at t + toff[p] */
    woff[0] = toff[0] = 0;
    for (int p = 0; p < np; p++) {
        int ry = p / (s < W ? s : W), rx = p % (s < W ? s : W);
        dyphase_ctx c = {dy, Ho, Wo, (H - ry + s - 1) / s, (W - rx + s - 1) / s, 0, 0, {0}, {0}, img};
        int kys[8], kxs[8];
        for (int ky = 0; ky < kh; ky++)
            if (((ry + pad_t - ky) % s + s) % s == 0) { kys[c.nky] = ky; c.oy_off[c.nky++] = (ry + pad_t - ky) / s; }
        for (int kx = 0; kx < kw; kx++)
            if (((rx + pad_l - kx) % s + s) % s == 0) { kxs[c.nkx] = kx; c.ox_off[c.nkx++] = (rx + pad_l - kx) / s; }
        for (int a = 0; a < c.nky; a++)
            for (int e = 0; e < c.nkx; e++) tap[p][a * c.nkx + e] = kys[a] * kw + kxs[e];
        ph[p] = c;
        pry[p] = ry; prx[p] = rx;
        woff[p + 1] = woff[p] + (size_t)Cin * Cout * c.nky * c.nkx;
        toff[p + 1] = toff[p] + (size_t)Cin * B * c.Hq * c.Wq;
    }
    float *wp = locus_alloc(woff[np] * sizeof(float) + 64), *t = locus_alloc(toff[np] * sizeof(float) + 64);
    assert(wp && t);
    int nth = omp_in_parallel() || (double)Cin * Cout * khw < 262144.0 ? 1 : locus_threads();
    /* one pass over w (threads own input channels): Wp_p[ci, (co, t)] = w[co, ci, tap_p(t)] for every phase p;
     * and T_p[ci, (b, qy, qx)] = 0, or with accum dx's pixel (b, ci, s*qy + ry, s*qx + rx) */
    LOCUS_PAR_FOR(nth, for (int ci = 0; ci < Cin; ci++) {
        for (int co = 0; co < Cout; co++) {
            const float *src = w + ((size_t)co * Cin + ci) * khw;
            for (int p = 0; p < np; p++) {
                const int nt = ph[p].nky * ph[p].nkx;
                float *o = wp + woff[p] + ((size_t)ci * Cout + co) * nt;
                for (int q = 0; q < nt; q++) o[q] = src[tap[p][q]];
            }
        }
        for (int p = 0; p < np; p++) {
            const dyphase_ctx *c = &ph[p];
            float *o = t + toff[p] + (size_t)ci * B * c->Hq * c->Wq;
            for (int b = 0; b < B; b++)
                for (int qy = 0; qy < c->Hq; qy++)
                    for (int qx = 0; qx < c->Wq; qx++)
                        *o++ = accum ? dx[((size_t)b * Cin + ci) * HW + (size_t)(s * qy + pry[p]) * W + s * qx + prx[p]] : 0.0f;
        }
    });
    for (int p = 0; p < np; p++) {
        const int nt = ph[p].nky * ph[p].nkx, N = B * ph[p].Hq * ph[p].Wq;
        if (!nt) continue;
        locus_gemm_desc d = {0};
        d.M = Cin; d.N = N; d.K = Cout * nt;
        d.A = wp + woff[p]; d.a_rs = (ptrdiff_t)Cout * nt; d.a_cs = 1;
        d.C = t + toff[p]; d.ldc = N;
        d.accum = 1; /* from T: 0 or dx's values */
        d.pack_b = pack_dyphase; d.pack_ctx = &ph[p];
        locus_gemm(&d);
    }
    LOCUS_PAR_FOR(nth, for (int ci = 0; ci < Cin; ci++) {
        for (int p = 0; p < np; p++) {
            const dyphase_ctx *c = &ph[p];
            const float *o = t + toff[p] + (size_t)ci * B * c->Hq * c->Wq;
            for (int b = 0; b < B; b++)
                for (int qy = 0; qy < c->Hq; qy++)
                    for (int qx = 0; qx < c->Wq; qx++)
                        dx[((size_t)b * Cin + ci) * HW + (size_t)(s * qy + pry[p]) * W + s * qx + prx[p]] = *o++;
        }
    });
    locus_free(wp);
    locus_free(t);
}

/* The transposed product for small images: dx^T[B*H*W, Cin] (+)= DY_col^T . W', with DY_col of all images
 * built once ([KT, B*H*W], read by the GEMM as its transposed A) and the weights packed from w in place
 * (pack_wcol), so the [Cin, KT] transpose of w — as large as the weights, and for 1280 channels at 4x4
 * longer than the GEMM itself — is never written.  Each dx element is the same chain over (co, ky, kx) as
 * in dx_gemm (fma(a, b, c) = fma(b, a, c)): the same bits. */
static void dx_gemm_t(const float *w, int B, int Cin, int KT, int khw, const dycol_ctx *ctx, size_t HW, float *dx, int accum) {
    const size_t N = (size_t)B * HW;
    float *cols = locus_alloc((size_t)KT * N * sizeof(float) + 64), *t = locus_alloc(N * Cin * sizeof(float) + 64);
    assert(cols && t);
    int nt = omp_in_parallel() || (double)KT * N < 65536.0 ? 1 : locus_threads();
    LOCUS_PAR_FOR(nt, for (int k = 0; k < KT; k += 64) pack_dycol(ctx, k, KT - k < 64 ? KT - k : 64, 0, (int)N, (int)N, cols + (size_t)k * N););
    if (accum) locus_transpose(dx, t, B, Cin, (int)HW); /* [B, Cin, HW] -> [B, HW, Cin] */
    wcol_ctx wc = {w, Cin, khw};
    locus_gemm_desc d = {0};
    d.M = (int)N; d.N = Cin; d.K = KT;
    d.A = cols; d.a_rs = 1; d.a_cs = (ptrdiff_t)N;
    d.pack_b = pack_wcol; d.pack_ctx = &wc;
    d.pack_b_rows = 2 * khw; /* a panel's rows of one co are one run of 32 x khw floats: pack groups by co */
    d.C = t; d.ldc = Cin;
    d.accum = accum;
    locus_gemm(&d);
    locus_transpose(t, dx, B, (int)HW, Cin);
    locus_free(cols);
    locus_free(t);
}

void locus_conv2d_bwd_data(const float *dy, int B, int Cout, int Ho, int Wo, const float *w, int Cin, int H, int W, int kh,
                           int kw, int stride, int pad_t, int pad_l, float *dx, int accum) {
    const int khw = kh * kw, KT = Cout * khw;
    const int one = kh == 1 && kw == 1 && stride == 1 && pad_t == 0 && pad_l == 0 && Ho == H && Wo == W;
    const size_t HW = (size_t)H * W, img = (size_t)Cout * Ho * Wo;
    /* Which GEMM (both give the same bits).  Measured at 2 threads, SD1.5 shapes, batch 2, min of 5 runs (ms,
     * image by image / transposed; a machine with ~105 GFLOP/s per core):
     *   3x3, 1280 ch 4x4 15.2 / 13.8;  8x8 36.9 / 28.2;  2560 -> 1280 ch 8x8 63.9 / 51.9;
     *        640 ch 16x16 25.4 / 24.4;  320 ch 32x32 22.9 / 22.6;  640 -> 320 ch 32x32 41.5 / 42.8
     *   1x1, 1280 ch 8x8 5.24 / 3.26;  640 ch 16x16 3.41 / 3.60;  320 ch 32x32 3.57 / 4.93
     * The transposed product wins below 512 pixels: for few rows (B*H*W <= 256) the GEMM streams the weights
     * once, panel by panel, and never writes their [Cin, KT] transpose (as large as the weights, and for
     * 1280 channels at 4x4 longer than the GEMM itself).  Strided (downsampler) convolutions with at least 256
     * input pixels in all go by phase (3), a quarter of the FLOPs for stride 2; measured at 2 threads, batch 2,
     * stride 2, 3x3 (ms, transposed or image by image / by phase; a machine with ~90 GFLOP/s per core):
     *   320 ch 32x32 23.3 / 8.5;  640 ch 16x16 24.5 / 10.5;  1280 ch 8x8 25.1 / 24.9 (the weights' extra pass
     *   costs what the FLOPs save: not taken). */
    const int phased = stride > 1 && stride <= 4 && kh <= 8 && kw <= 8; /* dx_phases' table sizes */
    int path = g_force_path ? g_force_path : phased && B * HW >= 256 ? 3 : HW < 512 ? 2 : 1;
    if (B <= 0 || Cin <= 0) return;
    if (path == 3 && phased) {
        dx_phases(dy, B, Cout, Ho, Wo, w, Cin, H, W, kh, kw, stride, pad_t, pad_l, dx, accum);
        return;
    }
    if (path == 3) path = HW < 512 ? 2 : 1;
    dycol_ctx ctx = {dy, Ho, Wo, H, W, kh, kw, stride, pad_t, pad_l, img};
    if (path == 2) {
        dx_gemm_t(w, B, Cin, KT, khw, &ctx, HW, dx, accum);
        return;
    }
    /* Wt[ci, (co, ky, kx)] = w[co, ci, ky, kx]: threads own rows of Wt (for 1280 channels this copy of 59 MB
     * took a third of the 4x4 data gradient on one thread while the other waited) */
    float *wt = locus_alloc(((size_t)Cin * KT + 1) * sizeof(float));
    assert(wt);
    int nt = omp_in_parallel() || (double)Cin * KT < 262144.0 ? 1 : locus_threads();
    LOCUS_PAR_FOR(nt, for (int ci = 0; ci < Cin; ci++) {
        for (int co = 0; co < Cout; co++)
            memcpy(wt + (size_t)ci * KT + (size_t)co * khw, w + ((size_t)co * Cin + ci) * khw, (size_t)khw * sizeof(float));
    });
    for (int b = 0; b < B; b++) {
        dycol_ctx cb = {dy + b * img, Ho, Wo, H, W, kh, kw, stride, pad_t, pad_l, img};
        dx_gemm(wt, Cin, KT, &cb, one, (int)HW, dx + (size_t)b * Cin * HW, accum);
    }
    locus_free(wt);
}
