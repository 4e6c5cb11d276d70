/* strbuf.h — a growable, NUL-terminated string builder for text files (results, configs, summaries).
 *
 * Appends never crash on allocation failure: the first failure records a message (locus_fail,
 * LOCUS_E_NOMEM), marks the builder failed, and every later append does nothing, so a writer may append a
 * whole document and check once at the end with locus_sb_status (or locus_sb_take, which returns NULL).
 * A zero-initialized locus_strbuf is empty and ready: `locus_strbuf b = {0};`.
 */
#ifndef LOCUS_STRBUF_H
#define LOCUS_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

#include "error.h"

typedef struct {
    char *s;       /* the text, NUL-terminated; NULL until the first append (see locus_sb_str) */
    size_t n;      /* length in bytes, without the NUL */
    size_t cap;    /* bytes allocated at s */
    int failed;    /* an allocation failed: the text is incomplete, later appends are ignored */
} locus_strbuf;

/* Append n bytes of s (which may contain NULs).  LOCUS_OK, or LOCUS_E_NOMEM (now or earlier). */
locus_status locus_sb_putn(locus_strbuf *b, const char *s, size_t n);

/* Append a NUL-terminated string. */
locus_status locus_sb_puts(locus_strbuf *b, const char *s);

/* Append printf-formatted text (any length). */
locus_status locus_sb_printf(locus_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
locus_status locus_sb_vprintf(locus_strbuf *b, const char *fmt, va_list ap);

/* The text so far ("" when nothing was appended). */
const char *locus_sb_str(const locus_strbuf *b);

/* LOCUS_OK, or LOCUS_E_NOMEM when an append failed (the message was recorded when it did). */
locus_status locus_sb_status(const locus_strbuf *b);

/* Hand the text to the caller (free() it) and leave b empty; NULL after a failed append (b is freed). */
char *locus_sb_take(locus_strbuf *b);

/* Release the text; b is empty and reusable afterwards. */
void locus_sb_free(locus_strbuf *b);

#endif
