// A small IMAP4rev1 client (RFC 3501 + IDLE RFC 2177, MOVE RFC 6851, UIDPLUS RFC 4315,
// SASL-IR / XOAUTH2) over a TCP socket with OpenSSL, for source.imap. Why a client of our
// own rather than libcurl or libetpan: see imap_source.hpp.
//
// What it understands of the server's answers is only what the source needs: tagged
// status lines, untagged lines (with their literals, so message bytes never get mistaken
// for protocol), continuation requests. Callers pick values out of untagged lines with the
// helpers below.
//
// Contract:
// - Ownership: a Connection owns its socket and TLS session; destroying it closes both
//   (without LOGOUT: call logout() first for a polite goodbye).
// - Threading: not thread-safe; one thread uses a Connection at a time. Another thread
//   wakes one blocked in idle_wait() by writing to the `wake_fd` it was given, never by
//   calling into the Connection.
// - Errors: every failure throws ImapError with the server (host:port) in the message and a
//   kind, so the source can tell a refused login (fix the configuration) from a dropped
//   connection (reconnect) or its own stop (Cancelled: a command was cut off, so the
//   connection is left mid-answer; destroy it). Messages never contain the password or token.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace docpipe::mail::imap {

enum class Security { Tls, StartTls, Plain };

struct Endpoint {
    std::string host;
    int port = 993;
    Security security = Security::Tls;
    std::string ca_file;  // empty: the system's trust store
    bool verify = true;   // check the certificate chain and that it names `host`
    std::chrono::milliseconds connect_timeout{15000};
    std::chrono::milliseconds timeout{60000};  // one command's answer
    // Asked after every 250 ms that the server was silent while connecting, in the TLS
    // handshake or waiting for an answer; when it returns true the wait ends with
    // ImapError(Cancelled). A stopping source thus stops within a quarter second of silence
    // rather than after `timeout`. Called on the connection's thread; must be quick.
    std::function<bool()> cancelled;
};

class ImapError : public std::runtime_error {
public:
    enum class Kind {
        Network,   // cannot connect, TLS failed, connection dropped or timed out
        Auth,      // the server refused the credentials
        Protocol,  // the server said NO/BAD, or answered something we cannot read
        Cancelled, // Endpoint::cancelled said stop while waiting; the connection is unusable now
    };
    ImapError(Kind kind, const std::string& what) : std::runtime_error(what), kind(kind) {}
    Kind kind;
};

// One untagged answer ("* ..."), its literals taken out: `text` holds "{N}" where each was.
struct Untagged {
    std::string text;  // without the leading "* " and the trailing CRLF
    std::vector<std::string> literals;
};

struct Response {
    std::string status;  // OK, NO or BAD
    std::string text;    // the rest of the tagged line, e.g. "[AUTHENTICATIONFAILED] Authentication failed."
    std::vector<Untagged> untagged;
    bool ok() const { return status == "OK"; }
};

class Connection {
public:
    // Connects, does TLS (Tls: at once; StartTls: after STARTTLS) and reads the greeting.
    explicit Connection(Endpoint endpoint);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // "imaps://host:port" / "imap://host:port (STARTTLS)": what logs and health name.
    std::string server() const;
    bool has_capability(std::string_view name) const;  // upper-case name, e.g. "IDLE", "MOVE"

    // Throws ImapError(Auth) naming the server and user (never the secret) when refused.
    void login(const std::string& user, const std::string& password);
    void authenticate_xoauth2(const std::string& user, const std::string& access_token);

    // Sends one command (without tag) and reads up to its tagged answer. A NO/BAD answer is
    // returned, not thrown; a dropped connection or timeout throws ImapError(Network).
    Response command(const std::string& text);
    // As command(), but throws ImapError(Protocol) "<what>: <status> <text>" unless OK.
    Response checked(const std::string& text, std::string_view what);

    // IDLE: idle_start() sends IDLE and waits for the server's go-ahead; idle_wait() waits
    // until the server says something (Data: the line is in `seen`), `wake_fd` becomes
    // readable (Woken; the caller drains it) or `max_wait` passes (Timeout); idle_done()
    // ends the IDLE and reads its tagged answer.
    enum class Wait { Data, Woken, Timeout };
    void idle_start();
    Wait idle_wait(std::chrono::milliseconds max_wait, int wake_fd, std::vector<Untagged>& seen);
    void idle_done();
    bool idling() const { return idle_tag_.has_value(); }

    // Lowers the time allowed for each answer and each write from now on (a goodbye at stop
    // must not take `timeout` per command on a server that stopped answering).
    void limit_timeout(std::chrono::milliseconds most);
    // Best effort: LOGOUT with a short timeout; never throws.
    void logout() noexcept;

    // Quotes a string argument (mailbox, user, flag-free text); throws std::invalid_argument
    // for CR/LF, which no quoted string can carry.
    static std::string quote(std::string_view s);

private:
    using Deadline = std::chrono::steady_clock::time_point;
    void connect_socket();
    void start_tls();
    void write_all(std::string_view data);
    // poll() of `fd` for `events` until `deadline` (0: it passed), asking ep_.cancelled
    // between slices; `doing` completes "stopped while ..." when it says stop.
    int wait_for(int fd, short events, Deadline deadline, std::string_view doing);
    bool fill(Deadline deadline);  // false on timeout
    std::string read_line(Deadline deadline);
    // Reads one response unit: a line with its literals. `line` is what is left after them.
    Untagged read_unit(Deadline deadline, bool& tagged, std::string& tag_out);
    Response read_until_tagged(const std::string& tag, Deadline deadline);
    std::string next_tag();
    void read_capabilities_from(const std::string& text);
    void refresh_capabilities();
    [[noreturn]] void fail_network(const std::string& what);

    Endpoint ep_;
    int fd_ = -1;
    SSL_CTX* ssl_ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    std::string rbuf_;
    std::uint64_t tag_counter_ = 0;
    std::set<std::string> caps_;
    std::optional<std::string> idle_tag_;
};

// Helpers for untagged lines.
// "UIDVALIDITY 123" inside "[...]" or "(...)"; nullopt when the key is absent.
std::optional<std::uint64_t> number_after(std::string_view text, std::string_view key);
// The flags of a "FLAGS (\Seen $X)" group, as written.
std::vector<std::string> flags_in(std::string_view text);
// "INTERNALDATE "17-Jul-1996 02:44:25 -0700"" -> "1996-07-17T09:44:25Z"; "" when absent.
std::string internaldate_iso(std::string_view text);

}  // namespace docpipe::mail::imap
