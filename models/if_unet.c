/* if_unet.c — DeepFloyd IF's UNet2DConditionModel: config, load, forward and the locus_denoiser wrapper
 * (diffusers v0.31 unet_2d_condition.py / unet_2d_blocks.py semantics; see if_unet.h). */
#include "if_unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"
#include "denoiser.h"

static float *talloc(size_t n) { return locus_alloc_act(n * sizeof(float), "IF UNet activations"); }

static int is_if_block(const char *t) {
    return !strcmp(t, "ResnetDownsampleBlock2D") || !strcmp(t, "SimpleCrossAttnDownBlock2D") || !strcmp(t, "ResnetUpsampleBlock2D") ||
           !strcmp(t, "SimpleCrossAttnUpBlock2D") || !strcmp(t, "UNetMidBlock2DSimpleCrossAttn");
}

int locus_if_unet_config_matches(const locus_json *c) {
    if (!c || c->type != JSON_OBJECT) return 0;
    const locus_json *a = locus_json_get(c, "addition_embed_type");
    if (a && a->type == JSON_STRING && !strcmp(a->str, "text")) return 1;
    const locus_json *m = locus_json_get(c, "mid_block_type");
    if (m && m->type == JSON_STRING && is_if_block(m->str)) return 1;
    static const char *const keys[] = {"down_block_types", "up_block_types"};
    for (int k = 0; k < 2; k++) {
        const locus_json *l = locus_json_get(c, keys[k]);
        for (size_t i = 0; l && l->type == JSON_ARRAY && i < l->len; i++)
            if (l->kids[i]->type == JSON_STRING && is_if_block(l->kids[i]->str)) return 1;
    }
    return 0;
}

/* act_fn names diffusers' get_activation knows that locus computes; -1 when not supported */
static int act_kind(const char *s) {
    if (!strcmp(s, "gelu")) return LOCUS_ACT_GELU_ERF;
    if (!strcmp(s, "silu") || !strcmp(s, "swish")) return LOCUS_ACT_SILU;
    return -1;
}

static void refuse(locus_loader *L, int cond, const char *key, const char *what) {
    if (cond) locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: %s %s is not supported for DeepFloyd IF's UNet", L->dir, key, what);
}

static int null_or_absent(locus_loader *L, const char *key) {
    const locus_json *v = locus_json_get(L->config.root, key);
    return !v || v->type == JSON_NULL || (v->type == JSON_BOOL && !v->num);
}

static locus_status if_build(locus_if_unet *u);

locus_status locus_if_unet_load(locus_if_unet *u, const char *dir) {
    memset(u, 0, sizeof *u);
    locus_status st = locus_loader_open(&u->L, dir);
    return st ? st : if_build(u);
}

locus_status locus_if_unet_load_random(locus_if_unet *u, const char *config_path, uint64_t seed) {
    memset(u, 0, sizeof *u);
    locus_status st = locus_loader_open_random(&u->L, config_path, seed);
    return st ? st : if_build(u);
}

static if_resnet *res_alloc(locus_loader *L, int n) {
    if_resnet *r = calloc((size_t)n, sizeof *r);
    if (!r) locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory");
    return r;
}

static if_attn *attn_alloc(locus_loader *L, int n) {
    if_attn *a = calloc((size_t)n, sizeof *a);
    if (!a) locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory");
    return a;
}

