/* test_sample.c — the LDM text-to-image loop (DDIM 4 steps, CFG 3.0) against diffusers' golden_sample:
 * every step's noise_pred_uncond / _text / noise_pred / latent_out, the final latent and the decoded image
 * within 1e-4 relative, from the golden embeddings and noise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/sampler.h"
#include "../models/vae.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"

typedef struct { const locus_st_file *g; const char *run; double worst; char wname[128]; int n; } step_ctx;

static void on_step(void *vc, int step, int nsteps, const float *unc, const float *cond, const float *guided, const float *lat, size_t n) {
    step_ctx *c = vc;
    const char *names[4] = {"noise_pred_uncond", "noise_pred_text", "noise_pred", "latent_out"};
    const float *ptr[4] = {unc, cond, guided, lat};
    for (int k = 0; k < 4; k++) {
        char key[128];
        snprintf(key, sizeof key, "%s.step%d.%s", c->run, step, names[k]);
        double r = parity_rel(c->g, key, ptr[k], (int64_t)n);
        c->n++;
        if (r < 0 || r > c->worst) { c->worst = r < 0 ? 1e9 : r; snprintf(c->wname, sizeof c->wname, "%s", key); }
    }
}

int main(void) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    char p[512];
    locus_unet u;
    locus_vae v;
    locus_scheduler s;
    snprintf(p, sizeof p, "%s/ldm/unet", G);
    if (locus_unet_load(&u, p)) { CHECK(0, "%s", locus_errmsg()); return t_finish("test_sample"); }
    snprintf(p, sizeof p, "%s/ldm/vae", G);
    if (locus_vae_load(&v, p)) { CHECK(0, "%s", locus_errmsg()); return t_finish("test_sample"); }
    snprintf(p, sizeof p, "%s/ldm/scheduler", G);
    if (locus_scheduler_load(&s, p)) { CHECK(0, "%s", locus_errmsg()); return t_finish("test_sample"); }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/ldm/golden_sample.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return t_finish("test_sample"); }
    int64_t nn, ne, nt;
    float *noise = golden_f32(&g, "noise", &nn), *ea = golden_f32(&g, "embeds.a", &ne), *eu = golden_f32(&g, "embeds.uncond", &ne);
    int64_t ts[4];
    locus_st_to_i64(locus_st_find(&g, "timesteps"), ts, 4);
    (void)nt;
    /* timesteps */
    locus_scheduler_set_timesteps(&s, 4);
    CHECK(!memcmp(ts, s.timesteps, sizeof ts), "DDIM timesteps %lld %lld %lld %lld", (long long)s.timesteps[0], (long long)s.timesteps[1],
          (long long)s.timesteps[2], (long long)s.timesteps[3]);
    step_ctx sc = {&g, "base", 0, "", 0};
    locus_step_cb cb = {on_step, &sc};
    float *lat = malloc(nn * sizeof(float));
    memcpy(lat, noise, nn * sizeof(float));
    CHECK(locus_sample_unet(&u, &s, 4, 3.0f, lat, 8, 8, eu, ea, 77, &cb, NULL) == LOCUS_OK, "sample: %s", locus_errmsg());
    double rf = parity_rel(&g, "base.final_latent", lat, nn);
    /* LDMTextToImagePipeline: latents = 1 / scaling_factor * latents */
    float *z = malloc(nn * sizeof(float)), *img = malloc(3 * 16 * 16 * sizeof(float));
    float inv = (float)(1.0 / (double)v.scaling_factor);
    for (int64_t i = 0; i < nn; i++) z[i] = inv * lat[i];
    locus_vae_decode(&v, z, 1, 8, 8, img, NULL);
    double ri = parity_rel(&g, "base.image", img, 3 * 16 * 16);
    printf("ldm sampling: %d step tensors, worst %.2e (%s); final_latent %.2e; image %.2e\n", sc.n, sc.worst, sc.wname, rf, ri);
    CHECK(sc.n == 16 && sc.worst <= 1e-4, "every step within 1e-4 (worst %.2e at %s)", sc.worst, sc.wname);
    CHECK(rf >= 0 && rf <= 1e-4, "final latent within 1e-4 (%.2e)", rf);
    CHECK(ri >= 0 && ri <= 1e-4, "decoded image within 1e-4 (%.2e)", ri);
    free(noise); free(ea); free(eu); free(lat); free(z); free(img);
    locus_st_close(&g);
    locus_scheduler_free(&s);
    locus_vae_free(&v);
    locus_unet_free(&u);
    return t_finish("test_sample");
}
