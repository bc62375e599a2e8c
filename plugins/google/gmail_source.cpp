#include "gmail_source.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "docpipe/rfc822.hpp"

namespace docpipe::google {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr const char* kGmailScope = "https://www.googleapis.com/auth/gmail.modify";
constexpr const char* kPubsubScope = "https://www.googleapis.com/auth/pubsub";
constexpr std::size_t kRecentLimit = 20000;   // settled ids remembered per run
constexpr std::size_t kHeldLimit = 10000;     // pulled notifications held at most
constexpr int kMaxPages = 10000;              // a guard against a server that never ends a listing
constexpr int kModifyAttempts = 4;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// Google's 64-bit integers travel as strings, except where they do not (the push payload).
std::uint64_t to_u64(const json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer()) return v.get<std::int64_t>() < 0 ? 0 : static_cast<std::uint64_t>(v.get<std::int64_t>());
    if (v.is_number_float()) return v.get<double>() < 0 ? 0 : static_cast<std::uint64_t>(v.get<double>());
    if (v.is_string()) {
        const std::string& s = v.get_ref<const std::string&>();
        if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos) return 0;
        return std::strtoull(s.c_str(), nullptr, 10);
    }
    return 0;
}

std::uint64_t parse_u64(const std::optional<std::string>& text) { return text ? to_u64(json(*text)) : 0; }

std::string iso8601_ms(std::int64_t epoch_ms) {
    const std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec);
}

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

GmailSource::Mode parse_mode(const std::string& mode) {
    if (mode == "pubsub_pull") return GmailSource::Mode::PubsubPull;
    if (mode == "pubsub_push") return GmailSource::Mode::PubsubPush;
    return GmailSource::Mode::Poll;
}

// The Google credentials for Pub/Sub: the same file as Gmail's, without `subject` (Pub/Sub
// is the service account's own resource, not the mailbox user's).
net::GoogleCredentials pubsub_credentials(const Config& config) {
    std::string path = config.get_string("credentials_file");
    if (path.empty())
        if (const char* env = std::getenv("GOOGLE_APPLICATION_CREDENTIALS"); env && *env) path = env;
    if (path.empty())
        throw std::invalid_argument("credentials_file is empty and GOOGLE_APPLICATION_CREDENTIALS is not set: give the path of a "
                                    "service-account key or authorized-user JSON file");
    return net::GoogleCredentials::load_file(path);
}

std::string classify_message(const net::HttpResponse& r, Context& ctx) {
    const auto c = net::classify(r, ctx.clock().now());
    return c.message.empty() ? fmt::format("HTTP {}", r.status) : c.message;
}

}  // namespace

// ---- OIDC tokens ------------------------------------------------------------------------------

struct OidcVerifier::Key {
    EVP_PKEY* pkey = nullptr;
    ~Key() { EVP_PKEY_free(pkey); }
};

namespace {

// An RSA public key from a JWK's base64url modulus and exponent.
EVP_PKEY* rsa_public_key(const std::string& n_b64, const std::string& e_b64) {
    const std::string n = net::base64_decode_any(n_b64), e = net::base64_decode_any(e_b64);
    if (n.empty() || e.empty()) return nullptr;
    BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
    BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM* params = nullptr;
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
    EVP_PKEY* pkey = nullptr;
    if (bn_n && bn_e && bld && ctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1 && (params = OSSL_PARAM_BLD_to_param(bld)) != nullptr &&
        EVP_PKEY_fromdata_init(ctx) == 1) {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return pkey;
}

bool rs256_verify(EVP_PKEY* key, std::string_view signed_part, const std::string& signature) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
                    EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                                     reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

std::chrono::seconds max_age(const std::optional<std::string>& cache_control) {
    if (cache_control) {
        const std::string cc = lower(*cache_control);
        if (const auto at = cc.find("max-age="); at != std::string::npos) {
            const long v = std::strtol(cc.c_str() + at + 8, nullptr, 10);
            return seconds(std::clamp<long>(v, 60, 24 * 3600));
        }
    }
    return seconds(3600);
}

}  // namespace

OidcVerifier::OidcVerifier(std::string jwks_url, const net::HttpClient& http, Clock& clock)
    : url_(std::move(jwks_url)), http_(http), clock_(clock) {}

OidcVerifier::~OidcVerifier() = default;

std::string OidcVerifier::fetch() {
    const auto now = clock_.steady_now();
    {
        std::lock_guard lock(mutex_);
        fetched_ = true;
        fetched_at_ = now;
    }
    net::HttpResponse r;
    try {
        r = http_.send({"GET", url_, {{"Accept", "application/json"}}, "", {}});
    } catch (const net::TransportError& e) {
        return fmt::format("JWKS {} unreachable: {}", url_, e.what());
    }
    if (!r.ok()) return fmt::format("JWKS {} answered HTTP {}", url_, r.status);
    const auto j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array()) return fmt::format("JWKS {} is not a key set", url_);
    std::map<std::string, std::shared_ptr<Key>> keys;
    for (const auto& k : j["keys"]) {
        if (!k.is_object() || k.value("kty", "") != "RSA" || !k.contains("kid") || !k["kid"].is_string()) continue;
        try {
            auto key = std::make_shared<Key>();
            key->pkey = rsa_public_key(k.value("n", ""), k.value("e", ""));
            if (key->pkey) keys[k["kid"].get<std::string>()] = std::move(key);
        } catch (const std::exception&) {
            // an undecodable key is left out; the others still count
        }
    }
    if (keys.empty()) return fmt::format("JWKS {} holds no usable RSA key", url_);
    std::lock_guard lock(mutex_);
    keys_ = std::move(keys);
    keys_expire_ = now + max_age(r.header("cache-control"));
    return "";
}

std::shared_ptr<OidcVerifier::Key> OidcVerifier::key_for(const std::string& kid) {
    auto lookup = [&](bool allow_stale) -> std::shared_ptr<Key> {
        std::lock_guard lock(mutex_);
        auto it = keys_.find(kid);
        if (it == keys_.end() || (!allow_stale && clock_.steady_now() >= keys_expire_)) return nullptr;
        return it->second;
    };
    if (auto k = lookup(false)) return k;
    std::lock_guard fetching(fetch_mutex_);
    if (auto k = lookup(false)) return k;
    bool may_fetch;
    {
        std::lock_guard lock(mutex_);
        const auto now = clock_.steady_now();
        // An unknown kid fetches again (Google rotates its keys), but not more than every 5 s:
        // tokens with made-up kids must not turn into a flood of JWKS requests.
        may_fetch = !fetched_ || now >= keys_expire_ || now - fetched_at_ >= seconds(5);
    }
    if (may_fetch) (void)fetch();
    return lookup(true);  // a key past its cache time still beats none when the fetch failed
}

std::string OidcVerifier::verify(const std::string& token, const Expect& expect) {
    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == std::string::npos ? std::string::npos : token.find('.', dot1 + 1);
    if (dot2 == std::string::npos || token.find('.', dot2 + 1) != std::string::npos) return "not a JWT";
    json header, claims;
    std::string signature;
    try {
        header = json::parse(net::base64_decode_any(std::string_view(token).substr(0, dot1)));
        claims = json::parse(net::base64_decode_any(std::string_view(token).substr(dot1 + 1, dot2 - dot1 - 1)));
        signature = net::base64_decode_any(std::string_view(token).substr(dot2 + 1));
    } catch (const std::exception&) {
        return "undecodable JWT";
    }
    if (!header.is_object() || !claims.is_object()) return "undecodable JWT";
    try {
        return check(token, header, claims, signature, dot2, expect);
    } catch (const json::exception&) {
        return "malformed JWT header or claims";
    }
}

