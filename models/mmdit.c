/* mmdit.c — SD3Transformer2DModel load and forward (diffusers v0.31 semantics; see mmdit.h). */
#include "mmdit.h"

#include "denoiser.h"
#include "mmdit_bwd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

static float *talloc(size_t n) { return locus_alloc_act((n ? n : 1) * sizeof(float), "MM-DiT activations"); }
static locus_status mmdit_build(locus_mmdit *m);

locus_status locus_mmdit_load(locus_mmdit *m, const char *dir) {
    memset(m, 0, sizeof *m);
    locus_status st = locus_loader_open(&m->L, dir);
    return st ? st : mmdit_build(m);
}

locus_status locus_mmdit_load_random(locus_mmdit *m, const char *config_path, uint64_t seed) {
    memset(m, 0, sizeof *m);
    locus_status st = locus_loader_open_random(&m->L, config_path, seed);
    return st ? st : mmdit_build(m);
}

static locus_status mmdit_build(locus_mmdit *m) {
    locus_loader *L = &m->L;
    const char *dir = L->dir;
    const char *cls = locus_cfg_str(L, "_class_name", "SD3Transformer2DModel");
    if (strcmp(cls, "SD3Transformer2DModel"))
        locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: _class_name '%s' is not an SD3Transformer2DModel", dir, cls);
    /* the schema: bounded sizes (products cannot overflow), heads x head_dim = caption_projection_dim, the
     * default image inside the position-embedding table */
    m->in_channels = (int)locus_cfg_int_in(L, "in_channels", 16, 1, 4096);
    m->out_channels = (int)locus_cfg_int_in(L, "out_channels", 16, 1, 4096);
    m->patch = (int)locus_cfg_int_in(L, "patch_size", 2, 1, 16);
    m->heads = (int)locus_cfg_int_in(L, "num_attention_heads", 18, 1, 1024);
    m->head_dim = (int)locus_cfg_int_in(L, "attention_head_dim", 64, 1, 1024);
    m->nlayers = (int)locus_cfg_int_in(L, "num_layers", 18, 1, 1000);
    m->joint_dim = (int)locus_cfg_int_in(L, "joint_attention_dim", 4096, 1, 65536);
    int cap = (int)locus_cfg_int_in(L, "caption_projection_dim", 1152, 1, 65536);
    m->pooled_dim = (int)locus_cfg_int_in(L, "pooled_projection_dim", 2048, 1, 65536);
    m->pos_max = (int)locus_cfg_int_in(L, "pos_embed_max_size", 96, 1, 4096);
    m->sample_size = (int)locus_cfg_int_in(L, "sample_size", 128, 1, 65536);
    locus_cfg_require(L, m->sample_size % m->patch == 0 && m->sample_size / m->patch <= m->pos_max,
                      "sample_size %d is not a multiple of patch_size %d within pos_embed_max_size %d patches", m->sample_size, m->patch, m->pos_max);
    const char *qk = locus_cfg_str(L, "qk_norm", NULL);
    m->qk_norm = qk != NULL;
    if (qk && strcmp(qk, "rms_norm")) locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: qk_norm '%s' is not supported (rms_norm)", dir, qk);
    int64_t dual[256];
    int ndual = locus_cfg_ints(L, "dual_attention_layers", dual, 256, 0);
    for (int j = 0; j < ndual; j++) locus_cfg_require(L, dual[j] >= 0 && dual[j] < m->nlayers, "dual_attention_layers entry %lld is not a layer", (long long)dual[j]);
    m->D = m->heads * m->head_dim;
    if (!L->status && cap != m->D) locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: caption_projection_dim %d != heads*head_dim %d", dir, cap, m->D);
    if (!L->status && (m->nlayers <= 0 || m->nlayers > 1000 || m->D <= 0))
        locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: bad num_layers / attention sizes", dir);
    if (L->status) {
        locus_status st0 = locus_loader_status(L);
        locus_mmdit_free(m); /* cleanup keeps the thread's error message */
        return st0;
    }
    int D = m->D, p = m->patch, hd = m->head_dim;
    nn_conv_load(L, &m->patch_proj, m->in_channels, D, p, p, 0, "pos_embed.proj");
    m->pos_table = locus_param(L, 3, 1, (int64_t)m->pos_max * m->pos_max, D, 0, "pos_embed.pos_embed");
    nn_linear_load(L, &m->t1, 256, D, 1, "time_text_embed.timestep_embedder.linear_1");
    nn_linear_load(L, &m->t2, D, D, 1, "time_text_embed.timestep_embedder.linear_2");
    nn_linear_load(L, &m->p1, m->pooled_dim, D, 1, "time_text_embed.text_embedder.linear_1");
    nn_linear_load(L, &m->p2, D, D, 1, "time_text_embed.text_embedder.linear_2");
    nn_linear_load(L, &m->ctx_emb, m->joint_dim, D, 1, "context_embedder");
    m->blocks = calloc((size_t)m->nlayers, sizeof *m->blocks);
    if (!m->blocks) locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory building the transformer");
    char n[256];
    for (int i = 0; i < m->nlayers && !L->status; i++) {
        mmdit_block *b = &m->blocks[i];
        b->pre_only = i == m->nlayers - 1;
        for (int j = 0; j < ndual; j++) b->dual |= dual[j] == i;
#define LIN(field, in, out, fmt) do { snprintf(n, sizeof n, "transformer_blocks.%d." fmt, i); nn_linear_load(L, &b->field, in, out, 1, n); } while (0)
        LIN(norm1, D, (b->dual ? 9 : 6) * D, "norm1.linear");
        LIN(norm1_ctx, D, (b->pre_only ? 2 : 6) * D, "norm1_context.linear");
        LIN(q, D, D, "attn.to_q"); LIN(k, D, D, "attn.to_k"); LIN(v, D, D, "attn.to_v");
        LIN(aq, D, D, "attn.add_q_proj"); LIN(ak, D, D, "attn.add_k_proj"); LIN(av, D, D, "attn.add_v_proj");
        LIN(out, D, D, "attn.to_out.0");
        if (!b->pre_only) LIN(add_out, D, D, "attn.to_add_out");
        if (m->qk_norm) {
            b->nq = locus_param(L, 1, hd, 0, 0, 0, "transformer_blocks.%d.attn.norm_q.weight", i);
            b->nk = locus_param(L, 1, hd, 0, 0, 0, "transformer_blocks.%d.attn.norm_k.weight", i);
            b->naq = locus_param(L, 1, hd, 0, 0, 0, "transformer_blocks.%d.attn.norm_added_q.weight", i);
            b->nak = locus_param(L, 1, hd, 0, 0, 0, "transformer_blocks.%d.attn.norm_added_k.weight", i);
        }
        if (b->dual) {
            LIN(q2, D, D, "attn2.to_q"); LIN(k2, D, D, "attn2.to_k"); LIN(v2, D, D, "attn2.to_v"); LIN(out2, D, D, "attn2.to_out.0");
            if (m->qk_norm) {
                b->nq2 = locus_param(L, 1, hd, 0, 0, 0, "transformer_blocks.%d.attn2.norm_q.weight", i);
                b->nk2 = locus_param(L, 1, hd, 0, 0, 0, "transformer_blocks.%d.attn2.norm_k.weight", i);
            }
        }
        LIN(ff_in, D, 4 * D, "ff.net.0.proj"); LIN(ff_out, 4 * D, D, "ff.net.2");
        if (!b->pre_only) { LIN(ffc_in, D, 4 * D, "ff_context.net.0.proj"); LIN(ffc_out, 4 * D, D, "ff_context.net.2"); }
#undef LIN
    }
    nn_linear_load(L, &m->norm_out, D, 2 * D, 1, "norm_out.linear");
    nn_linear_load(L, &m->proj_out, D, p * p * m->out_channels, 1, "proj_out");
    locus_loader_check_unused(L);
    locus_status st = locus_loader_status(L);
    if (st) locus_mmdit_free(m); /* cleanup keeps the thread's error message */
    return st;
}

