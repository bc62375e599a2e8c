// A real Dovecot IMAP server for tests: started by the test on free loopback ports with a
// throwaway configuration in a temp folder (passwd-file user, Maildir storage, a self-signed
// certificate made with openssl, base_dir and state under the folder), stopped by its own
// pid (never by name; PR_SET_PDEATHSIG also stops it if the test process dies first). One
// IMAPS listener (what the code under test uses) and one plain listener for the test's own
// checks through ImapProbe.
//
// OAuth 2.0 (Options::oauth2_introspection_url): Dovecot then also offers AUTH=XOAUTH2 and
// AUTH=OAUTHBEARER through its oauth2 passdb, which asks that RFC 7662 introspection endpoint
// (POST, form field token=...) about every token and accepts it only when the answer has
// "active": true and "username" equal to the user logging in. The password passdb stays first
// (for PLAIN and LOGIN only), so ImapProbe still logs in with the password.
//
// Root: Dovecot refuses to give mail to uid 0 (passwd-file "invalid UID"), so when the test
// runs as root the mail user is `nobody` and the Maildir is chowned to it; otherwise it is
// the current user, and Dovecot's login/internal users are the current user too.
//
// Threading: none; use from the test's thread (an ImapProbe may live on another thread).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace docpipe::test {

// A plain-text IMAP client for checks: one command at a time, answers as raw lines.
class ImapProbe {
public:
    ImapProbe(int port, const std::string& user, const std::string& password) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        timeval tv{10, 0};
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("ImapProbe: cannot connect");
        line();  // greeting
        const std::string r = command("LOGIN \"" + user + "\" \"" + password + "\"");
        if (r.find("OK") == std::string::npos) throw std::runtime_error("ImapProbe: login refused: " + r);
    }
    ~ImapProbe() {
        try {
            command("LOGOUT");
        } catch (...) {
        }
        ::close(fd_);
    }
    ImapProbe(const ImapProbe&) = delete;
    ImapProbe& operator=(const ImapProbe&) = delete;

    // Everything the server answered, untagged lines and the tagged one, each ending in \n.
    std::string command(const std::string& text) {
        const std::string tag = "P" + std::to_string(++tag_);
        send(tag + " " + text + "\r\n");
        return until(tag);
    }

    // APPENDs `message` (CRLF line ends expected) with optional flags like "(\\Seen)".
    std::string append(const std::string& mailbox, const std::string& message, const std::string& flags = "") {
        const std::string tag = "P" + std::to_string(++tag_);
        send(tag + " APPEND \"" + mailbox + "\" " + (flags.empty() ? "" : flags + " ") + "{" + std::to_string(message.size()) + "}\r\n");
        const std::string go = line();
        if (go.rfind("+", 0) != 0) throw std::runtime_error("ImapProbe: APPEND not accepted: " + go);
        send(message + "\r\n");
        return until(tag);
    }

    // The FLAGS of the message with `uid` in `mailbox` (as the server prints them), "" if none.
    std::string flags(const std::string& mailbox, std::uint64_t uid) {
        command("EXAMINE \"" + mailbox + "\"");
        const std::string r = command("UID FETCH " + std::to_string(uid) + " (FLAGS)");
        const auto at = r.find("FLAGS (");
        if (at == std::string::npos) return "";
        return r.substr(at + 7, r.find(')', at) - at - 7);
    }

    // UIDs in `mailbox`, ascending.
    std::vector<std::uint64_t> uids(const std::string& mailbox) {
        command("EXAMINE \"" + mailbox + "\"");
        const std::string r = command("UID SEARCH ALL");
        std::vector<std::uint64_t> out;
        const auto at = r.find("* SEARCH");
        if (at == std::string::npos) return out;
        std::istringstream words(r.substr(at + 8, r.find('\n', at) - at - 8));
        std::string w;
        while (words >> w)
            if (w.find_first_not_of("0123456789\r") == std::string::npos && !w.empty()) out.push_back(std::stoull(w));
        return out;
    }

