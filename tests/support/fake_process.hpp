// Runs a fake server (tests/fakes/*.py, or any program whose first stdout line is
// `LISTENING <port>`) as a child process, and talks to its /_fake/ control API.
//
// Contract:
//  - Ownership: a FakeProcess owns its child. The constructor returns once the child has
//    printed `LISTENING <port>` (10 s at most, else std::runtime_error with the command and
//    what it printed, and the child is stopped). stop() / the destructor send SIGTERM, wait
//    up to 3 s, then SIGKILL, and reap the child. Non-copyable and non-movable.
//  - The child's stderr is inherited (its log shows up in the test output); its stdout is a
//    pipe read only up to the LISTENING line. The child's environment gets
//    DOCPIPE_FAKE_PARENT_PID=<this pid>: the fakes stop by themselves if the test process dies
//    without running destructors.
//  - Threading: construct, stop() and destroy from one thread; port() and base_url() may be
//    called from any thread. fake_control() is a free function with no shared state (one
//    connection per call), safe from any thread.
//  - Linux/POSIX only.
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace docpipe::test {

class FakeProcess {
public:
    // argv e.g. {"python3", "tests/fakes/fake_ncb.py", "--port", "0", "--api-key", "k"}; argv[0]
    // is looked up in PATH.
    explicit FakeProcess(std::vector<std::string> argv) : argv_(std::move(argv)) {
        if (argv_.empty()) throw std::invalid_argument("FakeProcess: empty argv");
        std::vector<char*> args;
        for (auto& a : argv_) args.push_back(a.data());
        args.push_back(nullptr);

        const std::string parent_var = "DOCPIPE_FAKE_PARENT_PID=";
        std::vector<std::string> env;
        for (char** e = environ; e && *e; ++e)
            if (std::strncmp(*e, parent_var.c_str(), parent_var.size()) != 0) env.emplace_back(*e);
        env.push_back(parent_var + std::to_string(::getpid()));
        std::vector<char*> envp;
        for (auto& e : env) envp.push_back(e.data());
        envp.push_back(nullptr);

        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("FakeProcess: pipe2: " + std::string(std::strerror(errno)));
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // the dup has no O_CLOEXEC
        // The child starts with no blocked signals and default SIGTERM/SIGINT, whatever this
        // thread has (a blocked SIGTERM would be inherited and make stop() wait for SIGKILL).
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t none, defaults;
        sigemptyset(&none);
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGTERM);
        sigaddset(&defaults, SIGINT);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr, static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
        const int rc = ::posix_spawnp(&pid_, args[0], &actions, &attr, args.data(), envp.data());
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        if (rc != 0) {
            ::close(fds[0]);
            pid_ = -1;
            throw std::runtime_error("FakeProcess: cannot start `" + command() + "`: " + std::strerror(rc));
        }
        out_fd_ = fds[0];
        try {
            port_ = wait_for_listening();
        } catch (...) {
            stop();
            throw;
        }
    }

    ~FakeProcess() { stop(); }

    FakeProcess(const FakeProcess&) = delete;
    FakeProcess& operator=(const FakeProcess&) = delete;

    int port() const { return port_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    pid_t pid() const { return pid_; }

    // SIGTERM, SIGKILL after 3 s, reap. Idempotent; the destructor calls it.
    void stop() noexcept {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            if (!reaped_within(std::chrono::seconds(3))) {
                ::kill(pid_, SIGKILL);
                int status = 0;
                while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
                }
            }
            pid_ = -1;
        }
        if (out_fd_ >= 0) {
            ::close(out_fd_);
            out_fd_ = -1;
        }
    }

