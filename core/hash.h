/* hash.h — content hashes for determinism checks and model identity.
 * FNV-1a 64 over raw bytes: bit-identical outputs give identical hashes; printed as 16 hex digits. */
#ifndef LOCUS_HASH_H
#define LOCUS_HASH_H

#include <stddef.h>
#include <stdint.h>

#define LOCUS_FNV_INIT 0xcbf29ce484222325ull

static inline uint64_t locus_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}

#endif
