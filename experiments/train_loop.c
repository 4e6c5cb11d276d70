/* train_loop.c — the full-parameter training loop shared by `locus train vae` and `locus train unet`
 * (train_model.h).
 *
 * Per step: zero every gradient, the stage's eval() (loss + backward, drawing its randomness from the
 * trainer's generator), stop on a non-finite loss naming the step, clip_grad_norm, one AdamW step (torch's
 * operation order, models/adamw.h).  Every --checkpoint-every steps and at the end: one atomic safetensors
 * file OUT/train/<stage>.ckpt with every parameter, the AdamW moments and step, the generator's state, the
 * loss history and the run's settings; then OUT/train/<stage>_loss.csv and <stage>_loss.png.  A resumed run
 * restores exactly that state, and since each step is a deterministic function of it (the batch order is a
 * function of (seed, step), models and optimizer are bit-reproducible), it writes the same bits as an
 * uninterrupted run, whenever it was killed.  --ema keeps diffusers' EMAModel average of the weights (in the
 * checkpoint too); the stages then write and picture the averaged weights.
 */
#include "train_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../core/png.h"
#include "../core/safetensors.h"
#include "../core/strbuf.h"
#include "draw.h"

locus_status locus_trainer_init(locus_trainer *t, const locus_train_opts *o, const char *what, const locus_loader *L,
                                const char *const *buffers) {
    memset(t, 0, sizeof *t);
    t->o = o;
    t->what = what;
    if (o->decay > 0 && o->decay > o->steps - o->warmup)
        return locus_fail(LOCUS_E_ARG, "--decay-steps %d: more than the %d steps after the warmup", o->decay, o->steps - o->warmup);
    locus_grads_init(&t->grads);
    locus_adamw_cfg cfg = {o->lr, o->b1, o->b2, o->eps, o->wd, o->warmup, o->decay, o->steps};
    locus_adamw_init(&t->opt, &cfg);
    locus_mt19937_seed(&t->rng, o->seed);
    snprintf(t->workdir, sizeof t->workdir, "%s/train", o->out);
    for (size_t i = 0; i < L->nrec; i++) {
        const locus_param_rec *r = &L->params[i];
        int buffer = 0;
        for (const char *const *b = buffers; b && *b && !buffer; b++) buffer = !strcmp(*b, r->name);
        if (buffer || locus_grads_of(&t->grads, r->data)) continue;
        if (r->packed) return locus_fail(LOCUS_E_UNSUPPORTED, "%s: '%s' is packed; training needs plain weights", what, r->name);
        locus_status st = locus_grads_track(&t->grads, r->name, r->data, r->ndim, r->shape);
        if (!st) st = locus_adamw_add(&t->opt, r->name, r->data, locus_grads_of(&t->grads, r->data), r->numel);
        if (st) return st;
    }
    t->losses = calloc((size_t)(o->steps > 0 ? o->steps : 1), sizeof *t->losses);
    if (!t->losses) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    if (o->ema > 0) { /* the averages start as the initial weights */
        t->ema = calloc(t->grads.n ? t->grads.n : 1, sizeof *t->ema);
        if (!t->ema) return locus_fail(LOCUS_E_NOMEM, "out of memory");
        for (size_t i = 0; i < t->grads.n; i++) {
            if (!(t->ema[i] = malloc(t->grads.e[i].numel * sizeof(float)))) return locus_fail(LOCUS_E_NOMEM, "out of memory for the EMA weights");
            memcpy(t->ema[i], t->grads.e[i].param, t->grads.e[i].numel * sizeof(float));
        }
    }
    return locus_mkdir(t->workdir);
}

locus_status locus_trainer_track(locus_trainer *t, const char *name, float *param, int ndim, const int64_t *shape) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    locus_status st = locus_grads_track(&t->grads, name, param, ndim, shape);
    if (!st) st = locus_adamw_add(&t->opt, name, param, locus_grads_of(&t->grads, param), numel);
    if (st || !t->ema) return st;
    float **e = realloc(t->ema, t->grads.n * sizeof *e);
    if (!e) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    t->ema = e;
    if (!(e[t->grads.n - 1] = malloc(numel * sizeof(float)))) return locus_fail(LOCUS_E_NOMEM, "out of memory for the EMA weights");
    memcpy(e[t->grads.n - 1], param, numel * sizeof(float));
    return LOCUS_OK;
}

