/* draw.c — canvas, bitmap font and figures (see draw.h). */
#include "draw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/png.h"

/* 5x7 glyphs for ' ' .. '_' (ASCII 32-95), one byte per row, bit 4 = leftmost column.  Drawn for this project. */
static const uint8_t font5x7[64][7] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /*   */ {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}, /* ! */
    {0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00}, /* " */ {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}, /* # */
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04}, /* $ */ {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}, /* % */
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D}, /* & */ {0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00}, /* ' */
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}, /* ( */ {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, /* ) */
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}, /* * */ {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}, /* + */
    {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}, /* , */ {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}, /* - */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}, /* . */ {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}, /* / */
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, /* 0 */ {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* 1 */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, /* 2 */ {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}, /* 3 */
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, /* 4 */ {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}, /* 5 */
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, /* 6 */ {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, /* 8 */ {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}, /* 9 */
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}, /* : */ {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}, /* ; */
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}, /* < */ {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}, /* = */
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}, /* > */ {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}, /* ? */
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E}, /* @ */ {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}, /* A */
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}, /* B */ {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}, /* C */
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}, /* D */ {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}, /* E */
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}, /* F */ {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}, /* G */
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}, /* H */ {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* I */
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}, /* J */ {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, /* K */
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}, /* L */ {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}, /* M */
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}, /* N */ {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, /* O */
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}, /* P */ {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}, /* Q */
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}, /* R */ {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}, /* S */
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, /* T */ {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, /* U */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}, /* V */ {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}, /* W */
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}, /* X */ {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}, /* Y */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}, /* Z */ {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}, /* [ */
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00}, /* \ */ {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}, /* ] */
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00}, /* ^ */ {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}, /* _ */
};

locus_status locus_canvas_new(locus_canvas *c, int w, int h) {
    c->px = NULL;
    if (w <= 0 || h <= 0 || (long long)w * h > (1LL << 28)) return locus_fail(LOCUS_E_ARG, "figure of %dx%d pixels is too large", w, h);
    c->w = w;
    c->h = h;
    c->px = malloc((size_t)w * h * 3);
    if (!c->px) return locus_fail(LOCUS_E_NOMEM, "out of memory for a %dx%d figure", w, h);
    memset(c->px, 255, (size_t)w * h * 3);
    return LOCUS_OK;
}

void locus_canvas_free(locus_canvas *c) {
    free(c->px);
    c->px = NULL;
}

void locus_draw_rect(locus_canvas *c, int x, int y, int w, int h, uint32_t rgb) {
    for (int j = y < 0 ? 0 : y; j < y + h && j < c->h; j++)
        for (int i = x < 0 ? 0 : x; i < x + w && i < c->w; i++) {
            uint8_t *p = c->px + ((size_t)j * c->w + i) * 3;
            p[0] = (uint8_t)(rgb >> 16);
            p[1] = (uint8_t)(rgb >> 8);
            p[2] = (uint8_t)rgb;
        }
}

int locus_text_width(const char *s, int scale) {
    int n = (int)strlen(s);
    return n ? (n * 6 - 1) * scale : 0;
}

int locus_draw_text(locus_canvas *c, int x, int y, int scale, uint32_t rgb, const char *s) {
    int x0 = x;
    for (; *s; s++) {
        int ch = (unsigned char)*s;
        if (ch >= 'a' && ch <= 'z') ch -= 32;
        if (ch == '{') ch = '(';
        if (ch == '}') ch = ')';
        if (ch < 32 || ch > 95) ch = '?';
        const uint8_t *g = font5x7[ch - 32];
        for (int r = 0; r < 7; r++)
            for (int b = 0; b < 5; b++)
                if (g[r] >> (4 - b) & 1) locus_draw_rect(c, x + b * scale, y + r * scale, scale, scale, rgb);
        x += 6 * scale;
    }
    return x - x0;
}

void locus_draw_image(locus_canvas *c, int x, int y, const uint8_t *pix, int w, int h, int scale) {
    for (int j = 0; j < h * scale; j++) {
        int yy = y + j;
        if (yy < 0 || yy >= c->h) continue;
        for (int i = 0; i < w * scale; i++) {
            int xx = x + i;
            if (xx < 0 || xx >= c->w) continue;
            memcpy(c->px + ((size_t)yy * c->w + xx) * 3, pix + ((size_t)(j / scale) * w + i / scale) * 3, 3);
        }
    }
}

