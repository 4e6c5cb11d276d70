/* mmdit.h — diffusers SD3Transformer2DModel (SD3 / SD3.5 MMDiT), built from its config.json.
 *
 * PatchEmbed (conv p x p, stride p, + the stored 2-D sin-cos table cropped to the latent's size), timestep
 * (256-channel sinusoid -> MLP) + pooled-text (MLP) conditioning, context_embedder, joint transformer blocks
 * (AdaLayerNormZero on both streams, joint attention over [image tokens, context tokens], optional RMS qk-norm,
 * SD3.5 dual attention layers with SD35AdaLayerNormZeroX, last block context_pre_only with
 * AdaLayerNormContinuous), norm_out (AdaLayerNormContinuous), proj_out, unpatchify.
 */
#ifndef LOCUS_MMDIT_H
#define LOCUS_MMDIT_H

#include "nn.h"

typedef struct {
    int dual, pre_only;
    nn_linear norm1, norm1_ctx;               /* AdaLN linears: 6D (9D when dual) / 6D (2D when pre_only) */
    nn_linear q, k, v, aq, ak, av, out, add_out;
    const float *nq, *nk, *naq, *nak;         /* RMS qk-norm weights [head_dim] or NULL */
    nn_linear q2, k2, v2, out2;               /* dual attention */
    const float *nq2, *nk2;
    nn_linear ff_in, ff_out, ffc_in, ffc_out;
} mmdit_block;

typedef struct {
    int in_channels, out_channels, patch, heads, head_dim, D, nlayers, joint_dim, pooled_dim, pos_max, sample_size;
    int qk_norm;
    nn_conv patch_proj;
    const float *pos_table; /* [pos_max*pos_max, D] */
    nn_linear t1, t2, p1, p2, ctx_emb, norm_out, proj_out;
    mmdit_block *blocks;
    locus_loader L;
} locus_mmdit;

locus_status locus_mmdit_load(locus_mmdit *m, const char *dir);
locus_status locus_mmdit_load_random(locus_mmdit *m, const char *config_path, uint64_t seed);
void locus_mmdit_free(locus_mmdit *m);

/* x[B,C,H,W], timesteps[B], ctx[B,S,joint_dim], pooled[B,pooled_dim] -> out[B,out,H,W].
 * Hooks see module outputs by diffusers path ("transformer_blocks.1.attn:0", ...). */
void locus_mmdit_forward(const locus_mmdit *m, const float *x, int B, int H, int W, const float *timesteps, const float *ctx, int S,
                         const float *pooled, float *out, const locus_hooks *hooks);

/* Wrap a loaded MM-DiT (ownership passes: closing the denoiser frees and free()s m) as a locus_denoiser. */
struct locus_denoiser;
locus_status locus_mmdit_denoiser(struct locus_denoiser *d, locus_mmdit *m);

#endif
