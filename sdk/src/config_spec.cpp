#include "docpipe/config_spec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "docpipe/detail/yaml_config.hpp"

namespace docpipe {

std::string_view to_string(FieldType type) {
    switch (type) {
        case FieldType::String: return "string";
        case FieldType::Integer: return "integer";
        case FieldType::Number: return "number";
        case FieldType::Boolean: return "boolean";
        case FieldType::Duration: return "duration";
        case FieldType::StringList: return "list of strings";
        case FieldType::Object: return "mapping";
    }
    return "?";
}

Field Field::string(std::string name) { return Field(std::move(name), FieldType::String); }
Field Field::integer(std::string name) { return Field(std::move(name), FieldType::Integer); }
Field Field::number(std::string name) { return Field(std::move(name), FieldType::Number); }
Field Field::boolean(std::string name) { return Field(std::move(name), FieldType::Boolean); }
Field Field::duration(std::string name) { return Field(std::move(name), FieldType::Duration); }
Field Field::string_list(std::string name) { return Field(std::move(name), FieldType::StringList); }
Field Field::object(std::string name) { return Field(std::move(name), FieldType::Object); }
Field Field::enumeration(std::string name, std::vector<std::string> allowed) {
    Field f(std::move(name), FieldType::String);
    f.allowed_ = std::move(allowed);
    return f;
}

Field& Field::describe(std::string text) { description_ = std::move(text); return *this; }
Field& Field::required() { required_ = true; return *this; }
Field& Field::default_value(nlohmann::json value) { default_ = std::move(value); return *this; }
Field& Field::min(double value) { min_ = value; return *this; }
Field& Field::max(double value) { max_ = value; return *this; }
Field& Field::secret() { secret_ = true; return *this; }
Field& Field::path() {
    if (type_ != FieldType::String) throw std::logic_error("config field '" + name_ + "': only a string field can be a path");
    path_ = true;
    return *this;
}

nlohmann::json Field::to_json() const {
    nlohmann::json j{{"name", name_}, {"type", to_string(type_)}, {"description", description_},
                     {"required", required_}, {"secret", secret_}};
    if (path_) j["path"] = true;  // relative to the pipeline file
    // An empty default hides nothing; shown masked, it read as if a secret were built in.
    const bool empty_default = default_ && default_->is_string() && default_->get<std::string>().empty();
    if (default_) j["default"] = secret_ && !empty_default ? nlohmann::json("******") : *default_;
    if (min_) j["min"] = *min_;
    if (max_) j["max"] = *max_;
    if (!allowed_.empty()) j["enum"] = allowed_;
    return j;
}

ConfigSpec::ConfigSpec(std::initializer_list<Field> fields) {
    for (const auto& f : fields) add(f);
}

static constexpr std::chrono::milliseconds kLongestDuration = std::chrono::hours(24 * 3650);

// A default the field's own rules refuse ("level" 50 with a maximum of 10): `describe` showed
// it and the component was given it, while the same value written in a pipeline was an error.
// What is wrong, or "".
static std::string default_problem(const Field& field) {
    if (!field.default_json()) return {};
    const nlohmann::json& d = *field.default_json();
    std::optional<double> numeric;  // durations in seconds, as their ranges are
    switch (field.type()) {
        case FieldType::Duration:
            if (d.is_string()) {
                const auto ms = parse_duration(d.get<std::string>());
                if (!ms) return fmt::format("its default '{}' is not a duration such as 500ms, 5s, 2m or 1h", d.get<std::string>());
                numeric = static_cast<double>(ms->count()) / 1000.0;
            } else if (d.is_number()) {
                numeric = d.get<double>();
            } else {
                return "its default is neither a duration text nor a number of seconds";
            }
            break;
        case FieldType::Integer:
            if (!d.is_number_integer()) return fmt::format("its default {} is not an integer", d.dump());
            numeric = d.get<double>();
            break;
        case FieldType::Number:
            if (!d.is_number()) return fmt::format("its default {} is not a number", d.dump());
            numeric = d.get<double>();
            break;
        case FieldType::String:
            if (!d.is_string()) return fmt::format("its default {} is not a string", d.dump());
            if (!field.allowed().empty() &&
                std::find(field.allowed().begin(), field.allowed().end(), d.get<std::string>()) == field.allowed().end())
                return fmt::format("its default '{}' is not one of its values ({})", d.get<std::string>(),
                                   fmt::join(field.allowed(), ", "));
            break;
        default: break;
    }
    const char* unit = field.type() == FieldType::Duration ? " s" : "";
    if (numeric && field.min_value() && *numeric < *field.min_value())
        return fmt::format("its default {} is below its minimum {}{}", d.is_string() ? d.get<std::string>() : d.dump(), *field.min_value(), unit);
    if (numeric && field.max_value() && *numeric > *field.max_value())
        return fmt::format("its default {} is above its maximum {}{}", d.is_string() ? d.get<std::string>() : d.dump(), *field.max_value(), unit);
    return {};
}

ConfigSpec& ConfigSpec::add(Field field) {
    if (find(field.name())) throw std::logic_error("config field '" + field.name() + "' declared twice");
    if (const std::string problem = default_problem(field); !problem.empty())
        throw std::logic_error(fmt::format("config field '{}': {}; a default must be a value the field accepts", field.name(), problem));
    fields_.push_back(std::move(field));
    return *this;
}

ConfigSpec& ConfigSpec::rule(std::string key, std::string description, std::function<std::string(const Config& config)> check) {
    rules_.push_back({std::move(key), std::move(description), std::move(check)});
    return *this;
}

const Field* ConfigSpec::find(std::string_view name) const {
    for (const auto& f : fields_)
        if (f.name() == name) return &f;
    return nullptr;
}

nlohmann::json ConfigSpec::to_json() const {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& f : fields_) arr.push_back(f.to_json());
    return arr;
}

