/* fuzz_bert_tok.c — libFuzzer target for the BERT WordPiece tokenizer (LDM's LDMBert): an input starting with
 * 0xff is a vocab.txt, anything else a prompt encoded with the golden ldm vocabulary (ids inside it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../models/tokenizer_bert.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static locus_bert_tok *tok;
    if (!tok && locus_bert_tok_load(&tok, fz_golden("ldm/tokenizer"))) abort();
    int64_t ids[256];
    int n = 0, trunc = 0;
    if (size && data[0] == 0xff) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/bert", fz_dir());
        mkdir(dir, 0755);
        fz_write("bert/vocab.txt", data + 1, size - 1);
        locus_bert_tok *t2;
        if (locus_bert_tok_load(&t2, dir) == LOCUS_OK) {
            locus_bert_tok_encode(t2, "a tiny red fox, jumping! caf\xc3\xa9", ids, 256, &n);
            locus_bert_tok_encode_padded(t2, "hello world", 77, ids, &trunc);
            locus_bert_tok_free(t2);
        }
        return 0;
    }
    char *s = fz_str(data, size);
    if (locus_bert_tok_encode(tok, s, ids, 256, &n) == LOCUS_OK)
        for (int i = 0; i < n && i < 256; i++)
            if (ids[i] < 0 || ids[i] > 1000000) __builtin_trap();
    locus_bert_tok_encode_padded(tok, s, 77, ids, &trunc);
    free(s);
    return 0;
}
