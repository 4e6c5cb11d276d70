/* parity.h — comparing locus activations with diffusers goldens (act.<module path> tensors).
 * A hook looks up "act.<name>" in the golden file and records max|diff| / max|golden| per tensor. */
#ifndef LOCUS_PARITY_H
#define LOCUS_PARITY_H

#include "../core/safetensors.h"
#include "../models/nn.h"

typedef struct {
    const locus_st_file *golden;
    const char *prefix;   /* "act." */
    int matched, shape_bad;
    double worst;         /* worst relative error */
    char worst_name[256];
    int verbose;
} parity_ctx;

void parity_hook(void *ctx, const locus_hook_at *at, float *x, int ndim, const int64_t *shape);

/* relative max error of x against golden tensor `name`; -1 if missing/shape mismatch */
double parity_rel(const locus_st_file *g, const char *name, const float *x, int64_t n);

/* A hook that feeds two parity contexts (e.g. "act." and "output." probes of one golden file). */
typedef struct { parity_ctx *a, *b; } parity_pair;
void parity_pair_hook(void *ctx, const locus_hook_at *at, float *x, int ndim, const int64_t *shape);

/* Sampler step callback comparing {run}.stepN.{noise_pred_uncond,noise_pred_text,noise_pred,latent_out}. */
typedef struct { const locus_st_file *g; const char *run; double worst; char wname[128]; int n; } parity_steps;
void parity_step_cb(void *ctx, int step, int nsteps, const float *uncond, const float *cond, const float *guided,
                    const float *latent, size_t n);

/* load a golden tensor as fp32 (malloc'ed), NULL if missing */
float *golden_f32(const locus_st_file *g, const char *name, int64_t *n);

/* load a golden [B,T] token-id tensor (malloc'ed int64), NULL if missing or not 2-D */
int64_t *golden_ids(const locus_st_file *g, const char *name, int *B, int *T);

#endif
