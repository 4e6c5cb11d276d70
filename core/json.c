/* json.c — strict recursive-descent JSON parser (see json.h). */
#include "json.h"

#include "fileio.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct poolblk { struct poolblk *next; } poolblk;

typedef struct {
    const char *s, *end, *p;
    const char *what;
    poolblk *pool;
    locus_status st;
    size_t dups;
    const char *dup_key;
} parser;

static void *palloc(parser *ps, size_t n) {
    poolblk *b = malloc(sizeof(poolblk) + n);
    if (!b) return NULL;
    b->next = ps->pool;
    ps->pool = b;
    memset(b + 1, 0, n);
    return b + 1;
}

static int perr(parser *ps, const char *msg) {
    if (ps->st == LOCUS_OK)
        ps->st = locus_fail(LOCUS_E_FORMAT, "%s: invalid JSON at byte %zu: %s", ps->what, (size_t)(ps->p - ps->s), msg);
    return 0;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(parser *ps, unsigned *out) {
    if (ps->end - ps->p < 4) return perr(ps, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0) return perr(ps, "bad hex digit in \\u escape");
        v = v * 16 + (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Parses a string starting at the opening quote; output is at most as long as the input. */
static int parse_string(parser *ps, char **out, size_t *outlen) {
    ps->p++; /* opening quote */
    const char *start = ps->p;
    size_t cap = 0;
    while (ps->p < ps->end && *ps->p != '"') {
        if (*ps->p == '\\') ps->p++;
        ps->p++;
    }
    if (ps->p >= ps->end) return perr(ps, "unterminated string");
    cap = (size_t)(ps->p - start);
    ps->p = start;
    char *o = palloc(ps, cap + 1);
    if (!o) return perr(ps, "out of memory");
    size_t n = 0;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) return perr(ps, "control character in string");
        if (c != '\\') { o[n++] = (char)c; ps->p++; continue; }
        ps->p++;
        char e = *ps->p++;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (!read_hex4(ps, &cp)) return 0;
            if (cp >= 0xd800 && cp < 0xdc00) {
                unsigned lo;
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') return perr(ps, "lone high surrogate");
                ps->p += 2;
                if (!read_hex4(ps, &lo)) return 0;
                if (lo < 0xdc00 || lo >= 0xe000) return perr(ps, "bad low surrogate");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                return perr(ps, "lone low surrogate");
            }
            n += put_utf8(o + n, cp); /* \uXXXX (6 bytes) never expands past 4; pairs (12) past 4 */
            break;
        }
        default: return perr(ps, "bad escape");
        }
    }
    ps->p++; /* closing quote */
    o[n] = 0;
    *out = o;
    *outlen = n;
    return 1;
}

static int parse_number(parser *ps, locus_json *v) {
    const char *q = ps->p;
    if (q < ps->end && *q == '-') q++;
    if (q >= ps->end) return perr(ps, "bad number");
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (q < ps->end && *q >= '0' && *q <= '9') q++;
    else return perr(ps, "bad number");
    int is_int = 1;
    if (q < ps->end && *q == '.') {
        is_int = 0; q++;
        if (q >= ps->end || *q < '0' || *q > '9') return perr(ps, "digit expected after '.'");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        is_int = 0; q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || *q < '0' || *q > '9') return perr(ps, "digit expected in exponent");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    char buf[64];
    size_t n = (size_t)(q - ps->p);
    char *tmp = n < sizeof buf ? buf : palloc(ps, n + 1);
    if (!tmp) return perr(ps, "out of memory");
    memcpy(tmp, ps->p, n);
    tmp[n] = 0;
    v->type = JSON_NUMBER;
    v->num = strtod(tmp, NULL);
    if (is_int) {
        errno = 0;
        long long ll = strtoll(tmp, NULL, 10);
        if (errno == 0) { v->is_int = 1; v->i = ll; }
    }
    ps->p = q;
    return 1;
}

static int parse_value(parser *ps, locus_json *v, int depth);

typedef struct { const char *key; size_t i; } key_pos;

