// What the admin server reads out of a request once Beast has parsed the HTTP framing: the
// target's path and query, route captures, the API key, a caller's request id, and the
// values of query parameters and JSON bodies.
//
// Why a separate unit: these are pure functions over untrusted text, kept apart from the
// sockets and handlers so that tests/fuzz/admin_request_fuzz.cpp can drive them directly.
// Thread-safe: no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace docpipe::core::admin {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// %XX-decoding for paths and query strings; a malformed escape is kept as written.
std::string percent_decode(std::string_view in, bool plus_is_space);

// "/a/b/" -> {"a", "b", ""}. A path that does not start with '/' has no segments.
std::vector<std::string_view> split_path(std::string_view path);

// "a=1&b=x%20y&c" -> {{"a","1"}, {"b","x y"}, {"c",""}}: keys and values decoded, '+' as a
// space, empty pairs skipped, repeats kept in order (the first one wins on lookup).
QueryParams parse_query(std::string_view query);

// A request target ("/api/v1/jobs?limit=5") taken apart.
struct RequestTarget {
    std::string raw_path;  // up to '?', still percent-encoded (safe to log)
    std::string path;      // percent-decoded
    QueryParams params;
};
RequestTarget parse_target(std::string_view target);

// Matches a route's segments ("{}" = any one non-empty segment) against a request path's
// raw segments. The decoded captures when it matches, else nullopt.
std::optional<std::vector<std::string>> match_route(const std::vector<std::string>& pattern,
                                                    const std::vector<std::string_view>& raw_segments);

// The key a client sent: X-API-Key, else "Authorization: Bearer <key>"; "" when neither.
std::string api_key_from_headers(std::string_view x_api_key, std::string_view authorization);

// A caller's X-Request-ID is echoed only when it is a plain token (1-64 of [A-Za-z0-9._-]),
// so logs on both sides line up without letting a client write into our log lines.
bool is_request_id_token(std::string_view given);

// "2024-12-24" -> epoch milliseconds of its UTC midnight (or the day's last millisecond
// when end_of_day). nullopt for anything else, including impossible days (2024-02-31).
std::optional<std::int64_t> parse_day(const std::string& text, bool end_of_day);

// A whole decimal integer (as std::stol reads it) within [lo, hi]; nullopt otherwise.
std::optional<long> parse_integer(const std::string& text, long lo, long hi);

// How deep a request body may nest ({"documents": {"id": {"itemized_charges": [{...}]}}} is 5).
inline constexpr int kMaxBodyDepth = 32;

// A request body: empty means {}, otherwise it must be a JSON object, nested at most
// kMaxBodyDepth deep, with no key twice in one object. On failure `out` is unspecified and
// the returned text says why ("request body is not valid JSON: ..."); it never throws, also
// not for numbers out of range.
std::optional<std::string> parse_json_object_body(const std::string& body, nlohmann::json& out);

}  // namespace docpipe::core::admin
