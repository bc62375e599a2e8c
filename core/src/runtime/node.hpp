// One node of a running pipeline: its spec, its component, the context the component
// talks to the runtime through, where its output ports lead, and its counters.
//
// Ownership: the Runtime owns the nodes (in spec order, so indexes match spec.nodes); a
// node owns its component and context. The spec points into the Runtime's PipelineSpec.
// Counters are atomics, written on the hot path and read when /metrics is scraped.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline.hpp"
#include "services.hpp"

namespace docpipe::core {

// Upper bounds (seconds) of the processing-time histogram: a no-op transform (µs) up to a
// slow OCR page (tens of seconds).
inline constexpr double kLatencyBuckets[] = {0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
inline constexpr std::size_t kBucketCount = std::size(kLatencyBuckets);

struct NodeStats {
    std::atomic<std::uint64_t> in{0}, out{0}, failed{0}, retries{0};
    std::atomic<std::int64_t> queued{0};    // put to the node, not yet started
    std::atomic<std::uint64_t> busy_us{0};  // time spent inside the component's calls
    std::atomic<std::uint64_t> calls{0};
    std::array<std::atomic<std::uint64_t>, kBucketCount> buckets{};  // calls per bucket (not cumulative: see observe())
    std::atomic<bool> store_failing{false};  // the last error was a state-store failure

    // Records one component call that ran from t0 to `ended` (the caller's clock reading,
    // shared with the hop's timeline entry: one clock read per hop end, not two).
    void observe(std::chrono::steady_clock::time_point t0, std::chrono::steady_clock::time_point ended);

    // The last failure, for /health/detailed. A store failure marks the node degraded.
    void set_last_error(std::string why, std::chrono::system_clock::time_point at, bool store_failure);
    void clear_store_failure();
    struct LastError {
        std::string text;
        std::chrono::system_clock::time_point at;
        bool store_failure = false;
    };
    LastError last_error() const;

private:
    mutable std::mutex error_mutex_;
    LastError last_error_;
};

struct RuntimeNode {
    const NodeSpec* spec = nullptr;
    std::unique_ptr<NodeContext> context;
    std::unique_ptr<Component> component;
    Source* source = nullptr;
    Transform* transform = nullptr;
    Sink* sink = nullptr;
    std::map<std::string, std::vector<std::size_t>, std::less<>> successors;  // port -> node indexes
    NodeStats stats;
    std::string label;  // "node 'x' (component)"
    // The start of each of this node's entries in a job's timeline, `{"node":…,"component":…`,
    // built once: the timeline is written for every source document on the hot path.
    std::string trace_prefix;
    // What a document entering here usually costs its tracker: its hops here and downstream,
    // and the sink outcomes among them (GraphExecutor::build()). A tracker reserves that many
    // instead of a fixed guess: the lists move into the document's job record and stay in
    // memory with it, so unused slots cost memory (and page faults) per document.
    std::size_t hops_per_document = 0, outcomes_per_document = 0;
    // "ledger/<name>/", the start of this sink's delivery-ledger keys (GraphExecutor::build()),
    // so a sink's hop writes its key in two copies, not four.
    std::string ledger_prefix;

    const std::string& name() const { return spec->name; }
    // Where a document emitted on `port` goes (resolve() connects every declared port, and an
    // emitted port is a declared one). Most nodes have a single port: no lookup by its name.
    const std::vector<std::size_t>& targets(std::string_view port) const {
        return successors.size() == 1 ? successors.begin()->second : successors.find(port)->second;
    }
};

using NodeList = std::vector<std::unique_ptr<RuntimeNode>>;

}  // namespace docpipe::core
