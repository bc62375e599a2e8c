# Operations: service files, install layout, logs without personal data, progress output.
# Included from tests/CMakeLists.txt (docpipe_test() and TEST_PLUGIN_ROOT come from there).
set(OPS_DIR ${CMAKE_CURRENT_SOURCE_DIR}/ops)

docpipe_test(log_redaction_test unit/log_redaction_test.cpp)

# systemd-analyze verify and security on deploy/systemd (skipped without systemd-analyze).
add_test(NAME ops.systemd_units COMMAND bash ${OPS_DIR}/systemd_units.sh ${PROJECT_SOURCE_DIR} $<TARGET_FILE:docpipe>)
# deploy/docpipe.env.example documents every variable the shipped pipelines read.
add_test(NAME ops.env_example COMMAND python3 ${PROJECT_SOURCE_DIR}/scripts/gen-env-example.py --check)
# docs/metrics.md lists every docpipe_ series; the alert rules use only those.
add_test(NAME ops.metrics_doc COMMAND python3 ${OPS_DIR}/check_metrics_doc.py ${PROJECT_SOURCE_DIR})
# promtool (Debian package `prometheus`, which scripts/install-deps.sh installs) checks the
# rules and runs their unit tests; skipped where it is not installed.
add_test(NAME ops.alert_rules COMMAND bash -c
  "command -v promtool >/dev/null || { echo 'SKIP: promtool not installed (apt-get install prometheus)'; exit 77; }; promtool check rules ${PROJECT_SOURCE_DIR}/deploy/prometheus/alerts.yml && cd ${OPS_DIR} && promtool test rules alerts_test.yml")
# make test's sanitizer gates retry only LeakSanitizer's own exit-time crash (run-gates.sh).
add_test(NAME ops.sanitizer_tracer_crashes COMMAND python3 ${OPS_DIR}/sanitizer_tracer_crashes_test.py ${PROJECT_SOURCE_DIR})
# cmake --install into a temporary prefix; needs every installed target built (`make`).
add_test(NAME ops.install_layout COMMAND bash ${OPS_DIR}/install_layout.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR}
  ${TEST_PLUGIN_ROOT}/good)
# The progress line of `extract` and `run --once` on a pty, and none on a pipe.
add_test(NAME ops.progress_tty COMMAND python3 ${OPS_DIR}/progress_tty.py $<TARGET_FILE:docpipe> ${TEST_PLUGIN_ROOT}/crash)
# `make run` from a read-only copy of the checkout (reuses this build folder).
add_test(NAME ops.make_run_readonly COMMAND bash ${OPS_DIR}/make_run_readonly.sh ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
set_tests_properties(ops.systemd_units ops.alert_rules ops.make_run_readonly PROPERTIES SKIP_RETURN_CODE 77)
set_tests_properties(ops.install_layout ops.progress_tty ops.make_run_readonly PROPERTIES TIMEOUT 300)
