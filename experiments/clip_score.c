/* clip_score.c — `locus clip-score`: the paper's CLIP-T (the authors' clipscore.py) for a set of PNG images
 * against a set of prompts, with an optional dump of every intermediate (names as tests/golden/clip).
 *
 * Only 8-bit RGB and 8-bit gray PNGs are accepted: the reference reads images with PIL, which resizes RGBA
 * premultiplied, palette images with nearest-neighbour and 16-bit images in another mode, so those would
 * not give the reference's pixels (convert them to 8-bit RGB first).
 */
#include "clip_score.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/png.h"
#include "../core/safetensors.h"
#include "../core/version.h"
#include "../models/clip.h"
#include "../simd/kernels.h"
#include "cli_opts.h"

/* The PNG header: 8-bit gray (0) or 8-bit RGB (2) only, as PIL modes L and RGB.  Other files are left to
 * the PNG reader's own error. */
static locus_status png_mode_check(const char *path) {
    unsigned char h[26];
    FILE *f = fopen(path, "rb");
    if (!f) return LOCUS_OK;
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n < sizeof h || memcmp(h + 1, "PNG", 3) || memcmp(h + 12, "IHDR", 4)) return LOCUS_OK;
    int depth = h[24], ct = h[25];
    if ((ct == 0 || ct == 2) && depth == 8) return LOCUS_OK;
    static const char *names[7] = {"gray", "?", "RGB", "palette", "gray+alpha", "?", "RGBA"};
    return locus_fail(LOCUS_E_UNSUPPORTED, "%s: %d-bit %s PNG: only 8-bit RGB or gray images are scored (PIL preprocesses other modes "
                      "differently; convert to 8-bit RGB)", path, depth, ct < 7 ? names[ct] : "?");
}

typedef struct {
    const char *clip, *dump;
    const char **images, **prompts;
    int nimg, nprompt;
    long threads;
} cs_args;

/* Collects the values after --image / --prompt until the next option. */
static int parse(int argc, char **argv, cs_args *a) {
    memset(a, 0, sizeof *a);
    a->images = calloc((size_t)argc, sizeof *a->images);
    a->prompts = calloc((size_t)argc, sizeof *a->prompts);
    if (!a->images || !a->prompts) { locus_fail(LOCUS_E_NOMEM, "out of memory"); return -1; }
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--image") || !strcmp(o, "--prompt")) {
            int img = o[2] == 'i', k = 0;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                if (img) a->images[a->nimg++] = argv[++i];
                else a->prompts[a->nprompt++] = argv[++i];
                k++;
            }
            if (!k) { locus_fail(LOCUS_E_ARG, "%s needs at least one value", o); return -1; }
        } else if ((!strcmp(o, "--clip") || !strcmp(o, "--dump") || !strcmp(o, "--threads")) && i + 1 < argc) {
            const char *v = argv[++i];
            if (o[2] == 'c') a->clip = v;
            else if (o[2] == 'd') a->dump = v;
            else {
                char *end;
                a->threads = strtol(v, &end, 10);
                if (*end || a->threads < 1 || a->threads > 1024) { locus_fail(LOCUS_E_ARG, "--threads %s: want 1..1024", v); return -1; }
            }
        } else {
            locus_fail(LOCUS_E_ARG, "unknown or incomplete option %s (usage: locus clip-score --clip DIR --image PNG... --prompt TEXT... "
                       "[--dump FILE] [--threads N])", o);
            return -1;
        }
    }
    if (!a->clip || !a->nimg || !a->nprompt) { locus_fail(LOCUS_E_ARG, "--clip DIR, --image PNG... and --prompt TEXT... are required"); return -1; }
    return 0;
}

static locus_status dump_add(locus_st_writer *w, const char *name, locus_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3, int ndim,
                             const void *data) {
    int64_t shape[4] = {d0, d1, d2, d3};
    return locus_st_writer_add(w, name, dt, ndim, shape, data);
}

static const locus_opt cs_opts[] = { /* the options parse() accepts, for --help */
    LOCUS_OPT_HELP("--clip", "DIR  Hugging Face CLIP folder, e.g. openai/clip-vit-base-patch32 (required)"),
    LOCUS_OPT_HELP("--image", "PNG...  8-bit RGB or gray images, every value up to the next option (required)"),
    LOCUS_OPT_HELP("--prompt", "TEXT...  prompts, every value up to the next option (required)"),
    LOCUS_OPT_HELP("--dump", "FILE  safetensors file of every intermediate (pixels, embeddings, cosines, scores) (default: none)"),
    LOCUS_OPT_HELP("--threads", "N  threads (default: all cores; results do not change)"),
};
static const locus_help cs_help = {
    "clip-score", "--clip DIR --image PNG... --prompt TEXT... [--dump FILE] [--threads N]",
    "The paper's CLIP-T: 2.5 * max(cos, 0) of every image with every prompt, OpenAI CLIP as the authors' clipscore.py.",
    "Preprocessing as clip.py (PIL-exact bicubic resize, centre crop, normalisation); one line per image and prompt.\n",
    NULL};

