/* fuzz_st_index.c — libFuzzer target for sharded safetensors: the input is the *.safetensors.index.json beside
 * two small valid shards (a.safetensors with tensors x, y; b.safetensors with z).  Accepted sets must find
 * every tensor the index names and load it as fp32 within bounds; rejected ones leave a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/safetensors.h"
#include "fuzz_util.h"

static void shard(const char *name, const char *hdr, size_t nbytes) {
    size_t hl = strlen(hdr), n = 8 + hl + nbytes;
    unsigned char *b = calloc(1, n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    for (size_t i = 0; i < nbytes; i += 4) { float v = (float)i; memcpy(b + 8 + hl + i, &v, 4); }
    fz_write(name, b, n);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        shard("a.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[8,16]}}", 16);
        shard("b.safetensors", "{\"z\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},\"__metadata__\":{\"k\":\"v\"}}", 12);
        init = 1;
    }
    const char *idx = fz_write("m.safetensors.index.json", data, size);
    locus_st_set s;
    if (locus_st_set_open(&s, idx) == LOCUS_OK) {
        for (size_t f = 0; f < s.nfiles; f++)
            for (size_t i = 0; i < s.files[f].count; i++) {
                const locus_st_tensor *t = &s.files[f].tensors[i];
                if (locus_st_set_find(&s, t->name) == NULL) __builtin_trap();
                int64_t n = locus_st_numel(t);
                float out[8];
                if (n <= 8) locus_st_set_load_f32(&s, t->name, t->ndim, t->shape, out);
            }
        locus_st_set_close(&s);
    }
    return 0;
}
