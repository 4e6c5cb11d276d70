/* strbuf.c — the growable string builder (see strbuf.h): geometric growth, sticky allocation failure. */
#include "strbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Make room for `more` bytes plus the NUL; 0 on success. */
static int reserve(locus_strbuf *b, size_t more) {
    if (b->failed) return -1;
    if (more > SIZE_MAX / 2 - b->n - 1) {
        b->failed = 1;
        locus_fail(LOCUS_E_NOMEM, "string builder: cannot grow %zu bytes by %zu", b->n, more);
        return -1;
    }
    size_t need = b->n + more + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        locus_fail(LOCUS_E_NOMEM, "string builder: out of memory growing to %zu bytes", cap);
        return -1;
    }
    b->s = s;
    b->cap = cap;
    return 0;
}

locus_status locus_sb_putn(locus_strbuf *b, const char *s, size_t n) {
    if (reserve(b, n)) return LOCUS_E_NOMEM;
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return LOCUS_OK;
}

locus_status locus_sb_puts(locus_strbuf *b, const char *s) { return locus_sb_putn(b, s, strlen(s)); }

locus_status locus_sb_vprintf(locus_strbuf *b, const char *fmt, va_list ap) {
    if (b->failed) return LOCUS_E_NOMEM;
    va_list ap2;
    va_copy(ap2, ap);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->failed = 1;
        return locus_fail(LOCUS_E_NOMEM, "string builder: cannot format '%s'", fmt);
    }
    if ((size_t)n < sizeof tmp) return locus_sb_putn(b, tmp, (size_t)n);
    if (reserve(b, (size_t)n)) return LOCUS_E_NOMEM;
    vsnprintf(b->s + b->n, (size_t)n + 1, fmt, ap);
    b->n += (size_t)n;
    return LOCUS_OK;
}

locus_status locus_sb_printf(locus_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    locus_status st = locus_sb_vprintf(b, fmt, ap);
    va_end(ap);
    return st;
}

const char *locus_sb_str(const locus_strbuf *b) { return b->s ? b->s : ""; }

locus_status locus_sb_status(const locus_strbuf *b) { return b->failed ? LOCUS_E_NOMEM : LOCUS_OK; }

char *locus_sb_take(locus_strbuf *b) {
    if (!b->failed && !b->s) reserve(b, 0); /* an empty text is still a string */
    if (b->failed) {
        locus_sb_free(b);
        return NULL;
    }
    b->s[b->n] = 0;
    char *s = b->s;
    memset(b, 0, sizeof *b);
    return s;
}

void locus_sb_free(locus_strbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}
