/* arena.c — aligned allocation with live/peak byte accounting (see arena.h).
 *
 * Blocks of 4 MiB and more are mapped directly, 2 MiB aligned, with madvise(MADV_HUGEPAGE): the kernel then
 * backs them with transparent huge pages (this machine's THP mode is "madvise"), one page fault per 2 MiB
 * instead of per 4 KiB.  glibc would mmap such blocks anyway (and unmap them on free), so each big
 * activation of a forward or backward is faulted in afresh every time; on the virtual machines locus runs on
 * a fault costs ~15 us, and an SD1.5-size training step at 256 px took 2.1 million of them (a third of its
 * time).  The contents and the numbers are unchanged; only how the pages arrive.  Not under AddressSanitizer,
 * which must see every block through malloc.
 *
 * Freed mapped blocks are kept for reuse by a later allocation of the same mapped length (a sampling or
 * training loop allocates the same shapes every step), so their pages are not zeroed by the kernel again.  The
 * cache never lets the mapped memory exceed the most that was ever live: on a miss, the oldest kept blocks are
 * unmapped until live + kept + new <= that high-water mark.  locus_mem_trim() unmaps them all (the C API calls
 * it after each generate).
 *
 * The smaller blocks stay with glibc's malloc, told at the first allocation to serve everything below 4 MiB
 * from its heap (M_MMAP_THRESHOLD) and not to give freed heap back to the system between steps
 * (M_TRIM_THRESHOLD): by default it unmaps and trims, and an SD1.5-size training step at 256 px re-faulted
 * 60,000 pages of its small activations every step (its training forward took 1.4x the inference forward;
 * now 1.0x).  locus_mem_trim() also calls malloc_trim(0).
 */
#include "arena.h"

#include <stdio.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define HUGE_MIN ((size_t)4 << 20)   /* blocks from this size on are mapped */
#define HUGE_ALIGN ((size_t)2 << 20) /* x86-64 / aarch64 (4 KiB pages) transparent huge page */

static size_t round_up(size_t n) { return (n + LOCUS_ALIGN - 1) & ~(size_t)(LOCUS_ALIGN - 1); }

/* live / peak bytes of all locus_alloc blocks (a 64-byte header before each block records its size) */
static _Atomic size_t g_live, g_peak;

static _Atomic size_t g_high; /* the most ever live (never reset): the bound of live + kept blocks */

/* kept (freed) mapped blocks, oldest first, under a spin lock (big blocks come and go rarely) */
#define CACHE_MAX 1024
static struct { void *p; size_t len; } g_cache[CACHE_MAX];
static int g_ncache;
static size_t g_cached;
static atomic_flag g_lock = ATOMIC_FLAG_INIT;
static void lock(void) { while (atomic_flag_test_and_set_explicit(&g_lock, memory_order_acquire)) {} }
static void unlock(void) { atomic_flag_clear_explicit(&g_lock, memory_order_release); }

static void cache_drop_oldest(void) { /* under the lock */
    munmap(g_cache[0].p, g_cache[0].len);
    g_cached -= g_cache[0].len;
    memmove(g_cache, g_cache + 1, (size_t)(--g_ncache) * sizeof g_cache[0]);
}

/* A kept block of exactly len bytes, or NULL after making room for a new one. */
static void *cache_take(size_t len) {
    void *p = NULL;
    lock();
    for (int i = g_ncache - 1; i >= 0 && !p; i--)
        if (g_cache[i].len == len) {
            p = g_cache[i].p;
            g_cached -= len;
            memmove(g_cache + i, g_cache + i + 1, (size_t)(g_ncache - i - 1) * sizeof g_cache[0]);
            g_ncache--;
        }
    if (!p) {
        size_t live = atomic_load(&g_live), high = atomic_load(&g_high);
        while (g_ncache > 0 && live + g_cached + len > high) cache_drop_oldest();
    }
    unlock();
    return p;
}

static void cache_put(void *p, size_t len) {
    lock();
    if (g_ncache == CACHE_MAX) cache_drop_oldest();
    g_cache[g_ncache].p = p;
    g_cache[g_ncache].len = len;
    g_ncache++;
    g_cached += len;
    unlock();
}

void locus_mem_trim(void) {
    lock();
    while (g_ncache > 0) cache_drop_oldest();
    unlock();
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static atomic_int g_tuned;
static void tune_malloc(void) {
#ifdef __GLIBC__
    if (LOCUS_ARENA_MMAP && !atomic_exchange(&g_tuned, 1)) {
        mallopt(M_MMAP_THRESHOLD, (int)HUGE_MIN);
        mallopt(M_TRIM_THRESHOLD, INT32_MAX);
    }
#endif
}

/* The 64-byte header: [0] the accounted size, [1] the mapped length (0: from malloc). */
static void *map_huge(size_t len) {
    unsigned char *m = mmap(NULL, len + HUGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)m + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1);
    size_t head = a - (uintptr_t)m;
    if (head) munmap(m, head);
    if (HUGE_ALIGN - head) munmap((unsigned char *)a + len, HUGE_ALIGN - head);
    (void)madvise((void *)a, len, MADV_HUGEPAGE); /* advice only: without THP the block is still valid */
    return (void *)a;
}

void *locus_alloc(size_t n) {
    void *p = NULL;
    size_t sz = round_up(n ? n : 1), mapped = 0;
    if (sz > SIZE_MAX - 2 * HUGE_ALIGN) return NULL;
    if (!atomic_load_explicit(&g_tuned, memory_order_relaxed)) tune_malloc();
    if (LOCUS_ARENA_MMAP && sz + LOCUS_ALIGN >= HUGE_MIN) {
        mapped = (sz + LOCUS_ALIGN + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
        if (!(p = cache_take(mapped)) && !(p = map_huge(mapped))) return NULL;
    } else if (posix_memalign(&p, LOCUS_ALIGN, sz + LOCUS_ALIGN) != 0) return NULL;
    ((size_t *)p)[0] = sz;
    ((size_t *)p)[1] = mapped;
    size_t live = atomic_fetch_add(&g_live, sz) + sz, peak = atomic_load(&g_peak);
    while (live > peak && !atomic_compare_exchange_weak(&g_peak, &peak, live)) {}
    size_t high = atomic_load(&g_high);
    while (live > high && !atomic_compare_exchange_weak(&g_high, &high, live)) {}
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
    atomic_fetch_sub(&g_live, ((size_t *)base)[0]);
    if (((size_t *)base)[1]) cache_put(base, ((size_t *)base)[1]);
    else free(base);
}

size_t locus_alloc_size(const void *p) { return p ? *(const size_t *)((const unsigned char *)p - LOCUS_ALIGN) : 0; }

size_t locus_mem_live(void) { return atomic_load(&g_live); }
size_t locus_mem_peak(void) { return atomic_load(&g_peak); }
void locus_mem_peak_reset(void) { atomic_store(&g_peak, atomic_load(&g_live)); }
