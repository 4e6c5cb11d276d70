/* test_if.c — DeepFloyd IF stage I's UNet (issue 13) against diffusers v0.31: one CFG-batch forward of
 * tests/golden/if/unet through the denoiser interface, every act.* tensor locus exposes (module outputs and the
 * submodules it hooks: resnet conv1/conv2/time_emb_proj/conv_shortcut, attention group_norm/to_q/to_k/to_v/
 * add_k_proj/add_v_proj/to_out.0, the text pooling's parts) and the output within max|diff| <= 1e-4 *
 * max|golden|; the output bit-identical across ISAs and thread counts; the registry picking IF's family; the
 * added-KV layers and their text parameters; the text K/V override point (project() = the layer's own bits,
 * an override changes only the overridden row); config refusals; golden_sample replayed step by step; the DDPM
 * scheduler; the peak-memory estimate.  With --check-dump DUMP GOLDEN PREFIX STEPS it compares a `locus generate
 * --dump` file with golden_sample's per-step tensors, with --check-step0 DUMP GOLDEN PREFIX only the first guided
 * prediction (the one that does not depend on the scheduler's noise), with --same-tensors A B whether two
 * safetensors files hold the same tensors bit for bit (if_test.sh). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/arena.h"
#include "../core/hash.h"
#include "../experiments/run.h"
#include "../models/denoiser.h"
#include "../models/if_unet.h"
#include "../models/pipeline.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"

static const char *G;

/* golden act.* names locus does not expose as hook points: norms followed by an activation, dropouts, the
 * resampling inside resnets, the activation modules (diffusers shares one GELU module name everywhere) */
static int internal_name(const char *n) {
    static const char *const suffix[] = {".norm1", ".norm2", ".dropout", ".to_out.1", ".downsample", ".downsample.conv", ".upsample",
                                         ".linear_1", ".linear_2", ".act"};
    if (strchr(n, '#')) return 1;
    size_t L = strlen(n);
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        size_t k = strlen(suffix[i]);
        if (L > k && !strcmp(n + L - k, suffix[i]) && strncmp(n, "add_embedding.norm", 18)) return 1;
    }
    return 0;
}

typedef struct { parity_ctx pc; const locus_st_file *g; unsigned char *seen; } visit_ctx;
static void visit_hook(void *vc, const locus_hook_at *at, float *x, int ndim, const int64_t *shape) {
    visit_ctx *v = vc;
    parity_hook(&v->pc, at, x, ndim, shape);
    char key[320];
    snprintf(key, sizeof key, "act.%s", at->name);
    for (size_t i = 0; i < v->g->count; i++)
        if (!strcmp(v->g->tensors[i].name, key)) v->seen[i] = 1;
}

/* text K/V override probe: records project() of a given embedding for one layer and overwrites row 1 */
typedef struct {
    int layer, calls, same_bits;
    const float *ctx_row1; /* the prompt embedding of batch row 1 [S, ctx_dim] */
    int overwrite;
} kv_probe;

static void kv_hook(void *c, const locus_hook_at *at, const locus_text_kv *site) {
    (void)at;
    kv_probe *p = c;
    if (site->index != p->layer) return;
    p->calls++;
    size_t n = (size_t)site->S * site->D;
    float *k = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
    site->project(site, p->ctx_row1, k, v);
    p->same_bits = t_bitdiff(k, site->k + n, n) == 0 && t_bitdiff(v, site->v + n, n) == 0;
    if (p->overwrite) for (size_t i = 0; i < n; i++) { site->k[n + i] += 1.0f; site->v[n + i] -= 1.0f; }
    free(k);
    free(v);
}

/* probability-override probe: at one layer, checks the map (keys = S text + HW pixels, rows summing to 1) and
 * optionally replaces row 1's probabilities by a uniform map */
typedef struct { int layer, calls, shape_ok, change; } probs_probe;
static int probs_hook(void *c, const locus_hook_at *at, const locus_attn_probs *site) {
    (void)at;
    probs_probe *p = c;
    if (site->index != p->layer) return 0;
    p->calls++;
    double worst = 0;
    for (size_t r = 0; r < (size_t)site->B * site->H * site->Tq; r++) {
        double sum = 0;
        for (int j = 0; j < site->Tk; j++) sum += site->p[r * site->Tk + j];
        if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
    }
    p->shape_ok = site->B == 2 && site->Tk == 9 + site->Tq && worst < 1e-5;
    if (!p->change) return 0;
    size_t n = (size_t)site->H * site->Tq * site->Tk;
    for (size_t k = 0; k < n; k++) site->p[n + k] = 1.0f / (float)site->Tk;
    return 1;
}

