// docpipe SDK — services the runtime gives every component: logger, metrics, state store,
// clock.
//
// Contract:
// - Ownership: the runtime owns the Context and everything reachable from it; it outlives
//   the component it was given to. Components keep the reference, never a copy.
// - Threading: every service here is safe to call from any thread at any time.
// - Privacy: never pass personal data (member ids, names, NRIC numbers) to the logger;
//   use `mask()` for values that might carry it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

namespace docpipe {

enum class LogLevel { Trace, Debug, Info, Warn, Error };

// A per-node logger. Messages carry the node name; pass the document id so every line
// about a document can be found by it (the correlation id).
class Logger {
public:
    virtual ~Logger() = default;
    virtual void log(LogLevel level, std::string_view message, std::string_view doc_id = {}) = 0;
    virtual bool enabled(LogLevel level) const = 0;

    template <typename... Args>
    void info(fmt::format_string<Args...> f, Args&&... args) { emit(LogLevel::Info, f, std::forward<Args>(args)...); }
    template <typename... Args>
    void warn(fmt::format_string<Args...> f, Args&&... args) { emit(LogLevel::Warn, f, std::forward<Args>(args)...); }
    template <typename... Args>
    void error(fmt::format_string<Args...> f, Args&&... args) { emit(LogLevel::Error, f, std::forward<Args>(args)...); }
    template <typename... Args>
    void debug(fmt::format_string<Args...> f, Args&&... args) { emit(LogLevel::Debug, f, std::forward<Args>(args)...); }

private:
    template <typename... Args>
    void emit(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
        if (enabled(level)) log(level, fmt::format(f, std::forward<Args>(args)...));
    }
};

// Keeps the first and last character of a value that may be personal data: "M1***5".
std::string mask(std::string_view value);

using Labels = std::map<std::string, std::string>;

// Prometheus-style metrics. Names are snake_case; the runtime prefixes "docpipe_" and
// adds the node label itself.
class Metrics {
public:
    virtual ~Metrics() = default;
    virtual void increment(std::string_view name, double by = 1, const Labels& labels = {}) = 0;
    virtual void set_gauge(std::string_view name, double value, const Labels& labels = {}) = 0;
    virtual void observe(std::string_view name, double value, const Labels& labels = {}) = 0;
};

// Durable key/value state shared by all nodes of a runtime (and, with the redis backend,
// between runtimes). Keys are namespaced by the caller, e.g. "dedup/<sha256>".
class StateStore {
public:
    virtual ~StateStore() = default;
    virtual std::optional<std::string> get(std::string_view key) = 0;
    // ttl 0 = keep forever.
    virtual void put(std::string_view key, std::string_view value,
                     std::chrono::seconds ttl = std::chrono::seconds{0}) = 0;
    // Atomically stores the value only if the key is absent (or expired); true if stored.
    virtual bool put_if_absent(std::string_view key, std::string_view value,
                               std::chrono::seconds ttl = std::chrono::seconds{0}) = 0;
    virtual bool erase(std::string_view key) = 0;
    // Keys starting with `prefix`, sorted, at most `limit`.
    virtual std::vector<std::string> keys(std::string_view prefix, std::size_t limit = 1000) = 0;
};

// Time source. Components use it instead of std::chrono clocks directly so the testing kit
// can run them on a manual clock.
class Clock {
public:
    virtual ~Clock() = default;
    virtual std::chrono::system_clock::time_point now() const = 0;
    virtual std::chrono::steady_clock::time_point steady_now() const = 0;
    virtual void sleep_for(std::chrono::milliseconds duration) = 0;
};

class Context {
public:
    virtual ~Context() = default;
    virtual const std::string& node_name() const = 0;
    virtual Logger& log() = 0;
    virtual Metrics& metrics() = 0;
    virtual StateStore& state() = 0;
    virtual Clock& clock() = 0;

    // For a sink that delivers a document after its own call returned (sink.sheets writes a
    // journaled row once Sheets is back): sets reference `key` to `value` on the document's
    // outcome in job `job_id` (the document's "job_id" attribute, or its own id for a source
    // document), and on the job's references where the document's old value stood. Returns
    // false when there is no such job, or the job has no settled outcome for `doc_id` yet,
    // or the runtime keeps no jobs (`docpipe extract`; this default). Blocks on the state
    // store; never throws.
    virtual bool amend_reference(std::string_view job_id, std::string_view doc_id, std::string_view key, std::string_view value) {
        (void)job_id, (void)doc_id, (void)key, (void)value;
        return false;
    }
};

}  // namespace docpipe
