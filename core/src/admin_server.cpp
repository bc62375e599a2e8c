// The admin HTTP server on Boost.Beast + Boost.Asio.
//
// Why Beast and not cpp-httplib (which this server used before): httplib serves each
// connection on a pool thread that blocks in recv() until the client sends a request or the
// keep-alive timeout passes, so 64 idle or slow-dripping connections took every thread and
// /health went unanswered for 30 s. Its timeouts are per recv(), so a client sending one byte
// at a time was never cut off, and there is no hook before a connection takes a thread.
// Beast is asynchronous: an idle connection is a parked socket costing no thread,
// beast::tcp_stream::expires_after() gives a deadline for a whole operation (the complete
// request head), and the accept loop is ours, so per-address and total connection caps are
// enforced before anything is read. Beast is maintained with Boost, header-only, and already
// installed (libboost-dev 1.74, which Boost.DLL needs anyway); it parses HTTP for us, so no
// hand-written parser. It has no URL router, so the small route table and query parsing
// below are our own.
//
// Threads: one I/O thread runs every socket operation and answers /health, the cheap
// refusals (401/403/429, 404/405, 413) and nothing that touches the backend, so
// liveness stays prompt however busy the backend is. Everything that calls the backend runs
// on a small worker pool; the answer is handed back to the I/O thread to write.
#include "admin_server.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include "admin/request_parsing.hpp"
#include "admin/review_data.hpp"
#include "admin/ui_assets.hpp"
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

