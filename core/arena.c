/* arena.c — bump allocator with a planning pass (see arena.h). */
#include "arena.h"

#include <stdio.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

static size_t round_up(size_t n) { return (n + LOCUS_ALIGN - 1) & ~(size_t)(LOCUS_ALIGN - 1); }

void locus_arena_plan(locus_arena *a) {
    a->base = NULL;
    a->cap = SIZE_MAX;
    a->used = a->peak = 0;
}

locus_status locus_arena_init(locus_arena *a, size_t cap) {
    a->cap = round_up(cap);
    a->used = a->peak = 0;
    a->base = a->cap ? locus_alloc(a->cap) : NULL;
    if (a->cap && !a->base)
        return locus_fail(LOCUS_E_NOMEM, "arena: cannot allocate %zu bytes", a->cap);
    return LOCUS_OK;
}

void locus_arena_free(locus_arena *a) {
    locus_free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

void *locus_arena_alloc(locus_arena *a, size_t n) {
    size_t sz = round_up(n ? n : 1);
    if (sz > a->cap - a->used) {
        locus_fail(LOCUS_E_NOMEM, "arena: %zu bytes requested, %zu of %zu free", sz, a->cap - a->used, a->cap);
        return NULL;
    }
    size_t off = a->used;
    a->used += sz;
    if (a->used > a->peak) a->peak = a->used;
    if (!a->base) return (void *)(uintptr_t)(LOCUS_ALIGN + off); /* planning token */
    return a->base + off;
}

/* live / peak bytes of all locus_alloc blocks (a 64-byte header before each block records its size) */
static _Atomic size_t g_live, g_peak;

void *locus_alloc(size_t n) {
    void *p = NULL;
    size_t sz = round_up(n ? n : 1);
    if (sz > SIZE_MAX - LOCUS_ALIGN || posix_memalign(&p, LOCUS_ALIGN, sz + LOCUS_ALIGN) != 0) return NULL;
    *(size_t *)p = sz;
    size_t live = atomic_fetch_add(&g_live, sz) + sz, peak = atomic_load(&g_peak);
    while (live > peak && !atomic_compare_exchange_weak(&g_peak, &peak, live)) {}
    return (unsigned char *)p + LOCUS_ALIGN;
}

void *locus_alloc_act(size_t n, const char *what) {
    void *p = locus_alloc(n);
    if (!p) {
        fprintf(stderr, "locus: out of memory: %.1f MiB for %s (live %.1f MiB)\n", (double)n / (1 << 20), what, (double)locus_mem_live() / (1 << 20));
        exit(2);
    }
    return p;
}

void locus_free(void *p) {
    if (!p) return;
    unsigned char *base = (unsigned char *)p - LOCUS_ALIGN;
    atomic_fetch_sub(&g_live, *(size_t *)base);
    free(base);
}

size_t locus_mem_live(void) { return atomic_load(&g_live); }
size_t locus_mem_peak(void) { return atomic_load(&g_peak); }
