/* unicode.h — the Unicode properties prompt tokenizers need, from generated tables (models/unicode_tables.h,
 * made from the Unicode Character Database by models/gen_unicode_tables.py).
 *
 * Text is handled as arrays of code points (uint32_t); UTF-8 decoding replaces malformed bytes by U+FFFD.
 * Normalization forms NFC and NFD follow UAX #15 (canonical decomposition, canonical ordering, canonical
 * composition with Hangul done algorithmically).  Lower case is Python's str.lower (full mappings, final
 * sigma).  All functions are pure and thread-safe.
 */
#ifndef LOCUS_UNICODE_H
#define LOCUS_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    UC_Cn, UC_Lu, UC_Ll, UC_Lt, UC_Lm, UC_Lo, UC_Mn, UC_Mc, UC_Me, UC_Nd, UC_Nl, UC_No, UC_Pc, UC_Pd, UC_Ps, UC_Pe,
    UC_Pi, UC_Pf, UC_Po, UC_Sm, UC_Sc, UC_Sk, UC_So, UC_Zs, UC_Zl, UC_Zp, UC_Cc, UC_Cf, UC_Cs, UC_Co
} locus_uc_cat;

typedef struct {
    uint32_t *cp;
    size_t n, cap;
} locus_ustr;

locus_uc_cat locus_uc_category(uint32_t cp);
int locus_uc_is_letter(uint32_t cp);  /* L*  (regex \p{L}) */
int locus_uc_is_number(uint32_t cp);  /* N*  (regex \p{N}) */
int locus_uc_is_punct(uint32_t cp);   /* P* */
int locus_uc_is_space(uint32_t cp);   /* Python str.isspace / re \s */
int locus_uc_ccc(uint32_t cp);        /* canonical combining class */

/* string building */
void locus_ustr_push(locus_ustr *s, uint32_t cp);
void locus_ustr_free(locus_ustr *s);
/* UTF-8 -> code points (malformed bytes -> U+FFFD, one per byte) */
void locus_ustr_from_utf8(locus_ustr *s, const char *text, size_t len);
/* code points -> malloc'd UTF-8 (NUL-terminated); *len gets the byte count when non-NULL */
char *locus_ustr_to_utf8(const locus_ustr *s, size_t *len);

/* In-place transforms (the string may grow) */
void locus_uc_nfd(locus_ustr *s);
void locus_uc_nfc(locus_ustr *s);
void locus_uc_lower(locus_ustr *s);
/* ftfy's fix_character_width (fullwidth/halfwidth forms, U+3000) and fix_latin_ligatures; returns the
 * replacement of cp (up to 3 code points, count returned) or 0 when cp maps to itself. */
int locus_uc_ftfy_map(uint32_t cp, uint32_t out[3]);

#endif
