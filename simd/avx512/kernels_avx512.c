/* kernels_avx512.c — AVX-512F kernels: row kernels from kernels_impl.h, and the f32 GEMM micro-kernel.
 *
 * GEMM tile: MR = 12 rows x NR = 32 columns (two zmm per row, 24 accumulators); a narrow variant with 16
 * columns (12 accumulators) serves panels of width <= 16.  Vectorized along output columns; each output is
 * one FMA chain over k (vfmadd231ps with a broadcast of A), bit-identical to the scalar reference.
 */
#include "vec16_avx512.h"
#include "../kernels_impl.h"

#define MR 12
#define NR 32

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* A element (row i, step k): packed panel a[k*MR + i], or (direct) row pointers ar[i][k] */
#define AEL(i) (direct ? ar[i][k] : a[i])

static inline __attribute__((always_inline)) void
ukr_w32(size_t kc, const float *a, const float *const *ar, int direct, const float *b, float *c, size_t ldc, int m,
        int n, unsigned flags, const float *bias) {
    __mmask16 m0 = v16_mask(n >= 16 ? 16 : n), m1 = v16_mask(n > 16 ? n - 16 : 0);
#define DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
    ROWS(DECL)
#undef DECL
    if (flags & LOCUS_UKR_ACCUM) {
#define LD(i)                                                                                                  \
    if (i < m) { c##i##a = _mm512_maskz_loadu_ps(m0, c + i * ldc); c##i##b = _mm512_maskz_loadu_ps(m1, c + i * ldc + 16); }
        ROWS(LD)
#undef LD
    }
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#define FM(i)                                                                                                  \
    { __m512 av = _mm512_set1_ps(AEL(i)); c##i##a = _mm512_fmadd_ps(av, b0, c##i##a); c##i##b = _mm512_fmadd_ps(av, b1, c##i##b); }
        ROWS(FM)
#undef FM
        if (!direct) a += MR;
        b += NR;
    }
    __m512 bc0 = _mm512_setzero_ps(), bc1 = _mm512_setzero_ps();
    if (flags & LOCUS_UKR_BIAS_COL) { bc0 = _mm512_maskz_loadu_ps(m0, bias); bc1 = _mm512_maskz_loadu_ps(m1, bias + 16); }
#define ST(i)                                                                                                  \
    if (i < m) {                                                                                               \
        if (flags & LOCUS_UKR_BIAS_COL) { c##i##a = _mm512_add_ps(c##i##a, bc0); c##i##b = _mm512_add_ps(c##i##b, bc1); } \
        if (flags & LOCUS_UKR_BIAS_ROW) { __m512 br = _mm512_set1_ps(bias[i]); c##i##a = _mm512_add_ps(c##i##a, br); c##i##b = _mm512_add_ps(c##i##b, br); } \
        _mm512_mask_storeu_ps(c + i * ldc, m0, c##i##a);                                                       \
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c##i##b);                                                  \
    }
    ROWS(ST)
#undef ST
}

static inline __attribute__((always_inline)) void
ukr_w16(size_t kc, const float *a, const float *const *ar, int direct, const float *b, float *c, size_t ldc, int m,
        int n, unsigned flags, const float *bias) {
    __mmask16 m0 = v16_mask(n);
#define DECL(i) __m512 c##i = _mm512_setzero_ps();
    ROWS(DECL)
#undef DECL
    if (flags & LOCUS_UKR_ACCUM) {
#define LD(i) if (i < m) c##i = _mm512_maskz_loadu_ps(m0, c + i * ldc);
        ROWS(LD)
#undef LD
    }
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b);
#define FM(i) c##i = _mm512_fmadd_ps(_mm512_set1_ps(AEL(i)), b0, c##i);
        ROWS(FM)
#undef FM
        if (!direct) a += MR;
        b += NR / 2;
    }
    __m512 bc0 = _mm512_setzero_ps();
    if (flags & LOCUS_UKR_BIAS_COL) bc0 = _mm512_maskz_loadu_ps(m0, bias);
#define ST(i)                                                                                                  \
    if (i < m) {                                                                                               \
        if (flags & LOCUS_UKR_BIAS_COL) c##i = _mm512_add_ps(c##i, bc0);                                       \
        if (flags & LOCUS_UKR_BIAS_ROW) c##i = _mm512_add_ps(c##i, _mm512_set1_ps(bias[i]));                   \
        _mm512_mask_storeu_ps(c + i * ldc, m0, c##i);                                                          \
    }
    ROWS(ST)
#undef ST
}

static void f32_gemm_ukr_avx512(size_t kc, const float *a, const float *b, size_t ldbp, float *c, size_t ldc, int m,
                                int n, unsigned flags, const float *bias) {
    if (ldbp == NR) ukr_w32(kc, a, NULL, 0, b, c, ldc, m, n, flags, bias);
    else ukr_w16(kc, a, NULL, 0, b, c, ldc, m, n, flags, bias);
}

/* Same tile with A read in place from MR row pointers (rows >= m point at valid memory; their results are
 * discarded): for small N, where packing A would cost as much as the arithmetic. */
static void f32_gemm_ukr_direct_avx512(size_t kc, const float *const *arows, const float *b, size_t ldbp, float *c,
                                       size_t ldc, int m, int n, unsigned flags, const float *bias) {
    const float *ar[MR];
    for (int i = 0; i < MR; i++) ar[i] = arows[i];
    if (ldbp == NR) ukr_w32(kc, NULL, ar, 1, b, c, ldc, m, n, flags, bias);
    else ukr_w16(kc, NULL, ar, 1, b, c, ldc, m, n, flags, bias);
}

const locus_kernels locus_kernels_avx512 = {
    .name = "avx512", .isa = LOCUS_ISA_AVX512, .mr = MR, .nr = NR,
    .gemm_ukr = f32_gemm_ukr_avx512, .gemm_ukr_direct = f32_gemm_ukr_direct_avx512, .row = &f32_row_kernels_avx512,
};
