/* train_text.c — `locus train unet --train-text-encoder`: the pipeline's CLIP text encoder trained jointly
 * with the UNet, for encoders without transformer layers (num_hidden_layers 0).
 *
 * Why: with a frozen random encoder every vocabulary word is a fixed random 64-number code, and the UNet must
 * learn to decode each code into its letters on its own; measured on the signs data (docs/TRAINING.md) that
 * takes far longer than the 90-minute budget.  Letting the gradient shape the codes (as class-conditional
 * models learn their class embeddings) is the cheapest fix that keeps the folder a plain transformers
 * CLIPTextModel.  Such an encoder computes, per token, last = LayerNorm(token_embedding[id] +
 * position_embedding[pos]) * w + b, so its backward is the LayerNorm backward (simd/ops_bwd.h: fixed-order
 * chains) and a scatter of the rows into the two embedding tables in row order (one thread, rows of the
 * batch in order: the same bits for any thread count and ISA).  Encoders with layers are refused by name
 * (their backward — causal self-attention and MLP — is not written).
 *
 * The forward is the one `locus generate` runs (locus_textenc_clip_skip on the same weights), so the trained
 * folder generates with exactly the embeddings the UNet saw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/safetensors.h"
#include "../models/tokenizer_clip.h"
#include "../simd/ops_bwd.h"
#include "train_model.h"

static const char *const TOK = "text_model.embeddings.token_embedding.weight", *const POS = "text_model.embeddings.position_embedding.weight",
                         *const LNW = "text_model.final_layer_norm.weight", *const LNB = "text_model.final_layer_norm.bias";

locus_status locus_text_train_open(locus_text_train *tt, const char *base, char *const *captions, int ncap) {
    memset(tt, 0, sizeof *tt);
    locus_status st = locus_pipeline_open_text(&tt->p, base);
    if (st) return locus_fail(st, "--base %s: %s", base, locus_errmsg());
    tt->open = 1;
    const locus_textenc *te = &tt->p.text;
    if (te->kind != LOCUS_TEXT_CLIP || !tt->p.tok)
        return locus_fail(LOCUS_E_UNSUPPORTED, "--train-text-encoder: %s/text_encoder is not a CLIP text encoder with a CLIP tokenizer", base);
    if (te->nlayers != 0)
        return locus_fail(LOCUS_E_UNSUPPORTED, "--train-text-encoder trains CLIP text encoders without transformer layers (num_hidden_layers 0); %s/text_encoder has %d",
                          base, te->nlayers);
    if (tt->p.clip_skip) return locus_fail(LOCUS_E_UNSUPPORTED, "--train-text-encoder: clip skip %d needs layers", tt->p.clip_skip);
    tt->V = te->vocab; tt->D = te->D; tt->P = te->maxpos; tt->S = te->maxpos < 77 ? te->maxpos : 77; tt->ncap = ncap;
    size_t D = (size_t)tt->D;
    tt->tok = malloc((size_t)tt->V * D * sizeof(float));
    tt->pos = malloc((size_t)tt->P * D * sizeof(float));
    tt->lnw = malloc(D * sizeof(float));
    tt->lnb = malloc(D * sizeof(float));
    tt->ids = malloc((size_t)(ncap + 1) * tt->S * sizeof(int64_t));
    if (!tt->tok || !tt->pos || !tt->lnw || !tt->lnb || !tt->ids) return locus_fail(LOCUS_E_NOMEM, "out of memory for the text encoder");
    /* writable copies of the parameters; the encoder reads them from here on */
    memcpy(tt->tok, te->tok, (size_t)tt->V * D * sizeof(float));
    memcpy(tt->pos, te->pos, (size_t)tt->P * D * sizeof(float));
    for (size_t k = 0; k < D; k++) {
        tt->lnw[k] = te->final_ln.w ? te->final_ln.w[k] : 1.0f;
        tt->lnb[k] = te->final_ln.b ? te->final_ln.b[k] : 0.0f;
    }
    tt->p.text.tok = tt->tok;
    tt->p.text.pos = tt->pos;
    tt->p.text.final_ln.w = tt->lnw;
    tt->p.text.final_ln.b = tt->lnb;
    for (int i = 0; i <= ncap && !st; i++) {
        int tr = 0;
        st = locus_clip_tok_encode_padded(tt->p.tok, i < ncap ? captions[i] : "", tt->S, tt->ids + (size_t)i * tt->S, &tr);
        if (!st && tr) fprintf(stderr, "locus: warning: caption longer than %d tokens was truncated: %s\n", tt->S, captions[i]);
    }
    return st;
}

void locus_text_train_free(locus_text_train *tt) {
    if (tt->open) {
        if (tt->p.tok) locus_clip_tok_free(tt->p.tok);
        locus_textenc_free(&tt->p.text);
    }
    free(tt->tok);
    free(tt->pos);
    free(tt->lnw);
    free(tt->lnb);
    free(tt->ids);
    memset(tt, 0, sizeof *tt);
}

locus_status locus_text_train_track(locus_text_train *tt, locus_trainer *t) {
    int64_t stok[2] = {tt->V, tt->D}, spos[2] = {tt->P, tt->D}, sln[1] = {tt->D};
    char n[4][160];
    const char *base[4] = {TOK, POS, LNW, LNB};
    for (int i = 0; i < 4; i++) snprintf(n[i], sizeof n[i], "text_encoder.%s", base[i]);
    locus_status st = locus_trainer_track(t, n[0], tt->tok, 2, stok);
    if (!st) st = locus_trainer_track(t, n[1], tt->pos, 2, spos);
    if (!st) st = locus_trainer_track(t, n[2], tt->lnw, 1, sln);
    if (!st) st = locus_trainer_track(t, n[3], tt->lnb, 1, sln);
    return st;
}

