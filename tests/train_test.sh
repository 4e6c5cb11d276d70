#!/usr/bin/env bash
# train_test.sh — `locus train` end to end on a tiny synthetic sign set (8 images of 32x16):
#   * a pipeline (20 VAE steps + 20 UNet steps) trained with LOCUS_ISA=scalar / 1 thread and with the best
#     ISA / 2 threads gives the same bytes in every weight and config file;
#   * --ema resumes with the same bits and saves the averaged weights;
#   * the loss curves and the progress pictures (reconstructions, samples) are the same bytes too;
#   * 10 steps, then --resume to 20, and a run killed (SIGKILL) mid-way then resumed, equal the uninterrupted run;
#   * the folder is a pipeline `locus generate` loads (same PNG bytes on both ISAs);
#   * with sd15-tiny's configs the files have diffusers' tensor names, shapes and config bytes;
#   * --fp16 writes F16 weight files that generate reads;
#   * configs are refused with one error line for unknown keys and wrong types; a diverging run stops naming
#     the step.
# Usage: train_test.sh BUILD_DIR [OTHER_BUILD_DIR (another compiler: the same bytes)].  Prints "train_test: N passed, M failed" last; < 30 s on 2 cores.
set -u
B=${1:-build}
L="$B/locus"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "FAIL $*"; }
best=$("$L" info | sed -n 's/^supported: //p' | awk '{print $NF}')

printf 'OPEN\nSTOP\nCAFE\nEXIT\n' >"$tmp/words.txt"
if ! "$L" dataset signs --words "$tmp/words.txt" --n 8 --size 32x16 --min-letter-px 6 --max-letter-px 8 --seed 1 -o "$tmp/data" --quiet; then
  echo "train_test: 0 passed, 1 failed"; exit 1
fi
common=(--text-config zoo/configs/tiny-text.json --vae-config zoo/configs/tiny-vae.json --unet-config zoo/configs/tiny-unet.json
        --data "$tmp/data" --batch-size 4 --seed 3 --quiet --samples 0)
files="vae/diffusion_pytorch_model.safetensors vae/config.json unet/diffusion_pytorch_model.safetensors unet/config.json
       text_encoder/model.safetensors text_encoder/config.json model_index.json scheduler/scheduler_config.json tokenizer/vocab.json"
same() { # dirA dirB what
  local d=0
  for x in $files; do cmp -s "$1/$x" "$2/$x" || { d=1; echo "  $3: $x differs"; }; done
  [ $d = 0 ]
}

# 1. the same bits for scalar / 1 thread and the best ISA / 2 threads
LOCUS_ISA=scalar LOCUS_THREADS=1 "$L" train pipeline -o "$tmp/a" "${common[@]}" --vae-steps 20 --unet-steps 20 --checkpoint-every 10 --samples 1 2>"$tmp/a.err" || bad "scalar run: $(tail -1 "$tmp/a.err")"
LOCUS_ISA=$best LOCUS_THREADS=2 "$L" train pipeline -o "$tmp/b" "${common[@]}" --vae-steps 20 --unet-steps 20 --checkpoint-every 7 --samples 1 2>"$tmp/b.err" || bad "$best run: $(tail -1 "$tmp/b.err")"
if same "$tmp/a" "$tmp/b" "scalar/1 vs $best/2"; then ok; else bad "weights differ between scalar/1 thread and $best/2 threads"; fi
for x in train/vae_loss.png train/unet_loss.png train/vae_loss.csv train/unet_loss.csv train/vae_step20.png train/unet_step20.png; do
  [ -s "$tmp/a/$x" ] && cmp -s "$tmp/a/$x" "$tmp/b/$x" && ok || bad "$x missing or different"
done
[ "$(wc -l <"$tmp/a/train/unet_loss.csv")" = 21 ] && ok || bad "unet_loss.csv has not 20 steps"

