/* tensor.c — dtype table and tensor view helpers (see tensor.h). */
#include "tensor.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const struct { const char *name; size_t size; } g_dtypes[LOCUS_DTYPE_COUNT] = {
    [LOCUS_F32] = {"F32", 4}, [LOCUS_F16] = {"F16", 2}, [LOCUS_BF16] = {"BF16", 2}, [LOCUS_F64] = {"F64", 8},
    [LOCUS_I64] = {"I64", 8}, [LOCUS_I32] = {"I32", 4}, [LOCUS_I16] = {"I16", 2},   [LOCUS_I8] = {"I8", 1},
    [LOCUS_U8] = {"U8", 1},   [LOCUS_BOOL] = {"BOOL", 1},
};

size_t locus_dtype_size(locus_dtype t) { return (unsigned)t < LOCUS_DTYPE_COUNT ? g_dtypes[t].size : 0; }
const char *locus_dtype_name(locus_dtype t) { return (unsigned)t < LOCUS_DTYPE_COUNT ? g_dtypes[t].name : "?"; }

int locus_dtype_parse(const char *s) {
    for (int i = 0; i < LOCUS_DTYPE_COUNT; i++)
        if (strcmp(s, g_dtypes[i].name) == 0) return i;
    return -1;
}

int64_t locus_numel(const locus_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

locus_tensor locus_tensor_f32(float *data, int ndim, const int64_t *shape) {
    assert(ndim >= 0 && ndim <= LOCUS_MAX_DIMS);
    locus_tensor t = {LOCUS_F32, ndim, {0}, data};
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    return t;
}

const char *locus_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < ndim && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}
