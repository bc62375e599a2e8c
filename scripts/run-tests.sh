#!/usr/bin/env bash
# Runs the whole test suite with ctest. Tests start the services they need themselves
# (each on a free loopback port, stopped by pid), so nothing has to be running first.
#
#   scripts/run-tests.sh BUILD_DIR            every test                   (make test GATES=0)
#   scripts/run-tests.sh BUILD_DIR end-to-end the end-to-end tests only     (make test)
#
# `make test` runs the end-to-end tests here and every other test under ASan + UBSan in the
# gates build (scripts/run-gates.sh ci), so each test runs once; scripts/test-sets.sh says
# which is which.
set -euo pipefail
BUILD_DIR=${1:-build}
SET=${2:-all}
cd "$(dirname "$0")/.."
source scripts/test-sets.sh
CTEST_ARGS=()
case "$SET" in
  all) ;;
  end-to-end) CTEST_ARGS+=(-R "$END_TO_END_TESTS") ;;
  *) echo "run-tests.sh: unknown test set '$SET' (use all or end-to-end)" >&2; exit 2 ;;
esac
# The core count, before OMP_THREAD_LIMIT=1 is set: nproc counts no more cores than OpenMP may
# use, so `nproc` after the export says 1 and the suite would run one test at a time.
JOBS=${JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
export OMP_THREAD_LIMIT=1
echo "tests: ctest on $BUILD_DIR, set '$SET', $JOBS at a time"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" --timeout 600 "${CTEST_ARGS[@]}"
