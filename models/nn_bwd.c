/* nn_bwd.c — backward passes of the nn.h building blocks (see nn_bwd.h for the saved-activation contract).
 *
 * Each training forward below repeats its nn.c forward op for op (same kernels, same operand order) so its
 * output has the inference bits; the backward beside it walks the same graph in reverse with the
 * fixed-order kernels of simd/ops_bwd.h.  Formulas follow the diffusers v0.31 modules named in nn.c. */
#include "nn_bwd.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"
#include "../simd/ops_bwd.h"

static float *talloc(size_t n) { return locus_alloc((n ? n : 1) * sizeof(float)); }
static float *tcopy(const float *x, size_t n) {
    float *y = talloc(n);
    memcpy(y, x, n * sizeof(float));
    return y;
}
/* dst (+)= src */
static void put(float *dst, const float *src, size_t n, int accum) {
    if (accum) locus_binary(dst, src, dst, n, LOCUS_BIN_ADD, 0.0f);
    else memcpy(dst, src, n * sizeof(float));
}

/* ---- Linear ---- */

void nn_linear_bwd(const nn_linear *l, const float *x, int M, const float *dy, float *dx, int accum_dx, const locus_grads *g) {
    float *dw = locus_grads_of(g, l->w ? l->w : l->wp);
    float *db = l->b ? locus_grads_of(g, l->b) : NULL;
    const float *W = l->w;
    float *wtmp = NULL;
    if (dx && !W) { /* packed weight: dx needs W [out,in] */
        wtmp = talloc((size_t)l->out * l->in);
        locus_gemm_unpack_b_t(l->wp, l->out, l->in, l->wp_nr, wtmp);
        W = wtmp;
    }
    if (dx || dw || db) locus_linear_bwd(x, W, dy, M, l->in, l->out, dx, accum_dx, dw, db, 1);
    locus_free(wtmp);
    for (const nn_lora *a = l->lora; a; a = a->next) { /* y += scale * (x down^T) up^T, in list order */
        float *ddown = locus_grads_of(g, a->down), *dup = locus_grads_of(g, a->up);
        if (!dx && !ddown && !dup) continue;
        float *t = talloc((size_t)M * a->r), *sdy = talloc((size_t)M * l->out), *dt = talloc((size_t)M * a->r);
        locus_linear(x, M, l->in, a->down, NULL, a->r, t);                      /* t[M,r] = x down^T */
        locus_scale_shift(dy, sdy, (size_t)M * l->out, a->scale, 0.0f);        /* d(t up^T) = scale dy */
        locus_linear_bwd(t, a->up, sdy, M, a->r, l->out, dt, 0, dup, NULL, 1);  /* dt[M,r], d up [out,r] */
        locus_linear_bwd(x, a->down, dt, M, l->in, a->r, dx, 1, ddown, NULL, 1); /* dx += dt down, d down [r,in] */
        locus_free(t); locus_free(sdy); locus_free(dt);
    }
}

/* ---- Conv2d, GroupNorm ---- */

void nn_conv_bwd_ex(const nn_conv *c, const float *x, int B, int H, int W, int pad_t, int pad_l, int Ho, int Wo,
                    const float *dy, float *dx, int accum_dx, const locus_grads *g) {
    float *dw = locus_grads_of(g, c->w), *db = c->b ? locus_grads_of(g, c->b) : NULL;
    if (dw || db)
        locus_conv2d_bwd_weight(dy, x, B, c->cin, H, W, c->cout, c->k, c->k, c->stride, pad_t, pad_l, Ho, Wo, dw, db, 1);
    if (dx) locus_conv2d_bwd_data(dy, B, c->cout, Ho, Wo, c->w, c->cin, H, W, c->k, c->k, c->stride, pad_t, pad_l, dx, accum_dx);
}

void nn_conv_bwd(const nn_conv *c, const float *x, int B, int H, int W, const float *dy, float *dx, int accum_dx,
                 const locus_grads *g) {
    int Ho = (H + 2 * c->pad - c->k) / c->stride + 1, Wo = (W + 2 * c->pad - c->k) / c->stride + 1;
    nn_conv_bwd_ex(c, x, B, H, W, c->pad, c->pad, Ho, Wo, dy, dx, accum_dx, g);
}

