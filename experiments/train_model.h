/* train_model.h — `locus train vae|unet|pipeline`: whole models trained from scratch (the teaching models of
 * issue 11), written as diffusers component and pipeline folders.
 *
 * Pieces (each file says more):
 *   train_common.c   options, the image folder (metadata.jsonl + PNGs, kept as 8-bit pixels), diffusers
 *                    config.json writing (exactly the keys and types diffusers 0.31 writes), torch-style
 *                    initialisation of a freshly built model, weights files
 *   train_loop.c     the generic full-parameter loop: AdamW over every tracked parameter, gradient clipping,
 *                    atomic checkpoints (weights + optimizer + step + RNG + loss history), --resume with the
 *                    same bits, progress, NaN stop, loss.png / loss.csv
 *   train_vae.c      AutoencoderKL: MSE(recon, x) + kl_weight * KL
 *   train_unet.c     UNet2DConditionModel on cached VAE latent posteriors, frozen text encoder, caption dropout
 *   train_sd3.c      SD3Transformer2DModel (flow matching) the same way, with its two CLIP encoders' embeddings
 *   train_stage.c    what those two share: caption numbering and dropout, --resume settings, progress pictures
 *   train_pipeline.c the pipeline skeleton (model_index.json, scheduler/, tokenizer/, a frozen random CLIP
 *                    text_encoder/) and `train pipeline`, which runs all stages
 * The LoRA trainer's pieces are reused through train_lora.h (batch sampling, the objective's noise).
 */
#ifndef LOCUS_TRAIN_MODEL_H
#define LOCUS_TRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/json.h"
#include "../core/rng.h"
#include "../core/safetensors.h"
#include "../models/adamw.h"
#include "../models/grads.h"
#include "../models/loader.h"
#include "../models/pipeline.h"
#include "train_lora.h"

/* Options shared by the stages (0 / NULL = not given). */
typedef struct {
    const char *data, *config, *out, *base, *tokenizer, *tokenizer2, *text_config, *vae_config, *unet_config, *sched_config;
    int family_sd3;   /* pipeline: a StableDiffusion3Pipeline skeleton (train_sd3.c) */
    int steps, batch_size, ckpt_every, resume, threads, W, H, warmup, grad_ckpt, quiet, fp16;
    int decay;        /* the last `decay` steps take the learning rate linearly to 0 (0 = constant) */
    int train_text;   /* unet: train the (layer-free) CLIP text encoder with the UNet (train_text.c) */
    int vae_steps, unet_steps, vae_batch, unet_batch; /* train pipeline: per-stage overrides */
    int samples;      /* progress pictures at checkpoints: images / prompts (4; 0 = none) */
    double lr, wd, b1, b2, eps, clip, kl_weight, cfg_dropout;
    double vae_lr, unet_lr; /* train pipeline: per-stage learning rates (< 0: --lr or the stage's default) */
    double ema;       /* EMA of the weights (diffusers' EMAModel decay; 0 = off): what is saved and pictured */
    uint64_t seed;
} locus_train_opts;

/* Defaults: lr 1e-4 (vae) / 1e-3 (unet) set by the stage, wd 1e-2, betas 0.9/0.999, eps 1e-8, clip 1,
 * batch 8, seed 0, checkpoint every 100 steps, kl 1e-6, cfg dropout 0.1. */
void locus_train_opts_defaults(locus_train_opts *o);

/* Parse argv[1..] into o.  Returns 0 on success, 1 for --help, 2 after printing one error line. */
int locus_train_opts_parse(locus_train_opts *o, int argc, char **argv, const char *what);

/* ---- the image folder ---- */

typedef struct {
    int n, W, H;      /* examples, image size (every image resized to W x H) */
    uint8_t *pix;     /* [n][H][W][3] */
    char **caption;   /* [n] */
} locus_train_images;

/* Read DIR/metadata.jsonl ({"file_name", "text"} per line) and its PNGs; W, H = 0: the first image's size.
 * Images of another size are resized (bilinear, half-pixel centres).  Errors name the file and line. */
