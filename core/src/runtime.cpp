#include "runtime.hpp"

#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fstream>

#include "admin_server.hpp"
#include "builtin/builtin.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <set>
#include <thread>

#include <fmt/core.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <spdlog/spdlog.h>

namespace docpipe::core {

namespace flow = oneapi::tbb::flow;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

enum class HopState { Queued, Running, RetryWait };

struct Position {
    std::uint64_t token;
    std::size_t node;
    HopState state;
    steady::time_point since;
    bool warned = false;
    int attempt = 1;
};

// One per source document: the hops owed by it and its descendants.
struct Tracker {
    std::atomic<std::int64_t> outstanding{0};
    std::string doc_id, label, source_node;
    AckHandle ack;
    steady::time_point started;

    std::mutex mutex;  // guards everything below
    bool failed = false;
    std::string reason;
    std::uint64_t next_token = 1;
    std::vector<Position> positions;
};

struct Envelope {
    DocumentPtr doc;
    std::shared_ptr<Tracker> tracker;
    std::uint64_t token = 0;
    int attempt = 1;
};

// Upper bounds (seconds) of the processing-time histogram: a no-op transform (µs) up to a
// slow OCR page (tens of seconds).
constexpr double kLatencyBuckets[] = {0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
constexpr std::size_t kBucketCount = std::size(kLatencyBuckets);

// Hot-path counters: plain atomics, rendered into Prometheus text only when scraped.
struct NodeStats {
    std::atomic<std::uint64_t> in{0}, out{0}, failed{0}, retries{0};
    std::atomic<std::int64_t> queued{0};    // put to the node, not yet started
    std::atomic<std::uint64_t> busy_us{0};  // time spent inside the component's calls
    std::atomic<std::uint64_t> calls{0};
    std::array<std::atomic<std::uint64_t>, kBucketCount> buckets{};  // cumulative "le" counts
    std::mutex error_mutex;
    std::string last_error;
    std::chrono::system_clock::time_point last_error_at;
};

// Timers for retries, on one thread, so no TBB worker sleeps through a backoff.
class RetryScheduler {
public:
    RetryScheduler() : thread_([this] { loop(); }) {}
    ~RetryScheduler() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    void at(steady::time_point due, std::function<void()> fn) {
        {
            std::lock_guard lock(mutex_);
            queue_.push(Item{due, seq_++, std::move(fn)});
        }
        cv_.notify_all();
    }

private:
    struct Item {
        steady::time_point due;
        std::uint64_t seq;
        std::function<void()> fn;
        bool operator>(const Item& o) const { return due != o.due ? due > o.due : seq > o.seq; }
    };
    void loop() {
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            if (queue_.empty()) {
                cv_.wait(lock);
                continue;
            }
            if (steady::now() < queue_.top().due) {
                cv_.wait_until(lock, queue_.top().due);
                continue;
            }
            auto fn = queue_.top().fn;
            queue_.pop();
            lock.unlock();
            fn();
            lock.lock();
        }
    }
    std::mutex mutex_;
    std::condition_variable cv_;
    std::priority_queue<Item, std::vector<Item>, std::greater<>> queue_;
    std::uint64_t seq_ = 0;
    bool stopping_ = false;
    std::thread thread_;
};

const char* describe_state(HopState s) {
    switch (s) {
        case HopState::Queued: return "waiting in the node's queue for a free worker";
        case HopState::Running: return "waiting for the component's call to return";
        case HopState::RetryWait: return "waiting for its next retry";
    }
    return "?";
}

}  // namespace

// ---- Impl --------------------------------------------------------------------------------

struct Runtime::Impl {
    struct Node {
        const NodeSpec* spec = nullptr;
        std::unique_ptr<NodeContext> context;
        std::unique_ptr<Component> component;
        Source* source = nullptr;
        Transform* transform = nullptr;
        Sink* sink = nullptr;
        std::map<std::string, std::vector<std::size_t>, std::less<>> successors;  // port -> node indexes
        std::unique_ptr<flow::function_node<Envelope>> graph_node;
        NodeStats stats;
        std::string label;  // "node 'x' (component)"
    };

    PipelineSpec spec;
    std::shared_ptr<const Registry> registry;
    RuntimeOptions options;
    std::shared_ptr<Clock> clock;
    std::shared_ptr<spdlog::logger> logger;
    std::unique_ptr<NodeLogger> runtime_log;
    MetricsRegistry metrics;
    std::unique_ptr<Store> state;
    bool json_logs = false;

    std::vector<std::unique_ptr<Node>> nodes;  // same order as spec.nodes
    // The graph runs in its own arena sized to the sum of node concurrencies: a sink that
    // blocks on I/O with concurrency 8 must get 8 threads even on a 2-core machine. CPU-bound
    // nodes are still bounded by their own concurrency.
    std::unique_ptr<oneapi::tbb::global_control> parallelism;
    std::unique_ptr<oneapi::tbb::task_arena> arena;
    std::unique_ptr<flow::graph> graph;
    std::unique_ptr<RetryScheduler> scheduler;

    // In-flight gate and live trackers.
    mutable std::mutex flight_mutex;
    std::condition_variable flight_cv;
    std::set<std::shared_ptr<Tracker>> live;
    std::uint64_t peak = 0;
    std::atomic<bool> stop_sources{false};
    std::atomic<bool> stop_requested{false};

    std::atomic<std::uint64_t> taken{0}, completed{0}, failed{0};
    mutable std::mutex failures_mutex;
    std::vector<FailedDocument> failures;

    std::vector<std::thread> source_threads;
    std::thread watchdog;
    std::mutex watchdog_mutex;
    std::condition_variable watchdog_cv;
    bool watchdog_stop = false;

