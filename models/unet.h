/* unet.h — diffusers UNet2DConditionModel (SD1.x / SD2 / LDM text2im), built from its config.json.
 *
 * Supported: CrossAttnDownBlock2D / DownBlock2D / UNetMidBlock2DCrossAttn / CrossAttnUpBlock2D / UpBlock2D,
 * per-block layers_per_block, transformer_layers_per_block, attention_head_dim (legacy: number of heads) or
 * num_attention_heads, use_linear_projection, only_cross_attention, cross_attention_dim, norm_num_groups/eps,
 * flip_sin_to_cos/freq_shift, positional time embedding with default resnet time conditioning.  Anything
 * else in the config (class/addition embeddings, scale-shift time norm, ...) is refused with an error naming
 * the key.  upcast_attention is accepted: locus computes attention in fp32 anyway.
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
    int in_channels, out_channels, nblocks, ctx_dim, groups, time_dim, temb_dim, flip_sin_to_cos, sample_size;
    float eps, freq_shift;
    int block_out[UNET_MAX_BLOCKS];
    /* modules */
    nn_linear time_1, time_2;
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
