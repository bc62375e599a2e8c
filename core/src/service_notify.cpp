#include "service_notify.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include <fmt/core.h>
#include <systemd/sd-daemon.h>

namespace docpipe::core {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

ServiceNotifier::ServiceNotifier() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    active_ = socket && *socket;
    std::uint64_t usec = 0;
    // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process.
    if (active_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) watchdog_ = std::chrono::microseconds(usec);
}

void ServiceNotifier::send(const std::string& message) {
    if (!active_) return;
    // A failed notice must not stop the service; systemd's own timeouts report it.
    if (sd_notify(0, message.c_str()) < 0) std::cerr << "docpipe: sd_notify failed for: " << message.substr(0, message.find('\n')) << "\n";
}

void ServiceNotifier::ready(std::string_view status) { send(fmt::format("READY=1\nSTATUS={}", status)); }

void ServiceNotifier::reloading(std::string_view status) {
    // MONOTONIC_USEC: systemd 253+ wants it with RELOADING=1 (Type=notify-reload); older ones ignore it.
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(steady::now().time_since_epoch()).count();
    send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}", now, status));
}

void ServiceNotifier::stopping(std::string_view status) { send(fmt::format("STOPPING=1\nSTATUS={}", status)); }

void ServiceNotifier::status(std::string_view status) { send(fmt::format("STATUS={}", status)); }

void ServiceNotifier::watchdog() { send("WATCHDOG=1"); }

// ---- judgement ---------------------------------------------------------------------------

bool WatchdogJudge::healthy(const Liveness& now, steady::time_point at) {
    if (!last_progress_ || *last_progress_ != now.progress) {
        last_progress_ = now.progress;
        moved_at_ = at;
        return true;
    }
    const auto still = std::chrono::duration_cast<milliseconds>(at - moved_at_);
    if (now.in_flight > 0) {
        if (still <= now.stuck_after) return true;
        reason_ = fmt::format("{} document(s) in flight and no node call has begun or ended for {} s (runtime.stuck_after is {} s)",
                              now.in_flight, still.count() / 1000, now.stuck_after.count() / 1000);
        return false;
    }
    if (now.quietest_source <= now.stuck_after + now.poll_wait) return true;
    reason_ = fmt::format("a source has not finished a poll for {} s (runtime.stuck_after is {} s)", now.quietest_source.count() / 1000,
                          now.stuck_after.count() / 1000);
    return false;
}

std::string StatusLine::update(const Liveness& now, std::optional<std::size_t> review, steady::time_point at) {
    samples_.emplace_back(at, now.settled);
    // Keep the newest sample at least a minute old as the base of the rate.
    while (samples_.size() > 2 && at - samples_[1].first >= std::chrono::minutes(1)) samples_.pop_front();
    const auto& [since, settled_then] = samples_.front();
    const double minutes = std::chrono::duration<double, std::ratio<60>>(at - since).count();
    const double per_minute = minutes > 0 ? static_cast<double>(now.settled - settled_then) / minutes : 0.0;
    std::string text = fmt::format("{:.0f} docs/min, {} in flight", per_minute, now.in_flight);
    text += review ? fmt::format(", {} in review", *review) : std::string(", review queue unknown (state store unreachable)");
    return text;
}

// ---- the thread --------------------------------------------------------------------------

ServiceWatch::ServiceWatch(ServiceNotifier& notifier, Runtime& runtime)
    : notifier_(notifier), runtime_(runtime), thread_([this] { loop(); }) {}

ServiceWatch::~ServiceWatch() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::string ServiceWatch::status_text() {
    const auto review = runtime_.review_queue_size();
    std::lock_guard lock(mutex_);
    return status_.update(runtime_.liveness(), review, steady::now());
}

void ServiceWatch::loop() {
    if (!notifier_.active()) return;
    // Pings at half the watchdog period (systemd's advice); STATUS= at most every 10 s.
    const milliseconds tick = notifier_.watchdog_period()
                                  ? std::clamp(std::chrono::duration_cast<milliseconds>(*notifier_.watchdog_period()) / 2,
                                               milliseconds(50), milliseconds(10'000))
                                  : milliseconds(10'000);
    auto next_status = steady::now();
    std::unique_lock lock(mutex_);
    while (!stop_) {
        const auto now = steady::now();
        const Liveness l = runtime_.liveness();
        if (notifier_.watchdog_period()) {
            const bool ok = judge_.healthy(l, now);
            if (ok) notifier_.watchdog();
            if (ok != pinging_) {
                std::cerr << (ok ? std::string("docpipe: work moves again; watchdog pings resume\n")
                                 : "docpipe: watchdog pings stop (systemd will restart the service): " + judge_.reason() + "\n");
                pinging_ = ok;
            }
        }
        if (now >= next_status) {
            lock.unlock();
            const auto review = runtime_.review_queue_size();  // a store query: not under the lock
            lock.lock();
            notifier_.status(status_.update(l, review, now));
            next_status = now + milliseconds(10'000);
        }
        cv_.wait_for(lock, tick, [this] { return stop_; });
    }
}

}  // namespace docpipe::core
