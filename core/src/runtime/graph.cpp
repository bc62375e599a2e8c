#include "graph.hpp"

#include <algorithm>
#include <array>
#include <thread>

#include <fmt/core.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include "builtin/builtin.hpp"
#include "failpoints.hpp"
#include "ledger_entry.hpp"
#include "retry_scheduler.hpp"

namespace docpipe::core {

namespace flow = oneapi::tbb::flow;
using std::chrono::milliseconds;

namespace {
// The attachment's file name, for the job's outcomes ("" when the document has none).
std::string_view file_name(const Document& doc) {
    static const std::string key = "filename";  // the map's find() would build it on every call
    auto it = doc.attributes.find(key);
    return it != doc.attributes.end() ? std::string_view(it->second) : std::string_view();
}

// Fills RuntimeNode::hops_per_document and outcomes_per_document of node `i` and of everything
// downstream of it. The targets of one port add up (each gets the document); a node's ports
// count as the largest of them, since a node with several ports usually routes a document to
// one. A document a transform splits makes more hops (its list grows as before); a cycle (the
// spec rejects them) would count its first pass only. `visit`: 0 not yet, 1 in progress, 2 done.
void count_per_document(NodeList& nodes, std::size_t i, std::vector<char>& visit) {
    RuntimeNode& node = *nodes[i];
    if (visit[i] != 0) return;
    visit[i] = 1;
    std::size_t hops = 0, outcomes = 0;
    for (const auto& [port, targets] : node.successors) {
        std::size_t port_hops = 0, port_outcomes = 0;
        for (const std::size_t t : targets) {
            count_per_document(nodes, t, visit);
            port_hops += nodes[t]->hops_per_document;
            port_outcomes += nodes[t]->outcomes_per_document;
        }
        hops = std::max(hops, port_hops);
        outcomes = std::max(outcomes, port_outcomes);
    }
    node.hops_per_document = std::min<std::size_t>((node.source ? 0 : 1) + hops, Tracker::kMaxHops);
    node.outcomes_per_document = std::min<std::size_t>((node.sink ? 1 : 0) + outcomes, 64);
    visit[i] = 2;
}
}  // namespace

// The TBB objects, kept out of the header (flow_graph.h is heavy).
struct GraphExecutor::Flow {
    // The graph runs in its own arena sized to the sum of node concurrencies: a sink that
    // blocks on I/O with concurrency 8 must get 8 threads even on a 2-core machine. CPU-bound
    // nodes are still bounded by their own concurrency.
    std::unique_ptr<oneapi::tbb::global_control> parallelism;
    std::unique_ptr<oneapi::tbb::task_arena> arena;
    std::unique_ptr<flow::graph> graph;
    std::vector<std::unique_ptr<flow::function_node<Envelope>>> nodes;  // by node index; null for sources
    std::unique_ptr<RetryScheduler> scheduler;
};

GraphExecutor::GraphExecutor(GraphServices services) : s_(services), flow_(std::make_unique<Flow>()) {}

GraphExecutor::~GraphExecutor() {
    if (flow_->graph) wait_for_all();
    flow_->scheduler.reset();  // pending retries are dropped: their sources were not acked
    flow_->nodes.clear();
}

void GraphExecutor::build() {
    Flow& f = *flow_;
    f.scheduler = std::make_unique<RetryScheduler>();
    std::size_t threads = 0;
    for (const auto& node : s_.nodes)
        if (!node->source) threads += static_cast<std::size_t>(node->spec->concurrency);
    threads = std::clamp<std::size_t>(threads, std::max(2u, std::thread::hardware_concurrency()), 256);
    const auto allowed = oneapi::tbb::global_control::active_value(oneapi::tbb::global_control::max_allowed_parallelism);
    f.parallelism = std::make_unique<oneapi::tbb::global_control>(oneapi::tbb::global_control::max_allowed_parallelism,
                                                                  std::max(threads + 1, allowed));
    f.arena = std::make_unique<oneapi::tbb::task_arena>(static_cast<int>(threads), 0);
    f.arena->execute([&f] { f.graph = std::make_unique<flow::graph>(); });
    std::vector<char> visit(s_.nodes.size(), 0);
    for (std::size_t i = 0; i < s_.nodes.size(); ++i) {
        count_per_document(s_.nodes, i, visit);
        if (s_.nodes[i]->sink) s_.nodes[i]->ledger_prefix = "ledger/" + s_.nodes[i]->name() + "/";
    }
    f.nodes.resize(s_.nodes.size());
    for (std::size_t i = 0; i < s_.nodes.size(); ++i) {
        auto& node = *s_.nodes[i];
        if (node.source) continue;
        f.nodes[i] = std::make_unique<flow::function_node<Envelope>>(
            *f.graph, static_cast<std::size_t>(node.spec->concurrency), [this, i](const Envelope& env) {
                run(i, env);
                return flow::continue_msg();
            });
    }
}

void GraphExecutor::wait_for_all() {
    flow_->arena->execute([this] { flow_->graph->wait_for_all(); });
}

// ---- entering the graph ------------------------------------------------------------------

// A source document is taken: stamps its job attributes and starts its job. False (the
// tracker left InFlight) when the job record could not be written.
bool GraphExecutor::take(RuntimeNode& node, Document& doc, const std::shared_ptr<Tracker>& tracker) {
    // Keys built once: operator[] and try_emplace would build a string from each for every document.
    static const std::string job_id_key = kJobIdAttribute, root_job_key = kRootJobAttribute;
    size_for(*tracker, node);  // before the tracker is shared with the graph's threads
    doc.attributes[job_id_key] = tracker->doc_id;  // children inherit it (make_child copies attributes)
    doc.attributes.try_emplace(root_job_key, tracker->doc_id);  // set upstream when it crossed a stream
    if (s_.redeliver) doc.attributes[kRedeliverAttribute] = "1";  // transform.dedup lets it through
    try {
        s_.jobs.start(*tracker, doc);
        if (s_.redeliver) tracker->first_delivery = true;  // the sinks do not read their ledgers
    } catch (const StoreError& e) {
        // The file or message name, not only the id: the operator looks for it where the source keeps it.
        node.context->log().log(LogLevel::Error,
                                fmt::format("not taken: {}: the job record could not be written (the state store is down): {}; "
                                            "the source keeps it for the next round",
                                            tracker->label.empty() ? std::string("(no name)") : tracker->label, e.what()),
                                doc.id);
        s_.settlements.not_taken.fetch_add(1);
        {
            std::lock_guard lock(s_.settlements.failures_mutex);
            if (s_.settlements.not_taken_labels.size() < 20) s_.settlements.not_taken_labels.push_back(tracker->label.empty() ? doc.id : tracker->label);
        }
        s_.flight.leave(tracker);
        return false;
    }
    s_.settlements.counters.taken.fetch_add(1);
    node.stats.in.fetch_add(1, std::memory_order_relaxed);
    return true;
}

bool GraphExecutor::admit(std::size_t index, Document&& doc, const std::shared_ptr<Tracker>& tracker) {
    RuntimeNode& node = *s_.nodes[index];
    if (!take(node, doc, tracker)) return false;
    if (s_.log.enabled(LogLevel::Debug)) node.context->log().log(LogLevel::Debug, "taken", doc.id);
    // Hold one extra count while forwarding so a fast graph cannot settle mid-fan-out.
    tracker->outstanding.fetch_add(1);
    forward(node, "out", std::make_shared<const Document>(std::move(doc)), tracker);
    if (tracker->outstanding.fetch_sub(1) == 1) settle(tracker);
    return true;
}

// The tracker of an admin re-entry (retry, approval) of job `job_id`, already in InFlight.
std::shared_ptr<Tracker> GraphExecutor::re_entry(const RuntimeNode& entry, const std::string& job_id, const Document& doc, AckHandle ack,
                                                 DescendantOutcome::Kind replaces, std::shared_ptr<ReentryGroup> group) {
    auto tracker = std::make_shared<Tracker>();
    tracker->doc_id = job_id;
    tracker->reentered_doc_id = doc.id;
    tracker->group = std::move(group);
    tracker->label = doc.parts.empty() ? doc.id : doc.parts.front().name;
    tracker->source_node = "admin retry";
    tracker->ack = std::move(ack);
    tracker->started = steady::now();
    tracker->replaces = replaces;
    size_for(*tracker, entry);
    s_.flight.enter_now(tracker);
    return tracker;
}

void GraphExecutor::size_for(Tracker& tracker, const RuntimeNode& entry) {
    tracker.expected_hops = static_cast<std::uint32_t>(entry.hops_per_document);
    tracker.expected_outcomes = static_cast<std::uint32_t>(entry.outcomes_per_document);
}

void GraphExecutor::inject(std::size_t index, const std::string& job_id, DocumentPtr doc, AckHandle ack,
                           DescendantOutcome::Kind replaces, std::shared_ptr<ReentryGroup> group) {
    auto tracker = re_entry(*s_.nodes[index], job_id, *doc, std::move(ack), replaces, std::move(group));
    tracker->outstanding.fetch_add(1);
    put(index, Envelope{std::move(doc), tracker, 0, nullptr, 1});
}

// ---- hops --------------------------------------------------------------------------------

void GraphExecutor::put(std::size_t index, Envelope env) {
    {
        std::lock_guard lock(env.tracker->mutex);
        queue_position(*env.tracker, index, env, steady::now());
    }
    enqueue(index, env);
}

void GraphExecutor::queue_position(Tracker& tracker, std::size_t index, Envelope& env, steady::time_point since) {
    if (env.token == 0) {  // a document's first hop here: a new token has no position yet
        Position& p = new_position(tracker, index, env.attempt, since);
        env.token = p.token;
        env.position = &p;
        return;
    }
    Position* p = position_of(tracker, env);
    if (!p) {
        env.position = &tracker.positions.add(env.token, index, since, env.attempt);
        return;
    }
    p->node = index;
    p->attempt = env.attempt;
    p->set(HopState::Queued, since);
    env.position = p;
}

Position& GraphExecutor::new_position(Tracker& tracker, std::size_t index, int attempt, steady::time_point since) {
    return tracker.positions.add(tracker.next_token++, index, since, attempt);
}

void GraphExecutor::enqueue(std::size_t index, const Envelope& env) {
    s_.nodes[index]->stats.queued.fetch_add(1, std::memory_order_relaxed);
    flow_->nodes[index]->try_put(env);  // spawns into the graph's arena
}

void GraphExecutor::forward(RuntimeNode& from, std::string_view port, DocumentPtr doc, const std::shared_ptr<Tracker>& tracker) {
    const auto& targets = from.targets(port);
    tracker->outstanding.fetch_add(static_cast<std::int64_t>(targets.size()));
    from.stats.out.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t t : targets) put(t, Envelope{doc, tracker, 0, nullptr, 1});
}