static void test_golden_unet(void) {
    char p[512];
    locus_denoiser d;
    snprintf(p, sizeof p, "%s/if/unet", G);
    if (locus_denoiser_open(&d, p, NULL) != LOCUS_OK) { CHECK(0, "open %s: %s", p, locus_errmsg()); return; }
    CHECK(d.ops == &locus_if_unet_denoiser_ops, "the registry picks the IF family for an IF UNet2DConditionModel");
    CHECK(d.in_channels == 3 && d.out_channels == 6 && d.ctx_dim == 24 && d.pooled_dim == 0 && d.text_kv_projectable,
          "IF geometry: in 3, out 6 (learned variance), ctx 24 (T5 width), no pooled (got %d %d %d %d)", d.in_channels, d.out_channels, d.ctx_dim,
          d.pooled_dim);
    locus_layer_info *L = NULL;
    int nl = locus_denoiser_layers(&d, &L);
    size_t tp = 0;
    for (int i = 0; i < nl; i++) tp += L[i].text_params;
    /* down 1, down 2, mid, up 0 x2, up 1 x2: 7 added-KV layers (3 of width 32, 4 of 48, all reading the 32-wide
     * projected text); text params = add_k + add_v (weights + biases) */
    size_t want = 3 * 2 * (32 * 32 + 32) + 4 * 2 * (32 * 48 + 48);
    CHECK(nl == 7 && d.ntext_layers == 7 && tp == want, "7 added-KV layers, %zu text parameters (got %d, %zu)", want, nl, tp);
    CHECK(nl >= 4 && !strcmp(L[3].name, "up_blocks.0.attentions.0") && L[3].text_index == 3 && L[3].kind == LOCUS_LAYER_CROSS && L[3].heads == 6,
          "layer 3 is up_blocks.0.attentions.0 (6 heads of 8)");
    free(L);
    locus_st_file g;
    snprintf(p, sizeof p, "%s/if/golden_unet.safetensors", G);
    if (locus_st_open(&g, p) != LOCUS_OK) { CHECK(0, "%s", locus_errmsg()); locus_denoiser_close(&d); return; }
    int64_t ns, nc, no, t64 = 0;
    float *x = golden_f32(&g, "input.sample", &ns), *ctx = golden_f32(&g, "input.encoder_hidden_states", &nc);
    free(golden_f32(&g, "output", &no));
    const locus_st_tensor *sh = locus_st_find(&g, "input.sample"), *ct = locus_st_find(&g, "input.encoder_hidden_states");
    const locus_st_tensor *tt = locus_st_find(&g, "input.timestep"); /* int64 scalar */
    if (!x || !ctx || !sh || !ct || !tt || tt->nbytes != 8) { CHECK(0, "golden inputs missing"); locus_st_close(&g); locus_denoiser_close(&d); return; }
    memcpy(&t64, tt->data, 8);
    int B = (int)sh->shape[0], H = (int)sh->shape[2], W = (int)sh->shape[3], S = (int)ct->shape[1];
    float t[2] = {(float)t64, (float)t64};
    float *out = malloc(no * sizeof(float)), *out2 = malloc(no * sizeof(float));
    visit_ctx v = {{&g, "act.", 0, 0, 0, "", getenv("LOCUS_VERBOSE") != NULL}, &g, calloc(g.count, 1)};
    locus_hooks hooks = locus_hooks_one(visit_hook, &v);
    locus_denoiser_forward(&d, x, B, H, W, t, ctx, S, NULL, out, &hooks);
    double r = parity_rel(&g, "output", out, no);
    int nact = 0, hidden = 0, missed = 0;
    for (size_t i = 0; i < g.count; i++) {
        const char *n = g.tensors[i].name;
        if (strncmp(n, "act.", 4)) continue;
        nact++;
        if (v.seen[i]) continue;
        if (internal_name(n + 4)) hidden++;
        else { missed++; fprintf(stderr, "  golden %s not produced by any locus hook point\n", n); }
    }
    printf("if unet parity: %d of %d act tensors compared (%d are internals locus does not expose), worst %.2e (%s); output %.2e\n", v.pc.matched,
           nact, hidden, v.pc.worst, v.pc.worst_name, r);
    CHECK(missed == 0 && v.pc.shape_bad == 0 && v.pc.matched >= 150, "every exposed act.* visited (%d missed, %d shape errors, %d matched)", missed,
          v.pc.shape_bad, v.pc.matched);
    CHECK(v.pc.worst <= 1e-4, "if unet activations within 1e-4 relative (worst %.2e at %s)", v.pc.worst, v.pc.worst_name);
    CHECK(r >= 0 && r <= 1e-4, "if unet output within 1e-4 relative (%.2e)", r);
    /* the text K/V override point: project() gives the layer's own bits; overriding row 1 of one layer
     * changes the conditional half only */
    kv_probe kp = {3, 0, 0, ctx + (size_t)S * 24, 0};
    locus_hooks kh;
    locus_hooks_init(&kh);
    locus_hooks_add(&kh, (locus_hook_entry){NULL, NULL, kv_hook, &kp, NULL});
    locus_denoiser_forward(&d, x, B, H, W, t, ctx, S, NULL, out2, &kh);
    CHECK(kp.calls == 1 && kp.same_bits && t_bitdiff(out, out2, no) == 0, "text_kv: one call at layer 3, project() = the layer's bits, no change");
    kp.overwrite = 1;
    locus_denoiser_forward(&d, x, B, H, W, t, ctx, S, NULL, out2, &kh);
    CHECK(t_bitdiff(out, out2, no / 2) == 0 && t_bitdiff(out + no / 2, out2 + no / 2, no / 2) > 0, "an override of row 1 changes row 1 only");
    /* probability override (Prompt-to-Prompt): a hook that changes nothing leaves the bits; a changed row 1 changes
     * the conditional half only */
    probs_probe pp = {3, 0, 0, 0};
    locus_hooks ph;
    locus_hooks_init(&ph);
    locus_hooks_add(&ph, (locus_hook_entry){NULL, NULL, NULL, &pp, probs_hook});
    locus_denoiser_forward(&d, x, B, H, W, t, ctx, S, NULL, out2, &ph);
    CHECK(pp.calls == 1 && pp.shape_ok && t_bitdiff(out, out2, no) == 0, "probs hook: one call, S+HW keys, rows sum to 1, no change");
    pp.change = 1;
    locus_denoiser_forward(&d, x, B, H, W, t, ctx, S, NULL, out2, &ph);
    CHECK(t_bitdiff(out, out2, no / 2) == 0 && t_bitdiff(out + no / 2, out2 + no / 2, no / 2) > 0, "changed probabilities change row 1 only");
    /* bit-identical across ISAs and threads */
    uint64_t h0 = locus_fnv1a(LOCUS_FNV_INIT, out, no * sizeof(float));
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++) {
            locus_set_threads(th);
            locus_denoiser_forward(&d, x, B, H, W, t, ctx, S, NULL, out2, NULL);
            CHECK(locus_fnv1a(LOCUS_FNV_INIT, out2, no * sizeof(float)) == h0, "if unet output bits: %s threads=%d differ", locus_isa_name(), th);
        }
    }
    locus_kernels_init();
    free(v.seen); free(x); free(ctx); free(out); free(out2);
    locus_st_close(&g);
    locus_denoiser_close(&d);
}

