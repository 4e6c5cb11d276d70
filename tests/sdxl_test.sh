#!/usr/bin/env bash
# sdxl_test.sh — SDXL (issue 13) through the CLI, against diffusers v0.31 goldens:
#   - tests/golden/sdxl: StableDiffusionXLPipeline from prompt embeddings (the pooled text only; locus appends
#     the time ids from the run size), base and with B's text injected into one cross-attention layer,
#     every dumped step within 1e-4;
#   - tests/golden/pipelines/sdxl-tiny: the whole folder from prompt strings (two CLIP encoders, the
#     force_zeros_for_empty_prompt rule of run a, an encoded negative prompt in run b), steps within 1e-4,
#     pixels equal but for values on a rounding tie (at most 1 level, at most 1% of values);
#   - the same output bits for every LOCUS_ISA x threads; the size options (explicit defaults = no options,
#     another size changes the run); bad input gives one line; `locus layers` and `locus localize` on it.
# Usage: sdxl_test.sh BUILD_DIR TMPDIR   Prints "N M" (passed failed) on its last line.
set -u -o pipefail
B=$1 tmp=$2
G=tests/golden
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "  FAIL sdxl: $*"; }
gen() { "$B/locus" generate "$@" 2>"$tmp/gen.err"; }

# 1. golden_sample: prompt embeddings, base and patched (call: 32x64, 5 steps, guidance 5)
mkdir -p "$tmp/a" "$tmp/b"
"$B/test_sample" --write-inputs $G/sdxl/golden_sample.safetensors embeds.a embeds.uncond noise "$tmp/a" pooled.a pooled.uncond
"$B/test_sample" --write-inputs $G/sdxl/golden_sample.safetensors embeds.b embeds.uncond noise "$tmp/b" pooled.b pooled.uncond
xl=(--model $G/sdxl --prompt-embeds "$tmp/a/embeds.safetensors" --noise "$tmp/a/noise.safetensors" --steps 5 --guidance 5 --width 64 --height 32)
if gen "${xl[@]}" -o "$tmp/base.png" --dump "$tmp/base.st" &&
   "$B/test_sdxl" --check-dump "$tmp/base.st" $G/sdxl/golden_sample.safetensors base. 5 | sed 's/^/  /'; then ok
else bad "golden_sample base: $(tail -1 "$tmp/gen.err")"; fi
layer=up_blocks.0.attentions.1.transformer_blocks.2.attn2
if gen "${xl[@]}" --patch-embeds "$tmp/b/embeds.safetensors" --patch-layers $layer -o "$tmp/patched.png" --dump "$tmp/patched.st" &&
   "$B/test_sdxl" --check-dump "$tmp/patched.st" $G/sdxl/golden_sample.safetensors patched. 5 | sed 's/^/  /'; then ok
else bad "golden_sample patched: $(tail -1 "$tmp/gen.err")"; fi
# the patched run is not the base run (the check above would pass vacuously otherwise)
if ! "$B/test_sdxl" --check-dump "$tmp/base.st" $G/sdxl/golden_sample.safetensors patched. 5 >/dev/null; then ok; else bad "base run matches the patched golden"; fi

# 2. sdxl-tiny from prompt strings (4 steps, guidance 5, seed 42, 32x64)
for r in a b; do
  if [ $r = a ]; then word=HELLO neg=(); else word=WORLD neg=(--negative-prompt blurry); fi
  if gen --model $G/pipelines/sdxl-tiny --prompt "A sign that says \"$word\"." "${neg[@]}" --seed 42 --steps 4 --guidance 5 --width 64 --height 32 \
         -o "$tmp/x$r.png" --dump "$tmp/x$r.st" &&
     "$B/test_sdxl" --check-dump "$tmp/x$r.st" $G/pipelines/sdxl-tiny.golden/golden_pipeline.safetensors $r. 4 | sed 's/^/  /' &&
     "$B/test_sample" --pixels "$tmp/x$r.png" $G/pipelines/sdxl-tiny.golden/$r.png | sed 's/^/  /'; then ok
  else bad "sdxl-tiny run $r: $(tail -1 "$tmp/gen.err")"; fi
done
# an explicit empty negative prompt is encoded, not zeroed: a different run from a's
if gen --model $G/pipelines/sdxl-tiny --prompt 'A sign that says "HELLO".' --negative-prompt '' --seed 42 --steps 4 --guidance 5 --width 64 --height 32 \
       -o "$tmp/xe.png" --dump "$tmp/xe.st" &&
   ! "$B/test_sdxl" --check-dump "$tmp/xe.st" $G/pipelines/sdxl-tiny.golden/golden_pipeline.safetensors a. 4 >/dev/null; then ok
else bad "--negative-prompt '' gave the zero-negative run"; fi

