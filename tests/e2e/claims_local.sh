#!/usr/bin/env bash
# End to end: pipelines/claims-local.yaml as shipped, over the sample claim emails plus a
# broken one, with real GMime, Tesseract and SQLite; then `docpipe extract`.
#  - the clinic receipt's claim is an NCB record with 479.05 (not the subtotal 435.50)
#  - a conflicting body sends claims to review with the conflict named
#  - a receipt zipped by its sender is read from the ZIP, and one sent by Outlook inside its
#    winmail.dat (TNEF) is read from that; both are submitted like the plain one
#  - the clinic receipt sent again in a new email (new Message-ID, same file) is `skipped` as a
#    duplicate of the first job, not booked twice (transform.dedup after transform.mime)
#  - an email without attachment is `skipped`; a broken one, and one whose only attachment
#    is a damaged winmail.dat, fail with a reason file and the run goes on
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
# The clinic receipt's email again, from two other claimants, with the receipt zipped and
# inside an Outlook winmail.dat (each their own scan: a JPEG comment makes other bytes); an
# Outlook email whose only attachment is a damaged winmail.dat, which fails naming it; and
# the first claimant's receipt sent again, byte for byte, in a new email.
python3 - "$SRC/examples/inbox/01-clinic-receipt.eml" "$WORK/inbox" <<'PY'
import email, email.policy, io, struct, sys, zipfile
from email.message import EmailMessage
src = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
original = next(p for p in src.iter_attachments()).get_content()
def scan_of(jpeg, who):  # the same picture, other bytes: a JPEG comment after SOI
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(who) + 2) + who + jpeg[2:]
jpeg = scan_of(original, b"zipped")
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("scans/receipt.jpg", jpeg)
    z.writestr("__MACOSX/scans/._receipt.jpg", b"x" * 200)
def tnef_record(level, attribute, data):  # MS-OXTNEF: level, id, length, data, checksum
    return struct.pack("<BII", level, attribute, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)
long_name = "Klinik receipt.jpg".encode("utf-16-le") + b"\0\0"
properties = (struct.pack("<I", 2) + struct.pack("<II", 0x37050003, 1)  # PR_ATTACH_METHOD: by value
              + struct.pack("<III", 0x3707001F, 1, len(long_name)) + long_name + b"\0" * (-len(long_name) % 4))
winmail = (struct.pack("<IH", 0x223E9F78, 1) + tnef_record(1, 0x00089006, b"\0\0\1\0")
           + tnef_record(2, 0x00069002, struct.pack("<HIHHI", 1, 0xFFFFFFFF, 0xFFFF, 0xFFFF, 0))
           + tnef_record(2, 0x00018010, b"KLINIK~1.JPG\0") + tnef_record(2, 0x0006800F, scan_of(original, b"outlook"))
           + tnef_record(2, 0x00069005, properties))
body = src.get_body(("plain",)).get_content()
for name, body, attachment in (
        ("06-zipped-receipt.eml", body.replace("Ahmad", "Siti"), ("receipts.zip", buf.getvalue(), "application", "zip")),
        ("07-outlook-winmail.eml", body.replace("Ahmad", "Mei Ling"), ("winmail.dat", winmail, "application", "ms-tnef")),
        ("98-winmail.eml", "Please see attached.", ("winmail.dat", b"\x78\x9f\x3e\x22" + b"\0" * 20000, "application", "ms-tnef")),
        ("08-sent-again.eml", body, ("malaysian_receipt_test.jpg", original, "image", "jpeg"))):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "Siti <siti@example.my>", "claims@tpa.example.my", "Claim"
    m["Date"], m["Message-ID"] = "Fri, 27 Dec 2024 10:00:00 +0800", "<" + name + "@docpipe.example>"
    m.set_content(body)
    m.add_attachment(attachment[1], maintype=attachment[2], subtype=attachment[3], filename=attachment[0])
    open(f"{sys.argv[2]}/{name}", "wb").write(bytes(m))
PY
export DOCPIPE_INBOX="$WORK/inbox" DOCPIPE_OUT="$WORK/out" DOCPIPE_STATE_DIR="$WORK" ADMIN_LISTEN=127.0.0.1:0 OCR_DEVICE=cpu
status=0
"$DOCPIPE" run -c "$SRC/pipelines/claims-local.yaml" --once > "$WORK/summary.txt" 2> "$WORK/log.txt" || status=$?
cat "$WORK/summary.txt"
[ "$status" = 1 ] || fail "--once must exit 1 when a document failed (got $status)"
grep -q "documents: 10 taken, 8 completed, 2 failed" "$WORK/summary.txt" || fail "summary: $(head -1 "$WORK/summary.txt")"

