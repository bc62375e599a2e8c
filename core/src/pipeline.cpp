#include "pipeline.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <tuple>
#include <sstream>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "admin_server.hpp"
#include "docpipe/detail/yaml_config.hpp"
#include "state/store.hpp"

namespace docpipe::core {

namespace fs = std::filesystem;
using detail::column_of;
using detail::line_of;

std::string Issue::format() const {
    std::string where = file;
    if (line > 0) where += fmt::format(":{}:{}", line, column);
    return path.empty() ? fmt::format("{}: {}", where, message) : fmt::format("{}: {}: {}", where, path, message);
}

std::chrono::milliseconds RetryPolicy::backoff_for(int next_attempt) const {
    double ms = static_cast<double>(initial_backoff.count());
    for (int i = 2; i < next_attempt; ++i) ms *= multiplier;
    ms = std::min(ms, static_cast<double>(max_backoff.count()));
    return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

// ---- section specs -----------------------------------------------------------------------

const ConfigSpec& state_section_spec() {
    static const ConfigSpec spec{
        Field::enumeration("backend", {"sqlite", "redis", "memory"}).default_value("sqlite")
            .describe("Where jobs, dead letters, dedup keys and checkpoints live (memory: lost at exit)"),
        Field::string("path").path().default_value("./var/docpipe-state.db")
            .describe("SQLite database file (relative paths are relative to the working directory)"),
        Field::duration("ledger_ttl").default_value("30d").min(1)
            .describe("How long sinks remember which documents they accepted (redeliveries within it are not re-sent)"),
        Field::duration("outage_horizon").default_value("10m").min(1)
            .describe("How long documents wait for an unavailable state store (sources pause meanwhile) before they fail; "
                      "an outage does not use up a document's retries"),
        Field::string("url").default_value("redis://127.0.0.1:6379/0").secret()
            .describe("Redis server for backend redis: redis://[:password@]host:port/db"),
    };
    return spec;
}

const ConfigSpec& admin_section_spec() {
    static const ConfigSpec spec{
        Field::boolean("enabled").default_value(true).describe("Serve the admin HTTP API"),
        Field::string("listen").default_value("127.0.0.1:8080").describe("host:port of the admin HTTP server"),
        Field::string_list("api_keys").secret()
            .describe("Keys accepted in X-API-Key / Authorization: Bearer, each a string or {label, key} (the label names "
                      "who acted in the review UI's audit trail); empty keys are ignored. None on a loopback "
                      "address: a random key is generated into key_file"),
        Field::string("key_file").path().describe("Where a generated key is written (default: admin.key in the state folder: the "
                                                  "SQLite file's; with redis or memory $DOCPIPE_STATE_DIR, else var/ beside the pipeline)"),
        Field::string("approved_node").describe("Node that documents approved in the review queue are sent to (e.g. the NCB sink)"),
        Field::boolean("protect_metrics").default_value(true).describe("Require an API key for /metrics too"),
        Field::number("rate_limit_per_second").default_value(20).min(0.001).describe("Requests per second per client address"),
        Field::integer("rate_limit_burst").default_value(40).min(1).describe("Requests a client may make at once"),
        Field::integer("max_body_bytes").default_value(1048576).min(1024).describe("Larger request bodies get 413"),
        Field::boolean("protect_health_detailed").default_value(false)
            .describe("Require an API key for /health/detailed (/health and /health/ready stay open)"),
        Field::duration("request_head_timeout").default_value("5s").min(0.1)
            .describe("A connection must send its whole request head within this, or it is closed"),
        Field::duration("keep_alive_idle_timeout").default_value("5s").min(0.1)
            .describe("An idle kept-alive connection is closed after this"),
        Field::integer("max_connections_per_client").default_value(32).min(1)
            .describe("Open connections per client address; more are answered 503 and closed"),
        Field::integer("max_connections").default_value(512).min(1).describe("Open connections in all; more are answered 503 and closed"),
        Field::duration("refusal_log_interval").default_value("10s").min(0)
            .describe("Refused requests (401/403/429) are logged at most once per client address per interval"),
    };
    return spec;
}

const ConfigSpec& logging_section_spec() {
    static const ConfigSpec spec{
        Field::enumeration("level", {"trace", "debug", "info", "warn", "error"}).default_value("info")
            .describe("Lowest level written"),
        Field::enumeration("format", {"text", "json"}).default_value("text")
            .describe("text for people, json (one object per line) for log collectors"),
    };
    return spec;
}

const ConfigSpec& runtime_section_spec() {
    static const ConfigSpec spec{
        Field::duration("drain_timeout").default_value("30s").min(0)
            .describe("On SIGTERM/SIGINT, how long in-flight documents may take to finish"),
        Field::duration("stuck_after").default_value("60s").min(0.001)
            .describe("Log a document that stays this long in one node"),
        Field::duration("poll_wait").default_value("500ms").min(0.001)
            .describe("Longest a source poll blocks before the runtime checks for shutdown"),
    };
    return spec;
}

const ConfigSpec& retry_spec() {
    static const ConfigSpec spec{
        Field::integer("attempts").default_value(3).min(1).max(100).describe("Total tries, the first included"),
        Field::duration("initial_backoff").default_value("200ms").min(0).describe("Wait before the first retry"),
        Field::duration("max_backoff").default_value("30s").min(0).describe("Upper bound of one wait"),
        Field::number("multiplier").default_value(2.0).min(1).describe("Growth of the wait per retry"),
        Field::number("jitter").default_value(0.2).min(0).max(1).describe("Random +- share of each wait"),
        Field::duration("hold_for").default_value("1h").min(0).describe(
            "Sinks only: how long to wait for an endpoint that is down (503 for a while, credentials refused, "
            "circuit open) before the document is dead-lettered; these waits do not use up attempts"),
    };
    return spec;
}

// ---- substitution ------------------------------------------------------------------------

std::optional<std::string> substitute(const std::string& text, std::string& error) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        if (text.compare(i, 3, "$${") == 0) {
            out += "${";
            i += 3;
            continue;
        }
        if (text.compare(i, 2, "${") != 0) {
            out += text[i++];
            continue;
        }
        // The matching '}': references nest, as in ${file:${CREDENTIALS_DIRECTORY}/ncb-key}.
        std::size_t end = std::string::npos;
        for (std::size_t j = i + 2, depth = 1; j < text.size(); ++j) {
            if (text.compare(j, 2, "${") == 0) {
                ++depth;
                ++j;
            } else if (text[j] == '}' && --depth == 0) {
                end = j;
                break;
            }
        }
        if (end == std::string::npos) {
            error = fmt::format("unterminated '${{' at offset {} (write $${{ for a literal)", i);
            return std::nullopt;
        }
        std::string expr = text.substr(i + 2, end - i - 2);
        if (expr.rfind("file:", 0) == 0) {
            std::string path = expr.substr(5);
            if (path.find("${") != std::string::npos) {  // the folder from the environment (systemd credentials)
                auto expanded = substitute(path, error);
                if (!expanded) return std::nullopt;
                path = *expanded;
            }
            std::error_code ec;
            const auto status = std::filesystem::status(path, ec);
            if (std::filesystem::is_directory(status)) {  // opens fine on Linux and reads as nothing
                error = fmt::format("'{}' named by ${{file:...}} is a folder, not a file: name the file that holds the value", path);
                return std::nullopt;
            }
            // A named pipe would block validation until something writes to it, and /dev/zero
            // would be read until memory runs out: a secret is a small regular file.
            if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
                error = fmt::format("'{}' named by ${{file:...}} is not a regular file (a pipe, socket or device): name the file "
                                    "that holds the value", path);
                return std::nullopt;
            }
            static constexpr std::uintmax_t kMostSecretBytes = 1 << 20;
            if (const auto size = std::filesystem::file_size(path, ec); !ec && size > kMostSecretBytes) {
                error = fmt::format("'{}' named by ${{file:...}} is {} bytes; a value read from a file may be at most {} bytes "
                                    "(a key or a service account's JSON is a few KB): is it the right file?", path, size, kMostSecretBytes);
                return std::nullopt;
            }
            std::ifstream in(path, std::ios::binary);
            if (!in) {
                error = fmt::format("cannot read secret file '{}' named by ${{file:...}}", path);
                return std::nullopt;
            }
            std::stringstream content;
            content << in.rdbuf();
            std::string value = content.str();
            while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
            out += value;
        } else {
            std::string name = expr, fallback;
            bool has_default = false;
            if (auto pos = expr.find(":-"); pos != std::string::npos) {
                name = expr.substr(0, pos);
                fallback = expr.substr(pos + 2);
                has_default = true;
            }
            static const std::regex kName("[A-Za-z_][A-Za-z0-9_]*");
            if (!std::regex_match(name, kName)) {
                error = fmt::format("'${{{}}}' is not a valid variable reference (use ${{NAME}}, ${{NAME:-default}} or ${{file:/path}})", expr);
                return std::nullopt;
            }
            const char* value = std::getenv(name.c_str());
            if (value && *value) out += value;
            else if (has_default) {
                auto expanded = substitute(fallback, error);  // a default may hold references too, used only when needed
                if (!expanded) return std::nullopt;
                out += *expanded;
            }
            else {
                // Set but empty counts as unset (as ${NAME:-default} does in a shell); say which.
                error = fmt::format("environment variable '{}' is {} and has no default (set it, or write ${{{}:-default}})", name,
                                    value ? "set but empty" : "not set", name);
                return std::nullopt;
            }
        }
        i = end + 1;
    }
    return out;
}

