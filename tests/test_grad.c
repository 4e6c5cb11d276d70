/* test_grad.c — locus' hand-written backward against torch autograd (tests/golden/train, made by diffusers
 * v0.31 / torch): the `locus grad` evaluations of the tiny LDM UNet (denoising MSE) and VAE (reconstruction
 * + KL) give every grad.* parameter gradient, grad_input.*, loss and pred within 1e-4 (max|diff| /
 * max|golden| per tensor), exactly zero where the golden is exactly zero; the same bits for every ISA x
 * 1/2/3 threads, with and without checkpointing, and with packed or plain Linear weights; the prediction
 * equals the inference forward's bits; LoRA adapter gradients against autograd's.  Configurations the goldens
 * lack are checked by finite differences in test_grad_fd.c.
 * `--check-dump` / `--same-tensors` serve tests/run_tests.sh's `locus grad` checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../experiments/grad.h"
#include "../models/adamw.h"
#include "../models/lora.h"
#include "../models/nn_bwd.h"
#include "../models/unet_bwd.h"
#include "../models/vae_bwd.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"

static const char *G;

/* floor: a golden tensor whose max|golden| is at most `floor` is rounding noise of a gradient that is zero
 * in exact arithmetic (an attention key bias: softmax ignores a per-row constant); it is checked in
 * absolute terms, max|diff| <= floor, and counted as `noise`. */
typedef struct { double worst, floor; char wname[160]; int compared, zero_bad, noise; } cmp_ctx;

/* compare one tensor with golden `gname`: rel = max|d| / max|golden|; elements that are exactly 0 in the
 * golden must be exactly 0 here */
static void cmp(cmp_ctx *c, const locus_st_file *g, const char *gname, const float *x, size_t n) {
    int64_t gn = 0;
    float *ref = golden_f32(g, gname, &gn);
    if (!ref || (size_t)gn != n) { CHECK(0, "%s: golden missing or %lld elements (locus %zu)", gname, (long long)gn, n); free(ref); return; }
    double maxref = 0, maxd = 0;
    int zb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - ref[i]);
        if (d > maxd) maxd = d;
        if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
        if (ref[i] == 0.0f && x[i] != 0.0f) zb++;
    }
    double rel = maxref > 0 ? maxd / maxref : maxd;
    if (maxref <= c->floor) { /* rounding noise of an exact zero */
        c->noise++;
        printf("  %s: golden is %s (max %.2e); locus max|diff| %.2e (floor %.2e)\n", gname, maxref > 0 ? "rounding noise" : "exactly zero",
               maxref, maxd, c->floor);
        CHECK(maxd <= c->floor, "%s: within the noise floor %.2e (max|diff| %.2e)", gname, c->floor, maxd);
        rel = 0;
    }
    if (getenv("LOCUS_VERBOSE")) printf("  %-80s rel %.2e (max|g| %.2e)\n", gname, rel, maxref);
    if (rel > c->worst || !c->compared) { c->worst = rel; snprintf(c->wname, sizeof c->wname, "%s", gname); }
    c->compared++;
    if (zb) { c->zero_bad++; CHECK(0, "%s: %d elements nonzero where the golden is exactly 0", gname, zb); }
    free(ref);
}

/* hash of every gradient and output, in table order */
static uint64_t hash_all(const locus_grads *g, const locus_grad_out *o) {
    uint64_t h = LOCUS_FNV_INIT;
    for (size_t i = 0; i < g->n; i++) h = locus_fnv1a(h, g->e[i].grad, g->e[i].numel * sizeof(float));
    for (int i = 0; i < o->n; i++) {
        size_t n = 1;
        for (int d = 0; d < o->t[i].ndim; d++) n *= (size_t)o->t[i].shape[d];
        h = locus_fnv1a(h, o->t[i].data, n * sizeof(float));
    }
    return h;
}

