/* json.h — a small, strict JSON parser (RFC 8259) for config.json, model_index.json and safetensors headers.
 *
 * Parses a whole document into a tree owned by a locus_json_doc.  Strict: no trailing commas, no comments,
 * no leading zeros, control characters rejected, \uXXXX escapes (with surrogate pairs) decoded to UTF-8,
 * nesting depth limited to 64.  Duplicate object keys: the last value wins (kept at the first key's
 * position), as Python's json module reads them.  Integers that fit in int64 are kept exactly alongside their double value.
 */
#ifndef LOCUS_JSON_H
#define LOCUS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } locus_json_type;

typedef struct locus_json locus_json;
struct locus_json {
    locus_json_type type;
    int is_int;        /* number is an integer literal that fits in int64 */
    int64_t i;         /* exact value when is_int */
    double num;        /* numeric value (also set for bools: 0/1) */
    char *str;         /* JSON_STRING: NUL-terminated UTF-8 (may contain embedded NULs; see len) */
    size_t len;        /* string byte length, or number of children */
    char *key;         /* key when this node is an object member */
    locus_json **kids; /* children (array elements or object members, in document order) */
};

typedef struct {
    locus_json *root;
    void *pool;              /* internal allocation list */
    size_t duplicates;       /* object members dropped because a later one had the same key */
    const char *dup_key;     /* the first such key (valid while the document is) */
} locus_json_doc;

/* Parse `len` bytes.  `what` names the source in error messages (e.g. a path).  On failure the message gives
 * the byte offset and what was expected. */
locus_status locus_json_parse(locus_json_doc *doc, const char *text, size_t len, const char *what);

/* Read and parse a whole file. */
locus_status locus_json_parse_file(locus_json_doc *doc, const char *path);

void locus_json_free(locus_json_doc *doc);

/* Object member by key, or NULL if `obj` is not an object or has no such key. */
const locus_json *locus_json_get(const locus_json *obj, const char *key);

/* Typed getters with defaults: return `def` when the key is missing or null; set *ok=0 (if ok non-NULL) when
 * the key is present with the wrong type. */
double locus_json_num(const locus_json *obj, const char *key, double def, int *ok);
int64_t locus_json_int(const locus_json *obj, const char *key, int64_t def, int *ok);
int locus_json_bool(const locus_json *obj, const char *key, int def, int *ok);
const char *locus_json_str(const locus_json *obj, const char *key, const char *def, int *ok);

#endif
