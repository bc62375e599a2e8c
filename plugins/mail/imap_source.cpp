#include "imap_source.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <charconv>
#include <cctype>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include <fmt/core.h>

#include "docpipe/rfc822.hpp"
#include "docpipe/secrets.hpp"

namespace docpipe::mail {

using imap::ImapError;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {

imap::Security parse_security(const std::string& s) {
    if (s == "starttls") return imap::Security::StartTls;
    if (s == "plain") return imap::Security::Plain;
    return imap::Security::Tls;
}

// A flag we may write: a system flag (\Seen) or a keyword atom ($Docpipe, Processed).
bool valid_flag(const std::string& f) {
    if (f.empty() || f.size() > 64) return false;
    const std::size_t from = f[0] == '\\' ? 1 : 0;
    if (from == f.size()) return false;
    for (std::size_t i = from; i < f.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(f[i]);
        if (c <= 0x20 || c >= 0x7f || std::string_view("(){%*\"\\]").find(static_cast<char>(c)) != std::string_view::npos) return false;
    }
    return true;
}

// The SEARCH key that leaves out messages carrying `flag` ("" when there is none).
std::string without_flag(const std::string& flag) {
    if (flag.empty()) return "";
    std::string lower = flag;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "\\seen") return " UNSEEN";
    if (lower == "\\flagged") return " UNFLAGGED";
    if (lower == "\\answered") return " UNANSWERED";
    if (lower == "\\draft") return " UNDRAFT";
    if (lower == "\\deleted") return "";  // always excluded below
    if (flag[0] == '\\') return "";       // another system flag cannot be searched for by name
    return " UNKEYWORD " + flag;
}

// UID sets like "1:3,7,9:12" (sorted, duplicates dropped, runs as ranges), split so that no
// set is longer than max_chars: one UID STORE of 10,000 single UIDs was an 80 KB command line,
// and servers may refuse lines over 8192 octets (RFC 7162 section 4).
std::vector<std::string> uid_sets(std::vector<std::uint64_t> uids, std::size_t max_chars = 1000) {
    std::sort(uids.begin(), uids.end());
    uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
    std::vector<std::string> sets;
    std::string set;
    for (std::size_t i = 0; i < uids.size();) {
        std::size_t last = i;
        while (last + 1 < uids.size() && uids[last + 1] == uids[last] + 1) ++last;
        const std::string item = last == i ? std::to_string(uids[i]) : fmt::format("{}:{}", uids[i], uids[last]);
        if (!set.empty() && set.size() + 1 + item.size() > max_chars) sets.push_back(std::exchange(set, ""));
        set += (set.empty() ? "" : ",") + item;
        i = last + 1;
    }
    if (!set.empty()) sets.push_back(std::move(set));
    return sets;
}

// All of `uids` as one set, for a log line or a SEARCH of a few UIDs.
std::string uid_set(const std::vector<std::uint64_t>& uids) {
    const auto sets = uid_sets(uids, std::string::npos);
    return sets.empty() ? "" : sets.front();
}

std::string iso_now(std::chrono::system_clock::time_point t) {
    if (t == std::chrono::system_clock::time_point{}) return "never";
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string trim(std::string s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

}  // namespace

ComponentDescriptor ImapSource::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Source;
    d.name = "source.imap";
    d.summary = "Emails from an IMAP mailbox (IMAPS; IDLE or polling); flagged or moved only after the pipeline acked";
    d.has_health_probe = true;
    d.config = ConfigSpec{
        Field::string("host").required().describe("IMAP server host name or address (checked against its TLS certificate)"),
        Field::integer("port").default_value(0).min(0).max(65535).describe("0: 993 for security tls, 143 otherwise"),
        Field::enumeration("security", {"tls", "starttls", "plain"})
            .default_value("tls")
            .describe("tls: IMAPS (TLS from the first byte); starttls: plain connection upgraded with STARTTLS (refused if the "
                      "server does not offer it); plain: no TLS at all, only with allow_plaintext"),
        Field::boolean("allow_plaintext").default_value(false).describe(
            "Must be true for security: plain, which sends the password in clear (tests and local servers only)"),
        Field::string("ca_file").path().default_value("").describe("PEM file of CAs to trust for the server's certificate; empty: the system's"),
        Field::boolean("tls_verify").default_value(true).describe(
            "Check the server's certificate chain and host name (false: anyone on the path can read the mailbox; tests only)"),
        Field::string("user").required().describe("Login name (for Gmail / Microsoft 365 with XOAUTH2: the mailbox address)"),
        Field::enumeration("auth", {"password", "xoauth2"})
            .default_value("password")
            .describe("password: IMAP LOGIN with `password`; xoauth2: SASL XOAUTH2 with an OAuth access token (Gmail, Microsoft 365)"),
        Field::string("password").secret().default_value("").describe(
            "auth password: the password; give it as ${file:/run/credentials/...} or ${VAR}, never inline (never logged)"),
        Field::string("oauth_token").secret().default_value("").describe(
            "auth xoauth2: the access token (e.g. ${file:...} kept fresh by a token helper); read once at start"),
        Field::string("oauth_token_file").path().default_value("").describe(
            "auth xoauth2: a file holding the current access token, read again at every login (for tokens refreshed "
            "by another process); used when oauth_token is empty"),
        Field::string("mailbox").default_value("INBOX").describe("The mailbox (folder) to take mail from; ASCII names only"),
        Field::boolean("idle").default_value(true).describe(
            "Wait for new mail with IMAP IDLE when the server offers it; false, or a server without IDLE: poll every poll_interval"),
        Field::duration("poll_interval").default_value("60s").min(0.05).describe(
            "Polling: how often the mailbox is searched; with IDLE: a reconciliation sweep this often"),
        Field::duration("idle_renew").default_value("25m").min(1).max(1740).describe(
            "IDLE is ended and started again after this long (RFC 2177: servers may drop an IDLE after 30 minutes)"),
        Field::integer("batch_size").default_value(20).min(1).max(1000).describe(
            "Most messages taken per scan (polite pacing; the rest follow on the next poll)"),
        Field::string("processed_flag").default_value("\\Seen").describe(
            "Flag added once a message's documents are all settled (a system flag like \\Seen or a keyword like "
            "$DocpipeProcessed); messages carrying it are not taken; empty: none (then processed_folder is required)"),
        Field::string("processed_folder").default_value("").describe(
            "If set, a processed message is moved there (created when missing) after its flag is added"),
        Field::string("failed_flag").default_value("\\Flagged").describe(
            "Flag added when a message failed (the reason is on its job); it stays in the mailbox; empty: none"),
        Field::integer("max_bytes").default_value(50 * 1024 * 1024).min(1).describe(
            "Larger messages are not downloaded; they fail with a reason (and get failed_flag)"),
        Field::duration("connect_timeout").default_value("15s").min(0.1).describe("TCP connect limit"),
        Field::duration("timeout").default_value("60s").min(0.1).describe("Longest wait for one command's answer (a stop cuts off a wait the server is silent in within 0.25 s)"),
        Field::duration("reconnect_max").default_value("5m").min(1).describe(
            "Reconnect backoff: 1 s doubling up to this, with jitter, after a failed connect, login or command"),
    };
    return d;
}

ImapSource::ImapSource(const Config& config, Context& context)
    : ctx_(context),
      user_(config.get_string("user")),
      auth_(config.get_string("auth") == "xoauth2" ? Auth::XOAuth2 : Auth::Password),
      password_(config.get_string("password")),
      oauth_token_(trim(config.get_string("oauth_token"))),
      oauth_token_file_(config.get_string("oauth_token_file")),
      mailbox_(config.get_string("mailbox")),
      idle_wanted_(config.get_bool("idle")),
      poll_interval_(config.get_duration("poll_interval")),
      idle_renew_(config.get_duration("idle_renew")),
      reconnect_max_(config.get_duration("reconnect_max")),
      batch_size_(static_cast<std::size_t>(config.get_int("batch_size"))),
      processed_flag_(config.get_string("processed_flag")),
      processed_folder_(config.get_string("processed_folder")),
      failed_flag_(config.get_string("failed_flag")),
      max_bytes_(config.get_int("max_bytes")) {
    endpoint_.host = config.get_string("host");
    endpoint_.security = parse_security(config.get_string("security"));
    const auto port = config.get_int("port");
    endpoint_.port = port != 0 ? static_cast<int>(port) : (endpoint_.security == imap::Security::Tls ? 993 : 143);
    endpoint_.ca_file = config.get_string("ca_file");
    endpoint_.verify = config.get_bool("tls_verify");
    endpoint_.connect_timeout = config.get_duration("connect_timeout");
    endpoint_.timeout = config.get_duration("timeout");

    if (endpoint_.host.empty()) throw std::invalid_argument("host must not be empty");
    if (endpoint_.security == imap::Security::Plain && !config.get_bool("allow_plaintext"))
        throw std::invalid_argument(fmt::format(
            "security: plain would send the password for '{}' to {} in clear; use tls or starttls, or set allow_plaintext: true "
            "(tests and local servers only)",
            user_, endpoint_.host));
    if (auth_ == Auth::Password && password_.empty())
        throw std::invalid_argument("auth password needs password (e.g. password: ${file:/run/credentials/docpipe/imap-password})");
    if (auth_ == Auth::XOAuth2 && oauth_token_.empty() && oauth_token_file_.empty())
        throw std::invalid_argument("auth xoauth2 needs oauth_token or oauth_token_file");
    for (char c : mailbox_ + processed_folder_)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            throw std::invalid_argument("mailbox and processed_folder must be printable ASCII (modified UTF-7 names are not supported)");
    if (mailbox_.empty()) throw std::invalid_argument("mailbox must not be empty");
    if (!processed_flag_.empty() && !valid_flag(processed_flag_))
        throw std::invalid_argument(fmt::format("processed_flag '{}' is not an IMAP flag (\\Seen) or keyword ($Processed)", processed_flag_));
    if (!failed_flag_.empty() && !valid_flag(failed_flag_))
        throw std::invalid_argument(fmt::format("failed_flag '{}' is not an IMAP flag (\\Flagged) or keyword ($Failed)", failed_flag_));
    if (processed_flag_.empty() && processed_folder_.empty())
        throw std::invalid_argument("processed_flag and processed_folder are both empty: nothing would mark a message as processed");
    if (!processed_folder_.empty() && processed_folder_ == mailbox_)
        throw std::invalid_argument("processed_folder must differ from mailbox");
    if (!endpoint_.verify)
        ctx_.log().warn("tls_verify is false: the certificate of {} is not checked (tests only)", endpoint_.host);
    endpoint_.cancelled = [this] {
        const SourceEmitter* emitter = polling_emitter_.load();
        return emitter != nullptr && emitter->stop_requested();
    };
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::runtime_error("source.imap: cannot create an eventfd");
    server_ = fmt::format("{}://{}:{}", endpoint_.security == imap::Security::Tls ? "imaps" : "imap", endpoint_.host, endpoint_.port);
}

ImapSource::~ImapSource() {
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::string ImapSource::state_key() const {
    return fmt::format("imap/{}:{}/{}/{}/cursor", endpoint_.host, endpoint_.port, user_, mailbox_);
}

std::string ImapSource::where() const { return fmt::format("{} mailbox '{}' as '{}'", server_, mailbox_, user_); }

void ImapSource::start() {
    // Connecting is poll()'s job (with backoff): a server that is down at start must not
    // stop the pipeline from starting.
    ctx_.log().info("IMAP source for {} ({}{})", where(), idle_wanted_ ? "IDLE when offered" : "polling",
                    processed_folder_.empty() ? "" : ", processed mail moves to '" + processed_folder_ + "'");
}

void ImapSource::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake();
    std::lock_guard conn_lock(conn_mutex_);
    // A goodbye, not a reason to hold the stop for minutes.
    constexpr milliseconds kGoodbye{5000};
    endpoint_.connect_timeout = std::min(endpoint_.connect_timeout, kGoodbye);
    endpoint_.timeout = std::min(endpoint_.timeout, kGoodbye);
    if (!conn_) {
        // The stop cut a command off (or the server was away): the messages settled since, in
        // the drain, are marked on a short connection of their own, so that the next start does
        // not take them again.
        std::size_t waiting;
        {
            std::lock_guard lock(mutex_);
            waiting = uidvalidity_ == 0 ? 0 : settlements_.size();
        }
        if (waiting == 0) return;
        try {
            connect();
        } catch (const std::exception& e) {
            conn_.reset();
            ctx_.log().warn("at stop, cannot connect to {} to mark {} settled message(s): {} (they are taken again next start; "
                            "the delivery ledger keeps them from being delivered twice)",
                            where(), waiting, docpipe::mask_secrets(e.what(), {password_, oauth_token_}));
            return;
        }
    }
    try {
        conn_->limit_timeout(kGoodbye);
        if (conn_->idling()) conn_->idle_done();
        apply_settlements();
        persist_cursor();
    } catch (const std::exception& e) {
        ctx_.log().warn("at stop, marking settled messages on {} failed: {} (they are taken again next start)", where(), e.what());
    }
    conn_->logout();
    conn_.reset();
    std::lock_guard lock(mutex_);
    connected_ = false;
}

void ImapSource::wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void ImapSource::drain_wake() {
    std::uint64_t value = 0;
    [[maybe_unused]] auto n = ::read(wake_fd_, &value, sizeof value);
}

std::string ImapSource::credential() const {
    if (auth_ == Auth::Password) return password_;
    if (!oauth_token_.empty()) return oauth_token_;
    std::ifstream in(oauth_token_file_);
    if (!in) throw ImapError(ImapError::Kind::Auth, fmt::format("cannot read oauth_token_file {}", oauth_token_file_));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string token = trim(ss.str());
    if (token.empty()) throw ImapError(ImapError::Kind::Auth, fmt::format("oauth_token_file {} is empty", oauth_token_file_));
    return token;
}

// ---- connection ---------------------------------------------------------------------------------

void ImapSource::note_failure(const std::string& said) {
    // Any server text may echo the credential (not only a refused login): keep it out of the
    // log and health. The token file's current token is what the last login sent.
    std::string token_in_file;
    if (auth_ == Auth::XOAuth2 && oauth_token_.empty()) {
        try {
            token_in_file = credential();
        } catch (const std::exception&) {
            // unreadable now: then there is nothing of it to hide
        }
    }
    const std::string why = docpipe::mask_secrets(said, {password_, oauth_token_, token_in_file});
    std::lock_guard lock(mutex_);
    ++failures_;
    // Exponential backoff with jitter: half fixed, half random, so many instances that lost
    // the same server do not all come back in the same second.
    const double cap = static_cast<double>(reconnect_max_.count());
    const double base = std::min(cap, 1000.0 * std::pow(2.0, std::min(failures_ - 1, 20)));
    static thread_local std::mt19937 rng{std::random_device{}()};
    const auto delay = milliseconds(static_cast<long long>(base / 2 + std::uniform_real_distribution<double>(0, base / 2)(rng)));
    next_connect_ = ctx_.clock().steady_now() + delay;
    connected_ = false;
    last_error_ = why;
    previous_error_ = why;
    previous_error_at_ = ctx_.clock().now();
    ctx_.metrics().increment("imap_connection_failures_total");
    ctx_.log().error("{} ({} failure(s) in a row; trying again in {} ms)", why, failures_, delay.count());
}

void ImapSource::disconnect(const std::string& why) {
    if (conn_) {
        conn_->logout();
        conn_.reset();
    }
    note_failure(why);
}

bool ImapSource::ensure_connected() {
    if (conn_) return true;
    {
        std::lock_guard lock(mutex_);
        if (ctx_.clock().steady_now() < next_connect_) return false;
    }
    try {
        connect();
        bool resumed;
        std::uint64_t validity, cursor;
        {
            std::lock_guard lock(mutex_);
            // failures_ is not reset here but after a scan that worked: a mailbox that fails
            // every scan right after a good login must back off, not reconnect every second.
            connected_ = true;
            last_error_.clear();
            validity = uidvalidity_;
            cursor = cursor_uid_;
            resumed = cursor != 0;
        }
        ctx_.metrics().increment("imap_connects_total");
        ctx_.log().info("connected to {} (UIDVALIDITY {}, {}); {}", where(), validity,
                        resumed ? fmt::format("resuming after UID {}", cursor) : std::string("no cursor: taking unprocessed mail"),
                        use_idle_ ? std::string("waiting with IDLE") : fmt::format("polling every {} ms", poll_interval_.count()));
        return true;
    } catch (const ImapError& e) {
        if (e.kind == ImapError::Kind::Cancelled) {
            cut_off(e.what());
            return false;
        }
        conn_.reset();
        const std::string prefix = e.kind == ImapError::Kind::Auth ? "login failed" : "cannot use";
        note_failure(fmt::format("{} for {}: {}", prefix, where(), e.what()));
    } catch (const std::exception& e) {
        conn_.reset();
        note_failure(fmt::format("cannot use {}: {}", where(), e.what()));
    }
    return false;
}

void ImapSource::connect() {
    auto conn = std::make_unique<imap::Connection>(endpoint_);
    {
        std::lock_guard lock(mutex_);
        server_ = conn->server();
    }
    if (auth_ == Auth::Password) conn->login(user_, credential());
    else conn->authenticate_xoauth2(user_, credential());
    conn_ = std::move(conn);
    use_idle_ = idle_wanted_ && conn_->has_capability("IDLE");
    if (idle_wanted_ && !use_idle_)
        ctx_.log().info("{} offers no IDLE: polling every {} ms instead", server_, poll_interval_.count());
    if (!processed_folder_.empty() && !folder_checked_) {
        const auto r = conn_->checked("LIST \"\" " + imap::Connection::quote(processed_folder_), "LIST processed_folder");
        if (r.untagged.empty()) {
            conn_->checked("CREATE " + imap::Connection::quote(processed_folder_),
                           fmt::format("CREATE processed_folder '{}'", processed_folder_));
            ctx_.log().info("created the IMAP folder '{}' for processed mail", processed_folder_);
        }
        folder_checked_ = true;
    }
    select_mailbox();
    scan_due_ = true;
}

void ImapSource::select_mailbox() {
    const auto r = conn_->checked("SELECT " + imap::Connection::quote(mailbox_), fmt::format("SELECT mailbox '{}'", mailbox_));
    std::uint64_t validity = 0;
    for (const auto& u : r.untagged)
        if (auto v = imap::number_after(u.text, "UIDVALIDITY")) validity = *v;
    if (validity == 0) throw ImapError(ImapError::Kind::Protocol, fmt::format("SELECT of '{}' on {} gave no UIDVALIDITY", mailbox_, server_));
    last_select_ = steady::now();

    std::uint64_t stored_validity = 0, stored_uid = 0;
    if (const auto stored = ctx_.state().get(state_key())) {
        const auto colon = stored->find(':');
        try {
            stored_validity = std::stoull(stored->substr(0, colon));
            stored_uid = colon == std::string::npos ? 0 : std::stoull(stored->substr(colon + 1));
        } catch (const std::exception&) {
            ctx_.log().warn("unreadable IMAP cursor '{}' in the state store; scanning {} from the start", *stored, mailbox_);
        }
    }
    bool changed = false;
    std::uint64_t old_validity = 0, old_uid = 0;
    std::size_t dropped = 0;
    {
        std::lock_guard lock(mutex_);
        if (uidvalidity_ == 0) {  // first select of this run: start from the stored cursor
            if (stored_validity != 0 && stored_validity != validity) {
                changed = true;
                old_validity = stored_validity;
                old_uid = stored_uid;
            } else {
                cursor_uid_ = stored_validity == validity ? stored_uid : 0;
                taken_max_ = cursor_uid_;
                persisted_validity_ = stored_validity;
                persisted_uid_ = stored_uid;
            }
        } else if (uidvalidity_ != validity) {  // changed while we ran (between two connections)
            changed = true;
            old_validity = uidvalidity_;
            old_uid = cursor_uid_;
        }
        if (changed) {
            for (auto it = settlements_.begin(); it != settlements_.end();)
                if (it->uidvalidity != validity) {
                    it = settlements_.erase(it);
                    ++dropped;
                } else {
                    ++it;
                }
            dropped += outstanding_.size();
            outstanding_.clear();
            unfetched_.clear();
            cursor_uid_ = 0;
            taken_max_ = 0;
        }
        uidvalidity_ = validity;
    }
    if (changed) {
        ctx_.metrics().increment("imap_uidvalidity_changes_total");
        ctx_.log().warn(
            "UIDVALIDITY of mailbox '{}' on {} changed from {} to {} (mailbox recreated or its index rebuilt): the cursor "
            "(UID {}) no longer means anything, so the whole mailbox is scanned again; messages processed before are "
            "recognised by their content-derived document id and skipped by the runtime's dedup{}",
            mailbox_, server_, old_validity, validity, old_uid,
            dropped ? fmt::format("; {} message(s) still in flight or awaiting their flag cannot be marked any more", dropped) : "");
        persist_cursor();
    }
}

// ---- scan ---------------------------------------------------------------------------------------

bool ImapSource::scan(SourceEmitter& emitter, bool& stopped, bool reselect) {
    const bool more = scan_once(emitter, stopped, reselect);
    std::lock_guard lock(mutex_);
    failures_ = 0;  // the connection is good for real work: the next failure starts the backoff afresh
    return more;
}

bool ImapSource::scan_once(SourceEmitter& emitter, bool& stopped, bool reselect) {
    // A mailbox deleted and created again under a session that has it selected does not
    // always end the session (Dovecot keeps serving the old view): only a new SELECT shows
    // the new UIDVALIDITY. So the sweeps select again; scans woken by IDLE only NOOP.
    if (reselect && steady::now() - last_select_ >= milliseconds(50)) select_mailbox();
    else conn_->checked("NOOP", "NOOP");  // lets the server show mail that arrived since the last command
    std::uint64_t from, validity;
    std::set<std::uint64_t> busy, unfetched;
    {
        std::lock_guard lock(mutex_);
        from = taken_max_ + 1;
        validity = uidvalidity_;
        busy = outstanding_;
        unfetched = unfetched_;
    }
    // UIDs below `from` that a FETCH answered nothing for are asked about again by name.
    const std::string again = unfetched.empty() ? "" : uid_set({unfetched.begin(), unfetched.end()}) + ",";
    const auto found = conn_->checked(fmt::format("UID SEARCH UID {}{}:* UNDELETED{}", again, from, without_flag(processed_flag_)),
                                      fmt::format("UID SEARCH in '{}'", mailbox_));
    std::vector<std::uint64_t> uids;
    for (const auto& u : found.untagged) {
        if (u.text.rfind("SEARCH", 0) != 0) continue;
        std::istringstream words(u.text.substr(6));
        std::string w;
        while (words >> w) {
            if (w.find_first_not_of("0123456789") != std::string::npos) continue;
            // A UID is a non-zero 32-bit number (RFC 3501). Anything else from the server is
            // left out: std::stoull threw on 25 digits, which dropped the connection on every scan.
            std::uint64_t uid = 0;
            const auto [end, error] = std::from_chars(w.data(), w.data() + w.size(), uid);
            if (error != std::errc() || end != w.data() + w.size() || uid == 0 || uid > 0xFFFFFFFFull) {
                ctx_.log().warn("UID SEARCH in '{}' answered '{}', which is not a UID; left out", mailbox_, w.substr(0, 40));
                continue;
            }
            // "n:*" also matches the highest UID when it is below n.
            if ((uid >= from || unfetched.count(uid)) && !busy.count(uid)) uids.push_back(uid);
        }
    }
    std::sort(uids.begin(), uids.end());
    uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
    bool let_go = false;
    {
        // One the search no longer finds was expunged (or marked by someone else): nothing to wait for.
        std::lock_guard lock(mutex_);
        for (const auto uid : unfetched)
            if (!std::binary_search(uids.begin(), uids.end(), uid)) {
                unfetched_.erase(uid);
                let_go = true;
                ctx_.log().info("IMAP UID {} in '{}' is no longer in the mailbox (expunged since): no longer waited for", uid, mailbox_);
            }
        if (let_go) cursor_uid_ = std::max(cursor_uid_, settled_to_locked());
    }
    if (let_go) persist_cursor();
    {
        std::lock_guard lock(mutex_);
        last_check_ = ctx_.clock().now();
    }
    // UIDs waiting to be fetched again sort before the new ones: a batch of them alone would
    // be fetched (and fail) on every scan, no new mail would be taken, and `run --once`, which
    // scans while there is more, would never end. So a scan takes a full batch of new UIDs and,
    // beside it, at most a batch of the waiting ones, which do not count as "more".
    std::vector<std::uint64_t> fresh, waiting;
    for (const auto uid : uids) (unfetched.count(uid) ? waiting : fresh).push_back(uid);
    const bool more = fresh.size() > batch_size_;
    if (more) fresh.resize(batch_size_);
    if (waiting.size() > batch_size_) waiting.resize(batch_size_);
    uids.clear();
    std::merge(fresh.begin(), fresh.end(), waiting.begin(), waiting.end(), std::back_inserter(uids));
    if (uids.empty()) return false;

    std::map<std::uint64_t, std::uint64_t> sizes;
    for (const auto& set : uid_sets(uids)) {
        const auto sized = conn_->checked("UID FETCH " + set + " (UID RFC822.SIZE)", "UID FETCH sizes");
        for (const auto& u : sized.untagged) {
            const auto uid = imap::number_after(u.text, "UID");
            const auto size = imap::number_after(u.text, "RFC822.SIZE");
            if (uid && size) sizes[*uid] = *size;
        }
    }

    for (const auto uid : uids) {
        if (emitter.stop_requested()) {
            stopped = true;
            return true;
        }
        const auto size_it = sizes.find(uid);
        if (size_it == sizes.end()) {
            note_unfetched(uid, "answered OK but gave no RFC822.SIZE");
            continue;
        }
        if (static_cast<std::int64_t>(size_it->second) > max_bytes_) {
            std::lock_guard lock(mutex_);
            unfetched_.erase(uid);
            outstanding_.insert(uid);
            taken_max_ = std::max(taken_max_, uid);
            settlements_.push_back({validity, uid,
                                    Outcome{false, fmt::format("IMAP message UID {} in '{}' is {} bytes, above max_bytes {}; not downloaded", uid,
                                                               mailbox_, size_it->second, max_bytes_)}});
            ctx_.log().warn("IMAP message UID {} in '{}' is {} bytes, above max_bytes {}: marked failed, not downloaded", uid, mailbox_,
                            size_it->second, max_bytes_);
            continue;
        }
        const auto fetched = conn_->command(fmt::format("UID FETCH {} (UID INTERNALDATE BODY.PEEK[])", uid));
        if (!fetched.ok()) {
            // One message the server will not give (NO: unreadable, being moved...) is that
            // message's problem: dropping the connection for it reconnected and hit it again,
            // over and over, and no later mail was taken.
            note_unfetched(uid, fmt::format("answered {} {}", fetched.status, fetched.text.substr(0, 200)));
            continue;
        }
        const imap::Untagged* body = nullptr;
        for (const auto& u : fetched.untagged)
            if (!u.literals.empty() && imap::number_after(u.text, "UID") == uid) body = &u;
        if (!body) {
            note_unfetched(uid, "answered OK but gave no message body");
            continue;
        }
        const std::string& raw = body->literals.back();
        // The announced RFC822.SIZE is only the server's word: a server that announces 17 KB and
        // sends 100 MB must not get the 100 MB through. The same failure as an announced over-size.
        if (static_cast<std::int64_t>(raw.size()) > max_bytes_) {
            std::lock_guard lock(mutex_);
            unfetched_.erase(uid);
            outstanding_.insert(uid);
            taken_max_ = std::max(taken_max_, uid);
            settlements_.push_back({validity, uid,
                                    Outcome{false, fmt::format("IMAP message UID {} in '{}' is {} bytes, above max_bytes {} (the server "
                                                               "announced {} bytes); not processed",
                                                               uid, mailbox_, raw.size(), max_bytes_, size_it->second)}});
            ctx_.log().warn("IMAP message UID {} in '{}' came with {} bytes though the server announced {}, above max_bytes {}: marked "
                            "failed, not processed",
                            uid, mailbox_, raw.size(), size_it->second, max_bytes_);
            continue;
        }
        const std::string name = fmt::format("imap-{}-{}.eml", validity, uid);
        Document doc = Document::from_bytes(name, "message/rfc822", Bytes(raw.begin(), raw.end()));
        doc.attributes["source"] = "imap";
        doc.attributes["filename"] = name;
        doc.attributes["imap_mailbox"] = mailbox_;
        doc.attributes["imap_uid"] = std::to_string(uid);
        doc.attributes["imap_uidvalidity"] = std::to_string(validity);
        if (auto t = imap::internaldate_iso(body->text); !t.empty()) doc.attributes["received_at"] = t;
        // Known before transform.mime parses it: a job whose email cannot be parsed keeps it.
        if (auto m = rfc822_message_id(raw); !m.empty()) doc.attributes["message_id"] = m;
        const std::string doc_id = doc.id;
        {
            std::lock_guard lock(mutex_);
            outstanding_.insert(uid);
        }
        const bool taken = emitter.emit(std::move(doc), [this, validity, uid](const Outcome& o) {
            {
                std::lock_guard lock(mutex_);
                settlements_.push_back({validity, uid, o});
            }
            wake();  // out of IDLE: the flag is written by the source thread
        });
        std::lock_guard lock(mutex_);
        if (!taken) {
            outstanding_.erase(uid);
            stopped = true;
            return true;
        }
        unfetched_.erase(uid);
        taken_max_ = std::max(taken_max_, uid);
        ++emitted_;
        ctx_.metrics().increment("imap_messages_total");
        ctx_.metrics().set_gauge("imap_in_flight", static_cast<double>(outstanding_.size()));
        ctx_.log().log(LogLevel::Debug, fmt::format("IMAP UID {} (UIDVALIDITY {}) handed over", uid, validity), doc_id);
    }
    return more;
}

void ImapSource::note_unfetched(std::uint64_t uid, std::string_view what) {
    // An OK FETCH without the data does not prove the message is gone: a server may answer so
    // under load or for a message it cannot read now. Moving the cursor past it would lose it
    // for good; so it stays below the cursor and is searched for again on the next scan (a
    // message that really was expunged is not found then, and is let go).
    std::lock_guard lock(mutex_);
    const bool first = unfetched_.insert(uid).second;
    ctx_.metrics().increment("imap_unfetched_total");
    ctx_.log().warn("IMAP UID {} in '{}': UID FETCH {}; the cursor stays before it and it is looked at again "
                    "on the next scan{}",
                    uid, mailbox_, what, first ? "" : " (again: if this keeps happening, check the message on the server)");
}

std::uint64_t ImapSource::settled_to_locked() const {
    std::uint64_t to = outstanding_.empty() ? taken_max_ : *outstanding_.begin() - 1;
    if (!unfetched_.empty()) to = std::min(to, *unfetched_.begin() - 1);
    return to;
}

// ---- settling -----------------------------------------------------------------------------------

void ImapSource::mark(const std::vector<std::uint64_t>& uids, bool ok) {
    for (const auto& set : uid_sets(uids)) mark_set(set, ok);
}

void ImapSource::mark_set(const std::string& set, bool ok) {
    const std::string& flag = ok ? processed_flag_ : failed_flag_;
    if (!flag.empty()) conn_->checked(fmt::format("UID STORE {} +FLAGS.SILENT ({})", set, flag), fmt::format("UID STORE {}", flag));
    if (!ok || processed_folder_.empty()) return;
    const std::string folder = imap::Connection::quote(processed_folder_);
    if (conn_->has_capability("MOVE")) {
        conn_->checked(fmt::format("UID MOVE {} {}", set, folder), fmt::format("UID MOVE to '{}'", processed_folder_));
        return;
    }
    conn_->checked(fmt::format("UID COPY {} {}", set, folder), fmt::format("UID COPY to '{}'", processed_folder_));
    conn_->checked(fmt::format("UID STORE {} +FLAGS.SILENT (\\Deleted)", set), "UID STORE \\Deleted");
    if (conn_->has_capability("UIDPLUS")) conn_->checked("UID EXPUNGE " + set, "UID EXPUNGE");
    // Without UIDPLUS a plain EXPUNGE could remove other clients' deleted mail: the copies stay
    // \Deleted (and are not taken again: the search leaves out deleted mail) until someone expunges.
}

void ImapSource::apply_settlements() {
    std::deque<Settlement> work;
    std::uint64_t validity;
    {
        std::lock_guard lock(mutex_);
        work.swap(settlements_);
        validity = uidvalidity_;
    }
    if (work.empty()) return;
    std::vector<std::uint64_t> ok, failed;
    std::size_t stale = 0;
    for (const auto& s : work) {
        if (s.uidvalidity != validity) {
            ++stale;
            continue;
        }
        (s.outcome.ok ? ok : failed).push_back(s.uid);
    }
    if (stale)
        ctx_.log().warn("{} settled message(s) belong to an earlier UIDVALIDITY of '{}' and cannot be marked", stale, mailbox_);
    try {
        mark(ok, true);
        mark(failed, false);
    } catch (...) {
        std::lock_guard lock(mutex_);  // keep them for the next connection
        for (auto it = work.rbegin(); it != work.rend(); ++it)
            if (it->uidvalidity == validity) settlements_.push_front(*it);
        throw;
    }
    if (!failed.empty()) {
        ctx_.metrics().increment("imap_failed_messages_total", static_cast<double>(failed.size()));
        ctx_.log().warn("IMAP UID(s) {} in '{}' failed in the pipeline{} (the reasons are on their jobs)", uid_set(failed), mailbox_,
                        failed_flag_.empty() ? "" : "; flagged " + failed_flag_);
    }
    {
        std::lock_guard lock(mutex_);
        for (auto u : ok) outstanding_.erase(u);
        for (auto u : failed) outstanding_.erase(u);
        cursor_uid_ = std::max(cursor_uid_, settled_to_locked());
        ctx_.metrics().set_gauge("imap_in_flight", static_cast<double>(outstanding_.size()));
    }
    persist_cursor();
}

void ImapSource::persist_cursor() {
    std::uint64_t validity, uid;
    {
        std::lock_guard lock(mutex_);
        validity = uidvalidity_;
        uid = cursor_uid_;
        if (validity == 0 || (validity == persisted_validity_ && uid == persisted_uid_)) return;
    }
    try {
        ctx_.state().put(state_key(), fmt::format("{}:{}", validity, uid));
        std::lock_guard lock(mutex_);
        persisted_validity_ = validity;
        persisted_uid_ = uid;
    } catch (const std::exception& e) {
        ctx_.log().warn("cannot store the IMAP cursor {}:{} for '{}' (tried again later): {}", validity, uid, mailbox_, e.what());
    }
}

// ---- poll ---------------------------------------------------------------------------------------

void ImapSource::sleep_interruptibly(milliseconds d, SourceEmitter* emitter) {
    const auto deadline = steady::now() + d;
    while (true) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
        }
        if (emitter && emitter->stop_requested()) return;
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
        if (left.count() <= 0) return;
        pollfd p{wake_fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 250))) > 0) {
            drain_wake();
            return;
        }
    }
}

