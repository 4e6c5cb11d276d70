/* test_paper.c — the paper-fidelity pieces of localize / edit / detox on hand-computed cases: Python str.lower()
 * in the text metrics (É, İ, final sigma), the authors' F1 = 2PR/(P+R+1e-6), truncating vs rounding pixel
 * quantization, B's prompt built from A's (--prompts), numpy RandomState(42) draws and the paper's pairing
 * against lists computed with numpy (tests/golden/pairing, tools/gen_paper_pairs.py), the CSV pairs reader,
 * the presets and the paper's layer numbers (#N) on the tiny pipelines.
 * Run from the repository root (or set LOCUS_GOLDEN to the golden directory). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../experiments/localize_int.h"
#include "../experiments/metrics.h"
#include "../experiments/pairing.h"
#include "../experiments/presets.h"
#include "../experiments/run.h"
#include "../models/nn.h"
#include "../simd/kernels.h"
#include "../simd/ops.h"
#include "testutil.h"

static const char *G;

static void test_lower_and_f1(void) {
    /* É: Python lower() folds it to é, so a perfect reading of "CAFÉ" matches "café" in all 4 characters */
    locus_text_metrics m = locus_text_compare("CAF\xc3\x89", "caf\xc3\xa9");
    CHECK(fabs(m.precision - 4 / (4 + 1e-8)) < 1e-15 && m.exact && m.acc && m.levenshtein == 0, "CAFÉ/café P %.12g exact %d lev %d (expected 1 1 0)",
          m.precision, m.exact, m.levenshtein);
    /* İ (U+0130) lower-cases to two code points, i + U+0307: against "i" 1 match, P = 1/2, R = 1, lev 1 */
    m = locus_text_compare("\xc4\xb0", "i");
    CHECK(fabs(m.precision - 1 / (2 + 1e-8)) < 1e-15 && fabs(m.recall - 1 / (1 + 1e-8)) < 1e-15 && m.levenshtein == 1 && !m.acc && !m.exact,
          "İ/i P %.12g R %.12g lev %d acc %d (expected 0.5 1 1 0)", m.precision, m.recall, m.levenshtein, m.acc);
    /* Greek capital sigma at the end of a word lower-cases to final sigma ς (U+03C2), as Python does */
    m = locus_text_compare("\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82");
    CHECK(m.exact && m.levenshtein == 0, "ΟΔΟΣ/οδος exact %d lev %d", m.exact, m.levenshtein);
    CHECK(locus_levenshtein("\xc3\x89T\xc3\x89", "\xc3\xa9t\xc3\xa9") == 0, "Levenshtein ÉTÉ/été %d", locus_levenshtein("\xc3\x89T\xc3\x89", "\xc3\xa9t\xc3\xa9"));
    /* F1 as the authors: 2PR/(P+R+1e-6) */
    double f = locus_f1(0, 0);
    CHECK(f == 0 && !isnan(f), "F1(0,0) = %g, expected 0", f);
    f = locus_f1(1, 1);
    CHECK(f == 2.0 / (2 + 1e-6) && f < 1, "F1(1,1) = %.12g, expected 2/2.000001 = 0.9999995", f);
    f = locus_f1(0.5, 0.25);
    CHECK(fabs(f - 0.333332888889) < 1e-12, "F1(0.5,0.25) = %.12g, expected 0.25/0.750001 = 0.333332888889", f);
}

static void test_quantize(void) {
    /* x -> clamp(x/2 + 0.5, 0, 1) * 255: 0.0008 -> 127.602 (round 128, trunc 127); 0.9992 -> 254.898 (255, 254);
     * -1 -> 0, 1 -> 255, 2 -> 255 (clamped), 0 -> 127.5 (round half to even 128, trunc 127) */
    static const float x[6] = {0.0008f, 0.9992f, -1.0f, 1.0f, 2.0f, 0.0f};
    static const uint8_t want_round[6] = {128, 255, 0, 255, 255, 128}, want_trunc[6] = {127, 254, 0, 255, 255, 127};
    float img[3 * 6];
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 6; i++) img[c * 6 + i] = x[i];
    locus_run r;
    memset(&r, 0, sizeof r);
    r.image = img;
    r.o.W = 6;
    r.o.H = 1;
    uint8_t pr[18], pt[18];
    locus_run_pixels(&r, pr);
    r.o.quantize_trunc = 1;
    locus_run_pixels(&r, pt);
    int ok = 1;
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++) ok &= pr[i * 3 + c] == want_round[i] && pt[i * 3 + c] == want_trunc[i];
    CHECK(ok, "quantize: round %d %d %d %d %d %d trunc %d %d %d %d %d %d", pr[0], pr[3], pr[6], pr[9], pr[12], pr[15], pt[0], pt[3], pt[6], pt[9], pt[12], pt[15]);
    /* the metrics follow: MSE of the two quantizations = (3 * 1^2 * 3 channels) / 18 values = 0.5 */
    double mse = locus_mse_u8(pr, pt, 1, 6);
    CHECK(mse == 0.5, "MSE(round, trunc) = %g, expected 0.5", mse);
}