    milliseconds stuck_after{60'000}, drain_timeout{30'000}, poll_wait{500};
    std::chrono::seconds ledger_ttl{30 * 86'400};

    std::atomic<bool> running{false};
    std::optional<std::size_t> approved_node;  // where approved review documents re-enter
    std::string approve(const std::string& id, const nlohmann::json& corrections, const std::string& notes);
    std::string reject(const std::string& id, const std::string& reason);
    std::unique_ptr<AdminServer> admin;
    class Backend;
    std::unique_ptr<Backend> admin_backend;

    std::optional<std::size_t> node_index(const std::string& name) const {
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i]->spec->name == name) return i;
        return std::nullopt;
    }

    nlohmann::json probe_node(Node& node) {
        nlohmann::json entry{{"component", node.spec->component}, {"kind", to_string(node.spec->descriptor->kind)}};
        HealthReport report;
        const auto t0 = steady::now();
        if (node.spec->descriptor->has_health_probe) {
            try {
                report = node.component->health();
            } catch (const std::exception& e) {
                report = {Health::Unavailable, std::string("health probe threw: ") + e.what()};
            }
        } else {
            report = {Health::Healthy, "no probe; running"};
        }
        entry["status"] = to_string(report.status);
        entry["detail"] = report.detail;
        entry["latency_ms"] = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
        entry["checked_at"] = iso8601(clock->now());
        std::lock_guard lock(node.stats.error_mutex);
        entry["last_error"] = node.stats.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(node.stats.last_error);
        if (!node.stats.last_error.empty()) entry["last_error_at"] = iso8601(node.stats.last_error_at);
        return entry;
    }

    nlohmann::json health_detailed() {
        nlohmann::json components = nlohmann::json::object();
        int worst = 0;  // 0 healthy, 1 degraded, 2 unavailable
        auto rank = [](const std::string& s) { return s == "unavailable" ? 2 : s == "degraded" ? 1 : 0; };
        for (auto& node : nodes) {
            auto entry = probe_node(*node);
            worst = std::max(worst, rank(entry["status"]));
            components[node->spec->name] = std::move(entry);
        }
        const auto t0 = steady::now();
        HealthReport store_report = state->probe();  // a real round trip, reconnecting if needed
        nlohmann::json store_entry{{"backend", state->backend()},
                                   {"status", to_string(store_report.status)},
                                   {"detail", store_report.detail},
                                   {"latency_ms", std::chrono::duration<double, std::milli>(steady::now() - t0).count()},
                                   {"checked_at", iso8601(clock->now())},
                                   {"last_error", store_report.status == Health::Healthy ? nlohmann::json(nullptr)
                                                                                         : nlohmann::json(store_report.detail)}};
        worst = std::max(worst, rank(store_entry["status"]));
        std::size_t in_flight;
        {
            std::lock_guard lock(flight_mutex);
            in_flight = live.size();
        }
        return {{"status", worst == 2 ? "unavailable" : worst == 1 ? "degraded" : "healthy"},
                {"checked_at", iso8601(clock->now())},
                {"pipeline", spec.file.string()},
                {"running", running.load()},
                {"documents_in_flight", in_flight},
                {"components", std::move(components)},
                {"state_store", std::move(store_entry)}};
    }

    std::string metrics_text() {
        std::string out = metrics.render_prometheus();
        auto series = [&](const char* name, const char* type, const char* help) {
            out += fmt::format("# HELP docpipe_{} {}\n# TYPE docpipe_{} {}\n", name, help, name, type);
        };
        series("documents_in_total", "counter", "Documents that entered a node");
        for (auto& n : nodes) out += fmt::format("docpipe_documents_in_total{{node=\"{}\"}} {}\n", n->spec->name, n->stats.in.load());
        series("documents_out_total", "counter", "Documents a node emitted");
        for (auto& n : nodes) out += fmt::format("docpipe_documents_out_total{{node=\"{}\"}} {}\n", n->spec->name, n->stats.out.load());
        series("documents_failed_total", "counter", "Documents that failed in a node (dead-lettered)");
        for (auto& n : nodes) out += fmt::format("docpipe_documents_failed_total{{node=\"{}\"}} {}\n", n->spec->name, n->stats.failed.load());
        series("retries_total", "counter", "Retries scheduled by a node's retry policy");
        for (auto& n : nodes) out += fmt::format("docpipe_retries_total{{node=\"{}\"}} {}\n", n->spec->name, n->stats.retries.load());
        series("queue_depth", "gauge", "Documents waiting for a free worker of a node");
        for (auto& n : nodes)
            if (!n->source) out += fmt::format("docpipe_queue_depth{{node=\"{}\"}} {}\n", n->spec->name, n->stats.queued.load());
        series("processing_seconds", "histogram", "Time inside a component's process()/write()");
        for (auto& n : nodes) {
            if (n->source) continue;
            for (std::size_t b = 0; b < kBucketCount; ++b)
                out += fmt::format("docpipe_processing_seconds_bucket{{node=\"{}\",le=\"{}\"}} {}\n", n->spec->name,
                                   kLatencyBuckets[b], n->stats.buckets[b].load());
            out += fmt::format("docpipe_processing_seconds_bucket{{node=\"{}\",le=\"+Inf\"}} {}\n", n->spec->name, n->stats.calls.load());
            out += fmt::format("docpipe_processing_seconds_sum{{node=\"{}\"}} {}\n", n->spec->name, n->stats.busy_us.load() / 1e6);
            out += fmt::format("docpipe_processing_seconds_count{{node=\"{}\"}} {}\n", n->spec->name, n->stats.calls.load());
        }
        std::size_t in_flight;
        {
            std::lock_guard lock(flight_mutex);
            in_flight = live.size();
        }
        series("documents_in_flight", "gauge", "Source documents in the graph");
        out += fmt::format("docpipe_documents_in_flight {}\n", in_flight);
        series("source_documents_total", "counter", "Source documents by outcome");
        out += fmt::format("docpipe_source_documents_total{{outcome=\"taken\"}} {}\n", taken.load());
        out += fmt::format("docpipe_source_documents_total{{outcome=\"completed\"}} {}\n", completed.load());
        out += fmt::format("docpipe_source_documents_total{{outcome=\"failed\"}} {}\n", failed.load());
        series("review_queue_size", "gauge", "Jobs waiting for a reviewer");
        try {
            out += fmt::format("docpipe_review_queue_size {}\n", state->count_jobs_by_status()["review"]);
        } catch (const std::exception&) {
            out += "# review_queue_size unavailable: state store unreachable\n";
        }
        series("build_info", "gauge", "Build information");
        out += fmt::format("docpipe_build_info{{version=\"{}\",sdk_abi=\"{}\"}} 1\n", DOCPIPE_VERSION_STRING, kSdkAbiVersion);
        return out;
    }

    bool ready(std::string& why_not) {
        if (!running.load()) {
            why_not = "the pipeline is not running (starting or stopping)";
            return false;
        }
        for (auto& node : nodes) {
            if (node->transform || !node->spec->descriptor->has_health_probe) continue;
            HealthReport r;
            try {
                r = node->component->health();
            } catch (const std::exception& e) {
                r = {Health::Unavailable, e.what()};
            }
            if (r.status == Health::Unavailable) {
                why_not = fmt::format("{} is unavailable: {}", node->label, r.detail);
                return false;
            }
        }
        return true;
    }

    std::string retry_job(const std::string& id) {
        auto job = state->get_job(id);
        if (!job) return "no such job";
        if (job->status != "failed") return fmt::format("job is '{}'; only failed jobs can be retried", job->status);
        auto index = state->keys("deadletter-index/" + id + "/", 1000);
        if (index.empty()) return "no dead letter is stored for this job, so there is nothing to re-run";
        struct Letter {
            std::string key, index_key;
            std::size_t node;
            Document doc;
        };
        std::vector<Letter> letters;
        for (const auto& index_key : index) {
            auto key = state->get(index_key);
            auto record_text = key ? state->get(*key) : std::nullopt;
            if (!record_text) continue;
            auto record = nlohmann::json::parse(*record_text);
            auto node = node_index(record.value("node", ""));
            if (!node) return fmt::format("the dead letter names node '{}', which this pipeline no longer has", record.value("node", ""));
            letters.push_back({*key, index_key, *node, Document::from_json(record.at("document"))});
        }
        if (letters.empty()) return "the dead letters for this job are gone";
        state->update_job(id, [](Job& j) {
            j.status = "processing";
            j.attempts += 1;
            j.last_error.clear();
        });
        for (auto& letter : letters) {
            const std::string key = letter.key, index_key = letter.index_key;
            inject(letter.node, id, std::make_shared<const Document>(std::move(letter.doc)), [this, key, index_key](const Outcome& o) {
                if (!o.ok) return;  // a new dead letter was written by the failing node
                try {
                    state->erase(key);
                    state->erase(index_key);
                } catch (const std::exception&) {
                }
            });
        }
        runtime_log->log(LogLevel::Info, fmt::format("retrying job from {} dead letter(s)", letters.size()), id);
        return "";
    }

    // ---- hops ----

    void put(std::size_t node_index, Envelope env) {
        {
            std::lock_guard lock(env.tracker->mutex);
            if (env.token == 0) env.token = env.tracker->next_token++;
            auto it = std::find_if(env.tracker->positions.begin(), env.tracker->positions.end(),
                                   [&](const Position& p) { return p.token == env.token; });
            if (it == env.tracker->positions.end())
                env.tracker->positions.push_back({env.token, node_index, HopState::Queued, steady::now(), false, env.attempt});
            else
                *it = Position{env.token, node_index, HopState::Queued, steady::now(), false, env.attempt};
        }
        nodes[node_index]->stats.queued.fetch_add(1, std::memory_order_relaxed);
        nodes[node_index]->graph_node->try_put(env);  // spawns into the graph's arena
    }

    void forward(Node& from, std::string_view port, DocumentPtr doc, const std::shared_ptr<Tracker>& tracker) {
        auto it = from.successors.find(port);
        const auto& targets = it->second;  // resolve() guarantees every port is connected
        tracker->outstanding.fetch_add(static_cast<std::int64_t>(targets.size()));
        from.stats.out.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t t : targets) put(t, Envelope{doc, tracker, 0, 1});
    }

    void set_state(const Envelope& env, HopState state) {
        std::lock_guard lock(env.tracker->mutex);
        for (auto& p : env.tracker->positions)
            if (p.token == env.token) {
                p.state = state;
                p.since = steady::now();
                p.warned = false;
            }
    }

    void finish_hop(const Envelope& env) {
        {
            std::lock_guard lock(env.tracker->mutex);
            auto& ps = env.tracker->positions;
            ps.erase(std::remove_if(ps.begin(), ps.end(), [&](const Position& p) { return p.token == env.token; }), ps.end());
        }
        if (env.tracker->outstanding.fetch_sub(1) == 1) settle(env.tracker);
    }

    void settle(const std::shared_ptr<Tracker>& tracker) {
        Outcome outcome;
        {
            std::lock_guard lock(tracker->mutex);
            outcome.ok = !tracker->failed;
            outcome.reason = tracker->reason;
        }
        try {
            if (tracker->ack) tracker->ack(outcome);
        } catch (const std::exception& e) {
            runtime_log->log(LogLevel::Error, fmt::format("source '{}' threw while settling a document: {}", tracker->source_node, e.what()),
                             tracker->doc_id);
        }
        record_job_end(*tracker, outcome);
        if (outcome.ok) {
            completed.fetch_add(1);
        } else {
            failed.fetch_add(1);
            std::lock_guard lock(failures_mutex);
            if (failures.size() < 100) failures.push_back({tracker->doc_id, tracker->label, outcome.reason});
        }
        if (runtime_log->enabled(LogLevel::Debug))
            runtime_log->log(LogLevel::Debug, fmt::format("{} after {} ms", outcome.ok ? "acked" : "nacked: " + outcome.reason,
                                                          std::chrono::duration_cast<milliseconds>(steady::now() - tracker->started).count()),
                             tracker->doc_id);
        {
            std::lock_guard lock(flight_mutex);
            live.erase(tracker);
        }
        flight_cv.notify_all();
    }

    // Job records are bookkeeping for the admin API: a store outage must not stop documents,
    // so failures here are logged, not thrown.
    void record_job_start(const Tracker& t, Document& doc) {
        try {
            auto updated = state->update_job(t.doc_id, [&](Job& j) {
                doc.attributes[kPreviousStatusAttribute] = j.status;
                j.attempts += 1;  // a redelivery of the same content
                j.status = "processing";
                j.last_error.clear();
            });
            if (updated) return;
            Job job;
            job.id = t.doc_id;
            job.root_id = t.doc_id;
            job.status = "processing";
            job.source = t.source_node;
            job.filename = t.label;
            if (auto it = doc.attributes.find("message_id"); it != doc.attributes.end()) job.email_id = it->second;
            job.attempts = 1;
            job.pipeline_hash = spec.text_hash;
            state->put_job(job);
        } catch (const std::exception& e) {
            runtime_log->log(LogLevel::Warn, fmt::format("job record not written: {}", e.what()), t.doc_id);
        }
    }

    void record_job_end(const Tracker& t, const Outcome& outcome) {
        try {
            state->update_job(t.doc_id, [&](Job& j) {
                if (!outcome.ok) {
                    j.status = "failed";
                    j.last_error = outcome.reason;
                } else if (j.status == "processing" || j.status == "received" || j.status == "approved") {
                    j.status = "submitted";  // a component may have set its own (review, skipped): keep it
                }
            });
        } catch (const std::exception& e) {
            runtime_log->log(LogLevel::Warn, fmt::format("job record not updated: {}", e.what()), t.doc_id);
        }
    }

    // A component consumed its input on purpose (Outputs::skip): the job says so and why.
    void record_skip(Node& node, const Envelope& env, const std::string& reason) {
        node.context->log().log(LogLevel::Info, "skipped: " + reason, env.doc->id);
        metrics.increment("skipped_total", 1, {{"node", node.spec->name}});
        try {
            state->update_job(env.tracker->doc_id, [&](Job& j) {
                if (j.status == "processing" || j.status == "received") {
                    j.status = "skipped";
                    j.last_error = fmt::format("{}: {}", node.spec->name, reason);
                }
            });
        } catch (const std::exception& e) {
            runtime_log->log(LogLevel::Warn, fmt::format("job record not updated: {}", e.what()), env.tracker->doc_id);
        }
    }

    // A delivered claim: its fields and confidence go on the job, for the admin API.
    void record_claim(Node& node, const Envelope& env) {
        try {
            state->update_job(env.tracker->doc_id, [&](Job& j) { record_claim_on_job(*env.doc, j); });
        } catch (const std::exception& e) {
            node.context->log().log(LogLevel::Warn, fmt::format("claim fields not recorded on the job: {}", e.what()), env.doc->id);
        }
    }

    void dead_letter(Node& node, const Envelope& env, const std::string& reason) {
        nlohmann::json record{{"doc_id", env.doc->id},
                              {"root_id", env.tracker->doc_id},
                              {"node", node.spec->name},
                              {"component", node.spec->component},
                              {"reason", reason},
                              {"attempts", env.attempt},
                              {"failed_at", iso8601(clock->now())},
                              {"pipeline_hash", spec.text_hash},
                              {"document", env.doc->to_json(true)}};
        const std::string key = fmt::format("deadletter/{}-{}-{}", iso8601(clock->now()), env.doc->id, node.spec->name);
        try {
            state->put(key, record.dump());
            // Index by job (source document) so POST /api/v1/jobs/{id}/retry finds its letters.
            state->put(fmt::format("deadletter-index/{}/{}", env.tracker->doc_id, key), key);
        } catch (const std::exception& e) {
            // The source is nacked anyway, so the input is kept there; say that the record is missing.
            node.context->log().log(LogLevel::Error, fmt::format("could not store the dead letter: {}", e.what()), env.doc->id);
        }
        metrics.increment("dead_letters_total", 1, {{"node", node.spec->name}});
    }

    void fail(Node& node, const Envelope& env, const std::string& why) {
        const std::string reason = fmt::format("{}: {}", node.label, why);
        node.stats.failed.fetch_add(1, std::memory_order_relaxed);
        {
            std::lock_guard lock(node.stats.error_mutex);
            node.stats.last_error = why;
            node.stats.last_error_at = clock->now();
        }
        node.context->log().log(LogLevel::Error, fmt::format("failed after {} attempt(s): {}", env.attempt, why), env.doc->id);
        dead_letter(node, env, reason);
        {
            std::lock_guard lock(env.tracker->mutex);
            if (!env.tracker->failed) {
                env.tracker->failed = true;
                env.tracker->reason = reason;
            }
        }
        finish_hop(env);
    }

    // A transient failure: retry under the node's policy, or fail when attempts are spent.
    void retry_or_fail(std::size_t index, Envelope env, const std::string& why, milliseconds hint) {
        Node& node = *nodes[index];
        const RetryPolicy& policy = node.spec->retry;
        if (env.attempt >= policy.attempts || stop_requested_past_deadline()) {
            fail(node, env, why + fmt::format(" (gave up after {} attempt(s))", env.attempt));
            return;
        }
        milliseconds delay = hint.count() > 0 ? hint : policy.backoff_for(env.attempt + 1);
        if (hint.count() == 0 && policy.jitter > 0 && delay.count() > 0) {
            thread_local std::mt19937 rng{std::random_device{}()};
            std::uniform_real_distribution<double> dist(1.0 - policy.jitter, 1.0 + policy.jitter);
            delay = milliseconds(static_cast<std::int64_t>(static_cast<double>(delay.count()) * dist(rng)));
        }
        node.stats.retries.fetch_add(1, std::memory_order_relaxed);
        node.context->log().log(LogLevel::Warn, fmt::format("attempt {} of {} failed: {}; retrying in {} ms", env.attempt,
                                                            policy.attempts, why, delay.count()), env.doc->id);
        set_state(env, HopState::RetryWait);
        env.attempt += 1;
        scheduler->at(steady::now() + delay, [this, index, env]() { put(index, env); });
    }

    // Set when the drain deadline passes: retries still due then fail at once instead of waiting.
    std::atomic<bool> drain_deadline_passed{false};
    bool stop_requested_past_deadline() const { return drain_deadline_passed.load(); }

    // ---- node bodies ----

    class CollectingOutputs : public Outputs {
    public:
        explicit CollectingOutputs(const ComponentDescriptor& d) : descriptor(d) {}
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
    };

    // Runs a component call; an exception becomes a failure (BadInput) or a retry under the
    // node's policy. True when the call returned normally.
    template <typename Call>
    bool guarded(std::size_t index, const Envelope& env, Call&& call) {
        Node& node = *nodes[index];
        try {
            call();
            return true;
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

    void run_transform(std::size_t index, const Envelope& env) {
        Node& node = *nodes[index];
        CollectingOutputs outputs(*node.spec->descriptor);
        const auto t0 = steady::now();
        if (!guarded(index, env, [&] { node.transform->process(env.doc, outputs); })) return;
        observe(node, t0);
        if (!outputs.violation.empty()) {
            fail(node, env, "broke the component contract: " + outputs.violation);
            return;
        }
        if (!outputs.skipped.empty() && outputs.emitted.empty()) record_skip(node, env, outputs.skipped);
        for (auto& [doc, port] : outputs.emitted) forward(node, port, std::move(doc), env.tracker);
        finish_hop(env);  // after forwarding: the tracker cannot reach zero early
    }

    void run_sink(std::size_t index, const Envelope& env) {
        Node& node = *nodes[index];
        const auto t0 = steady::now();
        std::optional<SinkResult> result;
        const bool ledger = node.spec->ledger;
        const std::string ledger_key = ledger ? fmt::format("ledger/{}/{}", node.spec->name, env.doc->id) : std::string();
        bool delivered_before = false;
        const bool returned = guarded(index, env, [&] {
            if (ledger && state->get(ledger_key)) {
                // Accepted by this sink before (a redelivery after another branch failed, or
                // a restart): do not send it twice.
                delivered_before = true;
                return;
            }
            result = node.sink->write(*env.doc);
            if (ledger && result->status() == SinkResult::Status::Ok) {
                try {
                    state->put(ledger_key, iso8601(clock->now()), ledger_ttl);
                } catch (const std::exception& e) {
                    // The write happened; retrying it would send it twice. Only the record is missing.
                    node.context->log().log(LogLevel::Warn, fmt::format("delivered, but the ledger entry was not stored: {}", e.what()),
                                            env.doc->id);
                }
            }
        });
        if (!returned) return;
        if (delivered_before) {
            node.context->log().log(LogLevel::Info, "already delivered by this sink (ledger); not sent again", env.doc->id);
            finish_hop(env);
            return;
        }
        observe(node, t0);
        switch (result->status()) {
            case SinkResult::Status::Ok:
                if (env.doc->fields.contains("claim")) record_claim(node, env);
                finish_hop(env);
                return;
            case SinkResult::Status::Retry:
                retry_or_fail(index, env, result->reason().empty() ? "asked to retry" : result->reason(), result->retry_after());
                return;
            case SinkResult::Status::Fail:
                fail(node, env, result->reason().empty() ? "failed without a reason" : result->reason());
                return;
        }
        fail(node, env, "broke the component contract: returned an invalid SinkResult");
    }

    static void observe(Node& node, steady::time_point t0) {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0).count();
        node.stats.busy_us.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
        node.stats.calls.fetch_add(1, std::memory_order_relaxed);
        const double seconds = static_cast<double>(us) / 1e6;
        for (std::size_t b = 0; b < kBucketCount; ++b)
            if (seconds <= kLatencyBuckets[b]) node.stats.buckets[b].fetch_add(1, std::memory_order_relaxed);
    }

    // ---- sources ----

    class Emitter : public SourceEmitter {
    public:
        Emitter(Impl& impl, std::size_t index) : impl_(impl), index_(index) {}
        bool emit(Document doc, AckHandle ack) override { return impl_.admit(index_, std::move(doc), std::move(ack)); }
        bool stop_requested() const override { return impl_.stop_sources.load(); }

    private:
        Impl& impl_;
        std::size_t index_;
    };

    bool admit(std::size_t index, Document doc, AckHandle ack) {
        Node& node = *nodes[index];
        if (doc.id.empty()) {
            if (!doc.parts.empty() && doc.parts.front().bytes)
                doc.id = Document::content_id(doc.parts.front().bytes->data(), doc.parts.front().bytes->size());
            else {
                if (ack) ack(Outcome{false, node.label + ": source emitted a document with no id and no content"});
                failed.fetch_add(1);
                return true;
            }
        }
        auto tracker = std::make_shared<Tracker>();
        tracker->doc_id = doc.id;
        auto name = doc.attributes.find("filename");
        tracker->label = name != doc.attributes.end() ? name->second : (doc.parts.empty() ? "" : doc.parts.front().name);
        tracker->source_node = node.spec->name;
        tracker->ack = std::move(ack);
        tracker->started = steady::now();
        {
            std::unique_lock lock(flight_mutex);
            flight_cv.wait(lock, [&] { return live.size() < spec.max_in_flight || stop_sources.load(); });
            if (stop_sources.load()) return false;  // not taken: the source keeps it
            live.insert(tracker);
            peak = std::max<std::uint64_t>(peak, live.size());
        }
        taken.fetch_add(1);
        doc.attributes[kJobIdAttribute] = doc.id;  // children inherit it (make_child copies attributes)
        record_job_start(*tracker, doc);
        node.stats.in.fetch_add(1, std::memory_order_relaxed);
        if (runtime_log->enabled(LogLevel::Debug)) node.context->log().log(LogLevel::Debug, "taken", doc.id);
        // Hold one extra count while forwarding so a fast graph cannot settle mid-fan-out.
        tracker->outstanding.fetch_add(1);
        forward(node, "out", std::make_shared<const Document>(std::move(doc)), tracker);
        if (tracker->outstanding.fetch_sub(1) == 1) settle(tracker);
        return true;
    }

    // Puts a document straight into a node (a retry from the admin API). It counts as in
    // flight but does not wait for a slot: the caller is an HTTP thread.
    void inject(std::size_t index, const std::string& job_id, DocumentPtr doc, AckHandle ack) {
        auto tracker = std::make_shared<Tracker>();
        tracker->doc_id = job_id;
        tracker->label = doc->parts.empty() ? doc->id : doc->parts.front().name;
        tracker->source_node = "admin retry";
        tracker->ack = std::move(ack);
        tracker->started = steady::now();
        {
            std::lock_guard lock(flight_mutex);
            live.insert(tracker);
            peak = std::max<std::uint64_t>(peak, live.size());
        }
        tracker->outstanding.fetch_add(1);
        put(index, Envelope{std::move(doc), tracker, 0, 1});
    }

    void source_loop(std::size_t index) {
        Node& node = *nodes[index];
        Emitter emitter(*this, index);
        if (options.once) {
            try {
                node.source->poll(emitter, PollRequest{milliseconds(0), true});
            } catch (const std::exception& e) {
                node.context->log().log(LogLevel::Error, fmt::format("poll failed: {}", e.what()));
            }
            return;
        }
        while (!stop_sources.load()) {
            try {
                node.source->poll(emitter, PollRequest{poll_wait, false});
            } catch (const std::exception& e) {
                node.context->log().log(LogLevel::Error, fmt::format("poll failed: {}; trying again in 1 s", e.what()));
                std::unique_lock lock(flight_mutex);
                flight_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stop_sources.load(); });
            }
        }
    }

    // ---- watchdog ----

    void watch() {
        std::unique_lock lock(watchdog_mutex);
        const auto period = std::clamp(stuck_after / 4, milliseconds(10), milliseconds(1000));
        while (!watchdog_cv.wait_for(lock, period, [&] { return watchdog_stop; })) {
            std::vector<std::shared_ptr<Tracker>> snapshot;
            {
                std::lock_guard flight(flight_mutex);
                snapshot.assign(live.begin(), live.end());
            }
            const auto now = steady::now();
            for (const auto& t : snapshot) {
                std::lock_guard tl(t->mutex);
                for (auto& p : t->positions) {
                    if (p.warned || now - p.since < stuck_after) continue;
                    p.warned = true;
                    nodes[p.node]->context->log().log(
                        LogLevel::Warn,
                        fmt::format("document stuck for {} s in this node ({}), {}",
                                    std::chrono::duration_cast<std::chrono::seconds>(now - p.since).count(),
                                    nodes[p.node]->spec->component, describe_state(p.state)),
                        t->doc_id);
                    metrics.increment("stuck_documents_total", 1, {{"node", nodes[p.node]->spec->name}});
                }
            }
        }
    }

    std::vector<std::string> report() const {
        std::vector<std::string> lines;
        std::lock_guard flight(flight_mutex);
        const auto now = steady::now();
        for (const auto& t : live) {
            std::lock_guard tl(t->mutex);
            std::string where;
            for (const auto& p : t->positions)
                where += fmt::format("{}node '{}' for {} ms, {}", where.empty() ? "" : "; ", nodes[p.node]->spec->name,
                                     std::chrono::duration_cast<milliseconds>(now - p.since).count(), describe_state(p.state));
            lines.push_back(fmt::format("doc {} ({}) from '{}': {}", t->doc_id, t->label, t->source_node,
                                        where.empty() ? "between nodes" : where));
        }
        return lines;
    }
};

