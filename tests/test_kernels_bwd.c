/* test_kernels_bwd.c — the backward operators of simd/ops_bwd.h against analytic gradients computed in double,
 * and their determinism contract:
 *   - accuracy: max|diff| / max|ref| per gradient (printed for the largest case of each op), at tile sizes,
 *     below, above, odd tails, misaligned pointers, accum = 0 and accum = 1 (onto random starting values);
 *   - accumulation: where ops_bwd.h promises it, two calls (the second with accum = 1) over the two halves of
 *     the rows / images / queries equal ONE call over all of them bit for bit;
 *   - NULL optional outputs: each gradient alone equals the same gradient computed together with the others;
 *   - in place where the header allows it (linear dx = x, norm dx = x or dy, act/GEGLU/MSE);
 *   - the GEMM's accum field: a K range split over two calls equals one GEMM;
 *   - determinism: every output of a full run is hashed, and the hashes are identical for every ISA table this
 *     CPU supports x 1, 2 and 3 threads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/hash.h"
#include "../simd/ops_bwd.h"
#include "testutil.h"

#include "kernels_bwd_check.h"

/* ------------------------------------------------------------------ GEMM accum (locus_gemm_desc.accum) */

/* C = A[:, :K1].B[:K1, :] then accum with A[:, K1:].B[K1:, :] == one GEMM over K, bit for bit (with and without
 * bias, a K split inside and across KC blocks, packed and direct A); K = 0 with accum leaves C (+ bias). */
static void check_gemm_accum(void) {
    static const int cs[][4] = {{1, 1, 2, 1}, {7, 33, 65, 30}, {13, 16, 700, 512}, {50, 20, 1100, 600}, {6, 100, 40, 0}};
    for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
        int M = cs[ci][0], N = cs[ci][1], K = cs[ci][2], K1 = cs[ci][3];
        float *A = frand((size_t)M * K, 1 + ci, -1, 1), *B = frand((size_t)K * N, 2 + ci, -1, 1), *bias = frand(N, 3, -1, 1);
        float *C = fbuf((size_t)M * N), *C2 = fbuf((size_t)M * N);
        for (int bk = 0; bk <= 1; bk++) {
            locus_gemm_desc d = {0};
            d.M = M; d.N = N; d.K = K;
            d.A = A; d.a_rs = K; d.a_cs = 1;
            d.B = B; d.b_rs = N; d.b_cs = 1;
            d.C = C; d.ldc = N;
            locus_gemm(&d); /* C = A.B */
            locus_gemm_desc e = d;
            e.C = C2; e.K = K1;
            locus_gemm(&e);
            e.A = A + K1; e.B = B + (size_t)K1 * N; e.K = K - K1; e.accum = 1;
            if (bk) { e.bias = bias; e.bias_kind = LOCUS_UKR_BIAS_COL; }
            locus_gemm(&e); /* C2 = chain over [0, K1) continued over [K1, K) (+ bias) */
            if (bk)
                for (size_t i = 0; i < (size_t)M * N; i++) C[i] = C[i] + bias[i % N];
            CHECK(same_bits(C, C2, (size_t)M * N), "gemm accum M=%d N=%d K=%d split %d bias=%d: %zu of %d differ", M, N, K, K1, bk,
                  t_bitdiff(C, C2, (size_t)M * N), M * N);
        }
        char nm[64];
        snprintf(nm, sizeof nm, "gemm_accum%zu", ci); rec(nm, C2, (size_t)M * N);
        /* K = 0: accum keeps C and adds the bias */
        memcpy(C, C2, (size_t)M * N * sizeof(float));
        locus_gemm_desc z = {0};
        z.M = M; z.N = N; z.K = 0; z.A = A; z.a_rs = 1; z.a_cs = 1; z.B = B; z.b_rs = N; z.b_cs = 1; z.C = C2; z.ldc = N; z.accum = 1;
        locus_gemm(&z);
        CHECK(same_bits(C, C2, (size_t)M * N), "gemm accum K=0 changed C");
        z.bias = bias; z.bias_kind = LOCUS_UKR_BIAS_COL;
        locus_gemm(&z);
        int ok = 1;
        for (size_t i = 0; i < (size_t)M * N; i++) ok &= C2[i] == C[i] + bias[i % N];
        CHECK(ok, "gemm accum K=0 with bias: C + bias");
        locus_free(A); locus_free(B); locus_free(bias); locus_free(C); locus_free(C2);
    }
}

/* ------------------------------------------------------------------ linear + colsum */

