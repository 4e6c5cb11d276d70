/* test_t5.c — the SD3 text encoders against their goldens: T5 v1.1 (tests/golden/text/t5: embeddings, every
 * block output, last_hidden_state unmasked and masked, the 160-token input, the relative-position buckets)
 * and OpenCLIP-G (tests/golden/text/clip_g: penultimate hidden state, pooled, text_embeds), within 1e-4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/t5.h"
#include "../models/textenc.h"
#include "parity.h"
#include "testutil.h"


static void test_t5(const char *G) {
    char p[512];
    locus_t5 t;
    snprintf(p, sizeof p, "%s/text/t5/text_encoder", G);
    if (locus_t5_load(&t, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/text/t5/golden_text_encoder.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    /* buckets for relative positions -200..200 */
    int64_t bk[401];
    locus_st_to_i64(locus_st_find(&g, "act.relative_position_bucket"), bk, 401);
    int bad = 0;
    for (int r = -200; r <= 200; r++) bad += locus_t5_bucket(r, t.buckets, t.max_distance) != bk[r + 200];
    CHECK(bad == 0, "T5 relative position buckets (%d of 401 differ)", bad);
    int B = 0, T = 0;
    int64_t *ids = golden_ids(&g, "input.input_ids", &B, &T), *mask = malloc(sizeof(int64_t) * B * T);
    CHECK(ids != NULL, "golden input.input_ids");
    if (!ids) return;
    locus_st_to_i64(locus_st_find(&g, "input.attention_mask"), mask, (int64_t)B * T);
    size_t N = (size_t)B * T * t.D;
    float *last = malloc(N * 4), *pen = malloc(N * 4);
    parity_ctx pa = {&g, "act.", 0, 0, 0, "", 0}, po = {&g, "output.", 0, 0, 0, "", 0};
    parity_pair tw = {&pa, &po};
    locus_hooks hooks = locus_hooks_one(parity_pair_hook, &tw);
    locus_t5_forward(&t, ids, B, T, NULL, last, t.nlayers - 1, pen, &hooks);
    double rl = parity_rel(&g, "output.last_hidden_state", last, (int64_t)N), rp = parity_rel(&g, "output.penultimate", pen, (int64_t)N);
    printf("t5 parity: %d act + %d output probes, worst %.2e (%s) / %.2e (%s); last_hidden_state %.2e penultimate %.2e\n", pa.matched, po.matched,
           pa.worst, pa.worst_name, po.worst, po.worst_name, rl, rp);
    CHECK(pa.matched == 2 && po.matched == 4 && pa.worst <= 1e-4 && po.worst <= 1e-4, "T5 per-block outputs within 1e-4");
    CHECK(rl >= 0 && rl <= 1e-4 && rp >= 0 && rp <= 1e-4, "T5 last_hidden_state/penultimate within 1e-4");
    locus_t5_forward(&t, ids, B, T, mask, last, -1, NULL, NULL);
    double rm = parity_rel(&g, "output.masked.last_hidden_state", last, (int64_t)N);
    CHECK(rm >= 0 && rm <= 1e-4, "T5 with attention mask within 1e-4 (%.2e)", rm);
    const locus_st_tensor *lt = locus_st_find(&g, "input.long_input_ids");
    int TL = (int)lt->shape[1];
    int64_t *lids = malloc(sizeof(int64_t) * TL);
    float *ll = malloc((size_t)TL * t.D * 4);
    locus_st_to_i64(lt, lids, TL);
    locus_t5_forward(&t, lids, 1, TL, NULL, ll, -1, NULL, NULL);
    double rlong = parity_rel(&g, "output.long.last_hidden_state", ll, (int64_t)TL * t.D);
    printf("t5 masked %.2e, 160 tokens %.2e\n", rm, rlong);
    CHECK(rlong >= 0 && rlong <= 1e-4, "T5 160-token input within 1e-4 (%.2e)", rlong);
    free(ids); free(mask); free(last); free(pen); free(lids); free(ll);
    locus_st_close(&g);
    locus_t5_free(&t);
}

static void test_clip_g(const char *G) {
    char p[512];
    locus_textenc t;
    snprintf(p, sizeof p, "%s/text/clip_g/text_encoder", G);
    if (locus_textenc_load(&t, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/text/clip_g/golden_text_encoder.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    int B = 0, T = 0;
    int64_t *ids = golden_ids(&g, "input.input_ids", &B, &T);
    CHECK(ids != NULL, "golden input.input_ids");
    if (!ids) return;
    size_t N = (size_t)B * T * t.D;
    float *last = malloc(N * 4), *pen = malloc(N * 4), *pooled = malloc((size_t)B * t.D * 4), *te = malloc((size_t)B * t.proj_dim * 4);
    parity_ctx pa = {&g, "act.", 0, 0, 0, "", 0}, po = {&g, "output.", 0, 0, 0, "", 0};
    parity_pair tw = {&pa, &po};
    locus_hooks hooks = locus_hooks_one(parity_pair_hook, &tw);
    locus_textenc_forward(&t, ids, B, T, last, t.nlayers - 1, pen, pooled, te, &hooks);
    double r1 = parity_rel(&g, "output.last_hidden_state", last, (int64_t)N), r2 = parity_rel(&g, "output.penultimate", pen, (int64_t)N),
           r3 = parity_rel(&g, "output.pooler_output", pooled, (int64_t)B * t.D), r4 = parity_rel(&g, "output.text_embeds", te, (int64_t)B * t.proj_dim);
    printf("clip_g parity: %d act + %d output probes, worst %.2e / %.2e; last %.2e penultimate %.2e pooled %.2e text_embeds %.2e\n", pa.matched,
           po.matched, pa.worst, po.worst, r1, r2, r3, r4);
    CHECK(pa.matched == 3 && pa.worst <= 1e-4 && po.worst <= 1e-4, "OpenCLIP-G probes within 1e-4");
    CHECK(r1 >= 0 && r1 <= 1e-4 && r2 >= 0 && r2 <= 1e-4 && r3 >= 0 && r3 <= 1e-4 && r4 >= 0 && r4 <= 1e-4, "OpenCLIP-G outputs within 1e-4");
    free(ids); free(last); free(pen); free(pooled); free(te);
    locus_st_close(&g);
    locus_textenc_free(&t);
}

int main(void) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    test_t5(G);
    test_clip_g(G);
    return t_finish("test_t5");
}
