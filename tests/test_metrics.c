/* test_metrics.c — experiments/metrics.c (the paper's OCR and image metrics) on hand-computed cases,
 * the bitmap font and figures of experiments/draw.c, and tesseract OCR (experiments/ocr.c) reading text
 * drawn with that font.  Prints each measured value next to the expected one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/png.h"
#include "../core/rng.h"
#include "../experiments/draw.h"
#include "../experiments/metrics.h"
#include "../experiments/ocr.h"
#include "testutil.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

static void test_bag_of_chars(void) {
    /* "hello" vs "world": pieces h e l l o / w o r l d share one l and one o -> P = R = 2/5 */
    locus_text_metrics m = locus_text_compare("hello", "world");
    CHECK(near(m.precision, 0.4, 1e-7) && near(m.recall, 0.4, 1e-7), "hello/world P %g R %g, expected 0.4 0.4", m.precision, m.recall);
    CHECK(!m.acc && !m.exact && m.levenshtein == 4, "hello/world acc %d exact %d lev %d (expected 0 0 4)", m.acc, m.exact, m.levenshtein);
    /* case folded; whitespace is an (empty) piece of its own: "Hi there" has 8 pieces, "there" 5, 5 match */
    m = locus_text_compare("Hi THERE", "there");
    CHECK(near(m.precision, 5.0 / 8, 1e-7) && near(m.recall, 1.0, 1e-7), "'Hi THERE'/there P %g R %g, expected 0.625 1", m.precision, m.recall);
    /* the paper's acc is an anagram test that ignores whitespace; exact is not */
    m = locus_text_compare("o p e n", "open");
    CHECK(m.acc && !m.exact, "'o p e n'/open acc %d exact %d (expected 1 0)", m.acc, m.exact);
    m = locus_text_compare("nepo", "open");
    CHECK(m.acc && !m.exact && near(m.precision, 1, 1e-7), "nepo/open acc %d exact %d", m.acc, m.exact);
    m = locus_text_compare("  Open\n", "open");
    CHECK(m.acc && m.exact && m.levenshtein == 3, "'  Open\\n'/open acc %d exact %d lev %d (expected 1 1 3)", m.acc, m.exact, m.levenshtein);
    /* nothing read: P = 0 / 1e-8 = 0, R = 0 */
    m = locus_text_compare("", "stop");
    CHECK(m.precision == 0 && m.recall == 0 && !m.acc && m.levenshtein == 4, "empty/stop P %g R %g lev %d", m.precision, m.recall, m.levenshtein);
    /* repeated letters count once per occurrence: "aaa" vs "a": 1 match; P 1/3, R 1 */
    m = locus_text_compare("aaa", "a");
    CHECK(near(m.precision, 1.0 / 3, 1e-7) && near(m.recall, 1, 1e-7), "aaa/a P %g R %g", m.precision, m.recall);
    /* UTF-8 counts code points: "café" vs "cafe" -> 3 of 4 */
    m = locus_text_compare("caf\xc3\xa9", "cafe");
    CHECK(near(m.precision, 0.75, 1e-7) && m.levenshtein == 1, "café/cafe P %g lev %d", m.precision, m.levenshtein);
    CHECK(locus_levenshtein("kitten", "sitting") == 3 && locus_levenshtein("", "abc") == 3 && locus_levenshtein("flaw", "lawn") == 2,
          "Levenshtein kitten/sitting %d", locus_levenshtein("kitten", "sitting"));
    CHECK(near(locus_f1(0.5, 0.25), 0.25 / (0.75 + 1e-6), 1e-15) && locus_f1(0, 0) == 0, "F1(0.5,0.25) = %.9g (the authors' 2PR/(P+R+1e-6))", locus_f1(0.5, 0.25));

    /* The paper's OCR-F1 of a perfect reading of word A scored against an unrelated word B (a derangement):
     * English letters overlap, so the baseline is far from 0 — about 0.2-0.3. */
    static const char *words[] = {"hello", "world", "coffee", "open", "closed", "sale", "welcome", "stop", "danger", "exit",
                                  "pizza", "books", "music", "garden", "river", "school", "market", "bakery", "hotel", "station"};
    int n = sizeof words / sizeof *words;
    double sp = 0, sr = 0;
    for (int i = 0; i < n; i++) {
        locus_text_metrics t = locus_text_compare(words[i], words[(i + 7) % n]);
        sp += t.precision;
        sr += t.recall;
    }
    double f1 = locus_f1(sp / n, sr / n);
    printf("bag-of-characters OCR-F1 of %d words against unrelated ones: %.3f (paper: about 0.2-0.3)\n", n, f1);
    CHECK(f1 > 0.2 && f1 < 0.3, "unrelated-word OCR-F1 %.3f outside 0.2-0.3", f1);
}