static locus_status if_build(locus_if_unet *u) {
    locus_loader *L = &u->L;
    const char *dir = L->dir;
    char n[256];
    /* the schema: every size bounded so no product below overflows; checked before anything is allocated */
    u->in_channels = (int)locus_cfg_int_in(L, "in_channels", 3, 1, 4096);
    u->out_channels = (int)locus_cfg_int_in(L, "out_channels", 6, 1, 4096);
    u->sample_size = (int)locus_cfg_int_in(L, "sample_size", 64, 1, 4096);
    const locus_json *boj = locus_json_get(L->config.root, "block_out_channels");
    u->nblocks = boj && boj->type == JSON_ARRAY ? (int)boj->len : 0;
    int64_t bo[IF_MAX_BLOCKS] = {0}, lpb[IF_MAX_BLOCKS] = {0}, hd[IF_MAX_BLOCKS] = {0};
    if (!locus_cfg_require(L, u->nblocks >= 1 && u->nblocks <= IF_MAX_BLOCKS, "'block_out_channels' should be a list of 1 to %d channel counts", IF_MAX_BLOCKS))
        u->nblocks = 0;
    int nb = u->nblocks;
    if (nb) {
        locus_cfg_ints_in(L, "block_out_channels", bo, nb, 1, 16384);
        if (!locus_cfg_ints_in(L, "layers_per_block", lpb, nb, 1, IF_MAX_LAYERS - 1)) locus_cfg_require(L, 0, "'layers_per_block' is missing");
        if (!locus_cfg_ints_in(L, "attention_head_dim", hd, nb, 1, 16384)) locus_cfg_require(L, 0, "'attention_head_dim' is missing");
    }
    for (int i = 0; i < nb; i++) u->block_out[i] = (int)bo[i];
    const char *downt[IF_MAX_BLOCKS], *upt[IF_MAX_BLOCKS];
    int nd = locus_cfg_strs(L, "down_block_types", downt, IF_MAX_BLOCKS), nu = locus_cfg_strs(L, "up_block_types", upt, IF_MAX_BLOCKS);
    if (!L->status && (nd != nb || nu != nb)) locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: down_block_types/up_block_types must have %d entries", dir, nb);
    const locus_json *nah = locus_json_get(L->config.root, "num_attention_heads");
    refuse(L, nah && nah->type != JSON_NULL, "num_attention_heads", "(set)");
    u->cross_dim = (int)locus_cfg_int_in(L, "cross_attention_dim", 1280, 1, 16384);
    u->groups = (int)locus_cfg_int_in(L, "norm_num_groups", 32, 1, 16384);
    u->eps = (float)locus_cfg_num_in(L, "norm_eps", 1e-5, 1e-30, 1.0);
    u->flip_sin_to_cos = locus_cfg_bool(L, "flip_sin_to_cos", 1);
    u->freq_shift = (float)locus_cfg_num_in(L, "freq_shift", 0, -1e6, 1e6);
    for (int i = 0; i < nb && !L->status; i++) {
        locus_cfg_require(L, u->block_out[i] % u->groups == 0, "'norm_num_groups' %d does not divide block_out_channels[%d] = %d", u->groups, i, u->block_out[i]);
        locus_cfg_require(L, u->block_out[i] % hd[i] == 0, "'attention_head_dim' %lld does not divide block_out_channels[%d] = %d", (long long)hd[i], i, u->block_out[i]);
    }
    const char *af = locus_cfg_str(L, "act_fn", "silu"), *tf = locus_cfg_str(L, "time_embedding_act_fn", NULL);
    u->act = act_kind(af ? af : "");
    refuse(L, u->act < 0, "act_fn", "other than gelu or silu");
    u->temb_act = tf ? act_kind(tf) : LOCUS_ACT_NONE;
    refuse(L, u->temb_act < 0, "time_embedding_act_fn", "other than gelu or silu");
    const char *tst = locus_cfg_str(L, "resnet_time_scale_shift", "default");
    refuse(L, !tst || (strcmp(tst, "scale_shift") && strcmp(tst, "default")), "resnet_time_scale_shift", "other than scale_shift or default");
    int scale_shift = tst && !strcmp(tst, "scale_shift");
    int skip_act = locus_cfg_bool(L, "resnet_skip_time_act", 0);
    float out_scale = (float)locus_cfg_num_in(L, "resnet_out_scale_factor", 1.0, 1e-6, 1e6);
    float mid_scale = (float)locus_cfg_num_in(L, "mid_block_scale_factor", 1.0, 1e-6, 1e6);
    refuse(L, strcmp(locus_cfg_str(L, "time_embedding_type", "positional"), "positional") != 0, "time_embedding_type", "other than positional");
    static const char *const must_be_null[] = {"class_embed_type", "time_cond_proj_dim", "timestep_post_act",
                                               "only_cross_attention", "mid_block_only_cross_attention", "dual_cross_attention",
                                               "center_input_sample", "num_class_embeds"};
    for (size_t k = 0; k < sizeof must_be_null / sizeof *must_be_null; k++) refuse(L, !null_or_absent(L, must_be_null[k]), must_be_null[k], "(set)");
    refuse(L, locus_cfg_int(L, "conv_in_kernel", 3) != 3 || locus_cfg_int(L, "conv_out_kernel", 3) != 3, "conv_in_kernel/conv_out_kernel", "other than 3");
    refuse(L, strcmp(locus_cfg_str(L, "mid_block_type", "UNetMidBlock2DSimpleCrossAttn"), "UNetMidBlock2DSimpleCrossAttn") != 0, "mid_block_type",
           "other than UNetMidBlock2DSimpleCrossAttn");
    const char *aet = locus_cfg_str(L, "addition_embed_type", NULL);
    refuse(L, aet && strcmp(aet, "text"), "addition_embed_type", "other than text");
    u->text_embed = aet != NULL;
    u->hid_dim = (int)locus_cfg_int_in(L, "encoder_hid_dim", 0, 0, 16384);
    const char *eht = locus_cfg_str(L, "encoder_hid_dim_type", NULL);
    refuse(L, u->hid_dim && eht && strcmp(eht, "text_proj"), "encoder_hid_dim_type", "other than text_proj");
    refuse(L, !u->hid_dim && eht, "encoder_hid_dim_type", "without encoder_hid_dim");
    const char *can = locus_cfg_str(L, "cross_attention_norm", NULL);
    refuse(L, can && strcmp(can, "group_norm"), "cross_attention_norm", "other than group_norm");
    int ncg = can ? 32 : 0; /* Attention's cross_attention_norm_num_groups default: the blocks do not pass one */
    if (ncg) locus_cfg_require(L, u->cross_dim % ncg == 0, "cross_attention_norm group_norm: 32 groups do not divide cross_attention_dim %d", u->cross_dim);
    int ted = (int)locus_cfg_int_in(L, "time_embedding_dim", 0, 0, 65536);
    int aheads = (int)locus_cfg_int_in(L, "addition_embed_type_num_heads", 64, 1, 4096);
    for (int i = 0; i < nb && !L->status; i++) {
        if (strcmp(downt[i], "ResnetDownsampleBlock2D") && strcmp(downt[i], "SimpleCrossAttnDownBlock2D"))
            locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: down block type '%s' is not supported for DeepFloyd IF's UNet", dir, downt[i]);
        else if (strcmp(upt[i], "ResnetUpsampleBlock2D") && strcmp(upt[i], "SimpleCrossAttnUpBlock2D"))
            locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: up block type '%s' is not supported for DeepFloyd IF's UNet", dir, upt[i]);
    }
    if (L->status || !nb) { locus_status st = locus_loader_status(L); locus_if_unet_free(u); return st ? st : LOCUS_E_FORMAT; }

    int C0 = u->block_out[0], E = u->cross_dim, G = u->groups;
    u->time_dim = C0;
    u->temb_dim = ted ? ted : 4 * C0;
    int T = u->temb_dim;
    nn_conv_load(L, &u->conv_in, u->in_channels, C0, 3, 1, 1, "conv_in");
    nn_linear_load(L, &u->time_1, u->time_dim, T, 1, "time_embedding.linear_1");
    nn_linear_load(L, &u->time_2, T, T, 1, "time_embedding.linear_2");
    if (u->hid_dim) nn_linear_load(L, &u->hid_proj, u->hid_dim, E, 1, "encoder_hid_proj");
    if (u->text_embed) if_text_time_load(L, &u->add, u->hid_dim ? u->hid_dim : E, T, aheads, "add_embedding");
    /* down blocks */
    int prev = C0;
    for (int i = 0; i < nb && !L->status; i++) {
        if_block *b = &u->down[i];
        int oc = u->block_out[i], cross = !strcmp(downt[i], "SimpleCrossAttnDownBlock2D");
        b->cout = oc;
        b->nres = (int)lpb[i];
        b->res = res_alloc(L, b->nres);
        if (cross) { b->nattn = b->nres; b->attn = attn_alloc(L, b->nattn); }
        for (int j = 0; j < b->nres && !L->status; j++) {
            snprintf(n, sizeof n, "down_blocks.%d.resnets.%d", i, j);
            if_resnet_load(L, &b->res[j], j ? oc : prev, oc, T, G, u->eps, u->act, scale_shift, skip_act, out_scale, 0, n);
            if (cross) {
                snprintf(n, sizeof n, "down_blocks.%d.attentions.%d", i, j);
                if_attn_load(L, &b->attn[j], oc, E, oc / (int)hd[i], (int)hd[i], G, 1e-5f, ncg, n);
            }
        }
        b->has_sample = i < nb - 1;
        if (b->has_sample) {
            snprintf(n, sizeof n, "down_blocks.%d.downsamplers.0", i);
            if_resnet_load(L, &b->sample, oc, oc, T, G, u->eps, u->act, scale_shift, skip_act, out_scale, -1, n);
        }
        prev = oc;
    }
    /* mid block: resnet, then (attention, resnet) */
    int CL = u->block_out[nb - 1];
    if (!L->status) {
        if_block *b = &u->mid;
        b->cout = CL;
        b->nattn = 1;
        b->nres = 2;
        b->res = res_alloc(L, 2);
        b->attn = attn_alloc(L, 1);
        for (int j = 0; j < 2 && !L->status; j++) {
            snprintf(n, sizeof n, "mid_block.resnets.%d", j);
            if_resnet_load(L, &b->res[j], CL, CL, T, G, u->eps, u->act, scale_shift, skip_act, mid_scale, 0, n);
        }
        if (!L->status) if_attn_load(L, &b->attn[0], CL, E, CL / (int)hd[nb - 1], (int)hd[nb - 1], G, 1e-5f, ncg, "mid_block.attentions.0");
    }
    /* up blocks (diffusers: prev_output_channel, input_channel of the reversed channel list) */
    int out_prev = CL;
    for (int i = 0; i < nb && !L->status; i++) {
        int ri = nb - 1 - i, oc = u->block_out[ri], ic = u->block_out[ri > 0 ? ri - 1 : 0], cross = !strcmp(upt[i], "SimpleCrossAttnUpBlock2D");
        if_block *b = &u->up[i];
        b->cout = oc;
        b->nres = (int)lpb[ri] + 1;
        b->res = res_alloc(L, b->nres);
        if (cross) { b->nattn = b->nres; b->attn = attn_alloc(L, b->nattn); }
        for (int j = 0; j < b->nres && !L->status; j++) {
            int skip = j == b->nres - 1 ? ic : oc, rin = j == 0 ? out_prev : oc;
            snprintf(n, sizeof n, "up_blocks.%d.resnets.%d", i, j);
            if_resnet_load(L, &b->res[j], rin + skip, oc, T, G, u->eps, u->act, scale_shift, skip_act, out_scale, 0, n);
            if (cross) {
                snprintf(n, sizeof n, "up_blocks.%d.attentions.%d", i, j);
                if_attn_load(L, &b->attn[j], oc, E, oc / (int)hd[ri], (int)hd[ri], G, 1e-5f, ncg, n);
            }
        }
        b->has_sample = i < nb - 1;
        if (b->has_sample) {
            snprintf(n, sizeof n, "up_blocks.%d.upsamplers.0", i);
            if_resnet_load(L, &b->sample, oc, oc, T, G, u->eps, u->act, scale_shift, skip_act, out_scale, 1, n);
        }
        out_prev = oc;
    }
    nn_gnorm_load(L, &u->norm_out, C0, G, u->eps, "conv_norm_out");
    nn_conv_load(L, &u->conv_out, C0, u->out_channels, 3, 1, 1, "conv_out");
    locus_loader_check_unused(L);
    locus_status st = locus_loader_status(L);
    if (st) { locus_if_unet_free(u); return st; } /* cleanup keeps the thread's error message */
    /* number the added-KV layers in forward order (their text K/V override index) and give them the projection */
    locus_if_attn_layer al[256];
    int na = locus_if_unet_attn_layers(u, al, 256);
    for (int i = 0; i < na; i++) {
        if_attn *a = (if_attn *)al[i].a;
        a->text_index = i;
        a->hid_proj = u->hid_dim ? &u->hid_proj : NULL;
    }
    return LOCUS_OK;
}

