/* dataset_cli.c — the `locus dataset` command line: `locus dataset signs --words FILE --n N --size WxH
 * --seed S -o DIR [options]` parsed into locus_signs_opts (dataset.h), one error line and exit 2 on bad
 * input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: locus dataset signs --words FILE -o DIR [--n N (1000)] [--size WxH (128x32)] [--seed S (0)]\n"
            "           [--fonts NAME|PATH,... (dejavu-sans-bold,dejavu-serif-bold,liberation-sans-bold)] [--gray]\n"
            "           [--templates FILE] [--no-rotate] [--max-rotation DEG (3)] [--min-letter-px N (16)]\n"
            "           [--max-letter-px N (60%% of the height)] [--split all|train|test] [--holdout N|F (0.1)]\n"
            "           [--split-seed S (0)] [--quiet]\n"
            "  One word (upper-cased) per image on a coloured sign; DIR gets NNNNN.png, metadata.jsonl\n"
            "  ({\"file_name\", \"text\", \"word\"} per line), words.txt and dataset.json.  Fonts: dejavu-sans-bold,\n"
            "  dejavu-serif-bold, dejavu-mono-bold, dejavu-sans, liberation-sans-bold, liberation-serif-bold,\n"
            "  liberation-mono-bold, or paths.  Templates: one per line with {word} and any of {color} {text}\n"
            "  {background} {position}.  --split test keeps the held-out words (a fraction or a count, chosen by\n"
            "  --split-seed), train the others.  Same seed, same bytes, for any thread count.\n");
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
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "signs")) {
        fprintf(stderr, "locus dataset: unknown data set '%s' (known: signs)\n", argv[1]);
        return 2;
    }
    locus_signs_opts o;
    locus_signs_defaults(&o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        long long x;
        if (!strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--gray")) { o.gray = 1; continue; }
        if (!strcmp(a, "--no-rotate")) { o.rotate = 0; continue; }
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
