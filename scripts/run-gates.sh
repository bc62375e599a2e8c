#!/usr/bin/env bash
# Quality gates on one instrumented build (build-gates: ASan + UBSan + gcov, -O1, no CUDA,
# no benchmarks): the ctest suite runs clean under the sanitizers, then line coverage of
# core/, sdk/ and plugins/ (tests excluded) must reach COVERAGE_MIN percent.
#
#   scripts/run-gates.sh asan       the suite under ASan+UBSan        (make test-asan)
#   scripts/run-gates.sh coverage   the same run, then the coverage   (make coverage)
#   scripts/run-gates.sh ci [BUILD] both, on the unit and integration tests (make test); BUILD is
#                                   the normal build whose end-to-end tests ran instead
#
# `ci` leaves out the end-to-end tests (scripts/test-sets.sh), which `make test` runs on the
# normal build just before: separate docpipe processes, a browser, the OCR accuracy floors
# over saved receipts, which cost the most under the sanitizers. Every other test runs here
# only. The coverage figure is then that of the unit and integration tests (a lower bound).
#
# One build serves both because a second instrumented build would double CI's compile time
# on a 2-core machine; counting coverage from the sanitizer run changes no line counts.
set -euo pipefail
MODE=${1:-coverage}
NORMAL_BUILD_DIR=${2:-}
cd "$(dirname "$0")/.."
ROOT=$PWD
GATES_DIR=${GATES_BUILD_DIR:-build-gates}
COVERAGE_MIN=${COVERAGE_MIN:-80}
JOBS=${JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}  # all cores, whatever OpenMP is limited to

if [ ! -f "$GATES_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$GATES_DIR" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DCMAKE_C_FLAGS_DEBUG="-O1 -g1" \
    -DDOCPIPE_CUDA=OFF -DDOCPIPE_BUILD_BENCH=OFF -DDOCPIPE_SANITIZE=address,undefined -DDOCPIPE_COVERAGE=ON
fi
cmake --build "$GATES_DIR" -j"$JOBS"

# Counts from this run only.
find "$GATES_DIR" -name '*.gcda' -delete

# halt_on_error: a sanitizer report fails the test that caused it, naming the line. Leak
# suppressions cover third-party libraries only (tests/sanitizers/lsan.supp says which, why).
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0:strict_string_checks=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$ROOT/tests/sanitizers/ubsan.supp"
export OMP_THREAD_LIMIT=1
CTEST_ARGS=(${GATES_CTEST_ARGS:-})
if [ "$MODE" = ci ]; then
  source scripts/test-sets.sh
  CTEST_ARGS+=(-E "$END_TO_END_TESTS")
  # Each test runs once only if every test the normal build left to this one is here too: a
  # test that only the normal build defines (as bench.* is) must be named in END_TO_END_TESTS.
  if [ -n "$NORMAL_BUILD_DIR" ]; then
    # By test, not by case: a parameterised case's name can change with the build ("/0" or
    # its printed value), so "Malaysian/AmountTest.ReadsTheLastAmountOfTheLine/3_RM1_234_50"
    # is compared as "AmountTest.ReadsTheLastAmountOfTheLine".
    list_tests() {
      ctest --test-dir "$1" -N | sed -n 's/^ *Test *#[0-9]*: //p' |
        sed -E 's/ +# .*$//; s#^[A-Za-z0-9_]+/([^./]+\.)#\1#; s#^([^/]*\.[^/]*)/.*$#\1#' | sort -u
    }
    missing=$(comm -23 <(list_tests "$NORMAL_BUILD_DIR" | grep -Ev "$END_TO_END_TESTS" || true) \
                       <(list_tests "$GATES_DIR"))
    if [ -n "$missing" ]; then
      echo "gates: these tests of $NORMAL_BUILD_DIR are not in $GATES_DIR, so make test would run" \
           "them nowhere; add them to END_TO_END_TESTS in scripts/test-sets.sh:" >&2
      echo "$missing" | sed 's/^/  /' >&2
      exit 1
    fi
  fi
fi
echo "gates: ctest under ASan+UBSan in $GATES_DIR ${CTEST_ARGS[*]}"
JUNIT="$ROOT/$GATES_DIR/gates-junit.xml"
[[ "$GATES_DIR" = /* ]] && JUNIT="$GATES_DIR/gates-junit.xml"
CONSOLE="${JUNIT%.xml}.log"
# An earlier run's report or failed list must not stand in for this run's.
rm -f "$JUNIT" "$CONSOLE" "$GATES_DIR"/Testing/Temporary/LastTestsFailed*.log
if ! ctest --test-dir "$GATES_DIR" --output-on-failure -j"$JOBS" --timeout 900 --output-junit "$JUNIT" "${CTEST_ARGS[@]}" 2>&1 |
     tee "$CONSOLE"; then
  # LeakSanitizer's exit-time tracer sometimes segfaults after a test has passed (gcc 12's
  # runtime; scripts/sanitizer_tracer_crashes.py says how that is told apart). Only when
  # every failure is that crash are those tests run once more, leak check and all; any
  # other failure, or the crash twice, fails the gates.
  if ! crashed=$(python3 scripts/sanitizer_tracer_crashes.py "$JUNIT" "$CONSOLE"); then
    exit 1
  fi
  echo "gates: LeakSanitizer's tracer crashed after these tests passed; running them once more:" >&2
  echo "$crashed" | sed 's/^/  /' >&2
  ctest --test-dir "$GATES_DIR" --output-on-failure --timeout 900 --rerun-failed
fi

if [ "$MODE" = asan ]; then exit 0; fi
echo "gates: line coverage of core/, sdk/, plugins/ (tests excluded), minimum ${COVERAGE_MIN}%"
mkdir -p "$GATES_DIR/coverage"  # gcovr writes the HTML report into it but does not create it
gcovr --root "$ROOT" --object-directory "$GATES_DIR" -j "$JOBS" \
  --filter "$ROOT/core/" --filter "$ROOT/sdk/" --filter "$ROOT/plugins/" \
  --exclude '.*_test\.cpp$' --exclude '.*/tests/.*' \
  --gcov-ignore-parse-errors \
  --txt "$GATES_DIR/coverage.txt" --html-details "$GATES_DIR/coverage/index.html" \
  --print-summary --fail-under-line "$COVERAGE_MIN"
echo "gates: per-file report $GATES_DIR/coverage.txt, browsable $GATES_DIR/coverage/index.html"
