/* clip_vision.h — the CLIP vision transformer (transformers' CLIPVisionModelWithProjection = openai/CLIP's
 * VisionTransformer), loaded from a Hugging Face CLIP folder (config.json `vision_config`, HF tensor names).
 *
 * pixel_values [B,3,N,N] -> patch conv (kernel = stride = P, no bias) -> [B,G*G,D] patch tokens after a
 * class token -> + position embeddings -> pre-LayerNorm (`pre_layrnorm`, sic) -> layers of [LN1 -> self-
 * attention (no mask) -> +, LN2 -> fc1 -> quick_gelu | gelu -> fc2 -> +] -> post-LayerNorm of the class
 * token (pooled) -> visual_projection (no bias) = image_embeds [B,proj_dim] (not normalised).
 * Used for CLIP-T (models/clip.h); the text tower is models/textenc.h.
 */
#ifndef LOCUS_CLIP_VISION_H
#define LOCUS_CLIP_VISION_H

#include "nn.h"

typedef struct {
    nn_lnorm ln1, ln2;
    nn_linear q, k, v, o, fc1, fc2;
} clip_vision_layer;

typedef struct {
    int D, nlayers, heads, dim_head, ffn, act, channels;
    int image_size, patch, grid, ntok; /* N, P, G = N / P, G*G + 1 tokens */
    int proj_dim;
    float eps;
    const float *patch_w; /* [D, channels, P, P] */
    const float *cls;     /* [D] */
    const float *pos;     /* [ntok, D] */
    nn_lnorm pre_ln, post_ln;
    clip_vision_layer *layers;
    nn_linear proj;       /* visual_projection [proj_dim, D] */
    locus_loader L;
} locus_clip_vision;

/* Load the vision tower of the CLIP folder `dir` (config.json with vision_config and projection_dim,
 * model.safetensors with vision_model.* and visual_projection.weight).  Every size comes from the config;
 * missing or mis-shaped tensors and unsupported settings (hidden_act other than quick_gelu / gelu, image
 * size not a multiple of the patch) are errors naming the folder. */
locus_status locus_clip_vision_load(locus_clip_vision *v, const char *dir);
void locus_clip_vision_free(locus_clip_vision *v);

/* pixels [B,channels,N,N] (preprocessed: models/clip.h) -> image_embeds [B,proj_dim] and, if not NULL,
 * pooled [B,D] (post-LN class token).  Hook points (HF paths under vision_model): "embeddings" [B,ntok,D],
 * "pre_layrnorm", "encoder.layers.<i>.self_attn", "encoder.layers.<i>.mlp", "encoder.layers.<i>" (block
 * output), "post_layernorm" [B,D]. */
void locus_clip_vision_forward(const locus_clip_vision *v, const float *pixels, int B, float *image_embeds, float *pooled,
                               const locus_hooks *hooks);

#endif
