/* run.c — the run object, prompt embeddings and patched runs (see run.h). */
#include "run.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/png.h"
#include "../core/rng.h"
#include "../simd/kernels.h"

/* ---- prompt embeddings ---- */

locus_status locus_embeds_encode(const locus_pipeline *p, const char *prompt, const char *negative, int cfg, int max_seq,
                                 locus_embeds *e) {
    memset(e, 0, sizeof *e);
    size_t ne = (size_t)locus_pipeline_text_tokens(p, max_seq) * p->den.ctx_dim, np = (size_t)p->den.pooled_dim;
    e->cond = locus_alloc(ne * sizeof(float));
    if (np) e->cond_pooled = locus_alloc(np * sizeof(float));
    locus_status st = !e->cond || (np && !e->cond_pooled) ? locus_fail(LOCUS_E_NOMEM, "out of memory") : LOCUS_OK;
    if (!st) st = locus_pipeline_encode(p, prompt, max_seq, e->cond, e->cond_pooled, &e->T);
    if (!st && cfg) {
        e->uncond = locus_alloc(ne * sizeof(float));
        if (np) e->uncond_pooled = locus_alloc(np * sizeof(float));
        st = !e->uncond || (np && !e->uncond_pooled) ? locus_fail(LOCUS_E_NOMEM, "out of memory")
                                                      : locus_pipeline_encode(p, negative, max_seq, e->uncond, e->uncond_pooled, &e->T);
    }
    if (st) locus_embeds_free(e);
    return st;
}

/* [1,D] pooled tensor from an embeddings file, into a buffer of D + extra floats (the extra ones zero: size
 * conditioning the pipeline fills per run) */
static float *load_pooled(const locus_st_file *f, const char *name, int D, int extra) {
    const locus_st_tensor *t = locus_st_find(f, name);
    if (!t) { locus_fail(LOCUS_E_NOTFOUND, "%s: no tensor '%s' (this model needs cond_pooled and uncond_pooled)", f->path, name); return NULL; }
    if (t->ndim != 2 || t->shape[0] != 1 || t->shape[1] != D) {
        char s[128];
        locus_fail(LOCUS_E_SHAPE, "%s: '%s' has shape %s, expected [1,%d]", f->path, name, locus_shape_str(t->ndim, t->shape, s, sizeof s), D);
        return NULL;
    }
    float *p = locus_alloc((size_t)(D + extra) * sizeof(float));
    if (p && locus_st_to_f32(t, p, D)) { locus_free(p); return NULL; }
    if (p) memset(p + D, 0, (size_t)extra * sizeof(float));
    return p;
}

/* [1,T,D] tensor from an embeddings file */
static float *load_text(const locus_st_file *f, const char *name, int D, int *T) {
    const locus_st_tensor *t = locus_st_find(f, name);
    if (!t) { locus_fail(LOCUS_E_NOTFOUND, "%s: no tensor '%s'", f->path, name); return NULL; }
    if (t->ndim != 3 || t->shape[0] != 1 || t->shape[2] != D) {
        char s[128];
        locus_fail(LOCUS_E_SHAPE, "%s: '%s' has shape %s, expected [1,T,%d]", f->path, name, locus_shape_str(t->ndim, t->shape, s, sizeof s), D);
        return NULL;
    }
    if (*T && t->shape[1] != *T) { locus_fail(LOCUS_E_SHAPE, "%s: cond and uncond have different lengths", f->path); return NULL; }
    *T = (int)t->shape[1];
    float *p = locus_alloc((size_t)*T * D * sizeof(float));
    if (p && locus_st_to_f32(t, p, (int64_t)*T * D)) { locus_free(p); return NULL; }
    return p;
}

locus_status locus_embeds_load(const locus_pipeline *p, const char *path, int cfg, locus_embeds *e) {
    memset(e, 0, sizeof *e);
    locus_st_file f;
    locus_status st = locus_st_open(&f, path);
    if (st) return st;
    int D = p->den.ctx_dim, X = p->den.pooled_extra, P = p->den.pooled_dim - X, ok; /* P: the pooled text */
    ok = (e->cond = load_text(&f, "cond", D, &e->T)) != NULL;
    if (ok && cfg) ok = (e->uncond = load_text(&f, "uncond", D, &e->T)) != NULL;
    if (ok && P) ok = (e->cond_pooled = load_pooled(&f, "cond_pooled", P, X)) != NULL;
    if (ok && P && cfg) ok = (e->uncond_pooled = load_pooled(&f, "uncond_pooled", P, X)) != NULL;
    locus_st_close(&f);
    if (ok) return LOCUS_OK;
    locus_embeds_free(e);
    return LOCUS_E_FORMAT; /* the message names the file and tensor */
}

