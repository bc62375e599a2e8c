#!/usr/bin/env bash
# OCR readings of a folder of receipts, saved once as documents (pipelines/ocr-folder.yaml:
# preprocess, Tesseract psm 6, sink.files), so that bench_claims_eval --ocr-json can
# re-extract claim fields from them in seconds while the rules are tuned.
#
#   scripts/claims-ocr-dumps.sh DATA_DIR OUT_DIR [BUILD_DIR]
#   build/bin/bench_claims_eval --truth DATA_DIR --ocr-json OUT_DIR
#
# READING=psm4 or READING=thick saves the claims pipeline's second and third readings
# instead (pipelines/claims-local.yaml: Tesseract psm 4 on the cleaned page; psm 4 after
# thickening the strokes), for bench_claims_eval --ocr-json PSM6 --ocr-json PSM4
# --ocr-json THICK --reread-below 0.9 (the rereads as transform.claims_reread makes them).
# LANGUAGES=eng reads with other Tesseract languages than the shipped eng+msa (the first
# reading of an eng-first wiring, say); CLEAN_STEP adds keys to its first clean-up
# (CLEAN_STEP='min_width: 0': no scaling up of narrow pages). READING=sauvola reads psm 4
# after a contrast stretch and a local (Sauvola) threshold instead of the thickening;
# PREPROCESS_STEP='contrast: true, thicken: true' (transform.preprocess keys) measures
# another clean-up in that place.
#
# The images are not touched: source.directory moves what it has read, so it reads links
# to them from a scratch inbox. One process, one page at a time, one OpenMP thread, CPU
# (the readings are the shipped psm-6 path; the pipeline's concurrency does not change
# them).
set -euo pipefail
DATA=$(realpath "${1:?usage: claims-ocr-dumps.sh DATA_DIR OUT_DIR [BUILD_DIR]}")
OUT=$(realpath -m "${2:?usage: claims-ocr-dumps.sh DATA_DIR OUT_DIR [BUILD_DIR]}")
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${3:-build}")
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$SCRATCH/inbox" "$SCRATCH/state" "$OUT"
for f in "$DATA"/*.jpg "$DATA"/*.jpeg "$DATA"/*.png; do
  [ -e "$f" ] && ln -s "$f" "$SCRATCH/inbox/"
done
# follow_links: the inbox holds links to the images (source.directory refuses links by default).
sed -e 's/concurrency: [0-9]*/concurrency: 1/' \
    -e 's|^      path: ${DOCPIPE_INBOX:-../var/inbox}$|&\n      follow_links: true|' pipelines/ocr-folder.yaml > "$SCRATCH/ocr-folder.yaml"
grep -q 'follow_links: true' "$SCRATCH/ocr-folder.yaml" || { echo "claims-ocr-dumps.sh: could not set follow_links in the pipeline copy" >&2; exit 1; }
sed -i -e "s/languages: eng+msa/languages: ${LANGUAGES:-eng+msa}/" "$SCRATCH/ocr-folder.yaml"
# CLEAN_STEP='min_width: 0' adds transform.preprocess keys to the first clean-up (what scaling
# narrow pages up to 1000 pixels costs and buys, say).
if [ -n "${CLEAN_STEP:-}" ]; then
  sed -i -e "s/^      deskew: true$/      deskew: true\n      ${CLEAN_STEP//\//\\/}/" "$SCRATCH/ocr-folder.yaml"
fi
case "${READING:-psm6}" in
  psm6) ;;
  psm4|thick|sauvola)
    sed -i -e 's/psm: 6, page_timeout: [0-9]*s/psm: 4, page_timeout: 60s/' "$SCRATCH/ocr-folder.yaml"
    if [ "$READING" = thick ] || [ "$READING" = sauvola ]; then
      # As claims-local.yaml's thicken node: the 3x3 minimum on the cleaned page.
      python3 - "$SCRATCH/ocr-folder.yaml" <<'PY'
import os, sys
p = sys.argv[1]
s = open(p).read()
step = ("thicken: true" if os.environ["READING"] == "thick" else
        "contrast: true, binarize: sauvola")  # faint print: stretched, then thresholded locally
step = os.environ.get("PREPROCESS_STEP", step)  # another clean-up to measure
s = s.replace("  ocr:\n", "  thicken:\n    component: transform.preprocess\n    concurrency: 1\n"
              "    config: {device: \"${OCR_DEVICE:-auto}\", " + step + ", deskew: false, min_width: 0, max_width: 0}\n\n  ocr:\n", 1)
s = s.replace("clean -> ocr", "clean -> thicken -> ocr")
open(p, "w").write(s)
PY
    fi ;;
  *) echo "claims-ocr-dumps: READING is psm6, psm4, thick or sauvola" >&2; exit 2 ;;
esac
start=$(date +%s)
status=0
DOCPIPE_INBOX="$SCRATCH/inbox" DOCPIPE_OUT="$OUT" DOCPIPE_STATE_DIR="$SCRATCH/state" OCR_DEVICE=${OCR_DEVICE:-cpu} \
  OMP_THREAD_LIMIT=1 ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:0} LOG_LEVEL=${LOG_LEVEL:-warn} \
  "$BUILD_DIR/bin/docpipe" run --once -c "$SCRATCH/ocr-folder.yaml" | grep -v ' submitted  *-$' || status=$?
# docpipe exits 1 when a document failed (a corrupt image: reported above); the others are saved.
echo "claims-ocr-dumps: $(ls "$OUT"/*.json 2>/dev/null | wc -l) documents in $OUT, $(( $(date +%s) - start )) s"
