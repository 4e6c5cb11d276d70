/* pipeline_mem.c — the peak-memory estimate of a generate run (`locus info`, locus_pipeline_peak_estimate):
 * the forwards' allocation sequence replayed on a ledger (see the design note below). */
#include <math.h>

#include "../core/arena.h"
#include "../simd/ops.h"
#include "if_unet.h"
#include "mmdit.h"
#include "pipeline.h"
#include "unet.h"

/* ==== peak-memory estimate ====
 * Design (issue 9, item 5).  The forwards allocate every buffer with locus_alloc and free it when dead (no
 * planned arena), and the kernels take scratch the same way, so the peak of a run is a property of the code's
 * allocation sequence.  Running that sequence for real at the requested size would cost a full generate, so
 * the estimate REPLAYS it on a ledger instead: for each phase of a plain CFG generate run (text encoding,
 * denoising, VAE decode) the functions below walk the same modules in the same order as the forwards and add
 * and remove the same buffer sizes (rounded up to 64 bytes as locus_alloc does), including the kernels'
 * scratch (GEMM A/B panels, attention score rows and packed K/V, per thread), and keep the high-water mark.
 * Weights are counted exactly from the loaders' buffers.  No compute runs, so it is instant at any size.
 * Each helper names the code it mirrors; a change there must be mirrored here — tests/test_peak.c compares
 * the estimate with locus_mem_peak() of real runs on both tiny pipelines at two sizes each (within 5%), so a
 * drift shows up as a failing test.  Not modelled: hooks (attention probabilities, caches), LoRA adapters,
 * --dump (every step's tensors are kept) and the temporary unpacked weight after a kernel-table switch.  With
 * several threads, the per-thread GEMM scratch inside attention is counted as held by all threads at once: an
 * upper bound (whether the threads' blocks overlap in time varies from run to run). */

/* private constants of the kernel drivers, copied: simd/gemm.c KC, MC_TARGET, NC, SMALL_M(_GROUP, _KSUB), SERIAL_FLOPS;
 * simd/attention.c QB */
enum { G_KC = 512, G_MC_TARGET = 144, G_NC = 3072, G_SMALL_M = 256, G_SMALL_M_GROUP = 8, G_SMALL_M_KSUB = 16, A_QB = 64 };
#define G_SERIAL_FLOPS 2000000.0

typedef struct { double live, peak; int nt; } msim; /* bytes held, high-water mark, threads */

static double msz(double floats) { double b = floats > 0 ? floats * 4 : 1; return ceil(b / LOCUS_ALIGN) * LOCUS_ALIGN; }
static void m_alloc(msim *s, double floats) { s->live += msz(floats); if (s->live > s->peak) s->peak = s->live; }
static void m_free(msim *s, double floats) { s->live -= msz(floats); }

/* simd/gemm.c locus_gemm / gemm_run (A row-major, as every forward GEMM here): B panels (unless pre-packed)
 * and one A block per thread; few rows (the column-panel schedule): one B panel and all of A per thread */
static void m_gemm(msim *s, double M, double N, double K, int packed, int serial, int byrows) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    const locus_kernels *kt = locus_k();
    double MC = (G_MC_TARGET / kt->mr) * kt->mr, kc = K < G_KC ? K : G_KC, nc = N < G_NC ? N : G_NC;
    int nt = serial || 2 * M * N * K < G_SERIAL_FLOPS ? 1 : s->nt;
    double npan = ceil(N / kt->nr);
    int direct = kt->gemm_ukr_direct && npan <= 2;
    double bb = ceil(nc / kt->nr) * kt->nr * kc, ab = nt * MC * kc;
    if (!direct && M <= G_SMALL_M && npan >= 2 * nt) {
        bb = nt * (byrows && kc > G_SMALL_M_KSUB ? G_SMALL_M_GROUP : 1) * kt->nr * kc;
        ab = nt * ceil(M / kt->mr) * kt->mr * kc;
    }
    if (!packed) m_alloc(s, bb);
    m_alloc(s, ab);
    m_free(s, ab);
    if (!packed) m_free(s, bb);
}
static void m_linear(msim *s, double M, const nn_linear *l) { m_gemm(s, M, l->out, l->in, 1, 0, 0); } /* nn_linear_fwd */
/* simd/conv.c: one im2col GEMM per batch item (sequential) */
static void m_conv(msim *s, int cin, int cout, int k, double HWo) { m_gemm(s, cout, HWo, (double)cin * k * k, 0, 0, k == 1); }

