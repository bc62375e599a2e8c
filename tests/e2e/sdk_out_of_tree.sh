#!/usr/bin/env bash
# The SDK as a third party sees it: install docpipe into a temporary prefix, build
# examples/hello-plugin and examples/word-count against that prefix only, run the plugins'
# own tests, then load and run them in pipelines with the installed docpipe binary. Also
# checks the RUNPATH of every installed plugin (first-party ones and word-count installed
# with its own `cmake --install`): each folder it names must exist and one must hold the SDK.
# Usage: sdk_out_of_tree.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD_DIR=$(cd "$1" && pwd)
SOURCE_DIR=$(cd "$2" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$BUILD_DIR" --prefix "$WORK/prefix" > "$WORK/install.log" || { cat "$WORK/install.log"; fail "install"; }
[ -f "$WORK/prefix/lib/cmake/DocpipeSDK/DocpipeSDKConfig.cmake" ] || fail "no CMake package installed"
[ -f "$WORK/prefix/include/docpipe/plugin.hpp" ] || fail "no SDK headers installed"

cmake -S "$SOURCE_DIR/examples/hello-plugin" -B "$WORK/hello" -DCMAKE_PREFIX_PATH="$WORK/prefix" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$WORK/configure.log" || { cat "$WORK/configure.log"; fail "configure"; }
cmake --build "$WORK/hello" -j2 > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; fail "build"; }
# The plugin must have been compiled against the installed headers, not the source tree.
if grep -rq -- "$SOURCE_DIR/sdk" "$WORK/hello/CMakeFiles" 2>/dev/null; then fail "hello-plugin used the source tree"; fi
ctest --test-dir "$WORK/hello" --output-on-failure > "$WORK/ctest.log" 2>&1 || { cat "$WORK/ctest.log"; fail "plugin tests"; }

DOCPIPE="$WORK/prefix/bin/docpipe"
"$DOCPIPE" plugins list --plugin-path "$WORK/hello" > "$WORK/list.txt"
grep -q "hello 1.0.0" "$WORK/list.txt" || { cat "$WORK/list.txt"; fail "plugin not listed"; }
grep -q "transform.hello" "$WORK/list.txt" || fail "component not listed"
grep -q "sink.files" "$WORK/list.txt" || fail "installed basic plugin not found next to the installed binary"
"$DOCPIPE" plugins describe transform.hello --json --plugin-path "$WORK/hello" | grep -q '"name": "greeting"' || fail "describe"

mkdir -p "$WORK/inbox"
echo "receipt" > "$WORK/inbox/resit.jpg"
cat > "$WORK/p.yaml" <<YAML
plugin_paths: [hello]
state: {backend: memory}
nodes:
  inbox: {component: source.directory, config: {path: $WORK/inbox, settle_time: 0s}}
  greet: {component: transform.hello, config: {greeting: selamat pagi}}
  out: {component: sink.files, config: {path: $WORK/out}}
edges:
  - inbox -> greet -> out
