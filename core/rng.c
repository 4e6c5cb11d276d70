/* rng.c — mt19937, torch-compatible randn, and a counter-based hash RNG (see rng.h).
 *
 * The torch AVX2 Box-Muller (ATen normal_fill_16_AVX2) evaluates log and sincos with the classic Cephes
 * single-precision polynomials (as vectorised in avx_mathfun).  They are re-derived here from the Cephes
 * algorithm description as a sequence of exact IEEE fp32 operations; where torch's compiler fused a multiply
 * and an add into an FMA, fmaf is used at that point so the rounding is identical.
 */
#include "rng.h"

#include <math.h>
#include <string.h>

#include "half.h"

void locus_mt19937_seed(locus_mt19937 *g, uint64_t seed) {
    g->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (int i = 1; i < 624; i++)
        g->state[i] = 1812433253u * (g->state[i - 1] ^ (g->state[i - 1] >> 30)) + (uint32_t)i;
    g->next = 624;
}

static void mt_twist(locus_mt19937 *g) {
    for (int i = 0; i < 624; i++) {
        uint32_t y = (g->state[i] & 0x80000000u) | (g->state[(i + 1) % 624] & 0x7fffffffu);
        uint32_t v = g->state[(i + 397) % 624] ^ (y >> 1);
        if (y & 1) v ^= 0x9908b0dfu;
        g->state[i] = v;
    }
    g->next = 0;
}

uint32_t locus_mt19937_next(locus_mt19937 *g) {
    if (g->next >= 624) mt_twist(g);
    uint32_t y = g->state[g->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* torch uniform_real_distribution<float>(0,1): 24 random bits * 2^-24 (exact in fp32). */
static float uniform24(locus_mt19937 *g) { return (float)(locus_mt19937_next(g) & 0xffffffu) * (1.0f / 16777216.0f); }

/* Cephes logf as vectorised by avx_mathfun (log256_ps), inputs in (0,1]. */
static float cephes_logf(float x) {
    uint32_t bits = locus_bits_from_f32(x);
    int32_t e_i = (int32_t)(bits >> 23) - 0x7f;
    x = locus_f32_from_bits((bits & ~0x7f800000u) | 0x3f000000u); /* mantissa in [0.5,1) */
    float e = (float)e_i + 1.0f;
    int lt = x < 0.707106781186547524f;
    float tmp = lt ? x : 0.0f;
    x = x - 1.0f;
    e = e - (lt ? 1.0f : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = 7.0376836292E-2f;
    y = fmaf(y, x, -1.1514610310E-1f);
    y = fmaf(y, x, 1.1676998740E-1f);
    y = fmaf(y, x, -1.2420140846E-1f);
    y = fmaf(y, x, 1.4249322787E-1f);
    y = fmaf(y, x, -1.6668057665E-1f);
    y = fmaf(y, x, 2.0000714765E-1f);
    y = fmaf(y, x, -2.4999993993E-1f);
    y = fmaf(y, x, 3.3333331174E-1f);
    y = y * x;
    y = y * z;
    y = fmaf(e, -2.12194440e-4f, y);
    y = fmaf(z, -0.5f, y);
    x = x + y;
    x = fmaf(e, 0.693359375f, x);
    return x;
}

/* Cephes sincosf as vectorised by avx_mathfun (sincos256_ps), for x >= 0. */
static void cephes_sincosf(float x, float *s, float *c) {
    float y = x * 1.27323954473516f; /* 4/pi */
    int32_t j = (int32_t)y;          /* truncation */
    j = (j + 1) & ~1;
    y = (float)j;
    uint32_t swap_sin = (uint32_t)(j & 4) << 29;
    int poly2 = (j & 2) == 0; /* 1: use the sin polynomial for sin */
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    float z = x * x;
    float yc = 2.443315711809948E-005f;
    yc = fmaf(yc, z, -1.388731625493765E-003f);
    yc = fmaf(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f)); /* torch's build fused this multiply with the subtraction */
    yc = yc + 1.0f;
    float ys = -1.9515295891E-4f;
    ys = fmaf(ys, z, 8.3321608736E-3f);
    ys = fmaf(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf(ys, x, x);
    float sv = poly2 ? ys : yc, cv = poly2 ? yc : ys;
    *s = locus_f32_from_bits(locus_bits_from_f32(sv) ^ swap_sin);
    *c = locus_f32_from_bits(locus_bits_from_f32(cv) ^ sign_cos);
}

static void normal_fill_16(float *d) {
    const float two_pi = (float)(2.0f * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j], u2 = d[j + 8];
        float radius = sqrtf(-2.0f * cephes_logf(u1));
        float theta = two_pi * u2;
        float sn, cs;
        cephes_sincosf(theta, &sn, &cs);
        d[j] = radius * cs;
        d[j + 8] = radius * sn;
    }
}

void locus_randn_gen(locus_mt19937 *g, float *out, size_t n) {
    if (n >= 16) {
        for (size_t i = 0; i < n; i++) out[i] = uniform24(g);
        for (size_t i = 0; i + 16 <= n; i += 16) normal_fill_16(out + i);
        if (n % 16) {
            float *d = out + n - 16;
            for (int i = 0; i < 16; i++) d[i] = uniform24(g);
            normal_fill_16(d);
        }
        return;
    }
    /* torch's serial path: at::normal_distribution<double>, 53-bit uniforms from random64, Box-Muller with
     * a cached second sample */
    int have_cache = 0;
    double cache = 0;
    for (size_t i = 0; i < n; i++) {
        if (have_cache) { out[i] = (float)cache; have_cache = 0; continue; }
        uint64_t a = locus_mt19937_next(g), b = locus_mt19937_next(g);
        double u1 = (double)(((b << 32) | a) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
        a = locus_mt19937_next(g); b = locus_mt19937_next(g);
        double u2 = (double)(((b << 32) | a) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
        double r = sqrt(-2.0 * log1p(-u2));
        double theta = 2.0 * 3.14159265358979323846 * u1;
        cache = r * sin(theta);
        have_cache = 1;
        out[i] = (float)(r * cos(theta));
    }
}

void locus_randn(uint64_t seed, float *out, size_t n) {
    locus_mt19937 g;
    locus_mt19937_seed(&g, seed);
    locus_randn_gen(&g, out, n);
}

/* splitmix64 finaliser of (seed, counter) */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

float locus_hash_uniform(uint64_t seed, uint64_t i) {
    uint64_t h = mix64(seed * 0x9e3779b97f4a7c15ull + mix64(i + 0x632be59bd9b4e019ull));
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

void locus_fill_uniform(uint64_t seed, float *out, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * locus_hash_uniform(seed, i);
}
