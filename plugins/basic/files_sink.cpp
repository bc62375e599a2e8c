#include "files_sink.hpp"

#include "docpipe/claim.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <fmt/core.h>

namespace docpipe::basic {

namespace fs = std::filesystem;

ComponentDescriptor FilesSink::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Sink;
    d.name = "sink.files";
    d.summary = "Writes documents as JSON files (atomic temp + rename) or JSON Lines";
    d.concurrent_safe = true;
    d.has_health_probe = true;
    d.config = ConfigSpec{
        Field::string("path").path().required().describe("Output folder (created if missing)"),
        Field::enumeration("format", {"json", "jsonl"}).default_value("json")
            .describe("json: one file per document; jsonl: one line per document in one file"),
        Field::string("file_name")
            .describe("File name; '{id}' is replaced by the document id (default: '{id}.json', or 'documents.jsonl')"),
        Field::boolean("include_content").default_value(false).describe("Embed raw part bytes as base64"),
        Field::boolean("fsync").default_value(true).describe("fsync each write before reporting success"),
        Field::enumeration("record", {"document", "ncb"}).default_value("document")
            .describe("document: the whole document as JSON; ncb: the NCB claim record (docpipe/claim.hpp), and a claim "
                      "missing a required value fails with the list instead of being written"),
        Field::integer("utc_offset_minutes").default_value(480).min(-720).max(840)
            .describe("Time zone of the NCB record's Submission Date (480 = Malaysia, +08:00)"),
    };
    return d;
}

FilesSink::FilesSink(const Config& config, Context& context)
    : ctx_(context),
      dir_(config.get_string("path")),
      jsonl_(config.get_string("format") == "jsonl"),
      include_content_(config.get_bool("include_content")),
      fsync_(config.get_bool("fsync")),
      ncb_(config.get_string("record") == "ncb"),
      utc_offset_minutes_(static_cast<int>(config.get_int("utc_offset_minutes"))) {
    file_name_ = config.has("file_name") ? config.get_string("file_name") : (jsonl_ ? "documents.jsonl" : "{id}.json");
    if (file_name_.find('/') != std::string::npos)
        throw std::invalid_argument("file_name '" + file_name_ + "' must not contain '/'; put folders in 'path'");
}

void FilesSink::start() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot create output folder {}: {}", dir_.string(), ec.message()));
}

fs::path FilesSink::target_for(const Document& doc) const {
    std::string name = file_name_;
    for (auto pos = name.find("{id}"); pos != std::string::npos; pos = name.find("{id}"))
        name.replace(pos, 4, doc.id);
    return dir_ / name;
}

static bool write_all(int fd, const std::string& data) {
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    return true;
}

SinkResult FilesSink::write(const Document& doc) {
    std::string body;
    if (ncb_) {
        auto record = claim::ncb_record(doc, ctx_.clock().now(), utc_offset_minutes_);
        if (!record.complete()) {
            std::string missing;
            for (const auto& m : record.missing) missing += (missing.empty() ? "" : ", ") + m;
            return SinkResult::fail("NCB record incomplete, not written: missing " + missing + " (route such claims to review)");
        }
        body = docpipe::json_text(record.record, jsonl_ ? -1 : 2);
    } else {
        body = docpipe::json_text(doc.to_json(include_content_), jsonl_ ? -1 : 2);
    }
    SinkResult result = jsonl_ ? append_line(body + "\n") : write_file(doc, body + "\n");
    std::lock_guard lock(error_mutex_);
    last_error_ = result.status() == SinkResult::Status::Ok ? "" : result.reason();
    return result;
}

SinkResult FilesSink::write_file(const Document& doc, const std::string& body) {
    static std::atomic<unsigned> counter{0};
    const fs::path target = target_for(doc);
    const fs::path temp = dir_ / fmt::format(".{}.{}.{}.tmp", target.filename().string(), ::getpid(), counter++);
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return SinkResult::retry(std::chrono::seconds(1), fmt::format("cannot create {}: {}", temp.string(), std::strerror(errno)));
    bool ok = write_all(fd, body) && (!fsync_ || ::fsync(fd) == 0);
    int saved = errno;
    ::close(fd);
    if (!ok || std::rename(temp.c_str(), target.c_str()) != 0) {
        if (ok) saved = errno;
        ::unlink(temp.c_str());
        return SinkResult::retry(std::chrono::seconds(1), fmt::format("cannot write {}: {}", target.string(), std::strerror(saved)));
    }
    return SinkResult::ok();
}

SinkResult FilesSink::append_line(const std::string& line) {
    std::lock_guard lock(jsonl_mutex_);
    const fs::path target = dir_ / file_name_;
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return SinkResult::retry(std::chrono::seconds(1), fmt::format("cannot open {}: {}", target.string(), std::strerror(errno)));
    bool ok = write_all(fd, line) && (!fsync_ || ::fsync(fd) == 0);
    int saved = errno;
    ::close(fd);
    if (!ok) return SinkResult::retry(std::chrono::seconds(1), fmt::format("cannot append to {}: {}", target.string(), std::strerror(saved)));
    return SinkResult::ok();
}

HealthReport FilesSink::health() {
    std::lock_guard lock(error_mutex_);
    if (::access(dir_.c_str(), W_OK) != 0) return {Health::Unavailable, dir_.string() + " is not writable"};
    if (!last_error_.empty()) return {Health::Degraded, last_error_};
    return {Health::Healthy, "writing to " + dir_.string()};
}

}  // namespace docpipe::basic
