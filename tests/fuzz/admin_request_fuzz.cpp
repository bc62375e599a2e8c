// Fuzz target: an admin API request from the raw bytes on the socket to the values the
// handlers act on, without the sockets, threads and backend of core/src/admin_server.cpp:
//   - Beast's HTTP parser with the server's limits (16 KiB head), as the server reads it;
//   - the target's path and query (admin/request_parsing.cpp: percent-decoding, '+',
//     empty and repeated parameters), routing with captures against the server's routes;
//   - the API key from X-API-Key / Authorization: Bearer, the caller's X-Request-ID;
//   - query parameters as the handlers read them (limit, offset, days, dates, the page
//     number capture, the review filters of admin/review_data.cpp) and the JSON body.
// Invariants checked (abort when broken): a request id we would echo is a plain token;
// integers come back within their range; a decoded capture never contains the raw path's
// '?'. Everything else is the sanitizers' job.
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "admin/request_parsing.hpp"
#include "admin/review_data.hpp"
#include "admin_server.hpp"
#include "fuzz_check.hpp"

namespace http = boost::beast::http;
using namespace docpipe::core;

namespace {

constexpr std::size_t kMaxInput = 32 * 1024;

// The server's route patterns (AdminServer::Impl::routes() and ui_routes()); only their
// shapes matter here, to reach the capture paths.
const std::vector<std::vector<std::string>>& route_patterns() {
    static const auto patterns = [] {
        std::vector<std::vector<std::string>> out;
        for (const char* p : {"/health", "/health/ready", "/health/detailed", "/metrics", "/hooks/{}", "/hooks/{}/{}",
                              "/api/v1/jobs", "/api/v1/jobs/{}", "/api/v1/jobs/{}/retry", "/api/v1/jobs/{}/review",
                              "/api/v1/exceptions", "/api/v1/exceptions/{}/approve", "/api/v1/exceptions/{}/reject",
                              "/api/v1/stats/dashboard", "/api/v1/stats/history", "/api/v1/stats/daily", "/", "/ui", "/ui/",
                              "/ui/{}", "/api/v1/session", "/api/v1/exceptions/{}",
                              "/api/v1/exceptions/{}/documents/{}/pages/{}/image", "/api/v1/jobs/{}/audit"}) {
            std::vector<std::string> segments;
            for (auto s : admin::split_path(p)) segments.emplace_back(s);
            out.push_back(std::move(segments));
        }
        return out;
    }();
    return patterns;
}

std::optional<std::string> param(const admin::QueryParams& params, std::string_view name) {
    for (const auto& [k, v] : params)
        if (k == name) return v;
    return std::nullopt;
}

void integer(const admin::QueryParams& params, const char* name, long lo, long hi) {
    if (auto v = param(params, name))
        if (auto n = admin::parse_integer(*v, lo, hi)) FUZZ_CHECK(*n >= lo && *n <= hi);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > kMaxInput) return 0;
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(16 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    std::size_t used = 0;
    while (used < size && !parser.is_done()) {
        const std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
        used += n;
        if (ec || n == 0) break;
    }
    if (!parser.is_header_done()) return 0;
    const auto& msg = parser.get();

    const admin::RequestTarget target = admin::parse_target(std::string_view(msg.target().data(), msg.target().size()));
    const auto raw_segments = admin::split_path(target.raw_path);
    for (const auto& pattern : route_patterns()) {
        auto captures = admin::match_route(pattern, raw_segments);
        if (!captures) continue;
        for (const std::string& c : *captures) FUZZ_CHECK(!c.empty());
        if (captures->size() == 3) {  // .../pages/{}/image: the page number
            if (auto page = admin::parse_integer((*captures)[2], 0, std::numeric_limits<int>::max())) FUZZ_CHECK(*page >= 0);
        }
    }

    const auto header = [&](std::string_view name) {
        const auto v = msg[boost::beast::string_view(name.data(), name.size())];
        return std::string(v.data(), v.size());
    };
    const std::string key = admin::api_key_from_headers(header("X-API-Key"), header("Authorization"));
    if (!key.empty()) (void)keys_equal(key, "fuzz-key");
    const std::string request_id = header("X-Request-ID");
    if (admin::is_request_id_token(request_id)) {
        FUZZ_CHECK(request_id.size() <= 64);
        for (char c : request_id) FUZZ_CHECK(c != '\r' && c != '\n' && c != ' ' && c != '"');
    }

    integer(target.params, "limit", 1, 100);
    integer(target.params, "offset", 0, 100'000'000);
    integer(target.params, "days", 1, 90);
    for (const char* name : {"date", "date_from", "date_to"})
        if (auto d = param(target.params, name)) {
            const auto from = admin::parse_day(*d, false), to = admin::parse_day(*d, true);
            FUZZ_CHECK(from.has_value() == to.has_value());
            if (from) FUZZ_CHECK(*to - *from == 86'400'000 - 1);
        }
    nlohmann::json problems = nlohmann::json::object();
    (void)admin::parse_job_filter([&](std::string_view name) { return param(target.params, name); }, problems);

    if (parser.is_done()) {
        nlohmann::json body;
        if (!admin::parse_json_object_body(msg.body(), body)) FUZZ_CHECK(body.is_object());
    }
    // admin.listen from a pipeline file is the other text the server parses.
    try {
        (void)parse_listen_address(target.path);
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
