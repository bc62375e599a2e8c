// docpipe SDK — the component interfaces a plugin implements.
//
// Four kinds: source, transform, ocr, sink. A component is created by the runtime from its
// descriptor's factory with a validated Config and a Context, once per node.
//
// Lifecycle: constructor -> start() -> (poll | process | write)* -> stop() -> destructor.
// A constructor or start() that throws fails the pipeline start with the node's name.
//
// Threading: the runtime calls process()/write() concurrently only when the descriptor
// says `concurrent_safe` and the node's `concurrency` is above 1; otherwise calls on one
// instance are serialised (but not pinned to one thread: no thread_locals). A source's
// poll() runs on one runtime-owned thread; ack callbacks may run on any thread.
//
// Errors: throw `BadInput` for a document that can never succeed (it goes straight to the
// dead-letter store with your message); any other exception is retried under the node's
// retry policy and then dead-lettered. Messages should say what was wrong and where.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/config_spec.hpp"
#include "docpipe/context.hpp"
#include "docpipe/document.hpp"

namespace docpipe {

enum class ComponentKind { Source, Transform, Ocr, Sink };
std::string_view to_string(ComponentKind kind);

// A permanent, per-document failure: retrying cannot help (corrupt file, encrypted PDF).
class BadInput : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A transient failure with a hint of when to try again (e.g. from a Retry-After header).
class RetryLater : public std::runtime_error {
public:
    RetryLater(const std::string& reason, std::chrono::milliseconds after)
        : std::runtime_error(reason), after(after) {}
    std::chrono::milliseconds after;
};

enum class Health { Healthy, Degraded, Unavailable };
std::string_view to_string(Health health);

struct HealthReport {
    Health status = Health::Healthy;
    std::string detail;      // e.g. "cuda: NVIDIA H200, 139 GiB" or the last error
};

class Component {
public:
    virtual ~Component() = default;
    virtual void start() {}
    virtual void stop() {}
    // Called only when the descriptor declares `has_health_probe`; must be quick.
    virtual HealthReport health() { return {}; }
};

// ---- source ---------------------------------------------------------------------------

// How a source document ended. Exactly one of these reaches the ack handle, exactly once.
struct Outcome {
    bool ok = true;
    std::string reason;  // why it failed (empty when ok)
    // Failed, and the runtime could not record it (no dead letter or job record stored): the
    // input exists nowhere else, so a source that would drop a failed input (acknowledge a
    // stream entry) must keep it for a later delivery instead.
    bool keep_input = false;
};

// Settles one source document. The source decides what acking means (move a file, flag a
// message, Pub/Sub acknowledge). Called from any runtime thread, at most once.
using AckHandle = std::function<void(const Outcome&)>;

class SourceEmitter {
public:
    virtual ~SourceEmitter() = default;
    // Hands a document to the graph. Blocks while the pipeline's `max_in_flight` documents
    // are in the graph (backpressure). Returns false if the runtime is stopping and did not
    // take the document: do not ack it, keep it for the next run.
    virtual bool emit(Document doc, AckHandle ack) = 0;
    // Hands over a document the source gives up on without sending it through the graph
    // (a stream entry delivered too many times: it keeps crashing or stalling workers). The
    // runtime records it as a failure at this source node, like a document that failed in
    // the graph: a job with status `failed` and a dead letter with `reason` (visible in the
    // admin API; POST /api/v1/jobs/{id}/retry sends the document on from this node's
    // outputs). Then it calls `ack` with a failed Outcome: the input is recorded, the source
    // may let it go. Returns false when the runtime is stopping or its state store stayed
    // down (nothing recorded, `ack` not called: keep the input and offer it again later).
    virtual bool reject(Document doc, std::string reason, AckHandle ack) = 0;
    virtual bool stop_requested() const = 0;
};

struct PollRequest {
    // Longest time poll() may block waiting for new input before returning.
    std::chrono::milliseconds max_wait{0};
    // --once mode: emit everything held now, waiting for items still being written to
    // complete, and do not wait for new ones.
    bool drain = false;
};

class Source : public Component {
public:
    // Emits what is available; returns when nothing more is ready within request.max_wait
    // or when emitter.stop_requested(). Called repeatedly on one runtime-owned thread.
    virtual void poll(SourceEmitter& emitter, const PollRequest& request) = 0;
    // How many documents the source knows are waiting and has not emitted yet (files in a
    // folder, messages in a mailbox): the total and time left of `docpipe run --once`'s
    // progress line. nullopt when it cannot tell (a push subscription) or has not looked
    // yet. Called from any thread while poll() runs: must be cheap and must not do I/O.
    virtual std::optional<std::uint64_t> backlog() const { return std::nullopt; }
};

// ---- transform and ocr ------------------------------------------------------------------

class Outputs {
public:
    virtual ~Outputs() = default;
    // Sends a document out of `port` (one of the descriptor's output ports).
    virtual void emit(DocumentPtr doc, std::string_view port = "out") = 0;
    // The input was consumed on purpose with nothing (or less) to pass on: an email without
    // a claim attachment, a tiny logo image. The runtime records the job as `skipped` with
    // this reason when nothing at all was emitted, instead of reporting a silent success.
    // Call at most once per process() call; the last reason wins.
    virtual void skip(std::string_view reason) { (void)reason; }
};

class Transform : public Component {
public:
    // May emit zero (consumed, e.g. an email without attachments), one or many documents.
    virtual void process(const DocumentPtr& input, Outputs& out) = 0;
};

// An OCR engine is a transform with a page-level entry point: the default process() fills
// `ocr` on every page that has an image and no OCR result yet, and emits one document.
class Ocr : public Transform {
public:
    virtual OcrResult recognize(const Page& page) = 0;
    void process(const DocumentPtr& input, Outputs& out) override;
};

// ---- sink -------------------------------------------------------------------------------

class SinkResult {
public:
    // Ok: accepted durably. Retry: this document should be tried again (counts against the
    // node's retry attempts). Hold: the endpoint cannot take anything right now (down, 503
    // for a while, credentials refused, circuit breaker open) — not this document's fault,
    // so the runtime waits and tries again without using up an attempt, until the node's
    // `retry.hold_for` has passed. Fail: never worth retrying (dead letter).
    enum class Status { Ok, Retry, Hold, Fail };
    static SinkResult ok() { return SinkResult(Status::Ok, {}, {}); }
    static SinkResult retry(std::chrono::milliseconds after, std::string reason) {
        return SinkResult(Status::Retry, after, std::move(reason));
    }
    static SinkResult hold(std::chrono::milliseconds after, std::string reason) {
        return SinkResult(Status::Hold, after, std::move(reason));
    }
    static SinkResult fail(std::string reason) { return SinkResult(Status::Fail, {}, std::move(reason)); }
    // Accepted durably, but for a person to decide (a review queue): the document's job
    // ends in `review`, not `submitted`, once all its siblings are settled.
    static SinkResult parked(std::string reason) {
        SinkResult r(Status::Ok, {}, std::move(reason));
        r.parked_ = true;
        return r;
    }
    // What the receiving system called the delivery (the NCB claim reference, a Drive file
    // id, a Sheets row range): recorded on the source document's job under `key`, and on the
    // descendant's outcome. Keys are snake_case; values must not carry personal data.
    // On a parked result, a reference says the receiving system holds the document all the
    // same (NCB kept an earlier try of the claim): the outcome is marked `held`, and a
    // reviewer's rejection then does not make the same content new to transform.dedup.
    SinkResult&& with_reference(std::string key, std::string value) && {
        references_[std::move(key)] = std::move(value);
        return std::move(*this);
    }
    SinkResult& with_reference(std::string key, std::string value) & {
        references_[std::move(key)] = std::move(value);
        return *this;
    }

