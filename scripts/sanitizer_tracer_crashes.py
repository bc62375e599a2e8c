#!/usr/bin/env python3
"""Which failed tests of a ctest run failed only because LeakSanitizer's tracer crashed.

    scripts/sanitizer_tracer_crashes.py JUNIT_XML CTEST_OUTPUT

run-gates.sh calls this after a failed `ctest --output-junit JUNIT_XML`, whose console
output it kept in CTEST_OUTPUT. LeakSanitizer checks for leaks at exit from a helper thread
that stops the process with ptrace; in the sanitizer runtime of Debian 12's gcc 12 that
helper now and then dies of a segfault of its own ("Tracer caught signal 11",
google/sanitizers#1353), after every assertion has passed. It is not a leak report and not
a failure of the code under test, and the same test passes when run again, leak check
included.

Prints the names of the failed tests, one per line, and exits 0, when every failure is such
a crash:
  - ctest says the test "Failed" (an exit code), not "Timeout" or "Exception" (a signal);
  - its output ends with googletest's "[  PASSED  ]" line, then the tracer's message and
    LeakSanitizer's fatal-error lines, and nothing else (so a crash printed by a child
    process earlier in the output does not count);
  - nothing in it reports a real failure (an assertion, a leak, ASan or UBSan).
Any other failure exits 1 naming it, so it is never retried.
"""
import re
import sys
import xml.etree.ElementTree as ET

TRACER_CRASH = "Tracer caught signal"
LSAN_FATAL = "LeakSanitizer has encountered a fatal error"
# What may follow the tracer's message: LeakSanitizer's own lines ("==123==...").
LSAN_LINE = re.compile(r"^==\d+==")
# What a real failure prints; any of these rules a retry out.
REAL_FAILURE = (
    "[  FAILED  ]",
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer: detected memory leaks",
    "runtime error:",  # UBSan
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
)
# ctest's verdict line: "12/788 Test #203: Suite.Name ......***Failed    3.03 sec", or
# "...Subprocess aborted***Exception:", "...***Timeout".
VERDICT = re.compile(r"Test +#\d+: (\S+) .*\*\*\*(\w+)")


def tracer_crash_only(output: str) -> bool:
    if any(marker in output for marker in REAL_FAILURE):
        return False
    lines = [line for line in output.splitlines() if line.strip()]
    passed = max((k for k, line in enumerate(lines) if line.startswith("[  PASSED  ]")), default=-1)
    if passed < 0:
        return False
    tail = lines[passed + 1:]
    if not tail or not tail[0].startswith(TRACER_CRASH):
        return False
    return all(LSAN_LINE.match(line) for line in tail[1:]) and any(LSAN_FATAL in line for line in tail[1:])


def verdicts(console_text: str) -> dict:
    return {m.group(1): m.group(2) for m in map(VERDICT.search, console_text.splitlines()) if m}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        suite = ET.parse(argv[1]).getroot()
    except (OSError, ET.ParseError) as error:
        print(f"{argv[1]}: cannot read ctest's JUnit report: {error}", file=sys.stderr)
        return 1
    try:
        with open(argv[2], encoding="utf-8", errors="replace") as f:
            said = verdicts(f.read())
    except OSError as error:
        print(f"{argv[2]}: cannot read ctest's output: {error}", file=sys.stderr)
        return 1
    retry, real = [], []
    for case in suite.iter("testcase"):
        if case.get("status") != "fail":
            continue
        name = case.get("name", "?")
        output = case.findtext("system-out") or ""
        verdict = said.get(name, "?")
        (retry if verdict == "Failed" and tracer_crash_only(output) else real).append(name if verdict == "Failed" else f"{name} ({verdict})")
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
