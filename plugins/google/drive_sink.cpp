#include "drive_sink.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/core.h>

namespace docpipe::google {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

constexpr const char* kFolderType = "application/vnd.google-apps.folder";
constexpr std::size_t kChunkUnit = 256 * 1024;
constexpr std::size_t kMaxName = 150;

// "5MiB", "256 KiB", "300KB", "1048576". K, KB and KiB all mean 1024 (likewise M, G).
std::optional<std::size_t> parse_size(std::string_view text) {
    std::size_t i = 0;
    std::uint64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        n = n * 10 + static_cast<std::uint64_t>(text[i] - '0');
        if (n > (1ull << 40)) return std::nullopt;
        ++i;
    }
    if (i == 0) return std::nullopt;
    while (i < text.size() && text[i] == ' ') ++i;
    std::string unit;
    for (; i < text.size(); ++i) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
    std::uint64_t factor = 0;
    if (unit.empty() || unit == "b") factor = 1;
    else if (unit == "k" || unit == "kb" || unit == "kib") factor = 1024;
    else if (unit == "m" || unit == "mb" || unit == "mib") factor = 1024 * 1024;
    else if (unit == "g" || unit == "gb" || unit == "gib") factor = 1024ull * 1024 * 1024;
    else return std::nullopt;
    return static_cast<std::size_t>(n * factor);
}

std::size_t size_setting(const Config& config, const char* key) {
    const std::string text = config.get_string(key);
    auto v = parse_size(text);
    if (!v) throw std::invalid_argument(fmt::format("{} '{}' is not a size: write e.g. 5MiB, 256KiB or a number of bytes", key, text));
    return *v;
}

// Keeps [A-Za-z0-9._-]; anything else becomes one '_' per run.
std::string sanitise(std::string_view text) {
    std::string out;
    for (char c : text) {
        const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
        if (keep) out += c;
        else if (out.empty() || out.back() != '_') out += '_';
    }
    while (!out.empty() && (out.front() == '.' || out.front() == '_')) out.erase(out.begin());  // no hidden or ".." names
    while (!out.empty() && out.back() == '_') out.pop_back();
    return out;
}

// The end of a "Range: bytes=0-524287" (or "0-524287") header + 1: how many bytes the server has.
std::size_t received_bytes(const net::HttpResponse& response) {
    auto range = response.header("range");
    if (!range) return 0;
    const auto dash = range->rfind('-');
    if (dash == std::string::npos) return 0;
    std::size_t upper = 0;
    bool any = false;
    for (std::size_t i = dash + 1; i < range->size() && std::isdigit(static_cast<unsigned char>((*range)[i])); ++i) {
        upper = upper * 10 + static_cast<std::size_t>((*range)[i] - '0');
        any = true;
    }
    return any ? upper + 1 : 0;
}

}  // namespace

ComponentDescriptor DriveSink::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Sink;
    d.name = "sink.drive";
    d.summary = "Archive: stores each document's original in Google Drive under <root>/YYYY/MM/DD, once per content (idempotent)";
    d.concurrent_safe = true;
    d.has_health_probe = true;
    d.config = ConfigSpec{
        Field::string("root_folder_id").required().describe(
            "Id of the Drive folder the archive goes under (from its URL: /drive/folders/<id>); in a shared drive for a service account"),
        Field::boolean("shared_drive").default_value(false).describe(
            "The root folder is in a shared drive: searches use corpora=allDrives (supportsAllDrives=true is always sent)"),
        Field::string("resumable_above").default_value("5MiB").describe(
            "Files larger than this go up in a resumable session, in chunks; smaller ones in one multipart request (K/M/G = 1024)"),
        Field::string("chunk_size").default_value("8MiB").describe("Bytes per resumable chunk; a multiple of 256KiB"),
        Field::integer("utc_offset_minutes").default_value(480).min(-720).max(840).describe(
            "Time zone of the YYYY/MM/DD folders (Malaysia: 480 = +08:00)"),
        Field::string("drive_url").default_value("https://www.googleapis.com").describe(
            "Drive metadata API root (…/drive/v3/files); tests point it at a fake"),
        Field::string("drive_upload_url").default_value("https://www.googleapis.com/upload").describe(
            "Drive upload API root (…/drive/v3/files?uploadType=…)"),
    };
    add_client_fields(d.config);
    return d;
}

