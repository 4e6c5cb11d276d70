/* generate.c — `locus generate`: prompt (or embeddings) -> sampled latent -> PNG, with an optional safetensors
 * dump of every step.  All inputs are validated before any work starts and outputs are written atomically
 * at the end, so a failed run never leaves a partial file. */
#include "generate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/png.h"
#include "../core/rng.h"
#include "../core/safetensors.h"
#include "../core/version.h"
#include "../models/pipeline.h"
#include "../simd/kernels.h"
#include <fnmatch.h>

#include "patch.h"
#include "progress.h"
#include "run.h"

typedef struct {
    const char *model, *prompt, *negative, *out, *noise_file, *embeds_file, *dump_file, *sampler;
    const char *patch_prompt, *patch_embeds, *patch_layers, *cache_file, *cache_points, *intervene, *iv_steps, *iv_heads, *iv_half;
    int iv_nheads;
    int start_step, patch_both;
    long long seed;
    int steps, width, height, threads, max_seq, clip_skip;
    float guidance;
} gen_args;

static int fail(const char *fmt, const char *a) {
    fprintf(stderr, "locus generate: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return 2;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_args(int argc, char **argv, gen_args *a) {
    memset(a, 0, sizeof *a);
    a->seed = 0; a->steps = -1; a->guidance = -1; a->negative = "";
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc) return fail("option %s needs a value", k);
        const char *v = argv[++i];
        long long x;
        if (!strcmp(k, "--model")) a->model = v;
        else if (!strcmp(k, "--prompt")) a->prompt = v;
        else if (!strcmp(k, "--negative-prompt")) a->negative = v;
        else if (!strcmp(k, "-o") || !strcmp(k, "--output")) a->out = v;
        else if (!strcmp(k, "--noise")) a->noise_file = v;
        else if (!strcmp(k, "--prompt-embeds")) a->embeds_file = v;
        else if (!strcmp(k, "--dump")) a->dump_file = v;
        else if (!strcmp(k, "--sampler")) a->sampler = v;
        else if (!strcmp(k, "--patch-prompt")) a->patch_prompt = v;
        else if (!strcmp(k, "--patch-embeds")) a->patch_embeds = v;
        else if (!strcmp(k, "--patch-layers")) a->patch_layers = v;
        else if (!strcmp(k, "--cache")) a->cache_file = v;
        else if (!strcmp(k, "--intervene")) a->intervene = v;
        else if (!strcmp(k, "--intervene-steps")) a->iv_steps = v;
        else if (!strcmp(k, "--intervene-heads")) a->iv_heads = v;
        else if (!strcmp(k, "--intervene-half")) a->iv_half = v;
        else if (!strcmp(k, "--heads")) { if (!parse_int(v, 1, 64, &x)) return fail("--heads %s: expected the number of attention heads (1-64)", v); a->iv_nheads = (int)x; }
        else if (!strcmp(k, "--cache-points")) a->cache_points = v;
        else if (!strcmp(k, "--patch-halves")) {
            if (!strcmp(v, "cond")) a->patch_both = 0;
            else if (!strcmp(v, "both")) a->patch_both = 1;
            else return fail("--patch-halves %s: expected cond or both", v);
        }
        else if (!strcmp(k, "--start-step")) { if (!parse_int(v, 0, 1000, &x)) return fail("--start-step %s: expected an integer from 0 to 1000", v); a->start_step = (int)x; }
        else if (!strcmp(k, "--seed")) { if (!parse_int(v, 0, (1LL << 53), &x)) return fail("--seed %s: expected a non-negative integer", v); a->seed = x; }
        else if (!strcmp(k, "--steps")) { if (!parse_int(v, 1, 1000, &x)) return fail("--steps %s: expected an integer from 1 to 1000", v); a->steps = (int)x; }
        else if (!strcmp(k, "--width")) { if (!parse_int(v, 8, 8192, &x)) return fail("--width %s: expected an integer from 8 to 8192", v); a->width = (int)x; }
        else if (!strcmp(k, "--height")) { if (!parse_int(v, 8, 8192, &x)) return fail("--height %s: expected an integer from 8 to 8192", v); a->height = (int)x; }
        else if (!strcmp(k, "--clip-skip")) { if (!parse_int(v, 0, 64, &x)) return fail("--clip-skip %s: expected a small non-negative integer", v); a->clip_skip = (int)x; }
        else if (!strcmp(k, "--max-sequence-length")) { if (!parse_int(v, 1, 512, &x)) return fail("--max-sequence-length %s: expected an integer from 1 to 512", v); a->max_seq = (int)x; }
        else if (!strcmp(k, "--threads")) { if (!parse_int(v, 1, 1024, &x)) return fail("--threads %s: expected a positive integer", v); a->threads = (int)x; }
        else if (!strcmp(k, "--guidance")) {
            char *end;
            a->guidance = strtof(v, &end);
            if (*end || end == v || a->guidance < 0 || a->guidance > 100) return fail("--guidance %s: expected a number from 0 to 100", v);
        } else return fail("unknown option %s (see 'locus help')", k);
    }
    if (!a->model) return fail("%s", "--model DIR is required");
    if (!a->out) return fail("%s", "-o OUT.png is required");
    if (!a->prompt && !a->embeds_file) return fail("%s", "give --prompt TEXT or --prompt-embeds FILE");
    if ((a->patch_prompt || a->patch_embeds) && !a->patch_layers) return fail("%s", "--patch-prompt/--patch-embeds need --patch-layers L1,L2");
    if (a->patch_layers && !a->patch_prompt && !a->patch_embeds) return fail("%s", "--patch-layers needs --patch-prompt TEXT or --patch-embeds FILE");
    if (!a->cache_file != !a->cache_points) return fail("%s", "--cache FILE and --cache-points PATTERN[,PATTERN] go together");
    if ((a->iv_steps || a->iv_heads || a->iv_half) && !a->intervene) return fail("%s", "--intervene-steps/-heads/-half need --intervene PATTERN=OP");
    if (a->iv_heads && !a->iv_nheads) return fail("%s", "--intervene-heads needs --heads N (heads of the hooked tensors)");
    return 0;
}

