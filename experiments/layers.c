/* layers.c — `locus layers --model DIR [--json]`: the attention layers of a denoiser in forward order, with
 * the parameters that act on text (the K/V projections of the text: to_k/to_v of cross-attention,
 * add_k_proj/add_v_proj of joint attention) and their share of the denoiser's parameters — the numbers of the
 * paper's Table 1 — and the paper's number of each text-reading layer (column "paper": the authors count only
 * the layers that read the text, 0-based in forward order, e.g. SDXL's #55-#57; usable as --layers '#N').
 * Family-free: the denoiser lists its layers. */
#include "layers.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/pipeline.h"
#include "cli_opts.h"

static const char *kind_name(int k) { return k == LOCUS_LAYER_CROSS ? "cross" : k == LOCUS_LAYER_JOINT ? "joint" : "self"; }

typedef struct { const char *model; int json; } layers_args;
static const locus_opt opts[] = {
    LOCUS_OPT_S(layers_args, "--model", model, "DIR  diffusers pipeline folder (required)"),
    LOCUS_OPT_B(layers_args, "--json", json, "print JSON instead of the table (default: the table)"),
};
static const locus_help help = {
    "layers", "--model DIR [--json]",
    "List the denoiser's attention layers in forward order with the parameters that act on text and their share (the paper's Table 1).",
    "Columns: index, the paper's number of each text-reading layer (usable as --layers '#N'), kind (self, cross,\n"
    "joint), the diffusers path, heads, text parameters (to_k/to_v of cross-attention, add_k_proj/add_v_proj of joint\n"
    "attention) and their share of the denoiser's parameters.\n",
    NULL};

int locus_cmd_layers(int argc, char **argv) {
    layers_args a = {0};
    int rc = locus_opts_parse(&help, opts, sizeof opts / sizeof *opts, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *model = a.model;
    int json = a.json;
    if (!model) { fprintf(stderr, "locus layers: --model DIR is required\n"); return 2; }
    locus_pipeline p;
    if (locus_pipeline_open(&p, model)) { fprintf(stderr, "locus layers: %s\n", locus_errmsg()); return 2; }
    locus_layer_info *L = NULL;
    int n = locus_denoiser_layers(&p.den, &L);
    if (n < 0) { fprintf(stderr, "locus layers: %s\n", locus_errmsg()); locus_pipeline_close(&p); return 2; }
    size_t total = p.den.params, text = 0;
    int ntext = 0, tkind = LOCUS_LAYER_CROSS, width = 40;
    for (int i = 0; i < n; i++) {
        text += L[i].text_params;
        if (L[i].text_index >= 0) { ntext++; tkind = L[i].kind; }
        if ((int)strlen(L[i].name) > 40) width = 60;
    }
    if (json) printf("{\"model\": \"%s\", \"denoiser_params\": %zu, \"layers\": [\n", model, total);
    else printf("%-5s %-5s %-6s %-*s %6s %12s %9s\n", "index", "paper", "kind", width, "layer", "heads", "text_params", "share");
    for (int i = 0; i < n; i++) {
        double share = 100.0 * (double)L[i].text_params / (double)total;
        char paper[16] = "-", pj[16] = "null";
        if (L[i].text_index >= 0) {
            snprintf(paper, sizeof paper, "#%d", L[i].text_index);
            snprintf(pj, sizeof pj, "%d", L[i].text_index);
        }
        if (json)
            printf("  {\"index\": %d, \"paper\": %s, \"kind\": \"%s\", \"name\": \"%s\", \"heads\": %d, \"text_params\": %zu, \"share_percent\": %.6f}%s\n", i,
                   pj, kind_name(L[i].kind), L[i].name, L[i].heads, L[i].text_params, share, i + 1 < n ? "," : "");
        else
            printf("%-5d %-5s %-6s %-*s %6d %12zu %8.4f%%\n", i, paper, kind_name(L[i].kind), width, L[i].name, L[i].heads, L[i].text_params, share);
    }
    const char *sites = tkind == LOCUS_LAYER_JOINT ? "add_k_proj/add_v_proj of all joint layers" : "to_k/to_v of all cross-attention layers";
    if (json) printf("], \"text_params_total\": %zu, \"text_share_percent\": %.6f}\n", text, 100.0 * (double)text / (double)total);
    else printf("%d attention layers (%d %s); %s: %zu of %zu denoiser parameters (%.4f%%)\n", n, ntext, kind_name(tkind), sites, text, total,
                100.0 * (double)text / (double)total);
    free(L);
    locus_pipeline_close(&p);
    return 0;
}
