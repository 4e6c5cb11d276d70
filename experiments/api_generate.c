/* api_generate.c — the stable C API of include/locus.h, part 2: generation options and one generation.
 *
 * locus_model_generate is `locus generate` (experiments/generate.c) without the files: the same run object,
 * the same defaults, the same order of hooks (patching, then interventions, then caching) and the same
 * refusals (an intervention or cache pattern that matched nothing), so its image and tensors are the bits the
 * CLI writes for the same inputs.  Cached hook points and the --dump tensors go into the result in memory
 * instead of safetensors files, under the names those files use. */
#include "api_int.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "cache.h"
#include "patch.h"
#include "run.h"

struct locus_genopts {
    char *prompt, *negative, *sampler, *noise_file;
    uint64_t seed;
    int steps;       /* 0: 50 */
    double guidance; /* < 0: the pipeline's */
    int W, H, max_seq, clip_skip, trunc, dump;
    char pats[LOCUS_MAX_CACHE_PATTERNS][256]; /* cache patterns */
    int npats;
    char *patch_prompt, *patch_layers;
    int start_step, both;
    char *iv_spec, *iv_steps, *iv_heads, *iv_half;
    int iv_nheads;
    void (*cb)(void *ctx, int step, int nsteps);
    void *cb_ctx;
    int size_cond[3][2], size_cond_set[3]; /* SDXL: original H,W; crop top,left; target H,W */
    float *emb[4];   /* given embeddings: cond, uncond [T,emb_dim]; cond_pooled, uncond_pooled [emb_pooled] */
    int emb_T, emb_dim, emb_pooled;
};

LOCUS_API locus_genopts *locus_genopts_new(void) {
    locus_genopts *o = calloc(1, sizeof *o);
    if (!o) { locus_fail(LOCUS_E_NOMEM, "out of memory"); return NULL; }
    o->guidance = -1;
    return o;
}

static void free_iv(locus_genopts *o) {
    free(o->iv_spec); free(o->iv_steps); free(o->iv_heads); free(o->iv_half);
    o->iv_spec = o->iv_steps = o->iv_heads = o->iv_half = NULL;
}

static void free_emb(locus_genopts *o) {
    for (int k = 0; k < 4; k++) { free(o->emb[k]); o->emb[k] = NULL; }
    o->emb_T = o->emb_dim = o->emb_pooled = 0;
}

LOCUS_API void locus_genopts_free(locus_genopts *o) {
    if (!o) return;
    free_emb(o);
    free(o->prompt); free(o->negative); free(o->sampler); free(o->noise_file);
    free(o->patch_prompt); free(o->patch_layers);
    free_iv(o);
    free(o);
}

#define NEED(o) do { if (!(o)) return locus_fail(LOCUS_E_ARG, "%s: NULL options", __func__); } while (0)

/* *dst = a copy of s (NULL clears); false only when out of memory */
static int set_str(char **dst, const char *s) {
    char *c = s ? strdup(s) : NULL;
    if (s && !c) return 0;
    free(*dst);
    *dst = c;
    return 1;
}
#define SET_STR(dst, s) (set_str(&(dst), (s)) ? LOCUS_OK : locus_fail(LOCUS_E_NOMEM, "out of memory"))

LOCUS_API int locus_genopts_set_prompt(locus_genopts *o, const char *prompt) {
    NEED(o);
    if (!prompt) return locus_fail(LOCUS_E_ARG, "prompt: NULL (give a string; \"\" is the empty prompt)");
    return SET_STR(o->prompt, prompt);
}

LOCUS_API int locus_genopts_set_negative_prompt(locus_genopts *o, const char *negative) { NEED(o); return SET_STR(o->negative, negative); }

