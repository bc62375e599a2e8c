#include "admin_actions.hpp"

#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include "builtin/builtin.hpp"
#include "runtime.hpp"

namespace docpipe::core {

std::optional<std::size_t> AdminActions::node_index(const std::string& name) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i]->name() == name) return i;
    return std::nullopt;
}

using Result = ActionResult::Outcome;

nlohmann::json AdminActions::check_corrections(const nlohmann::json& corrections) const {
    nlohmann::json problems = nlohmann::json::object();
    for (const auto& node : nodes_) {
        const auto* checker = dynamic_cast<const FieldChecker*>(node->component.get());
        if (!checker) continue;
        for (auto& [field, why] : checker->check_fields(corrections))
            if (!problems.contains(field)) problems[field] = why;
    }
    return problems;
}

ActionResult AdminActions::retry_job(const std::string& id) {
    auto job = store_.get_job(id);
    if (!job) return ActionResult::fail(Result::NotFound, "no such job");
    if (job->status != "failed" && job->status != "partial")
        return ActionResult::fail(Result::Conflict, fmt::format("job is '{}'; only failed or partial jobs can be retried", job->status));
    auto letters = dead_letters_.for_job(id);
    if (letters.empty())
        return ActionResult::fail(Result::Invalid, "no dead letter is stored for this job, so there is nothing to re-run");
    std::vector<std::size_t> targets;
    for (const auto& letter : letters) {
        auto node = node_index(letter.node);
        if (!node)
            return ActionResult::fail(Result::Invalid,
                                      fmt::format("the dead letter names node '{}', which this pipeline no longer has", letter.node));
        targets.push_back(*node);
    }
    // Compare-and-set: two retries at once start the job once.
    bool still_retryable = false;
    store_.update_job(id, [&](Job& j) {
        still_retryable = j.status == "failed" || j.status == "partial";
        if (!still_retryable) return;
        j.status = "processing";
        j.attempts += 1;
        j.last_error.clear();
    });
    if (!still_retryable) return ActionResult::fail(Result::Conflict, "job is no longer failed: it was retried or changed meanwhile");
    for (std::size_t i = 0; i < letters.size(); ++i) {
        const std::string key = letters[i].key, index_key = letters[i].index_key;
        graph_.inject(targets[i], id, std::make_shared<const Document>(std::move(letters[i].doc)), [this, key, index_key](const Outcome& o) {
            if (o.ok) dead_letters_.remove(key, index_key);  // else the failing node wrote a new letter
        }, DescendantOutcome::Kind::Failed);
    }
    log_.log(LogLevel::Info, fmt::format("retrying job from {} dead letter(s)", letters.size()), id);
    return ActionResult::done();
}

ActionResult AdminActions::approve(const std::string& id, const nlohmann::json& corrections, const std::string& notes) {
    auto job = store_.get_job(id);
    if (!job) return ActionResult::fail(Result::NotFound, "no such job");
    if (job->status != "review")
        return ActionResult::fail(Result::Conflict, fmt::format("job is '{}'; only jobs in review can be approved", job->status));
    if (!approved_node_)
        return ActionResult::fail(Result::Invalid, "admin.approved_node is not set: the pipeline names no node for approved documents");
    if (auto problems = check_corrections(corrections); !problems.empty())
        return ActionResult::fail(Result::Invalid, fmt::format("{} corrected field(s) are not valid; nothing was changed", problems.size()),
                                  problems);
    auto keys = store_.keys("review/" + id + "/", 1000);
    if (keys.empty()) return ActionResult::fail(Result::Invalid, "no parked document is stored for this job");
    std::vector<std::pair<std::string, Document>> docs;
    for (const auto& key : keys) {
        auto text = store_.get(key);
        if (!text) continue;
        Document doc = Document::from_json(nlohmann::json::parse(*text).at("document"));
        // A claim document keeps its fields under "claim" (docpipe/claim.hpp); others at the top.
        const bool claim = doc.fields.contains("claim");
        for (const auto& [field, value] : corrections.items()) {
            nlohmann::json corrected{{"value", value}, {"confidence", 1.0}, {"source", "reviewer"}, {"provenance", {{"source", "reviewer"}}}};
            if (claim) {
                doc.fields["claim"][field] = std::move(corrected);
                if (auto m = doc.fields.find("missing"); m != doc.fields.end() && m->is_array()) {
                    nlohmann::json still = nlohmann::json::array();
                    for (const auto& x : *m) {
                        const auto name = x.get<std::string>();
                        const bool fixed = name == field || (name == "member_id or policy_number" && (field == "member_id" || field == "policy_number"));
                        if (!fixed) still.push_back(x);
                    }
                    *m = still;
                }
            } else {
                doc.fields[field] = std::move(corrected);
            }
        }
        if (claim) doc.fields["reviewed"] = true;
        if (!notes.empty()) doc.attributes["reviewer_notes"] = notes;
        doc.attributes[kJobIdAttribute] = id;
        docs.emplace_back(key, std::move(doc));
    }
    if (docs.empty()) return ActionResult::fail(Result::Invalid, "the parked documents for this job are gone");
    // Compare-and-set: of two reviewers acting at once, only the first finds it in review.
    bool still_in_review = false;
    store_.update_job(id, [&](Job& j) {
        still_in_review = j.status == "review";
        if (!still_in_review) return;
        j.status = "approved";
        for (const auto& [field, value] : corrections.items())
            j.fields[field] = {{"value", value}, {"confidence", 1.0}, {"provenance", {{"source", "reviewer"}}}};
        if (!notes.empty()) j.references["reviewer_notes"] = notes;
        j.last_error.clear();
    });
    if (!still_in_review) return ActionResult::fail(Result::Conflict, "job is no longer in review: another reviewer acted on it first");
    for (auto& [key, doc] : docs) {
        // The parked document stays until its approval went through, so a job that fails
        // after approval can be returned to review.
        const std::string review_key = key;
        graph_.inject(*approved_node_, id, std::make_shared<const Document>(std::move(doc)), [this, review_key](const Outcome& o) {
            if (!o.ok) return;
            try {
                store_.erase(review_key);
            } catch (const std::exception&) {
            }
        }, DescendantOutcome::Kind::Review);
    }
    log_.log(LogLevel::Info, fmt::format("approved by a reviewer with {} correction(s); sent to node '{}'", corrections.size(),
                                         nodes_[*approved_node_]->name()), id);
    return ActionResult::done();
}

