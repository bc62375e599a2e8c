#include "docpipe/net/google_auth.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace docpipe::net {

// ---- credentials --------------------------------------------------------------------------

GoogleCredentials GoogleCredentials::parse(std::string_view json_text, std::string origin) {
    const auto j = nlohmann::json::parse(json_text, nullptr, false);
    if (!j.is_object())
        throw std::invalid_argument(origin + ": not a JSON object; expected a Google credentials file (service account key or authorized user)");
    GoogleCredentials c;
    c.origin = origin;
    auto need = [&](const char* key) {
        if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty())
            throw std::invalid_argument(origin + ": the credentials file has no \"" + key + "\"");
        return j[key].get<std::string>();
    };
    const std::string type = j.value("type", "");
    if (type == "service_account") {
        c.type = Type::ServiceAccount;
        c.client_email = need("client_email");
        c.private_key_pem = need("private_key");
        c.private_key_id = j.value("private_key_id", "");
        c.token_uri = j.value("token_uri", kGoogleTokenUrl);
    } else if (type == "authorized_user") {
        c.type = Type::AuthorizedUser;
        c.client_id = need("client_id");
        c.client_secret = need("client_secret");
        c.refresh_token = need("refresh_token");
        c.token_uri = kGoogleTokenUrl;  // as Google's own libraries do for this type
    } else {
        throw std::invalid_argument(origin + ": unsupported credentials \"type\": \"" + type +
                                    "\" (expected \"service_account\" or \"authorized_user\")");
    }
    return c;
}

GoogleCredentials GoogleCredentials::load_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::invalid_argument(path.string() + ": cannot read the Google credentials file (does it exist, may this user read it?)");
    std::stringstream text;
    text << in.rdbuf();
    return parse(text.str(), path.string());
}

std::string GoogleCredentials::account() const { return type == Type::ServiceAccount ? client_email : client_id; }

// ---- base64 and JWT -----------------------------------------------------------------------

std::string base64url_encode(std::string_view bytes) {
    static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                           static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (i < bytes.size()) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        if (i + 1 < bytes.size()) out += alphabet[(v >> 6) & 63];
    }
    return out;
}

std::string base64_decode_any(std::string_view text) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (char ch : text) {
        int v;
        if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
        else if (ch == '+' || ch == '-') v = 62;
        else if (ch == '/' || ch == '_') v = 63;
        else if (ch == '=' || ch == '\n' || ch == '\r') continue;
        else throw std::invalid_argument("not base64: unexpected character");
        buffer = (buffer << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
        }
    }
    return out;
}

std::string sign_jwt_rs256(const nlohmann::json& claims, const std::string& private_key_pem, const std::string& kid) {
    nlohmann::json header{{"alg", "RS256"}, {"typ", "JWT"}};
    if (!kid.empty()) header["kid"] = kid;
    const std::string signing_input = base64url_encode(header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) + "." + base64url_encode(claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));

    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())), BIO_free);
    // Reads PKCS#8 ("BEGIN PRIVATE KEY") and PKCS#1 ("BEGIN RSA PRIVATE KEY") alike.
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr,
                                                            EVP_PKEY_free);
    if (!key) throw std::invalid_argument("the private key is not a PEM RSA key (check \"private_key\" in the credentials file)");
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::size_t length = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
        throw std::invalid_argument("cannot sign with the private key (is it an RSA key?)");
    std::string signature(length, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
        throw std::invalid_argument("signing the token request failed");
    signature.resize(length);
    return signing_input + "." + base64url_encode(signature);
}

// ---- tokens -------------------------------------------------------------------------------

GoogleAuth::GoogleAuth(GoogleCredentials credentials, GoogleAuthOptions options, const HttpClient& http)
    : credentials_(std::move(credentials)), options_(std::move(options)), http_(http) {
    token_url_ = !options_.token_url.empty() ? options_.token_url : credentials_.token_uri;
    if (token_url_.empty()) token_url_ = kGoogleTokenUrl;
    if (options_.scopes.empty()) throw std::invalid_argument("GoogleAuth: no OAuth scopes given");
}

std::string GoogleAuth::token_request_body() const {
    if (credentials_.type == GoogleCredentials::Type::AuthorizedUser) {
        return form_encode({{"grant_type", "refresh_token"},
                            {"client_id", credentials_.client_id},
                            {"client_secret", credentials_.client_secret},
                            {"refresh_token", credentials_.refresh_token}});
    }
    std::string scope;
    for (const auto& s : options_.scopes) scope += (scope.empty() ? "" : " ") + s;
    const auto iat = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    // The audience is the URL the assertion is sent to (what Google checks it against).
    nlohmann::json claims{{"iss", credentials_.client_email}, {"scope", scope}, {"aud", token_url_}, {"iat", iat}, {"exp", iat + 3600}};
    if (!options_.subject.empty()) claims["sub"] = options_.subject;
    return form_encode({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                        {"assertion", sign_jwt_rs256(claims, credentials_.private_key_pem, credentials_.private_key_id)}});
}

