/* localize_figures.c — the figures of a localization run, drawn from the rows and the cells' images:
 * ocr_f1.png (bar chart per layer group), grid.png (images: rows = A, B, layer groups; columns = prompts) and
 * heatmap.png (OCR-F1 against B's word per layer group and prompt).  Pixels depend only on the rows, the
 * images and the plan, so the PNGs are byte-identical between fresh, resumed and merged runs. */
#include "localize_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../core/png.h"
#include "draw.h"

int lz_write_bar_chart(const lz_plan *P, int K, const char **labels, const double *f1b, const double *f1a) {
    char path[4200];
    snprintf(path, sizeof path, "%s/ocr_f1.png", P->out);
    if (locus_bar_chart(path, "OCR-F1 per patched layer (prompt A's image, prompt B's text)", K, labels, f1b, "OCR-F1 vs B's word", f1a,
                        "OCR-F1 vs A's word"))
        return lz_fail("localize", "%s", locus_errmsg());
    return 0;
}

int lz_write_grid(const lz_plan *P, const lz_row *rows) {
    int K = lz_cells_per_group(P), cols = P->nitems < P->grid_cols ? P->nitems : P->grid_cols;
    int W = P->width, H = P->height;
    int up = W < 96 ? (96 + W - 1) / W : 1, down = W > 256 ? (W + 255) / 256 : 1;
    int cw = W * up / down, ch = H * up / down;
    const int s = 2, pad = 8;
    int lw = 0;
    for (int k = 0; k < K; k++) {
        int t = locus_text_width(lz_cell_label(P, k), s);
        if (t > lw) lw = t;
    }
    int hh = 2 * (LOCUS_FONT_H * s) + 3 * pad;
    locus_canvas c;
    if (locus_canvas_new(&c, pad + lw + pad + cols * (cw + pad), hh + K * (ch + pad) + pad)) return lz_fail("localize", "%s", locus_errmsg());
    uint8_t *small = malloc((size_t)cw * ch * 3);
    for (int j = 0; j < cols; j++) {
        int x = pad + lw + pad + j * (cw + pad);
        char t[64];
        snprintf(t, sizeof t, "%.*s", cw / (6 * s), P->items[j].word);
        locus_draw_text(&c, x, pad, s, 0x202020, t);
        snprintf(t, sizeof t, "> %.*s", cw / (6 * s) - 2, P->items[j].word_b);
        locus_draw_text(&c, x, pad + LOCUS_FONT_H * s + pad, s, 0x3465A4, t);
    }
    for (int k = 0; k < K; k++) {
        int y = hh + k * (ch + pad);
        locus_draw_text(&c, pad + lw - locus_text_width(lz_cell_label(P, k), s), y + ch / 2 - LOCUS_FONT_H, s, 0x202020, lz_cell_label(P, k));
        for (int j = 0; j < cols; j++) {
            int cell = (j * P->nseeds) * K + k, x = pad + lw + pad + j * (cw + pad);
            if (!rows[cell].done) { locus_draw_rect(&c, x, y, cw, ch, 0xEEEEEE); continue; }
            char path[4200];
            snprintf(path, sizeof path, "%s/images/c%06d.png", P->out, cell);
            uint8_t *pix;
            int iw, ih;
            if (locus_png_read_rgb(path, &pix, &iw, &ih) || iw != W || ih != H) {
                locus_canvas_free(&c);
                free(small);
                return lz_fail("localize", "%s: missing or unreadable image of a finished cell", path);
            }
            if (down > 1) { /* box filter */
                int sw = W / down, sh = H / down;
                for (int yy = 0; yy < sh; yy++)
                    for (int xx = 0; xx < sw; xx++)
                        for (int q = 0; q < 3; q++) {
                            int acc = 0;
                            for (int dy = 0; dy < down; dy++)
                                for (int dx = 0; dx < down; dx++) acc += pix[((size_t)(yy * down + dy) * W + xx * down + dx) * 3 + q];
                            small[((size_t)yy * sw + xx) * 3 + q] = (uint8_t)((acc + down * down / 2) / (down * down));
                        }
                locus_draw_image(&c, x, y, small, sw, sh, 1);
            } else {
                locus_draw_image(&c, x, y, pix, W, H, up);
            }
            free(pix);
        }
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/grid.png", P->out);
    int rc = locus_png_write(path, c.px, c.w, c.h, 3, NULL, 0) ? lz_fail("localize", "%s", locus_errmsg()) : 0;
    locus_canvas_free(&c);
    free(small);
    return rc;
}

/* white (t = 0) to blue (t = 255) */
static uint32_t heat_rgb(int t) {
    return (uint32_t)(255 - (255 - 0x34) * t / 255) << 16 | (uint32_t)(255 - (255 - 0x65) * t / 255) << 8 | (uint32_t)(255 - (255 - 0xA4) * t / 255);
}

/* F1 of the mean precision and recall over seeds; value printed in each cell */
int lz_write_heatmap(const lz_plan *P, const lz_row *rows) {
    int K = lz_cells_per_group(P), cols = P->nitems < 100 ? P->nitems : 100;
    const int s = 2, pad = 8, cw = 44, ch = 22, lh = LOCUS_FONT_H * s;
    int lw = 0;
    for (int k = 0; k < K; k++) {
        int t = locus_text_width(lz_cell_label(P, k), s);
        if (t > lw) lw = t;
    }
    const char *title = "OCR-F1 vs B's word per layer (rows) and prompt (columns)";
    int x0 = pad + lw + pad, y0 = pad + lh + pad + lh + pad;
    int W = x0 + cols * cw + pad, tw = pad + locus_text_width(title, s) + pad;
    if (W < tw) W = tw;
    int H = y0 + K * ch + pad + ch + pad;
    locus_canvas c;
    if (locus_canvas_new(&c, W, H)) return lz_fail("localize", "%s", locus_errmsg());
    locus_draw_text(&c, pad, pad, s, 0x202020, title);
    for (int j = 0; j < cols; j++) {
        char t[16];
        snprintf(t, sizeof t, "%.7s", P->items[j].word);
        locus_draw_text(&c, x0 + j * cw + 2, pad + lh + pad + lh / 2, 1, 0x202020, t);
    }
    for (int k = 0; k < K; k++) {
        int y = y0 + k * ch;
        locus_draw_text(&c, x0 - pad - locus_text_width(lz_cell_label(P, k), s), y + (ch - lh) / 2, s, 0x202020, lz_cell_label(P, k));
        for (int j = 0; j < cols; j++) {
            double sp = 0, sr = 0;
            int n = 0;
            for (int q = 0; q < P->nseeds; q++) {
                const lz_row *r = &rows[(j * P->nseeds + q) * K + k];
                if (!r->done) continue;
                sp += r->tb.precision;
                sr += r->tb.recall;
                n++;
            }
            int x = x0 + j * cw;
            if (!n) { locus_draw_rect(&c, x, y, cw - 1, ch - 1, 0xEEEEEE); continue; }
            double v = locus_f1(sp / n, sr / n);
            locus_draw_rect(&c, x, y, cw - 1, ch - 1, heat_rgb((int)(v * 255 + 0.5)));
            char vs[16];
            snprintf(vs, sizeof vs, "%.2f", v);
            locus_draw_text(&c, x + (cw - locus_text_width(vs, 1)) / 2, y + (ch - LOCUS_FONT_H) / 2, 1, v > 0.5 ? 0xFFFFFF : 0x202020, vs);
        }
    }
    /* colour scale */
    int sy = y0 + K * ch + pad, sw = cols * cw < 200 ? cols * cw : 200;
    for (int i = 0; i < sw; i++) locus_draw_rect(&c, x0 + i, sy, 1, ch / 2, heat_rgb(i * 255 / (sw > 1 ? sw - 1 : 1)));
    locus_draw_text(&c, x0, sy + ch / 2 + 2, 1, 0x202020, "0");
    locus_draw_text(&c, x0 + sw - locus_text_width("1", 1), sy + ch / 2 + 2, 1, 0x202020, "1");
    char path[4200];
    snprintf(path, sizeof path, "%s/heatmap.png", P->out);
    int rc = locus_png_write(path, c.px, c.w, c.h, 3, NULL, 0) ? lz_fail("localize", "%s", locus_errmsg()) : 0;
    locus_canvas_free(&c);
    return rc;
}
