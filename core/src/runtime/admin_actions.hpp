// What the admin API can ask of a running pipeline: readiness, detailed health, metrics,
// and the review and recovery actions — approve a parked claim (with a reviewer's
// corrections) into the pipeline's approved node, reject it, or re-run a failed job from
// its dead letters.
//
// Threading: called from admin server threads concurrently with the graph; everything it
// touches is thread-safe. Ownership: the Runtime owns it and stops the admin server first.
#pragma once

#include <optional>

#include "admin_server.hpp"
#include "graph.hpp"
#include "health.hpp"

namespace docpipe::core {

class AdminActions : public AdminBackend {
public:
    AdminActions(const NodeList& nodes, Store& store, GraphExecutor& graph, DeadLetters& dead_letters, HealthReporter& health,
                 const MetricsRegistry& metrics, const InFlight& flight, const RunCounters& counters, NodeLogger& log,
                 std::optional<std::size_t> approved_node, std::string owner)
        : nodes_(nodes), store_(store), graph_(graph), dead_letters_(dead_letters), health_(health), metrics_(metrics),
          flight_(flight), counters_(counters), log_(log), approved_node_(approved_node), owner_(std::move(owner)) {}

    bool ready(std::string& why_not) override { return health_.ready(why_not); }
    nlohmann::json health_detailed() override { return health_.detailed(); }
    std::string metrics_text() override { return render_metrics(metrics_, nodes_, flight_, counters_, store_); }
    Store& store() override { return store_; }
    ActionResult retry_job(const std::string& id) override;
    ActionResult approve(const std::string& id, const Corrections& corrections, const std::string& notes) override;
    ActionResult reject(const std::string& id, const std::string& reason) override;
    ActionResult return_to_review(const std::string& id) override;
    std::optional<HookResponse> hook(const std::string& node, const HookRequest& request) override;

private:
    // What the pipeline's components (FieldChecker) find wrong with a reviewer's corrections.
    nlohmann::json check_corrections(const nlohmann::json& corrections) const;
    // The checked corrections in the form the components store them (FieldChecker::normalize_fields).
    nlohmann::json normalize_corrections(nlohmann::json corrections) const;
    std::optional<std::size_t> node_index(const std::string& name) const;
    // Once an approved document went through (its own outcome in the job is `submitted`): its
    // parked record and page images, unless the record is no longer `parked` (the delivery
    // parked it again, corrected, for a reviewer).
    void forget_parked(const std::string& job_id, const std::string& doc_id, const std::string& review_key,
                       const std::string& pages_prefix, const std::string& parked) noexcept;

    const NodeList& nodes_;
    Store& store_;
    GraphExecutor& graph_;
    DeadLetters& dead_letters_;
    HealthReporter& health_;
    const MetricsRegistry& metrics_;
    const InFlight& flight_;
    const RunCounters& counters_;
    NodeLogger& log_;
    std::optional<std::size_t> approved_node_;
    const std::string owner_;  // this process (JobBook::owner()): an approved job names it until delivered
};

// The admin key when none is configured: reuse `file`, else generate one and write it
// there with mode 0600. The key itself is never logged. Throws StartError.
std::string local_admin_key(const std::filesystem::path& file, Logger& log);

}  // namespace docpipe::core
