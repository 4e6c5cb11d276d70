/* cli_opts.h — a table-driven command-line parser for the subcommands, and the one `--help` printer every
 * subcommand uses.  One table of options (flag, kind, field, range, help) gives strict parsing (the whole
 * string, the range, no silent wrap) and one-line errors; the same table, with the command's synopsis and
 * description (locus_help), gives `locus CMD --help`, from which the man pages and the bash completion are
 * generated at build time (tools/gen_man.sh, tools/gen_completion.sh).  Commands that still parse by hand
 * list their options with LOCUS_OPT_HELP entries so their --help has the same form.
 *
 * The --help format (the generators read it; keep it):
 *   usage: locus CMD SYNOPSIS            first line; further synopsis lines start with 7 spaces
 *          (blank)
 *   ABOUT                                one sentence: what the command does (the man page's NAME line)
 *   TEXT...                              optional description lines
 *          (blank)
 *   commands: SUB1 SUB2                  optional: the words that may follow CMD
 *   options:                             then one line per option:
 *     --flag                    help     two spaces, the flag, at least two spaces, the help (which starts
 *                                        with the value's name, e.g. "DIR  ...", and names the default) */
#ifndef LOCUS_CLI_OPTS_H
#define LOCUS_CLI_OPTS_H

#include <stddef.h>
#include <stdio.h>

#define LOCUS_OPTLIST_MAX 8
typedef struct { const char *v[LOCUS_OPTLIST_MAX]; int n; } locus_optlist; /* a repeatable option's values */

/* kind: 's' string (const char *), 'l' repeatable string (locus_optlist), 'i' integer in [lo, hi] (long
 * long), 'f' number in [lo, hi] (double), 'b' flag without a value (int set to 1), 0 listed in --help only
 * (the caller handles it before or instead of locus_opts_parse).  off: offsetof the field in the caller's
 * struct. */
typedef struct { const char *flag; char kind; size_t off; long long lo, hi; const char *help; } locus_opt;
#define LOCUS_OPT_S(T, f, m, h) {f, 's', offsetof(T, m), 0, 0, h}
#define LOCUS_OPT_L(T, f, m, h) {f, 'l', offsetof(T, m), 0, LOCUS_OPTLIST_MAX, h}
#define LOCUS_OPT_I(T, f, m, lo, hi, h) {f, 'i', offsetof(T, m), lo, hi, h}
#define LOCUS_OPT_F(T, f, m, lo, hi, h) {f, 'f', offsetof(T, m), lo, hi, h}
#define LOCUS_OPT_B(T, f, m, h) {f, 'b', offsetof(T, m), 0, 0, h}
#define LOCUS_OPT_HELP(f, h) {f, 0, 0, 0, 0, h}

/* A subcommand's help text around its option table.  cmd: "generate", "lora merge"; synopsis: what follows
 * "usage: locus CMD " ('\n' starts another form, printed as "       locus CMD ..."); about: one sentence;
 * text: further description lines or NULL; subs: the space-separated words that may follow CMD, or NULL. */
typedef struct { const char *cmd, *synopsis, *about, *text, *subs; } locus_help;

/* Print h and the options of opts[0..n) then more[0..nmore) (either may be empty) to f in the format above. */
void locus_help_print(FILE *f, const locus_help *h, const locus_opt *opts, size_t n, const locus_opt *more, size_t nmore);

/* Parse argv[1..argc-1] into the struct at base.  Returns 0; 2 after printing "locus CMD: <problem>" on
 * stderr (unknown option, missing value, bad number, too many repeats); or -1 after printing the help
 * (h, then opts) on stdout for --help or -h. */
int locus_opts_parse(const locus_help *h, const locus_opt *opts, size_t nopts, int argc, char **argv, void *base);

#endif
