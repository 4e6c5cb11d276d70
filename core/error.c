/* error.c — thread-local error message storage for locus_status returns (see error.h). */
#include "error.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[1024];

locus_status locus_fail(locus_status st, const char *fmt, ...) {
    /* format into a scratch buffer first: an argument may be locus_errmsg() itself (wrapping a message) */
    char tmp[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(g_msg, tmp, sizeof g_msg);
    return st;
}

const char *locus_errmsg(void) { return g_msg; }

void locus_clear_error(void) { g_msg[0] = 0; }

const char *locus_status_name(locus_status st) {
    switch (st) {
    case LOCUS_OK: return "ok";
    case LOCUS_E_IO: return "io";
    case LOCUS_E_FORMAT: return "format";
    case LOCUS_E_DTYPE: return "dtype";
    case LOCUS_E_SHAPE: return "shape";
    case LOCUS_E_NOTFOUND: return "not-found";
    case LOCUS_E_ARG: return "argument";
    case LOCUS_E_NOMEM: return "out-of-memory";
    case LOCUS_E_UNSUPPORTED: return "unsupported";
    }
    return "unknown";
}
