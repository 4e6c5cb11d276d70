/* unicode.c — Unicode properties and normalization over generated tables (see unicode.h). */
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

#include "unicode_tables.h"
#include "../core/utf8.h"

#define N_OF(a) (sizeof(a) / sizeof(*(a)))

locus_uc_cat locus_uc_category(uint32_t cp) {
    size_t lo = 0, hi = N_OF(uc_cat_ranges);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < uc_cat_ranges[mid].lo) hi = mid;
        else if (cp > uc_cat_ranges[mid].hi) lo = mid + 1;
        else return (locus_uc_cat)uc_cat_ranges[mid].cat;
    }
    return UC_Cn;
}

int locus_uc_is_letter(uint32_t cp) { locus_uc_cat c = locus_uc_category(cp); return c >= UC_Lu && c <= UC_Lo; }
int locus_uc_is_number(uint32_t cp) { locus_uc_cat c = locus_uc_category(cp); return c >= UC_Nd && c <= UC_No; }
int locus_uc_is_punct(uint32_t cp) { locus_uc_cat c = locus_uc_category(cp); return c >= UC_Pc && c <= UC_Po; }

int locus_uc_is_space(uint32_t cp) {
    for (size_t i = 0; i < N_OF(uc_space); i++)
        if (uc_space[i] == cp) return 1;
    return 0;
}

int locus_uc_ccc(uint32_t cp) {
    size_t lo = 0, hi = N_OF(uc_ccc);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < uc_ccc[mid].lo) hi = mid;
        else if (cp > uc_ccc[mid].hi) lo = mid + 1;
        else return uc_ccc[mid].ccc;
    }
    return 0;
}

void locus_ustr_push(locus_ustr *s, uint32_t cp) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->cp = realloc(s->cp, s->cap * sizeof *s->cp);
    }
    s->cp[s->n++] = cp;
}

void locus_ustr_free(locus_ustr *s) {
    free(s->cp);
    memset(s, 0, sizeof *s);
}

void locus_ustr_from_utf8(locus_ustr *s, const char *text, size_t len) {
    const unsigned char *p = (const unsigned char *)text, *e = p + len;
    s->n = 0;
    while (p < e) {
        uint32_t c;
        size_t l = locus_utf8_next((const char *)p, (size_t)(e - p), &c);
        if (!l) { locus_ustr_push(s, 0xFFFD); p++; continue; }
        locus_ustr_push(s, c);
        p += l;
    }
}

char *locus_ustr_to_utf8(const locus_ustr *s, size_t *len) {
    char *o = malloc(4 * s->n + 1);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->cp[i];
        if (c < 0x80) o[k++] = (char)c;
        else if (c < 0x800) { o[k++] = (char)(0xC0 | c >> 6); o[k++] = (char)(0x80 | (c & 0x3F)); }
        else if (c < 0x10000) { o[k++] = (char)(0xE0 | c >> 12); o[k++] = (char)(0x80 | (c >> 6 & 0x3F)); o[k++] = (char)(0x80 | (c & 0x3F)); }
        else { o[k++] = (char)(0xF0 | c >> 18); o[k++] = (char)(0x80 | (c >> 12 & 0x3F)); o[k++] = (char)(0x80 | (c >> 6 & 0x3F)); o[k++] = (char)(0x80 | (c & 0x3F)); }
    }
    o[k] = 0;
    if (len) *len = k;
    return o;
}

/* Hangul syllables (UAX #15, 3.12) */
enum { SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount };

static int decomp_of(uint32_t cp, const uint32_t **d) {
    size_t lo = 0, hi = N_OF(uc_decomp);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < uc_decomp[mid].cp) hi = mid;
        else if (cp > uc_decomp[mid].cp) lo = mid + 1;
        else { *d = uc_decomp_pool + uc_decomp[mid].off; return uc_decomp[mid].len; }
    }
    return 0;
}

void locus_uc_nfd(locus_ustr *s) {
    locus_ustr o = {0};
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->cp[i];
        const uint32_t *d;
        int n;
        if (c >= SBase && c < SBase + SCount) {
            uint32_t si = c - SBase;
            locus_ustr_push(&o, LBase + si / NCount);
            locus_ustr_push(&o, VBase + si % NCount / TCount);
            if (si % TCount) locus_ustr_push(&o, TBase + si % TCount);
        } else if ((n = decomp_of(c, &d)) > 0) {
            for (int k = 0; k < n; k++) locus_ustr_push(&o, d[k]);
        } else {
            locus_ustr_push(&o, c);
        }
    }
    /* canonical ordering: stable insertion sort of each run of non-starters by combining class */
    for (size_t i = 1; i < o.n; i++) {
        int ci = locus_uc_ccc(o.cp[i]);
        if (!ci) continue;
        size_t j = i;
        uint32_t c = o.cp[i];
        while (j > 0) {
            int cj = locus_uc_ccc(o.cp[j - 1]);
            if (cj <= ci) break; /* a starter (0) stops the run */
            o.cp[j] = o.cp[j - 1];
            j--;
        }
        o.cp[j] = c;
    }
    free(s->cp);
    *s = o;
}

