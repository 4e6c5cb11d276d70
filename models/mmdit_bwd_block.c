/* mmdit_bwd_block.c — one SD3/SD3.5 joint transformer block for training: the forward that records its
 * activations (locus_mmdit_block_acts, mmdit_bwd.h) and its hand-written backward.
 *
 * Why a second forward: mmdit.c's block keeps nothing; this one performs the SAME kernel calls on the same
 * values in the same order (so its outputs are bit-identical to locus_mmdit_forward) and keeps every tensor
 * the backward reads.  The backward walks the block in reverse; every accumulation (residual streams, the
 * AdaLN parameter chunks, dnh = sum over q/k/v, weight gradients) happens in one fixed order, so the
 * gradients have the same bits for any thread count and ISA (the kernels of simd/ops_bwd.h do the rest).
 *
 * Block (diffusers JointTransformerBlock, v0.31), image stream h [B,N,D], context c [B,S,D]:
 *   e1 = norm1.linear(silu temb), e2 = norm1_context.linear(silu temb)   chunks of D per sample
 *   nh = LN(h)(1+scale_msa)+shift_msa;  nc likewise (pre_only: AdaLayerNormContinuous, chunks (scale, shift))
 *   joint attention over [image | context] of to_q/k/v(nh), add_q/k/v_proj(nc) (optional RMS qk-norm)
 *   h += gate_msa * to_out.0(o_img);  dual: h += gate_msa2 * attn2(nh2)
 *   h += gate_mlp * ff(LN(h)(1+scale_mlp)+shift_mlp)      (FeedForward with GELU-tanh)
 *   not pre_only: c += c_gate_msa * to_add_out(o_ctx);  c += c_gate_mlp * ff_context(LN(c)(1+..)+..)
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops_bwd.h"
#include "mmdit_bwd.h"
#include "nn_bwd.h"

#define EPS_LN 1e-6f  /* AdaLayerNormZero / AdaLayerNormContinuous LayerNorm eps */
#define EPS_QK 1e-6f  /* RMSNorm eps of the qk-norm */

/* Bump layout of float buffers in one allocation: a first pass with base NULL counts, a second assigns. */
typedef struct {
    float *base;
    size_t used;
} carve;
static float *carve_take(carve *c, size_t n) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15; /* 64-byte aligned sub-buffers */
    return p;
}
static float *carve_alloc(carve *c) {
    c->base = locus_alloc((c->used ? c->used : 1) * sizeof(float));
    c->used = 0;
    return c->base;
}

/* ---- forward pieces: the exact operation sequences of mmdit.c ---- */

/* y[b,t,:] = LN(x[b,t,:]) * (1 + scale[b]) + shift[b] (no affine, eps 1e-6); scale/shift rows have stride es;
 * s1 [D] scratch.  mmdit.c modulate(). */
static void modulate(const float *x, float *y, int B, int T, int D, const float *scale, const float *shift, size_t es, float *s1) {
    locus_layer_norm(x, y, (size_t)B * T, D, NULL, NULL, EPS_LN);
    for (int b = 0; b < B; b++) {
        for (int d = 0; d < D; d++) s1[d] = 1.0f + scale[b * es + d];
        for (int t = 0; t < T; t++) {
            float *r = y + ((size_t)b * T + t) * D;
            locus_binary(r, s1, r, D, LOCUS_BIN_MUL, 0.0f);
            locus_binary(r, shift + b * es, r, D, LOCUS_BIN_ADD, 0.0f);
        }
    }
}

/* h[b,t,:] += gate[b] * o[b,t,:]; t [D] scratch.  mmdit.c gated_add(). */
static void gated_add(float *h, const float *o, int B, int T, int D, const float *gate, size_t es, float *t) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++) {
            float *hr = h + ((size_t)b * T + i) * D;
            locus_binary(gate + b * es, o + ((size_t)b * T + i) * D, t, D, LOCUS_BIN_MUL, 0.0f);
            locus_binary(hr, t, hr, D, LOCUS_BIN_ADD, 0.0f);
        }
}

