/* test_train.c — the file formats of `locus train` (experiments/train_common.c): config.json files written
 * exactly as diffusers / transformers write them (byte-compared with the files diffusers 0.31.0 wrote for
 * tests/golden/pipelines/sd15-tiny), user keys and types checked, float formatting as Python's repr, the
 * torch-style initialisation of a random model, and the loss line chart.  The training itself (same bits
 * across ISAs / threads, resume, SIGKILL) is tested end to end by tests/train_test.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../core/half.h"
#include "../experiments/draw.h"
#include "../experiments/train_model.h"
#include "../models/pipeline.h"
#include "../models/vae.h"
#include "testutil.h"

#define GP "tests/golden/pipelines/sd15-tiny/"

static char *slurp(const char *path) {
    char *d;
    size_t n;
    return locus_read_file(path, &d, &n) ? NULL : d;
}

/* the config text of kind with user config user (NULL: defaults) and override over equals file golden */
static void check_same(int kind, const char *user, const char *over, const char *golden, const char *what) {
    char *text = NULL, *want = slurp(golden);
    locus_status st = locus_train_config_text(kind, user, over, &text);
    CHECK(!st && want && !strcmp(text, want), "%s: config text differs from %s (%s)", what, golden, st ? locus_errmsg() : "");
    free(text);
    free(want);
}

static const char *write_tmp(const char *name, const char *text) {
    static char path[4][256];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 256, "/tmp/test_train_%d_%s", (int)getpid(), name);
    FILE *f = fopen(p, "w");
    if (f) { fputs(text, f); fclose(f); }
    return p;
}