private:
    std::string command() const {
        std::string s;
        for (const auto& a : argv_) s += (s.empty() ? "" : " ") + a;
        return s;
    }

    [[noreturn]] void fail(const std::string& why, const std::string& printed) const {
        throw std::runtime_error("FakeProcess: `" + command() + "` " + why + "; it printed: \"" + printed + "\"");
    }

    int wait_for_listening() {
        using clock = std::chrono::steady_clock;
        const auto deadline = clock::now() + std::chrono::seconds(10);
        std::string out;
        for (;;) {
            if (const auto nl = out.find('\n'); nl != std::string::npos) {
                const std::string line = out.substr(0, nl);
                const std::string tag = "LISTENING ";
                if (line.rfind(tag, 0) == 0) {
                    try {
                        const int port = std::stoi(line.substr(tag.size()));
                        if (port > 0 && port < 65536) return port;
                    } catch (const std::exception&) {
                    }
                }
                fail("did not start with a `LISTENING <port>` line", out);
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
            if (left <= 0) fail("printed no `LISTENING <port>` line within 10 s", out);
            pollfd pfd{out_fd_, POLLIN, 0};
            const int n = ::poll(&pfd, 1, static_cast<int>(left));
            if (n < 0 && errno != EINTR) fail(std::string("could not be watched: ") + std::strerror(errno), out);
            if (n <= 0) continue;
            char buf[512];
            const ssize_t got = ::read(out_fd_, buf, sizeof buf);
            if (got < 0 && errno != EINTR) fail(std::string("could not be read: ") + std::strerror(errno), out);
            if (got == 0) fail("exited (or closed stdout) before printing `LISTENING <port>`", out);
            if (got > 0) out.append(buf, static_cast<std::size_t>(got));
        }
    }

    bool reaped_within(std::chrono::milliseconds limit) noexcept {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            int status = 0;
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_ || (r < 0 && errno != EINTR)) return true;  // exited, or not our child any more
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    std::vector<std::string> argv_;
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int port_ = 0;
};

// One HTTP/1.1 request (Connection: close) to a fake's control API, e.g.
//   fake_control(ncb.base_url(), "POST", "/_fake/script", R"({"target":"claims","responses":[{"status":503}]})");
//   auto json = fake_control(ncb.base_url(), "GET", "/_fake/claims");
// base_url is "http://host:port". Returns the response body. Throws std::runtime_error when it
// cannot connect, on a timeout (10 s) and on a non-2xx status (the message has the status and body).
inline std::string fake_control(const std::string& base_url, const std::string& method, const std::string& path,
                                const std::string& json_body = "") {
    const std::string scheme = "http://";
    if (base_url.rfind(scheme, 0) != 0) throw std::invalid_argument("fake_control: not an http:// URL: " + base_url);
    std::string hostport = base_url.substr(scheme.size());
    if (const auto slash = hostport.find('/'); slash != std::string::npos) hostport.resize(slash);
    const auto colon = hostport.rfind(':');
    const std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
    const std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
    const std::string what = "fake_control: " + method + " " + base_url + path;

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
        throw std::runtime_error(what + ": " + ::gai_strerror(rc));
    int fd = -1;
    for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(found);
    if (fd < 0) throw std::runtime_error(what + ": cannot connect");
    struct Closer {
        int sock;
        ~Closer() { ::close(sock); }
    } closer{fd};
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    const std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + hostport +
                                "\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " +
                                std::to_string(json_body.size()) + "\r\n\r\n" + json_body;
    for (std::size_t sent = 0; sent < request.size();) {
        const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error(what + ": send: " + std::strerror(errno));
        sent += static_cast<std::size_t>(n);
    }
    std::string response;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(what + ": recv: " + std::strerror(errno));
        if (n == 0) break;
        response.append(buf, static_cast<std::size_t>(n));
    }

    const auto head_end = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12 || head_end == std::string::npos)
        throw std::runtime_error(what + ": not an HTTP response: \"" + response.substr(0, 200) + "\"");
    const int status = std::atoi(response.c_str() + 9);
    std::string head = response.substr(0, head_end);
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string body = response.substr(head_end + 4);
    if (const auto cl = head.find("\r\ncontent-length:"); cl != std::string::npos) {
        const auto length = static_cast<std::size_t>(std::strtoull(head.c_str() + cl + 17, nullptr, 10));
        if (length < body.size()) body.resize(length);
    }
    if (status < 200 || status >= 300)
        throw std::runtime_error(what + ": HTTP " + std::to_string(status) + ": " + body);
    return body;
}

}  // namespace docpipe::test
