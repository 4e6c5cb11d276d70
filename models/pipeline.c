/* pipeline.c — opening pipeline folders and decoding latents (see pipeline.h). */
#include "pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/arena.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../simd/ops.h"

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* hash a component: config.json bytes and each safetensors header (not the weights: cheap for large models) */
static unsigned long long hash_component(unsigned long long h, const locus_loader *L) {
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/config.json", L->dir);
    FILE *f = fopen(p, "rb");
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
    if (is_dir(out)) return out;
    if (b) {
        snprintf(out, n, "%s/%s", dir, b);
        if (is_dir(out)) return out;
    }
    return NULL;
}

static locus_status open_sd3(locus_pipeline *p, const char *dir) {
    char c[PATH_MAX + 32];
    locus_status st;
    snprintf(c, sizeof c, "%s/transformer", dir);
    if ((st = locus_mmdit_load(&p->mmdit, c))) return st;
    if (!pick(dir, "vae", NULL, c, sizeof c)) { locus_mmdit_free(&p->mmdit); return locus_fail(LOCUS_E_NOTFOUND, "%s: no vae/ folder", dir); }
    if ((st = locus_vae_load(&p->vae, c))) { locus_mmdit_free(&p->mmdit); return st; }
    if (!pick(dir, "scheduler", NULL, c, sizeof c) || (st = locus_scheduler_load(&p->sched, c))) {
        if (!st) st = locus_fail(LOCUS_E_NOTFOUND, "%s: no scheduler/ folder", dir);
        locus_vae_free(&p->vae);
        locus_mmdit_free(&p->mmdit);
        return st;
    }
    if (pick(dir, "text_encoder", NULL, c, sizeof c)) {
        if ((st = locus_textenc_load(&p->text, c))) goto fail;
        p->has_text = 1;
    }
    if (pick(dir, "text_encoder_2", NULL, c, sizeof c)) {
        if ((st = locus_textenc_load(&p->text2, c))) goto fail;
        p->has_text2 = 1;
    }
    if (pick(dir, "text_encoder_3", NULL, c, sizeof c)) {
        if ((st = locus_t5_load(&p->t5, c))) goto fail;
        p->has_t5 = 1;
    }
    snprintf(c, sizeof c, "%s/tokenizer/vocab.json", dir);
    if (is_file(c)) { snprintf(c, sizeof c, "%s/tokenizer", dir); if ((st = locus_clip_tok_load(&p->tok, c))) goto fail; }
    snprintf(c, sizeof c, "%s/tokenizer_2/vocab.json", dir);
    if (is_file(c)) { snprintf(c, sizeof c, "%s/tokenizer_2", dir); if ((st = locus_clip_tok_load(&p->tok2, c))) goto fail; }
    snprintf(c, sizeof c, "%s/tokenizer_3/spiece.model", dir);
    if (is_file(c) && (st = locus_sp_tok_load(&p->tok3, c))) goto fail;
    if (p->has_t5 && p->t5.D != p->mmdit.joint_dim) {
        st = locus_fail(LOCUS_E_SHAPE, "%s: T5 width %d does not match the transformer's joint_attention_dim %d", dir, p->t5.D, p->mmdit.joint_dim);
        goto fail;
    }
    if (p->vae.latent_channels != p->mmdit.in_channels) {
        st = locus_fail(LOCUS_E_SHAPE, "%s: VAE latent_channels %d does not match the transformer's in_channels %d", dir, p->vae.latent_channels,
                        p->mmdit.in_channels);
        goto fail;
    }
    p->vae_factor = 1 << (p->vae.nblocks - 1);
    unsigned long long h = LOCUS_FNV_INIT;
    h = hash_component(h, &p->mmdit.L);
    h = hash_component(h, &p->vae.L);
    if (p->has_text) h = hash_component(h, &p->text.L);
    if (p->has_text2) h = hash_component(h, &p->text2.L);
    if (p->has_t5) h = hash_component(h, &p->t5.L);
    p->model_hash = h;
    return LOCUS_OK;
fail:
    locus_pipeline_close(p); /* cleanup keeps the thread's error message */
    return st;
}

int locus_pipeline_latent_channels(const locus_pipeline *p) { return p->kind == LOCUS_PIPE_SD3 ? p->mmdit.in_channels : p->unet.in_channels; }

