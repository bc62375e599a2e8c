#include "maildir_source.hpp"

#include <algorithm>
#include <fstream>

#include <fmt/core.h>

#include "docpipe/rfc822.hpp"

namespace fs = std::filesystem;

namespace docpipe::mail {

ComponentDescriptor MaildirSource::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Source;
    d.name = "source.maildir";
    d.summary = "Emails from a Maildir: new/ -> cur/ with the Seen flag on success, Flagged plus a reason file on failure";
    d.has_health_probe = true;
    d.config = ConfigSpec{
        Field::string("path").path().required().describe("Maildir root (the folder holding new/, cur/ and tmp/)"),
        Field::duration("poll_interval").default_value("2s").min(0.01).describe("How often new/ is listed when idle"),
        Field::integer("max_bytes").default_value(50 * 1024 * 1024).min(1).describe("Larger messages fail with a reason, unread"),
    };
    return d;
}

MaildirSource::MaildirSource(const Config& config, Context& context)
    : ctx_(context),
      root_(config.get_string("path")),
      new_dir_(root_ / "new"),
      cur_dir_(root_ / "cur"),
      reasons_dir_(root_ / ".docpipe-reasons"),
      poll_interval_(config.get_duration("poll_interval")),
      max_bytes_(config.get_int("max_bytes")) {}

void MaildirSource::start() {
    std::error_code ec;
    for (const auto& dir : {new_dir_, cur_dir_, root_ / "tmp", reasons_dir_}) {
        fs::create_directories(dir, ec);
        if (ec) throw std::runtime_error(fmt::format("maildir {}: cannot create {}: {}", root_.string(), dir.string(), ec.message()));
    }
}

std::string MaildirSource::with_flag(const std::string& name, char flag) {
    const auto info = name.find(":2,");
    std::string base = info == std::string::npos ? name : name.substr(0, info);
    std::string flags = info == std::string::npos ? "" : name.substr(info + 3);
    if (flags.find(flag) == std::string::npos) flags += flag;
    std::sort(flags.begin(), flags.end());  // Maildir wants flags in ASCII order
    return base + ":2," + flags;
}

std::optional<std::uint64_t> MaildirSource::backlog() const {
    const std::int64_t n = backlog_.load();
    if (n < 0) return std::nullopt;
    return static_cast<std::uint64_t>(n);
}

std::size_t MaildirSource::scan(SourceEmitter& emitter, bool& stopped) {
    std::vector<fs::path> ready;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(new_dir_, ec)) {
        if (!e.is_regular_file() || e.path().filename().string().front() == '.') continue;
        std::lock_guard lock(mutex_);
        if (!in_flight_.count(e.path())) ready.push_back(e.path());
    }
    if (ec) {
        std::lock_guard lock(mutex_);
        last_error_ = fmt::format("cannot list {}: {}", new_dir_.string(), ec.message());
        return 0;
    }
    std::sort(ready.begin(), ready.end());  // Maildir names start with the delivery time
    backlog_.store(static_cast<std::int64_t>(ready.size()));
    std::size_t emitted = 0;
    for (const auto& path : ready) {
        if (emitter.stop_requested()) {
            stopped = true;
            return emitted;
        }
        backlog_.fetch_sub(1);  // taken off the list whatever happens to it below
        const std::string name = path.filename().string();
        {
            std::lock_guard lock(mutex_);
            in_flight_.insert(path);
        }
        const auto size = fs::file_size(path, ec);
        if (ec) {
            std::lock_guard lock(mutex_);
            in_flight_.erase(path);  // taken by another reader meanwhile
            continue;
        }
        if (static_cast<std::int64_t>(size) > max_bytes_) {
            settle(path, Outcome{false, fmt::format("{}: message is {} bytes, above max_bytes {}", name, size, max_bytes_)});
            continue;
        }
        std::ifstream in(path, std::ios::binary);
        Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        // Known before transform.mime parses it: a job whose email cannot be parsed keeps it.
        const std::string message_id =
            rfc822_message_id(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
        Document doc = Document::from_bytes(name, "message/rfc822", std::move(bytes));
        doc.attributes["source"] = "maildir";
        doc.attributes["filename"] = name;
        if (!message_id.empty()) doc.attributes["message_id"] = message_id;
        if (!emitter.emit(std::move(doc), [this, path](const Outcome& o) { settle(path, o); })) {
            std::lock_guard lock(mutex_);
            in_flight_.erase(path);
            stopped = true;
            return emitted;
        }
        ++emitted;
    }
    return emitted;
}

void MaildirSource::poll(SourceEmitter& emitter, const PollRequest& request) {
    const auto started = ctx_.clock().steady_now();
    while (true) {
        bool stopped = false;
        const std::size_t emitted = scan(emitter, stopped);
        if (stopped || emitted > 0 || request.drain) return;
        const auto waited = ctx_.clock().steady_now() - started;
        if (waited >= request.max_wait || emitter.stop_requested()) return;
        ctx_.clock().sleep_for(std::max(std::chrono::milliseconds(1),
                                        std::min({poll_interval_, std::chrono::milliseconds(200),
                                                  std::chrono::duration_cast<std::chrono::milliseconds>(request.max_wait - waited)})));
    }
}

void MaildirSource::settle(const fs::path& path, const Outcome& outcome) {
    const std::string name = path.filename().string();
    try {
        const std::string target = with_flag(name, outcome.ok ? 'S' : 'F');
        fs::rename(path, cur_dir_ / target);
        if (!outcome.ok) {
            std::ofstream reason(reasons_dir_ / (target + ".reason"));
            reason << outcome.reason << "\n";
            ctx_.metrics().increment("maildir_failed_messages");
        }
        std::lock_guard lock(mutex_);
        in_flight_.erase(path);
    } catch (const std::exception& e) {
        std::lock_guard lock(mutex_);  // stays in in_flight_: not taken again in this run
        last_error_ = fmt::format("cannot move {} to cur/ after {}: {}", name, outcome.ok ? "ack" : "nack", e.what());
        ctx_.log().error("{}", last_error_);
    }
}

HealthReport MaildirSource::health() {
    std::lock_guard lock(mutex_);
    std::error_code ec;
    if (!fs::is_directory(new_dir_, ec)) return {Health::Unavailable, new_dir_.string() + " is not a folder"};
    if (!last_error_.empty()) return {Health::Degraded, last_error_};
    return {Health::Healthy, fmt::format("{} message(s) in flight", in_flight_.size())};
}

}  // namespace docpipe::mail
