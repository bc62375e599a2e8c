// The admin server under hostile or sloppy clients, and the HTTP details around it: idle and
// drip-feeding connections, connection caps, liveness while the workers are busy, 405/411,
// 500s that keep internals out of the answer, rate-limited refusal logs, protected detailed
// health, and how review/retry outcomes map to statuses. The server runs against a fake
// backend so each test controls exactly what the backend answers (and when).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "admin_server.hpp"
#include "services.hpp"

using namespace docpipe;
using namespace std::chrono_literals;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using Steady = std::chrono::steady_clock;

namespace {

const std::string kKey = "k3y-for-tests-0123456789abcdef0123456789abcdef";

double ms_since(Steady::time_point t0) { return std::chrono::duration<double, std::milli>(Steady::now() - t0).count(); }

// A raw TCP client. `source` picks the client address: all of 127/8 is loopback on Linux,
// so one test can play many clients and keep them apart for the per-address cap.
class RawClient {
public:
    explicit RawClient(int port, const std::string& source = "127.0.0.1", std::chrono::milliseconds connect_limit = 3s) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0) return;
        sockaddr_in from{};
        from.sin_family = AF_INET;
        ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) return;
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) return;
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(connect_limit.count())) != 1) return;
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        connected_ = err == 0;
    }
    ~RawClient() {
        if (fd_ >= 0) ::close(fd_);
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    bool connected() const { return connected_; }
    bool send(std::string_view data) { return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()); }

    // True while the server has neither closed nor reset the connection (nothing to read yet).
    bool still_open() {
        char c;
        ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }

    struct Read {
        std::string data;
        bool closed = false;  // the server closed (FIN or reset) within the limit
    };
    // Reads until the server closes, `done(data)` holds, or `limit` passes.
    Read read(std::chrono::milliseconds limit, const std::function<bool(const std::string&)>& done = nullptr) {
        Read r;
        const auto end = Steady::now() + limit;
        while (Steady::now() < end) {
            if (done && done(r.data)) return r;
            pollfd p{fd_, POLLIN, 0};
            const int wait = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end - Steady::now()).count());
            if (::poll(&p, 1, std::max(wait, 1)) != 1) continue;
            char buf[4096];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
                r.data.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            r.closed = true;
            return r;
        }
        return r;
    }

private:
    int fd_ = -1;
    bool connected_ = false;
};

// A complete response in `data` (head plus Content-Length bytes of body)?
bool complete_response(const std::string& data) {
    auto end = data.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    auto cl = data.find("Content-Length: ");
    if (cl == std::string::npos || cl > end) return true;
    return data.size() >= end + 4 + std::stoul(data.substr(cl + 16));
}

// Milliseconds for GET /health on a fresh connection, or a negative number when no 200 came
// within `limit`.
double health_ms(int port, std::chrono::milliseconds limit = 5s, const std::string& source = "127.0.0.1") {
    const auto t0 = Steady::now();
    RawClient c(port, source, limit);
    if (!c.connected() || !c.send("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")) return -1;
    auto r = c.read(limit, complete_response);
    if (r.data.rfind("HTTP/1.1 200", 0) != 0 || r.data.find("alive") == std::string::npos) return -1;
    return ms_since(t0);
}

