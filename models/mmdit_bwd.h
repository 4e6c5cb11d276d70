/* mmdit_bwd.h — training pass of the SD3/SD3.5 MMDiT (diffusers SD3Transformer2DModel): a forward that keeps
 * the activations the backward needs (a "tape"), the hand-written backward (llm.c style) that accumulates
 * the gradient of every trainable parameter into a locus_grads table (models/grads.h), and the
 * flow-matching loss of SD3 training (diffusers' train_dreambooth_sd3 without loss weighting).
 *
 * Why: locus reproduces diffusers bit for bit; training (LoRA or full fine-tuning) needs the gradients of
 * the same model, equal to torch autograd's within float rounding and, like every locus result, the same
 * bits for any thread count, ISA and compiler (the backward kernels of simd/ops_bwd.h guarantee it per op;
 * this file fixes the order of the ops and of every accumulation).
 *
 * The forward is bit-identical to locus_mmdit_forward (same kernels, same order).  The position table
 * (pos_embed.pos_embed) is a frozen buffer and gets no gradient; the timesteps get none either.  LoRA
 * adapters attached to the model's nn_linear modules (nn.h) are applied by the forward and their down/up
 * factors get gradients when tracked in the grads table (nn_linear_bwd).
 */
#ifndef LOCUS_MMDIT_BWD_H
#define LOCUS_MMDIT_BWD_H

#include "../core/error.h"
#include "grads.h"
#include "mmdit.h"

typedef struct locus_mmdit_tape locus_mmdit_tape;

/* Forward pass for training: x[B,C,H,W] (C = in_channels), timesteps[B], ctx[B,S,joint_dim],
 * pooled[B,pooled_dim] -> out[B,out_channels,H,W], bit-identical to locus_mmdit_forward (no hooks).
 * *tape receives the saved activations (inputs are copied; the caller may free them), to be consumed by
 * exactly one locus_mmdit_backward (or released with locus_mmdit_tape_free).  checkpoint != 0 keeps only
 * each joint block's inputs and re-runs the block's forward in the backward (same bits, less memory).
 * Errors: LOCUS_E_ARG (H/W not multiples of the patch size, larger than pos_embed_max_size patches, or
 * B/S < 1), LOCUS_E_NOMEM; *tape is then NULL and out is unspecified. */
locus_status locus_mmdit_forward_train(const locus_mmdit *m, const float *x, int B, int H, int W, const float *timesteps,
                                       const float *ctx, int S, const float *pooled, float *out, int checkpoint,
                                       locus_mmdit_tape **tape);

/* Backward of the forward recorded in `tape` for the output gradient dout[B,out_channels,H,W]:
 * accumulates d(loss)/d(param) into g's buffer of every tracked parameter the forward read (g may be NULL:
 * only the input gradients), and writes (overwrites) the input gradients dx[B,C,H,W], dctx[B,S,joint_dim],
 * dpooled[B,pooled_dim] when not NULL.  Frees the tape (also on error).  Deterministic: every gradient is
 * one fixed-order chain, independent of threads and ISA.  Errors: LOCUS_E_NOMEM (gradients then partial). */
locus_status locus_mmdit_backward(const locus_mmdit *m, locus_mmdit_tape *tape, const float *dout, float *dx, float *dctx,
                                  float *dpooled, const locus_grads *g);

/* Releases a tape without running the backward (NULL is fine). */
void locus_mmdit_tape_free(locus_mmdit_tape *tape);

/* Flow-matching training inputs (rectified flow, as diffusers' train_dreambooth_sd3 and the golden):
 * for b < B and the n = C*H*W elements of sample b,
 *   noisy[b]  = (1 - sigma[b]) * x0[b] + sigma[b] * noise[b]      target[b] = noise[b] - x0[b]
 *   timesteps[b] = sigma[b] * 1000
 * Any output may be NULL.  Plain fp32 elementwise C, the same operations torch performs. */
void locus_flow_match_inputs(const float *x0, const float *noise, const float *sigmas, int B, size_t n, float *noisy,
                             float *target, float *timesteps);

/* One flow-matching training evaluation of the transformer on a batch:
 *   loss = mean over all B*C*H*W elements of (pred - target)^2,  pred = transformer(noisy, sigma*1000, ctx, pooled)
 * x0, noise [B,C,H,W], sigmas[B], ctx[B,S,joint_dim], pooled[B,pooled_dim].  Writes *loss, pred[B,C,H,W]
 * when not NULL, accumulates the parameter gradients into g (see locus_mmdit_backward; g may be NULL) and,
 * when not NULL, writes dnoisy[B,C,H,W] (gradient w.r.t. the noised input the transformer saw) and dctx /
 * dpooled (gradients w.r.t. the text embeddings).  checkpoint as in
 * locus_mmdit_forward_train.  Errors: those of locus_mmdit_forward_train / locus_mmdit_backward, LOCUS_E_NOMEM. */
