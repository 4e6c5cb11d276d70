/* test_tokenizer.c — the CLIP and T5 tokenizers against tests/golden/text/tokenizer/cases.json (openai
 * SimpleTokenizer with ftfy; SentencePiece with spiece.model): every case, ASCII and Unicode, must match
 * exactly.  Also the sd15-tiny pipeline prompts (padded to 77). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../models/unicode.h"
#include "golden/unicode_check.h"
#include "../models/tokenizer_clip.h"
#include "../models/tokenizer_sp.h"
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

int main(void) {
    test_unicode();
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
