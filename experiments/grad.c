/* grad.c — `locus grad`: one training-loss evaluation (UNet denoising MSE or the VAE reconstruction + KL
 * loss) on tensors from a batch file, its backward through the hand-written backward passes
 * (models/unet_bwd.c, models/vae_bwd.c), and a safetensors dump of the loss, the prediction, every trainable
 * parameter's gradient (`grad.<diffusers name>`) and the input gradients (`grad_input.*`) — the same names
 * as the torch-autograd goldens (shared/golden/train), so a dump can be compared tensor by tensor. */
#include "grad.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/arena.h"
#include "../core/json.h"
#include "../core/version.h"
#include "../models/unet_bwd.h"
#include "../models/vae_bwd.h"
#include "../simd/ops.h"
#include "../simd/ops_bwd.h"
#include "../simd/sleef_names.h"

void locus_grad_out_free(locus_grad_out *o) {
    for (int i = 0; i < o->n; i++) locus_free(o->t[i].data);
    free(o->t);
    memset(o, 0, sizeof *o);
}

const locus_grad_tensor *locus_grad_out_find(const locus_grad_out *o, const char *name) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->t[i].name, name)) return &o->t[i];
    return NULL;
}

/* add a copy of data[shape] under name */
static locus_status out_add(locus_grad_out *o, const char *name, const float *data, int ndim, int64_t d0, int64_t d1, int64_t d2,
                            int64_t d3) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 16;
        locus_grad_tensor *t = realloc(o->t, (size_t)cap * sizeof *t);
        if (!t) return locus_fail(LOCUS_E_NOMEM, "grad: out of memory");
        o->t = t;
        o->cap = cap;
    }
    locus_grad_tensor *t = &o->t[o->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    int64_t d[4] = {d0, d1, d2, d3};
    size_t n = 1;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) { t->shape[i] = d[i]; n *= (size_t)d[i]; }
    t->data = locus_alloc((n ? n : 1) * sizeof(float));
    if (!t->data) return locus_fail(LOCUS_E_NOMEM, "grad: out of memory");
    memcpy(t->data, data, n * sizeof(float));
    o->n++;
    return LOCUS_OK;
}

/* Batch tensor `name` (or "batch0.<name>") as fp32 (integer dtypes converted); shape must have ndim dims;
 * want[i] >= 0 fixes a dimension.  Returns a locus_alloc'd buffer or NULL with the error set. */
