/* test_if.c — DeepFloyd IF stage I's UNet (issue 13) against diffusers v0.31: one CFG-batch forward of
 * tests/golden/if/unet through the denoiser interface, every act.* tensor locus exposes (module outputs and the
 * submodules it hooks: resnet conv1/conv2/time_emb_proj/conv_shortcut, attention group_norm/to_q/to_k/to_v/
 * add_k_proj/add_v_proj/to_out.0, the text pooling's parts) and the output within max|diff| <= 1e-4 *
 * max|golden|; the output bit-identical across ISAs and thread counts; the registry picking IF's family; the
 * added-KV layers and their text parameters; the text K/V override point (project() = the layer's own bits,
 * an override changes only the overridden row); config refusals.  With --check-dump DUMP GOLDEN PREFIX STEPS
 * it compares a `locus generate --dump` file with golden_sample's per-step tensors (if_test.sh). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/arena.h"
#include "../core/hash.h"
#include "../models/denoiser.h"
#include "../models/if_unet.h"
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
        if (symlink(s2[0] == '/' ? s2 : realpath(s2, NULL), w)) { /* realpath leak is fine in a test */ }
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

/* --check-dump DUMP GOLDEN PREFIX STEPS: every tensor golden_sample has for a run (PREFIX stepN.noise_pred — all
 * six channels: guided epsilon and the text half's variance —, stepN.latent_out, final_latent, image) against
 * the dump of `locus generate --dump`, within 1e-4 relative.  Prints the worst; exit 0 when all pass. */
static int check_dump(const char *dpath, const char *gpath, const char *prefix, int steps) {
    locus_st_file d, g;
    if (locus_st_open(&d, dpath)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    if (locus_st_open(&g, gpath)) { fprintf(stderr, "%s\n", locus_errmsg()); locus_st_close(&d); return 1; }
    double worst = 0;
    char wn[128] = "";
    int n = 0;
    for (int s = 0; s <= steps; s++)
        for (int k = 0; k < 2; k++) {
            char dn[96], gn[160];
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

int main(int argc, char **argv) {
    if (argc == 6 && !strcmp(argv[1], "--check-dump")) return check_dump(argv[2], argv[3], argv[4], atoi(argv[5]));
    G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    locus_kernels_init();
    test_golden_unet();
    test_refusals();
    return t_finish("if");
}