# 2. resume: VAE 10 steps then --resume to 20; UNet 10 steps then --resume to 20 (on the same 20-step VAE)
"$L" train vae -o "$tmp/c" --data "$tmp/data" --config zoo/configs/tiny-vae.json --batch-size 4 --seed 3 --quiet --samples 0 --steps 10 2>/dev/null || bad "10-step vae"
"$L" train vae -o "$tmp/c" --data "$tmp/data" --config zoo/configs/tiny-vae.json --batch-size 4 --seed 3 --quiet --samples 0 --steps 20 --resume 2>/dev/null || bad "resumed vae"
cmp -s "$tmp/a/vae/diffusion_pytorch_model.safetensors" "$tmp/c/vae/diffusion_pytorch_model.safetensors" && ok || bad "vae: 10 steps + --resume to 20 differs"
"$L" train pipeline -o "$tmp/d" "${common[@]}" --vae-steps 20 --unet-steps 10 2>/dev/null || bad "10-step unet"
"$L" train pipeline -o "$tmp/d" "${common[@]}" --vae-steps 20 --unet-steps 20 --resume 2>/dev/null || bad "resumed pipeline"
if same "$tmp/a" "$tmp/d" "unet 10 + resume"; then ok; else bad "unet: 10 steps + --resume to 20 differs from 20 steps"; fi
"$L" train pipeline -o "$tmp/d" "${common[@]}" --vae-steps 20 --unet-steps 20 2>"$tmp/err" && bad "second run without --resume accepted" || ok
"$L" train vae -o "$tmp/c" --data "$tmp/data" --config zoo/configs/tiny-vae.json --batch-size 4 --seed 4 --steps 20 --resume 2>"$tmp/err" \
  && bad "resume with another seed accepted" || { grep -q "other settings" "$tmp/err" && ok || bad "resume with another seed: $(cat "$tmp/err")"; }

# 3. SIGKILL mid-stage, then --resume: the same bytes (checkpoint every step).  Killed once in the VAE stage (as
#    soon as its first checkpoint exists) and once in the UNet stage, so the kills land at arbitrary points
#    whatever the machine's speed.
rm -rf "$tmp/k"
kargs=(train pipeline -o "$tmp/k" "${common[@]}" --vae-steps 20 --unet-steps 20 --checkpoint-every 1)
kill_when() { # file, then the command: start it, SIGKILL it once the file exists (or it ended)
  local file=$1; shift
  "$@" 2>/dev/null &
  local pid=$! n=0
  while [ ! -e "$file" ] && kill -0 $pid 2>/dev/null && [ $n -lt 2000 ]; do sleep 0.01; n=$((n+1)); done
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
}
kill_when "$tmp/k/train/vae.ckpt" "$L" "${kargs[@]}"
[ ! -e "$tmp/k/vae/diffusion_pytorch_model.safetensors" ] && ok || bad "the first kill came after the VAE stage ended"
kill_when "$tmp/k/train/unet.ckpt" "$L" "${kargs[@]}" --resume
[ ! -e "$tmp/k/unet/diffusion_pytorch_model.safetensors" ] && ok || bad "the second kill came after the UNet stage ended"
"$L" "${kargs[@]}" --resume 2>"$tmp/k.err" || bad "resume after kill: $(tail -1 "$tmp/k.err")"
if same "$tmp/a" "$tmp/k" "kill + resume"; then ok; else bad "SIGKILL + --resume differs"; fi

# 3b. --ema (diffusers' EMAModel average, saved instead of the raw weights): resumable with the same bits, and
#     not the raw weights
"$L" train pipeline -o "$tmp/m1" "${common[@]}" --vae-steps 20 --unet-steps 20 --ema 0.99 2>/dev/null || bad "--ema run"
"$L" train pipeline -o "$tmp/m2" "${common[@]}" --vae-steps 20 --unet-steps 10 --ema 0.99 2>/dev/null || bad "--ema 10-step run"
"$L" train pipeline -o "$tmp/m2" "${common[@]}" --vae-steps 20 --unet-steps 20 --ema 0.99 --resume 2>/dev/null || bad "--ema resumed run"
if same "$tmp/m1" "$tmp/m2" "--ema 10 + resume"; then ok; else bad "--ema: 10 steps + --resume to 20 differs"; fi
! cmp -s "$tmp/a/vae/diffusion_pytorch_model.safetensors" "$tmp/m1/vae/diffusion_pytorch_model.safetensors" && cmp -s "$tmp/a/train/vae_loss.csv" "$tmp/m1/train/vae_loss.csv" \
  && ok || bad "--ema: the saved VAE should differ from the raw weights while its losses stay the same"