locus_status locus_train_images_load(locus_train_images *d, const char *dir, int W, int H);
void locus_train_images_free(locus_train_images *d);
/* Example i as [3,H,W] in [-1, 1] ((v / 255 - 0.5) / 0.5, as the LoRA trainer's preprocessing). */
void locus_train_image_f32(const locus_train_images *d, int i, float *out);
/* The example order is the LoRA trainer's: locus_train_example_at (train_lora.h). */

/* The latent posterior of every image of img with the VAE v (mean; std = exp(logvar / 2)) into d: n, C, h,
 * w, scaling, shift, mean, std, and d->prompt allocated (unfilled).  Images must be multiples of the VAE
 * factor (else an error naming both).  train_unet.c; shared by the unet and transformer stages. */
locus_status locus_train_encode_latents(locus_train_data *d, const locus_vae *v, const locus_train_images *img);

/* ---- diffusers config files ---- */

enum { LOCUS_CFG_VAE, LOCUS_CFG_UNET, LOCUS_CFG_CLIP_TEXT, LOCUS_CFG_DDIM, LOCUS_CFG_SD3, LOCUS_CFG_FLOW, LOCUS_CFG_CLIP_PROJ };
/* Merge a user config (JSON file; NULL = defaults only) over the diffusers 0.31 template of `kind` and write
 * it to `path` as diffusers does (every __init__ argument, sorted keys, indent 2, floats with a decimal
 * point, trailing newline).  Unknown keys, wrong types and a wrong _class_name are errors naming the key.
 * `over` (may be NULL) is a JSON object text whose members win over both (e.g. a computed scaling_factor). */
locus_status locus_train_write_config(int kind, const char *user_path, const char *over, const char *path);
/* The same merge as text (malloc'd, caller frees). */
locus_status locus_train_config_text(int kind, const char *user_path, const char *over, char **text);

/* ---- initialisation and weights ---- */

/* Re-initialise every parameter of L as torch's default module init does: >= 2-D weights keep the loader's
 * random-mode U(-1,1)/sqrt(fan_in) (= kaiming_uniform(a=sqrt(5))), biases of those layers U(-b, b) with
 * b = 1/sqrt(fan_in), norm weights 1 and norm biases 0 (counter-based uniforms from seed: the same bits
 * on every machine). */
void locus_train_init_torch(locus_loader *L, uint64_t seed);

/* Write every tracked parameter of g (names and shapes of the registry) as F32 (fp16: F16, rounded to
 * nearest even as torch's .half()) to a safetensors file, atomically; `meta` pairs (key, value, ..., NULL)
 * go to __metadata__. */
locus_status locus_train_save_weights(const locus_grads *g, const char *path, const char *const *meta, int fp16);
/* Add x[numel] under name as F32, or as F16 when fp16 (converted with locus_train_f16). */
locus_status locus_train_add_tensor(locus_st_writer *w, const char *name, int ndim, const int64_t *shape, const float *x, size_t numel, int fp16);
/* fp32 -> IEEE binary16 bits, round to nearest even (overflow to inf, subnormals, NaN kept quiet). */
uint16_t locus_train_f16(float f);

/* ---- the loop ---- */

typedef struct locus_trainer locus_trainer;
/* One step's loss: accumulate d loss / d parameter into the trainer's gradient table (zeroed before) and
 * draw any randomness from t->rng. */
typedef locus_status (*locus_train_eval_fn)(locus_trainer *t, int64_t step, float *loss);

struct locus_trainer {
    const char *what;        /* "vae", "unet" (messages, file names) */
    const locus_train_opts *o;
    locus_grads grads;       /* every trainable parameter (the registry of the model) */
    locus_adamw opt;
    locus_mt19937 rng;       /* batch randomness; its position is checkpointed */
    float *losses;           /* [o->steps] */
    float **ema;             /* [grads.n] exponential moving averages of the parameters (o->ema > 0), else NULL */
    locus_train_eval_fn eval;
    /* after every checkpoint (may be NULL): progress pictures, OUT/train/<stage>_step<N>.png; must not touch
     * the trainer's state (its randomness is its own) */
    locus_status (*on_checkpoint)(locus_trainer *t, int64_t step);
    void *ctx;               /* the stage's state */
    char settings[2048];     /* what --resume must match */
    char workdir[4200];      /* OUT/train: checkpoint, loss.png, loss.csv */
    int64_t start;           /* step resumed from */
};

