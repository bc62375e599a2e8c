#!/usr/bin/env bash
# End to end: the docpipe binary on a temporary drop folder.
#  1. --once: every file ends in processed/ with its JSON output, exit 0, summary printed.
#  2. --once with a failing sink: files end in failed/ with a .reason, exit 1.
#  3. run until SIGTERM: a file dropped while running is processed; SIGTERM exits 0.
set -euo pipefail
DOCPIPE=$1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$WORK/inbox"
for i in 1 2 3; do echo "receipt $i" > "$WORK/inbox/r$i.txt"; done
cat > "$WORK/p.yaml" <<YAML
state: {backend: sqlite, path: $WORK/state.db}
logging: {format: json}
admin: {listen: '127.0.0.1:0'}
nodes:
  inbox:
    component: source.directory
    config: {path: $WORK/inbox, settle_time: 0s}
  out:
    component: sink.files
    concurrency: 2
    config: {path: "\${OUT_DIR}"}  # quoted: braces inside a flow mapping
  audit:
    component: sink.files
    config: {path: "\${OUT_DIR}", format: jsonl}
edges:
  - inbox -> out
  - inbox -> audit
YAML

OUT_DIR="$WORK/out" "$DOCPIPE" validate "$WORK/p.yaml" || fail "validate rejected a valid pipeline"
OUT_DIR="$WORK/out" "$DOCPIPE" run -c "$WORK/p.yaml" --once > "$WORK/summary.txt" 2> "$WORK/log.txt" || fail "--once exited $?"
grep -q "documents: 3 taken, 3 completed, 0 failed" "$WORK/summary.txt" || { cat "$WORK/summary.txt"; fail "summary"; }
[ "$(ls "$WORK/inbox/processed" | wc -l)" = 3 ] || fail "files not moved to processed/"
[ "$(ls "$WORK/out"/*.json | wc -l)" = 3 ] || fail "expected 3 JSON outputs"
[ "$(wc -l < "$WORK/out/documents.jsonl")" = 3 ] || fail "expected 3 JSON lines"
grep -q '"node":"runtime"' "$WORK/log.txt" || { cat "$WORK/log.txt"; fail "json logs"; }
# The same files again are new deliveries of the same content: same ids, same outputs.
cp "$WORK/inbox/processed/"* "$WORK/inbox/"
OUT_DIR="$WORK/out" "$DOCPIPE" run -c "$WORK/p.yaml" --once > /dev/null 2>&1 || fail "second --once"
[ "$(ls "$WORK/out"/*.json | wc -l)" = 3 ] || fail "redelivery should map to the same document ids"
echo "ok 1 --once"

# 2. A sink that cannot write: the target folder is a regular file.
echo "x" > "$WORK/inbox/bad.txt"
touch "$WORK/blocker"
cat > "$WORK/bad.yaml" <<YAML
state: {backend: memory}
nodes:
  inbox: {component: source.directory, config: {path: $WORK/inbox, settle_time: 0s}}
  out:
    component: sink.files
    retry: {attempts: 2, initial_backoff: 10ms}
    config: {path: $WORK/out2, file_name: blocked.json}
edges: [inbox -> out]
YAML
mkdir -p "$WORK/out2/blocked.json/dir"
set +e
"$DOCPIPE" run -c "$WORK/bad.yaml" --once > "$WORK/summary2.txt" 2> "$WORK/log2.txt"
rc=$?
set -e
[ $rc = 1 ] || { cat "$WORK/summary2.txt" "$WORK/log2.txt"; fail "expected exit 1 for a failed document, got $rc"; }
grep -q "1 failed" "$WORK/summary2.txt" || fail "summary should count the failure"
grep -q "FAILED bad.txt" "$WORK/summary2.txt" || { cat "$WORK/summary2.txt"; fail "summary should name the file"; }
grep -q "node 'out' (sink.files)" "$WORK/inbox/failed/bad.txt.reason" || fail "reason file should name the node"
grep -q "Is a directory" "$WORK/inbox/failed/bad.txt.reason" || fail "reason file should say why"
echo "ok 2 failure goes to failed/ with a reason"

# 3. Long-running: process a file dropped while running, then SIGTERM drains and exits 0.
mkdir -p "$WORK/live"
sed -e "s#$WORK/inbox#$WORK/live#" "$WORK/p.yaml" > "$WORK/live.yaml"
OUT_DIR="$WORK/out3" "$DOCPIPE" run -c "$WORK/live.yaml" > "$WORK/log3.txt" 2>&1 &
pid=$!
sleep 0.5
echo "late arrival" > "$WORK/live/late.txt"
for _ in $(seq 1 100); do
  [ -e "$WORK/live/processed/late.txt" ] && break
  sleep 0.1
done
[ -e "$WORK/live/processed/late.txt" ] || { kill $pid; cat "$WORK/log3.txt"; fail "file dropped while running was not processed"; }
# The admin API: no key configured on loopback, so one was generated next to the state.
port=$(grep -o 'admin API on http://127.0.0.1:[0-9]*' "$WORK/log3.txt" | grep -o '[0-9]*$')
[ -n "$port" ] || { cat "$WORK/log3.txt"; fail "no admin API log line"; }
key=$(cat "$WORK/admin.key")
[ "$(stat -c %a "$WORK/admin.key")" = 600 ] || fail "admin.key must be mode 0600"
grep -q "$key" "$WORK/log3.txt" && fail "the generated key was logged"
curl -fsS "http://127.0.0.1:$port/health" | grep -q alive || fail "/health"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/v1/stats/dashboard")" = 401 ] || fail "no key must be 401"
curl -fsS -H "X-API-Key: $key" "http://127.0.0.1:$port/api/v1/stats/dashboard" | grep -q '"success":true' || fail "dashboard with key"
curl -fsS -H "X-API-Key: $key" "http://127.0.0.1:$port/api/v1/jobs" | grep -q '"status":"submitted"' || fail "jobs list"
echo "ok 3a admin API with a generated key"
kill -TERM $pid
set +e
wait $pid
rc=$?
set -e
[ $rc = 0 ] || { cat "$WORK/log3.txt"; fail "SIGTERM should exit 0, got $rc"; }
grep -q "stopped cleanly" "$WORK/log3.txt" || { cat "$WORK/log3.txt"; fail "no clean-stop log line"; }
echo "ok 3 SIGTERM drains and exits 0"
