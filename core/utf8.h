/* utf8.h — the one UTF-8 validator of locus (tokenizers, Unicode decoding, localize's input files).
 *
 * Well-formed means RFC 3629 / Unicode 3.9 (what SentencePiece's IsValidDecodeUTF8 and Python's strict
 * decoder accept): the shortest encoding only (no overlong forms), no surrogates U+D800..U+DFFF, nothing
 * above U+10FFFF, no lone continuation bytes, no sequence cut short.
 */
#ifndef LOCUS_UTF8_H
#define LOCUS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length in bytes (1..4) of the well-formed character at the start of s[0..n), n >= 1, storing its code
 * point in *cp (when cp is non-NULL); 0 when the bytes there are not a well-formed character (then *cp is
 * left alone).  Never reads past s[n-1]. */
size_t locus_utf8_next(const char *s, size_t n, uint32_t *cp);

/* 1 when all n bytes of s are well-formed UTF-8 (n = 0 is valid), else 0. */
int locus_utf8_valid(const char *s, size_t n);

#endif