locus_status locus_pipeline_encode_prompt_sd3(const locus_pipeline *p, const char *prompt, int max_seq, float *embeds, float *pooled, int *T) {
    if (!p->has_text || !p->has_text2 || !p->tok || !p->tok2)
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: prompt strings need tokenizer/, tokenizer_2/, text_encoder/ and text_encoder_2/; pass --prompt-embeds FILE", p->dir);
    if (p->has_t5 && !p->tok3)
        return locus_fail(LOCUS_E_NOTFOUND, "%s: text_encoder_3 needs tokenizer_3/spiece.model; pass --prompt-embeds FILE", p->dir);
    int J = p->mmdit.joint_dim, D1 = p->text.D, D2 = p->text2.D;
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
    if (!st) {
        memset(embeds, 0, (size_t)(77 + max_seq) * J * sizeof(float));
        for (int i = 0; i < 77; i++) {
            memcpy(embeds + (size_t)i * J, h1 + (size_t)i * D1, (size_t)D1 * 4);
            memcpy(embeds + (size_t)i * J + D1, h2 + (size_t)i * D2, (size_t)D2 * 4);
        }
        *T = 77 + max_seq;
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

locus_status locus_pipeline_open(locus_pipeline *p, const char *dir) {
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    if (!is_dir(dir)) return locus_fail(LOCUS_E_IO, "%s: no such model folder", dir);
    char mi[PATH_MAX + 32];
    snprintf(mi, sizeof mi, "%s/model_index.json", dir);
    p->kind = LOCUS_PIPE_SD;
    snprintf(p->class_name, sizeof p->class_name, "(component folders)");
    if (is_file(mi)) {
        locus_json_doc doc;
        locus_status st = locus_json_parse_file(&doc, mi);
        if (st) return st;
        const char *cls = locus_json_str(doc.root, "_class_name", "", NULL);
        snprintf(p->class_name, sizeof p->class_name, "%s", cls);
        if (!strcmp(cls, "LDMTextToImagePipeline")) p->kind = LOCUS_PIPE_LDM;
        else if (!strcmp(cls, "StableDiffusion3Pipeline")) p->kind = LOCUS_PIPE_SD3;
        else if (strcmp(cls, "StableDiffusionPipeline")) {
            locus_json_free(&doc);
            return locus_fail(LOCUS_E_UNSUPPORTED, "%s: pipeline class '%s' is not supported (StableDiffusionPipeline, LDMTextToImagePipeline)", mi, cls);
        }
        locus_json_free(&doc);
    }
    char c[PATH_MAX + 32];
    locus_status st;
    if (p->kind == LOCUS_PIPE_SD3 || (!is_file(mi) && pick(dir, "transformer", NULL, c, sizeof c))) {
        p->kind = LOCUS_PIPE_SD3;
        return open_sd3(p, dir);
    }
    if (!pick(dir, "unet", NULL, c, sizeof c)) return locus_fail(LOCUS_E_NOTFOUND, "%s: no unet/ folder", dir);
    if ((st = locus_unet_load(&p->unet, c))) return st;
    if (!pick(dir, "vae", "vqvae", c, sizeof c)) { locus_pipeline_close(p); return locus_fail(LOCUS_E_NOTFOUND, "%s: no vae/ (or vqvae/) folder", dir); }
    if (strstr(c, "vqvae")) p->kind = LOCUS_PIPE_LDM;
    if ((st = locus_vae_load(&p->vae, c))) { locus_unet_free(&p->unet); return st; }
    if (!pick(dir, "scheduler", NULL, c, sizeof c)) { locus_pipeline_close(p); return locus_fail(LOCUS_E_NOTFOUND, "%s: no scheduler/ folder", dir); }
    if ((st = locus_scheduler_load(&p->sched, c))) { locus_vae_free(&p->vae); locus_unet_free(&p->unet); return st; }
    if (pick(dir, "text_encoder", "bert", c, sizeof c)) {
        if ((st = locus_textenc_load(&p->text, c))) {
            locus_scheduler_free(&p->sched); locus_vae_free(&p->vae); locus_unet_free(&p->unet);
            return st;
        }
        p->has_text = 1;
        if (p->text.kind == LOCUS_TEXT_LDMBERT) p->kind = LOCUS_PIPE_LDM;
        if (p->text.D != p->unet.ctx_dim) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: text encoder width %d does not match the UNet's cross_attention_dim %d", c, p->text.D, p->unet.ctx_dim);
            locus_pipeline_close(p);
            return locus_fail(LOCUS_E_SHAPE, "%s", msg);
        }
    }
    char tk[PATH_MAX + 48];
    snprintf(tk, sizeof tk, "%s/tokenizer/vocab.json", dir);
    if (p->has_text && p->text.kind == LOCUS_TEXT_CLIP && is_file(tk)) {
        snprintf(tk, sizeof tk, "%s/tokenizer", dir);
        if ((st = locus_clip_tok_load(&p->tok, tk))) {
            locus_pipeline_close(p);
            return st;
        }
    }
    snprintf(tk, sizeof tk, "%s/tokenizer/vocab.txt", dir);
    if (p->has_text && p->text.kind == LOCUS_TEXT_LDMBERT && is_file(tk)) {
        snprintf(tk, sizeof tk, "%s/tokenizer", dir);
        if ((st = locus_bert_tok_load(&p->btok, tk))) {
            locus_pipeline_close(p);
            return st;
        }
    }
    if (p->vae.latent_channels != p->unet.in_channels) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: VAE latent_channels %d does not match the UNet's in_channels %d", dir, p->vae.latent_channels, p->unet.in_channels);
        locus_pipeline_close(p);
        return locus_fail(LOCUS_E_SHAPE, "%s", msg);
    }
    p->vae_factor = 1 << (p->vae.nblocks - 1);
    unsigned long long h = LOCUS_FNV_INIT;
    h = hash_component(h, &p->unet.L);
    h = hash_component(h, &p->vae.L);
    if (p->has_text) h = hash_component(h, &p->text.L);
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
    if (p->kind == LOCUS_PIPE_SD3) locus_mmdit_free(&p->mmdit);
    else locus_unet_free(&p->unet);
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

/* ==== peak-memory estimate ====
 * Design (issue 9, item 5).  The forwards allocate every buffer with locus_alloc and free it when dead (no
 * planned arena), and the kernels take scratch the same way, so the peak of a run is a property of the code's
 * allocation sequence.  Running that sequence for real at the requested size would cost a full generate, so
 * the estimate REPLAYS it on a ledger instead: for each phase of a plain CFG generate run (text encoding,
 * denoising, VAE decode) the functions below walk the same modules in the same order as the forwards and add
 * and remove the same buffer sizes (rounded up to 64 bytes as locus_alloc does), including the kernels'
 * scratch (GEMM A/B panels, attention score rows and packed K/V, per thread), and keep the high-water mark.
 * Weights are counted exactly from the loaders' buffers.  No compute runs, so it is instant at any size.
 * Each helper names the code it mirrors; a change there must be mirrored here — tests/test_peak.c compares
 * the estimate with locus_mem_peak() of real runs on both tiny pipelines at two sizes each (within 5%), so a
 * drift shows up as a failing test.  Not modelled: hooks (attention probabilities, caches), LoRA adapters,
 * --dump (every step's tensors are kept) and the temporary unpacked weight after a kernel-table switch.  With
 * several threads, the per-thread GEMM scratch inside attention is counted as held by all threads at once: an
 * upper bound (whether the threads' blocks overlap in time varies from run to run). */

/* private constants of the kernel drivers, copied: simd/gemm.c KC, MC_TARGET, NC, SERIAL_FLOPS; simd/attention.c QB */
enum { G_KC = 512, G_MC_TARGET = 144, G_NC = 3072, A_QB = 64 };
#define G_SERIAL_FLOPS 2000000.0

typedef struct { double live, peak; int nt; } msim; /* bytes held, high-water mark, threads */

static double msz(double floats) { double b = floats > 0 ? floats * 4 : 1; return ceil(b / LOCUS_ALIGN) * LOCUS_ALIGN; }
static void m_alloc(msim *s, double floats) { s->live += msz(floats); if (s->live > s->peak) s->peak = s->live; }
static void m_free(msim *s, double floats) { s->live -= msz(floats); }

/* simd/gemm.c locus_gemm / gemm_run: B panels (unless pre-packed) and one A block per thread */
static void m_gemm(msim *s, double M, double N, double K, int packed, int serial) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    const locus_kernels *kt = locus_k();
    double MC = (G_MC_TARGET / kt->mr) * kt->mr, kc = K < G_KC ? K : G_KC, nc = N < G_NC ? N : G_NC;
    int nt = serial || 2 * M * N * K < G_SERIAL_FLOPS ? 1 : s->nt;
    double bb = ceil(nc / kt->nr) * kt->nr * kc, ab = nt * MC * kc;
    if (!packed) m_alloc(s, bb);
    m_alloc(s, ab);
    m_free(s, ab);
    if (!packed) m_free(s, bb);
}
static void m_linear(msim *s, double M, const nn_linear *l) { m_gemm(s, M, l->out, l->in, 1, 0); } /* nn_linear_fwd */
/* simd/conv.c: one im2col GEMM per batch item (sequential) */
static void m_conv(msim *s, int cin, int cout, int k, double HWo) { m_gemm(s, cout, HWo, (double)cin * k * k, 0, 0); }

