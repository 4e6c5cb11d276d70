/* tokenizer_sp.c — SentencePiece unigram encoding from spiece.model (see tokenizer_sp.h). */
#include "tokenizer_sp.h"

#include "../core/fileio.h"

#include "token_ids.h"
#include "../core/utf8.h"

#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *s; size_t n; float score; int type; } sp_piece;

struct locus_sp_tok {
    sp_piece *pieces;
    int npieces;
    int *table; /* open-addressing hash of piece index */
    size_t cap;
    int unk, eos, pad, maxlen;
    float min_score;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    /* normalizer: precompiled character map = darts-clone double-array trie + NUL-terminated replacements */
    uint32_t *trie;
    size_t trie_units;
    char *norm;
    size_t norm_len;
};

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ull; }
    return h;
}

static int lookup(const locus_sp_tok *t, const char *s, size_t n) {
    size_t i = fnv(s, n) & (t->cap - 1);
    while (t->table[i] >= 0) {
        const sp_piece *p = &t->pieces[t->table[i]];
        if (p->n == n && !memcmp(p->s, s, n)) return t->table[i];
        i = (i + 1) & (t->cap - 1);
    }
    return -1;
}

/* protobuf reading */
typedef struct { const unsigned char *p, *end; int bad; } pb;
static uint64_t pb_varint(pb *b) {
    uint64_t v = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (b->p >= b->end) { b->bad = 1; return 0; }
        unsigned char c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) return v;
    }
    b->bad = 1;
    return 0;
}
static void pb_skip(pb *b, int wt) {
    if (wt == 0) pb_varint(b);
    else if (wt == 1) b->p += 8;
    else if (wt == 5) b->p += 4;
    else if (wt == 2) { uint64_t n = pb_varint(b); if (n > (uint64_t)(b->end - b->p)) b->bad = 1; else b->p += n; }
    else b->bad = 1;
    if (b->p > b->end) b->bad = 1;
}

