/* gemm.c — the blocked, threaded f32 GEMM driver (Goto/BLIS loop nest) over the table's micro-kernel.
 *
 * Loops: jc (NC columns) > pc (KC depth) > [pack B block, shared] > tasks over (MC row block x column
 * range) > [pack A block, per task] > jr (NR panel) > ir (MR panel) > micro-kernel.  K-blocks are carried
 * through C in memory: the first block starts from 0 (or, with d->accum, from C: how the backward ops
 * accumulate gradients), later blocks continue the same FMA chain from the value stored in C (fp32, exact),
 * so the result equals one unblocked chain over k.  Tasks partition C, so the
 * thread count never changes what any output sees.  Few rows (M <= SMALL_M): pc > [pack all of A, per
 * thread] > the thread's own column panels, each packed privately > ir > micro-kernel (gemm_team_small_m).
 */
#include <assert.h>
#include <stdatomic.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "../core/arena.h"
#include "ops.h"

/* Blocking, tuned on the AVX-512 development machine (Zen, 1 MiB L2) against OpenBLAS SkylakeX: a B
 * micro-panel (KC x 32 floats = 64 KiB) streams through L1, an A block (MC x KC = 288 KiB) stays in L2. */
#define KC 512
#define MC_TARGET 144
#define NC 3072
#define SERIAL_FLOPS 2000000.0 /* below this, threads cost more than they save */
#define SMALL_M 256 /* up to this many rows: the column-panel schedule (A block M x KC = 512 KiB fits L2) */
#define SMALL_M_GROUP 8 /* its B panels packed together when packed by rows (8 x 64 KiB; A still within L2) */
#define SMALL_M_KSUB 16 /* K rows per packing call within a group, row-major B */

static void pack_a(const locus_gemm_desc *d, int mr, int i0, int mc, int k0, int kc, float *dst) {
    for (int ip = 0; ip < mc; ip += mr) {
        int rows = mc - ip < mr ? mc - ip : mr;
        float *p = dst + (size_t)ip * kc;
        if (d->a_cs == 1) {
            /* k outer: MR sequential read streams, contiguous writes (measured faster than row by row) */
            const float *src[LOCUS_MAX_MR];
            assert(mr <= LOCUS_MAX_MR);
            for (int r = 0; r < rows; r++) src[r] = d->A + (ptrdiff_t)(i0 + ip + r) * d->a_rs + k0;
            for (int k = 0; k < kc; k++)
                for (int r = 0; r < rows; r++) p[(size_t)k * mr + r] = src[r][k];
        } else if (d->a_rs == 1) {
            /* A transposed (dW = dY^T X of the backward): each k holds the block's rows side by side */
            const float *src = d->A + (ptrdiff_t)(i0 + ip) + (ptrdiff_t)k0 * d->a_cs;
            for (int k = 0; k < kc; k++) memcpy(p + (size_t)k * mr, src + (ptrdiff_t)k * d->a_cs, (size_t)rows * sizeof(float));
        } else {
            for (int k = 0; k < kc; k++)
                for (int r = 0; r < rows; r++)
                    p[(size_t)k * mr + r] = d->A[(ptrdiff_t)(i0 + ip + r) * d->a_rs + (ptrdiff_t)(k0 + k) * d->a_cs];
        }
        for (int r = rows; r < mr; r++)
            for (int k = 0; k < kc; k++) p[(size_t)k * mr + r] = 0.0f;
    }
}

static void pack_b_strided(const locus_gemm_desc *d, int k0, int kc, int j0, int w, int ldbp, float *dst) {
    if (d->b_cs == 1) {
        for (int k = 0; k < kc; k++) {
            const float *src = d->B + (ptrdiff_t)(k0 + k) * d->b_rs + j0;
            float *o = dst + (size_t)k * ldbp;
            memcpy(o, src, (size_t)w * sizeof(float));
            for (int j = w; j < ldbp; j++) o[j] = 0.0f;
        }
    } else {
        for (int j = 0; j < w; j++) {
            const float *src = d->B + (ptrdiff_t)(j0 + j) * d->b_cs + (ptrdiff_t)k0 * d->b_rs;
            for (int k = 0; k < kc; k++) dst[(size_t)k * ldbp + j] = src[(ptrdiff_t)k * d->b_rs];
        }
        for (int k = 0; k < kc; k++)
            for (int j = w; j < ldbp; j++) dst[(size_t)k * ldbp + j] = 0.0f;
    }
}

