/* kernels.h — the kernel dispatch table (BLIS style): one table per ISA, chosen once at start.
 *
 * Every op has a plain-C reference (simd/ref) and AVX2, AVX-512 and NEON versions that produce the SAME BITS
 * (see simd/kernels_impl.h for the rules that make that true).  locus_kernels_init() picks the best ISA the
 * CPU supports (CPUID), or the one forced by LOCUS_ISA=scalar|avx2|avx512|neon; with LOCUS_VERBOSE set it
 * logs the choice once on stderr (silent by default).  locus_isa_name() is recorded in every output file.
 */
#ifndef LOCUS_KERNELS_H
#define LOCUS_KERNELS_H

#include <stddef.h>

#include "../core/error.h"

typedef enum { LOCUS_ISA_SCALAR, LOCUS_ISA_AVX2, LOCUS_ISA_AVX512, LOCUS_ISA_NEON, LOCUS_ISA_COUNT } locus_isa;

enum { LOCUS_ACT_NONE, LOCUS_ACT_SILU, LOCUS_ACT_GELU_ERF, LOCUS_ACT_GELU_TANH, LOCUS_ACT_QUICK_GELU };
enum {
    LOCUS_BIN_ADD, LOCUS_BIN_SUB, LOCUS_BIN_MUL,
    LOCUS_BIN_MUL_ACT_GELU_ERF,  /* a * gelu(b), GEGLU */
    LOCUS_BIN_MUL_ACT_GELU_TANH, /* a * gelu_tanh(b), T5 gated-gelu */
    LOCUS_BIN_CFG,               /* a + alpha * (b - a) */
    LOCUS_BIN_AXPY               /* a + alpha * b */
};

/* Row kernels: single-threaded, contiguous, any length, any alignment. */
typedef struct {
    float (*rsum)(const float *x, size_t n);
    float (*rmax)(const float *x, size_t n);
    float (*rsumsq_dev)(const float *x, size_t n, float mean);
    float (*rdot)(const float *x, const float *y, size_t n);
    void (*softmax)(const float *x, float *y, size_t n, float scale, const float *mask);
    void (*norm_apply)(const float *x, float *y, size_t n, float mean, float rstd, const float *w, const float *b);
    void (*rms_apply)(const float *x, float *y, size_t n, float rstd, const float *w);
    void (*act)(const float *x, float *y, size_t n, int kind);
    void (*binary)(const float *a, const float *b, float *y, size_t n, int op, float alpha);
    void (*scale_shift)(const float *x, float *y, size_t n, float s, float t);
    void (*timestep_embed)(float t, float *out, int dim, int flip, float shift, float scale, float neg_log_max_period);
    /* benchmark helper: `iters` rounds of independent FMA chains; returns the flops done (sink defeats DCE) */
    double (*fma_burn)(long iters, float *sink);
    /* ---- backward (gradient) row kernels, used by simd/ops_bwd.c; `accum` != 0: out = out + value ---- */
    /* dx (+)= dy * act'(x) (LOCUS_ACT_*; NONE: act' = 1) */
    void (*act_bwd)(const float *x, const float *dy, float *dx, size_t n, int kind, int accum);
    /* y = a * gelu_erf(g): da (+)= dy * gelu(g), dg (+)= (dy * a) * gelu'(g) */
    void (*geglu_bwd)(const float *a, const float *g, const float *dy, float *da, float *dg, size_t n, int accum);
    /* norm input gradient: dx (+)= ((g - c1) - xhat * c2) * rstd */
    void (*norm_bwd_apply)(const float *g, const float *xhat, float *dx, size_t n, float c1, float c2, float rstd,
                           int accum);
    /* column chains: acc[i] = fma(a[i], b[i], acc[i]) (one step of each element's chain) */
    void (*fma_acc)(float *acc, const float *a, const float *b, size_t n);
    /* 16-lane sum of (a - b)^2 (FMA per lane); grad, if not NULL: grad = (a - b) * c */
    float (*sqdiff)(const float *a, const float *b, size_t n, float *grad, float c);
    /* one scalar FMA chain: acc = fma(a[i], b[i], acc) for i = 0..n-1 in order; returns acc (a per-channel
     * parameter gradient; an FMA instruction on the SIMD tables, libm's correctly rounded fmaf on scalar) */
    float (*fma_chain)(const float *a, const float *b, size_t n, float acc);
    /* softmax backward on a row: ds = (p * (dp - dsum)) * scale */
    void (*softmax_bwd)(const float *p, const float *dp, float *ds, size_t n, float dsum, float scale);
    /* ---- end of backward row kernels ---- */
} locus_row_kernels;