void locus_trainer_free(locus_trainer *t) {
    for (size_t i = 0; t->ema && i < t->grads.n; i++) free(t->ema[i]);
    free(t->ema);
    t->ema = NULL;
    locus_grads_free(&t->grads);
    locus_adamw_free(&t->opt);
    free(t->losses);
    t->losses = NULL;
}

void locus_trainer_swap_ema(locus_trainer *t) {
    for (size_t i = 0; t->ema && i < t->grads.n; i++) {
        float *p = (float *)t->grads.e[i].param, *e = t->ema[i];
        for (size_t k = 0; k < t->grads.e[i].numel; k++) {
            float x = p[k];
            p[k] = e[k];
            e[k] = x;
        }
    }
}

/* diffusers' EMAModel.step after optimizer step `step` (update_after_step 0, no warmup schedule):
 * decay = min(ema, (1 + s) / (10 + s)) with s = step - 1 (0 at the first step: the average becomes the
 * weights), then ema -= (1 - decay) * (ema - p) elementwise in fp32. */
static void ema_update(locus_trainer *t, int64_t step) {
    if (!t->ema) return;
    int64_t s = step - 1;
    double d = s <= 0 ? 0.0 : (1.0 + (double)s) / (10.0 + (double)s);
    if (d > t->o->ema) d = t->o->ema;
    const float om = (float)(1.0 - d);
    for (size_t i = 0; i < t->grads.n; i++) {
        const float *p = t->grads.e[i].param;
        float *e = t->ema[i];
        for (size_t k = 0; k < t->grads.e[i].numel; k++) e[k] = e[k] - om * (e[k] - p[k]);
    }
}

static void ckpt_path(const locus_trainer *t, char *p, size_t n, const char *suffix) {
    snprintf(p, n, "%s/%s%s", t->workdir, t->what, suffix);
}

static locus_status checkpoint_save(const locus_trainer *t, int64_t step) {
    locus_st_writer *w = locus_st_writer_new();
    if (!w) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    char key[700], path[4400];
    int64_t one = 1, nr = 625, nl = step > 0 ? step : 1, rng[625];
    for (int i = 0; i < 624; i++) rng[i] = t->rng.state[i];
    rng[624] = t->rng.next;
    locus_status st = LOCUS_OK;
    for (size_t i = 0; i < t->grads.n && !st; i++) {
        snprintf(key, sizeof key, "param.%s", t->grads.e[i].name);
        st = locus_st_writer_add(w, key, LOCUS_F32, t->grads.e[i].ndim, t->grads.e[i].shape, t->grads.e[i].param);
    }
    for (size_t i = 0; t->ema && i < t->grads.n && !st; i++) {
        snprintf(key, sizeof key, "ema.%s", t->grads.e[i].name);
        st = locus_st_writer_add(w, key, LOCUS_F32, t->grads.e[i].ndim, t->grads.e[i].shape, t->ema[i]);
    }
    if (!st) st = locus_adamw_state_write(&t->opt, w, "optimizer.");
    if (!st) st = locus_st_writer_add(w, "train.step", LOCUS_I64, 1, &one, &step);
    if (!st) st = locus_st_writer_add(w, "train.rng", LOCUS_I64, 1, &nr, rng);
    if (!st && step > 0) st = locus_st_writer_add(w, "train.loss", LOCUS_F32, 1, &nl, t->losses);
    if (!st) st = locus_st_writer_add_meta(w, "locus_train_settings", t->settings);
    ckpt_path(t, path, sizeof path, ".ckpt");
    if (!st) st = locus_st_writer_save(w, path);
    locus_st_writer_free(w);
    return st;
}

/* Do two settings lines differ at most in their trailing ";decay=D/S" (locus_trainer_run appends it last)?  Sets
 * *flat_a / *flat_b to the last step of each one's constant learning rate (S - D; INT64_MAX without decay). */
static int same_but_decay(const char *a, const char *b, int64_t *flat_a, int64_t *flat_b) {
    const char *da = strstr(a, ";decay="), *db = strstr(b, ";decay=");
    size_t la = da ? (size_t)(da - a) : strlen(a), lb = db ? (size_t)(db - b) : strlen(b);
    int d, s;
    *flat_a = *flat_b = INT64_MAX;
    if (da && sscanf(da, ";decay=%d/%d", &d, &s) == 2) *flat_a = (int64_t)s - d;
    if (db && sscanf(db, ";decay=%d/%d", &d, &s) == 2) *flat_b = (int64_t)s - d;
    return la == lb && !memcmp(a, b, la);
}

