/* train_pipeline.c — `locus train pipeline` and the `locus train` dispatcher.
 *
 * The pipeline folder is what diffusers' StableDiffusionPipeline.save_pretrained writes: model_index.json,
 * scheduler/scheduler_config.json (DDIMScheduler, SD1.x's scaled-linear betas), tokenizer/ (the real CLIP
 * BPE vocab.json + merges.txt and the two tokenizer JSON files, copied), text_encoder/ (CLIPTextModel
 * config.json + model.safetensors), vae/ and unet/ (written by `train vae` / `train unet`).  File formats and
 * key sets follow tests/golden/pipelines/sd15-tiny, which diffusers 0.31.0 wrote.
 *
 * The text encoder is a FROZEN, randomly initialised CLIP text transformer (transformers' CLIPTextModel
 * _init_weights: embeddings N(0, 0.02 f), attention and MLP projections N(0, the fan-scaled stds), zero
 * biases, unit LayerNorms; counter-seeded torch-compatible randn, so the same bits on every machine).
 * locus has no text-encoder backward yet; a frozen random transformer with residual connections keeps each
 * token's identity and position in its output rows, which is what cross-attention needs to learn which
 * (sub)word to draw (docs/TRAINING.md discusses the choice).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt */
#endif

#include "../core/fileio.h"
#include "../core/safetensors.h"
#include "../core/version.h"
#include "../simd/ops.h"
#include "train_model.h"

static const char *MODEL_INDEX =
    "{\n  \"_class_name\": \"StableDiffusionPipeline\",\n  \"_diffusers_version\": \"0.31.0\",\n  \"feature_extractor\": [\n    null,\n    null\n  ],\n"
    "  \"image_encoder\": [\n    null,\n    null\n  ],\n  \"requires_safety_checker\": false,\n  \"safety_checker\": [\n    null,\n    null\n  ],\n"
    "  \"scheduler\": [\n    \"diffusers\",\n    \"DDIMScheduler\"\n  ],\n  \"text_encoder\": [\n    \"transformers\",\n    \"CLIPTextModel\"\n  ],\n"
    "  \"tokenizer\": [\n    \"transformers\",\n    \"CLIPTokenizer\"\n  ],\n  \"unet\": [\n    \"diffusers\",\n    \"UNet2DConditionModel\"\n  ],\n"
    "  \"vae\": [\n    \"diffusers\",\n    \"AutoencoderKL\"\n  ]\n}\n";

static const char *MODEL_INDEX_SD3 =
    "{\n  \"_class_name\": \"StableDiffusion3Pipeline\",\n  \"_diffusers_version\": \"0.31.0\",\n"
    "  \"scheduler\": [\n    \"diffusers\",\n    \"FlowMatchEulerDiscreteScheduler\"\n  ],\n"
    "  \"text_encoder\": [\n    \"transformers\",\n    \"CLIPTextModelWithProjection\"\n  ],\n"
    "  \"text_encoder_2\": [\n    \"transformers\",\n    \"CLIPTextModelWithProjection\"\n  ],\n"
    "  \"text_encoder_3\": [\n    null,\n    null\n  ],\n"
    "  \"tokenizer\": [\n    \"transformers\",\n    \"CLIPTokenizer\"\n  ],\n  \"tokenizer_2\": [\n    \"transformers\",\n    \"CLIPTokenizer\"\n  ],\n"
    "  \"tokenizer_3\": [\n    null,\n    null\n  ],\n"
    "  \"transformer\": [\n    \"diffusers\",\n    \"SD3Transformer2DModel\"\n  ],\n  \"vae\": [\n    \"diffusers\",\n    \"AutoencoderKL\"\n  ]\n}\n";

static int exists(const char *p) { return access(p, F_OK) == 0; }

static locus_status copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    locus_status st = locus_read_file(from, &data, &len);
    if (st) return locus_fail(st, "tokenizer: %s", locus_errmsg());
    st = locus_write_atomic(to, data, len);
    free(data);
    return st;
}

