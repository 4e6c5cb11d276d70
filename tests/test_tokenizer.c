/* test_tokenizer.c — the CLIP and T5 tokenizers against tests/golden/text/tokenizer/cases.json (openai
 * SimpleTokenizer with ftfy; SentencePiece with spiece.model): every case, ASCII and Unicode, must match
 * exactly.  Also the sd15-tiny pipeline prompts (padded to 77). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../models/pipeline.h"
#include "../models/tokenizer_bert.h"
#include "../models/unicode.h"
#include "../core/safetensors.h"
#include "../core/arena.h"
#include <math.h>
#include "golden/unicode_check.h"
#include "../models/tokenizer_clip.h"
#include "../models/tokenizer_sp.h"
#include "parity.h"
#include "testutil.h"

typedef struct { uint64_t h; } fnv_t;
static void fnv_add(fnv_t *f, uint32_t v) {
    for (int k = 0; k < 4; k++) { f->h ^= (v >> (8 * k)) & 0xFF; f->h *= 0x100000001b3ull; }
}

/* models/unicode.c against Python's unicodedata / str methods: hashes over every code point and over seeded
 * combining sequences (tests/golden/unicode_check.h) */
static void test_unicode(void) {
    fnv_t hc = {0xcbf29ce484222325ull}, hs = hc, hl = hc, hd = hc, hn = hc, hq = hc;
    locus_ustr u = {0};
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        fnv_add(&hc, locus_uc_category(cp));
        fnv_add(&hs, (uint32_t)locus_uc_is_space(cp));
        u.n = 0; locus_ustr_push(&u, cp); locus_uc_lower(&u);
        for (size_t k = 0; k < u.n; k++) fnv_add(&hl, u.cp[k]);
        fnv_add(&hl, 0xFFFFFFFFu);
        u.n = 0; locus_ustr_push(&u, cp); locus_uc_nfd(&u);
        for (size_t k = 0; k < u.n; k++) fnv_add(&hd, u.cp[k]);
        fnv_add(&hd, 0xFFFFFFFFu);
        u.n = 0; locus_ustr_push(&u, cp); locus_uc_nfc(&u);
        for (size_t k = 0; k < u.n; k++) fnv_add(&hn, u.cp[k]);
        fnv_add(&hn, 0xFFFFFFFFu);
    }
    CHECK(hc.h == uc_check_category, "general categories of all code points differ from Python's");
    CHECK(hs.h == uc_check_space, "str.isspace of all code points differs from Python's");
    CHECK(hl.h == uc_check_lower, "str.lower of all code points differs from Python's");
    CHECK(hd.h == uc_check_nfd, "NFD of all code points differs from Python's");
    CHECK(hn.h == uc_check_nfc, "NFC of all code points differs from Python's");
    for (int i = 0; i < 400; i++)
        for (int form = 0; form < 3; form++) {
            u.n = 0;
            for (uint32_t k = 0; k < uc_check_seq[i][0]; k++) locus_ustr_push(&u, uc_check_seq[i][1 + k]);
            if (form == 0) locus_uc_nfc(&u);
            else if (form == 1) locus_uc_nfd(&u);
            else locus_uc_lower(&u);
            for (size_t k = 0; k < u.n; k++) fnv_add(&hq, u.cp[k]);
            fnv_add(&hq, 0xFFFFFFFFu);
        }
    CHECK(hq.h == uc_check_seqs, "NFC/NFD/lower of 400 combining sequences differ from Python's");
    locus_ustr_free(&u);
    printf("unicode: categories, isspace, lower, NFD, NFC of all 1,112,064 code points and 400 combining sequences %s Python's\n",
           hc.h == uc_check_category && hs.h == uc_check_space && hl.h == uc_check_lower && hd.h == uc_check_nfd && hn.h == uc_check_nfc &&
                   hq.h == uc_check_seqs ? "equal" : "DIFFER FROM");
}

/* BERT WordPiece on hand-computed cases with tests/golden/ldm/tokenizer/vocab.txt (a 64-token vocabulary made
 * so that 'a tiny red fox' gets the ids of the LDM text-encoder golden), then prompt strings -> LDMBert through
 * the pipeline against that golden */
