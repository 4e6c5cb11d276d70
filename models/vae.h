/* vae.h — diffusers AutoencoderKL (SD1.x/SD2/LDM 4-channel and SD3 16-channel), encoder and decoder.
 *
 * decode(z): post_quant_conv (if use_post_quant_conv) -> Decoder (conv_in, UNetMidBlock2D with one
 * single-head attention, UpDecoderBlock2D x n, GroupNorm+SiLU, conv_out).  encode(x): Encoder (conv_in,
 * DownEncoderBlock2D x n with (0,1,0,1)-padded stride-2 convs, mid block, GroupNorm+SiLU, conv_out to 2L
 * channels) -> quant_conv (if use_quant_conv) -> mean, logvar clamped to [-30, 20].
 * scaling_factor and shift_factor come from the config: latents = (mean - shift) * scale.
 */
#ifndef LOCUS_VAE_H
#define LOCUS_VAE_H

#include "nn.h"

#define VAE_MAX_BLOCKS 8

typedef struct {
    nn_resnet res[2];
    nn_gnorm attn_norm;
    nn_attention attn;
    int has_attn;
} vae_mid;

typedef struct {
    nn_conv conv_in, conv_out;
    vae_mid mid;
    nn_resnet *res[VAE_MAX_BLOCKS]; /* per block, nlayers resnets */
    nn_conv sample[VAE_MAX_BLOCKS];
    int has_sample[VAE_MAX_BLOCKS], cout[VAE_MAX_BLOCKS];
    nn_gnorm norm_out;
    int present;
} vae_coder;

typedef struct {
    int in_channels, out_channels, latent_channels, nblocks, layers, groups;
    int block_out[VAE_MAX_BLOCKS];
    float scaling_factor, shift_factor;
    int use_quant_conv, use_post_quant_conv;
    nn_conv quant_conv, post_quant_conv;
    vae_coder enc, dec;
    locus_loader L;
} locus_vae;

locus_status locus_vae_load(locus_vae *v, const char *dir);
void locus_vae_free(locus_vae *v);

/* The same architecture from a config.json file with seeded random weights (benchmarks). */
locus_status locus_vae_load_random(locus_vae *v, const char *config_path, uint64_t seed);

/* z[B,L,h,w] (already divided by scaling_factor and shifted) -> image[B,3,h*f,w*f], f = 2^(nblocks-1) */
void locus_vae_decode(const locus_vae *v, const float *z, int B, int h, int w, float *image, const locus_hooks *hooks);

/* image[B,3,H,W] -> mean, logvar [B,L,H/f,W/f] (either output may be NULL) */
void locus_vae_encode(const locus_vae *v, const float *image, int B, int H, int W, float *mean, float *logvar,
                      const locus_hooks *hooks);

#endif
