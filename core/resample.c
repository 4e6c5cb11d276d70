/* resample.c — Pillow-exact bicubic resizing of 8-bit images (see resample.h).
 *
 * Written from the description of the algorithm (Pillow's libImaging/Resample.c behaviour), not from its
 * code.  Every floating-point step below is the same sequence of IEEE double operations as the reference, in
 * the same order (the file is compiled with -ffp-contract=off), so the integer weights — and therefore the
 * output bytes — are the same.
 */
#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { FIX_BITS = 22 }; /* 32 - 8 (pixel) - 2 (headroom for negative lobes and sums above 1) */

/* Keys' cubic convolution kernel with a = -0.5, support 2. */
static double cubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* One axis: for every output index o, first[o] and count[o] give the source window and
 * w[o * *taps + j] (j < count[o]) its fixed-point weights.  Returns NULL-free buffers or LOCUS_E_NOMEM. */
typedef struct {
    int taps;
    int *first, *count;
    int32_t *w;
} axis_filter;

static void axis_free(axis_filter *f) {
    free(f->first); free(f->count); free(f->w);
    memset(f, 0, sizeof *f);
}

static locus_status axis_make(axis_filter *f, int in, int out) {
    memset(f, 0, sizeof *f);
    double scale = (double)(float)in / out; /* the reference's box width is a float */
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * fscale;
    f->taps = (int)ceil(support) * 2 + 1;
    f->first = malloc((size_t)out * sizeof *f->first);
    f->count = malloc((size_t)out * sizeof *f->count);
    f->w = calloc((size_t)out * f->taps, sizeof *f->w);
    double *tmp = malloc((size_t)f->taps * sizeof *tmp);
    if (!f->first || !f->count || !f->w || !tmp) {
        free(tmp);
        axis_free(f);
        return locus_fail(LOCUS_E_NOMEM, "resize: out of memory (%d -> %d)", in, out);
    }
    double inv = 1.0 / fscale;
    for (int o = 0; o < out; o++) {
        double center = 0.0 + (o + 0.5) * scale;
        int lo = (int)(center - support + 0.5); /* truncation toward zero, then clamped */
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int n = hi - lo;
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            tmp[j] = cubic(((double)(j + lo) - center + 0.5) * inv);
            sum += tmp[j];
        }
        int32_t *w = f->w + (size_t)o * f->taps;
        for (int j = 0; j < n; j++) {
            double v = sum != 0.0 ? tmp[j] / sum : tmp[j];
            w[j] = v < 0 ? (int32_t)(-0.5 + v * (1 << FIX_BITS)) : (int32_t)(0.5 + v * (1 << FIX_BITS));
        }
        f->first[o] = lo;
        f->count[o] = n;
    }
    free(tmp);
    return LOCUS_OK;
}

static inline uint8_t fix_to_u8(int64_t acc) {
    if (acc < 0) return 0;
    acc >>= FIX_BITS;
    return acc > 255 ? 255 : (uint8_t)acc;
}

/* src [H, W, C] -> dst [H, OW, C] along x */
static void pass_x(const uint8_t *src, int W, int H, int C, const axis_filter *f, uint8_t *dst, int OW) {
    for (int y = 0; y < H; y++) {
        const uint8_t *row = src + (size_t)y * W * C;
        for (int o = 0; o < OW; o++) {
            const int32_t *w = f->w + (size_t)o * f->taps;
            const uint8_t *p = row + (size_t)f->first[o] * C;
            for (int c = 0; c < C; c++) {
                int64_t acc = 1 << (FIX_BITS - 1);
                for (int j = 0; j < f->count[o]; j++) acc += (int64_t)p[(size_t)j * C + c] * w[j];
                dst[((size_t)y * OW + o) * C + c] = fix_to_u8(acc);
            }
        }
    }
}

/* src [H, W, C] -> dst [OH, W, C] along y */
static void pass_y(const uint8_t *src, int W, int C, const axis_filter *f, uint8_t *dst, int OH) {
    size_t stride = (size_t)W * C;
    for (int o = 0; o < OH; o++) {
        const int32_t *w = f->w + (size_t)o * f->taps;
        const uint8_t *p = src + (size_t)f->first[o] * stride;
        for (size_t i = 0; i < stride; i++) {
            int64_t acc = 1 << (FIX_BITS - 1);
            for (int j = 0; j < f->count[o]; j++) acc += (int64_t)p[(size_t)j * stride + i] * w[j];
            dst[(size_t)o * stride + i] = fix_to_u8(acc);
        }
    }
}

locus_status locus_resize_bicubic_u8(const uint8_t *src, int W, int H, int C, uint8_t *dst, int OW, int OH) {
    if (W <= 0 || H <= 0 || OW <= 0 || OH <= 0 || C < 1 || C > 4 || W > (1 << 20) || H > (1 << 20) || OW > (1 << 20) || OH > (1 << 20))
        return locus_fail(LOCUS_E_ARG, "resize: bad sizes %dx%d -> %dx%d (%d channels)", W, H, OW, OH, C);
    int need_x = OW != W, need_y = OH != H;
    if (!need_x && !need_y) {
        memcpy(dst, src, (size_t)W * H * C);
        return LOCUS_OK;
    }
    axis_filter fx = {0}, fy = {0};
    locus_status st = LOCUS_OK;
    uint8_t *mid = NULL;
    if (need_x && (st = axis_make(&fx, W, OW))) goto done;
    if (need_y && (st = axis_make(&fy, H, OH))) goto done;
    if (need_x && need_y) {
        mid = malloc((size_t)OW * H * C);
        if (!mid) { st = locus_fail(LOCUS_E_NOMEM, "resize: out of memory"); goto done; }
        pass_x(src, W, H, C, &fx, mid, OW);
        pass_y(mid, OW, C, &fy, dst, OH);
    } else if (need_x) {
        pass_x(src, W, H, C, &fx, dst, OW);
    } else {
        pass_y(src, W, C, &fy, dst, OH);
    }
done:
    free(mid);
    axis_free(&fx);
    axis_free(&fy);
    return st;
}

void locus_resize_shorter_side(int W, int H, int n, int *OW, int *OH) {
    int s = W <= H ? W : H, l = W <= H ? H : W;
    int nl = (int)((double)((long long)n * l) / s);
    *OW = W <= H ? n : nl;
    *OH = W <= H ? nl : n;
}

int locus_center_crop_offset(int size, int crop) {
    int d = size - crop; /* round(d / 2) with ties to even */
    if (d % 2 == 0) return d / 2;
    int k = (d - 1) / 2; /* d odd: d / 2 = k + 0.5 exactly, k = floor(d / 2) for either sign */
    return k % 2 == 0 ? k : k + 1;
}
