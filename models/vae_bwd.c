/* vae_bwd.c — training forwards (with tapes) and backwards of the AutoencoderKL encoder and decoder (see
 * vae_bwd.h).  The forwards repeat models/vae.c's locus_vae_encode / locus_vae_decode step for step with
 * every module application (resnet, mid-block attention, downsampler, upsampler) an nn_unit (nn_bwd.h); the
 * convolutions at the ends and the output norms are always saved (they are small next to the units). */
#include "vae_bwd.h"

#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"
#include "../simd/ops_bwd.h"
#include "nn_bwd.h"

struct locus_vae_tape {
    int enc, checkpoint;
    int B, H, W;     /* input spatial size (image for the encoder, latent for the decoder) */
    int Hf, Wf, Cf;  /* size of the head's input */
    float *in;       /* encoder: [B,in,H,W] image; decoder: [B,L,h,w] z (copies) */
    float *pq;       /* decoder: [B,L,h,w] post_quant_conv(z) = conv_in input (NULL without post_quant_conv) */
    nn_unit *units;
    int n, cap;
    float *hfin;     /* [B,Cf,Hf,Wf] last unit output = conv_norm_out input */
    float *aout;     /* [B,Cf,Hf,Wf] silu(conv_norm_out(hfin)) = conv_out input */
    float *mom;      /* encoder: [B,2L,h,w] conv_out output = quant_conv input */
    float *mq;       /* encoder: [B,2L,h,w] final moments (mean | unclamped logvar) */
};

static float *talloc(size_t n) { return locus_alloc((n ? n : 1) * sizeof(float)); }

void locus_vae_tape_free(locus_vae_tape *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++) nn_unit_free(&t->units[i]);
    free(t->units);
    locus_free(t->in); locus_free(t->pq); locus_free(t->hfin); locus_free(t->aout);
    if (t->mq != t->mom) locus_free(t->mq);
    locus_free(t->mom);
    free(t);
}

/* one unit on input x (owned by the tape from now on); returns its output and updates C/H/W */
static float *step(locus_vae_tape *t, int kind, const void *m, const nn_gnorm *gn, float *x, int *C, int *H, int *W, int pad_t,
                   int pad_b) {
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 32;
        t->units = realloc(t->units, (size_t)t->cap * sizeof *t->units);
    }
    nn_unit *u = &t->units[t->n++];
    memset(u, 0, sizeof *u);
    u->kind = kind; u->m = m; u->gn = gn; u->x = x; u->B = t->B; u->cin = *C; u->H = *H; u->W = *W;
    u->pad_t = u->pad_l = pad_t; u->pad_b = pad_b;
    float *y = talloc(nn_unit_shape(u)); /* [B,cout,Ho,Wo] */
    nn_unit_fwd(u, NULL, NULL, 0, y, t->checkpoint);
    *C = u->cout; *H = u->Ho; *W = u->Wo;
    return y;
}

static float *mid_train(locus_vae_tape *t, const vae_mid *m, float *h, int *C, int *H, int *W) {
    h = step(t, NN_UNIT_RESNET, &m->res[0], NULL, h, C, H, W, 0, 0);
    if (m->has_attn) h = step(t, NN_UNIT_ATTNBLOCK, &m->attn, &m->attn_norm, h, C, H, W, 0, 0);
    return step(t, NN_UNIT_RESNET, &m->res[1], NULL, h, C, H, W, 0, 0);
}

/* dh [B,C,H,W] of the last unit's output -> of the first unit's input (units freed) */
static float *units_bwd(locus_vae_tape *t, float *dh, const locus_grads *g) {
    for (int k = t->n - 1; k >= 0; k--) {
        nn_unit *u = &t->units[k];
        float *dx = talloc((size_t)u->B * u->cin * u->H * u->W); /* [B,cin,H,W] */
        nn_unit_bwd(u, NULL, NULL, 0, dh, dx, NULL, NULL, g);
        locus_free(dh);
        dh = dx;
        nn_unit_free(u);
    }
    t->n = 0;
    return dh;
}

