#!/usr/bin/env bash
# deps.sh — check (and, as root with apt, install) the Debian packages locus builds with.
#   check-build   compiler headers/libs for the main build (sleef, png, openblas, OpenMP, tesseract + its English model,
#                 FreeType) and the fonts `locus dataset signs` draws with (DejaVu, Liberation 2)
#   check-neon    the aarch64 cross toolchain, arm64 SLEEF and qemu-user (for make neon-test)
#   check-report  Chromium, which tests/report_test.sh drives headless to check localize's report.html (make
#                 unit-test runs this and goes on without it: the test then says it was skipped)
#   install       everything above
# A missing package is installed automatically when running as root with apt-get available; otherwise the
# script prints the apt command to run and exits 1.
set -u
mode=${1:-check-build}
CC=${CC:-gcc}

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
    if ! can_install; then
        echo "locus: missing Debian packages: $*" >&2
        echo "locus: run: sudo apt-get install -y $*" >&2
        exit 1
    fi
    echo "locus: installing Debian packages: $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    # `make -j` may run two checks at once, and the machine may be running apt itself: take our own lock first,
    # then let apt wait for dpkg's lock instead of failing on it
    exec 9>/tmp/locus-deps.lock
    command -v flock >/dev/null 2>&1 && flock 9
    local apt=(apt-get -o DPkg::Lock::Timeout=600)
    "${apt[@]}" install -y -qq "$@" >/dev/null 2>&1 || { "${apt[@]}" update -qq >/dev/null 2>&1; "${apt[@]}" install -y -qq "$@" >/dev/null; } || {
        echo "locus: apt-get install $* failed" >&2; exit 1; }
}

have_header() { echo "#include <$1>" | $CC -E -x c - >/dev/null 2>&1; }

check_build() {
    local miss=()
    have_header sleef.h || miss+=(libsleef-dev)
    have_header png.h || miss+=(libpng-dev)
    # cblas.h alone is not enough (libblas-dev ships one too): the benchmarks link -lopenblas
    { have_header cblas.h && echo 'int main(void){return 0;}' | $CC -x c - -lopenblas -o /dev/null >/dev/null 2>&1; } || miss+=(libopenblas-openmp-dev)
    have_header tesseract/capi.h || miss+=(libtesseract-dev)
    ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata >/dev/null 2>&1 || [ -n "${TESSDATA_PREFIX:-}" ] || miss+=(tesseract-ocr-eng)
    [ -f /usr/include/freetype2/ft2build.h ] || miss+=(libfreetype-dev)
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || miss+=(fonts-dejavu-core)
    [ -f /usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf ] || miss+=(fonts-liberation2)
    case "$CC" in *clang*) echo 'int main(void){return 0;}' | $CC -fopenmp -x c - -o /dev/null >/dev/null 2>&1 || miss+=(libomp-dev) ;; esac
    [ ${#miss[@]} -eq 0 ] || apt_install "${miss[@]}"
}

check_neon() {
    local miss=()
    command -v aarch64-linux-gnu-gcc >/dev/null || miss+=(gcc-aarch64-linux-gnu)
    command -v qemu-aarch64 >/dev/null || miss+=(qemu-user)
    local arm=()
    [ -f /usr/include/aarch64-linux-gnu/sleef.h ] || arm+=(libsleef-dev:arm64)
    [ -f /usr/lib/aarch64-linux-gnu/libgomp.so.1 ] || arm+=(libgomp1:arm64)
    if [ ${#arm[@]} -gt 0 ]; then
        if can_install && ! dpkg --print-foreign-architectures | grep -qx arm64; then
            dpkg --add-architecture arm64 && apt-get update -qq >/dev/null 2>&1
        fi
        miss+=("${arm[@]}")
    fi
    [ ${#miss[@]} -eq 0 ] || apt_install "${miss[@]}"
}

check_report() {
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || apt_install chromium
}

case "$mode" in
check-build) check_build ;;
check-neon) check_neon ;;
check-report) check_report ;;
install) check_build; check_neon; check_report ;;
*) echo "usage: deps.sh check-build|check-neon|check-report|install" >&2; exit 2 ;;
esac
