// source.imap — one document per email of an IMAP mailbox (IMAPS, or STARTTLS / plain text
// when the configuration asks for it explicitly), told about new mail by IDLE, or by polling
// every poll_interval when the server has no IDLE or `idle: false`.
//
// Why our own small IMAP client (imap_client.hpp) over OpenSSL, rather than a library:
// - libetpan (libetpan-dev 1.9.4, the IMAP library Debian ships, with IDLE): its -dev package
//   depends on libcurl4-gnutls-dev, and installing it makes apt REMOVE libcurl4-openssl-dev,
//   which docpipe builds against (deps.md gotcha 3); libetpan itself is linked to GnuTLS, a
//   second TLS stack next to our OpenSSL. Its last upstream release is from 2020.
// - libcurl's IMAP (already linked): no IDLE; every transfer SELECTs the mailbox read-write
//   and fetches with BODY[] (not BODY.PEEK[]), which marks a message \Seen when it is READ,
//   before the pipeline acked it — the very thing this source must not do; and replies to
//   custom commands (UID SEARCH, UID STORE) come back as unparsed text without literal
//   framing. A CONNECT_ONLY handle would leave us writing the protocol by hand anyway.
// - The subset needed here (LOGIN / AUTHENTICATE XOAUTH2, SELECT, NOOP, UID SEARCH / FETCH /
//   STORE / MOVE / COPY / EXPUNGE, IDLE) is small, and OpenSSL (already a dependency) gives
//   certificate and host-name checks we control.
//
// What it does: after login the mailbox is SELECTed; a scan asks `UID SEARCH UID <next>:*`
// (plus UNSEEN, or UNKEYWORD <processed_flag> for a keyword, so mail already processed is not
// taken again), takes at most batch_size UIDs, FETCHes their size, then their bytes with
// BODY.PEEK[] (reading never sets \Seen), and emits each as one document: part
// message/rfc822 with the exact RFC 822 bytes, id from those bytes (as source.maildir and
// source.gmail do, so transform.mime reads it, and a message seen again after a UIDVALIDITY
// change is recognised by the runtime's dedup/ledger), attributes source, filename,
// imap_mailbox, imap_uid, imap_uidvalidity, received_at (INTERNALDATE).
//
// Acks: the ack handle only queues the outcome and wakes the source thread (out of IDLE);
// the source thread then, on its own connection, adds processed_flag and (if set) moves the
// message to processed_folder (UID MOVE, or COPY + \Deleted + UID EXPUNGE with UIDPLUS) —
// only after the pipeline acked. A failed document gets failed_flag and stays. Outcomes not
// yet written when the runtime stops are written by stop().
//
// Cursor: state `imap/<host>:<port>/<user>/<mailbox>/cursor` = "<UIDVALIDITY>:<UID>", the
// highest UID up to which every message taken was settled and marked. A restart resumes
// after it. When the mailbox's UIDVALIDITY differs from the stored one (the mailbox was
// recreated or its index rebuilt), the old UIDs mean nothing: a warning names both values,
// outcomes still queued for old UIDs are dropped (they cannot be applied), and the whole
// mailbox is scanned again; the runtime's content-derived ids keep documents processed
// before from being processed twice.
//
// A UID that UID FETCH answers without its data (or with a NO) is not skipped: the cursor
// stays before it, a warning names it, and the next scan asks for it again by UID; only a
// search that no longer finds it (expunged) lets it go. A body larger than max_bytes is
// failed (failed_flag, the reason) whatever size the server announced.
//
// Failures: a dropped connection, a refused login or an unreadable answer closes the
// connection; the next try waits an exponential backoff with jitter (1 s doubling to
// reconnect_max; the count is reset by a scan that worked, not by a login). health() says
// connected or not, the server, mailbox, cursor, the mode (IDLE / polling), the last check
// and the last error — never the password or token, also where the server echoes them.
//
// Stopping: the runtime asks poll() to return through its emitter's stop_requested(). The
// connection asks that after every 250 ms the server was silent, so a command the server does
// not answer (at connect, in the TLS handshake, in a scan) is cut off within a quarter second
// instead of after `timeout`. The cut-off connection is dropped (no failure counted); stop(),
// after the runtime's drain, marks what was settled on a new connection, with 5 s limits.
// stop()'s goodbye on a live connection has the same 5 s limits.
//
// Threading: poll() and the IMAP connection belong to the runtime's source thread (conn_mutex_
// also lets stop() use it once poll() has returned); ack handles run on any thread and only
// take mutex_ and write to the wake eventfd; health() takes mutex_ only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/component.hpp"
#include "imap_client.hpp"

