/* bench_models.c — real-sized model evaluations with seeded random weights (no download).
 *
 *   bench_models THREADS
 * SD1.5 UNet (benchmarks/configs/sd15-unet.json) on one classifier-free-guidance pair: batch 2, 32x32
 * latents (256x256 images), 77 text tokens; the SD1.5 VAE decoding one 32x32 latent to 256x256; and the
 * SD3-medium MMDiT (benchmarks/configs/sd3-medium-transformer.json) on a CFG pair: batch 2, 32x32 latents,
 * 154 context tokens.
 * Prints the best of two timed runs and GFLOP/s (GEMM/conv/attention multiply-adds counted by locus).
 * Reports only; never fails on timing.
 *
 *   bench_models THREADS sdxl [PIXELS]
 * Only the SDXL base 1.0 UNet (benchmarks/configs/sdxl-base-unet.json, 2.6e9 parameters: about 10.3 GB of fp32
 * weights, so not part of `make bench`) on one CFG pair at PIXELS x PIXELS (default 1024: 128x128 latents),
 * 77 tokens of width 2048, pooled text + size conditioning: the time of one sampling step, one run.
 *
 *   bench_models THREADS if CONFIG [PIXELS]
 * A DeepFloyd IF stage I UNet from CONFIG (its unet/config.json; IF-I-XL's is not shipped: put the downloaded
 * one there) on one CFG pair at PIXELS x PIXELS (default 64, the stage-I size), 77 T5 tokens: one sampling
 * step, one run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/arena.h"
#include "../core/rng.h"
#include "../models/if_unet.h"
#include "../models/mmdit.h"
#include "../models/unet.h"
#include "../models/vae.h"
#include "../simd/ops.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* one CFG step of the SDXL base UNet at px x px */
static int bench_sdxl(int T, int px) {
    locus_unet u;
    double t0 = now();
    if (locus_unet_load_random(&u, "benchmarks/configs/sdxl-base-unet.json", 4)) { fprintf(stderr, "bench_models: %s\n", locus_errmsg()); return 2; }
    fprintf(stderr, "  (sdxl base unet: %zu parameters, random init %.1f s)\n", locus_unet_params(&u), now() - t0);
    int B = 2, h = px / 8, w = px / 8, S = 77, C = u.in_channels, P = u.add_text_dim + UNET_TIME_IDS;
    float *x = locus_alloc((size_t)B * C * h * w * 4), *ctx = locus_alloc((size_t)B * S * u.ctx_dim * 4), *out = locus_alloc((size_t)B * C * h * w * 4);
    float *pooled = locus_alloc((size_t)B * P * 4); /* [B, 1280 + 6]: pooled text, then original/crop/target size */
    locus_randn(13, x, (size_t)B * C * h * w);
    locus_fill_uniform(14, ctx, (size_t)B * S * u.ctx_dim, -1, 1);
    locus_fill_uniform(15, pooled, (size_t)B * P, -1, 1);
    for (int b = 0; b < B; b++) {
        float ids[6] = {(float)px, (float)px, 0, 0, (float)px, (float)px};
        for (int k = 0; k < 6; k++) pooled[(size_t)b * P + u.add_text_dim + k] = ids[k];
    }
    float ts[2] = {999, 999};
    double f0 = locus_gemm_flops(), a = now();
    locus_unet_forward_cond(&u, x, B, h, w, ts, ctx, S, pooled, out, NULL);
    double dt = now() - a, flops = locus_gemm_flops() - f0;
    printf("unet_sdxl_base batch=2 latent=%dx%d (%dx%d px) tokens=77 threads=%d isa=%s seconds=%.2f gflop=%.0f gflops=%.1f peak_mib=%.0f\n", h, w, px, px, T,
           locus_isa_name(), dt, flops * 1e-9, flops / dt * 1e-9, (double)locus_mem_peak() / (1 << 20));
    locus_free(x); locus_free(ctx); locus_free(out); locus_free(pooled);
    locus_unet_free(&u);
    return 0;
}

