// Retry timing: how long a failed hop waits (the node's policy, a component's Retry-After
// hint, jitter), and the one thread that puts it back when the wait is over — so no graph
// worker sleeps through a backoff.
//
// Threading: at() may be called from any thread; callbacks run on the scheduler's thread
// and must be quick (they only put an envelope back into the graph). Destruction joins
// the thread; callbacks still due are dropped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "pipeline.hpp"

namespace docpipe::core {

// The wait before try number `next_attempt` (2 = the first retry): the component's hint
// when it gave one (Retry-After), else the policy's exponential backoff with jitter.
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int next_attempt, std::chrono::milliseconds hint);

class RetryScheduler {
public:
    RetryScheduler();
    ~RetryScheduler();
    RetryScheduler(const RetryScheduler&) = delete;
    RetryScheduler& operator=(const RetryScheduler&) = delete;

    void at(std::chrono::steady_clock::time_point due, std::function<void()> fn);

private:
    struct Item {
        std::chrono::steady_clock::time_point due;
        std::uint64_t seq;
        std::function<void()> fn;
        bool operator>(const Item& o) const { return due != o.due ? due > o.due : seq > o.seq; }
    };
    void loop();

    std::mutex mutex_;
    std::condition_variable cv_;
    std::priority_queue<Item, std::vector<Item>, std::greater<>> queue_;
    std::uint64_t seq_ = 0;
    bool stopping_ = false;
    std::thread thread_;  // last: started after everything above exists
};

}  // namespace docpipe::core
