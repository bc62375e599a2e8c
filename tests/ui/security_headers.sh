#!/usr/bin/env bash
# The review UI's HTTP side, with curl against the real docpipe binary:
#  - /ui/ and its files are served without a key, with a CSP that has no 'unsafe-inline',
#    X-Frame-Options: DENY and nosniff; ETag revalidation answers 304; /ui redirects to /ui/
#  - every /api/ endpoint the UI uses answers 401 without a key and 403 with a wrong one
#  - labelled keys ({label, key}) and a plain key both work, and the label is who you are (a
#    plain key is "key N" by its place in the file, an empty entry before it counted)
#  - the served HTML/JS has no inline script or style and never uses innerHTML
#  - no key appears in the log
# Usage: security_headers.sh DOCPIPE
set -uo pipefail
DOCPIPE=$1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-ui-headers-XXXXXX")
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2> /dev/null && wait "$PID" 2> /dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
fail() { echo "FAIL: $*"; tail -20 "$WORK/log.txt" 2> /dev/null; exit 1; }

ALICE=alice-0123456789abcdef0123456789abcdef
PLAIN=plain-0123456789abcdef0123456789abcdef
mkdir -p "$WORK/inbox"
cat > "$WORK/p.yaml" <<YAML
state: {backend: sqlite, path: $WORK/state.db}
admin:
  listen: 127.0.0.1:0
  api_keys:
    - {label: alice, key: "$ALICE"}
    - "\${DOCPIPE_TEST_UNSET_KEY:-}"
    - "$PLAIN"
  rate_limit_per_second: 500
  rate_limit_burst: 500
nodes:
  inbox:
    component: source.directory
    config: {path: $WORK/inbox, settle_time: 0s}
  out:
    component: sink.files
    config: {path: $WORK/out}
edges:
  - inbox -> out
YAML
"$DOCPIPE" validate "$WORK/p.yaml" > "$WORK/validate.txt" 2>&1 || { cat "$WORK/validate.txt"; fail "labelled api_keys were not accepted by validate"; }
start_docpipe "$WORK/p.yaml" 100
checks=0
pass() { checks=$((checks + 1)); }

# ---- the UI's files: no key, strict headers ----
for path in /ui/ /ui/app.js /ui/app.css /ui/api.js /ui/dom.js /ui/review.js /ui/jobs.js /ui/dashboard.js /ui/favicon.svg; do
    code=$(curl -s -o "$WORK/body" -D "$WORK/head" -w '%{http_code}' "$BASE$path")
    [ "$code" = 200 ] || fail "GET $path without a key: $code (the UI's files need no key)"
    csp=$(grep -i '^content-security-policy:' "$WORK/head" | tr -d '\r')
    [ -n "$csp" ] || fail "$path: no Content-Security-Policy"
    echo "$csp" | grep -q "unsafe-inline" && fail "$path: CSP allows unsafe-inline: $csp"
    echo "$csp" | grep -q "unsafe-eval" && fail "$path: CSP allows unsafe-eval: $csp"
    echo "$csp" | grep -q "script-src 'self'" || fail "$path: CSP without script-src 'self': $csp"
    echo "$csp" | grep -q "frame-ancestors 'none'" || fail "$path: CSP without frame-ancestors 'none': $csp"
    grep -qi '^x-frame-options: DENY' "$WORK/head" || fail "$path: no X-Frame-Options: DENY"
    grep -qi '^x-content-type-options: nosniff' "$WORK/head" || fail "$path: no nosniff"
    grep -qi '^etag: "' "$WORK/head" || fail "$path: no ETag"
    pass
done
curl -s -D "$WORK/head" -o /dev/null "$BASE/ui/app.js"
grep -qi '^content-type: text/javascript' "$WORK/head" || fail "app.js content type: $(grep -i content-type "$WORK/head")"
etag=$(grep -i '^etag:' "$WORK/head" | sed 's/^[Ee][Tt][Aa][Gg]: //' | tr -d '\r')
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$BASE/ui/app.js")
[ "$code" = 304 ] || fail "If-None-Match with the ETag: $code, want 304"
pass
code=$(curl -s -o /dev/null -D "$WORK/head" -w '%{http_code}' "$BASE/ui")
[ "$code" = 308 ] && grep -qi '^location: /ui/' "$WORK/head" || fail "/ui does not redirect to /ui/ ($code)"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/ui/nope.js")" = 404 ] || fail "an unknown UI file is not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/ui/..%2Fadmin.key")" = 404 ] || fail "a path outside the UI is not 404"
pass

