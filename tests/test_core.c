/* test_core.c — core/: JSON parser, safetensors reader/writer and its validation, f16/bf16 widening,
 * torch-compatible randn against the golden noise, PNG round trip.
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
#include "../core/json.h"
#include "../core/png.h"
#include "../core/rng.h"
#include "../core/safetensors.h"
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
    CHECK(t && locus_st_to_f32(t, out, 3) == LOCUS_OK && out[0] == 1.0f && out[1] == ldexpf(1, -24) && isinf(out[2]) && out[2] < 0, "f16 -> f32");
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

/* wrapping the current message in a new one (locus_fail(..., "%s", locus_errmsg())) keeps it intact */
static void test_error_wrap(void) {
    locus_fail(LOCUS_E_IO, "inner: %s", "file.bin: cannot open");
    locus_fail(LOCUS_E_ARG, "outer: %s (%d)", locus_errmsg(), 7);
    CHECK(!strcmp(locus_errmsg(), "outer: inner: file.bin: cannot open (7)"), "wrapped error message: '%s'", locus_errmsg());
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--malformed")) { write_malformed(argv[2]); return 0; }
    char tmpl[] = "/tmp/locus_test_core.XXXXXX";
    g_tmp = mkdtemp(tmpl);
    const char *golden = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    test_error_wrap();
    test_json();
    test_half();
    test_safetensors();
    test_rng(golden);
    test_png();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    return t_finish("test_core");
}
