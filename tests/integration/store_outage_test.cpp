// A state-store outage is not the documents' fault (ARCHITECTURE.md, "Delivery"): while
// Redis is down, sources pause and documents in flight wait with backoff instead of
// burning their retries; once it is back they continue, each is delivered exactly once,
// every job ends terminal (none left `processing`), and /health/detailed says what
// happened: the store and the nodes that met it are not healthy during the outage, and
// everything is healthy again after it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <sys/wait.h>
#include <unistd.h>
#include <future>

#include <httplib.h>

#include "harness.hpp"
#include "redis_server.hpp"

using namespace docpipe;
using namespace docpipe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

const std::string kKey = "k3y-for-tests-0123456789abcdef0123456789abcdef";
constexpr int kDocs = 10;

// Real-time polling with a bound: the pipeline runs on other threads.
bool eventually(std::chrono::milliseconds limit, const std::function<bool()>& pred) {
    const auto deadline = steady::now() + limit;
    while (true) {
        if (pred()) return true;
        if (steady::now() >= deadline) return false;
        std::this_thread::sleep_for(50ms);
    }
}

json health(httplib::Client& c) {
    auto r = c.Get("/health/detailed");
    if (!r) return json();
    return json::parse(r->body, nullptr, false);
}

// Nodes of /health/detailed whose status is `status`.
std::vector<std::string> nodes_with_status(const json& h, const std::string& status) {
    std::vector<std::string> names;
    if (!h.is_object() || !h.contains("components")) return names;
    for (const auto& [name, entry] : h["components"].items())
        if (entry.value("status", "") == status) names.push_back(name);
    return names;
}

struct Finally {
    std::function<void()> f;
    ~Finally() { f(); }
};

class StoreOutage : public ::testing::TestWithParam<int> {};

