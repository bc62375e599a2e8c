#include "imap_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/core.h>

#include "docpipe/no_sigpipe.hpp"
#include "docpipe/secrets.hpp"

namespace docpipe::mail::imap {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {



constexpr std::size_t kMaxLine = 1 << 20;           // one protocol line, literals excluded
constexpr std::size_t kMaxLiteral = 512u << 20;     // a message; source.imap caps it lower

std::string openssl_error() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown TLS error" : out;
}

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

bool is_ip_literal(const std::string& host) {
    in6_addr a6{};
    in_addr a4{};
    return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

}  // namespace

Connection::Connection(Endpoint endpoint) : ep_(std::move(endpoint)) {
    try {
        connect_socket();
        if (ep_.security == Security::Tls) start_tls();
        const auto deadline = steady::now() + ep_.timeout;
        const std::string greeting = read_line(deadline);
        if (greeting.rfind("* BYE", 0) == 0) throw ImapError(ImapError::Kind::Network, fmt::format("{} refused the connection: {}", server(), greeting));
        if (greeting.rfind("* OK", 0) != 0 && greeting.rfind("* PREAUTH", 0) != 0)
            throw ImapError(ImapError::Kind::Protocol, fmt::format("{} does not greet like an IMAP server: '{}'", server(), greeting.substr(0, 120)));
        read_capabilities_from(greeting);
        if (ep_.security == Security::StartTls) {
            if (caps_.empty()) refresh_capabilities();
            if (!caps_.count("STARTTLS"))
                throw ImapError(ImapError::Kind::Protocol,
                                fmt::format("{} does not offer STARTTLS; use security: tls (port 993) or fix the server", server()));
            checked("STARTTLS", "STARTTLS");
            start_tls();
            caps_.clear();  // RFC 3501: forget what was said before TLS
        }
        if (caps_.empty()) refresh_capabilities();
    } catch (...) {
        if (ssl_) SSL_free(ssl_);
        if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
        if (fd_ >= 0) ::close(fd_);
        throw;
    }
}

Connection::~Connection() {
    if (ssl_) SSL_free(ssl_);
    if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
    if (fd_ >= 0) ::close(fd_);
}

std::string Connection::server() const {
    const std::string host = ep_.host.find(':') != std::string::npos ? "[" + ep_.host + "]" : ep_.host;
    switch (ep_.security) {
        case Security::Tls: return fmt::format("imaps://{}:{}", host, ep_.port);
        case Security::StartTls: return fmt::format("imap://{}:{} (STARTTLS)", host, ep_.port);
        case Security::Plain: return fmt::format("imap://{}:{} (no TLS)", host, ep_.port);
    }
    return host;
}

bool Connection::has_capability(std::string_view name) const { return caps_.count(std::string(name)) > 0; }

void Connection::fail_network(const std::string& what) {
    throw ImapError(ImapError::Kind::Network, fmt::format("{}: {}", server(), what));
}

void Connection::connect_socket() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(ep_.port);
    if (int rc = getaddrinfo(ep_.host.c_str(), port.c_str(), &hints, &found); rc != 0)
        fail_network(fmt::format("cannot resolve host '{}': {}", ep_.host, gai_strerror(rc)));
    std::string last = "no address";
    for (addrinfo* a = found; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            last = std::strerror(errno);
            continue;
        }
        int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            try {
                rc = wait_for(fd, POLLOUT, steady::now() + ep_.connect_timeout, "connecting");
            } catch (...) {
                ::close(fd);
                freeaddrinfo(found);
                throw;
            }
            if (rc == 0) {
                last = fmt::format("no answer within {} ms", ep_.connect_timeout.count());
                ::close(fd);
                continue;
            }
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            rc = err == 0 ? 0 : -1;
            errno = err;
        }
        if (rc != 0) {
            last = std::strerror(errno);
            ::close(fd);
            continue;
        }
        // Blocking from here on; poll() bounds every read, SO_SNDTIMEO every write.
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        timeval tv{static_cast<time_t>(ep_.timeout.count() / 1000), static_cast<suseconds_t>((ep_.timeout.count() % 1000) * 1000)};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        fd_ = fd;
        break;
    }
    freeaddrinfo(found);
    if (fd_ < 0) fail_network(fmt::format("cannot connect: {}", last));
}

