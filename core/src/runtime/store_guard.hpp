// The state store as infrastructure: a store failure is not the document's fault. StoreGuard
// runs the runtime's own store operations (job records, dead letters, the delivery ledger)
// and, while the store fails, waits with backoff instead of giving up — up to `horizon`
// (default minutes) after the first failure. It also tells sources to pause while the store
// is down, and says whether it is up for /health/detailed.
//
// Threading: thread-safe; run() blocks the calling thread while it waits (a source thread:
// that is the back-pressure; a graph thread: that is a document waiting for the store).
// give_up() (the drain deadline passed) makes every wait end at once.
// Ownership: the Runtime owns it; it holds a reference to the store and logger.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "state/store.hpp"

namespace docpipe::core {

class StoreGuard {
public:
    StoreGuard(Store& store, Logger& log, std::chrono::milliseconds horizon) : store_(store), log_(log), horizon_(horizon) {}

    // Runs `op` (which uses the store); retries it while it throws StoreError, until it
    // succeeds or the horizon has passed, then rethrows the last StoreError.
    template <typename Op>
    auto run(Op&& op, std::string_view what) -> decltype(op()) {
        const auto first = std::chrono::steady_clock::now();
        std::chrono::milliseconds wait{100};
        while (true) {
            try {
                if constexpr (std::is_void_v<decltype(op())>) {
                    op();
                    mark_ok();
                    return;
                } else {
                    auto result = op();
                    mark_ok();
                    return result;
                }
            } catch (const StoreError& e) {
                mark_failed(e.what(), what);
                if (given_up_.load() || std::chrono::steady_clock::now() - first + wait > horizon_) throw;
                sleep(wait);
                wait = std::min<std::chrono::milliseconds>(wait * 2, std::chrono::milliseconds(2000));
            }
        }
    }

    bool available() const { return !down_.load(std::memory_order_relaxed); }
    // Blocks up to `max` while the store is down, probing it; true when it is up.
    bool wait_available(std::chrono::milliseconds max);
    void mark_failed(const std::string& why, std::string_view what);
    void mark_ok();
    void give_up();
    // Called once each time the store comes back after an outage, on the thread that saw it
    // answer again. Set before the store is used.
    void on_recovered(std::function<void()> fn) { on_recovered_ = std::move(fn); }
    std::chrono::milliseconds horizon() const { return horizon_; }
    std::uint64_t outages() const { return outages_.load(); }

private:
    void sleep(std::chrono::milliseconds d);

    Store& store_;
    Logger& log_;
    const std::chrono::milliseconds horizon_;
    std::atomic<bool> down_{false}, given_up_{false};
    std::atomic<std::uint64_t> outages_{0};
    std::mutex mutex_;
    std::condition_variable cv_;
    std::chrono::steady_clock::time_point down_since_;
    std::function<void()> on_recovered_;
};

}  // namespace docpipe::core
