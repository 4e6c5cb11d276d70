/* arena.c — aligned allocation with live/peak byte accounting (see arena.h). */
#include "arena.h"

#include <stdio.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

static size_t round_up(size_t n) { return (n + LOCUS_ALIGN - 1) & ~(size_t)(LOCUS_ALIGN - 1); }

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

size_t locus_alloc_size(const void *p) { return p ? *(const size_t *)((const unsigned char *)p - LOCUS_ALIGN) : 0; }

size_t locus_mem_live(void) { return atomic_load(&g_live); }
size_t locus_mem_peak(void) { return atomic_load(&g_peak); }
void locus_mem_peak_reset(void) { atomic_store(&g_peak, atomic_load(&g_live)); }