/* GEMM micro-kernel flags */
#define LOCUS_UKR_ACCUM 1u    /* continue the chain: start from C instead of 0 */
#define LOCUS_UKR_BIAS_COL 2u /* after the chain: C[i][j] = acc + bias[j] */
#define LOCUS_UKR_BIAS_ROW 4u /* after the chain: C[i][j] = acc + bias[i] */

/* C[m x n] = A_panel . B_panel (+ bias): one FMA chain over k = 0..kc-1 per output, in order.
 *   a: packed, a[k * MR + r] (rows >= m are zero);  b: packed, b[k * ldbp + j] with ldbp = NR, or NR/2 for a
 *   narrow panel (n <= NR/2);  c: row-major, row stride ldc;  1 <= m <= MR, 1 <= n <= NR. */
typedef void (*locus_gemm_ukr_fn)(size_t kc, const float *a, const float *b, size_t ldbp, float *c, size_t ldc, int m,
                                  int n, unsigned flags, const float *bias);

#define LOCUS_MAX_MR 16

/* Optional variant reading A in place: arows[r] points at row r's element k0 (so A(r, k0+k) = arows[r][k]);
 * arows[r] for r >= m must be readable for kc elements.  Same results as packing A. */
typedef void (*locus_gemm_ukr_direct_fn)(size_t kc, const float *const *arows, const float *b, size_t ldbp, float *c,
                                         size_t ldc, int m, int n, unsigned flags, const float *bias);

typedef struct {
    const char *name;
    locus_isa isa;
    int mr, nr; /* GEMM tile; mr <= LOCUS_MAX_MR */
    locus_gemm_ukr_fn gemm_ukr;
    locus_gemm_ukr_direct_fn gemm_ukr_direct; /* may be NULL: the driver then packs A */
    const locus_row_kernels *row;
} locus_kernels;

/* Fill the table (idempotent, thread-safe after the first call returns).  Honors LOCUS_ISA; an unknown or
 * unsupported forced ISA is an error (LOCUS_E_ARG / LOCUS_E_UNSUPPORTED with a message). */
locus_status locus_kernels_init(void);

/* The active table (calls locus_kernels_init on first use and aborts with the message if that fails). */
const locus_kernels *locus_k(void);

/* Name of the active ISA ("avx512", ...). */
const char *locus_isa_name(void);

/* Table for a specific ISA, or NULL if not compiled in / not supported by this CPU (used by tests). */
const locus_kernels *locus_kernels_for(locus_isa isa);

/* Force a table (tests, benchmarks).  Returns LOCUS_E_UNSUPPORTED if the CPU lacks it. */
locus_status locus_kernels_force(locus_isa isa);

/* Threads: LOCUS_THREADS or OMP_NUM_THREADS, else the number of cores; locus_set_threads overrides. */
void locus_set_threads(int n);
int locus_threads(void);

/* OpenMP's wait policy, chosen for the machine: waiting threads that spin slow an SMT sibling doing the work,
 * while on separate cores sleeping costs a futex wake-up per parallel region.  Call first thing in main():
 * unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set, re-executes the program with OMP_WAIT_POLICY=passive when
 * CPUs share cores (or that is unknown) and GOMP_SPINCOUNT=1000 (a short spin, then sleep) when they do not
 * (libgomp reads them only at start-up).  Timing only: the
 * bits do not depend on it.  Returns only if no re-exec happened. */
void locus_choose_wait_policy(char **argv);

/* Per-ISA tables (defined in simd/<isa>/kernels_<isa>.c). */
extern const locus_kernels locus_kernels_scalar;
#if defined(__x86_64__)
extern const locus_kernels locus_kernels_avx2;
extern const locus_kernels locus_kernels_avx512;
#endif
#if defined(__aarch64__)
extern const locus_kernels locus_kernels_neon;
#endif

#endif
