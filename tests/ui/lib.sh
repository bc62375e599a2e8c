# Sourced by the UI test scripts. start_docpipe YAML LIMIT: runs `docpipe run -c YAML` in the
# background (log in $WORK/log.txt, stdout in $WORK/out.txt) and waits up to LIMIT tenths of
# a second for its admin server. Sets PID and BASE (http://127.0.0.1:PORT); calls the
# script's own fail() when docpipe exits early or never reports its port.
start_docpipe() {
    local yaml=$1 limit=$2 port=""
    "$DOCPIPE" run -c "$yaml" > "$WORK/out.txt" 2> "$WORK/log.txt" &
    PID=$!
    for _ in $(seq 1 "$limit"); do
        port=$(grep -o 'admin API on http://127.0.0.1:[0-9]*' "$WORK/log.txt" 2> /dev/null | head -1 | sed 's/.*://')
        [ -n "$port" ] && break
        kill -0 "$PID" 2> /dev/null || fail "docpipe exited early"
        sleep 0.1
    done
    [ -n "$port" ] || fail "docpipe did not report its admin port"
    BASE="http://127.0.0.1:$port"
}
