/* localize_help.c — the --help text of `locus localize`, `locus edit`, `locus detox` (one parser,
 * parse_localize in localize.c; edit adds --p2p-tau, detox --benign) and `locus merge`, in the common form
 * of cli_opts.h.  Every option parse_localize accepts must be listed here: tests/help_test.sh reads the
 * parser's option names from the source and fails when --help lacks one. */
#include <stdio.h>
#include <string.h>

#include "cli_opts.h"
#include "localize_int.h"

static const locus_opt common[] = {
    LOCUS_OPT_HELP("--model", "DIR  diffusers pipeline folder (required)"),
    LOCUS_OPT_HELP("-o", "RESULTS_DIR  new (or, with --resume, existing) results directory (required)"),
    LOCUS_OPT_HELP("--out", "RESULTS_DIR  same as -o (required)"),
    LOCUS_OPT_HELP("--words", "FILE  one word per line, put into --template; repeatable, at most 64 files (one of --words, --prompts, --pairs is required)"),
    LOCUS_OPT_HELP("--prompts", "FILE  one prompt per line with the text in double quotes (default: none)"),
    LOCUS_OPT_HELP("--pairs", "FILE  explicit A,B pairs, CSV, optional a,b header (default: none)"),
    LOCUS_OPT_HELP("--template", "TEXT  prompt with {} where the word goes (default 'A sign that says \"{}\".')"),
    LOCUS_OPT_HELP("--preset", "paper-sd3|paper-sdxl|paper-if  the paper's steps, guidance, layers, start step, halves, MSE and quantization; options given override it (default: none)"),
    LOCUS_OPT_HELP("--pairing", "derange|paper  target B per word: seeded derangement, or numpy RandomState(42) as the authors (default derange)"),
    LOCUS_OPT_HELP("--perm-seed", "N  seed of the derangement (default 0)"),
    LOCUS_OPT_HELP("--seeds", "LIST  seeds and ranges, e.g. 0,1,5-9 (default 0)"),
    LOCUS_OPT_HELP("--layers", "all|L1,L2+L3,#N  layer groups, each patched alone; + joins layers of one group; #N the paper's numbers (default: localize all, edit/detox the preset's)"),
    LOCUS_OPT_HELP("--start-step", "K  first patched denoiser evaluation (default 0, or the preset's start index for edit/detox)"),
    LOCUS_OPT_HELP("--patch-halves", "cond|both  CFG halves given B's text (default cond; presets both)"),
    LOCUS_OPT_HELP("--steps", "N  denoising steps (default 50, or the preset's)"),
    LOCUS_OPT_HELP("--guidance", "F  classifier-free guidance scale (default: the pipeline's, or the preset's)"),
    LOCUS_OPT_HELP("--sampler", "ddim|euler|pndm|flow  denoising scheduler (default: the folder's scheduler)"),
    LOCUS_OPT_HELP("--negative-prompt", "TEXT  negative prompt (default: none: the empty prompt, or zeros for SDXL's force_zeros_for_empty_prompt)"),
    LOCUS_OPT_HELP("--width", "W  image width (default: the model's size)"),
    LOCUS_OPT_HELP("--height", "H  image height (default: the model's size)"),
    LOCUS_OPT_HELP("--max-sequence-length", "N  T5 tokens of SD3 (default 256)"),
    LOCUS_OPT_HELP("--quantize", "round|trunc  float -> uint8 as PIL (round) or as the authors' scripts (trunc) (default round; presets trunc)"),
    LOCUS_OPT_HELP("--mse", "true|uint8-wrap  MSE and PSNR from true differences or numpy's uint8 wrap-around (default true; presets uint8-wrap)"),
    LOCUS_OPT_HELP("--clip", "CLIP_DIR  Hugging Face CLIP folder: CLIP-T against prompts A and B per row and in the summary (default: none)"),
    LOCUS_OPT_HELP("--grid-cols", "N  prompts (columns) in grid.png and heatmap.png (default 8)"),
    LOCUS_OPT_HELP("--shard", "I/N  run only shard I of N of the prompt x seed groups; join with locus merge (default 0/1)"),
    LOCUS_OPT_HELP("--resume", "continue a killed run in RESULTS_DIR, same bits (default: off)"),
    LOCUS_OPT_HELP("--threads", "N  threads (default: all cores; results do not change)"),
};
static const locus_opt edit_only[] = {
    LOCUS_OPT_HELP("--p2p-tau", "F  Prompt-to-Prompt baseline: A's cross-attention maps over B's run for the first F of the steps, UNets only (default 0.4 on UNets, 0 = off)"),
};
static const locus_opt detox_only[] = {
    LOCUS_OPT_HELP("--benign", "FILE  benign words patched in, at least as many as --words (required)"),
};

