#include "watchdog.hpp"

#include <algorithm>

#include <fmt/core.h>

namespace docpipe::core {

using std::chrono::milliseconds;

std::vector<std::string> in_flight_report(const InFlight& flight, const NodeList& nodes) {
    std::vector<std::string> lines;
    const auto now = steady::now();
    for (const auto& t : flight.snapshot()) {
        std::lock_guard tl(t->mutex);
        std::string where;
        for (const Position* p : t->positions.live())
            where += fmt::format("{}node '{}' for {} ms, {}", where.empty() ? "" : "; ", nodes[p->node]->name(),
                                 std::chrono::duration_cast<milliseconds>(now - p->current_since()).count(),
                                 describe_state(p->current_state()));
        lines.push_back(fmt::format("doc {} ({}) from '{}': {}", t->doc_id, t->label, t->source_node, where.empty() ? "between nodes" : where));
    }
    return lines;
}

std::optional<steady::time_point> next_try_if_all_held(const InFlight& flight) {
    std::optional<steady::time_point> earliest;
    for (const auto& t : flight.snapshot()) {
        std::lock_guard tl(t->mutex);
        const auto live = t->positions.live();
        if (live.empty()) return std::nullopt;  // between nodes: about to be queued somewhere
        for (const Position* p : live) {
            if (p->current_state() != HopState::Held) return std::nullopt;
            if (!earliest || p->due < *earliest) earliest = p->due;
        }
    }
    return earliest;
}

StuckWatch::StuckWatch(const InFlight& flight, const NodeList& nodes, MetricsRegistry& metrics, milliseconds stuck_after)
    : flight_(flight), nodes_(nodes), metrics_(metrics), stuck_after_(stuck_after), thread_([this] { loop(); }) {}

StuckWatch::~StuckWatch() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void StuckWatch::loop() {
    std::unique_lock lock(mutex_);
    const auto period = std::clamp(stuck_after_ / 4, milliseconds(10), milliseconds(1000));
    while (!cv_.wait_for(lock, period, [&] { return stop_; })) {
        const auto now = steady::now();
        for (const auto& t : flight_.snapshot()) {
            std::lock_guard tl(t->mutex);
            for (Position* pp : t->positions.live()) {
                Position& p = *pp;
                // A call that began since the last look: running, and not yet warned about
                // (the hop marks itself running without the lock, see Position::running_since).
                p.catch_up();
                if (p.warned || now - p.since < stuck_after_) continue;
                p.warned = true;
                const RuntimeNode& node = *nodes_[p.node];
                // The hop's clock restarts with each try of a held document: the time since it was
                // taken says how long it has really waited ("stuck for 60 s" at 4, 6 and 10 min).
                const auto in_pipeline = std::chrono::duration_cast<std::chrono::seconds>(now - t->started).count();
                const auto in_hop = std::chrono::duration_cast<std::chrono::seconds>(now - p.since).count();
                node.context->log().log(LogLevel::Warn,
                                        fmt::format("document stuck for {} s in this node ({}), {}{}", in_hop, node.spec->component,
                                                    describe_state(p.state),
                                                    in_pipeline > in_hop + 1 ? fmt::format("; {} s since it was taken", in_pipeline) : ""),
                                        t->doc_id);
                metrics_.increment("stuck_documents_total", 1, {{"node", node.name()}});
            }
        }
    }
}

}  // namespace docpipe::core
