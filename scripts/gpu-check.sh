#!/usr/bin/env bash
# One command for a machine with a CUDA GPU: builds docpipe with the CUDA kernels, runs the
# GPU tests (CUDA against the CPU reference, pixel for pixel) and the preprocessing
# benchmark (CPU and CUDA rows side by side), and prints the results.
#
#   scripts/gpu-check.sh [BUILD_DIR]        # default build-gpu
#
# Exits non-zero when the build or a test fails, or when no GPU is usable (the GPU tests
# would only skip, which proves nothing).
set -euo pipefail
BUILD_DIR=${1:-build-gpu}
cd "$(dirname "$0")/.."
export OMP_THREAD_LIMIT=1

echo "== GPU"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
  echo "nvidia-smi not found"
fi
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "gpu-check: no nvcc (CUDA toolkit) on this machine" >&2; exit 2; }
[ -x /usr/local/cuda/bin/nvcc ] && export PATH=/usr/local/cuda/bin:$PATH

# Idempotent: apt is not touched when every package is there (the list grows: libtiff-dev and
# libheif-dev came in session 33).
echo "== build dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh

echo "== build with CUDA (DOCPIPE_CUDA=ON) in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DDOCPIPE_CUDA=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)" --target docpipe-imaging docpipe-tesseract preprocess_test bench_preprocess >/dev/null

echo "== device as docpipe sees it"
"$BUILD_DIR/bin/preprocess_test" --gtest_filter='PreprocessComponent.DeviceIsReported*' --gtest_brief=1 | tail -3

echo "== GPU tests: CUDA against the CPU reference"
out=$("$BUILD_DIR/bin/preprocess_test" --gtest_filter='CudaMatchesCpu.*:CudaPath.*' 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E '^\[ +(OK|FAILED|SKIPPED) +\]|PASSED|FAILED'
if echo "$out" | grep -q 'SKIPPED \]'; then
  echo "gpu-check: the GPU tests skipped: no usable CUDA device" >&2
  exit 3
fi

echo "== all preprocessing tests"
"$BUILD_DIR/bin/preprocess_test" --gtest_brief=1 | tail -2

echo "== bench/preprocess: megapixels/second per step, CPU vs CUDA (CUDA includes the copies)"
"$BUILD_DIR/bin/bench_preprocess" --benchmark_min_time=0.5 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  2>&1 | grep -E 'median|ERROR' | grep -v 'Library was built as DEBUG'