void nn_gnorm_bwd(const nn_gnorm *n, const float *x, int B, int HW, const float *dy, int act, float *dx, int accum_dx,
                  const locus_grads *g) {
    float *dw = locus_grads_of(g, n->w), *db = locus_grads_of(g, n->b);
    locus_group_norm_bwd(x, dy, B, n->c, (size_t)HW, n->groups, n->w, n->b, n->eps, act, dx, accum_dx, dw, db, 1);
}

/* ---- ResnetBlock2D ---- */

void nn_resnet_act_free(nn_resnet_act *s) {
    locus_free(s->a1); locus_free(s->h); locus_free(s->a2);
    memset(s, 0, sizeof *s);
}

void nn_resnet_fwd_train(const nn_resnet *r, const float *x, int B, int H, int W, const float *temb_act, float *y, nn_resnet_act *s) {
    size_t HW = (size_t)H * W, N = (size_t)B * r->cout * HW;
    s->B = B; s->H = H; s->W = W;
    s->a1 = talloc((size_t)B * r->cin * HW);
    s->h = talloc(N);
    s->a2 = talloc(N);
    nn_gnorm_fwd(&r->norm1, x, B, (int)HW, s->a1, LOCUS_ACT_SILU);
    nn_conv_fwd(&r->conv1, s->a1, B, H, W, s->h);
    if (r->has_temb && temb_act) {
        float *tp = talloc((size_t)B * r->cout); /* [B,cout] time_emb_proj(temb) */
        nn_linear_fwd(&r->temb, temb_act, B, tp);
        locus_scale_shift_rows(s->h, s->h, (size_t)B * r->cout, HW, NULL, tp); /* h + temb[:, :, None, None], as nn_resnet_fwd */
        locus_free(tp);
    }
    nn_gnorm_fwd(&r->norm2, s->h, B, (int)HW, s->a2, LOCUS_ACT_SILU);
    float *h2 = talloc(N), *sk = NULL; /* [B,cout,H,W] conv2 output, shortcut output */
    nn_conv_fwd(&r->conv2, s->a2, B, H, W, h2);
    const float *skip = x;
    if (r->has_shortcut) {
        sk = talloc(N);
        nn_conv_fwd(&r->shortcut, x, B, H, W, sk);
        skip = sk;
    }
    locus_binary(skip, h2, y, N, LOCUS_BIN_ADD, 0.0f);
    locus_free(h2); locus_free(sk);
}

void nn_resnet_bwd(const nn_resnet *r, nn_resnet_act *s, const float *x, const float *temb_act, const float *dy, float *dx,
                   int accum_dx, float *dtemb_act, const locus_grads *g) {
    assert(dx);
    int B = s->B, H = s->H, W = s->W;
    size_t HW = (size_t)H * W, N = (size_t)B * r->cout * HW;
    float *da2 = talloc(N), *dh = talloc(N), *da1 = talloc((size_t)B * r->cin * HW);
    nn_conv_bwd(&r->conv2, s->a2, B, H, W, dy, da2, 0, g);                 /* da2 [B,cout,H,W] */
    nn_gnorm_bwd(&r->norm2, s->h, B, (int)HW, da2, LOCUS_ACT_SILU, dh, 0, g); /* dh [B,cout,H,W] */
    if (r->has_temb && temb_act) {
        float *dtp = talloc((size_t)B * r->cout); /* [B,cout] = sum over H,W of dh */
        for (size_t i = 0; i < (size_t)B * r->cout; i++) dtp[i] = locus_k()->row->rsum(dh + i * HW, HW);
        nn_linear_bwd(&r->temb, temb_act, B, dtp, dtemb_act, 1, g);
        locus_free(dtp);
    }
    nn_conv_bwd(&r->conv1, s->a1, B, H, W, dh, da1, 0, g);                 /* da1 [B,cin,H,W] */
    nn_gnorm_bwd(&r->norm1, x, B, (int)HW, da1, LOCUS_ACT_SILU, dx, accum_dx, g);
    if (r->has_shortcut) nn_conv_bwd(&r->shortcut, x, B, H, W, dy, dx, 1, g);
    else locus_binary(dx, dy, dx, N, LOCUS_BIN_ADD, 0.0f);
    locus_free(da2); locus_free(dh); locus_free(da1);
    nn_resnet_act_free(s);
}

