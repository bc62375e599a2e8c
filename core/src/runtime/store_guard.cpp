#include "store_guard.hpp"

#include <fmt/core.h>

namespace docpipe::core {

void StoreGuard::mark_failed(const std::string& why, std::string_view what) {
    if (down_.exchange(true)) return;  // logged once per outage
    {
        std::lock_guard lock(mutex_);
        down_since_ = std::chrono::steady_clock::now();
    }
    outages_.fetch_add(1);
    log_.log(LogLevel::Warn, fmt::format("state store unavailable ({}: {}); sources pause and documents wait up to {} s for it",
                                         what, why, horizon_.count() / 1000));
}

void StoreGuard::mark_ok() {
    if (!down_.load(std::memory_order_relaxed)) return;
    if (!down_.exchange(false)) return;
    std::chrono::steady_clock::time_point since;
    {
        std::lock_guard lock(mutex_);
        since = down_since_;
    }
    cv_.notify_all();
    log_.log(LogLevel::Info, fmt::format("state store is back after {} ms; sources resume",
                                         std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count()));
    if (on_recovered_) on_recovered_();
}

bool StoreGuard::wait_available(std::chrono::milliseconds max) {
    const auto until = std::chrono::steady_clock::now() + max;
    while (!available() && !given_up_.load()) {
        if (store_.probe().status == Health::Healthy) {
            mark_ok();
            return true;
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= until) return false;
        sleep(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(250),
                                                  std::chrono::duration_cast<std::chrono::milliseconds>(until - now)));
    }
    return available();
}

void StoreGuard::give_up() {
    given_up_.store(true);
    cv_.notify_all();
}

void StoreGuard::sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, d, [&] { return given_up_.load(); });
}

}  // namespace docpipe::core
