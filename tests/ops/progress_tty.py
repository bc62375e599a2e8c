#!/usr/bin/env python3
"""`docpipe extract` over many files and `docpipe run --once` draw one updating progress line
on stderr when it is a terminal (a pty here), and write nothing of the kind when it is not.
Usage: progress_tty.py DOCPIPE TEST_PLUGIN_DIR   (the folder of transform.test_fields)
"""
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
from pathlib import Path

DOCPIPE, PLUGINS = str(Path(sys.argv[1]).resolve()), str(Path(sys.argv[2]).resolve())
problems = []


def want(cond, message):
    if not cond:
        problems.append(message)


def run(cmd, tty, cwd):
    """Runs cmd with stderr on a pty (tty=True) or a pipe; returns (rc, stdout, stderr)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": cwd, "TERM": "xterm", "OMP_THREAD_LIMIT": "1"}
    # Under make test-asan the sanitizers' options (suppressions for third-party code) pass on.
    env.update({k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS")})
    with tempfile.TemporaryFile() as out:
        if not tty:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, env=env, cwd=cwd, timeout=300)
            out.seek(0)
            return p.returncode, out.read().decode(), p.stderr.decode(errors="replace")
        master, slave = pty.openpty()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=slave, env=env, cwd=cwd)
        os.close(slave)
        chunks = []
        while True:
            ready, _, _ = select.select([master], [], [], 300)
            if not ready:
                p.kill()
                raise SystemExit(f"FAIL: {cmd[1]} did not finish")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        rc = p.wait(timeout=60)
        out.seek(0)
        return rc, out.read().decode(), b"".join(chunks).decode(errors="replace")


def shown_lines(stderr):
    """What a terminal shows: each line's text after its last carriage return, escapes removed."""
    text = stderr.replace("\r\n", "\n")
    return [re.sub(r"\x1b\[K", "", line.split("\r")[-1]) for line in text.split("\n")]


with tempfile.TemporaryDirectory(prefix="docpipe-progress-") as root:
    root = Path(root)
    files = []
    for i in range(40):
        f = root / f"doc{i:02}.txt"
        f.write_text("x" * (i + 1))
        files.append(str(f))
    files.insert(20, str(root / "missing.txt"))
    (root / "extract.yaml").write_text(f"""version: 1
plugin_paths: ['{PLUGINS}']
nodes:
  in: {{component: source.directory, config: {{path: '{root}/unused'}}}}
  fields: {{component: transform.test_fields, config: {{tag: t}}}}
  out: {{component: sink.discard}}
edges: [in -> fields -> out]
""")
    extract = [DOCPIPE, "extract", "-c", str(root / "extract.yaml"), "-j", "2", *files]

    rc, out_tty, err_tty = run(extract, True, str(root))
    want(rc == 1, f"extract on a tty: exit {rc}, want 1 (one file missing)")
    want("\r" in err_tty and "\x1b[K" in err_tty, f"extract on a tty: no updating line in stderr: {err_tty!r}")
    final = [l for l in shown_lines(err_tty) if l.startswith("docpipe extract: 41/41 files (100%)")]
    want(final and "1 failed" in final[-1] and "files/s" in final[-1] and "took" in final[-1],
         f"extract on a tty: no final progress line with 41/41, 1 failed, rate and time: {shown_lines(err_tty)}")
    want(any(l == f"docpipe extract: {root}/missing.txt: no such file" for l in shown_lines(err_tty)),
         f"extract on a tty: the missing file's message is not a line of its own: {shown_lines(err_tty)}")
    want(len(out_tty.splitlines()) == 41, f"extract on a tty: {len(out_tty.splitlines())} JSON lines, want 41")

    rc, out_pipe, err_pipe = run(extract, False, str(root))
    want(rc == 1, f"extract to a pipe: exit {rc}, want 1")
    want("\r" not in err_pipe and "\x1b" not in err_pipe and "files (" not in err_pipe,
         f"extract to a pipe: progress output in stderr: {err_pipe!r}")
    want(err_pipe.strip() == f"docpipe extract: {root}/missing.txt: no such file", f"extract to a pipe: stderr {err_pipe!r}")
    want(out_pipe == out_tty, "extract: stdout differs between a tty and a pipe")

    # run --once: a drop folder of 30 documents, info logs on stderr meanwhile; 40 ms a
    # document, so the line is drawn several times while documents are still waiting.
    for tty in (True, False):
        inbox = root / f"inbox-{tty}"
        inbox.mkdir()
        for i in range(30):
            (inbox / f"d{i:02}.txt").write_text(f"document {i}")
        (root / "run.yaml").write_text(f"""version: 1
state: {{backend: memory}}
admin: {{enabled: false}}
logging: {{level: info, format: text}}
plugin_paths: ['{PLUGINS}']
max_in_flight: 4
nodes:
  in: {{component: source.directory, config: {{path: '{inbox}', settle_time: 0s}}}}
  slow: {{component: transform.test_fields, config: {{delay: 40ms}}}}
  out: {{component: sink.discard, config: {{log: true}}}}
edges: [in -> slow -> out]
""")
        rc, out, err = run([DOCPIPE, "run", "-c", str(root / "run.yaml"), "--once"], tty, str(root))
        where = "run --once on a tty" if tty else "run --once to a pipe"
        want(rc == 0, f"{where}: exit {rc}\n{err}")
        want("documents: 30 taken, 30 completed, 0 failed" in out, f"{where}: summary: {out[:300]}")
        if tty:
            lines = shown_lines(err)
            # The sources say how many files wait, so the line shows a total and time left.
            final = [l for l in lines if l.startswith("docpipe run: 30/30 docs (100%), 0 failed")]
            want(final and "took" in final[-1], f"{where}: no final progress line with the total: {lines[-5:]}")
            drawn = re.findall(r"docpipe run: (\d+)/30 docs \(\d+%\), 0 failed[^\r\n]*left", err)
            want(drawn and min(int(n) for n in drawn) < 30,
                 f"{where}: no line with done/total and time left while documents were waiting: {err[:800]!r}")
            mixed = [l for l in lines if "docpipe run:" in l and re.search(r"\d{4}-\d\d-\d\dT", l)]
            want(not mixed, f"{where}: a log line and the progress line share a line: {mixed[:3]}")
            want(any("discarded" in l for l in lines), f"{where}: the sink's log lines are missing: {lines[:5]}")
        else:
            want("\r" not in err and "\x1b" not in err and "docs done" not in err, f"{where}: progress output: {err[-500:]!r}")
            want("discarded" in err, f"{where}: the sink's log lines are missing")

for p in problems:
    print("FAIL:", p, file=sys.stderr)
if problems:
    sys.exit(1)
print("PASS: progress on a terminal only")
