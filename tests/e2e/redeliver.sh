#!/usr/bin/env bash
# The delivery ledger while developing: a re-dropped file is not sent again and the --once
# summary says so ("1 already delivered ... not sent again"); `run --once --redeliver`
# sends it anyway, past the ledger and past transform.dedup.
# Usage: redeliver.sh DOCPIPE
set -uo pipefail
DOCPIPE=$1
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-redeliver-XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
fail() { echo "FAIL: $*"; for f in "$ROOT"/run*.out; do echo "--- $f"; cat "$f"; done; exit 1; }

write() {  # write NAME WITH_DEDUP
    local chain="inbox -> out" dedup=""
    if [ "$2" = yes ]; then chain="inbox -> dedup -> out"; dedup="  dedup: {component: transform.dedup}"; fi
    cat > "$ROOT/$1.yaml" <<YAML
version: 1
state: {backend: sqlite, path: '$ROOT/state.db'}
admin: {enabled: false}
nodes:
  inbox: {component: source.directory, config: {path: '$ROOT/inbox', settle_time: 0s}}
$dedup
  out: {component: sink.files, config: {path: '$ROOT/out', format: jsonl}}
edges: [$chain]
YAML
}
write plain no
write deduped yes
lines() { [ -f "$ROOT/out/documents.jsonl" ] && wc -l < "$ROOT/out/documents.jsonl" || echo 0; }
drop() { mkdir -p "$ROOT/inbox"; printf 'the same receipt' > "$ROOT/inbox/receipt.txt"; }

drop
"$DOCPIPE" run --once -c "$ROOT/plain.yaml" > "$ROOT/run1.out" 2>&1 || fail "first run failed"
[ "$(lines)" -eq 1 ] || fail "first run: want 1 line, got $(lines)"

drop
"$DOCPIPE" run --once -c "$ROOT/plain.yaml" > "$ROOT/run2.out" 2>&1 || fail "second run failed"
[ "$(lines)" -eq 1 ] || fail "re-drop: the ledger should keep it from being sent again, got $(lines) lines"
grep -q "1 already delivered by a sink before, not sent again" "$ROOT/run2.out" || fail "the summary does not count the ledger skip"
grep -q "tries" "$ROOT/run2.out" || fail "the summary's columns are not labelled"

drop
"$DOCPIPE" run --once --redeliver -c "$ROOT/plain.yaml" > "$ROOT/run3.out" 2>&1 || fail "--redeliver run failed"
[ "$(lines)" -eq 2 ] || fail "--redeliver: want the document sent again (2 lines), got $(lines)"
grep -q "already delivered" "$ROOT/run3.out" && fail "--redeliver still reported a ledger skip"

drop
"$DOCPIPE" run --once --redeliver -c "$ROOT/deduped.yaml" > "$ROOT/run4.out" 2>&1 || fail "--redeliver with dedup failed"
[ "$(lines)" -eq 3 ] || fail "--redeliver must pass transform.dedup too: want 3 lines, got $(lines)"

"$DOCPIPE" run --redeliver -c "$ROOT/plain.yaml" > "$ROOT/run5.out" 2>&1 && fail "--redeliver without --once was accepted"
echo "redeliver: ok"
