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
 */
#include "localize.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/png.h"
#include "../core/rng.h"
#include "../core/version.h"
#include "../simd/kernels.h"
#include "draw.h"
#include "metrics.h"
#include "ocr.h"
#include "progress.h"
#include "run.h"

/* ------------------------------------------------------------------ growable string */

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2 + 256;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < (int)sizeof tmp) { sb_putn(b, tmp, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t)n);
    free(big);
}
static void sb_json_str(sbuf *b, const char *s) {
    sb_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; sb_putn(b, e, 2); }
        else if (c == '\n') sb_puts(b, "\\n");
        else if (c < 0x20 || c == 0x7f) sb_printf(b, "\\u%04x", c);
        else sb_putn(b, (const char *)&c, 1);
    }
    sb_puts(b, "\"");
}
static void sb_csv_str(sbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) { sb_puts(b, s); return; }
    sb_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"') sb_puts(b, "\"");
        sb_putn(b, s, 1);
    }
    sb_puts(b, "\"");
}
/* doubles as %.9g (enough to tell float results apart, identical text for identical values) */
static void sb_num(sbuf *b, double v) {
    if (!isfinite(v)) { sb_puts(b, "null"); return; }
    sb_printf(b, "%.9g", v);
}

/* ------------------------------------------------------------------ plan */

typedef struct {
    char *word, *prompt;
} item;

typedef struct {
    /* settings (all recorded in config.json) */
    const char *model, *template, *negative, *sampler, *words_file, *prompts_file, *layers_spec, *seeds_spec, *mse_mode;
    char *out;
    int steps, width, height, max_seq, start_step, both, threads, grid_cols, resume, shard, nshards;
    float guidance;
    long long perm_seed;
    /* derived */
    item *items;
    int nitems;
    int *target;
    long long *seeds;
    int nseeds;
    char **layers; /* patched layer groups, comma-separated paths each */
    int nlayers;
} plan;

static int cells_per_group(const plan *P) { return P->nlayers + 2; }
static int ngroups(const plan *P) { return P->nitems * P->nseeds; }
static int ncells(const plan *P) { return ngroups(P) * cells_per_group(P); }

static const char *cell_label(const plan *P, int kind) {
    return kind == 0 ? "(prompt A, unpatched)" : kind == 1 ? "(prompt B, unpatched)" : P->layers[kind - 2];
}

static int lfail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lfail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "locus %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static void plan_free(plan *P) {
    for (int i = 0; i < P->nitems; i++) { free(P->items[i].word); free(P->items[i].prompt); }
    free(P->items);
    free(P->target);
    free(P->seeds);
    for (int i = 0; i < P->nlayers; i++) free(P->layers[i]);
    free(P->layers);
    free(P->out);
}

/* the template with "{}" replaced by the word */
static char *fill_template(const char *tpl, const char *word) {
    const char *at = strstr(tpl, "{}");
    sbuf b = {0};
    sb_putn(&b, tpl, (size_t)(at - tpl));
    sb_puts(&b, word);
    sb_puts(&b, at + 2);
    return b.s;
}

/* well-formed UTF-8 (the result files are JSON, which must be) */
static int utf8_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
        if (n < 0 || (n == 1 && *p < 0xC2)) return 0;
        uint32_t c = *p & (0x7F >> (n + 1));
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80) return 0;
            c = c << 6 | (p[k] & 0x3F);
        }
        if ((n == 2 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (n == 3 && (c < 0x10000 || c > 0x10FFFF))) return 0;
        p += n + 1;
    }
    return 1;
}

