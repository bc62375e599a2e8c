#!/usr/bin/env bash
# deploy/systemd: `systemd-analyze verify` is clean on docpipe.service, on an instance of
# docpipe@.service and on both with the CUDA drop-in, and `systemd-analyze security` keeps
# the exposure score at or under MAX_EXPOSURE.
#
# verify checks that ExecStart's program exists, so the units are written the way
# `cmake --install` writes them (deploy/install-units.cmake) for a temporary prefix whose
# bin/docpipe is this build's binary.
# Usage: systemd_units.sh SOURCE_DIR DOCPIPE_BINARY
set -euo pipefail
SOURCE_DIR=$(cd "$1" && pwd)
DOCPIPE=$2
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
if ! command -v systemd-analyze > /dev/null; then
    echo "SKIP: systemd-analyze not found (Debian package 'systemd'; scripts/install-deps.sh installs it)"
    exit 77
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-units-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

PREFIX=$WORK/prefix
cmake -DCMAKE_INSTALL_PREFIX="$PREFIX" -DDOCPIPE_UNIT_SOURCE_DIR="$SOURCE_DIR/deploy/systemd" \
      -DDOCPIPE_UNIT_DIR=lib/systemd/system -DDOCPIPE_BINDIR=bin -DDOCPIPE_DATADIR=share -DDOCPIPE_DOCDIR=share/doc/docpipe \
      -P "$SOURCE_DIR/deploy/install-units.cmake" > "$WORK/install.log"
mkdir -p "$PREFIX/bin"
ln -s "$(cd "$(dirname "$DOCPIPE")" && pwd)/$(basename "$DOCPIPE")" "$PREFIX/bin/docpipe"
UNITS=$PREFIX/lib/systemd/system
for unit in docpipe.service docpipe@.service; do
    [ -f "$UNITS/$unit" ] || fail "$unit was not written"
    grep -q "/usr/bin/docpipe" "$UNITS/$unit" && fail "$unit still names /usr/bin/docpipe after the prefix was applied"
    grep -q "$PREFIX/bin/docpipe" "$UNITS/$unit" || fail "$unit does not run $PREFIX/bin/docpipe"
    for key in Type=notify WatchdogSec= Restart=on-failure DynamicUser=yes StateDirectory= LogsDirectory= RuntimeDirectory= \
               LoadCredential=admin-key: LoadCredential=ncb-api-key: LoadCredential=google.json: 'ExecReload=/bin/kill -HUP $MAINPID' \
               NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
               RestrictAddressFamilies= SystemCallFilter=@system-service MemoryMax=; do
        grep -q "^$key" "$UNITS/$unit" || fail "$unit lacks $key"
    done
done

# The credential names must be the files the shipped pipelines read from $CREDENTIALS_DIRECTORY.
for name in $(grep -ho 'CREDENTIALS_DIRECTORY[^}]*}/[A-Za-z0-9._-]*' "$SOURCE_DIR"/pipelines/*.yaml | sed 's|.*}/||' | sort -u); do
    for unit in docpipe.service docpipe@.service; do
        grep -q "^LoadCredential=$name:" "$UNITS/$unit" || fail "pipelines read \${CREDENTIALS_DIRECTORY}/$name but $unit has no LoadCredential=$name:"
    done
done

verify() {  # verify LABEL UNIT_PATH: no output at all is the only pass
    local out
    out=$(systemd-analyze verify --man=no "$2" 2>&1) || true
    if [ -n "$out" ]; then
        echo "$out" >&2
        fail "systemd-analyze verify reported problems in $1"
    fi
    echo "verify $1: clean"
}
score() {  # score LABEL UNIT_PATH: prints and checks the exposure level
    local line value
    line=$(systemd-analyze security --offline=true --no-pager "$2" 2>&1 | grep 'Overall exposure level') || fail "no security score for $1"
    value=$(echo "$line" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
    echo "security $1: $value ($line)"
    awk -v v="$value" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(v <= max) }' || fail "$1 exposure $value is over $MAX_EXPOSURE"
}

verify docpipe.service "$UNITS/docpipe.service"
verify docpipe@claims-gmail.service "$UNITS/docpipe@claims-gmail.service"
score docpipe.service "$UNITS/docpipe.service"
score docpipe@claims-gmail.service "$UNITS/docpipe@claims-gmail.service"

# With the CUDA drop-in (device nodes allowed, PrivateDevices off).
for unit in docpipe.service docpipe@.service; do
    mkdir -p "$UNITS/$unit.d"
    cp "$SOURCE_DIR/deploy/systemd/docpipe-cuda.conf.example" "$UNITS/$unit.d/cuda.conf"
done
verify "docpipe.service + cuda drop-in" "$UNITS/docpipe.service"
verify "docpipe@claims-gmail.service + cuda drop-in" "$UNITS/docpipe@claims-gmail.service"
score "docpipe.service + cuda drop-in" "$UNITS/docpipe.service"
echo "PASS"
