/* train_sd3.c — `locus train transformer`: an SD3Transformer2DModel (MM-DiT) from scratch on the latents of a
 * trained VAE, by flow matching, inside an SD3 pipeline skeleton (`locus train pipeline --family sd3`).  The
 * SD3-style teaching model of issue 11 is trained with it.
 *
 * As `train unet` (train_unet.c): every image is encoded once to its latent posterior with the base's VAE;
 * per step the LoRA trainer's sampler (train_lora.h) draws the latents, the noise and the sigmas (logit-normal
 * u = sigmoid(randn), the flow schedule's sigma at index (long)(u N), as diffusers' SD3 training scripts),
 * then one uniform per example replaces its caption by the empty caption with probability --cfg-dropout
 * (classifier-free guidance needs an unconditional model).  Loss: mean((pred - (noise - x0))^2).
 *
 * Text.  An SD3 prompt embedding without T5 is [77 + 77, joint_attention_dim]: rows 0-76 hold [CLIP-L
 * hidden_states[-2] | CLIP-G hidden_states[-2] | zeros], then 77 rows of zeros (diffusers' _get_t5_prompt_embeds
 * without text_encoder_3: tokenizer_max_length rows, whatever max_sequence_length is) — what
 * locus_pipeline_encode_prompt_sd3 computes, called here on the live weights.  Folders with a T5 encoder are
 * refused (its rows would not be trained on).  With one-layer
 * encoders hidden_states[-2] is the embedding output token[id] + position[i], so --train-text-encoder trains the
 * two encoders' token and position tables with the transformer: the backward is a scatter of the rows in row
 * order (one fixed add chain per element, any thread count).  The pooled embeddings (text_projection of the
 * final-LN state at EOS) would need the backward of the CLIP layer, which is not written: the skeleton's text
 * projections are zero, so pooled is exactly 0 whatever the embeddings are and the gradient above is the whole
 * gradient.  Training the text encoders of a folder whose projections are not zero is refused.
 *
 * The position table pos_embed.pos_embed (a persistent buffer in diffusers, not trained) is diffusers'
 * get_2d_sincos_pos_embed for pos_embed_max_size, computed here as numpy does (float32 grid, float64 sin/cos).
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/safetensors.h"
#include "../core/version.h"
#include "../models/mmdit.h"
#include "../models/pipeline.h"
#include "../models/tokenizer_clip.h"
#include "../simd/ops.h"
#include "train_lora.h"
#include "train_model.h"

void locus_train_sincos_pos_embed(float *out, int D, int G, int base_size) {
    /* grid = np.arange(G, float32) / (G / base_size) (a float32 division); dims [0, D/2) encode the column
     * (numpy's meshgrid puts w first), [D/2, D) the row; each half is [sin(pos * omega), cos(pos * omega)]
     * with omega[d] = 1 / 10000^(d / (D/4)) in float64. */
    int E = D / 2, H = E / 2;
    float q = (float)((double)G / (double)base_size);
    for (int r = 0; r < G; r++)
        for (int c = 0; c < G; c++) {
            float *row = out + ((size_t)r * G + c) * D;
            float pc = (float)c / q, pr = (float)r / q;
            for (int d = 0; d < H; d++) {
                double om = 1.0 / pow(10000.0, (double)d / (E / 2.0));
                double a = (double)pc * om, b = (double)pr * om;
                row[d] = (float)sin(a);
                row[H + d] = (float)cos(a);
                row[E + d] = (float)sin(b);
                row[E + H + d] = (float)cos(b);
            }
        }
}

/* ---- the two CLIP encoders' embedding tables, trained or frozen ---- */

typedef struct {
    locus_pipeline p;          /* text part only: text, text2, tok, tok2, den.ctx_dim; for encode_prompt_sd3 */
    int open, train, T, J, PD, ncap;
    char *const *caps;         /* [ncap] caption strings (the image folder's) */
    int64_t *ids1, *ids2;      /* [ncap + 1, 77] token ids; the last row is the empty caption */
    float *tab[4];             /* writable tok1 [V1,D1], pos1 [P1,D1], tok2, pos2 (train) */
    int V[2], D[2], P[2];
} sd3_text;

