#!/usr/bin/env bash
# python_test.sh — liblocus.so and the Python module (python/locus) against the CLI:
#   - the shared library exports exactly the functions of include/locus.h, the header compiles on its own and a
#     C program links against the .so;
#   - under LOCUS_ISA=scalar and the default ISA, the module's image equals the pixels of `locus generate -o x.png`
#     and its cached / dumped tensors equal `--cache` / `--dump` files byte for byte (sd15-tiny with patching,
#     an intervention and cached attention probabilities; sd3-tiny with MM-DiT K/V patching); the two ISAs
#     give the same bits;
#   - m.layers() equals `locus layers --json`; bad input raises LocusError with the library's message;
#     arrays outlive their Result (zero-copy views keep it alive); locus.localize returns the sweep's rows;
#     python/examples/localize_demo.py writes its heatmap.
# Skipped (with the reason) without Debian's /usr/bin/python3 + numpy, or for a sanitizer build (an ASan
# library cannot be loaded into python).  Usage: python_test.sh BUILD_DIR TMPDIR   Last line: "N M" (passed failed).
set -u
B=$1 tmp=$2
PY=/usr/bin/python3
G=tests/golden/pipelines
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "  FAIL python: $*"; }

if ! [ -x $PY ] || ! $PY -c 'import numpy' 2>/dev/null; then
  echo "  python: skipped: $PY with numpy not found (Debian: apt-get install python3-numpy)"; echo "0 0"; exit 0; fi
if ! [ -e "$B/liblocus.so" ]; then bad "$B/liblocus.so was not built"; echo "$p $f"; exit 0; fi
if ldd "$B/liblocus.so" | grep -q 'libasan\|libubsan\|libtsan'; then
  echo "  python: skipped for this sanitizer build ($B): the normal build runs it"; echo "0 0"; exit 0; fi

# 1. the library: exports = the header's functions; soname; the header alone compiles; a C program links
nm -D --defined-only "$B/liblocus.so" | awk '$2 == "T" {sub(/@.*/, "", $3); print $3}' | sort >"$tmp/exported"
grep -o '^LOCUS_API [^(]*(' include/locus.h | sed -E 's/.*[ *]([a-z_0-9]+)\($/\1/' | sort >"$tmp/declared"
if [ -s "$tmp/declared" ] && diff "$tmp/declared" "$tmp/exported" >"$tmp/sym.diff"; then ok
else bad "exported symbols differ from include/locus.h: $(head -5 "$tmp/sym.diff" | tr '\n' ' ')"; fi
if readelf -d "$B/liblocus.so" | grep -q 'SONAME.*\[liblocus\.so\.0\]' && [ "$(readlink "$B/liblocus.so")" = liblocus.so.0 ]; then ok
else bad "soname / symlinks"; fi
cat >"$tmp/hello.c" <<'EOF'
#include "locus.h"
#include <stdio.h>
int main(int argc, char **argv) {
    locus_model *m = NULL;
    if (locus_model_open(argv[1], &m) != LOCUS_OK) { printf("error: %s\n", locus_last_error()); return 1; }
    locus_model_info in;
    locus_model_get_info(m, &in, sizeof in);
    printf("%s %s %d\n", locus_version(), in.family, locus_model_layer_count(m));
    locus_model_close(m);
    return 0;
}
EOF
if cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c include/locus.h &&
   cc -std=c99 -Iinclude "$tmp/hello.c" -L"$B" -llocus -o "$tmp/hello" &&
   [ "$(LD_LIBRARY_PATH="$B" "$tmp/hello" $G/sd15-tiny)" = "0.1.0 sd 12" ] &&
   [ "$(LD_LIBRARY_PATH="$B" "$tmp/hello" /nonexistent)" = "error: /nonexistent: no such model folder" ]; then ok
else bad "a C program against liblocus.so"; fi

