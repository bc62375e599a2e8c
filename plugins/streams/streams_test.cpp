// sink.redis_stream / source.redis_stream against a real redis-server on a free loopback
// port (tests/support/redis_server.hpp), plus the wire format on its own.
//
// The components run in the SDK's NodeRunner (a manual clock: tests move it to let the
// source's claim timer fire); Redis itself runs on the real clock, so idle times are waited
// for with real sleeps, always well above the configured claim_idle.
#include <gtest/gtest.h>

#include <hiredis/hiredis.h>

#include <set>
#include <thread>

#include "blob_keys.hpp"
#include "docpipe/testing.hpp"
#include "redis_server.hpp"
#include "stream_sink.hpp"
#include "stream_source.hpp"
#include "wire_format.hpp"

using namespace docpipe;
using namespace docpipe::streams;
using namespace std::chrono_literals;
using docpipe::testing::NodeRunner;

namespace {

Bytes pattern_bytes(std::size_t size, std::uint8_t seed) {
    Bytes b(size);
    for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>((i * 131 + seed) & 0xFF);  // zeros and 0xFF included
    return b;
}

Document rich_document(std::size_t big = 200 * 1024) {
    Document d = Document::from_bytes("receipt.pdf", "application/pdf", pattern_bytes(big, 7));
    d.parent_id = "email-parent-1";
    d.attributes = {{"source", "directory"}, {"subject", "Resit \xF0\x9F\xA7\xBE"}, {"job_id", "job-42"}};
    d.parts.push_back(Part{"note.txt", "text/plain", std::make_shared<const Bytes>(Bytes{'h', 0, 'i', 0xFF})});
    d.parts.push_back(Part{"empty.bin", "application/octet-stream", std::make_shared<const Bytes>()});
    Page p0;
    p0.index = 0;
    p0.image.width = 400;
    p0.image.height = 300;
    p0.image.channels = 1;
    p0.image.dpi = 300;
    p0.image.pixels = std::make_shared<const std::vector<std::uint8_t>>(pattern_bytes(400 * 300, 3));
    OcrResult ocr;
    ocr.engine = "tesseract 5.3.0 eng+msa psm6";
    ocr.text = "TOTAL RM 12.50";
    ocr.lines.push_back(OcrLine{"TOTAL RM 12.50", Box{10, 20, 300, 40}, 94.5f});
    ocr.words.push_back(OcrWord{"TOTAL", Box{10, 20, 90, 40}, 95.25f, 0});
    ocr.words.push_back(OcrWord{"12.50", Box{200, 20, 110, 40}, 95.75f, 0});
    ocr.mean_confidence = 94.0f;
    p0.ocr = ocr;
    Page p1;
    p1.index = 1;
    p1.text_layer = "page two, born digital";
    p1.image.width = 2;
    p1.image.height = 1;
    p1.image.channels = 3;
    p1.image.pixels = std::make_shared<const std::vector<std::uint8_t>>(std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6});
    d.pages = {p0, p1};
    d.fields = {{"total_amount", {{"value", "12.50"}, {"confidence", 0.97}, {"provenance", {{"page", 0}, {"line", 0}}}}},
                {"items", nlohmann::json::array({1, 2.5, "x"})}};
    d.trace.push_back(TraceEntry{"ocr", "processed", 12.5, "psm6"});
    return d;
}

