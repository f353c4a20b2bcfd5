# tfswa: TFSWA-ResUNet music source separation in C11.
#   make            build build/libtfswa.a and build/tfswa
#   make test       install missing Debian packages, build, run the whole suite
#   make test SAN=1 the same with AddressSanitizer + UndefinedBehaviorSanitizer
#   make demo       the end-to-end demo (see README.md)
#   make deps       only check/install the Debian packages
#   make format     clang-format every C file
#   make install    install into PREFIX (/usr/local; DESTDIR honoured): lib/libtfswa.a,
#                   lib/libtfswa.so*, include/tfswa.h, lib/pkgconfig/tfswa.pc, bin/tfswa,
#                   share/tfswa/configs; `make uninstall PREFIX=...` removes them
#   make tools      the stand-alone benches of tools/*.c into build/tools/
#   make fuzz       build the libFuzzer harnesses of fuzz/ with clang (ASan+UBSan) into
#                   build-fuzz/ and run each for FUZZ_SECONDS (30); see fuzz/run.sh
#   make CUDA=1     the same tfswa and libtfswa with the cuda backend (src/cuda/*.cu, nvcc of
#                   CUDA_HOME=/usr/local/cuda, cuDNN), into build-cuda/; also builds the GPU
#                   test programs (tests/gpu/*.c, `make CUDA=1 gpu-tests`), which need a GPU
#                   to run (tools/gpu_pack.sh, tools/gpu_check.sh)

CC      ?= gcc
BUILD   ?= build
PKGS    := sndfile fftw3f fftw3 openblas soxr yaml-0.1 libcjson libpng lapacke ompi-c

# pkg-config is itself a dependency: resolve flags lazily so `make deps` works first.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT     ?= -O2
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -fopenmp -fno-math-errno -fno-trapping-math -Iinclude -Isrc
# oneDNN (Debian libdnnl-dev) ships no pkg-config file
LDLIBS  += -ldnnl -fopenmp -lm -lpthread

ifeq ($(SAN),1)
  BUILD   := $(BUILD)-san
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDLIBS  += -fsanitize=address,undefined
endif

