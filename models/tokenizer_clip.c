/* tokenizer_clip.c — CLIP BPE tokenizer (see tokenizer_clip.h). */
#include "tokenizer_clip.h"

#include "../core/fileio.h"
#include <stdint.h>
#include <sys/stat.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "token_ids.h"
#include "unicode.h"

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
        if (v->type != JSON_NUMBER || !v->is_int || v->i < 0 || v->i > INT32_MAX) {
            locus_fail(LOCUS_E_FORMAT, "%s: id of '%s' is not a non-negative integer", p, v->key); /* before the JSON is freed */
            locus_json_free(&doc);
            locus_clip_tok_free(t);
            return LOCUS_E_FORMAT;
        }
        smap_put(&t->vocab, v->key, strlen(v->key), v->i);
    }
    locus_json_free(&doc);
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    FILE *f = locus_fopen_regular(p, &st); /* regular files only: merges.txt -> /dev/zero never hangs */
    if (!f) { locus_clip_tok_free(t); return st; }
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
    struct stat sb;
    if (stat(p, &sb) == 0) {
        if ((st = locus_json_parse_file(&doc, p)) != LOCUS_OK) { locus_clip_tok_free(t); return st; }
        const locus_json *pt = locus_json_get(doc.root, "pad_token");
        const char *ps = pt && pt->type == JSON_STRING ? pt->str : pt && pt->type == JSON_OBJECT ? locus_json_str(pt, "content", NULL, NULL) : NULL;
        int bad_type = pt && pt->type != JSON_NULL && !ps;
        if (bad_type || (ps && !smap_get(&t->vocab, ps, strlen(ps), &t->pad))) {
            /* the message is formatted before the JSON (which owns ps) is freed */
            if (bad_type) locus_fail(LOCUS_E_FORMAT, "%s: pad_token should be a string or {\"content\": string}", p);
            else locus_fail(LOCUS_E_FORMAT, "%s: pad_token '%s' is not in the vocabulary", p, ps);
            locus_json_free(&doc);
            locus_clip_tok_free(t);
            return LOCUS_E_FORMAT;
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

/* ---- text cleaning: ftfy.fix_text (the parts that apply to prompts), html.unescape, whitespace, lower ---- */

#include "html_entities.h"

static int cmp_name(const void *k, const void *e) { return strcmp((const char *)k, *(const char *const *)e); }

/* html5 entity by exact name (with or without ';'): number of code points written, or -1 */
static int html5_lookup(const char *name, uint32_t v[3]) {
    const void *hit = bsearch(name, uc_html5, sizeof uc_html5 / sizeof *uc_html5, sizeof *uc_html5, cmp_name);
    if (!hit) return -1;
    const uint32_t *x = ((const __typeof__(uc_html5[0]) *)hit)->v;
    v[0] = x[0];
    v[1] = x[1];
    return x[1] ? 2 : 1;
}

static int is_invalid_codepoint(uint32_t n) {
    return (n >= 0x1 && n <= 0x8) || n == 0xb || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) || (n >= 0xfdd0 && n <= 0xfdef) ||
           (n & 0xfffe) == 0xfffe;
}

/* windows-1252 bytes 0x80..0x9f (html.unescape's _invalid_charrefs and ftfy's sloppy codec; undefined
 * bytes map to the C1 code point itself) */
static const uint16_t cp1252_hi[32] = {0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021, 0x2C6,  0x2030, 0x160,
                                       0x2039, 0x152,  0x8D,   0x17D,  0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
                                       0x2013, 0x2014, 0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};

/* Python's html.unescape on code points */
static void html_unescape(const locus_ustr *in, locus_ustr *out) {
    out->n = 0;
    const uint32_t *s = in->cp;
    size_t n = in->n;
    for (size_t i = 0; i < n;) {
        if (s[i] != '&') { locus_ustr_push(out, s[i++]); continue; }
        size_t j = i + 1;
        if (j < n && s[j] == '#') { /* &#[0-9]+;? | &#[xX][0-9a-fA-F]+;? */
            int hex = j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X');
            size_t d = j + 1 + hex, k = d;
            uint64_t v = 0;
            while (k < n && (hex ? (s[k] < 128 && isxdigit((int)s[k])) : (s[k] >= '0' && s[k] <= '9'))) {
                v = v * (hex ? 16 : 10) + (s[k] <= '9' ? s[k] - '0' : (tolower((int)s[k]) - 'a' + 10));
                if (v > 0x110000) v = 0x110000;
                k++;
            }
            if (k == d) { locus_ustr_push(out, s[i++]); continue; }
            if (k < n && s[k] == ';') k++;
            uint32_t num = (uint32_t)v;
            if (num == 0) locus_ustr_push(out, 0xFFFD);
            else if (num == 0x0d) locus_ustr_push(out, '\r');
            else if (num >= 0x80 && num <= 0x9f) locus_ustr_push(out, cp1252_hi[num - 0x80]);
            else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) locus_ustr_push(out, 0xFFFD);
            else if (!is_invalid_codepoint(num)) locus_ustr_push(out, num);
            i = k;
            continue;
        }
        /* named: [^\t\n\f <&#;]{1,32};? */
        size_t k = j;
        while (k < n && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' && s[k] != '<' && s[k] != '&' &&
               s[k] != '#' && s[k] != ';')
            k++;
        if (k == j) { locus_ustr_push(out, s[i++]); continue; }
        size_t end = k < n && s[k] == ';' ? k + 1 : k;
        /* names are ASCII in the table; a non-ASCII name cannot match */
        char name[40];
        size_t nl = 0;
        int ascii = 1;
        for (size_t q = j; q < end; q++) {
            if (s[q] >= 128) ascii = 0;
            name[nl++] = (char)s[q];
        }
        name[nl] = 0;
        uint32_t v[3];
        int m = ascii ? html5_lookup(name, v) : -1;
        if (m > 0) {
            for (int q = 0; q < m; q++) locus_ustr_push(out, v[q]);
            i = end;
            continue;
        }
        /* longest prefix name[:x], x from len-1 down to 2 */
        size_t x = nl - 1;
        for (; ascii && x >= 2; x--) {
            char c = name[x];
            name[x] = 0;
            m = html5_lookup(name, v);
            name[x] = c;
            if (m > 0) break;
        }
        if (ascii && x >= 2 && m > 0) {
            for (int q = 0; q < m; q++) locus_ustr_push(out, v[q]);
            i = j + x;
            continue;
        }
        locus_ustr_push(out, s[i++]); /* '&' + name stays as is */
    }
}