/* simd/attention.c locus_attention: score rows per thread, packed K^T and V per (batch, head), then each
 * thread's serial GEMMs (one A block at a time; the P.V one is the larger) */
static void m_attention(msim *s, int B, int H, double Tq, double Tk, int D) {
    double ntask = B * H * ceil(Tq / A_QB);
    int nt = s->nt;
    if (ntask < nt) nt = (int)ntask;
    if (Tq * Tk * D * B * H < 1e5) nt = 1;
    if (nt < 1) nt = 1;
    const locus_kernels *kt = locus_k();
    double sbuf = (double)nt * A_QB * (Tk > 0 ? Tk : 1), nbh = (double)B * H;
    double kp = (double)locus_gemm_packed_b_floats((int)Tk, D) * nbh, vp = (double)locus_gemm_packed_b_floats(D, (int)Tk) * nbh;
    double MC = (G_MC_TARGET / kt->mr) * kt->mr, kc = Tk > D ? Tk : D;
    double ab = MC * (kc < G_KC ? kc : G_KC);
    m_alloc(s, sbuf); m_alloc(s, kp); m_alloc(s, vp);
    for (int t = 0; t < nt; t++) m_alloc(s, ab);
    for (int t = 0; t < nt; t++) m_free(s, ab);
    m_free(s, vp); m_free(s, kp); m_free(s, sbuf);
}