# ---- what the browser gets cannot run injected markup ----
curl -s "$BASE/ui/" > "$WORK/index.html"
grep -o '<script[^>]*>' "$WORK/index.html" | grep -v ' src=' && fail "index.html has an inline script"
grep -qi ' style=' "$WORK/index.html" && fail "index.html has an inline style attribute"
grep -qi '<style' "$WORK/index.html" && fail "index.html has an inline <style>"
for js in app api dom review jobs dashboard; do
    curl -s "$BASE/ui/$js.js" > "$WORK/$js.js"
    [ -s "$WORK/$js.js" ] || fail "$js.js is empty"
    grep -n 'innerHTML\|outerHTML\|insertAdjacentHTML\|document.write\|eval(' "$WORK/$js.js" && fail "$js.js builds HTML from strings"
    grep -n "setAttribute('style'\|\.style\." "$WORK/$js.js" && fail "$js.js sets inline styles (blocked by the CSP)"
done
pass

# ---- every API call needs a key ----
ENDPOINTS=(
    "GET /api/v1/session" "GET /api/v1/jobs" "GET /api/v1/jobs?q=x" "GET /api/v1/jobs/x" "GET /api/v1/jobs/x/audit"
    "GET /api/v1/exceptions" "GET /api/v1/exceptions?route=low" "GET /api/v1/exceptions/x"
    "GET /api/v1/exceptions/x/documents/y/pages/0/image" "GET /api/v1/stats/dashboard" "GET /api/v1/stats/history"
    "POST /api/v1/exceptions/x/approve" "POST /api/v1/exceptions/x/reject" "POST /api/v1/jobs/x/retry"
)
for e in "${ENDPOINTS[@]}"; do
    method=${e%% *}
    path=${e#* }
    code=$(curl -s -o "$WORK/body" -D "$WORK/head" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' --data-binary '{}' "$BASE$path")
    [ "$code" = 401 ] || fail "$method $path without a key: $code, want 401"
    grep -qi '^x-frame-options: DENY' "$WORK/head" || fail "$method $path: no X-Frame-Options on the API answer"
    code=$(curl -s -o /dev/null -w '%{http_code}' -X "$method" -H 'X-API-Key: wrong-key-wrong-key-wrong-key-wrong' -H 'Content-Type: application/json' --data-binary '{}' "$BASE$path")
    [ "$code" = 403 ] || fail "$method $path with a wrong key: $code, want 403"
    pass
done
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/v1/session?api_key=$ALICE")
[ "$code" = 401 ] || fail "a key in the query string was accepted ($code): keys go in headers only"
pass

# ---- labelled and plain keys ----
curl -s -D "$WORK/head" -H "X-API-Key: $ALICE" "$BASE/api/v1/session" > "$WORK/alice.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["data"]["label"]=="alice" else 1)' "$WORK/alice.json" \
    || fail "the labelled key's session: $(cat "$WORK/alice.json")"
grep -qi '^cache-control: no-store' "$WORK/head" || fail "API answers must not be cached"
curl -s -H "Authorization: Bearer $PLAIN" "$BASE/api/v1/session" > "$WORK/plain.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["data"]["label"]=="key 3" else 1)' "$WORK/plain.json" \
    || fail "the plain key's session: $(cat "$WORK/plain.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $ALICE" "$BASE/api/v1/stats/history?days=14")
[ "$code" = 200 ] || fail "history with a key: $code"
pass

# A bad entry is reported with its place, before anything starts.
cat > "$WORK/bad.yaml" <<YAML
admin: {listen: 127.0.0.1:0, api_keys: [{label: bob, secret: x}]}
nodes:
  inbox: {component: source.directory, config: {path: $WORK/inbox}}
  out: {component: sink.files, config: {path: $WORK/out}}
edges: [inbox -> out]
YAML
"$DOCPIPE" validate "$WORK/bad.yaml" > "$WORK/bad.txt" 2>&1 && fail "an api_keys entry without a key was accepted"
grep -q "admin.api_keys\[0\]" "$WORK/bad.txt" || fail "the bad entry is not named: $(cat "$WORK/bad.txt")"
pass

kill "$PID" && wait "$PID" 2> /dev/null
PID=""
for k in "$ALICE" "$PLAIN" wrong-key-wrong-key-wrong-key-wrong; do
    grep -qF "$k" "$WORK/log.txt" "$WORK/out.txt" && fail "a key appears in docpipe's output"
done
pass
echo "ui security headers: $checks checks passed"
