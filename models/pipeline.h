/* pipeline.h — a text-to-image pipeline folder as users download it.
 *
 * Layouts: a diffusers pipeline folder with model_index.json (StableDiffusionPipeline: unet/ vae/
 * text_encoder/ tokenizer/ scheduler/; LDMTextToImagePipeline: unet/ vqvae/ bert/ tokenizer/ scheduler/), or a
 * folder holding only component subfolders (unet/, vae/ or vqvae/, text_encoder/ or bert/, scheduler/).
 * The text encoder is optional when embeddings are supplied (--prompt-embeds).
 *
 * DeepFloyd IF stage I (IFPipeline, models/pipeline_if.c): unet/ (IF's pixel-space UNet) + scheduler/ (DDPM) and
 * optionally text_encoder/ (T5EncoderModel) + tokenizer/spiece.model; no VAE: the sample is the image.  Stage
 * II (super-resolution) is not supported.
 */
#ifndef LOCUS_PIPELINE_H
#define LOCUS_PIPELINE_H

#include <limits.h>

#include "denoiser.h"
#include "sampler.h"
#include "t5.h"
#include "textenc.h"
#include "tokenizer_bert.h"
#include "tokenizer_clip.h"
#include "tokenizer_sp.h"
#include "unet.h"
#include "vae.h"

typedef enum { LOCUS_PIPE_SD, LOCUS_PIPE_LDM, LOCUS_PIPE_SD3, LOCUS_PIPE_SDXL, LOCUS_PIPE_IF } locus_pipe_kind;

typedef struct {
    locus_pipe_kind kind;
    char dir[PATH_MAX];
    char class_name[64];
    locus_denoiser den;  /* unet/ (SD, LDM) or transformer/ (SD3) */
    locus_textenc text2; /* SD3: text_encoder_2 (OpenCLIP-G) */
    int has_text2;
    locus_t5 t5;         /* SD3: text_encoder_3 (optional, as in diffusers); IF: text_encoder */
    int has_t5;
    locus_clip_tok *tok2;
    locus_sp_tok *tok3;  /* SD3: tokenizer_3/spiece.model; IF: tokenizer/spiece.model */
    locus_bert_tok *btok; /* LDM: tokenizer/vocab.txt (BERT WordPiece) */
    locus_vae vae;
    locus_scheduler sched;
    locus_textenc text;
    int has_text;
    locus_clip_tok *tok; /* NULL when the folder has no CLIP tokenizer */
    int vae_factor; /* pixels per latent (1 for IF: no VAE) */
    int clip_skip;  /* SD1.x/SD2 prompts: final LN of the (clip_skip+1)-th last CLIP layer (diffusers' clip_skip) */
    unsigned long long model_hash; /* FNV-1a over every component's config and safetensors header */
    float default_guidance; /* the diffusers pipeline's default guidance_scale (LDM 1, SD 7.5, SD3 7) */
    int text_tokens_fixed;  /* > 0: prompts always give this many tokens (77; SD3 without T5: 77 + 77 zero rows); 0: 77 + max_seq (SD3's T5) */
    int force_zeros;        /* SDXL force_zeros_for_empty_prompt (model_index.json; default 1): no negative prompt -> zeros */
    int negative_none_zeros; /* "no negative prompt" differs from "" for this pipeline (SDXL with force_zeros) */
    int size_cond[6];       /* SDXL size conditioning set by locus_pipeline_set_size_cond: original H,W, crop top,left, target H,W */
    int size_cond_set[3];   /* which of the three pairs were given (the others default from the run size) */
} locus_pipeline;

locus_status locus_pipeline_open(locus_pipeline *p, const char *dir);
/* Only the prompt encoder of an SD1.x-style folder (text_encoder/ + tokenizer/; no denoiser, VAE or scheduler):
 * for training a denoiser on a frozen text encoder.  Free with locus_textenc_free(&p->text) and
 * locus_clip_tok_free(p->tok). */
locus_status locus_pipeline_open_text(locus_pipeline *p, const char *dir);
void locus_pipeline_close(locus_pipeline *p);

/* Prompt -> the denoiser's text conditioning, whatever the family: embeds [1,T,den.ctx_dim] (T from
 * locus_pipeline_text_tokens) and, when den.pooled_dim > 0, pooled [1,pooled_dim] (its last den.pooled_extra
 * entries zero: locus_pipeline_size_cond fills them per run). max_seq: T5 tokens (SD3).  prompt NULL means "no
 * negative prompt given": the empty prompt, or zeros where the pipeline says so (SDXL's
 * force_zeros_for_empty_prompt; an explicit "" is encoded). */
locus_status locus_pipeline_encode(const locus_pipeline *p, const char *prompt, int max_seq, float *embeds, float *pooled, int *T);
/* Tokens of an encoded prompt for this pipeline */
int locus_pipeline_text_tokens(const locus_pipeline *p, int max_seq);

