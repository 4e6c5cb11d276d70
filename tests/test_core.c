/* test_core.c — core/: JSON parser, safetensors reader/writer and its validation, f16/bf16 widening,
 * torch-compatible randn against the golden noise, PNG round trip, the string builder, JSON writer and UTF-8
 * validator.
 *
 *   test_core               run the checks
 *   test_core --malformed DIR   write the malformed safetensors files used by the CLI error test into DIR
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/arena.h"
#include "../core/half.h"
#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/numparse.h"
#include "../core/jsonw.h"
#include "../core/png.h"
#include "../core/rng.h"
#include "../core/safetensors.h"
#include "../core/strbuf.h"
#include "../core/utf8.h"
#include "testutil.h"

static const char *g_tmp;

static void path_in_tmp(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_tmp, name); }

/* ---------------------------------------------------------------- JSON */

static int parses(const char *s) {
    locus_json_doc d;
    locus_status st = locus_json_parse(&d, s, strlen(s), "t.json");
    if (st == LOCUS_OK) locus_json_free(&d);
    return st == LOCUS_OK;
}

static void test_json(void) {
    const char *good[] = {"{}", "[]", "0", "-0", "1.5e10", "\"x\"", "true", "null", " {\"a\" : [1, 2, {\"b\": null}]} ",
                          "\"\\u00e9\\ud83d\\ude00\\n\"", "[1e-3, -2E+2, 123456789012]"};
    const char *bad[] = {"", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "\"abc", "\"a\x01\"", "\"\\x\"",
                         "\"\\ud800\"", "{\"a\" 1}", "[1 2]", "tru", "{} x", "{'a':1}", "1e", "-", "\"\\u12\""};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) CHECK(parses(good[i]), "JSON should parse: %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(!parses(bad[i]), "JSON should be rejected: %s", bad[i]);
    char deep[300];
    memset(deep, '[', 100); memset(deep + 100, ']', 100); deep[200] = 0;
    CHECK(!parses(deep), "JSON nesting 100 deep is rejected");
    locus_json_doc d;
    const char *cfg = "{\"in_channels\": 4, \"eps\": 1e-05, \"name\": \"caf\\u00e9\", \"flag\": true, \"big\": 9007199254740993,"
                      " \"list\": [320, 640], \"nothing\": null}";
    CHECK(locus_json_parse(&d, cfg, strlen(cfg), "config.json") == LOCUS_OK, "config parses");
    int ok = 1;
    CHECK(locus_json_int(d.root, "in_channels", 0, &ok) == 4 && ok, "int getter");
    CHECK(fabs(locus_json_num(d.root, "eps", 0, &ok) - 1e-5) < 1e-20, "num getter");
    CHECK(!strcmp(locus_json_str(d.root, "name", "", &ok), "caf\xc3\xa9"), "utf-8 decode of \\u00e9");
    CHECK(locus_json_bool(d.root, "flag", 0, &ok) == 1, "bool getter");
    CHECK(locus_json_int(d.root, "big", 0, &ok) == 9007199254740993LL, "int64 kept exactly");
    CHECK(locus_json_int(d.root, "missing", 7, &ok) == 7 && ok, "default for a missing key");
    CHECK(locus_json_int(d.root, "nothing", 8, &ok) == 8 && ok, "default for null");
    locus_json_int(d.root, "name", 0, &ok);
    CHECK(!ok, "wrong type is reported");
    const locus_json *l = locus_json_get(d.root, "list");
    CHECK(l && l->type == JSON_ARRAY && l->len == 2 && l->kids[1]->i == 640, "array access");
    locus_json_free(&d);
    locus_status st = locus_json_parse(&d, "{\"a\":}", 6, "unet/config.json");
    CHECK(st == LOCUS_E_FORMAT && strstr(locus_errmsg(), "unet/config.json") && strstr(locus_errmsg(), "byte 5"),
          "JSON error names the file and the offset: %s", locus_errmsg());
    /* duplicate keys: the last value wins at the first key's position, as Python's json */
    const char *dup = "{\"a\": 1, \"b\": 2, \"a\": 3, \"c\": {\"x\": 1, \"x\": [5]}, \"a\": 4}";
    CHECK(locus_json_parse(&d, dup, strlen(dup), "dup.json") == LOCUS_OK && d.root->len == 3 && !strcmp(d.root->kids[0]->key, "a") &&
              d.root->kids[0]->i == 4 && !strcmp(d.root->kids[1]->key, "b") && locus_json_get(d.root, "c")->len == 1 &&
              locus_json_get(locus_json_get(d.root, "c"), "x")->type == JSON_ARRAY && d.duplicates == 3 && !strcmp(d.dup_key, "x"),
          "duplicate JSON keys: the last wins");
    locus_json_free(&d);
}