static void test_swap_quoted(void) {
    char *s = lz_swap_quoted("A shop sign that reads \"WORLD\" in neon", "HELLO");
    CHECK(s && !strcmp(s, "A shop sign that reads \"HELLO\" in neon"), "swap_quoted: %s", s ? s : "(null)");
    free(s);
    /* only the quoted word is replaced, not other occurrences of it */
    s = lz_swap_quoted("OPEN door: \"OPEN\"", "SALE");
    CHECK(s && !strcmp(s, "OPEN door: \"SALE\""), "swap_quoted (word also outside the quotes): %s", s ? s : "(null)");
    free(s);
}

/* file -> non-empty trimmed lines */
static int read_words(const char *path, char ***out) {
    char *d;
    size_t n;
    *out = NULL;
    if (locus_read_file(path, &d, &n)) return -1;
    int k = 0;
    char **w = malloc((n + 1) * sizeof(char *)), *save = NULL;
    for (char *l = strtok_r(d, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (*l) w[k++] = strdup(l);
    free(d);
    *out = w;
    return k;
}

static void test_numpy_pairing(void) {
    char path[512];
    /* raw draws: RandomState(42).randint(0, high) for bounds around powers of two, as numpy 1.24 gives them */
    snprintf(path, sizeof path, "%s/pairing/randint42.txt", G);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (f) {
        locus_mt19937 g;
        locus_mt19937_seed(&g, 42);
        unsigned long long h, v;
        int n = 0, bad = 0;
        while (fscanf(f, "%llu %llu", &h, &v) == 2) {
            uint64_t got = locus_np_randint(&g, h);
            if (got != v) { if (!bad) fprintf(stderr, "randint(0, %llu) = %llu, numpy %llu\n", h, (unsigned long long)got, v); bad++; }
            n++;
        }
        fclose(f);
        CHECK(n == 60 && !bad, "numpy randint: %d of %d draws differ", bad, n);
        if (!bad) printf("numpy RandomState(42).randint: %d draws (bounds 1 .. 2^32-1) equal numpy 1.24's\n", n);
    }
    /* the paper's pairing over three files with one generator == numpy's pairs */
    char **a, **b;
    int np;
    snprintf(path, sizeof path, "%s/pairing/pairs_paper.csv", G);
    locus_status st = locus_pairs_read(path, &a, &b, &np);
    CHECK(!st && np == 125, "pairs_paper.csv: %s, %d pairs", st ? locus_errmsg() : "ok", np);
    if (st) return;
    locus_mt19937 g;
    locus_mt19937_seed(&g, 42);
    int k = 0, bad = 0, total = 0;
    static const char *files[3] = {"words_a.txt", "words_b.txt", "words_c.txt"};
    for (int fi = 0; fi < 3; fi++) {
        char **w;
        snprintf(path, sizeof path, "%s/pairing/%s", G, files[fi]);
        int n = read_words(path, &w);
        CHECK(n > 1, "cannot read %s", path);
        if (n < 2) break;
        int *t = malloc((size_t)n * sizeof(int));
        CHECK(locus_pairing_paper(&g, n, t) == 0, "%s: pairing failed", files[fi]);
        for (int i = 0; i < n; i++, k++) {
            total++;
            if (k >= np || strcmp(a[k], w[i]) || strcmp(b[k], w[t[i]])) {
                if (!bad) fprintf(stderr, "pair %d: locus %s,%s numpy %s,%s\n", k, w[i], w[t[i]], k < np ? a[k] : "-", k < np ? b[k] : "-");
                bad++;
            }
        }
        for (int i = 0; i < n; i++) free(w[i]);
        free(w);
        free(t);
    }
    CHECK(total == np && !bad, "paper pairing: %d of %d pairs differ from numpy's", bad, total);
    if (!bad) printf("--pairing paper: %d pairs over 3 files (7, 18 and 100 words, incl. CAFÉ, İstanbul and a quoted comma) equal numpy's\n", total);
    locus_pairs_free(a, b, np);
    /* a file whose last word is left alone in the pool: 2 words where the first draws... forced: n = 1 */
    int t1[1];
    CHECK(locus_pairing_paper(&g, 1, t1) == -1, "a single word cannot be paired");
}

static void test_pairs_reader(void) {
    char dir[] = "/tmp/locus_test_paper_XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    char path[600];
    snprintf(path, sizeof path, "%s/p.csv", dir);
    static const char good[] = "a,b\r\n# comment\n\nHELLO,WORLD\r\n\"SALE, 50%\",\"say \"\"hi\"\"\"\nCAF\xc3\x89,x";
    locus_write_atomic(path, good, sizeof good - 1);
    char **a, **b;
    int n;
    locus_status st = locus_pairs_read(path, &a, &b, &n);
    CHECK(!st && n == 3 && !strcmp(a[0], "HELLO") && !strcmp(b[0], "WORLD") && !strcmp(a[1], "SALE, 50%") && !strcmp(b[1], "say \"hi\"") &&
              !strcmp(a[2], "CAF\xc3\x89") && !strcmp(b[2], "x"),
          "pairs reader: %s n %d", st ? locus_errmsg() : "ok", n);
    if (!st) locus_pairs_free(a, b, n);
    static const char *bad[] = {"HELLO\n", "HELLO,\n", "\"HELLO,WORLD\n", "HELLO,WORLD,X\n", "HE\"LLO,WORLD\n", "OK,fine\nW\xff,x\n"};
    static const char *want[] = {":1:", ":1:", ":1:", ":1:", ":1:", ":2: not valid UTF-8"};
    for (int i = 0; i < 6; i++) {
        locus_write_atomic(path, bad[i], strlen(bad[i]));
        st = locus_pairs_read(path, &a, &b, &n);
        CHECK(st && strstr(locus_errmsg(), want[i]), "bad pairs file %d: %s", i, st ? locus_errmsg() : "accepted");
    }
    unlink(path);
    rmdir(dir);
}

static void test_presets_and_numbers(void) {
    const lz_preset *s3 = lz_preset_find("paper-sd3"), *xl = lz_preset_find("paper-sdxl"), *ifp = lz_preset_find("paper-if");
    CHECK(s3 && s3->steps == 28 && s3->guidance == 7.0f && s3->start_step == 2 && s3->steps - s3->start_step == 26 && !strcmp(s3->edit_layers, "transformer_blocks.10"),
          "paper-sd3 preset");
    CHECK(xl && xl->steps == 50 && xl->guidance == 5.0f && xl->start_step == 4 && strstr(xl->edit_layers, "up_blocks.0.attentions.2.transformer_blocks.3.attn2"), "paper-sdxl preset");
    CHECK(ifp && ifp->steps == 50 && ifp->guidance == 7.0f && ifp->start_step == 2 && !strcmp(ifp->edit_layers, "#17"), "paper-if preset");
    CHECK(!lz_preset_find("paper-sd2"), "unknown preset found");
    if (locus_kernels_init()) { CHECK(0, "kernels"); return; }
    char path[512], err[256];
    locus_pipeline p;
    snprintf(path, sizeof path, "%s/pipelines/sd15-tiny", G);
    if (locus_pipeline_open(&p, path)) { CHECK(0, "%s: %s", path, locus_errmsg()); return; }
    /* sd15-tiny's 6 cross-attention layers in forward order: down 0,1; mid 2; up_blocks.1 3,4,5 */
    char *s = lz_paper_layers(&p.den, "#5+#0,mid_block", err, sizeof err);
    CHECK(s && !strcmp(s, "up_blocks.1.attentions.2.transformer_blocks.0.attn2+down_blocks.0.attentions.0.transformer_blocks.0.attn2,mid_block"), "#5+#0: %s",
          s ? s : err);
    free(s);
    s = lz_paper_layers(&p.den, "#2", err, sizeof err);
    CHECK(s && !strcmp(s, "mid_block.attentions.0.transformer_blocks.0.attn2"), "#2: %s", s ? s : err);
    free(s);
    s = lz_paper_layers(&p.den, "#6", err, sizeof err);
    CHECK(!s && strstr(err, "6 text-reading attention layers (#0-#5)"), "#6: %s", s ? s : err);
    free(s);
    s = lz_paper_layers(&p.den, "#x", err, sizeof err);
    CHECK(!s && strstr(err, "#x"), "#x: %s", s ? s : err);
    free(s);
    locus_pipeline_close(&p);
    snprintf(path, sizeof path, "%s/pipelines/sd3-tiny", G);
    if (locus_pipeline_open(&p, path)) { CHECK(0, "%s: %s", path, locus_errmsg()); return; }
    s = lz_paper_layers(&p.den, "#1", err, sizeof err);
    CHECK(s && !strcmp(s, "transformer_blocks.1"), "sd3 #1: %s", s ? s : err);
    free(s);
    locus_pipeline_close(&p);
}

/* attention p . V reference in double: o[t, h*D+d] = sum_j p[h,t,j] v[j, h*D+d] */
static void ref_attn(const double *p, const float *v, int H, int T, int S, int D, double *o) {
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) {
                double s = 0;
                for (int j = 0; j < S; j++) s += p[((size_t)h * T + t) * S + j] * v[(size_t)j * H * D + h * D + d];
                o[(size_t)t * H * D + h * D + d] = s;
            }
}

/* softmax(q k^T / sqrt(D)) per head in double; q [T,C], k [S,C] */
static void ref_probs(const float *q, const float *k, int H, int T, int S, int D, double *p) {
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            double m = -1e300, z = 0, *r = p + ((size_t)h * T + t) * S;
            for (int j = 0; j < S; j++) {
                double s = 0;
                for (int d = 0; d < D; d++) s += (double)q[(size_t)t * H * D + h * D + d] * k[(size_t)j * H * D + h * D + d];
                r[j] = s / sqrt((double)D);
                if (r[j] > m) m = r[j];
            }
            for (int j = 0; j < S; j++) z += (r[j] = exp(r[j] - m));
            for (int j = 0; j < S; j++) r[j] /= z;
        }
}