/* ftfy's unescape_html: "&#?[0-9A-Za-z]{1,24};" replaced when it names an HTML5 entity (or an upper-cased
 * lower-case one), or is a numeric reference html.unescape decodes */
static void ftfy_unescape(const locus_ustr *in, locus_ustr *out) {
    out->n = 0;
    const uint32_t *s = in->cp;
    size_t n = in->n;
    for (size_t i = 0; i < n;) {
        size_t k = i + 1;
        if (s[i] == '&') {
            int num = k < n && s[k] == '#';
            k += num;
            size_t a = k;
            while (k < n && k - a < 24 && s[k] < 128 && isalnum((int)s[k])) k++;
            if (k > a && k < n && s[k] == ';') {
                char name[32];
                size_t nl = 0;
                for (size_t q = i + 1; q <= k; q++) name[nl++] = (char)s[q];
                name[nl] = 0;
                uint32_t v[3];
                int m = -1;
                if (!num) {
                    m = html5_lookup(name, v);
                    if (m < 0) {
                        for (size_t q = 0; q < sizeof uc_ftfy_upper_entities / sizeof *uc_ftfy_upper_entities; q++)
                            if (!strcmp(uc_ftfy_upper_entities[q].name, name)) {
                                m = 0;
                                for (int z = 0; z < 3 && uc_ftfy_upper_entities[q].v[z]; z++) v[m++] = uc_ftfy_upper_entities[q].v[z];
                                break;
                            }
                    }
                } else {
                    locus_ustr one = {0}, dec = {0};
                    for (size_t q = i; q <= k; q++) locus_ustr_push(&one, s[q]);
                    html_unescape(&one, &dec);
                    int semi = 0;
                    for (size_t q = 0; q < dec.n; q++) semi |= dec.cp[q] == ';';
                    if (!semi && dec.n <= 3) { m = (int)dec.n; for (size_t q = 0; q < dec.n; q++) v[q] = dec.cp[q]; }
                    locus_ustr_free(&one);
                    locus_ustr_free(&dec);
                }
                if (m >= 0) {
                    for (int q = 0; q < m; q++) locus_ustr_push(out, v[q]);
                    i = k + 1;
                    continue;
                }
            }
        }
        locus_ustr_push(out, s[i++]);
    }
}