bool ImapSource::wait_for_news(SourceEmitter& emitter, steady::time_point deadline) {
    while (true) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return false;
        }
        if (emitter.stop_requested()) return false;
        const auto now = steady::now();
        if (now >= deadline) return false;
        bool settle_now;
        {
            std::lock_guard lock(mutex_);
            settle_now = !settlements_.empty();
        }
        if (settle_now) {
            if (conn_->idling()) conn_->idle_done();
            apply_settlements();
            continue;
        }
        if (now - last_scan_ >= poll_interval_) {  // the reconciliation sweep, or the poll itself
            if (conn_->idling()) conn_->idle_done();
            scan_due_ = true;
            return false;
        }
        const auto sweep_at = last_scan_ + poll_interval_;
        auto slice = std::min<steady::duration>({deadline - now, sweep_at - now, milliseconds(250)});
        if (!use_idle_) {
            pollfd p{wake_fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(std::max<long long>(1, std::chrono::duration_cast<milliseconds>(slice).count()))) > 0)
                drain_wake();
            continue;
        }
        if (conn_->idling() && now - idle_since_ >= idle_renew_) conn_->idle_done();
        if (!conn_->idling()) {
            conn_->idle_start();
            idle_since_ = steady::now();
        }
        std::vector<imap::Untagged> seen;
        const auto w = conn_->idle_wait(std::chrono::duration_cast<milliseconds>(slice) + milliseconds(1), wake_fd_, seen);
        if (w == imap::Connection::Wait::Woken) {
            drain_wake();
            continue;
        }
        if (w == imap::Connection::Wait::Data) {
            bool news = false;
            for (const auto& u : seen) news = news || u.text.find(" EXISTS") != std::string::npos;
            if (news) {
                conn_->idle_done();
                scan_due_ = true;
                ctx_.metrics().increment("imap_idle_wakeups_total");
                return true;
            }
        }
    }
}