static void check_linear(void) {
    static const int cs[][3] = {/* M K N */
        {1, 1, 1}, {4, 16, 16}, {6, 16, 40}, {17, 33, 15}, {77, 40, 64}, {300, 9, 17}, {5, 100, 3}, {600, 200, 96}};
    for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
        int M = cs[ci][0], K = cs[ci][1], N = cs[ci][2], mis = (int)(ci % 2);
        float *x = frand((size_t)M * K + 1, 10 + ci, -1, 1) + mis, *W = frand((size_t)N * K + 1, 20 + ci, -1, 1) + mis;
        float *dy = frand((size_t)M * N + 1, 30 + ci, -1, 1) + mis;
        float *dx = fbuf((size_t)M * K + 1) + mis, *dw = fbuf((size_t)N * K + 1) + mis, *db = fbuf(N + 1) + mis;
        locus_linear_bwd(x, W, dy, M, K, N, dx, 0, dw, db, 0);
        char nm[64];
        snprintf(nm, sizeof nm, "linear%zu.dx", ci); rec(nm, dx, (size_t)M * K);
        snprintf(nm, sizeof nm, "linear%zu.dw", ci); rec(nm, dw, (size_t)N * K);
        snprintf(nm, sizeof nm, "linear%zu.db", ci); rec(nm, db, N);
        double *rdx = dbuf((size_t)M * K), *rdw = dbuf((size_t)N * K), *rdb = dbuf(N);
        if (g_ref) {
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double g = dy[(size_t)m * N + n];
                    rdb[n] += g;
                    for (int k = 0; k < K; k++) {
                        rdx[(size_t)m * K + k] += g * W[(size_t)n * K + k];
                        rdw[(size_t)n * K + k] += g * x[(size_t)m * K + k];
                    }
                }
        }
        char what[96];
        snprintf(what, sizeof what, "linear_bwd M=%d K=%d N=%d mis=%d", M, K, N, mis);
        check_rel(G_LIN, "linear_bwd", dx, rdx, NULL, (size_t)M * K, 1e-5 * sqrt(N + 1.0), what);
        check_rel(G_LIN, "linear_bwd", dw, rdw, NULL, (size_t)N * K, 1e-5 * sqrt(M + 1.0), what);
        check_rel(G_LIN, "linear_bwd", db, rdb, NULL, N, 1e-5 * sqrt(M + 1.0), what);
        /* NULL optional outputs: each alone gives the same bits */
        float *dx1 = fbuf((size_t)M * K), *dw1 = fbuf((size_t)N * K), *db1 = fbuf(N);
        locus_linear_bwd(x, W, dy, M, K, N, dx1, 0, NULL, NULL, 0);
        locus_linear_bwd(x, NULL, dy, M, K, N, NULL, 0, dw1, NULL, 0);
        locus_linear_bwd(x, NULL, dy, M, K, N, NULL, 0, NULL, db1, 0);
        CHECK(same_bits(dx, dx1, (size_t)M * K) && same_bits(dw, dw1, (size_t)N * K) && same_bits(db, db1, N),
              "%s: NULL outputs change other gradients", what);
        /* accum onto random starting values */
        float *s_dx = frand((size_t)M * K, 40 + ci, -1, 1), *s_dw = frand((size_t)N * K, 41 + ci, -1, 1), *s_db = frand(N, 42 + ci, -1, 1);
        float *adx = fcopy(s_dx, (size_t)M * K), *adw = fcopy(s_dw, (size_t)N * K), *adb = fcopy(s_db, N);
        locus_linear_bwd(x, W, dy, M, K, N, adx, 1, adw, adb, 1);
        snprintf(what, sizeof what, "linear_bwd accum M=%d K=%d N=%d", M, K, N);
        check_rel(G_LIN, "linear_bwd", adx, rdx, s_dx, (size_t)M * K, 1e-5 * sqrt(N + 1.0), what);
        check_rel(G_LIN, "linear_bwd", adw, rdw, s_dw, (size_t)N * K, 1e-5 * sqrt(M + 1.0), what);
        check_rel(G_LIN, "linear_bwd", adb, rdb, s_db, N, 1e-5 * sqrt(M + 1.0), what);
        /* two calls over the rows [0, M1) and [M1, M) == one call, bit for bit (dw, db) */
        if (M > 1) {
            int M1 = M / 3 + 1;
            float *sw = fbuf((size_t)N * K), *sb = fbuf(N);
            locus_linear_bwd(x, NULL, dy, M1, K, N, NULL, 0, sw, sb, 0);
            locus_linear_bwd(x + (size_t)M1 * K, NULL, dy + (size_t)M1 * N, M - M1, K, N, NULL, 0, sw, sb, 1);
            CHECK(same_bits(sw, dw, (size_t)N * K) && same_bits(sb, db, N), "linear_bwd M=%d split at %d: accum != one chain (%zu, %zu bits differ)", M,
                  M1, t_bitdiff(sw, dw, (size_t)N * K), t_bitdiff(sb, db, N));
            locus_free(sw); locus_free(sb);
        }
        free(rdx); free(rdw); free(rdb);
        locus_free(x - mis); locus_free(W - mis); locus_free(dy - mis); locus_free(dx - mis); locus_free(dw - mis); locus_free(db - mis);
        locus_free(dx1); locus_free(dw1); locus_free(db1); locus_free(s_dx); locus_free(s_dw); locus_free(s_db);
        locus_free(adx); locus_free(adw); locus_free(adb);
    }
    /* colsum with a row stride > n */
    static const size_t cc[][3] = {{1, 1, 1}, {3, 17, 20}, {100, 300, 301}, {700, 33, 40}, {50, 1000, 1000}};
    for (size_t ci = 0; ci < sizeof cc / sizeof *cc; ci++) {
        size_t rows = cc[ci][0], n = cc[ci][1], ld = cc[ci][2];
        float *x = frand(rows * ld + 1, 50 + ci, -1, 1) + 1, *o = fbuf(n), *o2 = frand(n, 51, -1, 1), *s = fcopy(o2, n);
        double *r = dbuf(n);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < n; j++) r[j] += x[i * ld + j];
        locus_colsum(x, rows, n, ld, o, 0);
        locus_colsum(x, rows, n, ld, o2, 1);
        char nm[64], what[64];
        snprintf(nm, sizeof nm, "colsum%zu", ci); rec(nm, o, n);
        snprintf(what, sizeof what, "colsum rows=%zu n=%zu ld=%zu", rows, n, ld);
        check_rel(G_COLSUM, "colsum", o, r, NULL, n, 1e-5 * sqrt(rows + 1.0), what);
        check_rel(G_COLSUM, "colsum", o2, r, s, n, 1e-5 * sqrt(rows + 1.0), what);
        float *o3 = fbuf(n);
        size_t r1 = rows / 2;
        locus_colsum(x, r1, n, ld, o3, 0);
        locus_colsum(x + r1 * ld, rows - r1, n, ld, o3, 1);
        CHECK(same_bits(o3, o, n), "%s: split accum != one chain", what);
        free(r); locus_free(x - 1); locus_free(o); locus_free(o2); locus_free(s); locus_free(o3);
    }
}

/* ------------------------------------------------------------------ convolution */