static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
        return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
    if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount) return a + (b - TBase);
    size_t lo = 0, hi = N_OF(uc_comp);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a < uc_comp[mid].a || (a == uc_comp[mid].a && b < uc_comp[mid].b)) hi = mid;
        else if (a > uc_comp[mid].a || b > uc_comp[mid].b) lo = mid + 1;
        else return uc_comp[mid].c;
    }
    return 0;
}

void locus_uc_nfc(locus_ustr *s) {
    locus_uc_nfd(s);
    if (!s->n) return;
    /* canonical composition: each character combines with the last starter unless blocked */
    size_t w = 0, starter = (size_t)-1;
    int last_ccc = -1;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->cp[i];
        int cc = locus_uc_ccc(c);
        if (starter != (size_t)-1 && (last_ccc < cc || (last_ccc == 0 && w == starter + 1) || (last_ccc == -1))) {
            uint32_t comp = (last_ccc < cc || w == starter + 1) ? compose_pair(s->cp[starter], c) : 0;
            if (comp) {
                s->cp[starter] = comp;
                continue;
            }
        }
        if (cc == 0) starter = w;
        last_ccc = cc;
        s->cp[w++] = c;
    }
    s->n = w;
}

/* {cp, r[3]} tables (uc_lower, uc_ftfy_map): the 0-padded replacement of cp; returns its length, 0 if absent */
static int map3_find(const uint32_t (*tab)[4], size_t n, uint32_t cp, uint32_t out[3]) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < tab[mid][0]) hi = mid;
        else if (cp > tab[mid][0]) lo = mid + 1;
        else {
            int k = 0;
            while (k < 3 && tab[mid][1 + k]) { out[k] = tab[mid][1 + k]; k++; }
            return k;
        }
    }
    return 0;
}

static int lower_of(uint32_t cp, uint32_t out[3]) {
    _Static_assert(sizeof uc_lower[0] == 4 * sizeof(uint32_t), "uc_lower rows are 4 code points");
    int n = map3_find((const uint32_t(*)[4])uc_lower, N_OF(uc_lower), cp, out);
    if (!n) { out[0] = cp; n = 1; }
    return n;
}

/* cased / case-ignorable approximations for the Final_Sigma condition (Unicode 3.13) */
static int is_cased(uint32_t c) { locus_uc_cat k = locus_uc_category(c); return k == UC_Lu || k == UC_Ll || k == UC_Lt; }
static int is_case_ignorable(uint32_t c) {
    locus_uc_cat k = locus_uc_category(c);
    return k == UC_Mn || k == UC_Me || k == UC_Cf || k == UC_Lm || k == UC_Sk || c == '\'' || c == '.' || c == ':' || c == 0xB7 || c == 0x2019;
}

void locus_uc_lower(locus_ustr *s) {
    locus_ustr o = {0};
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->cp[i], l[3];
        if (c == 0x3A3) { /* GREEK CAPITAL SIGMA: final form after a cased letter and not before one */
            size_t j = i;
            int before = 0, after = 0;
            while (j > 0 && is_case_ignorable(s->cp[j - 1])) j--;
            before = j > 0 && is_cased(s->cp[j - 1]);
            j = i + 1;
            while (j < s->n && is_case_ignorable(s->cp[j])) j++;
            after = j < s->n && is_cased(s->cp[j]);
            locus_ustr_push(&o, before && !after ? 0x3C2 : 0x3C3);
            continue;
        }
        int n = lower_of(c, l);
        for (int k = 0; k < n; k++) locus_ustr_push(&o, l[k]);
    }
    free(s->cp);
    *s = o;
}

int locus_uc_ftfy_map(uint32_t cp, uint32_t out[3]) {
    _Static_assert(sizeof uc_ftfy_map[0] == 4 * sizeof(uint32_t), "uc_ftfy_map rows are 4 code points");
    return map3_find((const uint32_t(*)[4])uc_ftfy_map, N_OF(uc_ftfy_map), cp, out);
}
