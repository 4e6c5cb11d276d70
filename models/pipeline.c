/* pipeline.c — opening pipeline folders and decoding latents (see pipeline.h). */
#include "pipeline.h"

#include <math.h>

#include "../core/fileio.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "if_unet.h"
#include "mmdit.h"
#include "unet.h"

/* hash a component: config.json bytes and each safetensors header (not the weights: cheap for large models) */
unsigned long long locus_pipeline_hash_component(unsigned long long h, const locus_loader *L) {
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/config.json", L->dir);
    FILE *f = locus_fopen_regular(p, NULL);
    if (f) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) h = locus_fnv1a(h, buf, n);
        fclose(f);
    }
    for (size_t i = 0; i < L->st.nfiles; i++) {
        const locus_st_file *sf = &L->st.files[i];
        uint64_t hl = 0;
        memcpy(&hl, sf->map, 8);
        h = locus_fnv1a(h, sf->map, 8 + (size_t)hl);
    }
    return h;
}

static const char *pick(const char *dir, const char *a, const char *b, char *out, size_t n) {
    snprintf(out, n, "%s/%s", dir, a);
    if (locus_is_dir(out)) return out;
    if (b) {
        snprintf(out, n, "%s/%s", dir, b);
        if (locus_is_dir(out)) return out;
    }
    return NULL;
}

/* The VAE and the scheduler of a pipeline folder whose denoiser is open in p->den (on failure the denoiser
 * and the VAE are closed again). */
static locus_status open_vae_sched(locus_pipeline *p, const char *dir) {
    char c[PATH_MAX + 32];
    locus_status st;
    if (!pick(dir, "vae", NULL, c, sizeof c)) { locus_denoiser_close(&p->den); return locus_fail(LOCUS_E_NOTFOUND, "%s: no vae/ folder", dir); }
    if ((st = locus_vae_load(&p->vae, c))) { locus_denoiser_close(&p->den); return st; }
    if (!pick(dir, "scheduler", NULL, c, sizeof c) || (st = locus_scheduler_load(&p->sched, c))) {
        if (!st) st = locus_fail(LOCUS_E_NOTFOUND, "%s: no scheduler/ folder", dir);
        locus_vae_free(&p->vae);
        locus_denoiser_close(&p->den);
    }
    return st;
}

/* The two CLIP text encoders (text_encoder, text_encoder_2) and their BPE tokenizers, each when present
 * (SD3 and SDXL folders); the caller closes the pipeline on failure. */
static locus_status open_clip_pair(locus_pipeline *p, const char *dir) {
    char c[PATH_MAX + 32];
    locus_status st = LOCUS_OK;
    if (pick(dir, "text_encoder", NULL, c, sizeof c)) {
        if ((st = locus_textenc_load(&p->text, c))) return st;
        p->has_text = 1;
    }
    if (pick(dir, "text_encoder_2", NULL, c, sizeof c)) {
        if ((st = locus_textenc_load(&p->text2, c))) return st;
        p->has_text2 = 1;
    }
    /* these pipelines read the penultimate hidden state: a text encoder without layers has none */
    if ((p->has_text && p->text.nlayers < 1) || (p->has_text2 && p->text2.nlayers < 1))
        return locus_fail(LOCUS_E_FORMAT, "%s: a text encoder with no layers (num_hidden_layers 0) has no penultimate hidden state", dir);
    snprintf(c, sizeof c, "%s/tokenizer/vocab.json", dir);
    if (locus_is_file(c)) { snprintf(c, sizeof c, "%s/tokenizer", dir); if ((st = locus_clip_tok_load(&p->tok, c))) return st; }
    snprintf(c, sizeof c, "%s/tokenizer_2/vocab.json", dir);
    if (locus_is_file(c)) { snprintf(c, sizeof c, "%s/tokenizer_2", dir); st = locus_clip_tok_load(&p->tok2, c); }
    return st;
}