static void check_conv(void) {
    static const int cs[][9] = {/* B Cin H W Cout k stride pad_t pad_l; Ho/Wo from symmetric pad, or F.pad(0,1,0,1) when pad_t < 0 */
        {2, 3, 8, 8, 4, 3, 1, 1, 1}, {2, 5, 7, 9, 6, 3, 2, 1, 1}, {2, 4, 6, 6, 8, 1, 1, 0, 0}, {1, 16, 16, 16, 33, 3, 1, 1, 1},
        {3, 1, 5, 5, 1, 3, 1, 0, 0}, {2, 8, 9, 9, 12, 3, 2, -1, -1}, {2, 32, 8, 8, 16, 1, 1, 0, 0}, {2, 4, 10, 7, 5, 3, 2, -1, -1},
        {2, 64, 16, 16, 64, 3, 1, 1, 1}, {2, 6, 12, 12, 5, 3, 2, -1, -1}, {3, 8, 16, 8, 4, 1, 1, 0, 0},
        /* several K blocks (Cout*9 > 512, Cin*9 > 512) and column panels in every GEMM arrangement */
        {2, 70, 4, 4, 60, 3, 1, 1, 1}, {3, 33, 5, 6, 61, 3, 2, 1, 1}, {2, 50, 4, 4, 600, 1, 1, 0, 0},
        /* strided with >= 256 input pixels (data gradient by phase), a 2x2 patch embedding, stride 3, and a
         * stride-8 patch embedding (beyond the phase tables: the full product) */
        {2, 6, 16, 16, 7, 3, 2, 1, 1}, {2, 4, 12, 12, 6, 2, 2, 0, 0}, {2, 5, 18, 18, 4, 3, 3, 1, 1}, {1, 3, 24, 24, 5, 8, 8, 0, 0}};
    for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
        const int *c = cs[ci];
        int B = c[0], Cin = c[1], H = c[2], W = c[3], Co = c[4], k = c[5], st = c[6], pt = c[7], pl = c[8], Ho, Wo;
        if (pt < 0) { pt = pl = 0; Ho = (H + 1 - k) / st + 1; Wo = (W + 1 - k) / st + 1; } /* diffusers Downsample2D pad */
        else { Ho = (H + 2 * pt - k) / st + 1; Wo = (W + 2 * pl - k) / st + 1; }
        size_t nx = (size_t)B * Cin * H * W, nw = (size_t)Co * Cin * k * k, ny = (size_t)B * Co * Ho * Wo;
        int mis = (int)(ci % 2);
        float *x = frand(nx + 1, 60 + ci, -1, 1) + mis, *w = frand(nw + 1, 61 + ci, -0.5f, 0.5f) + mis, *dy = frand(ny + 1, 62 + ci, -1, 1) + mis;
        float *dx = fbuf(nx + 1) + mis, *dw = fbuf(nw + 1) + mis, *db = fbuf(Co + 1) + mis;
        locus_conv2d_bwd_data(dy, B, Co, Ho, Wo, w, Cin, H, W, k, k, st, pt, pl, dx, 0);
        locus_conv2d_bwd_weight(dy, x, B, Cin, H, W, Co, k, k, st, pt, pl, Ho, Wo, dw, db, 0);
        char nm[64], what[96];
        snprintf(nm, sizeof nm, "conv%zu.dx", ci); rec(nm, dx, nx);
        snprintf(nm, sizeof nm, "conv%zu.dw", ci); rec(nm, dw, nw);
        snprintf(nm, sizeof nm, "conv%zu.db", ci); rec(nm, db, Co);
        double *rdx = dbuf(nx), *rdw = dbuf(nw), *rdb = dbuf(Co);
        if (g_ref)
            for (int b = 0; b < B; b++)
                for (int o = 0; o < Co; o++)
                    for (int oy = 0; oy < Ho; oy++)
                        for (int ox = 0; ox < Wo; ox++) {
                            double g = dy[(((size_t)b * Co + o) * Ho + oy) * Wo + ox];
                            rdb[o] += g;
                            for (int i = 0; i < Cin; i++)
                                for (int ky = 0; ky < k; ky++)
                                    for (int kx = 0; kx < k; kx++) {
                                        int iy = oy * st - pt + ky, ix = ox * st - pl + kx;
                                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                        size_t xi = (((size_t)b * Cin + i) * H + iy) * W + ix, wi = (((size_t)o * Cin + i) * k + ky) * k + kx;
                                        rdx[xi] += g * w[wi];
                                        rdw[wi] += g * x[xi];
                                    }
                        }
        snprintf(what, sizeof what, "conv2d_bwd case %zu (B%d Cin%d %dx%d Cout%d k%d s%d)", ci, B, Cin, H, W, Co, k, st);
        check_rel(G_CONV, "conv2d_bwd", dx, rdx, NULL, nx, 1e-5 * sqrt(Co * k * k + 1.0), what);
        check_rel(G_CONV, "conv2d_bwd", dw, rdw, NULL, nw, 1e-5 * sqrt(B * Ho * Wo + 1.0), what);
        check_rel(G_CONV, "conv2d_bwd", db, rdb, NULL, Co, 1e-5 * sqrt(B * Ho * Wo + 1.0), what);
        /* accum onto random starts */
        float *sx = frand(nx, 63, -1, 1), *sw = frand(nw, 64, -1, 1), *sb = frand(Co, 65, -1, 1);
        float *ax = fcopy(sx, nx), *aw = fcopy(sw, nw), *ab = fcopy(sb, Co);
        locus_conv2d_bwd_data(dy, B, Co, Ho, Wo, w, Cin, H, W, k, k, st, pt, pl, ax, 1);
        locus_conv2d_bwd_weight(dy, x, B, Cin, H, W, Co, k, k, st, pt, pl, Ho, Wo, aw, ab, 1);
        check_rel(G_CONV, "conv2d_bwd", ax, rdx, sx, nx, 1e-5 * sqrt(Co * k * k + 1.0), what);
        check_rel(G_CONV, "conv2d_bwd", aw, rdw, sw, nw, 1e-5 * sqrt(B * Ho * Wo + 1.0), what);
        check_rel(G_CONV, "conv2d_bwd", ab, rdb, sb, Co, 1e-5 * sqrt(B * Ho * Wo + 1.0), what);
        /* NULL outputs, and images split over two calls == one chain over (b, oy, ox) */
        float *w1 = fbuf(nw), *b1 = fbuf(Co);
        locus_conv2d_bwd_weight(dy, x, B, Cin, H, W, Co, k, k, st, pt, pl, Ho, Wo, w1, NULL, 0);
        locus_conv2d_bwd_weight(dy, x, B, Cin, H, W, Co, k, k, st, pt, pl, Ho, Wo, NULL, b1, 0);
        CHECK(same_bits(w1, dw, nw) && same_bits(b1, db, Co), "%s: NULL outputs change other gradients", what);
        if (B > 1) {
            size_t xs = (size_t)Cin * H * W, ys = (size_t)Co * Ho * Wo;
            /* the data gradient of all images at once equals it image by image, to the bit, with and without
             * accumulation */
            float *x1 = fbuf(nx), *a1 = fcopy(sx, nx);
            for (int b = 0; b < B; b++) {
                locus_conv2d_bwd_data(dy + b * ys, 1, Co, Ho, Wo, w, Cin, H, W, k, k, st, pt, pl, x1 + b * xs, 0);
                locus_conv2d_bwd_data(dy + b * ys, 1, Co, Ho, Wo, w, Cin, H, W, k, k, st, pt, pl, a1 + b * xs, 1);
            }
            CHECK(same_bits(x1, dx, nx) && same_bits(a1, ax, nx), "%s: data gradient image by image != all at once (%zu, %zu bits differ)", what,
                  t_bitdiff(x1, dx, nx), t_bitdiff(a1, ax, nx));
            locus_free(x1); locus_free(a1);
            locus_conv2d_bwd_weight(dy, x, 1, Cin, H, W, Co, k, k, st, pt, pl, Ho, Wo, w1, b1, 0);
            locus_conv2d_bwd_weight(dy + ys, x + xs, B - 1, Cin, H, W, Co, k, k, st, pt, pl, Ho, Wo, w1, b1, 1);
            CHECK(same_bits(w1, dw, nw) && same_bits(b1, db, Co), "%s: images split over two accum calls != one chain (%zu, %zu bits differ)",
                  what, t_bitdiff(w1, dw, nw), t_bitdiff(b1, db, Co));
        }
        /* every GEMM arrangement gives the same bits as the one chosen for the shape: data gradient image by
         * image, transposed over all images (dx^T = DY_col^T . W) or by stride phase; weight gradient image by
         * image or one GEMM over all images' positions; with and without accumulation */
        for (int path = 1; path <= 3; path++) {
            float *p1 = fbuf(nx), *p2 = fcopy(sx, nx);
            locus_conv2d_bwd_data_path(path);
            locus_conv2d_bwd_data(dy, B, Co, Ho, Wo, w, Cin, H, W, k, k, st, pt, pl, p1, 0);
            locus_conv2d_bwd_data(dy, B, Co, Ho, Wo, w, Cin, H, W, k, k, st, pt, pl, p2, 1);
            locus_conv2d_bwd_data_path(0);
            CHECK(same_bits(p1, dx, nx) && same_bits(p2, ax, nx), "%s: data gradient by GEMM arrangement %d != chosen (%zu, %zu bits differ)",
                  what, path, t_bitdiff(p1, dx, nx), t_bitdiff(p2, ax, nx));
            locus_free(p1); locus_free(p2);
        }
        for (int path = 1; path <= 2; path++) {
            float *p1 = fbuf(nw), *p2 = fcopy(sw, nw);
            locus_conv2d_bwd_weight_path(path);
            locus_conv2d_bwd_weight(dy, x, B, Cin, H, W, Co, k, k, st, pt, pl, Ho, Wo, p1, NULL, 0);
            locus_conv2d_bwd_weight(dy, x, B, Cin, H, W, Co, k, k, st, pt, pl, Ho, Wo, p2, NULL, 1);
            locus_conv2d_bwd_weight_path(0);
            CHECK(same_bits(p1, dw, nw) && same_bits(p2, aw, nw), "%s: weight gradient by GEMM arrangement %d != chosen (%zu, %zu bits differ)",
                  what, path, t_bitdiff(p1, dw, nw), t_bitdiff(p2, aw, nw));
            locus_free(p1); locus_free(p2);
        }
        free(rdx); free(rdw); free(rdb);
        locus_free(x - mis); locus_free(w - mis); locus_free(dy - mis); locus_free(dx - mis); locus_free(dw - mis); locus_free(db - mis);
        locus_free(sx); locus_free(sw); locus_free(sb); locus_free(ax); locus_free(aw); locus_free(ab); locus_free(w1); locus_free(b1);
    }
}

