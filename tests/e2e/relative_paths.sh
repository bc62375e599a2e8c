#!/usr/bin/env bash
# One rule for relative paths: relative to the pipeline file, whatever the working directory.
# A pipeline with relative `state.path`, source `path` and sink `path` (one given through
# ${VAR}) is run from another directory: everything lands next to the pipeline file and
# nothing is created in the working directory. A drop folder that did not exist is named.
# Usage: relative_paths.sh DOCPIPE
set -uo pipefail
DOCPIPE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-paths-XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
fail() { echo "FAIL: $*"; cat "$ROOT/run.out" 2>/dev/null; exit 1; }
mkdir -p "$ROOT/project/inbox" "$ROOT/elsewhere"
printf 'a receipt' > "$ROOT/project/inbox/r1.txt"
cat > "$ROOT/project/p.yaml" <<'YAML'
version: 1
state: {backend: sqlite, path: var/state.db}
admin: {enabled: false}
nodes:
  inbox: {component: source.directory, config: {path: inbox, settle_time: 0s}}
  out: {component: sink.files, config: {path: "${OUT_DIR:-out}"}}
edges: [inbox -> out]
YAML
cd "$ROOT/elsewhere" || exit 1
OUT_DIR=results "$DOCPIPE" run --once -c ../project/p.yaml > "$ROOT/run.out" 2>&1 || fail "the run failed"
[ -z "$(ls -A "$ROOT/elsewhere")" ] || fail "files were created in the working directory: $(ls -A "$ROOT/elsewhere")"
ls "$ROOT/project/results/"*.json > /dev/null 2>&1 || fail "no output in project/results (a \${VAR} path is relative to the file too)"
[ -f "$ROOT/project/var/state.db" ] || fail "no state.db in project/var"
[ -f "$ROOT/project/inbox/processed/r1.txt" ] || fail "the input was not moved to project/inbox/processed"

# A source folder that does not exist: created, and the warning names it.
sed -i 's/path: inbox,/path: no-such-inbox,/' "$ROOT/project/p.yaml"
"$DOCPIPE" run --once -c ../project/p.yaml > "$ROOT/run.out" 2>&1 || fail "the second run failed"
grep -q "project/no-such-inbox, did not exist: created it empty" "$ROOT/run.out" || fail "no warning naming the missing inbox"
echo "relative_paths: ok"
