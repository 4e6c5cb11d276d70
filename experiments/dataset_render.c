/* dataset_render.c — draws one sign (a word on a rounded board over a gradient background) with FreeType's
 * outline rasterizer, for `locus dataset signs` (see dataset.h).
 *
 * Why outlines and not FreeType's glyph bitmaps: the board and the text must rotate together, and every
 * step must be exact integer arithmetic so the same bytes come out everywhere.  Glyphs are loaded unhinted
 * (hinting is the part of FreeType that changes most between versions), their outlines are joined into one
 * outline (so touching glyphs are filled once, by the non-zero rule), scaled and rotated with 16.16 matrices
 * (FT_Outline_Transform), moved in 1/64 pixels and rasterized into a coverage map through a span callback.
 * Compositing is integer: p = (p * (255 - a) + c * a + 127) / 255 per channel.
 */
#include "dataset.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_OUTLINE_H
#include FT_BBOX_H

typedef struct {
    FT_Face face;
    const char *path;
    long cap_units; /* height of 'H' in font units */
    long upem;
} signr_font;

struct locus_signr {
    FT_Library lib;
    signr_font *fonts;
    int nfonts;
    /* the joined outline of the current word (grown as needed) */
    FT_Vector *pts;
    char *tags;
    short *ends;
    int cap_pts, cap_ends;
};

void locus_sincos_ddeg(int angle_ddeg, double *s, double *c) {
    assert(angle_ddeg >= -450 && angle_ddeg <= 450);
    const double x = (double)angle_ddeg * (3.14159265358979323846 / 1800.0); /* |x| <= pi/4 */
    const double x2 = x * x;
    /* Taylor series to x^17 / x^18: truncation < 1e-18 for |x| <= pi/4 */
    double sn = 0.0, cs = 0.0, t = x, u = 1.0;
    for (int k = 1; k <= 17; k += 2) {
        sn += t;
        t = -t * x2 / (double)((k + 1) * (k + 2));
    }
    for (int k = 0; k <= 18; k += 2) {
        cs += u;
        u = -u * x2 / (double)((k + 1) * (k + 2));
    }
    *s = sn;
    *c = cs;
}

static FT_Fixed to_fixed(double v) { /* v in [-2, 2]: round to 16.16 (floor is exact) */
    double f = v * 65536.0 + 0.5;
    long i = (long)f;
    if ((double)i > f) i--;
    return (FT_Fixed)i;
}

void locus_sign_rotated_box(int w64, int h64, int angle_ddeg, int *bw64, int *bh64) {
    double s, c;
    locus_sincos_ddeg(angle_ddeg < 0 ? -angle_ddeg : angle_ddeg, &s, &c);
    /* the corners (+-w/2, +-h/2) rotated: extent w*c + h*s by w*s + h*c; rounded up */
    double bw = (double)w64 * c + (double)h64 * s, bh = (double)w64 * s + (double)h64 * c;
    *bw64 = (int)bw + 1;
    *bh64 = (int)bh + 1;
}

static const char *ft_err(FT_Error e) {
    const char *s = FT_Error_String(e);
    return s ? s : "FreeType error";
}

locus_status locus_signr_open(locus_signr **out, const char *const *paths, int n) {
    *out = NULL;
    locus_signr *r = calloc(1, sizeof *r);
    if (!r) return locus_fail(LOCUS_E_NOMEM, "dataset: out of memory");
    FT_Error e = FT_Init_FreeType(&r->lib);
    if (e) { free(r); return locus_fail(LOCUS_E_IO, "dataset: cannot initialise FreeType: %s", ft_err(e)); }
    r->fonts = calloc((size_t)n, sizeof *r->fonts);
    if (!r->fonts) { locus_signr_close(r); return locus_fail(LOCUS_E_NOMEM, "dataset: out of memory"); }
    for (int i = 0; i < n; i++) {
        signr_font *f = &r->fonts[i];
        f->path = paths[i];
        if ((e = FT_New_Face(r->lib, paths[i], 0, &f->face))) {
            locus_signr_close(r);
            return locus_fail(LOCUS_E_NOTFOUND, "font %s: cannot open: %s", paths[i], ft_err(e));
        }
        r->nfonts = i + 1;
        if (!FT_IS_SCALABLE(f->face)) { locus_signr_close(r); return locus_fail(LOCUS_E_FORMAT, "font %s: not a scalable (outline) font", paths[i]); }
        FT_UInt gi = FT_Get_Char_Index(f->face, 'H');
        if (!gi || FT_Load_Glyph(f->face, gi, FT_LOAD_NO_SCALE | FT_LOAD_NO_BITMAP) || f->face->glyph->format != FT_GLYPH_FORMAT_OUTLINE) {
            locus_signr_close(r);
            return locus_fail(LOCUS_E_FORMAT, "font %s: no outline glyph for 'H'", paths[i]);
        }
        FT_BBox bb;
        FT_Outline_Get_BBox(&f->face->glyph->outline, &bb);
        f->cap_units = bb.yMax;
        f->upem = f->face->units_per_EM;
        if (f->cap_units <= 0 || f->upem <= 0) { locus_signr_close(r); return locus_fail(LOCUS_E_FORMAT, "font %s: bad metrics", paths[i]); }
    }
    *out = r;
    return LOCUS_OK;
}

