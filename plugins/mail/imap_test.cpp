// source.imap, loaded from the plugin file, against a real Dovecot that each test starts on
// free loopback ports (tests/support/dovecot_server.hpp): IDLE, polling, flags and moves only
// after the ack, restart from the cursor, a UIDVALIDITY change, a refused login, the TLS
// modes; XOAUTH2 against a Dovecot whose oauth2 passdb asks a token introspection endpoint the
// test serves (httplib); and `docpipe run --once` with source.imap -> transform.mime -> sink.files.
// Skipped (with the reason) only where Dovecot is not installed; install-deps.sh installs it.
#include <gtest/gtest.h>
#include <httplib.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "base64.hpp"
#include "docpipe/testing.hpp"
#include "dovecot_server.hpp"

using namespace docpipe;
namespace fs = std::filesystem;
using docpipe::test::DovecotServer;
using docpipe::testing::NodeRunner;
using docpipe::testing::SourceItem;
using namespace std::chrono_literals;

namespace {

const fs::path kPlugin = fs::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-mail.so";

#define SKIP_WITHOUT_DOVECOT()                                                                                   \
    if (DovecotServer::binary().empty())                                                                         \
    GTEST_SKIP() << "dovecot is not installed (Debian dovecot-imapd; scripts/install-deps.sh installs it)"

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string message(int n, const std::string& attachment = "") {
    std::string m = "From: Ahmad <ahmad@example.my>\r\nTo: claims@tpa.example.my\r\nSubject: Claim " + std::to_string(n) +
                    "\r\nDate: Fri, 27 Dec 2024 09:00:00 +0800\r\nMessage-ID: <claim-" + std::to_string(n) + "@example.my>\r\nMIME-Version: 1.0\r\n";
    if (attachment.empty()) return m + "Content-Type: text/plain\r\n\r\nClaim number " + std::to_string(n) + "\r\n";
    return m + "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nClaim " + std::to_string(n) +
           "\r\n--B\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; "
           "filename=\"receipt" + std::to_string(n) + ".jpg\"\r\n\r\n" + test::base64_mime(attachment) + "--B--\r\n";
}

std::string config(const DovecotServer& d, const std::string& extra = "", const std::string& password = "") {
    return "{host: 127.0.0.1, port: " + std::to_string(d.imaps_port()) + ", ca_file: '" + d.ca_file().string() + "', user: " + d.user() +
           ", password: '" + (password.empty() ? d.password() : password) + "', mailbox: Claims" + (extra.empty() ? "" : ", " + extra) + "}";
}

std::string bytes_of(const Document& d) {
    return std::string(d.parts.at(0).bytes->begin(), d.parts.at(0).bytes->end());
}

bool logged(NodeRunner& r, const std::string& needle) {
    for (const auto& l : r.context().log_lines())
        if (l.message.find(needle) != std::string::npos) return true;
    return false;
}

std::string all_logs(NodeRunner& r) {
    std::string out;
    for (const auto& l : r.context().log_lines()) out += l.message + "\n";
    return out;
}

// Polls (draining) until `want` items came or `tries` polls passed, moving the manual clock
// past any reconnect backoff between tries.
std::vector<SourceItem> poll_until(NodeRunner& r, std::size_t want, int tries = 20) {
    std::vector<SourceItem> got;
    for (int i = 0; i < tries && got.size() < want; ++i) {
        for (auto& item : r.poll()) got.push_back(std::move(item));
        if (got.size() >= want) break;
        r.clock().advance(10min);
        std::this_thread::sleep_for(100ms);
    }
    return got;
}

// An OAuth 2.0 token introspection endpoint (RFC 7662) for Dovecot's oauth2 passdb, on a free
// loopback port: POST /introspect with the form field token=...; {"active": true, "username":
// <user>} for the one good token, {"active": false} for any other. It keeps every token it was
// asked about, so a test can tell that Dovecot really checked the token with it.
class IntrospectionEndpoint {
public:
    IntrospectionEndpoint(std::string good_token, std::string user) : good_(std::move(good_token)), user_(std::move(user)) {
        http_.set_keep_alive_max_count(1);  // one request a connection: nothing lingers at stop()
        http_.Post("/introspect", [this](const httplib::Request& req, httplib::Response& res) {
            const std::string token = form_field(req.body, "token");
            bool active;
            {
                std::lock_guard lock(mutex_);
                asked_.push_back(token);
                active = token == good_;
            }
            res.set_content(active ? "{\"active\": true, \"username\": \"" + user_ + "\"}" : std::string("{\"active\": false}"),
                            "application/json");
        });
        port_ = http_.bind_to_any_port("127.0.0.1");
        if (port_ <= 0) throw std::runtime_error("IntrospectionEndpoint: cannot bind a loopback port");
        thread_ = std::thread([this] { http_.listen_after_bind(); });
        // stop() before the accept loop runs would be missed (and join() would wait forever).
        for (int i = 0; i < 500 && !http_.is_running(); ++i) std::this_thread::sleep_for(10ms);
    }
    ~IntrospectionEndpoint() {
        http_.stop();
        thread_.join();
    }
    IntrospectionEndpoint(const IntrospectionEndpoint&) = delete;
    IntrospectionEndpoint& operator=(const IntrospectionEndpoint&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/introspect"; }
    // The tokens it was asked about, in order.
    std::vector<std::string> asked() const {
        std::lock_guard lock(mutex_);
        return asked_;
    }
    bool was_asked_about(const std::string& token) const {
        const auto a = asked();
        return std::find(a.begin(), a.end(), token) != a.end();
    }

private:
    // The value of `name` in an application/x-www-form-urlencoded body ("" if absent).
    static std::string form_field(const std::string& body, const std::string& name) {
        std::istringstream pairs(body);
        std::string pair;
        while (std::getline(pairs, pair, '&')) {
            if (pair.rfind(name + "=", 0) != 0) continue;
            const std::string raw = pair.substr(name.size() + 1);
            std::string out;
            for (std::size_t i = 0; i < raw.size(); ++i) {
                if (raw[i] == '+') out += ' ';
                else if (raw[i] == '%' && i + 2 < raw.size()) {
                    out += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
                    i += 2;
                } else out += raw[i];
            }
            return out;
        }
        return "";
    }

    httplib::Server http_;
    std::thread thread_;
    int port_ = 0;
    const std::string good_, user_;
    mutable std::mutex mutex_;
    std::vector<std::string> asked_;
};

class Imap : public ::testing::Test {
protected:
    void SetUp() override {
        SKIP_WITHOUT_DOVECOT();
        server = std::make_unique<DovecotServer>();
        auto probe = server->probe();
        ASSERT_NE(probe.command("CREATE Claims").find("OK"), std::string::npos);
    }
    void TearDown() override {
        if (HasFailure() && server) std::cerr << "dovecot log:\n" << server->log();
    }
    // Replaces the server from SetUp (no XOAUTH2) with one that offers XOAUTH2 and checks
    // tokens with a new introspection endpoint, for which only `good_token` is active.
    void use_a_server_with_xoauth2(const std::string& good_token) {
        introspection = std::make_unique<IntrospectionEndpoint>(good_token, "claims");
        server.reset();
        DovecotServer::Options options;
        options.oauth2_introspection_url = introspection->url();
        server = std::make_unique<DovecotServer>(options);
        auto probe = server->probe();  // still logs in with the password
        ASSERT_NE(probe.command("CREATE Claims").find("OK"), std::string::npos);
    }
    std::string xoauth2_config(const fs::path& token_file) const {
        return "{host: 127.0.0.1, port: " + std::to_string(server->imaps_port()) + ", ca_file: '" + server->ca_file().string() +
               "', user: claims, auth: xoauth2, oauth_token_file: '" + token_file.string() + "', mailbox: Claims}";
    }
    std::unique_ptr<IntrospectionEndpoint> introspection;  // declared first: outlives the server
    std::unique_ptr<DovecotServer> server;
};

TEST_F(Imap, NewMailArrivesThroughIdleWithoutWaitingForThePollInterval) {
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", config(*server, "poll_interval: 1h"));
    EXPECT_TRUE(runner.poll().empty());  // connects and finds nothing
    ASSERT_EQ(runner.component().health().status, Health::Healthy) << runner.component().health().detail;
    EXPECT_NE(runner.component().health().detail.find("IDLE"), std::string::npos);

    std::thread deliver([&] {
        std::this_thread::sleep_for(1s);  // the source is in IDLE by then
        server->probe().append("Claims", message(1));
    });
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<SourceItem> items;
    while (items.empty() && std::chrono::steady_clock::now() - t0 < 20s)
        for (auto& i : runner.poll({std::chrono::milliseconds(20000), false})) items.push_back(std::move(i));
    const auto took = std::chrono::steady_clock::now() - t0;
    deliver.join();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_LT(took, 10s) << "IDLE should report the new mail at once, not after poll_interval (1h)";
    EXPECT_GE(runner.context().counter("imap_idle_wakeups_total"), 1);
    const Document& d = items[0].doc;
    EXPECT_EQ(d.attributes.at("source"), "imap");
    EXPECT_EQ(d.attributes.at("imap_uid"), "1");
    EXPECT_EQ(d.attributes.at("imap_mailbox"), "Claims");
    EXPECT_EQ(d.attributes.at("message_id"), "claim-1@example.my") << "known before transform.mime parses the email";
    EXPECT_FALSE(d.attributes.at("received_at").empty());
    ASSERT_EQ(d.parts.size(), 1u);
    EXPECT_EQ(d.parts[0].media_type, "message/rfc822");
    EXPECT_EQ(bytes_of(d), message(1));  // the exact RFC 822 bytes
    // The same bytes give the same id as the other mail sources' documents.
    const std::string raw = message(1);
    EXPECT_EQ(d.id, Document::from_bytes("x.eml", "message/rfc822", Bytes(raw.begin(), raw.end())).id);
    items[0].ack(Outcome{});
}

TEST_F(Imap, PollsWhenIdleIsOff) {
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", config(*server, "idle: false, poll_interval: 300ms"));
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_NE(runner.component().health().detail.find("polling every 300 ms"), std::string::npos) << runner.component().health().detail;
    server->probe().append("Claims", message(1));
    server->probe().append("Claims", message(2));
    std::vector<SourceItem> items;
    const auto t0 = std::chrono::steady_clock::now();
    while (items.size() < 2 && std::chrono::steady_clock::now() - t0 < 15s)
        for (auto& i : runner.poll({std::chrono::milliseconds(1000), false})) items.push_back(std::move(i));
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(bytes_of(items[0].doc), message(1));
    EXPECT_EQ(bytes_of(items[1].doc), message(2));
    EXPECT_EQ(runner.context().counter("imap_idle_wakeups_total"), 0);
    EXPECT_NE(runner.component().health().detail.find("last check 20"), std::string::npos) << runner.component().health().detail;
}

TEST_F(Imap, SeenAndFailedFlagsAreSetOnlyAfterTheAck) {
    auto probe = server->probe();
    probe.append("Claims", message(1));
    probe.append("Claims", message(2));
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", config(*server));
    auto items = runner.poll();
    ASSERT_EQ(items.size(), 2u);
    // Read (BODY.PEEK) and handed over, but not acked: no flag yet, even after more polls.
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_EQ(probe.flags("Claims", 1).find("\\Seen"), std::string::npos) << probe.flags("Claims", 1);
    EXPECT_EQ(probe.flags("Claims", 2).find("\\Seen"), std::string::npos);

    items[0].ack(Outcome{});
    runner.poll();
    EXPECT_NE(probe.flags("Claims", 1).find("\\Seen"), std::string::npos) << probe.flags("Claims", 1);
    EXPECT_EQ(probe.flags("Claims", 2).find("\\Seen"), std::string::npos);
    // The cursor waits for UID 2.
    EXPECT_NE(runner.context().state().get(runner.context().state().keys("imap/", 10).at(0))->find(":1"), std::string::npos);

    items[1].ack(Outcome{false, "no claim attachment"});
    runner.poll();
    const std::string f2 = probe.flags("Claims", 2);
    EXPECT_NE(f2.find("\\Flagged"), std::string::npos) << f2;
    EXPECT_EQ(f2.find("\\Seen"), std::string::npos) << f2;
    const auto keys = runner.context().state().keys("imap/", 10);
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(keys[0], "imap/127.0.0.1:" + std::to_string(server->imaps_port()) + "/claims/Claims/cursor");
    const std::string cursor = *runner.context().state().get(keys[0]);
    EXPECT_EQ(cursor.substr(cursor.find(':')), ":2") << cursor;
}

TEST_F(Imap, MoveToProcessedFolderOnlyAfterTheAck) {
    auto probe = server->probe();
    probe.append("Claims", message(1));
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", config(*server, "processed_folder: Done"));
    auto items = runner.poll();
    ASSERT_EQ(items.size(), 1u);
    runner.poll();
    EXPECT_EQ(probe.uids("Claims").size(), 1u);
    EXPECT_TRUE(probe.uids("Done").empty());
    items[0].ack(Outcome{});
    runner.poll();
    EXPECT_TRUE(probe.uids("Claims").empty());
    ASSERT_EQ(probe.uids("Done").size(), 1u);
    EXPECT_NE(probe.flags("Done", probe.uids("Done")[0]).find("\\Seen"), std::string::npos);
}

TEST_F(Imap, RestartResumesFromTheCursorWithoutEmittingAgain) {
    auto probe = server->probe();
    probe.append("Claims", message(1));
    probe.append("Claims", message(2));
    // A keyword as the processed flag, removed again below: only the cursor can then keep
    // the first two messages from being taken again.
    const std::string cfg = config(*server, "processed_flag: $DocpipeDone");
    std::vector<std::pair<std::string, std::string>> state;
    {
        auto first = NodeRunner::from_plugin(kPlugin, "source.imap", cfg);
        auto items = first.poll();
        ASSERT_EQ(items.size(), 2u);
        for (auto& i : items) i.ack(Outcome{});
        first.poll();
        for (const auto& k : first.context().state().keys("imap/", 10)) state.emplace_back(k, *first.context().state().get(k));
    }  // stop(): logout
    ASSERT_EQ(state.size(), 1u);
    EXPECT_NE(probe.flags("Claims", 2).find("$DocpipeDone"), std::string::npos);
    probe.command("SELECT Claims");
    probe.command("UID STORE 1:2 -FLAGS.SILENT ($DocpipeDone)");
    probe.append("Claims", message(3));

    auto second = NodeRunner::from_plugin(kPlugin, "source.imap", cfg);
    for (const auto& [k, v] : state) second.context().state().put(k, v, std::chrono::seconds(0));
    auto items = second.poll();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(bytes_of(items[0].doc), message(3));
    EXPECT_EQ(items[0].doc.attributes.at("imap_uid"), "3");
    EXPECT_TRUE(logged(second, "resuming after UID 2")) << all_logs(second);

    // Without the cursor, the same mailbox gives all three again: it was the cursor.
    auto fresh = NodeRunner::from_plugin(kPlugin, "source.imap", cfg);
    EXPECT_EQ(fresh.poll().size(), 3u);
}

TEST_F(Imap, UidValidityChangeRescansTheMailboxAndSaysSo) {
    auto probe = server->probe();
    probe.append("Claims", message(1));
    probe.append("Claims", message(2));
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", config(*server));
    auto before = runner.poll();
    ASSERT_EQ(before.size(), 2u);
    const std::string id1 = before[0].doc.id;
    for (auto& i : before) i.ack(Outcome{});
    runner.poll();

    // The mailbox is recreated under the source's feet: new UIDVALIDITY, UIDs from 1 again.
    probe.command("SELECT INBOX");
    ASSERT_NE(probe.command("DELETE Claims").find("OK"), std::string::npos);
    ASSERT_NE(probe.command("CREATE Claims").find("OK"), std::string::npos);
    probe.append("Claims", message(1));  // the same email again (e.g. restored from a backup)
    probe.append("Claims", message(3));

    auto after = poll_until(runner, 2);
    ASSERT_EQ(after.size(), 2u) << all_logs(runner);
    EXPECT_EQ(bytes_of(after[0].doc), message(1));
    EXPECT_EQ(after[0].doc.id, id1) << "the same bytes must map to the same id, so the runtime's dedup skips it";
    EXPECT_EQ(bytes_of(after[1].doc), message(3));
    EXPECT_TRUE(logged(runner, "UIDVALIDITY of mailbox 'Claims'")) << all_logs(runner);
    EXPECT_TRUE(logged(runner, "scanned again")) << all_logs(runner);
    EXPECT_EQ(runner.context().counter("imap_uidvalidity_changes_total"), 1);
    for (auto& i : after) i.ack(Outcome{});
    runner.poll();
    // A new session to look: the one that deleted and recreated the mailbox can keep a stale
    // index of it (Dovecot logs "duplicate transaction log sequence") and miss the flag.
    EXPECT_NE(server->probe().flags("Claims", 2).find("\\Seen"), std::string::npos);
    EXPECT_EQ(runner.component().health().status, Health::Healthy) << runner.component().health().detail;
}

TEST_F(Imap, BadPasswordIsReportedClearlyAndRetriedWithoutCrashing) {
    const std::string wrong = "not-the-Password-42";
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", config(*server, "", wrong));
    EXPECT_TRUE(runner.poll().empty());
    auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Unavailable);
    EXPECT_NE(h.detail.find("127.0.0.1:" + std::to_string(server->imaps_port())), std::string::npos) << h.detail;
    EXPECT_NE(h.detail.find("'claims'"), std::string::npos) << h.detail;
    EXPECT_NE(h.detail.find("AUTHENTICATIONFAILED"), std::string::npos) << h.detail;
    EXPECT_EQ(h.detail.find(wrong), std::string::npos);
    EXPECT_TRUE(logged(runner, "login failed")) << all_logs(runner);

