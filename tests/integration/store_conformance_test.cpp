// One conformance suite, run against every state backend: memory, sqlite and a real Redis.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "docpipe/testing.hpp"
#include "harness.hpp"
#include "redis_server.hpp"
#include "services.hpp"
#include "state/store.hpp"

using namespace docpipe;
using namespace docpipe::core;
using namespace std::chrono_literals;

namespace {

class StoreConformance : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        const std::string backend = GetParam();
        if (backend == "redis") {
            redis_ = std::make_unique<test::RedisServer>();
            store_ = open_store("redis", redis_->url(), system_clock_);
        } else {
            store_ = open_store(backend, (dir_.path() / "state.db").string(), manual_clock_);
        }
    }
    // TTLs run on the store's clock: the manual one moves at once; Redis expires on its own
    // real clock, so there we wait (a lower bound, not a race).
    void advance(std::chrono::milliseconds d) {
        if (GetParam() == "redis") std::this_thread::sleep_for(d);
        else manual_clock_.advance(d);
    }
    Job job(const std::string& id, const std::string& status, std::int64_t created_ms, const std::string& email = "") {
        Job j;
        j.id = id;
        j.root_id = id;
        j.status = status;
        j.created_ms = created_ms;
        j.email_id = email;
        j.fields = {{"total_amount", {{"value", 479.05}, {"confidence", 0.97}}}};
        return j;
    }

    test::TempDir dir_;
    docpipe::testing::ManualClock manual_clock_;
    SystemClock system_clock_;
    std::unique_ptr<test::RedisServer> redis_;
    std::unique_ptr<Store> store_;
};

TEST_P(StoreConformance, ProbeIsAHealthyRoundTrip) {
    auto report = store_->probe();
    EXPECT_EQ(report.status, Health::Healthy) << report.detail;
    EXPECT_EQ(store_->backend(), GetParam());
}

TEST_P(StoreConformance, KeyValueBasics) {
    EXPECT_FALSE(store_->get("a/1"));
    store_->put("a/1", std::string("one\0binary", 10));
    EXPECT_EQ(*store_->get("a/1"), std::string("one\0binary", 10));
    store_->put("a/1", "uno");
    EXPECT_EQ(*store_->get("a/1"), "uno");
    EXPECT_FALSE(store_->put_if_absent("a/1", "again"));
    EXPECT_TRUE(store_->put_if_absent("a/2", "two"));
    EXPECT_TRUE(store_->erase("a/2"));
    EXPECT_FALSE(store_->erase("a/2"));
    EXPECT_FALSE(store_->get("a/2"));
}

TEST_P(StoreConformance, KeysByPrefixAreExactSortedAndLimited) {
    for (const char* k : {"dedup/b", "dedup/a", "dedup/c", "dedupe/x", "dedu", "other/a", "p%_*?[x]/1", "p%_*?[x]/2", "pXY/3"})
        store_->put(k, "v");
    EXPECT_EQ(store_->keys("dedup/", 100), (std::vector<std::string>{"dedup/a", "dedup/b", "dedup/c"}));
    EXPECT_EQ(store_->keys("dedup/", 2), (std::vector<std::string>{"dedup/a", "dedup/b"}));
    EXPECT_EQ(store_->keys("p%_*?[x]/", 100), (std::vector<std::string>{"p%_*?[x]/1", "p%_*?[x]/2"}))
        << "wildcard characters in a prefix are literal";
}

TEST_P(StoreConformance, TtlExpiry) {
    store_->put("dedup/sha", "job-1", 1s);
    EXPECT_TRUE(store_->get("dedup/sha"));
    EXPECT_FALSE(store_->put_if_absent("dedup/sha", "job-2", 1s));
    advance(1300ms);
    EXPECT_FALSE(store_->get("dedup/sha")) << "expired";
    EXPECT_TRUE(store_->keys("dedup/", 10).empty());
    EXPECT_TRUE(store_->put_if_absent("dedup/sha", "job-2", 1s)) << "an expired key counts as absent";
    EXPECT_EQ(*store_->get("dedup/sha"), "job-2");
}

