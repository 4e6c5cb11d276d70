/* train_common.c — the shared pieces of `locus train vae|unet|pipeline` (train_model.h): options, the image
 * folder, diffusers config.json files, torch-style initialisation and weight files.
 *
 * Config files: diffusers writes config.json from ConfigMixin (every __init__ argument, json.dumps(indent=2,
 * sort_keys=True) + "\n").  The templates below are the files diffusers 0.31.0 / transformers wrote for the
 * tiny test pipeline (tests/golden/pipelines/sd15-tiny), so the key set and each value's type are exactly
 * diffusers'; a user config (zoo/configs/<name>.json) overrides values key by key.
 */
#include "train_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/jsonw.h"
#include "../core/png.h"
#include "../core/safetensors.h"
#include "../core/strbuf.h"
#include "cli_opts.h"

/* ---- options ---- */

void locus_train_opts_defaults(locus_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->wd = 1e-2; o->b1 = 0.9; o->b2 = 0.999; o->eps = 1e-8; o->clip = 1.0;
    o->batch_size = 8; o->ckpt_every = 100; o->kl_weight = 1e-6; o->cfg_dropout = 0.1;
    o->lr = o->vae_lr = o->unet_lr = -1; /* the stage's default */
    o->tokenizer = "tests/golden/pipelines/sd15-tiny/tokenizer";
    o->tokenizer2 = "tests/golden/pipelines/sd3-tiny/tokenizer_2";
    o->samples = 4;
}

typedef struct {
    const char *data, *config, *out, *base, *tokenizer, *tokenizer2, *res, *text_config, *vae_config, *unet_config, *family, *sched_config;
    long long steps, batch, ckpt, threads, warmup, decay, seed, vae_steps, unet_steps, vae_batch, unet_batch, samples;
    double lr, wd, eps, clip, kl, drop, vae_lr, unet_lr, ema;
    const char *betas;
} raw_opts;

static const locus_help train_help = {
    "train",
    "vae --data DIR --config VAE_CONFIG.json -o OUTDIR [options]\n"
    "unet --data DIR -o OUTDIR [--base DIR] [--config UNET_CONFIG.json] [options]\n"
    "transformer --data DIR -o OUTDIR [--base DIR] [--config SD3_CONFIG.json] [options]\n"
    "pipeline -o OUTDIR [--family sd|sd3] [--text-config C] [--tokenizer DIR] [--data DIR --vae-config C --unet-config C ...] [options]",
    "Train an AutoencoderKL, a UNet2DConditionModel or an SD3Transformer2DModel from scratch and assemble a diffusers pipeline folder.",
    "vae: AutoencoderKL -> OUTDIR/vae.  unet: UNet2DConditionModel on the base's VAE latents -> OUTDIR/unet.\n"
    "transformer: SD3Transformer2DModel (flow matching) on the base's VAE latents -> OUTDIR/transformer.\n"
    "pipeline: the diffusers pipeline folder (model_index.json, scheduler/, tokenizer/, frozen random text_encoder/;\n"
    "--family sd3: StableDiffusion3Pipeline with two CLIP encoders and no T5); with --data (sd) it also trains vae/\n"
    "then unet/ (each stage resumable).  Checkpoints, loss.csv, loss.png and the pictures go to OUTDIR/train/; see\n"
    "docs/TRAINING.md.  Same bits for any ISA, thread count and kill + --resume.\n",
    "vae unet transformer pipeline"};