void GraphExecutor::set_state(const Envelope& env, HopState state, steady::time_point since, steady::time_point due) {
    std::lock_guard lock(env.tracker->mutex);
    if (Position* p = position_of(*env.tracker, env)) p->set(state, since, due);
}

Position* GraphExecutor::position_of(Tracker& tracker, const Envelope& env) {
    // The envelope's slot, unless it is not (or no longer) this token's: then by token, as
    // the positions were searched before they had slots.
    if (env.position && env.position->token == env.token) return env.position;
    return env.token != 0 ? tracker.positions.find(env.token) : nullptr;
}

void GraphExecutor::end_position(Tracker& tracker, const Envelope& env) {
    if (Position* p = position_of(tracker, env)) tracker.positions.remove(*p);
}

void GraphExecutor::finish_hop(const Envelope& env) {
    {
        std::lock_guard lock(env.tracker->mutex);
        end_position(*env.tracker, env);
    }
    if (env.tracker->outstanding.fetch_sub(1) == 1) settle(env.tracker);
}

void GraphExecutor::settle(const std::shared_ptr<Tracker>& tracker) {
    // The job record is the commit point: written before the ack, so a crash between the
    // two redelivers a document whose job already says how it ended.
    failpoint("settle.before_job_end");
    const JobEnd end = s_.jobs.end(*tracker);
    const Outcome& outcome = end.ack;
    failpoint("settle.before_ack");
    try {
        if (tracker->ack) tracker->ack(outcome);
    } catch (const std::exception& e) {
        s_.log.log(LogLevel::Error, fmt::format("source '{}' threw while settling a document: {}", tracker->source_node, e.what()),
                   tracker->doc_id);
    }
    failpoint("settle.after_ack");
    auto& counters = s_.settlements.counters;
    if (!s_.settlements.jobs_full.load(std::memory_order_relaxed)) {
        std::lock_guard lock(s_.settlements.failures_mutex);
        if (s_.settlements.jobs.size() < 1000) s_.settlements.jobs.push_back({tracker->label, end.status, end.references, end.detail});
        else s_.settlements.jobs_full.store(true, std::memory_order_relaxed);
    }
    if (outcome.ok) {
        counters.completed.fetch_add(1);
        if (end.status == "partial") {
            counters.partial.fetch_add(1);
            std::lock_guard lock(s_.settlements.failures_mutex);
            if (s_.settlements.failures.size() < 100)
                s_.settlements.failures.push_back({tracker->doc_id, tracker->label, "partly delivered: " + end.detail});
        }
    } else {
        counters.failed.fetch_add(1);
        std::lock_guard lock(s_.settlements.failures_mutex);
        if (s_.settlements.failures.size() < 100) s_.settlements.failures.push_back({tracker->doc_id, tracker->label, outcome.reason});
    }
    if (s_.log.enabled(LogLevel::Debug))
        s_.log.log(LogLevel::Debug, fmt::format("{} after {} ms", outcome.ok ? "acked" : "nacked: " + outcome.reason,
                                                std::chrono::duration_cast<milliseconds>(steady::now() - tracker->started).count()),
                   tracker->doc_id);
    s_.flight.leave(tracker);
}