# 3c. --decay-steps 8 of 20 (the learning rate goes linearly to 0 over the last 8 steps): the losses of steps
#     1-14 equal the constant run's (updates 1-13 use the full rate), the 15th and the weights differ; the
#     schedule is part of the settings: a constant run's checkpoint resumes with a decay only if the decay
#     begins after it (12 constant steps + --resume --decay-steps 8 of 20 = the uninterrupted decay run; the
#     20-step constant run's checkpoint is refused); more decay steps than steps after the warmup are refused
#     (section 5)
uargs=(train unet --data "$tmp/data" --base "$tmp/a" --config zoo/configs/tiny-unet.json --batch-size 4 --seed 3 --quiet --samples 0 --steps 20)
"$L" "${uargs[@]}" -o "$tmp/dc" 2>/dev/null && "$L" "${uargs[@]}" -o "$tmp/dd" --decay-steps 8 2>"$tmp/dd.err" || bad "--decay-steps runs: $(tail -1 "$tmp/dd.err")"
if cmp -s <(head -15 "$tmp/dc/train/unet_loss.csv") <(head -15 "$tmp/dd/train/unet_loss.csv") &&
   ! cmp -s <(sed -n 16p "$tmp/dc/train/unet_loss.csv") <(sed -n 16p "$tmp/dd/train/unet_loss.csv") &&
   ! cmp -s "$tmp/dc/unet/diffusion_pytorch_model.safetensors" "$tmp/dd/unet/diffusion_pytorch_model.safetensors"; then ok
else bad "--decay-steps: losses 1-14 should equal the constant run's and step 15 differ"; fi
"$L" "${uargs[@]}" -o "$tmp/dc" --decay-steps 8 --resume 2>"$tmp/err" && bad "resume of a constant run past the decay's start accepted" \
  || { grep -q "past where the new learning-rate decay begins (step 12)" "$tmp/err" && ok || bad "resume with --decay-steps: $(cat "$tmp/err")"; }
"$L" "${uargs[@]}" -o "$tmp/de" --steps 12 2>/dev/null && "$L" "${uargs[@]}" -o "$tmp/de" --decay-steps 8 --resume 2>"$tmp/err" \
  || bad "12 constant steps + --resume --decay-steps 8 of 20: $(tail -1 "$tmp/err")"
cmp -s "$tmp/dd/unet/diffusion_pytorch_model.safetensors" "$tmp/de/unet/diffusion_pytorch_model.safetensors" && cmp -s "$tmp/dd/train/unet_loss.csv" "$tmp/de/train/unet_loss.csv" \
  && ok || bad "12 constant steps + --resume --decay-steps 8 of 20 differs from the uninterrupted decay run"
"$L" "${uargs[@]}" -o "$tmp/de" --decay-steps 4 --resume 2>"$tmp/err" && bad "resume of a decayed run with another decay accepted" \
  || { grep -q "past where its learning-rate decay begins (step 12)" "$tmp/err" && ok || bad "resume with another --decay-steps: $(cat "$tmp/err")"; }

# 4. locus generate loads the folder; pixels and dumped tensors are the same on both ISAs
for isa in scalar $best; do
  LOCUS_ISA=$isa "$L" generate --model "$tmp/a" --prompt 'A sign that says "OPEN".' --width 32 --height 16 --steps 4 --seed 7 -o "$tmp/g.$isa.png" \
    --dump "$tmp/g.$isa.st" >/dev/null 2>"$tmp/g.err" || bad "generate ($isa): $(tail -1 "$tmp/g.err")"
