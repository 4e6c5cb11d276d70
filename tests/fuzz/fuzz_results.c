/* fuzz_results.c — libFuzzer target for the localize result readers: an input starting with 0xff is a results
 * directory's config.json (lz_plan_from_config: what merge and --resume trust), anything else a results.jsonl
 * read back against a fixed plan (lz_load_rows: every row must re-serialize to its own bytes; a torn tail is
 * dropped).  Rows must land inside the plan's cells. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../experiments/localize_int.h"
#include "fuzz_util.h"

static const char cfg[] =
    "{\n  \"locus_localize\": 1,\n  \"model\": \"m\",\n  \"model_hash\": \"b0a09ff861c5ffaf\",\n  \"steps\": 1,\n  \"guidance\": 7.5,\n"
    "  \"sampler\": \"ddim\",\n  \"width\": 32,\n  \"height\": 32,\n  \"max_sequence_length\": 77,\n  \"negative_prompt\": \"\",\n"
    "  \"grid_cols\": 8,\n  \"start_step\": 0,\n  \"patch_halves\": \"cond\",\n  \"mse\": \"true\",\n  \"perm_seed\": 0,\n  \"seeds\": [0],\n"
    "  \"layers\": [\n    \"mid_block\"\n  ],\n  \"items\": [\n"
    "    {\"word\": \"HELLO\", \"prompt\": \"A sign that says \\\"HELLO\\\".\", \"target\": 1},\n"
    "    {\"word\": \"WORLD\", \"prompt\": \"A sign that says \\\"WORLD\\\".\", \"target\": 0}\n  ],\n  \"shard\": \"0/1\"\n}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lz_plan P;
    static int init;
    char dir[600];
    snprintf(dir, sizeof dir, "%s", fz_dir());
    if (!init) {
        fz_write("config.json", cfg, strlen(cfg));
        char *text = NULL;
        if (lz_plan_from_config(&P, dir, &text)) abort();
        free(text);
        init = 1;
    }
    if (size && data[0] == 0xff) {
        snprintf(dir, sizeof dir, "%s/c", fz_dir());
        mkdir(dir, 0755);
        fz_write("c/config.json", data + 1, size - 1);
        lz_plan Q;
        char *text = NULL;
        if (lz_plan_from_config(&Q, dir, &text) == 0) {
            if (lz_ncells(&Q) <= 0 || Q.nshards < 1 || Q.shard < 0 || Q.shard >= Q.nshards) __builtin_trap();
            for (int i = 0; i < Q.nitems; i++)
                if (Q.target[i] < 0 || Q.target[i] >= Q.nitems) __builtin_trap();
        }
        free(text);
        lz_plan_free(&Q);
        return 0;
    }
    const char *path = fz_write("results.jsonl", data, size);
    int nc = lz_ncells(&P);
    lz_row *rows = calloc((size_t)nc, sizeof *rows);
    int n = lz_load_rows(&P, path, rows, 0);
    if (n > nc) __builtin_trap();
    for (int c = 0; c < nc; c++) {
        if (rows[c].done && rows[c].cell != c) __builtin_trap();
        free(rows[c].ocr);
    }
    free(rows);
    return 0;
}
