#!/usr/bin/env bash
# Runs the whole test suite with ctest. Tests start the services they need themselves
# (each on a free loopback port, stopped by pid), so nothing has to be running first.
set -euo pipefail
BUILD_DIR=${1:-build}
cd "$(dirname "$0")/.."
export OMP_THREAD_LIMIT=1
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" --timeout 600
