/* textenc.c — CLIP and LDMBert text encoders (see textenc.h). */
#include "textenc.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

/* activation buffers of the forward pass (no error path: out of memory ends the process with one line) */
#define TA(n) locus_alloc_act((n), "text encoder activations")

locus_status locus_textenc_load(locus_textenc *t, const char *dir) {
    memset(t, 0, sizeof *t);
    locus_status st = locus_loader_open(&t->L, dir);
    if (st) return st;
    locus_loader *L = &t->L;
    const char *mt = locus_cfg_str(L, "model_type", "");
    /* ---- CLIP folder (issue 17): a CLIPModel config.json keeps the text tower's keys in text_config ---- */
    const locus_json *text_cfg = !strcmp(mt, "clip") ? locus_json_get(L->config.root, "text_config") : NULL;
    if (text_cfg && text_cfg->type == JSON_OBJECT) {
        L->config.root = (locus_json *)text_cfg; /* the document's pool still owns (and frees) the whole tree */
        mt = locus_cfg_str(L, "model_type", "clip_text_model");
    }
    /* ---- end CLIP folder ---- */
    char pre[64], n[256];
    if (!strcmp(mt, "ldmbert")) {
        t->kind = LOCUS_TEXT_LDMBERT;
        t->vocab = (int)locus_cfg_int_in(L, "vocab_size", 30522, 1, 2097152);
        t->D = (int)locus_cfg_int_in(L, "d_model", 1280, 1, 65536);
        t->nlayers = (int)locus_cfg_int_in(L, "encoder_layers", 32, 1, 1000);
        t->heads = (int)locus_cfg_int_in(L, "encoder_attention_heads", 8, 1, 1024);
        t->dim_head = (int)locus_cfg_int_in(L, "head_dim", 64, 1, 4096);
        t->ffn = (int)locus_cfg_int_in(L, "encoder_ffn_dim", 5120, 1, 262144);
        t->maxpos = (int)locus_cfg_int_in(L, "max_position_embeddings", 77, 1, 65536);
        t->eps = 1e-5f;
        const char *act = locus_cfg_str(L, "activation_function", "gelu");
        if (strcmp(act, "gelu")) locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: activation_function '%s' is not supported", dir, act);
        t->act = LOCUS_ACT_GELU_ERF;
        snprintf(pre, sizeof pre, "model");
        t->tok = locus_param(L, 2, t->vocab, t->D, 0, 0, "model.embed_tokens.weight");
        t->pos = locus_param(L, 2, t->maxpos, t->D, 0, 0, "model.embed_positions.weight");
    } else if (!strcmp(mt, "clip_text_model") || !strcmp(mt, "clip")) {
        t->kind = LOCUS_TEXT_CLIP;
        t->vocab = (int)locus_cfg_int_in(L, "vocab_size", 49408, 1, 2097152);
        t->D = (int)locus_cfg_int_in(L, "hidden_size", 512, 1, 65536);
        t->nlayers = (int)locus_cfg_int_in(L, "num_hidden_layers", 12, 0, 1000);
        t->heads = (int)locus_cfg_int_in(L, "num_attention_heads", 8, 1, 1024);
        t->dim_head = t->heads > 0 ? t->D / t->heads : 0;
        t->ffn = (int)locus_cfg_int_in(L, "intermediate_size", 2048, 1, 262144);
        t->maxpos = (int)locus_cfg_int_in(L, "max_position_embeddings", 77, 1, 65536);
        t->eps = (float)locus_cfg_num_in(L, "layer_norm_eps", 1e-5, 1e-30, 1.0);
        t->eos_id = locus_cfg_int(L, "eos_token_id", 2);
        const char *act = locus_cfg_str(L, "hidden_act", "quick_gelu");
        if (!strcmp(act, "quick_gelu")) t->act = LOCUS_ACT_QUICK_GELU;
        else if (!strcmp(act, "gelu")) t->act = LOCUS_ACT_GELU_ERF;
        else locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: hidden_act '%s' is not supported", dir, act);
        snprintf(pre, sizeof pre, "text_model.encoder");
        t->tok = locus_param(L, 2, t->vocab, t->D, 0, 0, "text_model.embeddings.token_embedding.weight");
        t->pos = locus_param(L, 2, t->maxpos, t->D, 0, 0, "text_model.embeddings.position_embedding.weight");
    } else {
        locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: text model_type '%s' is not supported (clip_text_model, ldmbert)", dir, mt);
        locus_status st0 = locus_loader_status(L);
        locus_textenc_free(t);
        return st0;
    }
    if (t->kind == LOCUS_TEXT_CLIP)
        locus_cfg_require(L, t->D % t->heads == 0, "num_attention_heads %d does not divide hidden_size %d", t->heads, t->D);
    if (L->status) {
        locus_status st0 = locus_loader_status(L);
        locus_textenc_free(t);
        return st0;
    }
    t->layers = calloc(t->nlayers > 0 ? (size_t)t->nlayers : 1, sizeof *t->layers);
    if (!t->layers) locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory building the text encoder");
    int inner = t->heads * t->dim_head, clip = t->kind == LOCUS_TEXT_CLIP;
    for (int i = 0; i < t->nlayers && !L->status; i++) {
        textenc_layer *y = &t->layers[i];
        const char *ln1 = clip ? "layer_norm1" : "self_attn_layer_norm", *ln2 = clip ? "layer_norm2" : "final_layer_norm";
        const char *mlp = clip ? "mlp." : "";
        snprintf(n, sizeof n, "%s.layers.%d.%s", pre, i, ln1); nn_lnorm_load(L, &y->ln1, t->D, t->eps, n);
        snprintf(n, sizeof n, "%s.layers.%d.self_attn.q_proj", pre, i); nn_linear_load(L, &y->q, t->D, inner, clip, n);
        snprintf(n, sizeof n, "%s.layers.%d.self_attn.k_proj", pre, i); nn_linear_load(L, &y->k, t->D, inner, clip, n);
        snprintf(n, sizeof n, "%s.layers.%d.self_attn.v_proj", pre, i); nn_linear_load(L, &y->v, t->D, inner, clip, n);
        snprintf(n, sizeof n, "%s.layers.%d.self_attn.out_proj", pre, i); nn_linear_load(L, &y->o, inner, t->D, 1, n);
        snprintf(n, sizeof n, "%s.layers.%d.%s", pre, i, ln2); nn_lnorm_load(L, &y->ln2, t->D, t->eps, n);
        snprintf(n, sizeof n, "%s.layers.%d.%sfc1", pre, i, mlp); nn_linear_load(L, &y->fc1, t->D, t->ffn, 1, n);
        snprintf(n, sizeof n, "%s.layers.%d.%sfc2", pre, i, mlp); nn_linear_load(L, &y->fc2, t->ffn, t->D, 1, n);
    }
    nn_lnorm_load(L, &t->final_ln, t->D, t->eps, clip ? "text_model.final_layer_norm" : "model.layer_norm");
    if (clip && !L->status && locus_st_set_find(&L->st, "text_projection.weight")) {
        t->proj_dim = (int)locus_cfg_int_in(L, "projection_dim", t->D, 1, 65536);
        nn_linear_load(L, &t->proj, t->D, t->proj_dim, 0, "text_projection");
    }
    if (!clip) locus_loader_allow_unused(L, "to_logits."); /* LDMBert's language-model head: not part of the encoder */
    /* a whole CLIP model folder (model_type "clip": the text tower of a CLIP pair): the vision tower's weights
     * are the pair's, not this encoder's */
    if (clip && locus_st_set_find(&L->st, "visual_projection.weight")) {
        locus_loader_allow_unused(L, "vision_model.");
        locus_loader_allow_unused(L, "visual_projection.");
        locus_loader_allow_unused(L, "logit_scale");
    }
    locus_loader_check_unused(L);
    st = locus_loader_status(L);
    if (st) locus_textenc_free(t); /* cleanup keeps the thread's error message */
    return st;
}