/* ---------------------------------------------------------------- f16 / bf16 */

static void test_half(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        int e = (h >> 10) & 31, m = h & 1023, s = h >> 15;
        double want = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
        if (s) want = -want;
        float got = locus_f16_to_f32((uint16_t)h);
        if (isnan(want) ? !isnan(got) : (got != (float)want || !signbit(got) != !signbit(want))) bad++;
    }
    CHECK(bad == 0, "all 65536 f16 values widen exactly (%d wrong)", bad);
    CHECK(locus_bf16_to_f32(0x3f80) == 1.0f && locus_bf16_to_f32(0xc040) == -3.0f && isinf(locus_bf16_to_f32(0x7f80)), "bf16 widening");
}

/* ---------------------------------------------------------------- safetensors */

/* writes raw bytes: 8-byte header length (may be overridden), header text, then `data` bytes */
static void write_raw(const char *path, const char *header, long long hlen_override, size_t data_bytes, size_t file_trunc) {
    FILE *f = fopen(path, "wb");
    uint64_t hl = hlen_override >= 0 ? (uint64_t)hlen_override : strlen(header);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hl >> (8 * i));
    size_t total = 8 + strlen(header) + data_bytes;
    unsigned char *all = calloc(1, total);
    memcpy(all, b, 8);
    memcpy(all + 8, header, strlen(header));
    for (size_t i = 0; i < data_bytes; i++) all[8 + strlen(header) + i] = (unsigned char)i;
    fwrite(all, 1, file_trunc ? file_trunc : total, f);
    fclose(f);
    free(all);
}

