/* generate_opts.h — the options of `locus generate` (the parsed arguments and their table with --help text),
 * apart from generate.c so the command itself stays short.  Private to generate.c / generate_opts.c. */
#ifndef LOCUS_GENERATE_OPTS_H
#define LOCUS_GENERATE_OPTS_H

#include <stddef.h>

#include "cli_opts.h"

typedef struct {
    const char *model, *prompt, *negative, *out, *noise_file, *embeds_file, *dump_file, *sampler, *halves;
    const char *patch_prompt, *patch_embeds, *patch_layers, *cache_file, *cache_points, *intervene, *iv_steps, *iv_heads, *iv_half;
    const char *size_cond[3]; /* --original-size H,W, --crops-coords-top-left Y,X, --target-size H,W (SDXL) */
    locus_optlist lora; /* --lora FILE[:SCALE], repeatable */
    long long seed, steps, width, height, threads, max_seq, clip_skip, start_step, iv_nheads;
    double guidance;
} gen_args;

extern const locus_opt locus_generate_opts[];
extern const size_t locus_generate_nopts;
extern const locus_help locus_generate_help;

#endif
