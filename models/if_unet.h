/* if_unet.h — DeepFloyd IF stage I's pixel-space UNet2DConditionModel (diffusers v0.31), a denoiser family of
 * its own (denoiser.h) although diffusers names the class UNet2DConditionModel: the registry sends a
 * UNet2DConditionModel folder here when its config has SimpleCrossAttn / Resnet{Down,Up}sample blocks or
 * addition_embed_type "text" (locus_if_unet_config_matches).
 *
 * Supported: ResnetDownsampleBlock2D / SimpleCrossAttnDownBlock2D, UNetMidBlock2DSimpleCrossAttn,
 * SimpleCrossAttnUpBlock2D / ResnetUpsampleBlock2D (added-KV attention, resnet down/upsamplers), encoder_hid_proj
 * ("text_proj": the prompt embedding is projected to cross_attention_dim before every added-KV attention),
 * addition_embed_type "text" (TextTimeEmbedding of the raw prompt embedding added to the time embedding),
 * time_embedding_act_fn, act_fn (gelu / silu), resnet_time_scale_shift "scale_shift" or "default",
 * resnet_skip_time_act, resnet_out_scale_factor, mid_block_scale_factor, per-block layers_per_block and
 * attention_head_dim (the head width for these blocks), learned-variance outputs (out_channels = 2 x
 * in_channels), cross_attention_norm "group_norm" (the text group-normed before add_k/add_v, as the real IF-I
 * configs have it).  Refused with an error naming the key: class embeddings, only_cross_attention, a
 * layer_norm cross_attention_norm, other block types and embeddings, non-positional time embeddings.
 *
 * The prompt embedding the denoiser takes is the raw text encoder output (T5: [B,S,encoder_hid_dim]); the
 * text layers are the added-KV attentions, whose text K/V are add_k_proj / add_v_proj of encoder_hid_proj(ctx)
 * (so projectable: patching injects B's projected prompt into one layer while the text pooling of the time
 * embedding keeps prompt A — the paper's IF injection).
 */
#ifndef LOCUS_IF_UNET_H
#define LOCUS_IF_UNET_H

#include "../core/json.h"
#include "if_nn.h"

#define IF_MAX_BLOCKS 8
#define IF_MAX_LAYERS 16

typedef struct {
    int nres;           /* resnets (mid block: attentions + 1) */
    if_resnet *res;     /* [nres] */
    int nattn;
    if_attn *attn;      /* [nattn] or NULL (Resnet*Block2D) */
    int has_sample;     /* resnet downsampler / upsampler */
    if_resnet sample;
    int cout;
} if_block;

typedef struct {
    /* config */
    int in_channels, out_channels, nblocks, cross_dim, hid_dim, groups, time_dim, temb_dim, flip_sin_to_cos, sample_size;
    int act, temb_act;      /* LOCUS_ACT_* of act_fn and time_embedding_act_fn (LOCUS_ACT_NONE: none) */
    float eps, freq_shift;
    int block_out[IF_MAX_BLOCKS];
    int text_embed;         /* addition_embed_type "text" */
    /* modules */
    nn_linear time_1, time_2;
    nn_linear hid_proj;     /* encoder_hid_proj (when hid_dim > 0) */
    if_text_time add;       /* add_embedding (text_embed) */
    nn_conv conv_in, conv_out;
    nn_gnorm norm_out;
    if_block down[IF_MAX_BLOCKS], up[IF_MAX_BLOCKS], mid;
    locus_loader L;
} locus_if_unet;

/* Does this UNet2DConditionModel config describe IF's variant (the registry's test)? */
int locus_if_unet_config_matches(const locus_json *config);

/* Load from a diffusers `unet/` folder.  Errors name the file and the key or tensor. */
locus_status locus_if_unet_load(locus_if_unet *u, const char *dir);
/* The same architecture from a config.json with seeded random weights (benchmarks). */
locus_status locus_if_unet_load_random(locus_if_unet *u, const char *config_path, uint64_t seed);
void locus_if_unet_free(locus_if_unet *u);

/* sample[B,in,H,W], timesteps[B], ctx[B,S,ctx width] (raw prompt embedding) -> out[B,out,H,W].  H, W multiples of
 * 2^(nblocks-1).  Hook points: diffusers module paths (time_proj, time_embedding, add_embedding(.*),
 * encoder_hid_proj, conv_in, <block>.resnets.N(.conv1 ...), <block>.attentions.N(.*), <block>.downsamplers.0,
 * <block>.upsamplers.0, down_blocks.N:0 and :1:K (hidden and output states), mid_block, up_blocks.N,
 * conv_norm_out, conv_out). */
void locus_if_unet_forward(const locus_if_unet *u, const float *sample, int B, int H, int W, const float *timesteps, const float *ctx,
                           int S, float *out, const locus_hooks *hooks);

/* Every added-KV attention layer in forward order (down, mid, up): path and module. */
typedef struct { char name[128]; const if_attn *a; } locus_if_attn_layer;
int locus_if_unet_attn_layers(const locus_if_unet *u, locus_if_attn_layer *out, int max);

struct locus_denoiser;
/* Wrap a loaded IF UNet (ownership passes: closing the denoiser frees and free()s u). */
locus_status locus_if_unet_denoiser(struct locus_denoiser *d, locus_if_unet *u);

#endif