int locus_train_opts_parse(locus_train_opts *o, int argc, char **argv, const char *what) {
    static const locus_opt tab[] = {
        LOCUS_OPT_S(raw_opts, "--data", data, "DIR  image folder with metadata.jsonl (file_name, text) and PNGs (required for vae and unet)"),
        LOCUS_OPT_S(raw_opts, "--config", config, "FILE  architecture: a diffusers config.json, keys override the template (default: the template)"),
        LOCUS_OPT_S(raw_opts, "-o", out, "OUTDIR  output pipeline folder; the component goes to OUTDIR/vae or OUTDIR/unet (required)"),
        LOCUS_OPT_S(raw_opts, "--base", base, "DIR  unet, transformer: pipeline folder with vae/, the text encoder(s) and tokenizer(s), scheduler/ (default: -o)"),
        LOCUS_OPT_S(raw_opts, "--tokenizer", tokenizer, "DIR  pipeline: CLIP tokenizer folder to copy (default tests/golden/pipelines/sd15-tiny/tokenizer)"),
        LOCUS_OPT_S(raw_opts, "--tokenizer-2", tokenizer2, "DIR  pipeline --family sd3: tokenizer_2 folder to copy (default tests/golden/pipelines/sd3-tiny/tokenizer_2)"),
        LOCUS_OPT_S(raw_opts, "--text-config", text_config, "FILE  pipeline: CLIPTextModel config of the frozen random text encoder(s) (default: the template)"),
        LOCUS_OPT_S(raw_opts, "--family", family, "sd|sd3  pipeline: StableDiffusionPipeline or StableDiffusion3Pipeline skeleton (default sd)"),
        LOCUS_OPT_S(raw_opts, "--scheduler-config", sched_config, "FILE  pipeline: scheduler config over the template (DDIM for sd, FlowMatchEuler for sd3; default: the template)"),
        LOCUS_OPT_S(raw_opts, "--vae-config", vae_config, "FILE  pipeline: AutoencoderKL config (required with --data)"),
        LOCUS_OPT_S(raw_opts, "--unet-config", unet_config, "FILE  pipeline: UNet2DConditionModel config (default: the template)"),
        LOCUS_OPT_S(raw_opts, "--resolution", res, "WxH  training image size (default: the first image's size)"),
        LOCUS_OPT_I(raw_opts, "--steps", steps, 1, 100000000, "N  optimizer steps (default: one epoch)"),
        LOCUS_OPT_I(raw_opts, "--vae-steps", vae_steps, 1, 100000000, "N  pipeline: VAE steps (default: one epoch)"),
        LOCUS_OPT_I(raw_opts, "--unet-steps", unet_steps, 1, 100000000, "N  pipeline: UNet steps (default: one epoch)"),
        LOCUS_OPT_I(raw_opts, "--batch-size", batch, 1, 4096, "B  examples per step (default 8)"),
        LOCUS_OPT_I(raw_opts, "--vae-batch-size", vae_batch, 1, 4096, "B  pipeline: VAE batch (default --batch-size)"),
        LOCUS_OPT_I(raw_opts, "--unet-batch-size", unet_batch, 1, 4096, "B  pipeline: UNet batch (default --batch-size)"),
        LOCUS_OPT_F(raw_opts, "--lr", lr, 0, 10, "F  learning rate (default: vae 1e-4, unet and transformer 1e-3)"),
        LOCUS_OPT_F(raw_opts, "--vae-lr", vae_lr, 0, 10, "F  pipeline: VAE learning rate (default --lr, else 1e-4)"),
        LOCUS_OPT_F(raw_opts, "--unet-lr", unet_lr, 0, 10, "F  pipeline: UNet learning rate (default --lr, else 1e-3)"),
        LOCUS_OPT_F(raw_opts, "--weight-decay", wd, 0, 10, "F  AdamW weight decay (default 1e-2)"),
        LOCUS_OPT_F(raw_opts, "--ema", ema, 0, 1, "DECAY  EMA of the weights as diffusers' EMAModel; the averages are saved (default 0 = off)"),
        LOCUS_OPT_S(raw_opts, "--betas", betas, "B1,B2  AdamW betas (default 0.9,0.999)"),
        LOCUS_OPT_F(raw_opts, "--eps", eps, 0, 1, "F  AdamW eps, > 0 (default 1e-8)"),
        LOCUS_OPT_F(raw_opts, "--clip-grad", clip, 0, 1000000000, "F  clip_grad_norm max (default 1; 0 = off)"),
        LOCUS_OPT_I(raw_opts, "--warmup", warmup, 0, 100000000, "N  linear warmup steps (default 0)"),
        LOCUS_OPT_I(raw_opts, "--decay-steps", decay, 0, 100000000, "N  the last N steps take the learning rate linearly to 0 (default 0 = constant)"),
        LOCUS_OPT_I(raw_opts, "--seed", seed, 0, 9007199254740991LL, "S  initialisation and batch seed (default 0)"),
        LOCUS_OPT_F(raw_opts, "--kl-weight", kl, 0, 1e6, "F  vae: weight of the KL term (default 1e-6)"),
        LOCUS_OPT_F(raw_opts, "--cfg-dropout", drop, 0, 1, "P  unet, transformer: probability of the empty caption (default 0.1)"),
        LOCUS_OPT_I(raw_opts, "--checkpoint-every", ckpt, 0, 100000000, "N  steps between checkpoints (default 100; 0 = only at the end)"),
        LOCUS_OPT_I(raw_opts, "--threads", threads, 1, 1024, "N  threads (default: all cores; results do not change)"),
        LOCUS_OPT_I(raw_opts, "--samples", samples, 0, 16, "N  pictures at each checkpoint: reconstructions / samples of N images or captions (default 4; 0 = none)"),
        /* taken out before parsing (below); listed here for --help */
        LOCUS_OPT_HELP("--resume", "continue from OUTDIR/train/<stage>.ckpt, same bits as an uninterrupted run (default: off)"),
        LOCUS_OPT_HELP("--gradient-checkpointing", "re-run blocks in the backward: less memory, same bits (default: off)"),
        LOCUS_OPT_HELP("--fp16", "write the component weights as F16; checkpoints stay F32 (default: off)"),
        LOCUS_OPT_HELP("--train-text-encoder", "unet: train the text encoder's embeddings and final LayerNorm with the UNet (encoders without layers); transformer: the two encoders' token and position embeddings (one-layer encoders, zero projections) (default: frozen)"),
        LOCUS_OPT_HELP("--quiet", "no progress lines (default: off)"),
    };
    raw_opts r;
    memset(&r, 0, sizeof r);
    r.lr = -1; r.vae_lr = -1; r.unet_lr = -1; r.wd = o->wd; r.eps = o->eps; r.clip = o->clip; r.kl = o->kl_weight; r.drop = o->cfg_dropout;
    r.batch = o->batch_size; r.ckpt = o->ckpt_every; r.samples = o->samples; r.tokenizer = o->tokenizer; r.tokenizer2 = o->tokenizer2; r.seed = (long long)o->seed;
    /* flags without a value are taken out first */
    char **av = malloc((size_t)(argc + 1) * sizeof *av);
    if (!av) { fprintf(stderr, "locus train %s: out of memory\n", what); return 2; }
    int ac = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--resume")) o->resume = 1;
        else if (i > 0 && !strcmp(argv[i], "--gradient-checkpointing")) o->grad_ckpt = 1;
        else if (i > 0 && !strcmp(argv[i], "--quiet")) o->quiet = 1;
        else if (i > 0 && !strcmp(argv[i], "--fp16")) o->fp16 = 1;
        else if (i > 0 && !strcmp(argv[i], "--train-text-encoder")) o->train_text = 1;
        else av[ac++] = argv[i];
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "train %s", what);
    locus_help h = train_help; /* --help shows every stage; errors name the stage ('locus train --help' passes "") */
    for (int i = 1; i < ac; i++)
        if (!strcmp(av[i], "--help") || !strcmp(av[i], "-h")) {
            locus_help_print(stdout, &h, tab, sizeof tab / sizeof tab[0], NULL, 0);
            free(av);
            return 1;
        }
    if (*what) h.cmd = cmd;
    int rc = locus_opts_parse(&h, tab, sizeof tab / sizeof tab[0], ac, av, &r);
    free(av);
    if (rc == -1) return 1;
    if (rc) return rc;
    o->data = r.data; o->config = r.config; o->out = r.out; o->base = r.base; o->tokenizer = r.tokenizer;
    o->text_config = r.text_config; o->tokenizer2 = r.tokenizer2; o->sched_config = r.sched_config;
    o->family_sd3 = 0;
    if (r.family && !strcmp(r.family, "sd3")) o->family_sd3 = 1;
    else if (r.family && strcmp(r.family, "sd")) {
        fprintf(stderr, "locus train %s: --family %s: expected sd or sd3\n", what, r.family);
        return 2;
    }
    o->vae_config = r.vae_config; o->unet_config = r.unet_config;
    o->steps = (int)r.steps; o->batch_size = (int)r.batch; o->ckpt_every = (int)r.ckpt; o->threads = (int)r.threads;
    o->warmup = (int)r.warmup; o->decay = (int)r.decay; o->seed = (uint64_t)r.seed; o->lr = r.lr; o->ema = r.ema; o->vae_lr = r.vae_lr; o->unet_lr = r.unet_lr; o->wd = r.wd; o->eps = r.eps; o->clip = r.clip;
    o->kl_weight = r.kl; o->cfg_dropout = r.drop; o->samples = (int)r.samples;
    o->vae_steps = (int)r.vae_steps; o->unet_steps = (int)r.unet_steps; o->vae_batch = (int)r.vae_batch; o->unet_batch = (int)r.unet_batch;
    if (r.betas) {
        char *end;
        o->b1 = strtod(r.betas, &end);
        if (*end != ',' || !(o->b1 >= 0 && o->b1 < 1) || (o->b2 = strtod(end + 1, &end), *end) || !(o->b2 >= 0 && o->b2 < 1)) {
            fprintf(stderr, "locus train %s: --betas %s: expected B1,B2 in [0,1)\n", what, r.betas);
            return 2;
        }
    }
    if (!(o->eps > 0)) { /* the table's bounds are integers: 0 is checked here (Adam divides by sqrt(v) + eps) */
        fprintf(stderr, "locus train %s: --eps %g: must be above 0\n", what, o->eps);
        return 2;
    }
    if (o->ema >= 1) {
        fprintf(stderr, "locus train %s: --ema %g: the decay must be below 1\n", what, o->ema);
        return 2;
    }
    if (r.res) {
        char *end;
        long w = strtol(r.res, &end, 10), h = *end == 'x' ? strtol(end + 1, &end, 10) : -1;
        if (*end || w < 8 || h < 8 || w > 4096 || h > 4096) {
            fprintf(stderr, "locus train %s: --resolution %s: expected WxH (8..4096 each)\n", what, r.res);
            return 2;
        }
        o->W = (int)w; o->H = (int)h;
    }
    if (!o->out) { fprintf(stderr, "locus train %s: -o OUTDIR is required (see --help)\n", what); return 2; }
    return 0;
}

