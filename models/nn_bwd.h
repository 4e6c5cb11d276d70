/* nn_bwd.h — hand-written backward passes (llm.c style) of the diffusers building blocks in nn.h.
 *
 * The saved-activation story: every module with internal state has a "training forward"
 * (nn_<module>_fwd_train) that computes EXACTLY the inference forward (same kernels, same order, so the same
 * output bits as nn_<module>_fwd without hooks) and records in a named struct (nn_<module>_act) the
 * intermediate activations its backward needs.  nn_<module>_bwd consumes that struct (and frees it).
 * Gradient checkpointing is built on the same pair: a model keeps only a module's input, runs the plain
 * forward, and at backward time re-runs the training forward from the kept input (deterministic, so the
 * same bits) right before calling the backward.
 *
 * Gradients: parameter gradients ACCUMULATE into locus_grads_of(g, param) buffers when tracked (NULL g or an
 * untracked parameter: skipped); input gradients are written (accum 0) or added (accum 1) as requested.
 * Every reduction is a fixed-order chain (simd/ops_bwd.h), so gradients are bit-identical for every thread
 * count and ISA.  Modules and shapes follow nn.h: (B,C,H,W) images, (B,T,C) sequences.
 */
#ifndef LOCUS_NN_BWD_H
#define LOCUS_NN_BWD_H

#include "grads.h"
#include "nn.h"

/* ---- Linear (+ LoRA adapters) ----
 * Backward of nn_linear_fwd for x[M,in] -> y[M,out]:  dW (+)= dy^T x, db (+)= colsum(dy) into the tracked
 * gradients of l->w (or l->wp when packed: the gradient is still [out,in]) and l->b; for every adapter of
 * l->lora in list order: d up (+)= (scale dy)^T (x down^T), d down (+)= ((scale dy) up)^T x (looked up with
 * locus_grads_of(g, a->down / a->up)).  dx[M,in] (NULL: not computed) = dy W (+ the adapters' (scale dy) up
 * down), overwriting dx when accum_dx is 0, else adding to it.  Signature stable (used by the MMDiT backward). */
void nn_linear_bwd(const nn_linear *l, const float *x /*[M,in]*/, int M, const float *dy /*[M,out]*/, float *dx /*[M,in] or NULL*/,
                   int accum_dx, const locus_grads *g);

/* Conv2d (groups 1, symmetric padding as nn_conv_fwd) on x[B,cin,H,W] with dy[B,cout,Ho,Wo]: dw, db into the
 * tracked gradients; dx[B,cin,H,W] (or NULL) written or accumulated. */
void nn_conv_bwd(const nn_conv *c, const float *x, int B, int H, int W, const float *dy, float *dx, int accum_dx,
                 const locus_grads *g);
/* The same with explicit padding/output size (locus_conv2d_ex convention: downsamplers with F.pad(0,1,0,1)). */
void nn_conv_bwd_ex(const nn_conv *c, const float *x, int B, int H, int W, int pad_t, int pad_l, int Ho, int Wo,
                    const float *dy, float *dx, int accum_dx, const locus_grads *g);

/* GroupNorm (+ optional SiLU, as nn_gnorm_fwd's act) on x[B,C,HW]: dx written/accumulated, dw/db tracked. */
void nn_gnorm_bwd(const nn_gnorm *n, const float *x, int B, int HW, const float *dy, int act, float *dx, int accum_dx,
                  const locus_grads *g);

/* LayerNorm (elementwise affine) over rows of n->c: dx[rows,c] written/accumulated, dw/db tracked. */
void nn_lnorm_bwd(const nn_lnorm *n, const float *x, size_t rows, const float *dy, float *dx, int accum_dx, const locus_grads *g);

/* ---- ResnetBlock2D ---- */
typedef struct {
    int B, H, W;
    float *a1; /* [B,cin,H,W]  silu(norm1(x)) = conv1 input */
    float *h;  /* [B,cout,H,W] conv1(a1) + time_emb_proj(temb)[:, :, None, None] = norm2 input */
    float *a2; /* [B,cout,H,W] silu(norm2(h)) = conv2 input */
} nn_resnet_act;

