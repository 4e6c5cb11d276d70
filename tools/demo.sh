#!/usr/bin/env bash
# demo.sh — `make demo`: the paper's localization experiment on the shipped teaching model zoo/signs-sd.
# Ten words of its vocabulary, each patched layer by layer with another word's text (every text-reading
# attention layer of the UNet), one seed, 20 DDIM steps with CFG 7.5; the pictures and the table go to
# build/demo (summary.csv, heatmap.png, grid.png, ocr_f1.png, report of locus localize).
#   tools/demo.sh [OUT_DIR]    (LOCUS=path/to/locus, MODEL=folder override)
set -euo pipefail
cd "$(dirname "$0")/.."
L=${LOCUS:-build/locus}
M=${MODEL:-zoo/signs-sd}
OUT=${1:-build/demo}
[ -f "$M/unet/diffusion_pytorch_model.safetensors" ] || { echo "demo: $M has no UNet weights (make teaching-model trains them)" >&2; exit 2; }
t0=$(date +%s)
"$L" layers --model "$M"
rm -rf "$OUT"
"$L" localize --model "$M" --words "$M/demo-words.txt" --template 'A sign that says "{}".' --seeds 90000 --steps 20 \
    --guidance 7.5 --layers all -o "$OUT"
echo
echo "demo: per-layer OCR-F1 toward B's word (patching that layer alone with B's text), from $OUT/summary.csv:"
column -s, -t "$OUT/summary.csv" | cut -c1-150
echo "demo: $(( $(date +%s) - t0 )) s; pictures: $OUT/heatmap.png $OUT/grid.png $OUT/ocr_f1.png"
