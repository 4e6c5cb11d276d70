/* unet_bwd.c — training forward (with a tape) and backward of UNet2DConditionModel (see unet_bwd.h).
 *
 * The forward below repeats locus_unet_forward (models/unet.c) step for step, but every module application
 * (resnet, transformer, downsampler, upsampler) is an nn_unit (nn_bwd.h) that keeps its input and, without
 * checkpointing, its saved activations.  The backward walks the units in reverse; skip connections carry
 * their gradient from the up path (the concatenated half of an up resnet's input gradient) to the point
 * where the down path produced them.  The time embedding and the output head are always saved (small). */
#include "unet_bwd.h"

#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"
#include "../simd/ops_bwd.h"
#include "nn_bwd.h"

typedef struct {
    nn_unit u;
    int out_skip;  /* index of the skip tensor this unit's output is, or -1 */
    int cat_skip;  /* up resnets: index of the skip concatenated to the input (channels cprev..cin), or -1 */
    int cprev;     /* up resnets: channels of the hidden-state part of the input */
} unet_step;

struct locus_unet_tape {
    int B, H, W, S, checkpoint;
    float *sample;   /* [B,in,H,W] copy of the input */
    float *ctx;      /* [B,S,ctx_dim] copy of the text embeddings */
    float *tp;       /* [B,time_dim] sinusoidal timestep embedding = linear_1 input */
    float *e1;       /* [B,temb_dim] linear_1 output (before SiLU) */
    float *e1a;      /* [B,temb_dim] silu(e1) = linear_2 input */
    float *emb;      /* [B,temb_dim] linear_2 output */
    float *temb;     /* [B,temb_dim] silu(emb): the resnets' time input */
    float *ain;      /* text_time (SDXL) only: [B, add_text_dim + 6*add_time_dim] add_embedding.linear_1 input */
    float *a1;       /* [B,temb_dim] add_embedding.linear_1 output (before SiLU) */
    float *a1a;      /* [B,temb_dim] silu(a1) = add_embedding.linear_2 input */
    float *hfin;     /* [B,C0,H,W] last up block output = conv_norm_out input */
    float *aout;     /* [B,C0,H,W] silu(conv_norm_out(hfin)) = conv_out input */
    unet_step *steps;
    int nsteps, cap;
    int nskip;
    size_t skip_n[8 * UNET_MAX_BLOCKS + 1]; /* floats of each skip tensor */
};

static float *talloc(size_t n) { return locus_alloc((n ? n : 1) * sizeof(float)); }

void locus_unet_tape_free(locus_unet_tape *t) {
    if (!t) return;
    for (int i = 0; i < t->nsteps; i++) nn_unit_free(&t->steps[i].u);
    free(t->steps);
    locus_free(t->sample); locus_free(t->ctx); locus_free(t->tp); locus_free(t->e1); locus_free(t->e1a);
    locus_free(t->emb); locus_free(t->temb); locus_free(t->hfin); locus_free(t->aout);
    locus_free(t->ain); locus_free(t->a1); locus_free(t->a1a);
    free(t);
}

/* Run one unit on input x (ownership passes to the tape) and return its output (a new buffer). */
static float *step(locus_unet_tape *t, int kind, const void *m, float *x, int cin, int H, int W, int pad_t, int pad_b,
                   int out_skip, int cat_skip, int cprev) {
    if (t->nsteps == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->steps = realloc(t->steps, (size_t)t->cap * sizeof *t->steps);
    }
    unet_step *s = &t->steps[t->nsteps++];
    memset(s, 0, sizeof *s);
    s->u.kind = kind; s->u.m = m; s->u.x = x; s->u.B = t->B; s->u.cin = cin; s->u.H = H; s->u.W = W;
    s->u.pad_t = s->u.pad_l = pad_t; s->u.pad_b = pad_b;
    s->out_skip = out_skip; s->cat_skip = cat_skip; s->cprev = cprev;
    float *y = talloc(nn_unit_shape(&s->u)); /* [B,cout,Ho,Wo] */
    nn_unit_fwd(&s->u, t->temb, t->ctx, t->S, y, t->checkpoint);
    if (out_skip >= 0) t->skip_n[out_skip] = (size_t)t->B * s->u.cout * s->u.Ho * s->u.Wo;
    return y;
}