locus_status locus_bar_chart(const char *path, const char *title, int n, const char *const *labels, const double *a,
                             const char *a_name, const double *b, const char *b_name) {
    const int s = 2, lh = LOCUS_FONT_H * s, pad = 12, barw = 400;
    int lw = 0;
    for (int i = 0; i < n; i++) {
        int t = locus_text_width(labels[i], s);
        if (t > lw) lw = t;
    }
    int row = b ? 2 * lh + 14 : lh + 8;
    int W = pad + lw + pad + barw + pad + locus_text_width("0.000", s) + pad;
    int tw = locus_text_width(title, s) + 2 * pad;
    int legw = pad + lw + pad + lh + 6 + locus_text_width(a_name, s) + 20 + (b ? lh + 6 + locus_text_width(b_name, s) : 0) + pad;
    if (W < tw) W = tw;
    if (W < legw) W = legw;
    int top = pad + lh + pad + lh + pad; /* title, legend */
    int H = top + n * row + pad + lh + pad;
    locus_canvas c;
    locus_status st = locus_canvas_new(&c, W, H);
    if (st) return st;
    const uint32_t ca = 0x3465A4, cb = 0xA0A0A0, ink = 0x202020, grid = 0xE0E0E0;
    locus_draw_text(&c, pad, pad, s, ink, title);
    int x0 = pad + lw + pad, ly = pad + lh + pad;
    locus_draw_rect(&c, x0, ly, lh, lh, ca);
    int lx = x0 + lh + 6 + locus_draw_text(&c, x0 + lh + 6, ly, s, ink, a_name) + 20;
    if (b) {
        locus_draw_rect(&c, lx, ly, lh, lh, cb);
        locus_draw_text(&c, lx + lh + 6, ly, s, ink, b_name);
    }
    for (int t = 0; t <= 4; t++) locus_draw_rect(&c, x0 + t * barw / 4, top - 4, 1, n * row + 4, grid);
    for (int i = 0; i < n; i++) {
        int y = top + i * row;
        locus_draw_text(&c, x0 - pad - locus_text_width(labels[i], s), y + (b ? lh / 2 + 2 : 0), s, ink, labels[i]);
        double va = a[i] < 0 ? 0 : a[i] > 1 ? 1 : a[i];
        locus_draw_rect(&c, x0, y, (int)(va * barw + 0.5), lh, ca);
        char v[32];
        snprintf(v, sizeof v, "%.3f", a[i]);
        locus_draw_text(&c, x0 + barw + pad, y, s, ink, v);
        if (b) {
            double vb = b[i] < 0 ? 0 : b[i] > 1 ? 1 : b[i];
            locus_draw_rect(&c, x0, y + lh + 4, (int)(vb * barw + 0.5), lh, cb);
            snprintf(v, sizeof v, "%.3f", b[i]);
            locus_draw_text(&c, x0 + barw + pad, y + lh + 4, s, 0x707070, v);
        }
    }
    int ay = top + n * row + 4;
    for (int t = 0; t <= 4; t++) {
        char v[8];
        snprintf(v, sizeof v, "%.2f", t / 4.0);
        locus_draw_text(&c, x0 + t * barw / 4 - locus_text_width(v, s) / 2, ay, s, ink, v);
    }
    st = locus_png_write(path, c.px, c.w, c.h, 3, NULL, 0);
    locus_canvas_free(&c);
    return st;
}

/* ---- line chart (training loss curves) ---- */

static void plot_px(locus_canvas *c, int x, int y, int r, uint32_t rgb) { locus_draw_rect(c, x - r / 2, y - r / 2, r, r, rgb); }

static void draw_line(locus_canvas *c, int x0, int y0, int x1, int y1, int r, uint32_t rgb) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) { /* Bresenham */
        plot_px(c, x0, y0, r, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) { e += dy; x0 += sx; }
        if (e2 <= dx) { e += dx; y0 += sy; }
    }
}

