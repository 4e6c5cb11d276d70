/* sampler.h — the text-to-image denoising loop with classifier-free guidance, one loop for every denoiser
 * family (diffusers pipelines' order).
 *
 * Each step: the denoiser runs once on the batch [uncond, cond] (latent duplicated, text contexts and pooled
 * embeddings stacked), the guided prediction is uncond + g * (cond - uncond) (torch's three separate ops),
 * then the scheduler step (a model predicting [epsilon | variance] is guided on epsilon, the conditional half's
 * variance appended, as IFPipeline does).  With guidance <= 1 (or no unconditional text) only the conditional half runs, as
 * the diffusers pipelines do.  The scheduler's timesteps are set here, once per loop (image tokens first for
 * token models: flow matching's dynamic shift).
 */
#ifndef LOCUS_SAMPLER_H
#define LOCUS_SAMPLER_H

#include "denoiser.h"
#include "scheduler.h"

/* Text conditioning of one CFG half: ctx [1,S,ctx_dim] and pooled [1,pooled_dim] (NULL when the denoiser has
 * none). */
typedef struct {
    const float *ctx, *pooled;
} locus_cond;

typedef struct {
    /* called after every step with the two halves (uncond NULL without CFG), the guided prediction and the new
     * latent (n floats: the latent size).  The predictions hold the model's out_channels: with learned variance
     * (out = 2 x in channels) 2n floats, epsilon first; the guided one then ends with the conditional variance. */
    void (*on_step)(void *ctx, int step, int nsteps, const float *uncond, const float *cond, const float *guided,
                    const float *latent, size_t n);
    void *ctx;
} locus_step_cb;

/* latent[C,h,w] in: initial noise (already scaled by init_noise_sigma); out: the final latent.  S text tokens.
 * Hooks (may be NULL) are told the step and the CFG layout of every evaluation. */
locus_status locus_sample(const locus_denoiser *d, locus_scheduler *s, int steps, float guidance, float *latent, int h, int w,
                          const locus_cond *uncond, const locus_cond *cond, int S, const locus_step_cb *cb, const locus_hooks *hooks);

/* Prepare the scheduler for a loop of `steps` on a latent of h x w (what locus_sample does first). */
locus_status locus_sample_set_timesteps(const locus_denoiser *d, locus_scheduler *s, int steps, int h, int w);

#endif