static int cmp_key_pos(const void *a, const void *b) {
    const key_pos *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Duplicate keys: the last value wins, at the first key's position, as Python's json (and so diffusers) reads
 * them.  O(n log n) over the sorted (key, index) pairs, so 50k-entry vocabularies stay fast. */
static int dedupe_keys(parser *ps, locus_json *v) {
    if (v->len < 2) return 1;
    key_pos *kp = malloc(v->len * sizeof *kp);
    if (!kp) return perr(ps, "out of memory");
    for (size_t i = 0; i < v->len; i++) kp[i] = (key_pos){v->kids[i]->key, i};
    qsort(kp, v->len, sizeof *kp, cmp_key_pos);
    size_t dropped = 0;
    for (size_t a = 0, b; a < v->len; a = b) {
        for (b = a + 1; b < v->len && !strcmp(kp[a].key, kp[b].key); b++) {}
        if (b - a < 2) continue;
        v->kids[kp[a].i] = v->kids[kp[b - 1].i]; /* the last value, at the first position */
        if (!ps->dup_key) ps->dup_key = kp[a].key;
        for (size_t k = a + 1; k < b; k++) { v->kids[kp[k].i] = NULL; dropped++; }
        ps->dups += b - a - 1;
    }
    free(kp);
    if (dropped) {
        size_t n = 0;
        for (size_t i = 0; i < v->len; i++)
            if (v->kids[i]) v->kids[n++] = v->kids[i];
        v->len = n;
    }
    return 1;
}

static int parse_container(parser *ps, locus_json *v, int depth, int is_obj) {
    if (depth >= JSON_MAX_DEPTH) return perr(ps, "nesting too deep");
    char close = is_obj ? '}' : ']';
    ps->p++;
    v->type = is_obj ? JSON_OBJECT : JSON_ARRAY;
    size_t cap = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) { ps->p++; return 1; }
    for (;;) {
        skip_ws(ps);
        char *key = NULL;
        if (is_obj) {
            size_t kl;
            if (ps->p >= ps->end || *ps->p != '"') return perr(ps, "object key expected");
            if (!parse_string(ps, &key, &kl)) return 0;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return perr(ps, "':' expected");
            ps->p++;
        }
        locus_json *kid = palloc(ps, sizeof *kid);
        if (!kid) return perr(ps, "out of memory");
        if (!parse_value(ps, kid, depth + 1)) return 0;
        kid->key = key;
        if (v->len == cap) {
            size_t nc = cap ? cap * 2 : 8;
            locus_json **nk = palloc(ps, nc * sizeof *nk);
            if (!nk) return perr(ps, "out of memory");
            if (v->len) memcpy(nk, v->kids, v->len * sizeof *nk);
            v->kids = nk;
            cap = nc;
        }
        v->kids[v->len++] = kid;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == close) { ps->p++; return is_obj ? dedupe_keys(ps, v) : 1; }
        return perr(ps, is_obj ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static int literal(parser *ps, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0) return perr(ps, "unexpected token");
    ps->p += n;
    return 1;
}

static int parse_value(parser *ps, locus_json *v, int depth) {
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, "value expected");
    switch (*ps->p) {
    case '{': return parse_container(ps, v, depth, 1);
    case '[': return parse_container(ps, v, depth, 0);
    case '"': v->type = JSON_STRING; return parse_string(ps, &v->str, &v->len);
    case 't': v->type = JSON_BOOL; v->num = 1; return literal(ps, "true");
    case 'f': v->type = JSON_BOOL; v->num = 0; return literal(ps, "false");
    case 'n': v->type = JSON_NULL; return literal(ps, "null");
    default: return parse_number(ps, v);
    }
}

locus_status locus_json_parse(locus_json_doc *doc, const char *text, size_t len, const char *what) {
    parser ps = {text, text + len, text, what ? what : "json", NULL, LOCUS_OK, 0, NULL};
    memset(doc, 0, sizeof *doc);
    locus_json *root = palloc(&ps, sizeof *root);
    if (!root) return locus_fail(LOCUS_E_NOMEM, "%s: out of memory parsing JSON", ps.what);
    if (parse_value(&ps, root, 0)) {
        skip_ws(&ps);
        if (ps.p != ps.end) perr(&ps, "trailing characters after the JSON value");
    }
    doc->pool = ps.pool;
    if (ps.st != LOCUS_OK) {
        locus_json_free(doc);
        return ps.st;
    }
    doc->root = root;
    doc->duplicates = ps.dups;
    doc->dup_key = ps.dup_key;
    return LOCUS_OK;
}

locus_status locus_json_parse_file(locus_json_doc *doc, const char *path) {
    char *buf;
    size_t n;
    memset(doc, 0, sizeof *doc);
    locus_status st = locus_read_file(path, &buf, &n); /* regular files only: a FIFO or device never blocks */
    if (st) return st;
    st = locus_json_parse(doc, buf, n, path);
    free(buf);
    return st;
}

void locus_json_free(locus_json_doc *doc) {
    poolblk *b = doc->pool;
    while (b) { poolblk *n = b->next; free(b); b = n; }
    doc->pool = NULL;
    doc->root = NULL;
}

const locus_json *locus_json_get(const locus_json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->len; i++)
        if (strcmp(obj->kids[i]->key, key) == 0) return obj->kids[i];
    return NULL;
}

static const locus_json *typed(const locus_json *obj, const char *key, locus_json_type t, int *ok) {
    const locus_json *v = locus_json_get(obj, key);
    if (!v || v->type == JSON_NULL) return NULL;
    if (v->type != t) { if (ok) *ok = 0; return NULL; }
    return v;
}

double locus_json_num(const locus_json *obj, const char *key, double def, int *ok) {
    const locus_json *v = typed(obj, key, JSON_NUMBER, ok);
    return v ? v->num : def;
}

int64_t locus_json_int(const locus_json *obj, const char *key, int64_t def, int *ok) {
    const locus_json *v = typed(obj, key, JSON_NUMBER, ok);
    if (!v) return def;
    if (!v->is_int) {
        if (v->num == floor(v->num) && fabs(v->num) < 9e15) return (int64_t)v->num;
        if (ok) *ok = 0;
        return def;
    }
    return v->i;
}

int locus_json_bool(const locus_json *obj, const char *key, int def, int *ok) {
    const locus_json *v = typed(obj, key, JSON_BOOL, ok);
    return v ? (int)v->num : def;
}

const char *locus_json_str(const locus_json *obj, const char *key, const char *def, int *ok) {
    const locus_json *v = typed(obj, key, JSON_STRING, ok);
    return v ? v->str : def;
}
