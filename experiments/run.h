/* run.h — one text-to-image run as a library call, and the paper's patched runs built on it.
 *
 * `locus generate` is a single run with every option; experiments (localize) need many runs sharing one
 * loaded pipeline: prompt -> embeddings once, then seeded sampling + decode to 8-bit pixels, optionally with
 * prompt B's text patched into chosen layers (UNet cross-attention injection, or MM-DiT text K/V patching
 * where prompt B's run records every block's K/V once and each patched run uses any subset of blocks). */
#ifndef LOCUS_RUN_H
#define LOCUS_RUN_H

#include <stdint.h>

#include "../models/pipeline.h"
#include "patch.h"

typedef struct {
    float *cond, *uncond;               /* [1,T,D] each; uncond NULL without CFG */
    float *cond_pooled, *uncond_pooled; /* SD3: [1,pooled_dim] */
    int T;
} locus_embeds;

/* Encode a prompt (and the negative prompt when cfg) as the pipeline does; max_seq = T5 tokens (SD3). */
locus_status locus_embeds_encode(const locus_pipeline *p, const char *prompt, const char *negative, int cfg, int max_seq,
                                 locus_embeds *e);
void locus_embeds_free(locus_embeds *e);

typedef struct {
    int steps;
    float guidance;
    int W, H;       /* 0: the model's default size */
    uint64_t seed;  /* torch.randn-compatible initial noise */
    void (*on_step)(void *ctx, int step, int nsteps); /* optional: after every denoiser evaluation */
    void *step_ctx;
} locus_run_opts;

/* Fill defaults (W/H) and check the size against the model; a one-line error for a bad size. */
locus_status locus_run_prepare(const locus_pipeline *p, locus_run_opts *o);

/* Sample from the seeded noise with the given hooks (may be NULL) and decode into pix[H*W*3] (uint8 RGB). */
locus_status locus_run_image(locus_pipeline *p, const locus_run_opts *o, const locus_embeds *e, const locus_hooks *hooks,
                             uint8_t *pix);

/* Patched runs of prompt A with prompt B's text in chosen layers. */
typedef struct {
    locus_pipeline *p;
    const locus_run_opts *o;
    const locus_embeds *a, *b;
    int sd3, both, start_step;
    locus_kvpatch kv;  /* SD3: every block recorded from B's run */
    float *ctx;        /* UNet: [uncond_A | cond_B] context for injected layers */
    locus_injection *inj;
} locus_patcher;

/* Prepare patching A with B.  For SD3 this runs prompt B once, recording the text K/V of the joint blocks in
 * `record` (comma-separated transformer_blocks.N; NULL = every block; memory: 2 x steps x [B,S,D] floats per
 * block), and writes B's own image into pix_b when non-NULL; for a UNet, pix_b (when non-NULL) gets B's image
 * from a plain run.  both: patch both CFG halves (default: conditional only). */
locus_status locus_patcher_init(locus_patcher *pt, locus_pipeline *p, const locus_run_opts *o, const locus_embeds *a,
                                const locus_embeds *b, int both, int start_step, const char *record, uint8_t *pix_b);
/* One patched run: layers = comma-separated layer paths (UNet cross-attention paths or prefixes; SD3
 * transformer_blocks.N), all patched together. */
locus_status locus_patcher_run(locus_patcher *pt, const char *layers, uint8_t *pix);
void locus_patcher_free(locus_patcher *pt);

#endif