/* ---- Attention ---- */

void nn_attention_act_free(nn_attention_act *s) {
    locus_free(s->q); locus_free(s->k); locus_free(s->v); locus_free(s->o); locus_free(s->p);
    memset(s, 0, sizeof *s);
}

static locus_attn_desc attn_desc(const nn_attention *a, int B, int T, int S, const float *q, const float *k, const float *v, float *o) {
    int C = a->inner;
    locus_attn_desc d = {B, a->heads, T, S, a->dim_head, q, (ptrdiff_t)T * C, C, k, (ptrdiff_t)S * C, C, v, (ptrdiff_t)S * C, C,
                         o, (ptrdiff_t)T * C, C, 1.0f / sqrtf((float)a->dim_head), NULL, 0, 0, NULL};
    return d;
}

void nn_attention_fwd_train(const nn_attention *a, const float *x, int B, int T, const float *ctx, int S, float *y, nn_attention_act *s) {
    int C = a->inner;
    s->q = talloc((size_t)B * T * C); s->k = talloc((size_t)B * S * C);
    s->v = talloc((size_t)B * S * C); s->o = talloc((size_t)B * T * C);
    nn_linear_fwd(&a->q, x, B * T, s->q);
    nn_linear_fwd(&a->k, ctx, B * S, s->k);
    nn_linear_fwd(&a->v, ctx, B * S, s->v);
    locus_attn_desc d = attn_desc(a, B, T, S, s->q, s->k, s->v, s->o);
    if ((double)B * a->heads * T * S * sizeof(float) <= NN_KEEP_PROBS_BYTES) s->p = d.probs = talloc((size_t)B * a->heads * T * S);
    locus_attention(&d);
    nn_linear_fwd(&a->out, s->o, B * T, y);
}

void nn_attention_bwd(const nn_attention *a, nn_attention_act *s, const float *x, int B, int T, const float *ctx, int S,
                      const float *dy, float *dx, int accum_dx, float *dctx, int accum_dctx, const locus_grads *g) {
    int C = a->inner;
    float *do_ = talloc((size_t)B * T * C), *dq = talloc((size_t)B * T * C); /* [B,T,inner] */
    float *dk = talloc((size_t)B * S * C), *dv = talloc((size_t)B * S * C);  /* [B,S,inner] */
    nn_linear_bwd(&a->out, s->o, B * T, dy, do_, 0, g);
    locus_attn_desc d = attn_desc(a, B, T, S, s->q, s->k, s->v, s->o);
    d.probs = s->p; /* NULL: recomputed */
    locus_attention_bwd(&d, do_, dq, dk, dv, 0);
    nn_linear_bwd(&a->q, x, B * T, dq, dx, accum_dx, g);
    int self = dctx && dctx == dx;
    /* to_k's bias gets no gradient: q.(k + b) adds q.b to a whole softmax row, so d loss / d b is exactly
     * zero (autograd's value is rounding noise, ~1e-7 of the weight's gradient) */
    nn_linear kl = a->k;
    kl.b = NULL;
    nn_linear_bwd(&kl, ctx, B * S, dk, dctx, self ? 1 : accum_dctx, g);
    nn_linear_bwd(&a->v, ctx, B * S, dv, dctx, 1, g);
    locus_free(do_); locus_free(dq); locus_free(dk); locus_free(dv);
    nn_attention_act_free(s);
}

/* ---- BasicTransformerBlock ---- */

void nn_tblock_act_free(nn_tblock_act *s) {
    locus_free(s->h0); locus_free(s->h1); locus_free(s->h2);
    locus_free(s->t1); locus_free(s->t2); locus_free(s->t3);
    locus_free(s->p); locus_free(s->gg);
    nn_attention_act_free(&s->a1);
    nn_attention_act_free(&s->a2);
    memset(s, 0, sizeof *s);
}

