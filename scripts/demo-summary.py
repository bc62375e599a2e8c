#!/usr/bin/env python3
"""Prints one block per email of a `make run` demo: its job status and, per claim
document, where it went (NCB record, flagged NCB record, review) with the key fields.
Reads the demo's SQLite state and output folders; changes nothing."""
import json
import sqlite3
import sys
from pathlib import Path

demo = Path(sys.argv[1] if len(sys.argv) > 1 else "var/demo")
out = Path(sys.argv[2]) if len(sys.argv) > 2 else demo / "out"

# Claim documents written by the sinks, keyed by the email file they came from.
by_email = {}
for route, folder in (("high -> NCB", "ncb"), ("medium -> NCB, flagged", "ncb-flagged")):
    for f in sorted((out / folder).glob("*.json")):
        r = json.loads(f.read_text())
        by_email.setdefault(r.get("source_email_id", ""), []).append(
            f"  {route:24} {r['source_filename']}: RM {r['Claim Amount']:.2f}, {r['Event date']}, "
            f"invoice {r['Invoice Number']}, policy {r['Policy Number']}, confidence {r['extraction_confidence']:.2f}")
for f in sorted((out / "review").glob("*.json")):
    d = json.loads(f.read_text())
    a = d.get("attributes", {})
    claim = d.get("fields", {}).get("claim", {})
    total = claim.get("total_amount", {}).get("value")
    shown = f"RM {total:.2f}" if isinstance(total, (int, float)) else "no total"
    by_email.setdefault(a.get("message_id", ""), []).append(
        f"  {'low -> review':24} {a.get('filename', '?')}: {shown}, confidence {d.get('fields', {}).get('confidence', 0):.2f}"
        f" — {a.get('review_reason', '')}")

db = sqlite3.connect(demo / "state.db")
rows = db.execute("SELECT data FROM jobs").fetchall()
for (data,) in sorted(rows, key=lambda r: json.loads(r[0]).get("filename", "")):
    job = json.loads(data)
    print(f"{job.get('filename')}: {job.get('status')}" + (f" ({job['last_error']})" if job.get("last_error") else ""))
    for line in by_email.get(job.get("email_id", ""), []):
        print(line)