static void sd3_text_free(sd3_text *tx) {
    if (tx->p.has_text) locus_textenc_free(&tx->p.text);
    if (tx->p.has_text2) locus_textenc_free(&tx->p.text2);
    if (tx->p.tok) locus_clip_tok_free(tx->p.tok);
    if (tx->p.tok2) locus_clip_tok_free(tx->p.tok2);
    for (int i = 0; i < 4; i++) free(tx->tab[i]);
    free(tx->ids1);
    free(tx->ids2);
    memset(tx, 0, sizeof *tx);
}

static int all_zero(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return 0;
    return 1;
}

static locus_status sd3_text_open(sd3_text *tx, const char *base, int J, int PD, char *const *caps, int ncap, int train) {
    memset(tx, 0, sizeof *tx);
    char c[4400];
    locus_pipeline *p = &tx->p;
    p->kind = LOCUS_PIPE_SD3;
    snprintf(p->dir, sizeof p->dir, "%s", base);
    p->den.ctx_dim = J;
    locus_status st;
    const char *sub[2] = {"text_encoder", "text_encoder_2"}, *tsub[2] = {"tokenizer", "tokenizer_2"};
    for (int k = 0; k < 2; k++) {
        snprintf(c, sizeof c, "%s/%s", base, sub[k]);
        if ((st = locus_textenc_load(k ? &p->text2 : &p->text, c))) return locus_fail(st, "--base %s: %s: %s (locus train pipeline --family sd3 writes one)", base, sub[k], locus_errmsg());
        *(k ? &p->has_text2 : &p->has_text) = 1;
        snprintf(c, sizeof c, "%s/%s", base, tsub[k]);
        if ((st = locus_clip_tok_load(k ? &p->tok2 : &p->tok, c))) return locus_fail(st, "--base %s: %s: %s", base, tsub[k], locus_errmsg());
    }
    const locus_textenc *te[2] = {&p->text, &p->text2};
    for (int k = 0; k < 2; k++) {
        if (te[k]->kind != LOCUS_TEXT_CLIP || te[k]->nlayers < 1)
            return locus_fail(LOCUS_E_UNSUPPORTED, "--base %s: %s must be a CLIP text encoder with at least one layer", base, sub[k]);
        tx->V[k] = te[k]->vocab; tx->D[k] = te[k]->D; tx->P[k] = te[k]->maxpos;
        if (tx->P[k] < 77) return locus_fail(LOCUS_E_UNSUPPORTED, "--base %s: %s has %d positions; SD3 prompts take 77", base, sub[k], tx->P[k]);
    }
    if (tx->D[0] + tx->D[1] > J) return locus_fail(LOCUS_E_SHAPE, "the text encoders' widths %d + %d exceed joint_attention_dim %d", tx->D[0], tx->D[1], J);
    if (te[0]->proj_dim + te[1]->proj_dim != PD)
        return locus_fail(LOCUS_E_SHAPE, "the text projections give %d + %d pooled values; pooled_projection_dim is %d", te[0]->proj_dim, te[1]->proj_dim, PD);
    snprintf(c, sizeof c, "%s/text_encoder_3", base);
    if (locus_is_dir(c))
        return locus_fail(LOCUS_E_UNSUPPORTED, "--base %s has a T5 text_encoder_3; train transformer trains SD3 pipelines without T5 (as train pipeline --family sd3 writes)", base);
    tx->J = J; tx->PD = PD; tx->T = 154; tx->caps = caps; tx->ncap = ncap; tx->train = train;
    tx->ids1 = malloc((size_t)(ncap + 1) * 77 * sizeof(int64_t));
    tx->ids2 = malloc((size_t)(ncap + 1) * 77 * sizeof(int64_t));
    if (!tx->ids1 || !tx->ids2) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    for (int i = 0; i <= ncap; i++) {
        int tr = 0;
        const char *s = i < ncap ? caps[i] : "";
        if ((st = locus_clip_tok_encode_padded(p->tok, s, 77, tx->ids1 + (size_t)i * 77, &tr))) return st;
        if ((st = locus_clip_tok_encode_padded(p->tok2, s, 77, tx->ids2 + (size_t)i * 77, &tr))) return st;
    }
    if (!train) return LOCUS_OK;
    for (int k = 0; k < 2; k++) {
        if (te[k]->proj.w && !all_zero(te[k]->proj.w, (size_t)te[k]->proj_dim * tx->D[k]))
            return locus_fail(LOCUS_E_UNSUPPORTED, "--train-text-encoder: %s/%s has a non-zero text_projection; the pooled path's backward (CLIP layers) "
                              "is not written, so only encoders with zero projections (as the skeleton writes) are trained", base, sub[k]);
        size_t nt = (size_t)tx->V[k] * tx->D[k], np = (size_t)tx->P[k] * tx->D[k];
        if (!(tx->tab[2 * k] = malloc(nt * sizeof(float))) || !(tx->tab[2 * k + 1] = malloc(np * sizeof(float))))
            return locus_fail(LOCUS_E_NOMEM, "out of memory for the text encoders");
        memcpy(tx->tab[2 * k], te[k]->tok, nt * sizeof(float));
        memcpy(tx->tab[2 * k + 1], te[k]->pos, np * sizeof(float));
    }
    p->text.tok = tx->tab[0]; p->text.pos = tx->tab[1]; p->text2.tok = tx->tab[2]; p->text2.pos = tx->tab[3];
    return LOCUS_OK;
}

