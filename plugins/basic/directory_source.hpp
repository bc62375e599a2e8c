// source.directory — a drop folder.
//
// Takes a file once it is complete: its size and modification time have not changed for
// `settle_time` (a file still being copied in is left alone). Each file becomes one
// document whose id is derived from its bytes. On ack the file moves to `processed/`; on
// nack to `failed/`, next to a `<name>.reason` file that says why. Files still in the
// folder when the runtime stops are taken again on the next start (at-least-once).
//
// File names are matched against `patterns` without regard to case. A file that matches none
// is left in the folder and named once in the log (at info), so an operator knows why.
//
// Example config:
//   inbox:
//     component: source.directory
//     config:
//       path: /var/spool/docpipe/inbox
//       patterns: ["*.eml", "*.jpg", "*.pdf"]
//       settle_time: 2s
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "docpipe/component.hpp"

namespace docpipe::basic {

class DirectorySource : public Source {
public:
    static ComponentDescriptor describe();
    DirectorySource(const Config& config, Context& context);

    void start() override;
    void poll(SourceEmitter& emitter, const PollRequest& request) override;
    HealthReport health() override;
    // Files seen in the last scan and not emitted yet (settling ones included).
    std::optional<std::uint64_t> backlog() const override;

private:
    struct Observation {
        std::uintmax_t size = 0;
        std::filesystem::file_time_type mtime;
        std::chrono::steady_clock::time_point unchanged_since;
    };
    enum class ScanResult { Emitted, NothingReady, Stopped };

    // One pass over the folder: emits settled files; `pending` counts files still settling.
    ScanResult scan(SourceEmitter& emitter, std::size_t& pending, std::size_t& emitted);
    bool settled(const std::filesystem::path& path, std::uintmax_t size, std::filesystem::file_time_type mtime);
    static bool never_taken(const std::filesystem::path& path);  // hidden or a partial download
    bool matches(const std::filesystem::path& path) const;      // by `patterns`, case-insensitively
    std::string patterns_text() const;
    std::string refusal(const std::filesystem::directory_entry& entry) const;
    void settle(const std::filesystem::path& path, const Outcome& outcome);
    // Whether a file differs in size or mtime from when it was read: then it is named in the
    // log (`delivered`: whether its job went through) and left in the folder, not moved to
    // processed/ or failed/, to be read again once it settles. The caller holds no lock.
    bool changed_since_read(const std::filesystem::path& path, bool delivered);
    // Hands a file that cannot be taken (a pipe, a link, too big, unreadable) to the runtime as
    // a rejected document with `why`: a failed job and a dead letter, counted by `run --once`
    // (which said "0 failed" and exited 0 while such files went to failed/). The runtime's ack
    // moves it to failed/. False when the runtime did not record it: the file stays here.
    bool reject_unread(SourceEmitter& emitter, const std::filesystem::path& path, const std::string& why);
    // Moves `file` into `dir` under its name (shortened when it and `room` more bytes would not
    // fit in a file name), with ".N" added when the name is taken there.
    std::filesystem::path move_into(const std::filesystem::path& file, const std::filesystem::path& dir, std::size_t room = 0);

    Context& ctx_;
    std::filesystem::path dir_, processed_dir_, failed_dir_;
    std::vector<std::string> patterns_;
    std::chrono::milliseconds settle_time_, poll_interval_, drain_wait_;
    std::int64_t max_bytes_;
    bool follow_links_;

    std::mutex mutex_;                              // guards the three members below and last_error_
    std::set<std::filesystem::path> in_flight_;     // emitted, not yet settled
    std::map<std::filesystem::path, Observation> observed_;
    // What each file in flight was when it was read, to tell at its ack whether it was still
    // being written (a writer that paused longer than settle_time): then it stays for a new read.
    std::map<std::filesystem::path, Observation> read_as_;
    std::string last_error_;
    // Files in the folder that match no pattern and were named in the log: each is named once
    // while it stays, at most kMaxUnmatchedNamed of them (guarded by mutex_).
    static constexpr std::size_t kMaxUnmatchedNamed = 1000;
    std::set<std::string> unmatched_reported_;
    // The operator's own folders in the inbox (a copied folder of scans), named once each per
    // run: their files are never taken, and that was silent (guarded by mutex_).
    std::set<std::string> folders_reported_;
    bool unmatched_overflow_reported_ = false;
    std::atomic<std::int64_t> backlog_{-1};  // -1 until the first scan: unknown
};

}  // namespace docpipe::basic