static locus_status open_sd3(locus_pipeline *p, const char *dir) {
    char c[PATH_MAX + 32];
    locus_status st;
    snprintf(c, sizeof c, "%s/transformer", dir);
    if ((st = locus_denoiser_open(&p->den, c, "SD3Transformer2DModel"))) return st;
    if ((st = open_vae_sched(p, dir))) return st;
    if ((st = open_clip_pair(p, dir))) goto fail;
    if (pick(dir, "text_encoder_3", NULL, c, sizeof c)) {
        if ((st = locus_t5_load(&p->t5, c))) goto fail;
        p->has_t5 = 1;
    }
    snprintf(c, sizeof c, "%s/tokenizer_3/spiece.model", dir);
    if (locus_is_file(c) && (st = locus_sp_tok_load(&p->tok3, c))) goto fail;
    if (p->has_t5 && p->t5.D != p->den.ctx_dim) {
        st = locus_fail(LOCUS_E_SHAPE, "%s: T5 width %d does not match the transformer's joint_attention_dim %d", dir, p->t5.D, p->den.ctx_dim);
        goto fail;
    }
    if (p->vae.latent_channels != p->den.in_channels) {
        st = locus_fail(LOCUS_E_SHAPE, "%s: VAE latent_channels %d does not match the transformer's in_channels %d", dir, p->vae.latent_channels,
                        p->den.in_channels);
        goto fail;
    }
    p->vae_factor = 1 << (p->vae.nblocks - 1);
    unsigned long long h = LOCUS_FNV_INIT;
    h = locus_pipeline_hash_component(h, p->den.loader);
    h = locus_pipeline_hash_component(h, &p->vae.L);
    if (p->has_text) h = locus_pipeline_hash_component(h, &p->text.L);
    if (p->has_text2) h = locus_pipeline_hash_component(h, &p->text2.L);
    if (p->has_t5) h = locus_pipeline_hash_component(h, &p->t5.L);
    p->model_hash = h;
    return LOCUS_OK;
fail:
    locus_pipeline_close(p); /* cleanup keeps the thread's error message */
    return st;
}

/* ---- SDXL (StableDiffusionXLPipeline): a UNet with text_time added conditioning, text_encoder (CLIP-L) +
 * text_encoder_2 (OpenCLIP-G with projection), both tokenizers.  The UNet is already open in p->den. ---- */
static locus_status open_sdxl(locus_pipeline *p, const char *dir) {
    locus_status st;
    p->kind = LOCUS_PIPE_SDXL;
    if ((st = open_vae_sched(p, dir))) return st;
    if ((st = open_clip_pair(p, dir))) goto fail;
    int ptext = p->den.pooled_dim - p->den.pooled_extra;
    if (p->has_text && p->has_text2 && p->text.D + p->text2.D != p->den.ctx_dim) {
        st = locus_fail(LOCUS_E_SHAPE, "%s: text encoder widths %d + %d do not match the UNet's cross_attention_dim %d", dir, p->text.D, p->text2.D, p->den.ctx_dim);
        goto fail;
    }
    if (p->has_text2 && p->text2.proj_dim != ptext) {
        st = locus_fail(LOCUS_E_SHAPE, "%s: text_encoder_2 projection_dim %d does not match the UNet's pooled text width %d", dir, p->text2.proj_dim, ptext);
        goto fail;
    }
    if (p->vae.latent_channels != p->den.in_channels) {
        st = locus_fail(LOCUS_E_SHAPE, "%s: VAE latent_channels %d does not match the UNet's in_channels %d", dir, p->vae.latent_channels, p->den.in_channels);
        goto fail;
    }
    p->vae_factor = 1 << (p->vae.nblocks - 1);
    unsigned long long h = LOCUS_FNV_INIT;
    h = locus_pipeline_hash_component(h, p->den.loader);
    h = locus_pipeline_hash_component(h, &p->vae.L);
    if (p->has_text) h = locus_pipeline_hash_component(h, &p->text.L);
    if (p->has_text2) h = locus_pipeline_hash_component(h, &p->text2.L);
    p->model_hash = h;
    return LOCUS_OK;
fail:
    locus_pipeline_close(p); /* cleanup keeps the thread's error message */
    return st;
}

