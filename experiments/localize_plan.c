/* localize_plan.c — the plan of a localization experiment: the words or prompts (items), each item's target
 * (prompt B) by a seeded derangement, the seeds, and config.json, which records every setting that changes
 * results (written here, read back here for `locus merge`).  Nothing in this file loads a model. */
#include "localize_int.h"

#include "../core/numparse.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/jsonw.h"
#include "../core/rng.h"
#include "../core/utf8.h"
#include "pairing.h"

const char *lz_cmd_name = "localize";

int lz_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "locus %s: ", !strcmp(cmd, "localize") ? lz_cmd_name : cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

void lz_plan_free(lz_plan *P) {
    for (int i = 0; i < P->nitems; i++) {
        free(P->items[i].word); free(P->items[i].prompt); free(P->items[i].word_b); free(P->items[i].prompt_b);
    }
    free(P->items);
    free(P->target);
    free(P->seeds);
    for (int i = 0; i < P->nlayers; i++) free(P->layers[i]);
    free(P->layers);
    free(P->out);
    free(P->clip_dir_owned);
}

/* the template with "{}" replaced by the word (NULL on allocation failure) */
static char *fill_template(const char *tpl, const char *word) {
    const char *at = strstr(tpl, "{}");
    locus_strbuf b = {0};
    locus_sb_putn(&b, tpl, (size_t)(at - tpl));
    locus_sb_puts(&b, word);
    locus_sb_puts(&b, at + 2);
    return locus_sb_take(&b);
}