YAML
"$DOCPIPE" run -c "$WORK/p.yaml" --once > "$WORK/run.txt" 2>&1 || { cat "$WORK/run.txt"; fail "run"; }
grep -rq '"greeting": "selamat pagi, resit.jpg"' "$WORK/out" || { cat "$WORK/out"/*; fail "plugin output missing"; }

# ---- installed plugins find the SDK through their own RUNPATH ---------------------------
# The host has loaded libdocpipe_sdk.so before any plugin, so a wrong RUNPATH goes unnoticed
# until a tool (ldd, a packager, a test loading the plugin alone) looks: check it here.
check_runpath() {  # check_runpath PLUGIN.so...
    local so dir runpath entry found
    for so in "$@"; do
        dir=$(cd "$(dirname "$so")" && pwd)
        runpath=$(readelf -d "$so" | sed -n 's/.*(RUNPATH).*\[\(.*\)\].*/\1/p; s/.*(RPATH).*\[\(.*\)\].*/\1/p' | head -1)
        [ -n "$runpath" ] || fail "$so has no RUNPATH (it needs one to find libdocpipe_sdk.so)"
        found=no
        IFS=: read -r -a entries <<< "$runpath"
        for entry in "${entries[@]}"; do
            [ -n "$entry" ] || continue
            entry=${entry//\$\{ORIGIN\}/$dir}
            entry=${entry//\$ORIGIN/$dir}
            [ -d "$entry" ] || fail "$(basename "$so"): RUNPATH '$runpath' names '$entry', which does not exist"
            if compgen -G "$entry/libdocpipe_sdk.so*" > /dev/null; then found=yes; fi
        done
        [ "$found" = yes ] || fail "$(basename "$so"): no folder of its RUNPATH '$runpath' holds libdocpipe_sdk.so"
    done
}
compgen -G "$WORK/prefix/lib/docpipe/plugins/*.so" > /dev/null || fail "no plugins installed in $WORK/prefix/lib/docpipe/plugins"
check_runpath "$WORK/prefix"/lib/docpipe/plugins/*.so

# ---- examples/word-count: a config option, two ports, a health probe ---------------------
WC_SRC="$SOURCE_DIR/examples/word-count"
cmake -S "$WC_SRC" -B "$WORK/wc" -DCMAKE_PREFIX_PATH="$WORK/prefix" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$WORK/wc-configure.log" || { cat "$WORK/wc-configure.log"; fail "word-count: configure"; }
cmake --build "$WORK/wc" -j2 > "$WORK/wc-build.log" 2>&1 || { cat "$WORK/wc-build.log"; fail "word-count: build"; }
if grep -rq -- "$SOURCE_DIR/sdk" "$WORK/wc/CMakeFiles" 2>/dev/null; then fail "word-count used the source tree"; fi
ctest --test-dir "$WORK/wc" --output-on-failure --no-tests=error > "$WORK/wc-ctest.log" 2>&1 || { cat "$WORK/wc-ctest.log"; fail "word-count: plugin tests"; }
# Installed on its own, as a packager would: its RUNPATH must lead to the installed SDK.
cmake --install "$WORK/wc" --prefix "$WORK/wc-prefix" > "$WORK/wc-install.log" || { cat "$WORK/wc-install.log"; fail "word-count: install"; }
WC_SO="$WORK/wc-prefix/lib/docpipe/plugins/libdocpipe-word-count.so"
[ -f "$WC_SO" ] || fail "word-count: not installed as $WC_SO"
check_runpath "$WC_SO"

"$DOCPIPE" plugins describe transform.word_count --json --plugin-path "$(dirname "$WC_SO")" > "$WORK/wc-describe.json" \
    || fail "word-count: describe"
grep -q '"name": "counted"' "$WORK/wc-describe.json" && grep -q '"name": "empty"' "$WORK/wc-describe.json" \
    || { cat "$WORK/wc-describe.json"; fail "word-count: ports not described"; }

# A pipeline with both ports connected: counted documents to JSON files, empty ones dropped
# on purpose. plugin_paths and the folders are relative to the pipeline file.
RUN="$WORK/wc-run"
mkdir -p "$RUN/inbox"
printf 'Resit rasmi\nJumlah RM 12.50\n' > "$RUN/inbox/note.txt"
printf '  \n\t\n' > "$RUN/inbox/blank.txt"
cat > "$RUN/p.yaml" <<'YAML'
plugin_paths: [../wc-prefix/lib/docpipe/plugins]
state: {backend: memory}
nodes:
  inbox: {component: source.directory, config: {path: inbox, settle_time: 0s, patterns: ["*.txt"]}}
  count: {component: transform.word_count, config: {min_words: 1}}
  out:   {component: sink.files, config: {path: out}}
  blank: {component: sink.discard, ledger: false}
edges:
  - inbox -> count
  - count.counted -> out
  - count.empty -> blank
YAML
(cd "$RUN" && "$DOCPIPE" run -c p.yaml --once) > "$WORK/wc-run.txt" 2>&1 || { cat "$WORK/wc-run.txt"; fail "word-count: run"; }
grep -q "2 taken, 2 completed, 0 failed" "$WORK/wc-run.txt" || { cat "$WORK/wc-run.txt"; fail "word-count: summary"; }
outputs=$(find "$RUN/out" -name '*.json' | wc -l)
[ "$outputs" -eq 1 ] || { cat "$WORK/wc-run.txt"; fail "word-count: want 1 JSON file (the blank one discarded), got $outputs"; }
OUT_JSON=$(find "$RUN/out" -name '*.json')
grep -q '"word_count"' "$OUT_JSON" && grep -q '"words": 5' "$OUT_JSON" && grep -q '"characters": 23' "$OUT_JSON" \
    || { cat "$OUT_JSON"; fail "word-count: fields.word_count missing or wrong"; }
grep -q '"filename": "note.txt"' "$OUT_JSON" || { cat "$OUT_JSON"; fail "word-count: the counted document is not note.txt"; }
# Discarded counts as handled: the source acks it like any delivered document.
[ -f "$RUN/inbox/processed/blank.txt" ] || { ls -R "$RUN/inbox"; fail "word-count: the discarded document was not acked"; }

echo "ok: SDK installed, plugin RUNPATHs resolve, hello-plugin and word-count built out of tree, tested, loaded and run"
