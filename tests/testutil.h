/* testutil.h — a tiny test harness: CHECK macros, pass/fail counters and the closing
 * "N passed, M failed" line that CI reads, plus helpers shared by the test programs. */
#ifndef LOCUS_TESTUTIL_H
#define LOCUS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int t_passed, t_failed;

#define CHECK(cond, ...)                                                                                       \
    do {                                                                                                       \
        if (cond) t_passed++;                                                                                  \
        else { t_failed++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
    } while (0)

/* Prints the summary line and returns the exit code (0 iff nothing failed and something ran). */
int t_finish(const char *suite);

/* max |a-b| and the max |b| over n floats */
double t_maxdiff(const float *a, const float *b, size_t n, double *maxref);

/* count of elements whose bits differ */
size_t t_bitdiff(const float *a, const float *b, size_t n);

/* max |got - want| <= rtol * max |want| over n values (a double-precision reference); prints the gap when not */
int close_enough(const float *got, const double *want, size_t n, double rtol, const char *what);

/* deterministic test data in [lo, hi) */
void t_fill(float *x, size_t n, uint64_t seed, float lo, float hi);

#endif
