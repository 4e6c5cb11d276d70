/* patch.h — cross-attention injection, the paper's patching method for UNet models.
 *
 * On the chosen cross-attention layers, K and V are computed from prompt B's text embedding while the
 * queries and every other layer keep prompt A (Staniszewski et al., 2025).  In a CFG batch [uncond, cond]
 * only the conditional half gets B by default; `both` patches both halves (uncond from B's negative prompt).
 * Layers are diffusers paths: an attn2 path, or any prefix of one at a '.' boundary (a block: all its attn2).
 */
#ifndef LOCUS_PATCH_H
#define LOCUS_PATCH_H

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

#endif