void Connection::start_tls() {
    ERR_clear_error();
    ssl_ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ssl_ctx_) fail_network("cannot create a TLS context: " + openssl_error());
    SSL_CTX_set_min_proto_version(ssl_ctx_, TLS1_2_VERSION);
    if (ep_.verify) {
        SSL_CTX_set_verify(ssl_ctx_, SSL_VERIFY_PEER, nullptr);
        const bool loaded = ep_.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ssl_ctx_) == 1
                                                : SSL_CTX_load_verify_locations(ssl_ctx_, ep_.ca_file.c_str(), nullptr) == 1;
        if (!loaded)
            fail_network(fmt::format("cannot load CA certificates from {}: {}", ep_.ca_file.empty() ? "the system store" : ep_.ca_file,
                                     openssl_error()));
    } else {
        SSL_CTX_set_verify(ssl_ctx_, SSL_VERIFY_NONE, nullptr);
    }
    ssl_ = SSL_new(ssl_ctx_);
    if (!ssl_) fail_network("cannot create a TLS session: " + openssl_error());
    SSL_set_mode(ssl_, SSL_MODE_AUTO_RETRY);
    if (ep_.verify) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        if (is_ip_literal(ep_.host)) X509_VERIFY_PARAM_set1_ip_asc(param, ep_.host.c_str());
        else X509_VERIFY_PARAM_set1_host(param, ep_.host.c_str(), 0);
    }
    if (!is_ip_literal(ep_.host)) SSL_set_tlsext_host_name(ssl_, ep_.host.c_str());
    SSL_set_fd(ssl_, fd_);
    ScopedNoSigpipe no_sigpipe;  // the handshake writes too
    // Non-blocking during the handshake, so that its waits go through wait_for(): bounded by
    // `timeout` as a whole and cut off by a stop, where a blocking SSL_connect() would sit in
    // the socket's receive timeout on a server that accepted and never speaks TLS.
    const int flags = ::fcntl(fd_, F_GETFL);
    ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
    struct RestoreFlags {
        int fd, flags;
        ~RestoreFlags() { ::fcntl(fd, F_SETFL, flags); }
    } restore{fd_, flags};
    const auto deadline = steady::now() + ep_.timeout;
    while (true) {
        ERR_clear_error();
        const int rc = SSL_connect(ssl_);
        if (rc == 1) return;
        const int err = SSL_get_error(ssl_, rc);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            if (wait_for(fd_, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "in the TLS handshake") == 0)
                fail_network(fmt::format("TLS handshake failed: no answer within {} ms", ep_.timeout.count()));
            continue;
        }
        const long verify = SSL_get_verify_result(ssl_);
        std::string why = openssl_error();
        if (verify != X509_V_OK)
            why = fmt::format("certificate not trusted ({}); set ca_file to the server's CA", X509_verify_cert_error_string(verify));
        fail_network("TLS handshake failed: " + why);
    }
}

void Connection::write_all(std::string_view data) {
    while (!data.empty()) {
        int n;
        if (ssl_) {
            ERR_clear_error();
            ScopedNoSigpipe no_sigpipe;
            n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 20)));
            if (n <= 0) fail_network("write failed: " + openssl_error());
        } else {
            n = static_cast<int>(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL));
            if (n < 0) {
                if (errno == EINTR) continue;
                fail_network(fmt::format("write failed: {}", std::strerror(errno)));
            }
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

int Connection::wait_for(int fd, short events, Deadline deadline, std::string_view doing) {
    // In slices, so that a stop asked for by the caller ends the wait within one slice. The
    // stop is asked only after a slice the server was silent in: an answer that is there, or
    // comes in time, is still read (a STORE that marks settled mail, the EXISTS of an IDLE).
    constexpr long long kSliceMs = 250;
    while (true) {
        const long long left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
        if (left <= 0) return 0;
        pollfd p{fd, events, 0};
        const int rc = ::poll(&p, 1, static_cast<int>(ep_.cancelled ? std::min(left, kSliceMs) : std::min<long long>(left, 1 << 30)));
        if (rc < 0 && errno == EINTR) continue;
        if (rc != 0) return rc;
        if (ep_.cancelled && ep_.cancelled())
            throw ImapError(ImapError::Kind::Cancelled, fmt::format("{}: stopped while {}", server(), doing));
    }
}

bool Connection::fill(Deadline deadline) {
    if (!(ssl_ && SSL_pending(ssl_) > 0)) {
        const int rc = wait_for(fd_, POLLIN, deadline, "waiting for its answer");
        if (rc == 0) return false;
        if (rc < 0) fail_network(fmt::format("poll failed: {}", std::strerror(errno)));
    }
    char buf[16384];
    int n;
    if (ssl_) {
        ERR_clear_error();
        ScopedNoSigpipe no_sigpipe;  // TLS 1.3 may answer a KeyUpdate or send an alert
        n = SSL_read(ssl_, buf, sizeof buf);
        if (n <= 0) {
            const int err = SSL_get_error(ssl_, n);
            if (err == SSL_ERROR_ZERO_RETURN) fail_network("the server closed the connection");
            if (err == SSL_ERROR_WANT_READ) return true;
            fail_network("read failed: " + openssl_error());
        }
    } else {
        n = static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
        if (n == 0) fail_network("the server closed the connection");
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) return true;
            fail_network(fmt::format("read failed: {}", std::strerror(errno)));
        }
    }
    rbuf_.append(buf, static_cast<std::size_t>(n));
    return true;
}

