/* test_lora.c — LoRA adapters and AdamW: pattern expansion (braces with commas), attachment and its errors,
 * every file format's round trip and key names (locus writes diffusers' own keys), the golden lora_init files,
 * bad keys / shapes, merging, clip_grad_norm, AdamW step 1 against torch (tests/golden/train: lora_step1 =
 * AdamW(lora_init, lora_grad)), optimizer-state resume, and the training objective (noising, LoRA forward,
 * MSE loss) against the golden's first loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/png.h"
#include "../core/rng.h"
#include "../core/safetensors.h"
#include "../experiments/train_lora.h"
#include "../models/adamw.h"
#include "../models/lora.h"
#include "../models/mmdit.h"
#include "../models/unet.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"

static const char *G;
static char tmpdir[256];

static const char *UNET_LAYERS = "down_blocks.0.attentions.0.transformer_blocks.0.attn2,mid_block.attentions.0.transformer_blocks.0.attn2";
static const char *UNET_TARGETS = "to_q,to_k,to_v,to_out.0";

static void test_patterns(void) {
    char **p;
    int n;
    CHECK(locus_lora_patterns("up_blocks.0.attentions.2.transformer_blocks.{1,2,3}.attn2", &p, &n) == LOCUS_OK && n == 3 &&
              !strcmp(p[0], "up_blocks.0.attentions.2.transformer_blocks.1.attn2") &&
              !strcmp(p[2], "up_blocks.0.attentions.2.transformer_blocks.3.attn2"),
          "brace list with commas");
    locus_lora_patterns_free(p, n);
    CHECK(locus_lora_patterns("a.{1,2}.b,c*,d.{x,{y,z}}{0,1}", &p, &n) == LOCUS_OK && n == 9 && !strcmp(p[0], "a.1.b") &&
              !strcmp(p[1], "a.2.b") && !strcmp(p[2], "c*") && !strcmp(p[3], "d.x0") && !strcmp(p[4], "d.x1") &&
              !strcmp(p[5], "d.y0") && !strcmp(p[8], "d.z1"),
          "top-level commas, nested and repeated groups (n=%d)", n);
    locus_lora_patterns_free(p, n);
    CHECK(locus_lora_patterns("a.{1,2", &p, &n) == LOCUS_E_ARG && strstr(locus_errmsg(), "unbalanced"), "unbalanced braces: %s", locus_errmsg());
    CHECK(locus_lora_patterns("a,,b", &p, &n) == LOCUS_E_ARG, "empty item");
    CHECK(locus_lora_patterns("{,}", &p, &n) == LOCUS_E_ARG, "empty alternative");
    char path[64];
    float w;
    CHECK(locus_lora_parse_spec("x.safetensors:0.5", path, sizeof path, &w) == LOCUS_OK && !strcmp(path, "x.safetensors") && w == 0.5f,
          "FILE:SCALE");
    CHECK(locus_lora_parse_spec("dir:x/y.safetensors", path, sizeof path, &w) == LOCUS_OK && !strcmp(path, "dir:x/y.safetensors") && w == 1.0f,
          "colon in the path");
}

static int load_unet(locus_unet *u) {
    char d[512];
    snprintf(d, sizeof d, "%s/ldm/unet", G);
    return locus_unet_load(u, d) == LOCUS_OK;
}

/* attach by patterns: count, names, init, errors */
static void test_create(void) {
    locus_unet u;
    if (!load_unet(&u)) { CHECK(0, "load unet: %s", locus_errmsg()); return; }
    locus_lora a, b;
    CHECK(locus_lora_create(&a, &u.L, UNET_LAYERS, UNET_TARGETS, 4, 4, 7) == LOCUS_OK && a.n == 8, "8 adapters (%s)", locus_errmsg());
    CHECK(a.n == 8 && !strcmp(a.e[0].module, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q") &&
              !strcmp(a.e[3].module, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0") && a.e[1].in == 32 &&
              a.e[1].out == 16 && a.e[0].ad.scale == 1.0f && !strcmp(a.prefix, "unet"),
          "modules in registry order, shapes, scale");
    /* gaussian init = torch.randn from one generator, module by module, times 1/r; up = 0 */
    float ref[4 * 32];
    locus_mt19937 g;
    locus_mt19937_seed(&g, 7);
    locus_randn_gen(&g, ref, 4 * 16);
    int ok = 1;
    for (int i = 0; i < 64; i++) ok &= a.e[0].ad.down[i] == ref[i] * 0.25f;
    locus_randn_gen(&g, ref, 4 * 32);
    for (int i = 0; i < 128; i++) ok &= a.e[1].ad.down[i] == ref[i] * 0.25f;
    for (int i = 0; i < 64; i++) ok &= a.e[0].ad.up[i] == 0.0f;
    CHECK(ok, "PEFT gaussian init (down = randn / r, up = 0)");
    CHECK(u.down[0].attn[0].blocks[0].a2.q.lora == &a.e[0].ad, "attached to the layer");
    /* brace and glob forms select the same modules */
    CHECK(locus_lora_create(&b, &u.L, "{down_blocks.0,mid_block}.attentions.0.transformer_blocks.0.attn2", "to_{q,k,v},to_out.0", 4, 4, 7) ==
                  LOCUS_OK && b.n == 8 && !strcmp(b.e[7].module, a.e[7].module),
          "brace form");
    CHECK(u.down[0].attn[0].blocks[0].a2.q.lora->next == &b.e[0].ad, "second set chains after the first");
    locus_lora_free(&b);
    CHECK(u.down[0].attn[0].blocks[0].a2.q.lora == &a.e[0].ad && !a.e[0].ad.next, "free detaches only its own adapters");
    int nattn2 = 0;
    for (size_t i = 0; i < u.L.nmods; i++) nattn2 += strstr(u.L.mods[i].name, "attn2.to_k") != NULL;
    CHECK(locus_lora_create(&b, &u.L, "*attn2", "to_k", 2, 4, 1) == LOCUS_OK && b.n == nattn2 && b.e[0].ad.scale == 2.0f, "glob: every attn2 (%d)", nattn2);
    locus_lora_free(&b);
    locus_lora_free(&a);
    CHECK(!u.down[0].attn[0].blocks[0].a2.q.lora, "all detached");
    /* errors */
    CHECK(locus_lora_create(&b, &u.L, "up_blocks.9.attn2", "to_q", 4, 4, 0) == LOCUS_E_NOTFOUND && strstr(locus_errmsg(), "'up_blocks.9.attn2' matches no layer"),
          "no match: %s", locus_errmsg());
    CHECK(locus_lora_create(&b, &u.L, "mid_block.attentions.0.transformer_blocks.0.attn2", "to_q,to_x", 4, 4, 0) == LOCUS_E_NOTFOUND &&
              strstr(locus_errmsg(), "has no Linear 'to_x'"),
          "missing target: %s", locus_errmsg());
    CHECK(locus_lora_create(&b, &u.L, "*attn2", "to_q,add_k_proj", 4, 4, 0) == LOCUS_E_NOTFOUND && strstr(locus_errmsg(), "'add_k_proj'"),
          "target missing under a glob: %s", locus_errmsg());
    CHECK(locus_lora_create(&b, &u.L, "*attn2", "to_q", 0, 4, 0) == LOCUS_E_ARG && strstr(locus_errmsg(), "rank"), "rank 0: %s", locus_errmsg());
    locus_unet_free(&u);
}

/* tensor names of a safetensors file, and its metadata value */
static int file_has(const char *path, const char *name) {
    locus_st_file f;
    if (locus_st_open(&f, path)) return 0;
    int r = locus_st_find(&f, name) != NULL;
    locus_st_close(&f);
    return r;
}

static void write_file(const char *path, int nt, const char **names, const int64_t (*shapes)[2], float **data, const char *alpha_meta) {
    locus_st_writer *w = locus_st_writer_new();
    for (int i = 0; i < nt; i++) locus_st_writer_add(w, names[i], LOCUS_F32, shapes[i][1] ? 2 : 1, shapes[i], data[i]);
    if (alpha_meta) locus_st_writer_add_meta(w, "alpha", alpha_meta);
    locus_st_writer_save(w, path);
    locus_st_writer_free(w);
}

static void test_files_unet(void) {
    locus_unet u;
    if (!load_unet(&u)) { CHECK(0, "load unet"); return; }
    locus_lora a, b;
    char path[512], gpath[512];
    locus_lora_create(&a, &u.L, UNET_LAYERS, UNET_TARGETS, 4, 8, 3);
    for (int i = 0; i < a.n; i++) t_fill(a.e[i].ad.up, (size_t)a.e[i].out * 4, 100 + i, -1, 1);
    snprintf(path, sizeof path, "%s/a.safetensors", tmpdir);
    CHECK(locus_lora_save(&a, path) == LOCUS_OK, "save");
    /* diffusers' UNet key scheme exactly, with rank/alpha metadata */
    locus_st_file f;
    int keys_ok = locus_st_open(&f, path) == LOCUS_OK && f.count == 16;
    if (keys_ok) {
        keys_ok &= locus_st_find(&f, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0.lora.down.weight") != NULL &&
                   locus_st_find(&f, "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora.up.weight") != NULL;
        const locus_json *md = locus_json_get(f.header.root, "__metadata__");
        keys_ok &= md && !strcmp(locus_json_str(md, "rank", "", NULL), "4") && !strcmp(locus_json_str(md, "alpha", "", NULL), "8");
        locus_st_close(&f);
    }
    CHECK(keys_ok, "written keys are unet.<module>.lora.{down,up}.weight with rank/alpha metadata");
    locus_lora_free(&a);
    locus_lora_create(&a, &u.L, UNET_LAYERS, UNET_TARGETS, 4, 8, 3);
    for (int i = 0; i < a.n; i++) t_fill(a.e[i].ad.up, (size_t)a.e[i].out * 4, 100 + i, -1, 1);
    CHECK(locus_lora_read(&b, &u.L, path, 0.5f) == LOCUS_OK && b.n == 8, "read back (%s)", locus_errmsg());
    int same = b.n == 8;
    for (int i = 0; i < b.n && same; i++)
        same = !strcmp(a.e[i].module, b.e[i].module) && !t_bitdiff(a.e[i].ad.down, b.e[i].ad.down, 4 * (size_t)a.e[i].in) &&
               !t_bitdiff(a.e[i].ad.up, b.e[i].ad.up, 4 * (size_t)a.e[i].out) && b.e[i].alpha == 8.0f && b.e[i].ad.scale == 1.0f;
    CHECK(same, "round trip: same bits, alpha from metadata, scale = alpha/r * weight");
    locus_lora_free(&b);

    /* PEFT keys (base_model.model. and bare) and kohya keys load the same factors */
    const locus_lora_entry *e0 = &a.e[0], *e1 = &a.e[7];
    char k[4][256];
    const char *names[6];
    int64_t shp[6][2] = {{4, e0->in}, {e0->out, 4}, {4, e1->in}, {e1->out, 4}, {1, 0}, {1, 0}};
    float two = 2.0f, *data[6] = {e0->ad.down, e0->ad.up, e1->ad.down, e1->ad.up, &two, &two};
    snprintf(k[0], 256, "base_model.model.%s.lora_A.weight", e0->module);
    snprintf(k[1], 256, "base_model.model.%s.lora_B.weight", e0->module);
    snprintf(k[2], 256, "%s.lora_A.weight", e1->module);
    snprintf(k[3], 256, "%s.lora_B.weight", e1->module);
    for (int i = 0; i < 4; i++) names[i] = k[i];
    snprintf(path, sizeof path, "%s/peft.safetensors", tmpdir);
    write_file(path, 4, names, shp, data, NULL);
    CHECK(locus_lora_read(&b, &u.L, path, 1) == LOCUS_OK && b.n == 2 && !strcmp(b.e[1].module, e1->module) &&
              !t_bitdiff(b.e[1].ad.up, e1->ad.up, 4 * (size_t)e1->out) && b.e[0].ad.scale == 1.0f,
          "PEFT keys (alpha defaults to r): %s", locus_errmsg());
    locus_lora_free(&b);
    char cfgp[600];
    snprintf(cfgp, sizeof cfgp, "%s/adapter_config.json", tmpdir);
    const char *pc = "{\"r\": 4, \"lora_alpha\": 8}";
    locus_write_atomic(cfgp, pc, strlen(pc));
    CHECK(locus_lora_read(&b, &u.L, path, 1) == LOCUS_OK && b.e[0].alpha == 8.0f && b.e[0].ad.scale == 2.0f,
          "PEFT folder: lora_alpha from adapter_config.json beside the file: %s", locus_errmsg());
    locus_lora_free(&b);
    unlink(cfgp);
    char kk[6][256];
    snprintf(kk[0], 256, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q.lora_down.weight");
    snprintf(kk[1], 256, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q.lora_up.weight");
    snprintf(kk[2], 256, "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_out_0.lora_down.weight");
    snprintf(kk[3], 256, "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_out_0.lora_up.weight");
    snprintf(kk[4], 256, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q.alpha");
    snprintf(kk[5], 256, "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_out_0.alpha");
    for (int i = 0; i < 6; i++) names[i] = kk[i];
    snprintf(path, sizeof path, "%s/kohya.safetensors", tmpdir);
    write_file(path, 6, names, shp, data, NULL);
    CHECK(locus_lora_read(&b, &u.L, path, 1) == LOCUS_OK && b.n == 2 && !strcmp(b.e[0].module, e0->module) &&
              !strcmp(b.e[1].module, e1->module) && !t_bitdiff(b.e[1].ad.down, e1->ad.down, 4 * (size_t)e1->in) &&
              b.e[0].alpha == 2.0f && b.e[0].ad.scale == 0.5f,
          "kohya keys resolved against the registry, .alpha used: %s", locus_errmsg());
    locus_lora_free(&b);
    /* bad keys and shapes: one error naming the key */
    snprintf(kk[0], 256, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_z.lora.down.weight");
    write_file(path, 2, names, shp, data, NULL);
    CHECK(locus_lora_read(&b, &u.L, path, 1) != LOCUS_OK && strstr(locus_errmsg(), "attn2.to_z.lora.down.weight"), "unknown module: %s", locus_errmsg());
    snprintf(kk[0], 256, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q.lora.middle.weight");
    write_file(path, 2, names, shp, data, NULL);
    CHECK(locus_lora_read(&b, &u.L, path, 1) == LOCUS_E_FORMAT && strstr(locus_errmsg(), "lora.middle.weight"), "unknown key: %s", locus_errmsg());
    snprintf(kk[0], 256, "unet.%s.lora.down.weight", e1->module); /* [4,16] down against a 32-wide layer */
    snprintf(kk[1], 256, "unet.%s.lora.up.weight", e1->module);
    write_file(path, 2, names, shp, data, NULL);
    CHECK(locus_lora_read(&b, &u.L, path, 1) == LOCUS_E_SHAPE && strstr(locus_errmsg(), kk[0]), "shape mismatch: %s", locus_errmsg());
    write_file(path, 1, names, shp, data, NULL);
    CHECK(locus_lora_read(&b, &u.L, path, 1) == LOCUS_E_FORMAT && strstr(locus_errmsg(), "no matching up"), "down without up: %s", locus_errmsg());

    locus_lora_free(&a);
    /* the golden initial LoRA (diffusers' file) loads with the golden's values */
    locus_st_file gf;
    snprintf(gpath, sizeof gpath, "%s/train/golden_train_unet.safetensors", G);
    snprintf(path, sizeof path, "%s/train/lora_init_unet.safetensors", G);
    int gok = locus_st_open(&gf, gpath) == LOCUS_OK && locus_lora_read(&b, &u.L, path, 1) == LOCUS_OK && b.n == 8;
    for (int i = 0; gok && i < b.n; i++) {
        char nm[512];
        int64_t n;
        snprintf(nm, sizeof nm, "lora_init.unet.%s.lora.up.weight", b.e[i].module);
        float *ref = golden_f32(&gf, nm, &n);
        gok = ref && n == (int64_t)b.e[i].out * 4 && !t_bitdiff(ref, b.e[i].ad.up, (size_t)n);
        free(ref);
    }
    CHECK(gok, "golden lora_init_unet.safetensors loads: %s", locus_errmsg());
    /* forward with the adapter equals base + scale * (x down^T) up^T; merging gives the same output */
    nn_linear *q = b.e[0].lin;
    float x[3 * 16], y0[3 * 16], y1[3 * 16], t[3 * 4], d[3 * 16], y2[3 * 16];
    t_fill(x, 48, 5, -1, 1);
    nn_lora *keep = q->lora;
    q->lora = NULL;
    nn_linear_fwd(q, x, 3, y0);
    q->lora = keep;
    nn_linear_fwd(q, x, 3, y1);
    locus_matmul(3, 4, 16, x, 0, b.e[0].ad.down, 1, t, NULL);
    locus_matmul(3, 16, 4, t, 0, b.e[0].ad.up, 1, d, NULL);
    double md = 0;
    for (int i = 0; i < 48; i++) md = fmax(md, fabs(y1[i] - (y0[i] + d[i])));
    CHECK(md < 1e-6, "adapter forward (max diff %.3g)", md);
    locus_lora_merge(&b);
    nn_linear_fwd(q, x, 3, y2);
    double mm = t_maxdiff(y2, y1, 48, NULL);
    CHECK(!q->lora && mm < 1e-5, "merged weight gives the adapter output (max diff %.3g)", mm);
    locus_lora_free(&b);
    locus_st_close(&gf);
    locus_unet_free(&u);
}

static void test_files_sd3(void) {
    locus_mmdit m;
    char d[512], path[512];
    snprintf(d, sizeof d, "%s/sd3/transformer", G);
    if (locus_mmdit_load(&m, d)) { CHECK(0, "load sd3: %s", locus_errmsg()); return; }
    locus_lora a, b;
    snprintf(path, sizeof path, "%s/train/lora_init_sd3.safetensors", G);
    CHECK(locus_lora_read(&a, &m.L, path, 1) == LOCUS_OK && a.n == 8 && !strcmp(a.prefix, "transformer"), "golden lora_init_sd3 loads: %s",
          locus_errmsg());
    snprintf(path, sizeof path, "%s/sd3.safetensors", tmpdir);
    CHECK(locus_lora_save(&a, path) == LOCUS_OK && file_has(path, "transformer.transformer_blocks.0.attn.add_k_proj.lora_A.weight") &&
              file_has(path, "transformer.transformer_blocks.0.attn.to_out.0.lora_B.weight"),
          "SD3 keys are transformer.<module>.lora_{A,B}.weight");
    CHECK(locus_lora_read(&b, &m.L, path, 1) == LOCUS_OK && b.n == 8 && !t_bitdiff(a.e[5].ad.down, b.e[5].ad.down, 4 * 32), "SD3 round trip");
    locus_lora_free(&b);
    locus_lora_free(&a);
    CHECK(locus_lora_create(&a, &m.L, "transformer_blocks.0.attn", "to_q,to_k,to_v,to_out.0,add_q_proj,add_k_proj,add_v_proj,to_add_out", 4, 4,
                            0) == LOCUS_OK &&
              a.n == 8,
          "SD3 targets: %s", locus_errmsg());
    locus_lora_free(&a);
    locus_mmdit_free(&m);
}

/* ---- AdamW ---- */

static void test_clip(void) {
    float a[2] = {3, 0}, b[1] = {4};
    float *g[2] = {a, b};
    size_t n[2] = {2, 1};
    float tot = locus_clip_grad_norm(g, n, 2, 1.0);
    float coef = 1.0f / (5.0f + 1e-6f);
    CHECK(tot == 5.0f && a[0] == 3.0f * coef && b[0] == 4.0f * coef, "clip_grad_norm: total 5, coef 1/(5+1e-6)");
    tot = locus_clip_grad_norm(g, n, 2, 10.0);
    CHECK(a[0] == 3.0f * coef, "no clipping below max_norm (coef clamped to 1)");
}

/* lora_step1 = AdamW(lora_init, lora_grad) with the golden's settings */
static void test_adamw_golden(const char *cas) {
    char p[512];
    snprintf(p, sizeof p, "%s/train/golden_train_%s.json", G, cas);
    locus_json_doc doc;
    if (locus_json_parse_file(&doc, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    const locus_json *aw = locus_json_get(doc.root, "adamw");
    const locus_json *betas = locus_json_get(aw, "betas");
    locus_adamw_cfg c = {locus_json_num(aw, "lr", 0, NULL), betas->kids[0]->num, betas->kids[1]->num, locus_json_num(aw, "eps", 0, NULL),
                         locus_json_num(aw, "weight_decay", 0, NULL), 0};
    locus_json_free(&doc);
    snprintf(p, sizeof p, "%s/train/golden_train_%s.safetensors", G, cas);
    locus_st_file g;
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_adamw o, o2;
    locus_adamw_init(&o, &c);
    locus_adamw_init(&o2, &c);
    float *bufs[64][3];
    int64_t ns[64];
    int np = 0;
    for (size_t i = 0; i < g.count && np < 64; i++) {
        const char *nm = g.tensors[i].name;
        if (strncmp(nm, "lora_init.", 10)) continue;
        char k[512];
        bufs[np][0] = golden_f32(&g, nm, &ns[np]);
        snprintf(k, sizeof k, "lora_grad.%s", nm + 10);
        int64_t nn;
        bufs[np][1] = golden_f32(&g, k, &nn);
        snprintf(k, sizeof k, "lora_step1.%s", nm + 10);
        bufs[np][2] = golden_f32(&g, k, &nn);
        locus_adamw_add(&o, nm + 10, bufs[np][0], bufs[np][1], (size_t)ns[np]);
        np++;
    }
    locus_adamw_step(&o);
    double worst = 0, worst_abs = 0;
    size_t ndiff = 0;
    for (int i = 0; i < np; i++) {
        double mref;
        double md = t_maxdiff(bufs[i][0], bufs[i][2], (size_t)ns[i], &mref);
        worst = fmax(worst, md / mref);
        worst_abs = fmax(worst_abs, md);
        ndiff += t_bitdiff(bufs[i][0], bufs[i][2], (size_t)ns[i]);
    }
    CHECK(np == 16 && worst < 1e-6, "%s AdamW step 1 vs torch: %d tensors, max rel diff %.3g (abs %.3g, %zu elements not bit-equal)", cas, np,
          worst, worst_abs, ndiff);
    printf("  %s: AdamW step 1 vs torch: max rel %.3g, max abs %.3g, %zu elements differ in bits\n", cas, worst, worst_abs, ndiff);
    /* resume: step 2 from saved state == step 2 uninterrupted, bit for bit */
    float *p2[64];
    for (int i = 0; i < np; i++) {
        p2[i] = malloc((size_t)ns[i] * sizeof(float));
        memcpy(p2[i], bufs[i][0], (size_t)ns[i] * sizeof(float));
        locus_adamw_add(&o2, o.ps[i].name, p2[i], bufs[i][1], (size_t)ns[i]);
    }
    char sp[512];
    snprintf(sp, sizeof sp, "%s/opt_%s.safetensors", tmpdir, cas);
    locus_st_writer *w = locus_st_writer_new();
    locus_status st = locus_adamw_state_write(&o, w, "optimizer.");
    if (!st) st = locus_st_writer_save(w, sp);
    locus_st_writer_free(w);
    locus_st_file sf;
    if (!st) st = locus_st_open(&sf, sp);
    if (!st) { st = locus_adamw_state_read(&o2, &sf, "optimizer."); locus_st_close(&sf); }
    locus_adamw_step(&o);
    locus_adamw_step(&o2);
    size_t bd = 0;
    for (int i = 0; i < np; i++) bd += t_bitdiff(bufs[i][0], p2[i], (size_t)ns[i]) + t_bitdiff(o.ps[i].v, o2.ps[i].v, (size_t)ns[i]);
    CHECK(!st && o2.step == 2 && bd == 0, "%s optimizer state save/read: resumed step 2 == uninterrupted (%zu bits differ) %s", cas, bd,
          st ? locus_errmsg() : "");
    for (int i = 0; i < np; i++) { free(bufs[i][0]); free(bufs[i][1]); free(bufs[i][2]); free(p2[i]); }
    locus_adamw_free(&o);
    locus_adamw_free(&o2);
    locus_st_close(&g);
}

static void test_warmup(void) {
    locus_adamw_cfg c = locus_adamw_defaults();
    c.lr = 1e-3;
    c.warmup = 4;
    locus_adamw o;
    locus_adamw_init(&o, &c);
    CHECK(locus_adamw_lr(&o, 1) == 0.0 && locus_adamw_lr(&o, 3) == 1e-3 * 0.5 && locus_adamw_lr(&o, 5) == 1e-3 && locus_adamw_lr(&o, 50) == 1e-3,
          "linear warmup as constant_schedule_with_warmup");
    locus_adamw_free(&o);
    /* transformers' get_wsd_schedule(warmup 4, decay 8, 20 steps, decay_type linear): lambda(k), k = t - 1 */
    c.decay = 8;
    c.total = 20;
    locus_adamw_init(&o, &c);
    CHECK(locus_adamw_lr(&o, 3) == 1e-3 * 0.5 && locus_adamw_lr(&o, 12) == 1e-3 && locus_adamw_lr(&o, 13) == 1e-3 &&
              locus_adamw_lr(&o, 14) == 1e-3 * (1.0 - 1.0 / 8) && locus_adamw_lr(&o, 20) == 1e-3 * (1.0 - 7.0 / 8) && locus_adamw_lr(&o, 21) == 0.0,
          "linear decay over the last steps as get_wsd_schedule");
    locus_adamw_free(&o);
    c = locus_adamw_defaults();
    CHECK(c.lr == 1e-6 && c.weight_decay == 1e-2 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8, "paper preset defaults");
}

/* the training objective against the golden's batch 0: noising, target, loss without and with the initial LoRA */
static void test_train_objective(const char *cas, const char *model) {
    char p[512];
    locus_train_model m;
    snprintf(p, sizeof p, "%s/%s", G, model);
    if (locus_train_model_open(&m, p)) { CHECK(0, "open %s: %s", p, locus_errmsg()); return; }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/train/golden_train_%s.safetensors", G, cas);
    locus_st_open(&g, p);
    locus_train_batch b;
    CHECK(locus_train_batch_count(&g) == 3, "%s: 3 batches", cas);
    if (locus_train_batch_read(&g, 0, &m, &b)) { CHECK(0, "batch0: %s", locus_errmsg()); locus_st_close(&g); locus_train_model_close(&m); return; }
    size_t n = (size_t)b.B * b.C * b.H * b.W;
    float *noisy = malloc(n * sizeof(float)), *target = malloc(n * sizeof(float));
    locus_train_noise(&m, &b, noisy, target);
    double dn = parity_rel(&g, "batch0.noisy", noisy, (int64_t)n), dt = parity_rel(&g, "batch0.target", target, (int64_t)n);
    CHECK(dn >= 0 && dn < 1e-6 && dt >= 0 && dt < 1e-6, "%s: noisy input (rel %.3g) and target (rel %.3g) as diffusers", cas, dn, dt);
    int64_t n1;
    float loss0, loss1, *gl = golden_f32(&g, "batch0.loss", &n1), *gll;
    int64_t nl;
    gll = golden_f32(&g, "lora_loss", &nl);
    locus_train_loss(&m, &b, &loss0);
    locus_lora s;
    snprintf(p, sizeof p, "%s/train/lora_init_%s.safetensors", G, cas);
    int ok = locus_lora_read(&s, m.L, p, 1) == LOCUS_OK;
    locus_train_loss(&m, &b, &loss1);
    double r0 = fabs(loss0 - gl[0]) / gl[0], r1 = fabs(loss1 - gll[0]) / gll[0];
    CHECK(ok && r0 < 1e-5 && r1 < 1e-5, "%s: loss without LoRA %.7g (golden %.7g, rel %.2g), with lora_init %.7g (golden %.7g, rel %.2g)", cas, loss0,
          gl[0], r0, loss1, gll[0], r1);
    printf("  %s: loss without LoRA rel %.2g, with the initial LoRA rel %.2g vs diffusers\n", cas, r0, r1);
    locus_lora_free(&s);
    free(gl); free(gll); free(noisy); free(target);
    locus_train_batch_free(&b);
    locus_st_close(&g);
    locus_train_model_close(&m);
}

static int same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (locus_read_file(a, &x, &nx)) return 0;
    if (locus_read_file(b, &y, &ny)) { free(x); return 0; }
    int r = nx == ny && !memcmp(x, y, nx);
    free(x); free(y);
    return r;
}

/* 3 steps of train-lora --batches against the golden's lora_step{1,2,3} and losses; an interrupted run
 * (2 steps, then --resume to 3) writes the same bytes as the uninterrupted one. */
static void test_train_replay(const char *cas, const char *model, const char *layers, const char *targets) {
    char mdir[512], bat[512], init[512], out[3][512], dump[3][512];
    snprintf(mdir, sizeof mdir, "%s/%s", G, model);
    snprintf(bat, sizeof bat, "%s/train/golden_train_%s.safetensors", G, cas);
    snprintf(init, sizeof init, "%s/train/lora_init_%s.safetensors", G, cas);
    for (int r = 0; r < 3; r++) {
        snprintf(out[r], 512, "%s/%s_run%d.safetensors", tmpdir, cas, r);
        snprintf(dump[r], 512, "%s/%s_dump%d.safetensors", tmpdir, cas, r);
    }
    const char *steps[3] = {"3", "2", "3"};
    int rc[3];
    for (int r = 0; r < 3; r++) {
        int o = r == 2 ? 1 : r; /* run 2 resumes run 1's checkpoint */
        char *argv[] = {"train-lora", "--model", mdir, "--batches", bat, "--lora-layers", (char *)layers, "--lora-targets", (char *)targets,
                        "--rank", "4", "--alpha", "4", "--lora-init", init, "--lr", "1e-3", "--weight-decay", "0.01", "--steps",
                        (char *)steps[r], "--checkpoint-every", "1", "-o", out[o], "--dump", dump[r], "--resume", NULL};
        rc[r] = locus_cmd_train_lora(r == 2 ? 28 : 27, argv);
    }
    CHECK(rc[0] == 0 && rc[1] == 0 && rc[2] == 0, "%s: train-lora runs (%d %d %d)", cas, rc[0], rc[1], rc[2]);
    locus_st_file g, d;
    if (locus_st_open(&g, bat) || locus_st_open(&d, dump[0])) { CHECK(0, "%s", locus_errmsg()); return; }
    double worst[4] = {0, 0, 0, 0};
    int found = 0;
    for (size_t i = 0; i < g.count; i++) {
        const char *nm = g.tensors[i].name;
        if (strncmp(nm, "lora_step", 9)) continue;
        int k = nm[9] - '0';
        int64_t n;
        float *x = golden_f32(&d, nm, &n);
        double r = x ? parity_rel(&g, nm, x, n) : -1;
        if (r < 0) r = 1e9;
        if (r > worst[k]) worst[k] = r;
        found++;
        free(x);
    }
    float *gl = NULL, *dl = NULL;
    int64_t n1, n2;
    gl = golden_f32(&g, "lora_loss", &n1);
    dl = golden_f32(&d, "lora_loss", &n2);
    double lw = 0;
    for (int i = 0; gl && dl && i < 3; i++) lw = fmax(lw, fabs(gl[i] - dl[i]) / fabs(gl[i]));
    CHECK(found == 48 && worst[1] < 1e-4 && worst[2] < 1e-4 && worst[3] < 1e-4 && dl && lw < 1e-5,
          "%s: 3 AdamW steps vs torch: lora_step1 %.3g, step2 %.3g, step3 %.3g (max rel per tensor), losses %.3g", cas, worst[1], worst[2],
          worst[3], lw);
    printf("  %s: train-lora 3 steps vs diffusers/torch: max rel lora_step1 %.3g, step2 %.3g, step3 %.3g; losses %.3g\n", cas, worst[1],
           worst[2], worst[3], lw);
    free(gl); free(dl);
    locus_st_close(&d);
    locus_st_close(&g);
    CHECK(same_file(out[0], out[1]) && same_file(dump[0], dump[2]), "%s: 2 steps + --resume to 3 == 3 steps, byte for byte (LoRA file and dump)", cas);
}

/* SIGKILL during a run, then --resume: the same bytes as an uninterrupted run (the child is this program
 * re-executed with --train, a fresh process, killed as soon as its first checkpoint exists). */
static void test_kill_resume(void) {
    char mdir[512], bat[512], init[512], out[2][512], dump[2][512], ckpt[600];
    snprintf(mdir, sizeof mdir, "%s/ldm", G);
    snprintf(bat, sizeof bat, "%s/train/golden_train_unet.safetensors", G);
    snprintf(init, sizeof init, "%s/train/lora_init_unet.safetensors", G);
    for (int r = 0; r < 2; r++) {
        snprintf(out[r], 512, "%s/kill%d.safetensors", tmpdir, r);
        snprintf(dump[r], 512, "%s/killdump%d.safetensors", tmpdir, r);
    }
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", out[1]);
    char *argv[] = {"train-lora", "--model", mdir, "--batches", bat, "--lora-layers", (char *)UNET_LAYERS, "--rank", "4", "--alpha", "4",
                    "--lora-init", init, "--lr", "1e-3", "--steps", "24", "--checkpoint-every", "2", "-o", out[0], "--dump", dump[0],
                    "--resume", NULL};
    int rc0 = locus_cmd_train_lora(23, argv); /* without --resume */
    argv[20] = out[1];
    argv[22] = dump[1];
    pid_t pid = fork();
    if (pid == 0) {
        char *cargv[26] = {"/proc/self/exe", "--train"};
        for (int i = 1; i < 23; i++) cargv[i + 1] = argv[i];
        cargv[24] = NULL; /* fresh run, no --resume */
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        execv("/proc/self/exe", cargv);
        _exit(3);
    }
    int killed = 0, status = 0;
    for (int i = 0; i < 20000; i++) { /* up to 20 s */
        if (access(ckpt, F_OK) == 0) { kill(pid, SIGKILL); killed = 1; break; }
        if (waitpid(pid, &status, WNOHANG) == pid) { pid = 0; break; }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (pid) waitpid(pid, &status, 0);
    int rc1 = locus_cmd_train_lora(24, argv); /* --resume */
    CHECK(rc0 == 0 && rc1 == 0 && killed && same_file(out[0], out[1]) && same_file(dump[0], dump[1]),
          "SIGKILL after the first checkpoint + --resume == uninterrupted 24 steps, byte for byte (rc %d %d, killed %d)", rc0, rc1, killed);
}

/* The trained LoRA is the same bytes for every kernel table and thread count; a NaN loss stops the run
 * naming the step, with the last checkpoint intact; locus_lora_load chains adapters owned by the loader. */
static void test_train_determinism(void) {
    char mdir[512], bat[512], init[512], out[512], ref[512];
    snprintf(mdir, sizeof mdir, "%s/ldm", G);
    snprintf(bat, sizeof bat, "%s/train/golden_train_unet.safetensors", G);
    snprintf(init, sizeof init, "%s/train/lora_init_unet.safetensors", G);
    snprintf(ref, sizeof ref, "%s/isa_ref.safetensors", tmpdir);
    snprintf(out, sizeof out, "%s/isa.safetensors", tmpdir);
    char *argv[] = {"train-lora", "--model", mdir, "--batches", bat, "--lora-layers", "*attn2", "--rank", "3", "--alpha", "5",
                    "--seed", "9", "--lr", "1e-3", "--steps", "3", "--clip-grad", "1e-4", "-o", ref, NULL};
    const locus_kernels *orig = locus_k();
    int th0 = locus_threads();
    int rc = locus_cmd_train_lora(21, argv), same = rc == 0, runs = 0;
    argv[20] = out;
    static const locus_isa isas[] = {LOCUS_ISA_SCALAR, LOCUS_ISA_AVX2, LOCUS_ISA_AVX512, LOCUS_ISA_NEON};
    for (int i = 0; i < 4; i++) {
        if (!locus_kernels_for(isas[i])) continue;
        locus_kernels_force(isas[i]);
        for (int th = 1; th <= 3; th += 2) {
            locus_set_threads(th);
            same &= locus_cmd_train_lora(21, argv) == 0 && same_file(ref, out);
            runs++;
        }
    }
    locus_kernels_force(orig->isa);
    locus_set_threads(th0);
    CHECK(same, "train-lora (glob layers, rank 3, gaussian init, clipping active): same LoRA bytes for %d ISA x thread runs", runs);

    /* NaN loss at step 2 */
    locus_st_file g;
    if (locus_st_open(&g, bat)) return;
    locus_st_writer *w = locus_st_writer_new();
    static const char *parts[] = {"x0", "noise", "timesteps", "encoder_hidden_states"};
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 4; k++) {
            char nm[64];
            snprintf(nm, sizeof nm, "batch0.%s", parts[k]);
            const locus_st_tensor *t = locus_st_find(&g, nm);
            snprintf(nm, sizeof nm, "batch%d.%s", b, parts[k]);
            if (b == 1 && k == 0) {
                float *x = malloc(t->nbytes);
                memcpy(x, t->data, t->nbytes);
                x[5] = NAN;
                locus_st_writer_add(w, nm, t->dtype, t->ndim, t->shape, x);
                free(x);
            } else locus_st_writer_add(w, nm, t->dtype, t->ndim, t->shape, t->data);
        }
    char nanb[512], nout[512], ck[600];
    snprintf(nanb, sizeof nanb, "%s/nan.safetensors", tmpdir);
    snprintf(nout, sizeof nout, "%s/nanout.safetensors", tmpdir);
    snprintf(ck, sizeof ck, "%s.ckpt", nout);
    locus_st_writer_save(w, nanb);
    locus_st_writer_free(w);
    locus_st_close(&g);
    char *av[] = {"train-lora", "--model", mdir, "--batches", nanb, "--lora-layers", "*attn2", "--rank", "2", "--steps", "2",
                  "--checkpoint-every", "1", "-o", nout, NULL};
    rc = locus_cmd_train_lora(15, av);
    locus_st_file cf;
    int64_t step = -1;
    if (locus_st_open(&cf, ck) == LOCUS_OK) {
        const locus_st_tensor *t = locus_st_find(&cf, "train.step");
        if (t) locus_st_to_i64(t, &step, 1);
        locus_st_close(&cf);
    }
    CHECK(rc == 2 && step == 1 && access(nout, F_OK) != 0, "NaN loss at step 2: exit 2, checkpoint of step 1 intact (%lld), no output", (long long)step);

    /* --lora FILE[:SCALE] for generation: two loads chain, memory owned by the loader */
    locus_unet u;
    if (!load_unet(&u)) return;
    CHECK(locus_lora_load(&u.L, init, 0.5f) == LOCUS_OK && locus_lora_load(&u.L, init, 2.0f) == LOCUS_OK, "locus_lora_load twice: %s", locus_errmsg());
    const nn_lora *a = u.down[0].attn[0].blocks[0].a2.k.lora;
    CHECK(a && a->scale == 0.5f && a->next && a->next->scale == 2.0f && !a->next->next && a->down[0] == a->next->down[0], "adapters chained in load order");
    locus_unet_free(&u);
}

/* --data DIR: a tiny image folder; runs for UNet and SD3 pipelines, same bytes for 1 and 3 threads and for a
 * SIGKILL-free interrupted (2 steps + --resume to 4) run; bad folders give one error. */
static void test_train_data(const char *pipe, const char *layers, const char *targets) {
    char dd[512], mdir[512], out[3][512], p[700];
    snprintf(dd, sizeof dd, "%s/data_%s", tmpdir, pipe);
    snprintf(mdir, sizeof mdir, "%s/pipelines/%s", G, pipe);
    locus_mkdir(dd);
    uint8_t pix[40 * 24 * 3];
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < (int)sizeof pix; k++) pix[k] = (uint8_t)(k * (7 + i) + i * 31);
        snprintf(p, sizeof p, "%s/img%d.png", dd, i);
        locus_png_write(p, pix, i == 1 ? 24 : 40, i == 1 ? 40 : 24, 3, NULL, 0);
    }
    const char *meta = "{\"file_name\": \"img0.png\", \"text\": \"A sign that says \\\"HELLO\\\".\"}\n"
                       "{\"file_name\": \"img1.png\", \"text\": \"a red fox\"}\n\n"
                       "{\"file_name\": \"img2.png\", \"text\": \"a red fox\"}\n";
    snprintf(p, sizeof p, "%s/metadata.jsonl", dd);
    locus_write_atomic(p, meta, strlen(meta));
    for (int r = 0; r < 3; r++) snprintf(out[r], 512, "%s/data_%s_%d.safetensors", tmpdir, pipe, r);
    char *argv[] = {"train-lora", "--model", mdir, "--data", dd, "--lora-layers", (char *)layers, "--lora-targets", (char *)targets,
                    "--rank", "2", "--lr", "1e-3", "--batch-size", "2", "--steps", "4", "--max-sequence-length", "8", "-o", out[0], "--resume", NULL};
    int rc0 = locus_cmd_train_lora(21, argv);
    int th0 = locus_threads();
    locus_set_threads(th0 == 1 ? 3 : 1);
    argv[20] = out[1];
    int rc1 = locus_cmd_train_lora(21, argv);
    locus_set_threads(th0);
    argv[20] = out[2];
    argv[16] = "2";
    int rc2 = locus_cmd_train_lora(21, argv);
    argv[16] = "4";
    int rc3 = locus_cmd_train_lora(22, argv);
    CHECK(rc0 == 0 && rc1 == 0 && rc2 == 0 && rc3 == 0 && same_file(out[0], out[1]) && same_file(out[0], out[2]),
          "%s --data: 4 steps of batch 2 (rc %d %d %d %d); same bytes for other threads and for 2 steps + --resume to 4", pipe, rc0, rc1, rc2, rc3);
    /* errors */
    snprintf(p, sizeof p, "%s/img1.png", dd);
    locus_write_atomic(p, "not a png", 9);
    int rc = locus_cmd_train_lora(21, argv);
    CHECK(rc == 2 && strstr(locus_errmsg(), "img1.png"), "%s --data: unreadable image -> exit 2 naming it: %s", pipe, locus_errmsg());
    snprintf(p, sizeof p, "%s/metadata.jsonl", dd);
    unlink(p);
    rc = locus_cmd_train_lora(21, argv);
    CHECK(rc == 2 && strstr(locus_errmsg(), "no metadata.jsonl"), "%s --data: no metadata.jsonl -> exit 2: %s", pipe, locus_errmsg());
}

/* locus lora merge: the merged folder's UNet equals the original with the adapters attached; lora list runs */
static void test_merge_cmd(void) {
    char mdir[512], lf[600], od[512], spec[700];
    snprintf(mdir, sizeof mdir, "%s/ldm", G);
    snprintf(lf, sizeof lf, "%s/train/lora_init_unet.safetensors", G);
    snprintf(od, sizeof od, "%s/merged_unet", tmpdir);
    snprintf(spec, sizeof spec, "%s:0.7", lf);
    char *av[] = {"lora", "merge", "--model", mdir, "--lora", spec, "--lora", lf, "-o", od, NULL};
    int rc = locus_cmd_lora(10, av);
    char *al[] = {"lora", "list", lf, NULL};
    FILE *keep = stdout;
    stdout = fopen("/dev/null", "w");
    int rl = locus_cmd_lora(3, al);
    fclose(stdout);
    stdout = keep;
    locus_unet a, b;
    if (rc || !load_unet(&a) || locus_unet_load(&b, od)) { CHECK(0, "merge rc %d: %s", rc, locus_errmsg()); return; }
    locus_lora_load(&a.L, lf, 0.7f);
    locus_lora_load(&a.L, lf, 1.0f);
    float x[2 * 4 * 8 * 8], t[2] = {10, 500}, ctx[2 * 7 * 32], ya[2 * 4 * 8 * 8], yb[2 * 4 * 8 * 8];
    t_fill(x, sizeof x / 4, 1, -1, 1);
    t_fill(ctx, sizeof ctx / 4, 2, -1, 1);
    locus_unet_forward(&a, x, 2, 8, 8, t, ctx, 7, ya, NULL);
    locus_unet_forward(&b, x, 2, 8, 8, t, ctx, 7, yb, NULL);
    double mref, md = t_maxdiff(ya, yb, sizeof ya / 4, &mref);
    CHECK(rl == 0 && md / mref < 1e-5, "lora merge (two files, scales 0.7 and 1): merged UNet == adapters attached (rel %.3g); lora list ok", md / mref);
    locus_unet_free(&a);
    locus_unet_free(&b);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--train")) return locus_cmd_train_lora(argc - 1, argv + 1);
    G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    snprintf(tmpdir, sizeof tmpdir, "/tmp/locus_test_lora.%d", (int)getpid());
    locus_mkdir(tmpdir);
    test_patterns();
    test_create();
    test_files_unet();
    test_files_sd3();
    test_clip();
    test_warmup();
    test_adamw_golden("unet");
    test_adamw_golden("sd3");
    test_train_objective("unet", "ldm");
    test_train_objective("sd3", "sd3");
    test_train_replay("unet", "ldm", UNET_LAYERS, UNET_TARGETS);
    test_train_replay("sd3", "sd3", "transformer_blocks.0.attn", "to_q,to_k,to_v,to_out.0,add_q_proj,add_k_proj,add_v_proj,to_add_out");
    test_kill_resume();
    test_merge_cmd();
    test_train_determinism();
    test_train_data("sd15-tiny", "*attn2", "to_k,to_v");
    test_train_data("sd3-tiny", "transformer_blocks.{0,1}.attn", "add_k_proj,add_v_proj");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) {}
    return t_finish("lora");
}
