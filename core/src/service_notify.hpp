// `docpipe run` as a systemd Type=notify service: readiness, reload and stop notices, the
// watchdog, and a one-line STATUS=, through libsystemd's sd_notify.
//
// Contract:
// - Without NOTIFY_SOCKET in the environment (not started by systemd) every call is a no-op.
// - READY=1 is sent by the caller only after Runtime::start() returned: graph built, sources
//   started, admin server listening. Never for a configuration that did not load.
// - WATCHDOG=1 is sent only while work moves, or while the graph is idle and every source
//   keeps polling (see watchdog_healthy()). A wedged graph stops the pings, so systemd's
//   WatchdogSec= restarts the service.
// Threading: ServiceNotifier is thread-safe (sd_notify opens a socket per call).
// Ownership: ServiceWatch runs one thread against a Runtime the caller owns; destroy the
// watch (it joins) before the runtime.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "runtime.hpp"

namespace docpipe::core {

class ServiceNotifier {
public:
    ServiceNotifier();
    bool active() const { return active_; }
    // The watchdog period systemd asked for (WATCHDOG_USEC for this pid); nullopt when off.
    std::optional<std::chrono::microseconds> watchdog_period() const { return watchdog_; }

    void ready(std::string_view status);
    void reloading(std::string_view status);
    void stopping(std::string_view status);
    void status(std::string_view status);
    void watchdog();

private:
    void send(const std::string& message);
    bool active_ = false;
    std::optional<std::chrono::microseconds> watchdog_;
};

// The watchdog's judgement, kept apart from the thread so that tests can drive it.
class WatchdogJudge {
public:
    // True when a WATCHDOG=1 ping is deserved now: progress moved since the last call, or it
    // moved within stuck_after while documents are in flight, or nothing is in flight and no
    // source has been quiet for longer than stuck_after + poll_wait.
    bool healthy(const Liveness& now, std::chrono::steady_clock::time_point at);
    // Why the last healthy() said no (for the log line when pings stop).
    const std::string& reason() const { return reason_; }

private:
    std::optional<std::uint64_t> last_progress_;
    std::chrono::steady_clock::time_point moved_at_{};
    std::string reason_;
};

// "12 docs/min · 3 in flight · 7 in review": documents settled over the last minute (or
// since start when younger), from samples of Liveness::settled.
class StatusLine {
public:
    std::string update(const Liveness& now, std::optional<std::size_t> review, std::chrono::steady_clock::time_point at);

private:
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> samples_;
};

class ServiceWatch {
public:
    ServiceWatch(ServiceNotifier& notifier, Runtime& runtime);
    ~ServiceWatch();
    ServiceWatch(const ServiceWatch&) = delete;
    ServiceWatch& operator=(const ServiceWatch&) = delete;
    // The current STATUS= text (also for READY=1 after a reload).
    std::string status_text();

private:
    void loop();

    ServiceNotifier& notifier_;
    Runtime& runtime_;
    WatchdogJudge judge_;
    StatusLine status_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    bool pinging_ = true;
    std::thread thread_;  // last: starts after everything above exists
};

}  // namespace docpipe::core
