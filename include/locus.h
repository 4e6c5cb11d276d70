/* locus.h — the stable C API of liblocus.so: open a diffusers pipeline folder, read what it is (family,
 * sizes, the attention layers that read the text and their parameter counts), encode prompts, run a
 * generation with hooks (cache hook points by glob, the paper's text patching, interventions), read the image
 * and the cached tensors, free.  This one header is all a program needs (it includes only standard headers);
 * link with -llocus (pkg-config locus).
 *
 * Results are bit-identical to `locus generate` for the same inputs: the API drives the same run object
 * (experiments/run.h), patcher and interventions as the CLI, in the same order.
 *
 * Conventions, for every function below:
 *   - Errors: functions returning int return LOCUS_OK (0) or a nonzero status code (the locus_status values
 *     below) and leave a one-line, human-readable message for the calling thread in locus_last_error().
 *     Nothing here exits or aborts on bad user input (missing folders, bad layer names, bad sizes...).  The
 *     one exception that remains: running out of memory *inside* a denoiser/VAE forward pass prints one line
 *     and exits the process with status 2 (those forwards have no error path; locus_model_generate first
 *     checks that the activations the run needs can be allocated, so this is the rare case).
 *   - Ownership: a handle returned through an `out` pointer belongs to the caller and is released by its
 *     *_free / *_close function (NULL is a no-op for all of them).  Strings and arrays read from a handle
 *     (names, shapes, tensor data, the image) are owned by that handle and stay valid until it is freed.
 *     Input strings are copied; the caller may free them after the call returns.
 *   - Threads: the ISA and thread count are process-wide settings.  A model handle is used by one call at a
 *     time (generate mutates its scheduler state); results and options handles are independent of it.
 *   - ABI: handles are opaque; the two info structs are filled up to the size the caller passes (fields are
 *     only ever appended), so a program built against this header keeps working with later 0.x libraries.
 */
#ifndef LOCUS_PUBLIC_H
#define LOCUS_PUBLIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LOCUS_API __attribute__((visibility("default")))
#else
#define LOCUS_API
#endif

#define LOCUS_API_VERSION_MAJOR 0
#define LOCUS_API_VERSION_MINOR 1

/* Status codes (the library's own locus_status values; liblocus's sources define the same enum). */
#ifndef LOCUS_ERROR_H
typedef enum {
    LOCUS_OK = 0,
    LOCUS_E_IO,          /* open/read/write failed */
    LOCUS_E_FORMAT,      /* malformed file contents */
    LOCUS_E_DTYPE,       /* unsupported dtype */
    LOCUS_E_SHAPE,       /* shapes do not fit (config vs weights, prompt lengths) */
    LOCUS_E_NOTFOUND,    /* a named tensor / key / file is missing */
    LOCUS_E_ARG,         /* bad argument (layer name, size, option value, NULL handle) */
    LOCUS_E_NOMEM,       /* allocation failed */
    LOCUS_E_UNSUPPORTED  /* not supported by this model or CPU */
} locus_status;
#endif

typedef struct locus_model locus_model;     /* a loaded pipeline folder */
typedef struct locus_genopts locus_genopts; /* the settings of one generation */
typedef struct locus_result locus_result;   /* an image and/or named float tensors */

/* ---- library ---- */

/* The library version ("0.1.0").  Static string. */
LOCUS_API const char *locus_version(void);
/* The message of the last failed call on this thread ("" if none).  Valid until the next call that fails on
 * this thread; copy it to keep it. */
LOCUS_API const char *locus_last_error(void);
/* Choose the kernel table: "scalar", "avx2", "avx512", "neon", or NULL/"" for the best this CPU supports
 * (honouring the LOCUS_ISA environment variable, as the CLI).  Outputs are the same bits whichever is chosen;
 * only speed differs.  LOCUS_E_ARG for an unknown name, LOCUS_E_UNSUPPORTED when the CPU lacks it. */