namespace {

// The one rule for relative paths in a pipeline: relative to the pipeline file's folder
// (like plugin_paths, Compose and systemd). Applied to every field declared Field::path().
void absolutize_paths(const ConfigSpec& spec, nlohmann::json& values, const fs::path& base) {
    for (const auto& f : spec.fields()) {
        if (!f.is_path() || !values.contains(f.name()) || !values[f.name()].is_string()) continue;
        const std::string text = values[f.name()].get<std::string>();
        if (text.empty()) continue;  // "" means "not set" for optional paths
        const fs::path given(text);
        if (given.is_relative()) values[f.name()] = (base / given).lexically_normal().string();
    }
}

}  // namespace

fs::path pipeline_folder(const fs::path& file) {
    std::error_code ec;
    const fs::path absolute = fs::absolute(file, ec);
    return (ec ? file : absolute).parent_path();
}

namespace {

struct Loader {
    const fs::path& file;
    std::vector<Issue>& issues;
    std::set<std::pair<int, int>> unresolved;  // where a ${...} could not be substituted

    void add(const YAML::Mark& mark, std::string path, std::string message) {
        issues.push_back({file.string(), line_of(mark), column_of(mark), std::move(path), std::move(message)});
    }
    void add_all(const std::vector<ConfigIssue>& found) {
        for (const auto& i : found) issues.push_back({file.string(), i.line, i.column, i.path, i.message});
    }

    // An alias (*name) stands for its anchor's (&name) whole value, so a few lines of nested
    // aliases expand to billions of values, and every walk of the tree below would run for
    // hours. The values are counted as those walks see them, up to a bound no pipeline nears;
    // the mark is where the count passed it. An alias inside its own anchor (&a {k: *a})
    // nests for ever: the walk stops at a depth no pipeline nears (it ran off the stack and
    // took the process down).
    static constexpr std::size_t kMaxValues = 100000;
    static constexpr int kMaxDepth = 200;
    struct TooFar {
        YAML::Mark mark;
        bool too_deep = false;
    };
    std::optional<TooFar> expands_too_far(const YAML::Node& node, std::size_t& count, int depth = 0) {
        if (++count > kMaxValues) return TooFar{node.Mark(), false};
        if (depth > kMaxDepth) return TooFar{node.Mark(), true};
        if (node.IsSequence()) {
            for (const auto& item : node)
                if (auto far = expands_too_far(item, count, depth + 1)) return far;
        } else if (node.IsMap()) {
            for (const auto& kv : node)
                if (auto far = expands_too_far(kv.second, count, depth + 1)) return far;
        }
        return std::nullopt;
    }

    // yaml-cpp keeps both entries of a repeated key (lookups find one, iteration both): a
    // node named twice would be built twice. Every map at every depth is checked.
    void check_duplicates(const YAML::Node& node, const std::string& path) {
        if (node.IsSequence()) {
            for (std::size_t i = 0; i < node.size(); ++i) check_duplicates(node[i], fmt::format("{}[{}]", path, i));
        } else if (node.IsMap()) {
            std::map<std::string, YAML::Mark> seen;
            for (const auto& kv : node) {
                const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
                const std::string here = path.empty() ? key : path + "." + key;
                if (!key.empty()) {
                    auto [it, fresh] = seen.emplace(key, kv.first.Mark());
                    if (!fresh)
                        add(kv.first.Mark(), here,
                            fmt::format("duplicate key '{}' (first at line {}, column {}): YAML would keep only one of them; "
                                        "rename or remove one", key, it->second.line + 1, it->second.column + 1));
                }
                check_duplicates(kv.second, here);
            }
        }
    }