done
"$B/test_sample" --same-output "$tmp/g.scalar.png" "$tmp/g.$best.png" "$tmp/g.scalar.st" "$tmp/g.$best.st" >/dev/null 2>&1 && ok || bad "generate from the trained pipeline"

# 4b. the tiny UNet has only_cross_attention (as the signs UNet): attn1 reads the text too, so `locus layers`
#     lists it as a text layer and patching it with another prompt changes the sampled tensors (the same prompt:
#     same bits; compared with test_grad --same-tensors, which ignores the run's metadata)
"$L" layers --model "$tmp/a" 2>/dev/null | grep -q "cross  down_blocks.0.attentions.0.transformer_blocks.0.attn1" && ok || bad "layers: attn1 of an only-cross UNet not a text layer"
pg() { "$L" generate --model "$tmp/a" --prompt 'A sign that says "OPEN".' --width 32 --height 16 --steps 3 --seed 7 "$@" >/dev/null 2>&1; }
pg -o "$tmp/p0.png" --dump "$tmp/p0.st"
pg --patch-prompt 'A sign that says "OPEN".' --patch-layers down_blocks.0.attentions.0.transformer_blocks.0.attn1 -o "$tmp/p1.png" --dump "$tmp/p1.st"
pg --patch-prompt 'A sign that says "EXIT".' --patch-layers down_blocks.0.attentions.0.transformer_blocks.0.attn1 -o "$tmp/p2.png" --dump "$tmp/p2.st"
"$B/test_grad" --same-tensors "$tmp/p0.st" "$tmp/p1.st" >/dev/null 2>&1 && ok || bad "patching attn1 with the same prompt changed the output"
[ -s "$tmp/p2.st" ] && ! "$B/test_grad" --same-tensors "$tmp/p0.st" "$tmp/p2.st" >/dev/null 2>&1 && ok || bad "patching attn1 with another prompt did nothing"

# 5. bad input: one error line
cli_err() { # what, expected substring, command...
  local what=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "$want" "$tmp/err"; then ok; else bad "cli: $what (exit $rc): $(head -2 "$tmp/err")"; fi
}
echo '{"block_out_channels": [8, 16], "frobnicate": 1}' >"$tmp/badkey.json"
echo '{"layers_per_block": 1.5}' >"$tmp/badtype.json"
cli_err "unknown config key" "unknown key 'frobnicate'" "$L" train vae --data "$tmp/data" --config "$tmp/badkey.json" -o "$tmp/e1"
cli_err "wrong config type" "'layers_per_block' has the wrong type" "$L" train vae --data "$tmp/data" --config "$tmp/badtype.json" -o "$tmp/e2"
cli_err "no metadata" "no metadata.jsonl" "$L" train vae --data "$tmp" --config zoo/configs/tiny-vae.json -o "$tmp/e3"
"$L" train pipeline -o "$tmp/e3" --text-config zoo/configs/tiny-text.json 2>/dev/null || bad "skeleton only"
[ -s "$tmp/e3/text_encoder/model.safetensors" ] && [ -s "$tmp/e3/tokenizer/merges.txt" ] && [ ! -e "$tmp/e3/vae" ] && ok || bad "skeleton files"
cli_err "unet without a vae" "train it first" "$L" train unet --data "$tmp/data" --base "$tmp/e3" -o "$tmp/e4"
cli_err "bad resolution" "multiples of the VAE factor 2" "$L" train vae --data "$tmp/data" --config zoo/configs/tiny-vae.json -o "$tmp/e5" --resolution 31x16
cli_err "AdamW eps 0" "--eps 0: must be above 0" "$L" train vae --data "$tmp/data" --config zoo/configs/tiny-vae.json -o "$tmp/e7" --eps 0
cli_err "decay longer than the run" "--decay-steps 30: more than the 20 steps after the warmup" "$L" "${uargs[@]}" -o "$tmp/e6" --decay-steps 30
"$L" train vae --data "$tmp/data" --config zoo/configs/tiny-vae.json -o "$tmp/e6" --lr 10 --weight-decay 10 --steps 30 --batch-size 4 --quiet 2>"$tmp/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "loss is .* at step [0-9]*; stopped" "$tmp/err" && [ ! -e "$tmp/e6/vae/diffusion_pytorch_model.safetensors" ]; then ok
else bad "diverging run (exit $rc): $(cat "$tmp/err")"; fi

