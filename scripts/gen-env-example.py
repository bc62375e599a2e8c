#!/usr/bin/env python3
"""Generates deploy/docpipe.env.example from the shipped pipelines, so it cannot drift.

Every ${NAME} / ${NAME:-default} a pipeline in pipelines/ (distributed/ too) reads (references nest, as in
${file:${CREDENTIALS_DIRECTORY:-/etc/docpipe/credentials}/ncb-api-key}) gets an entry with
the description from DESCRIPTIONS below, the pipelines that read it and their defaults.

  scripts/gen-env-example.py            rewrite deploy/docpipe.env.example
  scripts/gen-env-example.py --check    exit 1 when a pipeline reads a variable the example
                                        lacks (naming file, line and variable), when a variable
                                        has no description here, or when the file is stale
"""
import argparse
import re
import sys
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ROOT / "pipelines"
OUTPUT = ROOT / "deploy" / "docpipe.env.example"

# What each variable means. A pipeline reading a variable missing here fails --check: say
# what it is for before shipping it.
DESCRIPTIONS = {
    "ADMIN_API_KEY": "Admin API key (X-API-Key or Authorization: Bearer); make one with `openssl rand -hex 32`. Empty on a "
                     "loopback address: a random key is generated into <state dir>/admin.key at start. A non-loopback "
                     "address needs a key. claims-gmail.yaml reads its key from the admin-key credential instead.",
    "ADMIN_LISTEN": "host:port of the admin HTTP server (/health, /metrics, /api/v1). Loopback by default.",
    "CLAIM_RULES": "A claims rules file replacing the built-in rules of transform.claims (empty: the built-in ones; the "
                   "installed copy is share/docpipe/claims/rules.yaml).",
    "CLAIM_CONFIDENCE_MODEL": "A calibrated confidence model for transform.claims' total and date (JSON written by "
                              "scripts/fit-claims-confidence.py from labelled receipts); empty: the built-in "
                              "plugins/claims/confidence-model.json.",
    "CLAIM_SCORER": "Weights of transform.claims' learned scorer (JSON written by scripts/fit-claims-scorer.sh from "
                    "labelled receipts); empty: the built-in ones.",
    "CREDENTIALS_DIRECTORY": "Folder holding the secret files admin-key, ncb-api-key and google.json. Set by systemd from "
                             "LoadCredential= (see deploy/systemd/); do not set it in a unit's environment file.",
    "DOCPIPE_INBOX": "Drop folder the directory/maildir source reads (relative paths: to the pipeline file's folder).",
    "DOCPIPE_OUT": "Folder the file sinks write to (JSON results, NCB records, review copies).",
    "DOCPIPE_STATE_DIR": "Folder of the SQLite state store (state.db) and a generated admin.key. The systemd units set "
                         "it to the unit's StateDirectory.",
    "DRIVE_ROOT_FOLDER_ID": "Google Drive folder id the originals are archived under (required for claims-gmail).",
    "DRIVE_SHARED": "true when DRIVE_ROOT_FOLDER_ID is on a shared drive.",
    "GMAIL_MODE": "How new mail is noticed: pubsub_pull, pubsub_push (POST /hooks/<node>) or poll.",
    "GMAIL_PUSH_AUDIENCE": "pubsub_push: the audience of the push subscription's OIDC token.",
    "GMAIL_PUSH_SERVICE_ACCOUNT": "pubsub_push: the service account the push subscription signs its tokens as.",
    "GMAIL_SUBSCRIPTION": "pubsub_pull: the subscription to pull (projects/P/subscriptions/S).",
    "GMAIL_TOPIC": "Pub/Sub topic for users.watch (projects/P/topics/T); empty: no watch is made or renewed.",
    "GMAIL_USER": "Mailbox to read (`me` = the account of the credentials, or a user impersonated by a service account).",
    "GMAIL_SUBJECT": "Service account with domain-wide delegation: the Workspace mailbox address to act for (the token "
                     "request's `sub`; docs/google-setup.md). Empty: act as the service account, or the authorized user.",
    "STREAM_PREFIX": "Distributed pipelines: the prefix of the Redis stream names the stages share (<prefix>:ocr, "
                     "<prefix>:delivery); the same on every stage.",
    "WORKER_NAME": "Distributed pipelines: this process's consumer name in the stream's group; empty: host name and "
                   "process id. Keep it stable across restarts, so a restarted worker takes back its own pending entries.",
    "CLAIM_IDLE": "Distributed pipelines: how long an entry may stay pending on a worker before another claims it "
                  "(keep it above the slowest receipt).",
    "LOG_FORMAT": "Log format: text, or json (one object per line, for journald and collectors).",
    "LOG_LEVEL": "Log level: trace, debug, info, warn or error.",
    "NCB_API_BASE_URL": "Base URL of the insurer's NCB claims API.",
    "NCB_API_KEY": "API key for NCB (claims-ncb.yaml; claims-gmail.yaml reads the ncb-api-key credential instead).",
    "OCR_DEVICE": "Page clean-up device (transform.preprocess): auto (CUDA when usable, else the CPU), cuda (fail at "
                  "start when no CUDA device is usable) or cpu. Under systemd the GPU is reachable only with the drop-in "
                  "deploy/systemd/docpipe-cuda.conf.example.",
    "REDIS_URL": "Redis state store, redis://[:password@]host:port/db (claims-gmail.yaml).",
    "SHEETS_SPREADSHEET_ID": "Google Sheets spreadsheet that receives the audit rows (required for claims-gmail).",
}