    // Within the backoff nothing is tried; after it, again (and again refused).
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_EQ(runner.context().counter("imap_connection_failures_total"), 1);
    runner.clock().advance(10min);
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_EQ(runner.context().counter("imap_connection_failures_total"), 2);
    EXPECT_EQ(all_logs(runner).find(wrong), std::string::npos) << "the password must never be logged";
    EXPECT_EQ(runner.config().to_json().dump().find(wrong), std::string::npos);
}

// XOAUTH2 is an option for Gmail / Microsoft 365; this Dovecot does not offer it, which must
// read as a configuration problem naming the server, not as a crash or a silent retry loop.
TEST_F(Imap, XOauth2AgainstAServerWithoutItSaysSo) {
    const fs::path token = server->dir() / "token";
    std::ofstream(token) << "ya29.not-a-real-token\n";
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap",
                                          "{host: 127.0.0.1, port: " + std::to_string(server->imaps_port()) + ", ca_file: '" +
                                              server->ca_file().string() + "', user: claims, auth: xoauth2, oauth_token_file: '" +
                                              token.string() + "', mailbox: Claims}");
    EXPECT_TRUE(runner.poll().empty());
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Unavailable);
    EXPECT_NE(h.detail.find("does not offer AUTH=XOAUTH2"), std::string::npos) << h.detail;
    EXPECT_EQ(h.detail.find("ya29"), std::string::npos) << "the token must never be shown";
    EXPECT_EQ(all_logs(runner).find("ya29"), std::string::npos);
}

