/* attention.c — scaled dot-product attention, tiled over query blocks, threaded over (batch, head, block).
 *
 * K^T and V of every (batch, head) are packed once into GEMM panel layout (phase 1, threaded over batch x
 * heads).  Then for each task: S = Q_blk . K^T (GEMM, one chain over d per score), per row
 * softmax(S*scale + mask) with the 16-lane reduction kernel, then O_blk = P . V (GEMM, one chain over keys
 * in order).  A row's result does not depend on the block it is in or on which thread runs it.
 * Memory: packed K and V (about the size of K and V) plus QB x Tk scores per thread.
 */
#include <assert.h>
#include <omp.h>

#include "par.h"
#include "../core/arena.h"
#include "ops.h"

#define QB 64

void locus_attention(const locus_attn_desc *d) {
    const locus_kernels *kt = locus_k();
    int nqb = (d->Tq + QB - 1) / QB;
    long ntask = (long)d->B * d->H * nqb;
    int nt = omp_in_parallel() ? 1 : locus_threads();
    if (ntask < nt) nt = (int)ntask;
    if ((double)d->Tq * d->Tk * d->D * d->B * d->H < 1e5) nt = 1;
    float *sbuf = locus_alloc_act((size_t)(nt > 0 ? nt : 1) * QB * (d->Tk > 0 ? d->Tk : 1) * sizeof(float), "attention scores");
    size_t kpk = locus_gemm_packed_b_floats(d->Tk, d->D), vpk = locus_gemm_packed_b_floats(d->D, d->Tk);
    long nbh = (long)d->B * d->H;
    float *kp = locus_alloc_act(kpk * nbh * sizeof(float), "attention K"), *vp = locus_alloc_act(vpk * nbh * sizeof(float), "attention V");
    assert(sbuf && kp && vp);
    int ntp = nbh < nt ? (int)nbh : nt;
    LOCUS_PAR_FOR(ntp, for (long bh = 0; bh < nbh; bh++) {
        int h = (int)(bh % d->H), b = (int)(bh / d->H);
        locus_gemm_desc g = {0};
        g.N = d->Tk; g.K = d->D; /* B(k=d, j=key) = K[key, d] */
        g.B = d->k + b * d->k_bs + (ptrdiff_t)h * d->D; g.b_rs = 1; g.b_cs = d->k_ts;
        locus_gemm_pack_b(&g, kp + kpk * bh);
        locus_gemm_desc o = {0};
        o.N = d->D; o.K = d->Tk; /* B(k=key, j=d) = V[key, d] */
        o.B = d->v + b * d->v_bs + (ptrdiff_t)h * d->D; o.b_rs = d->v_ts; o.b_cs = 1;
        locus_gemm_pack_b(&o, vp + vpk * bh);
    });
    LOCUS_PAR_FOR(nt, for (long t = 0; t < ntask; t++) {
        int qb = (int)(t % nqb), h = (int)(t / nqb % d->H), b = (int)(t / nqb / d->H);
        int i0 = qb * QB, rows = d->Tq - i0 < QB ? d->Tq - i0 : QB;
        float *s = d->probs ? d->probs + (((size_t)b * d->H + h) * d->Tq + i0) * d->Tk
                            : sbuf + (size_t)(nt > 1 ? omp_get_thread_num() : 0) * QB * d->Tk; /* serial: slot 0, even inside a caller's team */
        locus_gemm_desc g = {0};
        g.M = rows; g.N = d->Tk; g.K = d->D;
        g.A = d->q + b * d->q_bs + (ptrdiff_t)i0 * d->q_ts + (ptrdiff_t)h * d->D; g.a_rs = d->q_ts; g.a_cs = 1;
        g.packed_b = kp + kpk * ((long)b * d->H + h);
        g.C = s; g.ldc = d->Tk;
        locus_gemm_serial(&g);
        for (int i = 0; i < rows; i++) {
            const float *mask = d->mask ? d->mask + b * d->mask_bs + (ptrdiff_t)h * d->mask_hs + (ptrdiff_t)(i0 + i) * d->mask_qs : NULL;
            kt->row->softmax(s + (size_t)i * d->Tk, s + (size_t)i * d->Tk, (size_t)d->Tk, d->scale, mask);
        }
        locus_gemm_desc o = {0};
        o.M = rows; o.N = d->D; o.K = d->Tk;
        o.A = s; o.a_rs = d->Tk; o.a_cs = 1;
        o.packed_b = vp + vpk * ((long)b * d->H + h);
        o.C = d->o + b * d->o_bs + (ptrdiff_t)i0 * d->o_ts + (ptrdiff_t)h * d->D; o.ldc = d->o_ts;
        locus_gemm_serial(&o);
    });
    locus_free(sbuf);
    locus_free(kp);
    locus_free(vp);
}
