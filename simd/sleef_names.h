/* sleef_names.h — the one place that spells SLEEF function names.
 *
 * locus uses only SLEEF's deterministic "finz" family (FMA-based, bit-identical results across vector widths
 * and architectures), 1.0-ulp variants, with the ISA suffix written out.  Never the auto-dispatching names
 * (they pick different code per CPU) and never the 3.5-ulp tanh.  Every transcendental in locus goes through
 * these macros, so a change of SLEEF family is a one-file change.
 */
#ifndef LOCUS_SLEEF_NAMES_H
#define LOCUS_SLEEF_NAMES_H

#include <math.h>
#include <sleef.h>

/* scalar reference (pure C with fma) */
#define LOCUS_EXPF_1      Sleef_finz_expf1_u10purecfma
#define LOCUS_TANHF_1     Sleef_finz_tanhf1_u10purecfma
#define LOCUS_ERFF_1      Sleef_finz_erff1_u10purecfma
#define LOCUS_LOGF_1      Sleef_finz_logf1_u10purecfma
#define LOCUS_SINCOSF_1   Sleef_finz_sincosf1_u10purecfma
#define LOCUS_EXP_D1      Sleef_finz_expd1_u10purecfma   /* double, scalar setup code (schedules) */
#define LOCUS_COS_D1      Sleef_finz_cosd1_u10purecfma   /* double, scalar setup code (cosine beta schedule) */

/* sleef.h declares the purecfma functions only when the compiler itself targets FMA (FP_FAST_FMA); the
 * reference kernels are compiled without ISA flags, so declare them here.  They need an FMA-capable CPU,
 * as every x86 machine with AVX2 has. */
#if !defined(FP_FAST_FMA)
float Sleef_finz_expf1_u10purecfma(float);
float Sleef_finz_tanhf1_u10purecfma(float);
float Sleef_finz_erff1_u10purecfma(float);
float Sleef_finz_logf1_u10purecfma(float);
Sleef_float_2 Sleef_finz_sincosf1_u10purecfma(float);
double Sleef_finz_expd1_u10purecfma(double);
double Sleef_finz_cosd1_u10purecfma(double);
#endif

/* AVX2 + FMA, 8 lanes */
#define LOCUS_EXPF_8      Sleef_finz_expf8_u10avx2
#define LOCUS_TANHF_8     Sleef_finz_tanhf8_u10avx2
#define LOCUS_ERFF_8      Sleef_finz_erff8_u10avx2
#define LOCUS_LOGF_8      Sleef_finz_logf8_u10avx2
#define LOCUS_SINCOSF_8   Sleef_finz_sincosf8_u10avx2

/* AVX-512F, 16 lanes */
#define LOCUS_EXPF_16     Sleef_finz_expf16_u10avx512f
#define LOCUS_TANHF_16    Sleef_finz_tanhf16_u10avx512f
#define LOCUS_ERFF_16     Sleef_finz_erff16_u10avx512f
#define LOCUS_LOGF_16     Sleef_finz_logf16_u10avx512f
#define LOCUS_SINCOSF_16  Sleef_finz_sincosf16_u10avx512f

/* AArch64 Advanced SIMD, 4 lanes */
#define LOCUS_EXPF_4      Sleef_finz_expf4_u10advsimd
#define LOCUS_TANHF_4     Sleef_finz_tanhf4_u10advsimd
#define LOCUS_ERFF_4      Sleef_finz_erff4_u10advsimd
#define LOCUS_LOGF_4      Sleef_finz_logf4_u10advsimd
#define LOCUS_SINCOSF_4   Sleef_finz_sincosf4_u10advsimd

#endif
