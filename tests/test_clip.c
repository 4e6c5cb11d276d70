/* test_clip.c — CLIP-T against tests/golden/clip (a tiny OpenAI CLIP run by openai/CLIP's own model.py,
 * saved as a Hugging Face CLIP folder): PIL-exact preprocessing (pixel_values within 1e-6 for upscaling,
 * downscaling and both crop directions; the resize alone byte-identical to Pillow on 32 more seeded cases,
 * pil_resize.json), image and text embeddings, token ids, cosines and scores within 1e-4; the same bits for
 * every ISA table x 1/2/3 threads in-process; the crop rounding and size rules; truncation of long prompts;
 * vision hook points; bad input refused.  `--check-dump DUMP GOLDEN` checks a `locus clip-score --dump` file
 * (used by run_tests.sh); `--write-rgba PNG` writes an image clip-score must refuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../core/json.h"
#include "../core/png.h"
#include "../core/resample.h"
#include "../models/clip.h"
#include "../simd/kernels.h"
#include "parity.h"
#include "testutil.h"

#define NIMG 3
#define NPROMPT 2

static const char *prompts[NPROMPT] = {"A sign that says \"HELLO\".", "a photo of a red fox in the snow"};

typedef struct {
    float *pix[NIMG], *img[NIMG], *txt[NPROMPT];
    int64_t *ids[NPROMPT];
    float cos[NIMG * NPROMPT], score[NIMG * NPROMPT];
} outputs;

typedef struct {
    uint8_t *rgb[NIMG];
    int w[NIMG], h[NIMG];
} images;

static void outputs_alloc(outputs *o, const locus_clip *c) {
    size_t np = (size_t)3 * c->image_size * c->image_size;
    for (int i = 0; i < NIMG; i++) { o->pix[i] = calloc(np, 4); o->img[i] = calloc(c->proj_dim, 4); }
    for (int j = 0; j < NPROMPT; j++) { o->txt[j] = calloc(c->proj_dim, 4); o->ids[j] = calloc(c->context, 8); }
}

static void outputs_free(outputs *o) {
    for (int i = 0; i < NIMG; i++) { free(o->pix[i]); free(o->img[i]); }
    for (int j = 0; j < NPROMPT; j++) { free(o->txt[j]); free(o->ids[j]); }
}

static int compute(const locus_clip *c, const images *im, outputs *o) {
    for (int i = 0; i < NIMG; i++)
        if (locus_clip_embed_image(c, im->rgb[i], im->w[i], im->h[i], o->img[i], o->pix[i])) return -1;
    for (int j = 0; j < NPROMPT; j++)
        if (locus_clip_embed_text(c, prompts[j], o->txt[j], o->ids[j])) return -1;
    for (int i = 0; i < NIMG; i++)
        for (int j = 0; j < NPROMPT; j++) {
            o->cos[i * NPROMPT + j] = locus_clip_cosine(o->img[i], o->txt[j], c->proj_dim);
            o->score[i * NPROMPT + j] = locus_clip_t(o->cos[i * NPROMPT + j]);
        }
    return 0;
}

static uint64_t hash_outputs(const locus_clip *c, const outputs *o) {
    uint64_t h = LOCUS_FNV_INIT;
    size_t np = (size_t)3 * c->image_size * c->image_size;
    for (int i = 0; i < NIMG; i++) { h = locus_fnv1a(h, o->pix[i], np * 4); h = locus_fnv1a(h, o->img[i], (size_t)c->proj_dim * 4); }
    for (int j = 0; j < NPROMPT; j++) { h = locus_fnv1a(h, o->txt[j], (size_t)c->proj_dim * 4); h = locus_fnv1a(h, o->ids[j], (size_t)c->context * 8); }
    h = locus_fnv1a(h, o->cos, sizeof o->cos);
    return locus_fnv1a(h, o->score, sizeof o->score);
}

/* max |a - golden| for tensor `name` (n floats); -1 when missing or of another size */
static double gdiff(const locus_st_file *g, const char *name, const float *a, int64_t n) {
    int64_t gn = 0;
    float *ref = golden_f32(g, name, &gn);
    if (!ref || gn != n) { free(ref); return -1; }
    double d = t_maxdiff(a, ref, (size_t)n, NULL);
    free(ref);
    return d;
}

