#include "runtime.hpp"

#include <cstdlib>
#include <optional>
#include <thread>

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include "admin_server.hpp"
#include "runtime/admin_actions.hpp"
#include "runtime/dead_letters.hpp"
#include "runtime/graph.hpp"
#include "runtime/health.hpp"
#include "runtime/job_book.hpp"
#include "runtime/node.hpp"
#include "runtime/sources.hpp"
#include "runtime/store_guard.hpp"
#include "runtime/watchdog.hpp"
#include "services.hpp"

namespace docpipe::core {

using std::chrono::milliseconds;

// Members are declared in construction order and destroyed in reverse: the admin server
// first (its handlers read everything), then sources, the watchdog, the graph (it waits
// for its work), and the components and store last.
struct Runtime::Impl {
    PipelineSpec spec;
    std::shared_ptr<const Registry> registry;
    RuntimeOptions options;
    std::shared_ptr<Clock> clock;
    std::shared_ptr<spdlog::logger> logger;
    std::unique_ptr<NodeLogger> log;
    MetricsRegistry metrics;
    std::unique_ptr<Store> state;
    bool json_logs = false;
    milliseconds stuck_after{60'000}, drain_timeout{30'000}, poll_wait{500};
    std::chrono::seconds ledger_ttl{30 * 86'400};

    NodeList nodes;  // same order as spec.nodes
    std::unique_ptr<StoreGuard> store_guard;
    std::unique_ptr<InFlight> flight;
    Settlements settlements;
    std::unique_ptr<JobBook> jobs;
    std::unique_ptr<DeadLetters> dead_letters;
    std::unique_ptr<GraphExecutor> graph;
    std::unique_ptr<StuckWatch> watchdog;
    std::unique_ptr<SourceDriver> sources;
    std::atomic<bool> running{false};
    std::unique_ptr<HealthReporter> health;
    std::unique_ptr<AdminActions> admin_actions;
    std::unique_ptr<AdminServer> admin;

    // `--once`: the sources that could not read all their input this run (see source_problems()).
    std::vector<std::string> source_problems;

    std::optional<std::size_t> node_index(const std::string& name) const {
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i]->name() == name) return i;
        return std::nullopt;
    }
};

Runtime::Runtime(PipelineSpec spec, std::shared_ptr<const Registry> registry, RuntimeOptions options)
    : impl_(std::make_unique<Impl>()) {
    impl_->spec = std::move(spec);
    impl_->registry = std::move(registry);
    impl_->options = std::move(options);
}

Runtime::~Runtime() {
    if (!impl_) return;
    Impl& m = *impl_;
    if (m.flight) request_stop();
    if (m.admin) m.admin->stop();  // first: its handlers read everything below
    if (m.flight) m.flight->stop_sources();
    if (m.sources) m.sources->join();
    m.watchdog.reset();
    m.graph.reset();  // waits for the graph; pending retries are dropped (not acked)
    for (auto& n : m.nodes) {
        if (!n->component) continue;
        try {
            n->component->stop();
        } catch (...) {
        }
    }
    // Components before the Registry, which owns their code.
    for (auto& n : m.nodes) n->component.reset();
}

