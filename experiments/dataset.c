/* dataset.c — `locus dataset signs`: the synthetic signs data set (see dataset.h): the word list and its
 * train/test split, fonts, colour palettes and caption templates, the per-image plan drawn from the
 * counter-based RNG, the parallel image loop and the metadata files.
 *
 * Randomness: draw k of image i is locus_hash_uniform(seed, i * 256 + k) — a fixed draw number per attribute,
 * so adding an attribute later does not move the others; the word order uses counters with the top bit set.
 * Nothing depends on which thread renders an image.
 */
#include "dataset.h"

#include <assert.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../core/hash.h"
#include "../core/jsonw.h"
#include "../core/png.h"
#include "../core/rng.h"
#include "../core/strbuf.h"
#include "../core/version.h"
#include "../simd/kernels.h"
#include "progress.h"

/* ---- fonts ---- */

typedef struct { const char *name, *path, *package; } font_entry;
static const font_entry builtin_fonts[] = {
    {"dejavu-sans-bold", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "fonts-dejavu-core"},
    {"dejavu-serif-bold", "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf", "fonts-dejavu-core"},
    {"dejavu-mono-bold", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", "fonts-dejavu-core"},
    {"dejavu-sans", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "fonts-dejavu-core"},
    {"liberation-sans-bold", "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf", "fonts-liberation2"},
    {"liberation-serif-bold", "/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf", "fonts-liberation2"},
    {"liberation-mono-bold", "/usr/share/fonts/truetype/liberation2/LiberationMono-Bold.ttf", "fonts-liberation2"},
};
#define NBUILTIN ((int)(sizeof builtin_fonts / sizeof *builtin_fonts))
#define DEFAULT_FONTS "dejavu-sans-bold,dejavu-serif-bold,liberation-sans-bold"
#define MAX_FONTS 16

/* --fonts LIST -> names and paths (built-in names or paths to font files, which must exist). */
static locus_status resolve_fonts(const char *list, char names[][128], const char **paths, char pathbuf[][512], int *n) {
    *n = 0;
    const char *s = list;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || len >= 128) return locus_fail(LOCUS_E_ARG, "--fonts '%s': empty or overlong font name", list);
        if (*n == MAX_FONTS) return locus_fail(LOCUS_E_ARG, "--fonts: at most %d fonts", MAX_FONTS);
        memcpy(names[*n], s, len);
        names[*n][len] = 0;
        const font_entry *f = NULL;
        for (int i = 0; i < NBUILTIN && !f; i++) f = strcmp(builtin_fonts[i].name, names[*n]) ? NULL : &builtin_fonts[i];
        if (f) {
            snprintf(pathbuf[*n], 512, "%s", f->path);
            if (access(f->path, R_OK)) return locus_fail(LOCUS_E_NOTFOUND, "font %s not found: %s (install the Debian package %s)", f->name, f->path, f->package);
        } else if (strchr(names[*n], '/') || strstr(names[*n], ".tt") || strstr(names[*n], ".ot")) {
            snprintf(pathbuf[*n], 512, "%s", names[*n]);
            if (access(pathbuf[*n], R_OK)) return locus_fail(LOCUS_E_NOTFOUND, "font not found: %s", pathbuf[*n]);
        } else {
            locus_strbuf known = {0};
            for (int i = 0; i < NBUILTIN; i++) locus_sb_printf(&known, "%s%s", i ? ", " : "", builtin_fonts[i].name);
            locus_status st = locus_fail(LOCUS_E_ARG, "font '%s' not found (known: %s; or a path to a .ttf/.otf file)", names[*n], locus_sb_str(&known));
            locus_sb_free(&known);
            return st;
        }
        paths[*n] = pathbuf[*n];
        (*n)++;
        s += len + (e ? 1 : 0);
    }
    if (!*n) return locus_fail(LOCUS_E_ARG, "--fonts: no font given");
    return LOCUS_OK;
}

/* ---- colours ----
 * Tesseract (the OCR of `locus localize`) binarizes each colour channel with Otsu's threshold and finds text as
 * connected components; it reads nothing when the board lands on the other side of the threshold from the
 * background (the letters become holes in a board-shaped blob) or when a frame encloses the letters (both
 * measured: docs/DATASET.md).  So every image has one polarity: a dark board with white letters on a dark
 * background, or a light board with dark letters on a light background; the board differs from the
 * background in colour, not in brightness. */