void locus_signr_close(locus_signr *r) {
    if (!r) return;
    for (int i = 0; i < r->nfonts; i++) FT_Done_Face(r->fonts[i].face);
    free(r->fonts);
    if (r->lib) FT_Done_FreeType(r->lib);
    free(r->pts);
    free(r->tags);
    free(r->ends);
    free(r);
}

void locus_signr_freetype_version(const locus_signr *r, char *buf, int len) {
    FT_Int a, b, c;
    FT_Library_Version(r->lib, &a, &b, &c);
    snprintf(buf, (size_t)len, "%d.%d.%d", a, b, c);
}

static int reserve(locus_signr *r, int npts, int nends) {
    if (npts > r->cap_pts) {
        int cap = npts * 2;
        FT_Vector *p = realloc(r->pts, (size_t)cap * sizeof *p);
        if (!p) return -1;
        r->pts = p;
        char *t = realloc(r->tags, (size_t)cap);
        if (!t) return -1;
        r->tags = t;
        r->cap_pts = cap;
    }
    if (nends > r->cap_ends) {
        int cap = nends * 2;
        short *e = realloc(r->ends, (size_t)cap * sizeof *e);
        if (!e) return -1;
        r->ends = e;
        r->cap_ends = cap;
    }
    return 0;
}

/* The word's glyph outlines joined into *o (pen advancing by each glyph's advance), at a cap height of
 * letter_px, scaled horizontally by xscale_milli / 1000. */
static locus_status word_outline(locus_signr *r, int font, const char *word, int letter_px, int xscale_milli, FT_Outline *o) {
    assert(font >= 0 && font < r->nfonts && letter_px > 0);
    signr_font *f = &r->fonts[font];
    long em64 = ((long)letter_px * 64 * f->upem + f->cap_units / 2) / f->cap_units; /* 'H' is letter_px tall */
    FT_Error e = FT_Set_Char_Size(f->face, 0, em64, 72, 72);
    if (e) return locus_fail(LOCUS_E_FORMAT, "font %s: cannot set size %ld/64: %s", f->path, em64, ft_err(e));
    int np = 0, ne = 0;
    long pen = 0;
    for (const unsigned char *s = (const unsigned char *)word; *s; s++) {
        FT_UInt gi = FT_Get_Char_Index(f->face, *s);
        if (!gi) return locus_fail(LOCUS_E_FORMAT, "font %s has no glyph for '%c' (word \"%s\")", f->path, *s, word);
        if ((e = FT_Load_Glyph(f->face, gi, FT_LOAD_NO_HINTING | FT_LOAD_NO_BITMAP | FT_LOAD_NO_AUTOHINT)))
            return locus_fail(LOCUS_E_FORMAT, "font %s: cannot load the glyph of '%c': %s", f->path, *s, ft_err(e));
        FT_GlyphSlot g = f->face->glyph;
        if (g->format != FT_GLYPH_FORMAT_OUTLINE) return locus_fail(LOCUS_E_FORMAT, "font %s: '%c' is not an outline glyph", f->path, *s);
        const FT_Outline *go = &g->outline;
        if (np + go->n_points > 30000 || reserve(r, np + go->n_points, ne + go->n_contours))
            return locus_fail(LOCUS_E_NOMEM, "dataset: word \"%s\" too long to draw", word);
        for (int i = 0; i < go->n_points; i++) {
            r->pts[np + i].x = go->points[i].x + pen;
            r->pts[np + i].y = go->points[i].y;
            r->tags[np + i] = go->tags[i];
        }
        for (int i = 0; i < go->n_contours; i++) r->ends[ne + i] = (short)(go->contours[i] + np);
        np += go->n_points;
        ne += go->n_contours;
        pen += g->advance.x;
    }
    memset(o, 0, sizeof *o);
    o->points = r->pts;
    o->tags = r->tags;
    o->contours = r->ends;
    o->n_points = (short)np;
    o->n_contours = (short)ne;
    o->flags = FT_OUTLINE_NONE;
    if (xscale_milli != 1000) {
        FT_Matrix m = {(FT_Fixed)(((long)xscale_milli * 65536 + 500) / 1000), 0, 0, 0x10000};
        FT_Outline_Transform(o, &m);
    }
    return LOCUS_OK;
}

