/* if_nn.c — DeepFloyd IF's UNet building blocks (see if_nn.h): scale-shift resnets with resampling,
 * added-KV attention (AttnAddedKVProcessor) and the text pooling of addition_embed_type "text".  Formulas follow
 * diffusers v0.31 (models/resnet.py ResnetBlock2D, attention_processor.py AttnAddedKVProcessor,
 * embeddings.py TextTimeEmbedding / AttentionPooling) operation by operation. */
#include "if_nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

static float *talloc(size_t n) { return locus_alloc_act(n * sizeof(float), "IF UNet activations"); }

/* ---- ResnetBlock2D ---- */

void if_resnet_load(locus_loader *L, if_resnet *r, int cin, int cout, int temb_dim, int groups, float eps, int act, int scale_shift,
                    int skip_time_act, float out_scale, int resample, const char *name) {
    char n[512];
    memset(r, 0, sizeof *r);
    r->cin = cin; r->cout = cout; r->has_shortcut = cin != cout;
    r->act = act; r->scale_shift = scale_shift; r->skip_time_act = skip_time_act; r->out_scale = out_scale; r->resample = resample;
    snprintf(n, sizeof n, "%s.norm1", name); nn_gnorm_load(L, &r->norm1, cin, groups, eps, n);
    snprintf(n, sizeof n, "%s.conv1", name); nn_conv_load(L, &r->conv1, cin, cout, 3, 1, 1, n);
    snprintf(n, sizeof n, "%s.time_emb_proj", name); nn_linear_load(L, &r->temb, temb_dim, scale_shift ? 2 * cout : cout, 1, n);
    snprintf(n, sizeof n, "%s.norm2", name); nn_gnorm_load(L, &r->norm2, cout, groups, eps, n);
    snprintf(n, sizeof n, "%s.conv2", name); nn_conv_load(L, &r->conv2, cout, cout, 3, 1, 1, n);
    if (r->has_shortcut) { snprintf(n, sizeof n, "%s.conv_shortcut", name); nn_conv_load(L, &r->shortcut, cin, cout, 1, 1, 0, n); }
}

/* F.avg_pool2d(x, 2, 2) on x[R,H,W] -> y[R,H/2,W/2]: per output ((0 + a) + b + c + d) / 4 in fp32, torch's
 * window order (rows, then columns) */
static void avg_pool2(const float *x, float *y, size_t R, int H, int W) {
    int Ho = H / 2, Wo = W / 2;
    for (size_t r = 0; r < R; r++)
        for (int i = 0; i < Ho; i++)
            for (int j = 0; j < Wo; j++) {
                const float *p = x + (r * H + 2 * i) * W + 2 * j;
                float s = 0.0f;
                s += p[0]; s += p[1]; s += p[W]; s += p[W + 1];
                y[(r * Ho + i) * Wo + j] = s / 4.0f;
            }
}

static void hook_named(const locus_hooks *h, const char *name, const char *suffix, float *x, int ndim, int64_t d0, int64_t d1,
                       int64_t d2, int64_t d3) {
    if (!locus_hooks_active(h)) return;
    char n[512];
    snprintf(n, sizeof n, "%s%s", name, suffix);
    locus_hook(h, n, x, ndim, d0, d1, d2, d3);
}