std::string Connection::read_line(Deadline deadline) {
    std::size_t searched = 0;
    while (true) {
        const auto eol = rbuf_.find("\r\n", searched);
        if (eol != std::string::npos) {
            std::string line = rbuf_.substr(0, eol);
            rbuf_.erase(0, eol + 2);
            return line;
        }
        searched = rbuf_.empty() ? 0 : rbuf_.size() - 1;
        if (rbuf_.size() > kMaxLine) fail_network(fmt::format("a protocol line longer than {} bytes", kMaxLine));
        if (!fill(deadline)) fail_network(fmt::format("no answer within {} ms", ep_.timeout.count()));
    }
}

Untagged Connection::read_unit(Deadline deadline, bool& tagged, std::string& tag_out) {
    Untagged unit;
    std::string line = read_line(deadline);
    tagged = false;
    if (line.rfind("* ", 0) == 0) {
        line.erase(0, 2);
    } else if (line.rfind("+", 0) == 0) {
        tag_out = "+";
        unit.text = line.size() > 2 ? line.substr(2) : "";
        return unit;
    } else {
        tagged = true;
        const auto sp = line.find(' ');
        tag_out = line.substr(0, sp);
        line = sp == std::string::npos ? "" : line.substr(sp + 1);
    }
    // A line ending in {N} (or {N+}) is followed by N raw bytes and then the rest of the line.
    while (!line.empty() && line.back() == '}') {
        const auto open = line.rfind('{');
        if (open == std::string::npos) break;
        std::string digits = line.substr(open + 1, line.size() - open - 2);
        if (!digits.empty() && digits.back() == '+') digits.pop_back();
        if (digits.empty() || digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string::npos) break;
        const std::size_t n = std::stoull(digits);
        if (n > kMaxLiteral) fail_network(fmt::format("a literal of {} bytes, above the {} byte limit", n, kMaxLiteral));
        while (rbuf_.size() < n)
            if (!fill(deadline)) fail_network(fmt::format("no answer within {} ms (in the middle of a {} byte literal)", ep_.timeout.count(), n));
        unit.literals.emplace_back(rbuf_.substr(0, n));
        rbuf_.erase(0, n);
        unit.text += line;
        line = read_line(deadline);
    }
    unit.text += line;
    return unit;
}

std::string Connection::next_tag() { return fmt::format("D{:04}", ++tag_counter_); }

Response Connection::read_until_tagged(const std::string& tag, Deadline deadline) {
    Response r;
    while (true) {
        bool tagged = false;
        std::string got;
        Untagged u = read_unit(deadline, tagged, got);
        if (got == "+") continue;  // a continuation nobody asked for: nothing to send
        if (!tagged) {
            // Including "* BYE": the tagged answer follows, or the close (a Network error).
            r.untagged.push_back(std::move(u));
            continue;
        }
        if (got != tag) continue;  // an answer to a command we gave up on
        const auto sp = u.text.find(' ');
        r.status = upper(u.text.substr(0, sp));
        r.text = sp == std::string::npos ? "" : u.text.substr(sp + 1);
        return r;
    }
}

Response Connection::command(const std::string& text) {
    if (idle_tag_) throw std::logic_error("IMAP command while IDLE; call idle_done() first");
    const std::string tag = next_tag();
    write_all(tag + " " + text + "\r\n");
    return read_until_tagged(tag, steady::now() + ep_.timeout);
}

Response Connection::checked(const std::string& text, std::string_view what) {
    Response r = command(text);
    if (!r.ok()) throw ImapError(ImapError::Kind::Protocol, fmt::format("{}: {} answered {} {}", what, server(), r.status, r.text));
    for (const auto& u : r.untagged)
        if (u.text.rfind("CAPABILITY ", 0) == 0) read_capabilities_from("[" + u.text + "]");
    return r;
}

