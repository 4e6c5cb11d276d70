/* test_grad_fd.c — the hand-written backward on configurations the torch-autograd goldens do not cover
 * (linear projections, only-cross attention, several transformer layers, F.pad downsampling, 3 blocks; a VAE
 * without quant convs), checked by directional finite differences per module group.  Split from
 * test_grad.c (the golden comparisons), whose helpers it does not share. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../experiments/grad.h"
#include "../models/nn_bwd.h"
#include "../models/unet_bwd.h"
#include "../models/vae_bwd.h"
#include "../simd/ops.h"
#include "parity.h"
#include "testutil.h"
/* ---- configurations the goldens do not cover, by directional finite differences ----
 * For a linear loss L = <R, output> the backward gives, for each group of parameters (a top-level module:
 * conv_in, time_embedding, down_blocks.N, mid_block, up_blocks.N, ...) and each input, the directional
 * derivative D = <grad, r> along a random direction r.  The fp32 forward's central differences
 * fd(h) = (L(+h r) - L(-h r)) / 2h at h = 1e-3 and 5e-4, Richardson-extrapolated ((4 fd(h/2) - fd(h)) / 3,
 * which cancels the h^2 term), must agree with D within 1e-3 |D| + 1e-4 |D_all| (rounding noise of the
 * forward is ~5e-5 |D_all|); a missing or wrong path in one module is a large error in its group. */

