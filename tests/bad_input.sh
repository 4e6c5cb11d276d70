#!/usr/bin/env bash
# bad_input.sh — the hostile-input suite (issue 14): every reproducer of a crash, hang, silent wrong output or
# clobbered file found by feeding locus bad model folders, files and options, as a case that must end with
# exit 2, exactly one error line naming the problem (progress lines of a run that started are allowed before
# it), no output file left behind and no sanitizer report.  Run by tests/run_tests.sh for every build (plain
# and ASan+UBSan).  Usage: bad_input.sh BUILD_DIR TMPDIR   Prints "N M" (passed failed) on its last line.
set -u
B=$1 tmp=$2
G=tests/golden
p=0 f=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}:allocator_may_return_null=1
out="$tmp/out.png"

# run one case: description, expected substring of the error line, command...  (a 20 s timeout catches hangs)
bad() {
  local what=$1 want=$2; shift 2
  rm -rf "$out" "$tmp/out.st" "$tmp/out.cache" "$tmp/res"
  if [ "$1" = lim ]; then shift; (ulimit -v 4000000; exec timeout 20 "$@") >"$tmp/stdout" 2>"$tmp/stderr" </dev/null
  else timeout 20 "$@" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null; fi
  local rc=$?
  # progress lines ("generate 1/4 [...]", "...: done in") may come before the error line
  grep -Ev ' [0-9]+/[0-9]+ \[|: done in [0-9.]+ s$' "$tmp/stderr" >"$tmp/errlines"
  local why=""
  [ $rc = 2 ] || why="exit $rc"
  [ "$(wc -l <"$tmp/errlines")" = 1 ] || why="$why, $(wc -l <"$tmp/errlines") error lines"
  grep -qF -- "$want" "$tmp/errlines" || why="$why, no '$want'"
  grep -qE 'Sanitizer|runtime error' "$tmp/stderr" && why="$why, sanitizer report"
  ls "$tmp" | grep -qE '^out\.|\.tmp\.' && why="$why, left $(ls "$tmp" | grep -E '^out\.|\.tmp\.' | head -3 | tr '\n' ' ')"
  [ -e "$tmp/res" ] && [ -n "$(ls -A "$tmp/res" 2>/dev/null)" ] && why="$why, left files in the results directory"
  if [ -z "$why" ]; then p=$((p+1)); else f=$((f+1)); echo "  FAIL bad input: $what:$why: $(head -c 300 "$tmp/errlines" | head -2)"; fi
}