LOCUS_API int locus_set_isa(const char *name);
/* The active kernel table's name (chooses one as locus_set_isa(NULL) would if none is active yet). */
LOCUS_API const char *locus_get_isa(void);
/* Worker threads for every later call (n >= 1; the default is LOCUS_THREADS, OMP_NUM_THREADS or the number
 * of cores).  Outputs do not depend on it.  LOCUS_E_ARG for n < 1. */
LOCUS_API int locus_set_num_threads(int n);
LOCUS_API int locus_num_threads(void);

/* ---- models ---- */

/* Open the pipeline folder `dir` (a diffusers StableDiffusion / SDXL / SD3 / LDM folder, as `locus generate
 * --model` takes).  On success *out is a new handle (free with locus_model_close); on failure *out is NULL
 * and the message names the folder or file and what is wrong. */
LOCUS_API int locus_model_open(const char *dir, locus_model **out);
LOCUS_API void locus_model_close(locus_model *m);

typedef struct {
    const char *family;          /* "sd" (SD1.x/2.x), "ldm", "sd3", "sdxl", "if" */
    const char *pipeline_class;  /* model_index.json _class_name ("" when the folder has none) */
    const char *denoiser_class;  /* "UNet2DConditionModel", "SD3Transformer2DModel" */
    const char *scheduler_class; /* the folder's scheduler ("DDIMScheduler", ...) */
    int width, height;           /* default image size in pixels */
    int latent_channels, vae_factor; /* latent = [latent_channels, height / vae_factor, width / vae_factor] */
    int size_multiple;           /* width and height must be multiples of this */
    int ctx_dim;                 /* text embedding width: encoded prompts are [1, T, ctx_dim] */
    int pooled_dim;              /* pooled text width (SDXL, SD3; 0 when the model takes none) */
    int text_tokens;             /* T for the default max_seq (SD3: 77 + T5 tokens) */
    int n_layers, n_text_layers; /* attention layers; those that read the text */
    uint64_t denoiser_params;    /* parameters of the denoiser */
    uint64_t text_params;        /* of them: the K/V projections of the text, summed over all layers */
    float default_guidance;      /* the diffusers pipeline's default guidance scale */
    int default_steps;           /* 50 */
    uint64_t model_hash;         /* FNV-1a over every component's config and safetensors header (the PNGs' model_hash) */
} locus_model_info;

/* Fill *info (at most info_size bytes: pass sizeof(locus_model_info)).  Strings are owned by the model. */
LOCUS_API int locus_model_get_info(const locus_model *m, locus_model_info *info, size_t info_size);

typedef struct {
    const char *name;     /* diffusers path: "up_blocks.1.attentions.0.transformer_blocks.0.attn2" */
    const char *kind;     /* "self", "cross" (K/V from the text) or "joint" (MM-DiT: text stream inside) */
    const char *site;     /* the name patching uses for a text layer (the layer for a UNet, the block for MM-DiT) */
    int index;            /* position among all attention layers, forward order */
    int heads;
    int text_index;       /* the paper's number: index among the text-reading layers, -1 for self-attention */
    uint64_t text_params; /* parameters acting on the text (K and V projections of the text, with biases) */
    double share_percent; /* text_params as a percentage of the denoiser's parameters */
} locus_layer_desc;

/* Attention layers in forward order (what `locus layers` prints): the count, or -1 on error. */
LOCUS_API int locus_model_layer_count(const locus_model *m);
/* Fill *out (at most out_size bytes) for layer i (0 <= i < count); LOCUS_E_ARG for i out of range. */
LOCUS_API int locus_model_layer(const locus_model *m, int i, locus_layer_desc *out, size_t out_size);

/* Apply LoRA adapters from a file (diffusers, PEFT or kohya keys, as `--lora FILE:SCALE`) to the model's
 * denoiser, scaled by `scale`, for the rest of this handle's life: later generations equal `locus generate
 * --lora FILE:SCALE` (several calls = several --lora options, in that order).  Adapters cannot be removed; open
 * the folder again for the plain model.  Errors name the file and a key that matches no layer. */
LOCUS_API int locus_model_add_lora(locus_model *m, const char *path, float scale);