void expect_same(const Document& a, const Document& b) {
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.parent_id, b.parent_id);
    EXPECT_EQ(a.attributes, b.attributes);
    ASSERT_EQ(a.parts.size(), b.parts.size());
    for (std::size_t i = 0; i < a.parts.size(); ++i) {
        EXPECT_EQ(a.parts[i].name, b.parts[i].name);
        EXPECT_EQ(a.parts[i].media_type, b.parts[i].media_type);
        ASSERT_TRUE(b.parts[i].bytes);
        EXPECT_EQ(*a.parts[i].bytes, *b.parts[i].bytes) << "part " << i;
    }
    ASSERT_EQ(a.pages.size(), b.pages.size());
    for (std::size_t i = 0; i < a.pages.size(); ++i) {
        const Page &x = a.pages[i], &y = b.pages[i];
        EXPECT_EQ(x.index, y.index);
        EXPECT_EQ(x.text_layer, y.text_layer);
        EXPECT_EQ(x.image.width, y.image.width);
        EXPECT_EQ(x.image.height, y.image.height);
        EXPECT_EQ(x.image.channels, y.image.channels);
        EXPECT_EQ(x.image.dpi, y.image.dpi);
        ASSERT_EQ(!!x.image.pixels, !!y.image.pixels);
        if (x.image.pixels) {
            EXPECT_EQ(*x.image.pixels, *y.image.pixels);
        }
        ASSERT_EQ(x.ocr.has_value(), y.ocr.has_value());
        if (x.ocr) {
            EXPECT_EQ(x.ocr->engine, y.ocr->engine);
            EXPECT_EQ(x.ocr->text, y.ocr->text);
            EXPECT_EQ(x.ocr->mean_confidence, y.ocr->mean_confidence);
            ASSERT_EQ(x.ocr->words.size(), y.ocr->words.size());
            for (std::size_t w = 0; w < x.ocr->words.size(); ++w) {
                EXPECT_EQ(x.ocr->words[w].text, y.ocr->words[w].text);
                EXPECT_EQ(x.ocr->words[w].confidence, y.ocr->words[w].confidence);
                EXPECT_EQ(x.ocr->words[w].line, y.ocr->words[w].line);
                EXPECT_EQ(x.ocr->words[w].box.width, y.ocr->words[w].box.width);
            }
            ASSERT_EQ(x.ocr->lines.size(), y.ocr->lines.size());
            EXPECT_EQ(x.ocr->lines[0].box.height, y.ocr->lines[0].box.height);
            EXPECT_EQ(x.ocr->lines[0].confidence, y.ocr->lines[0].confidence);
        }
    }
    EXPECT_EQ(a.fields, b.fields);
    ASSERT_EQ(a.trace.size(), b.trace.size());
    EXPECT_EQ(a.trace[0].node, b.trace[0].node);
    EXPECT_EQ(a.trace[0].millis, b.trace[0].millis);
}

// ---- wire format --------------------------------------------------------------------------

TEST(WireFormat, RoundTripsPartsPagesFieldsWithBlobs) {
    const Document doc = rich_document();
    EncodeOptions opts;
    opts.inline_limit = 64 * 1024;
    opts.job_id = "job-42";
    opts.producer = "to_ocr";
    opts.written_ms = 1234;
    Encoded enc = encode(doc, opts);
    // The 200 KiB PDF and the 120 000-pixel page go by reference; the rest is inline.
    ASSERT_EQ(enc.blobs.size(), 2u);
    EXPECT_LT(enc.payload.size(), 16u * 1024);
    std::map<std::string, SharedBytes> store;
    for (const auto& [ref, bytes] : enc.blobs) {
        EXPECT_EQ(ref.sha256, sha256_hex(bytes->data(), bytes->size()));
        store[ref.sha256] = bytes;
    }
    Decoded dec = decode(enc.payload, [&](const BlobRef& r) { return store.count(r.sha256) ? store[r.sha256] : nullptr; });
    EXPECT_EQ(dec.version, kWireVersion);
    EXPECT_EQ(dec.job_id, "job-42");
    EXPECT_EQ(dec.producer, "to_ocr");
    EXPECT_EQ(dec.written_ms, 1234);
    expect_same(doc, dec.doc);

    // Everything inline (no limit reached) decodes the same without any blob reader.
    opts.inline_limit = 10 * 1024 * 1024;
    Encoded inline_enc = encode(doc, opts);
    EXPECT_TRUE(inline_enc.blobs.empty());
    expect_same(doc, decode(inline_enc.payload, nullptr).doc);
    // The content hash ignores attributes and trace (rewritten on a redelivery) ...
    Document redelivered = doc;
    redelivered.attributes["previous_status"] = "processing";
    redelivered.trace.push_back(TraceEntry{"x", "retry", 1, ""});
    EXPECT_EQ(encode(redelivered, opts).content_hash, inline_enc.content_hash);
    // ... but not the fields (a corrected document is a new entry).
    redelivered.fields["total_amount"]["value"] = "13.50";
    EXPECT_NE(encode(redelivered, opts).content_hash, inline_enc.content_hash);
}

