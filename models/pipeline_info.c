/* pipeline_info.c — `locus info --model DIR`: the architecture of a pipeline folder, per family (this is
 * models/: the one place besides the registry that knows the families' structs). */
#include <stdio.h>

#include "../simd/kernels.h"
#include "if_unet.h"
#include "mmdit.h"
#include "pipeline.h"
#include "unet.h"

void locus_pipeline_print_info(const locus_pipeline *pp, const char *dir) {
    const locus_pipeline p = *pp; /* a shallow copy: read-only use of the same buffers */
    printf("model: %s (%s)\n", dir, p.class_name);
    printf("model_hash: %016llx\n", p.model_hash);
    if (p.kind == LOCUS_PIPE_SD3) {
        const locus_mmdit *m = p.den.model;
        printf("transformer: SD3Transformer2DModel, %d joint blocks, %d heads x %d, patch %d, joint_attention_dim %d, qk_norm %s, %zu parameters\n",
               m->nlayers, m->heads, m->head_dim, m->patch, m->joint_dim, m->qk_norm ? "rms_norm" : "none", m->L.nparams);
        printf("vae: AutoencoderKL, %d latent channels, factor %d, scaling %g, shift %g, %zu parameters\n", p.vae.latent_channels, p.vae_factor,
               p.vae.scaling_factor, p.vae.shift_factor, p.vae.L.nparams);
        if (p.has_text) printf("text_encoder: CLIPTextModelWithProjection, %d layers, width %d, %zu parameters\n", p.text.nlayers, p.text.D, p.text.L.nparams);
        if (p.has_text2) printf("text_encoder_2: CLIPTextModelWithProjection, %d layers, width %d, %zu parameters\n", p.text2.nlayers, p.text2.D, p.text2.L.nparams);
        if (p.has_t5) printf("text_encoder_3: T5EncoderModel, %d blocks, width %d, %zu parameters\n", p.t5.nlayers, p.t5.D, p.t5.L.nparams);
        if (p.sched.dynamic_shift)
            printf("scheduler: %s, dynamic shifting (mu from %g at %g image tokens to %g at %g, %s)\n", p.sched.class_name, p.sched.base_shift,
                   p.sched.base_seq, p.sched.max_shift, p.sched.max_seq, p.sched.shift_linear ? "linear" : "exponential");
        else
            printf("scheduler: %s, shift %g\n", p.sched.class_name, p.sched.shift);
        int ss = p.den.sample_size * p.vae_factor, sw = p.den.sample_width * p.vae_factor;
        printf("peak memory estimate: %.1f MiB at %dx%d (default size), %.1f MiB at 1024x1024 (77 + 256 text tokens, fp32 weights)\n",
               (double)locus_pipeline_peak_estimate(&p, sw, ss, 77 + 256, locus_threads()) / (1 << 20), sw, ss,
               (double)locus_pipeline_peak_estimate(&p, 1024, 1024, 77 + 256, locus_threads()) / (1 << 20));
        return;
    }
    if (p.kind == LOCUS_PIPE_IF) {
        const locus_if_unet *f = p.den.model;
        printf("unet: UNet2DConditionModel (DeepFloyd IF stage I, pixel space), %d blocks, channels", f->nblocks);
        for (int i = 0; i < f->nblocks; i++) printf(" %d", f->block_out[i]);
        printf(", %d -> %d channels, cross_attention_dim %d, encoder_hid_dim %d, %d added-KV attention layers, %zu parameters (%s)\n", f->in_channels,
               f->out_channels, f->cross_dim, f->hid_dim, p.den.ntext_layers, f->L.nparams, f->L.weights_path);
        if (p.has_t5) printf("text_encoder: T5EncoderModel, %d blocks, width %d, %zu parameters\n", p.t5.nlayers, p.t5.D, p.t5.L.nparams);
        else printf("text_encoder: none (prompt embeddings from --prompt-embeds)\n");
        printf("scheduler: %s, %d train steps, spacing %s%s\n", p.sched.class_name, p.sched.num_train, p.sched.spacing,
               p.sched.kind == LOCUS_SCHED_DDPM && p.sched.var_type == LOCUS_VAR_LEARNED_RANGE ? ", learned_range variance" : "");
        int ss = p.den.sample_size;
        printf("peak memory estimate: %.1f MiB at %dx%d (default size), %.1f MiB at 64x64 (77 text tokens, fp32 weights)\n",
               (double)locus_pipeline_peak_estimate(&p, ss, ss, 77, locus_threads()) / (1 << 20), ss, ss,
               (double)locus_pipeline_peak_estimate(&p, 64, 64, 77, locus_threads()) / (1 << 20));
        return;
    }
    const locus_unet *u = p.den.model;
    printf("unet: UNet2DConditionModel, %d blocks, channels", u->nblocks);
    for (int i = 0; i < u->nblocks; i++) printf(" %d", u->block_out[i]);
    printf(", cross_attention_dim %d, %zu parameters (%s)\n", u->ctx_dim, u->L.nparams, u->L.weights_path);
    printf("vae: AutoencoderKL, %d latent channels, factor %d, scaling %g, %zu parameters\n", p.vae.latent_channels, p.vae_factor,
           p.vae.scaling_factor, p.vae.L.nparams);
    if (p.has_text)
        printf("text_encoder: %s, %d layers, width %d, %zu parameters\n", p.text.kind == LOCUS_TEXT_CLIP ? "CLIPTextModel" : "LDMBertModel",
               p.text.nlayers, p.text.D, p.text.L.nparams);
    if (p.has_text2) printf("text_encoder_2: CLIPTextModelWithProjection, %d layers, width %d, projection %d, %zu parameters\n", p.text2.nlayers,
                            p.text2.D, p.text2.proj_dim, p.text2.L.nparams);
    if (u->add_time)
        printf("added conditioning: text_time (pooled text %d + 6 size numbers x Timesteps(%d)); force_zeros_for_empty_prompt %s\n", u->add_text_dim,
               u->add_time_dim, p.force_zeros ? "true" : "false");
    printf("scheduler: %s, %d train steps, spacing %s\n", p.sched.class_name, p.sched.num_train, p.sched.spacing);
    int ss = p.den.sample_size * p.vae_factor, sw = p.den.sample_width * p.vae_factor;
    printf("peak memory estimate: %.1f MiB at %dx%d (default size), %.1f MiB at 512x512 (77 text tokens, fp32 weights)\n",
           (double)locus_pipeline_peak_estimate(&p, sw, ss, 77, locus_threads()) / (1 << 20), sw, ss,
           (double)locus_pipeline_peak_estimate(&p, 512, 512, 77, locus_threads()) / (1 << 20));
    /* weight dtypes of the UNet file */
    int cnt[LOCUS_DTYPE_COUNT] = {0};
    for (size_t f = 0; f < u->L.st.nfiles; f++)
        for (size_t i = 0; i < u->L.st.files[f].count; i++) cnt[u->L.st.files[f].tensors[i].dtype]++;
    printf("unet weight dtypes:");
    for (int d = 0; d < LOCUS_DTYPE_COUNT; d++)
        if (cnt[d]) printf(" %s x%d", locus_dtype_name((locus_dtype)d), cnt[d]);
    printf("\n");
}

const char *locus_pipeline_family(const locus_pipeline *p) {
    switch (p->kind) {
    case LOCUS_PIPE_SD: return "sd";
    case LOCUS_PIPE_LDM: return "ldm";
    case LOCUS_PIPE_SD3: return "sd3";
    case LOCUS_PIPE_SDXL: return "sdxl";
    case LOCUS_PIPE_IF: return "if";
    }
    return "?";
}
