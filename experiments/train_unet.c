/* train_unet.c — `locus train unet`: a UNet2DConditionModel from scratch on the latents of a trained VAE.
 *
 * Up front, with the base pipeline folder's vae/, text_encoder/ and tokenizer/ (both frozen): every image
 * is encoded once to its latent posterior (mean, std = exp(logvar / 2)), every distinct caption and the empty
 * caption once to [77, D] text embeddings (exactly as `locus generate` encodes prompts: the same function).
 * Per step, the LoRA trainer's sampler (train_lora.h: locus_train_data_batch) draws from one generator the
 * latents (mean + std * randn - shift) * scaling, the noise and the DDPM timesteps randint(0, N); then one
 * uniform per example replaces its caption by the empty caption with probability --cfg-dropout (classifier-
 * free guidance, as diffusers' proportion_empty_prompts).  Loss = the scheduler's objective (epsilon or v,
 * models/objective.h), every UNet parameter trained with AdamW.  Output: OUT/unet/config.json (diffusers'
 * keys) and OUT/unet/diffusion_pytorch_model.safetensors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/version.h"
#include "../models/pipeline.h"
#include "../models/unet.h"
#include "../simd/ops.h"
#include "../simd/sleef_names.h"
#include "train_lora.h"
#include "train_model.h"

typedef struct {
    locus_train_data d;   /* latent posteriors and caption embeddings (train_lora.h) */
    locus_train_model m;  /* the denoiser, its scheduler and objective */
    float *null_ctx;      /* [S,D] embedding of the empty caption */
    int B;
    locus_vae v;          /* the frozen VAE (progress pictures decode with it) */
    int has_v;
    locus_scheduler sample_sched; /* a second copy of the scheduler for sampling pictures */
    int has_sample_sched;
    int train_text;       /* --train-text-encoder: embeddings computed per step from tt's current weights */
    locus_text_train tt;
    int *cap;             /* [B] caption index of each example of the step (-1: the empty caption) */
    char **caps;          /* [d.nprompts] the distinct captions (pointers into the image folder's) */
} unet_stage;

/* The conditioning of caption i (-1: empty) with the weights as they are now: [S,D] into out (no pooled). */
static locus_status caption_ctx(const void *vs, int i, float *out, float *pooled) {
    const unet_stage *s = vs;
    (void)pooled;
    if (s->train_text) return locus_text_train_embed(&s->tt, &i, 1, out);
    memcpy(out, i < 0 ? s->null_ctx : s->d.ctx + (size_t)i * s->d.S * s->d.D, (size_t)s->d.S * s->d.D * sizeof(float));
    return LOCUS_OK;
}

/* Progress picture at a checkpoint (train_stage.c): DDIM, 20 steps, guidance 7.5 -> OUT/train/unet_step<N>.png. */
static locus_status unet_pictures(locus_trainer *t, int64_t step) {
    unet_stage *s = t->ctx;
    locus_train_pics p = {&s->m.den, s->has_sample_sched ? &s->sample_sched : NULL, s->has_v ? &s->v : NULL, &s->d, s->d.S, s->d.D, 0, 7.5f,
                          caption_ctx, s};
    return locus_train_pictures(t, step, &p);
}

static locus_status unet_eval(locus_trainer *t, int64_t step, float *loss) {
    unet_stage *s = t->ctx;
    locus_train_batch b;
    locus_status st = locus_train_data_batch(&s->d, &s->m, (step - 1) * s->B, s->B, t->o->seed, &t->rng, &b);
    if (st) return st;
    size_t sd = (size_t)b.S * b.D;
    st = locus_train_step_captions(t, &s->d, step, b.B, s->cap);
    for (int i = 0; i < b.B && !st && !s->train_text; i++) /* frozen text: the batch holds the captions' embeddings; dropped ones */
        if (s->cap[i] < 0) memcpy(b.ctx + i * sd, s->null_ctx, sd * sizeof(float));
    float *dctx = NULL;
    if (!st && s->train_text) {
        if (!(dctx = malloc((size_t)b.B * sd * sizeof(float)))) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
        if (!st) st = locus_text_train_embed(&s->tt, s->cap, b.B, b.ctx);
    }
    if (!st)
        st = locus_denoiser_loss_grad(&s->m.den, &s->m.ob, b.x0, b.noise, b.t, b.B, b.H, b.W, b.ctx, b.S, NULL, t->o->grad_ckpt, &t->grads, loss,
                                      NULL, NULL, NULL, NULL, dctx, NULL);
    if (!st && s->train_text) st = locus_text_train_backward(&s->tt, s->cap, b.B, dctx, &t->grads);
    free(dctx);
    locus_train_batch_free(&b);
    return st;
}

