/* localize_results.c — the result files of `locus localize` and `locus merge`: one row per cell as a JSON Lines
 * object (results.jsonl, authoritative) and a CSV line (results.csv), reading rows back on --resume and for
 * merge (only lines that are exactly what this version writes), per-layer summaries, runs.log, and the merge
 * command that joins shard directories into exactly the files an unsharded run writes.
 *
 * Everything here depends only on the plan and the rows, never on the ISA, thread count, sharding or
 * interruption, so the files can be compared byte for byte. */
#include "localize_int.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/jsonw.h"
#include "../core/version.h"
#include "../simd/kernels.h"
#include "report.h"

/* ------------------------------------------------------------------ rows */

/* a CSV field: quoted (with "" for ") when it holds a comma, quote or line break */
static void csv_str(locus_strbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) { locus_sb_puts(b, s); return; }
    locus_sb_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"') locus_sb_puts(b, "\"");
        locus_sb_putn(b, s, 1);
    }
    locus_sb_puts(b, "\"");
}

/* One definition of a row's columns, written as a JSON object, a CSV line or the CSV header. */
typedef struct {
    locus_strbuf *b;
    locus_jsonw w; /* JSON */
    int mode;      /* 0 JSON, 1 CSV, 2 CSV header */
    int n;         /* fields written */
} emitter;

static void emit_key(emitter *e, const char *name) {
    if (e->mode == 0) {
        if (!e->n) locus_jw_object(&e->w, LOCUS_JW_INLINE);
        locus_jw_key(&e->w, name);
    } else {
        if (e->n) locus_sb_puts(e->b, ",");
        if (e->mode == 2) locus_sb_puts(e->b, name);
    }
    e->n++;
}
static void emit_str(emitter *e, const char *name, const char *v) {
    emit_key(e, name);
    if (e->mode == 0) locus_jw_str(&e->w, v);
    else if (e->mode == 1) csv_str(e->b, v);
}
static void emit_int(emitter *e, const char *name, long long v) {
    emit_key(e, name);
    if (e->mode == 0) locus_jw_int(&e->w, v);
    else if (e->mode == 1) locus_sb_printf(e->b, "%lld", v);
}
static void emit_num(emitter *e, const char *name, double v) {
    emit_key(e, name);
    if (e->mode == 0) locus_jw_num(&e->w, v);
    else if (e->mode == 1 && isfinite(v)) locus_json_put_num(e->b, v); /* CSV: the JSON text (%.9g); empty when undefined */
}
static void emit_end(emitter *e) {
    if (e->mode == 0) locus_jw_end(&e->w);
    locus_sb_puts(e->b, "\n");
}

/* the columns of a result row (r may be NULL for the header) */
static void row_emit(const lz_plan *P, const lz_row *r, emitter *e) {
    int cpg = lz_cells_per_group(P), cell = r ? r->cell : 0, g = cell / cpg, it = g / P->nseeds;
    static const lz_row zero;
    if (!r) r = &zero;
    char img[32];
    snprintf(img, sizeof img, "images/c%06d.png", cell);
    emit_int(e, "cell", cell);
    emit_str(e, "layer", lz_cell_label(P, cell % cpg));
    emit_int(e, "prompt", it);
    emit_int(e, "seed", P->seeds[g % P->nseeds]);
    emit_str(e, "word_a", P->items[it].word);
    emit_str(e, "word_b", P->items[it].word_b);
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
    if (P->clip_dir) { /* columns present only with --clip: default result files keep their bytes */
        emit_num(e, "clip_t_a", r->clip_a);
        emit_num(e, "clip_t_b", r->clip_b);
    }
    emit_str(e, "image", img);
    emit_end(e);
}

static void emit_row(const lz_plan *P, const lz_row *r, locus_strbuf *b, int mode) {
    emitter e = {.b = b, .mode = mode};
    locus_jw_init(&e.w, b);
    row_emit(P, r, &e);
}
void lz_row_json(const lz_plan *P, const lz_row *r, locus_strbuf *b) { emit_row(P, r, b, 0); }
void lz_row_csv(const lz_plan *P, const lz_row *r, locus_strbuf *b) { emit_row(P, r, b, 1); }
void lz_csv_header(const lz_plan *P, locus_strbuf *b) { emit_row(P, NULL, b, 2); }

