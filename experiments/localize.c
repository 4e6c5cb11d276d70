/* localize.c — `locus localize` and `locus merge`: the paper's localization experiment as one resumable,
 * shardable command.
 *
 * For every prompt A (a word in a template, or a prompt line with the word in double quotes) the target B is
 * the prompt of another word, chosen by a seeded permutation without fixed points.  Per (prompt, seed) a
 * "group" of cells runs: A unpatched (the reference image), B unpatched, then each layer (or layer group)
 * patched alone with B's text at all steps (from --start-step).  Every image is read by tesseract and scored
 * with the paper's metrics against both words, and compared with A's unpatched image (experiments/metrics.h).
 *
 * Results directory:
 *   config.json      every setting that affects results (a resumed or merged run must match it byte for byte)
 *   results.jsonl    one JSON object per finished cell, appended durably as each finishes (authoritative)
 *   results.csv      the same rows as CSV (rebuilt from results.jsonl on resume)
 *   images/cNNNNNN.png   each cell's image
 *   summary.csv, summary.json   per-layer means and OCR-F1 (F1 of mean precision and mean recall)
 *   ocr_f1.png       bar chart of OCR-F1 against B's word (and A's) per layer
 *   grid.png         rows = A, B and each layer; columns = prompts (first seed)
 *   heatmap.png      OCR-F1 against B's word per layer and prompt
 *   runs.log         one line per invocation: time, ISA, threads, shard, cells run (not compared)
 * Nothing in the result files depends on the ISA, thread count, sharding or interruption: the tests compare
 * them byte for byte.
 *
 * Crash safety: an image is written atomically before its row; a row is one write() + fsync; on --resume the
 * rows are re-read, an unterminated or unparsable tail is dropped, and only missing cells run.
 * Sharding: --shard i/N runs the groups g with g % N == i; `locus merge -o OUT DIR...` joins shard
 * directories into exactly the files an unsharded run writes.
 *
 * This file is the CLI and the experiment loop — the only part of localize that opens a pipeline and runs it
 * (run.h, patch.h); the plan, the result files (and merge) and the figures are in localize_plan.c,
 * localize_results.c and localize_figures.c (see localize_int.h).
 */
#include "localize.h"

#include "../core/numparse.h"

#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../core/png.h"
#include "../simd/kernels.h"
#include "localize_int.h"
#include "../models/clip.h"
#include "metrics.h"
#include "ocr.h"
#include "presets.h"
#include "progress.h"
#include "run.h"

/* default layers: every text-reading attention layer in forward order; otherwise ',' separates groups and
 * '+' joins layers within a group */
static int resolve_layers(lz_plan *P, locus_pipeline *p) {
    int cap = 64;
    P->layers = malloc((size_t)cap * sizeof(char *));
    if (!P->layers) return lz_fail("localize", "out of memory");
    char *paper = NULL; /* --layers with the paper's numbers (#N) rewritten to layer names */
    if (P->layers_spec && strchr(P->layers_spec, '#')) {
        char err[256];
        if (!(paper = lz_paper_layers(&p->den, P->layers_spec, err, sizeof err))) return lz_fail("localize", "--layers: %s", err);
        P->layers_spec = paper;
    }
    if (P->experiment && (!P->layers_spec || !strcmp(P->layers_spec, "all")))
        return lz_fail("localize", "--layers: name the layers patched together (paths or the paper's #N), or use a --preset");
    if (!P->layers_spec || !strcmp(P->layers_spec, "all")) {
        locus_layer_info *L = NULL;
        int n = locus_denoiser_layers(&p->den, &L);
        for (int i = 0; i < n; i++) {
            if (L[i].text_index < 0) continue;
            if (P->nlayers == cap) P->layers = realloc(P->layers, (size_t)(cap *= 2) * sizeof(char *));
            P->layers[P->nlayers++] = strdup(L[i].site);
        }
        free(L);
    } else {
        char *cp = strdup(P->layers_spec), *save = NULL;
        /* edit / detox patch one group: every listed layer together */
        for (char *t = strtok_r(cp, P->experiment ? "" : ",", &save); t; t = strtok_r(NULL, P->experiment ? "" : ",", &save)) {
            for (char *c = t; *c; c++)
                if (*c == '+') *c = ',';
            if (P->nlayers == cap) P->layers = realloc(P->layers, (size_t)(cap *= 2) * sizeof(char *));
            P->layers[P->nlayers++] = strdup(t);
        }
        free(cp);
    }
    free(paper);
    P->layers_spec = NULL; /* borrowed from paper, now freed; the resolved groups are in P->layers */
    if (!P->nlayers) return lz_fail("localize", "no layers to patch");
    if ((double)P->nitems * P->nseeds * (P->nlayers + 2) > 1e8)
        return lz_fail("localize", "%d prompts x %d seeds x (%d layers + 2) cells: more than 10^8 (split the words file)", P->nitems, P->nseeds, P->nlayers);
    /* check each group now, so a typo fails before any image is made */
    unsigned char *sel = malloc((size_t)(p->den.ntext_layers > 0 ? p->den.ntext_layers : 1));
    for (int i = 0; i < P->nlayers; i++) {
        locus_status st = sel ? locus_denoiser_select_text_layers(&p->den, P->layers[i], "--layers", sel) : LOCUS_E_NOMEM;
        if (st) { free(sel); return lz_fail("localize", "--layers: %s", locus_errmsg()); }
    }
    free(sel);
    return 0;
}

