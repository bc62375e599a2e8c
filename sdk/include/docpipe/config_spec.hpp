// docpipe SDK — self-describing component configuration.
//
// Contract: every component declares a ConfigSpec (typed fields with default, required,
// min/max, enum, secret flag and description). The runtime validates a node's `config:`
// mapping against it before anything starts and hands the component a `Config` holding
// exactly the declared keys, already typed and with defaults applied. The same spec
// drives `docpipe plugins describe` and the docs, the way Fluent Bit's config_map does.
//
// Ownership/threading: ConfigSpec and Config are plain values; a const Config may be read
// from any thread. Config getters throw std::logic_error for a key the spec does not
// declare: a component cannot read configuration it did not document.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace docpipe {

enum class FieldType { String, Integer, Number, Boolean, Duration, StringList, Object };

std::string_view to_string(FieldType type);

class Field {
public:
    static Field string(std::string name);
    static Field integer(std::string name);
    static Field number(std::string name);
    static Field boolean(std::string name);
    // "250ms", "5s", "1.5m", "2h", or a bare number of seconds.
    static Field duration(std::string name);
    static Field string_list(std::string name);
    // A free-form mapping, passed through as JSON (for nested settings a plugin validates itself).
    static Field object(std::string name);
    // A string restricted to `allowed`.
    static Field enumeration(std::string name, std::vector<std::string> allowed);

    Field& describe(std::string text);
    Field& required();
    Field& default_value(nlohmann::json value);
    Field& min(double value);
    Field& max(double value);
    Field& secret();  // masked in describe output, logs and dumps
    // A file or folder path: in a pipeline, a relative value (also one that came from
    // ${VAR}) is taken relative to the pipeline file's folder, so a pipeline means the same
    // wherever it is started from. The component receives it absolute.
    Field& path();

    const std::string& name() const { return name_; }
    FieldType type() const { return type_; }
    const std::string& description() const { return description_; }
    bool is_required() const { return required_; }
    bool is_secret() const { return secret_; }
    bool is_path() const { return path_; }
    const std::optional<nlohmann::json>& default_json() const { return default_; }
    const std::optional<double>& min_value() const { return min_; }
    const std::optional<double>& max_value() const { return max_; }
    const std::vector<std::string>& allowed() const { return allowed_; }

    nlohmann::json to_json() const;

private:
    Field(std::string name, FieldType type) : name_(std::move(name)), type_(type) {}
    std::string name_;
    FieldType type_;
    std::string description_;
    bool required_ = false;
    bool secret_ = false;
    bool path_ = false;
    std::optional<nlohmann::json> default_;
    std::optional<double> min_, max_;
    std::vector<std::string> allowed_;
};

class Config;

// A check across fields, as Benthos' lint rules are: what one field's type and range cannot
// say ("min_width is at most max_width", "mode pubsub_pull needs a subscription"). Validation
// runs a spec's rules once every field of the node has a valid value, so `docpipe validate`
// refuses what the component's constructor would refuse at start, with the line of `key`.
// `check` returns the problem ("" when none); it must not throw and must not block.
struct ConfigRule {
    std::string key;          // the field the problem is reported at
    std::string description;  // the rule, for `docpipe plugins describe`
    std::function<std::string(const Config& config)> check;
};

class ConfigSpec {
public:
    ConfigSpec() = default;
    ConfigSpec(std::initializer_list<Field> fields);
    ConfigSpec& add(Field field);
    ConfigSpec& rule(std::string key, std::string description, std::function<std::string(const Config& config)> check);

    const std::vector<Field>& fields() const { return fields_; }
    const std::vector<ConfigRule>& rules() const { return rules_; }
    const Field* find(std::string_view name) const;
    nlohmann::json to_json() const;  // the fields; the rules are in ComponentDescriptor::to_json()

private:
    std::vector<Field> fields_;
    std::vector<ConfigRule> rules_;
};

// One validation problem; line/column are 1-based, 0 when unknown.
struct ConfigIssue {
    int line = 0;
    int column = 0;
    std::string path;     // e.g. "nodes.out.config.format"
    std::string message;  // what is wrong and what to do
};

// The validated configuration of one node.
class Config {
public:
    Config() = default;
    Config(const ConfigSpec* spec, nlohmann::json values) : spec_(spec), values_(std::move(values)) {}

    // True when the key has a value (given, or from a default).
    bool has(std::string_view key) const;
    std::string get_string(std::string_view key) const;
    std::int64_t get_int(std::string_view key) const;
    double get_number(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    std::chrono::milliseconds get_duration(std::string_view key) const;
    std::vector<std::string> get_string_list(std::string_view key) const;
    nlohmann::json get_object(std::string_view key) const;

    // The values with secrets replaced by "******" unless `reveal_secrets`.
    nlohmann::json to_json(bool reveal_secrets = false) const;

private:
    const nlohmann::json& lookup(std::string_view key, FieldType expected) const;
    const ConfigSpec* spec_ = nullptr;  // not owned; lives in the component descriptor
    nlohmann::json values_ = nlohmann::json::object();
};

// Parses a duration such as "250ms", "5s", "1.5m", "2h". Returns nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Validates a YAML mapping given as text against `spec` (used by the testing kit and by
// tools; the runtime validates the parsed pipeline tree directly). Problems are appended
// to `issues`; the returned Config is only meaningful when no issue was added.
Config parse_config_yaml(const ConfigSpec& spec, std::string_view yaml_text,
                         std::vector<ConfigIssue>& issues);

// The closest candidate within a small edit distance, for "did you mean" hints.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace docpipe
