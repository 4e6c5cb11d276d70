/* api.c — the stable C API of include/locus.h, part 1: library settings, models (open, info, layers, prompt
 * encoding) and results.  Generation options and runs are in api_generate.c.  Every entry point checks its
 * handles and arguments and reports problems as a status code + locus_last_error(), never by exiting: this is
 * what Python (python/locus) and C programs linked against liblocus.so call. */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/version.h"
#include "../models/lora.h"
#include "../simd/kernels.h"
#include "run.h"

/* ---- library ---- */

LOCUS_API const char *locus_version(void) { return LOCUS_VERSION; }

LOCUS_API const char *locus_last_error(void) { return locus_errmsg(); }

locus_status api_init(void) { return locus_kernels_init(); }

LOCUS_API int locus_set_isa(const char *name) {
    static const char *const names[] = {"scalar", "avx2", "avx512", "neon"};
    static const locus_isa isas[] = {LOCUS_ISA_SCALAR, LOCUS_ISA_AVX2, LOCUS_ISA_AVX512, LOCUS_ISA_NEON};
    const char *env = getenv("LOCUS_ISA");
    if ((!name || !*name) && env && *env) name = env; /* the default honours LOCUS_ISA, as locus_kernels_init */
    if (!name || !*name) { /* the best this CPU has, in locus_kernels_init's order (again, after a forced table) */
        static const locus_isa pref[] = {LOCUS_ISA_AVX512, LOCUS_ISA_AVX2, LOCUS_ISA_NEON, LOCUS_ISA_SCALAR};
        for (int i = 0; i < 4; i++)
            if (locus_kernels_for(pref[i])) return locus_kernels_force(pref[i]);
        return locus_fail(LOCUS_E_UNSUPPORTED, "no kernel table"); /* unreachable: scalar always exists */
    }
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) return locus_kernels_force(isas[i]);
    return locus_fail(LOCUS_E_ARG, "ISA '%s'%s: unknown (use scalar, avx2, avx512 or neon)", name, name == env ? " (LOCUS_ISA)" : "");
}

LOCUS_API const char *locus_get_isa(void) {
    if (api_init()) return "none"; /* an unusable LOCUS_ISA: the message says which */
    return locus_isa_name();
}

LOCUS_API int locus_set_num_threads(int n) {
    if (n < 1) return locus_fail(LOCUS_E_ARG, "threads %d: expected at least 1", n);
    locus_set_threads(n);
    return LOCUS_OK;
}

LOCUS_API int locus_num_threads(void) { return locus_threads(); }

/* ---- results ---- */

locus_result *api_result_new(void) {
    locus_result *r = calloc(1, sizeof *r);
    if (!r) locus_fail(LOCUS_E_NOMEM, "out of memory");
    return r;
}

locus_status api_result_add(locus_result *r, const char *name, int ndim, const int64_t *shape, const float *x) {
    if (ndim < 0 || ndim > API_MAX_DIMS) return locus_fail(LOCUS_E_SHAPE, "%s: rank %d is above %d", name, ndim, API_MAX_DIMS);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 16;
        api_tensor *t = realloc(r->t, (size_t)cap * sizeof *t);
        if (!t) return locus_fail(LOCUS_E_NOMEM, "out of memory for the result's tensors");
        r->t = t;
        r->cap = cap;
    }
    api_tensor *t = &r->t[r->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
    t->data = aligned_alloc(64, bytes ? bytes : 64);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return locus_fail(LOCUS_E_NOMEM, "out of memory for %s (%.1f MiB)", name, (double)n * sizeof(float) / (1 << 20));
    }
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    memcpy(t->data, x, n * sizeof(float));
    r->n++;
    return LOCUS_OK;
}

LOCUS_API int locus_result_image(const locus_result *r, const uint8_t **rgb, int *height, int *width) {
    if (!r) return locus_fail(LOCUS_E_ARG, "locus_result_image: NULL result");
    if (!r->rgb) return locus_fail(LOCUS_E_NOTFOUND, "this result has no image");
    if (rgb) *rgb = r->rgb;
    if (height) *height = r->H;
    if (width) *width = r->W;
    return LOCUS_OK;
}

LOCUS_API int locus_result_count(const locus_result *r) { return r ? r->n : 0; }

LOCUS_API int locus_result_tensor(const locus_result *r, int i, const char **name, int *ndim, const int64_t **shape,
                                  const float **data) {
    if (!r) return locus_fail(LOCUS_E_ARG, "locus_result_tensor: NULL result");
    if (i < 0 || i >= r->n) return locus_fail(LOCUS_E_ARG, "tensor %d: the result holds %d", i, r->n);
    const api_tensor *t = &r->t[i];
    if (name) *name = t->name;
    if (ndim) *ndim = t->ndim;
    if (shape) *shape = t->shape;
    if (data) *data = t->data;
    return LOCUS_OK;
}

LOCUS_API int locus_result_find(const locus_result *r, const char *name) {
    for (int i = 0; r && name && i < r->n; i++)
        if (!strcmp(r->t[i].name, name)) return i;
    return -1;
}

LOCUS_API void locus_result_free(locus_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        free(r->t[i].name);
        free(r->t[i].data);
    }
    free(r->t);
    free(r->rgb);
    free(r);
}

/* ---- models ---- */