void if_resnet_fwd(const if_resnet *r, const float *x, int B, int H, int W, const float *temb, float *y, const locus_hooks *hooks,
                   const char *name) {
    int Ho = r->resample < 0 ? H / 2 : r->resample > 0 ? 2 * H : H, Wo = r->resample < 0 ? W / 2 : r->resample > 0 ? 2 * W : W;
    size_t HW = (size_t)H * W, HWo = (size_t)Ho * Wo;
    float *t = talloc((size_t)B * r->cin * HW);             /* act(norm1(x)) [B,cin,H,W] */
    nn_gnorm_fwd(&r->norm1, x, B, (int)HW, t, r->act);
    const float *xin = x;                                   /* input_tensor, resampled: [B,cin,Ho,Wo] */
    float *xr = NULL, *tr = NULL;
    if (r->resample) {
        xr = talloc((size_t)B * r->cin * HWo);
        tr = talloc((size_t)B * r->cin * HWo);
        if (r->resample < 0) { avg_pool2(x, xr, (size_t)B * r->cin, H, W); avg_pool2(t, tr, (size_t)B * r->cin, H, W); }
        else { locus_upsample_nearest2x(x, xr, B, r->cin, H, W); locus_upsample_nearest2x(t, tr, B, r->cin, H, W); }
        locus_free(t);
        t = tr;
        xin = xr;
    }
    float *h = talloc((size_t)B * r->cout * HWo);           /* conv1 [B,cout,Ho,Wo] */
    nn_conv_fwd(&r->conv1, t, B, Ho, Wo, h);
    hook_named(hooks, name, ".conv1", h, 4, B, r->cout, Ho, Wo);
    int TP = r->temb.out;
    float *tp = talloc((size_t)B * TP);                     /* time_emb_proj [B,cout] or [B,2*cout] (scale | shift) */
    if (r->skip_time_act) nn_linear_fwd(&r->temb, temb, B, tp);
    else {
        float *ta = talloc((size_t)B * r->temb.in);
        locus_act(temb, ta, (size_t)B * r->temb.in, r->act);
        nn_linear_fwd(&r->temb, ta, B, tp);
        locus_free(ta);
    }
    hook_named(hooks, name, ".time_emb_proj", tp, 2, B, TP, 0, 0);
    float *t2 = talloc((size_t)B * r->cout * HWo);          /* norm2 (+ time conditioning), then act [B,cout,Ho,Wo] */
    if (r->scale_shift) {
        nn_gnorm_fwd(&r->norm2, h, B, (int)HWo, t2, LOCUS_ACT_NONE);
        float *sc = talloc((size_t)B * r->cout), *sh = talloc((size_t)B * r->cout); /* 1 + time_scale, time_shift: rows (b, c) */
        for (int b = 0; b < B; b++)
            for (int c = 0; c < r->cout; c++) {
                sc[(size_t)b * r->cout + c] = 1.0f + tp[(size_t)b * TP + c];
                sh[(size_t)b * r->cout + c] = tp[(size_t)b * TP + r->cout + c];
            }
        locus_scale_shift_rows(t2, t2, (size_t)B * r->cout, HWo, sc, sh); /* h * (1 + scale) + shift */
        locus_act(t2, t2, (size_t)B * r->cout * HWo, r->act);
        locus_free(sc); locus_free(sh);
    } else {
        locus_scale_shift_rows(h, h, (size_t)B * r->cout, HWo, NULL, tp); /* h + temb[:, :, None, None] */
        nn_gnorm_fwd(&r->norm2, h, B, (int)HWo, t2, r->act);
    }
    nn_conv_fwd(&r->conv2, t2, B, Ho, Wo, h);
    hook_named(hooks, name, ".conv2", h, 4, B, r->cout, Ho, Wo);
    if (r->has_shortcut) {
        nn_conv_fwd(&r->shortcut, xin, B, Ho, Wo, t2);
        hook_named(hooks, name, ".conv_shortcut", t2, 4, B, r->cout, Ho, Wo);
        xin = t2;
    }
    size_t N = (size_t)B * r->cout * HWo;
    float s = r->out_scale;
    for (size_t i = 0; i < N; i++) y[i] = (xin[i] + h[i]) / s; /* (input_tensor + hidden_states) / output_scale_factor */
    locus_free(t); locus_free(xr); locus_free(h); locus_free(tp); locus_free(t2);
}

/* ---- Attention with AttnAddedKVProcessor ---- */

void if_attn_load(locus_loader *L, if_attn *a, int c, int kv_dim, int heads, int dim_head, int groups, float eps, int norm_cross_groups,
                  const char *name) {
    char n[512];
    memset(a, 0, sizeof *a);
    a->c = c; a->heads = heads; a->dim_head = dim_head; a->inner = heads * dim_head; a->text_index = -1;
    snprintf(n, sizeof n, "%s.group_norm", name); nn_gnorm_load(L, &a->gn, c, groups, eps, n);
    a->norm_cross = norm_cross_groups > 0;
    if (a->norm_cross) { snprintf(n, sizeof n, "%s.norm_cross", name); nn_gnorm_load(L, &a->ncross, kv_dim, norm_cross_groups, 1e-5f, n); }
    snprintf(n, sizeof n, "%s.to_q", name); nn_linear_load(L, &a->q, c, a->inner, 1, n);
    snprintf(n, sizeof n, "%s.to_k", name); nn_linear_load(L, &a->k, c, a->inner, 1, n);
    snprintf(n, sizeof n, "%s.to_v", name); nn_linear_load(L, &a->v, c, a->inner, 1, n);
    snprintf(n, sizeof n, "%s.add_k_proj", name); nn_linear_load(L, &a->add_k, kv_dim, a->inner, 1, n);
    snprintf(n, sizeof n, "%s.add_v_proj", name); nn_linear_load(L, &a->add_v, kv_dim, a->inner, 1, n);
    snprintf(n, sizeof n, "%s.to_out.0", name); nn_linear_load(L, &a->out, a->inner, c, 1, n);
}