ActionResult ActionResult::fail(Outcome o, std::string why, nlohmann::json fields) {
    ActionResult r;
    r.outcome = o;
    r.message = std::move(why);
    r.field_errors = std::move(fields);
    return r;
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// Limits that need no setting: generous for real clients, short enough that a stuck one
// frees its connection.
constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr auto kBodyTimeout = std::chrono::seconds(30);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kDrainTimeout = std::chrono::seconds(2);   // reading what a refused client still sends
constexpr std::size_t kDrainLimit = 4 * 1024 * 1024;
constexpr int kRetryAfterUnavailableSeconds = 5;
constexpr int kWorkerThreads = 16;
// Every answer carries these. The UI's pages load scripts and styles from /ui/ only (no
// inline script or style, so an injected tag cannot run), images from /ui/ or blob: (page
// images are fetched with the key and shown from a blob URL), and may not be framed.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

std::int64_t now_epoch_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Per-client token buckets. Old idle clients are forgotten so the map stays small.
class RateLimiter {
public:
    RateLimiter(double rate, int burst) : rate_(rate), burst_(burst) {}
    // 0 when allowed, else seconds until a token is available.
    int acquire(const std::string& client) {
        std::lock_guard lock(mutex_);
        const auto now = SteadyClock::now();
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
        SteadyClock::time_point last;
    };
    double rate_;
    int burst_;
    std::mutex mutex_;
    std::map<std::string, Bucket> buckets_;
};

// Lets one log line per key through per interval, so a client hammering with a wrong key
// cannot flood the log; the next line that gets through says how many were left out.
class NoticeLimiter {
public:
    explicit NoticeLimiter(std::chrono::milliseconds interval) : interval_(interval) {}
    // nullopt: drop this one. Else the number dropped for this key since the last line.
    std::optional<std::size_t> allow(const std::string& key) {
        std::lock_guard lock(mutex_);
        const auto now = SteadyClock::now();
        if (entries_.size() > 10'000) {
            std::erase_if(entries_, [&](const auto& e) { return now - e.second.last >= interval_; });
            if (entries_.size() > 10'000) entries_.clear();  // many addresses at once: forget, still bounded
        }
        auto [it, fresh] = entries_.try_emplace(key, Entry{now, 0});
        if (fresh) return 0;
        if (now - it->second.last < interval_) {
            ++it->second.suppressed;
            return std::nullopt;
        }
        const std::size_t dropped = it->second.suppressed;
        it->second = {now, 0};
        return dropped;
    }

private:
    struct Entry {
        SteadyClock::time_point last;
        std::size_t suppressed;
    };
    std::chrono::milliseconds interval_;
    std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
};

using admin::split_path;

// One request as the handlers see it: the parsed message plus what we derived from it.
struct Request {
    http::request<http::string_body> msg;  // the head from the start, the body once read
    std::string method;       // as sent: "GET"
    std::string raw_path;     // the target up to '?', still percent-encoded (safe to log)
    std::string path;         // percent-decoded
    std::vector<std::string> captures;  // the decoded {id} segments of the matched route
    std::vector<std::pair<std::string, std::string>> params;
    std::string remote_addr;
    std::string id;           // request id, echoed in meta and in log lines
    std::string key_label;    // whose API key authenticated it (empty on open endpoints)

    std::optional<std::string> param(std::string_view name) const {
        for (const auto& [k, v] : params)
            if (k == name) return v;
        return std::nullopt;
    }
    std::string header(http::field f) const { return std::string(msg[f]); }
    std::string header(std::string_view name) const { return std::string(msg[beast::string_view(name.data(), name.size())]); }
};

struct Response {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<http::field, std::string>> headers;
    bool close = false;  // answer with Connection: close (e.g. a request body was left unread)
};

std::string new_request_id(const http::request_header<>& h) {
    // Accept a caller's id when it is a plain token, so logs on both sides line up.
    const auto given = h["X-Request-ID"];
    if (admin::is_request_id_token(std::string_view(given.data(), given.size()))) return std::string(given);
    unsigned char bytes[8];
    RAND_bytes(bytes, sizeof bytes);
    return fmt::format("{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}", bytes[0], bytes[1], bytes[2], bytes[3], bytes[4],
                       bytes[5], bytes[6], bytes[7]);
}

json meta(const Request& req) {
    return {{"timestamp", iso8601(std::chrono::system_clock::now())}, {"request_id", req.id}};
}

void send_json(Response& res, int status, const json& body) {
    res.status = status;
    res.body = docpipe::json_text(body);
    res.content_type = "application/json";
}

void ok(const Request& req, Response& res, json data) {
    send_json(res, 200, {{"success", true}, {"data", std::move(data)}, {"meta", meta(req)}});
}

void error(const Request& req, Response& res, int status, const std::string& code, const std::string& message,
           json details = json::object()) {
    send_json(res, status,
              {{"success", false}, {"error", {{"code", code}, {"message", message}, {"details", std::move(details)}}}, {"meta", meta(req)}});
}

using admin::parse_day;

// The client address as a plain string; IPv4 clients of a dual-stack socket read as IPv4.
std::string client_address(const tcp::socket& socket) {
    boost::system::error_code ec;
    auto address = socket.remote_endpoint(ec).address();
    if (ec) return "unknown";
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    return address.to_string();
}

}  // namespace

struct AdminServer::Impl {
    struct Connection;
    using Handler = std::function<void(Request&, Response&)>;
    struct Route {
        std::string method;                 // a GET route answers HEAD too
        std::vector<std::string> segments;  // "{}" matches any one non-empty segment
        bool on_io_thread = false;          // cheap and backend-free: never waits for a worker
        Handler handle;
    };

    AdminSettings settings;
    AdminBackend& backend;
    Logger& log;
    RateLimiter limiter;
    NoticeLimiter notices;
    std::vector<Route> routes_;

    // Open connections per client address; released by the connection's destructor, which
    // may run off the I/O thread while shutting down, hence the mutex.
    std::mutex count_mutex;
    std::unordered_map<std::string, int> per_client;
    int total_connections = 0;

    // Declared in this order so the pool (whose abandoned tasks hold connections) is
    // destroyed before the io_context their sockets belong to.
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    asio::steady_timer accept_retry{io};
    std::unordered_map<Connection*, std::weak_ptr<Connection>> live;  // I/O thread only
    std::optional<asio::thread_pool> pool;
    std::thread io_thread;
    int bound_port = 0;
    bool stopped = false;

    Impl(AdminSettings s, AdminBackend& b, Logger& l)
        : settings(std::move(s)),
          backend(b),
          log(l),
          limiter(settings.rate_per_second, settings.burst),
          notices(settings.refusal_log_interval) {}

    // ---- connections -------------------------------------------------------------------

    bool admit(const std::string& address) {
        std::lock_guard lock(count_mutex);
        int& mine = per_client[address];
        if (mine >= settings.max_connections_per_client || total_connections >= settings.max_connections) {
            if (mine == 0) per_client.erase(address);
            return false;
        }
        ++mine;
        ++total_connections;
        return true;
    }

    void release(const std::string& address) {
        std::lock_guard lock(count_mutex);
        if (auto it = per_client.find(address); it != per_client.end() && --it->second <= 0) per_client.erase(it);
        --total_connections;
    }

    void accept() {
        acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
            if (ec) {
                // Typically out of file descriptors: say so (rarely) and try again shortly
                // instead of spinning on the error.
                if (auto dropped = notices.allow("accept"))
                    log.log(LogLevel::Warn, fmt::format("admin: cannot accept a connection: {}{}", ec.message(), suppressed_note(*dropped)));
                accept_retry.expires_after(std::chrono::milliseconds(100));
                accept_retry.async_wait([this](boost::system::error_code wait_ec) {
                    if (!wait_ec) accept();
                });
                return;
            }
            serve(std::move(socket));
            accept();
        });
    }

    void serve(tcp::socket socket);
    void refuse_connection(tcp::socket& socket, const std::string& address);

    static std::string suppressed_note(std::size_t dropped) {
        return dropped ? fmt::format(" ({} similar line(s) left out since the last one)", dropped) : "";
    }

    // A refused request (401/403/429): one line per client address per interval, with the
    // path but never the query (which could carry a key) nor any header.
    void note_refusal(const Request& req, int status, const std::string& code) {
        auto dropped = notices.allow("refused " + req.remote_addr);
        if (!dropped) return;
        log.log(LogLevel::Warn, fmt::format("admin: refused {} {} from {}: {} {} (request id {}){}", req.method, req.raw_path.substr(0, 200),
                                            req.remote_addr, status, code, req.id, suppressed_note(*dropped)));
    }

    // ---- gate and routing ----------------------------------------------------------------

    bool is_protected_health(const std::string& path) const { return settings.protect_health_detailed && path == "/health/detailed"; }

    bool needs_key(const std::string& path) const {
        return path.rfind("/api/", 0) == 0 || (settings.protect_metrics && path == "/metrics") || is_protected_health(path);
    }

    // Rate limit, then authentication. True when it answered (the request stops here).
    bool gate(Request& req, Response& res) {
        const bool health = req.path == "/health" || req.path.rfind("/health/", 0) == 0;
        if (health && !is_protected_health(req.path)) return false;  // probes are never limited
        if (int wait = limiter.acquire(req.remote_addr); wait > 0) {
            res.headers.emplace_back(http::field::retry_after, std::to_string(wait));
            error(req, res, 429, "RATE_LIMITED", fmt::format("too many requests from this client; retry in {} s", wait));
            note_refusal(req, 429, "RATE_LIMITED");
            return true;
        }
        if (!needs_key(req.path)) return false;
        const std::string key = admin::api_key_from_headers(req.header("X-API-Key"), req.header(http::field::authorization));
        if (key.empty()) {
            error(req, res, 401, "UNAUTHORIZED", "an API key is required: send X-API-Key: <key> or Authorization: Bearer <key>");
            note_refusal(req, 401, "UNAUTHORIZED");
            return true;
        }
        bool match = false;
        for (std::size_t i = 0; i < settings.api_keys.size(); ++i)
            if (keys_equal(key, settings.api_keys[i]) && !match) {  // every key is compared: no early exit
                match = true;
                req.key_label = i < settings.api_key_labels.size() && !settings.api_key_labels[i].empty()
                                    ? settings.api_key_labels[i]
                                    : fmt::format("key {}", i + 1);
            }
        if (!match) {
            error(req, res, 403, "FORBIDDEN", "the API key is not valid");
            note_refusal(req, 403, "FORBIDDEN");
            return true;
        }
        return false;
    }

    // The route for the request, or an answered 404/405.
    const Route* route(Request& req, Response& res) const {
        const auto parts = split_path(req.raw_path);
        std::vector<std::string> allowed;
        for (const auto& r : routes_) {
            auto captures = admin::match_route(r.segments, parts);
            if (!captures) continue;
            if (r.method == req.method || (r.method == "GET" && req.method == "HEAD")) {
                req.captures = std::move(*captures);
                return &r;
            }
            allowed.push_back(r.method);
            if (r.method == "GET") allowed.push_back("HEAD");
        }
        if (allowed.empty()) {
            error(req, res, 404, "NOT_FOUND", "no such endpoint: " + req.method + " " + req.path);
        } else {
            std::sort(allowed.begin(), allowed.end());
            allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
            std::string list;
            for (const auto& m : allowed) list += (list.empty() ? "" : ", ") + m;
            res.headers.emplace_back(http::field::allow, list);
            error(req, res, 405, "METHOD_NOT_ALLOWED", fmt::format("{} is not allowed on {}; allowed: {}", req.method, req.path, list));
        }
        return nullptr;
    }

    // Runs a handler; an exception becomes a 500 that names only the request id (the text
    // may hold a Redis host:port or a file path), with the full text in the log.
    void run(const Route& r, Request& req, Response& res) {
        std::string what;
        try {
            r.handle(req, res);
            return;
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
            what = "unknown exception";
        }
        log.log(LogLevel::Error, fmt::format("admin: {} {} failed (request id {}): {}", req.method, req.raw_path.substr(0, 200), req.id, what));
        res = Response{};
        error(req, res, 500, "INTERNAL_ERROR", "internal error (request id " + req.id + ")");
    }

    void add(std::string method, std::string_view pattern, bool on_io_thread, Handler h) {
        Route r{std::move(method), {}, on_io_thread, std::move(h)};
        for (auto part : split_path(pattern)) r.segments.emplace_back(part);
        routes_.push_back(std::move(r));
    }

    void hook(Request& req, Response& res) {
        HookRequest h;
        h.method = req.method;
        h.path = req.captures.size() > 1 ? "/" + req.captures[1] : std::string();
        const std::string_view target(req.msg.target().data(), req.msg.target().size());
        if (const auto q = target.find('?'); q != std::string_view::npos) h.query = std::string(target.substr(q + 1));
        for (const auto& field : req.msg) {
            std::string name(field.name_string());
            std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            h.headers[name] = std::string(field.value());
        }
        h.body = req.msg.body();
        const auto answer = backend.hook(req.captures.at(0), h);
        if (!answer) {
            error(req, res, 404, "NOT_FOUND", "no node named '" + req.captures.at(0) + "' takes pushes at " + req.path);
            return;
        }
        res.status = answer->status;
        res.content_type = answer->content_type;
        res.body = answer->body;
    }

    void routes() {
        add("GET", "/health", true, [](Request&, Response& res) { send_json(res, 200, {{"status", "alive"}}); });
        add("GET", "/health/ready", false, [this](Request&, Response& res) {
            std::string why;
            bool is_ready = backend.ready(why);
            send_json(res, is_ready ? 200 : 503, {{"status", is_ready ? "ready" : "not_ready"}, {"reason", why}});
        });
        add("GET", "/health/detailed", false, [this](Request&, Response& res) {
            send_json(res, 200, backend.health_detailed());  // a report, not a probe: read "status" inside
        });
        add("GET", "/metrics", false, [this](Request&, Response& res) {
            res.body = backend.metrics_text();
            res.content_type = "text/plain; version=0.0.4";
        });

        // Pushes from outside (Pub/Sub push): no admin key, the component checks the caller.
        add("POST", "/hooks/{}", false, [this](Request& req, Response& res) { hook(req, res); });
        add("POST", "/hooks/{}/{}", false, [this](Request& req, Response& res) { hook(req, res); });
        add("GET", "/api/v1/jobs", false, [this](Request& req, Response& res) { list_jobs(req, res, std::nullopt); });
        add("GET", "/api/v1/jobs/{}", false, [this](Request& req, Response& res) {
            auto job = backend.store().get_job(req.captures[0]);
            if (!job) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", req.captures[0]}});
            json data = job->to_json();
            data["stages"] = later_stages(job->id);
            ok(req, res, std::move(data));
        });
        add("POST", "/api/v1/jobs/{}/retry", false, [this](Request& req, Response& res) {
            const std::string& id = req.captures[0];
            auto job = backend.store().get_job(id);
            if (!job) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", id}});
            const auto result = backend.retry_job(id);
            if (result.outcome == ActionResult::Outcome::Done) audit(req, id, {{"action", "retry"}, {"status_from", job->status}, {"status_to", "processing"}});
            answer_action(req, res, id, result);
        });
        add("POST", "/api/v1/jobs/{}/review", false, [this](Request& req, Response& res) {
            const std::string& id = req.captures[0];
            auto job = backend.store().get_job(id);
            if (!job) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", id}});
            const auto result = backend.return_to_review(id);
            if (result.outcome == ActionResult::Outcome::Done)
                audit(req, id, {{"action", "return_to_review"}, {"status_from", job->status}, {"status_to", "review"}});
            answer_action(req, res, id, result);
        });
        // The review queue is the jobs in status "review".
        add("GET", "/api/v1/exceptions", false, [this](Request& req, Response& res) { list_jobs(req, res, "review"); });
        add("POST", "/api/v1/exceptions/{}/approve", false, [this](Request& req, Response& res) {
            json body = json::object();
            if (!parse_body(req, res, body)) return;
            if (!only_known_keys(req, res, body, {"fields", "documents", "notes", "expected_status"})) return;
            const std::string& id = req.captures[0];
            if (body.contains("fields") && !body["fields"].is_object())
                return error(req, res, 400, "VALIDATION_ERROR", "'fields' must be an object of corrected field values",
                             {{"fields", "expected an object"}});
            // Per-document corrections: {"<doc id>": {"fields": {...}}}, the ids the review item lists.
            if (body.contains("documents")) {
                const json& docs = body["documents"];
                if (!docs.is_object())
                    return error(req, res, 400, "VALIDATION_ERROR", "'documents' must be an object of document id -> {\"fields\": {...}}",
                                 {{"documents", "expected an object"}});
                for (const auto& [doc_id, entry] : docs.items()) {
                    const std::string where = "documents." + doc_id;
                    if (!entry.is_object() || !entry.contains("fields") || !entry["fields"].is_object() || entry.size() != 1)
                        return error(req, res, 400, "VALIDATION_ERROR",
                                     fmt::format("'documents.{}' must be {{\"fields\": {{...corrected field values}}}}", doc_id),
                                     {{where, "expected an object with one key, 'fields', holding an object"}});
                }
            }
            if (body.contains("notes") && !body["notes"].is_string())
                return error(req, res, 400, "VALIDATION_ERROR", "'notes' must be a string", {{"notes", "expected a string"}});
            if (body.contains("expected_status") && (!body["expected_status"].is_string() || !is_job_status(body["expected_status"].get<std::string>())))
                return error(req, res, 400, "VALIDATION_ERROR", "'expected_status' must be a job status such as \"review\"",
                             {{"expected_status", "expected a job status"}});
            auto job = backend.store().get_job(id);
            if (!job) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", id}});
            // Optimistic check for a reviewer's screen: refuse when the job moved on since it
            // was shown. The backend still decides under its own lock (Conflict).
            if (body.contains("expected_status") && job->status != body["expected_status"].get<std::string>())
                return error(req, res, 409, "CONFLICT",
                             fmt::format("job is '{}', not '{}' as expected", job->status, body["expected_status"].get<std::string>()),
                             {{"id", id}, {"status", job->status}});
            Corrections corrections;
            corrections.fields = body.value("fields", json::object());
            const json per_document = body.value("documents", json::object());
            for (const auto& [doc_id, entry] : per_document.items()) corrections.documents[doc_id] = entry.at("fields");
            const std::string notes = body.value("notes", "");
            const auto result = backend.approve(id, corrections, notes);
            if (result.outcome == ActionResult::Outcome::Done) {
                json entry{{"action", "approve"}, {"status_from", job->status}, {"status_to", "approved"}, {"changes", json::object()}};
                // The backend read the parked documents: it knows each one's value before.
                if (result.audit.is_object()) entry.update(result.audit);
                if (!notes.empty()) entry["notes"] = notes;
                audit(req, id, std::move(entry));
            }
            answer_action(req, res, id, result);
        });
        add("POST", "/api/v1/exceptions/{}/reject", false, [this](Request& req, Response& res) {
            json body = json::object();
            if (!parse_body(req, res, body)) return;
            if (!only_known_keys(req, res, body, {"reason"})) return;
            const std::string& id = req.captures[0];
            if (body.contains("reason") && !body["reason"].is_string())
                return error(req, res, 400, "VALIDATION_ERROR", "'reason' must be text saying why the claim is rejected",
                             {{"reason", "must be a string"}});
            // Blank is no reason: the audit trail kept "   " as why a claim was rejected.
            if (!body.contains("reason") || body["reason"].get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos)
                return error(req, res, 400, "VALIDATION_ERROR", "a non-empty 'reason' is required to reject",
                             {{"reason", "required"}});
            auto job = backend.store().get_job(id);
            if (!job) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", id}});
            const std::string reason = body["reason"].get<std::string>();
            const auto result = backend.reject(id, reason);
            if (result.outcome == ActionResult::Outcome::Done)
                audit(req, id, {{"action", "reject"}, {"status_from", job->status}, {"status_to", "rejected"}, {"reason", reason}});
            answer_action(req, res, id, result);
        });
        add("GET", "/api/v1/stats/dashboard", false, [this](Request& req, Response& res) { dashboard(req, res); });
        add("GET", "/api/v1/stats/history", false, [this](Request& req, Response& res) { history(req, res); });
        ui_routes();
        add("GET", "/api/v1/stats/daily", false, [this](Request& req, Response& res) { daily(req, res); });
    }

    // ---- review UI ------------------------------------------------------------------------

    // Records a reviewer's action in the state store (who: the key's label; via: the review
    // UI, which says so in X-Docpipe-Client, or the API from a script or curl). The action
    // has happened already, so a store failure here is logged, not answered as a failure.
    void audit(const Request& req, const std::string& id, json entry) {
        entry["by"] = req.key_label;
        entry["via"] = req.header("X-Docpipe-Client") == "review-ui" ? "review UI" : "API";
        entry["request_id"] = req.id;
        const std::string action = entry.value("action", "");
        try {
            admin::append_audit(backend.store(), id, std::move(entry), now_epoch_ms());
        } catch (const std::exception& e) {
            log.log(LogLevel::Error, fmt::format("admin: {} of job {} by '{}' happened but its audit record could not be stored: {}", action,
                                                 id, req.key_label, e.what()));
            return;
        }
        log.log(LogLevel::Info, fmt::format("admin: {} by '{}' (request id {})", action, req.key_label, req.id), id);
    }

    static void serve_asset(const Request& req, Response& res, std::string_view name) {
        const admin::UiAsset* asset = admin::find_ui_asset(name);
        if (!asset) return error(req, res, 404, "NOT_FOUND", "no such file in the UI: " + req.path);
        res.headers.emplace_back(http::field::etag, std::string(asset->etag));
        res.headers.emplace_back(http::field::cache_control, "no-cache");  // revalidate: a new binary may ship new files
        res.content_type = std::string(asset->content_type);
        if (req.header(http::field::if_none_match) == asset->etag) {
            res.status = 304;
            return;
        }
        res.status = 200;
        res.body = std::string(asset->body);
    }

    void ui_routes() {
        // Static files, no key: they hold no data. Everything they show comes from /api/.
        auto redirect = [](Request&, Response& res) {
            res.status = 308;
            res.headers.emplace_back(http::field::location, "/ui/");
            res.content_type = "text/plain; charset=utf-8";
            res.body = "The review UI is at /ui/\n";
        };
        add("GET", "/", true, redirect);
        add("GET", "/ui", true, redirect);
        add("GET", "/ui/", true, [](Request& req, Response& res) { serve_asset(req, res, "index.html"); });
        add("GET", "/ui/{}", true, [](Request& req, Response& res) { serve_asset(req, res, req.captures[0]); });

        // Who the key belongs to: the UI's sign-in check.
        add("GET", "/api/v1/session", false, [](Request& req, Response& res) { ok(req, res, {{"label", req.key_label}}); });
        add("GET", "/api/v1/exceptions/{}", false, [this](Request& req, Response& res) {
            auto job = backend.store().get_job(req.captures[0]);
            if (!job) return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", req.captures[0]}});
            json item = admin::review_item(backend.store(), *job);
            item["audit"] = admin::read_audit(backend.store(), job->id);
            ok(req, res, std::move(item));
        });
        add("GET", "/api/v1/exceptions/{}/documents/{}/pages/{}/image", false, [this](Request& req, Response& res) {
            const auto parsed = admin::parse_integer(req.captures[2], 0, std::numeric_limits<int>::max());
            const int page = parsed ? static_cast<int>(*parsed) : -1;
            if (page < 0) return error(req, res, 400, "VALIDATION_ERROR", "the page must be a number from 0", {{"page", "expected an integer"}});
            auto image = admin::page_image(backend.store(), req.captures[0], req.captures[1], page);
            if (!image)
                return error(req, res, 404, "IMAGE_NOT_FOUND",
                             "no viewable image is stored for this page (no page raster was stored when it was parked, and its "
                             "original is not a one-page JPEG/PNG/GIF/WebP/BMP)");
            res.status = 200;
            res.content_type = image->media_type;
            res.body = std::move(image->bytes);
            res.headers.emplace_back(http::field::cache_control, "private, no-store");
        });
        add("GET", "/api/v1/jobs/{}/audit", false, [this](Request& req, Response& res) {
            if (!backend.store().get_job(req.captures[0]))
                return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", req.captures[0]}});
            ok(req, res, admin::read_audit(backend.store(), req.captures[0]));
        });
    }

    // Per-day counts for the dashboard's chart: the last `days` UTC days, oldest first.
    void history(const Request& req, Response& res) {
        long days = 14;
        if (auto d = req.param("days")) {
            const auto parsed = admin::parse_integer(*d, 1, 90);
            if (!parsed)
                return error(req, res, 400, "VALIDATION_ERROR", "'days' must be an integer from 1 to 90", {{"days", "1 to 90"}});
            days = *parsed;
        }
        const std::int64_t day_ms = 86'400'000, now_ms = now_epoch_ms();
        const std::int64_t today = now_ms - now_ms % day_ms;
        json out = json::array();
        for (long back = days - 1; back >= 0; --back) {
            const std::int64_t from = today - back * day_ms;
            json day = summarize(backend.store().aggregate_jobs(from, from + day_ms - 1));
            const std::time_t t = static_cast<std::time_t>(from / 1000);
            std::tm tm{};
            gmtime_r(&t, &tm);
            day["date"] = fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
            out.push_back(std::move(day));
        }
        ok(req, res, std::move(out));
    }

    void answer_action(const Request& req, Response& res, const std::string& id, const ActionResult& r) {
        using O = ActionResult::Outcome;
        switch (r.outcome) {
        case O::Done:
            if (auto job = backend.store().get_job(id)) return ok(req, res, job->to_json());
            return error(req, res, 404, "JOB_NOT_FOUND", "no job with that id", {{"id", id}});
        case O::NotFound:
            return error(req, res, 404, "JOB_NOT_FOUND", r.message.empty() ? "no job with that id" : r.message, {{"id", id}});
        case O::Conflict:
            return error(req, res, 409, "CONFLICT", r.message, {{"id", id}});
        case O::Invalid:
            return error(req, res, 422, "VALIDATION_ERROR", r.message, r.field_errors.is_object() ? r.field_errors : json::object());
        case O::Malformed:
            return error(req, res, 400, "VALIDATION_ERROR", r.message, r.field_errors.is_object() ? r.field_errors : json::object());
        case O::Unavailable:
            res.headers.emplace_back(http::field::retry_after, std::to_string(kRetryAfterUnavailableSeconds));
            return error(req, res, 503, "UNAVAILABLE", r.message.empty() ? "temporarily unavailable; retry later" : r.message, {{"id", id}});
        }
    }

    // Empty body = {}. Otherwise it must be a JSON object.
    static bool parse_body(const Request& req, Response& res, json& out) {
        if (auto problem = admin::parse_json_object_body(req.msg.body(), out)) {
            error(req, res, 400, "VALIDATION_ERROR", *problem);
            return false;
        }
        return true;
    }
    // A key the action does not take is refused, not ignored: {"field": {...}} for "fields"
    // approved the claim uncorrected, and NCB booked the value the reviewer meant to fix.
    static bool only_known_keys(const Request& req, Response& res, const json& body, std::initializer_list<std::string_view> known) {
        json unknown = json::object();
        for (const auto& [key, value] : body.items())
            if (std::find(known.begin(), known.end(), key) == known.end())
                unknown[key] = fmt::format("not a key this action takes (it takes: {})", fmt::join(known, ", "));
        if (unknown.empty()) return true;
        std::vector<std::string> names;
        for (const auto& [key, value] : unknown.items()) names.push_back("'" + key + "'");
        error(req, res, 400, "VALIDATION_ERROR",
              fmt::format("unknown key {} in the request body (it takes: {}); nothing was changed", fmt::join(names, ", "), fmt::join(known, ", ")),
              unknown);
        return false;
    }

    void list_jobs(const Request& req, Response& res, std::optional<std::string> forced_status) {
        JobQuery q;
        json problems = json::object();
        auto integer = [&](const char* name, long lo, long hi, long fallback) -> long {
            auto v = req.param(name);
            if (!v) return fallback;
            if (auto n = admin::parse_integer(*v, lo, hi)) return *n;
            problems[name] = fmt::format("must be an integer from {} to {}", lo, hi);
            return fallback;
        };
        q.limit = static_cast<std::size_t>(integer("limit", 1, 100, 50));
        q.offset = static_cast<std::size_t>(integer("offset", 0, 100'000'000, 0));
        if (forced_status) {
            q.status = *forced_status;
        } else if (auto s = req.param("status")) {
            if (is_job_status(*s)) q.status = *s;
            else {
                std::string known;
                for (const char* status : kJobStatuses) known += (known.empty() ? "" : ", ") + std::string(status);
                problems["status"] = "must be one of " + known;
            }
        }
        if (auto e = req.param("email_id")) q.email_id = *e;
        if (auto d = req.param("date_from")) {
            if (auto ms = parse_day(*d, false)) q.from_ms = *ms;
            else problems["date_from"] = "must be a date YYYY-MM-DD";
        }
        if (auto d = req.param("date_to")) {
            if (auto ms = parse_day(*d, true)) q.to_ms = *ms;
            else problems["date_to"] = "must be a date YYYY-MM-DD";
        }
        // The review UI's filters and sorts (route, confidence, age, provider, text search) are
        // not store queries: those requests scan the matching jobs instead.
        const admin::JobFilter filter = admin::parse_job_filter([&](std::string_view name) { return req.param(name); }, problems);
        q.newest_first = filter.sort == "-created_at";
        if (!problems.empty()) return error(req, res, 400, "VALIDATION_ERROR", "invalid query parameters", problems);
        if (admin::needs_scan(filter)) {
            auto found = admin::filter_jobs(backend.store(), q, filter, q.limit, q.offset, now_epoch_ms());
            json m = meta(req);
            m["pagination"] = {{"total", found.total}, {"limit", q.limit}, {"offset", q.offset}};
            if (found.truncated) m["truncated"] = true;
            res.status = 200;
            send_json(res, 200, {{"success", true}, {"data", std::move(found.jobs)}, {"meta", std::move(m)}});
            return;
        }
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
        body += R"(],"meta":)" + docpipe::json_text(m) + "}";
        res.status = 200;
        res.body = std::move(body);
        res.content_type = "application/json";
    }

    static json summarize(const JobAggregate& a) {
        auto count = [&](const char* status) {
            auto it = a.by_status.find(status);
            return it == a.by_status.end() ? std::size_t{0} : it->second;
        };
        // A claim a reviewer approved ends `submitted` once delivered: it counts as approved.
        const std::size_t approved = count("approved") + a.submitted_after_approval;
        const std::size_t auto_submitted = count("submitted") - std::min(count("submitted"), a.submitted_after_approval);
        const std::size_t successful = auto_submitted + approved;
        const std::size_t review = count("review");
        const std::size_t failed = count("failed");
        auto ratio = [&](double n, std::size_t d) { return d ? n / static_cast<double>(d) : 0.0; };
        return {{"processed", a.total},
                {"successful", successful},
                {"auto_submitted", auto_submitted},
                {"approved", approved},
                {"rejected", count("rejected")},
                {"review", review},
                {"failed", failed},
                {"success_rate", ratio(static_cast<double>(successful), a.total)},
                {"review_rate", ratio(static_cast<double>(review), a.total)},
                {"average_confidence", a.confidence_count ? json(a.confidence_sum / a.confidence_count) : json(nullptr)},
                {"average_processing_seconds", a.processing_count ? json(a.processing_ms_sum / a.processing_count / 1000) : json(nullptr)},
                {"average_submission_seconds", a.submission_count ? json(a.submission_ms_sum / a.submission_count / 1000) : json(nullptr)}};
    }

    // The jobs that later stages opened for this job's documents after they crossed a Redis
    // stream (pipelines/distributed: intake -> OCR workers -> delivery), oldest first: with
    // the shared Redis state, any stage's admin API shows an email's whole journey.
    json later_stages(const std::string& job_id) {
        JobQuery q;
        q.root_id = job_id;
        q.limit = 200;
        q.newest_first = false;
        const JobPage page = backend.store().list_jobs(q);
        json stages = json::array();
        for (const auto& s : page.jobs)
            stages.push_back({{"id", s.id},
                              {"status", s.status},
                              {"source", s.source},
                              {"filename", s.filename},
                              {"owner", s.owner},
                              {"pipeline_hash", s.pipeline_hash.str()},
                              {"confidence", s.confidence},
                              {"references", Job::or_empty(s.references)},
                              {"outcomes", s.outcomes()},
                              {"last_error", s.last_error},
                              {"created_ms", s.created_ms},
                              {"updated_ms", s.updated_ms}});
        return stages;
    }

    void dashboard(const Request& req, Response& res) {
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

    void daily(const Request& req, Response& res) {
        auto date = req.param("date");
        if (!date) return error(req, res, 400, "VALIDATION_ERROR", "'date' is required (YYYY-MM-DD)", {{"date", "required"}});
        auto from = parse_day(*date, false);
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
        data["date"] = *date;
        data["by_status"] = a.by_status;
        data["hourly"] = std::move(hourly);
        data["confidence_distribution"] = std::move(histogram);
        data["top_providers"] = std::move(top);
        ok(req, res, std::move(data));
    }
};

