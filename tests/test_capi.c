/* test_capi.c — the stable C API (include/locus.h) as a program using it sees it: models open, info and layers
 * agree with each other, generations reproduce diffusers' goldens (sd15-tiny from the prompt; sd3-tiny with
 * MM-DiT text-K/V patching) byte for byte, the result is the same bits for a reused handle and another ISA,
 * hooks (cache by glob, patching, interventions, dump) behave as the CLI's, and bad input — a missing folder, a
 * bad layer name, bad option values, patterns matching nothing — gives an error code and a message instead of
 * a crash.  (Byte equality with `locus generate` itself is checked through Python in tests/python_test.sh.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/safetensors.h"
#include "../include/locus.h"
#include "../simd/kernels.h"
#include "testutil.h"

#define SD15 "tests/golden/pipelines/sd15-tiny"
#define SD3 "tests/golden/pipelines/sd3-tiny"
#define HELLO "A sign that says \"HELLO\"."
#define WORLD "A sign that says \"WORLD\"."

/* a golden uint8 image [1,H,W,3] equals the result's pixels */
static int same_as_golden(const locus_result *r, const char *golden, const char *name) {
    locus_st_file f;
    if (locus_st_open(&f, golden)) { fprintf(stderr, "%s\n", locus_last_error()); return 0; }
    const locus_st_tensor *t = locus_st_find(&f, name);
    const uint8_t *rgb = NULL;
    int H = 0, W = 0, ok = t && !locus_result_image(r, &rgb, &H, &W) && t->ndim == 4 && t->shape[1] == H && t->shape[2] == W &&
                          t->nbytes == (size_t)H * W * 3 && !memcmp(t->data, rgb, t->nbytes);
    locus_st_close(&f);
    return ok;
}

static int same_image(const locus_result *a, const locus_result *b) {
    const uint8_t *pa, *pb;
    int ha, wa, hb, wb;
    if (locus_result_image(a, &pa, &ha, &wa) || locus_result_image(b, &pb, &hb, &wb)) return 0;
    return ha == hb && wa == wb && !memcmp(pa, pb, (size_t)ha * wa * 3);
}

/* every tensor of a and b: same names, shapes and bits */
static int same_tensors(const locus_result *a, const locus_result *b) {
    if (locus_result_count(a) != locus_result_count(b)) return 0;
    for (int i = 0; i < locus_result_count(a); i++) {
        const char *na, *nb;
        int da, db;
        const int64_t *sa, *sb;
        const float *xa, *xb;
        locus_result_tensor(a, i, &na, &da, &sa, &xa);
        locus_result_tensor(b, i, &nb, &db, &sb, &xb);
        if (strcmp(na, nb) || da != db || memcmp(sa, sb, (size_t)da * sizeof *sa)) return 0;
        size_t n = 1;
        for (int k = 0; k < da; k++) n *= (size_t)sa[k];
        if (memcmp(xa, xb, n * sizeof(float))) return 0;
    }
    return 1;
}

/* options for a generation from the encoded prompt and the encoded "no prompt" (the negative) of m */
static locus_genopts *embeds_opts(locus_model *m, const char *prompt, int max_seq, int seed, int steps) {
    locus_result *c = NULL, *u = NULL;
    locus_genopts *o = locus_genopts_new();
    if (locus_model_encode(m, prompt, max_seq, &c) || locus_model_encode(m, NULL, max_seq, &u)) {
        fprintf(stderr, "  encode: %s\n", locus_last_error());
        locus_result_free(c);
        return o;
    }
    const float *cx, *ux, *cp = NULL, *up = NULL;
    const int64_t *s, *sp = NULL;
    locus_result_tensor(c, 0, NULL, NULL, &s, &cx);
    locus_result_tensor(u, 0, NULL, NULL, NULL, &ux);
    if (locus_result_count(c) > 1) {
        locus_result_tensor(c, 1, NULL, NULL, &sp, &cp);
        locus_result_tensor(u, 1, NULL, NULL, NULL, &up);
    }
    locus_genopts_set_prompt_embeds(o, (int)s[1], (int)s[2], cx, ux, sp ? (int)sp[1] : 0, cp, up);
    locus_result_free(c);
    locus_result_free(u); /* the options hold copies */
    locus_genopts_set_seed(o, seed);
    locus_genopts_set_steps(o, steps);
    return o;
}

