/* edit.c — `locus edit` (the paper's text-editing benchmark) and `locus detox` (toxic-text prevention), built
 * on the localize machinery (localize*.c: plan, durable rows, --resume, --shard + `locus merge`, summaries,
 * figures), plus their baselines.
 *
 * Both run, per (A, B) pair and seed, the cells: A unpatched (the reference), B unpatched, A patched with B's
 * text in the chosen layers (one group, all together) from the start step, then the baselines:
 *   edit:  "baseline:p2p tau=F" — Prompt-to-Prompt word swap (Hertz et al. 2022) for models whose text layers
 *          are cross-attention layers (UNets): B's prompt run with A's cross-attention probabilities (the
 *          conditional CFG row, every text layer, all heads, all tokens by position) written over B's for the
 *          first floor(tau * steps) steps.  Tokens are matched by position, as P2P's replace edit does for
 *          prompts of equal token count; when A's and B's words tokenize to different lengths the tokens after
 *          the word are shifted (P2P would need its refinement mapper there).
 *   detox: "baseline:negative-prompt" — A's prompt with the negative prompt  text "<A's word>"; and B unpatched
 *          is the prompt-swap baseline (B's prompt with the same noise).
 * Metrics per row are localize's: OCR against A's word and B's word (precision, recall, acc, exact,
 * Levenshtein) and MSE / SSIM / PSNR against A's image.  Edit reads them against B's word (did the text
 * change?) and A's image (did nothing else?); detox against A's (listed) word, lower is better, and its
 * summary adds "listed_share": the share of a cell kind's images whose OCR text contains any listed word (the
 * authors score toxicity with a RoBERTa classifier, which cannot run here; this substring test replaces it).
 *
 * Detox pairs each listed word with a benign word: index target[i] of the --benign list, target from the
 * pairing over the listed words (the authors' draw over the indices of the toxic list, into the benign list;
 * --pairing paper reproduces it), so the benign list needs at least as many words.
 */
#include "edit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/utf8.h"
#include "../models/unicode.h"
#include "localize_int.h"
#include "presets.h"

/* ------------------------------------------------------------------ Prompt-to-Prompt */

void lz_p2p_init(lz_p2p *q, int ntext, int inject_steps) {
    memset(q, 0, sizeof *q);
    q->record = 1;
    q->ntext = ntext;
    q->inject_steps = inject_steps;
    if (inject_steps > 0 && ntext > 0) {
        q->maps = calloc((size_t)inject_steps * ntext, sizeof(float *));
        q->len = calloc((size_t)inject_steps * ntext, sizeof(size_t));
    }
}

void lz_p2p_free(lz_p2p *q) {
    for (int i = 0; q->maps && i < q->inject_steps * q->ntext; i++) free(q->maps[i]);
    free(q->maps);
    free(q->len);
    q->maps = NULL;
    q->len = NULL;
}

/* record A's / inject into B's conditional row (row 1 of a CFG pair, the only row otherwise) */
static int p2p_probs(void *ctx, const locus_hook_at *at, const locus_attn_probs *site) {
    lz_p2p *q = ctx;
    if (!q->maps || at->step < 0 || at->step >= q->inject_steps || site->index < 0 || site->index >= q->ntext) return 0;
    size_t n = (size_t)site->H * site->Tq * site->Tk, slot = (size_t)at->step * q->ntext + site->index;
    float *row = site->p + (at->cfg && site->B > 1 ? n : 0);
    if (q->record) {
        free(q->maps[slot]);
        q->maps[slot] = malloc(n * sizeof(float));
        if (!q->maps[slot]) return 0;
        memcpy(q->maps[slot], row, n * sizeof(float));
        q->len[slot] = n;
        q->hits++;
        return 0;
    }
    if (!q->maps[slot] || q->len[slot] != n) return 0;
    memcpy(row, q->maps[slot], n * sizeof(float));
    q->hits++;
    return 1;
}

locus_hook_entry lz_p2p_hook(lz_p2p *q) { return (locus_hook_entry){NULL, NULL, NULL, q, p2p_probs}; }

/* ------------------------------------------------------------------ plan */

int lz_experiment_defaults(lz_plan *P, const void *preset_v) {
    const lz_preset *ps = preset_v;
    if (P->experiment == LZ_LOCALIZE) {
        /* the localization sweep: every text layer alone from step 0 (the authors' localization scripts) */
        if (P->start_step < 0) P->start_step = 0;
        return 0;
    }
    if (P->start_step < 0) P->start_step = ps ? ps->start_step : 0;
    if (!P->layers_spec && ps) P->layers_spec = ps->edit_layers;
    if (P->experiment == LZ_DETOX) {
        if (!P->benign_file) return lz_fail("localize", "--benign FILE (the benign words patched in) is required");
        if (!P->words_file) return lz_fail("localize", "--words FILE (the listed words to prevent) is required");
    }
    return 0;
}

