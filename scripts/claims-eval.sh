#!/usr/bin/env bash
# Claim-field accuracy over the SROIE dev split with the shipped path
# (image -> preprocess -> OCR -> claims), then the six original email bodies.
#
#   scripts/claims-eval.sh [BUILD_DIR] [DATA_DIR]
#
# DATA_DIR defaults to ../shared/data/sroie-dev (outside the repository).
set -euo pipefail
BUILD_DIR=${1:-build}
cd "$(dirname "$0")/.."
DATA=${2:-../shared/data/sroie-dev}
[ -d "$DATA" ] || { echo "claims-eval: no data folder $DATA (give it as the second argument)" >&2; exit 2; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "== docpipe extract over $(ls "$DATA"/*.jpg | wc -l) receipts in $DATA"
start=$(date +%s)
OCR_DEVICE=cpu "$BUILD_DIR/bin/docpipe" extract "$DATA"/*.jpg > "$OUT/results.jsonl" || true
echo "   $(( $(date +%s) - start )) s"
"$BUILD_DIR/bin/bench_claims_eval" --truth "$DATA" --results "$OUT/results.jsonl" "${@:3}"
echo
echo "== email bodies (original fixtures): ctest -R EmailBodies"
"$BUILD_DIR/bin/claims_test" --gtest_filter='EmailBodies.*' | tail -1
