// source.gmail — one document per email of a Gmail mailbox (a Workspace user through a service
// account with domain-wide delegation, `subject`, or a consumer account through an
// authorized-user file), told about new mail by Cloud Pub/Sub or by polling.
//
// Modes:
//   pubsub_pull  poll() pulls the subscription; a notification is only a hint to sync
//   pubsub_push  Pub/Sub POSTs to the admin server's /hooks/<node>, handed to handle_hook()
//   poll         a sync every poll_interval, no Pub/Sub
// In both Pub/Sub modes a sync also runs every poll_interval, because notifications are lossy
// (Gmail drops those above one a second per mailbox), and users.watch is renewed from poll()
// watch_renew_before ahead of its expiry.
//
// What a sync does: users.history.list from the cursor (historyTypes=messageAdded, labelId =
// `label`, every page), then messages.get?format=raw for each new message id, emitted as
// one document (part message/rfc822 holding the exact RFC 2822 bytes, id from those bytes,
// attributes source, filename, gmail_id, gmail_thread_id, message_id, received_at) — what
// transform.mime reads. A message deleted since (404) is skipped; one
// whose answer has no `raw` or a `raw` that is not base64 is handed over with
// SourceEmitter::reject (failed, labelled failed_label) and the sync goes on; one carrying
// processed_label or failed_label, or already in flight, is not emitted again. A cursor older
// than Gmail keeps history for (404) leads to one bounded resync: messages.list with
// resync_query (at most resync_max), after which the cursor is the getProfile historyId taken
// before the list.
//
// The cursor (state `gmail/<address>/history_id`) moves only when every message found up to a
// history id has been settled by the runtime (its ack handle called), in order, so a crash
// never skips mail. No cursor yet: it starts at the watch's (or getProfile's) historyId, so the
// mailbox's past is not imported.
//
// Acks: ok adds processed_label and removes UNREAD; a failure adds failed_label (the reason is
// on the job). These calls are retried a few times and logged; an ack never throws. Our own
// label changes make history (labelAdded/labelRemoved) and notifications, never documents.
//
// Pub/Sub: a pulled notification is acknowledged once the cursor has passed its historyId
// (at once when it already has, or when it names another mailbox or cannot be read); while
// documents are in flight its ack deadline is extended by ack_extend. A push is answered 204
// only after the caller's OIDC token verified (RS256 against Google's JWKS, iss, aud =
// push_audience, email = push_service_account, email_verified, exp) and the notified history
// id is stored (`gmail/<address>/pending_history_id`); 401 otherwise, 503 while the state
// store is unavailable. PUBSUB_EMULATOR_HOST=host:port sends Pub/Sub calls to
// http://host:port without credentials, as Google's client libraries do.
//
// Threading: poll() runs on the runtime's source thread; ack handles on any runtime thread;
// handle_hook() on admin-server threads, several at once. Shared state is guarded by mutex_;
// no network call is made with it held. handle_hook() never touches the emitter.
// Privacy: logs carry Gmail message ids, history ids and counts only, never addresses,
// subjects or contents.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "docpipe/component.hpp"
#include "docpipe/net/google_auth.hpp"
#include "docpipe/net/http.hpp"
#include "google_client.hpp"

namespace docpipe::google {

// Verifies Google-signed OIDC ID tokens (Pub/Sub push) against a JWKS URL, caching the keys by
// kid and fetching again for an unknown kid (at most every `refetch_after`). Thread-safe.
class OidcVerifier {
public:
    struct Expect {
        std::string audience;
        std::string email;
        std::chrono::seconds skew{30};
    };
    OidcVerifier(std::string jwks_url, const net::HttpClient& http, Clock& clock);
    ~OidcVerifier();
    // Empty when the token is good, else why not (for logs: no claim values but iss/aud/kid).
    std::string verify(const std::string& token, const Expect& expect);

private:
    struct Key;
    std::shared_ptr<Key> key_for(const std::string& kid);
    std::string fetch();  // with fetch_mutex_ held; "" or why the fetch failed
    std::string check(const std::string& token, const nlohmann::json& header, const nlohmann::json& claims,
                      const std::string& signature, std::size_t dot2, const Expect& expect);

