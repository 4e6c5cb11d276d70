/* mmdit_bwd.c — training pass of SD3Transformer2DModel: the recording forward around the joint blocks
 * (patch embedding, position table, timestep and pooled-text MLPs, context_embedder, norm_out, proj_out,
 * unpatchify), its backward, the tape, and the flow-matching loss (see mmdit_bwd.h).  The joint blocks are
 * in mmdit_bwd_block.c.
 *
 * Forward operations are those of mmdit.c's locus_mmdit_forward, call for call, so the output has the same
 * bits.  Gradient order (fixed): proj_out, norm_out, blocks L-1..0 (each adds its AdaLN gradient into
 * d silu(temb)), context_embedder, the temb SiLU, timestep MLP, pooled-text MLP, patch-embedding conv.
 */
#include "mmdit_bwd.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops_bwd.h"
#include "nn_bwd.h"

#define EPS_LN 1e-6f

struct locus_mmdit_tape {
    int B, H, W, S, N, checkpoint;
    float *x;         /* [B,C,H,W] input sample (copy) */
    float *ctx;       /* [B,S,joint] encoder_hidden_states (copy) */
    float *pooled;    /* [B,P] pooled_projections (copy) */
    float *tp;        /* [B,256] sinusoidal timestep projection */
    float *t_a;       /* [B,D] timestep_embedder.linear_1 output (before SiLU) */
    float *t_s;       /* [B,D] its SiLU */
    float *p_a;       /* [B,D] text_embedder.linear_1 output (before SiLU) */
    float *p_s;       /* [B,D] its SiLU */
    float *temb;      /* [B,D] time_text_embed output (before the SiLU the AdaLN layers apply) */
    float *temb_act;  /* [B,D] silu(temb) */
    float *h_fin;     /* [B,N,D] image stream after the last block */
    float *e_out;     /* [B,2D] norm_out.linear(silu(temb)): (scale, shift) */
    float *nh_out;    /* [B,N,D] norm_out output, input of proj_out */
    locus_mmdit_block_acts *blk; /* [nlayers] */
    int nblk;
};

void locus_mmdit_tape_free(locus_mmdit_tape *t) {
    if (!t) return;
    float **f[] = {&t->x, &t->ctx, &t->pooled, &t->tp, &t->t_a, &t->t_s, &t->p_a, &t->p_s, &t->temb, &t->temb_act,
                   &t->h_fin, &t->e_out, &t->nh_out};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) locus_free(*f[i]);
    for (int i = 0; t->blk && i < t->nblk; i++) {
        locus_free(t->blk[i].h_in);
        locus_free(t->blk[i].c_in);
        locus_free(t->blk[i].slab);
    }
    free(t->blk);
    free(t);
}

static float *dup(const float *src, size_t n) {
    float *p = locus_alloc((n ? n : 1) * sizeof(float));
    if (p && src) memcpy(p, src, n * sizeof(float));
    return p;
}

/* y[b,t,:] = LN(x)(1 + scale[b]) + shift[b]: mmdit.c modulate() (same operations). */
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

/* Index pairs of diffusers' unpatchify: image element [b,ch,r*p+pi,c*p+qi] of [B,C,H,W] <-> token element
 * [b, r*wp+c, (pi*p+qi)*C+ch] of [B,N,p*p*C].  to_img: img = po (forward); else po = img (its gradient). */
static void unpatchify(const float *src, float *dst, int B, int C, int H, int W, int p, int to_img) {
    int hp = H / p, wp = W / p, N = hp * wp;
    for (int b = 0; b < B; b++)
        for (int r = 0; r < hp; r++)
            for (int cc = 0; cc < wp; cc++)
                for (int pi = 0; pi < p; pi++)
                    for (int qi = 0; qi < p; qi++)
                        for (int ch = 0; ch < C; ch++) {
                            size_t io = (((size_t)b * C + ch) * H + r * p + pi) * W + cc * p + qi;
                            size_t ip = (((size_t)b * N + r * wp + cc) * p * p + pi * p + qi) * C + ch;
                            if (to_img) dst[io] = src[ip];
                            else dst[ip] = src[io];
                        }
}

