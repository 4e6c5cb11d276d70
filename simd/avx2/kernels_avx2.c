/* kernels_avx2.c — AVX2+FMA kernels: row kernels from kernels_impl.h, and the f32 GEMM micro-kernel.
 *
 * GEMM tile: MR = 6 rows x NR = 16 columns (two ymm per row, 12 accumulators); a narrow variant with 8
 * columns serves panels of width <= 8.  One FMA chain over k per output, bit-identical to the reference.
 */
#include "vec16_avx2.h"
#include "../kernels_impl.h"

#define MR 6
#define NR 16

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

static void f32_gemm_ukr_avx2_w16(size_t kc, const float *a, const float *b, float *c, size_t ldc, int m, int n,
                                  unsigned flags, const float *bias) {
    __m256i m0 = v8_mask(n), m1 = v8_mask(n - 8);
#define DECL(i) __m256 c##i##a = _mm256_setzero_ps(), c##i##b = _mm256_setzero_ps();
    ROWS(DECL)
#undef DECL
    if (flags & LOCUS_UKR_ACCUM) {
#define LD(i)                                                                                                  \
    if (i < m) { c##i##a = _mm256_maskload_ps(c + i * ldc, m0); c##i##b = _mm256_maskload_ps(c + i * ldc + 8, m1); }
        ROWS(LD)
#undef LD
    }
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#define FM(i)                                                                                                  \
    { __m256 av = _mm256_broadcast_ss(a + i); c##i##a = _mm256_fmadd_ps(av, b0, c##i##a); c##i##b = _mm256_fmadd_ps(av, b1, c##i##b); }
        ROWS(FM)
#undef FM
        a += MR;
        b += NR;
    }
    __m256 bc0 = _mm256_setzero_ps(), bc1 = _mm256_setzero_ps();
    if (flags & LOCUS_UKR_BIAS_COL) { bc0 = _mm256_maskload_ps(bias, m0); bc1 = _mm256_maskload_ps(bias + 8, m1); }
#define ST(i)                                                                                                  \
    if (i < m) {                                                                                               \
        if (flags & LOCUS_UKR_BIAS_COL) { c##i##a = _mm256_add_ps(c##i##a, bc0); c##i##b = _mm256_add_ps(c##i##b, bc1); } \
        if (flags & LOCUS_UKR_BIAS_ROW) { __m256 br = _mm256_set1_ps(bias[i]); c##i##a = _mm256_add_ps(c##i##a, br); c##i##b = _mm256_add_ps(c##i##b, br); } \
        _mm256_maskstore_ps(c + i * ldc, m0, c##i##a);                                                         \
        _mm256_maskstore_ps(c + i * ldc + 8, m1, c##i##b);                                                     \
    }
    ROWS(ST)
#undef ST
}

static void f32_gemm_ukr_avx2_w8(size_t kc, const float *a, const float *b, float *c, size_t ldc, int m, int n,
                                 unsigned flags, const float *bias) {
    __m256i m0 = v8_mask(n);
#define DECL(i) __m256 c##i = _mm256_setzero_ps();
    ROWS(DECL)
#undef DECL
    if (flags & LOCUS_UKR_ACCUM) {
#define LD(i) if (i < m) c##i = _mm256_maskload_ps(c + i * ldc, m0);
        ROWS(LD)
#undef LD
    }
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b);
#define FM(i) c##i = _mm256_fmadd_ps(_mm256_broadcast_ss(a + i), b0, c##i);
        ROWS(FM)
#undef FM
        a += MR;
        b += NR / 2;
    }
    __m256 bc0 = _mm256_setzero_ps();
    if (flags & LOCUS_UKR_BIAS_COL) bc0 = _mm256_maskload_ps(bias, m0);
#define ST(i)                                                                                                  \
    if (i < m) {                                                                                               \
        if (flags & LOCUS_UKR_BIAS_COL) c##i = _mm256_add_ps(c##i, bc0);                                       \
        if (flags & LOCUS_UKR_BIAS_ROW) c##i = _mm256_add_ps(c##i, _mm256_set1_ps(bias[i]));                   \
        _mm256_maskstore_ps(c + i * ldc, m0, c##i);                                                            \
    }
    ROWS(ST)
#undef ST
}

static void f32_gemm_ukr_avx2(size_t kc, const float *a, const float *b, size_t ldbp, float *c, size_t ldc, int m,
                              int n, unsigned flags, const float *bias) {
    if (ldbp == NR) f32_gemm_ukr_avx2_w16(kc, a, b, c, ldc, m, n, flags, bias);
    else f32_gemm_ukr_avx2_w8(kc, a, b, c, ldc, m, n, flags, bias);
}

const locus_kernels locus_kernels_avx2 = {
    .name = "avx2", .isa = LOCUS_ISA_AVX2, .mr = MR, .nr = NR,
    .gemm_ukr = f32_gemm_ukr_avx2, .row = &f32_row_kernels_avx2,
};
