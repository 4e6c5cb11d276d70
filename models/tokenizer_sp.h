/* tokenizer_sp.h — SentencePiece unigram tokenizer (T5 / SD3 tokenizer_3) read from spiece.model.
 *
 * The model file (protobuf ModelProto) gives the pieces with their scores and types and the normalizer flags.
 * Encoding as SentencePiece's Normalizer + unigram Model: the model's precompiled character map (NFKC-based
 * nmt_nfkc for T5: a darts-clone double-array trie of byte sequences -> replacements, longest match wins;
 * malformed UTF-8 bytes become U+FFFD), leading/trailing/repeated whitespace removed, a dummy-prefix space,
 * spaces escaped as U+2581; then the Viterbi segmentation maximising the sum of piece scores, where a
 * character no piece covers is <unk> (score: lowest piece score - 10) and runs of <unk> merge into one.
 */
#ifndef LOCUS_TOKENIZER_SP_H
#define LOCUS_TOKENIZER_SP_H

#include <stdint.h>

#include "../core/error.h"

typedef struct locus_sp_tok locus_sp_tok;

locus_status locus_sp_tok_load(locus_sp_tok **t, const char *path);
void locus_sp_tok_free(locus_sp_tok *t);

/* sp.encode(text) + [eos] into out (max entries); *n = count. */
locus_status locus_sp_tok_encode(const locus_sp_tok *t, const char *text, int64_t *out, int max, int *n);

/* T5 pipeline form: `len` ids, truncated to len-1 + [eos] (*truncated set) or padded with the pad id (0). */
locus_status locus_sp_tok_encode_padded(const locus_sp_tok *t, const char *text, int len, int64_t *out, int *truncated);

#endif
