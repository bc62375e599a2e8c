#include "dead_letters.hpp"

#include <fmt/core.h>

namespace docpipe::core {

DeadLetters::DeadLetters(Store& store, Clock& clock, MetricsRegistry& metrics, std::string pipeline_hash)
    : store_(store), clock_(clock), metrics_(metrics), pipeline_hash_(std::move(pipeline_hash)) {}

void DeadLetters::store(const RuntimeNode& node, const Envelope& env, const std::string& reason) {
    nlohmann::json record{{"doc_id", env.doc->id},
                          {"root_id", env.tracker->doc_id},
                          {"node", node.name()},
                          {"component", node.spec->component},
                          {"reason", reason},
                          {"attempts", env.attempt},
                          {"failed_at", iso8601(clock_.now())},
                          {"pipeline_hash", pipeline_hash_},
                          {"document", env.doc->to_json(true)}};
    const std::string key = fmt::format("deadletter/{}-{}-{}", iso8601(clock_.now()), env.doc->id, node.name());
    store_.put(key, docpipe::json_text(record));
    // Indexed by job (source document) so the retry endpoint finds its letters.
    store_.put(fmt::format("deadletter-index/{}/{}", env.tracker->doc_id, key), key);
    metrics_.increment("dead_letters_total", 1, {{"node", node.name()}});
}

std::vector<DeadLetters::Letter> DeadLetters::for_job(const std::string& job_id) {
    std::vector<Letter> letters;
    for (const auto& index_key : store_.keys("deadletter-index/" + job_id + "/", 1000)) {
        auto key = store_.get(index_key);
        auto record_text = key ? store_.get(*key) : std::nullopt;
        if (!record_text) continue;
        auto record = nlohmann::json::parse(*record_text);
        letters.push_back({*key, index_key, record.value("node", ""), Document::from_json(record.at("document"))});
    }
    return letters;
}

void DeadLetters::remove(const std::string& key, const std::string& index_key) noexcept {
    try {
        store_.erase(key);
        store_.erase(index_key);
    } catch (const std::exception&) {
        // Left behind: a later retry finds the letter and the ledger skips what went through.
    }
}

}  // namespace docpipe::core
