/* ops.h — threaded, deterministic fp32 operators built on the kernel table (kernels.h).
 *
 * Work is split across OpenMP threads by OUTPUT: every output element is produced by exactly one thread with
 * the same sequence of operations whatever the thread count, so results are bit-identical for 1, 2, 3, ...
 * threads and (through the kernel table's contract) for every ISA.  Shapes follow PyTorch: (B,C,H,W) for
 * images, (B,T,C) for sequences, Linear weights (out_features, in_features).
 */
#ifndef LOCUS_OPS_H
#define LOCUS_OPS_H

#include <stddef.h>

#include "kernels.h"

/* ---- GEMM ---- */

/* Fills a packed B panel: dst[k * ldbp + j] = B(k0 + k, j0 + j) for k < kc, j < w; zero for w <= j < ldbp. */
typedef void (*locus_pack_b_fn)(const void *ctx, int k0, int kc, int j0, int w, int ldbp, float *dst);

typedef struct {
    int M, N, K;
    const float *A; ptrdiff_t a_rs, a_cs; /* A(i,k) = A[i*a_rs + k*a_cs] */
    const float *B; ptrdiff_t b_rs, b_cs; /* B(k,j) = B[k*b_rs + j*b_cs] (ignored when pack_b is set) */
    float *C; ptrdiff_t ldc;              /* C(i,j) = C[i*ldc + j] */
    const float *bias; unsigned bias_kind; /* 0, LOCUS_UKR_BIAS_COL (bias[j]) or LOCUS_UKR_BIAS_ROW (bias[i]) */
    locus_pack_b_fn pack_b; const void *pack_ctx;
    int pack_b_rows;                      /* optional hint for pack_b: K rows per call when panels are packed in
                                           * groups (the few-rows schedule) — for a source whose panel rows are
                                           * short runs of memory; 0: one call per panel and K block */
    const float *packed_b;                /* optional: B already packed by locus_gemm_pack_b (then B/pack_b unused) */
    int accum;                            /* != 0: each C(i,j) chain starts from the value already in C (as the
                                           * later K-blocks do), so two GEMMs with accum on the second equal one
                                           * chain over both K ranges; bias, if any, is still added at the end */
} locus_gemm_desc;

/* C (+)= A.B (+ bias), each C(i,j) one FMA chain over k = 0..K-1 in order (from 0, or from C when d->accum),
 * then + bias.  Threaded over output
 * tiles.  locus_gemm_serial runs on the calling thread only (for use inside parallel tasks). */
void locus_gemm(const locus_gemm_desc *d);
void locus_gemm_serial(const locus_gemm_desc *d);

/* Pack all of B (K x N, from d's B strides or pack_b) once, for reuse by many GEMMs with the same B and
 * d->packed_b set (weights, attention keys/values).  Size in floats from locus_gemm_packed_b_floats; the
 * layout belongs to the active kernel table (pack again after locus_kernels_force). */
size_t locus_gemm_packed_b_floats(int N, int K);
void locus_gemm_pack_b(const locus_gemm_desc *d, float *dst);
/* Inverse for a linear layer's weight W [N,K] (B(k,j) = W[j*K + k]) packed for a table with panel width nr:
 * writes W back (exact; used when the kernel table changed after the weights were packed). */
void locus_gemm_unpack_b_t(const float *packed, int N, int K, int nr, float *W);

/* Multiply-adds x 2 done by all GEMMs (and so convolutions and attention) since start: for FLOP/s reports. */
double locus_gemm_flops(void);

/* Row-major convenience: C[M,N] = op(A) . op(B) (+ bias[N]); op = transpose when trans != 0.
 *   A is [M,K] (or [K,M] when transA), B is [K,N] (or [N,K] when transB). */
void locus_matmul(int M, int N, int K, const float *A, int transA, const float *B, int transB, float *C, const float *bias);

/* Batched: for b < batch, the GEMM of `d` with A, B, C (and bias) advanced by b * {a,b,c,bias}_bs floats.
 * Many small GEMMs run one per thread; large ones each use all threads.  Same bits either way. */
void locus_gemm_batched(const locus_gemm_desc *d, int batch, ptrdiff_t a_bs, ptrdiff_t b_bs, ptrdiff_t c_bs, ptrdiff_t bias_bs);

/* torch.nn.Linear: y[M,N] = x[M,K] . W[N,K]^T + b[N] (b may be NULL). */
void locus_linear(const float *x, int M, int K, const float *W, const float *b, int N, float *y);

/* ---- convolution (NCHW, groups = 1) ---- */

/* y[B,Cout,Ho,Wo] = conv2d(x[B,Cin,H,W], w[Cout,Cin,kh,kw]) + bias[Cout] (bias may be NULL);
 * Ho = (H + 2*pad - kh)/stride + 1.  Each output: one FMA chain over (ci, ky, kx) in that order. */
void locus_conv2d(const float *x, int B, int Cin, int H, int W, const float *w, const float *bias, int Cout, int kh,
                  int kw, int stride, int pad, float *y);

/* General padding: pad_t/pad_l zeros before the first row/column; the output size Ho x Wo is given, and
 * reads past the bottom/right edge are zeros (so F.pad(x, (0,1,0,1)) + conv(pad 0) is pad_t = pad_l = 0 with
 * Ho = (H + 1 - kh)/stride + 1). */
void locus_conv2d_ex(const float *x, int B, int Cin, int H, int W, const float *w, const float *bias, int Cout, int kh,
                     int kw, int stride, int pad_t, int pad_l, int Ho, int Wo, float *y);