class CaptureLog : public Logger {
public:
    void log(LogLevel, std::string_view message, std::string_view) override {
        std::lock_guard lock(mutex_);
        lines_.emplace_back(message);
    }
    bool enabled(LogLevel) const override { return true; }
    std::vector<std::string> matching(std::string_view needle) const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& l : lines_)
            if (l.find(needle) != std::string::npos) out.push_back(l);
        return out;
    }
    std::string all() const {
        std::lock_guard lock(mutex_);
        std::string out;
        for (const auto& l : lines_) out += l + "\n";
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

// Answers what a test sets; /health/detailed can be held (to occupy every worker) or throw.
class FakeBackend : public core::AdminBackend {
public:
    FakeBackend() : store_(core::open_store("memory", "", clock_)) {}

    bool ready(std::string&) override { return true; }
    json health_detailed() override {
        std::unique_lock lock(mutex_);
        ++detailed_calls_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return !hold_; });
        if (!throw_text.empty()) throw std::runtime_error(throw_text);
        return {{"status", "healthy"}};
    }
    std::string metrics_text() override { return "up 1\n"; }
    core::Store& store() override { return *store_; }
    core::ActionResult retry_job(const std::string& id) override { return record("retry " + id); }
    core::ActionResult approve(const std::string& id, const core::Corrections& corrections, const std::string& notes) override {
        return record("approve " + id + " " + corrections.fields.dump() + " " + corrections.documents.dump() + " " + notes);
    }
    core::ActionResult reject(const std::string& id, const std::string& reason) override { return record("reject " + id + " " + reason); }
    core::ActionResult return_to_review(const std::string& id) override { return record("review " + id); }

    void hold(bool on) {
        std::lock_guard lock(mutex_);
        hold_ = on;
        changed_.notify_all();
    }
    bool wait_detailed_calls(int n, std::chrono::milliseconds limit) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return detailed_calls_ >= n; });
    }
    std::vector<std::string> calls() {
        std::lock_guard lock(mutex_);
        return calls_;
    }
    void add_job(const std::string& id, const std::string& status) {
        core::Job j;
        j.id = id;
        j.status = status;
        store_->put_job(j);
    }

    core::ActionResult next;  // what the next action returns
    std::string throw_text;   // when set, health_detailed throws this

private:
    core::ActionResult record(std::string call) {
        std::lock_guard lock(mutex_);
        calls_.push_back(std::move(call));
        return next;
    }
    core::SystemClock clock_;
    std::unique_ptr<core::Store> store_;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool hold_ = false;
    int detailed_calls_ = 0;
    std::vector<std::string> calls_;
};

// A running server on a free loopback port.
class Served {
public:
    explicit Served(core::AdminSettings s = {}) {
        s.host = "127.0.0.1";
        s.port = 0;
        if (s.api_keys.empty()) s.api_keys = {kKey};
        server_ = std::make_unique<core::AdminServer>(s, backend, log);
        server_->start();
    }
    ~Served() {
        backend.hold(false);
        server_->stop();
    }
    int port() const { return server_->port(); }
    std::unique_ptr<httplib::Client> client() const {
        auto c = std::make_unique<httplib::Client>("127.0.0.1", port());
        c->set_read_timeout(5, 0);
        return c;
    }

    FakeBackend backend;
    CaptureLog log;

private:
    std::unique_ptr<core::AdminServer> server_;
};

json body(const httplib::Result& r) { return json::parse(r->body); }

// ---- idle and slow clients -------------------------------------------------------------

