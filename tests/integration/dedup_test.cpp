// transform.dedup: duplicates are skipped and point to the original; redeliveries after a
// crash or a failure are processed again (the prototype's check blocked everything).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <fmt/core.h>

#include "harness.hpp"

using namespace docpipe;
using namespace docpipe::test;

namespace {

// source.memory's documents hold the one byte 'x': the key transform.dedup files them under.
const std::string kMemoryDocumentKey = [] {
    const std::string joined = "1:x";
    unsigned char digest[32];
    unsigned int length = 0;
    EVP_Digest(joined.data(), joined.size(), digest, &length, EVP_sha256(), nullptr);
    std::string hex;
    for (unsigned i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
    return "dedup/" + hex;
}();

class Dedup : public ::testing::Test {
protected:
    // Each run is a fresh runtime on the same SQLite state, like a restarted service.
    int run_once(const std::string& sink_config, const std::string& chain = "in -> dedup -> out", const std::string& more_nodes = "") {
        auto rt = harness_.build("state: {backend: sqlite, path: '" + (harness_.dir.path() / "s.db").string() + R"('}
admin: {enabled: false}
nodes:
  in: {component: source.memory, config: {probe: src}}
  dedup: {component: transform.dedup}
  out: {component: sink.memory, retry: {attempts: 1}, config: )" + sink_config + R"(}
)" + more_nodes + "edges: [" + chain + "]\n",
                                 true);
        rt->start();
        int rc = rt->run();
        last_ = std::move(rt);
        return rc;
    }
    std::optional<core::Job> job(const std::string& id) { return last_->state().get_job(id); }
    // A job record as a first copy left it.
    static core::Job record(const std::string& id, const std::string& status) {
        core::Job j;
        j.id = id;
        j.status = status;
        return j;
    }
    // The state a first copy left behind: its content hash, owned by `owner` ("<job> <doc>"),
    // and the jobs it wrote.
    void seed(const std::string& owner, const std::vector<core::Job>& jobs) {
        core::SystemClock clock;
        auto store = core::open_store("sqlite", (harness_.dir.path() / "s.db").string(), clock);
        store->put(kMemoryDocumentKey, owner, std::chrono::hours(1));
        for (const auto& j : jobs) store->put_job(j);
    }

    Harness harness_;
    std::unique_ptr<core::Runtime> last_;
};

TEST_F(Dedup, SameContentFromAnotherJobIsSkippedAndPointsToTheOriginal) {
    probe("src").feed(3);  // three source documents, identical bytes
    {
        std::lock_guard lock(probe("src").mutex);
        for (auto& d : probe("src").pending) d.attributes["message_id"] = "<" + d.id + "@example.my>";
    }
    EXPECT_EQ(run_once("{probe: out}"), 0) << "duplicates are not failures";
    EXPECT_EQ(probe("out").accepted.size(), 1u);
    EXPECT_EQ(job("doc-0")->status, "submitted");
    for (const char* id : {"doc-1", "doc-2"}) {
        auto j = job(id);
        EXPECT_EQ(j->status, "skipped") << id;
        EXPECT_EQ(j->duplicate_of, "doc-0") << id;
        EXPECT_EQ(j->email_id, std::string("<") + id + "@example.my>") << "the copy's email is found by its Message-ID";
        EXPECT_TRUE(probe("src").settled.at(id).ok) << "the source is acked: nothing is left to do";
    }
    // The first copy's job names the later ones, for whoever reviews it.
    EXPECT_THAT(job("doc-0")->references.value("sent_again_in", nlohmann::json::array()).get<std::vector<std::string>>(),
                ::testing::UnorderedElementsAre("doc-1", "doc-2"));
}

// Found by a probe: five empty files dropped together were skipped as duplicates of an empty
// email that had failed, and filed as processed. No content is nobody's copy: each goes on,
// to fail on its own in a real pipeline ("empty file").
TEST_F(Dedup, EmptyDocumentsAreNeverDuplicatesOfEachOther) {
    {
        std::lock_guard lock(probe("src").mutex);
        for (int i = 0; i < 3; ++i) {
            Document d = Document::from_bytes("empty-" + std::to_string(i), "text/plain", Bytes{});
            d.id = "empty-" + std::to_string(i);
            probe("src").pending.push_back(std::move(d));
        }
    }
    EXPECT_EQ(run_once("{probe: out}"), 0);
    for (int i = 0; i < 3; ++i) {
        const auto j = job("empty-" + std::to_string(i));
        ASSERT_TRUE(j);
        EXPECT_EQ(j->status, "submitted") << "empty-" << i;
        EXPECT_EQ(j->duplicate_of, "") << "empty-" << i;
    }
    std::lock_guard lock(probe("out").mutex);
    EXPECT_EQ(probe("out").accepted.size(), 3u);
}

TEST_F(Dedup, OriginalThatFailedDoesNotBlockTheNextSubmission) {
    probe("src").feed(1);
    EXPECT_EQ(run_once("{probe: out, fail_always: true}"), 1);
    EXPECT_EQ(job("doc-0")->status, "failed");
    probe("src").feed(1, "again-");  // the member sends the same receipt again
    EXPECT_EQ(run_once("{probe: ok}"), 0);
    EXPECT_EQ(probe("ok").accepted.at("again-0"), 1);
    EXPECT_EQ(job("again-0")->status, "submitted");
}

TEST_F(Dedup, RedeliveryAfterACrashIsProcessed_AfterSuccessIsNot) {
    probe("src").feed(1);
    // A crash mid-way left the job "processing" (the source was never acked).
    core::SystemClock clock;
    {
        auto store = core::open_store("sqlite", (harness_.dir.path() / "s.db").string(), clock);
        store->put("dedup/" + std::string(64, '0'), "unrelated");
        core::Job j;
        j.id = "doc-0";
        j.status = "processing";
        store->put_job(j);
    }
    EXPECT_EQ(run_once("{probe: out}"), 0);
    EXPECT_EQ(probe("out").accepted.at("doc-0"), 1) << "redelivered after a crash: processed";
    EXPECT_EQ(job("doc-0")->status, "submitted");

    probe("src").feed(1);  // the same file dropped again after it was submitted
    EXPECT_EQ(run_once("{probe: out}"), 0);
    EXPECT_EQ(probe("out").accepted.at("doc-0"), 1) << "not submitted twice";
    EXPECT_EQ(job("doc-0")->status, "submitted") << "its first outcome stands";
    EXPECT_EQ(job("doc-0")->references["duplicate_deliveries"], 1);
}

// Placed after transform.mime, dedup sees each attachment. The same receipt in two emails
// (the member sent it again; new Message-ID, new greeting) was booked at NCB once per email
// while dedup hashed whole emails; the same file attached twice to one email was booked twice.
// Here transform.split stands for transform.mime: its two children carry the same bytes.
TEST_F(Dedup, TheSameAttachmentInTwoEmailsOrTwiceInOneIsDeliveredOnce) {
    probe("src").feed(2);
    const std::string split = "  split: {component: transform.split, config: {children: 2}}\n";
    EXPECT_EQ(run_once("{probe: out}", "in -> split -> dedup -> out", split), 0);
    {
        std::lock_guard lock(probe("out").mutex);
        EXPECT_EQ(probe("out").accepted.size(), 1u) << "one of the four attachments reaches the sink";
    }
    EXPECT_EQ(job("doc-0")->status, "submitted");
    const auto outcomes = job("doc-0")->outcomes();
    ASSERT_EQ(outcomes.size(), 2u) << outcomes;
    int copies = 0;
    for (const auto& o : outcomes)
        if (o.value("status", "") == "skipped") {
            ++copies;
            EXPECT_THAT(o.value("reason", ""), ::testing::HasSubstr("skipped as a copy")) << o;
        }
    EXPECT_EQ(copies, 1) << outcomes;
    EXPECT_EQ(job("doc-1")->status, "skipped") << "the second email: both attachments were sent before";
    EXPECT_EQ(job("doc-1")->duplicate_of, "doc-0");

    // Delivered again after it was submitted (a crash before the ack): still once.
    probe("src").feed(1);
    EXPECT_EQ(run_once("{probe: out}", "in -> split -> dedup -> out", split), 0);
    std::lock_guard lock(probe("out").mutex);
    EXPECT_EQ(probe("out").accepted.size(), 1u);
    EXPECT_EQ(probe("out").accepted.begin()->second, 1);
}

// A resend while the first copy is still on its way is skipped: the first copy's outcome
// stands for both. Should it fail, the resend is not there to take its place, so the skip
// says which job to retry.
TEST_F(Dedup, AResendWhileTheFirstCopyIsProcessingNamesTheJobToRetry) {
    core::Job first = record("job-1", "processing");
    first.owner = "elsewhere:1";  // another process, still running it
    seed("job-1 receipt-b", {first});
    probe("src").feed(1, "again-");
    EXPECT_EQ(run_once("{probe: out}"), 0);
    const auto resend = job("again-0");
    EXPECT_EQ(resend->status, "skipped");
    EXPECT_EQ(resend->duplicate_of, "job-1");
    EXPECT_THAT(resend->last_error, ::testing::HasSubstr("job-1, which was still processing when this copy came"));
    EXPECT_THAT(resend->last_error, ::testing::HasSubstr("if it fails, retry job job-1"));
    EXPECT_EQ(probe("out").accepted.count("again-0"), 0u);
}

// The same email delivered again, caught before transform.mime has read its Message-ID: the
// bytes are the first copy's, and so is the Message-ID its job is found by (it was empty).
TEST_F(Dedup, AWholeEmailSentAgainIsFoundByItsMessageId) {
    core::Job first = record("job-1", "submitted");
    first.email_id = "<first@example.my>";
    seed("job-1 doc-0", {first});
    probe("src").feed(1, "again-");
    EXPECT_EQ(run_once("{probe: out}"), 0);
    EXPECT_EQ(job("again-0")->status, "skipped");
    EXPECT_EQ(job("again-0")->email_id, "<first@example.my>");
    EXPECT_EQ(job("job-1")->references.value("sent_again_in", nlohmann::json::array()), nlohmann::json::array({"again-0"}));
}

// The first copy's own outcome decides, not its job's: job-1 booked one receipt and failed on
// another (partial); the failed receipt sent again in a new email goes through.
TEST_F(Dedup, AReceiptThatFailedInAPartialJobIsNotADuplicateWhenSentAgain) {
    const auto seed_partial = [&](const std::string& original_outcome) {
        core::Job j = record("job-1", "partial");
        j.set_outcomes_text(R"([{"doc_id":"receipt-a","status":"submitted"},{"doc_id":"receipt-b","status":")" + original_outcome +
                            R"("}])");
        seed("job-1 receipt-b", {j});
    };
    seed_partial("failed");
    probe("src").feed(1, "again-");
    EXPECT_EQ(run_once("{probe: out}"), 0);
    EXPECT_EQ(job("again-0")->status, "submitted") << "receipt-b was never booked";
    {
        std::lock_guard lock(probe("out").mutex);
        EXPECT_EQ(probe("out").accepted.count("again-0"), 1u);
    }
    seed_partial("submitted");  // the same, but receipt-b itself was booked
    probe("src").feed(1, "later-");
    EXPECT_EQ(run_once("{probe: out}"), 0);
    EXPECT_EQ(job("later-0")->status, "skipped");
    EXPECT_EQ(job("later-0")->duplicate_of, "job-1");
}