/* ---- attention ---- */

typedef struct {
    int B, H, Tq, Tk, D;                     /* batch, heads, query/key lengths, head dim */
    const float *q; ptrdiff_t q_bs, q_ts;    /* q(b,t,h,d) = q[b*q_bs + t*q_ts + h*D + d] */
    const float *k; ptrdiff_t k_bs, k_ts;
    const float *v; ptrdiff_t v_bs, v_ts;
    float *o; ptrdiff_t o_bs, o_ts;          /* output, same layout */
    float scale;                             /* applied to q.k before softmax */
    const float *mask; ptrdiff_t mask_bs, mask_qs; /* optional additive mask(b,i,j) = mask[b*mask_bs + i*mask_qs + j] */
    float *probs;                            /* optional: softmax probabilities [B,H,Tq,Tk] are written here */
    ptrdiff_t mask_hs;                       /* per-head mask stride: mask(b,h,i,j) adds h*mask_hs (T5 position bias) */
} locus_attn_desc;

/* o = softmax(scale * q.k^T + mask) . v per (batch, head), tiled over query blocks and threaded over
 * batch x heads x query blocks.  Scores: one FMA chain over d; outputs: one FMA chain over keys in order. */
void locus_attention(const locus_attn_desc *d);

/* ---- normalisation, activations, elementwise ---- */

/* y[r,:] = LayerNorm(x[r,:]) over n elements (biased variance), w/b may be NULL. */
void locus_layer_norm(const float *x, float *y, size_t rows, size_t n, const float *w, const float *b, float eps);

/* y[r,:] = x * 1/sqrt(mean(x^2) + eps) * w   (T5 / SD3 qk-norm), w may be NULL. */
void locus_rms_norm(const float *x, float *y, size_t rows, size_t n, const float *w, float eps);

/* GroupNorm over x[B,C,HW] with G groups, per-channel affine w/b, then optional activation (LOCUS_ACT_*). */
void locus_group_norm(const float *x, float *y, int B, int C, size_t HW, int G, const float *w, const float *b,
                      float eps, int act);

/* y[r,:] = softmax(x[r,:] * scale) */
void locus_softmax(const float *x, float *y, size_t rows, size_t n, float scale);

void locus_act(const float *x, float *y, size_t n, int kind);

/* GEGLU on rows: y[r, :half] = x[r, :half] * gelu(x[r, half:]) for x[rows, 2*half] */
void locus_geglu(const float *x, float *y, size_t rows, size_t half);

/* y[b, j, i] = x[b, i, j] for x[B, R, C] (batched 2-D transpose) */
void locus_transpose(const float *x, float *y, int B, int R, int C);
void locus_binary(const float *a, const float *b, float *y, size_t n, int op, float alpha);
void locus_scale_shift(const float *x, float *y, size_t n, float s, float t);

/* ---- broadcast rows (one row, or one scalar per row, across many rows) ---- */
/* Threaded over rows: each output row is computed by one thread with the same row-kernel calls as a per-row
 * loop of locus_binary / locus_scale_shift, so results are bit-identical to that loop for every thread count
 * and ISA.  Layout: G groups (batch items) of R rows of n floats, x[g,r,:] = x[(g*R + r)*n + :]; the
 * broadcast rows of group g start at row + g*rs (rs = row stride in floats, e.g. the AdaLN chunk stride). */

/* y[g,r,:] = x[g,r,:] (op) row[g*rs + :], op and alpha as locus_binary (LOCUS_BIN_*).  y may alias x. */
void locus_bcast_binary(const float *x, const float *row, size_t rs, float *y, size_t G, size_t R, size_t n, int op, float alpha);

/* AdaLN modulation (diffusers AdaLayerNormZero / AdaLayerNormContinuous):
 *   y[g,r,:] = LayerNorm(x[g,r,:]) * (1 + scale[g*es + :]) + shift[g*es + :]
 * LayerNorm without affine, biased variance, eps.  Four fp32 roundings per element, in this order: the
 * normalised value (as locus_layer_norm), 1 + scale, the product, the sum — the same bits as
 * locus_layer_norm followed by two elementwise ops.  y may alias x. */
void locus_layer_norm_modulate(const float *x, float *y, size_t G, size_t R, size_t n, float eps, const float *scale,
                               const float *shift, size_t es);

/* Gated residual: h[g,r,:] += gate[g*es + :] * a[g,r,:]  (the product rounded to fp32, then the sum; the
 * same bits as locus_binary MUL into a temporary then ADD). */
void locus_bcast_gated_add(float *h, const float *a, const float *gate, size_t es, size_t G, size_t R, size_t n);

/* One scalar pair per row: y[r,:] = x[r,:] * s[r] + t[r] (multiply, then add, as locus_scale_shift);
 * s == NULL means 1, t == NULL means 0.  y may alias x.  (UNet: h + temb[:, :, None, None] over HW.) */
void locus_scale_shift_rows(const float *x, float *y, size_t rows, size_t n, const float *s, const float *t);

/* ---- end of broadcast rows ---- */

/* y[b,c,2H,2W] = nearest 2x upsample of x[b,c,H,W] */
void locus_upsample_nearest2x(const float *x, float *y, int B, int C, int H, int W);

/* diffusers get_timestep_embedding: out[n, dim] for timesteps t[n]. */
void locus_timestep_embedding(const float *t, int n, int dim, int flip_sin_to_cos, float downscale_freq_shift,
                              float scale, float max_period, float *out);

#endif
