/* clip.h — an OpenAI CLIP model pair from a Hugging Face CLIP folder, and CLIP-T, the paper's image-text
 * score (the authors' src/eval/clipscore.py with ViT-B/32).
 *
 * A CLIP folder as users download `openai/clip-vit-base-patch32`: config.json (text_config, vision_config,
 * projection_dim), model.safetensors (text_model.*, vision_model.*, text_projection, visual_projection),
 * vocab.json + merges.txt (+ special_tokens_map.json), optional preprocessor_config.json (image_mean,
 * image_std).  Text tower: models/textenc.h; vision tower: models/clip_vision.h; tokenizer:
 * models/tokenizer_clip.h; PIL-exact resize: core/resample.h.
 *
 * The computation, as openai/CLIP's clip.py and the authors' script:
 *   image: RGB uint8 -> Resize(N, bicubic) of the shorter side (PIL's fixed-point filter) -> CenterCrop(N)
 *          (offset round((size - N) / 2), ties to even) -> /255 -> (x - mean) / std -> encode_image
 *   text:  clip.tokenize(prompt, truncate=True): [SOT] + BPE + [EOT], cut to 77 keeping EOT last, zeros
 *          after -> encode_text (the EOT position)
 *   cos = <a / |a|, b / |b|>;  CLIP-T = 2.5 * max(cos, 0).
 * Every step is deterministic: the same bits for any ISA table and thread count.
 */
#ifndef LOCUS_CLIP_H
#define LOCUS_CLIP_H

#include <stdint.h>

#include "clip_vision.h"
#include "textenc.h"
#include "tokenizer_clip.h"

typedef struct {
    locus_clip_vision vision;
    locus_textenc text;
    locus_clip_tok *tok;
    int image_size; /* N: input resolution of the vision tower */
    int context;    /* text context length (77) */
    int proj_dim;   /* length of image and text embeddings */
    float mean[3], std[3];
} locus_clip;

/* Open a Hugging Face CLIP folder (both towers, tokenizer, normalisation constants).  Errors name the folder
 * and what is wrong (missing files or tensors, text and vision projections of different lengths, a
 * preprocessor_config.json whose sizes disagree with the vision tower). */
locus_status locus_clip_open(locus_clip *c, const char *dir);
void locus_clip_close(locus_clip *c);

/* rgb [H,W,3] uint8 (row-major, interleaved) -> pixels [3,N,N] (CLIP's input for one image). */
locus_status locus_clip_preprocess(const locus_clip *c, const uint8_t *rgb, int W, int H, float *pixels);

/* One image -> embeds [proj_dim] (not normalised); pixels [3,N,N] receives the preprocessed input when not
 * NULL. */
locus_status locus_clip_embed_image(const locus_clip *c, const uint8_t *rgb, int W, int H, float *embeds, float *pixels);

/* clip.tokenize(prompt, truncate=True) into ids [context]. */
locus_status locus_clip_tokenize(const locus_clip *c, const char *prompt, int64_t *ids);

/* One prompt -> embeds [proj_dim] (not normalised); ids [context] receives the tokens when not NULL.
 * Embed each prompt once and compare it with many images through locus_clip_cosine. */
locus_status locus_clip_embed_text(const locus_clip *c, const char *prompt, float *embeds, int64_t *ids);

/* Cosine similarity of two embeddings of length n: each divided by its norm, then their dot product (16-lane
 * row kernels, the same bits on every ISA).  0 when either embedding is zero; NAN only if n > 1024 and a
 * scratch buffer cannot be allocated. */
float locus_clip_cosine(const float *a, const float *b, int n);

/* CLIP-T from a cosine: 2.5 * max(cos, 0). */
float locus_clip_t(float cos);

/* CLIP-T of one image and one prompt (embeds both; for many pairs embed once and use the two calls above). */
locus_status locus_clip_score(const locus_clip *c, const uint8_t *rgb, int W, int H, const char *prompt, float *score);

#endif