// XOAUTH2 against a Dovecot that offers it: the token from oauth_token_file goes through
// Dovecot's oauth2 passdb to the introspection endpoint, and the session then reads mail and
// sets flags like a password one.
TEST_F(Imap, XOauth2LogsInWithAValidTokenAndReadsMail) {
    const std::string good = "ya29.a0Af-claims-inbox-7f3c";
    ASSERT_NO_FATAL_FAILURE(use_a_server_with_xoauth2(good));
    server->probe().append("Claims", message(1));
    const fs::path token = server->dir() / "token";
    std::ofstream(token) << good << "\n";  // token helpers write a line; the source trims it

    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", xoauth2_config(token));
    auto items = runner.poll();
    ASSERT_EQ(items.size(), 1u) << runner.component().health().detail << "\n" << all_logs(runner);
    EXPECT_EQ(bytes_of(items[0].doc), message(1));
    EXPECT_EQ(items[0].doc.attributes.at("imap_uid"), "1");
    EXPECT_EQ(items[0].doc.attributes.at("imap_mailbox"), "Claims");
    EXPECT_TRUE(introspection->was_asked_about(good)) << "Dovecot let the source in without checking its token";
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Healthy) << h.detail;
    EXPECT_EQ(runner.context().counter("imap_connection_failures_total"), 0);

    items[0].ack(Outcome{});
    runner.poll();
    EXPECT_NE(server->probe().flags("Claims", 1).find("\\Seen"), std::string::npos);

    EXPECT_EQ(runner.component().health().detail.find("ya29"), std::string::npos) << "the token must never be shown";
    EXPECT_EQ(all_logs(runner).find("ya29"), std::string::npos) << "the token must never be logged";
    EXPECT_EQ(runner.config().to_json().dump().find("ya29"), std::string::npos);
}

