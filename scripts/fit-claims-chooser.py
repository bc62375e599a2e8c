#!/usr/bin/env python3
"""Fit a candidate chooser of transform.claims: the total's or the service date's (the
"choosers" entry of plugins/claims/confidence-model.json; plugins/claims/candidate_chooser.hpp
says how the plugin uses it).

One command refits it from labelled receipts (ID.jpg with ID.json truth "total", as in
../shared/data/sroie-train), given their OCR readings saved once by
scripts/claims-ocr-dumps.sh:

    scripts/claims-ocr-dumps.sh ../shared/data/sroie-train /tmp/ocr-train
    scripts/fit-claims-chooser.py --data ../shared/data/sroie-train --ocr /tmp/ocr-train \\
        [--field total_amount|service_date] [--eval-data ../shared/data/sroie-dev --eval-ocr /tmp/ocr-dev] [--write]

It runs `build/bin/bench_claims_eval --candidates` (the plugin's own C++ lists every total
and date candidate with its features), fits, prints how often the chosen candidate is right (5-fold
cross-validated on the fit set, beside the hand-set score's choice; and on the evaluation set
when given) and, with --write, puts the chooser into the model file (--model, default the
shipped one; rebuild to compile it in). With candidates already dumped:

    scripts/fit-claims-chooser.py --candidates train.jsonl [--eval dev.jsonl] [--write]

What it fits: a conditional logit. Each receipt's candidates get scores w . x; the softmax of
the scores over the receipt's candidates is the probability of each being the total, and w
maximises the log of the probability given to the right candidates (several candidates may
read the right amount), with an L2 penalty, by Newton's method on standardised features.
Receipts where no candidate is right, or with one candidate only, teach nothing and are
left out of the fit (they still count in the accuracy printed). Python 3 standard library only.

After refitting the chooser, refit the confidence model (scripts/fit-claims-confidence.py):
its features describe the chosen candidate.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from claims_fit_lib import solve  # noqa: E402

FEATURES = {}
FEATURES["total_amount"] = ["label_weight", "cash_change", "paid", "subtotal_sum", "repeats", "items_sum", "other_equations", "confirmed",
            "other_confirmed", "checks_disagree", "rounded", "rounding_line", "repaired", "misread", "comma_decimal", "summary",
            "table_row", "position", "ocr_factor", "largest", "decimals"]
FEATURES["service_date"] = ["labelled", "parse_conf", "ocr_factor", "position", "first", "repeats", "has_time", "latest",
                            "year_repaired"]


def load(path, field):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if row.get("field", "total_amount") == field:
                    rows.append(row)
    return rows


def dump_candidates(data, ocr, out, chooser="hand"):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bench = os.path.join(root, "build", "bin", "bench_claims_eval")
    if not os.path.exists(bench):
        sys.exit(f"{bench} is missing: build first (make build)")
    subprocess.run([bench, "--truth", data, "--ocr-json", ocr, "--chooser", chooser, "--candidates", out], check=True,
                   stdout=subprocess.DEVNULL)


def matrix(rows, names):
    """Per receipt: (candidate feature lists, right flags)."""
    out = []
    for r in rows:
        cands = r.get("candidates") or []
        xs = [[float(c["features"].get(n, 0.0)) for n in names] for c in cands]
        out.append((r["id"], xs, [bool(c.get("right")) for c in cands], [c.get("hand_score", 0.0) for c in cands], r.get("labelled", True)))
    return out


def standardiser(receipts, n):
    vals = [[] for _ in range(n)]
    for _, xs, _, _, _ in receipts:
        for x in xs:
            for k in range(n):
                vals[k].append(x[k])
    mean = [sum(v) / len(v) if v else 0.0 for v in vals]
    sd = []
    for k, v in enumerate(vals):
        var = sum((a - mean[k]) ** 2 for a in v) / len(v) if v else 0.0
        sd.append(math.sqrt(var) if var > 1e-12 else 1.0)
    return mean, sd


def softmax(scores):
    top = max(scores)
    e = [math.exp(s - top) for s in scores]
    z = sum(e)
    return [v / z for v in e]


def objective(w, data, l2):
    loss = 0.5 * l2 * sum(v * v for v in w)
    for xs, right in data:
        s = [sum(wk * xk for wk, xk in zip(w, x)) for x in xs]
        p = softmax(s)
        loss -= math.log(max(1e-300, sum(pi for pi, r in zip(p, right) if r)))
    return loss


def fit(receipts, n, l2):
    """Weights on the raw features (and their standardisation) of the conditional logit."""
    mean, sd = standardiser(receipts, n)
    data = []
    for _, xs, right, _, _ in receipts:
        if len(xs) < 2 or not any(right) or all(right):
            continue
        data.append(([[(x[k] - mean[k]) / sd[k] for k in range(n)] for x in xs], right))
    w = [0.0] * n
    current = objective(w, data, l2)
    for _ in range(100):
        grad = [l2 * v for v in w]
        hess = [[(l2 if i == j else 0.0) for j in range(n)] for i in range(n)]
        for xs, right in data:
            s = [sum(wk * xk for wk, xk in zip(w, x)) for x in xs]
            p = softmax(s)
            mass = sum(pi for pi, r in zip(p, right) if r)
            q = [pi / mass if r else 0.0 for pi, r in zip(p, right)]
            ep = [sum(p[i] * xs[i][k] for i in range(len(xs))) for k in range(n)]
            eq = [sum(q[i] * xs[i][k] for i in range(len(xs))) for k in range(n)]
            for k in range(n):
                grad[k] += ep[k] - eq[k]
            # Hessian: covariance of x under p minus under q (the latter from the mixture of
            # right candidates); the penalty keeps it positive in practice, and the step is
            # halved until the objective falls.
            for i in range(len(xs)):
                for a in range(n):
                    da = xs[i][a] - ep[a]
                    ga = xs[i][a] - eq[a]
                    if da == 0 and ga == 0:
                        continue
                    for b in range(n):
                        hess[a][b] += p[i] * da * (xs[i][b] - ep[b]) - q[i] * ga * (xs[i][b] - eq[b])
        def descend(direction, smallest):
            """The first of steps 1, 1/2, 1/4 ... along -direction that lowers the objective."""
            t = 1.0
            while t > smallest:
                trial = [wk - t * dk for wk, dk in zip(w, direction)]
                value = objective(trial, data, l2)
                if value < current:
                    return trial, value
                t /= 2
            return None, None

        trial, value = descend(solve(hess, grad), 1e-4)
        if trial is None:
            # Newton's direction does not descend (the Hessian is not positive there): a gradient step.
            trial, value = descend(grad, 1e-8)
            if trial is None:
                break
        done = current - value < 1e-9
        w, current = trial, value
        if done:
            break
    raw = [w[k] / sd[k] for k in range(n)]
    intercept = -sum(w[k] * mean[k] / sd[k] for k in range(n))
    return raw, intercept


def choose(weights, intercept, xs):
    s = [intercept + sum(wk * xk for wk, xk in zip(weights, x)) for x in xs]
    return max(range(len(xs)), key=lambda i: s[i])  # the first of equal scores, as the C++ does


def accuracy(receipts, pick):
    labelled = [r for r in receipts if r[4]]
    right = sum(1 for r in labelled if r[1] and r[2][pick(r)])
    reachable = sum(1 for r in labelled if any(r[2]))
    return right, reachable, len(labelled)


def hand_pick(r):
    return max(range(len(r[1])), key=lambda i: r[3][i])


def folds_of(ids, k, seed):
    ids = sorted(set(ids))
    random.Random(seed).shuffle(ids)
    return {rid: i % k for i, rid in enumerate(ids)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--field", default="total_amount", choices=sorted(FEATURES), help="the field whose chooser to fit")
    ap.add_argument("--candidates", help="candidate rows of the fit set (bench_claims_eval --candidates)")
    ap.add_argument("--data", help="labelled receipts to fit on (with --ocr)")
    ap.add_argument("--ocr", help="their OCR readings (scripts/claims-ocr-dumps.sh)")
    ap.add_argument("--eval", help="candidate rows of a set to report on, not fitted on")
    ap.add_argument("--eval-data", help="labelled receipts to report on (with --eval-ocr)")
    ap.add_argument("--eval-ocr")
    ap.add_argument("--l2", type=float, default=10.0, help="L2 penalty on the standardised weights (default 10, the best of 0.1-30 by 5-fold CV on sroie-train)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--drop", default="", help="features to leave out, comma-separated")
    ap.add_argument("--model", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugins", "claims", "confidence-model.json"))
    ap.add_argument("--write", action="store_true", help="write the chooser into --model")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp()
    if not a.candidates:
        if not (a.data and a.ocr):
            ap.error("give --candidates, or --data with --ocr")
        a.candidates = os.path.join(tmp, "fit.jsonl")
        dump_candidates(a.data, a.ocr, a.candidates)
    if not a.eval and a.eval_data:
        if not a.eval_ocr:
            ap.error("--eval-data needs --eval-ocr")
        a.eval = os.path.join(tmp, "eval.jsonl")
        dump_candidates(a.eval_data, a.eval_ocr, a.eval)

    drop = {d for d in a.drop.split(",") if d}
    known = FEATURES[a.field]
    unknown = drop - set(known)
    if unknown:
        ap.error(f"--drop: unknown feature(s) {sorted(unknown)} (known: {known})")
    names = [f for f in known if f not in drop]
    n = len(names)
    receipts = matrix(load(a.candidates, a.field), names)
    fitted_on = sum(1 for r in receipts if len(r[1]) >= 2 and any(r[2]) and not all(r[2]))

    # Cross-validated: each fold chosen by a chooser fitted on the other folds.
    fold = folds_of([r[0] for r in receipts], a.folds, a.seed)
    cv_right = 0
    for k in range(a.folds):
        train = [r for r in receipts if fold[r[0]] != k]
        w, b = fit(train, n, a.l2)
        cv_right += sum(1 for r in receipts if fold[r[0]] == k and r[4] and r[1] and r[2][choose(w, b, r[1])])
    hand = accuracy(receipts, hand_pick)
    labelled = hand[2]
    print(f"{a.field}: fit set: {len(receipts)} receipts, {labelled} labelled, {hand[1]} with the right value among the candidates, "
          f"{fitted_on} with a choice to learn from")
    print(f"  hand-set score chooses right:        {hand[0]} / {labelled} = {100.0 * hand[0] / labelled:.1f}%")
    print(f"  fitted chooser, {a.folds}-fold out of fold: {cv_right} / {labelled} = {100.0 * cv_right / labelled:.1f}%")

    weights, intercept = fit(receipts, n, a.l2)
    if a.eval:
        ev = matrix(load(a.eval, a.field), names)
        h = accuracy(ev, hand_pick)
        f = accuracy(ev, lambda r: choose(weights, intercept, r[1]))
        print(f"evaluation set: {len(ev)} receipts, {h[2]} labelled, {h[1]} with the right value among the candidates")
        print(f"  hand-set score chooses right: {h[0]} / {h[2]} = {100.0 * h[0] / h[2]:.1f}%")
        print(f"  fitted chooser chooses right: {f[0]} / {f[2]} = {100.0 * f[0] / f[2]:.1f}%")
    print("weights (raw features):")
    for name, w in sorted(zip(names, weights), key=lambda t: -abs(t[1])):
        print(f"  {name:16s} {w:+.4f}")

    if a.write:
        with open(a.model) as fh:
            model = json.load(fh)
        model.setdefault("choosers", {})[a.field] = {
            "features": names,
            "weights": [round(w, 6) for w in weights],
            "intercept": round(intercept, 6),
            "fitted_on": f"{len(receipts)} receipts ({fitted_on} with a choice to learn from), conditional logit, l2={a.l2}",
        }
        with open(a.model, "w") as fh:
            fh.write(render(model))
        print(f"wrote the chooser to {a.model}: rebuild to compile it in, then refit the confidence model")


def render(model):
    """The model file as the shipped one is laid out: one line per list."""
    out = ["{"]
    top = list(model.items())
    for i, (k, v) in enumerate(top):
        end = "," if i + 1 < len(top) else ""
        if isinstance(v, dict) and k in ("fields", "choosers"):
            out.append(f' "{k}": {{')
            inner = list(v.items())
            for j, (name, spec) in enumerate(inner):
                out.append(f'  "{name}": {{')
                items = list(spec.items())
                for m, (sk, sv) in enumerate(items):
                    out.append(f'   "{sk}": {json.dumps(sv)}' + ("," if m + 1 < len(items) else ""))
                out.append("  }" + ("," if j + 1 < len(inner) else ""))
            out.append(" }" + end)
        else:
            out.append(f' "{k}": {json.dumps(v)}{end}')
    out.append("}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
