#include "tracking.hpp"

#include <algorithm>

namespace docpipe::core {

const char* describe_state(HopState s) {
    switch (s) {
        case HopState::Queued: return "waiting in the node's queue for a free worker";
        case HopState::Running: return "waiting for the component's call to return";
        case HopState::RetryWait: return "waiting for its next retry";
    }
    return "?";
}

const char* to_string(DescendantOutcome::Kind kind) {
    switch (kind) {
        case DescendantOutcome::Kind::Submitted: return "submitted";
        case DescendantOutcome::Kind::Review: return "review";
        case DescendantOutcome::Kind::Skipped: return "skipped";
        case DescendantOutcome::Kind::Failed: return "failed";
    }
    return "?";
}

bool InFlight::enter(const std::shared_ptr<Tracker>& tracker) {
    std::unique_lock lock(mutex_);
    if (live_.size() >= max_) {
        ++sources_waiting_;
        cv_.wait(lock, [&] { return live_.size() <= resume_at_ || stop_sources_.load(); });
        --sources_waiting_;
    }
    if (stop_sources_.load()) return false;
    live_.insert(tracker);
    peak_ = std::max<std::uint64_t>(peak_, live_.size());
    return true;
}

void InFlight::enter_now(const std::shared_ptr<Tracker>& tracker) {
    std::lock_guard lock(mutex_);
    live_.insert(tracker);
    peak_ = std::max<std::uint64_t>(peak_, live_.size());
}

void InFlight::leave(const std::shared_ptr<Tracker>& tracker) {
    bool wake;
    {
        std::lock_guard lock(mutex_);
        live_.erase(tracker);
        // Only two things wait on this: a source for the set to drain to resume_at_, and
        // run() for it to empty. Waking them on every settle costs a futex call each.
        wake = (sources_waiting_ > 0 && live_.size() <= resume_at_) || live_.empty();
    }
    if (wake) cv_.notify_all();
}

std::size_t InFlight::size() const {
    std::lock_guard lock(mutex_);
    return live_.size();
}

std::uint64_t InFlight::peak() const {
    std::lock_guard lock(mutex_);
    return peak_;
}

std::vector<std::shared_ptr<Tracker>> InFlight::snapshot() const {
    std::lock_guard lock(mutex_);
    return {live_.begin(), live_.end()};
}

void InFlight::request_stop() {
    {
        // Under the lock, so a waiter between its predicate check and its wait still wakes.
        std::lock_guard lock(mutex_);
        stop_requested_.store(true);
    }
    cv_.notify_all();
}

void InFlight::stop_sources() {
    {
        std::lock_guard lock(mutex_);
        stop_sources_.store(true);
    }
    cv_.notify_all();
}

bool InFlight::wait_empty_or_stop() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return live_.empty() || stop_requested_.load(); });
    return live_.empty();
}

void InFlight::wait_stop() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return stop_requested_.load(); });
}

bool InFlight::wait_empty_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return live_.empty(); });
}

void InFlight::pause_source(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return stop_sources_.load(); });
}

const char* to_string(HopRecord::Result result) {
    switch (result) {
        case HopRecord::Result::Emitted: return "processed";
        case HopRecord::Result::Skipped: return "skipped";
        case HopRecord::Result::Delivered: return "delivered";
        case HopRecord::Result::Parked: return "parked for review";
        case HopRecord::Result::AlreadyDelivered: return "already delivered (ledger)";
        case HopRecord::Result::Retry: return "retry";
        case HopRecord::Result::Hold: return "endpoint unavailable, waiting";
        case HopRecord::Result::StoreWait: return "state store unavailable, waiting";
        case HopRecord::Result::Failed: return "failed";
    }
    return "?";
}

}  // namespace docpipe::core
