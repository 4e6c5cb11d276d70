/* lora.c — LoRA adapters (see lora.h): pattern expansion, attachment to registered Linear layers, PEFT's
 * gaussian init, reading diffusers / PEFT / kohya files, writing diffusers' formats, merging. */
#include "lora.h"

#include <assert.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/arena.h"
#include "../core/rng.h"
#include "../core/safetensors.h"
#include "../simd/ops.h"

/* ---- pattern lists ---- */

typedef struct { char **v; int n, cap; } strlist;

static int sl_push(strlist *l, const char *s, size_t len) {
    if (l->n >= 4096) return -1;
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 16;
        char **nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = 0;
    l->v[l->n++] = c;
    return 0;
}

/* Brace-expand s (balanced braces checked by the caller) into l. */
static int brace_expand(const char *s, strlist *l) {
    const char *open = strchr(s, '{');
    if (!open) return sl_push(l, s, strlen(s));
    int depth = 0;
    const char *close = NULL;
    for (const char *p = open; *p; p++) {
        if (*p == '{') depth++;
        else if (*p == '}' && --depth == 0) { close = p; break; }
    }
    if (!close) return -1;
    size_t pre = (size_t)(open - s), post = strlen(close + 1);
    const char *a = open + 1;
    depth = 0;
    for (const char *p = open + 1; p <= close; p++) {
        if (*p == '{') depth++;
        else if (*p == '}' && depth > 0) depth--;
        else if ((*p == ',' && depth == 0) || p == close) {
            size_t alen = (size_t)(p - a);
            char *t = malloc(pre + alen + post + 1);
            if (!t) return -1;
            memcpy(t, s, pre);
            memcpy(t + pre, a, alen);
            memcpy(t + pre + alen, close + 1, post + 1);
            int rc = brace_expand(t, l);
            free(t);
            if (rc) return rc;
            a = p + 1;
        }
    }
    return 0;
}

void locus_lora_patterns_free(char **p, int n) {
    for (int i = 0; i < n; i++) free(p[i]);
    free(p);
}

locus_status locus_lora_patterns(const char *spec, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    if (!spec || !*spec) return locus_fail(LOCUS_E_ARG, "empty pattern list");
    int depth = 0;
    for (const char *p = spec; *p; p++) {
        if (*p == '{') depth++;
        else if (*p == '}' && --depth < 0) break;
    }
    if (depth != 0) return locus_fail(LOCUS_E_ARG, "'%s': unbalanced braces", spec);
    strlist l = {0};
    const char *item = spec;
    depth = 0;
    for (const char *p = spec;; p++) {
        if (*p == '{') depth++;
        else if (*p == '}') depth--;
        else if ((*p == ',' && depth == 0) || !*p) {
            size_t len = (size_t)(p - item);
            if (!len) { locus_lora_patterns_free(l.v, l.n); return locus_fail(LOCUS_E_ARG, "'%s': empty item in the list", spec); }
            char *t = malloc(len + 1);
            int rc = -1;
            if (t) { memcpy(t, item, len); t[len] = 0; rc = brace_expand(t, &l); free(t); }
            if (rc) {
                locus_lora_patterns_free(l.v, l.n);
                return locus_fail(LOCUS_E_ARG, "'%s': cannot expand (out of memory or more than 4096 patterns)", spec);
            }
            for (int i = 0; i < l.n; i++)
                if (!*l.v[i]) { locus_lora_patterns_free(l.v, l.n); return locus_fail(LOCUS_E_ARG, "'%s': a brace alternative expands to an empty pattern", spec); }
            if (!*p) break;
            item = p + 1;
        }
    }
    *out = l.v;
    *n = l.n;
    return LOCUS_OK;
}

static int has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* ---- registry helpers ---- */

static int mod_index(const locus_loader *L, const char *name) {
    for (size_t i = 0; i < L->nmods; i++)
        if (L->mods[i].kind == LOCUS_MOD_LINEAR && !strcmp(L->mods[i].name, name)) return (int)i;
    return -1;
}