namespace {
// When the current node call began: run() sets it on the TBB thread that makes the call,
// and every outcome of that call is decided on the same thread.
thread_local std::chrono::steady_clock::time_point hop_started_steady;
thread_local std::int64_t hop_started_ms = 0;
}  // namespace

HopRecord GraphExecutor::hop_record(const Envelope& env, const RuntimeNode& node, HopRecord::Result result, std::string detail,
                                     steady::time_point ended) {
    if (ended == steady::time_point{}) ended = steady::now();
    HopRecord r;
    r.node = &node;
    if (env.doc->id != env.tracker->doc_id) r.doc_id = env.doc->id;  // empty: the job's own document
    r.started_ms = hop_started_ms;
    r.micros = std::chrono::duration_cast<std::chrono::microseconds>(ended - hop_started_steady).count();
    r.attempt = env.attempt;
    r.result = result;
    r.detail = std::move(detail);
    return r;
}

// Caller holds the tracker's mutex.
static void push_hop(Tracker& tracker, HopRecord&& r) {
    auto& hops = tracker.hops;
    if (hops.empty()) hops.reserve(std::max<std::uint32_t>(1, tracker.expected_hops));  // one allocation
    if (hops.size() < Tracker::kMaxHops) hops.push_back(std::move(r));
}

// The same for the hop ending at `end.ended` on this thread, written straight into the
// tracker's list: the hot paths (hand_over, finish_sink_hop) so skip building a HopRecord and
// moving it in. Caller holds the tracker's mutex.
void GraphExecutor::push_hop_end(const Envelope& env, const HopEnd& end) {
    auto& hops = env.tracker->hops;
    if (hops.empty()) hops.reserve(std::max<std::uint32_t>(1, env.tracker->expected_hops));
    if (hops.size() >= Tracker::kMaxHops) return;
    HopRecord& r = hops.emplace_back();
    r.node = &end.node;
    if (env.doc->id != env.tracker->doc_id) r.doc_id = env.doc->id;  // empty: the job's own document
    r.started_ms = hop_started_ms;
    r.micros = std::chrono::duration_cast<std::chrono::microseconds>(end.ended - hop_started_steady).count();
    r.attempt = env.attempt;
    r.result = end.result;
    if (!end.detail.empty()) r.detail = end.detail;  // usually empty: the new record's is
}

void GraphExecutor::note(const Envelope& env, const RuntimeNode& node, HopRecord::Result result, std::string detail) {
    HopRecord r = hop_record(env, node, result, std::move(detail));
    std::lock_guard lock(env.tracker->mutex);
    push_hop(*env.tracker, std::move(r));
}

