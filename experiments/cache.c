/* cache.c — streaming hook-point cache (see cache.h). */
#include "cache.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

locus_status locus_cache_open(locus_cache *c, const char *path, const char *patterns) {
    memset(c, 0, sizeof *c);
    /* every pattern kept whole: an over-long one or one past the last slot is an error, never truncated */
    for (const char *t = patterns, *e; ; t = e + 1) {
        e = strchr(t, ',');
        if (!e) e = t + strlen(t);
        size_t n = (size_t)(e - t);
        if (!n) return locus_fail(LOCUS_E_ARG, "--cache-points %s: empty pattern", patterns);
        if (n >= sizeof c->pats[0]) return locus_fail(LOCUS_E_ARG, "--cache-points: a pattern is longer than %d characters", (int)sizeof c->pats[0] - 1);
        if (c->npats == LOCUS_MAX_CACHE_PATTERNS) return locus_fail(LOCUS_E_ARG, "--cache-points: more than %d patterns", LOCUS_MAX_CACHE_PATTERNS);
        memcpy(c->pats[c->npats], t, n);
        c->pats[c->npats++][n] = 0;
        if (!*e) break;
    }
    return locus_st_stream_open(&c->st, path);
}

static int matches(const locus_cache *c, const char *name) {
    for (int i = 0; i < c->npats; i++)
        if (!fnmatch(c->pats[i], name, 0)) return 1;
    return 0;
}

static void cache_fn(void *vc, const locus_hook_at *at, float *x, int ndim, const int64_t *shape) {
    locus_cache *c = vc;
    if (!c->st || !matches(c, at->name)) return;
    char nm[320];
    snprintf(nm, sizeof nm, "step%d.%s", at->step, at->name);
    locus_st_stream_add(c->st, nm, LOCUS_F32, ndim, shape, x);
    c->count++;
}

static int cache_want(void *vc, const char *name) { return matches(vc, name); }

locus_hook_entry locus_cache_hook(locus_cache *c) { return (locus_hook_entry){cache_fn, cache_want, NULL, c}; }

locus_status locus_cache_close(locus_cache *c, int keep) {
    locus_st_stream *s = c->st;
    c->st = NULL;
    if (!s) return LOCUS_OK;
    if (!keep || !c->count) {
        locus_st_stream_close(s, 0);
        return keep ? locus_fail(LOCUS_E_ARG, "--cache-points matched no hook point") : LOCUS_OK;
    }
    return locus_st_stream_close(s, 1);
}
