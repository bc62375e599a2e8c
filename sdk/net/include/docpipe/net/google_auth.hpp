// docpipe network support — Google OAuth 2.0 access tokens for the Google plugins.
//
// Two kinds of credentials file, as Google issues them:
// - service account (`"type": "service_account"`): an RS256-signed JWT assertion, signed
//   here with OpenSSL, exchanged at the file's `token_uri` (optionally acting for a
//   Workspace user through domain-wide delegation: `subject`);
// - authorized user (`"type": "authorized_user"`): a refresh token exchanged for access
//   tokens (consumer Gmail accounts, OAuth desktop clients).
//
// Contract
// - Ownership: GoogleAuth keeps a reference to the HttpClient, which must outlive it.
//   Credentials are copied in and never leave it: no accessor returns the key or the
//   refresh token, and no error message contains them.
// - Threading: access_token() is safe from any thread; one token request at a time, the
//   other callers wait for its result.
// - Caching: a token is reused until `refresh_before` ahead of its expiry.
// - Errors: AuthError when Google refused the credentials (`invalid_grant`,
//   `unauthorized_client`, ...): no retry can help until a person fixes the credentials,
//   and the message says what to do. A transport failure or a 5xx/429 that persists after
//   `attempts` tries throws std::runtime_error (try again later).
// - Failures are remembered: after a fetch that failed (either way), access_token() throws that
//   same error at once, without asking the endpoint, for a quiet spell that starts at
//   `quiet_after_failure` and doubles with each failed fetch in a row up to
//   `quiet_after_failure_max`. A token endpoint that hangs would otherwise cost every caller
//   `attempts` timeouts on every try of every held document. A fetch that succeeds ends it.
#pragma once

#include <chrono>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "docpipe/net/http.hpp"

namespace docpipe::net {

inline constexpr const char* kGoogleTokenUrl = "https://oauth2.googleapis.com/token";

struct GoogleCredentials {
    enum class Type { ServiceAccount, AuthorizedUser };
    Type type = Type::ServiceAccount;
    std::string client_email, private_key_pem, private_key_id, token_uri;  // service account
    std::string client_id, client_secret, refresh_token;                   // authorized user
    std::string origin;  // where it was read from, for messages

    // Throws std::invalid_argument naming `origin` and what is missing or wrong.
    static GoogleCredentials parse(std::string_view json_text, std::string origin);
    static GoogleCredentials load_file(const std::filesystem::path& path);
    // Who these credentials act as: the service account's e-mail or the OAuth client id.
    std::string account() const;
};

// base64url without padding (JWT encoding).
std::string base64url_encode(std::string_view bytes);
// Both alphabets, padding optional. Throws std::invalid_argument on other characters.
std::string base64_decode_any(std::string_view text);

// `header.claims.signature`, RS256 (RSASSA-PKCS1-v1_5 with SHA-256). The header is
// {"alg":"RS256","typ":"JWT"} plus "kid" when given. Throws std::invalid_argument when the
// key cannot be read.
std::string sign_jwt_rs256(const nlohmann::json& claims, const std::string& private_key_pem, const std::string& kid = {});

class AuthError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct GoogleAuthOptions {
    std::vector<std::string> scopes;
    std::string token_url;  // empty: the service account's token_uri, or Google's endpoint
    std::string subject;    // service account only: the Workspace user to act for
    std::chrono::seconds refresh_before{225};
    int attempts = 3;  // token requests, for 5xx, 429 and transport failures
    std::chrono::milliseconds initial_backoff{1000};
    // The longest one token request may take. Google answers in well under a second; the
    // HttpClient's own total timeout (often 30 s, sized for uploads) applies when it is lower.
    std::chrono::milliseconds request_timeout{10'000};
    // See "Failures are remembered" above; 0 turns it off.
    std::chrono::milliseconds quiet_after_failure{500};
    std::chrono::milliseconds quiet_after_failure_max{60'000};
};

class GoogleAuth {
public:
    GoogleAuth(GoogleCredentials credentials, GoogleAuthOptions options, const HttpClient& http);

    std::string access_token();
    // "Bearer <token>", for the Authorization header.
    std::string authorization() { return "Bearer " + access_token(); }
    // An API answered 401 with the current token: fetch a new one next time.
    void invalidate();

    struct Status {
        bool has_token = false;
        bool refused = false;  // the last attempt ended in AuthError
        std::string last_error;
        std::chrono::system_clock::time_point expires_at{};
        int tokens_fetched = 0;
    };
    Status status() const;
    std::string account() const { return credentials_.account(); }

private:
    std::string fetch();  // called with fetch_mutex_ held
    std::string token_request_body() const;

    const GoogleCredentials credentials_;
    const GoogleAuthOptions options_;
    const HttpClient& http_;
    std::string token_url_;
    std::mutex fetch_mutex_;    // one token request at a time
    mutable std::mutex mutex_;  // guards the fields below; never held across a request
    std::string token_;
    std::chrono::system_clock::time_point expires_at_{};
    bool refused_ = false;
    std::string last_error_;
    int fetched_ = 0;
    // When the last fetch failed: a thread that waited for fetch_mutex_ while it did takes that
    // answer instead of asking a token endpoint that just failed (or hung) all over again.
    std::chrono::steady_clock::time_point failed_at_{};
    int failed_in_a_row_ = 0;
    std::chrono::steady_clock::time_point quiet_until_{};  // no token request before this
};

}  // namespace docpipe::net