static float *batch_get(const locus_st_file *f, const char *name, int ndim, const int64_t *want, int64_t *shape) {
    char alt[128];
    const locus_st_tensor *t = locus_st_find(f, name);
    if (!t) {
        snprintf(alt, sizeof alt, "batch0.%s", name);
        t = locus_st_find(f, alt);
    }
    if (!t) { locus_fail(LOCUS_E_NOTFOUND, "%s: no tensor '%s' (or 'batch0.%s')", f->path, name, name); return NULL; }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 || t->shape[i] == want[i];
    if (!ok) {
        char s[96] = "";
        for (int i = 0; i < t->ndim; i++) snprintf(s + strlen(s), sizeof s - strlen(s), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        locus_fail(LOCUS_E_SHAPE, "%s: tensor '%s' has shape [%s], expected %d dims%s", f->path, t->name, s, ndim,
                   ndim == 4 ? " [B,C,H,W] matching the model" : " matching the model and batch");
        return NULL;
    }
    int64_t n = locus_st_numel(t);
    for (int i = 0; i < ndim; i++) shape[i] = t->shape[i];
    float *x = locus_alloc((size_t)(n ? n : 1) * sizeof(float));
    if (t->dtype == LOCUS_I64 || t->dtype == LOCUS_I32) {
        int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
        if (locus_st_to_i64(t, v, n)) { free(v); locus_free(x); return NULL; }
        for (int64_t i = 0; i < n; i++) x[i] = (float)v[i];
        free(v);
    } else if (locus_st_to_f32(t, x, n)) {
        locus_free(x);
        return NULL;
    }
    return x;
}

locus_status locus_grad_unet(const locus_unet *u, const locus_scheduler *s, const locus_st_file *batch, int checkpoint,
                             const locus_grads *g, locus_grad_out *out) {
    locus_status st = LOCUS_OK;
    int64_t sx[4], sn[4], st_[1], sc[3];
    int64_t w4[4] = {-1, u->in_channels, -1, -1};
    float *x0 = NULL, *noise = NULL, *ts = NULL, *ctx = NULL, *noisy = NULL, *target = NULL, *pred = NULL, *dpred = NULL, *dx = NULL, *dctx = NULL;
    memset(out, 0, sizeof *out);
    if (!(x0 = batch_get(batch, "x0", 4, w4, sx))) { st = LOCUS_E_NOTFOUND; goto done; }
    int64_t wn[4] = {sx[0], sx[1], sx[2], sx[3]}, wt[1] = {sx[0]}, wc[3] = {sx[0], -1, u->ctx_dim};
    if (!(noise = batch_get(batch, "noise", 4, wn, sn)) || !(ts = batch_get(batch, "timesteps", 1, wt, st_)) ||
        !(ctx = batch_get(batch, "encoder_hidden_states", 3, wc, sc))) { st = LOCUS_E_NOTFOUND; goto done; }
    int B = (int)sx[0], C = (int)sx[1], H = (int)sx[2], W = (int)sx[3], S = (int)sc[1];
    size_t plane = (size_t)C * H * W, n = (size_t)B * plane, nctx = (size_t)B * S * u->ctx_dim;
    noisy = locus_alloc(n * sizeof(float)); target = locus_alloc(n * sizeof(float));
    pred = locus_alloc((size_t)B * u->out_channels * H * W * sizeof(float));
    dpred = locus_alloc((size_t)B * u->out_channels * H * W * sizeof(float));
    dx = locus_alloc(n * sizeof(float)); dctx = locus_alloc(nctx * sizeof(float));
    if (u->out_channels != C) { st = locus_fail(LOCUS_E_SHAPE, "grad: the UNet predicts %d channels, x0 has %d", u->out_channels, C); goto done; }
    /* DDPMScheduler.add_noise / get_velocity in fp32 */
    for (int b = 0; b < B; b++) {
        float tf = ts[b];
        int t = (int)tf;
        if (tf != (float)t || t < 0 || t >= s->num_train) {
            st = locus_fail(LOCUS_E_ARG, "%s: timestep %g is not an integer in [0, %d)", batch->path, tf, s->num_train);
            goto done;
        }
        float a = s->alphas_cumprod[t], sa = sqrtf(a), s1 = sqrtf(1.0f - a);
        for (size_t i = b * plane; i < (b + 1) * plane; i++) {
            noisy[i] = sa * x0[i] + s1 * noise[i];
            target[i] = s->pred == LOCUS_PRED_V ? sa * noise[i] - s1 * x0[i] : noise[i];
        }
    }
    locus_unet_tape *tape;
    if ((st = locus_unet_forward_train(u, noisy, B, H, W, ts, ctx, S, pred, checkpoint, &tape))) goto done;
    out->loss = locus_mse_loss(pred, target, n, dpred, 1.0f);
    if ((st = locus_unet_backward(u, tape, dpred, dx, dctx, g))) goto done;
    if ((st = out_add(out, "loss", &out->loss, 1, 1, 0, 0, 0)) || (st = out_add(out, "pred", pred, 4, B, C, H, W)) ||
        (st = out_add(out, "noisy", noisy, 4, B, C, H, W)) || (st = out_add(out, "target", target, 4, B, C, H, W)) ||
        (st = out_add(out, "grad_input.sample", dx, 4, B, C, H, W)) ||
        (st = out_add(out, "grad_input.encoder_hidden_states", dctx, 3, B, S, u->ctx_dim, 0)))
        goto done;
done:
    locus_free(x0); locus_free(noise); locus_free(ts); locus_free(ctx); locus_free(noisy); locus_free(target);
    locus_free(pred); locus_free(dpred); locus_free(dx); locus_free(dctx);
    if (st) locus_grad_out_free(out);
    return st;
}

locus_status locus_grad_vae(const locus_vae *v, const locus_st_file *batch, int checkpoint, const locus_grads *g, locus_grad_out *out) {
    locus_status st = LOCUS_OK;
    int f = 1 << (v->nblocks - 1), Lc = v->latent_channels;
    int64_t sx[4], se[4], wx[4] = {-1, v->in_channels, -1, -1};
    float *x = NULL, *eps = NULL, *mean = NULL, *lv = NULL, *z = NULL, *rec = NULL, *drec = NULL, *dz = NULL, *dmean = NULL, *dlv = NULL, *dx = NULL;
    float kl[64];
    memset(out, 0, sizeof *out);
    if (!(x = batch_get(batch, "x", 4, wx, sx))) { st = LOCUS_E_NOTFOUND; goto done; }
    int B = (int)sx[0], H = (int)sx[2], W = (int)sx[3], h = H / f, w = W / f;
    int64_t we[4] = {B, Lc, h, w};
    if (!(eps = batch_get(batch, "eps", 4, we, se))) { st = LOCUS_E_NOTFOUND; goto done; }
    if (B > 64) { st = locus_fail(LOCUS_E_ARG, "grad: VAE batch of %d images (at most 64)", B); goto done; }
    size_t nl = (size_t)B * Lc * h * w, ni = (size_t)B * v->in_channels * H * W, no = (size_t)B * v->out_channels * H * W;
    if (no != ni) { st = locus_fail(LOCUS_E_SHAPE, "grad: VAE in_channels %d != out_channels %d", v->in_channels, v->out_channels); goto done; }
    mean = locus_alloc(nl * 4); lv = locus_alloc(nl * 4); z = locus_alloc(nl * 4); dz = locus_alloc(nl * 4);
    dmean = locus_alloc(nl * 4); dlv = locus_alloc(nl * 4);
    rec = locus_alloc(no * 4); drec = locus_alloc(no * 4); dx = locus_alloc(ni * 4);
    locus_vae_tape *te, *td;
    if ((st = locus_vae_encode_train(v, x, B, H, W, mean, lv, checkpoint, &te))) goto done;
    /* DiagonalGaussianDistribution.sample: z = mean + exp(0.5 logvar) * eps */
    for (size_t i = 0; i < nl; i++) z[i] = mean[i] + LOCUS_EXPF_1(0.5f * lv[i]) * eps[i];
    if ((st = locus_vae_decode_train(v, z, B, h, w, rec, checkpoint, &td))) { locus_vae_tape_free(te); goto done; }
    float mse = locus_mse_loss(rec, x, no, drec, 1.0f);
    /* kl = 0.5 * sum(mean^2 + var - 1 - logvar) per sample (double accumulation, fixed order) */
    size_t pl = nl / B;
    double klsum = 0;
    for (int b = 0; b < B; b++) {
        double acc = 0;
        for (size_t i = b * pl; i < (b + 1) * pl; i++) acc += (double)(mean[i] * mean[i] + LOCUS_EXPF_1(lv[i]) - 1.0f - lv[i]);
        kl[b] = (float)(0.5 * acc);
        klsum += kl[b];
    }
    const float kw = 1e-6f;
    out->loss = mse + kw * (float)(klsum / B);
    if ((st = locus_vae_decode_backward(v, td, drec, dz, g))) { locus_vae_tape_free(te); goto done; }
    float c = kw / (float)B; /* d(kw * mean_b kl_b) = c * (mean, 0.5 (exp(logvar) - 1)) */
    for (size_t i = 0; i < nl; i++) {
        float sd = LOCUS_EXPF_1(0.5f * lv[i]);
        dmean[i] = dz[i] + c * mean[i];
        dlv[i] = dz[i] * eps[i] * 0.5f * sd + c * 0.5f * (LOCUS_EXPF_1(lv[i]) - 1.0f);
    }
    if ((st = locus_vae_encode_backward(v, te, dmean, dlv, dx, g))) goto done;
    for (size_t i = 0; i < ni; i++) dx[i] -= drec[i]; /* x is also the regression target */
    if ((st = out_add(out, "loss", &out->loss, 1, 1, 0, 0, 0)) || (st = out_add(out, "pred", rec, 4, B, v->out_channels, H, W)) ||
        (st = out_add(out, "mean", mean, 4, B, Lc, h, w)) || (st = out_add(out, "logvar", lv, 4, B, Lc, h, w)) ||
        (st = out_add(out, "z", z, 4, B, Lc, h, w)) || (st = out_add(out, "kl", kl, 1, B, 0, 0, 0)) ||
        (st = out_add(out, "grad_input.sample", dx, 4, B, v->in_channels, H, W)))
        goto done;
done:
    locus_free(x); locus_free(eps); locus_free(mean); locus_free(lv); locus_free(z); locus_free(rec); locus_free(drec);
    locus_free(dz); locus_free(dmean); locus_free(dlv); locus_free(dx);
    if (st) locus_grad_out_free(out);
    return st;
}
