/* progress.c — stderr progress line (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void locus_progress_start(locus_progress *p, const char *label, int total) {
    p->label = label;
    p->total = total;
    p->t0 = now();
    p->tty = isatty(2);
    p->last_bucket = -1;
    p->last_print = p->t0;
}

void locus_progress_update_frac(locus_progress *p, double done, const char *detail) {
    double t = now();
    if (!p->tty) { /* logs: every 5% and every 30 s, not every step */
        int bucket = p->total > 0 ? (int)(done * 20 / p->total) : 20;
        if (bucket == p->last_bucket && t - p->last_print < 30 && done < p->total) return;
        p->last_bucket = bucket;
        p->last_print = t;
    }
    double el = t - p->t0, per = done > 0 ? el / done : 0, left = per * (p->total - done);
    char bar[21];
    int fill = p->total > 0 ? (int)(done * 20 / p->total) : 20;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '=' : ' ';
    bar[20] = 0;
    fprintf(stderr, "%s%s %d/%d [%s] %.2f s/it, %.0f s left%s%s%s", p->tty ? "\r" : "", p->label, (int)done, p->total, bar, per, left,
            detail ? ", " : "", detail ? detail : "", p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

void locus_progress_update(locus_progress *p, int done) { locus_progress_update_frac(p, done, NULL); }

void locus_progress_end(locus_progress *p) {
    if (p->tty) fprintf(stderr, "\n");
    fprintf(stderr, "%s: done in %.2f s\n", p->label, now() - p->t0);
}
