/* denoiser.c — the denoiser registry (folder class -> family) and the family-independent helpers of
 * denoiser.h: the layer list and text-layer selection by diffusers path. */
#include "denoiser.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "if_unet.h"
#include "mmdit.h"
#include "unet.h"

static locus_status open_unet(locus_denoiser *d, const char *dir) {
    locus_unet *u = calloc(1, sizeof *u);
    if (!u) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    locus_status st = locus_unet_load(u, dir);
    if (st) { free(u); return st; }
    return locus_unet_denoiser(d, u);
}

static locus_status open_mmdit(locus_denoiser *d, const char *dir) {
    locus_mmdit *m = calloc(1, sizeof *m);
    if (!m) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    locus_status st = locus_mmdit_load(m, dir);
    if (st) { free(m); return st; }
    return locus_mmdit_denoiser(d, m);
}

static locus_status open_if_unet(locus_denoiser *d, const char *dir) {
    locus_if_unet *u = calloc(1, sizeof *u);
    if (!u) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    locus_status st = locus_if_unet_load(u, dir);
    if (st) { free(u); return st; }
    return locus_if_unet_denoiser(d, u);
}

/* The registry: one line per family, first match wins.  `matches` (may be NULL) tells families that share a
 * diffusers class apart by their config (DeepFloyd IF's UNet is a UNet2DConditionModel too). */
static const struct {
    const char *class_name;
    int (*matches)(const locus_json *config);
    locus_status (*open)(locus_denoiser *d, const char *dir);
} registry[] = {
    {"UNet2DConditionModel", locus_if_unet_config_matches, open_if_unet},
    {"UNet2DConditionModel", NULL, open_unet},
    {"SD3Transformer2DModel", NULL, open_mmdit},
};

locus_status locus_denoiser_open(locus_denoiser *d, const char *dir, const char *default_class) {
    memset(d, 0, sizeof *d);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/config.json", dir);
    locus_json_doc doc;
    locus_status st = locus_json_parse_file(&doc, p);
    if (st) return st;
    char cls[128];
    snprintf(cls, sizeof cls, "%s", doc.root->type == JSON_OBJECT ? locus_json_str(doc.root, "_class_name", default_class ? default_class : "", NULL) : "");
    int pick = -1;
    char known[256] = "";
    for (size_t i = 0; i < sizeof registry / sizeof *registry; i++) {
        if (pick < 0 && !strcmp(cls, registry[i].class_name) && (!registry[i].matches || registry[i].matches(doc.root))) pick = (int)i;
        if (!i || strcmp(registry[i].class_name, registry[i - 1].class_name))
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", registry[i].class_name);
    }
    locus_json_free(&doc);
    if (pick >= 0) return registry[pick].open(d, dir);
    return locus_fail(LOCUS_E_UNSUPPORTED, "%s: denoiser class '%s' is not supported (%s)", p, cls, known);
}

void locus_denoiser_close(locus_denoiser *d) {
    if (d->ops && d->model) d->ops->close(d);
    memset(d, 0, sizeof *d);
}

int locus_denoiser_layers(const locus_denoiser *d, locus_layer_info **out) {
    int n = d->ops->layers(d, NULL, 0);
    *out = calloc((size_t)(n > 0 ? n : 1), sizeof **out);
    if (!*out) { locus_fail(LOCUS_E_NOMEM, "out of memory"); return -1; }
    return d->ops->layers(d, *out, n);
}

/* `entry` names `name` when equal, or a prefix ending at a '.' boundary */
static int path_matches(const char *entry, const char *name) {
    size_t n = strlen(entry);
    return n && !strncmp(name, entry, n) && (name[n] == 0 || name[n] == '.');
}

locus_status locus_denoiser_select_text_layers(const locus_denoiser *d, const char *spec, const char *what, unsigned char *sel) {
    locus_layer_info *L = NULL;
    int n = locus_denoiser_layers(d, &L);
    if (n < 0) return LOCUS_E_NOMEM;
    memset(sel, 0, (size_t)d->ntext_layers);
    char *copy = strdup(spec ? spec : ""), *save = NULL;
    locus_status st = copy ? LOCUS_OK : locus_fail(LOCUS_E_NOMEM, "out of memory");
    int any = 0;
    for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !st; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        size_t tl = strlen(tok);
        while (tl && tok[tl - 1] == ' ') tok[--tl] = 0;
        int hits = 0;
        const char *example = NULL;
        for (int i = 0; i < n; i++) {
            if (L[i].text_index < 0) continue;
            if (!example) example = L[i].name;
            if (!path_matches(tok, L[i].name)) continue;
            sel[L[i].text_index] = 1;
            hits++;
        }
        if (!hits)
            st = locus_fail(LOCUS_E_ARG, "%s: '%s' is not a text-reading attention layer of this %s (e.g. %s; see locus layers --model)", what, tok,
                            d->ops->class_name, example ? example : "none");
        any += hits;
    }
    free(copy);
    free(L);
    if (!st && !any) st = locus_fail(LOCUS_E_ARG, "%s: no layers given", what);
    return st;
}

int locus_denoiser_track_params(const locus_denoiser *d, locus_grads *g, const char *pattern) {
    const locus_loader *L = d->loader;
    int n = 0;
    for (size_t i = 0; i < L->nrec; i++) {
        const locus_param_rec *r = &L->params[i];
        int buffer = 0;
        for (const char *const *b = d->buffers; b && *b && !buffer; b++) buffer = !strcmp(*b, r->name);
        if (buffer || (pattern && !locus_grads_name_matches(pattern, r->name))) continue;
        if (locus_grads_of(g, r->data)) continue;
        if (locus_grads_track(g, r->name, r->data, r->ndim, r->shape)) return -1;
        n++;
    }
    return n;
}
