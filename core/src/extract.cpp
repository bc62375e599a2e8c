#include "extract.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <ostream>
#include <set>
#include <thread>

#include <fmt/core.h>

#include "progress.hpp"
#include "services.hpp"
#include "state/store.hpp"

namespace fs = std::filesystem;

namespace docpipe::core {

namespace {

struct ExtractNode {
    const NodeSpec* spec = nullptr;
    std::unique_ptr<NodeContext> context;
    std::unique_ptr<Component> component;
    Transform* transform = nullptr;
    std::mutex call_mutex;  // taken when the component is not concurrent-safe
};

class Collector : public Outputs {
public:
    void emit(DocumentPtr doc, std::string_view port) override {
        if (doc) emitted.emplace_back(std::move(doc), std::string(port));
    }
    void skip(std::string_view reason) override { skipped = std::string(reason); }
    std::vector<std::pair<DocumentPtr, std::string>> emitted;
    std::string skipped;
};

nlohmann::json result_line(const std::string& file, const Document& doc, const std::string& route) {
    nlohmann::json j;
    std::string label = file;
    if (auto it = doc.attributes.find("email_filename"); it != doc.attributes.end()) label += "#" + doc.attributes.at("filename");
    j["file"] = label;
    j["id"] = doc.id;
    // The claim layout where there is one; otherwise (another plugin's pipeline) every field.
    const bool claim = doc.fields.contains("claim");
    j["fields"] = claim ? doc.fields["claim"] : doc.fields;
    if (claim) {
        nlohmann::json other = nlohmann::json::object();
        for (const auto& [k, v] : doc.fields.items())
            if (k != "claim" && k != "confidence" && k != "warnings" && k != "missing") other[k] = v;
        if (!other.empty()) j["other_fields"] = other;
    }
    j["confidence"] = doc.fields.value("confidence", 0.0);
    j["route"] = route;
    j["warnings"] = doc.fields.value("warnings", nlohmann::json::array());
    j["missing"] = doc.fields.value("missing", nlohmann::json::array());
    if (auto it = doc.attributes.find("review_reason"); it != doc.attributes.end()) j["reason"] = it->second;
    nlohmann::json pages = nlohmann::json::array();
    for (const auto& p : doc.pages)
        pages.push_back({{"index", p.index}, {"text", p.ocr ? p.ocr->text : p.text_layer},
                         {"mean_confidence", p.ocr ? p.ocr->mean_confidence : 0.0f}});
    j["pages"] = pages;
    return j;
}

nlohmann::json problem_line(const std::string& file, const std::string& route) {
    return {{"file", file}, {"fields", nlohmann::json::object()}, {"confidence", 0.0}, {"route", route},
            {"warnings", nlohmann::json::array()}, {"missing", nlohmann::json::array()}, {"pages", nlohmann::json::array()}};
}

// What a path that is not a regular file is, in the words of a refusal.
const char* special_file_kind(fs::file_type type) {
    switch (type) {
        case fs::file_type::fifo: return "a named pipe (FIFO)";
        case fs::file_type::character:
        case fs::file_type::block: return "a device";
        case fs::file_type::socket: return "a socket";
        default: return "a special file";
    }
}

}  // namespace

fs::path default_claims_pipeline(const fs::path& executable) {
    std::vector<fs::path> candidates;
    if (const char* dir = std::getenv("DOCPIPE_PIPELINES")) candidates.push_back(fs::path(dir) / "claims-local.yaml");
    const fs::path bin = executable.parent_path();
    candidates.push_back(bin / ".." / "share" / "docpipe" / "pipelines" / "claims-local.yaml");
    candidates.push_back(bin / ".." / ".." / "pipelines" / "claims-local.yaml");
#ifdef DOCPIPE_SOURCE_DIR
    candidates.push_back(fs::path(DOCPIPE_SOURCE_DIR) / "pipelines" / "claims-local.yaml");
#endif
    for (const auto& c : candidates) {
        std::error_code ec;
        if (fs::is_regular_file(c, ec)) return fs::weakly_canonical(c, ec);
    }
    return {};
}

int extract_files(const PipelineSpec& spec, std::shared_ptr<const Registry> registry, const std::vector<fs::path>& files,
                  std::ostream& out, std::ostream& err, const ExtractOptions& options) {
    // The registry owns the plugin libraries the components come from: it must outlive them.
    const std::shared_ptr<const Registry> keep_plugins = std::move(registry);
    SystemClock clock;
    MetricsRegistry metrics;
    auto store = open_store("memory", "", clock);
    auto logger = make_process_logger("text", options.log_level);

    // The extraction path: transforms and OCR nodes; dedup is left out on purpose.
    std::map<std::string, std::unique_ptr<ExtractNode>> nodes;
    std::vector<std::string> entry;
    for (const auto& ns : spec.nodes) {
        const auto kind = ns.descriptor->kind;
        if (kind == ComponentKind::Source) {
            for (const auto& e : spec.edges)
                if (e.from == ns.name) entry.push_back(e.to);
            continue;
        }
        if (kind == ComponentKind::Sink || ns.component == "transform.dedup") continue;
        auto node = std::make_unique<ExtractNode>();
        node->spec = &ns;
        node->context = std::make_unique<NodeContext>(ns.name, logger, false, metrics, *store, clock);
        try {
            node->component = ns.descriptor->create(ns.config, *node->context);
            node->component->start();
        } catch (const std::exception& e) {
            err << fmt::format("docpipe extract: node '{}' ({}) cannot start: {}\n", ns.name, ns.component, e.what());
            return 2;
        }
        node->transform = dynamic_cast<Transform*>(node->component.get());
        nodes[ns.name] = std::move(node);
    }
    // Skip over left-out nodes (dedup) to what follows them.
    auto next_nodes = [&](const std::string& from, const std::string& port) {
        std::vector<std::string> out_nodes, todo = spec.successors(from, port);
        std::set<std::string> seen;
        while (!todo.empty()) {
            std::string n = todo.back();
            todo.pop_back();
            if (!seen.insert(n).second) continue;
            const NodeSpec* ns = spec.find(n);
            if (ns && ns->component == "transform.dedup") {
                for (const auto& s : spec.successors(n, "out")) todo.push_back(s);
                continue;
            }
            out_nodes.push_back(n);
        }
        return out_nodes;
    };
    std::vector<std::string> starts;
    for (const auto& e : entry) {
        const NodeSpec* ns = spec.find(e);
        if (ns && ns->component == "transform.dedup") {
            for (const auto& s : next_nodes(e, "out")) starts.push_back(s);
        } else {
            starts.push_back(e);
        }
    }
    std::sort(starts.begin(), starts.end());
    starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
    if (nodes.empty() || starts.empty()) {
        err << "docpipe extract: " << spec.file.string() << " has no transform after its sources: nothing to extract with\n";
        return 2;
    }

    // One file -> its result lines.
    auto run_file = [&](const fs::path& file) -> std::pair<std::vector<nlohmann::json>, bool> {
        std::vector<nlohmann::json> lines;
        const std::string label = file.string();
        std::error_code ec;
        if (fs::is_directory(file, ec)) return {{problem_line(label, "failed: a folder, not a file (pass the files in it, e.g. DIR/*)")}, false};
        if (!fs::exists(file, ec)) {
            const bool dangling = fs::is_symlink(fs::symlink_status(file, ec));
            return {{problem_line(label, dangling ? "failed: a link to a file that does not exist" : "failed: no such file")}, false};
        }
        // A link is followed, but what it names must be a file: a FIFO blocks the read for
        // ever and /dev/zero never ends.
        if (const fs::file_status status = fs::status(file, ec); !fs::is_regular_file(status))
            return {{problem_line(label, fmt::format("failed: {}, not a regular file; only files are read", special_file_kind(status.type())))},
                    false};
        if (const auto size = fs::file_size(file, ec); !ec && size > options.max_bytes)
            return {{problem_line(label, fmt::format("failed: the file is {} bytes, above the limit of {} MB (--max-mb)", size,
                                                             options.max_bytes / (1024 * 1024)))},
                    false};
        std::ifstream in(file, std::ios::binary);
        if (!in) return {{problem_line(label, "failed: cannot read the file (permissions?)")}, false};
        Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::string name = file.filename().string();
        Document doc = Document::from_bytes(name, media_type_for(name), std::move(bytes));
        doc.attributes["source"] = "extract";
        doc.attributes["filename"] = name;
        doc.attributes["job_id"] = doc.id;
        auto root = std::make_shared<const Document>(std::move(doc));

        struct Item {
            std::string node;
            DocumentPtr doc;
        };
        std::vector<Item> work;
        for (const auto& s : starts) work.push_back({s, root});
        std::set<std::string> reported;  // a document reaching several sinks is printed once
        bool ok = true;
        while (!work.empty()) {
            Item item = std::move(work.back());
            work.pop_back();
            auto it = nodes.find(item.node);
            if (it == nodes.end()) continue;
            ExtractNode& node = *it->second;
            Collector outputs;
            try {
                std::unique_lock<std::mutex> lock(node.call_mutex, std::defer_lock);
                if (!node.spec->descriptor->concurrent_safe) lock.lock();
                node.transform->process(item.doc, outputs);
            } catch (const std::exception& e) {
                lines.push_back(problem_line(label, fmt::format("failed: {}: {}", node.spec->name, e.what())));
                ok = false;
                continue;
            }
            if (outputs.emitted.empty()) {
                // A route, as in `run --once`, not a failure: an email with no claim attachment
                // was read and said so (the exit status counts what could not be read).
                lines.push_back(problem_line(label, outputs.skipped.empty() ? fmt::format("skipped: {} emitted nothing", node.spec->name)
                                                                            : fmt::format("skipped: {}", outputs.skipped)));
                continue;
            }
            // Work is a stack: the emitted documents are taken in reverse so that the first
            // attachment of an email is printed first.
            for (auto e = outputs.emitted.rbegin(); e != outputs.emitted.rend(); ++e) {
                auto& [child, port] = *e;
                std::vector<std::string> next;
                for (const auto& n : next_nodes(node.spec->name, port))
                    if (nodes.count(n)) next.push_back(n);
                if (next.empty()) {
                    if (!reported.insert(child->id).second) continue;
                    const std::string route = child->fields.value("confidence_level", port);
                    lines.push_back(result_line(label, *child, route));
                    continue;
                }
                for (const auto& n : next) work.push_back({n, child});
            }
        }
        return {std::move(lines), ok};
    };

    const unsigned jobs = std::max(1u, std::min<unsigned>(options.jobs ? options.jobs : std::thread::hardware_concurrency(),
                                                           static_cast<unsigned>(files.size())));
    std::vector<std::optional<std::pair<std::vector<nlohmann::json>, bool>>> results(files.size());
    std::mutex mutex;
    std::condition_variable done;
    std::atomic<std::size_t> next{0}, finished{0}, failed{0};
    // On a terminal only (progress.hpp): files done / total, rate, time left, failures.
    ProgressLine progress("docpipe extract", "files", [&] {
        return ProgressCounts{finished.load(), failed.load(), 0, files.size()};
    }, options.progress && files.size() > 1);
    // jthreads: an exception while printing (a full disk) still joins them on the way out.
    std::vector<std::jthread> workers;
    for (unsigned w = 0; w < jobs; ++w)
        workers.emplace_back([&] {
            for (std::size_t i; (i = next.fetch_add(1)) < files.size();) {
                auto r = run_file(files[i]);
                if (!r.second) failed.fetch_add(1);
                finished.fetch_add(1);
                std::lock_guard lock(mutex);
                results[i] = std::move(r);
                done.notify_all();
            }
        });
    // Declared after the workers, so destroyed first: on the way out no file is started.
    struct StopTaking {
        std::atomic<std::size_t>& next;
        std::size_t end;
        ~StopTaking() { next.store(end); }
    } stop_taking{next, files.size()};
    // Print in the order given, as soon as each file's turn is ready.
    bool all_ok = true;
    for (std::size_t i = 0; i < files.size(); ++i) {
        std::unique_lock lock(mutex);
        done.wait(lock, [&] { return results[i].has_value(); });
        for (const auto& line : results[i]->first) {
            out << docpipe::json_text(line) << "\n";
            const std::string route = line.value("route", "");
            if (route.rfind("failed: ", 0) == 0 && line.value("pages", nlohmann::json::array()).empty() && !line.contains("id")) {
                StatusLineGuard above_progress;
                // One line each on the terminal: a file name may hold a newline or an escape
                // sequence (the JSON line on stdout escapes them itself).
                err << fmt::format("docpipe extract: {}: {}\n", one_line(line.value("file", "?")), one_line(route.substr(8))) << std::flush;
            }
        }
        out.flush();
        all_ok = all_ok && results[i]->second;
    }
    for (auto& t : workers) t.join();
    progress.finish();
    if (!options.metrics_file.empty()) {
        std::ofstream metrics_out(options.metrics_file, std::ios::trunc);
        metrics_out << metrics.render_prometheus();
        metrics_out.close();
        if (!metrics_out) {
            err << fmt::format("docpipe extract: cannot write the metrics to {} (--metrics): {}\n", options.metrics_file.string(),
                               std::strerror(errno));
            return 1;
        }
    }
    for (auto& [name, node] : nodes) node->component->stop();
    return all_ok ? 0 : 1;
}

}  // namespace docpipe::core
