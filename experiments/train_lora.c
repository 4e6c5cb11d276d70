/* train_lora.c — `locus train-lora`: LoRA fine-tuning of the localized layers (the paper's second result).
 *
 * The loop: for each optimizer step, zero the LoRA gradients, evaluate loss + gradient on grad_accum
 * micro-batches (each scaled by 1/grad_accum, as accelerate does), stop on a non-finite loss, clip the total
 * gradient norm, one AdamW step, record the dump, checkpoint every N steps (LoRA + optimizer state + step +
 * RNG position + loss history, one atomic file <out>.ckpt), progress on stderr.  `--resume` continues from
 * the checkpoint and gives the same bits as an uninterrupted run (every step is a deterministic function of
 * the state in the checkpoint).  The model evaluation is one function, eval_grad(): the denoiser's training
 * forward and backward (the denoiser interface's train_forward / backward, models/denoiser.h).
 */
#include "train_lora.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/rng.h"
#include "../models/adamw.h"
#include "../models/grads.h"
#include "../models/lora.h"
#include "../simd/kernels.h"
#include "../simd/ops.h"
#include "cli_opts.h"

/* ---- the denoiser ---- */

locus_status locus_train_model_open(locus_train_model *m, const char *dir) {
    memset(m, 0, sizeof *m);
    char comp[4096], sched[4096];
    snprintf(comp, sizeof comp, "%s/unet", dir);
    if (!locus_is_dir(comp)) snprintf(comp, sizeof comp, "%s/transformer", dir);
    if (locus_is_dir(comp)) snprintf(sched, sizeof sched, "%s/scheduler", dir);
    else {
        snprintf(comp, sizeof comp, "%s", dir);
        snprintf(sched, sizeof sched, "%s/../scheduler", dir);
    }
    locus_status st = locus_scheduler_load(&m->sched, sched);
    if (st) return locus_fail(st, "--model %s: training noise schedule: %s", dir, locus_errmsg());
    locus_loader_set_plain_weights(1);
    st = locus_denoiser_open(&m->den, comp, NULL);
    locus_loader_set_plain_weights(0);
    if (!st) st = locus_objective_init(&m->ob, &m->den, &m->sched);
    if (!st && !m->den.ops->train_forward) st = locus_fail(LOCUS_E_UNSUPPORTED, "%s: a %s cannot be trained yet", comp, m->den.ops->class_name);
    if (st) { locus_denoiser_close(&m->den); locus_scheduler_free(&m->sched); return st; }
    m->flow = m->ob.kind == LOCUS_OBJ_FLOW;
    m->L = m->den.loader;
    snprintf(m->comp_dir, sizeof m->comp_dir, "%s", comp);
    return LOCUS_OK;
}

void locus_train_model_close(locus_train_model *m) {
    if (!m->L) return;
    locus_denoiser_close(&m->den);
    locus_scheduler_free(&m->sched);
    m->L = NULL;
}

/* ---- batches ---- */

void locus_train_batch_free(locus_train_batch *b) {
    free(b->x0); free(b->noise); free(b->t); free(b->tint); free(b->sigmas); free(b->ctx); free(b->pooled);
    memset(b, 0, sizeof *b);
}

int locus_train_batch_count(const locus_st_file *f) {
    int k = 0;
    char nm[64];
    for (;; k++) {
        snprintf(nm, sizeof nm, "batch%d.x0", k);
        if (!locus_st_find(f, nm)) return k;
    }
}

static locus_status get_f32(const locus_st_file *f, int k, const char *what, int ndim, const int64_t *shape, float **out) {
    char nm[128], s1[96], s2[96];
    snprintf(nm, sizeof nm, "batch%d.%s", k, what);
    const locus_st_tensor *t = locus_st_find(f, nm);
    if (!t) return locus_fail(LOCUS_E_NOTFOUND, "%s: tensor '%s' missing", f->path, nm);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = shape[i] < 0 || t->shape[i] == shape[i];
    if (!ok) return locus_fail(LOCUS_E_SHAPE, "%s: '%s' is %s, expected %s (-1: any)", f->path, nm, locus_shape_str(t->ndim, t->shape, s1, sizeof s1),
                               locus_shape_str(ndim, shape, s2, sizeof s2));
    int64_t n = locus_st_numel(t);
    *out = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!*out) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    locus_status st = locus_st_to_f32(t, *out, n);
    return st ? locus_fail(st, "%s: '%s': %s", f->path, nm, locus_errmsg()) : LOCUS_OK;
}

