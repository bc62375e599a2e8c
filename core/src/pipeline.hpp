// Pipeline definition: YAML file -> substituted tree -> checked PipelineSpec.
//
// Loading never stops at the first problem: every issue found is collected (with
// FILE:LINE:COL and the node path) so `docpipe validate` can report them all at once.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "docpipe/component.hpp"
#include "docpipe/registry.hpp"

namespace docpipe::core {

struct Issue {
    std::string file;
    int line = 0, column = 0;
    std::string path;
    std::string message;
    std::string format() const;  // "FILE:LINE:COL: PATH: MESSAGE"
};

struct RetryPolicy {
    int attempts = 3;  // total tries, the first included
    std::chrono::milliseconds initial_backoff{200};
    std::chrono::milliseconds max_backoff{30'000};
    double multiplier = 2.0;
    double jitter = 0.2;  // +-20 %
    // How long a sink that answers SinkResult::hold (its endpoint is down, not the
    // document's fault) is waited for before the document is dead-lettered.
    std::chrono::milliseconds hold_for{std::chrono::hours(1)};
    // Wait before try number `next_attempt` (2 = first retry), without jitter.
    std::chrono::milliseconds backoff_for(int next_attempt) const;
};

struct NodeSpec {
    std::string name;
    std::string component;
    int concurrency = 1;
    // Sinks: record each accepted document in the state store's delivery ledger and skip
    // a document the ledger already holds (effectively-once across redeliveries).
    bool ledger = true;
    RetryPolicy retry;
    YAML::Node config_node;  // the substituted `config:` mapping (may be null)
    YAML::Mark mark;         // where the node is declared
    const ComponentDescriptor* descriptor = nullptr;  // set by resolve(); owned by the Registry
    Config config;                                     // set by resolve()
};

struct EdgeSpec {
    std::string from, port, to;
    YAML::Mark from_mark, mark;  // where the sending and the receiving node are named
};

struct PipelineSpec {
    std::filesystem::path file;
    std::string text_hash;  // SHA-256 prefix of the file's bytes, for job records
    std::vector<std::filesystem::path> plugin_paths;  // relative ones resolved against the file's folder
    std::size_t max_in_flight = 64;
    std::map<std::string, nlohmann::json> sections;   // validated state/admin/logging/runtime values
    std::vector<NodeSpec> nodes;                      // in declaration order
    std::vector<EdgeSpec> edges;
    // plugin_paths entries that are not folders, with where they were written: named when a
    // component cannot be found, since that is the usual reason.
    std::vector<std::pair<std::filesystem::path, YAML::Mark>> missing_plugin_paths;
    // The file's top level is broken (an unknown top-level key, no nodes or no edges): the
    // graph checks would only report consequences of it, so resolve() leaves them out.
    bool structure_broken = false;
    YAML::Mark admin_mark;  // where the admin section is, for issues about its values
    // Where a ${...} could not be substituted (line, column): another issue at the same place
    // is its consequence (the raw reference failing the field's type check) and is left out.
    std::set<std::pair<int, int>> unresolved_references;

    const NodeSpec* find(std::string_view name) const;
    // Successor node names for (node, port), in edge order.
    std::vector<std::string> successors(std::string_view node, std::string_view port) const;
    std::chrono::milliseconds runtime_duration(const std::string& key) const;
    std::string section_string(const std::string& section, const std::string& key) const;
};

// The specs of the top-level sections (self-describing, like components' configs).
const ConfigSpec& state_section_spec();
const ConfigSpec& admin_section_spec();
const ConfigSpec& logging_section_spec();
const ConfigSpec& runtime_section_spec();
const ConfigSpec& retry_spec();

// Replaces ${VAR}, ${VAR:-default} and ${file:PATH} in `text`. `$${` is a literal "${".
// Returns nullopt and sets `error` when a variable is unset without default or a file
// cannot be read.
std::optional<std::string> substitute(const std::string& text, std::string& error);

// The folder relative paths in `file` are relative to (absolute).
std::filesystem::path pipeline_folder(const std::filesystem::path& file);

// Step 1: parse and substitute; checks the document's shape and top-level keys.
// Issues are appended; the returned spec is partial when there are issues.
PipelineSpec load_pipeline(const std::filesystem::path& file, std::vector<Issue>& issues);
// The same over text already in memory (the fuzz target, tools); `file` names it in issues
// and anchors its relative paths.
PipelineSpec load_pipeline_text(const std::filesystem::path& file, const std::string& text, std::vector<Issue>& issues);

// Plugin directories for this pipeline: its plugin_paths, then the defaults.
std::vector<std::filesystem::path> plugin_directories(const PipelineSpec& spec);

// Step 2: resolve components against the registry, validate every node's config against
// its spec, and check the graph (edges, ports, cycles, reachability).
void resolve(PipelineSpec& spec, const Registry& registry, std::vector<Issue>& issues);

// Graphviz rendering of the pipeline.
std::string to_dot(const PipelineSpec& spec);

}  // namespace docpipe::core