# 6. interop: with sd15-tiny's configs, every weight file has exactly the tensor names and shapes of the files
#    diffusers / transformers wrote, and the config.json files are the same bytes (the VAE's up to its
#    computed scaling_factor)
G=tests/golden/pipelines/sd15-tiny
"$L" train pipeline -o "$tmp/i" --text-config $G/text_encoder/config.json --vae-config $G/vae/config.json --unet-config $G/unet/config.json \
  --data "$tmp/data" --vae-steps 1 --unet-steps 1 --batch-size 2 --quiet --samples 0 2>"$tmp/i.err" || bad "sd15-tiny-shaped run: $(tail -1 "$tmp/i.err")"
names() { "$L" tensors "$1" | awk 'NF == 3 {print $1, $3}' | sort; }
for c in vae/diffusion_pytorch_model unet/diffusion_pytorch_model text_encoder/model; do
  diff <(names "$tmp/i/$c.safetensors") <(names "$G/$c.safetensors") >/dev/null && ok || bad "$c.safetensors: names/shapes differ from diffusers'"
done
for c in unet/config.json text_encoder/config.json model_index.json scheduler/scheduler_config.json tokenizer/vocab.json tokenizer/merges.txt \
         tokenizer/tokenizer_config.json tokenizer/special_tokens_map.json; do
  cmp -s "$tmp/i/$c" "$G/$c" && ok || bad "$c differs from diffusers' file"
done
diff <(grep -v scaling_factor "$tmp/i/vae/config.json") <(grep -v scaling_factor $G/vae/config.json) >/dev/null && ok || bad "vae/config.json differs beyond scaling_factor"

# 7. --fp16: every weight file F16 (the text encoder's too: the UNet trained on what sampling reads); generate runs
"$L" train pipeline -o "$tmp/h" "${common[@]}" --vae-steps 2 --unet-steps 2 --fp16 2>"$tmp/h.err" || bad "--fp16 run: $(tail -1 "$tmp/h.err")"
for c in vae/diffusion_pytorch_model unet/diffusion_pytorch_model text_encoder/model; do
  [ "$("$L" tensors "$tmp/h/$c.safetensors" | awk 'NF == 3 && $2 != "F16" && $2 != "I64"' | wc -l)" = 0 ] && ok || bad "--fp16: $c has non-F16 tensors"
done
"$L" generate --model "$tmp/h" --prompt 'A sign that says "STOP".' --width 32 --height 16 --steps 2 -o "$tmp/h.png" >/dev/null 2>&1 && ok || bad "generate with F16 weights"
grep -q '"torch_dtype": "float16"' "$tmp/h/text_encoder/config.json" && ok || bad "F16 text encoder: config.json does not say torch_dtype float16"

# 9. --train-text-encoder (a layer-free CLIP encoder trained with the UNet): the same bytes for scalar/1 thread and
#    the best ISA/2 threads and after 10 steps + --resume; the encoder file changes and generate reads it
printf '{"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_hidden_layers": 0, "projection_dim": 32}\n' >"$tmp/text0.json"
tt=(--text-config "$tmp/text0.json" --vae-config zoo/configs/tiny-vae.json --unet-config zoo/configs/tiny-unet.json
    --data "$tmp/data" --batch-size 4 --seed 3 --quiet --samples 1 --vae-steps 10 --train-text-encoder)
