/* sampler.c — the CFG denoising loop over any denoiser and a scheduler (see sampler.h). */
#include "sampler.h"

#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

locus_status locus_sample_set_timesteps(const locus_denoiser *d, locus_scheduler *s, int steps, int h, int w) {
    if (d->patch > 0) locus_scheduler_set_image_tokens(s, (h / d->patch) * (w / d->patch)); /* dynamic shifting (mu) */
    return locus_scheduler_set_timesteps(s, steps);
}

locus_status locus_sample(const locus_denoiser *d, locus_scheduler *s, int steps, float guidance, float *latent, int h, int w,
                          const locus_cond *uncond, const locus_cond *cond, int S, const locus_step_cb *cb, const locus_hooks *hooks) {
    locus_status st = locus_sample_set_timesteps(d, s, steps, h, w);
    if (st) return st;
    int P = d->pooled_dim;
    int cfg = guidance > 1.0f && uncond && uncond->ctx && (!P || uncond->pooled);
    int B = cfg ? 2 : 1;
    size_t n = (size_t)d->in_channels * h * w, SD = (size_t)S * d->ctx_dim;
    float *x = locus_alloc(B * n * sizeof(float)), *eps = locus_alloc(B * n * sizeof(float)), *g = locus_alloc(n * sizeof(float));
    float *ctx = locus_alloc(B * SD * sizeof(float)), *pl = P ? locus_alloc((size_t)B * P * sizeof(float)) : NULL;
    if (!x || !eps || !g || !ctx || (P && !pl)) {
        locus_free(x); locus_free(eps); locus_free(g); locus_free(ctx); locus_free(pl);
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
        const float *pe = cfg ? eps + n : eps;
        if (cfg) locus_binary(eps, eps + n, g, n, LOCUS_BIN_CFG, guidance);
        else memcpy(g, pe, n * sizeof(float));
        if ((st = locus_scheduler_step(s, i, g, latent, latent, n))) break;
        if (cb && cb->on_step) cb->on_step(cb->ctx, i, s->nevals, cfg ? eps : NULL, pe, g, latent, n);
    }
    locus_free(x); locus_free(eps); locus_free(g); locus_free(ctx); locus_free(pl);
    return st;
}