/* locus_text_kv.project: the layer's text K/V from a prompt embedding ctx[S, ctx_dim] of one batch row —
 * add_k_proj(encoder_hid_proj(ctx)), add_v_proj(...), the same GEMM chains as the forward (a row's result does
 * not depend on the row count), so the same bits the layer computes for that row. */
/* norm_cross on the text ctx[B,S,kv]: transpose to [B,kv,S], GroupNorm, transpose back into out[B,S,kv] */
static void norm_cross_fwd(const if_attn *a, const float *ctx, int B, int S, float *out, const locus_hooks *hooks, const char *name) {
    int K = a->ncross.c;
    float *t = talloc((size_t)B * K * S), *u = talloc((size_t)B * K * S); /* [B,kv,S] each */
    locus_transpose(ctx, t, B, S, K);
    nn_gnorm_fwd(&a->ncross, t, B, S, u, LOCUS_ACT_NONE);
    if (name) hook_named(hooks, name, ".norm_cross", u, 3, B, K, S, 0);
    locus_transpose(u, out, B, K, S);
    locus_free(t); locus_free(u);
}

static void if_attn_project(const locus_text_kv *site, const float *ctx, float *k_out, float *v_out) {
    const if_attn *a = site->impl;
    const float *e = ctx;
    float *pj = NULL, *nc = NULL;
    if (a->hid_proj) {
        pj = talloc((size_t)site->S * a->hid_proj->out); /* encoder_hid_proj(ctx) [S, cross_attention_dim] */
        nn_linear_fwd(a->hid_proj, ctx, site->S, pj);
        e = pj;
    }
    if (a->norm_cross) {
        nc = talloc((size_t)site->S * a->ncross.c);      /* norm_cross of it [S, kv_dim] */
        norm_cross_fwd(a, e, 1, site->S, nc, NULL, NULL);
        e = nc;
    }
    nn_linear_fwd(&a->add_k, e, site->S, k_out);
    nn_linear_fwd(&a->add_v, e, site->S, v_out);
    locus_free(pj);
    locus_free(nc);
}