LOCUS_ISA=scalar LOCUS_THREADS=1 "$L" train pipeline -o "$tmp/t1" "${tt[@]}" --unet-steps 20 2>"$tmp/t1.err" || bad "text scalar run: $(tail -1 "$tmp/t1.err")"
LOCUS_ISA=$best LOCUS_THREADS=2 "$L" train pipeline -o "$tmp/t2" "${tt[@]}" --unet-steps 20 --checkpoint-every 7 2>"$tmp/t2.err" || bad "text $best run: $(tail -1 "$tmp/t2.err")"
"$L" train pipeline -o "$tmp/t3" "${tt[@]}" --unet-steps 10 2>/dev/null && "$L" train pipeline -o "$tmp/t3" "${tt[@]}" --unet-steps 20 --resume 2>/dev/null || bad "text 10 + resume runs"
for x in unet/diffusion_pytorch_model.safetensors text_encoder/model.safetensors train/unet_loss.csv train/unet_step20.png; do
  [ -s "$tmp/t1/$x" ] && cmp -s "$tmp/t1/$x" "$tmp/t2/$x" && ok || bad "--train-text-encoder: $x differs between scalar/1 and $best/2"
  [ "$x" = train/unet_step20.png ] || { cmp -s "$tmp/t1/$x" "$tmp/t3/$x" && ok || bad "--train-text-encoder: $x differs after 10 steps + --resume"; }
done
# the skeleton the run started from (same --seed: the same initial encoder, tensor by tensor) against the trained one
"$L" train pipeline -o "$tmp/t5" --text-config "$tmp/text0.json" --seed 3 2>/dev/null
[ -s "$tmp/t1/text_encoder/model.safetensors" ] && [ -s "$tmp/t5/text_encoder/model.safetensors" ] &&
  ! "$B/test_grad" --same-tensors "$tmp/t1/text_encoder/model.safetensors" "$tmp/t5/text_encoder/model.safetensors" >/dev/null 2>&1 &&
  ok || bad "--train-text-encoder left the encoder unchanged"
diff <(names "$tmp/t1/text_encoder/model.safetensors") <(names "$tmp/t5/text_encoder/model.safetensors") >/dev/null && ok || bad "trained encoder: names/shapes differ from the skeleton's"
for w in OPEN STOP; do
  "$L" generate --model "$tmp/t1" --prompt "A sign that says \"$w\"." --width 32 --height 16 --steps 3 --seed 7 -o "$tmp/t.$w.png" >/dev/null 2>&1 || bad "generate with the trained encoder"
done
[ -s "$tmp/t.OPEN.png" ] && ! cmp -s "$tmp/t.OPEN.png" "$tmp/t.STOP.png" && ok || bad "trained encoder: two words give the same picture"
"$L" train unet --data "$tmp/data" -o "$tmp/t3" --config zoo/configs/tiny-unet.json --batch-size 4 --seed 3 \
  --steps 30 --resume --quiet 2>"$tmp/err" && bad "resume without --train-text-encoder accepted" || { grep -q "other settings" "$tmp/err" && ok || bad "resume without the flag: $(cat "$tmp/err")"; }
cli_err "text training with layers" "without transformer layers" "$L" train unet --data "$tmp/data" -o "$tmp/h" --config zoo/configs/tiny-unet.json --steps 1 --train-text-encoder
cli_err "text training with --base" "pass no --base" "$L" train unet --data "$tmp/data" --base "$tmp/a" -o "$tmp/t6" --steps 1 --train-text-encoder

# 10. SD3: `train pipeline --family sd3` + `train transformer` (an SD3Transformer2DModel by flow matching, the two
#     one-layer CLIP encoders' embeddings trained with it): the same bytes for scalar/1 thread and the best
#     ISA/2 threads and after 5 steps + --resume; generate reads the folder; with sd3-tiny's configs the files
#     have diffusers' names, shapes and config bytes
printf '{"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1, "projection_dim": 8}\n' >"$tmp/text1.json"
printf '{"attention_head_dim": 8, "caption_projection_dim": 16, "in_channels": 4, "out_channels": 4, "joint_attention_dim": 40,
  "num_attention_heads": 2, "num_layers": 2, "pooled_projection_dim": 16, "pos_embed_max_size": 16, "sample_size": 8}\n' >"$tmp/sd3.json"
