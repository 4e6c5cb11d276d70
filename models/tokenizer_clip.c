/* tokenizer_clip.c — CLIP BPE tokenizer for ASCII text (see tokenizer_clip.h). */
#include "tokenizer_clip.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"

/* ---- string -> int hash map (open addressing) ---- */
typedef struct { char **keys; int64_t *vals; size_t cap; } smap;

static uint64_t shash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ull; }
    return h;
}

static int smap_init(smap *m, size_t n) {
    m->cap = 16;
    while (m->cap < 2 * n + 16) m->cap *= 2;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    return m->keys && m->vals;
}

static void smap_put(smap *m, const char *k, size_t kn, int64_t v) {
    size_t i = shash(k, kn) & (m->cap - 1);
    while (m->keys[i]) {
        if (strlen(m->keys[i]) == kn && !memcmp(m->keys[i], k, kn)) return; /* first wins */
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = malloc(kn + 1);
    memcpy(m->keys[i], k, kn);
    m->keys[i][kn] = 0;
    m->vals[i] = v;
}

static int smap_get(const smap *m, const char *k, size_t kn, int64_t *v) {
    size_t i = shash(k, kn) & (m->cap - 1);
    while (m->keys[i]) {
        if (strlen(m->keys[i]) == kn && !memcmp(m->keys[i], k, kn)) { *v = m->vals[i]; return 1; }
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

static void smap_free(smap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
}

struct locus_clip_tok {
    smap vocab, ranks; /* ranks: "first second" -> merge rank */
    int64_t bos, eos, pad;
};

locus_status locus_clip_tok_load(locus_clip_tok **out, const char *dir) {
    *out = NULL;
    char p[4096];
    locus_clip_tok *t = calloc(1, sizeof *t);
    locus_json_doc doc;
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    locus_status st = locus_json_parse_file(&doc, p);
    if (st) { free(t); return st; }
    if (doc.root->type != JSON_OBJECT) { locus_json_free(&doc); free(t); return locus_fail(LOCUS_E_FORMAT, "%s: not a JSON object", p); }
    smap_init(&t->vocab, doc.root->len);
    for (size_t i = 0; i < doc.root->len; i++) {
        const locus_json *v = doc.root->kids[i];
        if (v->type != JSON_NUMBER || !v->is_int) { locus_json_free(&doc); locus_clip_tok_free(t); return locus_fail(LOCUS_E_FORMAT, "%s: id of '%s' is not an integer", p, v->key); }
        smap_put(&t->vocab, v->key, strlen(v->key), v->i);
    }
    locus_json_free(&doc);
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    FILE *f = fopen(p, "r");
    if (!f) { locus_clip_tok_free(t); return locus_fail(LOCUS_E_IO, "%s: cannot open", p); }
    smap_init(&t->ranks, 65536);
    char line[1024];
    int64_t rank = 0;
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (first && !strncmp(line, "#version", 8)) { first = 0; continue; }
        first = 0;
        if (!n) continue;
        if (!strchr(line, ' ')) { fclose(f); locus_clip_tok_free(t); return locus_fail(LOCUS_E_FORMAT, "%s: bad merge line '%s'", p, line); }
        smap_put(&t->ranks, line, n, rank++);
    }
    fclose(f);
    if (!smap_get(&t->vocab, "<|startoftext|>", 15, &t->bos) || !smap_get(&t->vocab, "<|endoftext|>", 13, &t->eos)) {
        locus_clip_tok_free(t);
        return locus_fail(LOCUS_E_FORMAT, "%s/vocab.json: no <|startoftext|> / <|endoftext|>", dir);
    }
    t->pad = t->eos;
    snprintf(p, sizeof p, "%s/special_tokens_map.json", dir);
    if (locus_json_parse_file(&doc, p) == LOCUS_OK) {
        const locus_json *pt = locus_json_get(doc.root, "pad_token");
        const char *ps = pt && pt->type == JSON_STRING ? pt->str : pt && pt->type == JSON_OBJECT ? locus_json_str(pt, "content", NULL, NULL) : NULL;
        if (ps && !smap_get(&t->vocab, ps, strlen(ps), &t->pad)) {
            locus_json_free(&doc);
            locus_clip_tok_free(t);
            return locus_fail(LOCUS_E_FORMAT, "%s: pad_token '%s' is not in the vocabulary", p, ps);
        }
        locus_json_free(&doc);
    }
    *out = t;
    return LOCUS_OK;
}

void locus_clip_tok_free(locus_clip_tok *t) {
    if (!t) return;
    smap_free(&t->vocab);
    smap_free(&t->ranks);
    free(t);
}

int64_t locus_clip_tok_pad_id(const locus_clip_tok *t) { return t->pad; }

/* Legacy HTML entity names that html.unescape decodes without a ';' (HTML5 list).  All but the ASCII four
 * decode to Latin-1 characters, which this tokenizer refuses. */
static const char *legacy_entities[] = {
    "AElig", "AMP", "Aacute", "Acirc", "Agrave", "Aring", "Atilde", "Auml", "COPY", "Ccedil", "ETH", "Eacute", "Ecirc",
    "Egrave", "Euml", "GT", "Iacute", "Icirc", "Igrave", "Iuml", "LT", "Ntilde", "Oacute", "Ocirc", "Ograve", "Oslash",
    "Otilde", "Ouml", "QUOT", "REG", "THORN", "Uacute", "Ucirc", "Ugrave", "Uuml", "Yacute", "aacute", "acirc", "acute",
    "aelig", "agrave", "amp", "aring", "atilde", "auml", "brvbar", "ccedil", "cedil", "cent", "copy", "curren", "deg",
    "divide", "eacute", "ecirc", "egrave", "eth", "euml", "frac12", "frac14", "frac34", "gt", "iacute", "icirc", "iexcl",
    "igrave", "iquest", "iuml", "laquo", "lt", "macr", "micro", "middot", "nbsp", "not", "ntilde", "oacute", "ocirc",
    "ograve", "ordf", "ordm", "oslash", "otilde", "ouml", "para", "plusmn", "pound", "quot", "raquo", "reg", "sect", "shy",
    "sup1", "sup2", "sup3", "szlig", "thorn", "times", "uacute", "ucirc", "ugrave", "uml", "uuml", "yacute", "yen", "yuml"};

static int ascii_entity(const char *name, size_t n) {
    static const struct { const char *n; char c; } e[] = {{"amp", '&'}, {"AMP", '&'}, {"lt", '<'}, {"LT", '<'}, {"gt", '>'},
                                                         {"GT", '>'}, {"quot", '"'}, {"QUOT", '"'}, {"apos", '\''}};
    for (size_t i = 0; i < sizeof e / sizeof *e; i++)
        if (strlen(e[i].n) == n && !memcmp(e[i].n, name, n)) return e[i].c;
    return 0;
}

/* html.unescape for ASCII text; returns -1 if the result would not be ASCII or an entity is unknown. */
static int html_unescape(const char *s, char *o) {
    size_t j = 0;
    for (size_t i = 0; s[i];) {
        if (s[i] != '&') { o[j++] = s[i++]; continue; }
        const char *r = s + i + 1;
        if (r[0] == '#') {
            int hex = r[1] == 'x' || r[1] == 'X';
            const char *d = r + 1 + hex;
            long v = 0;
            size_t k = 0;
            while (hex ? isxdigit((unsigned char)d[k]) : isdigit((unsigned char)d[k])) {
                v = v * (hex ? 16 : 10) + (isdigit((unsigned char)d[k]) ? d[k] - '0' : (tolower((unsigned char)d[k]) - 'a' + 10));
                if (v > 0x10ffff) v = 0x110000;
                k++;
            }
            if (!k) { o[j++] = s[i++]; continue; }
            size_t len = 1 + 1 + hex + k + (d[k] == ';');
            if (v == 0 || v >= 128) return -1;
            if ((v >= 1 && v <= 8) || v == 0x0b || (v >= 0x0e && v <= 0x1f) || v == 0x7f) { i += len; continue; } /* invalid codepoints -> '' */
            o[j++] = (char)v;
            i += len;
            continue;
        }
        size_t k = 0;
        while (k < 32 && r[k] && !strchr("\t\n\f <&#;", r[k])) k++;
        int semi = r[k] == ';';
        if (k == 0) { o[j++] = s[i++]; continue; }
        int c = ascii_entity(r, k);
        if (c && semi) { o[j++] = (char)c; i += 1 + k + 1; continue; }
        if (semi) {
            /* "&name;": a full HTML5 named reference that is not one of the ASCII ones */
            int letters = 1;
            for (size_t q = 0; q < k; q++) letters &= isalnum((unsigned char)r[q]) != 0;
            if (letters) return -1;
        }
        /* longest legacy prefix r[:x], x from k (no ';') or k-1 down to 2 */
        size_t best = 0;
        for (size_t x = semi ? k : k; x >= 2; x--) {
            if (x == k && semi) continue;
            int hit = 0;
            for (size_t q = 0; q < sizeof legacy_entities / sizeof *legacy_entities; q++)
                if (strlen(legacy_entities[q]) == x && !memcmp(legacy_entities[q], r, x)) { hit = 1; break; }
            if (hit) { best = x; break; }
            if (x == 2) break;
        }
        if (!semi && k >= 1) { /* python also tries the whole name first */
            for (size_t q = 0; q < sizeof legacy_entities / sizeof *legacy_entities; q++)
                if (strlen(legacy_entities[q]) == k && !memcmp(legacy_entities[q], r, k)) { best = k; break; }
        }
        if (best) {
            int ac = ascii_entity(r, best);
            if (!ac) return -1;
            o[j++] = (char)ac;
            i += 1 + best;
            continue;
        }
        o[j++] = s[i++];
    }
    o[j] = 0;
    return 0;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || (c >= 0x1c && c <= 0x1f); }

/* BPE of one pre-token (ASCII, non-empty) appended to out; returns count or -1 (unknown symbol). */
static int bpe(const locus_clip_tok *t, const char *tok, size_t n, int64_t *out, int room) {
    /* symbols as (start, len) into a working buffer with '</w>' on the last */
    char buf[1024];
    if (n + 5 > sizeof buf) return -2;
    memcpy(buf, tok, n);
    memcpy(buf + n, "</w>", 5);
    int ns = (int)n, st[512], ln[512];
    if (ns > 500) return -2;
    for (int i = 0; i < ns; i++) { st[i] = i; ln[i] = 1; }
    ln[ns - 1] = 5; /* last char + "</w>" */
    char key[2100];
    while (ns > 1) {
        int64_t best = -1;
        int bi = -1;
        for (int i = 0; i + 1 < ns; i++) {
            size_t kl = 0;
            memcpy(key, buf + st[i], ln[i]); kl += ln[i];
            key[kl++] = ' ';
            memcpy(key + kl, buf + st[i + 1], ln[i + 1]); kl += ln[i + 1];
            int64_t r;
            if (smap_get(&t->ranks, key, kl, &r) && (best < 0 || r < best)) { best = r; bi = i; }
        }
        if (bi < 0) break;
        /* merge every occurrence of the best pair, left to right (symbols are contiguous in buf) */
        const char *a = buf + st[bi];
        int la = ln[bi], lb = ln[bi + 1];
        char A[1024], Bs[1024];
        memcpy(A, a, la); A[la] = 0;
        memcpy(Bs, buf + st[bi + 1], lb); Bs[lb] = 0;
        int w = 0;
        for (int i = 0; i < ns;) {
            if (i + 1 < ns && ln[i] == la && ln[i + 1] == lb && !memcmp(buf + st[i], A, la) && !memcmp(buf + st[i + 1], Bs, lb)) {
                st[w] = st[i]; ln[w] = la + lb; w++; i += 2;
            } else {
                st[w] = st[i]; ln[w] = ln[i]; w++; i++;
            }
        }
        ns = w;
    }
    if (ns > room) return -2;
    for (int i = 0; i < ns; i++)
        if (!smap_get(&t->vocab, buf + st[i], ln[i], &out[i])) return -1;
    return ns;
}

locus_status locus_clip_tok_encode(const locus_clip_tok *t, const char *text, int64_t *out, int max, int *count) {
    size_t L = strlen(text);
    char *a = malloc(L + 1), *b = malloc(L + 1);
    int n = 0;
    locus_status st = LOCUS_OK;
    /* ftfy: refuse non-ASCII; drop terminal escape sequences (ESC [ digits/; letter) and control characters */
    size_t j = 0;
    for (size_t i = 0; i < L; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x80) { st = locus_fail(LOCUS_E_UNSUPPORTED, "prompt has non-ASCII text, which the CLIP tokenizer here does not handle yet"); goto out; }
        if (c == 0x1b && text[i + 1] == '[') {
            size_t k = i + 2;
            while (isdigit((unsigned char)text[k]) || text[k] == ';') k++;
            if (isalpha((unsigned char)text[k])) { i = k; continue; }
        }
        if ((c <= 8) || c == 0x0b || (c >= 0x0e && c <= 0x1f) || c == 0x7f) continue;
        a[j++] = (char)c;
    }
    a[j] = 0;
    if (html_unescape(a, b) || html_unescape(b, a)) {
        st = locus_fail(LOCUS_E_UNSUPPORTED, "prompt has an HTML entity that decodes to non-ASCII text, which the CLIP tokenizer here does not handle yet");
        goto out;
    }
    /* whitespace collapse + strip + lower */
    j = 0;
    for (size_t i = 0; a[i]; i++) {
        if (is_ws(a[i])) { if (j && b[j - 1] != ' ') b[j++] = ' '; continue; }
        b[j++] = (char)tolower((unsigned char)a[i]);
    }
    while (j && b[j - 1] == ' ') j--;
    b[j] = 0;
    if (max < 2) { st = locus_fail(LOCUS_E_ARG, "token buffer too small"); goto out; }
    out[n++] = t->bos;
    static const char *contr[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = 0; b[i];) {
        if (b[i] == ' ') { i++; continue; }
        size_t len = 0;
        int special = 0;
        if (!strncmp(b + i, "<|startoftext|>", 15)) { len = 15; special = 1; }
        else if (!strncmp(b + i, "<|endoftext|>", 13)) { len = 13; special = 2; }
        if (!len && b[i] == '\'')
            for (size_t c = 0; c < sizeof contr / sizeof *contr; c++)
                if (!strncmp(b + i, contr[c], strlen(contr[c]))) { len = strlen(contr[c]); break; }
        if (!len && isalpha((unsigned char)b[i])) while (isalpha((unsigned char)b[i + len])) len++;
        if (!len && isdigit((unsigned char)b[i])) len = 1;
        if (!len) while (b[i + len] && b[i + len] != ' ' && !isalnum((unsigned char)b[i + len])) len++;
        if (special) {
            if (n >= max - 1) { st = locus_fail(LOCUS_E_ARG, "prompt too long for the token buffer"); goto out; }
            out[n++] = special == 1 ? t->bos : t->eos;
        } else {
            int k = bpe(t, b + i, len, out + n, max - 1 - n);
            if (k == -1) { st = locus_fail(LOCUS_E_FORMAT, "tokenizer: a BPE symbol of '%.*s' is not in vocab.json", (int)len, b + i); goto out; }
            if (k < 0) { st = locus_fail(LOCUS_E_ARG, "prompt too long for the token buffer"); goto out; }
            n += k;
        }
        i += len;
    }
    out[n++] = t->eos;
    *count = n;
out:
    free(a);
    free(b);
    return st;
}

locus_status locus_clip_tok_encode_padded(const locus_clip_tok *t, const char *text, int len, int64_t *out, int *truncated) {
    int cap = 4 * (int)strlen(text) + 8, n = 0;
    int64_t *ids = malloc(sizeof(int64_t) * cap);
    locus_status st = locus_clip_tok_encode(t, text, ids, cap, &n);
    if (st) { free(ids); return st; }
    *truncated = n > len;
    if (n > len) { n = len; ids[len - 1] = t->eos; }
    for (int i = 0; i < len; i++) out[i] = i < n ? ids[i] : t->pad;
    free(ids);
    return LOCUS_OK;
}