static void test_bert(const char *G) {
    char p[512];
    snprintf(p, sizeof p, "%s/ldm/tokenizer", G);
    locus_bert_tok *t;
    if (locus_bert_tok_load(&t, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    static const struct { const char *text; int n; int64_t ids[12]; } cases[] = {
        {"a tiny red fox", 6, {1, 12, 7, 45, 3, 2}},
        {"", 2, {1, 2}},
        {"  A Tiny\tRED  fox ", 6, {1, 12, 7, 45, 3, 2}},                 /* lower case, whitespace */
        {"A sign that says \"HELLO\".", 10, {1, 12, 4, 5, 6, 8, 10, 8, 9, 2}}, /* punctuation split */
        {"Caf\xc3\xa9", 3, {1, 15, 2}},                                   /* accents stripped (NFD, Mn) */
        {"Cafe\xcc\x81", 3, {1, 15, 2}},                                   /* combining form */
        {"signs", 4, {1, 4, 13, 2}},                                      /* ## continuation */
        {"unbelievable", 5, {1, 16, 17, 18, 2}},
        {"hellos", 4, {1, 10, 13, 2}},                                    /* greedy longest match: hello ##s */
        {"helo", 3, {1, 60, 2}},                                          /* hel, then no ##o -> [UNK] */
        {"hello!world", 5, {1, 10, 21, 11, 2}},
        {"xyz", 3, {1, 60, 2}},                                           /* uncovered word -> [UNK] */
        {"hellox", 3, {1, 60, 2}},                                        /* partly covered -> one [UNK] */
        {"\xe4\xb8\xad\xe6\x96\x87", 4, {1, 23, 24, 2}},                  /* CJK ideographs split */
        {"a[MASK]fox", 5, {1, 12, 61, 3, 2}},                             /* special tokens kept whole */
        {"a\xc2\xa0tiny\x01red", 4, {1, 12, 60, 2}},                      /* NBSP -> space; control char dropped */
        {"ti\xe2\x80\x8bny", 3, {1, 7, 2}},                               /* U+200B (Cf) dropped */
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t out[64];
        int n = 0;
        locus_status st = locus_bert_tok_encode(t, cases[i].text, out, 64, &n);
        int same = st == LOCUS_OK && n == cases[i].n;
        for (int k = 0; same && k < n; k++) same = out[k] == cases[i].ids[k];
        if (!same) { bad++; fprintf(stderr, "  bert case '%s': got %d ids (%lld %lld %lld ...)\n", cases[i].text, n, (long long)out[0], (long long)out[1], (long long)out[2]); }
    }
    CHECK(bad == 0, "%d BERT WordPiece cases differ", bad);
    char longw[160];
    memset(longw, 'a', 101);
    longw[101] = 0;
    int64_t out[80];
    int n = 0, tr = 0;
    CHECK(locus_bert_tok_encode(t, longw, out, 80, &n) == LOCUS_OK && n == 3 && out[1] == 60, "a word of 101 characters is [UNK]");
    CHECK(locus_bert_tok_encode_padded(t, "a tiny red fox sign", 6, out, &tr) == LOCUS_OK && tr && out[0] == 1 && out[4] == 3 && out[5] == 2,
          "truncation keeps [CLS] + len-2 tokens + [SEP]");
    CHECK(locus_bert_tok_encode_padded(t, "a", 6, out, &tr) == LOCUS_OK && !tr && out[2] == 2 && out[3] == 0 && out[5] == 0, "padding with [PAD]");
    printf("bert tokenizer: %zu hand-computed WordPiece cases, %d wrong\n", sizeof cases / sizeof *cases, bad);
    locus_bert_tok_free(t);
    /* prompt strings through the LDM pipeline == the golden LDMBert outputs for 'a tiny red fox' and '' */
    locus_pipeline pl;
    snprintf(p, sizeof p, "%s/ldm", G);
    if (locus_pipeline_open(&pl, p)) { CHECK(0, "%s", locus_errmsg()); return; }
    locus_st_file g;
    snprintf(p, sizeof p, "%s/ldm/golden_text_encoder.safetensors", G);
    if (locus_st_open(&g, p)) { CHECK(0, "%s", locus_errmsg()); locus_pipeline_close(&pl); return; }
    int64_t ng;
    float *want = golden_f32(&g, "output.last_hidden_state", &ng);
    size_t one = (size_t)77 * pl.text.D;
    float *e = locus_alloc(one * sizeof(float));
    double worst = 0;
    const char *pr[2] = {"a tiny red fox", ""};
    for (int r = 0; r < 2; r++) {
        int T = 0;
        CHECK(locus_pipeline_encode_prompt(&pl, pr[r], e, &T) == LOCUS_OK && T == 77, "LDM prompt '%s': %s", pr[r], locus_errmsg());
        double mx = 0, d = 0;
        for (size_t k = 0; k < one; k++) { mx = fmax(mx, fabs(want[r * one + k])); d = fmax(d, fabs(e[k] - want[r * one + k])); }
        worst = fmax(worst, d / mx);
    }
    printf("LDM prompt strings -> BERT WordPiece -> LDMBert vs diffusers' LDMBert output: max rel err %.2e\n", worst);
    CHECK(want && worst < 1e-4, "LDM prompt-string embeddings within 1e-4 (%.2e)", worst);
    free(want);
    locus_free(e);
    locus_st_close(&g);
    locus_pipeline_close(&pl);
}

int main(void) {
    test_unicode();
    test_bert(getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden");
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    char p[512];
    locus_clip_tok *t;
    snprintf(p, sizeof p, "%s/pipelines/sd15-tiny/tokenizer", G);
    if (locus_clip_tok_load(&t, p)) { CHECK(0, "%s", locus_errmsg()); return t_finish("test_tokenizer"); }
    locus_json_doc d;
    snprintf(p, sizeof p, "%s/text/tokenizer/cases.json", G);
    if (locus_json_parse_file(&d, p)) { CHECK(0, "%s", locus_errmsg()); return t_finish("test_tokenizer"); }
    const locus_json *cases = locus_json_get(d.root, "cases");
    int match = 0, refused = 0, wrong = 0, ascii = 0;
    for (size_t i = 0; cases && i < cases->len; i++) {
        const locus_json *c = cases->kids[i], *txt = locus_json_get(c, "text"), *ids = locus_json_get(c, "clip");
        int is_ascii = 1;
        for (size_t k = 0; k < txt->len; k++) is_ascii &= (unsigned char)txt->str[k] < 0x80;
        if (strlen(txt->str) != txt->len) continue; /* embedded NUL */
        int64_t out[1024];
        int n = 0;
        locus_status st = locus_clip_tok_encode(t, txt->str, out, 1024, &n);
        int same = st == LOCUS_OK && (size_t)n == ids->len;
        for (int k = 0; same && k < n; k++) same = out[k] == ids->kids[k]->i;
        ascii += is_ascii;
        if (same) match++;
        else if (st == LOCUS_E_UNSUPPORTED) refused++;
        else { wrong++; fprintf(stderr, "  tokenizer case %zu '%s': %s\n", i, txt->str, st ? locus_errmsg() : "different ids"); }
    }
    printf("clip tokenizer: %d of %zu cases match exactly (%d ASCII; the rest Unicode: ftfy, html entities, NFC, lower, \\p{L}/\\p{N}), %d refused, %d wrong\n",
           match, cases ? cases->len : 0, ascii, refused, wrong);
    CHECK(wrong == 0 && refused == 0, "no case tokenized differently from the reference or refused (%d wrong, %d refused)", wrong, refused);
    CHECK(cases && match == (int)cases->len && match > ascii, "every CLIP case matches (%d of %zu)", match, cases ? cases->len : 0);
    locus_json_free(&d);
    /* pipeline prompts from pipelines/README.md */
    int64_t ids[77];
    int tr;
    CHECK(locus_clip_tok_encode_padded(t, "A sign that says \"HELLO\".", 77, ids, &tr) == LOCUS_OK && ids[0] == 49406 && ids[1] == 320 &&
              ids[5] == 257 && ids[6] == 3306 && ids[8] == 49407 && ids[76] == 49407 && !tr, "prompt a ids");
    locus_clip_tok_free(t);
    /* T5 SentencePiece */
    locus_sp_tok *sp;
    snprintf(p, sizeof p, "%s/text/vocab/spiece.model", G);
    if (locus_sp_tok_load(&sp, p)) { CHECK(0, "%s", locus_errmsg()); return t_finish("test_tokenizer"); }
    snprintf(p, sizeof p, "%s/text/tokenizer/cases.json", G);
    locus_json_parse_file(&d, p);
    cases = locus_json_get(d.root, "cases");
    int m5 = 0, r5 = 0, w5 = 0, printable = 0;
    for (size_t i = 0; cases && i < cases->len; i++) {
        const locus_json *c = cases->kids[i], *txt = locus_json_get(c, "text"), *ids = locus_json_get(c, "t5");
        if (strlen(txt->str) != txt->len) continue;
        int pr = 1;
        for (size_t k = 0; k < txt->len; k++) pr &= (unsigned char)txt->str[k] >= 0x20 && (unsigned char)txt->str[k] <= 0x7e;
        printable += pr;
        int64_t out[1024];
        int n = 0;
        locus_status st = locus_sp_tok_encode(sp, txt->str, out, 1024, &n);
        int same = st == LOCUS_OK && (size_t)n == ids->len;
        for (int k = 0; same && k < n; k++) same = out[k] == ids->kids[k]->i;
        if (same) m5++;
        else if (st == LOCUS_E_UNSUPPORTED) r5++;
        else {
            w5++;
            fprintf(stderr, "  t5 case %zu '%s': %s; got", i, txt->str, st ? locus_errmsg() : "different ids");
            for (int k = 0; k < n && k < 12; k++) fprintf(stderr, " %lld", (long long)out[k]);
            fprintf(stderr, " want");
            for (size_t k = 0; k < ids->len && k < 12; k++) fprintf(stderr, " %lld", (long long)ids->kids[k]->i);
            fprintf(stderr, "\n");
        }
    }
    printf("t5 tokenizer: %d of %zu cases match exactly (%d printable ASCII, the rest Unicode: NFKC charsmap, <unk> runs), %d refused, %d wrong\n",
           m5, cases ? cases->len : 0, printable, r5, w5);
    CHECK(w5 == 0 && r5 == 0, "no T5 case tokenized differently from the reference or refused (%d wrong, %d refused)", w5, r5);
    CHECK(cases && m5 == (int)cases->len && m5 > printable, "every T5 case matches (%d of %zu)", m5, cases ? cases->len : 0);
    locus_json_free(&d);
    locus_sp_tok_free(sp);
    return t_finish("test_tokenizer");
}
