// Stuck documents: a thread that warns (once per hop) about a document that has sat in one
// node longer than `stuck_after`, and the report of where every document in flight is
// (for a drain that timed out, and for operators).
//
// Ownership: the Runtime owns the StuckWatch; destruction stops and joins its thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "node.hpp"
#include "tracking.hpp"

namespace docpipe::core {

// One line per source document in flight: its id, label, source and each node it is in.
std::vector<std::string> in_flight_report(const InFlight& flight, const NodeList& nodes);

// When every document in flight waits only for endpoints that are down (each of its hops
// Held), the earliest of their next tries; nullopt when something else is in flight (or
// nothing is). A drain at shutdown stops waiting when that is past its deadline: nothing can
// move before it.
std::optional<steady::time_point> next_try_if_all_held(const InFlight& flight);

class StuckWatch {
public:
    StuckWatch(const InFlight& flight, const NodeList& nodes, MetricsRegistry& metrics, std::chrono::milliseconds stuck_after);
    ~StuckWatch();

private:
    void loop();

    const InFlight& flight_;
    const NodeList& nodes_;
    MetricsRegistry& metrics_;
    const std::chrono::milliseconds stuck_after_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;  // last: starts after everything above exists
};

}  // namespace docpipe::core
