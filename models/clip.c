/* clip.c — the CLIP model pair, preprocessing as openai/CLIP's clip.py, and CLIP-T (see clip.h). */
#include "clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/arena.h"
#include "../core/json.h"
#include "../core/resample.h"
#include "../simd/kernels.h"

/* openai/CLIP clip.py _transform's Normalize constants (also in every HF CLIP preprocessor_config.json) */
static const double clip_mean[3] = {0.48145466, 0.4578275, 0.40821073};
static const double clip_std[3] = {0.26862954, 0.26130258, 0.27577711};

/* An integer size from a preprocessor_config.json entry: a number, or an object with `key` (shortest_edge,
 * height) — returns -1 when absent, 0 when malformed. */
static int pre_size(const locus_json *root, const char *name, const char *key) {
    const locus_json *v = locus_json_get(root, name);
    if (!v || v->type == JSON_NULL) return -1;
    if (v->type == JSON_NUMBER) return v->is_int && v->i > 0 && v->i < 1 << 20 ? (int)v->i : 0;
    if (v->type != JSON_OBJECT) return 0;
    const locus_json *k = locus_json_get(v, key);
    if (!k && !strcmp(key, "shortest_edge")) k = locus_json_get(v, "height");
    if (!k) return -1;
    return k->type == JSON_NUMBER && k->is_int && k->i > 0 && k->i < 1 << 20 ? (int)k->i : 0;
}

/* image_mean / image_std: three numbers (std > 0) */
static int pre_triple(const locus_json *root, const char *name, float *out, int positive) {
    const locus_json *v = locus_json_get(root, name);
    if (!v || v->type == JSON_NULL) return 1;
    if (v->type != JSON_ARRAY || v->len != 3) return 0;
    for (int i = 0; i < 3; i++) {
        if (v->kids[i]->type != JSON_NUMBER || (positive && !(v->kids[i]->num > 0))) return 0;
        out[i] = (float)v->kids[i]->num;
    }
    return 1;
}

static locus_status read_preprocessor(locus_clip *c, const char *dir) {
    for (int i = 0; i < 3; i++) { c->mean[i] = (float)clip_mean[i]; c->std[i] = (float)clip_std[i]; }
    char p[4096];
    snprintf(p, sizeof p, "%s/preprocessor_config.json", dir);
    struct stat sb;
    if (stat(p, &sb) != 0) return LOCUS_OK; /* optional: the clip.py constants */
    locus_json_doc doc;
    locus_status st = locus_json_parse_file(&doc, p);
    if (st) return st;
    const locus_json *r = doc.root;
    if (r->type != JSON_OBJECT) st = locus_fail(LOCUS_E_FORMAT, "%s: not a JSON object", p);
    else if (!pre_triple(r, "image_mean", c->mean, 0) || !pre_triple(r, "image_std", c->std, 1))
        st = locus_fail(LOCUS_E_FORMAT, "%s: image_mean and image_std should be lists of 3 numbers (std > 0)", p);
    else {
        int crop = pre_size(r, "crop_size", "height"), shortest = pre_size(r, "size", "shortest_edge");
        if (!crop || !shortest) st = locus_fail(LOCUS_E_FORMAT, "%s: malformed crop_size or size", p);
        else if ((crop > 0 && crop != c->image_size) || (shortest > 0 && shortest != c->image_size))
            st = locus_fail(LOCUS_E_FORMAT, "%s: crop_size %d / size %d disagree with the vision tower's image_size %d", p, crop, shortest,
                            c->image_size);
    }
    locus_json_free(&doc);
    return st;
}

locus_status locus_clip_open(locus_clip *c, const char *dir) {
    memset(c, 0, sizeof *c);
    locus_status st = locus_clip_vision_load(&c->vision, dir);
    if (st) return st;
    if ((st = locus_textenc_load(&c->text, dir))) { locus_clip_vision_free(&c->vision); return st; }
    c->image_size = c->vision.image_size;
    c->context = c->text.maxpos;
    c->proj_dim = c->vision.proj_dim;
    if (c->text.kind != LOCUS_TEXT_CLIP || !(c->text.proj.w || c->text.proj.wp))
        st = locus_fail(LOCUS_E_FORMAT, "%s: no CLIP text tower with text_projection", dir);
    else if (c->text.proj_dim != c->vision.proj_dim)
        st = locus_fail(LOCUS_E_SHAPE, "%s: text projection %d and visual projection %d differ", dir, c->text.proj_dim, c->vision.proj_dim);
    else if (c->context < 2)
        st = locus_fail(LOCUS_E_FORMAT, "%s: text context of %d tokens", dir, c->context);
    if (!st) st = read_preprocessor(c, dir);
    if (!st) st = locus_clip_tok_load(&c->tok, dir);
    if (st) locus_clip_close(c);
    return st;
}

void locus_clip_close(locus_clip *c) {
    locus_clip_vision_free(&c->vision);
    locus_textenc_free(&c->text); /* both frees are safe on closed or zeroed towers */
    locus_clip_tok_free(c->tok);
    c->tok = NULL;
}

