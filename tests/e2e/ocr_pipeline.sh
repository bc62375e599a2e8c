#!/usr/bin/env bash
# End to end: drop folder -> transform.pdf_pages -> ocr.tesseract -> sink.files with the
# docpipe binary. A good receipt is read; a truncated JPEG and an encrypted-looking file go
# to failed/ with their reason, and the run goes on (exit 1 because documents failed).
set -euo pipefail
DOCPIPE=$1
SOURCE_DIR=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$WORK/inbox"
cp "$SOURCE_DIR/tests/data/malaysian_receipt_test.jpg" "$WORK/inbox/receipt.jpg"
head -c 40000 "$SOURCE_DIR/tests/data/malaysian_receipt_test.jpg" > "$WORK/inbox/broken.jpg"
: > "$WORK/inbox/empty.png"
cat > "$WORK/p.yaml" <<YAML
state: {backend: memory}
nodes:
  inbox: {component: source.directory, config: {path: $WORK/inbox, settle_time: 0s}}
  pages: {component: transform.pdf_pages}
  ocr: {component: ocr.tesseract, concurrency: 2, config: {languages: eng+msa}}
  out: {component: sink.files, config: {path: $WORK/out}}
edges: [inbox -> pages -> ocr -> out]
YAML
set +e
"$DOCPIPE" run -c "$WORK/p.yaml" --once > "$WORK/summary.txt" 2> "$WORK/log.txt"
rc=$?
set -e
[ $rc = 1 ] || { cat "$WORK/summary.txt" "$WORK/log.txt"; fail "expected exit 1 (two bad files), got $rc"; }
grep -q "3 taken, 1 completed, 2 failed" "$WORK/summary.txt" || { cat "$WORK/summary.txt"; fail "summary"; }
grep -q '479.05' "$WORK/out/"*.json || fail "OCR text of the receipt lacks 479.05"
grep -q 'INV-2024-001234' "$WORK/out/"*.json || fail "OCR text lacks the invoice number"
grep -q "broken.jpg: truncated JPEG: the data ends at row" "$WORK/inbox/failed/broken.jpg.reason" || { cat "$WORK/inbox/failed/broken.jpg.reason"; fail "reason for the truncated JPEG"; }
grep -q "empty.png: empty file (0 bytes)" "$WORK/inbox/failed/empty.png.reason" || fail "reason for the empty file"
[ -e "$WORK/inbox/processed/receipt.jpg" ] || fail "the good receipt should be in processed/"
echo "ok: receipt OCR'd, bad files failed with reasons, the run went on"
