#include "admin/request_parsing.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <regex>
#include <set>
#include <vector>
#include <strings.h>

#include <fmt/core.h>

namespace docpipe::core::admin {

std::string percent_decode(std::string_view in, bool plus_is_space) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
            out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
            i += 2;
        } else if (plus_is_space && in[i] == '+') {
            out += ' ';
        } else {
            out += in[i];
        }
    }
    return out;
}

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> parts;
    if (path.empty() || path.front() != '/') return parts;
    path.remove_prefix(1);
    while (true) {
        auto slash = path.find('/');
        parts.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return parts;
}

QueryParams parse_query(std::string_view query) {
    QueryParams params;
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        if (!pair.empty()) {
            auto eq = pair.find('=');
            params.emplace_back(percent_decode(pair.substr(0, eq), true),
                                eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true));
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return params;
}

RequestTarget parse_target(std::string_view target) {
    RequestTarget t;
    const auto q = target.find('?');
    t.raw_path = std::string(target.substr(0, q));
    t.path = percent_decode(t.raw_path, false);
    if (q != std::string_view::npos) t.params = parse_query(target.substr(q + 1));
    return t;
}

std::optional<std::vector<std::string>> match_route(const std::vector<std::string>& pattern,
                                                    const std::vector<std::string_view>& raw_segments) {
    if (pattern.size() != raw_segments.size()) return std::nullopt;
    std::vector<std::string> captures;
    for (std::size_t i = 0; i < raw_segments.size(); ++i) {
        if (pattern[i] == "{}") {
            if (raw_segments[i].empty()) return std::nullopt;
            captures.push_back(percent_decode(raw_segments[i], false));
        } else if (pattern[i] != percent_decode(raw_segments[i], false)) {
            return std::nullopt;
        }
    }
    return captures;
}

std::string api_key_from_headers(std::string_view x_api_key, std::string_view authorization) {
    if (!x_api_key.empty()) return std::string(x_api_key);
    // The scheme's name is case-insensitive (RFC 9110 11.1): "bearer KEY" is a key too.
    if (authorization.size() > 7 && authorization[6] == ' ' && strncasecmp(authorization.data(), "Bearer", 6) == 0)
        return std::string(authorization.substr(7));
    return {};
}

bool is_request_id_token(std::string_view given) {
    return !given.empty() && given.size() <= 64 && std::all_of(given.begin(), given.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
}

std::optional<std::int64_t> parse_day(const std::string& text, bool end_of_day) {
    static const std::regex kDate(R"((\d{4})-(\d{2})-(\d{2}))");
    std::smatch m;
    if (!std::regex_match(text, m, kDate)) return std::nullopt;
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31) return std::nullopt;
    const int month = tm.tm_mon, day = tm.tm_mday;
    std::time_t t = timegm(&tm);  // normalises 2024-02-31 to 2024-03-02: refuse what moved
    if (tm.tm_mon != month || tm.tm_mday != day) return std::nullopt;
    std::int64_t ms = static_cast<std::int64_t>(t) * 1000;
    return end_of_day ? ms + 86'400'000 - 1 : ms;
}

std::optional<long> parse_integer(const std::string& text, long lo, long hi) {
    try {
        std::size_t used = 0;
        const long n = std::stol(text, &used);
        if (used == text.size() && n >= lo && n <= hi) return n;
    } catch (...) {  // not a number, or out of long's range: both are "not in [lo, hi]"
    }
    return std::nullopt;
}

std::optional<std::string> parse_json_object_body(const std::string& body, nlohmann::json& out) {
    if (body.empty()) {
        out = nlohmann::json::object();
        return std::nullopt;
    }
    // What the parser's callback refuses: past the depth any request here needs, a body of a
    // million '[' (under the size limit) built a value whose copy and dump recursed off the
    // stack and took the process down; and a key given twice, of which JSON keeps one
    // silently (the last "fields" won, and NCB booked the value the reviewer did not see last).
    struct Refused {
        std::string why;
    };
    std::vector<std::set<std::string>> keys_by_depth;
    const nlohmann::json::parser_callback_t check = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using Event = nlohmann::json::parse_event_t;
        if ((event == Event::object_start || event == Event::array_start) && depth >= kMaxBodyDepth)
            throw Refused{fmt::format("request body nests deeper than {} levels; no request here needs more than a few", kMaxBodyDepth)};
        if (event == Event::object_start) keys_by_depth.emplace_back();
        else if (event == Event::object_end && !keys_by_depth.empty()) keys_by_depth.pop_back();
        else if (event == Event::key && !keys_by_depth.empty() && !keys_by_depth.back().insert(parsed.get<std::string>()).second)
            throw Refused{fmt::format("request body gives the key '{}' twice in one object; give it once", parsed.get<std::string>())};
        return true;
    };
    try {
        out = nlohmann::json::parse(body, check);
    } catch (const Refused& refused) {
        return refused.why;
    } catch (const nlohmann::json::exception& e) {
        // Not only parse_error: a number too large for a double ("1e999") throws out_of_range,
        // which used to escape to the handler's catch-all and answer 500 with an error logged
        // (found by tests/fuzz/admin_request_fuzz.cpp). It is the client's bad JSON: 400.
        return std::string("request body is not valid JSON: ") + e.what();
    }
    if (!out.is_object()) return std::string("request body must be a JSON object");
    return std::nullopt;
}

}  // namespace docpipe::core::admin
