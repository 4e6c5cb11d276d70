/* train_data.c — `locus train-lora --data DIR`: an image folder with metadata.jsonl ({"file_name", "text"} per
 * line) turned into training batches, as diffusers' train_text_to_image(_lora) scripts do.
 *
 * Up front, with the pipeline's own VAE and text encoder(s): every image (PNG) is resized so its shorter side
 * is the training resolution (bilinear, half-pixel centres, no antialiasing — PIL's antialiased resize differs
 * when downscaling a lot), center-cropped (torchvision's rounding), scaled to [-1, 1] and encoded to its latent
 * posterior (mean, std = exp(logvar / 2)); every distinct caption is encoded once.  Per micro-batch, from one
 * torch-compatible generator (whose position the checkpoints keep): latents = (mean + std * randn - shift) *
 * scaling, noise = randn, and UNet timesteps = randint(0, N) (torch's random() % N) or SD3 sigmas from
 * logit-normal u = sigmoid(randn): index = (long)(u * N) into the flow-matching schedule.  The example order is
 * a Fisher-Yates permutation per epoch from a generator seeded by (seed, epoch), so any step's examples are
 * known without replaying earlier steps.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/png.h"
#include "../simd/sleef_names.h"
#include "run.h"
#include "train_lora.h"

void locus_train_data_free(locus_train_data *d) {
    free(d->mean); free(d->std); free(d->prompt); free(d->ctx); free(d->pooled);
    memset(d, 0, sizeof *d);
}

/* u8 RGB [h][w][3] -> [3,R,R] in [-1,1]: shorter side resized to R (bilinear), center crop. */
static void preprocess(const uint8_t *pix, int w, int h, int R, float *out) {
    int ow = w <= h ? R : (int)((double)R * w / h), oh = h <= w ? R : (int)((double)R * h / w);
    int top = (int)lround((oh - R) / 2.0), left = (int)lround((ow - R) / 2.0);
    float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
    for (int y = 0; y < R; y++) {
        float fy = ((float)(y + top) + 0.5f) * sy - 0.5f;
        if (fy < 0) fy = 0;
        int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        float wy = fy - (float)y0;
        for (int x = 0; x < R; x++) {
            float fx = ((float)(x + left) + 0.5f) * sx - 0.5f;
            if (fx < 0) fx = 0;
            int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            float wx = fx - (float)x0;
            for (int c = 0; c < 3; c++) {
                float a = pix[((size_t)y0 * w + x0) * 3 + c], b = pix[((size_t)y0 * w + x1) * 3 + c];
                float cc = pix[((size_t)y1 * w + x0) * 3 + c], dd = pix[((size_t)y1 * w + x1) * 3 + c];
                float top_ = a + (b - a) * wx, bot = cc + (dd - cc) * wx;
                float v = (top_ + (bot - top_) * wy) / 255.0f;
                out[(size_t)c * R * R + (size_t)y * R + x] = (v - 0.5f) / 0.5f;
            }
        }
    }
}