/* Same bits as nn_resnet_fwd; fills s (free with nn_resnet_act_free or by nn_resnet_bwd). */
void nn_resnet_fwd_train(const nn_resnet *r, const float *x /*[B,cin,H,W]*/, int B, int H, int W, const float *temb_act,
                         float *y /*[B,cout,H,W]*/, nn_resnet_act *s);
/* x is the block input the forward saw; dtemb_act [B,temb_dim] (NULL when no time embedding or not wanted)
 * is ALWAYS accumulated into (it sums over all resnets).  Frees s. */
void nn_resnet_bwd(const nn_resnet *r, nn_resnet_act *s, const float *x, const float *temb_act, const float *dy,
                   float *dx, int accum_dx, float *dtemb_act, const locus_grads *g);
void nn_resnet_act_free(nn_resnet_act *s);

/* ---- Attention (classic AttnProcessor) ---- */
typedef struct {
    float *q; /* [B,T,inner] to_q(x) */
    float *k; /* [B,S,inner] to_k(ctx) */
    float *v; /* [B,S,inner] to_v(ctx) */
    float *o; /* [B,T,inner] softmax(q k^T / sqrt(d)) v, heads concatenated = to_out.0 input */
    float *p; /* [B,heads,T,S] the softmax probabilities, kept when at most NN_KEEP_PROBS_BYTES (else NULL:
               * the backward recomputes them, same bits) */
} nn_attention_act;

/* Keeping an attention's probabilities for its backward saves one of its five GEMMs and the softmax; up to
 * this size per layer (SD1.5 at 256 px, batch 2: 64 MiB per 32x32 self-attention). */
#define NN_KEEP_PROBS_BYTES (128.0 * 1024 * 1024)

void nn_attention_fwd_train(const nn_attention *a, const float *x, int B, int T, const float *ctx, int S, float *y,
                            nn_attention_act *s);
/* dx[B,T,query_dim] gets the query path (written or accumulated per accum_dx); dctx[B,S,ctx_dim] (or NULL)
 * gets the key/value paths (accum_dctx).  Self-attention: pass ctx == x and dctx == dx (then all three paths
 * go to dx, the K/V ones always accumulated).  The to_k bias gradient is exactly zero (softmax is invariant
 * to the per-row constant q.b) and is left untouched.  Frees s. */
void nn_attention_bwd(const nn_attention *a, nn_attention_act *s, const float *x, int B, int T, const float *ctx, int S,
                      const float *dy, float *dx, int accum_dx, float *dctx, int accum_dctx, const locus_grads *g);
void nn_attention_act_free(nn_attention_act *s);

/* ---- BasicTransformerBlock / Transformer2DModel ---- */
typedef struct {
    float *h0, *h1, *h2;  /* [B,T,dim] residual stream before attn1, attn2 and ff */
    float *t1, *t2, *t3;  /* [B,T,dim] norm1(h0), norm2(h1), norm3(h2) */
    nn_attention_act a1, a2;
    float *p;             /* [B,T,2*ff_inner] ff.net.0.proj output (hidden | gate) */
    float *gg;            /* [B,T,ff_inner] hidden * gelu(gate) = ff.net.2 input */
} nn_tblock_act;

/* BasicTransformerBlock: h[B,T,dim] updated in place exactly as nn.c's block forward (no hooks, no
 * cross-attention injection); s filled.  Backward: dh holds the gradient of the block output on entry and
 * that of its input on return; dctx[B,S,ctx_dim] (or NULL) accumulated.  Frees s. */
void nn_tblock_fwd_train(const nn_tblock *b, float *h, int B, int T, const float *ctx, int S, nn_tblock_act *s);
void nn_tblock_bwd(const nn_tblock *b, nn_tblock_act *s, int B, int T, const float *ctx, int S, float *dh, float *dctx,
                   const locus_grads *g);
void nn_tblock_act_free(nn_tblock_act *s);

