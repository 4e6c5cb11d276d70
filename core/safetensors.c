/* safetensors.c — validated safetensors reader (mmap), sharded sets, atomic writer (see safetensors.h). */
#include "safetensors.h"

#include "fileio.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "half.h"

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's limit */

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const locus_st_tensor *)a)->name, ((const locus_st_tensor *)b)->name);
}

static int cmp_offset(const void *a, const void *b) {
    const locus_st_tensor *x = *(const locus_st_tensor *const *)a, *y = *(const locus_st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static uint64_t rd_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Validates header + ranges of the image at f->map (f->size bytes). */
static locus_status parse_image(locus_st_file *f, const char *what) {
    if (f->size < 8) return locus_fail(LOCUS_E_FORMAT, "%s: truncated safetensors file (%zu bytes, need at least 8)", what, f->size);
    uint64_t hlen = rd_le64(f->map);
    if (hlen > f->size - 8)
        return locus_fail(LOCUS_E_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)", what,
                          (unsigned long long)hlen, f->size);
    if (hlen > ST_MAX_HEADER) return locus_fail(LOCUS_E_FORMAT, "%s: header length %llu exceeds 100 MiB", what, (unsigned long long)hlen);
    if (hlen < 2) return locus_fail(LOCUS_E_FORMAT, "%s: header too short", what);
    locus_status st = locus_json_parse(&f->header, (const char *)f->map + 8, (size_t)hlen, what);
    if (st) return st;
    const locus_json *root = f->header.root;
    if (root->type != JSON_OBJECT) return locus_fail(LOCUS_E_FORMAT, "%s: header is not a JSON object", what);
    /* a tensor named twice is ambiguous: refused (JSON readers would silently keep one of them) */
    if (f->header.duplicates) return locus_fail(LOCUS_E_FORMAT, "%s: '%s' appears twice in the header", what, f->header.dup_key);
    const unsigned char *data = f->map + 8 + hlen;
    size_t dsize = f->size - 8 - (size_t)hlen;
    f->tensors = calloc(root->len ? root->len : 1, sizeof *f->tensors);
    if (!f->tensors) return locus_fail(LOCUS_E_NOMEM, "%s: out of memory", what);
    f->count = 0;
    for (size_t i = 0; i < root->len; i++) {
        const locus_json *e = root->kids[i];
        if (strcmp(e->key, "__metadata__") == 0) {
            if (e->type != JSON_OBJECT) return locus_fail(LOCUS_E_FORMAT, "%s: __metadata__ is not an object", what);
            continue;
        }
        if (!locus_utf8_valid(e->key, strlen(e->key))) return locus_fail(LOCUS_E_FORMAT, "%s: a tensor name is not valid UTF-8", what);
        if (e->type != JSON_OBJECT) return locus_fail(LOCUS_E_FORMAT, "%s: entry '%s' is not an object", what, e->key);
        const locus_json *jd = locus_json_get(e, "dtype"), *js = locus_json_get(e, "shape"),
                         *jo = locus_json_get(e, "data_offsets");
        if (!jd || jd->type != JSON_STRING) return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' has no dtype string", what, e->key);
        if (!js || js->type != JSON_ARRAY) return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' has no shape array", what, e->key);
        if (!jo || jo->type != JSON_ARRAY || jo->len != 2)
            return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' needs data_offsets [begin, end]", what, e->key);
        int dt = locus_dtype_parse(jd->str);
        if (dt < 0) return locus_fail(LOCUS_E_DTYPE, "%s: tensor '%s' has unsupported dtype '%s'", what, e->key, jd->str);
        if (js->len > LOCUS_ST_MAX_DIMS) return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' has %zu dims (max %d)", what, e->key, js->len, LOCUS_ST_MAX_DIMS);
        locus_st_tensor *t = &f->tensors[f->count];
        t->name = e->key;
        t->dtype = (locus_dtype)dt;
        t->ndim = (int)js->len;
        t->path = what;
        uint64_t numel = 1, nz = 1; /* nz: product of the non-zero dims, bounded even when a 0 makes numel 0 */
        for (size_t d = 0; d < js->len; d++) {
            const locus_json *x = js->kids[d];
            if (x->type != JSON_NUMBER || !x->is_int || x->i < 0)
                return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' shape[%zu] is not a non-negative integer", what, e->key, d);
            t->shape[d] = x->i;
            if (x->i && nz > ((uint64_t)1 << 56) / (uint64_t)x->i)
                return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' shape overflows (more than 2^56 elements)", what, e->key);
            if (x->i) nz *= (uint64_t)x->i;
            numel *= (uint64_t)x->i;
        }
        const locus_json *b = jo->kids[0], *en = jo->kids[1];
        if (b->type != JSON_NUMBER || !b->is_int || b->i < 0 || en->type != JSON_NUMBER || !en->is_int || en->i < 0)
            return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' data_offsets are not non-negative integers", what, e->key);
        if (en->i < b->i) return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' data_offsets end %lld < begin %lld", what, e->key, (long long)en->i, (long long)b->i);
        if ((uint64_t)en->i > dsize)
            return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' data_offsets [%lld,%lld] outside the data region (%zu bytes)", what,
                              e->key, (long long)b->i, (long long)en->i, dsize);
        uint64_t esz = locus_dtype_size(t->dtype);
        if (numel > UINT64_MAX / esz || numel * esz != (uint64_t)(en->i - b->i))
            return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' %s shape needs %llu bytes but data_offsets span %lld", what, e->key,
                              jd->str, (unsigned long long)(numel * esz), (long long)(en->i - b->i));
        t->data = data + b->i;
        t->nbytes = (size_t)(en->i - b->i);
        f->count++;
    }
    /* overlap check: sort by offset, each range must end before the next begins */
    if (f->count > 1) {
        locus_st_tensor **byoff = malloc(f->count * sizeof *byoff);
        if (!byoff) return locus_fail(LOCUS_E_NOMEM, "%s: out of memory", what);
        for (size_t i = 0; i < f->count; i++) byoff[i] = &f->tensors[i];
        qsort(byoff, f->count, sizeof *byoff, cmp_offset);
        for (size_t i = 1; i < f->count; i++)
            if (byoff[i - 1]->data + byoff[i - 1]->nbytes > byoff[i]->data) {
                locus_status s = locus_fail(LOCUS_E_FORMAT, "%s: tensors '%s' and '%s' overlap", what, byoff[i - 1]->name, byoff[i]->name);
                free(byoff);
                return s;
            }
        free(byoff);
    }
    qsort(f->tensors, f->count, sizeof *f->tensors, cmp_name);
    for (size_t i = 1; i < f->count; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' appears twice", what, f->tensors[i].name);
    return LOCUS_OK;
}

