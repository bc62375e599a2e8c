#!/usr/bin/env bash
# End to end: a pipeline split over a Redis stream, three docpipe processes on a real
# redis-server (append-only, so a restart keeps the stream):
#   intake   : source.directory -> sink.redis_stream          (run --once per batch)
#   worker A : source.redis_stream -> sink.files (jsonl)       (service mode)
#   worker B : source.redis_stream -> sink.files (jsonl)       (service mode, same group)
# 1. 30 files go through; every file arrives exactly once over both workers, byte-identical.
# 2. Redis is restarted while the workers run; 30 more files: the workers reconnect and,
#    in all, every one of the 60 files arrived exactly once; nothing is left pending.
# 3. SIGTERM stops both workers cleanly (exit 0).
set -euo pipefail
DOCPIPE=$1
WORK=$(mktemp -d)
REDIS_PID=""
PIDS=()
# Every process is gone before its folder is removed: redis-server writes its append-only
# files as it shuts down, and it is no child of this script (--daemonize), so it is polled,
# not waited for. Removing the folder under it failed the test after every check had passed
# ("rm: cannot remove ...: Directory not empty"), when tests ran 2 at a time.
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    if [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null; then
        for _ in $(seq 200); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.05; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$WORK"/*.log; do echo "--- $f"; tail -20 "$f"; done >&2
    exit 1
}

PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
start_redis() {
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always --dir "$WORK" \
        --daemonize yes --pidfile "$WORK/redis.pid" --logfile "$WORK/redis-server.log"
    for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
    REDIS_PID=$(cat "$WORK/redis.pid")
}
stop_redis() {
    kill "$REDIS_PID"
    for _ in $(seq 200); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.05; done
}
start_redis
URL="redis://127.0.0.1:$PORT/0"

mkdir -p "$WORK/inbox" "$WORK/sent"
cat > "$WORK/intake.yaml" <<YAML
state: {backend: sqlite, path: $WORK/intake.db}
nodes:
  inbox:
    component: source.directory
    config: {path: $WORK/inbox, settle_time: 0s}
  to_stream:
    component: sink.redis_stream
    config: {redis: "$URL", stream: e2e:docs, inline_limit: 2048, max_length: 10000}
edges: [inbox -> to_stream]
YAML
worker_yaml() {  # name
    cat > "$WORK/$1.yaml" <<YAML
state: {backend: sqlite, path: $WORK/$1.db}
admin: {listen: '127.0.0.1:0'}
nodes:
  from_stream:
    component: source.redis_stream
    config: {redis: "$URL", stream: e2e:docs, group: delivery, consumer: $1, block: 200ms, claim_idle: 5s,
             claim_every: 500ms, reconnect_backoff_max: 500ms}
  out:
    component: sink.files
    config: {path: $WORK/out-$1, format: jsonl, include_content: true}
edges: [from_stream -> out]
YAML
}
worker_yaml a
worker_yaml b
"$DOCPIPE" validate "$WORK/intake.yaml" || fail "intake pipeline does not validate"
"$DOCPIPE" validate "$WORK/a.yaml" || fail "worker pipeline does not validate"

"$DOCPIPE" run -c "$WORK/a.yaml" > "$WORK/a.log" 2>&1 & PIDS+=($!)
"$DOCPIPE" run -c "$WORK/b.yaml" > "$WORK/b.log" 2>&1 & PIDS+=($!)

make_files() {  # from to: small text files and a few binary ones above inline_limit (blobs)
    for i in $(seq "$1" "$2"); do
        if (( i % 5 == 0 )); then head -c $((4096 + i)) /dev/urandom > "$WORK/inbox/file-$i.bin"
        else echo "receipt $i $(date +%s%N)" > "$WORK/inbox/file-$i.txt"; fi
    done
    cp "$WORK/inbox/"file-* "$WORK/sent/"
}

# Checks that every file in sent/ arrived exactly once over both workers, byte-identical.
check() {  # expected count
    python3 - "$WORK" "$1" <<'PY'
import base64, json, os, sys, collections
work, expected = sys.argv[1], int(sys.argv[2])
lines = []
for w in ("a", "b"):
    path = os.path.join(work, f"out-{w}", "documents.jsonl")
    if os.path.exists(path):
        lines += [(w, json.loads(l)) for l in open(path) if l.strip()]
names = collections.Counter(d["attributes"]["filename"] for _, d in lines)
if len(lines) < expected:
    sys.exit(f"waiting: {len(lines)} of {expected}")
dups = [n for n, c in names.items() if c > 1]
if dups: sys.exit(f"FATAL duplicates: {dups}")
sent = set(os.listdir(os.path.join(work, "sent")))
if set(names) != sent: sys.exit(f"FATAL missing {sorted(sent - set(names))} extra {sorted(set(names) - sent)}")
for _, d in lines:
    want = open(os.path.join(work, "sent", d["attributes"]["filename"]), "rb").read()
    if base64.b64decode(d["parts"][0]["base64"]) != want: sys.exit("FATAL content differs: " + d["attributes"]["filename"])
per = collections.Counter(w for w, _ in lines)
print(f"{len(lines)} documents, each once (worker a: {per['a']}, b: {per['b']})")
PY
}
wait_for() {  # expected count
    for _ in $(seq 300); do
        if out=$(check "$1" 2>&1); then echo "$out"; return 0; fi
        case "$out" in *FATAL*) fail "$out" ;; esac
        sleep 0.2
    done
    fail "timed out: $out"
}

make_files 1 30
"$DOCPIPE" run -c "$WORK/intake.yaml" --once > "$WORK/intake1.log" 2>&1 || fail "intake --once exited $?"
[ "$(ls "$WORK/inbox/processed" | wc -l)" = 30 ] || fail "intake did not ack all 30 files"
wait_for 30
echo "ok 1 30 files over the stream, each once"

stop_redis
sleep 1  # the workers see the outage and back off
start_redis
make_files 31 60
"$DOCPIPE" run -c "$WORK/intake.yaml" --once > "$WORK/intake2.log" 2>&1 || fail "intake --once after restart exited $?"
wait_for 60
for _ in $(seq 50); do
    [ "$(redis-cli -p "$PORT" XPENDING e2e:docs delivery | head -1)" = 0 ] && break
    sleep 0.2
done
[ "$(redis-cli -p "$PORT" XPENDING e2e:docs delivery | head -1)" = 0 ] || fail "entries left pending"
[ "$(redis-cli -p "$PORT" --scan --pattern 'docpipe:blob:*' | wc -l)" = 0 ] || fail "blobs left after every entry was acked"
grep -q "reconnecting" "$WORK/a.log" "$WORK/b.log" || fail "no worker noticed the Redis restart"
echo "ok 2 Redis restarted mid-run: 60 files, each once, none pending, blobs cleaned up"

for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "a worker exited $? on SIGTERM"; done
PIDS=()
echo "ok 3 workers stopped cleanly"
