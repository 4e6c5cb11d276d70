/* progress.h — a progress line on stderr for long runs: "label  3/20 [=====     ] 1.23 s/it, 21 s left".
 * Redrawn in place on a terminal; otherwise (CI logs) a line at every 5% and at least every 30 s. */
#ifndef LOCUS_PROGRESS_H
#define LOCUS_PROGRESS_H

typedef struct {
    const char *label;
    int total;
    double t0;
    int tty;
    int last_bucket;  /* non-tty: last 5% bucket printed */
    double last_print;
} locus_progress;

void locus_progress_start(locus_progress *p, const char *label, int total);
void locus_progress_update(locus_progress *p, int done);
/* Fractional progress (e.g. 3.4 cells: the fourth cell 40% through) with a short detail ("step 20/50"). */
void locus_progress_update_frac(locus_progress *p, double done, const char *detail);
void locus_progress_end(locus_progress *p);

#endif
