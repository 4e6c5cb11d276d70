/* locus_cli.c — the `locus` command-line front end: one table of subcommands (the `commands` array below:
 * name, entry point, one line for `locus help`), dispatch, and the small commands info, tensors and version.
 * Every subcommand answers `locus CMD --help` (and `locus help CMD`) on stdout with exit 0, in the form of
 * cli_opts.h, from which the man pages and the bash completion are generated; `locus help --commands` lists
 * the names for those generators.  Each subcommand returns 0 on success and prints one clear error line
 * (exit 2) on bad input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/safetensors.h"
#include "../core/version.h"
#include "../simd/kernels.h"
#include "../models/pipeline.h"
#include "dataset.h" /* dataset signs, ocr, compare */
#include "generate.h"
#include "layers.h"
#include "grad.h"
#include "edit.h"
#include "localize.h"
#include "train_lora.h" /* lora-adamw: train-lora, lora */
#include "train_model.h" /* train: train vae|unet|pipeline */
#include "clip_score.h" /* issue 17: clip-score */
#include "../simd/ops.h"
#include "cli_opts.h"

static const locus_opt info_opts[] = {
    LOCUS_OPT_HELP("--model", "DIR  also print a pipeline folder's architecture, parameter counts, weight dtypes and peak-memory estimate (default: none)"),
};
static const locus_help info_help = {
    "info", "[--model DIR]",
    "Print the version, the kernel ISA in use, the thread count and the ISAs this CPU supports; with --model, a pipeline folder's architecture.",
    "Environment: LOCUS_ISA=scalar|avx2|avx512|neon forces a kernel table (an ISA the CPU lacks is an error);\n"
    "LOCUS_THREADS=N sets the threads (default: all cores).  Results do not depend on either.\n",
    NULL};

static int cmd_info(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        locus_help_print(stdout, &info_help, info_opts, 1, NULL, 0);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--model")) {
        locus_pipeline p;
        if (locus_pipeline_open(&p, argv[2]) != LOCUS_OK) { fprintf(stderr, "locus info: %s\n", locus_errmsg()); return 2; }
        locus_pipeline_print_info(&p, argv[2]);
        locus_pipeline_close(&p);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "locus: usage: locus info [--model DIR]\n");
        return 2;
    }
    if (locus_kernels_init() != LOCUS_OK) {
        fprintf(stderr, "locus: %s\n", locus_errmsg());
        return 2;
    }
    const locus_kernels *k = locus_k();
    printf("locus %s\n", LOCUS_VERSION);
    printf("isa: %s (gemm tile %dx%d)\n", k->name, k->mr, k->nr);
    printf("threads: %d\n", locus_threads());
    printf("supported:");
    static const char *names[] = {"scalar", "avx2", "avx512", "neon"};
    for (int i = 0; i < LOCUS_ISA_COUNT; i++)
        if (locus_kernels_for((locus_isa)i)) printf(" %s", names[i]);
    printf("\n");
    return 0;
}

static int cmd_tensors(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        static const locus_help h = {"tensors", "FILE.safetensors|FILE.safetensors.index.json",
                                     "Validate a safetensors file (or a sharded checkpoint's index) and list its tensors: name, dtype, shape.", NULL, NULL};
        locus_help_print(stdout, &h, NULL, 0, NULL, 0);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "locus: usage: locus tensors FILE.safetensors|FILE.safetensors.index.json\n");
        return 2;
    }
    locus_st_set set;
    if (locus_st_set_open(&set, argv[1]) != LOCUS_OK) {
        fprintf(stderr, "locus: %s\n", locus_errmsg());
        return 2;
    }
    size_t total = 0, params = 0;
    for (size_t f = 0; f < set.nfiles; f++)
        for (size_t i = 0; i < set.files[f].count; i++) {
            const locus_st_tensor *t = &set.files[f].tensors[i];
            char shp[128];
            printf("%-60s %-5s %s\n", t->name, locus_dtype_name(t->dtype), locus_shape_str(t->ndim, t->shape, shp, sizeof shp));
            total++;
            params += (size_t)locus_st_numel(t);
        }
    printf("%zu tensors, %zu elements, %zu file(s)\n", total, params, set.nfiles);
    locus_st_set_close(&set);
    return 0;
}

