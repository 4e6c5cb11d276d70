#!/usr/bin/env bash
# install.sh — `make install` / `make uninstall` (the Makefile passes BUILD, DESTDIR and PREFIX):
#   tools/install.sh install   BUILD DESTDIR PREFIX
#   tools/install.sh uninstall BUILD DESTDIR PREFIX
# install copies into DESTDIR/PREFIX:
#   bin/locus                          lib/liblocus.a, lib/liblocus.so* (when the build has them)
#   include/locus/{core,simd,models,experiments}/*.h, include/locus/locus.h (when include/locus.h exists)
#   lib/pkgconfig/locus.pc             share/man/man1/locus*.1 (generated from --help at build time)
#   share/bash-completion/completions/locus
#   share/locus/zoo/...                (zoo/: the teaching configs, word lists and models when present)
#   share/locus/python/locus/...       (python/locus when present; PYTHONPATH=PREFIX/share/locus/python)
# and records every file it wrote and every directory it had to create in
# PREFIX/share/locus/install-manifest.txt; uninstall removes exactly those files, then those directories
# when they are empty, and nothing else.  A file that is already there is replaced (and recorded).
set -eu
mode=$1 BUILD=$2 DESTDIR=$3 PREFIX=$4
case "$PREFIX" in /*) ;; *) echo "locus install: PREFIX must be an absolute path (got '$PREFIX')" >&2; exit 2 ;; esac
R=$DESTDIR$PREFIX
MAN=$R/share/locus/install-manifest.txt

if [ "$mode" = uninstall ]; then
  [ -f "$MAN" ] || { echo "locus uninstall: $MAN not found (nothing installed by make install in $R)" >&2; exit 2; }
  entries=$(cat "$MAN")
  n=0
  while IFS=' ' read -r kind path; do
    if [ "$kind" = f ] && { [ -e "$R/$path" ] || [ -L "$R/$path" ]; }; then rm -f "$R/$path"; n=$((n+1)); fi
  done <<<"$entries"
  # directories this install created, deepest first, when nothing else lives in them
  echo "$entries" | sed -n 's/^d //p' | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2- | while read -r d; do
    rmdir "$R/$d" 2>/dev/null || true
  done
  echo "locus uninstall: removed $n files from $R"
  exit 0
fi
[ "$mode" = install ] || { echo "usage: install.sh install|uninstall BUILD DESTDIR PREFIX" >&2; exit 2; }
[ -x "$BUILD/locus" ] && [ -f "$BUILD/liblocus.a" ] || { echo "locus install: build first ($BUILD/locus, $BUILD/liblocus.a)" >&2; exit 2; }
[ -f "$BUILD/share/man/man1/locus.1" ] && [ -f "$BUILD/share/bash-completion/completions/locus" ] ||
  { echo "locus install: $BUILD/share (man pages, completion) missing: run make first" >&2; exit 2; }

list=$(mktemp)
trap 'rm -f "$list"' EXIT
mkdirs() { # DIR (relative to R): create it and any missing parents, recording the ones created
  local d=$1 parts="" p
  while [ "$d" != . ] && [ ! -d "$R/$d" ]; do parts="$d $parts"; d=$(dirname "$d"); done
  for p in $parts; do mkdir "$R/$p"; echo "d $p" >>"$list"; done
}
put() { # MODE SRC DST (DST relative to R)
  mkdirs "$(dirname "$3")"
  install -m "$1" "$2" "$R/$3"
  echo "f $3" >>"$list"
}
put_tree() { # SRCDIR DSTDIR: every regular file below SRCDIR, mode 644, skipping caches
  local s=$1 d=$2 f
  (cd "$s" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | LC_ALL=C sort) | while read -r f; do
    f=${f#./}; sub=$(dirname "$f")
    if [ "$sub" = . ]; then mkdirs "$d"; else mkdirs "$d/$sub"; fi
    install -m 644 "$s/$f" "$R/$d/$f"; echo "f $d/$f" >>"$list"
  done
}
mkdir -p "$R" 2>/dev/null || { echo "locus install: cannot create $R" >&2; exit 2; }

mkdirs bin; put 755 "$BUILD/locus" bin/locus
mkdirs lib; put 644 "$BUILD/liblocus.a" lib/liblocus.a
shared=0
for so in "$BUILD"/liblocus.so*; do # the shared library and its soname links, when the build has them
  [ -e "$so" ] || continue
  b=$(basename "$so")
  if [ -L "$so" ]; then ln -sf "$(readlink "$so")" "$R/lib/$b"; else install -m 755 "$so" "$R/lib/$b"; fi
  echo "f lib/$b" >>"$list"; shared=1
done
for sub in core simd models experiments; do
  mkdirs include/locus/$sub
  for h in $sub/*.h; do install -m 644 "$h" "$R/include/locus/$h"; echo "f include/locus/$h" >>"$list"; done
done
[ -f include/locus.h ] && { install -m 644 include/locus.h "$R/include/locus/locus.h"; echo "f include/locus/locus.h" >>"$list"; }
mkdirs share/man/man1
for m in "$BUILD"/share/man/man1/locus*.1; do put 644 "$m" "share/man/man1/$(basename "$m")"; done
mkdirs share/bash-completion/completions
put 644 "$BUILD/share/bash-completion/completions/locus" share/bash-completion/completions/locus
[ -d zoo ] && put_tree zoo share/locus/zoo
[ -d python/locus ] && put_tree python/locus share/locus/python/locus
[ -d python/examples ] && put_tree python/examples share/locus/python/examples

# pkg-config: dependencies with a .pc file go to Requires, the others (OpenMP, libm) to Libs.  With only the
# static library a plain `pkg-config --libs locus` must link, so they are public; with the shared library
# they are private (pkg-config --static adds them).
ver=$(sed -n 's/^#define LOCUS_VERSION "\(.*\)"/\1/p' core/version.h)
req="" libs=""
for pc in sleef:-lsleef libpng:-lpng tesseract:-ltesseract freetype2:-lfreetype; do
  if pkg-config --exists "${pc%%:*}" 2>/dev/null; then req="$req ${pc%%:*}"; else libs="$libs ${pc#*:}"; fi
done
libs="$libs -lm -fopenmp"
priv=""; [ $shared = 1 ] && priv=.private
mkdirs lib/pkgconfig
cat >"$R/lib/pkgconfig/locus.pc" <<PC
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include
datadir=\${prefix}/share/locus

Name: locus
Description: diffusion text-to-image models on the CPU, bit-for-bit reproducibly, for interpretability
Version: $ver
Requires$priv:${req}
Cflags: -I\${includedir}/locus
Libs: -L\${libdir} -llocus$([ $shared = 1 ] && echo " -fopenmp" || echo "$libs")
$([ $shared = 1 ] && echo "Libs.private:$libs" || echo "Libs.private:")
PC
echo "f lib/pkgconfig/locus.pc" >>"$list"

mkdirs share/locus
# the manifest: earlier entries first (a reinstall keeps the union, so uninstall still removes everything)
{ [ -f "$MAN" ] && grep -v '^f share/locus/install-manifest.txt$' "$MAN"; cat "$list"; } | awk '!seen[$0]++' >"$MAN.tmp"
echo "f share/locus/install-manifest.txt" >>"$MAN.tmp"
mv "$MAN.tmp" "$MAN"
echo "locus install: $(grep -c '^f ' "$MAN") files in $R (manifest share/locus/install-manifest.txt)"
