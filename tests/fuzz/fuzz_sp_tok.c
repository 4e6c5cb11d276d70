/* fuzz_sp_tok.c — libFuzzer target for the SentencePiece (T5) tokenizer: an input starting with 0xff is a
 * spiece.model (the protobuf reader: pieces, scores, the normalizer's precompiled NFKC charsmap), anything else
 * a prompt encoded with the golden sd3-tiny model (ids inside the vocabulary, padding exact). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../models/tokenizer_sp.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static locus_sp_tok *tok;
    if (!tok && locus_sp_tok_load(&tok, fz_golden("pipelines/sd3-tiny/tokenizer_3/spiece.model"))) abort();
    int64_t ids[256];
    int n = 0, trunc = 0;
    if (size && data[0] == 0xff) {
        locus_sp_tok *t2;
        if (locus_sp_tok_load(&t2, fz_write("spiece.model", data + 1, size - 1)) == LOCUS_OK) {
            locus_sp_tok_encode(t2, "A sign that says \"HELLO\". \xef\xbc\xa8 caf\xc3\xa9", ids, 256, &n);
            locus_sp_tok_encode_padded(t2, "hello world", 32, ids, &trunc);
            locus_sp_tok_free(t2);
        }
        return 0;
    }
    char *s = fz_str(data, size);
    if (locus_sp_tok_encode(tok, s, ids, 256, &n) == LOCUS_OK)
        for (int i = 0; i < n && i < 256; i++)
            if (ids[i] < 0 || ids[i] > 1000000) __builtin_trap();
    locus_sp_tok_encode_padded(tok, s, 32, ids, &trunc);
    free(s);
    return 0;
}
