#include "node.hpp"

namespace docpipe::core {

void NodeStats::observe(std::chrono::steady_clock::time_point t0) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    busy_us.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
    calls.fetch_add(1, std::memory_order_relaxed);
    const double seconds = static_cast<double>(us) / 1e6;
    for (std::size_t b = 0; b < kBucketCount; ++b)
        if (seconds <= kLatencyBuckets[b]) buckets[b].fetch_add(1, std::memory_order_relaxed);
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