static void test_configs(void) {
    /* the golden files given as user configs come back byte for byte; defaults alone too (the templates) */
    check_same(LOCUS_CFG_VAE, GP "vae/config.json", NULL, GP "vae/config.json", "vae");
    check_same(LOCUS_CFG_UNET, GP "unet/config.json", NULL, GP "unet/config.json", "unet");
    check_same(LOCUS_CFG_CLIP_TEXT, GP "text_encoder/config.json", NULL, GP "text_encoder/config.json", "text_encoder");
    check_same(LOCUS_CFG_DDIM, GP "scheduler/scheduler_config.json", NULL, GP "scheduler/scheduler_config.json", "scheduler");
    check_same(LOCUS_CFG_VAE, NULL, NULL, GP "vae/config.json", "vae defaults");
    check_same(LOCUS_CFG_UNET, NULL, NULL, GP "unet/config.json", "unet defaults");
    /* a partial user config: overridden values, float keys keep a decimal point, ints stay ints */
    const char *u = write_tmp("u.json", "{\"block_out_channels\": [32, 64], \"norm_eps\": 1e-6, \"resnet_out_scale_factor\": 2,"
                                        " \"only_cross_attention\": true, \"attention_head_dim\": [4, 8]}");
    char *text = NULL;
    locus_status st = locus_train_config_text(LOCUS_CFG_UNET, u, NULL, &text);
    CHECK(!st, "partial unet config: %s", st ? locus_errmsg() : "");
    if (!st) {
        CHECK(strstr(text, "\"block_out_channels\": [\n    32,\n    64\n  ],") != NULL, "list layout");
        CHECK(strstr(text, "\"norm_eps\": 1e-06,") != NULL, "1e-6 written as Python writes it");
        CHECK(strstr(text, "\"resnet_out_scale_factor\": 2.0,") != NULL, "a float key given as 2 is written 2.0");
        CHECK(strstr(text, "\"only_cross_attention\": true,") != NULL, "bool");
        CHECK(strstr(text, "\"attention_head_dim\": [\n    4,\n    8\n  ],") != NULL, "int where the template has an int");
        CHECK(strstr(text, "\"mid_block_scale_factor\": 1,") != NULL, "template default kept as diffusers writes it");
    }
    free(text);
    text = NULL;
    st = locus_train_config_text(LOCUS_CFG_VAE, NULL, "{\"scaling_factor\": 0.123456789}", &text);
    CHECK(!st && strstr(text, "\"scaling_factor\": 0.123456789,"), "computed override");
    free(text);
    text = NULL;
    st = locus_train_config_text(LOCUS_CFG_VAE, NULL, "{\"scaling_factor\": 3}", &text);
    CHECK(!st && strstr(text, "\"scaling_factor\": 3.0,"), "integral float override gets .0");
    free(text);
    /* errors name the key */
    const char *bad[][2] = {
        {"{\"frobnicate\": 1}", "unknown key 'frobnicate'"},
        {"{\"layers_per_block\": 1.5}", "'layers_per_block' has the wrong type"},
        {"{\"block_out_channels\": [\"a\"]}", "'block_out_channels' has the wrong type"},
        {"{\"_class_name\": \"UNet2DModel\"}", "_class_name must be"},
        {"[1, 2]", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        text = NULL;
        st = locus_train_config_text(LOCUS_CFG_VAE, write_tmp("bad.json", bad[i][0]), NULL, &text);
        CHECK(st && strstr(locus_errmsg(), bad[i][1]), "config %s: expected an error with '%s', got '%s'", bad[i][0], bad[i][1], st ? locus_errmsg() : "OK");
        free(text);
    }
}

static void test_init(void) {
    locus_vae v;
    locus_status st = locus_vae_load_random(&v, GP "vae/config.json", 5);
    CHECK(!st, "random vae: %s", st ? locus_errmsg() : "");
    if (st) return;
    CHECK(v.enc.present, "random mode builds the encoder too");
    locus_train_init_torch(&v.L, 5);
    int norms = 0, biases = 0, ok_n = 1, ok_b = 1;
    for (size_t i = 0; i < v.L.nrec; i++) {
        const locus_param_rec *r = &v.L.params[i];
        size_t nl = strlen(r->name);
        if (r->ndim != 1) continue;
        char wn[600];
        snprintf(wn, sizeof wn, "%.*s.weight", (int)(nl - 5), r->name);
        const locus_param_rec *w = nl > 5 && !strcmp(r->name + nl - 5, ".bias") ? locus_loader_find_param(&v.L, wn) : NULL;
        if (w && w->ndim >= 2) { /* a conv / linear bias: U(-b, b), b = 1/sqrt(fan_in), not constant */
            float b = 1.0f / sqrtf((float)(w->numel / (size_t)w->shape[0]));
            int distinct = r->numel < 2;
            for (size_t k = 0; k < r->numel; k++) {
                if (fabsf(r->data[k]) > b) ok_b = 0;
                if (k && r->data[k] != r->data[0]) distinct = 1;
            }
            if (!distinct) ok_b = 0;
            biases++;
        } else { /* norm scale 1, shift 0 */
            float want = nl > 7 && !strcmp(r->name + nl - 7, ".weight") ? 1.0f : 0.0f;
            for (size_t k = 0; k < r->numel; k++) if (r->data[k] != want) ok_n = 0;
            norms++;
        }
    }
    CHECK(norms > 10 && ok_n, "norm parameters initialised to 1 / 0 (%d)", norms);
    CHECK(biases > 10 && ok_b, "layer biases within 1/sqrt(fan_in) (%d)", biases);
    locus_vae_free(&v);
}

/* fp32 -> binary16 rounding (--fp16 weight files): every half round-trips, every midpoint between two
 * neighbours goes to the even one and a float ulp either side to the nearer one, overflow, underflow. */
static void test_f16(void) {
    int bad_rt = 0, bad_mid = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) continue; /* NaN */
        if (locus_train_f16(locus_f16_to_f32((uint16_t)h)) != h) bad_rt++;
        uint32_t mag = h & 0x7fffu;
        if (mag >= 0x7bffu) continue; /* the last finite value has no finite neighbour above */
        float a = locus_f16_to_f32((uint16_t)h), b = locus_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)a + (double)b) / 2); /* exact: halves have 11 significant bits */
        uint16_t even = (uint16_t)((h & 1) ? h + 1 : h);
        if (locus_train_f16(mid) != even) bad_mid++;
        if (locus_train_f16(nextafterf(mid, a)) != h || locus_train_f16(nextafterf(mid, b)) != h + 1) bad_mid++;
    }
    CHECK(bad_rt == 0, "f16: %d halves do not round-trip", bad_rt);
    CHECK(bad_mid == 0, "f16: %d midpoints rounded wrongly", bad_mid);
    CHECK(locus_train_f16(65519.996f) == 0x7bff && locus_train_f16(65520.0f) == 0x7c00 && locus_train_f16(1e9f) == 0x7c00, "f16 overflow");
    CHECK(locus_train_f16(-INFINITY) == 0xfc00 && (locus_train_f16(NAN) & 0x7e00) == 0x7e00, "f16 inf / nan");
    CHECK(locus_train_f16(1e-9f) == 0 && locus_train_f16(ldexpf(1.0f, -25)) == 0 && locus_train_f16(ldexpf(1.0001f, -25)) == 1 &&
              locus_train_f16(-ldexpf(3.0f, -25)) == 0x8002, "f16 underflow / subnormal ties");
    CHECK(locus_train_f16(1.0f) == 0x3c00 && locus_train_f16(0.1f) == 0x2e66 && locus_train_f16(-2.0f) == 0xc000, "f16 known values");
}

