// bench/admin_api — requests/second and latency percentiles of GET /health/detailed and
// GET /api/v1/jobs?limit=50 with 50 concurrent clients against a store of 100,000 jobs,
// for the sqlite and redis backends. Goal: p99 under 50 ms.
//
//   bench_admin_api [--jobs N] [--clients N] [--requests N-per-client] [--backend sqlite|redis|both]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <latch>
#include <thread>

#include <httplib.h>

#include "harness.hpp"
#include "redis_server.hpp"

using namespace docpipe;
using Steady = std::chrono::steady_clock;

namespace {

const std::string kKey = "bench-key-0123456789abcdef0123456789abcdef";

void fill(const std::string& backend, const std::string& where, int jobs) {
    // Several stores (connections) in parallel: Redis round trips dominate the fill.
    const int writers = backend == "redis" ? 8 : 1;
    std::vector<std::thread> threads;
    const std::int64_t start_ms = 1'764'000'000'000;
    for (int w = 0; w < writers; ++w)
        threads.emplace_back([&, w] {
            core::SystemClock clock;
            auto store = core::open_store(backend, where, clock);
            for (int i = w; i < jobs; i += writers) {
                core::Job j;
                j.id = fmt::format("job-{:06}", i);
                j.root_id = j.id;
                j.status = i % 10 == 0 ? "failed" : i % 7 == 0 ? "review" : "submitted";
                j.email_id = fmt::format("<m{}@bench>", i / 3);
                j.created_ms = start_ms + i * 1000;
                j.confidence = 0.5 + (i % 50) / 100.0;
                j.fields = {{"total_amount", {{"value", 10.0 + i % 500}, {"confidence", 0.9}}},
                            {"provider_name", {{"value", fmt::format("Klinik {}", i % 40)}, {"confidence", 0.8}}}};
                store->put_job(j);
            }
        });
    for (auto& t : threads) t.join();
}

struct Result {
    double rps, p50, p90, p99, max;
    int errors;
};

Result hammer(int port, const std::string& path, int clients, int per_client) {
    std::vector<std::vector<double>> latencies(static_cast<std::size_t>(clients));
    std::atomic<int> errors{0};
    std::latch start_line(clients);
    std::vector<std::thread> threads;
    auto t0 = Steady::now();
    for (int c = 0; c < clients; ++c)
        threads.emplace_back([&, c] {
            httplib::Client client("127.0.0.1", port);
            client.set_keep_alive(true);
            client.set_tcp_nodelay(true);
            // Connect first, outside the measurement: the Debian cpp-httplib listens with a
            // backlog of 5, so 50 simultaneous connects cost SYN retries (1 s) — a start-up
            // effect reported separately, not request latency.
            client.Get("/health");
            start_line.arrive_and_wait();
            if (c == 0) t0 = Steady::now();
            for (int i = 0; i < per_client; ++i) {
                const auto s = Steady::now();
                auto r = client.Get(path, {{"X-API-Key", kKey}});
                latencies[static_cast<std::size_t>(c)].push_back(std::chrono::duration<double, std::milli>(Steady::now() - s).count());
                if (!r || r->status != 200) errors++;
            }
        });
    for (auto& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(Steady::now() - t0).count();
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) { return all[std::min(all.size() - 1, static_cast<std::size_t>(p * static_cast<double>(all.size())))]; };
    return {static_cast<double>(all.size()) / seconds, pct(0.5), pct(0.9), pct(0.99), all.back(), errors.load()};
}

}  // namespace

int main(int argc, char** argv) {
    int jobs = 100'000, clients = 50, per_client = 40;
    std::string which = "both";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--jobs") jobs = std::stoi(argv[i + 1]);
        else if (a == "--clients") clients = std::stoi(argv[i + 1]);
        else if (a == "--requests") per_client = std::stoi(argv[i + 1]);
        else if (a == "--backend") which = argv[i + 1];
    }
    std::printf("%-8s %-28s %10s %9s %9s %9s %9s %7s\n", "backend", "endpoint", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors");
    for (const std::string backend : {"sqlite", "redis"}) {
        if (which != "both" && which != backend) continue;
        test::TempDir dir;
        std::unique_ptr<test::RedisServer> redis;
        std::string where = (dir.path() / "state.db").string();
        if (backend == "redis") {
            redis = std::make_unique<test::RedisServer>();
            where = redis->url();
        }
        const auto f0 = Steady::now();
        fill(backend, where, jobs);
        std::fprintf(stderr, "%s: %d jobs stored in %.1f s\n", backend.c_str(), jobs,
                     std::chrono::duration<double>(Steady::now() - f0).count());
        test::Harness h;
        h.logger->set_level(spdlog::level::warn);
        const std::string state = backend == "redis" ? "{backend: redis, url: '" + where + "'}" : "{backend: sqlite, path: '" + where + "'}";
        auto rt = h.build("state: " + state + "\nadmin: {listen: '127.0.0.1:0', api_keys: ['" + kKey +
                              "'], rate_limit_per_second: 1000000, rate_limit_burst: 1000000, max_connections_per_client: 1000}\n"
                              "nodes:\n  in: {component: source.memory, config: {probe: bench}}\n"
                              "  out: {component: sink.null}\n"
                              "edges: [in -> out]\n",
                          false);
        rt->start();
        auto done = std::async(std::launch::async, [&] { return rt->run(); });
        for (const std::string path : {"/health/detailed", "/api/v1/jobs?limit=50", "/api/v1/jobs?limit=50&status=review&offset=500"}) {
            hammer(rt->admin_port(), path, 4, 5);  // warm-up
            Result r = hammer(rt->admin_port(), path, clients, per_client);
            std::printf("%-8s %-28.28s %10.0f %9.2f %9.2f %9.2f %9.2f %7d\n", backend.c_str(), path.c_str(), r.rps, r.p50, r.p90, r.p99,
                        r.max, r.errors);
        }
        rt->request_stop();
        done.get();
    }
    return 0;
}
