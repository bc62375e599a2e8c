#include "google_client.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "docpipe/secrets.hpp"

namespace docpipe::google {

using std::chrono::milliseconds;
using std::chrono::seconds;

void add_client_fields(ConfigSpec& spec) {
    // Duration ranges are in seconds.
    spec.add(Field::string("credentials_file")
                 .path()
                 .default_value("")
                 .describe("Path of the Google credentials JSON: a service-account key or an authorized-user file. The path is "
                           "configuration, the secret stays in the file: under systemd use LoadCredential=google.json:/etc/docpipe/"
                           "google.json and credentials_file: ${CREDENTIALS_DIRECTORY}/google.json (not ${file:...}, which would paste "
                           "the key into the configuration). Empty: the file named by $GOOGLE_APPLICATION_CREDENTIALS"));
    spec.add(Field::string("subject").default_value("").describe(
        "Service accounts only: the Workspace user to act for (domain-wide delegation); empty: act as the service account"));
    spec.add(Field::string("token_url").default_value("").describe(
        "OAuth token endpoint; empty: the credentials file's token_uri (Google's https://oauth2.googleapis.com/token)"));
    spec.add(Field::duration("timeout").default_value("30s").min(1).describe("Longest time one API call may take"));
    spec.add(Field::duration("connect_timeout").default_value("5s").min(0.1).describe("Longest time to open a connection"));
    spec.add(Field::duration("upload_timeout")
                 .default_value("10m")
                 .min(1)
                 .describe("Longest time one upload request (a multipart upload or one resumable chunk) may take"));
    spec.add(Field::string("ca_file").path().default_value("").describe("PEM file of CAs to trust for Google's TLS certificates; empty: the system's"));
    spec.add(Field::integer("breaker_threshold").default_value(5).min(1).describe(
        "Failures in a row (5xx, no answer, credentials refused) that open the circuit breaker"));
    spec.add(Field::duration("breaker_open_for").default_value("30s").min(0.1).describe(
        "How long the breaker stays open before one trial call"));
}

std::string base_url(const Config& config, const std::string& field) {
    std::string url = config.get_string(field);
    if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0)
        throw std::invalid_argument(fmt::format("{} '{}' must start with https:// (or http:// for a local test server)", field, url));
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
}

namespace {

std::filesystem::path credentials_path(const Config& config) {
    std::string path = config.get_string("credentials_file");
    if (path.empty()) {
        if (const char* env = std::getenv("GOOGLE_APPLICATION_CREDENTIALS"); env && *env) path = env;
    }
    if (path.empty())
        throw std::invalid_argument(
            "credentials_file is empty and GOOGLE_APPLICATION_CREDENTIALS is not set: give the path of a service-account key or "
            "authorized-user JSON file (e.g. ${CREDENTIALS_DIRECTORY}/google.json with systemd LoadCredential=)");
    return path;
}

net::GoogleCredentials load_credentials(const Config& config) {
    auto credentials = net::GoogleCredentials::load_file(credentials_path(config));
    // Read the key now, so a broken key fails the start instead of every document.
    if (credentials.type == net::GoogleCredentials::Type::ServiceAccount) {
        try {
            (void)net::sign_jwt_rs256(nlohmann::json::object(), credentials.private_key_pem);
        } catch (const std::exception& e) {
            throw std::invalid_argument(credentials.origin + ": " + e.what());
        }
    }
    return credentials;
}

}  // namespace

GoogleClient::GoogleClient(const Config& config, Context& ctx, std::string service, std::vector<std::string> scopes,
                           std::string resource_hint)
    : ctx_(ctx),
      service_(std::move(service)),
      resource_hint_(std::move(resource_hint)),
      http_(net::HttpClientOptions{config.get_duration("connect_timeout"), config.get_duration("timeout"), config.get_string("ca_file"),
                                   "docpipe-google"}),
      breaker_(static_cast<int>(config.get_int("breaker_threshold")), config.get_duration("breaker_open_for")),
      upload_timeout_(config.get_duration("upload_timeout")) {
    net::GoogleAuthOptions options;
    options.scopes = std::move(scopes);
    options.token_url = config.get_string("token_url");
    options.subject = config.get_string("subject");
    // Two quick tries: a token endpoint that stays down is a hold, and the runtime waits.
    options.attempts = 2;
    options.initial_backoff = milliseconds(500);
    auto credentials = load_credentials(config);
    for (const std::string* secret : {&credentials.client_secret, &credentials.refresh_token, &credentials.private_key_pem})
        if (!secret->empty()) fixed_secrets_.push_back(*secret);
    auth_ = std::make_unique<net::GoogleAuth>(std::move(credentials), std::move(options), http_);
}

void GoogleClient::add_secret(std::string_view secret) {
    if (secret.empty()) return;
    std::lock_guard lock(secrets_mutex_);
    if (std::find(recent_tokens_.begin(), recent_tokens_.end(), secret) != recent_tokens_.end()) return;
    recent_tokens_.emplace_back(secret);
    while (recent_tokens_.size() > 8) recent_tokens_.pop_front();  // older tokens expired long ago
}