LOCUS_API int locus_model_open(const char *dir, locus_model **out) {
    if (!out) return locus_fail(LOCUS_E_ARG, "locus_model_open: NULL out pointer");
    *out = NULL;
    if (!dir || !*dir) return locus_fail(LOCUS_E_ARG, "locus_model_open: no folder given");
    locus_status st = api_init();
    if (st) return st;
    locus_model *m = calloc(1, sizeof *m);
    if (!m) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    st = locus_pipeline_open(&m->p, dir);
    if (st) { free(m); return st; }
    m->nL = locus_denoiser_layers(&m->p.den, &m->L);
    if (m->nL < 0) {
        st = LOCUS_E_NOMEM; /* the message is set */
        locus_pipeline_close(&m->p);
        free(m);
        return st;
    }
    *out = m;
    return LOCUS_OK;
}

LOCUS_API void locus_model_close(locus_model *m) {
    if (!m) return;
    free(m->L);
    locus_pipeline_close(&m->p);
    free(m);
    locus_mem_trim();
}

LOCUS_API int locus_model_get_info(const locus_model *m, locus_model_info *info, size_t info_size) {
    if (!m || !info) return locus_fail(LOCUS_E_ARG, "locus_model_get_info: NULL argument");
    const locus_pipeline *p = &m->p;
    locus_model_info v;
    memset(&v, 0, sizeof v);
    v.family = locus_pipeline_family(p);
    v.pipeline_class = p->class_name;
    v.denoiser_class = p->den.ops->class_name;
    v.scheduler_class = p->sched.class_name;
    v.width = v.height = p->den.sample_size * p->vae_factor;
    v.latent_channels = p->den.in_channels;
    v.vae_factor = p->vae_factor;
    v.size_multiple = p->vae_factor * p->den.size_multiple;
    v.ctx_dim = p->den.ctx_dim;
    v.pooled_dim = p->den.pooled_dim - p->den.pooled_extra;
    v.text_tokens = locus_pipeline_text_tokens(p, 256);
    v.n_layers = m->nL;
    v.n_text_layers = p->den.ntext_layers;
    v.denoiser_params = p->den.params;
    for (int i = 0; i < m->nL; i++) v.text_params += m->L[i].text_params;
    v.default_guidance = p->default_guidance;
    v.default_steps = 50;
    v.model_hash = p->model_hash;
    memcpy(info, &v, info_size < sizeof v ? info_size : sizeof v);
    return LOCUS_OK;
}

LOCUS_API int locus_model_layer_count(const locus_model *m) {
    if (!m) { locus_fail(LOCUS_E_ARG, "locus_model_layer_count: NULL model"); return -1; }
    return m->nL;
}

LOCUS_API int locus_model_layer(const locus_model *m, int i, locus_layer_desc *out, size_t out_size) {
    if (!m || !out) return locus_fail(LOCUS_E_ARG, "locus_model_layer: NULL argument");
    if (i < 0 || i >= m->nL) return locus_fail(LOCUS_E_ARG, "layer %d: the model has %d attention layers", i, m->nL);
    const locus_layer_info *L = &m->L[i];
    locus_layer_desc d;
    memset(&d, 0, sizeof d);
    d.name = L->name;
    d.kind = L->kind == LOCUS_LAYER_CROSS ? "cross" : L->kind == LOCUS_LAYER_JOINT ? "joint" : "self";
    d.site = L->site;
    d.index = i;
    d.heads = L->heads;
    d.text_index = L->text_index;
    d.text_params = L->text_params;
    d.share_percent = 100.0 * (double)L->text_params / (double)m->p.den.params;
    memcpy(out, &d, out_size < sizeof d ? out_size : sizeof d);
    return LOCUS_OK;
}

LOCUS_API int locus_model_add_lora(locus_model *m, const char *path, float scale) {
    if (!m || !path) return locus_fail(LOCUS_E_ARG, "locus_model_add_lora: NULL argument");
    if (!(scale == scale) || scale < -1e6f || scale > 1e6f) return locus_fail(LOCUS_E_ARG, "LoRA scale %g: not a finite number", (double)scale);
    return locus_lora_load(m->p.den.loader, path, scale);
}

LOCUS_API int locus_model_encode(locus_model *m, const char *prompt, int max_seq, locus_result **out) {
    if (!out) return locus_fail(LOCUS_E_ARG, "locus_model_encode: NULL out pointer");
    *out = NULL;
    if (!m) return locus_fail(LOCUS_E_ARG, "locus_model_encode: NULL model");
    if (max_seq < 0 || max_seq > 512) return locus_fail(LOCUS_E_ARG, "max_seq %d: expected 1 to 512 (0: 256)", max_seq);
    locus_embeds e;
    locus_status st = locus_embeds_encode(&m->p, prompt, NULL, 0, max_seq ? max_seq : 256, &e);
    if (st) return st;
    locus_result *r = api_result_new();
    int64_t s3[3] = {1, e.T, m->p.den.ctx_dim}, s2[2] = {1, m->p.den.pooled_dim - m->p.den.pooled_extra};
    st = r ? api_result_add(r, "cond", 3, s3, e.cond) : LOCUS_E_NOMEM;
    if (!st && e.cond_pooled) st = api_result_add(r, "cond_pooled", 2, s2, e.cond_pooled);
    locus_embeds_free(&e);
    if (st) { locus_result_free(r); return st; }
    *out = r;
    return LOCUS_OK;
}