// One client connection: reads a request head under a deadline, answers, and either waits
// (bounded) for the next request or closes. Every member runs on the I/O thread.
struct AdminServer::Impl::Connection : std::enable_shared_from_this<Connection> {
    Impl& server;
    beast::tcp_stream stream;
    std::string address;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    Request request;                 // the one being read
    const Route* target = nullptr;   // its route once matched
    // How to answer it, fixed when its head arrives.
    bool head_request = false;
    unsigned version = 11;
    bool client_keeps_alive = false;
    http::response<http::string_body> response;
    std::optional<http::response_serializer<http::string_body>> head_only;  // HEAD answers
    std::array<char, 16 * 1024> scratch{};
    std::size_t drained = 0;

    Connection(Impl& s, tcp::socket socket, std::string addr) : server(s), stream(std::move(socket)), address(std::move(addr)) {}
    ~Connection() { server.release(address); }

    void start() { read_head(); }

    // Between requests on a kept-alive connection: wait (keep_alive_idle_timeout) for the
    // first byte of the next request, then give the head its own deadline.
    void wait_for_next() {
        if (buffer.size() > 0) return read_head();  // pipelined: already here
        stream.expires_after(server.settings.keep_alive_idle_timeout);
        stream.async_read_some(buffer.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
            if (ec) return self->close();
            self->buffer.commit(n);
            self->read_head();
        });
    }

    void read_head() {
        parser.emplace();
        parser->header_limit(kHeaderLimit);
        // No limit while reading the head: we check Content-Length ourselves and answer 413 with
        // the request's context. (Not boost::none: Beast 1.74 compares every length as above it.)
        parser->body_limit(std::numeric_limits<std::uint64_t>::max());
        request = Request{};
        target = nullptr;
        // One deadline for the whole head, not per read: a drip-feeding client is cut off too.
        stream.expires_after(server.settings.request_head_timeout);
        http::async_read_header(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_head(ec);
        });
    }

    void on_head(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset || ec == asio::error::eof)
            return close();  // gone, idle past the deadline, or shutting down: nothing to answer
        if (ec == http::error::header_limit) return answer_bare(431, "REQUEST_HEADER_TOO_LARGE", "request head over 16 KiB");
        if (ec) return answer_bare(400, "BAD_REQUEST", "malformed HTTP request: " + ec.message());  // the parser's words, e.g. "bad method"

        const auto& h = parser->get();
        request.msg.base() = h.base();
        head_request = h.method() == http::verb::head;
        version = h.version();
        client_keeps_alive = h.keep_alive();
        request.method = std::string(h.method_string());
        auto target_parts = admin::parse_target(std::string_view(h.target().data(), h.target().size()));
        request.raw_path = std::move(target_parts.raw_path);
        request.path = std::move(target_parts.path);
        request.params = std::move(target_parts.params);
        request.remote_addr = address;
        request.id = new_request_id(h);

        const auto length = parser->content_length();
        const bool chunked = parser->chunked();
        const bool body_follows = chunked || (length && *length > 0);
        Response res;
        // Framing first. A request with neither Content-Length nor chunked encoding has an
        // empty body (RFC 9112 6.3), so nothing is waited for: `curl -X POST URL`, as the
        // RUNBOOK writes it, sends such a POST. It was answered 411, and the RUNBOOK's
        // dead-letter replay loop retried nothing.
        if (length && *length > server.settings.max_body_bytes) {
            error(request, res, 413, "PAYLOAD_TOO_LARGE",
                  fmt::format("request body too large: {} bytes, the limit is {}", *length, server.settings.max_body_bytes));
            res.close = true;
            return write(std::move(res));
        }
        // Refusals and unknown endpoints are answered before any body is read; an unread body
        // means the connection cannot be reused.
        if (server.gate(request, res) || !(target = server.route(request, res))) {
            res.close = body_follows;
            return write(std::move(res));
        }
        if (!body_follows) return dispatch();
        if (beast::iequals(h[http::field::expect], "100-continue")) {
            static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            stream.expires_after(kWriteTimeout);
            return asio::async_write(stream, asio::buffer(kContinue), [self = shared_from_this()](beast::error_code wec, std::size_t) {
                if (wec) return self->close();
                self->read_body();
            });
        }
        read_body();
    }

    void read_body() {
        parser->body_limit(server.settings.max_body_bytes);  // bounds chunked bodies too
        stream.expires_after(kBodyTimeout);
        http::async_read(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec == http::error::body_limit) {
                Response res;
                error(self->request, res, 413, "PAYLOAD_TOO_LARGE",
                      fmt::format("request body too large: over the limit of {} bytes", self->server.settings.max_body_bytes));
                res.close = true;
                return self->write(std::move(res));
            }
            if (ec) return self->close();
            self->dispatch();
        });
    }

    // Runs the matched handler: on this thread when it is cheap (liveness), else on a worker.
    void dispatch() {
        request.msg.body() = std::move(parser->get().body());
        if (target->on_io_thread) {
            Response res;
            server.run(*target, request, res);
            return write(std::move(res));
        }
        asio::post(*server.pool, [self = shared_from_this(), req = std::move(request), route = target]() mutable {
            Response res;
            self->server.run(*route, req, res);
            // Back to the I/O thread, which owns the socket.
            asio::post(self->server.io, [self, res = std::move(res)]() mutable { self->write(std::move(res)); });
        });
    }

    // An answer when no request could be parsed: minimal, then close.
    void answer_bare(int status, const std::string& code, const std::string& message) {
        Request none;
        none.id = new_request_id({});
        Response res;
        error(none, res, status, code, message);
        res.close = true;
        send(std::move(res), false, 11, false);
    }

    void write(Response res) { send(std::move(res), head_request, version, client_keeps_alive); }

    void send(Response res, bool head, unsigned version, bool client_keeps_alive) {
        if (server.stopped) return close();
        const bool keep = client_keeps_alive && !res.close;
        response = {};
        response.version(version);
        response.result(static_cast<unsigned>(res.status));
        response.set(http::field::content_type, res.content_type);
        for (auto& [field, value] : res.headers) response.set(field, value);
        if (response.find(http::field::cache_control) == response.end()) response.set(http::field::cache_control, "no-store");
        response.set("Content-Security-Policy", beast::string_view(kContentSecurityPolicy.data(), kContentSecurityPolicy.size()));
        response.set("X-Frame-Options", "DENY");
        response.set("X-Content-Type-Options", "nosniff");
        response.set("Referrer-Policy", "no-referrer");
        response.body() = std::move(res.body);
        response.prepare_payload();
        response.keep_alive(keep);
        stream.expires_after(kWriteTimeout);
        auto done = [self = shared_from_this(), keep](beast::error_code ec, std::size_t) {
            if (ec) return self->close();
            if (!keep) return self->finish();
            self->wait_for_next();
        };
        if (head) {
            head_only.emplace(response);
            http::async_write_header(stream, *head_only, std::move(done));
        } else {
            http::async_write(stream, response, std::move(done));
        }
    }

    // Closing after an answer: stop sending, then read and drop what the client is still
    // sending (an unread body) for a moment, so the close does not reset the connection and
    // take our answer with it.
    void finish() {
        beast::error_code ec;
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec) return close();
        drained = 0;
        stream.expires_after(kDrainTimeout);
        drain();
    }

    void drain() {
        stream.async_read_some(asio::buffer(scratch), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
            self->drained += n;
            if (ec || self->drained > kDrainLimit) return self->close();
            self->drain();
        });
    }

    void close() {
        beast::error_code ec;
        stream.socket().close(ec);
        server.live.erase(this);
    }
};

