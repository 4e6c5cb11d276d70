/* textenc.h — pre-LayerNorm transformer text encoders: CLIPTextModel(WithProjection) (SD1.x, SD2, SDXL, SD3
 * CLIP-L / OpenCLIP-G) and LDMBertModel (diffusers' LDM text2im), loaded from transformers-layout folders.
 *
 * CLIP: token + position embeddings, layers of [LN1 -> causal self-attention -> +, LN2 -> fc1 -> act
 * (quick_gelu | gelu) -> fc2 -> +], final LayerNorm; pooled = final-LN state at the EOS position (argmax of
 * the ids when eos_token_id is 2 or absent, else the first eos_token_id), text_embeds = text_projection(pooled).
 * LDMBert: the same block shape with q/k/v without bias, no mask, gelu, final LayerNorm.
 * A Hugging Face CLIP folder (model_type "clip", keys in text_config) loads its text tower (models/clip.h).
 */
#ifndef LOCUS_TEXTENC_H
#define LOCUS_TEXTENC_H

#include <stdint.h>

#include "nn.h"

typedef enum { LOCUS_TEXT_CLIP, LOCUS_TEXT_LDMBERT } locus_text_kind;

typedef struct {
    nn_lnorm ln1, ln2;
    nn_linear q, k, v, o, fc1, fc2;
} textenc_layer;

typedef struct {
    locus_text_kind kind;
    int vocab, D, nlayers, heads, dim_head, ffn, maxpos, act, proj_dim;
    int64_t eos_id;
    float eps;
    const float *tok, *pos;
    textenc_layer *layers;
    nn_lnorm final_ln;
    nn_linear proj; /* proj.w NULL when absent */
    locus_loader L;
} locus_textenc;

locus_status locus_textenc_load(locus_textenc *t, const char *dir);
void locus_textenc_free(locus_textenc *t);

/* ids[B,T] -> last[B,T,D] = final LayerNorm of the last layer (may be NULL).
 * hidden_index k >= 0 (k <= nlayers): hidden[B,T,D] = HF hidden_states[k] (0 = embeddings, k = output of
 * layer k-1, no final LN); pass -1 to skip.  pooled[B,D] and text_embeds[B,proj_dim] optional (CLIP only).
 * Token ids outside the vocabulary are an error (LOCUS_E_ARG). */
locus_status locus_textenc_forward(const locus_textenc *t, const int64_t *ids, int B, int T, float *last, int hidden_index,
                                   float *hidden, float *pooled, float *text_embeds, const locus_hooks *hooks);

/* CLIP skip k (diffusers clip_skip): final_layer_norm(hidden_states[-(k+1)]) into out[B,T,D]; k = 0 is
 * last_hidden_state. */
locus_status locus_textenc_clip_skip(const locus_textenc *t, const int64_t *ids, int B, int T, int k, float *out);

#endif