static void pack_b(const locus_gemm_desc *d, int k0, int kc, int j0, int w, int ldbp, float *dst) {
    if (d->pack_b) d->pack_b(d->pack_ctx, k0, kc, j0, w, ldbp, dst);
    else pack_b_strided(d, k0, kc, j0, w, ldbp, dst);
}

/* K == 0: C = bias (or 0); with accum the (empty) chain starts from C: C = C (+ bias) */
static void gemm_k0(const locus_gemm_desc *d) {
    for (int i = 0; i < d->M; i++)
        for (int j = 0; j < d->N; j++) {
            float *c = &d->C[(ptrdiff_t)i * d->ldc + j];
            float start = d->accum ? *c : 0.0f;
            *c = d->bias_kind == LOCUS_UKR_BIAS_COL ? (d->accum ? start + d->bias[j] : d->bias[j])
                 : d->bias_kind == LOCUS_UKR_BIAS_ROW ? (d->accum ? start + d->bias[i] : d->bias[i]) : start;
        }
}

/* packed-B layout: K blocks of KC rows; within block pc (kc rows) panel p (columns p*NR..) at
 * pc*npad + p*NR*kc, npad = ceil(N/NR)*NR; a panel of width w <= NR/2 is stored with row stride NR/2 */
static size_t packed_off(int pc, int kc, int p, int N, int NR) {
    size_t npad = (size_t)(N + NR - 1) / NR * NR;
    return (size_t)pc * npad + (size_t)p * NR * kc;
}

size_t locus_gemm_packed_b_floats(int N, int K) {
    int NR = locus_k()->nr;
    return (size_t)(N + NR - 1) / NR * NR * (size_t)(K > 0 ? K : 1);
}

void locus_gemm_pack_b(const locus_gemm_desc *d, float *dst) {
    const int NR = locus_k()->nr, npan = (d->N + NR - 1) / NR;
    for (int pc = 0; pc < d->K; pc += KC) {
        int kc = d->K - pc < KC ? d->K - pc : KC;
        for (int p = 0; p < npan; p++) {
            int j0 = p * NR, w = d->N - j0 < NR ? d->N - j0 : NR;
            pack_b(d, pc, kc, j0, w, w <= NR / 2 ? NR / 2 : NR, dst + packed_off(pc, kc, p, d->N, NR));
        }
    }
}

void locus_gemm_unpack_b_t(const float *packed, int N, int K, int NR, float *W) {
    const int npan = (N + NR - 1) / NR;
    for (int pc = 0; pc < K; pc += KC) {
        int kc = K - pc < KC ? K - pc : KC;
        for (int p = 0; p < npan; p++) {
            int j0 = p * NR, w = N - j0 < NR ? N - j0 : NR, ldbp = w <= NR / 2 ? NR / 2 : NR;
            const float *src = packed + packed_off(pc, kc, p, N, NR);
            for (int k = 0; k < kc; k++)
                for (int j = 0; j < w; j++) W[(size_t)(j0 + j) * K + pc + k] = src[(size_t)k * ldbp + j];
        }
    }
}

/* What every thread of one GEMM needs (gemm_run fills it, gemm_team reads it). */
typedef struct {
    const locus_gemm_desc *d;
    const locus_kernels *kt;
    int MR, NR, MC, kcmax, direct, n_ic, rows_per, nj_want;
    float *bbuf;  /* packed B panels of the current K block, shared by the team (NULL: d->packed_b) */
    float *abufs; /* [nt][MC*kcmax] packed A blocks, one per thread */
    int group;    /* gemm_team_small_m (where MC is M rounded up to MR): B panels packed together (1: one by one) */
} gemm_plan;

/* [lo, hi) of n iterations for thread tid of nt: OpenMP's schedule(static) split */
static void static_range(int n, int tid, int nt, int *lo, int *hi) {
    int q = n / nt, r = n % nt;
    *lo = tid * q + (tid < r ? tid : r);
    *hi = *lo + q + (tid < r);
}

/* One thread's share of a GEMM: thread tid of nt (nt == 1: the whole GEMM, with no OpenMP construct, so it
 * costs no team or barrier and may run inside a caller's parallel region).  With nt > 1 it must be called by
 * every thread of the team of a parallel region of nt threads.  Every output element is computed by exactly
 * one task with the same FMA chain for any nt, so the split never changes bits. */