locus_status locus_pipeline_encode_prompt_sdxl(const locus_pipeline *p, const char *prompt, float *embeds, float *pooled, int *T) {
    int J = p->den.ctx_dim, P = p->den.pooled_dim;
    *T = 77;
    memset(pooled, 0, (size_t)P * sizeof(float)); /* the size conditioning part is filled per run (locus_pipeline_size_cond) */
    if (!prompt && p->force_zeros) { /* no negative prompt and force_zeros_for_empty_prompt: zero embeddings and pooled */
        memset(embeds, 0, (size_t)77 * J * sizeof(float));
        return LOCUS_OK;
    }
    if (!prompt) prompt = "";
    if (!p->has_text || !p->has_text2 || !p->tok || !p->tok2)
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: prompt strings need tokenizer/, tokenizer_2/, text_encoder/ and text_encoder_2/; pass --prompt-embeds FILE", p->dir);
    int D1 = p->text.D, D2 = p->text2.D;
    int64_t ids1[77], ids2[77];
    int tr1 = 0, tr2 = 0;
    locus_status st = locus_clip_tok_encode_padded(p->tok, prompt, 77, ids1, &tr1);
    if (!st) st = locus_clip_tok_encode_padded(p->tok2, prompt, 77, ids2, &tr2);
    if (st) return st;
    if (tr1 || tr2) fprintf(stderr, "locus: warning: prompt longer than 77 CLIP tokens was truncated\n");
    float *h1 = locus_alloc((size_t)77 * D1 * 4), *h2 = locus_alloc((size_t)77 * D2 * 4); /* [77,D1], [77,D2]: hidden_states[-2] */
    if (!h1 || !h2) st = locus_fail(LOCUS_E_NOMEM, "out of memory encoding the prompt");
    if (!st) st = locus_textenc_forward(&p->text, ids1, 1, 77, NULL, p->text.nlayers - 1, h1, NULL, NULL, NULL);
    if (!st) st = locus_textenc_forward(&p->text2, ids2, 1, 77, NULL, p->text2.nlayers - 1, h2, NULL, pooled, NULL);
    if (!st)
        for (int i = 0; i < 77; i++) { /* torch.concat(prompt_embeds_list, dim=-1) */
            memcpy(embeds + (size_t)i * J, h1 + (size_t)i * D1, (size_t)D1 * 4);
            memcpy(embeds + (size_t)i * J + D1, h2 + (size_t)i * D2, (size_t)D2 * 4);
        }
    locus_free(h1);
    locus_free(h2);
    return st;
}

locus_status locus_pipeline_set_size_cond(locus_pipeline *p, const int *original, const int *crop, const int *target) {
    if (p->den.pooled_extra != UNET_TIME_IDS)
        return locus_fail(LOCUS_E_ARG, "--original-size/--crops-coords-top-left/--target-size: this model takes no size conditioning");
    const int *v[3] = {original, crop, target};
    for (int k = 0; k < 3; k++) {
        p->size_cond_set[k] = v[k] != NULL;
        if (v[k]) { p->size_cond[2 * k] = v[k][0]; p->size_cond[2 * k + 1] = v[k][1]; }
    }
    return LOCUS_OK;
}

void locus_pipeline_size_cond(const locus_pipeline *p, int W, int H, float *extra) {
    if (p->den.pooled_extra != UNET_TIME_IDS) return;
    /* diffusers' defaults: original_size = target_size = (height, width), crops_coords_top_left = (0, 0) */
    int def[6] = {H, W, 0, 0, H, W};
    for (int k = 0; k < 6; k++) extra[k] = (float)(p->size_cond_set[k / 2] ? p->size_cond[k] : def[k]);
}

int locus_pipeline_latent_channels(const locus_pipeline *p) { return p->den.in_channels; }