std::string Runtime::Impl::approve(const std::string& id, const nlohmann::json& corrections, const std::string& notes) {
    auto job = state->get_job(id);
    if (!job) return "no such job";
    if (job->status != "review") return fmt::format("job is '{}'; only jobs in review can be approved", job->status);
    if (!approved_node) return "admin.approved_node is not set: the pipeline names no node for approved documents";
    auto keys = state->keys("review/" + id + "/", 1000);
    if (keys.empty()) return "no parked document is stored for this job";
    std::vector<std::pair<std::string, Document>> docs;
    for (const auto& key : keys) {
        auto text = state->get(key);
        if (!text) continue;
        Document doc = Document::from_json(nlohmann::json::parse(*text).at("document"));
        // A claim document keeps its fields under "claim" (docpipe/claim.hpp); others at the top.
        const bool claim = doc.fields.contains("claim");
        for (const auto& [field, value] : corrections.items()) {
            nlohmann::json corrected{{"value", value}, {"confidence", 1.0}, {"source", "reviewer"}, {"provenance", {{"source", "reviewer"}}}};
            if (claim) {
                doc.fields["claim"][field] = std::move(corrected);
                if (auto m = doc.fields.find("missing"); m != doc.fields.end() && m->is_array()) {
                    nlohmann::json still = nlohmann::json::array();
                    for (const auto& x : *m) {
                        const auto name = x.get<std::string>();
                        const bool fixed = name == field || (name == "member_id or policy_number" && (field == "member_id" || field == "policy_number"));
                        if (!fixed) still.push_back(x);
                    }
                    *m = still;
                }
            } else {
                doc.fields[field] = std::move(corrected);
            }
        }
        if (claim) doc.fields["reviewed"] = true;
        if (!notes.empty()) doc.attributes["reviewer_notes"] = notes;
        doc.attributes[kJobIdAttribute] = id;
        docs.emplace_back(key, std::move(doc));
    }
    if (docs.empty()) return "the parked documents for this job are gone";
    state->update_job(id, [&](Job& j) {
        j.status = "approved";
        for (const auto& [field, value] : corrections.items())
            j.fields[field] = {{"value", value}, {"confidence", 1.0}, {"provenance", {{"source", "reviewer"}}}};
        if (!notes.empty()) j.references["reviewer_notes"] = notes;
        j.last_error.clear();
    });
    for (auto& [key, doc] : docs) {
        const std::string review_key = key;
        inject(*approved_node, id, std::make_shared<const Document>(std::move(doc)), [this, review_key](const Outcome& o) {
            if (!o.ok) return;
            try {
                state->erase(review_key);
            } catch (const std::exception&) {
            }
        });
    }
    runtime_log->log(LogLevel::Info, fmt::format("approved by a reviewer with {} correction(s); sent to node '{}'", corrections.size(),
                                                 nodes[*approved_node]->spec->name), id);
    return "";
}

