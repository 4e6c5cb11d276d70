/* generate.c — `locus generate`: prompt (or embeddings) -> sampled latent -> PNG, with an optional safetensors
 * dump of every step.  All inputs are validated before any work starts and outputs are written atomically
 * at the end, so a failed run never leaves a partial file. */
#include "generate.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/numparse.h"
#include "../core/png.h"
#include "../core/rng.h"
#include "../core/safetensors.h"
#include "../core/version.h"
#include "../models/lora.h"
#include "../models/pipeline.h"
#include "../simd/kernels.h"

#include "cache.h"
#include "cli_opts.h"
#include "patch.h"
#include "progress.h"
#include "run.h"

#include "generate_opts.h"

static int fail(const char *fmt, const char *a) {
    fprintf(stderr, "locus generate: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return 2;
}

static int parse_args(int argc, char **argv, gen_args *a) {
    memset(a, 0, sizeof *a);
    a->steps = a->guidance = -1;
    int rc = locus_opts_parse(&locus_generate_help, locus_generate_opts, locus_generate_nopts, argc, argv, a);
    if (rc) return rc < 0 ? -1 : rc;
    if (a->halves && strcmp(a->halves, "cond") && strcmp(a->halves, "both")) return fail("--patch-halves %s: expected cond or both", a->halves);
    if (!a->model) return fail("%s", "--model DIR is required");
    if (!a->out) return fail("%s", "-o OUT.png is required");
    if (!a->prompt && !a->embeds_file) return fail("%s", "give --prompt TEXT or --prompt-embeds FILE");
    if ((a->patch_prompt || a->patch_embeds) && !a->patch_layers) return fail("%s", "--patch-prompt/--patch-embeds need --patch-layers L1,L2");
    if (a->patch_layers && !a->patch_prompt && !a->patch_embeds) return fail("%s", "--patch-layers needs --patch-prompt TEXT or --patch-embeds FILE");
    if (!a->cache_file != !a->cache_points) return fail("%s", "--cache FILE and --cache-points PATTERN[,PATTERN] go together");
    if ((a->iv_steps || a->iv_heads || a->iv_half) && !a->intervene) return fail("%s", "--intervene-steps/-heads/-half need --intervene PATTERN=OP");
    if (a->iv_heads && !a->iv_nheads) return fail("%s", "--intervene-heads needs --heads N (heads of the hooked tensors)");
    if (a->start_step && !a->patch_layers) return fail("%s", "--start-step needs --patch-layers");
    if (a->start_step && a->start_step >= (a->steps > 0 ? a->steps : 50))
        return fail("--start-step must be below --steps (%s patched steps otherwise)", "no");
    /* outputs: each must be absent or a regular file in an existing directory, checked before any work */
    const char *outs[] = {a->out, a->dump_file, a->cache_file};
    for (size_t k = 0; k < sizeof outs / sizeof *outs; k++)
        if (outs[k] && locus_output_check(outs[k])) return fail("%s", locus_errmsg());
    return 0;
}

#define CHECK(call) do { if ((call) != LOCUS_OK) goto fail; } while (0)

int locus_cmd_generate(int argc, char **argv) {
    gen_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc; /* -1: --help printed */
    if (locus_kernels_init() != LOCUS_OK) return fail("%s", locus_errmsg());
    if (a.threads) locus_set_threads((int)a.threads);
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
    uint8_t *pix = NULL;
    locus_run_opts o = {a.steps > 0 ? (int)a.steps : 50, a.guidance >= 0 ? (float)a.guidance : p.default_guidance, (int)a.width, (int)a.height,
                        (uint64_t)a.seed, NULL, NULL, "generate"};
    int max_seq = a.max_seq ? (int)a.max_seq : 256, cfg = o.guidance > 1.0f;
    p.clip_skip = (int)a.clip_skip;
    if (a.size_cond[0] || a.size_cond[1] || a.size_cond[2]) { /* "H,W" pairs, handled by the pipeline */
        static const char *const flag[3] = {"--original-size", "--crops-coords-top-left", "--target-size"};
        int v[3][2];
        for (int k = 0; k < 3; k++) {
            char tail;
            if (a.size_cond[k] && (sscanf(a.size_cond[k], "%d,%d%c", &v[k][0], &v[k][1], &tail) != 2 || v[k][0] < 0 || v[k][1] < 0 ||
                                   v[k][0] > 1000000 || v[k][1] > 1000000)) {
                locus_fail(LOCUS_E_ARG, "%s %s: expected two non-negative integers A,B", flag[k], a.size_cond[k]);
                goto fail;
            }
        }
        CHECK(locus_pipeline_set_size_cond(&p, a.size_cond[0] ? v[0] : NULL, a.size_cond[1] ? v[1] : NULL, a.size_cond[2] ? v[2] : NULL));
    }
    if (a.intervene) {
        CHECK(locus_interventions_parse(&ivs, a.intervene));
        CHECK(locus_interventions_configure(&ivs, a.iv_steps, (int)a.iv_nheads, a.iv_heads, a.iv_half));
    }
    CHECK(locus_run_prepare(&p, &o));
    for (int i = 0; i < a.lora.n; i++) { /* adapters on the denoiser's Linear layers, applied after each base output */
        char path[4096];
        float w;
        CHECK(locus_lora_parse_spec(a.lora.v[i], path, sizeof path, &w));
        CHECK(locus_lora_load(p.den.loader, path, w));
    }
    if (a.sampler) CHECK(locus_scheduler_override(&p.sched, a.sampler));
    /* text conditioning of prompt A (and B when patching) */
    if (a.embeds_file) CHECK(locus_embeds_load(&p, a.embeds_file, cfg, &ea));
    else CHECK(locus_embeds_encode(&p, a.prompt, a.negative, cfg, max_seq, &ea));
    if (a.patch_layers) {
        if (a.patch_embeds) CHECK(locus_embeds_load(&p, a.patch_embeds, 0, &eb));
        else CHECK(locus_embeds_encode(&p, a.patch_prompt, NULL, 0, max_seq, &eb));
        if (eb.T != ea.T) { locus_fail(LOCUS_E_SHAPE, "patch embeddings have %d tokens, the prompt's have %d", eb.T, ea.T); goto fail; }
    }
    locus_run_init(&r, &p, &o); /* progress "generate"; the patcher's prompt-B run below has its own label */
    if (a.noise_file) CHECK(locus_run_load_noise(&r, a.noise_file));
    /* hooks in order: patching, interventions, caching */
    if (a.patch_layers) {
        o.progress = "prompt B (caching its text K/V)";
        CHECK(locus_patcher_init(&pt, &p, &o, &ea, &eb, a.halves && !strcmp(a.halves, "both"), (int)a.start_step, a.patch_layers, r.noise, NULL));
        CHECK(locus_patcher_select(&pt, a.patch_layers));
        locus_run_add_hook(&r, locus_patcher_hook(&pt));
    }
    if (ivs.n) locus_run_add_hook(&r, locus_interventions_hook(&ivs));
    if (a.cache_file) {
        CHECK(locus_cache_open(&cache, a.cache_file, a.cache_points));
        locus_run_add_hook(&r, locus_cache_hook(&cache));
    }
    if (a.dump_file) r.dump = locus_st_writer_new();
    CHECK(locus_run_exec(&r, &ea));
    pix = malloc((size_t)3 * o.H * o.W);
    if (!pix) { locus_fail(LOCUS_E_NOMEM, "out of memory"); goto fail; }
    locus_run_pixels(&r, pix);
    char seed_s[32], steps_s[16], g_s[32], hash_s[32];
    snprintf(seed_s, sizeof seed_s, "%lld", a.seed); snprintf(steps_s, sizeof steps_s, "%d", o.steps);
    snprintf(g_s, sizeof g_s, "%g", o.guidance); snprintf(hash_s, sizeof hash_s, "%016llx", p.model_hash);
    locus_png_text tx[] = {{"prompt", a.prompt ? a.prompt : "(embeddings file)"}, {"negative_prompt", a.negative ? a.negative : ""},
                           {"seed", a.noise_file ? "(noise file)" : seed_s}, {"steps", steps_s}, {"sampler", locus_scheduler_name(&p.sched)},
                           {"guidance", g_s}, {"model_hash", hash_s}, {"isa", locus_isa_name()}, {"locus_version", LOCUS_VERSION},
                           {"patch_layers", a.patch_layers ? a.patch_layers : ""},
                           {"patch_prompt", a.patch_prompt ? a.patch_prompt : a.patch_embeds ? "(embeddings file)" : ""},
                           {"lora", a.lora.n ? a.lora.v[0] : ""}};
    int ntx = (int)(sizeof tx / sizeof *tx) - !a.lora.n; /* the lora key only when adapters were applied */
    if (ivs.n && !ivs.hits) {
        locus_fail(LOCUS_E_ARG, "--intervene %s matched no hook point%s", a.intervene, ivs.missing ? " with a cached tensor of the same step and shape" : "");
        goto fail;
    }
    if (ivs.missing) fprintf(stderr, "locus generate: warning: --intervene replace: %d hook point calls had no cached tensor of their step and shape\n", ivs.missing);
    if (a.cache_file && !cache.count) { locus_cache_close(&cache, 0); locus_fail(LOCUS_E_ARG, "--cache-points %s matched no hook point", a.cache_points); goto fail; }
    /* every check passed: the outputs, each written atomically; a later failure removes the earlier ones */
    if (r.dump) {
        for (int i = 0; i < ntx; i++) locus_st_writer_add_meta(r.dump, tx[i].key, tx[i].value);
        CHECK(locus_st_writer_save(r.dump, a.dump_file));
    }
    if (a.cache_file && locus_cache_close(&cache, 1)) {
        if (a.dump_file) remove(a.dump_file);
        goto fail;
    }
    if (locus_png_write(a.out, pix, o.W, o.H, 3, tx, ntx)) {
        if (a.dump_file) remove(a.dump_file);
        if (a.cache_file) remove(a.cache_file);
        goto fail;
    }
    if (a.cache_file) fprintf(stderr, "cached %d tensors to %s\n", cache.count, a.cache_file);
    fprintf(stderr, "wrote %s (%dx%d, %d steps, isa %s, peak memory %.1f MiB)\n", a.out, o.W, o.H, o.steps, locus_isa_name(),
            (double)locus_mem_peak() / (1 << 20));
    ret = 0;
    goto done;
fail:
    fprintf(stderr, "locus generate: %s\n", locus_errmsg());
done:
    locus_st_writer_free(r.dump);
    locus_cache_close(&cache, 0);
    locus_patcher_free(&pt);
    locus_run_free(&r);
    locus_interventions_free(&ivs);
    locus_embeds_free(&ea); locus_embeds_free(&eb);
    free(pix);
    locus_pipeline_close(&p);
    return ret;
}