# 3. the same bits for every ISA x threads (pixels, every dumped tensor, metadata but the ISA)
isas=$("$B/locus" info | sed -n 's/^supported: //p')
for isa in $isas; do
  for th in 1 2 3; do
    if LOCUS_ISA=$isa gen "${xl[@]}" --patch-embeds "$tmp/b/embeds.safetensors" --patch-layers $layer --threads $th -o "$tmp/p.$isa.$th.png" --dump "$tmp/p.$isa.$th.st" &&
       "$B/test_sample" --same-output "$tmp/patched.png" "$tmp/p.$isa.$th.png" "$tmp/patched.st" "$tmp/p.$isa.$th.st" &&
       LOCUS_ISA=$isa gen --model $G/pipelines/sdxl-tiny --prompt 'A sign that says "HELLO".' --seed 42 --steps 4 --width 64 --height 32 --threads $th \
         -o "$tmp/x.$isa.$th.png" --dump "$tmp/x.$isa.$th.st" &&
       "$B/test_sample" --same-output "$tmp/xa.png" "$tmp/x.$isa.$th.png" "$tmp/xa.st" "$tmp/x.$isa.$th.st"; then ok
    else bad "output differs: isa=$isa threads=$th"; fi
  done
done

# 4. size conditioning: explicit diffusers defaults = no options (same bits); another original size differs
if gen "${xl[@]}" --original-size 32,64 --crops-coords-top-left 0,0 --target-size 32,64 -o "$tmp/s1.png" --dump "$tmp/s1.st" &&
   "$B/test_sample" --same-output "$tmp/base.png" "$tmp/s1.png" "$tmp/base.st" "$tmp/s1.st"; then ok
else bad "explicit default size options changed the run"; fi
if gen "${xl[@]}" --original-size 1024,1024 --crops-coords-top-left 16,0 -o "$tmp/s2.png" --dump "$tmp/s2.st" &&
   ! "$B/test_sample" --same-output "$tmp/base.png" "$tmp/s2.png" "$tmp/base.st" "$tmp/s2.st" 2>/dev/null; then ok
else bad "--original-size/--crops-coords-top-left had no effect"; fi

# 5. bad input: one line, non-zero exit, no output
bad_gen() { # description, expected substring, args...
  local what=$1 want=$2; shift 2
  rm -f "$tmp/bad.png"
  "$B/locus" generate "$@" -o "$tmp/bad.png" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "$want" "$tmp/err" && [ ! -e "$tmp/bad.png" ]; then ok
  else bad "bad input: $what (exit $rc): $(head -2 "$tmp/err")"; fi
}
mkdir -p "$tmp/np"
"$B/test_sample" --write-inputs $G/sdxl/golden_sample.safetensors embeds.a embeds.uncond noise "$tmp/np"
bad_gen "embeddings without pooled" "cond_pooled" --model $G/sdxl --prompt-embeds "$tmp/np/embeds.safetensors" --steps 1
mkdir -p "$tmp/wp"
"$B/test_sample" --write-inputs $G/sdxl/golden_sample.safetensors embeds.a embeds.uncond noise "$tmp/wp" noise noise
bad_gen "pooled of the wrong shape" "expected \[1,40\]" --model $G/sdxl --prompt-embeds "$tmp/wp/embeds.safetensors" --steps 1
bad_gen "size pair malformed" "--original-size" --model $G/sdxl --prompt-embeds "$tmp/a/embeds.safetensors" --original-size 32 --steps 1
bad_gen "size options on a model without them" "no size conditioning" --model $G/pipelines/sd15-tiny --prompt a --target-size 64,64 --steps 1
bad_gen "prompt string without text encoders" "text_encoder_2" --model $G/sdxl --prompt a --steps 1

# 6. locus layers: 8 cross-attention layers of the tiny UNet, text parameters = its attn2 to_k/to_v tensors
m=$G/pipelines/sdxl-tiny
want=$("$B/locus" tensors $m/unet/diffusion_pytorch_model.safetensors | awk '$1 ~ /attn2\.to_[kv]\./ { gsub(/[\[\]]/, "", $3); n = split($3, d, ","); s = 1; for (i = 1; i <= n; i++) s *= d[i]; t += s } END { print t + 0 }')
got=$("$B/locus" layers --model $m | tail -1 | sed -E 's/.*layers: ([0-9]+) of.*/\1/')
nj=$("$B/locus" layers --model $m --json | grep -c '"kind": "cross"')
nx=$("$B/locus" tensors $m/unet/diffusion_pytorch_model.safetensors | grep -c 'attn2\.to_k\.weight')
if [ "$want" = "$got" ] && [ "$nj" = "$nx" ] && [ "$nj" -gt 0 ]; then ok; echo "  sdxl-tiny: $nj cross-attention layers, $got text parameters"
else bad "layers: text $got vs $want, cross $nj vs $nx"; fi

# the peak-memory estimate of locus info (both CLIP encoders, add_embedding) against a run's measured peak at 512x512
est=$("$B/locus" info --model $m | sed -n 's/^peak memory estimate: .* MiB at 32x32 (default size), \([0-9.]*\) MiB at 512x512.*/\1/p')
gen --model $m --prompt 'A sign' --steps 1 --width 512 --height 512 -o "$tmp/mem.png"
meas=$(sed -n 's/.*peak memory \([0-9.]*\) MiB.*/\1/p' "$tmp/gen.err")
if [ -n "$est" ] && [ -n "$meas" ] && awk -v e="$est" -v m="$meas" 'BEGIN { exit !(e > 0.95 * m && e < 1.05 * m) }'; then ok; echo "  peak memory at 512x512: estimate $est MiB, measured $meas MiB"
else bad "peak memory estimate '$est' vs measured '$meas'"; fi

