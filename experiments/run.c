/* run.c — library-level runs and patched runs (see run.h). */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/png.h"
#include "../core/rng.h"

locus_status locus_embeds_encode(const locus_pipeline *p, const char *prompt, const char *negative, int cfg, int max_seq,
                                 locus_embeds *e) {
    memset(e, 0, sizeof *e);
    locus_status st;
    if (p->kind == LOCUS_PIPE_SD3) {
        size_t ne = (size_t)(77 + max_seq) * p->mmdit.joint_dim, np = (size_t)p->mmdit.pooled_dim;
        e->cond = locus_alloc(ne * sizeof(float));
        e->cond_pooled = locus_alloc(np * sizeof(float));
        st = locus_pipeline_encode_prompt_sd3(p, prompt, max_seq, e->cond, e->cond_pooled, &e->T);
        if (!st && cfg) {
            e->uncond = locus_alloc(ne * sizeof(float));
            e->uncond_pooled = locus_alloc(np * sizeof(float));
            st = locus_pipeline_encode_prompt_sd3(p, negative ? negative : "", max_seq, e->uncond, e->uncond_pooled, &e->T);
        }
    } else {
        size_t ne = (size_t)77 * p->unet.ctx_dim;
        e->cond = locus_alloc(ne * sizeof(float));
        st = locus_pipeline_encode_prompt(p, prompt, e->cond, &e->T);
        if (!st && cfg) {
            e->uncond = locus_alloc(ne * sizeof(float));
            st = locus_pipeline_encode_prompt(p, negative ? negative : "", e->uncond, &e->T);
        }
    }
    if (st) locus_embeds_free(e);
    return st;
}

void locus_embeds_free(locus_embeds *e) {
    locus_free(e->cond);
    locus_free(e->uncond);
    locus_free(e->cond_pooled);
    locus_free(e->uncond_pooled);
    memset(e, 0, sizeof *e);
}

locus_status locus_run_prepare(const locus_pipeline *p, locus_run_opts *o) {
    int sd3 = p->kind == LOCUS_PIPE_SD3, f = p->vae_factor;
    int ss = sd3 ? p->mmdit.sample_size : p->unet.sample_size;
    int mult = sd3 ? f * p->mmdit.patch : f << (p->unet.nblocks - 1);
    if (!o->W) o->W = ss * f;
    if (!o->H) o->H = ss * f;
    if (o->W % mult || o->H % mult || o->W <= 0 || o->H <= 0)
        return locus_fail(LOCUS_E_ARG, "--width/--height must be multiples of %d for this model (got %dx%d)", mult, o->W, o->H);
    if (o->steps < 1 || o->steps > 1000) return locus_fail(LOCUS_E_ARG, "--steps %d: expected 1 to 1000", o->steps);
    return LOCUS_OK;
}

static void run_step(void *ctx, int step, int nsteps, const float *u, const float *c, const float *g, const float *l, size_t n) {
    const locus_run_opts *o = ctx;
    o->on_step(o->step_ctx, step, nsteps);
}

locus_status locus_run_image(locus_pipeline *p, const locus_run_opts *o, const locus_embeds *e, const locus_hooks *hooks,
                             uint8_t *pix) {
    int sd3 = p->kind == LOCUS_PIPE_SD3, f = p->vae_factor;
    int C = locus_pipeline_latent_channels(p), h = o->H / f, w = o->W / f;
    size_t n = (size_t)C * h * w;
    if (sd3) locus_scheduler_set_image_tokens(&p->sched, (h / p->mmdit.patch) * (w / p->mmdit.patch));
    locus_status st = locus_scheduler_set_timesteps(&p->sched, o->steps);
    if (st) return st;
    float *lat = locus_alloc(n * sizeof(float));
    locus_randn(o->seed, lat, n);
    for (size_t i = 0; i < n; i++) lat[i] *= p->sched.init_noise_sigma;
    locus_step_cb cb = {run_step, (void *)o};
    const locus_step_cb *cbp = o->on_step ? &cb : NULL;
    st = sd3 ? locus_sample_mmdit(&p->mmdit, &p->sched, o->steps, o->guidance, lat, h, w, e->uncond, e->cond, e->T, e->uncond_pooled,
                                  e->cond_pooled, cbp, hooks)
             : locus_sample_unet(&p->unet, &p->sched, o->steps, o->guidance, lat, h, w, e->uncond, e->cond, e->T, cbp, hooks);
    if (!st) {
        float *img = locus_alloc((size_t)3 * o->H * o->W * sizeof(float));
        locus_pipeline_decode(p, lat, h, w, img);
        locus_image_to_u8(img, o->H, o->W, pix);
        locus_free(img);
    }
    locus_free(lat);
    return st;
}