// A token the identity provider calls inactive (revoked, expired, another client's): no mail,
// Unavailable with the server's refusal and a hint, never the token; and as oauth_token_file
// is read again at every login, a refreshed token gets in after the backoff.
TEST_F(Imap, XOauth2ARejectedTokenIsReportedClearly) {
    const std::string good = "ya29.a0Af-claims-inbox-7f3c";
    const std::string revoked = "ya29.a0Af-revoked-91ab";
    ASSERT_NO_FATAL_FAILURE(use_a_server_with_xoauth2(good));
    server->probe().append("Claims", message(1));
    const fs::path token = server->dir() / "token";
    std::ofstream(token) << revoked << "\n";

    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", xoauth2_config(token));
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_TRUE(introspection->was_asked_about(revoked)) << "the refusal must come from the token check, not before it";
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Unavailable);
    EXPECT_NE(h.detail.find("127.0.0.1:" + std::to_string(server->imaps_port())), std::string::npos) << h.detail;
    EXPECT_NE(h.detail.find("refused the XOAUTH2 login of user 'claims'"), std::string::npos) << h.detail;
    EXPECT_NE(h.detail.find("AUTHENTICATIONFAILED"), std::string::npos) << h.detail;
    EXPECT_NE(h.detail.find("is the access token current"), std::string::npos) << h.detail;
    EXPECT_EQ(h.detail.find("ya29"), std::string::npos) << "the token must never be shown";
    EXPECT_TRUE(logged(runner, "login failed")) << all_logs(runner);
    EXPECT_EQ(runner.context().counter("imap_connection_failures_total"), 1);

    // Within the backoff nothing is tried; a refreshed token in the file gets in after it.
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_EQ(introspection->asked().size(), 1u);
    std::ofstream(token) << good << "\n";
    auto items = poll_until(runner, 1);
    ASSERT_EQ(items.size(), 1u) << runner.component().health().detail << "\n" << all_logs(runner);
    EXPECT_EQ(bytes_of(items[0].doc), message(1));
    EXPECT_TRUE(introspection->was_asked_about(good));
    EXPECT_EQ(runner.component().health().status, Health::Healthy) << runner.component().health().detail;

    EXPECT_EQ(all_logs(runner).find("ya29"), std::string::npos) << "the token must never be logged";
    EXPECT_EQ(runner.config().to_json().dump().find("ya29"), std::string::npos);
}

TEST_F(Imap, StartTlsAndPlainTextOnlyWhenAskedFor) {
    server->probe().append("Claims", message(1));
    const std::string base = "{host: 127.0.0.1, port: " + std::to_string(server->imap_port()) + ", ca_file: '" + server->ca_file().string() +
                             "', user: claims, password: '" + server->password() + "', mailbox: Claims";
    EXPECT_THROW(
        {
            try {
                NodeRunner::from_plugin(kPlugin, "source.imap", base + ", security: plain}");
            } catch (const std::exception& e) {
                EXPECT_NE(std::string(e.what()).find("allow_plaintext"), std::string::npos) << e.what();
                throw;
            }
        },
        std::exception);
    auto starttls = NodeRunner::from_plugin(kPlugin, "source.imap", base + ", security: starttls}");
    EXPECT_EQ(starttls.poll().size(), 1u) << all_logs(starttls);
    auto plain = NodeRunner::from_plugin(kPlugin, "source.imap", base + ", security: plain, allow_plaintext: true}");
    EXPECT_EQ(plain.poll().size(), 1u) << all_logs(plain);
    // IMAPS with a certificate the system's CAs do not vouch for is refused, saying why.
    auto untrusted = NodeRunner::from_plugin(kPlugin, "source.imap",
                                             "{host: 127.0.0.1, port: " + std::to_string(server->imaps_port()) + ", user: claims, password: x}");
    EXPECT_TRUE(untrusted.poll().empty());
    const std::string why = untrusted.component().health().detail;
    EXPECT_NE(why.find("certificate not trusted"), std::string::npos) << why;
    EXPECT_NE(why.find("ca_file"), std::string::npos) << why;
}

TEST_F(Imap, BatchSizePacesTheFetches) {
    auto probe = server->probe();
    for (int i = 1; i <= 5; ++i) probe.append("Claims", message(i));
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", config(*server, "batch_size: 2, idle: false, poll_interval: 50ms"));
    // --once drains batch after batch; a running pipeline takes one batch per poll.
    EXPECT_EQ(runner.poll().size(), 5u);
    for (int i = 6; i <= 8; ++i) probe.append("Claims", message(i));
    EXPECT_EQ(runner.poll({std::chrono::milliseconds(2000), false}).size(), 2u);
    EXPECT_EQ(runner.poll({std::chrono::milliseconds(2000), false}).size(), 1u);
}

// docpipe run --once: source.imap -> transform.mime -> sink.files, two emails with a receipt
// photo each; the password comes from a file through ${file:...}.
TEST_F(Imap, DocpipeRunOnceTakesMailThroughMimeToFiles) {
    auto probe = server->probe();
    const std::string receipt = read_file(fs::path(DOCPIPE_SOURCE_DIR) / "examples/inbox/sources/malaysian_receipt_test.jpg");
    ASSERT_FALSE(receipt.empty());
    probe.append("Claims", message(1, receipt));
    probe.append("Claims", message(2, receipt));
    const fs::path work = server->dir() / "e2e";
    fs::create_directories(work);
    std::ofstream(work / "imap-password") << server->password();
    std::ofstream(work / "p.yaml") << "state: {backend: sqlite, path: " << (work / "state.db").string() << "}\n"
                                   << "admin: {listen: '127.0.0.1:0'}\n"
                                   << "nodes:\n"
                                   << "  inbox:\n    component: source.imap\n    config: {host: 127.0.0.1, port: " << server->imaps_port()
                                   << ", ca_file: '" << server->ca_file().string() << "', user: claims, password: \"${file:" << (work / "imap-password").string() << "}\", mailbox: Claims}\n"
                                   << "  mime:\n    component: transform.mime\n"
                                   << "  out:\n    component: sink.files\n    config: {path: " << (work / "out").string() << "}\n"
                                   << "edges:\n  - inbox -> mime -> out\n";
    const std::string cmd = "DOCPIPE_PLUGIN_PATH='" + std::string(DOCPIPE_BUILD_PLUGIN_DIR) + "' '" +
                            DOCPIPE_BINARY + "' run -c '" + (work / "p.yaml").string() + "' --once > '" + (work / "summary.txt").string() +
                            "' 2> '" + (work / "log.txt").string() + "'";
    const int rc = std::system(cmd.c_str());
    const auto read = read_file;
    ASSERT_EQ(rc, 0) << read(work / "summary.txt") << read(work / "log.txt");
    std::size_t outputs = 0;
    for (const auto& e : fs::directory_iterator(work / "out")) outputs += e.path().extension() == ".json";
    EXPECT_EQ(outputs, 2u) << read(work / "summary.txt") << read(work / "log.txt");
    EXPECT_EQ(read(work / "log.txt").find(server->password()), std::string::npos) << "the password must never be logged";
    // Acked by the pipeline, so flagged by the source before it exited.
    EXPECT_NE(probe.flags("Claims", 1).find("\\Seen"), std::string::npos) << read(work / "log.txt");
    EXPECT_NE(probe.flags("Claims", 2).find("\\Seen"), std::string::npos);
}

