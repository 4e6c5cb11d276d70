/* utf8.c — the UTF-8 validator (see utf8.h). */
#include "utf8.h"

#include <assert.h>

size_t locus_utf8_next(const char *s, size_t n, uint32_t *cp) {
    assert(n >= 1);
    const unsigned char *p = (const unsigned char *)s;
    uint32_t c = p[0];
    if (c < 0x80) {
        if (cp) *cp = c;
        return 1;
    }
    /* lead byte: 110xxxxx, 1110xxxx, 11110xxx; anything else (10xxxxxx, 11111xxx) cannot start a character */
    size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || len > n) return 0;
    c &= 0x7Fu >> len;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (p[i] & 0x3F);
    }
    static const uint32_t shortest[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < shortest[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    if (cp) *cp = c;
    return len;
}

int locus_utf8_valid(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t l = locus_utf8_next(s + i, n - i, NULL);
        if (!l) return 0;
        i += l;
    }
    return 1;
}