void locus_mmdit_free(locus_mmdit *m) {
    free(m->blocks);
    m->blocks = NULL;
    locus_loader_close(&m->L);
}

/* y[b,t,:] = LN(x[b,t,:]) * (1 + scale[b]) + shift[b]  (LayerNorm without affine, eps 1e-6); scale/shift
 * rows have stride `es` floats per batch element.  One threaded op over the B*T rows (same bits as the
 * LayerNorm followed by per-row MUL and ADD). */
static void modulate(const float *x, float *y, int B, int T, int D, const float *scale, const float *shift, size_t es) {
    locus_layer_norm_modulate(x, y, (size_t)B, (size_t)T, (size_t)D, 1e-6f, scale, shift, es);
}

/* h[b,t,:] += gate[b] * o[b,t,:]  (product rounded, then the sum; threaded over the B*T rows) */
static void gated_add(float *h, const float *o, int B, int T, int D, const float *gate, size_t es) {
    locus_bcast_gated_add(h, o, gate, es, (size_t)B, (size_t)T, (size_t)D);
}

/* FeedForward gelu-approximate: net.2(gelu_tanh(net.0.proj(x))) */
static void ff_tanh(const nn_linear *in, const nn_linear *out, const float *x, int M, float *y) {
    float *h = talloc((size_t)M * in->out);
    nn_linear_fwd(in, x, M, h);
    locus_act(h, h, (size_t)M * in->out, LOCUS_ACT_GELU_TANH);
    nn_linear_fwd(out, h, M, y);
    locus_free(h);
}