/* code point -> byte of ftfy's sloppy windows-1252 (latin1 != 0: plain Latin-1), or -1 */
static int enc_byte(uint32_t c, int latin1) {
    if (c < 0x80 || (c >= 0xA0 && c <= 0xFF)) return (int)c;
    if (latin1) return c <= 0xFF ? (int)c : -1;
    if (c == 0xFFFD) return 0x1A; /* the sloppy codecs' stand-in for a lost byte */
    for (int b = 0; b < 32; b++)
        if (cp1252_hi[b] == c) return 0x80 + b;
    return -1;
}

/* ftfy's fix_encoding for UTF-8 that was decoded as Latin-1 / windows-1252 ("cafÃ©" -> "café"): applied when
 * the text contains a lead-byte character followed by continuation-byte characters (what such mojibake
 * looks like), the whole text encodes in the single-byte code, and the bytes (with lost bytes replaced as
 * ftfy's replace_lossy_sequences does) decode as UTF-8. */
static void ftfy_fix_encoding(locus_ustr *s) {
    for (int round = 0; round < 4; round++) {
        int ascii = 1;
        for (size_t i = 0; i < s->n; i++) ascii &= s->cp[i] < 0x80;
        if (ascii) return;
        int fixed = 0;
        for (int latin1 = 1; latin1 >= 0 && !fixed; latin1--) {
            unsigned char *b = malloc(s->n + 1);
            int ok = 1, bad = 0;
            for (size_t i = 0; i < s->n && ok; i++) {
                int e = enc_byte(s->cp[i], latin1);
                if (e < 0) ok = 0;
                else b[i] = (unsigned char)e;
            }
            size_t nb = s->n;
            for (size_t i = 0; ok && i < nb; i++) { /* mojibake signature: lead byte + continuation bytes */
                int need = b[i] >= 0xC2 && b[i] <= 0xDF ? 1 : b[i] >= 0xE0 && b[i] <= 0xEF ? 2 : b[i] >= 0xF0 && b[i] <= 0xF4 ? 3 : 0;
                if (!need || i + need >= nb + 1) continue;
                int all = i + need < nb + 1;
                for (int q = 1; q <= need && all; q++) all = i + q < nb && ((b[i + q] >= 0x80 && b[i + q] <= 0xBF) || b[i + q] == 0x1A);
                bad |= all;
            }
            if (ok && bad) {
                /* lossy sequences: a lead byte whose continuation bytes include 0x1A, or a lone 0x1A -> EF BF BD */
                unsigned char *r = malloc(3 * nb + 1);
                size_t k = 0;
                for (size_t i = 0; i < nb;) {
                    int need = b[i] >= 0xC2 && b[i] <= 0xDF ? 1 : b[i] >= 0xE0 && b[i] <= 0xEF ? 2 : b[i] >= 0xF0 && b[i] <= 0xF4 ? 3 : 0;
                    int lossy = 0, fits = need && i + need < nb + 1;
                    for (int q = 1; q <= need && fits; q++) {
                        fits = i + q < nb && ((b[i + q] >= 0x80 && b[i + q] <= 0xBF) || b[i + q] == 0x1A);
                        if (fits && b[i + q] == 0x1A) lossy = 1;
                    }
                    if ((fits && lossy) || b[i] == 0x1A) {
                        memcpy(r + k, "\xEF\xBF\xBD", 3);
                        k += 3;
                        i += b[i] == 0x1A ? 1 : (size_t)need + 1;
                        continue;
                    }
                    r[k++] = b[i++];
                }
                /* strict UTF-8 decode */
                locus_ustr d = {0};
                locus_ustr_from_utf8(&d, (const char *)r, k);
                int strict = 1;
                for (size_t i = 0; i < d.n; i++) strict &= d.cp[i] != 0xFFFD;
                size_t nrep = 0;
                for (size_t i = 0; i + 2 < k; i++) nrep += r[i] == 0xEF && r[i + 1] == 0xBF && r[i + 2] == 0xBD;
                size_t drep = 0;
                for (size_t i = 0; i < d.n; i++) drep += d.cp[i] == 0xFFFD;
                if (drep == nrep) strict = 1; /* the only U+FFFD are the ones put in for lost bytes */
                if (strict && (d.n != s->n || memcmp(d.cp, s->cp, d.n * sizeof *d.cp))) {
                    free(s->cp);
                    *s = d;
                    fixed = 1;
                } else {
                    locus_ustr_free(&d);
                }
                free(r);
            }
            free(b);
        }
        if (!fixed) return;
    }
}

