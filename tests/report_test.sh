#!/usr/bin/env bash
# report_test.sh — report.html of localize / edit / merge results directories.
#   bash tests/report_test.sh BUILD_DIR TMPDIR     (prints what fails, then "P F" last; called by run_tests.sh)
# 1. Self-contained: no URL outside the file (no http:, https:, // sources or links), every <img> a base64 PNG
#    data URI, the inlined heatmap.png equal to the file byte for byte.
# 2. The same bytes outside the machine block (<!-- machine --> ... <!-- /machine -->) for scalar / 1 thread,
#    the best ISA / 2 threads, 2 shards merged, and a run resumed after losing rows.
# 3. In headless Chromium (Debian's chromium; skipped with a note when it is not installed): a screenshot that
#    is not blank (many colours, most of a row not white), and the DOM after the page's own #selftest (sort the
#    summary by a column both ways, open a cell's image) with the expected rows: one summary row per cell kind,
#    one cell row per prompt x seed.
set -u
B=$1 T=$2
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "  FAIL report: $*"; }
G=tests/golden/pipelines/sd15-tiny
printf 'HELLO\nWORLD\nSTOP\n' >"$T/w.txt"
lz=(--model $G --words "$T/w.txt" --seeds 0,1 --steps 1 --layers mid_block,up_blocks.1)
L() { "$B/locus" localize "${lz[@]}" "$@" >/dev/null 2>>"$T/lz.err"; }
LOCUS_ISA=scalar L --threads 1 -o "$T/r1"; L --threads 2 -o "$T/r2"
L --shard 0/2 -o "$T/s0"; L --shard 1/2 -o "$T/s1"; "$B/locus" merge -o "$T/m" "$T/s0" "$T/s1" >/dev/null 2>>"$T/lz.err"
cp -r "$T/r2" "$T/rr"; head -n -3 "$T/r2/results.jsonl" >"$T/rr/results.jsonl"; rm "$T/rr/report.html"; L --resume -o "$T/rr"
printf 'HELLO\nWORLD\nSTOP\n' >"$T/e.txt"
"$B/locus" edit --model $G --words "$T/e.txt" --seeds 0 --steps 2 --layers '#2' --start-step 1 -o "$T/e" >/dev/null 2>>"$T/lz.err"
for d in r1 r2 m rr e; do [ -s "$T/$d/report.html" ] && ok || bad "$d: no report.html ($(tail -1 "$T/lz.err"))"; done
R=$T/r1/report.html

# 1. self-contained
ext=$(grep -oE '(src|href)="(https?:|//|ftp:)[^"]*|https?://[^ "<]*' "$R" | head -3)
[ -z "$ext" ] && ok || bad "external URLs: $ext"
imgs=$(grep -o '<img [^>]*src="[^"]\{0,30\}' "$R" | wc -l); data=$(grep -o '<img [^>]*src="data:image/png;base64,' "$R" | wc -l)
[ "$imgs" -gt 0 ] && [ "$imgs" = "$data" ] && ok || bad "$data of $imgs images are inlined PNGs"
[ "$data" = $((3 + 24)) ] && ok || bad "expected 3 figures + 24 cell images inlined, got $data"
sed -n 's/.*alt="heatmap.png" src="data:image\/png;base64,\([^"]*\)".*/\1/p' "$R" | base64 -d 2>/dev/null | cmp -s - "$T/r1/heatmap.png" && ok ||
  bad "the inlined heatmap is not heatmap.png"

# 2. the same bytes outside the machine block
strip() { sed '/^<!-- machine -->$/,/^<!-- \/machine -->$/d' "$1"; }
grep -q 'isa scalar, threads 1' "$R" && [ "$(grep -c '^<!-- machine -->$' "$R")" = 1 ] && ok || bad "no machine line in r1's report"
for d in r2 m rr; do cmp -s <(strip "$R") <(strip "$T/$d/report.html") && ok || bad "report.html of $d differs from r1's outside the machine block"; done

# 3. Chromium
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
  echo "  SKIP report: chromium is not installed (apt-get install chromium; .ci/deps.sh check-report): screenshot and DOM checks not run"
  echo "$p $f"; exit 0
fi
cr() { timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$T/chrome" --window-size=1200,1600 "$@" 2>>"$T/chrome.err"; }
cr --screenshot="$T/shot.png" "file://$(realpath "$R")" >/dev/null
python3 - "$T/shot.png" >"$T/shot.txt" 2>&1 <<'PY'
# decode the screenshot PNG (8-bit RGB/RGBA, non-interlaced, as Chromium writes) with the standard library;
# print the number of distinct colours and the share of non-white pixels
import struct, sys, zlib
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat = 8, b''
while pos < len(d):
    n, t = struct.unpack('>I4s', d[pos:pos + 8]); c = d[pos + 8:pos + 8 + n]; pos += 12 + n
    if t == b'IHDR': w, h, depth, ctype, _, _, lace = struct.unpack('>IIBBBBB', c)
    elif t == b'IDAT': idat += c
assert depth == 8 and ctype in (2, 6) and lace == 0
bpp = 3 if ctype == 2 else 4
raw, stride, prev, colours, nonwhite = zlib.decompress(idat), w * bpp, bytearray(w * bpp), set(), 0
for y in range(h):
    ft, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = row[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if ft == 1: row[i] = (row[i] + a) & 255
        elif ft == 2: row[i] = (row[i] + b) & 255
        elif ft == 3: row[i] = (row[i] + (a + b) // 2) & 255
        elif ft == 4:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        px = bytes(row[x:x + 3]); colours.add(px); nonwhite += px != b'\xff\xff\xff'
    prev = row
print(len(colours), round(nonwhite / (w * h), 4))
PY
read -r ncol share <"$T/shot.txt"
if [ "${ncol:-0}" -gt 200 ] 2>/dev/null && awk -v s="${share:-0}" 'BEGIN { exit !(s > 0.05) }'; then ok; echo "  screenshot: $ncol colours, $share of the pixels not white"
else bad "blank or unreadable screenshot: $(head -2 "$T/shot.txt") $(tail -1 "$T/chrome.err")"; fi
cr --dump-dom "file://$(realpath "$R")#selftest" >"$T/dom.html"
grep -q '<p id="selftest">selftest ok</p>' "$T/dom.html" && ok || bad "the page's selftest (sort, zoom): $(grep -o '<p id="selftest">[^<]*' "$T/dom.html")"
rows_of() { sed -n "/<table[^>]*id=\"$1\"/,/<\/table>/p" "$2" | grep -o '<tr>' | wc -l; }
[ "$(rows_of summary "$T/dom.html")" = $((4 + 1)) ] && ok || bad "summary table: $(rows_of summary "$T/dom.html") rows with the header (want 5)"
[ "$(rows_of cells "$T/dom.html")" = $((6 + 1)) ] && ok || bad "cells table: $(rows_of cells "$T/dom.html") rows with the header (want 7)"
cr --dump-dom "file://$(realpath "$T/e/report.html")#selftest" >"$T/edom.html"
grep -q '<p id="selftest">selftest ok</p>' "$T/edom.html" && [ "$(rows_of summary "$T/edom.html")" = $((4 + 1)) ] && ok ||
  bad "edit's report: $(grep -o '<p id="selftest">[^<]*' "$T/edom.html"), $(rows_of summary "$T/edom.html") summary rows (want 5: A, B, #2, p2p)"
echo "$p $f"