typedef struct {
    int B, H, W;
    float *n0;            /* [B,C,HW] norm(x) */
    float *pin;           /* proj_in input: [B,HW,C] (linear projection) or n0 itself (conv; not owned) */
    float *hout;          /* proj_out input: [B,HW,inner] (linear) or [B,inner,HW] (conv) */
    nn_tblock_act *blocks;/* [nblocks] */
} nn_transformer2d_act;

void nn_transformer2d_fwd_train(const nn_transformer2d *t, const float *x /*[B,C,H,W]*/, int B, int H, int W,
                                const float *ctx /*[B,S,ctx_dim]*/, int S, float *y, nn_transformer2d_act *s);
/* dx written/accumulated; dctx (or NULL) always accumulated.  Frees s. */
void nn_transformer2d_bwd(const nn_transformer2d *t, nn_transformer2d_act *s, const float *x, const float *ctx, int S,
                          const float *dy, float *dx, int accum_dx, float *dctx, const locus_grads *g);
void nn_transformer2d_act_free(const nn_transformer2d *t, nn_transformer2d_act *s);


/* ---- Attention block with group_norm and residual_connection (the VAE mid-block attention, one head):
 * y = x + to_out(attn(group_norm(x) as [B,HW,C])) ---- */
typedef struct {
    float *s;             /* [B,HW,C] group_norm(x) transposed = the attention's input (self-attention) */
    nn_attention_act a;
} nn_attnblock_act;

void nn_attnblock_fwd_train(const nn_gnorm *gn, const nn_attention *a, const float *x /*[B,C,H,W]*/, int B, int H, int W,
                            float *y, nn_attnblock_act *s);
/* dx written/accumulated per accum_dx.  Frees s. */
void nn_attnblock_bwd(const nn_gnorm *gn, const nn_attention *a, nn_attnblock_act *s, const float *x, int B, int H, int W,
                      const float *dy, float *dx, int accum_dx, const locus_grads *g);
void nn_attnblock_act_free(nn_attnblock_act *s);

/* ---- A tape unit: one module application kept for the backward (models' training forwards chain these).
 * The caller fills kind, the module pointers, x (the input, owned by the unit from then on: freed by
 * nn_unit_free), B, cin, H, W and for NN_UNIT_CONV the zero padding top/left (pad_t = pad_l) and
 * bottom/right (pad_b): symmetric convs pad_b = pad_t, the F.pad(x, (0,1,0,1)) downsamplers pad_t 0, pad_b 1. ---- */
enum { NN_UNIT_RESNET, NN_UNIT_TRANSFORMER, NN_UNIT_CONV, NN_UNIT_UPCONV, NN_UNIT_ATTNBLOCK };
typedef struct {
    int kind;
    const void *m;        /* nn_resnet / nn_transformer2d / nn_conv (CONV, UPCONV: the conv after 2x upsampling) / nn_attention */
    const nn_gnorm *gn;   /* ATTNBLOCK's group_norm */
    float *x;             /* [B,cin,H,W] module input (owned) */
    int B, cin, H, W;     /* input shape */
    int cout, Ho, Wo;     /* output shape (set by nn_unit_fwd) */
    int pad_t, pad_l, pad_b;
    int saved;            /* act holds the saved activations (no checkpointing) */
    union { nn_resnet_act r; nn_transformer2d_act t; nn_attnblock_act a; } act;
} nn_unit;

/* Sets cout, Ho, Wo from the module and the input shape; returns the output size in floats. */
size_t nn_unit_shape(nn_unit *un);
/* y[B,cout,Ho,Wo] = module(x) with the inference kernels; saves activations unless checkpoint. */
void nn_unit_fwd(nn_unit *un, const float *temb_act, const float *ctx, int S, float *y, int checkpoint);
/* dx[B,cin,H,W] written; dtemb_act / dctx (either may be NULL) accumulated; re-runs the forward first when
 * the activations were not saved.  Releases the activations (x stays until nn_unit_free). */
void nn_unit_bwd(nn_unit *un, const float *temb_act, const float *ctx, int S, const float *dy, float *dx, float *dtemb_act,
                 float *dctx, const locus_grads *g);
void nn_unit_free(nn_unit *un);

#endif