TEST_P(StoreConformance, JobsCrud) {
    EXPECT_FALSE(store_->get_job("nope"));
    store_->put_job(job("j1", "received", 1000, "<m1@x>"));
    auto j = store_->get_job("j1");
    ASSERT_TRUE(j);
    EXPECT_EQ(j->status, "received");
    EXPECT_EQ(j->created_ms, 1000);
    EXPECT_GT(j->updated_ms, 0);
    EXPECT_EQ(j->fields["total_amount"]["value"], 479.05);
    auto updated = store_->update_job("j1", [](Job& x) {
        x.status = "submitted";
        x.references["ncb_reference"] = "CLM-1";
    });
    ASSERT_TRUE(updated);
    EXPECT_EQ(store_->get_job("j1")->status, "submitted");
    EXPECT_EQ(store_->get_job("j1")->references["ncb_reference"], "CLM-1");
    EXPECT_EQ(store_->get_job("j1")->created_ms, 1000) << "created_ms survives updates";
    EXPECT_FALSE(store_->update_job("missing", [](Job&) { FAIL() << "must not be called"; }));
    EXPECT_EQ(store_->list_jobs({.status = std::string("received")}).total, 0u) << "the old status index is cleaned";
    EXPECT_EQ(store_->list_jobs({.status = std::string("submitted")}).total, 1u);
}

// The outcomes and the timeline are stored as JSON text: every backend keeps them as they
// were written, parsed views (outcomes(), to_json) read them back, the raw listing splices them.
TEST_P(StoreConformance, OutcomeAndTimelineTextsRoundTrip) {
    Job j = job("j1", "partial", 1000);
    j.set_outcomes_text(R"([{"doc_id":"a","name":"r\u00e9\"1.jpg","node":"ncb","status":"submitted"},)"
                        R"({"doc_id":"b","node":"ocr","reason":"bad input","status":"failed"}])");
    j.set_trace_text(R"([{"node":"ocr","outcome":"failed"}])");
    store_->put_job(j);
    const auto back = store_->get_job("j1");
    ASSERT_TRUE(back);
    const auto outcomes = back->outcomes();
    ASSERT_EQ(outcomes.size(), 2u) << back->outcomes_text();
    EXPECT_EQ(outcomes[0]["name"], "r\u00e9\"1.jpg");
    EXPECT_EQ(outcomes[1]["reason"], "bad input");
    const auto as_json = back->to_json();
    EXPECT_EQ(as_json["outcomes"], outcomes);
    EXPECT_EQ(as_json["trace"][0]["outcome"], "failed");
    const auto page = store_->list_jobs({.raw = true});
    ASSERT_EQ(page.raw.size(), 1u);
    const auto raw = nlohmann::json::parse(page.raw.front());
    EXPECT_EQ(raw["outcomes"], outcomes);
    EXPECT_EQ(raw["trace"], as_json["trace"]);
    EXPECT_EQ(Job::from_json(raw).outcomes(), outcomes) << "from_json keeps them";
    // Text that is not an array (a hand-edited record) reads as no outcomes, not a crash.
    j.set_outcomes_text("{oops");
    EXPECT_EQ(j.outcomes(), nlohmann::json::array());
}

