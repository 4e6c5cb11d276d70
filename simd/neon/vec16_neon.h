/* vec16_neon.h — the 16-lane vector abstraction on AArch64 Advanced SIMD: four q registers per v16.
 * Same operations and results as simd/ref/vec16_scalar.h (see there).  max/min follow x86 semantics
 * ((a > b) ? a : b) via compare+select, not vmaxq (which differs for NaN and signed zeros). */
#ifndef LOCUS_VEC16_NEON_H
#define LOCUS_VEC16_NEON_H

#include <arm_neon.h>
#include <sleef.h>

#include "../sleef_names.h"

#define V16_BURN_ACC 6
#define V16_ISA neon
typedef struct { float32x4_t q[4]; } v16;

#define V4_LOOP(i) for (int i = 0; i < 4; i++)
static inline v16 v16_zero(void) { v16 r; V4_LOOP(i) r.q[i] = vdupq_n_f32(0.0f); return r; }
static inline v16 v16_set1(float x) { v16 r; V4_LOOP(i) r.q[i] = vdupq_n_f32(x); return r; }
static inline v16 v16_load(const float *p) { v16 r; V4_LOOP(i) r.q[i] = vld1q_f32(p + 4 * i); return r; }
static inline v16 v16_loadn(const float *p, int n, float fill) {
    float t[16];
    for (int i = 0; i < 16; i++) t[i] = i < n ? p[i] : fill;
    return v16_load(t);
}
static inline void v16_store(float *p, v16 v) { V4_LOOP(i) vst1q_f32(p + 4 * i, v.q[i]); }
static inline void v16_storen(float *p, v16 v, int n) {
    float t[16];
    v16_store(t, v);
    for (int i = 0; i < n; i++) p[i] = t[i];
}
#define V16_BIN(name, expr)                                                                                    \
    static inline v16 name(v16 a, v16 b) { V4_LOOP(i) { float32x4_t x = a.q[i], y = b.q[i]; a.q[i] = (expr); } return a; }
V16_BIN(v16_add, vaddq_f32(x, y))
V16_BIN(v16_sub, vsubq_f32(x, y))
V16_BIN(v16_mul, vmulq_f32(x, y))
V16_BIN(v16_div, vdivq_f32(x, y))
V16_BIN(v16_max, vbslq_f32(vcgtq_f32(x, y), x, y))
V16_BIN(v16_min, vbslq_f32(vcltq_f32(x, y), x, y))
#undef V16_BIN
static inline v16 v16_fma(v16 a, v16 b, v16 c) { V4_LOOP(i) c.q[i] = vfmaq_f32(c.q[i], a.q[i], b.q[i]); return c; }
static inline v16 v16_exp(v16 a) { V4_LOOP(i) a.q[i] = LOCUS_EXPF_4(a.q[i]); return a; }
static inline v16 v16_tanh(v16 a) { V4_LOOP(i) a.q[i] = LOCUS_TANHF_4(a.q[i]); return a; }
static inline v16 v16_erf(v16 a) { V4_LOOP(i) a.q[i] = LOCUS_ERFF_4(a.q[i]); return a; }
static inline void v16_sincos(v16 a, v16 *s, v16 *c) {
    V4_LOOP(i) { Sleef_float32x4_t_2 r = LOCUS_SINCOSF_4(a.q[i]); s->q[i] = r.x; c->q[i] = r.y; }
}
static inline float v16_hsum(v16 v) {
    float32x4_t a = vaddq_f32(v.q[0], v.q[2]), b = vaddq_f32(v.q[1], v.q[3]); /* lanes i + i+8 */
    float32x4_t c = vaddq_f32(a, b);                                          /* + i+4 */
    float32x2_t d = vadd_f32(vget_low_f32(c), vget_high_f32(c));              /* + i+2 */
    return vget_lane_f32(d, 0) + vget_lane_f32(d, 1);                         /* + i+1 */
}
static inline float v16_hmax(v16 v) {
    float32x4_t a = vbslq_f32(vcgtq_f32(v.q[0], v.q[2]), v.q[0], v.q[2]);
    float32x4_t b = vbslq_f32(vcgtq_f32(v.q[1], v.q[3]), v.q[1], v.q[3]);
    float32x4_t c = vbslq_f32(vcgtq_f32(a, b), a, b);
    float32x2_t l = vget_low_f32(c), h = vget_high_f32(c);
    float32x2_t d = vbsl_f32(vcgt_f32(l, h), l, h);
    float x = vget_lane_f32(d, 0), y = vget_lane_f32(d, 1);
    return x > y ? x : y;
}

#endif