std::string Runtime::Impl::reject(const std::string& id, const std::string& reason) {
    auto job = state->get_job(id);
    if (!job) return "no such job";
    if (job->status != "review") return fmt::format("job is '{}'; only jobs in review can be rejected", job->status);
    state->update_job(id, [&](Job& j) {
        j.status = "rejected";
        j.last_error = reason;
    });
    for (const auto& key : state->keys("review/" + id + "/", 1000)) state->erase(key);
    runtime_log->log(LogLevel::Info, "rejected by a reviewer", id);
    return "";
}

class Runtime::Impl::Backend : public AdminBackend {
public:
    explicit Backend(Impl& impl) : impl_(impl) {}
    bool ready(std::string& why_not) override { return impl_.ready(why_not); }
    nlohmann::json health_detailed() override { return impl_.health_detailed(); }
    std::string metrics_text() override { return impl_.metrics_text(); }
    Store& store() override { return *impl_.state; }
    ActionResult retry_job(const std::string& id) override { return result(impl_.retry_job(id)); }
    ActionResult approve(const std::string& id, const nlohmann::json& corrections, const std::string& notes) override {
        return result(impl_.approve(id, corrections, notes));
    }
    ActionResult reject(const std::string& id, const std::string& reason) override { return result(impl_.reject(id, reason)); }

private:
    // Until the runtime returns ActionResult itself: "" is done, "no such job" is not found,
    // "job is '<status>'; ..." means it moved on (conflict), anything else is invalid.
    static ActionResult result(const std::string& why) {
        using O = ActionResult::Outcome;
        if (why.empty()) return ActionResult::done();
        if (why == "no such job") return ActionResult::fail(O::NotFound, why);
        return ActionResult::fail(why.rfind("job is '", 0) == 0 ? O::Conflict : O::Invalid, why);
    }
    Impl& impl_;
};

