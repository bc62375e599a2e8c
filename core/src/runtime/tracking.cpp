#include "tracking.hpp"

#include <algorithm>

namespace docpipe::core {

const char* describe_state(HopState s) {
    switch (s) {
        case HopState::Queued: return "waiting in the node's queue for a free worker";
        case HopState::Running: return "waiting for the component's call to return";
        case HopState::RetryWait: return "waiting for its next retry";
        case HopState::Held: return "waiting for its endpoint to come back";
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

InFlight::~InFlight() {
    // Unlinks and releases each; the next link is read before its tracker can be freed.
    while (head_) {
        Tracker* t = head_;
        head_ = t->in_flight_next;
        t->in_flight_prev = t->in_flight_next = nullptr;
        const auto self = std::move(t->in_flight_self);
    }
    size_ = 0;
}

bool InFlight::enter(const std::shared_ptr<Tracker>& tracker) {
    std::unique_lock lock(mutex_);
    if (size_ >= max_) {
        ++sources_waiting_;
        cv_.wait(lock, [&] { return size_ <= resume_at_ || stop_sources_.load(); });
        --sources_waiting_;
    }
    if (stop_sources_.load()) return false;
    link(tracker);
    return true;
}

void InFlight::enter_now(const std::shared_ptr<Tracker>& tracker) {
    std::lock_guard lock(mutex_);
    link(tracker);
}

void InFlight::link(const std::shared_ptr<Tracker>& tracker) {
    if (tracker->in_flight_self) return;  // already in flight
    tracker->in_flight_self = tracker;
    tracker->in_flight_prev = nullptr;
    tracker->in_flight_next = head_;
    if (head_) head_->in_flight_prev = tracker.get();
    head_ = tracker.get();
    ++size_;
    peak_ = std::max<std::uint64_t>(peak_, size_);
}

void InFlight::leave(const std::shared_ptr<Tracker>& tracker) {
    bool wake;
    std::shared_ptr<Tracker> self;  // released after the lock: the tracker may be freed with it
    {
        std::lock_guard lock(mutex_);
        if (!tracker->in_flight_self) return;  // not in flight
        Tracker* t = tracker.get();
        if (t->in_flight_prev) t->in_flight_prev->in_flight_next = t->in_flight_next;
        else head_ = t->in_flight_next;
        if (t->in_flight_next) t->in_flight_next->in_flight_prev = t->in_flight_prev;
        t->in_flight_prev = t->in_flight_next = nullptr;
        self = std::move(t->in_flight_self);
        --size_;
        // Only two things wait on this: a source for the set to drain to resume_at_, and
        // run() for it to empty. Waking them on every settle costs a futex call each.
        wake = (sources_waiting_ > 0 && size_ <= resume_at_) || size_ == 0;
    }
    if (wake) cv_.notify_all();
}

std::size_t InFlight::size() const {
    std::lock_guard lock(mutex_);
    return size_;
}

std::uint64_t InFlight::peak() const {
    std::lock_guard lock(mutex_);
    return peak_;
}

std::vector<std::shared_ptr<Tracker>> InFlight::snapshot() const {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Tracker>> out;
    out.reserve(size_);
    for (Tracker* t = head_; t; t = t->in_flight_next) out.push_back(t->in_flight_self);
    return out;
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
    cv_.wait(lock, [&] { return size_ == 0 || stop_requested_.load(); });
    return size_ == 0;
}

void InFlight::wait_stop() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return stop_requested_.load(); });
}

bool InFlight::wait_empty_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return size_ == 0; });
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