/* One stream's projection into the joined [B,J,D] layout at token offset `off`: raw[B,T,D] = l(x), then
 * dst rows = rms_norm(raw) (w != NULL) or raw.  mmdit.c: nn_linear_fwd + qk_rms + the join copies. */
static void proj_join(const nn_linear *l, const float *x, int B, int T, int J, int off, int D, int hd, const float *w, float *raw,
                      float *dst) {
    nn_linear_fwd(l, x, B * T, raw);
    for (int b = 0; b < B; b++) {
        const float *src = raw + (size_t)b * T * D;
        float *d = dst + ((size_t)b * J + off) * D;
        if (w) locus_rms_norm(src, d, (size_t)T * (D / hd), hd, w, EPS_QK);
        else memcpy(d, src, (size_t)T * D * sizeof(float));
    }
}

/* FeedForward(gelu-tanh): hpre[M,4D] = net.0.proj(x); y[M,D] = net.2(gelu_tanh(hpre)); g [M,4D] scratch. */
static void ff_fwd(const nn_linear *in, const nn_linear *out, const float *x, int M, float *hpre, float *g, float *y) {
    nn_linear_fwd(in, x, M, hpre);
    locus_act(hpre, g, (size_t)M * in->out, LOCUS_ACT_GELU_TANH);
    nn_linear_fwd(out, g, M, y);
}

/* Lays out a's slab (carve pass) for block b; the sizes depend only on the block's kind and B, N, S. */
static void acts_layout(const locus_mmdit *m, const mmdit_block *b, locus_mmdit_block_acts *a, carve *c, int B, int N, int S) {
    size_t D = (size_t)m->D, ND = (size_t)B * N * D, SD = (size_t)B * S * D, JD = ND + SD;
    int qk = m->qk_norm;
    a->e1 = carve_take(c, (size_t)B * (b->dual ? 9 : 6) * D);
    a->e2 = carve_take(c, (size_t)B * (b->pre_only ? 2 : 6) * D);
    a->nh = carve_take(c, ND);
    a->nc = carve_take(c, SD);
    a->qi_raw = qk ? carve_take(c, ND) : NULL;
    a->ki_raw = qk ? carve_take(c, ND) : NULL;
    a->qc_raw = qk ? carve_take(c, SD) : NULL;
    a->kc_raw = qk ? carve_take(c, SD) : NULL;
    a->q = carve_take(c, JD);
    a->k = carve_take(c, JD);
    a->v = carve_take(c, JD);
    a->o = carve_take(c, JD);
    a->ao = carve_take(c, ND);
    a->co = b->pre_only ? NULL : carve_take(c, SD);
    a->nh2 = b->dual ? carve_take(c, ND) : NULL;
    a->q2_raw = b->dual && qk ? carve_take(c, ND) : NULL;
    a->k2_raw = b->dual && qk ? carve_take(c, ND) : NULL;
    a->q2 = b->dual ? carve_take(c, ND) : NULL;
    a->k2 = b->dual ? carve_take(c, ND) : NULL;
    a->v2 = b->dual ? carve_take(c, ND) : NULL;
    a->o2 = b->dual ? carve_take(c, ND) : NULL;
    a->ao2 = b->dual ? carve_take(c, ND) : NULL;
    a->h_ff = carve_take(c, ND);
    a->nhf = carve_take(c, ND);
    a->ffh = carve_take(c, 4 * ND);
    a->ffo = carve_take(c, ND);
    a->c_ff = b->pre_only ? NULL : carve_take(c, SD);
    a->ncf = b->pre_only ? NULL : carve_take(c, SD);
    a->ffch = b->pre_only ? NULL : carve_take(c, 4 * SD);
    a->ffco = b->pre_only ? NULL : carve_take(c, SD);
}

