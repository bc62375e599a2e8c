#include "test_components.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

namespace docpipe::test {

std::atomic<std::uint64_t> null_sink_writes{0};
SequenceAcks sequence_acks;

namespace {
std::mutex registry_mutex;
std::map<std::string, std::shared_ptr<Probe>> probes;
}  // namespace

Probe& probe(const std::string& name) {
    std::lock_guard lock(registry_mutex);
    auto& p = probes[name];
    if (!p) p = std::make_shared<Probe>();
    return *p;
}

void reset_probes() {
    std::lock_guard lock(registry_mutex);
    probes.clear();
}

void Probe::feed(int count, const std::string& prefix) {
    std::lock_guard lock(mutex);
    for (int i = 0; i < count; ++i) {
        Document d = Document::from_bytes(prefix + std::to_string(i), "text/plain", Bytes{'x'});
        d.id = prefix + std::to_string(i);
        d.attributes["filename"] = d.id;
        pending.push_back(std::move(d));
    }
    cv.notify_all();
}

void Probe::feed_distinct(int count, const std::string& prefix) {
    std::lock_guard lock(mutex);
    for (int i = 0; i < count; ++i) {
        const std::string id = prefix + std::to_string(i);
        Document d = Document::from_bytes(id, "text/plain", Bytes(id.begin(), id.end()));
        d.id = id;
        d.attributes["filename"] = id;
        pending.push_back(std::move(d));
    }
    cv.notify_all();
}

void Probe::open_gate() {
    std::lock_guard lock(mutex);
    gate_open = true;
    cv.notify_all();
}

bool Probe::wait_for(const std::function<bool()>& pred) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(10), pred);
}

namespace {

// Also takes pushes through the admin server (HttpHook): POST /hooks/<node> with header
// `x-test-token: ok` queues a document whose id is the body (and records the path).
class MemorySource : public Source, public HttpHook {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Source;
        d.name = "source.memory";
        d.summary = "test: emits documents fed through a probe";
        d.has_health_probe = true;
        d.config = ConfigSpec{Field::string("probe").required().describe("probe name"),
                              Field::string("unreachable").default_value("").describe(
                                  "when set: takes nothing, and its health probe says unavailable with this text (a server down)")};
        return d;
    }
    MemorySource(const Config& c, Context&) : probe_(probe(c.get_string("probe"))), unreachable_(c.get_string("unreachable")) {}

    HealthReport health() override {
        if (!unreachable_.empty()) return {Health::Unavailable, unreachable_};
        return {Health::Healthy, "reading its probe"};
    }

    void poll(SourceEmitter& emitter, const PollRequest& request) override {
        if (!unreachable_.empty()) return;
        while (!emitter.stop_requested()) {
            Document doc;
            {
                std::unique_lock lock(probe_.mutex);
                if (probe_.pending.empty()) {
                    if (request.drain) return;
                    probe_.cv.wait_for(lock, request.max_wait);
                    if (probe_.pending.empty()) return;
                }
                doc = std::move(probe_.pending.front());
                probe_.pending.pop_front();
                probe_.emitted++;
                probe_.outstanding++;
                probe_.max_outstanding = std::max(probe_.max_outstanding, probe_.outstanding);
            }
            const std::string id = doc.id;
            Document copy = doc;
            AckHandle ack = [this, id](const Outcome& o) {
                std::lock_guard lock(probe_.mutex);
                probe_.settled[id] = o;
                probe_.settle_calls++;
                probe_.outstanding--;
                probe_.cv.notify_all();
            };
            // A document fed with the attribute "test_reject" is given up on at the source
            // (SourceEmitter::reject) with that reason, as a poison stream entry is.
            auto reject = doc.attributes.find("test_reject");
            bool taken = reject != doc.attributes.end() ? emitter.reject(std::move(doc), reject->second, std::move(ack))
                                                        : emitter.emit(std::move(doc), std::move(ack));
            if (!taken) {
                std::lock_guard lock(probe_.mutex);
                probe_.outstanding--;
                probe_.emitted--;
                probe_.refused++;
                probe_.pending.push_front(std::move(copy));  // kept for the next run
                return;
            }
        }
    }

    HookResponse handle_hook(const HookRequest& request) override {
        auto token = request.headers.find("x-test-token");
        if (token == request.headers.end() || token->second != "ok") return {401, "application/json", R"({"error":"bad token"})"};
        if (request.body.empty()) return {400, "application/json", R"({"error":"empty body"})"};
        Document doc;
        doc.id = request.body;
        doc.fields["hook_path"] = request.path;
        {
            std::lock_guard lock(probe_.mutex);
            probe_.pending.push_back(std::move(doc));
        }
        probe_.cv.notify_all();
        return {};
    }

private:
    Probe& probe_;
    std::string unreachable_;
};

