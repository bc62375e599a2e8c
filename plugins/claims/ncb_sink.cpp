#include "ncb_sink.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "docpipe/claim.hpp"
#include "docpipe/secrets.hpp"
#include "field_check.hpp"

namespace docpipe::claims {

namespace {

// NCB's reasons, field by field: {"error":{"message","details":[{"field","issue"}]}}.
std::string ncb_details(const std::string& body) {
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return {};
    const auto& e = j["error"];
    std::string out;
    if (e.contains("details") && e["details"].is_array())
        for (const auto& d : e["details"])
            if (d.is_object() && d.contains("field"))
                out += fmt::format("{}{}: {}", out.empty() ? "" : "; ", d.value("field", ""), d.value("issue", d.value("message", "")));
    return out;
}

// NCB's error code ({"error":{"code"}}), or "".
std::string ncb_error_code(const std::string& body) {
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return {};
    const auto& code = j["error"].value("code", nlohmann::json());
    return code.is_string() ? code.get<std::string>() : std::string();
}

// The NCB record's fields whose values differ between the record NCB holds and this one, for
// the reviewer: "Claim Amount: 479.05 at NCB, 120 here; ...". "" when either does not parse.
std::string record_differences(const std::string& held, const std::string& now) {
    const auto a = nlohmann::json::parse(held, nullptr, false);
    const auto b = nlohmann::json::parse(now, nullptr, false);
    if (!a.is_object() || !b.is_object()) return {};
    return docpipe::json_differences(a, b, "at NCB", "here");
}

}  // namespace

ComponentDescriptor NcbSink::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Sink;
    d.name = "sink.ncb";
    d.summary = "Submits claims to the insurer's NCB API (idempotent, retries, circuit breaker); refusals go to review";
    d.concurrent_safe = true;
    d.has_health_probe = true;
    d.config = ConfigSpec{
        Field::string("base_url").required().describe("NCB API root, e.g. https://ncb.insurer.example/api/v1"),
        Field::string("claims_path").default_value("/claims/submit").describe("Path of the claim submission endpoint under base_url"),
        Field::string("api_key").required().secret().describe(
            "Bearer token for NCB; give it as ${NCB_API_KEY} or ${file:${CREDENTIALS_DIRECTORY}/ncb-api-key}, never inline"),
        Field::duration("timeout").default_value("30s").min(1).describe("Longest time one submission may take"),
        Field::duration("connect_timeout").default_value("5s").min(0.1).describe("Longest time to open the connection"),
        Field::string("ca_file").path().default_value("").describe("PEM file of CAs to trust for NCB's TLS certificate; empty: the system's"),
        Field::integer("utc_offset_minutes").default_value(480).min(-720).max(840).describe(
            "Time zone of \"Submission Date\" (Malaysia: 480 = +08:00)"),
        Field::boolean("flag_for_review").default_value(false).describe(
            "Add \"Review Flag\": true to each record (the medium-confidence route: submitted, and NCB staff check it)"),
        Field::integer("breaker_threshold").default_value(5).min(1).describe("Failures in a row that open the circuit breaker"),
        Field::duration("breaker_open_for").default_value("30s").min(0.1).describe("How long the breaker stays open before one trial call"),
        Field::duration("remember_for").default_value("30d").min(1).describe(
            "How long the record first sent for a claim is kept (every retry sends those bytes under one idempotency key)"),
    };
    return d;
}

NcbSink::NcbSink(const Config& config, Context& context)
    : ctx_(context),
      // NCB answers with a few hundred bytes; 1 MiB bounds what a proxy or a broken server can send.
      http_(net::HttpClientOptions{config.get_duration("connect_timeout"), config.get_duration("timeout"), config.get_string("ca_file"),
                                   "docpipe-ncb", 1u << 20}),
      api_key_(config.get_string("api_key")),
      utc_offset_minutes_(static_cast<int>(config.get_int("utc_offset_minutes"))),
      flag_for_review_(config.get_bool("flag_for_review")),
      remember_for_(std::chrono::duration_cast<std::chrono::seconds>(config.get_duration("remember_for"))),
      breaker_(static_cast<int>(config.get_int("breaker_threshold")), config.get_duration("breaker_open_for")),
      breaker_open_for_(config.get_duration("breaker_open_for")) {
    std::string base = config.get_string("base_url");
    if (base.rfind("https://", 0) != 0 && base.rfind("http://", 0) != 0)
        throw std::invalid_argument(fmt::format("base_url '{}' must start with https:// (or http:// on a trusted network)", base));
    while (!base.empty() && base.back() == '/') base.pop_back();
    std::string path = config.get_string("claims_path");
    if (path.empty() || path.front() != '/') path = "/" + path;
    url_ = base + path;
    if (api_key_.empty())
        throw std::invalid_argument("api_key is empty: set it from a file or the environment (e.g. ${file:/run/credentials/docpipe.service/ncb-api-key})");
    publish_breaker();  // 0 from the start: an alert needs the series before the first failure
}