void locus_textenc_free(locus_textenc *t) {
    free(t->layers);
    t->layers = NULL;
    locus_loader_close(&t->L);
}

locus_status locus_textenc_forward(const locus_textenc *t, const int64_t *ids, int B, int T, float *last, int hidden_index,
                                   float *hidden, float *pooled, float *text_embeds, const locus_hooks *hooks) {
    if (T > t->maxpos) return locus_fail(LOCUS_E_ARG, "text encoder: %d tokens, at most %d", T, t->maxpos);
    for (int i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab) return locus_fail(LOCUS_E_ARG, "text encoder: token id %lld outside the vocabulary (%d)", (long long)ids[i], t->vocab);
    int D = t->D, inner = t->heads * t->dim_head, clip = t->kind == LOCUS_TEXT_CLIP;
    size_t N = (size_t)B * T * D;
    float *h = TA(N * 4), *x = TA(N * 4), *a = TA((size_t)B * T * (inner > D ? inner : D) * 4);
    float *q = TA((size_t)B * T * inner * 4), *k = TA((size_t)B * T * inner * 4), *v = TA((size_t)B * T * inner * 4);
    float *f = TA((size_t)B * T * t->ffn * 4), *mask = NULL;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++) memcpy(x + ((size_t)b * T + i) * D, t->tok + ids[b * T + i] * D, (size_t)D * 4);
    if (!clip) locus_hook(hooks, "model.embed_tokens", x, 3, B, T, D, 0);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++)
            locus_binary(x + ((size_t)b * T + i) * D, t->pos + (size_t)i * D, h + ((size_t)b * T + i) * D, D, LOCUS_BIN_ADD, 0.0f);
    if (clip) locus_hook(hooks, "embeddings", h, 3, B, T, D, 0);
    if (clip) { /* causal mask: finfo(float32).min above the diagonal, as transformers builds it */
        mask = TA((size_t)T * T * 4);
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) mask[i * T + j] = j > i ? -FLT_MAX : 0.0f;
    }
    if (hidden_index == 0 && hidden) memcpy(hidden, h, N * 4);
    float scale = 1.0f / sqrtf((float)t->dim_head);
    char n[128];
    for (int l = 0; l < t->nlayers; l++) {
        const textenc_layer *y = &t->layers[l];
        locus_layer_norm(h, x, (size_t)B * T, D, y->ln1.w, y->ln1.b, y->ln1.eps);
        snprintf(n, sizeof n, "layers.%d.layer_norm1", l);
        locus_hook(hooks, n, x, 3, B, T, D, 0);
        nn_linear_fwd(&y->q, x, B * T, q);
        locus_scale_shift(q, q, (size_t)B * T * inner, scale, 0.0f); /* q_proj(x) * scale */
        nn_linear_fwd(&y->k, x, B * T, k);
        nn_linear_fwd(&y->v, x, B * T, v);
        locus_attn_desc d = {B, t->heads, T, T, t->dim_head, q, (ptrdiff_t)T * inner, inner, k, (ptrdiff_t)T * inner, inner,
                             v, (ptrdiff_t)T * inner, inner, a, (ptrdiff_t)T * inner, inner, 1.0f, mask, 0, T, NULL};
        locus_attention(&d);
        nn_linear_fwd(&y->o, a, B * T, x);
        snprintf(n, sizeof n, clip ? "layers.%d.self_attn" : "model.layers.%d.self_attn:0", l);
        locus_hook(hooks, n, x, 3, B, T, D, 0);
        locus_binary(h, x, h, N, LOCUS_BIN_ADD, 0.0f);
        locus_layer_norm(h, x, (size_t)B * T, D, y->ln2.w, y->ln2.b, y->ln2.eps);
        nn_linear_fwd(&y->fc1, x, B * T, f);
        locus_act(f, f, (size_t)B * T * t->ffn, t->act);
        nn_linear_fwd(&y->fc2, f, B * T, x);
        snprintf(n, sizeof n, "layers.%d.mlp", l);
        if (clip) locus_hook(hooks, n, x, 3, B, T, D, 0);
        locus_binary(h, x, h, N, LOCUS_BIN_ADD, 0.0f);
        snprintf(n, sizeof n, clip ? "layer_out.%d" : "model.layers.%d:0", l);
        locus_hook(hooks, n, h, 3, B, T, D, 0);
        if (hidden_index == l + 1 && hidden) memcpy(hidden, h, N * 4);
    }
    locus_layer_norm(h, x, (size_t)B * T, D, t->final_ln.w, t->final_ln.b, t->final_ln.eps);
    if (last) memcpy(last, x, N * 4);
    if (clip && (pooled || text_embeds)) {
        float *pl = TA((size_t)B * D * 4);
        for (int b = 0; b < B; b++) {
            int pos = 0;
            for (int i = 0; i < T; i++) {
                if (t->eos_id == 2 ? ids[b * T + i] > ids[b * T + pos] : ids[b * T + i] == t->eos_id) {
                    pos = i;
                    if (t->eos_id != 2) break;
                }
            }
            memcpy(pl + (size_t)b * D, x + ((size_t)b * T + pos) * D, D * 4);
        }
        if (pooled) memcpy(pooled, pl, (size_t)B * D * 4);
        if (text_embeds && (t->proj.w || t->proj.wp)) nn_linear_fwd(&t->proj, pl, B, text_embeds);
        locus_free(pl);
    }
    locus_free(h); locus_free(x); locus_free(a); locus_free(q); locus_free(k); locus_free(v); locus_free(f); locus_free(mask);
    return LOCUS_OK;
}

locus_status locus_textenc_clip_skip(const locus_textenc *t, const int64_t *ids, int B, int T, int k, float *out) {
    if (k < 0 || (k > 0 && k >= t->nlayers)) return locus_fail(LOCUS_E_ARG, "--clip-skip %d: must be between 0 and %d", k, t->nlayers > 0 ? t->nlayers - 1 : 0);
    if (k == 0) return locus_textenc_forward(t, ids, B, T, out, -1, NULL, NULL, NULL, NULL);
    size_t N = (size_t)B * T * t->D;
    float *hs = TA(N * sizeof(float));
    locus_status st = locus_textenc_forward(t, ids, B, T, NULL, t->nlayers - k, hs, NULL, NULL, NULL);
    if (!st) locus_layer_norm(hs, out, (size_t)B * T, t->D, t->final_ln.w, t->final_ln.b, t->final_ln.eps);
    locus_free(hs);
    return st;
}