/* a value as the result files store it (%.9g), so summaries from a fresh run, a resumed run and a merge
 * (which read rows back from results.jsonl) add up exactly the same numbers */
static double q9(double v) {
    if (!isfinite(v)) return v;
    char b[40];
    snprintf(b, sizeof b, "%.9g", v);
    return strtod(b, NULL);
}

/* score one image and record its row (image first, then the row) */
static int finish_cell(const lz_plan *P, locus_ocr *ocr, lz_row *rows, int cell, const uint8_t *pix, const uint8_t *ref) {
    int K = lz_cells_per_group(P), g = cell / K, it = g / P->nseeds;
    char path[4200];
    snprintf(path, sizeof path, "%s/images/c%06d.png", P->out, cell);
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%lld", P->seeds[g % P->nseeds]);
    locus_png_text tx[] = {{"prompt", P->items[it].prompt}, {"patch_prompt", P->items[it].prompt_b},
                           {"layer", lz_cell_label(P, cell % K)}, {"seed", seed_s}};
    if (locus_png_write(path, pix, P->width, P->height, 3, tx, 4)) return lz_fail("localize", "%s", locus_errmsg());
    lz_row *r = &rows[cell];
    r->cell = cell;
    r->ocr = locus_ocr_read(ocr, pix, P->width, P->height);
    if (!r->ocr) return lz_fail("localize", "%s", locus_errmsg());
    r->ta = locus_text_compare(r->ocr, P->items[it].word);
    r->tb = locus_text_compare(r->ocr, P->items[it].word_b);
    r->mse = !strcmp(P->mse_mode, "uint8-wrap") ? locus_mse_u8_wrap(ref, pix, P->height, P->width) : locus_mse_u8(ref, pix, P->height, P->width);
    r->psnr = locus_psnr(r->mse);
    r->ssim = locus_ssim_u8(ref, pix, P->height, P->width);
    if (r->ssim == -2) r->ssim = NAN;
    r->ta.precision = q9(r->ta.precision); r->ta.recall = q9(r->ta.recall);
    r->tb.precision = q9(r->tb.precision); r->tb.recall = q9(r->tb.recall);
    r->mse = q9(r->mse); r->psnr = q9(r->psnr); r->ssim = q9(r->ssim);
    if (P->clip) { /* CLIP-T of this image against prompt A and prompt B (issue 17; the authors' clipscore.py) */
        float *emb = malloc((size_t)P->clip_dim * sizeof(float));
        if (!emb || locus_clip_embed_image(P->clip, pix, P->width, P->height, emb, NULL)) { free(emb); return lz_fail("localize", "--clip: %s", locus_errmsg()); }
        const float *ta = P->clip_text + (size_t)it * 2 * P->clip_dim;
        r->clip_a = q9(locus_clip_t(locus_clip_cosine(emb, ta, P->clip_dim)));
        r->clip_b = q9(locus_clip_t(locus_clip_cosine(emb, ta + P->clip_dim, P->clip_dim)));
        free(emb);
    }
    r->done = 1;
    locus_strbuf j = {0}, c = {0};
    lz_row_json(P, r, &j);
    lz_row_csv(P, r, &c);
    char pj[4200], pc[4200];
    snprintf(pj, sizeof pj, "%s/results.jsonl", P->out);
    snprintf(pc, sizeof pc, "%s/results.csv", P->out);
    int rc = 0;
    if (locus_sb_status(&j) || locus_sb_status(&c) || locus_append_durable(pj, j.s, j.n) || locus_append_durable(pc, c.s, c.n))
        rc = lz_fail("localize", "%s", locus_errmsg());
    locus_sb_free(&j);
    locus_sb_free(&c);
    return rc;
}

