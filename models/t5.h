/* t5.h — T5EncoderModel (T5 v1.1: SD3's text_encoder_3, DeepFloyd IF) from a transformers folder.
 *
 * shared embedding (no scaling); per block: T5LayerNorm (RMS, no mean, eps) -> self-attention without 1/sqrt(d)
 * scaling plus the relative position bias of block 0 (bidirectional buckets, shared by all blocks) -> +,
 * T5LayerNorm -> gated-gelu FFN (gelu_tanh(wi_0 x) * wi_1 x -> wo) -> +; final_layer_norm.
 */
#ifndef LOCUS_T5_H
#define LOCUS_T5_H

#include <stdint.h>

#include "nn.h"

typedef struct {
    const float *ln0, *ln1;
    nn_linear q, k, v, o, wi0, wi1, wo;
} t5_block;

typedef struct {
    int vocab, D, heads, dkv, dff, nlayers, buckets, max_distance;
    float eps;
    const float *shared, *rel_bias; /* rel_bias [buckets, heads] */
    t5_block *blocks;
    const float *final_ln;
    locus_loader L;
} locus_t5;

locus_status locus_t5_load(locus_t5 *t, const char *dir);
void locus_t5_free(locus_t5 *t);

/* T5's bucket of a relative position (key - query), bidirectional. */
int locus_t5_bucket(int rel, int num_buckets, int max_distance);

/* ids[B,T] -> last[B,T,D] (after final_layer_norm).  mask[B,T] (1 keep / 0 pad) may be NULL (SD3 runs
 * unmasked).  hidden_index k >= 0: hidden = HF hidden_states[k] (0 = embeddings, k = output of block k-1). */
locus_status locus_t5_forward(const locus_t5 *t, const int64_t *ids, int B, int T, const int64_t *mask, float *last,
                              int hidden_index, float *hidden, const locus_hooks *hooks);

#endif