std::string OidcVerifier::check(const std::string& token, const json& header, const json& claims, const std::string& signature,
                                std::size_t dot2, const Expect& expect) {
    if (!header.contains("alg") || header["alg"] != "RS256") return "alg is not RS256";
    const std::string kid = header.contains("kid") && header["kid"].is_string() ? header["kid"].get<std::string>() : "";
    if (kid.empty()) return "no kid";
    const auto key = key_for(kid);
    if (!key) return fmt::format("unknown kid {}", kid);
    if (!rs256_verify(key->pkey, std::string_view(token).substr(0, dot2), signature)) return fmt::format("bad signature (kid {})", kid);
    const std::string iss = claims.contains("iss") && claims["iss"].is_string() ? claims["iss"].get<std::string>() : "";
    if (iss != "accounts.google.com" && iss != "https://accounts.google.com") return fmt::format("iss '{}' is not Google", iss);
    if (!claims.contains("aud") || !claims["aud"].is_string() || claims["aud"].get<std::string>() != expect.audience)
        return fmt::format("aud '{}' is not push_audience", claims.contains("aud") ? docpipe::json_text(claims["aud"]) : "");
    if (!claims.contains("email") || !claims["email"].is_string() || claims["email"].get<std::string>() != expect.email)
        return "email is not push_service_account";
    if (!claims.contains("email_verified") || claims["email_verified"] != true) return "email_verified is not true";
    if (!claims.contains("exp") || !claims["exp"].is_number()) return "no exp";
    const double now = static_cast<double>(std::chrono::duration_cast<seconds>(clock_.now().time_since_epoch()).count());
    const double skew = static_cast<double>(expect.skew.count());
    if (claims["exp"].get<double>() + skew < now) return "expired";
    if (claims.contains("iat") && claims["iat"].is_number() && claims["iat"].get<double>() - skew > now) return "issued in the future";
    return "";
}

// ---- the source -------------------------------------------------------------------------------

ComponentDescriptor GmailSource::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Source;
    d.name = "source.gmail";
    d.summary = "Emails from a Gmail mailbox (history API; told by Pub/Sub pull or push, or polling); labelled when settled";
    d.has_health_probe = true;
    d.config = ConfigSpec{
        Field::string("user").default_value("me").describe(
            "The mailbox: `me` (the credentials' user, or `subject` for a service account) or its address"),
        Field::enumeration("mode", {"pubsub_pull", "pubsub_push", "poll"})
            .default_value("poll")
            .describe("How new mail is noticed: pulling `subscription`, pushes to the admin server's /hooks/<node>, or "
                      "history.list every poll_interval"),
        Field::string("topic").default_value("").describe(
            "Pub/Sub topic for users.watch (projects/P/topics/T; P must be the credentials' project and "
            "gmail-api-push@system.gserviceaccount.com a publisher on it); empty: no watch is made or renewed here"),
        Field::string("subscription").default_value("").describe("pubsub_pull: the subscription to pull (projects/P/subscriptions/S)"),
        Field::string("label").default_value("INBOX").describe("Only messages that arrive with this label (name or id)"),
        Field::string("processed_label").default_value("docpipe-processed").describe(
            "Added (and UNREAD removed) once a message's documents are all settled; created when missing"),
        Field::string("failed_label").default_value("docpipe-failed").describe(
            "Added when a message failed (the reason is on its job); created when missing"),
        Field::duration("poll_interval").default_value("60s").min(0.01).describe(
            "poll: how often history is read; Pub/Sub modes: the reconciliation sweep (notifications are lossy)"),
        Field::string("resync_query").default_value("newer_than:7d -label:docpipe-processed").describe(
            "Gmail search for the bounded resync after the history cursor expired"),
        Field::integer("resync_max").default_value(500).min(1).max(100000).describe("Most messages one resync takes"),
        Field::duration("watch_renew_before").default_value("1d").min(60).describe(
            "users.watch is called again when it expires within this time (Google: at least every 7 days)"),
        Field::string("gmail_url").default_value("https://gmail.googleapis.com").describe("Gmail API root (tests point it at a fake)"),
        Field::string("pubsub_url").default_value("https://pubsub.googleapis.com").describe(
            "Pub/Sub API root; PUBSUB_EMULATOR_HOST=host:port overrides it with http://host:port and no credentials"),
        Field::string("push_audience").default_value("").describe(
            "pubsub_push: the `audience` of the push subscription's OIDC token (compared exactly)"),
        Field::string("push_service_account").default_value("").describe(
            "pubsub_push: the service account the push subscription signs its tokens as"),
        Field::boolean("push_verify").default_value(true).describe(
            "pubsub_push: verify the OIDC token of every push (false only for the Pub/Sub emulator, which sends none)"),
        Field::string("jwks_url").default_value("https://www.googleapis.com/oauth2/v3/certs").describe(
            "Google's signing keys for the push tokens"),
        Field::integer("max_messages").default_value(50).min(1).max(1000).describe("pubsub_pull: most notifications per pull"),
        Field::duration("ack_extend").default_value("60s").min(10).max(600).describe(
            "pubsub_pull: a notification's ack deadline is extended by this much while its documents are in flight"),
    };
    add_client_fields(d.config);
    // What the constructor would refuse at start, refused by `docpipe validate` too (the
    // shipped pipeline's ${GMAIL_SUBSCRIPTION:-} left empty read as valid).
    d.config
        .rule("subscription", "mode pubsub_pull needs subscription (projects/P/subscriptions/S)",
              [](const Config& c) -> std::string {
                  const std::string s = c.get_string("subscription");
                  if (c.get_string("mode") != "pubsub_pull" || (s.rfind("projects/", 0) == 0 && s.find("/subscriptions/") != std::string::npos))
                      return "";
                  return fmt::format("mode pubsub_pull needs subscription: projects/<project>/subscriptions/<name> (got '{}')", s);
              })
        .rule("push_audience", "mode pubsub_push (with push_verify) needs push_audience and push_service_account",
              [](const Config& c) -> std::string {
                  if (c.get_string("mode") != "pubsub_push" || !c.get_bool("push_verify")) return "";
                  if (!c.get_string("push_audience").empty() && !c.get_string("push_service_account").empty()) return "";
                  return "mode pubsub_push needs push_audience and push_service_account (the push subscription's OIDC token "
                         "settings), or push_verify: false for the Pub/Sub emulator";
              })
        .rule("topic", "topic, when given, reads projects/P/topics/T",
              [](const Config& c) -> std::string {
                  const std::string t = c.get_string("topic");
                  if (t.empty() || (t.rfind("projects/", 0) == 0 && t.find("/topics/") != std::string::npos)) return "";
                  return fmt::format("topic '{}' must read projects/<project>/topics/<topic>", t);
              })
        .rule("failed_label", "label, processed_label and failed_label are given, and the last two differ",
              [](const Config& c) -> std::string {
                  if (c.get_string("label").empty() || c.get_string("processed_label").empty() || c.get_string("failed_label").empty())
                      return "label, processed_label and failed_label must not be empty";
                  if (lower(c.get_string("processed_label")) == lower(c.get_string("failed_label")))
                      return "processed_label and failed_label must differ";
                  return "";
              });
    return d;
}

GmailSource::GmailSource(const Config& config, Context& context)
    : ctx_(context),
      mode_(parse_mode(config.get_string("mode"))),
      user_(config.get_string("user").empty() ? "me" : config.get_string("user")),
      label_name_(config.get_string("label")),
      processed_name_(config.get_string("processed_label")),
      failed_name_(config.get_string("failed_label")),
      topic_(config.get_string("topic")),
      subscription_(config.get_string("subscription")),
      poll_interval_(config.get_duration("poll_interval")),
      watch_renew_before_(config.get_duration("watch_renew_before")),
      ack_extend_(config.get_duration("ack_extend")),
      resync_query_(config.get_string("resync_query")),
      resync_max_(static_cast<std::size_t>(config.get_int("resync_max"))),
      max_messages_(static_cast<int>(config.get_int("max_messages"))),
      gmail_base_(base_url(config, "gmail_url")),
      push_verify_(config.get_bool("push_verify")),
      push_audience_(config.get_string("push_audience")),
      push_service_account_(config.get_string("push_service_account")),
      client_(config, context, "Gmail", {kGmailScope}, "the configured mailbox"),
      http_(net::HttpClientOptions{config.get_duration("connect_timeout"), config.get_duration("timeout"), config.get_string("ca_file"),
                                   "docpipe-gmail"}) {
    // The labels, the topic, the subscription and the push settings were checked by the
    // descriptor's rules (ConfigSpec::rule) before this runs: the runtime and the testing kit
    // both validate a config before they build the component.
    if (mode_ == Mode::PubsubPull) {
        if (const char* emulator = std::getenv("PUBSUB_EMULATOR_HOST"); emulator && *emulator) {
            pubsub_base_ = std::string("http://") + emulator;
        } else {
            pubsub_base_ = base_url(config, "pubsub_url");
            net::GoogleAuthOptions options;
            options.scopes = {kPubsubScope};
            options.token_url = config.get_string("token_url");
            options.attempts = 2;
            options.initial_backoff = milliseconds(500);
            pubsub_auth_ = std::make_unique<net::GoogleAuth>(pubsub_credentials(config), std::move(options), http_);
        }
        while (!pubsub_base_.empty() && pubsub_base_.back() == '/') pubsub_base_.pop_back();
    }
    if (mode_ == Mode::PubsubPush && push_verify_) {
        const std::string jwks = config.get_string("jwks_url");
        if (jwks.rfind("https://", 0) != 0 && jwks.rfind("http://", 0) != 0)
            throw std::invalid_argument(fmt::format("jwks_url '{}' must start with https://", jwks));
        verifier_ = std::make_unique<OidcVerifier>(jwks, http_, ctx_.clock());
    }
}