TEST(WireFormat, RejectsAnUnknownFutureVersionClearly) {
    Encoded enc = encode(rich_document(100), EncodeOptions{});
    std::string future = enc.payload;
    future[4] = 0;
    future[5] = 99;
    EXPECT_EQ(peek_version(future), 99);
    try {
        decode(future, nullptr);
        FAIL() << "a version 99 payload was accepted";
    } catch (const UnsupportedWireVersion& e) {
        EXPECT_EQ(e.found, 99);
        const std::string what = e.what();
        EXPECT_NE(what.find("version 99"), std::string::npos) << what;
        EXPECT_NE(what.find("upgrade"), std::string::npos) << what;
    }
    EXPECT_THROW(decode("not a docpipe payload", nullptr), WireFormatError);
    std::string truncated = enc.payload.substr(0, enc.payload.size() / 2);
    EXPECT_THROW(decode(truncated, nullptr), WireFormatError);
}

TEST(WireFormat, AMissingBlobIsAFormatErrorNamingIt) {
    Encoded enc = encode(rich_document(), EncodeOptions{});
    ASSERT_FALSE(enc.blobs.empty());
    try {
        decode(enc.payload, [](const BlobRef&) { return SharedBytes(); });
        FAIL();
    } catch (const WireFormatError& e) {
        EXPECT_NE(std::string(e.what()).find(enc.blobs[0].first.sha256), std::string::npos) << e.what();
    }
}

// ---- against Redis ------------------------------------------------------------------------

struct RedisReplyFree {
    void operator()(redisReply* r) const { if (r) freeReplyObject(r); }
};
using TestReply = std::unique_ptr<redisReply, RedisReplyFree>;

class Streams : public ::testing::Test {
protected:
    void SetUp() override { redis_ = std::make_unique<test::RedisServer>(persistence()); }
    virtual test::RedisServer::Persistence persistence() const { return test::RedisServer::Persistence::None; }

