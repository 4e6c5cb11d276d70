/* scheduler.c — DDIM, Euler discrete, PNDM (PLMS), flow matching and DDPM in diffusers' fp32 arithmetic (see
 * scheduler.h). */
#include "scheduler.h"

#include "../simd/sleef_names.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"

/* torch.linspace(start, end, steps, dtype=float32) */
static void linspace_f32(float start, float end, int n, float *out) {
    if (n == 1) { out[0] = start; return; }
    float step = (end - start) / (float)(n - 1);
    int half = n / 2;
    for (int i = 0; i < n; i++) out[i] = i < half ? start + step * (float)i : end - step * (float)(n - i - 1);
}

locus_status locus_scheduler_load(locus_scheduler *s, const char *dir) {
    memset(s, 0, sizeof *s);
    char p[4096];
    snprintf(p, sizeof p, "%s/scheduler_config.json", dir);
    locus_json_doc doc;
    locus_status st = locus_json_parse_file(&doc, p);
    if (st) return st;
    const locus_json *r = doc.root;
    if (r->type != JSON_OBJECT) { locus_json_free(&doc); return locus_fail(LOCUS_E_FORMAT, "%s: not a JSON object", p); }
    int ok = 1;
    const char *cls = locus_json_str(r, "_class_name", "DDIMScheduler", &ok);
    if (!ok || strlen(cls) >= sizeof s->class_name) { locus_json_free(&doc); return locus_fail(LOCUS_E_FORMAT, "%s: _class_name should be a scheduler class name", p); }
    snprintf(s->class_name, sizeof s->class_name, "%s", cls);
    cls = s->class_name; /* the document is freed before some messages below are formatted */
    if (!strcmp(cls, "DDIMScheduler")) s->kind = LOCUS_SCHED_DDIM;
    else if (!strcmp(cls, "EulerDiscreteScheduler")) s->kind = LOCUS_SCHED_EULER;
    else if (!strcmp(cls, "PNDMScheduler")) s->kind = LOCUS_SCHED_PNDM;
    else if (!strcmp(cls, "FlowMatchEulerDiscreteScheduler")) s->kind = LOCUS_SCHED_FLOW;
    else if (!strcmp(cls, "DDPMScheduler")) s->kind = LOCUS_SCHED_DDPM;
    else {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: scheduler '%s' is not supported (DDIMScheduler, EulerDiscreteScheduler, PNDMScheduler, "
                          "FlowMatchEulerDiscreteScheduler, DDPMScheduler)", p, cls);
    }
    int karras = locus_json_bool(r, "use_karras_sigmas", 0, &ok) || locus_json_bool(r, "use_exponential_sigmas", 0, &ok) ||
                 locus_json_bool(r, "use_beta_sigmas", 0, &ok);
    const char *interp = locus_json_str(r, "interpolation_type", "linear", &ok);
    const char *tstype = locus_json_str(r, "timestep_type", "discrete", &ok);
    s->skip_prk = locus_json_bool(r, "skip_prk_steps", 0, &ok);
    if (karras || strcmp(interp, "linear") || strcmp(tstype, "discrete") || (s->kind == LOCUS_SCHED_PNDM && !s->skip_prk)) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: karras/exponential/beta sigmas, non-linear interpolation, continuous timesteps and "
                          "PNDM Runge-Kutta warm-up steps (skip_prk_steps false) are not supported", p);
    }
    s->num_train = (int)locus_json_int(r, "num_train_timesteps", 1000, &ok);
    float b0 = (float)locus_json_num(r, "beta_start", 0.0001, &ok), b1 = (float)locus_json_num(r, "beta_end", 0.02, &ok);
    char bs[64], pt[64];
    snprintf(bs, sizeof bs, "%s", locus_json_str(r, "beta_schedule", "linear", &ok)); /* copies: messages outlive doc */
    snprintf(pt, sizeof pt, "%s", locus_json_str(r, "prediction_type", "epsilon", &ok));
    snprintf(s->spacing, sizeof s->spacing, "%s", locus_json_str(r, "timestep_spacing", "leading", &ok));
    s->steps_offset = (int)locus_json_int(r, "steps_offset", 0, &ok);
    s->clip_sample = s->kind == LOCUS_SCHED_DDIM || s->kind == LOCUS_SCHED_DDPM ? locus_json_bool(r, "clip_sample", 1, &ok) : 0;
    s->clip_range = (float)locus_json_num(r, "clip_sample_range", 1.0, &ok);
    int set_one = locus_json_bool(r, "set_alpha_to_one", 1, &ok);
    int thresholding = locus_json_bool(r, "thresholding", 0, &ok), zsnr = locus_json_bool(r, "rescale_betas_zero_snr", 0, &ok);
    const locus_json *tb = locus_json_get(r, "trained_betas");
    const char *badkey = NULL; /* a string literal: safe after the document is freed */
    static const char *const numkeys[] = {"num_train_timesteps", "beta_start", "beta_end", "steps_offset", "clip_sample_range", "shift",
                                          "base_shift", "max_shift", "base_image_seq_len", "max_image_seq_len",
                                          "dynamic_thresholding_ratio", "sample_max_value"};
    for (size_t k = 0; k < sizeof numkeys / sizeof *numkeys && !badkey; k++) {
        const locus_json *v = locus_json_get(r, numkeys[k]);
        if (v && v->type != JSON_NULL && v->type != JSON_NUMBER) badkey = numkeys[k];
    }
    if (!ok || badkey) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_FORMAT, "%s: %s has the wrong type", p, badkey ? badkey : "a value");
    }
    if (s->num_train < 1 || s->num_train > 100000) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_FORMAT, "%s: num_train_timesteps %d is outside 1..100000", p, s->num_train);
    }
    long long off = (long long)locus_json_int(r, "steps_offset", 0, NULL);
    if (off < 0 || off >= s->num_train) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_FORMAT, "%s: steps_offset %lld is outside 0..%d (num_train_timesteps - 1)", p, off, s->num_train - 1);
    }
    if (!(b0 > 0 && b0 < 1 && b1 > 0 && b1 < 1) || !isfinite(s->clip_range) || s->clip_range <= 0) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_FORMAT, "%s: beta_start/beta_end must lie in (0, 1) and clip_sample_range be positive", p);
    }
    if ((thresholding && s->kind != LOCUS_SCHED_DDPM) || zsnr || (tb && tb->type != JSON_NULL)) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: thresholding (outside DDPMScheduler) / rescale_betas_zero_snr / trained_betas are not supported", p);
    }
    if (s->kind == LOCUS_SCHED_DDPM) {
        s->thresholding = thresholding;
        s->thr_ratio = (float)locus_json_num(r, "dynamic_thresholding_ratio", 0.995, &ok);
        s->sample_max = (float)locus_json_num(r, "sample_max_value", 1.0, &ok);
        char vt[64];
        snprintf(vt, sizeof vt, "%s", locus_json_str(r, "variance_type", "fixed_small", &ok));
        if (!ok || !(s->thr_ratio > 0 && s->thr_ratio <= 1) || !(s->sample_max >= 1 && isfinite(s->sample_max))) {
            locus_json_free(&doc);
            return locus_fail(LOCUS_E_FORMAT, "%s: dynamic_thresholding_ratio must lie in (0, 1] and sample_max_value be at least 1", p);
        }
        if (!strcmp(vt, "fixed_small")) s->var_type = LOCUS_VAR_FIXED_SMALL;
        else if (!strcmp(vt, "learned_range")) s->var_type = LOCUS_VAR_LEARNED_RANGE;
        else {
            locus_json_free(&doc);
            return locus_fail(LOCUS_E_UNSUPPORTED, "%s: variance_type '%s' is not supported (fixed_small, learned_range)", p, vt);
        }
    }
    if (s->kind == LOCUS_SCHED_FLOW) {
        s->shift = (float)locus_json_num(r, "shift", 1.0, &ok);
        s->dynamic_shift = locus_json_bool(r, "use_dynamic_shifting", 0, &ok);
        s->base_shift = locus_json_num(r, "base_shift", 0.5, &ok);
        s->max_shift = locus_json_num(r, "max_shift", 1.15, &ok);
        s->base_seq = locus_json_num(r, "base_image_seq_len", 256, &ok);
        s->max_seq = locus_json_num(r, "max_image_seq_len", 4096, &ok);
        const char *tst = locus_json_str(r, "time_shift_type", "exponential", &ok);
        s->shift_linear = tst && !strcmp(tst, "linear");
        int bad_tst = tst && strcmp(tst, "linear") && strcmp(tst, "exponential");
        /* later FlowMatchEulerDiscreteScheduler options that change the schedule; refused rather than ignored */
        static const char *const unsupported[] = {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas", "stochastic_sampling"};
        const char *which = NULL;
        for (size_t k = 0; k < sizeof unsupported / sizeof *unsupported; k++)
            if (locus_json_bool(r, unsupported[k], 0, &ok)) which = unsupported[k];
        const locus_json *term = locus_json_get(r, "shift_terminal");
        if (term && term->type != JSON_NULL) which = "shift_terminal";
        locus_json_free(&doc);
        if (!ok || s->max_seq == s->base_seq || !isfinite(s->shift) || s->shift <= 0 || !isfinite(s->base_shift) || !isfinite(s->max_shift) ||
            !isfinite(s->base_seq) || !isfinite(s->max_seq))
            return locus_fail(LOCUS_E_FORMAT, "%s: shift must be positive and base/max_shift, base/max_image_seq_len finite (and distinct)", p);
        if (bad_tst) return locus_fail(LOCUS_E_UNSUPPORTED, "%s: time_shift_type must be exponential or linear", p);
        if (which) return locus_fail(LOCUS_E_UNSUPPORTED, "%s: %s is not supported", p, which);
        s->init_noise_sigma = 1.0f;
        return LOCUS_OK;
    }
    if (!strcmp(pt, "epsilon")) s->pred = LOCUS_PRED_EPSILON;
    else if (!strcmp(pt, "v_prediction")) s->pred = LOCUS_PRED_V;
    else { locus_json_free(&doc); return locus_fail(LOCUS_E_UNSUPPORTED, "%s: prediction_type '%s' is not supported", p, pt); }
    float *betas = malloc(sizeof(float) * s->num_train);
    s->alphas_cumprod = malloc(sizeof(float) * s->num_train);
    if (!betas || !s->alphas_cumprod) {
        free(betas);
        locus_json_free(&doc);
        locus_scheduler_free(s);
        return locus_fail(LOCUS_E_NOMEM, "%s: out of memory", p);
    }
    if (!strcmp(bs, "linear")) linspace_f32(b0, b1, s->num_train, betas);
    else if (!strcmp(bs, "squaredcos_cap_v2")) { /* betas_for_alpha_bar(cosine) in Python floats, max_beta 0.999, then fp32 */
        const double pi = 3.141592653589793;
        for (int i = 0; i < s->num_train; i++) {
            double t1 = (double)i / s->num_train, t2 = (double)(i + 1) / s->num_train;
            double c1 = LOCUS_COS_D1((t1 + 0.008) / 1.008 * pi / 2), c2 = LOCUS_COS_D1((t2 + 0.008) / 1.008 * pi / 2);
            double b = 1 - (c2 * c2) / (c1 * c1);
            betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
    }
    else if (!strcmp(bs, "scaled_linear")) {
        linspace_f32(sqrtf(b0), sqrtf(b1), s->num_train, betas);
        for (int i = 0; i < s->num_train; i++) betas[i] = betas[i] * betas[i];
    } else {
        free(betas);
        locus_json_free(&doc);
        locus_scheduler_free(s);
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: beta_schedule '%s' is not supported", p, bs);
    }
    double acc = 1.0; /* torch.cumprod on CPU accumulates in double */
    for (int i = 0; i < s->num_train; i++) {
        float alpha = 1.0f - betas[i];
        acc *= (double)alpha;
        s->alphas_cumprod[i] = (float)acc;
    }
    s->final_alpha_cumprod = set_one ? 1.0f : s->alphas_cumprod[0];
    s->init_noise_sigma = 1.0f;
    free(betas);
    locus_json_free(&doc);
    return LOCUS_OK;
}

void locus_scheduler_free(locus_scheduler *s) {
    free(s->alphas_cumprod);
    s->alphas_cumprod = NULL;
    for (int i = 0; i < 4; i++) { free(s->ets[i]); s->ets[i] = NULL; }
    free(s->cur_sample);
    s->cur_sample = NULL;
}

/* the spaced integer timesteps in ascending order (diffusers' _timesteps before reversal), as doubles */
static locus_status spaced(const locus_scheduler *s, int n, double *t) {
    if (!strcmp(s->spacing, "leading")) {
        int ratio = s->num_train / n;
        for (int i = 0; i < n; i++) t[i] = (double)i * ratio + s->steps_offset;
    } else if (!strcmp(s->spacing, "trailing")) {
        double ratio = (double)s->num_train / n;
        for (int i = 0; i < n; i++) t[n - 1 - i] = nearbyint((double)s->num_train - i * ratio) - 1; /* np.round: half to even */
    } else if (!strcmp(s->spacing, "linspace")) {
        for (int i = 0; i < n; i++) t[i] = n == 1 ? 0 : (double)(s->num_train - 1) * i / (n - 1);
    } else {
        return locus_fail(LOCUS_E_UNSUPPORTED, "timestep_spacing '%s' is not supported", s->spacing);
    }
    return LOCUS_OK;
}

void locus_scheduler_set_image_tokens(locus_scheduler *s, int tokens) { s->image_tokens = tokens; }

/* FlowMatchEulerDiscreteScheduler.set_timesteps: static shift, or dynamic shifting with mu from the image
 * token count (calculate_shift + time_shift, in float64 as numpy/math do, then float32) */
static void flow_set(locus_scheduler *s, int n) {
    float N = (float)s->num_train, sh = s->dynamic_shift ? 1.0f : s->shift;
    /* __init__: sigmas = t/N for t = N..1 (fp32), shifted in fp32 unless dynamic; sigma_max/min are its ends */
    float smax = 1.0f, smin = 1.0f / N;
    smax = sh * smax / (1.0f + (sh - 1.0f) * smax);
    smin = sh * smin / (1.0f + (sh - 1.0f) * smin);
    double t0 = (double)smax * s->num_train, t1 = (double)smin * s->num_train; /* python floats */
    double step = n > 1 ? (t1 - t0) / (n - 1) : 0;
    double mu = 0, emu = 0;
    if (s->dynamic_shift) {
        double m = (s->max_shift - s->base_shift) / (s->max_seq - s->base_seq), b = s->base_shift - m * s->base_seq;
        mu = s->image_tokens * m + b;
        emu = LOCUS_EXP_D1(mu);
    }
    for (int i = 0; i < n; i++) {
        double t = i * step + t0; /* np.linspace: arange * step + start, last = stop */
        if (n > 1 && i == n - 1) t = t1;
        double sg = t / s->num_train;
        if (s->dynamic_shift) sg = s->shift_linear ? mu / (mu + (1.0 / sg - 1.0)) : emu / (emu + (1.0 / sg - 1.0));
        else sg = (double)sh * sg / (1.0 + ((double)sh - 1.0) * sg);
        s->sigmas[i] = (float)sg;
        s->timesteps_f[i] = s->sigmas[i] * N;
    }
    s->sigmas[n] = 0.0f;
    s->init_noise_sigma = 1.0f;
}

locus_status locus_scheduler_set_timesteps(locus_scheduler *s, int n) {
    if (s->kind == LOCUS_SCHED_FLOW && s->dynamic_shift && s->image_tokens <= 0)
        return locus_fail(LOCUS_E_ARG, "dynamic shifting needs the image size (locus_scheduler_set_image_tokens)");
    if (n < 1 || n > s->num_train || n > SCHED_MAX_STEPS)
        return locus_fail(LOCUS_E_ARG, "--steps %d: must be between 1 and %d", n, s->num_train < SCHED_MAX_STEPS ? s->num_train : SCHED_MAX_STEPS);
    if (s->kind == LOCUS_SCHED_FLOW) {
        s->nsteps = s->nevals = n;
        flow_set(s, n);
        return LOCUS_OK;
    }
    double t[SCHED_MAX_STEPS];
    locus_status st = spaced(s, n, t);
    if (st) return st;
    s->nsteps = n;
    s->nevals = n;
    s->nets = s->counter = 0;
    /* DDIM and PNDM index alphas_cumprod with every timestep: refuse a schedule reaching past it (e.g. leading
     * spacing with steps_offset 1 at --steps 1000 gives timestep 1000 of 0..999; diffusers raises an
     * IndexError there).  Euler interpolates sigmas and clamps, as np.interp does. */
    for (int i = 0; i < n && s->kind != LOCUS_SCHED_EULER; i++)
        if (!(t[i] >= 0 && t[i] <= s->num_train - 1))
            return locus_fail(LOCUS_E_ARG, "--steps %d: timestep %.0f is outside the scheduler's 0..%d (num_train_timesteps %d, steps_offset %d, %s spacing)",
                              n, t[i], s->num_train - 1, s->num_train, s->steps_offset, s->spacing);
    s->gen_started = 0;
    if (s->kind == LOCUS_SCHED_DDIM || s->kind == LOCUS_SCHED_DDPM) {
        for (int i = 0; i < n; i++) s->timesteps[i] = (int64_t)nearbyint(t[n - 1 - i]);
    } else if (s->kind == LOCUS_SCHED_PNDM) {
        /* plms: [_t[:-1], _t[-2:-1], _t[-1:]] reversed: the second-to-last timestep is evaluated twice */
        int64_t asc[SCHED_MAX_STEPS + 1];
        int m = 0;
        for (int i = 0; i < n - 1; i++) asc[m++] = (int64_t)nearbyint(t[i]);
        if (n >= 2) asc[m++] = (int64_t)nearbyint(t[n - 2]);
        asc[m++] = (int64_t)nearbyint(t[n - 1]);
        for (int i = 0; i < m; i++) s->timesteps[i] = asc[m - 1 - i];
        s->nevals = m;
    } else { /* Euler: sigma table in fp32, np.interp at the (fp32) timesteps in float64, trailing 0 */
        for (int i = 0; i < n; i++) s->timesteps_f[i] = (float)t[n - 1 - i];
        for (int i = 0; i < n; i++) {
            double x = s->timesteps_f[i];
            int lo = (int)floor(x);
            if (lo < 0) lo = 0;
            if (lo > s->num_train - 1) lo = s->num_train - 1;
            int hi = lo + 1 < s->num_train ? lo + 1 : lo;
            float a0 = s->alphas_cumprod[lo], a1 = s->alphas_cumprod[hi];
            double s0 = (double)sqrtf((1.0f - a0) / a0), s1 = (double)sqrtf((1.0f - a1) / a1);
            double v = hi == lo ? s0 : s0 + (x - lo) * (s1 - s0);
            s->sigmas[i] = (float)v;
        }
        s->sigmas[n] = 0.0f;
        float mx = 0;
        for (int i = 0; i <= n; i++) if (s->sigmas[i] > mx) mx = s->sigmas[i];
        s->init_noise_sigma = (!strcmp(s->spacing, "linspace") || !strcmp(s->spacing, "trailing")) ? mx : sqrtf(mx * mx + 1.0f);
    }
    return LOCUS_OK;
}

locus_status locus_scheduler_override(locus_scheduler *s, const char *name) {
    if (s->kind == LOCUS_SCHED_FLOW && strcmp(name, "flow"))
        return locus_fail(LOCUS_E_ARG, "--sampler %s: this model is trained for flow matching (use the folder's scheduler)", name);
    if (!strcmp(name, "flow")) return s->kind == LOCUS_SCHED_FLOW ? LOCUS_OK : locus_fail(LOCUS_E_ARG, "--sampler flow: this model is not a flow-matching model");
    if (!strcmp(name, "ddim")) { s->kind = LOCUS_SCHED_DDIM; snprintf(s->class_name, sizeof s->class_name, "DDIMScheduler"); }
    else if (!strcmp(name, "euler")) { s->kind = LOCUS_SCHED_EULER; s->clip_sample = 0; snprintf(s->class_name, sizeof s->class_name, "EulerDiscreteScheduler"); }
    else if (!strcmp(name, "pndm")) { s->kind = LOCUS_SCHED_PNDM; s->clip_sample = 0; s->skip_prk = 1; snprintf(s->class_name, sizeof s->class_name, "PNDMScheduler"); }
    else return locus_fail(LOCUS_E_ARG, "--sampler %s: unknown (ddim, euler, pndm)", name);
    return LOCUS_OK;
}

float locus_scheduler_timestep(const locus_scheduler *s, int i) {
    return s->kind == LOCUS_SCHED_EULER || s->kind == LOCUS_SCHED_FLOW ? s->timesteps_f[i] : (float)s->timesteps[i];
}

void locus_scheduler_scale_input(const locus_scheduler *s, int i, const float *sample, float *out, size_t n) {
    if (s->kind != LOCUS_SCHED_EULER) {
        if (out != sample) memcpy(out, sample, n * sizeof(float));
        return;
    }
    float sg = s->sigmas[i], d = sqrtf(sg * sg + 1.0f);
    for (size_t k = 0; k < n; k++) out[k] = sample[k] / d;
}

static void ddim_step(const locus_scheduler *s, int i, const float *eps, const float *x, float *prev, size_t n) {
    int64_t t = s->timesteps[i], tp = t - s->num_train / s->nsteps;
    float a_t = s->alphas_cumprod[t];
    float a_prev = tp >= 0 ? s->alphas_cumprod[tp] : s->final_alpha_cumprod;
    float beta_t = 1.0f - a_t;
    float sb = sqrtf(beta_t), sa = sqrtf(a_t), sdir = sqrtf(1.0f - a_prev - 0.0f), sap = sqrtf(a_prev);
    for (size_t k = 0; k < n; k++) {
        float x0, e;
        if (s->pred == LOCUS_PRED_EPSILON) {
            x0 = (x[k] - sb * eps[k]) / sa;
            e = eps[k];
        } else {
            x0 = sa * x[k] - sb * eps[k];
            e = sa * eps[k] + sb * x[k];
        }
        if (s->clip_sample) x0 = x0 < -s->clip_range ? -s->clip_range : x0 > s->clip_range ? s->clip_range : x0;
        float dir = sdir * e;
        prev[k] = sap * x0 + dir;
    }
}

static void euler_step(const locus_scheduler *s, int i, const float *mo, const float *x, float *prev, size_t n) {
    float sg = s->sigmas[i], dt = s->sigmas[i + 1] - sg, s2 = sg * sg + 1.0f, sq = sqrtf(s2);
    for (size_t k = 0; k < n; k++) {
        float x0 = s->pred == LOCUS_PRED_EPSILON ? x[k] - sg * mo[k] : mo[k] * (-sg / sq) + x[k] / s2;
        float der = (x[k] - x0) / sg;
        prev[k] = x[k] + der * dt;
    }
}

/* PNDMScheduler._get_prev_sample */
static void pndm_prev(const locus_scheduler *s, const float *x, int64_t t, int64_t tp, const float *mo, float *prev, size_t n) {
    float a_t = s->alphas_cumprod[t], a_p = tp >= 0 ? s->alphas_cumprod[tp] : s->final_alpha_cumprod;
    float b_t = 1.0f - a_t, b_p = 1.0f - a_p;
    float sc = sqrtf(a_p / a_t);
    float denom = a_t * sqrtf(b_p) + sqrtf(a_t * b_t * a_p);
    float diff = a_p - a_t, sa = sqrtf(a_t), sb = sqrtf(b_t);
    for (size_t k = 0; k < n; k++) {
        float m = s->pred == LOCUS_PRED_V ? sa * mo[k] + sb * x[k] : mo[k];
        prev[k] = sc * x[k] - diff * m / denom;
    }
}

static locus_status pndm_step(locus_scheduler *s, const float *mo, const float *x, float *prev, size_t n) {
    if (s->state_n != n) {
        for (int i = 0; i < 4; i++) { free(s->ets[i]); s->ets[i] = malloc(n * sizeof(float)); }
        free(s->cur_sample);
        s->cur_sample = malloc(n * sizeof(float));
        s->state_n = n;
        if (!s->cur_sample || !s->ets[3]) return locus_fail(LOCUS_E_NOMEM, "out of memory in the PNDM scheduler");
    }
    int ratio = s->num_train / s->nsteps;
    int64_t t = s->timesteps[s->counter], tp = t - ratio;
    if (s->counter != 1) { /* ets = ets[-3:] + [model_output] */
        if (s->nets == 4) {
            float *f = s->ets[0];
            s->ets[0] = s->ets[1]; s->ets[1] = s->ets[2]; s->ets[2] = s->ets[3]; s->ets[3] = f;
            s->nets = 3;
        }
        memcpy(s->ets[s->nets++], mo, n * sizeof(float));
    } else {
        tp = t;
        t = t + ratio;
    }
    float *m = malloc(n * sizeof(float)), *xin = malloc(n * sizeof(float));
    if (!m || !xin) { free(m); free(xin); return locus_fail(LOCUS_E_NOMEM, "out of memory in the PNDM scheduler"); }
    memcpy(xin, x, n * sizeof(float));
    const float *e1 = s->ets[s->nets - 1], *e2 = s->nets > 1 ? s->ets[s->nets - 2] : NULL, *e3 = s->nets > 2 ? s->ets[s->nets - 3] : NULL,
                *e4 = s->nets > 3 ? s->ets[s->nets - 4] : NULL;
    if (s->nets == 1 && s->counter == 0) {
        memcpy(m, mo, n * sizeof(float));
        memcpy(s->cur_sample, x, n * sizeof(float));
    } else if (s->nets == 1 && s->counter == 1) {
        for (size_t k = 0; k < n; k++) m[k] = (mo[k] + e1[k]) / 2.0f;
        memcpy(xin, s->cur_sample, n * sizeof(float));
    } else if (s->nets == 2) {
        for (size_t k = 0; k < n; k++) m[k] = (3.0f * e1[k] - e2[k]) / 2.0f;
    } else if (s->nets == 3) {
        for (size_t k = 0; k < n; k++) m[k] = (23.0f * e1[k] - 16.0f * e2[k] + 5.0f * e3[k]) / 12.0f;
    } else {
        const float c = (float)(1.0 / 24.0);
        for (size_t k = 0; k < n; k++) m[k] = c * (55.0f * e1[k] - 59.0f * e2[k] + 37.0f * e3[k] - 9.0f * e4[k]);
    }
    pndm_prev(s, xin, t, tp, m, prev, n);
    s->counter++;
    free(m);
    free(xin);
    return LOCUS_OK;
}

int locus_scheduler_wants_variance(const locus_scheduler *s) { return s->kind == LOCUS_SCHED_DDPM && s->var_type == LOCUS_VAR_LEARNED_RANGE; }

void locus_scheduler_set_noise_seed(locus_scheduler *s, uint64_t seed, size_t skip) {
    s->noise_seed = seed;
    s->noise_skip = skip;
    s->gen_started = 0;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* DDPMScheduler._threshold_sample on x[n] in place: s = torch.quantile(|x|, ratio) (linear interpolation, fp32
 * rank q * (n - 1) and lerp as torch computes them), clamped to [1, sample_max_value]; x = clamp(x, -s, s) / s */
static locus_status threshold(const locus_scheduler *s, float *x, size_t n) {
    float *a = malloc(n * sizeof(float));
    if (!a) return locus_fail(LOCUS_E_NOMEM, "out of memory in the DDPM scheduler");
    for (size_t k = 0; k < n; k++) a[k] = fabsf(x[k]);
    qsort(a, n, sizeof(float), cmp_float);
    float rank = s->thr_ratio * (float)(n - 1), lo = floorf(rank), w = rank - lo;
    size_t il = (size_t)lo, ih = (size_t)ceilf(rank);
    if (ih >= n) ih = n - 1;
    float vl = a[il], vh = a[ih];
    float q = w < 0.5f ? vl + w * (vh - vl) : vh - (vh - vl) * (1.0f - w); /* torch.lerp */
    free(a);
    q = q < 1.0f ? 1.0f : q > s->sample_max ? s->sample_max : q;
    for (size_t k = 0; k < n; k++) {
        float v = x[k] < -q ? -q : x[k] > q ? q : x[k];
        x[k] = v / q;
    }
    return LOCUS_OK;
}

/* DDPMScheduler.step (epsilon or v prediction; variance fixed_small or learned_range with mo[n..2n) the
 * predicted variance); the noise of t > 0 from the run's generator, one randn(n) per step */
static locus_status ddpm_step(locus_scheduler *s, int i, const float *mo, const float *x, float *prev, size_t n) {
    int64_t t = s->timesteps[i], tp = i + 1 < s->nsteps ? s->timesteps[i + 1] : -1; /* previous_timestep */
    float a_t = s->alphas_cumprod[t], a_p = tp >= 0 ? s->alphas_cumprod[tp] : 1.0f;
    float b_t = 1.0f - a_t, b_p = 1.0f - a_p, cur_a = a_t / a_p, cur_b = 1.0f - cur_a;
    float sb = sqrtf(b_t), sa = sqrtf(a_t);
    float *x0 = malloc(n * sizeof(float)), *noise = t > 0 ? malloc(n * sizeof(float)) : NULL;
    if (!x0 || (t > 0 && !noise)) { free(x0); free(noise); return locus_fail(LOCUS_E_NOMEM, "out of memory in the DDPM scheduler"); }
    for (size_t k = 0; k < n; k++) x0[k] = s->pred == LOCUS_PRED_EPSILON ? (x[k] - sb * mo[k]) / sa : sa * x[k] - sb * mo[k];
    if (s->thresholding) {
        locus_status st = threshold(s, x0, n);
        if (st) { free(x0); free(noise); return st; }
    } else if (s->clip_sample) {
        for (size_t k = 0; k < n; k++) x0[k] = x0[k] < -s->clip_range ? -s->clip_range : x0[k] > s->clip_range ? s->clip_range : x0[k];
    }
    float c0 = sqrtf(a_p) * cur_b / b_t, cx = sqrtf(cur_a) * b_p / b_t;
    if (t > 0) {
        if (!s->gen_started) { /* the run's generator, past the initial noise */
            locus_mt19937_seed(&s->gen, s->noise_seed);
            if (s->noise_skip) {
                float *skip = malloc(s->noise_skip * sizeof(float));
                if (!skip) { free(x0); free(noise); return locus_fail(LOCUS_E_NOMEM, "out of memory in the DDPM scheduler"); }
                locus_randn_gen(&s->gen, skip, s->noise_skip);
                free(skip);
            }
            s->gen_started = 1;
        }
        locus_randn_gen(&s->gen, noise, n);
    }
    /* _get_variance: (1 - a_prev) / (1 - a_t) * beta_t clamped at 1e-20; learned_range interpolates its log with
     * log(beta_t) by frac = (v + 1) / 2 per element */
    float var = (1.0f - a_p) / (1.0f - a_t) * cur_b;
    var = var < 1e-20f ? 1e-20f : var;
    float min_log = LOCUS_LOGF_1(var), max_log = LOCUS_LOGF_1(cur_b), sd = sqrtf(var);
    for (size_t k = 0; k < n; k++) {
        float p = c0 * x0[k] + cx * x[k];
        if (t > 0) {
            float v;
            if (s->var_type == LOCUS_VAR_LEARNED_RANGE) {
                float frac = (mo[n + k] + 1.0f) / 2.0f, lv = frac * max_log + (1.0f - frac) * min_log;
                v = LOCUS_EXPF_1(0.5f * lv) * noise[k];
            } else {
                v = sd * noise[k];
            }
            p = p + v;
        }
        prev[k] = p;
    }
    free(x0);
    free(noise);
    return LOCUS_OK;
}

locus_status locus_scheduler_step(locus_scheduler *s, int i, const float *mo, const float *x, float *prev, size_t n) {
    switch (s->kind) {
    case LOCUS_SCHED_DDIM: ddim_step(s, i, mo, x, prev, n); return LOCUS_OK;
    case LOCUS_SCHED_EULER: euler_step(s, i, mo, x, prev, n); return LOCUS_OK;
    case LOCUS_SCHED_PNDM: return pndm_step(s, mo, x, prev, n);
    case LOCUS_SCHED_DDPM: return ddpm_step(s, i, mo, x, prev, n);
    case LOCUS_SCHED_FLOW: { /* prev = sample + (sigma_next - sigma) * model_output */
        float dt = s->sigmas[i + 1] - s->sigmas[i];
        for (size_t k = 0; k < n; k++) prev[k] = x[k] + dt * mo[k];
        return LOCUS_OK;
    }
    }
    return LOCUS_OK;
}

const char *locus_scheduler_name(const locus_scheduler *s) {
    return s->kind == LOCUS_SCHED_EULER ? "euler" : s->kind == LOCUS_SCHED_PNDM ? "pndm" : s->kind == LOCUS_SCHED_FLOW ? "flow"
           : s->kind == LOCUS_SCHED_DDPM ? "ddpm" : "ddim";
}