locus_status locus_unet_forward_train(const locus_unet *u, const float *sample, int B, int H, int W, const float *timesteps,
                                      const float *ctx, int S, float *out, int checkpoint, locus_unet_tape **tape) {
    return locus_unet_forward_train_cond(u, sample, B, H, W, timesteps, ctx, S, NULL, out, checkpoint, tape);
}

/* SDXL's added conditioning with its activations kept (the steps of unet.c add_text_time, same bits):
 * emb[B,temb] += add_embedding(cat(text, add_time_proj(time ids))) */
static void add_text_time_train(const locus_unet *u, locus_unet_tape *t, const float *added, int B, float *emb) {
    int P = u->add_text_dim, A = u->add_time_dim, NI = P + UNET_TIME_IDS * A;
    size_t nt = (size_t)B * u->temb_dim;
    float *ids = talloc((size_t)B * UNET_TIME_IDS), *tp = talloc((size_t)B * UNET_TIME_IDS * A), *aug = talloc(nt); /* [B*6], [B*6,A], [B,temb] */
    t->ain = talloc((size_t)B * NI); t->a1 = talloc(nt); t->a1a = talloc(nt);
    for (int b = 0; b < B; b++) memcpy(ids + (size_t)b * UNET_TIME_IDS, added + (size_t)b * (P + UNET_TIME_IDS) + P, UNET_TIME_IDS * sizeof(float));
    locus_timestep_embedding(ids, B * UNET_TIME_IDS, A, u->flip_sin_to_cos, u->freq_shift, 1.0f, 10000.0f, tp);
    for (int b = 0; b < B; b++) {
        memcpy(t->ain + (size_t)b * NI, added + (size_t)b * (P + UNET_TIME_IDS), (size_t)P * sizeof(float));
        memcpy(t->ain + (size_t)b * NI + P, tp + (size_t)b * UNET_TIME_IDS * A, (size_t)UNET_TIME_IDS * A * sizeof(float));
    }
    nn_linear_fwd(&u->add_1, t->ain, B, t->a1);
    locus_act(t->a1, t->a1a, nt, LOCUS_ACT_SILU);
    nn_linear_fwd(&u->add_2, t->a1a, B, aug);
    for (size_t k = 0; k < nt; k++) emb[k] = emb[k] + aug[k];
    locus_free(ids); locus_free(tp); locus_free(aug);
}