ls "$WORK/out/ncb"/*.json >/dev/null 2>&1 || fail "no NCB record written"
python3 - "$WORK" <<'PY'
import json, sqlite3, sys
from pathlib import Path
work = Path(sys.argv[1])
def fail(msg):
    print("FAIL:", msg); sys.exit(1)
records = [json.loads(p.read_text()) for p in sorted((work / "out" / "ncb").glob("*.json"))]
if len(records) != 3: fail(f"expected 3 high-confidence NCB records (the receipt, zipped, in a winmail.dat), got {len(records)}")
expected = (("06-zipped-receipt.eml@docpipe.example", "receipt.jpg"), ("07-outlook-winmail.eml@docpipe.example", "Klinik receipt.jpg"),
            ("sample-01@docpipe.example", "malaysian_receipt_test.jpg"))
for r, (email_id, filename) in zip(sorted(records, key=lambda r: r["source_email_id"]), expected):
    if r["Claim Amount"] != 479.05: fail(f"Claim Amount {r['Claim Amount']} (435.50 would be the subtotal)")
    for key, want in (("Event date", "2024-12-24"), ("Invoice Number", "INV-2024-001234"), ("Policy Number", "POL987654321"),
                      ("source_email_id", email_id), ("source_filename", filename), ("confidence_level", "high")):
        if r.get(key) != want: fail(f"{key} = {r.get(key)!r}, want {want!r}")
    if not r["Submission Date"].endswith("+08:00"): fail("Submission Date without +08:00: " + r["Submission Date"])
review = [json.loads(p.read_text()) for p in (work / "out" / "review").glob("*.json")]
if len(review) != 4: fail(f"expected 4 claims in review, got {len(review)}")
reasons = " | ".join(d["attributes"].get("review_reason", "") for d in review)
if "receipt says" not in reasons: fail("review reasons do not name the conflict: " + reasons)
db = sqlite3.connect(work / "state.db")
jobs = {json.loads(d)["filename"]: json.loads(d) for (d,) in db.execute("SELECT data FROM jobs")}
want = {"01-clinic-receipt.eml": "submitted", "02-malay-two-receipts.eml": "review", "03-html-forwarded.eml": "review",
        "04-no-attachment.eml": "skipped", "05-mixed-language.eml": "review", "99-garbage.eml": "failed",
        "06-zipped-receipt.eml": "submitted", "07-outlook-winmail.eml": "submitted", "98-winmail.eml": "failed",
        "08-sent-again.eml": "skipped"}
for name, status in want.items():
    got = jobs.get(name, {}).get("status")
    if got != status: fail(f"job {name}: status {got}, want {status}")
if "no claim attachment" not in jobs["04-no-attachment.eml"]["last_error"]: fail("skipped job without its reason")
again, first = jobs["08-sent-again.eml"], jobs["01-clinic-receipt.eml"]
if again.get("duplicate_of") != first["id"] or "duplicate of job " + first["id"] not in again["last_error"]:
    fail(f"the receipt sent again is not named a duplicate of the first job: {again.get('duplicate_of')!r}, {again['last_error']!r}")
if "'winmail.dat': an Outlook TNEF attachment" not in jobs["98-winmail.eml"]["last_error"]: fail("winmail.dat job: " + jobs["98-winmail.eml"]["last_error"])
high = jobs["01-clinic-receipt.eml"]
if abs(high["fields"]["total_amount"]["value"] - 479.05) > 1e-9 or high["confidence_level"] != "high":
    fail("the submitted job does not carry its claim fields")
print("claims-local: NCB record, review queue, skipped and failed jobs as expected")
PY
reason=$(cat "$WORK/inbox/failed/99-garbage.eml.reason")
echo "$reason" | grep -q "not an email" || fail "garbage email reason: $reason"
grep -q "winmail.dat" "$WORK/inbox/failed/98-winmail.eml.reason" || fail "winmail.dat reason: $(cat "$WORK/inbox/failed/98-winmail.eml.reason")"
grep -q "fsync\|panic\|terminate" "$WORK/log.txt" && fail "unexpected crash text in the log"

# docpipe extract: the shipped pipeline by default, one line per claim document.
"$DOCPIPE" extract -j 2 --metrics "$WORK/extract.prom" "$SRC/examples/inbox/sources/malaysian_receipt_test.jpg" \
  "$SRC/examples/inbox/02-malay-two-receipts.eml" "$SRC/examples/inbox/04-no-attachment.eml" > "$WORK/extract.jsonl" 2> "$WORK/extract.err" || true
# --metrics: the run's counters, e.g. the first readings of the three receipt pages.
grep -qx 'docpipe_ocr_pages_total{node="ocr"} 3' "$WORK/extract.prom" || fail "extract --metrics: $(grep ocr_pages "$WORK/extract.prom" 2>&1)"
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