/* models/nn.c nn_resnet_fwd */
static void m_resnet(msim *s, const nn_resnet *r, int B, int H, int W, int temb) {
    double HW = (double)H * W;
    m_alloc(s, B * r->cin * HW); m_alloc(s, B * r->cout * HW);
    m_conv(s, r->cin, r->cout, 3, HW);
    if (r->has_temb && temb) { m_alloc(s, (double)B * r->cout); m_linear(s, B, &r->temb); m_free(s, (double)B * r->cout); }
    m_alloc(s, B * r->cout * HW);
    m_conv(s, r->cout, r->cout, 3, HW);
    if (r->has_shortcut) m_conv(s, r->cin, r->cout, 1, HW);
    m_free(s, B * r->cin * HW); m_free(s, B * r->cout * HW); m_free(s, B * r->cout * HW);
}

/* models/nn.c nn_attention_fwd (no hooks: no probabilities) */
static void m_attn(msim *s, const nn_attention *a, int B, double T, double S) {
    double C = a->inner;
    m_alloc(s, B * T * C); m_alloc(s, B * S * C); m_alloc(s, B * S * C); m_alloc(s, B * T * C);
    m_linear(s, B * T, &a->q); m_linear(s, B * S, &a->k); m_linear(s, B * S, &a->v);
    m_attention(s, B, a->heads, T, S, a->dim_head);
    m_linear(s, B * T, &a->out);
    m_free(s, B * T * C); m_free(s, B * S * C); m_free(s, B * S * C); m_free(s, B * T * C);
}

