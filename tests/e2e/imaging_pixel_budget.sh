#!/usr/bin/env bash
# End to end: hostile images that are tiny files but huge pages, through `docpipe extract`
# with the shipped claims pipeline. Before the pixel budget, the 84-byte 1x1500 PNG took
# 44-63 s and 4.5 GB (clean-up scaled it to 1000x1500000) and ended in "tesseract
# recognition failed"; an email with 20 of them ran for over 10 minutes. Now each is
# refused from its header, naming the size and the limit, in seconds.
set -euo pipefail
DOCPIPE=$1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - "$WORK" <<'PY'
import base64, struct, sys, zlib
from pathlib import Path
work = Path(sys.argv[1])
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
def white_png(w, h, padding=0):
    raw = b"".join(b"\0" + b"\xff" * w for _ in range(h))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    if padding:  # past transform.mime's min_image_bytes, so it is not skipped as a logo
        png += chunk(b"tEXt", b"Comment\0" + b"x" * padding)
    return png + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
(work / "strip.png").write_bytes(white_png(1, 1500))
parts = "".join(
    f'--B1\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n'
    f'Content-Disposition: attachment; filename="strip{i}.png"\r\n\r\n'
    + base64.encodebytes(white_png(1, 1500, 9000)).decode() for i in range(1, 21))
(work / "strips.eml").write_text(
    "From: a@example.my\r\nTo: claims@example.my\r\nSubject: claim\r\nMessage-ID: <strips@example>\r\n"
    'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B1"\r\n\r\n'
    "--B1\r\nContent-Type: text/plain\r\n\r\nReceipts attached.\r\n" + parts + "--B1--\r\n")
PY
[ "$(stat -c %s "$WORK/strip.png")" -lt 100 ] || fail "the hostile PNG should be tiny"

# Peak memory too, where GNU time is installed.
TIME=()
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -f "%M" -o "$WORK/maxrss_kb")
export OCR_DEVICE=cpu
start=$(date +%s%N)
status=0
"${TIME[@]}" timeout 120 "$DOCPIPE" extract "$WORK/strip.png" "$WORK/strips.eml" > "$WORK/out.jsonl" 2> "$WORK/err.txt" || status=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$WORK/out.jsonl"
[ "$status" = 1 ] || { cat "$WORK/err.txt"; fail "extract must exit 1 (documents failed), got $status"; }
grep -q '"route":"failed: pages: strip.png: page 1 is 1x1500 pixels, an aspect ratio of 1:1500, beyond the limit of 1:25 (max_aspect_ratio); not a receipt page; not decoded"' "$WORK/out.jsonl" \
  || fail "the 1x1500 PNG's reason"
[ "$(grep -c 'strips.eml.*failed: pages: strip[0-9]*.png: page 1 is 1x1500 pixels, an aspect ratio of 1:1500' "$WORK/out.jsonl")" = 20 ] \
  || fail "each of the 20 attachments fails alone with its reason"
[ "$ms" -lt 20000 ] || fail "took ${ms} ms (bound 20 s; it took 44 s and more before)"
if [ -s "$WORK/maxrss_kb" ]; then
  kb=$(tail -1 "$WORK/maxrss_kb")
  [ "$kb" -lt 1048576 ] || fail "peak RSS ${kb} kB (bound 1 GiB; it was 4.5 GB before)"
  echo "peak RSS ${kb} kB"
fi
echo "ok: hostile strips refused with their reasons in ${ms} ms"
