/* arena.h — 64-byte aligned bump allocation with a planning pass.
 *
 * A model's forward pass allocates all activations from one arena.  Run the same allocation sequence once
 * with a planning arena (locus_arena_plan) to learn the exact byte count, then create the real arena with
 * that size: no allocation happens while the model runs, and peak memory is known before it starts.
 * Marks (locus_arena_mark / locus_arena_reset) free everything allocated after a mark.
 */
#ifndef LOCUS_ARENA_H
#define LOCUS_ARENA_H

#include <stddef.h>

#include "error.h"

#define LOCUS_ALIGN 64

typedef struct {
    unsigned char *base; /* NULL in a planning arena */
    size_t cap;          /* bytes available (SIZE_MAX when planning) */
    size_t used;         /* bytes handed out so far */
    size_t peak;         /* high-water mark of `used` */
} locus_arena;

/* A planning arena: allocations return NULL-based fake pointers' offsets are tracked but nothing is
 * allocated; read `peak` afterwards. */
void locus_arena_plan(locus_arena *a);

/* Allocate `cap` bytes (rounded up to 64) for real.  Returns LOCUS_E_NOMEM with a message on failure. */
locus_status locus_arena_init(locus_arena *a, size_t cap);

void locus_arena_free(locus_arena *a);

/* Allocate n bytes, 64-byte aligned.  Returns NULL (and records a message) if the arena is full; in a
 * planning arena returns a non-dereferenceable non-NULL token. */
void *locus_arena_alloc(locus_arena *a, size_t n);

/* Allocate n floats, 64-byte aligned. */
static inline float *locus_arena_floats(locus_arena *a, size_t n) { return (float *)locus_arena_alloc(a, n * sizeof(float)); }

static inline size_t locus_arena_mark(const locus_arena *a) { return a->used; }
static inline void locus_arena_reset(locus_arena *a, size_t mark) { a->used = mark; }

/* Aligned heap allocation (64 bytes) for buffers outside arenas; free with locus_free. */
void *locus_alloc(size_t n);
/* Activation memory inside a forward pass, which has no error path: on failure prints one line
 * "locus: out of memory: N MiB for <what>" and exits with status 2 (no output file is written: outputs are
 * renamed into place only at the end).  locus_run_prepare's preflight makes this the rare case. */
void *locus_alloc_act(size_t n, const char *what);
void locus_free(void *p);

/* Bytes currently held in locus_alloc blocks, and the most held at once since start (weights + activations). */
size_t locus_mem_live(void);
size_t locus_mem_peak(void);

#endif
