#!/usr/bin/env bash
# `make run`: runs the claims pipeline once over the sample claim emails in examples/inbox
# on the embedded defaults (SQLite state, no external service), then prints what happened
# to each email.
#
# Where it writes: var/demo in the project when the project folder is writable; in a
# read-only checkout, $XDG_STATE_HOME/docpipe/demo (~/.local/state/docpipe/demo).
# DOCPIPE_DEMO_DIR overrides both; DOCPIPE_OUT, when set, takes the sinks' output instead
# (it is not emptied first: records of earlier runs there stay, and are listed too).
# Nothing is ever written into the source tree otherwise.
set -euo pipefail
BUILD_DIR=${1:-build}
cd "$(dirname "$0")/.."
if [ -n "${DOCPIPE_DEMO_DIR:-}" ]; then
  DEMO=$DOCPIPE_DEMO_DIR
elif [ -w . ]; then
  DEMO="$PWD/var/demo"
else
  DEMO="${XDG_STATE_HOME:-$HOME/.local/state}/docpipe/demo"
fi
case "$DEMO" in /*) ;; *) DEMO="$PWD/$DEMO" ;; esac  # relative paths in a pipeline are relative to its file
rm -rf "$DEMO"  # a fresh demo each time: state too, or dedup would skip re-sent emails
mkdir -p "$DEMO/inbox"
cp examples/inbox/*.eml "$DEMO/inbox/"
export DOCPIPE_INBOX="$DEMO/inbox" DOCPIPE_OUT="${DOCPIPE_OUT:-$DEMO/out}" DOCPIPE_STATE_DIR="$DEMO"
case "$DOCPIPE_OUT" in /*) ;; *) DOCPIPE_OUT="$PWD/$DOCPIPE_OUT" ;; esac
# A free port for the admin API, so a docpipe already running on 8080 does not stop the demo.
export ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:0}
echo "== docpipe run -c pipelines/claims-local.yaml --once   (inbox: $DEMO/inbox)"
status=0
"$BUILD_DIR/bin/docpipe" run -c pipelines/claims-local.yaml --once || status=$?
echo
echo "== per email"
python3 scripts/demo-summary.py "$DEMO" "$DOCPIPE_OUT"
echo
echo "NCB records: $DOCPIPE_OUT/ncb (high), $DOCPIPE_OUT/ncb-flagged (medium); review: $DOCPIPE_OUT/review"
echo "Check one receipt yourself:  $BUILD_DIR/bin/docpipe extract examples/inbox/sources/malaysian_receipt_test.jpg"
exit $status
