/* tokenizer_sp.h — SentencePiece unigram tokenizer (T5 / SD3 tokenizer_3) read from spiece.model.
 *
 * The model file (protobuf ModelProto) gives the pieces with their scores and types and the normalizer flags.
 * Encoding: normalise (collapse and strip whitespace, prepend U+2581, spaces to U+2581), then the Viterbi
 * segmentation that maximises the sum of piece scores; characters no piece covers become <unk> with the
 * unigram unknown penalty.  The normalizer's precompiled NFKC map is not applied, so this covers printable
 * ASCII text (where that map is the identity); other text is refused with LOCUS_E_UNSUPPORTED.
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
