// source.maildir — a Maildir (new/ cur/ tmp/), as written by fetchmail, getmail, Postfix or
// Dovecot's LDA.
//
// Each message in new/ becomes one document (media type message/rfc822, id from its
// bytes). Delivery into new/ is atomic (rename from tmp/), so no settle wait is needed. On
// ack the message moves to cur/ with the Seen flag (":2,S"); on nack to cur/ with the
// Flagged flag (":2,F") and a `<root>/.docpipe-reasons/<name>.reason` file saying why, so
// a mail client shows it flagged and an operator can read the cause. Messages still in
// new/ when the runtime stops are taken again on the next start (at-least-once).
//
// Threading: poll() runs on the runtime's source thread; ack callbacks may run on any
// thread (guarded by mutex_).
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>

#include "docpipe/component.hpp"

namespace docpipe::mail {

class MaildirSource : public Source {
public:
    static ComponentDescriptor describe();
    MaildirSource(const Config& config, Context& context);

    void start() override;
    void poll(SourceEmitter& emitter, const PollRequest& request) override;
    HealthReport health() override;
    // Messages in new/ seen by the last scan and not emitted yet.
    std::optional<std::uint64_t> backlog() const override;

    // "1733.M1P2.host" -> "1733.M1P2.host:2,S"; keeps and extends existing flags, sorted.
    static std::string with_flag(const std::string& name, char flag);

private:
    std::size_t scan(SourceEmitter& emitter, bool& stopped);
    void settle(const std::filesystem::path& path, const Outcome& outcome);

    Context& ctx_;
    std::filesystem::path root_, new_dir_, cur_dir_, reasons_dir_;
    std::chrono::milliseconds poll_interval_;
    std::int64_t max_bytes_;

    std::mutex mutex_;  // guards in_flight_ and last_error_
    std::set<std::filesystem::path> in_flight_;
    std::string last_error_;
    std::atomic<std::int64_t> backlog_{-1};  // -1 until the first scan: unknown
};

}  // namespace docpipe::mail