locus_status locus_lora_prefix_of(locus_loader *L, char prefix[16]) {
    const char *cls = locus_json_str(L->config.root, "_class_name", "", NULL);
    if (strstr(cls, "UNet2DConditionModel")) { strcpy(prefix, "unet"); return LOCUS_OK; }
    if (strstr(cls, "SD3Transformer2DModel")) { strcpy(prefix, "transformer"); return LOCUS_OK; }
    return locus_fail(LOCUS_E_UNSUPPORTED, "%s: LoRA needs a UNet2DConditionModel or SD3Transformer2DModel (config _class_name '%s')",
                      L->dir, cls);
}

/* Allocate n entries (module names copied later) */
static locus_status entries_alloc(locus_lora *s, int n) {
    s->e = calloc((size_t)(n ? n : 1), sizeof *s->e);
    if (!s->e) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    s->n = 0;
    return LOCUS_OK;
}

/* Append an adapter of rank r on registered module index mi (factors zeroed). */
static locus_status entry_add(locus_lora *s, const locus_loader *L, int mi, int r, float alpha, float weight) {
    nn_linear *lin = L->mods[mi].ptr;
    locus_lora_entry *e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    e->module = strdup(L->mods[mi].name);
    e->ad.down = locus_alloc((size_t)r * lin->in * sizeof(float));
    e->ad.up = locus_alloc((size_t)lin->out * r * sizeof(float));
    if (!e->module || !e->ad.down || !e->ad.up) {
        free(e->module); locus_free(e->ad.down); locus_free(e->ad.up);
        return locus_fail(LOCUS_E_NOMEM, "out of memory for the LoRA of %s", L->mods[mi].name);
    }
    memset(e->ad.down, 0, (size_t)r * lin->in * sizeof(float));
    memset(e->ad.up, 0, (size_t)lin->out * r * sizeof(float));
    e->lin = lin;
    e->in = lin->in;
    e->out = lin->out;
    e->ad.r = r;
    e->alpha = alpha;
    e->ad.scale = (float)((double)alpha / r * weight);
    e->ad.next = NULL;
    s->n++;
    return LOCUS_OK;
}

/* Link every adapter at the end of its layer's list (after those already there: adapters chain). */
static void attach_all(locus_lora *s) {
    for (int i = 0; i < s->n; i++) {
        nn_lora **pp = &s->e[i].lin->lora;
        while (*pp) pp = &(*pp)->next;
        *pp = &s->e[i].ad;
        s->e[i].ad.next = NULL;
    }
    s->attached = 1;
}

static void detach_all(locus_lora *s) {
    if (!s->attached) return;
    for (int i = 0; i < s->n; i++) {
        if (!s->e[i].lin) continue;
        for (nn_lora **pp = &s->e[i].lin->lora; *pp; pp = &(*pp)->next)
            if (*pp == &s->e[i].ad) { *pp = s->e[i].ad.next; break; }
    }
    s->attached = 0;
}

void locus_lora_free(locus_lora *s) {
    detach_all(s);
    for (int i = 0; i < s->n; i++) {
        free(s->e[i].module);
        locus_free(s->e[i].ad.down);
        locus_free(s->e[i].ad.up);
    }
    free(s->e);
    memset(s, 0, sizeof *s);
}

locus_lora_entry *locus_lora_find(const locus_lora *s, const char *module) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].module, module)) return &s->e[i];
    return NULL;
}

static void set_common(locus_lora *s) {
    s->rank = s->n ? s->e[0].ad.r : 0;
    s->alpha = s->n ? s->e[0].alpha : 0;
    for (int i = 1; i < s->n; i++) {
        if (s->e[i].ad.r != s->rank) s->rank = 0;
        if (s->e[i].alpha != s->alpha) s->alpha = 0;
    }
}

/* ---- creation from patterns ---- */

