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
# the three layers that move the text most on their own (the same top three for seeds 90000 and 90001:
# zoo/signs-sd/TRAINING.md), patched together
D=down_blocks.1.attentions.0.transformer_blocks.0
G="$D.attn1+$D.attn2+up_blocks.1.attentions.0.transformer_blocks.0.attn2"
"$L" localize --model "$M" --words "$M/demo-words.txt" --template 'A sign that says "{}".' --seeds 90000 --steps 20 \
    --guidance 7.5 --layers "$G" -o "$OUT/group3" >/dev/null
table() { # summary.csv: the quoted first field may hold commas
  awk -F'"' '{ if (NF >= 3) { name = $2; rest = substr($0, length($2) + 4) } else { name = substr($0, 1, index($0, ",") - 1); rest = substr($0, index($0, ",") + 1) }
              n = split(rest, v, ","); if (NR == 1) for (i = 1; i <= n; i++) c[v[i]] = i
              else printf "%-62s %8.3f %8.3f %8.3f\n", substr(name, 1, 62), v[c["ocr_f1_a"]], v[c["ocr_f1_b"]], v[c["ssim"]] }' "$1"
}
echo
echo "demo: each layer patched alone with B's text (OCR-F1 toward A's word and toward B's, SSIM against A's image):"
printf '%-62s %8s %8s %8s\n' layer F1-to-A F1-to-B SSIM
table "$OUT/summary.csv"
echo "demo: the three strongest layers together ($OUT/group3):"
table "$OUT/group3/summary.csv" | tail -1 | sed 's/^.\{62\}/down_blocks.1 attn1 + attn2, up_blocks.1.attentions.0 attn2          /'
echo "demo: $(( $(date +%s) - t0 )) s; pictures: $OUT/heatmap.png $OUT/grid.png $OUT/ocr_f1.png $OUT/group3/grid.png"
