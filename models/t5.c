/* t5.c — T5 v1.1 encoder (see t5.h). */
#include "t5.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../simd/ops.h"

/* activation buffers of the forward pass (no error path: out of memory ends the process with one line) */
#define TA(n) locus_alloc_act((n), "T5 activations")

locus_status locus_t5_load(locus_t5 *t, const char *dir) {
    memset(t, 0, sizeof *t);
    locus_status st = locus_loader_open(&t->L, dir);
    if (st) return st;
    locus_loader *L = &t->L;
    const char *mt = locus_cfg_str(L, "model_type", "t5");
    if (strcmp(mt, "t5")) locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: model_type '%s' is not t5", dir, mt);
    const char *ff = locus_cfg_str(L, "feed_forward_proj", "gated-gelu");
    if (strcmp(ff, "gated-gelu")) locus_loader_fail(L, LOCUS_E_UNSUPPORTED, "%s/config.json: feed_forward_proj '%s' is not supported (gated-gelu)", dir, ff);
    t->vocab = (int)locus_cfg_int_in(L, "vocab_size", 32128, 1, 2097152);
    t->D = (int)locus_cfg_int_in(L, "d_model", 4096, 1, 65536);
    t->dkv = (int)locus_cfg_int_in(L, "d_kv", 64, 1, 4096);
    t->heads = (int)locus_cfg_int_in(L, "num_heads", 64, 1, 1024);
    t->dff = (int)locus_cfg_int_in(L, "d_ff", 10240, 1, 262144);
    t->nlayers = (int)locus_cfg_int_in(L, "num_layers", 24, 1, 1000);
    t->buckets = (int)locus_cfg_int_in(L, "relative_attention_num_buckets", 32, 1, 4096);
    t->max_distance = (int)locus_cfg_int_in(L, "relative_attention_max_distance", 128, 1, 1048576);
    t->eps = (float)locus_cfg_num_in(L, "layer_norm_epsilon", 1e-6, 1e-30, 1.0);
    if (L->status) {
        locus_status st0 = locus_loader_status(L);
        locus_t5_free(t);
        return st0;
    }
    int inner = t->heads * t->dkv;
    t->shared = locus_param_opt(L, 2, t->vocab, t->D, 0, 0, "shared.weight");
    if (!t->shared && !L->status) t->shared = locus_param(L, 2, t->vocab, t->D, 0, 0, "encoder.embed_tokens.weight");
    t->rel_bias = locus_param(L, 2, t->buckets, t->heads, 0, 0, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    t->blocks = calloc(t->nlayers > 0 ? (size_t)t->nlayers : 1, sizeof *t->blocks);
    if (!t->blocks) locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory building T5");
    char n[256];
    for (int i = 0; i < t->nlayers && !L->status; i++) {
        t5_block *b = &t->blocks[i];
        b->ln0 = locus_param(L, 1, t->D, 0, 0, 0, "encoder.block.%d.layer.0.layer_norm.weight", i);
        b->ln1 = locus_param(L, 1, t->D, 0, 0, 0, "encoder.block.%d.layer.1.layer_norm.weight", i);
#define LIN(f, in, out, fmt) do { snprintf(n, sizeof n, "encoder.block.%d." fmt, i); nn_linear_load(L, &b->f, in, out, 0, n); } while (0)
        LIN(q, t->D, inner, "layer.0.SelfAttention.q"); LIN(k, t->D, inner, "layer.0.SelfAttention.k");
        LIN(v, t->D, inner, "layer.0.SelfAttention.v"); LIN(o, inner, t->D, "layer.0.SelfAttention.o");
        LIN(wi0, t->D, t->dff, "layer.1.DenseReluDense.wi_0"); LIN(wi1, t->D, t->dff, "layer.1.DenseReluDense.wi_1");
        LIN(wo, t->dff, t->D, "layer.1.DenseReluDense.wo");
#undef LIN
    }
    t->final_ln = locus_param(L, 1, t->D, 0, 0, 0, "encoder.final_layer_norm.weight");
    /* a tied copy of shared.weight, and the decoder of a full T5 checkpoint, are knowingly not used */
    locus_loader_allow_unused(L, "encoder.embed_tokens.");
    locus_loader_allow_unused(L, "decoder.");
    locus_loader_allow_unused(L, "lm_head.");
    locus_loader_check_unused(L);
    st = locus_loader_status(L);
    if (st) locus_t5_free(t); /* cleanup keeps the thread's error message */
    return st;
}

void locus_t5_free(locus_t5 *t) {
    free(t->blocks);
    t->blocks = NULL;
    locus_loader_close(&t->L);
}

/* as transformers' T5Attention._relative_position_bucket(bidirectional=True), in its fp32 arithmetic */
int locus_t5_bucket(int rel, int num_buckets, int max_distance) {
    int nb = num_buckets / 2, bucket = rel > 0 ? nb : 0;
    int a = rel < 0 ? -rel : rel, max_exact = nb / 2;
    if (a < max_exact) return bucket + a;
    float r = (float)a / (float)max_exact;
    float l = logf(r) / (float)log((double)max_distance / max_exact) * (float)(nb - max_exact);
    int large = max_exact + (int)l;
    if (large > nb - 1) large = nb - 1;
    return bucket + large;
}

locus_status locus_t5_forward(const locus_t5 *t, const int64_t *ids, int B, int T, const int64_t *mask, float *last,
                              int hidden_index, float *hidden, const locus_hooks *hooks) {
    for (int i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab) return locus_fail(LOCUS_E_ARG, "T5: token id %lld outside the vocabulary (%d)", (long long)ids[i], t->vocab);
    int D = t->D, H = t->heads, inner = H * t->dkv;
    size_t N = (size_t)B * T * D;
    float *h = TA(N * 4), *x = TA(N * 4), *q = TA((size_t)B * T * inner * 4), *k = TA((size_t)B * T * inner * 4),
          *v = TA((size_t)B * T * inner * 4), *a = TA((size_t)B * T * inner * 4), *f0 = TA((size_t)B * T * t->dff * 4),
          *f1 = TA((size_t)B * T * t->dff * 4);
    /* position bias [H,T,T] (or [B,H,T,T] with the padding mask folded in) */
    size_t bsz = (size_t)(mask ? B : 1) * H * T * T;
    float *bias = TA(bsz * 4);
    for (int b = 0; b < (mask ? B : 1); b++)
        for (int hh = 0; hh < H; hh++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    float val = t->rel_bias[locus_t5_bucket(j - i, t->buckets, t->max_distance) * H + hh];
                    if (mask && !mask[b * T + j]) val = val + -FLT_MAX;
                    bias[(((size_t)b * H + hh) * T + i) * T + j] = val;
                }
    for (int i = 0; i < B * T; i++) memcpy(h + (size_t)i * D, t->shared + ids[i] * D, (size_t)D * 4);
    locus_hook(hooks, "embeddings", h, 3, B, T, D, 0);
    if (hidden_index == 0 && hidden) memcpy(hidden, h, N * 4);
    char n[96];
    for (int l = 0; l < t->nlayers; l++) {
        const t5_block *b = &t->blocks[l];
        locus_rms_norm(h, x, (size_t)B * T, D, b->ln0, t->eps);
        nn_linear_fwd(&b->q, x, B * T, q);
        nn_linear_fwd(&b->k, x, B * T, k);
        nn_linear_fwd(&b->v, x, B * T, v);
        locus_attn_desc d = {B, H, T, T, t->dkv, q, (ptrdiff_t)T * inner, inner, k, (ptrdiff_t)T * inner, inner, v, (ptrdiff_t)T * inner, inner,
                             a, (ptrdiff_t)T * inner, inner, 1.0f, bias, mask ? (ptrdiff_t)H * T * T : 0, T, NULL, (ptrdiff_t)T * T};
        locus_attention(&d);
        nn_linear_fwd(&b->o, a, B * T, x);
        snprintf(n, sizeof n, "block.%d.layer.0.SelfAttention", l);
        locus_hook(hooks, n, x, 3, B, T, D, 0);
        locus_binary(h, x, h, N, LOCUS_BIN_ADD, 0.0f);
        locus_rms_norm(h, x, (size_t)B * T, D, b->ln1, t->eps);
        nn_linear_fwd(&b->wi0, x, B * T, f0);
        nn_linear_fwd(&b->wi1, x, B * T, f1);
        locus_binary(f1, f0, f0, (size_t)B * T * t->dff, LOCUS_BIN_MUL_ACT_GELU_TANH, 0.0f); /* gelu_new(wi_0 x) * wi_1 x */
        nn_linear_fwd(&b->wo, f0, B * T, x);
        snprintf(n, sizeof n, "block.%d.layer.1.DenseReluDense", l);
        locus_hook(hooks, n, x, 3, B, T, D, 0);
        locus_binary(h, x, h, N, LOCUS_BIN_ADD, 0.0f);
        snprintf(n, sizeof n, "block_out.%d", l);
        locus_hook(hooks, n, h, 3, B, T, D, 0);
        if (hidden_index == l + 1 && hidden) memcpy(hidden, h, N * 4);
    }
    if (last) locus_rms_norm(h, last, (size_t)B * T, D, t->final_ln, t->eps);
    locus_free(h); locus_free(x); locus_free(q); locus_free(k); locus_free(v); locus_free(a); locus_free(f0); locus_free(f1); locus_free(bias);
    return LOCUS_OK;
}