static locus_status checkpoint_load(locus_trainer *t, const char *path, int64_t *step) {
    locus_st_file f;
    locus_status st = locus_st_open(&f, path);
    if (st) return st;
    const locus_json *md = locus_json_get(f.header.root, "__metadata__");
    const char *was = md ? locus_json_str(md, "locus_train_settings", NULL, NULL) : NULL;
    int64_t flat_was = INT64_MAX, flat_now = INT64_MAX; /* the learning rate is constant up to these steps (--decay-steps) */
    if (!was || !same_but_decay(was, t->settings, &flat_was, &flat_now))
        st = locus_fail(LOCUS_E_ARG, "%s: written by a run with other settings (%s; now %s); --resume needs the same options", path, was ? was : "none",
                        t->settings);
    const locus_st_tensor *ts = locus_st_find(&f, "train.step"), *tr = locus_st_find(&f, "train.rng");
    int64_t rng[625];
    if (!st && (!ts || !tr || locus_st_numel(tr) != 625 || locus_st_to_i64(ts, step, 1) || locus_st_to_i64(tr, rng, 625)))
        st = locus_fail(LOCUS_E_FORMAT, "%s: no train.step / train.rng", path);
    if (!st && (*step < 0 || *step > t->o->steps))
        st = locus_fail(LOCUS_E_ARG, "%s: checkpoint at step %lld, but --steps is %d", path, (long long)*step, t->o->steps);
    /* another decay (or none) is fine while neither schedule has left its constant part: up to the checkpoint's
     * step both runs took the same learning rates, so the resumed run equals an uninterrupted one with the new
     * options (a warmup-stable-decay schedule branched off a constant-rate checkpoint) */
    if (!st && strcmp(was, t->settings) && (*step > flat_was || *step > flat_now))
        st = locus_fail(LOCUS_E_ARG, "%s: checkpoint at step %lld, past where %s learning-rate decay begins (step %lld); --resume needs the same "
                        "--steps and --decay-steps there", path, (long long)*step, *step > flat_was ? "its" : "the new",
                        (long long)(*step > flat_was ? flat_was : flat_now));
    for (size_t i = 0; !st && i < t->grads.n; i++) {
        char key[700];
        snprintf(key, sizeof key, "param.%s", t->grads.e[i].name);
        const locus_st_tensor *x = locus_st_find(&f, key);
        if (!x || locus_st_numel(x) != (int64_t)t->grads.e[i].numel) st = locus_fail(LOCUS_E_FORMAT, "%s: '%s' missing or mis-shaped", path, key);
        else st = locus_st_to_f32(x, (float *)t->grads.e[i].param, (int64_t)t->grads.e[i].numel);
    }
    for (size_t i = 0; !st && t->ema && i < t->grads.n; i++) {
        char key[700];
        snprintf(key, sizeof key, "ema.%s", t->grads.e[i].name);
        const locus_st_tensor *x = locus_st_find(&f, key);
        if (!x || locus_st_numel(x) != (int64_t)t->grads.e[i].numel) st = locus_fail(LOCUS_E_FORMAT, "%s: '%s' missing or mis-shaped", path, key);
        else st = locus_st_to_f32(x, t->ema[i], (int64_t)t->grads.e[i].numel);
    }
    if (!st) st = locus_adamw_state_read(&t->opt, &f, "optimizer.");
    if (!st && *step > 0) {
        const locus_st_tensor *tl = locus_st_find(&f, "train.loss");
        if (!tl || locus_st_numel(tl) != *step) st = locus_fail(LOCUS_E_FORMAT, "%s: train.loss missing", path);
        else st = locus_st_to_f32(tl, t->losses, *step);
    }
    if (!st) {
        for (int i = 0; i < 624; i++) t->rng.state[i] = (uint32_t)rng[i];
        t->rng.next = (int)rng[624];
    }
    locus_st_close(&f);
    return st;
}

