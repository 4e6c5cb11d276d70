/* test_grad_mmdit.c — SD3/SD3.5 transformer backward against torch autograd (tests/golden/train/
 * golden_train_{sd3,sd35}: one flow-matching loss on batch 0, made by diffusers v0.31 + torch).
 *
 * Checks: flow-matching inputs (noisy, target) and loss; the prediction; EVERY grad.* parameter gradient and
 * grad_input.sample / grad_input.encoder_hidden_states within 1e-4 (max |diff| / max |golden| per tensor),
 * exactly zero where the golden tensor is exactly zero (the last block's text queries); the training forward
 * bit-identical to locus_mmdit_forward; gradients (all of them hashed, with the input gradients) the same
 * bits for every ISA table x 1/2/3 threads, with and without checkpointing (also on a larger synthetic
 * SD3.5 batch), and with packed Linear weights; the LoRA case of the sd3 golden
 * (rank-4 adapters on transformer_blocks.0.attn, lora_grad.* and the loss with adapters); d pooled against a
 * central difference of the loss; bad shapes refused with LOCUS_E_ARG.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../models/grads.h"
#include "../models/mmdit_bwd.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"

#define TOL 1e-4

typedef struct {
    int B, C, H, W, S, P;
    float *x0, *noise, *sig, *ctx, *pooled; /* batch 0 inputs */
    int64_t n;                              /* B*C*H*W */
} batch;

static int load_batch(const locus_st_file *g, batch *b) {
    int64_t n0, n1, n2, n3, n4;
    b->x0 = golden_f32(g, "batch0.x0", &n0);
    b->noise = golden_f32(g, "batch0.noise", &n1);
    b->sig = golden_f32(g, "batch0.sigmas", &n2);
    b->ctx = golden_f32(g, "batch0.encoder_hidden_states", &n3);
    b->pooled = golden_f32(g, "batch0.pooled_projections", &n4);
    const locus_st_tensor *xt = locus_st_find(g, "batch0.x0"), *ct = locus_st_find(g, "batch0.encoder_hidden_states");
    const locus_st_tensor *pt = locus_st_find(g, "batch0.pooled_projections");
    if (!b->x0 || !b->noise || !b->sig || !b->ctx || !b->pooled || !xt || !ct || !pt) return -1;
    b->B = (int)xt->shape[0]; b->C = (int)xt->shape[1]; b->H = (int)xt->shape[2]; b->W = (int)xt->shape[3];
    b->S = (int)ct->shape[1]; b->P = (int)pt->shape[1];
    b->n = n0;
    return 0;
}

static void free_batch(batch *b) { free(b->x0); free(b->noise); free(b->sig); free(b->ctx); free(b->pooled); }

/* relative error of x against golden `name` (n floats): max|diff| / max|golden| (max|diff| for an all-zero
 * golden); *zero_ok = 0 when x is not exactly zero wherever the golden is.  -1: missing or size mismatch. */
static double rel_err(const locus_st_file *g, const char *name, const float *x, int64_t n, int *zero_ok) {
    int64_t gn;
    float *gv = golden_f32(g, name, &gn);
    if (!gv || gn != n) { free(gv); return -1; }
    double md = 0, mr = 0;
    int gz = 1, zok = 1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - gv[i]);
        if (!(d <= md)) md = d;
        if (fabs(gv[i]) > mr) mr = fabs(gv[i]);
        gz &= gv[i] == 0.0f;
        zok &= gv[i] != 0.0f || x[i] == 0.0f;
    }
    free(gv);
    if (zero_ok) *zero_ok = zok;
    return gz ? md : md / mr;
}

typedef struct {
    double worst;
    char wname[200];
    int compared, bad;
} tally;

static void compare(tally *t, const locus_st_file *g, const char *case_name, const char *name, const float *x, int64_t n) {
    int zok = 1;
    double r = rel_err(g, name, x, n, &zok);
    t->compared++;
    if (r < 0 || !(r <= TOL) || !zok) {
        t->bad++;
        CHECK(0, "%s %s: relative error %.3e (exact zero kept: %d)", case_name, name, r, zok);
    }
    if (r > t->worst || r < 0) { t->worst = r < 0 ? 1e9 : r; snprintf(t->wname, sizeof t->wname, "%s", name); }
    if (getenv("LOCUS_VERBOSE")) printf("  %-70s %.3e\n", name, r);
}

