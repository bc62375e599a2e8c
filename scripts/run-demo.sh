#!/usr/bin/env bash
# `make run`: runs the claims pipeline once over the sample claim emails in examples/inbox
# on the embedded defaults (SQLite state under var/demo, no external service), then
# prints what happened to each email.
set -euo pipefail
BUILD_DIR=${1:-build}
cd "$(dirname "$0")/.."
DEMO="$PWD/var/demo"  # absolute: relative paths in a pipeline are relative to its file
rm -rf "$DEMO"  # a fresh demo each time: state too, or dedup would skip re-sent emails
mkdir -p "$DEMO/inbox"
cp examples/inbox/*.eml "$DEMO/inbox/"
export DOCPIPE_INBOX="$DEMO/inbox" DOCPIPE_OUT="$DEMO/out" DOCPIPE_STATE_DIR="$DEMO"
# A free port for the admin API, so a docpipe already running on 8080 does not stop the demo.
export ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:0}
echo "== docpipe run -c pipelines/claims-local.yaml --once   (inbox: $DEMO/inbox)"
status=0
"$BUILD_DIR/bin/docpipe" run -c pipelines/claims-local.yaml --once || status=$?
echo
echo "== per email"
python3 scripts/demo-summary.py "$DEMO"
echo
echo "NCB records: $DEMO/out/ncb (high), $DEMO/out/ncb-flagged (medium); review: $DEMO/out/review"
echo "Check one receipt yourself:  $BUILD_DIR/bin/docpipe extract examples/inbox/sources/malaysian_receipt_test.jpg"
exit $status
