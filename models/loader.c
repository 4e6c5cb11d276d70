/* loader.c — component folder loading with first-error recording (see loader.h). */
#include "loader.h"

#include <assert.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/rng.h"
#include <math.h>

static int g_plain_weights = 0;
void locus_loader_set_plain_weights(int on) { g_plain_weights = on; }

locus_status locus_loader_open(locus_loader *L, const char *dir) {
    memset(L, 0, sizeof *L);
    L->plain_weights = g_plain_weights;
    snprintf(L->dir, sizeof L->dir, "%s", dir);
    if (!locus_is_dir(dir)) return locus_fail(LOCUS_E_IO, "%s: no such folder", dir);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (!locus_is_file(p)) return locus_fail(LOCUS_E_NOTFOUND, "%s: missing config.json", dir);
    locus_status st = locus_json_parse_file(&L->config, p);
    if (st) return st;
    if (L->config.root->type != JSON_OBJECT) {
        locus_json_free(&L->config);
        return locus_fail(LOCUS_E_FORMAT, "%s: config is not a JSON object", p);
    }
    static const char *names[] = {"diffusion_pytorch_model.safetensors", "model.safetensors",
                                  "diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(L->weights_path, sizeof L->weights_path, "%s/%s", dir, names[i]);
        if (locus_is_file(L->weights_path)) {
            st = locus_st_set_open(&L->st, L->weights_path);
            if (st) locus_json_free(&L->config);
            return st;
        }
    }
    locus_json_free(&L->config);
    return locus_fail(LOCUS_E_NOTFOUND, "%s: no weights (diffusion_pytorch_model.safetensors or model.safetensors)", dir);
}

locus_status locus_loader_open_random(locus_loader *L, const char *config_path, uint64_t seed) {
    memset(L, 0, sizeof *L);
    L->plain_weights = g_plain_weights;
    snprintf(L->dir, sizeof L->dir, "%s", config_path);
    snprintf(L->weights_path, sizeof L->weights_path, "(random weights, seed %llu)", (unsigned long long)seed);
    locus_status st = locus_json_parse_file(&L->config, config_path);
    if (st) return st;
    L->random = 1;
    L->seed = seed;
    return LOCUS_OK;
}

void locus_loader_close(locus_loader *L) {
    for (size_t i = 0; i < L->nbufs; i++) locus_free(L->bufs[i]);
    free(L->bufs);
    L->bufs = NULL;
    for (size_t i = 0; i < L->nrec; i++) free(L->params[i].name);
    free(L->params);
    L->params = NULL;
    L->nrec = L->caprec = 0;
    for (size_t i = 0; i < L->nmods; i++) free(L->mods[i].name);
    free(L->mods);
    L->mods = NULL;
    L->nmods = L->capmods = 0;
    L->nbufs = L->capbufs = 0;
    locus_st_set_close(&L->st);
    locus_json_free(&L->config);
}

locus_status locus_loader_fail(locus_loader *L, locus_status st, const char *fmt, ...) {
    if (L->status == LOCUS_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(L->errmsg, sizeof L->errmsg, fmt, ap);
        va_end(ap);
        L->status = st;
    }
    return st;
}

locus_status locus_loader_status(locus_loader *L) {
    if (L->status) locus_fail(L->status, "%s", L->errmsg);
    return L->status;
}