/* words / prompts file -> items; errors name the file and line */
static int read_items(plan *P) {
    const char *path = P->words_file ? P->words_file : P->prompts_file;
    char *data;
    size_t len;
    if (locus_read_file(path, &data, &len)) return lfail("localize", "%s", locus_errmsg());
    int cap = 16, line = 0;
    P->items = malloc((size_t)cap * sizeof(item));
    char *save = NULL;
    for (char *ln = strtok_r(data, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t l = strlen(ln);
        while (l && (ln[l - 1] == '\r' || ln[l - 1] == ' ' || ln[l - 1] == '\t')) ln[--l] = 0;
        while (*ln == ' ' || *ln == '\t') ln++;
        if (!*ln) continue;
        if (!utf8_ok(ln)) { free(data); return lfail("localize", "%s:%d: not valid UTF-8 text", path, line); }
        if (P->nitems == cap) P->items = realloc(P->items, (size_t)(cap *= 2) * sizeof(item));
        item *it = &P->items[P->nitems];
        if (P->words_file) {
            it->word = strdup(ln);
            it->prompt = fill_template(P->template, ln);
        } else {
            char *q1 = strchr(ln, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
            if (!q2 || q2 == q1 + 1) { free(data); return lfail("localize", "%s:%d: a prompt needs its text in double quotes (A sign that says \"WORD\".)", path, line); }
            it->word = strndup(q1 + 1, (size_t)(q2 - q1 - 1));
            it->prompt = strdup(ln);
        }
        P->nitems++;
    }
    free(data);
    if (P->nitems < 2) return lfail("localize", "%s: needs at least two words or prompts (found %d)", path, P->nitems);
    return 0;
}

/* a uniformly random permutation without fixed points (and never a word onto an equal word), by rejection */
static int derange(plan *P) {
    int n = P->nitems;
    P->target = malloc((size_t)n * sizeof(int));
    uint64_t ctr = 0;
    for (int attempt = 0; attempt < 100000; attempt++) {
        for (int i = 0; i < n; i++) P->target[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(locus_hash_uniform((uint64_t)P->perm_seed, ctr++) * (i + 1));
            if (j > i) j = i;
            int t = P->target[i]; P->target[i] = P->target[j]; P->target[j] = t;
        }
        int ok = 1;
        for (int i = 0; i < n && ok; i++) ok = P->target[i] != i && strcmp(P->items[i].word, P->items[P->target[i]].word);
        if (ok) return 0;
    }
    return lfail("localize", "cannot pair the words with different ones (are they all the same?)");
}

static int parse_seeds(plan *P) {
    char *cp = strdup(P->seeds_spec), *save = NULL;
    int cap = 8;
    P->seeds = malloc((size_t)cap * sizeof(long long));
    for (char *t = strtok_r(cp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long long a, b;
        int used = 0;
        if (sscanf(t, "%lld-%lld%n", &a, &b, &used) == 2 && !t[used] && a >= 0 && b >= a && b - a < 100000) {
        } else if (sscanf(t, "%lld%n", &a, &used) == 1 && !t[used] && a >= 0) b = a;
        else { free(cp); return lfail("localize", "--seeds %s: expected non-negative integers and ranges (0,1,5-9)", P->seeds_spec); }
        for (long long s = a; s <= b; s++) {
            if (P->nseeds == cap) P->seeds = realloc(P->seeds, (size_t)(cap *= 2) * sizeof(long long));
            P->seeds[P->nseeds++] = s;
        }
    }
    free(cp);
    if (!P->nseeds) return lfail("localize", "--seeds: no seeds given");
    return 0;
}

/* default layers: every text-reading attention layer in forward order; otherwise ',' separates groups and
 * '+' joins layers within a group */
static int resolve_layers(plan *P, locus_pipeline *p) {
    int cap = 64;
    P->layers = malloc((size_t)cap * sizeof(char *));
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
        for (char *t = strtok_r(cp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            for (char *c = t; *c; c++)
                if (*c == '+') *c = ',';
            if (P->nlayers == cap) P->layers = realloc(P->layers, (size_t)(cap *= 2) * sizeof(char *));
            P->layers[P->nlayers++] = strdup(t);
        }
        free(cp);
    }
    if (!P->nlayers) return lfail("localize", "no layers to patch");
    /* check each group now, so a typo fails before any image is made */
    unsigned char *sel = malloc((size_t)(p->den.ntext_layers > 0 ? p->den.ntext_layers : 1));
    for (int i = 0; i < P->nlayers; i++) {
        locus_status st = sel ? locus_denoiser_select_text_layers(&p->den, P->layers[i], "--layers", sel) : LOCUS_E_NOMEM;
        if (st) free(sel);
        if (st) return lfail("localize", "--layers: %s", locus_errmsg());
    }
    free(sel);
    return 0;
}

/* config.json: every setting that changes results, in a fixed order */
static char *config_json(const plan *P, unsigned long long model_hash, int shard, int nshards) {
    sbuf b = {0};
    sb_puts(&b, "{\n  \"locus_localize\": 1,\n  \"model\": ");
    sb_json_str(&b, P->model);
    sb_printf(&b, ",\n  \"model_hash\": \"%016llx\",\n  \"steps\": %d,\n  \"guidance\": ", model_hash, P->steps);
    sb_num(&b, P->guidance);
    sb_puts(&b, ",\n  \"sampler\": ");
    sb_json_str(&b, P->sampler);
    sb_printf(&b, ",\n  \"width\": %d,\n  \"height\": %d,\n  \"max_sequence_length\": %d,\n  \"negative_prompt\": ", P->width, P->height, P->max_seq);
    sb_json_str(&b, P->negative);
    sb_printf(&b, ",\n  \"grid_cols\": %d", P->grid_cols);
    sb_printf(&b, ",\n  \"start_step\": %d,\n  \"patch_halves\": \"%s\",\n  \"mse\": \"%s\",\n  \"perm_seed\": %lld,\n  \"seeds\": [", P->start_step,
              P->both ? "both" : "cond", P->mse_mode, P->perm_seed);
    for (int i = 0; i < P->nseeds; i++) sb_printf(&b, "%s%lld", i ? ", " : "", P->seeds[i]);
    sb_puts(&b, "],\n  \"layers\": [");
    for (int i = 0; i < P->nlayers; i++) {
        sb_puts(&b, i ? ",\n    " : "\n    ");
        sb_json_str(&b, P->layers[i]);
    }
    sb_puts(&b, "\n  ],\n  \"items\": [");
    for (int i = 0; i < P->nitems; i++) {
        sb_puts(&b, i ? ",\n    {\"word\": " : "\n    {\"word\": ");
        sb_json_str(&b, P->items[i].word);
        sb_puts(&b, ", \"prompt\": ");
        sb_json_str(&b, P->items[i].prompt);
        sb_printf(&b, ", \"target\": %d}", P->target[i]);
    }
    sb_printf(&b, "\n  ],\n  \"shard\": \"%d/%d\"\n}\n", shard, nshards);
    return b.s;
}

/* ------------------------------------------------------------------ rows */

typedef struct {
    int cell, done;
    char *ocr;
    locus_text_metrics ta, tb;
    double mse, psnr, ssim;
} row;

/* One definition of a row's columns, written as a JSON object, a CSV line or the CSV header. */
typedef struct {
    sbuf *b;
    int mode; /* 0 JSON, 1 CSV, 2 CSV header */
    int n;    /* fields written */
} emitter;

static void emit_key(emitter *e, const char *name) {
    if (e->mode == 0) {
        sb_puts(e->b, e->n ? ", \"" : "{\"");
        sb_puts(e->b, name);
        sb_puts(e->b, "\": ");
    } else {
        if (e->n) sb_puts(e->b, ",");
        if (e->mode == 2) sb_puts(e->b, name);
    }
    e->n++;
}
static void emit_str(emitter *e, const char *name, const char *v) {
    emit_key(e, name);
    if (e->mode == 0) sb_json_str(e->b, v);
    else if (e->mode == 1) sb_csv_str(e->b, v);
}
static void emit_int(emitter *e, const char *name, long long v) {
    emit_key(e, name);
    if (e->mode < 2) sb_printf(e->b, "%lld", v);
}
static void emit_num(emitter *e, const char *name, double v) {
    emit_key(e, name);
    if (e->mode == 0 || (e->mode == 1 && isfinite(v))) sb_num(e->b, v); /* CSV: empty when undefined */
}
static void emit_end(emitter *e) { sb_puts(e->b, e->mode == 0 ? "}\n" : "\n"); }

/* the columns of a result row (r may be NULL for the header) */
static void row_emit(const plan *P, const row *r, emitter *e) {
    int cpg = cells_per_group(P), cell = r ? r->cell : 0, g = cell / cpg, it = g / P->nseeds;
    static const row zero;
    if (!r) r = &zero;
    char img[32];
    snprintf(img, sizeof img, "images/c%06d.png", cell);
    emit_int(e, "cell", cell);
    emit_str(e, "layer", cell_label(P, cell % cpg));
    emit_int(e, "prompt", it);
    emit_int(e, "seed", P->seeds[g % P->nseeds]);
    emit_str(e, "word_a", P->items[it].word);
    emit_str(e, "word_b", P->items[P->target[it]].word);
    emit_str(e, "ocr", r->ocr ? r->ocr : "");
    const locus_text_metrics *t[2] = {&r->ta, &r->tb};
    static const char *const names[2][5] = {{"precision_a", "recall_a", "acc_a", "exact_a", "levenshtein_a"},
                                           {"precision_b", "recall_b", "acc_b", "exact_b", "levenshtein_b"}};
    for (int k = 0; k < 2; k++) {
        emit_num(e, names[k][0], t[k]->precision);
        emit_num(e, names[k][1], t[k]->recall);
        emit_int(e, names[k][2], t[k]->acc);
        emit_int(e, names[k][3], t[k]->exact);
        emit_int(e, names[k][4], t[k]->levenshtein);
    }
    emit_num(e, "mse", r->mse);
    emit_num(e, "psnr", r->psnr);
    emit_num(e, "ssim", r->ssim);
    emit_str(e, "image", img);
    emit_end(e);
}

static void row_json(const plan *P, const row *r, sbuf *b) { emitter e = {b, 0, 0}; row_emit(P, r, &e); }
static void row_csv(const plan *P, const row *r, sbuf *b) { emitter e = {b, 1, 0}; row_emit(P, r, &e); }
static void csv_header(const plan *P, sbuf *b) { emitter e = {b, 2, 0}; row_emit(P, NULL, &e); }

/* one results.jsonl line -> row; 0 on success */
static int row_parse(const plan *P, const char *line, size_t len, row *r) {
    locus_json_doc d;
    if (locus_json_parse(&d, line, len, "results.jsonl")) return -1;
    int ok = 1;
    const locus_json *o = d.root;
    memset(r, 0, sizeof *r);
    r->cell = (int)locus_json_int(o, "cell", -1, &ok);
    r->ocr = strdup(locus_json_str(o, "ocr", "", &ok));
    r->ta.precision = locus_json_num(o, "precision_a", 0, &ok);
    r->ta.recall = locus_json_num(o, "recall_a", 0, &ok);
    r->ta.acc = (int)locus_json_int(o, "acc_a", 0, &ok);
    r->ta.exact = (int)locus_json_int(o, "exact_a", 0, &ok);
    r->ta.levenshtein = (int)locus_json_int(o, "levenshtein_a", 0, &ok);
    r->tb.precision = locus_json_num(o, "precision_b", 0, &ok);
    r->tb.recall = locus_json_num(o, "recall_b", 0, &ok);
    r->tb.acc = (int)locus_json_int(o, "acc_b", 0, &ok);
    r->tb.exact = (int)locus_json_int(o, "exact_b", 0, &ok);
    r->tb.levenshtein = (int)locus_json_int(o, "levenshtein_b", 0, &ok);
    r->mse = locus_json_num(o, "mse", NAN, &ok);
    r->psnr = locus_json_num(o, "psnr", NAN, &ok);
    r->ssim = locus_json_num(o, "ssim", NAN, &ok);
    locus_json_free(&d);
    if (!ok || r->cell < 0 || r->cell >= ncells(P)) { free(r->ocr); r->ocr = NULL; return -1; }
    /* the line must be exactly what this version writes for those values (catches edited or foreign rows) */
    r->done = 1;
    sbuf b = {0};
    row_json(P, r, &b);
    int same = b.n == len + 1 && !memcmp(b.s, line, len);
    free(b.s);
    if (!same) { free(r->ocr); r->ocr = NULL; r->done = 0; return -1; }
    return 0;
}

/* Read results.jsonl into rows[]; drop (and truncate away) an unterminated or invalid tail.  Returns the
 * number of rows loaded, or -1 on an error worth stopping for (a bad row in the middle). */
static int load_rows(const plan *P, const char *path, row *rows, int truncate_tail) {
    char *data;
    size_t len;
    locus_status st = locus_read_file(path, &data, &len);
    if (st == LOCUS_E_NOTFOUND) return 0;
    if (st) { fprintf(stderr, "locus localize: %s\n", locus_errmsg()); return -1; }
    size_t pos = 0, good = 0;
    int n = 0, bad = 0;
    while (pos < len) {
        char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl) { bad = 1; break; }
        size_t l = (size_t)(nl - (data + pos));
        row r;
        if (row_parse(P, data + pos, l, &r)) { bad = 1; break; }
        if (rows[r.cell].done) { free(r.ocr); } /* a duplicate of an identical row (re-run after a crash) */
        else { rows[r.cell] = r; n++; }
        pos += l + 1;
        good = pos;
    }
    if (bad) {
        if (memchr(data + pos, '\n', len - pos)) { /* a complete line that is not a row: not ours, or edited */
            fprintf(stderr, "locus localize: %s: line at byte %zu is not a locus result row; refusing to continue\n", path, pos);
            free(data);
            return -1;
        }
        /* an unterminated last line: a write cut short (power loss); drop it */
        fprintf(stderr, "localize: %s: dropping an incomplete last row (%zu bytes)\n", path, len - good);
        if (truncate_tail && truncate(path, (off_t)good)) {
            fprintf(stderr, "locus localize: %s: cannot truncate (%s)\n", path, strerror(errno));
            free(data);
            return -1;
        }
    }
    free(data);
    return n;
}

/* ------------------------------------------------------------------ outputs */

static int write_text(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (locus_write_atomic(path, text, strlen(text))) return lfail("localize", "%s", locus_errmsg());
    return 0;
}

static int write_csv(const plan *P, const row *rows) {
    sbuf b = {0};
    csv_header(P, &b);
    for (int c = 0; c < ncells(P); c++)
        if (rows[c].done) row_csv(P, &rows[c], &b);
    int rc = write_text(P->out, "results.csv", b.s);
    free(b.s);
    return rc;
}

typedef struct {
    int n;
    double pa, ra, pb, rb, acca, accb, exa, exb, leva, levb, mse, psnr, ssim;
} agg;

/* per-layer summary (rows of finished cells only), summary.csv/.json, table on stdout, bar chart, grid */
static int write_summary(const plan *P, const row *rows) {
    int K = cells_per_group(P);
    agg *A = calloc((size_t)K, sizeof(agg));
    for (int c = 0; c < ncells(P); c++) {
        if (!rows[c].done) continue;
        agg *a = &A[c % K];
        const row *r = &rows[c];
        a->n++;
        a->pa += r->ta.precision; a->ra += r->ta.recall; a->pb += r->tb.precision; a->rb += r->tb.recall;
        a->acca += r->ta.acc; a->accb += r->tb.acc; a->exa += r->ta.exact; a->exb += r->tb.exact;
        a->leva += r->ta.levenshtein; a->levb += r->tb.levenshtein;
        a->mse += r->mse; a->psnr += r->psnr; a->ssim += r->ssim;
    }
    sbuf csv = {0}, js = {0};
    sb_puts(&csv, "layer,n,precision_a,recall_a,ocr_f1_a,acc_a,exact_a,levenshtein_a,precision_b,recall_b,ocr_f1_b,acc_b,exact_b,levenshtein_b,mse,psnr,ssim\n");
    sb_puts(&js, "{\n  \"layers\": [");
    double *f1a = calloc((size_t)K, sizeof(double)), *f1b = calloc((size_t)K, sizeof(double));
    const char **labels = calloc((size_t)K, sizeof(char *));
    printf("%-56s %4s %7s %7s %7s %7s %7s %7s\n", "layer (patched alone)", "n", "F1(A)", "F1(B)", "acc(B)", "lev(B)", "SSIM", "PSNR");
    for (int k = 0; k < K; k++) {
        agg *a = &A[k];
        double n = a->n ? a->n : 1;
        double m[13] = {a->pa / n, a->ra / n, 0, a->acca / n, a->exa / n, a->leva / n, a->pb / n, a->rb / n, 0, a->accb / n, a->exb / n, a->levb / n};
        m[2] = locus_f1(m[0], m[1]);
        m[8] = locus_f1(m[6], m[7]);
        f1a[k] = m[2];
        f1b[k] = m[8];
        labels[k] = cell_label(P, k);
        double mse = a->mse / n, psnr = a->psnr / n, ssim = a->ssim / n;
        sb_csv_str(&csv, labels[k]);
        sb_printf(&csv, ",%d", a->n);
        for (int j = 0; j < 12; j++) { sb_puts(&csv, ","); sb_num(&csv, m[j]); }
        sb_puts(&csv, ","); sb_num(&csv, mse);
        sb_puts(&csv, ","); sb_num(&csv, psnr);
        sb_puts(&csv, ","); sb_num(&csv, ssim);
        sb_puts(&csv, "\n");
        static const char *names[12] = {"precision_a", "recall_a", "ocr_f1_a", "acc_a", "exact_a", "levenshtein_a",
                                        "precision_b", "recall_b", "ocr_f1_b", "acc_b", "exact_b", "levenshtein_b"};
        sb_puts(&js, k ? ",\n    {\"layer\": " : "\n    {\"layer\": ");
        sb_json_str(&js, labels[k]);
        sb_printf(&js, ", \"n\": %d", a->n);
        for (int j = 0; j < 12; j++) { sb_printf(&js, ", \"%s\": ", names[j]); sb_num(&js, m[j]); }
        sb_puts(&js, ", \"mse\": "); sb_num(&js, mse);
        sb_puts(&js, ", \"psnr\": "); sb_num(&js, psnr);
        sb_puts(&js, ", \"ssim\": "); sb_num(&js, ssim);
        sb_puts(&js, "}");
        printf("%-56s %4d %7.3f %7.3f %7.3f %7.2f %7.3f %7.2f\n", labels[k], a->n, m[2], m[8], m[9], m[11], ssim, psnr);
    }
    sb_puts(&js, "\n  ]\n}\n");
    fflush(stdout);
    int rc = write_text(P->out, "summary.csv", csv.s) || write_text(P->out, "summary.json", js.s);
    char path[4200];
    snprintf(path, sizeof path, "%s/ocr_f1.png", P->out);
    if (!rc && locus_bar_chart(path, "OCR-F1 per patched layer (prompt A's image, prompt B's text)", K, labels, f1b, "OCR-F1 vs B's word", f1a,
                               "OCR-F1 vs A's word"))
        rc = lfail("localize", "%s", locus_errmsg());
    free(csv.s); free(js.s); free(f1a); free(f1b); free(labels); free(A);
    return rc;
}

/* grid.png: rows = A, B, layers; columns = the first grid_cols prompts at the first seed */
static int write_grid(const plan *P, const row *rows) {
    int K = cells_per_group(P), cols = P->nitems < P->grid_cols ? P->nitems : P->grid_cols;
    int W = P->width, H = P->height;
    int up = W < 96 ? (96 + W - 1) / W : 1, down = W > 256 ? (W + 255) / 256 : 1;
    int cw = W * up / down, ch = H * up / down;
    const int s = 2, pad = 8;
    int lw = 0;
    for (int k = 0; k < K; k++) {
        int t = locus_text_width(cell_label(P, k), s);
        if (t > lw) lw = t;
    }
    int hh = 2 * (LOCUS_FONT_H * s) + 3 * pad;
    locus_canvas c;
    if (locus_canvas_new(&c, pad + lw + pad + cols * (cw + pad), hh + K * (ch + pad) + pad)) return lfail("localize", "%s", locus_errmsg());
    uint8_t *small = malloc((size_t)cw * ch * 3);
    for (int j = 0; j < cols; j++) {
        int x = pad + lw + pad + j * (cw + pad);
        char t[64];
        snprintf(t, sizeof t, "%.*s", cw / (6 * s), P->items[j].word);
        locus_draw_text(&c, x, pad, s, 0x202020, t);
        snprintf(t, sizeof t, "> %.*s", cw / (6 * s) - 2, P->items[P->target[j]].word);
        locus_draw_text(&c, x, pad + LOCUS_FONT_H * s + pad, s, 0x3465A4, t);
    }
    for (int k = 0; k < K; k++) {
        int y = hh + k * (ch + pad);
        locus_draw_text(&c, pad + lw - locus_text_width(cell_label(P, k), s), y + ch / 2 - LOCUS_FONT_H, s, 0x202020, cell_label(P, k));
        for (int j = 0; j < cols; j++) {
            int cell = (j * P->nseeds) * K + k, x = pad + lw + pad + j * (cw + pad);
            if (!rows[cell].done) { locus_draw_rect(&c, x, y, cw, ch, 0xEEEEEE); continue; }
            char path[4200];
            snprintf(path, sizeof path, "%s/images/c%06d.png", P->out, cell);
            uint8_t *pix;
            int iw, ih;
            if (locus_png_read_rgb(path, &pix, &iw, &ih) || iw != W || ih != H) {
                locus_canvas_free(&c);
                free(small);
                return lfail("localize", "%s: missing or unreadable image of a finished cell", path);
            }
            if (down > 1) { /* box filter */
                int sw = W / down, sh = H / down;
                for (int yy = 0; yy < sh; yy++)
                    for (int xx = 0; xx < sw; xx++)
                        for (int q = 0; q < 3; q++) {
                            int acc = 0;
                            for (int dy = 0; dy < down; dy++)
                                for (int dx = 0; dx < down; dx++) acc += pix[((size_t)(yy * down + dy) * W + xx * down + dx) * 3 + q];
                            small[((size_t)yy * sw + xx) * 3 + q] = (uint8_t)((acc + down * down / 2) / (down * down));
                        }
                locus_draw_image(&c, x, y, small, sw, sh, 1);
            } else {
                locus_draw_image(&c, x, y, pix, W, H, up);
            }
            free(pix);
        }
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/grid.png", P->out);
    int rc = locus_png_write(path, c.px, c.w, c.h, 3, NULL, 0) ? lfail("localize", "%s", locus_errmsg()) : 0;
    locus_canvas_free(&c);
    free(small);
    return rc;
}

/* temporary files a killed run may have left behind (never result files: those appear only by rename) */
static void remove_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".tmp.")) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* heatmap.png: OCR-F1 against B's word (F1 of the mean precision and recall over seeds) for every layer (rows)
 * and prompt (columns, at most 100), white (0) to blue (1), value printed in each cell */
static int write_heatmap(const plan *P, const row *rows) {
    int K = cells_per_group(P), cols = P->nitems < 100 ? P->nitems : 100;
    const int s = 2, pad = 8, cw = 44, ch = 22, lh = LOCUS_FONT_H * s;
    int lw = 0;
    for (int k = 0; k < K; k++) {
        int t = locus_text_width(cell_label(P, k), s);
        if (t > lw) lw = t;
    }
    const char *title = "OCR-F1 vs B's word per layer (rows) and prompt (columns)";
    int x0 = pad + lw + pad, y0 = pad + lh + pad + lh + pad;
    int W = x0 + cols * cw + pad, tw = pad + locus_text_width(title, s) + pad;
    if (W < tw) W = tw;
    int H = y0 + K * ch + pad + ch + pad;
    locus_canvas c;
    if (locus_canvas_new(&c, W, H)) return lfail("localize", "%s", locus_errmsg());
    locus_draw_text(&c, pad, pad, s, 0x202020, title);
    for (int j = 0; j < cols; j++) {
        char t[16];
        snprintf(t, sizeof t, "%.7s", P->items[j].word);
        locus_draw_text(&c, x0 + j * cw + 2, pad + lh + pad + lh / 2, 1, 0x202020, t);
    }
    for (int k = 0; k < K; k++) {
        int y = y0 + k * ch;
        locus_draw_text(&c, x0 - pad - locus_text_width(cell_label(P, k), s), y + (ch - lh) / 2, s, 0x202020, cell_label(P, k));
        for (int j = 0; j < cols; j++) {
            double sp = 0, sr = 0;
            int n = 0;
            for (int q = 0; q < P->nseeds; q++) {
                const row *r = &rows[(j * P->nseeds + q) * K + k];
                if (!r->done) continue;
                sp += r->tb.precision;
                sr += r->tb.recall;
                n++;
            }
            int x = x0 + j * cw;
            if (!n) { locus_draw_rect(&c, x, y, cw - 1, ch - 1, 0xEEEEEE); continue; }
            double v = locus_f1(sp / n, sr / n);
            int t = (int)(v * 255 + 0.5);
            uint32_t rgb = (uint32_t)(255 - (255 - 0x34) * t / 255) << 16 | (uint32_t)(255 - (255 - 0x65) * t / 255) << 8 | (uint32_t)(255 - (255 - 0xA4) * t / 255);
            locus_draw_rect(&c, x, y, cw - 1, ch - 1, rgb);
            char vs[16];
            snprintf(vs, sizeof vs, "%.2f", v);
            locus_draw_text(&c, x + (cw - locus_text_width(vs, 1)) / 2, y + (ch - LOCUS_FONT_H) / 2, 1, v > 0.5 ? 0xFFFFFF : 0x202020, vs);
        }
    }
    /* colour scale */
    int sy = y0 + K * ch + pad, sw = cols * cw < 200 ? cols * cw : 200;
    for (int i = 0; i < sw; i++) {
        int t = i * 255 / (sw > 1 ? sw - 1 : 1);
        locus_draw_rect(&c, x0 + i, sy, 1, ch / 2, (uint32_t)(255 - (255 - 0x34) * t / 255) << 16 | (uint32_t)(255 - (255 - 0x65) * t / 255) << 8 |
                                                      (uint32_t)(255 - (255 - 0xA4) * t / 255));
    }
    locus_draw_text(&c, x0, sy + ch / 2 + 2, 1, 0x202020, "0");
    locus_draw_text(&c, x0 + sw - locus_text_width("1", 1), sy + ch / 2 + 2, 1, 0x202020, "1");
    char path[4200];
    snprintf(path, sizeof path, "%s/heatmap.png", P->out);
    int rc = locus_png_write(path, c.px, c.w, c.h, 3, NULL, 0) ? lfail("localize", "%s", locus_errmsg()) : 0;
    locus_canvas_free(&c);
    return rc;
}

static int finish_outputs(const plan *P, const row *rows) {
    return write_csv(P, rows) || write_summary(P, rows) || write_grid(P, rows) || write_heatmap(P, rows);
}

/* ------------------------------------------------------------------ the experiment */

static void log_run(const plan *P, const char *what, int cells) {
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/runs.log", P->out);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(line, sizeof line, "%s %s locus %s isa %s threads %d shard %d/%d cells %d\n", ts, what, LOCUS_VERSION, locus_isa_name(),
                     locus_threads(), P->shard, P->nshards, cells);
    locus_append_durable(path, line, (size_t)n);
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
static int finish_cell(const plan *P, locus_ocr *ocr, row *rows, int cell, const uint8_t *pix, const uint8_t *ref) {
    int K = cells_per_group(P), g = cell / K, it = g / P->nseeds;
    char path[4200];
    snprintf(path, sizeof path, "%s/images/c%06d.png", P->out, cell);
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%lld", P->seeds[g % P->nseeds]);
    locus_png_text tx[] = {{"prompt", P->items[it].prompt}, {"patch_prompt", P->items[P->target[it]].prompt},
                           {"layer", cell_label(P, cell % K)}, {"seed", seed_s}};
    if (locus_png_write(path, pix, P->width, P->height, 3, tx, 4)) return lfail("localize", "%s", locus_errmsg());
    row *r = &rows[cell];
    r->cell = cell;
    r->ocr = locus_ocr_read(ocr, pix, P->width, P->height);
    if (!r->ocr) return lfail("localize", "%s", locus_errmsg());
    r->ta = locus_text_compare(r->ocr, P->items[it].word);
    r->tb = locus_text_compare(r->ocr, P->items[P->target[it]].word);
    r->mse = !strcmp(P->mse_mode, "uint8-wrap") ? locus_mse_u8_wrap(ref, pix, P->height, P->width) : locus_mse_u8(ref, pix, P->height, P->width);
    r->psnr = locus_psnr(r->mse);
    r->ssim = locus_ssim_u8(ref, pix, P->height, P->width);
    if (r->ssim == -2) r->ssim = NAN;
    r->ta.precision = q9(r->ta.precision); r->ta.recall = q9(r->ta.recall);
    r->tb.precision = q9(r->tb.precision); r->tb.recall = q9(r->tb.recall);
    r->mse = q9(r->mse); r->psnr = q9(r->psnr); r->ssim = q9(r->ssim);
    r->done = 1;
    sbuf j = {0}, c = {0};
    row_json(P, r, &j);
    row_csv(P, r, &c);
    char pj[4200], pc[4200];
    snprintf(pj, sizeof pj, "%s/results.jsonl", P->out);
    snprintf(pc, sizeof pc, "%s/results.csv", P->out);
    int rc = 0;
    if (locus_append_durable(pj, j.s, j.n) || locus_append_durable(pc, c.s, c.n)) rc = lfail("localize", "%s", locus_errmsg());
    free(j.s);
    free(c.s);
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

static int run_group(const plan *P, locus_pipeline *p, locus_ocr *ocr, row *rows, int g, locus_progress *prog, int *done_cells) {
    int K = cells_per_group(P), it = g / P->nseeds, base = g * K;
    int todo = 0;
    for (int k = 0; k < K; k++) todo += !rows[base + k].done;
    if (!todo) return 0;
    step_progress sp = {prog, done_cells};
    locus_run_opts o = {P->steps, P->guidance, P->width, P->height, (uint64_t)P->seeds[g % P->nseeds], cell_step, &sp};
    int cfg = P->guidance > 1.0f, rc = 0;
    locus_embeds ea, eb;
    if (locus_embeds_encode(p, P->items[it].prompt, P->negative, cfg, P->max_seq, &ea))
        return lfail("localize", "prompt %d: %s", it, locus_errmsg());
    if (locus_embeds_encode(p, P->items[P->target[it]].prompt, P->negative, cfg, P->max_seq, &eb)) {
        locus_embeds_free(&ea);
        return lfail("localize", "prompt %d: %s", P->target[it], locus_errmsg());
    }
    size_t np = (size_t)3 * P->width * P->height;
    uint8_t *ref = malloc(np), *pix = malloc(np);
    const char *delay = getenv("LOCUS_LOCALIZE_TEST_DELAY_MS"); /* lets a test kill the run between cells */
    /* A unpatched: always needed (the reference of every image metric) */
    if (locus_run_image(p, &o, &ea, NULL, ref)) { rc = lfail("localize", "%s", locus_errmsg()); goto out; }
    if (!rows[base].done) {
        if ((rc = finish_cell(P, ocr, rows, base, ref, ref))) goto out;
        locus_progress_update(prog, ++*done_cells);
    }
    locus_patcher pt;
    int need_b = !rows[base + 1].done;
    /* SD3: record only the blocks some layer group patches */
    sbuf rec = {0};
    for (int l = 0; l < P->nlayers; l++) { sb_puts(&rec, l ? "," : ""); sb_puts(&rec, P->layers[l]); }
    locus_status pst = locus_patcher_init(&pt, p, &o, &ea, &eb, P->both, P->start_step, rec.s, NULL, need_b || !p->den.text_kv_projectable ? pix : NULL);
    free(rec.s);
    if (pst) {
        rc = lfail("localize", "%s", locus_errmsg());
        goto out;
    }
    if (need_b) {
        if ((rc = finish_cell(P, ocr, rows, base + 1, pix, ref))) goto outp;
        locus_progress_update(prog, ++*done_cells);
    }
    for (int l = 0; l < P->nlayers; l++) {
        int cell = base + 2 + l;
        if (rows[cell].done) continue;
        if (locus_patcher_run(&pt, P->layers[l], pix)) { rc = lfail("localize", "%s: %s", P->layers[l], locus_errmsg()); goto outp; }
        if ((rc = finish_cell(P, ocr, rows, cell, pix, ref))) goto outp;
        locus_progress_update(prog, ++*done_cells);
        if (delay) usleep((useconds_t)atoi(delay) * 1000);
    }
outp:
    locus_patcher_free(&pt);
out:
    free(ref);
    free(pix);
    locus_embeds_free(&ea);
    locus_embeds_free(&eb);
    return rc;
}

static int usage_localize(void) {
    fprintf(stderr,
            "usage: locus localize --model DIR (--words FILE | --prompts FILE) -o RESULTS_DIR\n"
            "         [--template 'A sign that says \"{}\".'] [--seeds 0,1,5-9] [--layers all | L1,L2+L3,...]\n"
            "         [--steps N] [--guidance F] [--sampler NAME] [--negative-prompt TEXT] [--width W --height H]\n"
            "         [--max-sequence-length N] [--start-step K] [--patch-halves cond|both] [--perm-seed N]\n"
            "         [--mse true|uint8-wrap] [--grid-cols N] [--shard I/N] [--resume] [--threads N]\n"
            "       locus merge -o RESULTS_DIR SHARD_DIR...\n");
    return 2;
}

static int parse_localize(int argc, char **argv, plan *P) {
    memset(P, 0, sizeof *P);
    P->template = "A sign that says \"{}\".";
    P->negative = "";
    P->seeds_spec = "0";
    P->mse_mode = "true";
    P->steps = 50;
    P->guidance = -1;
    P->grid_cols = 8;
    P->nshards = 1;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--resume")) { P->resume = 1; continue; }
        if (i + 1 >= argc) return lfail("localize", "option %s needs a value", k);
        const char *v = argv[++i];
        char *end;
        long x = strtol(v, &end, 10);
        int isnum = *v && !*end;
        if (!strcmp(k, "--model")) P->model = v;
        else if (!strcmp(k, "--words")) P->words_file = v;
        else if (!strcmp(k, "--prompts")) P->prompts_file = v;
        else if (!strcmp(k, "--template")) P->template = v;
        else if (!strcmp(k, "--seeds")) P->seeds_spec = v;
        else if (!strcmp(k, "--layers")) P->layers_spec = v;
        else if (!strcmp(k, "--negative-prompt")) P->negative = v;
        else if (!strcmp(k, "--sampler")) P->sampler = v;
        else if (!strcmp(k, "-o") || !strcmp(k, "--out")) out = v;
        else if (!strcmp(k, "--mse")) {
            if (strcmp(v, "true") && strcmp(v, "uint8-wrap")) return lfail("localize", "--mse %s: expected true or uint8-wrap", v);
            P->mse_mode = v;
        } else if (!strcmp(k, "--patch-halves")) {
            if (strcmp(v, "cond") && strcmp(v, "both")) return lfail("localize", "--patch-halves %s: expected cond or both", v);
            P->both = !strcmp(v, "both");
        } else if (!strcmp(k, "--shard")) {
            int a, b, used = 0;
            if (sscanf(v, "%d/%d%n", &a, &b, &used) != 2 || v[used] || b < 1 || a < 0 || a >= b)
                return lfail("localize", "--shard %s: expected I/N with 0 <= I < N (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)", v);
            P->shard = a;
            P->nshards = b;
        } else if (!strcmp(k, "--guidance")) {
            P->guidance = strtof(v, &end);
            if (*end || end == v || P->guidance < 0 || P->guidance > 100) return lfail("localize", "--guidance %s: expected a number from 0 to 100", v);
        } else if (!strcmp(k, "--perm-seed")) {
            if (!isnum || x < 0) return lfail("localize", "--perm-seed %s: expected a non-negative integer", v);
            P->perm_seed = x;
        } else {
            struct { const char *name; int *dst; long lo, hi; } ints[] = {
                {"--steps", &P->steps, 1, 1000}, {"--width", &P->width, 8, 8192}, {"--height", &P->height, 8, 8192},
                {"--max-sequence-length", &P->max_seq, 1, 512}, {"--start-step", &P->start_step, 0, 1000},
                {"--threads", &P->threads, 1, 1024}, {"--grid-cols", &P->grid_cols, 1, 1000}};
            int hit = 0;
            for (size_t j = 0; j < sizeof ints / sizeof *ints; j++)
                if (!strcmp(k, ints[j].name)) {
                    if (!isnum || x < ints[j].lo || x > ints[j].hi) return lfail("localize", "%s %s: expected an integer from %ld to %ld", k, v, ints[j].lo, ints[j].hi);
                    *ints[j].dst = (int)x;
                    hit = 1;
                }
            if (!hit) { lfail("localize", "unknown option %s", k); return usage_localize(); }
        }
    }
    if (!P->model) return lfail("localize", "--model DIR is required");
    if (!out) return lfail("localize", "-o RESULTS_DIR is required");
    if (!P->words_file == !P->prompts_file) return lfail("localize", "give exactly one of --words FILE and --prompts FILE");
    if (P->words_file && !strstr(P->template, "{}")) return lfail("localize", "--template must contain {} where the word goes");
    P->out = strdup(out);
    return 0;
}

int locus_cmd_localize(int argc, char **argv) {
    plan P;
    int rc = parse_localize(argc, argv, &P);
    if (rc) { free(P.out); return rc; }
    locus_pipeline p;
    row *rows = NULL;
    locus_ocr *ocr = NULL;
    char *cfg = NULL;
    int pipe_open = 0, lockfd = -1;
    rc = 2;
    if (read_items(&P) || derange(&P) || parse_seeds(&P)) goto done;
    if (locus_kernels_init() != LOCUS_OK) { lfail("localize", "%s", locus_errmsg()); goto done; }
    if (P.threads) locus_set_threads(P.threads);
    if (locus_pipeline_open(&p, P.model) != LOCUS_OK) { lfail("localize", "%s", locus_errmsg()); goto done; }
    pipe_open = 1;
    if (P.sampler && locus_scheduler_override(&p.sched, P.sampler)) { lfail("localize", "%s", locus_errmsg()); goto done; }
    P.sampler = locus_scheduler_name(&p.sched);
    if (P.guidance < 0) P.guidance = p.default_guidance;
    if (!P.max_seq) P.max_seq = 256;
    if (p.text_tokens_fixed) P.max_seq = p.text_tokens_fixed;
    locus_run_opts o = {P.steps, P.guidance, P.width, P.height, 0};
    if (locus_run_prepare(&p, &o)) { lfail("localize", "%s", locus_errmsg()); goto done; }
    P.width = o.W;
    P.height = o.H;
    if (resolve_layers(&P, &p)) goto done;
    /* every prompt must encode (no surprise half-way through) */
    for (int i = 0; i < P.nitems; i++) {
        locus_embeds e;
        if (locus_embeds_encode(&p, P.items[i].prompt, NULL, 0, P.max_seq, &e)) {
            lfail("localize", "prompt %d (%s): %s", i, P.items[i].prompt, locus_errmsg());
            goto done;
        }
        locus_embeds_free(&e);
    }
    if (locus_ocr_open(&ocr)) { lfail("localize", "%s", locus_errmsg()); goto done; }
    cfg = config_json(&P, p.model_hash, P.shard, P.nshards);
    char path[4200];
    snprintf(path, sizeof path, "%s/images", P.out);
    if (locus_mkdir(path)) { lfail("localize", "%s", locus_errmsg()); goto done; }
    /* one process per results directory */
    snprintf(path, sizeof path, "%s/.lock", P.out);
    lockfd = open(path, O_RDWR | O_CREAT, 0644);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB)) { lfail("localize", "another localize run is using %s", P.out); goto done; }
    rows = calloc((size_t)ncells(&P), sizeof(row));
    snprintf(path, sizeof path, "%s/config.json", P.out);
    char *old;
    size_t oldn;
    locus_status rs = locus_read_file(path, &old, &oldn);
    if (rs == LOCUS_OK) {
        int same = !strcmp(old, cfg);
        free(old);
        if (!P.resume) { lfail("localize", "%s already holds results; pass --resume to continue them, or choose another -o", P.out); goto done; }
        if (!same) { lfail("localize", "%s was made with different settings (see its config.json); use the same options or another -o", P.out); goto done; }
        snprintf(path, sizeof path, "%s/results.jsonl", P.out);
        int n = load_rows(&P, path, rows, 1);
        if (n < 0) goto done;
        remove_stale_tmp(P.out);
        snprintf(path, sizeof path, "%s/images", P.out);
        remove_stale_tmp(path);
        fprintf(stderr, "localize: resuming %s: %d cell%s already finished\n", P.out, n, n == 1 ? "" : "s");
        if (write_csv(&P, rows)) goto done; /* the CSV follows results.jsonl exactly */
    } else if (rs == LOCUS_E_NOTFOUND) {
        snprintf(path, sizeof path, "%s/results.jsonl", P.out);
        if (access(path, F_OK) == 0) { lfail("localize", "%s has results.jsonl but no config.json; choose another -o", P.out); goto done; }
        sbuf hdr = {0};
        csv_header(&P, &hdr);
        int bad = write_text(P.out, "results.jsonl", "") || write_text(P.out, "results.csv", hdr.s) || write_text(P.out, "config.json", cfg);
        free(hdr.s);
        if (bad) goto done;
    } else {
        lfail("localize", "%s", locus_errmsg());
        goto done;
    }
    /* this shard's groups */
    int K = cells_per_group(&P), total = 0, already = 0;
    for (int g = P.shard; g < ngroups(&P); g += P.nshards)
        for (int k = 0; k < K; k++) { total++; already += rows[g * K + k].done; }
    if (!total) fprintf(stderr, "localize: shard %d/%d has no prompts (only %d prompt x seed groups)\n", P.shard, P.nshards, ngroups(&P));
    fprintf(stderr, "localize: %d prompts x %d seeds x (%d layers + 2 unpatched) = %d cells%s, %d to run, isa %s, %d threads\n", P.nitems, P.nseeds,
            P.nlayers, ncells(&P), P.nshards > 1 ? " in all" : "", total - already, locus_isa_name(), locus_threads());
    log_run(&P, "start", total - already);
    locus_progress prog;
    locus_progress_start(&prog, "localize cells", total - already);
    int done_cells = 0;
    for (int g = P.shard; g < ngroups(&P); g += P.nshards)
        if (run_group(&P, &p, ocr, rows, g, &prog, &done_cells)) goto done;
    locus_progress_end(&prog);
    if (finish_outputs(&P, rows)) goto done;
    log_run(&P, "finish", done_cells);
    fprintf(stderr, "localize: results in %s (results.csv, summary.csv, ocr_f1.png, grid.png, heatmap.png)\n", P.out);
    rc = 0;