namespace {

// The admin key when none is configured: reuse <state dir>/admin.key, else generate one
// and write it there with mode 0600. The key itself is never logged.
std::string local_admin_key(const std::filesystem::path& file, Logger& log) {
    std::ifstream in(file);
    std::string key;
    if (in >> key && key.size() >= 32) {
        log.log(LogLevel::Info, fmt::format("admin API key read from {} (send it as X-API-Key)", file.string()));
        return key;
    }
    key = generate_api_key();
    std::error_code ec;
    if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw StartError(fmt::format("admin: cannot write the generated API key to {}: {}", file.string(), std::strerror(errno)));
    ::fchmod(fd, 0600);  // also when the file existed with wider permissions
    std::string line = key + "\n";
    bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!written) throw StartError("admin: cannot write the generated API key to " + file.string());
    log.log(LogLevel::Warn, fmt::format("no admin.api_keys configured: generated a random API key and wrote it to {} (mode 0600); "
                                        "send it as X-API-Key, or configure admin.api_keys", file.string()));
    return key;
}

}  // namespace

// ---- Runtime -----------------------------------------------------------------------------

Runtime::Runtime(PipelineSpec spec, std::shared_ptr<const Registry> registry, RuntimeOptions options)
    : impl_(std::make_unique<Impl>()) {
    impl_->spec = std::move(spec);
    impl_->registry = std::move(registry);
    impl_->options = std::move(options);
}

