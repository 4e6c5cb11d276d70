/* bench_kernels.c — attention and convolution throughput as a fraction of this machine's measured FMA peak.
 *
 *   bench_kernels THREADS
 * First measures the fp32 FMA peak of the active ISA table with THREADS threads (independent FMA chains,
 * no memory traffic), then times SD-sized attention and 3x3/1x1 convolutions (best of several runs) and
 * prints one line per case:
 *   attention B=.. H=.. Tq=.. Tk=.. D=.. threads=.. gflops=.. peak_gflops=.. of_peak=..
 * then the backward (gradient) kernels of ops_bwd.h on the same kind of shapes:
 *   linear_bwd / conv2d_bwd_data / conv2d_bwd_weight / attention_bwd ... gflops=.. of_peak=..
 * Reports only; never fails on timing.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../core/arena.h"
#include "../core/rng.h"
#include "../simd/ops.h"
#include "../simd/ops_bwd.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double measure_peak(int T) {
    const locus_row_kernels *rk = locus_k()->row;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double flops = 0, t0 = now();
#pragma omp parallel num_threads(T) reduction(+ : flops)
        {
            float sink;
            flops += rk->fma_burn(20000000 / (locus_k()->isa == LOCUS_ISA_SCALAR ? 50 : 1), &sink);
            if (sink == 12345.0f) printf(" ");
        }
        double g = flops / (now() - t0) * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

/* times fn() until ~0.6 s spent (at least 3 runs), returns the best time */
#define TIME_BEST(best, stmt)                                                                                  \
    do {                                                                                                       \
        stmt;                                                                                                  \
        double spent_ = 0;                                                                                     \
        int runs_ = 0;                                                                                         \
        best = 1e30;                                                                                           \
        while (runs_ < 3 || (spent_ < 0.6 && runs_ < 100)) {                                                   \
            double t0_ = now();                                                                                \
            stmt;                                                                                              \
            double dt_ = now() - t0_;                                                                          \
            if (dt_ < best) best = dt_;                                                                        \
            spent_ += dt_;                                                                                     \
            runs_++;                                                                                           \
        }                                                                                                      \
    } while (0)