locus_status locus_mmdit_block_fwd_train(const locus_mmdit *m, int i, locus_mmdit_block_acts *a, int B, int N, int S,
                                         const float *temb_act, float *h_out, float *c_out) {
    const mmdit_block *b = &m->blocks[i];
    int D = m->D, hd = m->head_dim, J = N + S, T = N > S ? N : S;
    carve c = {0};
    acts_layout(m, b, a, &c, B, N, S);
    if (!carve_alloc(&c)) return locus_fail(LOCUS_E_NOMEM, "mmdit training forward: out of memory for block %d's activations", i);
    a->slab = c.base;
    acts_layout(m, b, a, &c, B, N, S);
    /* scratch: raw projections without qk-norm [B,T,D], the ff GELU output [B,T,4D], two rows [D] */
    float *sc = locus_alloc(((size_t)B * T * D * 5 + 2 * (size_t)D) * sizeof(float));
    if (!sc) return locus_fail(LOCUS_E_NOMEM, "mmdit training forward: out of memory in block %d", i);
    float *raw = sc /* [B,T,D] */, *gel = sc + (size_t)B * T * D /* [B,T,4D] */, *row = gel + (size_t)B * T * 4 * D /* [2D] */;
    int k1 = b->dual ? 9 : 6, k2 = b->pre_only ? 2 : 6;
    size_t s1 = (size_t)k1 * D, s2 = (size_t)k2 * D;
    nn_linear_fwd(&b->norm1, temb_act, B, a->e1);
    nn_linear_fwd(&b->norm1_ctx, temb_act, B, a->e2);
    /* e1 chunks: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp[, shift_msa2, scale_msa2, gate_msa2] */
    modulate(a->h_in, a->nh, B, N, D, a->e1 + D, a->e1, s1, row);
    if (b->dual) modulate(a->h_in, a->nh2, B, N, D, a->e1 + 7 * D, a->e1 + 6 * D, s1, row);
    if (b->pre_only) modulate(a->c_in, a->nc, B, S, D, a->e2, a->e2 + D, s2, row); /* (scale, shift) */
    else modulate(a->c_in, a->nc, B, S, D, a->e2 + D, a->e2, s2, row);
    /* joint attention over [image | context] */
    proj_join(&b->q, a->nh, B, N, J, 0, D, hd, b->nq, b->nq ? a->qi_raw : raw, a->q);
    proj_join(&b->k, a->nh, B, N, J, 0, D, hd, b->nk, b->nk ? a->ki_raw : raw, a->k);
    proj_join(&b->v, a->nh, B, N, J, 0, D, hd, NULL, raw, a->v);
    proj_join(&b->aq, a->nc, B, S, J, N, D, hd, b->naq, b->naq ? a->qc_raw : raw, a->q);
    proj_join(&b->ak, a->nc, B, S, J, N, D, hd, b->nak, b->nak ? a->kc_raw : raw, a->k);
    proj_join(&b->av, a->nc, B, S, J, N, D, hd, NULL, raw, a->v);
    locus_attn_desc d = {B, m->heads, J, J, hd, a->q, (ptrdiff_t)J * D, D, a->k, (ptrdiff_t)J * D, D, a->v, (ptrdiff_t)J * D, D,
                         a->o, (ptrdiff_t)J * D, D, 1.0f / sqrtf((float)hd), NULL, 0, 0, NULL};
    locus_attention(&d);
    for (int bb = 0; bb < B; bb++) {
        nn_linear_fwd(&b->out, a->o + (size_t)bb * J * D, N, a->ao + (size_t)bb * N * D);
        if (!b->pre_only) nn_linear_fwd(&b->add_out, a->o + (size_t)bb * J * D + (size_t)N * D, S, a->co + (size_t)bb * S * D);
    }
    memcpy(a->h_ff, a->h_in, (size_t)B * N * D * sizeof(float));
    gated_add(a->h_ff, a->ao, B, N, D, a->e1 + 2 * D, s1, row);
    if (b->dual) { /* SD3.5: second self-attention on the image tokens */
        proj_join(&b->q2, a->nh2, B, N, N, 0, D, hd, b->nq2, b->nq2 ? a->q2_raw : raw, a->q2);
        proj_join(&b->k2, a->nh2, B, N, N, 0, D, hd, b->nk2, b->nk2 ? a->k2_raw : raw, a->k2);
        proj_join(&b->v2, a->nh2, B, N, N, 0, D, hd, NULL, raw, a->v2);
        locus_attn_desc d2 = {B, m->heads, N, N, hd, a->q2, (ptrdiff_t)N * D, D, a->k2, (ptrdiff_t)N * D, D, a->v2, (ptrdiff_t)N * D, D,
                              a->o2, (ptrdiff_t)N * D, D, 1.0f / sqrtf((float)hd), NULL, 0, 0, NULL};
        locus_attention(&d2);
        nn_linear_fwd(&b->out2, a->o2, B * N, a->ao2);
        gated_add(a->h_ff, a->ao2, B, N, D, a->e1 + 8 * D, s1, row);
    }
    /* feed-forward, image stream */
    modulate(a->h_ff, a->nhf, B, N, D, a->e1 + 4 * D, a->e1 + 3 * D, s1, row);
    ff_fwd(&b->ff_in, &b->ff_out, a->nhf, B * N, a->ffh, gel, a->ffo);
    memcpy(h_out, a->h_ff, (size_t)B * N * D * sizeof(float));
    gated_add(h_out, a->ffo, B, N, D, a->e1 + 5 * D, s1, row);
    if (!b->pre_only) {
        memcpy(a->c_ff, a->c_in, (size_t)B * S * D * sizeof(float));
        gated_add(a->c_ff, a->co, B, S, D, a->e2 + 2 * D, s2, row);
        modulate(a->c_ff, a->ncf, B, S, D, a->e2 + 4 * D, a->e2 + 3 * D, s2, row);
        ff_fwd(&b->ffc_in, &b->ffc_out, a->ncf, B * S, a->ffch, gel, a->ffco);
        memcpy(c_out, a->c_ff, (size_t)B * S * D * sizeof(float));
        gated_add(c_out, a->ffco, B, S, D, a->e2 + 5 * D, s2, row);
    } else if (c_out != a->c_in) {
        memcpy(c_out, a->c_in, (size_t)B * S * D * sizeof(float));
    }
    locus_free(sc);
    return LOCUS_OK;
}