class SplitTransform : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.split";
        d.summary = "test: emits N children per document, each with the same bytes (as copies of one attachment)";
        d.concurrent_safe = true;
        d.config = ConfigSpec{Field::integer("children").default_value(2).min(0)};
        return d;
    }
    SplitTransform(const Config& c, Context&) : children_(static_cast<int>(c.get_int("children"))) {}
    void process(const DocumentPtr& in, Outputs& out) override {
        for (int i = 0; i < children_; ++i) {
            auto child = std::make_shared<Document>(in->make_child(std::to_string(i)));
            // The same bytes in every child of one document, other than the parent's (as an
            // attachment's are not its email's): transform.dedup sees copies of one attachment.
            std::string bytes = "attachment of ";
            for (const auto& p : in->parts)
                if (p.bytes) bytes.append(p.bytes->begin(), p.bytes->end());
            child->parts = Document::from_bytes(child->id, "application/octet-stream", Bytes(bytes.begin(), bytes.end())).parts;
            out.emit(std::move(child));
        }
        if (children_ == 0) out.skip("no attachment to split off");  // as transform.mime does
    }

private:
    int children_;
};

class RouteTransform : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.route";
        d.summary = "test: documents whose id ends in an even digit go to 'even', others to 'odd'";
        d.output_ports = {{"even", "even ids"}, {"odd", "odd ids"}};
        return d;
    }
    RouteTransform(const Config&, Context&) {}
    void process(const DocumentPtr& in, Outputs& out) override {
        out.emit(in, (in->id.back() - '0') % 2 == 0 ? "even" : "odd");
    }
};

class MisbehavingTransform : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.misbehave";
        d.summary = "test: breaks in the configured way";
        d.config = ConfigSpec{
            Field::enumeration("mode", {"throw", "bad_input", "null_doc", "bad_port", "ctor", "start", "retry_later", "ok"}).required(),
            Field::string("probe").default_value("misbehave"),
            Field::string("message").default_value("").describe("bad_input: the reason given (default: an encrypted PDF)")};
        return d;
    }
    MisbehavingTransform(const Config& c, Context&)
        : mode_(c.get_string("mode")), message_(c.get_string("message")), probe_(probe(c.get_string("probe"))) {
        if (mode_ == "ctor") throw std::runtime_error("constructor exploded on purpose");
    }
    void start() override {
        if (mode_ == "start") throw std::runtime_error("start exploded on purpose");
    }
    void process(const DocumentPtr& in, Outputs& out) override {
        {
            std::lock_guard lock(probe_.mutex);
            probe_.attempts[in->id]++;
        }
        if (mode_ == "throw") throw std::runtime_error("process exploded on purpose");
        if (mode_ == "bad_input") throw BadInput(message_.empty() ? "receipt.pdf: encrypted PDF, no password" : message_);
        if (mode_ == "retry_later") throw RetryLater("upstream busy", std::chrono::milliseconds(5));
        if (mode_ == "null_doc") {
            out.emit(nullptr);
            return;
        }
        if (mode_ == "bad_port") {
            out.emit(in, "nowhere");
            return;
        }
        out.emit(in);
    }

private:
    std::string mode_;
    std::string message_;
    Probe& probe_;
};

class PassTransform : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.pass";
        d.summary = "test/bench: emits its input unchanged";
        d.concurrent_safe = true;
        return d;
    }
    PassTransform(const Config&, Context&) {}
    void process(const DocumentPtr& in, Outputs& out) override { out.emit(in); }
};

// Holds each document for `delay` (real time), so a test can act while documents are in
// flight; counts calls per document id in the probe's `attempts`.
class SleepTransform : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.sleep";
        d.summary = "test: sleeps for `delay` per document, then emits it unchanged";
        d.concurrent_safe = true;
        d.config = ConfigSpec{Field::duration("delay").default_value("100ms").min(0), Field::string("probe").default_value("sleep")};
        return d;
    }
    SleepTransform(const Config& c, Context&) : delay_(c.get_duration("delay")), probe_(probe(c.get_string("probe"))) {}
    void process(const DocumentPtr& in, Outputs& out) override {
        {
            std::lock_guard lock(probe_.mutex);
            probe_.attempts[in->id]++;
        }
        std::this_thread::sleep_for(delay_);
        out.emit(in);
    }

private:
    std::chrono::milliseconds delay_;
    Probe& probe_;
};