// A delivery kept as structs (Job::set_delivery) reads and stores as the texts it writes: every
// backend keeps them, copies share the record, and setting one text keeps the other.
TEST_P(StoreConformance, DeliveryRecordIsWrittenAsTextWhenRead) {
    struct FixedDelivery : DeliveryRecord {
        void append_outcomes(std::string& out) const override { out += R"([{"doc_id":"a","node":"s","status":"submitted"}])"; }
        void append_trace(std::string& out) const override { out += R"([{"node":"s","outcome":"delivered"}])"; }
    };
    Job j = job("j1", "submitted", 1000);
    j.set_delivery(std::make_shared<FixedDelivery>());
    EXPECT_EQ(j.outcomes_text(), R"([{"doc_id":"a","node":"s","status":"submitted"}])");
    EXPECT_EQ(j.trace_text(), R"([{"node":"s","outcome":"delivered"}])");
    const auto as_json = nlohmann::json::parse(j.to_json_text());
    EXPECT_EQ(as_json["outcomes"][0]["doc_id"], "a");
    EXPECT_EQ(as_json["trace"][0]["outcome"], "delivered");
    EXPECT_EQ(j.to_json(), as_json);
    store_->put_job(j);
    auto back = store_->get_job("j1");
    ASSERT_TRUE(back);
    EXPECT_EQ(back->outcomes(), as_json["outcomes"]);
    EXPECT_EQ(nlohmann::json::parse(back->trace_text()), as_json["trace"]);
    const auto page = store_->list_jobs({.raw = true});
    ASSERT_EQ(page.raw.size(), 1u);
    EXPECT_EQ(nlohmann::json::parse(page.raw.front())["trace"], as_json["trace"]);
    // Replacing the outcomes keeps the delivery's timeline, and the other way round.
    Job outcomes_replaced = j;
    outcomes_replaced.set_outcomes_text("[]");
    EXPECT_EQ(outcomes_replaced.outcomes(), nlohmann::json::array());
    EXPECT_EQ(outcomes_replaced.trace_text(), j.trace_text());
    Job trace_replaced = j;
    trace_replaced.set_trace_text("[]");
    EXPECT_EQ(trace_replaced.trace_text(), "[]");
    EXPECT_EQ(trace_replaced.outcomes_text(), j.outcomes_text());
}

// open_job_from(): the same from the parts JobBook::start has, as every backend stores them.
TEST_P(StoreConformance, OpenJobFromPartsCreatesOrReopens) {
    const std::string owner = "host:1";
    JobOpening opening{.id = "j1", .root_id = "mail-1", .source = "in", .filename = "a.pdf", .email_id = "<m@x>",
                       .owner = owner, .pipeline_hash = "abc"};
    EXPECT_FALSE(store_->open_job_from(opening)) << "a new job has no earlier status";
    auto created = store_->get_job("j1");
    ASSERT_TRUE(created);
    EXPECT_EQ(created->to_json_text(), [&] {
        Job expected = opening.job();
        expected.created_ms = created->created_ms;
        expected.updated_ms = created->updated_ms;
        return expected.to_json_text();
    }());
    EXPECT_EQ(created->status, "processing");
    EXPECT_EQ(created->attempts, 1);
    EXPECT_EQ(created->root_id, "mail-1");
    EXPECT_EQ(created->email_id, "<m@x>");
    EXPECT_GT(created->created_ms, 0);
    EXPECT_TRUE(store_->modify_job("j1", [](Job& x) {
        x.status = "failed";
        x.last_error = "boom";
    }));
    opening.owner = "host:2";
    const auto previous = store_->open_job_from(opening);
    ASSERT_TRUE(previous) << "a redelivery reopens the job";
    EXPECT_EQ(*previous, "failed");
    auto reopened = store_->get_job("j1");
    EXPECT_EQ(reopened->status, "processing");
    EXPECT_EQ(reopened->attempts, 2);
    EXPECT_EQ(reopened->owner, "host:2");
    EXPECT_EQ(reopened->last_error, "");
    EXPECT_EQ(reopened->created_ms, created->created_ms);
}

