/* tokenizer_bert.c — BERT WordPiece tokenizer (see tokenizer_bert.h). */
#include "tokenizer_bert.h"

#include "../core/fileio.h"
#include <stdint.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "unicode.h"

typedef struct {
    char **keys;
    int *vals;
    size_t cap;
} vmap;

struct locus_bert_tok {
    vmap vocab;
    int nvocab;
    int lower;
    int cls, sep, pad, unk, mask;
};

static uint64_t h64(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ull; }
    return h;
}

static int vget(const vmap *m, const char *k, size_t n) {
    for (size_t i = h64(k, n) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
        if (strlen(m->keys[i]) == n && !memcmp(m->keys[i], k, n)) return m->vals[i];
    return -1;
}

locus_status locus_bert_tok_load(locus_bert_tok **out, const char *dir) {
    *out = NULL;
    char p[4200];
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    locus_status ost;
    FILE *f = locus_fopen_regular(p, &ost); /* regular files only: a FIFO or device never blocks */
    if (!f) return ost;
    locus_bert_tok *t = calloc(1, sizeof *t);
    t->lower = 1;
    size_t cap = 1024;
    char **lines = malloc(cap * sizeof(char *));
    char buf[1024];
    while (fgets(buf, sizeof buf, f)) {
        size_t n = strlen(buf);
        if (n == sizeof buf - 1 && buf[n - 1] != '\n') {
            int line = t->nvocab + 1;
            fclose(f);
            for (int i = 0; i < t->nvocab; i++) free(lines[i]);
            free(lines);
            free(t);
            return locus_fail(LOCUS_E_FORMAT, "%s: line %d is too long", p, line);
        }
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
        if ((size_t)t->nvocab == cap) lines = realloc(lines, (cap *= 2) * sizeof(char *));
        lines[t->nvocab++] = strdup(buf);
    }
    fclose(f);
    t->vocab.cap = 16;
    while (t->vocab.cap < (size_t)t->nvocab * 2 + 16) t->vocab.cap *= 2;
    t->vocab.keys = calloc(t->vocab.cap, sizeof(char *));
    t->vocab.vals = calloc(t->vocab.cap, sizeof(int));
    for (int id = 0; id < t->nvocab; id++) { /* a repeated token keeps its last line, as transformers' load_vocab */
        size_t n = strlen(lines[id]), i = h64(lines[id], n) & (t->vocab.cap - 1);
        while (t->vocab.keys[i] && strcmp(t->vocab.keys[i], lines[id])) i = (i + 1) & (t->vocab.cap - 1);
        if (t->vocab.keys[i]) { free(lines[id]); t->vocab.vals[i] = id; continue; }
        t->vocab.keys[i] = lines[id];
        t->vocab.vals[i] = id;
    }
    free(lines);
    t->cls = vget(&t->vocab, "[CLS]", 5);
    t->sep = vget(&t->vocab, "[SEP]", 5);
    t->pad = vget(&t->vocab, "[PAD]", 5);
    t->unk = vget(&t->vocab, "[UNK]", 5);
    t->mask = vget(&t->vocab, "[MASK]", 6);
    if (t->cls < 0 || t->sep < 0 || t->pad < 0 || t->unk < 0) {
        locus_bert_tok_free(t);
        return locus_fail(LOCUS_E_FORMAT, "%s: vocab.txt lacks one of [CLS] [SEP] [PAD] [UNK]", dir);
    }
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    locus_json_doc d;
    struct stat csb;
    if (stat(p, &csb) == 0) {
        if (locus_json_parse_file(&d, p)) { locus_bert_tok_free(t); return locus_fail(LOCUS_E_FORMAT, "%s", locus_errmsg()); }
        int ok = 1;
        t->lower = locus_json_bool(d.root, "do_lower_case", 1, &ok);
        locus_json_free(&d);
        if (!ok) { locus_bert_tok_free(t); return locus_fail(LOCUS_E_FORMAT, "%s: do_lower_case is not a boolean", p); }
    }
    *out = t;
    return LOCUS_OK;
}

void locus_bert_tok_free(locus_bert_tok *t) {
    if (!t) return;
    for (size_t i = 0; i < t->vocab.cap; i++) free(t->vocab.keys[i]);
    free(t->vocab.keys);
    free(t->vocab.vals);
    free(t);
}

static int is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
static int is_ws(uint32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || locus_uc_category(c) == UC_Zs; }
static int is_ctrl(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    locus_uc_cat k = locus_uc_category(c);
    return k == UC_Cc || k == UC_Cf || k == UC_Cs || k == UC_Co || k == UC_Cn;
}
static int is_punct(uint32_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) || locus_uc_is_punct(c);
}

/* growable id list */
typedef struct {
    int64_t *v;
    int n, cap;
} ids_t;
static void ids_push(ids_t *x, int64_t id) {
    if (x->n == x->cap) x->v = realloc(x->v, (size_t)(x->cap = x->cap ? 2 * x->cap : 64) * sizeof(int64_t));
    x->v[x->n++] = id;
}