/* ---- the image folder ---- */

void locus_train_images_free(locus_train_images *d) {
    for (int i = 0; i < d->n; i++) free(d->caption[i]);
    free(d->caption);
    free(d->pix);
    memset(d, 0, sizeof *d);
}

/* u8 RGB src[h][w][3] -> dst[H][W][3], bilinear with half-pixel centres (edges clamped), rounded. */
static void resize_rgb(const uint8_t *src, int w, int h, uint8_t *dst, int W, int H) {
    float sy = (float)h / (float)H, sx = (float)w / (float)W;
    for (int y = 0; y < H; y++) {
        float fy = ((float)y + 0.5f) * sy - 0.5f;
        if (fy < 0) fy = 0;
        int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        float wy = fy - (float)y0;
        for (int x = 0; x < W; x++) {
            float fx = ((float)x + 0.5f) * sx - 0.5f;
            if (fx < 0) fx = 0;
            int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            float wx = fx - (float)x0;
            for (int c = 0; c < 3; c++) {
                float a = src[((size_t)y0 * w + x0) * 3 + c], b = src[((size_t)y0 * w + x1) * 3 + c];
                float cc = src[((size_t)y1 * w + x0) * 3 + c], dd = src[((size_t)y1 * w + x1) * 3 + c];
                float t = a + (b - a) * wx, u = cc + (dd - cc) * wx, v = t + (u - t) * wy;
                dst[((size_t)y * W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : (int)(v + 0.5f));
            }
        }
    }
}

locus_status locus_train_images_load(locus_train_images *d, const char *dir, int W, int H) {
    memset(d, 0, sizeof *d);
    char path[4200];
    snprintf(path, sizeof path, "%s/metadata.jsonl", dir);
    char *text;
    size_t len;
    locus_status st = locus_read_file(path, &text, &len);
    if (st == LOCUS_E_NOTFOUND) return locus_fail(st, "--data %s: no metadata.jsonl (one {\"file_name\": ..., \"text\": ...} per line)", dir);
    if (st) return st;
    int line = 0, cap = 0;
    for (char *s = text, *nl; !st && s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl) *nl = 0;
        line++;
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!*s) continue;
        locus_json_doc doc;
        if (locus_json_parse(&doc, s, strlen(s), "metadata.jsonl")) { st = locus_fail(LOCUS_E_FORMAT, "%s:%d: %s", path, line, locus_errmsg()); break; }
        const char *fn = locus_json_str(doc.root, "file_name", NULL, NULL), *cap_ = locus_json_str(doc.root, "text", NULL, NULL);
        if (!fn || !cap_) { locus_json_free(&doc); st = locus_fail(LOCUS_E_FORMAT, "%s:%d: needs string fields file_name and text", path, line); break; }
        char ip[4400];
        snprintf(ip, sizeof ip, "%s/%s", dir, fn);
        uint8_t *pix = NULL;
        int w, h;
        if (locus_png_read_rgb(ip, &pix, &w, &h)) {
            st = locus_fail(LOCUS_E_FORMAT, "%s:%d: cannot read image %s (PNG only): %s", path, line, ip, locus_errmsg());
            locus_json_free(&doc);
            break;
        }
        if (!W) { W = w; H = h; }
        if (d->n == cap) {
            cap = cap ? 2 * cap : 256;
            uint8_t *np = realloc(d->pix, (size_t)cap * W * H * 3);
            char **nc = np ? realloc(d->caption, (size_t)cap * sizeof *nc) : NULL;
            if (np) d->pix = np;
            if (nc) d->caption = nc;
            if (!nc) { free(pix); locus_json_free(&doc); st = locus_fail(LOCUS_E_NOMEM, "out of memory for %d images", cap); break; }
        }
        uint8_t *dst = d->pix + (size_t)d->n * W * H * 3;
        if (w == W && h == H) memcpy(dst, pix, (size_t)W * H * 3);
        else resize_rgb(pix, w, h, dst, W, H);
        free(pix);
        d->caption[d->n] = strdup(cap_);
        locus_json_free(&doc);
        if (!d->caption[d->n]) { st = locus_fail(LOCUS_E_NOMEM, "out of memory"); break; }
        d->n++;
    }
    free(text);
    d->W = W; d->H = H;
    if (!st && d->n == 0) st = locus_fail(LOCUS_E_FORMAT, "%s: no examples", path);
    if (st) locus_train_images_free(d);
    return st;
}