static double dotd(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* group key of a parameter name: "down_blocks.1", "mid_block", "conv_in", "decoder.up_blocks.0", ... */
static void group_key(const char *name, char *key, size_t n) {
    int dots = !strncmp(name, "encoder.", 8) || !strncmp(name, "decoder.", 8);
    const char *p = name + (dots ? 8 : 0);
    if (!strncmp(p, "down_blocks.", 12) || !strncmp(p, "up_blocks.", 10)) dots++;
    const char *e = name;
    for (int d = 0; d <= dots && e; d++) { e = strchr(e, '.'); if (e && d < dots) e++; }
    size_t len = e ? (size_t)(e - name) : strlen(name);
    snprintf(key, n, "%.*s", (int)(len < n - 1 ? len : n - 1), name);
}

typedef void (*fwd_fn)(void *ctx, float *out);

/* moves parameter group `grp` (or input -grp-1) by h along r */
static void nudge(locus_loader *L, const int *gid, float **in, const size_t *nin, int nins, const float *r, int grp, float h) {
    size_t o = 0;
    for (size_t i = 0; i < L->nrec; i++) {
        if (gid[i] == grp) for (size_t k = 0; k < L->params[i].numel; k++) L->params[i].data[k] += h * r[o + k];
        o += L->params[i].numel;
    }
    for (int j = 0; j < nins; j++) {
        if (grp == -j - 1) for (size_t k = 0; k < nin[j]; k++) in[j][k] += h * r[o + k];
        o += nin[j];
    }
}

static double fd_at(locus_loader *L, const int *gid, float **in, const size_t *nin, int nins, const float *r, int grp, float h,
                    fwd_fn fwd, void *ctx, const float *R, float *out, size_t nout) {
    double l[2];
    for (int sg = 0; sg < 2; sg++) {
        nudge(L, gid, in, nin, nins, r, grp, sg ? -h : h);
        fwd(ctx, out);
        l[sg] = dotd(R, out, nout);
        nudge(L, gid, in, nin, nins, r, grp, sg ? h : -h);
    }
    return (l[0] - l[1]) / (2.0 * h);
}

static void fd_groups(const char *what, locus_loader *L, const locus_grads *g, float **in, float *const *din, const size_t *nin,
                      const char *const *in_names, int nins, const float *r, fwd_fn fwd, void *ctx, const float *R, float *out,
                      size_t nout) {
    int *gid = malloc(L->nrec * sizeof *gid), ng = 0;
    char keys[64][96], k[96];
    for (size_t i = 0; i < L->nrec; i++) {
        group_key(L->params[i].name, k, sizeof k);
        int j = 0;
        while (j < ng && strcmp(keys[j], k)) j++;
        if (j == ng && ng < 64) snprintf(keys[ng++], 96, "%s", k);
        gid[i] = j;
    }
    double D[72] = {0}, Dall = 0;
    size_t o = 0;
    for (size_t i = 0; i < L->nrec; i++) {
        const float *gr = locus_grads_of(g, L->params[i].data);
        if (gr) D[gid[i]] += dotd(gr, r + o, L->params[i].numel);
        o += L->params[i].numel;
    }
    for (int j = 0; j < nins; j++) { D[ng + j] = dotd(din[j], r + o, nin[j]); o += nin[j]; }
    for (int j = 0; j < ng + nins; j++) Dall += fabs(D[j]);
    double worst = 0;
    char wname[96] = "";
    int bad = 0;
    for (int j = 0; j < ng + nins; j++) {
        int grp = j < ng ? j : -(j - ng) - 1;
        double f1 = fd_at(L, gid, in, nin, nins, r, grp, 1e-3f, fwd, ctx, R, out, nout);
        double f2 = fd_at(L, gid, in, nin, nins, r, grp, 5e-4f, fwd, ctx, R, out, nout);
        double fd = (4 * f2 - f1) / 3, err = fabs(fd - D[j]), tol = 1e-3 * fabs(D[j]) + 1e-4 * Dall;
        const char *nm = j < ng ? keys[j] : in_names[j - ng];
        if (getenv("LOCUS_VERBOSE")) printf("  %-28s D %12.6g  fd %12.6g  err/tol %.2f\n", nm, D[j], fd, err / tol);
        if (err / tol > worst) { worst = err / tol; snprintf(wname, sizeof wname, "%s", nm); }
        if (err > tol) { bad++; CHECK(0, "%s: group %s: backward %.6g, finite difference %.6g", what, nm, D[j], fd); }
    }
    printf("%s: %d parameter groups + %d inputs checked by finite differences, worst error/tolerance %.2f (%s)\n", what, ng, nins, worst, wname);
    CHECK(!bad && ng > 3, "%s: directional derivatives agree with finite differences", what);
    free(gid);
}

static const char *UNET_VARIANT =
    "{\"_class_name\": \"UNet2DConditionModel\", \"block_out_channels\": [16, 24, 32], \"layers_per_block\": 2,"
    " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\", \"CrossAttnDownBlock2D\"],"
    " \"up_block_types\": [\"CrossAttnUpBlock2D\", \"UpBlock2D\", \"CrossAttnUpBlock2D\"], \"attention_head_dim\": [2, 4, 4],"
    " \"transformer_layers_per_block\": [2, 1, 1], \"use_linear_projection\": true, \"only_cross_attention\": [true, false, false],"
    " \"downsample_padding\": 0, \"cross_attention_dim\": 24, \"norm_num_groups\": 8, \"in_channels\": 4, \"out_channels\": 4}";

typedef struct { const locus_unet *u; const float *x, *ts, *ctx; int B, H, W, S; } unet_fwd_ctx;
static void unet_fwd(void *c, float *out) {
    unet_fwd_ctx *f = c;
    locus_unet_forward(f->u, f->x, f->B, f->H, f->W, f->ts, f->ctx, f->S, out, NULL);
}

static void test_fd_unet(void) {
    const char *cfg = "/tmp/locus_test_grad_unet_variant.json";
    FILE *f = fopen(cfg, "w");
    if (!f) { CHECK(0, "cannot write %s", cfg); return; }
    fputs(UNET_VARIANT, f);
    fclose(f);
    locus_loader_set_plain_weights(1);
    locus_unet u;
    locus_status st = locus_unet_load_random(&u, cfg, 7);
    remove(cfg);
    if (st) { CHECK(0, "variant unet: %s", locus_errmsg()); locus_loader_set_plain_weights(0); return; }
    int B = 2, H = 8, W = 12, S = 5;
    size_t nx = (size_t)B * 4 * H * W, nc = (size_t)B * S * 24, np = 0;
    for (size_t i = 0; i < u.L.nrec; i++) np += u.L.params[i].numel;
    float *x = malloc(nx * 4), *ctx = malloc(nc * 4), *R = malloc(nx * 4), *y = malloc(nx * 4), *dx = malloc(nx * 4), *dc = malloc(nc * 4);
    float *r = malloc((np + nx + nc) * 4), ts[2] = {37, 810};
    t_fill(x, nx, 1, -1, 1); t_fill(ctx, nc, 2, -1, 1); t_fill(R, nx, 3, -1, 1); t_fill(r, np + nx + nc, 4, -1, 1);
    locus_grads g;
    locus_grads_init(&g);
    locus_grads_track_loader(&g, &u.L, NULL);
    locus_unet_tape *tape;
    if (locus_unet_forward_train(&u, x, B, H, W, ts, ctx, S, y, 1, &tape)) CHECK(0, "%s", locus_errmsg());
    else {
        locus_unet_backward(&u, tape, R, dx, dc, &g); /* dL/dy = R */
        float *in[2] = {x, ctx}, *din[2] = {dx, dc};
        size_t nin[2] = {nx, nc};
        const char *names[2] = {"sample", "encoder_hidden_states"};
        unet_fwd_ctx fc = {&u, x, ts, ctx, B, H, W, S};
        fd_groups("unet variant (linear proj, only-cross, 2 transformer layers, 3 blocks, pad 0)", &u.L, &g, in, din, nin, names, 2, r,
                  unet_fwd, &fc, R, y, nx);
    }
    locus_grads_free(&g);
    free(x); free(ctx); free(R); free(y); free(dx); free(dc); free(r);
    locus_unet_free(&u);
    locus_loader_set_plain_weights(0);
}

static const char *VAE_VARIANT =
    "{\"_class_name\": \"AutoencoderKL\", \"block_out_channels\": [8, 16, 16], \"layers_per_block\": 2, \"norm_num_groups\": 4,"
    " \"latent_channels\": 4, \"in_channels\": 3, \"out_channels\": 3, \"use_quant_conv\": false, \"use_post_quant_conv\": false}";

typedef struct { const locus_vae *v; const float *z; int B, h, w; } vae_fwd_ctx;
static void vae_fwd(void *c, float *out) {
    vae_fwd_ctx *f = c;
    locus_vae_decode(f->v, f->z, f->B, f->h, f->w, out, NULL);
}

static void test_fd_vae(void) {
    const char *cfg = "/tmp/locus_test_grad_vae_variant.json";
    FILE *f = fopen(cfg, "w");
    if (!f) { CHECK(0, "cannot write %s", cfg); return; }
    fputs(VAE_VARIANT, f);
    fclose(f);
    locus_loader_set_plain_weights(1);
    locus_vae v;
    locus_status st = locus_vae_load_random(&v, cfg, 9);
    remove(cfg);
    if (st) { CHECK(0, "variant vae: %s", locus_errmsg()); locus_loader_set_plain_weights(0); return; }
    /* random-weight mode loads the decoder only: 3 up blocks of 3 resnets, mid block with attention */
    int B = 2, h = 4, w = 6, H = 16, W = 24;
    size_t nz = (size_t)B * 4 * h * w, ni = (size_t)B * 3 * H * W, np = 0;
    for (size_t i = 0; i < v.L.nrec; i++) np += v.L.params[i].numel;
    float *z = malloc(nz * 4), *R = malloc(ni * 4), *img = malloc(ni * 4), *dz = malloc(nz * 4), *r = malloc((np + nz) * 4);
    t_fill(z, nz, 5, -1, 1); t_fill(R, ni, 6, -1, 1); t_fill(r, np + nz, 7, -1, 1);
    locus_grads g;
    locus_grads_init(&g);
    locus_grads_track_loader(&g, &v.L, NULL);
    locus_vae_tape *tape;
    if (locus_vae_decode_train(&v, z, B, h, w, img, 0, &tape)) CHECK(0, "%s", locus_errmsg());
    else {
        locus_vae_decode_backward(&v, tape, R, dz, &g);
        float *in[1] = {z}, *din[1] = {dz};
        size_t nin[1] = {nz};
        const char *names[1] = {"z"};
        vae_fwd_ctx fc = {&v, z, B, h, w};
        fd_groups("vae decoder variant (3 blocks, 2 layers, no quant convs)", &v.L, &g, in, din, nin, names, 1, r, vae_fwd, &fc, R, img, ni);
    }
    locus_grads_free(&g);
    free(z); free(R); free(img); free(dz); free(r);
    locus_vae_free(&v);
    locus_loader_set_plain_weights(0);
}

int main(void) {
    test_fd_unet();
    test_fd_vae();
    return t_finish("test_grad_fd");
}
