// Source-document tracking: where every document owed by a source document is, and when
// the source document is settled.
//
// A Tracker exists per source document (an email, a file) from the moment the runtime
// takes it until it is settled (acked or nacked). Each document put into a graph node is
// one "hop" the tracker owes; the source document settles when the count reaches zero.
// InFlight is the set of live trackers: the bound on documents in flight (backpressure),
// the stop flags sources and run() wait on, and the report of where each one is.
//
// Threading: Tracker::outstanding is atomic; everything else in a Tracker is guarded by its
// mutex. InFlight is thread-safe. Ownership: trackers are shared by the envelopes that carry
// them and by InFlight; the last one to let go frees it.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "docpipe/component.hpp"
#include "docpipe/document.hpp"

namespace docpipe::core {

using steady = std::chrono::steady_clock;

enum class HopState { Queued, Running, RetryWait };
const char* describe_state(HopState s);

struct Position {
    std::uint64_t token;
    std::size_t node;
    HopState state;
    steady::time_point since;
    bool warned = false;
    int attempt = 1;
};

// How one descendant of a source document ended: delivered by a sink, parked for review,
// consumed on purpose (skipped), or failed (dead-lettered). The source document's job
// status is derived from all of them.
struct DescendantOutcome {
    enum class Kind { Submitted, Review, Skipped, Failed };
    Kind kind = Kind::Submitted;
    std::string doc_id, name, node, reason;
    std::map<std::string, std::string> references;  // SinkResult::with_reference
};
const char* to_string(DescendantOutcome::Kind kind);

struct RuntimeNode;

// One call of one node on one document: the job's timeline (Job::trace). Kept small: the
// node is a pointer, the detail is empty on success.
struct HopRecord {
    enum class Result { Emitted, Skipped, Delivered, Parked, AlreadyDelivered, Retry, Hold, StoreWait, Failed };
    const RuntimeNode* node = nullptr;
    std::string doc_id;           // empty when it is the job's own document (the common case)
    std::int64_t started_ms = 0;  // wall clock, Unix epoch
    std::int64_t micros = 0;      // time in the node's call
    int attempt = 1;
    Result result = Result::Emitted;
    std::string detail;           // why, for anything but a plain success; never personal data
};
const char* to_string(HopRecord::Result result);

struct Tracker {
    std::atomic<std::int64_t> outstanding{0};
    std::string doc_id, label, source_node;
    AckHandle ack;
    steady::time_point started;
    // True when no job record existed for this source document before it was taken: no
    // sink can have delivered any of its descendants, so the ledger need not be read.
    bool first_delivery = false;
    std::string previous_status;  // the job's status before this delivery ("" when new)
    // Admin re-entries settle only part of a job: an approval replaces its review outcomes,
    // a retry its failed ones; the job's other outcomes stand.
    std::optional<DescendantOutcome::Kind> replaces;

    std::mutex mutex;  // guards everything below
    bool failed = false;
    std::string reason;
    std::uint64_t next_token = 1;
    std::vector<Position> positions;
    std::vector<DescendantOutcome> outcomes;
    bool dead_letter_missing = false;  // a failure whose dead letter the store did not take
    DocumentPtr claim;                 // the last claim delivered or parked, for the job record
    std::vector<HopRecord> hops;       // capped at kMaxHops: a retry storm must not grow the job without bound
    static constexpr std::size_t kMaxHops = 400;

    // InFlight's list links, guarded by InFlight's mutex. While the tracker is in flight,
    // `in_flight_self` keeps it alive (an abandoned hop drops its envelope, not the tracker).
    std::shared_ptr<Tracker> in_flight_self;
    Tracker* in_flight_prev = nullptr;
    Tracker* in_flight_next = nullptr;

    void add_outcome(DescendantOutcome&& outcome) {
        std::lock_guard lock(mutex);
        push_outcome(std::move(outcome));
    }
    // Caller holds `mutex`. Taken by reference: moved once, into the list.
    void push_outcome(DescendantOutcome&& outcome) { new_outcome() = std::move(outcome); }
    // A new, empty outcome at the end of the list, to fill in place. Caller holds `mutex`.
    DescendantOutcome& new_outcome() {
        if (outcomes.capacity() == 0) outcomes.reserve(4);  // a document and its sinks: one allocation
        return outcomes.emplace_back();
    }
};

struct Envelope {
    DocumentPtr doc;
    std::shared_ptr<Tracker> tracker;
    std::uint64_t token = 0;
    int attempt = 1;
    // When this hop first failed for want of the state store (zero: it has not): store
    // failures wait up to the outage horizon without using up the node's attempts.
    steady::time_point store_failing_since{};
    // The same for a sink whose endpoint is down (SinkResult::hold), up to retry.hold_for.
    steady::time_point holding_since{};
    int holds = 0;  // waits so far for that endpoint: the backoff grows with them
};

struct FailedDocument {
    std::string doc_id, label, reason;
};

// How a source document's job ended, for the --once summary: what the receiving systems
// called its deliveries (the NCB claim reference...) or why there are none.
struct SettledJob {
    std::string label, status;
    nlohmann::json references;
    std::string detail;  // the job's last_error
};

// Totals for the run summary and /metrics.
struct RunCounters {
    std::atomic<std::uint64_t> taken{0}, completed{0}, failed{0};
    std::atomic<std::uint64_t> already_delivered{0};  // sink hops skipped by the ledger
};

class InFlight {
public:
    // A source that found the set full waits until it has drained to `resume_at` (three
    // quarters of the bound), then admits a burst: one wake-up per quarter of the bound
    // instead of one per settled document.
    explicit InFlight(std::size_t max_in_flight)
        : max_(max_in_flight), resume_at_(max_in_flight ? max_in_flight - std::max<std::size_t>(1, max_in_flight / 4) : 0) {}
    // Releases the trackers still in flight (a hop abandoned at shutdown never settles).
    ~InFlight();
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

    // Waits for a free slot (backpressure); false when sources are stopping (not taken).
    bool enter(const std::shared_ptr<Tracker>& tracker);
    // Takes a slot without waiting (admin retries and approvals: the caller is an HTTP thread).
    void enter_now(const std::shared_ptr<Tracker>& tracker);
    void leave(const std::shared_ptr<Tracker>& tracker);

    std::size_t size() const;
    std::uint64_t peak() const;
    std::vector<std::shared_ptr<Tracker>> snapshot() const;

    // Stop flags: request_stop() ends run()'s wait; stop_sources() ends enter()'s.
    void request_stop();
    void stop_sources();
    bool stop_requested() const { return stop_requested_.load(); }
    bool sources_stopping() const { return stop_sources_.load(); }
    // Waits until empty or a stop is requested; true when empty.
    bool wait_empty_or_stop();
    void wait_stop();
    // Waits up to `timeout` for the set to empty; true when it did.
    bool wait_empty_for(std::chrono::milliseconds timeout);
    // Sleeps up to `timeout`, waking early when sources stop.
    void pause_source(std::chrono::milliseconds timeout);

private:
    const std::size_t max_;
    const std::size_t resume_at_;
    mutable std::mutex mutex_;
    std::size_t sources_waiting_ = 0;  // sources blocked in enter() on a full set
    std::condition_variable cv_;
    // The live trackers, as an intrusive list through Tracker::in_flight_*: taking and
    // settling a document allocates nothing here.
    Tracker* head_ = nullptr;
    std::size_t size_ = 0;
    void link(const std::shared_ptr<Tracker>& tracker);
    std::uint64_t peak_ = 0;
    std::atomic<bool> stop_requested_{false}, stop_sources_{false};
};

}  // namespace docpipe::core
