// The runtime: turns a resolved PipelineSpec into running components wired as a oneTBB
// flow graph, feeds it from source threads, and settles every source document exactly once.
// Runtime itself only wires the parts in core/src/runtime/: tracking (in-flight source
// documents), graph (hops, retries, ledger, settling), sources, job_book (job records),
// dead_letters, retry_scheduler, health (+ /metrics text), watchdog, admin_actions.
//
// Delivery contract (see ARCHITECTURE.md "Delivery"):
// - Each source document gets a Tracker counting the hops still owed by it and all its
//   descendants. The source is acked when the count reaches zero with no failure, nacked
//   (with the first failure's reason) otherwise. A failure is a hop that exhausted its
//   retry policy or threw BadInput; it is recorded in the dead-letter store first.
// - At most `max_in_flight` source documents are in the graph; the source's emit() blocks
//   beyond that (backpressure).
//
// Ownership: Runtime owns the components, their contexts, the graph and the threads. The
// Registry (shared) must outlive the Runtime: component code lives in its libraries.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline.hpp"
#include "runtime/tracking.hpp"
#include "services.hpp"
#include "state/store.hpp"

namespace docpipe::core {

// Thrown by start(): a component could not be built or started; names the node.
class StartError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct NodeSummary {
    std::string name, component;
    std::uint64_t in = 0, out = 0, failed = 0, retries = 0;
};

struct RunSummary {
    std::uint64_t taken = 0;      // source documents that entered the graph
    std::uint64_t completed = 0;  // acked
    std::uint64_t failed = 0;     // nacked and dead-lettered
    std::uint64_t partial = 0;    // of the completed, those with a delivery that failed (job `partial`)
    std::uint64_t in_flight = 0;  // neither (only after a drain timeout)
    // Sink deliveries skipped because the sink's ledger says it accepted the document before.
    std::uint64_t already_delivered = 0;
    std::uint64_t peak_in_flight = 0;
    std::vector<NodeSummary> nodes;
    std::vector<FailedDocument> failures;  // first 100
    std::vector<SettledJob> jobs;          // first 1000: each job's status and references
    // `--once`: each source whose health probe was not healthy after its round ("source
    // 'imap' is unavailable: ..."): it may have left input unread. Exit code 2 when no
    // document failed.
    std::vector<std::string> source_problems;
    std::string format() const;            // human-readable, for --once
};

// What the service watchdog (sd_notify WATCHDOG=1) and STATUS= read, cheaply and often.
struct Liveness {
    bool running = false;          // between start() and the beginning of shutdown
    std::uint64_t progress = 0;    // node calls begun + source documents settled, ever: moves while work moves
    std::uint64_t settled = 0;     // source documents acked or nacked, ever
    std::size_t in_flight = 0;
    std::chrono::milliseconds quietest_source{0};  // SourceDriver::quietest_source()
    std::chrono::milliseconds stuck_after{0}, poll_wait{0};  // the pipeline's runtime settings
};

struct RuntimeOptions {
    bool once = false;
    // Development: process documents again although dedup or a sink's delivery ledger says
    // they were handled before (`docpipe run --once --redeliver`). The ledger is still
    // written, so the next normal run is protected again.
    bool redeliver = false;
    // Overrides for tests; when unset, the pipeline's sections decide.
    std::shared_ptr<Clock> clock;
    std::shared_ptr<spdlog::logger> logger;
};

class Runtime {
public:
    Runtime(PipelineSpec spec, std::shared_ptr<const Registry> registry, RuntimeOptions options = {});
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Builds components and the graph. Throws StartError naming the node on failure.
    void start();
    // Runs until request_stop() (or, with `once`, until the sources' current content is
    // processed). Returns the process exit code: 0 ok, 1 a document failed (--once only),
    // 3 the drain deadline passed with documents still in flight.
    int run();
    // Safe from any thread (e.g. the signal thread); idempotent.
    void request_stop();

    RunSummary summary() const;
    MetricsRegistry& metrics();
    Store& state();
    // Documents in flight and where they are, one line each (for shutdown and /health).
    std::vector<std::string> in_flight_report() const;
    // The admin server's port (0 when it is not running).
    int admin_port() const;
    Liveness liveness() const;
    // Source documents the sources know are waiting and not yet taken (Source::backlog());
    // nullopt when a source cannot tell. With `done + in_flight`, the total of a --once run.
    std::optional<std::uint64_t> source_backlog() const;
    // Jobs waiting for a reviewer; nullopt when the state store cannot say.
    std::optional<std::size_t> review_queue_size();

private:
    void build_nodes();
    void start_admin();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace docpipe::core