typedef struct { int calls, shape_ok, zero; } hook_log;

/* counts vision hook points; with `zero`, overwrites the block outputs encoder.layers.<i> */
static void count_hook(void *ctx, const locus_hook_at *at, float *x, int ndim, const int64_t *shape) {
    hook_log *h = ctx;
    h->calls++;
    int post = !strcmp(at->name, "post_layernorm");
    h->shape_ok += post ? ndim == 2 && shape[0] == 1 && shape[1] == 128 : ndim == 3 && shape[0] == 1 && shape[1] == 17 && shape[2] == 128;
    if (h->zero && !strncmp(at->name, "encoder.layers.", 15) && !strchr(at->name + 15, '.')) memset(x, 0, sizeof(float) * 17 * 128);
}

static void test_rules(void) {
    /* torchvision CenterCrop: int(round((size - crop) / 2.0)), Python's round (ties to even) */
    static const int cases[][3] = {{44, 32, 6}, {33, 32, 0}, {35, 32, 2}, {37, 32, 2}, {39, 32, 4}, {41, 32, 4}, {32, 32, 0}, {43, 32, 6}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(locus_center_crop_offset(cases[i][0], cases[i][1]) == cases[i][2], "crop offset (%d - %d) / 2 -> %d, want %d", cases[i][0],
              cases[i][1], locus_center_crop_offset(cases[i][0], cases[i][1]), cases[i][2]);
    /* torchvision Resize(n): shorter side n, longer int(n * long / short) */
    int w, h;
    locus_resize_shorter_side(56, 40, 32, &w, &h);
    CHECK(w == 44 && h == 32, "resize 56x40 -> %dx%d, want 44x32", w, h);
    locus_resize_shorter_side(48, 64, 32, &w, &h);
    CHECK(w == 32 && h == 42, "resize 48x64 -> %dx%d, want 32x42", w, h);
    locus_resize_shorter_side(512, 512, 224, &w, &h);
    CHECK(w == 224 && h == 224, "resize 512x512 -> %dx%d", w, h);
    locus_resize_shorter_side(300, 1000, 224, &w, &h);
    CHECK(w == 224 && h == 746, "resize 300x1000 -> %dx%d, want 224x746", w, h);
    /* an unchanged size is a copy; a uniform image stays uniform (weights sum to one) */
    uint8_t src[6 * 5 * 3], dst[9 * 4 * 3];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 37 + 11);
    uint8_t same[sizeof src];
    CHECK(locus_resize_bicubic_u8(src, 6, 5, 3, same, 6, 5) == LOCUS_OK && !memcmp(src, same, sizeof src), "same-size resize is a copy");
    memset(src, 200, sizeof src);
    int uniform = locus_resize_bicubic_u8(src, 6, 5, 3, dst, 9, 4) == LOCUS_OK;
    for (size_t i = 0; i < sizeof dst; i++) uniform &= dst[i] == 200;
    CHECK(uniform, "uniform image stays uniform through the bicubic resize");
    CHECK(locus_resize_bicubic_u8(src, 0, 5, 3, dst, 9, 4) == LOCUS_E_ARG, "resize of an empty image refused");
    CHECK(locus_clip_t(-0.25f) == 0.0f && locus_clip_t(0.5f) == 1.25f && locus_clip_t(0.0f) == 0.0f, "CLIP-T = 2.5 * max(cos, 0)");
}

/* core/resample.c against Pillow 9.4 (tests/golden/clip/pil_resize.json, made by make_pil_resize.py there):
 * the same seeded images, the FNV-1a 64 hash of the resized bytes must equal Pillow's */
