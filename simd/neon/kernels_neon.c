/* kernels_neon.c — AArch64 Advanced SIMD kernels: row kernels from kernels_impl.h, and the f32 GEMM
 * micro-kernel (MR = 6 rows x NR = 16 columns = four q registers per row; narrow variant with 8 columns).
 * One FMA chain over k per output (vfmaq_n_f32), bit-identical to the reference. */
#include "vec16_neon.h"
#include "../kernels_impl.h"

#define MR 6
#define NR 16

static void f32_gemm_ukr_neon(size_t kc, const float *a, const float *b, size_t ldbp, float *c, size_t ldc, int m,
                              int n, unsigned flags, const float *bias) {
    const int nq = (int)ldbp / 4; /* 4 or 2 q registers per row */
    float32x4_t acc[MR][4];
    float tmp[NR];
    for (int i = 0; i < MR; i++)
        for (int q = 0; q < 4; q++) acc[i][q] = vdupq_n_f32(0.0f);
    if (flags & LOCUS_UKR_ACCUM)
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < NR; j++) tmp[j] = j < n ? c[i * ldc + j] : 0.0f;
            for (int q = 0; q < nq; q++) acc[i][q] = vld1q_f32(tmp + 4 * q);
        }
    if (nq == 4) {
        for (size_t k = 0; k < kc; k++, a += MR, b += NR) {
            float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
            for (int i = 0; i < MR; i++) {
                acc[i][0] = vfmaq_n_f32(acc[i][0], b0, a[i]);
                acc[i][1] = vfmaq_n_f32(acc[i][1], b1, a[i]);
                acc[i][2] = vfmaq_n_f32(acc[i][2], b2, a[i]);
                acc[i][3] = vfmaq_n_f32(acc[i][3], b3, a[i]);
            }
        }
    } else {
        for (size_t k = 0; k < kc; k++, a += MR, b += NR / 2) {
            float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
            for (int i = 0; i < MR; i++) {
                acc[i][0] = vfmaq_n_f32(acc[i][0], b0, a[i]);
                acc[i][1] = vfmaq_n_f32(acc[i][1], b1, a[i]);
            }
        }
    }
    for (int i = 0; i < m; i++) {
        for (int q = 0; q < nq; q++) vst1q_f32(tmp + 4 * q, acc[i][q]);
        for (int j = 0; j < n; j++) {
            float v = tmp[j];
            if (flags & LOCUS_UKR_BIAS_COL) v = v + bias[j];
            if (flags & LOCUS_UKR_BIAS_ROW) v = v + bias[i];
            c[i * ldc + j] = v;
        }
    }
}

const locus_kernels locus_kernels_neon = {
    .name = "neon", .isa = LOCUS_ISA_NEON, .mr = MR, .nr = NR,
    .gemm_ukr = f32_gemm_ukr_neon, .row = &f32_row_kernels_neon,
};