static void free_block(if_block *b) {
    free(b->res);
    free(b->attn);
    b->res = NULL;
    b->attn = NULL;
}

void locus_if_unet_free(locus_if_unet *u) {
    for (int i = 0; i < IF_MAX_BLOCKS; i++) { free_block(&u->down[i]); free_block(&u->up[i]); }
    free_block(&u->mid);
    locus_loader_close(&u->L);
}

static int add_layers(const if_block *b, const char *prefix, locus_if_attn_layer *out, int n, int max) {
    for (int j = 0; j < b->nattn; j++, n++)
        if (n < max) {
            snprintf(out[n].name, sizeof out[n].name, "%s.attentions.%d", prefix, j);
            out[n].a = &b->attn[j];
        }
    return n;
}

int locus_if_unet_attn_layers(const locus_if_unet *u, locus_if_attn_layer *out, int max) {
    int n = 0;
    char pre[64];
    for (int i = 0; i < u->nblocks; i++) { snprintf(pre, sizeof pre, "down_blocks.%d", i); n = add_layers(&u->down[i], pre, out, n, max); }
    n = add_layers(&u->mid, "mid_block", out, n, max);
    for (int i = 0; i < u->nblocks; i++) { snprintf(pre, sizeof pre, "up_blocks.%d", i); n = add_layers(&u->up[i], pre, out, n, max); }
    return n < max ? n : max;
}