GmailSource::~GmailSource() = default;

std::string GmailSource::answer_text(const net::HttpResponse& r) {
    // Google's (or a proxy's) error text may echo the request's token: never pass it on as is.
    return client_.redact(classify_message(r, ctx_));
}

std::string GmailSource::state_key(const char* name) const { return fmt::format("gmail/{}/{}", address_, name); }

void GmailSource::set_error(std::string why) {
    std::lock_guard lock(mutex_);
    last_error_ = std::move(why);
}

// ---- calls ----------------------------------------------------------------------------------

net::HttpResponse GmailSource::gmail(const std::string& method, const std::string& path_and_query, const std::string& body,
                                     std::string_view what) {
    net::HttpRequest r;
    r.method = method;
    r.url = gmail_base_ + "/gmail/v1/users/" + net::url_encode(user_) + path_and_query;
    if (method != "GET") r.headers.emplace_back("Content-Type", "application/json");
    r.body = body;
    try {
        return client_.send(std::move(r));
    } catch (const Stop& stop) {
        throw ApiError(fmt::format("Gmail {}: {}", what, stop.result.reason()), 0);
    } catch (const net::TransportError& e) {
        throw ApiError(fmt::format("Gmail unreachable ({}): {}", what, e.what()), 0);
    }
}

json GmailSource::gmail_json(const std::string& method, const std::string& path_and_query, const std::string& body,
                             std::string_view what) {
    const auto r = gmail(method, path_and_query, body, what);
    if (!r.ok()) throw ApiError(fmt::format("Gmail {} answered {}: {}", what, r.status, answer_text(r)), r.status);
    auto j = json::parse(r.body, nullptr, false);
    if (!j.is_object()) throw ApiError(fmt::format("Gmail {} answered {} without a JSON object", what, r.status), r.status);
    return j;
}

net::HttpResponse GmailSource::pubsub(const std::string& method, const std::string& path, const std::string& body,
                                      std::string_view what) {
    net::HttpRequest r{method, pubsub_base_ + path, {{"Content-Type", "application/json"}}, body, {}};
    if (pubsub_auth_) r.headers.emplace_back("Authorization", "");
    for (int attempt = 1;; ++attempt) {
        if (pubsub_auth_) {
            try {
                r.headers.back().second = pubsub_auth_->authorization();
                client_.add_secret(std::string_view(r.headers.back().second).substr(7));  // after "Bearer "
            } catch (const net::AuthError& e) {
                const std::string why = client_.redact(e.what());
                {
                    std::lock_guard lock(mutex_);
                    pubsub_auth_problem_ = why;
                }
                throw ApiError(fmt::format("Pub/Sub {}: {}", what, why), 0);
            } catch (const std::exception& e) {
                throw ApiError(fmt::format("Pub/Sub {}: no access token: {}", what, client_.redact(e.what())), 0);
            }
        }
        net::HttpResponse response;
        try {
            response = http_.send(r);
        } catch (const net::TransportError& e) {
            throw ApiError(fmt::format("Pub/Sub unreachable ({}): {}", what, e.what()), 0);
        }
        if (response.status == 401 && pubsub_auth_ && attempt == 1) {
            pubsub_auth_->invalidate();  // revoked or expired early: one more try with a new token
            continue;
        }
        if (response.ok()) {
            std::lock_guard lock(mutex_);
            pubsub_auth_problem_.clear();
        } else if (response.status == 401 || response.status == 403) {
            std::lock_guard lock(mutex_);
            pubsub_auth_problem_ = fmt::format("Pub/Sub refused {} ({}): check that the credentials' account may subscribe to {}",
                                               what, answer_text(response), subscription_);
        }
        return response;
    }
}

// ---- start-up ---------------------------------------------------------------------------------

void GmailSource::start() {
    if (!ensure_setup())
        ctx_.log().warn("Gmail not reachable at start; trying again from poll(): {}", [&] {
            std::lock_guard lock(mutex_);
            return last_error_;
        }());
}

void GmailSource::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (mode_ == Mode::PubsubPull && setup_done_) ack_passed_notifications();
}

bool GmailSource::ensure_setup() {
    if (setup_done_) return true;
    const auto now = ctx_.clock().steady_now();
    if (now < next_setup_) return false;
    try {
        setup();
        setup_failures_ = 0;
        set_error("");
        return true;
    } catch (const std::exception& e) {
        ++setup_failures_;
        next_setup_ = now + net::backoff_delay(setup_failures_, seconds(1), std::chrono::minutes(5), 2.0, milliseconds(500));
        set_error(fmt::format("setting up the mailbox: {}", e.what()));
        ctx_.log().error("setting up the mailbox failed ({} time(s) in a row): {}", setup_failures_, e.what());
        return false;
    }
}

void GmailSource::ensure_labels() {
    const json j = gmail_json("GET", "/labels", "", "labels.list");
    auto find = [&](const std::string& wanted) -> std::string {
        if (!j.contains("labels") || !j["labels"].is_array()) return "";
        for (const auto& l : j["labels"])
            if (l.is_object() && l.value("id", "") == wanted) return wanted;
        for (const auto& l : j["labels"])
            if (l.is_object() && lower(l.value("name", "")) == lower(wanted)) return l.value("id", "");
        return "";
    };
    label_id_ = find(label_name_);
    if (label_id_.empty())
        throw ApiError(fmt::format("the mailbox has no label '{}' (label): create it or fix the configuration", label_name_), 0);
    for (auto [name, slot] : {std::pair{&processed_name_, &processed_id_}, std::pair{&failed_name_, &failed_id_}}) {
        *slot = find(*name);
        if (!slot->empty()) continue;
        const json body{{"name", *name}, {"labelListVisibility", "labelShow"}, {"messageListVisibility", "show"}};
        const auto r = gmail("POST", "/labels", docpipe::json_text(body), "labels.create");
        if (r.ok()) {
            *slot = json::parse(r.body, nullptr, false).value("id", "");
        } else if (r.status == 409) {
            // Another instance created it meanwhile (names compare case-insensitively).
            *slot = find(*name);
            if (slot->empty()) {
                const json again = gmail_json("GET", "/labels", "", "labels.list");
                for (const auto& l : again.value("labels", json::array()))
                    if (l.is_object() && lower(l.value("name", "")) == lower(*name)) *slot = l.value("id", "");
            }
        } else {
            throw ApiError(fmt::format("Gmail labels.create for '{}' answered {}: {}", *name, r.status, answer_text(r)), r.status);
        }
        if (slot->empty()) throw ApiError(fmt::format("cannot create or find the label '{}'", *name), 0);
        ctx_.log().info("created the Gmail label '{}' ({})", *name, *slot);
    }
}

