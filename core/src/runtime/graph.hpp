// Graph execution: the pipeline's transforms, OCR engines and sinks as oneTBB flow-graph
// nodes, and what happens to each document at each hop — call the component, forward
// what it emits, retry under the node's policy, dead-letter a failure, consult the sink's
// delivery ledger — and the settling of a source document when its last hop is done.
//
// Threading: put()/forward()/admit() may be called from any thread (sources, the retry
// scheduler, admin threads); node bodies run on the graph's own arena with each node's
// declared concurrency.
// Ownership: the Runtime owns the GraphExecutor and everything it references; the executor
// owns the TBB arena, graph, flow nodes and the retry scheduler. Destroy it (it waits for
// the graph) before the components.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dead_letters.hpp"
#include "job_book.hpp"
#include "node.hpp"
#include "store_guard.hpp"
#include "tracking.hpp"

namespace docpipe::core {

struct LedgerEntry;  // ledger_entry.hpp

// Where settled source documents are counted, for the run summary.
struct Settlements {
    RunCounters counters;
    mutable std::mutex failures_mutex;
    std::vector<FailedDocument> failures;  // first 100
    std::vector<SettledJob> jobs;          // first 1000, in the order they settled (guarded by failures_mutex)
    // Set once `jobs` holds its 1000: later settlements skip failures_mutex for it.
    std::atomic<bool> jobs_full{false};
    // Source documents not taken because their job record could not be written (the state
    // store was down past its horizon, or the stop gave up on it): left with their source.
    std::atomic<std::uint64_t> not_taken{0};
    std::vector<std::string> not_taken_labels;  // first 20 (guarded by failures_mutex)
};

struct GraphServices {
    NodeList& nodes;
    InFlight& flight;
    Settlements& settlements;
    JobBook& jobs;
    DeadLetters& dead_letters;
    MetricsRegistry& metrics;
    Store& store;
    StoreGuard& store_guard;
    Clock& clock;
    NodeLogger& log;
    std::chrono::seconds ledger_ttl;
    bool redeliver = false;  // RuntimeOptions::redeliver
};

class GraphExecutor {
public:
    explicit GraphExecutor(GraphServices services);
    ~GraphExecutor();
    GraphExecutor(const GraphExecutor&) = delete;
    GraphExecutor& operator=(const GraphExecutor&) = delete;

    // Builds the arena, graph and flow nodes for every non-source node.
    void build();
    // A source document enters through its source node `index`: starts its job, forwards it
    // to the source's successors, and settles it if the graph finished it already.
    // False when the job record could not be written (the store stayed down past the
    // horizon): nothing entered the graph, the tracker left InFlight, the source keeps it.
    // `doc` is taken by reference (moved once, into the graph's shared copy) to save a move
    // per document; once admitted it is moved from.
    bool admit(std::size_t index, Document&& doc, const std::shared_ptr<Tracker>& tracker);
    // SourceEmitter::reject: the document gets its job like admit(), then fails at its source
    // node at once (a dead letter with `reason`, the job `failed`, the source nacked) without
    // entering the graph. Same false as admit().
    bool reject(std::size_t index, Document&& doc, const std::shared_ptr<Tracker>& tracker, const std::string& reason);
    // Re-entry of a dead letter recorded at source node `index`: the document goes on from
    // the source's outputs. Otherwise as inject().
    void inject_after_source(std::size_t index, const std::string& job_id, DocumentPtr doc, AckHandle ack,
                             std::shared_ptr<ReentryGroup> group = nullptr);
    bool is_source(std::size_t index) const;
    // Puts a document straight into a node (admin retry, approval) under its own tracker.
    // `replaces`: the kind of outcome of the job this re-entry settles anew (review for an
    // approval, failed for a retry). `group`: the action's other re-entries into the same job
    // (ReentryGroup), sized before the first is injected.
    void inject(std::size_t index, const std::string& job_id, DocumentPtr doc, AckHandle ack, DescendantOutcome::Kind replaces,
                std::shared_ptr<ReentryGroup> group = nullptr);
    // Blocks until the graph has no running or queued work.
    void wait_for_all();
    // The drain deadline passed: retries still due fail at once instead of waiting.
    void give_up_retries() {
        give_up_retries_.store(true);
        s_.store_guard.give_up();
    }

private:
    bool take(RuntimeNode& node, Document& doc, const std::shared_ptr<Tracker>& tracker);
    // Sizes a new tracker's lists for a document entering at `entry` (RuntimeNode::hops_per_document).
    static void size_for(Tracker& tracker, const RuntimeNode& entry);
    // The tracker of an admin re-entry at node `entry`.
    std::shared_ptr<Tracker> re_entry(const RuntimeNode& entry, const std::string& job_id, const Document& doc, AckHandle ack,
                                      DescendantOutcome::Kind replaces, std::shared_ptr<ReentryGroup> group);
    class CollectingOutputs;
    struct Flow;

