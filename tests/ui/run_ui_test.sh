#!/usr/bin/env bash
# The review UI in headless Chromium against the real docpipe binary: a claims pipeline
# (drop folder -> mime -> pages -> OCR -> claims -> router -> NCB | review queue) with the fake
# NCB, fed claim emails that land in the review queue (one naming its provider
# `<img src=x onerror=alert(1)>`), one the NCB takes, and one broken email (a dead letter).
# Then tests/ui/ui_test.js drives the UI with playwright-core. Screenshots of each page go to
# ARTIFACTS.
# Usage: run_ui_test.sh DOCPIPE SOURCE_DIR NODE_DIR ARTIFACTS
#   NODE_DIR: where tests/ui/npm_install.sh installed playwright-core
set -uo pipefail
DOCPIPE=$1
SRC=$(cd "$2" && pwd)
NODE_DIR=$3
ARTIFACTS=$4
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-ui-XXXXXX")
FAKE_PID=""
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2> /dev/null && wait "$PID" 2> /dev/null
    [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2> /dev/null && wait "$FAKE_PID" 2> /dev/null
    if [ -d "$ARTIFACTS" ]; then cp "$WORK/log.txt" "$ARTIFACTS/docpipe.log" 2> /dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
fail() { echo "FAIL: $*"; tail -30 "$WORK/log.txt" 2> /dev/null; exit 1; }

# A missing browser is a failure, not a skip: CI installs it (scripts/install-deps.sh).
[ -x "$CHROMIUM" ] || fail "headless Chromium not found at $CHROMIUM: install Debian's chromium package (scripts/install-deps.sh does), or set CHROMIUM"
[ -f "$NODE_DIR/node_modules/playwright-core/package.json" ] \
    || fail "playwright-core is not installed in $NODE_DIR (the ui.npm_install test does it: npm ci from tests/ui/package-lock.json)"
command -v node > /dev/null || fail "node is not installed"
rm -rf "$ARTIFACTS" && mkdir -p "$ARTIFACTS"

mkfifo "$WORK/fake.out"
python3 "$SRC/tests/fakes/fake_ncb.py" --port 0 --api-key ncb-key > "$WORK/fake.out" 2> "$WORK/fake.log" &
FAKE_PID=$!
read -r -t 15 _ NCB_PORT < "$WORK/fake.out" || fail "the fake NCB did not start"
exec 3< "$WORK/fake.out"
NCB="http://127.0.0.1:$NCB_PORT"

# The inbox: two shipped samples that go to review, three made here, and a broken one.
mkdir -p "$WORK/inbox"
cp "$SRC/examples/inbox/02-malay-two-receipts.eml" "$SRC/examples/inbox/03-html-forwarded.eml" "$WORK/inbox/"
# The same receipt as a PDF (a browser cannot show it; the review UI gets its rendered page):
# at 300 dpi, so pdf_pages' 300 dpi raster is the JPEG's 1240 x 1748.
command -v img2pdf > /dev/null || fail "img2pdf is not installed (scripts/install-deps.sh installs it)"
img2pdf --imgsize 300dpi "$SRC/examples/inbox/sources/malaysian_receipt_test.jpg" -o "$WORK/receipt.pdf" || fail "img2pdf failed"
# The markup-named provider's receipt without its letterhead (the top 240 rows), so that the
# name the email gives is the claim's: with the letterhead, the receipt's "KLINIK MEDIVIRON" is
# calibrated at 0.915 and outweighs the email's "Provider:" line (extractor.cpp, combine). Cut,
# the receipt's best guess is a heading at under 0.8.
command -v convert > /dev/null || fail "ImageMagick's convert is not installed (scripts/install-deps.sh installs it)"
convert "$SRC/examples/inbox/sources/malaysian_receipt_test.jpg" -gravity north -chop 0x240 "$WORK/no-letterhead.jpg" \
    || fail "convert could not cut the receipt's letterhead"
python3 - "$SRC/examples/inbox/sources/malaysian_receipt_test.jpg" "$WORK/inbox" "$WORK/receipt.pdf" "$WORK/no-letterhead.jpg" <<'PY'
import sys
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
receipt, out, pdf = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]), Path(sys.argv[3]).read_bytes()
no_letterhead = Path(sys.argv[4]).read_bytes()
def mail(name, n, body, pdf_receipt=False, winmail=False, image=None):
    m = EmailMessage(policy=SMTP)
    m["From"] = "Siti binti Hassan <siti@example.my>"
    m["To"] = "claims@tpa.example.my"
    m["Subject"] = f"Claim {n}"
    m["Date"] = "Fri, 27 Dec 2024 10:0%d:00 +0800" % n
    m["Message-ID"] = f"<ui-test-{n}@docpipe.example>"
    m.set_content(body)
    if pdf_receipt:
        m.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"receipt-{n}.pdf")
    else:
        m.add_attachment(image or receipt, maintype="image", subtype="jpeg", filename=f"receipt-{n}.jpg")
    if winmail:  # a damaged Outlook winmail.dat beside the receipt: named on the review screen
        m.add_attachment(b"\x78\x9f\x3e\x22" + bytes(2000), maintype="application", subtype="ms-tnef", filename="winmail.dat")
    (out / name).write_bytes(m.as_bytes())