locus_status locus_pipeline_encode_prompt_sd3(const locus_pipeline *p, const char *prompt, int max_seq, float *embeds, float *pooled, int *T) {
    if (!p->has_text || !p->has_text2 || !p->tok || !p->tok2)
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: prompt strings need tokenizer/, tokenizer_2/, text_encoder/ and text_encoder_2/; pass --prompt-embeds FILE", p->dir);
    if (p->has_t5 && !p->tok3)
        return locus_fail(LOCUS_E_NOTFOUND, "%s: text_encoder_3 needs tokenizer_3/spiece.model; pass --prompt-embeds FILE", p->dir);
    int J = p->den.ctx_dim, D1 = p->text.D, D2 = p->text2.D;
    if (D1 + D2 > J) return locus_fail(LOCUS_E_SHAPE, "%s: CLIP widths %d + %d exceed the joint width %d", p->dir, D1, D2, J);
    int64_t ids1[77], ids2[77];
    int tr1 = 0, tr2 = 0;
    locus_status st = locus_clip_tok_encode_padded(p->tok, prompt, 77, ids1, &tr1);
    if (!st) st = locus_clip_tok_encode_padded(p->tok2, prompt, 77, ids2, &tr2);
    if (st) return st;
    if (tr1) fprintf(stderr, "locus: warning: prompt longer than 77 CLIP tokens was truncated\n");
    float *h1 = locus_alloc((size_t)77 * D1 * 4), *h2 = locus_alloc((size_t)77 * D2 * 4);
    st = locus_textenc_forward(&p->text, ids1, 1, 77, NULL, p->text.nlayers - 1, h1, NULL, pooled, NULL);
    if (!st) st = locus_textenc_forward(&p->text2, ids2, 1, 77, NULL, p->text2.nlayers - 1, h2, NULL, pooled + p->text.proj_dim, NULL);
    /* without T5 diffusers' _get_t5_prompt_embeds returns zeros of tokenizer_max_length (77) rows, whatever
     * max_sequence_length is */
    int t5_rows = p->has_t5 ? max_seq : 77;
    if (!st) {
        memset(embeds, 0, (size_t)(77 + t5_rows) * J * sizeof(float));
        for (int i = 0; i < 77; i++) {
            memcpy(embeds + (size_t)i * J, h1 + (size_t)i * D1, (size_t)D1 * 4);
            memcpy(embeds + (size_t)i * J + D1, h2 + (size_t)i * D2, (size_t)D2 * 4);
        }
        *T = 77 + t5_rows;
    }
    if (!st && p->has_t5) { /* T5 last_hidden_state of the unmasked ids, padded with 0 to max_seq */
        int64_t *ids3 = malloc(sizeof(int64_t) * max_seq);
        int tr3 = 0;
        st = locus_sp_tok_encode_padded(p->tok3, prompt, max_seq, ids3, &tr3);
        if (!st && tr3) fprintf(stderr, "locus: warning: prompt longer than %d T5 tokens was truncated\n", max_seq);
        if (!st) st = locus_t5_forward(&p->t5, ids3, 1, max_seq, NULL, embeds + (size_t)77 * J, -1, NULL, NULL);
        free(ids3);
    }
    locus_free(h1);
    locus_free(h2);
    return st;
}

static locus_status pipeline_open(locus_pipeline *p, const char *dir);

locus_status locus_pipeline_open(locus_pipeline *p, const char *dir) {
    locus_status st = pipeline_open(p, dir);
    if (st) return st;
    p->default_guidance = p->kind == LOCUS_PIPE_LDM ? 1.0f : p->kind == LOCUS_PIPE_SD3 || p->kind == LOCUS_PIPE_IF ? 7.0f : p->kind == LOCUS_PIPE_SDXL ? 5.0f : 7.5f;
    /* SD3: 77 CLIP rows + max_sequence_length T5 rows, or + 77 zero rows without T5 (diffusers 0.31) */
    p->text_tokens_fixed = p->kind == LOCUS_PIPE_SD3 ? (p->has_t5 ? 0 : 154) : 77;
    p->negative_none_zeros = p->kind == LOCUS_PIPE_SDXL && p->force_zeros;
    return LOCUS_OK;
}