locus_status locus_vae_encode_train(const locus_vae *v, const float *image, int B, int H, int W, float *mean, float *logvar,
                                    int checkpoint, locus_vae_tape **tape) {
    *tape = NULL;
    const vae_coder *e = &v->enc;
    int nb = v->nblocks, f = 1 << (nb - 1), Lc = v->latent_channels;
    if (!e->present) return locus_fail(LOCUS_E_NOTFOUND, "%s: this VAE has no encoder weights", v->L.dir);
    if (B <= 0 || H <= 0 || W <= 0 || H % f || W % f) return locus_fail(LOCUS_E_SHAPE, "vae: image %dx%d is not a multiple of %d", H, W, f);
    locus_vae_tape *t = calloc(1, sizeof *t);
    if (!t) return locus_fail(LOCUS_E_NOMEM, "vae: out of memory");
    t->enc = 1; t->checkpoint = checkpoint; t->B = B; t->H = H; t->W = W;
    size_t nin = (size_t)B * v->in_channels * H * W;
    t->in = talloc(nin);
    memcpy(t->in, image, nin * sizeof(float));
    int C = v->block_out[0];
    float *h = talloc((size_t)B * C * H * W); /* [B,block_out[0],H,W] */
    nn_conv_fwd(&e->conv_in, image, B, H, W, h);
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j < v->layers; j++) h = step(t, NN_UNIT_RESNET, &e->res[i][j], NULL, h, &C, &H, &W, 0, 0);
        if (e->has_sample[i]) h = step(t, NN_UNIT_CONV, &e->sample[i], NULL, h, &C, &H, &W, 0, 1); /* F.pad (0,1,0,1) */
    }
    h = mid_train(t, &e->mid, h, &C, &H, &W);
    t->hfin = h; t->Cf = C; t->Hf = H; t->Wf = W;
    size_t plane = (size_t)Lc * H * W;
    t->aout = talloc((size_t)B * C * H * W);
    nn_gnorm_fwd(&e->norm_out, h, B, H * W, t->aout, LOCUS_ACT_SILU);
    t->mom = talloc((size_t)B * 2 * plane);
    nn_conv_fwd(&e->conv_out, t->aout, B, H, W, t->mom);
    t->mq = t->mom;
    if (v->use_quant_conv) {
        t->mq = talloc((size_t)B * 2 * plane);
        nn_conv_fwd(&v->quant_conv, t->mom, B, H, W, t->mq);
    }
    for (int bb = 0; bb < B; bb++) {
        const float *a = t->mq + (size_t)bb * 2 * plane;
        if (mean) memcpy(mean + bb * plane, a, plane * sizeof(float));
        if (logvar)
            for (size_t i = 0; i < plane; i++) {
                float lv = a[plane + i];
                logvar[bb * plane + i] = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv;
            }
    }
    *tape = t;
    return LOCUS_OK;
}

locus_status locus_vae_encode_backward(const locus_vae *v, locus_vae_tape *t, const float *dmean, const float *dlogvar,
                                       float *dimage, const locus_grads *g) {
    const vae_coder *e = &v->enc;
    int B = t->B, H = t->Hf, W = t->Wf, C = t->Cf, Lc = v->latent_channels;
    size_t plane = (size_t)Lc * H * W, nm = (size_t)B * 2 * plane;
    float *dmq = talloc(nm), *dmom = talloc(nm); /* [B,2L,h,w] */
    for (int bb = 0; bb < B; bb++) {
        float *d = dmq + (size_t)bb * 2 * plane;
        const float *lv = t->mq + (size_t)bb * 2 * plane + plane;
        for (size_t i = 0; i < plane; i++) {
            d[i] = dmean ? dmean[bb * plane + i] : 0.0f;
            float gl = dlogvar ? dlogvar[bb * plane + i] : 0.0f;
            d[plane + i] = lv[i] >= -30.0f && lv[i] <= 20.0f ? gl : 0.0f; /* clamp passes the gradient inside the range */
        }
    }
    if (v->use_quant_conv) nn_conv_bwd(&v->quant_conv, t->mom, B, H, W, dmq, dmom, 0, g);
    else memcpy(dmom, dmq, nm * sizeof(float));
    float *da = talloc((size_t)B * C * H * W), *dh = talloc((size_t)B * C * H * W); /* [B,C,h,w] */
    nn_conv_bwd(&e->conv_out, t->aout, B, H, W, dmom, da, 0, g);
    nn_gnorm_bwd(&e->norm_out, t->hfin, B, H * W, da, LOCUS_ACT_SILU, dh, 0, g);
    dh = units_bwd(t, dh, g);
    nn_conv_bwd(&e->conv_in, t->in, B, t->H, t->W, dh, dimage, 0, g);
    locus_free(dh); locus_free(da); locus_free(dmq); locus_free(dmom);
    locus_vae_tape_free(t);
    return LOCUS_OK;
}

