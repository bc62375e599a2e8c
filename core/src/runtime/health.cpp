#include "health.hpp"

#include <algorithm>

#include <fmt/core.h>

namespace docpipe::core {

nlohmann::json HealthReporter::probe(const RuntimeNode& node) {
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
    const auto last = node.stats.last_error();
    if (last.store_failure && report.status == Health::Healthy) {
        // Its own probe may not touch the store, but its last call failed for want of it.
        report = {Health::Degraded, "waiting for the state store: " + last.text};
    }
    entry["status"] = to_string(report.status);
    entry["detail"] = report.detail;
    entry["latency_ms"] = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
    entry["checked_at"] = iso8601(clock_.now());
    entry["last_error"] = last.text.empty() ? nlohmann::json(nullptr) : nlohmann::json(last.text);
    if (!last.text.empty()) entry["last_error_at"] = iso8601(last.at);
    return entry;
}

nlohmann::json HealthReporter::detailed() {
    nlohmann::json components = nlohmann::json::object();
    int worst = 0;  // 0 healthy, 1 degraded, 2 unavailable
    auto rank = [](const std::string& s) { return s == "unavailable" ? 2 : s == "degraded" ? 1 : 0; };
    for (const auto& node : nodes_) {
        auto entry = probe(*node);
        worst = std::max(worst, rank(entry["status"]));
        components[node->name()] = std::move(entry);
    }
    const auto t0 = steady::now();
    HealthReport store_report = store_.probe();  // a real round trip, reconnecting if needed
    // The probe is news for the guard too: an idle pipeline learns of an outage (and of its
    // end) from it.
    if (store_report.status == Health::Healthy) store_guard_.mark_ok();
    else store_guard_.mark_failed(store_report.detail, "health probe");
    nlohmann::json store_entry{{"backend", store_.backend()},
                               {"status", to_string(store_report.status)},
                               {"detail", store_report.detail},
                               {"latency_ms", std::chrono::duration<double, std::milli>(steady::now() - t0).count()},
                               {"checked_at", iso8601(clock_.now())},
                               {"last_error", store_report.status == Health::Healthy ? nlohmann::json(nullptr)
                                                                                     : nlohmann::json(store_report.detail)}};
    worst = std::max(worst, rank(store_entry["status"]));
    return {{"status", worst == 2 ? "unavailable" : worst == 1 ? "degraded" : "healthy"},
            {"checked_at", iso8601(clock_.now())},
            {"pipeline", pipeline_file_},
            {"running", running_.load()},
            {"documents_in_flight", flight_.size()},
            {"jobs_reconciled", jobs_.reconciled()},
            {"state_store_outages", store_guard_.outages()},
            {"components", std::move(components)},
            {"state_store", std::move(store_entry)}};
}

bool HealthReporter::ready(std::string& why_not) {
    if (!running_.load()) {
        why_not = "the pipeline is not running (starting or stopping)";
        return false;
    }
    if (!store_guard_.available()) {
        // Sources are paused and documents wait for it: nothing new is taken meanwhile.
        why_not = "the state store is unavailable: sources are paused until it answers again (see /health/detailed)";
        return false;
    }
    for (const auto& node : nodes_) {
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

std::string render_metrics(const MetricsRegistry& metrics, const NodeList& nodes, const InFlight& flight, const RunCounters& counters,
                           Store& store) {
    std::string out = metrics.render_prometheus();
    auto series = [&](const char* name, const char* type, const char* help) {
        out += fmt::format("# HELP docpipe_{} {}\n# TYPE docpipe_{} {}\n", name, help, name, type);
    };
    auto per_node = [&](const char* name, const char* type, const char* help, auto value) {
        series(name, type, help);
        for (const auto& n : nodes) out += fmt::format("docpipe_{}{{node=\"{}\"}} {}\n", name, n->name(), value(*n));
    };
    per_node("documents_in_total", "counter", "Documents that entered a node", [](const RuntimeNode& n) { return n.stats.in.load(); });
    per_node("documents_out_total", "counter", "Documents a node emitted", [](const RuntimeNode& n) { return n.stats.out.load(); });
    per_node("documents_failed_total", "counter", "Documents that failed in a node (dead-lettered)",
             [](const RuntimeNode& n) { return n.stats.failed.load(); });
    per_node("retries_total", "counter", "Retries scheduled by a node's retry policy", [](const RuntimeNode& n) { return n.stats.retries.load(); });
    series("queue_depth", "gauge", "Documents waiting for a free worker of a node");
    for (const auto& n : nodes)
        if (!n->source) out += fmt::format("docpipe_queue_depth{{node=\"{}\"}} {}\n", n->name(), n->stats.queued.load());
    series("processing_seconds", "histogram", "Time inside a component's process()/write()");
    for (const auto& n : nodes) {
        if (n->source) continue;
        std::uint64_t cumulative = 0;  // Prometheus buckets count every call up to their bound
        for (std::size_t b = 0; b < kBucketCount; ++b) {
            cumulative += n->stats.buckets[b].load();
            out += fmt::format("docpipe_processing_seconds_bucket{{node=\"{}\",le=\"{}\"}} {}\n", n->name(), kLatencyBuckets[b], cumulative);
        }
        out += fmt::format("docpipe_processing_seconds_bucket{{node=\"{}\",le=\"+Inf\"}} {}\n", n->name(), n->stats.calls.load());
        out += fmt::format("docpipe_processing_seconds_sum{{node=\"{}\"}} {}\n", n->name(), n->stats.busy_us.load() / 1e6);
        out += fmt::format("docpipe_processing_seconds_count{{node=\"{}\"}} {}\n", n->name(), n->stats.calls.load());
    }
    series("documents_in_flight", "gauge", "Source documents in the graph");
    out += fmt::format("docpipe_documents_in_flight {}\n", flight.size());
    series("source_documents_total", "counter", "Source documents by outcome");
    out += fmt::format("docpipe_source_documents_total{{outcome=\"taken\"}} {}\n", counters.taken.load());
    out += fmt::format("docpipe_source_documents_total{{outcome=\"completed\"}} {}\n", counters.completed.load());
    out += fmt::format("docpipe_source_documents_total{{outcome=\"failed\"}} {}\n", counters.failed.load());
    series("review_queue_size", "gauge", "Jobs waiting for a reviewer");
    try {
        out += fmt::format("docpipe_review_queue_size {}\n", store.count_jobs_by_status()["review"]);
    } catch (const std::exception&) {
        out += "# review_queue_size unavailable: state store unreachable\n";
    }
    series("build_info", "gauge", "Build information");
    out += fmt::format("docpipe_build_info{{version=\"{}\",sdk_abi=\"{}\"}} 1\n", DOCPIPE_VERSION_STRING, kSdkAbiVersion);
    return out;
}

}  // namespace docpipe::core
