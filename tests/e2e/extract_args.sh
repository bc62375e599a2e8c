#!/usr/bin/env bash
# `docpipe extract`: every field of a non-claims pipeline is printed, and a missing path or a
# folder among the arguments is reported for itself while the other files are still read.
# Usage: extract_args.sh DOCPIPE TEST_PLUGIN_DIR
set -uo pipefail
DOCPIPE=$1
PLUGINS=$(cd "$2" && pwd)
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-extract-XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/a-folder"
printf 'hello' > "$ROOT/one.txt"
printf 'hello world' > "$ROOT/two.txt"
cat > "$ROOT/p.yaml" <<YAML
version: 1
plugin_paths: ['$PLUGINS']
nodes:
  in: {component: source.directory, config: {path: '$ROOT/in'}}
  fields: {component: transform.test_fields, config: {tag: counted}}
  out: {component: sink.discard}
edges: [in -> fields -> out]
YAML
"$DOCPIPE" extract -c "$ROOT/p.yaml" -j 1 "$ROOT/one.txt" "$ROOT/missing.txt" "$ROOT/a-folder" "$ROOT/two.txt" \
    > "$ROOT/out.jsonl" 2> "$ROOT/err.txt"
rc=$?
python3 - "$ROOT" "$rc" <<'PY'
import json, sys
from pathlib import Path
root, rc = Path(sys.argv[1]), int(sys.argv[2])
lines = [json.loads(l) for l in (root / "out.jsonl").read_text().splitlines()]
err = (root / "err.txt").read_text()
problems = []
def want(c, m):
    if not c: problems.append(m)
want(rc == 1, f"exit status {rc}, want 1 (some inputs failed)")
want([Path(l["file"]).name for l in lines] == ["one.txt", "missing.txt", "a-folder", "two.txt"], f"files in order: {[l['file'] for l in lines]}")
if len(lines) == 4:
    want(lines[0]["fields"] == {"bytes": 5, "tag": "counted"}, f"one.txt fields: {lines[0]['fields']}")
    want(lines[3]["fields"] == {"bytes": 11, "tag": "counted"}, f"two.txt fields: {lines[3]['fields']}")
    want(lines[1]["route"] == "failed: no such file", f"missing.txt: {lines[1]['route']}")
    want(lines[2]["route"].startswith("failed: a folder"), f"a-folder: {lines[2]['route']}")
want("missing.txt: no such file" in err, f"stderr does not name the missing file: {err!r}")
want("a-folder: a folder" in err, f"stderr does not name the folder: {err!r}")
if problems:
    print("FAIL:"); [print("  -", p) for p in problems]; sys.exit(1)
print("extract_args: ok")
PY
