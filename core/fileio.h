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

#include "error.h"

locus_status locus_write_atomic(const char *path, const void *data, size_t len);
/* Appends len bytes to path (created if missing). */
locus_status locus_append_durable(const char *path, const void *data, size_t len);
/* Reads a whole file into a malloc'd, NUL-terminated buffer.  Missing file: LOCUS_E_NOTFOUND. */
locus_status locus_read_file(const char *path, char **data, size_t *len);
/* mkdir -p for one or two levels; existing directories are fine. */
locus_status locus_mkdir(const char *path);

#endif