std::chrono::system_clock::time_point NcbSink::submission_time(const Document& doc) {
    const std::string key = "ncb/first_try/" + doc.id;
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.clock().now().time_since_epoch()).count();
    ctx_.state().put_if_absent(key, std::to_string(now_ms), remember_for_);
    const auto stored = ctx_.state().get(key);
    const std::int64_t ms = stored ? std::atoll(stored->c_str()) : now_ms;
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

NcbSink::Submission NcbSink::submission(const Document& doc, const std::string& body) {
    const std::string key = "ncb/sent/" + doc.id;
    const bool reviewed = doc.fields.is_object() && doc.fields.value("reviewed", false) == true;
    if (reviewed) {
        // A reviewer's approval sends their corrections. With no earlier try on record (none,
        // or one NCB refused) it is a new submission, pinned from here on. After a try whose
        // answer was lost (NCB may have booked it), the corrections go under that try's key:
        // NCB books them if it had nothing, and answers IDEMPOTENCY_KEY_REUSED if it holds the
        // earlier claim, which then stays the one booked (see write()), never a second one.
        ctx_.state().put_if_absent(key, body, remember_for_);
        const auto pinned = ctx_.state().get(key);
        return {body, pinned.value_or(body)};
    }
    ctx_.state().put_if_absent(key, body, remember_for_);
    const auto pinned = ctx_.state().get(key);
    if (!pinned) return {body, body};
    if (*pinned != body)
        ctx_.log().log(LogLevel::Warn, "the claim was extracted again since it was first sent, with other values: the first record is "
                                       "sent again as it was (NCB may have booked it already; a new one could book the claim twice). "
                                       "A person can correct it in NCB",
                       doc.id);
    return {*pinned, *pinned};
}

void NcbSink::record_failure(const std::string& why) {
    const bool was_open = breaker_.state() == net::CircuitBreaker::State::Open;
    breaker_.record_failure(ctx_.clock().steady_now(), why);
    if (!was_open && breaker_.state() == net::CircuitBreaker::State::Open)
        ctx_.log().log(LogLevel::Warn, fmt::format("circuit breaker open after {} failures in a row: no calls to NCB for {} ms, then one "
                                                   "trial; claims wait meanwhile, held (a 500 is retried under the node's retry policy) (last: {})",
                                                   breaker_.consecutive_failures(), breaker_open_for_.count(), why));
    publish_breaker();
}

SinkResult NcbSink::endpoint_down(const std::string& why, std::optional<std::chrono::milliseconds> hint) {
    record_failure(why);
    ctx_.metrics().increment("ncb_unavailable_total");
    // Without a Retry-After the runtime's own hold schedule applies (growing to a few
    // seconds); the breaker keeps NCB from being hammered meanwhile.
    return SinkResult::hold(hint.value_or(std::chrono::milliseconds(0)), why);
}

SinkResult NcbSink::wrong_url(const std::string& why) {
    {
        std::lock_guard lock(status_mutex_);
        wrong_url_ = why;
    }
    return endpoint_down(why, std::nullopt);
}

std::string NcbSink::masked(std::string text) const {
    if (api_key_.size() < 4) return text;  // too short to tell from ordinary text
    return mask_secrets(std::move(text), {api_key_}, "[api key]");
}

void NcbSink::publish_breaker() {
    ctx_.metrics().set_gauge("ncb_circuit_open", breaker_.state() == net::CircuitBreaker::State::Closed ? 0.0 : 1.0);
}

