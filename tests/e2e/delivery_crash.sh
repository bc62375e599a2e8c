#!/usr/bin/env bash
# End to end: claims reach the NCB API, the audit sheet and the Drive archive exactly once
# although the service is SIGKILLed in the middle of delivery (issue "network delivery").
#
# One email with two receipt attachments goes drop folder -> transform.dedup ->
# transform.mime -> transform.test_claim (tests/plugins/crash_plugin.cpp: a claim without
# OCR) -> sink.ncb, sink.sheets and sink.drive, against the fake NCB
# (tests/fakes/fake_ncb.py) and the fake Google (tests/fakes/fake_google.py) on loopback
# ports. The service is killed at a fail point:
#   sink.after_write.<ncb|sheets|drive>  that sink's system has the first receipt, the
#                                        delivery ledger does not (NCB's idempotency key,
#                                        the Sheets marker + lookup and Drive's content
#                                        lookup must stop the second copy);
#   settle.before_job_end, settle.before_ack, settle.after_ack.
# Then `run --once` on the same folder must leave: NCB with exactly 2 claims, the sheet with
# exactly one row per receipt, Drive with exactly one file per receipt, the email in
# processed/, and its job `submitted` with the NCB, Sheets and Drive references; each audit
# row (written after NCB took its claim) names NCB's claim reference.
# Each point runs twice. Two more cases stop the service (SIGTERM) while NCB answers 503
# with the circuit breaker open, or 401: the email must stay in the inbox, not be
# dead-lettered, and the next run delivers both claims once.
# Usage: delivery_crash.sh DOCPIPE SOURCE_DIR [CRASH_PLUGIN_DIR]
set -uo pipefail
DOCPIPE=$1
SRC=$2
PLUGINS=${3:-$(cd "$(dirname "$DOCPIPE")/.." && pwd)/test-plugins/crash}
[ -x "$DOCPIPE" ] || { echo "FAIL: no docpipe binary at $DOCPIPE" >&2; exit 1; }
ls "$PLUGINS"/*.so > /dev/null 2>&1 || { echo "FAIL: no crash test plugin in $PLUGINS (build target docpipe-test-crash)" >&2; exit 1; }
PLUGINS=$(cd "$PLUGINS" && pwd)
DOCPIPE=$(cd "$(dirname "$DOCPIPE")" && pwd)/$(basename "$DOCPIPE")

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-delivery-XXXXXX")
SERVICE_PID=""
FAKE_PID=""
GOOGLE_PID=""
cleanup() {
    for pid in "$SERVICE_PID" "$FAKE_PID" "$GOOGLE_PID"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null; then
            kill -KILL "$pid" 2> /dev/null
            wait "$pid" 2> /dev/null
        fi
    done
    rm -rf "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

KEY=e2e-ncb-key-$$
# The fake Google (Sheets + Drive + token endpoint), trusting a service-account key made here.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$ROOT/sa.pem" 2> /dev/null || { echo "FAIL: openssl genpkey"; exit 1; }
python3 - "$ROOT/sa.pem" "$ROOT/sa.json" <<'PY'
import json, sys
pem = open(sys.argv[1]).read()
json.dump({"type": "service_account", "project_id": "e2e", "private_key_id": "k1", "private_key": pem,
           "client_email": "docpipe@e2e.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token"},
          open(sys.argv[2], "w"))
PY
mkfifo "$ROOT/google.out"
python3 "$SRC/tests/fakes/fake_google.py" --port 0 --service-account "$ROOT/sa.json" > "$ROOT/google.out" 2> "$ROOT/google.log" &
GOOGLE_PID=$!
read -r -t 15 gword GPORT < "$ROOT/google.out" || { echo "FAIL: the fake Google did not start:"; cat "$ROOT/google.log"; exit 1; }
[ "$gword" = LISTENING ] || { echo "FAIL: unexpected first line from the fake Google: $gword $GPORT"; exit 1; }
exec 4< "$ROOT/google.out"
GOOGLE="http://127.0.0.1:$GPORT"
reset_google() {
    curl -sf -X POST "$GOOGLE/_fake/reset" > /dev/null &&
    curl -sf -X POST "$GOOGLE/_fake/sheets" -d '{"spreadsheet_id":"audit","tabs":["Sheet1"]}' > /dev/null &&
    curl -sf -X POST "$GOOGLE/_fake/drive_root" -d '{"id":"archive-root","shared_drive":false}' > /dev/null
}
# The fake NCB, for the whole script: each case reads what it received, then resets it.
mkfifo "$ROOT/fake.out"
python3 "$SRC/tests/fakes/fake_ncb.py" --port 0 --api-key "$KEY" > "$ROOT/fake.out" 2> "$ROOT/fake.log" &
FAKE_PID=$!
read -r -t 15 word PORT < "$ROOT/fake.out" || { echo "FAIL: the fake NCB did not start:"; cat "$ROOT/fake.log"; exit 1; }
[ "$word" = LISTENING ] || { echo "FAIL: unexpected first line from the fake NCB: $word $PORT"; exit 1; }
exec 3< "$ROOT/fake.out"  # keep the pipe open so the fake never gets SIGPIPE
NCB="http://127.0.0.1:$PORT"

python3 - "$ROOT/two.eml" <<'PY'
import struct, sys, zlib
from email.message import EmailMessage
def png(rgb, size=16):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\x00" + bytes(rgb) * size
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b""))
m = EmailMessage()
m["From"] = "member@example.com"; m["To"] = "claims@example.com"; m["Subject"] = "Two receipts"
m["Date"] = "Tue, 24 Dec 2024 10:00:00 +0800"; m["Message-ID"] = "<two@docpipe.test>"
m.set_content("Please process my claim.\n")
m.add_attachment(png((200, 30, 30)), maintype="image", subtype="png", filename="receipt-a.png")
m.add_attachment(png((30, 30, 200)), maintype="image", subtype="png", filename="receipt-b.png")
open(sys.argv[1], "wb").write(bytes(m))
PY

write_pipeline() {
    local work=$1 key=${2:-$KEY} journal=${3:-false}
    cat > "$work/p.yaml" <<YAML
version: 1
max_in_flight: 4
plugin_paths: ['$PLUGINS']
state: {backend: sqlite, path: '$work/state.db'}
admin: {enabled: false}
logging: {level: debug}
runtime: {poll_wait: 100ms, drain_timeout: 2s}
nodes:
  inbox:
    component: source.directory
    config: {path: '$work/inbox', patterns: ['*.eml'], settle_time: 0s, poll_interval: 100ms, drain_wait: 5s}
  dedup: {component: transform.dedup}
  mime: {component: transform.mime, config: {min_image_bytes: 0}}
  claim: {component: transform.test_claim}
  ncb:
    component: sink.ncb
    concurrency: 1
    retry: {attempts: 3, initial_backoff: 50ms}
    config: {base_url: '$NCB/api/v1', api_key: '$key', breaker_threshold: 2, breaker_open_for: 1s}
  sheets:
    component: sink.sheets
    config: {credentials_file: '$ROOT/sa.json', token_url: '$GOOGLE/token', sheets_url: '$GOOGLE', spreadsheet_id: audit, batch_wait: 0s, journal: $journal}
  drive:
    component: sink.drive
    config: {credentials_file: '$ROOT/sa.json', token_url: '$GOOGLE/token', drive_url: '$GOOGLE', drive_upload_url: '$GOOGLE/upload', root_folder_id: archive-root}
edges:
  - inbox -> dedup -> mime -> claim -> ncb
  - ncb.accepted -> sheets
  - claim -> drive
YAML
}

# recover_and_check WORK LABEL TRY: `run --once` with the right key and a healthy NCB, then
# NCB must hold each receipt once and the job must be submitted with both references.
recover_and_check() {
    local work=$1 point=$2 try=$3
    write_pipeline "$work"
    timeout 120 "$DOCPIPE" run --once -c "$work/p.yaml" > "$work/once.out" 2> "$work/once.log"
    local rc=$?
    curl -sf "$NCB/_fake/claims" > "$work/claims.json" || { echo "FAIL: cannot read the fake NCB"; return 1; }
    curl -sf "$GOOGLE/_fake/sheets/audit" > "$work/sheets.json" || { echo "FAIL: cannot read the fake Sheets"; return 1; }
    curl -sf "$GOOGLE/_fake/drive/files" > "$work/drive.json" || { echo "FAIL: cannot read the fake Drive"; return 1; }
    python3 - "$work" "$point" "$try" "$rc" <<'PY'
import json, sqlite3, sys
from pathlib import Path
work, point, tr, rc = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
problems = []
def want(cond, msg):
    if not cond: problems.append(msg)
claims = json.loads((work / "claims.json").read_text())["claims"]
invoices = sorted(c["record"]["Invoice Number"] for c in claims)
want(invoices == ["R-receipt-a.png", "R-receipt-b.png"], f"NCB holds {invoices}, want each receipt exactly once")
tabs = json.loads((work / "sheets.json").read_text())["tabs"]
rows = [r for title, t in tabs.items() if title.startswith("Claims ") for r in t[1:]]
names = sorted(r[3] for r in rows)
want(names == ["receipt-a.png", "receipt-b.png"], f"the audit sheet has rows for {names}, want each receipt exactly once")
# The audit row follows NCB (ncb.accepted -> sheets): its NCB Reference column is NCB's answer.
reference_of = {c["record"]["Invoice Number"]: c["claim_reference"] for c in claims}
for r in rows:
    want(len(r) > 9 and r[9] == reference_of.get("R-" + r[3]),
         f"the audit row of {r[3]} has NCB Reference {r[9] if len(r) > 9 else None!r}, want {reference_of.get('R-' + r[3])!r}")
files = [f for f in json.loads((work / "drive.json").read_text())["files"] if f.get("mimeType") != "application/vnd.google-apps.folder"]
want(len(files) == 2 and len({f.get("sha256") for f in files}) == 2, f"Drive holds {len(files)} file(s), want each receipt exactly once: "
     f"{[f.get('name') for f in files]}")
want(rc == 0, f"the recovery run exited {rc}")
inbox = work / "inbox"
want(sorted(p.name for p in (inbox / "processed").glob("*.eml*")) == ["two.eml"], "two.eml is not in processed/")
want(not list(inbox.glob("*.eml")), "two.eml is still in the inbox")
db = sqlite3.connect(work / "state.db")
jobs = [json.loads(d) for (d,) in db.execute("SELECT data FROM jobs")]
want(len(jobs) == 1, f"want 1 job, got {len(jobs)}")
for job in jobs[:1]:
    want(job.get("status") == "submitted", f"job status {job.get('status')!r} ({job.get('last_error')!r})")
    for key in ("sheets_range", "drive_file_id"):
        want(key in job.get("references", {}), f"job references lack {key}: {job.get('references')}")
    refs = job.get("references", {}).get("ncb_claim_reference")
    want(isinstance(refs, list) and sorted(refs) == sorted(c["claim_reference"] for c in claims),
         f"job references {refs!r}, want both NCB references {[c['claim_reference'] for c in claims]}")
if problems:
    print(f"FAIL [{point} #{tr}]:"); [print("   -", p) for p in problems]
    sys.exit(1)
attempts = json.loads((work / "claims.json").read_text())["attempts"]
print(f"ok   [{point} #{tr}]: NCB, the audit sheet and Drive have each receipt once ({attempts} NCB request(s))")
PY
    local ok=$?
    if [ $ok -ne 0 ]; then echo "--- once.log (tail)"; tail -15 "$work/once.log"; fi
    return $ok
}


fails=0
run_case() {
    local point=$1 try=$2 work="$ROOT/$1-$2"
    mkdir -p "$work/inbox"
    cp "$ROOT/two.eml" "$work/inbox/"
    write_pipeline "$work"
    curl -sf -X POST "$NCB/_fake/reset" > /dev/null || { echo "FAIL: cannot reset the fake NCB"; return 1; }
    reset_google || { echo "FAIL: cannot reset the fake Google"; return 1; }
    DOCPIPE_FAILPOINTS=$point "$DOCPIPE" run -c "$work/p.yaml" > "$work/service.out" 2> "$work/service.log" &
    SERVICE_PID=$!
    local i
    for ((i = 0; i < 300; ++i)); do kill -0 "$SERVICE_PID" 2> /dev/null || break; sleep 0.1; done
    if kill -0 "$SERVICE_PID" 2> /dev/null; then
        echo "FAIL [$point #$try]: the service did not reach the fail point in 30 s"; tail -20 "$work/service.log"
        kill -KILL "$SERVICE_PID"; wait "$SERVICE_PID" 2> /dev/null; SERVICE_PID=""
        return 1
    fi
    { wait "$SERVICE_PID"; } 2> /dev/null
    SERVICE_PID=""
    grep -q "fail point reached" "$work/service.log" || { echo "FAIL [$point #$try]: died without reaching the fail point"; tail -20 "$work/service.log"; return 1; }
    recover_and_check "$work" "$point" "$try"
}

# down_case KIND: the service runs while NCB answers 503 (breaker opens) or refuses the key
# (401), and is stopped with SIGTERM: the held claims are neither dead-lettered nor acked;
# the email stays in the inbox and the next run delivers both claims once.
down_case() {
    local kind=$1 work="$ROOT/down-$1" key=$KEY
    mkdir -p "$work/inbox"
    cp "$ROOT/two.eml" "$work/inbox/"
    curl -sf -X POST "$NCB/_fake/reset" > /dev/null || { echo "FAIL: cannot reset the fake NCB"; return 1; }
    reset_google || { echo "FAIL: cannot reset the fake Google"; return 1; }
    if [ "$kind" = 503 ]; then
        curl -sf -X POST "$NCB/_fake/script" -d '{"target":"claims","for_seconds":600,"response":{"status":503,"body":"maintenance"}}' > /dev/null
    else
        key=not-the-key
    fi
    write_pipeline "$work" "$key"
    "$DOCPIPE" run -c "$work/p.yaml" > "$work/service.out" 2> "$work/service.log" &
    SERVICE_PID=$!
    local i
    for ((i = 0; i < 300; ++i)); do
        grep -q "endpoint unavailable" "$work/service.log" 2> /dev/null && break
        sleep 0.1
    done
    sleep 1.5  # let it hold a while (and the breaker open)
    kill -TERM "$SERVICE_PID"
    for ((i = 0; i < 200; ++i)); do kill -0 "$SERVICE_PID" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$SERVICE_PID" 2> /dev/null
    { wait "$SERVICE_PID"; } 2> /dev/null
    SERVICE_PID=""
    local problems=""
    grep -q "endpoint unavailable" "$work/service.log" || problems+=" the sink never held;"
    [ "$kind" != 503 ] || grep -q "circuit breaker open" "$work/service.log" || problems+=" the breaker never opened;"
    [ -f "$work/inbox/two.eml" ] || problems+=" two.eml left the inbox (failed/ or processed/) while NCB was down;"
    if [ -n "$problems" ]; then echo "FAIL [down-$kind]:$problems"; tail -15 "$work/service.log"; return 1; fi
    curl -sf -X POST "$NCB/_fake/reset" > /dev/null  # Sheets and Drive keep what they took meanwhile
    recover_and_check "$work" "down-$kind" 1
}

# journal_case: Sheets refuses one append (503) during the run, so that row is journaled and
# the sink answers "sheets_range: journaled"; the replay writes it. The job then names where
# both rows went (Context::amend_reference), not "journaled", and so does each receipt's outcome.
journal_case() {
    local work="$ROOT/journal"
    mkdir -p "$work/inbox"
    cp "$ROOT/two.eml" "$work/inbox/"
    curl -sf -X POST "$NCB/_fake/reset" > /dev/null || { echo "FAIL: cannot reset the fake NCB"; return 1; }
    reset_google || { echo "FAIL: cannot reset the fake Google"; return 1; }
    curl -sf -X POST "$GOOGLE/_fake/script" -d '{"target":"sheets.append","responses":[{"status":503,"count":1,"body":"down"}]}' > /dev/null
    write_pipeline "$work" "$KEY" true
    timeout 120 "$DOCPIPE" run --once -c "$work/p.yaml" > "$work/once.out" 2> "$work/once.log"
    local rc=$?
    python3 - "$work" "$rc" <<'PY'
import json, sqlite3, sys
from pathlib import Path
work, rc = Path(sys.argv[1]), int(sys.argv[2])
problems = []
def want(cond, msg):
    if not cond: problems.append(msg)
log = (work / "once.log").read_text()
want(rc == 0, f"the run exited {rc}")
want("journaled, replayed later" in log, "no row was journaled: the case did not test the replay")
want("journaled audit row written at " in log, "the journaled row was not written")
jobs = [json.loads(d) for (d,) in sqlite3.connect(work / "state.db").execute("SELECT data FROM jobs")]
want(len(jobs) == 1, f"want 1 job, got {len(jobs)}")
for job in jobs[:1]:
    ranges = job.get("references", {}).get("sheets_range")
    want(isinstance(ranges, list) and len(ranges) == 2 and all(isinstance(r, str) and "!" in r for r in ranges),
         f"the job's sheets_range is {ranges!r}, want the two rows' ranges")
    for o in job.get("outcomes", []):
        got = o.get("references", {}).get("sheets_range")
        want(isinstance(got, str) and "!" in got, f"outcome {o.get('name')}: sheets_range {got!r}")
if problems:
    print("FAIL [journal]:"); [print("   -", p) for p in problems]
    sys.exit(1)
print("ok   [journal]: a journaled row, written later, is named on its job and its outcome")
PY
    local ok=$?
    if [ $ok -ne 0 ]; then echo "--- once.log (tail)"; tail -15 "$work/once.log"; fi
    return $ok
}

journal_case || fails=$((fails + 1))
for kind in 503 401; do
    down_case "$kind" || fails=$((fails + 1))
done
for point in sink.after_write.ncb sink.after_write.sheets sink.after_write.drive settle.before_job_end settle.before_ack settle.after_ack; do
    for try in 1 2; do
        run_case "$point" "$try" || fails=$((fails + 1))
    done
done
[ $fails -eq 0 ] || { echo "delivery_crash: $fails case(s) failed"; exit 1; }
echo "delivery_crash: all cases passed"