    TestReply cmd(const std::vector<std::string>& args) {
        timeval tv{2, 0};
        redisContext* c = redisConnectWithTimeout("127.0.0.1", redis_->port(), tv);
        EXPECT_TRUE(c && !c->err);
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        TestReply r(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
        redisFree(c);
        return r;
    }
    long long integer(const std::vector<std::string>& args) { return cmd(args)->integer; }
    long long pending(const std::string& stream, const std::string& group = "g") {
        auto r = cmd({"XPENDING", stream, group});
        return r->type == REDIS_REPLY_ARRAY ? r->element[0]->integer : -1;
    }

    NodeRunner sink(const std::string& extra = "") {
        static const ComponentDescriptor d = component<StreamSink>();
        return NodeRunner(d, "redis: " + redis_->url() + "\nstream: s\n" + extra);
    }
    NodeRunner source(const std::string& consumer, const std::string& extra = "") {
        static const ComponentDescriptor d = component<StreamSource>();
        return NodeRunner(d, "redis: " + redis_->url() + "\nstream: s\ngroup: g\nconsumer: " + consumer + "\n" + extra);
    }
    static Document small_doc(int n) {
        Document d = Document::from_bytes("f" + std::to_string(n) + ".txt", "text/plain",
                                          Bytes{static_cast<std::uint8_t>('a' + n % 26), static_cast<std::uint8_t>(n)});
        d.id = "doc-" + std::to_string(n);
        return d;
    }
    // One service-mode poll that does not wait for new entries (returns after a batch).
    static std::vector<docpipe::testing::SourceItem> poll(NodeRunner& r) { return r.poll({0ms, false}); }

    std::unique_ptr<test::RedisServer> redis_;
};

TEST_F(Streams, ConsumerGroupDeliversEachEntryToOneConsumer) {
    auto out = sink();
    for (int i = 0; i < 30; ++i) ASSERT_EQ(out.write(small_doc(i)).status(), SinkResult::Status::Ok);
    EXPECT_EQ(integer({"XLEN", "s"}), 30);
    auto a = source("a", "batch: 4");
    auto b = source("b", "batch: 4");
    std::multiset<std::string> seen;
    std::size_t from_a = 0, from_b = 0;
    for (int round = 0; round < 20 && seen.size() < 30; ++round) {
        for (auto* r : {&a, &b}) {
            auto items = poll(*r);
            (r == &a ? from_a : from_b) += items.size();
            for (auto& it : items) {
                seen.insert(it.doc.id);
                EXPECT_EQ(it.doc.attributes.at("stream"), "s");
                it.ack(Outcome{});
            }
        }
    }
    EXPECT_EQ(seen.size(), 30u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 30u) << "an entry went to both consumers";
    EXPECT_GT(from_a, 0u);
    EXPECT_GT(from_b, 0u);
    EXPECT_EQ(pending("s"), 0);
    EXPECT_TRUE(poll(a).empty());
    EXPECT_EQ(a.component().health().status, Health::Healthy);
}

TEST_F(Streams, OnceModeDrainsWhatIsInTheStream) {
    auto out = sink();
    for (int i = 0; i < 40; ++i) ASSERT_EQ(out.write(small_doc(i)).status(), SinkResult::Status::Ok);
    auto w = source("w", "batch: 4");
    auto items = w.poll({0ms, true});  // --once: batch after batch until the stream has nothing new
    EXPECT_EQ(items.size(), 40u);
    for (auto& it : items) it.ack(Outcome{});
    EXPECT_EQ(pending("s"), 0);
}

TEST_F(Streams, XackOnlyAfterTheLocalPipelineAcked) {
    auto out = sink();
    ASSERT_EQ(out.write(small_doc(1)).status(), SinkResult::Status::Ok);
    ASSERT_EQ(out.write(small_doc(2)).status(), SinkResult::Status::Ok);
    {
        auto worker = source("w1", "batch: 1");
        auto items = poll(worker);
        ASSERT_EQ(items.size(), 1u);
        EXPECT_EQ(pending("s"), 1) << "taken, not acked: must stay pending";
        auto more = poll(worker);  // the second entry; the first is not emitted again
        ASSERT_EQ(more.size(), 1u);
        EXPECT_NE(more[0].doc.id, items[0].doc.id);
        more[0].ack(Outcome{});
        EXPECT_EQ(pending("s"), 1);
        // The worker stops (or is killed) with the first document still in its pipeline.
    }
    EXPECT_EQ(pending("s"), 1) << "an entry not acked locally must survive its consumer";
    // The same consumer name after a restart takes its own pending entry first.
    auto again = source("w1", "batch: 1");
    auto items = poll(again);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].doc.id, "doc-1");
    items[0].ack(Outcome{false, "ocr failed for good"});  // a failed document is settled too (runtime dead-lettered it)
    EXPECT_EQ(pending("s"), 0);
}

TEST_F(Streams, AutoclaimHandsADeadWorkersEntriesToALiveOne) {
    auto out = sink();
    for (int i = 0; i < 3; ++i) ASSERT_EQ(out.write(small_doc(i)).status(), SinkResult::Status::Ok);
    {
        auto dead = source("dead", "batch: 10");
        ASSERT_EQ(poll(dead).size(), 3u);  // taken, then the process "dies"
    }
    auto live = source("live", "claim_idle: 300ms\nclaim_every: 10ms");
    EXPECT_TRUE(poll(live).empty()) << "claimed before claim_idle";
    std::this_thread::sleep_for(450ms);
    live.clock().advance(1s);  // the source's claim timer runs on its (manual) clock
    auto items = poll(live);
    ASSERT_EQ(items.size(), 3u);
    for (auto& it : items) {
        EXPECT_EQ(it.doc.attributes.at("stream_deliveries"), "2");
        it.ack(Outcome{});
    }
    EXPECT_EQ(pending("s"), 0);
    auto consumers = cmd({"XINFO", "CONSUMERS", "s", "g"});
    ASSERT_EQ(consumers->type, REDIS_REPLY_ARRAY);
}

