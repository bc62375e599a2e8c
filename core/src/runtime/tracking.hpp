// Source-document tracking: where every document owed by a source document is, and when
// the source document is settled.
//
// A Tracker exists per source document (an email, a file) from the moment the runtime
// takes it until it is settled (acked or nacked). Each document put into a graph node is
// one "hop" the tracker owes; the source document settles when the count reaches zero.
// InFlight is the set of live trackers: the bound on documents in flight (backpressure),
// the stop flags sources and run() wait on, and the report of where each one is.
//
// Threading: Tracker::outstanding and Position::running_since are atomic; everything else
// in a Tracker is guarded by its mutex. InFlight is thread-safe. Ownership: trackers are
// shared by the envelopes that carry them and by InFlight; the last one to let go frees it.
#pragma once

#include <algorithm>
#include <array>
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

// Held: a sink said its endpoint is down (SinkResult::hold); the next try is at `due`.
enum class HopState { Queued, Running, RetryWait, Held };
const char* describe_state(HopState s);

struct Position {
    std::uint64_t token = 0;  // 0: a free slot (Positions)
    std::size_t node = 0;
    HopState state = HopState::Queued;
    steady::time_point since{};
    steady::time_point due{};  // Held: when the next try is scheduled
    bool warned = false;
    int attempt = 1;
    // When the node's call on this document began, in steady-clock ticks; 0 while it is not
    // in a call. The thread that makes the call stores it without the tracker's lock: taking
    // it at the start of every hop only for the watchdog cost a lock per hop, contended by
    // the other sinks of the same document. The watchdog and the in-flight report read it
    // under the lock; whatever queues the document again, puts it to wait for a retry or
    // ends its hop clears it under the lock, so it is never stale for a later call.
    std::atomic<steady::rep> running_since{0};

    // The position's state and since, counting a call that has begun as Running since then.
    // Caller holds the tracker's mutex.
    HopState current_state() const {
        return running_since.load(std::memory_order_relaxed) != 0 ? HopState::Running : state;
    }
    steady::time_point current_since() const {
        const auto running = running_since.load(std::memory_order_relaxed);
        return running != 0 ? steady::time_point(steady::duration(running)) : since;
    }
    // Makes a call that has begun the position's own state, warned afresh: what a lock taken
    // at the start of every call used to write. Caller holds the tracker's mutex.
    void catch_up() {
        const auto running = running_since.load(std::memory_order_relaxed);
        if (running == 0 || state == HopState::Running) return;
        state = HopState::Running;
        since = steady::time_point(steady::duration(running));
        warned = false;
    }
    // The start of a node's call, stored by the thread that makes it (no lock).
    void mark_running(steady::time_point started) {
        running_since.store(std::max<steady::rep>(1, started.time_since_epoch().count()), std::memory_order_relaxed);
    }
    // A new state from the queueing side. Caller holds the tracker's mutex.
    void set(HopState new_state, steady::time_point new_since, steady::time_point new_due = {}) {
        state = new_state;
        since = new_since;
        due = new_due;
        warned = false;
        running_since.store(0, std::memory_order_relaxed);
    }
};

// Where a source document's hops are, in slots that never move: an envelope keeps a pointer
// to its own slot (Envelope::position), so a hop marks itself running without the tracker's
// lock. A freed slot (token 0) is reused; the first few live inside the tracker, so a
// typical document allocates nothing here. Guarded by the tracker's mutex, except
// Position::running_since (see there).
class Positions {
public:
    Positions() = default;
    Positions(const Positions&) = delete;
    Positions& operator=(const Positions&) = delete;