ActionResult AdminActions::reject(const std::string& id, const std::string& reason) {
    auto job = store_.get_job(id);
    if (!job) return ActionResult::fail(Result::NotFound, "no such job");
    if (job->status != "review")
        return ActionResult::fail(Result::Conflict, fmt::format("job is '{}'; only jobs in review can be rejected", job->status));
    bool still_in_review = false;
    store_.update_job(id, [&](Job& j) {
        still_in_review = j.status == "review";
        if (!still_in_review) return;
        j.status = "rejected";
        j.last_error = reason;
    });
    if (!still_in_review) return ActionResult::fail(Result::Conflict, "job is no longer in review: another reviewer acted on it first");
    for (const auto& key : store_.keys("review/" + id + "/", 1000)) store_.erase(key);
    log_.log(LogLevel::Info, "rejected by a reviewer", id);
    return ActionResult::done();
}

ActionResult AdminActions::return_to_review(const std::string& id) {
    auto job = store_.get_job(id);
    if (!job) return ActionResult::fail(Result::NotFound, "no such job");
    if (job->status != "failed" && job->status != "partial")
        return ActionResult::fail(Result::Conflict, fmt::format("job is '{}'; only a job that failed can be returned to review", job->status));
    // The documents still parked are the ones whose approval did not go through.
    std::set<std::string> parked;
    const std::string prefix = "review/" + id + "/";
    for (const auto& key : store_.keys(prefix, 1000)) parked.insert(key.substr(prefix.size()));
    if (parked.empty())
        return ActionResult::fail(Result::Invalid, "this job has no parked review documents (it never was in review); retry it instead");
    bool changed = false;
    store_.update_job(id, [&](Job& j) {
        changed = j.status == "failed" || j.status == "partial";
        if (!changed) return;
        for (auto& o : j.outcomes)
            if (o.value("status", "") == "failed" && parked.count(o.value("doc_id", ""))) {
                o["status"] = "review";
                o["reason"] = "returned to review after a failed approval: " + o.value("reason", "");
            }
        j.status = "review";
        j.last_error = "returned to review: " + j.last_error;
    });
    if (!changed) return ActionResult::fail(Result::Conflict, "job changed meanwhile; reload it");
    // Its dead letters would re-send the same documents: the review decides now.
    for (const auto& letter : dead_letters_.for_job(id))
        if (parked.count(letter.doc.id)) dead_letters_.remove(letter.key, letter.index_key);
    log_.log(LogLevel::Info, "returned to review after its approval failed", id);
    return ActionResult::done();
}

std::string local_admin_key(const std::filesystem::path& file, Logger& log) {
    std::ifstream in(file);
    std::string key;
    if (in >> key && key.size() >= 32) {
        log.log(LogLevel::Info, fmt::format("admin API key read from {} (send it as X-API-Key)", file.string()));
        return key;
    }
    key = generate_api_key();
    std::error_code ec;
    if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw StartError(fmt::format("admin: cannot write the generated API key to {}: {}", file.string(), std::strerror(errno)));
    ::fchmod(fd, 0600);  // also when the file existed with wider permissions
    std::string line = key + "\n";
    bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!written) throw StartError("admin: cannot write the generated API key to " + file.string());
    log.log(LogLevel::Warn, fmt::format("no admin.api_keys configured: generated a random API key and wrote it to {} (mode 0600); "
                                        "send it as X-API-Key, or configure admin.api_keys", file.string()));
    return key;
}

std::optional<HookResponse> AdminActions::hook(const std::string& node, const HookRequest& request) {
    for (const auto& n : nodes_) {
        if (n->name() != node) continue;
        auto* hook = dynamic_cast<HttpHook*>(n->component.get());
        if (!hook) return std::nullopt;
        return hook->handle_hook(request);
    }
    return std::nullopt;
}

}  // namespace docpipe::core