/* simd/attention.c locus_attention: score rows per thread, packed K^T and V per (batch, head), then each
 * thread's serial GEMMs (one A block at a time; the P.V one is the larger) */
static void m_attention(msim *s, int B, int H, double Tq, double Tk, int D) {
    double ntask = B * H * ceil(Tq / A_QB);
    int nt = s->nt;
    if (ntask < nt) nt = (int)ntask;
    if (Tq * Tk * D * B * H < 1e5) nt = 1;
    if (nt < 1) nt = 1;
    const locus_kernels *kt = locus_k();
    double sbuf = (double)nt * A_QB * (Tk > 0 ? Tk : 1), nbh = (double)B * H;
    double kp = (double)locus_gemm_packed_b_floats((int)Tk, D) * nbh, vp = (double)locus_gemm_packed_b_floats(D, (int)Tk) * nbh;
    double MC = (G_MC_TARGET / kt->mr) * kt->mr, kc = Tk > D ? Tk : D;
    double ab = MC * (kc < G_KC ? kc : G_KC);
    m_alloc(s, sbuf); m_alloc(s, kp); m_alloc(s, vp);
    for (int t = 0; t < nt; t++) m_alloc(s, ab);
    for (int t = 0; t < nt; t++) m_free(s, ab);
    m_free(s, vp); m_free(s, kp); m_free(s, sbuf);
}

/* models/nn.c nn_resnet_fwd */
static void m_resnet(msim *s, const nn_resnet *r, int B, int H, int W, int temb) {
    double HW = (double)H * W;
    m_alloc(s, B * r->cin * HW); m_alloc(s, B * r->cout * HW);
    m_conv(s, r->cin, r->cout, 3, HW);
    if (r->has_temb && temb) { m_alloc(s, (double)B * r->cout); m_linear(s, B, &r->temb); m_free(s, (double)B * r->cout); }
    m_alloc(s, B * r->cout * HW);
    m_conv(s, r->cout, r->cout, 3, HW);
    if (r->has_shortcut) m_conv(s, r->cin, r->cout, 1, HW);
    m_free(s, B * r->cin * HW); m_free(s, B * r->cout * HW); m_free(s, B * r->cout * HW);
}

/* models/nn.c nn_attention_fwd (no hooks: no probabilities) */
static void m_attn(msim *s, const nn_attention *a, int B, double T, double S) {
    double C = a->inner;
    m_alloc(s, B * T * C); m_alloc(s, B * S * C); m_alloc(s, B * S * C); m_alloc(s, B * T * C);
    m_linear(s, B * T, &a->q); m_linear(s, B * S, &a->k); m_linear(s, B * S, &a->v);
    m_attention(s, B, a->heads, T, S, a->dim_head);
    m_linear(s, B * T, &a->out);
    m_free(s, B * T * C); m_free(s, B * S * C); m_free(s, B * S * C); m_free(s, B * T * C);
}

