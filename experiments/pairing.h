/* pairing.h — how prompt A's word is paired with the word B patched into it: numpy's legacy random draws
 * (RandomState.randint / choice) reproduced bit for bit on locus's MT19937, the paper's pairing built on them,
 * and a reader for explicit pairs (CSV, one "A,B" pair per line).
 *
 * numpy's RandomState(seed) with an integer seed is MT19937 seeded by init_genrand(seed), the same seeding
 * locus_mt19937_seed uses (torch's), so one generator serves both.  RandomState.randint(0, high) and
 * RandomState.choice(seq) (= seq[randint(0, len(seq))]) draw a bounded integer by masked rejection: with
 * rng = high - 1 and mask = the smallest 2^k - 1 >= rng, take 32-bit outputs (64-bit: two outputs, high word
 * first) ANDed with mask until one is <= rng; rng = 0 returns 0 without drawing.
 *
 * The paper's pairing (the authors' src/prepare_glyph.py): one generator seeded with 42 for the whole run;
 * in each word file, in the order given, the pool is the file's line indices; for word i in order, draw
 * choice(sorted pool) until the index is not i, pair word i with it and remove it from the pool (a Python set
 * of small integers iterates in increasing order, so list(pool) is the sorted pool).
 */
#ifndef LOCUS_PAIRING_H
#define LOCUS_PAIRING_H

#include <stdint.h>

#include "../core/error.h"
#include "../core/rng.h"

/* numpy RandomState.randint(0, high) (legacy, masked rejection) for 1 <= high <= 2^63. */
uint64_t locus_np_randint(locus_mt19937 *g, uint64_t high);

/* The paper's pairing of n words (one file): target[i] = index of word i's partner.  The generator continues
 * across calls (files).  Returns -1 when word i is the only one left in the pool (the authors' loop would
 * never end), after which target is incomplete. */
int locus_pairing_paper(locus_mt19937 *g, int n, int *target);

/* Read explicit pairs: one "A,B" pair per line, CSV quoting ("..." with "" for a quote; a quoted field may
 * hold commas), CR LF or LF line ends, blank lines and lines starting with '#' skipped, a first line exactly
 * "a,b" taken as a header.  Every field must be non-empty well-formed UTF-8.  *a, *b get n malloc'd strings
 * each (free with locus_pairs_free).  Errors name the file and line. */
locus_status locus_pairs_read(const char *path, char ***a, char ***b, int *n);
void locus_pairs_free(char **a, char **b, int n);

#endif