void Runtime::build_nodes() {
    Impl& m = *impl_;
    for (const auto& ns : m.spec.nodes) {
        auto node = std::make_unique<RuntimeNode>();
        node->spec = &ns;
        node->label = fmt::format("node '{}' ({})", ns.name, ns.component);
        node->trace_prefix = timeline_prefix(ns.name, ns.component);
        node->context = std::make_unique<NodeContext>(ns.name, m.logger, m.json_logs, m.metrics, *m.state, *m.clock);
        // Called from the component's threads once running; the job book exists by then.
        node->context->set_reference_amender([&m](std::string_view job, std::string_view doc, std::string_view key, std::string_view value) {
            return m.jobs && m.jobs->amend_reference(std::string(job), std::string(doc), std::string(key), std::string(value));
        });
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
    for (auto& node : m.nodes)
        for (const auto& port : node->spec->descriptor->output_ports)
            for (const auto& target : m.spec.successors(node->name(), port.name))
                if (auto i = m.node_index(target)) node->successors[port.name].push_back(*i);
}

void Runtime::start() {
    Impl& m = *impl_;
    const auto& logging = m.spec.sections.at("logging");
    m.json_logs = logging.at("format") == "json";
    m.logger = m.options.logger ? m.options.logger
                                : make_process_logger(logging.at("format").get<std::string>(), logging.at("level").get<std::string>());
    m.clock = m.options.clock ? m.options.clock : std::make_shared<SystemClock>();
    m.log = std::make_unique<NodeLogger>(m.logger, "runtime", m.json_logs);
    m.stuck_after = m.spec.runtime_duration("stuck_after");
    m.drain_timeout = m.spec.runtime_duration("drain_timeout");
    m.poll_wait = m.spec.runtime_duration("poll_wait");
    m.ledger_ttl = std::chrono::duration_cast<std::chrono::seconds>(milliseconds(m.spec.sections.at("state").at("ledger_ttl").get<std::int64_t>()));

    const std::string backend = m.spec.section_string("state", "backend");
    try {
        m.state = open_store(backend, m.spec.section_string("state", backend == "redis" ? "url" : "path"), *m.clock);
    } catch (const std::exception& e) {
        throw StartError(fmt::format("state store ({}): {}", backend, e.what()));
    }
    if (auto report = m.state->probe(); report.status != Health::Healthy)
        m.log->log(LogLevel::Warn, fmt::format("state store {} is {}: {}; continuing, it is retried on every use", backend,
                                               to_string(report.status), report.detail));

    build_nodes();
    m.store_guard = std::make_unique<StoreGuard>(
        *m.state, *m.log, milliseconds(m.spec.sections.at("state").at("outage_horizon").get<std::int64_t>()));
    m.flight = std::make_unique<InFlight>(m.spec.max_in_flight);
    m.jobs = std::make_unique<JobBook>(*m.state, *m.store_guard, *m.log, m.spec.text_hash);
    m.jobs->find_interrupted();
    m.jobs->return_interrupted_approvals();
    m.dead_letters = std::make_unique<DeadLetters>(*m.state, *m.clock, m.metrics, m.spec.text_hash);
    m.graph = std::make_unique<GraphExecutor>(GraphServices{m.nodes, *m.flight, m.settlements, *m.jobs, *m.dead_letters, m.metrics,
                                                            *m.state, *m.store_guard, *m.clock, *m.log, m.ledger_ttl,
                                                            m.options.redeliver});
    m.graph->build();
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
    m.watchdog = std::make_unique<StuckWatch>(*m.flight, m.nodes, m.metrics, m.stuck_after);
    m.health = std::make_unique<HealthReporter>(m.nodes, *m.state, *m.store_guard, *m.jobs, *m.clock, *m.flight, m.spec.file.string(),
                                                m.running);
    m.sources = std::make_unique<SourceDriver>(m.nodes, *m.flight, *m.graph, m.settlements, *m.store_guard, m.options.once, m.poll_wait);
    // Jobs left processing by a process that is gone (found at start-up, and again each time
    // the store comes back after an outage): those the sources do not deliver again in their
    // next round are settled. With --once, at the end of the run instead.
    auto settle_interrupted = [&m] {
        if (const auto n = m.jobs->settle_unclaimed())
            m.log->log(LogLevel::Warn, fmt::format("{} job(s) left processing by a process that stopped were not delivered again by "
                                                   "their source: settled as failed (re-drop their input to process them)", n));
        m.metrics.set_gauge("jobs_reconciled", static_cast<double>(m.jobs->reconciled()));
    };
    if (!m.options.once) {
        m.sources->after_next_round(settle_interrupted);
        m.store_guard->on_recovered([&m, settle_interrupted] {
            if (m.jobs->find_interrupted()) m.sources->after_next_round(settle_interrupted);
        });
    }
    m.running.store(true);
    start_admin();
    m.sources->start();
    m.log->log(LogLevel::Info, fmt::format("pipeline {} started: {} nodes, {} edges, max_in_flight {}{}", m.spec.file.string(), m.nodes.size(),
                                           m.spec.edges.size(), m.spec.max_in_flight, m.options.once ? ", --once" : ""));
}

void Runtime::start_admin() {
    Impl& m = *impl_;
    const auto& admin = m.spec.sections.at("admin");
    if (!admin.at("enabled").get<bool>()) return;
    if (m.options.once) {
        m.log->log(LogLevel::Debug, "admin server not started with --once");
        return;
    }
    AdminSettings settings;
    try {
        std::tie(settings.host, settings.port) = parse_listen_address(admin.at("listen").get<std::string>());
    } catch (const std::exception& e) {
        throw StartError(e.what());
    }
    if (admin.contains("api_keys")) {
        // api_key_labels: parallel to api_keys when entries were {label, key} (pipeline.cpp).
        const auto labels = admin.contains("api_key_labels") ? admin.at("api_key_labels") : nlohmann::json::array();
        for (std::size_t i = 0; i < admin.at("api_keys").size(); ++i) {
            const std::string key = admin.at("api_keys")[i].get<std::string>();
            if (key.empty()) continue;  // "${ADMIN_API_KEY:-}" may be empty
            settings.api_keys.push_back(key);
            // A plain key is named by its place in the file, whatever entries before it are
            // empty: the audit trail must not credit a review to another key when
            // ADMIN_API_KEY is set or unset.
            const std::string label = i < labels.size() ? labels[i].get<std::string>() : "";
            settings.api_key_labels.push_back(label.empty() ? fmt::format("key {}", i + 1) : label);
        }
    }
    if (settings.api_keys.empty()) {
        if (!is_loopback_host(settings.host))
            throw StartError(fmt::format("admin: refusing to serve the admin API on {} without an API key; set admin.api_keys "
                                         "(e.g. [\"${{ADMIN_API_KEY}}\"] with a key from `openssl rand -hex 32`) or listen on 127.0.0.1",
                                         admin.at("listen").get<std::string>()));
        std::filesystem::path key_file = admin.contains("key_file") ? admin.at("key_file").get<std::string>() : "";
        if (key_file.empty()) {
            // The state folder: the SQLite file's; with Redis or memory, $DOCPIPE_STATE_DIR (the
            // systemd units set it), else var/ beside the pipeline file. It was var/ under the
            // working directory, which is / under systemd.
            std::filesystem::path base;
            if (m.state->backend() == "sqlite") base = std::filesystem::path(m.spec.section_string("state", "path")).parent_path();
            else if (const char* dir = std::getenv("DOCPIPE_STATE_DIR"); dir && *dir) base = dir;
            else base = std::filesystem::absolute(m.spec.file).parent_path() / "var";
            key_file = (base.empty() ? std::filesystem::path(".") : base) / "admin.key";
        }
        settings.api_keys.push_back(local_admin_key(key_file, *m.log));
        settings.api_key_labels.push_back("local key");
    }
    for (const auto& k : settings.api_keys)
        if (k.size() < 32)
            m.log->log(LogLevel::Warn, fmt::format("an admin API key is only {} characters; use at least 32 (openssl rand -hex 32)", k.size()));
    std::optional<std::size_t> approved_node;
    if (admin.contains("approved_node")) {
        const std::string name = admin.at("approved_node").get<std::string>();
        approved_node = m.node_index(name);
        if (!approved_node || m.nodes[*approved_node]->source)
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
    m.admin_actions = std::make_unique<AdminActions>(m.nodes, *m.state, *m.graph, *m.dead_letters, *m.health, m.metrics, *m.flight,
                                                     m.settlements.counters, *m.log, approved_node, m.jobs->owner());
    m.admin = std::make_unique<AdminServer>(settings, *m.admin_actions, *m.log);
    try {
        m.admin->start();
    } catch (const std::exception& e) {
        throw StartError(std::string("admin: ") + e.what());
    }
    m.log->log(LogLevel::Info, fmt::format("admin API on http://{}:{} (health: /health, /health/ready, /health/detailed; "
                                           "metrics: /metrics; API: /api/v1)", settings.host, m.admin->port()));
}

int Runtime::admin_port() const { return impl_->admin ? impl_->admin->port() : 0; }

void Runtime::request_stop() {
    if (impl_->flight) impl_->flight->request_stop();
}

namespace {

// A source that could not read its input (a refused login, a mail server that dropped the
// connection, a folder it cannot move files out of) takes nothing and fails nothing: the
// `--once` summary said "0 taken, 0 failed" and the exit code 0 told cron all was well.
// The sources' own health probes say it, once they have finished their round.
std::vector<std::string> source_problems(const NodeList& nodes) {
    std::vector<std::string> problems;
    for (const auto& node : nodes) {
        if (!node->source || !node->spec->descriptor->has_health_probe) continue;
        HealthReport report;
        try {
            report = node->component->health();
        } catch (const std::exception& e) {
            report = {Health::Unavailable, std::string("health probe threw: ") + e.what()};
        }
        if (report.status != Health::Healthy)
            problems.push_back(fmt::format("source '{}' is {}: {}", node->name(), to_string(report.status), report.detail));
    }
    return problems;
}

}  // namespace

int Runtime::run() {
    Impl& m = *impl_;
    const auto& counters = m.settlements.counters;
    if (!m.sources) throw std::logic_error("Runtime::run() called before start()");
    // Joins the source threads. A source blocked on a state store that is down (writing a job
    // record waits up to the store's outage_horizon, 10 min by default) held a stop that long,
    // past systemd's stop timeout. Once a stop is asked for, the store guard gives up after
    // drain_timeout: the document being taken is not taken and stays with its source.
    auto join_sources = [&m] {
        std::atomic<bool> joined{false};
        std::thread watcher([&] {
            std::optional<std::chrono::steady_clock::time_point> give_up_at;
            while (!joined.load()) {
                const auto now = std::chrono::steady_clock::now();
                if (!give_up_at && (m.flight->stop_requested() || m.flight->sources_stopping())) give_up_at = now + m.drain_timeout;
                if (give_up_at && now >= *give_up_at && !m.store_guard->available()) {
                    m.log->log(LogLevel::Warn, "stopping: the state store is still down after the drain timeout; what the sources "
                                               "were taking is left with them");
                    m.store_guard->give_up();
                    return;
                }
                std::this_thread::sleep_for(milliseconds(50));
            }
        });
        m.sources->join();
        joined.store(true);
        watcher.join();
    };

    // Documents the sources could not hand over because the state store was down: the `--once`
    // exit code and summary say so (they said "0 taken, 0 failed", exit 0).
    auto note_documents_not_taken = [&m] {
        const auto n = m.settlements.not_taken.load();
        if (n == 0) return;
        std::string names;
        {
            std::lock_guard lock(m.settlements.failures_mutex);
            for (const auto& label : m.settlements.not_taken_labels) names += (names.empty() ? "" : ", ") + label;
        }
        m.source_problems.push_back(fmt::format("{} document(s) not taken because the state store was unavailable; they stay with "
                                                "their source for the next run: {}{}",
                                                n, names, n > m.settlements.not_taken_labels.size() ? ", ..." : ""));
    };
    if (m.options.once) {
        // Sources end after one draining poll, unless a stop is requested first.
        join_sources();
        if (m.flight->wait_empty_or_stop()) {
            m.graph->wait_for_all();
            if (const auto n = m.jobs->settle_unclaimed())
                m.log->log(LogLevel::Warn, fmt::format("{} job(s) left processing by an earlier run were not delivered again by their "
                                                       "source: settled as failed (re-drop their input to process them)", n));
            m.source_problems = source_problems(m.nodes);
            note_documents_not_taken();
            for (const auto& problem : m.source_problems)
                m.log->log(LogLevel::Error, problem + "; what it could not read is left for the next run");
            if (counters.failed.load() > 0 || counters.partial.load() > 0) return 1;
            return m.source_problems.empty() ? 0 : 2;
        }
    } else {
        m.flight->wait_stop();
    }

    // Shutdown: stop taking new documents, then drain what is in flight. The admin server
    // keeps answering (ready = false) until the runtime is destroyed.
    m.running.store(false);
    m.log->log(LogLevel::Info, fmt::format("stopping: sources stop, draining up to {} ms", m.drain_timeout.count()));
    m.flight->stop_sources();
    const auto drain_deadline = std::chrono::steady_clock::now() + m.drain_timeout;
    join_sources();
    bool drained = false, only_held = false;
    while (true) {  // at least once: with drain_timeout 0 an empty graph is still a clean stop
        const auto left = std::chrono::duration_cast<milliseconds>(drain_deadline - std::chrono::steady_clock::now());
        drained = m.flight->wait_empty_for(std::clamp(left, milliseconds(0), milliseconds(200)));
        if (drained || left.count() <= 0) break;
        // Documents that wait only for endpoints that are down (NCB answering 503, its breaker
        // open), none of them due to be tried again before the deadline: waiting for the
        // deadline would change nothing and only hold up the stop.
        if (const auto next = core::next_try_if_all_held(*m.flight); next && *next >= drain_deadline) {
            only_held = true;
            break;
        }
    }
    if (!drained) {
        auto lines = core::in_flight_report(*m.flight, m.nodes);
        if (only_held)
            m.log->log(LogLevel::Warn, fmt::format("stopping with {} document(s) waiting for an endpoint that is down, none to be "
                                                   "tried again within the drain timeout; they are not acked and will be "
                                                   "delivered again on restart:", lines.size()));
        else
            m.log->log(LogLevel::Error, fmt::format("drain deadline passed with {} document(s) in flight; they are not acked "
                                                    "and will be delivered again on restart:", lines.size()));
        for (const auto& l : lines) m.log->log(only_held ? LogLevel::Warn : LogLevel::Error, "  in flight: " + l);
        // Pending retries would only wait; give up on them so the graph can empty. So would
        // documents waiting for a state store that is down (up to its outage_horizon).
        m.graph->give_up_retries();
        m.store_guard->give_up();
        if (m.options.once) note_documents_not_taken();
        return 3;
    }
    m.graph->wait_for_all();
    m.log->log(LogLevel::Info, fmt::format("stopped cleanly: {} acked, {} failed", counters.completed.load(), counters.failed.load()));
    if (!m.options.once) return 0;
    note_documents_not_taken();
    if (counters.failed.load() > 0 || counters.partial.load() > 0) return 1;
    return m.source_problems.empty() ? 0 : 2;
}

std::optional<std::uint64_t> Runtime::source_backlog() const {
    const Impl& m = *impl_;
    if (!m.sources) return std::nullopt;
    return m.sources->backlog();
}

RunSummary Runtime::summary() const {
    const Impl& m = *impl_;
    RunSummary s;
    s.taken = m.settlements.counters.taken.load();
    s.completed = m.settlements.counters.completed.load();
    s.failed = m.settlements.counters.failed.load();
    s.partial = m.settlements.counters.partial.load();
    s.in_flight = m.flight ? m.flight->size() : 0;
    s.already_delivered = m.settlements.counters.already_delivered.load();
    s.peak_in_flight = m.flight ? m.flight->peak() : 0;
    for (const auto& n : m.nodes)
        s.nodes.push_back({n->name(), n->spec->component, n->stats.in.load(), n->stats.out.load(), n->stats.failed.load(),
                           n->stats.retries.load()});
    s.source_problems = m.source_problems;
    std::lock_guard lock(m.settlements.failures_mutex);
    s.failures = m.settlements.failures;
    s.jobs = m.settlements.jobs;
    return s;
}

std::string RunSummary::format() const {
    std::string out = fmt::format("documents: {} taken, {} completed, {} failed{}{}\n", taken, completed, failed,
                                  partial ? fmt::format(" ({} of the completed with a delivery that failed: dead-lettered there)", partial) : "",
                                  in_flight ? fmt::format(", {} still in flight", in_flight) : "");
    if (already_delivered)
        out += fmt::format("  {} already delivered by a sink before, not sent again (its ledger; `docpipe run --once --redeliver` "
                           "sends them anyway)\n", already_delivered);
    // `tries` counts calls, retries included; `retries` says how many of them were retries.
    out += fmt::format("  {:<20} {:<28} {:>8} {:>8} {:>8} {:>8}\n", "node", "component", "tries", "out", "failed", "retries");
    for (const auto& n : nodes)
        out += fmt::format("  {:<20} {:<28} {:>8} {:>8} {:>8} {:>8}\n", n.name, n.component, n.in, n.out, n.failed, n.retries);
    // File names and reasons come from outside (a sender, a scanner): one line each.
    for (const auto& f : failures) out += fmt::format("  FAILED {} ({}): {}\n", one_line(f.label), f.doc_id, one_line(f.reason));
    for (const auto& problem : source_problems) out += fmt::format("  SOURCE PROBLEM {}\n", one_line(problem));
    // Each job's outcome with what the receiving systems called it (the NCB claim
    // reference), or why it has none: what an operator checks after a run.
    if (!jobs.empty()) out += "jobs:\n";
    std::size_t shown = 0;
    for (const auto& j : jobs) {
        if (++shown > 200) {
            out += fmt::format("  ... and {} more (GET /api/v1/jobs)\n", jobs.size() - 200);
            break;
        }
        std::string refs;
        if (j.references.is_object())
            for (const auto& [k, v] : j.references.items()) {
                if (k == "duplicate_deliveries") continue;
                std::string values;
                if (v.is_array())
                    for (const auto& x : v) values += (values.empty() ? "" : ", ") + (x.is_string() ? x.get<std::string>() : docpipe::json_text(x));
                else
                    values = v.is_string() ? v.get<std::string>() : docpipe::json_text(v);
                refs += fmt::format("{}{}: {}", refs.empty() ? "" : "; ", k, values);
            }
        std::string line = refs;
        if (!j.detail.empty()) line += (line.empty() ? "" : "; ") + j.detail;
        if (line.empty()) line = "-";
        out += fmt::format("  {:<32} {:<10} {}\n", one_line(j.label), j.status, one_line(line));
    }
    // File names and reasons come from senders ("IC 850312105544 Tan.jpg"): the summary goes
    // where the log goes (cron's mail, the journal), so it is masked as the log is.
    return redact_personal_data(out);
}

MetricsRegistry& Runtime::metrics() { return impl_->metrics; }
Store& Runtime::state() { return *impl_->state; }
Liveness Runtime::liveness() const {
    const Impl& m = *impl_;
    Liveness l;
    l.running = m.running.load();
    for (const auto& node : m.nodes) l.progress += node->stats.in.load(std::memory_order_relaxed);
    l.settled = m.settlements.counters.completed.load() + m.settlements.counters.failed.load();
    l.progress += l.settled;
    l.in_flight = m.flight ? m.flight->size() : 0;
    l.quietest_source = m.sources ? m.sources->quietest_source() : milliseconds(0);
    l.stuck_after = m.stuck_after;
    l.poll_wait = m.poll_wait;
    return l;
}

std::optional<std::size_t> Runtime::review_queue_size() {
    if (!impl_->state) return std::nullopt;
    try {
        return impl_->state->count_jobs_by_status()["review"];
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::vector<std::string> Runtime::in_flight_report() const {
    return impl_->flight ? core::in_flight_report(*impl_->flight, impl_->nodes) : std::vector<std::string>{};
}

}  // namespace docpipe::core
