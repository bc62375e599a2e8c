#include "stream_source.hpp"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include <fmt/core.h>

#include "blob_keys.hpp"
#include "wire_format.hpp"

namespace docpipe::streams {

namespace {

// KEYS: stream, blob keys...   ARGV: group, entry id, release ("1"/"0").
// Releases blob references only when XACK removed the entry from the PEL (returns 1): an ack
// sent again after a lost reply, or by a consumer whose entry was claimed and acked by
// another, releases nothing.
constexpr const char* kAckScript = R"lua(
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if n == 1 and ARGV[3] == '1' then
  for i = 2, #KEYS do
    local left = redis.call('DECR', KEYS[i] .. ':refs')
    if left <= 0 then redis.call('DEL', KEYS[i], KEYS[i] .. ':refs') end
  end
end
return n
)lua";

// KEYS: stream   ARGV: group, consumer, entry ids...
// Resets the idle time of those of the ids that are still pending on this consumer, in one
// step: checking and claiming apart would let another worker's XAUTOCLAIM slip in between
// and then be undone. JUSTID: no delivery is counted. Returns how many were refreshed.
constexpr const char* kRefreshScript = R"lua(
local held = {}
for i = 3, #ARGV do held[ARGV[i]] = true end
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', #ARGV + 1000, ARGV[2])
local ids = {}
for _, e in ipairs(mine) do
  if held[e[1]] then ids[#ids + 1] = e[1] end
end
-- In chunks: Redis's Lua cannot unpack more than a few thousand values into one call.
for first = 1, #ids, 200 do
  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
  for i = first, math.min(first + 199, #ids) do args[#args + 1] = ids[i] end
  args[#args + 1] = 'JUSTID'
  redis.call(unpack(args))
end
return #ids
)lua";

std::string default_consumer() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "host");
    return fmt::format("{}-{}", host, static_cast<long>(getpid()));
}

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        if (end > start) out.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

std::string iso8601(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

std::string base64(std::string_view in) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
    }
    if (i + 1 == in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
        out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
    }
    return out;
}

// One [id, [field, value, ...]] element of an XREADGROUP / XAUTOCLAIM reply.
template <typename EntryT>
EntryT parse_entry(const redisReply* e) {
    EntryT entry;
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 1) throw RedisReplyError("redis: malformed stream entry in reply");
    entry.id = reply_string(e->element[0]);
    if (e->elements < 2 || reply_is_nil(e->element[1])) {
        entry.deleted = true;  // still pending, but trimmed from the stream
        return entry;
    }
    const redisReply* kv = e->element[1];
    for (std::size_t i = 0; i + 1 < kv->elements; i += 2) entry.fields[reply_string(kv->element[i])] = reply_string(kv->element[i + 1]);
    return entry;
}

}  // namespace

ComponentDescriptor StreamSource::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Source;
    d.name = "source.redis_stream";
    d.summary = "Reads documents from a Redis stream as one consumer of a consumer group; XACK only after the pipeline acked";
    d.has_health_probe = true;
    d.config = ConfigSpec{
        redis_url_field("read from"),
        redis_password_field(),
        Field::string("stream").required().describe("Stream key written by sink.redis_stream, e.g. docpipe:ocr"),
        Field::string("group").default_value("docpipe")
            .describe("Consumer group; every worker of one stage uses the same group (created with MKSTREAM if missing)"),
        Field::string("consumer").describe("This worker's consumer name in the group (default: <hostname>-<pid>)"),
        Field::string("start_id").default_value("0")
            .describe("Where a newly created group starts: 0 = every entry already in the stream, $ = only new ones"),
        Field::integer("batch").default_value(16).min(1).max(1000).describe("Entries read per XREADGROUP / XAUTOCLAIM call"),
        Field::duration("block").default_value("2s").min(0.001).describe("Longest XREADGROUP BLOCK wait for new entries"),
        Field::duration("claim_idle").default_value("5m").min(0.01)
            .describe("Entries pending on another consumer for longer than this are claimed (XAUTOCLAIM): a dead worker's "
                      "entries go to a live one. Keep it above the longest time one document may take"),
        Field::duration("claim_every").default_value("5s").min(0.01).describe("How often XAUTOCLAIM runs"),
        Field::integer("max_deliveries").default_value(5).min(1)
            .describe("An entry delivered more often than this goes to the dead-letter store with the reason and is acked"),
        Field::boolean("release_blobs").default_value(true)
            .describe("On XACK, release this entry's blob references (the last release deletes the blob)"),
        Field::duration("reconnect_backoff_max").default_value("5s").min(0.01)
            .describe("Longest wait between reconnect attempts while Redis is unreachable (starts at 100ms, doubles)"),
        Field::duration("connect_timeout").default_value("2s").min(0.01).describe("TCP connect timeout"),
    };
    return d;
}