/* hash of every gradient in the table (entry order) and of the extra buffers */
static uint64_t grads_hash(const locus_grads *gr, const float *a, size_t na, const float *b, size_t nb) {
    uint64_t h = LOCUS_FNV_INIT;
    for (size_t i = 0; i < gr->n; i++) h = locus_fnv1a(h, gr->e[i].grad, gr->e[i].numel * sizeof(float));
    h = locus_fnv1a(h, a, na * sizeof(float));
    return locus_fnv1a(h, b, nb * sizeof(float));
}

/* every ISA table x threads 1..3 x checkpoint 0/1 gives gradient hash h0 */
static void check_bits(const char *case_name, const locus_mmdit *m, const batch *bt, locus_grads *gr, uint64_t h0, float *dn, float *dc) {
    int runs = 0, same = 0, th0 = locus_threads();
    locus_isa isa0 = locus_k()->isa;
    for (int isa = 0; isa < LOCUS_ISA_COUNT; isa++) {
        if (!locus_kernels_for((locus_isa)isa)) continue;
        locus_kernels_force((locus_isa)isa);
        for (int th = 1; th <= 3; th++)
            for (int ck = 0; ck <= 1; ck++) {
                locus_set_threads(th);
                locus_grads_zero(gr);
                float loss;
                locus_status st = locus_mmdit_flow_loss_grad(m, bt->x0, bt->noise, bt->sig, bt->B, bt->H, bt->W, bt->ctx, bt->S, bt->pooled,
                                                             ck, gr, &loss, NULL, dn, dc, NULL);
                uint64_t h = grads_hash(gr, dn, bt->n, dc, (size_t)bt->B * bt->S * m->joint_dim);
                runs++;
                same += st == LOCUS_OK && h == h0;
                CHECK(st == LOCUS_OK && h == h0, "%s gradient bits: isa %s threads %d checkpoint %d differ", case_name, locus_isa_name(), th, ck);
            }
    }
    locus_kernels_force(isa0);
    locus_set_threads(th0);
    printf("%s gradients bit-identical in %d of %d runs (ISA tables x threads 1-3 x checkpointing)\n", case_name, same, runs);
}

static double loss_at(const locus_mmdit *m, const batch *bt, const float *pooled) {
    float l = 0;
    locus_mmdit_flow_loss_grad(m, bt->x0, bt->noise, bt->sig, bt->B, bt->H, bt->W, bt->ctx, bt->S, pooled, 0, NULL, &l, NULL, NULL, NULL, NULL);
    return l;
}

