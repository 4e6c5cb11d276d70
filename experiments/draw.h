/* draw.h — small raster drawing for result figures: an RGB canvas, filled rectangles, a built-in 5x7 bitmap
 * font (printable ASCII; lower case drawn as capitals) at integer scales, image pasting with integer
 * nearest-neighbour upscaling, and the localization figures (horizontal bar chart, labelled image grid).
 * No fonts or libraries beyond libpng (for saving) are needed, so figures are the same bytes everywhere. */
#ifndef LOCUS_DRAW_H
#define LOCUS_DRAW_H

#include <stdint.h>

#include "../core/error.h"

typedef struct {
    int w, h;
    uint8_t *px; /* h x w x 3 */
} locus_canvas;

/* White canvas; returns a non-OK status when the size is absurd or memory runs out. */
locus_status locus_canvas_new(locus_canvas *c, int w, int h);
void locus_canvas_free(locus_canvas *c);
void locus_draw_rect(locus_canvas *c, int x, int y, int w, int h, uint32_t rgb);
/* Text with its top-left at (x, y); each font pixel becomes scale x scale.  Returns the width drawn. */
int locus_draw_text(locus_canvas *c, int x, int y, int scale, uint32_t rgb, const char *s);
int locus_text_width(const char *s, int scale);
#define LOCUS_FONT_H 7
/* Paste an H x W x 3 image at (x, y), each pixel repeated scale x scale. */
void locus_draw_image(locus_canvas *c, int x, int y, const uint8_t *pix, int w, int h, int scale);

/* Horizontal bar chart: one row per label with up to two values in [0, 1] (b may be NULL), value printed. */
locus_status locus_bar_chart(const char *path, const char *title, int n, const char *const *labels, const double *a,
                             const char *a_name, const double *b, const char *b_name);

/* Line chart of y[n] (training loss per step 1..n) and its running mean over 20 steps, log10 y axis when
 * logy (non-positive and non-finite values are skipped). */
locus_status locus_line_chart(const char *path, const char *title, const float *y, int n, int logy);

#endif