locus_status locus_signr_measure(locus_signr *r, int font, const char *word, int letter_px, int xscale_milli, int *w64, int *h64) {
    FT_Outline o;
    locus_status st = word_outline(r, font, word, letter_px, xscale_milli, &o);
    if (st) return st;
    FT_BBox bb = {0, 0, 0, 0};
    if (o.n_points) FT_Outline_Get_BBox(&o, &bb);
    *w64 = (int)(bb.xMax - bb.xMin);
    *h64 = (int)(bb.yMax - bb.yMin);
    return LOCUS_OK;
}

locus_status locus_signr_board(locus_signr *r, const char *word, const locus_sign_layout *L, int *w64, int *h64) {
    int iw, ih;
    locus_status st = locus_signr_measure(r, L->font, word, L->letter_px, L->xscale_milli, &iw, &ih);
    if (st) return st;
    *w64 = iw + 2 * 64 * L->padx;
    *h64 = 64 * (L->letter_px + 2 * L->pady);
    return LOCUS_OK;
}

/* ---- rasterization ---- */

typedef struct {
    uint8_t *cov; /* H x W coverage, row 0 at the top */
    int W, H;
} span_ctx;

static void spans(int y, int count, const FT_Span *sp, void *user) {
    span_ctx *c = user;
    int row = c->H - 1 - y; /* FreeType's y points up */
    if (row < 0 || row >= c->H) return;
    uint8_t *d = c->cov + (size_t)row * c->W;
    for (int i = 0; i < count; i++)
        for (int x = sp[i].x; x < sp[i].x + sp[i].len && x < c->W; x++)
            if (x >= 0 && sp[i].coverage > d[x]) d[x] = sp[i].coverage;
}

static locus_status rasterize(locus_signr *r, FT_Outline *o, uint8_t *cov, int W, int H) {
    memset(cov, 0, (size_t)W * H);
    span_ctx c = {cov, W, H};
    FT_Raster_Params p;
    memset(&p, 0, sizeof p);
    p.source = o;
    p.flags = FT_RASTER_FLAG_AA | FT_RASTER_FLAG_DIRECT | FT_RASTER_FLAG_CLIP;
    p.gray_spans = spans;
    p.user = &c;
    p.clip_box.xMin = 0;
    p.clip_box.yMin = 0;
    p.clip_box.xMax = W;
    p.clip_box.yMax = H;
    FT_Error e = FT_Outline_Render(r->lib, o, &p);
    if (e) return locus_fail(LOCUS_E_FORMAT, "dataset: FreeType cannot rasterize an outline: %s", ft_err(e));
    return LOCUS_OK;
}

/* A rounded rectangle centred on the origin, w64 x h64, corner radius rad64, as one contour with conic
 * (quadratic) corners, into the renderer's point arrays. */
