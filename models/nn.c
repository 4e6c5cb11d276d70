/* nn.c — diffusers building blocks (see nn.h).  Formulas follow diffusers v0.31 module by module; each
 * comment names the diffusers class being reproduced. */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

void locus_hooks_init(locus_hooks *h) {
    memset(h, 0, sizeof *h);
    h->step = -1;
}

int locus_hooks_add(locus_hooks *h, locus_hook_entry hk) {
    if (h->n >= LOCUS_MAX_HOOKS) return -1;
    h->list[h->n++] = hk;
    return 0;
}

locus_hooks locus_hooks_one(void (*fn)(void *, const locus_hook_at *, float *, int, const int64_t *), void *ctx) {
    locus_hooks h;
    locus_hooks_init(&h);
    locus_hooks_add(&h, (locus_hook_entry){fn, NULL, NULL, ctx});
    return h;
}

void locus_hook(const locus_hooks *h, const char *name, float *x, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (!h) return;
    int64_t shape[4] = {d0, d1, d2, d3};
    locus_hook_at at = {name, h->step, h->cfg};
    for (int i = 0; i < h->n; i++)
        if (h->list[i].fn) h->list[i].fn(h->list[i].ctx, &at, x, ndim, shape);
}

int locus_hook_wants(const locus_hooks *h, const char *name) {
    if (!h) return 0;
    for (int i = 0; i < h->n; i++)
        if (h->list[i].want && h->list[i].want(h->list[i].ctx, name)) return 1;
    return 0;
}

void locus_hook_text_kv(const locus_hooks *h, const locus_text_kv *site) {
    if (!h) return;
    locus_hook_at at = {site->layer, h->step, h->cfg};
    for (int i = 0; i < h->n; i++)
        if (h->list[i].text_kv) h->list[i].text_kv(h->list[i].ctx, &at, site);
}

int locus_hooks_have_probs(const locus_hooks *h) {
    for (int i = 0; h && i < h->n; i++)
        if (h->list[i].probs) return 1;
    return 0;
}

int locus_hook_probs(const locus_hooks *h, const locus_attn_probs *site) {
    if (!h) return 0;
    locus_hook_at at = {site->layer, h->step, h->cfg};
    int changed = 0;
    for (int i = 0; i < h->n; i++)
        if (h->list[i].probs) changed |= h->list[i].probs(h->list[i].ctx, &at, site) != 0;
    return changed;
}

static float *talloc(size_t n) { return locus_alloc_act(n * sizeof(float), "activations"); }

void nn_linear_load(locus_loader *L, nn_linear *l, int in, int out, int bias, const char *name) {
    l->in = in;
    l->out = out;
    l->w = locus_param(L, 2, out, in, 0, 0, "%s.weight", name);
    l->b = bias ? locus_param(L, 1, out, 0, 0, 0, "%s.bias", name) : NULL;
    l->wp = NULL;
    l->wp_nr = 0;
    l->lora = NULL;
    locus_loader_add_module(L, name, LOCUS_MOD_LINEAR, l);
    if (!l->w || L->plain_weights) return;
    /* pack once for the GEMM (the plain copy is freed: memory stays the same) */
    float *wp = locus_alloc(locus_gemm_packed_b_floats(out, in) * sizeof(float));
    if (!wp) return; /* keep the plain weight */
    locus_gemm_desc d = {0};
    d.N = out; d.K = in;
    d.B = l->w; d.b_rs = 1; d.b_cs = in;
    locus_gemm_pack_b(&d, wp);
    l->wp_nr = locus_k()->nr;
    locus_loader_replace(L, l->w, wp);
    locus_loader_mark_packed(L, wp);
    l->wp = wp;
    l->w = NULL;
}

void nn_conv_load(locus_loader *L, nn_conv *c, int cin, int cout, int k, int stride, int pad, const char *name) {
    c->cin = cin; c->cout = cout; c->k = k; c->stride = stride; c->pad = pad;
    c->w = locus_param(L, 4, cout, cin, k, k, "%s.weight", name);
    c->b = locus_param(L, 1, cout, 0, 0, 0, "%s.bias", name);
}

void nn_gnorm_load(locus_loader *L, nn_gnorm *g, int c, int groups, float eps, const char *name) {
    g->c = c; g->groups = groups; g->eps = eps;
    if (groups <= 0 || c % groups) locus_loader_fail(L, LOCUS_E_SHAPE, "%s: %d channels not divisible into %d groups", name, c, groups);
    g->w = locus_param(L, 1, c, 0, 0, 0, "%s.weight", name);
    g->b = locus_param(L, 1, c, 0, 0, 0, "%s.bias", name);
}

