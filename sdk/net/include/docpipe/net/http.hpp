// docpipe network support — one HTTP client for every plugin that talks to a web API
// (the NCB claims API, Google Sheets/Drive/Gmail/Pub/Sub), plus the rules they share:
// Retry-After parsing, retryable-or-not classification, and a circuit breaker.
//
// Contract
// - Ownership: an HttpClient holds only its options; it may be shared by reference between
//   threads and components. Responses are plain values owned by the caller.
// - Threading: HttpClient::send is safe from any number of threads at once. Each thread
//   keeps one libcurl easy handle, reused across calls and clients, so connections to the
//   same host are reused per thread (keep-alive) and never shared between threads.
//   CircuitBreaker is thread-safe.
// - Network behaviour: TLS verification is always on (the CA file is configurable, the
//   system store is the default); the standard proxy variables (https_proxy, http_proxy,
//   no_proxy) are honoured by libcurl; every call has a connect and a total timeout.
// - Errors: a transport failure (DNS, connect, TLS, timeout, broken connection) throws
//   TransportError; an HTTP status of any kind is a response, not an exception: classify()
//   says what it means.
// - Privacy: nothing here logs. Callers must not log request bodies, and never headers
//   (they carry credentials).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace docpipe::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    Headers headers;  // e.g. {"Content-Type", "application/json"}
    std::string body;
    // 0 = the client's default total timeout.
    std::chrono::milliseconds timeout{0};
};

struct HttpResponse {
    long status = 0;
    Headers headers;  // names lower-cased, in the order received
    std::string body;

    // The first header with this name (case-insensitive), if any.
    std::optional<std::string> header(std::string_view name) const;
    bool ok() const { return status >= 200 && status < 300; }
};

// No usable HTTP answer: the request may or may not have reached the server.
class TransportError : public std::runtime_error {
public:
    TransportError(const std::string& what, bool timed_out, bool answer_too_large = false)
        : std::runtime_error(what), timed_out(timed_out), answer_too_large(answer_too_large) {}
    bool timed_out;
    // The server did answer, with more than HttpClientOptions::max_response_bytes: it is
    // reachable, and what answers is probably not the API (a proxy, a wrong address).
    bool answer_too_large;
};

struct HttpClientOptions {
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds total_timeout{30'000};
    std::string ca_file;  // PEM bundle; empty = the system's trust store
    std::string user_agent = "docpipe";
    // The largest answer body kept, counted after decompression: a server (or a proxy in front
    // of it) sending more, or a small gzip that unpacks to gigabytes, ends the call with a
    // TransportError instead of the process running out of memory. Gmail takes messages of
    // up to 50 MB (150 MB imported), 200 MB as base64 in messages.get's raw.
    std::size_t max_response_bytes = 256u << 20;
};

class HttpClient {
public:
    explicit HttpClient(HttpClientOptions options = {});
    // Sends one request and returns whatever status came back. Throws TransportError.
    HttpResponse send(const HttpRequest& request) const;
    const HttpClientOptions& options() const { return options_; }

private:
    HttpClientOptions options_;
};

// Percent-encodes a URL path segment or query value (RFC 3986 unreserved characters stay).
std::string url_encode(std::string_view value);
// application/x-www-form-urlencoded body from name/value pairs.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

// ---- what a status means ------------------------------------------------------------------

// The value of a Retry-After header: delay-seconds ("120") or an HTTP date
// ("Wed, 21 Oct 2026 07:28:00 GMT"), relative to `now`. nullopt when absent or unreadable;
// a date in the past gives 0.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now);

enum class FailureKind {
    None,         // 2xx
    Retryable,    // 408, 500, 502, 503, 504: try again later
    RateLimited,  // 429, or 403 with a rate-limit reason (Google): try again after Retry-After
    Auth,         // 401: the credentials were refused; retrying the same call cannot help
    Permanent,    // other 4xx: this request is wrong
};
const char* to_string(FailureKind kind);

struct Classified {
    FailureKind kind = FailureKind::None;
    std::string message;  // the server's own error message when it sent one, else the status
    std::string reason;   // a machine reason when the body names one (Google errors[0].reason, ErrorInfo reason, "error" of OAuth)
    std::optional<std::chrono::milliseconds> retry_after;
};

// Reads the status, the Retry-After header and the error body. Understands Google's error
// envelope ({"error":{"code","message","errors":[{"reason"}],"status","details"}}), the
// OAuth token endpoint's ({"error","error_description"}) and {"error":{"code","message"}}.
Classified classify(const HttpResponse& response, std::chrono::system_clock::time_point now);

// Exponential backoff with jitter for a client's own retries: initial * multiplier^(n-1),
// capped, plus a random share of up to `jitter`. `attempt` counts from 1.
std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds initial, std::chrono::milliseconds cap,
                                        double multiplier = 2.0, std::chrono::milliseconds jitter = std::chrono::milliseconds(1000));

// ---- circuit breaker ----------------------------------------------------------------------

// Stops calling an endpoint that keeps failing. Closed: calls go out. After `threshold`
// failures in a row it opens for `open_for`: calls are refused without touching the
// network. Then it lets one trial call through (half-open): success closes it, failure
// opens it again.
class CircuitBreaker {
public:
    enum class State { Closed, Open, HalfOpen };
    using clock = std::chrono::steady_clock;

    CircuitBreaker(int threshold, std::chrono::milliseconds open_for);

    // nullopt: call now. Otherwise how long until a call may be tried.
    std::optional<std::chrono::milliseconds> refuse(clock::time_point now);
    void record_success();
    void record_failure(clock::time_point now, std::string why);
    // The trial call ended without an answer to judge by (the caller gave up before calling,
    // or failed for its own reasons): the next call may make the trial. Without this a trial
    // that records nothing left the breaker half-open, refusing every call, for good.
    void release_trial();

    State state() const;
    int consecutive_failures() const;
    std::string last_failure() const;

private:
    const int threshold_;
    const std::chrono::milliseconds open_for_;
    mutable std::mutex mutex_;
    State state_ = State::Closed;
    int failures_ = 0;
    clock::time_point opened_at_{};
    bool trial_in_flight_ = false;
    std::string last_failure_;
};
const char* to_string(CircuitBreaker::State state);

}  // namespace docpipe::net
