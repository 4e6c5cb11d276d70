# locus — top-level GNU Makefile.
#
#   make              build/locus (CLI), build/liblocus.a and build/liblocus.so (C API: include/locus.h)
#   make test         build and run the test suite (what .ci/run runs; about 11 minutes on 2 cores)
#   make test-full    the same with every CLI suite under ASan+UBSan too
#   make bench        benchmarks (report ratios; never fail on timing)
#   make asan         ASan+UBSan build of the unit tests, run
#   make neon-test    aarch64 cross build of the kernel tests, run under qemu-user, hashes compared with x86
#   make fuzz         the libFuzzer targets of tests/fuzz (clang; parsers, loaders, tokenizers, CLI), FUZZ_SECONDS each
#   make teaching-model  retrain the shipped teaching model zoo/signs-sd bit for bit (88 minutes on 2 cores;
#                        make teaching-model-sd3: zoo/signs-sd3)
#   make demo         locus localize on zoo/signs-sd: which layers write the text (a few minutes)
#   make deps         check (and, as root with apt, install) the Debian packages
#
# Determinism contract: -O2 -ffp-contract=off, no fast math and no host-specific tuning; ISA flags only on
# simd/avx2, simd/avx512 and simd/neon sources.  CC=gcc or CC=clang.

ifeq ($(origin CC),default)
CC = gcc
endif
BUILD    ?= build
OPT      ?= -O2
CSTD      = -std=c11 -D_GNU_SOURCE
WARN      = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers -Wno-format-truncation
FPFLAGS   = -ffp-contract=off -fno-fast-math
CFLAGS_BASE = $(CSTD) $(OPT) $(FPFLAGS) $(WARN) -fopenmp -g $(FT_CFLAGS) $(EXTRA_CFLAGS)
SLEEF_INC ?=
PNG_LIB  ?= -lpng
OCR_LIB  ?= -ltesseract
# FreeType (locus dataset signs): Debian's libfreetype-dev; the fallback path serves a first build before it is installed
FT_CFLAGS_PKG := $(or $(shell pkg-config --cflags freetype2 2>/dev/null),-I/usr/include/freetype2)
FT_CFLAGS ?= $(FT_CFLAGS_PKG)
FT_LIB   ?= -lfreetype
LDLIBS    = -lsleef $(PNG_LIB) $(OCR_LIB) $(FT_LIB) -lm -fopenmp $(EXTRA_LDLIBS)
ARCH     := $(shell $(CC) -dumpmachine | cut -d- -f1)

FLAGS_avx2   = -mavx2 -mfma
FLAGS_avx512 = -mavx512f -mavx2 -mfma
FLAGS_neon   =

