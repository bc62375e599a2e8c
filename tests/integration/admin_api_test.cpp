// The admin API over real HTTP: health, auth matrix, envelope, jobs, retry, limits, keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <future>
#include <set>

#include <fmt/core.h>

#include <httplib.h>

#include "fake_process.hpp"
#include "harness.hpp"
#include "redis_server.hpp"

using namespace docpipe;
using namespace docpipe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string kKey = "k3y-for-tests-0123456789abcdef0123456789abcdef";

class AdminApi : public ::testing::Test {
protected:
    void start(const std::string& nodes, const std::string& admin_extra = "", const std::string& state = "{backend: memory}") {
        rt_ = harness_.build("state: " + state + "\nadmin: {listen: '127.0.0.1:0', api_keys: ['" + kKey + "']" + admin_extra +
                                 "}\nruntime: {poll_wait: 20ms}\n" + nodes,
                             false);
        rt_->start();
        done_ = std::async(std::launch::async, [this] { return rt_->run(); });
        client_ = std::make_unique<httplib::Client>("127.0.0.1", rt_->admin_port());
        client_->set_read_timeout(10, 0);
    }
    void TearDown() override {
        if (rt_) {
            rt_->request_stop();
            EXPECT_EQ(done_.get(), 0);
        }
    }
    httplib::Result get(const std::string& path, const httplib::Headers& h = {{"X-API-Key", kKey}}) { return client_->Get(path, h); }
    static json body(const httplib::Result& r) { return json::parse(r->body); }
    // An admin API call with the test's key and a JSON body (approve, reject, retry, review).
    httplib::Result post(const std::string& path, const std::string& body_text = "") {
        return client_->Post(path, {{"X-API-Key", kKey}}, body_text, "application/json");
    }
    // doc-0 in review is approved with 12.50 and NCB books it; the audit after NCB fails, so
    // the job fails; returned to review, it is approved with 13: NCB holds 12.50, so the claim
    // goes back to review. (review_ncb_audit with kAuditFailingOnce, approved_node: ncb.)
    void approve_12_50_book_it_and_approve_13_after_a_failure() {
        ASSERT_TRUE(wait_job("doc-0", "review"));
        ASSERT_EQ(post("/api/v1/exceptions/doc-0/approve", R"({"fields": {"total_amount": 12.5}})")->status, 200);
        ASSERT_TRUE(wait_job("doc-0", "failed")) << "NCB booked it, the audit failed";
        ASSERT_EQ(post("/api/v1/jobs/doc-0/review")->status, 200);
        ASSERT_TRUE(wait_job("doc-0", "review"));
        ASSERT_EQ(post("/api/v1/exceptions/doc-0/approve", R"({"fields": {"total_amount": 13}})")->status, 200);
        ASSERT_TRUE(wait_job("doc-0", "review")) << "NCB holds 12.5: not submitted with 13";
    }
    // Polls the API until the job reaches `status` (the pipeline runs on other threads).
    bool wait_job(const std::string& id, const std::string& status) {
        for (int i = 0; i < 2000; ++i) {  // up to 20 s: generous for a loaded CI machine
            auto r = get("/api/v1/jobs/" + id);
            if (r && r->status == 200 && body(r)["data"]["status"] == status) return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    Harness harness_;
    std::unique_ptr<core::Runtime> rt_;
    std::future<int> done_;
    std::unique_ptr<httplib::Client> client_;
};

const char* kSimple = R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  out: {component: sink.memory, config: {probe: out}}
edges: [in -> out]
)";

// Even-numbered documents go to the review queue, odd ones straight out.
const char* kEvenToReview = R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  route: {component: transform.route}
  review: {component: sink.review, config: {reason: low confidence}}
  out: {component: sink.memory, config: {probe: out}}
edges:
  - in -> route
  - route.even -> review
  - route.odd -> out
)";

TEST_F(AdminApi, HooksReachTheNodesComponentWithoutAnAdminKey) {
    start(kSimple);
    auto& out = probe("out");
    // No admin key: the component authenticates the push itself.
    auto pushed = client_->Post("/hooks/in/push?x=1", {{"x-test-token", "ok"}}, "hooked-doc", "text/plain");
    ASSERT_TRUE(pushed);
    EXPECT_EQ(pushed->status, 204) << pushed->body;
    EXPECT_TRUE(out.wait_for([&] { return out.accepted.count("hooked-doc") == 1; }));
    {
        std::lock_guard lock(out.mutex);
        EXPECT_EQ(out.fields["hooked-doc"]["hook_path"], "/push");
    }
    auto refused = client_->Post("/hooks/in", {{"x-test-token", "forged"}}, "x", "text/plain");
    EXPECT_EQ(refused->status, 401) << "the component's answer is what the caller gets";
    EXPECT_EQ(client_->Post("/hooks/out", "x", "text/plain")->status, 404) << "a sink without HttpHook takes no pushes";
    EXPECT_EQ(client_->Post("/hooks/nope", "x", "text/plain")->status, 404);
    EXPECT_EQ(client_->Get("/hooks/in")->status, 405);
}

TEST_F(AdminApi, HealthEndpoints) {
    start(kSimple);
    auto live = client_->Get("/health");
    ASSERT_TRUE(live);
    EXPECT_EQ(live->status, 200) << "liveness needs no key";
    auto ready = client_->Get("/health/ready");
    EXPECT_EQ(ready->status, 200) << ready->body;
    auto detailed = client_->Get("/health/detailed");
    ASSERT_EQ(detailed->status, 200);
    auto j = body(detailed);
    EXPECT_EQ(j["status"], "healthy");
    EXPECT_EQ(j["state_store"]["status"], "healthy");
    EXPECT_EQ(j["state_store"]["backend"], "memory");
    EXPECT_TRUE(j["state_store"]["latency_ms"].is_number());
    EXPECT_TRUE(j["state_store"]["checked_at"].is_string());
    EXPECT_EQ(j["components"]["out"]["component"], "sink.memory");
    EXPECT_EQ(j["components"]["out"]["status"], "healthy");
    EXPECT_TRUE(j["components"]["out"]["last_error"].is_null());
}

TEST_F(AdminApi, AuthMatrix) {
    start(kSimple);
    auto none = get("/api/v1/jobs", {});
    EXPECT_EQ(none->status, 401);
    EXPECT_EQ(body(none)["error"]["code"], "UNAUTHORIZED");
    EXPECT_EQ(body(none)["success"], false);
    auto wrong = get("/api/v1/jobs", {{"X-API-Key", kKey + "x"}});
    EXPECT_EQ(wrong->status, 403);
    EXPECT_EQ(body(wrong)["error"]["code"], "FORBIDDEN");
    auto wrong_bearer = get("/api/v1/jobs", {{"Authorization", "Bearer nope"}});
    EXPECT_EQ(wrong_bearer->status, 403);
    EXPECT_EQ(get("/api/v1/jobs", {{"X-API-Key", kKey}})->status, 200);
    EXPECT_EQ(get("/api/v1/jobs", {{"Authorization", "Bearer " + kKey}})->status, 200);
    EXPECT_EQ(get("/api/v1/jobs", {{"Authorization", "bearer " + kKey}})->status, 200) << "the scheme is case-insensitive";
    EXPECT_EQ(get("/api/v1/jobs", {{"Authorization", "Basic " + kKey}})->status, 401) << "another scheme is no key";
    EXPECT_EQ(get("/metrics", {})->status, 401) << "metrics are protected by default";
    auto metrics = get("/metrics");
    EXPECT_EQ(metrics->status, 200);
    EXPECT_NE(metrics->body.find("docpipe_build_info{version="), std::string::npos);
    EXPECT_EQ(client_->Get("/health/detailed")->status, 200) << "health needs no key";
}