static void run_full(const char *G, const char *case_name) {
    char p[512];
    snprintf(p, sizeof p, "%s/train/golden_train_%s.safetensors", G, case_name);
    locus_st_file g;
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_loader_set_plain_weights(1);
    locus_mmdit m;
    snprintf(p, sizeof p, "%s/%s/transformer", G, case_name);
    if (locus_mmdit_load(&m, p)) { CHECK(0, "%s: %s", case_name, locus_errmsg()); locus_st_close(&g); return; }
    batch bt;
    if (load_batch(&g, &bt)) { CHECK(0, "%s: batch0 inputs missing", case_name); goto out0; }
    locus_grads gr;
    locus_grads_init(&gr);
    int ntr = locus_grads_track_loader(&gr, &m.L, NULL);
    CHECK(ntr > 0, "%s: parameters tracked (%d)", case_name, ntr);
    size_t nctx = (size_t)bt.B * bt.S * m.joint_dim;
    float *noisy = malloc(bt.n * 4), *target = malloc(bt.n * 4), *ts = malloc(bt.B * 4), *pred = malloc(bt.n * 4), *ref = malloc(bt.n * 4);
    float *dn = malloc(bt.n * 4), *dc = malloc(nctx * 4), *dp = malloc((size_t)bt.B * bt.P * 4);
    /* flow-matching inputs */
    locus_flow_match_inputs(bt.x0, bt.noise, bt.sig, bt.B, (size_t)bt.n / bt.B, noisy, target, ts);
    double rn = parity_rel(&g, "batch0.noisy", noisy, bt.n), rt = parity_rel(&g, "batch0.target", target, bt.n);
    printf("%s flow-matching inputs: noisy %.2e, target %.2e (relative error)\n", case_name, rn, rt);
    CHECK(rn == 0 && rt == 0, "%s flow-matching noisy %.2e / target %.2e: bit-exact (same fp32 operations as torch)", case_name, rn, rt);
    /* the training forward equals the inference forward bit for bit */
    locus_mmdit_tape *tape = NULL;
    locus_status st = locus_mmdit_forward_train(&m, noisy, bt.B, bt.H, bt.W, ts, bt.ctx, bt.S, bt.pooled, pred, 0, &tape);
    CHECK(st == LOCUS_OK, "%s forward_train: %s", case_name, locus_errmsg());
    locus_mmdit_forward(&m, noisy, bt.B, bt.H, bt.W, ts, bt.ctx, bt.S, bt.pooled, ref, NULL);
    CHECK(t_bitdiff(pred, ref, bt.n) == 0, "%s training forward bit-identical to locus_mmdit_forward (%zu differ)", case_name,
          t_bitdiff(pred, ref, bt.n));
    locus_mmdit_tape_free(tape);
    /* one loss + backward */
    float loss = 0;
    st = locus_mmdit_flow_loss_grad(&m, bt.x0, bt.noise, bt.sig, bt.B, bt.H, bt.W, bt.ctx, bt.S, bt.pooled, 0, &gr, &loss, pred, dn, dc, dp);
    CHECK(st == LOCUS_OK, "%s flow_loss_grad: %s", case_name, locus_errmsg());
    double rl = parity_rel(&g, "batch0.loss", &loss, 1), rp = parity_rel(&g, "batch0.pred", pred, bt.n);
    printf("%s loss %.7f (relative error %.2e), pred %.2e\n", case_name, loss, rl, rp);
    CHECK(rl >= 0 && rl <= TOL, "%s loss within 1e-4 (%.2e)", case_name, rl);
    CHECK(rp >= 0 && rp <= TOL, "%s pred within 1e-4 (%.2e)", case_name, rp);
    tally t = {0, "", 0, 0};
    compare(&t, &g, case_name, "grad_input.sample", dn, bt.n);
    compare(&t, &g, case_name, "grad_input.encoder_hidden_states", dc, nctx);
    int ngold = 0, nzero = 0;
    for (size_t i = 0; i < g.count; i++) {
        const char *nm = g.tensors[i].name;
        if (strncmp(nm, "grad.", 5)) continue;
        ngold++;
        const locus_grad_entry *e = locus_grads_find(&gr, nm + 5);
        if (!e) { CHECK(0, "%s: no gradient for %s", case_name, nm + 5); continue; }
        compare(&t, &g, case_name, nm, e->grad, (int64_t)e->numel);
        int z = 1;
        for (size_t j = 0; j < e->numel; j++) z &= e->grad[j] == 0.0f;
        nzero += z;
    }
    /* tracked parameters without a golden gradient: only the frozen position table, left at zero */
    for (size_t i = 0; i < gr.n; i++) {
        char nm[300];
        snprintf(nm, sizeof nm, "grad.%s", gr.e[i].name);
        if (locus_st_find(&g, nm)) continue;
        int z = 1;
        for (size_t j = 0; j < gr.e[i].numel; j++) z &= gr.e[i].grad[j] == 0.0f;
        CHECK(!strcmp(gr.e[i].name, "pos_embed.pos_embed") && z, "%s: parameter %s has no golden gradient (zero: %d)", case_name, gr.e[i].name, z);
    }
    printf("%s: %d gradient tensors compared (%d parameters, %d exactly zero), worst %.2e (%s)\n", case_name, t.compared, ngold, nzero,
           t.worst, t.wname);
    CHECK(t.bad == 0 && t.compared == ngold + 2, "%s: every gradient within 1e-4 (%d of %d bad)", case_name, t.bad, t.compared);
    /* d pooled (no golden): central difference of the loss along a fixed direction */
    {
        size_t np = (size_t)bt.B * bt.P;
        float *v = malloc(np * 4), *pp = malloc(np * 4), *pm = malloc(np * 4);
        t_fill(v, np, 7, -1.0f, 1.0f);
        const float eps = 1e-2f;
        double dot = 0;
        for (size_t j = 0; j < np; j++) { pp[j] = bt.pooled[j] + eps * v[j]; pm[j] = bt.pooled[j] - eps * v[j]; dot += (double)dp[j] * v[j]; }
        double fd = (loss_at(&m, &bt, pp) - loss_at(&m, &bt, pm)) / (2.0 * eps);
        printf("%s d pooled . v = %.6e, central difference %.6e\n", case_name, dot, fd);
        CHECK(fabs(dot - fd) <= 2e-2 * fabs(fd) + 1e-5, "%s d pooled against the central difference (%.6e vs %.6e)", case_name, dot, fd);
        free(v); free(pp); free(pm);
    }
    /* bits across ISAs, threads and checkpointing */
    uint64_t h0 = grads_hash(&gr, dn, bt.n, dc, nctx);
    check_bits(case_name, &m, &bt, &gr, h0, dn, dc);
    /* a larger synthetic batch (32x32 latent: 256 image tokens, 20 text tokens) so threads split real work;
     * SD3.5 only (its blocks have every kind of op: dual attention, qk-norm, context_pre_only) */
    if (!strcmp(case_name, "sd35")) {
        batch lb = {2, bt.C, 32, 32, 20, bt.P, NULL, NULL, NULL, NULL, NULL, (int64_t)2 * bt.C * 32 * 32};
        size_t lctx = (size_t)lb.B * lb.S * m.joint_dim;
        lb.x0 = malloc(lb.n * 4); lb.noise = malloc(lb.n * 4); lb.sig = malloc(2 * 4); lb.ctx = malloc(lctx * 4);
        lb.pooled = malloc((size_t)lb.B * lb.P * 4);
        float *ldn = malloc(lb.n * 4), *ldc = malloc(lctx * 4), lloss;
        t_fill(lb.x0, lb.n, 11, -2.0f, 2.0f); t_fill(lb.noise, lb.n, 12, -2.0f, 2.0f); t_fill(lb.ctx, lctx, 13, -2.0f, 2.0f);
        t_fill(lb.pooled, (size_t)lb.B * lb.P, 14, -2.0f, 2.0f);
        lb.sig[0] = 0.3f; lb.sig[1] = 0.9f;
        locus_grads_zero(&gr);
        st = locus_mmdit_flow_loss_grad(&m, lb.x0, lb.noise, lb.sig, lb.B, lb.H, lb.W, lb.ctx, lb.S, lb.pooled, 0, &gr, &lloss, NULL, ldn, ldc, NULL);
        CHECK(st == LOCUS_OK && lloss > 0, "%s 32x32 batch: %s", case_name, locus_errmsg());
        char nm[64];
        snprintf(nm, sizeof nm, "%s 32x32", case_name);
        check_bits(nm, &m, &lb, &gr, grads_hash(&gr, ldn, lb.n, ldc, lctx), ldn, ldc);
        free(ldn); free(ldc);
        free_batch(&lb);
    }
    /* packed Linear weights (inference loading) give the same gradient bits as plain ones */
    {
        locus_loader_set_plain_weights(0);
        locus_mmdit mp;
        snprintf(p, sizeof p, "%s/%s/transformer", G, case_name);
        if (locus_mmdit_load(&mp, p)) CHECK(0, "%s: %s", case_name, locus_errmsg());
        else {
            locus_grads gp;
            locus_grads_init(&gp);
            locus_grads_track_loader(&gp, &mp.L, NULL);
            st = locus_mmdit_flow_loss_grad(&mp, bt.x0, bt.noise, bt.sig, bt.B, bt.H, bt.W, bt.ctx, bt.S, bt.pooled, 0, &gp, &loss, NULL, dn, dc, NULL);
            CHECK(st == LOCUS_OK && grads_hash(&gp, dn, bt.n, dc, nctx) == h0, "%s: packed weights give the same gradient bits", case_name);
            locus_grads_free(&gp);
            locus_mmdit_free(&mp);
        }
        locus_loader_set_plain_weights(1);
    }
    /* argument errors */
    locus_mmdit_tape *t2 = (locus_mmdit_tape *)1;
    st = locus_mmdit_forward_train(&m, noisy, bt.B, bt.H - 1, bt.W, ts, bt.ctx, bt.S, bt.pooled, pred, 0, &t2);
    CHECK(st == LOCUS_E_ARG && t2 == NULL, "%s: odd height refused (%s)", case_name, locus_errmsg());
    free(noisy); free(target); free(ts); free(pred); free(ref); free(dn); free(dc); free(dp);
    locus_grads_free(&gr);
    free_batch(&bt);
out0:
    locus_mmdit_free(&m);
    locus_st_close(&g);
}