locus_status locus_vae_decode_train(const locus_vae *v, const float *z, int B, int h, int w, float *image, int checkpoint,
                                    locus_vae_tape **tape) {
    *tape = NULL;
    const vae_coder *d = &v->dec;
    int nb = v->nblocks, Lc = v->latent_channels, C = v->block_out[nb - 1], H = h, W = w;
    if (B <= 0 || h <= 0 || w <= 0) return locus_fail(LOCUS_E_SHAPE, "vae: bad latent size %dx%d", h, w);
    locus_vae_tape *t = calloc(1, sizeof *t);
    if (!t) return locus_fail(LOCUS_E_NOMEM, "vae: out of memory");
    t->checkpoint = checkpoint; t->B = B; t->H = h; t->W = w;
    size_t nz = (size_t)B * Lc * h * w;
    t->in = talloc(nz);
    memcpy(t->in, z, nz * sizeof(float));
    const float *zz = t->in;
    if (v->use_post_quant_conv) {
        t->pq = talloc(nz);
        nn_conv_fwd(&v->post_quant_conv, z, B, h, w, t->pq);
        zz = t->pq;
    }
    float *a = talloc((size_t)B * C * H * W); /* [B,block_out[-1],h,w] */
    nn_conv_fwd(&d->conv_in, zz, B, H, W, a);
    a = mid_train(t, &d->mid, a, &C, &H, &W);
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j < v->layers + 1; j++) a = step(t, NN_UNIT_RESNET, &d->res[i][j], NULL, a, &C, &H, &W, 0, 0);
        if (d->has_sample[i]) a = step(t, NN_UNIT_UPCONV, &d->sample[i], NULL, a, &C, &H, &W, 0, 0);
    }
    t->hfin = a; t->Cf = C; t->Hf = H; t->Wf = W;
    t->aout = talloc((size_t)B * C * H * W);
    nn_gnorm_fwd(&d->norm_out, a, B, H * W, t->aout, LOCUS_ACT_NONE);
    locus_act(t->aout, t->aout, (size_t)B * C * H * W, LOCUS_ACT_SILU);
    nn_conv_fwd(&d->conv_out, t->aout, B, H, W, image);
    *tape = t;
    return LOCUS_OK;
}

locus_status locus_vae_decode_backward(const locus_vae *v, locus_vae_tape *t, const float *dimage, float *dz, const locus_grads *g) {
    const vae_coder *d = &v->dec;
    int B = t->B, H = t->Hf, W = t->Wf, C = t->Cf, Lc = v->latent_channels;
    float *da = talloc((size_t)B * C * H * W), *dh = talloc((size_t)B * C * H * W); /* [B,C,H,W] */
    nn_conv_bwd(&d->conv_out, t->aout, B, H, W, dimage, da, 0, g);
    nn_gnorm_bwd(&d->norm_out, t->hfin, B, H * W, da, LOCUS_ACT_SILU, dh, 0, g);
    locus_free(da);
    dh = units_bwd(t, dh, g); /* [B,block_out[-1],h,w] */
    if (v->use_post_quant_conv) {
        float *dzz = talloc((size_t)B * Lc * t->H * t->W); /* [B,L,h,w] */
        nn_conv_bwd(&d->conv_in, t->pq, B, t->H, t->W, dh, dzz, 0, g);
        nn_conv_bwd(&v->post_quant_conv, t->in, B, t->H, t->W, dzz, dz, 0, g);
        locus_free(dzz);
    } else {
        nn_conv_bwd(&d->conv_in, t->in, B, t->H, t->W, dh, dz, 0, g);
    }
    locus_free(dh);
    locus_vae_tape_free(t);
    return LOCUS_OK;
}