TEST(AdminSlowClients, HealthAnswersWithinASecondUnder200IdleAnd50DripFeedingConnections) {
    core::AdminSettings s;
    // Long deadlines, so the attackers are all still connected while we measure (the point
    // is that they cost nothing, not that they get cut off first).
    s.request_head_timeout = 15s;
    s.keep_alive_idle_timeout = 15s;
    Served server(s);
    const int port = server.port();

    // Spread over addresses 127.0.0.2-16 so the per-address cap (32) does not refuse them:
    // this is about what they cost once admitted.
    std::vector<std::unique_ptr<RawClient>> idle, drip;
    for (int i = 0; i < 200; ++i) idle.push_back(std::make_unique<RawClient>(port, "127.0.0." + std::to_string(2 + i / 20)));
    for (int i = 0; i < 50; ++i) drip.push_back(std::make_unique<RawClient>(port, "127.0.0." + std::to_string(12 + i / 10)));
    int connected = 0;
    for (auto& c : idle) connected += c->connected();
    for (auto& c : drip) connected += c->connected();
    EXPECT_EQ(connected, 250);

    // Each drip client sends a request line one byte every 200 ms and never finishes it.
    const std::string line = "GET /health?" + std::string(400, 'a') + " HTTP/1.1\r\n";
    std::atomic<bool> stop{false};
    std::thread dripper([&] {
        for (std::size_t i = 0; !stop && i < line.size(); ++i) {
            for (auto& c : drip) c->send(std::string_view(line).substr(i, 1));
            std::this_thread::sleep_for(200ms);
        }
    });
    std::this_thread::sleep_for(300ms);  // every connection accepted and waiting

    std::vector<double> took;
    for (int i = 0; i < 5; ++i) {
        took.push_back(health_ms(port, 5s));
        std::this_thread::sleep_for(100ms);
    }
    int idle_open = 0, drip_open = 0;
    for (auto& c : idle) idle_open += c->still_open();
    for (auto& c : drip) drip_open += c->still_open();
    stop = true;
    dripper.join();

    for (double ms : took) {
        EXPECT_GE(ms, 0) << "GET /health got no answer within 5 s";
        EXPECT_LT(ms, 1000) << "GET /health took " << ms << " ms";
    }
    std::string figures;
    for (double ms : took) figures += std::to_string(static_cast<int>(ms)) + " ";
    std::cout << "GET /health under 200 idle + 50 drip-feeding connections (ms): " << figures << "\n";
    EXPECT_GE(idle_open, 195) << "the idle connections were still held while /health was measured";
    EXPECT_GE(drip_open, 45) << "the drip-feeding connections were still held while /health was measured";
}

TEST(AdminSlowClients, SilentConnectionIsClosedAtTheHeadDeadline) {
    core::AdminSettings s;
    s.request_head_timeout = 1s;
    Served server(s);
    RawClient c(server.port());
    ASSERT_TRUE(c.connected());
    const auto t0 = Steady::now();
    auto r = c.read(5s);
    EXPECT_TRUE(r.closed) << "a connection that sends nothing is closed";
    EXPECT_GE(ms_since(t0), 800);
    EXPECT_LT(ms_since(t0), 3000);
}

TEST(AdminSlowClients, DripFeedingClientIsCutOffAtTheHeadDeadlineThoughItKeepsSending) {
    core::AdminSettings s;
    s.request_head_timeout = 1s;
    Served server(s);
    RawClient c(server.port());
    ASSERT_TRUE(c.connected());
    const std::string line = "GET /health?" + std::string(100, 'a') + " HTTP/1.1\r\n";
    const auto t0 = Steady::now();
    bool closed = false;
    for (std::size_t i = 0; i < line.size() && !closed; ++i) {  // 200 ms a byte: ~22 s if never cut
        c.send(line.substr(i, 1));
        closed = c.read(200ms).closed;
    }
    EXPECT_TRUE(closed);
    EXPECT_GE(ms_since(t0), 800);
    EXPECT_LT(ms_since(t0), 3000) << "the deadline covers the whole head, not each read";
}

TEST(AdminSlowClients, KeptAliveConnectionIsClosedAfterTheIdleTimeout) {
    core::AdminSettings s;
    s.request_head_timeout = 10s;
    s.keep_alive_idle_timeout = 1s;
    Served server(s);
    RawClient c(server.port());
    ASSERT_TRUE(c.connected());
    for (int i = 0; i < 2; ++i) {  // keep-alive works: two requests on one connection
        ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n"));
        auto r = c.read(2s, complete_response);
        ASSERT_EQ(r.data.rfind("HTTP/1.1 200", 0), 0u) << r.data;
        ASSERT_FALSE(r.closed);
    }
    const auto t0 = Steady::now();
    auto r = c.read(5s);
    EXPECT_TRUE(r.closed);
    EXPECT_GE(ms_since(t0), 800);
    EXPECT_LT(ms_since(t0), 3000);
}