static void qk_rms(float *x, int rows_heads, int hd, const float *w) {
    if (w) locus_rms_norm(x, x, (size_t)rows_heads, hd, w, 1e-6f);
}

/* hook a [B,D] chunk of AdaLN parameters (row stride es) under `name` */
static void hook_chunk(const locus_hooks *hooks, const char *name, const float *e, int B, int D, size_t es) {
    if (!locus_hooks_active(hooks)) return;
    float *t = talloc((size_t)B * D);
    for (int b = 0; b < B; b++) memcpy(t + (size_t)b * D, e + b * es, (size_t)D * sizeof(float));
    locus_hook(hooks, name, t, 2, B, D, 0, 0);
    locus_free(t);
}

static void block_fwd(const locus_mmdit *m, const mmdit_block *b, int i, float *h, int N, float *c, int S, int B, const float *temb_act,
                      const locus_hooks *hooks) {
    int D = m->D, H = m->heads, hd = m->head_dim, J = N + S;
    char n[128];
    int k1 = b->dual ? 9 : 6, k2 = b->pre_only ? 2 : 6;
    float *e1 = talloc((size_t)B * k1 * D), *e2 = talloc((size_t)B * k2 * D);
    nn_linear_fwd(&b->norm1, temb_act, B, e1);
    nn_linear_fwd(&b->norm1_ctx, temb_act, B, e2);
    size_t s1 = (size_t)k1 * D, s2 = (size_t)k2 * D;
    /* chunks: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp[, shift_msa2, scale_msa2, gate_msa2] */
    float *nh = talloc((size_t)B * N * D), *nc = talloc((size_t)B * S * D), *nh2 = b->dual ? talloc((size_t)B * N * D) : NULL;
    modulate(h, nh, B, N, D, e1 + D, e1, s1);
    snprintf(n, sizeof n, "transformer_blocks.%d.norm1:0", i);
    locus_hook(hooks, n, nh, 3, B, N, D, 0);
    /* AdaLayerNormZero outputs :1..:4 = gate_msa, shift_mlp, scale_mlp, gate_mlp (:6 = gate_msa2 when dual) */
    static const int chunk_of[5] = {0, 2, 3, 4, 5};
    for (int o = 1; o <= 4; o++) {
        snprintf(n, sizeof n, "transformer_blocks.%d.norm1:%d", i, o);
        hook_chunk(hooks, n, e1 + chunk_of[o] * D, B, D, s1);
        if (!b->pre_only) {
            snprintf(n, sizeof n, "transformer_blocks.%d.norm1_context:%d", i, o);
            hook_chunk(hooks, n, e2 + chunk_of[o] * D, B, D, s2);
        }
    }
    if (b->dual) { snprintf(n, sizeof n, "transformer_blocks.%d.norm1:6", i); hook_chunk(hooks, n, e1 + 8 * D, B, D, s1); }
    if (b->dual) {
        modulate(h, nh2, B, N, D, e1 + 7 * D, e1 + 6 * D, s1);
        snprintf(n, sizeof n, "transformer_blocks.%d.norm1:5", i);
        locus_hook(hooks, n, nh2, 3, B, N, D, 0);
    }
    if (b->pre_only) { /* AdaLayerNormContinuous: chunk order (scale, shift) */
        modulate(c, nc, B, S, D, e2, e2 + D, s2);
        snprintf(n, sizeof n, "transformer_blocks.%d.norm1_context", i);
    } else {
        modulate(c, nc, B, S, D, e2 + D, e2, s2);
        snprintf(n, sizeof n, "transformer_blocks.%d.norm1_context:0", i);
    }
    locus_hook(hooks, n, nc, 3, B, S, D, 0);
    /* joint attention over [image tokens | context tokens]: each stream's Q/K/V in its own [B,T,D] buffer
     * (hook points), then joined per batch row */
    float *q = talloc((size_t)B * J * D), *k = talloc((size_t)B * J * D), *v = talloc((size_t)B * J * D), *o = talloc((size_t)B * J * D);
    float *qi = talloc((size_t)B * N * D), *ki = talloc((size_t)B * N * D), *vi = talloc((size_t)B * N * D);
    float *qc = talloc((size_t)B * S * D), *kc = talloc((size_t)B * S * D), *vc = talloc((size_t)B * S * D);
    nn_linear_fwd(&b->q, nh, B * N, qi);
    nn_linear_fwd(&b->k, nh, B * N, ki);
    nn_linear_fwd(&b->v, nh, B * N, vi);
    nn_linear_fwd(&b->aq, nc, B * S, qc);
    nn_linear_fwd(&b->ak, nc, B * S, kc);
    nn_linear_fwd(&b->av, nc, B * S, vc);
    qk_rms(qi, B * N * H, hd, b->nq);
    qk_rms(ki, B * N * H, hd, b->nk);
    qk_rms(qc, B * S * H, hd, b->naq);
    qk_rms(kc, B * S * H, hd, b->nak);
    if (locus_hooks_active(hooks)) { /* the text K/V override point of this joint block (the paper's K/V patching site) */
        char ln[64];
        snprintf(ln, sizeof ln, "transformer_blocks.%d.attn", i);
        locus_text_kv site = {ln, i, B, S, D, kc, vc, NULL, b};
        locus_hook_text_kv(hooks, &site);
    }
    /* hook points as attention uses them (after qk-norm when the block has it): image .q .k .v [B,N,D], text
     * .add_q .add_k .add_v [B,S,D] — add_k/add_v are the paper's K/V patching sites */
    static const char *const qkv_names[6] = {"q", "k", "v", "add_q", "add_k", "add_v"};
    float *const qkv_bufs[6] = {qi, ki, vi, qc, kc, vc};
    for (int t = 0; t < 6; t++) {
        snprintf(n, sizeof n, "transformer_blocks.%d.attn.%s", i, qkv_names[t]);
        locus_hook(hooks, n, qkv_bufs[t], 3, B, t < 3 ? N : S, D, 0);
    }
    for (int bb = 0; bb < B; bb++) {
        size_t oi = (size_t)bb * J * D, oc = oi + (size_t)N * D, si = (size_t)bb * N * D, sc = (size_t)bb * S * D;
        memcpy(q + oi, qi + si, (size_t)N * D * sizeof(float));
        memcpy(k + oi, ki + si, (size_t)N * D * sizeof(float));
        memcpy(v + oi, vi + si, (size_t)N * D * sizeof(float));
        memcpy(q + oc, qc + sc, (size_t)S * D * sizeof(float));
        memcpy(k + oc, kc + sc, (size_t)S * D * sizeof(float));
        memcpy(v + oc, vc + sc, (size_t)S * D * sizeof(float));
    }
    locus_free(qi); locus_free(ki); locus_free(vi); locus_free(qc); locus_free(kc); locus_free(vc);
    /* attention probabilities [B,H,J,J] only when a hook asks for them (they can be large) */
    float *probs = NULL;
    snprintf(n, sizeof n, "transformer_blocks.%d.attn.probs", i);
    if (locus_hook_wants(hooks, n)) probs = talloc((size_t)B * H * J * J);
    locus_attn_desc d = {B, H, J, J, hd, q, (ptrdiff_t)J * D, D, k, (ptrdiff_t)J * D, D, v, (ptrdiff_t)J * D, D, o, (ptrdiff_t)J * D, D,
                         1.0f / sqrtf((float)hd), NULL, 0, 0, probs};
    locus_attention(&d);
    if (probs) {
        snprintf(n, sizeof n, "transformer_blocks.%d.attn.probs", i);
        locus_hook(hooks, n, probs, 4, B, H, J, J);
        locus_free(probs);
    }
    float *ao = talloc((size_t)B * N * D), *co = talloc((size_t)B * S * D);
    for (int bb = 0; bb < B; bb++) {
        nn_linear_fwd(&b->out, o + (size_t)bb * J * D, N, ao + (size_t)bb * N * D);
        if (!b->pre_only) nn_linear_fwd(&b->add_out, o + (size_t)bb * J * D + (size_t)N * D, S, co + (size_t)bb * S * D);
        else memcpy(co + (size_t)bb * S * D, o + (size_t)bb * J * D + (size_t)N * D, (size_t)S * D * sizeof(float)); /* unprojected */
    }
    snprintf(n, sizeof n, "transformer_blocks.%d.attn:0", i);
    locus_hook(hooks, n, ao, 3, B, N, D, 0);
    snprintf(n, sizeof n, "transformer_blocks.%d.attn:1", i);
    locus_hook(hooks, n, co, 3, B, S, D, 0);
    gated_add(h, ao, B, N, D, e1 + 2 * D, s1);
    if (b->dual) { /* SD3.5: second self-attention on the image tokens */
        for (int bb = 0; bb < B; bb++) {
            size_t oi = (size_t)bb * N * D;
            nn_linear_fwd(&b->q2, nh2 + oi, N, q + oi);
            nn_linear_fwd(&b->k2, nh2 + oi, N, k + oi);
            nn_linear_fwd(&b->v2, nh2 + oi, N, v + oi);
            qk_rms(q + oi, N * H, hd, b->nq2);
            qk_rms(k + oi, N * H, hd, b->nk2);
        }
        locus_attn_desc d2 = {B, H, N, N, hd, q, (ptrdiff_t)N * D, D, k, (ptrdiff_t)N * D, D, v, (ptrdiff_t)N * D, D, o, (ptrdiff_t)N * D, D,
                              1.0f / sqrtf((float)hd), NULL, 0, 0, NULL};
        locus_attention(&d2);
        nn_linear_fwd(&b->out2, o, B * N, ao);
        snprintf(n, sizeof n, "transformer_blocks.%d.attn2", i);
        locus_hook(hooks, n, ao, 3, B, N, D, 0);
        gated_add(h, ao, B, N, D, e1 + 8 * D, s1);
    }
    /* feed-forward, image stream */
    modulate(h, nh, B, N, D, e1 + 4 * D, e1 + 3 * D, s1);
    ff_tanh(&b->ff_in, &b->ff_out, nh, B * N, ao);
    snprintf(n, sizeof n, "transformer_blocks.%d.ff", i);
    locus_hook(hooks, n, ao, 3, B, N, D, 0);
    gated_add(h, ao, B, N, D, e1 + 5 * D, s1);
    if (!b->pre_only) {
        gated_add(c, co, B, S, D, e2 + 2 * D, s2);
        modulate(c, nc, B, S, D, e2 + 4 * D, e2 + 3 * D, s2);
        ff_tanh(&b->ffc_in, &b->ffc_out, nc, B * S, co);
        snprintf(n, sizeof n, "transformer_blocks.%d.ff_context", i);
        locus_hook(hooks, n, co, 3, B, S, D, 0);
        gated_add(c, co, B, S, D, e2 + 5 * D, s2);
        snprintf(n, sizeof n, "transformer_blocks.%d:0", i);
        locus_hook(hooks, n, c, 3, B, S, D, 0);
    }
    snprintf(n, sizeof n, "transformer_blocks.%d:1", i);
    locus_hook(hooks, n, h, 3, B, N, D, 0);
    locus_free(e1); locus_free(e2); locus_free(nh); locus_free(nc); locus_free(nh2);
    locus_free(q); locus_free(k); locus_free(v); locus_free(o); locus_free(ao); locus_free(co);
}