    // YAML 1.1's merge key ("<<: *defaults", or a list of aliases), which yaml-cpp reads as an
    // ordinary key named "<<": the mapping's own keys win, then each merged mapping's in
    // order, as Compose and most YAML tools read it. A mapping shared through an alias is
    // merged once; the second visit finds no "<<" left.
    void expand_merge_keys(YAML::Node node, const std::string& path) {
        if (node.IsSequence()) {
            for (std::size_t i = 0; i < node.size(); ++i) expand_merge_keys(node[i], fmt::format("{}[{}]", path, i));
            return;
        }
        if (!node.IsMap()) return;
        std::vector<YAML::Node> merges;
        std::set<std::string> own;
        for (const auto& kv : node) {
            if (!kv.first.IsScalar()) continue;
            if (kv.first.Scalar() == "<<" && kv.first.Tag() != "!") merges.push_back(kv.second);
            else own.insert(kv.first.Scalar());
        }
        if (!merges.empty()) {
            const std::string here = path.empty() ? "<<" : path + ".<<";
            for (const auto& merge : merges) {
                std::vector<YAML::Node> sources;
                if (merge.IsMap()) sources.push_back(merge);
                else if (merge.IsSequence())
                    for (const auto& item : merge) sources.push_back(item);
                for (const auto& source : sources) {
                    expand_merge_keys(source, here);  // a merged mapping may merge others
                    if (!source.IsMap()) {
                        add(source.Mark(), here, "a merge key takes a mapping or a list of mappings (e.g. <<: *defaults)");
                        continue;
                    }
                    // The merged key node itself, so its problems keep the anchor's line:column.
                    for (const auto& kv : source)
                        if (kv.first.IsScalar() && own.insert(kv.first.Scalar()).second) node.force_insert(kv.first, kv.second);
                }
                if (!merge.IsMap() && !merge.IsSequence())
                    add(merge.Mark(), here, "a merge key takes a mapping or a list of mappings (e.g. <<: *defaults)");
            }
            while (node.remove("<<")) {
            }
        }
        for (auto kv : node) {
            const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
            expand_merge_keys(kv.second, path.empty() ? key : path + "." + key);
        }
    }

    void substitute_tree(YAML::Node node, const std::string& path) {
        if (node.IsScalar()) {
            const std::string& text = node.Scalar();
            if (text.find("${") == std::string::npos) return;
            // A value that is one reference and nothing else ("${TIMEOUT}", quoted or not)
            // takes the type its field wants: quoting it in flow style must not make 90 a string.
            const bool whole = text.rfind("${", 0) == 0 && text.find("${", 2) == std::string::npos && text.back() == '}' &&
                               text.find('}') == text.size() - 1;
            std::string error;
            if (auto value = substitute(text, error)) {
                node = *value;
                if (whole) node.SetTag("?");
            } else {
                add(node.Mark(), path, error);
                unresolved.emplace(line_of(node.Mark()), column_of(node.Mark()));
            }
        } else if (node.IsSequence()) {
            for (std::size_t i = 0; i < node.size(); ++i) substitute_tree(node[i], fmt::format("{}[{}]", path, i));
        } else if (node.IsMap()) {
            for (auto kv : node) {
                std::string key = kv.first.Scalar();
                substitute_tree(kv.second, path.empty() ? key : path + "." + key);
            }
        }
    }

    void check_keys(const YAML::Node& map, const std::vector<std::string>& known, const std::string& path) {
        for (const auto& kv : map) {
            std::string key = kv.first.Scalar();
            if (std::find(known.begin(), known.end(), key) != known.end()) continue;
            std::string message = fmt::format("unknown key '{}'", key);
            if (auto near = closest_match(key, known)) message += fmt::format(" (did you mean '{}'?)", *near);
            else {
                std::string list;
                for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
                message += "; expected one of: " + list;
            }
            add(kv.first.Mark(), path.empty() ? key : path + "." + key, message);
        }
    }

    void parse_node(PipelineSpec& spec, const YAML::Node& key, const YAML::Node& value) {
        NodeSpec node;
        node.name = key.Scalar();
        node.mark = key.Mark();
        const std::string path = "nodes." + node.name;
        static const std::regex kNodeName("[A-Za-z0-9_-]+");
        if (!std::regex_match(node.name, kNodeName))
            add(key.Mark(), path, "node names may use letters, digits, '_' and '-' only ('.' separates a port in edges)");
        if (!value.IsMap()) {
            add(value.IsDefined() ? value.Mark() : key.Mark(), path, "expected a mapping with at least 'component:'");
            spec.nodes.push_back(std::move(node));
            return;
        }
        check_keys(value, {"component", "config", "concurrency", "retry", "ledger", "description"}, path);
        if (value["ledger"]) {
            auto parsed = detail::yaml_to_json(value["ledger"]);
            if (!parsed.is_boolean())
                add(value["ledger"].Mark(), path + ".ledger", "expected true or false");
            else
                node.ledger = parsed.get<bool>();
        }
        if (!value["component"] || !value["component"].IsScalar())
            add(value.Mark(), path + ".component", "missing required key 'component' (e.g. component: sink.files)");
        else
            node.component = value["component"].Scalar();
        if (value["concurrency"] && !value["concurrency"].IsNull()) {  // empty: the default
            const YAML::Node c = value["concurrency"];
            auto parsed = detail::yaml_to_json(c);
            if (!parsed.is_number_integer() || parsed.get<std::int64_t>() < 1 || parsed.get<std::int64_t>() > 256)
                add(c.Mark(), path + ".concurrency", fmt::format("expected an integer from 1 to 256, got '{}'",
                                                                 c.IsScalar() ? c.Scalar() : std::string("a collection")));
            else
                node.concurrency = static_cast<int>(parsed.get<std::int64_t>());
        }
        std::vector<ConfigIssue> found;
        auto retry = detail::validate_config(retry_spec(), value["retry"], path + ".retry", key.Mark(), found);
        add_all(found);
        if (found.empty()) {
            node.retry.attempts = static_cast<int>(retry["attempts"].get<std::int64_t>());
            node.retry.initial_backoff = std::chrono::milliseconds(retry["initial_backoff"].get<std::int64_t>());
            node.retry.max_backoff = std::chrono::milliseconds(retry["max_backoff"].get<std::int64_t>());
            node.retry.multiplier = retry["multiplier"].get<double>();
            node.retry.jitter = retry["jitter"].get<double>();
            node.retry.hold_for = std::chrono::milliseconds(retry["hold_for"].get<std::int64_t>());
            // max_backoff caps every wait: one under the first wait would quietly shorten it.
            if (node.retry.max_backoff < node.retry.initial_backoff) {
                const YAML::Node r = value["retry"];
                add(r["max_backoff"] ? r["max_backoff"].Mark() : r.Mark(), path + ".retry.max_backoff",
                    fmt::format("{} is under initial_backoff ({}): it caps every wait, the first included; raise it or "
                                "lower initial_backoff", r["max_backoff"] ? r["max_backoff"].Scalar() : "the default",
                                r["initial_backoff"] ? r["initial_backoff"].Scalar() : "the default"));
            }
        }
        // Assigning a missing key's (invalid) node would throw; a default Node reads as "no config".
        if (value["config"]) node.config_node = value["config"];
        spec.nodes.push_back(std::move(node));
    }