locus_status locus_train_batch_read(const locus_st_file *f, int k, const locus_train_model *m, locus_train_batch *b) {
    memset(b, 0, sizeof *b);
    char nm[64];
    snprintf(nm, sizeof nm, "batch%d.x0", k);
    const locus_st_tensor *x = locus_st_find(f, nm);
    if (!x || x->ndim != 4) return locus_fail(LOCUS_E_NOTFOUND, "%s: no 4-D tensor '%s'", f->path, nm);
    b->B = (int)x->shape[0]; b->C = (int)x->shape[1]; b->H = (int)x->shape[2]; b->W = (int)x->shape[3];
    int64_t s4[4] = {b->B, b->C, b->H, b->W}, s1[1] = {b->B}, s3[3] = {b->B, -1, -1}, s2[2] = {b->B, -1};
    locus_status st = get_f32(f, k, "x0", 4, s4, &b->x0);
    if (!st) st = get_f32(f, k, "noise", 4, s4, &b->noise);
    if (!st) st = get_f32(f, k, "encoder_hidden_states", 3, s3, &b->ctx);
    if (!st) {
        snprintf(nm, sizeof nm, "batch%d.encoder_hidden_states", k);
        const locus_st_tensor *c = locus_st_find(f, nm);
        b->S = (int)c->shape[1];
        b->D = (int)c->shape[2];
    }
    b->t = malloc((size_t)b->B * sizeof(float));
    if (!st && !b->t) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
    if (!st && m->den.pooled_dim > 0) {
        st = get_f32(f, k, "pooled_projections", 2, s2, &b->pooled);
        if (!st) {
            snprintf(nm, sizeof nm, "batch%d.pooled_projections", k);
            b->P = (int)locus_st_find(f, nm)->shape[1];
        }
    }
    if (!st && m->flow) {
        st = get_f32(f, k, "sigmas", 1, s1, &b->sigmas);
        if (!st && (st = locus_objective_inputs(&m->ob, b->x0, b->noise, b->sigmas, b->B, 0, NULL, NULL, b->t)))
            st = locus_fail(st, "%s: batch%d: %s", f->path, k, locus_errmsg());
    } else if (!st) {
        snprintf(nm, sizeof nm, "batch%d.timesteps", k);
        const locus_st_tensor *t = locus_st_find(f, nm);
        b->tint = malloc((size_t)b->B * sizeof(int64_t));
        if (!t || t->ndim != 1 || t->shape[0] != b->B) st = locus_fail(LOCUS_E_NOTFOUND, "%s: no [%d] tensor '%s'", f->path, b->B, nm);
        else if (!b->tint) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
        else if ((st = locus_st_to_i64(t, b->tint, b->B))) st = locus_fail(st, "%s: '%s': %s", f->path, nm, locus_errmsg());
        for (int i = 0; !st && i < b->B; i++) {
            if (b->tint[i] < 0 || b->tint[i] >= m->sched.num_train)
                st = locus_fail(LOCUS_E_ARG, "%s: '%s'[%d] = %lld outside [0, %d)", f->path, nm, i, (long long)b->tint[i], m->sched.num_train);
            else b->t[i] = (float)b->tint[i];
        }
    }
    if (st) locus_train_batch_free(b);
    return st;
}

/* ---- objective ---- */

void locus_train_noise(const locus_train_model *m, const locus_train_batch *b, float *noisy, float *target) {
    size_t per = (size_t)b->C * b->H * b->W;
    float *tv = malloc((size_t)b->B * sizeof(float)); /* [B] sigmas or timestep indices as the objective takes them */
    if (!tv) abort();
    for (int i = 0; i < b->B; i++) tv[i] = m->flow ? b->sigmas[i] : (float)b->tint[i];
    locus_status st = locus_objective_inputs(&m->ob, b->x0, b->noise, tv, b->B, per, noisy, target, NULL);
    assert(st == LOCUS_OK); /* batches were validated when read */
    (void)st;
    free(tv);
}

float locus_train_mse(const float *pred, const float *target, size_t n, float *dpred, float gscale) {
    float *d = malloc((n ? n : 1) * sizeof(float)); /* [n] pred - target */
    if (!d) abort();
    for (size_t k = 0; k < n; k++) d[k] = pred[k] - target[k];
    float loss = locus_k()->row->rdot(d, d, n) / (float)n;
    if (dpred) {
        const float a = (float)(2.0 / (double)n);
        for (size_t k = 0; k < n; k++) dpred[k] = (a * d[k]) * gscale;
    }
    free(d);
    return loss;
}

