/* ocr_cmd.c — `locus ocr`: what the localization metrics read in an image.  The engine, its settings and the
 * normalisation are exactly `locus localize`'s (experiments/ocr.c: tesseract, sparse-text page segmentation,
 * pieces joined by single spaces, lower-cased; the image as it is, no rescaling), so a word that `locus ocr`
 * reads here is a word the localization sweep would score.
 *
 *   locus ocr [--json] IMAGE...          one line per image: "<path>\t<text>" (or a JSON object per line)
 *   locus ocr [--json] --dataset DIR [--limit N]
 *                                        the images of a `locus dataset signs` folder (metadata.jsonl), each
 *                                        scored against its word with the paper's metrics (metrics.h), then a
 *                                        summary: exact matches, acc, OCR-F1
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/jsonw.h"
#include "../core/png.h"
#include "../core/strbuf.h"
#include "cli_opts.h"
#include "dataset.h"
#include "metrics.h"
#include "ocr.h"

static const locus_opt ocr_opts[] = { /* the options locus_cmd_ocr parses, for --help */
    LOCUS_OPT_HELP("--json", "one JSON object per line instead of \"<path>\\t<text>\" (default: off)"),
    LOCUS_OPT_HELP("--dataset", "DIR  score the images of a locus dataset signs folder (metadata.jsonl) against their words (default: none)"),
    LOCUS_OPT_HELP("--limit", "N  --dataset: only the first N images (default: all)"),
    LOCUS_OPT_HELP("--", "the arguments after it are images, even if they start with '-' (default: none)"),
};
static const locus_help ocr_help = {
    "ocr", "[--json] IMAGE.png...\n[--json] --dataset DIR [--limit N]",
    "What localize's OCR reads in images: tesseract with localize's exact settings and normalisation.",
    "With --dataset each image is scored against its word with the paper's metrics, then a summary: exact matches,\n"
    "acc, OCR-F1.\n",
    NULL};

static int usage(void) {
    fprintf(stderr, "locus ocr: usage: locus ocr [--json] IMAGE.png... | locus ocr [--json] --dataset DIR [--limit N]\n");
    return 2;
}

typedef struct {
    int json, n, exact, acc;
    double psum, rsum;
} ocr_tally;

/* Read one image and print its line; word (may be NULL) is the expected text, scored when given. */
static int ocr_one(locus_ocr *ocr, const char *path, const char *word, ocr_tally *t) {
    uint8_t *pix = NULL;
    int w, h;
    if (locus_png_read_rgb(path, &pix, &w, &h) != LOCUS_OK) {
        fprintf(stderr, "locus ocr: %s\n", locus_errmsg());
        return 2;
    }
    char *text = locus_ocr_read(ocr, pix, w, h);
    free(pix);
    if (!text) {
        fprintf(stderr, "locus ocr: %s: %s\n", path, locus_errmsg());
        return 2;
    }
    locus_text_metrics m = {0};
    if (word) {
        m = locus_text_compare(text, word);
        t->n++;
        t->exact += m.exact;
        t->acc += m.acc;
        t->psum += m.precision;
        t->rsum += m.recall;
    }
    if (t->json) {
        locus_strbuf b = {0};
        locus_jsonw jw;
        locus_jw_init(&jw, &b);
        locus_jw_object(&jw, LOCUS_JW_INLINE);
        locus_jw_key(&jw, "path"); locus_jw_str(&jw, path);
        locus_jw_key(&jw, "text"); locus_jw_str(&jw, text);
        if (word) {
            locus_jw_key(&jw, "word"); locus_jw_str(&jw, word);
            locus_jw_key(&jw, "exact"); locus_jw_bool(&jw, m.exact);
            locus_jw_key(&jw, "acc"); locus_jw_bool(&jw, m.acc);
            locus_jw_key(&jw, "precision"); locus_jw_num(&jw, m.precision);
            locus_jw_key(&jw, "recall"); locus_jw_num(&jw, m.recall);
            locus_jw_key(&jw, "levenshtein"); locus_jw_int(&jw, m.levenshtein);
        }
        locus_jw_end(&jw);
        printf("%s\n", locus_sb_str(&b));
        locus_sb_free(&b);
    } else if (word) printf("%s\t%s\t%s\t%s\n", path, text, word, m.exact ? "exact" : "differs");
    else printf("%s\t%s\n", path, text);
    free(text);
    return 0;
}

