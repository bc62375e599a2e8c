#include "services.hpp"

#include <sqlite3.h>

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "docpipe/testing.hpp"

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
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
    std::time_t tt = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
    return out;
}

// ---- SQLite state store ------------------------------------------------------------------

namespace {

class SqliteStateStore : public StateStore {
public:
    SqliteStateStore(const std::filesystem::path& path, Clock& clock) : clock_(clock) {
        if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
            std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            throw std::runtime_error("cannot open SQLite state store " + path.string() + ": " + why);
        }
        sqlite3_busy_timeout(db_, 5000);
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
        exec("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_ms INTEGER NOT NULL DEFAULT 0)");
    }
    ~SqliteStateStore() override { sqlite3_close(db_); }

    std::optional<std::string> get(std::string_view key) override {
        std::lock_guard lock(mutex_);
        Statement st(db_, "SELECT value FROM kv WHERE key=?1 AND (expires_ms=0 OR expires_ms>?2)");
        st.bind_text(1, key);
        sqlite3_bind_int64(st.s, 2, now_ms());
        if (st.step() != SQLITE_ROW) return std::nullopt;
        return std::string(static_cast<const char*>(sqlite3_column_blob(st.s, 0)), static_cast<std::size_t>(sqlite3_column_bytes(st.s, 0)));
    }
    void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
        std::lock_guard lock(mutex_);
        Statement st(db_, "INSERT OR REPLACE INTO kv(key,value,expires_ms) VALUES(?1,?2,?3)");
        st.bind_text(1, key);
        sqlite3_bind_blob(st.s, 2, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
        sqlite3_bind_int64(st.s, 3, expiry(ttl));
        st.done();
    }
    bool put_if_absent(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
        std::lock_guard lock(mutex_);
        // An expired row counts as absent: replace it; a live row wins.
        Statement st(db_,
                     "INSERT INTO kv(key,value,expires_ms) VALUES(?1,?2,?3) ON CONFLICT(key) DO UPDATE SET "
                     "value=excluded.value, expires_ms=excluded.expires_ms WHERE kv.expires_ms<>0 AND kv.expires_ms<=?4");
        st.bind_text(1, key);
        sqlite3_bind_blob(st.s, 2, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
        sqlite3_bind_int64(st.s, 3, expiry(ttl));
        sqlite3_bind_int64(st.s, 4, now_ms());
        st.done();
        return sqlite3_changes(db_) > 0;
    }
    bool erase(std::string_view key) override {
        std::lock_guard lock(mutex_);
        Statement st(db_, "DELETE FROM kv WHERE key=?1");
        st.bind_text(1, key);
        st.done();
        return sqlite3_changes(db_) > 0;
    }
    std::vector<std::string> keys(std::string_view prefix, std::size_t limit) override {
        std::lock_guard lock(mutex_);
        // Range scan on the primary key; no LIKE, so '%' and '_' in a prefix mean themselves.
        Statement st(db_, "SELECT key FROM kv WHERE key>=?1 AND (expires_ms=0 OR expires_ms>?2) ORDER BY key LIMIT ?3");
        st.bind_text(1, prefix);
        sqlite3_bind_int64(st.s, 2, now_ms());
        sqlite3_bind_int64(st.s, 3, static_cast<sqlite3_int64>(limit) * 4 + 16);
        std::vector<std::string> out;
        while (st.step() == SQLITE_ROW && out.size() < limit) {
            std::string k(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)));
            if (k.compare(0, prefix.size(), prefix) != 0) break;
            out.push_back(std::move(k));
        }
        return out;
    }

private:
    struct Statement {
        Statement(sqlite3* db, const char* sql) : db(db) {
            if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
                throw std::runtime_error(std::string("SQLite prepare failed: ") + sqlite3_errmsg(db));
        }
        ~Statement() { sqlite3_finalize(s); }
        void bind_text(int i, std::string_view v) { sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
        int step() { return sqlite3_step(s); }
        void done() {
            if (int rc = step(); rc != SQLITE_DONE) throw std::runtime_error(std::string("SQLite write failed: ") + sqlite3_errmsg(db));
        }
        sqlite3* db;
        sqlite3_stmt* s = nullptr;
    };
    void exec(const char* sql) {
        char* err = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string why = err ? err : "?";
            sqlite3_free(err);
            throw std::runtime_error(std::string("SQLite: ") + sql + ": " + why);
        }
    }
    std::int64_t now_ms() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
    }
    std::int64_t expiry(std::chrono::seconds ttl) const { return ttl.count() > 0 ? now_ms() + ttl.count() * 1000 : 0; }

    Clock& clock_;
    std::mutex mutex_;
    sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<StateStore> open_state_store(const std::string& backend, const std::filesystem::path& path, Clock& clock) {
    if (backend == "memory") return std::make_unique<testing::MemoryStateStore>(clock);
    if (backend == "sqlite") return std::make_unique<SqliteStateStore>(path, clock);
    throw std::invalid_argument("unknown state backend '" + backend + "' (sqlite or memory)");
}

}  // namespace docpipe::core