void locus_train_image_f32(const locus_train_images *d, int i, float *out) {
    const uint8_t *p = d->pix + (size_t)i * d->W * d->H * 3;
    size_t hw = (size_t)d->W * d->H;
    for (size_t k = 0; k < hw; k++)
        for (int c = 0; c < 3; c++) out[c * hw + k] = ((float)p[k * 3 + c] / 255.0f - 0.5f) / 0.5f;
}

/* ---- config files ---- */

static const char *TEMPLATE_VAE =
    "{\"_class_name\": \"AutoencoderKL\", \"_diffusers_version\": \"0.31.0\", \"act_fn\": \"silu\", \"block_out_channels\": [8, 16, 16],"
    " \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], \"force_upcast\": true, \"in_channels\": 3,"
    " \"latent_channels\": 4, \"latents_mean\": null, \"latents_std\": null, \"layers_per_block\": 1, \"mid_block_add_attention\": true,"
    " \"norm_num_groups\": 4, \"out_channels\": 3, \"sample_size\": 32, \"scaling_factor\": 0.18215, \"shift_factor\": null,"
    " \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\"], \"use_post_quant_conv\": true, \"use_quant_conv\": true}";

static const char *TEMPLATE_UNET =
    "{\"_class_name\": \"UNet2DConditionModel\", \"_diffusers_version\": \"0.31.0\", \"act_fn\": \"silu\", \"addition_embed_type\": null,"
    " \"addition_embed_type_num_heads\": 64, \"addition_time_embed_dim\": null, \"attention_head_dim\": 2, \"attention_type\": \"default\","
    " \"block_out_channels\": [16, 32], \"center_input_sample\": false, \"class_embed_type\": null, \"class_embeddings_concat\": false,"
    " \"conv_in_kernel\": 3, \"conv_out_kernel\": 3, \"cross_attention_dim\": 32, \"cross_attention_norm\": null,"
    " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"], \"downsample_padding\": 1, \"dropout\": 0.0, \"dual_cross_attention\": false,"
    " \"encoder_hid_dim\": null, \"encoder_hid_dim_type\": null, \"flip_sin_to_cos\": true, \"freq_shift\": 0, \"in_channels\": 4,"
    " \"layers_per_block\": 2, \"mid_block_only_cross_attention\": null, \"mid_block_scale_factor\": 1, \"mid_block_type\": \"UNetMidBlock2DCrossAttn\","
    " \"norm_eps\": 1e-05, \"norm_num_groups\": 8, \"num_attention_heads\": null, \"num_class_embeds\": null, \"only_cross_attention\": false,"
    " \"out_channels\": 4, \"projection_class_embeddings_input_dim\": null, \"resnet_out_scale_factor\": 1.0, \"resnet_skip_time_act\": false,"
    " \"resnet_time_scale_shift\": \"default\", \"reverse_transformer_layers_per_block\": null, \"sample_size\": 8, \"time_cond_proj_dim\": null,"
    " \"time_embedding_act_fn\": null, \"time_embedding_dim\": null, \"time_embedding_type\": \"positional\", \"timestep_post_act\": null,"
    " \"transformer_layers_per_block\": 1, \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"], \"upcast_attention\": false,"
    " \"use_linear_projection\": false}";

