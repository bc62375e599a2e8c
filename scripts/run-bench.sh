#!/usr/bin/env bash
# Runs the benchmarks and prints their medians, then the claims accuracy and speed on the dev
# receipts (BENCH_CLAIMS_TRAIN=1 adds train out of fold). Numbers depend on the machine; the issue
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
# Issue 13's claims benchmark: the shipped claims path on the 60 dev receipts (kept for
# reporting), timed against plain Tesseract on the same images in the same run. Goals on
# receipts not fitted on: total and date >= 95%, company >= 90%, address >= 80%, >= 98% both
# right in the high band with >= half of the receipts in it, time <= 1x plain Tesseract.
if [ -d ../shared/data/sroie-dev ]; then
  echo "== claims_eval: the shipped claims path on ../shared/data/sroie-dev, 2 at a time, against plain tesseract --psm 3"
  bash scripts/claims-eval.sh "$BUILD_DIR"
else
  echo "== claims_eval: skipped: no ../shared/data/sroie-dev (scripts/claims-eval.sh BUILD_DIR DATA_DIR runs it on another folder)"
fi
# The train figure out of fold (5 folds by shop, 10 splits) reads the 240 train receipts
# again (about 10 minutes on 2 cores), so it runs only when asked for.
if [ "${BENCH_CLAIMS_TRAIN:-0}" = 1 ] && [ -d ../shared/data/sroie-train ]; then
  echo "== claims_eval, train out of fold: scripts/fit-claims-confidence.py --dry-run --repeats 10"
  python3 scripts/fit-claims-confidence.py --data ../shared/data/sroie-train --build "$BUILD_DIR" --dry-run --repeats 10
else
  echo "   (train, out of fold by shop: BENCH_CLAIMS_TRAIN=1 make bench, or scripts/fit-claims-confidence.py --data ../shared/data/sroie-train --dry-run --repeats 10)"
fi