/* ------------------------------------------------------------------ attention */

typedef struct { int B, H, Tq, Tk, D, mask; } attn_case;

static void check_attention(void) {
    static const attn_case cs[] = {{1, 1, 1, 1, 8, 0}, {2, 2, 17, 7, 8, 1}, {2, 3, 64, 77, 40, 0}, {1, 2, 65, 100, 64, 1},
                                   {1, 1, 130, 33, 16, 1}, {2, 4, 96, 96, 24, 0}};
    for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
        const attn_case *c = &cs[ci];
        int C = c->H * c->D, B = c->B, H = c->H, Tq = c->Tq, Tk = c->Tk, D = c->D;
        size_t nq = (size_t)B * Tq * C, nk = (size_t)B * Tk * C, nm_ = (size_t)B * H * Tq * Tk;
        float *q = frand(nq, 70 + ci, -2, 2), *k = frand(nk, 71 + ci, -2, 2), *v = frand(nk, 72 + ci, -1, 1);
        float *m = frand(nm_, 73 + ci, -3, 0), *o = fbuf(nq), *dO = frand(nq, 74 + ci, -1, 1);
        /* per-head mask (T5 style) on odd cases, one mask for all heads otherwise */
        ptrdiff_t mhs = ci % 2 ? (ptrdiff_t)Tq * Tk : 0, mbs = ci % 2 ? (ptrdiff_t)H * Tq * Tk : (ptrdiff_t)Tq * Tk;
        locus_attn_desc f = {B, H, Tq, Tk, D, q, (ptrdiff_t)Tq * C, C, k, (ptrdiff_t)Tk * C, C, v, (ptrdiff_t)Tk * C, C,
                             o, (ptrdiff_t)Tq * C, C, 1.0f / sqrtf((float)D), c->mask ? m : NULL, mbs, Tk, NULL, mhs};
        locus_attention(&f);
        float *dq = fbuf(nq), *dk = fbuf(nk), *dv = fbuf(nk);
        locus_attention_bwd(&f, dO, dq, dk, dv, 0);
        char nm[64], what[96];
        snprintf(nm, sizeof nm, "attn%zu.dq", ci); rec(nm, dq, nq);
        snprintf(nm, sizeof nm, "attn%zu.dk", ci); rec(nm, dk, nk);
        snprintf(nm, sizeof nm, "attn%zu.dv", ci); rec(nm, dv, nk);
        snprintf(what, sizeof what, "attention_bwd B=%d H=%d Tq=%d Tk=%d D=%d mask=%d", B, H, Tq, Tk, D, c->mask);
        double *rq = dbuf(nq), *rk = dbuf(nk), *rv = dbuf(nk);
        if (g_ref) {
            double *p = dbuf(Tk), *dp = dbuf(Tk), sc = 1.0 / sqrt((double)D);
            for (int b = 0; b < B; b++)
                for (int h = 0; h < H; h++)
                    for (int i = 0; i < Tq; i++) {
                        const float *qi = q + ((size_t)b * Tq + i) * C + h * D, *gi = dO + ((size_t)b * Tq + i) * C + h * D;
                        double mx = -1e300, sum = 0, dsum = 0;
                        for (int j = 0; j < Tk; j++) {
                            const float *kj = k + ((size_t)b * Tk + j) * C + h * D, *vj = v + ((size_t)b * Tk + j) * C + h * D;
                            double s = 0, t = 0;
                            for (int d = 0; d < D; d++) { s += (double)qi[d] * kj[d]; t += (double)gi[d] * vj[d]; }
                            s *= sc;
                            if (c->mask) s += m[b * mbs + h * mhs + (size_t)i * Tk + j];
                            p[j] = s; dp[j] = t;
                            if (s > mx) mx = s;
                        }
                        for (int j = 0; j < Tk; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
                        for (int j = 0; j < Tk; j++) { p[j] /= sum; dsum += p[j] * dp[j]; }
                        for (int j = 0; j < Tk; j++) {
                            double ds = p[j] * (dp[j] - dsum) * sc;
                            const float *kj = k + ((size_t)b * Tk + j) * C + h * D;
                            size_t kb = ((size_t)b * Tk + j) * C + h * D, qb = ((size_t)b * Tq + i) * C + h * D;
                            for (int d = 0; d < D; d++) {
                                rv[kb + d] += p[j] * gi[d];
                                rq[qb + d] += ds * kj[d];
                                rk[kb + d] += ds * qi[d];
                            }
                        }
                    }
            free(p); free(dp);
        }
        double tol = 2e-5 * sqrt(Tq + Tk + 1.0);
        check_rel(G_ATTN, "attention_bwd", dq, rq, NULL, nq, tol, what);
        check_rel(G_ATTN, "attention_bwd", dk, rk, NULL, nk, tol, what);
        check_rel(G_ATTN, "attention_bwd", dv, rv, NULL, nk, tol, what);
        /* accum onto random starts */
        float *sq = frand(nq, 75, -1, 1), *sk = frand(nk, 76, -1, 1), *sv = frand(nk, 77, -1, 1);
        float *aq = fcopy(sq, nq), *ak = fcopy(sk, nk), *av = fcopy(sv, nk);
        locus_attention_bwd(&f, dO, aq, ak, av, 1);
        check_rel(G_ATTN, "attention_bwd", aq, rq, sq, nq, tol, what);
        check_rel(G_ATTN, "attention_bwd", ak, rk, sk, nk, tol, what);
        check_rel(G_ATTN, "attention_bwd", av, rv, sv, nk, tol, what);
        /* NULL outputs; queries split over two calls: dk, dv == one chain over all queries, dq rows identical */
        float *q1 = fbuf(nq), *k1 = fbuf(nk), *v1 = fbuf(nk);
        locus_attention_bwd(&f, dO, NULL, NULL, v1, 0);
        locus_attention_bwd(&f, dO, NULL, k1, NULL, 0);
        locus_attention_bwd(&f, dO, q1, NULL, NULL, 0);
        CHECK(same_bits(q1, dq, nq) && same_bits(k1, dk, nk) && same_bits(v1, dv, nk), "%s: NULL outputs change other gradients", what);
        /* the forward's kept probabilities instead of recomputing them: the same bits */
        {
            locus_attn_desc fp = f;
            fp.probs = fbuf(nm_);
            locus_attention(&fp);
            locus_attention_bwd(&fp, dO, q1, k1, v1, 0);
            CHECK(same_bits(q1, dq, nq) && same_bits(k1, dk, nk) && same_bits(v1, dv, nk), "%s: kept probabilities change bits", what);
            locus_attention_bwd_block_rows(7);
            locus_attention_bwd(&fp, dO, q1, k1, v1, 0);
            locus_attention_bwd_block_rows(0);
            CHECK(same_bits(q1, dq, nq) && same_bits(k1, dk, nk) && same_bits(v1, dv, nk), "%s: kept probabilities, 7-row blocks change bits", what);
            locus_free(fp.probs);
        }
        /* query block size (internal tiling): same bits for any block */
        static const int blocks[] = {1, 7, 16, 64};
        for (int bi = 0; bi < 4; bi++) {
            locus_attention_bwd_block_rows(blocks[bi]);
            locus_attention_bwd(&f, dO, q1, k1, v1, 0);
            locus_attention_bwd_block_rows(0);
            CHECK(same_bits(q1, dq, nq) && same_bits(k1, dk, nk) && same_bits(v1, dv, nk), "%s: query blocks of %d rows change bits", what, blocks[bi]);
        }
        if (Tq > 1) {
            int T1 = Tq / 2;
            locus_attn_desc f1 = f, f2 = f;
            f1.Tq = T1;
            f2.Tq = Tq - T1;
            f2.q = q + (size_t)T1 * C; f2.o = o + (size_t)T1 * C;
            if (f2.mask) f2.mask = m + (size_t)T1 * Tk;
            memset(q1, 0, nq * sizeof(float));
            locus_attention_bwd(&f1, dO, q1, k1, v1, 0);
            locus_attention_bwd(&f2, dO + (size_t)T1 * C, q1 + (size_t)T1 * C, k1, v1, 1);
            CHECK(same_bits(q1, dq, nq) && same_bits(k1, dk, nk) && same_bits(v1, dv, nk),
                  "%s: queries split at %d over two accum calls != one call (%zu %zu %zu bits differ)", what, T1, t_bitdiff(q1, dq, nq),
                  t_bitdiff(k1, dk, nk), t_bitdiff(v1, dv, nk));
        }
        free(rq); free(rk); free(rv);
        locus_free(q); locus_free(k); locus_free(v); locus_free(m); locus_free(o); locus_free(dO);
        locus_free(dq); locus_free(dk); locus_free(dv); locus_free(sq); locus_free(sk); locus_free(sv);
        locus_free(aq); locus_free(ak); locus_free(av); locus_free(q1); locus_free(k1); locus_free(v1);
    }
}