static void test_pil_resize(const char *G) {
    char p[512];
    snprintf(p, sizeof p, "%s/clip/pil_resize.json", G);
    locus_json_doc doc;
    if (locus_json_parse_file(&doc, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    const locus_json *cases = locus_json_get(doc.root, "cases");
    int n = 0, same = 0;
    for (size_t k = 0; cases && k < cases->len; k++) {
        const locus_json *cs = cases->kids[k];
        int C = (int)locus_json_int(cs, "channels", 0, NULL), W = (int)locus_json_int(cs, "w", 0, NULL), H = (int)locus_json_int(cs, "h", 0, NULL);
        int OW = (int)locus_json_int(cs, "ow", 0, NULL), OH = (int)locus_json_int(cs, "oh", 0, NULL);
        uint32_t st = (uint32_t)locus_json_int(cs, "seed", 0, NULL);
        int lcg = !strcmp(locus_json_str(cs, "pattern", "", NULL), "lcg");
        size_t nin = (size_t)W * H * C;
        uint8_t *in = malloc(nin), *out = malloc((size_t)OW * OH * C);
        for (size_t i = 0; i < nin; i++) {
            if (lcg) { st = st * 1103515245u + 12345u; in[i] = (uint8_t)(st >> 24); }
            else in[i] = ((i / C % W) / 3 + (i / C / W) / 2) % 2 ? 255 : 0;
        }
        char hex[17];
        int ok = locus_resize_bicubic_u8(in, W, H, C, out, OW, OH) == LOCUS_OK;
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)locus_fnv1a(LOCUS_FNV_INIT, out, (size_t)OW * OH * C));
        ok = ok && !strcmp(hex, locus_json_str(cs, "fnv1a64", "", NULL));
        CHECK(ok, "PIL resize case %zu (%s %dx%d -> %dx%d, %s) differs from Pillow", k, C == 3 ? "RGB" : "L", W, H, OW, OH, lcg ? "noise" : "checker");
        n++;
        same += ok;
        free(in); free(out);
    }
    printf("PIL bicubic resize: %d of %d cases byte-identical to Pillow %s\n", same, n, locus_json_str(doc.root, "pillow", "?", NULL));
    CHECK(n >= 32, "Pillow resize cases read (%d)", n);
    locus_json_free(&doc);
}

