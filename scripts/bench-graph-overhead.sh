#!/usr/bin/env bash
# The per-document cost of the runtime, measured in pairs: each run of bench_graph_overhead
# times the runtime (job records; ledger off and on) and a bare oneTBB graph of the same
# shape in the same process, minutes apart at most. On a shared VM the machine's speed can
# change several-fold between runs, so a figure means something only beside the bare graph's
# figure from the same run; this prints both for every run.
#
#   scripts/bench-graph-overhead.sh [BUILD_DIR] [RUNS]      (defaults: build, 5)
#
# Goal (issue "Nothing lost, nothing twice"): >= 300,000 docs/s with job records and the
# ledger on, on the machine where the bare graph moved about 1.9 million docs/s.
set -euo pipefail
BUILD_DIR=${1:-build}
RUNS=${2:-5}
cd "$(dirname "$0")/.."
BENCH="$BUILD_DIR/bin/bench_graph_overhead"
[ -x "$BENCH" ] || { echo "bench-graph-overhead: $BENCH is not built (make build, or cmake --build $BUILD_DIR --target bench_graph_overhead)" >&2; exit 2; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for run in $(seq 1 "$RUNS"); do
  "$BENCH" --benchmark_filter='GraphOverhead/docs:100000/transform_concurrency:1|RawTbbGraph/docs:100000/transform_concurrency:1' \
    --benchmark_format=json > "$OUT/run-$run.json" 2> /dev/null
done
python3 - "$OUT" "$RUNS" << 'EOF'
import json, sys
out, runs = sys.argv[1], int(sys.argv[2])
def median(report, prefix):
    for b in report["benchmarks"]:
        if b["name"].startswith(prefix) and b.get("aggregate_name") == "median":
            return b["docs_per_second"]
    raise SystemExit(f"bench-graph-overhead: no median for {prefix} in the bench's output")
print("| run | bare oneTBB docs/s | runtime, ledger off | runtime, ledger on | ledger on / bare |")
print("|---|---|---|---|---|")
for run in range(1, runs + 1):
    report = json.load(open(f"{out}/run-{run}.json"))
    raw = median(report, "BM_RawTbbGraph/docs:100000/transform_concurrency:1")
    off = median(report, "BM_GraphOverhead/docs:100000/transform_concurrency:1/ledger:0")
    on = median(report, "BM_GraphOverhead/docs:100000/transform_concurrency:1/ledger:1")
    print(f"| {run} | {raw:,.0f} | {off:,.0f} | {on:,.0f} | {on / raw:.2f} |")
EOF