void Connection::read_capabilities_from(const std::string& text) {
    auto at = text.find("[CAPABILITY ");
    if (at == std::string::npos) return;
    at += 12;
    const auto end = text.find(']', at);
    const std::string list = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    caps_.clear();
    std::size_t pos = 0;
    while (pos < list.size()) {
        auto next = list.find(' ', pos);
        if (next == std::string::npos) next = list.size();
        if (next > pos) caps_.insert(upper(list.substr(pos, next - pos)));
        pos = next + 1;
    }
}

void Connection::refresh_capabilities() {
    Response r = command("CAPABILITY");
    for (const auto& u : r.untagged)
        if (u.text.rfind("CAPABILITY ", 0) == 0) read_capabilities_from("[" + u.text + "]");
}

std::string Connection::quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '\r' || c == '\n' || c == '\0') throw std::invalid_argument("an IMAP string cannot hold CR, LF or NUL");
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

void Connection::login(const std::string& user, const std::string& password) {
    if (caps_.count("LOGINDISABLED"))
        throw ImapError(ImapError::Kind::Auth, fmt::format("{} refuses LOGIN on this connection (LOGINDISABLED): use TLS", server()));
    std::string cmd;
    try {
        cmd = "LOGIN " + quote(user) + " " + quote(password);
    } catch (const std::invalid_argument&) {
        throw ImapError(ImapError::Kind::Auth, fmt::format("the user name or password for {} contains a line break", server()));
    }
    Response r = command(cmd);
    std::fill(cmd.begin(), cmd.end(), '\0');
    if (!r.ok()) {
        // Some servers quote the refused command back, password included (as sent, or quoted).
        const std::string quoted = quote(password);
        const std::string said = docpipe::mask_secrets(r.text, {std::string_view(quoted).substr(1, quoted.size() - 2), password});
        throw ImapError(ImapError::Kind::Auth, fmt::format("{} refused the login of user '{}': {} {}", server(), user, r.status, said));
    }
    read_capabilities_from(r.text);
    if (r.text.find("[CAPABILITY ") == std::string::npos) refresh_capabilities();  // they may change after login
}

void Connection::authenticate_xoauth2(const std::string& user, const std::string& access_token) {
    if (!caps_.count("AUTH=XOAUTH2"))
        throw ImapError(ImapError::Kind::Auth, fmt::format("{} does not offer AUTH=XOAUTH2; use auth: password", server()));
    std::string blob = base64("user=" + user + "\x01" + "auth=Bearer " + access_token + "\x01\x01");
    const std::string tag = next_tag();
    const bool initial = caps_.count("SASL-IR") > 0;
    write_all(tag + " AUTHENTICATE XOAUTH2" + (initial ? " " + blob : std::string()) + "\r\n");
    const auto deadline = steady::now() + ep_.timeout;
    bool sent = initial;
    Response r;
    while (true) {
        bool tagged = false;
        std::string got;
        Untagged u = read_unit(deadline, tagged, got);
        if (got == "+") {
            // First "+": send the blob; a second one carries the error JSON: answer empty to get the NO.
            write_all(sent ? std::string("\r\n") : blob + "\r\n");
            sent = true;
            continue;
        }
        if (!tagged || got != tag) continue;
        const auto sp = u.text.find(' ');
        r.status = upper(u.text.substr(0, sp));
        r.text = sp == std::string::npos ? "" : u.text.substr(sp + 1);
        break;
    }
    if (!r.ok()) {
        const std::string said = docpipe::mask_secrets(r.text, {blob, access_token});  // a server may echo what it was sent
        std::fill(blob.begin(), blob.end(), '\0');
        throw ImapError(ImapError::Kind::Auth,
                        fmt::format("{} refused the XOAUTH2 login of user '{}': {} {} (is the access token current and for this user?)",
                                    server(), user, r.status, said));
    }
    std::fill(blob.begin(), blob.end(), '\0');
    read_capabilities_from(r.text);
    if (r.text.find("[CAPABILITY ") == std::string::npos) refresh_capabilities();
}

void Connection::idle_start() {
    const std::string tag = next_tag();
    write_all(tag + " IDLE\r\n");
    const auto deadline = steady::now() + ep_.timeout;
    while (true) {
        bool tagged = false;
        std::string got;
        Untagged u = read_unit(deadline, tagged, got);
        if (got == "+") break;
        if (tagged && got == tag)
            throw ImapError(ImapError::Kind::Protocol, fmt::format("IDLE: {} answered {}", server(), u.text));
    }
    idle_tag_ = tag;
}