locus_status locus_mmdit_forward_train(const locus_mmdit *m, const float *x, int B, int H, int W, const float *timesteps,
                                       const float *ctx, int S, const float *pooled, float *out, int checkpoint,
                                       locus_mmdit_tape **tape) {
    *tape = NULL;
    int D = m->D, p = m->patch, C = m->out_channels;
    if (B < 1 || S < 1) return locus_fail(LOCUS_E_ARG, "mmdit training forward: batch %d and sequence length %d must be >= 1", B, S);
    if (H < p || W < p || H % p || W % p)
        return locus_fail(LOCUS_E_ARG, "mmdit training forward: sample %dx%d is not a positive multiple of the patch size %d", H, W, p);
    int hp = H / p, wp = W / p, N = hp * wp;
    if (hp > m->pos_max || wp > m->pos_max)
        return locus_fail(LOCUS_E_ARG, "mmdit training forward: %dx%d patches exceed pos_embed_max_size %d", hp, wp, m->pos_max);
    locus_mmdit_tape *t = calloc(1, sizeof *t);
    if (!t) return locus_fail(LOCUS_E_NOMEM, "mmdit training forward: out of memory");
    t->B = B; t->H = H; t->W = W; t->S = S; t->N = N; t->checkpoint = checkpoint;
    t->nblk = m->nlayers;
    t->blk = calloc((size_t)m->nlayers, sizeof *t->blk);
    size_t BD = (size_t)B * D, ND = (size_t)B * N * D, SD = (size_t)B * S * D;
    t->x = dup(x, (size_t)B * m->in_channels * H * W);
    t->ctx = dup(ctx, (size_t)B * S * m->joint_dim);
    t->pooled = dup(pooled, (size_t)B * m->pooled_dim);
    t->tp = dup(NULL, (size_t)B * 256);
    t->t_a = dup(NULL, BD); t->t_s = dup(NULL, BD); t->p_a = dup(NULL, BD); t->p_s = dup(NULL, BD);
    t->temb = dup(NULL, BD); t->temb_act = dup(NULL, BD);
    t->h_fin = dup(NULL, ND); t->e_out = dup(NULL, 2 * BD); t->nh_out = dup(NULL, ND);
    float *pe = dup(NULL, ND) /* [B,D,N] */, *h = dup(NULL, ND) /* [B,N,D] */, *c = dup(NULL, SD) /* [B,S,D] */;
    float *po = dup(NULL, (size_t)B * N * p * p * C) /* [B,N,p*p*C] */, *row = dup(NULL, D) /* [D] */;
    int ok = t->blk && t->x && t->ctx && t->pooled && t->tp && t->t_a && t->t_s && t->p_a && t->p_s && t->temb && t->temb_act &&
             t->h_fin && t->e_out && t->nh_out && pe && h && c && po && row;
    locus_status st = LOCUS_OK;
    if (!ok) { st = locus_fail(LOCUS_E_NOMEM, "mmdit training forward: out of memory"); goto done; }
    /* patch embedding + cropped position table (frozen) */
    nn_conv_fwd(&m->patch_proj, x, B, H, W, pe);
    locus_transpose(pe, h, B, D, N);
    int top = (m->pos_max - hp) / 2, left = (m->pos_max - wp) / 2;
    for (int b = 0; b < B; b++)
        for (int r = 0; r < hp; r++)
            for (int cc = 0; cc < wp; cc++) {
                float *hr = h + ((size_t)b * N + r * wp + cc) * D;
                locus_binary(hr, m->pos_table + ((size_t)(top + r) * m->pos_max + left + cc) * D, hr, D, LOCUS_BIN_ADD, 0.0f);
            }
    /* conditioning: timestep MLP(sinusoid_256(t)) + pooled-text MLP, then silu for the AdaLN layers */
    locus_timestep_embedding(timesteps, B, 256, 1, 0.0f, 1.0f, 10000.0f, t->tp);
    nn_linear_fwd(&m->t1, t->tp, B, t->t_a);
    locus_act(t->t_a, t->t_s, BD, LOCUS_ACT_SILU);
    nn_linear_fwd(&m->t2, t->t_s, B, t->temb);
    nn_linear_fwd(&m->p1, pooled, B, t->p_a);
    locus_act(t->p_a, t->p_s, BD, LOCUS_ACT_SILU);
    float *pt = t->temb_act; /* pooled branch output, then overwritten by silu(temb) as in mmdit.c */
    nn_linear_fwd(&m->p2, t->p_s, B, pt);
    locus_binary(t->temb, pt, t->temb, BD, LOCUS_BIN_ADD, 0.0f);
    locus_act(t->temb, t->temb_act, BD, LOCUS_ACT_SILU);
    nn_linear_fwd(&m->ctx_emb, ctx, B * S, c);
    for (int i = 0; i < m->nlayers; i++) {
        locus_mmdit_block_acts *a = &t->blk[i];
        a->h_in = dup(h, ND);
        a->c_in = dup(c, SD);
        if (!a->h_in || !a->c_in) { st = locus_fail(LOCUS_E_NOMEM, "mmdit training forward: out of memory at block %d", i); goto done; }
        if ((st = locus_mmdit_block_fwd_train(m, i, a, B, N, S, t->temb_act, h, c))) goto done;
        if (checkpoint) { locus_free(a->slab); a->slab = NULL; }
    }
    /* norm_out (AdaLayerNormContinuous: scale, shift) + proj_out + unpatchify */
    memcpy(t->h_fin, h, ND * sizeof(float));
    nn_linear_fwd(&m->norm_out, t->temb_act, B, t->e_out);
    modulate(t->h_fin, t->nh_out, B, N, D, t->e_out, t->e_out + D, (size_t)2 * D, row);
    nn_linear_fwd(&m->proj_out, t->nh_out, B * N, po);
    unpatchify(po, out, B, C, H, W, p, 1);
done:
    locus_free(pe); locus_free(h); locus_free(c); locus_free(po); locus_free(row);
    if (st) locus_mmdit_tape_free(t);
    else *tape = t;
    return st;
}