/* ---- backward pieces ---- */

/* Scratch of one block backward (one allocation). */
typedef struct {
    float *de1, *de2;      /* [B,k1*D], [B,k2*D] gradients of the AdaLN chunks */
    float *ta, *tb;        /* [B,T,D] scratch (LayerNorm recompute, products), T = max(N,S) */
    float *dn;             /* [B,T,D] gradient of a modulated norm output */
    float *dffo;           /* [B,T,D] gradient of an ff output */
    float *fg, *fdg;       /* [B,T,4D] GELU output / gradient of the GELU input */
    float *dao, *dao2;     /* [B,N,D] gradients of attn:0 and attn2 */
    float *dco;            /* [B,S,D] gradient of attn:1 */
    float *dO, *dQ, *dK, *dV; /* [B,J,D] attention gradients (dual: [B,N,D] layout) */
    float *dsplit, *draw;  /* [B,T,D] one stream's q/k/v gradient, and before its qk-norm */
    float *row;            /* [D] */
} bwd_scratch;

static void scratch_layout(bwd_scratch *s, carve *c, int B, int N, int S, int D, int k1, int k2) {
    size_t T = (size_t)(N > S ? N : S), TD = (size_t)B * T * D, ND = (size_t)B * N * D, SD = (size_t)B * S * D;
    s->de1 = carve_take(c, (size_t)B * k1 * D);
    s->de2 = carve_take(c, (size_t)B * k2 * D);
    s->ta = carve_take(c, TD);
    s->tb = carve_take(c, TD);
    s->dn = carve_take(c, TD);
    s->dffo = carve_take(c, TD);
    s->fg = carve_take(c, 4 * TD);
    s->fdg = carve_take(c, 4 * TD);
    s->dao = carve_take(c, ND);
    s->dao2 = carve_take(c, ND);
    s->dco = carve_take(c, SD);
    s->dO = carve_take(c, ND + SD);
    s->dQ = carve_take(c, ND + SD);
    s->dK = carve_take(c, ND + SD);
    s->dV = carve_take(c, ND + SD);
    s->dsplit = carve_take(c, TD);
    s->draw = carve_take(c, TD);
    s->row = carve_take(c, (size_t)D);
}