/* progress within a cell: the denoiser steps of the run in flight */
typedef struct {
    locus_progress *prog;
    const int *done;
} step_progress;

static void cell_step(void *ctx, int step, int nsteps) {
    const step_progress *sp = ctx;
    char d[48];
    snprintf(d, sizeof d, "step %d/%d", step + 1, nsteps);
    locus_progress_update_frac(sp->prog, *sp->done + (double)(step + 1) / nsteps * 0.999, d);
}

/* Run the unfinished cells of group g (one prompt A and seed): A's image (always: the reference), B's, then
 * each layer group patched; every finished cell is scored and recorded before the next one starts. */
static int run_group(const lz_plan *P, locus_pipeline *p, locus_ocr *ocr, lz_row *rows, int g, locus_progress *prog, int *done_cells) {
    int K = lz_cells_per_group(P), it = g / P->nseeds, base = g * K;
    int todo = 0;
    for (int k = 0; k < K; k++) todo += !rows[base + k].done;
    if (!todo) return 0;
    step_progress sp = {prog, done_cells};
    locus_run_opts o = {P->steps, P->guidance, P->width, P->height, (uint64_t)P->seeds[g % P->nseeds], cell_step, &sp};
    o.quantize_trunc = P->quantize_trunc;
    int cfg = P->guidance > 1.0f, rc = 0;
    locus_embeds ea, eb;
    if (locus_embeds_encode(p, P->items[it].prompt, P->negative, cfg, P->max_seq, &ea))
        return lz_fail("localize", "prompt %d: %s", it, locus_errmsg());
    if (locus_embeds_encode(p, P->items[it].prompt_b, P->negative, cfg, P->max_seq, &eb)) {
        locus_embeds_free(&ea);
        return lz_fail("localize", "prompt B of %d: %s", it, locus_errmsg());
    }
    size_t np = (size_t)3 * P->width * P->height;
    uint8_t *ref = malloc(np), *pix = malloc(np);
    const char *delay = getenv("LOCUS_LOCALIZE_TEST_DELAY_MS"); /* lets a test kill the run between cells */
    /* edit's Prompt-to-Prompt baseline needs A's attention maps: recorded in A's run (which they leave unchanged) */
    lz_p2p q;
    int need_p2p = 0;
    for (int l = 0; l < P->nlayers; l++) need_p2p |= !rows[base + 2 + l].done && !strncmp(P->layers[l], LZ_BASELINE "p2p", strlen(LZ_BASELINE "p2p"));
    lz_p2p_init(&q, p->den.ntext_layers, need_p2p ? (int)(P->p2p_tau * (float)P->steps) : 0);
    locus_hooks hq;
    locus_hooks_init(&hq);
    if (need_p2p) locus_hooks_add(&hq, lz_p2p_hook(&q));
    /* A unpatched: always needed (the reference of every image metric) */
    if (locus_run_image(p, &o, &ea, need_p2p ? &hq : NULL, ref)) { rc = lz_fail("localize", "%s", locus_errmsg()); goto out; }
    q.record = 0;
    if (!rows[base].done) {
        if ((rc = finish_cell(P, ocr, rows, base, ref, ref))) goto out;
        locus_progress_update(prog, ++*done_cells);
    }
    locus_patcher pt;
    int need_b = !rows[base + 1].done;
    /* denoisers whose text K/V come from B's own run (text_kv_projectable = 0): record only the blocks some layer group patches */
    locus_strbuf rec = {0};
    for (int l = 0, n = 0; l < P->nlayers; l++)
        if (!lz_is_baseline(P->layers[l])) { locus_sb_puts(&rec, n++ ? "," : ""); locus_sb_puts(&rec, P->layers[l]); }
    if (locus_sb_status(&rec)) { locus_sb_free(&rec); rc = lz_fail("localize", "%s", locus_errmsg()); goto out; }
    locus_status pst = locus_patcher_init(&pt, p, &o, &ea, &eb, P->both, P->start_step, rec.s, NULL, need_b || !p->den.text_kv_projectable ? pix : NULL);
    locus_sb_free(&rec);
    if (pst) {
        rc = lz_fail("localize", "%s", locus_errmsg());
        goto out;
    }
    if (need_b) {
        if ((rc = finish_cell(P, ocr, rows, base + 1, pix, ref))) goto outp;
        locus_progress_update(prog, ++*done_cells);
    }
    for (int l = 0; l < P->nlayers; l++) {
        int cell = base + 2 + l;
        if (rows[cell].done) continue;
        locus_status cst = lz_is_baseline(P->layers[l]) ? lz_run_baseline(P, p, &o, it, P->layers[l], &eb, &q, pix) : locus_patcher_run(&pt, P->layers[l], pix);
        if (cst) { rc = lz_fail("localize", "%s: %s", P->layers[l], locus_errmsg()); goto outp; }
        if ((rc = finish_cell(P, ocr, rows, cell, pix, ref))) goto outp;
        locus_progress_update(prog, ++*done_cells);
        if (delay) usleep((useconds_t)atoi(delay) * 1000);
    }
outp:
    locus_patcher_free(&pt);
out:
    lz_p2p_free(&q);
    free(ref);
    free(pix);
    locus_embeds_free(&ea);
    locus_embeds_free(&eb);
    return rc;
}

