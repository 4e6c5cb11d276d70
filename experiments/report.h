/* report.h — report.html of a localize / edit / detox / merge results directory: one self-contained HTML file
 * (every picture inlined as a base64 PNG data URI, a little inline CSS and JS, no external URL) for reading
 * a run in a browser: the config, the machine line, the summary table (sortable by clicking a header), the
 * figures (heatmap.png, grid.png, ocr_f1.png) and a table of every cell (prompt x seed rows, cell kind
 * columns: OCR-F1 against B's word, the cell's image on hover, larger on click).
 *
 * Everything but the machine block (between the lines "<!-- machine -->" and "<!-- /machine -->": locus
 * version, ISA and threads of the writing process, and runs.log) depends only on the results, so fresh,
 * resumed, sharded + merged runs and any ISA or thread count give the same bytes outside that block. */
#ifndef LOCUS_REPORT_H
#define LOCUS_REPORT_H

#include "localize_int.h"

/* Cell images are inlined until their PNG bytes reach this budget; later cells link to images/cNNNNNN.png
 * (a relative path inside the results directory; the report says how many). */
#define LZ_REPORT_INLINE_BYTES (48u << 20)

/* Write P->out/report.html (atomically) from the finished rows and the files lz_finish_outputs wrote before it
 * (config.json, summary.csv, heatmap.png, grid.png, ocr_f1.png, images/).  Returns 0, or 2 after printing
 * one error line. */
int lz_write_report(const lz_plan *P, const lz_row *rows);

/* base64 (RFC 4648, with padding) of n bytes appended to b. */
void lz_base64(locus_strbuf *b, const unsigned char *p, size_t n);

#endif
