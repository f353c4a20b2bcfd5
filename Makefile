# tfswa: TFSWA-ResUNet music source separation in C11.
#   make            build build/libtfswa.a and build/tfswa
#   make test       install missing Debian packages, build, run the whole suite
#   make test SAN=1 the same with AddressSanitizer + UndefinedBehaviorSanitizer
#   make demo       the end-to-end demo (see README.md)
#   make deps       only check/install the Debian packages
#   make format     clang-format every C file

CC      ?= gcc
BUILD   ?= build
PKGS    := sndfile fftw3f fftw3 openblas soxr yaml-0.1 libcjson libpng lapacke ompi-c

# pkg-config is itself a dependency: resolve flags lazily so `make deps` works first.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT     ?= -O2
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -fopenmp -fno-math-errno -fno-trapping-math -Iinclude -Isrc
LDLIBS  += -fopenmp -lm -lpthread

ifeq ($(SAN),1)
  BUILD   := $(BUILD)-san
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDLIBS  += -fsanitize=address,undefined
endif

LIB_SRC  := $(sort $(wildcard src/*/*.c))
LIB_SRC  := $(filter-out src/cli/%,$(LIB_SRC))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
EX_SRC   := $(sort $(wildcard examples/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EX_BIN   := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
DEPS     := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d)

.PHONY: all test deps demo format clean check-deps
all: $(BUILD)/libtfswa.a $(BUILD)/tfswa $(EX_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libtfswa.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tfswa: $(CLI_OBJ) $(BUILD)/libtfswa.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libtfswa.a $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libtfswa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libtfswa.a $(PKG_LIBS) $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libtfswa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/libtfswa.a $(PKG_LIBS) $(LDLIBS)

deps:
	@tools/deps.sh

# `make test` first makes sure the packages are there, then builds in a sub-make
# (so pkg-config flags are resolved after installation), then runs every test.
test: deps
	@$(MAKE) --no-print-directory all tests-bin SAN=$(SAN)
	@tools/include_graph.sh src >/dev/null || { tools/include_graph.sh src | grep FORBIDDEN; exit 1; }
	@tools/run_tests.sh $(BUILD)

.PHONY: tests-bin
tests-bin: $(TEST_BIN)

demo: deps
	@$(MAKE) --no-print-directory all SAN=$(SAN)
	$(BUILD)/tfswa demo --out demo-output

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san

-include $(DEPS)