void if_attn_fwd(const if_attn *a, const float *x, int B, int H, int W, const float *ctx, int S, float *y, const locus_hooks *hooks,
                 const char *name) {
    int T = H * W, C = a->c, I = a->inner, TK = S + T;
    int act = locus_hooks_active(hooks);
    float *gn = talloc((size_t)B * C * T);   /* group_norm(x) [B,C,HW] */
    float *hs = talloc((size_t)B * T * C);   /* its transpose [B,HW,C] */
    nn_gnorm_fwd(&a->gn, x, B, T, gn, LOCUS_ACT_NONE);
    if (act) hook_named(hooks, name, ".group_norm", gn, 3, B, C, T, 0);
    locus_transpose(gn, hs, B, C, T);
    float *q = talloc((size_t)B * T * I);    /* to_q [B,HW,inner] */
    float *ek = talloc((size_t)B * S * I), *ev = talloc((size_t)B * S * I); /* add_k_proj / add_v_proj of the text [B,S,inner] */
    float *k = talloc((size_t)B * T * I), *v = talloc((size_t)B * T * I);   /* to_k / to_v of the pixels [B,HW,inner] */
    nn_linear_fwd(&a->q, hs, B * T, q);
    float *nc = NULL;                        /* norm_cross(ctx) [B,S,kv_dim] */
    if (a->norm_cross) {
        nc = talloc((size_t)B * S * a->ncross.c);
        norm_cross_fwd(a, ctx, B, S, nc, act ? hooks : NULL, name);
        ctx = nc;
    }
    nn_linear_fwd(&a->add_k, ctx, B * S, ek);
    nn_linear_fwd(&a->add_v, ctx, B * S, ev);
    locus_free(nc);
    if (a->text_index >= 0 && act) {
        locus_text_kv site = {name, a->text_index, B, S, I, ek, ev, if_attn_project, a};
        locus_hook_text_kv(hooks, &site);
    }
    nn_linear_fwd(&a->k, hs, B * T, k);
    nn_linear_fwd(&a->v, hs, B * T, v);
    if (act) {
        hook_named(hooks, name, ".to_q", q, 3, B, T, I, 0);
        hook_named(hooks, name, ".add_k_proj", ek, 3, B, S, I, 0);
        hook_named(hooks, name, ".add_v_proj", ev, 3, B, S, I, 0);
        hook_named(hooks, name, ".to_k", k, 3, B, T, I, 0);
        hook_named(hooks, name, ".to_v", v, 3, B, T, I, 0);
    }
    /* key = cat([text K, pixel K], dim=1), value likewise: [B, S+HW, inner] */
    float *kc = talloc((size_t)B * TK * I), *vc = talloc((size_t)B * TK * I);
    for (int b = 0; b < B; b++) {
        memcpy(kc + (size_t)b * TK * I, ek + (size_t)b * S * I, (size_t)S * I * sizeof(float));
        memcpy(kc + ((size_t)b * TK + S) * I, k + (size_t)b * T * I, (size_t)T * I * sizeof(float));
        memcpy(vc + (size_t)b * TK * I, ev + (size_t)b * S * I, (size_t)S * I * sizeof(float));
        memcpy(vc + ((size_t)b * TK + S) * I, v + (size_t)b * T * I, (size_t)T * I * sizeof(float));
    }
    char pn[512];
    snprintf(pn, sizeof pn, "%s.probs", name);
    int override = act && a->text_index >= 0 && locus_hooks_have_probs(hooks); /* Prompt-to-Prompt: over all S+HW keys */
    float *probs = override || (act && locus_hook_wants(hooks, pn)) ? talloc((size_t)B * a->heads * T * TK) : NULL; /* [B,heads,HW,S+HW] */
    float *o = talloc((size_t)B * T * I);    /* heads output [B,HW,inner] */
    locus_attn_desc d = {B, a->heads, T, TK, a->dim_head, q, (ptrdiff_t)T * I, I, kc, (ptrdiff_t)TK * I, I, vc, (ptrdiff_t)TK * I, I,
                         o, (ptrdiff_t)T * I, I, 1.0f / sqrtf((float)a->dim_head), NULL, 0, 0, probs, 0};
    locus_attention(&d);
    if (override) {
        locus_attn_probs site = {name, a->text_index, B, a->heads, T, TK, probs};
        if (locus_hook_probs(hooks, &site)) nn_attention_from_probs(probs, vc, B, a->heads, T, TK, a->dim_head, o);
    }
    if (probs) { locus_hook(hooks, pn, probs, 4, B, a->heads, T, TK); locus_free(probs); }
    float *po = hs;                          /* to_out.0 [B,HW,C] (reuses hs) */
    nn_linear_fwd(&a->out, o, B * T, po);
    if (act) hook_named(hooks, name, ".to_out.0", po, 3, B, T, C, 0);
    locus_transpose(po, gn, B, T, C);        /* back to [B,C,HW] */
    locus_binary(gn, x, y, (size_t)B * C * T, LOCUS_BIN_ADD, 0.0f); /* hidden_states + residual */
    locus_hook(hooks, name, y, 4, B, C, H, W);
    locus_free(gn); locus_free(hs); locus_free(q); locus_free(ek); locus_free(ev); locus_free(k); locus_free(v);
    locus_free(kc); locus_free(vc); locus_free(o);
}

/* ---- TextTimeEmbedding with AttentionPooling ---- */

void if_text_time_load(locus_loader *L, if_text_time *t, int dim, int tdim, int heads, const char *name) {
    char n[512];
    memset(t, 0, sizeof *t);
    t->dim = dim; t->tdim = tdim; t->heads = heads;
    if (heads < 1 || dim % heads) locus_loader_fail(L, LOCUS_E_SHAPE, "%s: width %d not divisible into %d heads", name, dim, heads);
    snprintf(n, sizeof n, "%s.norm1", name); nn_lnorm_load(L, &t->norm1, dim, 1e-5f, n);
    t->pos = locus_param(L, 2, 1, dim, 0, 0, "%s.pool.positional_embedding", name);
    snprintf(n, sizeof n, "%s.pool.q_proj", name); nn_linear_load(L, &t->q, dim, dim, 1, n);
    snprintf(n, sizeof n, "%s.pool.k_proj", name); nn_linear_load(L, &t->k, dim, dim, 1, n);
    snprintf(n, sizeof n, "%s.pool.v_proj", name); nn_linear_load(L, &t->v, dim, dim, 1, n);
    snprintf(n, sizeof n, "%s.proj", name); nn_linear_load(L, &t->proj, dim, tdim, 1, n);
    snprintf(n, sizeof n, "%s.norm2", name); nn_lnorm_load(L, &t->norm2, tdim, 1e-5f, n);
}