locus_status locus_lora_create(locus_lora *s, locus_loader *L, const char *layers, const char *targets, int rank,
                               float alpha, uint64_t seed) {
    memset(s, 0, sizeof *s);
    if (rank <= 0) return locus_fail(LOCUS_E_ARG, "LoRA rank must be > 0 (got %d)", rank);
    if (!(alpha > 0)) return locus_fail(LOCUS_E_ARG, "LoRA alpha must be > 0 (got %g)", alpha);
    locus_status st = locus_lora_prefix_of(L, s->prefix);
    if (st) return st;
    char **lp = NULL, **tp = NULL;
    int nl = 0, nt = 0;
    if ((st = locus_lora_patterns(layers, &lp, &nl))) return locus_fail(st, "--lora-layers %s", locus_errmsg());
    if ((st = locus_lora_patterns(targets, &tp, &nt))) {
        locus_lora_patterns_free(lp, nl);
        return locus_fail(st, "--lora-targets %s", locus_errmsg());
    }
    char *sel = calloc(L->nmods ? L->nmods : 1, 1);
    if (!sel) { st = locus_fail(LOCUS_E_NOMEM, "out of memory"); goto done; }
    char name[1024];
    for (int p = 0; p < nl && !st; p++) {
        int matched = 0;
        char *tfound = calloc((size_t)nt, 1);
        if (!tfound) { st = locus_fail(LOCUS_E_NOMEM, "out of memory"); break; }
        for (size_t m = 0; m < L->nmods; m++) {
            if (L->mods[m].kind != LOCUS_MOD_LINEAR) continue;
            const char *mn = L->mods[m].name;
            size_t ml = strlen(mn);
            for (int t = 0; t < nt; t++) {
                size_t tl = strlen(tp[t]);
                if (ml <= tl + 1 || mn[ml - tl - 1] != '.' || strcmp(mn + ml - tl, tp[t])) continue;
                if (ml - tl - 1 >= sizeof name) continue;
                memcpy(name, mn, ml - tl - 1);
                name[ml - tl - 1] = 0;
                if (fnmatch(lp[p], name, 0)) continue;
                matched = 1;
                tfound[t] = 1;
                sel[m] = 1;
            }
        }
        if (!matched)
            st = locus_fail(LOCUS_E_NOTFOUND, "--lora-layers: '%s' matches no layer with a Linear among the targets '%s' in %s", lp[p],
                            targets, L->dir);
        for (int t = 0; t < nt && !st; t++)
            if (!tfound[t])
                st = has_glob(lp[p]) ? locus_fail(LOCUS_E_NOTFOUND, "--lora-targets: no layer matching '%s' has a Linear '%s'", lp[p], tp[t])
                                     : locus_fail(LOCUS_E_NOTFOUND, "--lora-targets: layer '%s' has no Linear '%s' (no module '%s.%s')",
                                                  lp[p], tp[t], lp[p], tp[t]);
        free(tfound);
    }
    if (st) goto done;
    int count = 0;
    for (size_t m = 0; m < L->nmods; m++) count += sel[m];
    if ((st = entries_alloc(s, count))) goto done;
    locus_mt19937 g;
    locus_mt19937_seed(&g, seed);
    const float stdv = (float)(1.0 / rank);
    for (size_t m = 0; m < L->nmods && !st; m++) {
        if (!sel[m]) continue;
        if ((st = entry_add(s, L, (int)m, rank, alpha, 1.0f))) break;
        locus_lora_entry *e = &s->e[s->n - 1];
        size_t nd = (size_t)rank * e->in;
        locus_randn_gen(&g, e->ad.down, nd); /* nn.init.normal_(lora_A.weight, std=1/r): z * std */
        for (size_t i = 0; i < nd; i++) e->ad.down[i] = e->ad.down[i] * stdv;
    }
    if (!st) {
        s->weight = 1.0f;
        set_common(s);
        attach_all(s);
    }
done:
    free(sel);
    locus_lora_patterns_free(lp, nl);
    locus_lora_patterns_free(tp, nt);
    if (st) locus_lora_free(s);
    return st;
}

/* ---- file keys ---- */

enum { K_DOWN, K_UP, K_ALPHA };

static int ends_with(const char *s, size_t n, const char *suf, size_t *stem) {
    size_t k = strlen(suf);
    if (n < k || memcmp(s + n - k, suf, k)) return 0;
    *stem = n - k;
    return 1;
}

/* Resolve a kohya module name (dots written as '_') against the registry: -1 none, -2 ambiguous. */
static int kohya_resolve(const locus_loader *L, const char *u) {
    int found = -1;
    for (size_t i = 0; i < L->nmods; i++) {
        if (L->mods[i].kind != LOCUS_MOD_LINEAR) continue;
        const char *a = L->mods[i].name, *b = u;
        while (*a && *b && (*a == *b || (*a == '.' && *b == '_'))) a++, b++;
        if (*a || *b) continue;
        if (found >= 0) return -2;
        found = (int)i;
    }
    return found;
}

