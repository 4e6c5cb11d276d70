/* pipeline_if.c — DeepFloyd IF stage I folders (diffusers IFPipeline): the pixel-space UNet, the DDPM scheduler,
 * optionally T5 (text_encoder/) with its SentencePiece tokenizer (tokenizer/spiece.model).  No VAE: the sampled
 * 3-channel image is the output.  Stage II (IFSuperResolutionPipeline) is not supported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/fileio.h"
#include "../core/hash.h"
#include "pipeline.h"
#include "unicode.h"

#define IF_TOKENS 77 /* IFPipeline.encode_prompt: max_length 77 */

locus_status locus_pipeline_open_if(locus_pipeline *p, const char *dir) {
    char c[PATH_MAX + 32];
    locus_status st;
    p->kind = LOCUS_PIPE_IF;
    p->vae_factor = 1;
    if (p->den.in_channels != 3) {
        st = locus_fail(LOCUS_E_SHAPE, "%s: a DeepFloyd IF stage I UNet samples RGB images (in_channels 3, got %d); stage II is not supported", dir,
                        p->den.in_channels);
        goto fail;
    }
    snprintf(c, sizeof c, "%s/scheduler", dir);
    if (!locus_is_dir(c)) { st = locus_fail(LOCUS_E_NOTFOUND, "%s: no scheduler/ folder", dir); goto fail; }
    if ((st = locus_scheduler_load(&p->sched, c))) goto fail;
    snprintf(c, sizeof c, "%s/text_encoder", dir);
    if (locus_is_dir(c)) {
        if ((st = locus_t5_load(&p->t5, c))) goto fail;
        p->has_t5 = 1;
        if (p->t5.D != p->den.ctx_dim) {
            st = locus_fail(LOCUS_E_SHAPE, "%s: T5 width %d does not match the UNet's encoder_hid_dim %d", dir, p->t5.D, p->den.ctx_dim);
            goto fail;
        }
    }
    snprintf(c, sizeof c, "%s/tokenizer/spiece.model", dir);
    if (locus_is_file(c) && (st = locus_sp_tok_load(&p->tok3, c))) goto fail;
    unsigned long long h = LOCUS_FNV_INIT;
    h = locus_pipeline_hash_component(h, p->den.loader);
    if (p->has_t5) h = locus_pipeline_hash_component(h, &p->t5.L);
    p->model_hash = h;
    return LOCUS_OK;
fail:
    locus_pipeline_close(p); /* cleanup keeps the thread's error message */
    return st;
}

/* Python's text.lower().strip() */
static char *lower_strip(const char *text) {
    locus_ustr u = {0};
    locus_ustr_from_utf8(&u, text, strlen(text));
    locus_uc_lower(&u);
    size_t a = 0, b = u.n;
    while (a < b && locus_uc_is_space(u.cp[a])) a++;
    while (b > a && locus_uc_is_space(u.cp[b - 1])) b--;
    locus_ustr v = {u.cp + a, b - a, b - a};
    char *s = locus_ustr_to_utf8(&v, NULL);
    locus_ustr_free(&u);
    return s;
}

locus_status locus_pipeline_encode_prompt_if(const locus_pipeline *p, const char *prompt, float *embeds, int *T) {
    if (!p->has_t5 || !p->tok3)
        return locus_fail(LOCUS_E_UNSUPPORTED, "%s: prompt strings need text_encoder/ (T5) and tokenizer/spiece.model; pass --prompt-embeds FILE", p->dir);
    char *text = lower_strip(prompt ? prompt : "");
    if (!text) return locus_fail(LOCUS_E_NOMEM, "out of memory");
    int64_t ids[IF_TOKENS], mask[IF_TOKENS];
    int tr = 0;
    locus_status st = locus_sp_tok_encode_padded(p->tok3, text, IF_TOKENS, ids, &tr);
    free(text);
    if (st) return st;
    if (tr) fprintf(stderr, "locus: warning: prompt longer than %d T5 tokens was truncated\n", IF_TOKENS);
    for (int k = 0; k < IF_TOKENS; k++) mask[k] = ids[k] != 0; /* attention_mask: the pad id 0 never comes out of the tokenizer */
    *T = IF_TOKENS;
    return locus_t5_forward(&p->t5, ids, 1, IF_TOKENS, mask, embeds, -1, NULL, NULL);
}
