/* unet.h — diffusers UNet2DConditionModel (SD1.x / SD2 / LDM text2im / SDXL), built from its config.json.
 *
 * Supported: CrossAttnDownBlock2D / DownBlock2D / UNetMidBlock2DCrossAttn / CrossAttnUpBlock2D / UpBlock2D,
 * per-block layers_per_block, transformer_layers_per_block (an int, one per level, or per level a list with
 * one depth per attention) and reverse_transformer_layers_per_block, attention_head_dim (legacy: number of
 * heads) or num_attention_heads, use_linear_projection, only_cross_attention, cross_attention_dim,
 * norm_num_groups/eps, flip_sin_to_cos/freq_shift, positional time embedding with default resnet time
 * conditioning, and SDXL's added conditioning (addition_embed_type "text_time": the pooled text embedding
 * and six size numbers, each embedded with Timesteps(addition_time_embed_dim), through add_embedding and
 * added to the time embedding).  Anything else in the config (class embeddings, other addition embeddings,
 * scale-shift time norm, ...) is refused with an error naming the key.  upcast_attention is accepted: locus
 * computes attention in fp32 anyway.
 */
#ifndef LOCUS_UNET_H
#define LOCUS_UNET_H

#include "nn.h"

#define UNET_MAX_BLOCKS 8

typedef struct {
    int cross;               /* has attentions */
    int nlayers;
    nn_resnet *res;          /* [nlayers] */
    nn_transformer2d *attn;  /* [nlayers] or NULL */
    int has_sample;          /* downsampler / upsampler */
    nn_conv sample;
    int cin, cout;
} unet_block;

typedef struct {
    /* config */
    int in_channels, out_channels, nblocks, ctx_dim, groups, time_dim, temb_dim, flip_sin_to_cos, sample_size, sample_width;
    float eps, freq_shift;
    int block_out[UNET_MAX_BLOCKS];
    /* addition_embed_type "text_time" (SDXL): added conditioning = [text_embeds (add_text_dim) | 6 time ids] */
    int add_time;            /* 1 when the config has it */
    int add_time_dim;        /* addition_time_embed_dim: Timesteps width per time id */
    int add_text_dim;        /* pooled text width = projection_class_embeddings_input_dim - 6 * add_time_dim */
    /* modules */
    nn_linear time_1, time_2;
    nn_linear add_1, add_2;  /* add_embedding.linear_1 / linear_2 (add_time only) */
    nn_conv conv_in, conv_out;
    nn_gnorm norm_out;
    unet_block down[UNET_MAX_BLOCKS], up[UNET_MAX_BLOCKS], mid;
    locus_loader L;
} locus_unet;

/* Load from a diffusers `unet/` folder.  Errors: missing files, bad config, unsupported block types, weight
 * shape/dtype mismatches — each with a message naming the file and the tensor or key. */
locus_status locus_unet_load(locus_unet *u, const char *dir);
void locus_unet_free(locus_unet *u);

/* The same architecture from a config.json file with seeded random weights (benchmarks). */
locus_status locus_unet_load_random(locus_unet *u, const char *config_path, uint64_t seed);

/* eps (or v) prediction: sample[B,in,H,W], timesteps[B] (float), ctx[B,S,ctx_dim] -> out[B,out,H,W].
 * H and W must be multiples of 2^(nblocks-1).  Hooks (may be NULL) see every module output by its diffusers
 * path (e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn2"). */
void locus_unet_forward(const locus_unet *u, const float *sample, int B, int H, int W, const float *timesteps,
                        const float *ctx, int S, float *out, const locus_hooks *hooks);

/* The number of size conditioning numbers of "text_time" (original H,W, crop top,left, target H,W). */
#define UNET_TIME_IDS 6

/* The same with SDXL's added conditioning: added[B, add_text_dim + UNET_TIME_IDS] = per batch row the pooled
 * text embedding followed by the six time ids (diffusers' added_cond_kwargs text_embeds and time_ids).
 * added must be non-NULL exactly when u->add_time.  Extra hook points: "add_time_proj" [B*6, add_time_dim]
 * and "add_embedding" [B, temb]. */
void locus_unet_forward_cond(const locus_unet *u, const float *sample, int B, int H, int W, const float *timesteps,
                             const float *ctx, int S, const float *added, float *out, const locus_hooks *hooks);

/* Names of the cross-attention layers (attn2) in forward order; returns the count (at most max). */
int locus_unet_cross_layers(const locus_unet *u, char (*names)[128], int max);

/* Every attention layer in forward order (attn1, attn2 of each transformer block; down, mid, up). */
typedef struct {
    char name[128];
    int cross;             /* attn2 (keys/values from text) */
    const nn_attention *a;
} locus_attn_layer;
int locus_unet_attn_layers(const locus_unet *u, locus_attn_layer *out, int max);

/* Parameter count of the denoiser. */
size_t locus_unet_params(const locus_unet *u);

/* Wrap a loaded UNet (ownership passes: closing the denoiser frees and free()s u) as a locus_denoiser. */
struct locus_denoiser;
locus_status locus_unet_denoiser(struct locus_denoiser *d, locus_unet *u);

#endif