/* Backward of y = LN(x) * (1 + scale[b]) + shift[b] (modulate) for dy[B,T,D]:
 *   dshift[b] = sum_t dy[b,t]     dscale[b] = sum_t dy[b,t] * LN(x)[b,t]    (column chains over t in order)
 *   dx (+)= LayerNorm_bwd(x, dy * (1 + scale[b]))
 * dscale/dshift rows have stride es; ln, p [B*T*D] and s1 [D] are scratch. */
static void modulate_bwd(const float *x, const float *dy, int B, int T, int D, const float *scale, size_t es, float *dscale,
                         float *dshift, float *dx, int accum, float *ln, float *p, float *s1) {
    size_t TD = (size_t)T * D;
    locus_layer_norm(x, ln, (size_t)B * T, D, NULL, NULL, EPS_LN);
    locus_binary(dy, ln, p, (size_t)B * TD, LOCUS_BIN_MUL, 0.0f);
    for (int b = 0; b < B; b++) {
        locus_colsum(dy + b * TD, T, D, D, dshift + b * es, 0);
        locus_colsum(p + b * TD, T, D, D, dscale + b * es, 0);
        for (int d = 0; d < D; d++) s1[d] = 1.0f + scale[b * es + d];
        for (int t = 0; t < T; t++) locus_binary(dy + b * TD + (size_t)t * D, s1, p + b * TD + (size_t)t * D, D, LOCUS_BIN_MUL, 0.0f);
    }
    locus_layer_norm_bwd(x, p, (size_t)B * T, D, NULL, EPS_LN, dx, accum, NULL, NULL, 0);
}

/* Backward of h += gate[b] * o for dh[B,T,D]: dgate[b] = sum_t dh * o (column chain over t), do = dh * gate[b].
 * p [B*T*D] scratch. */
static void gate_bwd(const float *dh, const float *o, int B, int T, int D, const float *gate, size_t es, float *dgate, float *dout,
                     float *p) {
    size_t TD = (size_t)T * D;
    locus_binary(dh, o, p, (size_t)B * TD, LOCUS_BIN_MUL, 0.0f);
    for (int b = 0; b < B; b++) {
        locus_colsum(p + b * TD, T, D, D, dgate + b * es, 0);
        for (int t = 0; t < T; t++)
            locus_binary(dh + b * TD + (size_t)t * D, gate + b * es, dout + b * TD + (size_t)t * D, D, LOCUS_BIN_MUL, 0.0f);
    }
}

/* Backward of y = net.2(gelu_tanh(net.0.proj(x))) for dy[M,D]: dx[M,D] written; g, dg [M,4D] scratch. */
static void ff_bwd(const nn_linear *in, const nn_linear *out, const float *x, const float *hpre, int M, const float *dy, float *dx,
                   float *g, float *dg, const locus_grads *gr) {
    size_t n = (size_t)M * in->out;
    locus_act(hpre, g, n, LOCUS_ACT_GELU_TANH);
    nn_linear_bwd(out, g, M, dy, dg, 0, gr);
    locus_act_bwd(hpre, dg, g, n, LOCUS_ACT_GELU_TANH, 0);
    nn_linear_bwd(in, x, M, g, dx, 0, gr);
}

/* Backward of proj_join for one stream: dj[B,J,D] holds the attention-input gradient; its rows of this
 * stream (offset off, T tokens) go back through the qk-norm (raw, w; its weight gradient into g) and the
 * projection l (input x[B,T,D]) into dx[B,T,D] (accumulated when accum). */