/* [1,D] pooled tensor from an embeddings file */
static float *load_pooled(const locus_st_file *f, const char *name, int D) {
    const locus_st_tensor *t = locus_st_find(f, name);
    if (!t) { locus_fail(LOCUS_E_NOTFOUND, "%s: no tensor '%s' (SD3 needs cond_pooled and uncond_pooled)", f->path, name); return NULL; }
    if (t->ndim != 2 || t->shape[0] != 1 || t->shape[1] != D) {
        char s[128];
        locus_fail(LOCUS_E_SHAPE, "%s: '%s' has shape %s, expected [1,%d]", f->path, name, locus_shape_str(t->ndim, t->shape, s, sizeof s), D);
        return NULL;
    }
    float *p = locus_alloc((size_t)D * sizeof(float));
    if (locus_st_to_f32(t, p, D)) { locus_free(p); return NULL; }
    return p;
}

/* [1,T,D] tensor from an embeddings file */
static float *load_embeds(const locus_st_file *f, const char *name, int D, int *T) {
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
    if (locus_st_to_f32(t, p, (int64_t)*T * D)) { locus_free(p); return NULL; }
    return p;
}

/* --cache: every hook point matching one of the patterns, at every step, streamed to a safetensors file as
 * "step<N>.<hook name>" */
typedef struct {
    locus_st_stream *st;
    char pats[32][256];
    int npats, step, count;
    const locus_hooks *next; /* another hook to call too (K/V patching) */
} cache_ctx;

static void cache_hook(void *vc, const char *name, float *x, int ndim, const int64_t *shape) {
    cache_ctx *c = vc;
    if (c->next && c->next->fn) c->next->fn(c->next->ctx, name, x, ndim, shape);
    for (int i = 0; i < c->npats; i++)
        if (!fnmatch(c->pats[i], name, 0)) {
            char nm[320];
            snprintf(nm, sizeof nm, "step%d.%s", c->step, name);
            locus_st_stream_add(c->st, nm, LOCUS_F32, ndim, shape, x);
            c->count++;
            return;
        }
}

/* locus_hooks.want: costly points (attention probabilities) are computed when a cache pattern names them */
static int cache_want(void *vc, const char *name) {
    const cache_ctx *c = vc;
    for (int i = 0; i < c->npats; i++)
        if (!fnmatch(c->pats[i], name, 0)) return 1;
    return 0;
}