static void test_golden(const char *G) {
    char p[512];
    locus_clip c;
    snprintf(p, sizeof p, "%s/clip/model", G);
    if (locus_clip_open(&c, p)) { CHECK(0, "open %s: %s", p, locus_errmsg()); return; }
    CHECK(c.image_size == 32 && c.proj_dim == 16 && c.context == 77 && c.vision.ntok == 17 && c.vision.nlayers == 2 && c.text.nlayers == 2,
          "tiny CLIP geometry (image %d, projection %d, context %d, vision tokens %d)", c.image_size, c.proj_dim, c.context, c.vision.ntok);
    locus_st_file g;
    snprintf(p, sizeof p, "%s/clip/golden_clip.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); locus_clip_close(&c); return; }
    images im = {0};
    for (int i = 0; i < NIMG; i++) {
        snprintf(p, sizeof p, "%s/clip/img%d.png", G, i);
        CHECK(locus_png_read_rgb(p, &im.rgb[i], &im.w[i], &im.h[i]) == LOCUS_OK, "read %s: %s", p, locus_errmsg());
    }
    outputs o;
    outputs_alloc(&o, &c);
    CHECK(compute(&c, &im, &o) == 0, "CLIP forward: %s", locus_errmsg());
    int np = 3 * c.image_size * c.image_size;
    char name[64];
    double worst_px = 0, worst_img = 0, worst_txt = 0;
    for (int i = 0; i < NIMG; i++) {
        snprintf(name, sizeof name, "img%d.pixel_values", i);
        double d = gdiff(&g, name, o.pix[i], np);
        CHECK(d >= 0 && d <= 1e-6, "%s (%dx%d) within 1e-6: max diff %.3g", name, im.w[i], im.h[i], d);
        if (d > worst_px || d < 0) worst_px = d;
        snprintf(name, sizeof name, "img%d.image_embeds", i);
        d = gdiff(&g, name, o.img[i], c.proj_dim);
        CHECK(d >= 0 && d <= 1e-4, "%s within 1e-4: max diff %.3g", name, d);
        if (d > worst_img || d < 0) worst_img = d;
    }
    for (int j = 0; j < NPROMPT; j++) {
        int B = 0, T = 0;
        snprintf(name, sizeof name, "prompt%d.input_ids", j);
        int64_t *ref = golden_ids(&g, name, &B, &T);
        CHECK(ref && B == 1 && T == c.context && !memcmp(ref, o.ids[j], (size_t)T * 8), "%s equal to clip.tokenize", name);
        free(ref);
        snprintf(name, sizeof name, "prompt%d.text_embeds", j);
        double d = gdiff(&g, name, o.txt[j], c.proj_dim);
        CHECK(d >= 0 && d <= 1e-4, "%s within 1e-4: max diff %.3g", name, d);
        if (d > worst_txt || d < 0) worst_txt = d;
    }
    double dc = gdiff(&g, "cos", o.cos, NIMG * NPROMPT), ds = gdiff(&g, "clip_score", o.score, NIMG * NPROMPT);
    CHECK(dc >= 0 && dc <= 1e-4, "cos within 1e-4: max diff %.3g", dc);
    CHECK(ds >= 0 && ds <= 1e-4, "clip_score within 1e-4: max diff %.3g", ds);
    int positive = 0, zero = 0;
    for (int k = 0; k < NIMG * NPROMPT; k++) { positive += o.cos[k] > 0; zero += o.score[k] == 0.0f; }
    printf("clip parity: pixel_values %.3g, image_embeds %.3g, text_embeds %.3g, cos %.3g, clip_score %.3g (%d of %d cosines > 0, %d scores clamped to 0)\n",
           worst_px, worst_img, worst_txt, dc, ds, positive, NIMG * NPROMPT, zero);
    CHECK(zero == NIMG * NPROMPT - positive, "scores of negative cosines are 0");

    /* the same bits for every kernel table x 1/2/3 threads (weights were packed for the first table) */
    uint64_t h0 = hash_outputs(&c, &o);
    const locus_kernels *orig = locus_k();
    int orig_threads = locus_threads(), runs = 0;
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++) {
            locus_set_threads(th);
            outputs o2;
            outputs_alloc(&o2, &c);
            int ok = compute(&c, &im, &o2) == 0;
            CHECK(ok && hash_outputs(&c, &o2) == h0, "CLIP outputs bits: %s threads=%d differ", locus_isa_name(), th);
            outputs_free(&o2);
            runs++;
        }
    }
    locus_kernels_force(orig->isa);
    locus_set_threads(orig_threads);
    printf("clip determinism: %d runs (ISA tables x 1/2/3 threads) bit-identical, hash %016llx\n", runs, (unsigned long long)h0);

    /* clip.tokenize(truncate=True): 77 tokens, SOT first, EOT last, no padding */
    char longp[2048] = "";
    for (int i = 0; i < 100; i++) strcat(longp, "fox ");
    int64_t ids[77];
    CHECK(locus_clip_tokenize(&c, longp, ids) == LOCUS_OK && ids[0] == 49406 && ids[76] == 49407 && ids[75] != 49407 && ids[75] != 0,
          "long prompt truncated keeping EOT last");
    CHECK(locus_clip_tokenize(&c, "", ids) == LOCUS_OK && ids[0] == 49406 && ids[1] == 49407 && ids[2] == 0, "empty prompt: SOT EOT then zeros");
    float score = -1;
    CHECK(locus_clip_score(&c, im.rgb[0], im.w[0], im.h[0], prompts[1], &score) == LOCUS_OK && score == o.score[1],
          "locus_clip_score equals the table entry (%g vs %g)", score, o.score[1]);
    CHECK(locus_clip_embed_image(&c, im.rgb[0], 0, 10, o.img[0], NULL) == LOCUS_E_ARG, "empty image refused");
    /* vision hook points: embeddings, pre_layrnorm, 3 per layer, post_layernorm; a hook that zeroes the block
     * outputs changes the embedding, and the forward without hooks is unchanged */
    hook_log hl = {0, 0};
    locus_hooks hk = locus_hooks_one(count_hook, &hl);
    float e1[16], e2[16];
    locus_clip_vision_forward(&c.vision, o.pix[0], 1, e1, NULL, &hk);
    CHECK(hl.calls == 3 + 3 * c.vision.nlayers && hl.shape_ok == hl.calls, "vision hook points: %d calls (%d with the right shape)", hl.calls, hl.shape_ok);
    hl.zero = 1;
    locus_clip_vision_forward(&c.vision, o.pix[0], 1, e2, NULL, &hk);
    CHECK(memcmp(e1, e2, sizeof e1) != 0, "a hook that overwrites encoder.layers.* changes the image embedding");
    locus_clip_vision_forward(&c.vision, o.pix[0], 1, e2, NULL, NULL);
    CHECK(!memcmp(e1, e2, sizeof e1) && !memcmp(e1, o.img[0], sizeof e1), "forward with read-only hooks = without hooks = embed_image");
    for (int i = 0; i < NIMG; i++) free(im.rgb[i]);
    outputs_free(&o);
    locus_st_close(&g);
    locus_clip_close(&c);
}

