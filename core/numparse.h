/* numparse.h — strict parsing of numbers typed by users (command-line options, ranges in lists).
 *
 * strtol/strtod/atoi accept leading spaces, trailing junk, silently wrap or saturate, and read "nan"; every
 * number a user types goes through these instead: the whole string must be the number, in [lo, hi], finite.
 */
#ifndef LOCUS_NUMPARSE_H
#define LOCUS_NUMPARSE_H

/* A decimal integer (optional leading '-') filling all of `s`, within [lo, hi].  Returns 1 and sets *out, or 0
 * (out untouched) for junk, overflow or out of range. */
int locus_parse_ll(const char *s, long long lo, long long hi, long long *out);

/* The same for `n` bytes starting at s (a token inside a longer string). */
int locus_parse_lln(const char *s, unsigned long n, long long lo, long long hi, long long *out);

/* A finite decimal number filling all of `s`, within [lo, hi] (NaN and infinities refused). */
int locus_parse_double(const char *s, double lo, double hi, double *out);

#endif
