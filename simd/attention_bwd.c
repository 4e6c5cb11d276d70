/* attention_bwd.c — backward of scaled dot-product attention (locus_attention), per (batch, head), tiled over
 * query blocks.
 *
 * For one (b, h) and a block of queries: P = softmax(scale * Q_blk.K^T + mask) is read from the forward's
 * f->probs when the caller kept them, else recomputed with the forward's own operations (a GEMM with one FMA
 * chain over d per score, then the softmax row kernel; a row's scores never depend on its block), so it
 * has the forward's bits either way; then
 *   dV (+)= P^T . dO_blk          GEMM, one FMA chain over the block's queries, continued through dV in memory
 *   dP = dO_blk . V^T             GEMM, one FMA chain over d
 *   dS = (P * (dP - rowsum(P * dP))) * scale     row kernels (16-lane dot, elementwise)
 *   dQ_blk (+)= dS . K            GEMM, one chain over keys
 *   dK (+)= dS^T . Q_blk          GEMM, chain over the block's queries, continued through dK in memory
 * Blocks run in query order and every block after the first accumulates (the GEMM's accum), so each dK / dV
 * element is ONE FMA chain over all queries in order, whatever the block size (as the GEMM itself carries its
 * K-blocks through C).  rowsum(P * dP) equals rowsum(dO * O) (the usual form) but needs no O, so the forward
 * output buffer may have been reused.  Memory: block x Tk floats per (b, h) in flight for dS, and as much again for
 * P unless the forward's probabilities are given (block chosen to keep that under BLOCK_BYTES).  The (b, h) pairs run in parallel with single-threaded GEMMs when there are
 * at least as many as threads; otherwise one at a time with threaded GEMMs.  Same bits either way.
 */
#include <assert.h>
#include <omp.h>

#include "par.h"
#include "../core/arena.h"
#include "ops_bwd.h"

#define BLOCK_BYTES (32.0 * 1024 * 1024) /* P + dS of one query block */

static int g_force_block; /* tests: query rows per block (0: automatic) */

void locus_attention_bwd_block_rows(int rows) { g_force_block = rows > 0 ? rows : 0; }

static int block_rows(int Tq, int Tk) {
    if (g_force_block) return g_force_block < Tq ? g_force_block : (Tq > 0 ? Tq : 1);
    double per_row = 2.0 * (Tk > 0 ? Tk : 1) * sizeof(float);
    int qb = (int)(BLOCK_BYTES / per_row) / 64 * 64;
    if (qb < 64) qb = 64;
    return qb < Tq ? qb : (Tq > 0 ? Tq : 1);
}

/* C[rows, Tk] = X_blk . Y^T: X rows of D with stride x_ts, Y's Tk rows of D with stride y_ts (one FMA chain
 * over d per element: the scores Q.K^T as the forward computes them, and dP = dO.V^T) */
static void rows_by_keys(void (*gemm)(const locus_gemm_desc *), const float *x, ptrdiff_t x_ts, const float *y, ptrdiff_t y_ts,
                         int rows, int Tk, int D, float *c) {
    locus_gemm_desc g = {0};
    g.M = rows; g.N = Tk; g.K = D;
    g.A = x; g.a_rs = x_ts; g.a_cs = 1;
    g.B = y; g.b_rs = 1; g.b_cs = y_ts;
    g.C = c; g.ldc = Tk;
    gemm(&g);
}

