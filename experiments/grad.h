/* grad.h — `locus grad`: one training-loss evaluation and its gradients, for checking locus' backward
 * against torch autograd and as the core of training.  The evaluation functions are the library form
 * (tests call them); locus_cmd_grad is the command. */
#ifndef LOCUS_GRAD_H
#define LOCUS_GRAD_H

#include "../core/safetensors.h"
#include "../models/grads.h"
#include "../models/denoiser.h"
#include "../models/objective.h"
#include "../models/scheduler.h"
#include "../models/vae.h"

/* A named fp32 output tensor of an evaluation (loss, pred, grad_input.*, ...). */
typedef struct {
    char name[64];
    float *data; /* locus_alloc'd, owned */
    int ndim;
    int64_t shape[4];
} locus_grad_tensor;

typedef struct {
    locus_grad_tensor *t;
    int n, cap;
    float loss;
} locus_grad_out;

void locus_grad_out_free(locus_grad_out *o);
const locus_grad_tensor *locus_grad_out_find(const locus_grad_out *o, const char *name);

/* One training-loss evaluation of any trainable denoiser with objective ob (models/objective.h) on a batch file
 * (x0, noise, timesteps or sigmas, encoder_hidden_states, pooled_projections when the denoiser takes pooled
 * text; a "batch0." prefix is accepted): out gets loss, pred, noisy, target, grad_input.*; parameter
 * gradients accumulate into g. */
locus_status locus_grad_denoiser(const locus_denoiser *d, const locus_objective *ob, const locus_st_file *batch, int checkpoint,
                                 const locus_grads *g, locus_grad_out *out);

/* AutoencoderKL reconstruction + 1e-6 KL on a batch holding x [B,3,H,W] and eps [B,L,h,w]. */
locus_status locus_grad_vae(const locus_vae *v, const locus_st_file *batch, int checkpoint, const locus_grads *g,
                            locus_grad_out *out);

int locus_cmd_grad(int argc, char **argv);

#endif
