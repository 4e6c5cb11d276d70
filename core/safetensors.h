/* safetensors.h — validated, mmap-based reading of .safetensors files (single or sharded) and an atomic writer.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e]},
 * "__metadata__": {...}}, then the data region; offsets are relative to its start.  Every header is fully
 * validated before any tensor is handed out: N within the file, strict JSON, known dtype, non-negative shape,
 * numel x dtype size == e - b, ranges inside the data region, no two tensors overlapping.  Any violation is a
 * LOCUS_E_FORMAT/LOCUS_E_DTYPE with a message naming the file and the tensor.
 */
#ifndef LOCUS_SAFETENSORS_H
#define LOCUS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "tensor.h"

#define LOCUS_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    locus_dtype dtype;
    int ndim;
    int64_t shape[LOCUS_ST_MAX_DIMS];
    const unsigned char *data; /* inside the mmap; not necessarily aligned */
    size_t nbytes;
    const char *path;          /* file it lives in */
} locus_st_tensor;

typedef struct {
    char *path;
    int fd;
    unsigned char *map;
    size_t size;
    locus_json_doc header;
    locus_st_tensor *tensors; /* sorted by name */
    size_t count;
} locus_st_file;

/* Open and validate.  On failure nothing is left open. */
locus_status locus_st_open(locus_st_file *f, const char *path);

/* Validate an in-memory image (used by the fuzzer and tests); `f->map` then points into `buf`. */
locus_status locus_st_parse_buffer(locus_st_file *f, const unsigned char *buf, size_t size, const char *what);

void locus_st_close(locus_st_file *f);

/* Tensor by exact name (binary search), or NULL. */
const locus_st_tensor *locus_st_find(const locus_st_file *f, const char *name);

/* Convert a tensor's elements to fp32 (F32, F16, BF16 accepted; F64 rounded).  `n` must equal its numel.  A NaN or
 * infinity anywhere is an error naming the tensor and the element (weights, embeddings and noise all load here). */
locus_status locus_st_to_f32(const locus_st_tensor *t, float *dst, int64_t n);

/* Copy an integer tensor (I64/I32) to int64. */
locus_status locus_st_to_i64(const locus_st_tensor *t, int64_t *dst, int64_t n);

int64_t locus_st_numel(const locus_st_tensor *t);

/* A set of safetensors files seen as one: a single file, or a sharded checkpoint given by its
 * `*.safetensors.index.json` (the weight_map names the shard of every tensor). */
typedef struct {
    locus_st_file *files;
    size_t nfiles;
} locus_st_set;

locus_status locus_st_set_open(locus_st_set *s, const char *path);
void locus_st_set_close(locus_st_set *s);
const locus_st_tensor *locus_st_set_find(const locus_st_set *s, const char *name);

/* Fetch a tensor as fp32 into `dst`, checking that its shape equals `shape` (ndim dims); errors name the
 * tensor, the expected and the found shape. */
locus_status locus_st_set_load_f32(const locus_st_set *s, const char *name, int ndim, const int64_t *shape, float *dst);

/* Writer: collects tensors (data is copied), then writes atomically (temp file + rename). */
typedef struct locus_st_writer locus_st_writer;
locus_st_writer *locus_st_writer_new(void);
locus_status locus_st_writer_add(locus_st_writer *w, const char *name, locus_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data);
locus_status locus_st_writer_add_meta(locus_st_writer *w, const char *key, const char *value);
locus_status locus_st_writer_save(locus_st_writer *w, const char *path);
void locus_st_writer_free(locus_st_writer *w);

/* Streaming writer: tensor data goes to disk as it is added (memory stays bounded by the names and shapes);
 * close writes the final file (header + data) atomically.  On any failure the partial files are removed. */
typedef struct locus_st_stream locus_st_stream;
locus_status locus_st_stream_open(locus_st_stream **s, const char *path);
locus_status locus_st_stream_add(locus_st_stream *s, const char *name, locus_dtype dtype, int ndim, const int64_t *shape, const void *data);
locus_status locus_st_stream_close(locus_st_stream *s, int keep); /* keep = 0: discard */

#endif
