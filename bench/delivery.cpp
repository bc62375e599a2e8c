// bench/delivery: how much sink.ncb adds per claim, and how many claims per second it moves,
// against the fake NCB (tests/fakes/fake_ncb.py) on loopback, which answers at once.
//
// Goal (issue "network delivery"): with 8 concurrent sink workers, delivery must not be
// the bottleneck of a pipeline whose OCR does 2 pages/s, i.e. well above 2 claims/s, with
// a small added latency per claim. The fake is a Python server, so the figures are a lower
// bound on what the client can do; the p50/p99 include the fake's own time.
//
// Usage: bench_delivery [--claims N] [--workers W]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "docpipe/testing.hpp"
#include "fake_process.hpp"

using namespace docpipe;
using clock_type = std::chrono::steady_clock;

namespace {

Document claim(int i) {
    Document d;
    d.id = "bench-claim-" + std::to_string(i);
    d.attributes = {{"message_id", "<b" + std::to_string(i) + "@bench>"}, {"filename", "r.jpg"}};
    d.fields["claim"] = {{"total_amount", {{"value", 10.0 + i % 1000}, {"confidence", 0.95}}},
                         {"service_date", {{"value", "2024-12-24"}, {"confidence", 0.95}}},
                         {"receipt_number", {{"value", "INV-" + std::to_string(i)}, {"confidence", 0.95}}},
                         {"policy_number", {{"value", "POL123456789"}, {"confidence", 0.95}}}};
    d.fields["confidence"] = 0.95;
    d.fields["confidence_level"] = "high";
    return d;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
    int claims = 2000, workers = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--claims")) claims = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--workers")) workers = std::atoi(argv[i + 1]);
    }
    test::FakeProcess ncb({"python3", std::string(DOCPIPE_SOURCE_DIR) + "/tests/fakes/fake_ncb.py", "--port", "0", "--api-key", "bench"});
    auto runner = testing::NodeRunner::from_plugin(std::string(DOCPIPE_BUILD_PLUGIN_DIR) + "/libdocpipe-claims.so", "sink.ncb",
                                                   "base_url: " + ncb.base_url() + "/api/v1\napi_key: bench\n");
    std::vector<Document> docs;
    for (int i = 0; i < claims; ++i) docs.push_back(claim(i));
    std::atomic<int> next{0}, failures{0};
    std::vector<std::vector<double>> latencies(static_cast<std::size_t>(workers));
    const auto t0 = clock_type::now();
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w)
        threads.emplace_back([&, w] {
            for (int i; (i = next.fetch_add(1)) < claims;) {
                const auto s = clock_type::now();
                const auto r = runner.write(docs[static_cast<std::size_t>(i)]);
                latencies[static_cast<std::size_t>(w)].push_back(std::chrono::duration<double, std::milli>(clock_type::now() - s).count());
                if (r.status() != SinkResult::Status::Ok || r.parked()) failures.fetch_add(1);
            }
        });
    for (auto& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    const auto received = nlohmann::json::parse(test::fake_control(ncb.base_url(), "GET", "/_fake/claims"));
    std::printf("sink.ncb, %d workers, %d claims against the fake NCB on loopback: %.0f claims/s; per claim p50 %.2f ms, p99 %.2f ms; "
                "%d not accepted; NCB recorded %zu\n",
                workers, claims, claims / seconds, percentile(all, 0.50), percentile(all, 0.99), failures.load(),
                received["claims"].size());
    return failures.load() == 0 && received["claims"].size() == static_cast<std::size_t>(claims) ? 0 : 1;
}
