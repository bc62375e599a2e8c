#!/usr/bin/env bash
# `docpipe extract`: every field of a non-claims pipeline is printed, and a missing path, a
# folder, a named pipe, a link to a device or to nothing, or a file above --max-mb among the
# arguments is reported for itself (at once: a pipe or /dev/zero is never read) while the
# other files are still read, a link to a file included. A file name that is not UTF-8 (Latin-1
# "résit.txt") is read, and shown with U+FFFD for its bad byte (it once aborted the whole run).
# A name with a newline or a terminal escape in it is reported on one line, escaped.
# Usage: extract_args.sh DOCPIPE TEST_PLUGIN_DIR
set -uo pipefail
DOCPIPE=$1
PLUGINS=$(cd "$2" && pwd)
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-extract-XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/a-folder"
printf 'hello' > "$ROOT/one.txt"
printf 'hello world' > "$ROOT/two.txt"
mkfifo "$ROOT/pipe.txt"
ln -s /dev/zero "$ROOT/zero.txt"
ln -s "$ROOT/nowhere.txt" "$ROOT/dangling.txt"
ln -s "$ROOT/one.txt" "$ROOT/link.txt"
head -c $((2 * 1024 * 1024)) /dev/zero > "$ROOT/big.txt"
LATIN1=$(printf 'r\xe9sit.txt')
printf 'abc' > "$ROOT/$LATIN1"
cat > "$ROOT/p.yaml" <<YAML
version: 1
plugin_paths: ['$PLUGINS']
nodes:
  in: {component: source.directory, config: {path: '$ROOT/in'}}
  fields: {component: transform.test_fields, config: {tag: counted}}
  out: {component: sink.discard}
edges: [in -> fields -> out]
YAML
timeout 60 "$DOCPIPE" extract -c "$ROOT/p.yaml" -j 1 --max-mb 1 "$ROOT/one.txt" "$ROOT/missing.txt" "$ROOT/a-folder" "$ROOT/two.txt" \
    "$ROOT/pipe.txt" "$ROOT/zero.txt" "$ROOT/dangling.txt" "$ROOT/link.txt" "$ROOT/big.txt" "$ROOT/$LATIN1" > "$ROOT/out.jsonl" 2> "$ROOT/err.txt"
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
names = ["one.txt", "missing.txt", "a-folder", "two.txt", "pipe.txt", "zero.txt", "dangling.txt", "link.txt", "big.txt", "r\ufffdsit.txt"]
want([Path(l["file"]).name for l in lines] == names, f"files in order: {[l['file'] for l in lines]}")
if len(lines) == len(names):
    want(lines[0]["fields"] == {"bytes": 5, "tag": "counted"}, f"one.txt fields: {lines[0]['fields']}")
    want(lines[3]["fields"] == {"bytes": 11, "tag": "counted"}, f"two.txt fields: {lines[3]['fields']}")
    want(lines[1]["route"] == "failed: no such file", f"missing.txt: {lines[1]['route']}")
    want(lines[2]["route"].startswith("failed: a folder"), f"a-folder: {lines[2]['route']}")
    want(lines[4]["route"] == "failed: a named pipe (FIFO), not a regular file; only files are read", f"pipe.txt: {lines[4]['route']}")
    want(lines[5]["route"] == "failed: a device, not a regular file; only files are read", f"zero.txt: {lines[5]['route']}")
    want(lines[6]["route"] == "failed: a link to a file that does not exist", f"dangling.txt: {lines[6]['route']}")
    want(lines[7]["fields"] == {"bytes": 5, "tag": "counted"}, f"link.txt (to one.txt) fields: {lines[7]['fields']}")
    want(lines[8]["route"] == "failed: the file is 2097152 bytes, above the limit of 1 MB (--max-mb)", f"big.txt: {lines[8]['route']}")
    want(lines[9]["fields"] == {"bytes": 3, "tag": "counted"}, f"r\\xe9sit.txt fields: {lines[9]['fields']}")
want("missing.txt: no such file" in err, f"stderr does not name the missing file: {err!r}")
want("a-folder: a folder" in err, f"stderr does not name the folder: {err!r}")
if problems:
    print("FAIL:"); [print("  -", p) for p in problems]; sys.exit(1)
PY
[ $? = 0 ] || exit 1
ODD=$(printf 'bad\nname\033[31m.txt')
timeout 60 "$DOCPIPE" extract -c "$ROOT/p.yaml" -j 1 "$ROOT/$ODD" > /dev/null 2> "$ROOT/odd.txt"
want="docpipe extract: $ROOT/bad\\nname\\x1b[31m.txt: no such file"
if [ "$(cat "$ROOT/odd.txt")" != "$want" ]; then
  echo "FAIL: a name with a newline and an escape is not one escaped line on stderr:"; cat -A "$ROOT/odd.txt"; exit 1
fi
# --metrics to a path that cannot be written: the results still print, the run says why and fails.
timeout 60 "$DOCPIPE" extract -c "$ROOT/p.yaml" -j 1 --metrics "$ROOT/a-folder" "$ROOT/one.txt" > "$ROOT/m.jsonl" 2> "$ROOT/m.txt"
rc=$?
[ "$rc" = 1 ] || { echo "FAIL: --metrics to a folder: exit $rc, want 1"; exit 1; }
grep -q '"bytes":5' "$ROOT/m.jsonl" || { echo "FAIL: --metrics to a folder: the result was not printed"; exit 1; }
grep -q "cannot write the metrics to $ROOT/a-folder (--metrics): Is a directory" "$ROOT/m.txt" ||
  { echo "FAIL: --metrics to a folder: $(cat "$ROOT/m.txt")"; exit 1; }
echo "extract_args: ok"