static const char *TEMPLATE_CLIP =
    "{\"architectures\": [\"CLIPTextModel\"], \"attention_dropout\": 0.0, \"bos_token_id\": 0, \"dropout\": 0.0, \"eos_token_id\": 2,"
    " \"hidden_act\": \"quick_gelu\", \"hidden_size\": 32, \"initializer_factor\": 1.0, \"initializer_range\": 0.02, \"intermediate_size\": 128,"
    " \"layer_norm_eps\": 1e-05, \"max_position_embeddings\": 77, \"model_type\": \"clip_text_model\", \"num_attention_heads\": 4,"
    " \"num_hidden_layers\": 3, \"pad_token_id\": 1, \"projection_dim\": 32, \"torch_dtype\": \"float32\", \"vocab_size\": 49408}";

static const char *TEMPLATE_DDIM =
    "{\"_class_name\": \"DDIMScheduler\", \"_diffusers_version\": \"0.31.0\", \"beta_end\": 0.012, \"beta_schedule\": \"scaled_linear\","
    " \"beta_start\": 0.00085, \"clip_sample\": false, \"clip_sample_range\": 1.0, \"dynamic_thresholding_ratio\": 0.995,"
    " \"num_train_timesteps\": 1000, \"prediction_type\": \"epsilon\", \"rescale_betas_zero_snr\": false, \"sample_max_value\": 1.0,"
    " \"set_alpha_to_one\": false, \"steps_offset\": 1, \"thresholding\": false, \"timestep_spacing\": \"leading\", \"trained_betas\": null}";