Runtime::~Runtime() {
    if (!impl_) return;
    request_stop();
    if (impl_->admin) impl_->admin->stop();  // first: its handlers read everything below
    for (auto& t : impl_->source_threads)
        if (t.joinable()) t.join();
    {
        std::lock_guard lock(impl_->watchdog_mutex);
        impl_->watchdog_stop = true;
    }
    impl_->watchdog_cv.notify_all();
    if (impl_->watchdog.joinable()) impl_->watchdog.join();
    if (impl_->graph) impl_->arena->execute([this] { impl_->graph->wait_for_all(); });
    impl_->scheduler.reset();
    for (auto& n : impl_->nodes) {
        if (!n->component) continue;
        try {
            n->component->stop();
        } catch (...) {
        }
    }
    // Graph nodes hold bodies referencing components: destroy them, then the components,
    // before the Registry (which owns their code) can go.
    for (auto& n : impl_->nodes) n->graph_node.reset();
    for (auto& n : impl_->nodes) n->component.reset();
}

void Runtime::start() {
    Impl& m = *impl_;
    const auto& logging = m.spec.sections.at("logging");
    m.json_logs = logging.at("format") == "json";
    m.logger = m.options.logger ? m.options.logger
                                : make_process_logger(logging.at("format").get<std::string>(), logging.at("level").get<std::string>());
    m.clock = m.options.clock ? m.options.clock : std::make_shared<SystemClock>();
    m.runtime_log = std::make_unique<NodeLogger>(m.logger, "runtime", m.json_logs);
    m.stuck_after = m.spec.runtime_duration("stuck_after");
    m.drain_timeout = m.spec.runtime_duration("drain_timeout");
    m.poll_wait = m.spec.runtime_duration("poll_wait");
    m.ledger_ttl = std::chrono::duration_cast<std::chrono::seconds>(
        milliseconds(m.spec.sections.at("state").at("ledger_ttl").get<std::int64_t>()));

    const std::string backend = m.spec.section_string("state", "backend");
    try {
        m.state = open_store(backend, m.spec.section_string("state", backend == "redis" ? "url" : "path"), *m.clock);
    } catch (const std::exception& e) {
        throw StartError(fmt::format("state store ({}): {}", backend, e.what()));
    }
    if (auto report = m.state->probe(); report.status != Health::Healthy)
        m.runtime_log->log(LogLevel::Warn, fmt::format("state store {} is {}: {}; continuing, it is retried on every use", backend,
                                                       to_string(report.status), report.detail));

    for (const auto& ns : m.spec.nodes) {
        auto node = std::make_unique<Impl::Node>();
        node->spec = &ns;
        node->label = fmt::format("node '{}' ({})", ns.name, ns.component);
        node->context = std::make_unique<NodeContext>(ns.name, m.logger, m.json_logs, m.metrics, *m.state, *m.clock);
        try {
            node->component = ns.descriptor->create(ns.config, *node->context);
            if (!node->component) throw std::runtime_error("the factory returned no component");
        } catch (const std::exception& e) {
            throw StartError(fmt::format("{}: constructor failed: {}", node->label, e.what()));
        } catch (...) {
            throw StartError(fmt::format("{}: constructor threw a non-standard exception", node->label));
        }
        Component* c = node->component.get();
        switch (ns.descriptor->kind) {
            case ComponentKind::Source: node->source = dynamic_cast<Source*>(c); break;
            case ComponentKind::Sink: node->sink = dynamic_cast<Sink*>(c); break;
            default: node->transform = dynamic_cast<Transform*>(c); break;
        }
        if (!node->source && !node->sink && !node->transform)
            throw StartError(fmt::format("{}: the factory built an object that is not a {}", node->label, to_string(ns.descriptor->kind)));
        m.nodes.push_back(std::move(node));
    }
    for (auto& node : m.nodes) {
        for (const auto& port : node->spec->descriptor->output_ports)
            for (const auto& target : m.spec.successors(node->spec->name, port.name))
                for (std::size_t i = 0; i < m.nodes.size(); ++i)
                    if (m.nodes[i]->spec->name == target) node->successors[port.name].push_back(i);
    }
    m.scheduler = std::make_unique<RetryScheduler>();
    std::size_t threads = 0;
    for (const auto& node : m.nodes)
        if (!node->source) threads += static_cast<std::size_t>(node->spec->concurrency);
    threads = std::clamp<std::size_t>(threads, std::max(2u, std::thread::hardware_concurrency()), 256);
    m.parallelism = std::make_unique<oneapi::tbb::global_control>(oneapi::tbb::global_control::max_allowed_parallelism,
                                                                  std::max(threads + 1, oneapi::tbb::global_control::active_value(
                                                                      oneapi::tbb::global_control::max_allowed_parallelism)));
    m.arena = std::make_unique<oneapi::tbb::task_arena>(static_cast<int>(threads), 0);
    m.arena->execute([&m] { m.graph = std::make_unique<flow::graph>(); });
    for (std::size_t i = 0; i < m.nodes.size(); ++i) {
        auto& node = *m.nodes[i];
        if (node.source) continue;
        const std::size_t concurrency = static_cast<std::size_t>(node.spec->concurrency);
        const bool is_sink = node.sink != nullptr;
        node.graph_node = std::make_unique<flow::function_node<Envelope>>(
            *m.graph, concurrency, [&m, i, is_sink](const Envelope& env) {
                m.nodes[i]->stats.in.fetch_add(1, std::memory_order_relaxed);
                m.nodes[i]->stats.queued.fetch_sub(1, std::memory_order_relaxed);
                m.set_state(env, HopState::Running);
                if (is_sink) m.run_sink(i, env);
                else m.run_transform(i, env);
                return flow::continue_msg();
            });
    }
    // Start sinks and transforms before sources, so nothing is emitted into a cold graph.
    for (int pass = 0; pass < 2; ++pass)
        for (auto& node : m.nodes) {
            if ((node->source != nullptr) != (pass == 1)) continue;
            try {
                node->component->start();
            } catch (const std::exception& e) {
                throw StartError(fmt::format("{}: start failed: {}", node->label, e.what()));
            }
        }
    m.watchdog = std::thread([&m] { m.watch(); });
    m.running.store(true);
    start_admin();
    for (std::size_t i = 0; i < m.nodes.size(); ++i)
        if (m.nodes[i]->source) m.source_threads.emplace_back([&m, i] { m.source_loop(i); });
    m.runtime_log->log(LogLevel::Info, fmt::format("pipeline {} started: {} nodes, {} edges, max_in_flight {}{}", m.spec.file.string(),
                                                   m.nodes.size(), m.spec.edges.size(), m.spec.max_in_flight,
                                                   m.options.once ? ", --once" : ""));
}