static const char *const TOKN = "text_model.embeddings.token_embedding.weight", *const POSN = "text_model.embeddings.position_embedding.weight";

static locus_status sd3_text_track(sd3_text *tx, locus_trainer *t) {
    locus_status st = LOCUS_OK;
    for (int k = 0; k < 4 && !st; k++) {
        char n[200];
        int e = k / 2;
        int64_t sh[2] = {k % 2 ? tx->P[e] : tx->V[e], tx->D[e]};
        snprintf(n, sizeof n, "%s.%s", e ? "text_encoder_2" : "text_encoder", k % 2 ? POSN : TOKN);
        st = locus_trainer_track(t, n, tx->tab[k], 2, sh);
    }
    return st;
}

/* embeds [T,J] and pooled [PD] of caption i (-1: the empty caption), from the weights as they are now */
static locus_status sd3_text_embed(const sd3_text *tx, int i, float *embeds, float *pooled) {
    int T;
    locus_status st = locus_pipeline_encode_prompt_sd3(&tx->p, i < 0 ? "" : tx->caps[i], 256, embeds, pooled, &T);
    assert(st || T == tx->T);
    return st;
}

/* d loss / d tables from dctx [B,T,J]: rows 0-76 of each example, in order */
static void sd3_text_backward(const sd3_text *tx, const int *cap, int B, const float *dctx, const locus_grads *g) {
    float *gt[4];
    for (int k = 0; k < 4; k++) gt[k] = locus_grads_of(g, tx->tab[k]);
    int D1 = tx->D[0], D2 = tx->D[1];
    for (int b = 0; b < B; b++) {
        int ci = cap[b] < 0 ? tx->ncap : cap[b];
        const int64_t *i1 = tx->ids1 + (size_t)ci * 77, *i2 = tx->ids2 + (size_t)ci * 77;
        for (int r = 0; r < 77; r++) {
            const float *d = dctx + ((size_t)b * tx->T + r) * tx->J;
            for (int k = 0; k < D1; k++) { gt[0][(size_t)i1[r] * D1 + k] += d[k]; gt[1][(size_t)r * D1 + k] += d[k]; }
            for (int k = 0; k < D2; k++) { gt[2][(size_t)i2[r] * D2 + k] += d[D1 + k]; gt[3][(size_t)r * D2 + k] += d[D1 + k]; }
        }
    }
}

/* Rewrite base/<text_encoder[_2]>/model.safetensors with the trained tables, every other tensor as it was
 * (dtype kept: F16 files stay F16 with --fp16), atomically. */