DriveSink::DriveSink(const Config& config, Context& context)
    : client_(config, context, "Drive", {"https://www.googleapis.com/auth/drive"},
              "the folder " + config.get_string("root_folder_id") + (config.get_bool("shared_drive") ? " (shared drive)" : "")),
      ctx_(context),
      drive_url_(base_url(config, "drive_url")),
      upload_url_(base_url(config, "drive_upload_url")),
      root_folder_id_(config.get_string("root_folder_id")),
      shared_drive_(config.get_bool("shared_drive")),
      resumable_above_(size_setting(config, "resumable_above")),
      chunk_size_(size_setting(config, "chunk_size")),
      utc_offset_minutes_(static_cast<int>(config.get_int("utc_offset_minutes"))) {
    if (root_folder_id_.empty()) throw std::invalid_argument("root_folder_id is empty");
    if (chunk_size_ == 0 || chunk_size_ % kChunkUnit != 0)
        throw std::invalid_argument(fmt::format("chunk_size {} is not a multiple of 256KiB (262144 bytes), as Drive requires", chunk_size_));
}

std::string DriveSink::query_literal(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '\'') out += '\\';
        out += c;
    }
    return out;
}

std::string DriveSink::file_name(const Document& doc) {
    std::string email = attribute(doc, "message_id");
    while (!email.empty() && (email.front() == '<' || email.front() == ' ')) email.erase(email.begin());
    while (!email.empty() && (email.back() == '>' || email.back() == ' ')) email.pop_back();
    email = sanitise(email);
    if (email.empty()) email = doc.id;
    std::string file = attribute(doc, "filename");
    if (file.empty() && !doc.parts.empty()) file = doc.parts[0].name;
    file = sanitise(file);
    if (file.empty()) file = "document";
    std::string name = email + "_" + file;
    if (name.size() > kMaxName) {
        // Keep the extension: it tells a person (and Drive's preview) what the file is.
        std::string ext;
        if (const auto dot = file.rfind('.'); dot != std::string::npos && file.size() - dot <= 16) ext = file.substr(dot);
        name = name.substr(0, kMaxName - ext.size()) + ext;
    }
    return name;
}

namespace {
// "https://host:port" of a URL, host in lower case; "" when it has no scheme.
std::string origin_of(std::string_view url) {
    const auto scheme = url.find("://");
    if (scheme == std::string_view::npos) return {};
    const auto end = url.find_first_of("/?#", scheme + 3);
    std::string origin(url.substr(0, end));
    for (auto& c : origin) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return origin;
}
}  // namespace

std::string DriveSink::files_url(bool upload) const { return (upload ? upload_url_ : drive_url_) + "/drive/v3/files"; }

std::vector<json> DriveSink::list(const std::string& q, const std::string& what) {
    std::vector<json> out;
    std::string page_token;
    for (int page = 0; page < 50; ++page) {
        std::string url = files_url(false) + "?q=" + net::url_encode(q) +
                          "&fields=" + net::url_encode("nextPageToken,files(id,name,mimeType,parents,appProperties)") +
                          "&pageSize=100&spaces=drive&supportsAllDrives=true&includeItemsFromAllDrives=true";
        if (shared_drive_) url += "&corpora=allDrives";
        if (!page_token.empty()) url += "&pageToken=" + net::url_encode(page_token);
        const auto response = client_.expect_ok({"GET", url, {}, {}, {}}, what);
        const auto j = json::parse(response.body, nullptr, false);
        if (!j.is_object()) throw Stop{SinkResult::hold(std::chrono::seconds(5), "Drive answered " + what + " with no JSON object")};
        if (j.contains("files") && j["files"].is_array())
            for (const auto& f : j["files"])
                if (f.is_object() && f.contains("id") && f["id"].is_string()) out.push_back(f);
        // Empty or short pages can come before the end: only a missing token ends the list.
        if (!j.contains("nextPageToken") || !j["nextPageToken"].is_string() || j["nextPageToken"].get<std::string>().empty()) break;
        page_token = j["nextPageToken"].get<std::string>();
    }
    return out;
}

