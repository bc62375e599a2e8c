#!/usr/bin/env bash
# The SDK as a third party sees it: install docpipe into a temporary prefix, build
# examples/hello-plugin against that prefix only, run the plugin's own tests, then load
# and run it in a pipeline with the docpipe binary.
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
echo "ok: SDK installed, plugin built out of tree, tested, loaded and run"
