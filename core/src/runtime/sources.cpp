#include "sources.hpp"

#include <algorithm>

#include <fmt/core.h>

#include "builtin/builtin.hpp"

namespace docpipe::core {

class SourceDriver::Emitter : public SourceEmitter {
public:
    Emitter(SourceDriver& driver, std::size_t index) : driver_(driver), index_(index) {}
    bool emit(Document doc, AckHandle ack) override {
        driver_.beat(index_);
        return driver_.admit(index_, std::move(doc), std::move(ack));
    }
    bool reject(Document doc, std::string reason, AckHandle ack) override {
        driver_.beat(index_);
        return driver_.admit(index_, std::move(doc), std::move(ack), &reason);
    }
    bool stop_requested() const override { return driver_.flight_.sources_stopping(); }

private:
    SourceDriver& driver_;
    std::size_t index_;
};

namespace {
std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void SourceDriver::start() {
    beats_ = std::make_unique<std::atomic<std::int64_t>[]>(nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); ++i) beats_[i].store(nodes_[i]->source ? steady_ms() : -1);
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i]->source) threads_.emplace_back([this, i] { loop(i); });
}

void SourceDriver::beat(std::size_t index) {
    if (beats_) beats_[index].store(steady_ms(), std::memory_order_relaxed);
}

std::chrono::milliseconds SourceDriver::quietest_source() const {
    if (!beats_) return std::chrono::milliseconds(0);
    const std::int64_t now = steady_ms();
    std::int64_t longest = 0;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (const auto b = beats_[i].load(std::memory_order_relaxed); b >= 0) longest = std::max(longest, now - b);
    return std::chrono::milliseconds(longest);
}

std::optional<std::uint64_t> SourceDriver::backlog() const {
    std::uint64_t total = 0;
    for (const auto& node : nodes_) {
        if (!node->source) continue;
        const auto waiting = node->source->backlog();
        if (!waiting) return std::nullopt;
        total += *waiting;
    }
    return total;
}

void SourceDriver::join() {
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

bool SourceDriver::admit(std::size_t index, Document&& doc, AckHandle&& ack, const std::string* rejected) {
    RuntimeNode& node = *nodes_[index];
    if (doc.id.empty()) {
        if (!doc.parts.empty() && doc.parts.front().bytes) {
            doc.id = Document::content_id(doc.parts.front().bytes->data(), doc.parts.front().bytes->size());
        } else {
            if (ack) ack(Outcome{false, node.label + ": source emitted a document with no id and no content"});
            settlements_.counters.failed.fetch_add(1);
            return true;
        }
    }
    auto tracker = std::make_shared<Tracker>();
    // The stage before keeps a job under the document's id (or `<id>@<its source>` if it was
    // itself a later stage): this stage's job gets an id of its own (kUpstreamJobAttribute).
    // Keys built once: the attribute map's find() would build a string for each lookup.
    static const std::string upstream_key = kUpstreamJobAttribute, filename_key = "filename";
    const auto upstream = doc.attributes.find(upstream_key);
    const bool same_document = upstream != doc.attributes.end() &&
                               (upstream->second == doc.id || upstream->second.rfind(doc.id + "@", 0) == 0);
    tracker->doc_id = same_document ? doc.id + "@" + node.name() : doc.id;
    auto name = doc.attributes.find(filename_key);
    tracker->label = name != doc.attributes.end() ? name->second : (doc.parts.empty() ? "" : doc.parts.front().name);
    tracker->source_node = node.name();
    tracker->ack = std::move(ack);
    tracker->started = steady::now();
    if (!flight_.enter(tracker)) return false;  // not taken: the source keeps it
    if (rejected) return graph_.reject(index, std::move(doc), tracker, *rejected);
    return graph_.admit(index, std::move(doc), tracker);
}

void SourceDriver::after_next_round(std::function<void()> fn) {
    std::size_t sources = 0;
    for (const auto& node : nodes_) sources += node->source != nullptr;
    if (sources == 0) {
        fn();
        return;
    }
    std::lock_guard lock(round_mutex_);
    after_round_ = std::move(fn);
    polled_since_.clear();
}

void SourceDriver::polled(std::size_t index) {
    std::function<void()> run;
    {
        std::lock_guard lock(round_mutex_);
        if (!after_round_) return;
        polled_since_.insert(index);
        std::size_t sources = 0;
        for (const auto& node : nodes_) sources += node->source != nullptr;
        if (polled_since_.size() < sources) return;
        run.swap(after_round_);
    }
    run();  // outside the lock: it may use the store and take a while
}

void SourceDriver::loop(std::size_t index) {
    RuntimeNode& node = *nodes_[index];
    Emitter emitter(*this, index);
    if (once_) {
        try {
            node.source->poll(emitter, PollRequest{std::chrono::milliseconds(0), true});
        } catch (const std::exception& e) {
            node.context->log().log(LogLevel::Error, fmt::format("poll failed: {}", e.what()));
        }
        return;
    }
    while (!flight_.sources_stopping()) {
        if (!store_guard_.available()) {
            // Back-pressure during a state-store outage: taking more documents would only
            // pile them up waiting for the store. The source is waiting, not stuck.
            beat(index);
            store_guard_.wait_available(poll_wait_);
            continue;
        }
        try {
            node.source->poll(emitter, PollRequest{poll_wait_, false});
            beat(index);
            polled(index);
        } catch (const std::exception& e) {
            node.context->log().log(LogLevel::Error, fmt::format("poll failed: {}; trying again in 1 s", e.what()));
            beat(index);  // failing and retrying is alive: the health report says why it fails
            flight_.pause_source(std::chrono::seconds(1));
        }
    }
}

}  // namespace docpipe::core