/* ftfy.fix_text for one segment (a line): unescape_html (unless disabled), fix_encoding, fix_c1_controls,
 * fix_latin_ligatures + fix_character_width, uncurl_quotes, fix_line_breaks, remove_terminal_escapes,
 * remove_control_chars, NFC — repeated until nothing changes */
static void ftfy_segment(locus_ustr *s, int unescape) {
    for (int round = 0; round < 8; round++) {
        locus_ustr orig = {0}, t = {0};
        for (size_t i = 0; i < s->n; i++) locus_ustr_push(&orig, s->cp[i]);
        if (unescape) {
            ftfy_unescape(s, &t);
            free(s->cp);
            *s = t;
            t = (locus_ustr){0};
        }
        ftfy_fix_encoding(s);
        for (size_t i = 0; i < s->n; i++) {
            uint32_t c = s->cp[i], r[3];
            if (c >= 0x80 && c <= 0x9F) c = cp1252_hi[c - 0x80]; /* fix_c1_controls */
            int m = locus_uc_ftfy_map(c, r);
            if (m) { for (int q = 0; q < m; q++) locus_ustr_push(&t, r[q]); continue; }
            if (c >= 0x2018 && c <= 0x201B) c = '\'';       /* uncurl_quotes */
            else if (c >= 0x201C && c <= 0x201F) c = '"';
            if (c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n'; /* fix_line_breaks */
            if (c == '\r') { if (i + 1 < s->n && s->cp[i + 1] == '\n') continue; c = '\n'; }
            if (c == 0x1B && i + 1 < s->n && s->cp[i + 1] == '[') { /* remove_terminal_escapes: ESC [ [0-9;]* letter */
                size_t k = i + 2;
                while (k < s->n && ((s->cp[k] >= '0' && s->cp[k] <= '9') || s->cp[k] == ';')) k++;
                if (k < s->n && s->cp[k] < 128 && isalpha((int)s->cp[k])) { i = k; continue; }
            }
            if (c <= 8 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) || c == 0xFEFF ||
                (c >= 0xFFF9 && c <= 0xFFFC))
                continue; /* remove_control_chars */
            locus_ustr_push(&t, c);
        }
        free(s->cp);
        *s = t;
        locus_uc_nfc(s);
        int same = orig.n == s->n && (s->n == 0 || !memcmp(orig.cp, s->cp, s->n * sizeof *s->cp)); /* (NULL buffers when empty) */
        locus_ustr_free(&orig);
        if (same) return;
    }
}

/* ftfy.fix_text: line by line; HTML unescaping stays off from the first segment that contains '<' */
static void ftfy_fix_text(locus_ustr *s) {
    locus_ustr out = {0};
    int unescape = 1;
    for (size_t pos = 0; pos < s->n;) {
        size_t end = pos;
        while (end < s->n && s->cp[end] != '\n') end++;
        if (end < s->n) end++;
        locus_ustr seg = {0};
        for (size_t i = pos; i < end; i++) {
            locus_ustr_push(&seg, s->cp[i]);
            if (s->cp[i] == '<') unescape = 0;
        }
        ftfy_segment(&seg, unescape);
        for (size_t i = 0; i < seg.n; i++) locus_ustr_push(&out, seg.cp[i]);
        locus_ustr_free(&seg);
        pos = end;
    }
    free(s->cp);
    *s = out;
}

/* GPT-2 byte -> printable code point map used by CLIP's BPE vocabulary */
static uint32_t byte_char(unsigned b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    unsigned k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) k++;
    return 256 + k;
}

static size_t put_utf8(char *o, uint32_t c) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | c >> 6); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    o[0] = (char)(0xE0 | c >> 12); o[1] = (char)(0x80 | (c >> 6 & 0x3F)); o[2] = (char)(0x80 | (c & 0x3F));
    return 3;
}

/* BPE of one pre-token (its UTF-8 bytes) appended to out; returns count, -1 (unknown symbol), -2 (no room). */
static int bpe(const locus_clip_tok *t, const char *tok, size_t n, int64_t *out, int room) {
    /* symbols as (start, len) into a buffer of byte-mapped characters, '</w>' glued to the last one */
    if (n == 0 || n > 500) return -2;
    char buf[2 * 512 + 8];
    int st[512], ln[512], ns = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        st[ns] = (int)k;
        k += put_utf8(buf + k, byte_char((unsigned char)tok[i]));
        ln[ns] = (int)k - st[ns];
        ns++;
    }
    memcpy(buf + k, "</w>", 5);
    ln[ns - 1] += 4;
    char key[2 * 1024 + 8];
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
        char A[1100], Bs[1100];
        int la = ln[bi], lb = ln[bi + 1];
        memcpy(A, buf + st[bi], la);
        memcpy(Bs, buf + st[bi + 1], lb);
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