/* compare all grad.* of golden with the table, and the named outputs */
static void compare_golden(const char *what, const locus_st_file *g, const locus_grads *gr, const locus_grad_out *o,
                           const char *const *outs, const char *const *gouts, int nouts) {
    cmp_ctx c = {0};
    int ngrad = 0;
    double gmax = 0; /* largest golden gradient element: the noise floor is 1e-6 of it */
    for (size_t i = 0; i < g->count; i++) {
        if (strncmp(g->tensors[i].name, "grad.", 5)) continue;
        int64_t n;
        float *r = golden_f32(g, g->tensors[i].name, &n);
        for (int64_t k = 0; r && k < n; k++) if (fabs(r[k]) > gmax) gmax = fabs(r[k]);
        free(r);
    }
    c.floor = 1e-6 * gmax;
    for (size_t i = 0; i < g->count; i++) {
        const char *nm = g->tensors[i].name;
        if (strncmp(nm, "grad.", 5)) continue;
        ngrad++;
        const locus_grad_entry *e = locus_grads_find(gr, nm + 5);
        if (!e) { CHECK(0, "%s: no gradient for %s", what, nm); continue; }
        cmp(&c, g, nm, e->grad, e->numel);
    }
    CHECK(ngrad > 0 && (size_t)ngrad == gr->n, "%s: %d golden grad.* tensors, %zu tracked parameters", what, ngrad, gr->n);
    for (int i = 0; i < nouts; i++) {
        const locus_grad_tensor *t = locus_grad_out_find(o, outs[i]);
        if (!t) { CHECK(0, "%s: output %s missing", what, outs[i]); continue; }
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
        cmp(&c, g, gouts[i], t->data, n);
    }
    printf("%s: %d tensors compared (%d of them zero up to rounding noise), worst %.2e (%s)\n", what, c.compared, c.noise, c.worst, c.wname);
    CHECK(c.worst <= 1e-4, "%s: every tensor within 1e-4 relative (worst %.2e at %s)", what, c.worst, c.wname);
}

/* same bits for every ISA x threads 1..3 and checkpoint on/off; run(ctx, checkpoint, grads, out) */
typedef locus_status (*eval_fn)(void *ctx, int checkpoint, const locus_grads *g, locus_grad_out *o);
static void check_determinism(const char *what, eval_fn run, void *ctx, locus_grads *gr, uint64_t h0) {
    int runs = 0, bad = 0;
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++)
            for (int ck = 0; ck <= 1; ck++) {
                locus_set_threads(th);
                locus_grads_zero(gr);
                locus_grad_out o;
                if (run(ctx, ck, gr, &o)) { CHECK(0, "%s: %s", what, locus_errmsg()); return; }
                uint64_t h = hash_all(gr, &o);
                runs++;
                if (h != h0) { bad++; CHECK(0, "%s: gradient bits differ (%s, %d threads, checkpoint %d)", what, locus_isa_name(), th, ck); }
                locus_grad_out_free(&o);
            }
    }
    locus_kernels_force(locus_kernels_for(LOCUS_ISA_AVX512) ? LOCUS_ISA_AVX512 : locus_kernels_for(LOCUS_ISA_AVX2) ? LOCUS_ISA_AVX2 : LOCUS_ISA_SCALAR);
    locus_set_threads(2);
    printf("%s: %d runs (ISAs x threads x checkpoint), %d with different bits\n", what, runs, bad);
    CHECK(runs >= 3 && !bad, "%s: gradients bit-identical across ISAs, threads and checkpointing", what);
}

/* the UNet through the family-free path: a denoiser view of u and the scheduler's objective */
static locus_status grad_unet(locus_unet *u, const locus_scheduler *s, const locus_st_file *batch, int ck, const locus_grads *g,
                              locus_grad_out *o) {
    locus_denoiser d;
    locus_objective ob;
    locus_unet_denoiser(&d, u); /* a view: not closed (u belongs to the caller) */
    locus_status st = locus_objective_init(&ob, &d, s);
    return st ? st : locus_grad_denoiser(&d, &ob, batch, ck, g, o);
}