/* Encode a prompt as the pipeline does for generation.  prompt NULL means "no prompt" (the empty prompt, or
 * zeros where the pipeline says so: SDXL's force_zeros_for_empty_prompt); max_seq: T5 tokens for SD3 (0: 256,
 * the CLI's default; ignored by others).  *out gets a result holding "cond" [1,T,ctx_dim] and, for models with
 * pooled text, "cond_pooled" [1,P] (the pooled text only, as `--prompt-embeds` files hold it). */
LOCUS_API int locus_model_encode(locus_model *m, const char *prompt, int max_seq, locus_result **out);

/* ---- generation options ---- */

/* New options with the CLI's defaults (no prompt yet, seed 0, 50 steps, the pipeline's guidance, the model's
 * size, its scheduler, max_seq 256, no hooks).  NULL when out of memory.  Free with locus_genopts_free. */
LOCUS_API locus_genopts *locus_genopts_new(void);
LOCUS_API void locus_genopts_free(locus_genopts *o);
/* Each setter copies its strings and returns LOCUS_E_ARG (with a message naming the option) for a value the
 * CLI would refuse; checks that need the model (size multiples, layer names, start step < steps) happen in
 * locus_model_generate. */
LOCUS_API int locus_genopts_set_prompt(locus_genopts *o, const char *prompt);            /* required (or embeddings) */
LOCUS_API int locus_genopts_set_negative_prompt(locus_genopts *o, const char *negative); /* NULL: none given */
LOCUS_API int locus_genopts_set_seed(locus_genopts *o, uint64_t seed);                   /* 0 .. 2^53 */
LOCUS_API int locus_genopts_set_steps(locus_genopts *o, int steps);                      /* 1 .. 1000 */
LOCUS_API int locus_genopts_set_guidance(locus_genopts *o, double guidance);             /* 0 .. 100; < 0: the pipeline's */
LOCUS_API int locus_genopts_set_size(locus_genopts *o, int width, int height);           /* 8 .. 8192 each, or 0, 0: the model's */
LOCUS_API int locus_genopts_set_sampler(locus_genopts *o, const char *sampler);          /* ddim|euler|pndm|flow, NULL: the folder's */
LOCUS_API int locus_genopts_set_max_sequence_length(locus_genopts *o, int max_seq);      /* SD3 T5 tokens, 1 .. 512 */
LOCUS_API int locus_genopts_set_clip_skip(locus_genopts *o, int clip_skip);              /* 0 .. 64 */
/* SDXL's size conditioning (`--original-size H,W --crops-coords-top-left Y,X --target-size H,W`): each pair
 * or NULL for diffusers' default (the output size; crop 0,0).  Values 0 .. 1000000.  A model without size
 * conditioning refuses them in locus_model_generate. */
LOCUS_API int locus_genopts_set_size_cond(locus_genopts *o, const int original_hw[2], const int crop_yx[2], const int target_hw[2]);
/* 8-bit pixels: 0 (default) rounds as diffusers' PIL output, 1 truncates as the paper's scripts. */
LOCUS_API int locus_genopts_set_quantize_trunc(locus_genopts *o, int trunc);
/* Cache every hook point matching a glob pattern (fnmatch; "*.attn2.probs", "mid_block") at every denoiser
 * evaluation, as `--cache-points`: the result gets "step<N>.<hook point>" tensors (the names and values
 * `--cache FILE` writes).  Repeatable (at most 32 patterns); a pattern may hold several, comma-separated.
 * Memory: every matching tensor of every step is kept until the result is freed. */
LOCUS_API int locus_genopts_add_cache(locus_genopts *o, const char *pattern);
/* The paper's text patching (`--patch-prompt B --patch-layers L --start-step N [--patch-halves both]`): the
 * text layers in `layers` (comma-separated layer paths, or prefixes at a '.' boundary such as "up_blocks.1",
 * as --patch-layers takes them) read prompt B's text from step start_step on (UNet: their K/V recomputed from
 * B's embedding; MM-DiT: B's text K/V replayed from a run of prompt B); both = 1 patches both CFG halves
 * (default: the conditional one).  prompt_b NULL clears patching. */
