/* numparse.c — strict number parsing for user input (see numparse.h). */
#include "numparse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int locus_parse_lln(const char *s, unsigned long n, long long lo, long long hi, long long *out) {
    char buf[32];
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    const char *d = buf[0] == '-' ? buf + 1 : buf;
    if (!*d) return 0;
    for (const char *c = d; *c; c++)
        if (*c < '0' || *c > '9') return 0; /* no spaces, signs, hex or suffixes */
    errno = 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int locus_parse_ll(const char *s, long long lo, long long hi, long long *out) { return locus_parse_lln(s, strlen(s), lo, hi, out); }

int locus_parse_double(const char *s, double lo, double hi, double *out) {
    if (!*s || *s == ' ' || *s == '\t' || *s == '\n') return 0;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno == ERANGE && fabs(v) > 1.0) return 0; /* overflow; underflow to a tiny value is fine */
    if (*end || end == s || !isfinite(v) || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}