/* The images and words listed in DIR/metadata.jsonl (the "word" member, else the first "..." in "text"). */
static int ocr_dataset(locus_ocr *ocr, const char *dir, long limit, ocr_tally *t) {
    char path[4096], *data;
    size_t len;
    snprintf(path, sizeof path, "%s/metadata.jsonl", dir);
    if (locus_read_file(path, &data, &len) != LOCUS_OK) {
        fprintf(stderr, "locus ocr: %s: cannot read (%s)\n", path, locus_errmsg());
        return 2;
    }
    int rc = 0, line = 0;
    for (char *s = data; s && *s && !rc && (limit <= 0 || t->n < limit);) {
        char *e = strchr(s, '\n');
        if (e) *e = 0;
        line++;
        if (*s) {
            locus_json_doc d;
            if (locus_json_parse(&d, s, strlen(s), path) != LOCUS_OK) {
                fprintf(stderr, "locus ocr: %s line %d: %s\n", path, line, locus_errmsg());
                rc = 2;
                break;
            }
            const char *file = locus_json_str(d.root, "file_name", NULL, NULL);
            const char *word = locus_json_str(d.root, "word", NULL, NULL), *text = locus_json_str(d.root, "text", NULL, NULL);
            char wbuf[256] = "";
            if (!word && text && strchr(text, '"')) { /* the quoted part of the caption */
                const char *q = strchr(text, '"') + 1, *q2 = strchr(q, '"');
                if (q2 && q2 - q < (long)sizeof wbuf) { memcpy(wbuf, q, (size_t)(q2 - q)); wbuf[q2 - q] = 0; word = wbuf; }
            }
            if (!file || !word) {
                fprintf(stderr, "locus ocr: %s line %d: needs \"file_name\" and a \"word\" (or a quoted word in \"text\")\n", path, line);
                rc = 2;
            } else {
                char img[4096];
                snprintf(img, sizeof img, "%s/%s", dir, file);
                rc = ocr_one(ocr, img, word, t);
            }
            locus_json_free(&d);
        }
        s = e ? e + 1 : NULL;
    }
    free(data);
    if (!rc && t->n == 0) { fprintf(stderr, "locus ocr: %s lists no images\n", path); rc = 2; }
    if (rc) return rc;
    double P = t->psum / t->n, R = t->rsum / t->n;
    if (t->json)
        printf("{\"summary\": {\"images\": %d, \"exact\": %d, \"exact_rate\": %.6f, \"acc\": %d, \"precision\": %.6f, \"recall\": %.6f, \"ocr_f1\": %.6f}}\n",
               t->n, t->exact, (double)t->exact / t->n, t->acc, P, R, locus_f1(P, R));
    else
        printf("# images %d, exact %d (%.1f%%), acc %d, OCR-F1 %.4f (precision %.4f, recall %.4f)\n", t->n, t->exact,
               100.0 * t->exact / t->n, t->acc, locus_f1(P, R), P, R);
    return 0;
}

int locus_cmd_ocr(int argc, char **argv) {
    ocr_tally t = {0};
    const char *dir = NULL;
    long limit = 0;
    int first = 1;
    for (; first < argc && argv[first][0] == '-' && argv[first][1]; first++) {
        if (!strcmp(argv[first], "--help") || !strcmp(argv[first], "-h")) {
            locus_help_print(stdout, &ocr_help, ocr_opts, sizeof ocr_opts / sizeof *ocr_opts, NULL, 0);
            return 0;
        }
        if (!strcmp(argv[first], "--json")) t.json = 1;
        else if (!strcmp(argv[first], "--dataset") && first + 1 < argc) dir = argv[++first];
        else if (!strcmp(argv[first], "--limit") && first + 1 < argc) {
            char *end;
            limit = strtol(argv[++first], &end, 10);
            if (*end || limit < 1) { fprintf(stderr, "locus ocr: --limit %s: expected a positive integer\n", argv[first]); return 2; }
        } else if (!strcmp(argv[first], "--")) { first++; break; }
        else return usage();
    }
    if (dir ? first != argc : first == argc) return usage();
    locus_ocr *ocr;
    if (locus_ocr_open(&ocr) != LOCUS_OK) {
        fprintf(stderr, "locus ocr: %s\n", locus_errmsg());
        return 2;
    }
    int rc = 0;
    if (dir) rc = ocr_dataset(ocr, dir, limit, &t);
    else
        for (int i = first; i < argc && !rc; i++) rc = ocr_one(ocr, argv[i], NULL, &t);
    locus_ocr_close(ocr);
    return rc;
}