typedef struct { const char *name; uint8_t rgb[3]; int dark; } named_colour;
enum { T_WHITE, T_BLACK };
static const named_colour text_colours[] = {{"white", {250, 250, 250}, 0}, {"black", {20, 20, 20}, 1}};
typedef struct { const char *name; uint8_t rgb[3]; int dark; signed char texts[3]; } sign_colour; /* texts: -1 ends */
static const sign_colour sign_rgb[] = { /* muted: in every channel the letters stand >= 110 apart from board and background */
    {"red", {120, 20, 25}, 1, {T_WHITE, -1}},    {"green", {20, 95, 45}, 1, {T_WHITE, -1}},
    {"blue", {20, 40, 110}, 1, {T_WHITE, -1}},   {"purple", {80, 30, 95}, 1, {T_WHITE, -1}},
    {"black", {28, 28, 30}, 1, {T_WHITE, -1}},   {"gray", {95, 95, 100}, 1, {T_WHITE, -1}},
    {"brown", {100, 60, 30}, 1, {T_WHITE, -1}},  {"white", {244, 244, 240}, 0, {T_BLACK, -1}},
    {"yellow", {250, 230, 140}, 0, {T_BLACK, -1}}, {"orange", {250, 195, 140}, 0, {T_BLACK, -1}},
    {"pink", {245, 175, 195}, 0, {T_BLACK, -1}},
};
static const sign_colour sign_gray[] = {
    {"black", {25, 25, 25}, 1, {T_WHITE, -1}}, {"dark gray", {85, 85, 85}, 1, {T_WHITE, -1}},
    {"light gray", {200, 200, 200}, 0, {T_BLACK, -1}}, {"white", {245, 245, 245}, 0, {T_BLACK, -1}},
};
static const named_colour bg_rgb[] = {
    {"white", {238, 238, 235}, 0}, {"light gray", {196, 198, 200}, 0}, {"beige", {222, 205, 170}, 0},
    {"light blue", {170, 200, 228}, 0}, {"pale green", {185, 214, 170}, 0}, {"dark gray", {64, 66, 70}, 1},
    {"navy", {30, 40, 70}, 1}, {"dark green", {40, 70, 45}, 1}, {"brick", {120, 50, 40}, 1},
};
static const named_colour bg_gray[] = {
    {"white", {235, 235, 235}, 0}, {"light gray", {175, 175, 175}, 0}, {"dark gray", {60, 60, 60}, 1}, {"black", {10, 10, 10}, 1},
};
#define NELEM(a) ((int)(sizeof(a) / sizeof *(a)))

/* the largest difference in one channel: boards further than 75 from the background in some channel are
 * separated from it by tesseract's per-channel thresholds (measured, docs/DATASET.md) */
static int channel_dist(const uint8_t a[3], const uint8_t b[3]) {
    int d = 0;
    for (int c = 0; c < 3; c++) {
        int x = a[c] > b[c] ? a[c] - b[c] : b[c] - a[c];
        if (x > d) d = x;
    }
    return d;
}

static int colour_dist(const uint8_t a[3], const uint8_t b[3]) {
    int d = 0;
    for (int c = 0; c < 3; c++) d += a[c] > b[c] ? a[c] - b[c] : b[c] - a[c];
    return d;
}

/* ---- captions ---- */

static const char *default_templates[] = {
    "A {color} sign that says \"{word}\".",
    "The word \"{word}\" on a {color} board.",
    "A sign that says \"{word}\".",
    "A {color} sign with {text} letters that says \"{word}\".",
    "\"{word}\" in {text} letters on a {color} sign.",
    "A {color} sign {position} that says \"{word}\".",
    "A {color} sign on a {background} wall that reads \"{word}\".",
    "The text \"{word}\" on a {color} sign {position}, {background} background.",
};

char *locus_signs_caption(const char *tmpl, const char *word, const char *color, const char *text,
                          const char *background, const char *position) {
    static const char *keys[] = {"{word}", "{color}", "{text}", "{background}", "{position}"};
    const char *vals[] = {word, color, text, background, position};
    locus_strbuf b = {0};
    int have_word = 0;
    for (const char *s = tmpl; *s;) {
        if (*s != '{') { locus_sb_putn(&b, s, 1); s++; continue; }
        int k = 0;
        while (k < 5 && strncmp(s, keys[k], strlen(keys[k]))) k++;
        if (k == 5) {
            const char *e = strchr(s, '}');
            int len = e ? (int)(e - s + 1) : (int)strlen(s);
            locus_fail(LOCUS_E_ARG, "template '%s': unknown placeholder %.*s (known: {word} {color} {text} {background} {position})", tmpl, len, s);
            locus_sb_free(&b);
            return NULL;
        }
        have_word |= k == 0;
        /* "A {color}" before a vowel becomes "An ..." */
        const char *out = locus_sb_str(&b);
        size_t n = b.n;
        if (strchr("aeiouAEIOU", vals[k][0]) && n >= 2 && (out[n - 2] == 'A' || out[n - 2] == 'a') && out[n - 1] == ' ' && (n == 2 || out[n - 3] == ' ')) {
            b.n--;
            b.s[b.n] = 0;
            locus_sb_puts(&b, "n ");
        }
        locus_sb_puts(&b, vals[k]);
        s += strlen(keys[k]);
    }
    if (!have_word) {
        locus_fail(LOCUS_E_ARG, "template '%s' has no {word}", tmpl);
        locus_sb_free(&b);
        return NULL;
    }
    return locus_sb_take(&b);
}