static void reset(locus_st_file *f) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

locus_status locus_st_parse_buffer(locus_st_file *f, const unsigned char *buf, size_t size, const char *what) {
    reset(f);
    f->map = (unsigned char *)buf;
    f->size = size;
    f->path = strdup(what);
    locus_status st = parse_image(f, f->path ? f->path : what);
    if (st) {
        locus_json_free(&f->header);
        free(f->tensors);
        free(f->path);
        reset(f);
    }
    return st;
}

locus_status locus_st_open(locus_st_file *f, const char *path) {
    reset(f);
    locus_status ost;
    int fd = locus_open_regular(path, &ost); /* O_NONBLOCK + fstat: FIFOs and devices refused without blocking */
    if (fd < 0) return LOCUS_E_IO;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return locus_fail(LOCUS_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    size_t size = (size_t)sb.st_size;
    unsigned char *map = NULL;
    if (size) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return locus_fail(LOCUS_E_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
    }
    locus_status st = locus_st_parse_buffer(f, map, size, path);
    if (st) {
        if (map) munmap(map, size);
        close(fd);
        return st;
    }
    f->fd = fd;
    return LOCUS_OK;
}

void locus_st_close(locus_st_file *f) {
    if (f->fd >= 0) {
        if (f->map) munmap(f->map, f->size);
        close(f->fd);
    }
    locus_json_free(&f->header);
    free(f->tensors);
    free(f->path);
    reset(f);
}

const locus_st_tensor *locus_st_find(const locus_st_file *f, const char *name) {
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

int64_t locus_st_numel(const locus_st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

locus_status locus_st_to_f32(const locus_st_tensor *t, float *dst, int64_t n) {
    if (n != locus_st_numel(t)) return locus_fail(LOCUS_E_SHAPE, "%s: tensor '%s' has %lld elements, expected %lld", t->path, t->name, (long long)locus_st_numel(t), (long long)n);
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case LOCUS_F32: memcpy(dst, p, (size_t)n * 4); break;
    case LOCUS_F16:
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = locus_f16_to_f32(h); }
        break;
    case LOCUS_BF16:
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = locus_bf16_to_f32(h); }
        break;
    case LOCUS_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = d > 3.5e38 ? INFINITY : d < -3.5e38 ? -INFINITY : (float)d; /* out of range: Inf (refused below), never UB */
        }
        break;
    default:
        return locus_fail(LOCUS_E_DTYPE, "%s: tensor '%s' has dtype %s, expected a float type (F32/F16/BF16)", t->path, t->name, locus_dtype_name(t->dtype));
    }
    /* weights, embeddings and noise are all read here: a NaN or Inf would only surface as a black image */
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' has a non-finite value (%s) at element %lld", t->path, t->name,
                              isnan(dst[i]) ? "NaN" : "Inf", (long long)i);
    return LOCUS_OK;
}

