/* test_sd3.c — SD3 / SD3.5 sampling against diffusers: the SD3 VAE decoder (golden_vae), the flow-matching
 * schedule, the 4-step CFG run (golden_sample base.*), and the paper's MM-DiT text-K/V patching
 * (golden_sample_kvpatch: prompt-B cache of transformer_blocks.1's add_k_proj/add_v_proj at every step, the
 * patched prompt-A run with the conditional half patched, and with both halves), all within 1e-4 relative. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/mmdit.h"
#include "../models/sampler.h"
#include "../models/unet.h"
#include "../models/vae.h"
#include "../experiments/patch.h"
#include "parity.h"
#include "testutil.h"

static void run_model(const char *G, const char *name) {
    char p[512];
    locus_mmdit m;
    locus_vae v;
    locus_scheduler s;
    snprintf(p, sizeof p, "%s/%s/transformer", G, name);
    if (locus_mmdit_load(&m, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    snprintf(p, sizeof p, "%s/sd3/vae", G);
    if (locus_vae_load(&v, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    snprintf(p, sizeof p, "%s/%s/scheduler", G, name);
    if (locus_scheduler_load(&s, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_st_file g, gk;
    snprintf(p, sizeof p, "%s/%s/golden_sample.safetensors", G, name);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    snprintf(p, sizeof p, "%s/%s/golden_sample_kvpatch.safetensors", G, name);
    if (locus_st_open(&gk, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    int64_t nn, ne, np_;
    float *noise = golden_f32(&g, "noise", &nn), *ea = golden_f32(&g, "embeds.a", &ne), *eu = golden_f32(&g, "embeds.uncond", &ne),
          *eb = golden_f32(&g, "embeds.b", &ne), *pa = golden_f32(&g, "pooled.a", &np_), *pu = golden_f32(&g, "pooled.uncond", &np_),
          *pb = golden_f32(&g, "pooled.b", &np_);
    int S = (int)locus_st_find(&g, "embeds.a")->shape[1];
    /* schedule */
    locus_scheduler_set_timesteps(&s, 4);
    double rt = parity_rel(&g, "timesteps", s.timesteps_f, 4), rs = parity_rel(&g, "sigmas", s.sigmas, 5);
    CHECK(rt >= 0 && rt <= 1e-6 && rs >= 0 && rs <= 1e-6, "%s flow-match timesteps/sigmas (%.2e %.2e)", name, rt, rs);
    float *lat = malloc(nn * 4), *img = malloc(3 * 16 * 16 * 4), *z = malloc(nn * 4);
    /* base run */
    parity_steps sc = {&g, "base", 0, "", 0};
    locus_step_cb cb = {parity_step_cb, &sc};
    memcpy(lat, noise, nn * 4);
    locus_denoiser d; /* a view of m (not closed: m lives on this stack frame) */
    locus_mmdit_denoiser(&d, &m);
    locus_cond cu = {eu, pu}, ca = {ea, pa}, cbn = {eb, pb};
    CHECK(locus_sample(&d, &s, 4, 3.0f, lat, 8, 8, &cu, &ca, S, &cb, NULL) == LOCUS_OK, "%s sample", name);
    double rf = parity_rel(&g, "base.final_latent", lat, nn);
    for (int64_t i = 0; i < nn; i++) z[i] = lat[i] / v.scaling_factor + v.shift_factor;
    locus_vae_decode(&v, z, 1, 8, 8, img, NULL);
    double ri = parity_rel(&g, "base.image", img, 3 * 16 * 16);
    printf("%s sampling: %d step tensors, worst %.2e (%s); final_latent %.2e; image %.2e\n", name, sc.n, sc.worst, sc.wname, rf, ri);
    CHECK(sc.n == 16 && sc.worst <= 1e-4 && rf >= 0 && rf <= 1e-4 && ri >= 0 && ri <= 1e-4, "%s base run within 1e-4", name);
    /* K/V patching: (1) prompt-B run caching block 1's text K/V at every step */
    const char *ksite = m.qk_norm ? "norm_added_k" : "add_k_proj";
    locus_textpatch kv;
    CHECK(locus_textpatch_init(&kv, &d, 8) == LOCUS_OK, "%s textpatch init: %s", name, locus_errmsg());
    CHECK(locus_denoiser_select_text_layers(&d, "transformer_blocks.1", "--patch-layers", kv.record) == LOCUS_OK, "%s select block 1: %s", name,
          locus_errmsg());
    CHECK(locus_denoiser_select_text_layers(&d, "transformer_blocks.9", "--patch-layers", kv.active) == LOCUS_E_ARG, "%s unknown block refused",
          name);
    kv.mode = LOCUS_TP_RECORD;
    locus_hooks hk;
    locus_hooks_init(&hk);
    locus_hooks_add(&hk, locus_textpatch_hook(&kv));
    parity_steps sb = {&gk, "source_b", 0, "", 0};
    locus_step_cb cbb = {parity_step_cb, &sb};
    memcpy(lat, noise, nn * 4);
    locus_sample(&d, &s, 4, 3.0f, lat, 8, 8, &cu, &cbn, S, &cbb, &hk);
    double rc = 0;
    for (int st = 0; st < 4; st++) {
        char kn[64];
        snprintf(kn, sizeof kn, "cache_b.step%d.%s", st, ksite);
        double a = kv.k[1 * kv.max_steps + st] ? parity_rel(&gk, kn, kv.k[1 * kv.max_steps + st], (int64_t)kv.n) : -1;
        snprintf(kn, sizeof kn, "cache_b.step%d.add_v_proj", st);
        double b = kv.v[1 * kv.max_steps + st] ? parity_rel(&gk, kn, kv.v[1 * kv.max_steps + st], (int64_t)kv.n) : -1;
        rc = fmax(rc, (a < 0 || b < 0) ? 1e9 : fmax(a, b));
    }
    printf("%s kv cache: prompt-B run worst %.2e (%s), cached K/V worst %.2e\n", name, sb.worst, sb.wname, rc);
    CHECK(sb.worst <= 1e-4 && rc <= 1e-4, "%s prompt-B run and its K/V cache within 1e-4", name);
    /* (2) prompt A with block 1's text K/V from the cache: conditional half, then both halves */
    for (int mode = 1; mode <= 2; mode++) {
        const char *run = mode == 1 ? "kvpatch" : "kvpatch_both";
        memcpy(kv.active, kv.record, (size_t)kv.nlayers);
        kv.mode = LOCUS_TP_PATCH;
        kv.both = mode == 2;
        parity_steps pc = {&gk, run, 0, "", 0};
        locus_step_cb pcb = {parity_step_cb, &pc};
        memcpy(lat, noise, nn * 4);
        locus_sample(&d, &s, 4, 3.0f, lat, 8, 8, &cu, &ca, S, &pcb, &hk);
        char key[64];
        snprintf(key, sizeof key, "%s.final_latent", run);
        double pf = parity_rel(&gk, key, lat, nn);
        for (int64_t i = 0; i < nn; i++) z[i] = lat[i] / v.scaling_factor + v.shift_factor;
        locus_vae_decode(&v, z, 1, 8, 8, img, NULL);
        snprintf(key, sizeof key, "%s.image", run);
        double pi = parity_rel(&gk, key, img, 3 * 16 * 16);
        printf("%s %s: %d step tensors, worst %.2e (%s); final_latent %.2e; image %.2e\n", name, run, pc.n, pc.worst, pc.wname, pf, pi);
        CHECK(pc.n == 16 && pc.worst <= 1e-4 && pf >= 0 && pf <= 1e-4 && pi >= 0 && pi <= 1e-4, "%s %s within 1e-4", name, run);
    }
    locus_textpatch_free(&kv);
    free(noise); free(ea); free(eu); free(eb); free(pa); free(pu); free(pb); free(lat); free(img); free(z);
    locus_st_close(&g); locus_st_close(&gk);
    locus_scheduler_free(&s); locus_vae_free(&v); locus_mmdit_free(&m);
}