/* generate with o into a new result (NULL on failure, printing the message) */
static locus_result *gen(locus_model *m, const locus_genopts *o) {
    locus_result *r = NULL;
    if (locus_model_generate(m, o, &r)) fprintf(stderr, "  generate: %s\n", locus_last_error());
    return r;
}

/* a call must fail with status want (0: any) and a message containing `what` */
static void expect_error(int rc, int want, const char *what, const char *label) {
    CHECK(rc != 0 && (!want || rc == want) && strstr(locus_last_error(), what), "%s: rc %d, message '%s' (wanted '%s')", label, rc,
          locus_last_error(), what);
}

static void test_bad_open(void) {
    locus_model *m = (locus_model *)1;
    expect_error(locus_model_open("/nonexistent/model", &m), 0, "/nonexistent/model", "missing folder");
    CHECK(m == NULL, "a failed open leaves *out NULL");
    expect_error(locus_model_open(NULL, &m), LOCUS_E_ARG, "no folder", "NULL folder");
    expect_error(locus_model_open("tests/golden/pipelines/sd15-tiny/unet/config.json", &m), 0, "config.json", "a file, not a folder");
    expect_error(locus_set_isa("sse9"), LOCUS_E_ARG, "sse9", "unknown ISA");
    expect_error(locus_set_num_threads(0), LOCUS_E_ARG, "threads", "zero threads");
    locus_model_close(NULL); /* NULL is a no-op everywhere */
    locus_result_free(NULL);
    locus_genopts_free(NULL);
}

static void test_info(locus_model *m) {
    locus_model_info in;
    memset(&in, 0xff, sizeof in);
    CHECK(!locus_model_get_info(m, &in, sizeof in), "info: %s", locus_last_error());
    CHECK(!strcmp(in.family, "sd") && !strcmp(in.denoiser_class, "UNet2DConditionModel") && in.width == 32 && in.height == 32 &&
              in.latent_channels == 4 && in.vae_factor == 4 && in.ctx_dim == 32 && in.pooled_dim == 0 && in.text_tokens == 77 &&
              in.default_steps == 50 && fabsf(in.default_guidance - 7.5f) < 1e-6f,
          "info: family %s %s %dx%d C=%d f=%d ctx=%d pooled=%d T=%d", in.family, in.denoiser_class, in.width, in.height,
          in.latent_channels, in.vae_factor, in.ctx_dim, in.pooled_dim, in.text_tokens);
    /* a caller built against a shorter struct gets only its part */
    locus_model_info part;
    memset(&part, 0x5a, sizeof part);
    locus_model_get_info(m, &part, offsetof(locus_model_info, width));
    CHECK(!strcmp(part.family, "sd") && part.width == 0x5a5a5a5a, "info_size is honoured");
    int n = locus_model_layer_count(m), ntext = 0, order_ok = 1;
    uint64_t text = 0;
    for (int i = 0; i < n; i++) {
        locus_layer_desc d;
        CHECK(!locus_model_layer(m, i, &d, sizeof d), "layer %d: %s", i, locus_last_error());
        text += d.text_params;
        if (d.text_index >= 0) {
            order_ok &= d.text_index == ntext++ && !strcmp(d.kind, "cross") && d.text_params > 0 && !strcmp(d.site, d.name);
        } else order_ok &= !strcmp(d.kind, "self") && d.text_params == 0;
    }
    CHECK(n == in.n_layers && ntext == in.n_text_layers && ntext > 0 && text == in.text_params && order_ok,
          "layers: %d (info %d), text %d (info %d), text params %llu (info %llu), numbering %d", n, in.n_layers, ntext, in.n_text_layers,
          (unsigned long long)text, (unsigned long long)in.text_params, order_ok);
    locus_layer_desc d;
    expect_error(locus_model_layer(m, n, &d, sizeof d), LOCUS_E_ARG, "layer", "layer index out of range");
    /* encoded prompts: [1,77,32], no pooled text for SD1.x */
    locus_result *e = NULL;
    const int64_t *shape;
    int nd = 0;
    CHECK(!locus_model_encode(m, HELLO, 0, &e) && locus_result_count(e) == 1 && !locus_result_tensor(e, 0, NULL, &nd, &shape, NULL) &&
              nd == 3 && shape[0] == 1 && shape[1] == 77 && shape[2] == 32 && locus_result_find(e, "cond") == 0,
          "encode: %s", locus_last_error());
    expect_error(locus_result_image(e, NULL, NULL, NULL), LOCUS_E_NOTFOUND, "no image", "an encoding has no image");
    locus_result_free(e);
}

