/* train_stage.c — what the denoiser stages (`train unet`, train_unet.c; `train transformer`, train_sd3.c)
 * share around the generic loop: caption numbering, the caption of each example of a step (the sampler's
 * order, then caption dropout), the --resume settings line, and the progress pictures at checkpoints.
 *
 * Each helper keeps the exact order of random draws and arithmetic the stages had when they carried their own
 * copies, so the weights trained by either stage are the same bits as before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../models/sampler.h"
#include "train_model.h"

locus_status locus_train_number_captions(locus_train_data *d, const locus_train_images *img, char ***list) {
    d->nprompts = 0;
    for (int i = 0; i < d->n; i++) {
        int pi = -1;
        for (int k = i - 1; k >= 0 && pi < 0; k--)
            if (!strcmp(img->caption[k], img->caption[i])) pi = d->prompt[k];
        d->prompt[i] = pi >= 0 ? pi : d->nprompts++;
    }
    if (!list) return LOCUS_OK;
    char **caps = malloc((size_t)(d->nprompts ? d->nprompts : 1) * sizeof *caps);
    if (!caps) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    for (int i = 0, k = 0; i < d->n; i++)
        if (d->prompt[i] == k) caps[k++] = img->caption[i];
    *list = caps;
    return LOCUS_OK;
}

locus_status locus_train_step_captions(locus_trainer *t, const locus_train_data *d, int64_t step, int B, int *cap) {
    const double p = t->o->cfg_dropout * 4294967296.0;
    const uint32_t thr = (uint32_t)(p > 4294967295.0 ? 4294967295.0 : p);
    int *perm = malloc((size_t)d->n * sizeof(int));
    int64_t pe = -1;
    if (!perm) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    for (int i = 0; i < B; i++) cap[i] = d->prompt[locus_train_example_at(d->n, (step - 1) * B + i, t->o->seed, perm, &pe)];
    free(perm);
    for (int i = 0; i < B; i++) /* one draw per example, after the batch's draws */
        if (locus_mt19937_next(&t->rng) < thr) cap[i] = -1;
    return LOCUS_OK;
}

void locus_train_stage_settings(locus_trainer *t, const char *stage, const locus_train_opts *o, const char *base, const locus_train_images *img,
                                const locus_train_data *d, const char *cfgtext) {
    unsigned long long h = 1469598103934665603ull; /* FNV-1a of the written config and every 997th latent mean */
    for (const char *c = cfgtext; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    for (size_t k = 0; k < (size_t)d->n * d->C * d->h * d->w; k += 997) {
        uint32_t bits;
        memcpy(&bits, &d->mean[k], 4);
        h = (h ^ bits) * 1099511628211ull;
    }
    snprintf(t->settings, sizeof t->settings, "%s;data=%s;base=%s;n=%d;size=%dx%d;arch+latents=%016llx;lr=%.17g;wd=%.17g;betas=%.17g,%.17g;eps=%.17g;"
             "clip=%.17g;warmup=%d;batch=%d;seed=%llu;cfg_dropout=%.17g%s", stage, o->data, base, img->n, img->W, img->H, h, o->lr, o->wd, o->b1, o->b2,
             o->eps, o->clip, o->warmup, o->batch_size, (unsigned long long)o->seed, o->cfg_dropout, o->train_text ? ";train_text_encoder" : "");
}

locus_status locus_train_pictures(locus_trainer *t, int64_t step, const locus_train_pics *p) {
    const locus_train_data *d = p->d;
    int n = d->nprompts < t->o->samples ? d->nprompts : t->o->samples;
    if (n <= 0 || !p->vae || !p->sched) return LOCUS_OK;
    int f = 1 << (p->vae->nblocks - 1), H = d->h * f, W = d->w * f;
    size_t nl = (size_t)d->C * d->h * d->w, ni = (size_t)3 * H * W, sd = (size_t)p->T * p->D;
    float *lat = locus_alloc(nl * 4), *z = locus_alloc(nl * 4), *img = locus_alloc(n * ni * 4); /* [C,h,w] x2, [n,3,H,W] */
    float *cc = locus_alloc(2 * sd * 4), *pp = p->PD ? locus_alloc(2 * (size_t)p->PD * 4 + 64) : NULL; /* [2,T,D], [2,PD]: empty, caption */
    locus_status st = !lat || !z || !img || !cc || (p->PD && !pp) ? locus_fail(LOCUS_E_NOMEM, "out of memory") : LOCUS_OK;
    if (!st) st = p->cond(p->stage, -1, cc, pp);
    for (int i = 0; i < n && !st; i++) {
        locus_randn(1000 + (uint64_t)i, lat, nl);
        for (size_t k = 0; k < nl; k++) lat[k] *= p->sched->init_noise_sigma; /* 1 for flow matching: exact */
        if ((st = p->cond(p->stage, i, cc + sd, pp ? pp + p->PD : NULL))) break;
        locus_cond un = {cc, pp}, co = {cc + sd, pp ? pp + p->PD : NULL};
        st = locus_sample(p->den, p->sched, 20, p->guidance, lat, d->h, d->w, &un, &co, p->T, NULL, NULL);
        for (size_t k = 0; k < nl && !st; k++) z[k] = lat[k] / d->scaling + d->shift;
        if (!st) locus_vae_decode(p->vae, z, 1, d->h, d->w, img + i * ni, NULL);
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s_step%lld.png", t->workdir, t->what, (long long)step);
    if (!st) st = locus_train_save_grid(path, img, 1, n, H, W);
    locus_free(lat);
    locus_free(z);
    locus_free(img);
    locus_free(cc);
    locus_free(pp);
    return st;
}