int locus_pipeline_text_tokens(const locus_pipeline *p, int max_seq) { return p->text_tokens_fixed ? p->text_tokens_fixed : 77 + max_seq; }

locus_status locus_pipeline_encode(const locus_pipeline *p, const char *prompt, int max_seq, float *embeds, float *pooled, int *T) {
    if (p->kind == LOCUS_PIPE_SDXL) return locus_pipeline_encode_prompt_sdxl(p, prompt, embeds, pooled, T);
    if (!prompt) prompt = ""; /* no negative prompt: the empty one */
    if (p->kind == LOCUS_PIPE_SD3) return locus_pipeline_encode_prompt_sd3(p, prompt, max_seq, embeds, pooled, T);
    if (p->kind == LOCUS_PIPE_IF) return locus_pipeline_encode_prompt_if(p, prompt, embeds, T);
    return locus_pipeline_encode_prompt(p, prompt, embeds, T);
}

static locus_status pipeline_open(locus_pipeline *p, const char *dir) {
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    if (!locus_is_dir(dir)) return locus_fail(LOCUS_E_IO, "%s: no such model folder", dir);
    char mi[PATH_MAX + 32];
    snprintf(mi, sizeof mi, "%s/model_index.json", dir);
    p->kind = LOCUS_PIPE_SD;
    snprintf(p->class_name, sizeof p->class_name, "(component folders)");
    p->force_zeros = 1;
    if (locus_is_file(mi)) {
        locus_json_doc doc;
        locus_status st = locus_json_parse_file(&doc, mi);
        if (st) return st;
        if (doc.root->type != JSON_OBJECT) { locus_json_free(&doc); return locus_fail(LOCUS_E_FORMAT, "%s: not a JSON object", mi); }
        /* components are [library, class] pairs (or null); anything else is a broken index */
        for (size_t i = 0; i < doc.root->len; i++) {
            const locus_json *e = doc.root->kids[i];
            if (e->key[0] == '_' || e->type != JSON_ARRAY) continue; /* settings such as requires_safety_checker */
            if (e->len != 2 || (e->kids[0]->type != JSON_STRING && e->kids[0]->type != JSON_NULL) ||
                (e->kids[1]->type != JSON_STRING && e->kids[1]->type != JSON_NULL)) {
                locus_status e2 = locus_fail(LOCUS_E_FORMAT, "%s: '%s' should be [library, class] or null", mi, e->key);
                locus_json_free(&doc);
                return e2;
            }
        }
        const char *cls = locus_json_str(doc.root, "_class_name", "", NULL);
        snprintf(p->class_name, sizeof p->class_name, "%s", cls);
        cls = p->class_name; /* the message below is formatted after the document is freed */
        p->force_zeros = locus_json_bool(doc.root, "force_zeros_for_empty_prompt", 1, NULL); /* SDXL's registered default */
        locus_json_free(&doc);
        if (!strcmp(cls, "LDMTextToImagePipeline")) p->kind = LOCUS_PIPE_LDM;
        else if (!strcmp(cls, "StableDiffusion3Pipeline")) p->kind = LOCUS_PIPE_SD3;
        else if (!strcmp(cls, "StableDiffusionXLPipeline")) p->kind = LOCUS_PIPE_SDXL;
        else if (!strcmp(cls, "IFPipeline")) p->kind = LOCUS_PIPE_IF;
        else if (strcmp(cls, "StableDiffusionPipeline"))
            return locus_fail(LOCUS_E_UNSUPPORTED, "%s: pipeline class '%s' is not supported (StableDiffusionPipeline, StableDiffusionXLPipeline, "
                              "StableDiffusion3Pipeline, LDMTextToImagePipeline, IFPipeline; IF stage II is not)", mi, cls);
    }
    char c[PATH_MAX + 32];
    locus_status st;
    if (p->kind == LOCUS_PIPE_SD3 || (!locus_is_file(mi) && pick(dir, "transformer", NULL, c, sizeof c))) {
        p->kind = LOCUS_PIPE_SD3;
        return open_sd3(p, dir);
    }
    if (!pick(dir, "unet", NULL, c, sizeof c)) return locus_fail(LOCUS_E_NOTFOUND, "%s: no unet/ folder", dir);
    if ((st = locus_denoiser_open(&p->den, c, "UNet2DConditionModel"))) return st;
    if (p->den.ops == &locus_if_unet_denoiser_ops || p->kind == LOCUS_PIPE_IF) { /* DeepFloyd IF stage I: pixel space */
        if (p->den.ops != &locus_if_unet_denoiser_ops) { locus_denoiser_close(&p->den); return locus_fail(LOCUS_E_UNSUPPORTED, "%s: an IFPipeline needs DeepFloyd IF's UNet", c); }
        return locus_pipeline_open_if(p, dir);
    }
    if (p->den.pooled_extra > 0 || p->kind == LOCUS_PIPE_SDXL) { /* a UNet with added conditioning: SDXL */
        if (!p->den.pooled_extra) { locus_denoiser_close(&p->den); return locus_fail(LOCUS_E_UNSUPPORTED, "%s: a StableDiffusionXLPipeline needs a UNet with addition_embed_type text_time", c); }
        return open_sdxl(p, dir);
    }
    if (!pick(dir, "vae", "vqvae", c, sizeof c)) { locus_pipeline_close(p); return locus_fail(LOCUS_E_NOTFOUND, "%s: no vae/ (or vqvae/) folder", dir); }
    if (strstr(c, "vqvae")) p->kind = LOCUS_PIPE_LDM;
    if ((st = locus_vae_load(&p->vae, c))) { locus_denoiser_close(&p->den); return st; }
    if (!pick(dir, "scheduler", NULL, c, sizeof c)) { locus_pipeline_close(p); return locus_fail(LOCUS_E_NOTFOUND, "%s: no scheduler/ folder", dir); }
    if ((st = locus_scheduler_load(&p->sched, c))) { locus_vae_free(&p->vae); locus_denoiser_close(&p->den); return st; }
    if (pick(dir, "text_encoder", "bert", c, sizeof c)) {
        if ((st = locus_textenc_load(&p->text, c))) {
            locus_scheduler_free(&p->sched); locus_vae_free(&p->vae); locus_denoiser_close(&p->den);
            return st;
        }
        p->has_text = 1;
        if (p->text.kind == LOCUS_TEXT_LDMBERT) p->kind = LOCUS_PIPE_LDM;
        if (p->text.D != p->den.ctx_dim) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: text encoder width %d does not match the UNet's cross_attention_dim %d", c, p->text.D, p->den.ctx_dim);
            locus_pipeline_close(p);
            return locus_fail(LOCUS_E_SHAPE, "%s", msg);
        }
    }
    char tk[PATH_MAX + 48];
    snprintf(tk, sizeof tk, "%s/tokenizer/vocab.json", dir);
    if (p->has_text && p->text.kind == LOCUS_TEXT_CLIP && locus_is_file(tk)) {
        snprintf(tk, sizeof tk, "%s/tokenizer", dir);
        if ((st = locus_clip_tok_load(&p->tok, tk))) {
            locus_pipeline_close(p);
            return st;
        }
    }
    snprintf(tk, sizeof tk, "%s/tokenizer/vocab.txt", dir);
    if (p->has_text && p->text.kind == LOCUS_TEXT_LDMBERT && locus_is_file(tk)) {
        snprintf(tk, sizeof tk, "%s/tokenizer", dir);
        if ((st = locus_bert_tok_load(&p->btok, tk))) {
            locus_pipeline_close(p);
            return st;
        }
    }
    if (p->vae.latent_channels != p->den.in_channels) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: VAE latent_channels %d does not match the UNet's in_channels %d", dir, p->vae.latent_channels, p->den.in_channels);
        locus_pipeline_close(p);
        return locus_fail(LOCUS_E_SHAPE, "%s", msg);
    }
    p->vae_factor = 1 << (p->vae.nblocks - 1);
    unsigned long long h = LOCUS_FNV_INIT;
    h = locus_pipeline_hash_component(h, p->den.loader);
    h = locus_pipeline_hash_component(h, &p->vae.L);
    if (p->has_text) h = locus_pipeline_hash_component(h, &p->text.L);
    p->model_hash = h;
    return LOCUS_OK;
}

