// sink.ncb against a fake NCB (tests/fakes/fake_ncb.py) on a loopback port: the real libcurl
// client, real HTTP. Unit tests drive the sink with NodeRunner; the runtime tests run a
// pipeline so the hold/retry semantics and the job's references are checked end to end.
#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "docpipe/testing.hpp"
#include "fake_process.hpp"
#include "harness.hpp"

using namespace docpipe;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

const std::string kKey = "test-ncb-key-0123456789";

std::string plugin_file() { return std::string(DOCPIPE_BUILD_PLUGIN_DIR) + "/libdocpipe-claims.so"; }

test::FakeProcess start_ncb() {
    return test::FakeProcess({"python3", std::string(DOCPIPE_SOURCE_DIR) + "/tests/fakes/fake_ncb.py", "--port", "0", "--api-key", kKey});
}

Document claim_doc(const std::string& id, double total = 479.05) {
    Document d;
    d.id = id;
    d.attributes = {{"message_id", "<m-" + id + "@example>"}, {"filename", id + ".jpg"}};
    d.fields["claim"] = {{"total_amount", {{"value", total}, {"confidence", 0.95}}},
                         {"service_date", {{"value", "2024-12-24"}, {"confidence", 0.93}}},
                         {"receipt_number", {{"value", "INV-" + id}, {"confidence", 0.95}}},
                         {"member_id", {{"value", "MEM123456789"}, {"confidence", 0.95}}}};
    d.fields["confidence"] = 0.93;
    d.fields["confidence_level"] = "high";
    return d;
}

std::string sink_config(const test::FakeProcess& ncb, const std::string& extra = "") {
    return "base_url: " + ncb.base_url() + "/api/v1\napi_key: " + kKey + "\nbreaker_threshold: 3\nbreaker_open_for: 1s\n" + extra;
}

json claims_at(const test::FakeProcess& ncb) { return json::parse(test::fake_control(ncb.base_url(), "GET", "/_fake/claims")); }

void script(const test::FakeProcess& ncb, const json& responses) {
    test::fake_control(ncb.base_url(), "POST", "/_fake/script", json{{"target", "claims"}, {"responses", responses}}.dump());
}

}  // namespace

TEST(NcbSink, SubmitsTheNcbRecordWithAuthIdempotencyKeyAndRequestId) {
    auto ncb = start_ncb();
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    auto result = runner.write(claim_doc("c1"));
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    EXPECT_FALSE(result.parked());
    const auto claims = claims_at(ncb);
    ASSERT_EQ(claims["claims"].size(), 1u);
    const auto& c = claims["claims"][0];
    EXPECT_EQ(result.references().at("ncb_claim_reference"), c["claim_reference"].get<std::string>());
    EXPECT_EQ(c["record"]["Claim Amount"], 479.05);
    EXPECT_EQ(c["record"]["Event date"], "2024-12-24");
    EXPECT_EQ(c["record"]["Invoice Number"], "INV-c1");
    EXPECT_EQ(c["record"]["Policy Number"], "MEM123456789");
    EXPECT_TRUE(c["idempotency_key"].get<std::string>().rfind("docpipe-", 0) == 0);
    EXPECT_EQ(c["request_id"], "c1") << "X-Request-ID is the document id";
}

TEST(NcbSink, ARetryOfTheSameClaimIsRecognisedByItsIdempotencyKey) {
    auto ncb = start_ncb();
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    auto first = runner.write(claim_doc("c1"));
    runner.clock().advance(std::chrono::minutes(5));  // a later try: same Submission Date, same bytes
    auto second = runner.write(claim_doc("c1"));
    ASSERT_EQ(first.status(), SinkResult::Status::Ok);
    ASSERT_EQ(second.status(), SinkResult::Status::Ok) << second.reason();
    EXPECT_EQ(first.references(), second.references());
    const auto claims = claims_at(ncb);
    EXPECT_EQ(claims["claims"].size(), 1u);
    EXPECT_EQ(claims["attempts"], 2);
    // A different claim is a different key.
    ASSERT_EQ(runner.write(claim_doc("c2")).status(), SinkResult::Status::Ok);
    EXPECT_EQ(claims_at(ncb)["claims"].size(), 2u);
}

