/* cache.h — `--cache FILE --cache-points PATTERNS`: every hook point matching a glob pattern, at every
 * denoiser evaluation, streamed to a safetensors file as "step<N>.<hook point>" with bounded memory. */
#ifndef LOCUS_CACHE_H
#define LOCUS_CACHE_H

#include "../core/safetensors.h"
#include "../models/nn.h"

#define LOCUS_MAX_CACHE_PATTERNS 32

typedef struct {
    locus_st_stream *st;
    char pats[LOCUS_MAX_CACHE_PATTERNS][256];
    int npats, count;
} locus_cache;

/* Open the stream (patterns comma-separated).  I/O errors name the file. */
locus_status locus_cache_open(locus_cache *c, const char *path, const char *patterns);
/* The hook to add to a run: caches matching points, and asks for costly points (.probs) that match. */
locus_hook_entry locus_cache_hook(locus_cache *c);
/* Finish: keep = 1 writes the file (an error when nothing matched: `what` names the option in the message),
 * keep = 0 discards it.  Safe to call twice. */
locus_status locus_cache_close(locus_cache *c, int keep);

#endif
