#include "directory_source.hpp"

#include <fnmatch.h>

#include <fstream>
#include <iterator>
#include <optional>

#include <fmt/core.h>

#include "docpipe/rfc822.hpp"

namespace docpipe::basic {

namespace fs = std::filesystem;

ComponentDescriptor DirectorySource::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Source;
    d.name = "source.directory";
    d.summary = "Drop folder: one document per complete file; moved to processed/ on ack, failed/ on nack";
    d.has_health_probe = true;
    d.config = ConfigSpec{
        Field::string("path").path().required().describe("Folder to take files from (created if missing)"),
        Field::string_list("patterns").default_value(nlohmann::json::array({"*"}))
            .describe("Shell patterns of file names to take, e.g. [\"*.eml\", \"*.pdf\"], matched without regard to case "
                      "(\"*.jpg\" takes IMG_0001.JPG). A file that matches none stays in the folder and is named once in the log"),
        Field::duration("settle_time").default_value("1s").min(0)
            .describe("A file is complete once its size and mtime are unchanged for this long"),
        Field::duration("poll_interval").default_value("1s").min(0.01).describe("How often the folder is scanned"),
        Field::duration("drain_wait").default_value("30s").min(0)
            .describe("With --once: how long to wait for files still being written before leaving them"),
        Field::string("processed_dir").path().describe("Where acked files go (default: <path>/processed)"),
        Field::string("failed_dir").path().describe("Where failed files and their .reason go (default: <path>/failed)"),
        Field::integer("max_bytes").default_value(100 * 1024 * 1024).min(1)
            .describe("Larger files are moved to failed/ without processing"),
        Field::boolean("follow_links").default_value(false)
            .describe("Read the file a symbolic link names. Off: a link is moved to failed/ with the reason, so that "
                      "whoever can drop files cannot make docpipe read one elsewhere"),
    };
    return d;
}

DirectorySource::DirectorySource(const Config& config, Context& context)
    : ctx_(context),
      dir_(config.get_string("path")),
      patterns_(config.get_string_list("patterns")),
      settle_time_(config.get_duration("settle_time")),
      poll_interval_(config.get_duration("poll_interval")),
      drain_wait_(config.get_duration("drain_wait")),
      max_bytes_(config.get_int("max_bytes")),
      follow_links_(config.get_bool("follow_links")) {
    processed_dir_ = config.has("processed_dir") ? fs::path(config.get_string("processed_dir")) : dir_ / "processed";
    failed_dir_ = config.has("failed_dir") ? fs::path(config.get_string("failed_dir")) : dir_ / "failed";
}

void DirectorySource::start() {
    std::error_code exists_ec;
    if (!fs::exists(dir_, exists_ec))
        // Usually a path meant relative to somewhere else: say which folder is watched.
        ctx_.log().log(LogLevel::Warn, fmt::format("the folder to take files from, {}, did not exist: created it empty (a relative "
                                                   "`path` is relative to the pipeline file's folder)", dir_.string()));
    for (const auto& d : {dir_, processed_dir_, failed_dir_}) {
        std::error_code ec;
        fs::create_directories(d, ec);
        if (ec) throw std::runtime_error(fmt::format("cannot create folder {}: {}", d.string(), ec.message()));
    }
}

bool DirectorySource::never_taken(const fs::path& path) {
    const std::string name = path.filename().string();
    // Hidden files and the usual partial-download names are never complete documents.
    if (name.empty() || name[0] == '.' || name[0] == '~') return true;
    for (const char* suffix : {".tmp", ".part", ".partial", ".crdownload", ".reason"})
        if (path.extension() == suffix) return true;
    return false;
}

bool DirectorySource::matches(const fs::path& path) const {
    const std::string name = path.filename().string();
    // Without regard to case: every shipped pipeline lists "*.jpg", and a phone's IMG_0001.JPG
    // sat in the inbox for ever, never taken and never logged.
    for (const auto& pattern : patterns_)
        if (fnmatch(pattern.c_str(), name.c_str(), FNM_CASEFOLD) == 0) return true;
    return false;
}