void nn_tblock_fwd_train(const nn_tblock *b, float *h, int B, int T, const float *ctx, int S, nn_tblock_act *s) {
    size_t N = (size_t)B * T * b->dim, rows = (size_t)B * T;
    int fi = b->ff_inner;
    float *a = talloc(N); /* [B,T,dim] module output before the residual add */
    s->h0 = tcopy(h, N);
    s->t1 = talloc(N);
    locus_layer_norm(h, s->t1, rows, b->dim, b->n1.w, b->n1.b, b->n1.eps);
    if (b->only_cross) nn_attention_fwd_train(&b->a1, s->t1, B, T, ctx, S, a, &s->a1);
    else nn_attention_fwd_train(&b->a1, s->t1, B, T, s->t1, T, a, &s->a1);
    locus_binary(a, h, h, N, LOCUS_BIN_ADD, 0.0f);
    s->h1 = tcopy(h, N);
    s->t2 = talloc(N);
    locus_layer_norm(h, s->t2, rows, b->dim, b->n2.w, b->n2.b, b->n2.eps);
    nn_attention_fwd_train(&b->a2, s->t2, B, T, ctx, S, a, &s->a2);
    locus_binary(a, h, h, N, LOCUS_BIN_ADD, 0.0f);
    s->h2 = tcopy(h, N);
    s->t3 = talloc(N);
    locus_layer_norm(h, s->t3, rows, b->dim, b->n3.w, b->n3.b, b->n3.eps);
    s->p = talloc(rows * 2 * fi);
    s->gg = talloc(rows * fi);
    nn_linear_fwd(&b->ff_in, s->t3, (int)rows, s->p);
    locus_geglu(s->p, s->gg, rows, (size_t)fi);
    nn_linear_fwd(&b->ff_out, s->gg, (int)rows, a);
    locus_binary(a, h, h, N, LOCUS_BIN_ADD, 0.0f);
    locus_free(a);
}

void nn_lnorm_bwd(const nn_lnorm *n, const float *x, size_t rows, const float *dy, float *dx, int accum_dx, const locus_grads *g) {
    locus_layer_norm_bwd(x, dy, rows, n->c, n->w, n->eps, dx, accum_dx, locus_grads_of(g, n->w), locus_grads_of(g, n->b), 1);
}

void nn_tblock_bwd(const nn_tblock *b, nn_tblock_act *s, int B, int T, const float *ctx, int S, float *dh, float *dctx,
                       const locus_grads *g) {
    size_t N = (size_t)B * T * b->dim, rows = (size_t)B * T;
    int fi = b->ff_inner;
    float *dgg = talloc(rows * fi), *dp = talloc(rows * 2 * fi), *dt = talloc(N);
    /* ff: h = h2 + ff_out(geglu(ff_in(norm3(h2)))) */
    nn_linear_bwd(&b->ff_out, s->gg, (int)rows, dh, dgg, 0, g);
    locus_geglu_bwd(s->p, dgg, dp, rows, (size_t)fi, 0);
    nn_linear_bwd(&b->ff_in, s->t3, (int)rows, dp, dt, 0, g);
    nn_lnorm_bwd(&b->n3, s->h2, rows, dt, dh, 1, g);
    /* attn2: h2 = h1 + attn2(norm2(h1), ctx) */
    nn_attention_bwd(&b->a2, &s->a2, s->t2, B, T, ctx, S, dh, dt, 0, dctx, 1, g);
    nn_lnorm_bwd(&b->n2, s->h1, rows, dt, dh, 1, g);
    /* attn1: h1 = h0 + attn1(norm1(h0)) (or of ctx with only_cross_attention) */
    if (b->only_cross) nn_attention_bwd(&b->a1, &s->a1, s->t1, B, T, ctx, S, dh, dt, 0, dctx, 1, g);
    else nn_attention_bwd(&b->a1, &s->a1, s->t1, B, T, s->t1, T, dh, dt, 0, dt, 0, g);
    nn_lnorm_bwd(&b->n1, s->h0, rows, dt, dh, 1, g);
    locus_free(dgg); locus_free(dp); locus_free(dt);
    nn_tblock_act_free(s);
}

/* ---- Transformer2DModel ---- */