// What the runtime does when a source document is taken (JobBook::start) and settled.
TEST_P(StoreConformance, OpenJobCreatesOrReopensAndModifyJobChangesInPlace) {
    Job fresh = job("j1", "processing", 1000);
    fresh.owner = "host:1";
    fresh.attempts = 1;
    EXPECT_FALSE(store_->open_job(fresh)) << "a new job has no earlier status";
    EXPECT_EQ(store_->get_job("j1")->attempts, 1);
    EXPECT_TRUE(store_->modify_job("j1", [](Job& x) {
        x.status = "review";
        x.last_error = "low confidence";
    }));
    EXPECT_FALSE(store_->modify_job("missing", [](Job&) { FAIL() << "must not be called"; }));

    fresh.owner = "host:2";
    auto previous = store_->open_job(fresh);
    ASSERT_TRUE(previous) << "a redelivery reopens the job";
    EXPECT_EQ(*previous, "review");
    auto reopened = store_->get_job("j1");
    EXPECT_EQ(reopened->status, "processing");
    EXPECT_EQ(reopened->attempts, 2);
    EXPECT_EQ(reopened->owner, "host:2");
    EXPECT_EQ(reopened->last_error, "");
    EXPECT_EQ(reopened->created_ms, 1000);
    EXPECT_EQ(store_->list_jobs({.status = std::string("review")}).total, 0u) << "the status index follows";
    EXPECT_EQ(store_->list_jobs({.status = std::string("processing")}).total, 1u);
}

TEST_P(StoreConformance, JobFiltersAndPagination) {
    for (int i = 0; i < 30; ++i)
        store_->put_job(job(fmt::format("job-{:02}", i), i % 3 == 0 ? "failed" : "submitted", 1000 + i * 10,
                            i < 5 ? "<batch@x>" : ""));
    auto all = store_->list_jobs({.limit = 10});
    EXPECT_EQ(all.total, 30u);
    ASSERT_EQ(all.jobs.size(), 10u);
    EXPECT_EQ(all.jobs[0].id, "job-29") << "newest first by default";
    auto page3 = store_->list_jobs({.limit = 10, .offset = 20});
    ASSERT_EQ(page3.jobs.size(), 10u);
    EXPECT_EQ(page3.jobs[9].id, "job-00");
    EXPECT_TRUE(store_->list_jobs({.limit = 10, .offset = 30}).jobs.empty());
    auto oldest = store_->list_jobs({.limit = 2, .newest_first = false});
    EXPECT_EQ(oldest.jobs[0].id, "job-00");
    auto raw = store_->list_jobs({.limit = 10, .offset = 20, .raw = true});
    ASSERT_EQ(raw.raw.size(), 10u);
    EXPECT_TRUE(raw.jobs.empty());
    EXPECT_EQ(nlohmann::json::parse(raw.raw[9])["id"], "job-00") << "raw pages hold the same records in the same order";
    EXPECT_EQ(raw.total, 30u);

    auto failed = store_->list_jobs({.status = std::string("failed"), .limit = 100});
    EXPECT_EQ(failed.total, 10u);
    for (const auto& j : failed.jobs) EXPECT_EQ(j.status, "failed");

    auto range = store_->list_jobs({.from_ms = 1100, .to_ms = 1150, .limit = 100});
    EXPECT_EQ(range.total, 6u) << "inclusive bounds: 1100..1150";

    auto batch = store_->list_jobs({.email_id = std::string("<batch@x>"), .limit = 100});
    EXPECT_EQ(batch.total, 5u);
    auto batch_failed = store_->list_jobs({.status = std::string("failed"), .email_id = std::string("<batch@x>"), .limit = 100});
    EXPECT_EQ(batch_failed.total, 2u) << "job-00 and job-03";

    auto counts = store_->count_jobs_by_status();
    EXPECT_EQ(counts["failed"], 10u);
    EXPECT_EQ(counts["submitted"], 20u);
}

