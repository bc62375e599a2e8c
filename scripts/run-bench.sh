#!/usr/bin/env bash
# Runs the benchmarks and prints their medians. Numbers depend on the machine; the issue
# notes record them with the machine they were taken on.
set -euo pipefail
BUILD_DIR=${1:-build}
cd "$(dirname "$0")/.."
export OMP_THREAD_LIMIT=1
echo "== graph_overhead: 5-node no-op pipeline, 2 sinks (docs/second; goal >= 300000 with job records and the ledger; BM_RawTbbGraph is bare oneTBB)"
"$BUILD_DIR/bin/bench_graph_overhead" --benchmark_counters_tabular=true 2>&1 | grep -v 'Library was built as DEBUG'
echo "   (paired runs, bare oneTBB beside each: scripts/bench-graph-overhead.sh $BUILD_DIR 5)"
echo "== admin_api: 50 concurrent clients, 100,000 jobs (goal: p99 < 50 ms)"
"$BUILD_DIR/bin/bench_admin_api"
echo "== ocr_eval: CER and seconds per page on ../shared/data/sroie-dev (one core)"
"$BUILD_DIR/bin/bench_ocr_eval" --psm 6,4,3
echo "== preprocess: CPU megapixels/second per step on the sample receipt"
"$BUILD_DIR/bin/bench_preprocess" 2>&1 | grep -v 'Library was built as DEBUG'
echo "== delivery: sink.ncb with 8 workers against the fake NCB (goal: far above the 2 claims/s OCR delivers; p50/p99 added per claim)"
"$BUILD_DIR/bin/bench_delivery" --claims 2000 --workers 8