static void gemm_team(const gemm_plan *pl, int tid, int nt) {
    const locus_gemm_desc *d = pl->d;
    const locus_kernels *kt = pl->kt;
    const int MR = pl->MR, NR = pl->NR, rows_per = pl->rows_per, n_ic = pl->n_ic, direct = pl->direct;
    float *bbuf = pl->bbuf;
    float *abuf = pl->abufs + (size_t)tid * pl->MC * pl->kcmax;
    for (int jc = 0; jc < d->N; jc += NC) {
        int nc = d->N - jc < NC ? d->N - jc : NC;
        int npan = (nc + NR - 1) / NR;
        /* split columns into nj parts so that the tasks divide evenly among the threads */
        int nj = pl->nj_want > npan ? npan : pl->nj_want;
        for (int pc = 0; pc < d->K; pc += KC) {
            int kc = d->K - pc < KC ? d->K - pc : KC;
            unsigned flags = (pc > 0 || d->accum ? LOCUS_UKR_ACCUM : 0) | (pc + kc == d->K ? d->bias_kind : 0);
            int lo, hi;
            if (!d->packed_b) {
                static_range(npan, tid, nt, &lo, &hi);
                for (int p = lo; p < hi; p++) {
                    int j0 = jc + p * NR, w = d->N - j0 < NR ? d->N - j0 : NR;
                    pack_b(d, pc, kc, j0, w, w <= NR / 2 ? NR / 2 : NR, bbuf + (size_t)p * NR * kc);
                }
                if (nt > 1) {
#pragma omp barrier
                }
            }
            static_range(n_ic * nj, tid, nt, &lo, &hi);
            for (int t = lo; t < hi; t++) {
                int ic = (t / nj) * rows_per, part = t % nj;
                int mc = d->M - ic < rows_per ? d->M - ic : rows_per;
                int p0 = (int)((long)npan * part / nj), p1 = (int)((long)npan * (part + 1) / nj);
                if (p0 == p1) continue;
                if (!direct) pack_a(d, MR, ic, mc, pc, kc, abuf);
                for (int p = p0; p < p1; p++) {
                    int j0 = jc + p * NR, w = d->N - j0 < NR ? d->N - j0 : NR;
                    size_t ldbp = w <= NR / 2 ? (size_t)NR / 2 : (size_t)NR;
                    const float *bp = d->packed_b ? d->packed_b + packed_off(pc, kc, jc / NR + p, d->N, NR)
                                                  : bbuf + (size_t)p * NR * kc;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int m = mc - ir < MR ? mc - ir : MR;
                        const float *bias = d->bias_kind == LOCUS_UKR_BIAS_COL ? d->bias + j0
                                            : d->bias_kind == LOCUS_UKR_BIAS_ROW ? d->bias + ic + ir : NULL;
                        float *cp = d->C + (ptrdiff_t)(ic + ir) * d->ldc + j0;
                        if (direct) {
                            const float *arows[LOCUS_MAX_MR];
                            for (int r = 0; r < MR; r++)
                                arows[r] = d->A + (ptrdiff_t)(ic + ir + (r < m ? r : 0)) * d->a_rs + pc;
                            kt->gemm_ukr_direct((size_t)kc, arows, bp, ldbp, cp, (size_t)d->ldc, m, w, flags, bias);
                        } else {
                            kt->gemm_ukr((size_t)kc, abuf + (size_t)ir * kc, bp, ldbp, cp, (size_t)d->ldc, m, w, flags, bias);
                        }
                    }
                }
            }
            /* the next K block repacks the shared B panels: everyone must be done with these */
            if (nt > 1 && !d->packed_b) {
#pragma omp barrier
            }
        }
    }
}

/* The column-panel schedule for few rows (M <= SMALL_M): every thread packs the whole A block of the K block
 * (M x kc, stays in its L2) and owns a contiguous range of NR-column panels, each packed into a private
 * buffer right before the M/MR micro-kernel calls that use it.  B is then read once from memory and never
 * goes through a shared packed copy, which for M <= 256 costs more than the FMAs (the row-block schedule
 * above reads every packed panel once per row block, and packs all of them before using any).  Same
 * micro-kernel calls on the same operands: same bits as the row-block schedule. */
