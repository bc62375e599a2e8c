// In-process components for runtime tests, registered as a builtin package ("test").
// Each instance talks to a named Probe, through which a test feeds documents, controls
// failures and blocking, and observes acks and writes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "docpipe/plugin.hpp"

namespace docpipe::test {

struct Probe {
    std::mutex mutex;
    std::condition_variable cv;

    // source.memory
    std::deque<Document> pending;
    std::map<std::string, Outcome> settled;  // by doc id
    int settle_calls = 0;
    int emitted = 0;
    int outstanding = 0, max_outstanding = 0;  // emitted and not yet settled
    int refused = 0;                           // emit() returned false

    // sink.memory
    std::map<std::string, int> attempts;  // write() calls per doc id
    std::map<std::string, int> accepted;  // Ok results per doc id
    std::map<std::string, nlohmann::json> fields;  // last accepted document's fields per id
    std::map<std::string, std::map<std::string, std::string>> attributes;  // and its attributes
    bool gate_open = true;                // false: write() blocks until opened
    int blocked = 0;                      // writers currently blocked

    void feed(int count, const std::string& prefix = "doc-");
    // Like feed(), but each document's content is its id, so transform.dedup sees
    // different documents.
    void feed_distinct(int count, const std::string& prefix = "doc-");
    void open_gate();
    // Waits (up to 10 s of real time) until pred() holds under the lock.
    bool wait_for(const std::function<bool()>& pred);
};

Probe& probe(const std::string& name);
void reset_probes();

// Total writes accepted by every sink.null instance.
extern std::atomic<std::uint64_t> null_sink_writes;

// Acks received by every source.sequence instance, by outcome.
struct SequenceAcks {
    std::atomic<std::uint64_t> ok{0}, failed{0};
};
extern SequenceAcks sequence_acks;

// The manifest with source.memory, transform.split, transform.misbehave, transform.route,
// transform.pass, transform.sleep, sink.memory, sink.null and source.sequence.
const PluginManifest& test_manifest();

}  // namespace docpipe::test