// ---- Config ------------------------------------------------------------------------------

bool Config::has(std::string_view key) const {
    auto it = values_.find(std::string(key));
    return it != values_.end() && !it->is_null();
}

const nlohmann::json& Config::lookup(std::string_view key, FieldType expected) const {
    const Field* field = spec_ ? spec_->find(key) : nullptr;
    if (!field)
        throw std::logic_error(fmt::format("config key '{}' is not declared in the component's ConfigSpec", key));
    if (field->type() != expected)
        throw std::logic_error(fmt::format("config key '{}' is declared as {}, read as {}", key,
                                           to_string(field->type()), to_string(expected)));
    auto it = values_.find(std::string(key));
    if (it == values_.end() || it->is_null())
        throw std::logic_error(fmt::format("config key '{}' has no value and no default; check has() first", key));
    return *it;
}

std::string Config::get_string(std::string_view key) const { return lookup(key, FieldType::String).get<std::string>(); }
std::int64_t Config::get_int(std::string_view key) const { return lookup(key, FieldType::Integer).get<std::int64_t>(); }
double Config::get_number(std::string_view key) const { return lookup(key, FieldType::Number).get<double>(); }
bool Config::get_bool(std::string_view key) const { return lookup(key, FieldType::Boolean).get<bool>(); }
std::chrono::milliseconds Config::get_duration(std::string_view key) const {
    return std::chrono::milliseconds(lookup(key, FieldType::Duration).get<std::int64_t>());
}
std::vector<std::string> Config::get_string_list(std::string_view key) const {
    return lookup(key, FieldType::StringList).get<std::vector<std::string>>();
}
nlohmann::json Config::get_object(std::string_view key) const { return lookup(key, FieldType::Object); }

nlohmann::json Config::to_json(bool reveal_secrets) const {
    nlohmann::json out = values_;
    if (!reveal_secrets && spec_) {
        for (const auto& f : spec_->fields())
            if (f.is_secret() && out.contains(f.name()) && !out[f.name()].is_null()) out[f.name()] = "******";
    }
    return out;
}

