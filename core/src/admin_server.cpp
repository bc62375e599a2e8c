#include "admin_server.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include <fmt/core.h>
#include <httplib.h>

#include "services.hpp"

namespace docpipe::core {

std::pair<std::string, int> parse_listen_address(const std::string& listen) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0)
        throw std::invalid_argument("admin.listen '" + listen + "' must be host:port, e.g. 127.0.0.1:8080");
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = -1;
    try {
        std::size_t used = 0;
        port = std::stoi(listen.substr(colon + 1), &used);
        if (used != listen.size() - colon - 1) port = -1;
    } catch (...) {
    }
    if (port < 0 || port > 65535) throw std::invalid_argument("admin.listen '" + listen + "': port must be 0-65535");
    return {host, port};
}

bool is_loopback_host(const std::string& host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string generate_api_key() {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("OpenSSL RAND_bytes failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string key;
    for (unsigned char b : bytes) {
        key += kHex[b >> 4];
        key += kHex[b & 0xF];
    }
    return key;
}

bool keys_equal(const std::string& a, const std::string& b) {
    // Hash both first so the comparison length never depends on the secret's length.
    unsigned char ha[32], hb[32];
    unsigned int la = 0, lb = 0;
    EVP_Digest(a.data(), a.size(), ha, &la, EVP_sha256(), nullptr);
    EVP_Digest(b.data(), b.size(), hb, &lb, EVP_sha256(), nullptr);
    return CRYPTO_memcmp(ha, hb, 32) == 0;
}

namespace {

using json = nlohmann::json;

// Per-client token buckets. Old idle clients are forgotten so the map stays small.
class RateLimiter {
public:
    RateLimiter(double rate, int burst) : rate_(rate), burst_(burst) {}
    // 0 when allowed, else seconds until a token is available.
    int acquire(const std::string& client) {
        std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        if (buckets_.size() > 10'000) buckets_.clear();
        auto [it, fresh] = buckets_.try_emplace(client, Bucket{static_cast<double>(burst_), now});
        Bucket& b = it->second;
        if (!fresh) {
            b.tokens = std::min<double>(burst_, b.tokens + rate_ * std::chrono::duration<double>(now - b.last).count());
            b.last = now;
        }
        if (b.tokens >= 1) {
            b.tokens -= 1;
            return 0;
        }
        return std::max(1, static_cast<int>(std::ceil((1 - b.tokens) / rate_)));
    }

private:
    struct Bucket {
        double tokens;
        std::chrono::steady_clock::time_point last;
    };
    double rate_;
    int burst_;
    std::mutex mutex_;
    std::map<std::string, Bucket> buckets_;
};

std::string request_id(const httplib::Request& req) {
    // Accept a caller's id when it is a plain token, so logs on both sides line up.
    std::string given = req.get_header_value("X-Request-ID");
    static const std::regex kToken("[A-Za-z0-9._-]{1,64}");
    if (std::regex_match(given, kToken)) return given;
    unsigned char bytes[8];
    RAND_bytes(bytes, sizeof bytes);
    return fmt::format("{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}", bytes[0], bytes[1], bytes[2], bytes[3], bytes[4],
                       bytes[5], bytes[6], bytes[7]);
}

json meta(const httplib::Request& req) {
    return {{"timestamp", iso8601(std::chrono::system_clock::now())}, {"request_id", request_id(req)}};
}

void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void ok(const httplib::Request& req, httplib::Response& res, json data, json extra_meta = json::object()) {
    json m = meta(req);
    m.update(extra_meta);
    send_json(res, 200, {{"success", true}, {"data", std::move(data)}, {"meta", std::move(m)}});
}

void error(const httplib::Request& req, httplib::Response& res, int status, const std::string& code, const std::string& message,
           json details = json::object()) {
    send_json(res, status,
              {{"success", false}, {"error", {{"code", code}, {"message", message}, {"details", std::move(details)}}}, {"meta", meta(req)}});
}

std::optional<std::int64_t> parse_day(const std::string& text, bool end_of_day) {
    static const std::regex kDate(R"((\d{4})-(\d{2})-(\d{2}))");
    std::smatch m;
    if (!std::regex_match(text, m, kDate)) return std::nullopt;
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31) return std::nullopt;
    std::time_t t = timegm(&tm);
    std::int64_t ms = static_cast<std::int64_t>(t) * 1000;
    return end_of_day ? ms + 86'400'000 - 1 : ms;
}

}  // namespace

struct AdminServer::Impl {
    AdminSettings settings;
    AdminBackend& backend;
    Logger& log;
    httplib::Server server;
    RateLimiter limiter;
    std::thread thread;
    int bound_port = 0;

    Impl(AdminSettings s, AdminBackend& b, Logger& l)
        : settings(std::move(s)), backend(b), log(l), limiter(settings.rate_per_second, settings.burst) {}

    bool needs_key(const std::string& path) const {
        return path.rfind("/api/", 0) == 0 || (settings.protect_metrics && path == "/metrics");
    }

    // Runs before routing: rate limit, then authentication. Returns Handled to stop.
    httplib::Server::HandlerResponse gate(const httplib::Request& req, httplib::Response& res) {
        if (req.path == "/health" || req.path.rfind("/health/", 0) == 0) return httplib::Server::HandlerResponse::Unhandled;
        if (int wait = limiter.acquire(req.remote_addr); wait > 0) {
            res.set_header("Retry-After", std::to_string(wait));
            error(req, res, 429, "RATE_LIMITED", fmt::format("too many requests from this client; retry in {} s", wait));
            return httplib::Server::HandlerResponse::Handled;
        }
        if (!needs_key(req.path)) return httplib::Server::HandlerResponse::Unhandled;
        std::string key = req.get_header_value("X-API-Key");
        if (key.empty()) {
            const std::string auth = req.get_header_value("Authorization");
            if (auth.rfind("Bearer ", 0) == 0) key = auth.substr(7);
        }
        if (key.empty()) {
            error(req, res, 401, "UNAUTHORIZED", "an API key is required: send X-API-Key: <key> or Authorization: Bearer <key>");
            return httplib::Server::HandlerResponse::Handled;
        }
        bool match = false;
        for (const auto& k : settings.api_keys) match = keys_equal(key, k) || match;  // no early exit
        if (!match) {
            error(req, res, 403, "FORBIDDEN", "the API key is not valid");
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    }

    void routes() {
        server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) { return gate(req, res); });
        server.set_payload_max_length(settings.max_body_bytes);
        server.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown error";
            try {
                if (ep) std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            log.log(LogLevel::Error, fmt::format("{} {} failed: {}", req.method, req.path, what));
            error(req, res, 500, "INTERNAL_ERROR", what);
        });
        server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
            if (!res.body.empty()) return;  // a handler already answered
            if (res.status == 413) {
                error(req, res, 413, "VALIDATION_ERROR", "request body too large");
            } else if (res.status == 404) {
                error(req, res, 404, "NOT_FOUND", "no such endpoint: " + req.method + " " + req.path);
            } else if (res.status == 405) {
                error(req, res, 405, "VALIDATION_ERROR", "method not allowed");
            }
        });

        server.Get("/health", [](const httplib::Request&, httplib::Response& res) {
            send_json(res, 200, {{"status", "alive"}});
        });
        server.Get("/health/ready", [this](const httplib::Request&, httplib::Response& res) {
            std::string why;
            bool is_ready = backend.ready(why);
            send_json(res, is_ready ? 200 : 503, {{"status", is_ready ? "ready" : "not_ready"}, {"reason", why}});
        });
        server.Get("/health/detailed", [this](const httplib::Request&, httplib::Response& res) {
            json report = backend.health_detailed();
            send_json(res, 200, report);  // a report, not a probe: read "status" inside
        });
        server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(backend.metrics_text(), "text/plain; version=0.0.4");
        });

        server.Get("/api/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) { list_jobs(req, res); });
        server.Get(R"(/api/v1/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
            auto job = backend.store().get_job(req.matches[1]);
            if (!job) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", req.matches[1].str()}});
            ok(req, res, job->to_json());
        });
        server.Post(R"(/api/v1/jobs/([^/]+)/retry)", [this](const httplib::Request& req, httplib::Response& res) {
            const std::string id = req.matches[1];
            if (!backend.store().get_job(id)) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", id}});
            std::string why = backend.retry_job(id);
            if (!why.empty()) return error(req, res, 400, "VALIDATION_ERROR", why, {{"id", id}});
            ok(req, res, backend.store().get_job(id)->to_json());
        });
        server.Get("/api/v1/exceptions", [this](const httplib::Request& req, httplib::Response& res) {
            auto with_status = req;  // the review queue is the jobs in status "review"
            with_status.params.erase("status");
            with_status.params.emplace("status", "review");
            list_jobs(with_status, res);
        });
        server.Post(R"(/api/v1/exceptions/([^/]+)/approve)", [this](const httplib::Request& req, httplib::Response& res) {
            json body = json::object();
            if (!parse_body(req, res, body)) return;
            const std::string id = req.matches[1];
            if (body.contains("fields") && !body["fields"].is_object())
                return error(req, res, 400, "VALIDATION_ERROR", "'fields' must be an object of corrected field values",
                             {{"fields", "expected an object"}});
            if (body.contains("notes") && !body["notes"].is_string())
                return error(req, res, 400, "VALIDATION_ERROR", "'notes' must be a string", {{"notes", "expected a string"}});
            if (!backend.store().get_job(id)) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", id}});
            std::string why = backend.approve(id, body.value("fields", json::object()), body.value("notes", ""));
            if (!why.empty()) return error(req, res, 400, "VALIDATION_ERROR", why, {{"id", id}});
            ok(req, res, backend.store().get_job(id)->to_json());
        });
        server.Post(R"(/api/v1/exceptions/([^/]+)/reject)", [this](const httplib::Request& req, httplib::Response& res) {
            json body = json::object();
            if (!parse_body(req, res, body)) return;
            const std::string id = req.matches[1];
            if (!body.contains("reason") || !body["reason"].is_string() || body["reason"].get<std::string>().empty())
                return error(req, res, 400, "VALIDATION_ERROR", "a non-empty 'reason' is required to reject",
                             {{"reason", "required"}});
            if (!backend.store().get_job(id)) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", id}});
            std::string why = backend.reject(id, body["reason"]);
            if (!why.empty()) return error(req, res, 400, "VALIDATION_ERROR", why, {{"id", id}});
            ok(req, res, backend.store().get_job(id)->to_json());
        });
        server.Get("/api/v1/stats/dashboard", [this](const httplib::Request& req, httplib::Response& res) { dashboard(req, res); });
        server.Get("/api/v1/stats/daily", [this](const httplib::Request& req, httplib::Response& res) { daily(req, res); });
    }

    // Empty body = {}. Otherwise it must be a JSON object.
    static bool parse_body(const httplib::Request& req, httplib::Response& res, json& out) {
        if (req.body.empty()) return true;
        try {
            out = json::parse(req.body);
        } catch (const json::parse_error& e) {
            error(req, res, 400, "VALIDATION_ERROR", std::string("request body is not valid JSON: ") + e.what());
            return false;
        }
        if (!out.is_object()) {
            error(req, res, 400, "VALIDATION_ERROR", "request body must be a JSON object");
            return false;
        }
        return true;
    }

    void list_jobs(const httplib::Request& req, httplib::Response& res) {
        JobQuery q;
        json problems = json::object();
        auto param = [&](const char* name) -> std::optional<std::string> {
            if (!req.has_param(name)) return std::nullopt;
            return req.get_param_value(name);
        };
        auto integer = [&](const char* name, long lo, long hi, long fallback) -> long {
            auto v = param(name);
            if (!v) return fallback;
            try {
                std::size_t used = 0;
                long n = std::stol(*v, &used);
                if (used == v->size() && n >= lo && n <= hi) return n;
            } catch (...) {
            }
            problems[name] = fmt::format("must be an integer from {} to {}", lo, hi);
            return fallback;
        };
        q.limit = static_cast<std::size_t>(integer("limit", 1, 100, 50));
        q.offset = static_cast<std::size_t>(integer("offset", 0, 100'000'000, 0));
        if (auto s = param("status")) {
            if (is_job_status(*s)) q.status = *s;
            else problems["status"] = "must be one of received, processing, extracted, submitted, review, approved, rejected, failed, skipped";
        }
        if (auto e = param("email_id")) q.email_id = *e;
        if (auto d = param("date_from")) {
            if (auto ms = parse_day(*d, false)) q.from_ms = *ms;
            else problems["date_from"] = "must be a date YYYY-MM-DD";
        }
        if (auto d = param("date_to")) {
            if (auto ms = parse_day(*d, true)) q.to_ms = *ms;
            else problems["date_to"] = "must be a date YYYY-MM-DD";
        }
        if (auto s = param("sort")) {
            if (*s == "created_at" || *s == "asc") q.newest_first = false;
            else if (*s == "-created_at" || *s == "desc") q.newest_first = true;
            else problems["sort"] = "must be created_at (oldest first) or -created_at (newest first)";
        }
        if (!problems.empty()) return error(req, res, 400, "VALIDATION_ERROR", "invalid query parameters", problems);
        q.raw = true;
        JobPage page = backend.store().list_jobs(q);
        // The stored records are JSON objects already: splice them in rather than parse each.
        json m = meta(req);
        m["pagination"] = {{"total", page.total}, {"limit", q.limit}, {"offset", q.offset}};
        std::string body = R"({"success":true,"data":[)";
        for (std::size_t i = 0; i < page.raw.size(); ++i) {
            if (i) body += ',';
            body += page.raw[i];
        }
        body += R"(],"meta":)" + m.dump() + "}";
        res.status = 200;
        res.set_content(std::move(body), "application/json");
    }

    static json summarize(const JobAggregate& a) {
        auto count = [&](const char* status) {
            auto it = a.by_status.find(status);
            return it == a.by_status.end() ? std::size_t{0} : it->second;
        };
        const std::size_t successful = count("submitted") + count("approved");
        const std::size_t review = count("review");
        const std::size_t failed = count("failed");
        auto ratio = [&](double n, std::size_t d) { return d ? n / static_cast<double>(d) : 0.0; };
        return {{"processed", a.total},
                {"successful", successful},
                {"review", review},
                {"failed", failed},
                {"success_rate", ratio(static_cast<double>(successful), a.total)},
                {"review_rate", ratio(static_cast<double>(review), a.total)},
                {"average_confidence", a.confidence_count ? json(a.confidence_sum / a.confidence_count) : json(nullptr)},
                {"average_processing_seconds", a.processing_count ? json(a.processing_ms_sum / a.processing_count / 1000) : json(nullptr)},
                {"average_submission_seconds", a.submission_count ? json(a.submission_ms_sum / a.submission_count / 1000) : json(nullptr)}};
    }

    void dashboard(const httplib::Request& req, httplib::Response& res) {
        const std::int64_t now_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        const std::int64_t day_ms = 86'400'000;
        const std::int64_t today = now_ms - now_ms % day_ms;  // UTC midnight
        json data = json::object();
        for (const auto& [name, from] : {std::pair{"today", today}, std::pair{"this_week", today - 6 * day_ms},
                                        std::pair{"this_month", today - 29 * day_ms}})
            data[name] = summarize(backend.store().aggregate_jobs(from, now_ms));
        auto all = backend.store().count_jobs_by_status();
        data["queues"] = {{"review", all["review"]}, {"processing", all["processing"]}, {"failed", all["failed"]}};
        ok(req, res, std::move(data));
    }

    void daily(const httplib::Request& req, httplib::Response& res) {
        if (!req.has_param("date")) return error(req, res, 400, "VALIDATION_ERROR", "'date' is required (YYYY-MM-DD)", {{"date", "required"}});
        auto from = parse_day(req.get_param_value("date"), false);
        if (!from) return error(req, res, 400, "VALIDATION_ERROR", "'date' must be YYYY-MM-DD", {{"date", "must be YYYY-MM-DD"}});
        JobAggregate a = backend.store().aggregate_jobs(*from, *from + 86'400'000 - 1);
        json hourly = json::array();
        for (std::size_t h = 0; h < 24; ++h) hourly.push_back({{"hour", h}, {"processed", a.by_hour[h]}});
        json histogram = json::array();
        for (std::size_t b = 0; b < 10; ++b)
            histogram.push_back({{"from", b / 10.0}, {"to", (b + 1) / 10.0}, {"count", a.confidence_histogram[b]}});
        std::vector<std::pair<std::string, std::size_t>> providers(a.providers.begin(), a.providers.end());
        std::sort(providers.begin(), providers.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
        json top = json::array();
        for (std::size_t i = 0; i < providers.size() && i < 10; ++i) top.push_back({{"provider", providers[i].first}, {"count", providers[i].second}});
        json data = summarize(a);
        data["date"] = req.get_param_value("date");
        data["by_status"] = a.by_status;
        data["hourly"] = std::move(hourly);
        data["confidence_distribution"] = std::move(histogram);
        data["top_providers"] = std::move(top);
        ok(req, res, std::move(data));
    }
};