# the header's status codes are the library's (core/error.h): the same names and values
codes='printf("%d %d %d %d %d %d %d %d %d\n", LOCUS_OK, LOCUS_E_IO, LOCUS_E_FORMAT, LOCUS_E_DTYPE, LOCUS_E_SHAPE, LOCUS_E_NOTFOUND, LOCUS_E_ARG, LOCUS_E_NOMEM, LOCUS_E_UNSUPPORTED);'
printf '#include <stdio.h>\n#include "%s"\nint main(void) { %s return 0; }\n' "$PWD/include/locus.h" "$codes" >"$tmp/c1.c"
printf '#include <stdio.h>\n#include "%s"\nint main(void) { %s return 0; }\n' "$PWD/core/error.h" "$codes" >"$tmp/c2.c"
if cc "$tmp/c1.c" -o "$tmp/c1" && cc "$tmp/c2.c" -o "$tmp/c2" && [ "$("$tmp/c1")" = "$("$tmp/c2")" ]; then ok
else bad "status codes of include/locus.h differ from core/error.h"; fi

# 2. the module against the CLI, byte for byte, under two ISAs
H='A sign that says "HELLO".' W='A sign that says "WORLD".'
IV='up_blocks.1.attentions.0.transformer_blocks.0.attn2=scale:0.5'
isas="scalar default"
for isa in $isas; do
  envs=(); [ $isa = default ] || envs=(LOCUS_ISA=$isa)
  env "${envs[@]}" "$B/locus" generate --model $G/sd15-tiny --prompt "$H" --patch-prompt "$W" --patch-layers up_blocks.1 --start-step 1 \
      --intervene "$IV" --seed 7 --steps 4 --cache "$tmp/sd.$isa.cache" --cache-points '*.attn2.probs,mid_block' \
      -o "$tmp/sd.$isa.png" --dump "$tmp/sd.$isa.dump" 2>"$tmp/gen.err" || bad "CLI sd15 ($isa): $(tail -1 "$tmp/gen.err")"
  env "${envs[@]}" "$B/locus" generate --model $G/sd3-tiny --max-sequence-length 32 --prompt "$H" --patch-prompt "$W" \
      --patch-layers transformer_blocks.1 --seed 42 --steps 3 --guidance 7 --cache "$tmp/s3.$isa.cache" \
      --cache-points 'transformer_blocks.1.attn.add_k' -o "$tmp/s3.$isa.png" --dump "$tmp/s3.$isa.dump" 2>"$tmp/gen.err" ||
      bad "CLI sd3 ($isa): $(tail -1 "$tmp/gen.err")"
done
# a LoRA for sd15-tiny (2 training steps on two images locus makes), then generate --lora / SDXL size options
mkdir -p "$tmp/ld"
for i in 0 1; do "$B/locus" generate --model $G/sd15-tiny --prompt "sign $i" --seed $i --steps 2 -o "$tmp/ld/$i.png" 2>/dev/null; done
printf '{"file_name": "0.png", "text": "OPEN"}\n{"file_name": "1.png", "text": "STOP"}\n' >"$tmp/ld/metadata.jsonl"
"$B/locus" train-lora --model $G/sd15-tiny --data "$tmp/ld" --lora-layers 'up_blocks.1.attentions.*.transformer_blocks.*.attn2' --rank 2 --alpha 2 \
    --steps 2 --seed 1 --lr 0.05 -o "$tmp/lora.safetensors" >/dev/null 2>"$tmp/lt.err" || bad "train-lora: $(tail -1 "$tmp/lt.err")"
for isa in $isas; do
  envs=(); [ $isa = default ] || envs=(LOCUS_ISA=$isa)
  env "${envs[@]}" "$B/locus" generate --model $G/sd15-tiny --prompt "$H" --seed 3 --steps 3 --lora "$tmp/lora.safetensors:0.8" \
      -o "$tmp/lo.$isa.png" --dump "$tmp/lo.$isa.dump" 2>"$tmp/gen.err" || bad "CLI lora ($isa): $(tail -1 "$tmp/gen.err")"
  env "${envs[@]}" "$B/locus" generate --model $G/sdxl-tiny --prompt "$H" --seed 42 --steps 3 --guidance 5 --width 64 --height 32 \
      --original-size 64,128 --crops-coords-top-left 4,8 -o "$tmp/xl.$isa.png" --dump "$tmp/xl.$isa.dump" 2>"$tmp/gen.err" ||
      bad "CLI sdxl ($isa): $(tail -1 "$tmp/gen.err")"
done
cat >"$tmp/check.py" <<'EOF'
import os, sys, zlib, numpy as np
import locus
tmp, isa, G = sys.argv[1], sys.argv[2], "tests/golden/pipelines"
H, W = 'A sign that says "HELLO".', 'A sign that says "WORLD".'