/* no queries: dK, dV are empty chains (0; unchanged with accum) */
static void check_attention_empty(void) {
    float q[16], k[2 * 3 * 8], v[2 * 3 * 8], dk[48], dv[48], s[48];
    t_fill(k, 48, 1, -1, 1); t_fill(v, 48, 2, -1, 1); t_fill(s, 48, 3, -1, 1);
    locus_attn_desc f = {2, 1, 0, 3, 8, q, 0, 8, k, 24, 8, v, 24, 8, q, 0, 8, 0.35f, NULL, 0, 0, NULL, 0};
    memcpy(dk, s, sizeof dk); memcpy(dv, s, sizeof dv);
    locus_attention_bwd(&f, q, NULL, dk, dv, 1);
    int ok = same_bits(dk, s, 48) && same_bits(dv, s, 48);
    locus_attention_bwd(&f, q, NULL, dk, dv, 0);
    for (int i = 0; i < 48; i++) ok &= dk[i] == 0.0f && dv[i] == 0.0f;
    CHECK(ok, "attention_bwd with Tq = 0: dk, dv not 0 (or changed with accum)");
}

/* ------------------------------------------------------------------ layer / RMS / group norm */

static const size_t row_lens[] = {1, 2, 15, 16, 17, 31, 33, 100, 320, 1000, 4097};