void locus_pipeline_close(locus_pipeline *p) {
    locus_clip_tok_free(p->tok);
    locus_clip_tok_free(p->tok2);
    locus_sp_tok_free(p->tok3);
    locus_bert_tok_free(p->btok);
    p->btok = NULL;
    p->tok = p->tok2 = NULL;
    p->tok3 = NULL;
    if (p->has_text) locus_textenc_free(&p->text);
    if (p->has_text2) locus_textenc_free(&p->text2);
    if (p->has_t5) locus_t5_free(&p->t5);
    p->has_text = p->has_text2 = p->has_t5 = 0;
    locus_scheduler_free(&p->sched);
    locus_vae_free(&p->vae);
    locus_denoiser_close(&p->den);
}

locus_status locus_pipeline_encode_prompt(const locus_pipeline *p, const char *prompt, float *embeds, int *T) {
    int bert = p->has_text && p->text.kind == LOCUS_TEXT_LDMBERT;
    if (!p->has_text || (bert ? !p->btok : !p->tok))
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: prompt strings need a text encoder and its tokenizer/ (%s); pass --prompt-embeds FILE", p->dir,
                          !p->has_text ? "this folder has no text encoder" : bert ? "LDMBert needs tokenizer/vocab.txt" : "CLIP needs tokenizer/vocab.json and merges.txt");
    int64_t ids[77];
    int tr = 0, len = p->text.maxpos < 77 ? p->text.maxpos : 77;
    locus_status st = bert ? locus_bert_tok_encode_padded(p->btok, prompt, len, ids, &tr) : locus_clip_tok_encode_padded(p->tok, prompt, len, ids, &tr);
    if (st) return st;
    if (tr) fprintf(stderr, "locus: warning: prompt longer than %d tokens was truncated\n", len);
    *T = len;
    return locus_textenc_clip_skip(&p->text, ids, 1, len, p->clip_skip, embeds);
}

