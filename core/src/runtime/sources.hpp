// Source threads: each source node polls on a thread of its own and hands documents to the
// graph through an emitter that blocks while `max_in_flight` source documents are in the
// graph (backpressure: the source stops pulling).
//
// Ownership: the Runtime owns the SourceDriver; join() before the graph goes away.
#pragma once

#include <chrono>
#include <thread>
#include <vector>

#include "graph.hpp"

namespace docpipe::core {

class SourceDriver {
public:
    SourceDriver(NodeList& nodes, InFlight& flight, GraphExecutor& graph, Settlements& settlements, bool once,
                 std::chrono::milliseconds poll_wait)
        : nodes_(nodes), flight_(flight), graph_(graph), settlements_(settlements), once_(once), poll_wait_(poll_wait) {}
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
    const bool once_;
    const std::chrono::milliseconds poll_wait_;
    std::vector<std::thread> threads_;
};

}  // namespace docpipe::core
