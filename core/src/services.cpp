#include "services.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>


namespace docpipe::core {

// ---- logging -----------------------------------------------------------------------------

std::shared_ptr<spdlog::logger> make_process_logger(const std::string& format, const std::string& level) {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("docpipe", sink);
    if (format == "json") logger->set_pattern("%v", spdlog::pattern_time_type::utc);
    else logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::warn);
    return logger;
}

static spdlog::level::level_enum to_spdlog(LogLevel level) {
    switch (level) {
        case LogLevel::Trace: return spdlog::level::trace;
        case LogLevel::Debug: return spdlog::level::debug;
        case LogLevel::Info: return spdlog::level::info;
        case LogLevel::Warn: return spdlog::level::warn;
        case LogLevel::Error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

NodeLogger::NodeLogger(std::shared_ptr<spdlog::logger> sink, std::string node, bool json)
    : sink_(std::move(sink)), node_(std::move(node)), json_(json) {}

bool NodeLogger::enabled(LogLevel level) const { return sink_->should_log(to_spdlog(level)); }

void NodeLogger::log(LogLevel level, std::string_view message, std::string_view doc_id) {
    const auto lvl = to_spdlog(level);
    if (!sink_->should_log(lvl)) return;
    if (json_) {
        nlohmann::json line{{"ts", iso8601(std::chrono::system_clock::now())},
                            {"level", spdlog::level::to_string_view(lvl).data()},
                            {"node", node_},
                            {"msg", message}};
        if (!doc_id.empty()) line["doc"] = doc_id;
        sink_->log(lvl, "{}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else if (doc_id.empty()) {
        sink_->log(lvl, "[{}] {}", node_, message);
    } else {
        sink_->log(lvl, "[{}] {} (doc={})", node_, message, doc_id);
    }
}

// ---- metrics -----------------------------------------------------------------------------

namespace {
// Seconds; covers a no-op transform (µs) up to a slow OCR page (tens of seconds).
const std::vector<double> kBuckets = {0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

std::string escape_label(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') { out += "\\n"; continue; }
        out += c;
    }
    return out;
}

std::string format_number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    std::ostringstream s;
    s.precision(15);
    s << v;
    return s.str();
}
}  // namespace

std::string MetricsRegistry::key(std::string_view name, const Labels& labels) {
    std::string k(name);
    if (!labels.empty()) {
        k += '{';
        bool first = true;
        for (const auto& [lk, lv] : labels) {
            if (!first) k += ',';
            first = false;
            k += lk + "=\"" + escape_label(lv) + "\"";
        }
        k += '}';
    }
    return k;
}

void MetricsRegistry::increment(std::string_view name, double by, const Labels& labels) {
    std::lock_guard lock(mutex_);
    auto& s = series_[key(name, labels)];
    s.kind = Series::Counter;
    s.value += by;
}

void MetricsRegistry::set_gauge(std::string_view name, double value, const Labels& labels) {
    std::lock_guard lock(mutex_);
    auto& s = series_[key(name, labels)];
    s.kind = Series::Gauge;
    s.value = value;
}

void MetricsRegistry::observe(std::string_view name, double value, const Labels& labels) {
    std::lock_guard lock(mutex_);
    auto& s = series_[key(name, labels)];
    s.kind = Series::Histogram;
    if (s.bucket_counts.empty()) s.bucket_counts.assign(kBuckets.size(), 0);
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
        if (value <= kBuckets[i]) s.bucket_counts[i] += 1;
    s.sum += value;
    s.count += 1;
}

double MetricsRegistry::value(std::string_view name, const Labels& labels) const {
    std::lock_guard lock(mutex_);
    auto it = series_.find(key(name, labels));
    if (it == series_.end()) return 0;
    return it->second.kind == Series::Histogram ? static_cast<double>(it->second.count) : it->second.value;
}

std::string MetricsRegistry::render_prometheus() const {
    std::lock_guard lock(mutex_);
    std::string out;
    std::string last_name;
    for (const auto& [k, s] : series_) {
        auto brace = k.find('{');
        std::string name = "docpipe_" + k.substr(0, brace);
        std::string labels = brace == std::string::npos ? "" : k.substr(brace + 1, k.size() - brace - 2);
        if (name != last_name) {
            out += "# TYPE " + name + (s.kind == Series::Counter ? " counter\n" : s.kind == Series::Gauge ? " gauge\n" : " histogram\n");
            last_name = name;
        }
        if (s.kind != Series::Histogram) {
            out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + format_number(s.value) + "\n";
            continue;
        }
        std::string sep = labels.empty() ? "" : labels + ",";
        for (std::size_t i = 0; i < kBuckets.size(); ++i)
            out += name + "_bucket{" + sep + "le=\"" + format_number(kBuckets[i]) + "\"} " + format_number(s.bucket_counts[i]) + "\n";
        out += name + "_bucket{" + sep + "le=\"+Inf\"} " + std::to_string(s.count) + "\n";
        out += name + "_sum" + (labels.empty() ? "" : "{" + labels + "}") + " " + format_number(s.sum) + "\n";
        out += name + "_count" + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(s.count) + "\n";
    }
    return out;
}

Labels NodeMetrics::with_node(const Labels& labels) const {
    Labels l = labels;
    l["node"] = node_;
    return l;
}
void NodeMetrics::increment(std::string_view name, double by, const Labels& labels) { registry_.increment(name, by, with_node(labels)); }
void NodeMetrics::set_gauge(std::string_view name, double value, const Labels& labels) { registry_.set_gauge(name, value, with_node(labels)); }
void NodeMetrics::observe(std::string_view name, double value, const Labels& labels) { registry_.observe(name, value, with_node(labels)); }

void SystemClock::sleep_for(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

std::string iso8601(std::chrono::system_clock::time_point t) {
    // Written by hand rather than with gmtime_r + strftime: the delivery ledger stamps every
    // delivery with it, on the graph's hot path. The date comes from the day count with the
    // proleptic Gregorian calendar (eras of 400 years), as std::chrono's year_month_day does.
    using namespace std::chrono;
    const auto ms_total = duration_cast<milliseconds>(t.time_since_epoch()).count();
    std::int64_t days = ms_total / 86'400'000;
    std::int64_t ms_of_day = ms_total % 86'400'000;
    if (ms_of_day < 0) {
        ms_of_day += 86'400'000;
        --days;
    }
    const year_month_day date{sys_days{std::chrono::days{days}}};
    const int year = static_cast<int>(date.year());
    const unsigned month = static_cast<unsigned>(date.month()), day = static_cast<unsigned>(date.day());
    const auto hours = ms_of_day / 3'600'000, minutes = ms_of_day / 60'000 % 60, seconds = ms_of_day / 1000 % 60, millis = ms_of_day % 1000;
    char out[40];
    const int n = std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", year, month, day, static_cast<int>(hours),
                                static_cast<int>(minutes), static_cast<int>(seconds), static_cast<int>(millis));
    return std::string(out, static_cast<std::size_t>(n));
}

}  // namespace docpipe::core