/* models/nn.c nn_transformer2d_fwd and nn_tblock_fwd */
static void m_transformer2d(msim *s, const nn_transformer2d *t, int B, int H, int W, int S) {
    double HW = (double)H * W, C = t->c, I = t->inner;
    m_alloc(s, B * C * HW); m_alloc(s, B * HW * I); m_alloc(s, B * HW * (I > C ? I : C));
    if (t->linear_proj) m_linear(s, B * HW, &t->proj_in_l);
    else m_conv(s, t->c, t->inner, 1, HW);
    for (int i = 0; i < t->nblocks; i++) {
        const nn_tblock *b = &t->blocks[i];
        double N = B * HW * b->dim, rows = B * HW;
        m_alloc(s, N); m_alloc(s, N);
        m_attn(s, &b->a1, B, HW, b->only_cross ? S : HW);
        m_attn(s, &b->a2, B, HW, S);
        m_alloc(s, rows * 2 * b->ff_inner); m_alloc(s, rows * b->ff_inner);
        m_linear(s, rows, &b->ff_in); m_linear(s, rows, &b->ff_out);
        m_free(s, N); m_free(s, N); m_free(s, rows * 2 * b->ff_inner); m_free(s, rows * b->ff_inner);
    }
    if (t->linear_proj) m_linear(s, B * HW, &t->proj_out_l);
    else m_conv(s, t->inner, t->c, 1, HW);
    m_free(s, B * C * HW); m_free(s, B * HW * I); m_free(s, B * HW * (I > C ? I : C));
}

/* models/unet.c locus_unet_forward: time embedding, skips kept from the down path, up path concatenations */
static void m_unet(msim *s, const locus_unet *u, int B, int H, int W, int S) {
    double skip[UNET_MAX_BLOCKS * 8];
    int ns = 0, C = u->block_out[0];
    m_alloc(s, (double)B * u->time_dim); m_alloc(s, (double)B * u->temb_dim); m_alloc(s, (double)B * u->temb_dim);
    m_linear(s, B, &u->time_1); m_linear(s, B, &u->time_2);
    if (u->add_time) { /* add_text_time: time ids, their embedding, the concatenation, two [B,temb] */
        double A = u->add_time_dim, b6 = (double)B * UNET_TIME_IDS, ab[5] = {b6, b6 * A, B * (u->add_text_dim + 6 * A), (double)B * u->temb_dim, (double)B * u->temb_dim};
        for (int i = 0; i < 5; i++) m_alloc(s, ab[i]);
        m_linear(s, B, &u->add_1); m_linear(s, B, &u->add_2);
        for (int i = 0; i < 5; i++) m_free(s, ab[i]);
    }
    double h = (double)B * C * H * W;
    m_alloc(s, h);
    m_conv(s, u->in_channels, C, 3, (double)H * W);
    skip[ns++] = h;
    for (int i = 0; i < u->nblocks; i++) {
        const unet_block *b = &u->down[i];
        for (int j = 0; j < b->nlayers; j++) {
            double y = (double)B * b->cout * H * W;
            m_alloc(s, y);
            m_resnet(s, &b->res[j], B, H, W, 1);
            C = b->cout;
            if (b->cross) { m_alloc(s, y); m_transformer2d(s, &b->attn[j], B, H, W, S); m_free(s, y); }
            skip[ns++] = h = y;
        }
        if (b->has_sample) {
            int Ho = (H + 2 * b->sample.pad - 3) / 2 + 1, Wo = (W + 2 * b->sample.pad - 3) / 2 + 1;
            if (b->sample.pad == 0) { Ho = (H + 1 - 3) / 2 + 1; Wo = (W + 1 - 3) / 2 + 1; }
            h = (double)B * C * Ho * Wo;
            m_alloc(s, h);
            m_conv(s, C, C, 3, (double)Ho * Wo);
            H = Ho; W = Wo;
            skip[ns++] = h;
        }
    }
    double y = (double)B * C * H * W;
    m_alloc(s, y); m_alloc(s, y);
    m_resnet(s, &u->mid.res[0], B, H, W, 1);
    m_transformer2d(s, &u->mid.attn[0], B, H, W, S);
    m_resnet(s, &u->mid.res[1], B, H, W, 1);
    m_free(s, y);
    h = y;
    for (int i = 0; i < u->nblocks; i++) {
        const unet_block *b = &u->up[i];
        for (int j = 0; j < b->nlayers; j++) {
            double sk = skip[--ns], cat = h + sk;
            m_alloc(s, cat);
            m_free(s, sk); m_free(s, h);
            C = b->cout;
            h = (double)B * C * H * W;
            m_alloc(s, h);
            m_resnet(s, &b->res[j], B, H, W, 1);
            m_free(s, cat);
            if (b->cross) { m_alloc(s, h); m_transformer2d(s, &b->attn[j], B, H, W, S); m_free(s, h); }
        }
        if (b->has_sample) {
            double up = 4.0 * B * C * H * W;
            m_alloc(s, up); m_alloc(s, up);
            H *= 2; W *= 2;
            m_conv(s, C, C, 3, (double)H * W);
            m_free(s, up); m_free(s, h);
            h = up;
        }
    }
    m_alloc(s, h);
    m_conv(s, C, u->out_channels, 3, (double)H * W);
    m_free(s, h); m_free(s, h);
    m_free(s, (double)B * u->time_dim); m_free(s, (double)B * u->temb_dim); m_free(s, (double)B * u->temb_dim);
    while (ns > 0) m_free(s, skip[--ns]);
}