void locus_mmdit_forward(const locus_mmdit *m, const float *x, int B, int H, int W, const float *timesteps, const float *ctx, int S,
                         const float *pooled, float *out, const locus_hooks *hooks) {
    int D = m->D, p = m->patch, hp = H / p, wp = W / p, N = hp * wp, C = m->out_channels;
    /* patch embedding + cropped position table */
    float *pe = talloc((size_t)B * D * N), *h = talloc((size_t)B * N * D);
    nn_conv_fwd(&m->patch_proj, x, B, H, W, pe);
    locus_transpose(pe, h, B, D, N);
    int top = (m->pos_max - hp) / 2, left = (m->pos_max - wp) / 2;
    for (int b = 0; b < B; b++)
        for (int r = 0; r < hp; r++)
            for (int c = 0; c < wp; c++) {
                float *row = h + ((size_t)b * N + r * wp + c) * D;
                locus_binary(row, m->pos_table + ((size_t)(top + r) * m->pos_max + left + c) * D, row, D, LOCUS_BIN_ADD, 0.0f);
            }
    locus_hook(hooks, "pos_embed", h, 3, B, N, D, 0);
    /* conditioning: timestep MLP(sinusoid_256(t)) + pooled-text MLP */
    float *tp = talloc((size_t)B * 256), *a = talloc((size_t)B * D), *temb = talloc((size_t)B * D), *pt = talloc((size_t)B * D);
    locus_timestep_embedding(timesteps, B, 256, 1, 0.0f, 1.0f, 10000.0f, tp);
    nn_linear_fwd(&m->t1, tp, B, a);
    locus_act(a, a, (size_t)B * D, LOCUS_ACT_SILU);
    nn_linear_fwd(&m->t2, a, B, temb);
    nn_linear_fwd(&m->p1, pooled, B, a);
    locus_act(a, a, (size_t)B * D, LOCUS_ACT_SILU);
    nn_linear_fwd(&m->p2, a, B, pt);
    locus_binary(temb, pt, temb, (size_t)B * D, LOCUS_BIN_ADD, 0.0f);
    locus_hook(hooks, "time_text_embed", temb, 2, B, D, 0, 0);
    float *temb_act = pt;
    locus_act(temb, temb_act, (size_t)B * D, LOCUS_ACT_SILU);
    float *c = talloc((size_t)B * S * D);
    nn_linear_fwd(&m->ctx_emb, ctx, B * S, c);
    locus_hook(hooks, "context_embedder", c, 3, B, S, D, 0);
    for (int i = 0; i < m->nlayers; i++) block_fwd(m, &m->blocks[i], i, h, N, c, S, B, temb_act, hooks);
    /* norm_out (AdaLayerNormContinuous: scale, shift) + proj_out + unpatchify */
    float *e = talloc((size_t)B * 2 * D), *nh = talloc((size_t)B * N * D), *po = talloc((size_t)B * N * p * p * C);
    nn_linear_fwd(&m->norm_out, temb_act, B, e);
    modulate(h, nh, B, N, D, e, e + D, (size_t)2 * D);
    locus_hook(hooks, "norm_out", nh, 3, B, N, D, 0);
    nn_linear_fwd(&m->proj_out, nh, B * N, po);
    locus_hook(hooks, "proj_out", po, 3, B, N, p * p * C, 0);
    for (int b = 0; b < B; b++) /* nhwpqc -> nchpwq */
        for (int r = 0; r < hp; r++)
            for (int cc = 0; cc < wp; cc++)
                for (int pi = 0; pi < p; pi++)
                    for (int qi = 0; qi < p; qi++)
                        for (int ch = 0; ch < C; ch++)
                            out[(((size_t)b * C + ch) * H + r * p + pi) * W + cc * p + qi] =
                                po[(((size_t)b * N + r * wp + cc) * p * p + pi * p + qi) * C + ch];
    locus_free(pe); locus_free(h); locus_free(tp); locus_free(a); locus_free(temb); locus_free(pt); locus_free(c);
    locus_free(e); locus_free(nh); locus_free(po);
}

