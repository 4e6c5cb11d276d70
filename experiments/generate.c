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

#include "cache.h"
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

/* per-step dump (--dump) and progress: one observer of the run */
typedef struct {
    locus_st_writer *dump;
    int C, h, w;
    locus_progress prog;
} gen_obs;

static void on_step(void *vc, int step, int nsteps, const float *unc, const float *cond, const float *guided, const float *lat, size_t n) {
    gen_obs *r = vc;
    if (r->dump) {
        int64_t shp[4] = {1, r->C, r->h, r->w};
        char nm[64];
        if (unc) { snprintf(nm, sizeof nm, "step%d.noise_pred_uncond", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, shp, unc); }
        snprintf(nm, sizeof nm, "step%d.noise_pred_text", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, shp, cond);
        snprintf(nm, sizeof nm, "step%d.noise_pred", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, shp, guided);
        snprintf(nm, sizeof nm, "step%d.latent_out", step); locus_st_writer_add(r->dump, nm, LOCUS_F32, 4, shp, lat);
    }
    locus_progress_update(&r->prog, step + 1);
}

/* initial noise from a file: tensor `noise` [1,C,h,w] */
static float *load_noise(const char *path, int C, int h, int w) {
    locus_st_file nf;
    if (locus_st_open(&nf, path)) return NULL;
    size_t n = (size_t)C * h * w;
    float *lat = locus_alloc(n * sizeof(float));
    const locus_st_tensor *t = locus_st_find(&nf, "noise");
    int ok = lat && t && t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == C && t->shape[2] == h && t->shape[3] == w &&
             locus_st_to_f32(t, lat, (int64_t)n) == LOCUS_OK;
    locus_st_close(&nf);
    if (!ok) { locus_free(lat); locus_fail(LOCUS_E_SHAPE, "%s: needs a tensor 'noise' of shape [1,%d,%d,%d]", path, C, h, w); return NULL; }
    return lat;
}