TEST_F(Streams, ASlowLiveWorkerKeepsItsEntries) {
    auto out = sink();
    ASSERT_EQ(out.write(small_doc(1)).status(), SinkResult::Status::Ok);
    // claim_idle well above the 150 ms between the slow worker's polls, so a loaded test
    // machine does not make the worker look dead.
    auto slow = source("slow", "claim_idle: 600ms\nclaim_every: 10ms");
    auto other = source("other", "claim_idle: 600ms\nclaim_every: 10ms");
    auto items = poll(slow);
    ASSERT_EQ(items.size(), 1u);
    for (int i = 0; i < 10; ++i) {  // 1.5 s in all, over twice claim_idle, while slow keeps polling
        std::this_thread::sleep_for(150ms);
        slow.clock().advance(1s);
        EXPECT_TRUE(poll(slow).empty());
        other.clock().advance(1s);
        EXPECT_TRUE(poll(other).empty()) << "a live worker's entry was claimed away";
    }
    items[0].ack(Outcome{});
    EXPECT_EQ(pending("s"), 0);
}

// A local pipeline with room for one document: the first emit() is taken at once, the
// next one blocks for `wait` (backpressure), as the runtime's emitter does when full.
class FullPipeline : public SourceEmitter {
public:
    explicit FullPipeline(std::chrono::milliseconds wait) : wait_(wait) {}
    bool emit(Document doc, AckHandle ack) override {
        if (!taken.empty()) std::this_thread::sleep_for(wait_);
        taken.push_back({std::move(doc), std::move(ack), ""});
        return true;
    }
    bool reject(Document, std::string, AckHandle) override { return false; }
    bool stop_requested() const override { return false; }
    std::vector<docpipe::testing::SourceItem> taken;

private:
    std::chrono::milliseconds wait_;
};

// A worker whose pipeline is full blocks in emit() (backpressure) with the rest of its
// XREADGROUP batch read but not yet emitted, and cannot poll. Those entries, and the one in
// its pipeline, must stay its own: the refresh thread keeps them fresh, so another worker
// does not claim them and OCR them a second time (the load test saw exactly that).
TEST_F(Streams, EntriesWaitingBehindBackpressureAreNotClaimedAway) {
    auto out = sink();
    for (int i = 0; i < 3; ++i) ASSERT_EQ(out.write(small_doc(i)).status(), SinkResult::Status::Ok);
    auto busy = source("busy", "batch: 10\nclaim_idle: 600ms\nclaim_every: 10ms");
    auto other = source("other", "claim_idle: 600ms\nclaim_every: 10ms");

    FullPipeline full(1800ms);  // three claim_idle
    std::thread poller([&] { static_cast<Source&>(busy.component()).poll(full, PollRequest{0ms, false}); });
    for (int i = 0; i < 10; ++i) {  // 1.5 s while `busy` is stuck in emit
        std::this_thread::sleep_for(150ms);
        other.clock().advance(1s);
        EXPECT_TRUE(poll(other).empty()) << "an entry of a live, busy worker was claimed away after " << (i + 1) * 150 << " ms";
    }
    poller.join();
    ASSERT_EQ(full.taken.size(), 3u);
    for (auto& item : full.taken) {
        EXPECT_EQ(item.doc.attributes.at("stream_deliveries"), "1");
        item.ack(Outcome{});
    }
    EXPECT_EQ(pending("s"), 0);
}