/* Map one file key to (registered module index, kind).  Returns LOCUS_OK or an error naming the key. */
static locus_status classify_key(const locus_loader *L, const char *prefix, const char *key, int *mi, int *kind) {
    static const struct { const char *suf; int kind; } sufs[] = {
        {".lora.down.weight", K_DOWN}, {".lora.up.weight", K_UP},   {".lora_A.weight", K_DOWN},
        {".lora_B.weight", K_UP},      {".lora_down.weight", K_DOWN}, {".lora_up.weight", K_UP}, {".alpha", K_ALPHA},
        {"_lora.down.weight", K_DOWN}, {"_lora.up.weight", K_UP}, /* old attention-processor files */
    };
    size_t n = strlen(key), stem = 0;
    int si = -1;
    for (int i = 0; i < (int)(sizeof sufs / sizeof *sufs); i++)
        if (ends_with(key, n, sufs[i].suf, &stem)) { si = i; break; }
    if (si < 0) return locus_fail(LOCUS_E_FORMAT, "LoRA key '%s': not a LoRA factor (expected .lora_A/.lora_B/.lora.down/.lora.up/.lora_down/.lora_up .weight or .alpha)", key);
    *kind = sufs[si].kind;
    char mod[1024];
    if (stem >= sizeof mod) return locus_fail(LOCUS_E_FORMAT, "LoRA key '%s': too long", key);
    memcpy(mod, key, stem);
    mod[stem] = 0;
    const char *m = mod;
    if (!strncmp(m, "lora_unet_", 10) || !strncmp(m, "lora_transformer_", 17)) { /* kohya */
        if (si >= 7) return locus_fail(LOCUS_E_FORMAT, "LoRA key '%s': unknown key form", key);
        int r = kohya_resolve(L, strchr(m + 5, '_') + 1);
        if (r == -2) return locus_fail(LOCUS_E_FORMAT, "LoRA key '%s': kohya name matches several modules of %s", key, L->dir);
        if (r < 0) return locus_fail(LOCUS_E_NOTFOUND, "LoRA key '%s': no Linear layer of %s has this kohya name", key, L->dir);
        *mi = r;
        return LOCUS_OK;
    }
    if (!strncmp(m, "lora_te", 7) || !strncmp(m, "text_encoder", 12))
        return locus_fail(LOCUS_E_UNSUPPORTED, "LoRA key '%s': text-encoder adapters are not supported", key);
    if (!strncmp(m, "base_model.model.", 17)) m += 17;
    size_t pl = strlen(prefix);
    if (!strncmp(m, prefix, pl) && m[pl] == '.') m += pl + 1;
    char fixed[1100];
    if (si >= 7) { /* "<attn>.processor.to_q_lora.down.weight" -> "<attn>.to_q"; to_out_lora -> to_out.0 */
        const char *pr = strstr(m, ".processor.");
        if (!pr) return locus_fail(LOCUS_E_FORMAT, "LoRA key '%s': unknown key form", key);
        const char *tail = pr + 11;
        snprintf(fixed, sizeof fixed, "%.*s.%s%s", (int)(pr - m), m, tail, !strcmp(tail, "to_out") ? ".0" : "");
        m = fixed;
    }
    int r = mod_index(L, m);
    if (r < 0) return locus_fail(LOCUS_E_NOTFOUND, "LoRA key '%s': %s has no Linear layer '%s'", key, L->dir, m);
    *mi = r;
    return LOCUS_OK;
}

typedef struct { const locus_st_tensor *down, *up, *alpha; } key_group;