StreamSource::StreamSource(const Config& config, Context& context)
    : ctx_(context),
      stream_(config.get_string("stream")),
      group_(config.get_string("group")),
      consumer_(config.has("consumer") && !config.get_string("consumer").empty() ? config.get_string("consumer") : default_consumer()),
      start_id_(config.get_string("start_id")),
      batch_(config.get_int("batch")),
      max_deliveries_(config.get_int("max_deliveries")),
      block_(config.get_duration("block")),
      claim_idle_(config.get_duration("claim_idle")),
      claim_every_(config.get_duration("claim_every")),
      backoff_max_(config.get_duration("reconnect_backoff_max")),
      release_blobs_(config.get_bool("release_blobs")),
      reader_(redis_address_from(config, context.node_name()), config.get_duration("connect_timeout"), config.get_duration("block") + std::chrono::seconds(10)),
      acker_(reader_.address(), config.get_duration("connect_timeout"), std::chrono::seconds(10)) {
    if (stream_.empty() || group_.empty())
        throw std::invalid_argument(fmt::format("node '{}': config 'stream' and 'group' must not be empty", context.node_name()));
}

StreamSource::~StreamSource() { stop_refresher(); }

void StreamSource::start() {
    // Not fatal when Redis is down at start-up: poll() keeps trying (with backoff), and the
    // health probe says why nothing arrives.
    try {
        ensure_group();
    } catch (const std::exception& e) {
        set_error(fmt::format("stream '{}' group '{}': {}", stream_, group_, e.what()));
        ctx_.log().log(LogLevel::Warn, fmt::format("{}; will keep trying", last_error_));
    }
    ctx_.log().log(LogLevel::Info, fmt::format("reading stream '{}' as consumer '{}' of group '{}'", stream_, consumer_, group_));
    if (refresher_.joinable()) return;  // started already
    {
        std::lock_guard lock(refresh_mutex_);
        refresh_stop_ = false;  // started again after a stop()
    }
    refresher_ = std::thread([this] { refresh_loop(); });
}

void StreamSource::stop() {
    stop_refresher();
    flush_acks();
}

void StreamSource::set_error(std::string error) {
    std::lock_guard lock(state_mutex_);
    last_error_ = std::move(error);
}

void StreamSource::ensure_group() {
    if (group_ready_) return;
    try {
        reader_.command({"XGROUP", "CREATE", stream_, group_, start_id_, "MKSTREAM"});
        ctx_.log().log(LogLevel::Info, fmt::format("created consumer group '{}' on stream '{}' at {}", group_, stream_, start_id_));
    } catch (const RedisReplyError& e) {
        if (std::string(e.what()).find("BUSYGROUP") == std::string::npos) throw;  // exists already: fine
    }
    group_ready_ = true;
}