// The refresh resets only entries still pending on this worker: one that another worker
// claimed meanwhile (this one looked dead for a while) stays with that worker.
TEST_F(Streams, TheRefreshNeverTakesBackAnEntryAnotherWorkerClaimed) {
    auto out = sink();
    for (int i = 0; i < 2; ++i) ASSERT_EQ(out.write(small_doc(i)).status(), SinkResult::Status::Ok);
    auto busy = source("busy", "batch: 10\nclaim_idle: 300ms\nclaim_every: 10ms");
    FullPipeline full(1200ms);
    std::thread poller([&] { static_cast<Source&>(busy.component()).poll(full, PollRequest{0ms, false}); });
    std::this_thread::sleep_for(200ms);  // both read; the second waits in emit()
    auto mine = cmd({"XPENDING", "s", "g", "-", "+", "10", "busy"});
    ASSERT_EQ(mine->elements, 2u);
    const std::string second = mine->element[1]->element[0]->str;
    ASSERT_EQ(cmd({"XCLAIM", "s", "g", "thief", "0", second, "JUSTID"})->elements, 1u);
    std::this_thread::sleep_for(600ms);  // six refresh periods (claim_idle/3)
    auto thief = cmd({"XPENDING", "s", "g", "-", "+", "10", "thief"});
    ASSERT_EQ(thief->elements, 1u) << "the refresh took the entry back from the worker that claimed it";
    EXPECT_EQ(std::string(thief->element[0]->element[0]->str), second);
    poller.join();
    for (auto& item : full.taken) item.ack(Outcome{});
}

// Past max_deliveries the entry is handed to the runtime with SourceEmitter::reject (it
// records a failed job and a dead letter at this node, retryable through the admin API;
// tests/integration/streams_runtime_test.cpp checks that part) and acked once recorded.
TEST_F(Streams, APoisonEntryIsRejectedToTheRuntimeAfterMaxDeliveries) {
    auto out = sink("inline_limit: 1024\n");
    ASSERT_EQ(out.write(rich_document(4096)).status(), SinkResult::Status::Ok);
    const std::string opts = "claim_idle: 100ms\nclaim_every: 10ms\nmax_deliveries: 2";
    for (int delivery = 1; delivery <= 2; ++delivery) {
        auto w = source("w" + std::to_string(delivery), opts);
        std::this_thread::sleep_for(150ms);
        w.clock().advance(1s);
        auto items = poll(w);
        ASSERT_EQ(items.size(), 1u) << "delivery " << delivery;
        EXPECT_TRUE(items[0].rejected.empty());
        EXPECT_EQ(items[0].doc.attributes.at("stream_deliveries"), std::to_string(delivery));
        // ... and the worker crashes on it, never acking.
    }
    auto last = source("w3", opts);
    std::this_thread::sleep_for(150ms);
    last.clock().advance(1s);
    auto items = poll(last);
    ASSERT_EQ(items.size(), 1u) << "the poison entry was not handed over";
    EXPECT_NE(items[0].rejected.find("delivered 3 times (max_deliveries 2)"), std::string::npos) << items[0].rejected;
    EXPECT_EQ(items[0].doc.id, rich_document(4096).id);
    EXPECT_EQ(items[0].doc.attributes.at("upstream_job_id"), "job-42");
    EXPECT_EQ(items[0].doc.attributes.at("stream_deliveries"), "3");
    EXPECT_EQ(pending("s"), 1) << "not acked before the runtime recorded it";
    last.clock().advance(1s);
    EXPECT_TRUE(poll(last).empty()) << "handed over twice while the runtime records it";

    // The runtime could not record it (its store is down): the entry stays pending.
    items[0].ack(Outcome{false, "its dead letter could not be stored", true});
    EXPECT_EQ(pending("s"), 1) << "an unrecorded failure was acked: the entry would be lost";
    last.clock().advance(1s);
    items = poll(last);
    ASSERT_EQ(items.size(), 1u) << "left pending, it is read again";
    EXPECT_FALSE(items[0].rejected.empty());
    // Recorded: acked, and its blobs released.
    items[0].ack(Outcome{false, "recorded as a dead letter"});
    EXPECT_EQ(pending("s"), 0) << "a recorded rejection is acked";
    auto blobs = cmd({"KEYS", "docpipe:blob:*"});
    EXPECT_EQ(blobs->elements, 0u);
}