int lz_add_baselines(lz_plan *P, const locus_denoiser *den) {
    char label[96];
    if (P->experiment == LZ_EDIT) {
        /* Prompt-to-Prompt needs cross-attention probabilities over the text alone: ask the denoiser */
        locus_layer_info *L = NULL;
        int n = locus_denoiser_layers(den, &L), cross = n > 0;
        for (int i = 0; i < n; i++)
            if (L[i].text_index >= 0 && L[i].kind != LOCUS_LAYER_CROSS) cross = 0;
        free(L);
        if (P->p2p_tau < 0) P->p2p_tau = cross ? 0.4f : 0.0f; /* P2P's usual cross_replace_steps */
        if (P->p2p_tau > 0 && !cross)
            return lz_fail("localize", "--p2p-tau: the Prompt-to-Prompt baseline needs cross-attention text layers (a UNet); this model's text layers are not");
        if (P->p2p_tau > 0) {
            snprintf(label, sizeof label, LZ_BASELINE "p2p tau=%g", (double)P->p2p_tau);
            P->layers = realloc(P->layers, (size_t)(P->nlayers + 1) * sizeof(char *));
            P->layers[P->nlayers++] = strdup(label);
        }
    } else if (P->experiment == LZ_DETOX) {
        if (P->guidance <= 1.0f) return lz_fail("localize", "the negative-prompt baseline needs classifier-free guidance (--guidance > 1)");
        P->layers = realloc(P->layers, (size_t)(P->nlayers + 1) * sizeof(char *));
        P->layers[P->nlayers++] = strdup(LZ_BASELINE "negative-prompt");
    }
    return 0;
}

int lz_benign_targets(lz_plan *P) {
    char *data;
    size_t len;
    if (locus_read_file(P->benign_file, &data, &len)) return lz_fail("localize", "%s", locus_errmsg());
    int n = 0, cap = 64;
    char **w = malloc((size_t)cap * sizeof(char *)), *save = NULL;
    for (char *ln = strtok_r(data, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        size_t l = strlen(ln);
        while (l && (ln[l - 1] == '\r' || ln[l - 1] == ' ' || ln[l - 1] == '\t')) ln[--l] = 0;
        while (*ln == ' ' || *ln == '\t') ln++;
        if (!*ln) continue;
        if (n == cap) w = realloc(w, (size_t)(cap *= 2) * sizeof(char *));
        w[n++] = ln;
    }
    int rc = 0;
    if (n < P->nitems) rc = lz_fail("localize", "%s: %d benign words for %d listed words (needs at least as many)", P->benign_file, n, P->nitems);
    for (int i = 0; !rc && i < P->nitems; i++) {
        lz_item *it = &P->items[i];
        const char *b = w[P->target[i]];
        if (!locus_utf8_valid(b, strlen(b))) { rc = lz_fail("localize", "%s: not valid UTF-8 text", P->benign_file); break; }
        it->word_b = strdup(b);
        locus_strbuf sb = {0};
        const char *at = strstr(P->template, "{}");
        locus_sb_putn(&sb, P->template, (size_t)(at - P->template));
        locus_sb_puts(&sb, b);
        locus_sb_puts(&sb, at + 2);
        it->prompt_b = locus_sb_take(&sb);
        if (!it->word_b || !it->prompt_b) rc = lz_fail("localize", "out of memory");
    }
    free(w);
    free(data);
    return rc;
}

/* lower-cased UTF-8 (Python str.lower()) */
static char *lower_utf8(const char *s) {
    locus_ustr u = {0};
    locus_ustr_from_utf8(&u, s, strlen(s));
    locus_uc_lower(&u);
    char *o = locus_ustr_to_utf8(&u, NULL);
    locus_ustr_free(&u);
    return o;
}

int lz_ocr_lists_word(const lz_plan *P, const char *ocr) {
    char *lo = lower_utf8(ocr ? ocr : "");
    int hit = 0;
    for (int i = 0; i < P->nitems && !hit; i++) {
        char *w = lower_utf8(P->items[i].word);
        hit = *w && strstr(lo, w) != NULL;
        free(w);
    }
    free(lo);
    return hit;
}

/* ------------------------------------------------------------------ baseline runs */

locus_status lz_run_baseline(const lz_plan *P, locus_pipeline *p, const locus_run_opts *o, int it, const char *label, const locus_embeds *eb,
                             lz_p2p *q, uint8_t *pix) {
    if (!strncmp(label, LZ_BASELINE "p2p", strlen(LZ_BASELINE "p2p"))) {
        locus_hooks h;
        locus_hooks_init(&h);
        locus_hooks_add(&h, lz_p2p_hook(q));
        q->record = 0;
        q->hits = 0;
        locus_status st = locus_run_image(p, o, eb, &h, pix);
        if (!st && q->inject_steps > 0 && !q->hits)
            st = locus_fail(LOCUS_E_UNSUPPORTED, "Prompt-to-Prompt: no attention maps of A were injected (no cross-attention text layers?)");
        return st;
    }
    if (!strcmp(label, LZ_BASELINE "negative-prompt")) {
        locus_strbuf neg = {0};
        locus_sb_printf(&neg, "text \"%s\"", P->items[it].word);
        if (locus_sb_status(&neg)) return locus_fail(LOCUS_E_NOMEM, "out of memory");
        locus_embeds e;
        locus_status st = locus_embeds_encode(p, P->items[it].prompt, locus_sb_str(&neg), 1, P->max_seq, &e);
        locus_sb_free(&neg);
        if (st) return st;
        st = locus_run_image(p, o, &e, NULL, pix);
        locus_embeds_free(&e);
        return st;
    }
    return locus_fail(LOCUS_E_ARG, "unknown baseline %s", label);
}

int locus_cmd_edit(int argc, char **argv) { return lz_main(argc, argv, LZ_EDIT); }
int locus_cmd_detox(int argc, char **argv) { return lz_main(argc, argv, LZ_DETOX); }
