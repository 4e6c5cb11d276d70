/* sampler.h — the text-to-image denoising loop with classifier-free guidance (diffusers pipelines' order).
 *
 * Each step: the UNet runs once on the batch [uncond, cond] (latent duplicated, text contexts stacked), the
 * guided prediction is uncond + g * (cond - uncond) (torch's three separate ops), then the scheduler step.
 * With guidance <= 1 only the conditional half runs (as StableDiffusionPipeline does).
 */
#ifndef LOCUS_SAMPLER_H
#define LOCUS_SAMPLER_H

#include "scheduler.h"
#include "mmdit.h"
#include "unet.h"

typedef struct {
    /* called after every step with the two halves (uncond may be NULL), the guided prediction and the new latent */
    void (*on_step)(void *ctx, int step, int nsteps, const float *uncond, const float *cond, const float *guided,
                    const float *latent, size_t n);
    void *ctx;
} locus_step_cb;

/* latent[C,h,w] in: initial noise (already scaled by init_noise_sigma); out: the final latent. */
locus_status locus_sample_unet(const locus_unet *u, locus_scheduler *s, int steps, float guidance, float *latent, int h,
                               int w, const float *ctx_uncond, const float *ctx_cond, int S, const locus_step_cb *cb,
                               const locus_hooks *hooks);

/* The same loop for an MMDiT (SD3): contexts [1,S,joint_dim] and pooled [1,pooled_dim] per half. */
locus_status locus_sample_mmdit(const locus_mmdit *m, locus_scheduler *s, int steps, float guidance, float *latent, int h, int w,
                                const float *ctx_uncond, const float *ctx_cond, int S, const float *pooled_uncond,
                                const float *pooled_cond, const locus_step_cb *cb, const locus_hooks *hooks);

#endif