/* the SD3 pieces: the three templates are the files diffusers / transformers wrote for sd3-tiny, and the
 * sin-cos position table equals the pos_embed.pos_embed buffer diffusers saved (numpy's float64 sin/cos
 * rounded to float32: bit for bit) */
#define G3 "tests/golden/pipelines/sd3-tiny/"
static void test_sd3(void) {
    check_same(LOCUS_CFG_SD3, NULL, NULL, G3 "transformer/config.json", "sd3 transformer defaults");
    check_same(LOCUS_CFG_SD3, G3 "transformer/config.json", NULL, G3 "transformer/config.json", "sd3 transformer");
    check_same(LOCUS_CFG_FLOW, NULL, NULL, G3 "scheduler/scheduler_config.json", "flow-match scheduler defaults");
    check_same(LOCUS_CFG_CLIP_PROJ, G3 "text_encoder/config.json", NULL, G3 "text_encoder/config.json", "CLIPTextModelWithProjection");
    check_same(LOCUS_CFG_CLIP_PROJ, G3 "text_encoder_2/config.json", NULL, G3 "text_encoder_2/config.json", "CLIPTextModelWithProjection 2");
    locus_st_file f;
    locus_status st = locus_st_open(&f, G3 "transformer/diffusion_pytorch_model.safetensors");
    CHECK(!st, "open sd3-tiny transformer: %s", st ? locus_errmsg() : "");
    if (st) return;
    const locus_st_tensor *t = locus_st_find(&f, "pos_embed.pos_embed");
    const int D = 32, G = 16, base = 8 / 2; /* inner dim 4 x 8, pos_embed_max_size 16, sample_size 8, patch 2 */
    float *want = malloc((size_t)G * G * D * 4), *got = malloc((size_t)G * G * D * 4);
    CHECK(t && locus_st_numel(t) == (int64_t)G * G * D && want && got && !locus_st_to_f32(t, want, (int64_t)G * G * D), "pos_embed.pos_embed [1,256,32]");
    if (t && want && got) {
        locus_train_sincos_pos_embed(got, D, G, base);
        int same = 0;
        double md = 0;
        for (int i = 0; i < G * G * D; i++) {
            same += memcmp(&got[i], &want[i], 4) == 0;
            md = fmax(md, fabs((double)got[i] - want[i]));
        }
        CHECK(same == G * G * D, "sin-cos position table: %d of %d values bit-equal to diffusers' (max |diff| %.3g)", same, G * G * D, md);
    }
    free(want);
    free(got);
    locus_st_close(&f);
}