/* a copy of the golden unet config with one key replaced must be refused naming the key */
static void test_refusals(void) {
    char src[512], dir[] = "/tmp/locus_if_cfgXXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    snprintf(src, sizeof src, "%s/if/unet/config.json", G);
    FILE *f = fopen(src, "rb");
    char *cfg = calloc(1, 1 << 16);
    size_t n = f ? fread(cfg, 1, (1 << 16) - 1, f) : 0;
    if (f) fclose(f);
    CHECK(n > 0, "read %s", src);
    static const char *const cases[][3] = {{"\"class_embed_type\": null", "\"class_embed_type\": \"timestep\"", "class_embed_type"},
                                           {"\"only_cross_attention\": false", "\"only_cross_attention\": true", "only_cross_attention"},
                                           {"\"act_fn\": \"gelu\"", "\"act_fn\": \"mish\"", "act_fn"},
                                           {"\"encoder_hid_dim_type\": \"text_proj\"", "\"encoder_hid_dim_type\": \"image_proj\"", "encoder_hid_dim_type"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char *at = strstr(cfg, cases[c][0]);
        CHECK(at != NULL, "config has %s", cases[c][0]);
        if (!at) continue;
        char p[600];
        snprintf(p, sizeof p, "%s/config.json", dir);
        FILE *o = fopen(p, "wb");
        fwrite(cfg, 1, (size_t)(at - cfg), o);
        fputs(cases[c][1], o);
        fputs(at + strlen(cases[c][0]), o);
        fclose(o);
        char w[600];
        snprintf(w, sizeof w, "%s/diffusion_pytorch_model.safetensors", dir);
        char s2[600];
        snprintf(s2, sizeof s2, "%s/if/unet/diffusion_pytorch_model.safetensors", G);
        unlink(w);
        char abs[PATH_MAX];
        if (!realpath(s2, abs) || symlink(abs, w)) CHECK(0, "symlink %s", w);
        locus_denoiser d;
        locus_status st = locus_denoiser_open(&d, dir, NULL);
        CHECK(st != LOCUS_OK && strstr(locus_errmsg(), cases[c][2]), "%s refused naming it (%s)", cases[c][2], st ? locus_errmsg() : "opened");
        if (!st) locus_denoiser_close(&d);
    }
    char p[600];
    snprintf(p, sizeof p, "%s/config.json", dir); unlink(p);
    snprintf(p, sizeof p, "%s/diffusion_pytorch_model.safetensors", dir); unlink(p);
    rmdir(dir);
    free(cfg);
}

/* text K/V override that puts a projected prompt B into the conditional row of one layer (the paper's IF
 * injection: golden_sample's patched.* runs) */
typedef struct { int layer; const float *ctx_b; } inject_ctx;
static void inject_hook(void *c, const locus_hook_at *at, const locus_text_kv *site) {
    (void)at;
    const inject_ctx *ic = c;
    if (site->index != ic->layer || site->B != 2) return;
    size_t n = (size_t)site->S * site->D;
    site->project(site, ic->ctx_b, site->k + n, site->v + n);
}

/* golden_sample replayed step by step: the CFG batch on the golden input of every step (the initial noise,
 * then each golden latent_out), guidance on the epsilon channels with the text half's variance appended, as
 * IFPipeline; every stepN.noise_pred [1,6,H,W] of the base and the patched run within 1e-4 (the scheduler's
 * noise plays no part here, see test_scheduler) */
static void test_steps(void) {
    char p[512];
    locus_denoiser d;
    snprintf(p, sizeof p, "%s/if/unet", G);
    if (locus_denoiser_open(&d, p, NULL)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/if/golden_sample.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); locus_denoiser_close(&d); return; }
    int64_t na, nb, nu, nn, nts;
    float *ea = golden_f32(&g, "embeds.a", &na), *eb = golden_f32(&g, "embeds.b", &nb), *eu = golden_f32(&g, "embeds.uncond", &nu);
    float *noise = golden_f32(&g, "noise", &nn);
    const locus_st_tensor *tt = locus_st_find(&g, "timesteps");
    const locus_st_tensor *nt = locus_st_find(&g, "noise");
    if (!ea || !eb || !eu || !noise || !tt || !nt) { CHECK(0, "golden_sample tensors missing"); goto done; }
    nts = locus_st_numel(tt);
    int H = (int)nt->shape[2], W = (int)nt->shape[3], S = (int)(na / 24);
    size_t n = (size_t)nn, nout = 2 * n;
    float *x = malloc(2 * n * sizeof(float)), *ctx = malloc(2 * na * sizeof(float)), *eps = malloc(2 * nout * sizeof(float)), *gd = malloc(nout * sizeof(float));
    memcpy(ctx, eu, na * sizeof(float));
    memcpy(ctx + na, ea, na * sizeof(float));
    locus_layer_info *L = NULL;
    int nl = locus_denoiser_layers(&d, &L), li = -1;
    for (int i = 0; i < nl; i++) if (!strcmp(L[i].name, "up_blocks.0.attentions.0")) li = L[i].text_index;
    free(L);
    inject_ctx ic = {li, eb};
    for (int run = 0; run < 2; run++) {
        const char *pre = run ? "patched." : "base.";
        locus_hooks hk;
        locus_hooks_init(&hk);
        if (run) locus_hooks_add(&hk, (locus_hook_entry){NULL, NULL, inject_hook, &ic, NULL});
        double worst = 0;
        for (int i = 0; i < (int)nts; i++) {
            int64_t tv = 0, ni;
            memcpy(&tv, tt->data + 8 * i, 8);
            char nm[96];
            float *in = noise;
            if (i) { snprintf(nm, sizeof nm, "%sstep%d.latent_out", pre, i - 1); in = golden_f32(&g, nm, &ni); }
            memcpy(x, in, n * sizeof(float));
            memcpy(x + n, in, n * sizeof(float));
            if (i) free(in);
            float t[2] = {(float)tv, (float)tv};
            locus_denoiser_forward(&d, x, 2, H, W, t, ctx, S, NULL, eps, run ? &hk : NULL);
            locus_binary(eps, eps + nout, gd, n, LOCUS_BIN_CFG, 7.0f);
            memcpy(gd + n, eps + nout + n, n * sizeof(float));
            snprintf(nm, sizeof nm, "%sstep%d.noise_pred", pre, i);
            double r = parity_rel(&g, nm, gd, (int64_t)nout);
            if (r < 0 || r > worst) worst = r < 0 ? 1e9 : r;
        }
        printf("if golden_sample %s: %d steps' guided predictions (6 channels) replayed, worst %.2e\n", pre, (int)nts, worst);
        CHECK(worst <= 1e-4, "%s every step's noise_pred within 1e-4 (worst %.2e)", pre, worst);
    }
    CHECK(li == 3, "the patched layer is text layer 3");
    free(x); free(ctx); free(eps); free(gd);
done:
    free(ea); free(eb); free(eu); free(noise);
    locus_st_close(&g);
    locus_denoiser_close(&d);
}