locus_status locus_lora_read(locus_lora *s, locus_loader *L, const char *path, float weight) {
    memset(s, 0, sizeof *s);
    locus_status st = locus_lora_prefix_of(L, s->prefix);
    if (st) return st;
    locus_st_file f;
    if ((st = locus_st_open(&f, path))) return st;
    key_group *grp = calloc(L->nmods ? L->nmods : 1, sizeof *grp);
    if (!grp) { locus_st_close(&f); return locus_fail(LOCUS_E_NOMEM, "out of memory"); }
    for (size_t i = 0; i < f.count && !st; i++) {
        int mi = -1, kind = 0;
        const locus_st_tensor *t = &f.tensors[i];
        if ((st = classify_key(L, s->prefix, t->name, &mi, &kind))) { st = locus_fail(st, "%s: %s", path, locus_errmsg()); break; }
        const locus_st_tensor **slot = kind == K_DOWN ? &grp[mi].down : kind == K_UP ? &grp[mi].up : &grp[mi].alpha;
        if (*slot) st = locus_fail(LOCUS_E_FORMAT, "%s: keys '%s' and '%s' are the same factor of %s", path, (*slot)->name, t->name, L->mods[mi].name);
        *slot = t;
    }
    /* metadata alpha (diffusers files written by locus) */
    double meta_alpha = 0;
    const locus_json *md = locus_json_get(f.header.root, "__metadata__");
    const char *as = md ? locus_json_str(md, "alpha", NULL, NULL) : NULL;
    if (as) {
        char *end;
        meta_alpha = strtod(as, &end);
        if (end == as || *end || !(meta_alpha > 0)) st = st ? st : locus_fail(LOCUS_E_FORMAT, "%s: __metadata__ alpha '%s' is not a positive number", path, as);
    } else if (!st) { /* PEFT's save_pretrained folder: adapter_config.json beside the weights holds lora_alpha */
        char cp[4200];
        const char *sl = strrchr(path, '/');
        snprintf(cp, sizeof cp, "%.*sadapter_config.json", sl ? (int)(sl - path + 1) : 0, path);
        locus_json_doc cfg;
        if (access(cp, F_OK) == 0) {
            if ((st = locus_json_parse_file(&cfg, cp))) st = locus_fail(st, "%s", locus_errmsg());
            else {
                int ok = 1;
                meta_alpha = locus_json_num(cfg.root, "lora_alpha", 0, &ok);
                if (!ok || meta_alpha < 0) st = locus_fail(LOCUS_E_FORMAT, "%s: lora_alpha is not a positive number", cp);
                locus_json_free(&cfg);
            }
        }
    }
    int count = 0;
    for (size_t m = 0; m < L->nmods && !st; m++) {
        key_group *g = &grp[m];
        if (!g->down && !g->up && !g->alpha) continue;
        if (!g->down || !g->up)
            st = locus_fail(LOCUS_E_FORMAT, "%s: key '%s' has no matching %s factor", path, (g->down ? g->down : g->up ? g->up : g->alpha)->name,
                            g->down ? "up (lora_B)" : "down (lora_A)");
        count++;
    }
    if (!st) st = entries_alloc(s, count);
    for (size_t m = 0; m < L->nmods && !st; m++) {
        key_group *g = &grp[m];
        if (!g->down) continue;
        const nn_linear *lin = L->mods[m].ptr;
        const locus_st_tensor *d = g->down, *u = g->up;
        int64_t r = d->ndim >= 1 ? d->shape[0] : 0;
        char s1[96], s2[96];
        if (d->ndim != 2 || u->ndim != 2 || r <= 0 || d->shape[1] != lin->in || u->shape[0] != lin->out || u->shape[1] != r) {
            st = locus_fail(LOCUS_E_SHAPE, "%s: '%s' %s / '%s' %s do not fit %s [out %d, in %d] (expected [r,%d] and [%d,r])", path, d->name,
                            locus_shape_str(d->ndim, d->shape, s1, sizeof s1), u->name, locus_shape_str(u->ndim, u->shape, s2, sizeof s2),
                            L->mods[m].name, lin->out, lin->in, lin->in, lin->out);
            break;
        }
        double alpha = meta_alpha > 0 ? meta_alpha : (double)r;
        if (g->alpha) {
            float a;
            if (locus_st_numel(g->alpha) != 1 || locus_st_to_f32(g->alpha, &a, 1) || !(a > 0)) {
                st = locus_fail(LOCUS_E_FORMAT, "%s: '%s' is not one positive number", path, g->alpha->name);
                break;
            }
            alpha = a;
        }
        if ((st = entry_add(s, L, (int)m, (int)r, (float)alpha, weight))) break;
        locus_lora_entry *e = &s->e[s->n - 1];
        if ((st = locus_st_to_f32(d, e->ad.down, r * lin->in)) || (st = locus_st_to_f32(u, e->ad.up, r * lin->out)))
            st = locus_fail(st, "%s: %s", path, locus_errmsg());
    }
    if (!st && s->n == 0) st = locus_fail(LOCUS_E_FORMAT, "%s: no LoRA factors in the file", path);
    free(grp);
    locus_st_close(&f);
    if (st) { locus_lora_free(s); return st; }
    s->weight = weight;
    set_common(s);
    attach_all(s);
    return LOCUS_OK;
}

