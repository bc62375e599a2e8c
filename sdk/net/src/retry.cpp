// What an HTTP answer means for the caller: when to try again, and whether to at all.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <random>

#include <nlohmann/json.hpp>

#include "docpipe/net/http.hpp"

namespace docpipe::net {

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
    if (value.empty()) return std::nullopt;
    if (std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
        if (value.size() > 9) return std::chrono::hours(24 * 365);  // absurd but numeric: "a long time"
        return std::chrono::seconds(std::stoll(std::string(value)));
    }
    // An HTTP date (RFC 9110 IMF-fixdate, or the obsolete forms curl_getdate also reads).
    const std::string text(value);
    const time_t at = curl_getdate(text.c_str(), nullptr);
    if (at < 0) return std::nullopt;
    const auto when = std::chrono::system_clock::from_time_t(at);
    if (when <= now) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
}

const char* to_string(FailureKind kind) {
    switch (kind) {
        case FailureKind::None: return "ok";
        case FailureKind::Retryable: return "retryable";
        case FailureKind::RateLimited: return "rate-limited";
        case FailureKind::Auth: return "credentials refused";
        case FailureKind::Permanent: return "permanent";
    }
    return "?";
}

namespace {

bool is_rate_limit_reason(std::string_view reason) {
    return reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" || reason == "RATE_LIMIT_EXCEEDED" ||
           reason == "quotaExceeded" || reason == "RESOURCE_EXHAUSTED";
}

// The server's words, shortened: an error body can be a whole HTML page.
std::string first_line(std::string_view body, std::size_t max = 300) {
    std::string out;
    for (char c : body) {
        if (out.size() >= max) {
            out += "...";
            break;
        }
        out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
    }
    return out;
}

}  // namespace

Classified classify(const HttpResponse& response, std::chrono::system_clock::time_point now) {
    Classified c;
    const long s = response.status;
    if (s >= 200 && s < 300) return c;
    if (auto ra = response.header("retry-after")) c.retry_after = parse_retry_after(*ra, now);

    std::string status_word;
    const auto body = nlohmann::json::parse(response.body, nullptr, false);
    if (body.is_object() && body.contains("error")) {
        const auto& e = body["error"];
        if (e.is_object()) {
            if (e.contains("message") && e["message"].is_string()) c.message = e["message"].get<std::string>();
            if (e.contains("status") && e["status"].is_string()) status_word = e["status"].get<std::string>();
            if (e.contains("errors") && e["errors"].is_array() && !e["errors"].empty() && e["errors"][0].is_object())
                c.reason = e["errors"][0].value("reason", "");
            if (c.reason.empty() && e.contains("details") && e["details"].is_array())
                for (const auto& d : e["details"])
                    if (d.is_object() && d.contains("reason") && d["reason"].is_string()) {
                        c.reason = d["reason"].get<std::string>();
                        break;
                    }
            if (c.reason.empty() && e.contains("code") && e["code"].is_string()) c.reason = e["code"].get<std::string>();
        } else if (e.is_string()) {  // OAuth token endpoint
            c.reason = e.get<std::string>();
            const std::string description = body.contains("error_description") && body["error_description"].is_string()
                                                ? body["error_description"].get<std::string>() : std::string();
            c.message = description.empty() ? c.reason : c.reason + ": " + description;
        }
    }
    if (c.message.empty()) c.message = response.body.empty() ? "no error body" : first_line(response.body);
    c.message = "HTTP " + std::to_string(s) + ": " + c.message;

    if (s == 429 || (s == 403 && (is_rate_limit_reason(c.reason) || status_word == "RESOURCE_EXHAUSTED"))) c.kind = FailureKind::RateLimited;
    else if (s == 401) c.kind = FailureKind::Auth;
    else if (s == 408 || s == 500 || s == 502 || s == 503 || s == 504) c.kind = FailureKind::Retryable;
    else c.kind = FailureKind::Permanent;
    return c;
}

std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds initial, std::chrono::milliseconds cap, double multiplier,
                                        std::chrono::milliseconds jitter) {
    double ms = static_cast<double>(initial.count());
    for (int i = 1; i < attempt && ms < static_cast<double>(cap.count()); ++i) ms *= multiplier;
    ms = std::min(ms, static_cast<double>(cap.count()));
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const auto extra = jitter.count() > 0 ? std::uniform_int_distribution<std::int64_t>(0, jitter.count())(rng) : 0;
    return std::chrono::milliseconds(static_cast<std::int64_t>(ms) + extra);
}

// ---- circuit breaker ----------------------------------------------------------------------

CircuitBreaker::CircuitBreaker(int threshold, std::chrono::milliseconds open_for)
    : threshold_(std::max(1, threshold)), open_for_(open_for) {}

std::optional<std::chrono::milliseconds> CircuitBreaker::refuse(clock::time_point now) {
    std::lock_guard lock(mutex_);
    switch (state_) {
        case State::Closed: return std::nullopt;
        case State::Open:
            if (now - opened_at_ < open_for_)
                return std::chrono::duration_cast<std::chrono::milliseconds>(open_for_ - (now - opened_at_));
            state_ = State::HalfOpen;
            trial_in_flight_ = true;
            return std::nullopt;  // this caller makes the trial call
        case State::HalfOpen:
            if (!trial_in_flight_) {
                trial_in_flight_ = true;
                return std::nullopt;
            }
            return std::chrono::milliseconds(std::max<std::int64_t>(100, open_for_.count() / 10));
    }
    return std::nullopt;
}

void CircuitBreaker::record_success() {
    std::lock_guard lock(mutex_);
    state_ = State::Closed;
    failures_ = 0;
    trial_in_flight_ = false;
}

void CircuitBreaker::record_failure(clock::time_point now, std::string why) {
    std::lock_guard lock(mutex_);
    ++failures_;
    last_failure_ = std::move(why);
    trial_in_flight_ = false;
    if (state_ == State::HalfOpen || failures_ >= threshold_) {
        state_ = State::Open;
        opened_at_ = now;
    }
}

void CircuitBreaker::release_trial() {
    std::lock_guard lock(mutex_);
    if (state_ == State::HalfOpen) trial_in_flight_ = false;
}

CircuitBreaker::State CircuitBreaker::state() const {
    std::lock_guard lock(mutex_);
    return state_;
}

int CircuitBreaker::consecutive_failures() const {
    std::lock_guard lock(mutex_);
    return failures_;
}

std::string CircuitBreaker::last_failure() const {
    std::lock_guard lock(mutex_);
    return last_failure_;
}

const char* to_string(CircuitBreaker::State state) {
    switch (state) {
        case CircuitBreaker::State::Closed: return "closed";
        case CircuitBreaker::State::Open: return "open";
        case CircuitBreaker::State::HalfOpen: return "half-open";
    }
    return "?";
}

}  // namespace docpipe::net
