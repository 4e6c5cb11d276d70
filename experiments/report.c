/* report.c — report.html of a results directory (see report.h): the page a user opens to read a localize,
 * edit or detox run.  Built from what the run already wrote (config.json, summary.csv, the figures, images/)
 * and the rows, so it says nothing the other files do not; inlined pictures make it one file to send or
 * archive.  The machine block is the only part that depends on the process writing it. */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "../core/version.h"
#include "../simd/kernels.h"

void lz_base64(locus_strbuf *b, const unsigned char *p, size_t n) {
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        q[0] = T[v >> 18 & 63];
        q[1] = T[v >> 12 & 63];
        q[2] = i + 1 < n ? T[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? T[v & 63] : '=';
        locus_sb_putn(b, q, 4);
    }
}

/* text with & < > " ' escaped for HTML text and attribute values */
static void esc(locus_strbuf *b, const char *s) {
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;
        if (e) locus_sb_puts(b, e);
        else locus_sb_putn(b, s, 1);
    }
}

/* DIR/NAME as a data URI (or NULL and *len 0 when the file is absent); the caller frees */
static char *read_rel(const lz_plan *P, const char *name, size_t *len) {
    char path[4200], *data = NULL;
    snprintf(path, sizeof path, "%s/%s", P->out, name);
    *len = 0;
    if (locus_read_file(path, &data, len)) return NULL;
    return data;
}

static void png_uri(locus_strbuf *b, const unsigned char *png, size_t n) {
    locus_sb_puts(b, "data:image/png;base64,");
    lz_base64(b, png, n);
}

/* A figure of the results directory, inlined; a note when the run did not write it. */
static void figure(locus_strbuf *b, const lz_plan *P, const char *name, const char *caption) {
    size_t n;
    char *png = read_rel(P, name, &n);
    locus_sb_printf(b, "<figure><figcaption>%s (%s)</figcaption>", caption, name);
    if (png) {
        locus_sb_printf(b, "<img class=\"fig\" alt=\"%s\" src=\"", name);
        png_uri(b, (const unsigned char *)png, n);
        locus_sb_puts(b, "\">");
    } else locus_sb_puts(b, "<p>(not written by this run)</p>");
    locus_sb_puts(b, "</figure>\n");
    free(png);
}

/* One CSV line (RFC 4180 quoting, as localize_results.c writes it) -> fields, NUL-terminated in place.
 * Returns the number of fields (at most max); *next is the start of the following line. */
static int csv_fields(char *s, char **f, int max, char **next) {
    int n = 0;
    char *w = s;
    for (;;) {
        char *start = w;
        if (*s == '"') {
            for (s++; *s && !(*s == '"' && s[1] != '"'); s++) {
                if (*s == '"') s++;
                *w++ = *s;
            }
            if (*s == '"') s++;
        } else
            while (*s && *s != ',' && *s != '\n') *w++ = *s++;
        char sep = *s;
        *w++ = '\0';
        if (n < max) f[n++] = start;
        if (sep == ',') { s++; continue; }
        *next = sep == '\n' ? s + 1 : s;
        return n;
    }
}

/* summary.csv as a table that sorts by any column when its header is clicked (script below) */
static void summary_table(locus_strbuf *b, const lz_plan *P) {
    size_t n;
    char *csv = read_rel(P, "summary.csv", &n), *s = csv, *f[64];
    if (!csv) { locus_sb_puts(b, "<p>(no summary.csv)</p>\n"); return; }
    locus_sb_puts(b, "<div class=\"wide\"><table class=\"sortable\" id=\"summary\"><thead><tr>");
    int nf = csv_fields(s, f, 64, &s);
    for (int i = 0; i < nf; i++) { locus_sb_puts(b, "<th title=\"click to sort\">"); esc(b, f[i]); locus_sb_puts(b, "</th>"); }
    locus_sb_puts(b, "</tr></thead>\n<tbody>\n");
    while (*s) {
        int m = csv_fields(s, f, 64, &s);
        locus_sb_puts(b, "<tr>");
        for (int i = 0; i < m; i++) {
            char *end;
            double v = strtod(f[i], &end);
            if (i > 0 && *f[i] && !*end) locus_sb_printf(b, "<td class=\"num\" data-v=\"%s\">%.4g</td>", f[i], v);
            else { locus_sb_puts(b, "<td>"); esc(b, f[i]); locus_sb_puts(b, "</td>"); }
        }
        locus_sb_puts(b, "</tr>\n");
    }
    locus_sb_puts(b, "</tbody></table></div>\n");
    free(csv);
}

