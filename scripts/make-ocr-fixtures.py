#!/usr/bin/env python3
"""Compact OCR readings of the SROIE dev receipts for the claims regression test.

Reads folders of documents written by sink.files after ocr.tesseract, one per reading
in the order pipelines/claims-local.yaml makes them (psm 6; psm 4; psm 4 on thickened
strokes), and writes tests/data/sroie-ocr/NNN.json with what transform.claims uses: line
text, line confidence and box, word text, confidence and line. Word boxes are left out
(not used).

    scripts/make-ocr-fixtures.py [--out OUT_DIR] FIRST_DIR [SECOND_DIR [THIRD_DIR ...]]
"""
import glob
import json
import os
import sys


def compact(doc):
    ocr = doc["pages"][0]["ocr"]
    lines = [[l["text"], round(l.get("confidence", 0), 1), *l.get("box", [0, 0, 0, 0])] for l in ocr["lines"]]
    words = [[w["text"], round(w.get("confidence", 0), 1), w.get("line", -1)] for w in ocr["words"]]
    return {"engine": ocr.get("engine", ""), "lines": lines, "words": words}


def load(folder):
    out = {}
    for path in glob.glob(os.path.join(folder, "*.json")):
        doc = json.load(open(path))
        name = os.path.splitext(doc["attributes"]["filename"])[0]
        out[name] = compact(doc)
    return out


def main():
    args = sys.argv[1:]
    out_dir = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "sroie-ocr")
    if len(args) >= 2 and args[0] == "--out":
        out_dir, args = args[1], args[2:]
    if not args:
        sys.exit(__doc__)
    folders = [load(a) for a in args]
    os.makedirs(out_dir, exist_ok=True)
    for name in sorted(folders[0]):
        readings = [f[name] for f in folders if name in f]
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump({"readings": readings}, f, ensure_ascii=False, separators=(",", ":"))
    print(f"wrote {len(folders[0])} files with up to {len(folders)} readings to {out_dir}")


if __name__ == "__main__":
    main()