std::string DirectorySource::patterns_text() const {
    std::string out;
    for (const auto& pattern : patterns_) out += (out.empty() ? "" : ", ") + pattern;
    return out;
}

bool DirectorySource::reject_unread(SourceEmitter& emitter, const fs::path& path, const std::string& why) {
    const std::string name = path.filename().string();
    // Nothing was read: the id comes from the name and the reason, so the same file refused
    // again (after a crash before its move) is the same job.
    std::string identity = name;
    identity.push_back('\0');
    identity += why;
    Document doc;
    doc.id = Document::content_id(reinterpret_cast<const std::uint8_t*>(identity.data()), identity.size());
    doc.attributes["source"] = "directory";
    doc.attributes["filename"] = name;
    auto ack = [this, path](const Outcome& outcome) { settle(path, outcome); };
    if (emitter.reject(std::move(doc), fmt::format("{}: {}", name, why), ack)) return true;
    std::lock_guard lock(mutex_);
    in_flight_.erase(path);  // not recorded: stays in the folder for the next run
    return false;
}

bool DirectorySource::settled(const fs::path& path, std::uintmax_t size, fs::file_time_type mtime) {
    const auto now = ctx_.clock().steady_now();
    auto [it, inserted] = observed_.try_emplace(path, Observation{size, mtime, now});
    if (!inserted && (it->second.size != size || it->second.mtime != mtime)) it->second = Observation{size, mtime, now};
    if (now - it->second.unchanged_since >= settle_time_) return true;
    // A file that has sat untouched for settle_time already (e.g. from before a restart)
    // needs no second look.
    return fs::file_time_type::clock::now() - mtime >= settle_time_;
}

std::optional<std::uint64_t> DirectorySource::backlog() const {
    const std::int64_t n = backlog_.load();
    if (n < 0) return std::nullopt;
    return static_cast<std::uint64_t>(n);
}

// Why a wanted entry is not taken as a document ("" when it is a file, or a folder, which is
// passed over). Such an entry never becomes complete, so it is moved to failed/ with this
// reason rather than left in the folder without a word.
std::string DirectorySource::refusal(const fs::directory_entry& entry) const {
    std::error_code ec;
    const fs::file_status own = entry.symlink_status(ec);
    if (ec) return {};  // gone since the listing
    if (fs::is_symlink(own)) {
        if (!follow_links_) return "a symbolic link, not followed (follow_links: false); drop the file itself";
        const fs::file_status target = fs::status(entry.path(), ec);
        if (!fs::exists(target)) return "a symbolic link to a file that does not exist";
        if (fs::is_regular_file(target) || fs::is_directory(target)) return {};
        return "a symbolic link to a named pipe, device or socket, not a file";
    }
    if (fs::is_regular_file(own) || fs::is_directory(own)) return {};
    if (fs::is_fifo(own)) return "a named pipe (FIFO), not a file";
    if (fs::is_character_file(own) || fs::is_block_file(own)) return "a device, not a file";
    if (fs::is_socket(own)) return "a socket, not a file";
    return "not a regular file";
}