/* argv -> the plan's settings (defaults filled in; the model decides guidance, sampler and size later) */
static int parse_localize(int argc, char **argv, lz_plan *P, int experiment) {
    memset(P, 0, sizeof *P);
    P->experiment = experiment;
    P->start_step = -1; /* not given: the experiment's default (0, or the preset's start index for edit / detox) */
    P->p2p_tau = -1;    /* not given: edit's default */
    const lz_preset *preset = NULL;
    P->template = "A sign that says \"{}\".";
    P->negative = NULL; /* no negative prompt: the empty one, or zeros (SDXL force_zeros_for_empty_prompt), as diffusers */
    P->seeds_spec = "0";
    P->mse_mode = "true";
    P->steps = 50;
    P->guidance = -1;
    P->grid_cols = 8;
    P->nshards = 1;
    const char *out = NULL;
    /* a preset sets defaults; the options below override them wherever they stand */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--preset")) {
            const lz_preset *ps = lz_preset_find(argv[i + 1]);
            if (!ps) return lz_fail("localize", "--preset %s: expected paper-sd3, paper-sdxl or paper-if", argv[i + 1]);
            P->preset = ps->name;
            preset = ps;
            P->steps = ps->steps;
            P->guidance = ps->guidance;
            P->both = 1;
            P->mse_mode = "uint8-wrap";
            P->quantize_trunc = 1;
        }
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--resume")) { P->resume = 1; continue; }
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) return -1; /* lz_main prints the help */
        if (i + 1 >= argc) return lz_fail("localize", "option %s needs a value", k);
        const char *v = argv[++i];
        long long x = 0;
        int isnum = locus_parse_ll(v, -(1LL << 53), 1LL << 53, &x); /* strict: whole string, no wrap */
        if (!strcmp(k, "--model")) P->model = v;
        else if (!strcmp(k, "--words")) {
            if (P->nwords_files == LZ_MAX_WORD_FILES) return lz_fail("localize", "--words: at most %d files", LZ_MAX_WORD_FILES);
            if (!P->words_file) P->words_file = v;
            P->words_files[P->nwords_files++] = v;
        } else if (!strcmp(k, "--pairs")) P->pairs_file = v;
        else if (!strcmp(k, "--clip")) P->clip_dir = v;
        else if (!strcmp(k, "--benign") && experiment == LZ_DETOX) P->benign_file = v;
        else if (!strcmp(k, "--p2p-tau") && experiment == LZ_EDIT) {
            double tau;
            if (!locus_parse_double(v, 0, 1, &tau)) return lz_fail("localize", "--p2p-tau %s: expected a fraction of the steps from 0 (off) to 1", v);
            P->p2p_tau = (float)tau;
        }
        else if (!strcmp(k, "--preset")) continue; /* applied above */
        else if (!strcmp(k, "--pairing")) {
            if (strcmp(v, "derange") && strcmp(v, "paper")) return lz_fail("localize", "--pairing %s: expected derange or paper", v);
            P->pairing = v;
        } else if (!strcmp(k, "--quantize")) {
            if (strcmp(v, "round") && strcmp(v, "trunc")) return lz_fail("localize", "--quantize %s: expected round or trunc", v);
            P->quantize_trunc = !strcmp(v, "trunc");
        }
        else if (!strcmp(k, "--prompts")) P->prompts_file = v;
        else if (!strcmp(k, "--template")) P->template = v;
        else if (!strcmp(k, "--seeds")) P->seeds_spec = v;
        else if (!strcmp(k, "--layers")) P->layers_spec = v;
        else if (!strcmp(k, "--negative-prompt")) P->negative = v;
        else if (!strcmp(k, "--sampler")) P->sampler = v;
        else if (!strcmp(k, "-o") || !strcmp(k, "--out")) out = v;
        else if (!strcmp(k, "--mse")) {
            if (strcmp(v, "true") && strcmp(v, "uint8-wrap")) return lz_fail("localize", "--mse %s: expected true or uint8-wrap", v);
            P->mse_mode = v;
        } else if (!strcmp(k, "--patch-halves")) {
            if (strcmp(v, "cond") && strcmp(v, "both")) return lz_fail("localize", "--patch-halves %s: expected cond or both", v);
            P->both = !strcmp(v, "both");
        } else if (!strcmp(k, "--shard")) {
            const char *sl = strchr(v, '/');
            long long a = -1, b = 0;
            if (!sl || !locus_parse_lln(v, (unsigned long)(sl - v), 0, 1000000, &a) || !locus_parse_ll(sl + 1, 1, 1000000, &b) || a >= b)
                return lz_fail("localize", "--shard %s: expected I/N with 0 <= I < N (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)", v);
            P->shard = (int)a;
            P->nshards = (int)b;
        } else if (!strcmp(k, "--guidance")) {
            double g;
            if (!locus_parse_double(v, 0, 100, &g)) return lz_fail("localize", "--guidance %s: expected a number from 0 to 100", v);
            P->guidance = (float)g;
        } else if (!strcmp(k, "--perm-seed")) {
            if (!isnum || x < 0) return lz_fail("localize", "--perm-seed %s: expected an integer from 0 to 2^53", v);
            P->perm_seed = x;
        } else {
            struct { const char *name; int *dst; long lo, hi; } ints[] = {
                {"--steps", &P->steps, 1, 1000}, {"--width", &P->width, 8, 8192}, {"--height", &P->height, 8, 8192},
                {"--max-sequence-length", &P->max_seq, 1, 512}, {"--start-step", &P->start_step, 0, 1000},
                {"--threads", &P->threads, 1, 1024}, {"--grid-cols", &P->grid_cols, 1, 1000}};
            int hit = 0;
            for (size_t j = 0; j < sizeof ints / sizeof *ints; j++)
                if (!strcmp(k, ints[j].name)) {
                    if (!isnum || x < ints[j].lo || x > ints[j].hi) return lz_fail("localize", "%s %s: expected an integer from %ld to %ld", k, v, ints[j].lo, ints[j].hi);
                    *ints[j].dst = (int)x;
                    hit = 1;
                }
            if (!hit) return lz_fail("localize", "unknown option %s (see 'locus %s --help')", k, lz_cmd_name);
        }
    }
    if (lz_experiment_defaults(P, preset)) return 2;
    if (!P->model) return lz_fail("localize", "--model DIR is required");
    if (!out) return lz_fail("localize", "-o RESULTS_DIR is required");
    if (!!P->words_file + !!P->prompts_file + !!P->pairs_file != 1) return lz_fail("localize", "give exactly one of --words FILE, --prompts FILE and --pairs FILE");
    if (!P->prompts_file && !strstr(P->template, "{}")) return lz_fail("localize", "--template must contain {} where the word goes");
    if (P->pairing && !strcmp(P->pairing, "paper") && !P->words_file) return lz_fail("localize", "--pairing paper pairs the words of --words files");
    if (P->start_step >= P->steps) return lz_fail("localize", "--start-step %d must be below --steps %d (no step would be patched)", P->start_step, P->steps);
    P->out = strdup(out);
    return 0;
}

