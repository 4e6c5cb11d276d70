/* grad.c — `locus grad`: one training-loss evaluation (UNet denoising MSE, SD3 flow-matching MSE or the VAE
 * reconstruction + KL loss) on tensors from a batch file, its backward through the hand-written backward
 * passes (models/unet_bwd.c, models/mmdit_bwd.c, models/vae_bwd.c), optionally with LoRA adapters
 * (models/lora.h) whose factors are then the trainable parameters, and a safetensors dump of the loss, the prediction, every trainable
 * parameter's gradient (`grad.<diffusers name>`) and the input gradients (`grad_input.*`) — the same names
 * as the torch-autograd goldens (shared/golden/train), so a dump can be compared tensor by tensor. */
#include "grad.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/version.h"
#include "../models/lora.h"
#include "../models/vae_bwd.h"
#include "../simd/ops.h"
#include "../simd/ops_bwd.h"
#include "../simd/sleef_names.h"
#include "cli_opts.h"

void locus_grad_out_free(locus_grad_out *o) {
    for (int i = 0; i < o->n; i++) locus_free(o->t[i].data);
    free(o->t);
    memset(o, 0, sizeof *o);
}

const locus_grad_tensor *locus_grad_out_find(const locus_grad_out *o, const char *name) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->t[i].name, name)) return &o->t[i];
    return NULL;
}

/* add a copy of data[shape] under name */
static locus_status out_add(locus_grad_out *o, const char *name, const float *data, int ndim, int64_t d0, int64_t d1, int64_t d2,
                            int64_t d3) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 16;
        locus_grad_tensor *t = realloc(o->t, (size_t)cap * sizeof *t);
        if (!t) return locus_fail(LOCUS_E_NOMEM, "grad: out of memory");
        o->t = t;
        o->cap = cap;
    }
    locus_grad_tensor *t = &o->t[o->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    int64_t d[4] = {d0, d1, d2, d3};
    size_t n = 1;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) { t->shape[i] = d[i]; n *= (size_t)d[i]; }
    t->data = locus_alloc((n ? n : 1) * sizeof(float));
    if (!t->data) return locus_fail(LOCUS_E_NOMEM, "grad: out of memory");
    memcpy(t->data, data, n * sizeof(float));
    o->n++;
    return LOCUS_OK;
}

/* Batch tensor `name` (or "batch0.<name>") as fp32 (integer dtypes converted); shape must have ndim dims;
 * want[i] >= 0 fixes a dimension.  Returns a locus_alloc'd buffer or NULL with the error set. */
