/* lora_cmd.c — `locus lora list FILE` (what a LoRA file holds) and `locus lora merge` (fold LoRA files into a
 * denoiser's weights and write the merged component folder).
 *
 * list needs no model: keys are grouped by module path after removing the factor suffix (any of the formats
 * lora.c reads), and per module the rank, alpha (kohya .alpha tensor, else the file's metadata, else r) and
 * the Frobenius norms of down, up and of the product scale * up.down are printed.  merge loads the denoiser,
 * reads each --lora FILE[:SCALE] (resolving keys against the model as generation does), folds it in with
 * locus_lora_merge, and writes OUTDIR/config.json (copied) and OUTDIR/diffusion_pytorch_model.safetensors:
 * every tensor of the original checkpoint in its original dtype and bytes, except the merged Linear weights,
 * which are written as F32.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fileio.h"
#include "../core/safetensors.h"
#include "../models/denoiser.h"
#include "../models/lora.h"
#include "cli_opts.h"
#include "train_lora.h"

static int fail(const char *what, const char *msg) {
    fprintf(stderr, "locus: lora %s: %s\n", what, msg);
    return 2;
}

/* Module stem and factor kind (0 down, 1 up, 2 alpha, -1 other) of a key. */
static int key_stem(const char *key, char *stem, size_t n) {
    static const char *sufs[] = {".lora.down.weight", ".lora_A.weight", ".lora_down.weight", "_lora.down.weight",
                                 ".lora.up.weight",   ".lora_B.weight", ".lora_up.weight",   "_lora.up.weight", ".alpha"};
    size_t kl = strlen(key);
    for (int i = 0; i < 9; i++) {
        size_t sl = strlen(sufs[i]);
        if (kl > sl && !strcmp(key + kl - sl, sufs[i]) && kl - sl < n) {
            memcpy(stem, key, kl - sl);
            stem[kl - sl] = 0;
            return i < 4 ? 0 : i < 8 ? 1 : 2;
        }
    }
    return -1;
}

