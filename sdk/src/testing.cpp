#include "docpipe/testing.hpp"

#include <atomic>
#include <stdexcept>

#include "docpipe/detail/yaml_config.hpp"

namespace docpipe::testing {

// ---- ManualClock -------------------------------------------------------------------------

ManualClock::ManualClock()
    // A fixed, recognisable start (2024-01-01T00:00:00Z) keeps test output reproducible.
    : system_(std::chrono::system_clock::time_point(std::chrono::seconds(1704067200))),
      steady_(std::chrono::steady_clock::time_point(std::chrono::hours(1))) {}

std::chrono::system_clock::time_point ManualClock::now() const {
    std::lock_guard lock(mutex_);
    return system_;
}

std::chrono::steady_clock::time_point ManualClock::steady_now() const {
    std::lock_guard lock(mutex_);
    return steady_;
}

void ManualClock::advance(std::chrono::milliseconds duration) {
    std::lock_guard lock(mutex_);
    system_ += duration;
    steady_ += duration;
}

// ---- MemoryStateStore --------------------------------------------------------------------

MemoryStateStore::MemoryStateStore(Clock& clock) : clock_(clock) {}

bool MemoryStateStore::live(const Entry& e) const { return e.expires > clock_.now(); }

static std::chrono::system_clock::time_point expiry(Clock& clock, std::chrono::seconds ttl) {
    return ttl.count() > 0 ? clock.now() + ttl : std::chrono::system_clock::time_point::max();
}

std::optional<std::string> MemoryStateStore::get(std::string_view key) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end() || !live(it->second)) return std::nullopt;
    return it->second.value;
}

void MemoryStateStore::put(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
    std::lock_guard lock(mutex_);
    entries_.insert_or_assign(std::string(key), Entry{std::string(value), expiry(clock_, ttl)});
}

bool MemoryStateStore::put_if_absent(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end() && live(it->second)) return false;
    entries_.insert_or_assign(std::string(key), Entry{std::string(value), expiry(clock_, ttl)});
    return true;
}

bool MemoryStateStore::erase(std::string_view key) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return false;
    bool was_live = live(it->second);
    entries_.erase(it);
    return was_live;
}

std::vector<std::string> MemoryStateStore::keys(std::string_view prefix, std::size_t limit) {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (auto it = entries_.lower_bound(prefix); it != entries_.end() && out.size() < limit; ++it) {
        if (it->first.compare(0, prefix.size(), prefix) != 0) break;
        if (live(it->second)) out.push_back(it->first);
    }
    return out;
}

// ---- TestContext -------------------------------------------------------------------------

class TestContext::RecordingLogger : public Logger {
public:
    void log(LogLevel level, std::string_view message, std::string_view doc_id) override {
        std::lock_guard lock(mutex);
        lines.push_back({level, std::string(message), std::string(doc_id)});
    }
    bool enabled(LogLevel) const override { return true; }
    mutable std::mutex mutex;
    std::vector<LogLine> lines;
};

class TestContext::RecordingMetrics : public Metrics {
public:
    void increment(std::string_view name, double by, const Labels&) override {
        std::lock_guard lock(mutex);
        values[std::string(name)] += by;
    }
    void set_gauge(std::string_view name, double value, const Labels&) override {
        std::lock_guard lock(mutex);
        values[std::string(name)] = value;
    }
    void observe(std::string_view name, double, const Labels&) override {
        std::lock_guard lock(mutex);
        values[std::string(name) + "_count"] += 1;
    }
    mutable std::mutex mutex;
    std::map<std::string, double, std::less<>> values;
};

bool TestContext::amend_reference(std::string_view job_id, std::string_view doc_id, std::string_view key, std::string_view value) {
    std::lock_guard lock(amended_mutex_);
    amended_.push_back({std::string(job_id), std::string(doc_id), std::string(key), std::string(value)});
    return true;
}

std::vector<TestContext::AmendedReference> TestContext::amended_references() const {
    std::lock_guard lock(amended_mutex_);
    return amended_;
}

TestContext::TestContext(std::string node_name)
    : node_name_(std::move(node_name)),
      logger_(std::make_shared<RecordingLogger>()),
      metrics_(std::make_shared<RecordingMetrics>()) {}

Logger& TestContext::log() { return *logger_; }
Metrics& TestContext::metrics() { return *metrics_; }

std::vector<LogLine> TestContext::log_lines() const {
    std::lock_guard lock(logger_->mutex);
    return logger_->lines;
}

double TestContext::counter(std::string_view name) const {
    std::lock_guard lock(metrics_->mutex);
    auto it = metrics_->values.find(name);
    return it == metrics_->values.end() ? 0 : it->second;
}

// ---- NodeRunner --------------------------------------------------------------------------