    void put(std::size_t index, Envelope env);
    // put()'s two halves: records where the document waits (caller holds the tracker's
    // mutex), and hands it to the node's queue (without the lock).
    static void queue_position(Tracker& tracker, std::size_t index, Envelope& env, steady::time_point since);
    // The position of a document queued at `index` for the first time, with a new token.
    // Caller holds the tracker's mutex.
    static Position& new_position(Tracker& tracker, std::size_t index, int attempt, steady::time_point since);
    // The envelope's position (null when it has none), and the end of it. Caller holds the
    // tracker's mutex.
    static Position* position_of(Tracker& tracker, const Envelope& env);
    static void end_position(Tracker& tracker, const Envelope& env);
    void enqueue(std::size_t index, const Envelope& env);
    void forward(RuntimeNode& from, std::string_view port, DocumentPtr doc, const std::shared_ptr<Tracker>& tracker);
    void set_state(const Envelope& env, HopState state, steady::time_point since, steady::time_point due = {});
    void finish_hop(const Envelope& env);
    void settle(const std::shared_ptr<Tracker>& tracker);
    void fail(RuntimeNode& node, const Envelope& env, const std::string& why);
    void retry_or_fail(std::size_t index, Envelope env, const std::string& why, std::chrono::milliseconds hint);
    void wait_for_store(std::size_t index, Envelope env, const std::string& why);
    void hold(std::size_t index, Envelope env, const std::string& why, std::chrono::milliseconds hint);
    // Adds this call to the job's timeline; called where a hop's outcome is decided, before
    // the hop can settle the source document.
    void note(const Envelope& env, const RuntimeNode& node, HopRecord::Result result, std::string detail = {});
    // The timeline entry of the hop ending at `ended` (the current node call on this thread);
    // a default `ended` reads the clock.
    static HopRecord hop_record(const Envelope& env, const RuntimeNode& node, HopRecord::Result result, std::string detail = {},
                                steady::time_point ended = {});
    // How the current node call on this thread ended, for its timeline entry (HopRecord),
    // which push_hop_end() writes in place under the tracker's lock. `detail` is copied.
    struct HopEnd {
        const RuntimeNode& node;
        HopRecord::Result result;
        std::string_view detail;
        steady::time_point ended;
    };
    // A sink's outcome for the document (the rest of its DescendantOutcome comes from the
    // envelope and the node), copied in place into the tracker's list.
    struct SinkOutcome {
        DescendantOutcome::Kind kind;
        std::string_view name, reason;
        const std::map<std::string, std::string>& references;
        bool held = false;  // DescendantOutcome::held
    };
    static void push_hop_end(const Envelope& env, const HopEnd& end);
    // A transform's hop ends with documents to pass on: its timeline entry, the positions of
    // the documents it forwards and the end of its own position are one step under the
    // tracker's lock (instead of one lock each), then the documents are queued and the hop
    // is released.
    // `emitted`: each document and the port it was emitted on.
    void hand_over(RuntimeNode& from, const Envelope& env, const HopEnd& end,
                   std::vector<std::pair<DocumentPtr, std::string>>& emitted);
    // `sink`'s hop ends: its outcome, then the document goes on from its `accepted` port, if connected.
    void finish_sink_hop(RuntimeNode& sink, const Envelope& env, const HopEnd& end, const SinkOutcome& outcome, bool keep_claim);
    // `sink`'s ledger says it delivered this approved claim with other values than it carries
    // now (`differences`): the claim is parked for a person with both, not sent again.
    void park_delivered_with_other_values(RuntimeNode& sink, const Envelope& env, const LedgerEntry& entry,
                                          const std::string& differences, steady::time_point ended);
    void succeeded(RuntimeNode& node);
    template <typename Call>
    bool guarded(std::size_t index, const Envelope& env, Call&& call);
    void run(std::size_t index, const Envelope& env);
    void run_transform(std::size_t index, const Envelope& env);
    void run_sink(std::size_t index, const Envelope& env);
    // True when this document already reached this sink in this job under another token (a
    // second path through the graph); the copy's hop is then ended as skipped.
    bool arrived_before_by_another_path(RuntimeNode& node, const Envelope& env);

    GraphServices s_;
    std::atomic<bool> give_up_retries_{false};
    std::unique_ptr<Flow> flow_;
};

}  // namespace docpipe::core
