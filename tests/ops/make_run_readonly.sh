#!/usr/bin/env bash
# `make run` from a read-only checkout: the demo's state and records go under
# $XDG_STATE_HOME/docpipe/demo (or DOCPIPE_OUT), nothing is written into the tree, and each
# sample email ends as it should (fields checked, not file counts).
#
# The checkout is a copy of the project's files mounted read-only in a private mount
# namespace (unshare -m), so even root cannot write there. It reuses the build folder the
# tests run from (BUILD_DIR=...): building again would double the test time, and `make run`
# finds that build up to date.
# Usage: make_run_readonly.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! unshare -m --propagation private true 2>/dev/null; then
  echo "SKIP: cannot make a private mount namespace here (unshare -m needs root or user namespaces)"
  exit 77
fi

# The project's files as a clone has them (tracked, plus new files not ignored yet).
mkdir -p "$WORK/checkout" "$WORK/home"
(cd "$SRC" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$WORK/checkout"
touch "$WORK/copied"

run_readonly() {  # run_readonly OUTFILE [VAR=value...]: make run in the read-only checkout
  local out=$1; shift
  env -i PATH="$PATH" HOME="$WORK/home" XDG_STATE_HOME="$WORK/state" OCR_DEVICE=cpu OMP_THREAD_LIMIT=1 \
    ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} ${LSAN_OPTIONS:+LSAN_OPTIONS="$LSAN_OPTIONS"} \
    ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} "$@" \
    unshare -m --propagation private bash -c '
      mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 90
      touch "$1/.probe" 2>/dev/null && { echo "checkout is still writable" >&2; exit 91; }
      make -s -C "$1" run BUILD_DIR="$2"' _ "$WORK/checkout" "$BUILD" > "$out" 2>&1
}

status=0
run_readonly "$WORK/run1.txt" || status=$?
cat "$WORK/run1.txt"
[ "$status" = 0 ] || fail "make run in a read-only checkout exited $status"
[ -z "$(cd "$WORK/checkout" && find . -newer "$WORK/copied" -print -quit)" ] || fail "something was written into the checkout"
[ ! -e "$WORK/checkout/var" ] || fail "the read-only checkout got a var/ folder"

DEMO="$WORK/state/docpipe/demo"
python3 - "$WORK/run1.txt" "$DEMO" "$DEMO/out" <<'PY'
import json, sqlite3, sys
from pathlib import Path
text, demo, out = open(sys.argv[1]).read(), Path(sys.argv[2]), Path(sys.argv[3])
def fail(msg):
    print("FAIL:", msg); sys.exit(1)
if not (demo / "state.db").exists(): fail(f"no state under {demo}")
jobs = {json.loads(d)["filename"]: json.loads(d) for (d,) in sqlite3.connect(demo / "state.db").execute("SELECT data FROM jobs")}
want = {"01-clinic-receipt.eml": "submitted", "02-malay-two-receipts.eml": "review", "03-html-forwarded.eml": "review",
        "04-no-attachment.eml": "skipped", "05-mixed-language.eml": "review"}
for name, status in want.items():
    if jobs.get(name, {}).get("status") != status: fail(f"{name}: status {jobs.get(name, {}).get('status')}, want {status}")
    if f"{name}: {status}" not in text: fail(f"the per-email summary lacks '{name}: {status}'")
records = [json.loads(p.read_text()) for p in sorted((out / "ncb").glob("*.json"))]
if len(records) != 1: fail(f"{len(records)} NCB records under {out}/ncb, want the clinic receipt's")
r = records[0]
for key, value in (("Claim Amount", 479.05), ("Event date", "2024-12-24"), ("Invoice Number", "INV-2024-001234"),
                   ("Policy Number", "POL987654321"), ("source_filename", "malaysian_receipt_test.jpg")):
    if r.get(key) != value: fail(f"NCB record {key} = {r.get(key)!r}, want {value!r}")
if "RM 479.05, 2024-12-24, invoice INV-2024-001234" not in text: fail("the summary does not show the submitted claim's fields")
reviews = [json.loads(p.read_text()) for p in (out / "review").glob("*.json")]
names = sorted(d["attributes"].get("message_id", "") for d in reviews)
if len(reviews) != 4: fail(f"{len(reviews)} claims in review, want 4 (two receipts in 02, one each in 03 and 05)")
if "no claim attachment" not in jobs["04-no-attachment.eml"].get("last_error", ""): fail("the skipped email lacks its reason")
print("read-only make run: per-email results as expected under", demo)
PY

# DOCPIPE_OUT moves the records elsewhere; the state stays under XDG_STATE_HOME.
run_readonly "$WORK/run2.txt" DOCPIPE_OUT="$WORK/records" || fail "make run with DOCPIPE_OUT exited non-zero: $(tail -5 "$WORK/run2.txt")"
python3 - "$WORK/records" <<'PY' || exit 1
import json, sys
from pathlib import Path
recs = [json.loads(p.read_text()) for p in Path(sys.argv[1], "ncb").glob("*.json")]
if [r.get("Claim Amount") for r in recs] != [479.05]:
    print("FAIL: DOCPIPE_OUT: NCB records", [r.get("Claim Amount") for r in recs]); sys.exit(1)
print("DOCPIPE_OUT: the records are where it says")
PY
[ ! -e "$WORK/state/docpipe/demo/out" ] || fail "with DOCPIPE_OUT set, records were still written under the demo folder"
echo "PASS: make run works from a read-only checkout"