# CUDA=1: the C files see TFSWA_CUDA=1 (they call src/cuda/cuda_backend.h); every
# src/cuda/*.cu is compiled by nvcc for sm_80 (A100) and sm_90 (H100/H200) plus PTX of
# compute_90 for newer cards; the CUDA runtime is linked statically, cuDNN, cuBLAS(Lt) and
# cuFFT dynamically (libcudnn.so.9, libcublas.so.13, libcublasLt.so.13, libcufft.so.12: the
# GPU machine's own, e.g. PyTorch's wheels; the toolkit here has no static cuBLAS/cuFFT, and
# their shared libraries, 880 MB, are too big to carry), NCCL too (libnccl.so.2: several
# GPUs, src/train/step_cuda.c; PyTorch's wheel nvidia/nccl). The CPU build needs none of it.
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CU_SRC    :=
ifeq ($(CUDA),1)
  BUILD   := $(BUILD)-cuda
  CFLAGS  += -DTFSWA_CUDA=1
  CU_SRC  := $(sort $(wildcard src/cuda/*.cu))
  CFLAGS  += -isystem $(CUDA_HOME)/include
  NVCC_ARCH := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
    -gencode arch=compute_90,code=compute_90
  NVCCFLAGS ?= -O2 -g
  NVCCFLAGS += -std=c++17 $(NVCC_ARCH) -Iinclude -Isrc -DTFSWA_CUDA=1 \
    -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra
  LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudnn -lcublas -lcublasLt -lcufft -lnccl \
    $(CUDA_HOME)/lib64/libcudart_static.a -ldl -lrt -lpthread -lstdc++
endif

# The version is the one in include/tfswa.h; the shared library's soname has the major.
version_part = $(shell sed -n 's/^\#define TFSWA_VERSION_$(1) \([0-9]*\).*/\1/p' include/tfswa.h)
VERSION  := $(call version_part,MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SO_NAME  := libtfswa.so.$(call version_part,MAJOR)
SO_REAL  := libtfswa.so.$(VERSION)

PREFIX  ?= /usr/local
DESTDIR ?=

LIB_SRC  := $(sort $(wildcard src/*/*.c))
LIB_SRC  := $(filter-out src/cli/%,$(LIB_SRC))
# *_cuda.c: host code that calls the CUDA runtime (the device model, src/model/model_cuda.c,
# and trainer, src/train/step_cuda.c): CUDA builds only
ifneq ($(CUDA),1)
  LIB_SRC := $(filter-out %_cuda.c,$(LIB_SRC))
endif
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
# tests/*.c that are not tests: harness code shared by tests and tools (not the library)
THELP_SRC := $(sort $(filter-out tests/test_%,$(wildcard tests/*.c)))
EX_SRC   := $(sort $(wildcard examples/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
CONFIGS  := $(sort $(wildcard configs/*/*.yaml))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CU_SRC:%.cu=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
THELP_OBJ := $(THELP_SRC:%.c=$(BUILD)/%.o)
THELP_LIB := $(BUILD)/tests/libtesthelp.a
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EX_BIN   := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
TOOL_BIN := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)
# fuzz/fuzz_<reader>.c: one libFuzzer harness per reader of a file a user hands us. Linked
# with fuzz/driver.c instead of libFuzzer they replay a corpus: `make test` runs them over
# fuzz/seeds/<reader>/ and tests/corpus/<reader>/ (tests/test_corpus.sh).
FUZZ_NAMES  := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
# tests/gpu/*.c: programs that need a GPU (CUDA=1 only; run by tools/gpu_check.sh)
GPU_TEST_SRC := $(if $(filter 1,$(CUDA)),$(sort $(wildcard tests/gpu/*.c)))
GPU_TEST_BIN := $(GPU_TEST_SRC:tests/gpu/%.c=$(BUILD)/tests/gpu/%)
DEPS     := $(LIB_OBJ:.o=.d) $(GPU_TEST_BIN:=.d) $(CLI_OBJ:.o=.d) $(THELP_OBJ:.o=.d) $(TEST_BIN:=.d) $(TOOL_BIN:=.d)
SHLIB    := $(BUILD)/$(SO_REAL) $(BUILD)/$(SO_NAME) $(BUILD)/libtfswa.so

.PHONY: all test deps demo format clean check-deps tools install uninstall fuzz fuzz-bin FORCE gpu-tests
all: $(BUILD)/libtfswa.a $(SHLIB) $(BUILD)/tfswa $(EX_BIN) $(GPU_TEST_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

gpu-tests: $(GPU_TEST_BIN)
ifneq ($(CUDA),1)
	@echo "make gpu-tests: the GPU test programs are built by make CUDA=1 gpu-tests" >&2; exit 2
endif

$(BUILD)/tests/gpu/%: tests/gpu/%.c tests/test.h $(THELP_LIB) $(BUILD)/libtfswa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests -MMD -MP -o $@ $< $(THELP_LIB) $(BUILD)/libtfswa.a $(PKG_LIBS) $(LDLIBS)

# One object set for both libraries: position independent, and every symbol hidden
# except the TFSWA_API functions of include/tfswa.h; tfswa.map also hides what GCC leaves
# visible (tests/test_exports.sh checks the exported set).
# The objects depend on a file holding these flags, so changing them rebuilds the objects.
$(LIB_OBJ): CFLAGS += -fPIC -fvisibility=hidden
$(LIB_OBJ): $(BUILD)/lib.cflags
$(BUILD)/lib.cflags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) $(CFLAGS) $(PKG_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(PKG_CFLAGS)' > $@
FORCE:

$(BUILD)/libtfswa.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The shared library records its dependencies (DT_NEEDED), so users link with -ltfswa alone.
$(BUILD)/$(SO_REAL): $(LIB_OBJ) tfswa.map
	$(CC) -shared -Wl,-soname,$(SO_NAME) -Wl,--version-script=tfswa.map -Wl,--no-undefined \
	  -Wl,--as-needed -o $@ $(LIB_OBJ) $(PKG_LIBS) $(LDLIBS)

$(BUILD)/$(SO_NAME): $(BUILD)/$(SO_REAL)
	ln -sf $(SO_REAL) $@

$(BUILD)/libtfswa.so: $(BUILD)/$(SO_NAME)
	ln -sf $(SO_NAME) $@

$(BUILD)/tfswa: $(CLI_OBJ) $(BUILD)/libtfswa.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libtfswa.a $(PKG_LIBS) $(LDLIBS)

$(THELP_LIB): $(THELP_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: tests/%.c tests/test.h $(THELP_LIB) $(BUILD)/libtfswa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -o $@ $< $(THELP_LIB) $(BUILD)/libtfswa.a $(PKG_LIBS) $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libtfswa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/libtfswa.a $(PKG_LIBS) $(LDLIBS)

# Stand-alone benches (not part of the product): they may use the test harness and the
# CLI's bench helpers.
$(BUILD)/tools/%: tools/%.c $(THELP_LIB) $(BUILD)/src/cli/bench_util.o $(BUILD)/libtfswa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -o $@ $< $(BUILD)/src/cli/bench_util.o $(THELP_LIB) \
	  $(BUILD)/libtfswa.a $(PKG_LIBS) $(LDLIBS)

tools: $(TOOL_BIN)

$(BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/driver.c fuzz/fuzz.h $(BUILD)/libtfswa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -I. -o $@ fuzz/fuzz_$*.c fuzz/driver.c $(BUILD)/libtfswa.a \
	  $(PKG_LIBS) $(LDLIBS)

# `make fuzz`: the library again, with clang and -fsanitize=fuzzer-no-link,address,undefined,
# in its own folder; each harness linked with libFuzzer; then fuzz/run.sh runs each for
# FUZZ_SECONDS from the seed corpus (fuzz/seeds/) and the regression inputs (tests/corpus/).
FUZZ_SECONDS ?= 30
FUZZ_BUILD   ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g -fopenmp -fno-math-errno -fno-trapping-math -Wno-pass-failed \
  -Iinclude -Isrc -I. $(FUZZ_SAN)
FUZZ_OBJ     := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libtfswa.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_BUILD)/libtfswa.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< $(FUZZ_BUILD)/libtfswa.a \
	  $(PKG_LIBS) $(LDLIBS)

fuzz-bin: $(FUZZ_BIN)

fuzz:
	@tools/deps.sh clang libclang-rt-dev libomp-dev
	@$(MAKE) --no-print-directory fuzz-bin
	@FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_NAMES)

deps:
	@tools/deps.sh

# `make test` first makes sure the packages are there, then builds in a sub-make
# (so pkg-config flags are resolved after installation), then runs every test
# (tests/test_*.c binaries and tests/test_*.sh scripts, which get the build directory).
test: deps
	@$(MAKE) --no-print-directory all tests-bin tools SAN=$(SAN)
	@g=$$(tools/include_graph.sh src) || { echo "$$g" | grep FORBIDDEN; exit 1; }
	@MAKE="$(MAKE)" CC="$(CC)" SAN="$(SAN)" tools/run_tests.sh $(BUILD)

.PHONY: tests-bin
tests-bin: $(TEST_BIN) $(FUZZ_REPLAY)

demo: deps
	@$(MAKE) --no-print-directory all SAN=$(SAN)
	$(BUILD)/tfswa demo --out demo-output

# lib/pkgconfig/tfswa.pc is generated from tfswa.pc.in with PREFIX (not DESTDIR); its
# Libs.private (for `pkg-config --static`, linking libtfswa.a) are the libraries we link.
install: $(BUILD)/libtfswa.a $(SHLIB) $(BUILD)/tfswa
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/tfswa
	install -m 644 $(BUILD)/libtfswa.a $(DESTDIR)$(PREFIX)/lib/libtfswa.a
	install -m 755 $(BUILD)/$(SO_REAL) $(DESTDIR)$(PREFIX)/lib/$(SO_REAL)
	ln -sf $(SO_REAL) $(DESTDIR)$(PREFIX)/lib/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(PREFIX)/lib/libtfswa.so
	install -m 644 include/tfswa.h $(DESTDIR)$(PREFIX)/include/tfswa.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@LIBS_PRIVATE@|$(strip $(PKG_LIBS) $(LDLIBS))|' \
	  tfswa.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tfswa.pc
	install -m 755 $(BUILD)/tfswa $(DESTDIR)$(PREFIX)/bin/tfswa
	for f in $(CONFIGS); do \
	  install -D -m 644 $$f $(DESTDIR)$(PREFIX)/share/tfswa/$$f || exit 1; done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libtfswa.a $(DESTDIR)$(PREFIX)/lib/$(SO_REAL) \
	  $(DESTDIR)$(PREFIX)/lib/$(SO_NAME) $(DESTDIR)$(PREFIX)/lib/libtfswa.so \
	  $(DESTDIR)$(PREFIX)/include/tfswa.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/tfswa.pc \
	  $(DESTDIR)$(PREFIX)/bin/tfswa
	rm -rf $(DESTDIR)$(PREFIX)/share/tfswa

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san build-fuzz build-cuda gpu_carry

-include $(DEPS) $(FUZZ_OBJ:.o=.d)