typedef struct { const char *file, *header; long long hlen; size_t data, trunc; const char *expect; } malformed;
static const malformed g_bad[] = {
    {"truncated.safetensors", "", -1, 0, 5, "truncated"},
    {"hlen_past_eof.safetensors", "{}", 1000, 0, 0, "past the end"},
    {"bad_json.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]", -1, 8, 0, "invalid JSON"},
    {"offsets_out_of_range.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", -1, 8, 0, "outside the data region"},
    {"shape_mismatch.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8, 0, "data_offsets span"},
    {"dtype_mismatch.safetensors", "{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, 0, "data_offsets span"},
    {"unknown_dtype.safetensors", "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, 0, "unsupported dtype"},
    {"overlap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8, 0, "overlap"},
    {"negative_shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8, 0, "non-negative"},
    {"end_before_begin.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", -1, 8, 0, "< begin"},
    {"not_object.safetensors", "[1,2]", -1, 0, 0, "not a JSON object"},
    {"duplicate.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8, 0, "twice"},
    {"no_offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", -1, 8, 0, "data_offsets"},
};
#define NBAD (sizeof g_bad / sizeof *g_bad)

static void write_malformed(const char *dir) {
    char p[512];
    for (size_t i = 0; i < NBAD; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, g_bad[i].file);
        write_raw(p, g_bad[i].header, g_bad[i].hlen, g_bad[i].data, g_bad[i].trunc);
    }
}

static void test_safetensors(void) {
    char p[512], q[512], idx[512];
    /* round trip through the writer, mixed dtypes */
    locus_st_writer *w = locus_st_writer_new();
    float a[6] = {1, -2, 3.5f, 0, 1e-8f, -0.0f};
    uint16_t h[3] = {0x3c00, 0x0001, 0xfc00}; /* 1, smallest subnormal, -inf */
    uint16_t bf[2] = {0x4049, 0xbf80};
    int64_t ids[4] = {49406, 320, -1, 1LL << 40};
    int64_t s6[2] = {2, 3}, s3[1] = {3}, s2[1] = {2}, s4[2] = {1, 4};
    CHECK(locus_st_writer_add(w, "a.weight", LOCUS_F32, 2, s6, a) == LOCUS_OK, "writer add f32");
    locus_st_writer_add(w, "h", LOCUS_F16, 1, s3, h);
    locus_st_writer_add(w, "bf", LOCUS_BF16, 1, s2, bf);
    locus_st_writer_add(w, "ids", LOCUS_I64, 2, s4, ids);
    locus_st_writer_add_meta(w, "format", "pt");
    path_in_tmp(p, sizeof p, "rt.safetensors");
    CHECK(locus_st_writer_save(w, p) == LOCUS_OK, "writer save: %s", locus_errmsg());
    locus_st_writer_free(w);
    locus_st_file f;
    CHECK(locus_st_open(&f, p) == LOCUS_OK && f.count == 4, "reopen written file: %s", locus_errmsg());
    float out[8];
    const locus_st_tensor *t = locus_st_find(&f, "a.weight");
    CHECK(t && t->ndim == 2 && t->shape[1] == 3 && locus_st_to_f32(t, out, 6) == LOCUS_OK && !memcmp(out, a, sizeof a), "f32 round trip");
    t = locus_st_find(&f, "h");
    /* -inf converts exactly, and a non-finite value in a file is refused naming the tensor (issue 14) */
    CHECK(t && locus_st_to_f32(t, out, 3) == LOCUS_E_FORMAT && out[0] == 1.0f && out[1] == ldexpf(1, -24) && isinf(out[2]) && out[2] < 0 &&
              strstr(locus_errmsg(), "'h' has a non-finite value (Inf) at element 2"), "f16 -> f32 (and -inf refused): %s", locus_errmsg());
    t = locus_st_find(&f, "bf");
    CHECK(t && locus_st_to_f32(t, out, 2) == LOCUS_OK && out[0] == 3.140625f && out[1] == -1.0f, "bf16 -> f32");
    int64_t ids2[4];
    t = locus_st_find(&f, "ids");
    CHECK(t && locus_st_to_i64(t, ids2, 4) == LOCUS_OK && !memcmp(ids, ids2, sizeof ids), "i64 round trip");
    CHECK(locus_st_to_f32(t, out, 4) == LOCUS_E_DTYPE && strstr(locus_errmsg(), "ids"), "int tensor read as float is a dtype error");
    CHECK(locus_st_find(&f, "nope") == NULL, "missing tensor lookup");
    locus_st_close(&f);
    /* shape check through a set */
    locus_st_set set;
    CHECK(locus_st_set_open(&set, p) == LOCUS_OK, "set open single file");
    int64_t want[2] = {3, 2};
    CHECK(locus_st_set_load_f32(&set, "a.weight", 2, want, out) == LOCUS_E_SHAPE && strstr(locus_errmsg(), "[2,3]") && strstr(locus_errmsg(), "[3,2]"),
          "shape mismatch names both shapes: %s", locus_errmsg());
    CHECK(locus_st_set_load_f32(&set, "missing.bias", 1, want, out) == LOCUS_E_NOTFOUND && strstr(locus_errmsg(), "missing.bias"), "missing tensor named");
    locus_st_set_close(&set);
    /* sharded */
    w = locus_st_writer_new();
    locus_st_writer_add(w, "x", LOCUS_F32, 1, s3, a);
    path_in_tmp(q, sizeof q, "model-00001-of-00002.safetensors");
    locus_st_writer_save(w, q);
    locus_st_writer_free(w);
    w = locus_st_writer_new();
    locus_st_writer_add(w, "y", LOCUS_F32, 1, s2, a + 3);
    path_in_tmp(q, sizeof q, "model-00002-of-00002.safetensors");
    locus_st_writer_save(w, q);
    locus_st_writer_free(w);
    path_in_tmp(idx, sizeof idx, "model.safetensors.index.json");
    FILE *fi = fopen(idx, "w");
    fprintf(fi, "{\"metadata\": {\"total_size\": 20}, \"weight_map\": {\"x\": \"model-00001-of-00002.safetensors\", \"y\": \"model-00002-of-00002.safetensors\"}}");
    fclose(fi);
    CHECK(locus_st_set_open(&set, idx) == LOCUS_OK && set.nfiles == 2, "sharded open: %s", locus_errmsg());
    int64_t s2b[1] = {2};
    CHECK(locus_st_set_load_f32(&set, "y", 1, s2b, out) == LOCUS_OK && out[0] == a[3] && out[1] == a[4], "tensor from the second shard");
    locus_st_set_close(&set);
    fi = fopen(idx, "w");
    fprintf(fi, "{\"weight_map\": {\"x\": \"model-00002-of-00002.safetensors\"}}");
    fclose(fi);
    CHECK(locus_st_set_open(&set, idx) == LOCUS_E_FORMAT && strstr(locus_errmsg(), "not there"), "index pointing at the wrong shard is rejected");
    /* malformed files: each rejected with a message naming the file and the problem */
    write_malformed(g_tmp);
    for (size_t i = 0; i < NBAD; i++) {
        path_in_tmp(p, sizeof p, g_bad[i].file);
        locus_status st = locus_st_open(&f, p);
        CHECK(st != LOCUS_OK && strstr(locus_errmsg(), g_bad[i].file) && strstr(locus_errmsg(), g_bad[i].expect),
              "%s rejected with '%s' (got status %d: %s)", g_bad[i].file, g_bad[i].expect, st, locus_errmsg());
        if (st == LOCUS_OK) locus_st_close(&f);
    }
    CHECK(locus_st_open(&f, "/nonexistent/x.safetensors") == LOCUS_E_IO && strstr(locus_errmsg(), "/nonexistent/x.safetensors"), "missing file");
}

/* ---------------------------------------------------------------- RNG */

static void test_rng(const char *golden_dir) {
    locus_mt19937 g;
    locus_mt19937_seed(&g, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++) v = locus_mt19937_next(&g);
    CHECK(v == 4123659995u, "mt19937 10000th output for seed 5489 (C++ standard value), got %u", v);
    struct { const char *file; int seed; } cases[] = {{"ldm/golden_sample.safetensors", 200}, {"sd3/golden_sample.safetensors", 600}};
    for (int c = 0; c < 2; c++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", golden_dir, cases[c].file);
        locus_st_file f;
        if (locus_st_open(&f, p) != LOCUS_OK) { CHECK(0, "open golden %s: %s", p, locus_errmsg()); continue; }
        const locus_st_tensor *t = locus_st_find(&f, "noise");
        int64_t n = t ? locus_st_numel(t) : 0;
        float *gold = malloc(n * 4), *mine = malloc(n * 4);
        locus_st_to_f32(t, gold, n);
        locus_randn(cases[c].seed, mine, (size_t)n);
        size_t nd = t_bitdiff(mine, gold, (size_t)n);
        CHECK(n > 0 && nd == 0, "torch.randn seed %d, %lld values: %zu differ from the golden noise (max diff %.3g)", cases[c].seed,
              (long long)n, nd, t_maxdiff(mine, gold, (size_t)n, NULL));
        printf("randn seed %d: %lld values, %zu bits differ from torch\n", cases[c].seed, (long long)n, nd);
        free(gold); free(mine);
        locus_st_close(&f);
    }
    /* hash RNG is a pure function of (seed, index) */
    CHECK(locus_hash_uniform(3, 1000) == locus_hash_uniform(3, 1000) && locus_hash_uniform(3, 1000) != locus_hash_uniform(4, 1000), "hash RNG");
}

/* ---------------------------------------------------------------- PNG */

static void test_png(void) {
    /* PNG round trip with metadata; float -> u8 conversion like diffusers */
    float img[3 * 2 * 2] = {-1, 0, 1, 2, -2, 0.5f, -0.5f, 0.001f, 0, 0, 0, 0};
    uint8_t u8[12], *back = NULL;
    locus_image_to_u8(img, 2, 2, u8);
    CHECK(u8[0] == 0 && u8[3] == 128 && u8[6] == 255 && u8[9] == 255 && u8[1] == 0, "to_u8: clamp and round half to even (%d %d %d %d)", u8[0], u8[3], u8[6], u8[9]);
    char p[512];
    path_in_tmp(p, sizeof p, "t.png");
    locus_png_text tx[2] = {{"prompt", "A sign that says \"HELLO\"."}, {"seed", "42"}};
    CHECK(locus_png_write(p, u8, 2, 2, 3, tx, 2) == LOCUS_OK, "png write: %s", locus_errmsg());
    int w, h;
    CHECK(locus_png_read_rgb(p, &back, &w, &h) == LOCUS_OK && w == 2 && h == 2 && !memcmp(back, u8, 12), "png read back identical");
    free(back);
    FILE *f = fopen(p, "rb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(memmem(buf, n, "prompt", 6) && memmem(buf, n, "HELLO", 5), "tEXt metadata present");
    CHECK(locus_png_write("/nonexistent/dir/x.png", u8, 2, 2, 3, NULL, 0) == LOCUS_E_IO && access("/nonexistent/dir/x.png", F_OK) != 0, "png write error, no file");
}

/* ================================================================ strbuf, JSON writer, UTF-8 validator
 * (core/strbuf.h, core/jsonw.h, core/utf8.h) — the text that localize's result files are made of. */

static void test_strbuf(void) {
    locus_strbuf b = {0};
    CHECK(!strcmp(locus_sb_str(&b), "") && b.n == 0, "empty builder reads as \"\"");
    locus_sb_puts(&b, "ab");
    locus_sb_putn(&b, "c\0d", 3);
    locus_sb_printf(&b, "[%d|%s]", 42, "x");
    CHECK(b.n == 11 && !memcmp(b.s, "abc\0d[42|x]", 12), "puts, putn with a NUL, printf (n=%zu)", b.n);
    char big[3000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK(locus_sb_printf(&b, "<%s>", big) == LOCUS_OK && b.n == 11 + 3001 && b.s[12] == 'q' && b.s[b.n - 1] == '>' && b.s[b.n] == 0,
          "printf longer than the scratch buffer (n=%zu)", b.n);
    char *s = locus_sb_take(&b);
    CHECK(s && strlen(s) == 3 && b.s == NULL && b.n == 0, "take hands over the text and empties the builder");
    free(s);
    s = locus_sb_take(&b);
    CHECK(s && !strcmp(s, ""), "take of an empty builder is \"\"");
    free(s);
    /* allocation failure: reported, sticky, never a crash */
    locus_sb_puts(&b, "keep");
    locus_clear_error();
    CHECK(locus_sb_putn(&b, "x", (size_t)-1 / 2) == LOCUS_E_NOMEM && strstr(locus_errmsg(), "string builder"), "impossible growth is LOCUS_E_NOMEM with a message: '%s'", locus_errmsg());
    CHECK(locus_sb_puts(&b, "more") == LOCUS_E_NOMEM && locus_sb_printf(&b, "%d", 1) == LOCUS_E_NOMEM && b.n == 4 && locus_sb_status(&b) == LOCUS_E_NOMEM,
          "after a failure appends do nothing and the status stays failed");
    CHECK(locus_sb_take(&b) == NULL && b.s == NULL && !b.failed, "take after a failure is NULL and resets the builder");
    locus_sb_free(&b);
}

/* the writer's whole output for one document */
#define JW_EXPECT(build, want, what)                                                                            \
    do {                                                                                                        \
        locus_strbuf b_ = {0};                                                                                  \
        locus_jsonw w_;                                                                                         \
        locus_jw_init(&w_, &b_);                                                                                \
        locus_jsonw *w = &w_;                                                                                   \
        build;                                                                                                  \
        CHECK(w_.depth == 0 && !strcmp(locus_sb_str(&b_), want), "%s: got '%s' want '%s'", what, locus_sb_str(&b_), want); \
        locus_sb_free(&b_);                                                                                     \
    } while (0)

static void test_jsonw(void) {
    /* escaping: quote, backslash, newline as \n, other controls and DEL as \u00xx, UTF-8 bytes as they are */
    JW_EXPECT(locus_jw_str(w, "a\"b\\c\nd\te\rf\x01g\x1fh\x7fi caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 /"),
              "\"a\\\"b\\\\c\\nd\\u0009e\\u000df\\u0001g\\u001fh\\u007fi caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 /\"", "string escaping");
    JW_EXPECT(locus_jw_strn(w, "a\0b", 3), "\"a\\u0000b\"", "embedded NUL");
    JW_EXPECT(locus_jw_str(w, ""), "\"\"", "empty string");
    /* numbers as localize has always written them */
    JW_EXPECT((locus_jw_array(w, LOCUS_JW_INLINE), locus_jw_num(w, 0.1f), locus_jw_num(w, 0.1), locus_jw_num(w, 7.5f), locus_jw_num(w, 1e-10),
               locus_jw_num(w, 123456789012.0), locus_jw_num(w, -0.0), locus_jw_num(w, 148.13080406189), locus_jw_num(w, 0),
               locus_jw_num(w, NAN), locus_jw_num(w, -INFINITY), locus_jw_int(w, -9223372036854775807LL - 1), locus_jw_int(w, 42),
               locus_jw_bool(w, 1), locus_jw_bool(w, 0), locus_jw_null(w), locus_jw_end(w)),
              "[0.100000001, 0.1, 7.5, 1e-10, 1.23456789e+11, -0, 148.130804, 0, null, null, -9223372036854775808, 42, true, false, null]",
              "number formatting (%.9g, non-finite as null, %lld)");
    /* layouts and nesting: the shape of localize's config.json */
    JW_EXPECT((locus_jw_object(w, LOCUS_JW_BLOCK), locus_jw_key(w, "n"), locus_jw_int(w, 1), locus_jw_key(w, "seeds"),
               locus_jw_array(w, LOCUS_JW_INLINE), locus_jw_int(w, 0), locus_jw_int(w, 5), locus_jw_end(w), locus_jw_key(w, "layers"),
               locus_jw_array(w, LOCUS_JW_BLOCK), locus_jw_str(w, "a"), locus_jw_str(w, "b"), locus_jw_end(w), locus_jw_key(w, "items"),
               locus_jw_array(w, LOCUS_JW_BLOCK), locus_jw_object(w, LOCUS_JW_INLINE), locus_jw_key(w, "w"), locus_jw_str(w, "x"),
               locus_jw_key(w, "t"), locus_jw_int(w, 1), locus_jw_end(w), locus_jw_end(w), locus_jw_key(w, "e"),
               locus_jw_object(w, LOCUS_JW_BLOCK), locus_jw_end(w), locus_jw_key(w, "f"), locus_jw_array(w, LOCUS_JW_INLINE), locus_jw_end(w),
               locus_jw_key(w, "deep"), locus_jw_array(w, LOCUS_JW_BLOCK), locus_jw_array(w, LOCUS_JW_BLOCK), locus_jw_object(w, LOCUS_JW_BLOCK),
               locus_jw_key(w, "k\""), locus_jw_null(w), locus_jw_end(w), locus_jw_end(w), locus_jw_end(w), locus_jw_end(w)),
              "{\n  \"n\": 1,\n  \"seeds\": [0, 5],\n  \"layers\": [\n    \"a\",\n    \"b\"\n  ],\n  \"items\": [\n    {\"w\": \"x\", \"t\": 1}\n  ],\n"
              "  \"e\": {},\n  \"f\": [],\n  \"deep\": [\n    [\n      {\n        \"k\\\"\": null\n      }\n    ]\n  ]\n}",
              "block and inline nesting");
    /* JSON Lines: consecutive top-level values */
    JW_EXPECT((locus_jw_object(w, LOCUS_JW_INLINE), locus_jw_key(w, "a"), locus_jw_int(w, 1), locus_jw_end(w), locus_sb_puts(w->b, "\n"),
               locus_jw_object(w, LOCUS_JW_INLINE), locus_jw_key(w, "b"), locus_jw_str(w, "\n"), locus_jw_end(w), locus_sb_puts(w->b, "\n")),
              "{\"a\": 1}\n{\"b\": \"\\n\"}\n", "two rows of JSON Lines");
    /* what the writer writes, the parser reads back: every byte 1..255 in a string, and nested values */
    char all[256];
    for (int i = 1; i < 256; i++) all[i - 1] = (char)i;
    all[255] = 0;
    locus_strbuf b = {0};
    locus_jsonw w;
    locus_jw_init(&w, &b);
    locus_jw_object(&w, LOCUS_JW_BLOCK);
    locus_jw_key(&w, "s");
    locus_jw_str(&w, all);
    locus_jw_key(&w, "x");
    locus_jw_array(&w, LOCUS_JW_INLINE);
    locus_jw_num(&w, 0.333333343f);
    locus_jw_int(&w, -7);
    locus_jw_end(&w);
    locus_jw_end(&w);
    locus_json_doc d;
    int ok = 1;
    CHECK(locus_sb_status(&b) == LOCUS_OK && locus_json_parse(&d, b.s, b.n, "jsonw") == LOCUS_OK, "writer output parses: %s", locus_errmsg());
    if (d.root) {
        const locus_json *x = locus_json_get(d.root, "x");
        CHECK(!strcmp(locus_json_str(d.root, "s", "", &ok), all) && ok, "string of bytes 1..255 round-trips through the parser");
        CHECK(x && x->len == 2 && (float)x->kids[0]->num == 0.333333343f && x->kids[1]->i == -7, "%%.9g of a float parses back to the same float");
        locus_json_free(&d);
    }
    locus_sb_free(&b);
}

static void test_utf8(void) {
    static const struct { const char *s; size_t n; uint32_t cp; } good[] = {
        {"A", 1, 0x41},           {"\x7f", 1, 0x7f},         {"\xc2\x80", 2, 0x80},          {"\xc3\xa9", 2, 0xe9},
        {"\xdf\xbf", 2, 0x7ff},   {"\xe0\xa0\x80", 3, 0x800}, {"\xe2\x82\xac", 3, 0x20ac},   {"\xed\x9f\xbf", 3, 0xd7ff},
        {"\xee\x80\x80", 3, 0xe000}, {"\xef\xbf\xbf", 3, 0xffff}, {"\xf0\x90\x80\x80", 4, 0x10000}, {"\xf4\x8f\xbf\xbf", 4, 0x10ffff}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        uint32_t cp = 0;
        size_t l = locus_utf8_next(good[i].s, strlen(good[i].s), &cp);
        CHECK(l == good[i].n && cp == good[i].cp, "utf8 %zu: U+%04X is %zu bytes (got %zu, U+%04X)", i, (unsigned)good[i].cp, good[i].n, l, (unsigned)cp);
    }
    static const char *const bad[] = {
        "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", /* overlong */
        "\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xb0\x80",                                                  /* surrogates */
        "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xe2\x82\x41", "\xc3\xc3\xa9", "\xf0\x9f\x98\x20",          /* truncated */
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf", "\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80", "\xfe", "\xff", /* > U+10FFFF */
        "\x80", "\xbf", "\xa9"};                                                                          /* lone continuation */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint32_t cp = 0xABCD;
        CHECK(locus_utf8_next(bad[i], strlen(bad[i]), &cp) == 0 && cp == 0xABCD, "utf8 bad %zu (%02x...) rejected", i, (unsigned char)bad[i][0]);
        char ctx[32];
        snprintf(ctx, sizeof ctx, "ok %s ok", bad[i]);
        CHECK(!locus_utf8_valid(ctx, strlen(ctx)), "utf8 bad %zu rejected inside a string", i);
    }
    CHECK(locus_utf8_next("\xe2\x82\xac", 2, NULL) == 0, "a character longer than n is truncated (no read past n)");
    CHECK(locus_utf8_valid("", 0) && locus_utf8_valid("plain ASCII", 11), "empty and ASCII strings are valid");
    const char *mix = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
    CHECK(locus_utf8_valid(mix, strlen(mix)), "mixed 1-4 byte characters are valid");
    CHECK(!locus_utf8_valid(mix, strlen(mix) - 1), "the same cut inside its last character is not");
}
/* ================================================================ end of strbuf / JSON writer / UTF-8 */

/* wrapping the current message in a new one (locus_fail(..., "%s", locus_errmsg())) keeps it intact */
static void test_error_wrap(void) {
    locus_fail(LOCUS_E_IO, "inner: %s", "file.bin: cannot open");
    locus_fail(LOCUS_E_ARG, "outer: %s (%d)", locus_errmsg(), 7);
    CHECK(!strcmp(locus_errmsg(), "outer: inner: file.bin: cannot open (7)"), "wrapped error message: '%s'", locus_errmsg());
}

/* ---------------------------------------------------------------- strict numbers, regular files */

static void test_numparse_files(void) {
    long long v = 0;
    double d = 0;
    CHECK(locus_parse_ll("42", 0, 100, &v) && v == 42 && locus_parse_ll("-5", -10, 10, &v) && v == -5, "integers parse");
    CHECK(!locus_parse_ll("12x", 0, 100, &v) && !locus_parse_ll(" 1", 0, 100, &v) && !locus_parse_ll("", 0, 100, &v) &&
              !locus_parse_ll("+1", 0, 100, &v) && !locus_parse_ll("0x10", 0, 100, &v) && !locus_parse_ll("101", 0, 100, &v) &&
              !locus_parse_ll("99999999999999999999", 0, 1LL << 62, &v) && !locus_parse_ll("-", -5, 5, &v),
          "junk, signs, hex, out of range and overflow refused");
    CHECK(locus_parse_lln("12/34", 2, 0, 100, &v) && v == 12, "a token inside a string");
    CHECK(locus_parse_double("7.5", 0, 100, &d) && d == 7.5 && !locus_parse_double("nan", 0, 100, &d) && !locus_parse_double("inf", -1e300, 1e300, &d) &&
              !locus_parse_double("1e999", 0, 1e308, &d) && !locus_parse_double("7.5x", 0, 100, &d) && !locus_parse_double("-1", 0, 100, &d),
          "numbers: finite, whole, in range");
    locus_status st;
    int fd = locus_open_regular("/dev/null", &st);
    CHECK(fd < 0 && st == LOCUS_E_IO && strstr(locus_errmsg(), "not a regular file"), "a device is not opened for reading");
    CHECK(locus_output_check("/dev/null") == LOCUS_E_IO && strstr(locus_errmsg(), "not a regular file"), "a device is never an output");
    char p[600];
    path_in_tmp(p, sizeof p, "fifo");
    if (mkfifo(p, 0600) == 0) {
        CHECK(locus_open_regular(p, &st) < 0 && strstr(locus_errmsg(), "not a regular file"), "a FIFO is refused without blocking");
        CHECK(locus_write_atomic(p, "x", 1) == LOCUS_E_IO, "an atomic write never replaces a FIFO");
        struct stat sb;
        CHECK(stat(p, &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO is still there");
    }
    CHECK(locus_output_check("/nonexistent-dir/x.png") == LOCUS_E_IO && strstr(locus_errmsg(), "no directory"), "a missing output directory is named");
}

/* arena.c: 64-byte alignment and sizes for small and big (mapped) blocks, live/peak accounting, a freed big
 * block reused by the next allocation of the same length (its contents are whatever was there: locus_alloc
 * never promised zeros), other lengths get their own block, locus_mem_trim returns the kept ones. */
static void test_arena(void) {
    size_t live0 = locus_mem_live();
    size_t sizes[] = {1, 63, 64, 4000, (size_t)4 << 20, ((size_t)4 << 20) - 64, ((size_t)4 << 20) - 63, ((size_t)9 << 20) + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = locus_alloc(sizes[i]);
        CHECK(p && ((uintptr_t)p & 63) == 0 && locus_alloc_size(p) == ((sizes[i] + 63) & ~(size_t)63), "block of %zu bytes: aligned, sized", sizes[i]);
        CHECK(locus_mem_live() == live0 + locus_alloc_size(p), "live bytes count the block of %zu", sizes[i]);
        if (p) { memset(p, 0xab, sizes[i]); CHECK(p[sizes[i] - 1] == 0xab, "last byte of %zu writable", sizes[i]); }
        locus_free(p);
    }
    CHECK(locus_mem_live() == live0, "every block given back");
    size_t big = (size_t)6 << 20;
    float *a = locus_alloc(big);
    a[0] = 42.0f;
    locus_free(a);
    float *b = locus_alloc(big), *c = locus_alloc(big + ((size_t)2 << 20));
    CHECK(!LOCUS_ARENA_MMAP || (b == a && b[0] == 42.0f), "a freed big block is reused by the next allocation of its length");
    CHECK(c && c != a, "another length gets its own block");
    locus_free(b);
    locus_free(c);
    locus_mem_trim();
    CHECK(locus_mem_live() == live0, "nothing live after trim");
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--malformed")) { write_malformed(argv[2]); return 0; }
    char tmpl[] = "/tmp/locus_test_core.XXXXXX";
    g_tmp = mkdtemp(tmpl);
    const char *golden = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    test_error_wrap();
    test_arena();
    test_json();
    test_strbuf();
    test_jsonw();
    test_utf8();
    test_half();
    test_safetensors();
    test_rng(golden);
    test_png();
    test_numparse_files();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    return t_finish("test_core");
}
