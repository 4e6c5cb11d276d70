#!/usr/bin/env bash
# zoo_test.sh — the shipped teaching models zoo/signs-sd (UNet) and zoo/signs-sd3 (MM-DiT), as users meet them:
#   - their weight files are the ones TRAINING.md lists (SHA256SUMS; `make teaching-model[-sd3]` retrains them);
#   - the README's command (signs-sd: A sign that says "KERNEL"., signs-sd3: "FLEECE" at 128x32; seed 90000,
#     default steps and guidance) writes the same pixels for scalar/1 thread and the best ISA/2 threads (signs-sd3:
#     compared at 20 steps), and OCR reads the word back;
#   - `locus layers` lists their text-reading attention layers (13 cross for the only_cross_attention UNet, 6 joint);
#   - patching the text layers with B's text writes B's word (signs-sd: every text layer, KERNEL -> HORROR;
#     signs-sd3: the two blocks its TRAINING.md localizes, FLEECE -> TOOLS, while block 1 alone keeps FLEECE):
#     the models really read the text K/V, where localization says they do.
# Usage: zoo_test.sh BUILD_DIR TMPDIR   Prints "N M" (passed failed) on its last line.
set -u
B=$1
tmp=$(mktemp -d "$2/zoo.XXXXXX")
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "  FAIL zoo: $*"; }
L="$B/locus"
best=$("$L" info | sed -n 's/^supported: //p' | awk '{print $NF}')

# model kind-of-layer n-layers README-word size patch-layers(empty: all) B-word control-layer [scalar-comparison steps]
check_model() {
  local M=$1 kind=$2 nlayers=$3 word=$4 size=$5 patch=$6 bword=$7 control=$8 cmp_steps=${9:-}
  local lw; lw=$(echo "$word" | tr A-Z a-z)
  # 1. the shipped bytes
  (cd "$M" && sha256sum --quiet -c SHA256SUMS) >"$tmp/sum.out" 2>&1 && ok || bad "$M: weights differ from SHA256SUMS: $(head -1 "$tmp/sum.out")"
  # 2. the README's command, on two ISAs and thread counts
  gen() { "$L" generate --model "$M" --prompt "A sign that says \"$1\"." --seed 90000 $size "${@:3}" -o "$2" >/dev/null 2>"$tmp/gen.err"; }
  # (the PNG's text chunk names the ISA and threads, so the pixels are compared; $cmp_steps: the scalar run's
  # steps, "" = the README's default — signs-sd3 compares at 20 steps, which keeps the ASan pass short)
  LOCUS_ISA=scalar LOCUS_THREADS=1 gen "$word" "$tmp/k1.png" $cmp_steps || bad "$M: generate (scalar): $(tail -1 "$tmp/gen.err")"
  LOCUS_ISA=$best LOCUS_THREADS=2 gen "$word" "$tmp/k0.png" $cmp_steps || bad "$M: generate ($best): $(tail -1 "$tmp/gen.err")"
  [ -s "$tmp/k1.png" ] && "$B/test_sample" --same-pixels "$tmp/k1.png" "$tmp/k0.png" >/dev/null 2>&1 && ok || bad "$M $word: scalar/1 thread and $best/2 threads differ"
  if [ -n "$cmp_steps" ]; then LOCUS_ISA=$best LOCUS_THREADS=2 gen "$word" "$tmp/k2.png" || bad "$M: generate ($best): $(tail -1 "$tmp/gen.err")"
  else cp "$tmp/k0.png" "$tmp/k2.png"; fi
  local r; r=$("$L" ocr "$tmp/k2.png" 2>/dev/null | cut -f2)
  [ "$r" = "$lw" ] && { ok; echo "  $M README command: OCR reads '$r'"; } || bad "$M: OCR reads '$r', not '$lw'"
  # 3. the text layers
  local n; n=$("$L" layers --model "$M" 2>/dev/null | awk -v k="$kind" '$3 == k' | wc -l)
  [ "$n" = "$nlayers" ] && ok || bad "$M: layers lists $n $kind text layers, not $nlayers"
  # 4. patching the text layers with B's text writes B's word (the same seed and sign otherwise)
  [ -n "$patch" ] || patch=$("$L" layers --model "$M" 2>/dev/null | awk -v k="$kind" '$3 == k {print $4}' | paste -sd,)
  local lb; lb=$(echo "$bword" | tr A-Z a-z)
  gen "$word" "$tmp/p.png" --steps 20 --patch-prompt "A sign that says \"$bword\"." --patch-layers "$patch" || bad "$M: patched generate: $(tail -1 "$tmp/gen.err")"
  gen "$bword" "$tmp/h.png" --steps 20 || bad "$M: generate $bword: $(tail -1 "$tmp/gen.err")"
  local rp rh; rp=$("$L" ocr "$tmp/p.png" 2>/dev/null | cut -f2); rh=$("$L" ocr "$tmp/h.png" 2>/dev/null | cut -f2)
  [ "$rp" = "$lb" ] && [ "$rh" = "$lb" ] && ok || bad "$M: patched $word -> $bword reads '$rp' ($bword alone: '$rh')"
  if [ -n "$control" ]; then # a layer localization ranks low leaves the word alone
    gen "$word" "$tmp/c.png" --steps 20 --patch-prompt "A sign that says \"$bword\"." --patch-layers "$control" || bad "$M: control patch: $(tail -1 "$tmp/gen.err")"
    r=$("$L" ocr "$tmp/c.png" 2>/dev/null | cut -f2)
    [ "$r" = "$lw" ] && ok || bad "$M: patching $control alone reads '$r', not '$lw'"
  fi
}

check_model zoo/signs-sd cross 13 KERNEL "" "" HORROR ""
check_model zoo/signs-sd3 joint 6 FLEECE "--width 128 --height 32" transformer_blocks.0,transformer_blocks.3 TOOLS transformer_blocks.1 "--steps 20"

rm -rf "$tmp"
echo "$p $f"
