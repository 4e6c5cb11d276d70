/* nn.h — the diffusers building blocks shared by the UNet and the VAE: Conv2d, Linear, GroupNorm, LayerNorm,
 * ResnetBlock2D, Attention (classic AttnProcessor), GEGLU FeedForward, BasicTransformerBlock,
 * Transformer2DModel, Downsample2D, Upsample2D.  Each has a load function (names = diffusers module paths)
 * and a forward function on fp32 (B,C,H,W) / (B,T,C) buffers.  Forward functions allocate their temporaries
 * and free them before returning; outputs go to caller buffers.
 */
#ifndef LOCUS_NN_H
#define LOCUS_NN_H

#include <stdint.h>

#include "loader.h"

/* ---- Hooks: how experiments see and change a forward pass ----
 *
 * A hook point is a module output (or an attention internal) named by its diffusers path, e.g.
 * "down_blocks.0.attentions.0.transformer_blocks.0.attn2", "...attn2.k", "transformer_blocks.1.attn:0".
 * A forward calls every hook of the list in order at every hook point; each is told the point's name, the
 * sampler step and the batch layout (CFG pair or not) — no hook has to count calls to know where it is.
 * Hooks may overwrite the tensor in place (interventions, patching); later hooks see the change.
 *
 * Text K/V override: every attention layer that reads the text (UNet cross-attention attn2, MM-DiT joint
 * attention's text stream, IF's added K/V) calls `text_kv` of each hook with its text keys and values
 * [B,S,inner] right after computing them (after qk-norm where the model has it) and before its .k/.v (or
 * .add_k/.add_v) hook points.  The hook may overwrite rows (one batch row per CFG half) — the paper's
 * patching — using `project` to compute K/V from another prompt's embedding where the layer allows it. */
typedef struct {
    const char *name; /* hook point (diffusers path) */
    int step;         /* sampler step of this denoiser evaluation (0-based); -1 outside a sampling loop */
    int cfg;          /* 1: the batch is a CFG pair, row 0 unconditional, row 1 conditional; 0: conditional only */
} locus_hook_at;

typedef struct locus_text_kv {
    const char *layer; /* diffusers path of the attention layer */
    int index;         /* its position in the denoiser's list of text layers (locus_denoiser_text_layers) */
    int B, S, D;       /* k, v: [B,S,D] */
    float *k, *v;
    /* Computes this layer's K and V from a text embedding ctx[S, ctx_dim] (one batch row) into k_out, v_out
     * [S,D] — the same bits the layer computes for that row.  NULL when the layer's text K/V are not a
     * function of the prompt embedding alone (MM-DiT: they come from the block's text stream). */
    void (*project)(const struct locus_text_kv *site, const float *ctx, float *k_out, float *v_out);
    const void *impl;
} locus_text_kv;

/* Attention probabilities of a text-reading cross-attention layer, offered to probability-override hooks. */
typedef struct {
    const char *layer;  /* diffusers path of the attention layer */
    int index;          /* its position among the denoiser's text layers */
    int B, H, Tq, Tk;   /* p: [B,H,Tq,Tk], softmax rows */
    float *p;
} locus_attn_probs;

typedef struct {
    void (*fn)(void *ctx, const locus_hook_at *at, float *x, int ndim, const int64_t *shape); /* may be NULL */
    /* Costly points ("<attention>.probs" [B,heads,Tq,Tk]) are computed only when some hook's want() says so;
     * they are read-only (the attention output is computed from the unmodified probabilities). */
    int (*want)(void *ctx, const char *name);
    void (*text_kv)(void *ctx, const locus_hook_at *at, const locus_text_kv *site); /* may be NULL */
    void *ctx;
    /* Probability override (Prompt-to-Prompt), may be NULL.  When some hook has it, every cross-attention
     * layer that reads the text (UNet attn2) computes its probabilities and calls it with them; the hook may
     * overwrite rows and returns nonzero when it did, and the layer's output is then recomputed as p . V
     * (one GEMM per batch row and head).  Returning 0 leaves the output exactly as without the hook; with no
     * such hook nothing extra is computed. */
    int (*probs)(void *ctx, const locus_hook_at *at, const locus_attn_probs *site);
} locus_hook_entry;

#define LOCUS_MAX_HOOKS 8

typedef struct {
    locus_hook_entry list[LOCUS_MAX_HOOKS]; /* called in this order */
    int n;
    int step, cfg;                    /* set by the sampler before each evaluation */
} locus_hooks;

/* An empty list (step -1); locus_hooks_add appends (returns -1 when full, an invariant the callers keep). */
void locus_hooks_init(locus_hooks *h);
int locus_hooks_add(locus_hooks *h, locus_hook_entry hk);
/* A list of one hook (tests, single-purpose callers). */
locus_hooks locus_hooks_one(void (*fn)(void *, const locus_hook_at *, float *, int, const int64_t *), void *ctx);

