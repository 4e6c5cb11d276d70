#!/usr/bin/env bash
# teaching_eval.sh — the text-quality numbers of a teaching model (issue 11), measured with locus's own
# commands: 40 words of its vocabulary and 40 words it never saw, each in `A sign that says "WORD".` with
# seed 90000 and the default steps and guidance; OCR exact match (case-insensitive) and OCR-F1 (the paper's
# bag-of-characters F1) of the unpatched images, read from `locus localize`'s A rows.
#   tools/teaching_eval.sh [MODEL (zoo/signs-sd)] [OUT (build/teaching-eval)] [localize options, e.g. --width 128 --height 32
#   for an SD3 folder, whose default size is square]
set -euo pipefail
cd "$(dirname "$0")/.."
L=${LOCUS:-build/locus}
M=${1:-zoo/signs-sd}
OUT=${2:-build/teaching-eval}
shift $(( $# < 2 ? $# : 2 ))
mkdir -p "$OUT"
head -40 "$M/words.txt" | tr a-z A-Z >"$OUT/vocabulary40.txt"
grep -vxF -f "$M/words.txt" zoo/words/words-1000-len3-6.txt | awk 'NR%24==5' | head -40 | tr a-z A-Z >"$OUT/unseen40.txt"
for set in vocabulary40 unseen40; do
  rm -rf "$OUT/$set"
  "$L" localize --model "$M" --words "$OUT/$set.txt" --template 'A sign that says "{}".' --seeds 90000 \
      --layers '#0' -o "$OUT/$set" "$@" >/dev/null
  # the unpatched row's label "(prompt A, unpatched)" holds a comma inside quotes: its fields sit one further right
  awk -F, -v set="$set" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i + 1; next }
       /^"\(prompt A,/ { printf "%-13s %d images: OCR exact %.1f%%, OCR-F1 %.3f (precision %.3f, recall %.3f)\n", set, $c["n"],
                   100 * $c["exact_a"], $c["ocr_f1_a"], $c["precision_a"], $c["recall_a"]; found = 1 }
       END { if (!found) { print "teaching_eval: no unpatched row in " FILENAME > "/dev/stderr"; exit 1 } }' "$OUT/$set/summary.csv"
done
