/* clip_vision.c — CLIP vision transformer (see clip_vision.h).  Module by module as transformers'
 * CLIPVisionTransformer (which reproduces openai/CLIP's VisionTransformer); built from the same deterministic
 * operators as the text tower (models/textenc.c), so every output bit is fixed across ISAs and threads. */
#include "clip_vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

locus_status locus_clip_vision_load(locus_clip_vision *v, const char *dir) {
    memset(v, 0, sizeof *v);
    locus_status st = locus_loader_open(&v->L, dir);
    if (st) return st;
    locus_loader *L = &v->L;
    /* projection_dim lives at the top level of a CLIPModel config (and, repeated, in vision_config) */
    int64_t top_proj = locus_cfg_int(L, "projection_dim", -1);
    const locus_json *vc = locus_json_get(L->config.root, "vision_config");
    if (!vc || vc->type != JSON_OBJECT) {
        locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: no vision_config object (not a Hugging Face CLIP folder)", dir);
        st = locus_loader_status(L);
        locus_clip_vision_free(v);
        return st;
    }
    locus_json *top = L->config.root;
    L->config.root = (locus_json *)vc; /* config getters read vision_config from here on (the doc's pool owns both) */
    /* defaults: transformers' CLIPVisionConfig (ViT-B/32) */
    v->D = (int)locus_cfg_int(L, "hidden_size", 768);
    v->nlayers = (int)locus_cfg_int(L, "num_hidden_layers", 12);
    v->heads = (int)locus_cfg_int(L, "num_attention_heads", 12);
    v->ffn = (int)locus_cfg_int(L, "intermediate_size", 3072);
    v->image_size = (int)locus_cfg_int(L, "image_size", 224);
    v->patch = (int)locus_cfg_int(L, "patch_size", 32);
    v->channels = (int)locus_cfg_int(L, "num_channels", 3);
    v->eps = (float)locus_cfg_num(L, "layer_norm_eps", 1e-5);
    v->proj_dim = (int)(top_proj > 0 ? top_proj : locus_cfg_int(L, "projection_dim", 512));
    const char *act = locus_cfg_str(L, "hidden_act", "quick_gelu");
    if (!strcmp(act, "quick_gelu")) v->act = LOCUS_ACT_QUICK_GELU;
    else if (!strcmp(act, "gelu")) v->act = LOCUS_ACT_GELU_ERF;
    else locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: vision_config.hidden_act '%s' is not supported (quick_gelu, gelu)", dir, act);
    L->config.root = top;
    if (!L->status && (v->D <= 0 || v->nlayers <= 0 || v->heads <= 0 || v->D % v->heads || v->ffn <= 0 || v->patch <= 0 ||
                       v->image_size <= 0 || v->image_size % v->patch || v->channels != 3 || v->proj_dim <= 0 ||
                       v->image_size > 4096 || v->D > 65536 || v->ffn > 1 << 20 || v->nlayers > 1024))
        locus_loader_fail(L, LOCUS_E_FORMAT,
                          "%s/config.json: bad vision_config sizes (hidden_size %d, heads %d, layers %d, intermediate %d, image %d, patch %d, "
                          "channels %d, projection %d)", dir, v->D, v->heads, v->nlayers, v->ffn, v->image_size, v->patch, v->channels, v->proj_dim);
    if (L->status) {
        st = locus_loader_status(L);
        locus_clip_vision_free(v);
        return st;
    }
    v->dim_head = v->D / v->heads;
    v->grid = v->image_size / v->patch;
    v->ntok = v->grid * v->grid + 1;
    int D = v->D;
    v->patch_w = locus_param(L, 4, D, v->channels, v->patch, v->patch, "vision_model.embeddings.patch_embedding.weight");
    v->cls = locus_param(L, 1, D, 0, 0, 0, "vision_model.embeddings.class_embedding");
    v->pos = locus_param(L, 2, v->ntok, D, 0, 0, "vision_model.embeddings.position_embedding.weight");
    nn_lnorm_load(L, &v->pre_ln, D, v->eps, "vision_model.pre_layrnorm");
    v->layers = calloc((size_t)v->nlayers, sizeof *v->layers);
    if (!v->layers) locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory");
    char n[256];
    for (int i = 0; i < v->nlayers && !L->status; i++) {
        clip_vision_layer *y = &v->layers[i];
        const char *p = "vision_model.encoder.layers";
        snprintf(n, sizeof n, "%s.%d.layer_norm1", p, i); nn_lnorm_load(L, &y->ln1, D, v->eps, n);
        snprintf(n, sizeof n, "%s.%d.self_attn.q_proj", p, i); nn_linear_load(L, &y->q, D, D, 1, n);
        snprintf(n, sizeof n, "%s.%d.self_attn.k_proj", p, i); nn_linear_load(L, &y->k, D, D, 1, n);
        snprintf(n, sizeof n, "%s.%d.self_attn.v_proj", p, i); nn_linear_load(L, &y->v, D, D, 1, n);
        snprintf(n, sizeof n, "%s.%d.self_attn.out_proj", p, i); nn_linear_load(L, &y->o, D, D, 1, n);
        snprintf(n, sizeof n, "%s.%d.layer_norm2", p, i); nn_lnorm_load(L, &y->ln2, D, v->eps, n);
        snprintf(n, sizeof n, "%s.%d.mlp.fc1", p, i); nn_linear_load(L, &y->fc1, D, v->ffn, 1, n);
        snprintf(n, sizeof n, "%s.%d.mlp.fc2", p, i); nn_linear_load(L, &y->fc2, v->ffn, D, 1, n);
    }
    nn_lnorm_load(L, &v->post_ln, D, v->eps, "vision_model.post_layernorm");
    nn_linear_load(L, &v->proj, D, v->proj_dim, 0, "visual_projection");
    st = locus_loader_status(L);
    if (st) locus_clip_vision_free(v); /* cleanup keeps the thread's error message */
    return st;
}