// A sink's hop ends: its timeline entry, its outcome and the end of its position are one
// step under the tracker's lock (three would each contend with the other sinks of the
// same document), then the hop is released.
void GraphExecutor::finish_sink_hop(RuntimeNode& sink, const Envelope& env, const HopEnd& end, const SinkOutcome& outcome,
                                    bool keep_claim) {
    // Edges from the sink's `accepted` port (kSinkAcceptedPort): the document goes on, with
    // the receiving system's references as attributes (the audit row after the NCB
    // submission, with its claim reference). Only sinks so wired pay for the copy.
    DocumentPtr passed;
    const std::vector<std::size_t>* next = nullptr;
    std::vector<Position*> positions;
    if (!sink.successors.empty()) {
        next = &sink.targets(kSinkAcceptedPort);
        auto copy = std::make_shared<Document>(*env.doc);  // parts and pixels are shared, not copied
        for (const auto& [key, value] : outcome.references) copy->attributes[key] = value;
        // Parked for a person: the sinks after this one record the claim in review (their own
        // ledger entries, sink.sheets' Route), not the claim delivered.
        if (outcome.kind == DescendantOutcome::Kind::Review) {
            copy->attributes[kParkedByAttribute] = sink.name();
            copy->attributes[kParkedReasonAttribute] = std::string(outcome.reason);
        }
        passed = std::move(copy);
        positions.reserve(next->size());
    }
    {
        std::lock_guard lock(env.tracker->mutex);
        Tracker& t = *env.tracker;
        push_hop_end(env, end);
        // Written in place, as the hop: the strings are copied once, not built and moved in.
        DescendantOutcome& o = t.new_outcome();
        o.kind = outcome.kind;
        o.doc_id = env.doc->id;
        if (!outcome.name.empty()) o.name = outcome.name;
        o.node = end.node.name();
        if (!outcome.reason.empty()) o.reason = outcome.reason;
        if (!outcome.references.empty()) o.references = outcome.references;
        o.held = outcome.held;
        if (keep_claim) t.claim = env.doc;
        if (passed)
            for (const std::size_t target : *next) positions.push_back(&new_position(t, target, 1, end.ended));
        end_position(t, env);
    }
    if (passed) {
        // Counted before any is queued: the count cannot reach zero while this hop holds its own.
        env.tracker->outstanding.fetch_add(static_cast<std::int64_t>(positions.size()));
        sink.stats.out.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < positions.size(); ++i)
            enqueue((*next)[i], Envelope{passed, env.tracker, positions[i]->token, positions[i], 1});
    }
    if (env.tracker->outstanding.fetch_sub(1) == 1) settle(env.tracker);
}

void GraphExecutor::hand_over(RuntimeNode& from, const Envelope& env, const HopEnd& end,
                              std::vector<std::pair<DocumentPtr, std::string>>& emitted) {
    const steady::time_point ended = end.ended;
    Tracker& t = *env.tracker;
    // What to queue, noted under the lock (each document gets its token there) and made into
    // envelopes after it. A pass-through node emits one document to one or two successors: up
    // to four need no allocation, and unused slots cost nothing (plain values).
    struct Pending {
        std::size_t index;
        Position* position;
        const DocumentPtr* doc;  // in `emitted`
    };
    std::array<Pending, 4> few;
    std::vector<Pending> more;
    std::size_t queued = 0;
    auto next_slot = [&]() -> Pending& {
        if (queued < few.size()) return few[queued++];
        ++queued;
        return more.emplace_back();
    };
    {
        std::lock_guard lock(t.mutex);
        push_hop_end(env, end);
        for (auto& [doc, port] : emitted)
            for (std::size_t target : from.targets(port)) {
                next_slot() = Pending{target, &new_position(t, target, 1, ended), &doc};
            }
        end_position(t, env);
    }
    // Counted before any of them is queued, as forward() does: the count cannot reach zero
    // while this hop still holds its own.
    t.outstanding.fetch_add(static_cast<std::int64_t>(queued));
    from.stats.out.fetch_add(emitted.size(), std::memory_order_relaxed);
    for (std::size_t i = 0; i < queued; ++i) {
        const Pending& p = i < few.size() ? few[i] : more[i - few.size()];
        enqueue(p.index, Envelope{*p.doc, env.tracker, p.position->token, p.position, 1});
    }
    // This hop's own count, released after the queueing (as finish_hop() does after forwarding).
    if (t.outstanding.fetch_sub(1) == 1) settle(env.tracker);
}

void GraphExecutor::fail(RuntimeNode& node, const Envelope& env, const std::string& why) {
    const std::string reason = fmt::format("{}: {}", node.label, why);
    note(env, node, HopRecord::Result::Failed, why);
    node.stats.failed.fetch_add(1, std::memory_order_relaxed);
    node.stats.set_last_error(why, s_.clock.now(), false);
    // A reason from retry_or_fail() already ends "(gave up after N attempt(s))": not twice.
    const bool counted = why.find("(gave up after ") != std::string::npos;
    node.context->log().log(LogLevel::Error, counted ? "failed: " + why : fmt::format("failed after {} attempt(s): {}", env.attempt, why),
                            env.doc->id);
    bool stored = true;
    try {
        s_.store_guard.run([&] { s_.dead_letters.store(node, env, reason); }, "dead letter");
    } catch (const std::exception& e) {
        // The source is nacked, so the input is kept there; say that the record is missing.
        stored = false;
        node.context->log().log(LogLevel::Error, fmt::format("could not store the dead letter: {}", e.what()), env.doc->id);
    }
    {
        std::lock_guard lock(env.tracker->mutex);
        if (!env.tracker->failed) {
            env.tracker->failed = true;
            env.tracker->reason = reason;
        }
        env.tracker->dead_letter_missing |= !stored;
        env.tracker->push_outcome(
            {DescendantOutcome::Kind::Failed, env.doc->id, std::string(file_name(*env.doc)), node.name(), reason, {}});
    }
    finish_hop(env);
}

