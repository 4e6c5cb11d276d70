/* localize_int.h — private to the localize*.c files: the plan of an experiment, a result row, and the functions
 * the four parts of `locus localize` / `locus merge` share.
 *
 *   localize_plan.c     words/prompts file -> items, the derangement A -> B, seeds, config.json out and back in
 *   localize_results.c  rows as JSON Lines / CSV, resume (reading rows back), summaries, runs.log, `locus merge`
 *   localize_figures.c  ocr_f1.png (bar chart), grid.png, heatmap.png
 *   localize.c          the CLI and the experiment loop: the only part that loads a model and runs it (run.h)
 *
 * Cells: the plan's prompt x seed groups g = item * nseeds + seed index, each of cells_per_group cells in the
 * order A unpatched, B unpatched, then each layer group; cell = g * cells_per_group + kind.
 */
#ifndef LOCUS_LOCALIZE_INT_H
#define LOCUS_LOCALIZE_INT_H

#include <string.h>

#include "../core/strbuf.h"
#include "../models/denoiser.h"
#include "../models/nn.h"
#include "metrics.h"
#include "run.h"

#define LZ_MAX_WORD_FILES 64

enum { LZ_LOCALIZE, LZ_EDIT, LZ_DETOX };

/* cells whose "layer" label starts with this are baselines (edit.c), not patched layer groups */
#define LZ_BASELINE "baseline:"

typedef struct {
    char *word, *prompt;      /* A's word and prompt */
    char *word_b, *prompt_b;  /* the word patched in and B's prompt (lz_pair): B's word in the template, or with
                               * --prompts A's prompt with B's word between A's quotes (the authors' prompt_AB) */
    int file;                 /* which --words file the item came from (pairs are formed within a file) */
} lz_item;

typedef struct {
    /* settings (all recorded in config.json) */
    const char *model, *template, *negative, *sampler, *words_file, *prompts_file, *layers_spec, *seeds_spec, *mse_mode;
    const char *words_files[LZ_MAX_WORD_FILES]; /* every --words FILE in order (words_file = the first) */
    int nwords_files;
    const char *pairs_file;   /* --pairs FILE: explicit A,B pairs (words in the template) */
    const char *pairing;      /* "derange" (default: seeded permutation without fixed points) or "paper" */
    const char *preset;       /* --preset NAME or NULL (presets.c) */
    int quantize_trunc;       /* --quantize trunc */
    int experiment;           /* LZ_LOCALIZE, LZ_EDIT (edit.c) or LZ_DETOX */
    float p2p_tau;            /* edit: Prompt-to-Prompt baseline injects A's maps for steps < tau * steps (0: off) */
    const char *benign_file;  /* detox: the benign words patched in */
    const char *clip_dir;     /* --clip DIR: a Hugging Face CLIP folder; rows get CLIP-T against prompts A and B */
    char *clip_dir_owned;     /* clip_dir when read back from a config.json (merge) */
    void *clip;               /* the opened locus_clip (localize.c), NULL without --clip */
    float *clip_text;         /* [nitems * 2 * clip_dim]: embeddings of each item's prompt A and prompt B */
    int clip_dim;
    char *out;
    int steps, width, height, max_seq, start_step, both, threads, grid_cols, resume, shard, nshards;
    float guidance;
    long long perm_seed;
    /* derived */
    lz_item *items;
    int nitems;
    int *target;      /* [nitems]: item i's partner (B) among the items; -1 with --pairs */
    long long *seeds;
    int nseeds;
    char **layers;    /* patched layer groups, comma-separated paths each */
    int nlayers;
} lz_plan;

/* One cell's result (done = 0: not run yet). */
typedef struct {
    int cell, done;
    char *ocr;
    locus_text_metrics ta, tb; /* OCR text against A's and B's word */
    double mse, psnr, ssim;    /* against A's unpatched image */
    double clip_a, clip_b;     /* --clip: CLIP-T (2.5 max(cos, 0)) of the image against prompt A and prompt B */
} lz_row;

static inline int lz_cells_per_group(const lz_plan *P) { return P->nlayers + 2; }
static inline int lz_ngroups(const lz_plan *P) { return P->nitems * P->nseeds; }
static inline int lz_ncells(const lz_plan *P) { return lz_ngroups(P) * lz_cells_per_group(P); }

/* The name of a cell kind (0 A, 1 B, 2.. layer groups) in tables, figures and rows. */
static inline const char *lz_cell_label(const lz_plan *P, int kind) {
    return kind == 0 ? "(prompt A, unpatched)" : kind == 1 ? "(prompt B, unpatched)" : P->layers[kind - 2];
}

/* ---- localize_plan.c */

/* "locus CMD: message" on stderr; returns 2 (the CLI's exit code for errors). */
int lz_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees what the plan owns (items, targets, seeds, layers, out); the settings are borrowed. */
void lz_plan_free(lz_plan *P);
/* The words or prompts file -> P->items (well-formed UTF-8, at least two); errors name the file and line. */
int lz_read_items(lz_plan *P);
/* P->target: a seeded permutation of the items without fixed points (nor a word onto an equal word). */
int lz_derange(lz_plan *P);
/* Pair the items and fill word_b / prompt_b: --pairs (items come from the file: call instead of
 * lz_read_items), --pairing paper (pairing.h, within each --words file) or lz_derange. */