static void check_norms(void) {
    for (size_t li = 0; li < sizeof row_lens / sizeof *row_lens; li++) {
        size_t n = row_lens[li], rows = n >= 1000 ? 40 : 37;
        float *x = frand(rows * n + 1, 80 + n, -3, 3) + 1, *dy = frand(rows * n, 81 + n, -1, 1), *w = frand(n, 82, 0.5f, 1.5f);
        for (int rms = 0; rms <= 1; rms++)
            for (int hasw = 0; hasw <= 1; hasw++) {
                const float *wp = hasw ? w : NULL;
                float eps = rms ? 1e-6f : 1e-5f;
                float *dx = fbuf(rows * n + 1) + 1, *dw = fbuf(n), *db = fbuf(n);
                if (rms) locus_rms_norm_bwd(x, dy, rows, n, wp, eps, dx, 0, dw, 0);
                else locus_layer_norm_bwd(x, dy, rows, n, wp, eps, dx, 0, dw, db, 0);
                char nm[64], what[96];
                snprintf(nm, sizeof nm, "%s%zu.w%d.dx", rms ? "rms" : "ln", n, hasw); rec(nm, dx, rows * n);
                snprintf(nm, sizeof nm, "%s%zu.w%d.dw", rms ? "rms" : "ln", n, hasw); rec(nm, dw, n);
                if (!rms) { snprintf(nm, sizeof nm, "ln%zu.w%d.db", n, hasw); rec(nm, db, n); }
                double *rdx = dbuf(rows * n), *rdw = dbuf(n), *rdb = dbuf(n), *xh = dbuf(n), floor = 0;
                if (g_ref)
                    for (size_t r = 0; r < rows; r++) {
                        const float *xr = x + r * n, *gr = dy + r * n;
                        double mean = 0, var = 0, sg = 0, sgx = 0;
                        if (!rms) for (size_t i = 0; i < n; i++) mean += xr[i];
                        mean /= n;
                        for (size_t i = 0; i < n; i++) var += (xr[i] - mean) * (xr[i] - mean);
                        var /= n;
                        double rstd = 1 / sqrt(var + eps);
                        for (size_t i = 0; i < n; i++) {
                            xh[i] = (xr[i] - mean) * rstd;
                            double g = gr[i] * (hasw ? w[i] : 1.0);
                            sg += g; sgx += g * xh[i];
                            rdw[i] += gr[i] * xh[i];
                            rdb[i] += gr[i];
                        }
                        for (size_t i = 0; i < n; i++) {
                            double g = gr[i] * (hasw ? w[i] : 1.0);
                            rdx[r * n + i] = rstd * (g - (rms ? 0 : sg / n) - xh[i] * sgx / n);
                            if (fabs(rstd * g) > floor) floor = fabs(rstd * g);
                        }
                    }
                snprintf(what, sizeof what, "%s_bwd n=%zu rows=%zu w=%d", rms ? "rms_norm" : "layer_norm", n, rows, hasw);
                int grp = rms ? G_RMS : G_LN;
                const char *gname = rms ? "rms_norm_bwd" : "layer_norm_bwd";
                g_floor = floor;
                check_rel(grp, gname, dx, rdx, NULL, rows * n, 2e-5 * sqrt(n + 1.0), what);
                g_floor = 0;
                check_rel(grp, gname, dw, rdw, NULL, n, 1e-5 * sqrt(rows + 1.0), what);
                if (!rms) check_rel(grp, gname, db, rdb, NULL, n, 1e-5 * sqrt(rows + 1.0), what);
                /* accum; split rows == one chain for dw/db; NULL outputs */
                float *sx = frand(rows * n, 83, -1, 1), *sw = frand(n, 84, -1, 1), *sb = frand(n, 85, -1, 1);
                float *ax = fcopy(sx, rows * n), *aw = fcopy(sw, n), *ab = fcopy(sb, n);
                if (rms) locus_rms_norm_bwd(x, dy, rows, n, wp, eps, ax, 1, aw, 1);
                else locus_layer_norm_bwd(x, dy, rows, n, wp, eps, ax, 1, aw, ab, 1);
                g_floor = floor;
                check_rel(grp, gname, ax, rdx, sx, rows * n, 2e-5 * sqrt(n + 1.0), what);
                g_floor = 0;
                check_rel(grp, gname, aw, rdw, sw, n, 1e-5 * sqrt(rows + 1.0), what);
                if (!rms) check_rel(grp, gname, ab, rdb, sb, n, 1e-5 * sqrt(rows + 1.0), what);
                float *x1 = fbuf(rows * n), *w1 = fbuf(n), *b1 = fbuf(n);
                size_t r1 = rows / 3;
                if (rms) {
                    locus_rms_norm_bwd(x, dy, rows, n, wp, eps, x1, 0, NULL, 0);
                    locus_rms_norm_bwd(x, dy, r1, n, wp, eps, NULL, 0, w1, 0);
                    locus_rms_norm_bwd(x + r1 * n, dy + r1 * n, rows - r1, n, wp, eps, NULL, 0, w1, 1);
                    memcpy(b1, db, n * sizeof(float));
                } else {
                    locus_layer_norm_bwd(x, dy, rows, n, wp, eps, x1, 0, NULL, NULL, 0);
                    locus_layer_norm_bwd(x, dy, r1, n, wp, eps, NULL, 0, w1, NULL, 0);
                    locus_layer_norm_bwd(x + r1 * n, dy + r1 * n, rows - r1, n, wp, eps, NULL, 0, w1, NULL, 1);
                    locus_layer_norm_bwd(x, dy, r1, n, wp, eps, NULL, 0, NULL, b1, 0);
                    locus_layer_norm_bwd(x + r1 * n, dy + r1 * n, rows - r1, n, wp, eps, NULL, 0, NULL, b1, 1);
                }
                CHECK(same_bits(x1, dx, rows * n) && same_bits(w1, dw, n) && same_bits(b1, db, n),
                      "%s: NULL outputs / rows split over two accum calls differ (%zu %zu %zu bits)", what, t_bitdiff(x1, dx, rows * n),
                      t_bitdiff(w1, dw, n), t_bitdiff(b1, db, n));
                free(rdx); free(rdw); free(rdb); free(xh);
                locus_free(dx - 1); locus_free(dw); locus_free(db); locus_free(sx); locus_free(sw); locus_free(sb);
                locus_free(ax); locus_free(aw); locus_free(ab); locus_free(x1); locus_free(w1); locus_free(b1);
            }
        locus_free(x - 1); locus_free(dy); locus_free(w);
    }
}

static double silu_d(double t) { double s = 1 / (1 + exp(-t)); return s * (1 + t * (1 - s)); }

static void check_group_norm(void) {
    static const int cs[][4] = {{2, 32, 17, 8}, {1, 16, 64, 16}, {3, 8, 1, 4}, {2, 64, 300, 32}, {1, 6, 5, 3}};
    for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
        int B = cs[ci][0], C = cs[ci][1], HW = cs[ci][2], G = cs[ci][3], cpg = C / G;
        size_t n = (size_t)B * C * HW, gs = (size_t)cpg * HW;
        float *x = frand(n, 90 + ci, -2, 2), *dy = frand(n, 91 + ci, -1, 1), *w = frand(C, 92, 0.5f, 1.5f), *b = frand(C, 93, -1, 1);
        for (int v = 0; v < 4; v++) {
            int act = v & 1 ? LOCUS_ACT_SILU : LOCUS_ACT_NONE, hasw = !(v & 2);
            const float *wp = hasw ? w : NULL, *bp = hasw ? b : NULL;
            float *dx = fbuf(n), *dw = fbuf(C), *db = fbuf(C);
            locus_group_norm_bwd(x, dy, B, C, HW, G, wp, bp, 1e-6f, act, dx, 0, dw, db, 0);
            char nm[64], what[96];
            snprintf(nm, sizeof nm, "gn%zu.%d.dx", ci, v); rec(nm, dx, n);
            snprintf(nm, sizeof nm, "gn%zu.%d.dw", ci, v); rec(nm, dw, C);
            snprintf(nm, sizeof nm, "gn%zu.%d.db", ci, v); rec(nm, db, C);
            double *rdx = dbuf(n), *rdw = dbuf(C), *rdb = dbuf(C), *xh = dbuf(gs), *gg = dbuf(gs), floor = 0;
            if (g_ref)
                for (int bb = 0; bb < B; bb++)
                    for (int g = 0; g < G; g++) {
                        size_t o = ((size_t)bb * C + g * cpg) * HW;
                        double mean = 0, var = 0, s1 = 0, s2 = 0;
                        for (size_t i = 0; i < gs; i++) mean += x[o + i];
                        mean /= gs;
                        for (size_t i = 0; i < gs; i++) var += (x[o + i] - mean) * (x[o + i] - mean);
                        var /= gs;
                        double rstd = 1 / sqrt(var + 1e-6);
                        for (size_t i = 0; i < gs; i++) {
                            int ch = g * cpg + (int)(i / HW);
                            double ww = hasw ? w[ch] : 1, bw = hasw ? b[ch] : 0;
                            xh[i] = (x[o + i] - mean) * rstd;
                            double pre = xh[i] * ww + bw, dpre = dy[o + i] * (act ? silu_d(pre) : 1.0);
                            rdw[ch] += dpre * xh[i];
                            rdb[ch] += dpre;
                            gg[i] = dpre * ww;
                            s1 += gg[i]; s2 += gg[i] * xh[i];
                        }
                        for (size_t i = 0; i < gs; i++) {
                            rdx[o + i] = rstd * (gg[i] - s1 / gs - xh[i] * s2 / gs);
                            if (fabs(rstd * gg[i]) > floor) floor = fabs(rstd * gg[i]);
                        }
                    }
            snprintf(what, sizeof what, "group_norm_bwd B=%d C=%d HW=%d G=%d act=%d w=%d", B, C, HW, G, act, hasw);
            g_floor = floor;
            check_rel(G_GN, "group_norm_bwd", dx, rdx, NULL, n, 2e-5 * sqrt(gs + 1.0), what);
            g_floor = 0;
            check_rel(G_GN, "group_norm_bwd", dw, rdw, NULL, C, 1e-5 * sqrt(B * HW + 1.0), what);
            check_rel(G_GN, "group_norm_bwd", db, rdb, NULL, C, 1e-5 * sqrt(B * HW + 1.0), what);
            float *sx = frand(n, 94, -1, 1), *sw = frand(C, 95, -1, 1), *sb = frand(C, 96, -1, 1);
            float *ax = fcopy(sx, n), *aw = fcopy(sw, C), *ab = fcopy(sb, C);
            locus_group_norm_bwd(x, dy, B, C, HW, G, wp, bp, 1e-6f, act, ax, 1, aw, ab, 1);
            g_floor = floor;
            check_rel(G_GN, "group_norm_bwd", ax, rdx, sx, n, 2e-5 * sqrt(gs + 1.0), what);
            g_floor = 0;
            check_rel(G_GN, "group_norm_bwd", aw, rdw, sw, C, 1e-5 * sqrt(B * HW + 1.0), what);
            check_rel(G_GN, "group_norm_bwd", ab, rdb, sb, C, 1e-5 * sqrt(B * HW + 1.0), what);
            /* NULL outputs; batch split over two accum calls == one chain */
            float *x1 = fbuf(n), *w1 = fbuf(C), *b1 = fbuf(C);
            locus_group_norm_bwd(x, dy, B, C, HW, G, wp, bp, 1e-6f, act, x1, 0, NULL, NULL, 0);
            if (B > 1) {
                size_t is = (size_t)C * HW;
                locus_group_norm_bwd(x, dy, 1, C, HW, G, wp, bp, 1e-6f, act, NULL, 0, w1, b1, 0);
                locus_group_norm_bwd(x + is, dy + is, B - 1, C, HW, G, wp, bp, 1e-6f, act, NULL, 0, w1, b1, 1);
            } else {
                locus_group_norm_bwd(x, dy, B, C, HW, G, wp, bp, 1e-6f, act, NULL, 0, w1, NULL, 0);
                locus_group_norm_bwd(x, dy, B, C, HW, G, wp, bp, 1e-6f, act, NULL, 0, NULL, b1, 0);
            }
            CHECK(same_bits(x1, dx, n) && same_bits(w1, dw, C) && same_bits(b1, db, C),
                  "%s: NULL outputs / batch split over two accum calls differ (%zu %zu %zu bits)", what, t_bitdiff(x1, dx, n),
                  t_bitdiff(w1, dw, C), t_bitdiff(b1, db, C));
            free(rdx); free(rdw); free(rdb); free(xh); free(gg);
            locus_free(dx); locus_free(dw); locus_free(db); locus_free(sx); locus_free(sw); locus_free(sb);
            locus_free(ax); locus_free(aw); locus_free(ab); locus_free(x1); locus_free(w1); locus_free(b1);
        }
        locus_free(x); locus_free(dy); locus_free(w); locus_free(b);
    }
}