// ---- helpers -----------------------------------------------------------------------------

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    if (text.empty()) return std::nullopt;
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) return std::nullopt;
    double value = 0;
    try {
        std::size_t used = 0;
        value = std::stod(std::string(text.substr(0, i)), &used);
        if (used != i) return std::nullopt;
    } catch (...) {
        return std::nullopt;
    }
    std::string_view unit = text.substr(i);
    double factor = 0;
    if (unit.empty() || unit == "s") factor = 1000;
    else if (unit == "ms") factor = 1;
    else if (unit == "m" || unit == "min") factor = 60'000;
    else if (unit == "h") factor = 3'600'000;
    else if (unit == "d") factor = 86'400'000;
    else return std::nullopt;
    // Beyond what an int64 of milliseconds holds: the largest, which validation then refuses
    // as too long (llround of it gave a negative number: "below the minimum 0 s").
    const double ms = value * factor;
    if (!(ms < 9.0e18)) return std::chrono::milliseconds::max();
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

// Edit distance where swapping two neighbouring letters counts as one edit (optimal string
// alignment): "egdes" is one slip from "edges" and two from "nodes", as a person sees it.
static std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates) {
    std::optional<std::string> best;
    std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
    for (const auto& c : candidates) {
        if (c.empty()) continue;  // a node named "" (reported for itself) is no one's meaning
        std::size_t d = edit_distance(word, c);
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    return best;
}

Config parse_config_yaml(const ConfigSpec& spec, std::string_view yaml_text, std::vector<ConfigIssue>& issues) {
    YAML::Node node;
    try {
        node = YAML::Load(std::string(yaml_text));
    } catch (const YAML::ParserException& e) {
        issues.push_back({e.mark.line + 1, e.mark.column + 1, "config", e.msg});
        return Config(&spec, nlohmann::json::object());
    }
    auto values = detail::validate_config(spec, node, "config", YAML::Mark(), issues);
    return Config(&spec, std::move(values));
}

// ---- validation against YAML -------------------------------------------------------------

namespace detail {

nlohmann::json yaml_to_json(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined: return nullptr;
        case YAML::NodeType::Sequence: {
            nlohmann::json arr = nlohmann::json::array();
            for (const auto& item : node) arr.push_back(yaml_to_json(item));
            return arr;
        }
        case YAML::NodeType::Map: {
            nlohmann::json obj = nlohmann::json::object();
            for (const auto& kv : node) obj[kv.first.as<std::string>()] = yaml_to_json(kv.second);
            return obj;
        }
        case YAML::NodeType::Scalar: {
            const std::string& s = node.Scalar();
            if (node.Tag() == "!") return s;  // quoted: always a string
            bool b;
            if (YAML::convert<bool>::decode(node, b)) return b;
            std::int64_t i;
            auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
            if (ec == std::errc() && p == s.data() + s.size()) return i;
            try {
                std::size_t used = 0;
                double d = std::stod(s, &used);
                if (used == s.size() && !s.empty()) return d;
            } catch (...) {
            }
            return s;
        }
    }
    return nullptr;
}

static std::vector<std::string> field_names(const ConfigSpec& spec) {
    std::vector<std::string> names;
    for (const auto& f : spec.fields()) names.push_back(f.name());
    return names;
}

static std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
    return out;
}