void AdminServer::Impl::serve(tcp::socket socket) {
    std::string address = client_address(socket);
    if (!admit(address)) return refuse_connection(socket, address);
    boost::system::error_code ec;
    // Small JSON answers: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to each.
    socket.set_option(tcp::no_delay(true), ec);
    auto connection = std::make_shared<Connection>(*this, std::move(socket), address);
    live[connection.get()] = connection;  // overwrites a stale entry at a reused address
    connection->start();
}

// Over a connection cap: a fixed 503 written without waiting (it fits the empty send buffer
// of a fresh socket), then close. The client gets a reason; the server spends nothing more.
void AdminServer::Impl::refuse_connection(tcp::socket& socket, const std::string& address) {
    static const std::string kBody =
        R"({"success":false,"error":{"code":"TOO_MANY_CONNECTIONS","message":"too many open connections from this address or in all; close idle ones and retry","details":{}}})";
    static const std::string kAnswer = fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
        "Content-Length: {}\r\n\r\n{}",
        kBody.size(), kBody);
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(kAnswer), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    if (auto dropped = notices.allow("refused " + address)) {
        int mine = 0, total = 0;
        {
            std::lock_guard lock(count_mutex);
            if (auto it = per_client.find(address); it != per_client.end()) mine = it->second;
            total = total_connections;
        }
        log.log(LogLevel::Warn, fmt::format("admin: refused a connection from {}: it has {} open (limit {}), {} open in all (limit {}){}",
                                            address, mine, settings.max_connections_per_client, total, settings.max_connections,
                                            suppressed_note(*dropped)));
    }
}