// A claim a reviewer rejected was not booked: the member may send the receipt again, and it is
// processed. Unless NCB holds it all the same (`held`: booked with the first values, the
// corrections parked and then rejected): sent again, it would be booked a second time.
TEST_F(Dedup, ARejectedReceiptIsNewWhenSentAgainUnlessAReceivingSystemHoldsIt) {
    const auto seed_ended = [&](const std::string& job_status, const std::string& outcome_status, bool held) {
        core::Job j = record("job-1", job_status);
        j.set_outcomes_text(R"([{"doc_id":"receipt-b","status":")" + outcome_status + "\"" + (held ? R"(,"held":true)" : "") + "}]");
        seed("job-1 receipt-b", {j});
    };
    int round = 0;
    const auto send_again = [&] {
        const std::string prefix = "again" + std::to_string(round++) + "-";
        probe("src").feed(1, prefix);
        EXPECT_EQ(run_once("{probe: out}"), 0);
        return job(prefix + "0");
    };
    seed_ended("rejected", "rejected", false);
    EXPECT_EQ(send_again()->status, "submitted") << "never booked: processed";
    // The document's own delivery in a rejected job (the email archived as received) is no
    // booking either.
    seed_ended("rejected", "submitted", false);
    EXPECT_EQ(send_again()->status, "submitted") << "archived, not booked: processed";
    seed_ended("rejected", "rejected", true);
    auto held = send_again();
    EXPECT_EQ(held->status, "skipped") << "NCB holds it";
    EXPECT_EQ(held->duplicate_of, "job-1");
    // Approved again after that, and NCB down until the attempts ran out: NCB holds it still.
    seed_ended("failed", "failed", true);
    EXPECT_EQ(send_again()->status, "skipped") << "NCB holds it";
    seed_ended("failed", "failed", false);
    EXPECT_EQ(send_again()->status, "submitted") << "a plain failure: sent again, it goes through";
}