/* CLIP's pre-token classes: 1 letter (\p{L}), 2 number (\p{N}), 3 whitespace, 0 other */
static int cls(uint32_t c) { return locus_uc_is_space(c) ? 3 : locus_uc_is_letter(c) ? 1 : locus_uc_is_number(c) ? 2 : 0; }

static int starts_with(const locus_ustr *s, size_t i, const char *lit) {
    size_t n = strlen(lit);
    if (i + n > s->n) return 0;
    for (size_t k = 0; k < n; k++)
        if (s->cp[i + k] != (unsigned char)lit[k]) return 0;
    return 1;
}

locus_status locus_clip_tok_encode(const locus_clip_tok *t, const char *text, int64_t *out, int max, int *count) {
    locus_ustr a = {0}, b = {0};
    int n = 0;
    locus_status st = LOCUS_OK;
    locus_ustr_from_utf8(&a, text, strlen(text));
    /* basic_clean: ftfy.fix_text, html.unescape twice, strip */
    ftfy_fix_text(&a);
    html_unescape(&a, &b);
    html_unescape(&b, &a);
    /* whitespace_clean: \s+ -> ' ', strip; then lower() */
    b.n = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (locus_uc_is_space(a.cp[i])) { if (b.n && b.cp[b.n - 1] != ' ') locus_ustr_push(&b, ' '); continue; }
        locus_ustr_push(&b, a.cp[i]);
    }
    while (b.n && b.cp[b.n - 1] == ' ') b.n--;
    locus_uc_lower(&b);
    if (max < 2) { st = locus_fail(LOCUS_E_ARG, "token buffer too small"); goto out; }
    out[n++] = t->bos;
    static const char *contr[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = 0; i < b.n;) {
        int c0 = cls(b.cp[i]);
        if (c0 == 3) { i++; continue; }
        size_t len = 0;
        int special = 0;
        if (starts_with(&b, i, "<|startoftext|>")) { len = 15; special = 1; }
        else if (starts_with(&b, i, "<|endoftext|>")) { len = 13; special = 2; }
        if (!len && b.cp[i] == '\'')
            for (size_t c = 0; c < sizeof contr / sizeof *contr; c++)
                if (starts_with(&b, i, contr[c])) { len = strlen(contr[c]); break; }
        if (!len && c0 == 1) while (i + len < b.n && cls(b.cp[i + len]) == 1) len++;
        if (!len && c0 == 2) len = 1;
        if (!len) while (i + len < b.n && cls(b.cp[i + len]) == 0) len++;
        if (special) {
            if (n >= max - 1) { st = locus_fail(LOCUS_E_ARG, "prompt too long for the token buffer"); goto out; }
            out[n++] = special == 1 ? t->bos : t->eos;
        } else {
            locus_ustr piece = {b.cp + i, len, len};
            size_t bl;
            char *u8 = locus_ustr_to_utf8(&piece, &bl);
            int k = bpe(t, u8, bl, out + n, max - 1 - n);
            if (k == -1) st = locus_fail(LOCUS_E_FORMAT, "tokenizer: a BPE symbol of '%s' is not in vocab.json", u8);
            else if (k < 0) st = locus_fail(LOCUS_E_ARG, "prompt too long for the token buffer");
            free(u8);
            if (st) goto out;
            n += k;
        }
        i += len;
    }
    out[n++] = t->eos;
    *count = n;
out:
    locus_ustr_free(&a);
    locus_ustr_free(&b);
    return st;
}

locus_status locus_clip_tok_encode_padded(const locus_clip_tok *t, const char *text, int len, int64_t *out, int *truncated) {
    int cap = 4 * (int)strlen(text) + 8, n = 0;
    int64_t *ids = malloc(sizeof(int64_t) * cap);
    locus_status st = locus_clip_tok_encode(t, text, ids, cap, &n);
    if (st) { free(ids); return st; }
    locus_ids_fit(ids, n, len, t->eos, t->pad, out, truncated);
    free(ids);
    return LOCUS_OK;
}
