/* jsonw.c — the JSON writer (see jsonw.h): separators and indentation from a small stack of open containers. */
#include "jsonw.h"

#include <assert.h>
#include <math.h>
#include <string.h>

void locus_json_put_strn(locus_strbuf *b, const char *s, size_t n) {
    locus_sb_putn(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed in one append */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\' && c >= 0x20 && c != 0x7f) { run++; continue; }
        locus_sb_putn(b, s + i - run, run);
        run = 0;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            locus_sb_putn(b, e, 2);
        } else if (c == '\n') {
            locus_sb_putn(b, "\\n", 2);
        } else {
            locus_sb_printf(b, "\\u%04x", c);
        }
    }
    locus_sb_putn(b, s + n - run, run);
    locus_sb_putn(b, "\"", 1);
}

void locus_json_put_num(locus_strbuf *b, double v) {
    if (!isfinite(v)) locus_sb_puts(b, "null");
    else locus_sb_printf(b, "%.9g", v);
}

void locus_jw_init(locus_jsonw *w, locus_strbuf *b) {
    memset(w, 0, sizeof *w);
    w->b = b;
}

static void newline_indent(locus_jsonw *w, int level) {
    locus_sb_putn(w->b, "\n", 1);
    for (int i = 0; i < level; i++) locus_sb_putn(w->b, "  ", 2);
}

/* The separator before a member of the innermost container (a key, an array element, or a top-level value). */
static void before_member(locus_jsonw *w) {
    if (!w->depth) return;
    int d = w->depth - 1;
    if (w->count[d]) locus_sb_putn(w->b, ",", 1);
    if (w->block[d]) newline_indent(w, w->depth);
    else if (w->count[d]) locus_sb_putn(w->b, " ", 1);
    w->count[d]++;
}

/* Before any value: in an object it must follow its key; elsewhere it is a member of its own. */
static void before_value(locus_jsonw *w) {
    if (w->depth && w->object[w->depth - 1]) {
        assert(w->after_key && "a value in a JSON object needs a key first");
        w->after_key = 0;
        return;
    }
    assert(!w->after_key);
    before_member(w);
}

void locus_jw_key(locus_jsonw *w, const char *key) {
    assert(w->depth && w->object[w->depth - 1] && !w->after_key && "a key belongs in an object, before its value");
    before_member(w);
    locus_json_put_strn(w->b, key, strlen(key));
    locus_sb_putn(w->b, ": ", 2);
    w->after_key = 1;
}

static void jw_open(locus_jsonw *w, int object, locus_jw_layout layout) {
    before_value(w);
    assert(w->depth < LOCUS_JW_MAX_DEPTH && "JSON nesting too deep");
    w->object[w->depth] = (unsigned char)object;
    w->block[w->depth] = layout == LOCUS_JW_BLOCK;
    w->count[w->depth] = 0;
    w->depth++;
    locus_sb_putn(w->b, object ? "{" : "[", 1);
}

void locus_jw_object(locus_jsonw *w, locus_jw_layout layout) { jw_open(w, 1, layout); }
void locus_jw_array(locus_jsonw *w, locus_jw_layout layout) { jw_open(w, 0, layout); }

void locus_jw_end(locus_jsonw *w) {
    assert(w->depth > 0 && !w->after_key && "unbalanced JSON end (or a key without its value)");
    int d = --w->depth;
    if (w->block[d] && w->count[d]) newline_indent(w, d);
    locus_sb_putn(w->b, w->object[d] ? "}" : "]", 1);
}

void locus_jw_strn(locus_jsonw *w, const char *s, size_t n) {
    before_value(w);
    locus_json_put_strn(w->b, s, n);
}
void locus_jw_str(locus_jsonw *w, const char *s) { locus_jw_strn(w, s, strlen(s)); }

void locus_jw_int(locus_jsonw *w, long long v) {
    before_value(w);
    locus_sb_printf(w->b, "%lld", v);
}

void locus_jw_num(locus_jsonw *w, double v) {
    before_value(w);
    locus_json_put_num(w->b, v);
}

void locus_jw_bool(locus_jsonw *w, int v) {
    before_value(w);
    locus_sb_puts(w->b, v ? "true" : "false");
}

void locus_jw_null(locus_jsonw *w) {
    before_value(w);
    locus_sb_puts(w->b, "null");
}