/* ---- the MM-DiT as a locus_denoiser (denoiser.h) ---- */

static void mmdit_den_forward(const locus_denoiser *d, const float *x, int B, int h, int w, const float *t, const float *ctx, int S,
                              const float *pooled, float *out, const locus_hooks *hooks) {
    locus_mmdit_forward(d->model, x, B, h, w, t, ctx, S, pooled, out, hooks);
}

static size_t lin_params(const nn_linear *l) { return (size_t)l->in * l->out + (l->b ? (size_t)l->out : 0); }

/* joint attention layers (the text stream's K and V come from add_k_proj / add_v_proj: the paper's patched
 * sites) and SD3.5's second, image-only attention */
static int mmdit_den_layers(const locus_denoiser *d, locus_layer_info *out, int max) {
    const locus_mmdit *m = d->model;
    int k = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const mmdit_block *b = &m->blocks[i];
        if (k < max) {
            locus_layer_info *li = &out[k];
            memset(li, 0, sizeof *li);
            snprintf(li->name, sizeof li->name, "transformer_blocks.%d.attn", i);
            li->kind = LOCUS_LAYER_JOINT;
            li->heads = m->heads;
            li->text_params = lin_params(&b->ak) + lin_params(&b->av);
            li->text_index = i;
            snprintf(li->site, sizeof li->site, "transformer_blocks.%d", i); /* the paper patches "block i" */
        }
        k++;
        if (b->dual) {
            if (k < max) {
                locus_layer_info *li = &out[k];
                memset(li, 0, sizeof *li);
                snprintf(li->name, sizeof li->name, "transformer_blocks.%d.attn2", i);
                li->kind = LOCUS_LAYER_SELF;
                li->heads = m->heads;
                li->text_index = -1;
                snprintf(li->site, sizeof li->site, "%s", li->name);
            }
            k++;
        }
    }
    return k;
}