std::string GoogleAuth::access_token() {
    auto fresh = [&] {
        std::lock_guard lock(mutex_);
        const auto now = std::chrono::system_clock::now();
        return !token_.empty() && now + options_.refresh_before < expires_at_ ? token_ : std::string();
    };
    if (auto t = fresh(); !t.empty()) return t;
    const auto waited_since = std::chrono::steady_clock::now();
    std::lock_guard fetching(fetch_mutex_);
    if (auto t = fresh(); !t.empty()) return t;  // another thread fetched it meanwhile
    {
        std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        // Another thread's fetch failed while this one waited, or the last fetch failed so
        // recently that asking again would only fail (or hang) again: its answer is this one's.
        // Each queued writer, and each try of a held document, used to ask again, every ask
        // up to `attempts` timeouts long.
        if (failed_at_ >= waited_since || now < quiet_until_) {
            std::string why = last_error_;
            if (now < quiet_until_) {
                const auto left = std::chrono::ceil<std::chrono::seconds>(quiet_until_ - now).count();
                why += " (the token endpoint is asked again in " + std::to_string(left) + " s)";
            }
            if (refused_) throw AuthError(why);
            throw std::runtime_error(why);
        }
    }
    return fetch();
}

void GoogleAuth::invalidate() {
    std::lock_guard lock(mutex_);
    token_.clear();
}

GoogleAuth::Status GoogleAuth::status() const {
    std::lock_guard lock(mutex_);
    return {!token_.empty(), refused_, last_error_, expires_at_, fetched_};
}

std::string GoogleAuth::fetch() {
    const std::string who = credentials_.account();
    auto remember_error = [&](const std::string& why, bool refused) {
        std::lock_guard lock(mutex_);
        last_error_ = why;
        refused_ = refused;
        failed_at_ = std::chrono::steady_clock::now();
        ++failed_in_a_row_;
        if (options_.quiet_after_failure.count() > 0) {
            // 0.5 s, 1 s, 2 s ... : a blip costs a moment, an outage asks once a minute.
            auto quiet = options_.quiet_after_failure;
            for (int i = 1; i < failed_in_a_row_ && quiet < options_.quiet_after_failure_max; ++i) quiet *= 2;
            quiet_until_ = failed_at_ + std::min(quiet, std::max(options_.quiet_after_failure, options_.quiet_after_failure_max));
        }
    };
    std::string last;
    // A zero or negative option means the client's own timeout.
    std::chrono::milliseconds request_timeout = http_.options().total_timeout;
    if (options_.request_timeout.count() > 0 && (request_timeout.count() <= 0 || options_.request_timeout < request_timeout))
        request_timeout = options_.request_timeout;
    for (int attempt = 1; attempt <= std::max(1, options_.attempts); ++attempt) {
        if (attempt > 1) std::this_thread::sleep_for(backoff_delay(attempt - 1, options_.initial_backoff, std::chrono::seconds(30), 2.0,
                                                                   options_.initial_backoff / 10));
        HttpResponse r;
        try {
            r = http_.send({"POST", token_url_, {{"Content-Type", "application/x-www-form-urlencoded"}}, token_request_body(), request_timeout});
        } catch (const TransportError& e) {
            last = std::string("token endpoint unreachable: ") + e.what();
            continue;
        }
        const auto c = classify(r, std::chrono::system_clock::now());
        if (c.kind == FailureKind::None) {
            const auto j = nlohmann::json::parse(r.body, nullptr, false);
            std::string token;
            std::int64_t expires_in = 3600;
            if (j.is_object() && j.contains("access_token") && j["access_token"].is_string()) token = j["access_token"].get<std::string>();
            if (j.is_object() && j.contains("expires_in")) {
                // A number in practice, but Google's own libraries also accept a string.
                if (j["expires_in"].is_number()) expires_in = j["expires_in"].get<std::int64_t>();
                else if (j["expires_in"].is_string()) expires_in = std::atoll(j["expires_in"].get<std::string>().c_str());
            }
            if (token.empty()) {
                last = "the token endpoint answered 2xx without an access_token";
                continue;
            }
            std::lock_guard lock(mutex_);
            token_ = token;
            expires_at_ = std::chrono::system_clock::now() + std::chrono::seconds(expires_in);
            refused_ = false;
            last_error_.clear();
            failed_in_a_row_ = 0;
            quiet_until_ = {};
            ++fetched_;
            return token;
        }
        const bool retry_kind = c.kind == FailureKind::Retryable || c.kind == FailureKind::RateLimited ||
                                c.reason == "internal_failure" || c.reason == "server_error" || c.reason == "temporarily_unavailable";
        if (!retry_kind) {
            std::string what_to_do;
            if (c.reason == "invalid_grant")
                what_to_do = credentials_.type == GoogleCredentials::Type::ServiceAccount
                                 ? "the service-account key was deleted or rotated, or this machine's clock is wrong: create a new key "
                                   "for " + who + ", install it (" + credentials_.origin + ") and check the clock (NTP)"
                                 : "the refresh token has expired or was revoked: authorize the OAuth client again and install the "
                                   "new credentials (" + credentials_.origin + ")";
            else if (c.reason == "unauthorized_client")
                what_to_do = "grant domain-wide delegation for these scopes to the service account's client id in the Workspace "
                             "admin console, or drop `subject`";
            else
                what_to_do = "check the credentials file " + credentials_.origin + " and the token URL " + token_url_;
            const std::string why = "Google refused the credentials of " + who + " (" + c.message + "): " + what_to_do;
            remember_error(why, true);
            throw AuthError(why);
        }
        last = "token endpoint: " + c.message;
        if (c.retry_after && *c.retry_after > std::chrono::seconds(30)) break;  // not worth blocking a worker for
    }
    remember_error(last, false);
    throw std::runtime_error(last);
}

}  // namespace docpipe::net