std::vector<StreamSource::Entry> StreamSource::read_group(const std::string& from_id, std::chrono::milliseconds block) {
    std::vector<std::string> args{"XREADGROUP", "GROUP", group_, consumer_, "COUNT", std::to_string(batch_)};
    if (block.count() > 0) {
        args.push_back("BLOCK");
        args.push_back(std::to_string(block.count()));
    }
    args.insert(args.end(), {"STREAMS", stream_, from_id});
    Reply r = reader_.command(args);
    std::vector<Entry> out;
    if (reply_is_nil(r.get()) || r->type != REDIS_REPLY_ARRAY || r->elements == 0) return out;
    const redisReply* entries = r->element[0]->element[1];
    for (std::size_t i = 0; i < entries->elements; ++i) out.push_back(parse_entry<Entry>(entries->element[i]));
    return out;
}

std::vector<StreamSource::Entry> StreamSource::autoclaim() {
    std::vector<Entry> out;
    std::string cursor = "0-0";
    // Bounded: one pass claims at most a few batches, so new entries are not starved.
    for (int round = 0; round < 4; ++round) {
        Reply r = reader_.command({"XAUTOCLAIM", stream_, group_, consumer_, std::to_string(claim_idle_.count()), cursor, "COUNT",
                                   std::to_string(batch_)});
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) throw RedisReplyError("redis: unexpected XAUTOCLAIM reply");
        cursor = reply_string(r->element[0]);
        for (std::size_t i = 0; i < r->element[1]->elements; ++i) out.push_back(parse_entry<Entry>(r->element[1]->element[i]));
        if (r->elements >= 3 && r->element[2]->elements > 0) {
            // Redis 7 drops pending entries that were trimmed away from the PEL itself; their
            // documents are gone (max_length too small for the backlog) and their blobs expire.
            ctx_.metrics().increment("stream_entries_trimmed_unread_total", static_cast<double>(r->element[2]->elements), {{"stream", stream_}});
            ctx_.log().log(LogLevel::Error, fmt::format("stream '{}': {} pending entries were trimmed before any worker acked them "
                                                        "(raise sink.redis_stream max_length above the backlog)",
                                                        stream_, r->element[2]->elements));
        }
        if (cursor == "0-0" || static_cast<std::int64_t>(out.size()) >= batch_) break;
    }
    if (!out.empty())
        ctx_.log().log(LogLevel::Info, fmt::format("claimed {} entries of stream '{}' idle for more than {} ms (a worker stopped "
                                                   "or died)", out.size(), stream_, claim_idle_.count()));
    return out;
}

void StreamSource::refresh_loop() {
    // Real time, not ctx_.clock(): Redis measures idle time on its own clock.
    const auto every = std::max(std::chrono::milliseconds(10), claim_idle_ / 3);
    std::unique_lock lock(refresh_mutex_);
    while (!refresh_stop_) {
        refresh_wake_.wait_for(lock, every, [this] { return refresh_stop_ || refresh_now_; });
        if (refresh_stop_) break;
        refresh_now_ = false;
        lock.unlock();
        try {
            refresh_held();
        } catch (const RedisDown& e) {
            // Redis down or slow: poll() reports it; entries idle past claim_idle meanwhile
            // may go to another worker, which the sinks' ledgers make harmless.
            ctx_.log().log(LogLevel::Debug, fmt::format("stream '{}': refreshing held entries failed: {}", stream_, e.what()));
        } catch (const std::exception& e) {
            // Anything else is a defect here or in Redis: say so, as other workers will now
            // take this worker's entries after claim_idle.
            ctx_.log().log(LogLevel::Warn, fmt::format("stream '{}': refreshing held entries failed ({}); entries held longer "
                                                       "than claim_idle may be claimed by another worker", stream_, e.what()));
        }
        lock.lock();
    }
}

void StreamSource::request_refresh() {
    {
        std::lock_guard lock(refresh_mutex_);
        refresh_now_ = true;
    }
    refresh_wake_.notify_one();
}