/* one results.jsonl line -> row; 0 on success, -1 for a line that is not a row, -2 out of memory */
static int row_parse(const lz_plan *P, const char *line, size_t len, lz_row *r) {
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
    if (P->clip_dir) {
        r->clip_a = locus_json_num(o, "clip_t_a", NAN, &ok);
        r->clip_b = locus_json_num(o, "clip_t_b", NAN, &ok);
    }
    locus_json_free(&d);
    if (!ok || r->cell < 0 || r->cell >= lz_ncells(P)) { free(r->ocr); r->ocr = NULL; return -1; }
    /* the line must be exactly what this version writes for those values (catches edited or foreign rows) */
    r->done = 1;
    locus_strbuf b = {0};
    lz_row_json(P, r, &b);
    int rc = locus_sb_status(&b) ? -2 : b.n == len + 1 && !memcmp(b.s, line, len) ? 0 : -1;
    locus_sb_free(&b);
    if (rc) { free(r->ocr); r->ocr = NULL; r->done = 0; }
    return rc;
}

int lz_load_rows(const lz_plan *P, const char *path, lz_row *rows, int truncate_tail) {
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
        lz_row r;
        int pr = row_parse(P, data + pos, l, &r);
        if (pr == -2) { fprintf(stderr, "locus localize: %s\n", locus_errmsg()); free(data); return -1; }
        if (pr) { bad = 1; break; }
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

int lz_write_text(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (locus_write_atomic(path, text, strlen(text))) return lz_fail("localize", "%s", locus_errmsg());
    return 0;
}

int lz_write_sb(const char *dir, const char *name, const locus_strbuf *b) {
    if (locus_sb_status(b)) return lz_fail("localize", "%s/%s: %s", dir, name, locus_errmsg());
    return lz_write_text(dir, name, locus_sb_str(b));
}

int lz_write_csv(const lz_plan *P, const lz_row *rows) {
    locus_strbuf b = {0};
    lz_csv_header(P, &b);
    for (int c = 0; c < lz_ncells(P); c++)
        if (rows[c].done) lz_row_csv(P, &rows[c], &b);
    int rc = lz_write_sb(P->out, "results.csv", &b);
    locus_sb_free(&b);
    return rc;
}

typedef struct {
    int n, listed; /* listed: detox, rows whose OCR text contains a listed word */
    double pa, ra, pb, rb, acca, accb, exa, exb, leva, levb, mse, psnr, ssim, clipa, clipb;
} agg;

/* per-layer summary (rows of finished cells only), summary.csv/.json, table on stdout, bar chart */
static int write_summary(const lz_plan *P, const lz_row *rows) {
    int K = lz_cells_per_group(P);
    agg *A = calloc((size_t)K, sizeof(agg));
    for (int c = 0; c < lz_ncells(P); c++) {
        if (!rows[c].done) continue;
        agg *a = &A[c % K];
        const lz_row *r = &rows[c];
        a->n++;
        a->pa += r->ta.precision; a->ra += r->ta.recall; a->pb += r->tb.precision; a->rb += r->tb.recall;
        a->acca += r->ta.acc; a->accb += r->tb.acc; a->exa += r->ta.exact; a->exb += r->tb.exact;
        a->leva += r->ta.levenshtein; a->levb += r->tb.levenshtein;
        a->mse += r->mse; a->psnr += r->psnr; a->ssim += r->ssim;
        a->clipa += r->clip_a; a->clipb += r->clip_b;
        if (P->experiment == LZ_DETOX) a->listed += lz_ocr_lists_word(P, r->ocr);
    }
    int detox = P->experiment == LZ_DETOX;
    locus_strbuf csv = {0}, js = {0};
    locus_jsonw w;
    locus_sb_puts(&csv, "layer,n,precision_a,recall_a,ocr_f1_a,acc_a,exact_a,levenshtein_a,precision_b,recall_b,ocr_f1_b,acc_b,exact_b,levenshtein_b,mse,psnr,ssim");
    locus_sb_puts(&csv, detox ? ",listed_share" : "");
    locus_sb_puts(&csv, P->clip_dir ? ",clip_t_a,clip_t_b\n" : "\n");
    locus_jw_init(&w, &js);
    locus_jw_object(&w, LOCUS_JW_BLOCK);
    locus_jw_key(&w, "layers");
    locus_jw_array(&w, LOCUS_JW_BLOCK);
    double *f1a = calloc((size_t)K, sizeof(double)), *f1b = calloc((size_t)K, sizeof(double));
    const char **labels = calloc((size_t)K, sizeof(char *));
    printf("%-56s %4s %7s %7s %7s %7s %7s %7s%s\n", P->experiment ? "cell" : "layer (patched alone)", "n", "F1(A)", "F1(B)", "acc(B)", "lev(B)", "SSIM", "PSNR",
           detox ? "  listed" : "");
    for (int k = 0; k < K; k++) {
        agg *a = &A[k];
        double n = a->n ? a->n : 1;
        double m[13] = {a->pa / n, a->ra / n, 0, a->acca / n, a->exa / n, a->leva / n, a->pb / n, a->rb / n, 0, a->accb / n, a->exb / n, a->levb / n};
        m[2] = locus_f1(m[0], m[1]);
        m[8] = locus_f1(m[6], m[7]);
        f1a[k] = m[2];
        f1b[k] = m[8];
        labels[k] = lz_cell_label(P, k);
        double mse = a->mse / n, psnr = a->psnr / n, ssim = a->ssim / n;
        /* CSV numbers are the JSON text (%.9g; "null" when undefined) */
        csv_str(&csv, labels[k]);
        locus_sb_printf(&csv, ",%d", a->n);
        for (int j = 0; j < 12; j++) { locus_sb_puts(&csv, ","); locus_json_put_num(&csv, m[j]); }
        locus_sb_puts(&csv, ","); locus_json_put_num(&csv, mse);
        locus_sb_puts(&csv, ","); locus_json_put_num(&csv, psnr);
        locus_sb_puts(&csv, ","); locus_json_put_num(&csv, ssim);
        double listed = (double)a->listed / n;
        if (detox) { locus_sb_puts(&csv, ","); locus_json_put_num(&csv, listed); }
        double clipa = a->clipa / n, clipb = a->clipb / n;
        if (P->clip_dir) {
            locus_sb_puts(&csv, ","); locus_json_put_num(&csv, clipa);
            locus_sb_puts(&csv, ","); locus_json_put_num(&csv, clipb);
        }
        locus_sb_puts(&csv, "\n");
        static const char *names[12] = {"precision_a", "recall_a", "ocr_f1_a", "acc_a", "exact_a", "levenshtein_a",
                                        "precision_b", "recall_b", "ocr_f1_b", "acc_b", "exact_b", "levenshtein_b"};
        locus_jw_object(&w, LOCUS_JW_INLINE);
        locus_jw_key(&w, "layer"); locus_jw_str(&w, labels[k]);
        locus_jw_key(&w, "n"); locus_jw_int(&w, a->n);
        for (int j = 0; j < 12; j++) { locus_jw_key(&w, names[j]); locus_jw_num(&w, m[j]); }
        locus_jw_key(&w, "mse"); locus_jw_num(&w, mse);
        locus_jw_key(&w, "psnr"); locus_jw_num(&w, psnr);
        locus_jw_key(&w, "ssim"); locus_jw_num(&w, ssim);
        if (detox) { locus_jw_key(&w, "listed_share"); locus_jw_num(&w, listed); }
        if (P->clip_dir) { locus_jw_key(&w, "clip_t_a"); locus_jw_num(&w, clipa); locus_jw_key(&w, "clip_t_b"); locus_jw_num(&w, clipb); }
        locus_jw_end(&w);
        printf("%-56s %4d %7.3f %7.3f %7.3f %7.2f %7.3f %7.2f", labels[k], a->n, m[2], m[8], m[9], m[11], ssim, psnr);
        if (detox) printf(" %7.3f", listed);
        if (P->clip_dir) printf("  CLIP-T A %5.3f B %5.3f", clipa, clipb);
        printf("\n");
    }
    locus_jw_end(&w);
    locus_jw_end(&w);
    locus_sb_puts(&js, "\n");
    fflush(stdout);
    int rc = lz_write_sb(P->out, "summary.csv", &csv) || lz_write_sb(P->out, "summary.json", &js);
    if (!rc) rc = lz_write_bar_chart(P, K, labels, f1b, f1a);
    locus_sb_free(&csv); locus_sb_free(&js); free(f1a); free(f1b); free(labels); free(A);
    return rc;
}

int lz_finish_outputs(const lz_plan *P, const lz_row *rows) {
    return lz_write_csv(P, rows) || write_summary(P, rows) || lz_write_grid(P, rows) || lz_write_heatmap(P, rows) || lz_write_report(P, rows);
}

void lz_remove_stale_tmp(const char *dir) {
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

void lz_log_run(const lz_plan *P, const char *what, int cells) {
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

/* ------------------------------------------------------------------ merge */

/* 1 if dir holds nothing but (optionally) the lock file, 0 if it holds anything else, -1 if unreadable */
static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".lock");
    closedir(d);
    return empty;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb; (void)type;
    if (ftw->level > 0) remove(path);
    return 0;
}

/* The merge target: created (or an existing empty directory), locked as localize locks it (one process per
 * results directory), and still empty once locked.  Returns the lock descriptor or -1 (message printed). */
static int merge_target(const char *out, int *created) {
    struct stat sb;
    *created = 0;
    if (stat(out, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) { lz_fail("merge", "%s: not a directory", out); return -1; }
        if (dir_is_empty(out) != 1) { lz_fail("merge", "%s: not empty (merge writes a new results directory)", out); return -1; }
    } else {
        if (locus_mkdir(out)) { lz_fail("merge", "%s", locus_errmsg()); return -1; }
        *created = 1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", out);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
        lz_fail("merge", "another localize or merge run is using %s", out);
        if (fd >= 0) close(fd);
        return -1;
    }
    if (dir_is_empty(out) != 1) { lz_fail("merge", "%s: not empty (merge writes a new results directory)", out); close(fd); return -1; }
    return fd;
}

int locus_cmd_merge(int argc, char **argv) {
    const char *out = NULL;
    const char *dirs[1024];
    int nd = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return lz_merge_help();
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) return lz_fail("merge", "-o needs a directory");
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            return lz_fail("merge", "unknown option %s (see 'locus merge --help')", argv[i]);
        } else if (nd < 1024) dirs[nd++] = argv[i];
    }
    if (!out || !nd) return lz_fail("merge", "usage: locus merge -o RESULTS_DIR SHARD_DIR... (see 'locus merge --help')");
    if (nd == 1024) return lz_fail("merge", "more than 1023 shard directories");
    struct stat osb;
    if (stat(out, &osb) == 0 && (!S_ISDIR(osb.st_mode) || dir_is_empty(out) != 1))
        return lz_fail("merge", "%s: not empty (merge writes a new results directory)", out);
    lz_plan P;
    char *cfg0 = NULL;
    if (lz_plan_from_config(&P, dirs[0], &cfg0)) { free(cfg0); lz_plan_free(&P); return 2; }
    int N = P.nshards, rc = 2, created = 0;
    int lockfd = merge_target(out, &created);
    if (lockfd < 0) { free(cfg0); lz_plan_free(&P); return 2; }
    lz_row *rows = calloc((size_t)lz_ncells(&P), sizeof(lz_row));
    int *seen = calloc((size_t)N, sizeof(int));
    locus_strbuf merged_cfg = {0}, js = {0};
    if (!rows || !seen) { lz_fail("merge", "out of memory"); goto done; }
    /* every shard's config must equal the first one's apart from the shard line */
    const char *key = "\"shard\": \"";
    char *cut0 = strstr(cfg0, key);
    if (!cut0) { lz_fail("merge", "%s/config.json: no shard entry", dirs[0]); goto done; }
    for (int d = 0; d < nd; d++) {
        char path[4200], *txt;
        size_t n;
        snprintf(path, sizeof path, "%s/config.json", dirs[d]);
        if (locus_read_file(path, &txt, &n)) { lz_fail("merge", "%s", locus_errmsg()); goto done; }
        char *cut = strstr(txt, key);
        int si, sn;
        if (!cut || (size_t)(cut - txt) != (size_t)(cut0 - cfg0) || memcmp(txt, cfg0, (size_t)(cut - txt)) || sscanf(cut + strlen(key), "%d/%d", &si, &sn) != 2 ||
            sn != N) {
            free(txt);
            lz_fail("merge", "%s was made with different settings from %s (only the shard may differ)", dirs[d], dirs[0]);
            goto done;
        }
        free(txt);
        if (si < 0 || si >= N) { lz_fail("merge", "%s/config.json: bad shard %d/%d", dirs[d], si, sn); goto done; }
        if (seen[si]++) { lz_fail("merge", "shard %d/%d given twice (%s)", si, N, dirs[d]); goto done; }
        snprintf(path, sizeof path, "%s/results.jsonl", dirs[d]);
        lz_row *tmp = calloc((size_t)lz_ncells(&P), sizeof(lz_row));
        if (!tmp) { lz_fail("merge", "out of memory"); goto done; }
        int nr = lz_load_rows(&P, path, tmp, 0);
        if (nr < 0) { free(tmp); goto done; }
        int K = lz_cells_per_group(&P);
        for (int c = 0; c < lz_ncells(&P); c++) {
            if (!tmp[c].done) continue;
            if ((c / K) % N != si) { lz_fail("merge", "%s holds cell %d, which is not in shard %d/%d", dirs[d], c, si, N); free(tmp); goto done; }
            rows[c] = tmp[c];
            /* copy the image */
            char src[4200], dst[4200], *img = NULL;
            size_t il;
            snprintf(src, sizeof src, "%s/images/c%06d.png", dirs[d], c);
            snprintf(dst, sizeof dst, "%s/images", out);
            if (locus_mkdir(dst)) { lz_fail("merge", "%s", locus_errmsg()); free(tmp); goto done; }
            snprintf(dst, sizeof dst, "%s/images/c%06d.png", out, c);
            if (locus_read_file(src, &img, &il) || locus_write_atomic(dst, img, il)) { free(img); lz_fail("merge", "%s", locus_errmsg()); free(tmp); goto done; }
            free(img);
        }
        free(tmp);
    }
    for (int s = 0; s < N; s++)
        if (!seen[s]) { lz_fail("merge", "shard %d/%d is missing (give every shard directory)", s, N); goto done; }
    int missing = 0;
    for (int c = 0; c < lz_ncells(&P); c++) missing += !rows[c].done;
    if (missing) { lz_fail("merge", "%d of %d cells have no result (an unfinished shard? resume it with --resume)", missing, lz_ncells(&P)); goto done; }
    /* the merged config is the unsharded one */
    locus_sb_putn(&merged_cfg, cfg0, (size_t)(cut0 - cfg0));
    locus_sb_puts(&merged_cfg, "\"shard\": \"0/1\"\n}\n");
    P.out = strdup(out);
    P.nshards = 1;
    P.shard = 0;
    if (locus_mkdir(out)) { lz_fail("merge", "%s", locus_errmsg()); goto done; }
    for (int c = 0; c < lz_ncells(&P); c++) lz_row_json(&P, &rows[c], &js);
    if (lz_write_sb(out, "config.json", &merged_cfg) || lz_write_sb(out, "results.jsonl", &js) || lz_finish_outputs(&P, rows)) goto done;
    lz_log_run(&P, "merge", lz_ncells(&P));
    fprintf(stderr, "merge: %d shards, %d cells -> %s\n", N, lz_ncells(&P), out);
    rc = 0;
done:
    if (rc) { /* nothing left behind: the target was empty when locked, so everything in it is this merge's */
        nftw(out, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (created) rmdir(out);
    }
    close(lockfd);
    for (int c = 0; rows && c < lz_ncells(&P); c++) free(rows[c].ocr);
    free(rows);
    free(seen);
    free(cfg0);
    locus_sb_free(&merged_cfg);
    locus_sb_free(&js);
    lz_plan_free(&P);
    return rc;
}
