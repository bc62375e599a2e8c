// The service watchdog's judgement and the STATUS= line (core/src/service_notify.hpp), driven
// with made-up liveness samples and times: no clock, no socket. The notify socket itself is
// exercised end to end by tests/e2e/service_notify.py.
#include <gtest/gtest.h>

#include "service_notify.hpp"

using namespace docpipe::core;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {
Liveness sample(std::uint64_t progress, std::size_t in_flight, milliseconds quiet = milliseconds(0), std::uint64_t settled = 0) {
    Liveness l;
    l.running = true;
    l.progress = progress;
    l.settled = settled;
    l.in_flight = in_flight;
    l.quietest_source = quiet;
    l.stuck_after = seconds(60);
    l.poll_wait = milliseconds(500);
    return l;
}
const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
}  // namespace

TEST(ServiceWatchdog, PingsWhileWorkMovesAndWhileASlowCallIsYoungerThanStuckAfter) {
    WatchdogJudge judge;
    EXPECT_TRUE(judge.healthy(sample(10, 3), t0));
    EXPECT_TRUE(judge.healthy(sample(11, 3), t0 + seconds(50)));
    // No progress, but the last movement is 59 s old: an OCR page may take that long.
    EXPECT_TRUE(judge.healthy(sample(11, 3), t0 + seconds(109)));
}

TEST(ServiceWatchdog, AWedgedGraphStopsThePingsAndSaysWhy) {
    WatchdogJudge judge;
    EXPECT_TRUE(judge.healthy(sample(10, 2), t0));
    EXPECT_FALSE(judge.healthy(sample(10, 2), t0 + seconds(61)));
    EXPECT_NE(judge.reason().find("2 document(s) in flight"), std::string::npos) << judge.reason();
    // Work moving again resumes them.
    EXPECT_TRUE(judge.healthy(sample(11, 2), t0 + seconds(62)));
}

TEST(ServiceWatchdog, IdleIsHealthyOnlyWhileEverySourceKeepsPolling) {
    WatchdogJudge judge;
    EXPECT_TRUE(judge.healthy(sample(5, 0, milliseconds(300)), t0));
    // Idle for an hour with sources polling: still healthy.
    EXPECT_TRUE(judge.healthy(sample(5, 0, milliseconds(400)), t0 + std::chrono::hours(1)));
    // A source stuck inside its poll for longer than stuck_after + poll_wait.
    EXPECT_FALSE(judge.healthy(sample(5, 0, seconds(61)), t0 + std::chrono::hours(1) + seconds(1)));
    EXPECT_NE(judge.reason().find("source has not finished a poll"), std::string::npos) << judge.reason();
}

TEST(ServiceStatus, RateIsOverTheLastMinuteAndTheReviewQueueIsShown) {
    StatusLine line;
    EXPECT_EQ(line.update(sample(0, 0, {}, 0), 4, t0), "0 docs/min, 0 in flight, 4 in review");
    line.update(sample(0, 1, {}, 30), 4, t0 + seconds(30));
    // 120 settled over the two minutes, 90 of them in the last minute.
    EXPECT_EQ(line.update(sample(0, 2, {}, 120), 5, t0 + seconds(90)), "90 docs/min, 2 in flight, 5 in review");
    EXPECT_EQ(line.update(sample(0, 0, {}, 120), std::nullopt, t0 + seconds(100)).find("review queue unknown") != std::string::npos, true);
}