static void test_errors(const char *G) {
    locus_clip c;
    CHECK(locus_clip_open(&c, "/nonexistent/clip") != LOCUS_OK && strstr(locus_errmsg(), "/nonexistent/clip"), "missing folder named in the error");
    char p[512];
    snprintf(p, sizeof p, "%s/ldm/text_encoder", G); /* a text-only folder: no vision_config */
    CHECK(locus_clip_open(&c, p) == LOCUS_E_FORMAT && strstr(locus_errmsg(), "vision_config"), "folder without vision_config refused: %s", locus_errmsg());
}

/* --check-dump DUMP GOLDEN: a `locus clip-score --dump` file against the golden (every golden tensor present
 * with its shape; pixel_values within 1e-6, ids equal, the rest within 1e-4); prints the FNV hash of all
 * dumped tensor bytes in name order (run_tests.sh compares it across LOCUS_ISA x LOCUS_THREADS). */
static int check_dump(const char *dump, const char *golden) {
    locus_st_file d, g;
    if (locus_st_open(&d, dump)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    if (locus_st_open(&g, golden)) { fprintf(stderr, "%s\n", locus_errmsg()); locus_st_close(&d); return 1; }
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < g.count; i++) {
        const locus_st_tensor *gt = &g.tensors[i], *dt = locus_st_find(&d, gt->name);
        int64_t n = locus_st_numel(gt);
        if (!dt || dt->ndim != gt->ndim || memcmp(dt->shape, gt->shape, sizeof(int64_t) * gt->ndim) || dt->dtype != gt->dtype) {
            fprintf(stderr, "FAIL dump: %s missing or of another shape/dtype\n", gt->name);
            bad++;
            continue;
        }
        if (gt->dtype == LOCUS_I64) {
            if (dt->nbytes != gt->nbytes || memcmp(dt->data, gt->data, gt->nbytes)) { fprintf(stderr, "FAIL dump: %s differs\n", gt->name); bad++; }
            continue;
        }
        float *a = malloc(n * 4), *b = malloc(n * 4);
        locus_st_to_f32(dt, a, n);
        locus_st_to_f32(gt, b, n);
        double md = t_maxdiff(a, b, (size_t)n, NULL), tol = strstr(gt->name, "pixel_values") ? 1e-6 : 1e-4;
        if (!(md <= tol)) { fprintf(stderr, "FAIL dump: %s max diff %.3g > %.0e\n", gt->name, md, tol); bad++; }
        if (md > worst && !strstr(gt->name, "pixel_values")) worst = md;
        free(a); free(b);
    }
    uint64_t h = LOCUS_FNV_INIT;
    for (size_t i = 0; i < d.count; i++) h = locus_fnv1a(h, d.tensors[i].data, d.tensors[i].nbytes);
    printf("clip-score dump: %zu golden tensors, %d bad, worst embedding/cos/score diff %.3g, hash %016llx\n", g.count, bad, worst,
           (unsigned long long)h);
    locus_st_close(&d);
    locus_st_close(&g);
    return bad != 0;
}

int main(int argc, char **argv) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    if (argc == 4 && !strcmp(argv[1], "--check-dump")) return check_dump(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "--write-rgba")) { /* an 8x8 RGBA PNG (clip-score must refuse it) */
        uint8_t px[8 * 8 * 4];
        for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 7);
        return locus_png_write(argv[2], px, 8, 8, 4, NULL, 0) != LOCUS_OK;
    }
    test_rules();
    test_pil_resize(G);
    test_golden(G);
    test_errors(G);
    return t_finish("test_clip");
}
