/* fuzz_png.c — libFuzzer target for the PNG reader (locus_png_read_rgb: libpng's simplified API on a file read
 * whole, refusing images past 65535 pixels a side): any bytes decode to an RGB buffer of w x h or are refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/png.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *pix = NULL;
    int w = 0, h = 0;
    if (locus_png_read_rgb(fz_write("in.png", data, size), &pix, &w, &h) == LOCUS_OK) {
        if (w <= 0 || h <= 0) __builtin_trap();
        volatile uint8_t last = pix[(size_t)w * h * 3 - 1];
        (void)last;
        free(pix);
    }
    return 0;
}