CORE_SRC = $(wildcard core/*.c)
SIMD_SRC = simd/dispatch.c simd/gemm.c simd/conv.c simd/attention.c simd/ops.c simd/ref/kernels_scalar.c
SIMD_SRC += simd/ops_bwd.c simd/conv_bwd.c simd/attention_bwd.c
ifeq ($(ARCH),x86_64)
SIMD_SRC += simd/avx2/kernels_avx2.c simd/avx512/kernels_avx512.c
endif
ifeq ($(ARCH),aarch64)
SIMD_SRC += simd/neon/kernels_neon.c
endif
LIB_SRC  = $(CORE_SRC) $(SIMD_SRC) $(wildcard models/*.c) $(filter-out experiments/locus_cli.c,$(wildcard experiments/*.c))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)

TEST_SRC = $(wildcard tests/test_*.c)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/%)

.PHONY: all test test-full teaching-model teaching-model-sd3 demo unit-test bench asan neon-test clang-test fuzz fuzz-build deps clean
.SECONDARY:
all: $(BUILD)/locus $(BUILD)/liblocus.a

$(BUILD)/.deps-ok:
	@CC="$(CC)" bash .ci/deps.sh check-build
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/obj/simd/avx2/%.o: simd/avx2/%.c | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(FLAGS_avx2) -MMD -MP -c $< -o $@
$(BUILD)/obj/simd/avx512/%.o: simd/avx512/%.c | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(FLAGS_avx512) -MMD -MP -c $< -o $@
$(BUILD)/obj/simd/neon/%.o: simd/neon/%.c | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(FLAGS_neon) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.c | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -MMD -MP -c $< -o $@

$(BUILD)/liblocus.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/locus: $(BUILD)/obj/experiments/locus_cli.o $(BUILD)/liblocus.a
	$(CC) $(CFLAGS_BASE) -o $@ $^ $(LDLIBS)

$(BUILD)/test_%: $(BUILD)/obj/tests/test_%.o $(BUILD)/obj/tests/testutil.o $(BUILD)/obj/tests/parity.o $(BUILD)/liblocus.a
	$(CC) $(CFLAGS_BASE) -o $@ $^ $(LDLIBS)

# ---- liblocus.so: the shared library with the stable C API of include/locus.h (docs/API.md) ----
# Library objects are compiled -fPIC -fvisibility=hidden (the same output bits: checked on generate PNGs and
# dumps); experiments/api.map exports only the API.  soname liblocus.so.0: liblocus.so -> liblocus.so.0 ->
# liblocus.so.0.1.0.  The stamp rebuilds objects of a build directory made before these flags, once.
SO_VERSION = 0.1.0
SO_MAJOR   = 0
CFLAGS_BASE += -fPIC -fvisibility=hidden
all unit-test: $(BUILD)/liblocus.so
$(LIB_OBJ): $(BUILD)/.pic
$(BUILD)/.pic:
	@mkdir -p $(BUILD) && touch $@
$(BUILD)/liblocus.so.$(SO_VERSION): $(LIB_OBJ) experiments/api.map
	$(CC) $(CFLAGS_BASE) -shared -Wl,-soname,liblocus.so.$(SO_MAJOR) -Wl,--version-script=experiments/api.map -Wl,-z,defs -o $@ $(LIB_OBJ) $(LDLIBS)
$(BUILD)/liblocus.so: $(BUILD)/liblocus.so.$(SO_VERSION)
	ln -sf liblocus.so.$(SO_VERSION) $(BUILD)/liblocus.so.$(SO_MAJOR)
	ln -sf liblocus.so.$(SO_MAJOR) $@

# ---- tests ----
# make test = unit tests + determinism + CLI (this build), the same under ASan+UBSan (without the long CLI
# suites: LOCUS_TEST_QUICK=1), the aarch64/NEON build under qemu-user compared bit for bit with x86, and the
# clang build compared with gcc.  make test-full also runs the long CLI suites under the sanitizers.
# make unit-test runs only the first part.
unit-test: $(TEST_BIN) $(BUILD)/locus
	@bash tests/run_tests.sh $(BUILD)

NPROC := $(shell nproc 2>/dev/null || echo 2)
LOCUS_TEST_QUICK_ASAN ?= 1
test:
	@rm -f $(BUILD)/results build-asan/results build-aarch64/results build-clang/results
	@$(MAKE) --no-print-directory -j$(NPROC) unit-test; \
	 LOCUS_TEST_QUICK=$(LOCUS_TEST_QUICK_ASAN) $(MAKE) --no-print-directory -j$(NPROC) asan; \
	 $(MAKE) --no-print-directory -j$(NPROC) neon-test; \
	 $(MAKE) --no-print-directory -j$(NPROC) clang-test; \
	 bash tests/total.sh $(BUILD) build-asan build-aarch64 build-clang

# make test-full: the same, with every CLI suite also under ASan+UBSan (make test skips the long ones there)
test-full:
	@$(MAKE) --no-print-directory test LOCUS_TEST_QUICK_ASAN=0

# ---- sanitizers ----
asan:
	$(MAKE) BUILD=build-asan OPT=-O1 EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    EXTRA_LDLIBS="-fsanitize=address,undefined" unit-test

# ---- aarch64 / NEON under qemu-user ----
neon-test:
	@bash .ci/deps.sh check-neon
	@mkdir -p build-aarch64 && touch build-aarch64/.deps-ok
	$(MAKE) BUILD=build-aarch64 CC=aarch64-linux-gnu-gcc PNG_LIB= OCR_LIB= FT_LIB= build-aarch64/test_kernels build-aarch64/test_unet build-aarch64/test_sdxl build-aarch64/test_mmdit \
	    build-aarch64/test_grad build-aarch64/test_grad_mmdit
	$(MAKE) $(BUILD)/test_kernels $(BUILD)/test_unet $(BUILD)/test_sdxl $(BUILD)/test_mmdit $(BUILD)/test_grad $(BUILD)/test_grad_mmdit
	@bash tests/neon_compare.sh $(BUILD) build-aarch64 | tee build-aarch64/neon.log; \
	 tail -1 build-aarch64/neon.log | awk '{print "neon", $$2, $$4}' >build-aarch64/results; \
	 test "$$(awk '{print $$3}' build-aarch64/results)" = 0

# ---- clang: the same bits as gcc ----
clang-test:
	$(MAKE) BUILD=build-clang CC=clang build-clang/test_kernels build-clang/locus build-clang/test_grad build-clang/test_grad_mmdit
	$(MAKE) $(BUILD)/test_kernels $(BUILD)/locus $(BUILD)/test_grad $(BUILD)/test_grad_mmdit
	@bash tests/compiler_compare.sh $(BUILD) build-clang

# ---- the teaching model (issue 11) ----
# make teaching-model: retrain zoo/signs-sd from nothing (88 minutes on 2 cores; resumable: run it again
# after a kill) and check its weights against zoo/signs-sd/SHA256SUMS; make teaching-model-sd3: the same for
# the SD3-style zoo/signs-sd3.  make demo: localization on zoo/signs-sd.
teaching-model: $(BUILD)/locus
	@LOCUS=$(BUILD)/locus bash tools/teaching_model.sh $(BUILD)/teaching
teaching-model-sd3: $(BUILD)/locus
	@FAMILY=sd3 LOCUS=$(BUILD)/locus bash tools/teaching_model.sh $(BUILD)/teaching
demo: $(BUILD)/locus
	@LOCUS=$(BUILD)/locus bash tools/demo.sh $(BUILD)/demo

# ---- benchmarks ----
BENCH_LIBS = -lopenblas
$(BUILD)/bench_gemm: $(BUILD)/obj/benchmarks/bench_gemm.o $(BUILD)/liblocus.a
	$(CC) $(CFLAGS_BASE) -o $@ $^ $(BENCH_LIBS) $(LDLIBS)
$(BUILD)/bench_kernels: $(BUILD)/obj/benchmarks/bench_kernels.o $(BUILD)/liblocus.a
	$(CC) $(CFLAGS_BASE) -o $@ $^ $(BENCH_LIBS) $(LDLIBS)
$(BUILD)/bench_models: $(BUILD)/obj/benchmarks/bench_models.o $(BUILD)/liblocus.a
	$(CC) $(CFLAGS_BASE) -o $@ $^ $(LDLIBS)
$(BUILD)/bench_train: $(BUILD)/obj/benchmarks/bench_train.o $(BUILD)/liblocus.a
	$(CC) $(CFLAGS_BASE) -o $@ $^ $(LDLIBS)
bench: $(BUILD)/bench_gemm $(BUILD)/bench_kernels $(BUILD)/bench_models $(BUILD)/bench_train
	@bash benchmarks/run_bench.sh $(BUILD)

# ---- fuzzing (clang + libFuzzer) ----
# make fuzz: every target in tests/fuzz/ (built against an ASan+UBSan+fuzzer-instrumented liblocus in
# build-fuzz/), first over its regression inputs (tests/fuzz/regress/<target>/, each must pass), then fuzzed for
# FUZZ_SECONDS from its seed corpus (tests/fuzz/corpus/<target>/, copied to build-fuzz/corpus/<target>/, which
# keeps what the fuzzer finds).  FUZZ_TARGETS picks a subset.  Crashes are left as build-fuzz/crash-*.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=clang OPT=-O1 EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_FLAGS)" build-fuzz/liblocus.a
	@for t in $(FUZZ_TARGETS); do \
	  echo "clang ... tests/fuzz/fuzz_$$t.c -> build-fuzz/fuzz_$$t"; \
	  clang $(CSTD) -O1 -g $(FPFLAGS) -fopenmp -fsanitize=fuzzer $(FUZZ_FLAGS) tests/fuzz/fuzz_$$t.c build-fuzz/liblocus.a \
	      -lsleef $(PNG_LIB) $(OCR_LIB) -lm -o build-fuzz/fuzz_$$t || exit 1; \
	done
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  if [ -d tests/fuzz/regress/$$t ] && [ -n "$$(ls tests/fuzz/regress/$$t)" ]; then \
	    build-fuzz/fuzz_$$t tests/fuzz/regress/$$t/* >build-fuzz/regress_$$t.log 2>&1 || { echo "fuzz $$t: a regression input fails (build-fuzz/regress_$$t.log)"; exit 1; }; \
	    echo "fuzz $$t: $$(ls tests/fuzz/regress/$$t | wc -l) regression inputs pass"; fi; \
	  mkdir -p build-fuzz/corpus/$$t; [ -d tests/fuzz/corpus/$$t ] && cp tests/fuzz/corpus/$$t/* build-fuzz/corpus/$$t/ 2>/dev/null; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -rss_limit_mb=2048 -close_fd_mask=1 -artifact_prefix=build-fuzz/crash-$$t- \
	      build-fuzz/corpus/$$t >build-fuzz/fuzz_$$t.log 2>&1; rc=$$?; \
	  echo "fuzz $$t: $$(grep -o 'Done [0-9]* runs' build-fuzz/fuzz_$$t.log | tail -1 | awk '{print $$2}') runs, exit $$rc"; \
	  [ $$rc = 0 ] || { tail -30 build-fuzz/fuzz_$$t.log; exit 1; }; \
	done

# ---- install (branch install): man pages and bash completion generated from --help, make install / uninstall ----
# make install PREFIX=/usr/local [DESTDIR=/tmp/stage]: bin/locus, lib/liblocus.a (+ liblocus.so* when built),
# include/locus/, lib/pkgconfig/locus.pc, share/man/man1/locus*.1, share/bash-completion/completions/locus,
# share/locus/zoo, share/locus/python (PYTHONPATH) — tools/install.sh, which records what it writes;
# make uninstall PREFIX=... removes exactly that.  The man pages and completion are made at build time from
# `locus CMD --help` (tools/gen_man.sh, tools/gen_completion.sh): nothing else describes the options.
PREFIX ?= /usr/local
DESTDIR ?=
.PHONY: install uninstall man completion
all: man completion
man: $(BUILD)/share/man/man1/locus.1
completion: $(BUILD)/share/bash-completion/completions/locus
$(BUILD)/share/man/man1/locus.1: $(BUILD)/locus tools/gen_man.sh
	@rm -rf $(BUILD)/share/man/man1
	bash tools/gen_man.sh $(BUILD)/locus $(BUILD)/share/man/man1
$(BUILD)/share/bash-completion/completions/locus: $(BUILD)/locus tools/gen_completion.sh
	@mkdir -p $(dir $@)
	bash tools/gen_completion.sh $(BUILD)/locus >$@.tmp && mv $@.tmp $@
# tests/report_test.sh needs Chromium: installed here when possible (as root with apt), else the test skips
unit-test: $(BUILD)/.report-deps
$(BUILD)/.report-deps:
	@bash .ci/deps.sh check-report || echo "locus: Chromium missing: tests/report_test.sh will skip its browser checks" >&2
	@mkdir -p $(BUILD) && touch $@
install: all
	@bash tools/install.sh install "$(BUILD)" "$(DESTDIR)" "$(PREFIX)"
uninstall:
	@bash tools/install.sh uninstall "$(BUILD)" "$(DESTDIR)" "$(PREFIX)"
# ---- end install ----

deps:
	@bash .ci/deps.sh install

clean:
	rm -rf build build-asan build-aarch64 build-clang build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
