/* bench_train.c — training cost of a real-sized UNet with seeded random weights (no download).
 *
 *   bench_train THREADS MODE BATCH     MODE: full | full-ckpt | lora | lora-ckpt
 * The SD1.5 UNet (benchmarks/configs/sd15-unet.json) at 256x256 images (32x32 latents), 77 text tokens:
 * an inference forward, then a training forward + backward of the epsilon MSE with gradients of every
 * parameter (full) or of LoRA adapters only (rank 64 on every cross-attention's to_q/to_k/to_v/to_out.0:
 * the paper's recipe on all attn2 layers), with or without per-block gradient checkpointing; a cold round
 * (printed) and WARM_ROUNDS timed ones, each phase's minimum reported.  Prints the times, their ratio and the
 * process's peak memory (one mode per process, so the peak is that mode's).
 * Reports only; never fails on timing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include "../core/arena.h"
#include "../core/rng.h"
#include "../models/denoiser.h"
#include "../models/lora.h"
#include "../models/unet.h"
#include "../simd/ops.h"
#include "../simd/ops_bwd.h"

#define WARM_ROUNDS 3 /* timed rounds after the cold one */

static long minflt(void) { /* page faults so far (each costs ~15 us on the virtual machines locus runs on) */
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 4 || atoi(argv[1]) <= 0 || atoi(argv[3]) <= 0) {
        fprintf(stderr, "usage: bench_train THREADS full|full-ckpt|lora|lora-ckpt BATCH\n");
        return 2;
    }
    locus_choose_wait_policy(argv);
    int T = atoi(argv[1]), B = atoi(argv[3]);
    const char *mode = argv[2];
    int lora = !strncmp(mode, "lora", 4), ckpt = strstr(mode, "ckpt") != NULL;
    locus_set_threads(T);
    locus_loader_set_plain_weights(1); /* the training layout (same bits as packed) */
    locus_unet *u = calloc(1, sizeof *u);
    if (locus_unet_load_random(u, "benchmarks/configs/sd15-unet.json", 1)) { fprintf(stderr, "bench_train: %s\n", locus_errmsg()); return 2; }
    locus_denoiser d;
    locus_unet_denoiser(&d, u);
    locus_grads g;
    locus_grads_init(&g);
    locus_lora lo;
    memset(&lo, 0, sizeof lo);
    int ntracked;
    if (lora) {
        if (locus_lora_create(&lo, &u->L, "*.attn2", "to_q,to_k,to_v,to_out.0", 64, 64, 42)) { fprintf(stderr, "bench_train: %s\n", locus_errmsg()); return 2; }
        for (int i = 0; i < lo.n; i++) {
            int64_t sd[2] = {lo.e[i].ad.r, lo.e[i].in}, su[2] = {lo.e[i].out, lo.e[i].ad.r};
            locus_grads_track(&g, "down", lo.e[i].ad.down, 2, sd);
            locus_grads_track(&g, "up", lo.e[i].ad.up, 2, su);
        }
        ntracked = lo.n * 2;
    } else ntracked = locus_grads_track_loader(&g, &u->L, NULL);
    size_t ng = 0;
    for (size_t i = 0; i < g.n; i++) ng += g.e[i].numel;
    int h = 32, w = 32, S = 77, C = u->in_channels;
    size_t n = (size_t)B * C * h * w;
    float *x = locus_alloc(n * 4), *ctx = locus_alloc((size_t)B * S * u->ctx_dim * 4), *out = locus_alloc(n * 4), *tg = locus_alloc(n * 4),
          *dout = locus_alloc(n * 4), *ts = locus_alloc((size_t)B * 4);
    locus_randn(7, x, n);
    locus_randn(8, tg, n);
    locus_fill_uniform(9, ctx, (size_t)B * S * u->ctx_dim, -1, 1);
    for (int b = 0; b < B; b++) ts[b] = (float)(100 + 400 * b);
    /* Rounds of (inference forward, training step): the first ("cold") also pays for the first touch of every
     * activation and gradient page; the later ones are the steady state of a training loop (gradients zeroed
     * and reused, activations re-allocated as in every step).  Each time reported is the minimum over the
     * warm rounds — the virtual machines locus is measured on have +-15% (at times +-40%) of neighbours'
     * noise, which a single pair of runs turns into a ratio anywhere from 2.5 to 3.4 — and the ratio is the
     * fastest warm training step over the fastest warm inference forward. */
    double tf = 1e30, tfw = 1e30, tb = 1e30, tt = 1e30, ff = 0, ft = 0, cold_f = 0, cold_t = 0;
    float loss = 0;
    long faults = 0;
    for (int round = 0; round <= WARM_ROUNDS; round++) {
        faults = minflt();
        double f0 = locus_gemm_flops(), a = now();
        locus_denoiser_forward(&d, x, B, h, w, ts, ctx, S, NULL, out, NULL);
        double rf = now() - a;
        ff = locus_gemm_flops() - f0;
        locus_grads_zero(&g);
        f0 = locus_gemm_flops();
        a = now();
        void *tape = NULL;
        locus_status st = d.ops->train_forward(&d, x, B, h, w, ts, ctx, S, NULL, out, ckpt, &tape);
        double rfw = now() - a;
        loss = st ? 0 : locus_mse_loss(out, tg, n, dout, 1.0f);
        double b0 = now();
        if (!st) st = d.ops->backward(&d, tape, dout, NULL, NULL, NULL, &g);
        double rb = now() - b0, rt = now() - a;
        ft = locus_gemm_flops() - f0;
        if (st) { fprintf(stderr, "bench_train: %s\n", locus_errmsg()); return 2; }
        faults = minflt() - faults;
        if (round == 0) { cold_f = rf, cold_t = rt; continue; }
        if (rf < tf) tf = rf;
        if (rfw < tfw) tfw = rfw;
        if (rb < tb) tb = rb;
        if (rt < tt) tt = rt;
    }
    printf("train_unet_sd15 mode=%s batch=%d latent=32x32 tokens=77 threads=%d isa=%s min_of_warm_rounds=%d forward=%.2fs train_forward=%.2fs backward=%.2fs "
           "fwd+bwd=%.2fs ratio=%.2f gflops_fwd=%.1f gflops_train=%.1f page_faults=%ld cold: forward=%.2fs fwd+bwd=%.2fs ratio=%.2f tracked=%d (%.1fM values) "
           "loss=%.4f peak_mem=%.2fGiB\n",
           mode, B, T, locus_isa_name(), WARM_ROUNDS, tf, tfw, tb, tt, tt / tf, ff / tf * 1e-9, ft / tt * 1e-9, faults, cold_f, cold_t, cold_t / cold_f, ntracked,
           ng * 1e-6, loss, (double)locus_mem_peak() / (1 << 30));
    return 0;
}
