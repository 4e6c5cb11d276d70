/* scheduler.c — DDIM in diffusers' fp32 arithmetic (see scheduler.h). */
#include "scheduler.h"

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
    int ok = 1;
    const char *cls = locus_json_str(r, "_class_name", "DDIMScheduler", &ok);
    snprintf(s->class_name, sizeof s->class_name, "%s", cls);
    if (strcmp(cls, "DDIMScheduler") != 0) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: scheduler '%s' is not supported yet (DDIMScheduler is)", p, cls);
    }
    s->kind = LOCUS_SCHED_DDIM;
    s->num_train = (int)locus_json_int(r, "num_train_timesteps", 1000, &ok);
    float b0 = (float)locus_json_num(r, "beta_start", 0.0001, &ok), b1 = (float)locus_json_num(r, "beta_end", 0.02, &ok);
    const char *bs = locus_json_str(r, "beta_schedule", "linear", &ok);
    const char *pt = locus_json_str(r, "prediction_type", "epsilon", &ok);
    snprintf(s->spacing, sizeof s->spacing, "%s", locus_json_str(r, "timestep_spacing", "leading", &ok));
    s->steps_offset = (int)locus_json_int(r, "steps_offset", 0, &ok);
    s->clip_sample = locus_json_bool(r, "clip_sample", 1, &ok);
    s->clip_range = (float)locus_json_num(r, "clip_sample_range", 1.0, &ok);
    int set_one = locus_json_bool(r, "set_alpha_to_one", 1, &ok);
    int thresholding = locus_json_bool(r, "thresholding", 0, &ok), zsnr = locus_json_bool(r, "rescale_betas_zero_snr", 0, &ok);
    const locus_json *tb = locus_json_get(r, "trained_betas");
    if (!ok || s->num_train < 1 || s->num_train > 100000) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_FORMAT, "%s: bad value type or num_train_timesteps", p);
    }
    if (thresholding || zsnr || (tb && tb->type != JSON_NULL)) {
        locus_json_free(&doc);
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: thresholding / rescale_betas_zero_snr / trained_betas are not supported", p);
    }
    if (!strcmp(pt, "epsilon")) s->pred = LOCUS_PRED_EPSILON;
    else if (!strcmp(pt, "v_prediction")) s->pred = LOCUS_PRED_V;
    else { locus_json_free(&doc); return locus_fail(LOCUS_E_UNSUPPORTED, "%s: prediction_type '%s' is not supported", p, pt); }
    float *betas = malloc(sizeof(float) * s->num_train);
    s->alphas_cumprod = malloc(sizeof(float) * s->num_train);
    if (!strcmp(bs, "linear")) linspace_f32(b0, b1, s->num_train, betas);
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
}

locus_status locus_scheduler_set_timesteps(locus_scheduler *s, int n) {
    if (n < 1 || n > s->num_train || n > SCHED_MAX_STEPS)
        return locus_fail(LOCUS_E_ARG, "--steps %d: must be between 1 and %d", n, s->num_train < SCHED_MAX_STEPS ? s->num_train : SCHED_MAX_STEPS);
    s->nsteps = n;
    if (!strcmp(s->spacing, "leading")) {
        int ratio = s->num_train / n;
        for (int i = 0; i < n; i++) s->timesteps[i] = (int64_t)(n - 1 - i) * ratio + s->steps_offset;
    } else if (!strcmp(s->spacing, "trailing")) {
        double ratio = (double)s->num_train / n;
        for (int i = 0; i < n; i++) s->timesteps[i] = (int64_t)nearbyint((double)s->num_train - i * ratio) - 1; /* np.round: half to even */
    } else if (!strcmp(s->spacing, "linspace")) {
        for (int i = 0; i < n; i++) {
            double v = n == 1 ? 0 : (double)(s->num_train - 1) * (n - 1 - i) / (n - 1);
            s->timesteps[i] = (int64_t)nearbyint(v);
        }
    } else {
        return locus_fail(LOCUS_E_UNSUPPORTED, "timestep_spacing '%s' is not supported", s->spacing);
    }
    return LOCUS_OK;
}

void locus_scheduler_step(const locus_scheduler *s, int i, const float *eps, const float *x, float *prev, size_t n) {
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
