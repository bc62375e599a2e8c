#!/usr/bin/env bash
# Installs the browser tests' npm packages (playwright-core, exactly as package-lock.json
# pins them) into DEST, outside the source tree. Skipped when DEST already holds this lock.
# Usage: npm_install.sh TESTS_UI_DIR DEST
set -euo pipefail
SRC=$1
DEST=$2
command -v npm > /dev/null || { echo "FAIL: npm is not installed (it comes with Node.js; scripts/install-deps.sh installs nodejs)"; exit 1; }
mkdir -p "$DEST"
if cmp -s "$SRC/package-lock.json" "$DEST/package-lock.json" && [ -f "$DEST/node_modules/playwright-core/package.json" ]; then
    echo "npm packages for the UI tests: up to date in $DEST"
    exit 0
fi
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
cd "$DEST"
npm ci --no-audit --no-fund --loglevel=error
echo "npm packages for the UI tests: installed in $DEST"
