#!/usr/bin/env python3
"""scripts/sanitizer_tracer_crashes.py retries only LeakSanitizer's own exit-time crash.

Each case is a JUnit report as `ctest --output-junit` writes it; the outputs are what
googletest and the sanitizers print (the first one is CI's real log of stop 47).
"""
import os
import subprocess
import sys
import tempfile
from xml.sax.saxutils import escape

SCRIPT = os.path.join(sys.argv[1], "scripts", "sanitizer_tracer_crashes.py")

PASSED = """[ RUN      ] PdfPages.AJpeg
[       OK ] PdfPages.AJpeg (2773 ms)
[==========] 1 test from 1 test suite ran. (2773 ms total)
[  PASSED  ] 1 test.
"""
TRACER = """Tracer caught signal 11: addr=0x4e0 pc=0x7fe6b48e80f0 sp=0x7fe6ad5ffd10
==18120==LeakSanitizer has encountered a fatal error.
==18120==HINT: For debugging, try setting environment variable LSAN_OPTIONS=verbosity=1:log_threads=1
==18120==HINT: LeakSanitizer does not work under ptrace (strace, gdb, etc)
"""
FAILED = """[ RUN      ] Other.Case
x.cpp:12: Failure
Expected equality of these values:
[  FAILED  ] Other.Case (3 ms)
[  FAILED  ] 1 test, listed below:
"""
LEAK = """==9==ERROR: LeakSanitizer: detected memory leaks
Direct leak of 8 byte(s) in 1 object(s) allocated from:
SUMMARY: AddressSanitizer: 8 byte(s) leaked in 1 allocation(s).
"""
UBSAN = "x.cpp:3:5: runtime error: signed integer overflow\n"


def report(cases):
    body = "".join(
        f'<testcase name="{name}" classname="{name}" time="1" status="{status}">'
        f"<system-out>{escape(out)}</system-out></testcase>\n"
        for name, status, out, _ in cases)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="x" tests="{len(cases)}">\n{body}</testsuite>\n'


def console(cases):
    """ctest's console lines, as it prints each verdict."""
    lines = []
    for k, (name, status, _, verdict) in enumerate(cases, 1):
        if status == "fail":
            lines.append(f"{k}/{len(cases)} Test #{k}: {name} ........{verdict}   1.00 sec")
        else:
            lines.append(f"{k}/{len(cases)} Test #{k}: {name} ........   Passed    1.00 sec")
    return "\n".join(lines) + "\n"


def run(cases):
    with tempfile.TemporaryDirectory() as folder:
        junit, log = os.path.join(folder, "j.xml"), os.path.join(folder, "j.log")
        with open(junit, "w") as f:
            f.write(report(cases))
        with open(log, "w") as f:
            f.write(console(cases))
        done = subprocess.run([sys.executable, SCRIPT, junit, log], capture_output=True, text=True)
    return done.returncode, done.stdout.split(), done.stderr


failures = []


def expect(label, got, want):
    if got != want:
        failures.append(f"{label}: got {got!r}, want {want!r}")


FAILED_VERDICT = "***Failed"
# The tracer crashing after a passed test: named for a retry, the passed ones left alone.
rc, names, _ = run([("A.Ok", "run", PASSED, ""), ("PdfPages.AJpeg", "fail", PASSED + TRACER, FAILED_VERDICT),
                    ("B/C.D/0", "fail", PASSED + TRACER, FAILED_VERDICT)])
expect("tracer crash only", (rc, names), (0, ["PdfPages.AJpeg", "B/C.D/0"]))

# Any failure of another kind beside it: nothing is retried, and that test is named.
for label, output, verdict in [
        ("assertion", FAILED + TRACER, FAILED_VERDICT),
        ("leak report", PASSED + LEAK, FAILED_VERDICT),
        ("UBSan", PASSED + UBSAN + TRACER, FAILED_VERDICT),
        ("crash before the end", "[ RUN      ] X.Y\n" + TRACER, FAILED_VERDICT),
        ("a child's tracer crash before the test passed", TRACER + PASSED, FAILED_VERDICT),
        ("output after the tracer's lines", PASSED + TRACER + "terminate called without an active exception\n", FAILED_VERDICT),
        ("LeakSanitizer's fatal error for another reason", PASSED + "==9==LeakSanitizer: ptrace failed\n"
         "==9==LeakSanitizer has encountered a fatal error.\n", FAILED_VERDICT),
        ("timeout", PASSED + TRACER, "***Timeout"),
        ("signal", PASSED + TRACER, "Subprocess aborted***Exception:"),
        ("plain failure", "[ RUN      ] X.Y\n", FAILED_VERDICT)]:
    rc, names, err = run([("PdfPages.AJpeg", "fail", PASSED + TRACER, FAILED_VERDICT), ("Other.Case", "fail", output, verdict)])
    expect(label, (rc, names), (1, []))
    expect(label + " is named", "Other.Case" in err, True)

# ctest failed, but no test in the report did: not a tracer crash either.
rc, names, err = run([("A.Ok", "run", PASSED, "")])
expect("no failure", (rc, names), (1, []))

# An unreadable report says which file.
done = subprocess.run([sys.executable, SCRIPT, "/nonexistent/gates-junit.xml", "/nonexistent/gates-junit.log"], capture_output=True, text=True)
expect("missing report", (done.returncode, "/nonexistent/gates-junit.xml" in done.stderr), (1, True))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok: only LeakSanitizer's tracer crash after a passed test is retried")