/* one-hot maps: key t+1 for query t, written over the conditional row */
static int onehot_probs(void *ctx, const locus_hook_at *at, const locus_attn_probs *site) {
    (void)ctx;
    float *p = site->p + (size_t)site->H * site->Tq * site->Tk; /* row 1 */
    for (int h = 0; h < site->H; h++)
        for (int t = 0; t < site->Tq; t++)
            for (int j = 0; j < site->Tk; j++) p[((size_t)h * site->Tq + t) * site->Tk + j] = j == t + 1 ? 1.0f : 0.0f;
    return at->step == 0;
}

/* The probability-override hook and the Prompt-to-Prompt baseline on one cross-attention layer with
 * hand-checkable weights: to_v and to_out identity (so the output is p . ctx), heads 2 x 2, CFG pair. */
static void test_p2p_attention(void) {
    enum { B = 2, T = 3, S = 5, H = 2, D = 2, C = H * D };
    if (locus_kernels_init()) { CHECK(0, "kernels"); return; }
    static float wq[C * C], wk[C * C], eye[C * C], x[B * T * C], ca[B * S * C], cb[B * S * C];
    t_fill(wq, C * C, 1, -1, 1);
    t_fill(wk, C * C, 2, -1, 1);
    for (int i = 0; i < C; i++) eye[i * C + i] = 1;
    t_fill(x, B * T * C, 3, -1, 1);
    t_fill(ca, B * S * C, 4, -1, 1);
    t_fill(cb, B * S * C, 5, -1, 1);
    nn_attention a;
    memset(&a, 0, sizeof a);
    a.q = (nn_linear){wq, NULL, C, C, NULL, 0, NULL};
    a.k = (nn_linear){wk, NULL, C, C, NULL, 0, NULL};
    a.v = (nn_linear){eye, NULL, C, C, NULL, 0, NULL};
    a.out = (nn_linear){eye, NULL, C, C, NULL, 0, NULL};
    a.heads = H; a.dim_head = D; a.inner = C; a.query_dim = C; a.ctx_dim = C; a.text_index = 0;
    float y0[B * T * C], ya[B * T * C], yb[B * T * C], y1[B * T * C];
    /* no hooks vs a recording P2P hook: the recorder changes nothing (bit for bit) */
    nn_attention_fwd(&a, x, B, T, ca, S, y0, NULL, "t.attn2");
    lz_p2p q;
    lz_p2p_init(&q, 1, 1);
    locus_hooks h;
    locus_hooks_init(&h);
    locus_hooks_add(&h, lz_p2p_hook(&q));
    h.step = 0;
    h.cfg = 1;
    nn_attention_fwd(&a, x, B, T, ca, S, ya, &h, "t.attn2");
    CHECK(!memcmp(y0, ya, sizeof y0) && q.hits == 1 && q.len[0] == (size_t)H * T * S, "P2P recording changed A's output or recorded nothing (hits %d)", q.hits);
    /* injection into B's run: conditional row = A's maps . V_B, unconditional row = B's own attention */
    q.record = 0;
    nn_attention_fwd(&a, x, B, T, cb, S, yb, &h, "t.attn2");
    float qx[B * T * C], ka[B * S * C], kb[B * S * C];
    locus_linear(x, B * T, C, wq, NULL, C, qx);
    locus_linear(ca, B * S, C, wk, NULL, C, ka);
    locus_linear(cb, B * S, C, wk, NULL, C, kb);
    double pa[H * T * S], pb[H * T * S], oc[T * C], ou[T * C];
    ref_probs(qx + T * C, ka + S * C, H, T, S, D, pa); /* A's conditional maps */
    ref_probs(qx, kb, H, T, S, D, pb);                 /* B's unconditional maps */
    ref_attn(pa, cb + S * C, H, T, S, D, oc);
    ref_attn(pb, cb, H, T, S, D, ou);
    double dc = 0, du = 0, dmap = 0;
    for (int i = 0; i < T * C; i++) {
        dc = fmax(dc, fabs(yb[T * C + i] - oc[i]));
        du = fmax(du, fabs(yb[i] - ou[i]));
    }
    for (int i = 0; i < H * T * S; i++) dmap = fmax(dmap, fabs(q.maps[0][i] - pa[i]));
    CHECK(dmap < 1e-6 && dc < 1e-5 && du < 1e-5 && q.hits == 2, "P2P: recorded maps %.3g, injected row %.3g, other row %.3g from the double reference", dmap, dc, du);
    if (dmap < 1e-6 && dc < 1e-5 && du < 1e-5)
        printf("Prompt-to-Prompt on a 2-head cross-attention: A's maps recorded within %.2g of softmax(qk/sqrt(d)) in double; B's conditional output = A's maps . V_B within %.2g, unconditional row untouched (%.2g)\n",
           dmap, dc, du);
    /* after the injection window (step 1 >= 1 step) nothing is injected: B's own output, bit for bit */
    h.step = 1;
    nn_attention_fwd(&a, x, B, T, cb, S, y1, &h, "t.attn2");
    nn_attention_fwd(&a, x, B, T, cb, S, y0, NULL, "t.attn2");
    CHECK(!memcmp(y0, y1, sizeof y0), "P2P outside its steps changed the output");
    lz_p2p_free(&q);
    /* a hand-made map: query t attends only to key t+1, so the output row t is exactly ctx row t+1 */
    locus_hooks h1;
    locus_hooks_init(&h1);
    locus_hooks_add(&h1, (locus_hook_entry){NULL, NULL, NULL, NULL, onehot_probs});
    h1.step = 0;
    h1.cfg = 1;
    nn_attention_fwd(&a, x, B, T, cb, S, y1, &h1, "t.attn2");
    int exact = 1;
    for (int t = 0; t < T; t++) exact &= !memcmp(y1 + (size_t)(T + t) * C, cb + (size_t)(S + t + 1) * C, C * sizeof(float));
    CHECK(exact, "one-hot maps: output rows are not exactly the selected context rows");
}

int main(void) {
    G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    test_lower_and_f1();
    test_quantize();
    test_swap_quoted();
    test_numpy_pairing();
    test_pairs_reader();
    test_presets_and_numbers();
    test_p2p_attention();
    return t_finish("paper");
}
