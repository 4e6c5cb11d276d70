/* metrics.h — the localization experiment's per-image metrics, computed as the paper's evaluation code does.
 *
 * Text (Staniszewski et al. 2025, src/eval/ocr_eval.py and text_distance.py of the authors' code):
 *  - bag-of-characters precision / recall: the OCR string and the target word are both taken as sequences of
 *    characters (code points), lower-cased as Python's str.lower() (Unicode full mappings), each whitespace character counting as an empty piece; matched =
 *    size of the multiset intersection; P = matched / (|ocr| + 1e-8), R = matched / (|word| + 1e-8).
 *  - "acc" as the paper: the sorted non-whitespace characters of both are equal (an anagram test); "exact": the
 *    OCR string with surrounding whitespace removed equals the word (both lower-cased).
 *  - Levenshtein distance between the lower-cased strings (code points).
 *  - OCR-F1 of a set of images = F1 of the mean precision and the mean recall, 2PR / (P + R + 1e-6).
 * Image (8-bit RGB, H x W x 3): MSE (true, in double), the paper's MSE with numpy uint8 wrap-around
 * ((a - b) mod 256, squared mod 256: about 105 for unrelated images), PSNR = 20 log10(255) - 10 log10(MSE) from
 * whichever MSE was selected (so with the uint8-wrap MSE, PSNR is the authors' PSNR, not the true one), and SSIM
 * as pytorch_msssim.ssim(data_range=255): 11-tap Gaussian window with sigma 1.5, valid convolution,
 * K1 = 0.01, K2 = 0.03, mean over pixels and channels.
 * All functions are pure and deterministic (plain C, double precision, fixed loop order).
 */
#ifndef LOCUS_METRICS_H
#define LOCUS_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double precision, recall;
    int acc;   /* the paper's sorted-characters equality */
    int exact; /* trimmed OCR text == word */
    int levenshtein;
} locus_text_metrics;

/* Compare an OCR string with a target word (both UTF-8). */
locus_text_metrics locus_text_compare(const char *ocr, const char *word);

/* Levenshtein distance between two UTF-8 strings, lower-cased, counted in code points. */
int locus_levenshtein(const char *a, const char *b);

/* F1 of a mean precision and mean recall as the authors compute it: 2PR / (P + R + 1e-6) (0 when both are 0;
 * slightly below the textbook 2PR / (P + R) otherwise, e.g. 0.333333 -> 0.33333289 for P = 0.5, R = 0.25). */
double locus_f1(double precision, double recall);

/* a, b: H x W x 3 uint8 pixels. */
double locus_mse_u8(const uint8_t *a, const uint8_t *b, int H, int W);
double locus_mse_u8_wrap(const uint8_t *a, const uint8_t *b, int H, int W);
double locus_psnr(double mse);
/* Returns -2 (impossible SSIM) when the image is smaller than the 11x11 window. */
double locus_ssim_u8(const uint8_t *a, const uint8_t *b, int H, int W);

#endif
