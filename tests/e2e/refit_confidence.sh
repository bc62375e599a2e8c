#!/usr/bin/env bash
# The refit a user runs on their own labelled receipts (scripts/fit-claims-confidence.py):
# from feature rows it writes a model file that docpipe loads and uses, keeps the candidate
# choosers of the file it replaces, reports the out-of-fold high band (over several splits
# with --repeats), holds each weight to the sign its feature's meaning gives it, refuses a
# receipt named like a shifted copy (or rows of a copy without its receipt), says what it does
# with a replaced file that has no choosers or is not JSON, and docpipe refuses a damaged
# model naming the file.
# The feature rows are synthetic (the names the shipped model uses, a signal the fit must
# find); the receipt is tests/data/malaysian_receipt_test.jpg.
# Usage: refit_confidence.sh DOCPIPE PROJECT_ROOT
set -uo pipefail
DOCPIPE=$1
PROJECT=$(cd "$2" && pwd)
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/docpipe-refit-XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
SHIPPED="$PROJECT/plugins/claims/confidence-model.json"
RECEIPT="$PROJECT/tests/data/malaysian_receipt_test.jpg"

# 80 receipts: for each modelled field, a row whose rightness follows its first feature; the
# total's also rises a little with `rival` (a rival reading's support), which must only lower
# confidence: the fit holds that weight at 0 and leaves the feature out.
python3 - "$SHIPPED" "$ROOT/features.jsonl" <<'PY'
import json, random, sys
model = json.load(open(sys.argv[1]))
rng = random.Random(7)
with open(sys.argv[2], "w") as out:
    for n in range(80):
        for field, spec in model["fields"].items():
            names = spec["features"]
            x = {name: round(rng.random(), 4) for name in names}
            bias = 0.0
            if field == "total_amount":
                x["rival"] = round(rng.random(), 4)
                bias = 0.25 * x["rival"]
            right = x[names[0]] + 0.3 * rng.random() + bias > 0.55
            out.write(json.dumps({"id": f"{n:03d}", "field": field, "features": x, "right": right, "labelled": True,
                                  "confidence": 0.5, "extractor_confidence": 0.5}) + "\n")
PY
# Their shops: 16, of 1 to 9 receipts each, named as labels name them ("SHOP 3 SDN. BHD.").
mkdir -p "$ROOT/labels"
python3 - "$ROOT/labels" <<'PY'
import json, sys
n = 0
for shop in range(16):
    for _ in range(1 + shop % 9 if n < 80 else 0):
        if n < 80:
            json.dump({"company": f"Shop {shop} Sdn. Bhd." if n % 2 else f"SHOP {shop} SDN BHD"}, open(f"{sys.argv[1]}/{n:03d}.json", "w"))
            n += 1
while n < 80:
    json.dump({"company": "LAST SHOP"}, open(f"{sys.argv[1]}/{n:03d}.json", "w"))
    n += 1
