// The admin HTTP server: health, readiness, detailed health, Prometheus metrics, the
// /api/v1 JSON API (jobs, stats, review queue) behind API keys, a per-client rate limit and
// a body cap, and the review web UI at /ui/ (static files compiled in; see core/src/ui/).
//
// Ownership/threading: the Runtime owns the AdminServer and the AdminBackend it talks to,
// and stops the server before tearing anything down. Handlers run on the server's own
// thread pool and call the backend concurrently, so AdminBackend must be thread-safe.
// The HTTP library (Boost.Beast/Asio) stays inside admin_server.cpp: its headers are heavy.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "docpipe/component.hpp"
#include "docpipe/context.hpp"
#include "state/store.hpp"

namespace docpipe::core {

struct AdminSettings {
    std::string host = "127.0.0.1";
    int port = 8080;                  // 0 = any free port (tests)
    std::vector<std::string> api_keys;
    // Who holds each key, parallel to api_keys (admin.api_keys entries {label, key}); the
    // label is recorded with every review action. A key without one is "key N" (1-based, its
    // place in admin.api_keys; the runtime names it so).
    std::vector<std::string> api_key_labels;
    bool protect_metrics = true;      // /metrics needs a key too
    double rate_per_second = 20;      // per client address; token bucket
    int burst = 40;
    std::size_t max_body_bytes = 1 << 20;
    // /health/detailed runs every probe and a state-store round trip and names hosts in its
    // errors; when true it needs a key like /api/. Off by default: existing probes call it bare.
    bool protect_health_detailed = false;
    // A new connection must deliver its whole request head within this (a total deadline, not
    // per read, so a client dripping a byte at a time is cut off too).
    std::chrono::milliseconds request_head_timeout{5000};
    // A kept-alive connection may sit idle this long between requests.
    std::chrono::milliseconds keep_alive_idle_timeout{5000};
    // Open connections per client address and in all; more are answered 503 and closed.
    int max_connections_per_client = 32;
    int max_connections = 512;
    // Refused requests (401/403/429, connection caps) are logged at most once per client
    // address per interval, with the number left out.
    std::chrono::milliseconds refusal_log_interval{10000};
};

// What a review or retry action did; the server maps it to an HTTP status.
struct ActionResult {
    // Malformed: the request cannot be carried out as asked whatever the values (400), e.g. a
    // job-wide correction of a field the job's documents disagree on. Invalid: a value is
    // wrong (422).
    enum class Outcome { Done, NotFound, Conflict, Invalid, Malformed, Unavailable };
    Outcome outcome = Outcome::Done;
    std::string message;                                     // why not, for a person
    nlohmann::json field_errors = nlohmann::json::object();  // Invalid, Malformed: field -> what is wrong with it
    nlohmann::json audit = nlohmann::json::object();         // Done: facts for the action's audit entry (approve: changes)
    static ActionResult done() { return {}; }
    static ActionResult fail(Outcome o, std::string why, nlohmann::json fields = nlohmann::json::object());
};

// A reviewer's corrections to a job in review. `fields` applies to every parked document of
// the job; `documents` to one document each and wins over `fields` for the same field. A
// job-wide correction of a field whose value differs between the job's documents is
// refused (Malformed): which document's value was wrong is not known.
struct Corrections {
    nlohmann::json fields = nlohmann::json::object();     // field -> corrected value
    nlohmann::json documents = nlohmann::json::object();  // doc id -> {field -> corrected value}
};

// What the server asks the runtime. All methods are called from server threads.
class AdminBackend {
public:
    virtual ~AdminBackend() = default;
    virtual bool ready(std::string& why_not) = 0;
    virtual nlohmann::json health_detailed() = 0;
    virtual std::string metrics_text() = 0;
    virtual Store& store() = 0;
    // Re-runs a failed job from its dead letter. Done when started. The server maps the
    // outcome: NotFound 404, Conflict 409 (e.g. the job is no longer failed), Invalid 422
    // (field_errors become the error details), Unavailable 503 with Retry-After.
    virtual ActionResult retry_job(const std::string& id) = 0;
    // Review queue decisions; outcomes as for retry_job (Conflict: no longer in review,
    // e.g. another reviewer acted first; Malformed 400: corrections naming a document that
    // is not parked, or an ambiguous job-wide one). A Done approval fills `audit` with
    // `changes` ({field: {from, to}}: the document's for a one-document job, else the
    // job-wide corrections) and `documents` ({doc id: {name, changes}} per changed document).
    virtual ActionResult approve(const std::string& id, const Corrections& corrections, const std::string& notes) = 0;
    virtual ActionResult reject(const std::string& id, const std::string& reason) = 0;
    // A job that failed after its approval (e.g. the NCB refused the corrected claim) goes
    // back to the review queue with its parked documents; Conflict when it is not failed.
    virtual ActionResult return_to_review(const std::string& id) = 0;
    // A request to /hooks/<node>[/...]: handed to that node's component when it offers
    // HttpHook (it authenticates the caller itself); nullopt when the node has no hook.
    virtual std::optional<HookResponse> hook(const std::string& node, const HookRequest& request) {
        (void)node;
        (void)request;
        return std::nullopt;
    }
};

class AdminServer {
public:
    AdminServer(AdminSettings settings, AdminBackend& backend, Logger& log);
    ~AdminServer();
    // Binds and starts serving on a background thread; throws std::runtime_error when the
    // address cannot be bound.
    void start();
    void stop();
    int port() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Splits "host:port"; throws std::invalid_argument with the value on a bad address.
std::pair<std::string, int> parse_listen_address(const std::string& listen);
bool is_loopback_host(const std::string& host);
// A random key of 64 hex digits (256 bits) from OpenSSL's CSPRNG.
std::string generate_api_key();
// Compares in time independent of where the strings differ (and of their lengths).
bool keys_equal(const std::string& a, const std::string& b);

}  // namespace docpipe::core