DirectorySource::ScanResult DirectorySource::scan(SourceEmitter& emitter, std::size_t& pending, std::size_t& emitted) {
    pending = 0;
    std::vector<fs::path> ready;
    std::vector<std::pair<fs::path, std::string>> refused;  // settled after the lock: settle() takes it
    std::vector<std::string> unmatched;                      // files that match no pattern, named for the first time
    std::vector<std::string> folders;                        // folders of the operator's, named for the first time
    bool unmatched_overflow = false;
    std::error_code ec;
    {
        std::lock_guard lock(mutex_);
        fs::directory_iterator it(dir_, ec);
        if (ec) {
            last_error_ = fmt::format("cannot list {}: {}", dir_.string(), ec.message());
            ctx_.log().error("{}", last_error_);
            return ScanResult::NothingReady;
        }
        last_error_.clear();
        std::set<fs::path> seen;
        std::set<std::string> unmatched_now;  // of the names already reported, those still here
        for (const auto& entry : it) {
            if (never_taken(entry.path())) continue;
            if (std::error_code kind_ec; entry.is_directory(kind_ec) && !fs::equivalent(entry.path(), processed_dir_, kind_ec) &&
                                         !fs::equivalent(entry.path(), failed_dir_, kind_ec)) {
                const std::string name = entry.path().filename().string();
                if (folders_reported_.size() < kMaxUnmatchedNamed && folders_reported_.insert(name).second) folders.push_back(name);
                continue;
            }
            if (!matches(entry.path())) {
                // Named once while it stays (a folder, like processed/, is no one's document).
                std::error_code file_ec;
                if (!entry.is_regular_file(file_ec)) continue;
                const std::string name = entry.path().filename().string();
                if (unmatched_reported_.count(name)) {
                    unmatched_now.insert(name);
                } else if (unmatched_reported_.size() < kMaxUnmatchedNamed) {
                    unmatched_reported_.insert(name);
                    unmatched_now.insert(name);
                    unmatched.push_back(name);
                } else if (!unmatched_overflow_reported_) {
                    unmatched_overflow_reported_ = true;
                    unmatched_overflow = true;
                }
                continue;
            }
            if (in_flight_.count(entry.path())) continue;
            if (std::string why = refusal(entry); !why.empty()) {
                // In flight like a file until settle() has moved it: if the move fails it is not
                // refused again (and warned about again) on every scan of this run.
                in_flight_.insert(entry.path());
                refused.emplace_back(entry.path(), std::move(why));
                continue;
            }
            if (!entry.is_regular_file(ec)) continue;  // a folder: processed/, failed/ or the user's own
            seen.insert(entry.path());
            auto size = entry.file_size(ec);
            if (ec) continue;
            auto mtime = entry.last_write_time(ec);
            if (ec) continue;
            if (settled(entry.path(), size, mtime)) ready.push_back(entry.path());
            else ++pending;
        }
        for (auto o = observed_.begin(); o != observed_.end();)  // forget files that went away
            o = seen.count(o->first) ? std::next(o) : observed_.erase(o);
        for (auto u = unmatched_reported_.begin(); u != unmatched_reported_.end();)  // one dropped again is named again
            u = unmatched_now.count(*u) ? std::next(u) : unmatched_reported_.erase(u);
    }
    for (const auto& name : folders)
        ctx_.log().warn("{}/: a folder; the files in it are not taken (only files at the top of {} are): move them up", name,
                        dir_.string());
    for (const auto& name : unmatched)
        ctx_.log().info("{}: matches none of the patterns ({}); left in {}, not taken", name, patterns_text(), dir_.string());
    if (unmatched_overflow)
        ctx_.log().info("more than {} files in {} match none of the patterns ({}); the others are not named", kMaxUnmatchedNamed,
                        dir_.string(), patterns_text());
    for (const auto& [path, why] : refused) {
        ctx_.log().warn("{}: {}; moved to {}", path.filename().string(), why, failed_dir_.string());
        if (!reject_unread(emitter, path, why)) return ScanResult::Stopped;
    }
    std::sort(ready.begin(), ready.end());  // oldest-name-first is predictable for operators
    backlog_.store(static_cast<std::int64_t>(ready.size() + pending));
    for (const auto& path : ready) {
        if (emitter.stop_requested()) return ScanResult::Stopped;
        // Taken off the waiting count whatever happens to it below, but only once emit() has
        // returned: while emit() waits for room the file is neither in flight nor counted, and
        // `run --once` showed one document fewer in its total ("0/29 docs" for 30 files).
        struct TakenOff {
            std::atomic<std::int64_t>& backlog;
            ~TakenOff() { backlog.fetch_sub(1); }
        } taken_off{backlog_};
        const std::string name = path.filename().string();
        auto size = fs::file_size(path, ec);
        if (ec) continue;  // vanished between listing and reading
        {
            std::lock_guard lock(mutex_);
            in_flight_.insert(path);
            observed_.erase(path);
        }
        if (static_cast<std::int64_t>(size) > max_bytes_) {
            if (!reject_unread(emitter, path, fmt::format("file is {} bytes, above max_bytes {}", size, max_bytes_))) return ScanResult::Stopped;
            continue;
        }
        std::ifstream in(path, std::ios::binary);
        Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in.good() && !in.eof()) {
            if (!reject_unread(emitter, path, "read failed")) return ScanResult::Stopped;
            continue;
        }
        if (const auto mtime = fs::last_write_time(path, ec); !ec) {
            std::lock_guard lock(mutex_);
            read_as_[path] = Observation{bytes.size(), mtime, {}};
        }
        // The id covers the name as well as the content: the same file delivered again (after
        // a crash) is the same document, while a byte-identical copy under another name is a
        // document (and a job) of its own, which transform.dedup can then mark a duplicate.
        std::string identity = name;
        identity.push_back('\0');
        identity.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        Document doc = Document::from_bytes(name, media_type_for(name), std::move(bytes));
        doc.id = Document::content_id(reinterpret_cast<const std::uint8_t*>(identity.data()), identity.size());
        doc.attributes["source"] = "directory";
        doc.attributes["filename"] = name;
        // An email dropped as a file: its Message-ID, known before transform.mime parses it,
        // stays with a job whose email cannot be parsed.
        if (const Part& part = doc.parts.front(); part.media_type == "message/rfc822")
            if (auto m = rfc822_message_id(std::string_view(reinterpret_cast<const char*>(part.bytes->data()), part.bytes->size())); !m.empty())
                doc.attributes["message_id"] = m;
        auto ack = [this, path](const Outcome& outcome) { settle(path, outcome); };
        if (!emitter.emit(std::move(doc), ack)) {
            std::lock_guard lock(mutex_);
            in_flight_.erase(path);  // not taken: stays in the folder for the next run
            read_as_.erase(path);
            return ScanResult::Stopped;
        }
        ++emitted;
    }
    return ready.empty() ? ScanResult::NothingReady : ScanResult::Emitted;
}

