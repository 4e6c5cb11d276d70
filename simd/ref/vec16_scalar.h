/* vec16_scalar.h — the 16-lane vector abstraction in plain C (the reference for every other ISA).
 *
 * A v16 is 16 fp32 lanes.  Every ISA implements the same operations with the same IEEE results; reductions
 * use one fixed tree (lane i + lane i+8, then +4, +2, +1).  See simd/kernels_impl.h for the contract.
 */
#ifndef LOCUS_VEC16_SCALAR_H
#define LOCUS_VEC16_SCALAR_H

#include <math.h>
#include <sleef.h>
#include <string.h>

#include "../sleef_names.h"

#define V16_BURN_ACC 2
#define V16_ISA scalar
typedef struct { float f[16]; } v16;

#define V16_LOOP(i) for (int i = 0; i < 16; i++)

static inline v16 v16_zero(void) { v16 r; V16_LOOP(i) r.f[i] = 0.0f; return r; }
static inline v16 v16_set1(float x) { v16 r; V16_LOOP(i) r.f[i] = x; return r; }
static inline v16 v16_load(const float *p) { v16 r; memcpy(r.f, p, sizeof r.f); return r; }
/* first n (< 16) lanes from p, the rest `fill` */
static inline v16 v16_loadn(const float *p, int n, float fill) { v16 r; V16_LOOP(i) r.f[i] = i < n ? p[i] : fill; return r; }
static inline void v16_store(float *p, v16 v) { memcpy(p, v.f, sizeof v.f); }
static inline void v16_storen(float *p, v16 v, int n) { for (int i = 0; i < n; i++) p[i] = v.f[i]; }
static inline v16 v16_add(v16 a, v16 b) { V16_LOOP(i) a.f[i] = a.f[i] + b.f[i]; return a; }
static inline v16 v16_sub(v16 a, v16 b) { V16_LOOP(i) a.f[i] = a.f[i] - b.f[i]; return a; }
static inline v16 v16_mul(v16 a, v16 b) { V16_LOOP(i) a.f[i] = a.f[i] * b.f[i]; return a; }
static inline v16 v16_div(v16 a, v16 b) { V16_LOOP(i) a.f[i] = a.f[i] / b.f[i]; return a; }
/* a*b + c, single rounding */
static inline v16 v16_fma(v16 a, v16 b, v16 c) { V16_LOOP(i) a.f[i] = fmaf(a.f[i], b.f[i], c.f[i]); return a; }
/* max as x86 maxps: (a > b) ? a : b */
static inline v16 v16_max(v16 a, v16 b) { V16_LOOP(i) a.f[i] = a.f[i] > b.f[i] ? a.f[i] : b.f[i]; return a; }
static inline v16 v16_min(v16 a, v16 b) { V16_LOOP(i) a.f[i] = a.f[i] < b.f[i] ? a.f[i] : b.f[i]; return a; }
static inline v16 v16_exp(v16 a) { V16_LOOP(i) a.f[i] = LOCUS_EXPF_1(a.f[i]); return a; }
static inline v16 v16_tanh(v16 a) { V16_LOOP(i) a.f[i] = LOCUS_TANHF_1(a.f[i]); return a; }
static inline v16 v16_erf(v16 a) { V16_LOOP(i) a.f[i] = LOCUS_ERFF_1(a.f[i]); return a; }
static inline void v16_sincos(v16 a, v16 *s, v16 *c) {
    V16_LOOP(i) { Sleef_float_2 r = LOCUS_SINCOSF_1(a.f[i]); s->f[i] = r.x; c->f[i] = r.y; }
}
static inline float v16_hsum(v16 v) {
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) v.f[i] = v.f[i] + v.f[i + w];
    return v.f[0];
}
static inline float v16_hmax(v16 v) {
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) v.f[i] = v.f[i] > v.f[i + w] ? v.f[i] : v.f[i + w];
    return v.f[0];
}

#endif