/* An SD3 folder without T5 (what `train pipeline --family sd3` writes): diffusers' _get_t5_prompt_embeds then
 * returns tokenizer_max_length (77) zero rows whatever max_sequence_length is, so a prompt is 77 CLIP rows + 77
 * zero rows; the CLIP rows equal the T5 folder's */
static void test_sd3_no_t5(void) {
    char d[256], cmd[700];
    snprintf(d, sizeof d, "/tmp/test_train_%d_sd3", (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && rm -rf %s/text_encoder_3 %s/tokenizer_3", d, G3, d, d, d);
    CHECK(system(cmd) == 0, "copy sd3-tiny without T5");
    locus_pipeline a, b;
    int oa = !locus_pipeline_open(&a, G3), ob = !locus_pipeline_open(&b, d);
    CHECK(oa && ob && !b.has_t5, "open sd3-tiny with and without T5 (%s)", locus_errmsg());
    if (oa && ob) {
        int J = a.den.ctx_dim, Ta = 0, Tb = 0;
        CHECK(locus_pipeline_text_tokens(&a, 256) == 333 && locus_pipeline_text_tokens(&b, 256) == 154 && locus_pipeline_text_tokens(&b, 8) == 154,
              "text tokens: 77 + 256 with T5, 77 + 77 without (any max_sequence_length)");
        float *ea = calloc((size_t)333 * J, 4), *eb = calloc((size_t)333 * J, 4), pa[64], pb[64];
        locus_status st = locus_pipeline_encode(&a, "A red sign that says \"OPEN\".", 256, ea, pa, &Ta);
        if (!st) st = locus_pipeline_encode(&b, "A red sign that says \"OPEN\".", 256, eb, pb, &Tb);
        CHECK(!st && Ta == 333 && Tb == 154, "encode: T %d and %d (%s)", Ta, Tb, st ? locus_errmsg() : "");
        if (!st) {
            int clip_same = !memcmp(ea, eb, (size_t)77 * J * 4) && !memcmp(pa, pb, (size_t)a.den.pooled_dim * 4), zeros = 1;
            for (size_t k = (size_t)77 * J; k < (size_t)154 * J; k++) zeros &= eb[k] == 0.0f;
            CHECK(clip_same && zeros, "without T5: the CLIP rows and pooled equal the T5 folder's, rows 77-153 zero");
        }
        free(ea);
        free(eb);
    }
    if (oa) locus_pipeline_close(&a);
    if (ob) locus_pipeline_close(&b);
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", d);
}

static void test_chart(void) {
    float y[300];
    for (int i = 0; i < 300; i++) y[i] = 1.0f / (1.0f + 0.05f * (float)i) + 0.01f * (float)(i % 7);
    y[17] = NAN; /* skipped, not fatal */
    char p[256];
    snprintf(p, sizeof p, "/tmp/test_train_%d_chart.png", (int)getpid());
    locus_status st = locus_line_chart(p, "loss", y, 300, 1);
    CHECK(!st && access(p, F_OK) == 0, "line chart written (%s)", st ? locus_errmsg() : "");
    unlink(p);
    st = locus_line_chart(p, "loss", y, 1, 0);
    CHECK(!st, "one-point chart");
    unlink(p);
}

int main(void) {
    test_configs();
    test_init();
    test_f16();
    test_sd3();
    test_sd3_no_t5();
    test_chart();
    char p[256];
    snprintf(p, sizeof p, "/tmp/test_train_%d_u.json", (int)getpid());
    unlink(p);
    snprintf(p, sizeof p, "/tmp/test_train_%d_bad.json", (int)getpid());
    unlink(p);
    return t_finish("test_train");
}
