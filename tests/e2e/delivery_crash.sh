#!/usr/bin/env bash
# End to end: claims reach the NCB API exactly once although the service is SIGKILLed in
# the middle of delivery (issue "network delivery": kill the runtime mid-delivery, restart,
# the fake NCB has each claim exactly once).
#
# One email with two receipt attachments goes drop folder -> transform.dedup ->
# transform.mime -> transform.test_claim (tests/plugins/crash_plugin.cpp: a claim without
# OCR) -> sink.ncb -> the fake NCB (tests/fakes/fake_ncb.py) on a loopback port. The
# service is killed at a fail point after the first claim reached NCB:
#   sink.after_write        NCB has the claim, the delivery ledger does not (the idempotency
#                           key must stop the second booking);
#   settle.before_job_end, settle.before_ack, settle.after_ack.
# Then `run --once` on the same folder must leave: NCB with exactly 2 claims (one per
# attachment), the email in processed/, and its job `submitted` with both NCB references.
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
cleanup() {
    for pid in "$SERVICE_PID" "$FAKE_PID"; do
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
    local work=$1 key=${2:-$KEY}
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
edges:
  - inbox -> dedup -> mime -> claim -> ncb
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
want(rc == 0, f"the recovery run exited {rc}")
inbox = work / "inbox"
want(sorted(p.name for p in (inbox / "processed").glob("*.eml*")) == ["two.eml"], "two.eml is not in processed/")
want(not list(inbox.glob("*.eml")), "two.eml is still in the inbox")
db = sqlite3.connect(work / "state.db")
jobs = [json.loads(d) for (d,) in db.execute("SELECT data FROM jobs")]
want(len(jobs) == 1, f"want 1 job, got {len(jobs)}")
for job in jobs[:1]:
    want(job.get("status") == "submitted", f"job status {job.get('status')!r} ({job.get('last_error')!r})")
    refs = job.get("references", {}).get("ncb_claim_reference")
    want(isinstance(refs, list) and sorted(refs) == sorted(c["claim_reference"] for c in claims),
         f"job references {refs!r}, want both NCB references {[c['claim_reference'] for c in claims]}")
if problems:
    print(f"FAIL [{point} #{tr}]:"); [print("   -", p) for p in problems]
    sys.exit(1)
attempts = json.loads((work / "claims.json").read_text())["attempts"]
print(f"ok   [{point} #{tr}]: NCB has each of the 2 claims once, after {attempts} request(s)")
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
    curl -sf -X POST "$NCB/_fake/reset" > /dev/null
    recover_and_check "$work" "down-$kind" 1
}

for kind in 503 401; do
    down_case "$kind" || fails=$((fails + 1))
done
for point in sink.after_write settle.before_job_end settle.before_ack settle.after_ack; do
    for try in 1 2; do
        run_case "$point" "$try" || fails=$((fails + 1))
    done
done
[ $fails -eq 0 ] || { echo "delivery_crash: $fails case(s) failed"; exit 1; }
echo "delivery_crash: all cases passed"
