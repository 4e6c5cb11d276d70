/* scheduler.h — diffusion samplers read from scheduler_config.json, reproducing diffusers' arithmetic in fp32.
 *
 * DDIMScheduler (eta 0; leading / trailing / linspace spacing, steps_offset, set_alpha_to_one, clip_sample,
 * epsilon / v_prediction).  Betas: linear or scaled_linear (torch.linspace in fp32), alphas_cumprod as
 * torch.cumprod (double accumulator, fp32 results).  Other scheduler classes are refused with a clear error.
 */
#ifndef LOCUS_SCHEDULER_H
#define LOCUS_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

#define SCHED_MAX_STEPS 1000

typedef enum { LOCUS_SCHED_DDIM } locus_sched_kind;
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
    int nsteps;
    int64_t timesteps[SCHED_MAX_STEPS];
    float init_noise_sigma;
} locus_scheduler;

/* Read `dir`/scheduler_config.json. */
locus_status locus_scheduler_load(locus_scheduler *s, const char *dir);
void locus_scheduler_free(locus_scheduler *s);

/* set_timesteps(n); errors for n < 1 or n > num_train. */
locus_status locus_scheduler_set_timesteps(locus_scheduler *s, int n);

/* One step i (0-based) of the schedule: prev[n] from the guided model output and the current sample. */
void locus_scheduler_step(const locus_scheduler *s, int i, const float *model_output, const float *sample, float *prev, size_t n);

#endif