TEST(AdminSlowClients, ConnectionCapsPerAddressAndInAll) {
    core::AdminSettings s;
    s.request_head_timeout = 15s;
    s.max_connections_per_client = 4;
    s.max_connections = 10;
    Served server(s);
    const int port = server.port();

    std::vector<std::unique_ptr<RawClient>> mine;
    for (int i = 0; i < 4; ++i) mine.push_back(std::make_unique<RawClient>(port, "127.0.0.20"));
    std::this_thread::sleep_for(200ms);
    {
        RawClient extra(port, "127.0.0.20");
        auto r = extra.read(2s);
        EXPECT_TRUE(r.closed) << "the 5th connection from one address is closed at once";
        EXPECT_TRUE(r.data.empty() || r.data.rfind("HTTP/1.1 503", 0) == 0) << r.data;
    }
    for (auto& c : mine) EXPECT_TRUE(c->still_open()) << "the admitted ones are untouched";
    EXPECT_GE(health_ms(port, 2s, "127.0.0.21"), 0) << "another address is served";
    EXPECT_FALSE(server.log.matching("refused a connection from 127.0.0.20").empty()) << server.log.all();

    mine.pop_back();  // frees a slot for 127.0.0.20
    double again = -1;
    for (int i = 0; i < 20 && again < 0; ++i) {
        std::this_thread::sleep_for(100ms);
        again = health_ms(port, 2s, "127.0.0.20");
    }
    EXPECT_GE(again, 0) << "a slot freed by a closed connection is usable again";

    // 3 from .20 now, 7 more fill the total of 10; the 11th is refused from a fresh address.
    for (int i = 0; i < 7; ++i) mine.push_back(std::make_unique<RawClient>(port, "127.0.0." + std::to_string(22 + i / 4)));
    std::this_thread::sleep_for(200ms);
    RawClient over(port, "127.0.0.30");
    EXPECT_TRUE(over.read(2s).closed) << "over max_connections in all";
}

TEST(AdminSlowClients, HealthAnswersWhileEveryWorkerIsBusy) {
    core::AdminSettings s;
    s.max_connections_per_client = 100;
    Served server(s);
    server.backend.hold(true);  // /health/detailed blocks until released
    std::vector<std::future<int>> slow;
    for (int i = 0; i < 40; ++i)
        slow.push_back(std::async(std::launch::async, [&] {
            auto c = server.client();
            c->set_read_timeout(20, 0);
            auto r = c->Get("/health/detailed");
            return r ? r->status : -1;
        }));
    ASSERT_TRUE(server.backend.wait_detailed_calls(16, 10s)) << "every worker is inside the backend";
    for (int i = 0; i < 3; ++i) {
        double ms = health_ms(server.port(), 5s);
        EXPECT_GE(ms, 0);
        EXPECT_LT(ms, 1000);
    }
    server.backend.hold(false);
    for (auto& f : slow) EXPECT_EQ(f.get(), 200) << "the queued requests are answered once the backend frees up";
}

// ---- HTTP details ----------------------------------------------------------------------

TEST(AdminHttp, WrongMethodOnAKnownPathIs405WithAllow) {
    Served server;
    auto c = server.client();
    httplib::Headers key{{"X-API-Key", kKey}};

    auto post_health = c->Post("/health", "", "application/json");
    ASSERT_TRUE(post_health);
    EXPECT_EQ(post_health->status, 405) << post_health->body;
    EXPECT_EQ(post_health->get_header_value("Allow"), "GET, HEAD");
    EXPECT_EQ(body(post_health)["error"]["code"], "METHOD_NOT_ALLOWED");

    auto del = c->Delete("/api/v1/jobs/j1", key);
    EXPECT_EQ(del->status, 405);
    EXPECT_EQ(del->get_header_value("Allow"), "GET, HEAD");

    auto get_retry = c->Get("/api/v1/jobs/j1/retry", key);
    EXPECT_EQ(get_retry->status, 405);
    EXPECT_EQ(get_retry->get_header_value("Allow"), "POST");

    auto unknown = c->Get("/api/v1/nothing-here", key);
    EXPECT_EQ(unknown->status, 404);
    EXPECT_EQ(body(unknown)["error"]["code"], "NOT_FOUND");

    auto head = c->Head("/health");
    EXPECT_EQ(head->status, 200);
    EXPECT_TRUE(head->body.empty());
    EXPECT_TRUE(server.backend.calls().empty());
}

