/* tensor.h — dtypes and a minimal tensor view (PyTorch dim order, contiguous).
 *
 * locus computes in fp32 only; other dtypes exist for I/O (safetensors weights in f16/bf16, int64 token ids
 * in golden files).  A locus_tensor does not own its data: memory comes from an arena, an mmap or the caller.
 */
#ifndef LOCUS_TENSOR_H
#define LOCUS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define LOCUS_MAX_DIMS 5

typedef enum {
    LOCUS_F32, LOCUS_F16, LOCUS_BF16, LOCUS_F64,
    LOCUS_I64, LOCUS_I32, LOCUS_I16, LOCUS_I8, LOCUS_U8, LOCUS_BOOL,
    LOCUS_DTYPE_COUNT
} locus_dtype;

typedef struct {
    locus_dtype dtype;
    int ndim;
    int64_t shape[LOCUS_MAX_DIMS];
    void *data;
} locus_tensor;

/* Bytes per element; the safetensors spelling ("F32", "BF16", ...); parse that spelling (-1 if unknown). */
size_t locus_dtype_size(locus_dtype t);
const char *locus_dtype_name(locus_dtype t);
int locus_dtype_parse(const char *s);

/* Number of elements (1 for a 0-d tensor). */
int64_t locus_numel(const locus_tensor *t);

/* Build an fp32 view over `data` with the given dims (ndim <= 5). */
locus_tensor locus_tensor_f32(float *data, int ndim, const int64_t *shape);

/* "[2,4,8,8]" into buf. */
const char *locus_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

#endif