void locus_embeds_free(locus_embeds *e) {
    locus_free(e->cond);
    locus_free(e->uncond);
    locus_free(e->cond_pooled);
    locus_free(e->uncond_pooled);
    memset(e, 0, sizeof *e);
}

/* ---- runs ---- */

locus_status locus_run_prepare(const locus_pipeline *p, locus_run_opts *o) {
    int f = p->vae_factor, ss = p->den.sample_size, mult = f * p->den.size_multiple;
    if (!o->W) o->W = p->den.sample_width * f;
    if (!o->H) o->H = ss * f;
    if (o->W % mult || o->H % mult || o->W <= 0 || o->H <= 0)
        return locus_fail(LOCUS_E_ARG, "--width/--height must be multiples of %d for this model (got %dx%d)", mult, o->W, o->H);
    if (p->den.max_latent && (o->W / f > p->den.max_latent || o->H / f > p->den.max_latent))
        return locus_fail(LOCUS_E_ARG, "--width/--height %dx%d: larger than this model's position embedding allows (pos_embed_max_size: at most %dx%d)",
                          o->W, o->H, p->den.max_latent * f, p->den.max_latent * f);
    if (o->steps < 1 || o->steps > 1000) return locus_fail(LOCUS_E_ARG, "--steps %d: expected 1 to 1000", o->steps);
    /* preflight: the activations this size needs (the plan's estimate beyond the loaded weights) must be
     * obtainable now, so a too-large image is one clear error before the run instead of a failure inside it */
    size_t est = locus_pipeline_peak_estimate(p, o->W, o->H, locus_pipeline_text_tokens(p, 256), locus_threads()), live = locus_mem_live();
    if (est > live) {
        void *probe = malloc(est - live);
        if (!probe)
            return locus_fail(LOCUS_E_NOMEM, "out of memory: %.1f MiB of activations needed for %dx%d (%.1f MiB of weights loaded)",
                              (double)(est - live) / (1 << 20), o->W, o->H, (double)live / (1 << 20));
        free(probe);
    }
    return LOCUS_OK;
}

void locus_run_init(locus_run *r, locus_pipeline *p, const locus_run_opts *o) {
    memset(r, 0, sizeof *r);
    r->p = p;
    r->o = *o;
    r->progress = o->progress;
    locus_hooks_init(&r->hooks);
    r->C = p->den.in_channels;
    r->h = o->H / p->vae_factor;
    r->w = o->W / p->vae_factor;
}

void locus_run_add_hook(locus_run *r, locus_hook_entry h) {
    int rc = locus_hooks_add(&r->hooks, h);
    assert(rc == 0);
    (void)rc;
}

void locus_run_add_observer(locus_run *r, locus_step_cb cb) {
    assert(r->nobs < LOCUS_MAX_OBSERVERS);
    r->obs[r->nobs++] = cb;
}

static void dump_step(locus_run *r, int step, const float *unc, const float *cond, const float *guided, const float *lat) {
    int64_t shp[4] = {1, r->C, r->h, r->w}, pshp[4] = {1, r->p->den.out_channels, r->h, r->w}; /* predictions: the model's channels */
    char nm[64];
    if (unc) { snprintf(nm, sizeof nm, "step%d.noise_pred_uncond", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, pshp, unc); }
    snprintf(nm, sizeof nm, "step%d.noise_pred_text", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, pshp, cond);
    snprintf(nm, sizeof nm, "step%d.noise_pred", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, pshp, guided);
    snprintf(nm, sizeof nm, "step%d.latent_out", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, shp, lat);
}

locus_status locus_run_load_noise(locus_run *r, const char *path) {
    locus_st_file nf;
    locus_status st = locus_st_open(&nf, path);
    if (st) return st;
    size_t n = (size_t)r->C * r->h * r->w;
    locus_free(r->noise_owned);
    r->noise_owned = locus_alloc(n * sizeof(float));
    const locus_st_tensor *t = locus_st_find(&nf, "noise");
    int ok = r->noise_owned && t && t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == r->C && t->shape[2] == r->h && t->shape[3] == r->w;
    st = ok ? locus_st_to_f32(t, r->noise_owned, (int64_t)n) : LOCUS_OK; /* its message names a NaN/Inf */
    locus_st_close(&nf);
    if (st) return st;
    if (!ok) return locus_fail(LOCUS_E_SHAPE, "%s: needs a tensor 'noise' of shape [1,%d,%d,%d]", path, r->C, r->h, r->w);
    r->noise = r->noise_owned;
    return LOCUS_OK;
}