/* backward kernels (ops_bwd.h): linear (dx + dw + db), conv data and weight gradients, attention */
static void bench_bwd(int T, double peak) {
    static const int lc[][3] = {{2048, 320, 1280}, {2048, 1280, 320}, {154, 1536, 1536}}; /* M K N */
    for (size_t i = 0; i < sizeof lc / sizeof *lc; i++) {
        int M = lc[i][0], K = lc[i][1], N = lc[i][2];
        float *x = locus_alloc((size_t)M * K * 4), *W = locus_alloc((size_t)N * K * 4), *dy = locus_alloc((size_t)M * N * 4);
        float *dx = locus_alloc((size_t)M * K * 4), *dw = locus_alloc((size_t)N * K * 4), *db = locus_alloc((size_t)N * 4);
        locus_fill_uniform(7, x, (size_t)M * K, -1, 1); locus_fill_uniform(8, W, (size_t)N * K, -1, 1); locus_fill_uniform(9, dy, (size_t)M * N, -1, 1);
        double best;
        TIME_BEST(best, locus_linear_bwd(x, W, dy, M, K, N, dx, 0, dw, db, 0));
        double g = 4.0 * M * (double)K * N / best * 1e-9;
        printf("linear_bwd M=%d K=%d N=%d threads=%d gflops=%.1f peak_gflops=%.1f of_peak=%.2f\n", M, K, N, T, g, peak, g / peak);
        locus_free(x); locus_free(W); locus_free(dy); locus_free(dx); locus_free(dw); locus_free(db);
    }
    static const int cc[][7] = {{2, 320, 32, 32, 320, 3, 1}, {2, 640, 16, 16, 640, 3, 1}, {2, 320, 32, 32, 320, 3, 2}, {2, 640, 16, 16, 1280, 1, 1}};
    for (size_t i = 0; i < sizeof cc / sizeof *cc; i++) {
        int B = cc[i][0], Ci = cc[i][1], H = cc[i][2], W = cc[i][3], Co = cc[i][4], kk = cc[i][5], st = cc[i][6];
        int pad = kk / 2, Ho = (H + 2 * pad - kk) / st + 1, Wo = (W + 2 * pad - kk) / st + 1;
        size_t nx = (size_t)B * Ci * H * W, nw = (size_t)Co * Ci * kk * kk, ny = (size_t)B * Co * Ho * Wo;
        float *x = locus_alloc(nx * 4), *w = locus_alloc(nw * 4), *dy = locus_alloc(ny * 4), *dx = locus_alloc(nx * 4);
        float *dw = locus_alloc(nw * 4), *db = locus_alloc(Co * 4);
        locus_fill_uniform(4, x, nx, -1, 1); locus_fill_uniform(5, w, nw, -0.1f, 0.1f); locus_fill_uniform(6, dy, ny, -1, 1);
        double fl = 2.0 * B * Co * (double)Ho * Wo * Ci * kk * kk, best;
        /* the data gradient's GEMM also multiplies the zero taps of strided convolutions: counted as useful flops only */
        TIME_BEST(best, locus_conv2d_bwd_data(dy, B, Co, Ho, Wo, w, Ci, H, W, kk, kk, st, pad, pad, dx, 0));
        printf("conv2d_bwd_data B=%d Cin=%d H=%d W=%d Cout=%d k=%d stride=%d threads=%d gflops=%.1f peak_gflops=%.1f of_peak=%.2f\n", B, Ci, H, W, Co, kk, st, T, fl / best * 1e-9, peak, fl / best * 1e-9 / peak);
        TIME_BEST(best, locus_conv2d_bwd_weight(dy, x, B, Ci, H, W, Co, kk, kk, st, pad, pad, Ho, Wo, dw, db, 0));
        printf("conv2d_bwd_weight B=%d Cin=%d H=%d W=%d Cout=%d k=%d stride=%d threads=%d gflops=%.1f peak_gflops=%.1f of_peak=%.2f\n", B, Ci, H, W, Co, kk, st, T, fl / best * 1e-9, peak, fl / best * 1e-9 / peak);
        locus_free(x); locus_free(w); locus_free(dy); locus_free(dx); locus_free(dw); locus_free(db);
    }
    static const int ac[][5] = {{2, 8, 1024, 1024, 40}, {2, 8, 1024, 77, 40}};
    for (size_t i = 0; i < sizeof ac / sizeof *ac; i++) {
        int B = ac[i][0], H = ac[i][1], Tq = ac[i][2], Tk = ac[i][3], D = ac[i][4], C = H * D;
        size_t nq = (size_t)B * Tq * C, nk = (size_t)B * Tk * C;
        float *q = locus_alloc(nq * 4), *k = locus_alloc(nk * 4), *v = locus_alloc(nk * 4), *o = locus_alloc(nq * 4);
        float *dO = locus_alloc(nq * 4), *dq = locus_alloc(nq * 4), *dk = locus_alloc(nk * 4), *dv = locus_alloc(nk * 4);
        locus_fill_uniform(1, q, nq, -1, 1); locus_fill_uniform(2, k, nk, -1, 1); locus_fill_uniform(3, v, nk, -1, 1);
        locus_fill_uniform(10, dO, nq, -1, 1);
        locus_attn_desc d = {B, H, Tq, Tk, D, q, (ptrdiff_t)Tq * C, C, k, (ptrdiff_t)Tk * C, C, v, (ptrdiff_t)Tk * C, C,
                             o, (ptrdiff_t)Tq * C, C, 1.0f / sqrtf((float)D), NULL, 0, 0, NULL};
        double best;
        TIME_BEST(best, locus_attention_bwd(&d, dO, dq, dk, dv, 0));
        double g = 10.0 * B * H * (double)Tq * Tk * D / best * 1e-9; /* recompute S + dV, dP, dQ, dK */
        printf("attention_bwd B=%d H=%d Tq=%d Tk=%d D=%d threads=%d gflops=%.1f peak_gflops=%.1f of_peak=%.2f\n", B, H, Tq, Tk, D, T, g, peak, g / peak);
        locus_free(q); locus_free(k); locus_free(v); locus_free(o); locus_free(dO); locus_free(dq); locus_free(dk); locus_free(dv);
    }
}

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: bench_kernels THREADS\n");
        return 2;
    }
    int T = atoi(argv[1]);
    locus_set_threads(T);
    double peak = measure_peak(T);
    printf("fma_peak isa=%s threads=%d peak_gflops=%.1f\n", locus_isa_name(), T, peak);

    /* SD1.5 UNet attention at 256x256 (32x32 latents) and 512x512 (64x64): self and cross */
    static const int ac[][5] = {{2, 8, 1024, 1024, 40}, {2, 8, 1024, 77, 40}, {2, 8, 256, 256, 80}, {2, 8, 4096, 4096, 40}, {2, 24, 1178, 1178, 64}};
    for (size_t i = 0; i < sizeof ac / sizeof *ac; i++) {
        int B = ac[i][0], H = ac[i][1], Tq = ac[i][2], Tk = ac[i][3], D = ac[i][4], C = H * D;
        size_t nq = (size_t)B * Tq * C, nk = (size_t)B * Tk * C;
        float *q = locus_alloc(nq * 4), *k = locus_alloc(nk * 4), *v = locus_alloc(nk * 4), *o = locus_alloc(nq * 4);
        locus_fill_uniform(1, q, nq, -1, 1); locus_fill_uniform(2, k, nk, -1, 1); locus_fill_uniform(3, v, nk, -1, 1);
        locus_attn_desc d = {B, H, Tq, Tk, D, q, (ptrdiff_t)Tq * C, C, k, (ptrdiff_t)Tk * C, C, v, (ptrdiff_t)Tk * C, C,
                             o, (ptrdiff_t)Tq * C, C, 1.0f / sqrtf((float)D), NULL, 0, 0, NULL};
        double best;
        TIME_BEST(best, locus_attention(&d));
        double g = 4.0 * B * H * (double)Tq * Tk * D / best * 1e-9;
        printf("attention B=%d H=%d Tq=%d Tk=%d D=%d threads=%d gflops=%.1f peak_gflops=%.1f of_peak=%.2f\n", B, H, Tq, Tk, D, T, g, peak, g / peak);
        locus_free(q); locus_free(k); locus_free(v); locus_free(o);
    }
    /* SD1.5 UNet / VAE convolutions: B, Cin, H, W, Cout, k, stride */
    static const int cc[][7] = {{2, 320, 32, 32, 320, 3, 1}, {2, 640, 16, 16, 640, 3, 1}, {2, 1280, 8, 8, 1280, 3, 1},
                                {2, 320, 32, 32, 320, 3, 2}, {2, 640, 16, 16, 1280, 1, 1}, {1, 128, 256, 256, 128, 3, 1}};
    for (size_t i = 0; i < sizeof cc / sizeof *cc; i++) {
        int B = cc[i][0], Ci = cc[i][1], H = cc[i][2], W = cc[i][3], Co = cc[i][4], kk = cc[i][5], st = cc[i][6];
        int pad = kk / 2, Ho = (H + 2 * pad - kk) / st + 1, Wo = (W + 2 * pad - kk) / st + 1;
        size_t nx = (size_t)B * Ci * H * W, nw = (size_t)Co * Ci * kk * kk, ny = (size_t)B * Co * Ho * Wo;
        float *x = locus_alloc(nx * 4), *w = locus_alloc(nw * 4), *b = locus_alloc(Co * 4), *y = locus_alloc(ny * 4);
        locus_fill_uniform(4, x, nx, -1, 1); locus_fill_uniform(5, w, nw, -0.1f, 0.1f); locus_fill_uniform(6, b, Co, -1, 1);
        double best;
        TIME_BEST(best, locus_conv2d(x, B, Ci, H, W, w, b, Co, kk, kk, st, pad, y));
        double g = 2.0 * B * Co * (double)Ho * Wo * Ci * kk * kk / best * 1e-9;
        printf("conv2d B=%d Cin=%d H=%d W=%d Cout=%d k=%d stride=%d threads=%d gflops=%.1f peak_gflops=%.1f of_peak=%.2f\n", B, Ci, H, W, Co, kk, st, T, g, peak, g / peak);
        locus_free(x); locus_free(w); locus_free(b); locus_free(y);
    }
    bench_bwd(T, peak);
    return 0;
}