    // A new position for `token`, queued at `node` since `since`.
    Position& add(std::uint64_t token, std::size_t node, steady::time_point since, int attempt) {
        Position* p = nullptr;
        if (free_ > 0) {
            for (std::size_t i = 0; i < used_ && !p; ++i)
                if (slot(i).token == 0) p = &slot(i);
            --free_;
        } else {
            if (used_ >= kInline && (used_ - kInline) % kChunk == 0) chunks_.push_back(std::make_unique<Position[]>(kChunk));
            p = &slot(used_++);
        }
        p->token = token;
        p->node = node;
        p->attempt = attempt;
        p->set(HopState::Queued, since);
        return *p;
    }
    void remove(Position& p) {
        p.token = 0;
        p.running_since.store(0, std::memory_order_relaxed);
        ++free_;
    }
    // The live position of `token`; null if it has none.
    Position* find(std::uint64_t token) {
        for (std::size_t i = 0; i < used_; ++i)
            if (slot(i).token == token) return &slot(i);
        return nullptr;
    }
    // The live positions in the order they were added (by token), as a vector once held them.
    std::vector<Position*> live() {
        std::vector<Position*> out;
        for (std::size_t i = 0; i < used_; ++i)
            if (slot(i).token != 0) out.push_back(&slot(i));
        std::sort(out.begin(), out.end(), [](const Position* a, const Position* b) { return a->token < b->token; });
        return out;
    }

private:
    static constexpr std::size_t kInline = 4, kChunk = 16;
    Position& slot(std::size_t i) { return i < kInline ? inline_[i] : chunks_[(i - kInline) / kChunk][(i - kInline) % kChunk]; }
    std::array<Position, kInline> inline_;
    std::vector<std::unique_ptr<Position[]>> chunks_;  // kChunk slots each, allocated as needed
    std::size_t used_ = 0;  // slots handed out so far, live or freed
    std::size_t free_ = 0;  // freed slots among them
};

// How one descendant of a source document ended: delivered by a sink, parked for review,
// consumed on purpose (skipped), or failed (dead-lettered). The source document's job
// status is derived from all of them.
struct DescendantOutcome {
    enum class Kind { Submitted, Review, Skipped, Failed };
    Kind kind = Kind::Submitted;
    std::string doc_id, name, node, reason;
    std::map<std::string, std::string> references;  // SinkResult::with_reference
    // Parked for review, yet the receiving system holds it (booked with other values): a
    // rejection does not undo that booking, so the same content sent again is a duplicate.
    bool held = false;
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

// The documents one admin action (an approval, a retry) sends back into one job, each under a
// tracker of its own. Each settles its own documents' outcomes as it ends; the job's status is
// derived once the last of them has settled. Until then it stays as the action set it
// (`approved`, `processing`): derived earlier, from the outcomes of documents still on their
// way, it read `review` or `failed` for a moment, and a second approval or retry could start
// those documents again.
struct ReentryGroup {
    std::mutex mutex;  // one member's job write at a time
    std::size_t size = 0, settled = 0;
};

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
    // An admin re-entry: the document it sent back in (its outcomes of the replaced kind are the
    // ones this tracker settles anew; the job's other documents' stand), and its group.
    std::string reentered_doc_id;
    std::shared_ptr<ReentryGroup> group;
    // How many hops and outcomes to reserve room for at the first of each (see
    // RuntimeNode::hops_per_document); set before the tracker is shared. The defaults are
    // for trackers made without a pipeline's counts.
    std::uint32_t expected_hops = 8, expected_outcomes = 4;

    std::mutex mutex;  // guards everything below
    bool failed = false;
    std::string reason;
    std::uint64_t next_token = 1;
    Positions positions;
    std::vector<DescendantOutcome> outcomes;
    bool dead_letter_missing = false;  // a failure whose dead letter the store did not take
    // Which envelope (token) brought each document to each sink ("<sink>/<doc id>"): a second
    // path through the graph (`in -> dedup -> out` beside `in -> out`) brings the same
    // document to the same sink under another token, and is not delivered again. A retry of
    // the first keeps its token, so it is let through. Small: one entry per delivery.
    std::vector<std::pair<std::string, std::uint64_t>> sink_arrivals;
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
        if (outcomes.capacity() == 0) outcomes.reserve(std::max<std::uint32_t>(1, expected_outcomes));  // one allocation
        return outcomes.emplace_back();
    }
};

struct Envelope {
    DocumentPtr doc;
    std::shared_ptr<Tracker> tracker;
    std::uint64_t token = 0;
    // The slot of this token in the tracker's positions (null before the document is queued,
    // and for a hop that never queues, as a rejected document's): the hop marks itself
    // running there without the tracker's lock. It stays this token's until the hop ends.
    Position* position = nullptr;
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
    // Completed (acked: what could be delivered was), with a delivery that failed and was
    // dead-lettered (a job `partial`: the receipt went to NCB, the email's archive did not).
    std::atomic<std::uint64_t> partial{0};
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
