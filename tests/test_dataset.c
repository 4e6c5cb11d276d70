/* test_dataset.c — the pieces of `locus dataset signs` (experiments/dataset*.c): the libm-free sin/cos of the
 * rotation, caption templates, word-list validation, the committed vocabulary (zoo/words/words-1000.txt),
 * and the FreeType renderer (colours where they must be, text drawn inside the board, same bytes twice,
 * rotation keeps the ink inside the rotated board box).  The end-to-end checks (files, determinism across
 * threads, OCR round trip) are in tests/dataset_test.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "../experiments/dataset.h"
#include "testutil.h"

static void test_sincos(void) {
    double worst = 0;
    for (int a = -450; a <= 450; a++) {
        double s, c, x = a * (M_PI / 1800.0);
        locus_sincos_ddeg(a, &s, &c);
        double e = fmax(fabs(s - sin(x)), fabs(c - cos(x)));
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-15, "sin/cos polynomials vs libm over -45..45 degrees: max error %.3g (want < 1e-15)", worst);
    printf("  sincos: max |error| vs libm %.3g over 901 angles\n", worst);
    int bw, bh;
    locus_sign_rotated_box(64 * 100, 64 * 20, 0, &bw, &bh);
    CHECK(bw >= 6400 && bw <= 6401 && bh >= 1280 && bh <= 1281, "unrotated box %dx%d", bw, bh);
    locus_sign_rotated_box(64 * 100, 64 * 20, 300, &bw, &bh); /* 30 degrees: 100 cos + 20 sin = 96.6, 100 sin + 20 cos = 67.3 */
    CHECK(fabs(bw / 64.0 - 96.60) < 0.05 && fabs(bh / 64.0 - 67.32) < 0.05, "30-degree box %.2f x %.2f (want 96.60 x 67.32)", bw / 64.0, bh / 64.0);
}

static void test_captions(void) {
    char *c = locus_signs_caption("A {color} sign that says \"{word}\".", "OPEN", "red", "white", "gray", "on the left");
    CHECK(c && !strcmp(c, "A red sign that says \"OPEN\"."), "caption '%s'", c ? c : "(null)");
    free(c);
    c = locus_signs_caption("A {color} sign {position} with {text} letters on a {background} wall: \"{word}\"", "STOP", "orange", "black", "beige", "on the left");
    CHECK(c && !strcmp(c, "An orange sign on the left with black letters on a beige wall: \"STOP\""), "caption with an article '%s'", c ? c : "(null)");
    free(c);
    c = locus_signs_caption("The word \"{word}\" on a {color} board.", "EXIT", "blue", "white", "navy", "in the middle");
    CHECK(c && !strcmp(c, "The word \"EXIT\" on a blue board."), "caption '%s'", c ? c : "(null)");
    free(c);
    c = locus_signs_caption("Data {word} {colour}", "A", "red", "white", "gray", "x");
    CHECK(!c && strstr(locus_errmsg(), "unknown placeholder {colour}"), "unknown placeholder: '%s'", locus_errmsg());
    free(c);
    c = locus_signs_caption("A {color} sign.", "A", "red", "white", "gray", "x");
    CHECK(!c && strstr(locus_errmsg(), "has no {word}"), "template without {word}: '%s'", locus_errmsg());
    free(c);
}

static void test_words(const char *tmp) {
    char path[512];
    char **w;
    int n;
    snprintf(path, sizeof path, "%s/w1.txt", tmp);
    const char *good = "# comment\n  open \n\nSTOP\nwi-fi\r\n";
    locus_write_atomic(path, good, strlen(good));
    CHECK(locus_signs_read_words(path, &w, &n) == LOCUS_OK && n == 3 && !strcmp(w[0], "open") && !strcmp(w[2], "wi-fi"), "word list parsing: %d words", n);
    for (int i = 0; i < n; i++) free(w[i]);
    free(w);
    const char *dup = "open\nstop\nOpen\n";
    locus_write_atomic(path, dup, strlen(dup));
    CHECK(locus_signs_read_words(path, &w, &n) == LOCUS_E_FORMAT && strstr(locus_errmsg(), ":3: duplicate word 'Open' (first on line 1)"), "duplicate: %s", locus_errmsg());
    const char *badc = "open\nca fe\n";
    locus_write_atomic(path, badc, strlen(badc));
    CHECK(locus_signs_read_words(path, &w, &n) == LOCUS_E_FORMAT && strstr(locus_errmsg(), ":2: 'ca fe' is not a word"), "bad word: %s", locus_errmsg());
    CHECK(locus_signs_read_words("/nonexistent/words.txt", &w, &n) == LOCUS_E_NOTFOUND && strstr(locus_errmsg(), "words file /nonexistent/words.txt not found"),
          "missing file: %s", locus_errmsg());

    /* the committed vocabulary: >= 1000 words of 3-8 lower-case letters, sorted, no duplicates */
    CHECK(locus_signs_read_words("zoo/words/words-1000.txt", &w, &n) == LOCUS_OK, "zoo/words/words-1000.txt: %s", locus_errmsg());
    int bad = 0, hist[9] = {0};
    for (int i = 0; i < n; i++) {
        size_t l = strlen(w[i]);
        int ok = l >= 3 && l <= 8 && (i == 0 || strcmp(w[i - 1], w[i]) < 0);
        for (size_t k = 0; k < l; k++) ok &= w[i][k] >= 'a' && w[i][k] <= 'z';
        bad += !ok;
        if (l <= 8) hist[l]++;
    }
    CHECK(n >= 1000 && bad == 0, "vocabulary: %d words, %d not 3-8 lower-case letters in sorted order", n, bad);
    printf("  vocabulary: %d words; lengths 3..8: %d %d %d %d %d %d\n", n, hist[3], hist[4], hist[5], hist[6], hist[7], hist[8]);
    for (int i = 0; i < n; i++) free(w[i]);
    free(w);
}

