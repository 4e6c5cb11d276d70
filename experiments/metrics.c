/* metrics.c — OCR text and image metrics of the localization experiment (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../models/unicode.h"

/* UTF-8 -> code points lower-cased as Python's str.lower() (full mappings through models/unicode.h: 'É' -> 'é',
 * 'İ' -> 'i' + U+0307, final sigma), as the authors lower-case both strings before comparing.  Each byte that
 * does not start a well-formed character becomes U+FFFD.  Returns the count; *out is malloc'd. */
static int decode(const char *s, uint32_t **out) {
    locus_ustr u = {0};
    locus_ustr_from_utf8(&u, s, strlen(s));
    locus_uc_lower(&u);
    uint32_t *cp = malloc((u.n + 1) * sizeof *cp);
    if (u.n) memcpy(cp, u.cp, u.n * sizeof *cp);
    int k = (int)u.n;
    locus_ustr_free(&u);
    *out = cp;
    return k;
}

/* Python's str.isspace() set (what str.strip() removes) */
static int is_space(uint32_t c) {
    return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* whitespace -> 0 (the empty piece), others kept; sorted copy for multiset operations */
static uint32_t *pieces_sorted(const uint32_t *c, int n) {
    uint32_t *s = malloc((size_t)(n + 1) * sizeof *s);
    for (int i = 0; i < n; i++) s[i] = is_space(c[i]) ? 0 : c[i];
    qsort(s, (size_t)n, sizeof *s, cmp_u32);
    return s;
}

int locus_levenshtein(const char *a, const char *b) {
    uint32_t *x, *y;
    int n = decode(a, &x), m = decode(b, &y);
    int *row = malloc((size_t)(m + 1) * sizeof *row);
    for (int j = 0; j <= m; j++) row[j] = j;
    for (int i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= m; j++) {
            int up = row[j];
            int best = diag + (x[i - 1] != y[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    int d = row[m];
    free(row); free(x); free(y);
    return d;
}

locus_text_metrics locus_text_compare(const char *ocr, const char *word) {
    locus_text_metrics r = {0};
    uint32_t *o, *w;
    int n = decode(ocr, &o), m = decode(word, &w);
    uint32_t *so = pieces_sorted(o, n), *sw = pieces_sorted(w, m);
    /* multiset intersection of the two sorted piece lists */
    int matched = 0;
    for (int i = 0, j = 0; i < n && j < m;) {
        if (so[i] == sw[j]) { matched++; i++; j++; }
        else if (so[i] < sw[j]) i++;
        else j++;
    }
    r.precision = matched / (n + 1e-8);
    r.recall = matched / (m + 1e-8);
    /* acc: "".join(sorted(pieces)) equal — the empty pieces (whitespace) vanish from the join */
    int io = 0, iw = 0;
    while (io < n && so[io] == 0) io++;
    while (iw < m && sw[iw] == 0) iw++;
    r.acc = n - io == m - iw && !memcmp(so + io, sw + iw, (size_t)(n - io) * sizeof *so);
    /* exact: trimmed strings equal */
    int a0 = 0, a1 = n, b0 = 0, b1 = m;
    while (a0 < a1 && is_space(o[a0])) a0++;
    while (a1 > a0 && is_space(o[a1 - 1])) a1--;
    while (b0 < b1 && is_space(w[b0])) b0++;
    while (b1 > b0 && is_space(w[b1 - 1])) b1--;
    r.exact = a1 - a0 == b1 - b0 && !memcmp(o + a0, w + b0, (size_t)(a1 - a0) * sizeof *o);
    r.levenshtein = locus_levenshtein(ocr, word);
    free(o); free(w); free(so); free(sw);
    return r;
}

double locus_f1(double p, double r) { return 2 * p * r / (p + r + 1e-6); }

double locus_mse_u8(const uint8_t *a, const uint8_t *b, int H, int W) {
    size_t n = (size_t)H * W * 3;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return n ? s / n : 0;
}

double locus_mse_u8_wrap(const uint8_t *a, const uint8_t *b, int H, int W) {
    size_t n = (size_t)H * W * 3;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t d = (uint8_t)(a[i] - b[i]);
        s += (uint8_t)(d * d);
    }
    return n ? s / n : 0;
}

double locus_psnr(double mse) {
    if (mse < 1e-10) mse = 1e-10;
    return 20 * log10(255.0) - 10 * log10(mse);
}

/* 11-tap Gaussian, sigma 1.5, normalized (pytorch_msssim's _fspecial_gauss_1d) */
#define WIN 11
static void gauss(double g[WIN]) {
    double s = 0;
    for (int i = 0; i < WIN; i++) {
        double c = i - WIN / 2;
        g[i] = exp(-(c * c) / (2 * 1.5 * 1.5));
        s += g[i];
    }
    for (int i = 0; i < WIN; i++) g[i] /= s;
}

/* valid separable filter of a H x W plane: H-direction first, then W (as pytorch_msssim's gaussian_filter) */
static void filt(const double *x, int H, int W, const double *g, double *tmp, double *out) {
    int oh = H - WIN + 1, ow = W - WIN + 1;
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < W; j++) {
            double s = 0;
            for (int k = 0; k < WIN; k++) s += g[k] * x[(size_t)(i + k) * W + j];
            tmp[(size_t)i * W + j] = s;
        }
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            double s = 0;
            for (int k = 0; k < WIN; k++) s += g[k] * tmp[(size_t)i * W + j + k];
            out[(size_t)i * ow + j] = s;
        }
}

double locus_ssim_u8(const uint8_t *a, const uint8_t *b, int H, int W) {
    if (H < WIN || W < WIN) return -2;
    double g[WIN];
    gauss(g);
    const double C1 = (0.01 * 255) * (0.01 * 255), C2 = (0.03 * 255) * (0.03 * 255);
    size_t np = (size_t)H * W, no = (size_t)(H - WIN + 1) * (W - WIN + 1);
    double *x = malloc(np * sizeof(double)), *y = malloc(np * sizeof(double)), *xx = malloc(np * sizeof(double)),
           *yy = malloc(np * sizeof(double)), *xy = malloc(np * sizeof(double)), *tmp = malloc(np * sizeof(double));
    double *f[5];
    for (int i = 0; i < 5; i++) f[i] = malloc(no * sizeof(double));
    double total = 0;
    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < np; i++) {
            x[i] = a[i * 3 + c];
            y[i] = b[i * 3 + c];
            xx[i] = x[i] * x[i];
            yy[i] = y[i] * y[i];
            xy[i] = x[i] * y[i];
        }
        filt(x, H, W, g, tmp, f[0]);
        filt(y, H, W, g, tmp, f[1]);
        filt(xx, H, W, g, tmp, f[2]);
        filt(yy, H, W, g, tmp, f[3]);
        filt(xy, H, W, g, tmp, f[4]);
        double s = 0;
        for (size_t i = 0; i < no; i++) {
            double m1 = f[0][i], m2 = f[1][i];
            double s1 = f[2][i] - m1 * m1, s2 = f[3][i] - m2 * m2, s12 = f[4][i] - m1 * m2;
            double cs = (2 * s12 + C2) / (s1 + s2 + C2);
            s += (2 * m1 * m2 + C1) / (m1 * m1 + m2 * m2 + C1) * cs;
        }
        total += s / no;
    }
    free(x); free(y); free(xx); free(yy); free(xy); free(tmp);
    for (int i = 0; i < 5; i++) free(f[i]);
    return total / 3;
}