    void parse_edge(PipelineSpec& spec, const YAML::Node& item, std::size_t index) {
        const std::string path = fmt::format("edges[{}]", index);
        if (!item.IsScalar()) {
            add(item.Mark(), path, "expected a string such as 'a -> b -> c' or 'router.low -> review'");
            return;
        }
        const std::string& text = item.Scalar();
        const int quote = item.Tag() == "!" ? 1 : 0;  // quoted scalars start one column later
        struct Token {
            std::string node, port;
            YAML::Mark mark;
        };
        std::vector<Token> tokens;
        std::size_t start = 0;
        while (true) {
            std::size_t arrow = text.find("->", start);
            std::string raw = text.substr(start, arrow == std::string::npos ? std::string::npos : arrow - start);
            std::size_t lead = raw.find_first_not_of(" \t");
            std::size_t trail = raw.find_last_not_of(" \t");
            YAML::Mark mark = item.Mark();
            mark.column += quote + static_cast<int>(start + (lead == std::string::npos ? 0 : lead));
            if (lead == std::string::npos) {
                add(mark, path, fmt::format("empty node name in '{}'", text));
                return;
            }
            std::string name = raw.substr(lead, trail - lead + 1);
            Token t;
            t.mark = mark;
            if (auto dot = name.find('.'); dot != std::string::npos) {
                t.node = name.substr(0, dot);
                t.port = name.substr(dot + 1);
            } else {
                t.node = name;
            }
            tokens.push_back(std::move(t));
            if (arrow == std::string::npos) break;
            start = arrow + 2;
        }
        if (tokens.size() < 2) {
            add(item.Mark(), path, fmt::format("'{}' has no '->'; write edges as 'from -> to'", text));
            return;
        }
        if (!tokens.back().port.empty())
            add(tokens.back().mark, path, fmt::format("'{}.{}': the receiving end of an edge takes no port; write '{}'",
                                                      tokens.back().node, tokens.back().port, tokens.back().node));
        for (std::size_t i = 0; i + 1 < tokens.size(); ++i)
            spec.edges.push_back({tokens[i].node, tokens[i].port, tokens[i + 1].node, tokens[i].mark, tokens[i + 1].mark});
    }
};

}  // namespace

// admin.api_keys entries may be `{label, key}` (the label names who acted in the review UI's
// audit trail) or plain key strings. The keys are put back as a plain list for the section's
// spec; the labels come back parallel to it ("" for a plain key), or empty when no entry
// has one.
// Values that only the state store or the admin server would refuse, at start ("cannot start:
// state store (redis): cannot parse url"): refused here, with their line, so that a pipeline
// `docpipe validate` passes is one `docpipe run` can start.
static void check_section_values(const PipelineSpec& spec, YAML::Node& root, Loader& loader) {
    auto mark_of = [&](const char* section, const char* key) {
        const YAML::Node s = root[section];
        if (s && s.IsMap() && s[key]) return s[key].Mark();
        return s ? s.Mark() : root.Mark();
    };
    if (spec.section_string("state", "backend") == "redis") {
        if (auto why = redis_url_problem(spec.section_string("state", "url")); !why.empty())
            loader.add(mark_of("state", "url"), "state.url", why);
    }
    // SQLite takes an empty file name for a private temporary database: the jobs, the dead
    // letters and the delivery ledger would vanish at exit, and the next run send everything
    // again ("${STATE_DB:-}" with the variable unset reads so).
    // (As written: a relative value is made absolute before this, "  " included.)
    const YAML::Node state = root["state"];
    const bool path_given = state && state.IsMap() && state["path"] && state["path"].IsScalar();
    if (spec.section_string("state", "backend") == "sqlite" && path_given &&
        state["path"].Scalar().find_first_not_of(" \t\r\n") == std::string::npos)
        loader.add(mark_of("state", "path"), "state.path",
                   "empty: SQLite would keep the state in a temporary database that is lost at exit (jobs, dead letters, "
                   "the delivery ledger, so a restart would send documents again); give a file, e.g. ./var/docpipe-state.db, "
                   "or backend: memory to keep nothing on purpose");
    const auto& admin = spec.sections.at("admin");
    if (!admin.contains("enabled") || admin.at("enabled") == true) {
        try {
            parse_listen_address(spec.section_string("admin", "listen"));
        } catch (const std::invalid_argument& e) {
            loader.add(mark_of("admin", "listen"), "admin.listen", e.what());
        }
    }
}

static nlohmann::json split_labelled_keys(YAML::Node& root, Loader& loader) {
    nlohmann::json labels = nlohmann::json::array();
    YAML::Node admin = root["admin"];
    if (!admin || !admin.IsMap()) return labels;
    YAML::Node keys = admin["api_keys"];
    if (!keys || !keys.IsSequence()) return labels;
    bool labelled = false;
    YAML::Node plain(YAML::NodeType::Sequence);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        YAML::Node item = keys[i];
        const std::string path = fmt::format("admin.api_keys[{}]", i);
        if (!item.IsMap()) {
            plain.push_back(item);
            labels.push_back("");
            continue;
        }
        labelled = true;
        for (const auto& kv : item) {
            const std::string k = kv.first.Scalar();
            if (k != "label" && k != "key") loader.add(kv.first.Mark(), path, "unknown key '" + k + "': an entry is {label, key}");
        }
        const YAML::Node key = item["key"], label = item["label"];
        if (!key || !key.IsScalar()) {
            loader.add(item.Mark(), path + ".key", "expected the key as a string: {label: alice, key: \"${file:...}\"}");
            continue;
        }
        if (label && !label.IsScalar()) loader.add(label.Mark(), path + ".label", "expected a name, e.g. label: alice");
        plain.push_back(key);
        labels.push_back(label && label.IsScalar() ? label.Scalar() : "");
    }
    if (!labelled) return nlohmann::json::array();
    admin["api_keys"] = plain;
    return labels;
}