static float *vparam(locus_loader *L, int optional, int ndim, const int64_t *dims, const char *fmt, va_list ap) {
    if (L->status) return NULL;
    char name[512];
    vsnprintf(name, sizeof name, fmt, ap);
    if (optional && (L->random || !locus_st_set_find(&L->st, name))) return NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || (dims[i] && n > ((int64_t)1 << 50) / dims[i])) {
            locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: the config implies an impossible size for '%s'", L->dir, name);
            return NULL;
        }
        n *= dims[i];
    }
    if (!L->random) { /* the file's shape is checked before anything the config implies is allocated */
        const locus_st_tensor *t = locus_st_set_find(&L->st, name);
        int same = t && t->ndim == ndim;
        for (int i = 0; same && i < ndim; i++) same = t->shape[i] == dims[i];
        if (!same) {
            int64_t zero = 0;
            locus_status st = locus_st_set_load_f32(&L->st, name, ndim, dims, (float *)&zero); /* fails before writing: the message */
            locus_loader_fail(L, st ? st : LOCUS_E_SHAPE, "%s", locus_errmsg());
            return NULL;
        }
    }
    float *buf = locus_alloc((size_t)(n ? n : 1) * sizeof(float));
    if (!buf) {
        locus_loader_fail(L, LOCUS_E_NOMEM, "%s: out of memory: %.1f MiB loading '%s'", L->weights_path, (double)n * 4 / (1 << 20), name);
        return NULL;
    }
    locus_status st = LOCUS_OK;
    if (L->random) {
        uint64_t s = L->seed;
        for (const char *c = name; *c; c++) s = (s ^ (unsigned char)*c) * 0x100000001b3ull;
        size_t nl = strlen(name);
        if (ndim >= 2) {
            float a = 1.0f / sqrtf((float)(n / dims[0]));
            locus_fill_uniform(s, buf, (size_t)n, -a, a);
        } else if (nl > 7 && !strcmp(name + nl - 7, ".weight")) {
            locus_fill_uniform(s, buf, (size_t)n, 0.9f, 1.1f);
        } else {
            locus_fill_uniform(s, buf, (size_t)n, -0.1f, 0.1f);
        }
    } else {
        st = locus_st_set_load_f32(&L->st, name, ndim, dims, buf);
    }
    if (st) {
        locus_free(buf);
        locus_loader_fail(L, st, "%s", locus_errmsg());
        return NULL;
    }
    if (L->nbufs == L->capbufs) {
        size_t nc = L->capbufs ? L->capbufs * 2 : 64;
        float **nb = realloc(L->bufs, nc * sizeof *nb);
        if (!nb) { locus_free(buf); locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory"); return NULL; }
        L->bufs = nb;
        L->capbufs = nc;
    }
    if (L->nrec == L->caprec) {
        size_t nc = L->caprec ? L->caprec * 2 : 64;
        locus_param_rec *np = realloc(L->params, nc * sizeof *np);
        if (!np) { locus_free(buf); locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory"); return NULL; }
        L->params = np;
        L->caprec = nc;
    }
    char *nm = strdup(name);
    if (!nm) { locus_free(buf); locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory"); return NULL; }
    locus_param_rec *r = &L->params[L->nrec++];
    memset(r, 0, sizeof *r);
    r->name = nm;
    r->data = buf;
    r->ndim = ndim;
    for (int i = 0; i < ndim; i++) r->shape[i] = dims[i];
    r->numel = (size_t)n;
    L->bufs[L->nbufs++] = buf;
    L->nparams += (size_t)n;
    return buf;
}

const locus_param_rec *locus_loader_find_param(const locus_loader *L, const char *name) {
    for (size_t i = 0; i < L->nrec; i++)
        if (!strcmp(L->params[i].name, name)) return &L->params[i];
    return NULL;
}

const locus_param_rec *locus_loader_param_of(const locus_loader *L, const float *data) {
    for (size_t i = 0; i < L->nrec; i++)
        if (L->params[i].data == data) return &L->params[i];
    return NULL;
}

void locus_loader_mark_packed(locus_loader *L, const float *data) {
    for (size_t i = 0; i < L->nrec; i++)
        if (L->params[i].data == data) L->params[i].packed = 1;
}

void locus_loader_add_module(locus_loader *L, const char *name, int kind, void *ptr) {
    if (L->status) return;
    if (L->nmods == L->capmods) {
        size_t nc = L->capmods ? L->capmods * 2 : 64;
        locus_module_rec *nm = realloc(L->mods, nc * sizeof *nm);
        if (!nm) { locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory"); return; }
        L->mods = nm;
        L->capmods = nc;
    }
    char *s = strdup(name);
    if (!s) { locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory"); return; }
    L->mods[L->nmods++] = (locus_module_rec){s, kind, ptr};
}

void locus_loader_replace(locus_loader *L, const float *old, float *repl) {
    for (size_t i = L->nbufs; i-- > 0;)
        if (L->bufs[i] == old) {
            for (size_t j = 0; j < L->nrec; j++)
                if (L->params[j].data == old) L->params[j].data = repl;
            locus_free(L->bufs[i]);
            L->bufs[i] = repl;
            return;
        }
    assert(!"locus_loader_replace: buffer not owned by this loader");
}

float *locus_param(locus_loader *L, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt, ...) {
    int64_t dims[4] = {d0, d1, d2, d3};
    va_list ap;
    va_start(ap, fmt);
    float *p = vparam(L, 0, ndim, dims, fmt, ap);
    va_end(ap);
    return p;
}

float *locus_param_opt(locus_loader *L, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt, ...) {
    int64_t dims[4] = {d0, d1, d2, d3};
    va_list ap;
    va_start(ap, fmt);
    float *p = vparam(L, 1, ndim, dims, fmt, ap);
    va_end(ap);
    return p;
}

static void type_err(locus_loader *L, const char *key, const char *want) {
    locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: '%s' should be %s", L->dir, key, want);
}

int64_t locus_cfg_int(locus_loader *L, const char *key, int64_t def) {
    int ok = 1;
    int64_t v = locus_json_int(L->config.root, key, def, &ok);
    if (!ok) type_err(L, key, "an integer");
    return v;
}

double locus_cfg_num(locus_loader *L, const char *key, double def) {
    int ok = 1;
    double v = locus_json_num(L->config.root, key, def, &ok);
    if (!ok) type_err(L, key, "a number");
    return v;
}

int locus_cfg_bool(locus_loader *L, const char *key, int def) {
    int ok = 1;
    int v = locus_json_bool(L->config.root, key, def, &ok);
    if (!ok) type_err(L, key, "true or false");
    return v;
}

const char *locus_cfg_str(locus_loader *L, const char *key, const char *def) {
    int ok = 1;
    const char *v = locus_json_str(L->config.root, key, def, &ok);
    if (!ok) type_err(L, key, "a string");
    return v;
}

int locus_cfg_ints(locus_loader *L, const char *key, int64_t *out, int max, int broadcast_n) {
    const locus_json *v = locus_json_get(L->config.root, key);
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type == JSON_NUMBER && v->is_int) {
        for (int i = 0; i < broadcast_n && i < max; i++) out[i] = v->i;
        return broadcast_n < max ? broadcast_n : max;
    }
    if (v->type != JSON_ARRAY || (int)v->len > max) { type_err(L, key, "a list of integers"); return 0; }
    for (size_t i = 0; i < v->len; i++) {
        if (v->kids[i]->type != JSON_NUMBER || !v->kids[i]->is_int) { type_err(L, key, "a list of integers"); return 0; }
        out[i] = v->kids[i]->i;
    }
    return (int)v->len;
}

int locus_cfg_strs(locus_loader *L, const char *key, const char **out, int max) {
    const locus_json *v = locus_json_get(L->config.root, key);
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_ARRAY || (int)v->len > max) { type_err(L, key, "a list of strings"); return 0; }
    for (size_t i = 0; i < v->len; i++) {
        if (v->kids[i]->type != JSON_STRING) { type_err(L, key, "a list of strings"); return 0; }
        out[i] = v->kids[i]->str;
    }
    return (int)v->len;
}

/* ---- schema helpers ---- */

static void range_err(locus_loader *L, const char *key, const char *got, const char *lo, const char *hi) {
    locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: '%s' is %s; expected %s..%s", L->dir, key, got, lo, hi);
}

int64_t locus_cfg_int_in(locus_loader *L, const char *key, int64_t def, int64_t lo, int64_t hi) {
    const locus_json *v = locus_json_get(L->config.root, key);
    if (!v || v->type == JSON_NULL) return def;
    if (v->type != JSON_NUMBER || !v->is_int) {
        if (v->type == JSON_NUMBER && !v->is_int && v->num == floor(v->num) && fabs(v->num) < 9e15) {
            /* 4.0 is an integer to Python's config readers too */
        } else {
            type_err(L, key, "an integer");
            return def;
        }
    }
    int64_t x = v->is_int ? v->i : (int64_t)v->num;
    if (x < lo || x > hi) {
        char a[32], b[32], c[32];
        snprintf(a, sizeof a, "%lld", (long long)x); snprintf(b, sizeof b, "%lld", (long long)lo); snprintf(c, sizeof c, "%lld", (long long)hi);
        range_err(L, key, a, b, c);
        return def;
    }
    return x;
}

double locus_cfg_num_in(locus_loader *L, const char *key, double def, double lo, double hi) {
    const locus_json *v = locus_json_get(L->config.root, key);
    if (!v || v->type == JSON_NULL) return def;
    if (v->type != JSON_NUMBER) { type_err(L, key, "a number"); return def; }
    if (!isfinite(v->num) || !(v->num >= lo && v->num <= hi)) {
        char a[32], b[32], c[32];
        snprintf(a, sizeof a, "%g", v->num); snprintf(b, sizeof b, "%g", lo); snprintf(c, sizeof c, "%g", hi);
        range_err(L, key, a, b, c);
        return def;
    }
    return v->num;
}

int locus_cfg_ints_in(locus_loader *L, const char *key, int64_t *out, int n, int64_t lo, int64_t hi) {
    for (int i = 0; i < n; i++) out[i] = lo;
    const locus_json *v = locus_json_get(L->config.root, key);
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type == JSON_ARRAY && (int)v->len != n) {
        locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: '%s' has %zu entries; expected %d (one per block)", L->dir, key, v->len, n);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        const locus_json *x = v->type == JSON_ARRAY ? v->kids[i] : v;
        if (x->type != JSON_NUMBER || !x->is_int) { type_err(L, key, "an integer or a list of integers"); return 0; }
        if (x->i < lo || x->i > hi) {
            char a[32], b[32], c[32];
            snprintf(a, sizeof a, "%lld", (long long)x->i); snprintf(b, sizeof b, "%lld", (long long)lo); snprintf(c, sizeof c, "%lld", (long long)hi);
            range_err(L, key, a, b, c);
            for (int k = 0; k < n; k++) out[k] = lo;
            return 0;
        }
        out[i] = x->i;
    }
    return n;
}

int locus_cfg_require(locus_loader *L, int ok, const char *fmt, ...) {
    if (ok || L->status) return ok;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    locus_loader_fail(L, LOCUS_E_FORMAT, "%s/config.json: %s", L->dir, msg);
    return ok;
}

/* ---- weights the config does not use ---- */

void locus_loader_allow_unused(locus_loader *L, const char *prefix) {
    if (L->nallow < (int)(sizeof L->allow_unused / sizeof *L->allow_unused)) L->allow_unused[L->nallow++] = prefix;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

locus_status locus_loader_check_unused(locus_loader *L) {
    if (L->status || L->random) return L->status;
    const char *env = getenv("LOCUS_ALLOW_EXTRA_WEIGHTS");
    if (env && !strcmp(env, "1")) return LOCUS_OK;
    const char **have = malloc((L->nrec ? L->nrec : 1) * sizeof *have);
    if (!have) return locus_loader_fail(L, LOCUS_E_NOMEM, "out of memory");
    for (size_t i = 0; i < L->nrec; i++) have[i] = L->params[i].name;
    qsort(have, L->nrec, sizeof *have, cmp_str);
    size_t unused = 0;
    char list[400] = "";
    for (size_t f = 0; f < L->st.nfiles; f++)
        for (size_t i = 0; i < L->st.files[f].count; i++) {
            const char *nm = L->st.files[f].tensors[i].name;
            size_t nl = strlen(nm);
            if (nl >= 13 && !strcmp(nm + nl - 13, ".position_ids")) continue; /* a buffer (transformers), not a parameter */
            int allowed = 0;
            for (int k = 0; k < L->nallow && !allowed; k++) allowed = !strncmp(nm, L->allow_unused[k], strlen(L->allow_unused[k]));
            if (allowed || bsearch(&nm, have, L->nrec, sizeof *have, cmp_str)) continue;
            if (unused++ < 3) snprintf(list + strlen(list), sizeof list - strlen(list), "%s'%s'", unused > 1 ? ", " : "", nm);
        }
    free(have);
    if (unused)
        locus_loader_fail(L, LOCUS_E_FORMAT, "%s: %zu weight%s the config does not use (%s%s): config and weights disagree "
                          "(LOCUS_ALLOW_EXTRA_WEIGHTS=1 accepts them)", L->weights_path, unused, unused > 1 ? "s" : "", list, unused > 3 ? ", ..." : "");
    return L->status;
}
