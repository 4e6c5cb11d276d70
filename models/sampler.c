/* sampler.c — the CFG denoising loop over any denoiser and a scheduler (see sampler.h). */
#include "sampler.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

locus_status locus_sample_set_timesteps(const locus_denoiser *d, locus_scheduler *s, int steps, int h, int w) {
    if (d->patch > 0) locus_scheduler_set_image_tokens(s, (h / d->patch) * (w / d->patch)); /* dynamic shifting (mu) */
    return locus_scheduler_set_timesteps(s, steps);
}

/* 1 if any of n floats is NaN or infinite */
static int any_nonfinite(const float *x, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(x[k])) return 1;
    return 0;
}

/* The first module output with a non-finite value: a hook added only when a failed step is re-run. */
typedef struct { char name[200]; } nf_probe;

static void nf_probe_fn(void *ctx, const locus_hook_at *at, float *x, int ndim, const int64_t *shape) {
    nf_probe *p = ctx;
    if (p->name[0]) return;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (any_nonfinite(x, n)) snprintf(p->name, sizeof p->name, "%s", at->name);
}

/* A step left a non-finite latent: name the step and where it first appeared (the model output of one of
 * its modules, found by re-running the step's evaluation with a probe after the caller's hooks; or the
 * guidance / scheduler arithmetic). */
static locus_status nonfinite_error(const locus_denoiser *d, locus_scheduler *s, int i, const float *before, float *x, int B, int h, int w,
                                    const float *t, const float *ctx, int S, const float *pl, float *eps, locus_hooks *hk, size_t n, size_t nout) {
    int model_bad = any_nonfinite(eps, (size_t)B * nout);
    nf_probe probe = {{0}};
    if (model_bad) {
        locus_hooks h2 = *hk;
        if (locus_hooks_add(&h2, (locus_hook_entry){nf_probe_fn, NULL, NULL, &probe}) == 0) {
            for (int b = 0; b < B; b++) locus_scheduler_scale_input(s, i, before, x + b * n, n);
            locus_denoiser_forward(d, x, B, h, w, t, ctx, S, pl, eps, &h2);
        }
    }
    return locus_fail(LOCUS_E_FORMAT, "step %d of %d: the latent became non-finite (NaN/Inf)%s%s%s", i, s->nevals,
                      probe.name[0] ? ", first in the output of " : model_bad ? ", in the denoiser's output" : ", in the guidance/scheduler step",
                      probe.name, probe.name[0] ? " (an intervention, the weights or an extreme guidance?)" : "");
}

locus_status locus_sample(const locus_denoiser *d, locus_scheduler *s, int steps, float guidance, float *latent, int h, int w,
                          const locus_cond *uncond, const locus_cond *cond, int S, const locus_step_cb *cb, const locus_hooks *hooks) {
    locus_status st = locus_sample_set_timesteps(d, s, steps, h, w);
    if (st) return st;
    int P = d->pooled_dim;
    int cfg = guidance > 1.0f && uncond && uncond->ctx && (!P || uncond->pooled);
    int B = cfg ? 2 : 1;
    /* a model with learned variance predicts [epsilon | variance] (out = 2 x in channels): guidance mixes the
     * epsilon channels only and the conditional half's variance channels are appended (IFPipeline) */
    int var = d->out_channels != d->in_channels;
    if (var && d->out_channels != 2 * d->in_channels)
        return locus_fail(LOCUS_E_UNSUPPORTED, "a denoiser with %d input and %d output channels (neither equal nor a learned variance)", d->in_channels,
                          d->out_channels);
    if (locus_scheduler_wants_variance(s) && !var)
        return locus_fail(LOCUS_E_UNSUPPORTED, "the scheduler's variance_type learned_range needs a model predicting variance (out_channels = 2 x in_channels)");
    size_t n = (size_t)d->in_channels * h * w, nout = (size_t)d->out_channels * h * w, SD = (size_t)S * d->ctx_dim;
    float *x = locus_alloc(B * n * sizeof(float)), *eps = locus_alloc(B * nout * sizeof(float)), *g = locus_alloc(nout * sizeof(float));
    float *ctx = locus_alloc(B * SD * sizeof(float)), *pl = P ? locus_alloc((size_t)B * P * sizeof(float)) : NULL;
    float *before = locus_alloc(n * sizeof(float)); /* the latent entering the step (to re-run a failed one) */
    if (!x || !eps || !g || !ctx || (P && !pl) || !before) {
        locus_free(x); locus_free(eps); locus_free(g); locus_free(ctx); locus_free(pl); locus_free(before);
        return locus_fail(LOCUS_E_NOMEM, "out of memory for sampling");
    }
    const locus_cond *halves[2] = {cfg ? uncond : cond, cond};
    for (int b = 0; b < B; b++) {
        memcpy(ctx + b * SD, halves[b]->ctx, SD * sizeof(float));
        if (P) memcpy(pl + (size_t)b * P, halves[b]->pooled, (size_t)P * sizeof(float));
    }
    locus_hooks hk;
    if (hooks) hk = *hooks;
    else locus_hooks_init(&hk);
    hk.cfg = cfg;
    for (int i = 0; i < s->nevals; i++) {
        float tv = locus_scheduler_timestep(s, i), t[2] = {tv, tv};
        for (int b = 0; b < B; b++) locus_scheduler_scale_input(s, i, latent, x + b * n, n);
        hk.step = i;
        locus_denoiser_forward(d, x, B, h, w, t, ctx, S, pl, eps, &hk);
        const float *pe = cfg ? eps + nout : eps; /* conditional half [nout] */
        if (cfg) {
            locus_binary(eps, pe, g, n, LOCUS_BIN_CFG, guidance);
            if (var) memcpy(g + n, pe + n, n * sizeof(float)); /* cat([guided eps, text half's variance], dim=1) */
        } else memcpy(g, pe, nout * sizeof(float));
        memcpy(before, latent, n * sizeof(float));
        if ((st = locus_scheduler_step(s, i, g, latent, latent, n))) break;
        /* never a black image with exit 0: a non-finite latent stops the run, naming the step */
        if (any_nonfinite(latent, n)) { st = nonfinite_error(d, s, i, before, x, B, h, w, t, ctx, S, pl, eps, &hk, n, nout); break; }
        if (cb && cb->on_step) cb->on_step(cb->ctx, i, s->nevals, cfg ? eps : NULL, pe, g, latent, n);
    }
    locus_free(x); locus_free(eps); locus_free(g); locus_free(ctx); locus_free(pl); locus_free(before);
    return st;
}
