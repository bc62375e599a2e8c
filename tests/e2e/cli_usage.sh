#!/usr/bin/env bash
# The command line's answers to a mistyped command, a bad value and a file with nothing to
# claim: each says what was wrong, and the exit status is the one `docpipe --help` documents
# (2 for a usage error; CLI11's own 105-114 meant nothing to a caller; a skipped file is a
# route, not a failure). Usage: cli_usage.sh DOCPIPE SOURCE_DIR
set -uo pipefail
DOCPIPE=$1
SRC=$2
problems=0
fail() { echo "FAIL: $*"; problems=$((problems + 1)); }
expect() {  # expect WANT_RC WANT_TEXT -- command...
  local want_rc=$1 want_text=$2
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  [ "$rc" = "$want_rc" ] || fail "$* exited $rc, want $want_rc: $out"
  grep -qF -- "$want_text" <<< "$out" || fail "$* did not say '$want_text': $out"
}
expect 2 "docpipe: unknown command 'valdate' (did you mean 'validate'?)" -- "$DOCPIPE" valdate x.yaml
expect 2 "docpipe plugins: unknown command 'lst' (did you mean 'list'?)" -- "$DOCPIPE" plugins lst
expect 2 "--max-mb" -- "$DOCPIPE" extract --max-mb 0 x.jpg
expect 2 "--max-mb" -- "$DOCPIPE" extract --max-mb 17592186044416 x.jpg
expect 2 "--config is required" -- "$DOCPIPE" run
# The typo is named before what it hid (CLI11 said only "--config is required").
expect 2 "docpipe: not expected: --no-such-flag (and --config is required)" -- "$DOCPIPE" run --no-such-flag
# One component's section of docs/components.md (--markdown was ignored without --all).
expect 0 '### `sink.files`' -- "$DOCPIPE" plugins describe sink.files --markdown
expect 0 "Exit status: 0 done" -- "$DOCPIPE" --help
# An email with no attachment is read and skipped: exit 0 (it was 1, as if it had failed).
expect 0 '"route":"skipped: no claim attachment' -- env OCR_DEVICE=cpu "$DOCPIPE" extract -c "$SRC/pipelines/claims-local.yaml" \
  "$SRC/examples/inbox/04-no-attachment.eml"
expect 1 '"route":"failed: no such file"' -- env OCR_DEVICE=cpu "$DOCPIPE" extract -c "$SRC/pipelines/claims-local.yaml" \
  "$SRC/examples/inbox/04-no-attachment.eml" /nonexistent/receipt.jpg
[ "$problems" = 0 ] || exit 1
echo "cli usage: ok"
