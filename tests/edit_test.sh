#!/usr/bin/env bash
# edit_test.sh — `locus edit` / `locus detox` end to end on the tiny golden pipelines, and the localize fixes
# that need a model (--prompts B prompts, --pairs, --pairing paper, --quantize, --preset):
#   - edit's A / B / patched cells reproduce the diffusers goldens (sd15-tiny a/b, sd3-tiny K/V patch);
#   - every result file is byte-identical between LOCUS_ISA=scalar with 1 thread and avx512 (or avx2) with 2,
#     between 3 shards + merge and one run, and after a SIGKILL mid-run + --resume (edit and detox);
#   - the Prompt-to-Prompt baseline runs on the UNet and is refused on the MM-DiT; bad input gives one line.
# Usage: edit_test.sh BUILD_DIR TMPDIR   Prints "N M" (passed failed) on its last line.
set -u
B=$1 tmp=$2
G=tests/golden
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "  FAIL edit: $*"; }
same_results() { diff -r -x runs.log -x report.html -x .lock "$1" "$2" >/dev/null; }  # report.html: machine block (tests/report_test.sh)
isa2=avx512; grep -qw avx512 <<<"$("$B/locus" info | sed -n 's/^supported: //p')" || isa2=avx2

printf 'HELLO\nWORLD\nCOFFEE\nOPEN\n' >"$tmp/w.txt"
printf 'DARN\nHECK\nDRAT\n' >"$tmp/listed.txt"     # placeholder "listed" words (tests only)
printf 'SUNNY\nHAPPY\nGARDEN\nRIVER\n' >"$tmp/benign.txt"
ed=(edit --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --steps 4 --seeds 0,7 --layers '#2+#3' --start-step 1 --p2p-tau 0.5)
dx=(detox --model $G/pipelines/sd15-tiny --words "$tmp/listed.txt" --benign "$tmp/benign.txt" --pairing paper --steps 3 --seeds 0,7 --layers '#2' --quantize trunc)
e3=(edit --model $G/pipelines/sd3-tiny --words "$tmp/w.txt" --steps 4 --seeds 0 --guidance 7 --max-sequence-length 32 --preset paper-sd3 --layers transformer_blocks.1)
d3=(detox --model $G/pipelines/sd3-tiny --words "$tmp/listed.txt" --benign "$tmp/benign.txt" --steps 3 --seeds 0 --guidance 7 --max-sequence-length 32 --preset paper-sd3 --layers '#1')

# 1. each command: files complete, the cells named as documented
for name in ed dx e3 d3; do
  declare -n args=$name
  if LOCUS_ISA=scalar "$B/locus" "${args[@]}" --threads 1 -o "$tmp/$name" >"$tmp/$name.out" 2>"$tmp/$name.err"; then
    rows=$(wc -l <"$tmp/$name/results.jsonl"); sl=$(($(wc -l <"$tmp/$name/summary.csv") - 1))
    if [ "$rows" -gt 0 ] && [ "$(ls "$tmp/$name/images" | wc -l)" = "$rows" ] && [ -s "$tmp/$name/grid.png" ]; then ok
      echo "  $name (${args[0]} $(sed -n 's/.*"model": "\(.*\)",/\1/p' "$tmp/$name/config.json" | xargs basename)): $rows cells, $sl cell kinds"
    else bad "$name: files (rows $rows, summary $sl)"; fi
  else bad "$name failed: $(tail -1 "$tmp/$name.err")"; fi
done
grep -q '^baseline:p2p tau=0.5,' "$tmp/ed/summary.csv" && ok || bad "edit on sd15-tiny has no Prompt-to-Prompt row"
! grep -q 'p2p' "$tmp/e3/summary.csv" && ok || bad "edit on sd3-tiny has a Prompt-to-Prompt row"
grep -q '^baseline:negative-prompt,' "$tmp/dx/summary.csv" && head -1 "$tmp/dx/summary.csv" | grep -q ',listed_share$' && ok || bad "detox summary"
grep -q '"start_step": 2' "$tmp/e3/config.json" && grep -q '"quantize": "trunc"' "$tmp/e3/config.json" && grep -q '"mse": "uint8-wrap"' "$tmp/e3/config.json" &&
  grep -q '"patch_halves": "both"' "$tmp/e3/config.json" && ok || bad "paper-sd3 preset settings not in config.json"
