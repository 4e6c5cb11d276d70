/* patch.h — cross-attention injection, the paper's patching method for UNet models.
 *
 * On the chosen cross-attention layers, K and V are computed from prompt B's text embedding while the
 * queries and every other layer keep prompt A (Staniszewski et al., 2025).  In a CFG batch [uncond, cond]
 * only the conditional half gets B by default; `both` patches both halves (uncond from B's negative prompt).
 * Layers are diffusers paths: an attn2 path, or any prefix of one at a '.' boundary (a block: all its attn2).
 */
#ifndef LOCUS_PATCH_H
#define LOCUS_PATCH_H

#include "../core/safetensors.h"
#include "../models/mmdit.h"
#include "../models/unet.h"

#define LOCUS_MAX_PATCH_LAYERS 256

typedef struct {
    char layers[LOCUS_MAX_PATCH_LAYERS][128];
    int nlayers;
    int start_step;
    const float *ctx; /* [B,S,D] context for the patched layers */
} locus_injection;

/* Resolve a comma-separated layer list against the UNet; an entry matching no cross-attention layer is an
 * error naming it. */
locus_status locus_injection_resolve(locus_injection *inj, const locus_unet *u, const char *spec);

/* locus_hooks.cross_ctx callback (arg = locus_injection*). */
const float *locus_injection_ctx(void *arg, const char *name, int step);

/* The paper's K/V patching for MM-DiT joint attention: a full CFG run with prompt B records, at every step,
 * the text-stream K and V of the chosen joint blocks (add_k_proj / add_v_proj outputs, after qk-norm when
 * the block has it); the run with prompt A then uses B's K and V of the same step in those blocks only —
 * conditional half by default, both halves with `both` (what the authors' code literally does). */
#define LOCUS_MAX_KV_BLOCKS 64
#define LOCUS_MAX_KV_STEPS 1001

typedef struct {
    int nblocks;
    int blocks[LOCUS_MAX_KV_BLOCKS];
    char kname[LOCUS_MAX_KV_BLOCKS][96], vname[LOCUS_MAX_KV_BLOCKS][96];
    float **k, **v;    /* [block * LOCUS_MAX_KV_STEPS + step] -> [B,S,D] */
    int kcalls[LOCUS_MAX_KV_BLOCKS];
    size_t n;          /* floats per cached tensor */
    int mode;          /* 0 record, 1 patch the conditional half, 2 patch both halves */
    unsigned long long active; /* patch modes: bit j set = patch blocks[j]; 0 = all recorded blocks */
    int start_step;
} locus_kvpatch;

/* Resolve "transformer_blocks.N[.attn][,...]"; errors name an entry that is not a joint block. */
locus_status locus_kvpatch_init(locus_kvpatch *kv, const locus_mmdit *m, const char *spec);
void locus_kvpatch_free(locus_kvpatch *kv);
/* Start a run: mode 0 records, 1/2 patch.  Resets the step counters. */
void locus_kvpatch_begin(locus_kvpatch *kv, int mode);
/* locus_hooks.fn callback (ctx = locus_kvpatch*). */
void locus_kvpatch_hook(void *ctx, const char *name, float *x, int ndim, const int64_t *shape);

/* Interventions on hook points, applied in place during one run: zero, scale by a factor, replace each
 * token's vector by the mean over tokens, or replace the values by those a cache file holds for the same hook
 * point and step ("step<N>.<name>", as --cache writes them: activation patching from another run at any hook
 * point) — on hook points matching a glob pattern, within a step range, on chosen heads (channel slices of
 * width C/heads) and on a CFG half (conditional by default).  Spec: "PATTERN=zero", "PATTERN=scale:F",
 * "PATTERN=mean", "PATTERN=replace:CACHE.safetensors", joined by ';'. */
#define LOCUS_MAX_INTERVENTIONS 16

typedef struct {
    char pattern[256];
    int op;          /* 0 zero, 1 scale, 2 mean, 3 replace from a cache file */
    float factor;
    locus_st_file *src; /* replace: the opened cache file */
} locus_intervention;

typedef struct {
    locus_intervention iv[LOCUS_MAX_INTERVENTIONS];
    int n;
    int step_from, step_to;  /* inclusive range; to < 0: to the end */
    int heads, head_mask_n;  /* heads per tensor (0 = whole vector) and selected heads (bit set) */
    unsigned long long head_mask;
    int half;                /* 0 both, 1 conditional (batch row 1), 2 unconditional (row 0) */
    int step, hits;
    int missing;             /* replace: hook points matched but without a cached tensor of their shape */
    const locus_hooks *next; /* chained hook (called first) */
} locus_interventions;

/* Parses the spec, opening replace sources (a missing or malformed file is an error); release with
 * locus_interventions_free.  The caller sets step_from/step_to, heads and half (1 = conditional, the default
 * of the CLI). */
locus_status locus_interventions_parse(locus_interventions *v, const char *spec);
void locus_interventions_free(locus_interventions *v);
void locus_interventions_hook(void *ctx, const char *name, float *x, int ndim, const int64_t *shape);

#endif