static float *batch_get(const locus_st_file *f, const char *name, int ndim, const int64_t *want, int64_t *shape) {
    char alt[128];
    const locus_st_tensor *t = locus_st_find(f, name);
    if (!t) {
        snprintf(alt, sizeof alt, "batch0.%s", name);
        t = locus_st_find(f, alt);
    }
    if (!t) { locus_fail(LOCUS_E_NOTFOUND, "%s: no tensor '%s' (or 'batch0.%s')", f->path, name, name); return NULL; }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 || t->shape[i] == want[i];
    if (!ok) {
        char s[96] = "";
        for (int i = 0; i < t->ndim; i++) snprintf(s + strlen(s), sizeof s - strlen(s), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        locus_fail(LOCUS_E_SHAPE, "%s: tensor '%s' has shape [%s], expected %d dims%s", f->path, t->name, s, ndim,
                   ndim == 4 ? " [B,C,H,W] matching the model" : " matching the model and batch");
        return NULL;
    }
    int64_t n = locus_st_numel(t);
    for (int i = 0; i < ndim; i++) shape[i] = t->shape[i];
    float *x = locus_alloc((size_t)(n ? n : 1) * sizeof(float));
    if (t->dtype == LOCUS_I64 || t->dtype == LOCUS_I32) {
        int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
        if (locus_st_to_i64(t, v, n)) { free(v); locus_free(x); return NULL; }
        for (int64_t i = 0; i < n; i++) x[i] = (float)v[i];
        free(v);
    } else if (locus_st_to_f32(t, x, n)) {
        locus_free(x);
        return NULL;
    }
    return x;
}

locus_status locus_grad_denoiser(const locus_denoiser *d, const locus_objective *ob, const locus_st_file *batch, int checkpoint,
                                 const locus_grads *g, locus_grad_out *out) {
    locus_status st = LOCUS_OK;
    int P = d->pooled_dim;
    int64_t sx[4], sn[4], st_[1], sc[3], sp[2];
    int64_t w4[4] = {-1, d->in_channels, -1, -1};
    float *x0 = NULL, *noise = NULL, *ts = NULL, *ctx = NULL, *pooled = NULL, *noisy = NULL, *target = NULL, *pred = NULL;
    float *dx = NULL, *dctx = NULL, *dpool = NULL;
    memset(out, 0, sizeof *out);
    if (!(x0 = batch_get(batch, "x0", 4, w4, sx))) { st = LOCUS_E_NOTFOUND; goto done; }
    int64_t wn[4] = {sx[0], sx[1], sx[2], sx[3]}, wt[1] = {sx[0]}, wc[3] = {sx[0], -1, d->ctx_dim}, wp[2] = {sx[0], P};
    if (!(noise = batch_get(batch, "noise", 4, wn, sn)) || !(ts = batch_get(batch, locus_objective_time_name(ob), 1, wt, st_)) ||
        !(ctx = batch_get(batch, "encoder_hidden_states", 3, wc, sc)) || (P && !(pooled = batch_get(batch, "pooled_projections", 2, wp, sp)))) {
        st = LOCUS_E_NOTFOUND;
        goto done;
    }
    int B = (int)sx[0], C = (int)sx[1], H = (int)sx[2], W = (int)sx[3], S = (int)sc[1];
    size_t n = (size_t)B * C * H * W, nctx = (size_t)B * S * d->ctx_dim;
    noisy = locus_alloc(n * 4); target = locus_alloc(n * 4); pred = locus_alloc(n * 4); dx = locus_alloc(n * 4);
    dctx = locus_alloc(nctx * 4);
    if (P) dpool = locus_alloc((size_t)B * P * 4);
    if (!noisy || !target || !pred || !dx || !dctx || (P && !dpool)) { st = locus_fail(LOCUS_E_NOMEM, "out of memory for the batch"); goto done; }
    if ((st = locus_denoiser_loss_grad(d, ob, x0, noise, ts, B, H, W, ctx, S, pooled, checkpoint, g, &out->loss, pred, noisy, target, dx, dctx,
                                       dpool))) {
        if (st == LOCUS_E_ARG) locus_fail(st, "%s: %s", batch->path, locus_errmsg());
        goto done;
    }
    if ((st = out_add(out, "loss", &out->loss, 1, 1, 0, 0, 0)) || (st = out_add(out, "pred", pred, 4, B, C, H, W)) ||
        (st = out_add(out, "noisy", noisy, 4, B, C, H, W)) || (st = out_add(out, "target", target, 4, B, C, H, W)) ||
        (st = out_add(out, "grad_input.sample", dx, 4, B, C, H, W)) ||
        (st = out_add(out, "grad_input.encoder_hidden_states", dctx, 3, B, S, d->ctx_dim, 0)) ||
        (P && (st = out_add(out, "grad_input.pooled_projections", dpool, 2, B, P, 0, 0))))
        goto done;
done:
    locus_free(x0); locus_free(noise); locus_free(ts); locus_free(ctx); locus_free(pooled); locus_free(noisy); locus_free(target);
    locus_free(pred); locus_free(dx); locus_free(dctx); locus_free(dpool);
    if (st) locus_grad_out_free(out);
    return st;
}

locus_status locus_grad_vae(const locus_vae *v, const locus_st_file *batch, int checkpoint, const locus_grads *g, locus_grad_out *out) {
    locus_status st = LOCUS_OK;
    int f = 1 << (v->nblocks - 1), Lc = v->latent_channels;
    int64_t sx[4], se[4], wx[4] = {-1, v->in_channels, -1, -1};
    float *x = NULL, *eps = NULL, *mean = NULL, *lv = NULL, *z = NULL, *rec = NULL, *drec = NULL, *dz = NULL, *dmean = NULL, *dlv = NULL, *dx = NULL;
    float kl[64];
    memset(out, 0, sizeof *out);
    if (!(x = batch_get(batch, "x", 4, wx, sx))) { st = LOCUS_E_NOTFOUND; goto done; }
    int B = (int)sx[0], H = (int)sx[2], W = (int)sx[3], h = H / f, w = W / f;
    int64_t we[4] = {B, Lc, h, w};
    if (!(eps = batch_get(batch, "eps", 4, we, se))) { st = LOCUS_E_NOTFOUND; goto done; }
    if (B > 64) { st = locus_fail(LOCUS_E_ARG, "grad: VAE batch of %d images (at most 64)", B); goto done; }
    size_t nl = (size_t)B * Lc * h * w, ni = (size_t)B * v->in_channels * H * W, no = (size_t)B * v->out_channels * H * W;
    if (no != ni) { st = locus_fail(LOCUS_E_SHAPE, "grad: VAE in_channels %d != out_channels %d", v->in_channels, v->out_channels); goto done; }
    mean = locus_alloc(nl * 4); lv = locus_alloc(nl * 4); z = locus_alloc(nl * 4); dz = locus_alloc(nl * 4);
    dmean = locus_alloc(nl * 4); dlv = locus_alloc(nl * 4);
    rec = locus_alloc(no * 4); drec = locus_alloc(no * 4); dx = locus_alloc(ni * 4);
    locus_vae_tape *te, *td;
    if ((st = locus_vae_encode_train(v, x, B, H, W, mean, lv, checkpoint, &te))) goto done;
    /* DiagonalGaussianDistribution.sample: z = mean + exp(0.5 logvar) * eps */
    for (size_t i = 0; i < nl; i++) z[i] = mean[i] + LOCUS_EXPF_1(0.5f * lv[i]) * eps[i];
    if ((st = locus_vae_decode_train(v, z, B, h, w, rec, checkpoint, &td))) { locus_vae_tape_free(te); goto done; }
    float mse = locus_mse_loss(rec, x, no, drec, 1.0f);
    /* kl = 0.5 * sum(mean^2 + var - 1 - logvar) per sample (double accumulation, fixed order) */
    size_t pl = nl / B;
    double klsum = 0;
    for (int b = 0; b < B; b++) {
        double acc = 0;
        for (size_t i = b * pl; i < (b + 1) * pl; i++) acc += (double)(mean[i] * mean[i] + LOCUS_EXPF_1(lv[i]) - 1.0f - lv[i]);
        kl[b] = (float)(0.5 * acc);
        klsum += kl[b];
    }
    const float kw = 1e-6f;
    out->loss = mse + kw * (float)(klsum / B);
    if ((st = locus_vae_decode_backward(v, td, drec, dz, g))) { locus_vae_tape_free(te); goto done; }
    float c = kw / (float)B; /* d(kw * mean_b kl_b) = c * (mean, 0.5 (exp(logvar) - 1)) */
    for (size_t i = 0; i < nl; i++) {
        float sd = LOCUS_EXPF_1(0.5f * lv[i]);
        dmean[i] = dz[i] + c * mean[i];
        dlv[i] = dz[i] * eps[i] * 0.5f * sd + c * 0.5f * (LOCUS_EXPF_1(lv[i]) - 1.0f);
    }
    if ((st = locus_vae_encode_backward(v, te, dmean, dlv, dx, g))) goto done;
    for (size_t i = 0; i < ni; i++) dx[i] -= drec[i]; /* x is also the regression target */
    if ((st = out_add(out, "loss", &out->loss, 1, 1, 0, 0, 0)) || (st = out_add(out, "pred", rec, 4, B, v->out_channels, H, W)) ||
        (st = out_add(out, "mean", mean, 4, B, Lc, h, w)) || (st = out_add(out, "logvar", lv, 4, B, Lc, h, w)) ||
        (st = out_add(out, "z", z, 4, B, Lc, h, w)) || (st = out_add(out, "kl", kl, 1, B, 0, 0, 0)) ||
        (st = out_add(out, "grad_input.sample", dx, 4, B, v->in_channels, H, W)))
        goto done;
done:
    locus_free(x); locus_free(eps); locus_free(mean); locus_free(lv); locus_free(z); locus_free(rec); locus_free(drec);
    locus_free(dz); locus_free(dmean); locus_free(dlv); locus_free(dx);
    if (st) locus_grad_out_free(out);
    return st;
}

/* ---- the command ---- */

static int gfail(const char *fmt, const char *a) {
    fprintf(stderr, "locus grad: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return 2;
}

static const locus_opt grad_opts[] = { /* the options locus_cmd_grad parses, for --help */
    LOCUS_OPT_HELP("--model", "DIR  component folder (unet/, vae/, transformer/) or pipeline folder (required)"),
    LOCUS_OPT_HELP("--batch", "FILE  the batch, a safetensors file (names optionally prefixed 'batch0.') (required)"),
    LOCUS_OPT_HELP("--dump", "OUT.safetensors  loss, pred, grad.<parameter>, grad_input.* (required)"),
    LOCUS_OPT_HELP("--component", "unet|vae|transformer  component of a pipeline folder (default unet, or transformer for SD3)"),
    LOCUS_OPT_HELP("--params", "PATTERN  comma-separated globs (* ? {a,b}) over diffusers names: the trainable parameters (default: all)"),
    LOCUS_OPT_HELP("--lora", "FILE  attach LoRA adapters (diffusers/PEFT/kohya keys); their factors become trainable (default: none)"),
    LOCUS_OPT_HELP("--scheduler", "DIR  scheduler folder with alphas_cumprod's config (default: scheduler/ beside the unet folder)"),
    LOCUS_OPT_HELP("--checkpoint", "re-run each block's forward in the backward: less memory, same bits (default: off)"),
    LOCUS_OPT_HELP("--threads", "N  threads (default: all cores; results do not change)"),
};
static const locus_help grad_help = {
    "grad", "--model DIR --batch FILE --dump OUT.safetensors [options]",
    "One training-loss evaluation and its backward: the loss, the prediction and every trainable parameter's gradient.",
    "The batch holds, per component:\n"
    "  unet: x0 [B,C,H,W], noise [B,C,H,W], timesteps [B], encoder_hidden_states [B,S,D]; loss = MSE of the\n"
    "        prediction against epsilon (or v) after DDPM noising with the scheduler's alphas_cumprod\n"
    "  vae:  x [B,3,H,W] in [-1,1], eps [B,L,H/f,W/f]; loss = MSE(decode(mean + exp(logvar/2) eps), x)\n"
    "        + 1e-6 * mean over the batch of the KL term\n"
    "  transformer (SD3/SD3.5): x0, noise [B,C,H,W], sigmas [B], encoder_hidden_states [B,S,D],\n"
    "        pooled_projections [B,P]; loss = MSE of the prediction against noise - x0 at (1 - sigma) x0 + sigma noise,\n"
    "        timestep sigma * 1000 (flow matching)\n"
    "OUT gets loss, pred, grad.<parameter> for every trainable parameter and grad_input.sample (+ .encoder_hidden_states,\n"
    ".pooled_projections).  With --lora the trainable parameters are the adapters' factors (grad.unet.<module>.lora.down.weight,\n"
    "... as locus writes LoRA files), plus the base parameters --params names.\n",
    NULL};

int locus_cmd_grad(int argc, char **argv) {
    const char *model = NULL, *batch = NULL, *comp = NULL, *lora = NULL, *dump = NULL, *params = NULL, *sched_dir = NULL;
    int checkpoint = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) { locus_help_print(stdout, &grad_help, grad_opts, sizeof grad_opts / sizeof *grad_opts, NULL, 0); return 0; }
        if (!strcmp(k, "--checkpoint")) { checkpoint = 1; continue; }
        if (i + 1 >= argc) return gfail("option %s needs a value (see locus grad --help)", k);
        const char *v = argv[++i];
        if (!strcmp(k, "--model")) model = v;
        else if (!strcmp(k, "--batch")) batch = v;
        else if (!strcmp(k, "--component")) comp = v;
        else if (!strcmp(k, "--lora")) lora = v;
        else if (!strcmp(k, "--dump")) dump = v;
        else if (!strcmp(k, "--params")) params = v;
        else if (!strcmp(k, "--scheduler")) sched_dir = v;
        else if (!strcmp(k, "--threads")) {
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || end == v || t < 1 || t > 1024) return gfail("--threads %s: expected a positive integer", v);
            threads = (int)t;
        } else return gfail("unknown option %s (see locus grad --help)", k);
    }
    if (!model || !batch || !dump) return gfail("%s", "--model DIR, --batch FILE and --dump OUT are required (see locus grad --help)");
    if (comp && strcmp(comp, "unet") && strcmp(comp, "vae") && strcmp(comp, "transformer"))
        return gfail("--component %s: expected unet, vae or transformer", comp);
    if (threads) locus_set_threads(threads);
    /* component folder: DIR itself (config.json) or DIR/<component> */
    char dir[4096], cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", model);
    const char *kind = comp;
    if (locus_is_file(cfg)) {
        snprintf(dir, sizeof dir, "%s", model);
        locus_json_doc doc;
        if (locus_json_parse_file(&doc, cfg)) return gfail("%s", locus_errmsg());
        int ok = 1;
        const char *cls = locus_json_str(doc.root, "_class_name", "", &ok);
        /* a VAE, or a denoiser (the registry checks the class when it opens the folder) */
        const char *k2 = !strcmp(cls, "AutoencoderKL") ? "vae" : "denoiser";
        if (kind && !strcmp(kind, "vae") != !strcmp(k2, "vae")) {
            fprintf(stderr, "locus grad: %s is a %s folder, not --component %s\n", model, cls, kind);
            locus_json_free(&doc);
            return 2;
        }
        kind = k2;
        locus_json_free(&doc);
    } else {
        if (!kind) { /* the pipeline's denoiser folder, as diffusers names it */
            snprintf(cfg, sizeof cfg, "%s/transformer/config.json", model);
            kind = locus_is_file(cfg) ? "transformer" : "unet";
        }
        snprintf(dir, sizeof dir, "%s/%s", model, kind);
        snprintf(cfg, sizeof cfg, "%s/config.json", dir);
        if (!locus_is_file(cfg)) { fprintf(stderr, "locus grad: %s has neither config.json nor a %s/ component folder\n", model, kind); return 2; }
    }
    if (lora && !strcmp(kind, "vae")) return gfail("--lora %s: LoRA adapters apply to the unet or transformer, not the VAE", lora);
    locus_st_file bf;
    if (locus_st_open(&bf, batch)) return gfail("%s", locus_errmsg());
    locus_loader_set_plain_weights(1); /* training layout; the bits are the same either way */
    locus_grads g;
    locus_grads_init(&g);
    locus_grad_out o;
    memset(&o, 0, sizeof o);
    locus_status st;
    const locus_loader *L;
    locus_denoiser den;
    locus_vae v;
    locus_scheduler s;
    locus_objective ob;
    locus_lora lo;
    int is_vae = !strcmp(kind, "vae"), has_sched = 0;
    memset(&den, 0, sizeof den); memset(&v, 0, sizeof v); memset(&s, 0, sizeof s); memset(&lo, 0, sizeof lo);
    if (!is_vae) {
        char sd[4200];
        if (sched_dir) snprintf(sd, sizeof sd, "%s", sched_dir);
        else snprintf(sd, sizeof sd, "%s/../scheduler", dir);
        st = locus_denoiser_open(&den, dir, NULL);
        if (!st && (sched_dir || locus_is_dir(sd))) { st = locus_scheduler_load(&s, sd); has_sched = !st; }
        if (!st) st = locus_objective_init(&ob, &den, has_sched ? &s : NULL);
        if (st) locus_denoiser_close(&den);
        L = den.loader;
    } else {
        st = locus_vae_load(&v, dir);
        L = &v.L;
    }
    int nt = 0;
    if (lora) { /* the adapters' factors are the trainable parameters (named as locus_lora_save writes them) */
        st = locus_lora_read(&lo, (locus_loader *)L, lora, 1.0f);
        for (int i = 0; !st && i < lo.n; i++) {
            char key[1200];
            int64_t sd[2] = {lo.e[i].ad.r, lo.e[i].in}, su[2] = {lo.e[i].out, lo.e[i].ad.r};
            locus_lora_key(&lo, i, 1, "", key, sizeof key);
            st = locus_grads_track(&g, key, lo.e[i].ad.down, 2, sd);
            locus_lora_key(&lo, i, 0, "", key, sizeof key);
            if (!st) st = locus_grads_track(&g, key, lo.e[i].ad.up, 2, su);
            nt += 2;
        }
    }
    if (!st && (!lora || params)) {
        int nb = 0;
        nb = is_vae ? locus_grads_track_loader(&g, L, params) : locus_denoiser_track_params(&den, &g, params);
        if (nb == 0) st = locus_fail(LOCUS_E_ARG, "--params '%s' matches no parameter of %s", params ? params : "", dir);
        else if (nb < 0) st = LOCUS_E_NOMEM;
        else nt += nb;
    }
    if (!st) st = is_vae ? locus_grad_vae(&v, &bf, checkpoint, &g, &o) : locus_grad_denoiser(&den, &ob, &bf, checkpoint, &g, &o);
    if (!st) { /* dump: outputs, then grad.<name> in load order */
        locus_st_writer *w = locus_st_writer_new();
        char nm[600];
        for (int i = 0; i < o.n && !st; i++) st = locus_st_writer_add(w, o.t[i].name, LOCUS_F32, o.t[i].ndim, o.t[i].shape, o.t[i].data);
        for (size_t i = 0; i < g.n && !st; i++) {
            snprintf(nm, sizeof nm, "grad.%s", g.e[i].name);
            st = locus_st_writer_add(w, nm, LOCUS_F32, g.e[i].ndim, g.e[i].shape, g.e[i].grad);
        }
        if (!st) {
            locus_st_writer_add_meta(w, "locus_version", LOCUS_VERSION);
            locus_st_writer_add_meta(w, "isa", locus_isa_name());
            locus_st_writer_add_meta(w, "model", dir);
            locus_st_writer_add_meta(w, "component", kind);
            st = locus_st_writer_save(w, dump);
        }
        locus_st_writer_free(w);
        if (!st) printf("loss %.9g; %d parameter gradients (%s) -> %s\n", o.loss, nt, kind, dump);
    }
    int rc = 0;
    if (st) rc = gfail("%s", locus_errmsg());
    locus_grad_out_free(&o);
    locus_grads_free(&g);
    locus_lora_free(&lo);
    if (is_vae) locus_vae_free(&v);
    else locus_denoiser_close(&den);
    if (has_sched) locus_scheduler_free(&s);
    locus_st_close(&bf);
    return rc;
}