// Converts one YAML value to the field's type; appends an issue and returns null on error.
static nlohmann::json convert_value(const Field& field, const YAML::Node& value, const std::string& path,
                                    std::vector<ConfigIssue>& issues) {
    const YAML::Mark mark = value.Mark();
    auto fail = [&](const std::string& message) {
        issues.push_back({line_of(mark), column_of(mark), path, message});
        return nlohmann::json();
    };
    auto shown = [&]() { return value.IsScalar() ? "'" + value.Scalar() + "'" : std::string("a ") + (value.IsMap() ? "mapping" : "list"); };

    if (field.type() == FieldType::Object) {
        if (!value.IsMap()) return fail(fmt::format("expected a mapping, got {}", shown()));
        return yaml_to_json(value);
    }
    if (field.type() == FieldType::StringList) {
        nlohmann::json arr = nlohmann::json::array();
        if (value.IsScalar()) {  // a single string is accepted as a one-item list
            arr.push_back(value.Scalar());
            return arr;
        }
        if (!value.IsSequence()) return fail(fmt::format("expected a list of strings, got {}", shown()));
        for (const auto& item : value) {
            if (!item.IsScalar()) {
                issues.push_back({line_of(item.Mark()), column_of(item.Mark()), path, "expected a string list item"});
                return nullptr;
            }
            arr.push_back(item.Scalar());
        }
        return arr;
    }
    if (!value.IsScalar()) {
        const std::string type(to_string(field.type()));
        const bool vowel = !type.empty() && std::string_view("aeiou").find(type.front()) != std::string_view::npos;
        return fail(fmt::format("expected {} {}, got {}", vowel ? "an" : "a", type, shown()));  // "an integer", "a number"
    }

    const std::string& text = value.Scalar();
    nlohmann::json typed = yaml_to_json(value);
    nlohmann::json result;
    double numeric = 0;
    bool check_range = false;
    switch (field.type()) {
        case FieldType::String:
            result = text;
            if (!field.allowed().empty() &&
                std::find(field.allowed().begin(), field.allowed().end(), text) == field.allowed().end()) {
                std::string hint;
                if (auto near = closest_match(text, field.allowed())) hint = fmt::format(" (did you mean '{}'?)", *near);
                return fail(fmt::format("'{}' is not one of: {}{}", text, join(field.allowed()), hint));
            }
            break;
        case FieldType::Integer:
            if (!typed.is_number_integer()) return fail(fmt::format("expected an integer, got '{}'", text));
            result = typed;
            numeric = static_cast<double>(typed.get<std::int64_t>());
            check_range = true;
            break;
        case FieldType::Number:
            if (!typed.is_number()) return fail(fmt::format("expected a number, got '{}'", text));
            result = typed.get<double>();
            numeric = typed.get<double>();
            check_range = true;
            break;
        case FieldType::Boolean:
            if (!typed.is_boolean()) return fail(fmt::format("expected true or false, got '{}'", text));
            result = typed;
            break;
        case FieldType::Duration: {
            auto d = parse_duration(text);
            if (!d && !text.empty() && text.front() == '-' && parse_duration(std::string_view(text).substr(1)))
                return fail(fmt::format("a duration cannot be negative, got '{}'", text));
            if (!d) return fail(fmt::format("expected a duration such as 500ms, 5s, 2m or 1h, got '{}'", text));
            // Deadlines are clock readings plus a duration: 200000d ran past steady_clock's
            // range and a drain ended at once. Nothing docpipe waits for is years long.
            if (*d > kLongestDuration)
                return fail(fmt::format("'{}' is longer than {}d, the longest duration docpipe takes", text,
                                        std::chrono::duration_cast<std::chrono::hours>(kLongestDuration).count() / 24));
            result = d->count();
            numeric = static_cast<double>(d->count()) / 1000.0;  // ranges are in seconds
            check_range = true;
            break;
        }
        default: break;
    }
    if (check_range) {
        const char* unit = field.type() == FieldType::Duration ? " s" : "";  // duration ranges are in seconds
        if (field.min_value() && numeric < *field.min_value())
            return fail(fmt::format("{} is below the minimum {}{}", text, *field.min_value(), unit));
        if (field.max_value() && numeric > *field.max_value())
            return fail(fmt::format("{} is above the maximum {}{}", text, *field.max_value(), unit));
    }
    return result;
}

// Defaults are written in the same notation as YAML values; convert them the same way.
static nlohmann::json convert_default(const Field& field) {
    const nlohmann::json& d = *field.default_json();
    if (field.type() == FieldType::Duration && d.is_string()) {
        auto ms = parse_duration(d.get<std::string>());
        if (!ms) throw std::logic_error("bad duration default for '" + field.name() + "'");
        return ms->count();
    }
    if (field.type() == FieldType::Duration && d.is_number()) return static_cast<std::int64_t>(d.get<double>() * 1000);
    if (field.type() == FieldType::Number && d.is_number()) return d.get<double>();
    return d;
}

