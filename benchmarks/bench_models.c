/* bench_models.c — real-sized model evaluations with seeded random weights (no download).
 *
 *   bench_models THREADS
 * SD1.5 UNet (benchmarks/configs/sd15-unet.json) on one classifier-free-guidance pair: batch 2, 32x32
 * latents (256x256 images), 77 text tokens; and the SD1.5 VAE decoding one 32x32 latent to 256x256.
 * Prints the best of two timed runs and GFLOP/s (GEMM/conv/attention multiply-adds counted by locus).
 * Reports only; never fails on timing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../core/arena.h"
#include "../core/rng.h"
#include "../models/unet.h"
#include "../models/vae.h"
#include "../simd/ops.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: bench_models THREADS\n");
        return 2;
    }
    locus_prefer_passive_wait(argv);
    int T = atoi(argv[1]);
    locus_set_threads(T);
    locus_unet u;
    double t0 = now();
    if (locus_unet_load_random(&u, "benchmarks/configs/sd15-unet.json", 1)) { fprintf(stderr, "bench_models: %s\n", locus_errmsg()); return 2; }
    fprintf(stderr, "  (sd15 unet: %zu parameters, random init %.1f s)\n", locus_unet_params(&u), now() - t0);
    int B = 2, h = 32, w = 32, S = 77, C = u.in_channels;
    float *x = locus_alloc((size_t)B * C * h * w * 4), *ctx = locus_alloc((size_t)B * S * u.ctx_dim * 4), *out = locus_alloc((size_t)B * C * h * w * 4);
    locus_randn(7, x, (size_t)B * C * h * w);
    locus_fill_uniform(8, ctx, (size_t)B * S * u.ctx_dim, -1, 1);
    float ts[2] = {999, 999};
    double best = 1e30, flops = 0;
    for (int r = 0; r < 2; r++) {
        double f0 = locus_gemm_flops(), a = now();
        locus_unet_forward(&u, x, B, h, w, ts, ctx, S, out, NULL);
        double dt = now() - a;
        flops = locus_gemm_flops() - f0;
        if (dt < best) best = dt;
    }
    printf("unet_sd15 batch=2 latent=32x32 tokens=77 threads=%d isa=%s seconds=%.2f gflop=%.0f gflops=%.1f\n", T, locus_isa_name(), best, flops * 1e-9,
           flops / best * 1e-9);
    locus_free(x); locus_free(ctx); locus_free(out);
    locus_unet_free(&u);

    locus_vae v;
    if (locus_vae_load_random(&v, "benchmarks/configs/sd15-vae.json", 2)) { fprintf(stderr, "bench_models: %s\n", locus_errmsg()); return 2; }
    float *z = locus_alloc((size_t)4 * 32 * 32 * 4), *img = locus_alloc((size_t)3 * 256 * 256 * 4);
    locus_randn(9, z, 4 * 32 * 32);
    best = 1e30;
    for (int r = 0; r < 2; r++) {
        double f0 = locus_gemm_flops(), a = now();
        locus_vae_decode(&v, z, 1, 32, 32, img, NULL);
        double dt = now() - a;
        flops = locus_gemm_flops() - f0;
        if (dt < best) best = dt;
    }
    printf("vae_sd15_decode 256x256 threads=%d isa=%s seconds=%.2f gflop=%.0f gflops=%.1f\n", T, locus_isa_name(), best, flops * 1e-9, flops / best * 1e-9);
    locus_free(z); locus_free(img);
    locus_vae_free(&v);
    return 0;
}
