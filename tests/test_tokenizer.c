/* test_tokenizer.c — the CLIP tokenizer against tests/golden/text/tokenizer/cases.json (openai SimpleTokenizer
 * with ftfy): every ASCII case must match exactly; every other case must be refused with a clear error
 * (never tokenized differently).  Also the sd15-tiny pipeline prompts (padded to 77). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../models/tokenizer_clip.h"
#include "../models/tokenizer_sp.h"
#include "testutil.h"

int main(void) {
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
    printf("clip tokenizer: %d cases match exactly, %d refused (non-ASCII), %d wrong; %d ASCII cases\n", match, refused, wrong, ascii);
    CHECK(wrong == 0, "no case tokenized differently from the reference (%d wrong)", wrong);
    CHECK(match >= ascii - 1, "ASCII cases match (%d of %d)", match, ascii);
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