locus_status locus_train_write_text_encoder(const char *cfg_path, const char *out, uint64_t seed, int fp16, int with_proj) {
    locus_json_doc doc;
    locus_status st = locus_json_parse_file(&doc, cfg_path);
    if (st) return st;
    int64_t V = locus_json_int(doc.root, "vocab_size", 49408, NULL), D = locus_json_int(doc.root, "hidden_size", 512, NULL);
    int64_t F = locus_json_int(doc.root, "intermediate_size", 2048, NULL), P = locus_json_int(doc.root, "max_position_embeddings", 77, NULL);
    int64_t NL = locus_json_int(doc.root, "num_hidden_layers", 12, NULL), PJ = locus_json_int(doc.root, "projection_dim", 512, NULL);
    double fac = locus_json_num(doc.root, "initializer_factor", 1.0, NULL), rng = locus_json_num(doc.root, "initializer_range", 0.02, NULL);
    locus_json_free(&doc);
    if (V < 1 || D < 1 || F < 1 || P < 1 || NL < 0 || PJ < 1 || PJ > 65536 || V * D > (1LL << 30)) return locus_fail(LOCUS_E_ARG, "%s: text encoder sizes out of range", cfg_path);
    locus_st_writer *w = locus_st_writer_new();
    float *buf = malloc((size_t)(V * D > F * D ? V * D : F * D) * sizeof(float)); /* the largest tensor */
    if (!w || !buf) { locus_st_writer_free(w); free(buf); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    double in_std = pow((double)D, -0.5) * pow(2.0 * (double)NL, -0.5) * fac, out_std = pow((double)D, -0.5) * fac;
    double fc_std = pow(2.0 * (double)D, -0.5) * fac;
    char name[256];
    uint64_t k = 0;
#define NORMAL(nm, r, c, sd)                                                                     \
    do {                                                                                         \
        int64_t sh_[2] = {r, c};                                                                 \
        locus_randn(seed * 1000003ull + (++k), buf, (size_t)((r) * (c)));                        \
        for (int64_t q_ = 0; q_ < (r) * (c); q_++) buf[q_] = (float)((double)buf[q_] * (sd));   \
        if (!st) st = locus_train_add_tensor(w, nm, (c) ? 2 : 1, sh_, buf, (size_t)((r) * (c)), fp16); \
    } while (0)
#define CONST(nm, n, val)                                                                        \
    do {                                                                                         \
        int64_t sh_[1] = {n};                                                                    \
        for (int64_t q_ = 0; q_ < (n); q_++) buf[q_] = (val);                                   \
        if (!st) st = locus_train_add_tensor(w, nm, 1, sh_, buf, (size_t)(n), fp16);               \
    } while (0)
    NORMAL("text_model.embeddings.token_embedding.weight", V, D, rng * fac);
    NORMAL("text_model.embeddings.position_embedding.weight", P, D, rng * fac);
    int64_t *ids = malloc((size_t)P * sizeof *ids), sh_ids[2] = {1, P};
    if (!ids) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
    for (int64_t i = 0; !st && i < P; i++) ids[i] = i;
    if (!st && !with_proj) st = locus_st_writer_add(w, "text_model.embeddings.position_ids", LOCUS_I64, 2, sh_ids, ids);
    free(ids);
    for (int64_t l = 0; l < NL; l++) {
        static const char *proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int j = 0; j < 4; j++) {
            snprintf(name, sizeof name, "text_model.encoder.layers.%lld.self_attn.%s.weight", (long long)l, proj[j]);
            NORMAL(name, D, D, j < 3 ? in_std : out_std);
            snprintf(name, sizeof name, "text_model.encoder.layers.%lld.self_attn.%s.bias", (long long)l, proj[j]);
            CONST(name, D, 0.0f);
        }
        snprintf(name, sizeof name, "text_model.encoder.layers.%lld.mlp.fc1.weight", (long long)l);
        NORMAL(name, F, D, fc_std);
        snprintf(name, sizeof name, "text_model.encoder.layers.%lld.mlp.fc1.bias", (long long)l);
        CONST(name, F, 0.0f);
        snprintf(name, sizeof name, "text_model.encoder.layers.%lld.mlp.fc2.weight", (long long)l);
        NORMAL(name, D, F, in_std);
        snprintf(name, sizeof name, "text_model.encoder.layers.%lld.mlp.fc2.bias", (long long)l);
        CONST(name, D, 0.0f);
        for (int j = 1; j <= 2; j++) {
            snprintf(name, sizeof name, "text_model.encoder.layers.%lld.layer_norm%d.weight", (long long)l, j);
            CONST(name, D, 1.0f);
            snprintf(name, sizeof name, "text_model.encoder.layers.%lld.layer_norm%d.bias", (long long)l, j);
            CONST(name, D, 0.0f);
        }
    }
    CONST("text_model.final_layer_norm.weight", D, 1.0f);
    CONST("text_model.final_layer_norm.bias", D, 0.0f);
    if (with_proj && !st) { /* zeros: pooled text embeddings exactly 0 */
        float *z = calloc((size_t)(PJ * D), sizeof(float));
        int64_t sh[2] = {PJ, D};
        st = z ? locus_train_add_tensor(w, "text_projection.weight", 2, sh, z, (size_t)(PJ * D), fp16) : locus_fail(LOCUS_E_NOMEM, "out of memory");
        free(z);
    }
#undef NORMAL
#undef CONST
    if (!st) st = locus_st_writer_add_meta(w, "format", "pt");
    if (!st) st = locus_st_writer_save(w, out);
    locus_st_writer_free(w);
    free(buf);
    return st;
}