void nn_transformer2d_act_free(const nn_transformer2d *t, nn_transformer2d_act *s) {
    if (s->blocks) for (int i = 0; i < t->nblocks; i++) nn_tblock_act_free(&s->blocks[i]);
    locus_free(s->blocks);
    if (s->pin != s->n0) locus_free(s->pin);
    locus_free(s->n0); locus_free(s->hout);
    memset(s, 0, sizeof *s);
}

void nn_transformer2d_fwd_train(const nn_transformer2d *t, const float *x, int B, int H, int W, const float *ctx, int S, float *y,
                                nn_transformer2d_act *s) {
    int HW = H * W, C = t->c, I = t->inner;
    s->B = B; s->H = H; s->W = W;
    s->n0 = talloc((size_t)B * C * HW);
    s->blocks = locus_alloc((size_t)(t->nblocks ? t->nblocks : 1) * sizeof *s->blocks);
    memset(s->blocks, 0, (size_t)(t->nblocks ? t->nblocks : 1) * sizeof *s->blocks);
    float *h = talloc((size_t)B * HW * I), *o = talloc((size_t)B * C * HW); /* [B,HW,I] stream, [B,C,HW] proj_out result */
    nn_gnorm_fwd(&t->norm, x, B, HW, s->n0, LOCUS_ACT_NONE);
    if (t->linear_proj) {
        s->pin = talloc((size_t)B * HW * C);
        locus_transpose(s->n0, s->pin, B, C, HW);
        nn_linear_fwd(&t->proj_in_l, s->pin, B * HW, h);
    } else {
        float *tmp = talloc((size_t)B * I * HW);
        s->pin = s->n0;
        nn_conv_fwd(&t->proj_in_c, s->n0, B, H, W, tmp);
        locus_transpose(tmp, h, B, I, HW);
        locus_free(tmp);
    }
    for (int i = 0; i < t->nblocks; i++) nn_tblock_fwd_train(&t->blocks[i], h, B, HW, ctx, S, &s->blocks[i]);
    if (t->linear_proj) {
        float *tmp = talloc((size_t)B * HW * C);
        nn_linear_fwd(&t->proj_out_l, h, B * HW, tmp);
        locus_transpose(tmp, o, B, HW, C);
        locus_free(tmp);
        s->hout = h;
    } else {
        s->hout = talloc((size_t)B * I * HW);
        locus_transpose(h, s->hout, B, HW, I);
        nn_conv_fwd(&t->proj_out_c, s->hout, B, H, W, o);
        locus_free(h);
    }
    locus_binary(o, x, y, (size_t)B * C * HW, LOCUS_BIN_ADD, 0.0f);
    locus_free(o);
}

void nn_transformer2d_bwd(const nn_transformer2d *t, nn_transformer2d_act *s, const float *x, const float *ctx, int S,
                          const float *dy, float *dx, int accum_dx, float *dctx, const locus_grads *g) {
    int B = s->B, H = s->H, W = s->W, HW = H * W, C = t->c, I = t->inner;
    size_t NC = (size_t)B * C * HW, NI = (size_t)B * HW * I;
    float *dh = talloc(NI), *tmp = talloc(NI > NC ? NI : NC), *dn0 = talloc(NC);
    if (t->linear_proj) {
        locus_transpose(dy, tmp, B, C, HW);                         /* [B,HW,C] */
        nn_linear_bwd(&t->proj_out_l, s->hout, B * HW, tmp, dh, 0, g); /* dh [B,HW,I] */
    } else {
        nn_conv_bwd(&t->proj_out_c, s->hout, B, H, W, dy, tmp, 0, g); /* [B,I,HW] */
        locus_transpose(tmp, dh, B, I, HW);
    }
    for (int i = t->nblocks - 1; i >= 0; i--) nn_tblock_bwd(&t->blocks[i], &s->blocks[i], B, HW, ctx, S, dh, dctx, g);
    if (t->linear_proj) {
        nn_linear_bwd(&t->proj_in_l, s->pin, B * HW, dh, tmp, 0, g); /* [B,HW,C] */
        locus_transpose(tmp, dn0, B, HW, C);
    } else {
        locus_transpose(dh, tmp, B, HW, I);                           /* [B,I,HW] */
        nn_conv_bwd(&t->proj_in_c, s->n0, B, H, W, tmp, dn0, 0, g);
    }
    put(dx, dy, NC, accum_dx); /* residual */
    nn_gnorm_bwd(&t->norm, x, B, HW, dn0, LOCUS_ACT_NONE, dx, 1, g);
    locus_free(dh); locus_free(tmp); locus_free(dn0);
    nn_transformer2d_act_free(t, s);
}