/* the ids of caption cap (-1: the empty caption) */
static const int64_t *cap_ids(const locus_text_train *tt, int cap) {
    return tt->ids + (size_t)(cap < 0 ? tt->ncap : cap) * tt->S;
}

locus_status locus_text_train_embed(const locus_text_train *tt, const int *cap, int B, float *ctx) {
    int64_t *ids = malloc((size_t)B * tt->S * sizeof(int64_t));
    if (!ids) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    for (int i = 0; i < B; i++) memcpy(ids + (size_t)i * tt->S, cap_ids(tt, cap[i]), (size_t)tt->S * sizeof(int64_t));
    locus_status st = locus_textenc_clip_skip(&tt->p.text, ids, B, tt->S, 0, ctx);
    free(ids);
    return st;
}

locus_status locus_text_train_backward(const locus_text_train *tt, const int *cap, int B, const float *dctx, const locus_grads *g) {
    size_t D = (size_t)tt->D, rows = (size_t)B * tt->S;
    float *x = malloc(rows * D * sizeof(float)), *dx = malloc(rows * D * sizeof(float)); /* [B*S, D] pre-norm rows, their gradient */
    if (!x || !dx) { free(x); free(dx); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    for (size_t r = 0; r < rows; r++) { /* the forward's sum, recomputed (same single rounding) */
        int64_t id = cap_ids(tt, cap[r / tt->S])[r % tt->S];
        const float *te = tt->tok + (size_t)id * D, *pe = tt->pos + (r % tt->S) * D;
        for (size_t k = 0; k < D; k++) x[r * D + k] = te[k] + pe[k];
    }
    locus_layer_norm_bwd(x, dctx, rows, D, tt->lnw, tt->p.text.eps, dx, 0, locus_grads_of(g, tt->lnw), locus_grads_of(g, tt->lnb), 1);
    float *gt = locus_grads_of(g, tt->tok), *gp = locus_grads_of(g, tt->pos);
    for (size_t r = 0; r < rows; r++) { /* scatter in row order: one fixed add chain per table element */
        int64_t id = cap_ids(tt, cap[r / tt->S])[r % tt->S];
        const float *d = dx + r * D;
        if (gt) for (size_t k = 0; k < D; k++) gt[(size_t)id * D + k] += d[k];
        if (gp) for (size_t k = 0; k < D; k++) gp[(r % tt->S) * D + k] += d[k];
    }
    free(x);
    free(dx);
    return LOCUS_OK;
}

/* text_encoder/config.json names the dtype of the weights as transformers' save_pretrained writes it
 * ("torch_dtype": "float16" for a half model): rewritten in place when the weights are saved. */
static locus_status set_torch_dtype(const char *base, int fp16) {
    char path[4400];
    snprintf(path, sizeof path, "%s/text_encoder/config.json", base);
    char *text = NULL;
    size_t len = 0;
    locus_status st = locus_read_file(path, &text, &len);
    if (st) return st;
    const char *from = fp16 ? "\"torch_dtype\": \"float32\"" : "\"torch_dtype\": \"float16\"";
    char *at = strstr(text, from);
    if (at) {
        memcpy(at + strlen("\"torch_dtype\": \"float"), fp16 ? "16" : "32", 2);
        st = locus_write_atomic(path, text, len);
    }
    free(text);
    return st;
}

locus_status locus_text_train_save(const locus_text_train *tt, const char *base, int fp16) {
    char src[4400], dst[4400];
    snprintf(src, sizeof src, "%s/text_encoder/model.safetensors", base);
    snprintf(dst, sizeof dst, "%s/text_encoder/model.safetensors", base);
    locus_st_file f;
    locus_status st = locus_st_open(&f, src);
    if (st) return st;
    locus_st_writer *w = locus_st_writer_new();
    if (!w) { locus_st_close(&f); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    int64_t stok[2] = {tt->V, tt->D}, spos[2] = {tt->P, tt->D}, sln[1] = {tt->D};
    st = locus_train_add_tensor(w, TOK, 2, stok, tt->tok, (size_t)tt->V * tt->D, fp16);
    if (!st) st = locus_train_add_tensor(w, POS, 2, spos, tt->pos, (size_t)tt->P * tt->D, fp16);
    if (!st) st = locus_train_add_tensor(w, LNW, 1, sln, tt->lnw, (size_t)tt->D, fp16);
    if (!st) st = locus_train_add_tensor(w, LNB, 1, sln, tt->lnb, (size_t)tt->D, fp16);
    const locus_st_tensor *pid = locus_st_find(&f, "text_model.embeddings.position_ids"); /* transformers' buffer, kept */
    if (!st && pid) {
        int64_t *v = malloc((size_t)tt->P * sizeof(int64_t)), shp[2] = {1, tt->P};
        if (!v) st = locus_fail(LOCUS_E_NOMEM, "out of memory");
        for (int i = 0; v && i < tt->P; i++) v[i] = i;
        if (!st) st = locus_st_writer_add(w, "text_model.embeddings.position_ids", LOCUS_I64, 2, shp, v);
        free(v);
    }
    if (!st) st = locus_st_writer_add_meta(w, "format", "pt");
    locus_st_close(&f);
    if (!st) st = locus_st_writer_save(w, dst);
    locus_st_writer_free(w);
    if (!st) st = set_torch_dtype(base, fp16);
    return st;
}
