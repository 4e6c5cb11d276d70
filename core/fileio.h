/* fileio.h — whole-file helpers with the crash guarantees result files need.
 *
 * locus_write_atomic writes a temporary file next to the target, fsyncs it and renames it over the target,
 * so a reader (or a run killed at any instant) sees either the old or the new file, never a mix.
 * locus_append_durable appends one record with a single write() on an O_APPEND descriptor and fsyncs it:
 * a killed process leaves either the whole record or none of it (a torn tail can only come from the machine
 * losing power; readers of such files drop an unterminated last line). */
#ifndef LOCUS_FILEIO_H
#define LOCUS_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

locus_status locus_write_atomic(const char *path, const void *data, size_t len);

/* Opens `path` for reading only if it is a regular file: opened with O_NONBLOCK, checked with fstat (FIFOs,
 * devices, directories refused with "not a regular file" before any read can block), then made blocking.
 * Returns the descriptor, or -1 with the message recorded (*st set when st is non-NULL; LOCUS_E_NOTFOUND for
 * a missing file). */
int locus_open_regular(const char *path, locus_status *st);
/* The same as a stdio stream ("rb"); NULL with the message recorded. */
FILE *locus_fopen_regular(const char *path, locus_status *st);

/* Checks that `path` may be written as an output: it is absent or a regular file (outputs never replace a
 * FIFO, device or directory, e.g. -o /dev/null), and its directory exists. */
locus_status locus_output_check(const char *path);
/* Creates the temporary file an atomic write of `path` goes through (`path`.tmp.PID, O_EXCL, same directory,
 * after locus_output_check) and returns its descriptor (name in tmp[n]), or -1 with the message recorded. */
int locus_create_tmp(const char *path, char *tmp, size_t n);
/* Appends len bytes to path (created if missing). */
locus_status locus_append_durable(const char *path, const void *data, size_t len);
/* Reads a whole file into a malloc'd, NUL-terminated buffer.  Missing file: LOCUS_E_NOTFOUND. */
locus_status locus_read_file(const char *path, char **data, size_t *len);
/* mkdir -p for one or two levels; existing directories are fine. */
locus_status locus_mkdir(const char *path);
/* 1 if `path` exists and is a directory / a regular file (after following symlinks), else 0. */
int locus_is_dir(const char *path);
int locus_is_file(const char *path);

#endif
