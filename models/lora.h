/* lora.h — LoRA adapters on a loaded model's Linear layers: attachment by layer patterns x targets, PEFT's
 * gaussian initialisation, the diffusers / PEFT / kohya file formats, and merging into the base weights.
 *
 * An adapter on the Linear at module path M (diffusers naming, "down_blocks.0.attentions.0.transformer_blocks.0
 * .attn2.to_q") is an nn_lora (nn.h) chained on that nn_linear: y += scale * (x down^T) up^T with down [r, in]
 * (PEFT lora_A, diffusers lora.down) and up [out, r] (lora_B, lora.up), scale = alpha / r * weight.  A
 * locus_lora owns one set of adapters (one file, or one training run) and the memory of its factors; the model
 * reads them through the nn_linear's `lora` list, training updates them in place.  The mapping of file keys to
 * module paths is documented in docs/LORA.md.
 */
#ifndef LOCUS_LORA_H
#define LOCUS_LORA_H

#include <stdint.h>

#include "../core/error.h"
#include "loader.h"
#include "nn.h"

typedef struct {
    char *module;   /* diffusers path of the Linear ("...attn2.to_q"); owned */
    nn_linear *lin; /* the layer it is attached to (NULL once merged or detached) */
    nn_lora ad;     /* ad.down [r, in], ad.up [out, r], ad.r, ad.scale = alpha / r * weight */
    float alpha;    /* per-module alpha (kohya files may differ per module) */
    int in, out;
} locus_lora_entry;

typedef struct {
    locus_lora_entry *e; /* in attachment order (the model's Linear registration order) */
    int n;
    char prefix[16];     /* key prefix of diffusers files: "unet" or "transformer" */
    int rank;            /* common rank (0 when files mix ranks) */
    float alpha;         /* common alpha (metadata of saved files) */
    float weight;        /* user weight (1 for training) */
    int attached;        /* adapters are linked into their nn_linear lists */
} locus_lora;

/* Split a --lora-layers / --lora-targets list into patterns: commas at brace depth 0 separate items, and each
 * item is brace-expanded ("a.{1,2}.b" -> "a.1.b", "a.2.b"; groups may nest and repeat).  On success *out is a
 * malloc'd array of *n malloc'd strings (free with locus_lora_patterns_free).  Errors: unbalanced braces,
 * empty items, more than 4096 expansions. */
locus_status locus_lora_patterns(const char *spec, char ***out, int *n);
void locus_lora_patterns_free(char **p, int n);

/* The diffusers file prefix for a loaded component: "unet" for UNet2DConditionModel, "transformer" for
 * SD3Transformer2DModel (from the config's _class_name; any other class is LOCUS_E_UNSUPPORTED). */
locus_status locus_lora_prefix_of(locus_loader *L, char prefix[16]);

/* New adapters on loader L's Linear layers: every layer matching a pattern of `layers` (glob * and ? over the
 * whole path, after brace expansion) gets one adapter per target (module path = layer + "." + target).  A
 * layer is any prefix P of a registered Linear path with P + "." + target registered for some target.
 * Errors (one message naming the culprit): a pattern matching no layer, a target missing from a glob-free
 * layer or from every layer a glob matched, rank <= 0, alpha <= 0.  Initialisation as PEFT's
 * init_lora_weights="gaussian": down = torch.randn * (1/r) from one torch generator seeded with `seed`, drawn
 * module by module in attachment order; up = 0.  The adapters are attached (weight 1). */
locus_status locus_lora_create(locus_lora *s, locus_loader *L, const char *layers, const char *targets, int rank,
                               float alpha, uint64_t seed);

/* Read a LoRA file (diffusers, PEFT or kohya keys; see docs/LORA.md) for loader L and attach it with user
 * weight `weight` (scale = alpha / r * weight).  Alpha: a kohya `.alpha` tensor, else the file's
 * __metadata__ "alpha" (diffusers files written by locus), else "lora_alpha" of an adapter_config.json in the
 * same folder (PEFT's save_pretrained), else r (scale 1).
 * Errors name the key: unknown key or module, a down without its up, shape mismatch with the layer. */
locus_status locus_lora_read(locus_lora *s, locus_loader *L, const char *path, float weight);

/* Copy the factors of `src` into `dst` (same modules and shapes, any order in the file): --lora-init for a
 * training run whose adapters were created from patterns.  Errors name the first module that differs. */
locus_status locus_lora_assign(locus_lora *dst, const locus_lora *src);

/* Write the adapters in diffusers' own format: UNet "unet.<module>.lora.down.weight" / ".lora.up.weight",
 * SD3 "transformer.<module>.lora_A.weight" / ".lora_B.weight", fp32, with "rank" and "alpha" in __metadata__
 * (plus "format": "pt").  Atomic (temp file + rename). */
locus_status locus_lora_save(const locus_lora *s, const char *path);

/* Add the factors to an open writer under the keys locus_lora_save uses (checkpoints, dumps: key_prefix is
 * prepended, e.g. "lora_step3.").  locus_lora_key gives one such key (down = 1: the down / lora_A factor). */
locus_status locus_lora_write(const locus_lora *s, locus_st_writer *w, const char *key_prefix);
void locus_lora_key(const locus_lora *s, int i, int down, const char *key_prefix, char *key, size_t n);

/* Entry by module path, or NULL. */
locus_lora_entry *locus_lora_find(const locus_lora *s, const char *module);

/* Unlink from the layers (idempotent) and free everything. */
void locus_lora_free(locus_lora *s);

/* Fold the adapters into the base weights: W += scale * (up . down) (packed weights are unpacked, updated
 * and repacked for the table they were packed for) and detach them.  The product is one FMA chain over r
 * per element, then scaled, then added. */
void locus_lora_merge(locus_lora *s);

/* `--lora FILE[:SCALE]` for generation: read and attach to L with weight SCALE (default 1).  The adapters'
 * memory then belongs to L (freed by locus_loader_close); several calls chain adapters on the same layers. */
locus_status locus_lora_load(locus_loader *L, const char *path, float weight);

/* Split "FILE[:SCALE]" (the last ':' followed by a number); path gets the file part. */
locus_status locus_lora_parse_spec(const char *spec, char *path, size_t pathsz, float *weight);

#endif
