#include "node.hpp"

#include <algorithm>

namespace docpipe::core {

void NodeStats::observe(std::chrono::steady_clock::time_point t0, std::chrono::steady_clock::time_point ended) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(ended - t0).count();
    busy_us.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
    calls.fetch_add(1, std::memory_order_relaxed);
    // One increment in the bucket the call falls in (none past the last bound: +Inf is
    // `calls`); the cumulative "le" counts are summed when /metrics is scraped.
    const double seconds = static_cast<double>(us) / 1e6;
    const auto* bound = std::lower_bound(std::begin(kLatencyBuckets), std::end(kLatencyBuckets), seconds);
    if (bound != std::end(kLatencyBuckets)) buckets[static_cast<std::size_t>(bound - std::begin(kLatencyBuckets))].fetch_add(1, std::memory_order_relaxed);
}

void NodeStats::set_last_error(std::string why, std::chrono::system_clock::time_point at, bool store_failure) {
    std::lock_guard lock(error_mutex_);
    last_error_ = {std::move(why), at, store_failure};
    store_failing.store(store_failure);
}

void NodeStats::clear_store_failure() {
    std::lock_guard lock(error_mutex_);
    last_error_.store_failure = false;
    store_failing.store(false);
}

NodeStats::LastError NodeStats::last_error() const {
    std::lock_guard lock(error_mutex_);
    return last_error_;
}

}  // namespace docpipe::core
