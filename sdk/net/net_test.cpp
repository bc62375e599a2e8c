// docpipe_net: the HTTP client, Retry-After, classification, the breaker and Google auth.
// The client and the auth talk real HTTP to the fakes in tests/fakes (loopback ports).
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "docpipe/net/google_auth.hpp"
#include "docpipe/net/http.hpp"
#include "fake_process.hpp"
#include "test_keys.hpp"

using namespace docpipe::net;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

using docpipe::test::new_rsa_key_pem;
using docpipe::test::TempFile;

namespace {

std::string fake(const char* name) { return std::string(DOCPIPE_SOURCE_DIR) + "/tests/fakes/" + name; }

HttpResponse response(long status, std::string body, Headers headers = {}) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return r;
}

}  // namespace

// ---- pure rules ----------------------------------------------------------------------------

TEST(RetryAfter, ReadsSecondsAndHttpDates) {
    const auto now = std::chrono::system_clock::from_time_t(1'800'000'000);
    EXPECT_EQ(parse_retry_after("120", now), milliseconds(120'000));
    EXPECT_EQ(parse_retry_after(" 0 ", now), milliseconds(0));
    // 1'800'000'030 = Fri, 15 Jan 2027 08:00:30 GMT
    EXPECT_EQ(parse_retry_after("Fri, 15 Jan 2027 08:00:30 GMT", now), milliseconds(30'000));
    EXPECT_EQ(parse_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", now), milliseconds(0)) << "a past date: now";
    EXPECT_FALSE(parse_retry_after("soon", now));
    EXPECT_FALSE(parse_retry_after("", now));
}

TEST(Classify, FollowsGooglesRetryRules) {
    const auto now = std::chrono::system_clock::now();
    const std::string rate_limited =
        R"({"error":{"code":403,"message":"User Rate Limit Exceeded","errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded"}],"status":"PERMISSION_DENIED"}})";
    auto c = classify(response(403, rate_limited), now);
    EXPECT_EQ(c.kind, FailureKind::RateLimited);
    EXPECT_EQ(c.reason, "userRateLimitExceeded");
    EXPECT_NE(c.message.find("User Rate Limit Exceeded"), std::string::npos);

    const std::string sheets_429 =
        R"({"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED"}]}})";
    c = classify(response(429, sheets_429, {{"retry-after", "3"}}), now);
    EXPECT_EQ(c.kind, FailureKind::RateLimited);
    EXPECT_EQ(c.reason, "RATE_LIMIT_EXCEEDED");
    EXPECT_EQ(c.retry_after, milliseconds(3000));

    EXPECT_EQ(classify(response(403, R"({"error":{"code":403,"message":"no","errors":[{"reason":"forbidden"}]}})"), now).kind,
              FailureKind::Permanent);
    for (long s : {408L, 500L, 502L, 503L, 504L}) EXPECT_EQ(classify(response(s, ""), now).kind, FailureKind::Retryable) << s;
    EXPECT_EQ(classify(response(401, ""), now).kind, FailureKind::Auth);
    EXPECT_EQ(classify(response(400, "bad"), now).kind, FailureKind::Permanent);
    EXPECT_EQ(classify(response(201, ""), now).kind, FailureKind::None);

    c = classify(response(400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})"), now);
    EXPECT_EQ(c.kind, FailureKind::Permanent);
    EXPECT_EQ(c.reason, "invalid_grant");
    EXPECT_NE(c.message.find("Invalid JWT Signature."), std::string::npos);
}

TEST(CircuitBreaker, OpensAfterTheThresholdAndLetsOneTrialThrough) {
    CircuitBreaker b(3, milliseconds(1000));
    const auto t0 = CircuitBreaker::clock::now();
    for (int i = 0; i < 2; ++i) {
        EXPECT_FALSE(b.refuse(t0));
        b.record_failure(t0, "503");
    }
    EXPECT_EQ(b.state(), CircuitBreaker::State::Closed);
    b.record_failure(t0, "503");
    EXPECT_EQ(b.state(), CircuitBreaker::State::Open);
    auto wait = b.refuse(t0 + milliseconds(400));
    ASSERT_TRUE(wait);
    EXPECT_EQ(*wait, milliseconds(600));
    EXPECT_FALSE(b.refuse(t0 + milliseconds(1000))) << "the trial call";
    EXPECT_TRUE(b.refuse(t0 + milliseconds(1001))) << "only one trial at a time";
    b.record_failure(t0 + milliseconds(1100), "still 503");
    EXPECT_EQ(b.state(), CircuitBreaker::State::Open) << "a failed trial opens it again";
    EXPECT_TRUE(b.refuse(t0 + milliseconds(1500)));
    EXPECT_FALSE(b.refuse(t0 + milliseconds(2200)));
    b.record_success();
    EXPECT_EQ(b.state(), CircuitBreaker::State::Closed);
    EXPECT_FALSE(b.refuse(t0 + milliseconds(2200)));
}

TEST(Base64, UrlAlphabetWithoutPaddingAndBack) {
    EXPECT_EQ(base64url_encode(""), "");
    EXPECT_EQ(base64url_encode("f"), "Zg");
    EXPECT_EQ(base64url_encode("fo"), "Zm8");
    EXPECT_EQ(base64url_encode("foo"), "Zm9v");
    EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
    EXPECT_EQ(base64url_encode(R"({"alg":"RS256","typ":"JWT"})"), "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9");
    EXPECT_EQ(base64_decode_any("-_8"), "\xfb\xff");
    EXPECT_EQ(base64_decode_any("+/8="), "\xfb\xff");
    EXPECT_THROW(base64_decode_any("a*b"), std::invalid_argument);
}

TEST(Jwt, SignatureVerifiesWithThePublicKey) {
    const std::string pem = new_rsa_key_pem();
    const std::string jwt = sign_jwt_rs256(json{{"iss", "sa@p.iam.gserviceaccount.com"}, {"iat", 1}}, pem, "kid-1");
    const auto first_dot = jwt.find('.'), second_dot = jwt.rfind('.');
    ASSERT_NE(first_dot, second_dot);
    const auto header = json::parse(base64_decode_any(jwt.substr(0, first_dot)));
    EXPECT_EQ(header["alg"], "RS256");
    EXPECT_EQ(header["kid"], "kid-1");
    const std::string signed_part = jwt.substr(0, second_dot);
    const std::string signature = base64_decode_any(jwt.substr(second_dot + 1));
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ASSERT_EQ(EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key), 1);
    EXPECT_EQ(EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                               reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()),
              1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    BIO_free(bio);
    EXPECT_THROW(sign_jwt_rs256(json::object(), "not a key"), std::invalid_argument);
}

TEST(GoogleCredentials, SaysWhatIsMissing) {
    try {
        GoogleCredentials::parse(R"({"type":"service_account","private_key":"x"})", "/etc/sa.json");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("/etc/sa.json"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("client_email"), std::string::npos);
    }
    EXPECT_THROW(GoogleCredentials::parse(R"({"type":"external_account"})", "f"), std::invalid_argument);
    EXPECT_THROW(GoogleCredentials::load_file("/nonexistent/sa.json"), std::invalid_argument);
    auto u = GoogleCredentials::parse(R"({"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"})", "f");
    EXPECT_EQ(u.type, GoogleCredentials::Type::AuthorizedUser);
    EXPECT_EQ(u.token_uri, kGoogleTokenUrl);
}

// ---- the client over real sockets ----------------------------------------------------------

TEST(HttpClient, SendsHeadersAndBodyAndReadsTheAnswer) {
    docpipe::test::FakeProcess ncb({"python3", fake("fake_ncb.py"), "--port", "0", "--api-key", "k"});
    HttpClient http;
    auto r = http.send({"POST", ncb.base_url() + "/api/v1/claims/submit",
                        {{"Content-Type", "application/json"}, {"Authorization", "Bearer wrong"}, {"X-Request-ID", "rid-1"}}, "{}", {}});
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.header("X-Request-ID").value_or(""), "rid-1") << "headers are matched case-insensitively";
    EXPECT_EQ(classify(r, std::chrono::system_clock::now()).kind, FailureKind::Auth);
    EXPECT_EQ(http.send({"GET", ncb.base_url() + "/api/v1/health", {}, "", {}}).status, 200);
}

TEST(HttpClient, ATimeoutIsATransportErrorThatSaysSo) {
    docpipe::test::FakeProcess ncb({"python3", fake("fake_ncb.py"), "--port", "0", "--api-key", "k"});
    docpipe::test::fake_control(ncb.base_url(), "POST", "/_fake/script",
                                R"({"target":"health","responses":[{"status":200,"body":"late","delay_ms":3000}]})");
    HttpClient http;
    try {
        http.send({"GET", ncb.base_url() + "/api/v1/health", {}, "", milliseconds(300)});
        FAIL() << "no timeout";
    } catch (const TransportError& e) {
        EXPECT_TRUE(e.timed_out) << e.what();
        EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
    }
}

// An answer larger than the client takes, plain or as a small gzip that unpacks to more, is
// cut off with an error that says so, instead of filling the process's memory.
TEST(HttpClient, AnAnswerOverTheLimitIsRefusedPlainOrCompressed) {
    docpipe::test::FakeProcess ncb({"python3", fake("fake_ncb.py"), "--port", "0", "--api-key", "k"});
    const std::string big(3u << 20, 'x');
    docpipe::test::fake_control(ncb.base_url(), "POST", "/_fake/script",
                                json{{"target", "health"}, {"responses", json::array({{{"status", 200}, {"body", big}},
                                                                                       {{"status", 200}, {"body", big}, {"gzip", true}},
                                                                                       {{"status", 200}, {"body", "small"}, {"gzip", true}}})}}
                                    .dump());
    HttpClientOptions options;
    options.max_response_bytes = 1u << 20;
    HttpClient http(options);
    for (const char* kind : {"plain", "gzip"}) {
        try {
            http.send({"GET", ncb.base_url() + "/api/v1/health", {}, "", {}});
            ADD_FAILURE() << kind << ": a 3 MiB answer was taken";
        } catch (const TransportError& e) {
            EXPECT_NE(std::string(e.what()).find("larger than 1048576 bytes"), std::string::npos) << kind << ": " << e.what();
            EXPECT_FALSE(e.timed_out);
            EXPECT_TRUE(e.answer_too_large) << kind;
        }
    }
    EXPECT_EQ(http.send({"GET", ncb.base_url() + "/api/v1/health", {}, "", {}}).body, "small") << "a compressed answer under the limit is unpacked";
}

// A server that answers GETs with keep-alive and closes the connection on a POST without a
// word (as if it applied it and the answer got lost), counting the POSTs it received.
class ClosesOnPost {
public:
    ClosesOnPost() {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 8) != 0 ||
            ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("ClosesOnPost: cannot listen");
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~ClosesOnPost() {
        stop_ = true;
        thread_.join();
        ::close(listen_fd_);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    int posts() const { return posts_.load(); }

private:
    void serve() {
        std::vector<std::thread> sessions;
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd >= 0) sessions.emplace_back([this, fd] { session(fd); });
        }
        for (auto& s : sessions) s.join();
    }
    void session(int fd) {
        std::string got;
        while (!stop_) {
            const auto end = got.find("\r\n\r\n");
            if (end != std::string::npos) {
                const bool post = got.rfind("POST", 0) == 0;
                got.erase(0, end + 4);
                if (post) {
                    ++posts_;
                    break;  // closed without an answer
                }
                const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";
                if (::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL) < 0) break;
                continue;
            }
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            got.append(buf, static_cast<std::size_t>(n));
        }
        ::close(fd);
    }
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> posts_{0};
    std::thread thread_;
};

// libcurl sent a POST again by itself when the kept-alive connection it reused died before an
// answer: a Sheets row or a Drive file the server had applied was made twice, unseen by the
// sink. A POST now goes on a new connection, so the lost answer reaches the caller instead.
TEST(HttpClient, APostWhoseAnswerIsLostIsNotSentAgainBehindTheCallersBack) {
    ClosesOnPost server;
    HttpClient http({milliseconds(2000), milliseconds(5000), "", "t"});
    ASSERT_EQ(http.send({"GET", server.url() + "/", {}, "", {}}).body, "ok");  // leaves a kept-alive connection
    EXPECT_THROW(http.send({"POST", server.url() + "/append", {{"Content-Type", "application/json"}}, "{}", {}}), TransportError);
    EXPECT_EQ(server.posts(), 1) << "the POST reached the server more than once";
}

TEST(HttpClient, NothingListeningIsATransportError) {
    int port;
    { docpipe::test::FakeProcess ncb({"python3", fake("fake_ncb.py"), "--port", "0", "--api-key", "k"}); port = ncb.port(); }
    HttpClient http({milliseconds(500), milliseconds(1000), "", "t"});
    try {
        http.send({"GET", "http://127.0.0.1:" + std::to_string(port) + "/v1/claims?member=M1", {}, "", {}});
        ADD_FAILURE() << "nothing listens, yet an answer came";
    } catch (const TransportError& e) {
        EXPECT_FALSE(e.answer_too_large) << e.what();
        // Which endpoint, without the query (it may carry ids): "GET 127.0.0.1" said too little.
        EXPECT_NE(std::string(e.what()).find("GET 127.0.0.1:" + std::to_string(port) + "/v1/claims:"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("member"), std::string::npos) << e.what();
    }
}

// ---- Google auth against the fake token endpoint -------------------------------------------

class GoogleAuthTest : public ::testing::Test {
protected:
    void SetUp() override {
        key_pem = new_rsa_key_pem();
        sa_file = std::make_unique<TempFile>(json{{"type", "service_account"}, {"project_id", "p"}, {"private_key_id", "k1"},
                                                  {"private_key", key_pem}, {"client_email", "docpipe@p.iam.gserviceaccount.com"},
                                                  {"client_id", "1"}, {"token_uri", "https://oauth2.googleapis.com/token"}}
                                                 .dump());
        user_file = std::make_unique<TempFile>(
            R"({"type":"authorized_user","client_id":"cid.apps.googleusercontent.com","client_secret":"sec","refresh_token":"1//rt"})");
        google = std::make_unique<docpipe::test::FakeProcess>(std::vector<std::string>{
            "python3", fake("fake_google.py"), "--port", "0", "--service-account", sa_file->path.string(), "--authorized-user",
            user_file->path.string()});
    }
    GoogleAuthOptions options() {
        GoogleAuthOptions o;
        o.scopes = {"https://www.googleapis.com/auth/spreadsheets"};
        o.token_url = google->base_url() + "/token";
        o.initial_backoff = milliseconds(20);
        return o;
    }
    int issued() { return json::parse(docpipe::test::fake_control(google->base_url(), "GET", "/_fake/tokens"))["issued"].get<int>(); }

    std::string key_pem;
    std::unique_ptr<TempFile> sa_file, user_file;
    std::unique_ptr<docpipe::test::FakeProcess> google;
    HttpClient http;
};

TEST_F(GoogleAuthTest, ServiceAccountTokenIsFetchedOnceAndCached) {
    GoogleAuth auth(GoogleCredentials::load_file(sa_file->path), options(), http);
    const std::string a = auth.access_token();
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(auth.access_token(), a);
    EXPECT_EQ(issued(), 1);
    EXPECT_EQ(auth.authorization(), "Bearer " + a);
    // The token works on the fake's APIs (it checks the bearer).
    docpipe::test::fake_control(google->base_url(), "POST", "/_fake/sheets", R"({"spreadsheet_id":"s1","tabs":["Sheet1"]})");
    auto r = http.send({"GET", google->base_url() + "/v4/spreadsheets/s1", {{"Authorization", auth.authorization()}}, "", {}});
    EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(GoogleAuthTest, RefreshesBeforeExpiry) {
    docpipe::test::fake_control(google->base_url(), "POST", "/_fake/token_lifetime", R"({"seconds":3})");
    auto o = options();
    o.refresh_before = seconds(2);
    GoogleAuth auth(GoogleCredentials::load_file(sa_file->path), o, http);
    const std::string first = auth.access_token();
    EXPECT_EQ(auth.access_token(), first) << "3 s left, 2 s margin: still good";
    std::this_thread::sleep_for(milliseconds(1200));
    const std::string second = auth.access_token();
    EXPECT_NE(second, first) << "inside the margin: fetched again before it expired";
    EXPECT_EQ(issued(), 2);
}

TEST_F(GoogleAuthTest, AuthorizedUserRefreshToken) {
    GoogleAuth auth(GoogleCredentials::load_file(user_file->path), options(), http);
    EXPECT_FALSE(auth.access_token().empty());
}

TEST_F(GoogleAuthTest, ARejectedKeyIsAnAuthErrorThatSaysWhatToDoAndIsNotRetried) {
    auto wrong = json::parse(std::ifstream(sa_file->path));
    wrong["private_key"] = new_rsa_key_pem();  // not the key the fake knows: a deleted/rotated key
    TempFile wrong_file(wrong.dump());
    GoogleAuth auth(GoogleCredentials::load_file(wrong_file.path), options(), http);
    try {
        auth.access_token();
        FAIL();
    } catch (const AuthError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("invalid_grant"), std::string::npos) << what;
        EXPECT_NE(what.find("create a new key"), std::string::npos) << what;
        EXPECT_EQ(what.find("PRIVATE KEY"), std::string::npos) << "never the key itself";
    }
    EXPECT_TRUE(auth.status().refused);
    auto requests = json::parse(docpipe::test::fake_control(google->base_url(), "GET", "/_fake/requests?target=token"));
    EXPECT_EQ(requests.size(), 1u) << "invalid_grant is not retried";
}

// A token endpoint that hangs: every writer queued behind the one fetching asked again when its
// turn came, each ask up to `attempts` timeouts long (211 s for one email in a probe). Those that
// waited through a failed fetch now take its answer.
TEST_F(GoogleAuthTest, ThreadsThatWaitedThroughAFailedFetchShareItsAnswer) {
    docpipe::test::fake_control(google->base_url(), "POST", "/_fake/script",
                                R"({"target":"token","for_seconds":60,"response":{"status":503,"body":{"error":"temporarily_unavailable"},"delay_ms":800}})");
    auto o = options();
    o.attempts = 1;
    GoogleAuth auth(GoogleCredentials::load_file(sa_file->path), o, http);
    std::atomic<int> failed{0};
    std::vector<std::thread> writers;
    for (int i = 0; i < 4; ++i)
        writers.emplace_back([&] {
            try {
                auth.access_token();
            } catch (const std::exception& e) {
                if (std::string(e.what()).find("temporarily_unavailable") != std::string::npos) ++failed;
            }
        });
    for (auto& w : writers) w.join();
    EXPECT_EQ(failed.load(), 4) << "each writer learns why";
    const auto asked = json::parse(docpipe::test::fake_control(google->base_url(), "GET", "/_fake/requests?target=token")).size();
    EXPECT_LT(asked, 4u) << "every queued writer asked the failing endpoint again";
}

// A token endpoint that keeps failing is not asked again by every try of every held document:
// its failure is the answer for a quiet spell that doubles while it keeps failing, and a token
// that comes ends it.
TEST_F(GoogleAuthTest, AFailedFetchIsTheAnswerForAQuietSpellThatDoublesWhileItKeepsFailing) {
    docpipe::test::fake_control(google->base_url(), "POST", "/_fake/script",
                                R"({"target":"token","responses":[{"status":503,"body":{"error":"temporarily_unavailable"},"count":2}]})");
    auto o = options();
    o.attempts = 1;
    o.quiet_after_failure = milliseconds(1000);
    o.quiet_after_failure_max = milliseconds(10'000);
    GoogleAuth auth(GoogleCredentials::load_file(sa_file->path), o, http);
    auto asked = [&] { return json::parse(docpipe::test::fake_control(google->base_url(), "GET", "/_fake/requests?target=token")).size(); };
    auto failure = [&] {
        try {
            auth.access_token();
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string("(a token came)");
    };
    EXPECT_NE(failure().find("temporarily_unavailable"), std::string::npos);
    EXPECT_EQ(asked(), 1u);
    const std::string remembered = failure();
    EXPECT_NE(remembered.find("temporarily_unavailable"), std::string::npos) << remembered;
    EXPECT_NE(remembered.find("asked again in"), std::string::npos) << remembered;
    EXPECT_EQ(asked(), 1u) << "asked again inside the quiet spell";
    EXPECT_FALSE(auth.status().has_token);

    std::this_thread::sleep_for(milliseconds(1100));
    EXPECT_NE(failure().find("temporarily_unavailable"), std::string::npos);
    EXPECT_EQ(asked(), 2u) << "the spell is over: asked again";
    std::this_thread::sleep_for(milliseconds(200));
    failure();
    EXPECT_EQ(asked(), 2u) << "a second failure in a row doubles the spell (2 s)";

    std::this_thread::sleep_for(milliseconds(2000));
    EXPECT_FALSE(auth.access_token().empty()) << "the endpoint is back";
    EXPECT_EQ(asked(), 3u);
    auth.invalidate();
    EXPECT_FALSE(auth.access_token().empty());
    EXPECT_EQ(asked(), 4u) << "a token ended the quiet spell: a new one is fetched at once";
}

// A token endpoint that accepts the connection and never answers costs `request_timeout` per
// try, not the client's total timeout (30 s in the Google plugins, sized for uploads).
TEST_F(GoogleAuthTest, ATokenEndpointThatHangsIsGivenUpOnAfterRequestTimeout) {
    docpipe::test::fake_control(google->base_url(), "POST", "/_fake/script",
                                R"({"target":"token","for_seconds":60,"response":{"status":200,"body":{},"delay_ms":6000}})");
    auto o = options();
    o.attempts = 1;
    o.request_timeout = milliseconds(300);
    GoogleAuth auth(GoogleCredentials::load_file(sa_file->path), o, http);  // the client's own timeout is 30 s
    const auto start = std::chrono::steady_clock::now();
    try {
        auth.access_token();
        ADD_FAILURE() << "a token came from an endpoint that never answers";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("unreachable"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5)) << "waited for the answer, not for request_timeout";
}

TEST_F(GoogleAuthTest, ServerErrorsAreRetried) {
    docpipe::test::fake_control(google->base_url(), "POST", "/_fake/script",
                                R"({"target":"token","responses":[{"status":500,"body":{"error":"internal_failure"},"count":2}]})");
    GoogleAuth auth(GoogleCredentials::load_file(sa_file->path), options(), http);
    EXPECT_FALSE(auth.access_token().empty());
    EXPECT_EQ(json::parse(docpipe::test::fake_control(google->base_url(), "GET", "/_fake/requests?target=token")).size(), 3u);
}
