/* kernels_bwd_check.h — the checking state of test_kernels_bwd.c (its only includer): buffers with guard
 * room, the double-reference comparison with a per-op-group worst error, and the hash records compared across
 * ISAs and thread counts.  Kept apart so the test file stays a list of op checks. */
#ifndef LOCUS_KERNELS_BWD_CHECK_H
#define LOCUS_KERNELS_BWD_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/hash.h"
#include "../simd/kernels.h"
#include "testutil.h"

static float *fbuf(size_t n) { float *p = locus_alloc((n + 17) * sizeof(float)); memset(p, 0, (n + 17) * sizeof(float)); return p; }
static float *frand(size_t n, uint64_t seed, float lo, float hi) { float *p = fbuf(n); t_fill(p, n, seed, lo, hi); return p; }
static float *fcopy(const float *x, size_t n) { float *p = fbuf(n); memcpy(p, x, n * sizeof(float)); return p; }
static double *dbuf(size_t n) { double *p = calloc(n + 1, sizeof(double)); return p; }

static int g_ref = 1;     /* compare with the double references (first thread count of every ISA) */
static double g_worst[32]; /* worst relative error per op group, printed at the end */
static const char *g_worst_name[32];

/* Norm input gradients cancel (g - mean(g) - xhat * mean(g xhat)): when the result is small against its terms
 * (rows of 1 or 2 elements), fp32 cannot do better than eps x the terms.  g_floor, when set, is that scale
 * (max over rows of rstd * max|g|) and is used as the denominator when it is larger than max|ref|. */
static double g_floor;

/* relative max error of got against want (+ optional start values added to want), recorded per group */
static double rel_err(const float *got, const double *want, const float *start, size_t n) {
    double md = 0, mr = g_floor > 1e-30 ? g_floor : 1e-30;
    for (size_t i = 0; i < n; i++) {
        double w = want[i] + (start ? start[i] : 0.0), d = fabs(got[i] - w);
        if (!(d <= md)) md = d;
        if (fabs(w) > mr) mr = fabs(w);
    }
    return md / mr;
}

static void check_rel(int group, const char *gname, const float *got, const double *want, const float *start, size_t n,
                      double tol, const char *what) {
    if (!g_ref) return;
    double e = rel_err(got, want, start, n);
    if (e > g_worst[group] || e != e) g_worst[group] = e;
    g_worst_name[group] = gname;
    CHECK(e <= tol, "%s %s: max|diff|/max|ref| %.3g > %.3g", what, locus_isa_name(), e, tol);
}

/* hashes of every output of a run, compared across ISAs and thread counts */
typedef struct { char name[64]; uint64_t h; } hrec;
static hrec g_h[4096];
static int g_nh;

static void rec(const char *name, const float *p, size_t n) {
    if (g_nh >= (int)(sizeof g_h / sizeof *g_h)) { fprintf(stderr, "too many hash records\n"); exit(1); }
    snprintf(g_h[g_nh].name, sizeof g_h[g_nh].name, "%s", name);
    g_h[g_nh++].h = locus_fnv1a(LOCUS_FNV_INIT, p, n * sizeof(float));
}

static int same_bits(const float *a, const float *b, size_t n) { return t_bitdiff(a, b, n) == 0; }

enum { G_LIN, G_COLSUM, G_CONV, G_ATTN, G_LN, G_RMS, G_GN, G_ACT, G_GEGLU, G_UP, G_MSE, G_COUNT };

#endif
