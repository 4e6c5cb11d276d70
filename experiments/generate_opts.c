/* generate_opts.c — the option table and --help text of `locus generate` (generate_opts.h). */
#include "generate_opts.h"

#define OS(f, m, h) LOCUS_OPT_S(gen_args, f, m, h)
#define OI(f, m, lo, hi, h) LOCUS_OPT_I(gen_args, f, m, lo, hi, h)
const locus_opt locus_generate_opts[] = {
    OS("--model", model, "DIR  diffusers pipeline folder (required)"), OS("--prompt", prompt, "TEXT  the prompt (required unless --prompt-embeds)"),
    OS("--negative-prompt", negative, "TEXT  negative prompt (default: none: the empty prompt, or zeros for SDXL's force_zeros_for_empty_prompt)"),
    OS("--original-size", size_cond[0], "H,W  SDXL size conditioning (default: the output size)"),
    OS("--crops-coords-top-left", size_cond[1], "Y,X  SDXL crop conditioning (default 0,0)"), OS("--target-size", size_cond[2], "H,W  SDXL target size conditioning (default: the output size)"),
    OS("-o", out, "OUT.png  the image (required)"), OS("--output", out, "OUT.png  same as -o (required)"), OS("--noise", noise_file, "FILE  tensor 'noise' [1,C,h,w] instead of the seed (default: seeded torch.randn)"),
    OS("--prompt-embeds", embeds_file, "FILE  cond, uncond [1,T,D] (+ cond_pooled, uncond_pooled) instead of the text encoders (default: encode --prompt)"), OS("--dump", dump_file, "FILE  safetensors file of every step's predictions and latents and the image (default: none)"),
    OS("--sampler", sampler, "ddim|euler|pndm|flow  (default: the folder's scheduler)"), OS("--patch-prompt", patch_prompt, "TEXT  prompt B, whose text the --patch-layers read (default: none)"),
    OS("--patch-embeds", patch_embeds, "FILE  prompt B's cond embeddings instead of --patch-prompt (default: none)"), OS("--patch-layers", patch_layers, "L1,L2  text layers (or blocks) given prompt B's K/V (default: none)"),
    OS("--patch-halves", halves, "cond|both  CFG halves patched (default cond)"), LOCUS_OPT_L(gen_args, "--lora", lora, "FILE[:SCALE]  LoRA adapters, repeatable (default: none; scale 1)"), OS("--cache", cache_file, "FILE  safetensors file the --cache-points of every step stream to (default: none)"), OS("--cache-points", cache_points, "PATTERN[,PATTERN]  hook points to cache, e.g. '*attn2.probs' (default: none)"),
    OS("--intervene", intervene, "PATTERN=zero|scale:F|mean|replace:CACHE[;...]  change hook points in place (default: none)"), OS("--intervene-steps", iv_steps, "FROM:TO  steps the interventions apply to (default all)"),
    OS("--intervene-heads", iv_heads, "H1,H2  heads the interventions change (needs --heads; default all)"), OS("--intervene-half", iv_half, "cond|uncond|both  CFG half the interventions change (default cond)"),
    OI("--heads", iv_nheads, 1, 64, "N  heads of the hooked tensors (default: none; needed by --intervene-heads)"), OI("--start-step", start_step, 0, 1000, "N  first patched step (default 0)"),
    OI("--seed", seed, 0, 1LL << 53, "N  seed of the initial noise (default 0)"), OI("--steps", steps, 1, 1000, "N  denoising steps (default 50)"), OI("--width", width, 8, 8192, "W  image width (default: the model's size)"),
    OI("--height", height, 8, 8192, "H  image height (default: the model's size)"), OI("--clip-skip", clip_skip, 0, 64, "N  SD1.x/SD2: final LN of the N-th last CLIP layer's input (default 0 = last layer)"),
    OI("--max-sequence-length", max_seq, 1, 512, "N  T5 tokens (default 256)"), OI("--threads", threads, 1, 1024, "N  threads (default: all cores; results do not change)"),
    LOCUS_OPT_F(gen_args, "--guidance", guidance, 0, 100, "G  classifier-free guidance scale (default: the pipeline's, e.g. 7.5)"),
};

const locus_help locus_generate_help = {
    "generate", "--model DIR (--prompt TEXT | --prompt-embeds FILE) -o OUT.png [options]",
    "Text to image with a diffusers pipeline folder (SD1.x/2.x, SDXL, SD3/SD3.5), with optional text patching, hook-point caching and interventions.",
    "Patching (the paper's experiment): --patch-layers L1,L2 with --patch-prompt B.  UNet: the listed cross-attention\n"
    "layers (or blocks) take K/V from prompt B's text embedding; SD3: the listed joint blocks (transformer_blocks.N)\n"
    "take the text K/V recorded in prompt B's own run.  --cache FILE --cache-points PATTERN streams matching hook\n"
    "points of every step (e.g. '*attn2.k,*attn2.v', 'transformer_blocks.*.attn.add_v', '*attn2.probs') to a\n"
    "safetensors file; --intervene ablates, scales or replaces hook points in place (replace: the same point and\n"
    "step from a --cache file of another run).  The same inputs give the same output bits on any ISA and thread count.\n",
    NULL};
const size_t locus_generate_nopts = sizeof locus_generate_opts / sizeof *locus_generate_opts;
