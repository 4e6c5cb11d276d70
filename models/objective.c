/* objective.c — DDPM / v / flow-matching training inputs and one loss + backward on any denoiser (see
 * objective.h). */
#include "objective.h"

#include <math.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops_bwd.h"

locus_status locus_objective_init(locus_objective *o, const locus_denoiser *d, const locus_scheduler *s) {
    memset(o, 0, sizeof *o);
    o->num_train = 1000;
    if (!s) {
        if (!d->flow_default)
            return locus_fail(LOCUS_E_NOTFOUND, "the training objective needs the model's scheduler/ folder (its betas and prediction type)");
        o->kind = LOCUS_OBJ_FLOW;
        return LOCUS_OK;
    }
    o->num_train = s->num_train;
    if (s->kind == LOCUS_SCHED_FLOW) { o->kind = LOCUS_OBJ_FLOW; return LOCUS_OK; }
    if (!s->alphas_cumprod || s->num_train < 1) return locus_fail(LOCUS_E_FORMAT, "scheduler without training timesteps");
    o->kind = s->pred == LOCUS_PRED_V ? LOCUS_OBJ_V : LOCUS_OBJ_EPSILON;
    o->alphas_cumprod = s->alphas_cumprod;
    return LOCUS_OK;
}

const char *locus_objective_time_name(const locus_objective *o) { return o->kind == LOCUS_OBJ_FLOW ? "sigmas" : "timesteps"; }

locus_status locus_objective_inputs(const locus_objective *o, const float *x0, const float *noise, const float *tvals, int B,
                                    size_t n, float *noisy, float *target, float *timesteps) {
    for (int b = 0; b < B; b++) {
        const float *xb = x0 + (size_t)b * n, *nb = noise + (size_t)b * n;
        float tv = tvals[b];
        if (o->kind == LOCUS_OBJ_FLOW) { /* rectified flow, as diffusers' train_dreambooth_sd3 */
            if (!(tv >= 0.0f && tv <= 1.0f)) return locus_fail(LOCUS_E_ARG, "sigma %g of sample %d outside [0, 1]", tv, b);
            float one_m = 1.0f - tv;
            for (size_t i = 0; i < n; i++) {
                if (noisy) {
                    float u = one_m * xb[i], v = tv * nb[i];
                    noisy[(size_t)b * n + i] = u + v;
                }
                if (target) target[(size_t)b * n + i] = nb[i] - xb[i];
            }
            if (timesteps) timesteps[b] = tv * (float)o->num_train;
            continue;
        }
        int t = (int)tv;
        if (tv != (float)t || t < 0 || t >= o->num_train)
            return locus_fail(LOCUS_E_ARG, "timestep %g of sample %d is not an integer in [0, %d)", tv, b, o->num_train);
        /* DDPMScheduler.add_noise / get_velocity in fp32 */
        float a = o->alphas_cumprod[t], sa = sqrtf(a), s1 = sqrtf(1.0f - a);
        for (size_t i = 0; i < n; i++) {
            if (noisy) noisy[(size_t)b * n + i] = sa * xb[i] + s1 * nb[i];
            if (target) target[(size_t)b * n + i] = o->kind == LOCUS_OBJ_V ? sa * nb[i] - s1 * xb[i] : nb[i];
        }
        if (timesteps) timesteps[b] = tv;
    }
    return LOCUS_OK;
}

locus_status locus_denoiser_loss_grad(const locus_denoiser *d, const locus_objective *o, const float *x0, const float *noise,
                                      const float *tvals, int B, int H, int W, const float *ctx, int S, const float *pooled,
                                      int checkpoint, const locus_grads *g, float *loss, float *pred, float *noisy, float *target,
                                      float *dnoisy, float *dctx, float *dpooled) {
    if (!d->ops->train_forward || !d->ops->backward) return locus_fail(LOCUS_E_UNSUPPORTED, "%s cannot be trained yet", d->ops->class_name);
    if (d->in_channels != d->out_channels)
        return locus_fail(LOCUS_E_UNSUPPORTED, "training objective: in_channels %d != out_channels %d", d->in_channels, d->out_channels);
    if (B < 1 || H < 1 || W < 1) return locus_fail(LOCUS_E_ARG, "training objective: empty batch (%d x %dx%d)", B, H, W);
    size_t n = (size_t)d->in_channels * H * W, tot = (size_t)B * n;
    float *xn = locus_alloc(tot * sizeof(float)), *tg = locus_alloc(tot * sizeof(float)); /* [B,C,H,W] */
    float *out = locus_alloc(tot * sizeof(float)), *dout = locus_alloc(tot * sizeof(float)); /* prediction, d loss / d prediction */
    float *ts = locus_alloc((size_t)B * sizeof(float));
    locus_status st = !xn || !tg || !out || !dout || !ts ? locus_fail(LOCUS_E_NOMEM, "out of memory for a training batch") : LOCUS_OK;
    if (!st) st = locus_objective_inputs(o, x0, noise, tvals, B, n, xn, tg, ts);
    void *tape = NULL;
    if (!st) st = d->ops->train_forward(d, xn, B, H, W, ts, ctx, S, pooled, out, checkpoint, &tape);
    if (!st) {
        float l = locus_mse_loss(out, tg, tot, dout, 1.0f);
        if (loss) *loss = l;
        if (pred) memcpy(pred, out, tot * sizeof(float));
        if (noisy) memcpy(noisy, xn, tot * sizeof(float));
        if (target) memcpy(target, tg, tot * sizeof(float));
        st = d->ops->backward(d, tape, dout, dnoisy, dctx, dpooled, g);
    }
    locus_free(xn); locus_free(tg); locus_free(out); locus_free(dout); locus_free(ts);
    return st;
}