int lz_pair(lz_plan *P);
/* A's prompt with the text between its first pair of double quotes replaced by word_b (malloc'd). */
char *lz_swap_quoted(const char *prompt, const char *word_b);
/* --seeds "0,1,5-9" -> P->seeds. */
int lz_parse_seeds(lz_plan *P);
/* config.json: every setting that changes results, in a fixed order (malloc'd; NULL with a message on
 * allocation failure). */
char *lz_config_json(const lz_plan *P, unsigned long long model_hash, int shard, int nshards);
/* Rebuild the parts of a plan that the result files need from DIR/config.json (for merge); *text gets the
 * file's bytes (caller frees, also on error). */
int lz_plan_from_config(lz_plan *P, const char *dir, char **text);

/* ---- localize_results.c */

/* A row as its results.jsonl line / results.csv line, and the CSV header, appended to b. */
void lz_row_json(const lz_plan *P, const lz_row *r, locus_strbuf *b);
void lz_row_csv(const lz_plan *P, const lz_row *r, locus_strbuf *b);
void lz_csv_header(const lz_plan *P, locus_strbuf *b);
/* Read results.jsonl into rows[]; drop (and with truncate_tail, truncate away) an unterminated tail.  Returns
 * the number of rows loaded, or -1 after printing an error worth stopping for (a bad row in the middle). */
int lz_load_rows(const lz_plan *P, const char *path, lz_row *rows, int truncate_tail);
/* DIR/NAME := text, atomically. */
int lz_write_text(const char *dir, const char *name, const char *text);
/* DIR/NAME := the builder's text, atomically; an allocation failure in building it is reported instead. */
int lz_write_sb(const char *dir, const char *name, const locus_strbuf *b);
/* results.csv from the finished rows (rebuilt on resume: the CSV follows results.jsonl exactly). */
int lz_write_csv(const lz_plan *P, const lz_row *rows);
/* results.csv, summaries (and the table on stdout), ocr_f1.png, grid.png, heatmap.png and report.html (report.h) from
 * the finished rows. */
int lz_finish_outputs(const lz_plan *P, const lz_row *rows);
/* Delete the temporary files a killed run may have left in dir (never result files). */
void lz_remove_stale_tmp(const char *dir);
/* One line in OUT/runs.log: time, what, version, ISA, threads, shard, cells. */
void lz_log_run(const lz_plan *P, const char *what, int cells);

/* ---- localize_figures.c */

/* ocr_f1.png: OCR-F1 against B's word (and A's) for each of the K cell kinds. */
int lz_write_bar_chart(const lz_plan *P, int K, const char **labels, const double *f1b, const double *f1a);
/* grid.png: rows = A, B, layer groups; columns = the first grid_cols prompts at the first seed. */
int lz_write_grid(const lz_plan *P, const lz_row *rows);
/* heatmap.png: OCR-F1 against B's word per layer group (rows) and prompt (columns, at most 100). */
int lz_write_heatmap(const lz_plan *P, const lz_row *rows);

/* ---- edit.c: baselines of `locus edit` / `locus detox` */

/* Prompt-to-Prompt (Hertz et al. 2022) word swap: A's cross-attention probabilities (conditional CFG row) are
 * recorded at every step < inject_steps of A's run and written over B's at the same step and layer. */
typedef struct {
    int record;        /* 1: record (returns "unchanged"), 0: inject */
    int inject_steps;
    int ntext;         /* the denoiser's text layers */
    float **maps;      /* [step * ntext + index] -> [H,Tq,Tk] */
    size_t *len;
    int hits;          /* layer calls recorded / injected */
} lz_p2p;

void lz_p2p_init(lz_p2p *q, int ntext, int inject_steps);
void lz_p2p_free(lz_p2p *q);
/* The hook (probs callback, ctx = q). */
locus_hook_entry lz_p2p_hook(lz_p2p *q);
/* Apply the experiment's defaults after parsing (preset layers and start step, baselines). */
int lz_experiment_defaults(lz_plan *P, const void *preset);
/* Append the baseline cells (labels starting with LZ_BASELINE) once the layers are resolved; den answers
 * whether Prompt-to-Prompt applies (its text layers are cross-attention layers). */
int lz_add_baselines(lz_plan *P, const locus_denoiser *den);
/* Run baseline cell `label` for item it into pix (o: the group's settings; eb: B's embeddings; q: A's maps,
 * recorded in A's run). */
locus_status lz_run_baseline(const lz_plan *P, locus_pipeline *p, const locus_run_opts *o, int it, const char *label, const locus_embeds *eb,
                             lz_p2p *q, uint8_t *pix);
/* Does this cell kind's label name a baseline? */
static inline int lz_is_baseline(const char *label) { return !strncmp(label, LZ_BASELINE, strlen(LZ_BASELINE)); }
/* detox: does the OCR text contain any of the listed (A) words (lower-cased, as substrings)? */
int lz_ocr_lists_word(const lz_plan *P, const char *ocr);
/* detox: B words from the benign list: word_b = benign[target[i]] (target from the pairing over the items) */
int lz_benign_targets(lz_plan *P);

/* ---- localize.c */

/* `locus localize` / `locus edit` / `locus detox`: parse, plan, run this shard, write the outputs. */
int lz_main(int argc, char **argv, int experiment);
/* the command name in messages ("localize", "edit", "detox") */
extern const char *lz_cmd_name;

/* localize_help.c: the --help of localize / edit / detox (by experiment) and of merge on stdout; return 0. */
int lz_help(int experiment);
int lz_merge_help(void);

#endif
