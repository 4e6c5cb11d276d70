/* ocr.h — text recognition of generated images through tesseract's C API (Debian: libtesseract-dev and
 * tesseract-ocr-eng).  The recognized pieces are joined by single spaces and lower-cased (Python str.lower(), Unicode), as the paper's
 * evaluation joins EasyOCR's pieces (" ".join(texts).lower()).  Page segmentation is "sparse text" (find as
 * much text as possible, in no particular order), the closest tesseract mode to a scene-text detector. */
#ifndef LOCUS_OCR_H
#define LOCUS_OCR_H

#include <stdint.h>

#include "../core/error.h"

typedef struct locus_ocr locus_ocr;

/* Load the English model; an error names the package to install. */
locus_status locus_ocr_open(locus_ocr **o);
void locus_ocr_close(locus_ocr *o);
/* pix: H x W x 3 uint8.  Returns a malloc'd string ("" when nothing is found) or NULL with the error set. */
char *locus_ocr_read(locus_ocr *o, const uint8_t *pix, int W, int H);

#endif
