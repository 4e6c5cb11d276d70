/* png.c — libpng writer/reader with tEXt chunks and atomic rename (see png.h). */
#include "png.h"

#include "fileio.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

locus_status locus_png_write(const char *path, const uint8_t *pix, int w, int h, int channels,
                             const locus_png_text *text, int ntext) {
    if (w <= 0 || h <= 0 || (channels != 1 && channels != 3 && channels != 4))
        return locus_fail(LOCUS_E_ARG, "%s: bad image geometry %dx%dx%d", path, w, h, channels);
    char tmp[PATH_MAX + 32];
    int fd = locus_create_tmp(path, tmp, sizeof tmp); /* refuses to replace anything but a regular file */
    if (fd < 0) return LOCUS_E_IO;
    FILE *f = fdopen(fd, "wb");
    if (!f) { close(fd); unlink(tmp); return locus_fail(LOCUS_E_NOMEM, "%s: cannot create: %s", path, strerror(errno)); }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_text *pt = NULL;
    png_bytep *rows = NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        unlink(tmp);
        free(pt);
        free(rows);
        return locus_fail(LOCUS_E_IO, "%s: PNG write failed", path);
    }
    png_init_io(png, f);
    int ct = channels == 1 ? PNG_COLOR_TYPE_GRAY : channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, ct, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ntext > 0) {
        pt = calloc((size_t)ntext, sizeof *pt);
        for (int i = 0; pt && i < ntext; i++) {
            pt[i].compression = PNG_TEXT_COMPRESSION_NONE;
            pt[i].key = (png_charp)text[i].key;
            pt[i].text = (png_charp)text[i].value;
        }
        if (pt) png_set_text(png, info, pt, ntext);
    }
    rows = malloc((size_t)h * sizeof *rows);
    if (!rows) png_error(png, "out of memory");
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(pix + (size_t)y * w * channels);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(pt);
    free(rows);
    int ok = fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return locus_fail(LOCUS_E_IO, "%s: write failed: %s", path, strerror(e));
    }
    return LOCUS_OK;
}

locus_status locus_png_read_rgb(const char *path, uint8_t **pix, int *w, int *h) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    char *file;
    size_t len;
    locus_status st = locus_read_file(path, &file, &len); /* regular files only */
    if (st) return st;
    if (!png_image_begin_read_from_memory(&img, file, len)) {
        free(file);
        return locus_fail(LOCUS_E_FORMAT, "%s: cannot read PNG: %s", path, img.message);
    }
    img.format = PNG_FORMAT_RGB;
    if (img.width > 65535 || img.height > 65535) {
        png_image_free(&img);
        free(file);
        return locus_fail(LOCUS_E_FORMAT, "%s: PNG of %ux%u pixels is too large", path, img.width, img.height);
    }
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf) { png_image_free(&img); free(file); return locus_fail(LOCUS_E_NOMEM, "%s: out of memory", path); }
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        free(buf);
        free(file);
        return locus_fail(LOCUS_E_FORMAT, "%s: bad PNG: %s", path, img.message);
    }
    free(file);
    *pix = buf;
    *w = (int)img.width;
    *h = (int)img.height;
    return LOCUS_OK;
}

void locus_image_to_u8(const float *chw, int h, int w, uint8_t *hwc) {
    size_t plane = (size_t)h * w;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++) {
            float v = chw[c * plane + i] / 2.0f + 0.5f;
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            hwc[i * 3 + c] = (uint8_t)nearbyintf(v * 255.0f);
        }
}
