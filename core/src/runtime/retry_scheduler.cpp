#include "retry_scheduler.hpp"

#include <random>

namespace docpipe::core {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds retry_delay(const RetryPolicy& policy, int next_attempt, milliseconds hint) {
    if (hint.count() > 0) return hint;  // the component knows better (Retry-After)
    milliseconds delay = policy.backoff_for(next_attempt);
    if (policy.jitter > 0 && delay.count() > 0) {
        // Jitter spreads retries of documents that failed together (one outage) over time.
        thread_local std::mt19937 rng{std::random_device{}()};
        std::uniform_real_distribution<double> dist(1.0 - policy.jitter, 1.0 + policy.jitter);
        delay = milliseconds(static_cast<std::int64_t>(static_cast<double>(delay.count()) * dist(rng)));
    }
    return delay;
}

RetryScheduler::RetryScheduler() : thread_([this] { loop(); }) {}

RetryScheduler::~RetryScheduler() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void RetryScheduler::at(steady::time_point due, std::function<void()> fn) {
    {
        std::lock_guard lock(mutex_);
        queue_.push(Item{due, seq_++, std::move(fn)});
    }
    cv_.notify_all();
}

void RetryScheduler::loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (queue_.empty()) {
            cv_.wait(lock);
            continue;
        }
        // A copy: wait_until keeps reading its deadline while the lock is released, and a
        // schedule() meanwhile can move the queue's storage (ASan: heap-use-after-free).
        if (const auto due = queue_.top().due; steady::now() < due) {
            cv_.wait_until(lock, due);
            continue;
        }
        auto fn = queue_.top().fn;
        queue_.pop();
        lock.unlock();
        fn();
        lock.lock();
    }
}

}  // namespace docpipe::core