void GmailSource::setup() {
    const json profile = gmail_json("GET", "/profile", "", "getProfile");
    const std::string address = lower(profile.value("emailAddress", ""));
    if (address.empty()) throw ApiError("Gmail getProfile answered without emailAddress", 0);
    const std::uint64_t profile_history = to_u64(profile.value("historyId", json()));
    address_ = address;
    ensure_labels();

    std::uint64_t start = profile_history;
    if (!topic_.empty() && mode_ != Mode::Poll) {
        // The watch's historyId is the mailbox's after the call: a later one than getProfile's.
        // A watch Gmail refuses (the topic does not let Gmail publish) costs notifications, not
        // mail: the mailbox is still synced every poll_interval, and the watch is tried again
        // (maybe_renew_watch). It stopped all intake when it failed the whole setup.
        try {
            if (const std::uint64_t watched = watch(); watched != 0) start = watched;
        } catch (const std::exception& e) {
            const auto* api = dynamic_cast<const ApiError*>(&e);
            const std::string hint =
                api && api->status == 403
                    ? fmt::format("; give gmail-api-push@system.gserviceaccount.com the Pub/Sub Publisher role on {} "
                                  "(docs/google-setup.md)",
                                  topic_)
                    : "";
            std::lock_guard lock(mutex_);
            ++watch_failures_;
            watch_error_ = e.what() + hint;
            next_watch_try_ = ctx_.clock().steady_now() +
                              net::backoff_delay(watch_failures_, seconds(5), std::chrono::minutes(10), 2.0, milliseconds(1000));
            ctx_.log().error("the Gmail watch could not be set: {}; the mailbox is read every {} s meanwhile, and the watch is "
                             "tried again",
                             watch_error_, std::chrono::duration_cast<seconds>(poll_interval_).count());
        }
    }
    std::uint64_t stored = parse_u64(ctx_.state().get(state_key("history_id")));
    std::uint64_t pending = parse_u64(ctx_.state().get(state_key("pending_history_id")));
    bool resync_now = false;
    if (stored != 0 && start != 0 && stored > start) {
        // A cursor beyond anything the mailbox has written (state restored from another
        // mailbox or from before it was recreated): listing from it found nothing, ever, while
        // health said all was well. The mail Gmail holds is found by query instead.
        ctx_.log().warn("the stored Gmail cursor {} is ahead of the mailbox's history {} (state from another mailbox, or the "
                        "mailbox was recreated): it is not used",
                        stored, start);
        resync_now = true;
        stored = 0;
    }
    if (pending != 0 && start != 0 && pending > start) {
        ctx_.log().warn("a recorded Pub/Sub push named history {}, beyond the mailbox's {}: it is dropped", pending, start);
        try {
            ctx_.state().erase(state_key("pending_history_id"));
        } catch (const std::exception&) {
            // Dropped in memory; the next start drops it again.
        }
        pending = 0;
    }
    {
        std::lock_guard lock(mutex_);
        cursor_ = stored != 0 ? stored : start;
        persisted_ = stored;
        listed_to_ = cursor_;
        pending_notified_ = pending;
        sync_due_ = true;
        resync_wanted_ = resync_now;
    }
    if (resync_now) {
        persist_cursor();
    } else if (stored == 0) {
        persist_cursor();
        ctx_.log().info("no Gmail cursor stored: starting at history {} (mail already in the mailbox is not imported)", start);
    } else {
        ctx_.log().info("Gmail cursor at history {}{}", stored, pending > stored ? fmt::format(", pushes up to {} to catch up", pending) : "");
    }
    setup_done_ = true;
}

std::uint64_t GmailSource::watch() {
    const json body{{"topicName", topic_}, {"labelIds", json::array({label_id_})}, {"labelFilterBehavior", "include"}};
    const json j = gmail_json("POST", "/watch", docpipe::json_text(body), "watch");
    const std::int64_t expiration = static_cast<std::int64_t>(to_u64(j.value("expiration", json())));
    const auto now = ctx_.clock().steady_now();
    {
        std::lock_guard lock(mutex_);
        watch_expiration_ms_ = expiration;
        watch_failures_ = 0;
        watch_error_.clear();
        // An expiration that is already inside the renewal window is not renewed on every poll.
        if (expiration - epoch_ms(ctx_.clock().now()) <= watch_renew_before_.count()) next_watch_try_ = now + std::chrono::minutes(1);
    }
    ctx_.metrics().increment("gmail_watch_calls_total");
    // What the GmailWatchNearExpiry alert compares with time(): renewals are due a day before.
    ctx_.metrics().set_gauge("gmail_watch_expiry_timestamp_seconds", static_cast<double>(expiration) / 1000.0);
    ctx_.log().info("Gmail watch set; it expires {}", iso8601_ms(expiration));
    return to_u64(j.value("historyId", json()));
}

void GmailSource::maybe_renew_watch() {
    if (topic_.empty() || mode_ == Mode::Poll) return;
    const auto now = ctx_.clock().steady_now();
    {
        std::lock_guard lock(mutex_);
        if (epoch_ms(ctx_.clock().now()) + watch_renew_before_.count() < watch_expiration_ms_) return;
        if (now < next_watch_try_) return;
    }
    try {
        watch();
    } catch (const std::exception& e) {
        std::lock_guard lock(mutex_);
        ++watch_failures_;
        watch_error_ = e.what();
        next_watch_try_ = now + net::backoff_delay(watch_failures_, seconds(5), std::chrono::minutes(10), 2.0, milliseconds(1000));
        ctx_.log().error("renewing the Gmail watch failed ({} time(s) in a row; it expires {}): {}", watch_failures_,
                         iso8601_ms(watch_expiration_ms_), e.what());
    }
}

// ---- sync -------------------------------------------------------------------------------------

bool GmailSource::stop_wanted(const SourceEmitter& emitter) const {
    if (emitter.stop_requested()) return true;
    std::lock_guard lock(mutex_);
    return stopping_;
}

void GmailSource::check_page_token(std::set<std::string>& tokens, const std::string& token, std::string_view listing) const {
    if (token.empty() || tokens.insert(token).second) return;
    // Gmail never repeats a token within one listing: following it again would only fetch the
    // same pages until kMaxPages, thousands of requests in which nothing new can come.
    throw ApiError(fmt::format("Gmail {} gave the nextPageToken '{}' a second time in one listing, so the listing would never "
                               "end; it is given up and tried again on the next sync (if it keeps happening, the API answers "
                               "are wrong: check gmail_url and any proxy in between)",
                               listing, token.size() > 40 ? token.substr(0, 40) + "..." : token),
                   0);
}

bool GmailSource::list_history(SourceEmitter& emitter, std::uint64_t start, std::vector<std::string>& ids, std::uint64_t& latest) {
    std::set<std::string> seen, tokens;
    std::string page;
    for (int pages = 0;; ++pages) {
        if (pages >= kMaxPages) throw ApiError(fmt::format("history.list from {}: more than {} pages", start, kMaxPages), 0);
        if (pages > 0 && stop_wanted(emitter)) return false;  // a long listing must not hold up shutdown
        // messageAdded: new mail. labelAdded: mail that gains the label later, such as a claim
        // moved out of Spam into the Inbox, or filed there by hand from another folder; it was
        // never taken, since its messageAdded record did not carry the label.
        std::string path = fmt::format(
            "/history?startHistoryId={}&historyTypes=messageAdded&historyTypes=labelAdded&labelId={}&maxResults=500", start,
            net::url_encode(label_id_));
        if (!page.empty()) path += "&pageToken=" + net::url_encode(page);
        const json j = gmail_json("GET", path, "", "history.list");
        // A page may carry a nextPageToken and no history at all: keep paging.
        if (j.contains("history") && j["history"].is_array()) {
            for (const auto& h : j["history"]) {
                latest = std::max(latest, to_u64(h.value("id", json())));
                if (h.contains("messagesAdded") && h["messagesAdded"].is_array())
                    for (const auto& added : h["messagesAdded"]) {
                        if (!added.is_object() || !added.contains("message") || !added["message"].is_object()) continue;
                        const std::string id = added["message"].value("id", "");
                        if (!id.empty() && seen.insert(id).second) ids.push_back(id);
                    }
                // Only the records that add this node's label: docpipe's own labels (processed,
                // failed) on mail already in it are labelAdded records too. A message already
                // labelled processed or failed is passed over by take().
                if (h.contains("labelsAdded") && h["labelsAdded"].is_array())
                    for (const auto& added : h["labelsAdded"]) {
                        if (!added.is_object() || !added.contains("message") || !added["message"].is_object() ||
                            !added.contains("labelIds") || !added["labelIds"].is_array())
                            continue;
                        const auto& labels = added["labelIds"];
                        if (std::find(labels.begin(), labels.end(), json(label_id_)) == labels.end()) continue;
                        const std::string id = added["message"].value("id", "");
                        if (!id.empty() && seen.insert(id).second) ids.push_back(id);
                    }
            }
        }
        latest = std::max(latest, to_u64(j.value("historyId", json())));
        page = j.value("nextPageToken", "");
        if (page.empty()) return true;  // the top-level historyId of the last page is where we are
        check_page_token(tokens, page, fmt::format("history.list from {}", start));
    }
}