// A job in review whose email is delivered again (a crash before the ack): with the archive
// fed from the inbox, the archive's ledger answered "submitted" and the job left the review
// queue, its claim lost. The shipped pipelines dedup the whole email first, then each
// attachment; this is their shape (transform.split stands for transform.mime).
TEST_F(Dedup, AnEmailDeliveredAgainKeepsItsReviewStatusWithAnArchiveBesideIt) {
    const std::string nodes = "  dedup_email: {component: transform.dedup}\n"
                              "  split: {component: transform.split, config: {children: 2}}\n"
                              "  review: {component: sink.review}\n"
                              "  archive: {component: sink.memory, config: {probe: archive}}\n";
    const auto runtime = [&] {
        return harness_.build("state: {backend: sqlite, path: '" + (harness_.dir.path() / "s.db").string() + R"('}
admin: {enabled: false}
nodes:
  in: {component: source.memory, config: {probe: src}}
  dedup: {component: transform.dedup}
)" + nodes + "edges: [in -> dedup_email -> split -> dedup -> review, dedup_email -> archive]\n",
                              true);
    };
    probe("src").feed(1);
    auto rt = runtime();
    rt->start();
    EXPECT_EQ(rt->run(), 0);
    EXPECT_EQ(rt->state().get_job("doc-0")->status, "review");
    rt.reset();
    probe("src").feed(1);  // the same email again
    auto again = runtime();
    again->start();
    EXPECT_EQ(again->run(), 0);
    EXPECT_EQ(again->state().get_job("doc-0")->status, "review") << "still waiting for a reviewer";
}

