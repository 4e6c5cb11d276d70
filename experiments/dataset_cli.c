/* dataset_cli.c — the `locus dataset` command line: `locus dataset signs --words FILE --n N --size WxH
 * --seed S -o DIR [options]` parsed into locus_signs_opts (dataset.h), one error line and exit 2 on bad
 * input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_opts.h"
#include "dataset.h"

static const locus_opt ds_opts[] = { /* the options locus_cmd_dataset parses, for --help */
    LOCUS_OPT_HELP("--words", "FILE  one word per line (required)"),
    LOCUS_OPT_HELP("-o", "DIR  output folder (required)"),
    LOCUS_OPT_HELP("--output", "DIR  same as -o (required)"),
    LOCUS_OPT_HELP("--n", "N  images (default 1000)"),
    LOCUS_OPT_HELP("--size", "WxH  image size, width 32-4096, height 16-4096 (default 128x32)"),
    LOCUS_OPT_HELP("--seed", "S  seed of words, colours, fonts and layout (default 0)"),
    LOCUS_OPT_HELP("--fonts", "NAME|PATH,...  dejavu-sans-bold, dejavu-serif-bold, dejavu-mono-bold, dejavu-sans, liberation-sans-bold, "
                              "liberation-serif-bold, liberation-mono-bold or font files (default dejavu-sans-bold,dejavu-serif-bold,liberation-sans-bold)"),
    LOCUS_OPT_HELP("--templates", "FILE  caption templates, one per line with {word} and any of {color} {text} {background} {position} (default: built in)"),
    LOCUS_OPT_HELP("--gray", "gray-scale images: 1-channel PNGs, gray signs and backgrounds (default: off)"),
    LOCUS_OPT_HELP("--no-rotate", "no rotation (default: rotated up to --max-rotation)"),
    LOCUS_OPT_HELP("--max-rotation", "DEG  0-15 (default 3)"),
    LOCUS_OPT_HELP("--centered", "every board centred in the image (default: placed anywhere it fits)"),
    LOCUS_OPT_HELP("--min-letter-px", "N  smallest letter height (default 16)"),
    LOCUS_OPT_HELP("--max-letter-px", "N  largest letter height (default 60% of the height)"),
    LOCUS_OPT_HELP("--split", "all|train|test  test keeps the held-out words, train the others (default all)"),
    LOCUS_OPT_HELP("--holdout", "N|F  held-out words: a count, or a fraction below 1 (default 0.1)"),
    LOCUS_OPT_HELP("--split-seed", "S  seed choosing the held-out words (default 0)"),
    LOCUS_OPT_HELP("--quiet", "no progress lines (default: off)"),
};
static const locus_help ds_help = {
    "dataset", "signs --words FILE -o DIR [options]",
    "Make the synthetic signs data set: one word (upper-cased) per image on a coloured sign, with captions naming colour and layout.",
    "DIR gets NNNNN.png, metadata.jsonl ({\"file_name\", \"text\", \"word\"} per line), words.txt and dataset.json.\n"
    "Same seed, same bytes, for any thread count.\n",
    "signs"};

static int usage(FILE *f) {
    locus_help_print(f, &ds_help, ds_opts, sizeof ds_opts / sizeof *ds_opts, NULL, 0);
    return 0;
}

static int bad(const char *flag, const char *v, const char *want) {
    fprintf(stderr, "locus dataset: %s %s: expected %s\n", flag, v, want);
    return 2;
}

static int parse_int(const char *flag, const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        char want[96];
        snprintf(want, sizeof want, "an integer from %lld to %lld", lo, hi);
        return bad(flag, v, want);
    }
    *out = x;
    return 0;
}

int locus_cmd_dataset(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "locus dataset: give a data set: signs (see 'locus dataset --help')\n"); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) return usage(stdout);
    if (strcmp(argv[1], "signs")) {
        fprintf(stderr, "locus dataset: unknown data set '%s' (known: signs)\n", argv[1]);
        return 2;
    }
    locus_signs_opts o;
    locus_signs_defaults(&o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        long long x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout);
        if (!strcmp(a, "--gray")) { o.gray = 1; continue; }
        if (!strcmp(a, "--no-rotate")) { o.rotate = 0; continue; }
        if (!strcmp(a, "--centered")) { o.centered = 1; continue; }
        if (!strcmp(a, "--quiet")) { o.quiet = 1; continue; }
        if (a[0] != '-') { fprintf(stderr, "locus dataset: unexpected argument '%s'\n", a); return 2; }
        if (i + 1 >= argc) { fprintf(stderr, "locus dataset: option %s needs a value\n", a); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "--words")) o.words_file = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o.out_dir = v;
        else if (!strcmp(a, "--fonts")) o.fonts = v;
        else if (!strcmp(a, "--templates")) o.templates_file = v;
        else if (!strcmp(a, "--split")) o.split = v;
        else if (!strcmp(a, "--n")) { if (parse_int(a, v, 1, 100000000, &o.n)) return 2; }
        else if (!strcmp(a, "--seed")) { if (parse_int(a, v, 0, (1LL << 62), &o.seed)) return 2; }
        else if (!strcmp(a, "--split-seed")) { if (parse_int(a, v, 0, (1LL << 62), &o.split_seed)) return 2; }
        else if (!strcmp(a, "--min-letter-px")) { if (parse_int(a, v, 4, 4096, &x)) return 2; o.min_letter_px = (int)x; }
        else if (!strcmp(a, "--max-letter-px")) { if (parse_int(a, v, 4, 4096, &x)) return 2; o.max_letter_px = (int)x; }
        else if (!strcmp(a, "--size")) {
            int w, h, n = 0;
            if (sscanf(v, "%dx%d%n", &w, &h, &n) != 2 || v[n] || w < 32 || h < 16 || w > 4096 || h > 4096)
                return bad(a, v, "WxH, e.g. 256x64 (width 32-4096, height 16-4096)");
            o.width = w;
            o.height = h;
        } else if (!strcmp(a, "--max-rotation") || !strcmp(a, "--holdout")) {
            char *end;
            errno = 0;
            double d = strtod(v, &end);
            if (errno || end == v || *end || d < 0) return bad(a, v, "a non-negative number");
            if (a[2] == 'm') {
                if (d > 15) return bad(a, v, "degrees from 0 to 15");
                o.max_rotation_ddeg = (int)(d * 10 + 0.5);
            } else o.holdout = d;
        } else { fprintf(stderr, "locus dataset: unknown option %s (see 'locus dataset --help')\n", a); return 2; }
    }
    if (locus_signs_generate(&o) != LOCUS_OK) {
        fprintf(stderr, "locus dataset: %s\n", locus_errmsg());
        return 2;
    }
    return 0;
}
