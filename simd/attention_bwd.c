/* attention_bwd.c — backward of scaled dot-product attention (locus_attention), per (batch, head).
 *
 * For one (b, h): P = softmax(scale * Q.K^T + mask) is recomputed with the forward's own operations (a GEMM
 * with one FMA chain over d per score, then the softmax row kernel), so it has the forward's bits; then
 *   dV = P^T . dO            GEMM, one FMA chain over queries i per element
 *   dP = dO . V^T            GEMM, one FMA chain over d
 *   dS = (P * (dP - rowsum(P * dP))) * scale     row kernels (16-lane dot, elementwise)
 *   dQ = dS . K,  dK = dS^T . Q                  GEMMs, chains over keys / queries in order
 * rowsum(P * dP) equals rowsum(dO * O) (the usual form) but needs no O, so the forward output buffer may have
 * been reused.  The (b, h) pairs run in parallel with single-threaded GEMMs when there are enough of them and
 * the P / dS buffers (2 x Tq x Tk floats per thread) are small; otherwise one pair at a time with threaded
 * GEMMs.  GEMM results do not depend on threading, so the bits are the same either way.
 */
#include <assert.h>
#include <omp.h>

#include "../core/arena.h"
#include "ops_bwd.h"

#define PAR_BYTES (256.0 * 1024 * 1024) /* max bytes of P/dS buffers in flight when running pairs in parallel */

static void attn_bwd_bh(const locus_attn_desc *f, const float *do_, float *dq, float *dk, float *dv, int accum, int b,
                        int h, float *P, float *dS, int nt) {
    const locus_row_kernels *rk = locus_k()->row;
    void (*gemm)(const locus_gemm_desc *) = nt > 1 ? locus_gemm : locus_gemm_serial;
    const int Tq = f->Tq, Tk = f->Tk, D = f->D;
    const ptrdiff_t hd = (ptrdiff_t)h * D;
    const float *q = f->q + b * f->q_bs + hd, *k = f->k + b * f->k_bs + hd, *v = f->v + b * f->v_bs + hd; /* rows of D */
    const float *dob = do_ + b * f->o_bs + hd;
    /* P[Tq, Tk] = Q . K^T, then softmax(P * scale + mask) per row, as the forward */
    locus_gemm_desc g = {0};
    g.M = Tq; g.N = Tk; g.K = D;
    g.A = q; g.a_rs = f->q_ts; g.a_cs = 1;
    g.B = k; g.b_rs = 1; g.b_cs = f->k_ts;
    g.C = P; g.ldc = Tk;
    gemm(&g);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int i = 0; i < Tq; i++) {
        const float *mask = f->mask ? f->mask + b * f->mask_bs + (ptrdiff_t)h * f->mask_hs + (ptrdiff_t)i * f->mask_qs : NULL;
        rk->softmax(P + (size_t)i * Tk, P + (size_t)i * Tk, (size_t)Tk, f->scale, mask);
    }
    if (dv) { /* dV[Tk, D] (+)= P^T . dO */
        locus_gemm_desc d = {0};
        d.M = Tk; d.N = D; d.K = Tq;
        d.A = P; d.a_rs = 1; d.a_cs = Tk;
        d.B = dob; d.b_rs = f->o_ts; d.b_cs = 1;
        d.C = dv + b * f->v_bs + hd; d.ldc = f->v_ts;
        d.accum = accum;
        gemm(&d);
    }
    if (!dq && !dk) return;
    /* dP[Tq, Tk] = dO . V^T (into dS), then dS in place */
    locus_gemm_desc d = {0};
    d.M = Tq; d.N = Tk; d.K = D;
    d.A = dob; d.a_rs = f->o_ts; d.a_cs = 1;
    d.B = v; d.b_rs = 1; d.b_cs = f->v_ts;
    d.C = dS; d.ldc = Tk;
    gemm(&d);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int i = 0; i < Tq; i++) {
        const float *p = P + (size_t)i * Tk; /* [Tk] */
        float *s = dS + (size_t)i * Tk;     /* [Tk] */
        rk->softmax_bwd(p, s, s, (size_t)Tk, rk->rdot(p, s, (size_t)Tk), f->scale);
    }
    if (dq) { /* dQ[Tq, D] (+)= dS . K */
        locus_gemm_desc e = {0};
        e.M = Tq; e.N = D; e.K = Tk;
        e.A = dS; e.a_rs = Tk; e.a_cs = 1;
        e.B = k; e.b_rs = f->k_ts; e.b_cs = 1;
        e.C = dq + b * f->q_bs + hd; e.ldc = f->q_ts;
        e.accum = accum;
        gemm(&e);
    }
    if (dk) { /* dK[Tk, D] (+)= dS^T . Q */
        locus_gemm_desc e = {0};
        e.M = Tk; e.N = D; e.K = Tq;
        e.A = dS; e.a_rs = 1; e.a_cs = Tk;
        e.B = q; e.b_rs = f->q_ts; e.b_cs = 1;
        e.C = dk + b * f->k_bs + hd; e.ldc = f->k_ts;
        e.accum = accum;
        gemm(&e);
    }
}

void locus_attention_bwd(const locus_attn_desc *f, const float *do_, float *dq, float *dk, float *dv, int accum) {
    if (!dq && !dk && !dv) return;
    const long nbh = (long)f->B * f->H;
    const size_t pp = (size_t)f->Tq * f->Tk + 16; /* floats per P or dS buffer */
    int nt = omp_in_parallel() ? 1 : locus_threads();
    int par = nt > 1 && nbh >= nt && (double)nt * 2 * pp * sizeof(float) <= PAR_BYTES;
    int nbuf = par ? nt : 1;
    float *buf = locus_alloc((size_t)nbuf * 2 * pp * sizeof(float));
    assert(buf);
    if (par) {
#pragma omp parallel for schedule(static) num_threads(nt)
        for (long bh = 0; bh < nbh; bh++) {
            float *P = buf + (size_t)omp_get_thread_num() * 2 * pp;
            attn_bwd_bh(f, do_, dq, dk, dv, accum, (int)(bh / f->H), (int)(bh % f->H), P, P + pp, 1);
        }
    } else {
        for (long bh = 0; bh < nbh; bh++)
            attn_bwd_bh(f, do_, dq, dk, dv, accum, (int)(bh / f->H), (int)(bh % f->H), buf, buf + pp, nt);
    }
    locus_free(buf);
}
