// One updating progress line on stderr for long commands (`docpipe run --once`,
// `docpipe extract` over many files): documents done / total, rate, time left, failures.
//
// Drawn only when stderr is a terminal; when it is not (a log file, journald, CI) nothing of
// the kind is ever written. Log lines written to stderr by the process logger meanwhile
// (services.cpp) clear the line first and redraw it after, so the line stays below them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace docpipe::core {

struct ProgressCounts {
    std::uint64_t done = 0;       // finished, failures included
    std::uint64_t failed = 0;
    std::uint64_t in_flight = 0;  // being worked on (0: not shown)
    std::optional<std::uint64_t> total;  // unknown: no percentage and no time left
};

class ProgressLine {
public:
    // `poll` is called from the line's own thread every `interval`. `unit`: "docs", "files".
    // Does nothing at all unless `enabled` and stderr is a terminal (stderr_is_terminal()).
    ProgressLine(std::string label, std::string unit, std::function<ProgressCounts()> poll, bool enabled = true,
                 std::chrono::milliseconds interval = std::chrono::milliseconds(200));
    // Draws the final counts and ends the line with a newline.
    ~ProgressLine();
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;

    bool active() const { return active_; }
    void finish();

    // The text of the line (no control characters), cut to `width` columns when width > 0.
    static std::string format(const std::string& label, const std::string& unit, const ProgressCounts& counts, double elapsed_s,
                              bool final, std::size_t width = 0);

private:
    void draw(bool final);

    std::string label_, unit_;
    std::function<ProgressCounts()> poll_;
    bool active_ = false;
    std::chrono::steady_clock::time_point start_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread thread_;
};

// isatty(2), and TERM is not "dumb".
bool stderr_is_terminal();

// Held by whoever writes a line to stderr while a progress line may be showing (the process
// logger's sink, error messages): clears the progress line, and redraws it when released.
class StatusLineGuard {
public:
    StatusLineGuard();
    ~StatusLineGuard();
    StatusLineGuard(const StatusLineGuard&) = delete;
    StatusLineGuard& operator=(const StatusLineGuard&) = delete;
};

}  // namespace docpipe::core
