/* cli_opts.c — table-driven option parsing and the one --help printer (see cli_opts.h for the format the
 * man-page and completion generators read). */
#include "cli_opts.h"

#include "../core/numparse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_opts(FILE *f, const locus_opt *o, size_t n) {
    for (size_t k = 0; k < n; k++) fprintf(f, "  %-24s  %s\n", o[k].flag, o[k].help);
}

void locus_help_print(FILE *f, const locus_help *h, const locus_opt *opts, size_t n, const locus_opt *more, size_t nmore) {
    const char *s = h->synopsis ? h->synopsis : "[options]";
    fprintf(f, "usage: locus %s ", h->cmd);
    for (; *s; s++) {
        if (*s == '\n') fprintf(f, "\n       locus %s ", h->cmd);
        else fputc(*s, f);
    }
    fprintf(f, "\n\n%s\n", h->about);
    if (h->text) fprintf(f, "%s%s", h->text, h->text[0] && h->text[strlen(h->text) - 1] != '\n' ? "\n" : "");
    if (h->subs) fprintf(f, "\ncommands: %s\n", h->subs);
    if (n + nmore) {
        fprintf(f, "\noptions:\n");
        print_opts(f, opts, n);
        print_opts(f, more, nmore);
    }
}

int locus_opts_parse(const locus_help *h, const locus_opt *opts, size_t nopts, int argc, char **argv, void *base) {
    const char *cmd = h->cmd;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            locus_help_print(stdout, h, opts, nopts, NULL, 0);
            return -1;
        }
        const locus_opt *o = NULL;
        for (size_t k = 0; k < nopts && !o; k++) o = opts[k].kind && !strcmp(argv[i], opts[k].flag) ? &opts[k] : NULL;
        if (!o) { fprintf(stderr, "locus %s: unknown option %s (see 'locus %s --help')\n", cmd, argv[i], cmd); return 2; }
        char *field = (char *)base + o->off;
        if (o->kind == 'b') { *(int *)field = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "locus %s: option %s needs a value\n", cmd, argv[i]); return 2; }
        const char *v = argv[++i];
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