// Each field on its own: its key known, its value typed and in range, defaults applied.
nlohmann::json validate_fields(const ConfigSpec& spec, const YAML::Node& node, const std::string& path_prefix,
                               const YAML::Mark& fallback, std::vector<ConfigIssue>& issues);

nlohmann::json validate_config(const ConfigSpec& spec, const YAML::Node& node, const std::string& path_prefix,
                               const YAML::Mark& fallback, std::vector<ConfigIssue>& issues) {
    const std::size_t issues_before = issues.size();
    nlohmann::json values = validate_fields(spec, node, path_prefix, fallback, issues);
    // The rules read typed values: only when every field has one.
    if (issues.size() != issues_before || spec.rules().empty()) return values;
    const Config config(&spec, values);
    const bool present = node.IsDefined() && node.IsMap();
    for (const auto& rule : spec.rules()) {
        std::string problem;
        try {
            problem = rule.check(config);
        } catch (const std::exception& e) {  // a rule that reads a key it did not declare
            problem = fmt::format("the component's check '{}' failed: {}", rule.description, e.what());
        }
        if (problem.empty()) continue;
        const YAML::Mark mark = present && node[rule.key] ? node[rule.key].Mark() : present ? node.Mark() : fallback;
        issues.push_back({line_of(mark), column_of(mark), path_prefix + "." + rule.key, problem});
    }
    return values;
}

nlohmann::json validate_fields(const ConfigSpec& spec, const YAML::Node& node, const std::string& path_prefix,
                               const YAML::Mark& fallback, std::vector<ConfigIssue>& issues) {
    nlohmann::json values = nlohmann::json::object();
    const bool present = node.IsDefined() && !node.IsNull();
    if (present && !node.IsMap()) {
        issues.push_back({line_of(node.Mark()), column_of(node.Mark()), path_prefix,
                          "expected a mapping of config keys"});
        return values;
    }
    if (present) {
        const auto names = field_names(spec);
        for (const auto& kv : node) {
            const std::string key = kv.first.as<std::string>();
            const std::string path = path_prefix + "." + key;
            const Field* field = spec.find(key);
            if (!field) {
                std::string message = fmt::format("unknown key '{}'", key);
                if (auto near = closest_match(key, names)) message += fmt::format(" (did you mean '{}'?)", *near);
                else if (!names.empty()) message += fmt::format("; known keys: {}", join(names));
                else message += "; this component takes no configuration";
                issues.push_back({line_of(kv.first.Mark()), column_of(kv.first.Mark()), path, message});
                continue;
            }
            if (kv.second.IsNull()) continue;  // "key:" with nothing = use the default
            values[key] = convert_value(*field, kv.second, path, issues);
            // `path: ""` (or an empty ${VAR:-}) passed as given, and the node failed at start
            // with no line to look at.
            if (field->is_required() && values[key].is_string() &&
                values[key].get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos)
                issues.push_back({line_of(kv.second.Mark()), column_of(kv.second.Mark()), path,
                                  fmt::format("'{}' is required and cannot be empty or blank{}", key,
                                              field->description().empty() ? "" : ": " + field->description())});
        }
    }
    for (const auto& field : spec.fields()) {
        if (values.contains(field.name())) continue;
        if (field.default_json()) {
            values[field.name()] = convert_default(field);
        } else if (field.is_required()) {
            const YAML::Mark& m = present ? node.Mark() : fallback;
            std::string message = fmt::format("missing required key '{}' ({})", field.name(), to_string(field.type()));
            if (!field.description().empty()) message += ": " + field.description();
            issues.push_back({line_of(m), column_of(m), path_prefix + "." + field.name(), message});
        }
    }
    return values;
}

}  // namespace detail
}  // namespace docpipe