/* WordPiece of one word (code points) */
static void wordpiece(const locus_bert_tok *t, const uint32_t *w, size_t n, ids_t *out) {
    if (n > 100) { ids_push(out, t->unk); return; }
    int mark = out->n;
    size_t start = 0;
    while (start < n) {
        size_t end = n;
        int found = -1;
        while (start < end) {
            locus_ustr piece = {(uint32_t *)w + start, end - start, end - start};
            size_t bl;
            char *u8 = locus_ustr_to_utf8(&piece, &bl);
            char *key = malloc(bl + 3);
            size_t kl = 0;
            if (start > 0) { memcpy(key, "##", 2); kl = 2; }
            memcpy(key + kl, u8, bl);
            kl += bl;
            found = vget(&t->vocab, key, kl);
            free(u8);
            free(key);
            if (found >= 0) break;
            end--;
        }
        if (found < 0) { out->n = mark; ids_push(out, t->unk); return; }
        ids_push(out, found);
        start = end;
    }
}

/* BasicTokenizer + WordPiece of a text span without special tokens */
static void encode_span(const locus_bert_tok *t, const uint32_t *cp, size_t n, ids_t *out) {
    locus_ustr a = {0};
    for (size_t i = 0; i < n; i++) { /* _clean_text + _tokenize_chinese_chars */
        uint32_t c = cp[i];
        if (c == 0 || c == 0xFFFD || is_ctrl(c)) continue;
        if (is_ws(c)) { locus_ustr_push(&a, ' '); continue; }
        if (is_cjk(c)) { locus_ustr_push(&a, ' '); locus_ustr_push(&a, c); locus_ustr_push(&a, ' '); continue; }
        locus_ustr_push(&a, c);
    }
    locus_uc_nfc(&a);
    for (size_t i = 0; i < a.n;) {
        while (i < a.n && locus_uc_is_space(a.cp[i])) i++; /* str.split() */
        size_t j = i;
        while (j < a.n && !locus_uc_is_space(a.cp[j])) j++;
        if (j == i) break;
        locus_ustr w = {0};
        for (size_t k = i; k < j; k++) locus_ustr_push(&w, a.cp[k]);
        if (t->lower) { /* lower() then _run_strip_accents */
            locus_uc_lower(&w);
            locus_uc_nfd(&w);
            size_t m = 0;
            for (size_t k = 0; k < w.n; k++)
                if (locus_uc_category(w.cp[k]) != UC_Mn) w.cp[m++] = w.cp[k];
            w.n = m;
        }
        /* _run_split_on_punc, then WordPiece on each piece */
        for (size_t k = 0; k < w.n;) {
            if (is_punct(w.cp[k])) { wordpiece(t, w.cp + k, 1, out); k++; continue; }
            size_t e = k;
            while (e < w.n && !is_punct(w.cp[e])) e++;
            wordpiece(t, w.cp + k, e - k, out);
            k = e;
        }
        locus_ustr_free(&w);
        i = j;
    }
    locus_ustr_free(&a);
}

static void encode_all(const locus_bert_tok *t, const char *text, ids_t *ids) {
    static const char *special[] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};
    locus_ustr s = {0};
    locus_ustr_from_utf8(&s, text, strlen(text));
    size_t from = 0;
    for (size_t i = 0; i <= s.n; i++) {
        int hit = -1;
        size_t hl = 0;
        for (int k = 0; k < 5 && i < s.n; k++) {
            size_t l = strlen(special[k]), q = 0;
            if (i + l > s.n) continue;
            while (q < l && s.cp[i + q] == (unsigned char)special[k][q]) q++;
            if (q == l) { hit = k; hl = l; break; }
        }
        if (hit < 0 && i < s.n) continue;
        if (i > from) encode_span(t, s.cp + from, i - from, ids); /* (s.cp is NULL for an empty prompt) */
        if (hit >= 0) {
            int id = hit == 0 ? t->unk : hit == 1 ? t->sep : hit == 2 ? t->pad : hit == 3 ? t->cls : t->mask;
            if (id >= 0) ids_push(ids, id);
            i += hl - 1;
            from = i + 1;
        }
    }
    locus_ustr_free(&s);
}

locus_status locus_bert_tok_encode(const locus_bert_tok *t, const char *text, int64_t *out, int max, int *n) {
    ids_t ids = {0};
    encode_all(t, text, &ids);
    if (ids.n + 2 > max) { free(ids.v); return locus_fail(LOCUS_E_ARG, "prompt too long for the token buffer"); }
    out[0] = t->cls;
    for (int i = 0; i < ids.n; i++) out[1 + i] = ids.v[i];
    out[ids.n + 1] = t->sep;
    *n = ids.n + 2;
    free(ids.v);
    return LOCUS_OK;
}

locus_status locus_bert_tok_encode_padded(const locus_bert_tok *t, const char *text, int len, int64_t *out, int *truncated) {
    if (len < 2) return locus_fail(LOCUS_E_ARG, "token length %d too small", len);
    ids_t ids = {0};
    encode_all(t, text, &ids);
    *truncated = ids.n > len - 2;
    int k = ids.n < len - 2 ? ids.n : len - 2;
    out[0] = t->cls;
    for (int i = 0; i < k; i++) out[1 + i] = ids.v[i];
    out[k + 1] = t->sep;
    for (int i = k + 2; i < len; i++) out[i] = t->pad;
    free(ids.v);
    return LOCUS_OK;
}