// Across a stream (pipelines/distributed) the intake's job is `submitted` once the receipt is
// handed on; the delivery stage's job (`<doc>@<node>`, rooted at the intake's) failed. The
// receipt sent again must go through: it was skipped for the whole TTL, and never booked.
TEST_F(Dedup, AReceiptWhoseLaterStageFailedIsNotADuplicateWhenSentAgain) {
    core::Job intake = record("job-1", "submitted");
    intake.set_outcomes_text(R"([{"doc_id":"receipt-b","status":"submitted"}])");
    core::Job delivery = record("receipt-b@from_ocr", "failed");
    delivery.root_id = "job-1";
    seed("job-1 receipt-b", {intake, delivery});
    probe("src").feed(1, "again-");
    EXPECT_EQ(run_once("{probe: out}"), 0);
    EXPECT_EQ(job("again-0")->status, "submitted");
    EXPECT_EQ(job("job-1")->references["resent_as"]["receipt-b"], "again-0") << "the first job knows it was replaced";
}

// A job a reviewer rejected, its email delivered again (a crash before the ack): it went back
// into the review queue as an empty job no one could approve. It stays rejected.
TEST_F(Dedup, ARejectedJobDeliveredAgainStaysRejected) {
    core::Job j = record("doc-0", "rejected");
    j.last_error = "not a medical receipt";
    seed("doc-0 doc-0", {j});
    probe("src").feed(1);
    EXPECT_EQ(run_once("{probe: out}"), 0);
    EXPECT_EQ(job("doc-0")->status, "rejected");
    std::lock_guard lock(probe("out").mutex);
    EXPECT_EQ(probe("out").accepted.count("doc-0"), 0u);
}

}  // namespace