static void run_on_step(void *ctx, int step, int nsteps, const float *u, const float *c, const float *g, const float *l, size_t n) {
    locus_run *r = ctx;
    if (r->dump) dump_step(r, step, u, c, g, l);
    if (r->progress) locus_progress_update(&r->prog, step + 1);
    for (int i = 0; i < r->nobs; i++) r->obs[i].on_step(r->obs[i].ctx, step, nsteps, u, c, g, l, n);
    if (r->o.on_step) r->o.on_step(r->o.step_ctx, step, nsteps);
}

locus_status locus_run_exec(locus_run *r, const locus_embeds *e) {
    locus_pipeline *p = r->p;
    size_t n = (size_t)r->C * r->h * r->w;
    locus_free(r->latent);
    locus_free(r->image);
    r->image = NULL;
    r->latent = locus_alloc(n * sizeof(float));
    if (!r->latent) return locus_fail(LOCUS_E_NOMEM, "out of memory for the latent");
    /* the scheduler is set up by the sampler; init_noise_sigma needs it first (it depends on the timesteps) */
    locus_status st = locus_sample_set_timesteps(&p->den, &p->sched, r->o.steps, r->h, r->w);
    if (st) return st;
    if (r->noise) memcpy(r->latent, r->noise, n * sizeof(float));
    else locus_randn(r->o.seed, r->latent, n);
    locus_scheduler_set_noise_seed(&p->sched, r->o.seed, r->noise ? 0 : n); /* stochastic steps continue this generator */
    for (size_t i = 0; i < n; i++) r->latent[i] = r->latent[i] * p->sched.init_noise_sigma;
    locus_cond cu = {e->uncond, e->uncond_pooled}, cc = {e->cond, e->cond_pooled};
    /* pooled conditioning that depends on the run (SDXL's size conditioning): copies completed by the pipeline */
    int P = p->den.pooled_dim, X = p->den.pooled_extra;
    float *pl[2] = {NULL, NULL}; /* [P] each: cond, uncond */
    for (int k = 0; k < 2 && X > 0; k++) {
        const float *src = k ? e->uncond_pooled : e->cond_pooled;
        if (!src) continue;
        if (!(pl[k] = locus_alloc((size_t)P * sizeof(float)))) { locus_free(pl[0]); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
        memcpy(pl[k], src, (size_t)(P - X) * sizeof(float));
        locus_pipeline_size_cond(p, r->o.W, r->o.H, pl[k] + P - X);
        if (k) cu.pooled = pl[k];
        else cc.pooled = pl[k];
    }
    locus_step_cb cb = {run_on_step, r};
    if (r->progress) locus_progress_start(&r->prog, r->progress, p->sched.nevals);
    st = locus_sample(&p->den, &p->sched, r->o.steps, r->o.guidance, r->latent, r->h, r->w, e->uncond ? &cu : NULL, &cc, e->T, &cb, &r->hooks);
    locus_free(pl[0]);
    locus_free(pl[1]);
    if (st) return st;
    r->image = locus_alloc((size_t)3 * r->o.H * r->o.W * sizeof(float));
    if (!r->image) return locus_fail(LOCUS_E_NOMEM, "out of memory for the image");
    locus_pipeline_decode(p, r->latent, r->h, r->w, r->image);
    if (r->progress) locus_progress_end(&r->prog);
    if (r->dump) {
        int64_t ls[4] = {1, r->C, r->h, r->w}, is[4] = {1, 3, r->o.H, r->o.W};
        locus_st_writer_add(r->dump, "final_latent", LOCUS_F32, 4, ls, r->latent);
        locus_st_writer_add(r->dump, "image", LOCUS_F32, 4, is, r->image);
    }
    return LOCUS_OK;
}

/* the authors' quantization: numpy float32 (clamp(x / 2 + 0.5, 0, 1) * 255).astype(uint8), i.e. truncation */
static void image_to_u8_trunc(const float *chw, int h, int w, uint8_t *hwc) {
    size_t plane = (size_t)h * w;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++) {
            float v = chw[c * plane + i] / 2.0f + 0.5f;
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            hwc[i * 3 + c] = (uint8_t)(v * 255.0f);
        }
}

void locus_run_pixels(const locus_run *r, uint8_t *pix) {
    if (r->o.quantize_trunc) image_to_u8_trunc(r->image, r->o.H, r->o.W, pix);
    else locus_image_to_u8(r->image, r->o.H, r->o.W, pix);
}

