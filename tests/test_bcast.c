/* test_bcast.c — the broadcast-row ops (locus_bcast_binary, locus_layer_norm_modulate, locus_bcast_gated_add,
 * locus_scale_shift_rows): against a double reference, and bit-equal to the per-row loops they replaced
 * (models/mmdit.c modulate/gated_add and the UNet resnet temb add as they were written before), for every
 * ISA table x 1/2/3 threads, at tile sizes, tails, misaligned and in place.  Their outputs are also in
 * test_kernels' hashed workload. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"
#include "testutil.h"


static float *fbuf(size_t n) { float *p = locus_alloc((n + 16) * sizeof(float)); memset(p, 0, (n + 16) * sizeof(float)); return p; }

/* ==== broadcast rows (locus_bcast_binary, locus_layer_norm_modulate, locus_bcast_gated_add,
 * locus_scale_shift_rows): against a double reference, and bit-equal to the per-row loops they replace
 * (models/mmdit.c modulate/gated_add and the UNet resnet temb add as they were written before) ==== */

/* G groups x R rows x n columns; rows*n >= 32768 makes the ops split rows across threads */
static const size_t bc_shapes[][3] = {
    {1, 1, 1}, {1, 3, 15}, {2, 3, 16}, {2, 5, 17}, {1, 4, 31}, {2, 2, 255}, {2, 3, 256}, {3, 2, 257},
    {2, 7, 1000}, {2, 40, 1000}, {2, 300, 257}, {1, 33, 4097},
};
#define NBCSHAPE (sizeof bc_shapes / sizeof *bc_shapes)

/* the per-row formulation: one locus_layer_norm, then per (group, row) MUL by 1 + scale and ADD shift */
static void bc_modulate_perrow(const float *x, float *y, size_t G, size_t R, size_t n, float eps, const float *sc, const float *sh, size_t es) {
    locus_layer_norm(x, y, G * R, n, NULL, NULL, eps);
    float *s1 = fbuf(n);
    for (size_t g = 0; g < G; g++) {
        for (size_t d = 0; d < n; d++) s1[d] = 1.0f + sc[g * es + d];
        for (size_t r = 0; r < R; r++) {
            float *yr = y + (g * R + r) * n;
            locus_binary(yr, s1, yr, n, LOCUS_BIN_MUL, 0.0f);
            locus_binary(yr, sh + g * es, yr, n, LOCUS_BIN_ADD, 0.0f);
        }
    }
    locus_free(s1);
}

/* h += gate * a per row, through a temporary product */
static void bc_gated_perrow(float *h, const float *a, const float *gate, size_t es, size_t G, size_t R, size_t n) {
    float *t = fbuf(n);
    for (size_t g = 0; g < G; g++)
        for (size_t r = 0; r < R; r++) {
            locus_binary(gate + g * es, a + (g * R + r) * n, t, n, LOCUS_BIN_MUL, 0.0f);
            locus_binary(h + (g * R + r) * n, t, h + (g * R + r) * n, n, LOCUS_BIN_ADD, 0.0f);
        }
    locus_free(t);
}

