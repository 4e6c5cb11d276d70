/* run.h — one text-to-image run as an object, and the paper's patched runs built on it.
 *
 * A locus_run owns everything one sampling run needs besides the loaded pipeline: the settings (size, steps,
 * guidance), the noise source (a seed, or a given latent), the ordered hook list (patching first, then
 * interventions, then caches — each told the step and CFG half by the sampler), the per-step observers
 * (dumps, progress) and the results (final latent, decoded image).  `locus generate` is parse -> run ->
 * write; `locus localize` runs many runs on one pipeline; later commands (edit, detox, training previews)
 * use the same object.  Nothing here depends on the model family: the pipeline's denoiser does.
 */
#ifndef LOCUS_RUN_H
#define LOCUS_RUN_H

#include <stdint.h>

#include "../core/safetensors.h"
#include "../models/pipeline.h"
#include "patch.h"
#include "progress.h"

typedef struct {
    float *cond, *uncond;               /* [1,T,ctx_dim] each; uncond NULL without CFG */
    float *cond_pooled, *uncond_pooled; /* [1,pooled_dim] when the denoiser has pooled text (the last pooled_extra
                                         * entries are filled per run by locus_pipeline_size_cond) */
    int T;
} locus_embeds;

/* Encode a prompt (and the negative prompt when cfg) as the pipeline does; max_seq = T5 tokens (SD3). */
locus_status locus_embeds_encode(const locus_pipeline *p, const char *prompt, const char *negative, int cfg, int max_seq,
                                 locus_embeds *e);
/* Load embeddings from a safetensors file: `cond` (and `uncond` when cfg) [1,T,ctx_dim], plus `cond_pooled`
 * (and `uncond_pooled`) [1,pooled_dim - pooled_extra] (the pooled text only) when the denoiser takes pooled
 * text.  Errors name the file and tensor.  negative NULL in locus_embeds_encode: no negative prompt given. */
locus_status locus_embeds_load(const locus_pipeline *p, const char *path, int cfg, locus_embeds *e);
void locus_embeds_free(locus_embeds *e);

typedef struct {
    int steps;
    float guidance;
    int W, H;       /* 0: the model's default size */
    uint64_t seed;  /* torch.randn-compatible initial noise */
    void (*on_step)(void *ctx, int step, int nsteps); /* optional: after every denoiser evaluation */
    void *step_ctx;
    const char *progress; /* optional: label of a progress line on stderr for runs made with these settings */
    int quantize_trunc;   /* 8-bit pixels (locus_run_pixels): 0 round(clamp(x/2+0.5)*255) as diffusers' PIL output;
                           * 1 truncate, (clamp(x/2+0.5)*255).astype(uint8) as the paper's scripts */
} locus_run_opts;

/* Fill defaults (W/H) and check the size against the model; a one-line error for a bad size. */
locus_status locus_run_prepare(const locus_pipeline *p, locus_run_opts *o);

#define LOCUS_MAX_OBSERVERS 4

typedef struct {
    locus_pipeline *p;
    locus_run_opts o;
    const float *noise;   /* optional initial noise [C,h,w] (before init_noise_sigma); NULL: seeded */
    float *noise_owned;
    locus_hooks hooks;    /* in call order */
    locus_step_cb obs[LOCUS_MAX_OBSERVERS];
    int nobs;
    locus_st_writer *dump;      /* optional: every step's "step<N>.noise_pred_uncond/_text", "step<N>.noise_pred",
                                 * "step<N>.latent_out" [1,C,h,w], then "final_latent" and "image" [1,3,H,W] */
    const char *progress;       /* optional: label of a progress line on stderr (from the opts) */
    locus_progress prog;
    /* results of the last locus_run_exec (owned) */
    float *latent;        /* [C,h,w] */
    float *image;         /* [3,H,W], about [-1,1] */
    int h, w, C;
} locus_run;

/* A run on p with settings o (copied; call locus_run_prepare on o first), no hooks, no observers. */
void locus_run_init(locus_run *r, locus_pipeline *p, const locus_run_opts *o);
/* Append a hook / a per-step observer (asserts on overflow: the callers add a fixed few). */
void locus_run_add_hook(locus_run *r, locus_hook_entry h);
void locus_run_add_observer(locus_run *r, locus_step_cb cb);
/* Initial noise from a safetensors file (tensor `noise` [1,C,h,w]); the run keeps it.  Errors name the file. */
locus_status locus_run_load_noise(locus_run *r, const char *path);
/* Sample from the noise with conditioning e and decode: fills r->latent and r->image. */
locus_status locus_run_exec(locus_run *r, const locus_embeds *e);
/* r->image as 8-bit RGB rows (pix[H*W*3]), rounded or truncated as o.quantize_trunc says. */
void locus_run_pixels(const locus_run *r, uint8_t *pix);
void locus_run_free(locus_run *r);

/* One seeded run with the given hooks (may be NULL), decoded into pix[H*W*3] (uint8 RGB). */
locus_status locus_run_image(locus_pipeline *p, const locus_run_opts *o, const locus_embeds *e, const locus_hooks *hooks,
                             uint8_t *pix);

/* Patched runs of prompt A with prompt B's text in chosen text layers (patch.h). */
typedef struct {
    locus_pipeline *p;
    const locus_run_opts *o;
    const locus_embeds *a;
    locus_embeds b;        /* B's conditional text with A's unconditional (as the authors' code) */
    const float *noise;    /* optional initial noise (as locus_run.noise) */
    locus_textpatch tp;
} locus_patcher;

/* Prepare patching A with B.  Where the denoiser's text K/V come from the prompt embedding alone (UNets),
 * patched layers recompute them from B's embedding and pix_b (when non-NULL) gets B's image from a plain
 * run.  Otherwise (MM-DiT) this runs prompt B once, recording the text K/V of the layers in `record`
 * (comma-separated layer paths or prefixes; NULL = every text layer; memory: 2 x steps x [B,S,D] floats per
 * layer) and writes B's own image into pix_b when non-NULL.  both: patch both CFG halves (default:
 * conditional only).  noise: as locus_run.noise (NULL = o->seed). */
locus_status locus_patcher_init(locus_patcher *pt, locus_pipeline *p, const locus_run_opts *o, const locus_embeds *a,
                                const locus_embeds *b, int both, int start_step, const char *record, const float *noise,
                                uint8_t *pix_b);
/* Select the layers patched by the next runs (comma-separated paths or prefixes); errors name an entry that
 * is not a text layer, or one not recorded from B's run. */
locus_status locus_patcher_select(locus_patcher *pt, const char *layers);
/* The patching hook, to add to a run whose other hooks the caller chooses (after locus_patcher_select). */
locus_hook_entry locus_patcher_hook(locus_patcher *pt);
/* One patched run: select `layers` (all patched together) and run A into pix. */
locus_status locus_patcher_run(locus_patcher *pt, const char *layers, uint8_t *pix);
void locus_patcher_free(locus_patcher *pt);

#endif
