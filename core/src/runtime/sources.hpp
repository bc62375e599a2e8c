// Source threads: each source node polls on a thread of its own and hands documents to the
// graph through an emitter that blocks while `max_in_flight` source documents are in the
// graph (backpressure: the source stops pulling).
//
// Ownership: the Runtime owns the SourceDriver; join() before the graph goes away.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <functional>
#include <mutex>
#include <set>

#include "graph.hpp"
#include "store_guard.hpp"

namespace docpipe::core {

class SourceDriver {
public:
    SourceDriver(NodeList& nodes, InFlight& flight, GraphExecutor& graph, Settlements& settlements, StoreGuard& store_guard, bool once,
                 std::chrono::milliseconds poll_wait)
        : nodes_(nodes), flight_(flight), graph_(graph), settlements_(settlements), store_guard_(store_guard), once_(once),
          poll_wait_(poll_wait) {}
    ~SourceDriver() { join(); }

    void start();
    void join();
    // Runs `fn` once, on a source thread, when every source has finished a poll that began
    // after this call (what was waiting has been delivered again). A later call replaces an
    // earlier one that has not run yet. Service mode only: with --once, sources poll once.
    void after_next_round(std::function<void()> fn);
    // The longest any running source has gone without finishing a poll or emitting a
    // document (zero before start and when there are none): a source stuck inside its poll
    // shows here. Read by the service watchdog (sd_notify WATCHDOG=1).
    std::chrono::milliseconds quietest_source() const;
    // What the sources know is still waiting to be emitted, summed (Source::backlog());
    // nullopt when any source cannot tell. For the progress line of `run --once`.
    std::optional<std::uint64_t> backlog() const;

private:
    class Emitter;
    // `rejected`: the reason, for SourceEmitter::reject (recorded as failed at the source).
    bool admit(std::size_t index, Document&& doc, AckHandle&& ack, const std::string* rejected = nullptr);
    void loop(std::size_t index);

    NodeList& nodes_;
    InFlight& flight_;
    GraphExecutor& graph_;
    Settlements& settlements_;
    StoreGuard& store_guard_;
    const bool once_;
    const std::chrono::milliseconds poll_wait_;
    void polled(std::size_t index);
    std::mutex round_mutex_;
    std::function<void()> after_round_;  // guarded by round_mutex_
    std::set<std::size_t> polled_since_;  // sources that finished a poll since after_next_round()
    std::vector<std::thread> threads_;
    // Per node index, the steady-clock time (ms) a source last showed life; -1: not a source.
    std::unique_ptr<std::atomic<std::int64_t>[]> beats_;
    void beat(std::size_t index);
};

}  // namespace docpipe::core
