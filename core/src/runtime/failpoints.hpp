// Fail points for crash tests: when the environment variable DOCPIPE_FAILPOINTS names a
// point (comma-separated), reaching it kills the process with SIGKILL, once. The crash
// recovery tests use them to stop the runtime between the steps that make delivery
// exactly-once (job record, ack). With the variable unset this is one relaxed load.
// Points: sink.after_write (a sink accepted a document, its ledger entry is not written
// yet; sink.after_write.<node> for one sink only), settle.before_job_end,
// settle.before_ack, settle.after_ack.
#pragma once

namespace docpipe::core {

void failpoint(const char* name);
// Whether DOCPIPE_FAILPOINTS is set at all (to skip building a point's name).
bool failpoints_enabled();

}  // namespace docpipe::core
