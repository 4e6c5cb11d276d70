#!/usr/bin/env bash
# localize_test.sh — `locus localize` / `locus merge` end to end on the tiny golden pipelines:
#   - the unpatched and patched cells reproduce the diffusers goldens (sd15-tiny a/b; sd3-tiny a/b and the
#     K/V patch of transformer_blocks.1) pixel for pixel;
#   - every result file is byte-identical across LOCUS_ISA x threads, between 2 shards + merge and one run,
#     and after a SIGKILL mid-run + --resume (and after a torn last row);
#   - files are complete (one row per cell, summary per layer, valid PNGs) and bad input gives one line.
# Usage: localize_test.sh BUILD_DIR TMPDIR   Prints "N M" (passed failed) on its last line.
set -u
B=$1 tmp=$2
G=tests/golden
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "  FAIL localize: $*"; }
L() { "$B/locus" localize "$@"; }
# result files that must match byte for byte (runs.log records ISA/threads/time and is not compared)
same_results() { diff -r -x runs.log -x report.html -x .lock "$1" "$2" >/dev/null; }  # report.html: machine block (tests/report_test.sh)

printf 'HELLO\nWORLD\nCOFFEE\nOPEN\nSALE, "50%%"\n' >"$tmp/words.txt"  # a word with a comma and quotes exercises CSV/JSON escaping
sd=(--model $G/pipelines/sd15-tiny --words "$tmp/words.txt" --steps 4 --seeds 0,42)

# 1. a full run: files and shapes
if L "${sd[@]}" -o "$tmp/r" >"$tmp/r.out" 2>"$tmp/r.err"; then
  cells=$((5 * 2 * (6 + 2)))
  rows=$(wc -l <"$tmp/r/results.jsonl"); csv=$(($(wc -l <"$tmp/r/results.csv") - 1)); sl=$(($(wc -l <"$tmp/r/summary.csv") - 1))
  imgs=$(ls "$tmp/r/images" | grep -c '^c[0-9]*\.png$')
  if [ "$rows" = $cells ] && [ "$csv" = $cells ] && [ "$sl" = 8 ] && [ "$imgs" = $cells ] && [ -s "$tmp/r/grid.png" ] && [ -s "$tmp/r/ocr_f1.png" ] && [ -s "$tmp/r/heatmap.png" ] &&
     grep -q 'mid_block.attentions.0.transformer_blocks.0.attn2' "$tmp/r/summary.csv" && grep -q '^(prompt A, unpatched)' "$tmp/r.out"; then ok
    echo "  sd15-tiny: $cells cells (5 prompts x 2 seeds x (6 layers + A + B)), summary of 8 rows, grid and bar chart"
  else bad "files: rows $rows csv $csv summary $sl images $imgs"; fi
  # every PNG decodes with the right size
  if "$B/test_sample" --same-pixels "$tmp/r/images/c000000.png" "$tmp/r/images/c000000.png" 2>/dev/null; then ok; else bad "cell image unreadable"; fi
else bad "sd15-tiny run failed: $(tail -1 "$tmp/r.err")"; fi

# 2. golden parity through localize: words HELLO/WORLD swap (the only derangement of two), seed 42, 4 steps
printf 'HELLO\nWORLD\n' >"$tmp/hw.txt"
if L --model $G/pipelines/sd15-tiny --words "$tmp/hw.txt" --steps 4 --seeds 42 --layers mid_block -o "$tmp/g15" >/dev/null 2>"$tmp/g.err" &&
   "$B/test_sample" --same-pixels "$tmp/g15/images/c000000.png" $G/pipelines/sd15-tiny.golden/a.png &&
   "$B/test_sample" --same-pixels "$tmp/g15/images/c000001.png" $G/pipelines/sd15-tiny.golden/b.png; then ok