static const char *font_paths[] = {"/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf"};

static int same3(const uint8_t *p, const uint8_t c[3]) { return p[0] == c[0] && p[1] == c[1] && p[2] == c[2]; }

static void test_render(void) {
    locus_signr *r;
    if (locus_signr_open(&r, font_paths, 2) != LOCUS_OK) { CHECK(0, "renderer: %s", locus_errmsg()); return; }
    const int W = 128, H = 32;
    locus_sign_layout L = {.font = 0, .letter_px = 16, .xscale_milli = 1000, .padx = 4, .pady = 4, .radius = 3, .angle_ddeg = 0,
                           .cx64 = 64 * 64, .cy64 = 16 * 64, .sign = {120, 20, 25}, .text = {250, 250, 250},
                           .bg_top = {64, 66, 70}, .bg_bottom = {64, 66, 70}};
    int iw, ih, bw, bh;
    CHECK(locus_signr_measure(r, 0, "HI", 16, 1000, &iw, &ih) == LOCUS_OK && ih >= 16 * 64 - 2 && ih <= 16 * 64 + 2,
          "the cap height of 'HI' at 16 px is %.2f px", ih / 64.0);
    locus_signr_board(r, "OPEN", &L, &bw, &bh);
    uint8_t *a = malloc(W * H * 3), *b = malloc(W * H * 3);
    CHECK(locus_signr_draw(r, "OPEN", &L, a, W, H) == LOCUS_OK, "draw: %s", locus_errmsg());
    /* corners are background, the board's edge is board colour, letters are inside the board */
    CHECK(same3(a, L.bg_top) && same3(a + 3 * (W * H - 1), L.bg_bottom), "corners are background");
    int x0 = 64 - bw / 128, y0 = 16 - bh / 128; /* top-left of the board */
    CHECK(same3(a + 3 * ((y0 + 1) * W + x0 + 4), L.sign), "a pixel inside the board's edge has the board colour");
    int text = 0, outside = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *p = a + 3 * (y * W + x);
            if (p[0] > 200) { text++; outside += x < x0 || x >= 64 + bw / 128 || y < y0 || y >= 16 + bh / 128; }
        }
    CHECK(text > 60 && outside == 0, "letter pixels: %d, outside the board: %d", text, outside);
    CHECK(locus_signr_draw(r, "OPEN", &L, b, W, H) == LOCUS_OK && !memcmp(a, b, W * H * 3), "drawing twice gives the same bytes");
    /* a rotated sign: the ink stays within the rotated board's box, and differs from the upright one */
    L.angle_ddeg = 30;
    locus_signr_draw(r, "OPEN", &L, b, W, H);
    int rbw, rbh;
    locus_sign_rotated_box(bw, bh, 30, &rbw, &rbh);
    int far = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if (!same3(b + 3 * (y * W + x), L.bg_top) && (fabs(x + 0.5 - 64) > rbw / 128.0 + 1 || fabs(y + 0.5 - 16) > rbh / 128.0 + 1)) far++;
    CHECK(far == 0 && memcmp(a, b, W * H * 3), "rotated by 3 degrees: %d pixels outside the rotated box", far);
    /* a gradient background runs from top to bottom row */
    L.angle_ddeg = 0;
    L.bg_bottom[0] = 100;
    locus_signr_draw(r, "OPEN", &L, b, W, H);
    CHECK(b[0] == 64 && b[3 * W * (H - 1)] == 100 && b[3 * W * 15] > 64 && b[3 * W * 15] < 100, "gradient: top %d, row 15 %d, bottom %d", b[0], b[3 * W * 15], b[3 * W * (H - 1)]);
    /* the second font draws different letters */
    L.font = 1;
    L.bg_bottom[0] = 64;
    locus_signr_draw(r, "OPEN", &L, b, W, H);
    CHECK(memcmp(a, b, W * H * 3) != 0, "the second font changes the image");
    CHECK(locus_signr_measure(r, 0, "\x7f", 16, 1000, &iw, &ih) != LOCUS_OK && strstr(locus_errmsg(), "no glyph"), "missing glyph: %s", locus_errmsg());
    free(a);
    free(b);
    locus_signr_close(r);
    const char *missing[] = {"/nonexistent/font.ttf"};
    CHECK(locus_signr_open(&r, missing, 1) == LOCUS_E_NOTFOUND && strstr(locus_errmsg(), "/nonexistent/font.ttf"), "missing font: %s", locus_errmsg());
}

int main(void) {
    char tmp[] = "/tmp/locus_test_dataset_XXXXXX";
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    test_sincos();
    test_captions();
    test_words(tmp);
    test_render();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    return t_finish("test_dataset");
}