# The body's total disagrees with the receipt's 479.05: the claim goes to review with a conflict;
# everything else NCB needs is there, so an approved correction is accepted.
mail("approve-me.eml", 1, "Member ID: MEM123456789\nPolicy No: POL987654321\nReceipt Number: INV-2024-001234\n"
     "Total Amount: RM 512.00\n", winmail=True)
# Its member name holds a right-to-left override (U+202E), which turned the text after it
# around on the page: shown as its code point instead.
mail("xss-provider.eml", 2, "Member ID: MEM555000111\nPolicy No: POL555000111\nMember Name: ALI \u202eBAKAR\n"
     "Provider: <img src=x onerror=alert(1)>\nTotal Amount: RM 99.00\n", image=no_letterhead)
# Like approve-me (the body's total disagrees with the receipt's: review), as a PDF.
mail("pdf-receipt.eml", 3, "Member ID: MEM123456780\nPolicy No: POL987654320\nReceipt Number: INV-2024-001235\n"
     "Total Amount: RM 512.00\n", pdf_receipt=True)
PY
head -c 3000 /dev/zero > "$WORK/inbox/99-garbage.eml"

ALICE=alice-ui-test-0123456789abcdef01234567
BOB=bob-ui-test-0123456789abcdef0123456789ab
cat > "$WORK/p.yaml" <<YAML
version: 1
state: {backend: sqlite, path: $WORK/state.db}
admin:
  listen: 127.0.0.1:0
  api_keys:
    - {label: alice, key: "$ALICE"}
    - {label: bob, key: "$BOB"}
  approved_node: ncb_high
  rate_limit_per_second: 500
  rate_limit_burst: 1000
nodes:
  inbox:
    component: source.directory
    config: {path: $WORK/inbox, settle_time: 0s, patterns: ["*.eml"]}
  mime:
    component: transform.mime
    config: {max_attachments: 20, min_image_bytes: 8192}
  pages:
    component: transform.pdf_pages
    config: {dpi: 300, max_pages: 20, text_layer: use}
  clean:
    component: transform.preprocess
    concurrency: 2
    config: {device: cpu, deskew: true, binarize: "off"}
  ocr:
    component: ocr.tesseract
    concurrency: 2
    config: {languages: eng+msa, psm: 6, page_timeout: 120s}
  claims:
    component: transform.claims
  router:
    component: transform.confidence_router
    config: {high: 0.90, medium: 0.75, qa_sample_rate: 0.0}
  ncb_high:
    component: sink.ncb
    retry: {attempts: 3, initial_backoff: 200ms, max_backoff: 1s}
    config: {base_url: "$NCB/api/v1", api_key: ncb-key}
  ncb_medium:
    component: sink.ncb
    retry: {attempts: 3, initial_backoff: 200ms, max_backoff: 1s}
    config: {base_url: "$NCB/api/v1", api_key: ncb-key, flag_for_review: true}
  review:
    component: sink.review
    config: {reason: "low extraction confidence"}
edges:
  - inbox -> mime -> pages -> clean -> ocr -> claims -> router
  - router.high -> ncb_high
  - router.medium -> ncb_medium
  - router.low -> review
YAML
export OMP_THREAD_LIMIT=1
start_docpipe "$WORK/p.yaml" 300

# Wait until every email's job has settled (OCR takes a while on a busy machine).
python3 - "$BASE" "$ALICE" <<'PY' || fail "the jobs did not settle"
import json, sys, time, urllib.request
base, key = sys.argv[1], sys.argv[2]
deadline = time.time() + 480
while time.time() < deadline:
    req = urllib.request.Request(base + "/api/v1/jobs?limit=100", headers={"X-API-Key": key})
    jobs = json.load(urllib.request.urlopen(req))["data"]
    settled = [j for j in jobs if j["status"] not in ("received", "processing", "extracted")]
    if len(jobs) >= 6 and len(settled) == len(jobs):
        print("jobs settled:", ", ".join(f"{j['filename']}={j['status']}" for j in jobs))
        sys.exit(0)
    time.sleep(1)
print("jobs:", [(j["filename"], j["status"]) for j in jobs])
sys.exit(1)
PY

NODE_PATH="$NODE_DIR/node_modules" BASE="$BASE" KEY_ALICE="$ALICE" KEY_BOB="$BOB" NCB="$NCB" ARTIFACTS="$ARTIFACTS" \
    CHROMIUM="$CHROMIUM" node "$SRC/tests/ui/ui_test.js"
status=$?
kill "$PID" && wait "$PID" 2> /dev/null
PID=""
for k in "$ALICE" "$BOB"; do
    grep -qF "$k" "$WORK/log.txt" "$WORK/out.txt" && fail "an admin key appears in docpipe's log"
done
[ "$status" = 0 ] || fail "the browser test failed (screenshots in $ARTIFACTS)"
echo "ui browser test: ok (screenshots in $ARTIFACTS)"
