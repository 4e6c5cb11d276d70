/* tokenizer_bert.h — BERT WordPiece tokenizer (transformers' BertTokenizer) from a tokenizer folder with
 * vocab.txt (one token per line, id = line number) and tokenizer_config.json (do_lower_case, default true).
 * The LDM text-to-image pipeline (CompVis ldm-text2im-large-256) pairs it with LDMBert.
 *
 * As BertTokenizer: the special tokens [UNK] [SEP] [PAD] [CLS] [MASK] found in the text are kept whole;
 * BasicTokenizer — NUL, U+FFFD and control characters (category C*) dropped, whitespace (incl. Zs) to
 * spaces, spaces around CJK ideographs, NFC, split on whitespace, lower case + accents stripped (NFD, Mn
 * removed) when do_lower_case, each punctuation character (ASCII symbols or category P*) its own token;
 * then WordPiece: greedy longest-match-first with '##' continuations, [UNK] for a word that cannot be
 * covered or is longer than 100 characters.
 */
#ifndef LOCUS_TOKENIZER_BERT_H
#define LOCUS_TOKENIZER_BERT_H

#include <stdint.h>

#include "../core/error.h"

typedef struct locus_bert_tok locus_bert_tok;

locus_status locus_bert_tok_load(locus_bert_tok **t, const char *dir);
void locus_bert_tok_free(locus_bert_tok *t);

/* [CLS] + ids(text) + [SEP], untruncated; *n = count (out holds max entries, else LOCUS_E_ARG). */
locus_status locus_bert_tok_encode(const locus_bert_tok *t, const char *text, int64_t *out, int max, int *n);

/* Pipeline form (padding="max_length", truncation=True): exactly len ids, [CLS] + the first len-2 tokens +
 * [SEP] when longer (*truncated set), padded with [PAD]. */
locus_status locus_bert_tok_encode_padded(const locus_bert_tok *t, const char *text, int len, int64_t *out, int *truncated);

#endif