grep -q '"word": "DARN".*"word_b": "GARDEN"' "$tmp/dx/config.json" && ok || bad "detox paper pairing: $(grep DARN "$tmp/dx/config.json")"
echo "  tables:"; for name in ed dx; do sed 's/^/    /' "$tmp/$name.out"; done

# 2. golden parity: edit's A, B and patched cells are the diffusers images (HELLO/WORLD, seed 42)
printf 'HELLO\nWORLD\n' >"$tmp/hw.txt"
if "$B/locus" edit --model $G/pipelines/sd15-tiny --words "$tmp/hw.txt" --steps 4 --seeds 42 --layers mid_block -o "$tmp/g15" >/dev/null 2>"$tmp/g.err" &&
   "$B/test_sample" --same-pixels "$tmp/g15/images/c000000.png" $G/pipelines/sd15-tiny.golden/a.png &&
   "$B/test_sample" --same-pixels "$tmp/g15/images/c000001.png" $G/pipelines/sd15-tiny.golden/b.png; then ok
else bad "sd15-tiny edit A/B cells differ from the diffusers images $(tail -1 "$tmp/g.err")"; fi
if "$B/locus" edit --model $G/pipelines/sd3-tiny --words "$tmp/hw.txt" --steps 4 --seeds 42 --guidance 7 --max-sequence-length 32 --layers transformer_blocks.1 -o "$tmp/g3" >/dev/null 2>"$tmp/g.err" &&
   "$B/test_sample" --same-pixels "$tmp/g3/images/c000002.png" $G/pipelines/sd3-tiny.golden/kvpatch.png; then ok
  echo "  golden: edit's cells equal diffusers' A and B (sd15-tiny) and the K/V patch of transformer_blocks.1 (sd3-tiny)"
else bad "sd3-tiny edit patched cell differs from the diffusers K/V patch $(tail -1 "$tmp/g.err")"; fi

# 3. byte-identical across ISA x threads, and 3 shards + merge
for name in ed dx e3 d3; do
  declare -n args=$name
  if LOCUS_ISA=$isa2 "$B/locus" "${args[@]}" --threads 2 -o "$tmp/$name.i" >/dev/null 2>&1 && same_results "$tmp/$name" "$tmp/$name.i"; then ok
  else bad "$name: results differ between scalar/1 thread and $isa2/2 threads"; fi
  for s in 0 1 2; do "$B/locus" "${args[@]}" --shard $s/3 -o "$tmp/$name.s$s" >/dev/null 2>&1 & done; wait
  if "$B/locus" merge -o "$tmp/$name.m" "$tmp/$name.s2" "$tmp/$name.s0" "$tmp/$name.s1" >/dev/null 2>"$tmp/m.err" && same_results "$tmp/$name" "$tmp/$name.m"; then ok
  else bad "$name: 3 shards merged differ from the single run $(tail -1 "$tmp/m.err")"; fi
done
echo "  scalar/1 thread = $isa2/2 threads = 3 shards merged, byte for byte (edit, detox x sd15-tiny, sd3-tiny)"

# 4. SIGKILL mid-run + --resume (edit with its P2P baseline; detox)
for name in ed dx; do
  declare -n args=$name
  LOCUS_LOCALIZE_TEST_DELAY_MS=150 "$B/locus" "${args[@]}" -o "$tmp/$name.k" >/dev/null 2>&1 &
  pid=$!
  for i in $(seq 1 200); do [ "$( { wc -l <"$tmp/$name.k/results.jsonl"; } 2>/dev/null || echo 0)" -ge 6 ] && break; sleep 0.05; done
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  n=$(wc -l <"$tmp/$name.k/results.jsonl"); total=$(wc -l <"$tmp/$name/results.jsonl")
  if [ "$n" -ge 6 ] && [ "$n" -lt "$total" ] && "$B/locus" "${args[@]}" -o "$tmp/$name.k" --resume >/dev/null 2>"$tmp/k.err" && same_results "$tmp/$name" "$tmp/$name.k"; then ok
    echo "  $name: killed after $n of $total cells; --resume: byte-identical"
  else bad "$name: kill ($n of $total rows) + resume differs: $(tail -1 "$tmp/k.err")"; fi
done