// ---- a scripted IMAP server ---------------------------------------------------------------------
// Dovecot answers correctly; these tests need a server that does not: one that answers a UID
// FETCH with OK and no data, announces a size it does not keep to, or quotes the password back
// in a refused LOGIN. Plain text on a free loopback port, one connection at a time, UIDVALIDITY 7.
class ScriptedImap {
public:
    struct Message {
        std::string bytes;
        std::set<std::string> flags;
    };
    ScriptedImap() {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 4) != 0 ||
            ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("ScriptedImap: cannot listen on a loopback port");
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedImap() {
        stop_ = true;
        thread_.join();
        ::close(listen_fd_);
    }
    ScriptedImap(const ScriptedImap&) = delete;
    ScriptedImap& operator=(const ScriptedImap&) = delete;

    int port() const { return port_; }
    std::string config(const std::string& password, const std::string& extra = "") const {
        return "{host: 127.0.0.1, port: " + std::to_string(port_) + ", security: plain, allow_plaintext: true, user: claims, password: '" +
               password + "', mailbox: Claims, idle: false, timeout: 5s" + (extra.empty() ? "" : ", " + extra) + "}";
    }
    void add(std::uint64_t uid, std::string bytes) {
        std::lock_guard lock(mutex_);
        mailbox_[uid] = {std::move(bytes), {}};
    }
    void expunge(std::uint64_t uid) {
        std::lock_guard lock(mutex_);
        mailbox_.erase(uid);
    }
    // UID FETCH answers OK without this UID's size / body.
    void hide_size_of(std::uint64_t uid, bool hide = true) { set(hidden_size_, uid, hide); }
    void hide_body_of(std::uint64_t uid, bool hide = true) { set(hidden_body_, uid, hide); }
    // RFC822.SIZE announces `size` for this UID, whatever the body is.
    void announce_size(std::uint64_t uid, std::uint64_t size) {
        std::lock_guard lock(mutex_);
        announced_[uid] = size;
    }
    // The body FETCH of this UID is answered NO.
    void refuse_fetch_of(std::uint64_t uid, bool refuse = true) { set(refused_body_, uid, refuse); }
    // UID SEARCH answers this word too, as if it were a UID.
    void add_search_word(std::string word) {
        std::lock_guard lock(mutex_);
        search_extra_ += " " + word;
    }
    // UID SEARCH is answered NO.
    void refuse_search(bool refuse = true) {
        std::lock_guard lock(mutex_);
        refuse_search_ = refuse;
    }
    // Commands that start with `prefix` get no answer at all: a server that stopped answering.
    void go_silent_on(std::string prefix) {
        std::lock_guard lock(mutex_);
        silent_on_ = std::move(prefix);
    }
    // LOGIN is answered with this NO text.
    void refuse_login_with(std::string text) {
        std::lock_guard lock(mutex_);
        login_refusal_ = std::move(text);
    }
    std::set<std::string> flags(std::uint64_t uid) const {
        std::lock_guard lock(mutex_);
        auto it = mailbox_.find(uid);
        return it == mailbox_.end() ? std::set<std::string>{} : it->second.flags;
    }
    // Commands received (tags left out), in order.
    std::vector<std::string> commands() const {
        std::lock_guard lock(mutex_);
        return commands_;
    }
    std::size_t count(const std::string& prefix) const {
        std::size_t n = 0;
        for (const auto& c : commands()) n += c.rfind(prefix, 0) == 0;
        return n;
    }

private:
    void set(std::set<std::uint64_t>& s, std::uint64_t uid, bool on) {
        std::lock_guard lock(mutex_);
        if (on) s.insert(uid);
        else s.erase(uid);
    }
    // The UIDs of "1,4,7:*" (with * = the highest UID) that are in the mailbox.
    std::vector<std::uint64_t> uids_in(const std::string& set) const {
        std::vector<std::uint64_t> out;
        const std::uint64_t top = mailbox_.empty() ? 0 : mailbox_.rbegin()->first;
        std::istringstream items(set);
        std::string item;
        while (std::getline(items, item, ',')) {
            const auto colon = item.find(':');
            auto num = [&](const std::string& t) { return t == "*" ? top : std::stoull(t); };
            std::uint64_t lo = num(item.substr(0, colon)), hi = colon == std::string::npos ? lo : num(item.substr(colon + 1));
            if (lo > hi) std::swap(lo, hi);
            for (const auto& [uid, m] : mailbox_)
                if (uid >= lo && uid <= hi) out.push_back(uid);
        }
        std::sort(out.begin(), out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
        return out;
    }
    void serve() {
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd < 0) continue;
            session(fd);
            ::close(fd);
        }
    }
    void session(int fd) {
        auto send = [fd](const std::string& s) { return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); };
        send("* OK [CAPABILITY IMAP4rev1 UIDPLUS] scripted\r\n");
        std::string buffer;
        while (!stop_) {
            const auto eol = buffer.find("\r\n");
            if (eol == std::string::npos) {
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0) continue;
                char chunk[4096];
                const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
                if (n <= 0) return;
                buffer.append(chunk, static_cast<std::size_t>(n));
                continue;
            }
            const std::string line = buffer.substr(0, eol);
            buffer.erase(0, eol + 2);
            const auto sp = line.find(' ');
            const std::string tag = line.substr(0, sp), cmd = sp == std::string::npos ? "" : line.substr(sp + 1);
            const std::string said = answer(tag, cmd);
            if (said.empty()) continue;  // silent
            if (!send(said)) return;
            if (cmd == "LOGOUT") return;
        }
    }
    std::string answer(const std::string& tag, const std::string& cmd) {
        std::lock_guard lock(mutex_);
        commands_.push_back(cmd);
        if (!silent_on_.empty() && cmd.rfind(silent_on_, 0) == 0) return "";
        std::istringstream words(cmd);
        std::string verb, sub;
        words >> verb;
        if (verb == "CAPABILITY") return "* CAPABILITY IMAP4rev1 UIDPLUS\r\n" + tag + " OK done\r\n";
        if (verb == "LOGIN") {
            if (!login_refusal_.empty()) return tag + " NO " + login_refusal_ + "\r\n";
            return tag + " OK [CAPABILITY IMAP4rev1 UIDPLUS] logged in\r\n";
        }
        if (verb == "SELECT")
            return fmt::format("* {} EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{} OK [READ-WRITE] selected\r\n", mailbox_.size(), tag);
        if (verb == "NOOP" || verb == "LOGOUT") return (verb == "LOGOUT" ? "* BYE bye\r\n" : "") + tag + " OK done\r\n";
        if (verb != "UID") return tag + " BAD unknown\r\n";
        words >> sub;
        std::string set;
        if (sub == "SEARCH") {
            if (refuse_search_) return tag + " NO [SERVERBUG] search index broken\r\n";
            std::string uid_word;
            words >> uid_word >> set;
            std::string out = "* SEARCH";
            for (auto uid : uids_in(set))
                if (!mailbox_.at(uid).flags.count("\\Seen")) out += " " + std::to_string(uid);
            return out + search_extra_ + "\r\n" + tag + " OK searched\r\n";
        }
        words >> set;
        std::string rest;
        std::getline(words, rest);
        if (sub == "FETCH") {
            std::string out;
            if (rest.find("BODY.PEEK") != std::string::npos)
                for (auto uid : uids_in(set))
                    if (refused_body_.count(uid)) return tag + " NO [SERVERBUG] cannot read the message\r\n";
            for (auto uid : uids_in(set)) {
                const auto seq = std::distance(mailbox_.begin(), mailbox_.find(uid)) + 1;
                const std::string& bytes = mailbox_.at(uid).bytes;
                if (rest.find("RFC822.SIZE") != std::string::npos) {
                    if (hidden_size_.count(uid)) continue;
                    const auto size = announced_.count(uid) ? announced_.at(uid) : bytes.size();
                    out += fmt::format("* {} FETCH (UID {} RFC822.SIZE {})\r\n", seq, uid, size);
                } else {
                    if (hidden_body_.count(uid)) continue;
                    out += fmt::format("* {} FETCH (UID {} INTERNALDATE \"01-Dec-2026 10:00:00 +0800\" BODY[] {{{}}}\r\n{})\r\n", seq, uid,
                                       bytes.size(), bytes);
                }
            }
            return out + tag + " OK fetched\r\n";
        }
        if (sub == "STORE") {
            const auto open = rest.find('('), close = rest.find(')');
            const std::string flag = open == std::string::npos ? "" : rest.substr(open + 1, close - open - 1);
            for (auto uid : uids_in(set)) mailbox_.at(uid).flags.insert(flag);
            return tag + " OK stored\r\n";
        }
        return tag + " BAD unknown\r\n";
    }

    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    mutable std::mutex mutex_;
    std::map<std::uint64_t, Message> mailbox_;
    std::set<std::uint64_t> hidden_size_, hidden_body_, refused_body_;
    bool refuse_search_ = false;
    std::string search_extra_;
    std::map<std::uint64_t, std::uint64_t> announced_;
    std::string login_refusal_;
    std::string silent_on_;
    std::vector<std::string> commands_;
};

