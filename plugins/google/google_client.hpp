// What sink.sheets and sink.drive share: the configuration that reaches Google (credentials,
// base URL, timeouts, CA file, circuit breaker), one authenticated HTTP client built from it,
// and one reading of Google's answers as SinkResults, so both sinks behave alike.
//
// Contract
// - Configuration (add_client_fields): `credentials_file` names a service-account key or an
//   authorized-user JSON file. The *path* is configuration, the secret stays in the file:
//   under systemd, `LoadCredential=google.json:/etc/docpipe/google.json` and
//   `credentials_file: ${CREDENTIALS_DIRECTORY}/google.json` (not ${file:...}, which would
//   paste the key itself into the configuration). Empty: the file named by
//   $GOOGLE_APPLICATION_CREDENTIALS. A missing or unreadable file, or a key OpenSSL cannot
//   read, fails the pipeline start with the path and what is wrong.
// - What an answer means (failure()):
//     2xx                      the caller's success; clears the health problems below
//     401                      the token is invalidated and the call repeated once with a new
//                              one; a second 401 holds the document and health says what to check
//     token refused (AuthError) hold; health Unavailable with Google's reason and the fix
//     429, 403 rate limit      hold for Retry-After, else Google's 1, 2, 4, 8, 16 s + jitter
//     403 (permission), 404    a configuration problem (not shared with the account, wrong id,
//                              no shared drive): hold; health Unavailable saying what to check
//     408, 5xx, no answer      hold with backoff; `breaker_threshold` in a row open the breaker
//     other 4xx                fail: Google refused this document's request (its message kept)
//   A hold is not the document's fault: the runtime keeps it and tries again without using
//   up its attempts, until the node's retry.hold_for has passed.
// - Errors inside a sink's write() travel as `Stop` (thrown by value, caught at the top of
//   write()), so a sequence of calls reads straight.
// - Threading: send() and everything else here may be called from any number of threads.
// - Privacy: nothing here logs request or response bodies, headers or tokens; messages carry
//   ids, statuses and Google's error text only.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/component.hpp"
#include "docpipe/net/google_auth.hpp"
#include "docpipe/net/http.hpp"

namespace docpipe::google {

// Ends a sink's write() with `result` (a hold, or a fail).
struct Stop {
    SinkResult result;
};

// Adds the fields both sinks share (each sink adds its own base URL fields).
void add_client_fields(ConfigSpec& spec);
// "https://host/path" without a trailing slash; throws std::invalid_argument naming the field.
std::string base_url(const Config& config, const std::string& field);

class GoogleClient {
public:
    // `service` names the API in messages ("Sheets", "Drive"); `resource_hint` says what the
    // account needs access to ("the spreadsheet <id>").
    GoogleClient(const Config& config, Context& ctx, std::string service, std::vector<std::string> scopes, std::string resource_hint);

    // Sends with `Authorization: Bearer`, through the circuit breaker; any HTTP status comes
    // back. Throws Stop (breaker open, token not available) or net::TransportError.
    net::HttpResponse send(net::HttpRequest request);
    // send(), and Stop for anything but 2xx (or a transport failure).
    net::HttpResponse expect_ok(net::HttpRequest request, std::string_view what);

    // The SinkResult for a non-2xx answer to `what` ("append to 'Claims 2026-11'").
    SinkResult failure(const net::HttpResponse& response, std::string_view what);
    SinkResult unreachable(const net::TransportError& error, std::string_view what);

    HealthReport health(std::string healthy_detail) const;
    std::string account() const { return auth_->account(); }
    Context& context() { return ctx_; }
    std::chrono::milliseconds upload_timeout() const { return upload_timeout_; }
    // `text` with the access tokens this client sent and the credentials' secrets (client
    // secret, refresh token, private key) replaced by "[secret]": an error text from Google or
    // a proxy may echo the request (its Authorization header), and that text goes into logs,
    // job reasons and /health/detailed.
    std::string redact(std::string text) const;
    // Adds a secret redact() hides from now on (a token another client of the caller sent).
    void add_secret(std::string_view secret);

private:
    SinkResult endpoint_down(std::string why, std::optional<std::chrono::milliseconds> hint);
    void set_problem(std::string& slot, std::string why);
    void clear_problems();

    Context& ctx_;
    const std::string service_;
    const std::string resource_hint_;
    net::HttpClient http_;
    std::unique_ptr<net::GoogleAuth> auth_;  // refers to http_
    net::CircuitBreaker breaker_;
    std::chrono::milliseconds upload_timeout_;
    std::atomic<int> rate_limited_in_a_row_{0};

    mutable std::mutex secrets_mutex_;
    std::vector<std::string> fixed_secrets_;   // from the credentials file
    std::deque<std::string> recent_tokens_;    // the last few access tokens sent (a refresh makes a new one)
    mutable std::mutex problems_mutex_;
    std::string auth_problem_;    // credentials or token refused, until a success
    std::string config_problem_;  // 403 permission / 404 on the configured resource, until a success
};

// ---- small helpers both sinks use ---------------------------------------------------------

std::string sha256_hex(const void* data, std::size_t size);
std::string random_hex(std::size_t bytes);
// A document attribute, or "" when absent.
std::string attribute(const Document& doc, const std::string& name);
// Reads "2024-12-24T14:30:00+08:00", "...Z", "2024-12-24 14:30:00", "2024-12-24" (taken as
// midnight at `default_offset_minutes`) and epoch seconds or milliseconds.
std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text, int default_offset_minutes);

struct LocalDate {
    int year = 0, month = 0, day = 0;
};
LocalDate local_date(std::chrono::system_clock::time_point t, int utc_offset_minutes);

}  // namespace docpipe::google
