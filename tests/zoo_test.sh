#!/usr/bin/env bash
# zoo_test.sh — the shipped teaching model zoo/signs-sd, as users meet it:
#   - its weight files are the ones zoo/signs-sd/TRAINING.md lists (SHA256SUMS; `make teaching-model` retrains them);
#   - the README's first command (A sign that says "KERNEL"., seed 90000, default 50 steps and CFG) writes
#     the same PNG bytes for scalar/1 thread and the best ISA/2 threads, and OCR reads the word back;
#   - `locus layers` lists its 13 text-reading attention layers (the only_cross_attention UNet);
#   - a patched run (every text layer given B's text) writes B's word: the model really reads the text K/V.
# Usage: zoo_test.sh BUILD_DIR TMPDIR   Prints "N M" (passed failed) on its last line.
set -u
B=$1
tmp=$(mktemp -d "$2/zoo.XXXXXX")
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "  FAIL zoo: $*"; }
L="$B/locus"
M=zoo/signs-sd
best=$("$L" info | sed -n 's/^supported: //p' | awk '{print $NF}')

# 1. the shipped bytes
(cd "$M" && sha256sum --quiet -c SHA256SUMS) >"$tmp/sum.out" 2>&1 && ok || bad "weights differ from SHA256SUMS: $(head -1 "$tmp/sum.out")"

# 2. the README's first command, on two ISAs and thread counts
gen() { "$L" generate --model "$M" --prompt "A sign that says \"$1\"." --seed 90000 "${@:3}" -o "$2" >/dev/null 2>"$tmp/gen.err"; }
LOCUS_ISA=scalar LOCUS_THREADS=1 gen KERNEL "$tmp/k1.png" || bad "generate (scalar): $(tail -1 "$tmp/gen.err")"
LOCUS_ISA=$best LOCUS_THREADS=2 gen KERNEL "$tmp/k2.png" || bad "generate ($best): $(tail -1 "$tmp/gen.err")"
# (the PNG's text chunk names the ISA and threads, so the pixels are compared)
[ -s "$tmp/k1.png" ] && "$B/test_sample" --same-pixels "$tmp/k1.png" "$tmp/k2.png" >/dev/null 2>&1 && ok || bad "KERNEL: scalar/1 thread and $best/2 threads differ"
r=$("$L" ocr "$tmp/k2.png" 2>/dev/null | cut -f2)
[ "$r" = kernel ] && { ok; echo "  README command: OCR reads '$r'"; } || bad "OCR reads '$r', not 'kernel'"

# 3. the text layers
n=$("$L" layers --model "$M" 2>/dev/null | awk '$3 == "cross"' | wc -l)
[ "$n" = 13 ] && ok || bad "layers lists $n text layers, not 13"

# 4. patching every text layer with B's text writes B's word (the same seed and sign otherwise)
all=$("$L" layers --model "$M" 2>/dev/null | awk '$3 == "cross" {print $4}' | paste -sd,)
gen KERNEL "$tmp/p.png" --steps 20 --patch-prompt 'A sign that says "HORROR".' --patch-layers "$all" || bad "patched generate: $(tail -1 "$tmp/gen.err")"
gen HORROR "$tmp/h.png" --steps 20 || bad "generate HORROR: $(tail -1 "$tmp/gen.err")"
rp=$("$L" ocr "$tmp/p.png" 2>/dev/null | cut -f2); rh=$("$L" ocr "$tmp/h.png" 2>/dev/null | cut -f2)
[ "$rp" = horror ] && [ "$rh" = horror ] && ok || bad "patched KERNEL -> HORROR reads '$rp' (HORROR alone: '$rh')"

rm -rf "$tmp"
echo "$p $f"