void StreamSource::refresh_held() {
    std::vector<std::string> args{"EVAL", kRefreshScript, "1", stream_, group_, consumer_};
    {
        std::lock_guard lock(state_mutex_);
        for (const auto& [id, blobs] : in_flight_) args.push_back(id);
        for (const auto& id : fetched_)
            if (!in_flight_.count(id)) args.push_back(id);
    }
    if (args.size() == 6) return;
    std::lock_guard lock(ack_mutex_);
    acker_.command(args);
}

void StreamSource::stop_refresher() {
    {
        std::lock_guard lock(refresh_mutex_);
        refresh_stop_ = true;
    }
    refresh_wake_.notify_all();
    if (refresher_.joinable()) refresher_.join();
}

std::map<std::string, std::int64_t> StreamSource::delivery_counts(const std::vector<Entry>& entries) {
    std::map<std::string, std::int64_t> counts;
    if (entries.empty()) return counts;
    Reply r = reader_.command({"XPENDING", stream_, group_, entries.front().id, entries.back().id,
                               std::to_string(entries.size() + 1000), consumer_});
    for (std::size_t i = 0; i < r->elements; ++i) counts[reply_string(r->element[i]->element[0])] = r->element[i]->element[3]->integer;
    return counts;
}

SharedBytes StreamSource::read_blob(const std::string& sha256, std::size_t) {
    Reply r = reader_.command({"GET", blob_key(sha256)});
    if (reply_is_nil(r.get())) return nullptr;
    std::string s = reply_string(r.get());
    return std::make_shared<const Bytes>(s.begin(), s.end());
}

void StreamSource::dead_letter(const Entry& entry, const std::string& doc_id, const std::string& job_id,
                               const nlohmann::json& document, std::int64_t deliveries, const std::string& reason) {
    const auto now = ctx_.clock().now();
    const std::string id = doc_id.empty() ? "entry-" + entry.id : doc_id;
    // The runtime's dead-letter layout, so operators find these next to the graph's own.
    nlohmann::json record{{"doc_id", id},
                          {"root_id", job_id.empty() ? id : job_id},
                          {"node", ctx_.node_name()},
                          {"component", "source.redis_stream"},
                          {"reason", reason},
                          {"attempts", deliveries},
                          {"failed_at", iso8601(now)},
                          {"stream", stream_},
                          {"group", group_},
                          {"entry_id", entry.id}};
    if (!document.is_null()) {
        record["document"] = document;
    } else {
        // Nothing is dropped: a payload this build cannot read is kept whole for a newer one.
        auto it = entry.fields.find(kFieldPayload);
        if (it != entry.fields.end()) record["payload_base64"] = base64(it->second);
        record["entry_fields"] = nlohmann::json::object();
        for (const auto& [k, v] : entry.fields)
            if (k != kFieldPayload) record["entry_fields"][k] = v;
    }
    const std::string key = fmt::format("deadletter/{}-{}-{}", iso8601(now), id, ctx_.node_name());
    ctx_.state().put(key, docpipe::json_text(record));  // throws when the store refused: then the entry is not acked
    ctx_.metrics().increment("stream_dead_letters_total", 1, {{"stream", stream_}});
    ctx_.log().log(LogLevel::Error, fmt::format("stream '{}' entry {}: dead-lettered as {}: {}", stream_, entry.id, key, reason), id);
    std::lock_guard lock(state_mutex_);
    ++dead_lettered_;
}