/* ------------------------------------------------------------------ activations, GEGLU, upsample, MSE */

static double act_d(int kind, double v) {
    switch (kind) {
    case LOCUS_ACT_SILU: return silu_d(v);
    case LOCUS_ACT_GELU_ERF: return 0.5 * (1 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2 * M_PI);
    case LOCUS_ACT_GELU_TANH: {
        double c = sqrt(2 / M_PI), t = tanh(c * (v + 0.044715 * v * v * v));
        return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v);
    }
    case LOCUS_ACT_QUICK_GELU: { double s = 1 / (1 + exp(-1.702 * v)); return s + 1.702 * v * s * (1 - s); }
    default: return 1;
    }
}

static void check_elementwise(void) {
    static const size_t lens[] = {1, 15, 16, 17, 33, 1000, 4097, 20000};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        size_t n = lens[li];
        float *x = frand(n + 1, 100 + n, -6, 6) + 1, *dy = frand(n, 101 + n, -1, 1), *s = frand(n, 102, -1, 1);
        double *r = dbuf(2 * n);
        char nm[64], what[64];
        for (int kind = LOCUS_ACT_NONE; kind <= LOCUS_ACT_QUICK_GELU; kind++) {
            float *dx = fbuf(n + 1) + 1, *ax = fcopy(s, n);
            locus_act_bwd(x, dy, dx, n, kind, 0);
            locus_act_bwd(x, dy, ax, n, kind, 1);
            snprintf(nm, sizeof nm, "act_bwd%d.%zu", kind, n); rec(nm, dx, n);
            for (size_t i = 0; i < n; i++) r[i] = dy[i] * act_d(kind, x[i]);
            snprintf(what, sizeof what, "act_bwd kind=%d n=%zu", kind, n);
            check_rel(G_ACT, "act_bwd", dx, r, NULL, n, 4e-6, what);
            check_rel(G_ACT, "act_bwd", ax, r, s, n, 4e-6, what);
            locus_free(dx - 1); locus_free(ax);
        }
        /* GEGLU over rows of 2 * half */
        size_t half = n, rows = n > 1000 ? 2 : 3;
        float *gx = frand(rows * 2 * half, 103 + n, -4, 4), *gdy = frand(rows * half, 104 + n, -1, 1);
        float *gdx = fbuf(rows * 2 * half), *gs = frand(rows * 2 * half, 105, -1, 1), *gax = fcopy(gs, rows * 2 * half);
        double *gr = dbuf(rows * 2 * half);
        locus_geglu_bwd(gx, gdy, gdx, rows, half, 0);
        locus_geglu_bwd(gx, gdy, gax, rows, half, 1);
        snprintf(nm, sizeof nm, "geglu_bwd%zu", n); rec(nm, gdx, rows * 2 * half);
        for (size_t rr = 0; rr < rows; rr++)
            for (size_t i = 0; i < half; i++) {
                double a = gx[rr * 2 * half + i], g = gx[rr * 2 * half + half + i], d = gdy[rr * half + i];
                gr[rr * 2 * half + i] = d * 0.5 * g * (1 + erf(g / sqrt(2.0)));
                gr[rr * 2 * half + half + i] = d * a * act_d(LOCUS_ACT_GELU_ERF, g);
            }
        snprintf(what, sizeof what, "geglu_bwd half=%zu", half);
        check_rel(G_GEGLU, "geglu_bwd", gdx, gr, NULL, rows * 2 * half, 4e-6, what);
        check_rel(G_GEGLU, "geglu_bwd", gax, gr, gs, rows * 2 * half, 4e-6, what);
        /* MSE */
        float *grad = fbuf(n + 1) + 1;
        float loss = locus_mse_loss(x, dy, n, grad, 0.5f);
        double rl = 0;
        for (size_t i = 0; i < n; i++) { double d = (double)x[i] - dy[i]; rl += d * d; r[i] = 0.5 * 2 * d / n; }
        rl /= n;
        snprintf(nm, sizeof nm, "mse_grad%zu", n); rec(nm, grad, n);
        snprintf(nm, sizeof nm, "mse_loss%zu", n); rec(nm, &loss, 1);
        snprintf(what, sizeof what, "mse n=%zu", n);
        check_rel(G_MSE, "mse_loss", grad, r, NULL, n, 1e-6, what);
        check_rel(G_MSE, "mse_loss", &loss, &rl, NULL, 1, 1e-5 * sqrt(n / 16.0 + 1), what);
        CHECK(locus_mse_loss(x, dy, n, NULL, 0.5f) == loss, "mse n=%zu: loss without grad differs", n);
        free(r); free(gr);
        locus_free(x - 1); locus_free(dy); locus_free(s); locus_free(gx); locus_free(gdy); locus_free(gdx); locus_free(gs); locus_free(gax);
        locus_free(grad - 1);
    }
    /* upsample nearest 2x backward */
    static const int us[][4] = {{1, 2, 3, 5}, {2, 3, 8, 8}, {1, 64, 16, 17}};
    for (size_t ui = 0; ui < 3; ui++) {
        int B = us[ui][0], C = us[ui][1], H = us[ui][2], W = us[ui][3];
        size_t nx = (size_t)B * C * H * W;
        float *dy = frand(4 * nx, 110 + ui, -1, 1), *dx = fbuf(nx), *s = frand(nx, 111, -1, 1), *ax = fcopy(s, nx);
        double *r = dbuf(nx);
        for (size_t p = 0; p < (size_t)B * C; p++)
            for (int i = 0; i < 2 * H; i++)
                for (int j = 0; j < 2 * W; j++) r[p * H * W + (i / 2) * W + j / 2] += dy[p * 4 * H * W + (size_t)i * 2 * W + j];
        locus_upsample_nearest2x_bwd(dy, dx, B, C, H, W, 0);
        locus_upsample_nearest2x_bwd(dy, ax, B, C, H, W, 1);
        char nm[64], what[64];
        snprintf(nm, sizeof nm, "upsample_bwd%zu", ui); rec(nm, dx, nx);
        snprintf(what, sizeof what, "upsample_nearest2x_bwd %dx%dx%dx%d", B, C, H, W);
        check_rel(G_UP, "upsample_nearest2x_bwd", dx, r, NULL, nx, 1e-6, what);
        check_rel(G_UP, "upsample_nearest2x_bwd", ax, r, s, nx, 1e-6, what);
        free(r); locus_free(dy); locus_free(dx); locus_free(s); locus_free(ax);
    }
}