static void model_forward(const locus_train_model *m, const locus_train_batch *b, const float *noisy, float *pred) {
    locus_denoiser_forward(&m->den, noisy, b->B, b->H, b->W, b->t, b->ctx, b->S, b->pooled, pred, NULL);
}

locus_status locus_train_loss(const locus_train_model *m, const locus_train_batch *b, float *loss) {
    size_t n = (size_t)b->B * b->C * b->H * b->W;
    float *noisy = malloc(n * sizeof(float)), *target = malloc(n * sizeof(float)), *pred = malloc(n * sizeof(float)); /* [B,C,H,W] each */
    if (!noisy || !target || !pred) { free(noisy); free(target); free(pred); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    locus_train_noise(m, b, noisy, target);
    model_forward(m, b, noisy, pred);
    *loss = locus_train_mse(pred, target, n, NULL, 1.0f);
    free(noisy); free(target); free(pred);
    return LOCUS_OK;
}

/* One loss evaluation with gradient: loss of batch b, and d(gscale * loss)/d(every tracked parameter) ADDED
 * to its buffer in g (the LoRA factors).  This is the one place the denoiser's training forward/backward is
 * called: noisy input and target as locus_train_noise, the training forward (same bits as the inference
 * forward), MSE and its gradient, the hand-written backward. */
static locus_status eval_grad(const locus_train_model *m, const locus_train_batch *b, const locus_grads *g, float gscale, int ckpt, float *loss) {
    size_t n = (size_t)b->B * b->C * b->H * b->W;
    float *noisy = malloc(n * sizeof(float));  /* [B,C,H,W] the denoiser's input */
    float *target = malloc(n * sizeof(float)); /* [B,C,H,W] regression target */
    float *pred = malloc(n * sizeof(float));   /* [B,C,H,W] denoiser output */
    float *dpred = malloc(n * sizeof(float));  /* [B,C,H,W] d loss / d pred */
    locus_status st = LOCUS_OK;
    if (!noisy || !target || !pred || !dpred) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
    if (!st) {
        locus_train_noise(m, b, noisy, target);
        void *tape = NULL;
        st = m->den.ops->train_forward(&m->den, noisy, b->B, b->H, b->W, b->t, b->ctx, b->S, b->pooled, pred, ckpt, &tape);
        if (!st) {
            *loss = locus_train_mse(pred, target, n, dpred, gscale);
            st = m->den.ops->backward(&m->den, tape, dpred, NULL, NULL, NULL, g);
        }
    }
    free(noisy); free(target); free(pred); free(dpred);
    return st;
}

/* ---- the command ---- */

typedef struct {
    const char *model, *data, *batches, *layers, *targets, *init, *out, *dump;
    int rank, batch_size, grad_accum, steps, ckpt_every, resume, warmup, threads, grad_ckpt, resolution, max_seq;
    double alpha, lr, wd, b1, b2, eps, clip;
    uint64_t seed;
} train_opts;

/* Recorded tensors of --dump (and their copy in checkpoints). */
typedef struct {
    locus_st_writer *w; /* rebuilt from `names`/`data` on every save */
    char **names;
    float **data;
    int64_t (*shape)[2];
    int n, cap;
} dump_rec;

static int dump_add(dump_rec *d, const char *name, int64_t d0, int64_t d1, const float *x) {
    if (d->n == d->cap) {
        int nc = d->cap ? 2 * d->cap : 64;
        char **nn = realloc(d->names, nc * sizeof *nn);
        float **nd = nn ? realloc(d->data, nc * sizeof *nd) : NULL;
        int64_t(*ns)[2] = nd ? realloc(d->shape, nc * sizeof *ns) : NULL;
        if (nn) d->names = nn;
        if (nd) d->data = nd;
        if (ns) d->shape = ns;
        if (!ns) return -1;
        d->cap = nc;
    }
    size_t n = (size_t)d0 * (d1 ? d1 : 1);
    d->names[d->n] = strdup(name);
    d->data[d->n] = malloc(n * sizeof(float));
    if (!d->names[d->n] || !d->data[d->n]) return -1;
    memcpy(d->data[d->n], x, n * sizeof(float));
    d->shape[d->n][0] = d0;
    d->shape[d->n][1] = d1;
    d->n++;
    return 0;
}

static void dump_free(dump_rec *d) {
    for (int i = 0; i < d->n; i++) { free(d->names[i]); free(d->data[i]); }
    free(d->names); free(d->data); free(d->shape);
    memset(d, 0, sizeof *d);
}

static const dump_rec *sort_ctx;
static int cmp_dump(const void *a, const void *b) { return strcmp(sort_ctx->names[*(const int *)a], sort_ctx->names[*(const int *)b]); }

/* Entries in name order, so a resumed run (whose early entries come back from the checkpoint) writes the
 * same bytes as an uninterrupted one. */
static locus_status dump_write(const dump_rec *d, locus_st_writer *w, const char *prefix) {
    char key[1300];
    int *ord = malloc((size_t)(d->n ? d->n : 1) * sizeof *ord);
    if (!ord) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    for (int i = 0; i < d->n; i++) ord[i] = i;
    sort_ctx = d;
    qsort(ord, (size_t)d->n, sizeof *ord, cmp_dump);
    locus_status st = LOCUS_OK;
    for (int j = 0; j < d->n && !st; j++) {
        int i = ord[j];
        snprintf(key, sizeof key, "%s%s", prefix, d->names[i]);
        st = locus_st_writer_add(w, key, LOCUS_F32, d->shape[i][1] ? 2 : 1, d->shape[i], d->data[i]);
    }
    free(ord);
    return st;
}

/* The settings a resumed run must share with the run that wrote the checkpoint. */
static void config_string(const train_opts *o, char *s, size_t n) {
    snprintf(s, n, "model=%s;data=%s;batches=%s;layers=%s;targets=%s;rank=%d;alpha=%.17g;init=%s;lr=%.17g;wd=%.17g;betas=%.17g,%.17g;eps=%.17g;"
             "clip=%.17g;warmup=%d;batch_size=%d;grad_accum=%d;seed=%llu;dump=%d;resolution=%d;max_seq=%d",
             o->model, o->data ? o->data : "", o->batches ? o->batches : "", o->layers, o->targets, o->rank, o->alpha, o->init ? o->init : "",
             o->lr, o->wd, o->b1, o->b2, o->eps, o->clip, o->warmup, o->batch_size, o->grad_accum, (unsigned long long)o->seed, o->dump != NULL,
             o->resolution, o->max_seq);
}

typedef struct {
    const train_opts *o;
    locus_lora *s;
    locus_adamw *opt;
    locus_mt19937 *rng;
    dump_rec *dump;
    float *losses; /* [steps] */
    char ckpt[4200];
} train_state;

static locus_status checkpoint_save(const train_state *t, int64_t step) {
    locus_st_writer *w = locus_st_writer_new();
    if (!w) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    char cfg[8192];
    config_string(t->o, cfg, sizeof cfg);
    int64_t one = 1, nr = 625, nl = step > 0 ? step : 1, rng[625];
    for (int i = 0; i < 624; i++) rng[i] = t->rng->state[i];
    rng[624] = t->rng->next;
    locus_status st = locus_lora_write(t->s, w, "lora.");
    if (!st) st = locus_adamw_state_write(t->opt, w, "optimizer.");
    if (!st) st = locus_st_writer_add(w, "train.step", LOCUS_I64, 1, &one, &step);
    if (!st) st = locus_st_writer_add(w, "train.rng", LOCUS_I64, 1, &nr, rng);
    if (!st && step > 0) st = locus_st_writer_add(w, "train.loss", LOCUS_F32, 1, &nl, t->losses);
    if (!st) st = dump_write(t->dump, w, "dump.");
    if (!st) st = locus_st_writer_add_meta(w, "locus_train_config", cfg);
    if (!st) st = locus_st_writer_save(w, t->ckpt);
    locus_st_writer_free(w);
    return st;
}

static locus_status checkpoint_load(train_state *t, int64_t *step) {
    locus_st_file f;
    locus_status st = locus_st_open(&f, t->ckpt);
    if (st) return st;
    char cfg[8192];
    config_string(t->o, cfg, sizeof cfg);
    const locus_json *md = locus_json_get(f.header.root, "__metadata__");
    const char *was = md ? locus_json_str(md, "locus_train_config", NULL, NULL) : NULL;
    if (!was || strcmp(was, cfg)) st = locus_fail(LOCUS_E_ARG, "%s: written by a run with other settings (%s); --resume needs the same options", t->ckpt, was ? was : "none");
    const locus_st_tensor *ts = locus_st_find(&f, "train.step"), *tr = locus_st_find(&f, "train.rng");
    int64_t rng[625];
    if (!st && (!ts || !tr || locus_st_numel(tr) != 625 || locus_st_to_i64(ts, step, 1) || locus_st_to_i64(tr, rng, 625)))
        st = locus_fail(LOCUS_E_FORMAT, "%s: no train.step / train.rng", t->ckpt);
    if (!st && (*step < 0 || *step > t->o->steps)) st = locus_fail(LOCUS_E_ARG, "%s: checkpoint at step %lld, but --steps is %d", t->ckpt, (long long)*step, t->o->steps);
    for (int i = 0; !st && i < t->s->n; i++)
        for (int dn = 0; dn < 2 && !st; dn++) {
            char key[1300];
            locus_lora_key(t->s, i, dn, "lora.", key, sizeof key);
            const locus_st_tensor *x = locus_st_find(&f, key);
            int64_t n = (int64_t)t->s->e[i].ad.r * (dn ? t->s->e[i].in : t->s->e[i].out);
            if (!x || locus_st_numel(x) != n) st = locus_fail(LOCUS_E_FORMAT, "%s: LoRA factor '%s' missing or mis-shaped", t->ckpt, key);
            else st = locus_st_to_f32(x, dn ? t->s->e[i].ad.down : t->s->e[i].ad.up, n);
        }
    if (!st) st = locus_adamw_state_read(t->opt, &f, "optimizer.");
    if (!st && *step > 0) {
        const locus_st_tensor *tl = locus_st_find(&f, "train.loss");
        if (!tl || locus_st_numel(tl) != *step) st = locus_fail(LOCUS_E_FORMAT, "%s: train.loss missing", t->ckpt);
        else st = locus_st_to_f32(tl, t->losses, *step);
    }
    for (size_t i = 0; !st && i < f.count; i++) {
        const locus_st_tensor *x = &f.tensors[i];
        if (strncmp(x->name, "dump.", 5)) continue;
        int64_t n = locus_st_numel(x);
        float *buf = malloc((size_t)(n ? n : 1) * sizeof(float));
        if (!buf || locus_st_to_f32(x, buf, n) || dump_add(t->dump, x->name + 5, x->shape[0], x->ndim == 2 ? x->shape[1] : 0, buf))
            st = locus_fail(LOCUS_E_FORMAT, "%s: cannot read '%s'", t->ckpt, x->name);
        free(buf);
    }
    if (!st) {
        for (int i = 0; i < 624; i++) t->rng->state[i] = (uint32_t)rng[i];
        t->rng->next = (int)rng[624];
    }
    locus_st_close(&f);
    return st;
}

static const locus_opt train_lora_opts[] = { /* the options locus_cmd_train_lora parses, for --help */
    LOCUS_OPT_HELP("--model", "DIR  diffusers pipeline or component folder (required)"),
    LOCUS_OPT_HELP("--data", "DIR  Hugging Face image folder: metadata.jsonl (file_name, text) + images (this or --batches is required)"),
    LOCUS_OPT_HELP("--batches", "FILE  fixed batches to replay, the goldens' format (default: none)"),
    LOCUS_OPT_HELP("--lora-layers", "L1,L2  layers (diffusers paths, globs, {a,b}) that get adapters (required)"),
    LOCUS_OPT_HELP("--lora-targets", "T1,T2  Linear modules inside them (default to_q,to_k,to_v,to_out.0)"),
    LOCUS_OPT_HELP("-o", "LORA.safetensors  the adapter file, diffusers keys (required)"),
    LOCUS_OPT_HELP("--output", "LORA.safetensors  same as -o (required)"),
    LOCUS_OPT_HELP("--rank", "R  adapter rank (default 64)"),
    LOCUS_OPT_HELP("--alpha", "A  adapter alpha; scale alpha/rank (default 64)"),
    LOCUS_OPT_HELP("--lora-init", "FILE  start from these adapter factors (default: fresh factors drawn from --seed)"),
    LOCUS_OPT_HELP("--lr", "F  AdamW learning rate (default 1e-6)"),
    LOCUS_OPT_HELP("--weight-decay", "F  AdamW weight decay (default 1e-2)"),
    LOCUS_OPT_HELP("--betas", "B1,B2  AdamW betas (default 0.9,0.999)"),
    LOCUS_OPT_HELP("--eps", "F  AdamW eps (default 1e-8)"),
    LOCUS_OPT_HELP("--clip-grad", "F  clip_grad_norm max (default 1.0; 0 = off)"),
    LOCUS_OPT_HELP("--warmup", "N  linear warmup steps (default 0)"),
    LOCUS_OPT_HELP("--batch-size", "B  examples per micro-batch (default 1)"),
    LOCUS_OPT_HELP("--grad-accum", "N  micro-batches per optimizer step (default 1)"),
    LOCUS_OPT_HELP("--steps", "N  optimizer steps (default: one epoch, or every --batches batch)"),
    LOCUS_OPT_HELP("--seed", "S  noise, timestep and shuffle seed (default 42)"),
    LOCUS_OPT_HELP("--resolution", "R  --data: square training image size (default: the model's sample size times the VAE factor)"),
    LOCUS_OPT_HELP("--max-sequence-length", "N  --data: text tokens (default 77)"),
    LOCUS_OPT_HELP("--checkpoint-every", "N  steps between checkpoints OUT.ckpt (default 100; 0 = only at the end)"),
    LOCUS_OPT_HELP("--dump", "FILE  per-step losses, gradients and adapter values for the tests (default: none)"),
    LOCUS_OPT_HELP("--resume", "continue from the checkpoint, same bits as an uninterrupted run (default: off)"),
    LOCUS_OPT_HELP("--gradient-checkpointing", "re-run blocks in the backward: less memory, same bits (default: off)"),
    LOCUS_OPT_HELP("--threads", "N  threads (default: all cores; results do not change)"),
};
static const locus_help train_lora_help = {
    "train-lora", "--model DIR (--batches FILE | --data DIR) --lora-layers L1,L2 -o LORA.safetensors [options]",
    "LoRA fine-tuning of chosen layers with AdamW (the paper's recipe by default: rank 64, alpha 64, lr 1e-6, weight decay 1e-2, clip 1.0).",
    "The objective is the scheduler's (DDPM epsilon / v, or flow matching for SD3).  The adapters are written in\n"
    "diffusers' key scheme; use them with locus generate --lora FILE[:SCALE].  See docs/LORA.md.\n",
    NULL};

static int usage_train(void) {
    fprintf(stderr, "locus: train-lora: --model DIR, -o FILE, --lora-layers L and one of --data DIR / --batches FILE are required (see 'locus train-lora --help')\n");
    return 2;
}

static int fail2(const char *msg) {
    fprintf(stderr, "locus: train-lora: %s\n", msg);
    return 2;
}

static int parse_num(const char *s, double *v) {
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end && isfinite(*v);
}

int locus_cmd_train_lora(int argc, char **argv) {
    train_opts o = {0};
    o.targets = "to_q,to_k,to_v,to_out.0";
    o.rank = 64; o.alpha = 64; o.lr = 1e-6; o.wd = 1e-2; o.b1 = 0.9; o.b2 = 0.999; o.eps = 1e-8; o.clip = 1.0;
    o.batch_size = 1; o.grad_accum = 1; o.seed = 42; o.ckpt_every = 100; o.max_seq = 77;
    char msg[600];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
#define NUMARG(flag, dst, cond)                                                                                    \
    if (!strcmp(a, flag)) {                                                                                        \
        if (!v || !parse_num(v, &x) || !(cond)) { snprintf(msg, sizeof msg, "%s needs a valid number (got '%s')", flag, v ? v : ""); return fail2(msg); } \
        dst = x; i++; continue;                                                                                    \
    }
        if (!strcmp(a, "--resume")) { o.resume = 1; continue; }
        if (!strcmp(a, "--gradient-checkpointing")) { o.grad_ckpt = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            locus_help_print(stdout, &train_lora_help, train_lora_opts, sizeof train_lora_opts / sizeof *train_lora_opts, NULL, 0);
            return 0;
        }
        if (!v) { snprintf(msg, sizeof msg, "%s needs a value", a); return fail2(msg); }
        if (!strcmp(a, "--model")) { o.model = v; i++; continue; }
        if (!strcmp(a, "--data")) { o.data = v; i++; continue; }
        if (!strcmp(a, "--batches")) { o.batches = v; i++; continue; }
        if (!strcmp(a, "--lora-layers")) { o.layers = v; i++; continue; }
        if (!strcmp(a, "--lora-targets")) { o.targets = v; i++; continue; }
        if (!strcmp(a, "--lora-init")) { o.init = v; i++; continue; }
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) { o.out = v; i++; continue; }
        if (!strcmp(a, "--dump")) { o.dump = v; i++; continue; }
        if (!strcmp(a, "--betas")) {
            char *end;
            o.b1 = strtod(v, &end);
            if (*end != ',' || !parse_num(end + 1, &o.b2) || !(o.b1 >= 0 && o.b1 < 1 && o.b2 >= 0 && o.b2 < 1))
                return fail2("--betas needs B1,B2 in [0,1)");
            i++;
            continue;
        }
        NUMARG("--rank", o.rank, x >= 1 && x == (int)x)
        NUMARG("--alpha", o.alpha, x > 0)
        NUMARG("--lr", o.lr, x >= 0)
        NUMARG("--weight-decay", o.wd, x >= 0)
        NUMARG("--eps", o.eps, x > 0)
        NUMARG("--clip-grad", o.clip, x >= 0)
        NUMARG("--warmup", o.warmup, x >= 0 && x == (int)x)
        NUMARG("--batch-size", o.batch_size, x >= 1 && x == (int)x)
        NUMARG("--grad-accum", o.grad_accum, x >= 1 && x == (int)x)
        NUMARG("--steps", o.steps, x >= 1 && x == (int)x && x < 1e9)
        NUMARG("--seed", o.seed, x >= 0 && x == floor(x))
        NUMARG("--checkpoint-every", o.ckpt_every, x >= 0 && x == (int)x)
        NUMARG("--threads", o.threads, x >= 1 && x == (int)x)
        NUMARG("--resolution", o.resolution, x >= 1 && x == (int)x)
        NUMARG("--max-sequence-length", o.max_seq, x >= 1 && x <= 512 && x == (int)x)
#undef NUMARG
        snprintf(msg, sizeof msg, "unknown option '%s'", a);
        return fail2(msg);
    }
    if (!o.model || !o.out || !o.layers || (!o.data == !o.batches)) return usage_train();
    if (o.threads) locus_set_threads(o.threads);

    locus_train_data data = {0};
    if (o.data && locus_train_data_load(&data, o.model, o.data, o.resolution, o.max_seq)) return fail2(locus_errmsg());
    locus_train_model m;
    locus_st_file bf = {0};
    if (locus_train_model_open(&m, o.model)) { locus_train_data_free(&data); return fail2(locus_errmsg()); }
    if (o.batches && locus_st_open(&bf, o.batches)) { locus_train_model_close(&m); return fail2(locus_errmsg()); }
    int nb = o.batches ? locus_train_batch_count(&bf) : 0;
    int rc = 2;
    locus_lora s = {0};
    locus_adamw opt = {0};
    dump_rec dump = {0};
    float *losses = NULL;
    locus_grads grads;
    locus_grads_init(&grads);
    locus_mt19937 rng;
    locus_mt19937_seed(&rng, o.seed);
    if (o.batches && nb == 0) { snprintf(msg, sizeof msg, "%s: no batch0.x0", o.batches); fail2(msg); goto out; }
    if (!o.steps && o.batches) o.steps = nb / o.grad_accum > 0 ? nb / o.grad_accum : 1;
    if (!o.steps) o.steps = (int)((data.n + (int64_t)o.batch_size * o.grad_accum - 1) / ((int64_t)o.batch_size * o.grad_accum)); /* one epoch */
    if (locus_lora_create(&s, m.L, o.layers, o.targets, o.rank, (float)o.alpha, o.seed)) { fail2(locus_errmsg()); goto out; }
    if (o.init) {
        locus_lora init;
        if (locus_lora_read(&init, m.L, o.init, 1.0f)) { fail2(locus_errmsg()); goto out; }
        locus_status st = locus_lora_assign(&s, &init);
        locus_lora_free(&init);
        if (st) { snprintf(msg, sizeof msg, "%s: %s", o.init, locus_errmsg()); fail2(msg); goto out; }
    }
    locus_adamw_cfg cfg = {o.lr, o.b1, o.b2, o.eps, o.wd, o.warmup};
    locus_adamw_init(&opt, &cfg);
    losses = calloc((size_t)o.steps, sizeof *losses);
    if (!losses) { fail2("out of memory"); goto out; }
    for (int i = 0; i < s.n; i++) { /* gradient buffers of the factors, in the table the backward fills */
        locus_lora_entry *e = &s.e[i];
        int64_t sd[2] = {e->ad.r, e->in}, su[2] = {e->out, e->ad.r};
        char kd[1300], ku[1300];
        locus_lora_key(&s, i, 1, "", kd, sizeof kd);
        locus_lora_key(&s, i, 0, "", ku, sizeof ku);
        if (locus_grads_track(&grads, kd, e->ad.down, 2, sd) || locus_grads_track(&grads, ku, e->ad.up, 2, su) ||
            locus_adamw_add(&opt, kd, e->ad.down, locus_grads_of(&grads, e->ad.down), (size_t)(sd[0] * sd[1])) ||
            locus_adamw_add(&opt, ku, e->ad.up, locus_grads_of(&grads, e->ad.up), (size_t)(su[0] * su[1]))) {
            fail2(locus_errmsg());
            goto out;
        }
    }
    train_state t = {&o, &s, &opt, &rng, &dump, losses, ""};
    snprintf(t.ckpt, sizeof t.ckpt, "%s.ckpt", o.out);
    int64_t start = 0;
    if (o.resume) {
        if (access(t.ckpt, F_OK) == 0) {
            if (checkpoint_load(&t, &start)) { fail2(locus_errmsg()); goto out; }
            fprintf(stderr, "locus: train-lora: resuming %s at step %lld of %d\n", t.ckpt, (long long)start, o.steps);
        } else fprintf(stderr, "locus: train-lora: no checkpoint %s yet; starting at step 0\n", t.ckpt);
    }
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    for (int64_t step = start + 1; step <= o.steps; step++) {
        locus_grads_zero(&grads);
        float lsum = 0;
        for (int a = 0; a < o.grad_accum; a++) {
            int64_t q = (step - 1) * o.grad_accum + a; /* micro-batch index */
            locus_train_batch b;
            float l = 0;
            locus_status st = o.batches ? locus_train_batch_read(&bf, (int)(q % nb), &m, &b)
                                        : locus_train_data_batch(&data, &m, q * o.batch_size, o.batch_size, o.seed, &rng, &b);
            if (!st) st = eval_grad(&m, &b, &grads, 1.0f / (float)o.grad_accum, o.grad_ckpt, &l);
            locus_train_batch_free(&b);
            if (st) { fail2(locus_errmsg()); goto out; }
            lsum += l;
        }
        float loss = lsum / (float)o.grad_accum;
        if (!isfinite(loss)) {
            snprintf(msg, sizeof msg, "loss is %g at step %lld; stopped (the last checkpoint, %s, is intact)", loss, (long long)step,
                     access(t.ckpt, F_OK) == 0 ? t.ckpt : "none written yet");
            fail2(msg);
            goto out;
        }
        if (o.clip > 0) locus_adamw_clip(&opt, o.clip);
        locus_adamw_step(&opt);
        losses[step - 1] = loss;
        if (o.dump) {
            char key[1300];
            snprintf(key, sizeof key, "loss_step%lld", (long long)step);
            int bad = dump_add(&dump, key, 1, 0, &loss);
            for (int i = 0; i < s.n && !bad; i++) {
                char pre[64];
                snprintf(pre, sizeof pre, "lora_step%lld.", (long long)step);
                locus_lora_key(&s, i, 1, pre, key, sizeof key);
                bad = dump_add(&dump, key, s.e[i].ad.r, s.e[i].in, s.e[i].ad.down);
                locus_lora_key(&s, i, 0, pre, key, sizeof key);
                if (!bad) bad = dump_add(&dump, key, s.e[i].out, s.e[i].ad.r, s.e[i].ad.up);
            }
            if (bad) { fail2("out of memory for --dump"); goto out; }
        }
        if ((o.ckpt_every > 0 && step % o.ckpt_every == 0) || step == o.steps) {
            if (checkpoint_save(&t, step)) { fail2(locus_errmsg()); goto out; }
        }
        clock_gettime(CLOCK_MONOTONIC, &w1);
        double el = (double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec);
        double sps = (double)(step - start) / (el > 0 ? el : 1e-9);
        fprintf(stderr, "train-lora  step %lld/%d  loss %.6f  %.3g steps/s  %.0f s left\n", (long long)step, o.steps, loss, sps,
                (double)(o.steps - step) / sps);
    }
    if (locus_lora_save(&s, o.out)) { fail2(locus_errmsg()); goto out; }
    if (o.dump) {
        locus_st_writer *w = locus_st_writer_new();
        int64_t ns = o.steps;
        locus_status st = w ? dump_write(&dump, w, "") : LOCUS_E_NOMEM;
        if (!st) st = locus_st_writer_add(w, "lora_loss", LOCUS_F32, 1, &ns, losses);
        if (!st) st = locus_st_writer_save(w, o.dump);
        locus_st_writer_free(w);
        if (st) { fail2(locus_errmsg()); goto out; }
    }
    fprintf(stderr, "locus: train-lora: %d steps, final loss %.6f; wrote %s (%d adapters, rank %d, alpha %g)\n", o.steps, losses[o.steps - 1], o.out,
            s.n, o.rank, o.alpha);
    rc = 0;
out:
    locus_grads_free(&grads);
    free(losses);
    dump_free(&dump);
    locus_adamw_free(&opt);
    locus_lora_free(&s);
    if (o.batches) locus_st_close(&bf);
    locus_train_data_free(&data);
    locus_train_model_close(&m);
    return rc;
}
