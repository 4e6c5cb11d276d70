/* if_nn.h — the building blocks of DeepFloyd IF's pixel-space UNet2DConditionModel that SD's UNet does not
 * have (diffusers v0.31 semantics):
 *
 *   if_resnet    ResnetBlock2D with time_embedding_norm "scale_shift" (or "default"), any non_linearity,
 *                skip_time_act, output_scale_factor, and the resampling variants down=True (avg-pool 2x2, as
 *                Downsample2D(use_conv=False)) / up=True (nearest 2x, Upsample2D(use_conv=False)) that
 *                ResnetDownsampleBlock2D / SimpleCrossAttn*Block2D use as their down/upsamplers;
 *   if_attn      Attention with AttnAddedKVProcessor: group_norm over the image channels, the text optionally
 *                group-normed (cross_attention_norm "group_norm": norm_cross over the text channels and tokens,
 *                32 groups, as the real IF-I configs have it), the text's add_k_proj/add_v_proj keys and values
 *                concatenated BEFORE the image's to_k/to_v, softmax in fp32, to_out, plus the residual (no
 *                rescale: the processor does not divide);
 *   if_text_time TextTimeEmbedding (addition_embed_type "text"): LayerNorm, AttentionPooling (a class token =
 *                mean of the tokens + positional_embedding attends to [class, tokens]), proj, LayerNorm.
 *
 * Forward functions work on fp32 (B,C,H,W) / (B,T,C) buffers, allocate their temporaries and free them before
 * returning; outputs go to caller buffers.  Hook points are the diffusers module paths (see each function).
 */
#ifndef LOCUS_IF_NN_H
#define LOCUS_IF_NN_H

#include "nn.h"

typedef struct {
    nn_gnorm norm1, norm2;
    nn_conv conv1, conv2, shortcut;
    nn_linear temb;      /* time_emb_proj: temb_dim -> cout ("default") or 2*cout ("scale_shift": scale, shift) */
    int cin, cout, has_shortcut;
    int act;             /* LOCUS_ACT_* of non_linearity */
    int scale_shift;     /* time_embedding_norm "scale_shift" */
    int skip_time_act;   /* temb enters time_emb_proj without the non-linearity */
    int resample;        /* 0; -1 down (avg-pool 2x2 stride 2); +1 up (nearest 2x) */
    float out_scale;     /* output_scale_factor */
} if_resnet;

void if_resnet_load(locus_loader *L, if_resnet *r, int cin, int cout, int temb_dim, int groups, float eps, int act, int scale_shift,
                    int skip_time_act, float out_scale, int resample, const char *name);
/* x[B,cin,H,W], temb[B,temb_dim] (the UNet's embedding after time_embed_act) -> y[B,cout,Ho,Wo] with Ho = H/2
 * (down), 2H (up) or H.  Hook points: <name>.conv1, .time_emb_proj, .conv2, .conv_shortcut; the caller emits
 * <name>. */
void if_resnet_fwd(const if_resnet *r, const float *x, int B, int H, int W, const float *temb, float *y, const locus_hooks *hooks,
                   const char *name);

typedef struct {
    nn_gnorm gn;                    /* group_norm over query_dim channels */
    nn_gnorm ncross;                /* norm_cross (when norm_cross): GroupNorm over the kv_dim text channels */
    int norm_cross;
    nn_linear q, k, v, add_k, add_v, out;
    int c, heads, dim_head, inner;  /* query_dim, heads, dim_head, heads*dim_head */
    int text_index;                 /* position among the denoiser's text layers */
    const nn_linear *hid_proj;      /* the UNet's encoder_hid_proj (NULL: none), used by locus_text_kv.project */
} if_attn;

/* c: query_dim (= the block's channels, also to_k/to_v's input), kv_dim: added_kv_proj_dim (the UNet's
 * cross_attention_dim); norm_cross_groups > 0: cross_attention_norm "group_norm" with that many groups */
void if_attn_load(locus_loader *L, if_attn *a, int c, int kv_dim, int heads, int dim_head, int groups, float eps, int norm_cross_groups,
                  const char *name);
/* x[B,C,H,W] attends to [text tokens ctx[B,S,kv_dim] ; its own pixels] -> y[B,C,H,W] (residual included).
 * Text K/V override point (locus_text_kv, D = inner) right after add_k_proj/add_v_proj; hook points
 * <name>.group_norm [B,C,HW], .norm_cross [B,kv_dim,S] (when it has one), .to_q / .to_k / .to_v [B,HW,inner],
 * .add_k_proj / .add_v_proj [B,S,inner]
 * (after the override), .probs [B,heads,HW,S+HW] (when wanted), .to_out.0 [B,HW,C], <name> [B,C,H,W].  A
 * probability-override hook (locus_attn_probs, Prompt-to-Prompt) gets the whole map over the S text and HW pixel
 * keys; when it changes it the output is recomputed as p . V. */
void if_attn_fwd(const if_attn *a, const float *x, int B, int H, int W, const float *ctx, int S, float *y, const locus_hooks *hooks,
                 const char *name);

typedef struct {
    nn_lnorm norm1, norm2;
    nn_linear q, k, v, proj;
    const float *pos;   /* pool.positional_embedding [1,dim] */
    int dim, heads, tdim;
} if_text_time;

void if_text_time_load(locus_loader *L, if_text_time *t, int dim, int tdim, int heads, const char *name);
/* raw text states ctx[B,S,dim] -> out[B,tdim].  Hook points (name "add_embedding"): .norm1 [B,S,dim],
 * .pool.q_proj [B,1,dim], .pool.k_proj / .pool.v_proj [B,S+1,dim], .pool [B,dim], .proj, .norm2 [B,tdim] and
 * <name>. */
void if_text_time_fwd(const if_text_time *t, const float *ctx, int B, int S, float *out, const locus_hooks *hooks, const char *name);

#endif