/* ---- words ---- */

static void free_list(char **v, int n) {
    for (int i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

/* Lines of a text file, trimmed, without blanks and '#' comments; line numbers in *lineno (may be NULL). */
static locus_status read_lines(const char *path, const char *what, char ***out, int **lineno, int *n) {
    char *data;
    size_t len;
    *out = NULL;
    *n = 0;
    if (lineno) *lineno = NULL;
    locus_status st = locus_read_file(path, &data, &len);
    if (st == LOCUS_E_NOTFOUND) return locus_fail(st, "%s file %s not found", what, path);
    if (st) return st;
    int cap = 0, line = 0;
    char **v = NULL;
    int *ln = NULL;
    for (char *s = data; s && *s;) {
        char *e = strchr(s, '\n');
        if (e) *e = 0;
        line++;
        while (*s == ' ' || *s == '\t') s++;
        size_t l = strlen(s);
        while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r')) s[--l] = 0;
        if (l && *s != '#') {
            if (*n == cap) {
                cap = cap ? 2 * cap : 256;
                char **nv = realloc(v, (size_t)cap * sizeof *v);
                int *nl = realloc(ln, (size_t)cap * sizeof *ln);
                if (nv) v = nv;
                if (nl) ln = nl;
                if (!nv || !nl) { free(data); free_list(v, *n); free(ln); return locus_fail(LOCUS_E_NOMEM, "%s: out of memory", path); }
            }
            ln[*n] = line;
            v[(*n)++] = strdup(s);
        }
        s = e ? e + 1 : NULL;
    }
    free(data);
    *out = v;
    if (lineno) *lineno = ln;
    else free(ln);
    return LOCUS_OK;
}

/* qsort comparators over indices (ties: index order, so sorting is deterministic); sort_words / sort_keys
 * name the array being sorted (set just before qsort, single-threaded) */
static char **sort_words;
static const uint64_t *sort_keys;
static int cmp_word_idx(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b, c = strcasecmp(sort_words[i], sort_words[j]);
    return c ? c : (i > j) - (i < j);
}
static int cmp_key_idx(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_keys[i] != sort_keys[j]) return sort_keys[i] < sort_keys[j] ? -1 : 1;
    return (i > j) - (i < j);
}

locus_status locus_signs_read_words(const char *path, char ***words, int *n) {
    int *ln;
    locus_status st = read_lines(path, "words", words, &ln, n);
    if (st) return st;
    for (int i = 0; i < *n && !st; i++) {
        const char *w = (*words)[i];
        size_t l = strlen(w);
        int okc = l >= 1 && l <= 24;
        for (size_t k = 0; k < l && okc; k++)
            okc = (w[k] >= 'a' && w[k] <= 'z') || (w[k] >= 'A' && w[k] <= 'Z') || (w[k] >= '0' && w[k] <= '9') || w[k] == '-';
        if (!okc) st = locus_fail(LOCUS_E_FORMAT, "%s:%d: '%s' is not a word of 1-24 letters, digits or '-'", path, ln[i], w);
    }
    if (!st && *n == 0) st = locus_fail(LOCUS_E_FORMAT, "%s: no words", path);
    /* duplicates (case-insensitive): sort the indices by word, then the first line and the earliest repeat */
    int *idx = st ? NULL : malloc((size_t)*n * sizeof *idx);
    if (!st && !idx) st = locus_fail(LOCUS_E_NOMEM, "%s: out of memory", path);
    if (!st) {
        for (int i = 0; i < *n; i++) idx[i] = i;
        sort_words = *words;
        qsort(idx, (size_t)*n, sizeof *idx, cmp_word_idx);
        int rep = -1, first = -1;
        for (int i = 1; i < *n; i++)
            if (!strcasecmp((*words)[idx[i - 1]], (*words)[idx[i]]) && (rep < 0 || idx[i] < rep)) { rep = idx[i]; first = idx[i - 1]; }
        if (rep >= 0) {
            for (int i = 0; i < *n; i++) /* the first occurrence of that word */
                if (!strcasecmp((*words)[i], (*words)[rep])) { first = i; break; }
            st = locus_fail(LOCUS_E_FORMAT, "%s:%d: duplicate word '%s' (first on line %d)", path, ln[rep], (*words)[rep], ln[first]);
        }
    }
    free(idx);
    free(ln);
    if (st) { free_list(*words, *n); *words = NULL; *n = 0; }
    return st;
}

/* ---- the per-image plan ---- */

typedef struct {
    const locus_signs_opts *o;
    int nfonts, max_letter;
    const sign_colour *signs;
    int nsigns;
    const named_colour *bgs;
    int nbgs;
} plan_ctx;

typedef struct {
    locus_sign_layout L;
    const char *color, *text, *background, *position;
    int template_draw; /* index into the templates */
} image_plan;

static float u01(const plan_ctx *P, long long i, int k) { return locus_hash_uniform((uint64_t)P->o->seed, (uint64_t)i * 256u + (uint64_t)k); }
static int uint_in(const plan_ctx *P, long long i, int k, int lo, int hi) { /* uniform integer in [lo, hi] */
    int v = lo + (int)(u01(P, i, k) * (float)(hi - lo + 1));
    return v > hi ? hi : v;
}

/* Shrink the layout (letters, then width, padding, rotation) until the rotated board fits the image with a
 * 1-pixel margin.  LOCUS_E_ARG when it cannot. */
static locus_status fit(locus_signr *r, const plan_ctx *P, const char *word, locus_sign_layout *L, int *bw, int *bh) {
    const int W = P->o->width, H = P->o->height, aw = (W - 2) * 64, ah = (H - 2) * 64;
    for (int iter = 0; iter < 400; iter++) {
        int w, h;
        locus_status st = locus_signr_board(r, word, L, &w, &h);
        if (st) return st;
        locus_sign_rotated_box(w, h, L->angle_ddeg, bw, bh);
        if (*bw <= aw && *bh <= ah) return LOCUS_OK;
        double ratio = (double)aw / *bw < (double)ah / *bh ? (double)aw / *bw : (double)ah / *bh;
        if (L->letter_px > P->o->min_letter_px) {
            int nl = (int)(L->letter_px * ratio);
            L->letter_px = nl < L->letter_px ? (nl < P->o->min_letter_px ? P->o->min_letter_px : nl) : L->letter_px - 1;
        } else if (*bw > aw && L->xscale_milli > 700) {
            L->xscale_milli -= 20;
            if (L->xscale_milli < 700) L->xscale_milli = 700;
        } else if (L->padx > 1 && *bw > aw) L->padx--;
        else if (L->pady > 1) L->pady--;
        else if (L->angle_ddeg) L->angle_ddeg = L->angle_ddeg * 3 / 4;
        else if (L->padx > 1) L->padx--;
        else return locus_fail(LOCUS_E_ARG, "the word \"%s\" does not fit a %dx%d image with %d px letters in font %d (use a larger --size or a smaller --min-letter-px)",
                               word, W, H, P->o->min_letter_px, L->font + 1);
    }
    return locus_fail(LOCUS_E_ARG, "the word \"%s\" cannot be fitted", word);
}

static locus_status plan_image(locus_signr *r, const plan_ctx *P, long long i, const char *word, int ntemplates, image_plan *ip) {
    const locus_signs_opts *o = P->o;
    locus_sign_layout *L = &ip->L;
    memset(ip, 0, sizeof *ip);
    L->font = uint_in(P, i, 0, 0, P->nfonts - 1);
    const sign_colour *sc = &P->signs[uint_in(P, i, 1, 0, P->nsigns - 1)];
    int nt = 0;
    while (nt < (int)sizeof sc->texts && sc->texts[nt] >= 0) nt++;
    const named_colour *tc = &text_colours[sc->texts[uint_in(P, i, 2, 0, nt - 1)]];
    int cand[16], nc = 0; /* backgrounds of the board's polarity that differ from it */
    for (int t = 0; t < P->nbgs && nc < 16; t++)
        if (P->bgs[t].dark == sc->dark && colour_dist(P->bgs[t].rgb, sc->rgb) >= 60 && channel_dist(P->bgs[t].rgb, sc->rgb) <= 75) cand[nc++] = t;
    assert(nc > 0);
    const named_colour *bg = &P->bgs[cand[uint_in(P, i, 3, 0, nc - 1)]];
    int delta = uint_in(P, i, 4, -24, 24);
    for (int c = 0; c < 3; c++) {
        int v = bg->rgb[c] + (o->gray ? delta : delta * (c + 2) / 3);
        L->sign[c] = sc->rgb[c];
        L->text[c] = tc->rgb[c];
        L->bg_top[c] = bg->rgb[c];
        L->bg_bottom[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    L->letter_px = uint_in(P, i, 5, o->min_letter_px, P->max_letter);
    L->xscale_milli = uint_in(P, i, 6, 850, 1000);
    L->padx = uint_in(P, i, 7, 2 + L->letter_px / 8, 2 + L->letter_px / 2);
    L->pady = uint_in(P, i, 8, 2, 2 + L->letter_px / 4);
    L->radius = uint_in(P, i, 9, 0, (L->letter_px + 2 * L->pady) / 3);
    L->angle_ddeg = o->rotate ? uint_in(P, i, 11, -o->max_rotation_ddeg, o->max_rotation_ddeg) : 0;
    int bw, bh;
    locus_status st = fit(r, P, word, L, &bw, &bh);
    if (st) return st;
    int W64 = o->width * 64, H64 = o->height * 64;
    int xlo = 64 + (bw + 1) / 2, xhi = W64 - 64 - (bw + 1) / 2, ylo = 64 + (bh + 1) / 2, yhi = H64 - 64 - (bh + 1) / 2;
    L->cx64 = xhi > xlo && !o->centered ? uint_in(P, i, 12, xlo, xhi) : W64 / 2;
    L->cy64 = yhi > ylo && !o->centered ? uint_in(P, i, 13, ylo, yhi) : H64 / 2;
    ip->color = sc->name;
    ip->text = tc->name;
    ip->background = bg->name;
    ip->position = L->cx64 * 10 < 4 * W64 ? "on the left" : L->cx64 * 10 > 6 * W64 ? "on the right" : "in the middle";
    ip->template_draw = uint_in(P, i, 14, 0, ntemplates - 1);
    return LOCUS_OK;
}

/* ---- the data set ---- */

void locus_signs_defaults(locus_signs_opts *o) {
    memset(o, 0, sizeof *o);
    o->fonts = DEFAULT_FONTS;
    o->split = "all";
    o->n = 1000;
    o->width = 128;
    o->height = 32;
    o->rotate = 1;
    o->max_rotation_ddeg = 30;
    o->min_letter_px = 16;
    o->holdout = 0.1;
}

/* The split: words ranked by FNV-1a of (split seed, lower-cased word); the first K are the test words. */
static locus_status split_words(const locus_signs_opts *o, char **all, int n, char ***used, int *nused, int *k_out) {
    int k = o->holdout >= 1 ? (int)o->holdout : (int)(o->holdout * n + 0.5);
    int want_test = !strcmp(o->split, "test");
    *k_out = 0;
    if (!strcmp(o->split, "all")) k = 0;
    else if (!want_test && strcmp(o->split, "train")) return locus_fail(LOCUS_E_ARG, "--split '%s': expected all, train or test", o->split);
    else if (k < 1 || k >= n) return locus_fail(LOCUS_E_ARG, "--holdout %g: gives %d of %d words for the test split (need 1 to %d)", o->holdout, k, n, n - 1);
    uint64_t *key = malloc((size_t)n * sizeof *key);
    int *rank = malloc((size_t)n * sizeof *rank);
    *used = malloc((size_t)n * sizeof **used);
    if (!key || !rank || !*used) { free(key); free(rank); free(*used); return locus_fail(LOCUS_E_NOMEM, "dataset: out of memory"); }
    for (int i = 0; i < n; i++) {
        char low[32];
        size_t l = strlen(all[i]);
        for (size_t c = 0; c <= l; c++) low[c] = (char)(all[i][c] >= 'A' && all[i][c] <= 'Z' ? all[i][c] + 32 : all[i][c]);
        uint64_t s = (uint64_t)o->split_seed;
        key[i] = locus_fnv1a(locus_fnv1a(LOCUS_FNV_INIT, &s, sizeof s), low, l);
        rank[i] = i;
    }
    sort_keys = key; /* by key, ties in file order */
    qsort(rank, (size_t)n, sizeof *rank, cmp_key_idx);
    char *test = calloc((size_t)n, 1);
    if (!test) { free(key); free(rank); free(*used); *used = NULL; return locus_fail(LOCUS_E_NOMEM, "dataset: out of memory"); }
    for (int i = 0; i < k; i++) test[rank[i]] = 1;
    *nused = 0;
    for (int i = 0; i < n; i++)
        if (!k || test[i] == want_test) (*used)[(*nused)++] = all[i];
    free(key); free(rank); free(test);
    *k_out = k;
    return LOCUS_OK;
}

static int dir_is_empty_or_missing(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 1;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) && empty) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

static locus_status write_info(const locus_signs_opts *o, const char *ft_version, char fonts[][128], const char **paths, int nfonts,
                               const char **templates, int ntemplates, int nvocab, int nused, int k, int max_letter, uint64_t words_hash) {
    locus_strbuf b = {0};
    locus_jsonw w;
    char hex[32];
    locus_jw_init(&w, &b);
    locus_jw_object(&w, LOCUS_JW_BLOCK);
    locus_jw_key(&w, "generator"); locus_jw_str(&w, "locus dataset signs");
    locus_jw_key(&w, "locus_version"); locus_jw_str(&w, LOCUS_VERSION);
    locus_jw_key(&w, "freetype_version"); locus_jw_str(&w, ft_version);
    locus_jw_key(&w, "seed"); locus_jw_int(&w, o->seed);
    locus_jw_key(&w, "n"); locus_jw_int(&w, o->n);
    locus_jw_key(&w, "width"); locus_jw_int(&w, o->width);
    locus_jw_key(&w, "height"); locus_jw_int(&w, o->height);
    locus_jw_key(&w, "gray"); locus_jw_bool(&w, o->gray);
    locus_jw_key(&w, "centered"); locus_jw_bool(&w, o->centered);
    locus_jw_key(&w, "max_rotation_deg"); locus_jw_num(&w, o->rotate ? o->max_rotation_ddeg / 10.0 : 0.0);
    locus_jw_key(&w, "min_letter_px"); locus_jw_int(&w, o->min_letter_px);
    locus_jw_key(&w, "max_letter_px"); locus_jw_int(&w, max_letter);
    locus_jw_key(&w, "words_file"); locus_jw_str(&w, o->words_file);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)words_hash);
    locus_jw_key(&w, "words_fnv1a64"); locus_jw_str(&w, hex);
    locus_jw_key(&w, "vocabulary"); locus_jw_int(&w, nvocab);
    locus_jw_key(&w, "split"); locus_jw_str(&w, o->split);
    locus_jw_key(&w, "split_seed"); locus_jw_int(&w, o->split_seed);
    locus_jw_key(&w, "test_words"); locus_jw_int(&w, k);
    locus_jw_key(&w, "words"); locus_jw_int(&w, nused);
    locus_jw_key(&w, "fonts"); locus_jw_array(&w, LOCUS_JW_BLOCK);
    for (int i = 0; i < nfonts; i++) {
        char *data = NULL;
        size_t len = 0;
        locus_status st = locus_read_file(paths[i], &data, &len);
        if (st) { locus_sb_free(&b); return st; }
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)locus_fnv1a(LOCUS_FNV_INIT, data, len));
        free(data);
        locus_jw_object(&w, LOCUS_JW_INLINE);
        locus_jw_key(&w, "name"); locus_jw_str(&w, fonts[i]);
        locus_jw_key(&w, "path"); locus_jw_str(&w, paths[i]);
        locus_jw_key(&w, "fnv1a64"); locus_jw_str(&w, hex);
        locus_jw_end(&w);
    }
    locus_jw_end(&w);
    locus_jw_key(&w, "templates"); locus_jw_array(&w, LOCUS_JW_BLOCK);
    for (int i = 0; i < ntemplates; i++) locus_jw_str(&w, templates[i]);
    locus_jw_end(&w);
    locus_jw_end(&w);
    locus_sb_puts(&b, "\n");
    char path[4096];
    snprintf(path, sizeof path, "%s/dataset.json", o->out_dir);
    locus_status st = locus_sb_status(&b);
    if (!st) st = locus_write_atomic(path, b.s, b.n);
    locus_sb_free(&b);
    return st;
}