static void test_image_metrics(void) {
    uint8_t a[3 * 4] = {0, 10, 200, 255, 0, 7, 1, 2, 3, 100, 100, 100};
    uint8_t b[3 * 4] = {0, 20, 190, 0, 255, 7, 1, 2, 3, 100, 100, 116};
    /* true MSE: (100 + 100 + 65025 + 65025 + 256) / 12 */
    double mse = locus_mse_u8(a, b, 2, 2), want = (100 + 100 + 65025 + 65025 + 256) / 12.0;
    CHECK(near(mse, want, 1e-9), "MSE %g expected %g", mse, want);
    /* uint8 wrap: d = (a-b) mod 256 -> 246, 10, 255, 1, 240; d*d mod 256 -> 100, 100, 1, 1, 0 */
    double w = locus_mse_u8_wrap(a, b, 2, 2), wwant = (100 + 100 + 1 + 1 + 0) / 12.0;
    CHECK(near(w, wwant, 1e-9), "uint8-wrap MSE %g expected %g", w, wwant);
    CHECK(near(locus_psnr(want), 20 * log10(255) - 10 * log10(want), 1e-9) && near(locus_psnr(0), 20 * log10(255) + 100, 1e-9),
          "PSNR %g", locus_psnr(want));
    /* unrelated random images: true MSE about 2 * 255^2 / 12 * (1 + 2/255) ~ 10922, wrap MSE ~ 105.5 */
    int H = 64, W = 64;
    size_t n = (size_t)H * W * 3;
    uint8_t *x = malloc(n), *y = malloc(n);
    for (size_t i = 0; i < n; i++) {
        x[i] = (uint8_t)(locus_hash_uniform(1, i) * 256);
        y[i] = (uint8_t)(locus_hash_uniform(2, i) * 256);
    }
    double wr = locus_mse_u8_wrap(x, y, H, W), tr = locus_mse_u8(x, y, H, W);
    printf("unrelated random 64x64 images: uint8-wrap MSE %.1f (paper's artefact, expected ~105), true MSE %.0f (~10923)\n", wr, tr);
    CHECK(wr > 100 && wr < 111, "uint8-wrap MSE %g not about 105", wr);
    CHECK(tr > 10500 && tr < 11300, "true MSE %g not about 10923", tr);
    /* SSIM: identical -> 1; unrelated noise -> about 0; two flat images a, b -> (2ab + C1) / (a^2 + b^2 + C1) */
    double s1 = locus_ssim_u8(x, x, H, W), s0 = locus_ssim_u8(x, y, H, W);
    CHECK(near(s1, 1, 1e-12), "SSIM(x, x) = %.15g", s1);
    CHECK(fabs(s0) < 0.05, "SSIM of unrelated noise %g", s0);
    memset(x, 100, n);
    memset(y, 150, n);
    double C1 = 2.55 * 2.55, sf = locus_ssim_u8(x, y, H, W), swant = (2 * 100.0 * 150 + C1) / (100.0 * 100 + 150.0 * 150 + C1);
    CHECK(near(sf, swant, 1e-12), "SSIM of flat 100 vs 150: %.12g expected %.12g", sf, swant);
    CHECK(locus_ssim_u8(x, y, 8, 8) == -2, "SSIM on an image smaller than the window must be refused");
    printf("SSIM: identical %.6f, unrelated noise %.4f, flat 100 vs 150 %.6f (expected %.6f)\n", s1, s0, sf, swant);
    free(x);
    free(y);
}

static void test_font_and_ocr(void) {
    locus_canvas c;
    CHECK(locus_canvas_new(&c, 480, 120) == LOCUS_OK, "canvas");
    int wd = locus_draw_text(&c, 20, 30, 6, 0x000000, "hello world");
    CHECK(wd == 11 * 36 && locus_text_width("hello world", 6) == 11 * 36 - 6, "text width %d", wd);
    /* 'H' top row is columns 0 and 4 set */
    CHECK(c.px[(30 * 480 + 20) * 3] == 0 && c.px[(30 * 480 + 20 + 6) * 3] == 255 && c.px[(30 * 480 + 20 + 24) * 3] == 0, "glyph H pixels");
    locus_ocr *o;
    if (locus_ocr_open(&o) != LOCUS_OK) {
        CHECK(0, "%s", locus_errmsg());
        locus_canvas_free(&c);
        return;
    }
    char *t = locus_ocr_read(o, c.px, c.w, c.h);
    printf("OCR of 'HELLO WORLD' drawn with the 5x7 font: '%s'\n", t ? t : "(error)");
    CHECK(t && !strcmp(t, "hello world"), "tesseract read '%s', expected 'hello world'", t ? t : "(null)");
    free(t);
    locus_canvas_free(&c);
    CHECK(locus_canvas_new(&c, 64, 64) == LOCUS_OK, "canvas");
    t = locus_ocr_read(o, c.px, c.w, c.h);
    CHECK(t && !strcmp(t, ""), "OCR of a blank image: '%s'", t ? t : "(null)");
    free(t);
    locus_canvas_free(&c);
    locus_ocr_close(o);
}

int main(void) {
    test_bag_of_chars();
    test_image_metrics();
    test_font_and_ocr();
    return t_finish("metrics");
}