static void board_outline(locus_signr *r, int w64, int h64, int rad64, FT_Outline *o) {
    int hw = w64 / 2, hh = h64 / 2;
    if (rad64 > hw) rad64 = hw;
    if (rad64 > hh) rad64 = hh;
    int rc = reserve(r, 12, 1);
    assert(rc == 0);
    (void)rc;
    /* clockwise from the top edge's right end; each corner: on-curve, control point at the corner, on-curve */
    const int cx[4] = {hw, hw, -hw, -hw}, cy[4] = {hh, -hh, -hh, hh};
    int n = 0;
    for (int k = 0; k < 4; k++) {
        int sx = cx[k] > 0 ? 1 : -1, sy = cy[k] > 0 ? 1 : -1;
        /* entering along the edge before the corner, leaving along the next edge */
        int inx = (k % 2 == 0) ? cx[k] - sx * rad64 : cx[k], iny = (k % 2 == 0) ? cy[k] : cy[k] - sy * rad64;
        int outx = (k % 2 == 0) ? cx[k] : cx[k] - sx * rad64, outy = (k % 2 == 0) ? cy[k] - sy * rad64 : cy[k];
        r->pts[n] = (FT_Vector){inx, iny};
        r->tags[n++] = FT_CURVE_TAG_ON;
        r->pts[n] = (FT_Vector){cx[k], cy[k]};
        r->tags[n++] = rad64 > 0 ? FT_CURVE_TAG_CONIC : FT_CURVE_TAG_ON;
        r->pts[n] = (FT_Vector){outx, outy};
        r->tags[n++] = FT_CURVE_TAG_ON;
    }
    r->ends[0] = (short)(n - 1);
    memset(o, 0, sizeof *o);
    o->points = r->pts;
    o->tags = r->tags;
    o->contours = r->ends;
    o->n_points = (short)n;
    o->n_contours = 1;
    o->flags = FT_OUTLINE_NONE;
}

/* Rotate by the layout's angle about the origin, then move the origin to the board centre (y up). */
static void place(FT_Outline *o, const locus_sign_layout *L, int H) {
    if (L->angle_ddeg) {
        double s, c;
        locus_sincos_ddeg(L->angle_ddeg, &s, &c);
        FT_Matrix m = {to_fixed(c), to_fixed(-s), to_fixed(s), to_fixed(c)};
        FT_Outline_Transform(o, &m);
    }
    FT_Outline_Translate(o, L->cx64, (FT_Pos)H * 64 - L->cy64);
}

static void composite(uint8_t *pix, const uint8_t *cov, const uint8_t c[3], int W, int H) {
    for (size_t i = 0; i < (size_t)W * H; i++) {
        unsigned a = cov[i];
        if (!a) continue;
        for (int ch = 0; ch < 3; ch++) pix[3 * i + ch] = (uint8_t)((pix[3 * i + ch] * (255u - a) + c[ch] * a + 127u) / 255u);
    }
}

locus_status locus_signr_draw(locus_signr *r, const char *word, const locus_sign_layout *L, uint8_t *pix, int W, int H) {
    /* background: top colour to bottom colour, linear in the row */
    for (int y = 0; y < H; y++) {
        uint8_t rowc[3];
        for (int ch = 0; ch < 3; ch++) {
            int a = L->bg_top[ch], b = L->bg_bottom[ch], den = H > 1 ? H - 1 : 1;
            int d = (b - a) * y;
            rowc[ch] = (uint8_t)(a + (d >= 0 ? (d + den / 2) / den : -((-d + den / 2) / den)));
        }
        for (int x = 0; x < W; x++) memcpy(pix + 3 * ((size_t)y * W + x), rowc, 3);
    }
    uint8_t *cov = malloc((size_t)W * H);
    if (!cov) return locus_fail(LOCUS_E_NOMEM, "dataset: out of memory");
    int bw, bh;
    locus_status st = locus_signr_board(r, word, L, &bw, &bh);
    FT_Outline o;
    if (!st) {
        board_outline(r, bw, bh, 64 * L->radius, &o);
        place(&o, L, H);
        if (!(st = rasterize(r, &o, cov, W, H))) composite(pix, cov, L->sign, W, H);
    }
    if (!st) st = word_outline(r, L->font, word, L->letter_px, L->xscale_milli, &o);
    if (!st) {
        /* centre the ink box horizontally and the cap height vertically on the origin */
        FT_BBox bb = {0, 0, 0, 0};
        if (o.n_points) FT_Outline_Get_BBox(&o, &bb);
        FT_Outline_Translate(&o, -(bb.xMin + bb.xMax) / 2, -(FT_Pos)L->letter_px * 32);
        place(&o, L, H);
        if (!(st = rasterize(r, &o, cov, W, H))) composite(pix, cov, L->text, W, H);
    }
    free(cov);
    return st;
}
