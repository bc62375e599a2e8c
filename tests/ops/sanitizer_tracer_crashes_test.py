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
        for name, status, out in cases)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="x" tests="{len(cases)}">\n{body}</testsuite>\n'


def run(cases):
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
        f.write(report(cases))
    try:
        done = subprocess.run([sys.executable, SCRIPT, f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return done.returncode, done.stdout.split(), done.stderr


failures = []


def expect(label, got, want):
    if got != want:
        failures.append(f"{label}: got {got!r}, want {want!r}")


# The tracer crashing after a passed test: named for a retry, the passed ones left alone.
rc, names, _ = run([("A.Ok", "run", PASSED), ("PdfPages.AJpeg", "fail", PASSED + TRACER), ("B/C.D/0", "fail", PASSED + TRACER)])
expect("tracer crash only", (rc, names), (0, ["PdfPages.AJpeg", "B/C.D/0"]))

# Any failure of another kind beside it: nothing is retried, and that test is named.
for label, output in [("assertion", FAILED + TRACER), ("leak report", PASSED + LEAK), ("UBSan", PASSED + UBSAN + TRACER),
                      ("crash before the end", "[ RUN      ] X.Y\n" + TRACER), ("timeout", "[ RUN      ] X.Y\n")]:
    rc, names, err = run([("PdfPages.AJpeg", "fail", PASSED + TRACER), ("Other.Case", "fail", output)])
    expect(label, (rc, names), (1, []))
    expect(label + " is named", "Other.Case" in err, True)

# ctest failed, but no test in the report did: not a tracer crash either.
rc, names, err = run([("A.Ok", "run", PASSED)])
expect("no failure", (rc, names), (1, []))

# An unreadable report says which file.
done = subprocess.run([sys.executable, SCRIPT, "/nonexistent/gates-junit.xml"], capture_output=True, text=True)
expect("missing report", (done.returncode, "/nonexistent/gates-junit.xml" in done.stderr), (1, True))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok: only LeakSanitizer's tracer crash after a passed test is retried")