/* LoRA: rank-4 adapters (alpha 4: scale 1) on transformer_blocks.0.attn's projections, base weights frozen */
static void run_lora(const char *G) {
    static const char *targets[8] = {"to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"};
    char p[512];
    snprintf(p, sizeof p, "%s/train/golden_train_sd3.safetensors", G);
    locus_st_file g;
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_loader_set_plain_weights(1);
    locus_mmdit m;
    snprintf(p, sizeof p, "%s/sd3/transformer", G);
    if (locus_mmdit_load(&m, p)) { CHECK(0, "lora: %s", locus_errmsg()); locus_st_close(&g); return; }
    batch bt;
    nn_lora lora[8];
    float *fac[16] = {0};
    locus_grads gr;
    locus_grads_init(&gr);
    int attached = 0;
    if (load_batch(&g, &bt)) { CHECK(0, "lora: batch0 inputs missing"); locus_mmdit_free(&m); locus_st_close(&g); return; }
    for (int k = 0; k < 8; k++) {
        char mod[200], na[300], nb[300];
        snprintf(mod, sizeof mod, "transformer_blocks.0.attn.%s", targets[k]);
        nn_linear *l = NULL;
        for (size_t i = 0; i < m.L.nmods; i++)
            if (m.L.mods[i].kind == LOCUS_MOD_LINEAR && !strcmp(m.L.mods[i].name, mod)) l = m.L.mods[i].ptr;
        snprintf(na, sizeof na, "lora_init.transformer.%s.lora_A.weight", mod);
        snprintf(nb, sizeof nb, "lora_init.transformer.%s.lora_B.weight", mod);
        int64_t n1, n2;
        fac[2 * k] = golden_f32(&g, na, &n1);
        fac[2 * k + 1] = golden_f32(&g, nb, &n2);
        if (!l || !fac[2 * k] || !fac[2 * k + 1]) { CHECK(0, "lora: %s (module or factors missing)", mod); continue; }
        int r = (int)locus_st_find(&g, na)->shape[0];
        lora[k] = (nn_lora){fac[2 * k], fac[2 * k + 1], r, 4.0f / (float)r, NULL};
        l->lora = &lora[k];
        int64_t sa[2] = {r, l->in}, sb[2] = {l->out, r};
        snprintf(na, sizeof na, "%s.lora_A.weight", mod);
        snprintf(nb, sizeof nb, "%s.lora_B.weight", mod);
        locus_grads_track(&gr, na, lora[k].down, 2, sa);
        locus_grads_track(&gr, nb, lora[k].up, 2, sb);
        attached++;
    }
    CHECK(attached == 8, "lora: 8 adapters attached (%d)", attached);
    size_t nctx = (size_t)bt.B * bt.S * m.joint_dim;
    float *dn = malloc(bt.n * 4), *dc = malloc(nctx * 4);
    float loss = 0;
    locus_status st = locus_mmdit_flow_loss_grad(&m, bt.x0, bt.noise, bt.sig, bt.B, bt.H, bt.W, bt.ctx, bt.S, bt.pooled, 0, &gr, &loss, NULL,
                                                 dn, dc, NULL);
    CHECK(st == LOCUS_OK, "lora flow_loss_grad: %s", locus_errmsg());
    int64_t nl;
    float *gl = golden_f32(&g, "lora_loss", &nl);
    double rl = gl ? fabs(loss - gl[0]) / fabs(gl[0]) : -1;
    printf("sd3 lora loss %.7f (golden %.7f, relative error %.2e)\n", loss, gl ? gl[0] : 0.0f, rl);
    CHECK(gl && rl <= TOL, "sd3 lora loss within 1e-4 (%.2e)", rl);
    free(gl);
    tally t = {0, "", 0, 0};
    for (size_t i = 0; i < gr.n; i++) {
        char nm[400];
        snprintf(nm, sizeof nm, "lora_grad.transformer.%s", gr.e[i].name);
        compare(&t, &g, "sd3 lora", nm, gr.e[i].grad, (int64_t)gr.e[i].numel);
    }
    printf("sd3 lora: %d adapter gradients compared, worst %.2e (%s)\n", t.compared, t.worst, t.wname);
    CHECK(t.bad == 0 && t.compared == 16, "sd3 lora: every adapter gradient within 1e-4 (%d of %d bad)", t.bad, t.compared);
    uint64_t h0 = grads_hash(&gr, dn, bt.n, dc, nctx);
    check_bits("sd3 lora", &m, &bt, &gr, h0, dn, dc);
    for (int k = 0; k < 16; k++) free(fac[k]);
    free(dn); free(dc);
    locus_grads_free(&gr);
    free_batch(&bt);
    locus_mmdit_free(&m);
    locus_st_close(&g);
}