locus_status locus_st_to_i64(const locus_st_tensor *t, int64_t *dst, int64_t n) {
    if (n != locus_st_numel(t)) return locus_fail(LOCUS_E_SHAPE, "%s: tensor '%s' has %lld elements, expected %lld", t->path, t->name, (long long)locus_st_numel(t), (long long)n);
    if (t->dtype == LOCUS_I64) { memcpy(dst, t->data, (size_t)n * 8); return LOCUS_OK; }
    if (t->dtype == LOCUS_I32) {
        for (int64_t i = 0; i < n; i++) { int32_t v; memcpy(&v, t->data + 4 * i, 4); dst[i] = v; }
        return LOCUS_OK;
    }
    return locus_fail(LOCUS_E_DTYPE, "%s: tensor '%s' has dtype %s, expected I64 or I32", t->path, t->name, locus_dtype_name(t->dtype));
}

/* ---- sharded sets ---- */

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

locus_status locus_st_set_open(locus_st_set *s, const char *path) {
    s->files = NULL;
    s->nfiles = 0;
    if (!ends_with(path, ".index.json")) {
        s->files = calloc(1, sizeof *s->files);
        if (!s->files) return locus_fail(LOCUS_E_NOMEM, "out of memory");
        locus_status st = locus_st_open(&s->files[0], path);
        if (st) { free(s->files); s->files = NULL; return st; }
        s->nfiles = 1;
        return LOCUS_OK;
    }
    locus_json_doc doc;
    locus_status st = locus_json_parse_file(&doc, path);
    if (st) return st;
    const locus_json *wm = locus_json_get(doc.root, "weight_map"); /* NULL unless the root is an object */
    if (!wm || wm->type != JSON_OBJECT || wm->len == 0) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_FORMAT, "%s: no weight_map object", path);
    }
    /* unique shard names, in first-seen order */
    const char **names = calloc(wm->len, sizeof *names);
    size_t nn = 0;
    for (size_t i = 0; names && i < wm->len; i++) {
        const locus_json *k = wm->kids[i];
        if (k->type != JSON_STRING || !k->len || strlen(k->str) != k->len || strchr(k->str, '/') || !strcmp(k->str, "..") || !strcmp(k->str, ".")) {
            /* formatted before the document (which owns the key) is freed */
            locus_status e = locus_fail(LOCUS_E_FORMAT, "%s: weight_map['%s'] is not a shard file name in the index's folder", path, k->key);
            free(names);
            locus_json_free(&doc);
            return e;
        }
        size_t j = 0;
        while (j < nn && strcmp(names[j], wm->kids[i]->str) != 0) j++;
        if (j == nn) names[nn++] = wm->kids[i]->str;
    }
    s->files = calloc(nn ? nn : 1, sizeof *s->files);
    if (!names || !s->files) { free(names); locus_json_free(&doc); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path + 1) : 0;
    for (size_t j = 0; j < nn; j++) {
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%.*s%s", (int)dirlen, path, names[j]);
        st = locus_st_open(&s->files[j], full);
        if (st) break;
        s->nfiles++;
    }
    /* every tensor the index names must be in the shard it names */
    for (size_t i = 0; st == LOCUS_OK && i < wm->len; i++) {
        size_t j = 0;
        while (strcmp(names[j], wm->kids[i]->str) != 0) j++;
        if (!locus_st_find(&s->files[j], wm->kids[i]->key))
            st = locus_fail(LOCUS_E_FORMAT, "%s: tensor '%s' is listed in %s but not there", path, wm->kids[i]->key, names[j]);
    }
    free(names);
    locus_json_free(&doc);
    if (st) locus_st_set_close(s);
    return st;
}

void locus_st_set_close(locus_st_set *s) {
    for (size_t i = 0; i < s->nfiles; i++) locus_st_close(&s->files[i]);
    free(s->files);
    s->files = NULL;
    s->nfiles = 0;
}

const locus_st_tensor *locus_st_set_find(const locus_st_set *s, const char *name) {
    for (size_t i = 0; i < s->nfiles; i++) {
        const locus_st_tensor *t = locus_st_find(&s->files[i], name);
        if (t) return t;
    }
    return NULL;
}