PY
# The same labels as two sets (the first 40 receipts and the rest), for --shops A,B.
mkdir -p "$ROOT/labels-a" "$ROOT/labels-b"
for f in "$ROOT"/labels/*.json; do
  n=$(basename "$f" .json)
  if [ $((10#$n)) -lt 40 ]; then cp "$f" "$ROOT/labels-a/"; else cp "$f" "$ROOT/labels-b/"; fi
done
# The file replaced carries choosers of its own (one weight changed): the refit keeps those.
python3 - "$SHIPPED" "$ROOT/model.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["choosers"]["total_amount"]["weights"][0] = 1.234567
json.dump(m, open(sys.argv[2], "w"))
PY
python3 "$PROJECT/scripts/fit-claims-confidence.py" --features "$ROOT/features.jsonl" --out "$ROOT/model.json" --repeats 3 \
    --shops "$ROOT/labels" > "$ROOT/fit.txt" 2>&1
fit_rc=$?
# The same fit with every weight free: rival's weight comes out positive, against its meaning.
python3 "$PROJECT/scripts/fit-claims-confidence.py" --features "$ROOT/features.jsonl" --out "$ROOT/unsigned.json" --unsigned \
    --shops "$ROOT/labels" > "$ROOT/unsigned.txt" 2>&1
unsigned_rc=$?
# A replaced file without choosers keeps none; one that is not JSON is said, and the new
# model takes the shipped ones.
python3 - "$SHIPPED" "$ROOT/no-choosers.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
del m["choosers"]
json.dump(m, open(sys.argv[2], "w"))
PY
python3 "$PROJECT/scripts/fit-claims-confidence.py" --features "$ROOT/features.jsonl" --out "$ROOT/no-choosers.json" \
    --shops "$ROOT/labels" > "$ROOT/no-choosers.txt" 2>&1
no_choosers_rc=$?
printf '{"fields": ' > "$ROOT/corrupt.json"
python3 "$PROJECT/scripts/fit-claims-confidence.py" --features "$ROOT/features.jsonl" --out "$ROOT/corrupt.json" \
    --shops "$ROOT/labels" > "$ROOT/corrupt.txt" 2>&1
corrupt_rc=$?
# Rows named like a shifted copy of a receipt that has no rows: refused, not dealt as a copy.
{ cat "$ROOT/features.jsonl"; sed -n 's/"id": "079"/"id": "shifted-900"/p' "$ROOT/features.jsonl"; } > "$ROOT/orphan.jsonl"
python3 "$PROJECT/scripts/fit-claims-confidence.py" --features "$ROOT/orphan.jsonl" --out "$ROOT/orphan.json" \
    --shops "$ROOT/labels" > "$ROOT/orphan.txt" 2>&1
orphan_rc=$?
# A receipt of one's own named like a shifted copy is refused before anything is read.
mkdir -p "$ROOT/named-like-a-copy"
cp "$RECEIPT" "$ROOT/named-like-a-copy/shifted-001.jpg"
python3 "$PROJECT/scripts/fit-claims-confidence.py" --data "$ROOT/named-like-a-copy" --build /nonexistent --dry-run \
    > "$ROOT/prefix.txt" 2>&1
prefix_rc=$?
# A build folder without docpipe is named before anything runs.
mkdir -p "$ROOT/own"
cp "$RECEIPT" "$ROOT/own/001.jpg"
python3 "$PROJECT/scripts/fit-claims-confidence.py" --data "$ROOT/own" --build "$ROOT/no-build" --dry-run > "$ROOT/nobuild.txt" 2>&1
nobuild_rc=$?
# Rows whose labels say the opposite of every feature (right when readings disagree): no
# weight keeps its sign, and the fit stops with the field named instead of writing a model
# docpipe would refuse.
python3 - "$ROOT/features.jsonl" "$ROOT/inverted.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        row = json.loads(line)
        if row["field"] == "total_amount":
            row["features"] = {"agree_share": row["features"]["agree_share"]}
            row["right"] = row["features"]["agree_share"] < 0.5
        out.write(json.dumps(row) + "\n")
PY
python3 "$PROJECT/scripts/fit-claims-confidence.py" --features "$ROOT/inverted.jsonl" --out "$ROOT/inverted.json" \
    --shops "$ROOT/labels" > "$ROOT/inverted.txt" 2>&1
inverted_rc=$?
# The folds by shop: every receipt of a shop in one fold, and the folds about equal.
python3 - "$PROJECT/scripts" "$ROOT/labels" "$RECEIPT" "$ROOT" > "$ROOT/folds.txt" 2>&1 <<'PY'
import importlib.util, os, shutil, subprocess, sys
spec = importlib.util.spec_from_file_location("fit", sys.argv[1] + "/fit-claims-confidence.py")
fit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fit)
shop_of = fit.shops_of(sys.argv[2])
ids = sorted(shop_of)
for seed in (1, 2, 3):
    fold = fit.folds_of(ids, 5, seed, shop_of)
    for shop in set(shop_of.values()):
        assert len({fold[i] for i in ids if shop_of[i] == shop}) == 1, f"seed {seed}: {shop} split across folds"
    sizes = [sum(1 for i in ids if fold[i] == k) for k in range(5)]
    assert max(sizes) - min(sizes) <= 9, f"seed {seed}: fold sizes {sizes}"
assert len(set(shop_of.values())) == 17, sorted(set(shop_of.values()))
# Two folders, comma-separated, are one set of labels.
two = fit.shops_of(sys.argv[2] + "-a," + sys.argv[2] + "-b")
assert two == shop_of, f"--shops A,B: {len(two)} receipts, {len(shop_of)} in one folder"
assert len(fit.shops_of(sys.argv[2] + "-a")) == 40
# A receipt's shifted copy (--shifted-copy) is in its original's fold, by shop or by receipt:
# in another fold, the copy's score would come from a fit that had seen the receipt.
# (79 receipts: with a multiple of 5, dealing in order would put each copy with its receipt too.)
originals = ids[:79]
with_copies = originals + [fit.SHIFTED + i for i in originals]
for seed in (1, 2, 3):
    for shops in (shop_of, None):
        fold = fit.folds_of(with_copies, 5, seed, shops)
        assert all(fold[fit.SHIFTED + i] == fold[i] for i in originals), f"seed {seed}: a copy in another fold than its receipt"
        assert len(set(fold.values())) == 5
# The copy itself: one pixel less each way, under the copy's id, with the receipt's labels.
data, into = os.path.join(sys.argv[4], "copy-data"), os.path.join(sys.argv[4], "copy")
os.makedirs(data)
os.makedirs(into)
shutil.copyfile(sys.argv[3], os.path.join(data, "007.jpg"))
shutil.copyfile(os.path.join(sys.argv[2], "007.json"), os.path.join(data, "007.json"))
fit.shifted_copy(data, into)
assert sorted(os.listdir(into)) == [fit.SHIFTED + "007.jpg", fit.SHIFTED + "007.json"], os.listdir(into)
size = lambda path: tuple(map(int, subprocess.run(["identify", "-format", "%w %h", path], capture_output=True, text=True, check=True).stdout.split()))
w, h = size(sys.argv[3])
assert size(os.path.join(into, fit.SHIFTED + "007.jpg")) == (w - 1, h - 1), size(os.path.join(into, fit.SHIFTED + "007.jpg"))
assert open(os.path.join(into, fit.SHIFTED + "007.json")).read() == open(os.path.join(sys.argv[2], "007.json")).read()
print("folds by shop ok")
PY
folds_rc=$?

# The refitted model and the shipped one, each on the same receipt.
CLAIM_CONFIDENCE_MODEL="$ROOT/model.json" OCR_DEVICE=cpu "$DOCPIPE" extract "$RECEIPT" > "$ROOT/refit.jsonl" 2> "$ROOT/refit.err"
refit_rc=$?
OCR_DEVICE=cpu "$DOCPIPE" extract "$RECEIPT" > "$ROOT/shipped.jsonl" 2> "$ROOT/shipped.err"
shipped_rc=$?
# A model whose weights no longer match its features.
python3 - "$ROOT/model.json" "$ROOT/broken.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["fields"]["total_amount"]["weights"] = m["fields"]["total_amount"]["weights"][:-1]
json.dump(m, open(sys.argv[2], "w"))
PY
CLAIM_CONFIDENCE_MODEL="$ROOT/broken.json" OCR_DEVICE=cpu "$DOCPIPE" extract "$RECEIPT" > "$ROOT/broken.jsonl" 2> "$ROOT/broken.err"
broken_rc=$?

python3 - "$ROOT" "$SHIPPED" "$fit_rc" "$refit_rc" "$shipped_rc" "$broken_rc" "$folds_rc" "$unsigned_rc" "$prefix_rc" "$nobuild_rc" "$inverted_rc" "$no_choosers_rc" "$corrupt_rc" "$orphan_rc" <<'PY'
import json, re, sys
from pathlib import Path
root, shipped_path = Path(sys.argv[1]), sys.argv[2]
fit_rc, refit_rc, shipped_rc, broken_rc, folds_rc, unsigned_rc, prefix_rc, nobuild_rc, inverted_rc, no_choosers_rc, corrupt_rc, orphan_rc = map(int, sys.argv[3:15])
fit = (root / "fit.txt").read_text()
problems = []
def want(c, m):
    if not c: problems.append(m)
want(fit_rc == 0, f"fit-claims-confidence.py exited {fit_rc}:\n{fit[-2000:]}")
want(folds_rc == 0, "folds by shop: " + (root / "folds.txt").read_text()[-1500:])
model = json.loads((root / "model.json").read_text())
want("folds by shop, 17 shops" in model.get("metadata", {}).get("method", "") and
     "mean of 10 splits' maps" in model.get("metadata", {}).get("method", ""), f"metadata: {model.get('metadata')}")
shipped = json.loads(Path(shipped_path).read_text())
want(model.get("format") == shipped["format"] and model.get("version") == shipped["version"], "format and version kept")
for field, spec in model.get("fields", {}).items():
    want(spec["weights"] != shipped["fields"][field]["weights"], f"{field}: weights not refitted")
    knots = spec["calibration"]
    want(all(0 <= p <= 1 for _, p in knots) and all(a[1] <= b[1] and a[0] < b[0] for a, b in zip(knots, knots[1:])),
         f"{field}: calibration not monotonic in [0, 1]: {knots}")
    # The first feature carries the signal the rows were made with.
    w = dict(zip(spec["features"], spec["weights"]))
    first = shipped["fields"][field]["features"][0]
    want(w.get(first, 0) > 0 and all(abs(v) < w[first] for k, v in w.items() if k != first),
         f"{field}: the fit missed the signal in {first}: {w}")
want(set(model.get("fields", {})) == set(shipped["fields"]), f"fields {sorted(model.get('fields', {}))}")
# Signs: the total's rival weight, positive when fitted freely, is held at 0 and left out.
unsigned = json.loads((root / "unsigned.json").read_text()) if unsigned_rc == 0 else {}
want(unsigned_rc == 0, f"--unsigned exited {unsigned_rc}: {(root / 'unsigned.txt').read_text()[-1500:]}")
free = dict(zip(*(unsigned.get("fields", {}).get("total_amount", {}).get(k, []) for k in ("features", "weights"))))
want(free.get("rival", 0) > 0, f"fitted freely, rival's weight should come out positive here: {free}")
want(unsigned.get("choosers") == shipped.get("choosers"), "a model written to a new file takes the shipped choosers")
want("rival" not in model["fields"]["total_amount"]["features"], f"rival kept against its sign: {model['fields']['total_amount']}")
want(re.search(r"held at 0, their weight against their meaning \(EXPECTED_SIGNS\): [^\n]*rival", fit) is not None,
     "the report names the feature held at 0")
want("weights held to their expected signs" in model.get("metadata", {}).get("method", ""), "the metadata says the signs were held")
prefix = (root / "prefix.txt").read_text()
want(prefix_rc != 0 and "shifted-001.jpg" in prefix and "rename" in prefix, f"a receipt named shifted-*: rc {prefix_rc}: {prefix[-600:]}")
nobuild = (root / "nobuild.txt").read_text()
want(nobuild_rc != 0 and "no-build/bin/docpipe is missing" in nobuild and "Traceback" not in nobuild,
     f"a missing build: rc {nobuild_rc}: {nobuild[-600:]}")
inverted = (root / "inverted.txt").read_text()
want(inverted_rc != 0 and "total_amount: every feature's weight came out against its meaning" in inverted
     and not (root / "inverted.json").exists(), f"every weight against its sign: rc {inverted_rc}: {inverted[-600:]}")
want(model.get("choosers", {}).get("total_amount", {}).get("weights", [None])[0] == 1.234567
     and model.get("choosers", {}).get("service_date") == shipped.get("choosers", {}).get("service_date"),
     "the candidate choosers of the replaced file are kept")
no_choosers = json.loads((root / "no-choosers.json").read_text()) if no_choosers_rc == 0 else {}
want(no_choosers_rc == 0 and "fields" in no_choosers and "choosers" not in no_choosers
     and "has no candidate choosers: the refit keeps none" in (root / "no-choosers.txt").read_text(),
     f"a replaced file without choosers keeps none: rc {no_choosers_rc}: {(root / 'no-choosers.txt').read_text()[-600:]}")
corrupt_text = (root / "corrupt.txt").read_text()
corrupt = json.loads((root / "corrupt.json").read_text()) if corrupt_rc == 0 else {}
want(corrupt_rc == 0 and "corrupt.json cannot be read" in corrupt_text and corrupt.get("choosers") == shipped.get("choosers"),
     f"a replaced file that is not JSON: rc {corrupt_rc}: {corrupt_text[-600:]}")
orphan = (root / "orphan.txt").read_text()
want(orphan_rc != 0 and "shifted-900" in orphan and "no rows of the receipt" in orphan and not (root / "orphan.json").exists()
     and "Traceback" not in orphan, f"rows of a copy without its receipt: rc {orphan_rc}: {orphan[-600:]}")
want(re.search(r"high band out of fold over 3 splits .*\nmean [0-9.]+ of 80 receipts", fit) is not None, "the --repeats summary")

def total(path):
    lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    return lines[0]["fields"]["total_amount"] if lines and "total_amount" in lines[0].get("fields", {}) else None
want(refit_rc == 0 and shipped_rc == 0, f"extract exited {refit_rc} (refitted model), {shipped_rc} (shipped): "
     f"{(root / 'refit.err').read_text()[-800:]}")
refit_total, shipped_total = total(root / "refit.jsonl"), total(root / "shipped.jsonl")
want(refit_total is not None and shipped_total is not None, "a total with each model")
if refit_total and shipped_total:
    want(refit_total["value"] == shipped_total["value"], "the model scores, it does not choose the value")
    want(refit_total["confidence"] != shipped_total["confidence"],
         f"the refitted model was not used: confidence {refit_total['confidence']} both times")
err = (root / "broken.err").read_text()
want(broken_rc != 0, "a damaged model is refused")
want("broken.json" in err and "total_amount" in err, f"the refusal names the file and the field: {err[-600:]}")
if problems:
    print("refit_confidence: " + "\n  ".join(problems))
    sys.exit(1)
print("refit_confidence: the refit model loads and is used; choosers kept; a damaged one is refused")
PY