namespace docpipe::mail {

class ImapSource : public Source {
public:
    static ComponentDescriptor describe();
    ImapSource(const Config& config, Context& context);
    ~ImapSource() override;

    void start() override;
    void stop() override;
    void poll(SourceEmitter& emitter, const PollRequest& request) override;
    HealthReport health() override;

private:
    enum class Auth { Password, XOAuth2 };
    struct Settlement {
        std::uint64_t uidvalidity = 0;
        std::uint64_t uid = 0;
        Outcome outcome;
    };

    bool ensure_connected();              // false: not connected (last_error_ says why)
    void connect();                       // throws imap::ImapError
    void disconnect(const std::string& why);
    // The runtime's stop cut a command off (ImapError Cancelled): drop the connection, no
    // backoff, no failure counted.
    void cut_off(const std::string& what);
    std::string credential() const;       // password or access token; never logged
    void select_mailbox();
    // Scans from the cursor and emits at most batch_size; true if more may be waiting.
    // `reselect`: SELECT the mailbox again first (sees a changed UIDVALIDITY), else NOOP.
    bool scan(SourceEmitter& emitter, bool& stopped, bool reselect);  // scan_once(), then failures_ = 0
    bool scan_once(SourceEmitter& emitter, bool& stopped, bool reselect);
    void apply_settlements();
    void mark(const std::vector<std::uint64_t>& uids, bool ok);  // in UID sets of at most 1000 characters
    void mark_set(const std::string& set, bool ok);
    // A UID that UID FETCH answered OK for without its data (`what`): kept in unfetched_, warned.
    void note_unfetched(std::uint64_t uid, std::string_view what);
    // The highest UID the cursor may name: below anything in flight or unfetched. mutex_ held.
    std::uint64_t settled_to_locked() const;
    void persist_cursor();
    // Waits (IDLE or polling) until there is news or the deadline; true when IDLE reported
    // new mail (scan_due_ is set then, and when a sweep is due).
    bool wait_for_news(SourceEmitter& emitter, std::chrono::steady_clock::time_point deadline);
    void sleep_interruptibly(std::chrono::milliseconds d, SourceEmitter* emitter);
    void wake();
    void drain_wake();
    void note_failure(const std::string& why);
    std::string state_key() const;
    std::string where() const;            // "imaps://host:port mailbox 'X' as 'user'"

    Context& ctx_;
    imap::Endpoint endpoint_;
    const std::string user_;
    const Auth auth_;
    const std::string password_;
    const std::string oauth_token_;
    const std::string oauth_token_file_;
    const std::string mailbox_;
    const bool idle_wanted_;
    const std::chrono::milliseconds poll_interval_, idle_renew_, reconnect_max_;
    const std::size_t batch_size_;
    const std::string processed_flag_, processed_folder_, failed_flag_;
    const std::int64_t max_bytes_;
    int wake_fd_ = -1;
    // The emitter of the poll() in progress (null outside one): endpoint_.cancelled asks it.
    std::atomic<const SourceEmitter*> polling_emitter_{nullptr};

    // The connection and what belongs to it: the source thread (or stop()) with conn_mutex_.
    std::mutex conn_mutex_;
    std::unique_ptr<imap::Connection> conn_;
    std::atomic<bool> use_idle_{false};   // also read by health()
    std::chrono::steady_clock::time_point idle_since_{};
    std::chrono::steady_clock::time_point last_scan_{};
    std::chrono::steady_clock::time_point last_select_{};
    bool scan_due_ = true;
    bool folder_checked_ = false;

    mutable std::mutex mutex_;  // guards everything below
    bool stopping_ = false;
    bool connected_ = false;
    std::string server_;                  // for health, set at the first connect attempt
    std::uint64_t uidvalidity_ = 0;       // of the selected mailbox (0: not selected yet)
    std::uint64_t cursor_uid_ = 0;        // settled and marked up to here
    std::uint64_t persisted_validity_ = 0, persisted_uid_ = 0;
    std::uint64_t taken_max_ = 0;         // highest UID emitted (or found settled) this validity
    std::set<std::uint64_t> outstanding_; // emitted, not yet settled and marked
    std::set<std::uint64_t> unfetched_;   // found by SEARCH, but FETCH answered OK without their data: tried again
    std::deque<Settlement> settlements_;  // acked, to be marked by the source thread
    int failures_ = 0;
    std::chrono::steady_clock::time_point next_connect_{};
    std::string last_error_;              // why we are not connected (cleared on connect)
    std::string previous_error_;          // the last failure, kept after recovering, for health
    std::chrono::system_clock::time_point previous_error_at_{};
    std::chrono::system_clock::time_point last_check_{};
    std::uint64_t emitted_ = 0;
};

}  // namespace docpipe::mail