locus_status locus_train_encode_latents(locus_train_data *d, const locus_vae *v, const locus_train_images *img) {
    int f = 1 << (v->nblocks - 1), H = img->H, W = img->W;
    if (H % f || W % f) return locus_fail(LOCUS_E_ARG, "images of %dx%d are not multiples of the VAE factor %d", W, H, f);
    d->n = img->n; d->C = v->latent_channels; d->h = H / f; d->w = W / f;
    d->scaling = v->scaling_factor; d->shift = v->shift_factor;
    size_t lat = (size_t)d->C * d->h * d->w;
    const int EB = 8; /* images per encoder call */
    d->mean = malloc((size_t)d->n * lat * sizeof(float));
    d->std = malloc((size_t)d->n * lat * sizeof(float));
    d->prompt = malloc((size_t)d->n * sizeof(int));
    float *x = locus_alloc((size_t)EB * 3 * H * W * 4), *lv = locus_alloc((size_t)EB * lat * 4); /* [EB,3,H,W], [EB,C,h,w] */
    if (!d->mean || !d->std || !d->prompt || !x || !lv) { locus_free(x); locus_free(lv); return locus_fail(LOCUS_E_NOMEM, "out of memory for the latent cache"); }
    for (int i0 = 0; i0 < d->n; i0 += EB) {
        int nb = d->n - i0 < EB ? d->n - i0 : EB;
        for (int i = 0; i < nb; i++) locus_train_image_f32(img, i0 + i, x + (size_t)i * 3 * H * W);
        locus_vae_encode(v, x, nb, H, W, d->mean + (size_t)i0 * lat, lv, NULL);
        for (size_t k = 0; k < (size_t)nb * lat; k++) d->std[(size_t)i0 * lat + k] = LOCUS_EXPF_1(0.5f * lv[k]);
    }
    locus_free(x);
    locus_free(lv);
    return LOCUS_OK;
}

/* Latent posteriors of every image and embeddings of every caption (+ the empty one) into s. */
static locus_status encode_data(unet_stage *s, const char *base, const locus_train_images *img) {
    char c[4400];
    locus_pipeline p; /* only the prompt-encoding members: the text encoder and tokenizer */
    locus_status st = locus_pipeline_open_text(&p, base);
    if (st) return locus_fail(st, "--base %s", locus_errmsg());
    snprintf(c, sizeof c, "%s/vae", base);
    if ((st = locus_vae_load(&s->v, c))) { st = locus_fail(st, "--base %s: vae: %s (train it first: locus train vae)", base, locus_errmsg()); goto done; }
    s->has_v = 1; /* kept for the progress pictures; freed with the stage */
    locus_train_data *d = &s->d;
    if ((st = locus_train_encode_latents(d, &s->v, img))) goto done;
    d->D = p.text.D; d->S = p.text.maxpos < 77 ? p.text.maxpos : 77; d->P = 0;
    /* captions: distinct ones in order of first appearance, then "" */
    size_t sd = (size_t)d->S * d->D;
    int T;
    if ((st = locus_train_number_captions(d, img, &s->caps))) goto done;
    if (!(d->ctx = malloc((size_t)(d->nprompts ? d->nprompts : 1) * sd * sizeof(float)))) st = locus_fail(LOCUS_E_NOMEM, "out of memory for caption embeddings");
    for (int k = 0; k < d->nprompts && !st; k++) st = locus_pipeline_encode_prompt(&p, s->caps[k], d->ctx + (size_t)k * sd, &T);
    if (!st && !(s->null_ctx = malloc(sd * sizeof(float)))) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
    if (!st) st = locus_pipeline_encode_prompt(&p, "", s->null_ctx, &T);
done:
    if (p.tok) locus_clip_tok_free(p.tok);
    locus_textenc_free(&p.text);
    return st;
}

