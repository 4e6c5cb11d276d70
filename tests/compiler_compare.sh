#!/usr/bin/env bash
# compiler_compare.sh — the clang build's kernel workload hashes must equal the gcc build's, for every ISA
# and 1/2 threads, and a clang-built `locus localize` must write the same result files as the gcc-built one.  Usage: compiler_compare.sh GCC_BUILD CLANG_BUILD
set -u
g=$1 c=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
LOCUS_ISA=scalar LOCUS_THREADS=1 "$g/test_kernels" --hash | grep -v '^#' >"$tmp/gcc"
p=0 f=0
for isa in $("$g/locus" info | sed -n "s/^supported: //p"); do
  for th in 1 2; do
    if LOCUS_ISA=$isa LOCUS_THREADS=$th "$c/test_kernels" --hash 2>/dev/null | grep -v '^#' | diff - "$tmp/gcc" >/dev/null; then p=$((p+1))
    else f=$((f+1)); echo "FAIL clang $isa threads=$th differs from gcc scalar"; fi
  done
done
echo "clang vs gcc: $(wc -l <"$tmp/gcc") workload tensors per run"
# gradients of the UNet, VAE, SD3 and SD3.5 golden batches
if ("$c/test_grad" --hash && "$c/test_grad_mmdit" --hash) >"$tmp/cg" 2>/dev/null && ("$g/test_grad" --hash && "$g/test_grad_mmdit" --hash) >"$tmp/gg" 2>/dev/null &&
   diff "$tmp/cg" "$tmp/gg" >/dev/null; then p=$((p+1))
else f=$((f+1)); echo "FAIL clang-built gradients differ from gcc's"; fi
# end to end: the same localize experiment (tokenizers, text encoders, UNet / MM-DiT, schedulers, VAE, OCR and
# metrics) built by each compiler writes the same result files
printf 'HELLO\nWORLD\nCAF\xc3\x89\n' >"$tmp/words.txt"
for m in sd15-tiny sd3-tiny sdxl-tiny; do
  args=(--model tests/golden/pipelines/$m --words "$tmp/words.txt" --steps 2 --seeds 1 --max-sequence-length 32)
  if "$g/locus" localize "${args[@]}" -o "$tmp/g.$m" >/dev/null 2>&1 && "$c/locus" localize "${args[@]}" --threads 2 -o "$tmp/c.$m" >/dev/null 2>&1 &&
     diff -r -x runs.log -x report.html -x .lock "$tmp/g.$m" "$tmp/c.$m" >/dev/null; then p=$((p+1))
  else f=$((f+1)); echo "FAIL clang-built locus localize on $m differs from the gcc-built one"; fi
done
echo "clang clang_compare $p $f" | awk '{print $2, $3, $4}' >"$c/results"
echo "clang_compare: $p passed, $f failed"
[ "$f" = 0 ]