std::uint64_t GmailSource::resync(SourceEmitter& emitter, std::uint64_t start, Checkpoint& open, bool& stopped, const std::string& why) {
    {
        std::lock_guard lock(mutex_);
        // Guard against lieer#301's loop: Gmail refusing the id getProfile just gave.
        if (resynced_from_ != 0 && start == resynced_from_ && ctx_.clock().steady_now() - resynced_at_ < std::chrono::hours(1))
            throw ApiError(fmt::format("Gmail refuses history {} that getProfile gave for the last resync; not resyncing again", start),
                           404);
    }
    // The cursor after the resync: taken before the list, so nothing that arrives during it is lost.
    const std::uint64_t profile_history = to_u64(gmail_json("GET", "/profile", "", "getProfile").value("historyId", json()));
    ctx_.log().warn("Gmail history {} {}: resync of at most {} message(s) by query, then history {}", start, why, resync_max_,
                    profile_history);
    ctx_.metrics().increment("gmail_resyncs_total");
    std::vector<std::string> ids;
    std::set<std::string> seen, tokens;
    std::string page;
    for (int pages = 0; ids.size() < resync_max_; ++pages) {
        if (pages >= kMaxPages) {
            ctx_.log().warn("resync: messages.list gave more than {} pages; taking the {} message(s) found so far", kMaxPages, ids.size());
            break;
        }
        if (pages > 0 && stop_wanted(emitter)) {  // a long listing must not hold up shutdown
            stopped = true;
            return profile_history;
        }
        std::string path = fmt::format("/messages?q={}&labelIds={}&maxResults={}", net::url_encode(resync_query_), net::url_encode(label_id_),
                                       std::min<std::size_t>(500, resync_max_ - ids.size()));
        if (!page.empty()) path += "&pageToken=" + net::url_encode(page);
        const json j = gmail_json("GET", path, "", "messages.list");
        if (j.contains("messages") && j["messages"].is_array())
            for (const auto& m : j["messages"]) {
                const std::string id = m.is_object() ? m.value("id", "") : "";
                if (!id.empty() && ids.size() < resync_max_ && seen.insert(id).second) ids.push_back(id);
            }
        page = j.value("nextPageToken", "");
        if (page.empty()) break;
        check_page_token(tokens, page, "messages.list (resync)");
    }
    if (ids.size() >= resync_max_ && !page.empty())
        ctx_.log().warn("resync stopped at resync_max ({}) messages; older ones matching the query are left", resync_max_);
    std::reverse(ids.begin(), ids.end());  // the list is newest first; hand them over oldest first
    for (const auto& id : ids) {
        if (emitter.stop_requested() || !take(emitter, id, open)) {
            stopped = true;
            break;
        }
    }
    std::lock_guard lock(mutex_);
    resynced_from_ = profile_history;
    resynced_at_ = ctx_.clock().steady_now();
    return profile_history;
}

bool GmailSource::take(SourceEmitter& emitter, const std::string& id, Checkpoint& open) {
    {
        std::lock_guard lock(mutex_);
        if (in_flight_.count(id)) {
            open.pending.insert(id);  // emitted by an earlier sync: the cursor waits for it too
            return true;
        }
        if (recent_set_.count(id)) return true;
    }
    auto r = gmail("GET", "/messages/" + net::url_encode(id) + "?format=raw", "", "messages.get");
    if (r.status == 404) {
        // Deleted since the history record, or not visible yet: nothing to take. Normal now and
        // then, but a warning lets an operator see mail that was listed and never taken.
        ctx_.log().warn("Gmail message {} was listed but messages.get answered 404 (deleted since, or not visible to the "
                        "credentials): skipped",
                        id);
        ctx_.metrics().increment("gmail_messages_gone_total");
        return true;
    }
    // An answer about this one message (400 "Invalid id value", 410, 422) is its own: thrown,
    // it failed every sync from this cursor, and no later mail was taken. It is handed over as
    // failed instead. Credentials (401, 403), a proxy (407), rate limits (429), the rest of the
    // 4xx and server errors may concern every message: the sync fails and is tried again.
    if (r.status == 400 || r.status == 410 || r.status == 422)
        return reject_unreadable(emitter, id, fmt::format("messages.get answered {}: {}", r.status, answer_text(r)), open);
    if (!r.ok()) throw ApiError(fmt::format("Gmail messages.get {} answered {}: {}", id, r.status, answer_text(r)), r.status);
    // A 50 MB email comes as 67 MB of base64 in JSON: each copy is let go as soon as the next
    // is made (the answer, the parsed JSON's string, the decoded text), not all held at once.
    json j = json::parse(r.body, nullptr, false);
    std::string().swap(r.body);
    if (j.is_object() && j.contains("labelIds") && j["labelIds"].is_array())
        for (const auto& l : j["labelIds"])
            if (l.is_string() && (l.get<std::string>() == processed_id_ || l.get<std::string>() == failed_id_)) return true;  // done before
    // A 200 that is not JSON at all (a proxy's or login page's HTML) says nothing about the
    // message: the sync fails and is tried again, and the message is not labelled failed.
    if (!j.is_object()) throw ApiError(fmt::format("Gmail messages.get {} answered {} without a JSON object", id, r.status), r.status);
    std::string raw, unreadable;
    if (!j.contains("raw") || !j["raw"].is_string()) unreadable = "messages.get answered 200 but the answer has no raw field";
    else {
        const std::string encoded = std::move(j["raw"].get_ref<std::string&>());
        try {
            raw = net::base64_decode_any(encoded);
        } catch (const std::exception&) {
            unreadable = "messages.get answered 200 but its raw field is not base64";
        }
    }
    // One unreadable message must not stop the sync: throwing here would fail every sync from
    // this cursor, forever, and no later mail would be taken. It is handed over as a rejected
    // document instead (a failed job with the reason, the failed label on the message).
    if (!unreadable.empty()) return reject_unreadable(emitter, id, unreadable, open);
    const std::string message_id = rfc822_message_id(raw);
    Bytes bytes(raw.begin(), raw.end());
    std::string().swap(raw);
    Document doc = Document::from_bytes(id + ".eml", "message/rfc822", std::move(bytes));
    doc.attributes["source"] = "gmail";
    doc.attributes["filename"] = id + ".eml";
    doc.attributes["gmail_id"] = id;
    if (auto t = j.value("threadId", ""); !t.empty()) doc.attributes["gmail_thread_id"] = t;
    if (!message_id.empty()) doc.attributes["message_id"] = message_id;
    if (const auto ms = to_u64(j.value("internalDate", json())); ms > 0)
        doc.attributes["received_at"] = iso8601_ms(static_cast<std::int64_t>(ms));
    const std::string doc_id = doc.id;
    {
        std::lock_guard lock(mutex_);
        in_flight_.insert(id);
        open.pending.insert(id);
    }
    if (!emitter.emit(std::move(doc), [this, id](const Outcome& o) { settle(id, o); })) {
        std::lock_guard lock(mutex_);
        in_flight_.erase(id);
        open.pending.erase(id);
        return false;
    }
    ctx_.log().log(LogLevel::Debug, fmt::format("Gmail message {} handed over", id), doc_id);
    ctx_.metrics().increment("gmail_messages_total");
    std::lock_guard lock(mutex_);
    ++emitted_;
    return true;
}