// A distributed pipeline's later stages open jobs of their own whose root_id is the email's
// job: the root's admin view finds them (and not itself, nor another email's stages).
TEST_P(StoreConformance, LaterStagesAreFoundByTheirRootJob) {
    store_->put_job(job("email-1", "submitted", 1000));
    store_->put_job(job("email-2", "submitted", 1001));
    for (int i = 0; i < 3; ++i) {
        Job stage = job(fmt::format("attachment-{}", i), i == 2 ? "review" : "submitted", 1100 + i);
        stage.root_id = "email-1";
        store_->put_job(stage);
    }
    Job other = job("attachment-x", "submitted", 1200);
    other.root_id = "email-2";
    store_->put_job(other);
    // Rewritten (a stage settling later): still one entry.
    ASSERT_TRUE(store_->update_job("attachment-1", [](Job& j) { j.status = "failed"; }));

    auto stages = store_->list_jobs({.root_id = std::string("email-1"), .limit = 100, .newest_first = false});
    EXPECT_EQ(stages.total, 3u);
    ASSERT_EQ(stages.jobs.size(), 3u);
    EXPECT_EQ(stages.jobs[0].id, "attachment-0") << "oldest first when asked";
    EXPECT_EQ(stages.jobs[1].status, "failed");
    EXPECT_EQ(stages.jobs[2].id, "attachment-2");
    auto reviewing = store_->list_jobs({.status = std::string("review"), .root_id = std::string("email-1"), .limit = 100});
    ASSERT_EQ(reviewing.total, 1u);
    EXPECT_EQ(reviewing.jobs[0].id, "attachment-2");
    EXPECT_EQ(store_->list_jobs({.root_id = std::string("email-2"), .limit = 100}).total, 1u);
    EXPECT_EQ(store_->list_jobs({.root_id = std::string("attachment-0"), .limit = 100}).total, 0u) << "a leaf has no later stages";
}

TEST_P(StoreConformance, AggregatesForStats) {
    const std::int64_t day = 1'700'000'000'000 - 1'700'000'000'000 % 86'400'000;  // a UTC midnight
    auto add = [&](const std::string& id, const std::string& status, std::int64_t created, double confidence, const std::string& provider) {
        Job j = job(id, status, created);
        j.confidence = confidence;
        if (!provider.empty()) j.fields["provider_name"] = {{"value", provider}, {"confidence", 0.9}};
        store_->put_job(j);
    };
    add("a", "submitted", day + 1 * 3'600'000, 0.95, "Klinik A");
    add("b", "submitted", day + 1 * 3'600'000 + 5, 0.91, "Klinik A");
    add("c", "review", day + 13 * 3'600'000, 0.55, "Klinik B");
    add("d", "failed", day + 23 * 3'600'000, 0, "");
    add("e", "processing", day + 23 * 3'600'000 + 1, 0.05, "");
    add("other-day", "submitted", day + 86'400'000, 0.99, "Klinik C");
    JobAggregate a = store_->aggregate_jobs(day, day + 86'400'000 - 1);
    EXPECT_EQ(a.total, 5u);
    EXPECT_EQ(a.by_status["submitted"], 2u);
    EXPECT_EQ(a.by_status["review"], 1u);
    EXPECT_EQ(a.by_status["failed"], 1u);
    EXPECT_EQ(a.confidence_count, 4u) << "a confidence of 0 means none";
    EXPECT_NEAR(a.confidence_sum, 0.95 + 0.91 + 0.55 + 0.05, 1e-9);
    EXPECT_EQ(a.confidence_histogram[9], 2u);
    EXPECT_EQ(a.confidence_histogram[5], 1u);
    EXPECT_EQ(a.confidence_histogram[0], 1u);
    EXPECT_EQ(a.processing_count, 4u) << "terminal statuses only";
    EXPECT_EQ(a.submission_count, 2u);
    EXPECT_EQ(a.by_hour[1], 2u);
    EXPECT_EQ(a.by_hour[13], 1u);
    EXPECT_EQ(a.by_hour[23], 2u);
    EXPECT_EQ(a.providers["Klinik A"], 2u);
    EXPECT_EQ(a.providers["Klinik B"], 1u);
    EXPECT_FALSE(a.providers.count("Klinik C"));
}