typedef struct {
    locus_st_writer *dump;
    int C, h, w;
    locus_progress prog;
    cache_ctx *cache;
    locus_interventions *ivs;
} run_ctx;

static void on_step(void *vc, int step, int nsteps, const float *unc, const float *cond, const float *guided, const float *lat, size_t n) {
    run_ctx *r = vc;
    if (r->dump) {
        int64_t shp[4] = {1, r->C, r->h, r->w};
        char nm[64];
        if (unc) { snprintf(nm, sizeof nm, "step%d.noise_pred_uncond", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, shp, unc); }
        snprintf(nm, sizeof nm, "step%d.noise_pred_text", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, shp, cond);
        snprintf(nm, sizeof nm, "step%d.noise_pred", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, shp, guided);
        snprintf(nm, sizeof nm, "step%d.latent_out", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, shp, lat);
    }
    if (r->cache) r->cache->step = step + 1;
    if (r->ivs) r->ivs->step = step + 1;
    locus_progress_update(&r->prog, step + 1);
}

int locus_cmd_generate(int argc, char **argv) {
    gen_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    if (locus_kernels_init() != LOCUS_OK) return fail("%s", locus_errmsg());
    if (a.threads) locus_set_threads(a.threads);
    if (a.sampler && strcmp(a.sampler, "ddim") && strcmp(a.sampler, "euler") && strcmp(a.sampler, "pndm") && strcmp(a.sampler, "flow"))
        return fail("--sampler %s: unknown (ddim, euler, pndm, flow)", a.sampler);
    locus_pipeline p;
    if (locus_pipeline_open(&p, a.model) != LOCUS_OK) return fail("%s", locus_errmsg());
    int ret = 2;
    float *cond = NULL, *uncond = NULL, *lat = NULL, *img = NULL, *pcond = NULL, *pctx = NULL, *cpool = NULL, *upool = NULL;
    locus_injection inj = {0};
    locus_hooks hooks = {0};
    uint8_t *pix = NULL;
    locus_st_writer *dump = NULL;
    int sd3 = p.kind == LOCUS_PIPE_SD3;
    int C = locus_pipeline_latent_channels(&p), f = p.vae_factor;
    int ss = sd3 ? p.mmdit.sample_size : p.unet.sample_size;
    int W = a.width ? a.width : ss * f, H = a.height ? a.height : ss * f;
    int mult = sd3 ? f * p.mmdit.patch : f << (p.unet.nblocks - 1);
    int cdim = sd3 ? p.mmdit.joint_dim : p.unet.ctx_dim;
    locus_kvpatch kvp = {0};
    float *bcond = NULL, *buncond = NULL, *bcpool = NULL, *bupool = NULL;
    cache_ctx cache = {0};
    locus_interventions ivs = {0};
    ivs.step_to = -1;
    ivs.half = 1; /* conditional half unless --intervene-half says otherwise */
    if (a.intervene) {
        if (locus_interventions_parse(&ivs, a.intervene)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
        if (a.iv_steps && sscanf(a.iv_steps, "%d:%d", &ivs.step_from, &ivs.step_to) != 2) {
            fprintf(stderr, "locus generate: --intervene-steps %s: expected FROM:TO (inclusive, TO -1 = to the end)\n", a.iv_steps);
            goto done;
        }
        ivs.heads = a.iv_nheads;
        if (a.iv_heads) {
            char *cp = strdup(a.iv_heads), *sv = NULL;
            for (char *t = strtok_r(cp, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
                int hh = atoi(t);
                if (hh < 0 || hh >= a.iv_nheads) { fprintf(stderr, "locus generate: --intervene-heads: head %s outside 0..%d\n", t, a.iv_nheads - 1); free(cp); goto done; }
                ivs.head_mask |= 1ull << hh;
                ivs.head_mask_n++;
            }
            free(cp);
        }
        if (a.iv_half) {
            if (!strcmp(a.iv_half, "cond")) ivs.half = 1;
            else if (!strcmp(a.iv_half, "uncond")) ivs.half = 2;
            else if (!strcmp(a.iv_half, "both")) ivs.half = 0;
            else { fprintf(stderr, "locus generate: --intervene-half %s: expected cond, uncond or both\n", a.iv_half); goto done; }
        }
    }
    if (W % mult || H % mult) {
        fprintf(stderr, "locus generate: --width/--height must be multiples of %d for this model (got %dx%d)\n", mult, W, H);
        goto done;
    }
    int h = H / f, w = W / f;
    size_t n = (size_t)C * h * w;
    int steps = a.steps > 0 ? a.steps : 50;
    if (a.sampler && locus_scheduler_override(&p.sched, a.sampler)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
    if (sd3) locus_scheduler_set_image_tokens(&p.sched, (h / p.mmdit.patch) * (w / p.mmdit.patch));
    if (locus_scheduler_set_timesteps(&p.sched, steps)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
    const char *sampler_name = p.sched.kind == LOCUS_SCHED_EULER ? "euler" : p.sched.kind == LOCUS_SCHED_PNDM ? "pndm"
                               : p.sched.kind == LOCUS_SCHED_FLOW ? "flow" : "ddim";
    float guidance = a.guidance >= 0 ? a.guidance : (p.kind == LOCUS_PIPE_LDM ? 1.0f : sd3 ? 7.0f : 7.5f);
    int max_seq = a.max_seq ? a.max_seq : 256;
    p.clip_skip = a.clip_skip;
    /* text conditioning */
    int T = 0;
    if (a.embeds_file) {
        locus_st_file ef;
        if (locus_st_open(&ef, a.embeds_file)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
        cond = load_embeds(&ef, "cond", cdim, &T);
        if (cond && guidance > 1.0f) uncond = load_embeds(&ef, "uncond", cdim, &T);
        int okp = 1;
        if (sd3 && cond && (guidance <= 1.0f || uncond)) {
            cpool = load_pooled(&ef, "cond_pooled", p.mmdit.pooled_dim);
            if (cpool && guidance > 1.0f) upool = load_pooled(&ef, "uncond_pooled", p.mmdit.pooled_dim);
            okp = cpool && (guidance <= 1.0f || upool);
        }
        locus_st_close(&ef);
        if (!cond || (guidance > 1.0f && !uncond) || !okp) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
    } else {
        locus_embeds e;
        if (locus_embeds_encode(&p, a.prompt, a.negative, guidance > 1.0f, max_seq, &e)) {
            fprintf(stderr, "locus generate: %s\n", locus_errmsg());
            goto done;
        }
        cond = e.cond; uncond = e.uncond; cpool = e.cond_pooled; upool = e.uncond_pooled; T = e.T;
    }
    /* SD3 K/V patching: prompt B's embeddings (its negative = A's) */
    if (a.patch_layers && sd3) {
        if (locus_kvpatch_init(&kvp, &p.mmdit, a.patch_layers)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
        kvp.start_step = a.start_step;
        int TB = 0;
        if (a.patch_embeds) {
            locus_st_file pf;
            if (locus_st_open(&pf, a.patch_embeds)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
            bcond = load_embeds(&pf, "cond", cdim, &TB);
            bcpool = bcond ? load_pooled(&pf, "cond_pooled", p.mmdit.pooled_dim) : NULL;
            locus_st_close(&pf);
            if (!bcond || !bcpool) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
        } else {
            locus_embeds eb;
            if (locus_embeds_encode(&p, a.patch_prompt, NULL, 0, max_seq, &eb)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
            bcond = eb.cond; bcpool = eb.cond_pooled; TB = eb.T;
        }
        if (TB != T) { fprintf(stderr, "locus generate: patch embeddings have %d tokens, the prompt's have %d\n", TB, T); goto done; }
    }
    /* patching: prompt B's embedding for the chosen cross-attention layers (conditional half) */
    if (a.patch_layers && !sd3) {
        if (locus_injection_resolve(&inj, &p.unet, a.patch_layers)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
        int TB = T;
        if (a.patch_embeds) {
            locus_st_file pf;
            if (locus_st_open(&pf, a.patch_embeds)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
            pcond = load_embeds(&pf, "cond", p.unet.ctx_dim, &TB);
            locus_st_close(&pf);
            if (!pcond) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
        } else {
            locus_embeds eb;
            if (locus_embeds_encode(&p, a.patch_prompt, NULL, 0, max_seq, &eb)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
            pcond = eb.cond; TB = eb.T;
        }
        if (TB != T) { fprintf(stderr, "locus generate: patch embeddings have %d tokens, the prompt's have %d\n", TB, T); goto done; }
        size_t one = (size_t)T * p.unet.ctx_dim;
        int cfg = guidance > 1.0f;
        pctx = locus_alloc((cfg ? 2 : 1) * one * sizeof(float));
        if (cfg) memcpy(pctx, uncond, one * sizeof(float));
        memcpy(pctx + (cfg ? one : 0), pcond, one * sizeof(float));
        inj.ctx = pctx;
        inj.start_step = a.start_step;
        hooks.cross_ctx = locus_injection_ctx;
        hooks.cross_arg = &inj;
    }
    /* initial noise */
    lat = locus_alloc(n * sizeof(float));
    if (a.noise_file) {
        locus_st_file nf;
        if (locus_st_open(&nf, a.noise_file)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
        const locus_st_tensor *t = locus_st_find(&nf, "noise");
        int ok = t && t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == C && t->shape[2] == h && t->shape[3] == w &&
                 locus_st_to_f32(t, lat, (int64_t)n) == LOCUS_OK;
        if (!ok) fprintf(stderr, "locus generate: %s: needs a tensor 'noise' of shape [1,%d,%d,%d]\n", a.noise_file, C, h, w);
        locus_st_close(&nf);
        if (!ok) goto done;
    } else {
        locus_randn((uint64_t)a.seed, lat, n);
    }
    for (size_t i = 0; i < n; i++) lat[i] = lat[i] * p.sched.init_noise_sigma;
    if (a.dump_file) dump = locus_st_writer_new();
    run_ctx rc_ = {dump, C, h, w, {0}, NULL, ivs.n ? &ivs : NULL};
    if (a.cache_file) {
        char *copy = strdup(a.cache_points), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t && cache.npats < 32; t = strtok_r(NULL, ",", &save))
            snprintf(cache.pats[cache.npats++], 256, "%s", t);
        free(copy);
        if (locus_st_stream_open(&cache.st, a.cache_file)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
        rc_.cache = &cache;
    }
    locus_progress_start(&rc_.prog, "generate", p.sched.nevals);
    locus_step_cb cb = {on_step, &rc_};
    locus_status sst = LOCUS_OK;
    locus_hooks kvh = {locus_kvpatch_hook, &kvp, NULL, NULL, 0};
    if (sd3 && a.patch_layers) { /* pass 1: prompt B's own run from the same noise, caching the chosen blocks' K/V */
        float *blat = locus_alloc(n * sizeof(float));
        memcpy(blat, lat, n * sizeof(float));
        locus_kvpatch_begin(&kvp, 0);
        fprintf(stderr, "generate: caching prompt B's text K/V (%d block%s)\n", kvp.nblocks, kvp.nblocks > 1 ? "s" : "");
        sst = locus_sample_mmdit(&p.mmdit, &p.sched, steps, guidance, blat, h, w, uncond, bcond, T, upool, bcpool, NULL, &kvh);
        locus_free(blat);
        locus_kvpatch_begin(&kvp, a.patch_both ? 2 : 1);
    }
    /* the hooks of the main run: patching (UNet injection or SD3 K/V), then caching on top */
    locus_hooks *main_h = a.patch_layers ? (sd3 ? &kvh : &hooks) : NULL;
    locus_hooks ih = {0};
    if (ivs.n) { /* interventions run after patching and before caching */
        ivs.next = main_h && main_h->fn ? main_h : NULL;
        ih = main_h ? *main_h : (locus_hooks){0};
        ih.fn = locus_interventions_hook;
        ih.ctx = &ivs;
        main_h = &ih;
    }
    locus_hooks ch = {0};
    if (cache.st) {
        cache.next = main_h && main_h->fn ? main_h : NULL;
        ch = main_h ? *main_h : (locus_hooks){0};
        ch.fn = cache_hook;
        ch.ctx = &cache;
        ch.want = cache_want;
        ch.want_arg = &cache;
        main_h = &ch;
    }
    if (!sst)
        sst = sd3 ? locus_sample_mmdit(&p.mmdit, &p.sched, steps, guidance, lat, h, w, uncond, cond, T, upool, cpool, &cb, main_h)
                  : locus_sample_unet(&p.unet, &p.sched, steps, guidance, lat, h, w, uncond, cond, T, &cb, main_h);
    if (sst != LOCUS_OK) {
        fprintf(stderr, "locus generate: %s\n", locus_errmsg());
        goto done;
    }
    img = locus_alloc((size_t)3 * H * W * sizeof(float));
    locus_pipeline_decode(&p, lat, h, w, img);
    locus_progress_end(&rc_.prog);
    pix = malloc((size_t)3 * H * W);
    locus_image_to_u8(img, H, W, pix);
    char seed_s[32], steps_s[16], g_s[32], hash_s[32];
    snprintf(seed_s, sizeof seed_s, "%lld", a.seed);
    snprintf(steps_s, sizeof steps_s, "%d", steps);
    snprintf(g_s, sizeof g_s, "%g", guidance);
    snprintf(hash_s, sizeof hash_s, "%016llx", p.model_hash);
    locus_png_text tx[] = {{"prompt", a.prompt ? a.prompt : "(embeddings file)"}, {"negative_prompt", a.negative},
                           {"seed", a.noise_file ? "(noise file)" : seed_s}, {"steps", steps_s}, {"sampler", sampler_name},
                           {"guidance", g_s}, {"model_hash", hash_s}, {"isa", locus_isa_name()}, {"locus_version", LOCUS_VERSION},
                           {"patch_layers", a.patch_layers ? a.patch_layers : ""},
                           {"patch_prompt", a.patch_prompt ? a.patch_prompt : a.patch_embeds ? "(embeddings file)" : ""}};
    if (dump) {
        int64_t ls[4] = {1, C, h, w}, is[4] = {1, 3, H, W};
        locus_st_writer_add(dump, "final_latent", LOCUS_F32, 4, ls, lat);
        locus_st_writer_add(dump, "image", LOCUS_F32, 4, is, img);
        for (size_t i = 0; i < sizeof tx / sizeof *tx; i++) locus_st_writer_add_meta(dump, tx[i].key, tx[i].value);
        if (locus_st_writer_save(dump, a.dump_file)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
    }
    if (ivs.n && !ivs.hits) {
        fprintf(stderr, "locus generate: --intervene %s matched no hook point%s\n", a.intervene,
                ivs.missing ? " with a cached tensor of the same step and shape" : "");
        goto done;
    }
    if (ivs.missing) fprintf(stderr, "locus generate: warning: --intervene replace: %d hook point calls had no cached tensor of their step and shape\n", ivs.missing);
    if (cache.st) {
        locus_st_stream *cs = cache.st;
        cache.st = NULL;
        if (!cache.count) { locus_st_stream_close(cs, 0); fprintf(stderr, "locus generate: --cache-points %s matched no hook point\n", a.cache_points); goto done; }
        if (locus_st_stream_close(cs, 1)) { fprintf(stderr, "locus generate: %s\n", locus_errmsg()); goto done; }
        fprintf(stderr, "cached %d tensors to %s\n", cache.count, a.cache_file);
    }
    if (locus_png_write(a.out, pix, W, H, 3, tx, (int)(sizeof tx / sizeof *tx))) {
        fprintf(stderr, "locus generate: %s\n", locus_errmsg());
        if (a.dump_file) remove(a.dump_file);
        goto done;
    }
    fprintf(stderr, "wrote %s (%dx%d, %d steps, isa %s, peak memory %.1f MiB)\n", a.out, W, H, steps, locus_isa_name(),
            (double)locus_mem_peak() / (1 << 20));
    ret = 0;
done:
    locus_st_writer_free(dump);
    locus_free(cond); locus_free(uncond); locus_free(lat); locus_free(img); locus_free(pcond); locus_free(pctx); locus_free(cpool); locus_free(upool);
    locus_free(bcond); locus_free(buncond); locus_free(bcpool); locus_free(bupool);
    locus_kvpatch_free(&kvp);
    locus_interventions_free(&ivs);
    if (cache.st) locus_st_stream_close(cache.st, 0);
    free(pix);
    locus_pipeline_close(&p);
    return ret;
}

int locus_cmd_info_model(const char *dir) {
    locus_pipeline p;
    if (locus_pipeline_open(&p, dir) != LOCUS_OK) {
        fprintf(stderr, "locus info: %s\n", locus_errmsg());
        return 2;
    }
    printf("model: %s (%s)\n", dir, p.class_name);
    printf("model_hash: %016llx\n", p.model_hash);
    if (p.kind == LOCUS_PIPE_SD3) {
        const locus_mmdit *m = &p.mmdit;
        printf("transformer: SD3Transformer2DModel, %d joint blocks, %d heads x %d, patch %d, joint_attention_dim %d, qk_norm %s, %zu parameters\n",
               m->nlayers, m->heads, m->head_dim, m->patch, m->joint_dim, m->qk_norm ? "rms_norm" : "none", m->L.nparams);
        printf("vae: AutoencoderKL, %d latent channels, factor %d, scaling %g, shift %g, %zu parameters\n", p.vae.latent_channels, p.vae_factor,
               p.vae.scaling_factor, p.vae.shift_factor, p.vae.L.nparams);
        if (p.has_text) printf("text_encoder: CLIPTextModelWithProjection, %d layers, width %d, %zu parameters\n", p.text.nlayers, p.text.D, p.text.L.nparams);
        if (p.has_text2) printf("text_encoder_2: CLIPTextModelWithProjection, %d layers, width %d, %zu parameters\n", p.text2.nlayers, p.text2.D, p.text2.L.nparams);
        if (p.has_t5) printf("text_encoder_3: T5EncoderModel, %d blocks, width %d, %zu parameters\n", p.t5.nlayers, p.t5.D, p.t5.L.nparams);
        if (p.sched.dynamic_shift)
            printf("scheduler: %s, dynamic shifting (mu from %g at %g image tokens to %g at %g, %s)\n", p.sched.class_name, p.sched.base_shift,
                   p.sched.base_seq, p.sched.max_shift, p.sched.max_seq, p.sched.shift_linear ? "linear" : "exponential");
        else
            printf("scheduler: %s, shift %g\n", p.sched.class_name, p.sched.shift);
        int ss = p.mmdit.sample_size * p.vae_factor;
        printf("peak memory estimate: %.1f MiB at %dx%d (default size), %.1f MiB at 1024x1024 (77 + 256 text tokens, fp32 weights)\n",
               (double)locus_pipeline_peak_estimate(&p, ss, ss, 77 + 256, locus_threads()) / (1 << 20), ss, ss,
               (double)locus_pipeline_peak_estimate(&p, 1024, 1024, 77 + 256, locus_threads()) / (1 << 20));
        locus_pipeline_close(&p);
        return 0;
    }
    printf("unet: UNet2DConditionModel, %d blocks, channels", p.unet.nblocks);
    for (int i = 0; i < p.unet.nblocks; i++) printf(" %d", p.unet.block_out[i]);
    printf(", cross_attention_dim %d, %zu parameters (%s)\n", p.unet.ctx_dim, p.unet.L.nparams, p.unet.L.weights_path);
    printf("vae: AutoencoderKL, %d latent channels, factor %d, scaling %g, %zu parameters\n", p.vae.latent_channels, p.vae_factor,
           p.vae.scaling_factor, p.vae.L.nparams);
    if (p.has_text)
        printf("text_encoder: %s, %d layers, width %d, %zu parameters\n", p.text.kind == LOCUS_TEXT_CLIP ? "CLIPTextModel" : "LDMBertModel",
               p.text.nlayers, p.text.D, p.text.L.nparams);
    printf("scheduler: %s, %d train steps, spacing %s\n", p.sched.class_name, p.sched.num_train, p.sched.spacing);
    /* weight dtypes of the UNet file */
    int cnt[LOCUS_DTYPE_COUNT] = {0};
    for (size_t f = 0; f < p.unet.L.st.nfiles; f++)
        for (size_t i = 0; i < p.unet.L.st.files[f].count; i++) cnt[p.unet.L.st.files[f].tensors[i].dtype]++;
    printf("unet weight dtypes:");
    for (int d = 0; d < LOCUS_DTYPE_COUNT; d++)
        if (cnt[d]) printf(" %s x%d", locus_dtype_name((locus_dtype)d), cnt[d]);
    printf("\n");
    locus_pipeline_close(&p);
    return 0;
}
