/* locus_cli.c — the `locus` command-line front end.
 *
 *   locus info [--model DIR]   ISA table in use, threads, CPU support, version; with --model: the architecture
 *   locus generate ...         text -> image (see usage)
 *   locus localize ...         the paper's localization sweep (each layer patched alone, OCR metrics, plots)
 *   locus merge ...            join localize shards
 *   locus clip-score ...       CLIP-T of images against prompts (issue 17)
 *   locus dataset signs ...  the synthetic signs data set (dataset.h); locus ocr IMAGE...: what localize's OCR reads
 *   locus tensors FILE         list the tensors of a .safetensors file (or sharded *.index.json) after validating it
 *   locus version
 * Each subcommand returns 0 on success and prints one clear error line (exit 2) on bad input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/safetensors.h"
#include "../core/version.h"
#include "../simd/kernels.h"
#include "../models/pipeline.h"
#include "dataset.h" /* dataset signs, ocr */
#include "generate.h"
#include "layers.h"
#include "grad.h"
#include "edit.h"
#include "localize.h"
#include "train_lora.h" /* lora-adamw: train-lora, lora */
#include "train_model.h" /* train: train vae|unet|pipeline */
#include "clip_score.h" /* issue 17: clip-score */
#include "../simd/ops.h"

static int usage(FILE *f) {
    fprintf(f,
            "usage: locus <command> [options]\n"
            "  info [--model DIR]   kernel ISA in use (LOCUS_ISA forces one), threads (LOCUS_THREADS), CPU support;\n"
            "             with --model: architecture, parameter counts and weight dtypes of a pipeline folder\n"
            "  generate --model DIR (--prompt TEXT | --prompt-embeds FILE) -o OUT.png [--negative-prompt TEXT]\n"
            "           [--seed N] [--steps N] [--guidance F] [--sampler ddim] [--width W --height H] [--noise FILE]\n"
            "           [--dump FILE] [--threads N] [--max-sequence-length N (SD3 T5 tokens, default 256)]\n"
            "           [--clip-skip K (SD1.x/SD2: final LN of the K-th last CLIP layer's input; 0 = last layer)]\n"
            "           SD3: --prompt-embeds holds cond, uncond [1,T,joint] and cond_pooled, uncond_pooled [1,P]\n"
            "           [--patch-prompt TEXT | --patch-embeds FILE] --patch-layers L1,L2 [--start-step K] [--patch-halves cond|both]\n"
            "             UNet: the listed attn2 layers (or blocks) take K/V from prompt B's text embedding;\n"
            "             SD3: the listed joint blocks (transformer_blocks.N) take the text K/V cached from prompt B's run\n"
            "           [--cache FILE --cache-points PATTERN[,PATTERN]]  stream matching hook points of every step\n"
            "             (e.g. '*attn2.k,*attn2.v', 'transformer_blocks.*.attn.add_v', '*attn2.probs') to a safetensors file\n"
            "           [--intervene 'PATTERN=zero|scale:F|mean|replace:CACHE[;...]' [--intervene-steps FROM:TO] [--heads N\n"
            "             --intervene-heads H1,H2] [--intervene-half cond (default)|uncond|both]]  ablate, scale, or patch\n"
            "             hook points in place (replace: the same point and step from a --cache file of another run)\n"
            "  layers --model DIR [--json]   attention layers in forward order, text (to_k/to_v) parameters, share\n"
            "  localize --model DIR (--words FILE | --prompts FILE) -o RESULTS_DIR [--template 'A sign that says \"{}\".']\n"
            "           [--seeds 0,1,5-9] [--layers all | L1,L2+L3] [--steps N] [--guidance F] [--start-step K]\n"
            "           [--patch-halves cond|both] [--perm-seed N] [--mse true|uint8-wrap] [--shard I/N] [--resume] [--threads N]\n"
            "             each layer (group) patched alone with a deranged word's prompt; OCR (tesseract) metrics as the\n"
            "             paper; results.csv/.jsonl per cell, summary.csv, ocr_f1.png, grid.png; resumable, shardable\n"
            "  grad --model DIR --batch FILE --dump OUT [--component unet|vae] [--params PATTERN] [--checkpoint]\n"
            "             one training-loss evaluation: loss, prediction and every parameter's gradient (see grad --help)\n"
            "  merge -o RESULTS_DIR SHARD_DIR...  join localize / edit / detox shards into the result of an unsharded run\n"
            "  edit --model DIR (--words F | --prompts F | --pairs F) -o DIR (--preset paper-sd3|paper-sdxl|paper-if | --layers L)\n"
            "                            the paper's text editing (A re-run with B's text in the layers), Prompt-to-Prompt baseline\n"
            "  detox --model DIR --words LISTED --benign BENIGN -o DIR (--preset ... | --layers L)\n"
            "                            toxic-text prevention: listed words patched with benign ones; negative-prompt / prompt-swap baselines\n"
            /* ---- lora-adamw ---- */
            "  train-lora --model DIR (--batches FILE | --data DIR) --lora-layers L1,L2 [--lora-targets T1,T2] -o LORA.safetensors [--rank 64]\n"
            "           [--alpha 64] [--lora-init FILE] [--lr 1e-6] [--steps N] [--dump FILE] [--resume] ...  LoRA fine-tuning\n"
            "           (AdamW; 'locus train-lora --help' lists every option; docs/LORA.md)\n"
            "  lora list FILE | lora merge --model DIR --lora FILE[:SCALE] -o OUTDIR   inspect a LoRA file / fold it into the weights\n"
            /* ---- end lora-adamw ---- */
            /* ---- train ---- */
            "  train vae|unet|pipeline --data DIR -o OUTDIR ...  train an AutoencoderKL / UNet2DConditionModel from scratch and\n"
            "           assemble a diffusers pipeline folder ('locus train --help'; docs/TRAINING.md)\n"
            /* ---- end train ---- */
            /* ---- issue 17: clip-score ---- */
            "  clip-score --clip DIR --image PNG... --prompt TEXT... [--dump FILE] [--threads N]\n"
            "           CLIP-T = 2.5 * max(cos, 0) of every image with every prompt (OpenAI CLIP from a Hugging Face CLIP\n"
            "           folder, e.g. openai/clip-vit-base-patch32; preprocessing as clip.py, PIL-exact bicubic)\n"
            /* ---- end clip-score ---- */
            /* -- dataset / ocr (branch dataset) -- */
            "  dataset signs --words FILE -o DIR [--n N] [--size WxH] [--seed S] [...]  synthetic sign images +\n"
            "             metadata.jsonl (captions naming colour and layout); 'locus dataset --help' for the options\n"
            "  ocr [--json] IMAGE... | --dataset DIR [--limit N]   what localize's OCR reads, one line per image\n"
            /* -- end dataset / ocr -- */
            "  tensors FILE  validate a .safetensors file (or *.safetensors.index.json) and list its tensors\n"
            "  version    print the version\n");
    return f == stderr ? 2 : 0;
}

