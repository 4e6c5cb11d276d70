/* vae.c — AutoencoderKL encoder/decoder (see vae.h). */
#include "vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

static float *talloc(size_t n) { return locus_alloc_act(n * sizeof(float), "VAE activations"); }
static locus_status locus_vae_load_build(locus_vae *v, const char *dir);

static void mid_load(locus_loader *L, vae_mid *m, int C, int groups, int attn, const char *prefix) {
    char n[256];
    snprintf(n, sizeof n, "%s.mid_block.resnets.0", prefix); nn_resnet_load(L, &m->res[0], C, C, 0, groups, 1e-6f, n);
    m->has_attn = attn;
    if (attn) {
        snprintf(n, sizeof n, "%s.mid_block.attentions.0.group_norm", prefix); nn_gnorm_load(L, &m->attn_norm, C, groups, 1e-6f, n);
        snprintf(n, sizeof n, "%s.mid_block.attentions.0", prefix); nn_attention_load(L, &m->attn, C, C, 1, C, 1, n);
    }
    snprintf(n, sizeof n, "%s.mid_block.resnets.1", prefix); nn_resnet_load(L, &m->res[1], C, C, 0, groups, 1e-6f, n);
}

/* Attention block of the VAE mid block: x + to_out(attn(group_norm(x))) over the HW tokens, one head */
static void mid_attn_fwd(const vae_mid *m, const float *x, int B, int C, int H, int W, float *y, const locus_hooks *hooks,
                         const char *name) {
    int HW = H * W;
    float *t = talloc((size_t)B * C * HW), *s = talloc((size_t)B * C * HW), *o = talloc((size_t)B * C * HW);
    nn_gnorm_fwd(&m->attn_norm, x, B, HW, t, LOCUS_ACT_NONE);
    for (int b = 0; b < B; b++) /* (C,HW) -> (HW,C) */
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) s[((size_t)b * HW + i) * C + c] = t[((size_t)b * C + c) * HW + i];
    nn_attention_fwd(&m->attn, s, B, HW, s, HW, o, NULL, name);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) t[((size_t)b * C + c) * HW + i] = o[((size_t)b * HW + i) * C + c];
    locus_binary(t, x, y, (size_t)B * C * HW, LOCUS_BIN_ADD, 0.0f);
    locus_hook(hooks, name, y, 4, B, C, H, W);
    locus_free(t); locus_free(s); locus_free(o);
}

static void mid_fwd(const vae_mid *m, float *h, int B, int C, int H, int W, const locus_hooks *hooks, const char *prefix) {
    char n[256];
    size_t N = (size_t)B * C * H * W;
    float *t = talloc(N);
    nn_resnet_fwd(&m->res[0], h, B, H, W, NULL, t);
    if (m->has_attn) {
        snprintf(n, sizeof n, "%s.mid_block.attentions.0", prefix);
        mid_attn_fwd(m, t, B, C, H, W, t, hooks, n);
    }
    nn_resnet_fwd(&m->res[1], t, B, H, W, NULL, h);
    snprintf(n, sizeof n, "%s.mid_block", prefix);
    locus_hook(hooks, n, h, 4, B, C, H, W);
    locus_free(t);
}

locus_status locus_vae_load(locus_vae *v, const char *dir) {
    memset(v, 0, sizeof *v);
    locus_status st = locus_loader_open(&v->L, dir);
    if (st) return st;
    return locus_vae_load_build(v, dir);
}

locus_status locus_vae_load_random(locus_vae *v, const char *config_path, uint64_t seed) {
    memset(v, 0, sizeof *v);
    locus_status st = locus_loader_open_random(&v->L, config_path, seed);
    if (st) return st;
    return locus_vae_load_build(v, config_path);
}