namespace {
constexpr std::size_t kMaxPipelineBytes = 2 * 1024 * 1024;

// Keeps the first issue at each place a ${...} could not be substituted (the reference's own)
// and leaves out the others there: "expected a positive integer, got '${MIF}'" after
// "environment variable 'MIF' is not set" is one problem, not two.
void drop_consequences_of_unresolved(const PipelineSpec& spec, std::vector<Issue>& issues) {
    if (spec.unresolved_references.empty()) return;
    const std::string file = spec.file.string();
    std::set<std::pair<int, int>> reported;
    std::vector<Issue> kept;
    kept.reserve(issues.size());
    for (auto& i : issues) {
        const std::pair<int, int> at{i.line, i.column};
        if (i.file == file && spec.unresolved_references.count(at) && !reported.insert(at).second) continue;
        kept.push_back(std::move(i));
    }
    issues = std::move(kept);
}
}  // namespace

PipelineSpec load_pipeline(const fs::path& file, std::vector<Issue>& issues) {
    if (std::error_code ec; fs::is_directory(file, ec)) {  // opens, and reads as an empty file
        PipelineSpec spec;
        spec.file = file;
        issues.push_back({file.string(), 0, 0, "", "is a folder, not a pipeline file: name the .yaml file in it"});
        return spec;
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        PipelineSpec spec;
        spec.file = file;
        issues.push_back({file.string(), 0, 0, "", "cannot read the pipeline file (does it exist? is it readable?)"});
        return spec;
    }
    std::stringstream content;
    content << in.rdbuf();
    return load_pipeline_text(file, content.str(), issues);
}

PipelineSpec load_pipeline_text(const fs::path& file, const std::string& text, std::vector<Issue>& issues) {
    PipelineSpec spec;
    spec.file = file;
    Loader loader{file, issues};
    spec.text_hash = Document::content_id(text);

    // Tabs in indentation: YAML forbids them, and yaml-cpp's own message does not say so.
    {
        int line = 1;
        bool tab_reported = false;
        for (std::size_t i = 0; i < text.size() && !tab_reported;) {
            const std::size_t end = std::min(text.find('\n', i), text.size());
            for (std::size_t j = i; j < end && (text[j] == ' ' || text[j] == '\t'); ++j)
                if (text[j] == '\t') {
                    issues.push_back({file.string(), line, static_cast<int>(j - i) + 1, "",
                                      "a tab in the indentation: YAML indents with spaces only (replace the tab with spaces)"});
                    tab_reported = true;  // one is enough: editors convert them all at once
                    break;
                }
            i = end + 1;
            ++line;
        }
    }

    // A pipeline is a few kilobytes; a file of megabytes is the wrong file (a log, a dump),
    // and parsing it would take seconds and hundreds of megabytes before saying so.
    if (text.size() > kMaxPipelineBytes) {
        issues.push_back({file.string(), 0, 0, "",
                          fmt::format("is {:.1f} MB; a pipeline file is a few kilobytes (at most {} MB): is this the right file?",
                                      static_cast<double>(text.size()) / (1024 * 1024), kMaxPipelineBytes / (1024 * 1024))});
        return spec;
    }
    YAML::Node root;
    try {
        // Every document in the file, so that a second one ("---" and more keys) is reported
        // rather than silently left out.
        const std::vector<YAML::Node> documents = YAML::LoadAll(text);
        if (!documents.empty()) root = documents.front();
        if (documents.size() > 1) {
            issues.push_back({file.string(), documents[1].Mark().line + 1, 1, "",
                              fmt::format("the file holds {} YAML documents (separated by '---'); a pipeline is one: merge them "
                                          "or remove the '---' line before this one", documents.size())});
            return spec;
        }
    } catch (const YAML::ParserException& e) {
        std::string message = "YAML syntax error: " + e.msg;
        // The commonest cause in a pipeline: an unquoted ${VAR} in flow style, where '{' opens a map.
        std::size_t line_start = 0;
        for (int l = 0; l < e.mark.line && line_start != std::string::npos; ++l) {
            line_start = text.find('\n', line_start);
            if (line_start != std::string::npos) ++line_start;
        }
        static const std::regex kUnquotedRef(R"([\[{,:]\s*\$\{)");
        for (int back = 0; back < 3 && line_start != std::string::npos; ++back) {
            const std::string here = text.substr(line_start, text.find('\n', line_start) - line_start);
            if (std::regex_search(here, kUnquotedRef)) {
                message += "; an unquoted ${...} inside { } or [ ] is read as YAML, not as a substitution: quote it "
                           "(e.g. timeout: \"${TIMEOUT:-30s}\"); a quoted reference still takes the type its field wants";
                break;
            }
            if (line_start == 0) break;
            line_start = text.rfind('\n', line_start - 2);
            line_start = line_start == std::string::npos ? 0 : line_start + 1;
        }
        issues.push_back({file.string(), e.mark.line + 1, e.mark.column + 1, "", message});
        return spec;
    }
    if (!root.IsMap()) {
        issues.push_back({file.string(), 1, 1, "", "expected a mapping with 'nodes:' and 'edges:'"});
        return spec;
    }
    std::size_t values = 0;
    if (auto far = loader.expands_too_far(root, values)) {
        static const std::regex kAnchor(R"((^|[\s:\[{,-])&[^\s,\]}]+)");
        loader.add(far->mark, "",
                   far->too_deep
                       ? fmt::format("the file nests more than {} levels deep by this point: an alias inside its own anchor "
                                     "(&a {{k: *a}}) repeats it for ever; point the alias at another anchor",
                                     Loader::kMaxDepth)
                   : std::regex_search(text, kAnchor)
                       ? fmt::format("the file expands to more than {} values by this point: YAML aliases (*name) repeat their "
                                     "anchor's (&name) whole value, and nested ones multiply; a pipeline needs a few hundred, so "
                                     "write the values out or anchor smaller pieces", Loader::kMaxValues)
                       : fmt::format("the file holds more than {} values by this point; a pipeline needs a few hundred: is this "
                                     "the right file?", Loader::kMaxValues));
        return spec;
    }
    loader.check_duplicates(root, "");
    loader.expand_merge_keys(root, "");
    // Top-level keys starting "x-" are the file's own (Compose's extension fields): a place
    // for anchors that nodes merge (x-ocr: &ocr {...}, then <<: *ocr). Read, then set aside.
    {
        std::vector<std::string> extensions;
        for (const auto& kv : root)
            if (kv.first.IsScalar() && kv.first.Scalar().rfind("x-", 0) == 0) extensions.push_back(kv.first.Scalar());
        for (const auto& key : extensions) root.remove(key);
    }
    loader.substitute_tree(root, "");
    const std::vector<std::string> top_level{"version", "plugin_paths", "max_in_flight", "state", "admin", "logging", "runtime",
                                             "nodes", "edges"};
    loader.check_keys(root, top_level, "");
    // A misspelt top-level key: the key it was meant to be is missing as a consequence, and
    // the graph checks would report dozens of consequences more. Report the cause only.
    std::set<std::string> meant;
    for (const auto& kv : root) {
        const std::string key = kv.first.Scalar();
        if (std::find(top_level.begin(), top_level.end(), key) != top_level.end()) continue;
        spec.structure_broken = true;
        if (auto near = closest_match(key, top_level)) meant.insert(*near);
    }
    if (root["admin"]) spec.admin_mark = root["admin"].Mark();

    if (root["version"] && (!root["version"].IsScalar() || root["version"].Scalar() != "1"))
        loader.add(root["version"].Mark(), "version", "only version 1 is supported");

    if (const YAML::Node paths = root["plugin_paths"]) {
        auto add_path = [&](const YAML::Node& p) {
            fs::path dir = p.Scalar();
            dir = dir.is_relative() ? (pipeline_folder(file) / dir).lexically_normal() : dir;
            std::error_code ec;
            if (!fs::is_directory(dir, ec)) spec.missing_plugin_paths.emplace_back(dir, p.Mark());
            spec.plugin_paths.push_back(dir);
        };
        if (paths.IsScalar()) add_path(paths);
        else if (paths.IsSequence()) {
            for (const auto& p : paths) {
                if (p.IsScalar()) add_path(p);
                else loader.add(p.Mark(), "plugin_paths", "expected a folder path");
            }
        } else loader.add(paths.Mark(), "plugin_paths", "expected a list of folders");
    }
    // "max_in_flight:" with nothing after it takes the default, as an empty config key does.
    if (const YAML::Node m = root["max_in_flight"]; m && !m.IsNull()) {
        auto v = detail::yaml_to_json(m);
        if (!v.is_number_integer() || v.get<std::int64_t>() < 1)
            loader.add(m.Mark(), "max_in_flight", fmt::format("expected a positive integer, got '{}'", m.IsScalar() ? m.Scalar() : "a collection"));
        else
            spec.max_in_flight = static_cast<std::size_t>(v.get<std::int64_t>());
    }
    const nlohmann::json key_labels = split_labelled_keys(root, loader);
    const std::pair<const char*, const ConfigSpec*> sections[] = {{"state", &state_section_spec()},
                                                                    {"admin", &admin_section_spec()},
                                                                    {"logging", &logging_section_spec()},
                                                                    {"runtime", &runtime_section_spec()}};
    for (const auto& [name, section_spec] : sections) {
        std::vector<ConfigIssue> found;
        spec.sections[name] = detail::validate_config(*section_spec, root[name], name, YAML::Mark::null_mark(), found);
        absolutize_paths(*section_spec, spec.sections[name], pipeline_folder(file));
        loader.add_all(found);
    }
    if (!key_labels.empty()) spec.sections["admin"]["api_key_labels"] = key_labels;
    check_section_values(spec, root, loader);

    const YAML::Node nodes = root["nodes"];
    if (!nodes || !nodes.IsMap() || nodes.size() == 0) {
        spec.structure_broken = true;
        if (!(!nodes && meant.count("nodes")))
            loader.add(nodes ? nodes.Mark() : root.Mark(), "nodes", "expected a mapping of named nodes (at least a source and a sink)");
    } else {
        std::set<std::string> names;  // a repeated name was reported above; build it once
        for (const auto& kv : nodes)
            if (!kv.first.IsScalar() || names.insert(kv.first.Scalar()).second) loader.parse_node(spec, kv.first, kv.second);
    }
    const YAML::Node edges = root["edges"];
    if (!edges || !edges.IsSequence()) {
        spec.structure_broken = true;
        if (!(!edges && meant.count("edges")))
            loader.add(edges ? edges.Mark() : root.Mark(), "edges", "expected a list of edges such as '- inbox -> out'");
    } else {
        for (std::size_t i = 0; i < edges.size(); ++i) loader.parse_edge(spec, edges[i], i);
    }
    spec.unresolved_references = loader.unresolved;
    drop_consequences_of_unresolved(spec, issues);
    return spec;
}

