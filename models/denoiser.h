/* denoiser.h — one interface for every denoiser family (UNet incl. SDXL, MM-DiT, DeepFloyd IF's UNet).
 *
 * Everything above models/ (the sampler, runs, patching, localization, training) talks to a denoiser only
 * through this struct: its geometry, one forward, the list of its attention layers (which of them read the
 * text, with their parameter counts) and — through the hooks of nn.h — one text-K/V override point that
 * serves UNet cross-attention injection, MM-DiT text-K/V patching and IF's added-KV attention alike.
 *
 * Adding a family: implement a locus_denoiser_ops in models/ (forward, layers, close; train_forward and
 * backward when it can train), and add one line to the registry table in denoiser.c mapping the folder's
 * config `_class_name` to it.  Nothing in experiments/ changes.
 *
 * Saved activations for training (the backward story): `train_forward` runs the same kernels in the same
 * order as `forward` (so the same output bits) and returns an opaque tape — per block, either the
 * activations its backward reads (named structs in <family>_bwd.c, llm.c style) or, with checkpointing, only
 * the block's input, the block being re-run inside `backward`.  `backward` consumes the tape, accumulates
 * parameter gradients into a locus_grads table (models/grads.h) and returns input gradients.
 */
#ifndef LOCUS_DENOISER_H
#define LOCUS_DENOISER_H

#include <stddef.h>

#include "grads.h"
#include "nn.h"

enum { LOCUS_LAYER_SELF, LOCUS_LAYER_CROSS, LOCUS_LAYER_JOINT };

/* One attention layer of a denoiser, in forward order. */
typedef struct {
    char name[128];      /* diffusers path: "...transformer_blocks.0.attn2", "transformer_blocks.3.attn" */
    int kind;            /* LOCUS_LAYER_SELF, _CROSS (K/V from the text), _JOINT (text stream K/V inside) */
    int heads;
    size_t text_params;  /* parameters that act on the text: K and V projections of the text (+ biases) */
    int text_index;      /* index among the text-reading layers (locus_text_kv.index), -1 for self-attention */
    char site[128];      /* the name experiments use for a text layer: the layer path (UNet), the block (MM-DiT) */
} locus_layer_info;

typedef struct locus_denoiser locus_denoiser;

typedef struct {
    const char *class_name; /* the diffusers class ("UNet2DConditionModel") */
    /* x[B,in,h,w], t[B], ctx[B,S,ctx_dim], pooled[B,pooled_dim] (NULL when pooled_dim is 0) -> out[B,out,h,w] */
    void (*forward)(const locus_denoiser *d, const float *x, int B, int h, int w, const float *t, const float *ctx, int S,
                    const float *pooled, float *out, const locus_hooks *hooks);
    /* every attention layer in forward order; returns the count (at most max written) */
    int (*layers)(const locus_denoiser *d, locus_layer_info *out, int max);
    void (*close)(locus_denoiser *d);
    /* training (NULL while a family cannot train): see the file comment */
    locus_status (*train_forward)(const locus_denoiser *d, const float *x, int B, int h, int w, const float *t, const float *ctx,
                                  int S, const float *pooled, float *out, int checkpoint, void **tape);
    /* consumes (frees) the tape; dx, dctx, dpooled may be NULL */
    locus_status (*backward)(const locus_denoiser *d, void *tape, const float *dout, float *dx, float *dctx, float *dpooled,
                             const locus_grads *g);
    void (*tape_free)(void *tape); /* drop a tape without a backward */
} locus_denoiser_ops;

struct locus_denoiser {
    const locus_denoiser_ops *ops;
    void *model;             /* the family's struct (locus_unet*, locus_mmdit*), owned */
    locus_loader *loader;    /* its weights: parameter and module registry */
    /* geometry */
    int in_channels, out_channels;
    int sample_size;         /* default latent height (config sample_size, or its first entry) */
    int sample_width;        /* default latent width (= sample_size unless the config gives [height, width]) */
    int size_multiple;       /* latent height/width must be multiples of this */
    int max_latent;          /* > 0: latent height/width at most this (MM-DiT: pos_embed_max_size x patch) */
    int patch;               /* > 0: image tokens = (h/patch)(w/patch) (flow-matching dynamic shift); 0: not a token model */
    int ctx_dim, pooled_dim; /* text context width; pooled conditioning width (0: none) */
    int pooled_extra;        /* trailing entries of `pooled` that are not text but size conditioning the pipeline
                              * fills from the run (locus_pipeline_size_cond; SDXL: 6 time ids); 0 for most */
    int ntext_layers;        /* layers with text_index >= 0 */
    int text_kv_projectable; /* 1: every text layer's K/V are a function of the prompt embedding (locus_text_kv.project) */
    int flow_default;        /* 1: trained by flow matching unless a scheduler says otherwise (objective.h) */
    const char *const *buffers; /* NULL-terminated names of loaded tensors that are buffers, not parameters */
    size_t params;
};

/* Open the denoiser in component folder `dir` (config.json `_class_name` picks the family from the registry,
 * `default_class` when the config has none; an unknown class is an error naming it and the supported ones). */
locus_status locus_denoiser_open(locus_denoiser *d, const char *dir, const char *default_class);
void locus_denoiser_close(locus_denoiser *d);

static inline void locus_denoiser_forward(const locus_denoiser *d, const float *x, int B, int h, int w, const float *t,
                                          const float *ctx, int S, const float *pooled, float *out, const locus_hooks *hooks) {
    d->ops->forward(d, x, B, h, w, t, ctx, S, pooled, out, hooks);
}

/* The attention layers (malloc'd array in *out, count returned; -1 with locus_errmsg on allocation failure). */
int locus_denoiser_layers(const locus_denoiser *d, locus_layer_info **out);

/* Resolve a comma-separated list of text layers — full paths or prefixes at a '.' boundary (a block: every
 * text layer inside it; "transformer_blocks.3" matches "transformer_blocks.3.attn") — into sel[ntext_layers]
 * flags.  An entry matching no text layer is an error naming it and giving an example.  `what` names the
 * option in messages ("--patch-layers"). */
locus_status locus_denoiser_select_text_layers(const locus_denoiser *d, const char *spec, const char *what, unsigned char *sel);

/* Track the denoiser's trainable parameters in g: every loaded tensor matching `pattern` (grads.h syntax;
 * NULL = all) except its buffers.  Returns the count added (0: nothing matched) or -1 on allocation failure. */
int locus_denoiser_track_params(const locus_denoiser *d, locus_grads *g, const char *pattern);

/* Family implementations (registry entries). */
extern const locus_denoiser_ops locus_unet_denoiser_ops;
extern const locus_denoiser_ops locus_mmdit_denoiser_ops;
extern const locus_denoiser_ops locus_if_unet_denoiser_ops;

#endif