locus_status locus_sp_tok_load(locus_sp_tok **out, const char *path) {
    *out = NULL;
    locus_status ost;
    FILE *f = locus_fopen_regular(path, &ost); /* regular files only */
    if (!f) return ost;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(sz > 0 ? (size_t)sz : 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) { fclose(f); free(buf); return locus_fail(LOCUS_E_IO, "%s: read error", path); }
    fclose(f);
    locus_sp_tok *t = calloc(1, sizeof *t);
    t->unk = 0; t->eos = -1; t->pad = -1;
    t->add_dummy_prefix = 1; t->remove_extra_ws = 1; t->escape_ws = 1;
    int cap = 0, model_type = 1;
    pb b = {buf, buf + sz, 0};
    while (b.p < b.end && !b.bad) {
        uint64_t key = pb_varint(&b);
        int field = (int)(key >> 3), wt = (int)(key & 7);
        if (wt != 2) { pb_skip(&b, wt); continue; }
        uint64_t n = pb_varint(&b);
        if (n > (uint64_t)(b.end - b.p)) { b.bad = 1; break; }
        pb m = {b.p, b.p + n, 0};
        b.p += n;
        if (field == 1) { /* SentencePiece */
            sp_piece pc = {NULL, 0, 0.0f, 1};
            while (m.p < m.end && !m.bad) {
                uint64_t k2 = pb_varint(&m);
                int f2 = (int)(k2 >> 3), w2 = (int)(k2 & 7);
                if (f2 == 1 && w2 == 2) {
                    uint64_t l = pb_varint(&m);
                    if (l > (uint64_t)(m.end - m.p)) { m.bad = 1; break; }
                    free(pc.s); /* a repeated field: the last wins, as protobuf */
                    pc.s = malloc(l + 1);
                    if (!pc.s) { m.bad = 1; break; }
                    memcpy(pc.s, m.p, l); pc.s[l] = 0; pc.n = l; m.p += l;
                } else if (f2 == 2 && w2 == 5) {
                    if (m.end - m.p < 4) { m.bad = 1; break; }
                    memcpy(&pc.score, m.p, 4); m.p += 4;
                } else if (f2 == 3 && w2 == 0) pc.type = (int)pb_varint(&m);
                else pb_skip(&m, w2);
            }
            if (m.bad || !pc.s) { free(pc.s); b.bad = 1; break; }
            if (t->npieces == cap) {
                int nc = cap ? cap * 2 : 1024;
                sp_piece *np = realloc(t->pieces, (size_t)nc * sizeof *t->pieces);
                if (!np) { free(pc.s); b.bad = 1; break; }
                t->pieces = np;
                cap = nc;
            }
            t->pieces[t->npieces++] = pc;
        } else if (field == 2) { /* TrainerSpec */
            while (m.p < m.end && !m.bad) {
                uint64_t k2 = pb_varint(&m);
                int f2 = (int)(k2 >> 3), w2 = (int)(k2 & 7);
                if (w2 != 0) { pb_skip(&m, w2); continue; }
                int64_t v = (int64_t)pb_varint(&m);
                if (f2 == 3) model_type = (int)v;
                else if (f2 == 40) t->unk = (int)v;
                else if (f2 == 42) t->eos = (int)v;
                else if (f2 == 43) t->pad = (int)v;
            }
        } else if (field == 3) { /* NormalizerSpec */
            while (m.p < m.end && !m.bad) {
                uint64_t k2 = pb_varint(&m);
                int f2 = (int)(k2 >> 3), w2 = (int)(k2 & 7);
                if (f2 == 2 && w2 == 2) { /* precompiled_charsmap: <u32 trie bytes><trie><normalized strings> */
                    uint64_t l = pb_varint(&m);
                    if (l > (uint64_t)(m.end - m.p) || (l && l < 4)) { m.bad = 1; break; }
                    if (l) {
                        uint32_t tb = (uint32_t)m.p[0] | (uint32_t)m.p[1] << 8 | (uint32_t)m.p[2] << 16 | (uint32_t)m.p[3] << 24;
                        if (tb % 4 || tb > l - 4 || tb == 0) { m.bad = 1; break; }
                        free(t->trie); /* a repeated field: the last wins */
                        free(t->norm);
                        t->norm = NULL;
                        t->trie_units = tb / 4;
                        t->trie = malloc(tb);
                        if (!t->trie) { t->trie_units = 0; m.bad = 1; break; }
                        for (size_t u = 0; u < t->trie_units; u++) {
                            const unsigned char *q = m.p + 4 + 4 * u;
                            t->trie[u] = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
                        }
                        t->norm_len = l - 4 - tb;
                        t->norm = malloc(t->norm_len + 1);
                        if (!t->norm) { t->norm_len = 0; m.bad = 1; break; }
                        memcpy(t->norm, m.p + 4 + tb, t->norm_len);
                        t->norm[t->norm_len] = 0;
                    }
                    m.p += l;
                    continue;
                }
                if (w2 != 0) { pb_skip(&m, w2); continue; }
                uint64_t v = pb_varint(&m);
                if (f2 == 3) t->add_dummy_prefix = (int)v;
                else if (f2 == 4) t->remove_extra_ws = (int)v;
                else if (f2 == 5) t->escape_ws = (int)v;
            }
            if (m.bad) b.bad = 1; /* a malformed normalizer is a malformed model, not a silent default */
        }
    }
    free(buf);
    if (b.bad || t->npieces == 0) { locus_sp_tok_free(t); return locus_fail(LOCUS_E_FORMAT, "%s: not a SentencePiece model", path); }
    if (model_type != 1) { locus_sp_tok_free(t); return locus_fail(LOCUS_E_UNSUPPORTED, "%s: SentencePiece model type %d is not unigram", path, model_type); }
    /* T5's spiece.model leaves eos/pad at their defaults (eos 2? no: T5 sets them explicitly); fall back by name */
    for (int i = 0; i < t->npieces; i++) {
        if (t->eos < 0 && !strcmp(t->pieces[i].s, "</s>")) t->eos = i;
        if (t->pad < 0 && !strcmp(t->pieces[i].s, "<pad>")) t->pad = i;
    }
    if (t->eos < 0) t->eos = 2;
    if (t->pad < 0) t->pad = 0;
    if (t->unk < 0 || t->unk >= t->npieces || t->eos >= t->npieces || t->pad >= t->npieces) {
        locus_status e = locus_fail(LOCUS_E_FORMAT, "%s: unk/eos/pad ids outside the %d pieces", path, t->npieces); /* before the free */
        locus_sp_tok_free(t);
        return e;
    }
    t->cap = 16;
    while (t->cap < (size_t)t->npieces * 2 + 16) t->cap *= 2;
    t->table = malloc(t->cap * sizeof(int));
    if (!t->table) { locus_sp_tok_free(t); return locus_fail(LOCUS_E_NOMEM, "%s: out of memory", path); }
    for (size_t i = 0; i < t->cap; i++) t->table[i] = -1;
    t->min_score = FLT_MAX;
    for (int i = 0; i < t->npieces; i++) {
        const sp_piece *p = &t->pieces[i];
        if (p->type != 1 && p->type != 4) continue; /* NORMAL, USER_DEFINED are matchable */
        if (p->type == 1 && p->score < t->min_score) t->min_score = p->score;
        if ((int)p->n > t->maxlen) t->maxlen = (int)p->n;
        size_t h = fnv(p->s, p->n) & (t->cap - 1);
        while (t->table[h] >= 0) h = (h + 1) & (t->cap - 1);
        t->table[h] = i;
    }
    *out = t;
    return LOCUS_OK;
}

