/* tokenizer_clip.h — CLIP byte-level BPE tokenizer (openai SimpleTokenizer / HF CLIPTokenizer) from a
 * tokenizer folder (vocab.json, merges.txt, special_tokens_map.json).
 *
 * Text cleaning as the reference (openai SimpleTokenizer): ftfy.fix_text — HTML entities, mojibake of UTF-8
 * read as Latin-1/windows-1252, C1 controls, Latin ligatures, full/half-width forms, curly quotes, line
 * breaks, terminal escapes, control characters, NFC — then html.unescape twice, whitespace collapsed,
 * Python's lower(), the CLIP split pattern (\p{L}+ | \p{N} | other runs, contractions) over Unicode general
 * categories, and byte-level BPE with '</w>' word ends.  Unicode data: models/unicode.h.
 */
#ifndef LOCUS_TOKENIZER_CLIP_H
#define LOCUS_TOKENIZER_CLIP_H

#include <stdint.h>

#include "../core/error.h"

typedef struct locus_clip_tok locus_clip_tok;

locus_status locus_clip_tok_load(locus_clip_tok **t, const char *dir);
void locus_clip_tok_free(locus_clip_tok *t);

/* [BOS] + ids(text) + [EOS], untruncated.  *n receives the count; out must hold max entries (else
 * LOCUS_E_ARG). */
locus_status locus_clip_tok_encode(const locus_clip_tok *t, const char *text, int64_t *out, int max, int *n);

/* Pipeline form: exactly `len` ids (77): ids[:len-1] + [EOS] when longer (*truncated set), else padded with
 * the folder's pad token. */
locus_status locus_clip_tok_encode_padded(const locus_clip_tok *t, const char *text, int len, int64_t *out, int *truncated);

int64_t locus_clip_tok_pad_id(const locus_clip_tok *t);

#endif