std::uint64_t stored_cursor_uid(NodeRunner& r) {
    for (const auto& key : r.context().state().keys("imap/"))
        if (key.size() > 7 && key.substr(key.size() - 7) == "/cursor") {
            const std::string value = r.context().state().get(key).value_or("0:0");
            return std::stoull(value.substr(value.find(':') + 1));
        }
    return 0;
}

// A UID FETCH that answers OK without a UID's data used to move the cursor past that UID
// ("expunged since the search"): a message that still existed was never fetched again.
TEST(ImapScripted, AUidFetchedWithoutDataIsTriedAgainAndTheCursorWaitsForIt) {
    ScriptedImap s;
    for (std::uint64_t uid = 1; uid <= 3; ++uid) s.add(uid, message(static_cast<int>(uid)));
    s.hide_size_of(2);
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("pw-for-tests"));
    auto items = runner.poll();
    ASSERT_EQ(items.size(), 2u) << all_logs(runner);
    EXPECT_EQ(items[0].doc.attributes.at("imap_uid"), "1");
    EXPECT_EQ(items[1].doc.attributes.at("imap_uid"), "3");
    EXPECT_TRUE(logged(runner, "UID 2")) << all_logs(runner);
    for (auto& i : items) i.ack(Outcome{});
    EXPECT_TRUE(runner.poll().empty()) << "the server still gives no size";  // applies the settlements
    EXPECT_EQ(stored_cursor_uid(runner), 1u) << "the cursor stays before UID 2";
    const auto waiting = runner.component().health();
    EXPECT_EQ(waiting.status, Health::Degraded) << "mail not taken shows (run --once names the source)";
    EXPECT_NE(waiting.detail.find("1 message(s) the server would not give (UID 2)"), std::string::npos) << waiting.detail;

    // The server answers for it again: it is taken, and then the cursor moves past all three.
    s.hide_size_of(2, false);
    s.hide_body_of(2);
    EXPECT_TRUE(runner.poll().empty()) << "a size but no body: still not taken";
    s.hide_body_of(2, false);
    items = runner.poll();
    ASSERT_EQ(items.size(), 1u) << all_logs(runner);
    EXPECT_EQ(items[0].doc.attributes.at("imap_uid"), "2");
    EXPECT_EQ(bytes_of(items[0].doc), message(2));
    items[0].ack(Outcome{});
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_EQ(stored_cursor_uid(runner), 3u);
    EXPECT_EQ(runner.component().health().status, Health::Healthy);
    EXPECT_FALSE(logged(runner, "pw-for-tests"));
}

// And a UID that really was expunged is not waited for forever: the next SEARCH does not find
// it, so it is let go and the cursor moves on (no loop of FETCHes for it).
TEST(ImapScripted, AUidFetchedWithoutDataThatIsThenExpungedIsLetGo) {
    ScriptedImap s;
    for (std::uint64_t uid = 1; uid <= 3; ++uid) s.add(uid, message(static_cast<int>(uid)));
    s.hide_size_of(2);
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("pw-for-tests"));
    auto items = runner.poll();
    ASSERT_EQ(items.size(), 2u) << all_logs(runner);
    for (auto& i : items) i.ack(Outcome{});
    s.expunge(2);
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_EQ(stored_cursor_uid(runner), 3u) << all_logs(runner);
    const auto fetches = s.count("UID FETCH");
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_EQ(s.count("UID FETCH"), fetches) << "nothing left to fetch";
}

