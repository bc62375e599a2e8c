// source.redis_stream — takes the documents a previous stage appended with
// sink.redis_stream, as one consumer of a Redis consumer group.
//
// Delivery (at-least-once, never dropped):
// - XREADGROUP ... BLOCK hands each new entry to this consumer; the entry stays in the
//   group's pending list (PEL) until this source sends XACK, which it does only from the
//   document's ack handle, i.e. after the local pipeline settled the document. A process
//   that dies before that leaves the entry pending.
// - Every `claim_every`, XAUTOCLAIM takes entries that sat pending (on any consumer) longer
//   than `claim_idle`: a dead worker's entries move to a live one. Entries this source
//   holds — in the local pipeline, or read and still waiting to be emitted while emit()
//   blocks under backpressure — are kept fresh by a timer thread (XCLAIM ... JUSTID on its
//   own pending entries every claim_idle/3), so a slow or busy but live worker does not
//   lose them to another, which would OCR them a second time.
// - An entry delivered more than `max_deliveries` times (it keeps crashing or stalling
//   workers), or one that can never be decoded (unknown format version, a blob gone), is
//   stored in the state store's dead letters (`deadletter/<time>-<doc id>-<node>`, with the
//   reason, the stream, the entry id and the document or its raw payload) and then XACKed.
// - After a connection failure (Redis restarted) the source backs off (100 ms doubling up to
//   `reconnect_backoff_max`), recreates the group if it vanished, and first re-reads its own
//   pending entries (XREADGROUP ... 0) that are not in flight here: nothing is lost, and an
//   entry already in the local pipeline is not emitted twice. XACKs that failed while Redis
//   was down are kept and sent again.
// - A document redelivered anyway (a worker died after its sinks delivered but before XACK)
//   carries the same document id, so the sinks' ledgers recognise it.
//
// Blobs: references in an entry are resolved (GET docpipe:blob:<sha256>) before the
// document is emitted. On XACK of an entry, one Lua script acks it and — only when XACK
// actually removed it from the PEL, so a repeated ack cannot release twice — decrements
// each blob's reference count, deleting the blob at zero (`release_blobs`).
//
// Threading: poll() runs on the runtime's source thread and owns the reading connection
// (blocked in XREADGROUP); ack handles and the refresh thread (started in start(), joined
// in stop() and the destructor) share a second, mutex-guarded connection. health() may
// run on another thread at any time.
//
// Example config:
//   from_intake:
//     component: source.redis_stream
//     config: {redis: "${REDIS_URL}", stream: docpipe:ocr, group: ocr-workers, claim_idle: 5m}
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "docpipe/component.hpp"
#include "redis_link.hpp"

namespace docpipe::streams {

class StreamSource : public Source {
public:
    static ComponentDescriptor describe();
    StreamSource(const Config& config, Context& context);
    ~StreamSource() override;

    void start() override;
    void stop() override;
    void poll(SourceEmitter& emitter, const PollRequest& request) override;
    HealthReport health() override;

    const std::string& consumer_name() const { return consumer_; }

private:
    struct Entry {
        std::string id;
        bool deleted = false;  // listed in the PEL but trimmed from the stream
        std::map<std::string, std::string> fields;
    };
    struct PendingAck {
        std::string entry_id;
        std::vector<std::string> blobs;
    };
    enum class Step { Emitted, Nothing, Stopped };

    void ensure_group();
    std::vector<Entry> read_group(const std::string& from_id, std::chrono::milliseconds block);
    std::vector<Entry> autoclaim();
    void refresh_loop();
    void request_refresh();  // wakes refresh_loop() now
    void refresh_held();  // on acker_, under ack_mutex_
    void stop_refresher();
    std::map<std::string, std::int64_t> delivery_counts(const std::vector<Entry>& entries);
    Step handle(SourceEmitter& emitter, Entry& entry, std::int64_t deliveries);
    void settle(const std::string& entry_id, const std::vector<std::string>& blobs, const Outcome& outcome);
    bool send_ack(const PendingAck& ack);  // false when Redis could not be reached
    void flush_acks();
    void dead_letter(const Entry& entry, const std::string& doc_id, const std::string& job_id, const nlohmann::json& document,
                     std::int64_t deliveries, const std::string& reason);
    SharedBytes read_blob(const std::string& sha256, std::size_t size);
    void set_error(std::string error);

    Context& ctx_;
    std::string stream_, group_, consumer_, start_id_;
    std::int64_t batch_, max_deliveries_;
    std::chrono::milliseconds block_, claim_idle_, claim_every_, backoff_max_;
    bool release_blobs_;

    RedisLink reader_;  // poll thread only
    bool group_ready_ = false;
    std::atomic<bool> recover_own_{true};  // re-read this consumer's PEL before new entries (set from ack threads too)
    std::chrono::steady_clock::time_point last_claim_{};
    std::chrono::milliseconds backoff_{0};

    std::mutex ack_mutex_;  // guards acker_, acks_waiting_
    RedisLink acker_;
    std::vector<PendingAck> acks_waiting_;  // XACKs that failed while Redis was down

    mutable std::mutex state_mutex_;                        // guards the members below
    std::map<std::string, std::vector<std::string>> in_flight_;  // entry id -> blob shas, emitted not yet XACKed
    std::set<std::string> fetched_;  // read by poll(), not yet emitted (poll may be blocked in emit)
    std::string last_error_;
    std::string last_entry_;
    std::uint64_t emitted_ = 0, acked_ = 0, dead_lettered_ = 0;

    std::mutex refresh_mutex_;  // guards refresh_stop_, refresh_now_; refresh_wake_ waits on it
    std::condition_variable refresh_wake_;
    bool refresh_stop_ = false;
    bool refresh_now_ = false;
    std::thread refresher_;  // owned; runs refresh_loop() from start() until stop_refresher()
};

}  // namespace docpipe::streams