locus_status locus_train_data_load(locus_train_data *d, const char *model_dir, const char *data_dir, int resolution, int max_seq) {
    memset(d, 0, sizeof *d);
    char path[4200];
    snprintf(path, sizeof path, "%s/metadata.jsonl", data_dir);
    char *text;
    size_t len;
    locus_status st = locus_read_file(path, &text, &len);
    if (st == LOCUS_E_NOTFOUND) return locus_fail(st, "--data %s: no metadata.jsonl (one {\"file_name\": ..., \"text\": ...} per line)", data_dir);
    if (st) return st;
    locus_pipeline p;
    if ((st = locus_pipeline_open(&p, model_dir))) { free(text); return st; }
    char **caps = NULL;
    float *img = NULL, *lv = NULL;
    int f = p.vae_factor, pooled = p.den.pooled_dim > 0;
    int R = resolution > 0 ? resolution : p.den.sample_size * f;
    if (R % f || R < f) { st = locus_fail(LOCUS_E_ARG, "--resolution %d is not a positive multiple of the VAE factor %d", R, f); goto done; }
    d->C = p.vae.latent_channels;
    d->h = d->w = R / f;
    d->scaling = p.vae.scaling_factor;
    d->shift = p.vae.shift_factor;
    d->D = p.den.ctx_dim;
    d->S = locus_pipeline_text_tokens(&p, max_seq);
    d->P = p.den.pooled_dim;
    size_t lat = (size_t)d->C * d->h * d->w;
    img = malloc((size_t)3 * R * R * sizeof(float)); /* [1,3,R,R] preprocessed image */
    lv = malloc(lat * sizeof(float));                /* [1,C,h,w] posterior log-variance */
    if (!img || !lv) { st = locus_fail(LOCUS_E_NOMEM, "out of memory"); goto done; }
    int line = 0;
    for (char *s = text, *nl; !st && s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl) *nl = 0;
        line++;
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!*s) continue;
        locus_json_doc doc;
        if (locus_json_parse(&doc, s, strlen(s), "metadata.jsonl")) {
            st = locus_fail(LOCUS_E_FORMAT, "%s:%d: %s", path, line, locus_errmsg());
            break;
        }
        const char *fn = locus_json_str(doc.root, "file_name", NULL, NULL), *cap = locus_json_str(doc.root, "text", NULL, NULL);
        if (!fn || !cap) { locus_json_free(&doc); st = locus_fail(LOCUS_E_FORMAT, "%s:%d: needs string fields file_name and text", path, line); break; }
        char ip[4400];
        snprintf(ip, sizeof ip, "%s/%s", data_dir, fn);
        uint8_t *pix = NULL;
        int w, h;
        if (locus_png_read_rgb(ip, &pix, &w, &h)) {
            st = locus_fail(LOCUS_E_FORMAT, "%s:%d: cannot read image %s (PNG only): %s", path, line, ip, locus_errmsg());
            locus_json_free(&doc);
            break;
        }
        float *nm = realloc(d->mean, (d->n + 1) * lat * sizeof(float)), *ns = nm ? realloc(d->std, (d->n + 1) * lat * sizeof(float)) : NULL;
        int *npr = ns ? realloc(d->prompt, (d->n + 1) * sizeof(int)) : NULL;
        if (nm) d->mean = nm;
        if (ns) d->std = ns;
        if (npr) d->prompt = npr;
        if (!npr) { free(pix); locus_json_free(&doc); st = locus_fail(LOCUS_E_NOMEM, "out of memory"); break; }
        preprocess(pix, w, h, R, img);
        free(pix);
        float *mu = d->mean + d->n * lat, *sd = d->std + d->n * lat;
        locus_vae_encode(&p.vae, img, 1, R, R, mu, lv, NULL);
        for (size_t k = 0; k < lat; k++) sd[k] = LOCUS_EXPF_1(0.5f * lv[k]);
        int pi = -1;
        for (int k = 0; k < d->nprompts && pi < 0; k++)
            if (!strcmp(caps[k], cap)) pi = k;
        if (pi < 0) {
            char **nc = realloc(caps, (d->nprompts + 1) * sizeof *nc);
            float *ncx = nc ? realloc(d->ctx, (size_t)(d->nprompts + 1) * d->S * d->D * sizeof(float)) : NULL;
            float *npo = ncx && pooled ? realloc(d->pooled, (size_t)(d->nprompts + 1) * d->P * sizeof(float)) : NULL;
            if (nc) caps = nc;
            if (ncx) d->ctx = ncx;
            if (npo) d->pooled = npo;
            if (!ncx || (pooled && !npo)) { locus_json_free(&doc); st = locus_fail(LOCUS_E_NOMEM, "out of memory"); break; }
            locus_embeds e;
            if ((st = locus_embeds_encode(&p, cap, NULL, 0, max_seq, &e))) { locus_json_free(&doc); st = locus_fail(st, "%s:%d: %s", path, line, locus_errmsg()); break; }
            if (e.T != d->S) st = locus_fail(LOCUS_E_SHAPE, "%s:%d: text embeddings of %d tokens, expected %d", path, line, e.T, d->S);
            else {
                memcpy(d->ctx + (size_t)d->nprompts * d->S * d->D, e.cond, (size_t)d->S * d->D * sizeof(float));
                if (pooled) memcpy(d->pooled + (size_t)d->nprompts * d->P, e.cond_pooled, (size_t)d->P * sizeof(float));
                /* per-run conditioning the pipeline fills (SDXL's size numbers: original = target = R x R, crop 0,0) */
                if (pooled) locus_pipeline_size_cond(&p, R, R, d->pooled + (size_t)d->nprompts * d->P + d->P - p.den.pooled_extra);
            }
            locus_embeds_free(&e);
            caps[d->nprompts] = strdup(cap);
            pi = d->nprompts++;
        }
        d->prompt[d->n++] = pi;
        locus_json_free(&doc);
    }
    if (!st && d->n == 0) st = locus_fail(LOCUS_E_FORMAT, "%s: no examples", path);
