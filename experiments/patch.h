/* patch.h — the paper's text patching and the interventions on hook points, as hooks (nn.h) for any denoiser.
 *
 * Text patching (Staniszewski et al., 2025): in chosen text-reading attention layers, the keys and values of
 * the text come from prompt B while the queries and every other layer keep prompt A.  One mechanism serves
 * every family through the denoiser's text-K/V override point (locus_text_kv):
 *   - projection (UNet cross-attention injection): the layer's K/V are recomputed from B's prompt embedding;
 *   - replay (MM-DiT joint attention, whose text K/V depend on the block's text stream): a full run with
 *     prompt B records the chosen layers' text K/V at every step, and A's run uses those of the same step.
 * In a CFG batch [uncond, cond] only the conditional half gets B by default; `both` patches both halves
 * (replay: B's run's unconditional K/V too — what the authors' SD3 code literally does; projection: the
 * unconditional text is the same negative prompt for A and B, so nothing changes).  Patching starts at
 * `start_step`.  Layer sets are resolved once into flags over the denoiser's text layers (reentrant).
 */
#ifndef LOCUS_PATCH_H
#define LOCUS_PATCH_H

#include "../core/safetensors.h"
#include "../models/denoiser.h"

enum { LOCUS_TP_OFF, LOCUS_TP_RECORD, LOCUS_TP_PATCH };

typedef struct {
    int nlayers;              /* the denoiser's text layers */
    int mode;                 /* LOCUS_TP_OFF / RECORD (store K/V of `record` layers) / PATCH (`active` layers) */
    int both, start_step;
    unsigned char *record;    /* [nlayers] layers recorded in RECORD mode */
    unsigned char *active;    /* [nlayers] layers patched in PATCH mode */
    const float *ctx_b;       /* projection: prompt B's embedding [S, ctx_dim], or NULL to replay recordings */
    float **k, **v;           /* replay: [layer * max_steps + step] -> [B,S,D] as recorded */
    int max_steps;
    size_t n;                 /* floats per recorded tensor */
    float *kbuf, *vbuf;       /* projection scratch [S, D] */
    size_t nbuf;
    int hits;                 /* patched layer calls in the last run */
} locus_textpatch;

/* A text patcher for denoiser d (all flags clear, mode OFF).  max_steps bounds the recorded steps. */
locus_status locus_textpatch_init(locus_textpatch *tp, const locus_denoiser *d, int max_steps);
void locus_textpatch_free(locus_textpatch *tp);
/* The hook to add to a run (text_kv callback, ctx = tp). */
locus_hook_entry locus_textpatch_hook(locus_textpatch *tp);

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
    int hits;
    int missing;             /* replace: hook points matched but without a cached tensor of their shape */
} locus_interventions;

/* Parses the spec, opening replace sources (a missing or malformed file is an error); release with
 * locus_interventions_free.  The caller sets step_from/step_to, heads and half (1 = conditional, the default
 * of the CLI). */
locus_status locus_interventions_parse(locus_interventions *v, const char *spec);
void locus_interventions_free(locus_interventions *v);
/* The CLI's refinements: steps "FROM:TO" (inclusive, TO -1 = to the end; NULL = all), heads per tensor and a
 * comma-separated head list (NULL = all), half "cond" | "uncond" | "both" (NULL = cond).  Errors name the
 * option. */
locus_status locus_interventions_configure(locus_interventions *v, const char *steps, int nheads, const char *heads, const char *half);
/* The hook to add to a run (ctx = v). */
locus_hook_entry locus_interventions_hook(locus_interventions *v);

#endif