LOCUS_API int locus_genopts_set_seed(locus_genopts *o, uint64_t seed) {
    NEED(o);
    if (seed > (1ULL << 53)) return locus_fail(LOCUS_E_ARG, "seed %llu: expected 0 to 2^53", (unsigned long long)seed);
    o->seed = seed;
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_steps(locus_genopts *o, int steps) {
    NEED(o);
    if (steps < 1 || steps > 1000) return locus_fail(LOCUS_E_ARG, "steps %d: expected 1 to 1000", steps);
    o->steps = steps;
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_guidance(locus_genopts *o, double g) {
    NEED(o);
    if (!(g <= 100)) return locus_fail(LOCUS_E_ARG, "guidance %g: expected 0 to 100 (negative: the pipeline's default)", g);
    o->guidance = g < 0 ? -1 : g;
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_size(locus_genopts *o, int width, int height) {
    NEED(o);
    if ((width || height) && (width < 8 || width > 8192 || height < 8 || height > 8192))
        return locus_fail(LOCUS_E_ARG, "size %dx%d: expected 8 to 8192 each (0, 0: the model's size)", width, height);
    o->W = width;
    o->H = height;
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_sampler(locus_genopts *o, const char *s) {
    NEED(o);
    if (s && strcmp(s, "ddim") && strcmp(s, "euler") && strcmp(s, "pndm") && strcmp(s, "flow"))
        return locus_fail(LOCUS_E_ARG, "sampler %s: unknown (ddim, euler, pndm, flow)", s);
    return SET_STR(o->sampler, s);
}

LOCUS_API int locus_genopts_set_max_sequence_length(locus_genopts *o, int max_seq) {
    NEED(o);
    if (max_seq < 1 || max_seq > 512) return locus_fail(LOCUS_E_ARG, "max_sequence_length %d: expected 1 to 512", max_seq);
    o->max_seq = max_seq;
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_clip_skip(locus_genopts *o, int clip_skip) {
    NEED(o);
    if (clip_skip < 0 || clip_skip > 64) return locus_fail(LOCUS_E_ARG, "clip_skip %d: expected 0 to 64", clip_skip);
    o->clip_skip = clip_skip;
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_size_cond(locus_genopts *o, const int original_hw[2], const int crop_yx[2], const int target_hw[2]) {
    NEED(o);
    const int *v[3] = {original_hw, crop_yx, target_hw};
    static const char *const what[3] = {"original size", "crop top-left", "target size"};
    for (int k = 0; k < 3; k++)
        if (v[k] && (v[k][0] < 0 || v[k][1] < 0 || v[k][0] > 1000000 || v[k][1] > 1000000))
            return locus_fail(LOCUS_E_ARG, "%s %d,%d: expected two integers 0 to 1000000", what[k], v[k][0], v[k][1]);
    for (int k = 0; k < 3; k++) {
        o->size_cond_set[k] = v[k] != NULL;
        if (v[k]) { o->size_cond[k][0] = v[k][0]; o->size_cond[k][1] = v[k][1]; }
    }
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_quantize_trunc(locus_genopts *o, int trunc) { NEED(o); o->trunc = trunc != 0; return LOCUS_OK; }
LOCUS_API int locus_genopts_set_dump(locus_genopts *o, int dump) { NEED(o); o->dump = dump != 0; return LOCUS_OK; }
LOCUS_API int locus_genopts_set_noise_file(locus_genopts *o, const char *path) { NEED(o); return SET_STR(o->noise_file, path); }

LOCUS_API int locus_genopts_set_progress(locus_genopts *o, void (*cb)(void *ctx, int step, int nsteps), void *ctx) {
    NEED(o);
    o->cb = cb;
    o->cb_ctx = ctx;
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_add_cache(locus_genopts *o, const char *patterns) {
    NEED(o);
    if (!patterns) return locus_fail(LOCUS_E_ARG, "cache: NULL pattern");
    /* the rules of --cache-points: every pattern whole (never truncated), none empty, at most 32 in all;
     * all of a call's patterns are taken, or none */
    int n = o->npats;
    for (const char *t = patterns, *e;; t = e + 1) {
        e = strchr(t, ',');
        if (!e) e = t + strlen(t);
        size_t len = (size_t)(e - t);
        if (!len) return locus_fail(LOCUS_E_ARG, "cache pattern '%s': empty pattern", patterns);
        if (len >= sizeof o->pats[0]) return locus_fail(LOCUS_E_ARG, "cache: a pattern is longer than %d characters", (int)sizeof o->pats[0] - 1);
        if (n == LOCUS_MAX_CACHE_PATTERNS) return locus_fail(LOCUS_E_ARG, "cache: more than %d patterns", LOCUS_MAX_CACHE_PATTERNS);
        n++;
        if (!*e) break;
    }
    for (const char *t = patterns, *e;; t = e + 1) {
        e = strchr(t, ',');
        if (!e) e = t + strlen(t);
        memcpy(o->pats[o->npats], t, (size_t)(e - t));
        o->pats[o->npats++][e - t] = 0;
        if (!*e) break;
    }
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_patch(locus_genopts *o, const char *prompt_b, const char *layers, int start_step, int both) {
    NEED(o);
    if (!prompt_b) {
        set_str(&o->patch_prompt, NULL);
        set_str(&o->patch_layers, NULL);
        o->start_step = o->both = 0;
        return LOCUS_OK;
    }
    if (!layers || !*layers) return locus_fail(LOCUS_E_ARG, "patch: give the layers (comma-separated paths or prefixes, see locus_model_layer)");
    if (start_step < 0 || start_step > 1000) return locus_fail(LOCUS_E_ARG, "patch start step %d: expected 0 to 1000", start_step);
    if (!set_str(&o->patch_prompt, prompt_b) || !set_str(&o->patch_layers, layers)) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    o->start_step = start_step;
    o->both = both != 0;
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_intervene(locus_genopts *o, const char *spec, const char *steps, int nheads, const char *heads,
                                          const char *half) {
    NEED(o);
    free_iv(o);
    o->iv_nheads = 0;
    if (!spec) return LOCUS_OK;
    if (nheads < 0 || nheads > 64) return locus_fail(LOCUS_E_ARG, "intervene heads %d: expected 1 to 64 (0: whole vectors)", nheads);
    if (heads && !nheads) return locus_fail(LOCUS_E_ARG, "intervene heads %s: needs the number of heads of the hooked tensors", heads);
    if (!set_str(&o->iv_spec, spec) || !set_str(&o->iv_steps, steps) || !set_str(&o->iv_heads, heads) || !set_str(&o->iv_half, half)) {
        free_iv(o);
        return locus_fail(LOCUS_E_NOMEM, "out of memory");
    }
    o->iv_nheads = nheads;
    return LOCUS_OK;
}

LOCUS_API int locus_genopts_set_prompt_embeds(locus_genopts *o, int T, int dim, const float *cond, const float *uncond, int pooled_dim,
                                              const float *cond_pooled, const float *uncond_pooled) {
    NEED(o);
    free_emb(o);
    if (!cond) return LOCUS_OK;
    if (T < 1 || T > 100000 || dim < 1 || dim > 100000 || pooled_dim < 0 || pooled_dim > 100000)
        return locus_fail(LOCUS_E_ARG, "prompt embeddings [1,%d,%d], pooled %d: sizes out of range", T, dim, pooled_dim);
    if (pooled_dim && !cond_pooled) return locus_fail(LOCUS_E_ARG, "prompt embeddings: pooled_dim %d without cond_pooled", pooled_dim);
    const float *src[4] = {cond, uncond, pooled_dim ? cond_pooled : NULL, pooled_dim ? uncond_pooled : NULL};
    size_t n[4] = {(size_t)T * dim, (size_t)T * dim, (size_t)pooled_dim, (size_t)pooled_dim};
    for (int k = 0; k < 4; k++) {
        if (!src[k]) continue;
        if (!(o->emb[k] = malloc(n[k] * sizeof(float)))) { free_emb(o); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
        memcpy(o->emb[k], src[k], n[k] * sizeof(float));
    }
    o->emb_T = T;
    o->emb_dim = dim;
    o->emb_pooled = pooled_dim;
    return LOCUS_OK;
}

/* embeddings given to the options -> e, as locus_embeds_load makes them from a file (pooled buffers with the
 * den.pooled_extra trailing entries zero: size conditioning the run fills) */
static locus_status embeds_from_opts(const locus_pipeline *p, const locus_genopts *o, int cfg, locus_embeds *e) {
    memset(e, 0, sizeof *e);
    int D = p->den.ctx_dim, X = p->den.pooled_extra, P = p->den.pooled_dim - X;
    if (o->emb_dim != D) return locus_fail(LOCUS_E_SHAPE, "prompt embeddings have width %d, this model's text is %d wide", o->emb_dim, D);
    if (o->emb_pooled != P)
        return locus_fail(LOCUS_E_SHAPE, "prompt embeddings: pooled text of %d values, this model takes %d", o->emb_pooled, P);
    if (cfg && !o->emb[1]) return locus_fail(LOCUS_E_ARG, "prompt embeddings: guidance > 1 needs the negative prompt's (uncond)");
    if (cfg && P && !o->emb[3]) return locus_fail(LOCUS_E_ARG, "prompt embeddings: guidance > 1 needs uncond_pooled");
    size_t nt = (size_t)o->emb_T * D;
    float **dst[4] = {&e->cond, &e->uncond, &e->cond_pooled, &e->uncond_pooled};
    for (int k = 0; k < 4; k++) {
        if (!o->emb[k] || (k & 1 && !cfg)) continue;
        size_t n = k < 2 ? nt : (size_t)(P + X), have = k < 2 ? nt : (size_t)P;
        if (!(*dst[k] = locus_alloc(n * sizeof(float)))) { locus_embeds_free(e); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
        memcpy(*dst[k], o->emb[k], have * sizeof(float));
        memset(*dst[k] + have, 0, (n - have) * sizeof(float));
    }
    e->T = o->emb_T;
    return LOCUS_OK;
}

/* ---- hooks that fill the result ---- */

typedef struct {
    const locus_genopts *o;
    locus_result *r;
    int count;          /* hook points cached */
    locus_status err;   /* the first failure to keep a tensor */
    int C, h, w;        /* latent geometry for the dump */
} api_sink;

static int sink_matches(const api_sink *s, const char *name) {
    for (int i = 0; i < s->o->npats; i++)
        if (!fnmatch(s->o->pats[i], name, 0)) return 1;
    return 0;
}

/* as --cache: every matching hook point of every evaluation as "step<N>.<name>" */
static void sink_fn(void *ctx, const locus_hook_at *at, float *x, int ndim, const int64_t *shape) {
    api_sink *s = ctx;
    if (s->err || !sink_matches(s, at->name)) return;
    char nm[320];
    snprintf(nm, sizeof nm, "step%d.%s", at->step, at->name);
    s->err = api_result_add(s->r, nm, ndim, shape, x);
    s->count++;
}

static int sink_want(void *ctx, const char *name) { return sink_matches(ctx, name); }

/* as --dump: after every step, the predictions and the latent */
static void sink_step(void *ctx, int step, int nsteps, const float *unc, const float *cond, const float *guided, const float *lat, size_t n) {
    api_sink *s = ctx;
    int64_t shp[4] = {1, s->C, s->h, s->w};
    static const char *const what[4] = {"noise_pred_uncond", "noise_pred_text", "noise_pred", "latent_out"};
    const float *x[4] = {unc, cond, guided, lat};
    char nm[64];
    for (int k = 0; k < 4 && !s->err; k++) {
        if (!x[k]) continue;
        snprintf(nm, sizeof nm, "step%d.%s", step, what[k]);
        s->err = api_result_add(s->r, nm, 4, shp, x[k]);
    }
}

/* ---- one generation ---- */

#define CHECK(call) do { if ((st = (call)) != LOCUS_OK) goto done; } while (0)

LOCUS_API int locus_model_generate(locus_model *m, const locus_genopts *o, locus_result **out) {
    if (!out) return locus_fail(LOCUS_E_ARG, "locus_model_generate: NULL out pointer");
    *out = NULL;
    if (!m || !o) return locus_fail(LOCUS_E_ARG, "locus_model_generate: NULL model or options");
    if (!o->prompt && !o->emb[0]) return locus_fail(LOCUS_E_ARG, "no prompt: set one with locus_genopts_set_prompt (or embeddings)");
    locus_status st = api_init();
    if (st) return st;
    locus_pipeline *p = &m->p;
    int steps = o->steps ? o->steps : 50;
    if (o->patch_prompt && o->start_step >= steps)
        return locus_fail(LOCUS_E_ARG, "patch start step %d must be below the steps (%d)", o->start_step, steps);
    /* what this call changes on the pipeline, restored at the end (the CLI changes it for its one run) */
    locus_scheduler sched0 = p->sched;
    int clip_skip0 = p->clip_skip, size_cond0[6], size_cond_set0[3];
    memcpy(size_cond0, p->size_cond, sizeof size_cond0);
    memcpy(size_cond_set0, p->size_cond_set, sizeof size_cond_set0);
    locus_embeds ea = {0}, eb = {0};
    locus_interventions ivs = {0};
    locus_patcher pt = {0};
    locus_run r = {0};
    int run_inited = 0;
    locus_result *res = api_result_new();
    if (!res) return LOCUS_E_NOMEM;
    api_sink sink = {o, res, 0, LOCUS_OK, 0, 0, 0};
    locus_run_opts ro = {steps, o->guidance >= 0 ? (float)o->guidance : p->default_guidance, o->W, o->H, o->seed, NULL, NULL, NULL, o->trunc};
    ro.on_step = o->cb;
    ro.step_ctx = o->cb_ctx;
    int max_seq = o->max_seq ? o->max_seq : 256, cfg = ro.guidance > 1.0f;
    p->clip_skip = o->clip_skip;
    if (o->size_cond_set[0] || o->size_cond_set[1] || o->size_cond_set[2])
        CHECK(locus_pipeline_set_size_cond(p, o->size_cond_set[0] ? o->size_cond[0] : NULL, o->size_cond_set[1] ? o->size_cond[1] : NULL,
                                           o->size_cond_set[2] ? o->size_cond[2] : NULL));
    if (o->iv_spec) {
        CHECK(locus_interventions_parse(&ivs, o->iv_spec));
        CHECK(locus_interventions_configure(&ivs, o->iv_steps, o->iv_nheads, o->iv_heads, o->iv_half));
    }
    CHECK(locus_run_prepare(p, &ro));
    if (o->sampler) CHECK(locus_scheduler_override(&p->sched, o->sampler));
    if (o->emb[0]) CHECK(embeds_from_opts(p, o, cfg, &ea));
    else CHECK(locus_embeds_encode(p, o->prompt, o->negative, cfg, max_seq, &ea));
    if (o->patch_prompt) {
        CHECK(locus_embeds_encode(p, o->patch_prompt, NULL, 0, max_seq, &eb));
        if (eb.T != ea.T) { st = locus_fail(LOCUS_E_SHAPE, "patch embeddings have %d tokens, the prompt's have %d", eb.T, ea.T); goto done; }
    }
    locus_run_init(&r, p, &ro);
    run_inited = 1;
    if (o->noise_file) CHECK(locus_run_load_noise(&r, o->noise_file));
    /* hooks in the CLI's order: patching, interventions, caching */
    if (o->patch_prompt) {
        CHECK(locus_patcher_init(&pt, p, &ro, &ea, &eb, o->both, o->start_step, o->patch_layers, r.noise, NULL));
        CHECK(locus_patcher_select(&pt, o->patch_layers));
        locus_run_add_hook(&r, locus_patcher_hook(&pt));
    }
    if (ivs.n) locus_run_add_hook(&r, locus_interventions_hook(&ivs));
    if (o->npats) locus_run_add_hook(&r, (locus_hook_entry){sink_fn, sink_want, NULL, &sink});
    sink.C = r.C;
    sink.h = r.h;
    sink.w = r.w;
    if (o->dump) locus_run_add_observer(&r, (locus_step_cb){sink_step, &sink});
    CHECK(locus_run_exec(&r, &ea));
    CHECK(sink.err);
    if (ivs.n && !ivs.hits) {
        st = locus_fail(LOCUS_E_ARG, "intervene %s matched no hook point%s", o->iv_spec, ivs.missing ? " with a cached tensor of the same step and shape" : "");
        goto done;
    }
    if (ivs.missing) fprintf(stderr, "locus: warning: intervene replace: %d hook point calls had no cached tensor of their step and shape\n", ivs.missing);
    if (o->npats && !sink.count) { st = locus_fail(LOCUS_E_ARG, "cache patterns matched no hook point (e.g. *.attn2.probs; see locus_model_layer)"); goto done; }
    if (o->dump) {
        int64_t ls[4] = {1, r.C, r.h, r.w}, is[4] = {1, 3, ro.H, ro.W};
        CHECK(api_result_add(res, "final_latent", 4, ls, r.latent));
        CHECK(api_result_add(res, "image", 4, is, r.image));
    }
    res->rgb = malloc((size_t)3 * ro.H * ro.W);
    if (!res->rgb) { st = locus_fail(LOCUS_E_NOMEM, "out of memory for the image"); goto done; }
    locus_run_pixels(&r, res->rgb);
    res->H = ro.H;
    res->W = ro.W;
done:
    locus_patcher_free(&pt);
    if (run_inited) locus_run_free(&r);
    locus_interventions_free(&ivs);
    locus_embeds_free(&ea);
    locus_embeds_free(&eb);
    locus_mem_trim(); /* the big blocks kept for reuse during the run go back to the host process */
    /* restore the pipeline: every setting of the scheduler (a sampler override changes several, and Euler's
     * timesteps set init_noise_sigma, which DDIM's do not reset) keeping the PNDM state buffers it owns now,
     * and clip skip */
    float *ets[4];
    memcpy(ets, p->sched.ets, sizeof ets);
    float *cur = p->sched.cur_sample;
    size_t state_n = p->sched.state_n;
    p->sched = sched0;
    memcpy(p->sched.ets, ets, sizeof ets);
    p->sched.cur_sample = cur;
    p->sched.state_n = state_n;
    p->clip_skip = clip_skip0;
    memcpy(p->size_cond, size_cond0, sizeof size_cond0);
    memcpy(p->size_cond_set, size_cond_set0, sizeof size_cond_set0);
    if (st) { locus_result_free(res); return st; }
    *out = res;
    return LOCUS_OK;
}
