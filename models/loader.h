/* loader.h — loading one diffusers/transformers component folder (config.json + safetensors weights).
 *
 * A component folder holds config.json and diffusion_pytorch_model.safetensors (diffusers) or
 * model.safetensors (transformers), or a sharded *.safetensors.index.json.  Weights are converted to fp32
 * once (F32/F16/BF16) into buffers owned by the loader.  Model loaders call locus_param() for every tensor
 * with the shape the config implies; the first failure (missing tensor, wrong shape, wrong dtype) is kept
 * with its message and every later call is a no-op, so a loader checks for errors once at the end.
 */
#ifndef LOCUS_LOADER_H
#define LOCUS_LOADER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/json.h"
#include "../core/safetensors.h"

/* One loaded tensor, as the model loaders asked for it: its diffusers/transformers name, shape and buffer.
 * `packed` marks a Linear weight stored in the GEMM's panel layout (nn_linear_load; `data` is then the
 * packed buffer, `shape` still [out, in]).  Training looks parameters up here (gradients by name). */
typedef struct {
    char *name;
    float *data;
    int ndim, packed;
    int64_t shape[4];
    size_t numel;
} locus_param_rec;

/* A module registered by name (kind LOCUS_MOD_LINEAR: ptr is an nn_linear*), for LoRA attachment. */
enum { LOCUS_MOD_LINEAR = 1 };
typedef struct {
    char *name;
    int kind;
    void *ptr;
} locus_module_rec;

typedef struct {
    char dir[PATH_MAX];
    char weights_path[PATH_MAX];
    locus_json_doc config;
    locus_st_set st;
    float **bufs;
    size_t nbufs, capbufs;
    size_t nparams;       /* elements loaded */
    locus_status status;  /* first error */
    int random;           /* random-weight mode */
    uint64_t seed;
    char errmsg[1024];
    int plain_weights;    /* keep Linear weights unpacked (training updates them in place) */
    locus_param_rec *params; /* every tensor loaded, in load order */
    size_t nrec, caprec;
    locus_module_rec *mods;  /* modules registered by name (Linear layers) */
    size_t nmods, capmods;
    const char *allow_unused[4]; /* name prefixes the model knowingly does not load (e.g. the VAE encoder) */
    int nallow;
} locus_loader;

/* Process-wide default for locus_loader.plain_weights of loaders opened from now on (0 at start: Linear
 * weights are packed for the GEMM at load).  Training commands set 1 before loading a model whose weights
 * they update.  Results are the same bits either way. */
void locus_loader_set_plain_weights(int on);

/* Registry look-ups (NULL when absent). */
const locus_param_rec *locus_loader_find_param(const locus_loader *L, const char *name);
const locus_param_rec *locus_loader_param_of(const locus_loader *L, const float *data);
/* Register a module under its diffusers path (the loader keeps a copy of the name). */
void locus_loader_add_module(locus_loader *L, const char *name, int kind, void *ptr);

/* Random-weight mode for benchmarks: config from `config_path`, every locus_param() returns seeded values
 * (counter-based, so identical on every machine): >= 2-D tensors U(-1,1)/sqrt(fan_in), 1-D *.weight 1+U(-0.1,0.1),
 * 1-D *.bias U(-0.1,0.1). */
locus_status locus_loader_open_random(locus_loader *L, const char *config_path, uint64_t seed);

/* Open `dir` (reads config.json and finds the weights).  Errors name the folder and what is missing. */
locus_status locus_loader_open(locus_loader *L, const char *dir);
void locus_loader_close(locus_loader *L); /* frees the fp32 buffers too */

/* Load tensor `name` (printf-style) as fp32 with the given dims (ndim <= 4; unused dims ignored).  Returns
 * NULL (and records the first error) on failure. */
float *locus_param(locus_loader *L, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Replace a buffer returned by locus_param (freed now) by `repl` (locus_alloc'd; owned by the loader from
 * now on), e.g. weights repacked for the GEMM (the registry entry follows; `packed` is set when repl is a
 * packed Linear weight: call locus_loader_mark_packed). */
void locus_loader_mark_packed(locus_loader *L, const float *data);
void locus_loader_replace(locus_loader *L, const float *old, float *repl);

/* Like locus_param but returns NULL without error when the tensor does not exist. */
float *locus_param_opt(locus_loader *L, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Record a config error (first one wins) and return the status. */
locus_status locus_loader_fail(locus_loader *L, locus_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Finish: returns the first error (message restored into locus_errmsg()) or LOCUS_OK. */
locus_status locus_loader_status(locus_loader *L);

/* Config getters that record a clear error when a present key has the wrong type. */
int64_t locus_cfg_int(locus_loader *L, const char *key, int64_t def);
double locus_cfg_num(locus_loader *L, const char *key, double def);
int locus_cfg_bool(locus_loader *L, const char *key, int def);
const char *locus_cfg_str(locus_loader *L, const char *key, const char *def);
/* Integer list (or a single integer broadcast to n entries); returns the count read (0 if absent). */
int locus_cfg_ints(locus_loader *L, const char *key, int64_t *out, int max, int broadcast_n);
/* String list; pointers stay valid while the loader is open. */
int locus_cfg_strs(locus_loader *L, const char *key, const char **out, int max);

/* Range-checked config values (the schema of a model family is a list of these calls): an integer (or
 * number, finite) in [lo, hi], else the error "config.json: 'key' is V; expected lo..hi" is recorded and `def`
 * returned.  Lists: exactly n entries (or one integer broadcast to n), each in [lo, hi]; returns the count
 * read (0 if absent, n otherwise; on error the entries are set to lo so later arithmetic stays defined). */
int64_t locus_cfg_int_in(locus_loader *L, const char *key, int64_t def, int64_t lo, int64_t hi);
double locus_cfg_num_in(locus_loader *L, const char *key, double def, double lo, double hi);
int locus_cfg_ints_in(locus_loader *L, const char *key, int64_t *out, int n, int64_t lo, int64_t hi);
/* Records "DIR/config.json: <message>" (format error) when `ok` is false; returns ok. */
int locus_cfg_require(locus_loader *L, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Weights the config never asked for: after a model is built, every tensor of the weight files that is not in
 * the registry (and not a known non-parameter buffer such as *.position_ids, nor under a prefix given to
 * locus_loader_allow_unused) is an error naming them, unless LOCUS_ALLOW_EXTRA_WEIGHTS=1.  A mismatch between
 * config and weights is then never silent.  Returns the loader's status. */
void locus_loader_allow_unused(locus_loader *L, const char *prefix);
locus_status locus_loader_check_unused(locus_loader *L);

#endif
