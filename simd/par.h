/* par.h — OpenMP regions that cost nothing when they run on one thread.
 *
 * Why: libgomp builds a team and wakes a futex at the end of every parallel region and every worksharing
 * barrier, even when an `if (nt > 1)` clause makes the team one thread.  A training step of the teaching
 * model calls tens of thousands of small ops (measured: 89,000 regions per step), and on a virtual machine
 * each futex system call costs microseconds — 14% of a one-thread step.  These macros run the statement on
 * `nt` threads when nt > 1 and as plain code otherwise; worksharing constructs inside the statement (written
 * LOCUS_PRAGMA(omp for ...)) are then orphaned, which OpenMP defines as running on the one encountering
 * thread, with no barrier (outside any parallel region; see LOCUS_PAR).  Which thread computes what never changes results (see the callers' contracts),
 * so both paths give the same bits.
 *
 * Pragmas cannot appear inside a macro argument, so inner constructs use LOCUS_PRAGMA(omp for ...). */
#ifndef LOCUS_SIMD_PAR_H
#define LOCUS_SIMD_PAR_H

#include <omp.h>

#define LOCUS_PRAGMA(x) _Pragma(#x)

/* `#pragma omp parallel for schedule(static) num_threads(nt)` over the for statement, or the plain loop when
 * nt <= 1.
 * The body must not contain worksharing constructs, and must not index per-thread scratch by
 * omp_get_thread_num() unless nt > 1: the plain loop may run on any thread of a caller's team. */
#define LOCUS_PAR_FOR(nt, ...)                                                 \
    do {                                                                       \
        if ((nt) > 1) {                                                        \
            LOCUS_PRAGMA(omp parallel for schedule(static) num_threads(nt))      \
            __VA_ARGS__                                                        \
        } else {                                                               \
            __VA_ARGS__                                                        \
        }                                                                      \
    } while (0)

/* `#pragma omp parallel num_threads(nt)` over the block, or the block alone when nt <= 1 outside any parallel
 * region.  Inside one (a caller's thread running this serially), orphaned worksharing in the block would bind
 * to the caller's team, so the block then gets its own team of one, as `if (nt > 1)` used to give it. */
#define LOCUS_PAR(nt, ...)                                                     \
    do {                                                                       \
        if ((nt) > 1 || omp_in_parallel()) {                                   \
            LOCUS_PRAGMA(omp parallel num_threads(nt))                         \
            __VA_ARGS__                                                        \
        } else {                                                               \
            __VA_ARGS__                                                        \
        }                                                                      \
    } while (0)

#endif
