// sink.ncb: submits each claim to the insurer's core claims system ("NCB") over its REST API.
//
// The request: POST <base_url><claims_path> with the NCB record (docpipe/claim.hpp:
// "Event date", "Submission Date", "Claim Amount", "Invoice Number", "Policy Number" and
// the source metadata), `Authorization: Bearer <api_key>`, `X-Request-ID` = the document id
// and an `Idempotency-Key` derived from the document id and the record, so a redelivered
// claim (after a crash between NCB's answer and the delivery ledger) is recognised by NCB
// and not booked twice. The record sent first is kept in the state store (remember_for), and
// every later try of the document sends those same bytes under the same key, even when the
// document was extracted again meanwhile with other results (a restart after a model refit
// or a rules change): NCB answers a known key with another body 422, and a new key would
// book the claim twice. Only a refusal (the claim was not booked) or a reviewer's approval
// starts a new submission (after a lost answer, a reviewer's corrections go under the earlier
// try's key, and NCB's IDEMPOTENCY_KEY_REUSED parks them: NCB holds the earlier claim).
//
// What each answer does:
//   201/200 with a claim reference   delivered; the reference goes on the job (ncb_claim_reference)
//   2xx without one  not proof that NCB booked it (a proxy or login page may answer): wait
//                    (hold) and send again under the same key, which NCB answers with the reference
//   400/409/422      NCB refused this claim: parked in the review queue with NCB's message
//   401/403          the API key was refused: documents wait (hold), health says what to do
//   429              rate limited: wait for Retry-After without using up attempts
//   other 5xx, no answer   NCB is down: wait (hold); 5 in a row open the circuit breaker
//   500              may be this claim: retried under the node's retry policy, then the
//                    dead-letter queue (it counts towards the breaker too)
//   3xx, 404/405     the URL is wrong: wait (hold), health says to check base_url
// A claim whose record is incomplete (a required value missing) is parked for review
// without calling NCB. NCB's error text is quoted in reasons and logs with the API key
// masked, and an answer over 1 MiB is not read.
//
// Threading: write() may run concurrently (concurrent_safe); the HTTP client, the circuit
// breaker and the counters are thread-safe. Ownership: the Context outlives the sink.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "docpipe/component.hpp"
#include "docpipe/net/http.hpp"

namespace docpipe::claims {

// Also a FieldChecker: a reviewer's corrections are checked and stored in the form this sink
// sends (an amount as a number), also in a pipeline without transform.claims before it.
class NcbSink : public Sink, public FieldChecker {
public:
    static ComponentDescriptor describe();
    NcbSink(const Config& config, Context& context);
    SinkResult write(const Document& doc) override;
    HealthReport health() override;
    std::map<std::string, std::string> check_fields(const nlohmann::json& values) const override;
    nlohmann::json normalize_fields(const nlohmann::json& values) const override;

private:
    std::chrono::system_clock::time_point submission_time(const Document& doc);
    // What to send: `body` for a new submission (pinned in the state store from here on), else
    // the record as first sent; and the record the Idempotency-Key is made from (the first
    // sent: a reviewer's corrections after a lost answer keep the earlier try's key).
    struct Submission {
        std::string body;
        std::string key_body;
    };
    Submission submission(const Document& doc, const std::string& body);
    SinkResult endpoint_down(const std::string& why, std::optional<std::chrono::milliseconds> hint);
    SinkResult wrong_url(const std::string& why);
    // Counts a failure towards the breaker, logging and publishing the moment it opens.
    void record_failure(const std::string& why);
    // `text` with the API key masked: NCB (or a proxy) may echo the request's headers.
    std::string masked(std::string text) const;
    // docpipe_ncb_circuit_open{node}: 1 while the breaker refuses calls or allows its one
    // trial, 0 once NCB answers (the alert NcbCircuitOpen reads it).
    void publish_breaker();

    Context& ctx_;
    net::HttpClient http_;
    std::string url_;
    std::string api_key_;
    int utc_offset_minutes_;
    bool flag_for_review_;
    std::chrono::seconds remember_for_;
    net::CircuitBreaker breaker_;
    std::chrono::milliseconds breaker_open_for_;

    std::atomic<std::uint64_t> submitted_{0};
    std::mutex status_mutex_;
    std::string refused_key_;  // the last 401/403 message, until a success
    std::string wrong_url_;    // the last 404/405 message, until a success
};

}  // namespace docpipe::claims