// `curl -X POST URL` (the RUNBOOK's replay loop) sends neither Content-Length nor a chunked
// body: that is an empty body (RFC 9112 6.3), answered at once. It was refused 411, so the
// loop retried nothing.
TEST(AdminHttp, APostWithoutContentLengthHasAnEmptyBodyAndIsAnsweredAtOnce) {
    Served server;
    server.backend.add_job("j1", "failed");
    RawClient c(server.port());
    ASSERT_TRUE(c.connected());
    const auto t0 = Steady::now();
    ASSERT_TRUE(c.send("POST /api/v1/jobs/j1/retry HTTP/1.1\r\nHost: t\r\nX-API-Key: " + kKey + "\r\n\r\n"));
    auto r = c.read(3s, complete_response);
    EXPECT_LT(ms_since(t0), 3000) << "it waited for a body";
    ASSERT_EQ(r.data.rfind("HTTP/1.1 200", 0), 0u) << r.data;
    ASSERT_EQ(server.backend.calls().size(), 1u) << "the retry ran";
    // The connection stays usable: the next request on it is read as a request.
    ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto again = c.read(3s, complete_response);
    EXPECT_EQ(again.data.rfind("HTTP/1.1 200", 0), 0u) << again.data;
}

TEST(AdminHttp, ChunkedAndExpectContinueBodiesAreReadAndCapped) {
    core::AdminSettings s;
    s.max_body_bytes = 1024;
    Served server(s);
    server.backend.add_job("j1", "review");
    const std::string head = "POST /api/v1/exceptions/j1/reject HTTP/1.1\r\nHost: t\r\nX-API-Key: " + kKey + "\r\n";
    {
        RawClient c(server.port());
        ASSERT_TRUE(c.send(head + "Transfer-Encoding: chunked\r\n\r\n" + "d\r\n{\"reason\": \"x\r\n" + "2\r\n\"}\r\n0\r\n\r\n"));
        auto r = c.read(3s, complete_response);
        EXPECT_EQ(r.data.rfind("HTTP/1.1 200", 0), 0u) << r.data;
    }
    {
        const std::string payload = R"({"reason": "dup"})";
        RawClient c(server.port());
        ASSERT_TRUE(c.send(head + "Expect: 100-continue\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n\r\n"));
        auto interim = c.read(3s, [](const std::string& d) { return d.find("\r\n\r\n") != std::string::npos; });
        ASSERT_EQ(interim.data, "HTTP/1.1 100 Continue\r\n\r\n");
        ASSERT_TRUE(c.send(payload));
        auto r = c.read(3s, complete_response);
        EXPECT_EQ(r.data.rfind("HTTP/1.1 200", 0), 0u) << r.data;
    }
    {
        RawClient c(server.port());
        const std::string big(2000, 'x');
        ASSERT_TRUE(c.send(head + "Transfer-Encoding: chunked\r\n\r\n7d0\r\n" + big + "\r\n0\r\n\r\n"));
        auto r = c.read(3s, complete_response);
        EXPECT_EQ(r.data.rfind("HTTP/1.1 413", 0), 0u) << "a chunked body is held to max_body_bytes too: " << r.data;
        EXPECT_NE(r.data.find("\"PAYLOAD_TOO_LARGE\""), std::string::npos) << "the code a Content-Length body gets: " << r.data;
    }
    auto calls = server.backend.calls();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0], "reject j1 x") << "the two chunks joined";
    EXPECT_EQ(calls[1], "reject j1 dup");
}