StreamSource::Step StreamSource::handle(SourceEmitter& emitter, Entry& entry, std::int64_t deliveries) {
    {
        std::lock_guard lock(state_mutex_);
        if (in_flight_.count(entry.id)) return Step::Nothing;  // already in the local pipeline
        last_entry_ = entry.id;
    }
    if (entry.deleted) {
        ctx_.log().log(LogLevel::Error, fmt::format("stream '{}' entry {} was trimmed before it was processed; acking it (raise "
                                                    "sink.redis_stream max_length above the backlog)", stream_, entry.id));
        PendingAck ack{entry.id, {}};
        if (!send_ack(ack)) {
            std::lock_guard lock(ack_mutex_);
            acks_waiting_.push_back(ack);
        }
        return Step::Nothing;
    }
    auto field = [&](const char* name) {
        auto it = entry.fields.find(name);
        return it == entry.fields.end() ? std::string() : it->second;
    };
    const std::vector<std::string> blobs = split_commas(field(kFieldBlobs));
    const std::string listed_doc_id = field(kFieldDocId), listed_job_id = field(kFieldJobId);

    auto park = [&](const std::string& doc_id, const std::string& job_id, const nlohmann::json& document, const std::string& reason) {
        try {
            dead_letter(entry, doc_id, job_id, document, deliveries, reason);
        } catch (const std::exception& e) {
            // Not acked: it stays pending and comes back after claim_idle, when the store may work.
            ctx_.log().log(LogLevel::Error, fmt::format("stream '{}' entry {}: could not store the dead letter ({}); left pending",
                                                        stream_, entry.id, e.what()), doc_id);
            return;
        }
        PendingAck ack{entry.id, blobs};
        if (!send_ack(ack)) {
            std::lock_guard lock(ack_mutex_);
            acks_waiting_.push_back(ack);
        }
    };

    Decoded decoded;
    try {
        decoded = decode(field(kFieldPayload),
                         [this](const BlobRef& ref) { return read_blob(ref.sha256, ref.size); });
    } catch (const WireFormatError& e) {
        park(listed_doc_id, listed_job_id, nullptr,
             fmt::format("node '{}': stream '{}' entry {} cannot be decoded: {}", ctx_.node_name(), stream_, entry.id, e.what()));
        return Step::Nothing;
    }
    Document doc = std::move(decoded.doc);
    doc.attributes["stream"] = stream_;
    doc.attributes["stream_entry_id"] = entry.id;
    doc.attributes["stream_deliveries"] = std::to_string(deliveries);
    if (!decoded.job_id.empty()) doc.attributes["upstream_job_id"] = decoded.job_id;
    {
        std::lock_guard lock(state_mutex_);
        in_flight_[entry.id] = blobs;
    }
    auto on_settled = [this, id = entry.id, blobs](const Outcome& outcome) { settle(id, blobs, outcome); };
    const bool poison = deliveries > max_deliveries_;
    // A poison entry goes to the runtime as a failure at this node (a failed job, a dead
    // letter the admin API can retry from here), not through the graph; acked once recorded.
    const bool taken = poison ? emitter.reject(std::move(doc),
                                               fmt::format("stream '{}' entry {} was delivered {} times (max_deliveries {}) without "
                                                           "being acked: it keeps crashing or stalling workers; fix the cause, then "
                                                           "retry the job (POST /api/v1/jobs/{{id}}/retry)",
                                                           stream_, entry.id, deliveries, max_deliveries_),
                                               std::move(on_settled))
                              : emitter.emit(std::move(doc), std::move(on_settled));
    if (poison && taken) {
        ctx_.metrics().increment("stream_dead_letters_total", 1, {{"stream", stream_}});
        std::lock_guard lock(state_mutex_);
        ++dead_lettered_;
        return Step::Nothing;
    }
    if (!taken) {
        // Not taken (the runtime is stopping): still pending on this consumer, read again
        // from the PEL by the next poll or claimed by another worker.
        std::lock_guard lock(state_mutex_);
        in_flight_.erase(entry.id);
        recover_own_ = true;
        return Step::Stopped;
    }
    ctx_.metrics().increment("stream_entries_emitted_total", 1, {{"stream", stream_}});
    std::lock_guard lock(state_mutex_);
    ++emitted_;
    return Step::Emitted;
}