static void test_vae3(const char *G) {
    char p[512];
    locus_vae v;
    snprintf(p, sizeof p, "%s/sd3/vae", G);
    if (locus_vae_load(&v, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/sd3/golden_vae.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    int64_t nl;
    float *lat = golden_f32(&g, "input.latent", &nl), *img = malloc(3 * 16 * 16 * 4);
    parity_ctx pc = {&g, "act.", 0, 0, 0, "", 0};
    locus_hooks hooks = locus_hooks_one(parity_hook, &pc);
    locus_vae_decode(&v, lat, 1, 8, 8, img, &hooks);
    double r = parity_rel(&g, "output.decoded", img, 3 * 16 * 16);
    int nact = 0;
    for (size_t i = 0; i < g.count; i++) nact += !strncmp(g.tensors[i].name, "act.", 4);
    printf("sd3 vae: %d of %d act tensors, worst %.2e (%s); decoded %.2e\n", pc.matched, nact, pc.worst, pc.worst_name, r);
    CHECK(pc.matched == nact && pc.worst <= 1e-4 && r >= 0 && r <= 1e-4, "sd3 vae decode within 1e-4");
    free(lat); free(img);
    locus_st_close(&g);
    locus_vae_free(&v);
}

int main(void) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    test_vae3(G);
    run_model(G, "sd3");
    run_model(G, "sd35");
    return t_finish("test_sd3");
}