static int cmd_info(int argc, char **argv) {
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

int main(int argc, char **argv) {
    locus_choose_wait_policy(argv);
    if (argc < 2) return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "tensors")) return cmd_tensors(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return locus_cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "localize")) return locus_cmd_localize(argc - 1, argv + 1);
    if (!strcmp(cmd, "merge")) return locus_cmd_merge(argc - 1, argv + 1);
    if (!strcmp(cmd, "edit")) return locus_cmd_edit(argc - 1, argv + 1);
    if (!strcmp(cmd, "detox")) return locus_cmd_detox(argc - 1, argv + 1);
    if (!strcmp(cmd, "layers")) return locus_cmd_layers(argc - 1, argv + 1);
    if (!strcmp(cmd, "grad")) return locus_cmd_grad(argc - 1, argv + 1);
    if (!strcmp(cmd, "train-lora")) return locus_cmd_train_lora(argc - 1, argv + 1); /* lora-adamw */
    if (!strcmp(cmd, "lora")) return locus_cmd_lora(argc - 1, argv + 1);             /* lora-adamw */
    if (!strcmp(cmd, "train")) return locus_cmd_train(argc - 1, argv + 1); /* train */
    if (!strcmp(cmd, "clip-score")) return locus_cmd_clip_score(argc - 1, argv + 1); /* issue 17 */
    /* -- dataset / ocr (branch dataset) -- */
    if (!strcmp(cmd, "dataset")) return locus_cmd_dataset(argc - 1, argv + 1);
    if (!strcmp(cmd, "ocr")) return locus_cmd_ocr(argc - 1, argv + 1);
    /* -- end dataset / ocr -- */
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) { printf("locus %s\n", LOCUS_VERSION); return 0; }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return usage(stdout);
    fprintf(stderr, "locus: unknown command '%s' (try 'locus help')\n", cmd);
    return 2;
}