void ImapSource::poll(SourceEmitter& emitter, const PollRequest& request) {
    std::lock_guard conn_lock(conn_mutex_);
    polling_emitter_ = &emitter;
    struct Forget {
        std::atomic<const SourceEmitter*>& emitter;
        ~Forget() { emitter = nullptr; }
    } forget{polling_emitter_};
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
    }
    const auto deadline = steady::now() + request.max_wait;
    if (!ensure_connected()) {
        if (request.drain) return;
        milliseconds until_retry;
        {
            std::lock_guard lock(mutex_);
            until_retry = std::chrono::duration_cast<milliseconds>(next_connect_ - ctx_.clock().steady_now());
        }
        sleep_interruptibly(std::min(std::max(until_retry, milliseconds(1)), request.max_wait), &emitter);
        return;
    }
    try {
        if (conn_->idling()) {
            bool pending;
            {
                std::lock_guard lock(mutex_);
                pending = !settlements_.empty();
            }
            if (pending || request.drain) conn_->idle_done();
        }
        if (!conn_->idling()) apply_settlements();
        persist_cursor();
        bool stopped = false;
        if (request.drain) {
            // --once: everything there now, batch after batch.
            bool reselect = true;
            while (scan(emitter, stopped, reselect) && !stopped) reselect = false;
            last_scan_ = steady::now();
            scan_due_ = false;
            return;
        }
        const bool sweep = steady::now() - last_scan_ >= poll_interval_;
        if (scan_due_ || sweep) {
            if (conn_->idling()) conn_->idle_done();
            const std::uint64_t before = [&] {
                std::lock_guard lock(mutex_);
                return emitted_;
            }();
            scan_due_ = scan(emitter, stopped, sweep);
            last_scan_ = steady::now();
            std::lock_guard lock(mutex_);
            if (stopped || emitted_ != before) return;  // back to the runtime; more comes on the next poll
        }
        if (request.max_wait.count() <= 0) return;
        const bool woken_by_idle = wait_for_news(emitter, deadline);
        if (scan_due_ && !emitter.stop_requested()) {
            scan_due_ = scan(emitter, stopped, !woken_by_idle);
            last_scan_ = steady::now();
        }
    } catch (const ImapError& e) {
        if (e.kind == ImapError::Kind::Cancelled) cut_off(e.what());
        else disconnect(fmt::format("lost {}: {}", where(), e.what()));
    } catch (const std::exception& e) {
        disconnect(fmt::format("lost {}: {}", where(), e.what()));
    }
}