static int cmd_version(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        static const locus_help h = {"version", "", "Print the version.", NULL, NULL};
        locus_help_print(stdout, &h, NULL, 0, NULL, 0);
        return 0;
    }
    printf("locus %s\n", LOCUS_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

/* every subcommand: name, entry point, one line for `locus help` (each command's --help has the rest) */
static const struct { const char *name; int (*fn)(int, char **); const char *about; } commands[] = {
    {"generate", locus_cmd_generate, "text -> image, with text patching, hook-point caching and interventions"},
    {"layers", locus_cmd_layers, "attention layers in forward order, text parameters and their share, the paper's numbers"},
    {"localize", locus_cmd_localize, "the paper's layer sweep: each layer patched alone, OCR metrics, figures, report.html"},
    {"edit", locus_cmd_edit, "the paper's text editing (A re-run with B's text in the layers), Prompt-to-Prompt baseline"},
    {"detox", locus_cmd_detox, "toxic-text prevention: listed words patched with benign ones; negative-prompt / prompt-swap baselines"},
    {"merge", locus_cmd_merge, "join localize / edit / detox shards into the result of an unsharded run"},
    {"clip-score", locus_cmd_clip_score, "CLIP-T of images against prompts"},
    {"grad", locus_cmd_grad, "one training-loss evaluation: loss, prediction and every parameter's gradient"},
    {"train-lora", locus_cmd_train_lora, "LoRA fine-tuning of chosen layers (AdamW)"},
    {"lora", locus_cmd_lora, "list a LoRA file / merge adapters into the weights"},
    {"train", locus_cmd_train, "train an AutoencoderKL / UNet2DConditionModel from scratch, assemble a pipeline folder"},
    {"dataset", locus_cmd_dataset, "the synthetic signs data set"},
    {"ocr", locus_cmd_ocr, "what localize's OCR reads in images"},
    {"compare", locus_cmd_compare, "SSIM / PSNR / MSE between two images or two folders, as localize computes them"},
    {"info", cmd_info, "version, kernel ISA, threads, CPU support; a pipeline folder's architecture"},
    {"tensors", cmd_tensors, "validate a .safetensors file and list its tensors"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "this list, or a command's options"},
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

static int usage(FILE *f) {
    fprintf(f, "usage: locus COMMAND [options]\n       locus help COMMAND\n\n"
               "Text-to-image diffusion models on the CPU, bit-for-bit reproducibly, for interpretability: the text\n"
               "localization experiments of Staniszewski et al. (ICLR 2025), patching, caching, training.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-24s  %s\n", commands[i].name, commands[i].about);
    fprintf(f, "\n'locus COMMAND --help' (or 'locus help COMMAND') lists a command's options and defaults.\n"
               "Environment: LOCUS_ISA=scalar|avx2|avx512|neon forces a kernel table, LOCUS_THREADS=N the threads;\n"
               "results do not depend on either.\n");
    return f == stderr ? 2 : 0;
}

/* locus help [COMMAND [SUB]] | locus help --commands (the command names, one a line, for scripts) */
static int cmd_help(int argc, char **argv) {
    if (argc < 2) return usage(stdout);
    if (!strcmp(argv[1], "--commands")) {
        for (size_t i = 0; i < NCOMMANDS; i++) printf("%s\n", commands[i].name);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        static const locus_opt o[] = {LOCUS_OPT_HELP("--commands", "print the command names, one a line (default: the list with descriptions)")};
        static const locus_help h = {"help", "[COMMAND [SUB]]\n--commands", "List the commands, or print a command's options (the same as 'locus COMMAND --help').", NULL, NULL};
        locus_help_print(stdout, &h, o, 1, NULL, 0);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            char *av[4] = {argv[1], argc > 2 ? argv[2] : "--help", "--help", NULL};
            return commands[i].fn(argc > 2 ? 3 : 2, av);
        }
    fprintf(stderr, "locus help: unknown command '%s' (try 'locus help')\n", argv[1]);
    return 2;
}

int main(int argc, char **argv) {
    locus_choose_wait_policy(argv);
    if (argc < 2) return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version")) return cmd_version(1, argv + 1);
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return usage(stdout);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "locus: unknown command '%s' (try 'locus help')\n", cmd);
    return 2;
}