#define CHECK(call) do { if ((call) != LOCUS_OK) goto fail; } while (0)

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
    locus_embeds ea = {0}, eb = {0};
    locus_interventions ivs = {0};
    locus_cache cache = {0};
    locus_patcher pt = {0};
    locus_run r = {0};
    float *noise = NULL;
    uint8_t *pix = NULL;
    gen_obs obs = {0};
    locus_run_opts o = {a.steps > 0 ? a.steps : 50, a.guidance >= 0 ? a.guidance : p.default_guidance, a.width, a.height, (uint64_t)a.seed};
    int max_seq = a.max_seq ? a.max_seq : 256, cfg = o.guidance > 1.0f;
    p.clip_skip = a.clip_skip;
    if (a.intervene) {
        CHECK(locus_interventions_parse(&ivs, a.intervene));
        CHECK(locus_interventions_configure(&ivs, a.iv_steps, a.iv_nheads, a.iv_heads, a.iv_half));
    }
    CHECK(locus_run_prepare(&p, &o));
    if (a.sampler) CHECK(locus_scheduler_override(&p.sched, a.sampler));
    const char *sampler_name = p.sched.kind == LOCUS_SCHED_EULER ? "euler" : p.sched.kind == LOCUS_SCHED_PNDM ? "pndm"
                               : p.sched.kind == LOCUS_SCHED_FLOW ? "flow" : "ddim";
    /* text conditioning of prompt A (and B when patching) */
    if (a.embeds_file) CHECK(locus_embeds_load(&p, a.embeds_file, cfg, &ea));
    else CHECK(locus_embeds_encode(&p, a.prompt, a.negative, cfg, max_seq, &ea));
    if (a.patch_layers) {
        if (a.patch_embeds) CHECK(locus_embeds_load(&p, a.patch_embeds, 0, &eb));
        else CHECK(locus_embeds_encode(&p, a.patch_prompt, NULL, 0, max_seq, &eb));
        if (eb.T != ea.T) { locus_fail(LOCUS_E_SHAPE, "patch embeddings have %d tokens, the prompt's have %d", eb.T, ea.T); goto fail; }
    }
    locus_run_init(&r, &p, &o);
    if (a.noise_file && !(noise = load_noise(a.noise_file, r.C, r.h, r.w))) goto fail;
    r.noise = noise;
    /* hooks in order: patching, interventions, caching */
    if (a.patch_layers) {
        unsigned char sel[1024];
        if (p.den.ntext_layers > (int)sizeof sel) { locus_fail(LOCUS_E_UNSUPPORTED, "too many text layers"); goto fail; }
        CHECK(locus_denoiser_select_text_layers(&p.den, a.patch_layers, "--patch-layers", sel));
        if (!p.den.text_kv_projectable) fprintf(stderr, "generate: caching prompt B's text K/V\n");
        CHECK(locus_patcher_init(&pt, &p, &o, &ea, &eb, a.patch_both, a.start_step, a.patch_layers, noise, NULL));
        CHECK(locus_patcher_select(&pt, a.patch_layers));
        locus_run_add_hook(&r, locus_patcher_hook(&pt));
    }
    if (ivs.n) locus_run_add_hook(&r, locus_interventions_hook(&ivs));
    if (a.cache_file) {
        CHECK(locus_cache_open(&cache, a.cache_file, a.cache_points));
        locus_run_add_hook(&r, locus_cache_hook(&cache));
    }
    if (a.dump_file) obs.dump = locus_st_writer_new();
    obs.C = r.C; obs.h = r.h; obs.w = r.w;
    locus_run_add_observer(&r, (locus_step_cb){on_step, &obs});
    CHECK(locus_sample_set_timesteps(&p.den, &p.sched, o.steps, r.h, r.w));
    locus_progress_start(&obs.prog, "generate", p.sched.nevals);
    CHECK(locus_run_exec(&r, &ea));
    locus_progress_end(&obs.prog);
    pix = malloc((size_t)3 * o.H * o.W);
    if (!pix) { locus_fail(LOCUS_E_NOMEM, "out of memory"); goto fail; }
    locus_run_pixels(&r, pix);
    char seed_s[32], steps_s[16], g_s[32], hash_s[32];
    snprintf(seed_s, sizeof seed_s, "%lld", a.seed);
    snprintf(steps_s, sizeof steps_s, "%d", o.steps);
    snprintf(g_s, sizeof g_s, "%g", o.guidance);
    snprintf(hash_s, sizeof hash_s, "%016llx", p.model_hash);
    locus_png_text tx[] = {{"prompt", a.prompt ? a.prompt : "(embeddings file)"}, {"negative_prompt", a.negative},
                           {"seed", a.noise_file ? "(noise file)" : seed_s}, {"steps", steps_s}, {"sampler", sampler_name},
                           {"guidance", g_s}, {"model_hash", hash_s}, {"isa", locus_isa_name()}, {"locus_version", LOCUS_VERSION},
                           {"patch_layers", a.patch_layers ? a.patch_layers : ""},
                           {"patch_prompt", a.patch_prompt ? a.patch_prompt : a.patch_embeds ? "(embeddings file)" : ""}};
    if (obs.dump) {
        int64_t ls[4] = {1, r.C, r.h, r.w}, is[4] = {1, 3, o.H, o.W};
        locus_st_writer_add(obs.dump, "final_latent", LOCUS_F32, 4, ls, r.latent);
        locus_st_writer_add(obs.dump, "image", LOCUS_F32, 4, is, r.image);
        for (size_t i = 0; i < sizeof tx / sizeof *tx; i++) locus_st_writer_add_meta(obs.dump, tx[i].key, tx[i].value);
        CHECK(locus_st_writer_save(obs.dump, a.dump_file));
    }
    if (ivs.n && !ivs.hits) {
        locus_fail(LOCUS_E_ARG, "--intervene %s matched no hook point%s", a.intervene, ivs.missing ? " with a cached tensor of the same step and shape" : "");
        goto fail;
    }
    if (ivs.missing) fprintf(stderr, "locus generate: warning: --intervene replace: %d hook point calls had no cached tensor of their step and shape\n", ivs.missing);
    if (a.cache_file) {
        if (!cache.count) { locus_cache_close(&cache, 0); locus_fail(LOCUS_E_ARG, "--cache-points %s matched no hook point", a.cache_points); goto fail; }
        CHECK(locus_cache_close(&cache, 1));
        fprintf(stderr, "cached %d tensors to %s\n", cache.count, a.cache_file);
    }
    if (locus_png_write(a.out, pix, o.W, o.H, 3, tx, (int)(sizeof tx / sizeof *tx))) {
        if (a.dump_file) remove(a.dump_file);
        goto fail;
    }
    fprintf(stderr, "wrote %s (%dx%d, %d steps, isa %s, peak memory %.1f MiB)\n", a.out, o.W, o.H, o.steps, locus_isa_name(),
            (double)locus_mem_peak() / (1 << 20));
    ret = 0;
    goto done;
fail:
    fprintf(stderr, "locus generate: %s\n", locus_errmsg());
done:
    locus_st_writer_free(obs.dump);
    locus_cache_close(&cache, 0);
    locus_patcher_free(&pt);
    locus_run_free(&r);
    locus_interventions_free(&ivs);
    locus_embeds_free(&ea);
    locus_embeds_free(&eb);
    locus_free(noise);
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
    locus_pipeline_print_info(&p, dir);
    locus_pipeline_close(&p);
    return 0;
}