int locus_train_unet(const locus_train_opts *o0) {
    locus_train_opts o = *o0;
    if (o.lr < 0) o.lr = 1e-3;
    const char *base = o.base ? o.base : o.out;
    if (!o.data) { fprintf(stderr, "locus train unet: --data DIR is required\n"); return 2; }
    if (o.train_text && strcmp(base, o.out)) {
        fprintf(stderr, "locus train unet: --train-text-encoder rewrites the text encoder of the output folder; pass no --base (or --base equal to -o)\n");
        return 2;
    }
    if (o.threads) locus_set_threads(o.threads);
    unet_stage s;
    memset(&s, 0, sizeof s);
    locus_trainer t;
    memset(&t, 0, sizeof t);
    locus_train_images img;
    memset(&img, 0, sizeof img);
    char dir[4200], cfg[4300], sched[4300], wpath[4400], *cfgtext = NULL;
    int rc = 2, den_open = 0, sched_open = 0;
    locus_unet *u = NULL;
    locus_status st = locus_train_images_load(&img, o.data, o.W, o.H);
    if (!st) st = locus_mkdir(o.out);
    snprintf(dir, sizeof dir, "%s/unet", o.out);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(sched, sizeof sched, "%s/scheduler", base);
    if (!st) st = locus_mkdir(dir);
    if (!st) st = locus_train_config_text(LOCUS_CFG_UNET, o.config, NULL, &cfgtext);
    if (!st) st = locus_write_atomic(cfg, cfgtext, strlen(cfgtext));
    if (!st && (st = locus_scheduler_load(&s.m.sched, sched))) st = locus_fail(st, "--base %s: scheduler: %s (locus train pipeline writes one)", base, locus_errmsg());
    sched_open = !st;
    if (!st && !(u = calloc(1, sizeof *u))) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
    locus_loader_set_plain_weights(1);
    if (!st && !(st = locus_unet_load_random(u, cfg, o.seed))) {
        locus_train_init_torch(&u->L, o.seed);
        st = locus_unet_denoiser(&s.m.den, u); /* owns u from here */
        if (!st) den_open = 1;
        u = NULL;
    } else if (u) { /* a failed load has freed its parts */
        free(u);
        u = NULL;
    }
    locus_loader_set_plain_weights(0);
    if (st) goto out;
    s.m.L = s.m.den.loader;
    if ((st = locus_objective_init(&s.m.ob, &s.m.den, &s.m.sched))) goto out;
    s.m.flow = s.m.ob.kind == LOCUS_OBJ_FLOW;
    if (s.m.flow) { st = locus_fail(LOCUS_E_UNSUPPORTED, "%s: a flow-matching scheduler; train unet trains DDPM objectives", sched); goto out; }
    if ((st = encode_data(&s, base, &img))) goto out;
    if (s.d.C != s.m.den.in_channels || s.d.D != s.m.den.ctx_dim) {
        st = locus_fail(LOCUS_E_ARG, "the UNet config wants in_channels %d and cross_attention_dim %d; the VAE gives %d latent channels and the text encoder width %d",
                        s.m.den.in_channels, s.m.den.ctx_dim, s.d.C, s.d.D);
        goto out;
    }
    if (s.d.h % s.m.den.size_multiple || s.d.w % s.m.den.size_multiple) {
        st = locus_fail(LOCUS_E_ARG, "latents of %dx%d are not multiples of %d (the UNet's downsampling)", s.d.w, s.d.h, s.m.den.size_multiple);
        goto out;
    }
    if (!o.steps) o.steps = (s.d.n + o.batch_size - 1) / o.batch_size;
    s.B = o.batch_size;
    if (!(s.cap = malloc((size_t)s.B * sizeof(int)))) { st = locus_fail(LOCUS_E_NOMEM, "out of memory"); goto out; }
    if ((st = locus_trainer_init(&t, &o, "unet", s.m.L, s.m.den.buffers))) goto out;
    size_t n_unet = t.grads.n; /* the UNet's parameters come first; the text encoder's (if trained) after */
    if (o.train_text) {
        st = locus_text_train_open(&s.tt, base, s.caps, s.d.nprompts);
        s.train_text = 1; /* set even on failure: the stage frees tt */
        if (!st) st = locus_text_train_track(&s.tt, &t);
        if (st) goto out;
    }
    locus_train_stage_settings(&t, "unet", &o, base, &img, &s.d, cfgtext);
    t.eval = unet_eval;
    t.on_checkpoint = unet_pictures;
    t.ctx = &s;
    if (o.samples > 0) {
        if ((st = locus_scheduler_load(&s.sample_sched, sched))) goto out;
        s.has_sample_sched = 1;
    }
    fprintf(stderr, "locus: train unet: %d images (%d captions) -> latents %dx%dx%d, text %dx%d, %zu parameters, %d steps of %d\n", s.d.n,
            s.d.nprompts, s.d.C, s.d.h, s.d.w, s.d.S, s.d.D, s.m.den.params, o.steps, o.batch_size);
    if ((st = locus_trainer_run(&t))) goto out;
    locus_trainer_swap_ema(&t); /* the output is the averaged weights (no-op without --ema) */
    snprintf(wpath, sizeof wpath, "%s/diffusion_pytorch_model.safetensors", dir);
    const char *meta[] = {"format", "pt", "locus_version", LOCUS_VERSION, NULL};
    locus_grads unet_only = t.grads; /* a view of the first n_unet entries */
    unet_only.n = n_unet;
    if ((st = locus_train_save_weights(&unet_only, wpath, meta, o.fp16))) goto out;
    if (o.train_text && (st = locus_text_train_save(&s.tt, base, o.fp16))) goto out;
    fprintf(stderr, "locus: train unet: %d steps, final loss %.6f; wrote %s\n", o.steps, t.losses[o.steps - 1], dir);
    rc = 0;
out:
    if (st) fprintf(stderr, "locus train unet: %s\n", locus_errmsg());
    locus_trainer_free(&t);
    free(cfgtext);
    free(s.null_ctx);
    if (s.train_text) locus_text_train_free(&s.tt);
    free(s.cap);
    free(s.caps);
    locus_train_data_free(&s.d);
    if (u) { locus_unet_free(u); free(u); }
    if (den_open) locus_denoiser_close(&s.m.den);
    if (sched_open) locus_scheduler_free(&s.m.sched);
    if (s.has_sample_sched) locus_scheduler_free(&s.sample_sched);
    if (s.has_v) locus_vae_free(&s.v);
    locus_train_images_free(&img);
    return rc;
}