static void gemm_team_small_m(const gemm_plan *pl, int tid, int nt) {
    const locus_gemm_desc *d = pl->d;
    const locus_kernels *kt = pl->kt;
    const int MR = pl->MR, NR = pl->NR, npan = (d->N + NR - 1) / NR;
    float *abuf = pl->abufs + (size_t)tid * pl->MC * pl->kcmax;
    float *bbuf = pl->bbuf ? pl->bbuf + (size_t)tid * pl->group * NR * pl->kcmax : NULL;
    int lo, hi;
    static_range(npan, tid, nt, &lo, &hi);
    if (lo == hi) return;
    for (int pc = 0; pc < d->K; pc += KC) {
        int kc = d->K - pc < KC ? d->K - pc : KC;
        unsigned flags = (pc > 0 || d->accum ? LOCUS_UKR_ACCUM : 0) | (pc + kc == d->K ? d->bias_kind : 0);
        pack_a(d, MR, 0, d->M, pc, kc, abuf);
        /* B by rows (row-major B, or a callback that asks for it): panels packed in groups, a few K rows at a
         * time, so that the source is read in runs of a group's width rather than one panel's 32 columns per
         * row; B by columns: panel by panel, each used right after it is packed */
        const int group = pl->group, ksub = group > 1 ? (d->pack_b ? d->pack_b_rows : SMALL_M_KSUB) : kc;
        for (int p = lo; p < hi; p++) {
            int j0 = p * NR, w = d->N - j0 < NR ? d->N - j0 : NR;
            size_t ldbp = w <= NR / 2 ? (size_t)NR / 2 : (size_t)NR;
            float *own = bbuf + (size_t)((p - lo) % group) * NR * kc;
            const float *bp = d->packed_b ? d->packed_b + packed_off(pc, kc, p, d->N, NR) : own;
            if (!d->packed_b && (p - lo) % group == 0) {
                int ng = hi - p < group ? hi - p : group;
                for (int k = 0; k < kc; k += ksub) {
                    int ks = kc - k < ksub ? kc - k : ksub;
                    for (int q = 0; q < ng; q++) {
                        int jq = (p + q) * NR, wq = d->N - jq < NR ? d->N - jq : NR, lq = wq <= NR / 2 ? NR / 2 : NR;
                        pack_b(d, pc + k, ks, jq, wq, lq, bbuf + (size_t)q * NR * kc + (size_t)k * lq);
                    }
                }
            }
            for (int ir = 0; ir < d->M; ir += MR) {
                int m = d->M - ir < MR ? d->M - ir : MR;
                const float *bias = d->bias_kind == LOCUS_UKR_BIAS_COL ? d->bias + j0
                                    : d->bias_kind == LOCUS_UKR_BIAS_ROW ? d->bias + ir : NULL;
                kt->gemm_ukr((size_t)kc, abuf + (size_t)ir * kc, bp, ldbp, d->C + (ptrdiff_t)ir * d->ldc + j0,
                             (size_t)d->ldc, m, w, flags, bias);
            }
        }
    }
}

