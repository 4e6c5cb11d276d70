/* kernels_scalar.c — the plain-C reference kernels (ISA "scalar").
 *
 * Row kernels come from kernels_impl.h over the scalar v16; the GEMM micro-kernel is a direct loop nest
 * (MR = 4, NR = 16) with fmaf, defining the exact result every SIMD micro-kernel must reproduce.
 */
#include "vec16_scalar.h"
#include "../kernels_impl.h"

#define MR 4
#define NR 16

static void f32_gemm_ukr_scalar(size_t kc, const float *a, const float *b, size_t ldbp, float *c, size_t ldc, int m,
                                int n, unsigned flags, const float *bias) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = (flags & LOCUS_UKR_ACCUM) && i < m && j < n ? c[i * ldc + j] : 0.0f;
    int nn = (int)ldbp;
    for (size_t k = 0; k < kc; k++)
        for (int i = 0; i < MR; i++) {
            float av = a[k * MR + i];
            for (int j = 0; j < nn; j++) acc[i][j] = fmaf(av, b[k * ldbp + j], acc[i][j]);
        }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float v = acc[i][j];
            if (flags & LOCUS_UKR_BIAS_COL) v = v + bias[j];
            if (flags & LOCUS_UKR_BIAS_ROW) v = v + bias[i];
            c[i * ldc + j] = v;
        }
}

const locus_kernels locus_kernels_scalar = {
    .name = "scalar", .isa = LOCUS_ISA_SCALAR, .mr = MR, .nr = NR,
    .gemm_ukr = f32_gemm_ukr_scalar, .row = &f32_row_kernels_scalar,
};