/* ---- Attention block (group_norm + one-head self-attention + residual), as vae.c's mid_attn_fwd ---- */

void nn_attnblock_act_free(nn_attnblock_act *s) {
    locus_free(s->s);
    nn_attention_act_free(&s->a);
    s->s = NULL;
}

void nn_attnblock_fwd_train(const nn_gnorm *gn, const nn_attention *a, const float *x, int B, int H, int W, float *y,
                            nn_attnblock_act *s) {
    int HW = H * W, C = gn->c;
    size_t N = (size_t)B * C * HW;
    float *t = talloc(N), *o = talloc(N); /* [B,C,HW] norm / output, [B,HW,C] attention output */
    s->s = talloc(N);
    nn_gnorm_fwd(gn, x, B, HW, t, LOCUS_ACT_NONE);
    locus_transpose(t, s->s, B, C, HW);
    nn_attention_fwd_train(a, s->s, B, HW, s->s, HW, o, &s->a);
    locus_transpose(o, t, B, HW, C);
    locus_binary(t, x, y, N, LOCUS_BIN_ADD, 0.0f);
    locus_free(t); locus_free(o);
}

void nn_attnblock_bwd(const nn_gnorm *gn, const nn_attention *a, nn_attnblock_act *s, const float *x, int B, int H, int W,
                      const float *dy, float *dx, int accum_dx, const locus_grads *g) {
    int HW = H * W, C = gn->c;
    size_t N = (size_t)B * C * HW;
    float *dt = talloc(N), *ds = talloc(N); /* [B,HW,C] */
    locus_transpose(dy, dt, B, C, HW);
    nn_attention_bwd(a, &s->a, s->s, B, HW, s->s, HW, dt, ds, 0, ds, 0, g);
    locus_transpose(ds, dt, B, HW, C); /* d norm [B,C,HW] */
    put(dx, dy, N, accum_dx);
    nn_gnorm_bwd(gn, x, B, HW, dt, LOCUS_ACT_NONE, dx, 1, g);
    locus_free(dt); locus_free(ds);
    nn_attnblock_act_free(s);
}

/* ---- tape units ---- */

size_t nn_unit_shape(nn_unit *un) {
    un->Ho = un->H; un->Wo = un->W;
    switch (un->kind) {
    case NN_UNIT_RESNET: un->cout = ((const nn_resnet *)un->m)->cout; break;
    case NN_UNIT_TRANSFORMER: un->cout = un->cin; break;
    case NN_UNIT_ATTNBLOCK: un->cout = un->cin; break;
    case NN_UNIT_CONV: {
        const nn_conv *c = un->m;
        un->cout = c->cout;
        un->Ho = (un->H + un->pad_t + un->pad_b - c->k) / c->stride + 1;
        un->Wo = (un->W + un->pad_l + un->pad_b - c->k) / c->stride + 1;
        break;
    }
    case NN_UNIT_UPCONV: un->cout = ((const nn_conv *)un->m)->cout; un->Ho = 2 * un->H; un->Wo = 2 * un->W; break;
    default: assert(0);
    }
    return (size_t)un->B * un->cout * un->Ho * un->Wo;
}