struct NodeRunner::State {
    std::unique_ptr<Registry> registry;  // declared first: destroyed last, after the component
    ComponentDescriptor descriptor;
    Config config;
    TestContext context;
    std::unique_ptr<Component> component;
    std::string last_skip_reason;
    std::atomic<bool> stop_requested{false};
    ~State() {
        if (component) component->stop();
        component.reset();  // code lives in the registry's library: destroy it first
    }
};

NodeRunner::NodeRunner(const ComponentDescriptor& descriptor, std::string_view yaml_config)
    : state_(std::make_unique<State>()) {
    state_->descriptor = descriptor;
    std::vector<ConfigIssue> issues;
    state_->config = parse_config_yaml(state_->descriptor.config, yaml_config, issues);
    if (!issues.empty()) {
        std::string message = "invalid config for " + descriptor.name + ":";
        for (const auto& i : issues)
            message += "\n  " + std::to_string(i.line) + ":" + std::to_string(i.column) + ": " + i.path + ": " + i.message;
        throw std::invalid_argument(message);
    }
    state_->component = state_->descriptor.create(state_->config, state_->context);
    state_->component->start();
}

NodeRunner NodeRunner::from_plugin(const std::filesystem::path& plugin_file, std::string_view component_name,
                                   std::string_view yaml_config) {
    auto registry = std::make_unique<Registry>();
    if (!registry->load_file(plugin_file))
        throw std::runtime_error(plugin_file.string() + ": " + registry->rejected().back().reason);
    const ComponentDescriptor* d = registry->find(component_name);
    if (!d) {
        std::string provided;
        for (const auto& name : registry->component_names()) provided += (provided.empty() ? "" : ", ") + name;
        std::string message = plugin_file.string() + " does not provide component '" + std::string(component_name) + "'";
        if (auto near = closest_match(component_name, registry->component_names())) message += " (did you mean '" + *near + "'?)";
        throw std::runtime_error(message + "; it provides: " + (provided.empty() ? std::string("nothing") : provided));
    }
    NodeRunner runner(*d, yaml_config);
    runner.state_->registry = std::move(registry);
    return runner;
}

NodeRunner::NodeRunner(NodeRunner&&) noexcept = default;
NodeRunner::~NodeRunner() = default;

namespace {
class CollectingOutputs : public Outputs {
public:
    explicit CollectingOutputs(const ComponentDescriptor& d) : descriptor(d) {}
    void emit(DocumentPtr doc, std::string_view port) override {
        if (!doc) throw std::logic_error(descriptor.name + " emitted a null document");
        bool known = false;
        for (const auto& p : descriptor.output_ports) known = known || p.name == port;
        if (!known) throw std::logic_error(descriptor.name + " emitted on undeclared port '" + std::string(port) + "'");
        emitted.push_back({std::move(doc), std::string(port)});
    }
    void skip(std::string_view reason) override { skipped = std::string(reason); }
    const ComponentDescriptor& descriptor;
    std::vector<Emitted> emitted;
    std::string skipped;
};

class CollectingEmitter : public SourceEmitter {
public:
    explicit CollectingEmitter(const std::atomic<bool>& stop) : stop_(stop) {}
    bool emit(Document doc, AckHandle ack) override {
        items.push_back({std::move(doc), std::move(ack), {}});
        return true;
    }
    bool reject(Document doc, std::string reason, AckHandle ack) override {
        items.push_back({std::move(doc), std::move(ack), std::move(reason)});
        return true;
    }
    bool stop_requested() const override { return stop_.load(); }
    std::vector<SourceItem> items;

private:
    const std::atomic<bool>& stop_;
};
}  // namespace

std::vector<Emitted> NodeRunner::process(Document doc) {
    auto* transform = dynamic_cast<Transform*>(state_->component.get());
    if (!transform) throw std::logic_error(state_->descriptor.name + " is not a transform or ocr component");
    CollectingOutputs outputs(state_->descriptor);
    transform->process(std::make_shared<const Document>(std::move(doc)), outputs);
    state_->last_skip_reason = outputs.skipped;
    return std::move(outputs.emitted);
}

SinkResult NodeRunner::write(const Document& doc) {
    auto* sink = dynamic_cast<Sink*>(state_->component.get());
    if (!sink) throw std::logic_error(state_->descriptor.name + " is not a sink");
    return sink->write(doc);
}

std::vector<SourceItem> NodeRunner::poll(PollRequest request) {
    auto* source = dynamic_cast<Source*>(state_->component.get());
    if (!source) throw std::logic_error(state_->descriptor.name + " is not a source");
    CollectingEmitter emitter(state_->stop_requested);
    source->poll(emitter, request);
    return std::move(emitter.items);
}

void NodeRunner::request_stop() { state_->stop_requested = true; }

Component& NodeRunner::component() { return *state_->component; }
TestContext& NodeRunner::context() { return state_->context; }
ManualClock& NodeRunner::clock() { return state_->context.manual_clock(); }
const std::string& NodeRunner::last_skip_reason() const { return state_->last_skip_reason; }
const Config& NodeRunner::config() const { return state_->config; }

}  // namespace docpipe::testing
