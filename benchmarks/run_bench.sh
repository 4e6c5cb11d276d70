#!/usr/bin/env bash
# run_bench.sh — `make bench`: GEMM vs OpenBLAS at the model shapes, then attention/conv vs the FMA peak,
# at 1 and 2 threads.  Prints results only; never fails on timing.  Usage: run_bench.sh BUILD_DIR
B=${1:-build}
echo "# locus benchmarks ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, isa=$("$B/locus" info | sed -n 's/^isa: //p'))"
# M N K: square; SD1.5 3x3 conv 320ch at 64x64 (im2col); 3x3 conv 640ch at 32x32; cross-attention scores
# (4096 queries x 77 tokens x head dim 40); attention projections; GEGLU projection; P.V
shapes="1024,1024,1024 4096,320,2880 1024,640,5760 4096,77,40 4096,320,320 1024,2560,320 4096,40,4096"
for t in 1 2; do
  for s in $shapes; do "$B/bench_gemm" ${s//,/ } $t 2>/dev/null || echo "bench_gemm $s $t failed"; done
done
for t in 1 2; do "$B/bench_kernels" $t || echo "bench_kernels $t failed"; done
# SD1.5-sized UNet (one CFG pair at 256x256), VAE decode and SD3-medium MMDiT (CFG pair, 154 tokens), random
# weights; reference on this machine: UNet pair PyTorch CPU + OpenBLAS SkylakeX 1.82 s, stable-diffusion.cpp
# 3.42 s; SD3-medium pair 3.81 s / 8.3 s
for t in 1 2; do "$B/bench_models" $t || echo "bench_models $t failed"; done
# training: SD1.5-sized UNet forward + backward at 256x256 (batch 2 with every parameter's gradient, with and
# without per-block checkpointing; LoRA rank 64 on every cross-attention, batch 2 and batch 1 with
# checkpointing: the paper's LoRA set-up), 2 threads; the ratio is fwd+bwd / inference forward
for m in "full 2" "full-ckpt 2" "lora 2" "lora-ckpt 1"; do "$B/bench_train" 2 $m || echo "bench_train $m failed"; done
exit 0