static locus_status locus_vae_load_build(locus_vae *v, const char *dir) {
    locus_status st;
    locus_loader *L = &v->L;
    const char *cls = locus_cfg_str(L, "_class_name", "AutoencoderKL");
    if (strcmp(cls, "AutoencoderKL") != 0)
        locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: _class_name '%s' is not an AutoencoderKL", dir, cls);
    /* the schema: bounded sizes, channels divisible by the groups */
    v->in_channels = (int)locus_cfg_int_in(L, "in_channels", 3, 1, 64);
    v->out_channels = (int)locus_cfg_int_in(L, "out_channels", 3, 1, 64);
    v->latent_channels = (int)locus_cfg_int_in(L, "latent_channels", 4, 1, 4096);
    v->layers = (int)locus_cfg_int_in(L, "layers_per_block", 1, 1, 64);
    v->groups = (int)locus_cfg_int_in(L, "norm_num_groups", 32, 1, 16384);
    v->scaling_factor = (float)locus_cfg_num_in(L, "scaling_factor", 0.18215, 1e-30, 1e30);
    v->shift_factor = (float)locus_cfg_num_in(L, "shift_factor", 0.0, -1e30, 1e30);
    v->use_quant_conv = locus_cfg_bool(L, "use_quant_conv", 1);
    v->use_post_quant_conv = locus_cfg_bool(L, "use_post_quant_conv", 1);
    int attn = locus_cfg_bool(L, "mid_block_add_attention", 1);
    if (strcmp(locus_cfg_str(L, "act_fn", "silu"), "silu") != 0)
        locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: act_fn other than silu is not supported", dir);
    int64_t bo[VAE_MAX_BLOCKS];
    const locus_json *boj = locus_json_get(L->config.root, "block_out_channels");
    v->nblocks = boj && boj->type == JSON_ARRAY ? (int)boj->len : 0;
    if (!locus_cfg_require(L, v->nblocks >= 1 && v->nblocks <= VAE_MAX_BLOCKS, "'block_out_channels' should be a list of 1 to %d channel counts", VAE_MAX_BLOCKS))
        v->nblocks = 0;
    else
        locus_cfg_ints_in(L, "block_out_channels", bo, v->nblocks, 1, 16384);
    for (int i = 0; i < v->nblocks; i++) v->block_out[i] = (int)bo[i];
    for (int i = 0; i < v->nblocks && !L->status; i++)
        locus_cfg_require(L, v->block_out[i] % v->groups == 0, "'norm_num_groups' %d does not divide block_out_channels[%d] = %d", v->groups, i, v->block_out[i]);
    if (L->status) {
        locus_status st0 = locus_loader_status(L);
        locus_vae_free(v); /* cleanup keeps the thread's error message */
        return st0;
    }
    int Lc = v->latent_channels, G = v->groups, nb = v->nblocks;
    char n[256];
    /* decoder */
    if (v->use_post_quant_conv) nn_conv_load(L, &v->post_quant_conv, Lc, Lc, 1, 1, 0, "post_quant_conv");
    vae_coder *d = &v->dec;
    d->present = 1;
    int top = v->block_out[nb - 1];
    nn_conv_load(L, &d->conv_in, Lc, top, 3, 1, 1, "decoder.conv_in");
    mid_load(L, &d->mid, top, G, attn, "decoder");
    int prev = top;
    for (int i = 0; i < nb && !L->status; i++) {
        int oc = v->block_out[nb - 1 - i];
        d->cout[i] = oc;
        d->res[i] = calloc((size_t)v->layers + 1, sizeof(nn_resnet));
        if (!d->res[i]) { locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory building the VAE"); break; }
        for (int j = 0; j < v->layers + 1; j++) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.resnets.%d", i, j);
            nn_resnet_load(L, &d->res[i][j], j == 0 ? prev : oc, oc, 0, G, 1e-6f, n);
        }
        d->has_sample[i] = i < nb - 1;
        if (d->has_sample[i]) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            nn_conv_load(L, &d->sample[i], oc, oc, 3, 1, 1, n);
        }
        prev = oc;
    }
    nn_gnorm_load(L, &d->norm_out, v->block_out[0], G, 1e-6f, "decoder.conv_norm_out");
    nn_conv_load(L, &d->conv_out, v->block_out[0], v->out_channels, 3, 1, 1, "decoder.conv_out");
    /* encoder (optional: some published VAEs ship decoder weights only) */
    if (!L->status && (L->random || locus_st_set_find(&L->st, "encoder.conv_in.weight"))) { /* random weights: both halves (training) */
        vae_coder *e = &v->enc;
        e->present = 1;
        nn_conv_load(L, &e->conv_in, v->in_channels, v->block_out[0], 3, 1, 1, "encoder.conv_in");
        prev = v->block_out[0];
        for (int i = 0; i < nb && !L->status; i++) {
            int oc = v->block_out[i];
            e->cout[i] = oc;
            e->res[i] = calloc((size_t)v->layers, sizeof(nn_resnet));
            if (!e->res[i]) { locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory building the VAE"); break; }
            for (int j = 0; j < v->layers; j++) {
                snprintf(n, sizeof n, "encoder.down_blocks.%d.resnets.%d", i, j);
                nn_resnet_load(L, &e->res[i][j], j == 0 ? prev : oc, oc, 0, G, 1e-6f, n);
            }
            e->has_sample[i] = i < nb - 1;
            if (e->has_sample[i]) {
                snprintf(n, sizeof n, "encoder.down_blocks.%d.downsamplers.0.conv", i);
                nn_conv_load(L, &e->sample[i], oc, oc, 3, 2, 0, n);
            }
            prev = oc;
        }
        mid_load(L, &e->mid, top, G, attn, "encoder");
        nn_gnorm_load(L, &e->norm_out, top, G, 1e-6f, "encoder.conv_norm_out");
        nn_conv_load(L, &e->conv_out, top, 2 * Lc, 3, 1, 1, "encoder.conv_out");
        if (v->use_quant_conv) nn_conv_load(L, &v->quant_conv, 2 * Lc, 2 * Lc, 1, 1, 0, "quant_conv");
    }
    locus_loader_allow_unused(L, "quant_conv."); /* used by the encoder only */
    locus_loader_check_unused(L);
    st = locus_loader_status(L);
    if (st) locus_vae_free(v); /* cleanup keeps the thread's error message */
    return st;
}