    const std::string url_;
    const net::HttpClient& http_;
    Clock& clock_;
    std::mutex fetch_mutex_;
    std::mutex mutex_;  // guards the fields below
    std::map<std::string, std::shared_ptr<Key>> keys_;
    std::chrono::steady_clock::time_point fetched_at_{};
    std::chrono::steady_clock::time_point keys_expire_{};
    bool fetched_ = false;
};

class GmailSource : public Source, public HttpHook {
public:
    static ComponentDescriptor describe();
    GmailSource(const Config& config, Context& context);
    ~GmailSource() override;

    void start() override;
    void stop() override;
    void poll(SourceEmitter& emitter, const PollRequest& request) override;
    HealthReport health() override;
    HookResponse handle_hook(const HookRequest& request) override;

    enum class Mode { PubsubPull, PubsubPush, Poll };

private:
    // A failed API call: what to log and show in health. `status` 0 = no HTTP answer.
    struct ApiError : std::runtime_error {
        ApiError(const std::string& what, long status) : std::runtime_error(what), status(status) {}
        long status;
    };
    struct Notification {
        std::string ack_id;
        std::uint64_t history_id = 0;
        std::chrono::steady_clock::time_point extend_at{};
    };
    // Everything found by one sync: the cursor may move to `target` once `pending` is empty and
    // every earlier checkpoint has moved it.
    struct Checkpoint {
        std::uint64_t target = 0;
        bool closed = false;
        std::set<std::string> pending;
    };

    // Gmail and Pub/Sub calls.
    net::HttpResponse gmail(const std::string& method, const std::string& path_and_query, const std::string& body,
                            std::string_view what);
    nlohmann::json gmail_json(const std::string& method, const std::string& path_and_query, const std::string& body,
                              std::string_view what);
    net::HttpResponse pubsub(const std::string& method, const std::string& path, const std::string& body, std::string_view what);

    // Start-up work, retried from poll() until it succeeds.
    bool ensure_setup();
    void setup();
    void ensure_labels();
    std::uint64_t watch();  // the historyId it answered
    void maybe_renew_watch();

    bool sync_wanted();
    bool sync(SourceEmitter& emitter);  // false: stopped or failed (last_error_ says why)
    // false: stopped between pages (shutdown), `ids` incomplete.
    bool list_history(SourceEmitter& emitter, std::uint64_t start, std::vector<std::string>& ids, std::uint64_t& latest);
    bool stop_wanted(const SourceEmitter& emitter) const;
    // Throws ApiError when `token` was already given in this listing (`tokens`): it would loop.
    void check_page_token(std::set<std::string>& tokens, const std::string& token, std::string_view listing) const;
    // Returns the getProfile history id the cursor may move to once what it emitted is settled.
    // `why`: what made the cursor unusable, for the log (Gmail's 404 for an old history id,
    // a stored cursor ahead of the mailbox).
    std::uint64_t resync(SourceEmitter& emitter, std::uint64_t start, Checkpoint& open, bool& stopped, const std::string& why);
    // Fetches and emits one message; false if the emitter refused it (stopping).
    bool take(SourceEmitter& emitter, const std::string& id, Checkpoint& open);
    // Hands over a message whose messages.get answer cannot be read (`what`) as a rejected
    // document, so it is failed and labelled like any failed message; false if refused (stopping).
    bool reject_unreadable(SourceEmitter& emitter, const std::string& id, const std::string& what, Checkpoint& open);
    void settle(const std::string& id, const Outcome& outcome);
    // Tries once; labels Gmail could not take are kept in the state store
    // ("gmail/<address>/unlabelled/<id>") for apply_pending_labels(). Only when the store
    // cannot keep them is it tried again here, kModifyAttempts times in all.
    void modify_labels(const std::string& id, const std::vector<std::string>& add, const std::vector<std::string>& remove);
    // Keeps the labels of message `id` (a messages.modify body) for apply_pending_labels();
    // false when the state store cannot.
    bool keep_for_later(const std::string& id, const nlohmann::json& body);
    // Sets the labels kept by modify_labels, from poll(): at most 50 a round, stopping at the
    // first answer that says Gmail still fails.
    void apply_pending_labels();
    void advance_locked();   // mutex_ held
    void persist_cursor();   // mutex_ not held

