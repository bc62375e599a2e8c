// docpipe SDK internals — validating a YAML config mapping against a ConfigSpec while
// keeping file positions. Used by the runtime and the testing kit; plugin authors do not
// need it. Includes yaml-cpp, so keep it out of widely included headers.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "docpipe/config_spec.hpp"

namespace docpipe::detail {

// Validates `node` (a mapping, or null for "no config") against `spec`. Problems are
// appended to `issues` with `path_prefix` + "." + key as their path. `fallback` is the
// position reported for problems that have no node of their own (a missing key). Once every
// field is valid, the spec's rules (ConfigSpec::rule) run on the typed values.
nlohmann::json validate_config(const ConfigSpec& spec, const YAML::Node& node,
                               const std::string& path_prefix, const YAML::Mark& fallback,
                               std::vector<ConfigIssue>& issues);

// A YAML scalar/sequence/mapping as JSON (scalars typed: bool, int, double, string).
nlohmann::json yaml_to_json(const YAML::Node& node);

inline int line_of(const YAML::Mark& m) { return m.is_null() ? 0 : m.line + 1; }
inline int column_of(const YAML::Mark& m) { return m.is_null() ? 0 : m.column + 1; }

}  // namespace docpipe::detail