/* models/nn.c nn_transformer2d_fwd and nn_tblock_fwd */
static void m_transformer2d(msim *s, const nn_transformer2d *t, int B, int H, int W, int S) {
    double HW = (double)H * W, C = t->c, I = t->inner;
    m_alloc(s, B * C * HW); m_alloc(s, B * HW * I); m_alloc(s, B * HW * (I > C ? I : C));
    if (t->linear_proj) m_linear(s, B * HW, &t->proj_in_l);
    else m_conv(s, t->c, t->inner, 1, HW);
    for (int i = 0; i < t->nblocks; i++) {
        const nn_tblock *b = &t->blocks[i];
        double N = B * HW * b->dim, rows = B * HW;
        m_alloc(s, N); m_alloc(s, N);
        m_attn(s, &b->a1, B, HW, b->only_cross ? S : HW);
        m_attn(s, &b->a2, B, HW, S);
        m_alloc(s, rows * 2 * b->ff_inner); m_alloc(s, rows * b->ff_inner);
        m_linear(s, rows, &b->ff_in); m_linear(s, rows, &b->ff_out);
        m_free(s, N); m_free(s, N); m_free(s, rows * 2 * b->ff_inner); m_free(s, rows * b->ff_inner);
    }
    if (t->linear_proj) m_linear(s, B * HW, &t->proj_out_l);
    else m_conv(s, t->inner, t->c, 1, HW);
    m_free(s, B * C * HW); m_free(s, B * HW * I); m_free(s, B * HW * (I > C ? I : C));
}

/* models/unet.c locus_unet_forward: time embedding, skips kept from the down path, up path concatenations */
static void m_unet(msim *s, const locus_unet *u, int B, int H, int W, int S) {
    double skip[UNET_MAX_BLOCKS * 8];
    int ns = 0, C = u->block_out[0];
    m_alloc(s, (double)B * u->time_dim); m_alloc(s, (double)B * u->temb_dim); m_alloc(s, (double)B * u->temb_dim);
    m_linear(s, B, &u->time_1); m_linear(s, B, &u->time_2);
    double h = (double)B * C * H * W;
    m_alloc(s, h);
    m_conv(s, u->in_channels, C, 3, (double)H * W);
    skip[ns++] = h;
    for (int i = 0; i < u->nblocks; i++) {
        const unet_block *b = &u->down[i];
        for (int j = 0; j < b->nlayers; j++) {
            double y = (double)B * b->cout * H * W;
            m_alloc(s, y);
            m_resnet(s, &b->res[j], B, H, W, 1);
            C = b->cout;
            if (b->cross) { m_alloc(s, y); m_transformer2d(s, &b->attn[j], B, H, W, S); m_free(s, y); }
            skip[ns++] = h = y;
        }
        if (b->has_sample) {
            int Ho = (H + 2 * b->sample.pad - 3) / 2 + 1, Wo = (W + 2 * b->sample.pad - 3) / 2 + 1;
            if (b->sample.pad == 0) { Ho = (H + 1 - 3) / 2 + 1; Wo = (W + 1 - 3) / 2 + 1; }
            h = (double)B * C * Ho * Wo;
            m_alloc(s, h);
            m_conv(s, C, C, 3, (double)Ho * Wo);
            H = Ho; W = Wo;
            skip[ns++] = h;
        }
    }
    double y = (double)B * C * H * W;
    m_alloc(s, y); m_alloc(s, y);
    m_resnet(s, &u->mid.res[0], B, H, W, 1);
    m_transformer2d(s, &u->mid.attn[0], B, H, W, S);
    m_resnet(s, &u->mid.res[1], B, H, W, 1);
    m_free(s, y);
    h = y;
    for (int i = 0; i < u->nblocks; i++) {
        const unet_block *b = &u->up[i];
        for (int j = 0; j < b->nlayers; j++) {
            double sk = skip[--ns], cat = h + sk;
            m_alloc(s, cat);
            m_free(s, sk); m_free(s, h);
            C = b->cout;
            h = (double)B * C * H * W;
            m_alloc(s, h);
            m_resnet(s, &b->res[j], B, H, W, 1);
            m_free(s, cat);
            if (b->cross) { m_alloc(s, h); m_transformer2d(s, &b->attn[j], B, H, W, S); m_free(s, h); }
        }
        if (b->has_sample) {
            double up = 4.0 * B * C * H * W;
            m_alloc(s, up); m_alloc(s, up);
            H *= 2; W *= 2;
            m_conv(s, C, C, 3, (double)H * W);
            m_free(s, up); m_free(s, h);
            h = up;
        }
    }
    m_alloc(s, h);
    m_conv(s, C, u->out_channels, 3, (double)H * W);
    m_free(s, h); m_free(s, h);
    m_free(s, (double)B * u->time_dim); m_free(s, (double)B * u->temb_dim); m_free(s, (double)B * u->temb_dim);
    while (ns > 0) m_free(s, skip[--ns]);
}