/* models/if_nn.c if_resnet_fwd */
static void m_if_resnet(msim *s, const if_resnet *r, int B, int H, int W) {
    double HW = (double)H * W, HWo = r->resample < 0 ? HW / 4 : r->resample > 0 ? HW * 4 : HW, ci = (double)B * r->cin, co = (double)B * r->cout;
    m_alloc(s, ci * HW);
    if (r->resample) { m_alloc(s, ci * HWo); m_alloc(s, ci * HWo); m_free(s, ci * HW); }
    m_alloc(s, co * HWo);
    m_conv(s, r->cin, r->cout, 3, HWo);
    m_alloc(s, (double)B * r->temb.out);
    if (!r->skip_time_act) m_alloc(s, (double)B * r->temb.in);
    m_linear(s, B, &r->temb);
    if (!r->skip_time_act) m_free(s, (double)B * r->temb.in);
    m_alloc(s, co * HWo);
    if (r->scale_shift) { m_alloc(s, co); m_alloc(s, co); m_free(s, co); m_free(s, co); }
    m_conv(s, r->cout, r->cout, 3, HWo);
    if (r->has_shortcut) m_conv(s, r->cin, r->cout, 1, HWo);
    m_free(s, ci * (r->resample ? HWo : HW)); m_free(s, co * HWo); m_free(s, (double)B * r->temb.out); m_free(s, co * HWo);
    if (r->resample) m_free(s, ci * HWo);
}

/* models/if_nn.c if_attn_fwd (no hooks) */
static void m_if_attn(msim *s, const if_attn *a, int B, double T, double S) {
    double C = a->c, I = a->inner, TK = S + T, sz[10] = {B * C * T, B * T * C, B * T * I, B * S * I, B * S * I, B * T * I, B * T * I, B * TK * I, B * TK * I, B * T * I};
    for (int i = 0; i < 7; i++) m_alloc(s, sz[i]);
    m_linear(s, B * T, &a->q);
    double ncs = a->norm_cross ? (double)B * S * a->ncross.c : 0; /* norm_cross: its output, two transposes */
    if (ncs) { m_alloc(s, ncs); m_alloc(s, ncs); m_alloc(s, ncs); m_free(s, ncs); m_free(s, ncs); }
    m_linear(s, B * S, &a->add_k); m_linear(s, B * S, &a->add_v);
    if (ncs) m_free(s, ncs);
    m_linear(s, B * T, &a->k); m_linear(s, B * T, &a->v);
    for (int i = 7; i < 10; i++) m_alloc(s, sz[i]);
    m_attention(s, B, a->heads, T, TK, a->dim_head);
    m_linear(s, B * T, &a->out);
    for (int i = 0; i < 10; i++) m_free(s, sz[i]);
}