int locus_cmd_clip_score(int argc, char **argv) {
    for (int i = 1; i < argc; i++) /* values never start with "--" here (see parse) */
        if (!strcmp(argv[i], "--help") || (i == 1 && !strcmp(argv[i], "-h"))) {
            locus_help_print(stdout, &cs_help, cs_opts, sizeof cs_opts / sizeof *cs_opts, NULL, 0);
            return 0;
        }
    cs_args a;
    locus_clip c;
    int opened = 0, rc = 2;
    float *pix = NULL, *img = NULL, *txt = NULL, *cosv = NULL, *score = NULL;
    int64_t *ids = NULL;
    locus_st_writer *w = NULL;
#define TRY(x) do { if ((x) != LOCUS_OK) goto out; } while (0)
    if (parse(argc, argv, &a)) goto out;
    if (a.threads) locus_set_threads((int)a.threads);
    for (int i = 0; i < a.nimg; i++) TRY(png_mode_check(a.images[i]));
    TRY(locus_clip_open(&c, a.clip));
    opened = 1;
    int I = a.nimg, J = a.nprompt, E = c.proj_dim, N = c.image_size, T = c.context;
    size_t np = (size_t)3 * N * N;
    pix = malloc(np * I * sizeof *pix);         /* [I,3,N,N] */
    img = malloc((size_t)I * E * sizeof *img);  /* [I,E] */
    txt = malloc((size_t)J * E * sizeof *txt);  /* [J,E] */
    ids = malloc((size_t)J * T * sizeof *ids);  /* [J,T] */
    cosv = malloc((size_t)I * J * sizeof *cosv); /* [I,J] */
    score = malloc((size_t)I * J * sizeof *score); /* [I,J] */
    if (!pix || !img || !txt || !ids || !cosv || !score) { locus_fail(LOCUS_E_NOMEM, "out of memory"); goto out; }
    for (int i = 0; i < I; i++) {
        uint8_t *rgb = NULL;
        int W = 0, H = 0;
        TRY(locus_png_read_rgb(a.images[i], &rgb, &W, &H));
        locus_status st = locus_clip_embed_image(&c, rgb, W, H, img + (size_t)i * E, pix + np * i);
        free(rgb);
        if (st) { locus_fail(st, "%s: %s", a.images[i], locus_errmsg()); goto out; }
    }
    for (int j = 0; j < J; j++) TRY(locus_clip_embed_text(&c, a.prompts[j], txt + (size_t)j * E, ids + (size_t)j * T));
    for (int i = 0; i < I; i++)
        for (int j = 0; j < J; j++) {
            cosv[i * J + j] = locus_clip_cosine(img + (size_t)i * E, txt + (size_t)j * E, E);
            score[i * J + j] = locus_clip_t(cosv[i * J + j]);
        }
    if (a.dump) {
        w = locus_st_writer_new();
        if (!w) { locus_fail(LOCUS_E_NOMEM, "out of memory"); goto out; }
        char name[64];
        for (int i = 0; i < I; i++) {
            snprintf(name, sizeof name, "img%d.pixel_values", i);
            TRY(dump_add(w, name, LOCUS_F32, 1, 3, N, N, 4, pix + np * i));
            snprintf(name, sizeof name, "img%d.image_embeds", i);
            TRY(dump_add(w, name, LOCUS_F32, 1, E, 0, 0, 2, img + (size_t)i * E));
        }
        for (int j = 0; j < J; j++) {
            snprintf(name, sizeof name, "prompt%d.input_ids", j);
            TRY(dump_add(w, name, LOCUS_I64, 1, T, 0, 0, 2, ids + (size_t)j * T));
            snprintf(name, sizeof name, "prompt%d.text_embeds", j);
            TRY(dump_add(w, name, LOCUS_F32, 1, E, 0, 0, 2, txt + (size_t)j * E));
        }
        TRY(dump_add(w, "cos", LOCUS_F32, I, J, 0, 0, 2, cosv));
        TRY(dump_add(w, "clip_score", LOCUS_F32, I, J, 0, 0, 2, score));
        TRY(locus_st_writer_add_meta(w, "clip", a.clip));
        TRY(locus_st_writer_add_meta(w, "isa", locus_isa_name()));
        TRY(locus_st_writer_add_meta(w, "locus_version", LOCUS_VERSION));
        TRY(locus_st_writer_save(w, a.dump));
    }
    /* the table: images as rows, prompts as columns, then the mean over images (the paper's CLIP-T) */
    printf("# CLIP-T = 2.5 * max(cos, 0); clip %s (image %d px, embeddings %d), isa %s\n", a.clip, N, E, locus_isa_name());
    for (int j = 0; j < J; j++) printf("# prompt%d: %s\n", j, a.prompts[j]);
    printf("%-40s", "image");
    for (int j = 0; j < J; j++) printf(" %10s%d", "prompt", j);
    printf("\n");
    for (int i = 0; i < I; i++) {
        printf("%-40s", a.images[i]);
        for (int j = 0; j < J; j++) printf(" %11.6f", score[i * J + j]);
        printf("\n");
    }
    printf("%-40s", "mean");
    for (int j = 0; j < J; j++) {
        double s = 0;
        for (int i = 0; i < I; i++) s += score[i * J + j];
        printf(" %11.6f", s / I);
    }
    printf("\n");
    rc = 0;
out:
#undef TRY
    if (rc) fprintf(stderr, "locus clip-score: %s\n", locus_errmsg());
    if (opened) locus_clip_close(&c);
    locus_st_writer_free(w);
    free(pix); free(img); free(txt); free(ids); free(cosv); free(score);
    free(a.images); free(a.prompts);
    return rc;
}
