/* half.h — exact IEEE binary16 and bfloat16 widening to fp32 (subnormals, inf, NaN preserved).
 * Used by the safetensors loader: locus computes in fp32 only, so narrow weights are widened once. */
#ifndef LOCUS_HALF_H
#define LOCUS_HALF_H

#include <stdint.h>
#include <string.h>

static inline float locus_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t locus_bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* binary16 -> binary32, exact. */
static inline float locus_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return locus_f32_from_bits(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return locus_f32_from_bits(sign);
        /* subnormal: normalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400u));
        man &= 0x3ffu;
        return locus_f32_from_bits(sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13));
    }
    return locus_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

/* bfloat16 -> binary32, exact. */
static inline float locus_bf16_to_f32(uint16_t b) { return locus_f32_from_bits((uint32_t)b << 16); }

#endif
