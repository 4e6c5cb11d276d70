/* test_peak.c — the peak-memory estimate (models/pipeline.c locus_pipeline_peak_estimate) against what real
 * runs hold, measured with locus_mem_peak().
 *
 * The estimate replays the forwards' allocation sequence without computing; these checks run the real thing
 * on both tiny pipelines (sd15-tiny: UNet family, sd3-tiny: MM-DiT family) at two sizes and 1 and 2 threads
 * and compare, phase by phase (prompt encoding, denoising, VAE decode — each phase's peak above the weights;
 * within 5% on one thread, an upper bound on two, see below) and end to end (locus_run_image, what
 * `locus generate` does: within 5%).  The denoising phase
 * is checked on its own because on these tiny models the VAE decode is the overall peak.  A drift between a
 * forward and its replay fails here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/rng.h"
#include "../experiments/run.h"
#include "../models/pipeline.h"
#include "../models/sampler.h"
#include "../simd/ops.h"
#include "testutil.h"

static const double TOL = 0.05;

static int within(size_t est, size_t meas) { return fabs((double)est - (double)meas) <= TOL * (double)meas; }

static double mib(size_t b) { return (double)b / (1 << 20); }

/* one pipeline at one size and thread count */
static void check_case(locus_pipeline *p, const char *name, int size, int threads) {
    locus_set_threads(threads);
    int max_seq = 32;
    size_t weights = locus_mem_live();
    /* 1. prompt + negative prompt */
    locus_mem_peak_reset();
    locus_embeds e;
    if (locus_embeds_encode(p, "A sign that says \"HELLO\".", NULL, 1, max_seq, &e)) {
        CHECK(0, "%s: encode: %s", name, locus_errmsg());
        return;
    }
    size_t m_enc = locus_mem_peak() - weights;
    size_t parts[4];
    size_t est = locus_pipeline_peak_estimate_parts(p, size, size, e.T, threads, parts);
    CHECK(parts[0] == weights, "%s: weights %zu bytes estimated, %zu held after loading", name, parts[0], weights);
    /* 2. denoising and 3. decode, as locus_run_image does them (one step: memory does not depend on steps) */
    locus_run_opts o = {1, 7.0f, size, size, 42, NULL, NULL};
    if (locus_run_prepare(p, &o)) { CHECK(0, "%s: %s", name, locus_errmsg()); locus_embeds_free(&e); return; }
    int f = p->vae_factor, C = locus_pipeline_latent_channels(p), h = size / f, w = size / f;
    size_t n = (size_t)C * h * w;
    locus_mem_peak_reset();
    float *lat = locus_alloc(n * sizeof(float));
    locus_randn(42, lat, n);
    locus_cond cu = {e.uncond, e.uncond_pooled}, cc = {e.cond, e.cond_pooled};
    locus_status st = locus_sample(&p->den, &p->sched, 1, 7.0f, lat, h, w, &cu, &cc, e.T, NULL, NULL);
    CHECK(st == LOCUS_OK, "%s: sampling: %s", name, st ? locus_errmsg() : "");
    size_t m_den = locus_mem_peak() - weights;
    locus_mem_peak_reset();
    float *img = locus_alloc((size_t)3 * size * size * sizeof(float));
    locus_pipeline_decode(p, lat, h, w, img);
    size_t m_dec = locus_mem_peak() - weights;
    locus_free(img);
    locus_free(lat);
    /* end to end */
    locus_mem_peak_reset();
    uint8_t *pix = malloc((size_t)3 * size * size);
    st = locus_run_image(p, &o, &e, NULL, pix);
    CHECK(st == LOCUS_OK, "%s: run: %s", name, st ? locus_errmsg() : "");
    size_t m_run = locus_mem_peak() > m_enc + weights ? locus_mem_peak() : m_enc + weights;
    free(pix);
    locus_embeds_free(&e);
    printf("%s %dx%d threads=%d  weights %.3f MiB | encode est %.3f meas %.3f | denoise est %.3f meas %.3f | decode est %.3f meas %.3f"
           " | total est %.3f meas %.3f MiB (%+.2f%%)\n", name, size, size, threads, mib(weights), mib(parts[1]), mib(m_enc), mib(parts[2]),
           mib(m_den), mib(parts[3]), mib(m_dec), mib(est), mib(m_run), 100.0 * ((double)est / (double)m_run - 1));
    /* one thread: the replay is the allocation sequence itself.  More threads: inside locus_attention each
     * thread takes its GEMM scratch while the others may or may not hold theirs (timing), and the estimate
     * counts them all at once — an upper bound, a little above a given run in phases where that scratch is a
     * large share (tiny models). */
    const size_t est_ph[3] = {parts[1], parts[2], parts[3]}, meas_ph[3] = {m_enc, m_den, m_dec};
    static const char *const phase[3] = {"encode", "denoise", "decode"};
    for (int i = 0; i < 3; i++) {
        int ok = threads == 1 ? within(est_ph[i], meas_ph[i]) : est_ph[i] >= meas_ph[i] && est_ph[i] <= 1.25 * meas_ph[i];
        CHECK(ok, "%s %d threads=%d: %s phase estimated %zu bytes, measured %zu", name, size, threads, phase[i], est_ph[i], meas_ph[i]);
    }
    CHECK(within(est, m_run), "%s %d threads=%d: peak estimated %zu bytes, measured %zu", name, size, threads, est, m_run);
}

int main(void) {
    const char *G = getenv("LOCUS_GOLDEN") ? getenv("LOCUS_GOLDEN") : "tests/golden";
    static const char *const pipes[2] = {"sd15-tiny", "sd3-tiny"};
    static const int sizes[2] = {64, 128};
    for (int i = 0; i < 2; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/pipelines/%s", G, pipes[i]);
        locus_pipeline p;
        if (locus_pipeline_open(&p, dir)) { CHECK(0, "open %s: %s", dir, locus_errmsg()); continue; }
        for (int s = 0; s < 2; s++)
            for (int th = 1; th <= 2; th++) check_case(&p, pipes[i], sizes[s], th);
        locus_pipeline_close(&p);
    }
    return t_finish("test_peak");
}