void locus_sp_tok_free(locus_sp_tok *t) {
    if (!t) return;
    for (int i = 0; i < t->npieces; i++) free(t->pieces[i].s);
    free(t->pieces);
    free(t->table);
    free(t->trie);
    free(t->norm);
    free(t);
}

static int utf8_len(unsigned char c) { return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4; }

/* Longest rule of the precompiled map matching a prefix of s (darts-clone commonPrefixSearch): returns the
 * matched length (0: none) and the replacement's offset in t->norm. */
static size_t charsmap_match(const locus_sp_tok *t, const unsigned char *s, size_t n, size_t *value) {
    if (!t->trie) return 0;
#define UNIT_OFFSET(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))
#define UNIT_LABEL(u) ((u) & ((1u << 31) | 0xFFu))
#define UNIT_LEAF(u) (((u) >> 8) & 1u)
#define UNIT_VALUE(u) ((u) & ((1u << 31) - 1))
    size_t best = 0;
    uint32_t id = 0, unit = t->trie[0];
    id ^= UNIT_OFFSET(unit);
    for (size_t i = 0; i < n; i++) {
        id ^= s[i];
        if (id >= t->trie_units) break;
        unit = t->trie[id];
        if (UNIT_LABEL(unit) != s[i]) break;
        id ^= UNIT_OFFSET(unit);
        if (id >= t->trie_units) break;
        if (UNIT_LEAF(unit)) {
            size_t v = UNIT_VALUE(t->trie[id]);
            if (v < t->norm_len) { best = i + 1; *value = v; }
        }
    }
    return best;
}

/* One normalization step at the front of the input (SentencePiece's Normalizer::NormalizePrefix): the longest
 * charsmap rule, else one valid UTF-8 character as is, else U+FFFD for one malformed byte. */
static size_t norm_prefix(const locus_sp_tok *t, const unsigned char *s, size_t n, const char **out, size_t *outn) {
    size_t v = 0, m = charsmap_match(t, s, n, &v);
    if (m) {
        *out = t->norm + v;
        *outn = strlen(t->norm + v);
        return m;
    }
    size_t l = locus_utf8_next((const char *)s, n, NULL); /* as SentencePiece's IsValidDecodeUTF8 */
    if (!l) {
        *out = "\xef\xbf\xbd";
        *outn = 3;
        return 1;
    }
    *out = (const char *)s;
    *outn = l;
    return l;
}

/* SentencePiece's Normalizer::Normalize: charsmap (NFKC for T5), leading/trailing/repeated whitespace removed,
 * a dummy-prefix space, spaces escaped as U+2581.  Returns a malloc'd string and its length. */