void Runtime::start_admin() {
    Impl& m = *impl_;
    const auto& admin = m.spec.sections.at("admin");
    if (!admin.at("enabled").get<bool>()) return;
    if (m.options.once) {
        m.runtime_log->log(LogLevel::Debug, "admin server not started with --once");
        return;
    }
    AdminSettings settings;
    try {
        std::tie(settings.host, settings.port) = parse_listen_address(admin.at("listen").get<std::string>());
    } catch (const std::exception& e) {
        throw StartError(e.what());
    }
    if (admin.contains("api_keys"))
        for (const auto& k : admin.at("api_keys"))
            if (!k.get<std::string>().empty()) settings.api_keys.push_back(k.get<std::string>());  // "${ADMIN_API_KEY:-}" may be empty
    if (settings.api_keys.empty()) {
        if (!is_loopback_host(settings.host))
            throw StartError(fmt::format("admin: refusing to serve the admin API on {} without an API key; set admin.api_keys "
                                         "(e.g. [\"${{ADMIN_API_KEY}}\"] with a key from `openssl rand -hex 32`) or listen on 127.0.0.1",
                                         admin.at("listen").get<std::string>()));
        std::filesystem::path key_file = admin.contains("key_file") ? admin.at("key_file").get<std::string>() : "";
        if (key_file.empty()) {
            std::filesystem::path base = m.state->backend() == "sqlite"
                                             ? std::filesystem::path(m.spec.section_string("state", "path")).parent_path()
                                             : std::filesystem::path("var");
            key_file = (base.empty() ? std::filesystem::path(".") : base) / "admin.key";
        }
        settings.api_keys.push_back(local_admin_key(key_file, *m.runtime_log));
    }
    for (const auto& k : settings.api_keys)
        if (k.size() < 32)
            m.runtime_log->log(LogLevel::Warn, fmt::format("an admin API key is only {} characters; use at least 32 (openssl rand -hex 32)",
                                                           k.size()));
    if (admin.contains("approved_node")) {
        const std::string name = admin.at("approved_node").get<std::string>();
        m.approved_node = m.node_index(name);
        if (!m.approved_node || m.nodes[*m.approved_node]->source)
            throw StartError(fmt::format("admin.approved_node '{}' must name a transform or sink node of this pipeline", name));
    }
    settings.protect_metrics = admin.at("protect_metrics").get<bool>();
    settings.rate_per_second = admin.at("rate_limit_per_second").get<double>();
    settings.burst = static_cast<int>(admin.at("rate_limit_burst").get<std::int64_t>());
    settings.max_body_bytes = static_cast<std::size_t>(admin.at("max_body_bytes").get<std::int64_t>());
    settings.protect_health_detailed = admin.at("protect_health_detailed").get<bool>();
    settings.request_head_timeout = milliseconds(admin.at("request_head_timeout").get<std::int64_t>());
    settings.keep_alive_idle_timeout = milliseconds(admin.at("keep_alive_idle_timeout").get<std::int64_t>());
    settings.max_connections_per_client = static_cast<int>(admin.at("max_connections_per_client").get<std::int64_t>());
    settings.max_connections = static_cast<int>(admin.at("max_connections").get<std::int64_t>());
    settings.refusal_log_interval = milliseconds(admin.at("refusal_log_interval").get<std::int64_t>());
    m.admin_backend = std::make_unique<Impl::Backend>(m);
    m.admin = std::make_unique<AdminServer>(settings, *m.admin_backend, *m.runtime_log);
    try {
        m.admin->start();
    } catch (const std::exception& e) {
        throw StartError(std::string("admin: ") + e.what());
    }
    m.runtime_log->log(LogLevel::Info, fmt::format("admin API on http://{}:{} (health: /health, /health/ready, /health/detailed; "
                                                   "metrics: /metrics; API: /api/v1)", settings.host, m.admin->port()));
}