done:
    for (int k = 0; k < d->nprompts; k++) free(caps[k]);
    free(caps);
    free(img);
    free(lv);
    free(text);
    locus_pipeline_close(&p);
    if (st) locus_train_data_free(d);
    return st;
}

/* Example at position i of the endless sequence of epochs (declared in train_lora.h; train_model.h reuses it). */
int locus_train_example_at(int n, int64_t i, uint64_t seed, int *perm, int64_t *perm_epoch) {
    int64_t e = i / n;
    if (*perm_epoch != e) {
        locus_mt19937 g;
        locus_mt19937_seed(&g, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(e + 1)));
        for (int k = 0; k < n; k++) perm[k] = k;
        for (int k = n - 1; k > 0; k--) {
            int j = (int)(locus_mt19937_next(&g) % (uint32_t)(k + 1)), t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
        *perm_epoch = e;
    }
    return perm[i % n];
}

locus_status locus_train_data_batch(const locus_train_data *d, const locus_train_model *m, int64_t first, int B, uint64_t seed,
                                    locus_mt19937 *g, locus_train_batch *b) {
    memset(b, 0, sizeof *b);
    size_t lat = (size_t)d->C * d->h * d->w;
    b->B = B; b->C = d->C; b->H = d->h; b->W = d->w; b->S = d->S; b->D = d->D; b->P = d->P;
    b->x0 = malloc(B * lat * sizeof(float));
    b->noise = malloc(B * lat * sizeof(float));
    b->t = malloc(B * sizeof(float));
    b->ctx = malloc((size_t)B * d->S * d->D * sizeof(float));
    if (d->P) b->pooled = malloc((size_t)B * d->P * sizeof(float));
    if (m->flow) b->sigmas = malloc(B * sizeof(float));
    else b->tint = malloc(B * sizeof(int64_t));
    int *perm = malloc((size_t)d->n * sizeof(int));
    if (!b->x0 || !b->noise || !b->t || !b->ctx || (d->P && !b->pooled) || (m->flow ? !b->sigmas : !b->tint) || !perm) {
        free(perm);
        locus_train_batch_free(b);
        return locus_fail(LOCUS_E_NOMEM, "out of memory");
    }
    int64_t pe = -1;
    locus_randn_gen(g, b->x0, B * lat); /* latent_dist.sample() draws first */
    for (int i = 0; i < B; i++) {
        int ex = locus_train_example_at(d->n, first + i, seed, perm, &pe);
        const float *mu = d->mean + ex * lat, *sd = d->std + ex * lat;
        float *x = b->x0 + i * lat;
        for (size_t k = 0; k < lat; k++) x[k] = ((mu[k] + sd[k] * x[k]) - d->shift) * d->scaling;
        memcpy(b->ctx + (size_t)i * d->S * d->D, d->ctx + (size_t)d->prompt[ex] * d->S * d->D, (size_t)d->S * d->D * sizeof(float));
        if (d->P) memcpy(b->pooled + (size_t)i * d->P, d->pooled + (size_t)d->prompt[ex] * d->P, (size_t)d->P * sizeof(float));
    }
    free(perm);
    locus_randn_gen(g, b->noise, B * lat);
    int N = m->sched.num_train;
    if (m->flow) { /* logit-normal sigmas (mean 0, std 1) through the scheduler's shift, as diffusers' SD3 scripts */
        float u[64];
        for (int i0 = 0; i0 < B; i0 += 64) {
            int nb = B - i0 < 64 ? B - i0 : 64;
            locus_randn_gen(g, u, (size_t)nb);
            for (int i = 0; i < nb; i++) {
                float s = 1.0f / (1.0f + LOCUS_EXPF_1(-u[i]));
                int idx = (int)(s * (float)N);
                if (idx >= N) idx = N - 1;
                float sg = (float)(N - idx) / (float)N, sh = m->sched.shift;
                sg = sh * sg / (1.0f + (sh - 1.0f) * sg);
                b->sigmas[i0 + i] = sg;
                b->t[i0 + i] = sg * (float)N;
            }
        }
    } else
        for (int i = 0; i < B; i++) {
            b->tint[i] = (int64_t)(locus_mt19937_next(g) % (uint32_t)N);
            b->t[i] = (float)b->tint[i];
        }
    return LOCUS_OK;
}