void locus_vae_free(locus_vae *v) {
    for (int i = 0; i < VAE_MAX_BLOCKS; i++) { free(v->dec.res[i]); free(v->enc.res[i]); v->dec.res[i] = v->enc.res[i] = NULL; }
    locus_loader_close(&v->L);
}

void locus_vae_decode(const locus_vae *v, const float *z, int B, int h, int w, float *image, const locus_hooks *hooks) {
    const vae_coder *d = &v->dec;
    int Lc = v->latent_channels, nb = v->nblocks, C = v->block_out[nb - 1], H = h, W = w;
    int f = 1 << (nb - 1);
    size_t maxN = (size_t)B * v->block_out[0] * (H * f) * (W * f);
    for (int i = 0; i < nb; i++) { size_t s = (size_t)B * v->block_out[i] * (H * f) * (W * f); if (s > maxN) maxN = s; }
    float *zz = talloc((size_t)B * Lc * H * W), *a = talloc(maxN), *b = talloc(maxN);
    memcpy(zz, z, (size_t)B * Lc * H * W * sizeof(float));
    if (v->use_post_quant_conv) {
        nn_conv_fwd(&v->post_quant_conv, z, B, H, W, zz);
        locus_hook(hooks, "post_quant_conv", zz, 4, B, Lc, H, W);
    }
    nn_conv_fwd(&d->conv_in, zz, B, H, W, a);
    locus_hook(hooks, "decoder.conv_in", a, 4, B, C, H, W);
    mid_fwd(&d->mid, a, B, C, H, W, hooks, "decoder");
    char n[128];
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j < v->layers + 1; j++) {
            nn_resnet_fwd(&d->res[i][j], a, B, H, W, NULL, b);
            C = d->cout[i];
            float *t = a; a = b; b = t;
        }
        if (d->has_sample[i]) {
            locus_upsample_nearest2x(a, b, B, C, H, W);
            H *= 2; W *= 2;
            nn_conv_fwd(&d->sample[i], b, B, H, W, a);
        }
        snprintf(n, sizeof n, "decoder.up_blocks.%d", i);
        locus_hook(hooks, n, a, 4, B, C, H, W);
    }
    nn_gnorm_fwd(&d->norm_out, a, B, H * W, b, LOCUS_ACT_NONE);
    locus_hook(hooks, "decoder.conv_norm_out", b, 4, B, C, H, W);
    locus_act(b, b, (size_t)B * C * H * W, LOCUS_ACT_SILU);
    nn_conv_fwd(&d->conv_out, b, B, H, W, image);
    locus_hook(hooks, "decoder.conv_out", image, 4, B, v->out_channels, H, W);
    locus_free(zz); locus_free(a); locus_free(b);
}