void nn_lnorm_load(locus_loader *L, nn_lnorm *n, int c, float eps, const char *name) {
    n->c = c; n->eps = eps;
    n->w = locus_param(L, 1, c, 0, 0, 0, "%s.weight", name);
    n->b = locus_param(L, 1, c, 0, 0, 0, "%s.bias", name);
}

/* Uses the pre-packed weight when it was packed for the active kernel table (the normal case); after a table
 * switch (tests run several ISAs in one process) it unpacks a temporary copy.  Same FMA chains either way. */
void nn_linear_fwd(const nn_linear *l, const float *x, int M, float *y) {
    if (l->wp && l->wp_nr == locus_k()->nr) {
        locus_gemm_desc d = {0};
        d.M = M; d.N = l->out; d.K = l->in;
        d.A = x; d.a_rs = l->in; d.a_cs = 1;
        d.packed_b = l->wp;
        d.C = y; d.ldc = l->out;
        d.bias = l->b; d.bias_kind = l->b ? LOCUS_UKR_BIAS_COL : 0;
        locus_gemm(&d);
    } else if (l->wp) {
        float *w = locus_alloc_act((size_t)l->out * l->in * sizeof(float), "an unpacked weight");
        locus_gemm_unpack_b_t(l->wp, l->out, l->in, l->wp_nr, w);
        locus_linear(x, M, l->in, w, l->b, l->out, y);
        locus_free(w);
    } else {
        locus_linear(x, M, l->in, l->w, l->b, l->out, y);
    }
    for (const nn_lora *a = l->lora; a; a = a->next) { /* y += scale * (x down^T) up^T */
        float *t = talloc((size_t)M * a->r), *u = talloc((size_t)M * l->out);
        locus_linear(x, M, l->in, a->down, NULL, a->r, t);
        locus_linear(t, M, a->r, a->up, NULL, l->out, u);
        locus_binary(y, u, y, (size_t)M * l->out, LOCUS_BIN_AXPY, a->scale);
        locus_free(t); locus_free(u);
    }
}

void nn_conv_fwd(const nn_conv *c, const float *x, int B, int H, int W, float *y) {
    locus_conv2d(x, B, c->cin, H, W, c->w, c->b, c->cout, c->k, c->k, c->stride, c->pad, y);
}

void nn_gnorm_fwd(const nn_gnorm *g, const float *x, int B, int HW, float *y, int act) {
    locus_group_norm(x, y, B, g->c, (size_t)HW, g->groups, g->w, g->b, g->eps, act);
}

/* ---- ResnetBlock2D (time_embedding_norm "default", output_scale_factor 1) ---- */

void nn_resnet_load(locus_loader *L, nn_resnet *r, int cin, int cout, int temb_dim, int groups, float eps, const char *name) {
    char n[512];
    memset(r, 0, sizeof *r);
    r->cin = cin; r->cout = cout; r->has_temb = temb_dim > 0; r->has_shortcut = cin != cout;
    snprintf(n, sizeof n, "%s.norm1", name); nn_gnorm_load(L, &r->norm1, cin, groups, eps, n);
    snprintf(n, sizeof n, "%s.conv1", name); nn_conv_load(L, &r->conv1, cin, cout, 3, 1, 1, n);
    if (r->has_temb) { snprintf(n, sizeof n, "%s.time_emb_proj", name); nn_linear_load(L, &r->temb, temb_dim, cout, 1, n); }
    snprintf(n, sizeof n, "%s.norm2", name); nn_gnorm_load(L, &r->norm2, cout, groups, eps, n);
    snprintf(n, sizeof n, "%s.conv2", name); nn_conv_load(L, &r->conv2, cout, cout, 3, 1, 1, n);
    if (r->has_shortcut) { snprintf(n, sizeof n, "%s.conv_shortcut", name); nn_conv_load(L, &r->shortcut, cin, cout, 1, 1, 0, n); }
}

