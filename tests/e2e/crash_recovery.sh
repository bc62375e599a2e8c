#!/usr/bin/env bash
# End to end: a claim email's job is complete and recorded before its source is acked, and
# a crash at any point of settling loses and duplicates nothing (ARCHITECTURE.md, "Delivery").
#
# One email with two small PNG attachments goes drop folder -> transform.dedup ->
# transform.mime -> sink.crash_files (tests/plugins/crash_plugin.cpp: <out>/<doc id>.json,
# rewritten in place after a restart). Cases, each run 3 times in a fresh folder:
#  1. the sink SIGKILLs the service after the first attachment is written;
#  2-4. DOCPIPE_FAILPOINTS=settle.before_job_end | settle.before_ack | settle.after_ack;
#     after the kill, `run --once` on the same folder must leave exactly one output per
#     attachment, the email in processed/, and its job `submitted` with 2 outcomes.
#  5. one good PNG and one corrupt JPEG through transform.pdf_pages: the good one is
#     delivered, the email is acked (processed/), the job is `partial` (one submitted and
#     one failed outcome) and the failed attachment has a dead letter of its own.
#  6. a byte-identical copy of the email under another name: a job of its own, `skipped`
#     with duplicate_of = the first job; still exactly 2 outputs.
# Every case runs even when an earlier one fails; a case stops at its first failing run.
# CRASH_RECOVERY_CASES="1 5" runs only those cases.
# Usage: crash_recovery.sh DOCPIPE SOURCE_DIR [CRASH_PLUGIN_DIR]
set -uo pipefail
DOCPIPE=$1
SRC=$2
PLUGINS=${3:-$(cd "$(dirname "$DOCPIPE")/.." && pwd)/test-plugins/crash}
[ -x "$DOCPIPE" ] || { echo "FAIL: no docpipe binary at $DOCPIPE" >&2; exit 1; }
ls "$PLUGINS"/*.so > /dev/null 2>&1 || { echo "FAIL: no crash test plugin in $PLUGINS (build target docpipe-test-crash)" >&2; exit 1; }
[ -d "$SRC" ] || { echo "FAIL: no source folder $SRC" >&2; exit 1; }
PLUGINS=$(cd "$PLUGINS" && pwd)  # plugin_paths are relative to the pipeline file: pass it absolute
DOCPIPE=$(cd "$(dirname "$DOCPIPE")" && pwd)/$(basename "$DOCPIPE")

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-crash-XXXXXX")
SERVICE_PID=""
SERVICE_RC=""
cleanup() {
    # Only the process this script started, by its pid.
    if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2> /dev/null; then
        kill -KILL "$SERVICE_PID" 2> /dev/null
        wait "$SERVICE_PID" 2> /dev/null
    fi
    rm -rf "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

KILL_WAIT_S=30     # how long a service run may take to reach its kill point
ONCE_LIMIT_S=120   # bound on a --once run

# ---- fixtures: emails built here, PNGs written with zlib + struct --------------------------
python3 - "$ROOT/fixtures" <<'PY'
import struct, sys, zlib
from email.message import EmailMessage
from pathlib import Path

out = Path(sys.argv[1]); out.mkdir(parents=True)

def png(rgb, size=16):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\x00" + bytes(rgb) * size
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b""))

def email(name, subject, attachments):
    m = EmailMessage()
    m["From"] = "member@example.com"
    m["To"] = "claims@example.com"
    m["Subject"] = subject
    m["Date"] = "Tue, 24 Dec 2024 10:00:00 +0800"
    m["Message-ID"] = f"<{name}@docpipe.test>"
    m.set_content("Please process my claim. Policy POL123456789.\n")
    for filename, subtype, data in attachments:
        m.add_attachment(data, maintype="image", subtype=subtype, filename=filename)
    (out / name).write_bytes(bytes(m))

a, b = png((200, 30, 30)), png((30, 30, 200))
assert a != b
email("two.eml", "Claim with two receipts", [("receipt-a.png", "png", a), ("receipt-b.png", "png", b)])
email("partial.eml", "Claim with a broken receipt",
      [("good.png", "png", png((30, 160, 30))), ("broken.jpg", "jpeg", b"\xff\xd8 not a jpeg at all " * 40)])
PY
[ -f "$ROOT/fixtures/two.eml" ] || { echo "FAIL: could not build the test emails" >&2; exit 1; }

# ---- one run ---------------------------------------------------------------------------------

# write_pipeline WORK KILL_AFTER_WRITES WITH_PAGES MAX_IN_FLIGHT
write_pipeline() {
    local work=$1 kill_after=$2 pages=$3 max_in_flight=$4
    local chain="inbox -> dedup -> mime -> out" pages_node=""
    if [ "$pages" = yes ]; then
        chain="inbox -> dedup -> mime -> pages -> out"
        pages_node="  pages: {component: transform.pdf_pages}"
    fi
    cat > "$work/p.yaml" <<YAML
version: 1
max_in_flight: $max_in_flight
plugin_paths: ['$PLUGINS']
state: {backend: sqlite, path: '$work/state.db'}
admin: {enabled: false}
logging: {level: debug}
runtime: {poll_wait: 100ms, drain_timeout: 20s}
nodes:
  inbox:
    component: source.directory
    config: {path: '$work/inbox', patterns: ['*.eml'], settle_time: 0s, poll_interval: 100ms, drain_wait: 5s}
  dedup: {component: transform.dedup}
  mime: {component: transform.mime, config: {min_image_bytes: 0}}
$pages_node
  out:
    component: sink.crash_files
    retry: {attempts: 3, initial_backoff: 50ms, max_backoff: 200ms}
    config: {path: '$work/out', kill_after_writes: $kill_after, marker: '$work/crash.marker'}
edges:
  - $chain
YAML
}

# service_until_killed WORK FAILPOINTS: starts `docpipe run` (service mode) and waits up to
# KILL_WAIT_S for it to die. Sets SERVICE_RC to its exit status, or "alive" (then it is stopped).
service_until_killed() {
    local work=$1 failpoints=$2
    DOCPIPE_FAILPOINTS=$failpoints "$DOCPIPE" run -c "$work/p.yaml" > "$work/service.out" 2> "$work/service.log" &
    SERVICE_PID=$!
    local i
    for ((i = 0; i < KILL_WAIT_S * 10; ++i)); do
        kill -0 "$SERVICE_PID" 2> /dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVICE_PID" 2> /dev/null; then
        kill -TERM "$SERVICE_PID" 2> /dev/null
        for ((i = 0; i < 100; ++i)); do kill -0 "$SERVICE_PID" 2> /dev/null || break; sleep 0.1; done
        kill -KILL "$SERVICE_PID" 2> /dev/null
        wait "$SERVICE_PID" 2> /dev/null
        SERVICE_RC=alive
    else
        # Braces: keeps bash's own "Killed" job notice out of the output.
        { wait "$SERVICE_PID"; SERVICE_RC=$?; } 2> /dev/null
    fi
    SERVICE_PID=""
}

# check WORK CASE: the assertions after the recovery run; prints each failed one.
check() {
    python3 - "$1" "$2" <<'PY'
import json, sqlite3, sys
from pathlib import Path
work, case = Path(sys.argv[1]), sys.argv[2]
problems = []
def want(cond, msg):
    if not cond: problems.append(msg)

outputs = sorted(p for p in (work / "out").glob("*.json") if not p.name.startswith("."))
docs = [json.loads(p.read_text()) for p in outputs]
names = sorted(d.get("attributes", {}).get("filename", "?") for d in docs)
inbox = work / "inbox"
left = sorted(p.name for p in inbox.glob("*.eml"))
processed = sorted(p.name for p in (inbox / "processed").glob("*.eml*"))
failed = sorted(p.name for p in (inbox / "failed").glob("*") if p.is_file())
jobs = []
if (work / "state.db").exists():
    db = sqlite3.connect(work / "state.db")
    jobs = [json.loads(d) for (d,) in db.execute("SELECT data FROM jobs")]
    kv = [k for (k,) in db.execute("SELECT key FROM kv")]
else:
    kv = []
    problems.append("no state.db")

def outcomes_of(job):
    o = job.get("outcomes")
    if not isinstance(o, list):
        problems.append(f"job {job.get('id', '?')[:16]} ({job.get('filename')}): no 'outcomes' array (keys: {sorted(job)})")
        return []
    return o

def describe_outcomes(o):
    return [(x.get("name"), x.get("status"), x.get("node")) for x in o]

if case in ("1", "2", "3", "4", "6"):
    want(names == ["receipt-a.png", "receipt-b.png"],
         f"outputs: want one per attachment [receipt-a.png, receipt-b.png], got {len(outputs)}: {names}")
    want(not left, f"still in the inbox: {left}")
    want(not failed, f"in failed/: {failed}")
    email_files = ["two.eml"] if case != "6" else ["copy-of-two.eml", "two.eml"]
    want(processed == email_files, f"processed/: want {email_files}, got {processed}")
    if case != "6":
        want(len(jobs) == 1, f"want 1 job, got {len(jobs)}: {[(j.get('filename'), j.get('status')) for j in jobs]}")
        for job in jobs[:1]:
            want(job.get("status") == "submitted", f"job status {job.get('status')!r} (last_error {job.get('last_error')!r}), want 'submitted'")
            o = outcomes_of(job)
            if "outcomes" in job:
                want(len(o) == 2 and all(x.get("status") == "submitted" for x in o),
                     f"outcomes: want 2 submitted, got {describe_outcomes(o)}")
                want(sorted(x.get("doc_id", "") + ".json" for x in o) == [p.name for p in outputs],
                     f"outcome doc ids {[x.get('doc_id') for x in o]} are not the delivered files {[p.name for p in outputs]}")
                want(sorted(x.get("name") or "" for x in o) == ["receipt-a.png", "receipt-b.png"],
                     f"outcome names: {[x.get('name') for x in o]}")
    else:
        want(len(jobs) == 2, f"want 2 jobs (one per file), got {len(jobs)}: {[(j.get('filename'), j.get('status')) for j in jobs]}")
        submitted = [j for j in jobs if j.get("status") == "submitted"]
        skipped = [j for j in jobs if j.get("status") == "skipped"]
        want(len(submitted) == 1 and len(skipped) == 1,
             f"want one submitted and one skipped job, got {[(j.get('filename'), j.get('status')) for j in jobs]}")
        if len(submitted) == 1 and len(skipped) == 1:
            want(skipped[0].get("duplicate_of") == submitted[0].get("id"),
                 f"skipped job's duplicate_of {skipped[0].get('duplicate_of')!r}, want the first job {submitted[0].get('id')!r}")
            want(skipped[0].get("id") != submitted[0].get("id"), "both files share one job id")
            o = outcomes_of(submitted[0])
            if "outcomes" in submitted[0]:
                want(len(o) == 2 and all(x.get("status") == "submitted" for x in o),
                     f"submitted job's outcomes: want 2 submitted, got {describe_outcomes(o)}")

elif case == "5":
    want(names == ["good.png"], f"outputs: want only good.png, got {len(outputs)}: {names}")
    want(not left, f"still in the inbox: {left}")
    want(processed == ["partial.eml"] and not failed,
         f"a partial job is acked: want processed/ [partial.eml] and failed/ empty, got processed/ {processed}, failed/ {failed}")
    want(len(jobs) == 1, f"want 1 job, got {len(jobs)}")
    for job in jobs[:1]:
        want(job.get("status") == "partial", f"job status {job.get('status')!r} (last_error {job.get('last_error')!r}), want 'partial'")
        o = outcomes_of(job)
        if "outcomes" in job:
            by_status = sorted((x.get("status"), x.get("name")) for x in o)
            want(by_status == [("failed", "broken.jpg"), ("submitted", "good.png")],
                 f"outcomes: want [failed broken.jpg, submitted good.png], got {describe_outcomes(o)}")
            bad = [x for x in o if x.get("status") == "failed"]
            want(all(x.get("reason") for x in bad), f"a failed outcome without a reason: {bad}")
            want(all(x.get("node") == "pages" for x in bad), f"the failed outcome names node {[x.get('node') for x in bad]}, want 'pages'")
        prefix = f"deadletter-index/{job.get('id')}/"
        want(any(k.startswith(prefix) for k in kv), f"no {prefix}... key in kv (dead letter keys: {[k for k in kv if k.startswith('dead')]})")

for p in problems: print("   -", p)
sys.exit(1 if problems else 0)
PY
}

# run_case CASE RUN: prints what failed; returns non-zero on failure.
run_case() {
    local case=$1 run=$2
    local work="$ROOT/case$case.run$run"
    mkdir -p "$work/inbox"
    local failpoints="" kill_after=0 pages=no max_in_flight=64 crash=yes once_rc_want=0
    case $case in
        1) kill_after=1; touch "$work/crash.marker"; cp "$ROOT/fixtures/two.eml" "$work/inbox/" ;;
        2) failpoints=settle.before_job_end; cp "$ROOT/fixtures/two.eml" "$work/inbox/" ;;
        3) failpoints=settle.before_ack; cp "$ROOT/fixtures/two.eml" "$work/inbox/" ;;
        4) failpoints=settle.after_ack; cp "$ROOT/fixtures/two.eml" "$work/inbox/" ;;
        5) crash=no pages=yes once_rc_want=any; cp "$ROOT/fixtures/partial.eml" "$work/inbox/" ;;
        6) crash=no
           # One document at a time: the copy meets an original whose job is terminal.
           max_in_flight=1
           cp "$ROOT/fixtures/two.eml" "$work/inbox/"
           cp "$ROOT/fixtures/two.eml" "$work/inbox/copy-of-two.eml" ;;
    esac
    write_pipeline "$work" "$kill_after" "$pages" "$max_in_flight"
    local ok=0
    if [ "$crash" = yes ]; then
        service_until_killed "$work" "$failpoints" 2> /dev/null  # and bash's "Killed" notice
        local rc=$SERVICE_RC
        if [ "$rc" != 137 ]; then
            if [ "$rc" = alive ]; then
                echo "   - the service did not die within ${KILL_WAIT_S} s (failpoint '${failpoints:-sink kill}' never fired); stopped it"
            else
                echo "   - the service exited $rc, want 137 (SIGKILL); log tail:"
                tail -5 "$work/service.log" | sed 's/^/       /'
            fi
            ok=1
        fi
    fi
    local once_rc=0
    timeout -s KILL "$ONCE_LIMIT_S" "$DOCPIPE" run -c "$work/p.yaml" --once > "$work/once.out" 2> "$work/once.log" || once_rc=$?
    if [ "$once_rc" = 137 ] || [ "$once_rc" = 124 ]; then
        echo "   - the recovery run (--once) was killed or ran past ${ONCE_LIMIT_S} s (exit $once_rc)"
        ok=1
    elif [ "$once_rc_want" != any ] && [ "$once_rc" != "$once_rc_want" ]; then
        echo "   - the recovery run (--once) exited $once_rc, want $once_rc_want: $(head -1 "$work/once.out")"
        ok=1
    fi
    check "$work" "$case" || ok=1
    if [ "$ok" != 0 ]; then
        {
            echo "----- case $case run $run: --once summary"
            cat "$work/once.out"
        } | sed 's/^/     /'
    fi
    rm -rf "$work"
    return $ok
}

declare -A TITLE=(
    [1]="the sink kills the service after the first of two attachments"
    [2]="failpoint settle.before_job_end"
    [3]="failpoint settle.before_ack"
    [4]="failpoint settle.after_ack"
    [5]="one good and one corrupt attachment: a partial job, acked, with a dead letter"
    [6]="a byte-identical copy under another name is a job of its own, skipped as a duplicate"
)
failed_cases=()
for case in ${CRASH_RECOVERY_CASES:-1 2 3 4 5 6}; do
    echo "case $case: ${TITLE[$case]}"
    for run in 1 2 3; do
        if run_case "$case" "$run"; then
            echo "   run $run: ok"
        else
            echo "   run $run: FAILED"
            failed_cases+=("$case")
            break
        fi
    done
done
if [ ${#failed_cases[@]} -gt 0 ]; then
    echo "FAIL: case(s) ${failed_cases[*]}" >&2
    exit 1
fi
echo "PASS"
