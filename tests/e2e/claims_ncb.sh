#!/usr/bin/env bash
# The shipped pipelines/claims-ncb.yaml against the fake NCB: the sample clinic receipt
# email goes drop folder -> OCR -> claims -> sink.ncb. NCB answers 503 at first (the claim
# waits, it does not fail), then takes it; `--once` waits for the pending retry and its
# summary shows the email's NCB claim reference. The NCB record is the real one (479.05,
# not the subtotal) and the job carries the reference.
# Usage: claims_ncb.sh DOCPIPE SOURCE_DIR
set -uo pipefail
DOCPIPE=$1
SRC=$(cd "$2" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-claims-ncb-XXXXXX")
FAKE_PID=""
cleanup() {
    [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2> /dev/null && wait "$FAKE_PID" 2> /dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; cat "$WORK/summary.txt" 2> /dev/null; tail -20 "$WORK/log.txt" 2> /dev/null; exit 1; }

mkfifo "$WORK/fake.out"
python3 "$SRC/tests/fakes/fake_ncb.py" --port 0 --api-key ops-key > "$WORK/fake.out" 2> "$WORK/fake.log" &
FAKE_PID=$!
read -r -t 15 word PORT < "$WORK/fake.out" || fail "the fake NCB did not start"
exec 3< "$WORK/fake.out"
NCB="http://127.0.0.1:$PORT"
curl -sf -X POST "$NCB/_fake/script" -d '{"target":"claims","responses":[{"status":503,"body":"maintenance","count":2}]}' > /dev/null \
    || fail "cannot script the fake NCB"

mkdir -p "$WORK/inbox"
cp "$SRC/examples/inbox/01-clinic-receipt.eml" "$WORK/inbox/"
export DOCPIPE_INBOX="$WORK/inbox" DOCPIPE_OUT="$WORK/out" DOCPIPE_STATE_DIR="$WORK" ADMIN_LISTEN=127.0.0.1:0 OCR_DEVICE=cpu
export NCB_API_BASE_URL="$NCB/api/v1" NCB_API_KEY=ops-key
"$DOCPIPE" run -c "$SRC/pipelines/claims-ncb.yaml" --once > "$WORK/summary.txt" 2> "$WORK/log.txt" || fail "--once exited $?"
curl -sf "$NCB/_fake/claims" > "$WORK/claims.json" || fail "cannot read the fake NCB"
python3 - "$WORK" <<'PY'
import json, sqlite3, sys
from pathlib import Path
work = Path(sys.argv[1])
def fail(msg):
    print("FAIL:", msg); print((work / "summary.txt").read_text()); sys.exit(1)
got = json.loads((work / "claims.json").read_text())
if len(got["claims"]) != 1: fail(f"NCB holds {len(got['claims'])} claims, want 1")
if got["attempts"] < 3: fail(f"only {got['attempts']} request(s): the 503s were not exercised")
c = got["claims"][0]
r = c["record"]
if r["Claim Amount"] != 479.05: fail(f"Claim Amount {r['Claim Amount']} (435.50 would be the subtotal)")
if r["Invoice Number"] != "INV-2024-001234": fail(f"Invoice Number {r['Invoice Number']}")
summary = (work / "summary.txt").read_text()
if c["claim_reference"] not in summary: fail(f"the summary does not show the NCB reference {c['claim_reference']}")
if "01-clinic-receipt.eml" not in summary: fail("the summary does not name the email")
jobs = [json.loads(d) for (d,) in sqlite3.connect(work / "state.db").execute("SELECT data FROM jobs")]
if len(jobs) != 1 or jobs[0]["status"] != "submitted": fail(f"jobs: {[(j['filename'], j['status']) for j in jobs]}")
if jobs[0]["references"].get("ncb_claim_reference") != c["claim_reference"]: fail(f"job references {jobs[0]['references']}")
print(f"claims_ncb: ok ({c['claim_reference']} after {got['attempts']} requests)")
PY