void nn_resnet_fwd(const nn_resnet *r, const float *x, int B, int H, int W, const float *temb_act, float *y) {
    size_t HW = (size_t)H * W;
    float *t = talloc((size_t)B * r->cin * HW), *h = talloc((size_t)B * r->cout * HW);
    nn_gnorm_fwd(&r->norm1, x, B, (int)HW, t, LOCUS_ACT_SILU);
    nn_conv_fwd(&r->conv1, t, B, H, W, h);
    if (r->has_temb && temb_act) {
        float *tp = talloc((size_t)B * r->cout);
        nn_linear_fwd(&r->temb, temb_act, B, tp);
        locus_scale_shift_rows(h, h, (size_t)B * r->cout, HW, NULL, tp); /* h + temb[:, :, None, None], rows (b, c) */
        locus_free(tp);
    }
    float *t2 = talloc((size_t)B * r->cout * HW);
    nn_gnorm_fwd(&r->norm2, h, B, (int)HW, t2, LOCUS_ACT_SILU);
    nn_conv_fwd(&r->conv2, t2, B, H, W, h);
    const float *skip = x;
    if (r->has_shortcut) {
        nn_conv_fwd(&r->shortcut, x, B, H, W, t2);
        skip = t2;
    }
    locus_binary(skip, h, y, (size_t)B * r->cout * HW, LOCUS_BIN_ADD, 0.0f); /* (input + hidden) / 1.0 */
    locus_free(t); locus_free(h); locus_free(t2);
}

/* ---- Attention with the classic AttnProcessor ---- */

void nn_attention_load(locus_loader *L, nn_attention *a, int query_dim, int ctx_dim, int heads, int dim_head, int qkv_bias,
                       const char *name) {
    char n[512];
    a->heads = heads; a->dim_head = dim_head; a->inner = heads * dim_head; a->query_dim = query_dim; a->ctx_dim = ctx_dim;
    snprintf(n, sizeof n, "%s.to_q", name); nn_linear_load(L, &a->q, query_dim, a->inner, qkv_bias, n);
    snprintf(n, sizeof n, "%s.to_k", name); nn_linear_load(L, &a->k, ctx_dim, a->inner, qkv_bias, n);
    snprintf(n, sizeof n, "%s.to_v", name); nn_linear_load(L, &a->v, ctx_dim, a->inner, qkv_bias, n);
    snprintf(n, sizeof n, "%s.to_out.0", name); nn_linear_load(L, &a->out, a->inner, query_dim, 1, n);
    a->text_index = -1;
}

/* locus_text_kv.project of a classic attention layer: K = to_k(ctx), V = to_v(ctx) for one batch row (the
 * GEMM computes every row with the same chain whatever the row count, so these are the layer's own bits) */
static void nn_attention_project(const locus_text_kv *site, const float *ctx, float *k_out, float *v_out) {
    const nn_attention *a = site->impl;
    nn_linear_fwd(&a->k, ctx, site->S, k_out);
    nn_linear_fwd(&a->v, ctx, site->S, v_out);
}

/* o[b,t,h*D+d] = sum_j p[b,h,t,j] v[b,j,h*D+d] for overridden probabilities: per (batch, head) one GEMM
 * against V^T packed [D,S] (each output one FMA chain over keys in order, whatever the threads). */
void nn_attention_from_probs(const float *p, const float *v, int B, int H, int T, int S, int D, float *o) {
    int C = H * D;
    float *vt = talloc((size_t)D * S), *tmp = talloc((size_t)T * D); /* V^T [D,S]; output [T,D] */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            for (int j = 0; j < S; j++)
                for (int dd = 0; dd < D; dd++) vt[(size_t)dd * S + j] = v[((size_t)b * S + j) * C + h * D + dd];
            locus_linear(p + ((size_t)b * H + h) * T * S, T, S, vt, NULL, D, tmp);
            for (int t = 0; t < T; t++)
                memcpy(o + ((size_t)b * T + t) * C + h * D, tmp + (size_t)t * D, (size_t)D * sizeof(float));
        }
    locus_free(vt);
    locus_free(tmp);
}