bool GmailSource::reject_unreadable(SourceEmitter& emitter, const std::string& id, const std::string& what, Checkpoint& open) {
    const std::string reason = fmt::format(
        "Gmail message {}: {}: the message cannot be read, so it is labelled {} and the sync goes on; "
        "open it in Gmail to check it (if many fail so, check gmail_url and any proxy in between)",
        id, what, failed_name_);
    // The document holds only the reason: there are no message bytes to give.
    Document doc = Document::from_bytes(id + ".eml", "text/plain", Bytes(reason.begin(), reason.end()));
    doc.attributes["source"] = "gmail";
    doc.attributes["filename"] = id + ".eml";
    doc.attributes["gmail_id"] = id;
    {
        std::lock_guard lock(mutex_);
        in_flight_.insert(id);
        open.pending.insert(id);
    }
    ctx_.log().warn("Gmail message {} cannot be read ({}): handed over as failed", id, what);
    ctx_.metrics().increment("gmail_unreadable_messages_total");
    if (!emitter.reject(std::move(doc), reason, [this, id](const Outcome& o) { settle(id, o); })) {
        std::lock_guard lock(mutex_);
        in_flight_.erase(id);
        open.pending.erase(id);
        return false;
    }
    return true;
}

bool GmailSource::sync_wanted() {
    const auto now = ctx_.clock().steady_now();
    std::lock_guard lock(mutex_);
    if (pushed_max_ != 0) {
        if (pushed_max_ > listed_to_) sync_due_ = true;
        pushed_max_ = 0;
    }
    if (now < next_sync_try_) return false;
    return sync_due_ || now - last_sync_ >= poll_interval_;
}

bool GmailSource::sync(SourceEmitter& emitter) {
    std::uint64_t start;
    Checkpoint* open;
    {
        std::lock_guard lock(mutex_);
        start = std::max(cursor_, listed_to_);
        checkpoints_.emplace_back();
        open = &checkpoints_.back();  // deque: stays valid while later ones are added and earlier ones removed
    }
    const std::uint64_t emitted_before = [&] {
        std::lock_guard lock(mutex_);
        return emitted_;
    }();
    bool stopped = false;
    std::uint64_t target = 0;
    const bool resync_now = [&] {
        std::lock_guard lock(mutex_);
        return std::exchange(resync_wanted_, false);
    }();
    try {
        std::vector<std::string> ids;
        std::uint64_t latest = start;
        bool resynced = false;
        try {
            if (resync_now) {
                target = resync(emitter, start, *open, stopped, "was ahead of the mailbox's history at start");
                resynced = true;
            } else {
                stopped = !list_history(emitter, start, ids, latest);
            }
        } catch (const ApiError& e) {
            if (e.status != 404) throw;
            target = resync(emitter, start, *open, stopped, "is older than Gmail keeps (404)");
            resynced = true;
        }
        if (!resynced && !stopped) {
            target = latest;
            for (const auto& id : ids) {
                if (emitter.stop_requested() || !take(emitter, id, *open)) {
                    stopped = true;
                    break;
                }
            }
        }
    } catch (const std::exception& e) {
        const auto now = ctx_.clock().steady_now();
        std::lock_guard lock(mutex_);
        checkpoints_.pop_back();  // what it emitted is still in flight; the next sync finds it again
        // A resync setup asked for (the stored cursor was ahead) is still owed: the cursor
        // stored since is the mailbox's, so nothing else would look for the mail in between.
        if (resync_now) resync_wanted_ = true;
        ++sync_failures_;
        next_sync_try_ = now + net::backoff_delay(sync_failures_, seconds(1), std::max<milliseconds>(poll_interval_, seconds(1)), 2.0,
                                                  milliseconds(500));
        last_error_ = e.what();
        ctx_.log().error("Gmail sync from history {} failed ({} time(s) in a row): {}", start, sync_failures_, e.what());
        return false;
    }
    std::uint64_t emitted_now;
    {
        std::lock_guard lock(mutex_);
        emitted_now = emitted_ - emitted_before;
        if (stopped) {
            checkpoints_.pop_back();
            if (resync_now) resync_wanted_ = true;  // still owed (see the catch above)
        } else {
            open->target = target;
            open->closed = true;
            listed_to_ = std::max(listed_to_, target);
            sync_due_ = false;
            last_sync_ = ctx_.clock().steady_now();
            last_sync_wall_ = ctx_.clock().now();
            sync_failures_ = 0;
            last_error_.clear();
            advance_locked();
        }
        ctx_.metrics().set_gauge("gmail_in_flight", static_cast<double>(in_flight_.size()));
    }
    ctx_.metrics().increment("gmail_syncs_total");
    if (emitted_now > 0) ctx_.log().info("Gmail sync from history {}: {} new message(s)", start, emitted_now);
    persist_cursor();
    return !stopped;
}

void GmailSource::advance_locked() {
    while (!checkpoints_.empty() && checkpoints_.front().closed && checkpoints_.front().pending.empty()) {
        cursor_ = std::max(cursor_, checkpoints_.front().target);
        checkpoints_.pop_front();
    }
}

void GmailSource::persist_cursor() {
    std::lock_guard persisting(persist_mutex_);
    std::uint64_t cursor, persisted, pending;
    {
        std::lock_guard lock(mutex_);
        cursor = cursor_;
        persisted = persisted_;
        pending = pending_notified_;
    }
    try {
        if (cursor > persisted) {
            ctx_.state().put(state_key("history_id"), std::to_string(cursor));
            std::lock_guard lock(mutex_);
            persisted_ = cursor;
        }
        if (pending != 0 && cursor >= pending) {
            ctx_.state().erase(state_key("pending_history_id"));
            std::lock_guard lock(mutex_);
            if (pending_notified_ == pending) pending_notified_ = 0;
        }
    } catch (const std::exception& e) {
        // Kept in memory; the next settle or poll writes it again.
        set_error(fmt::format("cannot store the Gmail cursor: {}", e.what()));
        ctx_.log().error("cannot store the Gmail cursor {}: {}", cursor, e.what());
    }
}

void GmailSource::modify_labels(const std::string& id, const std::vector<std::string>& add, const std::vector<std::string>& remove) {
    const json body{{"addLabelIds", add}, {"removeLabelIds", remove}};
    for (int attempt = 1; attempt <= kModifyAttempts; ++attempt) {
        std::string why;
        bool permanent = false;
        try {
            const auto r = gmail("POST", "/messages/" + net::url_encode(id) + "/modify", docpipe::json_text(body), "messages.modify");
            if (r.ok()) return;
            if (r.status == 404) {
                ctx_.log().info("Gmail message {} is gone; its labels were not changed", id);
                return;
            }
            why = fmt::format("HTTP {}: {}", r.status, answer_text(r));
            permanent = net::classify(r, ctx_.clock().now()).kind == net::FailureKind::Permanent;
            if (permanent) attempt = kModifyAttempts;  // no retry can help
        } catch (const std::exception& e) {
            why = e.what();
        }
        // Gmail failing for now: the labels are kept for a later poll at once rather than
        // tried again here, where each try's back-off held up the runtime's thread settling
        // this and every other document (up to 4 s a message during an outage). Tried here
        // again only when the state store cannot keep them.
        if (!permanent && attempt < kModifyAttempts && keep_for_later(id, body)) {
            ctx_.metrics().increment("gmail_label_failures_total");
            ctx_.log().warn("labelling Gmail message {} failed: {}; the labels are set by a later poll", id, why);
            return;
        }
        if (attempt >= kModifyAttempts) {
            ctx_.metrics().increment("gmail_label_failures_total");
            // Gmail was down for a while: the labels are kept in the state store and set by a
            // later poll, in this run or the next. Lost, the mail stayed unread and unlabelled
            // for good, looking untouched although its claim was booked.
            const bool kept = !permanent && keep_for_later(id, body);
            ctx_.log().error("cannot label Gmail message {} after {} tries: {}{}", id, attempt, why,
                             kept ? "; the labels are set once Gmail answers again" : "");
            return;
        }
        ctx_.log().warn("labelling Gmail message {} failed (try {}): {}", id, attempt, why);
        ctx_.clock().sleep_for(net::backoff_delay(attempt, milliseconds(500), seconds(8), 2.0, milliseconds(250)));
    }
}

bool GmailSource::keep_for_later(const std::string& id, const json& body) {
    try {
        ctx_.state().put(state_key("unlabelled/") + id, docpipe::json_text(body), std::chrono::hours(24 * 30));
        labels_may_wait_ = true;
        return true;
    } catch (const std::exception&) {
        return false;  // the store is down too
    }
}