// A NO to one message's FETCH dropped the connection: the source reconnected, hit the same
// message and dropped it again, every second, and no later mail was taken. It is that
// message's problem: the others are taken on the same connection and it is tried again.
TEST(ImapScripted, AMessageTheServerRefusesToFetchIsTriedAgainWithoutDroppingTheConnection) {
    ScriptedImap s;
    for (std::uint64_t uid = 1; uid <= 3; ++uid) s.add(uid, message(static_cast<int>(uid)));
    s.refuse_fetch_of(2);
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("pw-for-tests"));
    auto items = runner.poll();
    ASSERT_EQ(items.size(), 2u) << all_logs(runner);
    EXPECT_EQ(items[1].doc.attributes.at("imap_uid"), "3");
    EXPECT_TRUE(logged(runner, "UID 2")) << all_logs(runner);
    for (auto& i : items) i.ack(Outcome{});
    s.refuse_fetch_of(2, false);
    items = runner.poll();
    ASSERT_EQ(items.size(), 1u) << all_logs(runner);
    EXPECT_EQ(items[0].doc.attributes.at("imap_uid"), "2");
    EXPECT_EQ(s.count("LOGIN"), 1u) << "one connection all along";
    EXPECT_EQ(runner.component().health().status, Health::Healthy);
}

// A batch of UIDs the server keeps refusing sorted first and filled every scan: no new mail
// was taken, and `run --once` (which scans while there is more) never ended. The waiting
// ones are asked for beside a full batch of new ones now.
TEST(ImapScripted, ABatchOfRefusedMessagesDoesNotHoldBackNewMail) {
    ScriptedImap s;
    for (std::uint64_t uid = 1; uid <= 5; ++uid) s.add(uid, message(static_cast<int>(uid)));
    s.refuse_fetch_of(1);
    s.refuse_fetch_of(2);
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("pw-for-tests", "batch_size: 2"));
    auto items = runner.poll();  // the --once round: returns once nothing more is new
    ASSERT_EQ(items.size(), 3u) << all_logs(runner);
    for (std::size_t i = 0; i < items.size(); ++i) EXPECT_EQ(items[i].doc.attributes.at("imap_uid"), std::to_string(i + 3));
    EXPECT_LE(s.count("UID FETCH 1 (UID INTERNALDATE"), 3u) << "a refused one is asked for once a scan, not in a loop";
    EXPECT_EQ(runner.component().health().status, Health::Degraded);
}

// failures_ was reset by every good login, so a mailbox whose scan fails right after login
// was reconnected every ~0.7 s forever. The backoff now grows until a scan works.
TEST(ImapScripted, AScanThatFailsAfterAGoodLoginBacksOffLongerEachTime) {
    ScriptedImap s;
    s.add(1, message(1));
    s.refuse_search();
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("pw-for-tests"));
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(runner.poll().empty());
        runner.clock().advance(10min);
    }
    EXPECT_EQ(s.count("LOGIN"), 3u);
    EXPECT_TRUE(logged(runner, "(3 failure(s) in a row")) << all_logs(runner);
    s.refuse_search(false);
    EXPECT_EQ(runner.poll().size(), 1u) << all_logs(runner);
    s.refuse_search();
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_TRUE(logged(runner, "(1 failure(s) in a row")) << "a scan that worked starts the backoff afresh";
}

// A 25-digit "UID" in a SEARCH answer made std::stoull throw out of the scan: the connection
// was dropped on every scan and no mail was taken. A word that is no UID is left out.
TEST(ImapScripted, ASearchAnswerWithANumberThatIsNoUidIsLeftOutAndTheRestTaken) {
    ScriptedImap s;
    s.add(1, message(1));
    s.add_search_word("1234567890123456789012345");
    s.add_search_word("4294967296");
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("pw-for-tests"));
    const auto items = runner.poll();
    ASSERT_EQ(items.size(), 1u) << all_logs(runner);
    EXPECT_EQ(items[0].doc.attributes.at("imap_uid"), "1");
    EXPECT_TRUE(logged(runner, "'1234567890123456789012345', which is not a UID")) << all_logs(runner);
    EXPECT_EQ(s.count("LOGIN"), 1u);
    EXPECT_EQ(runner.component().health().status, Health::Healthy);
}

// One UID STORE named every settled UID singly: 10,000 of them made an 80 KB command line,
// which servers may refuse (RFC 7162: 8192 octets). Runs are now ranges, and long sets split.
TEST(ImapScripted, ManySettledUidsAreFlaggedInCommandsOfBoundedLength) {
    ScriptedImap s;
    for (std::uint64_t uid = 1; uid < 3000; uid += 2) s.add(uid, message(static_cast<int>(uid)));  // no two in a row
    for (std::uint64_t uid = 5001; uid <= 5500; ++uid) s.add(uid, message(static_cast<int>(uid)));  // one run
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("pw-for-tests", "batch_size: 1000"));
    auto items = runner.poll();
    ASSERT_EQ(items.size(), 2000u) << all_logs(runner);
    for (auto& i : items) i.ack(Outcome{});
    EXPECT_TRUE(runner.poll().empty());
    std::size_t longest = 0, stores = 0;
    for (const auto& c : s.commands()) {
        longest = std::max(longest, c.size());
        if (c.rfind("UID STORE", 0) == 0) {
            ++stores;
            if (c.find("5500") != std::string::npos) {
                EXPECT_NE(c.find("5001:5500"), std::string::npos) << c;
            }
        }
    }
    EXPECT_LE(longest, 1100u);
    EXPECT_GE(stores, 2u);
    for (std::uint64_t uid : {1ull, 1501ull, 2999ull, 5001ull, 5500ull}) EXPECT_TRUE(s.flags(uid).count("\\Seen")) << uid;
    EXPECT_EQ(stored_cursor_uid(runner), 5500u);
}

// max_bytes was only checked against the size the server announced: one announcing 200 bytes
// and sending far more got it all through.
TEST(ImapScripted, ABodyLargerThanMaxBytesFailsEvenWhenTheServerAnnouncedLess) {
    ScriptedImap s;
    s.add(1, message(1) + std::string(20000, 'x'));
    s.announce_size(1, 200);
    s.add(2, message(2));
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("pw-for-tests", "max_bytes: 5000"));
    auto items = runner.poll();
    ASSERT_EQ(items.size(), 1u) << all_logs(runner);
    EXPECT_EQ(items[0].doc.attributes.at("imap_uid"), "2");
    EXPECT_TRUE(logged(runner, "UID 1")) << all_logs(runner);
    EXPECT_TRUE(logged(runner, "max_bytes 5000")) << all_logs(runner);
    items[0].ack(Outcome{});
    EXPECT_TRUE(runner.poll().empty());
    EXPECT_TRUE(s.flags(1).count("\\Flagged")) << "failed like an over-size message the server announced";
    EXPECT_FALSE(s.flags(1).count("\\Seen"));
    EXPECT_TRUE(s.flags(2).count("\\Seen"));
    EXPECT_EQ(stored_cursor_uid(runner), 2u);
}

