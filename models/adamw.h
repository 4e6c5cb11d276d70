/* adamw.h — torch.optim.AdamW (torch 1.13, single-tensor path) and torch.nn.utils.clip_grad_norm_, in fp32
 * with the same operation order, for LoRA training.
 *
 * One step t (1-based) on a parameter p with gradient g, scalars computed in double as Python does and
 * rounded to fp32 where torch converts them (every tensor op is fp32):
 *     p = p * (float)(1 - lr*wd)                                   decoupled weight decay first
 *     m = fma(g, (float)(1 - b1), m * (float)b1)                   exp_avg.mul_(b1).add_(g, alpha=1-b1) (fmadd)
 *     v = v * (float)b2 + ((float)(1 - b2) * g) * g                exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2)
 *     denom = sqrt(v) / (float)sqrt(1 - b2^t) + (float)eps
 *     p = p + ((float)(-lr / (1 - b1^t)) * m) / denom              addcdiv_(m, denom, value=-step_size)
 * Elementwise, so threads split elements freely and the result is the same bits for any thread count / ISA.
 * The learning rate is constant after an optional linear warmup (transformers' constant_schedule_with_warmup
 * stepped after each optimizer step: step t uses lr * min(1, (t-1)/warmup)); with `decay` > 0 the last `decay`
 * of `total` steps go linearly down to 0 (transformers' get_wsd_schedule, decay_type "linear", min_lr_ratio
 * 0): step t with k = t-1 >= total - decay uses lr * (1 - (k - total + decay) / decay), in double (no libm).
 */
#ifndef LOCUS_ADAMW_H
#define LOCUS_ADAMW_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/safetensors.h"

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int warmup;    /* linear warmup steps; 0 = constant */
    int decay;     /* linear decay to 0 over the last `decay` steps of `total` (0 = none) */
    int64_t total; /* optimizer steps of the whole run (used only with decay) */
} locus_adamw_cfg;

typedef struct {
    char *name;       /* owned; keys of the saved state: "<name>.exp_avg", "<name>.exp_avg_sq" */
    float *p;         /* parameter, updated in place */
    const float *g;   /* its gradient (read; clip_grad_norm scales it in place) */
    float *m, *v;     /* exp_avg, exp_avg_sq (owned, start at 0) */
    size_t n;
} locus_adamw_param;

typedef struct {
    locus_adamw_cfg cfg;
    locus_adamw_param *ps;
    int n, cap;
    int64_t step; /* optimizer steps done */
} locus_adamw;

/* Paper preset defaults: lr 1e-6, betas 0.9/0.999, eps 1e-8, weight decay 1e-2, no warmup. */
locus_adamw_cfg locus_adamw_defaults(void);

void locus_adamw_init(locus_adamw *o, const locus_adamw_cfg *cfg);
void locus_adamw_free(locus_adamw *o);

/* Register a parameter p[n] with gradient buffer g[n] (same layout).  The name keys the saved state. */
locus_status locus_adamw_add(locus_adamw *o, const char *name, float *p, const float *g, size_t n);

/* Learning rate of step t (1-based). */
double locus_adamw_lr(const locus_adamw *o, int64_t t);

/* One AdamW step on every registered parameter (o->step increments first, as torch's state_steps). */
void locus_adamw_step(locus_adamw *o);

/* clip_grad_norm_(params, max_norm, 2): per-tensor 2-norms (16-lane fixed-tree sum of squares, sqrt), the
 * 2-norm of those norms, coef = (float)max_norm / (total + 1e-6) clamped to 1, every gradient *= coef (even
 * when coef is 1, as torch).  Returns the total norm (before clipping).  g[i] has n[i] floats. */
float locus_clip_grad_norm(float *const *g, const size_t *n, int count, double max_norm);
/* The same over the optimizer's gradient buffers. */
float locus_adamw_clip(locus_adamw *o, double max_norm);

/* Optimizer state for resume: tensors "<prefix>step" (I64 [1]) and "<prefix><name>.exp_avg"/".exp_avg_sq". */
locus_status locus_adamw_state_write(const locus_adamw *o, locus_st_writer *w, const char *prefix);
/* Read it back into an optimizer with the same parameters registered; errors name a missing or mis-shaped
 * tensor. */
locus_status locus_adamw_state_read(locus_adamw *o, const locus_st_file *f, const char *prefix);

#endif