# a fresh copy of a golden pipeline with one JSON value set (KEY's value replaced, or KEY added when absent)
model() { # NAME SRC
  rm -rf "$tmp/$1"; cp -r "$G/pipelines/$2" "$tmp/$1"
}
jset() { # FILE KEY JSONVALUE
  if grep -q "\"$2\":" "$1"; then
    K="$2" V="$3" perl -0pi -e 's/"\Q$ENV{K}\E":\s*(\[[^\]]*\]|"[^"]*"|[^,\n}]*)/"$ENV{K}": $ENV{V}/' "$1"
  else
    K="$2" V="$3" perl -0pi -e 's/^\{/{\n  "$ENV{K}": $ENV{V},/' "$1"
  fi
}
# overwrite the first 4 data bytes of tensor NAME (an F32 tensor) in a safetensors FILE with the bytes HEX
poke() { # FILE NAME HEX
  local off
  off=$(F="$1" N="$2" perl -e 'open my $f, "<:raw", $ENV{F} or die; read $f, my $h, 8; my $n = unpack("Q<", $h); read $f, my $j, $n;
        $j =~ /"\Q$ENV{N}\E":\{[^}]*"data_offsets":\[(\d+)/ or die "no $ENV{N}"; print 8 + $n + $1')
  printf "$3" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}
NAN='\x00\x00\xc0\x7f'
U=(--prompt a --steps 2)

unet_case() { # description, expected, KEY, VALUE [extra generate args]
  local what=$1 want=$2 key=$3 val=$4; shift 4
  model m sd15-tiny; jset "$tmp/m/unet/config.json" "$key" "$val"
  bad "unet $what" "$want" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out" "$@"
}

# ---- 1. model configs: types, ranges, list lengths, divisibility, overflow, sizes --------------------------
unet_case "attention_head_dim 0" "attention_head_dim" attention_head_dim 0
unet_case "attention_head_dim -2" "attention_head_dim" attention_head_dim -2
model m sd15-tiny; jset "$tmp/m/unet/config.json" attention_head_dim 0
bad "locus info with attention_head_dim 0" "attention_head_dim" "$B/locus" info --model "$tmp/m"
unet_case "num_attention_heads too short" "num_attention_heads" num_attention_heads "[2]"
unet_case "heads not dividing channels" "attention_head_dim" attention_head_dim 3
unet_case "layers_per_block -1" "layers_per_block" layers_per_block -1
unet_case "layers_per_block huge" "layers_per_block" layers_per_block 100000000
unet_case "sample_size 0" "sample_size" sample_size 0
unet_case "sample_size -8" "sample_size" sample_size -8
unet_case "sample_size 2^32+8" "sample_size" sample_size 4294967304
unet_case "sample_size huge" "sample_size" sample_size 1000000000
unet_case "transformer_layers_per_block too short" "transformer_layers_per_block" transformer_layers_per_block "[1]"
unet_case "transformer_layers_per_block huge" "transformer_layers_per_block" transformer_layers_per_block 100000000
unet_case "block_out_channels 0" "block_out_channels" block_out_channels "[0, 32]"
unet_case "norm_num_groups not dividing" "norm_num_groups" norm_num_groups 5
unet_case "in_channels as a string" "in_channels" in_channels '"4"'
unet_case "in_channels fractional" "in_channels" in_channels 4.5
unet_case "norm_eps nan-like 1e999" "norm_eps" norm_eps 1e999
unet_case "cross_attention_dim -1" "cross_attention_dim" cross_attention_dim -1
# duplicate keys: the last one wins, as Python's json: a later cross_attention_dim 48 must be the one used
model m sd15-tiny; perl -0pi -e 's/\n\}\s*$/,\n  "cross_attention_dim": 48\n}\n/' "$tmp/m/unet/config.json"
bad "duplicate key: the last wins" "has shape" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/text_encoder/config.json" vocab_size 2000000; jset "$tmp/m/text_encoder/config.json" hidden_size 65536
bad "text encoder sizes past the weights (no allocation first)" "has shape" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/text_encoder/config.json" num_hidden_layers 100000000
bad "text encoder num_hidden_layers huge" "num_hidden_layers" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/text_encoder/config.json" num_attention_heads 0
bad "text encoder num_attention_heads 0" "num_attention_heads" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/vae/config.json" layers_per_block -1
bad "vae layers_per_block -1" "layers_per_block" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/vae/config.json" norm_num_groups 0
bad "vae norm_num_groups 0" "norm_num_groups" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/scheduler/scheduler_config.json" steps_offset 5000
bad "scheduler steps_offset 5000" "steps_offset" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/scheduler/scheduler_config.json" _class_name '"LMSDiscreteScheduler"'
bad "unknown scheduler class (use after free)" "LMSDiscreteScheduler" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/scheduler/scheduler_config.json" prediction_type '"sample_xyz"'
bad "unknown prediction type (use after free)" "sample_xyz" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/scheduler/scheduler_config.json" beta_end '"x"'
bad "scheduler beta_end a string" "beta_end" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; jset "$tmp/m/model_index.json" unet '["diffusers", 5]'
bad "model_index entry not a string pair" "unet" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; printf '{"pad_token": 5}' >"$tmp/m/tokenizer/special_tokens_map.json"
bad "tokenizer pad_token of the wrong type" "pad_token" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m3 sd3-tiny; jset "$tmp/m3/transformer/config.json" num_attention_heads 0
bad "mmdit num_attention_heads 0" "num_attention_heads" "$B/locus" generate --model "$tmp/m3" "${U[@]}" --max-sequence-length 32 -o "$out"
model m3 sd3-tiny; jset "$tmp/m3/transformer/config.json" patch_size 0
bad "mmdit patch_size 0" "patch_size" "$B/locus" generate --model "$tmp/m3" "${U[@]}" --max-sequence-length 32 -o "$out"
model m3 sd3-tiny; jset "$tmp/m3/transformer/config.json" pos_embed_max_size 2
bad "mmdit sample_size past pos_embed_max_size" "pos_embed_max_size" "$B/locus" generate --model "$tmp/m3" "${U[@]}" --max-sequence-length 32 -o "$out"
model m3 sd3-tiny; jset "$tmp/m3/text_encoder_3/config.json" num_layers 100000000
bad "t5 num_layers huge" "num_layers" "$B/locus" generate --model "$tmp/m3" "${U[@]}" --max-sequence-length 32 -o "$out"
bad "sd3 image larger than pos_embed_max_size (32x136)" "pos_embed_max_size" "$B/locus" generate --model $G/pipelines/sd3-tiny "${U[@]}" --max-sequence-length 32 --width 32 --height 136 -o "$out"
bad "sd3 512x512 on sd3-tiny" "pos_embed_max_size" "$B/locus" generate --model $G/pipelines/sd3-tiny "${U[@]}" --max-sequence-length 32 --width 512 --height 512 -o "$out"
# weights the config never uses are an error naming them (LOCUS_ALLOW_EXTRA_WEIGHTS=1 accepts them)
model m sd15-tiny
"$B/locus" tensors "$tmp/m/unet/diffusion_pytorch_model.safetensors" | awk 'NF == 3 {print $1}' >"$tmp/names"
mv "$tmp/m/unet/diffusion_pytorch_model.safetensors" "$tmp/m/unet/a.safetensors"
printf '{"extra.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' >"$tmp/hdr"
{ perl -e 'print pack("Q<", -s $ARGV[0])' "$tmp/hdr"; cat "$tmp/hdr"; printf '\0\0\0\0'; } >"$tmp/m/unet/b.safetensors"
{ printf '{"metadata": {}, "weight_map": {'; awk '{printf "\"%s\": \"a.safetensors\", ", $1}' "$tmp/names"; printf '"extra.weight": "b.safetensors"}}'; } \
  >"$tmp/m/unet/diffusion_pytorch_model.safetensors.index.json"
bad "weights the config does not use" "extra.weight" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
if LOCUS_ALLOW_EXTRA_WEIGHTS=1 "$B/locus" generate --model "$tmp/m" --prompt a --steps 1 -o "$tmp/ok.png" 2>/dev/null && [ -s "$tmp/ok.png" ]; then p=$((p+1))
else f=$((f+1)); echo "  FAIL LOCUS_ALLOW_EXTRA_WEIGHTS=1 does not accept extra weights"; fi
rm -f "$tmp/ok.png"

# ---- safetensors files and index files ----------------------------------------------------------------------
printf '{"weight_map":{"x":5}}' >"$tmp/bad.safetensors.index.json"
bad "index weight_map value not a string (use after free)" "weight_map" "$B/locus" tensors "$tmp/bad.safetensors.index.json"
printf '{"weight_map":{"x":"../../../etc/passwd"}}' >"$tmp/bad.safetensors.index.json"
bad "index pointing outside its folder" "not a shard file name" "$B/locus" tensors "$tmp/bad.safetensors.index.json"
mkst() { # FILE HEADERJSON NBYTES
  { perl -e 'print pack("Q<", length $ARGV[0])' "$2"; printf '%s' "$2"; head -c "$3" /dev/zero; } >"$1"
}
mkst "$tmp/huge.safetensors" '{"t":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}}' 0
bad "shape with an overflowing product" "shape" "$B/locus" tensors "$tmp/huge.safetensors"
mkst "$tmp/utf.safetensors" "$(printf '{"t\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')" 4
bad "tensor name not valid UTF-8" "UTF-8" "$B/locus" tensors "$tmp/utf.safetensors"

# ---- 2. command-line numbers and ranges -------------------------------------------------------------------
bad "--steps 1000 with DDIM (out of bounds)" "--steps" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --steps 1000 -o "$out"
bad "--steps 1000 with PNDM (out of bounds)" "--steps" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --steps 1000 --sampler pndm -o "$out"
model m sd15-tiny; jset "$tmp/m/scheduler/scheduler_config.json" num_train_timesteps 100
bad "--steps above the training timesteps" "--steps" "$B/locus" generate --model "$tmp/m" --prompt a --steps 101 -o "$out"
bad "--guidance nan" "--guidance" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --guidance nan -o "$out"
bad "--guidance inf" "--guidance" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --guidance inf -o "$out"
bad "--seed with trailing junk" "--seed" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --seed 12x -o "$out"
bad "--seed 2^64 (wrap)" "--seed" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --seed 18446744073709551617 -o "$out"
bad "--start-step not below --steps" "--start-step" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --patch-prompt b \
    --patch-layers mid_block.attentions.0.transformer_blocks.0.attn2 --start-step 1000 --steps 4 -o "$out"
bad "--patch-layers index 2^32" "transformer_blocks.4294967296" "$B/locus" generate --model $G/pipelines/sd3-tiny --prompt a --patch-prompt b \
    --patch-layers transformer_blocks.4294967296 --steps 2 --max-sequence-length 32 -o "$out"
bad "--intervene-heads x,y" "--intervene-heads" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" --intervene '*attn2.v=zero' --heads 2 --intervene-heads x,y -o "$out"
bad "--intervene ';;;'" "--intervene" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" --intervene ';;;' -o "$out"
bad "--intervene scale:nan" "scale" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" --intervene '*attn2.v=scale:nan' -o "$out"
bad "--intervene-steps 5:x" "--intervene-steps" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" --intervene '*attn2.v=zero' --intervene-steps 5:x -o "$out"
long=$(printf 'a%.0s' $(seq 300))
bad "--cache-points pattern over 255 characters" "--cache-points" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" --cache "$tmp/out.cache" --cache-points "$long" -o "$out"
many=$(printf 'p%d,' $(seq 40)); many=${many%,}
bad "--cache-points more than 32 patterns" "--cache-points" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" --cache "$tmp/out.cache" --cache-points "$many" -o "$out"
printf 'HELLO\nWOR\0LD\nCOFFEE\n' >"$tmp/nul.txt"
bad "NUL byte in a words file" "NUL" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/nul.txt" --steps 1 -o "$tmp/res"
printf 'HELLO\nWORLD\n' >"$tmp/w.txt"
bad "--shard 1/99999999999" "--shard" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --steps 1 --shard 1/99999999999 -o "$tmp/res"
bad "--seeds 99999999999999999999" "--seeds" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --steps 1 --seeds 99999999999999999999 -o "$tmp/res"
bad "--seeds range too large" "--seeds" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --steps 1 --seeds 0-9223372036854775807 -o "$tmp/res"
yes A | head -200000 >"$tmp/same.txt"; echo B >>"$tmp/same.txt"
bad "200000 equal words (derangement must not hang)" "cannot pair" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/same.txt" --steps 1 -o "$tmp/res"
seq 100000 >"$tmp/many.txt"
bad "10^5 words x 10^4 seeds (cell count overflow)" "more than 10^8" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/many.txt" --seeds 0-9999 --steps 1 -o "$tmp/res"
bad "localize --guidance nan" "--guidance" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --steps 1 --guidance nan -o "$tmp/res"
bad "localize --start-step not below --steps" "--start-step" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --steps 4 --start-step 4 -o "$tmp/res"
bad "localize --perm-seed overflow" "--perm-seed" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --perm-seed 99999999999999999999 -o "$tmp/res"

# ---- 3. non-finite values -----------------------------------------------------------------------------------
model m sd15-tiny; poke "$tmp/m/unet/diffusion_pytorch_model.safetensors" conv_in.weight "$NAN"
bad "NaN in the UNet weights" "conv_in.weight" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; poke "$tmp/m/vae/diffusion_pytorch_model.safetensors" decoder.conv_in.weight "$NAN"
bad "NaN in the VAE weights" "decoder.conv_in.weight" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
mkdir -p "$tmp/in"
"$B/test_sample" --write-inputs $G/pipelines/sd15-tiny.golden/golden_pipeline.safetensors a.embeds a.embeds_uncond a.noise "$tmp/in" >/dev/null
cp "$tmp/in/embeds.safetensors" "$tmp/in/nanembeds.safetensors"; poke "$tmp/in/nanembeds.safetensors" cond "$NAN"
cp "$tmp/in/noise.safetensors" "$tmp/in/nannoise.safetensors"; poke "$tmp/in/nannoise.safetensors" noise "$NAN"
bad "NaN in --prompt-embeds" "non-finite" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt-embeds "$tmp/in/nanembeds.safetensors" --steps 2 -o "$out"
bad "NaN in --noise" "non-finite" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --noise "$tmp/in/nannoise.safetensors" --steps 2 -o "$out"
bad "a latent going non-finite in a module" "first in the output of mid_block.attentions.0" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" --intervene 'mid_block.resnets.0=scale:1e38' -o "$out"
bad "a latent going non-finite (scale:1e38)" "step 0 of 2" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" --intervene 'conv_out=scale:1e38' -o "$out" --dump "$tmp/out.st"

# ---- 4. allocation failures under a 4 GB address-space limit (plain build only: ASan reserves more) --------
if ! grep -q 'fsanitize=address' <<<"$(strings "$B/locus" 2>/dev/null | grep -m1 fsanitize)" && ! nm "$B/locus" 2>/dev/null | grep -q __asan_init; then
  bad "8192x8192 under 4 GB" "out of memory" lim "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --steps 1 --width 8192 --height 8192 -o "$out"
  bad "4096x4096 under 4 GB" "out of memory" lim "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --steps 1 --width 4096 --height 4096 -o "$out"
fi

# ---- 5. files: only regular files are read; outputs never replace anything but a regular file --------------
mkfifo "$tmp/fifo"
bad "a FIFO given to locus tensors" "not a regular file" "$B/locus" tensors "$tmp/fifo"
bad "a FIFO as --prompt-embeds" "not a regular file" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt-embeds "$tmp/fifo" -o "$out"
bad "a FIFO as --noise" "not a regular file" "$B/locus" generate --model $G/pipelines/sd15-tiny --prompt a --noise "$tmp/fifo" -o "$out"
bad "a FIFO as the words file" "not a regular file" "$B/locus" localize --model $G/pipelines/sd15-tiny --words "$tmp/fifo" -o "$tmp/res"
model m sd15-tiny; rm "$tmp/m/tokenizer/merges.txt"; ln -s /dev/zero "$tmp/m/tokenizer/merges.txt"
bad "tokenizer merges.txt -> /dev/zero" "not a regular file" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
model m sd15-tiny; rm "$tmp/m/unet/config.json"; ln -s "$tmp/fifo" "$tmp/m/unet/config.json"
bad "unet config.json -> FIFO" "not a regular file" "$B/locus" generate --model "$tmp/m" "${U[@]}" -o "$out"
bad "-o onto a FIFO" "not a regular file" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" -o "$tmp/fifo"
if [ -p "$tmp/fifo" ]; then p=$((p+1)); else f=$((f+1)); echo "  FAIL -o replaced the FIFO"; fi
if [ -p "$tmp/fifo" ] && [ -c /dev/null ]; then  # only once the FIFO case proved outputs never replace a non-file
  bad "-o /dev/null" "not a regular file" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" -o /dev/null
  if [ -c /dev/null ]; then p=$((p+1)); else f=$((f+1)); echo "  FAIL -o /dev/null replaced the device"; fi
fi
bad "--dump onto a FIFO" "not a regular file" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" -o "$out" --dump "$tmp/fifo"
bad "-o into a missing directory" "$tmp/nodir" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" -o "$tmp/nodir/x.png"
# a run that fails after sampling leaves neither the dump nor the cache nor the image
bad "failed run leaves no --dump / --cache" "matched no hook point" "$B/locus" generate --model $G/pipelines/sd15-tiny "${U[@]}" \
    --intervene 'nothing*=zero' --dump "$tmp/out.st" --cache "$tmp/out.cache" --cache-points conv_out -o "$out"
# merge: refuses a non-empty target and takes the localize lock
mkdir -p "$tmp/old"; echo x >"$tmp/old/keep"
bad "merge into a non-empty directory" "not empty" "$B/locus" merge -o "$tmp/old" "$tmp/old"
[ "$(ls -A "$tmp/old")" = keep ] && p=$((p+1)) || { f=$((f+1)); echo "  FAIL merge touched a non-empty target"; }
bad "merge of a missing shard directory" "cannot open" "$B/locus" merge -o "$tmp/res" "$tmp/nosuchshard"
mkcfg() { # DIR SHARD GRIDCOLS: a localize config.json (as localize writes it) with the given shard and grid_cols
  mkdir -p "$1"
  printf '{\n  "locus_localize": 1,\n  "model": "m",\n  "model_hash": "0",\n  "steps": 1,\n  "guidance": 7.5,\n  "sampler": "ddim",\n  "width": 32,\n  "height": 32,\n  "max_sequence_length": 77,\n  "negative_prompt": "",\n  "grid_cols": %s,\n  "start_step": 0,\n  "patch_halves": "cond",\n  "mse": "true",\n  "perm_seed": 0,\n  "seeds": [0],\n  "layers": [\n    "mid_block"\n  ],\n  "items": [\n    {"word": "A", "prompt": "a", "target": 1},\n    {"word": "B", "prompt": "b", "target": 0}\n  ],\n  "shard": "%s"\n}\n' "$3" "$2" >"$1/config.json"
}
mkcfg "$tmp/sh1" 5/3 8
bad "merge of a shard outside its count (5/3)" "malformed localize config" "$B/locus" merge -o "$tmp/res" "$tmp/sh1"
mkcfg "$tmp/sh2" 0/1 0
bad "merge of a config with grid_cols 0" "malformed localize config" "$B/locus" merge -o "$tmp/res" "$tmp/sh2"
mkcfg "$tmp/sh3" 0/99999999999 8
bad "merge of a config with shard 0/2^36" "malformed localize config" "$B/locus" merge -o "$tmp/res" "$tmp/sh3"

echo "$p $f"
