/* fuzz_json.c — libFuzzer target for the strict JSON parser (config.json, model_index.json, safetensors
 * headers, results rows): any input is parsed or rejected with a message; accepted trees are walked, every
 * object's keys are unique (duplicates resolved, the last value winning) and typed getters are called. */
#include <string.h>

#include "../../core/json.h"

static void walk(const locus_json *v, int depth) {
    if (depth > 70) __builtin_trap(); /* the parser limits nesting to 64 */
    if (v->type == JSON_OBJECT)
        for (size_t i = 0; i < v->len; i++) {
            for (size_t j = i + 1; j < v->len && v->len < 200; j++) /* quadratic: small objects only */
                if (!strcmp(v->kids[i]->key, v->kids[j]->key)) __builtin_trap();
            if (locus_json_get(v, v->kids[i]->key) == NULL) __builtin_trap();
            int ok = 1;
            locus_json_int(v, v->kids[i]->key, 0, &ok);
            locus_json_num(v, v->kids[i]->key, 0, &ok);
            locus_json_str(v, v->kids[i]->key, "", &ok);
            walk(v->kids[i], depth + 1);
        }
    else if (v->type == JSON_ARRAY)
        for (size_t i = 0; i < v->len; i++) walk(v->kids[i], depth + 1);
    else if (v->type == JSON_STRING && v->str[v->len] != 0) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    locus_json_doc d;
    if (locus_json_parse(&d, (const char *)data, size, "fuzz.json") == LOCUS_OK) {
        walk(d.root, 0);
        locus_json_free(&d);
    }
    return 0;
}
