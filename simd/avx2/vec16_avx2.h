/* vec16_avx2.h — the 16-lane vector abstraction on AVX2+FMA: two ymm registers per v16 (lanes 0-7, 8-15).
 * Same operations and results as simd/ref/vec16_scalar.h (see there). */
#ifndef LOCUS_VEC16_AVX2_H
#define LOCUS_VEC16_AVX2_H

#include <immintrin.h>
#include <sleef.h>

#include "../sleef_names.h"

#define V16_BURN_ACC 6
#define V16_ISA avx2
typedef struct { __m256 lo, hi; } v16;

static inline __m256i v8_mask(int n) {
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline v16 v16_zero(void) { v16 r = {_mm256_setzero_ps(), _mm256_setzero_ps()}; return r; }
static inline v16 v16_set1(float x) { v16 r = {_mm256_set1_ps(x), _mm256_set1_ps(x)}; return r; }
static inline v16 v16_load(const float *p) { v16 r = {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; return r; }
static inline v16 v16_loadn(const float *p, int n, float fill) {
    __m256i m0 = v8_mask(n), m1 = v8_mask(n - 8);
    __m256 f = _mm256_set1_ps(fill);
    v16 r = {_mm256_blendv_ps(f, _mm256_maskload_ps(p, m0), _mm256_castsi256_ps(m0)),
             _mm256_blendv_ps(f, _mm256_maskload_ps(p + 8, m1), _mm256_castsi256_ps(m1))};
    return r;
}
static inline void v16_store(float *p, v16 v) { _mm256_storeu_ps(p, v.lo); _mm256_storeu_ps(p + 8, v.hi); }
static inline void v16_storen(float *p, v16 v, int n) {
    _mm256_maskstore_ps(p, v8_mask(n), v.lo);
    if (n > 8) _mm256_maskstore_ps(p + 8, v8_mask(n - 8), v.hi);
}
#define V16_BIN(name, op)                                                                                      \
    static inline v16 name(v16 a, v16 b) { v16 r = {op(a.lo, b.lo), op(a.hi, b.hi)}; return r; }
V16_BIN(v16_add, _mm256_add_ps)
V16_BIN(v16_sub, _mm256_sub_ps)
V16_BIN(v16_mul, _mm256_mul_ps)
V16_BIN(v16_div, _mm256_div_ps)
V16_BIN(v16_max, _mm256_max_ps)
V16_BIN(v16_min, _mm256_min_ps)
#undef V16_BIN
static inline v16 v16_fma(v16 a, v16 b, v16 c) { v16 r = {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; return r; }
static inline v16 v16_exp(v16 a) { v16 r = {LOCUS_EXPF_8(a.lo), LOCUS_EXPF_8(a.hi)}; return r; }
static inline v16 v16_tanh(v16 a) { v16 r = {LOCUS_TANHF_8(a.lo), LOCUS_TANHF_8(a.hi)}; return r; }
static inline v16 v16_erf(v16 a) { v16 r = {LOCUS_ERFF_8(a.lo), LOCUS_ERFF_8(a.hi)}; return r; }
static inline void v16_sincos(v16 a, v16 *s, v16 *c) {
    Sleef___m256_2 l = LOCUS_SINCOSF_8(a.lo), h = LOCUS_SINCOSF_8(a.hi);
    s->lo = l.x; s->hi = h.x; c->lo = l.y; c->hi = h.y;
}
static inline float v16_hsum(v16 v) {
    __m256 a = _mm256_add_ps(v.lo, v.hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_shuffle_ps(b, b, 1));
    return _mm_cvtss_f32(b);
}
static inline float v16_hmax(v16 v) {
    __m256 a = _mm256_max_ps(v.lo, v.hi);
    __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_max_ps(b, _mm_movehl_ps(b, b));
    b = _mm_max_ss(b, _mm_shuffle_ps(b, b, 1));
    return _mm_cvtss_f32(b);
}

#endif