locus_status locus_clip_preprocess(const locus_clip *c, const uint8_t *rgb, int W, int H, float *pixels) {
    int N = c->image_size;
    if (!rgb || W <= 0 || H <= 0 || W > 1 << 16 || H > 1 << 16)
        return locus_fail(LOCUS_E_ARG, "CLIP preprocessing: bad image size %dx%d", W, H);
    int RW, RH;
    locus_resize_shorter_side(W, H, N, &RW, &RH);
    uint8_t *r = malloc((size_t)RW * RH * 3); /* [RH,RW,3] resized */
    if (!r) return locus_fail(LOCUS_E_NOMEM, "CLIP preprocessing: out of memory (%dx%d)", RW, RH);
    locus_status st = locus_resize_bicubic_u8(rgb, W, H, 3, r, RW, RH);
    if (st) { free(r); return st; }
    int top = locus_center_crop_offset(RH, N), left = locus_center_crop_offset(RW, N);
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < N; y++)
            for (int x = 0; x < N; x++) {
                float v = (float)r[((size_t)(top + y) * RW + left + x) * 3 + ch] / 255.0f; /* ToTensor */
                pixels[((size_t)ch * N + y) * N + x] = (v - c->mean[ch]) / c->std[ch];     /* Normalize */
            }
    free(r);
    return LOCUS_OK;
}

locus_status locus_clip_embed_image(const locus_clip *c, const uint8_t *rgb, int W, int H, float *embeds, float *pixels) {
    size_t n = (size_t)3 * c->image_size * c->image_size;
    float *px = locus_alloc(n * sizeof(float)); /* [1,3,N,N] */
    locus_status st = locus_clip_preprocess(c, rgb, W, H, px);
    if (!st) {
        locus_clip_vision_forward(&c->vision, px, 1, embeds, NULL, NULL);
        if (pixels) memcpy(pixels, px, n * sizeof(float));
    }
    locus_free(px);
    return st;
}

locus_status locus_clip_tokenize(const locus_clip *c, const char *prompt, int64_t *ids) {
    if (!prompt) return locus_fail(LOCUS_E_ARG, "CLIP: no prompt");
    int cap = 4 * (int)strlen(prompt) + 8, n = 0;
    int64_t *all = malloc(sizeof(int64_t) * (size_t)cap); /* [SOT] + BPE + [EOT], untruncated */
    if (!all) return locus_fail(LOCUS_E_NOMEM, "CLIP: out of memory tokenizing");
    locus_status st = locus_clip_tok_encode(c->tok, prompt, all, cap, &n);
    if (!st) {
        int T = c->context;
        for (int i = 0; i < T; i++) ids[i] = i < n ? all[i] : 0; /* clip.tokenize pads with 0 */
        if (n > T) ids[T - 1] = all[n - 1];                      /* truncate=True: the last kept token is EOT */
    }
    free(all);
    return st;
}

locus_status locus_clip_embed_text(const locus_clip *c, const char *prompt, float *embeds, int64_t *ids) {
    int64_t *tk = malloc(sizeof(int64_t) * (size_t)c->context); /* [1,context] */
    if (!tk) return locus_fail(LOCUS_E_NOMEM, "CLIP: out of memory");
    locus_status st = locus_clip_tokenize(c, prompt, tk);
    if (!st) st = locus_textenc_forward(&c->text, tk, 1, c->context, NULL, -1, NULL, NULL, embeds, NULL);
    if (!st && ids) memcpy(ids, tk, sizeof(int64_t) * (size_t)c->context);
    free(tk);
    return st;
}

float locus_clip_cosine(const float *a, const float *b, int n) {
    const locus_row_kernels *rk = locus_k()->row;
    float na = sqrtf(rk->rdot(a, a, (size_t)n)), nb = sqrtf(rk->rdot(b, b, (size_t)n));
    if (!(na > 0) || !(nb > 0)) return 0.0f; /* a zero embedding matches nothing */
    float stack[2 * 1024], *an = n <= 1024 ? stack : malloc(sizeof(float) * 2 * (size_t)n); /* a / |a|, then b / |b| */
    if (!an) return NAN; /* embeddings longer than 1024 and no memory */
    float *bn = an + n;
    for (int i = 0; i < n; i++) { an[i] = a[i] / na; bn[i] = b[i] / nb; }
    float cs = rk->rdot(an, bn, (size_t)n);
    if (an != stack) free(an);
    return cs;
}

float locus_clip_t(float cos) { return 2.5f * (cos > 0.0f ? cos : 0.0f); }

locus_status locus_clip_score(const locus_clip *c, const uint8_t *rgb, int W, int H, const char *prompt, float *score) {
    float *e = malloc(sizeof(float) * 2 * (size_t)c->proj_dim); /* image [proj_dim], text [proj_dim] */
    if (!e) return locus_fail(LOCUS_E_NOMEM, "CLIP: out of memory");
    locus_status st = locus_clip_embed_image(c, rgb, W, H, e, NULL);
    if (!st) st = locus_clip_embed_text(c, prompt, e + c->proj_dim, NULL);
    if (!st) *score = locus_clip_t(locus_clip_cosine(e, e + c->proj_dim, c->proj_dim));
    free(e);
    return st;
}