locus_status locus_train_skeleton(const locus_train_opts *o) {
    char p[4400], q[4400];
    locus_status st = locus_mkdir(o->out);
    snprintf(p, sizeof p, "%s/model_index.json", o->out);
    if (!st && !exists(p)) st = locus_write_atomic(p, MODEL_INDEX, strlen(MODEL_INDEX));
    snprintf(p, sizeof p, "%s/scheduler", o->out);
    if (!st) st = locus_mkdir(p);
    snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", o->out);
    if (!st && !exists(p)) st = locus_train_write_config(LOCUS_CFG_DDIM, o->sched_config, NULL, p);
    snprintf(p, sizeof p, "%s/tokenizer", o->out);
    if (!st) st = locus_mkdir(p);
    static const char *tokfiles[] = {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"};
    for (int i = 0; i < 4 && !st; i++) {
        snprintf(p, sizeof p, "%s/tokenizer/%s", o->out, tokfiles[i]);
        snprintf(q, sizeof q, "%s/%s", o->tokenizer, tokfiles[i]);
        if (!exists(p)) st = copy_file(q, p);
    }
    snprintf(p, sizeof p, "%s/text_encoder", o->out);
    if (!st) st = locus_mkdir(p);
    snprintf(p, sizeof p, "%s/text_encoder/config.json", o->out);
    snprintf(q, sizeof q, "%s/text_encoder/model.safetensors", o->out);
    if (!st && !exists(q)) { /* config and weights together, the weights last (their presence means done) */
        st = locus_train_write_config(LOCUS_CFG_CLIP_TEXT, o->text_config, o->fp16 ? "{\"torch_dtype\": \"float16\"}" : NULL, p);
        if (!st) st = locus_train_write_text_encoder(p, q, o->seed, o->fp16, 0);
    }
    return st;
}

/* SD3 text encoders: at least one layer (the pipeline reads the penultimate hidden state, i.e. here the
 * embeddings), zero text projections (train_sd3.c).  Two encoders, seeds o->seed and o->seed + 1. */
locus_status locus_train_skeleton_sd3(const locus_train_opts *o) {
    char p[4400], q[4400];
    locus_status st = locus_mkdir(o->out);
    snprintf(p, sizeof p, "%s/model_index.json", o->out);
    if (!st && !exists(p)) st = locus_write_atomic(p, MODEL_INDEX_SD3, strlen(MODEL_INDEX_SD3));
    snprintf(p, sizeof p, "%s/scheduler", o->out);
    if (!st) st = locus_mkdir(p);
    snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", o->out);
    if (!st && !exists(p)) st = locus_train_write_config(LOCUS_CFG_FLOW, o->sched_config, NULL, p);
    static const char *tokfiles[] = {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"};
    for (int k = 0; k < 2 && !st; k++) {
        const char *sub = k ? "tokenizer_2" : "tokenizer";
        snprintf(p, sizeof p, "%s/%s", o->out, sub);
        st = locus_mkdir(p);
        for (int i = 0; i < 4 && !st; i++) {
            snprintf(p, sizeof p, "%s/%s/%s", o->out, sub, tokfiles[i]);
            snprintf(q, sizeof q, "%s/%s", k ? o->tokenizer2 : o->tokenizer, tokfiles[i]);
            if (!exists(p)) st = copy_file(q, p);
        }
    }
    for (int k = 0; k < 2 && !st; k++) {
        const char *sub = k ? "text_encoder_2" : "text_encoder";
        snprintf(p, sizeof p, "%s/%s", o->out, sub);
        st = locus_mkdir(p);
        snprintf(p, sizeof p, "%s/%s/config.json", o->out, sub);
        snprintf(q, sizeof q, "%s/%s/model.safetensors", o->out, sub);
        if (st || exists(q)) continue;
        char *cfg = NULL;
        st = locus_train_config_text(LOCUS_CFG_CLIP_PROJ, o->text_config, o->fp16 ? "{\"torch_dtype\": \"float16\"}" : NULL, &cfg);
        if (!st) {
            locus_json_doc d;
            if (!(st = locus_json_parse(&d, cfg, strlen(cfg), p))) {
                if (locus_json_int(d.root, "num_hidden_layers", 0, NULL) < 1)
                    st = locus_fail(LOCUS_E_ARG, "--text-config: an SD3 pipeline reads the penultimate hidden state; num_hidden_layers must be at least 1");
                locus_json_free(&d);
            }
        }
        if (!st) st = locus_write_atomic(p, cfg, strlen(cfg));
        free(cfg);
        if (!st) st = locus_train_write_text_encoder(p, q, o->seed + (uint64_t)k, o->fp16, 1);
    }
    return st;
}

int locus_cmd_train(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "locus train: give a stage: vae, unet, transformer or pipeline (see 'locus train --help')\n"); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { /* the options of every stage */
        locus_train_opts o;
        locus_train_opts_defaults(&o);
        return locus_train_opts_parse(&o, argc, argv, "") == 1 ? 0 : 2;
    }
    const char *what = argv[1];
    if (strcmp(what, "vae") && strcmp(what, "unet") && strcmp(what, "transformer") && strcmp(what, "pipeline")) {
        fprintf(stderr, "locus train: unknown stage '%s' (vae, unet, transformer or pipeline)\n", what);
        return 2;
    }
#ifdef __GLIBC__
    /* Every training step allocates and frees the same activation buffers.  By default glibc serves large
     * ones with mmap and returns them on free, so the kernel faults in and zeroes fresh pages every step
     * (~18% of a step's CPU time, mostly system time, on the signs UNet).  Keep them in the heap instead;
     * allocation never changes any result. */
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    mallopt(M_TOP_PAD, 64 * 1024 * 1024);
#endif
    locus_train_opts o;
    locus_train_opts_defaults(&o);
    int rc = locus_train_opts_parse(&o, argc - 1, argv + 1, what);
    if (rc) return rc == 1 ? 0 : rc;
    if (!strcmp(what, "vae")) return locus_train_vae(&o);
    if (!strcmp(what, "unet")) return locus_train_unet(&o);
    if (!strcmp(what, "transformer")) return locus_train_transformer(&o);
    if (o.threads) locus_set_threads(o.threads);
    if (o.family_sd3) {
        if (o.data) { fprintf(stderr, "locus train pipeline: --family sd3 writes the skeleton only; train vae/ and transformer/ with their stages\n"); return 2; }
        locus_status s3 = locus_train_skeleton_sd3(&o);
        if (s3) { fprintf(stderr, "locus train pipeline: %s\n", locus_errmsg()); return 2; }
        fprintf(stderr, "locus: train pipeline: wrote the SD3 skeleton of %s (add vae/ and transformer/ with train vae / train transformer)\n", o.out);
        return 0;
    }
    locus_status st = locus_train_skeleton(&o);
    if (st) { fprintf(stderr, "locus train pipeline: %s\n", locus_errmsg()); return 2; }
    if (!o.data) { fprintf(stderr, "locus: train pipeline: wrote the skeleton of %s (add vae/ and unet/ with train vae / train unet)\n", o.out); return 0; }
    if (!o.vae_config) { fprintf(stderr, "locus train pipeline: --data needs --vae-config (and --unet-config)\n"); return 2; }
    locus_train_opts ov = o, ou = o;
    ov.config = o.vae_config; ov.steps = o.vae_steps; ov.batch_size = o.vae_batch ? o.vae_batch : o.batch_size;
    if (o.vae_lr >= 0) ov.lr = o.vae_lr;
    if (o.unet_lr >= 0) ou.lr = o.unet_lr;
    ou.config = o.unet_config; ou.steps = o.unet_steps; ou.batch_size = o.unet_batch ? o.unet_batch : o.batch_size; ou.base = o.out;
    if ((rc = locus_train_vae(&ov))) return rc;
    return locus_train_unet(&ou);
}