/* SD3 pieces (tests/golden/pipelines/sd3-tiny, written by diffusers 0.31.0 / transformers) */
static const char *TEMPLATE_SD3 =
    "{\"_class_name\": \"SD3Transformer2DModel\", \"_diffusers_version\": \"0.31.0\", \"attention_head_dim\": 8, \"caption_projection_dim\": 32,"
    " \"dual_attention_layers\": [], \"in_channels\": 16, \"joint_attention_dim\": 44, \"num_attention_heads\": 4, \"num_layers\": 3,"
    " \"out_channels\": 16, \"patch_size\": 2, \"pooled_projection_dim\": 40, \"pos_embed_max_size\": 16, \"qk_norm\": null, \"sample_size\": 8}";

static const char *TEMPLATE_FLOW =
    "{\"_class_name\": \"FlowMatchEulerDiscreteScheduler\", \"_diffusers_version\": \"0.31.0\", \"base_image_seq_len\": 256, \"base_shift\": 0.5,"
    " \"max_image_seq_len\": 4096, \"max_shift\": 1.15, \"num_train_timesteps\": 1000, \"shift\": 3.0, \"use_dynamic_shifting\": false}";

static const char *TEMPLATE_CLIP_PROJ =
    "{\"architectures\": [\"CLIPTextModelWithProjection\"], \"attention_dropout\": 0.0, \"bos_token_id\": 0, \"dropout\": 0.0, \"eos_token_id\": 2,"
    " \"hidden_act\": \"quick_gelu\", \"hidden_size\": 16, \"initializer_factor\": 1.0, \"initializer_range\": 0.02, \"intermediate_size\": 64,"
    " \"layer_norm_eps\": 1e-05, \"max_position_embeddings\": 77, \"model_type\": \"clip_text_model\", \"num_attention_heads\": 2,"
    " \"num_hidden_layers\": 3, \"pad_token_id\": 1, \"projection_dim\": 16, \"torch_dtype\": \"float32\", \"vocab_size\": 49408}";

/* A float as Python's repr: the fewest significant digits that read back to the same double, written in
 * positional notation when the decimal exponent is in [-4, 16) (with ".0" when that looks like an integer:
 * 50.0, 0.0001) and as d.ddde+XX otherwise (1e-05, 1e+16) — both as C's printf spells them. */
static void put_pyfloat(locus_strbuf *b, double v) {
    char s[64];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(s, sizeof s, "%.*e", p - 1, v);
        if (strtod(s, NULL) == v) break;
    }
    snprintf(s, sizeof s, "%.*e", p - 1, v);
    int e = atoi(strchr(s, 'e') + 1);
    if (e >= -4 && e < 16) {
        snprintf(s, sizeof s, "%.*f", p - 1 - e > 0 ? p - 1 - e : 0, v);
        locus_sb_puts(b, s);
        if (!strchr(s, '.')) locus_sb_puts(b, ".0");
    } else locus_sb_puts(b, s);
}

static void put_value(locus_strbuf *b, const locus_json *v, int as_float, int indent);

static void put_indent(locus_strbuf *b, int n) {
    for (int i = 0; i < n; i++) locus_sb_puts(b, "  ");
}

static void put_string(locus_strbuf *b, const char *s, size_t n) {
    /* json.dumps(ensure_ascii=True) escapes non-ASCII; config strings here are ASCII identifiers */
    locus_json_put_strn(b, s, n);
}