/* one CFG step of a DeepFloyd IF stage I UNet (config file cfg, random weights) at px x px */
static int bench_if(int T, const char *cfg, int px) {
    locus_if_unet *u = calloc(1, sizeof *u);
    double t0 = now();
    if (!u || locus_if_unet_load_random(u, cfg, 5)) { fprintf(stderr, "bench_models: %s\n", u ? locus_errmsg() : "out of memory"); free(u); return 2; }
    int mult = 1 << (u->nblocks - 1);
    if (px % mult) { fprintf(stderr, "bench_models: PIXELS must be a multiple of %d for this UNet\n", mult); locus_if_unet_free(u); free(u); return 2; }
    fprintf(stderr, "  (IF unet %s: %zu parameters, random init %.1f s)\n", cfg, u->L.nparams, now() - t0);
    int B = 2, h = px, w = px, S = 77, E = u->hid_dim ? u->hid_dim : u->cross_dim;
    float *x = locus_alloc((size_t)B * u->in_channels * h * w * 4), *ctx = locus_alloc((size_t)B * S * E * 4);
    float *out = locus_alloc((size_t)B * u->out_channels * h * w * 4);
    locus_randn(16, x, (size_t)B * u->in_channels * h * w);
    locus_fill_uniform(17, ctx, (size_t)B * S * E, -1, 1);
    float ts[2] = {999, 999};
    double f0 = locus_gemm_flops(), a = now();
    locus_if_unet_forward(u, x, B, h, w, ts, ctx, S, out, NULL);
    double dt = now() - a, flops = locus_gemm_flops() - f0;
    printf("unet_if batch=2 image=%dx%d tokens=77 params=%zu threads=%d isa=%s seconds=%.2f gflop=%.0f gflops=%.1f peak_mib=%.0f\n", h, w, u->L.nparams, T,
           locus_isa_name(), dt, flops * 1e-9, flops / dt * 1e-9, (double)locus_mem_peak() / (1 << 20));
    locus_free(x); locus_free(ctx); locus_free(out);
    locus_if_unet_free(u);
    free(u);
    return 0;
}

int main(int argc, char **argv) {
    int sdxl = argc >= 3 && !strcmp(argv[2], "sdxl"), ifu = argc >= 4 && !strcmp(argv[2], "if");
    if (argc < 2 || atoi(argv[1]) <= 0 || (argc > 2 && !sdxl && !ifu) || argc > (ifu ? 5 : 4) ||
        (sdxl && argc == 4 && (atoi(argv[3]) < 64 || atoi(argv[3]) % 64)) || (ifu && argc == 5 && (atoi(argv[4]) < 8 || atoi(argv[4]) > 4096))) {
        fprintf(stderr, "usage: bench_models THREADS [sdxl [PIXELS, a multiple of 64] | if CONFIG [PIXELS]]\n");
        return 2;
    }
    locus_choose_wait_policy(argv);
    int T = atoi(argv[1]);
    locus_set_threads(T);
    if (sdxl) return bench_sdxl(T, argc == 4 ? atoi(argv[3]) : 1024);
    if (ifu) return bench_if(T, argv[3], argc == 5 ? atoi(argv[4]) : 64);
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

    locus_mmdit m;
    t0 = now();
    if (locus_mmdit_load_random(&m, "benchmarks/configs/sd3-medium-transformer.json", 3)) { fprintf(stderr, "bench_models: %s\n", locus_errmsg()); return 2; }
    fprintf(stderr, "  (sd3-medium transformer: %zu parameters, random init %.1f s)\n", m.L.nparams, now() - t0);
    int S3 = 154;
    float *x3 = locus_alloc((size_t)2 * 16 * 32 * 32 * 4), *c3 = locus_alloc((size_t)2 * S3 * m.joint_dim * 4), *p3 = locus_alloc((size_t)2 * m.pooled_dim * 4),
          *o3 = locus_alloc((size_t)2 * 16 * 32 * 32 * 4);
    locus_randn(10, x3, (size_t)2 * 16 * 32 * 32);
    locus_fill_uniform(11, c3, (size_t)2 * S3 * m.joint_dim, -1, 1);
    locus_fill_uniform(12, p3, (size_t)2 * m.pooled_dim, -1, 1);
    float t3[2] = {1000.0f, 1000.0f};
    double f0 = locus_gemm_flops(), a = now();
    locus_mmdit_forward(&m, x3, 2, 32, 32, t3, c3, S3, p3, o3, NULL);
    double dt = now() - a;
    flops = locus_gemm_flops() - f0;
    printf("mmdit_sd3_medium batch=2 latent=32x32 tokens=154 threads=%d isa=%s seconds=%.2f gflop=%.0f gflops=%.1f\n", T, locus_isa_name(), dt,
           flops * 1e-9, flops / dt * 1e-9);
    locus_free(x3); locus_free(c3); locus_free(p3); locus_free(o3);
    locus_mmdit_free(&m);
    return 0;
}