SinkResult NcbSink::write(const Document& doc) {
    // An incomplete claim is parked before the breaker is asked: it needs no call to NCB, and
    // as the breaker's one trial after an outage it recorded no answer, so the breaker stayed
    // half-open and held every claim until a restart.
    auto record = claim::ncb_record(doc, submission_time(doc), utc_offset_minutes_);
    if (!record.complete()) {
        std::string missing;
        for (const auto& m : record.missing) missing += (missing.empty() ? "" : ", ") + m;
        return SinkResult::parked("not submitted to NCB: the claim lacks " + missing);
    }
    if (auto wait = breaker_.refuse(ctx_.clock().steady_now())) {
        publish_breaker();
        return SinkResult::hold(*wait, fmt::format("NCB circuit breaker open after {} failures in a row (last: {})",
                                                   breaker_.consecutive_failures(), breaker_.last_failure()));
    }
    // Any way out of this try that records no answer (a state-store error below, say) gives the
    // trial back; after an answer was recorded this changes nothing.
    struct GiveBackTrial {
        net::CircuitBreaker& breaker;
        ~GiveBackTrial() { breaker.release_trial(); }
    } give_back_trial{breaker_};
    if (flag_for_review_) record.record["Review Flag"] = true;
    const auto [body, key_body] = submission(doc, docpipe::json_text(record.record));
    // The SDK's content hash (SHA-256, 96 bits) of the document id and the record first sent.
    const std::string idempotency_key = "docpipe-" + Document::content_id(doc.id + "\n" + key_body);
    // The document id: NCB's logs and ours meet on it (the Idempotency-Key tells tries apart
    // from new claims; the request id tells which document a request was about).
    const std::string& rid = doc.id;

    net::HttpResponse response;
    try {
        response = http_.send({"POST",
                               url_,
                               {{"Content-Type", "application/json"},
                                {"Accept", "application/json"},
                                {"Authorization", "Bearer " + api_key_},
                                {"Idempotency-Key", idempotency_key},
                                {"X-Request-ID", rid}},
                               body,
                               {}});
    } catch (const net::TransportError& e) {
        if (e.answer_too_large)  // reachable, but NCB's API never answers that much
            return endpoint_down(fmt::format("NCB's address {} answered with more than {} bytes, which NCB's API never sends "
                                             "(check base_url and any proxy in front of NCB); the claim waits: {}",
                                             url_, http_.options().max_response_bytes, e.what()),
                                 std::nullopt);
        return endpoint_down(fmt::format("NCB unreachable: {}", e.what()), std::nullopt);
    }
    const std::string where = fmt::format(" (X-Request-ID {})", rid);
    if (response.status >= 300 && response.status < 400)
        return wrong_url(fmt::format("NCB's address {} answers HTTP {} (a redirect to '{}'): set base_url to the address that serves "
                                     "the API itself; claims wait meanwhile",
                                     url_, response.status, masked(response.header("location").value_or("nowhere"))));
    auto c = net::classify(response, ctx_.clock().now());
    c.message = masked(std::move(c.message));
    switch (c.kind) {
        case net::FailureKind::None: {
            const auto j = nlohmann::json::parse(response.body, nullptr, false);
            std::string reference;
            for (const char* k : {"claim_reference", "reference", "claimReference"})
                if (j.is_object() && j.contains(k) && j[k].is_string()) {
                    reference = j[k].get<std::string>();
                    break;
                }
            if (reference.empty()) {
                // NCB's API always gives a reference with a booked claim. Without one, this is
                // no proof that NCB has it: a proxy, a login page or a half-configured gateway
                // answers 200 too. The claim waits, and the next try under the same key gets
                // NCB's own answer (its reference, replayed if it had booked it).
                const std::string content_type = response.header("content-type").value_or("no Content-Type");
                return endpoint_down(fmt::format("NCB answered HTTP {} without a claim reference ({}, {} bytes): not taken as booked; "
                                                 "something other than the NCB API may be answering at {} (check base_url); the claim "
                                                 "is sent again under the same Idempotency-Key{}",
                                                 response.status, masked(content_type), response.body.size(), url_, where),
                                     std::nullopt);
            }
            breaker_.record_success();
            publish_breaker();
            {
                std::lock_guard lock(status_mutex_);
                refused_key_.clear();
                wrong_url_.clear();
            }
            submitted_.fetch_add(1, std::memory_order_relaxed);
            ctx_.metrics().increment("ncb_submitted_total");
            const bool replay = response.header("idempotent-replayed").value_or("") == "true";
            ctx_.log().log(LogLevel::Info, fmt::format("submitted to NCB as {}{}{}", reference, replay ? " (an earlier try had already reached NCB)" : "",
                                                       where), doc.id);
            return SinkResult::ok().with_reference("ncb_claim_reference", reference);
        }
        case net::FailureKind::RateLimited:
            breaker_.record_success();  // NCB answered: it is up, only busy
            publish_breaker();
            ctx_.metrics().increment("ncb_rate_limited_total");
            return SinkResult::hold(c.retry_after.value_or(std::chrono::seconds(2)), "NCB rate limit: " + c.message + where);
        case net::FailureKind::Auth: {
            const std::string why = "NCB refused the API key (" + c.message + "): check sink.ncb api_key (its file or variable)" + where;
            {
                std::lock_guard lock(status_mutex_);
                refused_key_ = why;
            }
            return endpoint_down(why, c.retry_after);
        }
        case net::FailureKind::Retryable:
            if (response.status == 500) {
                record_failure(c.message);  // counts towards opening; the document retries
                return SinkResult::retry(c.retry_after.value_or(std::chrono::milliseconds(0)), "NCB internal error: " + c.message + where);
            }
            return endpoint_down("NCB unavailable: " + c.message + where, c.retry_after);
        case net::FailureKind::Permanent: {
            if (response.status == 403) {
                const std::string why = "NCB forbids this API key (" + c.message + "): check its permissions" + where;
                {
                    std::lock_guard lock(status_mutex_);
                    refused_key_ = why;
                }
                return endpoint_down(why, c.retry_after);
            }
            if (response.status == 404 || response.status == 405)
                return wrong_url(fmt::format("NCB has no claims endpoint at {} ({}): check base_url and claims_path", url_, c.message));
            // A 5xx outside the usual ones (501, 505, a gateway's 52x) is NCB or its gateway
            // failing, not a judgement of this claim (a 524 may even come after NCB booked it).
            if (response.status >= 500) return endpoint_down("NCB unavailable: " + c.message + where, c.retry_after);
            breaker_.record_success();  // NCB answered: it is up
            publish_breaker();
            if (ncb_error_code(response.body) == "IDEMPOTENCY_KEY_REUSED") {
                // A reviewer's corrections, sent under the key of an earlier try whose answer was
                // lost: NCB holds that earlier claim. It stays the one booked (a new key would
                // book a second); a person corrects it in NCB.
                ctx_.log().log(LogLevel::Warn, fmt::format("NCB already holds an earlier try of this claim{}; the corrections were not "
                                                           "booked", where), doc.id);
                const std::string differences = record_differences(key_body, body);
                return SinkResult::parked(fmt::format("NCB already holds this claim from an earlier try whose answer was lost "
                                                      "(X-Request-ID {}){}. The reviewer's corrections were not booked: approve "
                                                      "it again with the values NCB holds to close it, or correct the claim in NCB "
                                                      "and reject it here",
                                                      rid, differences.empty() ? "" : ", with other values: " + differences))
                    // NCB gave no claim reference; the key it holds the claim under is where a
                    // person finds it. A reference on a park also marks the claim held by NCB
                    // (SinkResult::with_reference): rejected here, it is not booked again if resent.
                    .with_reference("ncb_idempotency_key", idempotency_key);
            }
            ctx_.metrics().increment("ncb_refused_total");
            // Not booked: a reviewer's corrected claim is a new submission, with a key of its own.
            ctx_.state().erase("ncb/sent/" + doc.id);
            const std::string details = masked(ncb_details(response.body));
            ctx_.log().log(LogLevel::Warn, fmt::format("NCB refused the claim (HTTP {}{}); parked for review{}", response.status,
                                                       c.reason.empty() ? "" : ", " + c.reason, where), doc.id);
            return SinkResult::parked("NCB refused the claim: " + c.message + (details.empty() ? "" : " [" + details + "]"));
        }
    }
    return SinkResult::retry(std::chrono::seconds(1), "unexpected NCB answer: " + c.message + where);
}

std::map<std::string, std::string> NcbSink::check_fields(const nlohmann::json& values) const { return check_claim_corrections(values); }

nlohmann::json NcbSink::normalize_fields(const nlohmann::json& values) const { return normalize_claim_corrections(values); }

HealthReport NcbSink::health() {
    {
        std::lock_guard lock(status_mutex_);
        if (!refused_key_.empty()) return {Health::Unavailable, refused_key_};
        if (!wrong_url_.empty()) return {Health::Unavailable, wrong_url_};
    }
    const auto state = breaker_.state();
    if (state != net::CircuitBreaker::State::Closed)
        return {Health::Degraded, fmt::format("circuit breaker {} after {} failures in a row; last: {}", net::to_string(state),
                                              breaker_.consecutive_failures(), breaker_.last_failure())};
    return {Health::Healthy, fmt::format("{} claims submitted since start", submitted_.load())};
}

}  // namespace docpipe::claims