static void test_generate_sd15(locus_model *m) {
    locus_genopts *o = locus_genopts_new();
    locus_result *r0 = NULL;
    /* options the CLI refuses */
    expect_error(locus_model_generate(m, o, &r0), LOCUS_E_ARG, "no prompt", "no prompt");
    expect_error(locus_genopts_set_steps(o, 0), LOCUS_E_ARG, "steps", "steps 0");
    expect_error(locus_genopts_set_size(o, 7, 32), LOCUS_E_ARG, "size", "width 7");
    expect_error(locus_genopts_set_sampler(o, "heun"), LOCUS_E_ARG, "heun", "unknown sampler");
    expect_error(locus_genopts_set_guidance(o, 1000), LOCUS_E_ARG, "guidance", "guidance 1000");
    expect_error(locus_genopts_add_cache(o, "a,,b"), LOCUS_E_ARG, "empty", "empty cache pattern");
    /* diffusers' run a of the golden: prompt, seed 42, 4 steps, guidance 7.5 -> its uint8 image exactly */
    locus_genopts_set_prompt(o, HELLO);
    locus_genopts_set_seed(o, 42);
    locus_genopts_set_steps(o, 4);
    locus_genopts_set_guidance(o, 7.5);
    r0 = gen(m, o);
    CHECK(r0 && same_as_golden(r0, SD15 ".golden/golden_pipeline.safetensors", "a.image_uint8"), "sd15-tiny image equals diffusers' a.image_uint8");
    /* the handle is reusable: the same bits again, after a run with another sampler (restored afterwards) */
    locus_genopts_set_sampler(o, "euler");
    locus_result *re = gen(m, o);
    locus_genopts_set_sampler(o, NULL);
    locus_result *r1 = gen(m, o);
    CHECK(re && r1 && !same_image(re, r0) && same_image(r1, r0), "sampler per call; a reused handle gives the same image");
    /* the encoded prompt and negative prompt as embeddings: the same image as from the strings */
    locus_genopts *oe = embeds_opts(m, HELLO, 0, 42, 4);
    locus_genopts_set_guidance(oe, 7.5);
    locus_result *rem = gen(m, oe);
    CHECK(rem && same_image(rem, r0), "generate from locus_model_encode's embeddings = from the prompt");
    locus_result_free(rem);
    locus_genopts_free(oe);
    oe = locus_genopts_new();
    float *wide = calloc(77 * 33, sizeof(float));
    locus_genopts_set_prompt_embeds(oe, 77, 33, wide, wide, 0, NULL, NULL);
    free(wide);
    expect_error(locus_model_generate(m, oe, &rem), LOCUS_E_SHAPE, "width 33", "embeddings of the wrong width");
    locus_genopts_free(oe);
    /* a bad size for this model: an error, not a crash */
    locus_genopts_set_size(o, 36, 32);
    locus_result *bad = NULL;
    expect_error(locus_model_generate(m, o, &bad), LOCUS_E_ARG, "multiples of 8", "size not a multiple of 8");
    CHECK(bad == NULL, "a failed generate leaves *out NULL");
    locus_genopts_set_size(o, 0, 0);
    /* cache by glob + dump: probabilities [2 (CFG), heads, 16, 77] at each of 4 steps, rows summing to 1 */
    locus_genopts_add_cache(o, "*.attn2.probs");
    locus_genopts_set_dump(o, 1);
    locus_result *rc = gen(m, o);
    int nprobs = 0, rows_ok = 1;
    for (int i = 0; rc && i < locus_result_count(rc); i++) {
        const char *nm;
        int nd;
        const int64_t *s;
        const float *x;
        locus_result_tensor(rc, i, &nm, &nd, &s, &x);
        if (!strstr(nm, ".attn2.probs")) continue;
        nprobs++;
        rows_ok &= nd == 4 && s[0] == 2 && s[3] == 77 && !strncmp(nm, "step", 4);
        double sum = 0;
        for (int k = 0; k < 77; k++) sum += x[k];
        rows_ok &= fabs(sum - 1) < 1e-5;
    }
    int ntext = 0;
    for (int i = 0; i < locus_model_layer_count(m); i++) {
        locus_layer_desc d;
        locus_model_layer(m, i, &d, sizeof d);
        ntext += d.text_index >= 0;
    }
    CHECK(rc && nprobs == 4 * ntext && rows_ok && same_image(rc, r0), "cache: %d probs tensors (want %d), shapes/rows %d, image unchanged", nprobs,
          4 * ntext, rows_ok);
    int fi = locus_result_find(rc, "final_latent"), ii = locus_result_find(rc, "image"), si = locus_result_find(rc, "step3.latent_out");
    CHECK(fi >= 0 && ii > fi && si >= 0 && si < fi, "dump: step tensors, then final_latent and image");
    /* the dumped latents equal diffusers' golden within 1e-4 (the CLI's parity; bits are the CLI's) */
    locus_st_file g;
    if (!locus_st_open(&g, SD15 ".golden/golden_pipeline.safetensors")) {
        const locus_st_tensor *t = locus_st_find(&g, "a.final_latent");
        float want[256];
        const float *got = NULL;
        locus_result_tensor(rc, fi, NULL, NULL, NULL, &got);
        double md = 1;
        if (t && got && locus_st_numel(t) == 256 && !locus_st_to_f32(t, want, 256)) {
            md = 0;
            for (int k = 0; k < 256; k++) md = fmax(md, fabs(got[k] - want[k]));
        }
        CHECK(md < 1e-4, "dump final_latent vs diffusers: max diff %g", md);
        locus_st_close(&g);
    }
    locus_result_free(rc);
    /* a cache pattern that matches nothing is refused, as --cache-points */
    locus_genopts_set_dump(o, 0);
    locus_genopts *o2 = locus_genopts_new();
    locus_genopts_set_prompt(o2, HELLO);
    locus_genopts_set_steps(o2, 2);
    locus_genopts_add_cache(o2, "no_such_module.*");
    expect_error(locus_model_generate(m, o2, &bad), LOCUS_E_ARG, "matched no hook point", "cache pattern matching nothing");
    locus_genopts_free(o2);
    locus_genopts_free(o);
    /* patching: B's text in up_blocks.1 changes the image; a bad layer name is an error naming it */
    o = locus_genopts_new();
    locus_genopts_set_prompt(o, HELLO);
    locus_genopts_set_seed(o, 42);
    locus_genopts_set_steps(o, 4);
    locus_genopts_set_patch(o, WORLD, "up_blocks.1", 0, 0);
    locus_result *rp = gen(m, o);
    CHECK(rp && !same_image(rp, r0), "patching up_blocks.1 changes the image");
    locus_genopts_set_patch(o, WORLD, "up_blocks.9.attentions.0", 0, 0);
    expect_error(locus_model_generate(m, o, &bad), LOCUS_E_ARG, "up_blocks.9.attentions.0", "bad layer name");
    locus_genopts_set_patch(o, WORLD, "up_blocks.1", 4, 0);
    expect_error(locus_model_generate(m, o, &bad), LOCUS_E_ARG, "start step", "start step >= steps");
    /* patched from step 3 of 4 only: neither the unpatched nor the fully patched image */
    locus_genopts_set_patch(o, WORLD, "up_blocks.1", 3, 0);
    locus_result *rs = gen(m, o);
    CHECK(rs && !same_image(rs, rp) && !same_image(rs, r0), "start step 3: neither the unpatched nor the fully patched image");
    locus_genopts_set_patch(o, NULL, NULL, 0, 0);
    /* interventions: scale:1 is the identity (same bits), zero changes the image, a pattern matching nothing is refused */
    locus_genopts_set_intervene(o, "up_blocks.1.attentions.0.transformer_blocks.0.attn2=scale:1", NULL, 0, NULL, NULL);
    locus_result *ri = gen(m, o);
    locus_genopts_set_intervene(o, "up_blocks.1.attentions.0.transformer_blocks.0.attn2=zero", NULL, 0, NULL, "both");
    locus_result *rz = gen(m, o);
    CHECK(ri && rz && same_image(ri, r0) && !same_image(rz, r0), "intervene scale:1 keeps the image, zero changes it");
    locus_genopts_set_intervene(o, "nothing.here=zero", NULL, 0, NULL, NULL);
    expect_error(locus_model_generate(m, o, &bad), LOCUS_E_ARG, "matched no hook point", "intervention matching nothing");
    locus_genopts_set_intervene(o, "conv_out=frobnicate", NULL, 0, NULL, NULL);
    expect_error(locus_model_generate(m, o, &bad), 0, "frobnicate", "unknown intervention");
    locus_genopts_set_intervene(o, "conv_out=replace:/nonexistent.safetensors", NULL, 0, NULL, NULL);
    expect_error(locus_model_generate(m, o, &bad), 0, "/nonexistent.safetensors", "replace from a missing cache file");
    expect_error(locus_genopts_set_intervene(o, "conv_out=zero", NULL, 0, "1,2", NULL), LOCUS_E_ARG, "heads", "heads without their number");
    locus_genopts_set_intervene(o, NULL, NULL, 0, NULL, NULL);
    /* the same bits with the scalar kernels (and back) */
    CHECK(!locus_set_isa("scalar") && !strcmp(locus_get_isa(), "scalar"), "set_isa scalar: %s", locus_last_error());
    locus_result *rsc = gen(m, o);
    CHECK(!locus_set_isa(NULL) && (strcmp(locus_get_isa(), "scalar") || !locus_kernels_for(LOCUS_ISA_AVX2) || getenv("LOCUS_ISA")),
          "set_isa(NULL) goes back to the best table (%s)", locus_get_isa());
    CHECK(rsc && same_image(rsc, r0), "scalar kernels give the same image");
    locus_genopts_add_cache(o, "mid_block");
    locus_result *c1 = gen(m, o);
    locus_set_isa("scalar");
    locus_result *c2 = gen(m, o);
    locus_set_isa(NULL);
    CHECK(c1 && c2 && locus_result_count(c1) == 4 && same_tensors(c1, c2), "cached mid_block: same bits on scalar and %s", locus_get_isa());
    locus_result_free(c1); locus_result_free(c2);
    locus_result_free(rsc); locus_result_free(ri); locus_result_free(rz); locus_result_free(rs); locus_result_free(rp);
    locus_result_free(re); locus_result_free(r1); locus_result_free(r0);
    locus_genopts_free(o);
}