bool StreamSource::send_ack(const PendingAck& ack) {
    std::vector<std::string> args{"EVAL", kAckScript, std::to_string(1 + ack.blobs.size()), stream_};
    for (const auto& sha : ack.blobs) args.push_back(blob_key(sha));
    args.insert(args.end(), {group_, ack.entry_id, release_blobs_ ? "1" : "0"});
    try {
        std::lock_guard lock(ack_mutex_);
        acker_.command(args);
    } catch (const RedisDown& e) {
        set_error(fmt::format("stream '{}': XACK of entry {} failed, will retry: {}", stream_, ack.entry_id, e.what()));
        return false;
    } catch (const RedisReplyError& e) {
        // NOGROUP after Redis lost its data: nothing left to ack. Logged, not retried.
        ctx_.log().log(LogLevel::Error, fmt::format("stream '{}': XACK of entry {} refused: {}", stream_, ack.entry_id, e.what()));
    }
    std::lock_guard lock(state_mutex_);
    in_flight_.erase(ack.entry_id);
    ++acked_;
    return true;
}

void StreamSource::settle(const std::string& entry_id, const std::vector<std::string>& blobs, const Outcome& outcome) {
    if (!outcome.ok && outcome.keep_input) {
        // The runtime could not record the failure: the entry is the only copy. Left pending,
        // read again from this consumer's pending list by the next poll.
        ctx_.log().log(LogLevel::Error, fmt::format("stream '{}' entry {} failed and could not be recorded ({}); left pending to be "
                                                    "read again", stream_, entry_id, outcome.reason));
        std::lock_guard lock(state_mutex_);
        in_flight_.erase(entry_id);
        recover_own_ = true;
        return;
    }
    if (!outcome.ok)
        // The runtime already stored the failing document in its dead letters with the
        // reason; the entry is done here, so it is acked rather than handed to another worker.
        ctx_.log().log(LogLevel::Warn, fmt::format("stream '{}' entry {} settled as failed by the pipeline ({}); acking it",
                                                   stream_, entry_id, outcome.reason));
    PendingAck ack{entry_id, blobs};
    if (!send_ack(ack)) {
        std::lock_guard lock(ack_mutex_);
        acks_waiting_.push_back(std::move(ack));
    }
}

void StreamSource::flush_acks() {
    std::vector<PendingAck> waiting;
    {
        std::lock_guard lock(ack_mutex_);
        waiting.swap(acks_waiting_);
    }
    std::vector<PendingAck> still;
    for (auto& ack : waiting)
        if (!send_ack(ack)) still.push_back(std::move(ack));
    if (!still.empty()) {
        std::lock_guard lock(ack_mutex_);
        acks_waiting_.insert(acks_waiting_.end(), std::make_move_iterator(still.begin()), std::make_move_iterator(still.end()));
    }
}