TEST_P(StoreOutage, DocumentsWaitForTheStoreThenEachIsDeliveredOnceAndEveryJobIsTerminal) {
    const auto outage = std::chrono::seconds(GetParam());
    RedisServer redis(RedisServer::Persistence::AppendOnly);  // what was stored survives the restart
    Harness h;
    // Few, fast retries everywhere: a document that spent its retries on the outage fails.
    // max_in_flight 4: some documents are still in the source when the store goes away.
    const std::string yaml = "state: {backend: redis, url: '" + redis.url() + "'}\n" +
                             "admin: {listen: '127.0.0.1:0', api_keys: ['" + kKey + "']}\n" + R"(
max_in_flight: 4
runtime: {poll_wait: 20ms, drain_timeout: 10s, stuck_after: 120s}
nodes:
  in: {component: source.memory, config: {probe: src}}
  dedup:
    component: transform.dedup
    retry: {attempts: 3, initial_backoff: 50ms, max_backoff: 200ms}
  slow:
    component: transform.sleep
    retry: {attempts: 3, initial_backoff: 50ms, max_backoff: 200ms}
    config: {delay: 300ms}
  out:
    component: sink.memory
    ledger: true
    retry: {attempts: 3, initial_backoff: 50ms, max_backoff: 200ms}
    config: {probe: out}
edges: [in -> dedup -> slow -> out]
)";
    auto rt = h.build(yaml, false);
    auto& src = probe("src");
    auto& out = probe("out");
    src.feed_distinct(kDocs);
    rt->start();
    auto done = std::async(std::launch::async, [&] { return rt->run(); });
    Finally stop_on_early_exit{[&] {
        if (!done.valid()) return;
        try {
            if (!redis.ping()) redis.start();
        } catch (const std::exception&) {
        }
        rt->request_stop();
        done.wait();
    }};
    httplib::Client client("127.0.0.1", rt->admin_port());
    client.set_read_timeout(15, 0);
    auto accepted = [&] {
        std::lock_guard lock(out.mutex);
        return out.accepted.size();
    };

    // The outage starts with documents in flight (and some still in the source).
    ASSERT_TRUE(eventually(30s, [&] { return accepted() >= 3; })) << "the pipeline did not start delivering";
    ASSERT_LT(accepted(), static_cast<std::size_t>(kDocs)) << "every document was delivered before the outage; the test proves nothing";
    redis.stop();
    const auto outage_started = steady::now();

    // During the outage: the store is not healthy, and a node that met it says so.
    json during;
    const bool reported = eventually(std::max<std::chrono::milliseconds>(outage, 15s), [&] {
        during = health(client);
        return during.is_object() && during["state_store"].value("status", "") != "healthy" &&
               !nodes_with_status(during, "degraded").empty();
    });
    // Not ready while the store is down: sources are paused (it said "ready").
    auto ready = client.Get("/health/ready");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 503) << ready->body;
    EXPECT_THAT(ready->body, ::testing::HasSubstr("state store is unavailable"));
    std::this_thread::sleep_until(outage_started + outage);
    EXPECT_EQ(rt->summary().failed, 0u) << "documents failed during the outage (spent their retries on it):\n"
                                        << rt->summary().format();
    redis.start();

    EXPECT_TRUE(reported) << "during the outage /health/detailed must report state_store not healthy and the nodes whose last "
                             "error was the store as degraded; last answer:\n"
                          << during.dump(2);
    for (const auto& name : nodes_with_status(during, "degraded"))
        EXPECT_FALSE(during["components"][name]["last_error"].is_null()) << name << " is degraded without a last_error";

    // After it: every document continues (within 30 s of the store's return) and settles.
    auto all_settled = [&] {
        std::scoped_lock lock(src.mutex, out.mutex);
        return out.accepted.size() == static_cast<std::size_t>(kDocs) && src.settled.size() == static_cast<std::size_t>(kDocs);
    };
    eventually(30s, [&] { return all_settled() || rt->summary().failed > 0; });  // a failure: no point waiting
    EXPECT_TRUE(all_settled()) << "documents did not all continue and settle once the store was back; in flight:\n"
                             << [&] {
                                    std::string s;
                                    for (const auto& l : rt->in_flight_report()) s += "  " + l + "\n";
                                    return s;
                                }();

    json after;
    const bool healthy_again = eventually(15s, [&] {
        after = health(client);
        if (!after.is_object() || after.value("status", "") != "healthy") return false;
        if (after["state_store"].value("status", "") != "healthy") return false;
        return nodes_with_status(after, "healthy").size() == after["components"].size();
    });
    EXPECT_TRUE(healthy_again) << "after recovery everything reports healthy; last answer:\n" << after.dump(2);
    EXPECT_TRUE(after.contains("jobs_reconciled") && after["jobs_reconciled"].is_number())
        << "/health/detailed has a numeric jobs_reconciled; got:\n"
        << after.dump(2);

    rt->request_stop();
    EXPECT_EQ(done.get(), 0);

    const auto summary = rt->summary();
    EXPECT_EQ(summary.failed, 0u) << summary.format() << h.logs().substr(0, 4000);
    {
        std::scoped_lock lock(src.mutex, out.mutex);
        EXPECT_EQ(src.settled.size(), static_cast<std::size_t>(kDocs));
        for (int i = 0; i < kDocs; ++i) {
            const std::string id = "doc-" + std::to_string(i);
            EXPECT_EQ(out.accepted.count(id) ? out.accepted.at(id) : 0, 1) << id << " must be delivered exactly once";
            auto settled = src.settled.find(id);
            EXPECT_TRUE(settled != src.settled.end() && settled->second.ok)
                << id << ": " << (settled == src.settled.end() ? "never settled" : "nacked: " + settled->second.reason);
        }
    }
    auto& store = rt->state();
    for (int i = 0; i < kDocs; ++i) {
        const std::string id = "doc-" + std::to_string(i);
        auto job = store.get_job(id);
        if (!job) {
            ADD_FAILURE() << "no job record for " << id;
            continue;
        }
        EXPECT_EQ(job->status, "submitted") << id << " (last_error: " << job->last_error << ")";
    }
    core::JobQuery processing;
    processing.status = "processing";
    EXPECT_EQ(store.list_jobs(processing).total, 0u) << "a job was left processing";
    EXPECT_THAT(store.keys("deadletter/"), ::testing::IsEmpty()) << "nothing may be dead-lettered because of the outage";
}