/* --hash: one line per model, the hash of every parameter gradient and the input gradients of the golden
 * batch (for comparing builds: other compilers, the aarch64/NEON build) */
static int print_hash(const char *G) {
    static const char *names[2] = {"sd3", "sd35"};
    locus_loader_set_plain_weights(1);
    for (int k = 0; k < 2; k++) {
        char p[512];
        locus_st_file g;
        locus_mmdit m;
        batch bt;
        snprintf(p, sizeof p, "%s/train/golden_train_%s.safetensors", G, names[k]);
        if (locus_st_open(&g, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
        snprintf(p, sizeof p, "%s/%s/transformer", G, names[k]);
        if (locus_mmdit_load(&m, p)) { fprintf(stderr, "%s\n", locus_errmsg()); return 1; }
        if (load_batch(&g, &bt)) { fprintf(stderr, "%s: batch0 inputs missing\n", names[k]); return 1; }
        locus_grads gr;
        locus_grads_init(&gr);
        locus_grads_track_loader(&gr, &m.L, NULL);
        size_t nctx = (size_t)bt.B * bt.S * m.joint_dim;
        float *dn = malloc(bt.n * 4), *dc = malloc(nctx * 4), loss;
        if (locus_mmdit_flow_loss_grad(&m, bt.x0, bt.noise, bt.sig, bt.B, bt.H, bt.W, bt.ctx, bt.S, bt.pooled, 0, &gr, &loss, NULL, dn, dc, NULL)) {
            fprintf(stderr, "%s\n", locus_errmsg());
            return 1;
        }
        printf("grad_mmdit_%s %016llx\n", names[k], (unsigned long long)grads_hash(&gr, dn, bt.n, dc, nctx));
        free(dn); free(dc);
        locus_grads_free(&gr);
        free_batch(&bt);
        locus_mmdit_free(&m);
        locus_st_close(&g);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    if (argc > 1 && !strcmp(argv[1], "--hash")) return print_hash(G);
    run_full(G, "sd3");
    run_full(G, "sd35");
    run_lora(G);
    return t_finish("test_grad_mmdit");
}