locus_status locus_st_set_load_f32(const locus_st_set *s, const char *name, int ndim, const int64_t *shape, float *dst) {
    const locus_st_tensor *t = locus_st_set_find(s, name);
    if (!t) return locus_fail(LOCUS_E_NOTFOUND, "%s: missing tensor '%s'", s->nfiles ? s->files[0].path : "weights", name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char a[128], b[128];
        return locus_fail(LOCUS_E_SHAPE, "%s: tensor '%s' has shape %s, config implies %s", t->path, name,
                          locus_shape_str(t->ndim, t->shape, a, sizeof a), locus_shape_str(ndim, shape, b, sizeof b));
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return locus_st_to_f32(t, dst, n);
}

/* ---- writer ---- */

typedef struct {
    char *name;
    locus_dtype dtype;
    int ndim;
    int64_t shape[LOCUS_ST_MAX_DIMS];
    void *data;
    size_t nbytes;
} wentry;

struct locus_st_writer {
    wentry *e;
    size_t n, cap;
    char **meta; /* key, value pairs */
    size_t nmeta;
};

locus_st_writer *locus_st_writer_new(void) { return calloc(1, sizeof(locus_st_writer)); }

/* appends an entry (name, dtype, shape, byte count; data NULL) to w */
static wentry *writer_push(locus_st_writer *w, const char *name, locus_dtype dtype, int ndim, const int64_t *shape) {
    if (ndim > LOCUS_ST_MAX_DIMS) { locus_fail(LOCUS_E_ARG, "safetensors writer: '%s' has too many dims", name); return NULL; }
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        wentry *ne = realloc(w->e, nc * sizeof *ne);
        if (!ne) { locus_fail(LOCUS_E_NOMEM, "out of memory"); return NULL; }
        w->e = ne;
        w->cap = nc;
    }
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) { e->shape[i] = shape[i]; numel *= (size_t)shape[i]; }
    e->nbytes = numel * locus_dtype_size(dtype);
    e->dtype = dtype;
    e->ndim = ndim;
    e->name = strdup(name);
    if (!e->name) { locus_fail(LOCUS_E_NOMEM, "out of memory"); return NULL; }
    w->n++;
    return e;
}

locus_status locus_st_writer_add(locus_st_writer *w, const char *name, locus_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data) {
    wentry *e = writer_push(w, name, dtype, ndim, shape);
    if (!e) return LOCUS_E_NOMEM;
    e->data = malloc(e->nbytes ? e->nbytes : 1);
    if (!e->data) { free(e->name); w->n--; return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    memcpy(e->data, data, e->nbytes);
    return LOCUS_OK;
}

locus_status locus_st_writer_add_meta(locus_st_writer *w, const char *key, const char *value) {
    char **nm = realloc(w->meta, (w->nmeta + 1) * 2 * sizeof *nm);
    if (!nm) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    w->meta = nm;
    w->meta[2 * w->nmeta] = strdup(key);
    w->meta[2 * w->nmeta + 1] = strdup(value);
    w->nmeta++;
    return LOCUS_OK;
}

/* JSON string escaping into a growing buffer */
typedef struct { char *p; size_t n, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (b->n + n + 1 > nc) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_jstr(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        if (c == '"' || c == '\\') { tmp[0] = '\\'; tmp[1] = (char)c; sb_put(b, tmp, 2); }
        else if (c < 0x20) { snprintf(tmp, sizeof tmp, "\\u%04x", c); sb_put(b, tmp, 6); }
        else sb_put(b, (const char *)&c, 1);
    }
    sb_put(b, "\"", 1);
}

/* the JSON header of w's entries (and metadata), space-padded so the data region is 8-byte aligned */
static locus_status build_header(const locus_st_writer *w, sbuf *h) {
    char tmp[64];
    sb_str(h, "{");
    size_t off = 0;
    int first = 1;
    if (w->nmeta) {
        sb_str(h, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nmeta; i++) {
            if (i) sb_str(h, ",");
            sb_jstr(h, w->meta[2 * i]);
            sb_str(h, ":");
            sb_jstr(h, w->meta[2 * i + 1]);
        }
        sb_str(h, "}");
        first = 0;
    }
    for (size_t i = 0; i < w->n; i++) {
        const wentry *e = &w->e[i];
        if (!first) sb_str(h, ",");
        first = 0;
        sb_jstr(h, e->name);
        sb_str(h, ":{\"dtype\":");
        sb_jstr(h, locus_dtype_name(e->dtype));
        sb_str(h, ",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(tmp, sizeof tmp, d ? ",%lld" : "%lld", (long long)e->shape[d]);
            sb_str(h, tmp);
        }
        snprintf(tmp, sizeof tmp, "],\"data_offsets\":[%zu,%zu]}", off, off + e->nbytes);
        sb_str(h, tmp);
        off += e->nbytes;
    }
    sb_str(h, "}");
    while (!h->oom && h->n % 8) sb_str(h, " ");
    if (h->oom) { free(h->p); h->p = NULL; return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    return LOCUS_OK;
}

/* writes header + data (from body(f, arg)) to a temporary file and renames it onto path */
static locus_status write_atomic(const locus_st_writer *w, const char *path, int (*body)(FILE *f, void *arg), void *arg) {
    sbuf h = {0};
    locus_status st = build_header(w, &h);
    if (st) return st;
    char tmppath[PATH_MAX + 32];
    int fd = locus_create_tmp(path, tmppath, sizeof tmppath);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        free(h.p);
        if (fd >= 0) { close(fd); unlink(tmppath); return locus_fail(LOCUS_E_NOMEM, "%s: cannot create", path); }
        return LOCUS_E_IO;
    }
    unsigned char len8[8];
    uint64_t hl = h.n;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.p, 1, h.n, f) == h.n && body(f, arg);
    free(h.p);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmppath, path) != 0) {
        int err = errno;
        unlink(tmppath);
        return locus_fail(LOCUS_E_IO, "%s: write failed: %s", path, strerror(err));
    }
    return LOCUS_OK;
}