/* Track every parameter of L (except names in `buffers`, NULL-terminated, may be NULL) in t->grads and the
 * optimizer (lr, betas, eps, weight decay, warmup from t->o). */
locus_status locus_trainer_init(locus_trainer *t, const locus_train_opts *o, const char *what, const locus_loader *L,
                                const char *const *buffers);
void locus_trainer_free(locus_trainer *t);
/* Track one more caller-owned parameter after locus_trainer_init (gradient, AdamW state, EMA copy). */
locus_status locus_trainer_track(locus_trainer *t, const char *name, float *param, int ndim, const int64_t *shape);
/* With --ema: exchange the parameters and their moving averages in place (twice = unchanged).  The stages
 * swap before writing the weights (EMA weights are the output, as diffusers' --use_ema) and around pictures. */
void locus_trainer_swap_ema(locus_trainer *t);
/* Run steps start+1 .. o->steps (resuming from the checkpoint when o->resume and it exists), checkpoint every
 * o->ckpt_every steps and at the end, loss.png, loss.csv and on_checkpoint's pictures at every checkpoint.  A non-finite loss stops with
 * an error naming the step (the last checkpoint is left intact). */
locus_status locus_trainer_run(locus_trainer *t);

/* A picture grid: n images [3,H,W] in [-1,1] per row, `rows` rows (row-major in imgs), 2-pixel gaps, as a PNG. */
locus_status locus_train_save_grid(const char *path, const float *imgs, int rows, int n, int H, int W);

/* ---- what the denoiser stages share (train_stage.c) ---- */

/* Number the distinct captions of img in order of first appearance: d->prompt[i] (allocated by
 * locus_train_encode_latents) and d->nprompts; list (may be NULL): a malloc'd array of the distinct captions
 * (pointers into img), caller frees. */
locus_status locus_train_number_captions(locus_train_data *d, const locus_train_images *img, char ***list);

/* The caption index of each example of step `step` (batch B) in the sampler's example order, then caption
 * dropout: one draw of t->rng per example in order, below --cfg-dropout -> -1 (the empty caption).  Call after
 * the batch's own draws (locus_train_data_batch). */
locus_status locus_train_step_captions(locus_trainer *t, const locus_train_data *d, int64_t step, int B, int *cap);

/* t->settings (what --resume must match) for a denoiser stage: the stage name, data, base, the written config
 * and the latents (hashed), and every optimisation option. */
void locus_train_stage_settings(locus_trainer *t, const char *stage, const locus_train_opts *o, const char *base, const locus_train_images *img,
                                const locus_train_data *d, const char *cfgtext);

/* The conditioning of caption i (-1: the empty caption) with the weights as they are now: ctx [T,D] and,
 * for pooled models, pooled [PD] (NULL otherwise). */
typedef locus_status (*locus_train_cond_fn)(const void *stage, int i, float *ctx, float *pooled);

typedef struct {
    const locus_denoiser *den;
    locus_scheduler *sched; /* a copy for sampling (NULL: no pictures) */
    const locus_vae *vae;   /* NULL: no pictures */
    const locus_train_data *d;
    int T, D, PD;           /* conditioning rows, width, pooled width (0: none) */
    float guidance;         /* 7.5 for SD1.x pipelines, 7 for SD3 (their pipelines' defaults) */
    locus_train_cond_fn cond;
    const void *stage;
} locus_train_pics;

/* Progress picture at a checkpoint: the first --samples distinct captions, 20 steps of the folder's scheduler
 * as `locus generate` samples (guidance against the empty caption; noise randn(seed 1000 + i) times the
 * scheduler's init_noise_sigma), decoded -> OUT/train/<stage>_step<N>.png.  Independent of the trainer's
 * generator. */