std::vector<fs::path> plugin_directories(const PipelineSpec& spec) {
    std::vector<fs::path> dirs = spec.plugin_paths;
    for (auto& d : default_plugin_directories())
        if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
    return dirs;
}

const NodeSpec* PipelineSpec::find(std::string_view name) const {
    for (const auto& n : nodes)
        if (n.name == name) return &n;
    return nullptr;
}

std::vector<std::string> PipelineSpec::successors(std::string_view node, std::string_view port) const {
    std::vector<std::string> out;
    for (const auto& e : edges)
        if (e.from == node && (e.port.empty() ? std::string_view("out") : std::string_view(e.port)) == port) out.push_back(e.to);
    return out;
}

std::chrono::milliseconds PipelineSpec::runtime_duration(const std::string& key) const {
    return std::chrono::milliseconds(sections.at("runtime").at(key).get<std::int64_t>());
}

std::string PipelineSpec::section_string(const std::string& section, const std::string& key) const {
    const auto& s = sections.at(section);
    return s.contains(key) && s.at(key).is_string() ? s.at(key).get<std::string>() : "";
}

// ---- resolve -----------------------------------------------------------------------------

void resolve(PipelineSpec& spec, const Registry& registry, std::vector<Issue>& issues) {
    // However it returns: the components' checks see the raw ${...} text too.
    struct DropConsequences {
        const PipelineSpec& spec;
        std::vector<Issue>& issues;
        ~DropConsequences() { drop_consequences_of_unresolved(spec, issues); }
    } drop_consequences{spec, issues};
    const std::string file = spec.file.string();
    auto add = [&](const YAML::Mark& mark, std::string path, std::string message) {
        issues.push_back({file, line_of(mark), column_of(mark), std::move(path), std::move(message)});
    };
    std::vector<std::string> node_names;
    for (const auto& n : spec.nodes) node_names.push_back(n.name);

    for (auto& node : spec.nodes) {
        if (node.component.empty()) continue;  // already reported
        const std::string path = "nodes." + node.name;
        node.descriptor = registry.find(node.component);
        if (!node.descriptor) {
            std::string message = fmt::format("unknown component '{}'", node.component);
            const auto installed = registry.component_names();
            if (auto near = closest_match(node.component, installed)) message += fmt::format(" (did you mean '{}'?)", *near);
            std::string list;
            for (const auto& c : installed) list += (list.empty() ? "" : ", ") + c;
            message += "; installed: " + (list.empty() ? std::string("none") : list);
            for (const auto& r : registry.rejected())
                message += fmt::format("; plugin {} failed to load: {}", r.path.string(), r.reason);
            for (const auto& [dir, mark] : spec.missing_plugin_paths)
                message += fmt::format("; the plugin_paths folder '{}' (line {}) does not exist", dir.string(), mark.line + 1);
            if (registry.plugins().empty() && registry.rejected().empty()) {
                std::string dirs;
                for (const auto& d : registry.searched_directories()) dirs += (dirs.empty() ? "" : ", ") + d;
                message += "; searched: " + dirs + " (set plugin_paths or DOCPIPE_PLUGIN_PATH)";
            }
            add(node.mark, path + ".component", message);
            continue;
        }
        std::vector<ConfigIssue> found;
        auto values = detail::validate_config(node.descriptor->config, node.config_node, path + ".config", node.mark, found);
        absolutize_paths(node.descriptor->config, values, pipeline_folder(spec.file));
        for (const auto& i : found) issues.push_back({file, i.line, i.column, i.path, i.message});
        node.config = Config(&node.descriptor->config, std::move(values));
        if (node.concurrency > 1 && !node.descriptor->concurrent_safe)
            add(node.mark, path + ".concurrency",
                fmt::format("concurrency {} requested, but component '{}' does not allow concurrent calls on one instance; "
                            "use concurrency: 1", node.concurrency, node.component));
    }

    // Edges.
    std::map<std::string, std::set<std::string>> adjacency;
    std::set<std::pair<std::string, std::string>> used_ports;
    std::set<std::tuple<std::string, std::string, std::string>> edges_seen;  // from, port, to
    bool edge_dropped = false;  // an edge reported below and left out of the graph
    // The nodes a dropped edge names: an unconnected port or an unreached node among them (or
    // after them) may be its consequence, and is left out; the rest of the graph is checked.
    std::set<std::string> near_dropped;
    for (std::size_t i = 0; i < spec.edges.size(); ++i) {
        const auto& e = spec.edges[i];
        const std::string path = fmt::format("edges: {}{}{} -> {}", e.from, e.port.empty() ? "" : ".", e.port, e.to);
        const NodeSpec* from = spec.find(e.from);
        const NodeSpec* to = spec.find(e.to);
        bool ok = true;
        for (const auto& [name, found, mark] : {std::tuple{e.from, from, e.from_mark}, std::tuple{e.to, to, e.mark}}) {
            if (found) continue;
            ok = false;
            std::string message = fmt::format("unknown node '{}'", name);
            if (auto near = closest_match(name, node_names)) {
                message += fmt::format(" (did you mean '{}'?)", *near);
                near_dropped.insert(*near);  // the node meant: its open port is the typo's consequence
            }
            add(mark, path, message);
        }
        if (!ok) {
            edge_dropped = true;
            near_dropped.insert({e.from, e.to});
            continue;
        }
        // A sink built without docpipe::component<T>() may lack its `accepted` port.
        if (from->descriptor && from->descriptor->kind == ComponentKind::Sink && from->descriptor->output_ports.empty()) {
            add(e.from_mark, path, fmt::format("'{}' is a sink ({}) and has no outputs", e.from, from->component));
            edge_dropped = true;
            near_dropped.insert({e.from, e.to});
            continue;
        }
        if (to->descriptor && to->descriptor->kind == ComponentKind::Source) {
            add(e.mark, path, fmt::format("'{}' is a source ({}) and takes no input", e.to, to->component));
            edge_dropped = true;
            near_dropped.insert({e.from, e.to});
            continue;
        }
        if (from->descriptor) {
            const auto& ports = from->descriptor->output_ports;
            std::string port = e.port.empty() ? "out" : e.port;
            bool known = std::any_of(ports.begin(), ports.end(), [&](const PortSpec& p) { return p.name == port; });
            if (!known) {
                std::vector<std::string> names;
                std::string list;
                for (const auto& p : ports) {
                    names.push_back(p.name);
                    list += (list.empty() ? "" : ", ") + p.name;
                }
                std::string message = e.port.empty()
                    ? fmt::format("'{}' ({}) has no 'out' port; name one of its ports: {} (e.g. {}.{} -> {})", e.from,
                                  from->component, list, e.from, names.empty() ? "port" : names.front(), e.to)
                    : fmt::format("'{}' ({}) has no output port '{}'", e.from, from->component, e.port);
                if (!e.port.empty()) {
                    if (auto near = closest_match(e.port, names)) message += fmt::format(" (did you mean '{}'?)", *near);
                    message += "; ports: " + list;
                }
                add(e.from_mark, path, message);
                edge_dropped = true;
                near_dropped.insert({e.from, e.to});
                continue;
            }
            used_ports.insert({e.from, port});
        }
        // The same edge twice sends each document down it twice: two writes to one sink.
        const std::string port = e.port.empty() ? "out" : e.port;
        if (!edges_seen.insert({e.from, port, e.to}).second) {
            add(e.from_mark, path, fmt::format("the edge {}.{} -> {} is listed twice; each document would reach '{}' twice: "
                                               "remove one", e.from, port, e.to, e.to));
            continue;
        }
        adjacency[e.from].insert(e.to);
    }

    // The node approved review documents go to must exist and take input.
    if (const auto& admin = spec.sections["admin"]; admin.contains("approved_node")) {
        const std::string name = admin["approved_node"].get<std::string>();
        const NodeSpec* target = spec.find(name);
        std::string message;
        if (!target) {
            message = fmt::format("unknown node '{}'", name);
            if (auto near = closest_match(name, node_names)) message += fmt::format(" (did you mean '{}'?)", *near);
        } else if (target->descriptor && target->descriptor->kind == ComponentKind::Source) {
            message = fmt::format("'{}' is a source and takes no input; name the node approved documents go to (e.g. the NCB sink)", name);
        }
        if (!message.empty()) add(spec.admin_mark, "admin.approved_node", message);
    }

    // With the top level broken, the checks below would only report its consequences.
    if (spec.structure_broken) return;
    // What follows a dropped edge's target can be unreached only because of it.
    {
        std::vector<std::string> frontier(near_dropped.begin(), near_dropped.end());
        while (!frontier.empty()) {
            const std::string n = frontier.back();
            frontier.pop_back();
            for (const auto& next : adjacency[n])
                if (near_dropped.insert(next).second) frontier.push_back(next);
        }
    }

    // Every output port must lead somewhere: a document sent to an open port would be lost.
    // Not checked on the nodes a broken edge names, or after them: one misspelt port or node
    // would otherwise be reported after a handful of its consequences ("not connected", "not
    // reached"), which come first in the file. The rest of the graph is checked as usual.
    for (const auto& node : spec.nodes) {
        if (near_dropped.count(node.name)) continue;
        if (!node.descriptor || node.descriptor->kind == ComponentKind::Sink) continue;
        for (const auto& port : node.descriptor->output_ports)
            if (!used_ports.count({node.name, port.name}))
                add(node.mark, "nodes." + node.name,
                    fmt::format("output port '{}.{}' is not connected; documents sent there would be lost "
                                "(add an edge such as '{}.{} -> <node>'; to drop them on purpose, send them to a node "
                                "with component: sink.discard)", node.name, port.name, node.name, port.name));
    }

    // Cycles (DFS with colours), reported once per cycle with its path.
    std::map<std::string, int> colour;
    std::vector<std::string> stack;
    std::set<std::string> reported;
    std::function<void(const std::string&)> visit = [&](const std::string& n) {
        colour[n] = 1;
        stack.push_back(n);
        for (const auto& next : adjacency[n]) {
            if (colour[next] == 1) {
                auto it = std::find(stack.begin(), stack.end(), next);
                std::string cycle;
                for (; it != stack.end(); ++it) cycle += *it + " -> ";
                cycle += next;
                if (reported.insert(next).second) {
                    // At the edge that closes the loop (`n -> next`), where the fix usually is;
                    // at the node when the edge has no position (a spec built in code).
                    YAML::Mark mark = YAML::Mark::null_mark();
                    for (const auto& e : spec.edges)
                        if (e.from == n && e.to == next) {
                            mark = e.from_mark;
                            break;
                        }
                    if (mark.is_null())
                        if (const NodeSpec* at = spec.find(next)) mark = at->mark;
                    add(mark, "edges", fmt::format("cycle: {} (documents would loop forever); the edge {} -> {} closes it", cycle, n, next));
                }
            } else if (colour[next] == 0) {
                visit(next);
            }
        }
        stack.pop_back();
        colour[n] = 2;
    };
    for (const auto& n : spec.nodes)
        if (colour[n.name] == 0) visit(n.name);

    // One document reaching one sink twice: a port broadcasts the same document to each of its
    // targets, and a sink's `accepted` port passes that same document on. `router.high ->
    // audit` kept beside `router.high -> ncb_high`, `ncb_high.accepted -> audit` would write
    // each audit row twice (on a first delivery the ledger is not read, and it could not tell
    // the copies apart). Transforms may emit other documents, so only these paths count; a
    // second path through a transform that passes its document on is caught at run time
    // (GraphExecutor::arrived_before_by_another_path).
    if (reported.empty() && !edge_dropped) {
        const auto is_sink = [&](const std::string& name) {
            const NodeSpec* n = spec.find(name);
            return n && n->descriptor && n->descriptor->kind == ComponentKind::Sink;
        };
        std::set<std::string> refused;  // sinks already reported
        for (const auto& node : spec.nodes) {
            if (!node.descriptor) continue;
            for (const auto& port : node.descriptor->output_ports) {
                std::map<std::string, std::vector<std::string>> paths;  // sink -> how the document gets there
                std::function<void(const std::string&, const std::string&, int)> follow = [&](const std::string& at,
                                                                                              const std::string& path, int depth) {
                    if (!is_sink(at) || depth > 64) return;
                    auto& ways = paths[at];
                    if (std::find(ways.begin(), ways.end(), path) != ways.end()) return;  // an edge listed twice: reported above
                    ways.push_back(path);
                    for (const auto& next : spec.successors(at, kSinkAcceptedPort))
                        follow(next, path + ", " + at + "." + kSinkAcceptedPort + " -> " + next, depth + 1);
                };
                const std::string from = port.name == "out" ? node.name : node.name + "." + port.name;  // as edges write it
                for (const auto& target : spec.successors(node.name, port.name)) follow(target, from + " -> " + target, 0);
                for (const auto& [sink, ways] : paths) {
                    if (ways.size() < 2 || !refused.insert(sink).second) continue;
                    const NodeSpec* at = spec.find(sink);
                    add(at ? at->mark : YAML::Mark::null_mark(), "nodes." + sink,
                        fmt::format("one document from '{}' reaches '{}' {} times ({}): it would be delivered {} times; "
                                    "remove all but one of these paths",
                                    from, sink, ways.size(), fmt::join(ways, "; "), ways.size()));
                }
            }
        }
    }

    // Reachability from the sources.
    std::set<std::string> reached;
    std::vector<std::string> frontier;
    bool any_source = false;
    for (const auto& n : spec.nodes)
        if (n.descriptor && n.descriptor->kind == ComponentKind::Source) {
            any_source = true;
            frontier.push_back(n.name);
            reached.insert(n.name);
        }
    while (!frontier.empty()) {
        std::string n = frontier.back();
        frontier.pop_back();
        for (const auto& next : adjacency[n])
            if (reached.insert(next).second) frontier.push_back(next);
    }
    bool all_resolved = std::all_of(spec.nodes.begin(), spec.nodes.end(), [](const NodeSpec& n) { return n.descriptor; });
    if (!any_source && all_resolved && !spec.nodes.empty())
        add(spec.nodes.front().mark, "nodes", "the pipeline has no source node (a component of kind 'source', e.g. source.directory)");
    if (any_source)
        for (const auto& n : spec.nodes)
            if (n.descriptor && !reached.count(n.name) && !near_dropped.count(n.name))
                add(n.mark, "nodes." + n.name, fmt::format("node '{}' is not reached from any source; connect it or remove it", n.name));
}

std::string to_dot(const PipelineSpec& spec) {
    auto quote = [](const std::string& s) {
        std::string out = "\"";
        for (char c : s) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        return out + "\"";
    };
    std::string out = "digraph pipeline {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n";
    for (const auto& n : spec.nodes) {
        std::string shape = "box";
        if (n.descriptor && n.descriptor->kind == ComponentKind::Source) shape = "invhouse";
        if (n.descriptor && n.descriptor->kind == ComponentKind::Sink) shape = "house";
        std::string label = n.name + "\\n" + n.component + (n.concurrency > 1 ? fmt::format(" x{}", n.concurrency) : "");
        out += fmt::format("  {} [label=\"{}\", shape={}];\n", quote(n.name), label, shape);
    }
    for (const auto& e : spec.edges) {
        out += fmt::format("  {} -> {}", quote(e.from), quote(e.to));
        if (!e.port.empty() && e.port != "out") out += fmt::format(" [label={}]", quote(e.port));
        out += ";\n";
    }
    return out + "}\n";
}

}  // namespace docpipe::core
