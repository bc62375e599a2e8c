#include "stream_sink.hpp"

#include <hiredis/hiredis.h>

#include <fmt/core.h>

#include "blob_keys.hpp"
#include "wire_format.hpp"

namespace docpipe::streams {

namespace {

// KEYS: stream, dedup key, blob keys...   ARGV: maxlen, trim mode ("~" or "="), dedup ttl ms,
// blob ttl ms, references per entry, blob bytes... (one per blob key), then the entry's
// field/value pairs. Returns {1, id} when appended, {0, id} when this content was appended
// before (the earlier entry's id). One script, so a crash cannot leave blobs counted for an
// entry that was never appended, or an entry without its dedup key.
constexpr const char* kAppendScript = R"lua(
local prev = redis.call('GET', KEYS[2])
if prev then return {0, prev} end
local nblobs = #KEYS - 2
for i = 1, nblobs do
  local key = KEYS[2 + i]
  if redis.call('EXISTS', key) == 0 then
    redis.call('SET', key, ARGV[5 + i], 'PX', ARGV[4])
  else
    redis.call('PEXPIRE', key, ARGV[4])
  end
  redis.call('INCRBY', key .. ':refs', ARGV[5])
  redis.call('PEXPIRE', key .. ':refs', ARGV[4])
end
local fields = {}
for i = 6 + nblobs, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], ARGV[1], '*', unpack(fields))
redis.call('SET', KEYS[2], id, 'PX', ARGV[3])
return {1, id}
)lua";

std::string attribute(const Document& doc, const char* key) {
    auto it = doc.attributes.find(key);
    return it == doc.attributes.end() ? std::string() : it->second;
}

}  // namespace

ComponentDescriptor StreamSink::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Sink;
    d.name = "sink.redis_stream";
    d.summary = "Appends each document (parts, pages, fields) to a Redis stream for the next pipeline stage; large buffers as blobs";
    d.has_health_probe = true;
    d.config = ConfigSpec{
        redis_url_field("write to"),
        redis_password_field(),
        Field::string("stream").required().describe("Stream key to XADD to, e.g. docpipe:ocr"),
        Field::integer("max_length").default_value(100000).min(1)
            .describe("XADD MAXLEN: the stream is trimmed to about this many entries (Redis trims unread entries too: "
                      "keep it above the largest backlog)"),
        Field::enumeration("trim", {"approximate", "exact"}).default_value("approximate")
            .describe("approximate (MAXLEN ~, cheap, may keep up to ~100 entries more) or exact (MAXLEN =)"),
        Field::integer("inline_limit").default_value(64 * 1024).min(0)
            .describe("Part bytes and page pixels above this many bytes are stored once as a content-addressed blob "
                      "(docpipe:blob:<sha256>) instead of inline in the entry"),
        Field::integer("consumer_groups").default_value(1).min(1)
            .describe("How many consumer groups read the stream: each group's XACK releases one blob reference"),
        Field::duration("blob_ttl").default_value("7d").min(1)
            .describe("Blobs of entries never acked (trimmed unread, stream deleted) expire after this long"),
        Field::duration("dedup_ttl").default_value("24h").min(0)
            .describe("A document with the same id and content written again within this time is not appended twice"),
        Field::duration("hold_after").default_value("2s").min(0.01)
            .describe("While Redis is unreachable, the document is held and tried again after this long"),
        Field::duration("connect_timeout").default_value("2s").min(0.01).describe("TCP connect timeout"),
        Field::duration("command_timeout").default_value("10s").min(0.01)
            .describe("Longest wait for one reply (large blobs take longer to send)"),
    };
    return d;
}

StreamSink::StreamSink(const Config& config, Context& context)
    : ctx_(context),
      stream_(config.get_string("stream")),
      max_length_(config.get_int("max_length")),
      exact_trim_(config.get_string("trim") == "exact"),
      inline_limit_(static_cast<std::size_t>(config.get_int("inline_limit"))),
      consumer_groups_(config.get_int("consumer_groups")),
      blob_ttl_(config.get_duration("blob_ttl")),
      dedup_ttl_(config.get_duration("dedup_ttl")),
      hold_after_(config.get_duration("hold_after")),
      link_(redis_address_from(config, context.node_name()), config.get_duration("connect_timeout"), config.get_duration("command_timeout")) {
    if (stream_.empty()) throw std::invalid_argument(fmt::format("node '{}': config 'stream' is empty", context.node_name()));
}

