/* grads.h — gradient buffers for a model's trainable parameters, looked up by parameter pointer.
 *
 * Backward functions never own gradients: they ask `locus_grads_of(g, param)` for the buffer of a parameter
 * they read in the forward and skip that parameter's gradient when the answer is NULL (frozen, or g NULL).
 * Entries are added by name from a loader's parameter registry (every tensor a model loaded; see loader.h)
 * or for extra tensors the caller owns (LoRA factors).  Gradient buffers are fp32 in the parameter's plain
 * PyTorch layout ([out, in] for a Linear weight even when the weight itself is stored packed) and start at
 * zero; backward functions ACCUMULATE into them with fixed-order chains (ops_bwd.h), so a zeroed buffer plus
 * one backward is the gradient of one loss evaluation, and several backwards are gradient accumulation.
 */
#ifndef LOCUS_GRADS_H
#define LOCUS_GRADS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "loader.h"

typedef struct {
    char *name;          /* diffusers name of the parameter ("down_blocks.0.resnets.0.conv1.weight") */
    const float *param;  /* the parameter as the model holds it (lookup key) */
    float *grad;         /* [numel], plain layout */
    size_t numel;
    int ndim;
    int64_t shape[4];
} locus_grad_entry;

typedef struct {
    locus_grad_entry *e;
    size_t n, cap;
    size_t *hash; /* open addressing on the param pointer; slots hold index+1, 0 = empty */
    size_t hcap;
} locus_grads;

void locus_grads_init(locus_grads *g);
void locus_grads_free(locus_grads *g);

/* Track every parameter of loader L whose name matches `pattern` (NULL = all; otherwise comma-separated
 * glob patterns with '*' and '?' and {a,b} alternatives, matched against the full name); returns the count
 * added or -1 with locus_errmsg() set (out of memory). */
int locus_grads_track_loader(locus_grads *g, const locus_loader *L, const char *pattern);

/* Does `name` match the pattern list (the syntax of locus_grads_track_loader)? */
int locus_grads_name_matches(const char *pattern, const char *name);

/* Track one caller-owned tensor (copy of name kept). */
locus_status locus_grads_track(locus_grads *g, const char *name, const float *param, int ndim, const int64_t *shape);

/* The gradient buffer of `param`, or NULL when it is not tracked (g may be NULL). */
float *locus_grads_of(const locus_grads *g, const float *param);

/* Entry by name, or NULL. */
const locus_grad_entry *locus_grads_find(const locus_grads *g, const char *name);

/* Zero every gradient. */
void locus_grads_zero(locus_grads *g);

#endif