static locus_status sd3_text_save(const sd3_text *tx, const char *base, int fp16) {
    locus_status st = LOCUS_OK;
    for (int k = 0; k < 2 && !st; k++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s/model.safetensors", base, k ? "text_encoder_2" : "text_encoder");
        locus_st_file f;
        if ((st = locus_st_open(&f, path))) break;
        locus_st_writer *w = locus_st_writer_new();
        if (!w) { locus_st_close(&f); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
        for (size_t i = 0; i < f.count && !st; i++) {
            const locus_st_tensor *x = &f.tensors[i];
            int which = !strcmp(x->name, TOKN) ? 0 : !strcmp(x->name, POSN) ? 1 : -1;
            if (which >= 0) {
                int64_t sh[2] = {which ? tx->P[k] : tx->V[k], tx->D[k]};
                st = locus_train_add_tensor(w, x->name, 2, sh, tx->tab[2 * k + which], (size_t)sh[0] * sh[1], fp16);
            } else st = locus_st_writer_add(w, x->name, x->dtype, x->ndim, x->shape, x->data);
        }
        if (!st) st = locus_st_writer_add_meta(w, "format", "pt");
        if (!st) st = locus_st_writer_save(w, path); /* the writer holds copies: the mapping may go after */
        locus_st_writer_free(w);
        locus_st_close(&f);
    }
    return st;
}

/* ---- the stage ---- */

typedef struct {
    locus_train_data d;   /* latent posteriors; ctx/pooled of every caption (frozen text) */
    locus_train_model m;  /* the transformer, its scheduler and objective */
    sd3_text tx;
    int B, T, J, PD;
    float *null_ctx, *null_pooled; /* [T,J], [PD] the empty caption (frozen text) */
    locus_vae v;
    int has_v;
    locus_scheduler sample_sched;
    int has_sample_sched;
    int *cap;             /* [B] caption index of each example (-1: empty) */
    char **caps;          /* [d.nprompts] the distinct captions (pointers into the image folder's) */
} sd3_stage;

static locus_status caption_cond(const void *vs, int i, float *ctx, float *pooled) {
    const sd3_stage *s = vs;
    if (s->tx.train) return sd3_text_embed(&s->tx, i, ctx, pooled);
    memcpy(ctx, i < 0 ? s->null_ctx : s->d.ctx + (size_t)i * s->T * s->J, (size_t)s->T * s->J * sizeof(float));
    memcpy(pooled, i < 0 ? s->null_pooled : s->d.pooled + (size_t)i * s->PD, (size_t)s->PD * sizeof(float));
    return LOCUS_OK;
}

/* Progress picture (train_stage.c): 20 Euler steps at guidance 7 (SD3's default) -> OUT/train/transformer_step<N>.png. */
static locus_status sd3_pictures(locus_trainer *t, int64_t step) {
    sd3_stage *s = t->ctx;
    locus_train_pics p = {&s->m.den, s->has_sample_sched ? &s->sample_sched : NULL, s->has_v ? &s->v : NULL, &s->d, s->T, s->J, s->PD, 7.0f,
                          caption_cond, s};
    return locus_train_pictures(t, step, &p);
}

static locus_status sd3_eval(locus_trainer *t, int64_t step, float *loss) {
    sd3_stage *s = t->ctx;
    locus_train_batch b;
    locus_status st = locus_train_data_batch(&s->d, &s->m, (step - 1) * s->B, s->B, t->o->seed, &t->rng, &b);
    if (st) return st;
    size_t sd = (size_t)s->T * s->J;
    st = locus_train_step_captions(t, &s->d, step, b.B, s->cap);
    for (int i = 0; i < b.B && !st; i++) /* the conditioning of each example from the weights as they are now */
        if (s->tx.train || s->cap[i] < 0) st = caption_cond(s, s->cap[i], b.ctx + i * sd, b.pooled + (size_t)i * s->PD);
    float *dctx = NULL;
    if (!st && s->tx.train && !(dctx = malloc((size_t)b.B * sd * sizeof(float)))) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
    if (!st)
        st = locus_denoiser_loss_grad(&s->m.den, &s->m.ob, b.x0, b.noise, b.sigmas, b.B, b.H, b.W, b.ctx, b.S, b.pooled, t->o->grad_ckpt, &t->grads,
                                      loss, NULL, NULL, NULL, NULL, dctx, NULL);
    if (!st && s->tx.train) sd3_text_backward(&s->tx, s->cap, b.B, dctx, &t->grads);
    free(dctx);
    locus_train_batch_free(&b);
    return st;
}

/* Latent posteriors of every image; caption numbering; frozen text: the embeddings of every caption. */
static locus_status encode_images(sd3_stage *s, const char *base, const locus_train_images *img) {
    char c[4400];
    snprintf(c, sizeof c, "%s/vae", base);
    locus_status st = locus_vae_load(&s->v, c);
    if (st) return locus_fail(st, "--base %s: vae: %s (train it first: locus train vae)", base, locus_errmsg());
    s->has_v = 1;
    locus_train_data *d = &s->d;
    if ((st = locus_train_encode_latents(d, &s->v, img))) return st;
    return locus_train_number_captions(d, img, &s->caps);
}

int locus_train_transformer(const locus_train_opts *o0) {
    locus_train_opts o = *o0;
    if (o.lr < 0) o.lr = 1e-3;
    const char *base = o.base ? o.base : o.out;
    if (!o.data) { fprintf(stderr, "locus train transformer: --data DIR is required\n"); return 2; }
    if (o.train_text && strcmp(base, o.out)) {
        fprintf(stderr, "locus train transformer: --train-text-encoder rewrites the text encoders of the output folder; pass no --base (or --base equal to -o)\n");
        return 2;
    }
    if (o.threads) locus_set_threads(o.threads);
    sd3_stage s;
    memset(&s, 0, sizeof s);
    locus_trainer t;
    memset(&t, 0, sizeof t);
    locus_train_images img;
    memset(&img, 0, sizeof img);
    char dir[4200], cfg[4300], sched[4300], wpath[4400], *cfgtext = NULL;
    int rc = 2, den_open = 0, sched_open = 0;
    locus_mmdit *mm = NULL;
    locus_status st = locus_train_images_load(&img, o.data, o.W, o.H);
    if (!st) st = locus_mkdir(o.out);
    snprintf(dir, sizeof dir, "%s/transformer", o.out);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(sched, sizeof sched, "%s/scheduler", base);
    if (!st) st = locus_mkdir(dir);
    if (!st) st = locus_train_config_text(LOCUS_CFG_SD3, o.config, NULL, &cfgtext);
    if (!st) st = locus_write_atomic(cfg, cfgtext, strlen(cfgtext));
    if (!st && (st = locus_scheduler_load(&s.m.sched, sched))) st = locus_fail(st, "--base %s: scheduler: %s (locus train pipeline --family sd3 writes one)", base, locus_errmsg());
    sched_open = !st;
    if (!st && !(mm = calloc(1, sizeof *mm))) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
    locus_loader_set_plain_weights(1);
    if (!st && !(st = locus_mmdit_load_random(mm, cfg, o.seed))) {
        locus_train_init_torch(&mm->L, o.seed);
        int base_size = mm->sample_size / mm->patch;
        locus_train_sincos_pos_embed((float *)mm->pos_table, mm->D, mm->pos_max, base_size);
        st = locus_mmdit_denoiser(&s.m.den, mm); /* owns mm from here */
        if (!st) den_open = 1;
        mm = NULL;
    } else if (mm) {
        free(mm);
        mm = NULL;
    }
    locus_loader_set_plain_weights(0);
    if (st) goto out;
    s.m.L = s.m.den.loader;
    if ((st = locus_objective_init(&s.m.ob, &s.m.den, &s.m.sched))) goto out;
    s.m.flow = s.m.ob.kind == LOCUS_OBJ_FLOW;
    if (!s.m.flow) { st = locus_fail(LOCUS_E_UNSUPPORTED, "%s: not a flow-matching scheduler; train transformer trains SD3's flow matching", sched); goto out; }
    if ((st = encode_images(&s, base, &img))) goto out;
    if (s.d.C != s.m.den.in_channels) {
        st = locus_fail(LOCUS_E_ARG, "the transformer config wants in_channels %d; the VAE gives %d latent channels", s.m.den.in_channels, s.d.C);
        goto out;
    }
    if (s.d.h % s.m.den.size_multiple || s.d.w % s.m.den.size_multiple || s.d.h > s.m.den.max_latent || s.d.w > s.m.den.max_latent) {
        st = locus_fail(LOCUS_E_ARG, "latents of %dx%d: not multiples of patch_size %d, or beyond pos_embed_max_size x patch_size = %d", s.d.w, s.d.h,
                        s.m.den.size_multiple, s.m.den.max_latent);
        goto out;
    }
    s.J = s.m.den.ctx_dim; s.PD = s.m.den.pooled_dim; s.T = 154; /* 77 CLIP rows + 77 zero rows (no T5) */
    s.d.S = s.T; s.d.D = s.J; s.d.P = s.PD;
    if ((st = sd3_text_open(&s.tx, base, s.J, s.PD, s.caps, s.d.nprompts, o.train_text))) goto out;
    { /* the sampler copies each example's embeddings from d.ctx / d.pooled: every caption's (frozen text; with
       * trained text the rows stay zero and each step recomputes them from the live weights) */
        size_t sd = (size_t)s.T * s.J, nc = (size_t)(s.d.nprompts ? s.d.nprompts : 1);
        s.d.ctx = calloc(nc * sd, sizeof(float));
        s.d.pooled = calloc(nc * (size_t)s.PD + 1, sizeof(float));
        s.null_ctx = malloc(sd * sizeof(float));
        s.null_pooled = malloc(((size_t)s.PD + 1) * sizeof(float));
        if (!s.d.ctx || !s.d.pooled || !s.null_ctx || !s.null_pooled) { st = locus_fail(LOCUS_E_NOMEM, "out of memory for caption embeddings"); goto out; }
        for (int i = 0; !o.train_text && i < s.d.nprompts && !st; i++) st = sd3_text_embed(&s.tx, i, s.d.ctx + i * sd, s.d.pooled + (size_t)i * s.PD);
        if (!st) st = sd3_text_embed(&s.tx, -1, s.null_ctx, s.null_pooled);
        if (st) goto out;
    }
    if (!o.steps) o.steps = (s.d.n + o.batch_size - 1) / o.batch_size;
    s.B = o.batch_size;
    if (!(s.cap = malloc((size_t)s.B * sizeof(int)))) { st = locus_fail(LOCUS_E_NOMEM, "out of memory"); goto out; }
    if ((st = locus_trainer_init(&t, &o, "transformer", s.m.L, s.m.den.buffers))) goto out;
    size_t n_tr = t.grads.n;
    if (o.train_text && (st = sd3_text_track(&s.tx, &t))) goto out;
    locus_train_stage_settings(&t, "transformer", &o, base, &img, &s.d, cfgtext);
    t.eval = sd3_eval;
    t.on_checkpoint = sd3_pictures;
    t.ctx = &s;
    if (o.samples > 0) {
        if ((st = locus_scheduler_load(&s.sample_sched, sched))) goto out;
        s.has_sample_sched = 1;
    }
    fprintf(stderr, "locus: train transformer: %d images (%d captions) -> latents %dx%dx%d, text %dx%d, %zu parameters, %d steps of %d\n", s.d.n,
            s.d.nprompts, s.d.C, s.d.h, s.d.w, s.T, s.J, s.m.den.params, o.steps, o.batch_size);
    if ((st = locus_trainer_run(&t))) goto out;
    locus_trainer_swap_ema(&t);
    snprintf(wpath, sizeof wpath, "%s/diffusion_pytorch_model.safetensors", dir);
    { /* the tracked parameters, then the position table (a persistent buffer in diffusers) */
        locus_st_writer *w = locus_st_writer_new();
        if (!w) { st = locus_fail(LOCUS_E_NOMEM, "out of memory"); goto out; }
        for (size_t i = 0; i < n_tr && !st; i++)
            st = locus_train_add_tensor(w, t.grads.e[i].name, t.grads.e[i].ndim, t.grads.e[i].shape, t.grads.e[i].param, t.grads.e[i].numel, o.fp16);
        const locus_param_rec *pe = locus_loader_find_param(s.m.L, "pos_embed.pos_embed");
        if (!st && pe) st = locus_train_add_tensor(w, pe->name, pe->ndim, pe->shape, pe->data, pe->numel, o.fp16);
        if (!st) st = locus_st_writer_add_meta(w, "format", "pt");
        if (!st) st = locus_st_writer_add_meta(w, "locus_version", LOCUS_VERSION);
        if (!st) st = locus_st_writer_save(w, wpath);
        locus_st_writer_free(w);
        if (st) goto out;
    }
    if (o.train_text && (st = sd3_text_save(&s.tx, base, o.fp16))) goto out;
    fprintf(stderr, "locus: train transformer: %d steps, final loss %.6f; wrote %s\n", o.steps, t.losses[o.steps - 1], dir);
    rc = 0;
out:
    if (st) fprintf(stderr, "locus train transformer: %s\n", locus_errmsg());
    locus_trainer_free(&t);
    free(cfgtext);
    free(s.caps);
    free(s.null_ctx);
    free(s.null_pooled);
    free(s.cap);
    sd3_text_free(&s.tx);
    locus_train_data_free(&s.d);
    if (den_open) locus_denoiser_close(&s.m.den);
    if (sched_open) locus_scheduler_free(&s.m.sched);
    if (s.has_sample_sched) locus_scheduler_free(&s.sample_sched);
    if (s.has_v) locus_vae_free(&s.v);
    locus_train_images_free(&img);
    return rc;
}