/* models/if_unet.c locus_if_unet_forward (and if_text_time_fwd) */
static void m_if_unet(msim *s, const locus_if_unet *u, int B, int H, int W, int S) {
    double skip[IF_MAX_BLOCKS * (IF_MAX_LAYERS + 1) + 1], T = u->temb_dim;
    int ns = 0, C = u->block_out[0];
    m_alloc(s, (double)B * u->time_dim); m_alloc(s, B * T); m_alloc(s, B * T);
    m_linear(s, B, &u->time_1); m_linear(s, B, &u->time_2);
    if (u->text_embed) {
        const if_text_time *t = &u->add;
        double D = t->dim, S1 = S + 1.0, sz[7] = {B * T, (double)B * S * D, B * S1 * D, B * D, B * D, B * S1 * D, B * S1 * D};
        for (int i = 0; i < 7; i++) m_alloc(s, sz[i]);
        m_linear(s, B, &t->q); m_linear(s, B * S1, &t->k); m_linear(s, B * S1, &t->v);
        m_attention(s, B, t->heads, 1, S1, t->dim / t->heads);
        m_alloc(s, B * (double)t->tdim); m_linear(s, B, &t->proj); m_free(s, B * (double)t->tdim);
        for (int i = 0; i < 7; i++) m_free(s, sz[i]);
    }
    double ehs = u->hid_dim ? (double)B * S * u->cross_dim : 0;
    if (ehs) { m_alloc(s, ehs); m_linear(s, (double)B * S, &u->hid_proj); }
    double h = (double)B * C * H * W;
    m_alloc(s, h);
    m_conv(s, u->in_channels, C, 3, (double)H * W);
    skip[ns++] = h;
    for (int i = 0; i < u->nblocks; i++) {
        const if_block *b = &u->down[i];
        for (int j = 0; j < b->nres; j++) {
            double y = (double)B * b->cout * H * W;
            m_alloc(s, y);
            m_if_resnet(s, &b->res[j], B, H, W);
            C = b->cout;
            if (b->attn) { m_alloc(s, y); m_if_attn(s, &b->attn[j], B, (double)H * W, S); m_free(s, y); }
            skip[ns++] = h = y;
        }
        if (b->has_sample) {
            h = (double)B * C * (H / 2) * (W / 2);
            m_alloc(s, h);
            m_if_resnet(s, &b->sample, B, H, W);
            H /= 2; W /= 2;
            skip[ns++] = h;
        }
    }
    double y = (double)B * C * H * W;
    m_alloc(s, y); m_alloc(s, y);
    m_if_resnet(s, &u->mid.res[0], B, H, W);
    m_if_attn(s, &u->mid.attn[0], B, (double)H * W, S);
    m_if_resnet(s, &u->mid.res[1], B, H, W);
    m_free(s, y);
    h = y;
    for (int i = 0; i < u->nblocks; i++) {
        const if_block *b = &u->up[i];
        for (int j = 0; j < b->nres; j++) {
            double sk = skip[--ns], cat = h + sk;
            m_alloc(s, cat);
            m_free(s, sk); m_free(s, h);
            C = b->cout;
            h = (double)B * C * H * W;
            m_alloc(s, h);
            m_if_resnet(s, &b->res[j], B, H, W);
            m_free(s, cat);
            if (b->attn) { m_alloc(s, h); m_if_attn(s, &b->attn[j], B, (double)H * W, S); m_free(s, h); }
        }
        if (b->has_sample) {
            double up = 4.0 * B * C * H * W;
            m_alloc(s, up);
            m_if_resnet(s, &b->sample, B, H, W);
            H *= 2; W *= 2;
            m_free(s, h);
            h = up;
        }
    }
    m_alloc(s, h);
    m_conv(s, C, u->out_channels, 3, (double)H * W);
    m_free(s, h); m_free(s, h);
    if (ehs) m_free(s, ehs);
    m_free(s, (double)B * u->time_dim); m_free(s, B * T); m_free(s, B * T);
    while (ns > 0) m_free(s, skip[--ns]);
}