# 7. locus localize on the tiny SDXL folder: runs, and two shards merged equal one run
printf 'HELLO\nWORLD\n' >"$tmp/words.txt"
lz=(--model $G/pipelines/sdxl-tiny --words "$tmp/words.txt" --steps 2 --seeds 0 --width 64 --height 32 --layers up_blocks.0,mid_block)
if "$B/locus" localize "${lz[@]}" -o "$tmp/lz" >/dev/null 2>"$tmp/lz.err" &&
   "$B/locus" localize "${lz[@]}" --shard 0/2 -o "$tmp/lz0" >/dev/null 2>&1 && "$B/locus" localize "${lz[@]}" --shard 1/2 -o "$tmp/lz1" >/dev/null 2>&1 &&
   "$B/locus" merge -o "$tmp/lzm" "$tmp/lz0" "$tmp/lz1" >/dev/null 2>&1 &&
   diff -r -x runs.log -x report.html -x .lock "$tmp/lz" "$tmp/lzm" >/dev/null && [ "$(wc -l <"$tmp/lz/results.jsonl")" = 8 ]; then ok
else bad "localize: $(tail -1 "$tmp/lz.err")"; fi
# its cells are the runs `locus generate` makes (no negative prompt: zeros, as diffusers' SDXL pipeline)
xs=(--model $G/pipelines/sdxl-tiny --prompt 'A sign that says "HELLO".' --seed 0 --steps 2 --width 64 --height 32)
if [ "$(sed -n '3p' "$tmp/lz/results.jsonl" | grep -o '"layer": "[^"]*"')" = '"layer": "up_blocks.0"' ] &&
   gen "${xs[@]}" -o "$tmp/lza.png" && "$B/test_sample" --same-pixels "$tmp/lz/images/c000000.png" "$tmp/lza.png" &&
   gen "${xs[@]}" --patch-prompt 'A sign that says "WORLD".' --patch-layers up_blocks.0 -o "$tmp/lzp.png" &&
   "$B/test_sample" --same-pixels "$tmp/lz/images/c000002.png" "$tmp/lzp.png"; then ok
else bad "localize cells differ from locus generate: $(tail -1 "$tmp/gen.err")"; fi

# 8. LoRA training on SDXL (the backward through add_embedding; size numbers = the training resolution): a
#    zero-up LoRA leaves the sampled tensors bit-identical, a trained one changes them; two runs give the same file
XL=$G/pipelines/sdxl-tiny
mkdir -p "$tmp/ld"
for i in 0 1; do "$B/locus" generate --model $XL --prompt "sign $i" --seed $i --steps 2 -o "$tmp/ld/$i.png" 2>/dev/null; done
printf '{"file_name": "0.png", "text": "A sign that says \\"OPEN\\"."}\n{"file_name": "1.png", "text": "A sign that says \\"STOP\\"."}\n' >"$tmp/ld/metadata.jsonl"
lt() { "$B/locus" train-lora --model $XL --data "$tmp/ld" --lora-layers 'up_blocks.0.attentions.1.transformer_blocks.*.attn2' --rank 2 --alpha 2 --steps 2 --seed 1 "$@" 2>"$tmp/lt.err" >/dev/null; }
if lt --lr 0 -o "$tmp/zero.safetensors" && lt --lr 0.05 -o "$tmp/lora.safetensors" && lt --lr 0.05 --threads 1 -o "$tmp/lora1.safetensors" &&
   cmp -s "$tmp/lora.safetensors" "$tmp/lora1.safetensors"; then ok; else bad "train-lora: $(tail -1 "$tmp/lt.err")"; fi
gl() { "$B/locus" generate --model $XL --prompt 'A sign that says "OPEN".' --seed 3 --steps 3 "$@" 2>/dev/null; }
gl -o "$tmp/l0.png" --dump "$tmp/l0.st"; gl --lora "$tmp/zero.safetensors" -o "$tmp/l1.png" --dump "$tmp/l1.st"; gl --lora "$tmp/lora.safetensors" -o "$tmp/l2.png" --dump "$tmp/l2.st"
if "$B/test_sample" --same-output "$tmp/l0.png" "$tmp/l1.png" "$tmp/l0.st" "$tmp/l1.st" 2>/dev/null; then ok; else bad "a zero-up LoRA changed the SDXL run"; fi
if [ -s "$tmp/l2.st" ] && ! "$B/test_sample" --same-output "$tmp/l0.png" "$tmp/l2.png" "$tmp/l0.st" "$tmp/l2.st" 2>/dev/null; then ok; else bad "a trained LoRA did not change the SDXL run"; fi

echo "$p $f"