s3=(train transformer --data "$tmp/data" --config "$tmp/sd3.json" --batch-size 4 --seed 3 --quiet --samples 1 --train-text-encoder)
for d in s1 s2 s4; do
  "$L" train pipeline --family sd3 -o "$tmp/$d" --text-config "$tmp/text1.json" --seed 3 2>/dev/null || bad "sd3 skeleton"
  mkdir -p "$tmp/$d/vae" && cp "$tmp/a/vae/diffusion_pytorch_model.safetensors" "$tmp/$d/vae/" &&
    sed 's/"shift_factor": null/"shift_factor": 0.0/' "$tmp/a/vae/config.json" >"$tmp/$d/vae/config.json"
done
# floats in the written configs as Python's json.dumps spells them (the signs-sd3 encoders' initializer_factor 50)
"$L" train pipeline --family sd3 -o "$tmp/sk" --text-config zoo/configs/signs-sd3-text.json 2>/dev/null &&
  grep -q '^  "initializer_factor": 50.0,$' "$tmp/sk/text_encoder/config.json" && grep -q '^  "layer_norm_eps": 1e-05,$' "$tmp/sk/text_encoder/config.json" \
  && ok || bad "sd3 skeleton: initializer_factor / layer_norm_eps not written as Python does: $(grep -h 'factor\|eps' "$tmp/sk/text_encoder/config.json" | paste -sd' ')"
LOCUS_ISA=scalar LOCUS_THREADS=1 "$L" "${s3[@]}" -o "$tmp/s1" --steps 10 2>"$tmp/s1.err" || bad "sd3 scalar run: $(tail -1 "$tmp/s1.err")"
LOCUS_ISA=$best LOCUS_THREADS=2 "$L" "${s3[@]}" -o "$tmp/s2" --steps 10 --checkpoint-every 3 2>"$tmp/s2.err" || bad "sd3 $best run: $(tail -1 "$tmp/s2.err")"
"$L" "${s3[@]}" -o "$tmp/s4" --steps 5 2>/dev/null && "$L" "${s3[@]}" -o "$tmp/s4" --steps 10 --resume 2>/dev/null || bad "sd3 5 + resume runs"
for x in transformer/diffusion_pytorch_model.safetensors text_encoder/model.safetensors text_encoder_2/model.safetensors train/transformer_loss.csv train/transformer_step10.png; do
  [ -s "$tmp/s1/$x" ] && cmp -s "$tmp/s1/$x" "$tmp/s2/$x" && ok || bad "sd3: $x differs between scalar/1 and $best/2"
  [ "$x" = train/transformer_step10.png ] || { cmp -s "$tmp/s1/$x" "$tmp/s4/$x" && ok || bad "sd3: $x differs after 5 steps + --resume"; }
done
"$L" train pipeline --family sd3 -o "$tmp/s5" --text-config "$tmp/text1.json" --seed 3 2>/dev/null
[ -s "$tmp/s1/text_encoder_2/model.safetensors" ] && ! "$B/test_grad" --same-tensors "$tmp/s1/text_encoder_2/model.safetensors" "$tmp/s5/text_encoder_2/model.safetensors" >/dev/null 2>&1 &&
  ok || bad "sd3 --train-text-encoder left text_encoder_2 unchanged"
for w in OPEN STOP; do
  "$L" generate --model "$tmp/s1" --prompt "A sign that says \"$w\"." --width 32 --height 16 --steps 3 --seed 7 -o "$tmp/s.$w.png" >/dev/null 2>&1 || bad "generate with the SD3 folder"
