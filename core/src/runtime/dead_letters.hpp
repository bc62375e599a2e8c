// Dead letters: a document that failed for good is stored with the node, the reason and
// the whole document, indexed by its job, so POST /api/v1/jobs/{id}/retry can put it back
// into the node that failed it.
//
// Keys: deadletter/<time>-<doc id>-<node> holds the record; deadletter-index/<job>/<key>
// points at it. Threading: thread-safe (the store is). Ownership: the Runtime owns it.
#pragma once

#include <string>
#include <vector>

#include "node.hpp"
#include "state/store.hpp"
#include "tracking.hpp"

namespace docpipe::core {

class DeadLetters {
public:
    DeadLetters(Store& store, Clock& clock, MetricsRegistry& metrics, std::string pipeline_hash);

    // Stores the failed document. Throws StoreError when the store refused it.
    void store(const RuntimeNode& node, const Envelope& env, const std::string& reason);

    struct Letter {
        std::string key, index_key, node;
        Document doc;
    };
    // The letters of a job, oldest first.
    std::vector<Letter> for_job(const std::string& job_id);
    // Forgets a letter once its document went through again; a store failure leaves it.
    void remove(const std::string& key, const std::string& index_key) noexcept;

private:
    Store& store_;
    Clock& clock_;
    MetricsRegistry& metrics_;
    std::string pipeline_hash_;
};

}  // namespace docpipe::core