static void proj_join_bwd(const nn_linear *l, const float *x, const float *dj, int B, int T, int J, int off, int D, int hd, const float *w,
                          const float *raw, float *dx, int accum, bwd_scratch *s, const locus_grads *g) {
    for (int b = 0; b < B; b++)
        memcpy(s->dsplit + (size_t)b * T * D, dj + ((size_t)b * J + off) * D, (size_t)T * D * sizeof(float));
    const float *dy = s->dsplit;
    if (w) {
        locus_rms_norm_bwd(raw, s->dsplit, (size_t)B * T * (D / hd), hd, w, EPS_QK, s->draw, 0, locus_grads_of(g, w), 1);
        dy = s->draw;
    }
    nn_linear_bwd(l, x, B * T, dy, dx, accum, g);
}

locus_status locus_mmdit_block_bwd(const locus_mmdit *m, int i, const locus_mmdit_block_acts *a, int B, int N, int S,
                                   const float *temb_act, float *dh, float *dc, float *dtemb_act, const locus_grads *g) {
    assert(a->slab && a->h_in && a->c_in); /* the block's forward ran (or was re-run) */
    const mmdit_block *b = &m->blocks[i];
    int D = m->D, hd = m->head_dim, J = N + S, k1 = b->dual ? 9 : 6, k2 = b->pre_only ? 2 : 6;
    size_t s1 = (size_t)k1 * D, s2 = (size_t)k2 * D;
    bwd_scratch s;
    carve c = {0};
    scratch_layout(&s, &c, B, N, S, D, k1, k2);
    if (!carve_alloc(&c)) return locus_fail(LOCUS_E_NOMEM, "mmdit backward: out of memory in block %d", i);
    scratch_layout(&s, &c, B, N, S, D, k1, k2);
    memset(s.de1, 0, (size_t)B * s1 * sizeof(float));
    memset(s.de2, 0, (size_t)B * s2 * sizeof(float));
    /* image feed-forward: h_out = h_ff + gate_mlp * ff(norm2(h_ff)) */
    gate_bwd(dh, a->ffo, B, N, D, a->e1 + 5 * D, s1, s.de1 + 5 * D, s.dffo, s.ta);
    ff_bwd(&b->ff_in, &b->ff_out, a->nhf, a->ffh, B * N, s.dffo, s.dn, s.fg, s.fdg, g);
    modulate_bwd(a->h_ff, s.dn, B, N, D, a->e1 + 4 * D, s1, s.de1 + 4 * D, s.de1 + 3 * D, dh, 1, s.ta, s.tb, s.row);
    /* dh = d h_ff; the attention residuals: h_ff = h_in + gate_msa * ao (+ gate_msa2 * ao2) */
    gate_bwd(dh, a->ao, B, N, D, a->e1 + 2 * D, s1, s.de1 + 2 * D, s.dao, s.ta);
    if (b->dual) gate_bwd(dh, a->ao2, B, N, D, a->e1 + 8 * D, s1, s.de1 + 8 * D, s.dao2, s.ta);
    if (!b->pre_only) { /* context: c_out = c_ff + c_gate_mlp * ff_context(norm2_context(c_ff)), c_ff = c_in + c_gate_msa * co */
        gate_bwd(dc, a->ffco, B, S, D, a->e2 + 5 * D, s2, s.de2 + 5 * D, s.dffo, s.ta);
        ff_bwd(&b->ffc_in, &b->ffc_out, a->ncf, a->ffch, B * S, s.dffo, s.dn, s.fg, s.fdg, g);
        modulate_bwd(a->c_ff, s.dn, B, S, D, a->e2 + 4 * D, s2, s.de2 + 4 * D, s.de2 + 3 * D, dc, 1, s.ta, s.tb, s.row);
        gate_bwd(dc, a->co, B, S, D, a->e2 + 2 * D, s2, s.de2 + 2 * D, s.dco, s.ta);
    }
    if (b->dual) { /* attn2 on nh2 = LN(h_in)(1 + scale_msa2) + shift_msa2 */
        nn_linear_bwd(&b->out2, a->o2, B * N, s.dao2, s.dO, 0, g);
        locus_attn_desc d2 = {B, m->heads, N, N, hd, a->q2, (ptrdiff_t)N * D, D, a->k2, (ptrdiff_t)N * D, D, a->v2, (ptrdiff_t)N * D, D,
                              a->o2, (ptrdiff_t)N * D, D, 1.0f / sqrtf((float)hd), NULL, 0, 0, NULL};
        locus_attention_bwd(&d2, s.dO, s.dQ, s.dK, s.dV, 0);
        proj_join_bwd(&b->q2, a->nh2, s.dQ, B, N, N, 0, D, hd, b->nq2, a->q2_raw, s.dn, 0, &s, g);
        proj_join_bwd(&b->k2, a->nh2, s.dK, B, N, N, 0, D, hd, b->nk2, a->k2_raw, s.dn, 1, &s, g);
        proj_join_bwd(&b->v2, a->nh2, s.dV, B, N, N, 0, D, hd, NULL, NULL, s.dn, 1, &s, g);
        modulate_bwd(a->h_in, s.dn, B, N, D, a->e1 + 7 * D, s1, s.de1 + 7 * D, s.de1 + 6 * D, dh, 1, s.ta, s.tb, s.row);
    }
    /* joint attention: o's image rows -> to_out.0, context rows -> to_add_out (pre_only: unused, zero gradient) */
    for (int bb = 0; bb < B; bb++) {
        float *dOb = s.dO + (size_t)bb * J * D;
        nn_linear_bwd(&b->out, a->o + (size_t)bb * J * D, N, s.dao + (size_t)bb * N * D, dOb, 0, g);
        if (!b->pre_only)
            nn_linear_bwd(&b->add_out, a->o + (size_t)bb * J * D + (size_t)N * D, S, s.dco + (size_t)bb * S * D, dOb + (size_t)N * D, 0, g);
        else
            memset(dOb + (size_t)N * D, 0, (size_t)S * D * sizeof(float));
    }
    locus_attn_desc d = {B, m->heads, J, J, hd, a->q, (ptrdiff_t)J * D, D, a->k, (ptrdiff_t)J * D, D, a->v, (ptrdiff_t)J * D, D,
                         a->o, (ptrdiff_t)J * D, D, 1.0f / sqrtf((float)hd), NULL, 0, 0, NULL};
    locus_attention_bwd(&d, s.dO, s.dQ, s.dK, s.dV, 0);
    proj_join_bwd(&b->q, a->nh, s.dQ, B, N, J, 0, D, hd, b->nq, a->qi_raw, s.dn, 0, &s, g);
    proj_join_bwd(&b->k, a->nh, s.dK, B, N, J, 0, D, hd, b->nk, a->ki_raw, s.dn, 1, &s, g);
    proj_join_bwd(&b->v, a->nh, s.dV, B, N, J, 0, D, hd, NULL, NULL, s.dn, 1, &s, g);
    modulate_bwd(a->h_in, s.dn, B, N, D, a->e1 + D, s1, s.de1 + D, s.de1, dh, 1, s.ta, s.tb, s.row);
    proj_join_bwd(&b->aq, a->nc, s.dQ, B, S, J, N, D, hd, b->naq, a->qc_raw, s.dn, 0, &s, g);
    proj_join_bwd(&b->ak, a->nc, s.dK, B, S, J, N, D, hd, b->nak, a->kc_raw, s.dn, 1, &s, g);
    proj_join_bwd(&b->av, a->nc, s.dV, B, S, J, N, D, hd, NULL, NULL, s.dn, 1, &s, g);
    if (b->pre_only) modulate_bwd(a->c_in, s.dn, B, S, D, a->e2, s2, s.de2, s.de2 + D, dc, 1, s.ta, s.tb, s.row);
    else modulate_bwd(a->c_in, s.dn, B, S, D, a->e2 + D, s2, s.de2 + D, s.de2, dc, 1, s.ta, s.tb, s.row);
    /* AdaLN linears on silu(temb) */
    nn_linear_bwd(&b->norm1, temb_act, B, s.de1, dtemb_act, 1, g);
    nn_linear_bwd(&b->norm1_ctx, temb_act, B, s.de2, dtemb_act, 1, g);
    locus_free(c.base);
    return LOCUS_OK;
}