std::string DriveSink::folder(const std::string& parent, const std::string& name) {
    const std::string key = parent + "/" + name;
    auto cached = [&]() -> std::optional<std::string> {
        std::lock_guard lock(cache_mutex_);
        auto it = folders_.find(key);
        return it == folders_.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    if (auto id = cached()) return *id;
    // One lookup-or-create at a time in this process: two workers never both create it.
    std::lock_guard creating(create_mutex_);
    if (auto id = cached()) return *id;

    const std::string q = fmt::format("name = '{}' and '{}' in parents and mimeType = '{}' and trashed = false", query_literal(name),
                                      query_literal(parent), kFolderType);
    const std::string what = fmt::format("lookup of folder {} in {}", name, parent);
    auto found = list(q, what);
    if (found.empty()) {
        const json body{{"name", name}, {"mimeType", kFolderType}, {"parents", json::array({parent})}};
        const auto created = client_.expect_ok({"POST", files_url(false) + "?supportsAllDrives=true&fields=id",
                                                {{"Content-Type", "application/json; charset=UTF-8"}}, docpipe::json_text(body), {}},
                                               fmt::format("creation of folder {} in {}", name, parent));
        const std::string id = file_id_of(created, "folder creation");
        ctx_.metrics().increment("drive_folders_created_total");
        ctx_.log().log(LogLevel::Info, fmt::format("created Drive folder {} ({}) in {}", name, id, parent));
        // Another process may have created the same folder at the same moment: list again,
        // and let every process settle on the smallest id.
        found = list(q, what);
        if (found.empty()) found.push_back(json{{"id", id}});
    }
    std::string chosen = found.front()["id"].get<std::string>();
    for (const auto& f : found) chosen = std::min(chosen, f["id"].get<std::string>());
    if (found.size() > 1)
        ctx_.log().log(LogLevel::Warn, fmt::format("{} Drive folders named {} in {}: using {}, the smallest id", found.size(), name, parent, chosen));
    std::lock_guard lock(cache_mutex_);
    folders_[key] = chosen;
    return chosen;
}

std::string DriveSink::file_id_of(const net::HttpResponse& response, const std::string& what) {
    const auto j = json::parse(response.body, nullptr, false);
    if (j.is_object() && j.contains("id") && j["id"].is_string() && !j["id"].get<std::string>().empty()) return j["id"].get<std::string>();
    throw Stop{SinkResult::retry(std::chrono::seconds(1), fmt::format("Drive answered {} (HTTP {}) without a file id", what, response.status))};
}

SinkResult DriveSink::write(const Document& doc) {
    if (doc.parts.empty() || !doc.parts[0].bytes) return SinkResult::fail("nothing to archive: the document has no raw part");
    const Part& part = doc.parts[0];
    const auto& bytes = *part.bytes;
    const std::string sha = sha256_hex(bytes.data(), bytes.size());
    {
        std::unique_lock lock(busy_mutex_);
        busy_cv_.wait(lock, [&] { return !busy_.count(sha); });
        busy_.insert(sha);
    }
    struct Release {
        DriveSink& sink;
        const std::string& sha;
        ~Release() {
            {
                std::lock_guard lock(sink.busy_mutex_);
                sink.busy_.erase(sha);
            }
            sink.busy_cv_.notify_all();
        }
    } release{*this, sha};
    try {
        auto when = parse_time(attribute(doc, "received_at"), utc_offset_minutes_);
        if (!when) when = parse_time(attribute(doc, "email_date"), utc_offset_minutes_);
        if (!when) when = ctx_.clock().now();
        const auto date = local_date(*when, utc_offset_minutes_);
        const std::string year = folder(root_folder_id_, fmt::format("{:04}", date.year));
        const std::string month = folder(year, fmt::format("{:02}", date.month));
        const std::string day = folder(month, fmt::format("{:02}", date.day));

        const auto existing = list(fmt::format("appProperties has {{ key='docpipe_sha256' and value='{}' }} and '{}' in parents and trashed = false",
                                               sha, query_literal(day)),
                                   "lookup of an earlier copy in folder " + day);
        if (!existing.empty()) {
            std::string id = existing.front()["id"].get<std::string>();
            for (const auto& f : existing) id = std::min(id, f["id"].get<std::string>());
            reused_.fetch_add(1, std::memory_order_relaxed);
            ctx_.metrics().increment("drive_files_reused_total");
            ctx_.log().log(LogLevel::Info, fmt::format("already archived in Drive as {} (same SHA-256)", id), doc.id);
            return SinkResult::ok().with_reference("drive_file_id", id);
        }

        std::string job = attribute(doc, "root_id");
        if (job.empty()) job = doc.parent_id;
        if (job.empty()) job = doc.id;
        const json metadata{{"name", file_name(doc)},
                            {"parents", json::array({day})},
                            {"mimeType", part.media_type.empty() ? media_type_for(part.name) : part.media_type},
                            {"appProperties", {{"docpipe_doc_id", doc.id}, {"docpipe_job", job}, {"docpipe_sha256", sha}}}};
        const std::string what = fmt::format("upload of {} bytes to folder {}", bytes.size(), day);
        const std::string id = bytes.size() > resumable_above_ ? upload_resumable(metadata, part, sha, day, what)
                                                               : upload_multipart(metadata, part, what);
        uploaded_.fetch_add(1, std::memory_order_relaxed);
        ctx_.metrics().increment("drive_files_uploaded_total");
        ctx_.metrics().increment("drive_bytes_uploaded_total", static_cast<double>(bytes.size()));
        ctx_.log().log(LogLevel::Info, fmt::format("archived in Drive as {} ({} bytes)", id, bytes.size()), doc.id);
        return SinkResult::ok().with_reference("drive_file_id", id);
    } catch (Stop& stop) {
        return std::move(stop.result);
    }
}

std::string DriveSink::upload_multipart(const json& metadata, const Part& part, const std::string& what) {
    const auto& bytes = *part.bytes;
    const std::string_view data(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    std::string boundary;
    do boundary = "docpipe-" + random_hex(16);
    while (data.find(boundary) != std::string_view::npos);
    std::string body;
    body.reserve(bytes.size() + 512);
    body += "--" + boundary + "\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n" + docpipe::json_text(metadata) + "\r\n";
    body += "--" + boundary + "\r\nContent-Type: " + metadata["mimeType"].get<std::string>() + "\r\n\r\n";
    body.append(data);
    body += "\r\n--" + boundary + "--\r\n";
    const auto response = client_.expect_ok({"POST", files_url(true) + "?uploadType=multipart&supportsAllDrives=true&fields=id,size",
                                             {{"Content-Type", "multipart/related; boundary=" + boundary}}, std::move(body),
                                             client_.upload_timeout()},
                                            what);
    return file_id_of(response, what);
}

std::string DriveSink::start_session(const json& metadata, const Part& part, const std::string& what) {
    const auto response = client_.expect_ok({"POST",
                                             files_url(true) + "?uploadType=resumable&supportsAllDrives=true&fields=id,size",
                                             {{"Content-Type", "application/json; charset=UTF-8"},
                                              {"X-Upload-Content-Type", metadata["mimeType"].get<std::string>()},
                                              {"X-Upload-Content-Length", std::to_string(part.bytes->size())}},
                                             docpipe::json_text(metadata),
                                             {}},
                                            "start of the resumable " + what);
    auto location = response.header("location");
    if (!location || location->empty())
        throw Stop{SinkResult::retry(std::chrono::seconds(1), "Drive started a resumable upload without a Location header")};
    // The session URL gets the access token with every chunk: only where uploads go.
    if (origin_of(*location) != origin_of(upload_url_))
        throw Stop{SinkResult::hold(std::chrono::seconds(60),
                                    fmt::format("Drive's resumable upload session is at {}, not at drive_upload_url's {}: the access token "
                                                "is not sent there; check drive_upload_url and any proxy in between",
                                                origin_of(*location), origin_of(upload_url_)))};
    return *location;
}

std::string DriveSink::upload_resumable(const json& metadata, const Part& part, const std::string& sha, const std::string& folder_id,
                                        const std::string& what) {
    const auto& bytes = *part.bytes;
    const std::size_t total = bytes.size();
    const std::string key = "drive/session/" + sha;
    // Drive keeps a session about a week; the state store forgets it a little earlier.
    const auto keep = std::chrono::hours(24 * 6);

    // What the session has: the file (done), a byte count, or nothing (expired: start again).
    struct Status {
        enum Kind { Done, Partial, Gone } kind;
        std::size_t offset = 0;
        std::string id;
    };
    auto interpret = [&](const net::HttpResponse& r, const std::string& step) -> Status {
        if (r.status == 200 || r.status == 201) return {Status::Done, total, file_id_of(r, step)};
        if (r.status == 308) return {Status::Partial, received_bytes(r), {}};
        if (r.status == 404 || r.status == 410) return {Status::Gone, 0, {}};
        throw Stop{client_.failure(r, step)};
    };
    auto ask = [&](const std::string& session) -> Status {
        net::HttpResponse r;
        try {
            r = client_.send({"PUT", session, {{"Content-Range", fmt::format("bytes */{}", total)}}, {}, {}});
        } catch (const net::TransportError& e) {
            throw Stop{client_.unreachable(e, "status of the resumable " + what)};
        }
        if (r.status >= 500) throw Stop{client_.failure(r, "status of the resumable " + what)};
        return interpret(r, "status of the resumable " + what);
    };
    auto remember = [&](const std::string& session) {
        ctx_.state().put(key, docpipe::json_text(json{{"url", session}, {"folder", folder_id}, {"size", total}}),
                         std::chrono::duration_cast<std::chrono::seconds>(keep));
    };
    auto finish = [&](const std::string& id) {
        ctx_.state().erase(key);
        return id;
    };

    std::string session;
    std::size_t offset = 0;
    if (auto stored = ctx_.state().get(key)) {
        const auto j = json::parse(*stored, nullptr, false);
        // A session URL elsewhere than uploads go (a store someone else can write) is not asked:
        // asking would send it the access token.
        if (j.is_object() && j.value("folder", "") == folder_id && j.value("size", std::uint64_t{0}) == total && j.contains("url") &&
            j["url"].is_string() && origin_of(j["url"].get<std::string>()) == origin_of(upload_url_)) {
            const auto st = ask(j["url"].get<std::string>());
            if (st.kind == Status::Done) return finish(st.id);
            if (st.kind == Status::Partial) {
                session = j["url"].get<std::string>();
                offset = st.offset;
                ctx_.log().log(LogLevel::Info, fmt::format("resuming an earlier Drive upload session at byte {} of {}", offset, total));
            }
        }
    }
    if (session.empty()) {
        session = start_session(metadata, part, what);
        remember(session);
    }

    int new_sessions = 0;
    int troubles = 0;  // failures in a row without progress
    while (true) {
        if (offset > total) offset = 0;  // a server claiming more than there is: start over
        const std::size_t end = std::min(offset + chunk_size_, total);
        Status st{Status::Partial, offset, {}};
        bool ask_status = false;
        try {
            std::string chunk(reinterpret_cast<const char*>(bytes.data()) + offset, end - offset);
            const auto r = client_.send({"PUT",
                                         session,
                                         {{"Content-Range", total == 0 ? std::string("bytes */0") : fmt::format("bytes {}-{}/{}", offset, end - 1, total)},
                                          {"Content-Type", metadata["mimeType"].get<std::string>()}},
                                         std::move(chunk),
                                         client_.upload_timeout()});
            if (r.status >= 500 || r.status == 408) {
                if (++troubles > 3) throw Stop{client_.failure(r, "chunk of the resumable " + what)};
                ask_status = true;
            } else {
                st = interpret(r, "chunk of the resumable " + what);
            }
        } catch (const net::TransportError& e) {
            // The connection broke mid-chunk: the server may have kept part of it.
            if (++troubles > 3) throw Stop{client_.unreachable(e, "chunk of the resumable " + what)};
            ctx_.metrics().increment("drive_upload_interruptions_total");
            ask_status = true;
        }
        if (ask_status) {
            ctx_.clock().sleep_for(net::backoff_delay(troubles, milliseconds(500), milliseconds(8000), 2.0, milliseconds(250)));
            st = ask(session);
        }
        switch (st.kind) {
            case Status::Done:
                return finish(st.id);
            case Status::Partial:
                if (st.offset > offset) {
                    troubles = 0;
                } else if (!ask_status && ++troubles > 3) {
                    throw Stop{SinkResult::hold(std::chrono::seconds(30),
                                                fmt::format("Drive keeps the resumable {} at byte {} of {}", what, st.offset, total))};
                }
                offset = st.offset;
                break;
            case Status::Gone:
                if (++new_sessions > 2)
                    throw Stop{SinkResult::hold(std::chrono::seconds(30), "Drive keeps losing the resumable upload session for " + what)};
                ctx_.log().log(LogLevel::Info, "the Drive upload session expired: starting a new one");
                session = start_session(metadata, part, what);
                remember(session);
                offset = 0;
                break;
        }
    }
}

HealthReport DriveSink::health() {
    return client_.health(fmt::format("{} files uploaded, {} found already archived, since start", uploaded_.load(), reused_.load()));
}

}  // namespace docpipe::google
