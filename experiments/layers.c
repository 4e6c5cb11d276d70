/* layers.c — `locus layers --model DIR [--json]`: the attention layers of a denoiser in forward order, with
 * the parameters that act on text (to_k/to_v of cross-attention) and their share of the denoiser's
 * parameters — the numbers of the paper's Table 1. */
#include "layers.h"

#include <stdio.h>
#include <string.h>

#include "../models/pipeline.h"

static size_t lin_params(const nn_linear *l) { return (size_t)l->in * l->out + (l->b ? (size_t)l->out : 0); }

int locus_cmd_layers(int argc, char **argv) {
    const char *model = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
        else { fprintf(stderr, "locus layers: unknown option %s (usage: locus layers --model DIR [--json])\n", argv[i]); return 2; }
    }
    if (!model) { fprintf(stderr, "locus layers: --model DIR is required\n"); return 2; }
    locus_pipeline p;
    if (locus_pipeline_open(&p, model)) { fprintf(stderr, "locus layers: %s\n", locus_errmsg()); return 2; }
    static locus_attn_layer L[1024];
    int n = locus_unet_attn_layers(&p.unet, L, 1024);
    size_t total = locus_unet_params(&p.unet), text = 0;
    for (int i = 0; i < n; i++) if (L[i].cross) text += lin_params(&L[i].a->k) + lin_params(&L[i].a->v);
    if (json) printf("{\"model\": \"%s\", \"denoiser_params\": %zu, \"layers\": [\n", model, total);
    else printf("%-5s %-6s %-60s %6s %12s %9s\n", "index", "kind", "layer", "heads", "text_params", "share");
    for (int i = 0; i < n; i++) {
        size_t tp = L[i].cross ? lin_params(&L[i].a->k) + lin_params(&L[i].a->v) : 0;
        double share = 100.0 * (double)tp / (double)total;
        if (json)
            printf("  {\"index\": %d, \"kind\": \"%s\", \"name\": \"%s\", \"heads\": %d, \"text_params\": %zu, \"share_percent\": %.6f}%s\n", i,
                   L[i].cross ? "cross" : "self", L[i].name, L[i].a->heads, tp, share, i + 1 < n ? "," : "");
        else
            printf("%-5d %-6s %-60s %6d %12zu %8.4f%%\n", i, L[i].cross ? "cross" : "self", L[i].name, L[i].a->heads, tp, share);
    }
    if (json) printf("], \"text_params_total\": %zu, \"text_share_percent\": %.6f}\n", text, 100.0 * (double)text / (double)total);
    else printf("%d attention layers (%d cross); to_k/to_v of all cross-attention layers: %zu of %zu denoiser parameters (%.4f%%)\n", n,
                n / 2, text, total, 100.0 * (double)text / (double)total);
    locus_pipeline_close(&p);
    return 0;
}