void DirectorySource::poll(SourceEmitter& emitter, const PollRequest& request) {
    std::size_t pending = 0, emitted = 0;
    const auto started = ctx_.clock().steady_now();
    while (true) {
        if (scan(emitter, pending, emitted) == ScanResult::Stopped) return;
        if (request.drain) {
            if (pending == 0) return;
            if (ctx_.clock().steady_now() - started >= drain_wait_) {
                ctx_.log().warn("{} file(s) in {} are still being written after {} ms; left for the next run",
                                pending, dir_.string(), drain_wait_.count());
                return;
            }
            ctx_.clock().sleep_for(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(100), settle_time_));
            continue;
        }
        if (emitted > 0) return;
        auto waited = ctx_.clock().steady_now() - started;
        if (waited >= request.max_wait || emitter.stop_requested()) return;
        auto step = std::min<std::chrono::milliseconds>(
            {poll_interval_, std::chrono::milliseconds(200),
             std::chrono::duration_cast<std::chrono::milliseconds>(request.max_wait - waited)});
        ctx_.clock().sleep_for(std::max(step, std::chrono::milliseconds(1)));
    }
}

namespace {

// `name` shortened so that it and `room` more bytes fit in one file name (255 bytes on the
// usual file systems): a name near the limit got no ".reason" file beside it in failed/, and
// with a ".1" added for a second such file it could not be moved at all, so it stayed in the
// inbox to be read and failed on every run. The end of the name (its extension) is kept; the
// cut falls between UTF-8 characters.
std::string fitting(const std::string& name, std::size_t room) {
    constexpr std::size_t kNameMax = 255;
    if (name.size() + room <= kNameMax) return name;
    const std::size_t dot = name.rfind('.');
    const std::string extension = dot != std::string::npos && name.size() - dot <= 16 ? name.substr(dot) : "";
    const std::size_t keep = kNameMax - room - extension.size() - 1;  // and a '~' to show the cut
    std::size_t cut = std::min(keep, name.size() - extension.size());
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    return name.substr(0, cut) + "~" + extension;
}

}  // namespace