void ImapSource::cut_off(const std::string& what) {
    // No LOGOUT: the server is still answering the command that was cut off.
    conn_.reset();
    std::size_t unmarked;
    {
        std::lock_guard lock(mutex_);
        connected_ = false;
        last_error_ = fmt::format("not connected: the runtime stopped this source ({})", what);
        unmarked = settlements_.size();
    }
    ctx_.log().info("stopping: cut off the command in progress on {} ({}); the {} message(s) settled so far, and those the drain "
                    "settles, are marked on a new connection at stop",
                    where(), what, unmarked);
}

// ---- health -------------------------------------------------------------------------------------

HealthReport ImapSource::health() {
    std::lock_guard lock(mutex_);
    if (!connected_)
        return {Health::Unavailable, last_error_.empty() ? fmt::format("not connected to {} yet", where()) : last_error_};
    std::string detail = fmt::format("connected to {} (UIDVALIDITY {}, cursor UID {}), {}, last check {}, {} message(s) in flight", where(),
                                     uidvalidity_, cursor_uid_,
                                     use_idle_ ? std::string("IDLE") : fmt::format("polling every {} ms", poll_interval_.count()),
                                     iso_now(last_check_), outstanding_.size());
    if (!previous_error_.empty()) detail += fmt::format("; last error {}: {}", iso_now(previous_error_at_), previous_error_);
    // Mail the server would not give is mail not taken: `run --once` names this source, and an
    // operator looks at those messages on the server.
    if (!unfetched_.empty())
        return {Health::Degraded, fmt::format("{} message(s) the server would not give (UID {}{}), asked for again on every scan; {}",
                                              unfetched_.size(), *unfetched_.begin(), unfetched_.size() > 1 ? " and more" : "", detail)};
    return {Health::Healthy, detail};
}

}  // namespace docpipe::mail
