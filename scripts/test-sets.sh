# Sourced by run-tests.sh and run-gates.sh: how `make test` splits the ctest suite between
# the normal build and the instrumented one, so that each test runs once.
#
# END_TO_END_TESTS names what runs on the normal (shipped) build only: the end-to-end scripts
# (e2e., ui., ops., docs.: separate docpipe processes, a browser, `make run`), the benchmark's
# own check (bench.: the gates build has no benchmarks), and the OCR accuracy floors over
# saved receipts. They test the binaries as shipped, and under ASan + UBSan they cost the
# most. Every other test (unit and integration) runs under ASan + UBSan in the gates build,
# which checks strictly more than a second run on the normal build would.
END_TO_END_TESTS='^(e2e|ui|ops|docs|bench)\.|Floor\.|^Robustness\.RandomOcrNoise'
