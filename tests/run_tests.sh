#!/usr/bin/env bash
# run_tests.sh — runs every test program of a build, the cross-process determinism check (LOCUS_ISA x
# LOCUS_THREADS, hashes of a fixed kernel workload) and the CLI suites.  Usage: run_tests.sh BUILD_DIR
# Prints one "suite: N passed, M failed [wall s]" line per suite and writes them to BUILD_DIR/results.
#
# Suites are independent (each has its own scratch folder) and run LOCUS_TEST_JOBS at a time (default: the
# number of cores), longest first; their output is printed in the order below once all have ended.
# LOCUS_TEST_ONLY='regex' runs only the suites whose names match.
# OpenMP waits passively here: suites share the cores, and spinning waiters would steal them (timing only —
# no result depends on it).  LOCUS_TEST_QUICK=1 skips the long CLI suites (marked "full" below): the
# sanitizer pass of `make test` uses it; `make test-full` runs everything under the sanitizers too.
set -u -o pipefail   # a check piped into sed for indentation must still fail the test
B=${1:-build}
: >"$B/results"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=passive
JOBS=${LOCUS_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
QUICK=${LOCUS_TEST_QUICK:-0}
G=tests/golden
isas=$("$B/locus" info | sed -n 's/^supported: //p')

record() { # suite passed failed  (the bracket: wall seconds since the suite started)
  echo "$1: $2 passed, $3 failed [$(( $(date +%s) - t_start ))s]"
  echo "$1 $2 $3" >>"$RES"
}
cli_err() { # description, expected substring, command...
  local what=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "$want" "$tmp/err" && [ ! -s "$tmp/out" ]; then p=$((p+1))
  else f=$((f+1)); echo "  FAIL cli: $what (exit $rc): $(head -2 "$tmp/err")"; fi
}
# a script suite: bash tests/NAME.sh BUILD TMP prints "N M" (passed failed) on its last line
script_suite() { # suite-name script
  mkdir -p "$tmp/work"
  bash "$2" "$B" "$tmp/work" >"$tmp/script.out" 2>&1
  grep -v '^[0-9]* [0-9]*$' "$tmp/script.out"
  read -r p f < <(tail -1 "$tmp/script.out" | grep -E '^[0-9]+ [0-9]+$' || echo "0 1")
  record "$1" $p $f
}

# 1. test programs (each prints its own summary line last)
test_program() { # path
  local t=$1 name; name=$(basename "$1")
  "$t" >"$tmp/$name.out" 2>&1
  local rc=$?
  grep -v '^FAIL' "$tmp/$name.out" | grep -v ': [0-9]* passed, [0-9]* failed$' | sed 's/^/  /' | tail -5
  grep '^FAIL' "$tmp/$name.out" | head -20
  local line p f
  line=$(grep -E '^[a-z0-9_]+: [0-9]+ passed, [0-9]+ failed$' "$tmp/$name.out" | tail -1)
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
  [ -n "$line" ] || { p=0; f=1; echo "  $name printed no summary (exit $rc)"; tail -5 "$tmp/$name.out"; }
  [ $rc = 0 ] || [ "$f" != 0 ] || f=1
  record "$name" "$p" "$f"
}

suite_determinism() {
# 2. determinism across processes: every supported ISA x 1/2/3 threads gives the same workload hashes
p=0 f=0
ref=""
for isa in $isas; do
  for th in 1 2 3; do
    if ! LOCUS_ISA=$isa LOCUS_THREADS=$th "$B/test_kernels" --hash >"$tmp/h.$isa.$th"; then f=$((f+1)); continue; fi
    grep -q "^# isa=$isa threads=$th" "$tmp/h.$isa.$th" || { echo "  LOCUS_ISA=$isa LOCUS_THREADS=$th not honoured"; f=$((f+1)); continue; }
    if [ -z "$ref" ]; then ref="$tmp/h.$isa.$th"; p=$((p+1)); continue; fi
    if diff <(grep -v '^#' "$ref") <(grep -v '^#' "$tmp/h.$isa.$th") >/dev/null; then p=$((p+1))
    else f=$((f+1)); echo "  FAIL hashes differ: $isa threads=$th vs $(head -1 "$ref")"; fi
  done
done
echo "  ($(grep -vc '^#' "$ref") tensors hashed per run; ISAs: $isas)"
record "determinism" $p $f
}

suite_cli() {
# 3. CLI: clear one-line errors and non-zero exit on bad input
p=0 f=0
cli_err "unknown command" "unknown command" "$B/locus" frobnicate
cli_err "bad LOCUS_ISA" "unknown ISA" env LOCUS_ISA=sse9 "$B/locus" info
cli_err "tensors without file" "usage" "$B/locus" tensors
cli_err "missing file" "cannot open" "$B/locus" tensors /nonexistent.safetensors
"$B/test_core" --malformed "$tmp"
for m in "$tmp"/*.safetensors; do cli_err "malformed $(basename "$m")" "$(basename "$m")" "$B/locus" tensors "$m"; done
if "$B/locus" info >/dev/null && "$B/locus" tensors tests/golden/ldm/golden_sample.safetensors | tail -1 | grep -q 'tensors'; then p=$((p+1)); else f=$((f+1)); echo "  FAIL cli: info/tensors on good input"; fi
record "cli" $p $f
}

suite_generate() {
# 4. locus generate: golden parity through the CLI, bit-identical pixels and dumped tensors across ISAs x
#    threads (the files differ only in the recorded ISA), bad inputs
p=0 f=0
G=tests/golden
mkdir -p "$tmp/ldm" "$tmp/sd"
"$B/test_sample" --write-inputs $G/ldm/golden_sample.safetensors embeds.a embeds.uncond noise "$tmp/ldm"
"$B/test_sample" --write-inputs $G/pipelines/sd15-tiny.golden/golden_pipeline.safetensors a.embeds a.embeds_uncond a.noise "$tmp/sd"
gen() { "$B/locus" generate "$@" 2>"$tmp/gen.err"; }
if gen --model $G/ldm --prompt-embeds "$tmp/ldm/embeds.safetensors" --noise "$tmp/ldm/noise.safetensors" --steps 4 --guidance 3 \
     -o "$tmp/ldm.png" --dump "$tmp/ldm.st" && "$B/test_sample" --check-dump "$tmp/ldm.st" $G/ldm/golden_sample.safetensors base. 4 | sed 's/^/  /'; then
  p=$((p+1)); else f=$((f+1)); echo "  FAIL generate ldm parity: $(tail -1 "$tmp/gen.err")"; fi
sdargs=(--model $G/pipelines/sd15-tiny --prompt-embeds "$tmp/sd/embeds.safetensors" --noise "$tmp/sd/noise.safetensors" --steps 4 --guidance 7.5)
if gen "${sdargs[@]}" -o "$tmp/sd.png" --dump "$tmp/sd.st" && \
   "$B/test_sample" --check-dump "$tmp/sd.st" $G/pipelines/sd15-tiny.golden/golden_pipeline.safetensors a. 4 | sed 's/^/  /'; then
  p=$((p+1)); else f=$((f+1)); echo "  FAIL generate sd15-tiny parity: $(tail -1 "$tmp/gen.err")"; fi
# from prompt strings and --seed, as diffusers' StableDiffusionPipeline ran them: tensors within 1e-4, PNG pixels equal
for run in a:HELLO b:WORLD; do
  r=${run%%:*} word=${run#*:}
  if gen --model $G/pipelines/sd15-tiny --prompt "A sign that says \"$word\"." --seed 42 --steps 4 --guidance 7.5 -o "$tmp/p$r.png" --dump "$tmp/p$r.st" &&
     "$B/test_sample" --check-dump "$tmp/p$r.st" $G/pipelines/sd15-tiny.golden/golden_pipeline.safetensors $r. 4 | sed 's/^/  /' &&
     "$B/test_sample" --same-pixels "$tmp/p$r.png" $G/pipelines/sd15-tiny.golden/$r.png; then p=$((p+1))
  else f=$((f+1)); echo "  FAIL generate from prompt $r: $(tail -1 "$tmp/gen.err")"; fi
done
# SD3 pipeline folder through the CLI (embeddings and noise of diffusers' run a): tensors and PNG pixels
mkdir -p "$tmp/sd3"
"$B/test_sample" --write-inputs $G/pipelines/sd3-tiny.golden/golden_pipeline.safetensors a.embeds a.embeds_uncond a.noise "$tmp/sd3" a.pooled a.pooled_uncond
sd3args=(--model $G/pipelines/sd3-tiny --prompt-embeds "$tmp/sd3/embeds.safetensors" --noise "$tmp/sd3/noise.safetensors" --steps 4 --guidance 7)
if gen "${sd3args[@]}" -o "$tmp/sd3a.png" --dump "$tmp/sd3a.st" &&
   "$B/test_sample" --check-dump "$tmp/sd3a.st" $G/pipelines/sd3-tiny.golden/golden_pipeline.safetensors a. 4 | sed 's/^/  /' &&
   "$B/test_sample" --same-pixels "$tmp/sd3a.png" $G/pipelines/sd3-tiny.golden/a.png; then p=$((p+1))
else f=$((f+1)); echo "  FAIL generate sd3-tiny: $(tail -1 "$tmp/gen.err")"; fi
# SD3 from prompt strings (CLIP-L + OpenCLIP-G + T5, max_sequence_length 32) and seed 42, as diffusers ran them
for run in a:HELLO b:WORLD; do
  r=${run%%:*} word=${run#*:}
  if gen --model $G/pipelines/sd3-tiny --prompt "A sign that says \"$word\"." --seed 42 --steps 4 --guidance 7 --max-sequence-length 32 \
       -o "$tmp/s3$r.png" --dump "$tmp/s3$r.st" &&
     "$B/test_sample" --check-dump "$tmp/s3$r.st" $G/pipelines/sd3-tiny.golden/golden_pipeline.safetensors $r. 4 | sed 's/^/  /' &&
     "$B/test_sample" --same-pixels "$tmp/s3$r.png" $G/pipelines/sd3-tiny.golden/$r.png; then p=$((p+1))
  else f=$((f+1)); echo "  FAIL generate sd3 from prompt $r: $(tail -1 "$tmp/gen.err")"; fi
done
# the paper's MM-DiT text-K/V patching from prompt strings: block 1 takes prompt B's cached K/V (cond half)
if gen --model $G/pipelines/sd3-tiny --prompt 'A sign that says "HELLO".' --patch-prompt 'A sign that says "WORLD".' --patch-layers transformer_blocks.1 \
     --seed 42 --steps 4 --guidance 7 --max-sequence-length 32 -o "$tmp/kv.png" --dump "$tmp/kv.st" &&
   "$B/test_sample" --check-dump "$tmp/kv.st" $G/pipelines/sd3-tiny.golden/golden_pipeline.safetensors kvpatch. 4 | sed 's/^/  /' &&
   "$B/test_sample" --same-pixels "$tmp/kv.png" $G/pipelines/sd3-tiny.golden/kvpatch.png; then p=$((p+1))
else f=$((f+1)); echo "  FAIL generate sd3 K/V patching: $(tail -1 "$tmp/gen.err")"; fi
# --cache streams hook points: prompt B's text K/V of block 1 at every step equal diffusers' cache_b
if gen --model $G/pipelines/sd3-tiny --prompt 'A sign that says "WORLD".' --seed 42 --steps 4 --guidance 7 --max-sequence-length 32 \
     --cache "$tmp/kvc.st" --cache-points 'transformer_blocks.1.attn.add_k,transformer_blocks.1.attn.add_v' -o "$tmp/kvc.png" &&
   "$B/test_sample" --check-cache "$tmp/kvc.st" $G/pipelines/sd3-tiny.golden/golden_pipeline.safetensors 4 | sed 's/^/  /' &&
   [ "$("$B/locus" tensors "$tmp/kvc.st" | tail -1 | awk '{print $1}')" = 8 ] && [ -z "$(ls "$tmp" | grep 'kvc.st.data')" ]; then p=$((p+1))
else f=$((f+1)); echo "  FAIL generate --cache: $(tail -1 "$tmp/gen.err")"; fi
for isa in $isas; do
  if LOCUS_ISA=$isa gen "${sd3args[@]}" --threads 3 -o "$tmp/sd3.$isa.png" --dump "$tmp/sd3.$isa.st" &&
     "$B/test_sample" --same-output "$tmp/sd3a.png" "$tmp/sd3.$isa.png" "$tmp/sd3a.st" "$tmp/sd3.$isa.st"; then p=$((p+1))
  else f=$((f+1)); echo "  FAIL generate sd3 output differs: isa=$isa"; fi
done
# injection patching through the CLI (golden: ldm patched.*), from prompt strings (sd15-tiny: B's prompt)
mkdir -p "$tmp/pb"
"$B/test_sample" --write-inputs $G/ldm/golden_sample.safetensors embeds.b embeds.uncond noise "$tmp/pb"
if gen --model $G/ldm --prompt-embeds "$tmp/ldm/embeds.safetensors" --noise "$tmp/ldm/noise.safetensors" --steps 4 --guidance 3 \
     --patch-embeds "$tmp/pb/embeds.safetensors" --patch-layers mid_block.attentions.0.transformer_blocks.0.attn2 -o "$tmp/patched.png" --dump "$tmp/patched.st" &&
   "$B/test_sample" --check-dump "$tmp/patched.st" $G/ldm/golden_sample.safetensors patched. 4 | sed 's/^/  /'; then p=$((p+1))
else f=$((f+1)); echo "  FAIL generate --patch-embeds parity: $(tail -1 "$tmp/gen.err")"; fi
if gen --model $G/pipelines/sd15-tiny --prompt 'A sign that says "HELLO".' --patch-prompt 'A sign that says "WORLD".' --patch-layers up_blocks.1 \
     --start-step 1 --seed 42 --steps 4 -o "$tmp/pp.png" --dump "$tmp/pp.st" && ! "$B/test_sample" --same-pixels "$tmp/pp.png" "$tmp/pa.png" 2>/dev/null; then p=$((p+1))
else f=$((f+1)); echo "  FAIL generate --patch-prompt: $(tail -1 "$tmp/gen.err")"; fi
for isa in $isas; do
  for th in 1 2 3; do
    if LOCUS_ISA=$isa gen "${sdargs[@]}" --threads $th -o "$tmp/sd.$isa.$th.png" --dump "$tmp/sd.$isa.$th.st" &&
       "$B/test_sample" --same-output "$tmp/sd.png" "$tmp/sd.$isa.$th.png" "$tmp/sd.st" "$tmp/sd.$isa.$th.st"; then p=$((p+1))
    else f=$((f+1)); echo "  FAIL generate output differs: isa=$isa threads=$th"; fi
  done
done
# bad inputs: one clear line, non-zero exit, no output file left behind
bad_gen() { # description, expected substring, args...
  local what=$1 want=$2; shift 2
  rm -f "$tmp/bad.png" "$tmp/bad.st"
  "$B/locus" generate "$@" -o "$tmp/bad.png" --dump "$tmp/bad.st" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "$want" "$tmp/err" && [ ! -e "$tmp/bad.png" ] && [ ! -e "$tmp/bad.st" ]; then p=$((p+1))
  else f=$((f+1)); echo "  FAIL generate bad input: $what (exit $rc): $(head -2 "$tmp/err")"; fi
}
bad_gen "missing model folder" "no such model folder" --model /nonexistent --prompt-embeds "$tmp/sd/embeds.safetensors"
bad_gen "steps out of range" "--steps" --model $G/pipelines/sd15-tiny --prompt-embeds "$tmp/sd/embeds.safetensors" --steps 0
bad_gen "unknown option" "unknown option" --model $G/pipelines/sd15-tiny --bogus 1
mkdir -p "$tmp/w24"
"$B/test_sample" --write-inputs $G/text/clip_l/golden_text_encoder.safetensors output.last_hidden_state output.last_hidden_state output.pooler_output "$tmp/w24"
bad_gen "embeddings of the wrong shape" "expected \[1,T,32\]" --model $G/pipelines/sd15-tiny --prompt-embeds "$tmp/w24/embeds.safetensors"
bad_gen "missing embeddings file" "cannot open" --model $G/pipelines/sd15-tiny --prompt-embeds /nonexistent.safetensors
bad_gen "noise of the wrong shape" "noise" --model $G/pipelines/sd15-tiny --prompt-embeds "$tmp/sd/embeds.safetensors" --noise "$tmp/ldm/noise.safetensors" --width 64 --height 64
bad_gen "width not a multiple" "multiples of" --model $G/pipelines/sd15-tiny --prompt-embeds "$tmp/sd/embeds.safetensors" --width 30
mkdir -p "$tmp/ldm_notok"; cp -r $G/ldm/unet $G/ldm/vae $G/ldm/text_encoder $G/ldm/scheduler "$tmp/ldm_notok/"
bad_gen "LDM prompt string without tokenizer/" "vocab.txt" --model "$tmp/ldm_notok" --prompt "a red fox" --guidance 3
if gen --model $G/ldm --prompt "a tiny red fox" --guidance 3 --steps 2 -o "$tmp/ldmp.png"; then p=$((p+1)); else f=$((f+1)); echo "  FAIL LDM prompt string: $(tail -1 "$tmp/gen.err")"; fi
# Unicode prompts: precomposed and combining forms of "café" normalize to the same tokens (CLIP: ftfy + NFC;
# T5: the NFKC charsmap), so the images are identical; fullwidth letters fold to ASCII in both
for m in sd15-tiny sd3-tiny; do
  if gen --model $G/pipelines/$m --prompt "A sign that says $(printf '\xe2\x80\x9c')caf$(printf '\xc3\xa9')$(printf '\xe2\x80\x9d')." --steps 2 --max-sequence-length 32 -o "$tmp/u1.png" &&
     gen --model $G/pipelines/$m --prompt "A sign that says $(printf '\xe2\x80\x9c')cafe$(printf '\xcc\x81')$(printf '\xe2\x80\x9d')." --steps 2 --max-sequence-length 32 -o "$tmp/u2.png" &&
     "$B/test_sample" --same-pixels "$tmp/u1.png" "$tmp/u2.png" &&
     gen --model $G/pipelines/$m --prompt "$(printf '\xef\xbc\xa8\xef\xbc\xa5\xef\xbc\xac\xef\xbc\xac\xef\xbc\xaf')" --steps 2 --max-sequence-length 32 -o "$tmp/u3.png" &&
     gen --model $G/pipelines/$m --prompt "HELLO" --steps 2 --max-sequence-length 32 -o "$tmp/u4.png" &&
     "$B/test_sample" --same-pixels "$tmp/u3.png" "$tmp/u4.png"; then p=$((p+1))
  else f=$((f+1)); echo "  FAIL Unicode prompt on $m: $(tail -1 "$tmp/gen.err")"; fi
done
bad_gen "unknown patch layer" "not a text-reading attention layer" --model $G/pipelines/sd15-tiny --prompt a --patch-prompt b --patch-layers mid_block.attentions.7
bad_gen "patch prompt without layers" "--patch-layers" --model $G/pipelines/sd15-tiny --prompt a --patch-prompt b
bad_gen "SD3 patch block out of range" "not a text-reading attention layer" --model $G/pipelines/sd3-tiny --prompt a --patch-prompt b --patch-layers transformer_blocks.9 --max-sequence-length 32
# turbo-style few-step runs (guidance 0, 4 steps): only the conditional pass, guided == conditional
if gen --model $G/pipelines/sd3-tiny --prompt 'A sign that says "HELLO".' --guidance 0 --steps 4 --max-sequence-length 32 -o "$tmp/turbo.png" --dump "$tmp/turbo.st" &&
   "$B/test_sample" --guidance-free "$tmp/turbo.st" 4 | sed 's/^/  /'; then p=$((p+1))
else f=$((f+1)); echo "  FAIL SD3 guidance 0 (turbo-style): $(tail -1 "$tmp/gen.err")"; fi
# resolution-dependent dynamic shifting (use_dynamic_shifting): runs, and changes the schedule
mkdir -p "$tmp/sd3dyn"; cp -r $G/pipelines/sd3-tiny/* "$tmp/sd3dyn/"
sed -i 's/"use_dynamic_shifting": false/"use_dynamic_shifting": true/' "$tmp/sd3dyn/scheduler/scheduler_config.json"
if gen --model "$tmp/sd3dyn" --prompt a --steps 2 --max-sequence-length 32 -o "$tmp/dyn.png" && "$B/locus" info --model "$tmp/sd3dyn" | grep -q "dynamic shifting" &&
   gen --model $G/pipelines/sd3-tiny --prompt a --steps 2 --max-sequence-length 32 -o "$tmp/nodyn.png" &&
   ! "$B/test_sample" --same-pixels "$tmp/dyn.png" "$tmp/nodyn.png" 2>/dev/null; then p=$((p+1))
else f=$((f+1)); echo "  FAIL SD3 dynamic shifting: $(tail -1 "$tmp/gen.err")"; fi
mkdir -p "$tmp/sd3np"
"$B/test_sample" --write-inputs $G/pipelines/sd3-tiny.golden/golden_pipeline.safetensors a.embeds a.embeds_uncond a.noise "$tmp/sd3np"
bad_gen "SD3 embeddings without pooled" "cond_pooled" --model $G/pipelines/sd3-tiny --prompt-embeds "$tmp/sd3np/embeds.safetensors"
bad_gen "DDIM on a flow model" "flow matching" --model $G/pipelines/sd3-tiny --prompt-embeds "$tmp/sd3/embeds.safetensors" --sampler ddim
# interventions: scale:1 changes no bit; zeroing head 0 of the conditional half of mid_block attn2.out shows up
# zeroed in the cache (interventions run before caching) while the other head and the uncond half are kept
ivargs=(--model $G/pipelines/sd15-tiny --prompt A --seed 1 --steps 2)
if gen "${ivargs[@]}" -o "$tmp/ivb.png" --dump "$tmp/ivb.st" && gen "${ivargs[@]}" --intervene '*attn2.v=scale:1' -o "$tmp/iv1.png" --dump "$tmp/iv1.st" &&
   "$B/test_sample" --same-output "$tmp/ivb.png" "$tmp/iv1.png" "$tmp/ivb.st" "$tmp/iv1.st" &&
   gen "${ivargs[@]}" --intervene 'mid_block*attn2.out=zero' --heads 2 --intervene-heads 0 --intervene-half cond \
       --cache "$tmp/ivc.st" --cache-points 'mid_block*attn2.out' -o "$tmp/ivz.png" &&
   ! "$B/test_sample" --same-pixels "$tmp/ivb.png" "$tmp/ivz.png" 2>/dev/null && "$B/test_sample" --check-zero-head "$tmp/ivc.st" 2 0; then p=$((p+1))
else f=$((f+1)); echo "  FAIL generate --intervene: $(tail -1 "$tmp/gen.err")"; fi
# activation patching at any hook point from a cache: prompt B with prompt A's UNet output (conv_out) at every
# step gives A's image exactly; a missing cache file is one clear error
if gen --model $G/pipelines/sd15-tiny --prompt 'A sign that says "HELLO".' --steps 3 --seed 5 --cache "$tmp/rep.st" --cache-points conv_out -o "$tmp/repa.png" &&
   gen --model $G/pipelines/sd15-tiny --prompt 'A sign that says "WORLD".' --steps 3 --seed 5 -o "$tmp/repb.png" &&
   gen --model $G/pipelines/sd15-tiny --prompt 'A sign that says "WORLD".' --steps 3 --seed 5 --intervene "conv_out=replace:$tmp/rep.st" -o "$tmp/repba.png" &&
   "$B/test_sample" --same-pixels "$tmp/repa.png" "$tmp/repba.png" && ! "$B/test_sample" --same-pixels "$tmp/repa.png" "$tmp/repb.png" 2>/dev/null; then p=$((p+1))
else f=$((f+1)); echo "  FAIL --intervene replace from a cache: $(tail -1 "$tmp/gen.err")"; fi
bad_gen "replace from a missing cache" "cannot open" --model $G/pipelines/sd15-tiny --prompt a --intervene 'conv_out=replace:/nonexistent.st'
bad_gen "bad intervention" "operation must be" --model $G/pipelines/sd15-tiny --prompt a --intervene '*attn2.v=halve'
bad_gen "intervention head out of range" "outside" --model $G/pipelines/sd15-tiny --prompt a --intervene '*attn2.v=zero' --heads 2 --intervene-heads 5
# a cache pattern that matches nothing is found only after running: progress lines, then the error, no files
rm -f "$tmp/bad.png"
if ! "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --steps 1 --cache "$tmp/bad.cache" --cache-points 'nothing.*' -o "$tmp/bad.png" 2>"$tmp/err" &&
   tail -1 "$tmp/err" | grep -q "matched no hook point" && [ ! -e "$tmp/bad.png" ] && [ -z "$(ls "$tmp" | grep 'bad.cache')" ]; then p=$((p+1))
else f=$((f+1)); echo "  FAIL --cache matching nothing: $(tail -1 "$tmp/err")"; fi
# attention probabilities as hook points: computed only when asked for, equal to softmax(q.k/sqrt(d))
mp=mid_block.attentions.0.transformer_blocks.0.attn2
if gen --model $G/pipelines/sd15-tiny --prompt 'A sign that says "HELLO".' --steps 2 --cache "$tmp/probs.st" --cache-points "step1.x,$mp.q,$mp.k,$mp.probs,*attn1.probs" -o "$tmp/probs.png" &&
   "$B/locus" tensors "$tmp/probs.st" | grep -q "step1.$mp.probs.*\[2,2,16,77\]" && [ "$("$B/locus" tensors "$tmp/probs.st" | grep -c 'attn1.probs')" = 12 ] &&
   "$B/test_sample" --check-probs "$tmp/probs.st" "step0.$mp" 2 | sed 's/^/  /'; then p=$((p+1))
else f=$((f+1)); echo "  FAIL attention probability hook points: $(tail -1 "$tmp/gen.err")"; fi
bad_gen "intervening on probabilities" "read-only" --model $G/pipelines/sd15-tiny --prompt a --intervene '*.probs=zero'
bad_gen "unknown sampler" "sampler" --model $G/pipelines/sd15-tiny --prompt-embeds "$tmp/sd/embeds.safetensors" --sampler heun
for smp in euler pndm; do  # the other samplers run end to end and are bit-identical across ISAs
  if gen "${sdargs[@]}" --sampler $smp -o "$tmp/$smp.png" --dump "$tmp/$smp.st" &&
     LOCUS_ISA=scalar gen "${sdargs[@]}" --sampler $smp --threads 3 -o "$tmp/$smp.s.png" --dump "$tmp/$smp.s.st" &&
     "$B/test_sample" --same-output "$tmp/$smp.png" "$tmp/$smp.s.png" "$tmp/$smp.st" "$tmp/$smp.s.st"; then p=$((p+1))
  else f=$((f+1)); echo "  FAIL generate --sampler $smp: $(tail -1 "$tmp/gen.err")"; fi
done
mkdir -p "$tmp/badmodel"; cp -r $G/pipelines/sd15-tiny/* "$tmp/badmodel/"
sed -i 's/"CrossAttnDownBlock2D"/"KDownBlock2D"/' "$tmp/badmodel/unet/config.json"
bad_gen "unknown block type" "KDownBlock2D" --model "$tmp/badmodel" --prompt-embeds "$tmp/sd/embeds.safetensors"
cp $G/pipelines/sd15-tiny/unet/config.json "$tmp/badmodel/unet/config.json"
sed -i 's/"cross_attention_dim": 32/"cross_attention_dim": 48/' "$tmp/badmodel/unet/config.json"
bad_gen "config/weight shape mismatch" "has shape" --model "$tmp/badmodel" --prompt-embeds "$tmp/sd/embeds.safetensors"
# non-square models: a UNet sample_size [h, w] (as diffusers allows) makes the default image (w*f)x(h*f)
mkdir -p "$tmp/ns"; cp -r $G/pipelines/sd15-tiny/* "$tmp/ns/"
sed -i 's/"sample_size": 8,/"sample_size": [8, 16],/' "$tmp/ns/unet/config.json"
if gen --model "$tmp/ns" --prompt-embeds "$tmp/sd/embeds.safetensors" --steps 1 -o "$tmp/ns.png" && grep -q '(64x32,' "$tmp/gen.err" &&
   gen --model $G/pipelines/sd15-tiny --prompt-embeds "$tmp/sd/embeds.safetensors" --steps 1 -o "$tmp/sq.png" && grep -q '(32x32,' "$tmp/gen.err"; then p=$((p+1))
else f=$((f+1)); echo "  FAIL sample_size [8, 16]: $(tail -1 "$tmp/gen.err")"; fi
# a CLIP text encoder without transformer layers (the teaching model's): LayerNorm(token + position) rows
printf '{"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_hidden_layers": 0, "projection_dim": 32}\n' >"$tmp/t0.json"
if "$B/locus" train pipeline -o "$tmp/t0" --text-config "$tmp/t0.json" >/dev/null 2>&1 && cp -r $G/pipelines/sd15-tiny/unet $G/pipelines/sd15-tiny/vae "$tmp/t0/" &&
   gen --model "$tmp/t0" --prompt 'A sign that says "OPEN".' --steps 2 -o "$tmp/t0a.png" --dump "$tmp/t0a.st" &&
   gen --model "$tmp/t0" --prompt 'A sign that says "STOP".' --steps 2 -o "$tmp/t0b.png" --dump "$tmp/t0b.st" &&
   ! "$B/test_grad" --same-tensors "$tmp/t0a.st" "$tmp/t0b.st" >/dev/null 2>&1; then p=$((p+1))
else f=$((f+1)); echo "  FAIL a text encoder with 0 layers: $(tail -1 "$tmp/gen.err")"; fi
record "generate" $p $f
}

suite_layers() {
# 5. locus layers: the text parameters it reports equal the to_k/to_v tensors counted from the weight files
p=0 f=0
for m in $G/ldm $G/pipelines/sd15-tiny; do
  want=$("$B/locus" tensors $m/unet/diffusion_pytorch_model.safetensors | awk '$1 ~ /attn2\.to_[kv]\./ { gsub(/[\[\]]/, "", $3); n = split($3, d, ","); s = 1; for (i = 1; i <= n; i++) s *= d[i]; t += s } END { print t + 0 }')
  got=$("$B/locus" layers --model $m | tail -1 | sed -E 's/.*layers: ([0-9]+) of.*/\1/')
  total=$("$B/locus" tensors $m/unet/diffusion_pytorch_model.safetensors | tail -1 | awk '{print $3}')
  gt=$("$B/locus" layers --model $m | tail -1 | sed -E 's/.* of ([0-9]+) denoiser.*/\1/')
  nj=$("$B/locus" layers --model $m --json | grep -c '"kind": "cross"')
  nx=$("$B/locus" tensors $m/unet/diffusion_pytorch_model.safetensors | grep -c 'attn2\.to_k\.weight')
  if [ "$want" = "$got" ] && [ "$total" = "$gt" ] && [ "$nj" = "$nx" ] && [ "$want" -gt 0 ]; then p=$((p+1)); echo "  $m: $nj cross-attention layers, $got text parameters of $gt"
  else f=$((f+1)); echo "  FAIL layers $m: text $got vs $want, total $gt vs $total, cross $nj vs $nx"; fi
done
m=$G/pipelines/sd3-tiny
want=$("$B/locus" tensors $m/transformer/diffusion_pytorch_model.safetensors | awk '$1 ~ /attn\.add_[kv]_proj\./ { gsub(/[\[\]]/, "", $3); n = split($3, d, ","); s = 1; for (i = 1; i <= n; i++) s *= d[i]; t += s } END { print t + 0 }')
got=$("$B/locus" layers --model $m | tail -1 | sed -E 's/.*layers: ([0-9]+) of.*/\1/')
total=$("$B/locus" tensors $m/transformer/diffusion_pytorch_model.safetensors | tail -1 | awk '{print $3}')
gt=$("$B/locus" layers --model $m | tail -1 | sed -E 's/.* of ([0-9]+) denoiser.*/\1/')
if [ "$want" = "$got" ] && [ "$total" = "$gt" ] && [ "$want" -gt 0 ]; then p=$((p+1)); echo "  $m: $got text parameters of $gt"
else f=$((f+1)); echo "  FAIL layers $m: text $got vs $want, total $gt vs $total"; fi
# the peak-memory estimate of locus info agrees with the measured peak of a run (within 30%)
est=$("$B/locus" info --model $G/pipelines/sd3-tiny | sed -n 's/^peak memory estimate: \([0-9.]*\) MiB.*/\1/p')
"$B/locus" generate --model $G/pipelines/sd3-tiny --prompt 'A sign' --steps 1 --max-sequence-length 256 -o "$tmp/mem.png" 2>"$tmp/mem.err"
meas=$(sed -n 's/.*peak memory \([0-9.]*\) MiB.*/\1/p' "$tmp/mem.err")
if [ -n "$est" ] && [ -n "$meas" ] && awk -v e="$est" -v m="$meas" 'BEGIN { exit !(e > 0.7 * m && e < 1.3 * m) }'; then p=$((p+1)); echo "  peak memory: estimate $est MiB, measured $meas MiB"
else f=$((f+1)); echo "  FAIL peak memory estimate '$est' vs measured '$meas'"; fi
record "layers" $p $f
}

suite_grad_cli() {
# 5b. locus grad (branch grad-unet): UNet, VAE, SD3/SD3.5 and LoRA gradient dumps match torch autograd (tests/golden/train),
# the same tensors bit for bit with LOCUS_ISA=scalar, 3 threads and --checkpoint; a clear error for bad input
p=0 f=0
T=$G/train
for c in "unet $G/ldm/unet" "vae $G/ldm/vae" "sd3 $G/sd3/transformer" "sd35 $G/sd35/transformer" \
         "unet $G/ldm --lora $T/lora_init_unet.safetensors" "sd3 $G/sd3/transformer --lora $T/lora_init_sd3.safetensors"; do
  set -- $c
  g=$1; shift
  : >"$tmp/gc.out"
  if "$B/locus" grad --model "$@" --batch $T/golden_train_$g.safetensors --dump "$tmp/g.st" >/dev/null &&
     "$B/test_grad" --check-dump "$tmp/g.st" $T/golden_train_$g.safetensors >"$tmp/gc.out" 2>&1 &&
     LOCUS_ISA=scalar "$B/locus" grad --model "$@" --batch $T/golden_train_$g.safetensors --threads 3 --checkpoint --dump "$tmp/gs.st" >/dev/null &&
     "$B/test_grad" --same-tensors "$tmp/g.st" "$tmp/gs.st" >/dev/null; then p=$((p+1)); grep -v 'golden is' "$tmp/gc.out" | sed 's/^/  /'
  else f=$((f+1)); echo "  FAIL locus grad $c"; sed 's/^/  /' "$tmp/gc.out" | tail -5; fi
done
cli_err "grad without --batch" "required" "$B/locus" grad --model $G/ldm/unet --dump "$tmp/x.st"
cli_err "grad batch without x0" "no tensor 'x0'" "$B/locus" grad --model $G/ldm/unet --batch $T/golden_train_vae.safetensors --dump "$tmp/x.st"
[ ! -e "$tmp/x.st" ] || { f=$((f+1)); echo "  FAIL grad left a dump behind after an error"; }
record "grad-cli" $p $f
}

suite_lora_cli() {
# 5c. LoRA through the denoiser: train-lora on images locus itself made (--data), then generate --lora.
#     A LoRA whose up factors are zero (lr 0: PEFT's init) leaves the sampled tensors bit-identical; trained
#     adapters change them; a file with a wrong key is refused naming it.
p=0 f=0
SD=$G/pipelines/sd15-tiny
mkdir -p "$tmp/ld"
for i in 0 1; do "$B/locus" generate --model $SD --prompt "sign $i" --seed $i --steps 2 -o "$tmp/ld/$i.png" 2>/dev/null; done
printf '{"file_name": "0.png", "text": "A sign that says \\"OPEN\\"."}\n{"file_name": "1.png", "text": "A sign that says \\"STOP\\"."}\n' >"$tmp/ld/metadata.jsonl"
lt() { "$B/locus" train-lora --model $SD --data "$tmp/ld" --lora-layers 'up_blocks.1.attentions.*.transformer_blocks.*.attn2' --rank 2 --alpha 2 --steps 2 --seed 1 "$@" 2>"$tmp/lt.err" >/dev/null; }
if lt --lr 0 -o "$tmp/zero.safetensors" && lt --lr 0.05 -o "$tmp/lora.safetensors"; then p=$((p+1)); else f=$((f+1)); echo "  FAIL train-lora --data: $(tail -1 "$tmp/lt.err")"; fi
gl() { "$B/locus" generate --model $SD --prompt 'A sign that says "OPEN".' --seed 3 --steps 3 "$@" 2>/dev/null; }
gl -o "$tmp/l0.png" --dump "$tmp/l0.st"; gl --lora "$tmp/zero.safetensors" -o "$tmp/l1.png" --dump "$tmp/l1.st"
gl --lora "$tmp/lora.safetensors:0.8" -o "$tmp/l2.png" --dump "$tmp/l2.st"
if "$B/test_grad" --same-tensors "$tmp/l0.st" "$tmp/l1.st" >/dev/null 2>&1; then p=$((p+1)); else f=$((f+1)); echo "  FAIL a zero-up LoRA changed the sampled tensors"; fi
if [ -s "$tmp/l2.st" ] && ! "$B/test_grad" --same-tensors "$tmp/l0.st" "$tmp/l2.st" >/dev/null 2>&1; then p=$((p+1)); else f=$((f+1)); echo "  FAIL a trained LoRA did not change the image"; fi
if "$B/locus" lora list "$tmp/lora.safetensors" 2>/dev/null | grep -q "unet.up_blocks.1"; then p=$((p+1)); else f=$((f+1)); echo "  FAIL lora list does not show diffusers' unet.<module> keys"; fi
gl --lora "$G/train/lora_init_sd3.safetensors" -o "$tmp/l3.png" 2>"$tmp/l3.err"; rc=$?
if [ $rc -ne 0 ] && [ ! -e "$tmp/l3.png" ]; then p=$((p+1)); else f=$((f+1)); echo "  FAIL an SD3 LoRA on a UNet was accepted"; fi
record "lora-cli" $p $f
}

suite_clip_score() {
# ---- 7. locus clip-score (issue 17): golden parity through the CLI, the same bits for every LOCUS_ISA x
#      threads (dumped tensors and the printed table), bad input ----
p=0 f=0
C=$G/clip
cs=(--clip $C/model --image $C/img0.png $C/img1.png $C/img2.png --prompt 'A sign that says "HELLO".' 'a photo of a red fox in the snow')
if "$B/locus" clip-score "${cs[@]}" --dump "$tmp/cs.st" >"$tmp/cs.out" 2>"$tmp/cs.err" &&
   "$B/test_clip" --check-dump "$tmp/cs.st" $C/golden_clip.safetensors >"$tmp/cs.chk" && [ "$(grep -c '^tests/golden/clip/img' "$tmp/cs.out")" = 3 ]; then
  p=$((p+1)); sed 's/^/  /' "$tmp/cs.chk"
else f=$((f+1)); echo "  FAIL clip-score golden parity: $(tail -1 "$tmp/cs.err") $(cat "$tmp/cs.chk" 2>/dev/null)"; fi
csref=$(sed -n 's/.*hash \([0-9a-f]*\)$/\1/p' "$tmp/cs.chk")
for isa in $isas; do
  for th in 1 2 3; do
    if LOCUS_ISA=$isa "$B/locus" clip-score "${cs[@]}" --threads $th --dump "$tmp/cs.$isa.$th.st" >"$tmp/cs.$isa.$th.out" 2>/dev/null &&
       [ "$("$B/test_clip" --check-dump "$tmp/cs.$isa.$th.st" $C/golden_clip.safetensors | sed -n 's/.*hash \([0-9a-f]*\)$/\1/p')" = "$csref" ] &&
       diff <(tail -n +2 "$tmp/cs.out") <(tail -n +2 "$tmp/cs.$isa.$th.out") >/dev/null; then p=$((p+1))
    else f=$((f+1)); echo "  FAIL clip-score output differs: isa=$isa threads=$th"; fi
  done
done
"$B/test_clip" --write-rgba "$tmp/rgba.png"
cli_err "clip-score without --clip" "required" "$B/locus" clip-score --image $C/img0.png --prompt a
cli_err "clip-score missing folder" "/nonexistent" "$B/locus" clip-score --clip /nonexistent --image $C/img0.png --prompt a
cli_err "clip-score missing image" "nonexistent.png" "$B/locus" clip-score --clip $C/model --image "$tmp/nonexistent.png" --prompt a
cli_err "clip-score RGBA image" "8-bit RGB" "$B/locus" clip-score --clip $C/model --image "$tmp/rgba.png" --prompt a
cli_err "clip-score unknown option" "unknown" "$B/locus" clip-score --clip $C/model --image $C/img0.png --prompt a --bogus
cli_err "clip-score text folder" "vision_config" "$B/locus" clip-score --clip $G/ldm/text_encoder --image $C/img0.png --prompt a
record "clip-score" $p $f
}

suite_localize_clip() {
C=$G/clip
# ---- localize --clip: CLIP-T columns in rows and summaries, the same bytes for scalar/1 thread, the best
#      ISA/2 threads, 2 shards merged and a run resumed after losing its last two rows ----
p=0 f=0
printf 'HELLO\nWORLD\nSTOP\n' >"$tmp/cw.txt"
lc=(--model $G/pipelines/sd15-tiny --words "$tmp/cw.txt" --seeds 0 --steps 2 --layers up_blocks.1 --clip $C/model)
lzc() { "$B/locus" localize "${lc[@]}" "$@" >/dev/null 2>"$tmp/lzc.err"; }
if LOCUS_ISA=scalar lzc --threads 1 -o "$tmp/lc1" && grep -q '"clip_t_a": ' "$tmp/lc1/results.jsonl" && head -1 "$tmp/lc1/summary.csv" | grep -q ',clip_t_a,clip_t_b$'; then p=$((p+1))
else f=$((f+1)); echo "  FAIL localize --clip: $(tail -1 "$tmp/lzc.err")"; fi
lzc --threads 2 -o "$tmp/lc2"; lzc --shard 0/2 -o "$tmp/lcs0"; lzc --shard 1/2 -o "$tmp/lcs1"
"$B/locus" merge -o "$tmp/lcm" "$tmp/lcs0" "$tmp/lcs1" >/dev/null 2>&1
cp -r "$tmp/lc2" "$tmp/lcr"; head -n -2 "$tmp/lc2/results.jsonl" >"$tmp/lcr/results.jsonl"  # the last two cells lost
lzc --resume -o "$tmp/lcr"
for d in lc2 lcm lcr; do
  if diff -r -x runs.log -x report.html -x .lock "$tmp/lc1" "$tmp/$d" >/dev/null; then p=$((p+1)); else f=$((f+1)); echo "  FAIL localize --clip: $d differs from scalar/1 thread"; fi
done
record "localize-clip" $p $f
}

suite_localize() { script_suite localize tests/localize_test.sh; }   # golden parity of cells, determinism, shards, SIGKILL + resume
suite_dataset() { script_suite dataset tests/dataset_test.sh; }      # dataset signs / ocr: determinism, formats, splits, OCR round trip
suite_sdxl() { script_suite sdxl tests/sdxl_test.sh; }               # SDXL golden parity, bits across ISAs x threads, size options, localize
suite_if() { script_suite if tests/if_test.sh; }                     # DeepFloyd IF stage I: golden first steps, bits, layers, T5 prompts, localize
suite_edit() { script_suite edit tests/edit_test.sh; }               # edit / detox, presets, pairs, numpy pairing
suite_help() { script_suite help tests/help_test.sh; }               # every --help against its parser's options, man pages, bash completion
suite_install() { script_suite install tests/install_test.sh; }      # make install + pkg-config + a C program + uninstall, in a temporary prefix
suite_report() { script_suite report tests/report_test.sh; }         # localize's report.html: self-contained, deterministic, headless Chromium
suite_python() { script_suite python tests/python_test.sh; }        # liblocus.so + python/locus against the CLI, byte for byte
suite_bad_input() { script_suite bad_input tests/bad_input.sh; }     # hostile input: exit 2, one line, no file, no sanitizer report
suite_zoo() { script_suite zoo tests/zoo_test.sh; }                 # the shipped teaching model: hashes, README command, OCR, patching

suite_train() {
# ---- train ----
# locus train vae|unet|pipeline: same weights scalar/1 thread vs best ISA/2 threads, resume, SIGKILL, generate
bash tests/train_test.sh "$B" >"$tmp/train.out" 2>&1
grep '^FAIL\|^  ' "$tmp/train.out" | head -20
line=$(grep -E '^train_test: [0-9]+ passed, [0-9]+ failed$' "$tmp/train.out" | tail -1)
p=$(echo "${line:-x: 0 passed, 1 failed}" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); f=$(echo "${line:-x: 0 passed, 1 failed}" | sed -E 's/.* ([0-9]+) failed/\1/')
record "train" $p $f
# ---- end train ----
}

# ---- the schedule: longest first; "full" suites are skipped with LOCUS_TEST_QUICK=1 ----
names=() funcs=()
ONLY=${LOCUS_TEST_ONLY:-}   # a regex of suite names to run (e.g. 'generate|test_unet'), for development
add() { if [ -z "$ONLY" ] || [[ $1 =~ ^($ONLY)$ ]]; then names+=("$1"); funcs+=("$2"); fi; }
full() { if [ "$QUICK" = 1 ]; then echo "$1: skipped (LOCUS_TEST_QUICK=1; make test-full runs it)" >>"$tmp/skipped"; else add "$1" "$2"; fi; }
full edit suite_edit
full localize suite_localize
full train suite_train
full sdxl suite_sdxl
full if suite_if
full dataset suite_dataset
full localize-clip suite_localize_clip
add generate suite_generate
for t in "$B"/test_*; do [ -x "$t" ] && add "$(basename "$t")" "test_program $t"; done
add bad_input suite_bad_input
add zoo suite_zoo
add help suite_help
add python suite_python
add install suite_install
full report suite_report
add determinism suite_determinism
add grad-cli suite_grad_cli
add lora-cli suite_lora_cli
add clip-score suite_clip_score
add layers suite_layers
add cli suite_cli

base_tmp=$tmp
for i in "${!names[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  ( tmp="$base_tmp/s$i"; mkdir -p "$tmp"; RES="$base_tmp/res.$i"; : >"$RES"; t_start=$(date +%s); p=0 f=0
    ${funcs[$i]} ) >"$base_tmp/out.$i" 2>&1 </dev/null &
done
wait
tmp=$base_tmp

# ---- report in a fixed order (test programs, then the CLI suites), exit status from the results ----
order=()
for i in "${!names[@]}"; do case ${names[$i]} in test_*) order+=("$i");; esac; done
for i in "${!names[@]}"; do case ${names[$i]} in test_*) ;; *) order+=("$i");; esac; done
for i in "${order[@]}"; do
  cat "$tmp/out.$i"
  [ -s "$tmp/res.$i" ] || echo "${names[$i]} 0 1" >"$tmp/res.$i"   # a suite that died without a result
  cat "$tmp/res.$i" >>"$B/results"
done
[ -f "$tmp/skipped" ] && cat "$tmp/skipped"
awk '$NF != 0 { bad = 1 } END { exit bad }' "$B/results"