/* a (B,C,H,W) activation kept as a skip connection */
typedef struct { float *x; int c, h, w; } skip_t;

void locus_if_unet_forward(const locus_if_unet *u, const float *sample, int B, int H, int W, const float *timesteps, const float *ctx,
                           int S, float *out, const locus_hooks *hooks) {
    char n[256];
    int C0 = u->block_out[0], T = u->temb_dim, E = u->cross_dim;
    /* time embedding: Timesteps -> linear_1 -> act -> linear_2 (+ add_embedding(raw text)) -> time_embed_act */
    float *tp = talloc((size_t)B * u->time_dim), *e1 = talloc((size_t)B * T), *emb = talloc((size_t)B * T); /* [B,time_dim], [B,T] */
    locus_timestep_embedding(timesteps, B, u->time_dim, u->flip_sin_to_cos, u->freq_shift, 1.0f, 10000.0f, tp);
    locus_hook(hooks, "time_proj", tp, 2, B, u->time_dim, 0, 0);
    nn_linear_fwd(&u->time_1, tp, B, e1);
    locus_act(e1, e1, (size_t)B * T, u->act);
    nn_linear_fwd(&u->time_2, e1, B, emb);
    locus_hook(hooks, "time_embedding", emb, 2, B, T, 0, 0);
    if (u->text_embed) {
        float *aug = talloc((size_t)B * T); /* add_embedding [B,T] */
        if_text_time_fwd(&u->add, ctx, B, S, aug, hooks, "add_embedding");
        for (size_t k = 0; k < (size_t)B * T; k++) emb[k] = emb[k] + aug[k];
        locus_free(aug);
    }
    if (u->temb_act != LOCUS_ACT_NONE) locus_act(emb, emb, (size_t)B * T, u->temb_act);
    const float *temb = emb;
    /* encoder_hid_proj: the text every added-KV attention reads [B,S,E] */
    float *ehs = NULL;
    const float *tctx = ctx;
    if (u->hid_dim) {
        ehs = talloc((size_t)B * S * E);
        nn_linear_fwd(&u->hid_proj, ctx, B * S, ehs);
        locus_hook(hooks, "encoder_hid_proj", ehs, 3, B, S, E, 0);
        tctx = ehs;
    }
    skip_t skips[IF_MAX_BLOCKS * (IF_MAX_LAYERS + 1) + 1];
    int nskip = 0;
    float *h = talloc((size_t)B * C0 * H * W); /* [B,C0,H,W] */
    nn_conv_fwd(&u->conv_in, sample, B, H, W, h);
    locus_hook(hooks, "conv_in", h, 4, B, C0, H, W);
    int C = C0;
    skips[nskip++] = (skip_t){h, C, H, W};
    for (int i = 0; i < u->nblocks; i++) {
        const if_block *b = &u->down[i];
        int first = nskip;
        for (int j = 0; j < b->nres; j++) {
            float *y = talloc((size_t)B * b->cout * H * W); /* [B,cout,H,W] */
            snprintf(n, sizeof n, "down_blocks.%d.resnets.%d", i, j);
            if_resnet_fwd(&b->res[j], h, B, H, W, temb, y, hooks, n);
            locus_hook(hooks, n, y, 4, B, b->cout, H, W);
            C = b->cout;
            if (b->attn) {
                float *z = talloc((size_t)B * C * H * W);
                snprintf(n, sizeof n, "down_blocks.%d.attentions.%d", i, j);
                if_attn_fwd(&b->attn[j], y, B, H, W, tctx, S, z, hooks, n);
                locus_free(y);
                y = z;
            }
            h = y;
            skips[nskip++] = (skip_t){h, C, H, W};
        }
        if (b->has_sample) {
            float *y = talloc((size_t)B * C * (H / 2) * (W / 2)); /* [B,C,H/2,W/2] */
            snprintf(n, sizeof n, "down_blocks.%d.downsamplers.0", i);
            if_resnet_fwd(&b->sample, h, B, H, W, temb, y, hooks, n);
            H /= 2; W /= 2;
            locus_hook(hooks, n, y, 4, B, C, H, W);
            h = y;
            skips[nskip++] = (skip_t){h, C, H, W};
        }
        snprintf(n, sizeof n, "down_blocks.%d:0", i);
        locus_hook(hooks, n, h, 4, B, C, H, W);
        for (int s = first; s < nskip && locus_hooks_active(hooks); s++) {
            snprintf(n, sizeof n, "down_blocks.%d:1:%d", i, s - first);
            locus_hook(hooks, n, skips[s].x, 4, B, skips[s].c, skips[s].h, skips[s].w);
        }
    }
    { /* mid block (h is the last skip: not freed here) */
        const if_block *b = &u->mid;
        float *y = talloc((size_t)B * C * H * W), *z = talloc((size_t)B * C * H * W); /* [B,C,H,W] each */
        if_resnet_fwd(&b->res[0], h, B, H, W, temb, y, hooks, "mid_block.resnets.0");
        locus_hook(hooks, "mid_block.resnets.0", y, 4, B, C, H, W);
        if_attn_fwd(&b->attn[0], y, B, H, W, tctx, S, z, hooks, "mid_block.attentions.0");
        if_resnet_fwd(&b->res[1], z, B, H, W, temb, y, hooks, "mid_block.resnets.1");
        locus_hook(hooks, "mid_block.resnets.1", y, 4, B, C, H, W);
        locus_hook(hooks, "mid_block", y, 4, B, C, H, W);
        locus_free(z);
        h = y;
    }
    for (int i = 0; i < u->nblocks; i++) {
        const if_block *b = &u->up[i];
        for (int j = 0; j < b->nres; j++) {
            skip_t sk = skips[--nskip];
            int cin = C + sk.c;
            float *cat = talloc((size_t)B * cin * H * W); /* torch.cat([hidden, skip], dim=1) [B,cin,H,W] */
            for (int bb = 0; bb < B; bb++) {
                memcpy(cat + (size_t)bb * cin * H * W, h + (size_t)bb * C * H * W, (size_t)C * H * W * sizeof(float));
                memcpy(cat + ((size_t)bb * cin + C) * H * W, sk.x + (size_t)bb * sk.c * H * W, (size_t)sk.c * H * W * sizeof(float));
            }
            locus_free(sk.x);
            locus_free(h);
            C = b->cout;
            float *y = talloc((size_t)B * C * H * W); /* [B,cout,H,W] */
            snprintf(n, sizeof n, "up_blocks.%d.resnets.%d", i, j);
            if_resnet_fwd(&b->res[j], cat, B, H, W, temb, y, hooks, n);
            locus_free(cat);
            locus_hook(hooks, n, y, 4, B, C, H, W);
            if (b->attn) {
                float *z = talloc((size_t)B * C * H * W);
                snprintf(n, sizeof n, "up_blocks.%d.attentions.%d", i, j);
                if_attn_fwd(&b->attn[j], y, B, H, W, tctx, S, z, hooks, n);
                locus_free(y);
                y = z;
            }
            h = y;
        }
        if (b->has_sample) {
            float *y = talloc((size_t)B * C * 4 * H * W); /* [B,C,2H,2W] */
            snprintf(n, sizeof n, "up_blocks.%d.upsamplers.0", i);
            if_resnet_fwd(&b->sample, h, B, H, W, temb, y, hooks, n);
            H *= 2; W *= 2;
            locus_hook(hooks, n, y, 4, B, C, H, W);
            locus_free(h);
            h = y;
        }
        snprintf(n, sizeof n, "up_blocks.%d", i);
        locus_hook(hooks, n, h, 4, B, C, H, W);
    }
    float *t = talloc((size_t)B * C * H * W); /* conv_norm_out, then act [B,C0,H,W] */
    nn_gnorm_fwd(&u->norm_out, h, B, H * W, t, LOCUS_ACT_NONE);
    locus_hook(hooks, "conv_norm_out", t, 4, B, C, H, W);
    locus_act(t, t, (size_t)B * C * H * W, u->act);
    nn_conv_fwd(&u->conv_out, t, B, H, W, out);
    locus_hook(hooks, "conv_out", out, 4, B, u->out_channels, H, W);
    locus_free(t); locus_free(h); locus_free(tp); locus_free(e1); locus_free(emb); locus_free(ehs);
    while (nskip > 0) locus_free(skips[--nskip].x);
}

