/* pairing.c — numpy-exact bounded draws, the paper's word pairing, and the CSV pairs reader (see pairing.h). */
#include "pairing.h"

#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/utf8.h"

/* the smallest 2^k - 1 >= v */
static uint64_t mask_of(uint64_t v) {
    uint64_t m = v;
    m |= m >> 1; m |= m >> 2; m |= m >> 4; m |= m >> 8; m |= m >> 16; m |= m >> 32;
    return m;
}

uint64_t locus_np_randint(locus_mt19937 *g, uint64_t high) {
    uint64_t rng = high - 1, m = mask_of(rng), v;
    if (rng == 0) return 0;
    if (rng <= 0xFFFFFFFFull) {
        if (rng == 0xFFFFFFFFull) return locus_mt19937_next(g);
        do v = locus_mt19937_next(g) & m; while (v > rng);
        return v;
    }
    do {
        uint64_t hi = locus_mt19937_next(g);
        v = (hi << 32 | locus_mt19937_next(g)) & m;
    } while (v > rng);
    return v;
}

int locus_pairing_paper(locus_mt19937 *g, int n, int *target) {
    /* pool: sorted indices still free (list(set) of small ints is sorted) */
    int *pool = malloc((size_t)(n > 0 ? n : 1) * sizeof(int)), np = n;
    for (int i = 0; i < n; i++) pool[i] = i;
    for (int i = 0; i < n; i++) {
        if (np == 1 && pool[0] == i) { free(pool); return -1; }
        int k;
        do k = (int)locus_np_randint(g, (uint64_t)np); while (pool[k] == i);
        target[i] = pool[k];
        memmove(pool + k, pool + k + 1, (size_t)(np - k - 1) * sizeof(int));
        np--;
    }
    free(pool);
    return 0;
}

void locus_pairs_free(char **a, char **b, int n) {
    for (int i = 0; i < n; i++) { free(a ? a[i] : NULL); free(b ? b[i] : NULL); }
    free(a);
    free(b);
}

/* one CSV field starting at *p (within a line ending at e); malloc'd, or NULL for a malformed quote */
static char *csv_field(const char **p, const char *e) {
    const char *s = *p;
    char *out = malloc((size_t)(e - s) + 1);
    size_t k = 0;
    if (s < e && *s == '"') {
        s++;
        for (;;) {
            if (s >= e) { free(out); return NULL; } /* unterminated */
            if (*s == '"') {
                if (s + 1 < e && s[1] == '"') { out[k++] = '"'; s += 2; continue; }
                s++;
                break;
            }
            out[k++] = *s++;
        }
        if (s < e && *s != ',') { free(out); return NULL; } /* text after the closing quote */
    } else {
        while (s < e && *s != ',') {
            if (*s == '"') { free(out); return NULL; } /* a quote inside an unquoted field */
            out[k++] = *s++;
        }
    }
    out[k] = 0;
    *p = s;
    return out;
}

locus_status locus_pairs_read(const char *path, char ***pa, char ***pb, int *pn) {
    *pa = *pb = NULL;
    *pn = 0;
    char *data;
    size_t len;
    locus_status st = locus_read_file(path, &data, &len);
    if (st) return st;
    int cap = 16, n = 0, line = 0;
    char **a = malloc((size_t)cap * sizeof(char *)), **b = malloc((size_t)cap * sizeof(char *));
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        const char *next = e ? e + 1 : end;
        if (!e) e = end;
        if (e > p && e[-1] == '\r') e--;
        line++;
        const char *q = p;
        p = next;
        if (q == e || *q == '#') continue;
        if (line == 1 && e - q == 3 && !memcmp(q, "a,b", 3)) continue;
        if (!locus_utf8_valid(q, (size_t)(e - q))) { st = locus_fail(LOCUS_E_FORMAT, "%s:%d: not valid UTF-8 text", path, line); break; }
        char *fa = csv_field(&q, e), *fb = NULL;
        if (fa && q < e && *q == ',') { q++; fb = csv_field(&q, e); }
        if (!fa || !fb || q != e || !*fa || !*fb) {
            free(fa);
            free(fb);
            st = locus_fail(LOCUS_E_FORMAT, "%s:%d: expected one pair A,B (two non-empty CSV fields; quote a field holding a comma as \"...\")", path, line);
            break;
        }
        if (n == cap) {
            cap *= 2;
            a = realloc(a, (size_t)cap * sizeof(char *));
            b = realloc(b, (size_t)cap * sizeof(char *));
        }
        a[n] = fa;
        b[n] = fb;
        n++;
    }
    free(data);
    if (!st && !n) st = locus_fail(LOCUS_E_FORMAT, "%s: no pairs", path);
    if (st) { locus_pairs_free(a, b, n); return st; }
    *pa = a;
    *pb = b;
    *pn = n;
    return LOCUS_OK;
}