bool GraphExecutor::reject(std::size_t index, Document&& doc, const std::shared_ptr<Tracker>& tracker, const std::string& reason) {
    RuntimeNode& node = *s_.nodes[index];
    if (!take(node, doc, tracker)) return false;
    hop_started_steady = steady::now();
    hop_started_ms = std::chrono::duration_cast<milliseconds>(s_.clock.now().time_since_epoch()).count();
    tracker->outstanding.fetch_add(1);
    std::uint64_t token;
    {
        std::lock_guard lock(tracker->mutex);
        token = tracker->next_token++;
    }
    // The one hop this document makes: it fails where it is, at its source.
    fail(node, Envelope{std::make_shared<const Document>(std::move(doc)), tracker, token, nullptr, 1}, reason);
    return true;
}

bool GraphExecutor::is_source(std::size_t index) const { return s_.nodes[index]->source != nullptr; }

void GraphExecutor::inject_after_source(std::size_t index, const std::string& job_id, DocumentPtr doc, AckHandle ack,
                                        std::shared_ptr<ReentryGroup> group) {
    auto tracker = re_entry(*s_.nodes[index], job_id, *doc, std::move(ack), DescendantOutcome::Kind::Failed, std::move(group));
    tracker->outstanding.fetch_add(1);  // held while forwarding, as in admit()
    forward(*s_.nodes[index], "out", std::move(doc), tracker);
    if (tracker->outstanding.fetch_sub(1) == 1) settle(tracker);
}

void GraphExecutor::retry_or_fail(std::size_t index, Envelope env, const std::string& why, milliseconds hint) {
    RuntimeNode& node = *s_.nodes[index];
    const RetryPolicy& policy = node.spec->retry;
    if (env.attempt >= policy.attempts || give_up_retries_.load()) {
        fail(node, env, why + fmt::format(" (gave up after {} attempt(s))", env.attempt));
        return;
    }
    const milliseconds delay = retry_delay(policy, env.attempt + 1, hint);
    note(env, node, HopRecord::Result::Retry, why);
    node.stats.retries.fetch_add(1, std::memory_order_relaxed);
    node.context->log().log(LogLevel::Warn, fmt::format("attempt {} of {} failed: {}; retrying in {} ms", env.attempt, policy.attempts,
                                                        why, delay.count()), env.doc->id);
    set_state(env, HopState::RetryWait, steady::now());
    env.attempt += 1;
    flow_->scheduler->at(steady::now() + delay, [this, index, env]() { put(index, env); });
}

// The state store failed under a component or the ledger: an outage, not the document's
// fault. The hop waits and tries again without using up an attempt, until the outage
// horizon has passed since its first store failure.
void GraphExecutor::wait_for_store(std::size_t index, Envelope env, const std::string& why) {
    RuntimeNode& node = *s_.nodes[index];
    const auto now = steady::now();
    if (env.store_failing_since == steady::time_point{}) env.store_failing_since = now;
    node.stats.set_last_error(why, s_.clock.now(), true);
    s_.store_guard.mark_failed(why, node.name());
    if (now - env.store_failing_since > s_.store_guard.horizon() || give_up_retries_.load()) {
        fail(node, env, why + fmt::format(" (the state store stayed unavailable for {} s)",
                                          std::chrono::duration_cast<std::chrono::seconds>(now - env.store_failing_since).count()));
        return;
    }
    const auto waited = std::chrono::duration_cast<milliseconds>(now - env.store_failing_since);
    const milliseconds delay = std::clamp(waited / 2, milliseconds(100), milliseconds(2000));
    note(env, node, HopRecord::Result::StoreWait, why);
    set_state(env, HopState::RetryWait, steady::now());
    flow_->scheduler->at(now + delay, [this, index, env]() { put(index, env); });
}