/* Image i shows words[order[i]]: each pass over the vocabulary is a fresh seeded permutation, so every word
 * appears floor(N/V) or ceil(N/V) times. */
static int *word_order(const locus_signs_opts *o, int V) {
    int *order = malloc((size_t)o->n * sizeof *order), *perm = malloc((size_t)V * sizeof *perm);
    if (!order || !perm) { free(order); free(perm); return NULL; }
    for (long long e = 0; e * V < o->n; e++) {
        for (int t = 0; t < V; t++) perm[t] = t;
        for (int t = V - 1; t > 0; t--) { /* Fisher-Yates */
            int j = (int)(locus_hash_uniform((uint64_t)o->seed, (1ull << 63) | (uint64_t)(e * V + t)) * (float)(t + 1));
            if (j > t) j = t;
            int x = perm[t]; perm[t] = perm[j]; perm[j] = x;
        }
        for (int t = 0; t < V && e * V + t < o->n; t++) order[e * V + t] = perm[t];
    }
    free(perm);
    return order;
}

locus_status locus_signs_generate(const locus_signs_opts *o) {
    if (!o->words_file) return locus_fail(LOCUS_E_ARG, "--words FILE is required");
    if (!o->out_dir) return locus_fail(LOCUS_E_ARG, "-o DIR is required");
    if (o->width < 32 || o->height < 16 || o->width > 4096 || o->height > 4096)
        return locus_fail(LOCUS_E_ARG, "bad --size %dx%d (width 32-4096, height 16-4096)", o->width, o->height);
    if (o->n < 1 || o->n > 100000000) return locus_fail(LOCUS_E_ARG, "bad --n %lld (1 to 100000000)", o->n);
    if (o->min_letter_px < 4 || o->min_letter_px > o->height) return locus_fail(LOCUS_E_ARG, "bad --min-letter-px %d (4 to the image height)", o->min_letter_px);
    if (o->max_letter_px && (o->max_letter_px < o->min_letter_px || o->max_letter_px > o->height))
        return locus_fail(LOCUS_E_ARG, "bad --max-letter-px %d (from --min-letter-px %d to the image height)", o->max_letter_px, o->min_letter_px);
    if (o->max_rotation_ddeg < 0 || o->max_rotation_ddeg > 150) return locus_fail(LOCUS_E_ARG, "bad --max-rotation (0 to 15 degrees)");

    char **all = NULL, **used = NULL, **upper = NULL, **tmpl_file = NULL, **captions = NULL;
    const char **templates = NULL;
    const char *paths[MAX_FONTS];
    char names[MAX_FONTS][128], pathbuf[MAX_FONTS][512], ftv[32] = "";
    int nall = 0, nused = 0, k = 0, nfonts = 0, ntemplates = 0, *order = NULL;
    locus_signr *r0 = NULL;
    locus_status st = locus_signs_read_words(o->words_file, &all, &nall);
    if (!st) st = split_words(o, all, nall, &used, &nused, &k);
    if (!st) st = resolve_fonts(o->fonts, names, paths, pathbuf, &nfonts);
    if (!st && o->templates_file) st = read_lines(o->templates_file, "templates", &tmpl_file, NULL, &ntemplates);
    if (!st && o->templates_file && !ntemplates) st = locus_fail(LOCUS_E_FORMAT, "%s: no templates", o->templates_file);
    if (!st) {
        if (!o->templates_file) ntemplates = NELEM(default_templates);
        templates = malloc((size_t)ntemplates * sizeof *templates);
        for (int i = 0; templates && i < ntemplates; i++) templates[i] = o->templates_file ? tmpl_file[i] : default_templates[i];
        for (int i = 0; templates && i < ntemplates && !st; i++) {
            char *c = locus_signs_caption(templates[i], "WORD", "red", "white", "gray", "in the middle");
            if (!c) st = LOCUS_E_ARG;
            free(c);
        }
        if (!templates) st = locus_fail(LOCUS_E_NOMEM, "dataset: out of memory");
    }
    if (!st) st = locus_signr_open(&r0, paths, nfonts);
    plan_ctx P = {o, nfonts, o->max_letter_px ? o->max_letter_px : o->height * 60 / 100,
                  o->gray ? sign_gray : sign_rgb, o->gray ? NELEM(sign_gray) : NELEM(sign_rgb), o->gray ? bg_gray : bg_rgb, o->gray ? NELEM(bg_gray) : NELEM(bg_rgb)};
    if (P.max_letter < o->min_letter_px) P.max_letter = o->min_letter_px;
    if (!st) {
        upper = calloc((size_t)nused, sizeof *upper);
        for (int i = 0; upper && i < nused && !st; i++) {
            if (!(upper[i] = strdup(used[i]))) st = locus_fail(LOCUS_E_NOMEM, "dataset: out of memory");
            for (char *c = upper[i]; c && *c; c++) if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 32);
        }
        /* every word must fit with every font at the smallest layout the planner can shrink to */
        for (int i = 0; upper && i < nused && !st; i++)
            for (int f = 0; f < nfonts && !st; f++) {
                locus_sign_layout L = {.font = f, .letter_px = o->min_letter_px, .xscale_milli = 1000, .padx = 2, .pady = 2};
                int bw, bh;
                st = fit(r0, &P, upper[i], &L, &bw, &bh);
                if (st == LOCUS_E_ARG) st = locus_fail(st, "the word \"%s\" does not fit a %dx%d image with %d px letters in font %s (use a larger --size or a smaller --min-letter-px)",
                                                      upper[i], o->width, o->height, o->min_letter_px, names[f]);
            }
        if (!upper) st = locus_fail(LOCUS_E_NOMEM, "dataset: out of memory");
        locus_signr_freetype_version(r0, ftv, sizeof ftv);
    }
    if (!st && !dir_is_empty_or_missing(o->out_dir)) st = locus_fail(LOCUS_E_ARG, "%s exists and is not empty (give a new directory)", o->out_dir);
    if (!st) st = locus_mkdir(o->out_dir);
    if (!st && !(order = word_order(o, nused))) st = locus_fail(LOCUS_E_NOMEM, "dataset: out of memory");
    if (!st && !(captions = calloc((size_t)o->n, sizeof *captions))) st = locus_fail(LOCUS_E_NOMEM, "dataset: out of memory");
    int digits = 5;
    for (long long m = 100000; m < o->n; m *= 10) digits++;

    /* the images, in parallel; the first error stops the loop */
    volatile int failed = 0;
    locus_status fail_st = LOCUS_OK;
    char fail_msg[1024] = "";
    long long done = 0;
    locus_progress prog;
    int show = !st && !o->quiet && o->n >= 200;
    if (show) locus_progress_start(&prog, "signs", (int)(o->n < 2000000000 ? o->n : 2000000000));
    if (!st)
