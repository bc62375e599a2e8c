#!/usr/bin/env bash
# bench_claims_eval --seen-shops: the figures split by whether the receipt's shop (its labelled
# company, letters and digits only) is among the shops of the given folders, and a folder
# that is not one is refused with its name.
# Usage: claims_eval_seen_shops_test.sh BENCH_CLAIMS_EVAL
set -uo pipefail
BENCH=$1
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-seen-shops-XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/truth" "$ROOT/seen"
truth() { printf '{"company": "%s", "date": "%s", "address": "1 JALAN A", "total": "%s"}\n' "$2" "$3" "$4" > "$1"; }
# Two receipts of a shop the seen folder holds (spelt another way there), one of a new shop.
truth "$ROOT/truth/001.json" "MR. D.I.Y. (M) SDN BHD" "01/02/2018" "10.00"
truth "$ROOT/truth/002.json" "MR. D.I.Y. (M) SDN BHD" "02/02/2018" "20.00"
truth "$ROOT/truth/003.json" "NEW SHOP ENTERPRISE" "03/02/2018" "30.00"
truth "$ROOT/seen/900.json" "MR D.I.Y. (M) SDN. BHD." "09/09/2017" "1.00"
field() { printf '"%s": {"value": %s, "confidence": %s}' "$1" "$2" "$3"; }
{
  # 001: all right, in the high band; 002: the total wrong; 003: all right, in the high band.
  echo "{\"file\": \"001.jpg\", \"fields\": {$(field total_amount 10.0 0.97), $(field service_date '"2018-02-01"' 0.95), $(field provider_name '"MR. D.I.Y. (M) SDN BHD"' 0.9)}}"
  echo "{\"file\": \"002.jpg\", \"fields\": {$(field total_amount 21.0 0.60), $(field service_date '"2018-02-02"' 0.95), $(field provider_name '"MR. D.I.Y. (M) SDN BHD"' 0.9)}}"
  echo "{\"file\": \"003.jpg\", \"fields\": {$(field total_amount 30.0 0.99), $(field service_date '"2018-02-03"' 0.93), $(field provider_name '"NEW SHOP ENTERPRISE"' 0.9)}}"
} > "$ROOT/results.jsonl"
fail=0
"$BENCH" --truth "$ROOT/truth" --results "$ROOT/results.jsonl" --seen-shops "$ROOT/seen" > "$ROOT/out.txt" 2>&1
rc=$?
[ "$rc" = 0 ] || { echo "FAIL: exit $rc"; fail=1; }
expect() {
  grep -qF -- "$1" "$ROOT/out.txt" || { echo "FAIL: no line with: $1"; fail=1; }
}
expect "against the 1 shops of $ROOT/seen"
expect "| shop among them | 2 | 1 (50.0%) | 2 (100.0%) | 2 (100.0%) | 0 (0.0%) | 1 (50.0%): 1 (100.0%) |"
expect "| shop not among them | 1 | 1 (100.0%) | 1 (100.0%) | 1 (100.0%) | 0 (0.0%) | 1 (100.0%): 1 (100.0%) |"
# Without the option the split is not printed.
"$BENCH" --truth "$ROOT/truth" --results "$ROOT/results.jsonl" > "$ROOT/plain.txt" 2>&1
grep -q "shop among them" "$ROOT/plain.txt" && { echo "FAIL: split printed without --seen-shops"; fail=1; }
# A folder that is not there: refused, named.
"$BENCH" --truth "$ROOT/truth" --results "$ROOT/results.jsonl" --seen-shops "$ROOT/nowhere" > "$ROOT/bad.txt" 2>&1
rc=$?
[ "$rc" = 2 ] || { echo "FAIL: a missing --seen-shops folder exits $rc, not 2"; fail=1; }
grep -qF "$ROOT/nowhere is not a folder" "$ROOT/bad.txt" || { echo "FAIL: the missing folder is not named"; cat "$ROOT/bad.txt"; fail=1; }
[ "$fail" = 0 ] && echo "PASS" || { cat "$ROOT/out.txt"; exit 1; }
