// bench/graph_overhead — documents/second through a 5-node no-op pipeline with 2 sinks:
//   source.sequence -> transform.pass -> transform.pass -> {sink.null, sink.null}
// Measures what the framework costs per document (trackers, acks, TBB hand-offs, job
// records), which must be negligible next to OCR. Goal: >= 100,000 documents/second on 2
// cores; with job records and the ledger on, >= 300,000 (issue "Nothing lost, nothing twice").
// The ledger=1 variant adds the sinks' delivery ledger. BM_RawTbbGraph is the same shape as a
// bare oneTBB flow graph of ints, in the same run: the floor the runtime's bookkeeping adds to.
// The documents come from source.sequence, made in its poll loop as the raw graph's ints are.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>

#include <oneapi/tbb/flow_graph.h>

#include "harness.hpp"

using namespace docpipe;

// GRAPH_OVERHEAD_DOCS overrides the document count: a profiler run (callgrind) needs far
// fewer than a timing run.
static int documents_for(const benchmark::State& state) {
    if (const char* n = std::getenv("GRAPH_OVERHEAD_DOCS")) return std::max(1, std::atoi(n));
    return static_cast<int>(state.range(0));
}

static void BM_GraphOverhead(benchmark::State& state) {
    const int documents = documents_for(state);
    const int transform_concurrency = static_cast<int>(state.range(1));
    // With the delivery ledger each sink does a state-store read and write per document
    // (here the in-memory store); without it only the job records touch the store.
    const std::string ledger = state.range(2) ? "true" : "false";
    const std::string yaml = R"(
state: {backend: memory}
logging: {level: warn}
max_in_flight: 1024
nodes:
  in: {component: source.sequence, config: {count: )" + std::to_string(documents) + R"(}}
  a: {component: transform.pass, concurrency: )" + std::to_string(transform_concurrency) + R"(}
  b: {component: transform.pass, concurrency: )" + std::to_string(transform_concurrency) + R"(}
  s1: {component: sink.null, concurrency: 2, ledger: )" + ledger + R"(}
  s2: {component: sink.null, concurrency: 2, ledger: )" + ledger + R"(}
edges: [in -> a -> b, b -> s1, b -> s2]
)";
    for (auto _ : state) {
        state.PauseTiming();
        // Built and torn down outside the timed part: what is measured is documents moving
        // through the graph, not freeing a hundred thousand in-memory job records.
        auto harness = std::make_unique<test::Harness>();
        test::Harness& h = *harness;
        h.logger->set_level(spdlog::level::warn);
        auto rt = h.build(yaml, true);
        const auto before = test::null_sink_writes.load();
        const auto acked_before = test::sequence_acks.ok.load();
        state.ResumeTiming();
        rt->start();
        int rc = rt->run();
        state.PauseTiming();
        if (rc != 0 || test::null_sink_writes.load() - before != static_cast<std::uint64_t>(2 * documents))
            state.SkipWithError("not every document reached both sinks");
        else if (test::sequence_acks.ok.load() - acked_before != static_cast<std::uint64_t>(documents))
            state.SkipWithError("not every document was acked as delivered");
        rt.reset();
        harness.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * documents);
    state.counters["docs_per_second"] = benchmark::Counter(static_cast<double>(documents), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_GraphOverhead)
    ->ArgNames({"docs", "transform_concurrency", "ledger"})
    ->Args({100000, 1, 0})
    ->Args({100000, 2, 0})
    ->Args({100000, 1, 1})->Unit(benchmark::kMillisecond)->UseRealTime()->Repetitions(5)
    ->ReportAggregatesOnly(true);

// The same shape with nothing but oneTBB: a -> b -> {s1, s2}, fed from one thread.
static void BM_RawTbbGraph(benchmark::State& state) {
    namespace flow = oneapi::tbb::flow;
    const int documents = documents_for(state);
    const auto concurrency = static_cast<std::size_t>(state.range(1));
    std::atomic<std::uint64_t> delivered{0};
    for (auto _ : state) {
        flow::graph g;
        flow::function_node<int, int> a(g, concurrency, [](int v) { return v + 1; });
        flow::function_node<int, int> b(g, concurrency, [](int v) { return v + 1; });
        flow::function_node<int> s1(g, 2, [&](int) { delivered.fetch_add(1, std::memory_order_relaxed); return flow::continue_msg(); });
        flow::function_node<int> s2(g, 2, [&](int) { delivered.fetch_add(1, std::memory_order_relaxed); return flow::continue_msg(); });
        flow::make_edge(a, b);
        flow::make_edge(b, s1);
        flow::make_edge(b, s2);
        for (int i = 0; i < documents; ++i) a.try_put(i);
        g.wait_for_all();
    }
    if (delivered.load() != static_cast<std::uint64_t>(2) * documents * state.iterations()) state.SkipWithError("lost messages");
    state.SetItemsProcessed(state.iterations() * documents);
    state.counters["docs_per_second"] = benchmark::Counter(static_cast<double>(documents), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_RawTbbGraph)
    ->ArgNames({"docs", "transform_concurrency"})
    ->Args({100000, 1})
    ->Args({100000, 2})->Unit(benchmark::kMillisecond)->UseRealTime()->Repetitions(5)
    ->ReportAggregatesOnly(true);

BENCHMARK_MAIN();
