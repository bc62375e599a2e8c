// docpipe SDK — testing kit for component authors.
//
// Run one component in isolation, built from a YAML config snippet exactly as a pipeline
// would build it (same validation), on a manual clock:
//
//   auto runner = docpipe::testing::NodeRunner::from_plugin(PLUGIN_PATH, "sink.files",
//                                                           "path: /tmp/out\nformat: jsonl");
//   auto result = runner.write(doc);
//   EXPECT_EQ(result.status(), docpipe::SinkResult::Status::Ok);
//
// Contract:
// - Calls are synchronous and run on the calling thread; nothing runs in the background.
//   NodeRunner::request_stop() is the one call meant for another thread, during poll().
// - The ManualClock only moves when the test advances it (sleep_for advances it too), so
//   tests never depend on the machine's speed.
// - NodeRunner owns the component, its Config, Context and (for from_plugin) the Registry
//   holding the library; all live as long as the runner.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/component.hpp"
#include "docpipe/registry.hpp"

namespace docpipe::testing {

class ManualClock : public Clock {
public:
    ManualClock();
    std::chrono::system_clock::time_point now() const override;
    std::chrono::steady_clock::time_point steady_now() const override;
    void sleep_for(std::chrono::milliseconds duration) override { advance(duration); }
    void advance(std::chrono::milliseconds duration);

private:
    mutable std::mutex mutex_;
    std::chrono::system_clock::time_point system_;
    std::chrono::steady_clock::time_point steady_;
};

// In-memory StateStore honouring TTLs against a Clock; thread-safe.
class MemoryStateStore : public StateStore {
public:
    explicit MemoryStateStore(Clock& clock);
    std::optional<std::string> get(std::string_view key) override;
    void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) override;
    bool put_if_absent(std::string_view key, std::string_view value, std::chrono::seconds ttl) override;
    bool erase(std::string_view key) override;
    std::vector<std::string> keys(std::string_view prefix, std::size_t limit) override;

private:
    struct Entry {
        std::string value;
        std::chrono::system_clock::time_point expires;  // max() = never
    };
    bool live(const Entry& e) const;
    Clock& clock_;
    std::mutex mutex_;
    std::map<std::string, Entry, std::less<>> entries_;
};

struct LogLine {
    LogLevel level;
    std::string message;
    std::string doc_id;
};

// Records what a component logs and counts; thread-safe.
class TestContext : public Context {
public:
    explicit TestContext(std::string node_name = "node-under-test");
    const std::string& node_name() const override { return node_name_; }
    Logger& log() override;
    Metrics& metrics() override;
    StateStore& state() override { return state_; }
    Clock& clock() override { return clock_; }
    ManualClock& manual_clock() { return clock_; }
    std::vector<LogLine> log_lines() const;
    double counter(std::string_view name) const;

    // Records each call and answers true, as a runtime that keeps the job would.
    struct AmendedReference {
        std::string job_id, doc_id, key, value;
    };
    bool amend_reference(std::string_view job_id, std::string_view doc_id, std::string_view key, std::string_view value) override;
    std::vector<AmendedReference> amended_references() const;

private:
    class RecordingLogger;
    class RecordingMetrics;
    mutable std::mutex amended_mutex_;
    std::vector<AmendedReference> amended_;
    std::string node_name_;
    ManualClock clock_;
    MemoryStateStore state_{clock_};
    std::shared_ptr<RecordingLogger> logger_;
    std::shared_ptr<RecordingMetrics> metrics_;
};

struct Emitted {
    DocumentPtr doc;
    std::string port;
};

struct SourceItem {
    Document doc;
    AckHandle ack;
    std::string rejected;  // the reason, when the source handed it over with SourceEmitter::reject
};

class NodeRunner {
public:
    // Validates `yaml_config` against the descriptor's spec; throws std::invalid_argument
    // listing every issue ("line:col: path: message") when it is invalid.
    NodeRunner(const ComponentDescriptor& descriptor, std::string_view yaml_config);
    // Loads the plugin file and builds `component_name` from it; throws std::runtime_error
    // with the loader's reason when the file is rejected or lacks the component.
    static NodeRunner from_plugin(const std::filesystem::path& plugin_file,
                                  std::string_view component_name, std::string_view yaml_config);
    NodeRunner(NodeRunner&&) noexcept;
    ~NodeRunner();

    // transform / ocr: runs process() once and returns what it emitted, with ports.
    std::vector<Emitted> process(Document doc);
    // The reason the last process() call passed to Outputs::skip(), or "".
    const std::string& last_skip_reason() const;
    // sink: runs write() once.
    SinkResult write(const Document& doc);
    // source: runs poll() once and returns what it emitted, each with its ack handle.
    std::vector<SourceItem> poll(PollRequest request = {std::chrono::milliseconds{0}, true});
    // From now on the emitter's stop_requested() is true, as when the runtime stops: for
    // testing that a source's poll() returns promptly. Safe to call from another thread
    // while poll() runs (the one call of the kit that is); it cannot be taken back.
    void request_stop();

    Component& component();
    TestContext& context();
    ManualClock& clock();
    const Config& config() const;

private:
    NodeRunner() = default;
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace docpipe::testing