TEST_F(Streams, AnUndecodableEntryIsDeadLetteredWithItsPayload) {
    Encoded enc = encode(small_doc(5), EncodeOptions{});
    enc.payload[5] = 42;  // written by a future docpipe
    cmd({"XADD", "s", "*", kFieldVersion, "42", kFieldDocId, "doc-5", kFieldPayload, enc.payload});
    auto w = source("w");
    EXPECT_TRUE(poll(w).empty());
    EXPECT_EQ(pending("s"), 0);
    auto letters = w.context().state().keys("deadletter/", 10);
    ASSERT_EQ(letters.size(), 1u);
    auto record = nlohmann::json::parse(*w.context().state().get(letters[0]));
    EXPECT_NE(record["reason"].get<std::string>().find("version 42"), std::string::npos) << record["reason"];
    EXPECT_FALSE(record["payload_base64"].get<std::string>().empty());
    EXPECT_EQ(record["doc_id"], "doc-5");
}

TEST_F(Streams, TrimmingBoundsTheStreamLength) {
    auto exact = sink("max_length: 10\ntrim: exact\n");
    for (int i = 0; i < 50; ++i) ASSERT_EQ(exact.write(small_doc(i)).status(), SinkResult::Status::Ok);
    EXPECT_EQ(integer({"XLEN", "s"}), 10);
    cmd({"DEL", "s"});
    auto approx = sink("max_length: 10\ndedup_ttl: 0s\n");
    for (int i = 0; i < 500; ++i) ASSERT_EQ(approx.write(small_doc(1000 + i)).status(), SinkResult::Status::Ok);
    // MAXLEN ~ trims whole radix-tree nodes (100 entries by default): bounded, not exact.
    EXPECT_LE(integer({"XLEN", "s"}), 10 + 100);
    EXPECT_GE(integer({"XLEN", "s"}), 10);
}

TEST_F(Streams, BlobsAreResolvedOnReadAndDeletedAfterTheLastAck) {
    auto out = sink();  // default inline_limit 64 KiB
    Document one = rich_document();
    Document two = rich_document();  // same big part and page, another document
    two.id = "another-doc";
    ASSERT_EQ(out.write(one).status(), SinkResult::Status::Ok);
    ASSERT_EQ(out.write(two).status(), SinkResult::Status::Ok);
    auto keys = cmd({"KEYS", "docpipe:blob:*"});
    EXPECT_EQ(keys->elements, 4u);  // two blobs, each with its :refs counter
    const std::string pdf = blob_key(sha256_hex(one.parts[0].bytes->data(), one.parts[0].bytes->size()));
    EXPECT_EQ(cmd({"GET", pdf + ":refs"})->str, std::string("2"));
    // The entry itself is small: the blob is not inline.
    auto entry = cmd({"XRANGE", "s", "-", "+", "COUNT", "1"});
    EXPECT_LT(entry->element[0]->element[1]->element[9]->len, 16u * 1024);

    auto w = source("w");
    auto items = poll(w);
    ASSERT_EQ(items.size(), 2u);
    Document expected = one;
    expected.attributes = items[0].doc.attributes;
    expect_same(expected, items[0].doc);
    EXPECT_EQ(items[0].doc.attributes.at("upstream_job_id"), "job-42");
    items[0].ack(Outcome{});
    EXPECT_EQ(integer({"EXISTS", pdf}), 1) << "still referenced by the second entry";
    EXPECT_EQ(cmd({"GET", pdf + ":refs"})->str, std::string("1"));
    items[0].ack(Outcome{});  // a repeated ack releases nothing
    EXPECT_EQ(integer({"EXISTS", pdf}), 1);
    items[1].ack(Outcome{});
    EXPECT_EQ(cmd({"KEYS", "docpipe:blob:*"})->elements, 0u) << "blobs left after the last ack";
    EXPECT_EQ(pending("s"), 0);
}