// A restart may extract the same document again with other results (a refitted confidence
// model, new rules). NCB may already have booked the first try whose answer was lost, and
// a new body under a new key would book the claim twice; the same key with a new body NCB
// refuses (422). So every try of one document sends the record as it was first sent.
TEST(NcbSink, ADocumentExtractedAgainIsSentAsFirstSentNotBookedTwice) {
    auto ncb = start_ncb();
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    auto first = runner.write(claim_doc("c1"));
    ASSERT_EQ(first.status(), SinkResult::Status::Ok) << first.reason();
    Document again = claim_doc("c1");
    again.fields["confidence"] = 0.91;  // what a refitted model gives the same receipt
    auto second = runner.write(again);
    ASSERT_EQ(second.status(), SinkResult::Status::Ok) << second.reason();
    EXPECT_FALSE(second.parked()) << second.reason();
    EXPECT_EQ(first.references(), second.references()) << "NCB replays the first booking";
    const auto claims = claims_at(ncb);
    EXPECT_EQ(claims["claims"].size(), 1u) << claims.dump();
    EXPECT_EQ(claims["key_reused"], 0) << "the same key never travels with another body";
    bool warned = false;
    for (const auto& line : runner.context().log_lines()) warned |= line.message.find("extracted again") != std::string::npos;
    EXPECT_TRUE(warned);
}