void locus_vae_encode(const locus_vae *v, const float *image, int B, int H, int W, float *mean, float *logvar,
                      const locus_hooks *hooks) {
    const vae_coder *e = &v->enc;
    int Lc = v->latent_channels, nb = v->nblocks, C = v->block_out[0];
    size_t maxN = (size_t)B * C * H * W;
    for (int i = 0; i < nb; i++) { size_t s = (size_t)B * v->block_out[i] * H * W; if (s > maxN) maxN = s; }
    float *a = talloc(maxN), *b = talloc(maxN);
    nn_conv_fwd(&e->conv_in, image, B, H, W, a);
    locus_hook(hooks, "encoder.conv_in", a, 4, B, C, H, W);
    char n[128];
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j < v->layers; j++) {
            nn_resnet_fwd(&e->res[i][j], a, B, H, W, NULL, b);
            C = e->cout[i];
            float *t = a; a = b; b = t;
        }
        if (e->has_sample[i]) { /* F.pad(x, (0,1,0,1)) then conv 3x3 stride 2 */
            int Ho = (H + 1 - 3) / 2 + 1, Wo = (W + 1 - 3) / 2 + 1;
            locus_conv2d_ex(a, B, C, H, W, e->sample[i].w, e->sample[i].b, C, 3, 3, 2, 0, 0, Ho, Wo, b);
            H = Ho; W = Wo;
            float *t = a; a = b; b = t;
        }
        snprintf(n, sizeof n, "encoder.down_blocks.%d", i);
        locus_hook(hooks, n, a, 4, B, C, H, W);
    }
    mid_fwd(&e->mid, a, B, C, H, W, hooks, "encoder");
    nn_gnorm_fwd(&e->norm_out, a, B, H * W, b, LOCUS_ACT_SILU);
    nn_conv_fwd(&e->conv_out, b, B, H, W, a);
    locus_hook(hooks, "encoder.conv_out", a, 4, B, 2 * Lc, H, W);
    if (v->use_quant_conv) {
        nn_conv_fwd(&v->quant_conv, a, B, H, W, b);
        locus_hook(hooks, "quant_conv", b, 4, B, 2 * Lc, H, W);
        float *t = a; a = b; b = t;
    }
    size_t plane = (size_t)Lc * H * W;
    for (int bb = 0; bb < B; bb++) {
        if (mean) memcpy(mean + bb * plane, a + (size_t)bb * 2 * plane, plane * sizeof(float));
        if (logvar)
            for (size_t i = 0; i < plane; i++) {
                float lv = a[(size_t)bb * 2 * plane + plane + i];
                logvar[bb * plane + i] = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv;
            }
    }
    locus_free(a); locus_free(b);
}