# Read by docpipe itself (or its systemd unit) rather than by a pipeline file.
PROCESS_VARIABLES = OrderedDict([
    ("DOCPIPE_PIPELINE", "docpipe.service only: the pipeline file it runs (default: the shipped claims-gmail.yaml)."),
    ("DOCPIPE_PLUGIN_PATH", "Extra plugin folders, ':'-separated, searched before <prefix>/lib/docpipe/plugins."),
    ("DOCPIPE_PIPELINES", "Folder `docpipe extract` takes claims-local.yaml from when no -c is given."),
    ("GOOGLE_APPLICATION_CREDENTIALS", "Google credentials file used when a Google component's credentials_file is empty."),
    ("TESSDATA_PREFIX", "Tesseract language data folder, when not the system one."),
    ("OMP_THREAD_LIMIT", "OpenMP threads per OCR engine; docpipe sets 1 unless it is set (parallelism comes from node "
                         "concurrency)."),
])

REF_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


def strip_comment(line):
    """The line without a YAML comment ('#' at the start or after a blank, outside quotes)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def references(text):
    """Yields (name, default or None) for every variable reference in text, nested ones too."""
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            i += 3
            continue
        if not text.startswith("${", i):
            i += 1
            continue
        depth, j = 1, i + 2
        while j < len(text) and depth:
            if text.startswith("${", j):
                depth += 1
                j += 2
                continue
            if text[j] == "}":
                depth -= 1
            j += 1
        if depth:
            return  # unterminated: docpipe validate reports it
        expr = text[i + 2:j - 1]
        if expr.startswith("file:"):
            yield from references(expr[5:])
        else:
            name, sep, default = expr.partition(":-")
            if REF_NAME.match(name):
                yield name, (default if sep else None)
            if sep:
                yield from references(default)
        i = j


def scan():
    """{name: [(file, line, default)]} over the shipped pipelines, comments left out."""
    found = OrderedDict()
    for path in sorted(PIPELINES.glob("**/*.yaml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name, default in references(strip_comment(line)):
                found.setdefault(name, []).append((path.relative_to(ROOT).as_posix(), number, default))
    return found


def wrap(text, prefix="# ", width=96):
    lines, current = [], ""
    for word in text.split():
        if current and len(prefix) + len(current) + 1 + len(word) > width:
            lines.append(prefix + current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(prefix + current)
    return lines


def generate(found):
    out = [
        "# docpipe environment: every variable the shipped pipelines (pipelines/, distributed/ too) read.",
        "# GENERATED by scripts/gen-env-example.py from the pipelines: edit the descriptions there and",
        "# run it again; a ctest (ops.env_example) fails when this file lacks a variable.",
        "#",
        "# Use: copy to /etc/docpipe/docpipe.env (the systemd units' EnvironmentFile) or to .env, and",
        "# uncomment what you change. An empty value counts as unset: the pipeline's default applies.",
        "# Secrets do not belong here: under systemd they come from LoadCredential= (admin-key,",
        "# ncb-api-key, google.json) and the pipelines read them as ${file:${CREDENTIALS_DIRECTORY}/...}.",
        "",
    ]
    for name in sorted(found):
        uses = found[name]
        out += wrap(DESCRIPTIONS.get(name, "(no description: add one to scripts/gen-env-example.py)"))
        files = OrderedDict()
        for file, _, default in uses:
            files.setdefault(Path(file).name, set()).add(default)
        parts = []
        for file, defaults in files.items():
            shown = sorted("required, no default" if d is None else (f"default {d}" if d else "default empty")
                           for d in defaults)
            parts.append(f"{file} ({', '.join(shown)})")
        out += wrap("Read by: " + "; ".join(parts) + ".")
        required = any(d is None for _, _, d in uses)
        defaults = [d for _, _, d in uses if d]
        value = defaults[0] if defaults and not required else ""
        out.append(f"{name}={value}" if required else f"#{name}={value}")
        out.append("")
    out.append("# ---- read by docpipe itself or its systemd unit, not by a pipeline file ---------------")
    out.append("")
    for name, text in PROCESS_VARIABLES.items():
        out += wrap(text)
        out.append(f"#{name}=")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def documented(text):
    return {m.group(1) for m in re.finditer(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", text, re.M)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="check deploy/docpipe.env.example instead of writing it")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    found = scan()
    problems = [f"{uses[0][0]}:{uses[0][1]}: ${{{name}}} has no description in scripts/gen-env-example.py (DESCRIPTIONS)"
                for name, uses in found.items() if name not in DESCRIPTIONS]
    if not args.check:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(generate(found), encoding="utf-8")
        for p in problems:
            print(f"warning: {p}", file=sys.stderr)
        print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}: "
              f"{len(found)} pipeline variables")
        return 0
    try:
        text = args.output.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"{args.output}: missing; run scripts/gen-env-example.py", file=sys.stderr)
        return 1
    have = documented(text)
    for name, uses in found.items():
        if name not in have:
            for file, line, _ in uses:
                problems.append(f"{file}:{line}: reads ${{{name}}}, which {OUTPUT.relative_to(ROOT)} does not document")
    if not problems and text != generate(found):
        problems.append(f"{OUTPUT.relative_to(ROOT)} is stale (descriptions or defaults changed)")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print("fix: add a description to DESCRIPTIONS in scripts/gen-env-example.py if needed, then run "
              "scripts/gen-env-example.py and commit deploy/docpipe.env.example", file=sys.stderr)
        return 1
    print(f"{OUTPUT.relative_to(ROOT)}: all {len(found)} variables the shipped pipelines read are documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
