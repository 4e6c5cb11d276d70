#!/usr/bin/env bash
# run_tests.sh — runs every test program of a build, the cross-process determinism check (LOCUS_ISA x
# LOCUS_THREADS, hashes of a fixed kernel workload) and the CLI error tests.  Usage: run_tests.sh BUILD_DIR
# Prints one "suite: N passed, M failed" line per suite and appends them to BUILD_DIR/results.
set -u
B=${1:-build}
: >"$B/results"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
overall=0

record() { # suite passed failed
  echo "$1: $2 passed, $3 failed"
  echo "$1 $2 $3" >>"$B/results"
  [ "$3" = 0 ] || overall=1
}

# 1. test programs (each prints its own summary line last)
for t in "$B"/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  start=$(date +%s)
  "$t" >"$tmp/$name.out" 2>&1
  rc=$?
  grep -v '^FAIL' "$tmp/$name.out" | grep -v ': [0-9]* passed, [0-9]* failed$' | sed 's/^/  /' | tail -5
  grep '^FAIL' "$tmp/$name.out" | head -20
  line=$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$tmp/$name.out" | tail -1)
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
  [ -n "$line" ] || { p=0; f=1; echo "  $name printed no summary (exit $rc)"; tail -5 "$tmp/$name.out"; }
  [ $rc = 0 ] || [ "$f" != 0 ] || f=1
  record "$name ($(( $(date +%s) - start ))s)" "$p" "$f"
done

# 2. determinism across processes: every supported ISA x 1/2/3 threads gives the same workload hashes
p=0 f=0
isas=$("$B/locus" info | sed -n 's/^supported: //p')
ref=""
for isa in $isas; do
  for th in 1 2 3; do
    if ! LOCUS_ISA=$isa LOCUS_THREADS=$th "$B/test_kernels" --hash >"$tmp/h.$isa.$th"; then f=$((f+1)); continue; fi
    grep -q "^# isa=$isa threads=$th" "$tmp/h.$isa.$th" || { echo "  LOCUS_ISA=$isa LOCUS_THREADS=$th not honoured"; f=$((f+1)); continue; }
    if [ -z "$ref" ]; then ref="$tmp/h.$isa.$th"; p=$((p+1)); continue; fi
    if diff <(grep -v '^#' "$ref") <(grep -v '^#' "$tmp/h.$isa.$th") >/dev/null; then p=$((p+1))
    else f=$((f+1)); echo "  FAIL hashes differ: $isa threads=$th vs $(head -1 "$ref")"; fi
  done
done
echo "  ($(grep -vc '^#' "$ref") tensors hashed per run; ISAs: $isas)"
record "determinism" $p $f

# 3. CLI: clear one-line errors and non-zero exit on bad input
p=0 f=0
cli_err() { # description, expected substring, command...
  local what=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "$want" "$tmp/err" && [ ! -s "$tmp/out" ]; then p=$((p+1))
  else f=$((f+1)); echo "  FAIL cli: $what (exit $rc): $(head -2 "$tmp/err")"; fi
}
cli_err "unknown command" "unknown command" "$B/locus" frobnicate
cli_err "bad LOCUS_ISA" "unknown ISA" env LOCUS_ISA=sse9 "$B/locus" info
cli_err "tensors without file" "usage" "$B/locus" tensors
cli_err "missing file" "cannot open" "$B/locus" tensors /nonexistent.safetensors
"$B/test_core" --malformed "$tmp"
for m in "$tmp"/*.safetensors; do cli_err "malformed $(basename "$m")" "$(basename "$m")" "$B/locus" tensors "$m"; done
if "$B/locus" info >/dev/null && "$B/locus" tensors tests/golden/ldm/golden_sample.safetensors | tail -1 | grep -q 'tensors'; then p=$((p+1)); else f=$((f+1)); echo "  FAIL cli: info/tensors on good input"; fi
record "cli" $p $f

exit $overall
