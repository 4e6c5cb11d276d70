/* cli_opts.c — table-driven option parsing (see cli_opts.h). */
#include "cli_opts.h"

#include "../core/numparse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int locus_opts_parse(const char *cmd, const locus_opt *opts, size_t nopts, int argc, char **argv, void *base) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("locus %s options:\n", cmd);
            for (size_t k = 0; k < nopts; k++) printf("  %-22s %s\n", opts[k].flag, opts[k].help);
            return -1;
        }
        const locus_opt *o = NULL;
        for (size_t k = 0; k < nopts && !o; k++) o = strcmp(argv[i], opts[k].flag) ? NULL : &opts[k];
        if (!o) { fprintf(stderr, "locus %s: unknown option %s (see 'locus %s --help')\n", cmd, argv[i], cmd); return 2; }
        if (i + 1 >= argc) { fprintf(stderr, "locus %s: option %s needs a value\n", cmd, argv[i]); return 2; }
        const char *v = argv[++i];
        char *field = (char *)base + o->off;
        if (o->kind == 's') { *(const char **)field = v; continue; }
        if (o->kind == 'l') {
            locus_optlist *l = (locus_optlist *)field;
            if (l->n == LOCUS_OPTLIST_MAX) { fprintf(stderr, "locus %s: %s %s: at most %d of them\n", cmd, o->flag, v, LOCUS_OPTLIST_MAX); return 2; }
            l->v[l->n++] = v;
            continue;
        }
        /* strict (core/numparse.h): the whole value, in range, finite — no trailing junk, wrap-around or nan */
        int ok = o->kind == 'f' ? locus_parse_double(v, (double)o->lo, (double)o->hi, (double *)field)
                                : locus_parse_ll(v, o->lo, o->hi, (long long *)field);
        if (!ok) {
            fprintf(stderr, "locus %s: %s %s: expected %s from %lld to %lld\n", cmd, o->flag, v, o->kind == 'f' ? "a number" : "an integer", o->lo, o->hi);
            return 2;
        }
    }
    return 0;
}
