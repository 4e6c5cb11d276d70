/* sampler.c — CFG denoising loop over a UNet and a scheduler (see sampler.h). */
#include "sampler.h"

#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

locus_status locus_sample_unet(const locus_unet *u, locus_scheduler *s, int steps, float guidance, float *latent, int h,
                               int w, const float *ctx_uncond, const float *ctx_cond, int S, const locus_step_cb *cb,
                               const locus_hooks *hooks) {
    locus_status st = locus_scheduler_set_timesteps(s, steps);
    if (st) return st;
    int C = u->in_channels, cfg = guidance > 1.0f && ctx_uncond;
    int B = cfg ? 2 : 1;
    size_t n = (size_t)C * h * w;
    size_t D = (size_t)u->ctx_dim;
    float *x = locus_alloc(B * n * sizeof(float)), *eps = locus_alloc(B * n * sizeof(float));
    float *g = locus_alloc(n * sizeof(float)), *ctx = locus_alloc((size_t)B * S * D * sizeof(float));
    if (!x || !eps || !g || !ctx) {
        locus_free(x); locus_free(eps); locus_free(g); locus_free(ctx);
        return locus_fail(LOCUS_E_NOMEM, "out of memory for sampling");
    }
    if (cfg) {
        memcpy(ctx, ctx_uncond, (size_t)S * D * sizeof(float));
        memcpy(ctx + (size_t)S * D, ctx_cond, (size_t)S * D * sizeof(float));
    } else {
        memcpy(ctx, ctx_cond, (size_t)S * D * sizeof(float));
    }
    for (int i = 0; i < s->nevals; i++) {
        float tv = locus_scheduler_timestep(s, i), t[2] = {tv, tv};
        for (int b = 0; b < B; b++) locus_scheduler_scale_input(s, i, latent, x + b * n, n);
        locus_hooks hk = hooks ? *hooks : (locus_hooks){0};
        hk.step = i;
        locus_unet_forward(u, x, B, h, w, t, ctx, S, eps, &hk);
        const float *pe = cfg ? eps + n : eps;
        if (cfg) locus_binary(eps, eps + n, g, n, LOCUS_BIN_CFG, guidance);
        else memcpy(g, pe, n * sizeof(float));
        if ((st = locus_scheduler_step(s, i, g, latent, latent, n))) break;
        if (cb && cb->on_step) cb->on_step(cb->ctx, i, s->nevals, cfg ? eps : NULL, pe, g, latent, n);
    }
    locus_free(x); locus_free(eps); locus_free(g); locus_free(ctx);
    return st;
}

locus_status locus_sample_mmdit(const locus_mmdit *m, locus_scheduler *s, int steps, float guidance, float *latent, int h, int w,
                                const float *ctx_uncond, const float *ctx_cond, int S, const float *pooled_uncond,
                                const float *pooled_cond, const locus_step_cb *cb, const locus_hooks *hooks) {
    locus_scheduler_set_image_tokens(s, (h / m->patch) * (w / m->patch)); /* dynamic shifting (mu) */
    locus_status st = locus_scheduler_set_timesteps(s, steps);
    if (st) return st;
    int C = m->in_channels, cfg = guidance > 1.0f && ctx_uncond && pooled_uncond;
    int B = cfg ? 2 : 1;
    size_t n = (size_t)C * h * w, SD = (size_t)S * m->joint_dim, P = (size_t)m->pooled_dim;
    float *x = locus_alloc(B * n * sizeof(float)), *eps = locus_alloc(B * n * sizeof(float)), *g = locus_alloc(n * sizeof(float));
    float *ctx = locus_alloc(B * SD * sizeof(float)), *pl = locus_alloc(B * P * sizeof(float));
    if (!x || !eps || !g || !ctx || !pl) {
        locus_free(x); locus_free(eps); locus_free(g); locus_free(ctx); locus_free(pl);
        return locus_fail(LOCUS_E_NOMEM, "out of memory for sampling");
    }
    if (cfg) {
        memcpy(ctx, ctx_uncond, SD * sizeof(float)); memcpy(ctx + SD, ctx_cond, SD * sizeof(float));
        memcpy(pl, pooled_uncond, P * sizeof(float)); memcpy(pl + P, pooled_cond, P * sizeof(float));
    } else {
        memcpy(ctx, ctx_cond, SD * sizeof(float)); memcpy(pl, pooled_cond, P * sizeof(float));
    }
    for (int i = 0; i < s->nevals; i++) {
        float tv = locus_scheduler_timestep(s, i), t[2] = {tv, tv};
        for (int b = 0; b < B; b++) locus_scheduler_scale_input(s, i, latent, x + b * n, n);
        locus_hooks hk = hooks ? *hooks : (locus_hooks){0};
        hk.step = i;
        locus_mmdit_forward(m, x, B, h, w, t, ctx, S, pl, eps, &hk);
        const float *pe = cfg ? eps + n : eps;
        if (cfg) locus_binary(eps, eps + n, g, n, LOCUS_BIN_CFG, guidance);
        else memcpy(g, pe, n * sizeof(float));
        if ((st = locus_scheduler_step(s, i, g, latent, latent, n))) break;
        if (cb && cb->on_step) cb->on_step(cb->ctx, i, s->nevals, cfg ? eps : NULL, pe, g, latent, n);
    }
    locus_free(x); locus_free(eps); locus_free(g); locus_free(ctx); locus_free(pl);
    return st;
}