static double frob(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

static int cmd_list(const char *path) {
    locus_st_file f;
    if (locus_st_open(&f, path)) return fail("list", locus_errmsg());
    const locus_json *md = locus_json_get(f.header.root, "__metadata__");
    const char *ma = md ? locus_json_str(md, "alpha", NULL, NULL) : NULL;
    double meta_alpha = ma ? atof(ma) : 0;
    printf("%-80s %5s %8s %10s %10s %10s\n", "module", "rank", "alpha", "|down|", "|up|", "|delta|");
    int modules = 0, other = 0;
    size_t params = 0;
    char stem[1024], s2[1024];
    for (size_t i = 0; i < f.count; i++) {
        int k = key_stem(f.tensors[i].name, stem, sizeof stem);
        if (k != 0) { other += k < 0; continue; }
        const locus_st_tensor *d = &f.tensors[i], *u = NULL, *a = NULL;
        for (size_t j = 0; j < f.count; j++) {
            int kj = key_stem(f.tensors[j].name, s2, sizeof s2);
            if (kj > 0 && !strcmp(s2, stem)) *(kj == 1 ? &u : &a) = &f.tensors[j];
        }
        if (!u || d->ndim != 2 || u->ndim != 2 || u->shape[1] != d->shape[0]) {
            printf("%-80s (no matching up factor or bad shapes)\n", stem);
            continue;
        }
        int r = (int)d->shape[0];
        size_t nd = (size_t)locus_st_numel(d), nu = (size_t)locus_st_numel(u);
        float *dv = malloc(nd * sizeof(float)), *uv = malloc(nu * sizeof(float)), av = 0;
        if (!dv || !uv || locus_st_to_f32(d, dv, (int64_t)nd) || locus_st_to_f32(u, uv, (int64_t)nu)) {
            free(dv); free(uv); locus_st_close(&f);
            return fail("list", locus_errmsg());
        }
        double alpha = a && !locus_st_to_f32(a, &av, 1) ? av : meta_alpha > 0 ? meta_alpha : r;
        /* |scale * up.down| in double (a display; the merge itself runs in fp32 through the GEMM) */
        int64_t out = u->shape[0], in = d->shape[1];
        double s = 0;
        for (int64_t o = 0; o < out; o++)
            for (int64_t c = 0; c < in; c++) {
                double acc = 0;
                for (int q = 0; q < r; q++) acc += (double)uv[o * r + q] * dv[q * in + c];
                s += acc * acc;
            }
        printf("%-80s %5d %8.4g %10.4g %10.4g %10.4g\n", stem, r, alpha, frob(dv, nd), frob(uv, nu), sqrt(s) * alpha / r);
        modules++;
        params += nd + nu;
        free(dv); free(uv);
    }
    printf("%d adapters, %zu parameters%s\n", modules, params, other ? " (and keys that are not LoRA factors)" : "");
    locus_st_close(&f);
    return 0;
}

static const locus_opt merge_opts[] = { /* the options cmd_merge parses, for --help */
    LOCUS_OPT_HELP("--model", "DIR  pipeline or denoiser component folder (required)"),
    LOCUS_OPT_HELP("--lora", "FILE[:SCALE]  adapters to fold in, repeatable up to 64 (required; scale default 1)"),
    LOCUS_OPT_HELP("-o", "OUTDIR  the merged component folder: config.json + diffusion_pytorch_model.safetensors (required)"),
};
static const locus_help lora_help = {
    "lora", "list FILE\nmerge --model DIR --lora FILE[:SCALE] [--lora ...] -o OUTDIR",
    "Inspect a LoRA file (diffusers, PEFT or kohya keys) or fold adapters into a denoiser's weights.",
    "list: one line per adapter (module, rank, alpha, factor norms, the update's scale).  merge: W += scale (alpha/r) up.down\n"
    "for every adapter; the merged weights are written as F32, the others as they were.\n",
    "list merge"};
static const locus_help lora_merge_help = {
    "lora merge", "--model DIR --lora FILE[:SCALE] [--lora ...] -o OUTDIR",
    "Fold LoRA adapters into a denoiser's weights and write the merged component folder.", NULL, NULL};

static int cmd_merge(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            locus_help_print(stdout, &lora_merge_help, merge_opts, sizeof merge_opts / sizeof *merge_opts, NULL, 0);
            return 0;
        }
    const char *model = NULL, *out = NULL, *loras[64];
    int nl = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) return fail("merge", "usage: locus lora merge --model DIR --lora FILE[:SCALE] [--lora ...] -o OUTDIR");
        if (!strcmp(argv[i], "--model")) model = argv[++i];
        else if (!strcmp(argv[i], "-o")) out = argv[++i];
        else if (!strcmp(argv[i], "--lora") && nl < 64) loras[nl++] = argv[++i];
        else return fail("merge", "usage: locus lora merge --model DIR --lora FILE[:SCALE] [--lora ...] -o OUTDIR");
    }
    if (!model || !out || !nl) return fail("merge", "usage: locus lora merge --model DIR --lora FILE[:SCALE] [--lora ...] -o OUTDIR");
    char comp[4096];
    snprintf(comp, sizeof comp, "%s/unet", model);
    if (!locus_is_dir(comp)) snprintf(comp, sizeof comp, "%s/transformer", model);
    if (!locus_is_dir(comp)) snprintf(comp, sizeof comp, "%s", model);
    char cfgp[4200];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", comp);
    char *cfgtext;
    size_t cfglen;
    if (locus_read_file(cfgp, &cfgtext, &cfglen)) return fail("merge", locus_errmsg());
    locus_denoiser den;
    locus_loader_set_plain_weights(1);
    locus_status st = locus_denoiser_open(&den, comp, NULL);
    locus_loader_set_plain_weights(0);
    if (st) { free(cfgtext); return fail("merge", locus_errmsg()); }
    locus_loader *L = den.loader;
    char **merged = NULL;
    int nmerged = 0;
    for (int i = 0; i < nl && !st; i++) {
        char path[4096];
        float w;
        locus_lora s;
        if ((st = locus_lora_parse_spec(loras[i], path, sizeof path, &w)) || (st = locus_lora_read(&s, L, path, w))) break;
        locus_lora_merge(&s);
        char **nm = realloc(merged, (size_t)(nmerged + s.n) * sizeof *nm);
        if (!nm) { locus_lora_free(&s); st = locus_fail(LOCUS_E_NOMEM, "out of memory"); break; }
        merged = nm;
        for (int k = 0; k < s.n; k++) {
            char buf[1100];
            snprintf(buf, sizeof buf, "%s.weight", s.e[k].module);
            int dup = 0;
            for (int q = 0; q < nmerged && !dup; q++) dup = !strcmp(merged[q], buf);
            if (!dup) merged[nmerged++] = strdup(buf);
        }
        fprintf(stderr, "locus: lora merge: %s (%d adapters, weight %g) folded in\n", path, s.n, w);
        locus_lora_free(&s);
    }
    char op[4200];
    locus_st_stream *ws = NULL;
    if (!st) st = locus_mkdir(out);
    snprintf(op, sizeof op, "%s/config.json", out);
    if (!st) st = locus_write_atomic(op, cfgtext, cfglen);
    snprintf(op, sizeof op, "%s/diffusion_pytorch_model.safetensors", out);
    if (!st) st = locus_st_stream_open(&ws, op);
    size_t total = 0;
    for (size_t fi = 0; !st && fi < L->st.nfiles; fi++)
        for (size_t i = 0; !st && i < L->st.files[fi].count; i++) {
            const locus_st_tensor *t = &L->st.files[fi].tensors[i];
            int mg = 0;
            for (int k = 0; k < nmerged && !mg; k++) mg = !strcmp(merged[k], t->name);
            if (mg) {
                const locus_param_rec *p = locus_loader_find_param(L, t->name);
                if (!p || p->packed) st = locus_fail(LOCUS_E_NOTFOUND, "merged weight %s not found in plain layout", t->name);
                else st = locus_st_stream_add(ws, t->name, LOCUS_F32, t->ndim, t->shape, p->data);
            } else st = locus_st_stream_add(ws, t->name, t->dtype, t->ndim, t->shape, t->data);
            total++;
        }
    if (ws) {
        locus_status cs = locus_st_stream_close(ws, st == LOCUS_OK);
        if (!st) st = cs;
    }
    for (int k = 0; k < nmerged; k++) free(merged[k]);
    free(merged);
    free(cfgtext);
    locus_denoiser_close(&den);
    if (st) return fail("merge", locus_errmsg());
    fprintf(stderr, "locus: lora merge: wrote %s (%zu tensors, %d merged weights as F32)\n", out, total, nmerged);
    return 0;
}

int locus_cmd_lora(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        locus_help_print(stdout, &lora_help, merge_opts, sizeof merge_opts / sizeof *merge_opts, NULL, 0);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "list") && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        static const locus_help h = {"lora list", "FILE", "List the adapters of a LoRA file: module, rank, alpha, factor norms and the update's scale.", NULL, NULL};
        locus_help_print(stdout, &h, NULL, 0, NULL, 0);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "list")) return cmd_list(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "merge")) return cmd_merge(argc - 1, argv + 1);
    fprintf(stderr, "locus: usage: locus lora list FILE | locus lora merge --model DIR --lora FILE[:SCALE] [--lora ...] -o OUTDIR\n");
    return 2;
}
