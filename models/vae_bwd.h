/* vae_bwd.h — training forwards and hand-written backwards of AutoencoderKL's encoder and decoder
 * (models/vae.h).  Same contract as unet_bwd.h: the training forward gives the inference bits
 * (locus_vae_encode / locus_vae_decode without hooks) and a tape; checkpoint 1 keeps only each module's
 * input and re-runs it during the backward; gradients are the same bits either way, for every thread count
 * and ISA.
 */
#ifndef LOCUS_VAE_BWD_H
#define LOCUS_VAE_BWD_H

#include "grads.h"
#include "vae.h"

typedef struct locus_vae_tape locus_vae_tape;

/* image[B,in,H,W] -> mean, logvar [B,L,H/f,W/f] (logvar clamped to [-30, 20], as locus_vae_encode).
 * Errors: no encoder weights, H/W not multiples of f (LOCUS_E_SHAPE), out of memory. */
locus_status locus_vae_encode_train(const locus_vae *v, const float *image, int B, int H, int W, float *mean, float *logvar,
                                    int checkpoint, locus_vae_tape **tape);
/* dmean, dlogvar (d loss / d the clamped logvar; either may be NULL = zero) -> parameter gradients into g,
 * dimage[B,in,H,W] (or NULL).  The clamp passes gradient where -30 <= logvar <= 20 (torch.clamp).  Frees the tape. */
locus_status locus_vae_encode_backward(const locus_vae *v, locus_vae_tape *tape, const float *dmean, const float *dlogvar,
                                       float *dimage, const locus_grads *g);

/* z[B,L,h,w] -> image[B,out,h*f,w*f] (as locus_vae_decode). */
locus_status locus_vae_decode_train(const locus_vae *v, const float *z, int B, int h, int w, float *image, int checkpoint,
                                    locus_vae_tape **tape);
/* dimage -> parameter gradients into g, dz[B,L,h,w] (or NULL).  Frees the tape. */
locus_status locus_vae_decode_backward(const locus_vae *v, locus_vae_tape *tape, const float *dimage, float *dz, const locus_grads *g);

void locus_vae_tape_free(locus_vae_tape *tape);

#endif
