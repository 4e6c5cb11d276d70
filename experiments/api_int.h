/* api_int.h — private to the C API (experiments/api.c, api_generate.c): the structs behind the opaque handles
 * of include/locus.h and the helpers the two files share.  Not installed, not part of the stable API. */
#ifndef LOCUS_API_INT_H
#define LOCUS_API_INT_H

#include <stdint.h>

#include "../core/error.h"
#include "../models/pipeline.h"
#include "../include/locus.h"

#define API_MAX_DIMS 8

typedef struct {
    char *name;
    int ndim;
    int64_t shape[API_MAX_DIMS];
    float *data; /* 64-byte aligned, owned */
} api_tensor;

struct locus_result {
    uint8_t *rgb;    /* [H,W,3] or NULL */
    int H, W;
    api_tensor *t;   /* in the order added */
    int n, cap;
};

struct locus_model {
    locus_pipeline p;
    locus_layer_info *L; /* the denoiser's attention layers, forward order */
    int nL;
};

/* A new empty result (NULL with a message when out of memory). */
locus_result *api_result_new(void);
/* Append a copy of x (ndim <= API_MAX_DIMS, shape PyTorch order) under name. */
locus_status api_result_add(locus_result *r, const char *name, int ndim, const int64_t *shape, const float *x);

/* Make sure a kernel table is active (the first call picks one as the CLI does). */
locus_status api_init(void);

#endif