static int body_from_memory(FILE *f, void *arg) {
    const locus_st_writer *w = arg;
    int ok = 1;
    for (size_t i = 0; ok && i < w->n; i++) ok = fwrite(w->e[i].data, 1, w->e[i].nbytes, f) == w->e[i].nbytes;
    return ok;
}

locus_status locus_st_writer_save(locus_st_writer *w, const char *path) { return write_atomic(w, path, body_from_memory, w); }

void locus_st_writer_free(locus_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) { free(w->e[i].name); free(w->e[i].data); }
    for (size_t i = 0; i < 2 * w->nmeta; i++) free(w->meta[i]);
    free(w->meta);
    free(w->e);
    free(w);
}

/* ---- streaming writer ---- */

struct locus_st_stream {
    char path[PATH_MAX], tmp[PATH_MAX + 32];
    FILE *data;          /* tensor bytes so far, in order */
    locus_st_writer *w;  /* the entries (data NULL) */
    locus_status status;
};

locus_status locus_st_stream_open(locus_st_stream **out, const char *path) {
    locus_st_stream *s = calloc(1, sizeof *s);
    if (!s || !(s->w = locus_st_writer_new())) { free(s); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->tmp, sizeof s->tmp, "%s.data.%d", path, (int)getpid());
    if (locus_output_check(path)) { locus_st_writer_free(s->w); free(s); return LOCUS_E_IO; }
    /* the data file is created exclusively and unlinked at once: nothing is left behind even if the process is
     * killed; the bytes live until the stream is closed */
    unlink(s->tmp);
    int fd = open(s->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    s->data = fd >= 0 ? fdopen(fd, "w+b") : NULL;
    if (fd >= 0) unlink(s->tmp);
    if (!s->data && fd >= 0) close(fd);
    if (!s->data) {
        locus_st_writer_free(s->w);
        free(s);
        return locus_fail(LOCUS_E_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    *out = s;
    return LOCUS_OK;
}

locus_status locus_st_stream_add(locus_st_stream *s, const char *name, locus_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    if (s->status) return s->status;
    wentry *e = writer_push(s->w, name, dtype, ndim, shape);
    if (!e) return s->status = LOCUS_E_NOMEM;
    if (fwrite(data, 1, e->nbytes, s->data) != e->nbytes) return s->status = locus_fail(LOCUS_E_IO, "%s: write failed: %s", s->tmp, strerror(errno));
    return LOCUS_OK;
}

static int body_from_file(FILE *f, void *arg) {
    FILE *src = arg;
    char buf[1 << 16];
    size_t r;
    if (fflush(src) != 0 || fseek(src, 0, SEEK_SET) != 0) return 0;
    while ((r = fread(buf, 1, sizeof buf, src)) > 0)
        if (fwrite(buf, 1, r, f) != r) return 0;
    return !ferror(src);
}

locus_status locus_st_stream_close(locus_st_stream *s, int keep) {
    locus_status st = s->status;
    if (keep && !st) st = write_atomic(s->w, s->path, body_from_file, s->data);
    fclose(s->data);
    unlink(s->tmp);
    locus_st_writer_free(s->w);
    free(s);
    return st;
}
