/* png.h — writing 8-bit RGB / gray PNG files with tEXt metadata (libpng), atomically.
 *
 * Images are written to a temporary file in the same directory and renamed into place, so a reader never sees
 * a partial PNG and a failed write leaves no output file.
 */
#ifndef LOCUS_PNG_H
#define LOCUS_PNG_H

#include <stdint.h>

#include "error.h"

typedef struct { const char *key, *value; } locus_png_text;

/* Write `h` rows of `w` pixels with `channels` (1 = gray, 3 = RGB, 4 = RGBA) interleaved bytes per pixel. */
locus_status locus_png_write(const char *path, const uint8_t *pix, int w, int h, int channels,
                             const locus_png_text *text, int ntext);

/* Read a PNG as 8-bit RGB (alpha dropped, gray expanded).  *pix is malloc'ed; caller frees. */
locus_status locus_png_read_rgb(const char *path, uint8_t **pix, int *w, int *h);

/* Convert a float image [3,H,W] in [-1,1] (a VAE output) to HWC uint8 exactly as diffusers does:
 * round(clamp(x/2+0.5, 0, 1) * 255) with round-half-to-even as numpy. */
void locus_image_to_u8(const float *chw, int h, int w, uint8_t *hwc);

#endif