locus_status locus_line_chart(const char *path, const char *title, const float *y, int n, int logy) {
    const int s = 2, lh = LOCUS_FONT_H * s, pad = 12, pw = 600, ph = 300;
    int left = pad + locus_text_width("-0.000", s) + pad, top = pad + lh + pad + lh + pad;
    int W = left + pw + 2 * pad, H = top + ph + pad + lh + pad + lh + pad;
    if (n < 1) return locus_fail(LOCUS_E_ARG, "line chart %s: no values", path);
    /* values as plotted (log10 when logy; non-positive or non-finite values are skipped) */
    double lo = 1e300, hi = -1e300;
    for (int i = 0; i < n; i++) {
        double v = y[i];
        if (!(v == v) || v > 1e30 || v < -1e30 || (logy && v <= 0)) continue;
        v = logy ? log10(v) : v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    if (lo > hi) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
    locus_canvas c;
    locus_status st = locus_canvas_new(&c, W, H);
    if (st) return st;
    const uint32_t ink = 0x202020, grid = 0xE0E0E0, raw = 0xB0C4DE, smooth = 0x3465A4;
    locus_draw_text(&c, pad, pad, s, ink, title);
    locus_draw_rect(&c, left, top - lh - pad, lh, lh, raw);
    int lx = left + lh + 6 + locus_draw_text(&c, left + lh + 6, top - lh - pad, s, ink, "per step") + 20;
    locus_draw_rect(&c, lx, top - lh - pad, lh, lh, smooth);
    locus_draw_text(&c, lx + lh + 6, top - lh - pad, s, ink, logy ? "mean of 20 (log scale)" : "mean of 20");
    char v[32];
    for (int t = 0; t <= 4; t++) { /* horizontal grid and y labels */
        int gy = top + ph - t * ph / 4;
        locus_draw_rect(&c, left, gy, pw, 1, grid);
        double val = lo + (hi - lo) * t / 4.0;
        snprintf(v, sizeof v, "%.3g", logy ? pow(10.0, val) : val);
        locus_draw_text(&c, left - pad - locus_text_width(v, s), gy - lh / 2, s, ink, v);
    }
    for (int t = 0; t <= 4; t++) { /* x labels: steps */
        int gx = left + t * pw / 4;
        locus_draw_rect(&c, gx, top, 1, ph, grid);
        snprintf(v, sizeof v, "%d", (int)(1 + (double)(n - 1) * t / 4.0 + 0.5));
        locus_draw_text(&c, gx - locus_text_width(v, s) / 2, top + ph + pad, s, ink, v);
    }
    locus_draw_text(&c, left + pw / 2 - locus_text_width("step", s) / 2, top + ph + pad + lh + pad / 2, s, ink, "step");
    locus_draw_rect(&c, left, top, 1, ph, ink);
    locus_draw_rect(&c, left, top + ph, pw, 1, ink);
    for (int pass = 0; pass < 2; pass++) {
        int px = -1, py = -1;
        double acc = 0;
        int cnt = 0;
        for (int i = 0; i < n; i++) {
            double val = y[i];
            if (pass == 1) { /* running mean of the last 20 finite values */
                if (val == val && !(logy && val <= 0)) { acc += val; cnt++; }
                if (i >= 20 && y[i - 20] == y[i - 20] && !(logy && y[i - 20] <= 0)) { acc -= y[i - 20]; cnt--; }
                val = cnt ? acc / cnt : NAN;
            }
            if (!(val == val) || (logy && val <= 0)) { px = -1; continue; }
            double pv = logy ? log10(val) : val;
            int x = left + (n > 1 ? (int)((double)i * (pw - 1) / (n - 1)) : pw / 2);
            int yy = top + ph - (int)((pv - lo) / (hi - lo) * (ph - 1));
            if (yy < top) yy = top;
            if (yy > top + ph) yy = top + ph;
            if (px >= 0) draw_line(&c, px, py, x, yy, pass ? 2 : 1, pass ? smooth : raw);
            else plot_px(&c, x, yy, pass ? 2 : 1, pass ? smooth : raw);
            px = x; py = yy;
        }
    }
    st = locus_png_write(path, c.px, c.w, c.h, 3, NULL, 0);
    locus_canvas_free(&c);
    return st;
}
