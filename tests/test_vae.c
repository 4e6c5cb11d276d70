/* test_vae.c — AutoencoderKL parity with diffusers: every act.* of tests/golden/ldm/golden_vae, the latent
 * mean/logvar and the decoded image within 1e-4 relative; bit-identical decode across ISAs and threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../models/vae.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"

int main(void) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    char p[512];
    locus_vae v;
    snprintf(p, sizeof p, "%s/ldm/vae", G);
    if (locus_vae_load(&v, p) != LOCUS_OK) { CHECK(0, "load: %s", locus_errmsg()); return t_finish("test_vae"); }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/ldm/golden_vae.safetensors", G);
    if (locus_st_open(&g, p) != LOCUS_OK) { CHECK(0, "%s", locus_errmsg()); return t_finish("test_vae"); }
    int64_t ni, nm;
    float *img = golden_f32(&g, "input.image", &ni), *gmean = golden_f32(&g, "output.latent_mean", &nm);
    float *mean = malloc(nm * 4), *logvar = malloc(nm * 4), *dec = malloc(ni * 4), *dec2 = malloc(ni * 4);
    parity_ctx pc = {&g, "act.", 0, 0, 0, "", getenv("LOCUS_VERBOSE") != NULL};
    locus_hooks hooks = locus_hooks_one(parity_hook, &pc);
    locus_vae_encode(&v, img, 1, 16, 16, mean, logvar, &hooks);
    locus_vae_decode(&v, gmean, 1, 8, 8, dec, &hooks);
    double rm = parity_rel(&g, "output.latent_mean", mean, nm), rl = parity_rel(&g, "output.latent_logvar", logvar, nm),
           rd = parity_rel(&g, "output.decoded", dec, ni);
    int nact = 0;
    for (size_t i = 0; i < g.count; i++) nact += !strncmp(g.tensors[i].name, "act.", 4);
    printf("vae parity: %d of %d act tensors, worst %.2e (%s); mean %.2e logvar %.2e decoded %.2e\n", pc.matched, nact, pc.worst,
           pc.worst_name, rm, rl, rd);
    CHECK(pc.matched == nact && pc.shape_bad == 0, "every act.* golden visited (%d of %d)", pc.matched, nact);
    CHECK(pc.worst <= 1e-4, "vae activations within 1e-4 (worst %.2e at %s)", pc.worst, pc.worst_name);
    CHECK(rm >= 0 && rm <= 1e-4 && rl >= 0 && rl <= 1e-4 && rd >= 0 && rd <= 1e-4, "vae outputs within 1e-4 (%.2e %.2e %.2e)", rm, rl, rd);
    uint64_t h0 = locus_fnv1a(LOCUS_FNV_INIT, dec, ni * 4);
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++) {
            locus_set_threads(th);
            locus_vae_decode(&v, gmean, 1, 8, 8, dec2, NULL);
            CHECK(locus_fnv1a(LOCUS_FNV_INIT, dec2, ni * 4) == h0, "vae decode bits: %s threads=%d differ", locus_isa_name(), th);
        }
    }
    free(img); free(gmean); free(mean); free(logvar); free(dec); free(dec2);
    locus_st_close(&g);
    locus_vae_free(&v);
    return t_finish("test_vae");
}