done:
    if (rows) for (int c = 0; c < ncells(&P); c++) free(rows[c].ocr);
    free(rows);
    free(cfg);
    if (lockfd >= 0) close(lockfd);
    locus_ocr_close(ocr);
    if (pipe_open) locus_pipeline_close(&p);
    plan_free(&P);
    return rc;
}

/* ------------------------------------------------------------------ merge */

/* Rebuild a plan from a config.json (for merge) */
static int plan_from_config(plan *P, const char *dir, char **text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n;
    if (locus_read_file(path, text, &n)) return lfail("merge", "%s", locus_errmsg());
    locus_json_doc d;
    if (locus_json_parse(&d, *text, n, path)) return lfail("merge", "%s", locus_errmsg());
    const locus_json *o = d.root;
    int ok = 1;
    if (locus_json_int(o, "locus_localize", 0, &ok) != 1) { locus_json_free(&d); return lfail("merge", "%s: not a locus localize config", path); }
    memset(P, 0, sizeof *P);
    const locus_json *items = locus_json_get(o, "items"), *seeds = locus_json_get(o, "seeds"), *layers = locus_json_get(o, "layers");
    if (!items || items->type != JSON_ARRAY || !seeds || seeds->type != JSON_ARRAY || !layers || layers->type != JSON_ARRAY) ok = 0;
    P->width = (int)locus_json_int(o, "width", 0, &ok);
    P->height = (int)locus_json_int(o, "height", 0, &ok);
    const char *shard = locus_json_str(o, "shard", "", &ok);
    if (sscanf(shard, "%d/%d", &P->shard, &P->nshards) != 2) ok = 0;
    if (ok) {
        P->nitems = (int)items->len;
        P->items = calloc(items->len, sizeof(item));
        P->target = calloc(items->len, sizeof(int));
        for (size_t i = 0; i < items->len; i++) {
            P->items[i].word = strdup(locus_json_str(items->kids[i], "word", "", &ok));
            P->items[i].prompt = strdup(locus_json_str(items->kids[i], "prompt", "", &ok));
            P->target[i] = (int)locus_json_int(items->kids[i], "target", -1, &ok);
            if (P->target[i] < 0 || P->target[i] >= (int)items->len) ok = 0;
        }
        P->nseeds = (int)seeds->len;
        P->seeds = calloc(seeds->len, sizeof(long long));
        for (size_t i = 0; i < seeds->len; i++) P->seeds[i] = seeds->kids[i]->i;
        P->nlayers = (int)layers->len;
        P->layers = calloc(layers->len, sizeof(char *));
        for (size_t i = 0; i < layers->len; i++) P->layers[i] = strdup(layers->kids[i]->type == JSON_STRING ? layers->kids[i]->str : "");
        P->grid_cols = (int)locus_json_int(o, "grid_cols", 8, &ok);
    }
    locus_json_free(&d);
    if (!ok || !P->nseeds || P->nitems < 2) return lfail("merge", "%s: malformed localize config", path);
    return 0;
}