void nn_attention_fwd(const nn_attention *a, const float *x, int B, int T, const float *ctx, int S, float *y,
                      const locus_hooks *hooks, const char *name) {
    int C = a->inner;
    float *q = talloc((size_t)B * T * C), *k = talloc((size_t)B * S * C), *v = talloc((size_t)B * S * C), *o = talloc((size_t)B * T * C);
    nn_linear_fwd(&a->q, x, B * T, q);
    nn_linear_fwd(&a->k, ctx, B * S, k);
    nn_linear_fwd(&a->v, ctx, B * S, v);
    if (a->text_index >= 0 && locus_hooks_active(hooks)) {
        locus_text_kv site = {name, a->text_index, B, S, C, k, v, nn_attention_project, a};
        locus_hook_text_kv(hooks, &site);
    }
    if (locus_hooks_active(hooks)) { /* hook points: <layer>.q [B,T,inner], .k / .v [B,S,inner], .out (heads, before to_out) */
        char hn[512];
        snprintf(hn, sizeof hn, "%s.q", name); locus_hook(hooks, hn, q, 3, B, T, C, 0);
        snprintf(hn, sizeof hn, "%s.k", name); locus_hook(hooks, hn, k, 3, B, S, C, 0);
        snprintf(hn, sizeof hn, "%s.v", name); locus_hook(hooks, hn, v, 3, B, S, C, 0);
    }
    float *probs = NULL; /* [B,heads,T,S], only when a hook asks for <layer>.probs or overrides probabilities */
    char pn[512];
    snprintf(pn, sizeof pn, "%s.probs", name);
    int override = a->text_index >= 0 && locus_hooks_have_probs(hooks);
    if (override || locus_hook_wants(hooks, pn)) probs = talloc((size_t)B * a->heads * T * S);
    locus_attn_desc d = {B, a->heads, T, S, a->dim_head, q, (ptrdiff_t)T * C, C, k, (ptrdiff_t)S * C, C, v, (ptrdiff_t)S * C, C,
                         o, (ptrdiff_t)T * C, C, 1.0f / sqrtf((float)a->dim_head), NULL, 0, 0, probs};
    locus_attention(&d);
    if (override) {
        locus_attn_probs site = {name, a->text_index, B, a->heads, T, S, probs};
        if (locus_hook_probs(hooks, &site)) nn_attention_from_probs(probs, v, B, a->heads, T, S, a->dim_head, o);
    }
    if (probs) {
        locus_hook(hooks, pn, probs, 4, B, a->heads, T, S);
        locus_free(probs);
    }
    if (locus_hooks_active(hooks)) {
        char hn[512];
        snprintf(hn, sizeof hn, "%s.out", name);
        locus_hook(hooks, hn, o, 3, B, T, C, 0);
    }
    nn_linear_fwd(&a->out, o, B * T, y);
    locus_hook(hooks, name, y, 3, B, T, a->query_dim, 0);
    locus_free(q); locus_free(k); locus_free(v); locus_free(o);
}

/* ---- BasicTransformerBlock (layer_norm, GEGLU feed-forward) and Transformer2DModel ---- */

static void nn_tblock_load(locus_loader *L, nn_tblock *b, int dim, int heads, int dim_head, int ctx_dim, int only_cross,
                           const char *name) {
    char n[512];
    b->dim = dim; b->ff_inner = 4 * dim; b->only_cross = only_cross;
    snprintf(n, sizeof n, "%s.norm1", name); nn_lnorm_load(L, &b->n1, dim, 1e-5f, n);
    snprintf(n, sizeof n, "%s.attn1", name); nn_attention_load(L, &b->a1, dim, only_cross ? ctx_dim : dim, heads, dim_head, 0, n);
    snprintf(n, sizeof n, "%s.norm2", name); nn_lnorm_load(L, &b->n2, dim, 1e-5f, n);
    snprintf(n, sizeof n, "%s.attn2", name); nn_attention_load(L, &b->a2, dim, ctx_dim, heads, dim_head, 0, n);
    snprintf(n, sizeof n, "%s.norm3", name); nn_lnorm_load(L, &b->n3, dim, 1e-5f, n);
    snprintf(n, sizeof n, "%s.ff.net.0.proj", name); nn_linear_load(L, &b->ff_in, dim, 2 * b->ff_inner, 1, n);
    snprintf(n, sizeof n, "%s.ff.net.2", name); nn_linear_load(L, &b->ff_out, b->ff_inner, dim, 1, n);
}

/* h[B,T,dim] updated in place */
static void nn_tblock_fwd(const nn_tblock *b, float *h, int B, int T, const float *ctx, int S, const locus_hooks *hooks,
                          const char *name) {
    char n[512];
    size_t N = (size_t)B * T * b->dim;
    float *t = talloc(N), *a = talloc(N);
    locus_layer_norm(h, t, (size_t)B * T, b->dim, b->n1.w, b->n1.b, b->n1.eps);
    snprintf(n, sizeof n, "%s.attn1", name);
    if (b->only_cross) nn_attention_fwd(&b->a1, t, B, T, ctx, S, a, hooks, n);
    else nn_attention_fwd(&b->a1, t, B, T, t, T, a, hooks, n);
    locus_binary(a, h, h, N, LOCUS_BIN_ADD, 0.0f);
    locus_layer_norm(h, t, (size_t)B * T, b->dim, b->n2.w, b->n2.b, b->n2.eps);
    snprintf(n, sizeof n, "%s.attn2", name);
    nn_attention_fwd(&b->a2, t, B, T, ctx, S, a, hooks, n);
    locus_binary(a, h, h, N, LOCUS_BIN_ADD, 0.0f);
    locus_layer_norm(h, t, (size_t)B * T, b->dim, b->n3.w, b->n3.b, b->n3.eps);
    /* GEGLU: proj -> (hidden, gate) halves -> hidden * gelu(gate) -> net.2 */
    size_t rows = (size_t)B * T;
    int fi = b->ff_inner;
    float *p = talloc(rows * 2 * fi), *g = talloc(rows * fi);
    nn_linear_fwd(&b->ff_in, t, (int)rows, p);
    locus_geglu(p, g, rows, (size_t)fi);
    nn_linear_fwd(&b->ff_out, g, (int)rows, a);
    snprintf(n, sizeof n, "%s.ff", name);
    locus_hook(hooks, n, a, 3, B, T, b->dim, 0);
    locus_binary(a, h, h, N, LOCUS_BIN_ADD, 0.0f);
    locus_hook(hooks, name, h, 3, B, T, b->dim, 0);
    locus_free(t); locus_free(a); locus_free(p); locus_free(g);
}