def read_png(path):
    """8-bit RGB PNG -> uint8 [H,W,3] (zlib + the five filters; enough for locus's own files)."""
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat = 8, b""
    while i < len(b):
        n = int.from_bytes(b[i:i + 4], "big"); typ = b[i + 4:i + 8]; data = b[i + 8:i + 8 + n]; i += 12 + n
        if typ == b"IHDR":
            w, h = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
            assert data[8] == 8 and data[9] == 2 and data[12] == 0, "8-bit RGB, not interlaced"
        elif typ == b"IDAT":
            idat += data
    raw, stride, bpp = zlib.decompress(idat), w * 3, 3
    out, prev = bytearray(h * stride), bytearray(stride)
    for y in range(h):
        ft, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0; up = prev[x]; c = prev[x - bpp] if x >= bpp else 0
            if ft == 1: line[x] = (line[x] + a) & 255
            elif ft == 2: line[x] = (line[x] + up) & 255
            elif ft == 3: line[x] = (line[x] + (a + up) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(up - c), abs(a - c), abs(a + up - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
        out[y * stride:(y + 1) * stride] = line; prev = line
    return np.frombuffer(bytes(out), np.uint8).reshape(h, w, 3)

def same(got, want, what):
    keys = [k for k in want if k != "__metadata__"]
    bad = [k for k in keys if k not in got or got[k].shape != want[k].shape or got[k].tobytes() != want[k].tobytes()]
    extra = sorted(set(got) - set(keys))
    print(("ok" if not bad and not extra else "FAIL") + " %s: %d tensors byte-equal%s" % (what, len(keys) - len(bad), (", differ: %s" % bad[:3]) if bad else "")
          + ((", extra: %s" % extra[:3]) if extra else ""))

m = locus.Model(G + "/sd15-tiny")
r = m.generate(H, seed=7, steps=4, patch=dict(prompt=W, layers=["up_blocks.1"], start_step=1),
               intervene="up_blocks.1.attentions.0.transformer_blocks.0.attn2=scale:0.5", cache=["*.attn2.probs", "mid_block"], dump=True)
print(("ok" if np.array_equal(r.image, read_png("%s/sd.%s.png" % (tmp, isa))) else "FAIL") + " sd15 image equals the CLI's PNG pixels")
same(r.cache, locus.read_safetensors("%s/sd.%s.cache" % (tmp, isa)), "sd15 cache vs --cache")
same(r.dump, locus.read_safetensors("%s/sd.%s.dump" % (tmp, isa)), "sd15 dump vs --dump")
np.save("%s/py.%s.npy" % (tmp, isa), r.cache["step3.mid_block"]); np.save("%s/pyimg.%s.npy" % (tmp, isa), r.image)
m3 = locus.Model(G + "/sd3-tiny")
r3 = m3.generate(H, seed=42, steps=3, guidance=7, max_sequence_length=32, patch=dict(prompt=W, layers="transformer_blocks.1"),
                 cache="transformer_blocks.1.attn.add_k", dump=True)
print(("ok" if np.array_equal(r3.image, read_png("%s/s3.%s.png" % (tmp, isa))) else "FAIL") + " sd3 image equals the CLI's PNG pixels")
same(r3.cache, locus.read_safetensors("%s/s3.%s.cache" % (tmp, isa)), "sd3 cache vs --cache")
same(r3.dump, locus.read_safetensors("%s/s3.%s.dump" % (tmp, isa)), "sd3 dump vs --dump")
ml = locus.Model(G + "/sd15-tiny")
ml.add_lora(tmp + "/lora.safetensors", 0.8)
rl = ml.generate(H, seed=3, steps=3, dump=True)
print(("ok" if np.array_equal(rl.image, read_png("%s/lo.%s.png" % (tmp, isa))) and not np.array_equal(rl.image, m.generate(H, seed=3, steps=3).image)
       else "FAIL") + " add_lora image equals the CLI's --lora PNG (and differs from the plain model's)")
same(rl.dump, locus.read_safetensors("%s/lo.%s.dump" % (tmp, isa)), "lora dump vs --dump")
mx = locus.Model(G + "/sdxl-tiny")
rx = mx.generate(H, seed=42, steps=3, guidance=5, width=64, height=32, original_size=(64, 128), crops_coords_top_left=(4, 8), dump=True)
print(("ok" if np.array_equal(rx.image, read_png("%s/xl.%s.png" % (tmp, isa))) else "FAIL") + " sdxl size conditioning image equals the CLI's PNG")
same(rx.dump, locus.read_safetensors("%s/xl.%s.dump" % (tmp, isa)), "sdxl dump vs --dump")
EOF
for isa in $isas; do
  envs=(); [ $isa = default ] || envs=(LOCUS_ISA=$isa)
  env "${envs[@]}" PYTHONPATH=python LOCUS_LIB="$B" LOCUS_BIN="$B/locus" $PY "$tmp/check.py" "$tmp" $isa >"$tmp/check.$isa.out" 2>&1 ||
    echo "FAIL check.py ($isa) exited: $(tail -1 "$tmp/check.$isa.out")" >>"$tmp/check.$isa.out"
  while IFS= read -r line; do
    case "$line" in ok*) ok;; FAIL*) bad "$isa: ${line#FAIL }";; esac
  done <"$tmp/check.$isa.out"
