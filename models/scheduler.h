/* scheduler.h — diffusion samplers read from scheduler_config.json, reproducing diffusers' arithmetic in fp32.
 *
 * DDIMScheduler (eta 0; leading / trailing / linspace spacing, steps_offset, set_alpha_to_one, clip_sample),
 * EulerDiscreteScheduler (linear sigma interpolation, s_churn 0) and PNDMScheduler (PLMS with
 * skip_prk_steps, SD1.x's default), each with epsilon / v_prediction, and FlowMatchEulerDiscreteScheduler
 * (SD3: shifted sigmas, static shift or resolution-dependent dynamic shifting), and DDPMScheduler (DeepFloyd
 * IF: variance_type fixed_small or learned_range — the model predicts [epsilon | variance] and the scheduler
 * gets both halves —, dynamic thresholding or clip_sample, noise drawn from the run's torch generator).
 * Betas: linear or scaled_linear (torch.linspace in fp32) or squaredcos_cap_v2 (betas_for_alpha_bar in float64,
 * then fp32), alphas_cumprod as torch.cumprod (double accumulator, fp32 results).  Other classes or options
 * (karras sigmas, thresholding outside DDPM, ...) are refused with a clear error.
 */
#ifndef LOCUS_SCHEDULER_H
#define LOCUS_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/rng.h"

#define SCHED_MAX_STEPS 1000

typedef enum { LOCUS_SCHED_DDIM, LOCUS_SCHED_EULER, LOCUS_SCHED_PNDM, LOCUS_SCHED_FLOW, LOCUS_SCHED_DDPM } locus_sched_kind;
typedef enum { LOCUS_VAR_FIXED_SMALL, LOCUS_VAR_LEARNED_RANGE } locus_var_type;
typedef enum { LOCUS_PRED_EPSILON, LOCUS_PRED_V } locus_pred_type;

typedef struct {
    locus_sched_kind kind;
    char class_name[64];
    int num_train;
    float *alphas_cumprod; /* [num_train] */
    float final_alpha_cumprod;
    int steps_offset, clip_sample;
    float clip_range;
    char spacing[16];
    locus_pred_type pred;
    int skip_prk;
    float shift;          /* flow matching */
    int dynamic_shift;    /* use_dynamic_shifting: sigmas time-shifted by mu(image tokens) */
    int shift_linear;     /* time_shift_type "linear" (else exponential) */
    double base_shift, max_shift, base_seq, max_seq;
    int image_tokens;     /* set by the sampler (locus_scheduler_set_image_tokens) */
    int nsteps;                              /* inference steps asked for */
    int nevals;                              /* model evaluations (PNDM: nsteps + 1) */
    int64_t timesteps[SCHED_MAX_STEPS + 1];  /* DDIM / PNDM */
    float timesteps_f[SCHED_MAX_STEPS + 1];  /* Euler (fp32, possibly fractional); the UNet gets these */
    float sigmas[SCHED_MAX_STEPS + 2];       /* Euler, with a trailing 0 */
    float init_noise_sigma;
    /* DDPM */
    locus_var_type var_type;
    int thresholding;                        /* dynamic thresholding (takes precedence over clip_sample, as diffusers) */
    float thr_ratio, sample_max;             /* dynamic_thresholding_ratio, sample_max_value */
    uint64_t noise_seed;                     /* the run's generator (locus_scheduler_set_noise_seed) */
    size_t noise_skip;
    int gen_started;                         /* reset by set_timesteps: the first draw re-seeds and skips */
    locus_mt19937 gen;
    /* PNDM state */
    float *ets[4];
    float *cur_sample;
    int nets, counter;
    size_t state_n;
} locus_scheduler;

/* Read `dir`/scheduler_config.json. */
locus_status locus_scheduler_load(locus_scheduler *s, const char *dir);
void locus_scheduler_free(locus_scheduler *s);

/* Use another sampler with the same training schedule (like diffusers' Scheduler.from_config):
 * "ddim", "euler" or "pndm" (PLMS, skip_prk_steps).  Unknown names are LOCUS_E_ARG. */
locus_status locus_scheduler_override(locus_scheduler *s, const char *name);
/* The sampler's short name as --sampler spells it: "ddim", "euler", "pndm" or "flow". */
const char *locus_scheduler_name(const locus_scheduler *s);

/* set_timesteps(n); errors for n < 1 or n > num_train. */
/* Flow matching with use_dynamic_shifting: the number of image tokens ((H/patch) x (W/patch)) from which mu is
 * computed as diffusers' SD3 pipeline does (calculate_shift over base/max_image_seq_len and base/max_shift). */
void locus_scheduler_set_image_tokens(locus_scheduler *s, int tokens);

locus_status locus_scheduler_set_timesteps(locus_scheduler *s, int n);

/* Timestep value given to the model at evaluation i. */
float locus_scheduler_timestep(const locus_scheduler *s, int i);

/* scale_model_input: Euler divides by sqrt(sigma^2 + 1); others copy. */
void locus_scheduler_scale_input(const locus_scheduler *s, int i, const float *sample, float *out, size_t n);

/* Does the step read the model's predicted variance?  Then model_output holds 2n floats: the guided epsilon
 * [n] followed by the variance channels [n] (DDPM learned_range; the denoiser must predict 2 x in_channels). */
int locus_scheduler_wants_variance(const locus_scheduler *s);

/* The generator a stochastic step (DDPM at t > 0) draws its noise from: torch.Generator().manual_seed(seed)
 * after `skip` normals were drawn from it in one randn call (the initial latent noise; 0 when the noise came
 * from elsewhere) — one generator for both, as diffusers' pipelines pass it.  Kept across runs; every
 * set_timesteps restarts it.  Without a call: seed 0, no skip. */
void locus_scheduler_set_noise_seed(locus_scheduler *s, uint64_t seed, size_t skip);

/* Evaluation i (0-based, i < nevals): prev[n] from the guided model output and the current sample (prev may
 * alias sample).  PNDM keeps its multistep history inside the scheduler; DDPM draws from its generator. */
locus_status locus_scheduler_step(locus_scheduler *s, int i, const float *model_output, const float *sample, float *prev, size_t n);

#endif
