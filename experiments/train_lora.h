/* train_lora.h — LoRA fine-tuning of a denoiser (`locus train-lora`) and the `locus lora` file tools.
 *
 * The training objective is the one of diffusers' training scripts: UNet (DDPM): noisy = sqrt(ac[t]) x0 +
 * sqrt(1 - ac[t]) noise, target = noise (epsilon) or the velocity (v_prediction); SD3 (flow matching):
 * noisy = (1 - sigma) x0 + sigma noise, timestep = sigma * num_train_timesteps, target = noise - x0; loss =
 * mean squared error over every element.  Exposed here so tests can check each piece against the goldens.
 */
#ifndef LOCUS_TRAIN_LORA_H
#define LOCUS_TRAIN_LORA_H

#include <stdint.h>

#include "../core/rng.h"
#include "../core/safetensors.h"
#include "../models/denoiser.h"
#include "../models/objective.h"
#include "../models/scheduler.h"

/* One training batch (all buffers malloc'd, owned). */
typedef struct {
    int B, C, H, W;
    float *x0, *noise;  /* [B,C,H,W] clean latents and the noise */
    float *t;           /* [B] timesteps given to the model */
    int64_t *tint;      /* DDPM objectives: [B] training timestep indices; NULL for flow matching */
    float *sigmas;      /* flow matching: [B]; NULL for DDPM objectives */
    float *ctx;         /* [B,S,D] text embeddings */
    int S, D;
    float *pooled;      /* [B,P] pooled text embeddings when the denoiser takes them (P > 0) */
    int P;
} locus_train_batch;

/* The denoiser being trained, with its training noise schedule. */
typedef struct {
    locus_denoiser den;
    locus_scheduler sched;
    locus_objective ob; /* from the scheduler: DDPM epsilon / v, or flow matching */
    int flow;           /* ob.kind == LOCUS_OBJ_FLOW: batches carry sigmas */
    locus_loader *L;    /* the denoiser's loader (registry of Linear layers) */
    char comp_dir[4096];
} locus_train_model;

/* Open the denoiser of --model DIR (a pipeline folder or a folder of component folders: unet/ or
 * transformer/, plus scheduler/; or a unet/ / transformer/ folder itself, its scheduler beside it) with plain
 * (unpacked) Linear weights. */
locus_status locus_train_model_open(locus_train_model *m, const char *dir);
void locus_train_model_close(locus_train_model *m);

/* Read batch k (tensors batch{k}.x0, .noise, .timesteps (I64, UNet) or .sigmas (SD3), .encoder_hidden_states,
 * .pooled_projections (SD3)) of a --batches file; errors name the missing or mis-shaped tensor. */
locus_status locus_train_batch_read(const locus_st_file *f, int k, const locus_train_model *m, locus_train_batch *b);
void locus_train_batch_free(locus_train_batch *b);
/* Number of consecutive batches batch0, batch1, ... in the file. */
int locus_train_batch_count(const locus_st_file *f);

/* noisy[B,C,H,W] and target[B,C,H,W] of the objective above. */
void locus_train_noise(const locus_train_model *m, const locus_train_batch *b, float *noisy, float *target);

/* mean((pred - target)^2) over n elements (sum of squares with the 16-lane fixed tree, then / n); when dpred
 * is non-NULL it receives d loss / d pred = ((float)(2/n) * (pred - target)) * gscale, as torch's
 * mse_loss_backward with grad_output gscale. */
float locus_train_mse(const float *pred, const float *target, size_t n, float *dpred, float gscale);

/* Forward-only loss of one batch with whatever adapters are attached (no gradient). */
locus_status locus_train_loss(const locus_train_model *m, const locus_train_batch *b, float *loss);

/* --data DIR (experiments/train_data.c): the posterior of every image's latent and the embeddings of every
 * distinct caption, computed once with the pipeline's VAE and text encoder(s). */
typedef struct {
    int n, C, h, w;       /* examples; latent channels and size */
    float *mean, *std;    /* [n,C,h,w] latent posterior (std = exp(logvar / 2)) */
    float scaling, shift; /* latents = (sample - shift) * scaling */
    int *prompt;          /* [n] caption index of each example */
    int nprompts, S, D, P;
    float *ctx;           /* [nprompts,S,D] text embeddings */
    float *pooled;        /* [nprompts,P] pooled embeddings (SD3) */
} locus_train_data;

/* Read DIR/metadata.jsonl and its PNG images with the pipeline at model_dir (SD1.x/SD2 or SD3; resolution
 * 0 = the denoiser's sample_size x VAE factor; max_seq = T5 tokens for SD3).  Errors name the file and line:
 * no metadata.jsonl, a bad line, an unreadable image, a resolution that is not a multiple of the VAE factor. */
locus_status locus_train_data_load(locus_train_data *d, const char *model_dir, const char *data_dir, int resolution, int max_seq);
void locus_train_data_free(locus_train_data *d);

/* The micro-batch of B examples starting at position `first` of the epoch sequence (permutation per epoch
 * from (seed, epoch)); latents, noise and timesteps / sigmas drawn from g in that order. */
locus_status locus_train_data_batch(const locus_train_data *d, const locus_train_model *m, int64_t first, int B, uint64_t seed,
                                    locus_mt19937 *g, locus_train_batch *b);

/* The example at position i of the endless epoch sequence over n examples: a Fisher-Yates permutation per
 * epoch from a generator seeded by (seed, epoch); perm[n] is scratch and *perm_epoch (start at -1) caches
 * the epoch it holds. */
int locus_train_example_at(int n, int64_t i, uint64_t seed, int *perm, int64_t *perm_epoch);

/* CLI entry points (argv[0] is the command name). */
int locus_cmd_train_lora(int argc, char **argv);
int locus_cmd_lora(int argc, char **argv);

#endif
