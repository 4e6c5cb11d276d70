/* unet_bwd.h — training forward and hand-written backward of UNet2DConditionModel (models/unet.h).
 *
 * locus_unet_forward_train computes the same output bits as locus_unet_forward (no hooks) and records a
 * tape: with checkpoint 0 every module's saved activations (nn_bwd.h), with checkpoint 1 only each module's
 * input (resnets, transformers, down/upsamplers; the module's forward is re-run during the backward).  The
 * gradients are the same bits either way, for every thread count and ISA.
 */
#ifndef LOCUS_UNET_BWD_H
#define LOCUS_UNET_BWD_H

#include "grads.h"
#include "unet.h"

typedef struct locus_unet_tape locus_unet_tape;

/* out[B,out,H,W] = the UNet of sample[B,in,H,W] at timesteps[B] with text ctx[B,S,ctx_dim]; *tape receives
 * what the backward needs (inputs are copied: the caller may free them).  Errors: H/W not multiples of
 * 2^(nblocks-1) (LOCUS_E_SHAPE), out of memory. */
locus_status locus_unet_forward_train(const locus_unet *u, const float *sample, int B, int H, int W, const float *timesteps,
                                      const float *ctx, int S, float *out, int checkpoint, locus_unet_tape **tape);

/* Given dout[B,out,H,W] = d loss / d out: accumulates every tracked parameter's gradient into g (may be
 * NULL), writes dsample[B,in,H,W] and dctx[B,S,ctx_dim] (either may be NULL).  Frees the tape. */
locus_status locus_unet_backward(const locus_unet *u, locus_unet_tape *tape, const float *dout, float *dsample, float *dctx,
                                 const locus_grads *g);

/* The same for a UNet with SDXL's added conditioning (u->add_time): added[B, add_text_dim + 6] as for
 * locus_unet_forward_cond (non-NULL exactly when u->add_time, else LOCUS_E_ARG); the backward also writes
 * dadded[B, add_text_dim + 6] (may be NULL): the pooled text's gradient, zeros for the six time ids. */
locus_status locus_unet_forward_train_cond(const locus_unet *u, const float *sample, int B, int H, int W, const float *timesteps,
                                           const float *ctx, int S, const float *added, float *out, int checkpoint, locus_unet_tape **tape);
locus_status locus_unet_backward_cond(const locus_unet *u, locus_unet_tape *tape, const float *dout, float *dsample, float *dctx,
                                      float *dadded, const locus_grads *g);

/* Frees a tape without running the backward (NULL is fine). */
void locus_unet_tape_free(locus_unet_tape *tape);

#endif