locus_status locus_unet_forward_train_cond(const locus_unet *u, const float *sample, int B, int H, int W, const float *timesteps,
                                           const float *ctx, int S, const float *added, float *out, int checkpoint, locus_unet_tape **tape) {
    *tape = NULL;
    if (!added != !u->add_time)
        return locus_fail(LOCUS_E_ARG, "unet: the added conditioning (text_time) is %s", u->add_time ? "missing" : "given to a UNet without it");
    int f = 1 << (u->nblocks - 1);
    if (B <= 0 || H <= 0 || W <= 0 || H % f || W % f)
        return locus_fail(LOCUS_E_SHAPE, "unet: sample %dx%d is not a multiple of %d (2^(blocks-1))", H, W, f);
    locus_unet_tape *t = calloc(1, sizeof *t);
    if (!t) return locus_fail(LOCUS_E_NOMEM, "unet: out of memory");
    t->B = B; t->H = H; t->W = W; t->S = S; t->checkpoint = checkpoint;
    size_t nin = (size_t)B * u->in_channels * H * W, nctx = (size_t)B * S * u->ctx_dim, nt = (size_t)B * u->temb_dim;
    t->sample = talloc(nin); memcpy(t->sample, sample, nin * sizeof(float));
    t->ctx = talloc(nctx); memcpy(t->ctx, ctx, nctx * sizeof(float));
    /* time embedding: Timesteps -> linear_1 -> silu -> linear_2; resnets use silu(emb) */
    t->tp = talloc((size_t)B * u->time_dim);
    t->e1 = talloc(nt); t->e1a = talloc(nt); t->emb = talloc(nt); t->temb = talloc(nt);
    locus_timestep_embedding(timesteps, B, u->time_dim, u->flip_sin_to_cos, u->freq_shift, 1.0f, 10000.0f, t->tp);
    nn_linear_fwd(&u->time_1, t->tp, B, t->e1);
    locus_act(t->e1, t->e1a, nt, LOCUS_ACT_SILU);
    nn_linear_fwd(&u->time_2, t->e1a, B, t->emb);
    if (added) add_text_time_train(u, t, added, B, t->emb);
    locus_act(t->emb, t->temb, nt, LOCUS_ACT_SILU);

    int C0 = u->block_out[0], C = C0, nskip = 0;
    float *skipx[8 * UNET_MAX_BLOCKS + 1]; /* skip tensors [B,c_s,H_s,W_s] (c_s etc. from skip_n) */
    float *h = talloc((size_t)B * C0 * H * W); /* [B,C0,H,W] conv_in output = skip 0 */
    nn_conv_fwd(&u->conv_in, sample, B, H, W, h);
    t->skip_n[0] = (size_t)B * C0 * H * W;
    skipx[nskip++] = h;
    /* down: every unit's output is a skip tensor; the units keep their inputs (copies of the skips) */
    for (int i = 0; i < u->nblocks; i++) {
        const unet_block *b = &u->down[i];
        for (int j = 0; j < b->nlayers; j++) {
            float *x = talloc((size_t)B * C * H * W); /* [B,C,H,W] resnet input (copy of a skip) */
            memcpy(x, h, (size_t)B * C * H * W * sizeof(float));
            float *y = step(t, NN_UNIT_RESNET, &b->res[j], x, C, H, W, 0, 0, b->cross ? -1 : nskip, -1, 0);
            C = b->cout;
            if (b->cross) y = step(t, NN_UNIT_TRANSFORMER, &b->attn[j], y, C, H, W, 0, 0, nskip, -1, 0);
            h = y;
            skipx[nskip++] = h;
        }
        if (b->has_sample) { /* padding downsample_padding on all sides, or F.pad(0,1,0,1) when it is 0 */
            int pt = b->sample.pad, pb = b->sample.pad ? b->sample.pad : 1;
            float *x = talloc((size_t)B * C * H * W); /* [B,C,H,W] downsampler input */
            memcpy(x, h, (size_t)B * C * H * W * sizeof(float));
            h = step(t, NN_UNIT_CONV, &b->sample, x, C, H, W, pt, pb, nskip, -1, 0);
            nn_unit *un = &t->steps[t->nsteps - 1].u;
            H = un->Ho; W = un->Wo;
            skipx[nskip++] = h;
        }
    }
    t->nskip = nskip;
    /* mid (its input, the last skip, is copied into the unit) */
    {
        float *x = talloc((size_t)B * C * H * W); /* [B,C,h,w] mid-block input */
        memcpy(x, h, (size_t)B * C * H * W * sizeof(float));
        h = step(t, NN_UNIT_RESNET, &u->mid.res[0], x, C, H, W, 0, 0, -1, -1, 0);
        h = step(t, NN_UNIT_TRANSFORMER, &u->mid.attn[0], h, C, H, W, 0, 0, -1, -1, 0);
        h = step(t, NN_UNIT_RESNET, &u->mid.res[1], h, C, H, W, 0, 0, -1, -1, 0);
    }
    /* up: torch.cat([hidden, skip], dim=1) is the resnet's input */
    for (int i = 0; i < u->nblocks; i++) {
        const unet_block *b = &u->up[i];
        for (int j = 0; j < b->nlayers; j++) {
            int si = --nskip;
            float *sk = skipx[si]; /* [B,sc,H,W] */
            int sc = (int)(t->skip_n[si] / ((size_t)B * H * W)), cin = C + sc;
            size_t hw = (size_t)H * W;
            float *cat = talloc((size_t)B * cin * hw); /* [B,C+sc,H,W] */
            for (int bb = 0; bb < B; bb++) {
                memcpy(cat + (size_t)bb * cin * hw, h + (size_t)bb * C * hw, (size_t)C * hw * sizeof(float));
                memcpy(cat + ((size_t)bb * cin + C) * hw, sk + (size_t)bb * sc * hw, (size_t)sc * hw * sizeof(float));
            }
            locus_free(sk);
            locus_free(h);
            h = step(t, NN_UNIT_RESNET, &b->res[j], cat, cin, H, W, 0, 0, -1, si, C);
            C = b->cout;
            if (b->cross) h = step(t, NN_UNIT_TRANSFORMER, &b->attn[j], h, C, H, W, 0, 0, -1, -1, 0);
        }
        if (b->has_sample) {
            h = step(t, NN_UNIT_UPCONV, &b->sample, h, C, H, W, 0, 0, -1, -1, 0);
            H *= 2; W *= 2;
        }
    }
    /* head: conv_norm_out -> silu -> conv_out */
    t->hfin = h;
    t->aout = talloc((size_t)B * C * H * W);
    nn_gnorm_fwd(&u->norm_out, h, B, H * W, t->aout, LOCUS_ACT_NONE);
    locus_act(t->aout, t->aout, (size_t)B * C * H * W, LOCUS_ACT_SILU);
    nn_conv_fwd(&u->conv_out, t->aout, B, H, W, out);
    while (nskip > 0) locus_free(skipx[--nskip]);
    *tape = t;
    return LOCUS_OK;
}