locus_status locus_patcher_init(locus_patcher *pt, locus_pipeline *p, const locus_run_opts *o, const locus_embeds *a,
                                const locus_embeds *b, int both, int start_step, const char *record, uint8_t *pix_b) {
    memset(pt, 0, sizeof *pt);
    pt->p = p;
    pt->o = o;
    pt->a = a;
    pt->b = b;
    pt->sd3 = p->kind == LOCUS_PIPE_SD3;
    pt->both = both;
    pt->start_step = start_step;
    if (a->T != b->T) return locus_fail(LOCUS_E_SHAPE, "prompt B has %d text tokens, prompt A %d", b->T, a->T);
    /* B's own run uses A's negative prompt, as the authors' code does */
    locus_embeds bb = *b;
    bb.uncond = a->uncond;
    bb.uncond_pooled = a->uncond_pooled;
    if (pt->sd3) {
        char spec[LOCUS_MAX_KV_BLOCKS * 24] = "";
        int nb = p->mmdit.nlayers < LOCUS_MAX_KV_BLOCKS ? p->mmdit.nlayers : LOCUS_MAX_KV_BLOCKS;
        for (int i = 0; i < nb; i++) snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%stransformer_blocks.%d", i ? "," : "", i);
        locus_status st = locus_kvpatch_init(&pt->kv, &p->mmdit, record ? record : spec);
        if (st) return st;
        pt->kv.start_step = start_step;
        locus_kvpatch_begin(&pt->kv, 0);
        locus_hooks h = {locus_kvpatch_hook, &pt->kv, NULL, NULL, 0};
        uint8_t *tmp = pix_b ? pix_b : malloc((size_t)3 * o->W * o->H);
        st = locus_run_image(p, o, &bb, &h, tmp);
        if (!pix_b) free(tmp);
        if (st) locus_patcher_free(pt);
        return st;
    }
    size_t one = (size_t)a->T * p->unet.ctx_dim;
    int cfg = a->uncond != NULL;
    pt->ctx = locus_alloc((cfg ? 2 : 1) * one * sizeof(float));
    /* the unconditional half is the negative prompt's for both A and B, so "both halves" changes nothing here */
    if (cfg) memcpy(pt->ctx, a->uncond, one * sizeof(float));
    memcpy(pt->ctx + (cfg ? one : 0), b->cond, one * sizeof(float));
    pt->inj = calloc(1, sizeof *pt->inj);
    return pix_b ? locus_run_image(p, o, &bb, NULL, pix_b) : LOCUS_OK;
}

locus_status locus_patcher_run(locus_patcher *pt, const char *layers, uint8_t *pix) {
    locus_status st;
    if (pt->sd3) {
        locus_kvpatch sel; /* resolves the block list only */
        st = locus_kvpatch_init(&sel, &pt->p->mmdit, layers);
        if (st) return st;
        unsigned long long mask = 0;
        for (int i = 0; i < sel.nblocks && !st; i++) {
            int j = 0;
            while (j < pt->kv.nblocks && pt->kv.blocks[j] != sel.blocks[i]) j++;
            if (j == pt->kv.nblocks) st = locus_fail(LOCUS_E_ARG, "transformer_blocks.%d was not recorded from prompt B's run", sel.blocks[i]);
            else mask |= 1ull << j;
        }
        locus_kvpatch_free(&sel);
        if (st) return st;
        locus_kvpatch_begin(&pt->kv, pt->both ? 2 : 1);
        pt->kv.active = mask;
        locus_hooks h = {locus_kvpatch_hook, &pt->kv, NULL, NULL, 0};
        return locus_run_image(pt->p, pt->o, pt->a, &h, pix);
    }
    st = locus_injection_resolve(pt->inj, &pt->p->unet, layers);
    if (st) return st;
    pt->inj->ctx = pt->ctx;
    pt->inj->start_step = pt->start_step;
    locus_hooks h = {0};
    h.cross_ctx = locus_injection_ctx;
    h.cross_arg = pt->inj;
    return locus_run_image(pt->p, pt->o, pt->a, &h, pix);
}

void locus_patcher_free(locus_patcher *pt) {
    locus_kvpatch_free(&pt->kv);
    locus_free(pt->ctx);
    free(pt->inj);
    pt->ctx = NULL;
    pt->inj = NULL;
}