done
echo "  ($(grep -c '^ok' "$tmp/check.scalar.out") checks per ISA: $(grep '^ok' "$tmp/check.scalar.out" | sed 's/^ok //' | cut -d: -f1 | tr '\n' ';' | sed 's/;$//'))"
if cmp -s "$tmp/py.scalar.npy" "$tmp/py.default.npy" && cmp -s "$tmp/pyimg.scalar.npy" "$tmp/pyimg.default.npy"; then ok
else bad "the module's image / cached mid_block differ between scalar and the default ISA"; fi

# 3. layers, errors, lifetimes, localize, the example
cat >"$tmp/misc.py" <<'EOF'
import gc, json, subprocess, sys, weakref, numpy as np
import locus
tmp, B, G = sys.argv[1], sys.argv[2], "tests/golden/pipelines"
m = locus.Model(G + "/sd15-tiny")
cli = json.loads(subprocess.run([B + "/locus", "layers", "--model", G + "/sd15-tiny", "--json"], capture_output=True, text=True).stdout)
mine = [{k: v for k, v in l.items() if k != "site"} for l in m.layers()]
for a, b in zip(mine, cli["layers"]):
    b["share_percent"] = round(b["share_percent"], 6); a["share_percent"] = round(a["share_percent"], 6)
print(("ok" if mine == cli["layers"] and m.info["denoiser_params"] == cli["denoiser_params"] else "FAIL") + " layers() equals locus layers --json")
def err(fn, code, text, what):
    try:
        fn(); print("FAIL %s: no error" % what)
    except locus.LocusError as e:
        print(("ok" if e.code == code and text in str(e) else "FAIL") + " %s -> %s: %s" % (what, e.code, e))
err(lambda: locus.Model("/nonexistent/folder"), "io", "/nonexistent/folder", "missing folder")
err(lambda: m.generate("x", steps=2, patch=dict(prompt="y", layers="up_blocks.7")), "arg", "up_blocks.7", "bad layer name")
err(lambda: m.generate("x", steps=2, cache="no.such.point"), "arg", "matched no hook point", "cache pattern matching nothing")
err(lambda: m.generate("x", steps=0), "arg", "steps 0", "steps 0")
err(lambda: m.generate("x", steps=2, width=36, height=32), "arg", "multiples of 8", "bad size")
err(lambda: m.generate("x", steps=2, intervene="conv_out=frobnicate"), "arg", "frobnicate", "unknown intervention")
r = m.generate("A sign", seed=1, steps=2, cache="mid_block")
img, c, copy = r.image, r.cache["step1.mid_block"], (r.image.copy(), r.cache["step1.mid_block"].copy())
owner = weakref.ref(img.base._owner)  # the C result's handle
del r; gc.collect()
junk = [m.generate("other", seed=s, steps=2).image.copy() for s in range(3)]  # would reuse the memory had it been freed
alive = owner() is not None and owner().ptr is not None and np.array_equal(img, copy[0]) and np.array_equal(c, copy[1])
del img; gc.collect()
alive2 = owner() is not None  # c still refers to it
del c; gc.collect()
print(("ok" if alive and alive2 and owner() is None else "FAIL %s %s %s" % (alive, alive2, owner())) +
      " arrays outlive their Result (zero-copy views keep it alive) and free it when the last one goes")
