/* rng.h — torch-compatible CPU random numbers: mt19937 and torch.randn.
 *
 * `locus_randn(seed, out, n)` reproduces `torch.randn(n, generator=torch.Generator().manual_seed(seed))` on CPU
 * bit for bit (and so diffusers' randn_tensor for CPU generators): mt19937 seeded like torch's CPUGenerator,
 * 24-bit uniforms, and for n >= 16 torch's 16-wide Box-Muller with its AVX2 log/sincos polynomials (the code
 * path torch takes on any AVX2 machine), emulated here in exact scalar fp32 so every ISA gives the same bits.
 * For n < 16 torch's double-precision serial path is reproduced.
 */
#ifndef LOCUS_RNG_H
#define LOCUS_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[624];
    int next;
} locus_mt19937;

void locus_mt19937_seed(locus_mt19937 *g, uint64_t seed);
uint32_t locus_mt19937_next(locus_mt19937 *g);

/* torch.randn(n) with a fresh generator manual_seed(seed). */
void locus_randn(uint64_t seed, float *out, size_t n);

/* Continue from an existing generator (several randn calls in a row, as torch would). */
void locus_randn_gen(locus_mt19937 *g, float *out, size_t n);

/* Counter-based (stateless) uniform in [0,1) and normal for seeded test data and random-weight benchmarks:
 * element i of stream `seed` depends only on (seed, i), never on threads. */
float locus_hash_uniform(uint64_t seed, uint64_t i);
void locus_fill_uniform(uint64_t seed, float *out, size_t n, float lo, float hi);

#endif