fs::path DirectorySource::move_into(const fs::path& file, const fs::path& dir, std::size_t room) {
    // Room for a ".N" to tell two files of one name apart, and for what the caller adds.
    const std::string name = fitting(file.filename().string(), room + 6);
    fs::path target = dir / name;
    for (int n = 1; fs::exists(target); ++n) target = dir / (name + "." + std::to_string(n));
    fs::rename(file, target);  // same filesystem by default; throws with the reason otherwise
    return target;
}

bool DirectorySource::changed_since_read(const fs::path& path, bool delivered) {
    std::optional<Observation> read;
    {
        std::lock_guard lock(mutex_);
        if (auto it = read_as_.find(path); it != read_as_.end()) {
            read = it->second;
            read_as_.erase(it);
        }
    }
    if (!read) return false;
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) return false;  // gone: the move below says so
    const auto mtime = fs::last_write_time(path, ec);
    if (ec || (size == read->size && mtime == read->mtime)) return false;
    ctx_.metrics().increment("directory_changed_while_read");
    const std::string name = path.filename().string();
    // Either way the file as it is now is read again, as a document of its own (its id covers
    // its content). Filed unread, a scanner's next receipt saved over the same name was lost.
    if (delivered)
        ctx_.log().warn("{} changed after it was read ({} bytes then, {} now): its job went through on what was read then. "
                        "The file as it is now stays in {} and is read again once it settles: if it is another receipt "
                        "saved under the same name, that is its claim; if it is the same receipt completed, check both "
                        "jobs. Raise settle_time if the file's writer pauses longer than {} ms",
                        name, read->size, size, dir_.string(), settle_time_.count());
    else
        ctx_.log().warn("{} changed after it was read ({} bytes then, {} now): it was still being written. It stays in {} and is "
                        "read again once it is unchanged for settle_time ({} ms); raise settle_time if its writer pauses "
                        "longer",
                        name, read->size, size, dir_.string(), settle_time_.count());
    std::lock_guard lock(mutex_);
    in_flight_.erase(path);
    observed_.erase(path);
    return true;
}

void DirectorySource::settle(const fs::path& path, const Outcome& outcome) {
    // What was read is not what the folder holds now: the job that just ended covers what was
    // read (part of a file still being written, or a file since saved over), so the file stays
    // to be read again as it is now (see changed_since_read).
    if (changed_since_read(path, outcome.ok)) return;
    try {
        if (outcome.ok) {
            move_into(path, processed_dir_);
        } else {
            fs::path target = move_into(path, failed_dir_, std::string_view(".reason").size());
            std::ofstream reason(target.string() + ".reason");
            reason << outcome.reason << "\n";
            reason.close();
            if (!reason) ctx_.log().error("{} is in {}, but its .reason file could not be written", target.filename().string(),
                                          failed_dir_.string());
            ctx_.metrics().increment("directory_failed_files");
        }
        std::lock_guard lock(mutex_);
        in_flight_.erase(path);
    } catch (const std::exception& e) {
        // Left in in_flight_ on purpose: the file is not re-emitted during this run.
        std::lock_guard lock(mutex_);
        last_error_ = fmt::format("cannot move {} after {}: {}", path.filename().string(),
                                  outcome.ok ? "ack" : "nack", e.what());
        ctx_.log().error("{}", last_error_);
    }
}

HealthReport DirectorySource::health() {
    std::lock_guard lock(mutex_);
    std::error_code ec;
    if (!fs::is_directory(dir_, ec)) return {Health::Unavailable, dir_.string() + " is not a folder"};
    if (!last_error_.empty()) return {Health::Degraded, last_error_};
    return {Health::Healthy, fmt::format("{} file(s) in flight", in_flight_.size())};
}

}  // namespace docpipe::basic
