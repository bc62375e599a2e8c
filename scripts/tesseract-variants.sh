#!/usr/bin/env bash
# How Tesseract's own settings trade time for what a claim needs, measured with the plain
# command line on labelled receipts: the evidence behind the claims path's choice of
# language and page mode (docs/claims-measurements.md).
#
#   scripts/tesseract-variants.sh [DATA_DIR] [COUNT] [-- 'NAME=tesseract args' ...]
#
# DATA_DIR defaults to ../shared/data/sroie-train (ID.jpg with ID.json holding the labelled
# total, date and company); COUNT (default 60) takes the first COUNT receipts. Each variant
# reads every image once, one at a time, one OpenMP thread, and its text is kept in a scratch
# folder. The table gives its seconds, its time as a multiple of plain `tesseract IMG stdout
# --psm 3` (the speed yardstick of scripts/claims-eval.sh), and on how many receipts the
# labelled total, date and company appear in its text as written (an upper bound on what
# any extraction could find there, since an amount misread is lost to every rule).
#
# Each run of the command line loads its models again: `-l Latin` loads 89 MB each time
# (about 0.28 s here against 0.07 s for eng), which a pipeline that keeps the engine pays
# once. The default variants are the ones docs/claims-measurements.md reports; a language that is not
# installed (Debian: tesseract-ocr-script-latn for Latin) is skipped with a note.
set -euo pipefail
positional=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do positional+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
DATA=${positional[0]:-../shared/data/sroie-train}
COUNT=${positional[1]:-60}
cd "$(dirname "$0")/.."
[ -d "$DATA" ] || { echo "tesseract-variants: no data folder $DATA" >&2; exit 2; }
command -v tesseract > /dev/null || { echo "tesseract-variants: tesseract is not installed (scripts/install-deps.sh)" >&2; exit 2; }
if [ $# -gt 0 ]; then
  VARIANTS=("$@")
else
  VARIANTS=("plain psm 3=--psm 3" "eng psm 6=-l eng --psm 6" "eng+msa psm 6 (shipped)=-l eng+msa --psm 6"
            "eng+msa psm 4=-l eng+msa --psm 4" "Latin psm 6=-l Latin --psm 6")
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
ls "$DATA"/*.jpg | head -n "$COUNT" > "$OUT/list"
installed=$(tesseract --list-langs 2>/dev/null | tail -n +2)

echo "== Tesseract variants over $(wc -l < "$OUT/list") receipts of $DATA, one at a time, OMP_THREAD_LIMIT=1"
echo "| variant | seconds | x plain psm 3 | totals in text | dates in text | companies in text |"
echo "|---|---|---|---|---|---|"
plain=""
for v in "${VARIANTS[@]}"; do
  name=${v%%=*}
  args=${v#*=}
  lang=$(sed -n 's/.*-l \([^ ]*\).*/\1/p' <<< "$args")
  missing=""
  for l in ${lang//+/ }; do grep -qx "$l" <<< "$installed" || missing="$l"; done
  if [ -n "$missing" ]; then
    echo "| $name | (language $missing not installed: skipped) | | | | |"
    continue
  fi
  dir="$OUT/$(echo "$name" | tr -c 'A-Za-z0-9' _)"
  mkdir -p "$dir"
  start=$(date +%s.%N)
  while read -r img; do
    # shellcheck disable=SC2086  # the variant's arguments are words on purpose
    OMP_THREAD_LIMIT=1 tesseract "$img" stdout $args > "$dir/$(basename "$img" .jpg).txt" 2> /dev/null || true
  done < "$OUT/list"
  took=$(echo "$(date +%s.%N) - $start" | bc)
  [ -z "$plain" ] && plain=$took
  found=$(python3 - "$DATA" "$dir" <<'PY'
import json, os, re, sys
data, texts = sys.argv[1], sys.argv[2]
def letters(s): return re.sub(r"[^A-Z0-9]", "", s.upper())
hits = {"total": 0, "date": 0, "company": 0}
for name in os.listdir(texts):
    truth = json.load(open(os.path.join(data, name[:-4] + ".json")))
    text = open(os.path.join(texts, name), errors="replace").read()
    if truth.get("total") and truth["total"] in text: hits["total"] += 1
    if truth.get("date") and truth["date"] in text: hits["date"] += 1
    if truth.get("company") and letters(truth["company"]) in letters(text): hits["company"] += 1
print(hits["total"], hits["date"], hits["company"])
PY
)
  read -r totals dates companies <<< "$found"
  printf '| %s | %.1f | %.2f | %s | %s | %s |\n' "$name" "$took" "$(echo "$took / $plain" | bc -l)" "$totals" "$dates" "$companies"
done