// After an outage the runtime looks again for jobs left `processing` by a process that is
// gone (here: one on this host whose pid no longer runs, as a crashed sibling instance
// sharing the Redis would leave them) and settles those no source delivers again.
TEST(StoreOutageReconcile, JobsLeftByAGoneProcessAreSettledAfterTheStoreReturns) {
    RedisServer redis(RedisServer::Persistence::AppendOnly);
    Harness h;
    auto rt = h.build("state: {backend: redis, url: '" + redis.url() + "'}\n" + "admin: {listen: '127.0.0.1:0', api_keys: ['" + kKey +
                          "'], protect_health_detailed: false}\n" + R"(
runtime: {poll_wait: 20ms}
nodes:
  in: {component: source.memory, config: {probe: src}}
  out: {component: sink.memory, config: {probe: out}}
edges: [in -> out]
)",
                      false);
    rt->start();
    auto done = std::async(std::launch::async, [&] { return rt->run(); });
    Finally stop{[&] {
        if (!redis.ping()) redis.start();
        rt->request_stop();
        if (done.valid()) done.get();
    }};
    httplib::Client client("127.0.0.1", rt->admin_port());
    client.set_read_timeout(15, 0);

    // A process of this host that has exited: its pid runs no more.
    const pid_t gone = ::fork();
    if (gone == 0) ::_exit(0);
    ::waitpid(gone, nullptr, 0);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    core::Job orphan;
    orphan.id = "orphan-1";
    orphan.root_id = orphan.id;
    orphan.status = "processing";
    orphan.owner = std::string(host) + ":" + std::to_string(gone);
    rt->state().put_job(orphan);  // after start-up, so only the outage can find it

    redis.stop();
    EXPECT_TRUE(eventually(10s, [&] { return health(client)["state_store"].value("status", "") != "healthy"; }))
        << "the outage is seen";
    redis.start();
    json after;
    const bool settled = eventually(20s, [&] {
        after = health(client);
        auto job = rt->state().get_job("orphan-1");
        return job && job->status == "failed";
    });
    ASSERT_TRUE(settled) << "the orphaned job is settled after the store came back; health:\n" << after.dump(2) << h.logs().substr(0, 3000);
    auto job = rt->state().get_job("orphan-1");
    EXPECT_THAT(job->last_error, ::testing::HasSubstr("interrupted"));
    EXPECT_GE(health(client).value("jobs_reconciled", 0), 1);
}

// A stop while the store is down: a source blocked writing a job record waited for the whole
// outage_horizon (10 min by default), past systemd's stop timeout. Now the stop gives up on the
// store after drain_timeout; what was not taken stays with its source (nothing acked).
TEST(StoreOutageStop, AStopWhileTheStoreIsDownEndsAfterTheDrainTimeout) {
    RedisServer redis;
    redis.stop();  // down from the start
    Harness h;
    auto rt = h.build("state: {backend: redis, url: '" + redis.url() + "', outage_horizon: 10m}\nadmin: {enabled: false}\n" + R"(
runtime: {poll_wait: 20ms, drain_timeout: 1s}
nodes:
  in: {component: source.memory, config: {probe: stop-src}}
  out: {component: sink.memory, config: {probe: stop-out}}
edges: [in -> out]
)",
                      false);
    auto& src = probe("stop-src");
    src.feed_distinct(3);
    rt->start();
    auto done = std::async(std::launch::async, [&] { return rt->run(); });
    std::this_thread::sleep_for(1s);  // the source is waiting for the store by now
    const auto stop_asked = steady::now();
    rt->request_stop();
    ASSERT_EQ(done.wait_for(60s), std::future_status::ready) << "the stop waited for the store's outage_horizon (10 min)";
    EXPECT_LT(steady::now() - stop_asked, 30s);
    done.get();
    std::lock_guard lock(src.mutex);
    EXPECT_TRUE(src.settled.empty()) << "nothing was taken, so nothing may be acked or nacked";
    EXPECT_THAT(h.logs(), ::testing::HasSubstr("still down after the drain timeout"));
}

// `--once` with the store down said "0 taken, 0 completed, 0 failed" and exited 0.
TEST(StoreOutageOnce, OnceWithTheStoreDownExitsTwoAndNamesWhatWasNotTaken) {
    RedisServer redis;
    redis.stop();
    Harness h;
    auto rt = h.build("state: {backend: redis, url: '" + redis.url() + "', outage_horizon: 1s}\nadmin: {enabled: false}\n" + R"(
runtime: {poll_wait: 20ms}
nodes:
  in: {component: source.memory, config: {probe: once-src}}
  out: {component: sink.memory, config: {probe: once-out}}
edges: [in -> out]
)",
                      true);
    probe("once-src").feed_distinct(2);
    rt->start();
    auto done = std::async(std::launch::async, [&] { return rt->run(); });
    ASSERT_EQ(done.wait_for(60s), std::future_status::ready);
    EXPECT_EQ(done.get(), 2) << rt->summary().format();
    const std::string summary = rt->summary().format();
    EXPECT_THAT(summary, ::testing::HasSubstr("SOURCE PROBLEM"));
    EXPECT_THAT(summary, ::testing::HasSubstr("not taken because the state store was unavailable"));
    EXPECT_THAT(h.logs(), ::testing::HasSubstr("not taken: "));
}

INSTANTIATE_TEST_SUITE_P(Seconds, StoreOutage, ::testing::Values(3, 20), [](const auto& info) {
    return "Outage" + std::to_string(info.param) + "s";
});

}  // namespace