int Runtime::admin_port() const { return impl_->admin ? impl_->admin->port() : 0; }

void Runtime::request_stop() {
    Impl& m = *impl_;
    {
        // Under the lock, so a waiter between its predicate check and its wait still wakes.
        std::lock_guard lock(m.flight_mutex);
        m.stop_requested.store(true);
    }
    m.flight_cv.notify_all();
}

int Runtime::run() {
    Impl& m = *impl_;
    if (m.options.once) {
        // Sources end after one draining poll, unless a stop is requested first.
        for (auto& t : m.source_threads) t.join();
        m.source_threads.clear();
        std::unique_lock lock(m.flight_mutex);
        m.flight_cv.wait(lock, [&] { return m.live.empty() || m.stop_requested.load(); });
        if (m.live.empty()) {
            lock.unlock();
            m.arena->execute([&m] { m.graph->wait_for_all(); });
            return m.failed.load() > 0 ? 1 : 0;
        }
    } else {
        std::unique_lock lock(m.flight_mutex);
        m.flight_cv.wait(lock, [&] { return m.stop_requested.load(); });
    }

    // Shutdown: stop taking new documents, then drain what is in flight. The admin server
    // keeps answering (ready = false) until the runtime is destroyed.
    m.running.store(false);
    m.runtime_log->log(LogLevel::Info, fmt::format("stopping: sources stop, draining up to {} ms", m.drain_timeout.count()));
    {
        std::lock_guard lock(m.flight_mutex);
        m.stop_sources.store(true);
    }
    m.flight_cv.notify_all();
    for (auto& t : m.source_threads) t.join();
    m.source_threads.clear();
    bool drained;
    {
        std::unique_lock lock(m.flight_mutex);
        drained = m.flight_cv.wait_for(lock, m.drain_timeout, [&] { return m.live.empty(); });
    }
    if (!drained) {
        auto lines = m.report();
        m.runtime_log->log(LogLevel::Error, fmt::format("drain deadline passed with {} document(s) in flight; they are not acked "
                                                        "and will be delivered again on restart:", lines.size()));
        for (const auto& l : lines) m.runtime_log->log(LogLevel::Error, "  in flight: " + l);
        // Pending retries would only wait; give up on them so the graph can empty.
        m.drain_deadline_passed.store(true);
        return 3;
    }
    m.arena->execute([&m] { m.graph->wait_for_all(); });
    m.runtime_log->log(LogLevel::Info, fmt::format("stopped cleanly: {} acked, {} failed", m.completed.load(), m.failed.load()));
    return m.options.once && m.failed.load() > 0 ? 1 : 0;
}

RunSummary Runtime::summary() const {
    const Impl& m = *impl_;
    RunSummary s;
    s.taken = m.taken.load();
    s.completed = m.completed.load();
    s.failed = m.failed.load();
    {
        std::lock_guard lock(m.flight_mutex);
        s.in_flight = m.live.size();
        s.peak_in_flight = m.peak;
    }
    for (const auto& n : m.nodes)
        s.nodes.push_back({n->spec->name, n->spec->component, n->stats.in.load(), n->stats.out.load(), n->stats.failed.load(),
                           n->stats.retries.load()});
    std::lock_guard lock(m.failures_mutex);
    s.failures = m.failures;
    return s;
}

std::string RunSummary::format() const {
    std::string out = fmt::format("documents: {} taken, {} completed, {} failed{}\n", taken, completed, failed,
                                  in_flight ? fmt::format(", {} still in flight", in_flight) : "");
    out += fmt::format("  {:<20} {:<22} {:>8} {:>8} {:>8} {:>8}\n", "node", "component", "in", "out", "failed", "retries");
    for (const auto& n : nodes)
        out += fmt::format("  {:<20} {:<22} {:>8} {:>8} {:>8} {:>8}\n", n.name, n.component, n.in, n.out, n.failed, n.retries);
    for (const auto& f : failures) out += fmt::format("  FAILED {} ({}): {}\n", f.label, f.doc_id, f.reason);
    return out;
}

MetricsRegistry& Runtime::metrics() { return impl_->metrics; }
Store& Runtime::state() { return *impl_->state; }
std::vector<std::string> Runtime::in_flight_report() const { return impl_->report(); }

}  // namespace docpipe::core