void nn_transformer2d_load(locus_loader *L, nn_transformer2d *t, int c, int heads, int dim_head, int layers, int ctx_dim,
                           int groups, int linear_proj, int only_cross, const char *name) {
    char n[512];
    memset(t, 0, sizeof *t);
    t->c = c; t->inner = heads * dim_head; t->linear_proj = linear_proj; t->nblocks = layers;
    snprintf(n, sizeof n, "%s.norm", name); nn_gnorm_load(L, &t->norm, c, groups, 1e-6f, n);
    if (linear_proj) {
        snprintf(n, sizeof n, "%s.proj_in", name); nn_linear_load(L, &t->proj_in_l, c, t->inner, 1, n);
        snprintf(n, sizeof n, "%s.proj_out", name); nn_linear_load(L, &t->proj_out_l, t->inner, c, 1, n);
    } else {
        snprintf(n, sizeof n, "%s.proj_in", name); nn_conv_load(L, &t->proj_in_c, c, t->inner, 1, 1, 0, n);
        snprintf(n, sizeof n, "%s.proj_out", name); nn_conv_load(L, &t->proj_out_c, t->inner, c, 1, 1, 0, n);
    }
    t->blocks = calloc((size_t)layers, sizeof *t->blocks);
    for (int i = 0; i < layers; i++) {
        snprintf(n, sizeof n, "%s.transformer_blocks.%d", name, i);
        nn_tblock_load(L, &t->blocks[i], t->inner, heads, dim_head, ctx_dim, only_cross, n);
    }
}

void nn_transformer2d_free(nn_transformer2d *t) { free(t->blocks); t->blocks = NULL; }

/* (B,R,C) -> (B,C,R) */
static void transpose_bc(const float *x, float *y, int B, int R, int Cc) { locus_transpose(x, y, B, R, Cc); }

void nn_transformer2d_fwd(const nn_transformer2d *t, const float *x, int B, int H, int W, const float *ctx, int S,
                          float *y, const locus_hooks *hooks, const char *name) {
    int HW = H * W, C = t->c, I = t->inner;
    float *n0 = talloc((size_t)B * C * HW), *h = talloc((size_t)B * HW * I), *tmp = talloc((size_t)B * HW * (I > C ? I : C));
    nn_gnorm_fwd(&t->norm, x, B, HW, n0, LOCUS_ACT_NONE);
    if (t->linear_proj) {
        transpose_bc(n0, tmp, B, C, HW); /* (B,C,HW) -> (B,HW,C) */
        nn_linear_fwd(&t->proj_in_l, tmp, B * HW, h);
    } else {
        nn_conv_fwd(&t->proj_in_c, n0, B, H, W, tmp);
        transpose_bc(tmp, h, B, I, HW);
    }
    char n[512];
    for (int i = 0; i < t->nblocks; i++) {
        snprintf(n, sizeof n, "%s.transformer_blocks.%d", name, i);
        nn_tblock_fwd(&t->blocks[i], h, B, HW, ctx, S, hooks, n);
    }
    if (t->linear_proj) {
        nn_linear_fwd(&t->proj_out_l, h, B * HW, tmp);
        transpose_bc(tmp, n0, B, HW, C);
    } else {
        transpose_bc(h, tmp, B, HW, I);
        nn_conv_fwd(&t->proj_out_c, tmp, B, H, W, n0);
    }
    locus_binary(n0, x, y, (size_t)B * C * HW, LOCUS_BIN_ADD, 0.0f); /* hidden + residual */
    snprintf(n, sizeof n, "%s:0", name);
    locus_hook(hooks, n, y, 4, B, C, H, W);
    locus_free(n0); locus_free(h); locus_free(tmp);
}