locus_status locus_unet_backward(const locus_unet *u, locus_unet_tape *t, const float *dout, float *dsample, float *dctx,
                                 const locus_grads *g) {
    return locus_unet_backward_cond(u, t, dout, dsample, dctx, NULL, g);
}

locus_status locus_unet_backward_cond(const locus_unet *u, locus_unet_tape *t, const float *dout, float *dsample, float *dctx,
                                      float *dadded, const locus_grads *g) {
    int B = t->B, H = t->H, W = t->W, C0 = u->block_out[0];
    size_t nt = (size_t)B * u->temb_dim, nctx = (size_t)B * t->S * u->ctx_dim, hw = (size_t)H * W;
    float *dtemb = talloc(nt), *dctx_ = talloc(nctx); /* [B,temb_dim], [B,S,ctx_dim] accumulated over modules */
    memset(dtemb, 0, nt * sizeof(float));
    memset(dctx_, 0, nctx * sizeof(float));
    float *dskip[8 * UNET_MAX_BLOCKS + 1] = {0}; /* gradient of each skip tensor from the up path */
    /* head */
    float *da = talloc((size_t)B * C0 * hw), *dh = talloc((size_t)B * C0 * hw); /* [B,C0,H,W] */
    nn_conv_bwd(&u->conv_out, t->aout, B, H, W, dout, da, 0, g);
    nn_gnorm_bwd(&u->norm_out, t->hfin, B, (int)hw, da, LOCUS_ACT_SILU, dh, 0, g);
    locus_free(da);
    /* units in reverse */
    for (int k = t->nsteps - 1; k >= 0; k--) {
        unet_step *s = &t->steps[k];
        nn_unit *un = &s->u;
        size_t nout = (size_t)B * un->cout * un->Ho * un->Wo, nin = (size_t)B * un->cin * un->H * un->W;
        if (s->out_skip >= 0 && dskip[s->out_skip]) { /* the output also fed an up resnet */
            locus_binary(dh, dskip[s->out_skip], dh, nout, LOCUS_BIN_ADD, 0.0f);
            locus_free(dskip[s->out_skip]);
            dskip[s->out_skip] = NULL;
        }
        float *dx = talloc(nin); /* [B,cin,H,W] */
        nn_unit_bwd(un, t->temb, t->ctx, t->S, dh, dx, dtemb, dctx_, g);
        locus_free(dh);
        if (s->cat_skip >= 0) { /* split d cat into the hidden part and the skip part */
            size_t phw = (size_t)un->H * un->W;
            int sc = un->cin - s->cprev;
            dh = talloc((size_t)B * s->cprev * phw);
            float *ds = talloc((size_t)B * sc * phw); /* [B,sc,H,W] */
            for (int bb = 0; bb < B; bb++) {
                memcpy(dh + (size_t)bb * s->cprev * phw, dx + (size_t)bb * un->cin * phw, (size_t)s->cprev * phw * sizeof(float));
                memcpy(ds + (size_t)bb * sc * phw, dx + ((size_t)bb * un->cin + s->cprev) * phw, (size_t)sc * phw * sizeof(float));
            }
            dskip[s->cat_skip] = ds;
            locus_free(dx);
        } else {
            dh = dx;
        }
        nn_unit_free(un);
    }
    t->nsteps = 0;
    /* conv_in: its output is skip 0 */
    if (dskip[0]) locus_binary(dh, dskip[0], dh, t->skip_n[0], LOCUS_BIN_ADD, 0.0f);
    nn_conv_bwd(&u->conv_in, t->sample, B, H, W, dh, dsample, 0, g);
    locus_free(dh);
    for (int i = 0; i < 8 * UNET_MAX_BLOCKS + 1; i++) locus_free(dskip[i]);
    /* time embedding */
    float *d1 = talloc(nt), *d2 = talloc(nt); /* [B,temb_dim] */
    locus_act_bwd(t->emb, dtemb, d1, nt, LOCUS_ACT_SILU, 0);          /* d emb */
    if (t->ain) { /* text_time: emb = time_embedding + add_embedding(ain) */
        int P = u->add_text_dim, NI = P + UNET_TIME_IDS * u->add_time_dim;
        float *da = talloc(nt), *dain = dadded ? talloc((size_t)B * NI) : NULL; /* [B,temb_dim], [B,NI] */
        nn_linear_bwd(&u->add_2, t->a1a, B, d1, d2, 0, g);           /* d silu(a1) */
        locus_act_bwd(t->a1, d2, da, nt, LOCUS_ACT_SILU, 0);          /* d a1 */
        nn_linear_bwd(&u->add_1, t->ain, B, da, dain, 0, g);
        for (int b = 0; dadded && b < B; b++) { /* the pooled text's gradient; none for the time ids (size numbers) */
            memcpy(dadded + (size_t)b * (P + UNET_TIME_IDS), dain + (size_t)b * NI, (size_t)P * sizeof(float));
            memset(dadded + (size_t)b * (P + UNET_TIME_IDS) + P, 0, UNET_TIME_IDS * sizeof(float));
        }
        locus_free(da); locus_free(dain);
    } else if (dadded) {
        locus_free(d1); locus_free(d2); locus_free(dtemb); locus_free(dctx_);
        locus_unet_tape_free(t);
        return locus_fail(LOCUS_E_ARG, "unet: no added conditioning to differentiate");
    }
    nn_linear_bwd(&u->time_2, t->e1a, B, d1, d2, 0, g);               /* d silu(e1) */
    locus_act_bwd(t->e1, d2, d1, nt, LOCUS_ACT_SILU, 0);              /* d e1 */
    nn_linear_bwd(&u->time_1, t->tp, B, d1, NULL, 0, g);
    if (dctx) memcpy(dctx, dctx_, nctx * sizeof(float));
    locus_free(d1); locus_free(d2); locus_free(dtemb); locus_free(dctx_);
    locus_unet_tape_free(t);
    return LOCUS_OK;
}