/* loss.csv (step,loss) and loss.png for steps 1..n */
static locus_status write_curves(const locus_trainer *t, int64_t n) {
    char path[4400], title[128];
    locus_strbuf b = {0};
    locus_sb_puts(&b, "step,loss\n");
    for (int64_t i = 0; i < n; i++) locus_sb_printf(&b, "%lld,%.9g\n", (long long)(i + 1), t->losses[i]);
    if (locus_sb_status(&b)) { locus_sb_free(&b); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    ckpt_path(t, path, sizeof path, "_loss.csv");
    locus_status st = locus_write_atomic(path, locus_sb_str(&b), strlen(locus_sb_str(&b)));
    locus_sb_free(&b);
    if (st || n < 1) return st;
    ckpt_path(t, path, sizeof path, "_loss.png");
    snprintf(title, sizeof title, "locus train %s: loss", t->what);
    return locus_line_chart(path, title, t->losses, (int)n, 1);
}

locus_status locus_trainer_run(locus_trainer *t) {
    const locus_train_opts *o = t->o;
    char path[4400];
    ckpt_path(t, path, sizeof path, ".ckpt");
    int64_t start = 0;
    locus_status st;
    if (o->ema > 0) { /* averaging is part of the state a resumed run must share */
        size_t l = strlen(t->settings);
        snprintf(t->settings + l, sizeof t->settings - l, ";ema=%.17g", o->ema);
    }
    if (o->decay > 0) { /* the schedule then depends on --steps, which a resumed run must share */
        size_t l = strlen(t->settings);
        snprintf(t->settings + l, sizeof t->settings - l, ";decay=%d/%d", o->decay, o->steps);
    }
    if (o->resume) {
        if (access(path, F_OK) == 0) {
            if ((st = checkpoint_load(t, path, &start))) return st;
            fprintf(stderr, "locus: train %s: resuming %s at step %lld of %d\n", t->what, path, (long long)start, o->steps);
        } else fprintf(stderr, "locus: train %s: no checkpoint %s yet; starting at step 0\n", t->what, path);
    } else if (access(path, F_OK) == 0)
        return locus_fail(LOCUS_E_ARG, "%s exists: pass --resume to continue that run, or remove it to start over", path);
    t->start = start;
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    double last_print = -1e9;
    for (int64_t step = start + 1; step <= o->steps; step++) {
        locus_grads_zero(&t->grads);
        float loss = 0;
        if ((st = t->eval(t, step, &loss))) return st;
        if (!isfinite(loss))
            return locus_fail(LOCUS_E_ARG, "loss is %g at step %lld; stopped (%s%s)", loss, (long long)step,
                              access(path, F_OK) == 0 ? "the last checkpoint is intact: " : "no checkpoint written yet", access(path, F_OK) == 0 ? path : "");
        if (o->clip > 0) locus_adamw_clip(&t->opt, o->clip);
        locus_adamw_step(&t->opt);
        ema_update(t, step);
        t->losses[step - 1] = loss;
        if ((o->ckpt_every > 0 && step % o->ckpt_every == 0) || step == o->steps) {
            if ((st = checkpoint_save(t, step)) || (st = write_curves(t, step))) return st;
            if (t->on_checkpoint) { /* pictures of what would be saved: the EMA weights when averaging */
                locus_trainer_swap_ema(t);
                st = t->on_checkpoint(t, step);
                locus_trainer_swap_ema(t);
                if (st) return st;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &w1);
        double el = (double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec);
        if (!o->quiet && (el - last_print >= 2.0 || step == o->steps || step == start + 1)) {
            double sps = (double)(step - start) / (el > 0 ? el : 1e-9);
            fprintf(stderr, "train %s  step %lld/%d  loss %.6f  %.3g steps/s  %.0f s left\n", t->what, (long long)step, o->steps, loss, sps,
                    (double)(o->steps - step) / sps);
            last_print = el;
        }
    }
    return LOCUS_OK;
}

locus_status locus_train_save_grid(const char *path, const float *imgs, int rows, int n, int H, int W) {
    const int gap = 2;
    int GW = n * W + (n + 1) * gap, GH = rows * H + (rows + 1) * gap;
    uint8_t *g = malloc((size_t)GW * GH * 3), *one = malloc((size_t)W * H * 3); /* grid, one HWC image */
    if (!g || !one) { free(g); free(one); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    memset(g, 255, (size_t)GW * GH * 3);
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++) {
            locus_image_to_u8(imgs + ((size_t)r * n + i) * 3 * H * W, H, W, one);
            int x0 = gap + i * (W + gap), y0 = gap + r * (H + gap);
            for (int y = 0; y < H; y++) memcpy(g + ((size_t)(y0 + y) * GW + x0) * 3, one + (size_t)y * W * 3, (size_t)W * 3);
        }
    locus_status st = locus_png_write(path, g, GW, GH, 3, NULL, 0);
    free(g);
    free(one);
    return st;
}