void if_text_time_fwd(const if_text_time *t, const float *ctx, int B, int S, float *out, const locus_hooks *hooks, const char *name) {
    int D = t->dim, S1 = S + 1, dh = D / t->heads;
    float *n1 = talloc((size_t)B * S * D);   /* norm1 [B,S,D] */
    float *x = talloc((size_t)B * S1 * D);   /* cat([class token, tokens], dim=1) [B,S+1,D] */
    locus_layer_norm(ctx, n1, (size_t)B * S, D, t->norm1.w, t->norm1.b, t->norm1.eps);
    hook_named(hooks, name, ".norm1", n1, 3, B, S, D, 0);
    for (int b = 0; b < B; b++) {
        float *cls = x + (size_t)b * S1 * D;
        for (int c = 0; c < D; c++) { /* x.mean(dim=1) + positional_embedding */
            float s = 0.0f;
            for (int j = 0; j < S; j++) s += n1[((size_t)b * S + j) * D + c];
            cls[c] = s / (float)S + t->pos[c];
        }
        memcpy(cls + D, n1 + (size_t)b * S * D, (size_t)S * D * sizeof(float));
    }
    float *cq = talloc((size_t)B * D);       /* the class tokens [B,D] (rows of x) */
    for (int b = 0; b < B; b++) memcpy(cq + (size_t)b * D, x + (size_t)b * S1 * D, (size_t)D * sizeof(float));
    float *q = talloc((size_t)B * D), *k = talloc((size_t)B * S1 * D), *v = talloc((size_t)B * S1 * D); /* [B,1,D], [B,S+1,D] */
    nn_linear_fwd(&t->q, cq, B, q);
    nn_linear_fwd(&t->k, x, B * S1, k);
    nn_linear_fwd(&t->v, x, B * S1, v);
    hook_named(hooks, name, ".pool.q_proj", q, 3, B, 1, D, 0);
    hook_named(hooks, name, ".pool.k_proj", k, 3, B, S1, D, 0);
    hook_named(hooks, name, ".pool.v_proj", v, 3, B, S1, D, 0);
    /* einsum("bct,bcs->bts", q * scale, k * scale) with scale = 1/sqrt(sqrt(dim_per_head)): both sides scaled
     * (in place; the hook points above saw the projections), softmax in fp32, weights . v */
    float sc = (float)(1.0 / sqrt(sqrt((double)dh)));
    for (size_t i = 0; i < (size_t)B * D; i++) q[i] = q[i] * sc;
    for (size_t i = 0; i < (size_t)B * S1 * D; i++) k[i] = k[i] * sc;
    float *pool = cq;                        /* pooled class token [B,D] (reuses cq) */
    locus_attn_desc d = {B, t->heads, 1, S1, dh, q, D, D, k, (ptrdiff_t)S1 * D, D, v, (ptrdiff_t)S1 * D, D,
                         pool, D, D, 1.0f, NULL, 0, 0, NULL, 0};
    locus_attention(&d);
    hook_named(hooks, name, ".pool", pool, 2, B, D, 0, 0);
    float *pj = talloc((size_t)B * t->tdim); /* proj [B,tdim] */
    nn_linear_fwd(&t->proj, pool, B, pj);
    hook_named(hooks, name, ".proj", pj, 2, B, t->tdim, 0, 0);
    locus_layer_norm(pj, out, (size_t)B, t->tdim, t->norm2.w, t->norm2.b, t->norm2.eps);
    hook_named(hooks, name, ".norm2", out, 2, B, t->tdim, 0, 0);
    locus_hook(hooks, name, out, 2, B, t->tdim, 0, 0);
    locus_free(n1); locus_free(x); locus_free(cq); locus_free(q); locus_free(k); locus_free(v); locus_free(pj);
}