std::string GoogleClient::redact(std::string text) const {
    std::lock_guard lock(secrets_mutex_);
    std::vector<std::string_view> secrets(fixed_secrets_.begin(), fixed_secrets_.end());
    secrets.insert(secrets.end(), recent_tokens_.begin(), recent_tokens_.end());
    return mask_secrets(std::move(text), std::move(secrets));
}

void GoogleClient::set_problem(std::string& slot, std::string why) {
    std::lock_guard lock(problems_mutex_);
    slot = std::move(why);
}

void GoogleClient::clear_problems() {
    std::lock_guard lock(problems_mutex_);
    auth_problem_.clear();
    config_problem_.clear();
}

net::HttpResponse GoogleClient::send(net::HttpRequest request) {
    if (auto wait = breaker_.refuse(ctx_.clock().steady_now()))
        throw Stop{SinkResult::hold(*wait, fmt::format("{} circuit breaker open after {} failures in a row (last: {})", service_,
                                                        breaker_.consecutive_failures(), breaker_.last_failure()))};
    request.headers.emplace_back("Authorization", "");
    const std::size_t auth_header = request.headers.size() - 1;
    for (int attempt = 1;; ++attempt) {
        try {
            request.headers[auth_header].second = auth_->authorization();
            add_secret(std::string_view(request.headers[auth_header].second).substr(7));  // after "Bearer "
        } catch (const net::AuthError& e) {
            // Google refused the credentials: nothing works until a person fixes them.
            const std::string why = redact(e.what());
            set_problem(auth_problem_, why);
            breaker_.record_failure(ctx_.clock().steady_now(), why);
            ctx_.metrics().increment("google_auth_refused_total");
            throw Stop{endpoint_down(why, std::nullopt)};
        } catch (const std::exception& e) {
            const std::string why = redact(e.what());
            breaker_.record_failure(ctx_.clock().steady_now(), why);
            throw Stop{endpoint_down(fmt::format("no Google access token: {}", why), std::nullopt)};
        }
        net::HttpResponse response;
        try {
            response = http_.send(request);
        } catch (const net::TransportError& e) {
            breaker_.record_failure(ctx_.clock().steady_now(), e.what());
            throw;
        }
        if (response.status == 401 && attempt == 1) {
            // The token may have been revoked or expired early: one more try with a new one.
            auth_->invalidate();
            continue;
        }
        const long s = response.status;
        if (s == 401 || s == 408 || s >= 500) breaker_.record_failure(ctx_.clock().steady_now(), fmt::format("HTTP {}", s));
        else breaker_.record_success();
        if (s >= 200 && s < 300) {
            rate_limited_in_a_row_.store(0, std::memory_order_relaxed);
            clear_problems();
        }
        return response;
    }
}

net::HttpResponse GoogleClient::expect_ok(net::HttpRequest request, std::string_view what) {
    net::HttpResponse response;
    try {
        response = send(std::move(request));
    } catch (const net::TransportError& e) {
        throw Stop{unreachable(e, what)};
    }
    if (!response.ok()) throw Stop{failure(response, what)};
    return response;
}

SinkResult GoogleClient::endpoint_down(std::string why, std::optional<milliseconds> hint) {
    ctx_.metrics().increment("google_unavailable_total");
    const int n = std::max(1, breaker_.consecutive_failures());
    return SinkResult::hold(hint ? *hint : net::backoff_delay(n, milliseconds(1000), seconds(60), 2.0, milliseconds(1000)), std::move(why));
}

SinkResult GoogleClient::unreachable(const net::TransportError& error, std::string_view what) {
    return endpoint_down(fmt::format("{} unreachable ({}): {}", service_, what, error.what()), std::nullopt);
}

