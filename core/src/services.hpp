// Runtime services handed to components through their Context: logging (spdlog), metrics
// (Prometheus text), state store (SQLite or memory) and the system clock.
//
// Ownership: the Runtime owns one Services object; NodeContexts hold references into it
// and are destroyed before it. Everything here is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "docpipe/context.hpp"

namespace spdlog {
class logger;
namespace sinks {
class sink;
}
}

namespace docpipe::core {

// ---- logging -----------------------------------------------------------------------------

// Creates the process logger ("text" or "json" format) writing to stderr (or to `sink`, for
// tests). Every line it writes goes through redact_personal_data() first, so a component that
// logs through spdlog directly is covered too.
std::shared_ptr<spdlog::logger> make_process_logger(const std::string& format, const std::string& level,
                                                    std::shared_ptr<spdlog::sinks::sink> sink = nullptr);

// Replaces personal data in a log message with a placeholder naming its kind:
//   NRIC-like numbers (900101-14-5678; 12 digits after an IC/NRIC/MyKad label)  -> [nric]
//   phone numbers (+60 12-345 6789, 012-3456789, 03-1234 5678, +<8-15 digits>)   -> [phone]
//   e-mail addresses                                                             -> [email]
//   member ids (M12345, MEM123456789, the value after "Member ID:", "No Ahli")   -> [member-id]
//   policy numbers (POL123456, the value after "Policy No:", "Polisi")           -> [policy-no]
//   person names, only where labelled: "name=...", "Name: ...", "patient ...",
//     "member_name": "...", "my name is ...", "nama saya ..."                      -> [name]
// An unlabelled name in free text ("sent by Siti Aminah") cannot be told from other words
// and is NOT caught: components must not log names (the SDK's mask() is for that).
// Cheap when there is nothing to do: a message with no digit, no '@' and no name label is
// returned unchanged after one pass. Idempotent (placeholders match nothing).
std::string redact_personal_data(std::string_view message);

// One line of text, whatever the message holds: a file named "x\n2026-... info [runtime]
// stopped cleanly" wrote a convincing false line into the text log and the --once summary.
// Line breaks and tabs become \n \r \t, other control characters \xNN; UTF-8 stays.
std::string one_line(std::string_view text);

class NodeLogger : public Logger {
public:
    NodeLogger(std::shared_ptr<spdlog::logger> sink, std::string node, bool json);
    void log(LogLevel level, std::string_view message, std::string_view doc_id = {}) override;
    bool enabled(LogLevel level) const override;

private:
    std::shared_ptr<spdlog::logger> sink_;
    std::string node_;
    bool json_;
};

// ---- metrics -----------------------------------------------------------------------------

class MetricsRegistry : public Metrics {
public:
    void increment(std::string_view name, double by = 1, const Labels& labels = {}) override;
    void set_gauge(std::string_view name, double value, const Labels& labels = {}) override;
    void observe(std::string_view name, double value, const Labels& labels = {}) override;
    double value(std::string_view name, const Labels& labels = {}) const;
    // Prometheus text exposition format, names prefixed "docpipe_".
    std::string render_prometheus() const;

private:
    struct Series {
        enum Kind { Counter, Gauge, Histogram } kind = Counter;
        double value = 0;
        std::vector<double> bucket_counts;  // histogram only
        double sum = 0;
        std::uint64_t count = 0;
    };
    static std::string key(std::string_view name, const Labels& labels);
    mutable std::mutex mutex_;
    std::map<std::string, Series> series_;  // key = name{labels}
};

// Metrics as one node sees them: every series gets node="<name>".
class NodeMetrics : public Metrics {
public:
    NodeMetrics(MetricsRegistry& registry, std::string node) : registry_(registry), node_(std::move(node)) {}
    void increment(std::string_view name, double by, const Labels& labels) override;
    void set_gauge(std::string_view name, double value, const Labels& labels) override;
    void observe(std::string_view name, double value, const Labels& labels) override;

private:
    Labels with_node(const Labels& labels) const;
    MetricsRegistry& registry_;
    std::string node_;
};

// ---- clock -------------------------------------------------------------------------------

class SystemClock : public Clock {
public:
    std::chrono::system_clock::time_point now() const override { return std::chrono::system_clock::now(); }
    std::chrono::steady_clock::time_point steady_now() const override { return std::chrono::steady_clock::now(); }
    void sleep_for(std::chrono::milliseconds duration) override;
};

// ---- the context one component sees ------------------------------------------------------

// What the runtime (and `docpipe extract`) hands a component: its own logger and metrics
// labelled with the node name, the shared state store and clock, which outlive it.
class NodeContext : public Context {
public:
    NodeContext(std::string name, std::shared_ptr<spdlog::logger> logger, bool json, MetricsRegistry& metrics,
                StateStore& state, Clock& clock)
        : name_(std::move(name)), logger_(std::move(logger), name_, json), metrics_(metrics, name_), state_(state), clock_(clock) {}
    const std::string& node_name() const override { return name_; }
    Logger& log() override { return logger_; }
    Metrics& metrics() override { return metrics_; }
    StateStore& state() override { return state_; }
    Clock& clock() override { return clock_; }
    bool amend_reference(std::string_view job_id, std::string_view doc_id, std::string_view key, std::string_view value) override {
        return reference_amender_ && reference_amender_(job_id, doc_id, key, value);
    }
    // The runtime's job book, reached through this (set before the component starts; unset:
    // `docpipe extract`, which keeps no jobs).
    using ReferenceAmender = std::function<bool(std::string_view, std::string_view, std::string_view, std::string_view)>;
    void set_reference_amender(ReferenceAmender amender) { reference_amender_ = std::move(amender); }

private:
    std::string name_;
    ReferenceAmender reference_amender_;
    NodeLogger logger_;
    NodeMetrics metrics_;
    StateStore& state_;
    Clock& clock_;
};

// ISO 8601 UTC with milliseconds: 2026-11-29T10:00:00.123Z
std::string iso8601(std::chrono::system_clock::time_point t);
// The same text appended to `out` (no temporary string: the delivery ledger stamps every delivery).
void append_iso8601(std::string& out, std::chrono::system_clock::time_point t);

}  // namespace docpipe::core
