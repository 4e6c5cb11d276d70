/* arena.h — 64-byte aligned heap allocation with live/peak byte accounting.
 *
 * Every model buffer (weights, packed weights, activations, scratch of the threaded kernels) comes from
 * locus_alloc and goes back with locus_free; a 64-byte header before each block records its size, so the
 * bytes held at any moment (locus_mem_live) and the most held at once (locus_mem_peak) are exact.  The
 * forwards allocate their activations as they go and free them as soon as they are dead; there is no
 * planned arena (an earlier bump arena was used only by its own test and is gone).  How much a run will need
 * is estimated up front by locus_pipeline_peak_estimate (models/pipeline.c), which tests check against
 * locus_mem_peak on real runs.
 */
#ifndef LOCUS_ARENA_H
#define LOCUS_ARENA_H

#include <stddef.h>

#define LOCUS_ALIGN 64

/* 1: blocks of 4 MiB and more are mapped on huge pages and kept for reuse (arena.c); 0 under AddressSanitizer,
 * which must see every block through malloc. */
#if defined(__SANITIZE_ADDRESS__)
#define LOCUS_ARENA_MMAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOCUS_ARENA_MMAP 0
#endif
#endif
#ifndef LOCUS_ARENA_MMAP
#define LOCUS_ARENA_MMAP 1
#endif

/* Aligned heap allocation (64 bytes); n == 0 gives a valid minimal block.  Returns NULL when out of memory.
 * Free with locus_free (NULL is a no-op). */
void *locus_alloc(size_t n);
/* Activation memory inside a forward pass, which has no error path: on failure prints one line
 * "locus: out of memory: N MiB for <what>" and exits with status 2 (no output file is written: outputs are
 * renamed into place only at the end).  locus_run_prepare's preflight makes this the rare case. */
void *locus_alloc_act(size_t n, const char *what);
void locus_free(void *p);

/* n floats from locus_alloc: the activation buffers of the model forwards (which call it as `talloc`). */
static inline float *locus_alloc_floats(size_t n) { return (float *)locus_alloc(n * sizeof(float)); }

/* Bytes accounted for the block p (its size rounded up to 64; 0 for NULL). */
size_t locus_alloc_size(const void *p);

/* Bytes currently held in locus_alloc blocks, and the most held at once since start or since the last
 * locus_mem_peak_reset (weights + activations + kernel scratch). */
size_t locus_mem_live(void);
size_t locus_mem_peak(void);

/* Give the freed big blocks that locus_alloc keeps for reuse back to the system (arena.c). */
void locus_mem_trim(void);

/* Restart peak tracking from the bytes held now (measurements of one phase; not thread-safe against
 * concurrent allocation). */
void locus_mem_peak_reset(void);

#endif