private:
    void send(const std::string& s) {
        std::size_t done = 0;
        while (done < s.size()) {
            const auto n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
            if (n <= 0) throw std::runtime_error("ImapProbe: write failed");
            done += static_cast<std::size_t>(n);
        }
    }
    std::string line() {
        while (true) {
            const auto eol = buf_.find("\r\n");
            if (eol != std::string::npos) {
                std::string l = buf_.substr(0, eol);
                buf_.erase(0, eol + 2);
                return l;
            }
            char b[4096];
            const auto n = ::recv(fd_, b, sizeof b, 0);
            if (n <= 0) throw std::runtime_error("ImapProbe: connection closed or timed out");
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }
    std::string until(const std::string& tag) {
        std::string all;
        while (true) {
            std::string l = line();
            all += l + "\n";
            if (l.rfind(tag + " ", 0) == 0) return all;
        }
    }
    int fd_ = -1;
    int tag_ = 0;
    std::string buf_;
};

class DovecotServer {
public:
    // Where the binary is, or "" when Dovecot is not installed (tests skip then).
    static std::string binary() {
        for (const char* p : {"/usr/sbin/dovecot", "/usr/local/sbin/dovecot"})
            if (::access(p, X_OK) == 0) return p;
        return "";
    }

    struct Options {
        // e.g. http://127.0.0.1:PORT/introspect; empty: no OAuth 2.0 mechanisms.
        std::string oauth2_introspection_url;
    };

    DovecotServer() : DovecotServer(Options{}) {}
    explicit DovecotServer(Options options) : options_(std::move(options)) {
        std::string pattern = (std::filesystem::temp_directory_path() / "docpipe-dovecot-XXXXXX").string();
        if (!mkdtemp(pattern.data())) throw std::runtime_error("DovecotServer: mkdtemp failed");
        dir_ = pattern;
        ::chmod(dir_.c_str(), 0755);  // the mail user (nobody, as root) must reach its Maildir
        imaps_port_ = free_port();
        imap_port_ = free_port();
        if (::geteuid() == 0) {
            const passwd* nobody = ::getpwnam("nobody");
            uid_ = nobody ? nobody->pw_uid : 65534;
            gid_ = nobody ? nobody->pw_gid : 65534;
        } else {
            uid_ = ::getuid();
            gid_ = ::getgid();
        }
        std::filesystem::create_directories(dir_ / "mail");
        std::filesystem::create_directories(dir_ / "base");
        std::filesystem::create_directories(dir_ / "state");
        [[maybe_unused]] int rc = ::chown((dir_ / "mail").c_str(), uid_, gid_);
        const std::string cert_cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout '" + (dir_ / "key.pem").string() + "' -out '" +
                                     (dir_ / "cert.pem").string() +
                                     "' -days 2 -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' >/dev/null 2>&1";
        if (std::system(cert_cmd.c_str()) != 0) throw std::runtime_error("DovecotServer: openssl could not make a certificate");
        write_config();
        start();
    }
    ~DovecotServer() {
        stop();
        std::error_code ec;
        if (!std::getenv("DOCPIPE_KEEP_DOVECOT")) std::filesystem::remove_all(dir_, ec);
    }

    int imaps_port() const { return imaps_port_; }
    int imap_port() const { return imap_port_; }
    const std::string& user() const { return user_; }
    const std::string& password() const { return password_; }
    std::filesystem::path ca_file() const { return dir_ / "cert.pem"; }
    std::filesystem::path dir() const { return dir_; }
    // The user's Maildir (INBOX); a folder X is at maildir() / ".X".
    std::filesystem::path maildir() const { return dir_ / "mail" / user_; }
    std::string log() const {
        std::ifstream in(dir_ / "dovecot.log");
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    ImapProbe probe() const { return ImapProbe(imap_port_, user_, password_); }

    void start() {
        // Everything the child needs is made before fork(): a child of a threaded process may
        // only call async-signal-safe functions (no allocation) until exec.
        const std::string bin = binary();
        const std::string conf = (dir_ / "dovecot.conf").string();
        const std::string out_path = (dir_ / "stdout.log").string();
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("DovecotServer: fork failed");
        if (pid_ == 0) {
            // A test killed by its timeout must not leave a server behind (dovecot -F stays
            // this process, so the signal reaches its master, which stops its children).
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (out >= 0) {
                ::dup2(out, 1);
                ::dup2(out, 2);
            }
            ::execl(bin.c_str(), "dovecot", "-F", "-c", conf.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 1000; ++i) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                std::ifstream in(dir_ / "stdout.log");
                std::stringstream ss;
                ss << in.rdbuf();
                throw std::runtime_error("dovecot exited at start: " + ss.str() + log());
            }
            if (answers(imap_port_) && answers(imaps_port_)) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        throw std::runtime_error("dovecot did not listen on 127.0.0.1:" + std::to_string(imaps_port_) + " within 10 s: " + log());
    }

    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        for (int i = 0; i < 500; ++i) {
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

private:
    static int free_port() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        socklen_t len = sizeof addr;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        ::close(fd);
        return ntohs(addr.sin_port);
    }

    static bool answers(int port) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        return ok;
    }

