/* resample.h — PIL-exact image resizing for 8-bit images (Pillow's Image.resize with Image.BICUBIC).
 *
 * CLIP's preprocessing (openai/CLIP clip.py `_transform`, torchvision Resize on a PIL image) decides the
 * pixels with Pillow's fixed-point separable filter, so CLIP-T is only reproducible if the resize is.  This
 * is an independent implementation of that algorithm: per output position a window of source pixels with
 * double-precision bicubic (a = -0.5) weights, support widened by the downscale factor, normalised to sum 1,
 * converted to 22-bit fixed point (rounded away from zero), integer accumulation from 2^21, >> 22 and clipped
 * to [0, 255]; a horizontal pass to uint8 first, then a vertical pass; a pass whose size does not change is
 * skipped.  Integer-only after the weights, so identical on every machine.
 */
#ifndef LOCUS_RESAMPLE_H
#define LOCUS_RESAMPLE_H

#include <stdint.h>

#include "error.h"

/* Resize src [H,W,C] (interleaved uint8, C = 1..4 channels filtered independently) to dst [OH,OW,C] exactly
 * as Pillow's im.resize((OW, OH), Image.BICUBIC) does for modes L / RGB / RGBX / CMYK (not premultiplied
 * RGBA: Pillow resizes RGBA as RGBa).  LOCUS_E_ARG on bad sizes, LOCUS_E_NOMEM if buffers cannot be had. */
locus_status locus_resize_bicubic_u8(const uint8_t *src, int W, int H, int C, uint8_t *dst, int OW, int OH);

/* torchvision Resize(n) size rule for a PIL image W x H: the shorter side becomes n, the longer
 * int(n * long / short) (Python's float division, then truncation). */
void locus_resize_shorter_side(int W, int H, int n, int *OW, int *OH);

/* torchvision CenterCrop offset: int(round((size - crop) / 2.0)) with Python's round (half to even). */
int locus_center_crop_offset(int size, int crop);

#endif