void GmailSource::apply_pending_labels() {
    if (!labels_may_wait_.exchange(false)) return;
    const std::string prefix = state_key("unlabelled/");
    std::vector<std::string> keys;
    try {
        keys = ctx_.state().keys(prefix, 50);
    } catch (const std::exception&) {
        labels_may_wait_ = true;
        return;  // the store is down: the next poll looks again
    }
    // Any left (Gmail still failing, more than 50): looked for again at the next poll.
    struct LookAgain {
        std::atomic<bool>& flag;
        bool wanted = false;
        ~LookAgain() {
            if (wanted) flag = true;
        }
    } look_again{labels_may_wait_};
    look_again.wanted = keys.size() >= 50;
    for (const auto& key : keys) {
        look_again.wanted = true;  // until this one is done
        const std::string id = key.substr(prefix.size());
        try {
            const auto body = ctx_.state().get(key);
            if (!body) continue;
            const auto r = gmail("POST", "/messages/" + net::url_encode(id) + "/modify", *body, "messages.modify");
            const bool permanent = !r.ok() && r.status != 404 && net::classify(r, ctx_.clock().now()).kind == net::FailureKind::Permanent;
            if (!r.ok() && r.status != 404 && !permanent) return;  // Gmail still failing: the next poll tries again
            ctx_.state().erase(key);
            look_again.wanted = keys.size() >= 50;
            if (r.ok()) ctx_.log().info("Gmail message {} labelled now (Gmail had failed when it was settled)", id);
            else ctx_.log().warn("Gmail message {} could not be labelled: {}", id, r.status == 404 ? "it is gone" : answer_text(r));
        } catch (const std::exception&) {
            return;  // Gmail or the store unreachable: the next poll tries again
        }
    }
}

void GmailSource::settle(const std::string& id, const Outcome& outcome) {
    try {
        if (outcome.ok) modify_labels(id, {processed_id_}, {"UNREAD"});
        else modify_labels(id, {failed_id_}, {});
    } catch (...) {
        // modify_labels logs its own failures; an ack must never throw
    }
    try {
        {
            std::lock_guard lock(mutex_);
            in_flight_.erase(id);
            if (recent_set_.insert(id).second) recent_order_.push_back(id);
            while (recent_order_.size() > kRecentLimit) {
                recent_set_.erase(recent_order_.front());
                recent_order_.pop_front();
            }
            for (auto& c : checkpoints_) c.pending.erase(id);
            advance_locked();
            ctx_.metrics().set_gauge("gmail_in_flight", static_cast<double>(in_flight_.size()));
        }
        if (!outcome.ok) ctx_.metrics().increment("gmail_failed_messages_total");
        persist_cursor();
        if (mode_ == Mode::PubsubPull) ack_passed_notifications();
    } catch (const std::exception& e) {
        ctx_.log().error("settling Gmail message {}: {}", id, e.what());
    } catch (...) {
        ctx_.log().error("settling Gmail message {}: unknown error", id);
    }
}

// ---- Pub/Sub ------------------------------------------------------------------------------------

std::optional<std::pair<std::string, std::uint64_t>> GmailSource::read_notification(const std::string& data_b64) const {
    try {
        const json j = json::parse(net::base64_decode_any(data_b64));
        if (!j.is_object() || !j.contains("emailAddress") || !j["emailAddress"].is_string() || !j.contains("historyId")) return std::nullopt;
        const std::uint64_t history = to_u64(j["historyId"]);  // a number in real pushes, a string in Google's guide
        if (history == 0) return std::nullopt;
        return std::pair{lower(j["emailAddress"].get<std::string>()), history};
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

void GmailSource::pull_notifications() {
    const json body{{"maxMessages", max_messages_}, {"returnImmediately", true}};
    // returnImmediately is discouraged for busy subscriptions, but a held pull would outlast
    // poll()'s max_wait, and messages handed to a pull we stop waiting for sit out their deadline.
    const auto r = pubsub("POST", "/v1/" + subscription_ + ":pull", docpipe::json_text(body), "pull");
    if (!r.ok()) throw ApiError(fmt::format("Pub/Sub pull answered {}: {}", r.status, answer_text(r)), r.status);
    const json j = json::parse(r.body, nullptr, false);
    if (!j.is_object()) throw ApiError("Pub/Sub pull answered without a JSON object", r.status);
    {
        std::lock_guard lock(mutex_);
        pull_error_.clear();
    }
    std::vector<std::string> ack_now;
    std::size_t hints = 0;
    const auto now = ctx_.clock().steady_now();
    for (const auto& m : j.value("receivedMessages", json::array())) {
        if (!m.is_object() || !m.contains("ackId") || !m["ackId"].is_string()) continue;
        const std::string ack_id = m["ackId"].get<std::string>();
        const json message = m.value("message", json::object());
        const auto n = message.is_object() && message.contains("data") && message["data"].is_string()
                           ? read_notification(message["data"].get<std::string>())
                           : std::nullopt;
        std::lock_guard lock(mutex_);
        if (!n) {
            ctx_.log().warn("unreadable Pub/Sub notification {} acknowledged and ignored", message.value("messageId", "?"));
            ack_now.push_back(ack_id);
        } else if (n->first != address_) {
            ctx_.log().info("Pub/Sub notification for another mailbox acknowledged and ignored");
            ack_now.push_back(ack_id);
        } else if (n->second <= cursor_) {
            ack_now.push_back(ack_id);  // nothing new there: a no-op that must still be acked
        } else {
            ++hints;
            if (n->second > listed_to_) sync_due_ = true;
            if (held_.size() >= kHeldLimit) held_.erase(held_.begin());  // it comes back after its deadline
            held_.push_back({ack_id, n->second, now});
        }
    }
    ctx_.metrics().increment("gmail_notifications_total", static_cast<double>(ack_now.size() + hints));
    acknowledge(ack_now);
}

void GmailSource::acknowledge(const std::vector<std::string>& ack_ids) {
    for (std::size_t at = 0; at < ack_ids.size(); at += 1000) {
        const std::vector<std::string> chunk(ack_ids.begin() + static_cast<std::ptrdiff_t>(at),
                                             ack_ids.begin() + static_cast<std::ptrdiff_t>(std::min(ack_ids.size(), at + 1000)));
        try {
            const auto r = pubsub("POST", "/v1/" + subscription_ + ":acknowledge", docpipe::json_text(json{{"ackIds", chunk}}), "acknowledge");
            if (!r.ok())
                ctx_.log().warn("Pub/Sub acknowledge of {} notification(s) answered {}: {} (they come back; harmless)", chunk.size(), r.status,
                                answer_text(r));
        } catch (const std::exception& e) {
            ctx_.log().warn("Pub/Sub acknowledge of {} notification(s) failed: {} (they come back; harmless)", chunk.size(), e.what());
        }
    }
}

void GmailSource::ack_passed_notifications() {
    std::vector<std::string> ids;
    {
        std::lock_guard lock(mutex_);
        auto keep = std::partition(held_.begin(), held_.end(), [&](const Notification& n) { return n.history_id > cursor_; });
        for (auto it = keep; it != held_.end(); ++it) ids.push_back(it->ack_id);
        held_.erase(keep, held_.end());
    }
    if (!ids.empty()) acknowledge(ids);
}

void GmailSource::extend_deadlines() {
    std::vector<std::string> ids;
    const auto now = ctx_.clock().steady_now();
    {
        std::lock_guard lock(mutex_);
        if (in_flight_.empty()) return;  // nothing being worked on: let an unacked hint come back
        for (auto& n : held_) {
            if (n.extend_at > now) continue;
            ids.push_back(n.ack_id);
            n.extend_at = now + ack_extend_ / 2;
        }
    }
    for (std::size_t at = 0; at < ids.size(); at += 1000) {
        const std::vector<std::string> chunk(ids.begin() + static_cast<std::ptrdiff_t>(at),
                                             ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), at + 1000)));
        const json body{{"ackIds", chunk}, {"ackDeadlineSeconds", std::chrono::duration_cast<seconds>(ack_extend_).count()}};
        try {
            const auto r = pubsub("POST", "/v1/" + subscription_ + ":modifyAckDeadline", docpipe::json_text(body), "modifyAckDeadline");
            if (!r.ok()) ctx_.log().warn("Pub/Sub modifyAckDeadline answered {}: {}", r.status, answer_text(r));
        } catch (const std::exception& e) {
            ctx_.log().warn("Pub/Sub modifyAckDeadline failed: {}", e.what());
        }
    }
}

