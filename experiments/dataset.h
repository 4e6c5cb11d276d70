/* dataset.h — `locus dataset signs`: a deterministic synthetic data set of signs with one word each, for
 * training small text-writing "teaching models" (issue 11) and for checking that OCR reads rendered words.
 *
 * Output: an image folder in the Hugging Face imagefolder layout — 00000.png, 00001.png, ... and
 * metadata.jsonl ({"file_name": "00000.png", "text": "A red sign that says \"OPEN\".", "word": "OPEN"} per
 * line) — plus words.txt (the words of this split) and dataset.json (every setting, the fonts and the
 * FreeType version).  Image i depends only on (seed, i, the options, the word list, the font files and the
 * FreeType library): the same bytes for any thread count, machine or compiler with the same Debian packages.
 *
 * Rendering (dataset_render.c) uses FreeType's outline rasterizer only (no hinting, no bitmaps): the word's
 * glyph outlines and a rounded sign board are scaled, rotated and placed with FreeType's
 * 16.16 fixed-point transforms and rasterized with 256-level coverage, then composited with integer
 * arithmetic over a vertical-gradient background.  All randomness comes from locus_hash_uniform (core/rng.h)
 * keyed by (seed, image index, draw number).
 */
#ifndef LOCUS_DATASET_H
#define LOCUS_DATASET_H

#include <stdint.h>

#include "../core/error.h"

/* ---- rendering (dataset_render.c) ---- */

typedef struct locus_signr locus_signr;

/* Where one sign goes and how it looks; all integers so that drawing is exact. */
typedef struct {
    int font;                 /* index into the renderer's fonts */
    int letter_px;            /* cap height (height of 'H') in pixels */
    int xscale_milli;         /* horizontal text scale, 1000 = the font's own width */
    int padx, pady;           /* board padding around the text's ink box / cap height, pixels */
    int radius;               /* corner radius of the board, pixels */
    int angle_ddeg;           /* rotation of board and text, tenths of a degree, counter-clockwise */
    int cx64, cy64;           /* centre of the board in the image, 1/64 pixel, y pointing down */
    uint8_t sign[3], text[3]; /* board and letter colours */
    uint8_t bg_top[3], bg_bottom[3]; /* background: vertical gradient from the top row to the bottom row */
} locus_sign_layout;

/* Open FreeType and the font files (one FT_Library per renderer: use one renderer per thread).  A missing or
 * unreadable font file is an error naming it. */
locus_status locus_signr_open(locus_signr **r, const char *const *font_paths, int nfonts);
void locus_signr_close(locus_signr *r);

/* FreeType's version as "2.12.1". */
void locus_signr_freetype_version(const locus_signr *r, char *buf, int len);

/* Size of the word's text ink box in 1/64 pixel at a cap height of letter_px and the given horizontal scale
 * (before rotation).  Errors: a character the font has no glyph for. */
locus_status locus_signr_measure(locus_signr *r, int font, const char *word, int letter_px, int xscale_milli,
                                 int *ink_w64, int *ink_h64);

/* Board size in 1/64 pixel for a layout (text ink width + 2 padx, cap height + 2 pady). */
locus_status locus_signr_board(locus_signr *r, const char *word, const locus_sign_layout *L, int *w64, int *h64);

/* Size (1/64 pixel) of the axis-aligned box around a w64 x h64 board rotated by angle_ddeg. */
void locus_sign_rotated_box(int w64, int h64, int angle_ddeg, int *bw64, int *bh64);

/* Draw: pix is H x W x 3 (RGB).  The word is drawn as given (the caller upper-cases it). */
locus_status locus_signr_draw(locus_signr *r, const char *word, const locus_sign_layout *L, uint8_t *pix, int W, int H);

/* sin and cos of an angle in tenths of a degree, |angle| <= 450, in plain double arithmetic (polynomials; no
 * libm), so every machine gets the same bits. */
void locus_sincos_ddeg(int angle_ddeg, double *s, double *c);

/* ---- the data set (dataset.c) ---- */

typedef struct {
    const char *words_file, *out_dir, *fonts, *templates_file, *split;
    long long n, seed, split_seed;
    int width, height, gray, rotate;
    int centered;                   /* boards centred in the image (default 0: anywhere they fit) */
    int max_rotation_ddeg;          /* default 30 (3 degrees) */
    int min_letter_px, max_letter_px; /* 16 and 0 (= automatic: 60% of the height, at least the minimum) */
    double holdout;                 /* split: >= 1 a number of words, < 1 a fraction (default 0.1) */
    int quiet;
} locus_signs_opts;

/* Defaults for every field (words_file and out_dir stay NULL). */
void locus_signs_defaults(locus_signs_opts *o);

/* Generate the data set.  Validates everything first (words, fonts, templates, that every word fits at the
 * minimum letter size) and writes nothing on bad input; images are written atomically in parallel,
 * metadata.jsonl, words.txt and dataset.json atomically at the end. */
locus_status locus_signs_generate(const locus_signs_opts *o);

/* Word list: one word per line (blank lines and lines starting with '#' skipped; surrounding spaces
 * trimmed); each 1-24 characters of [A-Za-z0-9-]; duplicates (case-insensitive) are an error naming the
 * line.  *words is an array of malloc'd strings. */
locus_status locus_signs_read_words(const char *path, char ***words, int *n);

/* Caption from a template: {word} (upper-cased word), {color} (board), {text} (letter colour),
 * {background}, {position} ("on the left", "in the middle", "on the right").  Returns a malloc'd string, or
 * NULL with an error for an unknown placeholder or a missing {word}. */
char *locus_signs_caption(const char *tmpl, const char *word, const char *color, const char *text,
                          const char *background, const char *position);

/* `locus dataset signs ...` */
int locus_cmd_dataset(int argc, char **argv);

/* `locus ocr [--json] IMAGE...` and `locus ocr --dataset DIR` (ocr_cmd.c). */
int locus_cmd_ocr(int argc, char **argv);

/* `locus compare A.png B.png | DIR_A DIR_B`: SSIM, PSNR, MSE as localize computes them (compare_cmd.c). */
int locus_cmd_compare(int argc, char **argv);

#endif