AdminServer::AdminServer(AdminSettings settings, AdminBackend& backend, Logger& log)
    : impl_(std::make_unique<Impl>(std::move(settings), backend, log)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
    Impl& m = *impl_;
    m.routes();
    // cpp-httplib holds a thread per keep-alive connection: size the pool for dashboards and
    // scrapers polling at once (idle threads cost little).
    m.server.new_task_queue = [] { return new httplib::ThreadPool(64); };
    // Small JSON answers on keep-alive connections: without TCP_NODELAY, Nagle and delayed
    // ACKs add ~40 ms to each one. The Debian build listens with a backlog of 5, so keep
    // connections alive for many requests rather than reconnecting in bursts.
    m.server.set_tcp_nodelay(true);
    m.server.set_keep_alive_max_count(1000);
    m.server.set_keep_alive_timeout(30);
    if (m.settings.port == 0) m.bound_port = m.server.bind_to_any_port(m.settings.host);
    else m.bound_port = m.server.bind_to_port(m.settings.host, m.settings.port) ? m.settings.port : -1;
    if (m.bound_port <= 0)
        throw std::runtime_error(fmt::format("admin server cannot listen on {}:{} (address in use, or not an address here)",
                                             m.settings.host, m.settings.port));
    m.thread = std::thread([&m] { m.server.listen_after_bind(); });
}

void AdminServer::stop() {
    if (!impl_) return;
    impl_->server.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

int AdminServer::port() const { return impl_->bound_port; }

}  // namespace docpipe::core