else bad "sd15-tiny A/B cells differ from the diffusers images $(tail -1 "$tmp/g.err")"; fi
s3=(--model $G/pipelines/sd3-tiny --words "$tmp/hw.txt" --steps 4 --seeds 42 --guidance 7 --max-sequence-length 32)
if L "${s3[@]}" --layers transformer_blocks.1,transformer_blocks.0 -o "$tmp/g3" >/dev/null 2>"$tmp/g.err" &&
   "$B/test_sample" --same-pixels "$tmp/g3/images/c000000.png" $G/pipelines/sd3-tiny.golden/a.png &&
   "$B/test_sample" --same-pixels "$tmp/g3/images/c000001.png" $G/pipelines/sd3-tiny.golden/b.png &&
   "$B/test_sample" --same-pixels "$tmp/g3/images/c000002.png" $G/pipelines/sd3-tiny.golden/kvpatch.png &&
   ! "$B/test_sample" --same-pixels "$tmp/g3/images/c000003.png" $G/pipelines/sd3-tiny.golden/kvpatch.png 2>/dev/null; then ok
  echo "  sd3-tiny: A, B and the transformer_blocks.1 K/V patch equal diffusers' images; transformer_blocks.0 differs"
else bad "sd3-tiny cells differ from the diffusers images $(tail -1 "$tmp/g.err")"; fi

# 3. bit-identical across ISAs and thread counts (SD1.5-style and SD3)
for cfg in "scalar 1" "avx2 3" "avx512 2"; do
  set -- $cfg
  grep -qw "$1" <<<"$("$B/locus" info | sed -n 's/^supported: //p')" || continue
  if LOCUS_ISA=$1 L "${sd[@]}" --threads $2 -o "$tmp/r.$1" >/dev/null 2>&1 && same_results "$tmp/r" "$tmp/r.$1"; then ok
  else bad "results differ with LOCUS_ISA=$1 threads $2"; fi
done
if LOCUS_ISA=scalar L "${s3[@]}" --layers transformer_blocks.1,transformer_blocks.0 --threads 3 -o "$tmp/g3s" >/dev/null 2>&1 && same_results "$tmp/g3" "$tmp/g3s"; then ok
else bad "sd3-tiny results differ between ISAs"; fi

# 4. shards + merge == one run
if L "${sd[@]}" --shard 0/3 -o "$tmp/s0" >/dev/null 2>&1 && L "${sd[@]}" --shard 1/3 -o "$tmp/s1" >/dev/null 2>&1 &&
   L "${sd[@]}" --shard 2/3 -o "$tmp/s2" >/dev/null 2>&1 &&
   "$B/locus" merge -o "$tmp/m" "$tmp/s2" "$tmp/s0" "$tmp/s1" >/dev/null 2>"$tmp/m.err" && same_results "$tmp/r" "$tmp/m"; then ok
  echo "  3 shards merged: byte-identical to the single run ($(wc -l <"$tmp/m/results.jsonl") rows)"
else bad "sharded + merged differs from the single run: $(tail -1 "$tmp/m.err")"; fi
"$B/locus" merge -o "$tmp/m2" "$tmp/s0" "$tmp/s1" >/dev/null 2>"$tmp/err"
if [ $? -ne 0 ] && grep -q "shard 2/3 is missing" "$tmp/err"; then ok; else bad "merge with a missing shard: $(cat "$tmp/err")"; fi

# 5. SIGKILL mid-run, then --resume: the same files as the uninterrupted run
LOCUS_LOCALIZE_TEST_DELAY_MS=150 "$B/locus" localize "${sd[@]}" -o "$tmp/k" >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 200); do [ "$( { wc -l <"$tmp/k/results.jsonl"; } 2>/dev/null || echo 0)" -ge 12 ] && break; sleep 0.05; done
# while it runs, a second run into the same directory is refused
L "${sd[@]}" -o "$tmp/k" --resume >/dev/null 2>"$tmp/err"
if [ $? = 2 ] && grep -q "another localize run is using" "$tmp/err"; then ok; else bad "concurrent run into one directory: $(cat "$tmp/err")"; fi
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
n=$(wc -l <"$tmp/k/results.jsonl")
if [ "$n" -ge 12 ] && [ "$n" -lt 80 ] && [ ! -e "$tmp/k/summary.csv" ]; then ok; else bad "kill did not land mid-run ($n rows)"; fi
if L "${sd[@]}" -o "$tmp/k" --resume >/dev/null 2>"$tmp/k.err" && grep -q "$n cells already finished" "$tmp/k.err" && same_results "$tmp/r" "$tmp/k"; then ok
  echo "  killed with SIGKILL after $n of 80 cells; --resume ran the rest: byte-identical to the uninterrupted run"