/* every cell: rows = prompt x seed groups, columns = cell kinds; the value is OCR-F1 against B's word, the
 * colour its heat; the cell's image appears on hover and, larger, on click */
static void cells_table(locus_strbuf *b, const lz_plan *P, const lz_row *rows, int *linked) {
    int K = lz_cells_per_group(P);
    size_t budget = LZ_REPORT_INLINE_BYTES;
    locus_sb_puts(b, "<table class=\"sortable cells\" id=\"cells\"><thead><tr><th>prompt A</th><th>B's word</th><th>seed</th>");
    for (int k = 0; k < K; k++) { locus_sb_puts(b, "<th>"); esc(b, lz_cell_label(P, k)); locus_sb_puts(b, "</th>"); }
    locus_sb_puts(b, "</tr></thead>\n<tbody>\n");
    for (int g = 0; g < lz_ngroups(P); g++) {
        const lz_item *it = &P->items[g / P->nseeds];
        locus_sb_puts(b, "<tr><td>");
        esc(b, it->prompt);
        locus_sb_puts(b, "</td><td>");
        esc(b, it->word_b);
        locus_sb_printf(b, "</td><td class=\"num\" data-v=\"%lld\">%lld</td>", P->seeds[g % P->nseeds], P->seeds[g % P->nseeds]);
        for (int k = 0; k < K; k++) {
            int c = g * K + k;
            const lz_row *r = &rows[c];
            if (!r->done) { locus_sb_puts(b, "<td class=\"todo\" data-v=\"-1\">&ndash;</td>"); continue; }
            double f1 = locus_f1(r->tb.precision, r->tb.recall);
            int t = (int)(f1 * 255 + 0.5); /* white -> blue as heatmap.png */
            locus_sb_printf(b, "<td class=\"cell\" data-v=\"%.6f\" style=\"background:#%02x%02x%02x;color:%s\" title=\"", f1,
                            255 - (255 - 0x34) * t / 255, 255 - (255 - 0x65) * t / 255, 255 - (255 - 0xA4) * t / 255, f1 > 0.5 ? "#fff" : "#202020");
            locus_sb_printf(b, "cell %d: OCR read &quot;", c);
            esc(b, r->ocr ? r->ocr : "");
            locus_sb_printf(b, "&quot;; F1 vs A %.3f, vs B %.3f; SSIM %.3f\">%.2f", locus_f1(r->ta.precision, r->ta.recall), f1, r->ssim, f1);
            char name[32];
            snprintf(name, sizeof name, "images/c%06d.png", c);
            size_t n = 0;
            char *png = budget ? read_rel(P, name, &n) : NULL;
            locus_sb_puts(b, "<img class=\"tip\" loading=\"lazy\" alt=\"\" src=\"");
            if (png && n <= budget) {
                png_uri(b, (const unsigned char *)png, n);
                budget -= n;
            } else {
                if (png) budget = 0; /* the budget is spent: this and every later cell link to their files */
                locus_sb_puts(b, name);
                ++*linked;
            }
            free(png);
            locus_sb_puts(b, "\"></td>");
        }
        locus_sb_puts(b, "</tr>\n");
    }
    locus_sb_puts(b, "</tbody></table>\n");
}

