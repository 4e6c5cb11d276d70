/* conv.c — 2-D convolution (NCHW, groups = 1) as a GEMM with implicit im2col packing.
 *
 * Per image: C[Cout, Ho*Wo] = W[Cout, Cin*kh*kw] . X_col[Cin*kh*kw, Ho*Wo] + bias.  X_col is never built:
 * the GEMM driver asks for packed panels and pack_im2col gathers them straight from the input, writing 0 for
 * padding.  The reduction order is (ci, ky, kx), one FMA chain per output.
 */
#include <string.h>

#include "ops.h"

typedef struct {
    const float *x; /* one image [Cin, H, W] */
    int H, W, kh, kw, stride, pad_t, pad_l, Wo;
} im2col_ctx;

static void pack_im2col(const void *vctx, int k0, int kc, int j0, int w, int ldbp, float *dst) {
    const im2col_ctx *c = vctx;
    const int khw = c->kh * c->kw;
    for (int k = 0; k < kc; k++) {
        int kk = k0 + k, ci = kk / khw, r = kk % khw, ky = r / c->kw, kx = r % c->kw;
        const float *plane = c->x + (size_t)ci * c->H * c->W;
        float *o = dst + (size_t)k * ldbp;
        int oy = j0 / c->Wo, ox = j0 % c->Wo, j = 0;
        /* one output row segment at a time: a strided (stride 1: contiguous) copy with zeros at borders */
        while (j < w) {
            int run = c->Wo - ox < w - j ? c->Wo - ox : w - j;
            int iy = oy * c->stride - c->pad_t + ky;
            if (iy < 0 || iy >= c->H) {
                for (int t = 0; t < run; t++) o[j + t] = 0.0f;
            } else {
                const float *row = plane + (size_t)iy * c->W;
                int ix = ox * c->stride - c->pad_l + kx;
                if (c->stride == 1 && ix >= 0 && ix + run <= c->W) {
                    memcpy(o + j, row + ix, (size_t)run * sizeof(float));
                } else {
                    for (int t = 0; t < run; t++, ix += c->stride) o[j + t] = (ix >= 0 && ix < c->W) ? row[ix] : 0.0f;
                }
            }
            j += run;
            ox = 0;
            oy++;
        }
        for (j = w; j < ldbp; j++) o[j] = 0.0f;
    }
}

void locus_conv2d_ex(const float *x, int B, int Cin, int H, int W, const float *w, const float *bias, int Cout, int kh,
                     int kw, int stride, int pad_t, int pad_l, int Ho, int Wo, float *y) {
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * Cin * H * W;
        locus_gemm_desc d = {0};
        d.M = Cout; d.N = Ho * Wo; d.K = Cin * kh * kw;
        d.A = w; d.a_rs = d.K; d.a_cs = 1;
        d.C = y + (size_t)b * Cout * Ho * Wo; d.ldc = d.N;
        d.bias = bias; d.bias_kind = bias ? LOCUS_UKR_BIAS_ROW : 0;
        im2col_ctx ctx = {xb, H, W, kh, kw, stride, pad_t, pad_l, Wo};
        if (kh == 1 && kw == 1 && stride == 1 && pad_t == 0 && pad_l == 0 && Ho == H && Wo == W) {
            d.B = xb; d.b_rs = (ptrdiff_t)H * W; d.b_cs = 1;
        } else {
            d.pack_b = pack_im2col; d.pack_ctx = &ctx;
        }
        locus_gemm(&d);
    }
}

void locus_conv2d(const float *x, int B, int Cin, int H, int W, const float *w, const float *bias, int Cout, int kh,
                  int kw, int stride, int pad, float *y) {
    int Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
    locus_conv2d_ex(x, B, Cin, H, W, w, bias, Cout, kh, kw, stride, pad, pad, Ho, Wo, y);
}
