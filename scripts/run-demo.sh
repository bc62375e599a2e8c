#!/usr/bin/env bash
# `make run`: runs the shipped pipeline once over the sample inbox, on the embedded
# defaults (SQLite state under var/demo), and prints the summary.
set -euo pipefail
BUILD_DIR=${1:-build}
cd "$(dirname "$0")/.."
DEMO=var/demo
rm -rf "$DEMO"  # a fresh demo each time: state too, or the ledger would skip re-sent files
mkdir -p "$DEMO/inbox"
find examples/inbox -maxdepth 1 -type f ! -name README.md -exec cp {} "$DEMO/inbox/" \;
export DOCPIPE_INBOX="$DEMO/inbox" DOCPIPE_OUT="$DEMO/out" DOCPIPE_STATE_DIR="$DEMO"
echo "== docpipe run -c pipelines/drop-folder.yaml --once   (inbox: $DEMO/inbox)"
"$BUILD_DIR/bin/docpipe" run -c pipelines/drop-folder.yaml --once
echo "== outputs in $DEMO/out:"
ls -1 "$DEMO/out"
echo "== processed files in $DEMO/inbox/processed:"
ls -1 "$DEMO/inbox/processed"