/* Emit a hook point (h may be NULL); d0..d3 the shape (ndim of them used). */
void locus_hook(const locus_hooks *h, const char *name, float *x, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
/* Does any hook want the costly point `name`? */
int locus_hook_wants(const locus_hooks *h, const char *name);
/* Emit the text K/V override point of an attention layer. */
void locus_hook_text_kv(const locus_hooks *h, const locus_text_kv *site);
/* Does any hook override attention probabilities?  Offer them (returns nonzero when some hook changed them). */
int locus_hooks_have_probs(const locus_hooks *h);
int locus_hook_probs(const locus_hooks *h, const locus_attn_probs *site);
/* Is there any hook at all (to skip building hook-point names)? */
static inline int locus_hooks_active(const locus_hooks *h) { return h && h->n > 0; }

/* A low-rank adapter on a Linear layer (PEFT / diffusers LoRA): y += scale * (x down^T) up^T with
 * down [r, in] (lora_A, lora.down) and up [out, r] (lora_B, lora.up); scale = alpha / r times the user's
 * weight.  Several adapters chain through `next` and are added in list order after the base output. */
typedef struct nn_lora {
    float *down, *up;
    int r;
    float scale;
    struct nn_lora *next;
} nn_lora;

/* Linear: y = x W^T + b.  The weight is kept pre-packed for the GEMM (wp, panels of the kernel table's width
 * wp_nr at load time; w is then NULL) so no forward call re-packs it; see nn_linear_fwd.  With the loader's
 * plain_weights set (training) w stays plain and wp is NULL.  Every Linear is registered in its loader by
 * its diffusers path (locus_loader_add_module), which is how LoRA adapters find it. */
typedef struct { const float *w, *b; int in, out; const float *wp; int wp_nr; nn_lora *lora; } nn_linear;
typedef struct { const float *w, *b; int cin, cout, k, stride, pad; } nn_conv;
typedef struct { const float *w, *b; int c, groups; float eps; } nn_gnorm;
typedef struct { const float *w, *b; int c; float eps; } nn_lnorm;

void nn_linear_load(locus_loader *L, nn_linear *l, int in, int out, int bias, const char *name);
void nn_conv_load(locus_loader *L, nn_conv *c, int cin, int cout, int k, int stride, int pad, const char *name);
void nn_gnorm_load(locus_loader *L, nn_gnorm *g, int c, int groups, float eps, const char *name);
void nn_lnorm_load(locus_loader *L, nn_lnorm *n, int c, float eps, const char *name);

void nn_linear_fwd(const nn_linear *l, const float *x, int M, float *y);               /* y[M,out] */
void nn_conv_fwd(const nn_conv *c, const float *x, int B, int H, int W, float *y);      /* same-size or strided */
void nn_gnorm_fwd(const nn_gnorm *g, const float *x, int B, int HW, float *y, int act);

typedef struct {
    nn_gnorm norm1, norm2;
    nn_conv conv1, conv2, shortcut;
    nn_linear temb;
    int cin, cout, has_temb, has_shortcut;
} nn_resnet;

/* temb_dim 0: no time embedding (VAE). */
void nn_resnet_load(locus_loader *L, nn_resnet *r, int cin, int cout, int temb_dim, int groups, float eps, const char *name);
/* x[B,cin,H,W] -> y[B,cout,H,W]; temb_act = silu(temb) [B,temb_dim] precomputed by the caller (or NULL). */
void nn_resnet_fwd(const nn_resnet *r, const float *x, int B, int H, int W, const float *temb_act, float *y);

typedef struct {
    nn_linear q, k, v, out;
    int heads, dim_head, inner, query_dim, ctx_dim;
    int text_index; /* position among the denoiser's text-reading layers (cross-attention), -1 if not one */
} nn_attention;

void nn_attention_load(locus_loader *L, nn_attention *a, int query_dim, int ctx_dim, int heads, int dim_head, int qkv_bias,
                       const char *name);
/* x[B,T,query_dim] attends to ctx[B,S,ctx_dim] (ctx = x, S = T for self-attention) -> y[B,T,query_dim] */
void nn_attention_fwd(const nn_attention *a, const float *x, int B, int T, const float *ctx, int S, float *y,
                      const locus_hooks *hooks, const char *name);
/* Attention output from (overridden) probabilities p[B,H,T,S] and values v[B,S,H*D] -> o[B,T,H*D]: one GEMM per
 * batch row and head, each output one FMA chain over the keys in order (the probability-override path). */
void nn_attention_from_probs(const float *p, const float *v, int B, int H, int T, int S, int D, float *o);

typedef struct {
    nn_lnorm n1, n2, n3;
    nn_attention a1, a2;
    nn_linear ff_in, ff_out; /* GEGLU: ff_in projects to 2*ff_inner */
    int dim, ff_inner, only_cross;
} nn_tblock;

typedef struct {
    nn_gnorm norm;
    nn_conv proj_in_c, proj_out_c;
    nn_linear proj_in_l, proj_out_l;
    int linear_proj, c, inner, nblocks;
    nn_tblock *blocks;
} nn_transformer2d;

void nn_transformer2d_load(locus_loader *L, nn_transformer2d *t, int c, int heads, int dim_head, int layers, int ctx_dim,
                           int groups, int linear_proj, int only_cross, const char *name);
void nn_transformer2d_free(nn_transformer2d *t);
/* x[B,C,H,W] with text ctx[B,S,ctx_dim] -> y[B,C,H,W] (residual included) */
void nn_transformer2d_fwd(const nn_transformer2d *t, const float *x, int B, int H, int W, const float *ctx, int S,
                          float *y, const locus_hooks *hooks, const char *name);

#endif