/* one words or prompts file appended to P->items */
static int read_items_file(lz_plan *P, const char *path, int file, int *cap) {
    char *data;
    size_t len;
    if (locus_read_file(path, &data, &len)) return lz_fail("localize", "%s", locus_errmsg());
    /* a NUL byte would silently end a line early: refuse it, naming the line */
    if (memchr(data, 0, len)) {
        int ln = 1;
        for (const char *c = data; *c; c++) ln += *c == '\n';
        free(data);
        return lz_fail("localize", "%s:%d: NUL byte in the text", path, ln);
    }
    int line = 0;
    char *save = NULL;
    for (char *ln = strtok_r(data, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t l = strlen(ln);
        while (l && (ln[l - 1] == '\r' || ln[l - 1] == ' ' || ln[l - 1] == '\t')) ln[--l] = 0;
        while (*ln == ' ' || *ln == '\t') ln++;
        if (!*ln) continue;
        /* the result files are JSON, which must be well-formed UTF-8 */
        if (!locus_utf8_valid(ln, strlen(ln))) { free(data); return lz_fail("localize", "%s:%d: not valid UTF-8 text", path, line); }
        if (P->nitems == 1000000) { free(data); return lz_fail("localize", "%s: more than 10^6 words or prompts", path); }
        if (P->nitems == *cap) {
            lz_item *ni = realloc(P->items, (size_t)*cap * 2 * sizeof(lz_item));
            if (!ni) { free(data); return lz_fail("localize", "out of memory"); }
            P->items = ni;
            *cap *= 2;
        }
        lz_item *it = &P->items[P->nitems];
        memset(it, 0, sizeof *it);
        it->file = file;
        if (!P->prompts_file) {
            it->word = strdup(ln);
            it->prompt = fill_template(P->template, ln);
            if (!it->prompt) { free(it->word); free(data); return lz_fail("localize", "%s", locus_errmsg()); }
        } else {
            char *q1 = strchr(ln, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
            if (!q2 || q2 == q1 + 1) { free(data); return lz_fail("localize", "%s:%d: a prompt needs its text in double quotes (A sign that says \"WORD\".)", path, line); }
            it->word = strndup(q1 + 1, (size_t)(q2 - q1 - 1));
            it->prompt = strdup(ln);
        }
        P->nitems++;
    }
    free(data);
    return 0;
}

int lz_read_items(lz_plan *P) {
    int cap = 16;
    P->items = malloc((size_t)cap * sizeof(lz_item));
    if (P->prompts_file) {
        if (read_items_file(P, P->prompts_file, 0, &cap)) return 2;
    } else {
        if (!P->nwords_files) P->words_files[P->nwords_files++] = P->words_file;
        for (int f = 0; f < P->nwords_files; f++)
            if (read_items_file(P, P->words_files[f], f, &cap)) return 2;
    }
    const char *path = P->words_file ? P->words_file : P->prompts_file;
    if (P->nitems < 2) return lz_fail("localize", "%s: needs at least two words or prompts (found %d)", path, P->nitems);
    return 0;
}

char *lz_swap_quoted(const char *prompt, const char *word_b) {
    const char *q1 = strchr(prompt, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
    locus_strbuf b = {0};
    if (!q2) { locus_sb_puts(&b, prompt); return locus_sb_take(&b); }
    locus_sb_putn(&b, prompt, (size_t)(q1 + 1 - prompt));
    locus_sb_puts(&b, word_b);
    locus_sb_puts(&b, q2);
    return locus_sb_take(&b);
}

/* --pairs FILE: the items are the file's A words, each with its own B */
static int read_pairs(lz_plan *P) {
    char **a, **b;
    int n;
    if (locus_pairs_read(P->pairs_file, &a, &b, &n)) return lz_fail("localize", "%s", locus_errmsg());
    P->items = calloc((size_t)n, sizeof(lz_item));
    P->target = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        lz_item *it = &P->items[i];
        it->word = a[i];
        it->word_b = b[i];
        a[i] = b[i] = NULL;
        it->prompt = fill_template(P->template, it->word);
        it->prompt_b = fill_template(P->template, it->word_b);
        P->target[i] = -1;
        P->nitems++;
        if (!it->prompt || !it->prompt_b) { locus_pairs_free(a, b, n); return lz_fail("localize", "%s", locus_errmsg()); }
    }
    locus_pairs_free(a, b, n);
    return 0;
}

/* --pairing paper: numpy RandomState(42) pairing within each words file, files in the order given */
static int pair_paper(lz_plan *P) {
    locus_mt19937 g;
    locus_mt19937_seed(&g, 42);
    P->target = malloc((size_t)P->nitems * sizeof(int));
    for (int i0 = 0; i0 < P->nitems;) {
        int i1 = i0;
        while (i1 < P->nitems && P->items[i1].file == P->items[i0].file) i1++;
        if (locus_pairing_paper(&g, i1 - i0, P->target + i0))
            return lz_fail("localize", "%s: the paper's pairing cannot pair every word of this file (the last word is left with itself; the authors' loop would never end)",
                           P->words_files[P->items[i0].file]);
        for (int i = i0; i < i1; i++) P->target[i] += i0;
        i0 = i1;
    }
    return 0;
}

int lz_pair(lz_plan *P) {
    int rc;
    if (P->pairs_file) rc = read_pairs(P);
    else if (P->pairing && !strcmp(P->pairing, "paper")) rc = pair_paper(P);
    else rc = lz_derange(P);
    if (rc || P->pairs_file) return rc;
    if (P->benign_file) return lz_benign_targets(P);
    for (int i = 0; i < P->nitems; i++) {
        lz_item *it = &P->items[i], *t = &P->items[P->target[i]];
        it->word_b = strdup(t->word);
        it->prompt_b = P->prompts_file ? lz_swap_quoted(it->prompt, t->word) : strdup(t->prompt);
        if (!it->word_b || !it->prompt_b) return lz_fail("localize", "out of memory");
    }
    return 0;
}

/* a uniformly random permutation without fixed points (and never a word onto an equal word), by rejection */
int lz_derange(lz_plan *P) {
    int n = P->nitems;
    P->target = malloc((size_t)n * sizeof(int));
    if (!P->target) return lz_fail("localize", "out of memory");
    uint64_t ctr = 0;
    /* rejection sampling succeeds in ~e attempts unless words repeat a lot; the budget bounds the time (no hang) */
    int attempts = n > 1000 ? (int)(100000000 / n) : 100000;
    for (int attempt = 0; attempt < attempts; attempt++) {
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
    return lz_fail("localize", "cannot pair the words with different ones (are they all the same?)");
}

int lz_parse_seeds(lz_plan *P) {
    char *cp = strdup(P->seeds_spec), *save = NULL;
    int cap = 8;
    P->seeds = malloc((size_t)cap * sizeof(long long));
    if (!cp || !P->seeds) { free(cp); return lz_fail("localize", "out of memory for the seeds"); }
    for (char *t = strtok_r(cp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long long a, b;
        const char *dash = strchr(t, '-');
        /* strict: seeds are 0..2^53 (exact in the JSON results), at most 100000 of them */
        int ok = dash ? locus_parse_lln(t, (unsigned long)(dash - t), 0, 1LL << 53, &a) && locus_parse_ll(dash + 1, 0, 1LL << 53, &b) && b >= a
                      : locus_parse_ll(t, 0, 1LL << 53, &a) && (b = a, 1);
        if (!ok || b - a >= 100000 || P->nseeds + (b - a) >= 100000) {
            free(cp);
            return lz_fail("localize", "--seeds %s: expected seeds 0..2^53 and ranges (0,1,5-9), at most 100000 in all", P->seeds_spec);
        }
        for (long long s = a; s <= b; s++) {
            if (P->nseeds == cap) {
                long long *ns = realloc(P->seeds, (size_t)(cap *= 2) * sizeof(long long));
                if (!ns) { free(cp); return lz_fail("localize", "out of memory for the seeds"); }
                P->seeds = ns;
            }
            P->seeds[P->nseeds++] = s;
        }
    }
    free(cp);
    if (!P->nseeds) return lz_fail("localize", "--seeds: no seeds given");
    return 0;
}

/* one object member */
static void kv_int(locus_jsonw *w, const char *k, long long v) { locus_jw_key(w, k); locus_jw_int(w, v); }
static void kv_num(locus_jsonw *w, const char *k, double v) { locus_jw_key(w, k); locus_jw_num(w, v); }
static void kv_str(locus_jsonw *w, const char *k, const char *v) { locus_jw_key(w, k); locus_jw_str(w, v); }

char *lz_config_json(const lz_plan *P, unsigned long long model_hash, int shard, int nshards) {
    char hash[32], sh[32];
    snprintf(hash, sizeof hash, "%016llx", model_hash);
    snprintf(sh, sizeof sh, "%d/%d", shard, nshards);
    locus_strbuf b = {0};
    locus_jsonw w;
    locus_jw_init(&w, &b);
    locus_jw_object(&w, LOCUS_JW_BLOCK);
    kv_int(&w, "locus_localize", 1);
    kv_str(&w, "model", P->model);
    kv_str(&w, "model_hash", hash);
    kv_int(&w, "steps", P->steps);
    kv_num(&w, "guidance", P->guidance);
    kv_str(&w, "sampler", P->sampler);
    kv_int(&w, "width", P->width);
    kv_int(&w, "height", P->height);
    kv_int(&w, "max_sequence_length", P->max_seq);
    if (P->negative) kv_str(&w, "negative_prompt", P->negative);
    else { locus_jw_key(&w, "negative_prompt"); locus_jw_null(&w); }
    kv_int(&w, "grid_cols", P->grid_cols);
    kv_int(&w, "start_step", P->start_step);
    kv_str(&w, "patch_halves", P->both ? "both" : "cond");
    kv_str(&w, "mse", P->mse_mode);
    kv_int(&w, "perm_seed", P->perm_seed);
    /* settings added later are written only when not at their default, so earlier results directories keep
     * byte-identical configs (and --resume / merge keep working on them) */
    if (P->experiment) kv_str(&w, "experiment", P->experiment == LZ_EDIT ? "edit" : "detox");
    if (P->preset) kv_str(&w, "preset", P->preset);
    if (P->quantize_trunc) kv_str(&w, "quantize", "trunc");
    if (P->clip_dir) kv_str(&w, "clip", P->clip_dir);
    if (P->pairs_file) kv_str(&w, "pairing", "pairs");
    else if (P->pairing && strcmp(P->pairing, "derange")) kv_str(&w, "pairing", P->pairing);
    locus_jw_key(&w, "seeds");
    locus_jw_array(&w, LOCUS_JW_INLINE);
    for (int i = 0; i < P->nseeds; i++) locus_jw_int(&w, P->seeds[i]);
    locus_jw_end(&w);
    locus_jw_key(&w, "layers");
    locus_jw_array(&w, LOCUS_JW_BLOCK);
    for (int i = 0; i < P->nlayers; i++) locus_jw_str(&w, P->layers[i]);
    locus_jw_end(&w);
    locus_jw_key(&w, "items");
    locus_jw_array(&w, LOCUS_JW_BLOCK);
    for (int i = 0; i < P->nitems; i++) {
        locus_jw_object(&w, LOCUS_JW_INLINE);
        kv_str(&w, "word", P->items[i].word);
        kv_str(&w, "prompt", P->items[i].prompt);
        kv_int(&w, "target", P->target[i]);
        if (P->pairs_file || P->prompts_file || P->benign_file) { /* B is not simply the target item's word and prompt */
            kv_str(&w, "word_b", P->items[i].word_b);
            kv_str(&w, "prompt_b", P->items[i].prompt_b);
        }
        locus_jw_end(&w);
    }
    locus_jw_end(&w);
    /* the shard comes last: merge compares everything before it */
    kv_str(&w, "shard", sh);
    locus_jw_end(&w);
    locus_sb_puts(&b, "\n");
    return locus_sb_take(&b);
}

int lz_plan_from_config(lz_plan *P, const char *dir, char **text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    memset(P, 0, sizeof *P);
    *text = NULL;
    size_t n;
    if (locus_read_file(path, text, &n)) return lz_fail("merge", "%s", locus_errmsg());
    locus_json_doc d;
    if (locus_json_parse(&d, *text, n, path)) return lz_fail("merge", "%s", locus_errmsg());
    const locus_json *o = d.root;
    int ok = 1;
    if (locus_json_int(o, "locus_localize", 0, &ok) != 1) { locus_json_free(&d); return lz_fail("merge", "%s: not a locus localize config", path); }
    const locus_json *items = locus_json_get(o, "items"), *seeds = locus_json_get(o, "seeds"), *layers = locus_json_get(o, "layers");
    if (!items || items->type != JSON_ARRAY || !seeds || seeds->type != JSON_ARRAY || !layers || layers->type != JSON_ARRAY) ok = 0;
    P->width = (int)locus_json_int(o, "width", 0, &ok);
    P->height = (int)locus_json_int(o, "height", 0, &ok);
    const char *shard = locus_json_str(o, "shard", "", &ok);
    const char *sl = strchr(shard, '/');
    long long si = -1, sn = 0;
    /* strict: shard I/N with 0 <= I < N; sizes bounded so the cell count fits an int */
    if (!sl || !locus_parse_lln(shard, (unsigned long)(sl - shard), 0, 1000000, &si) || !locus_parse_ll(sl + 1, 1, 1000000, &sn) || si >= sn) ok = 0;
    P->shard = (int)si;
    P->nshards = (int)sn;
    if (ok && (items->len < 2 || items->len > 1000000 || seeds->len < 1 || seeds->len > 100000 || layers->len > 100000 ||
               (double)items->len * seeds->len * (layers->len + 2) > 1e8 || P->width < 0 || P->width > 8192 || P->height < 0 || P->height > 8192))
        ok = 0;
    if (ok) {
        P->nitems = (int)items->len;
        P->items = calloc(items->len, sizeof(lz_item));
        P->target = calloc(items->len, sizeof(int));
        P->seeds = calloc(seeds->len, sizeof(long long));
        P->layers = calloc(layers->len ? layers->len : 1, sizeof(char *));
        if (!P->items || !P->target || !P->seeds || !P->layers) { P->nitems = 0; locus_json_free(&d); return lz_fail("merge", "%s: out of memory", path); }
        for (size_t i = 0; ok && i < items->len; i++) {
            P->items[i].word = strdup(locus_json_str(items->kids[i], "word", "", &ok));
            P->items[i].prompt = strdup(locus_json_str(items->kids[i], "prompt", "", &ok));
            P->target[i] = (int)locus_json_int(items->kids[i], "target", -1, &ok);
            if (!P->items[i].word || !P->items[i].prompt || P->target[i] < -1 || P->target[i] >= (int)items->len) ok = 0;
        }
        for (size_t i = 0; ok && i < items->len; i++) {
            const locus_json *wb = locus_json_get(items->kids[i], "word_b"), *pb = locus_json_get(items->kids[i], "prompt_b");
            if (wb && pb && wb->type == JSON_STRING && pb->type == JSON_STRING) {
                P->items[i].word_b = strdup(wb->str);
                P->items[i].prompt_b = strdup(pb->str);
            } else if (P->target[i] >= 0) {
                P->items[i].word_b = strdup(P->items[P->target[i]].word);
                P->items[i].prompt_b = strdup(P->items[P->target[i]].prompt);
            } else ok = 0;
        }
        P->nseeds = (int)seeds->len;
        for (size_t i = 0; i < seeds->len; i++) {
            const locus_json *s = seeds->kids[i];
            if (s->type != JSON_NUMBER || !s->is_int || s->i < 0) ok = 0;
            P->seeds[i] = s->i;
        }
        P->nlayers = (int)layers->len;
        for (size_t i = 0; i < layers->len; i++) {
            if (layers->kids[i]->type != JSON_STRING) ok = 0;
            P->layers[i] = strdup(layers->kids[i]->type == JSON_STRING ? layers->kids[i]->str : "");
            if (!P->layers[i]) ok = 0;
        }
        P->grid_cols = (int)locus_json_int(o, "grid_cols", 8, &ok);
        if (P->grid_cols < 1 || P->grid_cols > 1000) ok = 0;
        const locus_json *ex = locus_json_get(o, "experiment");
        if (ex && ex->type == JSON_STRING) P->experiment = !strcmp(ex->str, "edit") ? LZ_EDIT : !strcmp(ex->str, "detox") ? LZ_DETOX : -1;
        if (P->experiment < 0) ok = 0;
        const locus_json *cl = locus_json_get(o, "clip"); /* --clip: rows carry the CLIP-T columns */
        if (cl && cl->type == JSON_STRING) P->clip_dir = P->clip_dir_owned = strdup(cl->str);
    }
    locus_json_free(&d);
    if (!ok || !P->nseeds || P->nitems < 2) return lz_fail("merge", "%s: malformed localize config", path);
    return 0;
}
