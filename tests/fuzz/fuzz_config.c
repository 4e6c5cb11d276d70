/* fuzz_config.c — libFuzzer target for config.json -> model build (the per-family schema validation): the first
 * byte picks the family (UNet, VAE, CLIP text encoder, T5, MM-DiT, scheduler), the rest is its config.json,
 * loaded beside the tiny golden model's real weights (sd15-tiny / sd3-tiny).  Every input must either build a
 * model or be refused with a message — no crash, no huge allocation (the loader compares the file's shapes
 * before allocating what a config implies). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../models/mmdit.h"
#include "../../models/scheduler.h"
#include "../../models/t5.h"
#include "../../models/textenc.h"
#include "../../models/unet.h"
#include "../../models/vae.h"
#include "fuzz_util.h"

static const struct { const char *dir, *weights, *golden; } fam[] = {
    {"unet", "diffusion_pytorch_model.safetensors", "pipelines/sd15-tiny/unet"},
    {"vae", "diffusion_pytorch_model.safetensors", "pipelines/sd15-tiny/vae"},
    {"text_encoder", "model.safetensors", "pipelines/sd15-tiny/text_encoder"},
    {"t5", "model.safetensors", "pipelines/sd3-tiny/text_encoder_3"},
    {"transformer", "diffusion_pytorch_model.safetensors", "pipelines/sd3-tiny/transformer"},
    {"scheduler", NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    char path[1024], target[1024];
    if (!init) { /* each family folder: a symlink to the golden weights; config.json written per input */
        for (size_t i = 0; i < sizeof fam / sizeof *fam; i++) {
            snprintf(path, sizeof path, "%s/%s", fz_dir(), fam[i].dir);
            mkdir(path, 0755);
            if (!fam[i].weights) continue;
            char rel[512];
            snprintf(rel, sizeof rel, "%s/%s", fam[i].golden, fam[i].weights);
            if (!realpath(fz_golden(rel), target)) abort(); /* run from the repository root (or set LOCUS_GOLDEN) */
            snprintf(path, sizeof path, "%s/%s/%s", fz_dir(), fam[i].dir, fam[i].weights);
            unlink(path);
            if (symlink(target, path)) abort();
        }
        init = 1;
    }
    if (size < 1) return 0;
    int k = data[0] % (int)(sizeof fam / sizeof *fam);
    char name[64];
    snprintf(name, sizeof name, "%s/%s", fam[k].dir, k == 5 ? "scheduler_config.json" : "config.json");
    fz_write(name, data + 1, size - 1);
    snprintf(path, sizeof path, "%s/%s", fz_dir(), fam[k].dir);
    switch (k) {
    case 0: { locus_unet u; if (!locus_unet_load(&u, path)) locus_unet_free(&u); break; }
    case 1: { locus_vae v; if (!locus_vae_load(&v, path)) locus_vae_free(&v); break; }
    case 2: { locus_textenc t; if (!locus_textenc_load(&t, path)) locus_textenc_free(&t); break; }
    case 3: { locus_t5 t; if (!locus_t5_load(&t, path)) locus_t5_free(&t); break; }
    case 4: { locus_mmdit m; if (!locus_mmdit_load(&m, path)) locus_mmdit_free(&m); break; }
    default: {
        locus_scheduler s;
        if (!locus_scheduler_load(&s, path)) {
            for (int n = 1; n <= 1000; n = n * 7 + 3) locus_scheduler_set_timesteps(&s, n); /* every timestep inside the table */
            locus_scheduler_free(&s);
        }
    }
    }
    return 0;
}
