// The admin HTTP server: health, readiness, detailed health, Prometheus metrics and the
// /api/v1 JSON API (jobs, stats), behind API keys, a per-client rate limit and a body cap.
//
// Ownership/threading: the Runtime owns the AdminServer and the AdminBackend it talks to,
// and stops the server before tearing anything down. Handlers run on the server's own
// thread pool and call the backend concurrently, so AdminBackend must be thread-safe.
// cpp-httplib stays inside admin_server.cpp (it is a heavy header).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "docpipe/context.hpp"
#include "state/store.hpp"

namespace docpipe::core {

struct AdminSettings {
    std::string host = "127.0.0.1";
    int port = 8080;                  // 0 = any free port (tests)
    std::vector<std::string> api_keys;
    bool protect_metrics = true;      // /metrics needs a key too
    double rate_per_second = 20;      // per client address; token bucket
    int burst = 40;
    std::size_t max_body_bytes = 1 << 20;
};

// What the server asks the runtime. All methods are called from server threads.
class AdminBackend {
public:
    virtual ~AdminBackend() = default;
    virtual bool ready(std::string& why_not) = 0;
    virtual nlohmann::json health_detailed() = 0;
    virtual std::string metrics_text() = 0;
    virtual Store& store() = 0;
    // Re-runs a failed job from its dead letter. Returns "" when started, else why not.
    virtual std::string retry_job(const std::string& id) = 0;
    // Review queue. Both return "" on success, else why not (a validation problem).
    virtual std::string approve(const std::string& id, const nlohmann::json& corrections, const std::string& notes) = 0;
    virtual std::string reject(const std::string& id, const std::string& reason) = 0;
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