else bad "resume after SIGKILL differs: $(tail -1 "$tmp/k.err")"; fi
# a torn last row (as from a power loss) is dropped and its cell re-run
cp -r "$tmp/r" "$tmp/t"; rm "$tmp/t/summary.csv"
head -c $(( $(head -30 "$tmp/r/results.jsonl" | wc -c) + 40 )) "$tmp/r/results.jsonl" >"$tmp/t/results.jsonl"
if L "${sd[@]}" -o "$tmp/t" --resume >/dev/null 2>"$tmp/t.err" && grep -q "dropping an incomplete last row" "$tmp/t.err" && same_results "$tmp/r" "$tmp/t"; then ok
else bad "resume after a torn row: $(tail -1 "$tmp/t.err")"; fi

# 6. bad input: one line, exit 2, nothing written
one_line() { # what, expected, args...
  local what=$1 want=$2; shift 2
  rm -rf "$tmp/bad"
  L "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "$want" "$tmp/err" && [ ! -e "$tmp/bad/results.jsonl" ]; then ok
  else bad "$what (exit $rc): $(head -2 "$tmp/err")"; fi
}
printf 'HELLO\n' >"$tmp/one.txt"
printf 'A sign\nB "x"\n' >"$tmp/noq.txt"
printf 'HELLO\nW\xffRLD\n' >"$tmp/badutf.txt"
one_line "missing words file" "cannot open" --model $G/pipelines/sd15-tiny --words "$tmp/none.txt" -o "$tmp/bad"
one_line "one word" "at least two" --model $G/pipelines/sd15-tiny --words "$tmp/one.txt" -o "$tmp/bad"
one_line "invalid UTF-8 word" "badutf.txt:2: not valid UTF-8" --model $G/pipelines/sd15-tiny --words "$tmp/badutf.txt" -o "$tmp/bad"
one_line "prompt without quotes" "noq.txt:1" --model $G/pipelines/sd15-tiny --prompts "$tmp/noq.txt" -o "$tmp/bad"
one_line "unknown layer" "down_blocks.7" --model $G/pipelines/sd15-tiny --words "$tmp/words.txt" --layers down_blocks.7 -o "$tmp/bad"
one_line "SD3 unknown block" "transformer_blocks.9" --model $G/pipelines/sd3-tiny --words "$tmp/words.txt" --layers transformer_blocks.9 -o "$tmp/bad"
one_line "bad shard" "--shard" "${sd[@]}" --shard 3/3 -o "$tmp/bad"
one_line "bad seeds" "--seeds" "${sd[@]}" --seeds 1,x -o "$tmp/bad"
one_line "template without {}" "{}" "${sd[@]}" --template 'A sign' -o "$tmp/bad"
L "${sd[@]}" -o "$tmp/r" >/dev/null 2>"$tmp/err"
if [ $? = 2 ] && grep -q "already holds results" "$tmp/err"; then ok; else bad "rerun into a results dir without --resume: $(cat "$tmp/err")"; fi
L "${sd[@]}" --steps 3 -o "$tmp/r" --resume >/dev/null 2>"$tmp/err"
if [ $? = 2 ] && grep -q "different settings" "$tmp/err"; then ok; else bad "resume with other settings: $(cat "$tmp/err")"; fi
# --prompts: the text between the quotes is the word
printf 'A sign that says "HELLO".\nA shop sign that reads "WORLD"\n' >"$tmp/prompts.txt"
if L --model $G/pipelines/sd15-tiny --prompts "$tmp/prompts.txt" --steps 2 --layers mid_block -o "$tmp/pr" >/dev/null 2>&1 &&
   grep -q '"word": "WORLD", "prompt": "A shop sign that reads \\"WORLD\\""' "$tmp/pr/config.json"; then ok; else bad "--prompts file"; fi
echo "$p $f"