/* one shape under the active table and thread count: reference, per-row bit-equality, in place */
static void check_bcast_shape(size_t G, size_t R, size_t n) {
    size_t rows = G * R, N = rows * n, es = 3 * n + 1; /* AdaLN-like chunk stride, odd: misaligned rows */
    float *x = fbuf(N + 1) + 1, *h = fbuf(N + 1) + 1, *y = fbuf(N), *y2 = fbuf(N), *e = fbuf(G * es + 1) + 1; /* x, h misaligned */
    float *st = fbuf(rows), *tt = fbuf(rows);
    t_fill(x, N, 300 + n, -3, 3); t_fill(h, N, 301 + n, -2, 2); t_fill(e, G * es, 302 + n, -1.5f, 1.5f);
    t_fill(st, rows, 303, 0.5f, 1.5f); t_fill(tt, rows, 304, -1, 1);
    const float *shift = e, *scale = e + n, *gate = e + 2 * n;
    double *Rf = malloc(sizeof(double) * N);
    char what[128];
    const char *isa = locus_isa_name();
    int th = locus_threads();
    /* modulation: reference, per-row equality, in place */
    locus_layer_norm_modulate(x, y, G, R, n, 1e-6f, scale, shift, es);
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        size_t g = r / R;
        double m = 0, v = 0;
        for (size_t i = 0; i < n; i++) m += xr[i];
        m /= n;
        for (size_t i = 0; i < n; i++) v += (xr[i] - m) * (xr[i] - m);
        v /= n;
        for (size_t i = 0; i < n; i++) Rf[r * n + i] = (xr[i] - m) / sqrt(v + 1e-6) * (1.0 + scale[g * es + i]) + shift[g * es + i];
    }
    snprintf(what, sizeof what, "layer_norm_modulate %s threads=%d G=%zu R=%zu n=%zu", isa, th, G, R, n);
    CHECK(close_enough(y, Rf, N, 2e-5, what), "%s: reference", what);
    bc_modulate_perrow(x, y2, G, R, n, 1e-6f, scale, shift, es);
    CHECK(t_bitdiff(y, y2, N) == 0, "%s: %zu elements differ from the per-row loop", what, t_bitdiff(y, y2, N));
    memcpy(y, x, N * sizeof(float));
    locus_layer_norm_modulate(y, y, G, R, n, 1e-6f, scale, shift, es);
    CHECK(t_bitdiff(y, y2, N) == 0, "%s: in place differs", what);
    /* gated residual */
    memcpy(y, h, N * sizeof(float));
    locus_bcast_gated_add(y, x, gate, es, G, R, n);
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++) Rf[r * n + i] = h[r * n + i] + (double)gate[r / R * es + i] * x[r * n + i];
    snprintf(what, sizeof what, "bcast_gated_add %s threads=%d G=%zu R=%zu n=%zu", isa, th, G, R, n);
    CHECK(close_enough(y, Rf, N, 2e-6, what), "%s: reference", what);
    memcpy(y2, h, N * sizeof(float));
    bc_gated_perrow(y2, x, gate, es, G, R, n);
    CHECK(t_bitdiff(y, y2, N) == 0, "%s: %zu elements differ from the per-row loop", what, t_bitdiff(y, y2, N));
    /* generic broadcast binary, every op, out of place and in place */
    for (int op = LOCUS_BIN_ADD; op <= LOCUS_BIN_AXPY; op++) {
        locus_bcast_binary(x, e + 1, es, y, G, R, n, op, 2.5f);
        for (size_t r = 0; r < rows; r++) locus_binary(x + r * n, e + 1 + r / R * es, y2 + r * n, n, op, 2.5f);
        snprintf(what, sizeof what, "bcast_binary %d %s threads=%d G=%zu R=%zu n=%zu", op, isa, th, G, R, n);
        CHECK(t_bitdiff(y, y2, N) == 0, "%s: %zu elements differ from per-row locus_binary", what, t_bitdiff(y, y2, N));
        if (op == LOCUS_BIN_ADD || op == LOCUS_BIN_AXPY) {
            for (size_t i = 0; i < N; i++) Rf[i] = x[i] + (op == LOCUS_BIN_AXPY ? 2.5 : 1.0) * e[1 + i / n / R * es + i % n];
            CHECK(close_enough(y, Rf, N, 2e-6, what), "%s: reference", what);
        }
        memcpy(y, x, N * sizeof(float));
        locus_bcast_binary(y, e + 1, es, y, G, R, n, op, 2.5f);
        CHECK(t_bitdiff(y, y2, N) == 0, "%s: in place differs", what);
    }
    /* per-row scalars (s, t each present or NULL) */
    for (int v = 0; v < 4; v++) {
        const float *sv = v & 1 ? st : NULL, *tv = v & 2 ? tt : NULL;
        locus_scale_shift_rows(x, y, rows, n, sv, tv);
        for (size_t r = 0; r < rows; r++) locus_scale_shift(x + r * n, y2 + r * n, n, sv ? sv[r] : 1.0f, tv ? tv[r] : 0.0f);
        for (size_t i = 0; i < N; i++) Rf[i] = (double)x[i] * (sv ? sv[i / n] : 1.0) + (tv ? tv[i / n] : 0.0);
        snprintf(what, sizeof what, "scale_shift_rows %s threads=%d rows=%zu n=%zu s=%d t=%d", isa, th, rows, n, v & 1, v >> 1);
        CHECK(close_enough(y, Rf, N, 2e-6, what), "%s: reference", what);
        CHECK(t_bitdiff(y, y2, N) == 0, "%s: %zu elements differ from per-row locus_scale_shift", what, t_bitdiff(y, y2, N));
        memcpy(y, x, N * sizeof(float));
        locus_scale_shift_rows(y, y, rows, n, sv, tv);
        CHECK(t_bitdiff(y, y2, N) == 0, "%s: in place differs", what);
    }
    free(Rf);
    locus_free(x - 1); locus_free(h - 1); locus_free(y); locus_free(y2); locus_free(e - 1); locus_free(st); locus_free(tt);
}

static void check_bcast(void) {
    for (size_t i = 0; i < NBCSHAPE; i++) check_bcast_shape(bc_shapes[i][0], bc_shapes[i][1], bc_shapes[i][2]);
}


int main(void) {
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++) {
            locus_set_threads(th);
            check_bcast();
        }
    }
    return t_finish("test_bcast");
}
