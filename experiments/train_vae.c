/* train_vae.c — `locus train vae`: an AutoencoderKL from scratch on an image folder.
 *
 * Loss (as `locus grad`'s VAE objective, experiments/grad.c): z = mean + exp(logvar / 2) eps with eps ~ randn,
 * loss = MSE(decode(z), x) + kl_weight * mean over the batch of KL(q(z|x) || N(0, 1)), where KL per sample is
 * 0.5 sum(mean^2 + exp(logvar) - 1 - logvar) (double accumulation in element order).  Backward through the
 * hand-written decoder and encoder backwards (models/vae_bwd.h), every parameter trained with AdamW.
 * Output: OUT/vae/config.json (diffusers' keys; scaling_factor = 1 / std of the posterior means over the
 * data, as Stable Diffusion's 0.18215 was chosen) and OUT/vae/diffusion_pytorch_model.safetensors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/version.h"
#include "../models/vae.h"
#include "../models/vae_bwd.h"
#include "../simd/kernels.h"
#include "../simd/ops.h"
#include "../simd/ops_bwd.h"
#include "../simd/sleef_names.h"
#include "train_lora.h"
#include "train_model.h"

typedef struct {
    locus_vae v;
    locus_train_images img;
    int f, B;
    int *perm;
    int64_t perm_epoch;
} vae_stage;

/* One batch: loss and gradients of every parameter (accumulated into t->grads). */
static locus_status vae_eval(locus_trainer *t, int64_t step, float *loss) {
    vae_stage *s = t->ctx;
    const locus_vae *v = &s->v;
    int B = s->B, H = s->img.H, W = s->img.W, h = H / s->f, w = W / s->f, L = v->latent_channels;
    size_t ni = (size_t)B * 3 * H * W, nl = (size_t)B * L * h * w;
    float *x = locus_alloc(ni * 4);     /* [B,3,H,W] images in [-1,1] */
    float *rec = locus_alloc(ni * 4);   /* [B,3,H,W] reconstruction */
    float *drec = locus_alloc(ni * 4);  /* [B,3,H,W] d loss / d rec */
    float *eps = locus_alloc(nl * 4);   /* [B,L,h,w] posterior noise */
    float *mean = locus_alloc(nl * 4);  /* [B,L,h,w] */
    float *lv = locus_alloc(nl * 4);    /* [B,L,h,w] log-variance (clamped) */
    float *z = locus_alloc(nl * 4);     /* [B,L,h,w] sample */
    float *dz = locus_alloc(nl * 4);    /* [B,L,h,w] */
    float *dmean = locus_alloc(nl * 4); /* [B,L,h,w] */
    float *dlv = locus_alloc(nl * 4);   /* [B,L,h,w] */
    locus_status st = LOCUS_OK;
    locus_vae_tape *te = NULL, *td = NULL;
    if (!x || !rec || !drec || !eps || !mean || !lv || !z || !dz || !dmean || !dlv) { st = locus_fail(LOCUS_E_NOMEM, "out of memory for a VAE batch of %d", B); goto done; }
    for (int i = 0; i < B; i++) {
        int ex = locus_train_example_at(s->img.n, (step - 1) * B + i, t->o->seed, s->perm, &s->perm_epoch);
        locus_train_image_f32(&s->img, ex, x + (size_t)i * 3 * H * W);
    }
    locus_randn_gen(&t->rng, eps, nl);
    if ((st = locus_vae_encode_train(v, x, B, H, W, mean, lv, t->o->grad_ckpt, &te))) goto done;
    for (size_t i = 0; i < nl; i++) z[i] = mean[i] + LOCUS_EXPF_1(0.5f * lv[i]) * eps[i];
    if ((st = locus_vae_decode_train(v, z, B, h, w, rec, t->o->grad_ckpt, &td))) goto done;
    float mse = locus_mse_loss(rec, x, ni, drec, 1.0f);
    size_t pl = nl / B;
    double klsum = 0;
    for (int b = 0; b < B; b++) {
        double acc = 0;
        for (size_t i = b * pl; i < (b + 1) * pl; i++) acc += (double)(mean[i] * mean[i] + LOCUS_EXPF_1(lv[i]) - 1.0f - lv[i]);
        klsum += (float)(0.5 * acc);
    }
    const float kw = (float)t->o->kl_weight;
    *loss = mse + kw * (float)(klsum / B);
    st = locus_vae_decode_backward(v, td, drec, dz, &t->grads);
    td = NULL;
    if (st) goto done;
    float c = kw / (float)B; /* d(kw * mean_b kl_b) / d(mean, logvar) = c * (mean, 0.5 (exp(logvar) - 1)) */
    for (size_t i = 0; i < nl; i++) {
        float sd = LOCUS_EXPF_1(0.5f * lv[i]);
        dmean[i] = dz[i] + c * mean[i];
        dlv[i] = dz[i] * eps[i] * 0.5f * sd + c * 0.5f * (LOCUS_EXPF_1(lv[i]) - 1.0f);
    }
    st = locus_vae_encode_backward(v, te, dmean, dlv, NULL, &t->grads);
    te = NULL;
done:
    if (te) locus_vae_tape_free(te);
    if (td) locus_vae_tape_free(td);
    locus_free(x); locus_free(rec); locus_free(drec); locus_free(eps); locus_free(mean); locus_free(lv);
    locus_free(z); locus_free(dz); locus_free(dmean); locus_free(dlv);
    return st;
}