int locus_cmd_merge(int argc, char **argv) {
    const char *out = NULL;
    const char *dirs[1024];
    int nd = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) return lfail("merge", "-o needs a directory");
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            lfail("merge", "unknown option %s", argv[i]);
            return usage_localize();
        } else if (nd < 1024) dirs[nd++] = argv[i];
    }
    if (!out || !nd) return usage_localize();
    plan P;
    char *cfg0 = NULL;
    if (plan_from_config(&P, dirs[0], &cfg0)) { free(cfg0); return 2; }
    int N = P.nshards, rc = 2;
    row *rows = calloc((size_t)ncells(&P), sizeof(row));
    int *seen = calloc((size_t)N, sizeof(int));
    char *merged_cfg = NULL;
    /* every shard's config must equal the first one's apart from the shard line */
    const char *key = "\"shard\": \"";
    char *cut0 = strstr(cfg0, key);
    if (!cut0) { lfail("merge", "%s/config.json: no shard entry", dirs[0]); goto done; }
    for (int d = 0; d < nd; d++) {
        char path[4200], *txt;
        size_t n;
        snprintf(path, sizeof path, "%s/config.json", dirs[d]);
        if (locus_read_file(path, &txt, &n)) { lfail("merge", "%s", locus_errmsg()); goto done; }
        char *cut = strstr(txt, key);
        int si, sn;
        if (!cut || (size_t)(cut - txt) != (size_t)(cut0 - cfg0) || memcmp(txt, cfg0, (size_t)(cut - txt)) || sscanf(cut + strlen(key), "%d/%d", &si, &sn) != 2 ||
            sn != N) {
            free(txt);
            lfail("merge", "%s was made with different settings from %s (only the shard may differ)", dirs[d], dirs[0]);
            goto done;
        }
        free(txt);
        if (seen[si]++) { lfail("merge", "shard %d/%d given twice (%s)", si, N, dirs[d]); goto done; }
        snprintf(path, sizeof path, "%s/results.jsonl", dirs[d]);
        row *tmp = calloc((size_t)ncells(&P), sizeof(row));
        int nr = load_rows(&P, path, tmp, 0);
        if (nr < 0) { free(tmp); goto done; }
        int K = cells_per_group(&P);
        for (int c = 0; c < ncells(&P); c++) {
            if (!tmp[c].done) continue;
            if ((c / K) % N != si) { lfail("merge", "%s holds cell %d, which is not in shard %d/%d", dirs[d], c, si, N); free(tmp); goto done; }
            rows[c] = tmp[c];
            /* copy the image */
            char src[4200], dst[4200], *img;
            size_t il;
            snprintf(src, sizeof src, "%s/images/c%06d.png", dirs[d], c);
            snprintf(dst, sizeof dst, "%s/images", out);
            if (locus_mkdir(dst)) { lfail("merge", "%s", locus_errmsg()); free(tmp); goto done; }
            snprintf(dst, sizeof dst, "%s/images/c%06d.png", out, c);
            if (locus_read_file(src, &img, &il) || locus_write_atomic(dst, img, il)) { free(img); lfail("merge", "%s", locus_errmsg()); free(tmp); goto done; }
            free(img);
        }
        free(tmp);
    }
    for (int s = 0; s < N; s++)
        if (!seen[s]) { lfail("merge", "shard %d/%d is missing (give every shard directory)", s, N); goto done; }
    int missing = 0;
    for (int c = 0; c < ncells(&P); c++) missing += !rows[c].done;
    if (missing) { lfail("merge", "%d of %d cells have no result (an unfinished shard? resume it with --resume)", missing, ncells(&P)); goto done; }
    /* the merged config is the unsharded one */
    size_t pre = (size_t)(cut0 - cfg0);
    sbuf b = {0};
    sb_putn(&b, cfg0, pre);
    sb_puts(&b, "\"shard\": \"0/1\"\n}\n");
    merged_cfg = b.s;
    P.out = strdup(out);
    P.nshards = 1;
    P.shard = 0;
    if (locus_mkdir(out)) { lfail("merge", "%s", locus_errmsg()); goto done; }
    sbuf js = {0};
    for (int c = 0; c < ncells(&P); c++) row_json(&P, &rows[c], &js);
    int bad = write_text(out, "config.json", merged_cfg) || write_text(out, "results.jsonl", js.s ? js.s : "");
    free(js.s);
    if (bad || finish_outputs(&P, rows)) goto done;
    log_run(&P, "merge", ncells(&P));
    fprintf(stderr, "merge: %d shards, %d cells -> %s\n", N, ncells(&P), out);
    rc = 0;
done:
    for (int c = 0; rows && c < ncells(&P); c++) free(rows[c].ocr);
    free(rows);
    free(seen);
    free(cfg0);
    free(merged_cfg);
    plan_free(&P);
    return rc;
}