/* models/mmdit.c locus_mmdit_forward and block_fwd (no hooks) */
static void m_mmdit(msim *s, const locus_mmdit *m, int B, int H, int W, int S) {
    double D = m->D, p = m->patch, N = (double)(H / m->patch) * (W / m->patch), J = N + S;
    m_alloc(s, B * D * N); m_alloc(s, B * N * D);
    m_conv(s, m->in_channels, m->D, m->patch, N);
    m_alloc(s, B * 256.0); m_alloc(s, B * D); m_alloc(s, B * D); m_alloc(s, B * D);
    m_linear(s, B, &m->t1); m_linear(s, B, &m->t2); m_linear(s, B, &m->p1); m_linear(s, B, &m->p2);
    m_alloc(s, B * S * D);
    m_linear(s, (double)B * S, &m->ctx_emb);
    for (int i = 0; i < m->nlayers; i++) {
        const mmdit_block *b = &m->blocks[i];
        double e1 = B * (b->dual ? 9 : 6) * D, e2 = B * (b->pre_only ? 2 : 6) * D;
        m_alloc(s, e1); m_alloc(s, e2);
        m_linear(s, B, &b->norm1); m_linear(s, B, &b->norm1_ctx);
        m_alloc(s, B * N * D); m_alloc(s, B * S * D);
        if (b->dual) m_alloc(s, B * N * D);
        for (int t = 0; t < 4; t++) m_alloc(s, B * J * D);
        for (int t = 0; t < 3; t++) m_alloc(s, B * N * D);
        for (int t = 0; t < 3; t++) m_alloc(s, B * S * D);
        m_linear(s, B * N, &b->q); m_linear(s, B * N, &b->k); m_linear(s, B * N, &b->v);
        m_linear(s, B * S, &b->aq); m_linear(s, B * S, &b->ak); m_linear(s, B * S, &b->av);
        for (int t = 0; t < 3; t++) m_free(s, B * N * D);
        for (int t = 0; t < 3; t++) m_free(s, B * S * D);
        m_attention(s, B, m->heads, J, J, m->head_dim);
        m_alloc(s, B * N * D); m_alloc(s, B * S * D);
        m_linear(s, N, &b->out);
        if (!b->pre_only) m_linear(s, S, &b->add_out);
        if (b->dual) {
            m_linear(s, N, &b->q2); m_linear(s, N, &b->k2); m_linear(s, N, &b->v2);
            m_attention(s, B, m->heads, N, N, m->head_dim);
            m_linear(s, B * N, &b->out2);
        }
        m_alloc(s, B * N * b->ff_in.out); m_linear(s, B * N, &b->ff_in); m_linear(s, B * N, &b->ff_out); m_free(s, B * N * b->ff_in.out);
        if (!b->pre_only) {
            m_alloc(s, B * S * b->ffc_in.out); m_linear(s, B * S, &b->ffc_in); m_linear(s, B * S, &b->ffc_out); m_free(s, B * S * b->ffc_in.out);
        }
        m_free(s, e1); m_free(s, e2); m_free(s, B * N * D); m_free(s, B * S * D);
        if (b->dual) m_free(s, B * N * D);
        for (int t = 0; t < 4; t++) m_free(s, B * J * D);
        m_free(s, B * N * D); m_free(s, B * S * D);
    }
    double po = B * N * p * p * m->out_channels;
    m_alloc(s, B * 2 * D); m_alloc(s, B * N * D); m_alloc(s, po);
    m_linear(s, B, &m->norm_out); m_linear(s, B * N, &m->proj_out);
    m_free(s, B * D * N); m_free(s, B * N * D); m_free(s, B * 256.0); m_free(s, B * D); m_free(s, B * D); m_free(s, B * D);
    m_free(s, B * S * D); m_free(s, B * 2 * D); m_free(s, B * N * D); m_free(s, po);
}