    // Pub/Sub pull: takes what is there, acks what needs no sync, holds the rest.
    void pull_notifications();
    void acknowledge(const std::vector<std::string>& ack_ids);
    void ack_passed_notifications();
    void extend_deadlines();
    // {emailAddress, historyId} from a notification's base64 data; nullopt when unreadable.
    std::optional<std::pair<std::string, std::uint64_t>> read_notification(const std::string& data_b64) const;

    void wait_for_input(SourceEmitter& emitter, std::chrono::milliseconds max_wait);
    void set_error(std::string why);
    // classify_message() with any token or secret the answer echoes replaced by "[secret]".
    std::string answer_text(const net::HttpResponse& r);
    std::string state_key(const char* name) const;

    Context& ctx_;
    const Mode mode_;
    const std::string user_;
    const std::string label_name_, processed_name_, failed_name_;
    const std::string topic_, subscription_;
    const std::chrono::milliseconds poll_interval_, watch_renew_before_, ack_extend_;
    const std::string resync_query_;
    const std::size_t resync_max_;
    const int max_messages_;
    const std::string gmail_base_;
    const bool push_verify_;
    const std::string push_audience_, push_service_account_;

    GoogleClient client_;                   // Gmail (and the health of its credentials)
    net::HttpClient http_;                  // Pub/Sub and the JWKS
    std::string pubsub_base_;
    std::unique_ptr<net::GoogleAuth> pubsub_auth_;  // null with PUBSUB_EMULATOR_HOST
    std::unique_ptr<OidcVerifier> verifier_;

    // Set once by setup() (poll thread), read by hooks after setup_done_.
    std::atomic<bool> setup_done_{false};
    std::string address_;  // the mailbox, lower-cased
    std::string label_id_, processed_id_, failed_id_;
    std::chrono::steady_clock::time_point next_setup_{};
    int setup_failures_ = 0;

    std::mutex persist_mutex_;  // orders writes of the cursor and the pending push id
    mutable std::mutex mutex_;  // guards everything below
    std::condition_variable wake_;
    bool stopping_ = false;
    bool drained_ = false;  // polled with PollRequest::drain (`run --once`): no later sync is due
    std::uint64_t cursor_ = 0;      // settled up to here (stored)
    std::uint64_t persisted_ = 0;   // what the state store holds
    std::uint64_t listed_to_ = 0;   // history listed up to here in this run
    std::uint64_t pending_notified_ = 0;  // highest pushed history id stored, not yet passed by the cursor
    std::uint64_t resynced_from_ = 0;     // the getProfile id the last resync started the cursor at
    std::chrono::steady_clock::time_point resynced_at_{};
    std::set<std::string> in_flight_;
    std::deque<Checkpoint> checkpoints_;
    std::set<std::string> recent_set_;   // settled in this run (bounded), in case the label change failed
    std::deque<std::string> recent_order_;
    std::vector<Notification> held_;     // pulled, waiting for the cursor
    std::uint64_t pushed_max_ = 0;       // highest pushed history id not yet seen by poll()
    std::string pubsub_auth_problem_;    // Pub/Sub credentials refused, until a success
    std::int64_t watch_expiration_ms_ = 0;
    std::chrono::steady_clock::time_point next_watch_try_{};
    int watch_failures_ = 0;
    bool sync_due_ = true;
    std::chrono::steady_clock::time_point last_sync_{};
    std::chrono::system_clock::time_point last_sync_wall_{};
    std::chrono::steady_clock::time_point next_sync_try_{};
    int sync_failures_ = 0;
    std::string last_error_;
    std::string pull_error_;  // the last pull failed (cleared by the next good one)
    // The pull failure last written to the log, and when: one line a minute while the same
    // failure lasts (every poll wrote one, about six a second while the token endpoint was down).
    std::string pull_error_logged_;
    std::chrono::steady_clock::time_point pull_error_logged_at_{};
    bool resync_wanted_ = false;  // the next sync lists by query (setup found the stored cursor unusable)
    // Labels kept by modify_labels may wait in the state store: looked for once after start,
    // then only after one was kept (the store's listing walks its whole keyspace on Redis).
    std::atomic<bool> labels_may_wait_{true};
    std::string watch_error_;
    std::uint64_t emitted_ = 0;
};

}  // namespace docpipe::google