static char *sp_normalize(const locus_sp_tok *t, const char *text, size_t *outlen) {
    const unsigned char *in = (const unsigned char *)text;
    size_t L = strlen(text), cap = 3 * L + 16, n = 0;
    char *s = malloc(cap);
    const char *sp;
    size_t spn, used;
    if (t->remove_extra_ws)
        while (L && (used = norm_prefix(t, in, L, &sp, &spn)) && spn == 1 && sp[0] == ' ') { in += used; L -= used; }
    if (!L) { *outlen = 0; s[0] = 0; return s; }
#define PUT(p, k)                                                              \
    do {                                                                       \
        if (n + (k) + 1 > cap) { cap = 2 * (n + (k)) + 16; s = realloc(s, cap); } \
        memcpy(s + n, (p), (k));                                               \
        n += (k);                                                              \
    } while (0)
    if (t->add_dummy_prefix) {
        if (t->escape_ws) PUT("\xe2\x96\x81", 3); else PUT(" ", 1);
    }
    int prev_space = t->remove_extra_ws;
    while (L) {
        used = norm_prefix(t, in, L, &sp, &spn);
        if (prev_space)
            while (spn && sp[0] == ' ') { sp++; spn--; }
        if (spn) {
            for (size_t k = 0; k < spn; k++) {
                if (t->escape_ws && sp[k] == ' ') PUT("\xe2\x96\x81", 3);
                else PUT(sp + k, 1);
            }
            prev_space = sp[spn - 1] == ' ';
        }
        in += used;
        L -= used;
        if (!t->remove_extra_ws) prev_space = 0;
    }
    if (t->remove_extra_ws) {
        const char *ws = t->escape_ws ? "\xe2\x96\x81" : " ";
        size_t wl = strlen(ws);
        while (n >= wl && !memcmp(s + n - wl, ws, wl)) n -= wl;
    }
#undef PUT
    s[n] = 0;
    *outlen = n;
    return s;
}

locus_status locus_sp_tok_encode(const locus_sp_tok *t, const char *text, int64_t *out, int max, int *count) {
    size_t n;
    char *s = sp_normalize(t, text, &n);
    if (n == 0) { free(s); if (max < 1) return locus_fail(LOCUS_E_ARG, "token buffer too small"); out[0] = t->eos; *count = 1; return LOCUS_OK; }
    /* Viterbi over byte positions at character boundaries */
    float *best = malloc((n + 1) * sizeof(float));
    int *from = malloc((n + 1) * sizeof(int)), *pid = malloc((n + 1) * sizeof(int));
    for (size_t k = 0; k <= n; k++) { best[k] = -FLT_MAX; from[k] = -1; pid[k] = -1; }
    best[0] = 0;
    const float unk_score = t->min_score - 10.0f;
    for (size_t b = 0; b < n; b = b + utf8_len((unsigned char)s[b])) {
        if (best[b] == -FLT_MAX) continue;
        int single = 0, clen = utf8_len((unsigned char)s[b]);
        for (size_t e = b + 1; e <= n && (int)(e - b) <= t->maxlen; e++) {
            if (e < n && (((unsigned char)s[e]) & 0xc0) == 0x80) continue; /* not a character boundary */
            int id = lookup(t, s + b, e - b);
            if (id < 0) continue;
            if ((int)(e - b) == clen) single = 1;
            float sc = best[b] + (t->pieces[id].type == 4 ? 0.0f : t->pieces[id].score);
            if (sc > best[e]) { best[e] = sc; from[e] = (int)b; pid[e] = id; }
        }
        if (!single) {
            size_t e = b + clen;
            float sc = best[b] + unk_score;
            if (sc > best[e]) { best[e] = sc; from[e] = (int)b; pid[e] = t->unk; }
        }
    }
    /* best path, with runs of unknown characters merged into one <unk> (as SentencePiece does) */
    int cnt = 0;
    for (int e = (int)n; e > 0; e = from[e]) cnt++;
    int *path = malloc(((size_t)cnt + 1) * sizeof(int)), k = cnt;
    for (int e = (int)n; e > 0; e = from[e]) path[--k] = pid[e];
    int m = 0;
    for (int j = 0; j < cnt; j++)
        if (!(path[j] == t->unk && m > 0 && path[m - 1] == t->unk)) path[m++] = path[j];
    locus_status st = LOCUS_OK;
    if (m + 1 > max) st = locus_fail(LOCUS_E_ARG, "prompt too long for the token buffer");
    else {
        for (int j = 0; j < m; j++) out[j] = path[j];
        out[m] = t->eos;
        *count = m + 1;
    }
    free(path);
    free(s); free(best); free(from); free(pid);
    return st;
}

locus_status locus_sp_tok_encode_padded(const locus_sp_tok *t, const char *text, int len, int64_t *out, int *truncated) {
    int cap = (int)strlen(text) + 8, n = 0;
    int64_t *ids = malloc(sizeof(int64_t) * cap);
    locus_status st = locus_sp_tok_encode(t, text, ids, cap, &n);
    if (st) { free(ids); return st; }
    locus_ids_fit(ids, n, len, t->eos, t->pad, out, truncated);
    free(ids);
    return LOCUS_OK;
}