static void put_value(locus_strbuf *b, const locus_json *v, int as_float, int indent) {
    switch (v->type) {
    case JSON_NULL: locus_sb_puts(b, "null"); break;
    case JSON_BOOL: locus_sb_puts(b, v->num != 0 ? "true" : "false"); break;
    case JSON_NUMBER:
        if (v->is_int && !as_float) locus_sb_printf(b, "%lld", (long long)v->i);
        else put_pyfloat(b, v->num);
        break;
    case JSON_STRING: put_string(b, v->str, v->len); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        if (!v->len) { locus_sb_puts(b, v->type == JSON_ARRAY ? "[]" : "{}"); break; }
        locus_sb_puts(b, v->type == JSON_ARRAY ? "[\n" : "{\n");
        for (size_t i = 0; i < v->len; i++) {
            put_indent(b, indent + 1);
            if (v->type == JSON_OBJECT) { put_string(b, v->kids[i]->key, strlen(v->kids[i]->key)); locus_sb_puts(b, ": "); }
            put_value(b, v->kids[i], as_float, indent + 1);
            locus_sb_puts(b, i + 1 < v->len ? ",\n" : "\n");
        }
        put_indent(b, indent);
        locus_sb_puts(b, v->type == JSON_ARRAY ? "]" : "}");
        break;
    }
}

/* Is user value u acceptable where the template has t?  (null in the template: anything.) */
static int same_kind(const locus_json *t, const locus_json *u) {
    if (t->type == JSON_NULL || u->type == JSON_NULL) return 1;
    /* per-block lists where the template has one value (attention_head_dim, layers_per_block, ...: diffusers
     * takes an int or a tuple) */
    if (u->type == JSON_ARRAY && t->type != JSON_ARRAY) return !u->len || same_kind(t, u->kids[0]);
    if (t->type != u->type) return 0;
    if (t->type == JSON_NUMBER && t->is_int && !u->is_int) return 0;
    if (t->type == JSON_ARRAY && t->len && u->len) return same_kind(t->kids[0], u->kids[0]);
    return 1;
}

locus_status locus_train_config_text(int kind, const char *user_path, const char *over, char **text) {
    const char *tpl = kind == LOCUS_CFG_VAE ? TEMPLATE_VAE : kind == LOCUS_CFG_UNET ? TEMPLATE_UNET : kind == LOCUS_CFG_CLIP_TEXT ? TEMPLATE_CLIP
                    : kind == LOCUS_CFG_SD3 ? TEMPLATE_SD3 : kind == LOCUS_CFG_FLOW ? TEMPLATE_FLOW : kind == LOCUS_CFG_CLIP_PROJ ? TEMPLATE_CLIP_PROJ
                    : TEMPLATE_DDIM;
    locus_json_doc td, ud = {0}, od = {0};
    locus_status st = locus_json_parse(&td, tpl, strlen(tpl), "config template");
    if (st) return st;
    if (user_path && (st = locus_json_parse_file(&ud, user_path))) { locus_json_free(&td); return st; }
    if (over && (st = locus_json_parse(&od, over, strlen(over), "computed config values"))) {
        locus_json_free(&td);
        if (user_path) locus_json_free(&ud);
        return st;
    }
    const char *src = user_path ? user_path : "(defaults)";
    if (user_path && ud.root->type != JSON_OBJECT) st = locus_fail(LOCUS_E_FORMAT, "%s: not a JSON object", src);
    for (size_t i = 0; !st && user_path && i < ud.root->len; i++) { /* every user key must be a template key */
        const locus_json *u = ud.root->kids[i], *t = locus_json_get(td.root, u->key);
        if (!strcmp(u->key, "_diffusers_version") || !strcmp(u->key, "transformers_version") || !strcmp(u->key, "_name_or_path")) continue;
        if (!t) st = locus_fail(LOCUS_E_ARG, "%s: unknown key '%s' for a %s config", src, u->key, locus_json_str(td.root, "_class_name", "CLIPTextModel", NULL));
        else if (!strcmp(u->key, "_class_name") && (u->type != JSON_STRING || strcmp(u->str, t->str)))
            st = locus_fail(LOCUS_E_ARG, "%s: _class_name must be \"%s\"", src, t->str);
        else if (!same_kind(t, u)) st = locus_fail(LOCUS_E_ARG, "%s: '%s' has the wrong type (the template's value is of another kind)", src, u->key);
    }
    locus_strbuf b = {0};
    locus_sb_puts(&b, "{\n");
    for (size_t i = 0; !st && i < td.root->len; i++) {
        const locus_json *t = td.root->kids[i], *v = t;
        const locus_json *u = user_path ? locus_json_get(ud.root, t->key) : NULL, *o = over ? locus_json_get(od.root, t->key) : NULL;
        if (u) v = u;
        if (o) v = o;
        int as_float = t->type == JSON_NUMBER && !t->is_int;
        put_indent(&b, 1);
        put_string(&b, t->key, strlen(t->key));
        locus_sb_puts(&b, ": ");
        put_value(&b, v, as_float, 1);
        locus_sb_puts(&b, i + 1 < td.root->len ? ",\n" : "\n");
    }
    locus_sb_puts(&b, "}\n");
    if (!st && locus_sb_status(&b)) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
    locus_json_free(&td);
    if (user_path) locus_json_free(&ud);
    if (over) locus_json_free(&od);
    if (st) { locus_sb_free(&b); return st; }
    *text = locus_sb_take(&b);
    return LOCUS_OK;
}