TEST(AdminHttp, InternalErrorNamesTheRequestIdNotTheCause) {
    Served server;
    server.backend.throw_text = "redis 10.9.8.7:6380: cannot connect (state in /var/lib/docpipe/state.db)";
    auto r = server.client()->Get("/health/detailed", {{"X-Request-ID", "req-500"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    EXPECT_THAT(r->body, Not(HasSubstr("10.9.8.7")));
    EXPECT_THAT(r->body, Not(HasSubstr("/var/lib")));
    auto j = body(r);
    EXPECT_EQ(j["error"]["code"], "INTERNAL_ERROR");
    EXPECT_EQ(j["error"]["message"], "internal error (request id req-500)");
    EXPECT_EQ(j["meta"]["request_id"], "req-500");
    auto logged = server.log.matching("req-500");
    ASSERT_EQ(logged.size(), 1u) << server.log.all();
    EXPECT_THAT(logged[0], HasSubstr("redis 10.9.8.7:6380: cannot connect")) << "the full text goes to the log";
}

TEST(AdminHttp, RefusalsAreLoggedOncePerAddressPerIntervalWithoutTheKey) {
    core::AdminSettings s;
    s.refusal_log_interval = 700ms;
    Served server(s);
    auto c = server.client();
    const std::string wrong = "wrong-SECRET-key-0123456789";
    for (int i = 0; i < 5; ++i) EXPECT_EQ(c->Get("/api/v1/jobs", {{"X-API-Key", wrong}})->status, 403);
    EXPECT_EQ(c->Get("/api/v1/jobs?token=" + wrong)->status, 401);
    EXPECT_EQ(c->Get("/api/v1/jobs", {{"Authorization", "Bearer " + wrong}})->status, 403);
    auto lines = server.log.matching("admin: refused");
    ASSERT_EQ(lines.size(), 1u) << server.log.all();
    EXPECT_THAT(lines[0], HasSubstr("127.0.0.1"));
    EXPECT_THAT(lines[0], HasSubstr("403"));

    // Another address gets its own line at once.
    RawClient other(server.port(), "127.0.0.40");
    ASSERT_TRUE(other.send("GET /api/v1/jobs HTTP/1.1\r\nHost: t\r\nX-API-Key: " + wrong + "\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(other.read(2s, complete_response).data.rfind("HTTP/1.1 403", 0), 0u);
    EXPECT_EQ(server.log.matching("from 127.0.0.40").size(), 1u) << server.log.all();

    std::this_thread::sleep_for(800ms);
    EXPECT_EQ(c->Get("/api/v1/jobs", {{"X-API-Key", wrong}})->status, 403);
    lines = server.log.matching("from 127.0.0.1:");
    ASSERT_EQ(lines.size(), 2u) << server.log.all();
    EXPECT_THAT(lines[1], HasSubstr("6 similar line(s) left out")) << "the next line counts what was left out";
    EXPECT_THAT(server.log.all(), Not(HasSubstr("SECRET"))) << "neither the key nor the query is logged";
}

TEST(AdminHttp, RateLimitedRequestsAreLoggedRateLimited) {
    core::AdminSettings s;
    s.rate_per_second = 0.01;
    s.burst = 1;
    Served server(s);
    auto c = server.client();
    EXPECT_EQ(c->Get("/api/v1/jobs", {{"X-API-Key", kKey}})->status, 200);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(c->Get("/api/v1/jobs", {{"X-API-Key", kKey}})->status, 429);
    auto lines = server.log.matching("admin: refused");
    ASSERT_EQ(lines.size(), 1u) << server.log.all();
    EXPECT_THAT(lines[0], HasSubstr("429 RATE_LIMITED"));
    EXPECT_THAT(server.log.all(), Not(HasSubstr(kKey)));
}

TEST(AdminHttp, DetailedHealthCanRequireAKey) {
    {
        Served open_by_default;
        EXPECT_EQ(open_by_default.client()->Get("/health/detailed")->status, 200);
    }
    core::AdminSettings s;
    s.protect_health_detailed = true;
    Served server(s);
    auto c = server.client();
    EXPECT_EQ(c->Get("/health/detailed")->status, 401);
    EXPECT_EQ(c->Get("/health/detailed", {{"X-API-Key", "nope"}})->status, 403);
    EXPECT_EQ(c->Get("/health/detailed", {{"X-API-Key", kKey}})->status, 200);
    EXPECT_EQ(c->Get("/health")->status, 200) << "liveness stays open";
    EXPECT_EQ(c->Get("/health/ready")->status, 200) << "readiness stays open";
}

// ---- review and retry outcomes ---------------------------------------------------------

TEST(AdminActions, OutcomesMapToStatuses) {
    using O = core::ActionResult::Outcome;
    Served server;
    server.backend.add_job("j1", "review");
    server.backend.add_job("j2", "failed");
    auto c = server.client();
    auto post = [&](const std::string& path, const std::string& text) {
        return c->Post(path, {{"X-API-Key", kKey}}, text, "application/json");
    };

    server.backend.next = core::ActionResult::done();
    auto done = post("/api/v1/jobs/j2/retry", "");
    ASSERT_EQ(done->status, 200) << done->body;
    EXPECT_EQ(body(done)["data"]["id"], "j2");

    server.backend.next = core::ActionResult::fail(O::NotFound, "no such job");
    auto gone = post("/api/v1/jobs/j2/retry", "");
    EXPECT_EQ(gone->status, 404);
    EXPECT_EQ(body(gone)["error"]["code"], "JOB_NOT_FOUND");

    server.backend.next = core::ActionResult::fail(O::Conflict, "job is 'approved'; another reviewer decided first");
    auto conflict = post("/api/v1/exceptions/j1/approve", "{}");
    EXPECT_EQ(conflict->status, 409);
    EXPECT_EQ(body(conflict)["error"]["code"], "CONFLICT");
    EXPECT_EQ(body(conflict)["error"]["message"], "job is 'approved'; another reviewer decided first");

    server.backend.next = core::ActionResult::fail(O::Invalid, "corrections are not valid",
                                                   {{"total_amount", "must be a number"}, {"claim_date", "must be YYYY-MM-DD"}});
    auto invalid = post("/api/v1/exceptions/j1/approve", R"({"fields": {"total_amount": "lots", "claim_date": "soon"}})");
    EXPECT_EQ(invalid->status, 422);
    auto err = body(invalid)["error"];
    EXPECT_EQ(err["code"], "VALIDATION_ERROR");
    EXPECT_EQ(err["details"]["total_amount"], "must be a number");
    EXPECT_EQ(err["details"]["claim_date"], "must be YYYY-MM-DD");

    server.backend.next = core::ActionResult::fail(O::Unavailable, "the state store is not answering");
    auto busy = post("/api/v1/exceptions/j1/reject", R"({"reason": "duplicate"})");
    EXPECT_EQ(busy->status, 503);
    EXPECT_GE(std::stoi(busy->get_header_value("Retry-After", 0)), 1);

    // Malformed bodies are still 400 and never reach the backend.
    const auto before = server.backend.calls().size();
    EXPECT_EQ(post("/api/v1/exceptions/j1/approve", "{not json")->status, 400);
    EXPECT_EQ(post("/api/v1/exceptions/j1/approve", R"({"fields": [1]})")->status, 400);
    EXPECT_EQ(post("/api/v1/exceptions/j1/reject", "{}")->status, 400);
    EXPECT_EQ(server.backend.calls().size(), before);
}

TEST(AdminActions, ApproveWithExpectedStatusRefusesAJobThatMovedOn) {
    Served server;
    server.backend.add_job("j1", "review");
    auto c = server.client();
    auto approve = [&](const std::string& text) {
        return c->Post("/api/v1/exceptions/j1/approve", {{"X-API-Key", kKey}}, text, "application/json");
    };
    auto moved = approve(R"({"expected_status": "failed"})");
    EXPECT_EQ(moved->status, 409);
    EXPECT_EQ(body(moved)["error"]["details"]["status"], "review");
    EXPECT_EQ(approve(R"({"expected_status": "bogus"})")->status, 400);
    EXPECT_TRUE(server.backend.calls().empty());
    EXPECT_EQ(approve(R"({"expected_status": "review", "notes": "ok"})")->status, 200);
    EXPECT_EQ(server.backend.calls().size(), 1u);
}

}  // namespace