locus_status locus_lora_assign(locus_lora *dst, const locus_lora *src) {
    for (int i = 0; i < dst->n; i++)
        if (!locus_lora_find(src, dst->e[i].module))
            return locus_fail(LOCUS_E_NOTFOUND, "LoRA init: no factors for %s in the file", dst->e[i].module);
    for (int i = 0; i < src->n; i++) {
        const locus_lora_entry *a = &src->e[i];
        locus_lora_entry *b = locus_lora_find(dst, a->module);
        if (!b) return locus_fail(LOCUS_E_NOTFOUND, "LoRA init: %s is not among the trained layers", a->module);
        if (a->ad.r != b->ad.r) return locus_fail(LOCUS_E_SHAPE, "LoRA init: %s has rank %d, the run uses %d", a->module, a->ad.r, b->ad.r);
    }
    for (int i = 0; i < src->n; i++) {
        const locus_lora_entry *a = &src->e[i];
        locus_lora_entry *b = locus_lora_find(dst, a->module);
        memcpy(b->ad.down, a->ad.down, (size_t)a->ad.r * a->in * sizeof(float));
        memcpy(b->ad.up, a->ad.up, (size_t)a->out * a->ad.r * sizeof(float));
    }
    return LOCUS_OK;
}

void locus_lora_key(const locus_lora *s, int i, int down, const char *key_prefix, char *key, size_t n) {
    int unet = !strcmp(s->prefix, "unet");
    const char *suf = unet ? (down ? "lora.down.weight" : "lora.up.weight") : (down ? "lora_A.weight" : "lora_B.weight");
    snprintf(key, n, "%s%s.%s.%s", key_prefix, s->prefix, s->e[i].module, suf);
}

locus_status locus_lora_write(const locus_lora *s, locus_st_writer *w, const char *key_prefix) {
    locus_status st = LOCUS_OK;
    char key[1200];
    for (int i = 0; i < s->n && !st; i++) {
        const locus_lora_entry *e = &s->e[i];
        int64_t sd[2] = {e->ad.r, e->in}, su[2] = {e->out, e->ad.r};
        locus_lora_key(s, i, 1, key_prefix, key, sizeof key);
        st = locus_st_writer_add(w, key, LOCUS_F32, 2, sd, e->ad.down);
        locus_lora_key(s, i, 0, key_prefix, key, sizeof key);
        if (!st) st = locus_st_writer_add(w, key, LOCUS_F32, 2, su, e->ad.up);
    }
    return st;
}

locus_status locus_lora_save(const locus_lora *s, const char *path) {
    locus_st_writer *w = locus_st_writer_new();
    if (!w) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    char buf[64];
    locus_status st = locus_lora_write(s, w, "");
    if (!st) st = locus_st_writer_add_meta(w, "format", "pt");
    if (!st && s->rank > 0) { snprintf(buf, sizeof buf, "%d", s->rank); st = locus_st_writer_add_meta(w, "rank", buf); }
    if (!st && s->alpha > 0) { snprintf(buf, sizeof buf, "%.9g", s->alpha); st = locus_st_writer_add_meta(w, "alpha", buf); }
    if (!st) st = locus_st_writer_save(w, path);
    locus_st_writer_free(w);
    return st;
}

/* ---- merging ---- */