    void write_config() {
        const std::string d = dir_.string();
        const bool oauth2 = !options_.oauth2_introspection_url.empty();
        std::ofstream pw(dir_ / "passwd");
        pw << user_ << ":{PLAIN}" << password_ << ":" << uid_ << ":" << gid_ << "::" << d << "/home::\n";
        std::ofstream c(dir_ / "dovecot.conf");
        c << "base_dir = " << d << "/base\n"
          << "state_dir = " << d << "/state\n"
          << "instance_name = docpipe-test-" << imaps_port_ << "\n"
          << "protocols = imap\n"
          << "listen = 127.0.0.1\n"
          << "log_path = " << d << "/dovecot.log\n"
          << "ssl = yes\n"
          << "ssl_cert = <" << d << "/cert.pem\n"
          << "ssl_key = <" << d << "/key.pem\n"
          << "disable_plaintext_auth = no\n"
          << "auth_mechanisms = plain login" << (oauth2 ? " xoauth2 oauthbearer" : "") << "\n"
          << "auth_failure_delay = 1 secs\n"
          << "mail_location = maildir:" << d << "/mail/%u\n"
          << "mailbox_idle_check_interval = 1 secs\n"
          << "first_valid_uid = " << uid_ << "\n"
          << "first_valid_gid = " << gid_ << "\n";
        if (::geteuid() == 0) {
            c << "default_login_user = dovenull\n"
              << "default_internal_user = dovecot\n";
        } else {
            const passwd* me = ::getpwuid(::getuid());
            const group* g = ::getgrgid(::getgid());
            const std::string name = me ? me->pw_name : std::to_string(::getuid());
            c << "default_login_user = " << name << "\n"
              << "default_internal_user = " << name << "\n"
              << "default_internal_group = " << (g ? g->gr_name : name) << "\n";
        }
        c << "passdb {\n  driver = passwd-file\n" << (oauth2 ? "  mechanisms = plain login\n" : "")
          << "  args = scheme=PLAIN username_format=%u " << d << "/passwd\n}\n";
        if (oauth2) {
            // No tokeninfo_url: every token goes straight to the introspection endpoint, with
            // force_introspection as the documentation asks for when active_attribute is set.
            std::ofstream o(dir_ / "dovecot-oauth2.conf.ext");
            o << "introspection_mode = post\n"
              << "introspection_url = " << options_.oauth2_introspection_url << "\n"
              << "force_introspection = yes\n"
              << "username_attribute = username\n"
              << "active_attribute = active\n"
              << "active_value = true\n"
              << "timeout_msecs = 10000\n";
            c << "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = " << d << "/dovecot-oauth2.conf.ext\n}\n";
        }
        c << "userdb {\n  driver = passwd-file\n  args = username_format=%u " << d << "/passwd\n}\n"
          << "service imap-login {\n  chroot =\n"
          << "  inet_listener imap {\n    port = " << imap_port_ << "\n  }\n"
          << "  inet_listener imaps {\n    port = " << imaps_port_ << "\n    ssl = yes\n  }\n}\n";
    }

    Options options_;
    std::filesystem::path dir_;
    int imaps_port_ = 0, imap_port_ = 0;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
    pid_t pid_ = -1;
    std::string user_ = "claims";
    std::string password_ = "Tr0ub4dor&3-imap";
};

}  // namespace docpipe::test