void locus_clip_vision_free(locus_clip_vision *v) {
    free(v->layers);
    v->layers = NULL;
    locus_loader_close(&v->L);
}

void locus_clip_vision_forward(const locus_clip_vision *v, const float *pixels, int B, float *image_embeds, float *pooled,
                               const locus_hooks *hooks) {
    int D = v->D, T = v->ntok, GG = v->grid * v->grid, S = v->image_size, P = v->patch;
    size_t N = (size_t)B * T * D;
    float *pe = locus_alloc((size_t)B * D * GG * 4); /* [B,D,G,G] patch conv output */
    float *pt = locus_alloc((size_t)B * GG * D * 4); /* [B,G*G,D] patch tokens */
    float *h = locus_alloc(N * 4);                   /* [B,T,D] residual stream */
    float *x = locus_alloc(N * 4);                   /* [B,T,D] normed / branch output */
    float *q = locus_alloc(N * 4), *k = locus_alloc(N * 4), *vv = locus_alloc(N * 4), *a = locus_alloc(N * 4); /* [B,T,D] each */
    float *f = locus_alloc((size_t)B * T * v->ffn * 4); /* [B,T,ffn] */
    float *cls = locus_alloc((size_t)B * D * 4);        /* [B,D] class tokens */
    float *pl = locus_alloc((size_t)B * D * 4);         /* [B,D] pooled */
    locus_conv2d(pixels, B, v->channels, S, S, v->patch_w, NULL, D, P, P, P, 0, pe);
    locus_transpose(pe, pt, B, D, GG); /* flatten(2).transpose(1, 2) */
    for (int b = 0; b < B; b++) {      /* cat([class_embedding, patches]) + position_embedding */
        memcpy(x + (size_t)b * T * D, v->cls, (size_t)D * 4);
        memcpy(x + ((size_t)b * T + 1) * D, pt + (size_t)b * GG * D, (size_t)GG * D * 4);
        locus_binary(x + (size_t)b * T * D, v->pos, h + (size_t)b * T * D, (size_t)T * D, LOCUS_BIN_ADD, 0.0f);
    }
    locus_hook(hooks, "embeddings", h, 3, B, T, D, 0);
    locus_layer_norm(h, x, (size_t)B * T, D, v->pre_ln.w, v->pre_ln.b, v->pre_ln.eps);
    memcpy(h, x, N * 4);
    locus_hook(hooks, "pre_layrnorm", h, 3, B, T, D, 0);
    float scale = 1.0f / sqrtf((float)v->dim_head);
    char n[96];
    for (int l = 0; l < v->nlayers; l++) {
        const clip_vision_layer *y = &v->layers[l];
        locus_layer_norm(h, x, (size_t)B * T, D, y->ln1.w, y->ln1.b, y->ln1.eps);
        nn_linear_fwd(&y->q, x, B * T, q);
        locus_scale_shift(q, q, N, scale, 0.0f); /* q_proj(x) * scale, as CLIPAttention */
        nn_linear_fwd(&y->k, x, B * T, k);
        nn_linear_fwd(&y->v, x, B * T, vv);
        locus_attn_desc d = {B, v->heads, T, T, v->dim_head, q, (ptrdiff_t)T * D, D, k, (ptrdiff_t)T * D, D,
                             vv, (ptrdiff_t)T * D, D, a, (ptrdiff_t)T * D, D, 1.0f, NULL, 0, 0, NULL};
        locus_attention(&d);
        nn_linear_fwd(&y->o, a, B * T, x);
        snprintf(n, sizeof n, "encoder.layers.%d.self_attn", l);
        locus_hook(hooks, n, x, 3, B, T, D, 0);
        locus_binary(h, x, h, N, LOCUS_BIN_ADD, 0.0f);
        locus_layer_norm(h, x, (size_t)B * T, D, y->ln2.w, y->ln2.b, y->ln2.eps);
        nn_linear_fwd(&y->fc1, x, B * T, f);
        locus_act(f, f, (size_t)B * T * v->ffn, v->act);
        nn_linear_fwd(&y->fc2, f, B * T, x);
        snprintf(n, sizeof n, "encoder.layers.%d.mlp", l);
        locus_hook(hooks, n, x, 3, B, T, D, 0);
        locus_binary(h, x, h, N, LOCUS_BIN_ADD, 0.0f);
        snprintf(n, sizeof n, "encoder.layers.%d", l);
        locus_hook(hooks, n, h, 3, B, T, D, 0);
    }
    for (int b = 0; b < B; b++) memcpy(cls + (size_t)b * D, h + (size_t)b * T * D, (size_t)D * 4); /* last_hidden_state[:, 0] */
    locus_layer_norm(cls, pl, (size_t)B, D, v->post_ln.w, v->post_ln.b, v->post_ln.eps);
    locus_hook(hooks, "post_layernorm", pl, 2, B, D, 0, 0);
    if (pooled) memcpy(pooled, pl, (size_t)B * D * 4);
    if (image_embeds) nn_linear_fwd(&v->proj, pl, B, image_embeds);
    locus_free(pe); locus_free(pt); locus_free(h); locus_free(x); locus_free(q); locus_free(k); locus_free(vv); locus_free(a);
    locus_free(f); locus_free(cls); locus_free(pl);
}
