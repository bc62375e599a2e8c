#include "admin_actions.hpp"

#include <cstring>
#include <fcntl.h>
#include <fstream>
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

std::string AdminActions::retry(const std::string& id) {
    auto job = store_.get_job(id);
    if (!job) return "no such job";
    if (job->status != "failed" && job->status != "partial")
        return fmt::format("job is '{}'; only failed or partial jobs can be retried", job->status);
    if (store_.keys("deadletter-index/" + id + "/", 1).empty())
        return "no dead letter is stored for this job, so there is nothing to re-run";
    auto letters = dead_letters_.for_job(id);
    if (letters.empty()) return "the dead letters for this job are gone";
    std::vector<std::size_t> targets;
    for (const auto& letter : letters) {
        auto node = node_index(letter.node);
        if (!node) return fmt::format("the dead letter names node '{}', which this pipeline no longer has", letter.node);
        targets.push_back(*node);
    }
    store_.update_job(id, [](Job& j) {
        j.status = "processing";
        j.attempts += 1;
        j.last_error.clear();
    });
    for (std::size_t i = 0; i < letters.size(); ++i) {
        const std::string key = letters[i].key, index_key = letters[i].index_key;
        graph_.inject(targets[i], id, std::make_shared<const Document>(std::move(letters[i].doc)), [this, key, index_key](const Outcome& o) {
            if (o.ok) dead_letters_.remove(key, index_key);  // else the failing node wrote a new letter
        }, DescendantOutcome::Kind::Failed);
    }
    log_.log(LogLevel::Info, fmt::format("retrying job from {} dead letter(s)", letters.size()), id);
    return "";
}

std::string AdminActions::approve_job(const std::string& id, const nlohmann::json& corrections, const std::string& notes) {
    auto job = store_.get_job(id);
    if (!job) return "no such job";
    if (job->status != "review") return fmt::format("job is '{}'; only jobs in review can be approved", job->status);
    if (!approved_node_) return "admin.approved_node is not set: the pipeline names no node for approved documents";
    auto keys = store_.keys("review/" + id + "/", 1000);
    if (keys.empty()) return "no parked document is stored for this job";
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
    if (docs.empty()) return "the parked documents for this job are gone";
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
    if (!still_in_review) return "job is no longer in review: another reviewer acted on it first";
    for (auto& [key, doc] : docs) {
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
    return "";
}

std::string AdminActions::reject_job(const std::string& id, const std::string& reason) {
    auto job = store_.get_job(id);
    if (!job) return "no such job";
    if (job->status != "review") return fmt::format("job is '{}'; only jobs in review can be rejected", job->status);
    bool still_in_review = false;
    store_.update_job(id, [&](Job& j) {
        still_in_review = j.status == "review";
        if (!still_in_review) return;
        j.status = "rejected";
        j.last_error = reason;
    });
    if (!still_in_review) return "job is no longer in review: another reviewer acted on it first";
    for (const auto& key : store_.keys("review/" + id + "/", 1000)) store_.erase(key);
    log_.log(LogLevel::Info, "rejected by a reviewer", id);
    return "";
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

}  // namespace docpipe::core
