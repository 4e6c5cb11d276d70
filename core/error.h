/* error.h — locus status codes and the per-thread error message.
 *
 * Library functions that touch user input or I/O return a locus_status and, on failure, leave a one-line,
 * human-readable message (naming the file and what is wrong) in a thread-local buffer that the caller reads
 * with locus_errmsg().  Nothing in the library aborts on user input; asserts guard only internal invariants.
 * Cleanup functions (*_free, *_close) never touch the message, so a loader may free what it built and then
 * return the status it failed with.
 */
#ifndef LOCUS_ERROR_H
#define LOCUS_ERROR_H

#include <stdarg.h>

typedef enum {
    LOCUS_OK = 0,
    LOCUS_E_IO,        /* open/read/write/mmap failed */
    LOCUS_E_FORMAT,    /* malformed file contents (header, JSON, ranges) */
    LOCUS_E_DTYPE,     /* unsupported or mismatched dtype */
    LOCUS_E_SHAPE,     /* shape mismatch between config and weights or operands */
    LOCUS_E_NOTFOUND,  /* a named tensor / key / file is missing */
    LOCUS_E_ARG,       /* bad user argument */
    LOCUS_E_NOMEM,     /* allocation failed */
    LOCUS_E_UNSUPPORTED
} locus_status;

/* Record an error message (printf-style) for this thread and return `st` so callers can write
 * `return locus_fail(LOCUS_E_IO, "%s: cannot open: %s", path, strerror(errno));`. */
locus_status locus_fail(locus_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread ("" if none). */
const char *locus_errmsg(void);

/* Short name of a status code ("io", "format", ...). */
const char *locus_status_name(locus_status st);

/* Clear this thread's error message. */
void locus_clear_error(void);

#endif
