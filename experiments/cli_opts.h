/* cli_opts.h — a table-driven command-line parser for the subcommands: one table of options (flag, kind,
 * field, range, help) gives strict parsing (the whole string, the range, no silent wrap), one-line errors and
 * `--help` listing every option with its default. */
#ifndef LOCUS_CLI_OPTS_H
#define LOCUS_CLI_OPTS_H

#include <stddef.h>

#define LOCUS_OPTLIST_MAX 8
typedef struct { const char *v[LOCUS_OPTLIST_MAX]; int n; } locus_optlist; /* a repeatable option's values */

/* kind: 's' string (const char *), 'l' repeatable string (locus_optlist), 'i' integer in [lo, hi] (long
 * long), 'f' number in [lo, hi] (double).  off: offsetof the field in the caller's struct. */
typedef struct { const char *flag; char kind; size_t off; long long lo, hi; const char *help; } locus_opt;
#define LOCUS_OPT_S(T, f, m, h) {f, 's', offsetof(T, m), 0, 0, h}
#define LOCUS_OPT_L(T, f, m, h) {f, 'l', offsetof(T, m), 0, LOCUS_OPTLIST_MAX, h}
#define LOCUS_OPT_I(T, f, m, lo, hi, h) {f, 'i', offsetof(T, m), lo, hi, h}
#define LOCUS_OPT_F(T, f, m, lo, hi, h) {f, 'f', offsetof(T, m), lo, hi, h}

/* Parse argv[1..argc-1] (every option takes a value) into the struct at base.  Returns 0; 2 after printing
 * "locus CMD: <problem>" on stderr (unknown option, missing value, bad number, too many repeats); or -1
 * after printing the option table on stdout for --help. */
int locus_opts_parse(const char *cmd, const locus_opt *opts, size_t nopts, int argc, char **argv, void *base);

#endif
