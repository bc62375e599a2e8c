// transform.dedup: duplicates are skipped and point to the original; redeliveries after a
// crash or a failure are processed again (the prototype's check blocked everything).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace docpipe;
using namespace docpipe::test;

namespace {

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

    Harness harness_;
    std::unique_ptr<core::Runtime> last_;
};

TEST_F(Dedup, SameContentFromAnotherJobIsSkippedAndPointsToTheOriginal) {
    probe("src").feed(3);  // three source documents, identical bytes
    EXPECT_EQ(run_once("{probe: out}"), 0) << "duplicates are not failures";
    EXPECT_EQ(probe("out").accepted.size(), 1u);
    EXPECT_EQ(job("doc-0")->status, "submitted");
    for (const char* id : {"doc-1", "doc-2"}) {
        auto j = job(id);
        EXPECT_EQ(j->status, "skipped") << id;
        EXPECT_EQ(j->duplicate_of, "doc-0") << id;
        EXPECT_TRUE(probe("src").settled.at(id).ok) << "the source is acked: nothing is left to do";
    }
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

}  // namespace