locus_status locus_mmdit_flow_loss_grad(const locus_mmdit *m, const float *x0, const float *noise, const float *sigmas, int B,
                                        int H, int W, const float *ctx, int S, const float *pooled, int checkpoint,
                                        const locus_grads *g, float *loss, float *pred, float *dnoisy, float *dctx,
                                        float *dpooled);

/* ---- internal: shared by mmdit_bwd.c and mmdit_bwd_block.c, not API ----
 * Saved activations of joint block i for B samples of N image and S context tokens (J = N + S).  h_in and
 * c_in are owned by the tape (kept when checkpointing); everything else lives in `slab` (one allocation),
 * NULL where the block has no such tensor. */
typedef struct {
    float *h_in;             /* [B,N,D] image stream entering the block */
    float *c_in;             /* [B,S,D] context stream entering the block */
    float *slab;             /* owner of the pointers below */
    float *e1;               /* [B,k1*D] norm1.linear(silu(temb)), k1 = 6 (9 with dual attention) */
    float *e2;               /* [B,k2*D] norm1_context.linear(silu(temb)), k2 = 6 (2 when context_pre_only) */
    float *nh;               /* [B,N,D] norm1:0, input of attn.to_q/to_k/to_v */
    float *nc;               /* [B,S,D] norm1_context(:0), input of attn.add_q/k/v_proj */
    float *qi_raw, *ki_raw;  /* [B,N,D] attn.to_q / to_k outputs before the qk RMS norm (qk_norm only) */
    float *qc_raw, *kc_raw;  /* [B,S,D] attn.add_q_proj / add_k_proj outputs before the norm (qk_norm only) */
    float *q, *k, *v;        /* [B,J,D] joint attention inputs [image | context] as the attention used them */
    float *o;                /* [B,J,D] joint attention output */
    float *ao;               /* [B,N,D] attn:0 = attn.to_out.0(image rows of o) */
    float *co;               /* [B,S,D] attn:1 = attn.to_add_out(context rows of o) (not pre_only) */
    float *nh2;              /* [B,N,D] norm1:5, input of attn2 (dual) */
    float *q2_raw, *k2_raw;  /* [B,N,D] attn2.to_q / to_k outputs before the norm (dual with qk_norm) */
    float *q2, *k2, *v2;     /* [B,N,D] attn2 inputs (dual) */
    float *o2;               /* [B,N,D] attn2 attention output (dual) */
    float *ao2;              /* [B,N,D] attn2 = attn2.to_out.0(o2) (dual) */
    float *h_ff;             /* [B,N,D] image stream after the attention residual(s), input of norm2 */
    float *nhf;              /* [B,N,D] norm2 output, input of ff */
    float *ffh;              /* [B,N,4D] ff.net.0.proj output (before GELU-tanh) */
    float *ffo;              /* [B,N,D] ff output */
    float *c_ff;             /* [B,S,D] context after the attention residual (not pre_only) */
    float *ncf;              /* [B,S,D] norm2_context output (not pre_only) */
    float *ffch;             /* [B,S,4D] ff_context.net.0.proj output (not pre_only) */
    float *ffco;             /* [B,S,D] ff_context output (not pre_only) */
} locus_mmdit_block_acts;

/* Block i forward from a->h_in, a->c_in: allocates and fills a->slab, writes the block's outputs
 * h_out[B,N,D] and c_out[B,S,D] (c_out = c_in for the pre_only block), bit-identical to mmdit.c's block.
 * temb_act[B,D] = silu(temb).  Returns LOCUS_E_NOMEM (with the message set) when allocation fails. */
locus_status locus_mmdit_block_fwd_train(const locus_mmdit *m, int i, locus_mmdit_block_acts *a, int B, int N, int S,
                                         const float *temb_act, float *h_out, float *c_out);

/* Block i backward: dh[B,N,D], dc[B,S,D] hold the gradients of the block's outputs on entry and those of
 * its inputs on return; dtemb_act[B,D] is accumulated into; parameter gradients go to g.  Reads a (slab
 * filled).  Returns LOCUS_E_NOMEM when its scratch cannot be allocated. */
locus_status locus_mmdit_block_bwd(const locus_mmdit *m, int i, const locus_mmdit_block_acts *a, int B, int N, int S,
                                   const float *temb_act, float *dh, float *dc, float *dtemb_act, const locus_grads *g);

#endif