/* SDXL: size conditioning per call (explicit defaults = none; restored afterwards); LoRA and size conditioning
 * refused where they do not apply */
static void test_sdxl(locus_model *sd15) {
    locus_genopts *o = locus_genopts_new();
    locus_result *bad = NULL;
    int orig[2] = {64, 128}, crop[2] = {0, 0}, target[2] = {32, 64};
    locus_genopts_set_prompt(o, HELLO);
    locus_genopts_set_steps(o, 2);
    locus_genopts_set_size_cond(o, orig, NULL, NULL);
    expect_error(locus_model_generate(sd15, o, &bad), LOCUS_E_ARG, "size conditioning", "size conditioning on an SD1.5 model");
    expect_error(locus_model_add_lora(sd15, "/nonexistent/lora.safetensors", 1), 0, "/nonexistent/lora.safetensors", "missing LoRA file");
    int neg[2] = {-1, 5};
    expect_error(locus_genopts_set_size_cond(o, neg, NULL, NULL), LOCUS_E_ARG, "original size", "negative original size");
    locus_model *m = NULL;
    if (locus_model_open("tests/golden/pipelines/sdxl-tiny", &m)) { CHECK(0, "open sdxl-tiny: %s", locus_last_error()); locus_genopts_free(o); return; }
    locus_genopts_set_size(o, 64, 32);
    locus_genopts_set_guidance(o, 5);
    locus_genopts_set_size_cond(o, NULL, NULL, NULL);
    locus_result *r0 = gen(m, o);
    locus_genopts_set_size_cond(o, (int[2]){32, 64}, crop, target);
    locus_result *r1 = gen(m, o);
    locus_genopts_set_size_cond(o, orig, NULL, NULL);
    locus_result *r2 = gen(m, o);
    locus_genopts_set_size_cond(o, NULL, NULL, NULL);
    locus_result *r3 = gen(m, o);
    CHECK(r0 && r1 && r2 && r3 && same_image(r0, r1) && !same_image(r0, r2) && same_image(r0, r3),
          "sdxl: explicit default size conditioning = none, another original size changes the image, and lasts one call");
    locus_result_free(r0); locus_result_free(r1); locus_result_free(r2); locus_result_free(r3);
    locus_model_close(m);
    locus_genopts_free(o);
}