TEST_F(AdminApi, EnvelopeJobsAndPagination) {
    probe("src").feed(5);
    start(kSimple);
    ASSERT_TRUE(probe("src").wait_for([&] { return probe("src").settled.size() == 5; }));
    ASSERT_TRUE(wait_job("doc-4", "submitted"));

    auto r = get("/api/v1/jobs?limit=2&offset=1", {{"X-API-Key", kKey}, {"X-Request-ID", "req-123"}});
    ASSERT_EQ(r->status, 200) << r->body;
    auto j = body(r);
    EXPECT_EQ(j["success"], true);
    EXPECT_EQ(j["meta"]["request_id"], "req-123");
    EXPECT_TRUE(j["meta"]["timestamp"].is_string());
    EXPECT_EQ(j["meta"]["pagination"]["total"], 5);
    EXPECT_EQ(j["meta"]["pagination"]["limit"], 2);
    ASSERT_EQ(j["data"].size(), 2u);
    EXPECT_EQ(j["data"][0]["status"], "submitted");

    auto one = body(get("/api/v1/jobs/doc-3"));
    EXPECT_EQ(one["data"]["id"], "doc-3");
    EXPECT_EQ(one["data"]["source"], "in");
    EXPECT_EQ(one["data"]["attempts"], 1);

    EXPECT_EQ(body(get("/api/v1/jobs?status=submitted&limit=100"))["meta"]["pagination"]["total"], 5);
    EXPECT_EQ(body(get("/api/v1/jobs?status=failed"))["meta"]["pagination"]["total"], 0);

    auto metrics = get("/metrics")->body;
    EXPECT_NE(metrics.find("docpipe_documents_in_total{node=\"out\"} 5"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("docpipe_processing_seconds_count{node=\"out\"} 5"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("docpipe_source_documents_total{outcome=\"completed\"} 5"), std::string::npos) << metrics;
}

// Across a Redis stream each stage opens its own job; the documents carry the first job's
// id (root_job_id), so the root job's detail lists the later stages' jobs, and each later
// job names its root. A document without the attribute is a root of its own.
TEST_F(AdminApi, AJobShowsTheJobsItsDocumentsOpenedInLaterStages) {
    {
        std::lock_guard lock(probe("src").mutex);
        for (int i = 0; i < 2; ++i) {
            Document d = Document::from_bytes(fmt::format("receipt-{}.jpg", i), "image/jpeg", Bytes{1, 2, static_cast<std::uint8_t>(i)});
            d.id = fmt::format("attachment-{}", i);
            d.attributes["root_job_id"] = "email-1";  // as source.redis_stream delivers it
            probe("src").pending.push_back(std::move(d));
        }
        Document own = Document::from_bytes("loose.jpg", "image/jpeg", Bytes{9});
        own.id = "loose";
        probe("src").pending.push_back(std::move(own));
    }
    start(kSimple);
    ASSERT_TRUE(wait_job("loose", "submitted"));
    ASSERT_TRUE(wait_job("attachment-1", "submitted"));
    core::Job email;
    email.id = email.root_id = "email-1";
    email.status = "submitted";
    email.source = "inbox";
    rt_->state().put_job(email);  // what the intake stage wrote (shared Redis in production)

    const json root = body(get("/api/v1/jobs/email-1"))["data"];
    ASSERT_EQ(root["stages"].size(), 2u) << root;
    EXPECT_EQ(root["stages"][0]["id"], "attachment-0");
    EXPECT_EQ(root["stages"][1]["id"], "attachment-1");
    EXPECT_EQ(root["stages"][0]["status"], "submitted");
    EXPECT_EQ(root["stages"][0]["source"], "in");
    EXPECT_TRUE(root["stages"][0]["owner"].is_string());
    EXPECT_EQ(body(get("/api/v1/jobs/attachment-0"))["data"]["root_id"], "email-1");
    const json loose = body(get("/api/v1/jobs/loose"))["data"];
    EXPECT_EQ(loose["root_id"], "loose");
    EXPECT_TRUE(loose["stages"].empty()) << loose;
}

// An attachment crosses from the OCR stage to delivery with its id unchanged, and the OCR
// stage keeps a job under that id in the shared store. The delivery stage must open a job
// of its own (`<id>@<source node>`), not reopen and overwrite the OCR stage's: with one
// record, whichever stage wrote last decided the status (a claim in review read
// `submitted` and was missing from the review queue).
TEST_F(AdminApi, AStageThatKeepsTheDocumentsIdOpensAJobOfItsOwn) {
    start(R"(
nodes:
  from_ocr: {component: source.memory, config: {probe: src}}
  review: {component: sink.review}
edges: [from_ocr -> review]
)");
    core::Job ocr_stage;
    ocr_stage.id = "claim-0";
    ocr_stage.root_id = "email-1";
    ocr_stage.status = "submitted";  // it delivered the receipt to the next stream
    ocr_stage.source = "from_intake";
    rt_->state().put_job(ocr_stage);
    {
        std::lock_guard lock(probe("src").mutex);
        Document d = Document::from_bytes("receipt.jpg", "image/jpeg", Bytes{7, 7, 7});
        d.id = "claim-0";
        d.attributes["upstream_job_id"] = "claim-0";  // as source.redis_stream delivers it
        d.attributes["root_job_id"] = "email-1";
        probe("src").pending.push_back(std::move(d));
        Document third = Document::from_bytes("again.jpg", "image/jpeg", Bytes{6});
        third.id = "claim-2";
        third.attributes["upstream_job_id"] = "claim-2@from_intake";  // a third stage: still not the first one's job
        probe("src").pending.push_back(std::move(third));
        Document other = Document::from_bytes("other.jpg", "image/jpeg", Bytes{8});
        other.id = "claim-1";
        other.attributes["upstream_job_id"] = "email-1";  // a new id in this stage: its own job id
        probe("src").pending.push_back(std::move(other));
    }
    ASSERT_TRUE(wait_job("claim-0@from_ocr", "review"));
    ASSERT_TRUE(wait_job("claim-2@from_ocr", "review"));
    ASSERT_TRUE(wait_job("claim-1", "review"));
    const json mine = body(get("/api/v1/jobs/claim-0@from_ocr"))["data"];
    EXPECT_EQ(mine["root_id"], "email-1");
    EXPECT_EQ(mine["source"], "from_ocr");
    // The review item is filed under this stage's job (the job_id attribute the runtime
    // stamps), so the review queue shows it and an approval re-enters this stage.
    EXPECT_EQ(body(get("/api/v1/exceptions/claim-0@from_ocr"))["data"]["documents"].size(), 1u);
    const json theirs = body(get("/api/v1/jobs/claim-0"))["data"];
    EXPECT_EQ(theirs["status"], "submitted") << "the OCR stage's job was overwritten: " << theirs;
    EXPECT_EQ(theirs["source"], "from_intake");
    EXPECT_EQ(theirs["attempts"], ocr_stage.attempts) << "reopened as a redelivery: " << theirs;
    EXPECT_EQ(get("/api/v1/jobs/claim-2")->status, 404) << "a third stage reopened a job under the bare id";
    core::Job email;
    email.id = email.root_id = "email-1";
    email.status = "submitted";
    email.source = "inbox";
    rt_->state().put_job(email);
    const json root = body(get("/api/v1/jobs/email-1"))["data"];
    std::set<std::string> stages;
    for (const auto& j : root["stages"]) stages.insert(j["id"].get<std::string>());
    EXPECT_EQ(stages, (std::set<std::string>{"claim-0", "claim-0@from_ocr"})) << "claim-1 has no root_job_id: a root of its own; " << root;
}

TEST_F(AdminApi, DashboardAndDailyStats) {
    probe("src").feed(3);
    start(kSimple, "", "{backend: sqlite, path: '" + (harness_.dir.path() / "s.db").string() + "'}");
    ASSERT_TRUE(wait_job("doc-2", "submitted"));
    auto dash = get("/api/v1/stats/dashboard");
    ASSERT_EQ(dash->status, 200) << dash->body;
    auto d = body(dash)["data"];
    for (const char* window : {"today", "this_week", "this_month"}) {
        EXPECT_EQ(d[window]["processed"], 3) << window;
        EXPECT_EQ(d[window]["successful"], 3) << window;
        EXPECT_EQ(d[window]["success_rate"], 1.0) << window;
        EXPECT_TRUE(d[window]["average_processing_seconds"].is_number()) << window;
        EXPECT_TRUE(d[window]["average_confidence"].is_null()) << "no confidences in this pipeline";
    }
    EXPECT_EQ(d["queues"]["review"], 0);
    std::time_t now = std::time(nullptr);
    char today[11];
    std::strftime(today, sizeof today, "%Y-%m-%d", std::gmtime(&now));
    auto daily = get(std::string("/api/v1/stats/daily?date=") + today);
    ASSERT_EQ(daily->status, 200) << daily->body;
    auto dd = body(daily)["data"];
    EXPECT_EQ(dd["processed"], 3);
    EXPECT_EQ(dd["hourly"].size(), 24u);
    int hourly_total = 0;
    for (const auto& h : dd["hourly"]) hourly_total += h["processed"].get<int>();
    EXPECT_EQ(hourly_total, 3);
    EXPECT_EQ(dd["confidence_distribution"].size(), 10u);
    EXPECT_EQ(get("/api/v1/stats/daily")->status, 400);
    EXPECT_EQ(get("/api/v1/stats/daily?date=29-11-2026")->status, 400);
    EXPECT_EQ(body(get("/api/v1/stats/daily?date=2001-01-01"))["data"]["processed"], 0);
}

TEST_F(AdminApi, ValidationErrorsAndUnknownIds) {
    start(kSimple);
    for (const std::string q : {"limit=0", "limit=101", "limit=ten", "offset=-1", "status=bogus", "date_from=2024-13-01",
                                "date_to=yesterday", "sort=sideways"}) {
        auto r = get("/api/v1/jobs?" + q);
        EXPECT_EQ(r->status, 400) << q;
        EXPECT_EQ(body(r)["error"]["code"], "VALIDATION_ERROR") << q;
        EXPECT_FALSE(body(r)["error"]["details"].empty()) << q;
    }
    EXPECT_EQ(get("/api/v1/jobs?limit=100&date_from=2024-01-01&date_to=2030-12-31&sort=created_at")->status, 200);
    auto missing = get("/api/v1/jobs/does-not-exist");
    EXPECT_EQ(missing->status, 404);
    EXPECT_EQ(body(missing)["error"]["code"], "JOB_NOT_FOUND");
    for (const std::string id : {"x'%3B%20DROP%20TABLE%20jobs%3B--", "a%0D%0AFLUSHALL", "%2A"}) {
        auto r = get("/api/v1/jobs/" + id);
        EXPECT_EQ(r->status, 404) << id;
        EXPECT_EQ(post("/api/v1/jobs/" + id + "/retry")->status, 404) << id;
    }
    EXPECT_EQ(get("/api/v1/jobs")->status, 200) << "nothing was dropped";
}

TEST_F(AdminApi, RetryOfAFailedJobReachesTheSink) {
    probe("src").feed(1);
    start(R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  out:
    component: sink.memory
    retry: {attempts: 1}
    config: {probe: out, fail_first: 1}
edges: [in -> out]
)");
    ASSERT_TRUE(wait_job("doc-0", "failed"));
    auto failed = body(get("/api/v1/jobs/doc-0"))["data"];
    EXPECT_NE(failed["last_error"].get<std::string>().find("endpoint answered 503"), std::string::npos) << failed;
    auto health = body(client_->Get("/health/detailed"));
    EXPECT_NE(health["components"]["out"]["last_error"].get<std::string>().find("503"), std::string::npos);

    auto retry = post("/api/v1/jobs/doc-0/retry");
    ASSERT_EQ(retry->status, 200) << retry->body;
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    EXPECT_EQ(probe("out").accepted.at("doc-0"), 1);
    EXPECT_EQ(body(get("/api/v1/jobs/doc-0"))["data"]["attempts"], 2);
    EXPECT_TRUE(rt_->state().keys("deadletter/").empty()) << "the dead letter is cleared after a successful retry";

    auto again = post("/api/v1/jobs/doc-0/retry");
    EXPECT_EQ(again->status, 409) << "the job moved on: a conflict, not a malformed request";
    EXPECT_EQ(body(again)["error"]["code"], "CONFLICT");
    EXPECT_EQ(body(again)["error"]["message"], "job is 'submitted'; only failed or partial jobs can be retried");
}

// A source that gives up on a document (a poison stream entry: SourceEmitter::reject) gets
// it recorded like a failure in the graph: a failed job with the reason, a dead letter at
// the source node, the source told it failed; a retry sends it on from the source's outputs.
TEST_F(AdminApi, ADocumentASourceRejectsIsAFailedJobThatARetrySendsOn) {
    {
        Document d = Document::from_bytes("entry.bin", "application/octet-stream", Bytes{7, 7, 7});
        d.id = "poison-1";
        d.attributes["test_reject"] = "stream 's' entry 1-0 was delivered 6 times (max_deliveries 5)";
        std::lock_guard lock(probe("src").mutex);
        probe("src").pending.push_back(std::move(d));
    }
    start(R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  out: {component: sink.memory, config: {probe: out}}
edges: [in -> out]
)");
    ASSERT_TRUE(wait_job("poison-1", "failed")) << harness_.logs();
    ASSERT_TRUE(probe("src").wait_for([&] { return probe("src").settled.count("poison-1") > 0; }));
    {
        std::lock_guard lock(probe("src").mutex);
        const Outcome o = probe("src").settled.at("poison-1");
        EXPECT_FALSE(o.ok);
        EXPECT_FALSE(o.keep_input) << "recorded: the source may let its input go";
        EXPECT_NE(o.reason.find("delivered 6 times"), std::string::npos) << o.reason;
    }
    EXPECT_EQ(probe("out").accepted.count("poison-1"), 0u) << "a rejected document does not enter the graph";
    const json job = body(get("/api/v1/jobs/poison-1"))["data"];
    EXPECT_NE(job["last_error"].get<std::string>().find("delivered 6 times"), std::string::npos) << job;
    ASSERT_EQ(job["outcomes"].size(), 1u) << job;
    EXPECT_EQ(job["outcomes"][0]["node"], "in");
    const auto letters = rt_->state().keys("deadletter/");
    ASSERT_EQ(letters.size(), 1u);
    EXPECT_EQ(json::parse(*rt_->state().get(letters[0]))["node"], "in");

    auto retry = post("/api/v1/jobs/poison-1/retry");
    ASSERT_EQ(retry->status, 200) << retry->body;
    ASSERT_TRUE(wait_job("poison-1", "submitted")) << harness_.logs();
    EXPECT_EQ(probe("out").accepted.at("poison-1"), 1) << "the retry went on from the source's outputs";
    EXPECT_TRUE(rt_->state().keys("deadletter/").empty()) << "the dead letter is cleared after the retry";
}

TEST_F(AdminApi, ReviewQueueApproveWithCorrectionsAndReject) {
    probe("src").feed(4);
    start(kEvenToReview, ", approved_node: out");
    ASSERT_TRUE(wait_job("doc-0", "review"));
    ASSERT_TRUE(wait_job("doc-2", "review"));
    ASSERT_TRUE(wait_job("doc-3", "submitted"));
    auto queue = body(get("/api/v1/exceptions"));
    EXPECT_EQ(queue["meta"]["pagination"]["total"], 2);
    EXPECT_EQ(queue["data"][0]["status"], "review");
    EXPECT_EQ(queue["data"][0]["last_error"], "low confidence");

    EXPECT_EQ(body(post("/api/v1/exceptions/doc-0/approve", "{not json"))["error"]["code"], "VALIDATION_ERROR");
    EXPECT_EQ(post("/api/v1/exceptions/doc-0/approve", R"({"fields": [1, 2]})")->status, 400);
    EXPECT_EQ(post("/api/v1/exceptions/doc-0/approve", "[]")->status, 400);
    {
        // A million '[' under the size limit: the copy and dump of the value recursed off the
        // stack and the process died (SIGSEGV). Refused while parsing, the server goes on.
        const std::string deep = R"({"fields": {"total_amount": )" + std::string(500'000, '[') + std::string(500'000, ']') + "}}";
        auto refused = post("/api/v1/exceptions/doc-0/approve", deep);
        ASSERT_TRUE(refused) << "the server went down";
        EXPECT_EQ(refused->status, 400);
        EXPECT_THAT(body(refused)["error"]["message"].get<std::string>(), ::testing::HasSubstr("nests deeper than 32 levels"));
        // A key twice: JSON keeps one of them silently (the last "fields" was booked).
        auto twice = post("/api/v1/exceptions/doc-0/approve",
                          R"({"fields": {"total_amount": 12.5}, "fields": {"total_amount": 99.0}})");
        EXPECT_EQ(twice->status, 400);
        EXPECT_THAT(body(twice)["error"]["message"].get<std::string>(), ::testing::HasSubstr("gives the key 'fields' twice"));
    }
    EXPECT_EQ(post("/api/v1/exceptions/doc-1/approve", "{}")->status, 409) << "doc-1 is not in review";
    EXPECT_EQ(post("/api/v1/exceptions/nope/approve", "{}")->status, 404);
    {
        // "field" for "fields": ignored, it approved the claim uncorrected.
        auto typo = post("/api/v1/exceptions/doc-0/approve", R"({"field": {"total_amount": 400.0}, "note": "corrected"})");
        EXPECT_EQ(typo->status, 400);
        EXPECT_EQ(body(typo)["error"]["code"], "VALIDATION_ERROR");
        EXPECT_THAT(body(typo)["error"]["message"].get<std::string>(),
                    ::testing::HasSubstr("unknown key 'field', 'note' in the request body (it takes: fields, documents, notes, expected_status)"));
        EXPECT_EQ(post("/api/v1/exceptions/doc-2/reject", R"({"reason": "dup", "resaon": "x"})")->status, 400);
    }
    EXPECT_EQ(get("/api/v1/jobs/doc-0")->status, 200);
    EXPECT_EQ(body(get("/api/v1/jobs/doc-0"))["data"]["status"], "review") << "bad requests changed nothing";

    auto approved = post("/api/v1/exceptions/doc-0/approve", R"({"fields": {"total_amount": 479.05}, "notes": "checked the receipt"})");
    ASSERT_EQ(approved->status, 200) << approved->body;
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    ASSERT_TRUE(probe("out").wait_for([&] { return probe("out").accepted.count("doc-0") == 1; }));
    {
        std::lock_guard lock(probe("out").mutex);
        EXPECT_EQ(probe("out").fields.at("doc-0")["total_amount"]["value"], 479.05) << "the correction reached the sink";
        EXPECT_EQ(probe("out").fields.at("doc-0")["total_amount"]["provenance"]["source"], "reviewer");
    }
    EXPECT_EQ(body(get("/api/v1/jobs/doc-0"))["data"]["references"]["reviewer_notes"], "checked the receipt");
    EXPECT_TRUE(body(get("/api/v1/jobs/doc-0"))["data"]["references"]["approved_at"].is_string());
    {
        // Delivered, the approved claim is `submitted`, and the dashboard counts it as approved.
        const json today = body(get("/api/v1/stats/dashboard"))["data"]["today"];
        EXPECT_EQ(today["approved"], 1) << today;
        EXPECT_EQ(today["auto_submitted"], 2) << "doc-1 and doc-3, which no person looked at: " << today;
        EXPECT_EQ(today["successful"], 3) << today;
    }

    EXPECT_EQ(post("/api/v1/exceptions/doc-2/reject", "{}")->status, 400) << "a reason is required";
    EXPECT_EQ(post("/api/v1/exceptions/doc-2/reject", R"({"reason": "   "})")->status, 400) << "a blank reason is none";
    auto numeric = post("/api/v1/exceptions/doc-2/reject", R"({"reason": 123})");
    EXPECT_EQ(numeric->status, 400);
    EXPECT_THAT(numeric->body, ::testing::HasSubstr("must be text"));
    auto rejected = post("/api/v1/exceptions/doc-2/reject", R"({"reason": "duplicate of an earlier claim"})");
    ASSERT_EQ(rejected->status, 200) << rejected->body;
    EXPECT_EQ(body(rejected)["data"]["status"], "rejected");
    // The document's own outcome says so too (it kept saying "review" before).
    const json outcomes = body(get("/api/v1/jobs/doc-2"))["data"]["outcomes"];
    ASSERT_EQ(outcomes.size(), 1u) << outcomes;
    EXPECT_EQ(outcomes[0]["status"], "rejected") << outcomes;
    EXPECT_EQ(outcomes[0]["reason"], "rejected by a reviewer: duplicate of an earlier claim") << outcomes;
    EXPECT_EQ(body(get("/api/v1/exceptions"))["meta"]["pagination"]["total"], 0);
    EXPECT_TRUE(rt_->state().keys("review/").empty()) << "parked documents are cleared once decided";
}

// With the SQLite store too, which counts in SQL: a claim a reviewer approved ends
// `submitted` once delivered, and counts as approved, not as submitted without a person.
TEST_F(AdminApi, AnApprovedClaimCountsAsApprovedNotAsAutoSubmitted) {
    probe("src").feed(4);
    start(kEvenToReview, ", approved_node: out", "{backend: sqlite, path: '" + (harness_.dir.path() / "s.db").string() + "'}");
    ASSERT_TRUE(wait_job("doc-0", "review"));
    ASSERT_TRUE(wait_job("doc-2", "review"));
    ASSERT_TRUE(wait_job("doc-1", "submitted"));
    ASSERT_TRUE(wait_job("doc-3", "submitted"));
    auto approved = post("/api/v1/exceptions/doc-0/approve", "{}");
    ASSERT_EQ(approved->status, 200) << approved->body;
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    const json d = body(get("/api/v1/stats/dashboard"))["data"];
    for (const char* window : {"today", "this_week", "this_month"}) {
        EXPECT_EQ(d[window]["processed"], 4) << window;
        EXPECT_EQ(d[window]["approved"], 1) << window << ": " << d[window];
        EXPECT_EQ(d[window]["auto_submitted"], 2) << window << ": " << d[window];
        EXPECT_EQ(d[window]["review"], 1) << window;
        EXPECT_EQ(d[window]["successful"], 3) << window;
    }
}

// approved_at belongs to the delivery a reviewer approved. The source delivering the same
// document again: where the sink's ledger answers "already delivered", the approved delivery
// stands, mark included; where the pipeline delivers it anew (to a sink it never reached),
// no person approved that, so the mark goes.
TEST_F(AdminApi, TheApprovalMarkStaysWithTheApprovedDeliveryOnly) {
    const std::string state = "{backend: sqlite, path: '" + (harness_.dir.path() / "s.db").string() + "'}";
    probe("src").feed(1);
    start(kEvenToReview, ", approved_node: out", state);
    ASSERT_TRUE(wait_job("doc-0", "review"));
    ASSERT_EQ(post("/api/v1/exceptions/doc-0/approve", "{}")->status, 200);
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    const json approved_at = body(get("/api/v1/jobs/doc-0"))["data"]["references"]["approved_at"];
    ASSERT_TRUE(approved_at.is_string());
    int settled_before = 0;
    auto restart = [&](const std::string& nodes) {
        rt_->request_stop();
        ASSERT_EQ(done_.get(), 0);
        {
            std::lock_guard lock(probe("src").mutex);
            settled_before = probe("src").settle_calls;
        }
        probe("src").feed(1);  // doc-0 again
        start(nodes, "", state);
    };

    // Straight to the sink that delivered it: its ledger answers, and nothing changes.
    restart(kSimple);
    ASSERT_TRUE(probe("src").wait_for([&] { return probe("src").settle_calls > settled_before; }));
    json job = body(get("/api/v1/jobs/doc-0"))["data"];
    EXPECT_EQ(job["status"], "submitted") << job;
    EXPECT_EQ(job["references"].value("approved_at", json()), approved_at) << job;

    // To a sink it never reached: delivered anew by the pipeline alone.
    restart(R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  archive: {component: sink.memory, config: {probe: archive}}
edges: [in -> archive]
)");
    ASSERT_TRUE(probe("archive").wait_for([&] { return probe("archive").accepted.count("doc-0") == 1; }));
    for (int i = 0; i < 200 && body(get("/api/v1/jobs/doc-0"))["data"]["references"].contains("approved_at"); ++i)
        std::this_thread::sleep_for(10ms);
    job = body(get("/api/v1/jobs/doc-0"))["data"];
    EXPECT_EQ(job["status"], "submitted") << job;
    EXPECT_FALSE(job["references"].contains("approved_at")) << job;
}

// A reviewer's corrections are checked by the pipeline's own extraction (transform.claims
// and its amount/date parsers) before anything changes.
TEST_F(AdminApi, ApproveRefusesCorrectionsTheClaimsParsersReject) {
    probe("src").feed(1);
    start(R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  route: {component: transform.route}
  review: {component: sink.review}
  claims: {component: transform.claims}
  out: {component: sink.memory, config: {probe: out}}
edges:
  - in -> route
  - route.even -> review
  - route.odd -> claims -> out
)", ", approved_node: out");
    ASSERT_TRUE(wait_job("doc-0", "review"));
    auto post = [&](const std::string& body_text) {
        return this->post("/api/v1/exceptions/doc-0/approve", body_text);
    };
    auto bad = post(R"({"fields": {"total_amount": "-5; rm -rf /", "service_date": "not-a-date", "receipt_number": "INV-1"}})");
    ASSERT_EQ(bad->status, 422) << bad->body;
    auto details = body(bad)["error"]["details"];
    EXPECT_THAT(details["total_amount"].get<std::string>(), ::testing::HasSubstr("not an amount")) << details;
    EXPECT_THAT(details["service_date"].get<std::string>(), ::testing::HasSubstr("YYYY-MM-DD")) << details;
    EXPECT_FALSE(details.contains("receipt_number")) << "a good field is not reported: " << details;
    auto impossible = post(R"({"fields": {"total_amount": -5, "service_date": "2024-02-31"}})");
    ASSERT_EQ(impossible->status, 422) << impossible->body;
    EXPECT_THAT(body(impossible)["error"]["details"]["service_date"].get<std::string>(), ::testing::HasSubstr("not a calendar date"));
    EXPECT_THAT(body(impossible)["error"]["details"]["total_amount"].get<std::string>(), ::testing::HasSubstr("more than 0"));
    EXPECT_EQ(body(get("/api/v1/jobs/doc-0"))["data"]["status"], "review") << "a refused approval changes nothing";

    auto good = post(R"({"fields": {"total_amount": "RM 479.05", "service_date": "2024-02-29"}})");
    ASSERT_EQ(good->status, 200) << good->body;
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
}

TEST_F(AdminApi, ConcurrentApprovesOnlyTheFirstWins) {
    probe("src").feed(1);
    start(R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  route: {component: transform.route}
  review: {component: sink.review}
  out: {component: sink.memory, config: {probe: out}}
edges:
  - in -> route
  - route.even -> review
  - route.odd -> out
)", ", approved_node: out");
    ASSERT_TRUE(wait_job("doc-0", "review"));
    std::vector<std::future<int>> answers;
    for (int i = 0; i < 5; ++i)
        answers.push_back(std::async(std::launch::async, [this, i] {
            httplib::Client c("127.0.0.1", rt_->admin_port());
            auto r = c.Post("/api/v1/exceptions/doc-0/approve", {{"X-API-Key", kKey}},
                            R"({"fields": {"total_amount": )" + std::to_string(100 + i) + "}}", "application/json");
            return r ? r->status : -1;
        }));
    std::map<int, int> by_status;
    for (auto& a : answers) by_status[a.get()]++;
    EXPECT_EQ(by_status[200], 1) << "exactly one reviewer's approval is taken";
    EXPECT_EQ(by_status[409], 4) << "the others are told it moved on" << ::testing::PrintToString(by_status);
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    std::this_thread::sleep_for(100ms);  // a second, wrong delivery would land now
    std::lock_guard lock(probe("out").mutex);
    EXPECT_EQ(probe("out").accepted.at("doc-0"), 1) << "the approved claim is delivered once";
    const double total = probe("out").fields.at("doc-0")["total_amount"]["value"].get<double>();
    EXPECT_EQ(body(get("/api/v1/jobs/doc-0"))["data"]["fields"]["total_amount"]["value"].get<double>(), total)
        << "the job keeps the total that was delivered";
}

// Even documents go to review; approved ones go to `ncb`, which fails the first
// `fail_first` writes of each document (one attempt each).
std::string review_then_ncb(int fail_first) {
    return fmt::format(R"(
nodes:
  in: {{component: source.memory, config: {{probe: src}}}}
  route: {{component: transform.route}}
  review: {{component: sink.review}}
  out: {{component: sink.memory, config: {{probe: out}}}}
  ncb:
    component: sink.memory
    retry: {{attempts: 1}}
    config: {{probe: ncb, fail_first: {}}}
edges:
  - in -> route
  - route.even -> review
  - route.odd -> out
  - route.odd -> ncb
)", fail_first);
}

TEST_F(AdminApi, AJobThatFailedAfterApprovalReturnsToReview) {
    probe("src").feed(1);
    start(review_then_ncb(1), ", approved_node: ncb");
    ASSERT_TRUE(wait_job("doc-0", "review"));
    EXPECT_EQ(post("/api/v1/jobs/doc-0/review")->status, 409) << "a job in review cannot be returned to it";
    ASSERT_EQ(post("/api/v1/exceptions/doc-0/approve", R"({"fields": {"total_amount": 12.5}})")->status, 200);
    ASSERT_TRUE(wait_job("doc-0", "failed")) << "the NCB refused the approved claim";
    EXPECT_FALSE(rt_->state().keys("deadletter-index/doc-0/").empty());

    auto back = post("/api/v1/jobs/doc-0/review");
    ASSERT_EQ(back->status, 200) << back->body;
    EXPECT_EQ(body(back)["data"]["status"], "review");
    EXPECT_THAT(body(back)["data"]["last_error"].get<std::string>(), ::testing::HasSubstr("returned to review"));
    EXPECT_TRUE(rt_->state().keys("deadletter-index/doc-0/").empty()) << "the review decides now, not a retry";
    EXPECT_EQ(body(get("/api/v1/exceptions"))["meta"]["pagination"]["total"], 1);
    EXPECT_FALSE(body(get("/api/v1/jobs/doc-0"))["data"]["references"].contains("approved_at")) << "the approval did not go out";

    ASSERT_EQ(post("/api/v1/exceptions/doc-0/approve", R"({"fields": {"total_amount": 12.5}})")->status, 200);
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    EXPECT_TRUE(body(get("/api/v1/jobs/doc-0"))["data"]["references"]["approved_at"].is_string());
    std::lock_guard lock(probe("ncb").mutex);
    EXPECT_EQ(probe("ncb").accepted.at("doc-0"), 1);
}

// An approved claim whose delivery keeps failing is retried until it goes through: each
// failed retry replaces the job's dead letter (it used to add one, so the letters went 1, 2,
// 4, and the retry that worked sent the claim 4 times), and the delivery that works removes
// the parked document and its page images, as an approval that goes through at once does.
TEST_F(AdminApi, RetriesOfAFailedApprovalKeepOneLetterAndDeliverOnce) {
    probe("src").feed(1);
    start(review_then_ncb(3), ", approved_node: ncb");
    ASSERT_TRUE(wait_job("doc-0", "review"));
    ASSERT_FALSE(rt_->state().keys("review/doc-0/").empty());
    ASSERT_EQ(post("/api/v1/exceptions/doc-0/approve", R"({"fields": {"total_amount": 12.5}})")->status, 200);
    ASSERT_TRUE(wait_job("doc-0", "failed"));
    EXPECT_EQ(rt_->state().keys("deadletter-index/doc-0/").size(), 1u);
    for (int retry = 1; retry <= 2; ++retry) {
        ASSERT_EQ(post("/api/v1/jobs/doc-0/retry")->status, 200) << "retry " << retry;
        ASSERT_TRUE(wait_job("doc-0", "failed")) << "retry " << retry;
        EXPECT_EQ(rt_->state().keys("deadletter-index/doc-0/").size(), 1u) << "after failed retry " << retry;
        EXPECT_EQ(rt_->state().keys("deadletter/").size(), 1u) << "after failed retry " << retry;
        EXPECT_FALSE(rt_->state().keys("review/doc-0/").empty()) << "kept while the approval has not gone through";
    }
    ASSERT_EQ(post("/api/v1/jobs/doc-0/retry")->status, 200);
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    {
        std::lock_guard lock(probe("ncb").mutex);
        EXPECT_EQ(probe("ncb").accepted.at("doc-0"), 1) << "delivered once";
    }
    EXPECT_TRUE(rt_->state().keys("deadletter/").empty());
    EXPECT_TRUE(rt_->state().keys("review/doc-0/").empty()) << "the parked claim goes once delivered";
    EXPECT_EQ(body(get("/api/v1/exceptions"))["meta"]["pagination"]["total"], 0);
}

// Even documents go to review, odd ones to `ncb` (which answers with a reference); the audit
// node (`audit`, its YAML) follows NCB's `accepted` port and, if `review_audited`, the review
// queue's, as in the shipped pipelines.
const char* kAuditFailingOnce = "{component: sink.memory, retry: {attempts: 1}, config: {probe: audit, fail_first: 1}}";

// `dedup`: transform.dedup between the source and the route, as the shipped pipelines have it.
std::string review_ncb_audit(const std::string& audit, bool review_audited, bool dedup = false) {
    return R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  route: {component: transform.route}
  review: {component: sink.review}
  ncb: {component: sink.memory, config: {probe: ncb, reference: ncb_claim_reference}}
  audit: )" + audit + (dedup ? "\n  dedup: {component: transform.dedup}" : "") + R"(
edges:
  - )" + (dedup ? "in -> dedup -> route" : "in -> route") + R"(
  - route.even -> review
  - route.odd -> ncb
  - ncb.accepted -> audit
)" + (review_audited ? "  - review.accepted -> audit\n" : "");
}

// The audit after NCB and after the review queue (`ncb.accepted -> audit`, `review.accepted
// -> audit`, as the shipped pipelines): a claim that went to review got its audit entry then;
// approved and booked, it gets another, with NCB's reference. The audit's ledger entry from
// the review stopped it ("already delivered"), so the audit never saw the NCB reference.
TEST_F(AdminApi, AnApprovedClaimReachesTheAuditAgainWithTheNcbReference) {
    probe("src").feed(1);
    start(review_ncb_audit("{component: sink.memory, config: {probe: audit}}", true), ", approved_node: ncb");
    ASSERT_TRUE(wait_job("doc-0", "review"));
    {
        std::lock_guard lock(probe("audit").mutex);
        ASSERT_EQ(probe("audit").accepted.at("doc-0"), 1) << "the review's audit entry";
        EXPECT_EQ(probe("audit").attributes.at("doc-0").count("ncb_claim_reference"), 0u);
        EXPECT_EQ(probe("audit").attributes.at("doc-0").at("parked_by"), "review");
        EXPECT_EQ(probe("audit").attributes.at("doc-0").at("parked_reason"), "needs review") << "sink.review's reason";
    }
    auto approved = post("/api/v1/exceptions/doc-0/approve", R"({"fields": {"total_amount": 12.5}})");
    ASSERT_EQ(approved->status, 200) << approved->body;
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    std::lock_guard lock(probe("audit").mutex);
    EXPECT_EQ(probe("audit").accepted.at("doc-0"), 2) << "the approval's audit entry, after NCB";
    const auto& attributes = probe("audit").attributes.at("doc-0");
    EXPECT_EQ(attributes.at("ncb_claim_reference"), "ncb_claim_reference:doc-0");
    EXPECT_EQ(attributes.at("approved_at"), body(get("/api/v1/jobs/doc-0"))["data"]["references"]["approved_at"]);
    EXPECT_EQ(probe("audit").fields.at("doc-0")["total_amount"]["value"], 12.5) << "with the reviewer's correction";
    EXPECT_EQ(attributes.count("parked_by"), 0u);
    // The review's entry is kept apart; the approved claim's entries are the plain ones, so an
    // approval repeated after a restart finds the claim delivered (NCB and the audit alike).
    EXPECT_TRUE(rt_->state().get("ledger/audit/doc-0@parked"));
    EXPECT_TRUE(rt_->state().get("ledger/audit/doc-0"));
    EXPECT_TRUE(rt_->state().get("ledger/ncb/doc-0"));
}

// An approval NCB booked whose job did not settle (here the audit after NCB failed; a process
// that stopped does the same), returned to review and approved with another amount: NCB's
// ledger entry answered "delivered", and the job ended `submitted` with the new amount while
// NCB kept the first, silently. Now the claim goes back to review naming both values, and an
// approval with the booked values closes it.
TEST_F(AdminApi, AReapprovalWithOtherValuesThanNcbBookedGoesBackToReviewSayingSo) {
    probe("src").feed(1);
    start(review_ncb_audit(kAuditFailingOnce, false), ", approved_node: ncb");
    approve_12_50_book_it_and_approve_13_after_a_failure();
    if (HasFatalFailure()) return;
    const json job = body(get("/api/v1/jobs/doc-0"))["data"];
    const std::string why = job["last_error"].get<std::string>();
    EXPECT_THAT(why, ::testing::HasSubstr("total_amount: 12.5 delivered, 13 now"));
    EXPECT_THAT(why, ::testing::HasSubstr("ncb_claim_reference ncb_claim_reference:doc-0"));
    EXPECT_THAT(why, ::testing::HasSubstr("'ncb' delivered this claim before"));
    {
        std::lock_guard lock(probe("ncb").mutex);
        EXPECT_EQ(probe("ncb").accepted.at("doc-0"), 1) << "not sent again";
    }
    const json queue = body(get("/api/v1/exceptions"));
    ASSERT_EQ(queue["meta"]["pagination"]["total"], 1) << "a reviewer can act on it: " << queue;

    ASSERT_EQ(post("/api/v1/exceptions/doc-0/approve", R"({"fields": {"total_amount": 12.5}})")->status, 200);
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    EXPECT_EQ(body(get("/api/v1/jobs/doc-0"))["data"]["fields"]["total_amount"]["value"], 12.5);
    std::lock_guard lock(probe("ncb").mutex);
    EXPECT_EQ(probe("ncb").accepted.at("doc-0"), 1) << "delivered once";
    std::lock_guard audit_lock(probe("audit").mutex);
    EXPECT_EQ(probe("audit").fields.at("doc-0")["total_amount"]["value"], 12.5) << "the audit says what NCB holds";
}

// The claim above, rejected by its reviewer instead (the runbook's "correct the claim in NCB
// and reject it here"): NCB still holds it. The same receipt sent again in a new email was
// new to transform.dedup (a rejected job did not stand) and could be booked a second time.
TEST_F(AdminApi, AClaimNcbHoldsThatAReviewerRejectedIsADuplicateWhenSentAgain) {
    probe("src").feed(1);
    start(review_ncb_audit(kAuditFailingOnce, false, true), ", approved_node: ncb");
    approve_12_50_book_it_and_approve_13_after_a_failure();
    if (HasFatalFailure()) return;
    ASSERT_EQ(post("/api/v1/exceptions/doc-0/reject", R"({"reason": "corrected in NCB by hand"})")->status, 200);
    ASSERT_TRUE(wait_job("doc-0", "rejected"));
    const json outcomes = body(get("/api/v1/jobs/doc-0"))["data"]["outcomes"];
    ASSERT_EQ(outcomes.size(), 1u) << outcomes;
    EXPECT_EQ(outcomes[0]["status"], "rejected") << outcomes;
    EXPECT_EQ(outcomes[0].value("held", false), true) << "NCB holds it: " << outcomes;

    probe("src").feed(1, "again-");  // the same receipt, in a new email
    ASSERT_TRUE(wait_job("again-0", "skipped"));
    EXPECT_EQ(body(get("/api/v1/jobs/again-0"))["data"]["duplicate_of"], "doc-0");
    std::lock_guard lock(probe("ncb").mutex);
    EXPECT_EQ(probe("ncb").accepted.at("doc-0"), 1);
    EXPECT_EQ(probe("ncb").accepted.count("again-0"), 0u);
}

// The claim above, approved again with the values NCB booked, and that approval failed (the
// audit after NCB answered 503 once more): the approval's fresh outcome, `failed`, replaced
// the one that said NCB holds the claim. Without the mark carried over, the same receipt sent
// again in a new email was new to transform.dedup (a failed job booked nothing) and could be
// booked a second time.
TEST_F(AdminApi, AClaimNcbHoldsWhoseApprovalFailsAgainIsADuplicateWhenSentAgain) {
    probe("src").feed(1);
    start(review_ncb_audit(kAuditFailingOnce, false, true), ", approved_node: ncb");
    approve_12_50_book_it_and_approve_13_after_a_failure();
    if (HasFatalFailure()) return;
    {
        const json outcomes = body(get("/api/v1/jobs/doc-0"))["data"]["outcomes"];
        ASSERT_EQ(outcomes.size(), 1u) << outcomes;
        ASSERT_EQ(outcomes[0].value("held", false), true) << "NCB holds it: " << outcomes;
    }
    {
        // The audit answers 503 to doc-0's next write again (fail_first counts the writes of
        // each document, and its one failure was spent by the first approval).
        std::lock_guard lock(probe("audit").mutex);
        probe("audit").attempts["doc-0"] = 0;
    }
    ASSERT_EQ(post("/api/v1/exceptions/doc-0/approve", R"({"fields": {"total_amount": 12.5}})")->status, 200);
    ASSERT_TRUE(wait_job("doc-0", "failed")) << "NCB had it already (ledger), the audit failed";
    const json outcomes = body(get("/api/v1/jobs/doc-0"))["data"]["outcomes"];
    ASSERT_EQ(outcomes.size(), 1u) << outcomes;
    EXPECT_EQ(outcomes[0]["status"], "failed") << outcomes;
    EXPECT_EQ(outcomes[0].value("held", false), true) << "NCB holds it still: " << outcomes;

    probe("src").feed(1, "again-");  // the same receipt, in a new email
    ASSERT_TRUE(wait_job("again-0", "skipped")) << "a copy of a claim NCB holds, ended "
                                                 << (rt_->state().get_job("again-0") ? rt_->state().get_job("again-0")->status : "unknown");
    EXPECT_EQ(body(get("/api/v1/jobs/again-0"))["data"]["duplicate_of"], "doc-0");
    std::lock_guard lock(probe("ncb").mutex);
    EXPECT_EQ(probe("ncb").accepted.at("doc-0"), 1);
    EXPECT_EQ(probe("ncb").accepted.count("again-0"), 0u);
}

// NCB took the claim, the audit after it failed; the operator's retry writes the audit row.
// The document's outcome keeps the NCB reference its first delivery recorded (the retry's
// fresh outcome, from the audit alone, replaced it).
// With two documents, the first retried letter to settle replaced both failed outcomes, and
// the other document's NCB reference went with it.
TEST_F(AdminApi, ARetryAfterTheAuditFailedKeepsTheNcbReferenceOnTheOutcome) {
    probe("src").feed(1);
    start(R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  split: {component: transform.split, config: {children: 2}}
  ncb: {component: sink.memory, config: {probe: ncb, reference: ncb_claim_reference}}
  audit: {component: sink.memory, retry: {attempts: 1}, config: {probe: audit, fail_first: 1, reference: sheets_range}}
edges: [in -> split -> ncb, ncb.accepted -> audit]
)");
    ASSERT_TRUE(wait_job("doc-0", "failed"));
    ASSERT_EQ(post("/api/v1/jobs/doc-0/retry")->status, 200);
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    const json job = body(get("/api/v1/jobs/doc-0"))["data"];
    ASSERT_EQ(job["outcomes"].size(), 2u) << job;
    for (const auto& outcome : job["outcomes"]) {
        const std::string doc = outcome["doc_id"];
        EXPECT_EQ(outcome["references"].value("ncb_claim_reference", ""), "ncb_claim_reference:" + doc) << job;
        EXPECT_EQ(outcome["references"].value("sheets_range", ""), "sheets_range:" + doc) << job;
        std::lock_guard lock(probe("ncb").mutex);
        EXPECT_EQ(probe("ncb").accepted.at(doc), 1) << "the retry starts at the audit, not at NCB";
    }
}

// The first email's receipt failed at NCB; the member sent it again, and the resend went
// through transform.dedup in its place. An operator's retry of the first job would book the
// receipt twice: it is refused, naming the job that took over.
TEST_F(AdminApi, ARetryOfAReceiptSentAgainElsewhereIsRefused) {
    probe("src").feed(1);
    start(R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  dedup: {component: transform.dedup}
  ncb:
    component: sink.memory
    retry: {attempts: 1}
    config: {probe: ncb, fail_first: 1}
edges: [in -> dedup -> ncb]
)");
    ASSERT_TRUE(wait_job("doc-0", "failed"));
    probe("src").feed(1, "again-");  // the same receipt, in a new email
    ASSERT_TRUE(wait_job("again-0", "failed")) << "its first write fails too (fail_first is per document)";
    EXPECT_EQ(body(get("/api/v1/jobs/doc-0"))["data"]["references"]["resent_as"]["doc-0"], "again-0");
    auto refused = post("/api/v1/jobs/doc-0/retry");
    ASSERT_EQ(refused->status, 409) << refused->body;
    EXPECT_THAT(body(refused)["error"]["message"].get<std::string>(),
                ::testing::HasSubstr("doc-0 (sent again as job again-0); retrying would book it twice"));
    EXPECT_TRUE(rt_->state().keys("deadletter-index/doc-0/").empty()) << "its letter is settled";
    auto retry = post("/api/v1/jobs/again-0/retry");
    ASSERT_EQ(retry->status, 200) << retry->body;
    ASSERT_TRUE(wait_job("again-0", "submitted"));
    std::lock_guard lock(probe("ncb").mutex);
    EXPECT_EQ(probe("ncb").accepted.count("doc-0"), 0u);
    EXPECT_EQ(probe("ncb").accepted.at("again-0"), 1);
}

// NCB refuses a claim (422): sink.ncb parks it, the runtime stores it in the review queue
// (before, nothing was stored and the approval the runbook prescribes answered "no parked
// document is stored for this job"), and the reviewer's corrected approval reaches NCB
// through the same node, whose ledger had recorded the park.
TEST_F(AdminApi, AClaimNcbRefusedIsCorrectedAndApprovedIntoNcb) {
    const std::string ncb_key = "ncb-key-for-tests-0123456789";
    FakeProcess ncb({"python3", std::string(DOCPIPE_SOURCE_DIR) + "/tests/fakes/fake_ncb.py", "--port", "0", "--api-key", ncb_key});
    fake_control(ncb.base_url(), "POST", "/_fake/script",
                 json{{"target", "claims"},
                      {"responses", json::array({{{"status", 422},
                                                  {"count", 2},
                                                  {"body", {{"error", {{"code", "VALIDATION_ERROR"}, {"message", "Claim Amount over the policy limit"}}}}}}})}}
                     .dump());
    Document claim = Document::from_bytes("receipt.jpg", "image/jpeg", Bytes{1, 2, 3});
    claim.id = "claim-1";
    claim.attributes["filename"] = "receipt.jpg";
    claim.fields["claim"] = {{"total_amount", {{"value", 4790.50}, {"confidence", 0.95}}},
                             {"service_date", {{"value", "2024-12-24"}, {"confidence", 0.93}}},
                             {"receipt_number", {{"value", "INV-1"}, {"confidence", 0.95}}},
                             {"member_id", {{"value", "MEM123456789"}, {"confidence", 0.95}}}};
    claim.fields["confidence_level"] = "high";
    probe("src").pending.push_back(claim);
    start("nodes:\n  in: {component: source.memory, config: {probe: src}}\n"
          "  ncb: {component: sink.ncb, config: {base_url: '" + ncb.base_url() + "/api/v1', api_key: " + ncb_key + "}}\n"
          "edges: [in -> ncb]\n",
          ", approved_node: ncb");
    ASSERT_TRUE(wait_job("claim-1", "review"));
    const json item = body(get("/api/v1/exceptions/claim-1"))["data"];
    ASSERT_EQ(item["documents"].size(), 1u) << item;
    EXPECT_THAT(item.dump(), ::testing::HasSubstr("over the policy limit"));
    auto approve = [&](const char* corrections) {
        return this->post("/api/v1/exceptions/claim-1/approve", corrections);
    };
    // The first correction is refused too: the claim is back in review, and can be approved again.
    auto approved = approve(R"({"fields": {"total_amount": 1200.0}})");
    ASSERT_EQ(approved->status, 200) << approved->body;
    ASSERT_TRUE(wait_job("claim-1", "review"));
    ASSERT_EQ(body(get("/api/v1/exceptions/claim-1"))["data"]["documents"].size(), 1u) << "the second refusal's record is kept";
    EXPECT_FALSE(body(get("/api/v1/jobs/claim-1"))["data"]["references"].contains("approved_at")) << "NCB refused the approved claim";
    approved = approve(R"({"fields": {"total_amount": 479.05}})");
    ASSERT_EQ(approved->status, 200) << approved->body;
    ASSERT_TRUE(wait_job("claim-1", "submitted"));
    EXPECT_TRUE(body(get("/api/v1/jobs/claim-1"))["data"]["references"]["approved_at"].is_string());
    for (int i = 0; i < 500 && !rt_->state().keys("review/claim-1/").empty(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(rt_->state().keys("review/claim-1/").empty()) << "the record goes once the approval went through";
    const json claims = json::parse(fake_control(ncb.base_url(), "GET", "/_fake/claims"));
    ASSERT_EQ(claims["claims"].size(), 1u) << claims;
    EXPECT_EQ(claims["claims"][0]["record"]["Claim Amount"], 479.05);
    EXPECT_TRUE(body(get("/api/v1/jobs/claim-1"))["data"]["references"].contains("ncb_claim_reference"));
}

namespace {

Document ncb_claim(const std::string& id) {
    Document claim = Document::from_bytes("receipt.jpg", "image/jpeg", Bytes{1, 2, 3});
    claim.id = id;
    claim.attributes["filename"] = "receipt.jpg";
    claim.fields["claim"] = {{"total_amount", {{"value", 479.05}, {"confidence", 0.95}}},
                             {"service_date", {{"value", "2024-12-24"}, {"confidence", 0.93}}},
                             {"receipt_number", {{"value", "INV-1"}, {"confidence", 0.95}}},
                             {"member_id", {{"value", "MEM123456789"}, {"confidence", 0.95}}}};
    claim.fields["confidence_level"] = "high";
    return claim;
}

void script_ncb(const FakeProcess& ncb, int status, int count) {
    fake_control(ncb.base_url(), "POST", "/_fake/script",
                 json{{"target", "claims"},
                      {"responses", json::array({{{"status", status},
                                                  {"count", count},
                                                  {"body", {{"error", {{"code", status == 422 ? "VALIDATION_ERROR" : "INTERNAL"},
                                                                       {"message", "not today"}}}}}}})}}
                     .dump());
}

}  // namespace

// The review item named no sender (transform.mime calls it `from`), and for a total the receipt
// and the email disagree on it said "479.05 vs chosen from the receipt" instead of the email's value.
TEST_F(AdminApi, AReviewItemShowsTheSenderAndWhatTheOtherSourceSaid) {
    Document claim = ncb_claim("claim-4");
    claim.attributes["from"] = "Ahmad <ahmad@example.my>";
    claim.attributes["skipped_attachments"] = "'fwd.p7m': an S/MIME-encrypted email";
    claim.fields["claim"]["total_amount"]["provenance"] = {
        {"chosen", "receipt"}, {"receipt", {{"line", 7}}}, {"email", {{"line", 2}}}, {"not_chosen", 450.0}};
    probe("src").pending.push_back(claim);
    start("nodes:\n  in: {component: source.memory, config: {probe: src}}\n  review: {component: sink.review}\n"
          "edges: [in -> review]\n");
    ASSERT_TRUE(wait_job("claim-4", "review"));
    const json doc = body(get("/api/v1/exceptions/claim-4"))["data"]["documents"][0];
    EXPECT_EQ(doc["sender"], "Ahmad <ahmad@example.my>");
    EXPECT_EQ(doc["skipped_attachments"], "'fwd.p7m': an S/MIME-encrypted email") << "what else the email held, not read";
    ASSERT_EQ(doc["conflicts"].size(), 1u) << doc["conflicts"];
    EXPECT_EQ(doc["conflicts"][0]["other"], 450.0);
    EXPECT_EQ(doc["conflicts"][0]["chosen"], "receipt");
}

// Three faults of the approval flow, one claim: a total typed as text ("RM 1,200.00") passed
// the check and was then no amount NCB could be sent; approving again with the same
// corrections while NCB kept refusing erased the parked claim (the re-parked record equalled
// the one read), so it could not be approved any more; and what went back to review was the
// claim from before the corrections.
TEST_F(AdminApi, CorrectionsAreKeptAsNumbersAndSurviveARefusedApprovalApprovedAgain) {
    const std::string ncb_key = "ncb-key-for-tests-0123456789";
    FakeProcess ncb({"python3", std::string(DOCPIPE_SOURCE_DIR) + "/tests/fakes/fake_ncb.py", "--port", "0", "--api-key", ncb_key});
    script_ncb(ncb, 422, 3);  // the first delivery and two approvals are refused
    probe("src").pending.push_back(ncb_claim("claim-2"));
    start("nodes:\n  in: {component: source.memory, config: {probe: src}}\n"
          "  ncb: {component: sink.ncb, config: {base_url: '" + ncb.base_url() + "/api/v1', api_key: " + ncb_key + "}}\n"
          "edges: [in -> ncb]\n",
          ", approved_node: ncb");
    ASSERT_TRUE(wait_job("claim-2", "review"));
    auto approve = [&](const char* corrections) {
        return this->post("/api/v1/exceptions/claim-2/approve", corrections);
    };
    auto parked_total = [&] {
        const json item = body(get("/api/v1/exceptions/claim-2"))["data"];
        return item["documents"].empty() ? json() : item["documents"][0]["fields"]["total_amount"]["value"];
    };
    for (int round = 0; round < 2; ++round) {  // the same corrections twice, both refused by NCB
        SCOPED_TRACE(round);
        auto approved = approve(R"({"fields": {"total_amount": "RM 1,200.00"}})");
        ASSERT_EQ(approved->status, 200) << approved->body;
        ASSERT_TRUE(wait_job("claim-2", "review"));
        for (int i = 0; i < 200 && rt_->state().keys("review/claim-2/").empty(); ++i) std::this_thread::sleep_for(10ms);
        ASSERT_FALSE(rt_->state().keys("review/claim-2/").empty()) << "the parked claim was erased";
        EXPECT_EQ(parked_total(), 1200.0) << "what is back in review carries the correction, as a number";
    }
    auto approved = approve("{}");  // NCB takes it now: the corrected claim, not the one read
    ASSERT_EQ(approved->status, 200) << approved->body;
    ASSERT_TRUE(wait_job("claim-2", "submitted"));
    const json claims = json::parse(fake_control(ncb.base_url(), "GET", "/_fake/claims"));
    ASSERT_EQ(claims["claims"].size(), 1u) << claims;
    EXPECT_EQ(claims["claims"][0]["record"]["Claim Amount"], 1200.0);
}

// An approval whose delivery failed (NCB answering 500 until the claim was dead-lettered),
// returned to review and approved again without changes, booked the amount from before the
// reviewer's correction.
TEST_F(AdminApi, AFailedApprovalReturnedToReviewKeepsTheReviewersCorrection) {
    const std::string ncb_key = "ncb-key-for-tests-0123456789";
    FakeProcess ncb({"python3", std::string(DOCPIPE_SOURCE_DIR) + "/tests/fakes/fake_ncb.py", "--port", "0", "--api-key", ncb_key});
    script_ncb(ncb, 422, 1);  // to review
    probe("src").pending.push_back(ncb_claim("claim-3"));
    start("nodes:\n  in: {component: source.memory, config: {probe: src}}\n"
          "  ncb:\n    component: sink.ncb\n    retry: {attempts: 1}\n"
          "    config: {base_url: '" + ncb.base_url() + "/api/v1', api_key: " + ncb_key + "}\n"
          "edges: [in -> ncb]\n",
          ", approved_node: ncb");
    ASSERT_TRUE(wait_job("claim-3", "review"));
    script_ncb(ncb, 500, 1);  // the approval fails, and is dead-lettered
    auto approved = post("/api/v1/exceptions/claim-3/approve", R"({"fields": {"total_amount": 777}, "notes": "amount from the second page"})");
    ASSERT_EQ(approved->status, 200) << approved->body;
    ASSERT_TRUE(wait_job("claim-3", "failed"));
    EXPECT_EQ(body(get("/api/v1/jobs/claim-3"))["data"]["references"]["reviewer_notes"], "amount from the second page");
    auto back = post("/api/v1/jobs/claim-3/review");
    ASSERT_EQ(back->status, 200) << back->body;
    ASSERT_TRUE(wait_job("claim-3", "review"));
    // Back in review, the failed approval's note is in the audit only, not shown as the job's.
    EXPECT_FALSE(body(get("/api/v1/jobs/claim-3"))["data"]["references"].contains("reviewer_notes"));
    approved = post("/api/v1/exceptions/claim-3/approve", "{}");
    ASSERT_EQ(approved->status, 200) << approved->body;
    ASSERT_TRUE(wait_job("claim-3", "submitted"));
    const json claims = json::parse(fake_control(ncb.base_url(), "GET", "/_fake/claims"));
    ASSERT_EQ(claims["claims"].size(), 1u) << claims;
    EXPECT_EQ(claims["claims"][0]["record"]["Claim Amount"], 777.0) << "the amount from before the correction was booked";
}

// A claim approved on a process that stopped before delivering it stayed `approved` for good:
// no source delivers an approval again, and retry, review and approve all answered 409.
TEST(AdminApprovals, AnApprovalAProcessStoppedBeforeDeliveringGoesBackToReview) {
    Harness h;
    const auto db = h.dir.path() / "state.db";
    const pid_t gone = ::fork();
    if (gone == 0) ::_exit(0);
    ::waitpid(gone, nullptr, 0);  // a pid that no longer runs
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    {
        core::SystemClock clock;
        auto store = core::open_store("sqlite", db.string(), clock);
        core::Job job;
        job.id = "approved-1";
        job.status = "approved";
        job.owner = std::string(host) + ":" + std::to_string(gone);
        store->put_job(job);
        core::Job elsewhere = job;  // approved on a process that still runs: not this start's to return
        elsewhere.id = "approved-2";
        elsewhere.owner = std::string(host) + ":" + std::to_string(::getppid());
        store->put_job(elsewhere);
    }
    auto rt = h.build("state: {backend: sqlite, path: " + db.string() + "}\nadmin: {enabled: false}\n" + kSimple, false);
    rt->start();
    auto done = std::async(std::launch::async, [&] { return rt->run(); });
    const auto job = rt->state().get_job("approved-1");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->status, "review");
    EXPECT_THAT(job->last_error, ::testing::HasSubstr("approve it again"));
    EXPECT_EQ(rt->state().get_job("approved-2")->status, "approved");
    rt->request_stop();
    EXPECT_EQ(done.get(), 0);
}

// A PDF file of the given objects (object n is objects[n-1]; 1 is the catalog), with its
// cross-reference table, so tests need no tool to make one.
std::string pdf_of(const std::vector<std::string>& objects) {
    std::string pdf = "%PDF-1.4\n";
    std::vector<std::size_t> offsets;
    for (std::size_t i = 0; i < objects.size(); ++i) {
        offsets.push_back(pdf.size());
        pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
    }
    const std::size_t xref = pdf.size();
    pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
    for (auto o : offsets) {
        char line[32];
        std::snprintf(line, sizeof line, "%010zu 00000 n \n", o);
        pdf += line;
    }
    pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
    return pdf;
}

// A stream object holding `content`.
std::string pdf_stream(const std::string& content) {
    return "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream";
}

// A two-page PDF made here (no tool needed): page 1 US Letter, page 2 half letter, each with
// one black box, so pdf_pages renders real rasters of two different sizes.
std::string two_page_pdf() {
    return pdf_of({
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 396 612] /Contents 6 0 R >>",
        pdf_stream("0 0 0 rg 72 600 300 40 re f"),
        pdf_stream("0 0 0 rg 36 300 200 30 re f"),
    });
}

// A PNG's size from its IHDR chunk; {0, 0} when the bytes are not a PNG.
std::pair<int, int> png_size(const std::string& png) {
    if (png.size() < 24 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || png.compare(12, 4, "IHDR") != 0) return {0, 0};
    auto be32 = [&](std::size_t at) {
        return static_cast<int>((static_cast<unsigned char>(png[at]) << 24) | (static_cast<unsigned char>(png[at + 1]) << 16) |
                                (static_cast<unsigned char>(png[at + 2]) << 8) | static_cast<unsigned char>(png[at + 3]));
    };
    return {be32(16), be32(20)};
}

// A PDF receipt (pages a browser cannot show) parked for review: each page's raster is kept
// as a PNG scaled to at most 1600 px on its long side, with the same aspect ratio, so the
// OCR boxes (raster pixels) still fall on the words; rejecting the claim removes them.
TEST_F(AdminApi, ReviewServesPdfPagesAsScaledPngs) {
    {
        const std::string pdf = two_page_pdf();
        Document d = Document::from_bytes("receipt.pdf", "application/pdf", Bytes(pdf.begin(), pdf.end()));
        d.id = "doc-0";
        std::lock_guard lock(probe("src").mutex);
        probe("src").pending.push_back(std::move(d));
    }
    start(R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  pages: {component: transform.pdf_pages, config: {dpi: 200}}
  review: {component: sink.review}
edges:
  - in -> pages -> review
)", ", rate_limit_per_second: 1000, rate_limit_burst: 1000");  // wait_job polls while the PDF renders
    ASSERT_TRUE(wait_job("doc-0", "review")) << harness_.logs();
    auto answer = get("/api/v1/exceptions/doc-0");
    ASSERT_EQ(answer->status, 200) << answer->body;
    const json item = body(answer)["data"];
    ASSERT_EQ(item["documents"].size(), 1u) << item;
    const auto& doc = item["documents"][0];
    ASSERT_EQ(doc["pages"].size(), 2u) << doc;
    const std::string base = "/api/v1/exceptions/doc-0/documents/" + doc["doc_id"].get<std::string>() + "/pages/";
    // Letter at 200 dpi is 1700 x 2200; half letter 1100 x 1700 (poppler may round a pixel).
    const std::pair<int, int> rasters[] = {{1700, 2200}, {1100, 1700}};
    for (int i = 0; i < 2; ++i) {
        const auto& page = doc["pages"][i];
        const int w = page["width"], h = page["height"];
        EXPECT_NEAR(w, rasters[i].first, 2) << page;
        EXPECT_NEAR(h, rasters[i].second, 2) << page;
        EXPECT_EQ(page["has_image"], true) << "a PDF page now has an image: " << page;
        EXPECT_EQ(page["image"]["source"], "raster") << page;
        const double scale = 1600.0 / std::max(w, h);
        const int want_w = static_cast<int>(std::lround(w * scale)), want_h = static_cast<int>(std::lround(h * scale));
        EXPECT_EQ(page["image"]["width"], want_w) << page;
        EXPECT_EQ(page["image"]["height"], want_h) << page;
        EXPECT_NEAR(page["image"]["scale"].get<double>(), scale, 1e-9) << page;

        auto r = get(base + std::to_string(i) + "/image");
        ASSERT_EQ(r->status, 200) << r->body;
        EXPECT_EQ(r->get_header_value("Content-Type"), "image/png");
        const auto [png_w, png_h] = png_size(r->body);
        EXPECT_EQ(png_w, want_w) << "page " << i;
        EXPECT_EQ(png_h, want_h) << "page " << i;
        EXPECT_EQ(std::max(png_w, png_h), 1600) << "the long side is scaled to 1600 px";
        // The aspect ratio stays the raster's (to rounding), so stretched boxes line up.
        EXPECT_NEAR(static_cast<double>(png_w) / png_h, static_cast<double>(w) / h, 1.0 / png_h);
    }
    EXPECT_EQ(get(base + "2/image")->status, 404) << "no third page";
    EXPECT_EQ(get("/api/v1/exceptions/doc-0/documents/nope/pages/0/image")->status, 404);
    const std::string record = *rt_->state().get("review/doc-0/" + doc["doc_id"].get<std::string>());
    EXPECT_LT(record.size(), 20'000u) << "the pixels are not inside the review record";

    EXPECT_EQ(rt_->state().keys("review_page/doc-0/").size(), 2u);
    auto rejected = post("/api/v1/exceptions/doc-0/reject", R"({"reason": "not a receipt"})");
    ASSERT_EQ(rejected->status, 200) << rejected->body;
    EXPECT_TRUE(rt_->state().keys("review/").empty());
    EXPECT_TRUE(rt_->state().keys("review_page/").empty()) << "page images go with the parked document";
}

// A born-digital PDF (an A4 page with a text layer): pdf_pages reads its text and renders no
// raster, so there are no OCR boxes; the review still shows the page, rendered from the PDF
// by sink.review with its long side at most 1600 px, at the rendered image's own size.
TEST_F(AdminApi, ReviewRendersABornDigitalPdfPageFromThePdf) {
    {
        const std::string pdf = pdf_of({
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            pdf_stream("BT /F1 24 Tf 72 700 Td (KEDAI CONTOH SDN BHD) Tj 0 -40 Td (TOTAL RM 479.05) Tj ET"),
        });
        Document d = Document::from_bytes("invoice.pdf", "application/pdf", Bytes(pdf.begin(), pdf.end()));
        d.id = "doc-0";
        std::lock_guard lock(probe("src").mutex);
        probe("src").pending.push_back(std::move(d));
    }
    start(R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  pages: {component: transform.pdf_pages, config: {text_layer: use}}
  review: {component: sink.review}
edges:
  - in -> pages -> review
)", ", rate_limit_per_second: 1000, rate_limit_burst: 1000");
    ASSERT_TRUE(wait_job("doc-0", "review")) << harness_.logs();
    const json item = body(get("/api/v1/exceptions/doc-0"))["data"];
    ASSERT_EQ(item["documents"].size(), 1u) << item;
    const auto& doc = item["documents"][0];
    ASSERT_EQ(doc["pages"].size(), 1u) << doc;
    const auto& page = doc["pages"][0];
    EXPECT_EQ(page["words"], 0) << "read from the text layer, not by OCR: " << page;
    EXPECT_EQ(page["has_image"], true) << page;
    EXPECT_EQ(page["image"]["source"], "pdf") << page;
    // 842 points at floor(72 * 1600 / 842) = 136 dpi: 1590 px (poppler may round a pixel).
    EXPECT_NEAR(page["image"]["height"].get<int>(), 1590, 2) << page;
    EXPECT_NEAR(page["image"]["width"].get<int>(), 1124, 2) << page;
    EXPECT_EQ(page["width"], page["image"]["width"]) << "the page is drawn at the rendered size: " << page;
    EXPECT_EQ(page["height"], page["image"]["height"]) << page;
    auto r = get("/api/v1/exceptions/doc-0/documents/" + doc["doc_id"].get<std::string>() + "/pages/0/image");
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "image/png");
    EXPECT_EQ(png_size(r->body), std::make_pair(page["image"]["width"].get<int>(), page["image"]["height"].get<int>()));
    // Text drawn on a white page: the PNG is not one flat colour (a blank render compresses to
    // a few hundred bytes).
    EXPECT_GT(r->body.size(), 2000u) << "the rendered page looks blank";
}

// An email (doc-0, an even id) whose two receipts (transform.split) go to review. Odd source
// documents go to `odd_target`; `nodes` and `edges` add the ones approvals go through.
std::string two_receipts_to_review(const std::string& odd_target, const std::string& nodes, const std::string& edges = "") {
    return R"(
nodes:
  in: {component: source.memory, config: {probe: src}}
  route: {component: transform.route}
  split: {component: transform.split, config: {children: 2}}
  review: {component: sink.review}
)" + nodes + R"(edges:
  - in -> route
  - route.even -> split -> review
  - route.odd -> )" + odd_target + "\n" + edges;
}

// Two receipts approved at once re-enter as two deliveries. One is parked again at once (here
// by the review queue; NCB refusing the corrected claim does the same), the other is delivered
// a moment later. The later one to settle replaced every `review` outcome of the job, the
// parked receipt's fresh one included: the job ended `submitted` with a receipt in review
// that no one could approve again (409).
TEST_F(AdminApi, AReceiptParkedAgainAfterATwoReceiptApprovalKeepsTheJobInReview) {
    probe("src").feed(1);
    start(two_receipts_to_review("pick",
                                 "  pick: {component: transform.route}\n"
                                 "  slow: {component: sink.memory, retry: {attempts: 2, initial_backoff: 300ms}, config: {probe: slow, fail_first: 1}}\n",
                                 "  - pick.even -> slow\n  - pick.odd -> review\n"),
          ", approved_node: pick");
    ASSERT_TRUE(wait_job("doc-0", "review"));
    ASSERT_EQ(rt_->state().keys("review/doc-0/", 10).size(), 2u);
    ASSERT_EQ(post("/api/v1/exceptions/doc-0/approve", "{}")->status, 200);
    {
        std::unique_lock lock(probe("slow").mutex);
        ASSERT_TRUE(probe("slow").cv.wait_for(lock, 20s, [] { return !probe("slow").accepted.empty(); }));
    }
    ASSERT_TRUE(wait_job("doc-0", "review")) << body(get("/api/v1/jobs/doc-0"));
    const json job = body(get("/api/v1/jobs/doc-0"))["data"];
    std::map<std::string, std::string> status_by_doc;
    for (const auto& o : job["outcomes"]) status_by_doc[o["doc_id"]] = o["status"];
    EXPECT_EQ(status_by_doc.size(), 2u) << job;
    EXPECT_EQ(std::count_if(status_by_doc.begin(), status_by_doc.end(), [](const auto& e) { return e.second == "review"; }), 1) << job;
    EXPECT_EQ(std::count_if(status_by_doc.begin(), status_by_doc.end(), [](const auto& e) { return e.second == "submitted"; }), 1) << job;
    auto again = post("/api/v1/exceptions/doc-0/approve", "{}");
    EXPECT_EQ(again->status, 200) << "the receipt parked again can be approved again: " << again->body;
}

// An email with two receipts is one job with two parked claim documents. A reviewer corrects
// each on its own (`documents`); a job-wide `fields` correction of a field they disagree on
// is refused, since it would overwrite the receipt that was right.
TEST_F(AdminApi, ApprovePerDocumentCorrectionsOfATwoReceiptClaim) {
    probe("src").feed(1);
    start(two_receipts_to_review("out", "  out: {component: sink.memory, config: {probe: out}}\n"), ", approved_node: out");
    ASSERT_TRUE(wait_job("doc-0", "review"));
    auto& store = rt_->state();
    auto keys = store.keys("review/doc-0/", 10);
    ASSERT_EQ(keys.size(), 2u);
    // The two receipts as transform.claims would have read them (the test split gives bare
    // children): different totals, the same policy number; and a page image each, as
    // sink.review stores it, to see it cleared with the approval.
    std::vector<std::string> ids;
    const double totals[] = {12.0, 30.0};
    for (std::size_t i = 0; i < keys.size(); ++i) {
        json record = json::parse(*store.get(keys[i]));
        auto& d = record["document"];
        ids.push_back(d["id"]);
        d["fields"] = {{"claim", {{"total_amount", {{"value", totals[i]}, {"confidence", 0.4}, {"source", "receipt"}}},
                                  {"policy_number", {{"value", "POL1"}, {"confidence", 0.5}, {"source", "email"}}}}},
                       {"confidence", 0.4},
                       {"missing", json::array()}};
        store.put(keys[i], record.dump());
        store.put("review_page/doc-0/" + ids[i] + "/0", "png bytes");
    }
    const std::string a = ids[0], b = ids[1];
    auto post = [&](const std::string& body_text) {
        return this->post("/api/v1/exceptions/doc-0/approve", body_text);
    };

    auto ambiguous = post(R"({"fields": {"total_amount": 31.5}})");
    ASSERT_EQ(ambiguous->status, 400) << ambiguous->body;
    EXPECT_THAT(body(ambiguous)["error"]["message"].get<std::string>(), ::testing::HasSubstr("per-document corrections under 'documents'"));
    const std::string why = body(ambiguous)["error"]["details"]["total_amount"];
    EXPECT_THAT(why, ::testing::HasSubstr(a + ": 12.0"));
    EXPECT_THAT(why, ::testing::HasSubstr(b + ": 30.0"));
    auto unknown = post(R"({"documents": {"not-parked": {"fields": {"total_amount": 1}}}})");
    ASSERT_EQ(unknown->status, 400) << unknown->body;
    EXPECT_TRUE(body(unknown)["error"]["details"].contains("documents.not-parked")) << unknown->body;
    EXPECT_EQ(post(R"({"documents": {"x": {"total_amount": 1}}})")->status, 400) << "a document's corrections sit under 'fields'";
    EXPECT_EQ(post(R"({"documents": [1]})")->status, 400);
    // A job-wide total that each receipt's own total overrides reached none of them, yet the
    // audit recorded it as the approval's change (found by a probe).
    auto overridden = post(R"({"fields": {"total_amount": 31.0}, "documents": {")" + a + R"(": {"fields": {"total_amount": 12.5}}, ")" + b +
                           R"(": {"fields": {"total_amount": 30.5}}}})");
    ASSERT_EQ(overridden->status, 400) << overridden->body;
    EXPECT_THAT(body(overridden)["error"]["details"]["total_amount"].get<std::string>(), ::testing::HasSubstr("applies to none; leave it out"));
    EXPECT_EQ(body(get("/api/v1/jobs/doc-0"))["data"]["status"], "review") << "refused approvals change nothing";

    // B's total and, job-wide, the policy number both receipts agree on.
    auto approved = post(R"({"fields": {"policy_number": "POL2"}, "documents": {")" + b +
                         R"(": {"fields": {"total_amount": 31.5}}}, "notes": "second receipt re-read"})");
    ASSERT_EQ(approved->status, 200) << approved->body;
    ASSERT_TRUE(wait_job("doc-0", "submitted"));
    ASSERT_TRUE(probe("out").wait_for([&] { return probe("out").accepted.count(a) == 1 && probe("out").accepted.count(b) == 1; }));
    {
        std::lock_guard lock(probe("out").mutex);
        const json& fa = probe("out").fields.at(a)["claim"];
        const json& fb = probe("out").fields.at(b)["claim"];
        EXPECT_EQ(fa["total_amount"]["value"], 12.0) << "A's total is A's: " << fa;
        EXPECT_EQ(fa["total_amount"]["source"], "receipt");
        EXPECT_EQ(fb["total_amount"]["value"], 31.5) << fb;
        EXPECT_EQ(fb["total_amount"]["source"], "reviewer");
        EXPECT_EQ(fa["policy_number"]["value"], "POL2");
        EXPECT_EQ(fb["policy_number"]["value"], "POL2");
    }
    auto audit = body(get("/api/v1/jobs/doc-0/audit"))["data"];
    ASSERT_EQ(audit.size(), 1u) << audit;
    json e = audit[0];
    EXPECT_EQ(e["action"], "approve");
    EXPECT_EQ(e["via"], "API") << "a request without the review UI's X-Docpipe-Client header is the API's";
    EXPECT_EQ(e["notes"], "second receipt re-read");
    EXPECT_EQ(e["documents"][b]["changes"]["total_amount"], json({{"from", 30.0}, {"to", 31.5}})) << e;
    EXPECT_FALSE(e["documents"][a]["changes"].contains("total_amount")) << e;
    EXPECT_EQ(e["documents"][a]["changes"]["policy_number"], json({{"from", "POL1"}, {"to", "POL2"}})) << e;
    EXPECT_EQ(e["changes"], json({{"policy_number", {{"from", "POL1"}, {"to", "POL2"}}}})) << "job-wide changes, as before: " << e;
    // Cleared once each approved document went through (its delivery callback).
    for (int i = 0; i < 250 && !(store.keys("review/").empty() && store.keys("review_page/").empty()); ++i) std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(store.keys("review/").empty());
    EXPECT_TRUE(store.keys("review_page/").empty()) << "page images are cleared with their approved documents";
}