// ---- poll ---------------------------------------------------------------------------------------

void GmailSource::wait_for_input(SourceEmitter& emitter, milliseconds max_wait) {
    // Real time, not ctx.clock(): a push arrives on another thread and must wake us.
    const auto deadline = std::chrono::steady_clock::now() + max_wait;
    std::unique_lock lock(mutex_);
    while (!stopping_ && pushed_max_ == 0 && !emitter.stop_requested()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) break;
        wake_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(deadline - now, milliseconds(200)));
    }
}

void GmailSource::poll(SourceEmitter& emitter, const PollRequest& request) {
    if (!ensure_setup()) {
        if (!request.drain) wait_for_input(emitter, request.max_wait);
        return;
    }
    maybe_renew_watch();
    persist_cursor();  // a write that failed earlier
    apply_pending_labels();
    if (request.drain) {
        // `run --once`: this is the one round; no further sync is due, so health must not
        // call the time since it stale while the graph is still working on what it took.
        std::lock_guard lock(mutex_);
        drained_ = true;
    }

    auto take_hints = [&] {
        if (mode_ != Mode::PubsubPull) return;
        try {
            pull_notifications();
        } catch (const std::exception& e) {
            bool log_it;
            {
                std::lock_guard lock(mutex_);
                pull_error_ = e.what();
                const auto now = ctx_.clock().steady_now();
                log_it = pull_error_ != pull_error_logged_ || now - pull_error_logged_at_ >= std::chrono::minutes(1);
                if (log_it) {
                    pull_error_logged_ = pull_error_;
                    pull_error_logged_at_ = now;
                }
            }
            if (log_it) ctx_.log().warn("{} (said once a minute while it lasts)", e.what());
        }
    };
    take_hints();
    bool want = sync_wanted();
    if (!want && !request.drain && request.max_wait.count() > 0 && !emitter.stop_requested()) {
        wait_for_input(emitter, request.max_wait);
        take_hints();
        want = sync_wanted();
    }
    if (want && !emitter.stop_requested()) sync(emitter);
    if (mode_ == Mode::PubsubPull) {
        ack_passed_notifications();
        extend_deadlines();
    }
}

// ---- push ---------------------------------------------------------------------------------------

HookResponse GmailSource::handle_hook(const HookRequest& request) {
    auto answer = [](int status, std::string_view error = {}) {
        HookResponse r;
        r.status = status;
        if (!error.empty()) r.body = docpipe::json_text(json{{"error", error}});
        return r;
    };
    if (mode_ != Mode::PubsubPush) return answer(404, "this node takes no pushes: its mode is not pubsub_push");
    if (request.method != "POST") return answer(405, "only POST");
    if (verifier_) {
        std::string token;
        if (auto it = request.headers.find("authorization"); it != request.headers.end()) {
            const std::string& v = it->second;
            if (v.size() > 7 && lower(v.substr(0, 7)) == "bearer ") token = v.substr(7);
            while (!token.empty() && token.front() == ' ') token.erase(token.begin());
            while (!token.empty() && token.back() == ' ') token.pop_back();
        }
        const std::string why = token.empty() ? "no bearer token" : verifier_->verify(token, {push_audience_, push_service_account_, seconds(30)});
        if (!why.empty()) {
            ctx_.metrics().increment("gmail_push_refused_total");
            ctx_.log().warn("Pub/Sub push refused: {}", why);
            return answer(401, "the push's OIDC token is missing or invalid");
        }
    }
    if (!setup_done_) return answer(503, "the mailbox is not set up yet");
    const json body = json::parse(request.body, nullptr, false);
    std::optional<std::pair<std::string, std::uint64_t>> n;
    if (body.is_object() && body.contains("message") && body["message"].is_object() && body["message"].contains("data") &&
        body["message"]["data"].is_string())
        n = read_notification(body["message"]["data"].get<std::string>());
    if (!n) {
        // A poison message must still get a 2xx, or Pub/Sub sends it again forever.
        ctx_.log().warn("unreadable Pub/Sub push accepted and ignored");
        return answer(204);
    }
    if (n->first != address_) {
        ctx_.log().info("Pub/Sub push for another mailbox accepted and ignored");
        return answer(204);
    }
    const std::uint64_t history = n->second;
    {
        // Stored before the 204: once Pub/Sub has its ack, only this record says there is work.
        std::lock_guard persisting(persist_mutex_);
        std::uint64_t cursor, pending;
        {
            std::lock_guard lock(mutex_);
            cursor = cursor_;
            pending = pending_notified_;
        }
        if (history > cursor && history > pending) {
            try {
                ctx_.state().put(state_key("pending_history_id"), std::to_string(history));
            } catch (const std::exception& e) {
                ctx_.log().error("cannot record a Pub/Sub push (answered 503, Pub/Sub sends it again): {}", e.what());
                return answer(503, "cannot record the notification now");
            }
            std::lock_guard lock(mutex_);
            pending_notified_ = std::max(pending_notified_, history);
        }
    }
    {
        std::lock_guard lock(mutex_);
        if (history > cursor_) pushed_max_ = std::max(pushed_max_, history);
    }
    wake_.notify_all();
    ctx_.metrics().increment("gmail_notifications_total");
    return answer(204);
}

// ---- health -------------------------------------------------------------------------------------

HealthReport GmailSource::health() {
    auto h = client_.health("");
    if (h.status != Health::Healthy) return h;  // Gmail credentials refused, breaker open, mailbox not shared
    std::lock_guard lock(mutex_);
    if (!pubsub_auth_problem_.empty()) return {Health::Unavailable, pubsub_auth_problem_};
    if (!setup_done_) return {Health::Unavailable, last_error_.empty() ? "not connected to Gmail yet" : last_error_};
    const std::int64_t now_ms = epoch_ms(ctx_.clock().now());
    if (!topic_.empty() && mode_ != Mode::Poll) {
        if (watch_expiration_ms_ == 0 && !watch_error_.empty())
            return {Health::Degraded, fmt::format("the Gmail watch could not be set, so no notifications come; the mailbox is read "
                                                  "every {} s meanwhile: {}",
                                                  std::chrono::duration_cast<seconds>(poll_interval_).count(), watch_error_)};
        if (watch_expiration_ms_ <= now_ms)
            return {Health::Unavailable, fmt::format("the Gmail watch expired at {}; no notifications until it is renewed{}",
                                                     iso8601_ms(watch_expiration_ms_), watch_error_.empty() ? "" : ": " + watch_error_)};
        if (!watch_error_.empty())
            return {Health::Degraded,
                    fmt::format("renewing the Gmail watch fails (it expires {}): {}", iso8601_ms(watch_expiration_ms_), watch_error_)};
    }
    if (!last_error_.empty()) return {Health::Degraded, last_error_};
    // `run --once` read the mailbox by its history whatever the notifications said (they are
    // hints of what to read), so a failing pull lost nothing this round: the run is not marked
    // as having failed to read its input. The log said why the pull fails.
    const bool synced_this_round = drained_ && last_sync_ != std::chrono::steady_clock::time_point{};
    if (!pull_error_.empty() && !synced_this_round) return {Health::Degraded, pull_error_};
    const auto since = ctx_.clock().steady_now() - last_sync_;
    if (!drained_ && last_sync_ != std::chrono::steady_clock::time_point{} && since > 3 * poll_interval_ + std::chrono::minutes(1))
        return {Health::Degraded, fmt::format("no Gmail sync for {} s", std::chrono::duration_cast<seconds>(since).count())};
    std::string detail = fmt::format("history {}, {} message(s) in flight", cursor_, in_flight_.size());
    if (last_sync_wall_ != std::chrono::system_clock::time_point{}) detail += ", last sync " + iso8601_ms(epoch_ms(last_sync_wall_));
    if (!topic_.empty() && mode_ != Mode::Poll) detail += ", watch expires " + iso8601_ms(watch_expiration_ms_);
    if (!pull_error_.empty()) detail += "; the mailbox was read, but the Pub/Sub pull fails (a service run needs it): " + pull_error_;
    return {Health::Healthy, detail};
}

}  // namespace docpipe::google
