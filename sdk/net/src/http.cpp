#include "docpipe/net/http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

namespace docpipe::net {

namespace {

void global_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One easy handle per thread, reset between calls: curl_easy_reset keeps the handle's
// connection cache, so keep-alive connections survive from one call to the next.
struct ThreadHandle {
    CURL* handle = nullptr;
    ThreadHandle() {
        global_init_once();
        handle = curl_easy_init();
    }
    ~ThreadHandle() {
        if (handle) curl_easy_cleanup(handle);
    }
};

CURL* thread_handle() {
    thread_local ThreadHandle h;
    if (!h.handle) throw TransportError("libcurl could not create a handle (out of memory?)", false);
    curl_easy_reset(h.handle);
    return h.handle;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

struct BodySink {
    std::string& body;
    std::size_t limit;
    bool too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto* sink = static_cast<BodySink*>(user);
    if (size * count > sink->limit - std::min(sink->limit, sink->body.size())) {
        sink->too_large = true;
        return 0;  // libcurl ends the transfer with a write error
    }
    sink->body.append(data, size * count);
    return size * count;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto* response = static_cast<HttpResponse*>(user);
    std::string_view line(data, size * count);
    if (line.rfind("HTTP/", 0) == 0) {
        response->headers.clear();  // a new response (after 100 Continue or a redirect)
        return size * count;
    }
    const auto colon = line.find(':');
    if (colon != std::string_view::npos)
        response->headers.emplace_back(lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
    return size * count;
}

struct HeaderList {
    curl_slist* list = nullptr;
    ~HeaderList() { curl_slist_free_all(list); }
    void add(const std::string& line) {
        curl_slist* next = curl_slist_append(list, line.c_str());
        if (!next) throw TransportError("libcurl could not add a header (out of memory?)", false);
        list = next;
    }
};

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    const std::string wanted = lower(name);
    for (const auto& [k, v] : headers)
        if (k == wanted) return v;
    return std::nullopt;
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) { global_init_once(); }

HttpResponse HttpClient::send(const HttpRequest& request) const {
    CURL* curl = thread_handle();
    HttpResponse response;
    HeaderList headers;
    bool has_content_type = false;
    for (const auto& [k, v] : request.headers) {
        headers.add(k + ": " + v);
        has_content_type |= lower(k) == "content-type";
    }
    // libcurl would otherwise send "Expect: 100-continue" for larger bodies and wait for it.
    headers.add("Expect:");
    if (!request.body.empty() && !has_content_type) headers.add("Content-Type: application/octet-stream");

    const auto total = request.timeout.count() > 0 ? request.timeout : options_.total_timeout;
    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    // When a kept-alive connection dies before any answer, libcurl sends the request again by
    // itself, once per kept-alive connection it tries, though the server may have applied it:
    // a Sheets append or a Drive upload would then be made twice, and the caller never learns
    // of the first. A request that changes something (anything but GET and HEAD) goes on a new
    // connection, so that a lost answer reaches the caller, whose own checks (markers,
    // look-ups, the upload session's status, Idempotency-Key) decide what to do.
    if (request.method != "GET" && request.method != "HEAD") curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(total.count()));
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);  // APIs answer redirects on purpose (Drive's 308)
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    BodySink body_sink{response.body, options_.max_response_bytes};
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body_sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
    const std::string method = request.method.empty() ? "GET" : request.method;
    if (method == "GET") {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (method == "HEAD") {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
        // Always a body for these methods, so an empty PUT still sends Content-Length: 0.
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    }
    char error[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);

    const CURLcode rc = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);  // the list dies with this call
    if (rc != CURLE_OK) {
        // The URL may carry a query with ids: the host, port and path are what an operator needs
        // ("POST 127.0.0.1" did not say which of the fakes or endpoints it was).
        std::string host;
        if (CURLU* u = curl_url()) {
            if (curl_url_set(u, CURLUPART_URL, request.url.c_str(), 0) == CURLUE_OK) {
                auto part = [&](CURLUPart which) {
                    char* p = nullptr;
                    std::string text;
                    if (curl_url_get(u, which, &p, 0) == CURLUE_OK && p) text = p;
                    curl_free(p);
                    return text;
                };
                host = part(CURLUPART_HOST);
                if (const std::string port = part(CURLUPART_PORT); !host.empty() && !port.empty()) host += ":" + port;
                if (std::string path = part(CURLUPART_PATH); !host.empty() && path.size() > 1) {
                    if (path.size() > 80) path = path.substr(0, 80) + "...";
                    host += path;
                }
            }
            curl_url_cleanup(u);
        }
        const std::string detail = body_sink.too_large
                                       ? "the answer is larger than " + std::to_string(options_.max_response_bytes) +
                                             " bytes (unpacked); refused, the connection is closed"
                                       : std::string(error[0] ? error : curl_easy_strerror(rc));
        throw TransportError(method + " " + (host.empty() ? "(bad URL)" : host) + ": " + detail, rc == CURLE_OPERATION_TIMEDOUT,
                             body_sink.too_large);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    return response;
}

std::string url_encode(std::string_view value) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size() * 3);
    for (unsigned char c : value) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string out;
    for (const auto& [k, v] : fields) {
        if (!out.empty()) out += '&';
        out += url_encode(k) + '=' + url_encode(v);
    }
    return out;
}

}  // namespace docpipe::net
