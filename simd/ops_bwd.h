/* ops_bwd.h — threaded, deterministic fp32 BACKWARD operators (gradients), the counterparts of ops.h.
 *
 * The determinism contract holds for gradients exactly as for the forward (see ops.h, kernels_impl.h):
 *   - every output element (a gradient entry) is produced by ONE thread with ONE fixed-order chain;
 *   - weight and bias gradients are reductions over batch x positions: one FMA (or add) chain per element
 *     over rows in increasing order (batch-major), never per-thread partial sums combined afterwards;
 *   - row reductions (norm statistics, dot products) use the 16-lane accumulators of the row kernels;
 *   - transcendentals come from SLEEF's deterministic family through sleef_names.h.
 * So gradients are bit-identical for any thread count, any ISA (scalar/AVX2/AVX-512/NEON) and gcc/clang.
 *
 * Accumulation: `accum` != 0 continues the chain from the value already stored in the output (the value in
 * memory is the chain's start, exactly like the GEMM carries K-blocks through C), so calling an op twice
 * with accum = 1 the second time equals one chain over both inputs' rows in order.  accum = 0 overwrites.
 * Parameter-gradient outputs (dw, db) may be NULL: that gradient is then not computed (frozen parameter).
 * Aliasing: outputs must not overlap inputs, except: locus_linear_bwd's dx may be x; layer/RMS norm dx may be
 * x or dy; act_bwd dx may be x or dy; geglu_bwd dx may be x; mse grad may be a or b.  (Group norm, conv and
 * attention: no overlap.)
 * Shapes follow PyTorch: Linear weights [out, in], conv weights [Cout, Cin, kh, kw], (B,C,H,W), (B,T,C).
 */
#ifndef LOCUS_OPS_BWD_H
#define LOCUS_OPS_BWD_H

#include <stddef.h>

#include "ops.h"

/* ---- linear / GEMM ---- */

/* y[M,N] = x[M,K] . W[N,K]^T (+ b):
 *   dx[M,K] (+)= dy[M,N] . W[N,K]           one FMA chain over n per dx element
 *   dw[N,K] (+)= dy[M,N]^T . x[M,K]         one FMA chain over m = 0..M-1 per dw element
 *   db[N]   (+)= sum over m of dy[m,:]      one chain over m per element
 * Any of dx, dw, db may be NULL.  W may be NULL only when dx is NULL.  W is the plain [N,K] matrix (a weight
 * packed for the forward, nn_linear_load, must be unpacked first: locus_gemm_unpack_b_t). */
void locus_linear_bwd(const float *x, const float *W, const float *dy, int M, int K, int N, float *dx, int accum_dx,
                      float *dw, float *db, int accum_w);

/* colsum: out[j] (+)= sum over r = 0..rows-1 of x[r * ld + j], j < n (one chain per column, rows in order). */
void locus_colsum(const float *x, size_t rows, size_t n, size_t ld, float *out, int accum);

/* ---- convolution (NCHW, groups = 1; the padding convention of locus_conv2d_ex) ---- */

/* dx[B,Cin,H,W] (+)= gradient of conv2d w.r.t. its input: each dx element one chain over (co, ky, kx) in
 * that order (a transposed-convolution GEMM; taps that did not touch the element contribute an exact 0, so
 * for finite weights this is the chain over the touching taps only). */
void locus_conv2d_bwd_data(const float *dy, int B, int Cout, int Ho, int Wo, const float *w, int Cin, int H, int W, int kh,
                           int kw, int stride, int pad_t, int pad_l, float *dx, int accum);
/* Tests: force the GEMM locus_conv2d_bwd_data uses (0 automatic, 1 one per image, 2 the transposed product
 * dx^T = DY_col^T . W over all images).  The results do not depend on it (tests check). */
void locus_conv2d_bwd_data_path(int path);
/* Tests: force locus_conv2d_bwd_weight's GEMMs (0 automatic, 1 one per image, 2 one over all images'
 * positions); the results do not depend on it. */
void locus_conv2d_bwd_weight_path(int path);
/* dw[Cout,Cin,kh,kw] (+)= sum over b, oy, ox of dy * x_tap: one chain per element over (b, oy, ox) in order;
 * db[Cout] (+)= sum over (b, oy, ox) of dy.  Either may be NULL. */
