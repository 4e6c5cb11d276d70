/* grads.c — the gradient table (see grads.h): one zero-initialised fp32 buffer per tracked parameter, found
 * by the parameter's pointer through an open-addressing hash, and by name through a linear scan (names are
 * looked up rarely: when dumping or applying an optimizer).  Backward code calls locus_grads_of() for every
 * parameter it touches, so that lookup is O(1) and allocation-free. */
#include "grads.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"

void locus_grads_init(locus_grads *g) { memset(g, 0, sizeof *g); }

void locus_grads_free(locus_grads *g) {
    for (size_t i = 0; i < g->n; i++) {
        free(g->e[i].name);
        locus_free(g->e[i].grad);
    }
    free(g->e);
    free(g->hash);
    memset(g, 0, sizeof *g);
}

static size_t ptr_hash(const void *p, size_t mask) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; /* murmur3 finaliser */
    return (size_t)x & mask;
}

/* (re)build the pointer hash with capacity >= 2 * n (power of two) */
static int rehash(locus_grads *g, size_t want) {
    size_t cap = 64;
    while (cap < 2 * want) cap *= 2;
    size_t *h = calloc(cap, sizeof *h);
    if (!h) return -1;
    for (size_t i = 0; i < g->n; i++) {
        size_t s = ptr_hash(g->e[i].param, cap - 1);
        while (h[s]) s = (s + 1) & (cap - 1);
        h[s] = i + 1;
    }
    free(g->hash);
    g->hash = h;
    g->hcap = cap;
    return 0;
}

float *locus_grads_of(const locus_grads *g, const float *param) {
    if (!g || !param || !g->hcap) return NULL;
    size_t s = ptr_hash(param, g->hcap - 1);
    while (g->hash[s]) {
        const locus_grad_entry *e = &g->e[g->hash[s] - 1];
        if (e->param == param) return e->grad;
        s = (s + 1) & (g->hcap - 1);
    }
    return NULL;
}

locus_status locus_grads_track(locus_grads *g, const char *name, const float *param, int ndim, const int64_t *shape) {
    if (!param || ndim < 1 || ndim > 4) return locus_fail(LOCUS_E_ARG, "grads: bad tensor '%s' (ndim %d)", name ? name : "?", ndim);
    if (locus_grads_of(g, param)) return LOCUS_OK; /* already tracked */
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        locus_grad_entry *e = realloc(g->e, cap * sizeof *e);
        if (!e) return locus_fail(LOCUS_E_NOMEM, "grads: out of memory");
        g->e = e;
        g->cap = cap;
    }
    locus_grad_entry *e = &g->e[g->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name ? name : "");
    e->grad = locus_alloc((numel ? numel : 1) * sizeof(float));
    if (!e->name || !e->grad) {
        free(e->name);
        locus_free(e->grad);
        return locus_fail(LOCUS_E_NOMEM, "grads: out of memory for '%s' (%zu floats)", name, numel);
    }
    memset(e->grad, 0, numel * sizeof(float));
    e->param = param;
    e->numel = numel;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    g->n++;
    if (2 * g->n > g->hcap && rehash(g, g->n)) {
        g->n--;
        free(e->name);
        locus_free(e->grad);
        return locus_fail(LOCUS_E_NOMEM, "grads: out of memory");
    }
    if (g->hcap && g->hash) { /* insert (rehash may already have placed it; inserting twice is harmless but avoid) */
        size_t s = ptr_hash(param, g->hcap - 1);
        while (g->hash[s] && g->hash[s] != g->n) s = (s + 1) & (g->hcap - 1);
        g->hash[s] = g->n;
    }
    return LOCUS_OK;
}

/* glob match of the whole string: '*' any run, '?' one character, '{a,b}' alternatives (nesting allowed) */
static int glob(const char *p, const char *pe, const char *s) {
    while (p < pe) {
        if (*p == '*') {
            for (const char *t = s;; t++) {
                if (glob(p + 1, pe, t)) return 1;
                if (!*t) return 0;
            }
        } else if (*p == '{') {
            /* find the matching '}' and the top-level ',' separators */
            const char *q = p + 1, *alt = p + 1;
            int depth = 0;
            const char *close = NULL;
            for (const char *r = q; r < pe; r++) {
                if (*r == '{') depth++;
                else if (*r == '}') { if (!depth) { close = r; break; } depth--; }
            }
            if (!close) { /* unbalanced: literal '{' */
                if (*s != '{') return 0;
                p++; s++;
                continue;
            }
            depth = 0;
            for (const char *r = q; r <= close; r++) {
                if (r < close && *r == '{') depth++;
                else if (r < close && *r == '}') depth--;
                else if (r == close || (*r == ',' && !depth)) {
                    /* try alternative [alt, r) followed by the rest of the pattern */
                    size_t la = (size_t)(r - alt), lr = (size_t)(pe - (close + 1));
                    char *buf = malloc(la + lr + 1);
                    if (!buf) return 0;
                    memcpy(buf, alt, la);
                    memcpy(buf + la, close + 1, lr);
                    buf[la + lr] = 0;
                    int ok = glob(buf, buf + la + lr, s);
                    free(buf);
                    if (ok) return 1;
                    alt = r + 1;
                }
            }
            return 0;
        } else if (*p == '?') {
            if (!*s) return 0;
            p++; s++;
        } else {
            if (*p != *s) return 0;
            p++; s++;
        }
    }
    return *s == 0;
}

/* comma-separated list at top level (commas inside {} belong to the alternatives) */
static int match_list(const char *pattern, const char *name) {
    const char *p = pattern;
    while (*p) {
        const char *e = p;
        int depth = 0;
        while (*e && !(*e == ',' && !depth)) {
            if (*e == '{') depth++;
            else if (*e == '}' && depth) depth--;
            e++;
        }
        if (e > p && glob(p, e, name)) return 1;
        p = *e ? e + 1 : e;
    }
    return 0;
}

int locus_grads_name_matches(const char *pattern, const char *name) { return match_list(pattern, name); }

int locus_grads_track_loader(locus_grads *g, const locus_loader *L, const char *pattern) {
    int added = 0;
    for (size_t i = 0; i < L->nrec; i++) {
        const locus_param_rec *r = &L->params[i];
        if (pattern && !match_list(pattern, r->name)) continue;
        if (locus_grads_of(g, r->data)) continue;
        if (locus_grads_track(g, r->name, r->data, r->ndim, r->shape)) return -1;
        added++;
    }
    return added;
}

const locus_grad_entry *locus_grads_find(const locus_grads *g, const char *name) {
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->e[i].name, name)) return &g->e[i];
    return NULL;
}

void locus_grads_zero(locus_grads *g) {
    for (size_t i = 0; i < g->n; i++) memset(g->e[i].grad, 0, g->e[i].numel * sizeof(float));
}