/* DDPMScheduler against golden_sample: timesteps (leading spacing); the last step (t = 0: no noise) from the
 * golden step-3 latent and step-4 prediction within 1e-4 — x0, dynamic thresholding, the coefficients; the
 * noisy steps: the golden runs' variance noise does not come from the seeded generator (see the README), so
 * the noise each golden step implies, (golden latent_out - locus's noise-free step) / exp(v / 2), is checked
 * to be standard normal (mean within 0.1, std within 10%): the learned-range variance and the noise-free part
 * together; the generator: the same seed and skip give the same bits, another seed other bits */
static void test_scheduler(void) {
    char p[512];
    locus_scheduler s;
    snprintf(p, sizeof p, "%s/if/scheduler", G);
    if (locus_scheduler_load(&s, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    CHECK(s.kind == LOCUS_SCHED_DDPM && s.var_type == LOCUS_VAR_LEARNED_RANGE && s.thresholding && locus_scheduler_wants_variance(&s),
          "DDPMScheduler, learned_range, thresholding");
    CHECK(locus_scheduler_set_timesteps(&s, 5) == LOCUS_OK && s.nevals == 5 && s.timesteps[0] == 800 && s.timesteps[4] == 0, "timesteps 800 .. 0");
    locus_st_file g;
    snprintf(p, sizeof p, "%s/if/golden_sample.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); locus_scheduler_free(&s); return; }
    int64_t n, nm, nl;
    float *x3 = golden_f32(&g, "base.step3.latent_out", &n), *mo4 = golden_f32(&g, "base.step4.noise_pred", &nm), *out = malloc(n * sizeof(float));
    locus_scheduler_step(&s, 4, mo4, x3, out, (size_t)n);
    double r = parity_rel(&g, "base.step4.latent_out", out, n);
    printf("if DDPM step at t=0 against golden: %.2e\n", r);
    CHECK(r >= 0 && r <= 1e-4, "DDPM step t=0 (no noise) within 1e-4 (%.2e)", r);
    /* noisy steps: the noise-free part is step(x, mo) - exp(v/2) z with z drawn from a twin generator */
    float *z = malloc(n * sizeof(float)), *prev = malloc(n * sizeof(float)), *x = golden_f32(&g, "noise", &nl);
    double worst_m = 0, worst_sd = 0;
    for (int i = 0; i < 4; i++) {
        char nmb[64];
        snprintf(nmb, sizeof nmb, "base.step%d.noise_pred", i);
        float *mo = golden_f32(&g, nmb, &nm);
        snprintf(nmb, sizeof nmb, "base.step%d.latent_out", i);
        float *gl = golden_f32(&g, nmb, &nl);
        locus_scheduler_set_noise_seed(&s, 11, 0);
        locus_scheduler_set_timesteps(&s, 5);
        locus_scheduler_step(&s, i, mo, x, prev, (size_t)n);
        locus_mt19937 twin;
        locus_mt19937_seed(&twin, 11);
        locus_randn_gen(&twin, z, (size_t)n);
        int64_t t = s.timesteps[i], tp = s.timesteps[i + 1];
        double at = s.alphas_cumprod[t], ap = s.alphas_cumprod[tp], cb = 1 - at / ap, var = (1 - ap) / (1 - at) * cb;
        double sum = 0, sq = 0;
        for (int64_t k = 0; k < n; k++) {
            double fr = (mo[n + k] + 1.0) / 2, sg = exp(0.5 * (fr * log(cb) + (1 - fr) * log(var)));
            double det = prev[k] - sg * z[k], zi = (gl[k] - det) / sg;
            sum += zi;
            sq += zi * zi;
        }
        double m = sum / n, sd = sqrt(sq / n - m * m);
        if (fabs(m) > worst_m) worst_m = fabs(m);
        if (fabs(sd - 1) > worst_sd) worst_sd = fabs(sd - 1);
        free(mo);
        memcpy(x, gl, n * sizeof(float));
        free(gl);
    }
    printf("if DDPM noisy steps: golden's implied noise |mean| <= %.3f, |std - 1| <= %.3f\n", worst_m, worst_sd);
    CHECK(worst_m < 0.1 && worst_sd < 0.1, "the golden noisy steps imply standard normal noise under locus's step");
    /* the generator: same seed + skip -> same bits; the skip matters */
    float *p1 = malloc(n * sizeof(float)), *p2 = malloc(n * sizeof(float));
    float *mo0 = golden_f32(&g, "base.step0.noise_pred", &nm), *x0 = golden_f32(&g, "noise", &nl);
    for (int k = 0; k < 3; k++) {
        locus_scheduler_set_noise_seed(&s, 5, k == 2 ? 0 : (size_t)n);
        locus_scheduler_set_timesteps(&s, 5);
        locus_scheduler_step(&s, 0, mo0, x0, k ? p2 : p1, (size_t)n);
        if (k == 1) CHECK(t_bitdiff(p1, p2, n) == 0, "the same generator gives the same step");
        if (k == 2) CHECK(t_bitdiff(p1, p2, n) > 0, "the initial-noise skip changes the step's noise");
    }
    free(p1); free(p2); free(mo0); free(x0);
    free(x3); free(mo4); free(out); free(z); free(prev); free(x);
    locus_st_close(&g);
    locus_scheduler_free(&s);
}

/* the peak-memory estimate (locus info, the preflight of every run) against a real run of the IF folder */
static void test_peak(void) {
    char p[512];
    locus_pipeline pl;
    snprintf(p, sizeof p, "%s/if", G);
    if (locus_pipeline_open(&pl, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    CHECK(pl.kind == LOCUS_PIPE_IF && pl.vae_factor == 1 && pl.default_guidance == 7.0f, "an IF folder opens as a pixel-space pipeline");
    locus_st_file g;
    snprintf(p, sizeof p, "%s/if/golden_sample.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); locus_pipeline_close(&pl); return; }
    locus_set_threads(1);
    static const int sizes[2][2] = {{16, 24}, {64, 64}};
    for (int c = 0; c < 2; c++) {
        int64_t na, nu;
        float *a = golden_f32(&g, "embeds.a", &na), *u = golden_f32(&g, "embeds.uncond", &nu);
        locus_embeds e = {locus_alloc(na * sizeof(float)), locus_alloc(nu * sizeof(float)), NULL, NULL, (int)(na / 24)};
        memcpy(e.cond, a, na * sizeof(float));
        memcpy(e.uncond, u, nu * sizeof(float));
        free(a); free(u);
        locus_run_opts o = {1, 7.0f, sizes[c][1], sizes[c][0], 42, NULL, NULL};
        size_t est = locus_pipeline_peak_estimate(&pl, o.W, o.H, e.T, 1);
        locus_mem_peak_reset();
        uint8_t *pix = malloc((size_t)3 * o.W * o.H);
        locus_status st = locus_run_prepare(&pl, &o);
        if (!st) st = locus_run_image(&pl, &o, &e, NULL, pix);
        size_t meas = locus_mem_peak();
        free(pix);
        locus_embeds_free(&e);
        printf("if peak %dx%d: estimate %.3f MiB, measured %.3f MiB\n", o.W, o.H, est / 1048576.0, meas / 1048576.0);
        CHECK(st == LOCUS_OK && fabs((double)est - (double)meas) <= 0.05 * meas, "IF peak estimate within 5%% at %dx%d (%zu vs %zu): %s", o.W, o.H, est,
              meas, st ? locus_errmsg() : "");
    }

    locus_st_close(&g);
    locus_pipeline_close(&pl);
}

/* records one hook point's tensor */
typedef struct { const char *name; float *copy; size_t n; } grab_ctx;
static void grab_hook(void *c, const locus_hook_at *at, float *x, int ndim, const int64_t *shape) {
    grab_ctx *g = c;
    if (strcmp(at->name, g->name)) return;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    free(g->copy);
    g->copy = malloc(n * sizeof(float));
    memcpy(g->copy, x, n * sizeof(float));
    g->n = n;
}

/* cross_attention_norm "group_norm" (the real IF-I configs; the golden's tiny UNet has none): the golden config
 * with it, random weights (plain, to read them back): one layer's add_k_proj output against a double-precision
 * reference add_k(GroupNorm_32(encoder_hid_proj(ctx) over channels and tokens)), and project() = the layer's
 * own bits */
static void test_norm_cross(void) {
    char src[512], cfgp[] = "/tmp/locus_if_ncXXXXXX";
    int fd = mkstemp(cfgp);
    if (fd < 0) { CHECK(0, "mkstemp"); return; }
    snprintf(src, sizeof src, "%s/if/unet/config.json", G);
    FILE *f = fopen(src, "rb");
    char *cfg = calloc(1, 1 << 16);
    size_t n = f ? fread(cfg, 1, (1 << 16) - 1, f) : 0;
    if (f) fclose(f);
    const char *key = "\"cross_attention_norm\": null";
    char *at = strstr(cfg, key);
    FILE *o = fdopen(fd, "wb");
    if (!at || !o || !n) { CHECK(0, "config"); free(cfg); if (o) fclose(o); unlink(cfgp); return; }
    fwrite(cfg, 1, (size_t)(at - cfg), o);
    fputs("\"cross_attention_norm\": \"group_norm\"", o);
    fputs(at + strlen(key), o);
    fclose(o);
    free(cfg);
    locus_loader_set_plain_weights(1);
    locus_if_unet *u = calloc(1, sizeof *u);
    locus_status st = locus_if_unet_load_random(u, cfgp, 9);
    locus_loader_set_plain_weights(0);
    unlink(cfgp);
    if (st) { CHECK(0, "random IF with norm_cross: %s", locus_errmsg()); free(u); return; }
    locus_denoiser d;
    locus_if_unet_denoiser(&d, u);
    CHECK(u->mid.attn[0].norm_cross && u->mid.attn[0].ncross.groups == 32, "norm_cross loaded (32 groups)");
    int B = 2, H = 8, W = 8, S = 9, E = 24, K = 32;
    float *x = malloc(sizeof(float) * B * 3 * H * W), *ctx = malloc(sizeof(float) * B * S * E), *out = malloc(sizeof(float) * B * 6 * H * W);
    t_fill(x, (size_t)B * 3 * H * W, 1, -1, 1);
    t_fill(ctx, (size_t)B * S * E, 2, -2, 2);
    float t[2] = {500, 500};
    grab_ctx gk = {"mid_block.attentions.0.add_k_proj", NULL, 0};
    kv_probe kp = {2, 0, 0, ctx + (size_t)S * E, 0};
    locus_hooks hk;
    locus_hooks_init(&hk);
    locus_hooks_add(&hk, (locus_hook_entry){grab_hook, NULL, NULL, &gk, NULL});
    locus_hooks_add(&hk, (locus_hook_entry){NULL, NULL, kv_hook, &kp, NULL});
    locus_denoiser_forward(&d, x, B, H, W, t, ctx, S, NULL, out, &hk);
    CHECK(kp.calls == 1 && kp.same_bits, "norm_cross: project() = the layer's bits");
    const locus_param_rec *hw = locus_loader_find_param(&u->L, "encoder_hid_proj.weight"), *hb = locus_loader_find_param(&u->L, "encoder_hid_proj.bias");
    const locus_param_rec *nw = locus_loader_find_param(&u->L, "mid_block.attentions.0.norm_cross.weight"),
                          *nb = locus_loader_find_param(&u->L, "mid_block.attentions.0.norm_cross.bias");
    const locus_param_rec *kw = locus_loader_find_param(&u->L, "mid_block.attentions.0.add_k_proj.weight"),
                          *kb = locus_loader_find_param(&u->L, "mid_block.attentions.0.add_k_proj.bias");
    if (!hw || !hb || !nw || !nb || !kw || !kb || !gk.copy || hw->packed || kw->packed) { CHECK(0, "weights / hook point missing"); goto done; }
    int I = (int)kw->shape[0];
    double *e = malloc(sizeof(double) * S * K), worst = 0, mx = 0;
    for (int b = 0; b < B; b++) {
        for (int s2 = 0; s2 < S; s2++)
            for (int k = 0; k < K; k++) {
                double a = hb->data[k];
                for (int j = 0; j < E; j++) a += (double)ctx[((size_t)b * S + s2) * E + j] * hw->data[(size_t)k * E + j];
                e[s2 * K + k] = a;
            }
        int cg = K / 32;
        for (int g0 = 0; g0 < 32; g0++) { /* GroupNorm over (channels of the group) x tokens, biased variance, eps 1e-5 */
            double m = 0, v = 0;
            for (int s2 = 0; s2 < S; s2++) for (int c = g0 * cg; c < (g0 + 1) * cg; c++) m += e[s2 * K + c];
            m /= (double)S * cg;
            for (int s2 = 0; s2 < S; s2++) for (int c = g0 * cg; c < (g0 + 1) * cg; c++) v += (e[s2 * K + c] - m) * (e[s2 * K + c] - m);
            v /= (double)S * cg;
            for (int s2 = 0; s2 < S; s2++)
                for (int c = g0 * cg; c < (g0 + 1) * cg; c++) e[s2 * K + c] = (e[s2 * K + c] - m) / sqrt(v + 1e-5) * nw->data[c] + nb->data[c];
        }
        for (int s2 = 0; s2 < S; s2++)
            for (int i = 0; i < I; i++) {
                double a = kb->data[i];
                for (int c = 0; c < K; c++) a += e[s2 * K + c] * kw->data[(size_t)i * K + c];
                double dlt = fabs(a - gk.copy[((size_t)b * S + s2) * I + i]);
                if (dlt > worst) worst = dlt;
                if (fabs(a) > mx) mx = fabs(a);
            }
    }
    free(e);
    printf("if norm_cross: add_k_proj against a double reference: %.2e relative\n", worst / mx);
    CHECK(worst <= 1e-5 * mx, "norm_cross add_k_proj within 1e-5 of the reference (%.2e)", worst / mx);
done:
    free(gk.copy); free(x); free(ctx); free(out);
    locus_denoiser_close(&d);
}

/* --check-dump DUMP GOLDEN PREFIX STEPS: every tensor golden_sample has for a run (PREFIX stepN.noise_pred — all
 * six channels: guided epsilon and the text half's variance —, stepN.latent_out, final_latent, image) against
 * the dump of `locus generate --dump`, within 1e-4 relative.  Prints the worst; exit 0 when all pass. */
static int check_dump(const char *dpath, const char *gpath, const char *prefix, int steps, int first_only) {
    locus_st_file d, g;
    if (locus_st_open(&d, dpath)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    if (locus_st_open(&g, gpath)) { fprintf(stderr, "%s\n", locus_errmsg()); locus_st_close(&d); return 1; }
    double worst = 0;
    char wn[128] = "";
    int n = 0;
    for (int s = 0; s <= steps; s++)
        for (int k = 0; k < 2; k++) {
            char dn[96], gn[160];
            if (first_only && (s || k)) continue;
            if (s < steps) snprintf(dn, sizeof dn, "step%d.%s", s, k ? "latent_out" : "noise_pred");
            else snprintf(dn, sizeof dn, "%s", k ? "image" : "final_latent");
            snprintf(gn, sizeof gn, "%s%s", prefix, dn);
            int64_t ne = 0;
            float *x = locus_st_find(&d, dn) ? golden_f32(&d, dn, &ne) : NULL;
            double r = x ? parity_rel(&g, gn, x, ne) : -1;
            free(x);
            if (getenv("LOCUS_VERBOSE")) printf("  %s: %.3e\n", dn, r);
            n++;
            if (r < 0 || r > worst) { worst = r < 0 ? 1e9 : r; snprintf(wn, sizeof wn, "%s", dn); }
        }
    printf("dump vs %s %s: %d tensors, worst %.2e (%s)\n", gpath, prefix, n, worst, wn);
    locus_st_close(&d);
    locus_st_close(&g);
    return worst <= 1e-4 ? 0 : 1;
}

/* --same-tensors A B: the same tensor names, shapes and bits (metadata ignored); exit 0 when so */
static int same_tensors(const char *pa, const char *pb) {
    locus_st_file a, b;
    if (locus_st_open(&a, pa)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    if (locus_st_open(&b, pb)) { fprintf(stderr, "%s\n", locus_errmsg()); locus_st_close(&a); return 1; }
    int bad = a.count != b.count;
    for (size_t i = 0; i < a.count && !bad; i++) {
        const locus_st_tensor *x = &a.tensors[i], *y = locus_st_find(&b, x->name);
        bad = !y || x->dtype != y->dtype || x->nbytes != y->nbytes || memcmp(x->data, y->data, x->nbytes);
        if (bad) fprintf(stderr, "%s differs\n", x->name);
    }
    locus_st_close(&a);
    locus_st_close(&b);
    return bad;
}

int main(int argc, char **argv) {
    if (argc == 6 && !strcmp(argv[1], "--check-dump")) return check_dump(argv[2], argv[3], argv[4], atoi(argv[5]), 0);
    if (argc == 4 && !strcmp(argv[1], "--same-tensors")) return same_tensors(argv[2], argv[3]);
    if (argc == 5 && !strcmp(argv[1], "--check-step0")) return check_dump(argv[2], argv[3], argv[4], 1, 1);
    G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    locus_kernels_init();
    test_golden_unet();
    test_refusals();
    test_steps();
    test_norm_cross();
    test_scheduler();
    test_peak();
    return t_finish("if");
}