static void attn_bwd_bh(const locus_attn_desc *f, const float *do_, float *dq, float *dk, float *dv, int accum, int b,
                        int h, int qb, float *Pbuf, float *dS, int nt) {
    const locus_row_kernels *rk = locus_k()->row;
    void (*gemm)(const locus_gemm_desc *) = nt > 1 ? locus_gemm : locus_gemm_serial;
    const int Tk = f->Tk, D = f->D;
    const ptrdiff_t hd = (ptrdiff_t)h * D;
    const float *k = f->k + b * f->k_bs + hd, *v = f->v + b * f->v_bs + hd; /* rows of D, strides k_ts, v_ts */
    for (int i0 = 0; i0 < f->Tq; i0 += qb) {
        const int rows = f->Tq - i0 < qb ? f->Tq - i0 : qb, cont = accum || i0 > 0;
        const float *q = f->q + b * f->q_bs + (ptrdiff_t)i0 * f->q_ts + hd;   /* [rows, D], stride q_ts */
        const float *dob = do_ + b * f->o_bs + (ptrdiff_t)i0 * f->o_ts + hd; /* [rows, D], stride o_ts */
        const float *P = Pbuf; /* [rows, Tk] */
        if (f->probs) {
            P = f->probs + (((size_t)b * f->H + h) * f->Tq + i0) * Tk; /* the forward's [rows, Tk] */
        } else { /* P[rows, Tk] = Q_blk . K^T, then softmax(P * scale + mask) per row, as the forward */
            rows_by_keys(gemm, q, f->q_ts, k, f->k_ts, rows, Tk, D, Pbuf);
            LOCUS_PAR_FOR(nt, for (int i = 0; i < rows; i++) {
                const float *mask = f->mask ? f->mask + b * f->mask_bs + (ptrdiff_t)h * f->mask_hs + (ptrdiff_t)(i0 + i) * f->mask_qs : NULL;
                rk->softmax(Pbuf + (size_t)i * Tk, Pbuf + (size_t)i * Tk, (size_t)Tk, f->scale, mask);
            });
        }
        if (dv) { /* dV[Tk, D] (+)= P^T . dO_blk */
            locus_gemm_desc d = {0};
            d.M = Tk; d.N = D; d.K = rows;
            d.A = P; d.a_rs = 1; d.a_cs = Tk;
            d.B = dob; d.b_rs = f->o_ts; d.b_cs = 1;
            d.C = dv + b * f->v_bs + hd; d.ldc = f->v_ts;
            d.accum = cont;
            gemm(&d);
        }
        if (!dq && !dk) continue;
        /* dP[rows, Tk] = dO_blk . V^T (into dS), then dS in place */
        rows_by_keys(gemm, dob, f->o_ts, v, f->v_ts, rows, Tk, D, dS);
        LOCUS_PAR_FOR(nt, for (int i = 0; i < rows; i++) {
            const float *p = P + (size_t)i * Tk; /* [Tk] */
            float *s = dS + (size_t)i * Tk;     /* [Tk] */
            rk->softmax_bwd(p, s, s, (size_t)Tk, rk->rdot(p, s, (size_t)Tk), f->scale);
        });
        if (dq) { /* dQ_blk[rows, D] (+)= dS . K */
            locus_gemm_desc e = {0};
            e.M = rows; e.N = D; e.K = Tk;
            e.A = dS; e.a_rs = Tk; e.a_cs = 1;
            e.B = k; e.b_rs = f->k_ts; e.b_cs = 1;
            e.C = dq + b * f->q_bs + (ptrdiff_t)i0 * f->q_ts + hd; e.ldc = f->q_ts;
            e.accum = accum;
            gemm(&e);
        }
        if (dk) { /* dK[Tk, D] (+)= dS^T . Q_blk */
            locus_gemm_desc e = {0};
            e.M = Tk; e.N = D; e.K = rows;
            e.A = dS; e.a_rs = 1; e.a_cs = Tk;
            e.B = q; e.b_rs = f->q_ts; e.b_cs = 1;
            e.C = dk + b * f->k_bs + hd; e.ldc = f->k_ts;
            e.accum = cont;
            gemm(&e);
        }
    }
}

void locus_attention_bwd(const locus_attn_desc *f, const float *do_, float *dq, float *dk, float *dv, int accum) {
    if (!dq && !dk && !dv) return;
    if (f->Tq <= 0) { /* no queries: dK, dV are empty chains (0, or unchanged with accum); dQ is empty */
        for (int b = 0; b < f->B && !accum; b++)
            for (int j = 0; j < f->Tk; j++)
                for (int c = 0; c < f->H * f->D; c++) {
                    if (dk) dk[b * f->k_bs + (ptrdiff_t)j * f->k_ts + c] = 0.0f;
                    if (dv) dv[b * f->v_bs + (ptrdiff_t)j * f->v_ts + c] = 0.0f;
                }
        return;
    }
    const long nbh = (long)f->B * f->H;
    const int qb = block_rows(f->Tq, f->Tk);
    const size_t pp = (size_t)qb * (f->Tk > 0 ? f->Tk : 1) + 16; /* floats per P or dS buffer */
    int nt = omp_in_parallel() ? 1 : locus_threads();
    int par = nt > 1 && nbh >= nt;
    int nbuf = par ? nt : 1, per = f->probs ? 1 : 2; /* dS, and P unless the forward's are given */
    float *buf = locus_alloc((size_t)nbuf * per * pp * sizeof(float));
    assert(buf);
    if (par) {
#pragma omp parallel for schedule(static) num_threads(nt)
        for (long bh = 0; bh < nbh; bh++) {
            float *slot = buf + (size_t)omp_get_thread_num() * per * pp;
            attn_bwd_bh(f, do_, dq, dk, dv, accum, (int)(bh / f->H), (int)(bh % f->H), qb, per > 1 ? slot : NULL,
                        slot + (per - 1) * pp, 1);
        }
    } else {
        for (long bh = 0; bh < nbh; bh++)
            attn_bwd_bh(f, do_, dq, dk, dv, accum, (int)(bh / f->H), (int)(bh % f->H), qb, per > 1 ? buf : NULL,
                        buf + (per - 1) * pp, nt);
    }
    locus_free(buf);
}
