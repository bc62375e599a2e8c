#!/usr/bin/env bash
# One SIGTERM delivered twice is one request to stop. GNU `timeout` sends its signal to the
# process and again to its process group, microseconds apart; docpipe took the second as
# "exit now without draining" and `run --once` under `timeout` lost its summary. Now the same
# signal again within a second is noted and the drain goes on; a later one still exits at once.
# Usage: stop_signal_twice.sh DOCPIPE CRASH_PLUGIN_DIR
set -uo pipefail
DOCPIPE=$1
PLUGINS=$(cd "$2" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-signal-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; cat "$WORK/summary.txt" "$WORK/log.txt" 2> /dev/null; exit 1; }

mkdir -p "$WORK/in"
echo "a document that takes 3 s" > "$WORK/in/slow.txt"
cat > "$WORK/p.yaml" <<YAML
state: {backend: memory}
admin: {enabled: false}
plugin_paths: ['$PLUGINS']
nodes:
  in: {component: source.directory, config: {path: '$WORK/in', settle_time: 0s}}
  slow: {component: transform.test_fields, config: {tag: slow, delay: 3s}}
  out: {component: sink.discard}
edges: [in -> slow -> out]
YAML
"$DOCPIPE" run -c "$WORK/p.yaml" --once > "$WORK/summary.txt" 2> "$WORK/log.txt" &
pid=$!
for _ in $(seq 1 100); do  # until the pipeline runs (plugins loaded, the file taken at once)
    grep -q "started" "$WORK/log.txt" && break
    sleep 0.1
done
grep -q "started" "$WORK/log.txt" || { kill -KILL $pid; fail "the pipeline did not start"; }
sleep 0.5
kill -TERM $pid
sleep 0.2
kill -TERM $pid
wait $pid
rc=$?
[ $rc = 0 ] || fail "expected exit 0 after draining, got $rc"
grep -q "the same stop signal again within a second: still draining" "$WORK/log.txt" || fail "the repeated signal was not noted"
grep -q "documents: 1 taken, 1 completed, 0 failed" "$WORK/summary.txt" || fail "the --once summary is missing or wrong"
echo "ok: a signal repeated within a second drains and prints the summary"