e, u = m.encode('A sign that says "HELLO".'), m.encode(None)
ra = m.generate('A sign that says "HELLO".', seed=42, steps=3)
rb = m.generate(prompt_embeds=dict(cond=e["cond"], uncond=u["cond"]), seed=42, steps=3)
rc = m.generate(prompt_embeds=dict(cond=e["cond"] * 1.5, uncond=u["cond"]), seed=42, steps=3)
print(("ok" if np.array_equal(ra.image, rb.image) and not np.array_equal(ra.image, rc.image) else "FAIL") + " generate from encode()'s embeddings = from the prompt")
# activation patching from the notebook: A's cached conv_out, written with write_safetensors, replaces B's
ra = m.generate('A sign that says "HELLO".', seed=5, steps=3, cache="conv_out")
locus.write_safetensors(tmp + "/rep.st", ra.cache)
rb = m.generate('A sign that says "WORLD".', seed=5, steps=3)
rr = m.generate('A sign that says "WORLD".', seed=5, steps=3, intervene="conv_out=replace:" + tmp + "/rep.st")
back = locus.read_safetensors(tmp + "/rep.st")
print(("ok" if np.array_equal(rr.image, ra.image) and not np.array_equal(rb.image, ra.image) and
       all(back[k].tobytes() == v.tobytes() for k, v in ra.cache.items()) and len(back) == len(ra.cache) == 3 else "FAIL") +
      " write_safetensors + intervene replace: B's run with A's conv_out gives A's image")
ra.save(tmp + "/ra.png")
rc = subprocess.run([B + "/test_sample", "--same-pixels", tmp + "/ra.png", tmp + "/ra_cli.png"], capture_output=True, text=True)
print(("ok" if rc.returncode == 0 and ra._repr_png_()[:4] == b"\x89PNG" else "FAIL " + rc.stdout + rc.stderr) +
      " Result.save writes a PNG with the CLI's pixels")
steps = []
m.generate("A sign", steps=3, progress=lambda s, n: steps.append((s, n)))
print(("ok" if steps == [(0, 3), (1, 3), (2, 3)] else "FAIL %s" % steps) + " progress callback")
rows = locus.localize(m, words=["HELLO", "WORLD", "STOP"], seeds=[0], steps=2, layers=["up_blocks.1", "mid_block"], out=tmp + "/loc")
good = len(rows) == 3 * (2 + 2) and rows[0]["layer"] == "(prompt A, unpatched)" and {"word_a", "word_b", "ssim", "image"} <= set(rows[0]) \
    and [s["layer"] for s in rows.summary][2:] == ["up_blocks.1", "mid_block"] and rows.config
print(("ok" if good else "FAIL %d rows" % len(rows)) + " localize returns the sweep's rows")
err(lambda: locus.localize(m, words=["A", "B"], layers="up_blocks.7", steps=2, out=tmp + "/loc2"), "arg", "up_blocks.7", "localize bad layer")
EOF
"$B/locus" generate --model $G/sd15-tiny --prompt 'A sign that says "HELLO".' --seed 5 --steps 3 -o "$tmp/ra_cli.png" 2>/dev/null
PYTHONPATH=python LOCUS_LIB="$B" LOCUS_BIN="$B/locus" $PY "$tmp/misc.py" "$tmp" "$B" >"$tmp/misc.out" 2>&1 || echo "FAIL misc.py exited: $(tail -1 "$tmp/misc.out")" >>"$tmp/misc.out"
while IFS= read -r line; do
  case "$line" in ok*) ok;; FAIL*) bad "${line#FAIL }";; esac
done <"$tmp/misc.out"
# found without LOCUS_LIB: the source tree's build/ (only for the default build directory)
if [ "$(cd "$tmp" && env -u LOCUS_LIB PYTHONPATH="$OLDPWD/python" $PY -c 'import locus; print(locus.library_path())')" = "$PWD/build/liblocus.so.0" ] ||
   [ "$(realpath "$B")" != "$PWD/build" ]; then ok
else bad "without LOCUS_LIB the module does not find build/liblocus.so.0"; fi
if LOCUS_LIB="$B" LOCUS_BIN="$B/locus" $PY python/examples/localize_demo.py --out "$tmp/demo" --steps 2 >"$tmp/demo.out" 2>&1 &&
   [ -s "$tmp/demo/heatmap.png" ] && grep -q 'heatmap' "$tmp/demo.out"; then ok
else bad "examples/localize_demo.py: $(tail -1 "$tmp/demo.out")"; fi
echo "$p $f"
