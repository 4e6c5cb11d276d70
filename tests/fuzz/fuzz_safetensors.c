/* fuzz_safetensors.c — libFuzzer target for the safetensors header parser and validator (make fuzz).
 * Any input must either be rejected with a status or yield tensors whose byte ranges lie inside the input;
 * converting every accepted float tensor must not read out of bounds (ASan checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* copy so that ASan catches any read past the end of the input */
    unsigned char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    locus_st_file f;
    if (locus_st_parse_buffer(&f, buf, size, "fuzz.safetensors") == LOCUS_OK) {
        for (size_t i = 0; i < f.count; i++) {
            const locus_st_tensor *t = &f.tensors[i];
            if (t->data < buf || t->data + t->nbytes > buf + size) abort();
            int64_t n = locus_st_numel(t);
            if (n > 0 && n < (1 << 20)) {
                float *out = malloc((size_t)n * sizeof(float));
                int64_t *iv = malloc((size_t)n * sizeof(int64_t));
                locus_st_to_f32(t, out, n);
                locus_st_to_i64(t, iv, n);
                free(out);
                free(iv);
            }
            if (locus_st_find(&f, t->name) == NULL) abort();
        }
        locus_st_close(&f);
    }
    free(buf);
    return 0;
}