void StreamSource::poll(SourceEmitter& emitter, const PollRequest& request) {
    using namespace std::chrono;
    auto& clock = ctx_.clock();
    const auto started = clock.steady_now();
    auto remaining = [&] {
        return std::max(milliseconds(0), request.max_wait - duration_cast<milliseconds>(clock.steady_now() - started));
    };
    while (!emitter.stop_requested()) {
        bool emitted = false;
        try {
            flush_acks();
            ensure_group();
            auto run = [&](std::vector<Entry>& entries, bool counted) -> bool {
                // Held from here: emit() may block under backpressure for longer than
                // claim_idle, and the refresh thread must keep these entries ours meanwhile.
                {
                    std::lock_guard lock(state_mutex_);
                    for (const auto& e : entries) fetched_.insert(e.id);
                }
                // Entries read again from the PEL or claimed are idle already (those reads
                // do not reset it): refresh them now, not up to claim_idle/3 later.
                if (counted && !entries.empty()) request_refresh();
                struct Unhold {
                    StreamSource* self;
                    ~Unhold() {
                        std::lock_guard lock(self->state_mutex_);
                        self->fetched_.clear();
                    }
                } unhold{this};
                std::map<std::string, std::int64_t> counts;
                if (counted) counts = delivery_counts(entries);
                for (auto& e : entries) {
                    auto c = counts.find(e.id);
                    Step s = handle(emitter, e, c == counts.end() ? 1 : c->second);
                    {
                        std::lock_guard lock(state_mutex_);
                        fetched_.erase(e.id);
                    }
                    if (s == Step::Stopped) return false;
                    emitted |= s == Step::Emitted;
                }
                return true;
            };
            if (recover_own_.exchange(false)) {
                // This consumer's own pending entries first (after a reconnect, or entries the
                // runtime did not take when stopping), paging through the PEL. Cleared before
                // reading: a settle() that asks again meanwhile is not lost; a failure below
                // asks again itself.
                std::string from = "0";
                while (true) {
                    auto entries = read_group(from, milliseconds(0));
                    if (entries.empty()) break;
                    from = entries.back().id;
                    if (!run(entries, true)) return;
                    if (static_cast<std::int64_t>(entries.size()) < batch_) break;
                }
            }
            const auto now = clock.steady_now();
            if (now - last_claim_ >= claim_every_) {
                auto claimed = autoclaim();
                last_claim_ = now;
                if (!run(claimed, true)) return;
            }
            milliseconds block(0);
            if (!request.drain && !emitted) block = std::max(milliseconds(1), std::min(block_, remaining()));
            auto fresh = read_group(">", block);
            if (!run(fresh, false)) return;
            if (backoff_.count() > 0)
                ctx_.log().log(LogLevel::Info, fmt::format("stream '{}': Redis {} answers again; reading resumed", stream_,
                                                           reader_.address().describe()));
            backoff_ = milliseconds(0);
            set_error("");
            // --once (drain): keep going while entries come, stop at the first empty read.
            if (request.drain ? !emitted : (emitted || remaining().count() == 0)) return;
        } catch (const RedisDown& e) {
            reader_.reset();
            group_ready_ = false;
            recover_own_ = true;
            backoff_ = backoff_.count() == 0 ? milliseconds(100) : std::min(backoff_ * 2, backoff_max_);
            set_error(fmt::format("stream '{}' group '{}': {}", stream_, group_, e.what()));
            ctx_.log().log(LogLevel::Warn, fmt::format("stream '{}': Redis unreachable ({}); reconnecting in {} ms", stream_, e.what(),
                                                       backoff_.count()));
            if (emitted || request.drain) return;
            clock.sleep_for(std::min(backoff_, std::max(remaining(), milliseconds(1))));
        } catch (const RedisReplyError& e) {
            const std::string what = e.what();
            if (what.find("NOGROUP") != std::string::npos) {
                // The group (or the stream) vanished — Redis restarted without persistence,
                // or an operator deleted it: create it again and re-read our PEL.
                group_ready_ = false;
                recover_own_ = true;
                ctx_.log().log(LogLevel::Warn, fmt::format("stream '{}': consumer group '{}' is gone; creating it again", stream_, group_));
            } else {
                recover_own_ = true;  // it may have failed while re-reading our PEL
                std::string error = fmt::format("stream '{}' group '{}': {}", stream_, group_, what);
                ctx_.log().log(LogLevel::Error, error);
                set_error(std::move(error));
                backoff_ = backoff_.count() == 0 ? milliseconds(100) : std::min(backoff_ * 2, backoff_max_);
                clock.sleep_for(std::min(backoff_, std::max(remaining(), milliseconds(1))));
            }
            if (emitted || request.drain) return;
        }
        if (!request.drain && remaining().count() == 0) return;
    }
}

HealthReport StreamSource::health() {
    std::lock_guard lock(state_mutex_);
    const std::string counts = fmt::format("{} in flight, {} waiting to be emitted, {} emitted, {} acked, {} dead-lettered",
                                           in_flight_.size(), fetched_.size(), emitted_, acked_, dead_lettered_);
    if (!last_error_.empty()) return {Health::Unavailable, fmt::format("{} ({})", last_error_, counts)};
    return {Health::Healthy, fmt::format("redis {}: stream '{}' group '{}' consumer '{}': {}", reader_.address().describe(), stream_,
                                         group_, consumer_, counts)};
}

}  // namespace docpipe::streams