// A server that quotes the refused LOGIN back put the password into the log and health.
TEST(ImapScripted, APasswordTheServerEchoesIsNotLoggedOrShownInHealth) {
    ScriptedImap s;
    s.refuse_login_with("[AUTHENTICATIONFAILED] Authentication failed: you sent \"claims\" \"S3cretPassw0rd!\"");
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("S3cretPassw0rd!"));
    EXPECT_TRUE(runner.poll().empty());
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Unavailable);
    EXPECT_NE(h.detail.find("AUTHENTICATIONFAILED"), std::string::npos) << h.detail;
    EXPECT_NE(h.detail.find("[secret]"), std::string::npos) << h.detail;
    EXPECT_EQ(h.detail.find("S3cretPassw0rd!"), std::string::npos) << h.detail;
    EXPECT_FALSE(logged(runner, "S3cretPassw0rd!")) << all_logs(runner);
    EXPECT_TRUE(logged(runner, "[secret]")) << all_logs(runner);
}

// Polls `runner` (a source.imap whose server stops answering once `asked()`) on this thread,
// asks it to stop from another as soon as `asked()` is true, and returns how long poll() took.
std::chrono::steady_clock::duration poll_then_stop(NodeRunner& runner, const std::function<bool()>& asked,
                                                   PollRequest request = {10s, false}) {
    std::thread stopper([&] {
        for (int i = 0; i < 6000 && !asked(); ++i) std::this_thread::sleep_for(10ms);
        runner.request_stop();
    });
    const auto started = std::chrono::steady_clock::now();
    const auto items = runner.poll(request);
    const auto took = std::chrono::steady_clock::now() - started;
    stopper.join();
    EXPECT_TRUE(items.empty());
    return took;
}

void expect_cut_off_cleanly(NodeRunner& runner) {
    EXPECT_TRUE(logged(runner, "cut off the command in progress")) << all_logs(runner);
    EXPECT_FALSE(logged(runner, "failure(s) in a row")) << "a stop is no failure: " << all_logs(runner);
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Unavailable);
    EXPECT_NE(h.detail.find("the runtime stopped this source"), std::string::npos) << h.detail;
}

// A command in progress held the runtime's stop until its `timeout` (60 s by default): a
// server that stopped answering kept SIGTERM waiting that long, at login or in a scan. The
// connection now asks the runtime's stop every quarter second and cuts the command off.
TEST(ImapScripted, AStopCutsOffACommandTheServerNeverAnswers) {
    for (const std::string silent_on : {"SELECT", "UID SEARCH"}) {
        SCOPED_TRACE(silent_on);
        ScriptedImap s;
        s.add(1, message(1));
        s.go_silent_on(silent_on);
        std::string config = s.config("pw-for-tests");
        config.replace(config.find("timeout: 5s"), 11, "timeout: 200s");  // far beyond the wait below
        auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", config);
        const auto took = poll_then_stop(runner, [&] { return s.count(silent_on) > 0; });
        ASSERT_EQ(s.count(silent_on), 1u) << all_logs(runner);
        EXPECT_LT(took, 60s) << "held until the 200 s timeout, not cut off by the stop";
        expect_cut_off_cleanly(runner);
    }
}

// Mail the runtime's drain settles after the stop cut a command off used to stay unmarked: the
// connection was gone, so stop() marked nothing and the next start took it all again. stop()
// now marks it on a short connection of its own.
TEST(ImapScripted, MailSettledAfterAStopCutACommandOffIsMarkedAtStop) {
    ScriptedImap s;
    s.add(1, message(1));
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", s.config("pw-for-tests"));
    auto items = runner.poll();
    ASSERT_EQ(items.size(), 1u) << all_logs(runner);
    s.go_silent_on("UID SEARCH");
    poll_then_stop(runner, [&] { return s.count("UID SEARCH") >= 2; }, {0s, true});
    expect_cut_off_cleanly(runner);
    s.go_silent_on("");
    items[0].ack(Outcome{});  // the drain: its document is delivered after the source stopped
    EXPECT_TRUE(s.flags(1).empty());
    runner.component().stop();
    EXPECT_EQ(s.flags(1), std::set<std::string>{"\\Seen"}) << all_logs(runner);
    EXPECT_EQ(s.count("LOGIN"), 2u) << "one more connection, at stop";
}

// The same for a server that accepts the connection and never starts TLS: the handshake sat in
// a blocking SSL_connect() for the whole timeout.
TEST(ImapScripted, AStopCutsOffATlsHandshakeTheServerNeverAnswers) {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);  // the kernel accepts; nobody answers
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(listener, 4), 0);
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap",
                                          "{host: 127.0.0.1, port: " + std::to_string(ntohs(a.sin_port)) +
                                              ", security: tls, user: claims, password: pw, mailbox: Claims, timeout: 200s}");
    const auto started = std::chrono::steady_clock::now();
    const auto took = poll_then_stop(runner, [&] { return std::chrono::steady_clock::now() - started > 300ms; });
    ::close(listener);
    EXPECT_LT(took, 60s) << "held until the 200 s timeout, not cut off by the stop";
    expect_cut_off_cleanly(runner);
    EXPECT_TRUE(logged(runner, "in the TLS handshake")) << all_logs(runner);
}

// IDLE mode: a stop during the wait ends poll() within its quarter-second slice, the mail the
// drain settles afterwards is marked at stop on the live connection (DONE, then STORE), and
// none of it counts as a failure.
TEST_F(Imap, AStopDuringIdleEndsThePollAndTheMailSettledAfterIsMarked) {
    auto runner = NodeRunner::from_plugin(kPlugin, "source.imap", config(*server, "poll_interval: 1h"));
    server->probe().append("Claims", message(1));
    auto items = poll_until(runner, 1);
    ASSERT_EQ(items.size(), 1u) << all_logs(runner);
    EXPECT_NE(runner.component().health().detail.find("IDLE"), std::string::npos) << runner.component().health().detail;
    const auto started = std::chrono::steady_clock::now();
    const auto took = poll_then_stop(runner, [&] { return std::chrono::steady_clock::now() - started > 1500ms; }, {60s, false});
    EXPECT_LT(took, 30s) << "waited out the 60 s poll in IDLE instead of stopping";
    EXPECT_FALSE(logged(runner, "failure(s) in a row")) << "a stop is no failure: " << all_logs(runner);
    items[0].ack(Outcome{});  // the drain delivers it after the source stopped polling
    runner.component().stop();
    const std::string flags = server->probe().flags("Claims", 1);
    EXPECT_NE(flags.find("\\Seen"), std::string::npos) << flags << "\n" << all_logs(runner);
}

}  // namespace
