#!/usr/bin/env bash
# total.sh — adds up the results files of the given build directories and prints the closing line.
set -u
p=0 f=0
for d in "$@"; do
  [ -f "$d/results" ] || { echo "missing results in $d"; f=$((f+1)); continue; }
  while read -r _ a b; do p=$((p+a)); f=$((f+b)); done < <(awk '{print $1, $(NF-1), $NF}' "$d/results")
done
echo "total: $p passed, $f failed"
[ "$f" = 0 ]