TEST_F(AdminApi, JobDateFilterRefusesImpossibleDates) {
    start(kSimple);
    auto r = get("/api/v1/jobs?date_from=2024-02-31");
    ASSERT_EQ(r->status, 400) << r->body;
    EXPECT_TRUE(body(r)["error"]["details"].contains("date_from"));
    EXPECT_EQ(get("/api/v1/jobs?date_from=2024-02-29")->status, 200) << "a leap day is a date";
    auto status = get("/api/v1/jobs?status=bogus");
    EXPECT_THAT(body(status)["error"]["details"]["status"].get<std::string>(), ::testing::HasSubstr("partial"));
}

TEST_F(AdminApi, RateLimitAnswers429WithRetryAfter) {
    start(kSimple, ", rate_limit_per_second: 0.01, rate_limit_burst: 2");
    EXPECT_EQ(get("/api/v1/jobs")->status, 200);
    EXPECT_EQ(get("/api/v1/jobs")->status, 200);
    auto limited = get("/api/v1/jobs");
    EXPECT_EQ(limited->status, 429);
    EXPECT_EQ(body(limited)["error"]["code"], "RATE_LIMITED");
    EXPECT_GE(std::stoi(limited->get_header_value("Retry-After")), 1);
    EXPECT_EQ(client_->Get("/health")->status, 200) << "liveness is never rate limited";
}