/* SDXL prompt embeddings as StableDiffusionXLPipeline.encode_prompt builds them (clip_skip None): CLIP-L and
 * OpenCLIP-G hidden_states[-2] concatenated on features [1,77,ctx_dim]; pooled = text_encoder_2's text_embeds
 * (projected EOS state) followed by den.pooled_extra zeros.  prompt NULL with force_zeros: all zeros. */
locus_status locus_pipeline_encode_prompt_sdxl(const locus_pipeline *p, const char *prompt, float *embeds, float *pooled, int *T);

/* Size conditioning (SDXL's micro-conditioning: original_size, crops_coords_top_left, target_size, each a
 * pair (H,W) / (top,left); NULL keeps diffusers' default: original = target = the output size, crop 0,0).
 * An error when the denoiser takes none. */
locus_status locus_pipeline_set_size_cond(locus_pipeline *p, const int *original, const int *crop, const int *target);
/* The den.pooled_extra trailing entries of a pooled vector for a run of W x H pixels (nothing when 0). */
void locus_pipeline_size_cond(const locus_pipeline *p, int W, int H, float *extra);

/* Print the architecture (`locus info --model`). */
void locus_pipeline_print_info(const locus_pipeline *p, const char *dir);

/* Prompt -> [1,77,D] text embeddings (the text encoder's last_hidden_state, as StableDiffusionPipeline
 * with clip_skip None; p->clip_skip > 0 takes an earlier layer; LDM: LDMBert on the BERT WordPiece ids, as
 * LDMTextToImagePipeline).  Warns on stderr when the prompt is truncated to 77 tokens. */
locus_status locus_pipeline_encode_prompt(const locus_pipeline *p, const char *prompt, float *embeds, int *T);



/* SD3 prompt embeddings as StableDiffusion3Pipeline.encode_prompt builds them (clip_skip None): CLIP-L and
 * CLIP-G penultimate hidden states concatenated on features and zero-padded to the joint width, followed on
 * the token axis by T5's last hidden state (zeros when the folder has no text_encoder_3) of max_seq tokens;
 * pooled = both text projections concatenated.  embeds holds (77 + max_seq) x joint_dim floats. */
locus_status locus_pipeline_encode_prompt_sd3(const locus_pipeline *p, const char *prompt, int max_seq, float *embeds, float *pooled, int *T);

/* DeepFloyd IF (models/pipeline_if.c): open the rest of an IF folder whose UNet is open in p->den (scheduler/,
 * text_encoder/ + tokenizer/ when present; closes the pipeline on failure). */
locus_status locus_pipeline_open_if(locus_pipeline *p, const char *dir);
/* IFPipeline.encode_prompt: the prompt lower-cased and stripped (what _text_preprocessing does with
 * clean_caption when its optional packages bs4/ftfy are absent), T5 ids padded to 77 with the attention mask,
 * T5's last_hidden_state [1,77,D]. */
locus_status locus_pipeline_encode_prompt_if(const locus_pipeline *p, const char *prompt, float *embeds, int *T);

/* Hash of a component for model_hash (config.json bytes and each safetensors header); for the pipeline files. */
unsigned long long locus_pipeline_hash_component(unsigned long long h, const locus_loader *L);

/* in_channels / latent size of the denoiser */
int locus_pipeline_latent_channels(const locus_pipeline *p);

/* Peak memory (bytes of locus_alloc blocks, what locus_mem_peak reports) of a plain CFG generate run at W x H
 * with text_tokens context tokens (SD3: 77 + T5 tokens) on `threads` threads: all loaded weights plus the
 * highest of the three phases (prompt + negative prompt encoding, denoising, VAE decode), each replayed
 * without computing from the forwards' allocation sequence (how, and what is not counted: models/pipeline.c).
 * _parts also reports parts[0] = weights and parts[1..3] = each phase's peak above the weights (what the run
 * holds then plus its activations and kernel scratch); the estimate is parts[0] + max(parts[1..3]). */
size_t locus_pipeline_peak_estimate(const locus_pipeline *p, int W, int H, int text_tokens, int threads);
/* The family's short name: "sd" (SD1.x/2.x), "ldm", "sd3", "sdxl", "if" (static string). */
const char *locus_pipeline_family(const locus_pipeline *p);
size_t locus_pipeline_peak_estimate_parts(const locus_pipeline *p, int W, int H, int text_tokens, int threads, size_t parts[4]);

/* latent[C,h,w] -> image[3, h*f, w*f] in about [-1,1], with the pipeline's own latent scaling
 * (SD: latents / scaling_factor; LDM: (1 / scaling_factor) * latents; plus shift_factor when set; IF: the
 * sample itself, as IFPipeline with output_type "pt"). */
void locus_pipeline_decode(const locus_pipeline *p, const float *latent, int h, int w, float *image);

#endif