void locus_lora_merge(locus_lora *s) {
    for (int i = 0; i < s->n; i++) {
        locus_lora_entry *e = &s->e[i];
        nn_linear *lin = e->lin;
        if (!lin) continue;
        size_t nw = (size_t)e->out * e->in;
        float *delta = locus_alloc(nw * sizeof(float));
        float *w = lin->wp ? locus_alloc(nw * sizeof(float)) : (float *)lin->w;
        assert(delta && w);
        locus_matmul(e->out, e->in, e->ad.r, e->ad.up, 0, e->ad.down, 0, delta, NULL); /* [out,r] . [r,in] */
        if (lin->wp) locus_gemm_unpack_b_t(lin->wp, e->out, e->in, lin->wp_nr, w);
        for (size_t k = 0; k < nw; k++) w[k] = w[k] + delta[k] * e->ad.scale;
        if (lin->wp) { /* repack into the same buffer, for the table it was packed for */
            const locus_kernels *cur = locus_k();
            locus_isa want = cur->isa;
            for (int isa = 0; isa < LOCUS_ISA_COUNT && cur->nr != lin->wp_nr; isa++) {
                const locus_kernels *k = locus_kernels_for((locus_isa)isa);
                if (k && k->nr == lin->wp_nr) { want = (locus_isa)isa; break; }
            }
            locus_isa back = cur->isa;
            if (want != back) locus_kernels_force(want);
            locus_gemm_desc d = {0};
            d.N = e->out; d.K = e->in;
            d.B = w; d.b_rs = 1; d.b_cs = e->in;
            locus_gemm_pack_b(&d, (float *)lin->wp);
            if (want != back) locus_kernels_force(back);
            locus_free(w);
        }
        locus_free(delta);
    }
    detach_all(s);
    for (int i = 0; i < s->n; i++) s->e[i].lin = NULL;
}

/* ---- generation: --lora FILE[:SCALE] ---- */

locus_status locus_lora_load(locus_loader *L, const char *path, float weight) {
    locus_lora s;
    locus_status st = locus_lora_read(&s, L, path, weight);
    if (st) return st;
    /* one block owned by the loader: n nn_lora records, then the factors */
    size_t bytes = ((size_t)s.n * sizeof(nn_lora) + 63) / 64 * 64;
    for (int i = 0; i < s.n; i++) bytes += ((size_t)s.e[i].ad.r * (s.e[i].in + s.e[i].out) * sizeof(float) + 63) / 64 * 64;
    float **nb = L->nbufs == L->capbufs ? realloc(L->bufs, (L->capbufs ? 2 * L->capbufs : 64) * sizeof *nb) : L->bufs;
    char *blk = nb ? locus_alloc(bytes) : NULL;
    if (nb && nb != L->bufs) { L->bufs = nb; L->capbufs = L->capbufs ? 2 * L->capbufs : 64; }
    if (!blk) { locus_lora_free(&s); return locus_fail(LOCUS_E_NOMEM, "out of memory for LoRA %s", path); }
    detach_all(&s);
    nn_lora *recs = (nn_lora *)blk;
    char *p = blk + ((size_t)s.n * sizeof(nn_lora) + 63) / 64 * 64;
    for (int i = 0; i < s.n; i++) {
        locus_lora_entry *e = &s.e[i];
        size_t nd = (size_t)e->ad.r * e->in, nu = (size_t)e->out * e->ad.r;
        recs[i] = e->ad;
        recs[i].down = (float *)p;
        recs[i].up = recs[i].down + nd;
        memcpy(recs[i].down, e->ad.down, nd * sizeof(float));
        memcpy(recs[i].up, e->ad.up, nu * sizeof(float));
        p += ((nd + nu) * sizeof(float) + 63) / 64 * 64;
        recs[i].next = NULL;
        nn_lora **pp = &e->lin->lora;
        while (*pp) pp = &(*pp)->next;
        *pp = &recs[i];
    }
    L->bufs[L->nbufs++] = (float *)blk;
    locus_lora_free(&s);
    return LOCUS_OK;
}

locus_status locus_lora_parse_spec(const char *spec, char *path, size_t pathsz, float *weight) {
    *weight = 1.0f;
    const char *c = strrchr(spec, ':');
    size_t n = strlen(spec);
    if (c && c[1]) {
        char *end;
        double v = strtod(c + 1, &end);
        if (!*end && end != c + 1) {
            if (v != v) return locus_fail(LOCUS_E_ARG, "--lora %s: scale is not a number", spec);
            *weight = (float)v;
            n = (size_t)(c - spec);
        }
    }
    if (n == 0) return locus_fail(LOCUS_E_ARG, "--lora '%s': no file name", spec);
    if (n >= pathsz) return locus_fail(LOCUS_E_ARG, "--lora '%s': path too long", spec);
    memcpy(path, spec, n);
    path[n] = 0;
    return LOCUS_OK;
}