void locus_pipeline_decode(const locus_pipeline *p, const float *latent, int h, int w, float *image) {
    if (p->kind == LOCUS_PIPE_IF) { memcpy(image, latent, (size_t)3 * h * w * sizeof(float)); return; } /* pixel space */
    size_t n = (size_t)p->vae.latent_channels * h * w;
    float *z = locus_alloc(n * sizeof(float));
    float sf = p->vae.scaling_factor, inv = (float)(1.0 / (double)sf), shift = p->vae.shift_factor;
    for (size_t i = 0; i < n; i++) {
        float v = p->kind == LOCUS_PIPE_LDM ? inv * latent[i] : latent[i] / sf;
        z[i] = shift != 0.0f ? v + shift : v;
    }
    locus_vae_decode(&p->vae, z, 1, h, w, image, NULL);
    locus_free(z);
}


locus_status locus_pipeline_open_text(locus_pipeline *p, const char *dir) {
    memset(p, 0, sizeof *p);
    p->kind = LOCUS_PIPE_SD; /* a CLIP text encoder + tokenizer: SD1.x prompt encoding */
    p->text_tokens_fixed = 77;
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    char c[PATH_MAX + 32];
    locus_status st;
    snprintf(c, sizeof c, "%s/text_encoder", dir);
    if ((st = locus_textenc_load(&p->text, c))) return locus_fail(st, "%s: text encoder: %s", dir, locus_errmsg());
    p->has_text = 1;
    snprintf(c, sizeof c, "%s/tokenizer", dir);
    if ((st = locus_clip_tok_load(&p->tok, c))) {
        locus_textenc_free(&p->text);
        p->has_text = 0;
        return locus_fail(st, "%s: tokenizer: %s", dir, locus_errmsg());
    }
    return LOCUS_OK;
}
