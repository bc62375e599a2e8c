#!/usr/bin/env bash
# Claim-field accuracy over the SROIE dev split with the shipped path
# (image -> preprocess -> OCR -> claims), then the six original email bodies.
#
#   scripts/claims-eval.sh [BUILD_DIR] [DATA_DIR] [bench_claims_eval options...]
#
# DATA_DIR defaults to ../shared/data/sroie-dev (outside the repository). It first times
# plain `tesseract IMG stdout --psm 3` (OMP_THREAD_LIMIT=1, JOBS=2 at a time) on the same
# images, the speed yardstick, then the shipped pipeline with JOBS files at once.
# PIPELINE=FILE evaluates another pipeline; PLAIN_TESSERACT=0 skips the yardstick.
# SEEN_SHOPS=DIR[,DIR2] (default ../shared/data/sroie-train, the receipts the model is
# fitted on, when DATA is another folder) splits the figures into receipts of shops found
# there and of shops that are not: how the rules and the model do on shops never shown.
set -euo pipefail
BUILD_DIR=${1:-build}
cd "$(dirname "$0")/.."
DATA=${2:-../shared/data/sroie-dev}
[ -d "$DATA" ] || { echo "claims-eval: no data folder $DATA (give it as the second argument)" >&2; exit 2; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
COUNT=$(ls "$DATA"/*.jpg | wc -l)
JOBS=${JOBS:-2}
# The yardstick, in the same run: plain Tesseract (automatic layout, one OpenMP thread per
# process, JOBS processes at once) on the same images, its text thrown away.
if [ "${PLAIN_TESSERACT:-1}" = 1 ] && command -v tesseract > /dev/null; then
  echo "== plain tesseract IMG stdout --psm 3 over $COUNT receipts, $JOBS at a time"
  start=$(date +%s.%N)
  ls "$DATA"/*.jpg | OMP_THREAD_LIMIT=1 xargs -P "$JOBS" -I{} tesseract {} stdout --psm 3 > /dev/null 2>&1
  plain=$(echo "$(date +%s.%N) - $start" | bc)
  printf '   %.1f s (%.2f s per receipt)\n' "$plain" "$(echo "$plain / $COUNT" | bc -l)"
fi
# Start-up, apart: plugins, pipeline and the OCR engines loaded, one blank page read (what a
# `docpipe extract` of one file pays on top of its OCR).
if command -v convert > /dev/null; then
  convert -size 200x100 xc:white "$OUT/blank.png"
  start=$(date +%s.%N)
  OCR_DEVICE=cpu "$BUILD_DIR/bin/docpipe" extract ${PIPELINE:+-c "$PIPELINE"} "$OUT/blank.png" > /dev/null 2>&1 || true
  printf '== docpipe extract start-up (one blank page): %.2f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"
fi
echo "== docpipe extract over $COUNT receipts in $DATA, $JOBS at a time"
start=$(date +%s.%N)
OCR_DEVICE=cpu "$BUILD_DIR/bin/docpipe" extract -j "$JOBS" ${PIPELINE:+-c "$PIPELINE"} --metrics "$OUT/metrics.prom" "$DATA"/*.jpg \
  > "$OUT/results.jsonl" || true
took=$(echo "$(date +%s.%N) - $start" | bc)
printf '   %.1f s (%.2f s per receipt)' "$took" "$(echo "$took / $COUNT" | bc -l)"
[ -n "${plain:-}" ] && printf ', %.2fx plain tesseract' "$(echo "$took / $plain" | bc -l)"
echo
# Every Tesseract page reading the run paid for, the turned tries of pages lying sideways
# included (docpipe_ocr_turned_readings_total), from the run's counters.
awk '/^docpipe_ocr_pages_total/ {pages += $2} /^docpipe_ocr_turned_readings_total/ {turned += $2}
     END {printf "   Tesseract page readings: %d (first readings and rereads %d, turned tries %d)\n", pages + turned, pages, turned}' "$OUT/metrics.prom" 2> /dev/null || true
SEEN_SHOPS=${SEEN_SHOPS-../shared/data/sroie-train}
seen=()
if [ -n "$SEEN_SHOPS" ] && [ -d "${SEEN_SHOPS%%,*}" ] && [ "$(realpath "${SEEN_SHOPS%%,*}")" != "$(realpath "$DATA")" ]; then
  seen=(--seen-shops "$SEEN_SHOPS")
fi
"$BUILD_DIR/bin/bench_claims_eval" --truth "$DATA" --results "$OUT/results.jsonl" "${seen[@]}" "${@:3}"
echo
echo "== email bodies (original fixtures): ctest -R EmailBodies"
"$BUILD_DIR/bin/claims_test" --gtest_filter='EmailBodies.*' | tail -1