SinkResult StreamSink::write(const Document& doc) {
    EncodeOptions options;
    options.inline_limit = inline_limit_;
    options.job_id = attribute(doc, "job_id");
    options.producer = ctx_.node_name();
    options.written_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.clock().now().time_since_epoch()).count();
    Encoded enc;
    try {
        enc = encode(doc, options);
    } catch (const std::exception& e) {
        return SinkResult::fail(fmt::format("cannot serialise the document for stream '{}': {}", stream_, e.what()));
    }

    std::vector<std::string> args{"EVAL", kAppendScript, std::to_string(2 + enc.blobs.size()), stream_,
                                  dedup_key(stream_, doc.id, enc.content_hash)};
    std::string blob_list;
    for (const auto& [ref, bytes] : enc.blobs) {
        args.push_back(blob_key(ref.sha256));
        if (!blob_list.empty()) blob_list += ',';
        blob_list += ref.sha256;
    }
    args.push_back(std::to_string(max_length_));
    args.push_back(exact_trim_ ? "=" : "~");
    // PX 0 is refused by Redis: a dedup_ttl of 0 still keeps the key a moment.
    args.push_back(std::to_string(std::max<std::int64_t>(dedup_ttl_.count(), 1)));
    args.push_back(std::to_string(blob_ttl_.count()));
    args.push_back(std::to_string(consumer_groups_));
    for (const auto& [ref, bytes] : enc.blobs) args.emplace_back(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    // Fields besides `doc` let operators (XRANGE) and the source read identity and blob
    // references without decoding the payload (e.g. for one it cannot decode).
    for (const std::string& kv : {std::string(kFieldVersion), std::to_string(kWireVersion), std::string(kFieldDocId), doc.id,
                                  std::string(kFieldJobId), options.job_id, std::string(kFieldBlobs), blob_list})
        args.push_back(kv);
    args.emplace_back(kFieldPayload);
    args.push_back(std::move(enc.payload));

    std::lock_guard lock(mutex_);
    try {
        Reply r = link_.command(args);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            throw RedisReplyError(fmt::format("redis {}: unexpected reply to the append script", link_.address().describe()));
        const bool appended = r->element[0]->integer == 1;
        const std::string entry = reply_string(r->element[1]);
        last_error_.clear();
        if (appended) ctx_.metrics().increment("stream_entries_written_total", 1, {{"stream", stream_}});
        else ctx_.metrics().increment("stream_entries_deduplicated_total", 1, {{"stream", stream_}});
        if (!appended)
            ctx_.log().log(LogLevel::Info, fmt::format("already in stream '{}' as entry {} (same id and content); not appended again",
                                                       stream_, entry), doc.id);
        return SinkResult::ok().with_reference("stream_entry", stream_ + "/" + entry);
    } catch (const RedisDown& e) {
        last_error_ = e.what();
        ctx_.log().log(LogLevel::Warn, fmt::format("stream '{}' not reachable, holding the document: {}", stream_, e.what()), doc.id);
        return SinkResult::hold(hold_after_, fmt::format("node '{}': stream '{}': Redis unreachable ({}); the document waits and is "
                                                         "appended once Redis answers again", ctx_.node_name(), stream_, e.what()));
    } catch (const RedisReplyError& e) {
        last_error_ = e.what();
        // -OOM, -WRONGTYPE (the key is not a stream), -NOSCRIPT...: worth a retry, and the
        // reason reaches the dead-letter store if it persists.
        return SinkResult::retry(hold_after_, fmt::format("node '{}': appending to stream '{}' failed: {} (check that the key is a "
                                                          "stream and Redis has memory left)", ctx_.node_name(), stream_, e.what()));
    }
}

HealthReport StreamSink::health() {
    std::lock_guard lock(mutex_);
    try {
        Reply r = link_.command({"XLEN", stream_});
        return {Health::Healthy, fmt::format("redis {}: stream '{}' holds {} entries (max_length {})", link_.address().describe(),
                                             stream_, r->integer, max_length_)};
    } catch (const RedisReplyError& e) {
        return {Health::Degraded, e.what()};
    } catch (const RedisDown& e) {
        return {Health::Unavailable, e.what()};
    }
}

}  // namespace docpipe::streams