static void gemm_run(const locus_gemm_desc *d, int nt) {
    const locus_kernels *kt = locus_k();
    const int MR = kt->mr, NR = kt->nr;
    const int MC = (MC_TARGET / MR) * MR;
    if (d->M <= 0 || d->N <= 0) return;
    if (d->K <= 0) { gemm_k0(d); return; }
    int ncmax = d->N < NC ? d->N : NC;
    int kcmax = d->K < KC ? d->K : KC;
    size_t npan_max = (size_t)(ncmax + NR - 1) / NR;
    /* few column panels: each A block would be used only once or twice, so read A in place instead of
     * packing it (same FMA order, same bits) when the table has a direct micro-kernel */
    const int direct = kt->gemm_ukr_direct && d->a_cs == 1 && (d->N + NR - 1) / NR <= 2;
    if (!direct && d->M <= SMALL_M && (d->N + NR - 1) / NR >= 2 * nt) {
        int mpad = (d->M + MR - 1) / MR * MR;
        int byrows = d->pack_b ? d->pack_b_rows > 0 : d->b_cs == 1;
        int group = d->packed_b || !byrows || kcmax <= (d->pack_b ? d->pack_b_rows : SMALL_M_KSUB) ? 1 : SMALL_M_GROUP;
        float *bb = d->packed_b ? NULL : locus_alloc((size_t)nt * group * NR * kcmax * sizeof(float));
        float *ab = locus_alloc((size_t)nt * mpad * kcmax * sizeof(float));
        assert((bb || d->packed_b) && ab);
        gemm_plan pl = {d, kt, MR, NR, mpad, kcmax, 0, 0, 0, 0, bb, ab, group};
        if (nt > 1) {
#pragma omp parallel num_threads(nt)
            gemm_team_small_m(&pl, omp_get_thread_num(), omp_get_num_threads());
        } else {
            gemm_team_small_m(&pl, 0, 1);
        }
        locus_free(bb);
        locus_free(ab);
        return;
    }
    float *bbuf = d->packed_b ? NULL : locus_alloc(npan_max * NR * kcmax * sizeof(float));
    float *abufs = locus_alloc((size_t)nt * MC * kcmax * sizeof(float));
    assert((bbuf || d->packed_b) && abufs);
    /* row blocks of equal size (a multiple of MR, at most MC), their count a multiple of the thread count
     * when there is enough work, so that static scheduling gives every thread the same amount */
    int n_ic = (d->M + MC - 1) / MC;
    if (nt > 1 && n_ic >= nt) n_ic = (n_ic + nt - 1) / nt * nt;
    int rows_per = ((d->M + n_ic - 1) / n_ic + MR - 1) / MR * MR;
    /* rounding rows to MR can make the block count odd again: prefer a slightly smaller block that keeps it a
     * multiple of the thread count (then no block is split between threads) */
    for (int rp = rows_per; nt > 1 && rp >= MR && rp * 2 >= rows_per; rp -= MR)
        if (((d->M + rp - 1) / rp) % nt == 0) { rows_per = rp; break; }
    n_ic = (d->M + rows_per - 1) / rows_per;
    int gcd = n_ic, b_ = nt;
    while (b_) { int t_ = gcd % b_; gcd = b_; b_ = t_; }
    int nj_want = nt / gcd; /* n_ic * nj is a multiple of nt */
    gemm_plan pl = {d, kt, MR, NR, MC, kcmax, direct, n_ic, rows_per, nj_want, bbuf, abufs, 1};
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        gemm_team(&pl, omp_get_thread_num(), omp_get_num_threads()); /* the team may be smaller than asked */
    } else {
        gemm_team(&pl, 0, 1);
    }
    locus_free(bbuf);
    locus_free(abufs);
}

static _Atomic unsigned long long g_flops;

double locus_gemm_flops(void) { return (double)atomic_load(&g_flops); }

void locus_gemm(const locus_gemm_desc *d) {
    double flops = 2.0 * d->M * d->N * (double)d->K;
    int nt = flops < SERIAL_FLOPS || omp_in_parallel() ? 1 : locus_threads();
    atomic_fetch_add(&g_flops, (unsigned long long)flops);
    gemm_run(d, nt);
}

void locus_gemm_serial(const locus_gemm_desc *d) {
    atomic_fetch_add(&g_flops, (unsigned long long)(2.0 * d->M * d->N * (double)d->K));
    gemm_run(d, 1);
}

void locus_gemm_batched(const locus_gemm_desc *d, int batch, ptrdiff_t a_bs, ptrdiff_t b_bs, ptrdiff_t c_bs, ptrdiff_t bias_bs) {
    double flops = 2.0 * d->M * d->N * (double)d->K;
    int nt = omp_in_parallel() ? 1 : locus_threads();
    int per_gemm = flops >= 4 * SERIAL_FLOPS && batch < 2 * nt; /* few large GEMMs: thread inside each */
    int ntb = per_gemm || batch < 2 ? 1 : nt;
    LOCUS_PAR_FOR(ntb, for (int b = 0; b < batch; b++) {
        locus_gemm_desc e = *d;
        e.A = d->A + b * a_bs;
        if (d->B) e.B = d->B + b * b_bs;
        e.C = d->C + b * c_bs;
        if (d->bias) e.bias = d->bias + b * bias_bs;
        if (ntb > 1) locus_gemm_serial(&e);
        else locus_gemm(&e);
    });
}

void locus_matmul(int M, int N, int K, const float *A, int transA, const float *B, int transB, float *C, const float *bias) {
    locus_gemm_desc d = {0};
    d.M = M; d.N = N; d.K = K;
    d.A = A; d.a_rs = transA ? 1 : K; d.a_cs = transA ? M : 1;
    d.B = B; d.b_rs = transB ? 1 : N; d.b_cs = transB ? K : 1;
    d.C = C; d.ldc = N;
    d.bias = bias; d.bias_kind = bias ? LOCUS_UKR_BIAS_COL : 0;
    locus_gemm(&d);
}

void locus_linear(const float *x, int M, int K, const float *W, const float *b, int N, float *y) {
    locus_matmul(M, N, K, x, 0, W, 1, y, b);
}
