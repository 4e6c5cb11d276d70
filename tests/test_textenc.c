/* test_textenc.c — text encoders against their goldens: LDMBert (tests/golden/ldm/golden_text_encoder, every
 * act.* and last_hidden_state) and CLIP-L (tests/golden/text/clip_l: embeddings, every layer output,
 * penultimate, last_hidden_state, pooled, text_embeds and the act.* probes), within 1e-4 relative. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/textenc.h"
#include "parity.h"
#include "testutil.h"


static int count_prefix(const locus_st_file *g, const char *p) {
    int n = 0;
    for (size_t i = 0; i < g->count; i++) n += !strncmp(g->tensors[i].name, p, strlen(p));
    return n;
}

static void run(const char *G, const char *dir, const char *golden, const char *label) {
    char p[512];
    locus_textenc t;
    snprintf(p, sizeof p, "%s/%s", G, dir);
    if (locus_textenc_load(&t, p)) { CHECK(0, "%s: %s", label, locus_errmsg()); return; }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/%s", G, golden);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); locus_textenc_free(&t); return; }
    int B = 0, T = 0;
    int64_t *ids = golden_ids(&g, "input.input_ids", &B, &T);
    CHECK(ids != NULL, "golden input.input_ids");
    if (!ids) return;
    size_t N = (size_t)B * T * t.D;
    float *last = malloc(N * 4), *pen = malloc(N * 4), *pooled = malloc((size_t)B * t.D * 4), *te = malloc((size_t)B * t.D * 4);
    parity_ctx pa = {&g, "act.", 0, 0, 0, "", 0}, po = {&g, "output.", 0, 0, 0, "", 0};
    parity_pair tw = {&pa, &po};
    locus_hooks hooks = locus_hooks_one(parity_pair_hook, &tw);
    CHECK(locus_textenc_forward(&t, ids, B, T, last, t.nlayers - 1, pen, pooled, te, &hooks) == LOCUS_OK, "%s forward: %s", label, locus_errmsg());
    double rl = parity_rel(&g, "output.last_hidden_state", last, (int64_t)N);
    int nact = count_prefix(&g, "act.");
    printf("%s parity: %d act + %d output probes, worst %.2e (%s) / %.2e (%s); last_hidden_state %.2e\n", label, pa.matched, po.matched,
           pa.worst, pa.worst_name, po.worst, po.worst_name, rl);
    CHECK(pa.matched == nact && pa.worst <= 1e-4 && po.worst <= 1e-4, "%s: every act.* probe within 1e-4", label);
    CHECK(rl >= 0 && rl <= 1e-4, "%s last_hidden_state within 1e-4 (%.2e)", label, rl);
    if (t.kind == LOCUS_TEXT_CLIP) {
        double rp = parity_rel(&g, "output.penultimate", pen, (int64_t)N), rpo = parity_rel(&g, "output.pooler_output", pooled, (int64_t)B * t.D),
               rt = parity_rel(&g, "output.text_embeds", te, (int64_t)B * t.proj_dim);
        printf("%s: penultimate %.2e pooled %.2e text_embeds %.2e\n", label, rp, rpo, rt);
        CHECK(rp >= 0 && rp <= 1e-4 && rpo >= 0 && rpo <= 1e-4 && rt >= 0 && rt <= 1e-4, "%s pooled/projection within 1e-4", label);
        CHECK(po.matched >= 4, "%s: per-layer outputs compared (%d)", label, po.matched);
        /* clip skip 1 = final LN of the penultimate layer (SD2.x, A1111 "clip skip 2") */
        locus_textenc_clip_skip(&t, ids, B, T, 1, pen);
        double rs = parity_rel(&g, "output.penultimate_final_ln", pen, (int64_t)N);
        printf("%s: clip skip 1 (penultimate + final LN) %.2e\n", label, rs);
        CHECK(rs >= 0 && rs <= 1e-4, "%s clip skip within 1e-4 (%.2e)", label, rs);
        CHECK(locus_textenc_clip_skip(&t, ids, B, T, t.nlayers, pen) == LOCUS_E_ARG, "%s clip skip out of range refused", label);
    }
    /* bad input: id outside the vocabulary */
    int64_t bad[2] = {0, 1 << 30};
    CHECK(locus_textenc_forward(&t, bad, 1, 2, last, -1, NULL, NULL, NULL, NULL) == LOCUS_E_ARG && strstr(locus_errmsg(), "vocabulary"),
          "%s: out-of-vocabulary id rejected", label);
    free(ids); free(last); free(pen); free(pooled); free(te);
    locus_st_close(&g);
    locus_textenc_free(&t);
}

int main(void) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    run(G, "ldm/text_encoder", "ldm/golden_text_encoder.safetensors", "ldmbert");
    run(G, "text/clip_l/text_encoder", "text/clip_l/golden_text_encoder.safetensors", "clip_l");
    return t_finish("test_textenc");
}