TEST_F(AdminApi, HugeBodyIs413) {
    start(kSimple, ", max_body_bytes: 1024");
    auto r = post("/api/v1/jobs/x/retry", std::string(100'000, 'x'));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
}

TEST(AdminKeys, GeneratedKeyOnLoopbackIsWrittenPrivatelyAndWorks) {
    Harness h;
    const auto key_file = h.dir.path() / "state" / "admin.key";
    auto rt = h.build("state: {backend: sqlite, path: " + (h.dir.path() / "state" / "s.db").string() +
                          "}\nadmin: {listen: '127.0.0.1:0'}\n" + kSimple,
                      false);
    rt->start();
    auto done = std::async(std::launch::async, [&] { return rt->run(); });
    ASSERT_TRUE(std::filesystem::exists(key_file));
    struct stat st {};
    ASSERT_EQ(::stat(key_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    std::string key;
    std::ifstream(key_file) >> key;
    EXPECT_EQ(key.size(), 64u);
    EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos);
    const std::string logs = h.logs();
    EXPECT_NE(logs.find(key_file.string()), std::string::npos) << "the log says where the key is";
    EXPECT_EQ(logs.find(key), std::string::npos) << "the key itself is never logged";
    httplib::Client c("127.0.0.1", rt->admin_port());
    EXPECT_EQ(c.Get("/api/v1/jobs", {{"X-API-Key", key}})->status, 200);
    rt->request_stop();
    EXPECT_EQ(done.get(), 0);
}

// With Redis or memory state the key went to var/ under the working directory: / under systemd.
// It goes beside the pipeline file (or to $DOCPIPE_STATE_DIR), wherever the process started.
TEST(AdminKeys, WithoutASqliteFileTheKeyGoesBesideThePipelineNotTheWorkingDirectory) {
    Harness h;
    unsetenv("DOCPIPE_STATE_DIR");
    const auto elsewhere = h.dir.path() / "cwd";
    std::filesystem::create_directories(elsewhere);
    const auto previous = std::filesystem::current_path();
    std::filesystem::current_path(elsewhere);
    auto rt = h.build(std::string("state: {backend: memory}\nadmin: {listen: '127.0.0.1:0'}\n") + kSimple, false);
    rt->start();
    std::filesystem::current_path(previous);
    EXPECT_TRUE(std::filesystem::exists(h.dir.path() / "var" / "admin.key")) << h.logs();
    EXPECT_FALSE(std::filesystem::exists(elsewhere / "var" / "admin.key")) << "written under the working directory";
    auto done = std::async(std::launch::async, [&] { return rt->run(); });
    rt->request_stop();
    EXPECT_EQ(done.get(), 0);
}

TEST(AdminKeys, NonLoopbackWithoutKeyRefusesToStart) {
    Harness h;
    auto rt = h.build(std::string("state: {backend: memory}\nadmin: {listen: '0.0.0.0:0', api_keys: ['']}\n") + kSimple, false);
    try {
        rt->start();
        FAIL() << "must refuse";
    } catch (const core::StartError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("refusing to serve the admin API on 0.0.0.0:0 without an API key"));
    }
}

TEST(AdminKeys, ShortKeyIsAccepted_WithAWarning) {
    Harness h;
    auto rt = h.build(std::string("state: {backend: memory}\nadmin: {listen: '127.0.0.1:0', api_keys: [short]}\n") + kSimple, false);
    rt->start();
    auto done = std::async(std::launch::async, [&] { return rt->run(); });
    EXPECT_NE(h.logs().find("an admin API key is only 5 characters; use at least 32"), std::string::npos);
    rt->request_stop();
    EXPECT_EQ(done.get(), 0);
}

TEST(AdminRedisHealth, StoppedRedisReadsUnavailableAndRecoversWithoutRestart) {
    RedisServer redis;
    Harness h;
    auto rt = h.build("state: {backend: redis, url: '" + redis.url() + "'}\nadmin: {listen: '127.0.0.1:0', api_keys: ['" + kKey +
                          "']}\n" + kSimple,
                      false);
    rt->start();
    auto done = std::async(std::launch::async, [&] { return rt->run(); });
    httplib::Client c("127.0.0.1", rt->admin_port());
    auto store_status = [&] { return json::parse(c.Get("/health/detailed")->body)["state_store"]; };
    EXPECT_EQ(store_status()["status"], "healthy") << "a working Redis is never 'not_initialized'";

    redis.stop();
    auto down = store_status();
    EXPECT_EQ(down["status"], "unavailable");
    EXPECT_THAT(down["last_error"].get<std::string>(),
                ::testing::HasSubstr("redis 127.0.0.1:" + std::to_string(redis.port()) + ": cannot connect"));
    EXPECT_EQ(json::parse(c.Get("/health/detailed")->body)["status"], "unavailable");
    EXPECT_EQ(c.Get("/health")->status, 200) << "liveness stays up";

    redis.start();
    EXPECT_EQ(store_status()["status"], "healthy") << "recovers on its own";
    rt->request_stop();
    EXPECT_EQ(done.get(), 0);
}

}  // namespace
