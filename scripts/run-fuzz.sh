#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) in their
# own build folder, runs each for FUZZ_SECONDS (60) on its corpus in tests/fuzz/corpus/<name>,
# then merges what the run found back into that corpus, minimised. Fails on any crash,
# sanitizer report, leak, timeout or out-of-memory; the input that did it is left under
# <build>/fuzz-artifacts/<name>/ and named in the output.
#
# Usage: scripts/run-fuzz.sh [BUILD_DIR]       (default build-fuzz)
# Environment: FUZZ_SECONDS (60), FUZZ_TARGETS (all: "pipeline_yaml mime image_header
# amount_date admin_request pdf_content"), JOBS (nproc), FUZZ_MERGE=0 to leave the corpora untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${1:-build-fuzz}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-"pipeline_yaml mime image_header amount_date admin_request pdf_content"}
JOBS=${JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
CORPUS_ROOT=$ROOT/tests/fuzz/corpus

# Longest input per target. Each target ignores longer ones anyway; telling libFuzzer keeps
# it from spending the minute growing inputs that do nothing, and the kept files small.
max_len() {
    case $1 in
    pipeline_yaml) echo 4096 ;;
    mime) echo 8192 ;;
    image_header) echo 8192 ;;
    amount_date) echo 512 ;;
    admin_request) echo 2048 ;;
    pdf_content) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

# clang and libFuzzer (compiler-rt) are needed by `make fuzz` only, so install-deps.sh leaves
# them out of every other build; install them here when missing (Debian 12: clang 14).
if ! command -v clang++ >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q 'install ok installed'; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "run-fuzz: installing clang libclang-rt-14-dev"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-rt-14-dev ||
        { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-rt-14-dev; }
fi
for tool in clang clang++; do
    command -v "$tool" >/dev/null || { echo "run-fuzz: $tool not found; install it: apt-get install clang libclang-rt-14-dev" >&2; exit 1; }
done
# libFuzzer ships in the compiler-rt package, not with clang itself.
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
    clang++ -x c++ -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
    echo "run-fuzz: clang cannot link libFuzzer; install it: apt-get install libclang-rt-14-dev" >&2
    exit 1
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
start=$(date +%s)
# Only what the fuzz targets link is built: no CUDA (nvcc takes no -fsanitize), no benchmarks.
mkdir -p "$BUILD_DIR"
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDOCPIPE_FUZZ=ON -DDOCPIPE_CUDA=OFF \
    -DDOCPIPE_BUILD_BENCH=OFF "${launcher[@]}" >"$BUILD_DIR/configure.log" 2>&1 ||
    { cat "$BUILD_DIR/configure.log"; exit 1; }
binaries=()
for t in $TARGETS; do binaries+=("${t}_fuzz"); done
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${binaries[@]}"
echo "run-fuzz: built ${binaries[*]} in $(($(date +%s) - start)) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in $TARGETS; do
    bin=$BUILD_DIR/bin/${t}_fuzz
    corpus=$CORPUS_ROOT/$t
    work=$BUILD_DIR/fuzz-work/$t
    artifacts=$BUILD_DIR/fuzz-artifacts/$t
    rm -rf "$work" && mkdir -p "$work/new" "$work/merged" "$artifacts" "$corpus"
    echo "run-fuzz: $t for ${SECONDS_PER_TARGET} s (corpus: $(ls "$corpus" | wc -l) files)"
    # New finds go to work/new (the first folder); the kept corpus is read as the second.
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a bomb that got past a limit.
    if ! "$bin" "$work/new" "$corpus" -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$t")" -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$artifacts/" -print_final_stats=1 >"$work/log" 2>&1; then
        echo "run-fuzz: $t FAILED; the end of its log ($work/log):" >&2
        tail -60 "$work/log" >&2
        ls "$artifacts" >&2
        failed+=("$t")
        continue
    fi
    grep -E '^stat::number_of_executed_units|^stat::new_units_added|^stat::peak_rss_mb' "$work/log" | sed "s/^/run-fuzz: $t /"
    if [ "${FUZZ_MERGE:-1}" = 1 ]; then
        # Minimise: hand-written seeds (seed-*) and inputs that once crashed a target
        # (regress-*) always stay; of everything else, old and new, only what adds coverage.
        # -use_counters=0: coverage here means edges reached, not how often each ran; with
        # hit counts every parser loop length counts as new and admin_request kept 1,400
        # files after one minute instead of about 400.
        find "$corpus" -maxdepth 1 -type f \( -name 'seed-*' -o -name 'regress-*' \) -exec cp {} "$work/merged/" \;
        mkdir -p "$work/others"
        find "$corpus" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'regress-*' -exec cp {} "$work/others/" \;
        "$bin" -merge=1 -use_counters=0 -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 "$work/merged" "$work/others" "$work/new" \
            >"$work/merge.log" 2>&1 || { echo "run-fuzz: $t: merge failed:" >&2; tail -30 "$work/merge.log" >&2; failed+=("$t"); continue; }
        find "$corpus" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'regress-*' -delete
        find "$work/merged" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'regress-*' -exec cp {} "$corpus/" \;
        echo "run-fuzz: $t corpus now $(ls "$corpus" | wc -l) files, $(du -sk "$corpus" | cut -f1) KiB"
    fi
done

echo "run-fuzz: done in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "run-fuzz: FAILED: ${failed[*]} (inputs under $BUILD_DIR/fuzz-artifacts/; replay one with $BUILD_DIR/bin/<name>_fuzz FILE)" >&2
    exit 1
fi
echo "run-fuzz: 0 crashes in: $TARGETS"