locus_status locus_train_pictures(locus_trainer *t, int64_t step, const locus_train_pics *p);

/* ---- the text encoder trained with the UNet (train_text.c) ---- */

typedef struct {
    locus_pipeline p;           /* text encoder + tokenizer only (locus_pipeline_open_text) */
    int open, V, D, P, S, ncap; /* vocabulary, width, positions, tokens per caption, captions */
    int64_t *ids;               /* [ncap + 1, S] token ids of every caption; the last row is the empty caption */
    float *tok, *pos;           /* [V, D], [P, D] the trained embedding tables (the encoder reads these) */
    float *lnw, *lnb;           /* [D] final LayerNorm */
} locus_text_train;

/* Open base's text_encoder/ + tokenizer/ (a CLIP encoder with num_hidden_layers 0, else an error naming
 * why), make its parameters writable and tokenize captions[ncap] (+ the empty caption). */
locus_status locus_text_train_open(locus_text_train *tt, const char *base, char *const *captions, int ncap);
void locus_text_train_free(locus_text_train *tt);
/* Add the four parameters to the trainer (names prefixed "text_encoder."). */
locus_status locus_text_train_track(locus_text_train *tt, locus_trainer *t);
/* ctx[B,S,D] = the encoder's last_hidden_state for caption indices cap[B] (-1: the empty caption), computed
 * exactly as locus_pipeline_encode_prompt does. */
locus_status locus_text_train_embed(const locus_text_train *tt, const int *cap, int B, float *ctx);
/* Accumulate d loss / d parameters from dctx[B,S,D] into g (fixed order: rows of the batch in order). */
locus_status locus_text_train_backward(const locus_text_train *tt, const int *cap, int B, const float *dctx, const locus_grads *g);
/* Rewrite base/text_encoder/model.safetensors with the trained parameters (F16 when fp16), atomically. */
locus_status locus_text_train_save(const locus_text_train *tt, const char *base, int fp16);

/* CLIPTextModel(WithProjection) weights for the config at cfg_path, initialised as transformers does
 * (train_pipeline.c); with_proj: also text_projection.weight [projection_dim, hidden_size], all zeros (SD3
 * skeletons: pooled text embeddings exactly 0, train_sd3.c says why), and no position_ids buffer (the key sets
 * transformers wrote for tests/golden/pipelines/sd15-tiny and sd3-tiny respectively). */
locus_status locus_train_write_text_encoder(const char *cfg_path, const char *out, uint64_t seed, int fp16, int with_proj);

/* diffusers' get_2d_sincos_pos_embed(D, G, base_size) as numpy computes it (float32 grid, float64 sin/cos),
 * [G*G, D] into out: the SD3 transformer's pos_embed.pos_embed buffer for pos_embed_max_size G (train_sd3.c). */
void locus_train_sincos_pos_embed(float *out, int D, int G, int base_size);

/* ---- commands ---- */
int locus_cmd_train(int argc, char **argv);
int locus_train_vae(const locus_train_opts *o);
int locus_train_unet(const locus_train_opts *o);
int locus_train_transformer(const locus_train_opts *o);
/* The StableDiffusion3Pipeline skeleton (train_sd3.c): model_index.json (no T5), FlowMatchEuler scheduler/,
 * tokenizer/ + tokenizer_2/ (copied), text_encoder/ + text_encoder_2/ (CLIPTextModelWithProjection, zero text
 * projections); vae/ and transformer/ come from `train vae` / `train transformer`.  Existing files are kept. */
locus_status locus_train_skeleton_sd3(const locus_train_opts *o);
/* The pipeline skeleton in o->out: model_index.json, scheduler/, tokenizer/ (copied from o->tokenizer),
 * text_encoder/ (config o->text_config over the template, frozen CLIP-init random weights from o->seed);
 * existing files are kept (so a resumed pipeline run does not rewrite them). */
locus_status locus_train_skeleton(const locus_train_opts *o);

#endif