AdminServer::AdminServer(AdminSettings settings, AdminBackend& backend, Logger& log)
    : impl_(std::make_unique<Impl>(std::move(settings), backend, log)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
    Impl& m = *impl_;
    m.routes();
    const auto fail = [&](const std::string& why) {
        return std::runtime_error(fmt::format("admin server cannot listen on {}:{}: {}", m.settings.host, m.settings.port, why));
    };
    boost::system::error_code ec;
    tcp::resolver resolver(m.io);
    auto endpoints = resolver.resolve(m.settings.host, std::to_string(m.settings.port),
                                      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec) throw fail("not an address here (" + ec.message() + ")");
    std::string last_error = "no address to listen on";
    for (const auto& entry : endpoints) {
        tcp::acceptor acceptor(m.io);
        const auto endpoint = entry.endpoint();
        acceptor.open(endpoint.protocol(), ec);
        if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) acceptor.bind(endpoint, ec);
        // The kernel's maximum backlog: bursts of probes and dashboards queue, not fail.
        if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            last_error = ec.message();
            continue;
        }
        m.acceptor = std::move(acceptor);
        break;
    }
    if (!m.acceptor.is_open()) throw fail(last_error);
    m.bound_port = m.acceptor.local_endpoint().port();
    m.pool.emplace(kWorkerThreads);
    m.accept();
    m.io_thread = std::thread([&m] { m.io.run(); });
}

void AdminServer::stop() {
    if (!impl_) return;
    Impl& m = *impl_;
    if (!m.io_thread.joinable()) return;
    // Close the listener and every connection on the I/O thread (it owns them), then let
    // handlers already running on workers finish: the backend outlives them.
    std::promise<void> closed;
    asio::post(m.io, [&m, &closed] {
        m.stopped = true;
        boost::system::error_code ec;
        m.acceptor.close(ec);
        m.accept_retry.cancel();
        for (auto& [raw, weak] : m.live)
            if (auto c = weak.lock()) c->stream.socket().close(ec);
        m.live.clear();
        closed.set_value();
    });
    closed.get_future().wait();
    m.pool->stop();
    m.pool->join();
    m.io.stop();
    m.io_thread.join();
}

int AdminServer::port() const { return impl_->bound_port; }

}  // namespace docpipe::core