/* models/mmdit.c locus_mmdit_forward and block_fwd (no hooks) */
static void m_mmdit(msim *s, const locus_mmdit *m, int B, int H, int W, int S) {
    double D = m->D, p = m->patch, N = (double)(H / m->patch) * (W / m->patch), J = N + S;
    m_alloc(s, B * D * N); m_alloc(s, B * N * D);
    m_conv(s, m->in_channels, m->D, m->patch, N);
    m_alloc(s, B * 256.0); m_alloc(s, B * D); m_alloc(s, B * D); m_alloc(s, B * D);
    m_linear(s, B, &m->t1); m_linear(s, B, &m->t2); m_linear(s, B, &m->p1); m_linear(s, B, &m->p2);
    m_alloc(s, B * S * D);
    m_linear(s, (double)B * S, &m->ctx_emb);
    for (int i = 0; i < m->nlayers; i++) {
        const mmdit_block *b = &m->blocks[i];
        double e1 = B * (b->dual ? 9 : 6) * D, e2 = B * (b->pre_only ? 2 : 6) * D;
        m_alloc(s, e1); m_alloc(s, e2);
        m_linear(s, B, &b->norm1); m_linear(s, B, &b->norm1_ctx);
        m_alloc(s, B * N * D); m_alloc(s, B * S * D);
        if (b->dual) m_alloc(s, B * N * D);
        for (int t = 0; t < 4; t++) m_alloc(s, B * J * D);
        for (int t = 0; t < 3; t++) m_alloc(s, B * N * D);
        for (int t = 0; t < 3; t++) m_alloc(s, B * S * D);
        m_linear(s, B * N, &b->q); m_linear(s, B * N, &b->k); m_linear(s, B * N, &b->v);
        m_linear(s, B * S, &b->aq); m_linear(s, B * S, &b->ak); m_linear(s, B * S, &b->av);
        for (int t = 0; t < 3; t++) m_free(s, B * N * D);
        for (int t = 0; t < 3; t++) m_free(s, B * S * D);
        m_attention(s, B, m->heads, J, J, m->head_dim);
        m_alloc(s, B * N * D); m_alloc(s, B * S * D);
        m_linear(s, N, &b->out);
        if (!b->pre_only) m_linear(s, S, &b->add_out);
        if (b->dual) {
            m_linear(s, N, &b->q2); m_linear(s, N, &b->k2); m_linear(s, N, &b->v2);
            m_attention(s, B, m->heads, N, N, m->head_dim);
            m_linear(s, B * N, &b->out2);
        }
        m_alloc(s, B * N * b->ff_in.out); m_linear(s, B * N, &b->ff_in); m_linear(s, B * N, &b->ff_out); m_free(s, B * N * b->ff_in.out);
        if (!b->pre_only) {
            m_alloc(s, B * S * b->ffc_in.out); m_linear(s, B * S, &b->ffc_in); m_linear(s, B * S, &b->ffc_out); m_free(s, B * S * b->ffc_in.out);
        }
        m_free(s, e1); m_free(s, e2); m_free(s, B * N * D); m_free(s, B * S * D);
        if (b->dual) m_free(s, B * N * D);
        for (int t = 0; t < 4; t++) m_free(s, B * J * D);
        m_free(s, B * N * D); m_free(s, B * S * D);
    }
    double po = B * N * p * p * m->out_channels;
    m_alloc(s, B * 2 * D); m_alloc(s, B * N * D); m_alloc(s, po);
    m_linear(s, B, &m->norm_out); m_linear(s, B * N, &m->proj_out);
    m_free(s, B * D * N); m_free(s, B * N * D); m_free(s, B * 256.0); m_free(s, B * D); m_free(s, B * D); m_free(s, B * D);
    m_free(s, B * S * D); m_free(s, B * 2 * D); m_free(s, B * N * D); m_free(s, po);
}