locus_status locus_mmdit_backward(const locus_mmdit *m, locus_mmdit_tape *t, const float *dout, float *dx, float *dctx,
                                  float *dpooled, const locus_grads *g) {
    assert(t && t->nblk == m->nlayers); /* a tape of this model, not yet consumed */
    int B = t->B, H = t->H, W = t->W, S = t->S, N = t->N, D = m->D, p = m->patch, C = m->out_channels;
    size_t BD = (size_t)B * D, ND = (size_t)B * N * D, SD = (size_t)B * S * D;
    float *dpo = dup(NULL, (size_t)B * N * p * p * C);   /* [B,N,p*p*C] d proj_out output */
    float *dnh = dup(NULL, ND);                           /* [B,N,D] d norm_out output */
    float *dh = dup(NULL, ND);                            /* [B,N,D] d image stream */
    float *dc = dup(NULL, SD);                            /* [B,S,D] d context stream */
    float *de = dup(NULL, 2 * BD);                        /* [B,2D] d norm_out.linear output */
    float *dtemb_act = dup(NULL, BD);                     /* [B,D] d silu(temb) */
    float *dtemb = dup(NULL, BD);                         /* [B,D] d temb */
    float *ds = dup(NULL, BD), *da = dup(NULL, BD);       /* [B,D] d of an MLP's SiLU output / input */
    float *ln = dup(NULL, ND), *pr = dup(NULL, ND);       /* [B,N,D] scratch: LayerNorm recompute, products */
    float *s1 = dup(NULL, D);                             /* [D] 1 + scale */
    float *hs = dup(NULL, ND), *cs = dup(NULL, SD);       /* [B,N,D], [B,S,D] outputs of a re-run block (discarded) */
    float *dpe = dup(NULL, ND);                           /* [B,D,N] d patch-embedding conv output */
    locus_status st = LOCUS_OK;
    if (!dpo || !dnh || !dh || !dc || !de || !dtemb_act || !dtemb || !ds || !da || !ln || !pr || !s1 || !hs || !cs || !dpe) {
        st = locus_fail(LOCUS_E_NOMEM, "mmdit backward: out of memory");
        goto done;
    }
    /* proj_out, then norm_out: nh_out = LN(h_fin)(1 + scale) + shift with e_out = (scale, shift) */
    unpatchify(dout, dpo, B, C, H, W, p, 0);
    nn_linear_bwd(&m->proj_out, t->nh_out, B * N, dpo, dnh, 0, g);
    locus_layer_norm(t->h_fin, ln, (size_t)B * N, D, NULL, NULL, EPS_LN);
    locus_binary(dnh, ln, pr, ND, LOCUS_BIN_MUL, 0.0f);
    for (int b = 0; b < B; b++) {
        size_t o = (size_t)b * N * D;
        locus_colsum(pr + o, N, D, D, de + (size_t)b * 2 * D, 0);      /* d scale */
        locus_colsum(dnh + o, N, D, D, de + (size_t)b * 2 * D + D, 0); /* d shift */
        for (int d = 0; d < D; d++) s1[d] = 1.0f + t->e_out[(size_t)b * 2 * D + d];
        for (int r = 0; r < N; r++) locus_binary(dnh + o + (size_t)r * D, s1, pr + o + (size_t)r * D, D, LOCUS_BIN_MUL, 0.0f);
    }
    locus_layer_norm_bwd(t->h_fin, pr, (size_t)B * N, D, NULL, EPS_LN, dh, 0, NULL, NULL, 0);
    nn_linear_bwd(&m->norm_out, t->temb_act, B, de, dtemb_act, 0, g);
    /* joint blocks, last first (the context stream's output gradient is zero: only the image stream is used) */
    memset(dc, 0, SD * sizeof(float));
    for (int i = m->nlayers - 1; i >= 0; i--) {
        locus_mmdit_block_acts *a = &t->blk[i];
        if (!a->slab && (st = locus_mmdit_block_fwd_train(m, i, a, B, N, S, t->temb_act, hs, cs))) goto done;
        if ((st = locus_mmdit_block_bwd(m, i, a, B, N, S, t->temb_act, dh, dc, dtemb_act, g))) goto done;
        locus_free(a->slab); a->slab = NULL;
        locus_free(a->h_in); a->h_in = NULL;
        locus_free(a->c_in); a->c_in = NULL;
    }
    nn_linear_bwd(&m->ctx_emb, t->ctx, B * S, dc, dctx, 0, g);
    /* temb = t2(silu(t1(tp))) + p2(silu(p1(pooled))); the AdaLN layers read silu(temb) */
    locus_act_bwd(t->temb, dtemb_act, dtemb, BD, LOCUS_ACT_SILU, 0);
    nn_linear_bwd(&m->t2, t->t_s, B, dtemb, ds, 0, g);
    locus_act_bwd(t->t_a, ds, da, BD, LOCUS_ACT_SILU, 0);
    nn_linear_bwd(&m->t1, t->tp, B, da, NULL, 0, g);
    nn_linear_bwd(&m->p2, t->p_s, B, dtemb, ds, 0, g);
    locus_act_bwd(t->p_a, ds, da, BD, LOCUS_ACT_SILU, 0);
    nn_linear_bwd(&m->p1, t->pooled, B, da, dpooled, 0, g);
    /* patch embedding: h = transpose(conv(x)) + pos (frozen) */
    locus_transpose(dh, dpe, B, N, D);
    const nn_conv *pc = &m->patch_proj;
    float *dw = locus_grads_of(g, pc->w), *db = locus_grads_of(g, pc->b);
    if (dw || db) locus_conv2d_bwd_weight(dpe, t->x, B, pc->cin, H, W, pc->cout, p, p, p, 0, 0, H / p, W / p, dw, db, 1);
    if (dx) locus_conv2d_bwd_data(dpe, B, pc->cout, H / p, W / p, pc->w, pc->cin, H, W, p, p, p, 0, 0, dx, 0);
done:
    locus_free(dpo); locus_free(dnh); locus_free(dh); locus_free(dc); locus_free(de); locus_free(dtemb_act); locus_free(dtemb);
    locus_free(ds); locus_free(da); locus_free(ln); locus_free(pr); locus_free(s1); locus_free(hs); locus_free(cs); locus_free(dpe);
    locus_mmdit_tape_free(t);
    return st;
}