typedef struct { locus_unet *u; locus_scheduler *s; const locus_st_file *g; } unet_ctx;
static locus_status run_unet(void *c, int ck, const locus_grads *g, locus_grad_out *o) {
    unet_ctx *x = c;
    return grad_unet(x->u, x->s, x->g, ck, g, o);
}
typedef struct { locus_vae *v; const locus_st_file *g; } vae_ctx;
static locus_status run_vae(void *c, int ck, const locus_grads *g, locus_grad_out *o) {
    vae_ctx *x = c;
    return locus_grad_vae(x->v, x->g, ck, g, o);
}

static void test_unet(void) {
    char p[512];
    locus_st_file g;
    snprintf(p, sizeof p, "%s/train/golden_train_unet.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    uint64_t hpacked = 0;
    for (int plain = 0; plain <= 1; plain++) { /* packed Linear weights (inference layout) and plain ones (training) */
        locus_loader_set_plain_weights(plain);
        locus_unet u;
        locus_scheduler s;
        snprintf(p, sizeof p, "%s/ldm/unet", G);
        if (locus_unet_load(&u, p)) { CHECK(0, "load %s: %s", p, locus_errmsg()); break; }
        snprintf(p, sizeof p, "%s/ldm/scheduler", G);
        if (locus_scheduler_load(&s, p)) { CHECK(0, "%s", locus_errmsg()); locus_unet_free(&u); break; }
        locus_grads gr;
        locus_grads_init(&gr);
        int nt = locus_grads_track_loader(&gr, &u.L, NULL);
        locus_grad_out o;
        if (grad_unet(&u, &s, &g, 0, &gr, &o)) { CHECK(0, "grad unet: %s", locus_errmsg()); }
        else {
            uint64_t h = hash_all(&gr, &o);
            if (!plain) {
                hpacked = h;
                const char *outs[] = {"loss", "pred", "noisy", "target", "grad_input.sample", "grad_input.encoder_hidden_states"};
                const char *gouts[] = {"batch0.loss", "batch0.pred", "batch0.noisy", "batch0.target", "grad_input.sample",
                                       "grad_input.encoder_hidden_states"};
                printf("unet: %d parameters tracked, loss %.9g\n", nt, o.loss);
                compare_golden("unet", &g, &gr, &o, outs, gouts, 6);
                /* the training forward's prediction is the inference forward's, bit for bit */
                const locus_grad_tensor *pr = locus_grad_out_find(&o, "pred"), *nz = locus_grad_out_find(&o, "noisy");
                int64_t nctx;
                float *ctx = golden_f32(&g, "batch0.encoder_hidden_states", &nctx);
                const locus_st_tensor *tt = locus_st_find(&g, "batch0.timesteps");
                int64_t ti[8], nts = locus_st_numel(tt);
                float *ts = malloc(8 * sizeof(float));
                locus_st_to_i64(tt, ti, nts);
                for (int i = 0; i < nts; i++) ts[i] = (float)ti[i];
                size_t n = (size_t)pr->shape[0] * pr->shape[1] * pr->shape[2] * pr->shape[3];
                float *y = malloc(n * sizeof(float));
                locus_unet_forward(&u, nz->data, (int)pr->shape[0], (int)pr->shape[2], (int)pr->shape[3], ts, ctx,
                                   (int)locus_st_find(&g, "batch0.encoder_hidden_states")->shape[1], y, NULL);
                CHECK(t_bitdiff(y, pr->data, n) == 0, "unet: training forward pred == locus_unet_forward bits");
                free(y); free(ts); free(ctx);
            } else {
                CHECK(h == hpacked, "unet: packed and plain Linear weights give the same gradient bits");
                unet_ctx c = {&u, &s, &g};
                check_determinism("unet", run_unet, &c, &gr, h);
            }
            locus_grad_out_free(&o);
        }
        locus_grads_free(&gr);
        locus_scheduler_free(&s);
        locus_unet_free(&u);
    }
    locus_loader_set_plain_weights(0);
    locus_st_close(&g);
}

static void test_vae(void) {
    char p[512];
    locus_st_file g;
    snprintf(p, sizeof p, "%s/train/golden_train_vae.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_loader_set_plain_weights(1);
    locus_vae v;
    snprintf(p, sizeof p, "%s/ldm/vae", G);
    if (locus_vae_load(&v, p)) { CHECK(0, "load %s: %s", p, locus_errmsg()); locus_st_close(&g); return; }
    locus_grads gr;
    locus_grads_init(&gr);
    int nt = locus_grads_track_loader(&gr, &v.L, NULL);
    locus_grad_out o;
    if (locus_grad_vae(&v, &g, 0, &gr, &o)) CHECK(0, "grad vae: %s", locus_errmsg());
    else {
        printf("vae: %d parameters tracked, loss %.9g\n", nt, o.loss);
        const char *outs[] = {"loss", "pred", "mean", "logvar", "z", "kl"};
        const char *gouts[] = {"batch0.loss", "batch0.rec", "batch0.mean", "batch0.logvar", "batch0.z", "batch0.kl"};
        compare_golden("vae", &g, &gr, &o, outs, gouts, 6);
        /* the training forwards give the inference bits: encode(x) -> mean, logvar; decode(z) -> pred */
        const locus_grad_tensor *pr = locus_grad_out_find(&o, "pred"), *me = locus_grad_out_find(&o, "mean"),
                                *lv = locus_grad_out_find(&o, "logvar"), *zz = locus_grad_out_find(&o, "z");
        int64_t nx;
        float *x = golden_f32(&g, "batch0.x", &nx);
        size_t nl = (size_t)me->shape[0] * me->shape[1] * me->shape[2] * me->shape[3];
        float *m2 = malloc(nl * 4), *l2 = malloc(nl * 4), *r2 = malloc((size_t)nx * 4);
        locus_vae_encode(&v, x, (int)pr->shape[0], (int)pr->shape[2], (int)pr->shape[3], m2, l2, NULL);
        locus_vae_decode(&v, zz->data, (int)zz->shape[0], (int)zz->shape[2], (int)zz->shape[3], r2, NULL);
        CHECK(!t_bitdiff(m2, me->data, nl) && !t_bitdiff(l2, lv->data, nl) && !t_bitdiff(r2, pr->data, (size_t)nx),
              "vae: training forwards == locus_vae_encode / locus_vae_decode bits");
        free(x); free(m2); free(l2); free(r2);
        uint64_t h = hash_all(&gr, &o);
        vae_ctx c = {&v, &g};
        check_determinism("vae", run_vae, &c, &gr, h);
        locus_grad_out_free(&o);
    }
    locus_grads_free(&gr);
    locus_vae_free(&v);
    locus_loader_set_plain_weights(0);
    locus_st_close(&g);
}

/* LoRA adapters on the UNet's attn2 projections (the golden's lora_init.*, rank 4, alpha 4): nn_linear_bwd's
 * adapter gradients against autograd's lora_grad.* (base weights frozen: only the factors are tracked),
 * and the loss against lora_loss[0]. */
static void test_unet_lora(void) {
    char p[512];
    locus_st_file g;
    snprintf(p, sizeof p, "%s/train/golden_train_unet.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_loader_set_plain_weights(0); /* adapters on packed base weights */
    locus_unet u;
    locus_scheduler s;
    snprintf(p, sizeof p, "%s/ldm/unet", G);
    if (locus_unet_load(&u, p)) { CHECK(0, "%s", locus_errmsg()); locus_st_close(&g); return; }
    snprintf(p, sizeof p, "%s/ldm/scheduler", G);
    if (locus_scheduler_load(&s, p)) { CHECK(0, "%s", locus_errmsg()); locus_unet_free(&u); locus_st_close(&g); return; }
    nn_lora ad[64];
    float *bufs[128];
    int na = 0, nb = 0;
    locus_grads gr;
    locus_grads_init(&gr);
    const char *pre = "lora_init.unet.", *suf = ".lora.down.weight";
    for (size_t i = 0; i < g.count && na < 64; i++) {
        const char *nm = g.tensors[i].name;
        size_t ln = strlen(nm);
        if (strncmp(nm, pre, strlen(pre)) || ln < strlen(suf) || strcmp(nm + ln - strlen(suf), suf)) continue;
        char mod[256], upn[300], dn[300];
        snprintf(mod, sizeof mod, "%.*s", (int)(ln - strlen(pre) - strlen(suf)), nm + strlen(pre));
        snprintf(upn, sizeof upn, "%s%s.lora.up.weight", pre, mod);
        nn_linear *l = NULL;
        for (size_t k = 0; k < u.L.nmods; k++)
            if (!strcmp(u.L.mods[k].name, mod) && u.L.mods[k].kind == LOCUS_MOD_LINEAR) l = u.L.mods[k].ptr;
        int64_t n1, n2;
        float *down = golden_f32(&g, nm, &n1), *up = golden_f32(&g, upn, &n2);
        const locus_st_tensor *td = locus_st_find(&g, nm), *tu = locus_st_find(&g, upn);
        if (!l || !down || !up) { CHECK(0, "lora: module %s or its factors missing", mod); free(down); free(up); continue; }
        nn_lora *a = &ad[na++];
        a->down = down; a->up = up; a->r = (int)td->shape[0]; a->scale = 4.0f / (float)a->r; a->next = NULL;
        bufs[nb++] = down; bufs[nb++] = up;
        l->lora = a;
        snprintf(dn, sizeof dn, "lora_grad.unet.%s.lora.down.weight", mod);
        locus_grads_track(&gr, dn, down, 2, td->shape);
        snprintf(dn, sizeof dn, "lora_grad.unet.%s.lora.up.weight", mod);
        locus_grads_track(&gr, dn, up, 2, tu->shape);
    }
    CHECK(na == 8, "lora: 8 adapters attached (%d)", na);
    locus_grad_out o;
    if (grad_unet(&u, &s, &g, 0, &gr, &o)) CHECK(0, "grad unet lora: %s", locus_errmsg());
    else {
        cmp_ctx c = {0};
        for (size_t i = 0; i < gr.n; i++) cmp(&c, &g, gr.e[i].name, gr.e[i].grad, gr.e[i].numel);
        int64_t nl;
        float *ll = golden_f32(&g, "lora_loss", &nl);
        double lrel = ll ? fabs(o.loss - ll[0]) / fabs(ll[0]) : 1;
        printf("unet lora: %d adapter gradients, worst %.2e (%s); loss %.9g vs %.9g\n", c.compared, c.worst, c.wname, o.loss, ll ? ll[0] : 0.0);
        CHECK(c.compared == 16 && c.worst <= 1e-4, "lora gradients within 1e-4 (worst %.2e at %s)", c.worst, c.wname);
        CHECK(lrel <= 1e-5, "lora loss %.9g vs golden lora_loss[0]", o.loss);
        free(ll);
        locus_grad_out_free(&o);
    }
    for (size_t k = 0; k < u.L.nmods; k++) if (u.L.mods[k].kind == LOCUS_MOD_LINEAR) ((nn_linear *)u.L.mods[k].ptr)->lora = NULL;
    for (int i = 0; i < nb; i++) free(bufs[i]);
    locus_grads_free(&gr);
    locus_scheduler_free(&s);
    locus_unet_free(&u);
    locus_st_close(&g);
}


/* the gradient table's name patterns and pointer lookups */
static void test_grads_table(void) {
    float a[6], b[3], c[2];
    locus_grads g;
    locus_grads_init(&g);
    int64_t s1[2] = {2, 3}, s2[1] = {3}, s3[1] = {2};
    CHECK(locus_grads_track(&g, "down_blocks.0.attn2.to_k.weight", a, 2, s1) == LOCUS_OK, "track a");
    CHECK(locus_grads_track(&g, "b", b, 1, s2) == LOCUS_OK, "track b");
    CHECK(locus_grads_of(&g, a) && locus_grads_of(&g, b) && !locus_grads_of(&g, c) && !locus_grads_of(NULL, a), "lookups");
    CHECK(locus_grads_find(&g, "b") && locus_grads_find(&g, "b")->numel == 3 && !locus_grads_find(&g, "c"), "find by name");
    locus_grads_track(&g, "c", c, 1, s3);
    float *gc = locus_grads_of(&g, c);
    CHECK(gc && gc[0] == 0 && gc[1] == 0, "gradients start at zero");
    locus_grads_free(&g);
    /* patterns through a fake loader registry */
    locus_loader L;
    memset(&L, 0, sizeof L);
    locus_param_rec recs[4] = {{"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", a, 2, 0, {2, 3}, 6},
                               {"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v.weight", b, 1, 0, {3}, 3},
                               {"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight", c, 1, 0, {2}, 2},
                               {"conv_in.weight", a + 1, 1, 0, {2}, 2}};
    L.params = recs;
    L.nrec = 4;
    struct { const char *pat; int n; } cases[] = {{NULL, 4}, {"*attn2.to_{k,v}.weight", 2}, {"*attn?.to_k.weight", 2},
                                                   {"conv_in.*,*attn1*", 2}, {"*.to_{q,{k,x}}.weight", 2}, {"attn2*", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        locus_grads_init(&g);
        int n = locus_grads_track_loader(&g, &L, cases[i].pat);
        CHECK(n == cases[i].n, "pattern '%s': %d tracked, expected %d", cases[i].pat ? cases[i].pat : "(all)", n, cases[i].n);
        locus_grads_free(&g);
    }
}

/* --check-dump DUMP GOLDEN: a `locus grad` dump against a training golden (every grad.*, grad_input.*,
 * loss and pred); --same-tensors A B: two dumps hold the same tensors with the same bits (metadata aside). */
static int check_dump(const char *dump, const char *golden) {
    locus_st_file d, g;
    if (locus_st_open(&d, dump) || locus_st_open(&g, golden)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    cmp_ctx c = {0};
    double gmax = 0;
    for (size_t i = 0; i < g.count; i++) {
        if (strncmp(g.tensors[i].name, "grad.", 5)) continue;
        int64_t n;
        float *r = golden_f32(&g, g.tensors[i].name, &n);
        for (int64_t k = 0; r && k < n; k++) if (fabs(r[k]) > gmax) gmax = fabs(r[k]);
        free(r);
    }
    c.floor = 1e-6 * gmax;
    int missing = 0, lora = 0; /* a --lora dump holds grad.unet.* / grad.transformer.* (the golden's lora_grad.*) */
    for (size_t i = 0; i < d.count; i++)
        lora |= !strncmp(d.tensors[i].name, "grad.unet.", 10) || !strncmp(d.tensors[i].name, "grad.transformer.", 17);
    if (lora) { /* the loss against lora_loss[0] (the adapters change the prediction) */
        int64_t n1, n2;
        float *l = golden_f32(&d, "loss", &n1), *gl = golden_f32(&g, "lora_loss", &n2);
        CHECK(l && gl && fabs(l[0] - gl[0]) <= 1e-5 * fabs(gl[0]), "lora loss %.9g vs lora_loss[0] %.9g", l ? l[0] : 0, gl ? gl[0] : 0);
        free(l); free(gl);
    }
    for (size_t i = 0; i < g.count; i++) {
        const char *nm = g.tensors[i].name, *dn = nm;
        if (lora) {
            if (strncmp(nm, "lora_grad.", 10)) continue;
            dn = nm + 5; /* "grad.<prefix>.<module>..." */
        } else if (!strcmp(nm, "batch0.loss")) dn = "loss";
        else if (!strcmp(nm, "batch0.pred") || !strcmp(nm, "batch0.rec")) dn = "pred";
        else if (strncmp(nm, "grad.", 5) && strncmp(nm, "grad_input.", 11)) continue;
        int64_t n;
        float *x = golden_f32(&d, dn, &n);
        if (!x) { missing++; CHECK(0, "%s: no tensor %s", dump, dn); continue; }
        cmp(&c, &g, nm, x, (size_t)n);
        free(x);
    }
    printf("%s: %d tensors compared with %s, worst %.2e (%s)\n", dump, c.compared, golden, c.worst, c.wname);
    CHECK(c.compared > 0 && !missing && c.worst <= 1e-4, "dump within 1e-4 of the golden (worst %.2e at %s)", c.worst, c.wname);
    locus_st_close(&d);
    locus_st_close(&g);
    return t_failed != 0;
}

static int same_tensors(const char *a, const char *b) {
    locus_st_file x, y;
    if (locus_st_open(&x, a) || locus_st_open(&y, b)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    int bad = x.count != y.count;
    for (size_t i = 0; !bad && i < x.count; i++) {
        const locus_st_tensor *t = &x.tensors[i], *u = locus_st_find(&y, t->name);
        bad = !u || u->nbytes != t->nbytes || memcmp(u->data, t->data, t->nbytes);
        if (bad) fprintf(stderr, "%s differs\n", t->name);
    }
    if (!bad) printf("%zu tensors bit-identical\n", x.count);
    locus_st_close(&x);
    locus_st_close(&y);
    return bad;
}

/* one loss + backward on batch `pre` ("batch1.") of a golden file: x0 [B,C,H,W], noise, timesteps, encoder_hidden_states */
static locus_status grad_unet_prefixed(const locus_denoiser *d, const locus_objective *ob, const locus_st_file *g, const char *pre,
                                       const locus_grads *gr, locus_grad_out *o) {
    char k[4][64];
    const char *nm[4] = {"x0", "noise", "timesteps", "encoder_hidden_states"};
    float *t[4];
    int64_t n[4];
    for (int i = 0; i < 4; i++) { snprintf(k[i], sizeof k[i], "%s%s", pre, nm[i]); t[i] = i == 2 ? NULL : golden_f32(g, k[i], &n[i]); }
    const locus_st_tensor *ti = locus_st_find(g, k[2]); /* int64 timesteps */
    int64_t tv[64];
    if (ti && locus_st_numel(ti) <= 64 && !locus_st_to_i64(ti, tv, locus_st_numel(ti))) {
        t[2] = malloc((size_t)locus_st_numel(ti) * sizeof(float));
        for (int64_t i = 0; t[2] && i < locus_st_numel(ti); i++) t[2][i] = (float)tv[i];
    }
    const locus_st_tensor *x = locus_st_find(g, k[0]), *c = locus_st_find(g, k[3]);
    memset(o, 0, sizeof *o);
    locus_status st = !t[0] || !t[1] || !t[2] || !t[3] || !x || !c ? locus_fail(LOCUS_E_NOTFOUND, "%s: batch %s missing", g->path, pre) : LOCUS_OK;
    if (!st) st = locus_denoiser_loss_grad(d, ob, t[0], t[1], t[2], (int)x->shape[0], (int)x->shape[2], (int)x->shape[3], t[3], (int)c->shape[1],
                                           NULL, 0, gr, &o->loss, NULL, NULL, NULL, NULL, NULL, NULL);
    for (int i = 0; i < 4; i++) free(t[i]);
    return st;
}

/* --hash: the hash of every UNet and VAE parameter gradient and output of the golden batches (for comparing
 * builds: clang, the aarch64/NEON build under qemu) */
static int print_hash(void) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    char p[512];
    locus_st_file g, gv;
    locus_unet u;
    locus_vae v;
    locus_scheduler s;
    snprintf(p, sizeof p, "%s/train/golden_train_unet.safetensors", G);
    if (locus_st_open(&g, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    snprintf(p, sizeof p, "%s/train/golden_train_vae.safetensors", G);
    if (locus_st_open(&gv, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    snprintf(p, sizeof p, "%s/ldm/unet", G);
    if (locus_unet_load(&u, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    snprintf(p, sizeof p, "%s/ldm/scheduler", G);
    if (locus_scheduler_load(&s, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    snprintf(p, sizeof p, "%s/ldm/vae", G);
    if (locus_vae_load(&v, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    locus_grads gr, gw;
    locus_grads_init(&gr);
    locus_grads_init(&gw);
    locus_grads_track_loader(&gr, &u.L, NULL);
    locus_grads_track_loader(&gw, &v.L, NULL);
    locus_grad_out o, ov;
    if (grad_unet(&u, &s, &g, 0, &gr, &o) || locus_grad_vae(&v, &gv, 0, &gw, &ov)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
    printf("grad_unet %016llx\ngrad_vae %016llx\n", (unsigned long long)hash_all(&gr, &o), (unsigned long long)hash_all(&gw, &ov));
    /* LoRA training: the golden's adapters (lora_init_unet), three AdamW steps (lr 1e-3, wd 1e-2, clipping at
     * 1.0) on the golden's three batches — the trained factors' hash (for the NEON and clang comparisons) */
    {
        locus_lora lo;
        locus_grads gl;
        locus_adamw opt;
        locus_adamw_cfg cfg = {1e-3, 0.9, 0.999, 1e-8, 1e-2, 0};
        locus_grads_init(&gl);
        locus_adamw_init(&opt, &cfg);
        snprintf(p, sizeof p, "%s/train/lora_init_unet.safetensors", G);
        if (locus_lora_read(&lo, &u.L, p, 1.0f)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
        for (int i = 0; i < lo.n; i++) {
            int64_t sd[2] = {lo.e[i].ad.r, lo.e[i].in}, su[2] = {lo.e[i].out, lo.e[i].ad.r};
            char nm[64];
            snprintf(nm, sizeof nm, "d%d", i);
            locus_grads_track(&gl, nm, lo.e[i].ad.down, 2, sd);
            snprintf(nm, sizeof nm, "u%d", i);
            locus_grads_track(&gl, nm, lo.e[i].ad.up, 2, su);
        }
        for (size_t i = 0; i < gl.n; i++) locus_adamw_add(&opt, gl.e[i].name, (float *)gl.e[i].param, gl.e[i].grad, gl.e[i].numel);
        locus_denoiser d;
        locus_objective ob;
        locus_unet_denoiser(&d, &u);
        locus_objective_init(&ob, &d, &s);
        for (int k = 0; k < 3; k++) {
            char pre[32];
            snprintf(pre, sizeof pre, "batch%d.", k);
            locus_grads_zero(&gl);
            locus_grad_out og;
            if (grad_unet_prefixed(&d, &ob, &g, pre, &gl, &og)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
            locus_grad_out_free(&og);
            locus_adamw_clip(&opt, 1.0);
            locus_adamw_step(&opt);
        }
        uint64_t h = LOCUS_FNV_INIT;
        for (size_t i = 0; i < gl.n; i++) h = locus_fnv1a(h, gl.e[i].param, gl.e[i].numel * sizeof(float));
        printf("lora_unet_3steps %016llx\n", (unsigned long long)h);
        locus_adamw_free(&opt);
        locus_grads_free(&gl);
        locus_lora_free(&lo);
    }
    locus_grad_out_free(&o); locus_grad_out_free(&ov);
    locus_grads_free(&gr); locus_grads_free(&gw);
    locus_unet_free(&u); locus_vae_free(&v); locus_scheduler_free(&s);
    locus_st_close(&g); locus_st_close(&gv);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--hash")) return print_hash();
    if (argc == 4 && !strcmp(argv[1], "--check-dump")) return check_dump(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "--same-tensors")) return same_tensors(argv[2], argv[3]);
    G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    test_grads_table();
    test_unet();
    test_unet_lora();
    test_vae();
    return t_finish("test_grad");
}