TEST_F(Streams, TheSameDocumentIsNotAppendedTwice) {
    auto out = sink();
    Document d = small_doc(1);
    auto first = out.write(d);
    ASSERT_EQ(first.status(), SinkResult::Status::Ok);
    d.attributes["previous_status"] = "processing";  // what a redelivery after a crash looks like
    auto second = out.write(d);
    ASSERT_EQ(second.status(), SinkResult::Status::Ok);
    EXPECT_EQ(integer({"XLEN", "s"}), 1);
    EXPECT_EQ(first.references().at("stream_entry"), second.references().at("stream_entry"));
}

TEST_F(Streams, TheSinkHoldsWhileRedisIsDownWithAClearReason) {
    auto out = sink("hold_after: 250ms\n");
    ASSERT_EQ(out.write(small_doc(1)).status(), SinkResult::Status::Ok);
    redis_->stop();
    auto held = out.write(small_doc(2));
    EXPECT_EQ(held.status(), SinkResult::Status::Hold);
    EXPECT_EQ(held.retry_after(), 250ms);
    EXPECT_NE(held.reason().find("stream 's'"), std::string::npos) << held.reason();
    EXPECT_NE(held.reason().find("unreachable"), std::string::npos) << held.reason();
    EXPECT_EQ(out.component().health().status, Health::Unavailable);
    redis_->start();
    EXPECT_EQ(out.write(small_doc(2)).status(), SinkResult::Status::Ok);
    EXPECT_EQ(integer({"XLEN", "s"}), 1) << "nothing persisted across a restart without persistence; the held document went in";
}

class StreamsPersistent : public Streams {
    test::RedisServer::Persistence persistence() const override { return test::RedisServer::Persistence::AppendOnly; }
};

TEST_F(StreamsPersistent, RedisRestartedMidRunNothingLostNothingTwice) {
    auto out = sink("hold_after: 50ms\n");
    auto w = source("w", "batch: 3\nblock: 50ms\nreconnect_backoff_max: 200ms");
    for (int i = 0; i < 10; ++i) ASSERT_EQ(out.write(small_doc(i)).status(), SinkResult::Status::Ok);

    std::multiset<std::string> seen;
    std::vector<AckHandle> held;  // in the local pipeline across the restart
    auto first = poll(w);
    ASSERT_EQ(first.size(), 3u);
    for (auto& it : first) {
        seen.insert(it.doc.id);
        held.push_back(it.ack);
    }
    redis_->restart();

    // The producer keeps writing; while Redis is down it is told to hold, and tries again.
    for (int i = 10; i < 20; ++i) {
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (out.write(small_doc(i)).status() != SinkResult::Status::Ok) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "sink never recovered";
            std::this_thread::sleep_for(50ms);
        }
    }
    for (auto& ack : held) ack(Outcome{});  // acks over a connection that broke: retried
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (seen.size() < 20 && std::chrono::steady_clock::now() < deadline) {
        for (auto& it : w.poll({100ms, false})) {
            seen.insert(it.doc.id);
            it.ack(Outcome{});
        }
    }
    EXPECT_EQ(seen.size(), 20u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size()) << "a document was emitted twice";
    for (int i = 0; i < 3 && pending("s") != 0; ++i) poll(w);  // flushes acks queued during the outage
    EXPECT_EQ(pending("s"), 0);
    EXPECT_EQ(w.component().health().status, Health::Healthy);
}

TEST_F(Streams, TheSourceWaitsForRedisAndSaysWhy) {
    redis_->stop();
    auto w = source("w", "reconnect_backoff_max: 100ms");
    EXPECT_TRUE(w.poll({300ms, false}).empty());
    auto h = w.component().health();
    EXPECT_EQ(h.status, Health::Unavailable);
    EXPECT_NE(h.detail.find("stream 's'"), std::string::npos) << h.detail;
    redis_->start();
    auto out = sink();
    ASSERT_EQ(out.write(small_doc(1)).status(), SinkResult::Status::Ok);
    std::vector<docpipe::testing::SourceItem> items;
    for (int i = 0; i < 20 && items.empty(); ++i) items = w.poll({100ms, false});
    ASSERT_EQ(items.size(), 1u);
    items[0].ack(Outcome{});
    EXPECT_EQ(w.component().health().status, Health::Healthy);
}

}  // namespace
