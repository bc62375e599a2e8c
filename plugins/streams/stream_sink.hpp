// sink.redis_stream — hands each document to the next stage of a split pipeline by
// appending it (XADD) to a Redis stream, in the streams wire format (wire_format.hpp).
//
// Delivery: write() reports Ok only once XADD has succeeded, so the runtime acks the source
// only after the entry is in Redis. Redis unreachable → SinkResult::hold: the runtime keeps
// the document and tries again (an outage is not the document's fault and does not use up
// its attempts). The append is idempotent for `dedup_ttl`: one Lua script checks a key
// (stream, document id, content hash), stores the blobs, XADDs and records the entry id, so a
// document redelivered after a crash between XADD and the runtime's ledger write is not
// appended twice.
//
// Blobs: part bytes and page pixels above `inline_limit` bytes are stored once, content-
// addressed, under `docpipe:blob:<sha256>` on the same Redis as the stream (every stage
// reaches it; no shared filesystem needed), with a reference count `docpipe:blob:<sha256>:refs`
// raised by `consumer_groups` per entry. Each consumer group's XACK of the entry releases one
// reference (source.redis_stream); the last one deletes the blob. `blob_ttl` is a safety net
// for entries that never get acked (trimmed away unread, stream deleted).
//
// Trimming: XADD ... MAXLEN ~ max_length (or exact). Redis trims regardless of consumer
// groups, so max_length must exceed the largest backlog the consumers may fall behind by.
//
// Redis: a standalone server (or a primary). The append script touches each blob's `:refs`
// counter, a key it derives instead of declaring, which Redis Cluster would refuse.
//
// Threading: write() calls are serialised by the runtime (not concurrent_safe); health()
// may run on another thread, so the connection is guarded by a mutex.
//
// Example config:
//   to_ocr:
//     component: sink.redis_stream
//     config: {redis: "${REDIS_URL}", stream: docpipe:ocr, max_length: 100000}
#pragma once

#include <mutex>
#include <string>

#include "docpipe/component.hpp"
#include "redis_link.hpp"

namespace docpipe::streams {

class StreamSink : public Sink {
public:
    static ComponentDescriptor describe();
    StreamSink(const Config& config, Context& context);

    SinkResult write(const Document& doc) override;
    HealthReport health() override;

private:
    Context& ctx_;
    std::string stream_;
    std::int64_t max_length_;
    bool exact_trim_;
    std::size_t inline_limit_;
    std::int64_t consumer_groups_;
    std::chrono::milliseconds blob_ttl_, dedup_ttl_, hold_after_;
    std::mutex mutex_;  // guards link_ and last_error_
    RedisLink link_;
    std::string last_error_;
};

}  // namespace docpipe::streams