Connection::Wait Connection::idle_wait(milliseconds max_wait, int wake_fd, std::vector<Untagged>& seen) {
    const auto deadline = steady::now() + max_wait;
    while (true) {
        if (rbuf_.find("\r\n") != std::string::npos || (ssl_ && SSL_pending(ssl_) > 0)) {
            bool tagged = false;
            std::string got;
            Untagged u = read_unit(steady::now() + ep_.timeout, tagged, got);
            if (tagged) {
                idle_tag_.reset();  // the server ended the IDLE itself
                throw ImapError(ImapError::Kind::Network, fmt::format("{} ended IDLE: {}", server(), u.text));
            }
            if (u.text.rfind("BYE", 0) == 0) fail_network("the server said goodbye: " + u.text);
            seen.push_back(std::move(u));
            return Wait::Data;
        }
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
        if (left <= 0) return Wait::Timeout;
        pollfd p[2] = {{fd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
        const int rc = ::poll(p, wake_fd >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
        if (rc < 0 && errno != EINTR) fail_network(fmt::format("poll failed: {}", std::strerror(errno)));
        if (rc <= 0) continue;
        if (wake_fd >= 0 && (p[1].revents & POLLIN)) return Wait::Woken;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) fill(steady::now() + ep_.timeout);
    }
}

void Connection::idle_done() {
    if (!idle_tag_) return;
    const std::string tag = *idle_tag_;
    idle_tag_.reset();
    write_all("DONE\r\n");
    Response r = read_until_tagged(tag, steady::now() + ep_.timeout);
    if (!r.ok()) throw ImapError(ImapError::Kind::Protocol, fmt::format("IDLE: {} answered {} {}", server(), r.status, r.text));
}

void Connection::limit_timeout(milliseconds most) {
    if (ep_.timeout <= most) return;
    ep_.timeout = most;
    timeval tv{static_cast<time_t>(most.count() / 1000), static_cast<suseconds_t>((most.count() % 1000) * 1000)};
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

void Connection::logout() noexcept {
    try {
        if (idle_tag_) idle_done();
        ep_.timeout = std::min(ep_.timeout, milliseconds(2000));
        const std::string tag = next_tag();
        write_all(tag + " LOGOUT\r\n");
        read_until_tagged(tag, steady::now() + ep_.timeout);
    } catch (...) {
        // the connection is going away either way
    }
    if (ssl_) {
        ScopedNoSigpipe no_sigpipe;  // close_notify to a server that already hung up
        SSL_shutdown(ssl_);
    }
}

// ---- helpers ------------------------------------------------------------------------------------

std::optional<std::uint64_t> number_after(std::string_view text, std::string_view key) {
    std::size_t pos = 0;
    while ((pos = text.find(key, pos)) != std::string_view::npos) {
        const bool starts_word = pos == 0 || text[pos - 1] == ' ' || text[pos - 1] == '[' || text[pos - 1] == '(';
        std::size_t at = pos + key.size();
        pos = at;
        if (!starts_word || at >= text.size() || text[at] != ' ') continue;
        ++at;
        std::size_t end = at;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
        if (end == at || end - at > 19) continue;
        return std::stoull(std::string(text.substr(at, end - at)));
    }
    return std::nullopt;
}

std::vector<std::string> flags_in(std::string_view text) {
    std::vector<std::string> out;
    const auto at = text.find("FLAGS (");
    if (at == std::string_view::npos) return out;
    const auto end = text.find(')', at);
    std::string_view list = text.substr(at + 7, end == std::string_view::npos ? std::string_view::npos : end - at - 7);
    std::size_t pos = 0;
    while (pos < list.size()) {
        auto next = list.find(' ', pos);
        if (next == std::string_view::npos) next = list.size();
        if (next > pos) out.emplace_back(list.substr(pos, next - pos));
        pos = next + 1;
    }
    return out;
}

std::string internaldate_iso(std::string_view text) {
    const auto at = text.find("INTERNALDATE \"");
    if (at == std::string_view::npos) return "";
    const auto end = text.find('"', at + 14);
    if (end == std::string_view::npos) return "";
    std::string value(text.substr(at + 14, end - at - 14));  // "17-Jul-1996 02:44:25 -0700"
    if (!value.empty() && value[0] == ' ') value[0] = '0';
    std::tm tm{};
    const char* rest = strptime(value.c_str(), "%d-%b-%Y %H:%M:%S", &tm);
    if (!rest) return "";
    int sign = 1, hh = 0, mm = 0;
    if (std::sscanf(rest, " %*c%2d%2d", &hh, &mm) == 2 && std::strchr(rest, '-')) sign = -1;
    const std::time_t local = timegm(&tm) - sign * (hh * 3600 + mm * 60);
    std::tm utc{};
    gmtime_r(&local, &utc);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                       utc.tm_sec);
}

}  // namespace docpipe::mail::imap