void locus_run_free(locus_run *r) {
    locus_free(r->noise_owned);
    r->noise_owned = NULL;
    locus_free(r->latent);
    locus_free(r->image);
    r->latent = r->image = NULL;
}

locus_status locus_run_image(locus_pipeline *p, const locus_run_opts *o, const locus_embeds *e, const locus_hooks *hooks,
                             uint8_t *pix) {
    locus_run r;
    locus_run_init(&r, p, o);
    for (int i = 0; hooks && i < hooks->n; i++) locus_run_add_hook(&r, hooks->list[i]);
    locus_status st = locus_run_exec(&r, e);
    if (!st) locus_run_pixels(&r, pix);
    locus_run_free(&r);
    return st;
}

/* ---- patched runs ---- */

static locus_status patcher_image(locus_patcher *pt, const locus_embeds *e, const locus_hook_entry *h, uint8_t *pix) {
    locus_run r;
    locus_run_init(&r, pt->p, pt->o);
    r.noise = pt->noise;
    if (h) locus_run_add_hook(&r, *h);
    locus_status st = locus_run_exec(&r, e);
    if (!st && pix) locus_run_pixels(&r, pix);
    locus_run_free(&r);
    return st;
}

locus_status locus_patcher_init(locus_patcher *pt, locus_pipeline *p, const locus_run_opts *o, const locus_embeds *a,
                                const locus_embeds *b, int both, int start_step, const char *record, const float *noise,
                                uint8_t *pix_b) {
    memset(pt, 0, sizeof *pt);
    pt->p = p;
    pt->o = o;
    pt->a = a;
    pt->noise = noise;
    if (a->T != b->T) return locus_fail(LOCUS_E_SHAPE, "prompt B has %d text tokens, prompt A %d", b->T, a->T);
    /* B's own run uses A's negative prompt, as the authors' code does */
    pt->b = *b;
    pt->b.uncond = a->uncond;
    pt->b.uncond_pooled = a->uncond_pooled;
    /* steps the sampler will evaluate (PNDM evaluates more than `steps`) */
    locus_status st = locus_sample_set_timesteps(&p->den, &p->sched, o->steps, o->H / p->vae_factor, o->W / p->vae_factor);
    if (!st) st = locus_textpatch_init(&pt->tp, &p->den, p->sched.nevals);
    if (st) return st;
    pt->tp.both = both;
    pt->tp.start_step = start_step;
    if (p->den.text_kv_projectable) {
        pt->tp.ctx_b = b->cond;
        return pix_b ? patcher_image(pt, &pt->b, NULL, pix_b) : LOCUS_OK;
    }
    if (record) st = locus_denoiser_select_text_layers(&p->den, record, "--patch-layers", pt->tp.record);
    else memset(pt->tp.record, 1, (size_t)pt->tp.nlayers);
    if (st) { locus_patcher_free(pt); return st; }
    pt->tp.mode = LOCUS_TP_RECORD;
    locus_hook_entry h = locus_textpatch_hook(&pt->tp);
    st = patcher_image(pt, &pt->b, &h, pix_b);
    pt->tp.mode = LOCUS_TP_OFF;
    if (st) locus_patcher_free(pt);
    return st;
}

locus_status locus_patcher_select(locus_patcher *pt, const char *layers) {
    const locus_denoiser *d = &pt->p->den;
    locus_status st = locus_denoiser_select_text_layers(d, layers, "--patch-layers", pt->tp.active);
    if (st) return st;
    if (!pt->tp.ctx_b) { /* replay: every patched layer must have been recorded */
        locus_layer_info *L = NULL;
        int n = locus_denoiser_layers(d, &L);
        for (int i = 0; i < n && !st; i++)
            if (L[i].text_index >= 0 && pt->tp.active[L[i].text_index] && !pt->tp.record[L[i].text_index])
                st = locus_fail(LOCUS_E_ARG, "%s was not recorded from prompt B's run", L[i].name);
        free(L);
        if (n < 0) st = LOCUS_E_NOMEM;
    }
    pt->tp.mode = st ? LOCUS_TP_OFF : LOCUS_TP_PATCH;
    return st;
}

locus_hook_entry locus_patcher_hook(locus_patcher *pt) { return locus_textpatch_hook(&pt->tp); }

locus_status locus_patcher_run(locus_patcher *pt, const char *layers, uint8_t *pix) {
    locus_status st = locus_patcher_select(pt, layers);
    if (st) return st;
    locus_hook_entry h = locus_patcher_hook(pt);
    return patcher_image(pt, pt->a, &h, pix);
}

void locus_patcher_free(locus_patcher *pt) { locus_textpatch_free(&pt->tp); }