TEST_P(StoreConformance, EightConcurrentWritersLoseNoUpdate) {
    store_->put_job(job("shared", "processing", 1000));
    std::vector<std::thread> threads;
    std::atomic<int> claimed{0};
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) store_->update_job("shared", [](Job& j) { j.attempts += 1; });
            if (store_->put_if_absent("lock/once", "me")) claimed++;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(store_->get_job("shared")->attempts, 400);
    EXPECT_EQ(claimed.load(), 1) << "exactly one writer wins put_if_absent";
}

TEST_P(StoreConformance, InjectionLookingIdsAreJustData) {
    const std::vector<std::string> ids = {"x'; DROP TABLE jobs;--", "a\r\nFLUSHALL\r\n", "*", "job\" OR 1=1", "../../etc/passwd"};
    for (const auto& id : ids) store_->put_job(job(id, "received", 5));
    for (const auto& id : ids) {
        auto j = store_->get_job(id);
        ASSERT_TRUE(j) << id;
        EXPECT_EQ(j->id, id);
    }
    EXPECT_EQ(store_->list_jobs({.limit = 100}).total, ids.size());
    EXPECT_FALSE(store_->get_job("x"));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::Values("memory", "sqlite", "redis"),
                         [](const auto& info) { return info.param; });

TEST(RedisStore, ProbeSaysUnavailableWhenStoppedAndRecoversWhenBack) {
    test::RedisServer redis;
    SystemClock clock;
    auto store = open_store("redis", redis.url(), clock);
    store->put("k", "v");
    redis.stop();
    auto down = store->probe();
    EXPECT_EQ(down.status, Health::Unavailable);
    EXPECT_NE(down.detail.find("127.0.0.1:" + std::to_string(redis.port())), std::string::npos) << down.detail;
    EXPECT_THROW(store->get("k"), StoreError);
    redis.start();  // empty again: --save ''
    EXPECT_FALSE(store->get("k")) << "the first command after a restart works (fresh connection)";
    redis.stop();
    redis.start();
    store->put("idle", "x");  // the connection left open across this restart is replaced quietly
    auto up = store->probe();
    EXPECT_EQ(up.status, Health::Healthy) << up.detail;
    store->put("k", "v2");
    EXPECT_EQ(*store->get("k"), "v2") << "reconnected without a new store";
}

TEST(RedisStore, BadUrlIsAClearError) {
    SystemClock clock;
    try {
        open_store("redis", "http://nope", clock);
        FAIL();
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("redis://[:password@]host:port/db"), std::string::npos);
    }
}

// A database number the server does not have: SELECT failed, the connection was kept and every
// key went to database 0, where another pipeline's ledgers and dedup keys may live.
TEST(RedisStore, ADatabaseTheServerDoesNotHaveIsAnOutageNotDatabaseZero) {
    test::RedisServer redis;
    SystemClock clock;
    const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port()) + "/99";  // 16 databases by default
    auto store = open_store("redis", url, clock);
    try {
        store->put("k", "v");
        FAIL() << "written somewhere although database 99 does not exist";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("database number in state.url, 99"), std::string::npos) << e.what();
    }
    EXPECT_EQ(store->probe().status, Health::Unavailable);
    auto db0 = open_store("redis", redis.url(), clock);
    EXPECT_FALSE(db0->get("k").has_value()) << "the key went to database 0";
}

TEST(RedisStore, AUrlOfAnotherSchemeSaysItMustStartWithRedis) {
    EXPECT_NE(redis_url_problem("http://localhost:6399").find("must start with redis://"), std::string::npos);
    EXPECT_NE(redis_url_problem("redis://h:70000/0").find("not 1-65535"), std::string::npos);
    EXPECT_EQ(redis_url_problem("redis://:pw@h:6380/2"), "");
}

}  // namespace
