// docpipe — command line entry point. CLI11 is included here only (it costs seconds of
// compile time per translation unit).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <oneapi/tbb/global_control.h>

#include "builtin/builtin.hpp"
#include "describe.hpp"
#include "extract.hpp"
#include "pipeline.hpp"
#include "progress.hpp"
#include "runtime.hpp"
#include "service_notify.hpp"

#ifndef DOCPIPE_VERSION
#define DOCPIPE_VERSION "0.0.0"
#endif

namespace fs = std::filesystem;
using namespace docpipe;
using namespace docpipe::core;

namespace {

// Loads plugins from the given directories (pipeline's plugin_paths first, then defaults).
std::shared_ptr<Registry> load_registry(const std::vector<fs::path>& dirs) {
    auto registry = std::make_shared<Registry>();
    registry->add_builtin(builtin_manifest(), "<built into docpipe>");
    for (const auto& d : dirs) registry->load_directory(d);
    return registry;
}

std::vector<fs::path> with_defaults(std::vector<fs::path> dirs) {
    for (auto& d : default_plugin_directories())
        if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
    return dirs;
}

// `first_graph_issue`: where the graph checks' issues start. The file's own problems (YAML,
// keys, types) come first, since graph problems are often their consequences; each group
// reads in file order.
void print_issues(std::vector<Issue> issues, std::size_t first_graph_issue) {
    auto by_position = [](const Issue& a, const Issue& b) { return std::tie(a.line, a.column) < std::tie(b.line, b.column); };
    first_graph_issue = std::min(first_graph_issue, issues.size());
    const auto middle = issues.begin() + static_cast<std::ptrdiff_t>(first_graph_issue);
    std::stable_sort(issues.begin(), middle, by_position);
    std::stable_sort(middle, issues.end(), by_position);
    for (const auto& i : issues) std::cerr << i.format() << "\n";
    std::cerr << fmt::format("{} error(s)\n", issues.size());
}

// Loads and fully checks a pipeline. On error prints every issue and returns nullopt.
// Loads `file` and checks it against the plugins; prints the problems and returns nullopt if
// any. `registry` is loaded for the file's plugin folders, unless it is already set and was
// loaded from those same folders (`loaded_from`): a reload keeps the plugins it has.
std::optional<PipelineSpec> load_checked(const fs::path& file, std::shared_ptr<Registry>& registry,
                                         const std::vector<fs::path>& loaded_from = {}) {
    std::vector<Issue> issues;
    PipelineSpec spec = load_pipeline(file, issues);
    const auto dirs = plugin_directories(spec);
    if (!registry || dirs != loaded_from) registry = load_registry(dirs);
    const std::size_t first_graph_issue = issues.size();
    resolve(spec, *registry, issues);
    if (!issues.empty()) {
        print_issues(issues, first_graph_issue);
        return std::nullopt;
    }
    return spec;
}

int cmd_validate(const fs::path& file) {
    std::shared_ptr<Registry> registry;
    auto spec = load_checked(file, registry);
    if (!spec) return 1;
    std::cout << fmt::format("{}: valid ({} nodes, {} edges)\n", file.string(), spec->nodes.size(), spec->edges.size());
    return 0;
}

int cmd_graph(const fs::path& file) {
    std::shared_ptr<Registry> registry;
    auto spec = load_checked(file, registry);
    if (!spec) return 1;
    std::cout << to_dot(*spec);
    return 0;
}

int cmd_plugins_list(const std::vector<fs::path>& extra, bool failed_only) {
    auto registry = load_registry(with_defaults(extra));
    if (!failed_only) {
        for (const auto& p : registry->plugins()) {
            std::cout << fmt::format("{} {} — {}\n  file: {}\n", p.manifest->package, p.manifest->version, p.manifest->description,
                                     p.path.string());
            for (const auto& c : p.manifest->components)
                std::cout << fmt::format("  {:<24} {:<9} {}\n", c.name, to_string(c.kind), c.summary);
        }
        if (registry->plugins().empty()) std::cout << "no plugins loaded\n";
        std::cout << "searched:";
        for (const auto& d : registry->searched_directories()) std::cout << " " << d;
        std::cout << "\n";
    }
    for (const auto& r : registry->rejected()) std::cout << fmt::format("FAILED {}: {}\n", r.path.string(), r.reason);
    if (failed_only && registry->rejected().empty()) std::cout << "no plugin failed to load\n";
    return 0;
}

int cmd_plugins_describe(const std::vector<fs::path>& extra, const std::string& name, bool json, bool all, bool markdown) {
    auto registry = load_registry(with_defaults(extra));
    if (all) {
        if (json) {  // one array, each entry as `describe NAME --json` prints it
            auto out = nlohmann::json::array();
            for (const auto& component : registry->component_names()) {
                const ComponentDescriptor* d = registry->find(component);
                if (!d) continue;
                auto j = d->to_json();
                j["file"] = registry->provider_of(component).string();
                out.push_back(std::move(j));
            }
            std::cout << docpipe::json_text(out, 2) << "\n";
            return 0;
        }
        if (!markdown) {
            std::cerr << "docpipe plugins describe --all: add --markdown (the reference in docs/components.md) or --json\n";
            return 2;
        }
        std::cout << describe_all_markdown(*registry);
        return 0;
    }
    if (name.empty()) {
        std::cerr << "docpipe plugins describe: name a component (e.g. sink.files), or give --all --markdown\n";
        return 2;
    }
    const ComponentDescriptor* d = registry->find(name);
    if (!d) {
        std::string message = fmt::format("unknown component '{}'", name);
        if (auto near = closest_match(name, registry->component_names())) message += fmt::format(" (did you mean '{}'?)", *near);
        std::cerr << message << "; run 'docpipe plugins list' to see what is installed\n";
        return 1;
    }
    if (json) {
        auto j = d->to_json();
        j["file"] = registry->provider_of(name).string();
        std::cout << docpipe::json_text(j, 2) << "\n";
        return 0;
    }
    if (markdown) {  // its section of docs/components.md
        std::cout << describe_markdown(*d);
        return 0;
    }
    std::cout << fmt::format("{} ({})\n  {}\n  provided by {}\n", d->name, to_string(d->kind), d->summary,
                             registry->provider_of(name).string());
    std::cout << fmt::format("  concurrent calls: {}; health probe: {}\n", d->concurrent_safe ? "allowed" : "no",
                             d->has_health_probe ? "yes" : "no");
    if (!d->output_ports.empty()) {
        std::cout << "  output ports:\n";
        for (const auto& p : d->output_ports) std::cout << fmt::format("    {:<12} {}\n", p.name, p.description);
    }
    std::cout << "  config:\n";
    if (d->config.fields().empty()) std::cout << "    (none)\n";
    for (const auto& f : d->config.fields()) {
        std::string extra_info;
        if (f.is_required()) extra_info += " required";
        if (f.default_json())
            extra_info += " default=" + (f.is_secret() && *f.default_json() != "" ? std::string("******") : f.default_json()->dump());
        if (f.min_value()) extra_info += fmt::format(" min={}", *f.min_value());
        if (f.max_value()) extra_info += fmt::format(" max={}", *f.max_value());
        if (!f.allowed().empty()) {
            std::string list;
            for (const auto& a : f.allowed()) list += (list.empty() ? "" : "|") + a;
            extra_info += " one of " + list;
        }
        if (f.is_secret()) extra_info += " secret";
        std::cout << fmt::format("    {:<16} {:<16}{}\n      {}\n", f.name(), to_string(f.type()), extra_info, f.description());
    }
    // Every node takes a retry policy; its defaults are part of what a component does on failure.
    std::string retry;
    for (const auto& f : retry_spec().fields())
        retry += fmt::format("{}{}={}", retry.empty() ? "" : ", ", f.name(),
                             f.default_json()->is_string() ? f.default_json()->get<std::string>() : f.default_json()->dump());
    std::cout << "  retry (node key `retry:`, defaults): " << retry << "\n";
    return 0;
}

// A reload (SIGHUP) whose file passed load_checked(), waiting for the old graph to drain.
struct ReloadPlan {
    PipelineSpec spec;
    std::shared_ptr<Registry> registry;
};

// TBB's worker threads run plugin code (a sink's per-thread libcurl handle, OpenSSL's
// per-thread state), and the destructors of those thread-locals run when a worker ends.
// Joined once the runtime is gone, the workers end while the plugins (their Registry) and the
// libraries' global state are still there; left to TBB, they end whenever its scheduler
// lets them go, which can be while the main thread is already running the process's exit
// handlers and static destructors. Returns false when TBB could not join them (another part
// of the program still holds a task arena): they are then left as before.
bool join_tbb_workers(oneapi::tbb::task_scheduler_handle& workers) {
    return workers && oneapi::tbb::finalize(workers, std::nothrow);
}

// `docpipe run`: until SIGTERM/SIGINT, or once over what the sources hold (--once). Under
// systemd (Type=notify) it reports READY=1 once started, pings the watchdog while work moves
// (service_notify.hpp), and on SIGHUP reloads the file: validated first (an invalid file
// changes nothing), then the sources stop, the graph drains, and the new graph starts.
// Nothing is lost: what does not drain in time is not acked, so its source delivers it
// again, and dedup and the sinks' ledgers keep it from being delivered twice.
int cmd_run(const fs::path& file, bool once, bool redeliver) {
    // Held from before the first TBB use; joined after the runtime (join_tbb_workers).
    oneapi::tbb::task_scheduler_handle tbb_workers{oneapi::tbb::attach{}};
    // Signals are taken by one thread with sigwait; every other thread (TBB workers, source
    // threads) inherits the blocked mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGUSR1);  // our own wake-up for the signal thread at exit
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    std::shared_ptr<Registry> registry;
    auto spec = load_checked(file, registry);
    if (!spec) return 1;
    std::vector<fs::path> registry_dirs = plugin_directories(*spec);
    RuntimeOptions options;
    options.once = once;
    options.redeliver = redeliver;
    ServiceNotifier notifier;

    PipelineSpec running_spec = *spec;  // to start the old graph again if a reloaded one cannot start
    std::unique_ptr<Runtime> runtime = std::make_unique<Runtime>(std::move(*spec), registry, options);
    try {
        runtime->start();
    } catch (const StartError& e) {
        std::cerr << "docpipe: cannot start: " << e.what() << "\n";
        return 1;
    }

    // Shared with the signal thread, under `mutex`.
    std::mutex mutex;
    Runtime* current = runtime.get();
    std::optional<ReloadPlan> pending;  // a validated reload, waiting for the old graph to drain
    bool stopping = false;
    std::thread signal_thread([&] {
        int stops = 0;
        std::chrono::steady_clock::time_point first_stop;
        int first_signal = 0;
        while (true) {
            int sig = 0;
            if (sigwait(&signals, &sig) != 0) continue;
            if (sig == SIGUSR1) return;
            if (sig == SIGHUP) {
                if (once) {
                    std::cerr << "docpipe: SIGHUP ignored: --once runs do not reload\n";
                    continue;
                }
                std::cerr << "docpipe: SIGHUP received: checking " << file.string() << " before reloading\n";
                std::shared_ptr<Registry> reg;
                std::vector<fs::path> dirs;
                {
                    std::lock_guard lock(mutex);
                    reg = registry;
                    dirs = registry_dirs;
                }
                auto fresh = load_checked(file, reg, dirs);  // reg: reused when the plugin folders are the same
                if (!fresh) {
                    std::cerr << "docpipe: reload refused: " << file.string()
                              << " is not valid (problems above); the running pipeline goes on unchanged\n";
                    continue;
                }
                std::lock_guard lock(mutex);
                if (stopping || !current) continue;
                std::cerr << "docpipe: reloading: sources stop and the graph drains, then the new graph starts\n";
                notifier.reloading("reloading " + file.filename().string());
                pending = ReloadPlan{std::move(*fresh), std::move(reg)};
                current->request_stop();
                continue;
            }
            // GNU `timeout` (and a shell killing a process group) delivers one SIGTERM twice:
            // to the process and to its group, microseconds apart. That is one request to stop,
            // not a second one asking to skip the drain (which lost the --once summary).
            if (stops == 1 && sig == first_signal && std::chrono::steady_clock::now() - first_stop < std::chrono::seconds(1)) {
                std::cerr << "docpipe: the same stop signal again within a second: still draining (send it again later to exit now)\n";
                continue;
            }
            if (++stops == 1) {
                first_stop = std::chrono::steady_clock::now();
                first_signal = sig;
                std::cerr << "docpipe: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                          << " received: stopping sources and draining (send again to exit now)\n";
                notifier.stopping("stopping: draining documents in flight");
                std::lock_guard lock(mutex);
                stopping = true;
                pending.reset();
                if (current) current->request_stop();
            } else {
                std::cerr << "docpipe: second signal: exiting without draining\n";
                std::_Exit(130);
            }
        }
    });

    int code = 0;
    while (true) {
        {
            ServiceWatch watch(notifier, *runtime);
            notifier.ready(watch.status_text());
            // --once on a terminal: documents done of the total (done + in flight + what the
            // sources still hold), failures, rate and time left.
            ProgressLine progress("docpipe run", "docs", [rt = runtime.get()] {
                const RunSummary s = rt->summary();
                std::optional<std::uint64_t> total;
                if (const auto waiting = rt->source_backlog()) total = s.completed + s.failed + s.in_flight + *waiting;
                return ProgressCounts{s.completed + s.failed, s.failed, s.in_flight, total};
            }, once);
            code = runtime->run();
        }
        std::optional<ReloadPlan> plan;
        {
            std::lock_guard lock(mutex);
            plan = std::move(pending);
            pending.reset();
            if (!plan || code == 3) current = nullptr;
        }
        if (!plan) break;
        if (code == 3) {
            // Documents are still inside a component: the old graph cannot be taken down
            // safely. Exit; systemd (Restart=on-failure) starts the new file, and the sources
            // deliver again what was not acked.
            std::cerr << "docpipe: reload: the old graph did not drain in time; exiting so that the service restarts with the new file\n";
            break;
        }
        runtime.reset();  // drained: its admin server releases the port for the new one
        std::unique_ptr<Runtime> next;
        try {
            next = std::make_unique<Runtime>(plan->spec, plan->registry, options);
            next->start();
            running_spec = std::move(plan->spec);
            std::lock_guard lock(mutex);
            registry = plan->registry;
            registry_dirs = plugin_directories(running_spec);
            std::cerr << "docpipe: reloaded " << file.string() << "\n";
        } catch (const StartError& e) {
            std::cerr << "docpipe: reload: the new pipeline could not start: " << e.what() << "; starting the previous one again\n";
            next.reset();
            try {
                next = std::make_unique<Runtime>(running_spec, registry, options);
                next->start();
            } catch (const StartError& again) {
                std::cerr << "docpipe: the previous pipeline could not start again either: " << again.what() << "\n";
                pthread_kill(signal_thread.native_handle(), SIGUSR1);
                signal_thread.join();
                return 1;
            }
        }
        runtime = std::move(next);
        std::lock_guard lock(mutex);
        current = runtime.get();
        if (stopping) current->request_stop();  // SIGTERM arrived during the swap
    }
    if (once) std::cout << runtime->summary().format();
    pthread_kill(signal_thread.native_handle(), SIGUSR1);
    signal_thread.join();
    if (code == 3) {
        // Something is still running inside a component; do not wait for it.
        std::cout.flush();
        std::_Exit(code);
    }
    runtime.reset();
    join_tbb_workers(tbb_workers);
    return code;
}

int cmd_extract(fs::path file, const std::vector<fs::path>& inputs, unsigned jobs, std::uint64_t max_mb, const fs::path& metrics_file,
                const char* argv0) {
    if (file.empty()) {
        std::error_code ec;
        fs::path self = fs::read_symlink("/proc/self/exe", ec);
        if (ec) self = argv0;
        file = default_claims_pipeline(self);
        if (file.empty()) {
            std::cerr << "docpipe extract: no -c PIPELINE given and the shipped claims-local.yaml was not found "
                         "(set DOCPIPE_PIPELINES to its folder)\n";
            return 2;
        }
    }
    oneapi::tbb::task_scheduler_handle tbb_workers{oneapi::tbb::attach{}};  // see join_tbb_workers
    std::shared_ptr<Registry> registry;
    auto spec = load_checked(file, registry);
    if (!spec) return 2;
    // A missing path or a folder among the arguments is reported for itself (a JSON line
    // with route "failed: ..." and a message here); the other files are still read.
    ExtractOptions options;
    options.jobs = jobs;
    options.max_bytes = max_mb * 1024 * 1024;
    options.metrics_file = metrics_file;
    options.progress = true;  // drawn only when stderr is a terminal
    const int code = extract_files(*spec, registry, inputs, std::cout, std::cerr, options);
    join_tbb_workers(tbb_workers);
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    // Before any plugin is loaded: libgomp (pulled in by Tesseract) reads this once, when it
    // is loaded. One OpenMP thread per engine; parallelism comes from node concurrency.
    setenv("OMP_THREAD_LIMIT", "1", 0);
    // A peer that hung up (Redis restarted, an IMAP server dropping an IDLE, a browser leaving
    // the admin API) must be a write error the component handles, not a signal that kills the
    // service: hiredis and OpenSSL write with write(2), which raises SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"docpipe — plugin-based document pipeline runtime"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(DOCPIPE_VERSION));

    fs::path file;
    bool once = false, redeliver = false, dot = false, json = false, failed_only = false, describe_all = false, markdown = false;
    std::string component;
    std::vector<fs::path> plugin_dirs;

    auto* validate = app.add_subcommand("validate", "Check a pipeline file; print every error as FILE:LINE:COL");
    validate->add_option("file", file, "Pipeline YAML")->required();

    auto* graph = app.add_subcommand("graph", "Print the pipeline graph");
    graph->add_option("file", file, "Pipeline YAML")->required();
    graph->add_flag("--dot", dot, "Graphviz DOT output (the only format for now)");

    auto* run = app.add_subcommand("run", "Run a pipeline until SIGTERM/SIGINT (or once with --once)");
    run->add_option("-c,--config", file, "Pipeline YAML")->required();
    run->add_flag("--once", once, "Process what the sources hold now, print a summary and exit (1 if any document failed or was only partly delivered, 2 if none did but a source "
                                      "could not read its input)");
    run->add_flag("--redeliver", redeliver,
                  "With --once, for development: process and send documents again although dedup or a sink's delivery ledger "
                  "says they were handled (never use it against a production NCB)")
        ->needs(run->get_option("--once"));

    std::vector<fs::path> inputs;
    unsigned jobs = 0;
    std::uint64_t extract_max_mb = 100;
    fs::path extract_metrics;
    auto* extract = app.add_subcommand("extract",
                                       "Run a pipeline's extraction path (no sources, no sinks) on files; print one JSON line per document");
    extract->add_option("-c,--config", file, "Pipeline YAML (default: the shipped claims-local.yaml)");
    extract->add_option("-j,--jobs", jobs, "Files worked on at once (default: one per CPU)");
    // Up to a terabyte: the byte count (MB x 1024 x 1024) must not wrap.
    extract->add_option("--max-mb", extract_max_mb, "Larger files fail with the reason, unread (1 to 1048576)")
        ->default_val(100)
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 20));
    extract->add_option("--metrics", extract_metrics,
                        "At the end, write the run's counters to FILE in Prometheus text (docpipe_ocr_pages_total: page "
                        "readings; docpipe_ocr_turned_readings_total: readings of pages lying sideways; ...)");
    extract->add_option("files", inputs, "Images, PDFs or .eml files")->required();

    auto* plugins = app.add_subcommand("plugins", "Inspect installed plugins");
    plugins->require_subcommand(1);
    auto* list = plugins->add_subcommand("list", "List plugin packages and their components");
    list->add_flag("--failed", failed_only, "Only list files that failed to load, with the reason");
    list->add_option("--plugin-path", plugin_dirs, "Extra plugin folder, searched first (repeatable)");
    auto* describe = plugins->add_subcommand("describe", "Show a component's config, ports and properties");
    describe->add_option("name", component, "Component name, e.g. sink.files");
    describe->add_flag("--json", json, "Machine-readable output");
    describe->add_flag("--all", describe_all, "Every installed component (with --markdown: the reference in docs/components.md)");
    describe->add_flag("--markdown", markdown, "Markdown output, as in docs/components.md");
    describe->add_option("--plugin-path", plugin_dirs, "Extra plugin folder, searched first (repeatable)");

    app.footer("Exit status: 0 done; 1 the pipeline is invalid, or (run --once, extract) a document failed; 2 a usage error, "
               "or (run --once) a source could not read its input; 3 stopped by a signal before everything was done.");
    // A word that is no command: CLI11 says "A subcommand is required", which reads as if
    // none had been typed. Named here, with the command it was likely meant to be.
    const auto unknown_command = [&](int at, const std::vector<std::string>& commands, const char* where) -> std::optional<int> {
        if (argc <= at || argv[at][0] == '-' || std::find(commands.begin(), commands.end(), argv[at]) != commands.end()) return std::nullopt;
        std::string message = fmt::format("docpipe{}: unknown command '{}'", where, argv[at]);
        if (auto near = closest_match(argv[at], commands)) message += fmt::format(" (did you mean '{}'?)", *near);
        std::string list;
        for (const auto& c : commands) list += (list.empty() ? "" : ", ") + c;
        std::cerr << message << "; commands: " << list << " (docpipe --help)\n";
        return 2;
    };
    if (auto rc = unknown_command(1, {"validate", "graph", "run", "extract", "plugins"}, "")) return *rc;
    if (argc > 1 && std::string_view(argv[1]) == "plugins")
        if (auto rc = unknown_command(2, {"list", "describe"}, " plugins")) return *rc;
    try {
        app.parse(argc, argv);
    } catch (const CLI::RequiredError& e) {
        // CLI11 checks what is required before what it does not know: `run --no-such-flag`
        // answered "--config is required", hiding the typo. The unknown words come first.
        const auto unknown = app.remaining(true);
        if (unknown.empty()) return app.exit(e) == 0 ? 0 : 2;
        std::string words;
        for (const auto& w : unknown) words += (words.empty() ? "" : " ") + w;
        std::cerr << fmt::format("docpipe: not expected: {} (and {}); see docpipe --help\n", words, e.what());
        return 2;
    } catch (const CLI::ParseError& e) {
        // CLI11's own codes (105-114) mean nothing to a caller: a usage error is 2.
        return app.exit(e) == 0 ? 0 : 2;
    }

    try {
        if (*validate) return cmd_validate(file);
        if (*graph) return cmd_graph(file);
        if (*run) return cmd_run(file, once, redeliver);
        if (*extract) return cmd_extract(file, inputs, jobs, extract_max_mb, extract_metrics, argv[0]);
        if (*list) return cmd_plugins_list(plugin_dirs, failed_only);
        if (*describe) return cmd_plugins_describe(plugin_dirs, component, json, describe_all, markdown);
    } catch (const std::exception& e) {
        std::cerr << "docpipe: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
