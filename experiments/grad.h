/* grad.h — `locus grad`: one training-loss evaluation and its gradients, for checking locus' backward
 * against torch autograd and as the core of training.  The evaluation functions are the library form
 * (tests call them); locus_cmd_grad is the command. */
#ifndef LOCUS_GRAD_H
#define LOCUS_GRAD_H

#include "../core/safetensors.h"
#include "../models/grads.h"
#include "../models/mmdit.h"
#include "../models/scheduler.h"
#include "../models/unet.h"
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

/* UNet denoising loss on a batch file holding x0 [B,C,H,W], noise [B,C,H,W], timesteps [B] (integer or
 * float) and encoder_hidden_states [B,S,D] (names optionally prefixed "batch0."): noisy = sqrt(acp_t) x0 +
 * sqrt(1 - acp_t) noise with the scheduler's alphas_cumprod; target = noise (epsilon) or sqrt(acp_t) noise -
 * sqrt(1 - acp_t) x0 (v_prediction); loss = mean((pred - target)^2).  Accumulates parameter gradients into
 * g and fills out with loss [1], pred, noisy, target, grad_input.sample and
 * grad_input.encoder_hidden_states.  Errors name the missing or mis-shaped tensor. */
locus_status locus_grad_unet(const locus_unet *u, const locus_scheduler *s, const locus_st_file *batch, int checkpoint,
                             const locus_grads *g, locus_grad_out *out);

/* VAE loss on a batch holding x [B,in,H,W] (images in [-1,1]) and eps [B,L,H/f,W/f]:
 *   mean, logvar = encode(x); z = mean + exp(0.5 logvar) eps; rec = decode(z);
 *   loss = mean((rec - x)^2) + 1e-6 * mean over the batch of KL, KL = 0.5 sum(mean^2 + exp(logvar) - 1 - logvar).
 * out: loss [1], pred (= rec), mean, logvar, z, kl [B], grad_input.sample (d loss / d x). */
locus_status locus_grad_vae(const locus_vae *v, const locus_st_file *batch, int checkpoint, const locus_grads *g,
                            locus_grad_out *out);

/* SD3/SD3.5 transformer flow-matching loss on a batch holding x0, noise [B,C,H,W], sigmas [B],
 * encoder_hidden_states [B,S,joint_dim] and pooled_projections [B,pooled_dim] (locus_mmdit_flow_loss_grad,
 * models/mmdit_bwd.h).  out: loss, pred, noisy, target, grad_input.sample, grad_input.encoder_hidden_states,
 * grad_input.pooled_projections. */
locus_status locus_grad_mmdit(const locus_mmdit *m, const locus_st_file *batch, int checkpoint, const locus_grads *g,
                              locus_grad_out *out);

int locus_cmd_grad(int argc, char **argv);

#endif
