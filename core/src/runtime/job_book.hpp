// Job records: the admin API's view of each source document (an email, a file) — its
// status from intake to a terminal state, attempts, claim fields and errors.
//
// Contract: a job record is bookkeeping. A store failure here never stops a document; it is
// logged and counted (the document's own delivery is guarded by the ledger and the ack).
// Threading: every method may be called from any graph or source thread concurrently.
// Ownership: the Runtime owns the JobBook; it holds references to the store and logger,
// which outlive it.
#pragma once

#include <string>

#include "docpipe/component.hpp"
#include "state/store.hpp"
#include "tracking.hpp"

namespace docpipe::core {

class JobBook {
public:
    JobBook(Store& store, Logger& log, std::string pipeline_hash);

    // A source document was taken: create its job, or reopen it on a redelivery (attempts
    // + 1). Puts the job's earlier status on `doc` (kPreviousStatusAttribute) for dedup and
    // sets tracker.first_delivery when there was no earlier job.
    void start(Tracker& tracker, Document& doc);
    // Every descendant is settled: write the job's final status.
    void end(const Tracker& tracker, const Outcome& outcome);
    // A component consumed a document on purpose (Outputs::skip).
    void skip(const std::string& job_id, const std::string& node, const std::string& reason);
    // A claim was delivered: its fields and confidence go on the job.
    void claim(const std::string& job_id, const Document& doc, Logger& node_log);

private:
    Store& store_;
    Logger& log_;
    std::string pipeline_hash_;
};

}  // namespace docpipe::core