/* The command: plan, open the model, check every prompt and layer, create or resume the results directory,
 * run this shard's groups, then write the summaries and figures. */
int locus_cmd_localize(int argc, char **argv) { return lz_main(argc, argv, LZ_LOCALIZE); }

int lz_main(int argc, char **argv, int experiment) {
    lz_cmd_name = experiment == LZ_EDIT ? "edit" : experiment == LZ_DETOX ? "detox" : "localize";
    lz_plan P;
    int rc = parse_localize(argc, argv, &P, experiment);
    if (rc < 0) { free(P.out); return lz_help(experiment); }
    if (rc) { free(P.out); return rc; }
    locus_pipeline p;
    lz_row *rows = NULL;
    locus_ocr *ocr = NULL;
    char *cfg = NULL;
    int pipe_open = 0, lockfd = -1;
    rc = 2;
    if ((!P.pairs_file && lz_read_items(&P)) || lz_pair(&P) || lz_parse_seeds(&P)) goto done;
    if (locus_kernels_init() != LOCUS_OK) { lz_fail("localize", "%s", locus_errmsg()); goto done; }
    if (P.threads) locus_set_threads(P.threads);
    if (locus_pipeline_open(&p, P.model) != LOCUS_OK) { lz_fail("localize", "%s", locus_errmsg()); goto done; }
    pipe_open = 1;
    if (P.sampler && locus_scheduler_override(&p.sched, P.sampler)) { lz_fail("localize", "%s", locus_errmsg()); goto done; }
    P.sampler = locus_scheduler_name(&p.sched);
    if (P.guidance < 0) P.guidance = p.default_guidance;
    if (!P.negative && !p.negative_none_zeros) P.negative = ""; /* the same thing here: recorded as before ("") */
    if (!P.max_seq) P.max_seq = 256;
    if (p.text_tokens_fixed) P.max_seq = p.text_tokens_fixed;
    locus_run_opts o = {P.steps, P.guidance, P.width, P.height, 0};
    if (locus_run_prepare(&p, &o)) { lz_fail("localize", "%s", locus_errmsg()); goto done; }
    P.width = o.W;
    P.height = o.H;
    if (resolve_layers(&P, &p) || lz_add_baselines(&P, &p.den)) goto done;
    /* every prompt must encode (no surprise half-way through) */
    for (int i = 0; i < 2 * P.nitems; i++) {
        locus_embeds e;
        const char *pr = i & 1 ? P.items[i / 2].prompt_b : P.items[i / 2].prompt;
        if (locus_embeds_encode(&p, pr, NULL, 0, P.max_seq, &e)) {
            lz_fail("localize", "prompt %d (%s): %s", i / 2, pr, locus_errmsg());
            goto done;
        }
        locus_embeds_free(&e);
    }
    if (locus_ocr_open(&ocr)) { lz_fail("localize", "%s", locus_errmsg()); goto done; }
    if (P.clip_dir) { /* CLIP-T: the CLIP pair opened once, every prompt embedded once */
        locus_clip *c = calloc(1, sizeof *c);
        if (!c || locus_clip_open(c, P.clip_dir)) { free(c); lz_fail("localize", "--clip: %s", locus_errmsg()); goto done; }
        P.clip = c;
        P.clip_dim = c->proj_dim;
        P.clip_text = malloc((size_t)P.nitems * 2 * c->proj_dim * sizeof(float));
        for (int i = 0; i < 2 * P.nitems; i++)
            if (!P.clip_text || locus_clip_embed_text(c, i & 1 ? P.items[i / 2].prompt_b : P.items[i / 2].prompt, P.clip_text + (size_t)i * c->proj_dim, NULL)) {
                lz_fail("localize", "--clip: %s", locus_errmsg());
                goto done;
            }
    }
    cfg = lz_config_json(&P, p.model_hash, P.shard, P.nshards);
    if (!cfg) { lz_fail("localize", "%s", locus_errmsg()); goto done; }
    char path[4200];
    snprintf(path, sizeof path, "%s/images", P.out);
    if (locus_mkdir(path)) { lz_fail("localize", "%s", locus_errmsg()); goto done; }
    /* one process per results directory */
    snprintf(path, sizeof path, "%s/.lock", P.out);
    lockfd = open(path, O_RDWR | O_CREAT, 0644);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB)) { lz_fail("localize", "another localize run is using %s", P.out); goto done; }
    rows = calloc((size_t)lz_ncells(&P), sizeof(lz_row));
    snprintf(path, sizeof path, "%s/config.json", P.out);
    char *old;
    size_t oldn;
    locus_status rs = locus_read_file(path, &old, &oldn);
    if (rs == LOCUS_OK) {
        int same = !strcmp(old, cfg);
        free(old);
        if (!P.resume) { lz_fail("localize", "%s already holds results; pass --resume to continue them, or choose another -o", P.out); goto done; }
        if (!same) { lz_fail("localize", "%s was made with different settings (see its config.json); use the same options or another -o", P.out); goto done; }
        snprintf(path, sizeof path, "%s/results.jsonl", P.out);
        int n = lz_load_rows(&P, path, rows, 1);
        if (n < 0) goto done;
        lz_remove_stale_tmp(P.out);
        snprintf(path, sizeof path, "%s/images", P.out);
        lz_remove_stale_tmp(path);
        fprintf(stderr, "localize: resuming %s: %d cell%s already finished\n", P.out, n, n == 1 ? "" : "s");
        if (lz_write_csv(&P, rows)) goto done; /* the CSV follows results.jsonl exactly */
    } else if (rs == LOCUS_E_NOTFOUND) {
        snprintf(path, sizeof path, "%s/results.jsonl", P.out);
        if (access(path, F_OK) == 0) { lz_fail("localize", "%s has results.jsonl but no config.json; choose another -o", P.out); goto done; }
        locus_strbuf hdr = {0};
        lz_csv_header(&P, &hdr);
        int bad = lz_write_text(P.out, "results.jsonl", "") || lz_write_sb(P.out, "results.csv", &hdr) || lz_write_text(P.out, "config.json", cfg);
        locus_sb_free(&hdr);
        if (bad) goto done;
    } else {
        lz_fail("localize", "%s", locus_errmsg());
        goto done;
    }
    /* this shard's groups */
    int K = lz_cells_per_group(&P), total = 0, already = 0;
    for (int g = P.shard; g < lz_ngroups(&P); g += P.nshards)
        for (int k = 0; k < K; k++) { total++; already += rows[g * K + k].done; }
    if (!total) fprintf(stderr, "localize: shard %d/%d has no prompts (only %d prompt x seed groups)\n", P.shard, P.nshards, lz_ngroups(&P));
    fprintf(stderr, "%s: %d prompts x %d seeds x (%d layers/baselines + 2 unpatched) = %d cells%s, %d to run, isa %s, %d threads\n", lz_cmd_name, P.nitems, P.nseeds,
            P.nlayers, lz_ncells(&P), P.nshards > 1 ? " in all" : "", total - already, locus_isa_name(), locus_threads());
    lz_log_run(&P, "start", total - already);
    locus_progress prog;
    locus_progress_start(&prog, experiment == LZ_EDIT ? "edit cells" : experiment == LZ_DETOX ? "detox cells" : "localize cells", total - already);
    int done_cells = 0;
    for (int g = P.shard; g < lz_ngroups(&P); g += P.nshards)
        if (run_group(&P, &p, ocr, rows, g, &prog, &done_cells)) goto done;
    locus_progress_end(&prog);
    if (lz_finish_outputs(&P, rows)) goto done;
    lz_log_run(&P, "finish", done_cells);
    fprintf(stderr, "%s: results in %s (results.csv, summary.csv, ocr_f1.png, grid.png, heatmap.png, report.html)\n", lz_cmd_name, P.out);
    rc = 0;
done:
    if (rows) for (int c = 0; c < lz_ncells(&P); c++) free(rows[c].ocr);
    free(rows);
    free(cfg);
    if (lockfd >= 0) close(lockfd);
    locus_ocr_close(ocr);
    if (pipe_open) locus_pipeline_close(&p);
    if (P.clip) { locus_clip_close(P.clip); free(P.clip); }
    free(P.clip_text);
    lz_plan_free(&P);
    return rc;
}