#pragma omp parallel num_threads(locus_threads())
    {
        locus_signr *r = NULL;
        uint8_t *pix = malloc((size_t)o->width * o->height * 3);
        locus_status ts = pix ? locus_signr_open(&r, paths, nfonts) : locus_fail(LOCUS_E_NOMEM, "dataset: out of memory");
        if (ts) {
#pragma omp critical(signs_fail)
            if (!failed) { failed = 1; fail_st = ts; snprintf(fail_msg, sizeof fail_msg, "%s", locus_errmsg()); }
        }
#pragma omp for schedule(dynamic, 8)
        for (long long i = 0; i < o->n; i++) {
            if (failed) continue;
            image_plan ip;
            const char *word = upper[order[i]];
            char path[4096];
            ts = plan_image(r, &P, i, word, ntemplates, &ip);
            if (!ts) ts = locus_signr_draw(r, word, &ip.L, pix, o->width, o->height);
            char *cap = NULL;
            if (!ts && !(cap = locus_signs_caption(templates[ip.template_draw], word, ip.color, ip.text, ip.background, ip.position))) ts = LOCUS_E_ARG;
            if (!ts) { /* the metadata line: imagefolder's file_name and text, then what the image shows */
                locus_strbuf b = {0};
                locus_jsonw w;
                char name[64];
                snprintf(name, sizeof name, "%0*lld.png", digits, i);
                locus_jw_init(&w, &b);
                locus_jw_object(&w, LOCUS_JW_INLINE);
                locus_jw_key(&w, "file_name"); locus_jw_str(&w, name);
                locus_jw_key(&w, "text"); locus_jw_str(&w, cap);
                locus_jw_key(&w, "word"); locus_jw_str(&w, word);
                locus_jw_key(&w, "color"); locus_jw_str(&w, ip.color);
                locus_jw_key(&w, "text_color"); locus_jw_str(&w, ip.text);
                locus_jw_key(&w, "background"); locus_jw_str(&w, ip.background);
                locus_jw_key(&w, "position"); locus_jw_str(&w, ip.position);
                locus_jw_key(&w, "font"); locus_jw_str(&w, names[ip.L.font]);
                locus_jw_key(&w, "letter_px"); locus_jw_int(&w, ip.L.letter_px);
                locus_jw_key(&w, "rotation_deg"); locus_jw_num(&w, ip.L.angle_ddeg / 10.0);
                locus_jw_end(&w);
                locus_sb_puts(&b, "\n");
                if (!(captions[i] = locus_sb_take(&b))) ts = LOCUS_E_NOMEM;
            }
            free(cap);
            if (!ts) {
                if (o->gray)
                    for (int p = 0; p < o->width * o->height; p++) pix[p] = pix[3 * p];
                snprintf(path, sizeof path, "%s/%0*lld.png", o->out_dir, digits, i);
                ts = locus_png_write(path, pix, o->width, o->height, o->gray ? 1 : 3, NULL, 0);
            }
            if (ts) {
#pragma omp critical(signs_fail)
                if (!failed) { failed = 1; fail_st = ts; snprintf(fail_msg, sizeof fail_msg, "%s", locus_errmsg()); }
            }
            long long d;
#pragma omp atomic capture
            d = ++done;
            if (show && (d % 64 == 0 || d == o->n)) {
#pragma omp critical(signs_progress)
                locus_progress_update(&prog, (int)d);
            }
        }
        locus_signr_close(r);
        free(pix);
    }
    if (show) locus_progress_end(&prog);
    if (!st && failed) st = locus_fail(fail_st, "%s", fail_msg);

    /* metadata.jsonl (HF imagefolder), words.txt, dataset.json */
    if (!st) {
        locus_strbuf b = {0};
        for (long long i = 0; i < o->n; i++) locus_sb_puts(&b, captions[i]);
        char path[4096];
        snprintf(path, sizeof path, "%s/metadata.jsonl", o->out_dir);
        st = locus_sb_status(&b);
        if (!st) st = locus_write_atomic(path, b.s, b.n);
        locus_sb_free(&b);
        for (int i = 0; i < nused && !st; i++) locus_sb_printf(&b, "%s\n", used[i]);
        snprintf(path, sizeof path, "%s/words.txt", o->out_dir);
        if (!st) st = locus_sb_status(&b);
        if (!st) st = locus_write_atomic(path, b.s, b.n);
        uint64_t wh = LOCUS_FNV_INIT;
        for (int i = 0; i < nall; i++) { wh = locus_fnv1a(wh, all[i], strlen(all[i])); wh = locus_fnv1a(wh, "\n", 1); }
        if (!st) st = write_info(o, ftv, names, paths, nfonts, templates, ntemplates, nall, nused, k, P.max_letter, wh);
        locus_sb_free(&b);
    }
    if (!st && !o->quiet) fprintf(stderr, "dataset: %lld images of %d words (%s split) in %s\n", o->n, nused, o->split, o->out_dir);
    locus_signr_close(r0);
    for (long long i = 0; captions && i < o->n; i++) free(captions[i]);
    free(captions);
    free(order);
    free(templates);
    free_list(tmpl_file, ntemplates * (o->templates_file != NULL));
    free_list(upper, nused);
    free(used);
    free_list(all, nall);
    return st;
}