// The email is archived as received (an edge from before transform.mime) and its one receipt
// is skipped as sent before: the archive keeps the email and books no claim, so the job is
// `skipped`, as it is without an archive (it was `submitted`, the archive's delivery counted).
// A receipt that fails beside the archive makes the job `failed`, not `partial`.
TEST_F(Dedup, AnArchivedEmailWhoseReceiptWasSentBeforeIsSkipped) {
    const std::string nodes = "  split: {component: transform.split, config: {children: 1}}\n"
                              "  archive: {component: sink.memory, config: {probe: archive}}\n";
    const std::string chain = "in -> split -> dedup -> out, in -> archive";
    probe("src").feed(1);
    EXPECT_EQ(run_once("{probe: out}", chain, nodes), 0);
    EXPECT_EQ(job("doc-0")->status, "submitted");

    probe("src").feed(1, "again-");  // a new email, the same receipt
    EXPECT_EQ(run_once("{probe: out}", chain, nodes), 0);
    {
        std::lock_guard lock(probe("archive").mutex);
        EXPECT_EQ(probe("archive").accepted.count("again-0"), 1u) << "the email itself is archived";
    }
    EXPECT_EQ(job("again-0")->status, "skipped") << job("again-0")->outcomes();
    EXPECT_EQ(job("again-0")->duplicate_of, "doc-0");
    {
        std::lock_guard lock(probe("out").mutex);
        EXPECT_EQ(probe("out").accepted.size(), 1u);
    }

    last_.reset();  // a fresh store: the receipt is new again
    for (const char* file : {"s.db", "s.db-wal", "s.db-shm"}) std::filesystem::remove(harness_.dir.path() / file);
    probe("src").feed(1, "broken-");
    EXPECT_EQ(run_once("{probe: out, fail_always: true}", chain, nodes), 1);
    EXPECT_EQ(job("broken-0")->status, "failed") << "the archive beside it booked no claim";

    // An email with nothing to split off, archived: skipped, saying why (it was `submitted`:
    // the archive's delivery outranked the skip on the email's own outcome).
    probe("src").feed(1, "empty-");
    EXPECT_EQ(run_once("{probe: out}", chain, "  split: {component: transform.split, config: {children: 0}}\n"
                                              "  archive: {component: sink.memory, config: {probe: archive}}\n"), 0);
    EXPECT_EQ(job("empty-0")->status, "skipped") << job("empty-0")->outcomes();
    EXPECT_THAT(job("empty-0")->last_error, ::testing::HasSubstr("no attachment to split off"));
}