/* models/vae.c locus_vae_decode (mid block, ping-pong buffers a/b), inside locus_pipeline_decode's z */
static void m_vae_decode(msim *s, const locus_vae *v, int h, int w) {
    const vae_coder *d = &v->dec;
    int nb = v->nblocks, f = 1 << (nb - 1), C = v->block_out[nb - 1], H = h, W = w;
    double maxN = 0, zz = (double)v->latent_channels * h * w;
    for (int i = 0; i < nb; i++) { double n = (double)v->block_out[i] * H * f * W * f; if (n > maxN) maxN = n; }
    m_alloc(s, zz); m_alloc(s, maxN); m_alloc(s, maxN);
    if (v->use_post_quant_conv) m_conv(s, v->latent_channels, v->latent_channels, 1, (double)H * W);
    m_conv(s, v->latent_channels, C, 3, (double)H * W);
    double N = (double)C * H * W;
    m_alloc(s, N);
    m_resnet(s, &d->mid.res[0], 1, H, W, 0);
    if (d->mid.has_attn) {
        m_alloc(s, N); m_alloc(s, N); m_alloc(s, N);
        m_attn(s, &d->mid.attn, 1, (double)H * W, (double)H * W);
        m_free(s, N); m_free(s, N); m_free(s, N);
    }
    m_resnet(s, &d->mid.res[1], 1, H, W, 0);
    m_free(s, N);
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j < v->layers + 1; j++) m_resnet(s, &d->res[i][j], 1, H, W, 0);
        C = d->cout[i];
        if (d->has_sample[i]) { H *= 2; W *= 2; m_conv(s, C, C, 3, (double)H * W); }
    }
    m_conv(s, C, v->out_channels, 3, (double)H * W);
    m_free(s, zz); m_free(s, maxN); m_free(s, maxN);
}

/* models/textenc.c locus_textenc_forward (B = 1, T tokens; pooled output when `pooled`) */
static void m_textenc(msim *s, const locus_textenc *t, double T, int pooled) {
    double inner = (double)t->heads * t->dim_head, D = t->D, bufs[8] = {T * D, T * D, T * (inner > D ? inner : D), T * inner, T * inner, T * inner, T * t->ffn, T * T};
    int nbuf = t->kind == LOCUS_TEXT_CLIP ? 8 : 7;
    for (int i = 0; i < nbuf; i++) m_alloc(s, bufs[i]);
    const textenc_layer *y = &t->layers[0];
    if (t->nlayers > 0) {
        m_linear(s, T, &y->q); m_linear(s, T, &y->k); m_linear(s, T, &y->v);
        m_attention(s, 1, t->heads, T, T, t->dim_head);
        m_linear(s, T, &y->o); m_linear(s, T, &y->fc1); m_linear(s, T, &y->fc2);
    }
    if (pooled && t->kind == LOCUS_TEXT_CLIP) { m_alloc(s, D); if (t->proj.w || t->proj.wp) m_linear(s, 1, &t->proj); m_free(s, D); }
    for (int i = 0; i < nbuf; i++) m_free(s, bufs[i]);
}

/* models/t5.c locus_t5_forward (B = 1, no padding mask) */
static void m_t5(msim *s, const locus_t5 *t, double T) {
    double inner = (double)t->heads * t->dkv, bufs[9] = {T * t->D, T * t->D, T * inner, T * inner, T * inner, T * inner, T * t->dff, T * t->dff, t->heads * T * T};
    for (int i = 0; i < 9; i++) m_alloc(s, bufs[i]);
    if (t->nlayers > 0) {
        const t5_block *b = &t->blocks[0];
        m_linear(s, T, &b->q); m_linear(s, T, &b->k); m_linear(s, T, &b->v);
        m_attention(s, 1, t->heads, T, T, t->dkv);
        m_linear(s, T, &b->o); m_linear(s, T, &b->wi0); m_linear(s, T, &b->wi1); m_linear(s, T, &b->wo);
    }
    for (int i = 0; i < 9; i++) m_free(s, bufs[i]);
}