LOCUS_API int locus_genopts_set_patch(locus_genopts *o, const char *prompt_b, const char *layers, int start_step, int both);
/* Interventions (`--intervene SPEC [--intervene-steps S] [--heads N --intervene-heads H] [--intervene-half
 * X]`): spec "PATTERN=zero|scale:F|mean|replace:CACHE.safetensors", ';'-joined; steps "FROM:TO" or NULL (all);
 * nheads 0 or the heads of the hooked tensors with heads "H1,H2" (NULL: all); half "cond" (NULL), "uncond"
 * or "both".  spec NULL clears them.  Parsed (and replace files opened) by locus_model_generate. */
LOCUS_API int locus_genopts_set_intervene(locus_genopts *o, const char *spec, const char *steps, int nheads, const char *heads,
                                          const char *half);
/* Keep what `--dump` writes: every step's "step<N>.noise_pred_uncond", "..._text", "step<N>.noise_pred",
 * "step<N>.latent_out" [1,C,h,w], then "final_latent" [1,C,h,w] and "image" [1,3,H,W] (floats, about [-1,1]). */
LOCUS_API int locus_genopts_set_dump(locus_genopts *o, int dump);
/* Condition on given prompt embeddings instead of prompt strings (`--prompt-embeds`; e.g. from
 * locus_model_encode, edited): cond [1,T,dim] and uncond [1,T,dim] (the negative prompt's; required when
 * guidance > 1, ignored otherwise), and for models with pooled text cond_pooled / uncond_pooled [1,pooled_dim]
 * (the pooled text only, as locus_model_encode returns it; NULL and 0 otherwise).  The floats are copied; dim
 * and pooled_dim are checked against the model by locus_model_generate.  cond NULL clears them.  With
 * embeddings set no prompt is needed; patching still takes prompt B as a string. */
LOCUS_API int locus_genopts_set_prompt_embeds(locus_genopts *o, int T, int dim, const float *cond, const float *uncond, int pooled_dim,
                                              const float *cond_pooled, const float *uncond_pooled);
/* Initial noise from a safetensors file (tensor "noise" [1,C,h,w]) instead of the seed (`--noise`); NULL clears. */
LOCUS_API int locus_genopts_set_noise_file(locus_genopts *o, const char *path);
/* Optional progress callback, called after every denoiser evaluation (step 0-based, of nsteps) on the
 * calling thread (MM-DiT patching first runs prompt B: the callback sees those steps too).  It must not call
 * into the same model. */
LOCUS_API int locus_genopts_set_progress(locus_genopts *o, void (*cb)(void *ctx, int step, int nsteps), void *ctx);

/* ---- generation ---- */

/* One generation on m with options o (o is not changed and may be reused).  On success *out holds the image
 * (locus_result_image) and the cached / dumped tensors in the order they were produced; on failure *out is
 * NULL and the message says why: no prompt, a bad size, a layer that is not a text layer, a cache pattern or
 * intervention that matched no hook point (as the CLI refuses them), an unreadable file.  Settings that the
 * CLI applies to the loaded pipeline (sampler, clip skip) last for this call only. */
LOCUS_API int locus_model_generate(locus_model *m, const locus_genopts *o, locus_result **out);

/* ---- results ---- */

/* The 8-bit RGB image, rows top to bottom, [height][width][3] (owned by r).  LOCUS_E_NOTFOUND for a result
 * without an image (locus_model_encode). */
LOCUS_API int locus_result_image(const locus_result *r, const uint8_t **rgb, int *height, int *width);
/* Number of named tensors. */
LOCUS_API int locus_result_count(const locus_result *r);
/* Tensor i (0 <= i < count): its name, rank, shape (PyTorch order) and float32 data, contiguous, 64-byte
 * aligned, all owned by r.  Any output pointer may be NULL.  LOCUS_E_ARG for i out of range. */
LOCUS_API int locus_result_tensor(const locus_result *r, int i, const char **name, int *ndim, const int64_t **shape,
                                  const float **data);
/* Index of the tensor called name, or -1. */
LOCUS_API int locus_result_find(const locus_result *r, const char *name);
LOCUS_API void locus_result_free(locus_result *r);

#ifdef __cplusplus
}
#endif

#endif
