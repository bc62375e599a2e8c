# docpipe — the two commands: `make run` and `make test`. Both install missing Debian
# packages, configure and build incrementally, then run. Everything lives in scripts/.
# In the project when it is writable; a read-only checkout builds under ~/.cache instead.
BUILD_DIR ?= $(shell [ -w . ] && echo build || echo "$${XDG_CACHE_HOME:-$$HOME/.cache}/docpipe/build")
# All cores: nproc alone counts no more than OMP_THREAD_LIMIT / OMP_NUM_THREADS allow, and
# OMP_THREAD_LIMIT=1 is the usual setting for Tesseract.
JOBS ?= $(shell env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
CMAKE_ARGS ?=

.PHONY: all deps configure build run test test-asan coverage bench load install clean fuzz

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

configure: deps $(BUILD_DIR)/CMakeCache.txt

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	@bash scripts/run-demo.sh $(BUILD_DIR)

# Each test once: the end-to-end tests on the normal build (the binaries as shipped), then
# the quality gates (scripts/run-gates.sh ci): every other test on a second build under
# ASan+UBSan with coverage counters, and line coverage of core/, sdk/, plugins/ >= 80%.
# scripts/test-sets.sh says which test is which. `make test GATES=0` runs every test on the
# normal build and skips the gates (the instrumented build takes as long as the normal one).
GATES ?= 1
ifneq ($(GATES),0)
test: build
	@bash scripts/run-tests.sh $(BUILD_DIR) end-to-end
	@bash scripts/run-gates.sh ci $(BUILD_DIR)
else
test: build
	@bash scripts/run-tests.sh $(BUILD_DIR) all
endif

# The whole suite (end-to-end scripts and OCR floors included) under ASan+UBSan on the
# instrumented build (build-gates); `coverage` runs the same and then checks line coverage.
test-asan: deps
	@bash scripts/run-gates.sh asan

coverage: deps
	@bash scripts/run-gates.sh coverage

bench: build
	@bash scripts/run-bench.sh $(BUILD_DIR)

# The distributed load test (bench/load/README.md): redis-server, the fake NCB and 4 docpipe
# processes (intake, 2 OCR workers, delivery) on this machine, 500 claim emails at once, then
# again with one OCR worker SIGKILLed halfway. Report in $(BUILD_DIR)/load/. Takes a while
# (OCR-bound); options: make load LOAD_ARGS="--emails 100 --no-kill".
LOAD_ARGS ?=
load: build
	@python3 bench/load/load_test.py --docpipe $(BUILD_DIR)/bin/docpipe --out $(BUILD_DIR)/load $(LOAD_ARGS)

# libFuzzer targets (tests/fuzz) built with clang in build-fuzz, 60 s each; see tests/fuzz/README.md.
fuzz: deps
	@bash scripts/run-fuzz.sh build-fuzz

install: build
	cmake --install $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) build-gates build-fuzz var