/* models/vae.c locus_vae_decode (mid block, ping-pong buffers a/b), inside locus_pipeline_decode's z */
static void m_vae_decode(msim *s, const locus_vae *v, int h, int w) {
    const vae_coder *d = &v->dec;
    int nb = v->nblocks, f = 1 << (nb - 1), C = v->block_out[nb - 1], H = h, W = w;
    double maxN = 0, zz = (double)v->latent_channels * h * w;
    for (int i = 0; i < nb; i++) { double n = (double)v->block_out[i] * H * f * W * f; if (n > maxN) maxN = n; }
    m_alloc(s, zz); m_alloc(s, maxN); m_alloc(s, maxN);
    if (v->use_post_quant_conv) m_conv(s, v->latent_channels, v->latent_channels, 1, (double)H * W);
    m_conv(s, v->latent_channels, C, 3, (double)H * W);
    double N = (double)C * H * W;
    m_alloc(s, N);
    m_resnet(s, &d->mid.res[0], 1, H, W, 0);
    if (d->mid.has_attn) {
        m_alloc(s, N); m_alloc(s, N); m_alloc(s, N);
        m_attn(s, &d->mid.attn, 1, (double)H * W, (double)H * W);
        m_free(s, N); m_free(s, N); m_free(s, N);
    }
    m_resnet(s, &d->mid.res[1], 1, H, W, 0);
    m_free(s, N);
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j < v->layers + 1; j++) m_resnet(s, &d->res[i][j], 1, H, W, 0);
        C = d->cout[i];
        if (d->has_sample[i]) { H *= 2; W *= 2; m_conv(s, C, C, 3, (double)H * W); }
    }
    m_conv(s, C, v->out_channels, 3, (double)H * W);
    m_free(s, zz); m_free(s, maxN); m_free(s, maxN);
}

/* models/textenc.c locus_textenc_forward (B = 1, T tokens; pooled output when `pooled`) */
static void m_textenc(msim *s, const locus_textenc *t, double T, int pooled) {
    double inner = (double)t->heads * t->dim_head, D = t->D, bufs[8] = {T * D, T * D, T * (inner > D ? inner : D), T * inner, T * inner, T * inner, T * t->ffn, T * T};
    int nbuf = t->kind == LOCUS_TEXT_CLIP ? 8 : 7;
    for (int i = 0; i < nbuf; i++) m_alloc(s, bufs[i]);
    const textenc_layer *y = &t->layers[0];
    if (t->nlayers > 0) {
        m_linear(s, T, &y->q); m_linear(s, T, &y->k); m_linear(s, T, &y->v);
        m_attention(s, 1, t->heads, T, T, t->dim_head);
        m_linear(s, T, &y->o); m_linear(s, T, &y->fc1); m_linear(s, T, &y->fc2);
    }
    if (pooled && t->kind == LOCUS_TEXT_CLIP) { m_alloc(s, D); if (t->proj.w || t->proj.wp) m_linear(s, 1, &t->proj); m_free(s, D); }
    for (int i = 0; i < nbuf; i++) m_free(s, bufs[i]);
}

/* models/t5.c locus_t5_forward (B = 1, no padding mask) */
static void m_t5(msim *s, const locus_t5 *t, double T) {
    double inner = (double)t->heads * t->dkv, bufs[9] = {T * t->D, T * t->D, T * inner, T * inner, T * inner, T * inner, T * t->dff, T * t->dff, t->heads * T * T};
    for (int i = 0; i < 9; i++) m_alloc(s, bufs[i]);
    if (t->nlayers > 0) {
        const t5_block *b = &t->blocks[0];
        m_linear(s, T, &b->q); m_linear(s, T, &b->k); m_linear(s, T, &b->v);
        m_attention(s, 1, t->heads, T, T, t->dkv);
        m_linear(s, T, &b->o); m_linear(s, T, &b->wi0); m_linear(s, T, &b->wi1); m_linear(s, T, &b->wo);
    }
    for (int i = 0; i < 9; i++) m_free(s, bufs[i]);
}

/* bytes of every weight buffer a loader holds (exact: the blocks' accounted sizes) */
static double loader_bytes(const locus_loader *L) {
    double b = 0;
    for (size_t i = 0; i < L->nbufs; i++) b += (double)locus_alloc_size(L->bufs[i]);
    return b;
}