SinkResult GoogleClient::failure(const net::HttpResponse& response, std::string_view what) {
    auto c = net::classify(response, ctx_.clock().now());
    c.message = redact(std::move(c.message));
    switch (c.kind) {
        case net::FailureKind::None:
            return SinkResult::ok();
        case net::FailureKind::RateLimited: {
            // Google's rule: 1, 2, 4, 8, 16 s, each plus up to 1 s, unless it says how long.
            const int n = rate_limited_in_a_row_.fetch_add(1, std::memory_order_relaxed) + 1;
            ctx_.metrics().increment("google_rate_limited_total");
            const auto wait = c.retry_after ? *c.retry_after : net::backoff_delay(n, milliseconds(1000), seconds(16), 2.0, milliseconds(1000));
            return SinkResult::hold(wait, fmt::format("{} rate limit ({}): {}", service_, what, c.message));
        }
        case net::FailureKind::Auth: {
            const std::string why = fmt::format(
                "{} refused a fresh access token for {} ({}; {}): check that the {} API is enabled in the credentials' Google Cloud "
                "project, and that the credentials file is current",
                service_, account(), what, c.message, service_);
            set_problem(auth_problem_, why);
            return endpoint_down(why, c.retry_after);
        }
        case net::FailureKind::Retryable:
            return endpoint_down(fmt::format("{} unavailable ({}): {}", service_, what, c.message), c.retry_after);
        case net::FailureKind::Permanent:
            break;
    }
    if (response.status == 403 || response.status == 404) {
        // Not this document's fault: every document would get the same answer until the
        // spreadsheet or folder is shared with the account (or the configured id fixed).
        std::string why = fmt::format("{} refused {} ({}{}): check that {} exists and that {} may edit it", service_, what, c.message,
                                      c.reason.empty() ? "" : ", " + c.reason, resource_hint_, account());
        if (c.reason == "storageQuotaExceeded")
            why += "; a service account has no storage of its own: use a shared drive (shared_drive: true) or domain-wide delegation "
                   "(subject)";
        else if (c.reason == "insufficientPermissions" || c.reason == "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
            why += "; the token lacks the scope: with domain-wide delegation, grant the scope to the service account's client id";
        set_problem(config_problem_, why);
        ctx_.metrics().increment("google_refused_total");
        return SinkResult::hold(net::backoff_delay(5, milliseconds(1000), seconds(60), 2.0, milliseconds(1000)), why);
    }
    ctx_.metrics().increment("google_refused_total");
    return SinkResult::fail(fmt::format("{} refused {}: {}", service_, what, c.message));
}

HealthReport GoogleClient::health(std::string healthy_detail) const {
    {
        std::lock_guard lock(problems_mutex_);
        if (!auth_problem_.empty()) return {Health::Unavailable, auth_problem_};
        if (!config_problem_.empty()) return {Health::Unavailable, config_problem_};
    }
    const auto status = auth_->status();
    if (status.refused) return {Health::Unavailable, status.last_error};
    const auto state = breaker_.state();
    if (state != net::CircuitBreaker::State::Closed)
        return {Health::Degraded, fmt::format("{} circuit breaker {} after {} failures in a row; last: {}", service_, net::to_string(state),
                                              breaker_.consecutive_failures(), breaker_.last_failure())};
    return {Health::Healthy, std::move(healthy_detail)};
}

// ---- helpers ------------------------------------------------------------------------------

std::string sha256_hex(const void* data, std::size_t size) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, size, digest, &n, EVP_sha256(), nullptr);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
        out += digits[digest[i] >> 4];
        out += digits[digest[i] & 15];
    }
    return out;
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> buffer(bytes);
    if (RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1) throw std::runtime_error("no randomness available");
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char b : buffer) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

std::string attribute(const Document& doc, const std::string& name) {
    auto it = doc.attributes.find(name);
    return it == doc.attributes.end() ? std::string() : it->second;
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text, int default_offset_minutes) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    if (text.empty()) return std::nullopt;
    if (text.find_first_not_of("0123456789") == std::string_view::npos) {
        if (text.size() > 15) return std::nullopt;
        const std::int64_t v = std::stoll(std::string(text));
        // Epoch milliseconds from 2001 on have 13 digits; seconds have 10.
        return text.size() >= 12 ? std::chrono::system_clock::time_point(milliseconds(v)) : std::chrono::system_clock::time_point(seconds(v));
    }
    int y, mo, d, h = 0, mi = 0, s = 0;
    if (!digits(text, 0, 4, y) || text.size() < 10 || text[4] != '-' || !digits(text, 5, 2, mo) || text[7] != '-' || !digits(text, 8, 2, d))
        return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
    std::size_t pos = 10;
    int offset = default_offset_minutes;
    if (pos < text.size()) {
        if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return std::nullopt;
        if (!digits(text, pos + 1, 2, h) || pos + 3 >= text.size() || text[pos + 3] != ':' || !digits(text, pos + 4, 2, mi)) return std::nullopt;
        pos += 6;
        if (pos < text.size() && text[pos] == ':') {
            if (!digits(text, pos + 1, 2, s)) return std::nullopt;
            pos += 3;
        }
        if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
            ++pos;
            while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
        }
        if (pos < text.size()) {
            const char sign = text[pos];
            if (sign == 'Z' || sign == 'z') {
                offset = 0;
                ++pos;
            } else if (sign == '+' || sign == '-') {
                int oh, om = 0;
                if (!digits(text, pos + 1, 2, oh)) return std::nullopt;
                pos += 3;
                if (pos < text.size() && text[pos] == ':') ++pos;
                if (pos < text.size()) {
                    if (!digits(text, pos, 2, om)) return std::nullopt;
                    pos += 2;
                }
                offset = (sign == '-' ? -1 : 1) * (oh * 60 + om);
            }
            if (pos != text.size()) return std::nullopt;
        }
        if (h > 23 || mi > 59 || s > 60) return std::nullopt;
    }
    const std::int64_t secs = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 + mi * 60 + s -
                              static_cast<std::int64_t>(offset) * 60;
    return std::chrono::system_clock::time_point(seconds(secs));
}

LocalDate local_date(std::chrono::system_clock::time_point t, int utc_offset_minutes) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t + std::chrono::minutes(utc_offset_minutes));
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday};
}

}  // namespace docpipe::google
