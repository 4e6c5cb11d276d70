/* jsonw.h — a JSON writer into a locus_strbuf, for result files that are compared byte for byte.
 *
 * The output is fully determined by the calls (no locale, no hash order), so the same values always give
 * the same bytes.  Each object or array is laid out inline or as a block:
 *   inline   {"a": 1, "b": [1, 2]}        members separated by ", "
 *   block    {\n  "a": 1,\n  "b": 2\n}     one member per line, indented two spaces per nesting level
 * (an empty container is "{}" / "[]" either way).  Keys are followed by ": ".  Strings: '"' and '\' are
 * backslash-escaped, newline is \n, every other control character (< 0x20) and DEL (0x7f) is \u00XX in
 * lower-case hex, and all other bytes — UTF-8 included — are copied as they are (the writer does not
 * validate UTF-8: check input text with locus_utf8_valid where it enters).  Numbers: integers as %lld,
 * doubles as %.9g (enough to tell float results apart; identical text for identical values), non-finite
 * doubles as null.  No trailing newline is written: the caller adds one after a top-level value.
 *
 * Misuse (a value in an object without a key, a key outside an object, unbalanced ends, nesting deeper than
 * LOCUS_JW_MAX_DEPTH) is a programming error and asserts.  Allocation failure is the builder's (strbuf.h):
 * check locus_sb_status at the end.
 */
#ifndef LOCUS_JSONW_H
#define LOCUS_JSONW_H

#include "strbuf.h"

#define LOCUS_JW_MAX_DEPTH 32

typedef enum { LOCUS_JW_INLINE, LOCUS_JW_BLOCK } locus_jw_layout;

typedef struct {
    locus_strbuf *b;
    int depth;                             /* open containers */
    int after_key;                         /* a key was written, its value comes next */
    unsigned char block[LOCUS_JW_MAX_DEPTH];  /* layout of each open container */
    unsigned char object[LOCUS_JW_MAX_DEPTH]; /* 1 object, 0 array */
    int count[LOCUS_JW_MAX_DEPTH];         /* members written so far */
} locus_jsonw;

/* Start writing JSON at the end of b (which keeps what it holds).  Several top-level values may follow each
 * other (the caller separates them, e.g. by "\n" for JSON Lines). */
void locus_jw_init(locus_jsonw *w, locus_strbuf *b);

/* Open an object or array (as a value: after a key in an object, or as an array element / top level). */
void locus_jw_object(locus_jsonw *w, locus_jw_layout layout);
void locus_jw_array(locus_jsonw *w, locus_jw_layout layout);
/* Close the innermost open object or array. */
void locus_jw_end(locus_jsonw *w);

/* The key of the next object member (escaped like a string). */
void locus_jw_key(locus_jsonw *w, const char *key);

/* Values. */
void locus_jw_str(locus_jsonw *w, const char *s);
void locus_jw_strn(locus_jsonw *w, const char *s, size_t n);
void locus_jw_int(locus_jsonw *w, long long v);
void locus_jw_num(locus_jsonw *w, double v);
void locus_jw_bool(locus_jsonw *w, int v);
void locus_jw_null(locus_jsonw *w);

/* The formatting of one string or number alone, without structure (for text formats that share it). */
void locus_json_put_strn(locus_strbuf *b, const char *s, size_t n);
void locus_json_put_num(locus_strbuf *b, double v);

#endif
