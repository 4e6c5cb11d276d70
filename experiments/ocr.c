/* ocr.c — tesseract C API wrapper (see ocr.h). */
#include "ocr.h"

#include <stdlib.h>
#include <string.h>
#include <tesseract/capi.h>

#include "../models/unicode.h"

struct locus_ocr {
    TessBaseAPI *api;
};

locus_status locus_ocr_open(locus_ocr **out) {
    *out = NULL;
    TessBaseAPI *api = TessBaseAPICreate();
    if (!api) return locus_fail(LOCUS_E_NOMEM, "OCR: cannot create a tesseract instance");
    /* tesseract's own diagnostics would go to stderr on every image */
    TessBaseAPISetVariable(api, "debug_file", "/dev/null");
    if (TessBaseAPIInit3(api, NULL, "eng") != 0) {
        TessBaseAPIDelete(api);
        return locus_fail(LOCUS_E_NOTFOUND, "OCR: tesseract cannot load its English model (install tesseract-ocr-eng, or set TESSDATA_PREFIX)");
    }
    TessBaseAPISetPageSegMode(api, PSM_SPARSE_TEXT);
    locus_ocr *o = calloc(1, sizeof *o);
    o->api = api;
    *out = o;
    return LOCUS_OK;
}

void locus_ocr_close(locus_ocr *o) {
    if (!o) return;
    TessBaseAPIEnd(o->api);
    TessBaseAPIDelete(o->api);
    free(o);
}

char *locus_ocr_read(locus_ocr *o, const uint8_t *pix, int W, int H) {
    TessBaseAPISetImage(o->api, pix, W, H, 3, 3 * W);
    TessBaseAPISetSourceResolution(o->api, 72);
    char *t = TessBaseAPIGetUTF8Text(o->api);
    if (!t) {
        locus_fail(LOCUS_E_IO, "OCR: tesseract failed on a %dx%d image", W, H);
        return NULL;
    }
    /* pieces (lines, words) joined by single spaces and trimmed, then lower-cased as Python's str.lower() */
    size_t n = strlen(t);
    char *s = malloc(n + 1);
    size_t k = 0;
    int gap = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f') { gap = 1; continue; }
        if (gap && k) s[k++] = ' ';
        gap = 0;
        s[k++] = (char)c;
    }
    s[k] = 0;
    locus_ustr u = {0};
    locus_ustr_from_utf8(&u, s, k);
    locus_uc_lower(&u);
    free(s);
    s = locus_ustr_to_utf8(&u, NULL);
    locus_ustr_free(&u);
    TessDeleteText(t);
    TessBaseAPIClear(o->api);
    return s;
}
