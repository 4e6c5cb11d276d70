/* objective.h — the denoising training objective, for any trainable denoiser (denoiser.h).
 *
 * Which objective a model trains with is its scheduler's business, not its family's:
 *   - DDPM-family schedulers (DDIM, Euler, PNDM configs: betas -> alphas_cumprod): integer timesteps t,
 *     noisy = sqrt(acp_t) x0 + sqrt(1 - acp_t) noise (DDPMScheduler.add_noise in fp32), target = noise for
 *     epsilon prediction or sqrt(acp_t) noise - sqrt(1 - acp_t) x0 for v prediction (get_velocity);
 *   - flow matching (FlowMatchEulerDiscreteScheduler; SD3): sigmas in [0,1], noisy = (1 - sigma) x0 +
 *     sigma noise, target = noise - x0, model timestep = sigma * num_train_timesteps.
 * Loss = mean over every element of (pred - target)^2 (no SNR weighting), as the paper's LoRA recipe and
 * diffusers' training scripts.  The batch names follow ../shared/golden/train: `timesteps` or `sigmas`.
 */
#ifndef LOCUS_OBJECTIVE_H
#define LOCUS_OBJECTIVE_H

#include "denoiser.h"
#include "scheduler.h"

typedef enum { LOCUS_OBJ_EPSILON, LOCUS_OBJ_V, LOCUS_OBJ_FLOW } locus_objective_kind;

typedef struct {
    locus_objective_kind kind;
    int num_train;              /* training timesteps (1000) */
    const float *alphas_cumprod; /* DDPM kinds: [num_train], owned by the scheduler */
} locus_objective;

/* The objective of scheduler s (NULL: the denoiser's default — flow matching with 1000 timesteps for a
 * flow-matching family, otherwise an error asking for the scheduler folder). */
locus_status locus_objective_init(locus_objective *o, const locus_denoiser *d, const locus_scheduler *s);

/* Name of the per-sample time input in a batch file: "timesteps" or "sigmas". */
const char *locus_objective_time_name(const locus_objective *o);

/* noisy[B,n], target[B,n] and the model's timesteps[B] from x0, noise [B,n] and tvals[B] (integer timesteps
 * or sigmas).  Any output may be NULL.  Errors: a timestep that is not an integer in [0, num_train), a sigma
 * outside [0, 1]. */
locus_status locus_objective_inputs(const locus_objective *o, const float *x0, const float *noise, const float *tvals, int B,
                                    size_t n, float *noisy, float *target, float *timesteps);

/* One training evaluation: loss = MSE(denoiser(noisy, t, ctx, pooled), target) and its backward.
 * x0, noise [B,C,H,W], tvals[B], ctx[B,S,ctx_dim], pooled[B,pooled_dim] (NULL without pooled text).
 * Writes *loss; pred, noisy, target [B,C,H,W] when not NULL; accumulates tracked parameter gradients into g;
 * writes dnoisy [B,C,H,W], dctx, dpooled when not NULL.  Errors: a denoiser that cannot train, shapes,
 * out of memory. */
locus_status locus_denoiser_loss_grad(const locus_denoiser *d, const locus_objective *o, const float *x0, const float *noise,
                                      const float *tvals, int B, int H, int W, const float *ctx, int S, const float *pooled,
                                      int checkpoint, const locus_grads *g, float *loss, float *pred, float *noisy, float *target,
                                      float *dnoisy, float *dctx, float *dpooled);

#endif