done
[ -s "$tmp/s.OPEN.png" ] && ! cmp -s "$tmp/s.OPEN.png" "$tmp/s.STOP.png" && ok || bad "sd3: two words give the same picture"
# the conditioning trained on: at learning rate 0 the two-step losses with --train-text-encoder equal the frozen
# encoders' (each example's own caption, recomputed from the live weights, equals the cached embedding)
for d in s8 s9; do rm -rf "$tmp/$d"; cp -r "$tmp/s5" "$tmp/$d"; cp -r "$tmp/s1/vae" "$tmp/$d/"; done
z3=(train transformer --data "$tmp/data" --config "$tmp/sd3.json" --batch-size 4 --seed 3 --quiet --samples 0 --steps 2 --lr 0)
"$L" "${z3[@]}" -o "$tmp/s8" 2>/dev/null && "$L" "${z3[@]}" -o "$tmp/s9" --train-text-encoder 2>/dev/null || bad "sd3 lr-0 runs"
[ -s "$tmp/s8/train/transformer_loss.csv" ] && cmp -s "$tmp/s8/train/transformer_loss.csv" "$tmp/s9/train/transformer_loss.csv" && ok \
  || bad "sd3: --train-text-encoder at lr 0 trains on other embeddings than the frozen encoders give"
G3=tests/golden/pipelines/sd3-tiny
"$L" train pipeline --family sd3 -o "$tmp/s6" --text-config $G3/text_encoder/config.json 2>/dev/null || bad "sd3-tiny-shaped skeleton"
# (one text config for both encoders: pooled 2 x 16 where sd3-tiny has 16 + 24)
sed 's/"in_channels": 16/"in_channels": 4/; s/"out_channels": 16/"out_channels": 4/; s/"pooled_projection_dim": 40/"pooled_projection_dim": 32/' \
  $G3/transformer/config.json >"$tmp/sd3t.json"
mkdir -p "$tmp/s6/vae" && cp "$tmp/s1/vae/"* "$tmp/s6/vae/"
"$L" train transformer --data "$tmp/data" -o "$tmp/s6" --config "$tmp/sd3t.json" --steps 1 --batch-size 2 --quiet --samples 0 2>"$tmp/s6.err" || bad "sd3-tiny-shaped run: $(tail -1 "$tmp/s6.err")"
diff <(names "$tmp/s6/transformer/diffusion_pytorch_model.safetensors" | awk '{print $1}') <(names $G3/transformer/diffusion_pytorch_model.safetensors | awk '{print $1}') >/dev/null \
  && ok || bad "sd3 transformer: tensor names differ from diffusers'"
diff <(names "$tmp/s6/text_encoder/model.safetensors") <(names $G3/text_encoder/model.safetensors) >/dev/null && ok || bad "sd3 text_encoder: names/shapes differ from transformers'"
for c in text_encoder/config.json scheduler/scheduler_config.json tokenizer_2/special_tokens_map.json tokenizer/vocab.json; do
  cmp -s "$tmp/s6/$c" "$G3/$c" && ok || bad "sd3 $c differs from diffusers' file"
done
sed 's/"in_channels": 4/"in_channels": 16/; s/"out_channels": 4/"out_channels": 16/; s/"pooled_projection_dim": 32/"pooled_projection_dim": 40/' "$tmp/s6/transformer/config.json" | cmp -s - $G3/transformer/config.json && ok || bad "sd3 transformer/config.json differs"
cli_err "sd3 transformer on a DDIM folder" "not a flow-matching scheduler" "$L" train transformer --data "$tmp/data" -o "$tmp/a" --config "$tmp/sd3.json" --steps 1
printf '{"num_hidden_layers": 0}\n' >"$tmp/text0b.json"
cli_err "sd3 text encoder without layers" "num_hidden_layers must be at least 1" "$L" train pipeline --family sd3 -o "$tmp/s7" --text-config "$tmp/text0b.json"

# 8. another compiler's build (optional second argument, e.g. build-clang): the same bytes as run 1
if [ -n "${2:-}" ] && [ -x "$2/locus" ]; then
  LOCUS_THREADS=2 "$2/locus" train pipeline -o "$tmp/x" "${common[@]}" --vae-steps 20 --unet-steps 20 2>"$tmp/x.err" || bad "$2 run: $(tail -1 "$tmp/x.err")"
  if same "$tmp/a" "$tmp/x" "$B vs $2"; then ok; else bad "weights differ between $B and $2"; fi
fi

echo "train_test: $p passed, $f failed"
[ $f = 0 ]