void locus_conv2d_bwd_weight(const float *dy, const float *x, int B, int Cin, int H, int W, int Cout, int kh, int kw,
                             int stride, int pad_t, int pad_l, int Ho, int Wo, float *dw, float *db, int accum);

/* ---- attention ---- */

/* Backward of locus_attention (same q/k/v/o layouts and strides as the forward descriptor `f`, which must be
 * the one the forward ran with; f->o is NOT read, so its buffer may have been reused).  The probabilities
 * are read from f->probs when it is not NULL — it must then hold what the forward wrote there, [B,H,Tq,Tk]
 * — and are otherwise recomputed exactly as the forward computed them: the same bits either way.  do_ has o's layout (o_bs,
 * o_ts); dq, dk, dv have q's, k's and v's layouts and are overwritten (or accumulated into with accum); any
 * of them may be NULL (not computed).  The additive mask gets no gradient.
 *   dV = P^T dO   (one chain over queries per element)      dP = dO V^T
 *   dS = P * (dP - rowsum(P * dP))  (= rowsum(dO * O))      dQ = scale dS K,  dK = scale dS^T Q
 * dK and dV are chains over queries in order, so two calls over consecutive query ranges (the second with
 * accum) equal one call over all queries.  Memory: Tk x (a block of queries) floats per (batch, head) in flight
 * for dS, and as much again for P unless f->probs gives the forward's; at most 32 MiB unless Tk > 64K. */
void locus_attention_bwd(const locus_attn_desc *f, const float *do_, float *dq, float *dk, float *dv, int accum);
/* Tests: force the query block size of locus_attention_bwd (0: automatic, up to 32 MiB of P and dS per
 * (batch, head)).  The results do not depend on it (that is what the tests check). */
void locus_attention_bwd_block_rows(int rows);

/* ---- normalisation ---- */

/* y = LayerNorm(x) * w + b over rows of n (w may be NULL; b does not enter the gradients): dx (+)= ...,
 * dw (+)= column FMA chains of dy * xhat over rows in order, db (+)= column add chains (NULL: skip). */
void locus_layer_norm_bwd(const float *x, const float *dy, size_t rows, size_t n, const float *w, float eps, float *dx,
                          int accum_dx, float *dw, float *db, int accum_w);
/* y = x * rsqrt(mean(x^2) + eps) * w (w may be NULL); dw as for layer norm */
void locus_rms_norm_bwd(const float *x, const float *dy, size_t rows, size_t n, const float *w, float eps, float *dx,
                        int accum_dx, float *dw, int accum_w);
/* y = act(GroupNorm(x) * w + b) (act LOCUS_ACT_NONE or LOCUS_ACT_SILU, as locus_group_norm): the
 * pre-activation is recomputed from x.  dw/db: one chain per channel over (b, position) in order (FMA for
 * dw, add for db).  w, b may be NULL (1, 0). */
void locus_group_norm_bwd(const float *x, const float *dy, int B, int C, size_t HW, int G, const float *w, const float *b,
                          float eps, int act, float *dx, int accum_dx, float *dw, float *db, int accum_w);

/* ---- activations and elementwise ---- */

/* dx (+)= dy * act'(x) for LOCUS_ACT_SILU / GELU_ERF / GELU_TANH / QUICK_GELU (NONE: dx (+)= dy). */
void locus_act_bwd(const float *x, const float *dy, float *dx, size_t n, int kind, int accum);

/* GEGLU y[r, j] = x[r, j] * gelu(x[r, half + j]) for x[rows, 2*half]: dx[rows, 2*half] (+)=. */
void locus_geglu_bwd(const float *x, const float *dy, float *dx, size_t rows, size_t half, int accum);

/* dx[b,c,H,W] (+)= sum of the 2x2 block of dy[b,c,2H,2W], added in the order (0,0), (0,1), (1,0), (1,1). */
void locus_upsample_nearest2x_bwd(const float *dy, float *dx, int B, int C, int H, int W, int accum);

/* Mean squared error over n elements: returns mean((a - b)^2) (16-lane sum, then / n) and, when grad is
 * not NULL, writes grad = scale * 2 * (a - b) / n. */
float locus_mse_loss(const float *a, const float *b, size_t n, float *grad, float scale);

#endif
