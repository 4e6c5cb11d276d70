/* token_ids.h — fitting a tokenizer's ids to the fixed length a text encoder takes (transformers'
 * padding="max_length", truncation=True for tokenizers that end with an EOS token). */
#ifndef LOCUS_TOKEN_IDS_H
#define LOCUS_TOKEN_IDS_H

#include <stdint.h>

/* out[len] = ids[:n], cut to ids[:len-1] + [eos] when longer (*truncated set), else padded with pad. */
static inline void locus_ids_fit(const int64_t *ids, int n, int len, int64_t eos, int64_t pad, int64_t *out, int *truncated) {
    *truncated = n > len;
    for (int i = 0; i < len; i++) out[i] = i < n ? ids[i] : pad;
    if (n > len) out[len - 1] = eos;
}

#endif
