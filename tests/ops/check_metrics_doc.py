#!/usr/bin/env python3
"""docs/metrics.md lists every docpipe_ series the code exports, with its type; the alert
rules (deploy/prometheus/alerts.yml) use only series that exist.

Series come from: Metrics calls with a literal name (increment/set_gauge/observe("name"),
prefixed docpipe_ by the runtime) in core/, sdk/ and plugins/ (tests left out), and the
series the runtime writes itself in its /metrics text (literal "docpipe_..." names and the
series()/per_node() helpers in core/src).
Usage: check_metrics_doc.py SOURCE_DIR
"""
import re
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
KIND = {"increment": "counter", "set_gauge": "gauge", "observe": "histogram"}
CALL = re.compile(r"\b(increment|set_gauge|observe)\(\s*\"([a-z][a-z0-9_]*)\"")
HELPER = re.compile(r"\b(?:series|per_node)\(\s*\"([a-z][a-z0-9_]*)\"\s*,\s*\"(counter|gauge|histogram)\"")
LITERAL = re.compile(r"docpipe_([a-z][a-z0-9_]*?)(?:_bucket|_sum|_count)?(?=[{ \"\\])")

found = {}  # name -> (type or None, where)
def add(name, kind, where):
    old = found.get(name)
    if old is None or (old[0] is None and kind):
        found[name] = (kind, where)

for top in ("core", "sdk", "plugins"):
    for path in sorted((root / top).rglob("*.cpp")):
        if path.name.endswith("_test.cpp") or "testing" in path.name:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(root).as_posix()
        for m in CALL.finditer(text):
            add(m.group(2), KIND[m.group(1)], f"{rel}:{text.count(chr(10), 0, m.start()) + 1}")
        if top == "core":
            for m in HELPER.finditer(text):
                add(m.group(1), m.group(2), f"{rel}:{text.count(chr(10), 0, m.start()) + 1}")
            for line_no, line in enumerate(text.splitlines(), 1):
                for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', line):
                    for m in LITERAL.finditer(literal):
                        add(m.group(1), None, f"{rel}:{line_no}")

doc = (root / "docs" / "metrics.md").read_text(encoding="utf-8")
rows = {}
for m in re.finditer(r"^\|\s*`docpipe_([a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|", doc, re.M):
    rows[m.group(1)] = m.group(2)

problems = []
if len(found) < 20:
    problems.append(f"only {len(found)} series found in the code: the scan is broken")
for name, (kind, where) in sorted(found.items()):
    if name not in rows:
        problems.append(f"{where}: series docpipe_{name} is not in docs/metrics.md (add a table row: | `docpipe_{name}` | type | labels | meaning |)")
    elif kind and rows[name] != kind:
        problems.append(f"{where}: docpipe_{name} is a {kind}, docs/metrics.md says {rows[name]}")
for name in sorted(set(rows) - set(found)):
    problems.append(f"docs/metrics.md lists docpipe_{name}, which the code does not export")

alerts = root / "deploy" / "prometheus" / "alerts.yml"
if alerts.exists():
    text = alerts.read_text(encoding="utf-8")
    for line_no, line in enumerate(text.splitlines(), 1):
        for m in re.finditer(r"\bdocpipe_([a-z0-9_]+)", line):
            name = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
            if name not in found and m.group(1) not in found:
                problems.append(f"deploy/prometheus/alerts.yml:{line_no}: docpipe_{m.group(1)} is not a series the code exports")
else:
    problems.append("deploy/prometheus/alerts.yml is missing")

for p in problems:
    print(p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"docs/metrics.md: all {len(found)} series documented; alerts.yml uses only exported series")
