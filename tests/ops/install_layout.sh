#!/usr/bin/env bash
# `cmake --install` lays out bin/docpipe, the plugins, share/docpipe/{pipelines,claims}, the
# systemd units (with the prefix's paths), the service files and docs, and the SDK package;
# the installed docpipe finds its plugins relative to its own prefix with no environment at
# all (also after the prefix is moved), and DOCPIPE_PLUGIN_PATH adds a folder.
# Usage: install_layout.sh BUILD_DIR SOURCE_DIR EXTRA_PLUGIN_DIR
set -euo pipefail
BUILD_DIR=$(cd "$1" && pwd)
SOURCE_DIR=$(cd "$2" && pwd)
EXTRA=$(cd "$3" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-install-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

PREFIX=$WORK/prefix
cmake --install "$BUILD_DIR" --prefix "$PREFIX" > "$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "cmake --install"; }

PLUGIN_DIR=$(dirname "$(find "$PREFIX" -name libdocpipe-basic.so | head -1)")
[ -d "$PLUGIN_DIR" ] || fail "no plugin folder in the install"
case "$PLUGIN_DIR" in "$PREFIX"/lib*/docpipe/plugins) ;; *) fail "plugins in $PLUGIN_DIR, not <prefix>/<libdir>/docpipe/plugins" ;; esac
LIBDIR=$(dirname "$(dirname "$PLUGIN_DIR")")
expect() { for f in "$@"; do [ -e "$f" ] || fail "not installed: ${f#"$PREFIX"/}"; done; }
expect "$PREFIX/bin/docpipe" \
       "$PLUGIN_DIR"/libdocpipe-{basic,claims,google,imaging,mail,tesseract}.so \
       "$LIBDIR/libdocpipe_sdk.so" "$LIBDIR/cmake/DocpipeSDK/DocpipeSDKConfig.cmake" "$LIBDIR/cmake/DocpipeSDK/DocpipePlugin.cmake" \
       "$PREFIX/include/docpipe/plugin.hpp" \
       "$PREFIX/share/docpipe/claims/rules.yaml" \
       "$PREFIX/share/docpipe/docpipe.env.example" \
       "$PREFIX/share/docpipe/systemd/docpipe-cuda.conf.example" \
       "$PREFIX/share/docpipe/prometheus/alerts.yml" \
       "$PREFIX/share/doc/docpipe/RUNBOOK.md" "$PREFIX/share/doc/docpipe/metrics.md" \
       "$PREFIX/lib/systemd/system/docpipe.service" "$PREFIX/lib/systemd/system/docpipe@.service"
for p in "$SOURCE_DIR"/pipelines/*.yaml; do expect "$PREFIX/share/docpipe/pipelines/$(basename "$p")"; done
for unit in docpipe.service docpipe@.service; do
    grep -q "$PREFIX/bin/docpipe run" "$PREFIX/lib/systemd/system/$unit" || fail "$unit does not run the installed binary"
    grep -q "/usr/bin/docpipe" "$PREFIX/lib/systemd/system/$unit" && fail "$unit still names /usr/bin/docpipe"
done
grep -q "$PREFIX/share/docpipe/pipelines/claims-gmail.yaml" "$PREFIX/lib/systemd/system/docpipe.service" \
    || fail "docpipe.service does not name the installed claims-gmail.yaml"

# No environment at all: only what the binary finds from where it is.
list() {  # list PREFIX [VAR=VALUE...]: `plugins list` of that install
    local prefix=$1; shift
    env -i PATH=/usr/bin:/bin HOME="$WORK" "$@" "$prefix/bin/docpipe" plugins list
}
check_found() {  # check_found PREFIX OUTPUT_FILE [ALSO_ALLOWED_DIR]
    local prefix=$1 out=$2 also=${3:-$1} pkg
    for pkg in basic claims google imaging mail tesseract; do
        grep -q "file: $prefix/.*/libdocpipe-$pkg.so" "$out" || { cat "$out"; fail "plugin package $pkg not found under $prefix"; }
    done
    grep -q "^FAILED" "$out" && { cat "$out"; fail "a plugin failed to load"; }
    if grep "file: " "$out" | grep -v "<built into docpipe>" | grep -v "file: $also/" | grep -qv "file: $prefix/"; then
        cat "$out"; fail "plugins loaded from outside $prefix"
    fi
    grep -q "sink.ncb" "$out" || fail "component sink.ncb not listed"
}
list "$PREFIX" > "$WORK/list.txt" 2>&1 || { cat "$WORK/list.txt"; fail "plugins list"; }
check_found "$PREFIX" "$WORK/list.txt"
grep -q "transform.loader_echo" "$WORK/list.txt" && fail "the extra test plugin is listed without DOCPIPE_PLUGIN_PATH"

list "$PREFIX" DOCPIPE_PLUGIN_PATH="$EXTRA" > "$WORK/list-extra.txt" 2>&1 || { cat "$WORK/list-extra.txt"; fail "plugins list with DOCPIPE_PLUGIN_PATH"; }
grep -q "transform.loader_echo" "$WORK/list-extra.txt" || { cat "$WORK/list-extra.txt"; fail "DOCPIPE_PLUGIN_PATH=$EXTRA: its component is not listed"; }
grep -q "file: $EXTRA/" "$WORK/list-extra.txt" || fail "the extra plugin does not come from $EXTRA"
check_found "$PREFIX" "$WORK/list-extra.txt" "$EXTRA"

# An installed pipeline validates with the installed plugins (claims-local: every first-party package).
env -i PATH=/usr/bin:/bin HOME="$WORK" "$PREFIX/bin/docpipe" validate "$PREFIX/share/docpipe/pipelines/claims-local.yaml" \
    > "$WORK/validate.txt" 2>&1 || { cat "$WORK/validate.txt"; fail "validate of the installed claims-local.yaml"; }

# Moved elsewhere (an unpacked tarball, a package root): still its own plugins.
mv "$PREFIX" "$WORK/moved"
list "$WORK/moved" > "$WORK/list-moved.txt" 2>&1 || { cat "$WORK/list-moved.txt"; fail "plugins list after moving the prefix"; }
check_found "$WORK/moved" "$WORK/list-moved.txt"
echo "PASS: install layout; plugins found from $PLUGIN_DIR, after a move, and from DOCPIPE_PLUGIN_PATH"
