#!/usr/bin/env python3
"""Which failed tests of a ctest run failed only because LeakSanitizer's tracer crashed.

    scripts/sanitizer_tracer_crashes.py JUNIT_XML

run-gates.sh calls this after a failed `ctest --output-junit JUNIT_XML`. LeakSanitizer
checks for leaks at exit from a helper thread that stops the process with ptrace; in the
sanitizer runtime of Debian 12's gcc 12 that helper now and then dies of a segfault of its
own ("Tracer caught signal 11", google/sanitizers#1353), after every assertion has passed.
It is not a leak report and not a failure of the code under test, and the same test passes
when run again, leak check included.

Prints the names of the failed tests, one per line, and exits 0, when every failure is such
a crash: the output holds the tracer's own message, and googletest said "[  PASSED  ]" and
nothing failed before it. Any other failure (an assertion, a leak report, an ASan or UBSan
report, a timeout, a crash of the test itself) exits 1 naming it, so it is never retried.
"""
import sys
import xml.etree.ElementTree as ET

TRACER_CRASH = "Tracer caught signal"
LSAN_FATAL = "LeakSanitizer has encountered a fatal error"
# What a real failure prints; any of these rules a retry out.
REAL_FAILURE = (
    "[  FAILED  ]",
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer: detected memory leaks",
    "runtime error:",  # UBSan
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
)


def tracer_crash_only(output: str) -> bool:
    if TRACER_CRASH not in output or LSAN_FATAL not in output:
        return False
    if "[  PASSED  ]" not in output:
        return False
    return not any(marker in output for marker in REAL_FAILURE)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        suite = ET.parse(argv[1]).getroot()
    except (OSError, ET.ParseError) as error:
        print(f"{argv[1]}: cannot read ctest's JUnit report: {error}", file=sys.stderr)
        return 1
    retry, real = [], []
    for case in suite.iter("testcase"):
        if case.get("status") != "fail":
            continue
        name = case.get("name", "?")
        output = case.findtext("system-out") or ""
        (retry if tracer_crash_only(output) else real).append(name)
    if real:
        print("failed for a reason of its own (not retried): " + ", ".join(real), file=sys.stderr)
        return 1
    if not retry:
        print(f"{argv[1]}: no failed test in the report", file=sys.stderr)
        return 1
    print("\n".join(retry))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
