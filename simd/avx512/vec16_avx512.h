/* vec16_avx512.h — the 16-lane vector abstraction on AVX-512F: one zmm register per v16.
 * Same operations and results as simd/ref/vec16_scalar.h (see there). */
#ifndef LOCUS_VEC16_AVX512_H
#define LOCUS_VEC16_AVX512_H

#include <immintrin.h>
#include <sleef.h>

#include "../sleef_names.h"

#define V16_BURN_ACC 12
#define V16_ISA avx512
typedef __m512 v16;

static inline __mmask16 v16_mask(int n) { return (__mmask16)((1u << n) - 1u); }
static inline v16 v16_zero(void) { return _mm512_setzero_ps(); }
static inline v16 v16_set1(float x) { return _mm512_set1_ps(x); }
static inline v16 v16_load(const float *p) { return _mm512_loadu_ps(p); }
static inline v16 v16_loadn(const float *p, int n, float fill) { return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), v16_mask(n), p); }
static inline void v16_store(float *p, v16 v) { _mm512_storeu_ps(p, v); }
static inline void v16_storen(float *p, v16 v, int n) { _mm512_mask_storeu_ps(p, v16_mask(n), v); }
static inline v16 v16_add(v16 a, v16 b) { return _mm512_add_ps(a, b); }
static inline v16 v16_sub(v16 a, v16 b) { return _mm512_sub_ps(a, b); }
static inline v16 v16_mul(v16 a, v16 b) { return _mm512_mul_ps(a, b); }
static inline v16 v16_div(v16 a, v16 b) { return _mm512_div_ps(a, b); }
static inline v16 v16_fma(v16 a, v16 b, v16 c) { return _mm512_fmadd_ps(a, b, c); }
static inline v16 v16_max(v16 a, v16 b) { return _mm512_max_ps(a, b); }
static inline v16 v16_min(v16 a, v16 b) { return _mm512_min_ps(a, b); }
static inline v16 v16_exp(v16 a) { return LOCUS_EXPF_16(a); }
static inline v16 v16_tanh(v16 a) { return LOCUS_TANHF_16(a); }
static inline v16 v16_erf(v16 a) { return LOCUS_ERFF_16(a); }
static inline void v16_sincos(v16 a, v16 *s, v16 *c) { Sleef___m512_2 r = LOCUS_SINCOSF_16(a); *s = r.x; *c = r.y; }
static inline float v16_hsum(v16 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_shuffle_ps(b, b, 1));
    return _mm_cvtss_f32(b);
}
static inline float v16_hmax(v16 v) {
    __m256 a = _mm256_max_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_max_ps(b, _mm_movehl_ps(b, b));
    b = _mm_max_ss(b, _mm_shuffle_ps(b, b, 1));
    return _mm_cvtss_f32(b);
}

#endif