/* ------------------------------------------------------------------ in place (where ops_bwd.h allows it) */

static void check_in_place(void) {
    size_t M = 37, K = 40, N = 24, n = M * K;
    float *x = frand(n, 120, -2, 2), *W = frand(N * K, 121, -1, 1), *dy = frand(M * N, 122, -1, 1), *w = frand(K, 123, 0.5f, 1.5f);
    float *dyn = frand(n, 124, -1, 1), *ref = fbuf(n), *dw = fbuf(N * K), *dw2 = fbuf(N * K), *db = fbuf(N), *db2 = fbuf(N), *t = fbuf(n);
    locus_linear_bwd(x, W, dy, (int)M, (int)K, (int)N, ref, 0, dw, db, 0);
    memcpy(t, x, n * sizeof(float));
    locus_linear_bwd(t, W, dy, (int)M, (int)K, (int)N, t, 0, dw2, db2, 0);
    CHECK(same_bits(t, ref, n) && same_bits(dw, dw2, N * K) && same_bits(db, db2, N), "linear_bwd dx == x in place differs");
    for (int which = 0; which <= 1; which++) { /* layer norm: dx == x, dx == dy */
        float *lw = fbuf(K), *lb = fbuf(K), *lw2 = fbuf(K), *lb2 = fbuf(K);
        locus_layer_norm_bwd(x, dyn, M, K, w, 1e-5f, ref, 0, lw, lb, 0);
        memcpy(t, which ? dyn : x, n * sizeof(float));
        locus_layer_norm_bwd(which ? x : t, which ? t : dyn, M, K, w, 1e-5f, t, 0, lw2, lb2, 0);
        CHECK(same_bits(t, ref, n) && same_bits(lw, lw2, K) && same_bits(lb, lb2, K), "layer_norm_bwd dx == %s in place differs", which ? "dy" : "x");
        locus_rms_norm_bwd(x, dyn, M, K, w, 1e-6f, ref, 0, lw, 0);
        memcpy(t, which ? dyn : x, n * sizeof(float));
        locus_rms_norm_bwd(which ? x : t, which ? t : dyn, M, K, w, 1e-6f, t, 0, lw2, 0);
        CHECK(same_bits(t, ref, n) && same_bits(lw, lw2, K), "rms_norm_bwd dx == %s in place differs", which ? "dy" : "x");
        locus_act_bwd(x, dyn, ref, n, LOCUS_ACT_GELU_TANH, 0);
        memcpy(t, which ? dyn : x, n * sizeof(float));
        locus_act_bwd(which ? x : t, which ? t : dyn, t, n, LOCUS_ACT_GELU_TANH, 0);
        CHECK(same_bits(t, ref, n), "act_bwd dx == %s in place differs", which ? "dy" : "x");
        locus_free(lw); locus_free(lb); locus_free(lw2); locus_free(lb2);
    }
    locus_geglu_bwd(x, dyn, ref, M, K / 2, 0); /* x as [M, K], dy as [M, K/2] */
    memcpy(t, x, n * sizeof(float));
    locus_geglu_bwd(t, dyn, t, M, K / 2, 0);
    CHECK(same_bits(t, ref, n), "geglu_bwd dx == x in place differs");
    float l1 = locus_mse_loss(x, dyn, n, ref, 0.25f);
    memcpy(t, x, n * sizeof(float));
    float l2 = locus_mse_loss(t, dyn, n, t, 0.25f);
    CHECK(same_bits(t, ref, n) && l1 == l2, "mse grad == a in place differs");
    locus_free(x); locus_free(W); locus_free(dy); locus_free(w); locus_free(dyn); locus_free(ref);
    locus_free(dw); locus_free(dw2); locus_free(db); locus_free(db2); locus_free(t);
}

/* ------------------------------------------------------------------ main */

static void run_all(void) {
    g_nh = 0;
    check_gemm_accum();
    check_linear();
    check_conv();
    check_attention();
    check_attention_empty();
    check_norms();
    check_group_norm();
    check_elementwise();
    check_in_place();
}

int main(void) {
    static hrec base[4096];
    int nbase = 0;
    char base_label[64] = "";
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++) {
            locus_set_threads(th);
            g_ref = th == 1;
            run_all();
            if (!nbase) {
                memcpy(base, g_h, sizeof(hrec) * g_nh);
                nbase = g_nh;
                snprintf(base_label, sizeof base_label, "%s threads=%d", locus_isa_name(), th);
                continue;
            }
            int bad = g_nh != nbase;
            for (int i = 0; !bad && i < g_nh; i++)
                if (g_h[i].h != base[i].h || strcmp(g_h[i].name, base[i].name)) {
                    fprintf(stderr, "  %s threads=%d: %s differs from %s\n", locus_isa_name(), th, g_h[i].name, base_label);
                    bad = 1;
                }
            CHECK(!bad, "bit-identical gradients: %s threads=%d vs %s", locus_isa_name(), th, base_label);
        }
    }
    for (int g = 0; g < G_COUNT; g++)
        if (g_worst_name[g]) printf("%-24s worst max|diff|/max|ref| over all cases and ISAs: %.3g\n", g_worst_name[g], g_worst[g]);
    printf("gradients compared bitwise over %d hashed outputs per (ISA, threads)\n", nbase);
    return t_finish("test_kernels_bwd");
}
