// Job records: the admin API's view of each source document (an email, a file) — its
// status from intake to a terminal state, attempts, claim fields, errors, and how each of
// its descendants (attachments, claims) ended.
//
// Contract:
// - A job is terminal only when every descendant is: end() derives the status from all
//   their outcomes (all delivered: submitted; any in review: review; some failed: partial;
//   all failed: failed; all skipped: skipped) — no sink or transform sets it on its own.
//   The source document's own delivery beside its descendants' (the email archived as
//   received) is no claim: it counts when it failed or is the only outcome, so an email whose
//   one receipt was skipped as a duplicate ends `skipped` whether it was archived or not.
// - end() is the commit point of a source document: it is written (waiting through a store
//   outage, see StoreGuard) before the source is acked, so a crash in between redelivers a
//   document whose job says what already happened.
// - start() waits through a store outage too (the source thread pauses).
// Threading: every method may be called from any graph or source thread concurrently.
// Ownership: the Runtime owns the JobBook; the store, guard and logger outlive it.
#pragma once

#include <atomic>
#include <set>
#include <string>

#include "docpipe/component.hpp"
#include "state/store.hpp"
#include "store_guard.hpp"
#include "tracking.hpp"

namespace docpipe::core {

struct JobEnd {
    std::string status;
    Outcome ack;  // what the source is told
    nlohmann::json references;  // the job's references; null when it has none (no allocation per job)
    std::string detail;  // last_error
};

// The opening of a node's entries in a job's timeline (Job::trace_text()),
// `{"node":"<name>","component":"<component>"`, cached on each RuntimeNode.
std::string timeline_prefix(std::string_view node, std::string_view component);

class JobBook {
public:
    JobBook(Store& store, StoreGuard& guard, Logger& log, std::string pipeline_hash);

    // A source document was taken: create its job, or reopen it on a redelivery (attempts
    // + 1). Puts the job's earlier status on `doc` (kPreviousStatusAttribute) for dedup and
    // on the tracker. Throws StoreError when the store stayed down past the horizon.
    void start(Tracker& tracker, Document& doc);
    // Every descendant is settled: derive and write the job's final status. Never throws.
    JobEnd end(Tracker& tracker);

    // Start-up reconciliation: jobs this host left `processing` (the process that took
    // them is gone). Those a source delivers again are re-driven; settle_unclaimed() ends
    // the rest as failed with the reason. Both return how many jobs they touched.
    std::size_t find_interrupted();
    std::size_t settle_unclaimed();
    // Jobs a reviewer approved on a process that is gone before the claim was delivered: no
    // source delivers an approval again, so they stayed `approved` for good, with no way to
    // retry, review or approve them. They go back to review (the parked record holds the
    // reviewer's corrections) with a reason. Returns how many.
    std::size_t return_interrupted_approvals();
    // Context::amend_reference: sets `key` to `value` in the references of `doc_id`'s outcome
    // in job `job_id`, and in the job's own references where that outcome's old value stood
    // (a job of several documents keeps every distinct value). False when the job or the
    // outcome is not there (not settled yet) or the store is away; never throws.
    bool amend_reference(const std::string& job_id, const std::string& doc_id, const std::string& key, const std::string& value);
    // host:pid of this process, as job records name their owner.
    const std::string& owner() const { return owner_; }
    std::uint64_t reconciled() const { return reconciled_.load(); }

private:
    Store& store_;
    StoreGuard& guard_;
    Logger& log_;
    SharedText pipeline_hash_;  // shared by every job this book opens (one allocation, not one per job)
    std::string owner_;  // host:pid
    std::mutex interrupted_mutex_;
    std::set<std::string> interrupted_;  // found at start-up, not yet re-driven or settled
    std::atomic<std::uint64_t> reconciled_{0};
};

}  // namespace docpipe::core
