#!/usr/bin/env bash
# neon_compare.sh — run the aarch64 build of test_kernels under qemu-user (NEON and scalar tables, 1 and 2
# threads) and require its workload hashes (forwards and gradients) to equal the x86 build's.  Usage: neon_compare.sh X86_BUILD ARM_BUILD
set -u
x86=$1 arm=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the multiarch arm64 libc (libc6:arm64) as sysroot: the cross toolchain's own libc copy hangs in
# pthread_create under qemu-user 7.2
QEMU="qemu-aarch64 -L /"

hashes() { # BUILD [qemu...]: kernel workload plus the UNet and MMDiT forwards on the golden inputs
  local b=$1; shift
  "$@" "$b/test_kernels" --hash-small | grep -v '^#' && "$@" "$b/test_unet" --hash && "$@" "$b/test_sdxl" --hash && "$@" "$b/test_mmdit" --hash &&
    "$@" "$b/test_grad" --hash && "$@" "$b/test_grad_mmdit" --hash
}
LOCUS_ISA=scalar LOCUS_THREADS=1 hashes "$x86" >"$tmp/x86" || { echo "neon: x86 hash run failed"; exit 1; }
pass=0 fail=0
for isa in neon scalar; do
  for th in 1 2; do
    if ! LOCUS_ISA=$isa LOCUS_THREADS=$th hashes "$arm" $QEMU >"$tmp/arm.$isa.$th" 2>"$tmp/err"; then
      echo "FAIL aarch64 $isa threads=$th: run failed: $(head -3 "$tmp/err")"; fail=$((fail+1)); continue
    fi
    echo "# isa=$isa threads=$th (aarch64, qemu-user)"
    if diff "$tmp/arm.$isa.$th" "$tmp/x86" >"$tmp/diff"; then
      pass=$((pass+1))
    else
      echo "FAIL aarch64 $isa threads=$th differs from x86: $(grep -c '^<' "$tmp/diff") of $(wc -l <"$tmp/x86") tensors"; head -5 "$tmp/diff"
      fail=$((fail+1))
    fi
  done
done
echo "neon: $(wc -l <"$tmp/x86") tensors per run (kernel workload + UNet, SDXL, SD3, SD3.5 forwards + UNet, VAE, SD3, SD3.5 gradients + 3 LoRA training steps) compared with x86 (scalar, 1 thread)"
echo "neon_compare: $pass passed, $fail failed"
[ "$fail" = 0 ]