// After a refusal nothing was booked: a reviewer's corrected claim is a new submission.
TEST(NcbSink, AfterARefusalTheReviewersCorrectedClaimIsANewSubmission) {
    auto ncb = start_ncb();
    script(ncb, json::array({{{"status", 422}, {"body", {{"error", {{"code", "VALIDATION_ERROR"}, {"message", "over the limit"}}}}}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    ASSERT_TRUE(runner.write(claim_doc("c1")).parked());
    Document corrected = claim_doc("c1", 120.0);
    corrected.fields["reviewed"] = true;
    auto result = runner.write(corrected);
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    EXPECT_FALSE(result.parked()) << result.reason();
    const auto claims = claims_at(ncb);
    ASSERT_EQ(claims["claims"].size(), 1u) << claims.dump();
    EXPECT_EQ(claims["claims"][0]["record"]["Claim Amount"], 120.0);
}

// After a try whose answer was lost, NCB may or may not hold the claim. A reviewer's
// corrections go under that try's key: booked if NCB had nothing (here the 500 came before
// NCB booked anything), and refused as IDEMPOTENCY_KEY_REUSED if it holds the earlier claim,
// which then stays the only one (a new key would book the claim twice).
TEST(NcbSink, AReviewersCorrectionsAfterALostAnswerNeverBookASecondClaim) {
    auto ncb = start_ncb();
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    script(ncb, json::array({{{"status", 500}, {"body", {{"error", {{"code", "INTERNAL"}, {"message", "lost"}}}}}}}));
    ASSERT_EQ(runner.write(claim_doc("unbooked")).status(), SinkResult::Status::Retry);
    Document corrected = claim_doc("unbooked", 120.0);
    corrected.fields["reviewed"] = true;
    auto result = runner.write(corrected);
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    EXPECT_FALSE(result.parked()) << result.reason();

    ASSERT_EQ(runner.write(claim_doc("booked")).status(), SinkResult::Status::Ok);  // say its answer was lost
    Document late = claim_doc("booked", 120.0);
    late.fields["reviewed"] = true;
    auto refused = runner.write(late);
    ASSERT_EQ(refused.status(), SinkResult::Status::Ok) << refused.reason();
    EXPECT_TRUE(refused.parked());
    EXPECT_NE(refused.reason().find("NCB already holds this claim"), std::string::npos) << refused.reason();
    EXPECT_NE(refused.reason().find("Claim Amount: 479.05 at NCB, 120.0 here"), std::string::npos)
        << "the reviewer is told what NCB holds: " << refused.reason();
    // Where NCB holds it: the key of the earlier try, as a reference, which also marks the
    // parked claim as held by NCB (rejected here, it is not booked again if sent again).
    ASSERT_EQ(refused.references().count("ncb_idempotency_key"), 1u);
    std::string held_under;
    const auto booked_so_far = claims_at(ncb);
    for (const auto& c : booked_so_far["claims"])
        if (c["request_id"] == "booked") held_under = c["idempotency_key"];
    EXPECT_EQ(refused.references().at("ncb_idempotency_key"), held_under);
    // Approved again with the values NCB holds, the earlier claim's answer comes back: booked once.
    Document as_booked = claim_doc("booked");
    as_booked.fields["reviewed"] = true;
    auto closed = runner.write(as_booked);
    ASSERT_EQ(closed.status(), SinkResult::Status::Ok) << closed.reason();
    EXPECT_FALSE(closed.parked()) << closed.reason();
    EXPECT_FALSE(closed.references().empty());
    EXPECT_TRUE(runner.write(late).parked()) << "and again: the earlier try's key is kept";

    const auto claims = claims_at(ncb);
    ASSERT_EQ(claims["claims"].size(), 2u) << claims.dump();
    for (const auto& c : claims["claims"])
        EXPECT_EQ(c["record"]["Claim Amount"], c["request_id"] == "unbooked" ? 120.0 : 479.05) << c.dump();
}

// A 2xx without NCB's claim reference is no proof of a booking: a login page or a proxy
// answers 200 too. The claim waits and goes again under the same key.
TEST(NcbSink, ASuccessWithoutAClaimReferenceIsNotTakenAsBooked) {
    auto ncb = start_ncb();
    script(ncb, json::array({{{"status", 200}, {"headers", {{"Content-Type", "text/html"}}}, {"body", "<html>Sign in</html>"}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    auto first = runner.write(claim_doc("c1"));
    EXPECT_EQ(first.status(), SinkResult::Status::Hold);
    EXPECT_NE(first.reason().find("without a claim reference (text/html, 20 bytes)"), std::string::npos) << first.reason();
    EXPECT_NE(first.reason().find("check base_url"), std::string::npos) << first.reason();
    auto second = runner.write(claim_doc("c1"));
    ASSERT_EQ(second.status(), SinkResult::Status::Ok) << second.reason();
    EXPECT_TRUE(second.references().count("ncb_claim_reference"));
    const auto claims = claims_at(ncb);
    ASSERT_EQ(claims["claims"].size(), 1u);
}

// A redirect means base_url points at the wrong place (http:// for an https:// API, an old
// host); a gateway's unusual 5xx means NCB is not reachable. Neither judges the claim, so
// neither parks it as refused.
TEST(NcbSink, ARedirectOrAGatewaysOddServerErrorWaitsAndIsNotARefusal) {
    auto ncb = start_ncb();
    script(ncb, json::array({{{"status", 307}, {"headers", {{"Location", "https://ncb.example/api/v1/claims/submit"}}}, {"body", ""}},
                             {{"status", 524}, {"body", "A timeout occurred"}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    auto redirected = runner.write(claim_doc("c1"));
    EXPECT_EQ(redirected.status(), SinkResult::Status::Hold) << redirected.reason();
    EXPECT_NE(redirected.reason().find("a redirect to 'https://ncb.example/api/v1/claims/submit'"), std::string::npos) << redirected.reason();
    const auto health = runner.component().health();
    EXPECT_EQ(health.status, Health::Unavailable);
    EXPECT_NE(health.detail.find("base_url"), std::string::npos) << health.detail;
    auto gateway = runner.write(claim_doc("c1"));
    EXPECT_EQ(gateway.status(), SinkResult::Status::Hold) << gateway.reason();
    EXPECT_NE(gateway.reason().find("524"), std::string::npos) << gateway.reason();
    EXPECT_TRUE(claims_at(ncb)["claims"].empty());
}

// An answer over the 1 MiB cap (plain, or a small gzip that unpacks to more) was worded "NCB
// unreachable", which sends an operator to check the network, while something did answer.
TEST(NcbSink, AnAnswerTooLargeForNcbWaitsAndSaysSomethingElseAnswered) {
    auto ncb = start_ncb();
    const std::string big(2u << 20, 'x');
    script(ncb, json::array({{{"status", 200}, {"body", big}}, {{"status", 200}, {"body", big}, {"gzip", true}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    for (const char* kind : {"plain", "gzip"}) {
        const auto r = runner.write(claim_doc("c1"));
        EXPECT_EQ(r.status(), SinkResult::Status::Hold) << kind << ": " << r.reason();
        EXPECT_NE(r.reason().find("answered with more than 1048576 bytes"), std::string::npos) << kind << ": " << r.reason();
        EXPECT_NE(r.reason().find("check base_url"), std::string::npos) << kind << ": " << r.reason();
        EXPECT_EQ(r.reason().find("unreachable"), std::string::npos) << kind << ": " << r.reason();
    }
}

// NCB's own error text is quoted, but a server or proxy that echoes the request's
// Authorization header must not put the API key into logs and reasons.
TEST(NcbSink, AnErrorTextThatEchoesTheApiKeyIsQuotedWithTheKeyMasked) {
    auto ncb = start_ncb();
    script(ncb, json::array({{{"status", 401}, {"body", {{"error", {{"code", "UNAUTHORIZED"}, {"message", "token 'Bearer " + kKey + "' is not valid"}}}}}},
                             {{"status", 400}, {"body", {{"error", {{"code", "BAD"}, {"message", "bad"}, {"details", json::array({{{"field", "Authorization"}, {"issue", kKey}}})}}}}}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    auto refused_key = runner.write(claim_doc("c1"));
    EXPECT_EQ(refused_key.status(), SinkResult::Status::Hold);
    EXPECT_NE(refused_key.reason().find("Bearer [api key]"), std::string::npos) << refused_key.reason();
    EXPECT_EQ(runner.component().health().detail.find(kKey), std::string::npos);
    auto refused = runner.write(claim_doc("c1"));
    EXPECT_TRUE(refused.parked());
    EXPECT_EQ(refused.reason().find(kKey), std::string::npos) << refused.reason();
    for (const auto& line : runner.context().log_lines()) EXPECT_EQ(line.message.find(kKey), std::string::npos) << line.message;
}

TEST(NcbSink, ARefusedClaimIsParkedWithNcbsMessage) {
    auto ncb = start_ncb();
    // A claim docpipe finds complete but NCB does not accept (its own rules).
    script(ncb, json::array({{{"status", 400},
                              {"body", {{"error", {{"code", "VALIDATION_ERROR"}, {"message", "Policy not active on the event date"},
                                                   {"details", json::array({{{"field", "Policy Number"}, {"issue", "lapsed"}}})}}}}}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    auto result = runner.write(claim_doc("lapsed"));
    ASSERT_EQ(result.status(), SinkResult::Status::Ok);
    EXPECT_TRUE(result.parked());
    EXPECT_NE(result.reason().find("HTTP 400"), std::string::npos) << result.reason();
    EXPECT_NE(result.reason().find("Policy not active"), std::string::npos) << result.reason();
    EXPECT_NE(result.reason().find("Policy Number: lapsed"), std::string::npos) << result.reason();
    EXPECT_TRUE(claims_at(ncb)["claims"].empty());
}

TEST(NcbSink, AnIncompleteClaimIsParkedWithoutCallingNcb) {
    auto ncb = start_ncb();
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    Document d = claim_doc("c1");
    d.fields["claim"].erase("receipt_number");
    auto result = runner.write(d);
    EXPECT_TRUE(result.parked());
    EXPECT_NE(result.reason().find("Invoice Number"), std::string::npos) << result.reason();
    EXPECT_EQ(claims_at(ncb)["attempts"], 0);
}

TEST(NcbSink, RateLimitHoldsForRetryAfter) {
    auto ncb = start_ncb();
    script(ncb, json::array({{{"status", 429}, {"headers", {{"Retry-After", "7"}}}, {"body", {{"error", {{"code", "RATE_LIMITED"}, {"message", "slow down"}}}}}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    auto result = runner.write(claim_doc("c1"));
    EXPECT_EQ(result.status(), SinkResult::Status::Hold);
    EXPECT_EQ(result.retry_after(), milliseconds(7000));
    EXPECT_NE(result.reason().find("slow down"), std::string::npos) << result.reason();
}

TEST(NcbSink, UnavailableHoldsAndTheBreakerOpensThenLetsOneTrialThrough) {
    auto ncb = start_ncb();
    script(ncb, json::array({{{"status", 503}, {"count", 3}, {"body", "upstream down"}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    EXPECT_EQ(runner.context().counter("ncb_circuit_open"), 0.0);  // the gauge exists before any failure
    for (int i = 0; i < 3; ++i) {
        auto r = runner.write(claim_doc("c1"));
        EXPECT_EQ(r.status(), SinkResult::Status::Hold);
        EXPECT_NE(r.reason().find("503"), std::string::npos) << r.reason();
    }
    // Open: refused without a request.
    auto refused = runner.write(claim_doc("c1"));
    EXPECT_EQ(refused.status(), SinkResult::Status::Hold);
    EXPECT_NE(refused.reason().find("circuit breaker open"), std::string::npos) << refused.reason();
    EXPECT_EQ(claims_at(ncb)["attempts"], 3);
    EXPECT_EQ(runner.component().health().status, Health::Degraded);
    EXPECT_EQ(runner.context().counter("ncb_circuit_open"), 1.0);  // docpipe_ncb_circuit_open: the alert's series
    // After open_for, one trial call goes out; NCB is back, so the breaker closes.
    runner.clock().advance(std::chrono::milliseconds(1100));
    auto trial = runner.write(claim_doc("c1"));
    EXPECT_EQ(trial.status(), SinkResult::Status::Ok) << trial.reason();
    EXPECT_EQ(runner.component().health().status, Health::Healthy);
    EXPECT_EQ(runner.context().counter("ncb_circuit_open"), 0.0);
    EXPECT_EQ(claims_at(ncb)["claims"].size(), 1u);
}

TEST(NcbSink, ARefusedApiKeyHoldsAndHealthSaysWhatToCheck) {
    auto ncb = start_ncb();
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb",
                                                   "base_url: " + ncb.base_url() + "/api/v1\napi_key: wrong-key\n");
    auto r = runner.write(claim_doc("c1"));
    EXPECT_EQ(r.status(), SinkResult::Status::Hold);
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Unavailable);
    EXPECT_NE(h.detail.find("api_key"), std::string::npos) << h.detail;
    EXPECT_EQ(h.detail.find("wrong-key"), std::string::npos) << "the key must not appear in health output";
    EXPECT_EQ(r.reason().find("wrong-key"), std::string::npos);
}

TEST(NcbSink, AnInternalErrorIsRetriedAsThisDocumentsFailure) {
    auto ncb = start_ncb();
    script(ncb, json::array({{{"status", 500}, {"body", {{"error", {{"code", "INTERNAL"}, {"message", "boom"}}}}}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    auto r = runner.write(claim_doc("c1"));
    EXPECT_EQ(r.status(), SinkResult::Status::Retry);
    EXPECT_NE(r.reason().find("boom"), std::string::npos);
}

// 500s count towards the breaker like an outage, and its opening is logged and published
// (docpipe_ncb_circuit_open, which the NcbCircuitOpen alert reads): it opened in silence.
TEST(NcbSink, InternalErrorsInARowOpenTheBreakerVisibly) {
    auto ncb = start_ncb();
    script(ncb, json::array({{{"status", 500}, {"count", 3}, {"body", {{"error", {{"code", "INTERNAL"}, {"message", "deadlock"}}}}}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    for (int i = 0; i < 3; ++i) EXPECT_EQ(runner.write(claim_doc("c" + std::to_string(i))).status(), SinkResult::Status::Retry);
    EXPECT_EQ(runner.context().counter("ncb_circuit_open"), 1.0);
    bool logged = false;
    for (const auto& line : runner.context().log_lines()) logged |= line.message.find("circuit breaker open after 3 failures") != std::string::npos;
    EXPECT_TRUE(logged);
}

// The breaker's one trial after an outage went to a claim parked without a call (a field
// missing): no answer was recorded, the breaker stayed half-open, and no claim reached NCB
// until a restart.
TEST(NcbSink, AnIncompleteClaimDoesNotTakeTheBreakersTrialAndStallIt) {
    auto ncb = start_ncb();
    script(ncb, json::array({{{"status", 500}, {"count", 3}, {"body", {{"error", {{"code", "INTERNAL"}, {"message", "deadlock"}}}}}}}));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", sink_config(ncb));
    for (int i = 0; i < 3; ++i) ASSERT_EQ(runner.write(claim_doc("c" + std::to_string(i))).status(), SinkResult::Status::Retry);
    ASSERT_EQ(runner.write(claim_doc("held")).status(), SinkResult::Status::Hold) << "the breaker is open";
    runner.clock().advance(std::chrono::seconds(2));  // past breaker_open_for: the next call is the trial
    Document incomplete = claim_doc("incomplete");
    incomplete.fields["claim"].erase("total_amount");
    EXPECT_TRUE(runner.write(incomplete).parked());
    const auto next = runner.write(claim_doc("next"));
    EXPECT_EQ(next.status(), SinkResult::Status::Ok) << next.reason();
    EXPECT_EQ(runner.context().counter("ncb_circuit_open"), 0.0);
}

TEST(NcbSink, NoServerListeningIsAHoldNotAFailure) {
    int port;
    {
        auto ncb = start_ncb();
        port = ncb.port();
    }  // stopped: nothing listens there now
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb",
                                                   "base_url: http://127.0.0.1:" + std::to_string(port) + "\napi_key: k\nconnect_timeout: 500ms\n");
    auto r = runner.write(claim_doc("c1"));
    EXPECT_EQ(r.status(), SinkResult::Status::Hold);
    EXPECT_NE(r.reason().find("NCB unreachable"), std::string::npos) << r.reason();
}

TEST(NcbSink, ConfigRefusesAnEmptyKeyAndABadUrl) {
    EXPECT_THROW(docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", "base_url: ftp://x\napi_key: k\n"), std::exception);
    EXPECT_THROW(docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.ncb", "base_url: https://x\napi_key: ''\n"), std::exception);
}

// ---- in a running pipeline ------------------------------------------------------------------

namespace {

std::string pipeline_yaml(const test::FakeProcess& ncb, const std::string& retry = "{attempts: 2, initial_backoff: 50ms}") {
    return "version: 1\nstate: {backend: memory}\nnodes:\n"
           "  in: {component: source.memory, config: {probe: ncb}}\n"
           "  ncb:\n    component: sink.ncb\n    concurrency: 4\n    retry: " + retry + "\n"
           "    config: {base_url: '" + ncb.base_url() + "/api/v1', api_key: " + kKey + ", breaker_threshold: 3, breaker_open_for: 300ms}\n"
           "edges:\n  - in -> ncb\n";
}

}  // namespace

TEST(NcbSinkInPipeline, AnOutageOfSeveralSecondsDeliversEveryClaimExactlyOnce) {
    auto ncb = start_ncb();
    // NCB answers 503 for 3 s from the first request: far more than the 2 attempts allow,
    // but an unavailable endpoint is not the claims' fault, so they wait (hold).
    test::fake_control(ncb.base_url(), "POST", "/_fake/script",
                       json{{"target", "claims"}, {"for_seconds", 3}, {"response", {{"status", 503}, {"body", "maintenance"}}}}.dump());
    test::Harness h;
    auto& p = test::probe("ncb");
    const int n = 12;
    for (int i = 0; i < n; ++i) p.pending.push_back(claim_doc("claim-" + std::to_string(i), 10 + i));
    auto rt = h.build(pipeline_yaml(ncb), true);
    rt->start();
    rt->run();
    const auto claims = claims_at(ncb);
    ASSERT_EQ(claims["claims"].size(), static_cast<std::size_t>(n)) << h.logs();
    std::set<std::string> keys;
    for (const auto& c : claims["claims"]) keys.insert(c["idempotency_key"].get<std::string>());
    EXPECT_EQ(keys.size(), static_cast<std::size_t>(n));
    EXPECT_GT(claims["attempts"].get<int>(), n) << "the outage was not exercised";
    for (int i = 0; i < n; ++i) {
        const std::string id = "claim-" + std::to_string(i);
        ASSERT_TRUE(p.settled.count(id)) << id;
        EXPECT_TRUE(p.settled[id].ok) << id << ": " << p.settled[id].reason;
        auto job = rt->state().get_job(id);
        ASSERT_TRUE(job) << id;
        EXPECT_EQ(job->status, "submitted") << id;
        EXPECT_TRUE(job->references.contains("ncb_claim_reference")) << job->to_json().dump();
    }
    EXPECT_NE(h.logs().find("endpoint unavailable"), std::string::npos);
}

TEST(NcbSinkInPipeline, ARefusalEndsInReviewWithNcbsReasonOnTheJob) {
    auto ncb = start_ncb();
    test::Harness h;
    auto& p = test::probe("ncb");
    test::fake_control(ncb.base_url(), "POST", "/_fake/script",
                       json{{"target", "claims"},
                            {"responses", json::array({{{"status", 422},
                                                        {"body", {{"error", {{"code", "VALIDATION_ERROR"}, {"message", "Claim Amount over the policy limit"}}}}}}})}}
                           .dump());
    p.pending.push_back(claim_doc("bad"));
    auto rt = h.build(pipeline_yaml(ncb), true);
    rt->start();
    rt->run();
    auto job = rt->state().get_job("bad");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->status, "review");
    EXPECT_NE(job->last_error.find("over the policy limit"), std::string::npos) << job->to_json().dump();
}

TEST(NcbSinkInPipeline, AHoldPastHoldForEndsAsADeadLetterNotALoss) {
    auto ncb = start_ncb();
    test::fake_control(ncb.base_url(), "POST", "/_fake/script",
                       json{{"target", "claims"}, {"for_seconds", 60}, {"response", {{"status", 503}, {"body", "down"}}}}.dump());
    test::Harness h;
    auto& p = test::probe("ncb");
    p.pending.push_back(claim_doc("late"));
    auto rt = h.build(pipeline_yaml(ncb, "{attempts: 2, initial_backoff: 50ms, hold_for: 1s}"), true);
    rt->start();
    rt->run();
    ASSERT_TRUE(p.settled.count("late"));
    EXPECT_FALSE(p.settled["late"].ok);
    EXPECT_NE(p.settled["late"].reason.find("stayed unavailable"), std::string::npos) << p.settled["late"].reason;
    auto job = rt->state().get_job("late");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->status, "failed");
    EXPECT_EQ(rt->state().keys("deadletter/").size(), 1u);
}
