/* compare_cmd.c — `locus compare`: the image metrics of the paper (and of `locus localize`) between two images
 * or two folders of images, so that a number in a localization table can be checked by hand — e.g. how much
 * SSIM an edit that changes only the word can keep at all (a sign re-rendered with another word by
 * `locus dataset signs` with the same seed).
 *
 *   locus compare A.png B.png            one line: ssim, psnr (true MSE), mse, the paper's uint8-wrap mse
 *   locus compare DIR_A DIR_B            every *.png of DIR_A against the file of the same name in DIR_B, one
 *                                        line each, then the means
 * Same functions as localize (experiments/metrics.h): SSIM as pytorch_msssim (11-tap Gaussian, sigma 1.5).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/png.h"
#include "cli_opts.h"
#include "dataset.h"
#include "metrics.h"

static const locus_help compare_help = {
    "compare", "A.png B.png\nDIR_A DIR_B",
    "The paper's image metrics between two images, or between the same-named PNGs of two folders.",
    "Prints SSIM (pytorch_msssim: 11-tap Gaussian window, sigma 1.5, over RGB), PSNR and MSE (true), and the\n"
    "paper's MSE with uint8 wrap-around: the numbers `locus localize` reports; for folders, one line per image\n"
    "and the means.\n",
    NULL};

typedef struct {
    double ssim, psnr, mse, mse_wrap;
} pair_metrics;

/* 0 and the metrics, or 2 after one error line. */
static int compare_pair(const char *pa, const char *pb, pair_metrics *m) {
    uint8_t *a = NULL, *b = NULL;
    int wa, ha, wb, hb;
    if (locus_png_read_rgb(pa, &a, &wa, &ha) || locus_png_read_rgb(pb, &b, &wb, &hb)) {
        fprintf(stderr, "locus compare: %s\n", locus_errmsg());
        free(a);
        return 2;
    }
    int rc = 0;
    if (wa != wb || ha != hb) {
        fprintf(stderr, "locus compare: %s is %dx%d but %s is %dx%d\n", pa, wa, ha, pb, wb, hb);
        rc = 2;
    } else if ((m->ssim = locus_ssim_u8(a, b, ha, wa)) == -2) { /* metrics.h: smaller than the window */
        fprintf(stderr, "locus compare: %s: %dx%d is smaller than SSIM's 11x11 window\n", pa, wa, ha);
        rc = 2;
    } else {
        m->mse = locus_mse_u8(a, b, ha, wa);
        m->psnr = locus_psnr(m->mse);
        m->mse_wrap = locus_mse_u8_wrap(a, b, ha, wa);
    }
    free(a);
    free(b);
    return rc;
}

static void print_metrics(const char *label, const pair_metrics *m) {
    printf("%s\tssim %.4f\tpsnr %.2f\tmse %.3f\tmse_wrap %.3f\n", label, m->ssim, m->psnr, m->mse, m->mse_wrap);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int compare_dirs(const char *da, const char *db) {
    DIR *d = opendir(da);
    if (!d) {
        fprintf(stderr, "locus compare: cannot open folder %s\n", da);
        return 2;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".png")) continue;
        char **nn = n < cap ? names : realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *nn);
        if (nn) names = nn;
        if (!nn || !(names[n] = strdup(e->d_name))) {
            fprintf(stderr, "locus compare: out of memory listing %s\n", da);
            rc = 2;
        } else n++;
    }
    closedir(d);
    if (!rc && !n) {
        fprintf(stderr, "locus compare: no .png files in %s\n", da);
        rc = 2;
    }
    if (n) qsort(names, n, sizeof *names, by_name);
    pair_metrics sum = {0, 0, 0, 0};
    for (size_t i = 0; i < n && !rc; i++) {
        char pa[4096], pb[4096];
        snprintf(pa, sizeof pa, "%s/%s", da, names[i]);
        snprintf(pb, sizeof pb, "%s/%s", db, names[i]);
        pair_metrics m;
        if ((rc = compare_pair(pa, pb, &m))) break;
        print_metrics(names[i], &m);
        sum.ssim += m.ssim;
        sum.psnr += m.psnr;
        sum.mse += m.mse;
        sum.mse_wrap += m.mse_wrap;
    }
    if (!rc) {
        pair_metrics mean = {sum.ssim / n, sum.psnr / n, sum.mse / n, sum.mse_wrap / n};
        char label[64];
        snprintf(label, sizeof label, "mean of %zu", n);
        print_metrics(label, &mean);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int locus_cmd_compare(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            locus_help_print(stdout, &compare_help, NULL, 0, NULL, 0);
            return 0;
        }
    if (argc != 3) {
        fprintf(stderr, "locus compare: usage: locus compare A.png B.png | locus compare DIR_A DIR_B\n");
        return 2;
    }
    int da = locus_is_dir(argv[1]), db = locus_is_dir(argv[2]);
    if (da != db) {
        fprintf(stderr, "locus compare: %s and %s: give two images or two folders\n", argv[1], argv[2]);
        return 2;
    }
    if (da) return compare_dirs(argv[1], argv[2]);
    pair_metrics m;
    int rc = compare_pair(argv[1], argv[2], &m);
    if (!rc) print_metrics(argv[2], &m);
    return rc;
}
