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
    if (p.kind == LOCUS_PIPE_SD3) {
        /* joint attention: the text stream's K and V come from add_k_proj / add_v_proj (the paper's patched sites) */
        const locus_mmdit *m = &p.mmdit;
        size_t total = m->L.nparams, text = 0;
        if (json) printf("{\"model\": \"%s\", \"denoiser_params\": %zu, \"layers\": [\n", model, total);
        else printf("%-5s %-6s %-40s %6s %12s %9s\n", "index", "kind", "layer", "heads", "text_params", "share");
        int idx = 0, nl = 0;
        for (int i = 0; i < m->nlayers; i++) nl += 1 + m->blocks[i].dual;
        for (int i = 0; i < m->nlayers; i++) {
            const mmdit_block *b = &m->blocks[i];
            size_t tp = lin_params(&b->ak) + lin_params(&b->av);
            text += tp;
            char nm[96];
            snprintf(nm, sizeof nm, "transformer_blocks.%d.attn", i);
            double share = 100.0 * (double)tp / (double)total;
            if (json) printf("  {\"index\": %d, \"kind\": \"joint\", \"name\": \"%s\", \"heads\": %d, \"text_params\": %zu, \"share_percent\": %.6f}%s\n",
                             idx, nm, m->heads, tp, share, idx + 1 < nl ? "," : "");
            else printf("%-5d %-6s %-40s %6d %12zu %8.4f%%\n", idx, "joint", nm, m->heads, tp, share);
            idx++;
            if (b->dual) {
                snprintf(nm, sizeof nm, "transformer_blocks.%d.attn2", i);
                if (json) printf("  {\"index\": %d, \"kind\": \"self\", \"name\": \"%s\", \"heads\": %d, \"text_params\": 0, \"share_percent\": 0}%s\n", idx, nm,
                                 m->heads, idx + 1 < nl ? "," : "");
                else printf("%-5d %-6s %-40s %6d %12d %8.4f%%\n", idx, "self", nm, m->heads, 0, 0.0);
                idx++;
            }
        }
        if (json) printf("], \"text_params_total\": %zu, \"text_share_percent\": %.6f}\n", text, 100.0 * (double)text / (double)total);
        else printf("%d attention layers (%d joint); add_k_proj/add_v_proj of all joint layers: %zu of %zu denoiser parameters (%.4f%%)\n", idx, m->nlayers,
                    text, total, 100.0 * (double)text / (double)total);
        locus_pipeline_close(&p);
        return 0;
    }
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