static const locus_help help_localize = {
    "localize", "--model DIR (--words FILE... | --prompts FILE | --pairs FILE) -o RESULTS_DIR [options]",
    "The paper's layer localization: each attention layer (group) patched alone with a deranged word's prompt, images read by OCR and scored.",
    "Per prompt and seed: A's image, B's image and A's image with each layer given B's text.  Tesseract reads each image;\n"
    "metrics as the paper (OCR-F1 against A's and B's words, acc, exact match, Levenshtein) and SSIM/PSNR/MSE against A's\n"
    "image.  RESULTS_DIR gets config.json, results.jsonl/.csv (one row per cell, durable), images/, summary.csv/.json,\n"
    "ocr_f1.png, grid.png, heatmap.png, report.html (one self-contained page: sortable summary, figures, every cell's\n"
    "image) and runs.log.  Resumable (--resume) and shardable (--shard, then locus merge); bit-identical across ISAs\n"
    "and threads.\n",
    NULL};
static const locus_help help_edit = {
    "edit", "--model DIR (--words FILE... | --prompts FILE | --pairs FILE) -o RESULTS_DIR (--preset NAME | --layers L) [options]",
    "The paper's text editing: A re-run with B's text in the chosen layers from the start step, with the Prompt-to-Prompt baseline on UNets.",
    "Cells per pair and seed: A (the reference), B, the patched run and the P2P word swap.  Rows, summary (per cell kind),\n"
    "figures, report.html, --resume, --shard and locus merge as in localize.\n",
    NULL};
static const locus_help help_detox = {
    "detox", "--model DIR --words LISTED --benign BENIGN -o RESULTS_DIR (--preset NAME | --layers L) [options]",
    "Toxic-text prevention: each listed word's prompt patched with a benign word's text, with the negative-prompt and prompt-swap baselines.",
    "Cells: the listed word's image (reference), the benign prompt's image, the patched image and the negative-prompt\n"
    "baseline; the summary adds listed_share (images whose OCR text contains a listed word).  Rows, figures,\n"
    "report.html, --resume, --shard and locus merge as in localize.\n",
    NULL};

int lz_help(int experiment) {
    const locus_help *h = experiment == LZ_EDIT ? &help_edit : experiment == LZ_DETOX ? &help_detox : &help_localize;
    const locus_opt *more = experiment == LZ_EDIT ? edit_only : experiment == LZ_DETOX ? detox_only : NULL;
    locus_help_print(stdout, h, common, sizeof common / sizeof *common, more, more ? 1 : 0);
    return 0;
}

static const locus_opt merge_opts[] = {
    LOCUS_OPT_HELP("-o", "RESULTS_DIR  the merged results directory, new or empty (required)"),
    LOCUS_OPT_HELP("--out", "RESULTS_DIR  same as -o (required)"),
};
static const locus_help help_merge = {
    "merge", "-o RESULTS_DIR SHARD_DIR...",
    "Join the shards of a localize, edit or detox run (--shard I/N) into the result of an unsharded run, byte for byte.",
    "Every shard must be complete and from the same configuration; a missing shard is named.\n", NULL};

int lz_merge_help(void) {
    locus_help_print(stdout, &help_merge, merge_opts, sizeof merge_opts / sizeof *merge_opts, NULL, 0);
    return 0;
}