static const char *STYLE =
    "<style>\n"
    "body{font:14px/1.4 sans-serif;margin:1.5em;color:#202020;background:#fff}\n"
    "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}\n"
    "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 6px}\n"
    "th{background:#eef;cursor:pointer;user-select:none}th.asc:after{content:' \\25B2'}th.desc:after{content:' \\25BC'}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}#summary td:first-child{white-space:nowrap}\n"
    "td.cell{position:relative;text-align:center;cursor:zoom-in}td.todo{text-align:center;color:#999}\n"
    "img.tip{display:none;position:absolute;left:100%;top:0;z-index:2;border:2px solid #3465a4;background:#fff;"
    "image-rendering:pixelated;width:128px}\n"
    "td.cell:hover img.tip{display:block}\n"
    "img.fig{max-width:100%;border:1px solid #ddd}div.wide{overflow-x:auto}\n"
    "pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:24em}\n"
    "#machine{background:#f6f6f6;padding:.4em .6em;font-family:monospace}\n"
    "#zoom{display:none;position:fixed;inset:0;background:rgba(0,0,0,.8);z-index:9;align-items:center;"
    "justify-content:center;flex-direction:column;color:#fff;cursor:zoom-out}\n"
    "#zoom img{width:min(80vw,80vh);image-rendering:pixelated;background:#fff}\n"
    "</style>\n";

/* sort a table by a clicked header (numbers by data-v, else text), and the click-to-zoom overlay */
static const char *SCRIPT =
    "<script>\n"
    "document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){\n"
    " var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th),up=!th.classList.contains('asc');\n"
    " t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc')});th.classList.add(up?'asc':'desc');\n"
    " var key=function(r){var c=r.cells[i];return c&&c.dataset.v!==undefined?parseFloat(c.dataset.v):(c?c.textContent:'')};\n"
    " Array.prototype.slice.call(b.rows).sort(function(x,y){var p=key(x),q=key(y),d=(typeof p==='number'&&typeof q==='number')?p-q:String(p).localeCompare(String(q));return up?d:-d})\n"
    "  .forEach(function(r){b.appendChild(r)});});});\n"
    "var z=document.getElementById('zoom');\n"
    "document.querySelectorAll('td.cell').forEach(function(td){td.addEventListener('click',function(){\n"
    " z.querySelector('img').src=td.querySelector('img').src;z.querySelector('div').textContent=td.title;z.style.display='flex';});});\n"
    "z.addEventListener('click',function(){z.style.display='none';});\n"
    /* report.html#selftest: sort the summary by ocr_f1_b and open the first cell, and say whether both worked
     * (tests/report_test.sh reads it with chromium --dump-dom) */
    "if(location.hash==='#selftest'){var ok=1,t=document.getElementById('summary'),hs=t.tHead.rows[0].cells,j=-1;\n"
    " for(var k=0;k<hs.length;k++)if(hs[k].textContent==='ocr_f1_b')j=k;\n"
    " if(j<0)ok=0;else{hs[j].click();var v=Array.prototype.map.call(t.tBodies[0].rows,function(r){return parseFloat(r.cells[j].dataset.v)});\n"
    "  for(var k=1;k<v.length;k++)if(!(v[k-1]<=v[k]))ok=0;hs[j].click();if(v.length>1&&parseFloat(t.tBodies[0].rows[0].cells[j].dataset.v)<v[v.length-1])ok=0;}\n"
    " var c=document.querySelector('td.cell');if(c){c.click();if(z.style.display!=='flex'||z.querySelector('img').src.indexOf('data:image/png;base64,')!==0)ok=0;}\n"
    " var p=document.createElement('p');p.id='selftest';p.textContent='selftest '+(ok?'ok':'FAILED');document.body.appendChild(p);}\n"
    "</script>\n";

