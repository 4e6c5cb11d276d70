/* fuzz_clip_tok.c — libFuzzer target for the CLIP BPE tokenizer (ftfy fixes, HTML entities, NFC, the byte-level
 * BPE) on any bytes as a prompt, with the golden sd15-tiny vocabulary: ids stay in the vocabulary, padded
 * encodings have exactly the asked length; an input starting with 0xff instead replaces merges.txt. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../models/tokenizer_clip.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static locus_clip_tok *tok;
    if (!tok && locus_clip_tok_load(&tok, fz_golden("pipelines/sd15-tiny/tokenizer"))) abort();
    if (size && data[0] == 0xff) { /* a hostile merges.txt beside a small vocabulary */
        static int init;
        char dst[1024];
        if (!init) { /* a small vocabulary (the golden one takes ~1 s to load under ASan) */
            snprintf(dst, sizeof dst, "%s/tok", fz_dir());
            mkdir(dst, 0755);
            static const char vocab[] = "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1, \"a\": 2, \"a</w>\": 3, \"c\": 4, \"t</w>\": 5, \"ca\": 6, "
                                        "\"cat</w>\": 7, \"p\": 8, \"h\": 9, \"o\": 10, \"o</w>\": 11, \"f</w>\": 12, \"of</w>\": 13, \"ph\": 14}";
            fz_write("tok/vocab.json", vocab, strlen(vocab));
            init = 1;
        }
        fz_write("tok/merges.txt", data + 1, size - 1);
        snprintf(dst, sizeof dst, "%s/tok", fz_dir());
        locus_clip_tok *t2;
        if (locus_clip_tok_load(&t2, dst) == LOCUS_OK) {
            int64_t ids[77];
            int trunc;
            locus_clip_tok_encode_padded(t2, "a photo of a cat", 77, ids, &trunc);
            locus_clip_tok_free(t2);
        }
        return 0;
    }
    char *s = fz_str(data, size);
    int64_t ids[256];
    int n = 0, trunc = 0;
    if (locus_clip_tok_encode(tok, s, ids, 256, &n) == LOCUS_OK)
        for (int i = 0; i < n && i < 256; i++)
            if (ids[i] < 0 || ids[i] > 49407) __builtin_trap();
    if (locus_clip_tok_encode_padded(tok, s, 77, ids, &trunc) == LOCUS_OK)
        for (int i = 0; i < 77; i++)
            if (ids[i] < 0 || ids[i] > 49407) __builtin_trap();
    free(s);
    return 0;
}