// A sink said its endpoint is down (SinkResult::hold): like a store outage, not the
// document's fault, so no attempt is used up; the document waits up to retry.hold_for.
void GraphExecutor::hold(std::size_t index, Envelope env, const std::string& why, milliseconds hint) {
    RuntimeNode& node = *s_.nodes[index];
    const auto now = steady::now();
    if (env.holding_since == steady::time_point{}) {
        env.holding_since = now;
        node.context->log().log(LogLevel::Warn, fmt::format("endpoint unavailable: {}; waiting up to {} s for it", why,
                                                            std::chrono::duration_cast<std::chrono::seconds>(node.spec->retry.hold_for).count()),
                                env.doc->id);
    }
    node.stats.set_last_error(why, s_.clock.now(), true);
    if (give_up_retries_.load()) {
        // Shutting down past the drain deadline: the endpoint is still down, which is no reason
        // to dead-letter the document. Its hop is left open, so the source document is never
        // settled: not acked, it is delivered again by its source after the restart.
        node.context->log().log(LogLevel::Warn, "stopping while the endpoint is unavailable: left to the next run", env.doc->id);
        return;
    }
    if (now - env.holding_since > node.spec->retry.hold_for) {
        fail(node, env, why + fmt::format(" (the endpoint stayed unavailable for {} s)",
                                          std::chrono::duration_cast<std::chrono::seconds>(now - env.holding_since).count()));
        return;
    }
    // Exponential backoff with jitter under the node's retry policy (capped by its
    // max_backoff), or the endpoint's Retry-After; no attempt is used up.
    env.holds += 1;
    // Never past hold_for: a Retry-After of an hour (or a year, from a long digit string) must
    // not keep the document, or a --once run, waiting beyond what the node allows.
    const auto hold_left = std::chrono::duration_cast<milliseconds>(node.spec->retry.hold_for - (now - env.holding_since)) + milliseconds(1);
    const milliseconds delay = std::min({retry_delay(node.spec->retry, env.holds + 1, hint), milliseconds(300'000), hold_left});
    note(env, node, HopRecord::Result::Hold, why);
    node.stats.retries.fetch_add(1, std::memory_order_relaxed);
    set_state(env, HopState::Held, steady::now(), now + delay);
    flow_->scheduler->at(now + delay, [this, index, env]() { put(index, env); });
}

void GraphExecutor::succeeded(RuntimeNode& node) {
    if (node.stats.store_failing.load(std::memory_order_relaxed)) node.stats.clear_store_failure();
}

// ---- node bodies -------------------------------------------------------------------------

namespace {
// A per-thread spare for CollectingOutputs::emitted, so a transform's hop does not allocate
// the list of what it emitted: the outputs of a call take it (and give it back, emptied,
// with its capacity). A call nested on the same thread (a component waiting on oneTBB work
// may run another hop meanwhile) finds it taken and uses a list of its own.
thread_local std::vector<std::pair<DocumentPtr, std::string>> spare_emitted;
thread_local bool spare_emitted_taken = false;
}  // namespace

// Collects what one component call emits. Lives on the stack of the hop that makes the call.
class GraphExecutor::CollectingOutputs : public Outputs {
public:
    explicit CollectingOutputs(const ComponentDescriptor& d) : descriptor(d) {
        if (!spare_emitted_taken) {
            spare_emitted_taken = owns_spare_ = true;
            emitted.swap(spare_emitted);
        }
    }
    ~CollectingOutputs() override {
        if (!owns_spare_) return;
        emitted.clear();  // releases the documents now; the capacity stays for the next call
        spare_emitted.swap(emitted);
        spare_emitted_taken = false;
    }
    CollectingOutputs(const CollectingOutputs&) = delete;
    CollectingOutputs& operator=(const CollectingOutputs&) = delete;
    void emit(DocumentPtr doc, std::string_view port) override {
        // Violations are recorded, not thrown: a plugin could swallow an exception.
        if (!doc) {
            if (violation.empty()) violation = "emitted a null document";
            return;
        }
        bool known = std::any_of(descriptor.output_ports.begin(), descriptor.output_ports.end(),
                                 [&](const PortSpec& p) { return p.name == port; });
        if (!known) {
            if (violation.empty()) {
                std::string ports;
                for (const auto& p : descriptor.output_ports) ports += (ports.empty() ? "" : ", ") + p.name;
                violation = fmt::format("emitted on undeclared port '{}' (declared: {})", port, ports);
            }
            return;
        }
        if (doc->id.empty() && violation.empty()) {
            violation = "emitted a document without an id";
            return;
        }
        emitted.emplace_back(std::move(doc), std::string(port));
    }
    void skip(std::string_view reason) override { skipped = std::string(reason); }
    const ComponentDescriptor& descriptor;
    std::vector<std::pair<DocumentPtr, std::string>> emitted;
    std::string skipped;
    std::string violation;

private:
    bool owns_spare_ = false;  // `emitted` is this thread's spare, to give back
};

// Runs a component call; an exception becomes a failure (BadInput) or a retry under the
// node's policy. True when the call returned normally.
template <typename Call>
bool GraphExecutor::guarded(std::size_t index, const Envelope& env, Call&& call) {
    RuntimeNode& node = *s_.nodes[index];
    try {
        call();
        succeeded(node);
        return true;
    } catch (const StoreError& e) {
        wait_for_store(index, env, fmt::format("state store: {}", e.what()));
    } catch (const BadInput& e) {
        fail(node, env, fmt::format("bad input: {}", e.what()));
    } catch (const RetryLater& e) {
        retry_or_fail(index, env, e.what(), e.after);
    } catch (const std::exception& e) {
        retry_or_fail(index, env, fmt::format("threw: {}", e.what()), milliseconds(0));
    } catch (...) {
        retry_or_fail(index, env, "threw a non-standard exception", milliseconds(0));
    }
    return false;
}

void GraphExecutor::run(std::size_t index, const Envelope& env) {
    RuntimeNode& node = *s_.nodes[index];
    hop_started_steady = steady::now();
    hop_started_ms = std::chrono::duration_cast<milliseconds>(s_.clock.now().time_since_epoch()).count();
    node.stats.in.fetch_add(1, std::memory_order_relaxed);
    node.stats.queued.fetch_sub(1, std::memory_order_relaxed);
    // Running from now, for the watchdog: stored in the envelope's slot without the tracker's
    // lock (the watchdog reads it under the lock, see Position::running_since).
    if (env.position) env.position->mark_running(hop_started_steady);
    if (node.sink) run_sink(index, env);
    else run_transform(index, env);
}

void GraphExecutor::run_transform(std::size_t index, const Envelope& env) {
    RuntimeNode& node = *s_.nodes[index];
    CollectingOutputs outputs(*node.spec->descriptor);
    if (!guarded(index, env, [&] { node.transform->process(env.doc, outputs); })) return;
    // One clock read for the end of the call: its latency, its timeline entry and the time
    // the forwarded documents start waiting in their next queue.
    const auto ended = steady::now();
    node.stats.observe(hop_started_steady, ended);
    if (!outputs.violation.empty()) {
        fail(node, env, "broke the component contract: " + outputs.violation);
        return;
    }
    if (!outputs.skipped.empty() && outputs.emitted.empty()) {
        note(env, node, HopRecord::Result::Skipped, outputs.skipped);
        node.context->log().log(LogLevel::Info, "skipped: " + outputs.skipped, env.doc->id);
        s_.metrics.increment("skipped_total", 1, {{"node", node.name()}});
        env.tracker->add_outcome(
            {DescendantOutcome::Kind::Skipped, env.doc->id, std::string(file_name(*env.doc)), node.name(), outputs.skipped, {}});
        // A component may skip and still emit (a part it could not use, the rest passed
        // on): only a call that emitted nothing ends here.
        if (outputs.emitted.empty()) {
            finish_hop(env);
            return;
        }
    }
    std::string detail;  // where the documents went, when a node has ports to choose from
    if (node.spec->descriptor->output_ports.size() > 1)
        for (const auto& [doc, port] : outputs.emitted) detail += (detail.empty() ? "" : ", ") + port;
    if (outputs.emitted.size() != 1)
        detail = fmt::format("{} document(s){}{}", outputs.emitted.size(), detail.empty() ? "" : ": ", detail);
    hand_over(node, env, HopEnd{node, HopRecord::Result::Emitted, detail, ended}, outputs.emitted);
}

void GraphExecutor::park_delivered_with_other_values(RuntimeNode& node, const Envelope& env, const LedgerEntry& entry,
                                                     const std::string& differences, steady::time_point ended) {
    std::string references;
    for (const auto& [key, value] : entry.references) references += fmt::format(", {} {}", key, value);
    const std::string reason = fmt::format(
        "'{}' delivered this claim before (at {}{}) with other values: {}. The receiving system keeps those: this approval was "
        "not sent, as a sink delivers a document once. Approve it again with the delivered values to close it, or correct the "
        "claim in the receiving system and reject it here",
        node.name(), entry.at, references, differences);
    // The values stay out of the log (the job record and the review queue hold them).
    node.context->log().log(LogLevel::Warn, "approved with other values than this sink delivered before (ledger): not sent again; "
                                            "parked for review",
                            env.doc->id);
    if (node.spec->descriptor->name != "sink.review") {
        try {
            s_.store_guard.run([&] { store_for_review(s_.store, *node.context, *env.doc, reason); }, "review record");
        } catch (const std::exception& e) {
            node.context->log().log(LogLevel::Error,
                                    fmt::format("parked, but not stored for review (it cannot be approved; retry the job): {}", e.what()),
                                    env.doc->id);
        }
    }
    finish_sink_hop(node, env, HopEnd{node, HopRecord::Result::Parked, reason, ended},
                    SinkOutcome{DescendantOutcome::Kind::Review, file_name(*env.doc), reason, entry.references, true}, true);
}

bool GraphExecutor::arrived_before_by_another_path(RuntimeNode& node, const Envelope& env) {
    // Validate refuses the paths it can see (a port's targets, through sinks' `accepted`
    // ports), but a transform that passes its document on unchanged (transform.dedup) hides
    // the second path from it: `in -> dedup -> out` beside `in -> out`. Each document goes
    // out to each sink once per job; the later copy ends here, named in the job's timeline.
    // Keyed as the ledger is: a claim a sink before this one parked is its own entry.
    static const std::string parked_key = kParkedByAttribute;
    std::string key;
    key.reserve(node.name().size() + env.doc->id.size() + 8);
    key.append(node.name()).append(1, '/').append(env.doc->id);
    if (env.doc->attributes.count(parked_key)) key.append("@parked");
    {
        std::lock_guard lock(env.tracker->mutex);
        auto& arrivals = env.tracker->sink_arrivals;
        const auto it = std::find_if(arrivals.begin(), arrivals.end(), [&](const auto& a) { return a.first == key; });
        if (it == arrivals.end()) {
            arrivals.emplace_back(std::move(key), env.token);
            return false;
        }
        if (it->second == env.token) return false;  // a retry of the same delivery
    }
    const std::string reason = fmt::format(
        "the same document reached sink '{}' a second time, by another path through the graph: delivered once, "
        "this copy skipped; give the sink one path from each node (see `docpipe graph`)",
        node.name());
    note(env, node, HopRecord::Result::Skipped, reason);
    node.context->log().log(LogLevel::Warn, reason, env.doc->id);
    s_.metrics.increment("skipped_total", 1, {{"node", node.name()}});
    // No outcome of its own: the first arrival's outcome is this document's at this sink (a
    // skipped outcome beside it would make the job read `skipped`, see job_book's derive).
    finish_hop(env);
    return true;
}

void GraphExecutor::run_sink(std::size_t index, const Envelope& env) {
    RuntimeNode& node = *s_.nodes[index];
    std::optional<SinkResult> result;
    const bool ledger = node.spec->ledger;
    // "ledger/<node>/<doc id>", written into a buffer on the stack when it fits (it usually
    // does: the store copies what it keeps), so the hop does not allocate it.
    char ledger_key_buffer[128];
    std::string ledger_key_long;
    std::string_view ledger_key;
    if (ledger) {
        // A document a sink before this one parked (the review queue, NCB's refusal), passed on
        // from its `accepted` port, is the claim on its way to a person: its entry is its own
        // ("<doc id>@parked"), so the row an audit sink wrote then does not answer for the claim
        // once a reviewer approved it and NCB booked it. What the claim itself delivered (the
        // plain key) still answers for it, an approval after a restart included.
        static const std::string parked_key = kParkedByAttribute;
        const bool parked_upstream = env.doc->attributes.count(parked_key) != 0;
        const std::string_view parts[] = {node.ledger_prefix, env.doc->id, parked_upstream ? std::string_view("@parked") : std::string_view()};
        std::size_t size = 0;
        for (const auto part : parts) size += part.size();
        char* out = ledger_key_buffer;
        if (size > sizeof ledger_key_buffer) {
            ledger_key_long.resize(size);
            out = ledger_key_long.data();
        }
        ledger_key = std::string_view(out, size);
        for (const auto part : parts) out = std::copy(part.begin(), part.end(), out);
    }
    // The ledger's record (ledger_entry.hpp): "submitted@time" or "review@time", then the
    // references, then (an approved claim) the values delivered.
    static const std::string approved_key = kApprovedAtAttribute;
    const bool approved = env.doc->attributes.count(approved_key) != 0;
    if (arrived_before_by_another_path(node, env)) return;
    std::optional<std::string> delivered_before;
    const bool returned = guarded(index, env, [&] {
        // A source document seen for the first time cannot have been delivered: skip the read.
        if (ledger && !env.tracker->first_delivery) delivered_before = s_.store.get(ledger_key);
        // This sink parked the document before (sink.ncb, on NCB's refusal) and a reviewer has
        // approved it since: the approval is what the park waited for, so it goes through.
        if (delivered_before && env.tracker->replaces == DescendantOutcome::Kind::Review && delivered_before->rfind("review@", 0) == 0)
            delivered_before.reset();
        if (delivered_before) return;  // accepted by this sink before (a redelivery): not sent twice
        result = node.sink->write(*env.doc);
    });
    if (!returned) return;
    // One clock read for the end of the call: its latency and its timeline entry (which so
    // leaves out the ledger write below: it is the component's time, as the stats are).
    const auto ended = steady::now();
    const std::string_view name = file_name(*env.doc);
    if (delivered_before) {
        // The references the receiving system gave the first time ride along in the ledger.
        const LedgerEntry entry = parse_ledger_entry(*delivered_before);
        if (approved && !entry.parked && entry.values.is_object()) {
            // An approval repeated after a restart, with values other than those this sink
            // delivered: the receiving system keeps the first ones, so the claim goes back to a
            // person rather than being called submitted with values nobody received.
            const std::string differences = describe_value_differences(entry.values, claim_values(*env.doc));
            if (!differences.empty()) {
                park_delivered_with_other_values(node, env, entry, differences, ended);
                return;
            }
        }
        node.context->log().log(LogLevel::Info, "already delivered by this sink (ledger); not sent again "
                                                "(docpipe run --once --redeliver sends it anyway)", env.doc->id);
        s_.settlements.counters.already_delivered.fetch_add(1, std::memory_order_relaxed);
        finish_sink_hop(node, env, HopEnd{node, HopRecord::Result::AlreadyDelivered, {}, ended},
                        SinkOutcome{entry.parked ? DescendantOutcome::Kind::Review : DescendantOutcome::Kind::Submitted, name,
                                    entry.parked ? "parked for review" : "", entry.references, entry.parked && !entry.references.empty()},
                        false);
        return;
    }
    node.stats.observe(hop_started_steady, ended);
    switch (result->status()) {
        case SinkResult::Status::Ok: {
            // A crash here: the receiving system has the document, the ledger does not know.
            failpoint("sink.after_write");
            if (failpoints_enabled()) failpoint(("sink.after_write." + node.name()).c_str());
            const bool parked = result->parked();
            // A sink other than sink.review that parks a document (sink.ncb on a refusal) does
            // not store it: the review queue does, so that the approval has a document to send.
            if (parked && node.spec->descriptor->name != "sink.review") {
                try {
                    s_.store_guard.run([&] { store_for_review(s_.store, *node.context, *env.doc, result->reason()); }, "review record");
                } catch (const std::exception& e) {
                    node.context->log().log(LogLevel::Error,
                                            fmt::format("parked, but not stored for review (it cannot be approved; retry the job): {}", e.what()),
                                            env.doc->id);
                }
            }
            if (ledger) {
                try {
                    // The write happened: this record must not be lost, or a redelivery sends it twice.
                    s_.store_guard.run([&] {
                        try {
                            // A per-thread buffer that keeps its capacity (the store copies what it
                            // keeps); nothing between here and put() can run another hop on this thread.
                            static thread_local std::string entry_buffer;
                            std::string& entry = entry_buffer;
                            entry.assign(parked ? "review@" : "submitted@");
                            append_iso8601(entry, s_.clock.now());
                            // The values only for an approved claim: the one document a person
                            // may send again with other values (the other deliveries' values
                            // come from the same bytes each time).
                            append_ledger_details(entry, result->references(),
                                                  approved && !parked ? claim_values(*env.doc) : nlohmann::json());
                            s_.store.put(ledger_key, entry, s_.ledger_ttl);
                        } catch (const StoreError& e) {
                            // This node waits for the store: /health/detailed shows it degraded meanwhile.
                            node.stats.set_last_error(fmt::format("delivery ledger: state store: {}", e.what()), s_.clock.now(), true);
                            throw;
                        }
                    }, "delivery ledger");
                    succeeded(node);
                } catch (const std::exception& e) {
                    node.context->log().log(LogLevel::Warn, fmt::format("delivered, but the ledger entry was not stored: {}", e.what()),
                                            env.doc->id);
                }
            }
            const std::string_view reason = parked ? std::string_view(result->reason()) : std::string_view();
            finish_sink_hop(node, env, HopEnd{node, parked ? HopRecord::Result::Parked : HopRecord::Result::Delivered, reason, ended},
                            SinkOutcome{parked ? DescendantOutcome::Kind::Review : DescendantOutcome::Kind::Submitted, name, reason,
                                        result->references(), parked && !result->references().empty()},
                            env.doc->fields.contains("claim") || parked);
            return;
        }
        case SinkResult::Status::Retry:
            retry_or_fail(index, env, result->reason().empty() ? "asked to retry" : result->reason(), result->retry_after());
            return;
        case SinkResult::Status::Hold:
            hold(index, env, result->reason().empty() ? "endpoint unavailable" : result->reason(), result->retry_after());
            return;
        case SinkResult::Status::Fail:
            fail(node, env, result->reason().empty() ? "failed without a reason" : result->reason());
            return;
    }
    fail(node, env, "broke the component contract: returned an invalid SinkResult");
}

}  // namespace docpipe::core
