/* test_mmdit.c — SD3Transformer2DModel parity with diffusers (tests/golden/sd3 and sd35 golden_transformer:
 * every act.* and the output within 1e-4 relative), bit-identical output across ISAs and threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../models/mmdit.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"

static void run(const char *G, const char *name) {
    char p[512];
    locus_mmdit m;
    snprintf(p, sizeof p, "%s/%s/transformer", G, name);
    if (locus_mmdit_load(&m, p)) { CHECK(0, "%s: %s", name, locus_errmsg()); return; }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/%s/golden_transformer.safetensors", G, name);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); locus_mmdit_free(&m); return; }
    int64_t nx, nt, nc, np;
    float *x = golden_f32(&g, "input.hidden_states", &nx), *t = golden_f32(&g, "input.timestep", &nt);
    float *c = golden_f32(&g, "input.encoder_hidden_states", &nc), *pl = golden_f32(&g, "input.pooled_projections", &np);
    const locus_st_tensor *ct = locus_st_find(&g, "input.encoder_hidden_states"), *xt = locus_st_find(&g, "input.hidden_states");
    int B = (int)xt->shape[0], H = (int)xt->shape[2], W = (int)xt->shape[3], S = (int)ct->shape[1];
    float *out = malloc(nx * 4), *out2 = malloc(nx * 4);
    parity_ctx pc = {&g, "act.", 0, 0, 0, "", getenv("LOCUS_VERBOSE") != NULL};
    locus_hooks hooks = locus_hooks_one(parity_hook, &pc);
    locus_mmdit_forward(&m, x, B, H, W, t, c, S, pl, out, &hooks);
    double r = parity_rel(&g, "output.sample", out, nx);
    int nact = 0;
    for (size_t i = 0; i < g.count; i++) nact += !strncmp(g.tensors[i].name, "act.", 4);
    printf("%s transformer parity: %d of %d act tensors, worst %.2e (%s); output.sample %.2e\n", name, pc.matched, nact, pc.worst, pc.worst_name, r);
    CHECK(pc.matched == nact && pc.shape_bad == 0, "%s: every module output compared (%d of %d)", name, pc.matched, nact);
    CHECK(pc.worst <= 1e-4, "%s activations within 1e-4 (worst %.2e at %s)", name, pc.worst, pc.worst_name);
    CHECK(r >= 0 && r <= 1e-4, "%s output within 1e-4 (%.2e)", name, r);
    uint64_t h0 = locus_fnv1a(LOCUS_FNV_INIT, out, nx * 4);
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++) {
            locus_set_threads(th);
            locus_mmdit_forward(&m, x, B, H, W, t, c, S, pl, out2, NULL);
            CHECK(locus_fnv1a(LOCUS_FNV_INIT, out2, nx * 4) == h0, "%s output bits: %s threads=%d differ", name, locus_isa_name(), th);
        }
    }
    free(x); free(t); free(c); free(pl); free(out); free(out2);
    locus_st_close(&g);
    locus_mmdit_free(&m);
}

/* --hash: output hashes of the golden-input forwards (compared with the aarch64 build by neon_compare.sh) */
static int print_hash(const char *G) {
    static const char *names[2] = {"sd3", "sd35"};
    for (int k = 0; k < 2; k++) {
        char p[512];
        locus_mmdit m;
        snprintf(p, sizeof p, "%s/%s/transformer", G, names[k]);
        if (locus_mmdit_load(&m, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
        locus_st_file g;
        snprintf(p, sizeof p, "%s/%s/golden_transformer.safetensors", G, names[k]);
        if (locus_st_open(&g, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
        int64_t nx, nt, nc, np;
        float *x = golden_f32(&g, "input.hidden_states", &nx), *t = golden_f32(&g, "input.timestep", &nt);
        float *c = golden_f32(&g, "input.encoder_hidden_states", &nc), *pl = golden_f32(&g, "input.pooled_projections", &np);
        float *out = malloc(nx * 4);
        locus_mmdit_forward(&m, x, 2, 8, 8, t, c, (int)locus_st_find(&g, "input.encoder_hidden_states")->shape[1], pl, out, NULL);
        printf("mmdit_%s %016llx\n", names[k], (unsigned long long)locus_fnv1a(LOCUS_FNV_INIT, out, nx * 4));
        free(x); free(t); free(c); free(pl); free(out);
        locus_st_close(&g);
        locus_mmdit_free(&m);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    if (argc > 1 && !strcmp(argv[1], "--hash")) return print_hash(G);
    run(G, "sd3");
    run(G, "sd35");
    return t_finish("test_mmdit");
}
