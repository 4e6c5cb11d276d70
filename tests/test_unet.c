/* test_unet.c — UNet2DConditionModel parity with diffusers: every act.* of tests/golden/ldm/golden_unet and
 * the output, within max|diff| <= 1e-4 * max|golden| per tensor; bit-identical output across ISAs and
 * thread counts; bad folders give clear errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../models/unet.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"

static const char *G;

static void test_golden_unet(void) {
    char p[512];
    locus_unet u;
    snprintf(p, sizeof p, "%s/ldm/unet", G);
    if (locus_unet_load(&u, p) != LOCUS_OK) { CHECK(0, "load %s: %s", p, locus_errmsg()); return; }
    printf("ldm unet: %zu parameters\n", locus_unet_params(&u));
    locus_st_file g;
    snprintf(p, sizeof p, "%s/ldm/golden_unet.safetensors", G);
    if (locus_st_open(&g, p) != LOCUS_OK) { CHECK(0, "%s", locus_errmsg()); locus_unet_free(&u); return; }
    int64_t ns, nt, nc;
    float *x = golden_f32(&g, "input.sample", &ns), *ts = golden_f32(&g, "input.timestep", &nt);
    const locus_st_tensor *tt = locus_st_find(&g, "input.timestep");
    int64_t ti[2];
    locus_st_to_i64(tt, ti, 2);
    float tf[2] = {(float)ti[0], (float)ti[1]};
    float *ctx = golden_f32(&g, "input.encoder_hidden_states", &nc);
    const locus_st_tensor *ct = locus_st_find(&g, "input.encoder_hidden_states");
    int B = 2, H = 8, W = 8, S = (int)ct->shape[1];
    float *out = malloc(ns * sizeof(float)), *out2 = malloc(ns * sizeof(float));
    parity_ctx pc = {&g, "act.", 0, 0, 0, "", getenv("LOCUS_VERBOSE") != NULL};
    locus_hooks hooks = locus_hooks_one(parity_hook, &pc);
    locus_unet_forward(&u, x, B, H, W, tf, ctx, S, out, &hooks);
    double r = parity_rel(&g, "output.sample", out, ns);
    printf("unet parity: %d act tensors matched, worst %.2e (%s); output.sample %.2e\n", pc.matched, pc.worst, pc.worst_name, r);
    int nact = 0;
    for (size_t i = 0; i < g.count; i++) nact += !strncmp(g.tensors[i].name, "act.", 4);
    CHECK(pc.matched == nact && pc.shape_bad == 0, "every act.* golden visited: %d of %d", pc.matched, nact);
    CHECK(pc.worst <= 1e-4, "unet activations within 1e-4 relative (worst %.2e at %s)", pc.worst, pc.worst_name);
    CHECK(r >= 0 && r <= 1e-4, "unet output within 1e-4 relative (%.2e)", r);
    /* bit-identical across ISAs and threads */
    uint64_t h0 = locus_fnv1a(LOCUS_FNV_INIT, out, ns * sizeof(float));
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++) {
            locus_set_threads(th);
            locus_unet_forward(&u, x, B, H, W, tf, ctx, S, out2, NULL);
            uint64_t h = locus_fnv1a(LOCUS_FNV_INIT, out2, ns * sizeof(float));
            CHECK(h == h0, "unet output bits: %s threads=%d differ", locus_isa_name(), th);
        }
    }
    free(x); free(ts); free(ctx); free(out); free(out2);
    locus_st_close(&g);
    locus_unet_free(&u);
}

static void test_bad_unet(void) {
    locus_unet u;
    CHECK(locus_unet_load(&u, "/nonexistent/unet") != LOCUS_OK && strstr(locus_errmsg(), "/nonexistent/unet"), "missing folder: %s", locus_errmsg());
    char p[512];
    snprintf(p, sizeof p, "%s/ldm/vae", G); /* a folder with the wrong model */
    CHECK(locus_unet_load(&u, p) == LOCUS_E_UNSUPPORTED && strstr(locus_errmsg(), "AutoencoderKL"), "wrong class: %s", locus_errmsg());
}

/* --hash: the output hash of the golden-input forward under the current LOCUS_ISA / LOCUS_THREADS (compared
 * with the aarch64 build under qemu by tests/neon_compare.sh) */
static int print_hash(void) {
    char p[512];
    locus_unet u;
    snprintf(p, sizeof p, "%s/ldm/unet", G);
    if (locus_unet_load(&u, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/ldm/golden_unet.safetensors", G);
    if (locus_st_open(&g, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    int64_t ns, nc, ti[2];
    float *x = golden_f32(&g, "input.sample", &ns), *ctx = golden_f32(&g, "input.encoder_hidden_states", &nc);
    locus_st_to_i64(locus_st_find(&g, "input.timestep"), ti, 2);
    float tf[2] = {(float)ti[0], (float)ti[1]}, *out = malloc(ns * sizeof(float));
    locus_unet_forward(&u, x, 2, 8, 8, tf, ctx, (int)locus_st_find(&g, "input.encoder_hidden_states")->shape[1], out, NULL);
    printf("unet_ldm %016llx\n", (unsigned long long)locus_fnv1a(LOCUS_FNV_INIT, out, ns * sizeof(float)));
    free(x); free(ctx); free(out);
    locus_st_close(&g);
    locus_unet_free(&u);
    return 0;
}

int main(int argc, char **argv) {
    G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    if (argc > 1 && !strcmp(argv[1], "--hash")) return print_hash();
    test_golden_unet();
    test_bad_unet();
    return t_finish("test_unet");
}