// Bench: emits `count` documents ("<prefix><n>", one byte each, a file name) made as it
// goes, the way bench/graph_overhead's raw oneTBB graph is fed from a loop: what is timed
// is the runtime, not a test probe's queue and copies. Acks are counted (sequence_acks).
class SequenceSource : public Source {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Source;
        d.name = "source.sequence";
        d.summary = "bench: emits a numbered sequence of one-byte documents, counts the acks";
        d.config = ConfigSpec{Field::integer("count").required().min(0).describe("how many documents"),
                              Field::string("prefix").default_value("seq-").describe("document id prefix")};
        return d;
    }
    SequenceSource(const Config& c, Context&) : count_(c.get_int("count")), prefix_(c.get_string("prefix")) {}

    void poll(SourceEmitter& emitter, const PollRequest&) override {
        const auto bytes = std::make_shared<const Bytes>(Bytes{'x'});
        static const AckHandle ack = [](const Outcome& o) {
            (o.ok ? sequence_acks.ok : sequence_acks.failed).fetch_add(1, std::memory_order_relaxed);
        };
        for (; next_ < count_ && !emitter.stop_requested(); ++next_) {
            Document d;
            d.id = prefix_;
            d.id += std::to_string(next_);
            d.attributes.emplace("filename", d.id);
            d.parts.push_back(Part{d.id, "text/plain", bytes});
            if (!emitter.emit(std::move(d), ack)) return;  // not taken (stopping): emitted again next poll
        }
    }

private:
    std::int64_t count_;
    std::string prefix_;
    std::int64_t next_ = 0;
};

class NullSink : public Sink {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Sink;
        d.name = "sink.null";
        d.summary = "test/bench: accepts everything, counts it";
        d.concurrent_safe = true;
        return d;
    }
    NullSink(const Config&, Context&) {}
    SinkResult write(const Document&) override {
        null_sink_writes.fetch_add(1, std::memory_order_relaxed);
        return SinkResult::ok();
    }
};

class MemorySink : public Sink {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Sink;
        d.name = "sink.memory";
        d.summary = "test: records writes; fails or blocks on request";
        d.concurrent_safe = true;
        d.config = ConfigSpec{
            Field::string("probe").required(),
            Field::integer("fail_first").default_value(0).min(0).describe("answer retry to the first N writes of each document"),
            Field::integer("hold_first").default_value(0).min(0).describe("answer hold (endpoint down) to the first N writes of each document"),
            Field::boolean("fail_always").default_value(false),
            Field::boolean("throw").default_value(false),
            Field::duration("retry_after").default_value("0ms"),
            Field::boolean("block").default_value(false).describe("wait for the probe's gate before accepting"),
            Field::string("reference").default_value("").describe("answer with this reference key, valued '<key>:<doc id>'"),
        };
        return d;
    }
    MemorySink(const Config& c, Context&)
        : probe_(probe(c.get_string("probe"))),
          reference_(c.get_string("reference")),
          fail_first_(static_cast<int>(c.get_int("fail_first"))),
          hold_first_(static_cast<int>(c.get_int("hold_first"))),
          fail_always_(c.get_bool("fail_always")),
          throw_(c.get_bool("throw")),
          retry_after_(c.get_duration("retry_after")) {
        if (c.get_bool("block")) {
            std::lock_guard lock(probe_.mutex);
            probe_.gate_open = false;
        }
    }
    SinkResult write(const Document& doc) override {
        std::unique_lock lock(probe_.mutex);
        int attempt = ++probe_.attempts[doc.id];
        probe_.cv.notify_all();
        if (!probe_.gate_open) {
            probe_.blocked++;
            probe_.cv.notify_all();
            probe_.cv.wait(lock, [&] { return probe_.gate_open; });
            probe_.blocked--;
        }
        if (throw_) throw std::runtime_error("sink exploded on purpose");
        if (fail_always_) return SinkResult::fail("endpoint rejected the document (400)");
        if (attempt <= fail_first_) return SinkResult::retry(retry_after_, "endpoint answered 503");
        if (attempt <= hold_first_) return SinkResult::hold(retry_after_, "endpoint down (503, Retry-After)");
        probe_.accepted[doc.id]++;
        probe_.fields[doc.id] = doc.fields;
        probe_.attributes[doc.id] = doc.attributes;
        probe_.cv.notify_all();
        if (!reference_.empty()) return SinkResult::ok().with_reference(reference_, probe_name_of(doc));
        return SinkResult::ok();
    }

private:
    std::string probe_name_of(const Document& doc) const { return reference_ + ":" + doc.id; }
    Probe& probe_;
    std::string reference_;
    int fail_first_, hold_first_;
    bool fail_always_, throw_;
    std::chrono::milliseconds retry_after_;
};

}  // namespace

const PluginManifest& test_manifest() {
    static const PluginManifest manifest{"test", "0", "in-process test components", kSdkAbiVersion, kCompilerTag,
                                         {component<MemorySource>(), component<SplitTransform>(), component<RouteTransform>(),
                                          component<MisbehavingTransform>(), component<MemorySink>(),
                                          component<PassTransform>(), component<SleepTransform>(), component<NullSink>(),
                                          component<SequenceSource>()}};
    return manifest;
}

}  // namespace docpipe::test
