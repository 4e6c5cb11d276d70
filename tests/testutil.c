/* testutil.c — shared test helpers (see testutil.h). */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "../core/rng.h"

int t_passed, t_failed;

int t_finish(const char *suite) {
    printf("%s: %d passed, %d failed\n", suite, t_passed, t_failed);
    return t_failed || !t_passed ? 1 : 0;
}

double t_maxdiff(const float *a, const float *b, size_t n, double *maxref) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || d != d) md = d;
        if (fabs(b[i]) > mr) mr = fabs(b[i]);
    }
    if (maxref) *maxref = mr;
    return md;
}

size_t t_bitdiff(const float *a, const float *b, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += memcmp(&a[i], &b[i], 4) != 0;
    return c;
}

void t_fill(float *x, size_t n, uint64_t seed, float lo, float hi) { locus_fill_uniform(seed, x, n, lo, hi); }

int close_enough(const float *got, const double *want, size_t n, double rtol, const char *what) {
    double md = 0, mr = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        if (!(d <= md)) md = d;
        if (fabs(want[i]) > mr) mr = fabs(want[i]);
    }
    int ok = md <= rtol * mr;
    if (!ok) fprintf(stderr, "  %s: max|diff| %.3g > %.3g (max|ref| %.3g)\n", what, md, rtol * mr, mr);
    return ok;
}