/* bytes of every weight buffer a loader holds (exact: the blocks' accounted sizes) */
static double loader_bytes(const locus_loader *L) {
    double b = 0;
    for (size_t i = 0; i < L->nbufs; i++) b += (double)locus_alloc_size(L->bufs[i]);
    return b;
}

size_t locus_pipeline_peak_estimate_parts(const locus_pipeline *p, int W, int H, int text_tokens, int threads, size_t parts[4]) {
    int sd3 = p->kind == LOCUS_PIPE_SD3, f = p->vae_factor, h = H / f, w = W / f, B = 2; /* CFG pair */
    double weights = loader_bytes(&p->vae.L) + loader_bytes(sd3 ? &p->mmdit.L : &p->unet.L);
    if (p->has_text) weights += loader_bytes(&p->text.L);
    if (p->has_text2) weights += loader_bytes(&p->text2.L);
    if (p->has_t5) weights += loader_bytes(&p->t5.L);
    int S = text_tokens, C = locus_pipeline_latent_channels(p);
    double ctxw = sd3 ? p->mmdit.joint_dim : p->unet.ctx_dim, n = (double)C * h * w, peak[3];
    msim s = {0, 0, threads > 0 ? threads : 1};
    /* 1. prompt and negative prompt encoded one after the other (experiments/run.c locus_embeds_encode): the
     * second pass runs with both embeddings held */
    for (int i = 0; i < 2; i++) {
        m_alloc(&s, S * ctxw);
        if (sd3) m_alloc(&s, p->mmdit.pooled_dim);
    }
    if (sd3 && p->has_text && p->has_text2) { /* models/pipeline.c locus_pipeline_encode_prompt_sd3 */
        m_alloc(&s, 77.0 * p->text.D); m_alloc(&s, 77.0 * p->text2.D);
        m_textenc(&s, &p->text, 77, 1); m_textenc(&s, &p->text2, 77, 1);
        if (p->has_t5) m_t5(&s, &p->t5, S - 77);
        m_free(&s, 77.0 * p->text.D); m_free(&s, 77.0 * p->text2.D);
    } else if (!sd3 && p->has_text) { /* models/textenc.c locus_textenc_clip_skip (a hidden-state copy when k > 0) */
        double T = p->text.maxpos < 77 ? p->text.maxpos : 77, hs = p->clip_skip > 0 ? T * p->text.D : 0;
        if (hs) m_alloc(&s, hs);
        m_textenc(&s, &p->text, T, 0);
        if (hs) m_free(&s, hs);
    }
    peak[0] = s.peak;
    /* 2. sampling (models/sampler.c): the latent, the CFG batch, predictions, guided prediction, contexts */
    s.peak = s.live;
    m_alloc(&s, n);
    double sb[5] = {B * n, B * n, n, B * S * ctxw, sd3 ? (double)B * p->mmdit.pooled_dim : 0};
    for (int i = 0; i < (sd3 ? 5 : 4); i++) m_alloc(&s, sb[i]);
    if (sd3) m_mmdit(&s, &p->mmdit, B, h, w, S);
    else m_unet(&s, &p->unet, B, h, w, S);
    for (int i = 0; i < (sd3 ? 5 : 4); i++) m_free(&s, sb[i]);
    peak[1] = s.peak;
    /* 3. decode (experiments/run.c locus_run_image, models/pipeline.c locus_pipeline_decode) */
    s.peak = s.live;
    m_alloc(&s, 3.0 * H * W);
    m_alloc(&s, n);
    m_vae_decode(&s, &p->vae, h, w);
    peak[2] = s.peak;
    double top = 0;
    for (int i = 0; i < 3; i++) top = peak[i] > top ? peak[i] : top;
    if (parts) {
        parts[0] = (size_t)weights;
        for (int i = 0; i < 3; i++) parts[i + 1] = (size_t)peak[i];
    }
    return (size_t)(weights + top);
}

size_t locus_pipeline_peak_estimate(const locus_pipeline *p, int W, int H, int text_tokens, int threads) {
    return locus_pipeline_peak_estimate_parts(p, W, H, text_tokens, threads, NULL);
}