int lz_write_report(const lz_plan *P, const lz_row *rows) {
    static const char *what[] = {"localize", "edit", "detox"};
    const char *cmd = what[P->experiment >= 0 && P->experiment <= 2 ? P->experiment : 0];
    int done = 0, linked = 0;
    for (int c = 0; c < lz_ncells(P); c++) done += rows[c].done;
    /* the model as config.json records it (a merge's plan is rebuilt from config.json without it) */
    size_t n;
    char *cfg = read_rel(P, "config.json", &n), model[1024] = "?";
    locus_json_doc d;
    if (cfg && !locus_json_parse(&d, cfg, n, "config.json")) {
        int ok = 1;
        snprintf(model, sizeof model, "%s", locus_json_str(d.root, "model", "?", &ok));
        locus_json_free(&d);
    }
    locus_strbuf b = {0};
    locus_sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>locus ");
    locus_sb_puts(&b, cmd);
    locus_sb_puts(&b, ": ");
    esc(&b, model);
    locus_sb_puts(&b, "</title>\n");
    locus_sb_puts(&b, STYLE);
    locus_sb_printf(&b, "</head><body>\n<h1>locus %s: ", cmd);
    esc(&b, model);
    locus_sb_printf(&b, "</h1>\n<p>%d of %d cells (%d prompts x %d seeds x %d cell kinds)%s.</p>\n", done, lz_ncells(P), P->nitems, P->nseeds,
                    lz_cells_per_group(P), P->nshards > 1 ? "; one shard of the run" : "");
    /* the machine block: the only part that differs between runs of the same results */
    locus_sb_printf(&b, "<!-- machine -->\n<p id=\"machine\">written by locus %s, isa %s, threads %d", LOCUS_VERSION, locus_isa_name(), locus_threads());
    char *log = read_rel(P, "runs.log", &n);
    if (log) {
        locus_sb_puts(&b, "<br>runs.log:<br>");
        for (char *s = log, *e; *s; s = e + (*e != 0)) {
            e = strchr(s, '\n');
            if (!e) e = s + strlen(s);
            *e = 0;
            esc(&b, s);
            locus_sb_puts(&b, "<br>");
        }
    }
    free(log);
    locus_sb_puts(&b, "</p>\n<!-- /machine -->\n");
    locus_sb_puts(&b, "<h2>Summary per cell kind</h2>\n<p>Means over the finished cells; OCR-F1 is against A's word (_a) and B's "
                      "word (_b); MSE/PSNR/SSIM against A's unpatched image.  Click a column header to sort.</p>\n");
    summary_table(&b, P);
    locus_sb_puts(&b, "<h2>Figures</h2>\n");
    figure(&b, P, "heatmap.png", "OCR-F1 against B's word per cell kind and prompt");
    figure(&b, P, "ocr_f1.png", "OCR-F1 per cell kind");
    figure(&b, P, "grid.png", "images: rows = cell kinds, columns = prompts at the first seed");
    locus_sb_puts(&b, "<h2>Every cell</h2>\n<p>OCR-F1 against B's word; hover a value for its image and what OCR read, click it "
                      "to enlarge.  Sortable like the summary.</p>\n");
    cells_table(&b, P, rows, &linked);
    if (linked)
        locus_sb_printf(&b, "<p>%d cell images are linked (images/cNNNNNN.png beside this file) instead of inlined: the inlined ones "
                            "reached %u MiB.</p>\n", linked, LZ_REPORT_INLINE_BYTES >> 20);
    locus_sb_puts(&b, "<h2>Configuration (config.json)</h2>\n<pre>");
    esc(&b, cfg ? cfg : "(no config.json)");
    free(cfg);
    locus_sb_puts(&b, "</pre>\n<div id=\"zoom\"><img alt=\"\"><div></div></div>\n");
    locus_sb_puts(&b, SCRIPT);
    locus_sb_puts(&b, "</body></html>\n");
    int rc = lz_write_sb(P->out, "report.html", &b);
    locus_sb_free(&b);
    return rc;
}
