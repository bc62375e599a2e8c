// What the runtime says about itself: /health/ready, /health/detailed (each component's
// probe with latency and last error, the state store's round trip) and the Prometheus text
// behind /metrics.
//
// Threading: called from admin server threads while the graph runs; reads only atomics,
// locked snapshots and the components' own (thread-safe) probes.
// Ownership: holds references into the Runtime, which outlives it.
#pragma once

#include <atomic>
#include <string>

#include <nlohmann/json.hpp>

#include "job_book.hpp"
#include "node.hpp"
#include "store_guard.hpp"
#include "state/store.hpp"
#include "tracking.hpp"

namespace docpipe::core {

class HealthReporter {
public:
    HealthReporter(const NodeList& nodes, Store& store, StoreGuard& store_guard, const JobBook& jobs, Clock& clock,
                   const InFlight& flight, std::string pipeline_file, const std::atomic<bool>& running)
        : nodes_(nodes), store_(store), store_guard_(store_guard), jobs_(jobs), clock_(clock), flight_(flight),
          pipeline_file_(std::move(pipeline_file)), running_(running) {}

    // Running, and no source or sink probe says unavailable.
    bool ready(std::string& why_not);
    nlohmann::json detailed();

private:
    nlohmann::json probe(const RuntimeNode& node);

    const NodeList& nodes_;
    Store& store_;
    StoreGuard& store_guard_;
    const JobBook& jobs_;
    Clock& clock_;
    const InFlight& flight_;
    std::string pipeline_file_;
    const std::atomic<bool>& running_;
};

// Prometheus text: the components' own metrics, then the runtime's per-node series.
std::string render_metrics(const MetricsRegistry& metrics, const NodeList& nodes, const InFlight& flight, const RunCounters& counters,
                           Store& store);

}  // namespace docpipe::core
