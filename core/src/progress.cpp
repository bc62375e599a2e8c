#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/core.h>

namespace docpipe::core {

namespace {

// The line on screen now (empty: none). One per process: only one long command runs.
std::mutex g_screen_mutex;
std::string g_shown;

std::size_t terminal_width() {
    winsize ws{};
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

void write_stderr(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
}

std::string clock_text(double seconds) {
    auto s = static_cast<long long>(seconds + 0.5);
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
    return fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

bool stderr_is_terminal() {
    if (!isatty(STDERR_FILENO)) return false;
    const char* term = std::getenv("TERM");
    return !(term && std::strcmp(term, "dumb") == 0);
}

std::string ProgressLine::format(const std::string& label, const std::string& unit, const ProgressCounts& c, double elapsed_s, bool final,
                                 std::size_t width) {
    std::string text = label + ": ";
    if (c.total) {
        const double share = *c.total ? 100.0 * static_cast<double>(c.done) / static_cast<double>(*c.total) : 100.0;
        text += fmt::format("{}/{} {} ({:.0f}%)", c.done, *c.total, unit, share);
    } else {
        text += fmt::format("{} {} done", c.done, unit);
    }
    text += fmt::format(", {} failed", c.failed);
    if (c.in_flight && !final) text += fmt::format(", {} in flight", c.in_flight);
    const double rate = elapsed_s > 0 ? static_cast<double>(c.done) / elapsed_s : 0;
    if (c.done > 0 && (final ? elapsed_s > 0 : elapsed_s >= 0.05)) text += fmt::format(", {:.1f} {}/s", rate, unit);
    if (final) {
        text += ", took " + clock_text(elapsed_s);
    } else if (c.total && rate > 0 && c.done < *c.total) {
        text += ", ~" + clock_text(static_cast<double>(*c.total - c.done) / rate) + " left";
    }
    if (width > 1 && text.size() > width - 1) text.resize(width - 1);
    return text;
}

ProgressLine::ProgressLine(std::string label, std::string unit, std::function<ProgressCounts()> poll, bool enabled,
                           std::chrono::milliseconds interval)
    : label_(std::move(label)), unit_(std::move(unit)), poll_(std::move(poll)), active_(enabled && stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()) {
    if (!active_) return;
    thread_ = std::thread([this, interval] {
        std::unique_lock lock(mutex_);
        while (!stop_) {
            lock.unlock();
            draw(false);
            lock.lock();
            wake_.wait_for(lock, interval, [this] { return stop_; });
        }
    });
}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::finish() {
    if (!active_) return;
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    draw(true);
    std::lock_guard screen(g_screen_mutex);
    write_stderr("\n");
    g_shown.clear();
    active_ = false;
}

void ProgressLine::draw(bool final) {
    const ProgressCounts counts = poll_();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const std::string text = format(label_, unit_, counts, elapsed, final, terminal_width());
    std::lock_guard screen(g_screen_mutex);
    g_shown = text;
    // \r: back to the start of the line; ESC[K: clear what a longer previous text left.
    write_stderr("\r" + text + "\x1b[K");
}

StatusLineGuard::StatusLineGuard() {
    g_screen_mutex.lock();
    if (!g_shown.empty()) write_stderr("\r\x1b[K");
}

StatusLineGuard::~StatusLineGuard() {
    if (!g_shown.empty()) write_stderr("\r" + g_shown + "\x1b[K");
    g_screen_mutex.unlock();
}

}  // namespace docpipe::core