# 5. localize fixes through the CLI: --prompts B prompt, --pairs, --pairing paper within files, presets
printf 'A sign that says "HELLO".\nA shop sign that reads "WORLD"\n' >"$tmp/prompts.txt"
if "$B/locus" localize --model $G/pipelines/sd15-tiny --prompts "$tmp/prompts.txt" --steps 2 --layers mid_block -o "$tmp/pr" >/dev/null 2>&1 &&
   grep -q '"word": "WORLD", "prompt": "A shop sign that reads \\"WORLD\\"", "target": 0, "word_b": "HELLO", "prompt_b": "A shop sign that reads \\"HELLO\\""' "$tmp/pr/config.json"; then ok
else bad "--prompts: B's prompt is not A's with B's word: $(grep WORLD "$tmp/pr/config.json")"; fi
printf 'a,b\nHELLO,"SALE, 50%%"\nWORLD,HELLO\n' >"$tmp/pairs.csv"
if "$B/locus" localize --model $G/pipelines/sd15-tiny --pairs "$tmp/pairs.csv" --steps 2 --layers mid_block -o "$tmp/pp" >/dev/null 2>&1 &&
   grep -q '"word": "HELLO".*"target": -1, "word_b": "SALE, 50%", "prompt_b": "A sign that says \\"SALE, 50%\\"."' "$tmp/pp/config.json" &&
   grep -q '"pairing": "pairs"' "$tmp/pp/config.json"; then ok
else bad "--pairs: $(grep HELLO "$tmp/pp/config.json" | head -1)"; fi
# --pairing paper over the committed word files == numpy's pairs (tests/golden/pairing/pairs_paper.csv)
pw=(--words $G/pairing/words_a.txt --words $G/pairing/words_b.txt --words $G/pairing/words_c.txt)
if "$B/locus" localize --model $G/pipelines/sd15-tiny "${pw[@]}" --pairing paper --seeds 0 --steps 1 --layers mid_block --shard 0/200 -o "$tmp/pap" >/dev/null 2>"$tmp/pap.err"; then
  tail -n +2 $G/pairing/pairs_paper.csv | head -3 >"$tmp/want3"
  python3 - "$tmp/pap/config.json" "$G/pairing/pairs_paper.csv" <<'PY' && ok || bad "--pairing paper differs from numpy's pairs"
import csv, json, sys
items = json.load(open(sys.argv[1], encoding="utf-8"))["items"]
got = [(it["word"], items[it["target"]]["word"]) for it in items]
want = [tuple(r) for r in list(csv.reader(open(sys.argv[2], encoding="utf-8")))[1:]]
sys.exit(0 if got == want else 1)
PY
else bad "--pairing paper run: $(tail -1 "$tmp/pap.err")"; fi

# 6. bad input: one line, exit 2
one_line() { # what, expected, args...
  local what=$1 want=$2; shift 2
  rm -rf "$tmp/bad"
  "$B/locus" "$@" -o "$tmp/bad" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "$want" "$tmp/err" && [ ! -e "$tmp/bad/results.jsonl" ]; then ok
  else bad "$what (exit $rc): $(head -2 "$tmp/err")"; fi
}
one_line "edit without layers" "name the layers" edit --model $G/pipelines/sd15-tiny --words "$tmp/w.txt"
one_line "P2P on the MM-DiT" "Prompt-to-Prompt baseline needs cross-attention" edit --model $G/pipelines/sd3-tiny --words "$tmp/w.txt" --layers '#1' --p2p-tau 0.4
one_line "detox without --benign" "--benign" detox --model $G/pipelines/sd15-tiny --words "$tmp/listed.txt" --layers '#1'
printf 'SUNNY\n' >"$tmp/b1.txt"
one_line "too few benign words" "1 benign words for 3" detox --model $G/pipelines/sd15-tiny --words "$tmp/listed.txt" --benign "$tmp/b1.txt" --layers '#1'
one_line "paper layer out of range" "#6: this model has 6" edit --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --layers '#6'
one_line "unknown preset" "--preset paper-sd2" edit --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --preset paper-sd2
one_line "bad --quantize" "--quantize floor" localize --model $G/pipelines/sd15-tiny --words "$tmp/w.txt" --quantize floor
printf 'HELLO,WORLD\n"WORLD,X\n' >"$tmp/badpairs.csv"
one_line "bad pairs file" "badpairs.csv:2" localize --model $G/pipelines/sd15-tiny --pairs "$tmp/badpairs.csv"
echo "$p $f"