void locus_flow_match_inputs(const float *x0, const float *noise, const float *sigmas, int B, size_t n, float *noisy,
                             float *target, float *timesteps) {
    for (int b = 0; b < B; b++) {
        float s = sigmas[b], one_m = 1.0f - s;
        const float *xb = x0 + (size_t)b * n, *nb = noise + (size_t)b * n;
        for (size_t i = 0; i < n; i++) {
            if (noisy) {
                float u = one_m * xb[i], v = s * nb[i];
                noisy[(size_t)b * n + i] = u + v;
            }
            if (target) target[(size_t)b * n + i] = nb[i] - xb[i];
        }
        if (timesteps) timesteps[b] = s * 1000.0f;
    }
}

locus_status locus_mmdit_flow_loss_grad(const locus_mmdit *m, const float *x0, const float *noise, const float *sigmas, int B,
                                        int H, int W, const float *ctx, int S, const float *pooled, int checkpoint,
                                        const locus_grads *g, float *loss, float *pred, float *dnoisy, float *dctx,
                                        float *dpooled) {
    if (m->in_channels != m->out_channels)
        return locus_fail(LOCUS_E_UNSUPPORTED, "flow-matching loss: in_channels %d != out_channels %d", m->in_channels, m->out_channels);
    if (B < 1 || H < 1 || W < 1) return locus_fail(LOCUS_E_ARG, "flow-matching loss: empty batch (%d x %dx%d)", B, H, W);
    size_t n = (size_t)m->in_channels * H * W, tot = (size_t)B * n;
    float *noisy = dup(NULL, tot), *target = dup(NULL, tot); /* [B,C,H,W] */
    float *out = dup(NULL, tot), *dout = dup(NULL, tot);      /* [B,C,H,W] prediction and d loss / d prediction */
    float *ts = dup(NULL, B);                                 /* [B] timesteps */
    locus_status st = LOCUS_OK;
    if (!noisy || !target || !out || !dout || !ts) { st = locus_fail(LOCUS_E_NOMEM, "flow-matching loss: out of memory"); goto done; }
    locus_flow_match_inputs(x0, noise, sigmas, B, n, noisy, target, ts);
    locus_mmdit_tape *tape;
    if ((st = locus_mmdit_forward_train(m, noisy, B, H, W, ts, ctx, S, pooled, out, checkpoint, &tape))) goto done;
    float l = locus_mse_loss(out, target, tot, dout, 1.0f);
    if (loss) *loss = l;
    if (pred) memcpy(pred, out, tot * sizeof(float));
    st = locus_mmdit_backward(m, tape, dout, dnoisy, dctx, dpooled, g);
done:
    locus_free(noisy); locus_free(target); locus_free(out); locus_free(dout); locus_free(ts);
    return st;
}