/* train = 1: the training forward filling un->act; 0: the inference forward */
static void unit_run(nn_unit *un, const float *temb_act, const float *ctx, int S, float *y, int train) {
    int B = un->B, H = un->H, W = un->W;
    switch (un->kind) {
    case NN_UNIT_RESNET:
        if (train) nn_resnet_fwd_train(un->m, un->x, B, H, W, temb_act, y, &un->act.r);
        else nn_resnet_fwd(un->m, un->x, B, H, W, temb_act, y);
        break;
    case NN_UNIT_TRANSFORMER:
        if (train) nn_transformer2d_fwd_train(un->m, un->x, B, H, W, ctx, S, y, &un->act.t);
        else nn_transformer2d_fwd(un->m, un->x, B, H, W, ctx, S, y, NULL, "");
        break;
    case NN_UNIT_ATTNBLOCK: nn_attnblock_fwd_train(un->gn, un->m, un->x, B, H, W, y, &un->act.a); if (!train) nn_attnblock_act_free(&un->act.a); break;
    case NN_UNIT_CONV: {
        const nn_conv *c = un->m;
        locus_conv2d_ex(un->x, B, c->cin, H, W, c->w, c->b, c->cout, c->k, c->k, c->stride, un->pad_t, un->pad_l, un->Ho, un->Wo, y);
        break;
    }
    case NN_UNIT_UPCONV: {
        float *up = talloc((size_t)B * un->cin * 4 * H * W); /* [B,cin,2H,2W] */
        locus_upsample_nearest2x(un->x, up, B, un->cin, H, W);
        nn_conv_fwd(un->m, up, B, 2 * H, 2 * W, y);
        locus_free(up);
        break;
    }
    default: assert(0);
    }
}

void nn_unit_fwd(nn_unit *un, const float *temb_act, const float *ctx, int S, float *y, int checkpoint) {
    nn_unit_shape(un);
    int train = !checkpoint && (un->kind == NN_UNIT_RESNET || un->kind == NN_UNIT_TRANSFORMER || un->kind == NN_UNIT_ATTNBLOCK);
    unit_run(un, temb_act, ctx, S, y, train);
    un->saved = train;
}

void nn_unit_bwd(nn_unit *un, const float *temb_act, const float *ctx, int S, const float *dy, float *dx, float *dtemb_act,
                 float *dctx, const locus_grads *g) {
    int B = un->B, H = un->H, W = un->W;
    int has_act = un->kind == NN_UNIT_RESNET || un->kind == NN_UNIT_TRANSFORMER || un->kind == NN_UNIT_ATTNBLOCK;
    if (has_act && !un->saved) { /* checkpoint: re-run the block's forward from its kept input */
        float *y = talloc(nn_unit_shape(un));
        unit_run(un, temb_act, ctx, S, y, 1);
        locus_free(y);
    }
    un->saved = 0;
    switch (un->kind) {
    case NN_UNIT_RESNET: nn_resnet_bwd(un->m, &un->act.r, un->x, temb_act, dy, dx, 0, dtemb_act, g); break;
    case NN_UNIT_TRANSFORMER: nn_transformer2d_bwd(un->m, &un->act.t, un->x, ctx, S, dy, dx, 0, dctx, g); break;
    case NN_UNIT_ATTNBLOCK: nn_attnblock_bwd(un->gn, un->m, &un->act.a, un->x, B, H, W, dy, dx, 0, g); break;
    case NN_UNIT_CONV: nn_conv_bwd_ex(un->m, un->x, B, H, W, un->pad_t, un->pad_l, un->Ho, un->Wo, dy, dx, 0, g); break;
    case NN_UNIT_UPCONV: {
        size_t n = (size_t)B * un->cin * 4 * H * W;
        float *up = talloc(n), *dup = talloc(n); /* [B,cin,2H,2W] */
        locus_upsample_nearest2x(un->x, up, B, un->cin, H, W);
        nn_conv_bwd(un->m, up, B, 2 * H, 2 * W, dy, dup, 0, g);
        locus_upsample_nearest2x_bwd(dup, dx, B, un->cin, H, W, 0);
        locus_free(up); locus_free(dup);
        break;
    }
    default: assert(0);
    }
}

void nn_unit_free(nn_unit *un) {
    if (un->saved) {
        if (un->kind == NN_UNIT_RESNET) nn_resnet_act_free(&un->act.r);
        else if (un->kind == NN_UNIT_TRANSFORMER) nn_transformer2d_act_free(un->m, &un->act.t);
        else if (un->kind == NN_UNIT_ATTNBLOCK) nn_attnblock_act_free(&un->act.a);
    }
    un->saved = 0;
    locus_free(un->x);
    un->x = NULL;
}
