#!/usr/bin/env bash
# End to end: pipelines/claims-local.yaml as shipped, over the sample claim emails plus a
# broken one, with real GMime, Tesseract and SQLite; then `docpipe extract`.
#  - the clinic receipt's claim is an NCB record with 479.05 (not the subtotal 435.50)
#  - a conflicting body sends claims to review with the conflict named
#  - an email without attachment is `skipped`; a broken one fails with a reason file and
#    the run goes on
#  - extract prints one JSON line per claim document
set -euo pipefail
DOCPIPE=$1
SRC=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$WORK/inbox"
cp "$SRC"/examples/inbox/*.eml "$WORK/inbox/"
head -c 3000 /dev/zero > "$WORK/inbox/99-garbage.eml"  # no header, no body: not an email
export DOCPIPE_INBOX="$WORK/inbox" DOCPIPE_OUT="$WORK/out" DOCPIPE_STATE_DIR="$WORK" ADMIN_LISTEN=127.0.0.1:0 OCR_DEVICE=cpu
status=0
"$DOCPIPE" run -c "$SRC/pipelines/claims-local.yaml" --once > "$WORK/summary.txt" 2> "$WORK/log.txt" || status=$?
cat "$WORK/summary.txt"
[ "$status" = 1 ] || fail "--once must exit 1 when a document failed (got $status)"
grep -q "documents: 6 taken, 5 completed, 1 failed" "$WORK/summary.txt" || fail "summary: $(head -1 "$WORK/summary.txt")"

ls "$WORK/out/ncb"/*.json >/dev/null 2>&1 || fail "no NCB record written"
python3 - "$WORK" <<'PY'
import json, sqlite3, sys
from pathlib import Path
work = Path(sys.argv[1])
def fail(msg):
    print("FAIL:", msg); sys.exit(1)
records = [json.loads(p.read_text()) for p in sorted((work / "out" / "ncb").glob("*.json"))]
if len(records) != 1: fail(f"expected 1 high-confidence NCB record, got {len(records)}")
r = records[0]
if r["Claim Amount"] != 479.05: fail(f"Claim Amount {r['Claim Amount']} (435.50 would be the subtotal)")
for key, want in (("Event date", "2024-12-24"), ("Invoice Number", "INV-2024-001234"), ("Policy Number", "POL987654321"),
                  ("source_email_id", "sample-01@docpipe.example"), ("source_filename", "malaysian_receipt_test.jpg"),
                  ("confidence_level", "high")):
    if r.get(key) != want: fail(f"{key} = {r.get(key)!r}, want {want!r}")
if not r["Submission Date"].endswith("+08:00"): fail("Submission Date without +08:00: " + r["Submission Date"])
review = [json.loads(p.read_text()) for p in (work / "out" / "review").glob("*.json")]
if len(review) != 4: fail(f"expected 4 claims in review, got {len(review)}")
reasons = " | ".join(d["attributes"].get("review_reason", "") for d in review)
if "receipt says" not in reasons: fail("review reasons do not name the conflict: " + reasons)
db = sqlite3.connect(work / "state.db")
jobs = {json.loads(d)["filename"]: json.loads(d) for (d,) in db.execute("SELECT data FROM jobs")}
want = {"01-clinic-receipt.eml": "submitted", "02-malay-two-receipts.eml": "review", "03-html-forwarded.eml": "review",
        "04-no-attachment.eml": "skipped", "05-mixed-language.eml": "review", "99-garbage.eml": "failed"}
for name, status in want.items():
    got = jobs.get(name, {}).get("status")
    if got != status: fail(f"job {name}: status {got}, want {status}")
if "no claim attachment" not in jobs["04-no-attachment.eml"]["last_error"]: fail("skipped job without its reason")
high = jobs["01-clinic-receipt.eml"]
if abs(high["fields"]["total_amount"]["value"] - 479.05) > 1e-9 or high["confidence_level"] != "high":
    fail("the submitted job does not carry its claim fields")
print("claims-local: NCB record, review queue, skipped and failed jobs as expected")
PY
reason=$(cat "$WORK/inbox/failed/99-garbage.eml.reason")
echo "$reason" | grep -q "not an email" || fail "garbage email reason: $reason"
grep -q "fsync\|panic\|terminate" "$WORK/log.txt" && fail "unexpected crash text in the log"

# docpipe extract: the shipped pipeline by default, one line per claim document.
"$DOCPIPE" extract -j 2 "$SRC/examples/inbox/sources/malaysian_receipt_test.jpg" "$SRC/examples/inbox/02-malay-two-receipts.eml" \
  "$SRC/examples/inbox/04-no-attachment.eml" > "$WORK/extract.jsonl" 2> "$WORK/extract.err" || true
python3 - "$WORK/extract.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
def fail(msg):
    print("FAIL:", msg); sys.exit(1)
if len(lines) != 4: fail(f"expected 4 lines (1 + 2 attachments + 1 skipped), got {len(lines)}")
first = lines[0]
if first["fields"]["total_amount"]["value"] != 479.05 or first["route"] != "high": fail(f"receipt: {first['route']} {first['fields'].get('total_amount')}")
if "TOTAL" not in first["pages"][0]["text"]: fail("no OCR text in pages[].text")
if not lines[1]["file"].endswith("02-malay-two-receipts.eml#resit 1.jpg"): fail("attachment label: " + lines[1]["file"])
if not lines[3]["route"].startswith("skipped: no claim attachment"): fail("no-attachment route: " + lines[3]["route"])
for l in lines:
    for key in ("file", "fields", "confidence", "route", "warnings", "pages"):
        if key not in l: fail(f"{key} missing in {l['file']}")
print("extract: JSON lines as expected")
PY
echo "PASS"