    Status status() const { return status_; }
    std::chrono::milliseconds retry_after() const { return after_; }
    const std::string& reason() const { return reason_; }
    bool parked() const { return parked_; }
    const std::map<std::string, std::string>& references() const { return references_; }

private:
    SinkResult(Status s, std::chrono::milliseconds after, std::string reason)
        : status_(s), after_(after), reason_(std::move(reason)) {}
    Status status_;
    std::chrono::milliseconds after_{0};
    std::string reason_;
    bool parked_ = false;
    std::map<std::string, std::string> references_;
};

class Sink : public Component {
public:
    // Sinks get documents read-only. Ok = accepted durably (the source may be acked).
    virtual SinkResult write(const Document& doc) = 0;
};

// ---- field checks -----------------------------------------------------------------------

// An optional capability of a component that extracts fields: checking values a person typed
// (a reviewer's corrections) with the same parsers and rules the component reads documents
// with, so a correction cannot carry what extraction would never produce. Before the admin
// API accepts corrections, the runtime asks every component of the pipeline that offers this
// (found with dynamic_cast) and refuses the request naming each bad field.
// Threading: may be called from any thread while the pipeline runs; must not do I/O.
class FieldChecker {
public:
    virtual ~FieldChecker() = default;
    // `values`: field name -> the value a person entered. Returns field name -> what is wrong
    // with it, for the fields this component knows and finds wrong; empty when all are fine.
    virtual std::map<std::string, std::string> check_fields(const nlohmann::json& values) const = 0;
    // The values as they are to be stored, called only with values check_fields() accepted:
    // a component turns what a person typed into its canonical form ("RM 1,234.50" into the
    // number 1234.5), so that what it accepted is what the next node can use (a total typed
    // as text passed the check and then could not be sent to NCB). The default keeps them.
    virtual nlohmann::json normalize_fields(const nlohmann::json& values) const { return values; }
};

// ---- HTTP hooks --------------------------------------------------------------------------

// An optional capability of a component that is told about new input over HTTP (Pub/Sub
// push, a webhook): the runtime's admin server passes it every request to
// `/hooks/<node name>[/...]` (found with dynamic_cast, like FieldChecker).
// - Authentication is the component's job: the admin server does not ask these requests for
//   an admin key (Google cannot send one); it still applies its rate limit, size caps and
//   timeouts. Verify the caller (e.g. Google's OIDC token) before trusting anything.
// - Threading: called on the admin server's worker threads, possibly several at once, while
//   the pipeline runs. Answer quickly: record what arrived durably (or in the component's
//   own queue) and return; never call into the graph, never wait for documents.
// - The answer's status is what the caller sees: Pub/Sub treats 2xx as "delivered" and
//   anything else as "send again later".
struct HookRequest {
    std::string method;
    std::string path;   // after /hooks/<node name>, e.g. "" or "/push"; percent-decoded
    std::string query;  // raw, without '?'
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
};

struct HookResponse {
    int status = 204;
    std::string content_type = "application/json";
    std::string body;
};

class HttpHook {
public:
    virtual ~HttpHook() = default;
    virtual HookResponse handle_hook(const HookRequest& request) = 0;
};

// ---- descriptor -------------------------------------------------------------------------

struct PortSpec {
    std::string name;
    std::string description;
};

// A sink's one output port. The runtime, not the sink, sends on it: each document the sink
// accepted (delivered, parked for review, or found in its delivery ledger on a redelivery)
// goes on to the nodes this port leads to, with each reference of the sink's result
// (SinkResult::with_reference, e.g. ncb_claim_reference) set as an attribute of the same
// name. A failed document does not go on. Connecting the port is optional: `ncb.accepted ->
// audit` writes the audit row after the NCB submission, with its claim reference.
inline constexpr const char* kSinkAcceptedPort = "accepted";
inline PortSpec sink_accepted_port() {
    return {kSinkAcceptedPort, "optional: each document this sink accepted, passed on with its references as attributes"};
}

struct ComponentDescriptor {
    ComponentKind kind = ComponentKind::Transform;
    std::string name;     // "<kind>.<name>", e.g. "sink.files"
    std::string summary;  // one line
    ConfigSpec config;
    // transforms/ocr: defaults to {"out"}; sources: {"out"}; sinks: {kSinkAcceptedPort}, added
    // by component<T>() (a sink declares no ports of its own: the runtime forwards for it).
    std::vector<PortSpec> output_ports;
    bool concurrent_safe = false;        // may one instance run process()/write() on several threads
    bool has_health_probe = false;
    // Builds one instance. The Config and Context outlive the component.
    std::function<std::unique_ptr<Component>(const Config&, Context&)> create;

    nlohmann::json to_json() const;  // what `docpipe plugins describe --json` prints
};

// Helper for the common case: a class with a static `describe()` returning a descriptor
// (without factory) and a constructor `T(const Config&, Context&)`.
template <typename T>
ComponentDescriptor component() {
    ComponentDescriptor d = T::describe();
    d.create = [](const Config& cfg, Context& ctx) -> std::unique_ptr<Component> {
        return std::make_unique<T>(cfg, ctx);
    };
    if (d.output_ports.empty() && d.kind != ComponentKind::Sink) d.output_ports.push_back({"out", "processed documents"});
    if (d.kind == ComponentKind::Sink && d.output_ports.empty()) d.output_ports.push_back(sink_accepted_port());
    return d;
}

}  // namespace docpipe
