// Source threads: each source node polls on a thread of its own and hands documents to the
// graph through an emitter that blocks while `max_in_flight` source documents are in the
// graph (backpressure: the source stops pulling).
//
// Ownership: the Runtime owns the SourceDriver; join() before the graph goes away.
#pragma once

#include <chrono>
#include <thread>
#include <vector>

#include <functional>

#include "graph.hpp"
#include "store_guard.hpp"

namespace docpipe::core {

class SourceDriver {
public:
    // `after_first_round` runs once, when every source has finished its first poll (what
    // was waiting at start-up has been delivered again).
    SourceDriver(NodeList& nodes, InFlight& flight, GraphExecutor& graph, Settlements& settlements, StoreGuard& store_guard, bool once,
                 std::chrono::milliseconds poll_wait, std::function<void()> after_first_round)
        : nodes_(nodes), flight_(flight), graph_(graph), settlements_(settlements), store_guard_(store_guard), once_(once),
          poll_wait_(poll_wait), after_first_round_(std::move(after_first_round)) {}
    ~SourceDriver() { join(); }

    void start();
    void join();

private:
    class Emitter;
    bool admit(std::size_t index, Document doc, AckHandle ack);
    void loop(std::size_t index);

    NodeList& nodes_;
    InFlight& flight_;
    GraphExecutor& graph_;
    Settlements& settlements_;
    StoreGuard& store_guard_;
    const bool once_;
    const std::chrono::milliseconds poll_wait_;
    std::function<void()> after_first_round_;
    std::atomic<std::size_t> first_rounds_left_{0};
    void first_round_done();
    std::vector<std::thread> threads_;
};

}  // namespace docpipe::core
