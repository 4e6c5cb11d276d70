/* test_sample.c — the LDM text-to-image loop (DDIM 4 steps, CFG 3.0) against diffusers' golden_sample:
 * every step's noise_pred_uncond / _text / noise_pred / latent_out, the final latent and the decoded image
 * within 1e-4 relative, from the golden embeddings and noise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../models/mmdit.h"
#include "../models/sampler.h"
#include "../models/unet.h"
#include "../models/vae.h"
#include "../experiments/patch.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"


/* --write-inputs GOLDEN.safetensors PREFIX DIR: DIR/embeds.safetensors (cond, uncond) and DIR/noise.safetensors
 * from a golden file's PREFIX{embeds.a|embeds}, ...uncond and noise tensors (names differ per golden file). */
static int write_inputs_ex(const char *gpath, const char *cond_name, const char *uncond_name, const char *noise_name, const char *dir,
                           const char *cpool, const char *upool);
static int write_inputs(const char *gpath, const char *cond_name, const char *uncond_name, const char *noise_name, const char *dir) {
    return write_inputs_ex(gpath, cond_name, uncond_name, noise_name, dir, NULL, NULL);
}
static int write_inputs_ex(const char *gpath, const char *cond_name, const char *uncond_name, const char *noise_name, const char *dir,
                           const char *cpool, const char *upool) {
    locus_st_file g;
    if (locus_st_open(&g, gpath)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    const locus_st_tensor *c = locus_st_find(&g, cond_name), *u = locus_st_find(&g, uncond_name), *n = locus_st_find(&g, noise_name);
    if (!c || !u || !n) { fprintf(stderr, "missing golden tensors\n"); return 1; }
    char p[512];
    locus_st_writer *w = locus_st_writer_new();
    locus_st_writer_add(w, "cond", c->dtype, c->ndim, c->shape, c->data);
    locus_st_writer_add(w, "uncond", u->dtype, u->ndim, u->shape, u->data);
    if (cpool && upool) {
        const locus_st_tensor *cp = locus_st_find(&g, cpool), *up = locus_st_find(&g, upool);
        if (!cp || !up) { fprintf(stderr, "missing pooled tensors\n"); return 1; }
        locus_st_writer_add(w, "cond_pooled", cp->dtype, cp->ndim, cp->shape, cp->data);
        locus_st_writer_add(w, "uncond_pooled", up->dtype, up->ndim, up->shape, up->data);
    }
    snprintf(p, sizeof p, "%s/embeds.safetensors", dir);
    int bad = locus_st_writer_save(w, p) != LOCUS_OK;
    locus_st_writer_free(w);
    w = locus_st_writer_new();
    locus_st_writer_add(w, "noise", n->dtype, n->ndim, n->shape, n->data);
    snprintf(p, sizeof p, "%s/noise.safetensors", dir);
    bad |= locus_st_writer_save(w, p) != LOCUS_OK;
    locus_st_writer_free(w);
    locus_st_close(&g);
    return bad;
}

/* --check-dump DUMP GOLDEN PREFIX STEPS: a `locus generate --dump` file against the golden run PREFIX */
static int check_dump(const char *dpath, const char *gpath, const char *prefix, int steps) {
    locus_st_file d, g;
    if (locus_st_open(&d, dpath) || locus_st_open(&g, gpath)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    double worst = 0;
    char wn[128] = "";
    int n = 0;
    const char *names[4] = {"noise_pred_uncond", "noise_pred_text", "noise_pred", "latent_out"};
    for (int s = 0; s <= steps; s++)
        for (int k = 0; k < 4; k++) {
            char dn[96], gn[128];
            if (s < steps) snprintf(dn, sizeof dn, "step%d.%s", s, names[k]);
            else if (k == 0) snprintf(dn, sizeof dn, "final_latent");
            else if (k == 1) snprintf(dn, sizeof dn, "image");
            else continue;
            snprintf(gn, sizeof gn, "%s%s", prefix, dn);
            const locus_st_tensor *t = locus_st_find(&d, dn);
            int64_t ne;
            float *x = t ? golden_f32(&d, dn, &ne) : NULL;
            double r = x ? parity_rel(&g, gn, x, ne) : -1;
            free(x);
            n++;
            if (r < 0 || r > worst) { worst = r < 0 ? 1e9 : r; snprintf(wn, sizeof wn, "%s", dn); }
        }
    printf("dump vs %s%s: %d tensors, worst %.2e (%s)\n", gpath, prefix, n, worst, wn);
    locus_st_close(&d);
    locus_st_close(&g);
    return worst <= 1e-4 ? 0 : 1;
}

/* --same-output A.png B.png A.st B.st: identical pixels, identical tensors (names, shapes, bits) and identical
 * metadata except the recorded ISA.  Returns 0 when all hold. */
#include "../core/png.h"
static int same_output(const char *pa, const char *pb, const char *da, const char *db) {
    uint8_t *x = NULL, *y = NULL;
    int wa, ha, wb, hb, bad = 0;
    if (locus_png_read_rgb(pa, &x, &wa, &ha) || locus_png_read_rgb(pb, &y, &wb, &hb)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    if (wa != wb || ha != hb || memcmp(x, y, (size_t)wa * ha * 3)) { fprintf(stderr, "pixels differ\n"); bad = 1; }
    free(x); free(y);
    locus_st_file a, b;
    if (locus_st_open(&a, da) || locus_st_open(&b, db)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    if (a.count != b.count) bad = 1;
    for (size_t i = 0; !bad && i < a.count; i++) {
        const locus_st_tensor *s = &a.tensors[i], *t = &b.tensors[i];
        if (strcmp(s->name, t->name) || s->nbytes != t->nbytes || memcmp(s->data, t->data, s->nbytes)) { fprintf(stderr, "tensor %s differs\n", s->name); bad = 1; }
    }
    const locus_json *ma = locus_json_get(a.header.root, "__metadata__"), *mb = locus_json_get(b.header.root, "__metadata__");
    for (size_t i = 0; !bad && ma && mb && i < ma->len; i++) {
        if (!strcmp(ma->kids[i]->key, "isa")) continue;
        const locus_json *o = locus_json_get(mb, ma->kids[i]->key);
        if (!o || strcmp(o->str, ma->kids[i]->str)) { fprintf(stderr, "metadata %s differs\n", ma->kids[i]->key); bad = 1; }
    }
    locus_st_close(&a); locus_st_close(&b);
    return bad;
}

static int same_pixels(const char *pa, const char *pb) {
    uint8_t *x = NULL, *y = NULL;
    int wa, ha, wb, hb;
    if (locus_png_read_rgb(pa, &x, &wa, &ha) || locus_png_read_rgb(pb, &y, &wb, &hb)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    int same = wa == wb && ha == hb && !memcmp(x, y, (size_t)wa * ha * 3);
    free(x); free(y);
    if (!same) fprintf(stderr, "%s and %s: pixels differ\n", pa, pb);
    return !same;
}

/* --pixels A.png B.png: the number of 8-bit values that differ and the largest difference; exit 0 when no
 * value differs by more than 1 level and at most 1% differ (rounding of the decoded image at x.5 boundaries,
 * where fp32 rounding differences below 1e-6 can tip a value) */
static int pixels(const char *pa, const char *pb) {
    uint8_t *x = NULL, *y = NULL;
    int wa, ha, wb, hb;
    if (locus_png_read_rgb(pa, &x, &wa, &ha) || locus_png_read_rgb(pb, &y, &wb, &hb)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    if (wa != wb || ha != hb) { fprintf(stderr, "sizes differ\n"); free(x); free(y); return 1; }
    size_t n = (size_t)wa * ha * 3, nd = 0;
    int md = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)x[i] - (int)y[i]);
        nd += d != 0;
        if (d > md) md = d;
    }
    printf("pixels %s vs %s: %zu of %zu values differ, max %d\n", pa, pb, nd, n, md);
    free(x); free(y);
    return md <= 1 && nd * 100 <= n ? 0 : 1;
}

/* Euler and PNDM: schedules and identities that follow from diffusers' formulas */
/* FlowMatchEulerDiscreteScheduler with use_dynamic_shifting: sigmas = exp(mu) / (exp(mu) + 1/t - 1) with mu from
 * the image token count (diffusers' calculate_shift).  Expected values: the same float64 formula (np.linspace
 * = arange * step + start, then float32), computed by hand in Python with math.exp and struct rounding. */
static void test_dynamic_shift(void) {
    char dir[] = "/tmp/locus_dynshift_XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    char p[600];
    snprintf(p, sizeof p, "%s/scheduler_config.json", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"_class_name\": \"FlowMatchEulerDiscreteScheduler\", \"num_train_timesteps\": 1000, \"shift\": 3.0,"
          " \"use_dynamic_shifting\": true, \"base_shift\": 0.5, \"max_shift\": 1.15, \"base_image_seq_len\": 256,"
          " \"max_image_seq_len\": 4096}", f);
    fclose(f);
    locus_scheduler s;
    if (locus_scheduler_load(&s, dir)) { CHECK(0, "%s", locus_errmsg()); return; }
    CHECK(locus_scheduler_set_timesteps(&s, 4) != LOCUS_OK, "dynamic shifting without the image size must be refused");
    static const struct { int tokens; float sig[3]; } want[] = {
        {4096, {0x1.ba1c56p-1f, 0x1.39d85ep-1f, 0x1.9d0f28p-9f}}, /* 1024x1024, patch 2: mu = 1.15 */
        {1024, {0x1.9474d6p-1f, 0x1.f09b48p-2f, 0x1.ebc5d6p-10f}}, /* 512x512: mu = 0.63 */
        {4, {0x1.850e44p-1f, 0x1.c4ab70p-2f, 0x1.9de9f8p-10f}},    /* the tiny 32x32 model: mu = 0.45734375 */
    };
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        locus_scheduler_set_image_tokens(&s, want[k].tokens);
        int ok = locus_scheduler_set_timesteps(&s, 4) == LOCUS_OK && s.sigmas[0] == 1.0f && s.sigmas[4] == 0.0f;
        for (int i = 0; i < 3; i++) ok &= s.sigmas[1 + i] == want[k].sig[i];
        ok &= s.timesteps_f[1] == s.sigmas[1] * 1000.0f;
        CHECK(ok, "dynamic shift, %d image tokens: sigmas %a %a %a", want[k].tokens, s.sigmas[1], s.sigmas[2], s.sigmas[3]);
    }
    locus_scheduler_free(&s);
    f = fopen(p, "w");
    fputs("{\"_class_name\": \"FlowMatchEulerDiscreteScheduler\", \"num_train_timesteps\": 1000, \"use_karras_sigmas\": true}", f);
    fclose(f);
    CHECK(locus_scheduler_load(&s, dir) == LOCUS_E_UNSUPPORTED && strstr(locus_errmsg(), "karras"), "unsupported flow option refused");
    remove(p);
    rmdir(dir);
}

static void test_schedulers(const char *G) {
    char p[512];
    locus_scheduler s;
    snprintf(p, sizeof p, "%s/pipelines/sd15-tiny/scheduler", G);
    if (locus_scheduler_load(&s, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    const float *ac = s.alphas_cumprod;
    /* Euler: sigma_i = sqrt((1-ac)/ac) at the leading timesteps, trailing 0, init sigma sqrt(max^2+1) */
    locus_scheduler_override(&s, "euler");
    locus_scheduler_set_timesteps(&s, 4);
    int ok = s.nevals == 4 && s.timesteps_f[0] == 751.0f && s.timesteps_f[3] == 1.0f && s.sigmas[4] == 0.0f;
    for (int i = 0; i < 4; i++) ok &= s.sigmas[i] == sqrtf((1.0f - ac[(int)s.timesteps_f[i]]) / ac[(int)s.timesteps_f[i]]);
    ok &= s.init_noise_sigma == sqrtf(s.sigmas[0] * s.sigmas[0] + 1.0f);
    CHECK(ok, "euler schedule (sigma0 %g, init %g)", s.sigmas[0], s.init_noise_sigma);
    /* with eps = x / sigma the predicted x0 is 0, so one step scales x by sigma_next / sigma */
    float x[3] = {1.0f, -2.0f, 0.5f}, e[3], y[3];
    for (int k = 0; k < 3; k++) e[k] = x[k] / s.sigmas[1];
    locus_scheduler_step(&s, 1, e, x, y, 3);
    double worst = 0;
    for (int k = 0; k < 3; k++) worst = fmax(worst, fabs(y[k] - x[k] * s.sigmas[2] / s.sigmas[1]));
    CHECK(worst < 1e-6, "euler step identity (%.2e)", worst);
    locus_scheduler_scale_input(&s, 0, x, y, 3);
    CHECK(fabsf(y[1] - x[1] / sqrtf(s.sigmas[0] * s.sigmas[0] + 1.0f)) == 0.0f, "euler scale_model_input");
    /* PNDM (PLMS): 4 steps evaluate [751, 501, 501, 251, 1]; with a zero model output every update is
     * x * sqrt(a_prev / a_t), ending at x * sqrt(a_final / a_751) */
    locus_scheduler_override(&s, "pndm");
    locus_scheduler_set_timesteps(&s, 4);
    CHECK(s.nevals == 5 && s.timesteps[0] == 751 && s.timesteps[1] == 501 && s.timesteps[2] == 501 && s.timesteps[3] == 251 && s.timesteps[4] == 1,
          "pndm timesteps %lld %lld %lld %lld %lld", (long long)s.timesteps[0], (long long)s.timesteps[1], (long long)s.timesteps[2],
          (long long)s.timesteps[3], (long long)s.timesteps[4]);
    float z[3] = {0, 0, 0}, lat[3] = {1.0f, -2.0f, 0.5f};
    for (int i = 0; i < s.nevals; i++) locus_scheduler_step(&s, i, z, lat, lat, 3);
    double want = sqrt((double)s.final_alpha_cumprod / ac[751]);
    CHECK(fabs(lat[0] - want) < 1e-5 && fabs(lat[1] + 2 * want) < 1e-5, "pndm zero-output path (%g vs %g)", lat[0], want);
    /* PLMS multistep: a constant model output c gives the same combination (3c-c)/2 = c etc. as a single c */
    locus_scheduler s2;
    locus_scheduler_load(&s2, p);
    locus_scheduler_override(&s2, "pndm");
    locus_scheduler_set_timesteps(&s2, 4);
    float c1[3] = {0.1f, 0.2f, -0.3f}, l2[3] = {1.0f, -2.0f, 0.5f};
    for (int i = 0; i < s2.nevals; i++) locus_scheduler_step(&s2, i, c1, l2, l2, 3);
    CHECK(isfinite(l2[0]) && isfinite(l2[1]) && isfinite(l2[2]), "pndm constant-output path finite");
    CHECK(locus_scheduler_override(&s2, "heun") == LOCUS_E_ARG, "unknown sampler refused");
    locus_scheduler_free(&s2);
    locus_scheduler_free(&s);
}

/* --check-cache CACHE GOLDEN STEPS: the streamed K/V cache of transformer_blocks.1 against the golden cache_b */
static int check_cache(const char *cpath, const char *gpath, int steps) {
    locus_st_file c, g;
    if (locus_st_open(&c, cpath) || locus_st_open(&g, gpath)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    double worst = 0;
    int n = 0;
    for (int s = 0; s < steps; s++)
        for (int k = 0; k < 2; k++) {
            char cn[128], gn[128];
            snprintf(cn, sizeof cn, "step%d.transformer_blocks.1.attn.%s", s, k ? "add_v" : "add_k");
            snprintf(gn, sizeof gn, "cache_b.step%d.%s", s, k ? "add_v_proj" : "add_k_proj");
            int64_t ne;
            float *x = golden_f32(&c, cn, &ne);
            double r = x ? parity_rel(&g, gn, x, ne) : -1;
            free(x);
            if (r < 0 || r > worst) worst = r < 0 ? 1e9 : r;
            n++;
        }
    printf("cached K/V vs %s cache_b: %d tensors, worst %.2e\n", gpath, n, worst);
    locus_st_close(&c);
    locus_st_close(&g);
    return worst <= 1e-4 ? 0 : 1;
}

/* --check-zero-head CACHE HEADS HEAD: every cached [2,T,C] tensor has head HEAD of row 1 (conditional) all zero,
 * and the other heads and row 0 not all zero */
static int check_zero_head(const char *cpath, int heads, int head) {
    locus_st_file c;
    if (locus_st_open(&c, cpath)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    int bad = 0;
    for (size_t i = 0; i < c.count; i++) {
        const locus_st_tensor *t = &c.tensors[i];
        int64_t n = locus_st_numel(t), B = t->shape[0], T = t->shape[1], C = t->shape[2], hd = C / heads;
        float *x = malloc(n * sizeof(float));
        locus_st_to_f32(t, x, n);
        double z = 0, other = 0, row0 = 0;
        for (int64_t tt = 0; tt < T; tt++)
            for (int64_t ch = 0; ch < C; ch++) {
                double a1 = fabs(x[((size_t)(B - 1) * T + tt) * C + ch]), a0 = fabs(x[(size_t)tt * C + ch]);
                if (ch / hd == head) { z += a1; row0 += a0; } else other += a1;
            }
        bad += !(z == 0 && other > 0 && row0 > 0);
        free(x);
    }
    size_t count = c.count;
    printf("zeroed head %d of the conditional half in %zu cached tensors (%d wrong)\n", head, count, bad);
    locus_st_close(&c);
    return bad != 0 || count == 0;
}

/* --check-probs CACHE PREFIX HEADS: PREFIX.probs [B,H,T,S] equals softmax(q.k^T / sqrt(d)) recomputed in
 * double from the cached PREFIX.q [B,T,C] and PREFIX.k [B,S,C] (the keys' hook point name is PREFIX.k, or
 * PREFIX.add_k-joined for joint attention: not handled here) */
static int check_probs(const char *cpath, const char *prefix, int H) {
    locus_st_file c;
    if (locus_st_open(&c, cpath)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    char nq[512], nk[512], np[512];
    snprintf(nq, sizeof nq, "%s.q", prefix);
    snprintf(nk, sizeof nk, "%s.k", prefix);
    snprintf(np, sizeof np, "%s.probs", prefix);
    const locus_st_tensor *tq = locus_st_find(&c, nq), *tk = locus_st_find(&c, nk), *tp = locus_st_find(&c, np);
    if (!tq || !tk || !tp || tp->ndim != 4) { fprintf(stderr, "%s: needs %s, %s and %s\n", cpath, nq, nk, np); locus_st_close(&c); return 1; }
    int64_t B = tq->shape[0], T = tq->shape[1], C = tq->shape[2], S = tk->shape[1], d = C / H;
    if (tp->shape[0] != B || tp->shape[1] != H || tp->shape[2] != T || tp->shape[3] != S) { fprintf(stderr, "probs shape\n"); locus_st_close(&c); return 1; }
    float *q = malloc(B * T * C * 4), *k = malloc(B * S * C * 4), *pr = malloc(B * H * T * S * 4);
    locus_st_to_f32(tq, q, B * T * C);
    locus_st_to_f32(tk, k, B * S * C);
    locus_st_to_f32(tp, pr, B * H * T * S);
    double worst = 0, *e = malloc(S * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                double mx = -1e300, sum = 0;
                for (int64_t j = 0; j < S; j++) {
                    double dot = 0;
                    for (int64_t x = 0; x < d; x++) dot += (double)q[(b * T + t) * C + h * d + x] * k[(b * S + j) * C + h * d + x];
                    e[j] = dot / sqrt((double)d);
                    if (e[j] > mx) mx = e[j];
                }
                for (int64_t j = 0; j < S; j++) sum += (e[j] = exp(e[j] - mx));
                for (int64_t j = 0; j < S; j++) worst = fmax(worst, fabs(e[j] / sum - pr[((b * H + h) * T + t) * S + j]));
            }
    printf("%s: [%lld,%d,%lld,%lld] probabilities vs a double softmax(q.k/sqrt(d)) from the cached q, k: max diff %.2e\n", np, (long long)B, H,
           (long long)T, (long long)S, worst);
    free(q); free(k); free(pr); free(e);
    locus_st_close(&c);
    return !(worst < 1e-5);
}

/* --guidance-free DUMP STEPS: a run without CFG (guidance <= 1, as turbo-style few-step checkpoints use)
 * evaluates only the conditional half: no noise_pred_uncond, and noise_pred == noise_pred_text bit for bit */
static int guidance_free(const char *path, int steps) {
    locus_st_file f;
    if (locus_st_open(&f, path)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    int bad = 0;
    for (int i = 0; i < steps; i++) {
        char a[64], b[64], u[64];
        snprintf(a, sizeof a, "step%d.noise_pred", i);
        snprintf(b, sizeof b, "step%d.noise_pred_text", i);
        snprintf(u, sizeof u, "step%d.noise_pred_uncond", i);
        const locus_st_tensor *ta = locus_st_find(&f, a), *tb = locus_st_find(&f, b);
        bad += !ta || !tb || locus_st_find(&f, u) || ta->nbytes != tb->nbytes || memcmp(ta->data, tb->data, ta->nbytes);
    }
    printf("guidance-free run: %d steps, %d with an unconditional pass or guided != conditional\n", steps, bad);
    locus_st_close(&f);
    return bad != 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--guidance-free")) return guidance_free(argv[2], atoi(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "--check-probs")) return check_probs(argv[2], argv[3], atoi(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "--check-zero-head")) return check_zero_head(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "--check-cache")) return check_cache(argv[2], argv[3], atoi(argv[4]));
    if (argc == 4 && !strcmp(argv[1], "--same-pixels")) return same_pixels(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "--pixels")) return pixels(argv[2], argv[3]);
    if (argc == 6 && !strcmp(argv[1], "--same-output")) return same_output(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 7 && !strcmp(argv[1], "--write-inputs")) return write_inputs(argv[2], argv[3], argv[4], argv[5], argv[6]);
    if (argc == 9 && !strcmp(argv[1], "--write-inputs")) return write_inputs_ex(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8]);
    if (argc == 6 && !strcmp(argv[1], "--check-dump")) return check_dump(argv[2], argv[3], argv[4], atoi(argv[5]));
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    test_schedulers(G);
    test_dynamic_shift();
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
    parity_steps sc = {&g, "base", 0, "", 0};
    locus_step_cb cb = {parity_step_cb, &sc};
    float *lat = malloc(nn * sizeof(float));
    memcpy(lat, noise, nn * sizeof(float));
    locus_denoiser d; /* a view of u (not closed: u lives on this stack frame) */
    locus_unet_denoiser(&d, &u);
    locus_cond cu = {eu, NULL}, ca = {ea, NULL};
    CHECK(locus_sample(&d, &s, 4, 3.0f, lat, 8, 8, &cu, &ca, 77, &cb, NULL) == LOCUS_OK, "sample: %s", locus_errmsg());
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
    /* the paper's injection at mid_block.attentions.0.transformer_blocks.0.attn2: cond half gets prompt B */
    int64_t nb;
    float *eb = golden_f32(&g, "embeds.b", &nb), *pctx = NULL;
    locus_textpatch inj;
    CHECK(locus_textpatch_init(&inj, &d, 8) == LOCUS_OK, "textpatch init");
    int nsel = 0;
    CHECK(locus_denoiser_select_text_layers(&d, "mid_block.attentions.0", "--patch-layers", inj.active) == LOCUS_OK, "resolve a block path");
    for (int i = 0; i < inj.nlayers; i++) nsel += inj.active[i];
    CHECK(nsel == 1, "a block path selects its attn2 (%d selected)", nsel);
    CHECK(locus_denoiser_select_text_layers(&d, "mid_block.attentions.9", "--patch-layers", inj.active) == LOCUS_E_ARG, "unknown layer refused: %s",
          locus_errmsg());
    locus_denoiser_select_text_layers(&d, "mid_block.attentions.0.transformer_blocks.0.attn2", "--patch-layers", inj.active);
    inj.ctx_b = eb;
    inj.mode = LOCUS_TP_PATCH;
    locus_hooks ph;
    locus_hooks_init(&ph);
    locus_hooks_add(&ph, locus_textpatch_hook(&inj));
    parity_steps pc = {&g, "patched", 0, "", 0};
    locus_step_cb pcb = {parity_step_cb, &pc};
    memcpy(lat, noise, nn * sizeof(float));
    CHECK(locus_sample(&d, &s, 4, 3.0f, lat, 8, 8, &cu, &ca, 77, &pcb, &ph) == LOCUS_OK, "patched sample");
    CHECK(inj.hits == 4, "the patched layer was patched at every step (%d)", inj.hits);
    locus_textpatch_free(&inj);
    double prf = parity_rel(&g, "patched.final_latent", lat, nn);
    for (int64_t i = 0; i < nn; i++) z[i] = inv * lat[i];
    locus_vae_decode(&v, z, 1, 8, 8, img, NULL);
    double pri = parity_rel(&g, "patched.image", img, 3 * 16 * 16);
    printf("ldm injection patching: %d step tensors, worst %.2e (%s); final_latent %.2e; image %.2e\n", pc.n, pc.worst, pc.wname, prf, pri);
    CHECK(pc.n == 16 && pc.worst <= 1e-4 && prf >= 0 && prf <= 1e-4 && pri >= 0 && pri <= 1e-4, "patched run within 1e-4");
    /* the patch must change something: the patched image differs from the base image */
    CHECK(parity_rel(&g, "base.image", img, 3 * 16 * 16) > 1e-3, "patching changes the image");
    free(eb); free(pctx);
    free(noise); free(ea); free(eu); free(lat); free(z); free(img);
    locus_st_close(&g);
    locus_scheduler_free(&s);
    locus_vae_free(&v);
    locus_unet_free(&u);
    return t_finish("test_sample");
}