locus_status locus_train_write_config(int kind, const char *user_path, const char *over, const char *path) {
    char *text;
    locus_status st = locus_train_config_text(kind, user_path, over, &text);
    if (st) return st;
    st = locus_write_atomic(path, text, strlen(text));
    free(text);
    return st;
}

/* ---- initialisation and weights ---- */

void locus_train_init_torch(locus_loader *L, uint64_t seed) {
    for (size_t i = 0; i < L->nrec; i++) {
        locus_param_rec *r = &L->params[i];
        if (r->ndim != 1) continue;
        size_t nl = strlen(r->name);
        int is_bias = nl > 5 && !strcmp(r->name + nl - 5, ".bias");
        int is_w = nl > 7 && !strcmp(r->name + nl - 7, ".weight");
        if (is_w) { /* a 1-D weight is a norm's scale */
            for (size_t k = 0; k < r->numel; k++) r->data[k] = 1.0f;
            continue;
        }
        if (!is_bias) continue;
        char wn[600];
        snprintf(wn, sizeof wn, "%.*s.weight", (int)(nl - 5), r->name);
        const locus_param_rec *w = locus_loader_find_param(L, wn);
        if (!w || w->ndim < 2) { /* a norm's shift */
            for (size_t k = 0; k < r->numel; k++) r->data[k] = 0.0f;
            continue;
        }
        float b = 1.0f / sqrtf((float)(w->numel / (size_t)w->shape[0]));
        uint64_t s = seed ^ 0xb1a5b1a5b1a5ull;
        for (const char *c = r->name; *c; c++) s = (s ^ (unsigned char)*c) * 0x100000001b3ull;
        locus_fill_uniform(s, r->data, r->numel, -b, b);
    }
}

uint16_t locus_train_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* NaN (quiet) */
    if (ax >= 0x47800000u) return (uint16_t)(sign | 0x7c00u);                      /* >= 65536 (and inf): inf */
    if (ax < 0x38800000u) { /* below 2^-14: a binary16 subnormal (or zero) in units of 2^-24 */
        uint32_t e = ax >> 23;
        if (e < 102) return (uint16_t)sign; /* < 2^-25: rounds to zero */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)e; /* 14 .. 24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t h = (ax >> 13) - (112u << 10), rem = ax & 0x1fffu; /* rebias the exponent, keep 10 mantissa bits */
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* a carry into the exponent is the right rounding */
    return (uint16_t)(sign | h);
}

locus_status locus_train_add_tensor(locus_st_writer *w, const char *name, int ndim, const int64_t *shape, const float *x, size_t numel, int fp16) {
    if (!fp16) return locus_st_writer_add(w, name, LOCUS_F32, ndim, shape, x);
    uint16_t *h = malloc((numel ? numel : 1) * sizeof *h);
    if (!h) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    for (size_t i = 0; i < numel; i++) h[i] = locus_train_f16(x[i]);
    locus_status st = locus_st_writer_add(w, name, LOCUS_F16, ndim, shape, h);
    free(h);
    return st;
}

locus_status locus_train_save_weights(const locus_grads *g, const char *path, const char *const *meta, int fp16) {
    locus_st_writer *w = locus_st_writer_new();
    if (!w) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    locus_status st = LOCUS_OK;
    for (size_t i = 0; i < g->n && !st; i++)
        st = locus_train_add_tensor(w, g->e[i].name, g->e[i].ndim, g->e[i].shape, g->e[i].param, g->e[i].numel, fp16);
    for (int i = 0; meta && meta[i] && meta[i + 1] && !st; i += 2) st = locus_st_writer_add_meta(w, meta[i], meta[i + 1]);
    if (!st) st = locus_st_writer_save(w, path);
    locus_st_writer_free(w);
    return st;
}
