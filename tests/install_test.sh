#!/usr/bin/env bash
# install_test.sh — make install / uninstall into temporary prefixes, and a C program built against the
# installed copy with pkg-config.
#   bash tests/install_test.sh BUILD_DIR TMPDIR     (prints what fails, then "P F" last; called by run_tests.sh)
# 1. make install PREFIX=T/prefix: bin, lib, headers, locus.pc, man pages, completion, share/locus/zoo;
#    the installed locus runs and its man page and completion are there.
# 2. A 20-line C program opens tests/golden/pipelines/sd15-tiny through the installed headers (compiled and
#    linked with `pkg-config --cflags --libs locus` only; the static library until liblocus.so is built) and
#    prints the denoiser's geometry and parameter count, which must equal what `locus layers --json` reports.
# 3. make uninstall leaves the prefix empty, but keeps a file that was there before; DESTDIR staging puts the
#    files under DESTDIR with PREFIX in locus.pc, and its uninstall empties DESTDIR.
set -u
B=$1 T=$2
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "  FAIL install: $*"; }
P=$T/prefix
rm -rf "$P" "$T/stage"; mkdir -p "$P"
if make --no-print-directory -s install BUILD="$B" PREFIX="$P" >"$T/inst.out" 2>&1; then ok; else bad "make install: $(tail -3 "$T/inst.out")"; fi
for x in bin/locus lib/liblocus.a lib/pkgconfig/locus.pc include/locus/models/pipeline.h include/locus/core/error.h \
         share/man/man1/locus.1 share/man/man1/locus-generate.1 share/bash-completion/completions/locus share/locus/zoo/words; do
  [ -e "$P/$x" ] || { bad "not installed: $x"; continue; }; ok
done
[ "$("$P/bin/locus" version)" = "$("$B/locus" version)" ] && ok || bad "the installed locus does not run"
[ "$(ls "$P/share/man/man1" | wc -l)" = $(( $("$B/locus" help --commands | wc -l) + 1 )) ] && ok || bad "not one man page per command + locus.1"

# the C program, against the installed copy only
cat >"$T/prog.c" <<'C'
/* opens a pipeline folder through the installed public API (locus.h) and prints its denoiser's geometry */
#include <stdio.h>
#include <locus.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: prog PIPELINE_DIR\n"); return 2; }
    locus_model *m = NULL;
    locus_model_info i;
    if (locus_model_open(argv[1], &m) != 0 || locus_model_get_info(m, &i, sizeof i) != 0) {
        fprintf(stderr, "prog: %s\n", locus_last_error());
        locus_model_close(m);
        return 1;
    }
    printf("in_channels %d sample_size %d text_layers %d params %llu\n", i.latent_channels, i.height / i.vae_factor,
           i.n_text_layers, (unsigned long long)i.denoiser_params);
    locus_model_close(m);
    return 0;
}
C
san=""  # a sanitizer build's library needs the sanitizer runtimes at link time (pkg-config cannot know)
nm "$P/lib/liblocus.a" 2>/dev/null | grep -q '__asan_init' && san="-fsanitize=address,undefined"
cc=${CC:-cc}; command -v "$cc" >/dev/null || cc=gcc
flags=$(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs locus 2>"$T/pc.err")
if [ -n "$flags" ] && "$cc" -std=c11 -o "$T/prog" "$T/prog.c" $flags $san 2>"$T/cc.err"; then ok
else bad "building against the installed copy ($flags): $(grep -m2 'error' "$T/cc.err" "$T/pc.err")"; fi
G=tests/golden/pipelines/sd15-tiny
out=$(LD_LIBRARY_PATH="$P/lib" "$T/prog" $G 2>"$T/prog.err")
want=$("$B/locus" layers --model $G --json | sed -n 's/.*"denoiser_params": \([0-9]*\).*/\1/p')
ntext=$("$B/locus" layers --model $G --json | grep -c '"paper": [0-9]')
if [ -n "$want" ] && [ "$out" = "in_channels 4 sample_size $(sed -n 's/.*"sample_size": \([0-9]*\).*/\1/p' $G/unet/config.json) text_layers $ntext params $want" ]; then
  ok; echo "  C program against the installed copy: $out"
else bad "C program printed '$out' (want params $want, $ntext text layers): $(head -2 "$T/prog.err")"; fi

# the Python example against the installed copy only: run from outside the source tree, the module under
# PREFIX/share/locus/python finds PREFIX/lib/liblocus.so and PREFIX/bin/locus by itself
if [ -e "$P/lib/liblocus.so" ] && [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null && [ -z "$san" ]; then
  root=$(pwd); rm -rf "$T/pydemo"
  if (cd "$T" && env -u LOCUS_LIB PATH="$P/bin:/usr/bin:/bin" /usr/bin/python3 "$P/share/locus/python/examples/localize_demo.py" \
        --model "$root/$G" --words HELLO,WORLD --seeds 0 --steps 2 --out "$T/pydemo" >"$T/py.out" 2>&1) &&
     [ -s "$T/pydemo/heatmap.png" ] &&
     (cd "$T" && env -u LOCUS_LIB PYTHONPATH="$P/share/locus/python" /usr/bin/python3 -c 'import locus; print(locus._L._locus_path)' 2>/dev/null |
        grep -q "^$P/lib/"); then
    ok; echo "  the Python example ran against the installed copy ($P/lib/liblocus.so, $P/bin/locus)"
  else bad "the installed Python example: $(tail -2 "$T/py.out")"; fi
else echo "  (the installed Python example: skipped: no liblocus.so, no /usr/bin/python3 with numpy, or a sanitizer build)"; fi

# uninstall: exactly what was installed
echo keep >"$P/keep.txt"
if make --no-print-directory -s uninstall BUILD="$B" PREFIX="$P" >"$T/un.out" 2>&1; then ok; else bad "make uninstall: $(tail -2 "$T/un.out")"; fi
left=$(cd "$P" && find . -mindepth 1 | sort | tr '\n' ' ')
[ "$left" = "./keep.txt " ] && ok || bad "after uninstall the prefix holds: ${left:0:300}"
rm -f "$P/keep.txt"
make --no-print-directory -s uninstall BUILD="$B" PREFIX="$P" >/dev/null 2>"$T/un2.err" && bad "a second uninstall succeeded" || ok

# DESTDIR staging
if make --no-print-directory -s install BUILD="$B" DESTDIR="$T/stage" PREFIX=/opt/locus >/dev/null 2>"$T/st.err" &&
   [ -x "$T/stage/opt/locus/bin/locus" ] && grep -qx 'prefix=/opt/locus' "$T/stage/opt/locus/lib/pkgconfig/locus.pc"; then ok
else bad "DESTDIR install: $(tail -2 "$T/st.err")"; fi
make --no-print-directory -s uninstall BUILD="$B" DESTDIR="$T/stage" PREFIX=/opt/locus >/dev/null 2>&1
[ -z "$(find "$T/stage/opt/locus" -mindepth 1 2>/dev/null)" ] && ok || bad "DESTDIR uninstall left files"
echo "$p $f"