/* ---- the IF UNet as a locus_denoiser ---- */

static void if_den_forward(const locus_denoiser *d, const float *x, int B, int h, int w, const float *t, const float *ctx, int S,
                           const float *pooled, float *out, const locus_hooks *hooks) {
    (void)pooled;
    locus_if_unet_forward(d->model, x, B, h, w, t, ctx, S, out, hooks);
}

static size_t lin_params(const nn_linear *l) { return (size_t)l->in * l->out + (l->b ? (size_t)l->out : 0); }

static int if_den_layers(const locus_denoiser *d, locus_layer_info *out, int max) {
    locus_if_attn_layer al[256];
    int n = locus_if_unet_attn_layers(d->model, al, 256);
    for (int i = 0; i < n && i < max; i++) {
        locus_layer_info *li = &out[i];
        memset(li, 0, sizeof *li);
        snprintf(li->name, sizeof li->name, "%s", al[i].name);
        li->kind = LOCUS_LAYER_CROSS; /* keys/values: the text's add_k/add_v projections, then the pixels' own */
        li->heads = al[i].a->heads;
        li->text_params = lin_params(&al[i].a->add_k) + lin_params(&al[i].a->add_v);
        li->text_index = al[i].a->text_index;
        snprintf(li->site, sizeof li->site, "%s", al[i].name);
    }
    return n;
}

static void if_den_close(locus_denoiser *d) {
    locus_if_unet_free(d->model);
    free(d->model);
}

const locus_denoiser_ops locus_if_unet_denoiser_ops = {"UNet2DConditionModel (DeepFloyd IF)", if_den_forward, if_den_layers, if_den_close,
                                                       NULL, NULL, NULL};

locus_status locus_if_unet_denoiser(locus_denoiser *d, locus_if_unet *u) {
    memset(d, 0, sizeof *d);
    d->ops = &locus_if_unet_denoiser_ops;
    d->model = u;
    d->loader = &u->L;
    d->in_channels = u->in_channels;
    d->out_channels = u->out_channels;
    d->sample_size = d->sample_width = u->sample_size;
    d->size_multiple = 1 << (u->nblocks - 1);
    d->ctx_dim = u->hid_dim ? u->hid_dim : u->cross_dim;
    d->text_kv_projectable = 1;
    d->params = u->L.nparams;
    locus_if_attn_layer al[256];
    d->ntext_layers = locus_if_unet_attn_layers(u, al, 256);
    return LOCUS_OK;
}
