/* unet.c — UNet2DConditionModel load and forward (diffusers v0.31 semantics; see unet.h). */
#include "unet.h"

#include "denoiser.h"
#include "unet_bwd.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

static float *talloc(size_t n) { return locus_alloc_act(n * sizeof(float), "UNet activations"); }
static locus_status locus_unet_load_build(locus_unet *u, const char *dir);

static int refuse_if(locus_loader *L, int cond, const char *key, const char *what) {
    if (cond) locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: %s %s is not supported", L->dir, key, what);
    return cond;
}

#define UNET_MAX_LAYERS 16 /* attentions per block read from per-layer depth lists */

/* Transformer depth of each attention of a block from one entry of transformer_layers_per_block (or of
 * reverse_transformer_layers_per_block): an integer for every attention, or a list with one per attention
 * (diffusers' asymmetric UNets).  nl attentions; depth[nl].  Records a config error and returns 0 on a bad
 * entry. */
static int depth_entry(locus_loader *L, const locus_json *e, const char *key, int nl, int64_t *depth) {
    if (nl > UNET_MAX_LAYERS) { locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: more than %d layers per block", L->dir, UNET_MAX_LAYERS); return 0; }
    if (e->type == JSON_NUMBER && e->is_int && e->i >= 1 && e->i <= 64) { /* bounded: no size product can overflow */
        for (int j = 0; j < nl; j++) depth[j] = e->i;
        return 1;
    }
    if (e->type == JSON_ARRAY && (int)e->len >= nl) {
        for (int j = 0; j < nl; j++) {
            if (e->kids[j]->type != JSON_NUMBER || !e->kids[j]->is_int || e->kids[j]->i < 1 || e->kids[j]->i > 64) break;
            depth[j] = e->kids[j]->i;
            if (j == nl - 1) return 1;
        }
    }
    locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: %s: expected an integer from 1 to 64 or a list of %d per block", L->dir, key, nl);
    return 0;
}

/* Transformer depths of every attention: down blocks (lpb[i] attentions), mid (one), up blocks (lpb[ri]+1),
 * as diffusers' UNet2DConditionModel.__init__ assigns them: transformer_layers_per_block for down and mid
 * (the mid block takes the first depth of the last level), reverse_transformer_layers_per_block for the up
 * blocks, or transformer_layers_per_block reversed when it is absent (then every entry must be an integer). */
static void unet_depths(locus_loader *L, int nb, const int64_t *lpb, int64_t (*down)[UNET_MAX_LAYERS], int64_t *mid,
                        int64_t (*up)[UNET_MAX_LAYERS]) {
    const locus_json *t = locus_json_get(L->config.root, "transformer_layers_per_block");
    const locus_json *r = locus_json_get(L->config.root, "reverse_transformer_layers_per_block");
    if (r && r->type == JSON_NULL) r = NULL;
    locus_json one = {0};
    one.type = JSON_NUMBER; one.is_int = 1; one.i = 1; one.num = 1;
    if (!t || t->type == JSON_NULL) t = &one;
    if (t->type == JSON_ARRAY && (int)t->len != nb) { locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: transformer_layers_per_block must have %d entries", L->dir, nb); return; }
    if (r && (r->type != JSON_ARRAY || (int)r->len != nb)) { locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: reverse_transformer_layers_per_block must be a list of %d entries", L->dir, nb); return; }
    for (int i = 0; i < nb && !L->status; i++) {
        const locus_json *e = t->type == JSON_ARRAY ? t->kids[i] : t;
        depth_entry(L, e, "transformer_layers_per_block", (int)lpb[i], down[i]);
    }
    int64_t last[UNET_MAX_LAYERS] = {1};
    if (!L->status) depth_entry(L, t->type == JSON_ARRAY ? t->kids[nb - 1] : t, "transformer_layers_per_block", 1, last);
    *mid = last[0];
    for (int i = 0; i < nb && !L->status; i++) {
        int ri = nb - 1 - i;
        const locus_json *e = r ? r->kids[i] : t->type == JSON_ARRAY ? t->kids[ri] : t;
        if (!r && e->type == JSON_ARRAY) {
            locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: per-layer transformer_layers_per_block lists need reverse_transformer_layers_per_block", L->dir);
            return;
        }
        depth_entry(L, e, r ? "reverse_transformer_layers_per_block" : "transformer_layers_per_block", (int)lpb[ri] + 1, up[i]);
    }
}

locus_status locus_unet_load(locus_unet *u, const char *dir) {
    memset(u, 0, sizeof *u);
    locus_status st = locus_loader_open(&u->L, dir);
    if (st) return st;
    return locus_unet_load_build(u, dir);
}

locus_status locus_unet_load_random(locus_unet *u, const char *config_path, uint64_t seed) {
    memset(u, 0, sizeof *u);
    locus_status st = locus_loader_open_random(&u->L, config_path, seed);
    if (st) return st;
    return locus_unet_load_build(u, config_path);
}

static locus_status locus_unet_load_build(locus_unet *u, const char *dir) {
    locus_status st;
    locus_loader *L = &u->L;
    const char *cls = locus_cfg_str(L, "_class_name", "UNet2DConditionModel");
    if (strcmp(cls, "UNet2DConditionModel") != 0)
        locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: _class_name '%s' is not a UNet2DConditionModel", dir, cls);
    /* the schema: every size bounded (so no product below can overflow), list lengths = number of blocks,
     * channels divisible by heads and groups; checked here, once, before anything is allocated */
    u->in_channels = (int)locus_cfg_int_in(L, "in_channels", 4, 1, 4096);
    u->out_channels = (int)locus_cfg_int_in(L, "out_channels", 4, 1, 4096);
    const locus_json *ssj = locus_json_get(L->config.root, "sample_size");
    if (ssj && ssj->type == JSON_ARRAY) { /* [height, width], as diffusers allows for non-square models */
        int64_t hw[2] = {64, 64};
        if (locus_cfg_require(L, ssj->len == 2, "'sample_size' should be an integer or a list [height, width]"))
            locus_cfg_ints_in(L, "sample_size", hw, 2, 1, 4096);
        u->sample_size = (int)hw[0];
        u->sample_width = (int)hw[1];
    } else
        u->sample_width = u->sample_size = (int)locus_cfg_int_in(L, "sample_size", 64, 1, 4096);
    int64_t bo[UNET_MAX_BLOCKS];
    const locus_json *boj = locus_json_get(L->config.root, "block_out_channels");
    u->nblocks = boj && boj->type == JSON_ARRAY ? (int)boj->len : 0;
    if (!locus_cfg_require(L, u->nblocks >= 1 && u->nblocks <= UNET_MAX_BLOCKS, "'block_out_channels' should be a list of 1 to %d channel counts", UNET_MAX_BLOCKS))
        u->nblocks = 0;
    else
        locus_cfg_ints_in(L, "block_out_channels", bo, u->nblocks, 1, 16384);
    for (int i = 0; i < u->nblocks; i++) u->block_out[i] = (int)bo[i];
    const char *downt[UNET_MAX_BLOCKS], *upt[UNET_MAX_BLOCKS];
    int nd = locus_cfg_strs(L, "down_block_types", downt, UNET_MAX_BLOCKS), nu = locus_cfg_strs(L, "up_block_types", upt, UNET_MAX_BLOCKS);
    if (!L->status && (nd != u->nblocks || nu != u->nblocks))
        locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: down_block_types/up_block_types must have %d entries", dir, u->nblocks);
    int64_t lpb[UNET_MAX_BLOCKS], heads[UNET_MAX_BLOCKS], onlyc[UNET_MAX_BLOCKS] = {0};
    int64_t tl_down[UNET_MAX_BLOCKS][UNET_MAX_LAYERS], tl_up[UNET_MAX_BLOCKS][UNET_MAX_LAYERS], tl_mid = 1;
    if (u->nblocks && !locus_cfg_ints_in(L, "layers_per_block", lpb, u->nblocks, 1, UNET_MAX_LAYERS - 1))
        locus_cfg_require(L, 0, "'layers_per_block' is missing");
    /* legacy naming: attention_head_dim is the number of heads unless num_attention_heads is given */
    const char *hkey = locus_json_get(L->config.root, "num_attention_heads") && locus_json_get(L->config.root, "num_attention_heads")->type != JSON_NULL
                           ? "num_attention_heads" : "attention_head_dim";
    if (u->nblocks && !locus_cfg_ints_in(L, hkey, heads, u->nblocks, 1, 16384)) locus_cfg_require(L, 0, "'%s' is missing", hkey);
    for (int i = 0; i < u->nblocks && !L->status; i++)
        locus_cfg_require(L, u->block_out[i] % heads[i] == 0, "'%s' %lld does not divide block_out_channels[%d] = %d", hkey, (long long)heads[i], i, u->block_out[i]);
    if (!L->status) unet_depths(L, u->nblocks, lpb, tl_down, &tl_mid, tl_up);
    const locus_json *oc = locus_json_get(L->config.root, "only_cross_attention");
    if (oc && oc->type == JSON_BOOL) for (int i = 0; i < u->nblocks; i++) onlyc[i] = (int)oc->num;
    else if (oc && oc->type == JSON_ARRAY && (int)oc->len == u->nblocks)
        for (int i = 0; i < u->nblocks; i++) {
            locus_cfg_require(L, oc->kids[i]->type == JSON_BOOL, "'only_cross_attention' should be true/false or a list of them");
            onlyc[i] = oc->kids[i]->type == JSON_BOOL && oc->kids[i]->num;
        }
    else locus_cfg_require(L, !oc || oc->type == JSON_NULL, "'only_cross_attention' should be true/false or a list of %d of them", u->nblocks);
    u->ctx_dim = (int)locus_cfg_int_in(L, "cross_attention_dim", 1280, 1, 16384);
    u->groups = (int)locus_cfg_int_in(L, "norm_num_groups", 32, 1, 16384);
    for (int i = 0; i < u->nblocks && !L->status; i++)
        locus_cfg_require(L, u->block_out[i] % u->groups == 0, "'norm_num_groups' %d does not divide block_out_channels[%d] = %d", u->groups, i, u->block_out[i]);
    u->eps = (float)locus_cfg_num_in(L, "norm_eps", 1e-5, 1e-30, 1.0);
    u->flip_sin_to_cos = locus_cfg_bool(L, "flip_sin_to_cos", 1);
    u->freq_shift = (float)locus_cfg_num_in(L, "freq_shift", 0, -1e6, 1e6);
    int linear_proj = locus_cfg_bool(L, "use_linear_projection", 0);
    int down_pad = (int)locus_cfg_int_in(L, "downsample_padding", 1, 0, 1);
    refuse_if(L, strcmp(locus_cfg_str(L, "act_fn", "silu"), "silu") != 0, "act_fn", "other than silu");
    refuse_if(L, strcmp(locus_cfg_str(L, "time_embedding_type", "positional"), "positional") != 0, "time_embedding_type", "other than positional");
    refuse_if(L, strcmp(locus_cfg_str(L, "resnet_time_scale_shift", "default"), "default") != 0, "resnet_time_scale_shift", "other than default");
    refuse_if(L, locus_cfg_str(L, "class_embed_type", NULL) != NULL, "class_embed_type", "(class embeddings)");
    const char *aet = locus_cfg_str(L, "addition_embed_type", NULL);
    refuse_if(L, aet && strcmp(aet, "text_time"), "addition_embed_type", "other than text_time");
    if (aet && !strcmp(aet, "text_time")) { /* SDXL: add_time_proj + add_embedding */
        u->add_time = 1;
        u->add_time_dim = (int)locus_cfg_int(L, "addition_time_embed_dim", 0);
        int pin = (int)locus_cfg_int(L, "projection_class_embeddings_input_dim", 0);
        u->add_text_dim = pin - UNET_TIME_IDS * u->add_time_dim;
        if (!L->status && (u->add_time_dim < 2 || u->add_time_dim > 65536 || u->add_text_dim < 1 || u->add_text_dim > 65536))
            locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: addition_time_embed_dim %d / projection_class_embeddings_input_dim %d: "
                              "need 6 x addition_time_embed_dim + the pooled text width", dir, u->add_time_dim, pin);
    }
    refuse_if(L, locus_cfg_int(L, "conv_in_kernel", 3) != 3 || locus_cfg_int(L, "conv_out_kernel", 3) != 3, "conv_in/out_kernel", "other than 3");
    refuse_if(L, locus_cfg_bool(L, "dual_cross_attention", 0), "dual_cross_attention", "true");
    refuse_if(L, locus_cfg_bool(L, "center_input_sample", 0), "center_input_sample", "true");
    refuse_if(L, locus_cfg_num(L, "resnet_out_scale_factor", 1.0) != 1.0 || locus_cfg_num(L, "mid_block_scale_factor", 1.0) != 1.0,
              "resnet_out_scale_factor/mid_block_scale_factor", "other than 1");
    refuse_if(L, locus_json_get(L->config.root, "time_cond_proj_dim") && locus_cfg_int(L, "time_cond_proj_dim", 0) != 0, "time_cond_proj_dim", "(LCM conditioning)");
    refuse_if(L, locus_cfg_str(L, "encoder_hid_dim_type", NULL) != NULL, "encoder_hid_dim_type", "(projected text)");
    refuse_if(L, locus_json_get(L->config.root, "cross_attention_dim") && locus_json_get(L->config.root, "cross_attention_dim")->type == JSON_ARRAY,
              "cross_attention_dim", "as a list");
    if (L->status) {
        locus_status st0 = locus_loader_status(L);
        locus_unet_free(u); /* cleanup keeps the thread's error message */
        return st0;
    }

    char n[256];
    int C0 = u->block_out[0];
    u->time_dim = C0;
    u->temb_dim = 4 * C0;
    nn_linear_load(L, &u->time_1, C0, u->temb_dim, 1, "time_embedding.linear_1");
    nn_linear_load(L, &u->time_2, u->temb_dim, u->temb_dim, 1, "time_embedding.linear_2");
    if (u->add_time) {
        nn_linear_load(L, &u->add_1, u->add_text_dim + UNET_TIME_IDS * u->add_time_dim, u->temb_dim, 1, "add_embedding.linear_1");
        nn_linear_load(L, &u->add_2, u->temb_dim, u->temb_dim, 1, "add_embedding.linear_2");
    }
    nn_conv_load(L, &u->conv_in, u->in_channels, C0, 3, 1, 1, "conv_in");
    /* down blocks */
    int out_ch = C0;
    for (int i = 0; i < u->nblocks && !L->status; i++) {
        unet_block *b = &u->down[i];
        int in_ch = out_ch;
        out_ch = u->block_out[i];
        if (!strcmp(downt[i], "CrossAttnDownBlock2D")) b->cross = 1;
        else if (strcmp(downt[i], "DownBlock2D")) { locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: down block type '%s' is not supported", dir, downt[i]); break; }
        b->nlayers = (int)lpb[i];
        b->cin = in_ch; b->cout = out_ch;
        b->res = calloc((size_t)b->nlayers, sizeof *b->res);
        if (b->cross) b->attn = calloc((size_t)b->nlayers, sizeof *b->attn);
        if (!b->res || (b->cross && !b->attn)) { locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory building the UNet"); break; }
        for (int j = 0; j < b->nlayers; j++) {
            snprintf(n, sizeof n, "down_blocks.%d.resnets.%d", i, j);
            nn_resnet_load(L, &b->res[j], j == 0 ? in_ch : out_ch, out_ch, u->temb_dim, u->groups, u->eps, n);
            if (b->cross) {
                snprintf(n, sizeof n, "down_blocks.%d.attentions.%d", i, j);
                nn_transformer2d_load(L, &b->attn[j], out_ch, (int)heads[i], out_ch / (int)heads[i], (int)tl_down[i][j], u->ctx_dim, u->groups,
                                      linear_proj, (int)onlyc[i], n);
            }
        }
        b->has_sample = i < u->nblocks - 1;
        if (b->has_sample) {
            snprintf(n, sizeof n, "down_blocks.%d.downsamplers.0.conv", i);
            nn_conv_load(L, &b->sample, out_ch, out_ch, 3, 2, down_pad, n);
        }
    }
    /* mid block */
    int Cl = u->block_out[u->nblocks - 1];
    const char *midt = locus_cfg_str(L, "mid_block_type", "UNetMidBlock2DCrossAttn");
    if (strcmp(midt, "UNetMidBlock2DCrossAttn") != 0)
        locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: mid block type '%s' is not supported", dir, midt);
    u->mid.cross = 1; u->mid.nlayers = 1; u->mid.cin = u->mid.cout = Cl;
    u->mid.res = calloc(2, sizeof *u->mid.res);
    u->mid.attn = calloc(1, sizeof *u->mid.attn);
    if (!u->mid.res || !u->mid.attn) locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory building the UNet");
    int mid_heads = (int)heads[u->nblocks - 1];
    if (!L->status) {
        nn_resnet_load(L, &u->mid.res[0], Cl, Cl, u->temb_dim, u->groups, u->eps, "mid_block.resnets.0");
        nn_transformer2d_load(L, &u->mid.attn[0], Cl, mid_heads, Cl / mid_heads, (int)tl_mid, u->ctx_dim, u->groups, linear_proj,
                              locus_cfg_bool(L, "mid_block_only_cross_attention", 0), "mid_block.attentions.0");
        nn_resnet_load(L, &u->mid.res[1], Cl, Cl, u->temb_dim, u->groups, u->eps, "mid_block.resnets.1");
    }
    /* up blocks (reversed channel lists) */
    int prev_out = Cl;
    for (int i = 0; i < u->nblocks && !L->status; i++) {
        unet_block *b = &u->up[i];
        int ri = u->nblocks - 1 - i;
        int oc_ = u->block_out[ri], ic_ = u->block_out[ri - 1 >= 0 ? ri - 1 : 0];
        if (!strcmp(upt[i], "CrossAttnUpBlock2D")) b->cross = 1;
        else if (strcmp(upt[i], "UpBlock2D")) { locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: up block type '%s' is not supported", dir, upt[i]); break; }
        b->nlayers = (int)lpb[ri] + 1;
        b->cin = prev_out; b->cout = oc_;
        b->res = calloc((size_t)b->nlayers, sizeof *b->res);
        if (b->cross) b->attn = calloc((size_t)b->nlayers, sizeof *b->attn);
        if (!b->res || (b->cross && !b->attn)) { locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory building the UNet"); break; }
        for (int j = 0; j < b->nlayers; j++) {
            int skip = j == b->nlayers - 1 ? ic_ : oc_;
            int rin = j == 0 ? prev_out : oc_;
            snprintf(n, sizeof n, "up_blocks.%d.resnets.%d", i, j);
            nn_resnet_load(L, &b->res[j], rin + skip, oc_, u->temb_dim, u->groups, u->eps, n);
            if (b->cross) {
                snprintf(n, sizeof n, "up_blocks.%d.attentions.%d", i, j);
                nn_transformer2d_load(L, &b->attn[j], oc_, (int)heads[ri], oc_ / (int)heads[ri], (int)tl_up[i][j], u->ctx_dim, u->groups,
                                      linear_proj, (int)onlyc[ri], n);
            }
        }
        b->has_sample = i < u->nblocks - 1;
        if (b->has_sample) {
            snprintf(n, sizeof n, "up_blocks.%d.upsamplers.0.conv", i);
            nn_conv_load(L, &b->sample, oc_, oc_, 3, 1, 1, n);
        }
        prev_out = oc_;
    }
    nn_gnorm_load(L, &u->norm_out, C0, u->groups, u->eps, "conv_norm_out");
    nn_conv_load(L, &u->conv_out, C0, u->out_channels, 3, 1, 1, "conv_out");
    locus_loader_check_unused(L);
    st = locus_loader_status(L);
    if (st) { locus_unet_free(u); return st; } /* cleanup keeps the thread's error message */
    /* number the text-reading layers (attn2) in forward order: the index of their text K/V override point */
    locus_attn_layer *al = malloc(sizeof *al * 4096);
    int na = al ? locus_unet_attn_layers(u, al, 4096) : 0, ti = 0;
    for (int i = 0; i < na; i++)
        if (al[i].cross) ((nn_attention *)al[i].a)->text_index = ti++;
    free(al);
    return LOCUS_OK;
}

static void free_block(unet_block *b) {
    if (b->attn) for (int j = 0; j < b->nlayers; j++) nn_transformer2d_free(&b->attn[j]);
    free(b->attn);
    free(b->res);
    b->attn = NULL;
    b->res = NULL;
}

void locus_unet_free(locus_unet *u) {
    for (int i = 0; i < UNET_MAX_BLOCKS; i++) { free_block(&u->down[i]); free_block(&u->up[i]); }
    free_block(&u->mid);
    locus_loader_close(&u->L);
}

size_t locus_unet_params(const locus_unet *u) { return u->L.nparams; }

static int add_block_layers(const unet_block *b, const char *prefix, char (*names)[128], int n, int max) {
    if (!b->attn) return n;
    for (int j = 0; j < b->nlayers; j++)
        for (int k = 0; k < b->attn[j].nblocks; k++) {
            /* only_cross_attention: attn1 reads the text too (diffusers' BasicTransformerBlock), before attn2 */
            if (b->attn[j].blocks[k].only_cross && n < max) snprintf(names[n++], 128, "%s.attentions.%d.transformer_blocks.%d.attn1", prefix, j, k);
            if (n < max) snprintf(names[n++], 128, "%s.attentions.%d.transformer_blocks.%d.attn2", prefix, j, k);
        }
    return n;
}

static int add_attn(const unet_block *b, const char *prefix, locus_attn_layer *out, int n, int max) {
    if (!b->attn) return n;
    for (int j = 0; j < b->nlayers; j++)
        for (int k = 0; k < b->attn[j].nblocks; k++)
            for (int which = 1; which <= 2; which++)
                if (n < max) {
                    snprintf(out[n].name, sizeof out[n].name, "%s.attentions.%d.transformer_blocks.%d.attn%d", prefix, j, k, which);
                    out[n].cross = which == 2 || b->attn[j].blocks[k].only_cross; /* only_cross_attention: attn1 reads the text */
                    out[n].a = which == 1 ? &b->attn[j].blocks[k].a1 : &b->attn[j].blocks[k].a2;
                    n++;
                }
    return n;
}

int locus_unet_attn_layers(const locus_unet *u, locus_attn_layer *out, int max) {
    int n = 0;
    char pre[64];
    for (int i = 0; i < u->nblocks; i++) { snprintf(pre, sizeof pre, "down_blocks.%d", i); n = add_attn(&u->down[i], pre, out, n, max); }
    n = add_attn(&u->mid, "mid_block", out, n, max);
    for (int i = 0; i < u->nblocks; i++) { snprintf(pre, sizeof pre, "up_blocks.%d", i); n = add_attn(&u->up[i], pre, out, n, max); }
    return n;
}

int locus_unet_cross_layers(const locus_unet *u, char (*names)[128], int max) {
    int n = 0;
    char pre[64];
    for (int i = 0; i < u->nblocks; i++) { snprintf(pre, sizeof pre, "down_blocks.%d", i); n = add_block_layers(&u->down[i], pre, names, n, max); }
    n = add_block_layers(&u->mid, "mid_block", names, n, max);
    for (int i = 0; i < u->nblocks; i++) { snprintf(pre, sizeof pre, "up_blocks.%d", i); n = add_block_layers(&u->up[i], pre, names, n, max); }
    return n;
}

/* a copy of a (B,C,H,W) activation kept as a skip connection */
typedef struct { float *x; int c, h, w; } skip_t;

/* SDXL's added conditioning, added into emb[B,temb] in place: add_time_proj of the 6 time ids of each row,
 * concatenated after the pooled text, add_embedding (linear_1 -> silu -> linear_2); emb = emb + aug_emb */
static void add_text_time(const locus_unet *u, const float *added, int B, float *emb, const locus_hooks *hooks) {
    int P = u->add_text_dim, A = u->add_time_dim, NI = P + UNET_TIME_IDS * A, T = u->temb_dim;
    float *ids = talloc((size_t)B * UNET_TIME_IDS);       /* [B*6]: time_ids.flatten() */
    float *tp = talloc((size_t)B * UNET_TIME_IDS * A);    /* [B*6, A] */
    float *in = talloc((size_t)B * NI);                   /* [B, P + 6A]: cat([text_embeds, time_embeds], -1) */
    float *a1 = talloc((size_t)B * T), *aug = talloc((size_t)B * T); /* [B, temb] */
    for (int b = 0; b < B; b++) memcpy(ids + (size_t)b * UNET_TIME_IDS, added + (size_t)b * (P + UNET_TIME_IDS) + P, UNET_TIME_IDS * sizeof(float));
    locus_timestep_embedding(ids, B * UNET_TIME_IDS, A, u->flip_sin_to_cos, u->freq_shift, 1.0f, 10000.0f, tp);
    locus_hook(hooks, "add_time_proj", tp, 2, (int64_t)B * UNET_TIME_IDS, A, 0, 0);
    for (int b = 0; b < B; b++) {
        memcpy(in + (size_t)b * NI, added + (size_t)b * (P + UNET_TIME_IDS), (size_t)P * sizeof(float));
        memcpy(in + (size_t)b * NI + P, tp + (size_t)b * UNET_TIME_IDS * A, (size_t)UNET_TIME_IDS * A * sizeof(float));
    }
    nn_linear_fwd(&u->add_1, in, B, a1);
    locus_act(a1, a1, (size_t)B * T, LOCUS_ACT_SILU);
    nn_linear_fwd(&u->add_2, a1, B, aug);
    locus_hook(hooks, "add_embedding", aug, 2, B, T, 0, 0);
    for (size_t k = 0; k < (size_t)B * T; k++) emb[k] = emb[k] + aug[k];
    locus_free(ids); locus_free(tp); locus_free(in); locus_free(a1); locus_free(aug);
}

void locus_unet_forward(const locus_unet *u, const float *sample, int B, int H, int W, const float *timesteps,
                        const float *ctx, int S, float *out, const locus_hooks *hooks) {
    locus_unet_forward_cond(u, sample, B, H, W, timesteps, ctx, S, NULL, out, hooks);
}

void locus_unet_forward_cond(const locus_unet *u, const float *sample, int B, int H, int W, const float *timesteps,
                             const float *ctx, int S, const float *added, float *out, const locus_hooks *hooks) {
    assert(!added == !u->add_time);
    char n[256];
    int C0 = u->block_out[0];
    /* time embedding: Timesteps -> linear_1 -> silu -> linear_2; resnets use silu(emb) */
    float *tp = talloc((size_t)B * u->time_dim), *e1 = talloc((size_t)B * u->temb_dim), *emb = talloc((size_t)B * u->temb_dim);
    locus_timestep_embedding(timesteps, B, u->time_dim, u->flip_sin_to_cos, u->freq_shift, 1.0f, 10000.0f, tp);
    locus_hook(hooks, "time_proj", tp, 2, B, u->time_dim, 0, 0);
    nn_linear_fwd(&u->time_1, tp, B, e1);
    locus_act(e1, e1, (size_t)B * u->temb_dim, LOCUS_ACT_SILU);
    nn_linear_fwd(&u->time_2, e1, B, emb);
    locus_hook(hooks, "time_embedding", emb, 2, B, u->temb_dim, 0, 0);
    if (added) add_text_time(u, added, B, emb, hooks);
    float *temb = e1;
    locus_act(emb, temb, (size_t)B * u->temb_dim, LOCUS_ACT_SILU);

    skip_t skips[UNET_MAX_BLOCKS * 8];
    int nskip = 0;
    float *h = talloc((size_t)B * C0 * H * W);
    nn_conv_fwd(&u->conv_in, sample, B, H, W, h);
    locus_hook(hooks, "conv_in", h, 4, B, C0, H, W);
    int C = C0;
    skips[nskip++] = (skip_t){h, C, H, W};
    /* down */
    for (int i = 0; i < u->nblocks; i++) {
        const unet_block *b = &u->down[i];
        int first_skip = nskip;
        for (int j = 0; j < b->nlayers; j++) {
            float *y = talloc((size_t)B * b->cout * H * W);
            nn_resnet_fwd(&b->res[j], h, B, H, W, temb, y);
            snprintf(n, sizeof n, "down_blocks.%d.resnets.%d", i, j);
            locus_hook(hooks, n, y, 4, B, b->cout, H, W);
            C = b->cout;
            if (b->cross) {
                float *z = talloc((size_t)B * C * H * W);
                snprintf(n, sizeof n, "down_blocks.%d.attentions.%d", i, j);
                nn_transformer2d_fwd(&b->attn[j], y, B, H, W, ctx, S, z, hooks, n);
                locus_free(y);
                y = z;
            }
            h = y;
            skips[nskip++] = (skip_t){h, C, H, W};
        }
        if (b->has_sample) {
            int Ho = (H + 2 * b->sample.pad - 3) / 2 + 1, Wo = (W + 2 * b->sample.pad - 3) / 2 + 1;
            if (b->sample.pad == 0) { Ho = (H + 1 - 3) / 2 + 1; Wo = (W + 1 - 3) / 2 + 1; } /* F.pad (0,1,0,1) */
            float *y = talloc((size_t)B * C * Ho * Wo);
            locus_conv2d_ex(h, B, C, H, W, b->sample.w, b->sample.b, C, 3, 3, 2, b->sample.pad, b->sample.pad, Ho, Wo, y);
            H = Ho; W = Wo;
            snprintf(n, sizeof n, "down_blocks.%d.downsamplers.0", i);
            locus_hook(hooks, n, y, 4, B, C, H, W);
            h = y;
            skips[nskip++] = (skip_t){h, C, H, W};
        }
        snprintf(n, sizeof n, "down_blocks.%d:0", i);
        locus_hook(hooks, n, h, 4, B, C, H, W);
        for (int s = first_skip; s < nskip; s++) {
            snprintf(n, sizeof n, "down_blocks.%d:1:%d", i, s - first_skip);
            locus_hook(hooks, n, skips[s].x, 4, B, skips[s].c, skips[s].h, skips[s].w);
        }
    }
    /* mid (h is the last skip; do not free it here) */
    {
        float *y = talloc((size_t)B * C * H * W), *z = talloc((size_t)B * C * H * W);
        nn_resnet_fwd(&u->mid.res[0], h, B, H, W, temb, y);
        locus_hook(hooks, "mid_block.resnets.0", y, 4, B, C, H, W);
        nn_transformer2d_fwd(&u->mid.attn[0], y, B, H, W, ctx, S, z, hooks, "mid_block.attentions.0");
        nn_resnet_fwd(&u->mid.res[1], z, B, H, W, temb, y);
        locus_hook(hooks, "mid_block.resnets.1", y, 4, B, C, H, W);
        locus_hook(hooks, "mid_block", y, 4, B, C, H, W);
        locus_free(z);
        h = y;
    }
    /* up */
    for (int i = 0; i < u->nblocks; i++) {
        const unet_block *b = &u->up[i];
        for (int j = 0; j < b->nlayers; j++) {
            skip_t sk = skips[--nskip];
            int cin = C + sk.c;
            float *cat = talloc((size_t)B * cin * H * W);
            for (int bb = 0; bb < B; bb++) { /* torch.cat([hidden, skip], dim=1) */
                memcpy(cat + (size_t)bb * cin * H * W, h + (size_t)bb * C * H * W, (size_t)C * H * W * sizeof(float));
                memcpy(cat + ((size_t)bb * cin + C) * H * W, sk.x + (size_t)bb * sk.c * H * W, (size_t)sk.c * H * W * sizeof(float));
            }
            locus_free(sk.x);
            locus_free(h);
            C = b->cout;
            float *y = talloc((size_t)B * C * H * W);
            nn_resnet_fwd(&b->res[j], cat, B, H, W, temb, y);
            locus_free(cat);
            snprintf(n, sizeof n, "up_blocks.%d.resnets.%d", i, j);
            locus_hook(hooks, n, y, 4, B, C, H, W);
            if (b->cross) {
                float *z = talloc((size_t)B * C * H * W);
                snprintf(n, sizeof n, "up_blocks.%d.attentions.%d", i, j);
                nn_transformer2d_fwd(&b->attn[j], y, B, H, W, ctx, S, z, hooks, n);
                locus_free(y);
                y = z;
            }
            h = y;
        }
        if (b->has_sample) {
            float *upx = talloc((size_t)B * C * 4 * H * W), *y = talloc((size_t)B * C * 4 * H * W);
            locus_upsample_nearest2x(h, upx, B, C, H, W);
            H *= 2; W *= 2;
            nn_conv_fwd(&b->sample, upx, B, H, W, y);
            locus_free(upx);
            locus_free(h);
            h = y;
            snprintf(n, sizeof n, "up_blocks.%d.upsamplers.0", i);
            locus_hook(hooks, n, h, 4, B, C, H, W);
        }
        snprintf(n, sizeof n, "up_blocks.%d", i);
        locus_hook(hooks, n, h, 4, B, C, H, W);
    }
    float *t = talloc((size_t)B * C * H * W);
    nn_gnorm_fwd(&u->norm_out, h, B, H * W, t, LOCUS_ACT_NONE);
    locus_hook(hooks, "conv_norm_out", t, 4, B, C, H, W);
    locus_act(t, t, (size_t)B * C * H * W, LOCUS_ACT_SILU);
    nn_conv_fwd(&u->conv_out, t, B, H, W, out);
    locus_hook(hooks, "conv_out", out, 4, B, u->out_channels, H, W);
    locus_free(t); locus_free(h); locus_free(tp); locus_free(e1); locus_free(emb);
    while (nskip > 0) locus_free(skips[--nskip].x);
}

/* ---- the UNet as a locus_denoiser (denoiser.h) ---- */

static void unet_den_forward(const locus_denoiser *d, const float *x, int B, int h, int w, const float *t, const float *ctx, int S,
                             const float *pooled, float *out, const locus_hooks *hooks) {
    const locus_unet *u = d->model;
    locus_unet_forward_cond(u, x, B, h, w, t, ctx, S, u->add_time ? pooled : NULL, out, hooks);
}

static size_t lin_params(const nn_linear *l) { return (size_t)l->in * l->out + (l->b ? (size_t)l->out : 0); }

static int unet_den_layers(const locus_denoiser *d, locus_layer_info *out, int max) {
    locus_attn_layer *al = malloc(sizeof *al * 4096);
    if (!al) return 0;
    int n = locus_unet_attn_layers(d->model, al, 4096), k = 0;
    for (int i = 0; i < n && k < max; i++, k++) {
        locus_layer_info *li = &out[k];
        memset(li, 0, sizeof *li);
        snprintf(li->name, sizeof li->name, "%s", al[i].name);
        li->kind = al[i].cross ? LOCUS_LAYER_CROSS : LOCUS_LAYER_SELF;
        li->heads = al[i].a->heads;
        li->text_params = al[i].cross ? lin_params(&al[i].a->k) + lin_params(&al[i].a->v) : 0;
        li->text_index = al[i].cross ? al[i].a->text_index : -1;
        snprintf(li->site, sizeof li->site, "%s", al[i].name);
    }
    free(al);
    return n;
}

static void unet_den_close(locus_denoiser *d) {
    locus_unet_free(d->model);
    free(d->model);
}

static locus_status unet_den_train_forward(const locus_denoiser *d, const float *x, int B, int h, int w, const float *t, const float *ctx,
                                           int S, const float *pooled, float *out, int checkpoint, void **tape) {
    const locus_unet *u = d->model;
    return locus_unet_forward_train_cond(u, x, B, h, w, t, ctx, S, u->add_time ? pooled : NULL, out, checkpoint, (locus_unet_tape **)tape);
}

static locus_status unet_den_backward(const locus_denoiser *d, void *tape, const float *dout, float *dx, float *dctx, float *dpooled,
                                      const locus_grads *g) {
    const locus_unet *u = d->model;
    if (dpooled && !u->add_time) { locus_unet_tape_free(tape); return locus_fail(LOCUS_E_ARG, "a UNet2DConditionModel has no pooled text input"); }
    return locus_unet_backward_cond(u, tape, dout, dx, dctx, dpooled, g);
}

static void unet_den_tape_free(void *tape) { locus_unet_tape_free(tape); }

const locus_denoiser_ops locus_unet_denoiser_ops = {"UNet2DConditionModel", unet_den_forward,   unet_den_layers,   unet_den_close,
                                                   unet_den_train_forward, unet_den_backward, unet_den_tape_free};

locus_status locus_unet_denoiser(locus_denoiser *d, locus_unet *u) {
    memset(d, 0, sizeof *d);
    d->ops = &locus_unet_denoiser_ops;
    d->model = u;
    d->loader = &u->L;
    d->in_channels = u->in_channels;
    d->out_channels = u->out_channels;
    d->sample_size = u->sample_size;
    d->sample_width = u->sample_width;
    d->size_multiple = 1 << (u->nblocks - 1);
    d->patch = 0;
    d->ctx_dim = u->ctx_dim;
    d->pooled_dim = u->add_time ? u->add_text_dim + UNET_TIME_IDS : 0; /* SDXL: [text_embeds | time ids] */
    d->pooled_extra = u->add_time ? UNET_TIME_IDS : 0;
    d->text_kv_projectable = 1;
    d->params = u->L.nparams;
    char (*names)[128] = malloc(sizeof *names * 4096);
    d->ntext_layers = names ? locus_unet_cross_layers(u, names, 4096) : 0;
    free(names);
    return LOCUS_OK;
}