/* SD3: MM-DiT text-K/V patching replays prompt B's run: diffusers' kvpatch image exactly */
static void test_sd3(void) {
    locus_model *m = NULL;
    if (locus_model_open(SD3, &m)) { CHECK(0, "open sd3-tiny: %s", locus_last_error()); return; }
    locus_model_info in;
    locus_model_get_info(m, &in, sizeof in);
    CHECK(!strcmp(in.family, "sd3") && in.pooled_dim == 40 && in.ctx_dim == 44, "sd3 info: %s pooled %d ctx %d", in.family, in.pooled_dim, in.ctx_dim);
    locus_result *e = NULL;
    const int64_t *s;
    CHECK(!locus_model_encode(m, HELLO, 32, &e) && locus_result_find(e, "cond_pooled") == 1 && !locus_result_tensor(e, 0, NULL, NULL, &s, NULL) &&
              s[1] == 109,
          "sd3 encode: cond [1,109,44] and cond_pooled");
    locus_result_free(e);
    locus_genopts *o = locus_genopts_new();
    locus_genopts_set_prompt(o, HELLO);
    locus_genopts_set_seed(o, 42);
    locus_genopts_set_steps(o, 4);
    locus_genopts_set_guidance(o, 7);
    locus_genopts_set_max_sequence_length(o, 32);
    locus_genopts_set_patch(o, WORLD, "transformer_blocks.1", 0, 0);
    locus_result *r = gen(m, o);
    CHECK(r && same_as_golden(r, SD3 ".golden/golden_pipeline.safetensors", "kvpatch.image_uint8"), "sd3 K/V patching equals diffusers' kvpatch image");
    /* embeddings with pooled text: the same image as from the strings */
    locus_genopts_set_patch(o, NULL, NULL, 0, 0);
    locus_result *rs = gen(m, o);
    locus_genopts *oe = embeds_opts(m, HELLO, 32, 42, 4);
    locus_genopts_set_guidance(oe, 7);
    locus_result *re = gen(m, oe);
    CHECK(rs && re && same_image(rs, re) && !same_image(rs, r), "sd3 from encoded embeddings (with pooled) = from the prompt");
    locus_result_free(rs);
    locus_result_free(re);
    locus_genopts_free(oe);
    locus_result *bad = NULL;
    locus_genopts_set_patch(o, WORLD, "transformer_blocks.99", 0, 0);
    expect_error(locus_model_generate(m, o, &bad), LOCUS_E_ARG, "transformer_blocks.99", "sd3 bad layer name");
    locus_result_free(r);
    locus_genopts_free(o);
    locus_model_close(m);
}

int main(void) {
    CHECK(!strcmp(locus_version(), "0.1.0"), "version %s", locus_version());
    test_bad_open();
    locus_model *m = NULL;
    if (locus_model_open(SD15, &m)) {
        CHECK(0, "open %s: %s", SD15, locus_last_error());
        return t_finish("test_capi");
    }
    test_info(m);
    test_generate_sd15(m);
    test_sdxl(m);
    locus_model_close(m);
    test_sd3();
    return t_finish("test_capi");
}