size_t locus_pipeline_peak_estimate_parts(const locus_pipeline *p, int W, int H, int text_tokens, int threads, size_t parts[4]) {
    int sd3 = p->kind == LOCUS_PIPE_SD3, xl = p->kind == LOCUS_PIPE_SDXL, f = p->vae_factor, h = H / f, w = W / f, B = 2; /* CFG pair */
    int P = p->den.pooled_dim, mmdit = p->den.ops == &locus_mmdit_denoiser_ops, ifu = p->den.ops == &locus_if_unet_denoiser_ops;
    double weights = loader_bytes(&p->vae.L) + loader_bytes(p->den.loader);
    if (p->has_text) weights += loader_bytes(&p->text.L);
    if (p->has_text2) weights += loader_bytes(&p->text2.L);
    if (p->has_t5) weights += loader_bytes(&p->t5.L);
    int S = text_tokens, C = locus_pipeline_latent_channels(p);
    double ctxw = p->den.ctx_dim, n = (double)C * h * w, nout = (double)p->den.out_channels * h * w, peak[3];
    msim s = {0, 0, threads > 0 ? threads : 1};
    /* 1. prompt and negative prompt encoded one after the other (experiments/run.c locus_embeds_encode): the
     * second pass runs with both embeddings held */
    for (int i = 0; i < 2; i++) {
        m_alloc(&s, S * ctxw);
        if (P) m_alloc(&s, P);
    }
    if ((sd3 || xl) && p->has_text && p->has_text2) { /* models/pipeline.c locus_pipeline_encode_prompt_sd3 / _sdxl */
        m_alloc(&s, 77.0 * p->text.D); m_alloc(&s, 77.0 * p->text2.D);
        m_textenc(&s, &p->text, 77, 1); m_textenc(&s, &p->text2, 77, 1);
        if (p->has_t5) m_t5(&s, &p->t5, S - 77);
        m_free(&s, 77.0 * p->text.D); m_free(&s, 77.0 * p->text2.D);
    } else if (p->kind == LOCUS_PIPE_IF && p->has_t5) { /* models/pipeline_if.c: T5 on 77 ids */
        m_t5(&s, &p->t5, S);
    } else if (!sd3 && !xl && p->has_text) { /* models/textenc.c locus_textenc_clip_skip (a hidden-state copy when k > 0) */
        double T = p->text.maxpos < 77 ? p->text.maxpos : 77, hs = p->clip_skip > 0 ? T * p->text.D : 0;
        if (hs) m_alloc(&s, hs);
        m_textenc(&s, &p->text, T, 0);
        if (hs) m_free(&s, hs);
    }
    peak[0] = s.peak;
    /* 2. sampling (models/sampler.c): the latent, the CFG batch, predictions, guided prediction, contexts */
    s.peak = s.live;
    m_alloc(&s, n);
    double sb[5] = {B * n, B * nout, nout, B * S * ctxw, (double)B * P};
    if (p->den.pooled_extra) { m_alloc(&s, P); m_alloc(&s, P); } /* experiments/run.c: pooled completed with the size conditioning */
    for (int i = 0; i < (P ? 5 : 4); i++) m_alloc(&s, sb[i]);
    m_alloc(&s, n); /* the latent entering each step (models/sampler.c: to re-run a step that went non-finite) */
    if (mmdit) m_mmdit(&s, p->den.model, B, h, w, S); /* each family's forward, replayed */
    else if (ifu) m_if_unet(&s, p->den.model, B, h, w, S);
    else m_unet(&s, p->den.model, B, h, w, S);
    for (int i = 0; i < (P ? 5 : 4); i++) m_free(&s, sb[i]);
    m_free(&s, n);
    peak[1] = s.peak;
    /* 3. decode (experiments/run.c locus_run_image, models/pipeline.c locus_pipeline_decode) */
    s.peak = s.live;
    m_alloc(&s, 3.0 * H * W);
    if (p->kind != LOCUS_PIPE_IF) { /* IF: no VAE, the sample is copied */
        m_alloc(&s, n);
        m_vae_decode(&s, &p->vae, h, w);
    }
    peak[2] = s.peak;
    double top = 0;
    for (int i = 0; i < 3; i++) top = peak[i] > top ? peak[i] : top;
    if (parts) {
        parts[0] = (size_t)weights;
        for (int i = 0; i < 3; i++) parts[i + 1] = (size_t)peak[i];
    }
    return (size_t)(weights + top);
}

size_t locus_pipeline_peak_estimate(const locus_pipeline *p, int W, int H, int text_tokens, int threads) {
    return locus_pipeline_peak_estimate_parts(p, W, H, text_tokens, threads, NULL);
}
