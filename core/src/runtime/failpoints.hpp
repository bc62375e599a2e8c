// Fail points for crash tests: when the environment variable DOCPIPE_FAILPOINTS names a
// point (comma-separated), reaching it kills the process with SIGKILL, once. The crash
// recovery tests use them to stop the runtime between the steps that make delivery
// exactly-once (job record, ack). With the variable unset this is one relaxed load.
// Points: sink.after_write (a sink accepted a document, its ledger entry is not written
// yet; sink.after_write.<node> for one sink only), settle.before_job_end,
// settle.before_ack, settle.after_ack.
#pragma once

namespace docpipe::core {

namespace detail {
bool failpoints_configured();            // reads DOCPIPE_FAILPOINTS (once)
void reach_failpoint(const char* name);  // kills the process if `name` is configured
}  // namespace detail

// Whether DOCPIPE_FAILPOINTS is set at all (to skip building a point's name). Inline: the
// settle and sink paths pass several points per document.
inline bool failpoints_enabled() {
    static const bool enabled = detail::failpoints_configured();
    return enabled;
}

inline void failpoint(const char* name) {
    if (failpoints_enabled()) detail::reach_failpoint(name);
}

}  // namespace docpipe::core