static void mmdit_den_close(locus_denoiser *d) {
    locus_mmdit_free(d->model);
    free(d->model);
}

static locus_status mmdit_den_train_forward(const locus_denoiser *d, const float *x, int B, int h, int w, const float *t, const float *ctx,
                                            int S, const float *pooled, float *out, int checkpoint, void **tape) {
    return locus_mmdit_forward_train(d->model, x, B, h, w, t, ctx, S, pooled, out, checkpoint, (locus_mmdit_tape **)tape);
}

static locus_status mmdit_den_backward(const locus_denoiser *d, void *tape, const float *dout, float *dx, float *dctx, float *dpooled,
                                       const locus_grads *g) {
    return locus_mmdit_backward(d->model, tape, dout, dx, dctx, dpooled, g);
}

static void mmdit_den_tape_free(void *tape) { locus_mmdit_tape_free(tape); }

const locus_denoiser_ops locus_mmdit_denoiser_ops = {"SD3Transformer2DModel", mmdit_den_forward,   mmdit_den_layers,   mmdit_den_close,
                                                    mmdit_den_train_forward, mmdit_den_backward, mmdit_den_tape_free};

locus_status locus_mmdit_denoiser(locus_denoiser *d, locus_mmdit *m) {
    memset(d, 0, sizeof *d);
    d->ops = &locus_mmdit_denoiser_ops;
    d->model = m;
    d->loader = &m->L;
    d->in_channels = m->in_channels;
    d->out_channels = m->out_channels;
    d->sample_size = d->sample_width = m->sample_size;
    d->size_multiple = m->patch;
    d->max_latent = m->pos_max * m->patch; /* the position-embedding crop must fit in the table */
    d->patch = m->patch;
    d->ctx_dim = m->joint_dim;
    d->pooled_dim = m->pooled_dim;
    d->params = m->L.nparams;
    d->ntext_layers = m->nlayers;
    d->flow_default = 1;
    static const char *const buffers[] = {"pos_embed.pos_embed", NULL}; /* a registered buffer in diffusers */
    d->buffers = buffers;
    return LOCUS_OK;
}