/* Progress picture at a checkpoint: the first --samples training images over their reconstructions
 * decode(mean) -> OUT/train/vae_step<N>.png. */
static locus_status vae_pictures(locus_trainer *t, int64_t step) {
    const vae_stage *s = t->ctx;
    int n = s->img.n < t->o->samples ? s->img.n : t->o->samples, H = s->img.H, W = s->img.W, h = H / s->f, w = W / s->f;
    if (t->o->samples == 0) return LOCUS_OK;
    size_t ni = (size_t)3 * H * W, nl = (size_t)s->v.latent_channels * h * w;
    float *img = locus_alloc(2 * n * ni * 4), *mu = locus_alloc(n * nl * 4); /* [2,n,3,H,W] originals, reconstructions; [n,L,h,w] */
    if (!img || !mu) { locus_free(img); locus_free(mu); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    for (int i = 0; i < n; i++) locus_train_image_f32(&s->img, i, img + i * ni);
    locus_vae_encode(&s->v, img, n, H, W, mu, NULL, NULL);
    locus_vae_decode(&s->v, mu, n, h, w, img + n * ni, NULL);
    char path[4400];
    snprintf(path, sizeof path, "%s/vae_step%lld.png", t->workdir, (long long)step);
    locus_status st = locus_train_save_grid(path, img, 2, n, H, W);
    locus_free(img);
    locus_free(mu);
    return st;
}

/* 1 / std of the posterior means over (up to 256 of) the images: the latent scaling diffusers' pipelines
 * apply, chosen so the denoiser sees unit-variance latents (two-pass mean / variance in double). */
static double latent_scale(const vae_stage *s) {
    int H = s->img.H, W = s->img.W, h = H / s->f, w = W / s->f, L = s->v.latent_channels;
    int n = s->img.n < 256 ? s->img.n : 256;
    size_t per = (size_t)L * h * w;
    float *x = locus_alloc((size_t)3 * H * W * 4), *mu = locus_alloc(per * n * 4); /* [1,3,H,W], [n,L,h,w] */
    if (!x || !mu) { locus_free(x); locus_free(mu); return 1.0; }
    for (int i = 0; i < n; i++) {
        locus_train_image_f32(&s->img, i, x);
        locus_vae_encode(&s->v, x, 1, H, W, mu + per * i, NULL, NULL);
    }
    double m = 0, var = 0;
    size_t N = per * n;
    for (size_t k = 0; k < N; k++) m += mu[k];
    m /= (double)N;
    for (size_t k = 0; k < N; k++) var += (mu[k] - m) * (mu[k] - m);
    var /= (double)(N > 1 ? N - 1 : 1);
    locus_free(x);
    locus_free(mu);
    return var > 0 ? 1.0 / sqrt(var) : 1.0;
}

int locus_train_vae(const locus_train_opts *o0) {
    locus_train_opts o = *o0;
    if (o.lr < 0) o.lr = 1e-4;
    if (!o.data || !o.config) { fprintf(stderr, "locus train vae: --data DIR and --config VAE_CONFIG.json are required\n"); return 2; }
    if (o.threads) locus_set_threads(o.threads);
    vae_stage s;
    memset(&s, 0, sizeof s);
    s.perm_epoch = -1;
    locus_trainer t;
    memset(&t, 0, sizeof t);
    char dir[4200], cfg[4300], wpath[4400], *cfgtext = NULL;
    int rc = 2, loaded = 0;
    locus_status st = locus_train_images_load(&s.img, o.data, o.W, o.H);
    if (!st) st = locus_mkdir(o.out);
    snprintf(dir, sizeof dir, "%s/vae", o.out);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (!st) st = locus_mkdir(dir);
    if (!st) st = locus_train_config_text(LOCUS_CFG_VAE, o.config, NULL, &cfgtext);
    if (!st) st = locus_write_atomic(cfg, cfgtext, strlen(cfgtext));
    locus_loader_set_plain_weights(1);
    if (!st) { st = locus_vae_load_random(&s.v, cfg, o.seed); loaded = !st; }
    locus_loader_set_plain_weights(0);
    if (st) goto out;
    locus_train_init_torch(&s.v.L, o.seed);
    s.f = 1 << (s.v.nblocks - 1);
    if (s.img.W % s.f || s.img.H % s.f) { st = locus_fail(LOCUS_E_ARG, "images of %dx%d: width and height must be multiples of the VAE factor %d", s.img.W, s.img.H, s.f); goto out; }
    if (!o.steps) o.steps = (s.img.n + o.batch_size - 1) / o.batch_size;
    s.B = o.batch_size;
    s.perm = malloc((size_t)s.img.n * sizeof(int));
    if (!s.perm) { st = locus_fail(LOCUS_E_NOMEM, "out of memory"); goto out; }
    if ((st = locus_trainer_init(&t, &o, "vae", &s.v.L, NULL))) goto out;
    unsigned long long hsh = 1469598103934665603ull; /* FNV-1a of the written config: the architecture */
    for (const char *c = cfgtext; *c; c++) hsh = (hsh ^ (unsigned char)*c) * 1099511628211ull;
    snprintf(t.settings, sizeof t.settings, "vae;data=%s;n=%d;size=%dx%d;config=%016llx;lr=%.17g;wd=%.17g;betas=%.17g,%.17g;eps=%.17g;clip=%.17g;"
             "warmup=%d;batch=%d;seed=%llu;kl=%.17g", o.data, s.img.n, s.img.W, s.img.H, hsh, o.lr, o.wd, o.b1, o.b2, o.eps, o.clip, o.warmup,
             o.batch_size, (unsigned long long)o.seed, o.kl_weight);
    t.eval = vae_eval;
    t.on_checkpoint = vae_pictures;
    t.ctx = &s;
    fprintf(stderr, "locus: train vae: %d images %dx%d, %zu parameters, latent %dx%dx%d, %d steps of %d\n", s.img.n, s.img.W, s.img.H, s.v.L.nparams,
            s.v.latent_channels, s.img.H / s.f, s.img.W / s.f, o.steps, o.batch_size);
    if ((st = locus_trainer_run(&t))) goto out;
    locus_trainer_swap_ema(&t); /* the output is the averaged weights (no-op without --ema) */
    char over[128];
    double scale = (double)(float)latent_scale(&s);
    snprintf(over, sizeof over, "{\"scaling_factor\": %.9g}", scale);
    snprintf(wpath, sizeof wpath, "%s/diffusion_pytorch_model.safetensors", dir);
    const char *meta[] = {"format", "pt", "locus_version", LOCUS_VERSION, NULL};
    if ((st = locus_train_write_config(LOCUS_CFG_VAE, o.config, over, cfg)) || (st = locus_train_save_weights(&t.grads, wpath, meta, o.fp16))) goto out;
    fprintf(stderr, "locus: train vae: %d steps, final loss %.6f; wrote %s (scaling_factor %.9g)\n", o.steps, t.losses[o.steps - 1], dir, scale);
    rc = 0;
out:
    if (st) fprintf(stderr, "locus train vae: %s\n", locus_errmsg());
    locus_trainer_free(&t);
    free(s.perm);
    free(cfgtext);
    locus_train_images_free(&s.img);
    if (loaded) locus_vae_free(&s.v);
    return rc;
}
