// source.gmail against the fake Gmail and Pub/Sub (tests/fakes/fake_google.py) on a loopback
// port: the real libcurl client, a real RS256-signed token request (service account acting for
// claims@example.com), real HTTP. Driven with NodeRunner; its manual clock is first moved to the
// real time, because the watch expiration and the push tokens come from the fake's real clock.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "base64.hpp"
#include "docpipe/testing.hpp"
#include "fake_process.hpp"
#include "test_keys.hpp"

using namespace docpipe;
using nlohmann::json;
using std::chrono::milliseconds;

using docpipe::test::new_rsa_key_pem;
using docpipe::test::TempFile;

namespace {

const std::string kUser = "claims@example.com";
const std::string kCursorKey = "gmail/claims@example.com/history_id";
const std::string kPendingKey = "gmail/claims@example.com/pending_history_id";
const std::string kTopic = "projects/test-project/topics/gmail";
const std::string kSubscription = "projects/test-project/subscriptions/docpipe";
const std::string kAudience = "https://docpipe.example.com/hooks/gmail";
const std::string kPushAccount = "pubsub-push@test-project.iam.gserviceaccount.com";

std::string plugin_file() { return std::string(DOCPIPE_BUILD_PLUGIN_DIR) + "/libdocpipe-google.so"; }

std::string service_account_json(const std::string& pem) {
    return json{{"type", "service_account"},
                {"project_id", "test-project"},
                {"private_key_id", "k1"},
                {"private_key", pem},
                {"client_email", "docpipe@test-project.iam.gserviceaccount.com"},
                {"token_uri", "https://oauth2.googleapis.com/token"}}
        .dump();
}

// An email as a clinic would send it: CRLF line ends, 8-bit UTF-8 in the body.
std::string mail(int i) {
    return fmt::format(
        "Message-ID: <claim-{0}@clinic.example>\r\nFrom: Siti Aminah <siti@example.my>\r\nTo: claims@example.com\r\n"
        "Subject: Tuntutan {0}\r\nDate: Mon, 1 Dec 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Resit RM{0}.50 \xe2\x80\x94 terima kasih\r\n",
        i);
}

std::string bytes_of(const Document& doc) {
    const auto& b = *doc.parts.at(0).bytes;
    return std::string(b.begin(), b.end());
}

// The fake, with the service-account file it trusts.
struct Google {
    explicit Google(std::vector<std::string> extra_args = {}) : fake(args(sa.path, std::move(extra_args))) {}
    static std::vector<std::string> args(const std::filesystem::path& sa, std::vector<std::string> extra) {
        std::vector<std::string> a{"python3", std::string(DOCPIPE_SOURCE_DIR) + "/tests/fakes/fake_google.py", "--port", "0",
                                   "--service-account", sa.string()};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }

    TempFile sa{service_account_json(new_rsa_key_pem())};
    test::FakeProcess fake;

    std::string base() const { return fake.base_url(); }
    json control(const std::string& method, const std::string& path, const json& body = nullptr) const {
        const std::string text = test::fake_control(base(), method, path, body.is_null() ? "" : body.dump());
        return text.empty() ? json() : json::parse(text);
    }
    std::string config(const std::string& mode, const std::string& extra = "") const {
        return fmt::format("credentials_file: {}\nsubject: {}\ntoken_url: {}/token\nmode: {}\ngmail_url: {}\npubsub_url: {}\n"
                           "jwks_url: {}/oauth2/v3/certs\n",
                           sa.path.string(), kUser, base(), mode, base(), base(), base()) +
               extra;
    }
    // Delivers a mail; returns {id, historyId}.
    json deliver(const std::string& raw, const json& labels = json::array({"INBOX", "UNREAD"})) const {
        return control("POST", "/_fake/gmail/deliver", {{"user", kUser}, {"raw_b64", test::base64_mime(raw)}, {"labelIds", labels}});
    }
    std::map<std::string, json> messages() const {
        std::map<std::string, json> out;
        const json all = control("GET", "/_fake/gmail/messages?user=" + kUser);
        for (const auto& m : all["messages"]) out[m["id"].get<std::string>()] = m;
        return out;
    }
    static bool has(const json& message, const std::string& label_name) {
        for (const auto& l : message["labels"])
            if (l == label_name) return true;
        return false;
    }
    json requests(const std::string& target) const { return control("GET", "/_fake/requests?target=" + target); }
    std::uint64_t mailbox_history() const { return control("GET", "/_fake/gmail/mailbox?user=" + kUser)["historyId"].get<std::uint64_t>(); }
    json stats() const { return control("GET", "/_fake/pubsub/stats"); }
    void subscribe(const json& extra = json::object()) const {
        json body{{"subscription", kSubscription}, {"topic", kTopic}, {"ack_deadline_seconds", 10}};
        body.update(extra);
        control("POST", "/_fake/pubsub/subscription", body);
    }
    std::string token(const std::string& mode, const std::string& audience = kAudience, const std::string& email = kPushAccount) const {
        return control("POST", "/_fake/pubsub/oidc_token", {{"audience", audience}, {"email", email}, {"mode", mode}})["token"]
            .get<std::string>();
    }
};

// The runner's manual clock, moved to now: Google's timestamps are real ones.
docpipe::testing::NodeRunner make_runner(const std::string& yaml) {
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "source.gmail", yaml);
    runner.clock().advance(std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now() - runner.clock().now()));
    return runner;
}

std::uint64_t cursor(docpipe::testing::NodeRunner& runner) {
    const auto v = runner.context().state().get(kCursorKey);
    return v ? std::stoull(*v) : 0;
}

std::vector<docpipe::testing::SourceItem> poll_now(docpipe::testing::NodeRunner& runner) { return runner.poll({milliseconds(0), true}); }

// A sweep is due once poll_interval has passed on the runner's clock.
std::vector<docpipe::testing::SourceItem> sweep(docpipe::testing::NodeRunner& runner) {
    runner.clock().advance(std::chrono::minutes(2));
    return poll_now(runner);
}

// Logs carry message ids and counts, never addresses, names, subjects or contents.
void expect_no_personal_data(docpipe::testing::NodeRunner& runner) {
    const auto lines = runner.context().log_lines();
    EXPECT_FALSE(lines.empty());
    for (const auto& line : lines)
        for (const char* word : {"Siti", "siti", "Tuntutan", "Resit", "claims@", "siti@", "clinic.example"})
            EXPECT_EQ(line.message.find(word), std::string::npos) << line.message;
}

std::string push_body(std::uint64_t history, const std::string& address = kUser) {
    const std::string data = json{{"emailAddress", address}, {"historyId", history}}.dump();
    std::string b64 = test::base64_mime(data);
    b64.erase(std::remove(b64.begin(), b64.end(), '\r'), b64.end());
    b64.erase(std::remove(b64.begin(), b64.end(), '\n'), b64.end());
    return json{{"message", {{"data", b64}, {"messageId", "1"}, {"message_id", "1"}, {"publishTime", "2026-12-01T00:00:00Z"}}},
                {"subscription", "projects/test-project/subscriptions/push"}}
        .dump();
}

HookRequest push_request(const std::string& token, const std::string& body) {
    HookRequest r;
    r.method = "POST";
    r.headers["content-type"] = "application/json";
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    r.body = body;
    return r;
}

std::string push_config(const Google& g, const std::string& extra = "") {
    return g.config("pubsub_push", fmt::format("push_audience: {}\npush_service_account: {}\n", kAudience, kPushAccount) + extra);
}

}  // namespace

// The checks across settings are the descriptor's rules, run before the source is built (its
// constructor no longer repeats them): the testing kit refuses as `docpipe validate` does.
TEST(GmailSource, SettingsThatDoNotFitTogetherAreRefusedBeforeItIsBuilt) {
    const auto refusal = [](const std::string& yaml) -> std::string {
        try {
            docpipe::testing::NodeRunner::from_plugin(plugin_file(), "source.gmail", "credentials_file: /nonexistent.json\n" + yaml);
        } catch (const std::exception& e) {
            return e.what();
        }
        return "built";
    };
    const auto expect_refused = [&](const std::string& yaml, const std::string& want) {
        const std::string why = refusal(yaml);
        EXPECT_NE(why.find(want), std::string::npos) << yaml << " -> " << why;
    };
    expect_refused("mode: poll\nprocessed_label: Done\nfailed_label: DONE\n", "processed_label and failed_label must differ");
    expect_refused("mode: poll\nlabel: ''\n", "label, processed_label and failed_label must not be empty");
    expect_refused("mode: poll\ntopic: claims\n", "topic 'claims' must read projects/<project>/topics/<topic>");
    expect_refused("mode: pubsub_pull\nsubscription: sub\n", "mode pubsub_pull needs subscription");
    expect_refused("mode: pubsub_push\n", "mode pubsub_push needs push_audience and push_service_account");
}

// ---- poll mode --------------------------------------------------------------------------------

TEST(GmailSource, EmitsEachNewMailWithItsExactBytesAndLabelsItOnAck) {
    Google g;
    g.deliver(mail(0));  // already there at start: not imported
    auto runner = make_runner(g.config("poll"));
    const std::uint64_t start = cursor(runner);
    EXPECT_GT(start, 0u) << "the cursor starts at the mailbox's history id";

    std::vector<json> delivered;
    for (int i = 1; i <= 3; ++i) delivered.push_back(g.deliver(mail(i)));
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        const Document& doc = items[i].doc;
        EXPECT_EQ(bytes_of(doc), mail(i + 1)) << "the part is the raw RFC 2822 message, byte for byte";
        EXPECT_EQ(doc.parts[0].media_type, "message/rfc822");
        EXPECT_EQ(doc.id, Document::content_id(mail(i + 1)));
        EXPECT_EQ(doc.attributes.at("gmail_id"), delivered[i]["id"]);
        EXPECT_EQ(doc.attributes.at("message_id"), fmt::format("claim-{}@clinic.example", i + 1));
        EXPECT_EQ(doc.attributes.at("source"), "gmail");
        EXPECT_EQ(doc.attributes.at("filename"), delivered[i]["id"].get<std::string>() + ".eml");
        EXPECT_FALSE(doc.attributes.at("received_at").empty());
    }
    EXPECT_EQ(cursor(runner), start) << "nothing settled yet: the cursor stays";

    for (auto& item : items) item.ack(Outcome{});
    const auto box = g.messages();
    for (const auto& d : delivered) {
        const auto& m = box.at(d["id"].get<std::string>());
        EXPECT_TRUE(Google::has(m, "docpipe-processed"));
        EXPECT_FALSE(Google::has(m, "UNREAD"));
        EXPECT_TRUE(Google::has(m, "INBOX"));
    }
    EXPECT_GE(cursor(runner), delivered.back()["historyId"].get<std::uint64_t>());
    EXPECT_FALSE(Google::has(box.at(g.control("GET", "/_fake/gmail/messages")["messages"][0]["id"].get<std::string>()), "docpipe-processed"))
        << "the mail from before the start is left alone";

    // Our own label changes make history, but never documents.
    EXPECT_TRUE(poll_now(runner).empty());
    EXPECT_TRUE(sweep(runner).empty());
    for (const auto& r : g.requests("gmail.history")) {
        EXPECT_EQ(r["query"]["historyTypes"], json::array({"messageAdded", "labelAdded"})) << "new mail, and mail moved into the label";
        EXPECT_EQ(r["query"]["labelId"], "INBOX");
    }
    EXPECT_EQ(runner.component().health().status, Health::Healthy) << runner.component().health().detail;
    expect_no_personal_data(runner);
}

TEST(GmailSource, CreatesItsLabelsOnceAndTakesExistingOnesWhateverTheirCase) {
    Google g;
    {
        auto runner = make_runner(g.config("poll", "failed_label: Docpipe-Failed\n"));
        (void)runner;
    }
    auto runner = make_runner(g.config("poll", "failed_label: DOCPIPE-FAILED\n"));
    EXPECT_EQ(g.requests("gmail.labels.create").size(), 2u) << "processed and failed, created by the first runner only";
}

TEST(GmailSource, AFailureAddsTheFailedLabelAndKeepsTheMailUnread) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    const auto d = g.deliver(mail(1));
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 1u);
    items[0].ack(Outcome{false, "transform.mime: not an email"});
    const auto m = g.messages().at(d["id"].get<std::string>());
    EXPECT_TRUE(Google::has(m, "docpipe-failed"));
    EXPECT_FALSE(Google::has(m, "docpipe-processed"));
    EXPECT_TRUE(Google::has(m, "UNREAD"));
    EXPECT_GE(cursor(runner), d["historyId"].get<std::uint64_t>());
    EXPECT_TRUE(sweep(runner).empty());
}

TEST(GmailSource, TheCursorMovesOnlyPastMailThatIsSettledInOrder) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    const std::uint64_t start = cursor(runner);
    std::vector<json> d;
    for (int i = 1; i <= 3; ++i) d.push_back(g.deliver(mail(i)));
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 3u);
    items[2].ack(Outcome{});
    items[0].ack(Outcome{});
    EXPECT_EQ(cursor(runner), start) << "the second is still in flight";
    // A sweep meanwhile finds the one in flight and the settled ones, and emits none of them.
    EXPECT_TRUE(sweep(runner).empty());
    EXPECT_EQ(cursor(runner), start);
    items[1].ack(Outcome{});
    EXPECT_GE(cursor(runner), d[2]["historyId"].get<std::uint64_t>());
}

TEST(GmailSource, SkipsDeletedMailAndKeepsPagingThroughEmptyPages) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    const auto gone = g.deliver(mail(1));
    const auto kept = g.deliver(mail(2));
    g.control("POST", "/_fake/gmail/delete", {{"user", kUser}, {"id", gone["id"]}});
    g.control("POST", "/_fake/gmail/paging", {{"empty_pages", 2}});
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].doc.attributes.at("gmail_id"), kept["id"]);
    EXPECT_EQ(g.requests("gmail.history").size(), 3u) << "two empty pages with a nextPageToken, then the records";
    items[0].ack(Outcome{});
    EXPECT_GT(cursor(runner), kept["historyId"].get<std::uint64_t>()) << "past the deletion too";
}

// A hostile or broken answer for one message (raw that is not base64, or no raw at all) used
// to fail the whole sync from that cursor on every try: no later mail was ever taken.
TEST(GmailSource, AnUnreadableMessageIsRejectedWithItsReasonAndTheSyncGoesOn) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    std::vector<json> d;
    for (int i = 1; i <= 4; ++i) d.push_back(g.deliver(mail(i)));
    const std::string bad_raw = d[0]["id"], no_raw = d[1]["id"];
    // The first two messages.get answers (oldest first) are broken, each its own way.
    g.control("POST", "/_fake/script",
              {{"target", "gmail.get"},
               {"responses",
                {{{"status", 200}, {"body", {{"id", bad_raw}, {"threadId", bad_raw}, {"raw", "%%% not base64 %%%"}}}},
                 {{"status", 200}, {"body", {{"id", no_raw}, {"threadId", no_raw}, {"labelIds", json::array({"INBOX"})}}}}}}});
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 4u) << "the sync went on past the unreadable ones";
    EXPECT_EQ(items[0].doc.attributes.at("gmail_id"), bad_raw);
    EXPECT_NE(items[0].rejected.find(bad_raw), std::string::npos) << items[0].rejected;
    EXPECT_NE(items[0].rejected.find("not base64"), std::string::npos) << items[0].rejected;
    EXPECT_EQ(items[1].doc.attributes.at("gmail_id"), no_raw);
    EXPECT_NE(items[1].rejected.find(no_raw), std::string::npos) << items[1].rejected;
    EXPECT_NE(items[1].rejected.find("no raw"), std::string::npos) << items[1].rejected;
    for (int i = 2; i < 4; ++i) {
        EXPECT_TRUE(items[i].rejected.empty());
        EXPECT_EQ(bytes_of(items[i].doc), mail(i + 1));
    }
    // The runtime acks a rejected document with a failed Outcome once it is recorded.
    items[0].ack(Outcome{false, items[0].rejected});
    items[1].ack(Outcome{false, items[1].rejected});
    for (int i = 2; i < 4; ++i) items[i].ack(Outcome{});
    const auto messages = g.messages();
    EXPECT_TRUE(Google::has(messages.at(bad_raw), "docpipe-failed"));
    EXPECT_TRUE(Google::has(messages.at(no_raw), "docpipe-failed"));
    EXPECT_TRUE(Google::has(messages.at(d[3]["id"]), "docpipe-processed"));
    EXPECT_GE(cursor(runner), d[3]["historyId"].get<std::uint64_t>()) << "the cursor is not stuck behind them";
    EXPECT_EQ(runner.component().health().status, Health::Healthy) << runner.component().health().detail;
    EXPECT_TRUE(sweep(runner).empty());
    expect_no_personal_data(runner);
}

// A claim that landed in Spam (or was filtered past the Inbox) and is moved into it later has
// no messageAdded record with the label: it was never taken, and every run said "0 taken".
TEST(GmailSource, AMailMovedIntoTheInboxLaterIsTakenOnce) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    const json spam = g.deliver(mail(1), json::array({"SPAM", "UNREAD"}));
    EXPECT_TRUE(poll_now(runner).empty()) << "not in the Inbox yet";
    g.control("POST", "/_fake/gmail/relabel", {{"user", kUser}, {"id", spam["id"]}, {"add", {"INBOX"}}, {"remove", {"SPAM"}}});
    auto items = sweep(runner);
    ASSERT_EQ(items.size(), 1u) << "moved into the Inbox: taken";
    EXPECT_EQ(bytes_of(items[0].doc), mail(1));
    items[0].ack(Outcome{});
    EXPECT_TRUE(Google::has(g.messages().at(spam["id"]), "docpipe-processed"));
    // Its own processed label is a labelAdded record too, and moving it out and back in again
    // adds the label anew: neither takes it a second time.
    g.control("POST", "/_fake/gmail/relabel", {{"user", kUser}, {"id", spam["id"]}, {"remove", {"INBOX"}}});
    g.control("POST", "/_fake/gmail/relabel", {{"user", kUser}, {"id", spam["id"]}, {"add", {"INBOX"}}});
    EXPECT_TRUE(sweep(runner).empty());
}

// One message whose messages.get keeps answering a 4xx ("Invalid id value") failed every sync
// from the cursor, so no mail behind it was ever taken. It is now failed on its own.
TEST(GmailSource, AMessageGmailRefusesToGiveIsFailedAndTheMailBehindItIsTaken) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    std::vector<json> d;
    for (int i = 1; i <= 3; ++i) d.push_back(g.deliver(mail(i)));
    const json refusal = {{"error", {{"code", 400}, {"message", "Invalid id value"}}}};
    g.control("POST", "/_fake/script", {{"target", "gmail.get"}, {"responses", json::array({{{"status", 400}, {"body", refusal}}})}});
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 3u) << "the sync went on past it";
    EXPECT_NE(items[0].rejected.find("messages.get answered 400"), std::string::npos) << items[0].rejected;
    EXPECT_NE(items[0].rejected.find("Invalid id value"), std::string::npos) << items[0].rejected;
    for (int i = 1; i < 3; ++i) EXPECT_EQ(bytes_of(items[i].doc), mail(i + 1));
}

// A watch Gmail refuses at start (the topic does not let Gmail publish) stopped all intake:
// setup failed, and was retried for ever while no mail was read. Now the mailbox is synced as
// in poll mode, health names the problem and what to grant, and the watch is tried again.
TEST(GmailSource, AWatchRefusedAtStartLeavesTheMailboxReadAndSaysWhatToGrant) {
    Google g;
    g.subscribe();
    const json refusal = {{"error", {{"code", 403}, {"message", "User not authorized to perform this action."}}}};
    g.control("POST", "/_fake/script",
              {{"target", "gmail.watch"}, {"responses", json::array({{{"status", 403}, {"count", 2}, {"body", refusal}}})}});
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("topic: {}\nsubscription: {}\n", kTopic, kSubscription)));
    const auto health = runner.component().health();
    EXPECT_EQ(health.status, Health::Degraded) << health.detail;
    EXPECT_NE(health.detail.find("the Gmail watch could not be set"), std::string::npos) << health.detail;
    EXPECT_NE(health.detail.find("gmail-api-push@system.gserviceaccount.com"), std::string::npos) << health.detail;
    const json d = g.deliver(mail(1));
    auto items = sweep(runner);
    ASSERT_EQ(items.size(), 1u) << "the mailbox is read without the watch";
    items[0].ack(Outcome{});
    runner.clock().advance(std::chrono::minutes(30));
    poll_now(runner);
    EXPECT_GE(g.requests("gmail.watch").size(), 2u) << "the watch is tried again";
}

// A stored cursor beyond the mailbox's history (state restored from another mailbox, or the
// mailbox recreated) found nothing, ever, while health said all was well. It is not used: the
// mail Gmail holds is found by query.
TEST(GmailSource, ACursorAheadOfTheMailboxIsNotUsed) {
    Google g;
    // The first setup fails, so that the cursor can be put in its store before the second.
    g.control("POST", "/_fake/script", {{"target", "gmail.getProfile"}, {"responses", json::array({{{"status", 503}, {"count", 1}}})}});
    auto runner = make_runner(g.config("poll"));
    const json d = g.deliver(mail(1));
    runner.context().state().put(kCursorKey, std::to_string(g.mailbox_history() + 100000));
    // The resync's first listing fails: it is owed still, though the stored cursor is now the
    // mailbox's (a plain sync from there would never see this mail).
    g.control("POST", "/_fake/script", {{"target", "gmail.list"}, {"responses", json::array({{{"status", 503}, {"count", 1}}})}});
    runner.clock().advance(std::chrono::minutes(1));
    EXPECT_TRUE(poll_now(runner).empty());
    runner.clock().advance(std::chrono::minutes(1));
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 1u) << "taken by the resync";
    EXPECT_EQ(bytes_of(items[0].doc), mail(1));
    items[0].ack(Outcome{});
    EXPECT_LE(cursor(runner), g.mailbox_history()) << "the cursor is the mailbox's again";
    std::string warned;
    for (const auto& line : runner.context().log_lines())
        if (line.level == LogLevel::Warn) warned += line.message + "\n";
    EXPECT_NE(warned.find("is ahead of the mailbox's history"), std::string::npos) << warned;
}

// Gmail's modify failing for longer than the tries in an ack (a short outage) left a booked
// mail unread and unlabelled for good, looking untouched. The labels are kept and set once
// Gmail answers again. They are kept at the first failure: the ack's retries, with their
// back-off, held up the runtime's thread that settles every document.
TEST(GmailSource, LabelsGmailCouldNotTakeAreSetOnceItAnswersAgain) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    const json d = g.deliver(mail(1));
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 1u);
    g.control("POST", "/_fake/script", {{"target", "gmail.modify"}, {"responses", json::array({{{"status", 503}, {"count", 2}}})}});
    items[0].ack(Outcome{});
    EXPECT_FALSE(Google::has(g.messages().at(d["id"]), "docpipe-processed")) << "Gmail was down";
    EXPECT_EQ(g.requests("gmail.modify").size(), 1u) << "kept after one try, not tried again in the ack";
    EXPECT_EQ(runner.context().state().keys("gmail/claims@example.com/unlabelled/").size(), 1u) << "kept";
    poll_now(runner);
    EXPECT_FALSE(Google::has(g.messages().at(d["id"]), "docpipe-processed")) << "Gmail still down at this poll";
    EXPECT_EQ(runner.context().state().keys("gmail/claims@example.com/unlabelled/").size(), 1u) << "kept still";
    poll_now(runner);
    const auto message = g.messages().at(d["id"]);
    EXPECT_TRUE(Google::has(message, "docpipe-processed"));
    EXPECT_FALSE(Google::has(message, "UNREAD"));
    EXPECT_TRUE(runner.context().state().keys("gmail/claims@example.com/unlabelled/").empty());
}

// A 200 that is no JSON at all (a proxy's login page) says nothing about the message: the
// sync fails and is tried again, and the message is not labelled failed for good.
TEST(GmailSource, AnAnswerThatIsNoJsonFailsTheSyncAndDoesNotFailTheMessage) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    const json d = g.deliver(mail(1));
    g.control("POST", "/_fake/script", {{"target", "gmail.get"}, {"responses", {{{"status", 200}, {"body", "<html>Sign in</html>"}}}}});
    EXPECT_TRUE(poll_now(runner).empty());
    EXPECT_EQ(runner.component().health().status, Health::Degraded);
    EXPECT_FALSE(Google::has(g.messages().at(d["id"]), "docpipe-failed"));
    auto items = sweep(runner);
    ASSERT_EQ(items.size(), 1u) << "taken once the answer is real";
    EXPECT_TRUE(items[0].rejected.empty());
    EXPECT_EQ(bytes_of(items[0].doc), mail(1));
}

// A server that repeats a nextPageToken used to be followed for 10,000 pages (with SIGTERM
// waiting behind it); a token seen before in the same listing now ends it with an error.
TEST(GmailSource, ARepeatedPageTokenEndsTheListingWithAClearError) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    const auto d = g.deliver(mail(1));
    const json looping{{"history", json::array()}, {"nextPageToken", "same-token"}, {"historyId", d["historyId"].get<std::uint64_t>()}};
    g.control("POST", "/_fake/script", {{"target", "gmail.history"}, {"responses", {{{"status", 200}, {"body", looping}, {"count", 50}}}}});
    EXPECT_TRUE(poll_now(runner).empty());
    EXPECT_EQ(g.requests("gmail.history").size(), 2u) << "the first page, then the one that repeats its token";
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Degraded);
    EXPECT_NE(h.detail.find("nextPageToken 'same-token' a second time"), std::string::npos) << h.detail;

    // The same in the resync's messages.list.
    g.control("POST", "/_fake/reset", {{"requests_only", true}});  // drops the script
    g.control("POST", "/_fake/gmail/retention", {{"floor_history_id", g.mailbox_history()}});
    const json listing_loops{{"messages", json::array()}, {"nextPageToken", "again"}};
    g.control("POST", "/_fake/script", {{"target", "gmail.list"}, {"responses", {{{"status", 200}, {"body", listing_loops}, {"count", 50}}}}});
    EXPECT_TRUE(sweep(runner).empty());
    EXPECT_EQ(g.requests("gmail.list").size(), 2u);
    EXPECT_NE(runner.component().health().detail.find("messages.list (resync)"), std::string::npos) << runner.component().health().detail;
}

// Paging is checked for a stop between pages: a listing of thousands of pages must not hold up
// a shutdown (SIGTERM) until it ends.
TEST(GmailSource, StopEndsALongListingBetweenPages) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    g.deliver(mail(1));
    g.control("POST", "/_fake/gmail/paging", {{"empty_pages", 9000}});
    std::vector<docpipe::testing::SourceItem> items;
    std::thread polling([&] { items = poll_now(runner); });
    std::this_thread::sleep_for(milliseconds(300));
    const auto stop_at = std::chrono::steady_clock::now();
    dynamic_cast<Source&>(runner.component()).stop();
    polling.join();
    EXPECT_LT(std::chrono::steady_clock::now() - stop_at, std::chrono::seconds(2)) << "stopped between two pages";
    EXPECT_TRUE(items.empty());
    EXPECT_LT(g.requests("gmail.history").size(), 9000u);
}

// A listed message that messages.get answers 404 for is skipped (deleted since: normal), but
// at warn with its id, not at debug where no operator sees it; the metric counts it too.
TEST(GmailSource, AListedMessageThatIsGoneIsLoggedAsAWarningWithItsId) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    const std::string gone = g.deliver(mail(1))["id"];
    g.control("POST", "/_fake/gmail/delete", {{"user", kUser}, {"id", gone}});
    EXPECT_TRUE(poll_now(runner).empty());
    bool warned = false;
    for (const auto& line : runner.context().log_lines())
        if (line.level == LogLevel::Warn && line.message.find(gone) != std::string::npos && line.message.find("404") != std::string::npos)
            warned = true;
    EXPECT_TRUE(warned);
    EXPECT_EQ(runner.context().counter("gmail_messages_gone_total"), 1.0);
    expect_no_personal_data(runner);
}

TEST(GmailSource, AnExpiredCursorLeadsToOneBoundedResyncOfTheUnprocessedMail) {
    Google g;
    auto runner = make_runner(g.config("poll", "resync_max: 10\n"));
    const auto first = g.deliver(mail(1));
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 1u);
    items[0].ack(Outcome{});
    const std::uint64_t before = cursor(runner);

    // An outage: three mails arrive, and Gmail forgets the history the cursor points into.
    std::set<std::string> missed;
    for (int i = 2; i <= 4; ++i) missed.insert(g.deliver(mail(i))["id"]);
    g.control("POST", "/_fake/gmail/retention", {{"floor_history_id", g.mailbox_history()}});
    items = sweep(runner);
    std::set<std::string> got;
    for (const auto& item : items) got.insert(item.doc.attributes.at("gmail_id"));
    EXPECT_EQ(got, missed) << "the processed one is not taken again";
    EXPECT_EQ(g.requests("gmail.list").size(), 1u);
    EXPECT_EQ(cursor(runner), before) << "not moved before the resync's mail is settled";
    for (auto& item : items) item.ack(Outcome{});
    EXPECT_GE(cursor(runner), g.control("GET", "/_fake/gmail/mailbox?user=" + kUser)["floor"].get<std::uint64_t>());

    // The new cursor is inside the history Gmail keeps: no second resync, nothing again.
    EXPECT_TRUE(sweep(runner).empty());
    EXPECT_TRUE(sweep(runner).empty());
    EXPECT_EQ(g.requests("gmail.list").size(), 1u);
    (void)first;
}

// An error answer that echoes the request's Authorization header (as some proxies and API
// gateways do) put the access token into the log and /health/detailed.
TEST(GmailSource, AnAccessTokenTheServerEchoesIsNotLoggedOrShownInHealth) {
    Google g;
    auto runner = make_runner(g.config("poll"));
    std::string token;
    for (const auto& r : g.requests("gmail.getProfile"))
        for (const auto& [name, value] : r["headers"].items())
            if (name == "Authorization" || name == "authorization") token = value.get<std::string>().substr(7);
    ASSERT_FALSE(token.empty());
    const json refusal{{"error",
                        {{"code", 401},
                         {"message", "Request had invalid authentication credentials (Authorization: Bearer " + token + ")"},
                         {"status", "UNAUTHENTICATED"}}}};
    // Twice: the source tries once more with a new token after a 401.
    g.control("POST", "/_fake/script", {{"target", "gmail.history"}, {"responses", {{{"status", 401}, {"body", refusal}, {"count", 2}}}}});
    g.deliver(mail(1));
    EXPECT_TRUE(poll_now(runner).empty());
    const auto h = runner.component().health();
    EXPECT_NE(h.status, Health::Healthy);
    EXPECT_NE(h.detail.find("Bearer [secret]"), std::string::npos) << h.detail;
    EXPECT_EQ(h.detail.find(token), std::string::npos) << h.detail;
    for (const auto& line : runner.context().log_lines()) EXPECT_EQ(line.message.find(token), std::string::npos) << line.message;
}

TEST(GmailSource, RefusedCredentialsMakeHealthUnavailableWithWhatToDo) {
    Google g;
    g.control("POST", "/_fake/script",
              {{"target", "token"},
               {"responses", {{{"status", 400}, {"body", {{"error", "invalid_grant"}, {"error_description", "Invalid JWT Signature."}}},
                               {"count", 50}}}}});
    auto runner = make_runner(g.config("poll"));
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Unavailable);
    EXPECT_NE(h.detail.find("refused the credentials"), std::string::npos) << h.detail;
    EXPECT_NE(h.detail.find("create a new key"), std::string::npos) << h.detail;
    EXPECT_TRUE(poll_now(runner).empty());
}

// ---- Pub/Sub pull -----------------------------------------------------------------------------

TEST(GmailSource, PullAcksNotificationsOnlyOnceTheirMailIsSettled) {
    Google g;
    g.subscribe();
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("topic: {}\nsubscription: {}\n", kTopic, kSubscription)));
    EXPECT_EQ(g.requests("gmail.watch").size(), 1u);
    const auto watch = g.requests("gmail.watch");
    std::vector<json> d;
    for (int i = 1; i <= 3; ++i) d.push_back(g.deliver(mail(i)));

    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 3u);
    auto s = g.stats();
    EXPECT_EQ(s["published"], 4) << "the watch's own notification and one per mail";
    EXPECT_EQ(s["acked"], 1) << "the watch's notification names no new history: acked at once";
    EXPECT_EQ(s["outstanding"], 3) << "held while their mail is in flight";
    EXPECT_GE(g.requests("pubsub.modifyAckDeadline").size(), 1u) << "deadlines extended while in flight";

    items[0].ack(Outcome{});
    items[1].ack(Outcome{});
    EXPECT_EQ(g.stats()["acked"], 1) << "the cursor waits for the third mail, and so do the notifications";
    items[2].ack(Outcome{});
    EXPECT_EQ(g.stats()["acked"], 4);

    // Our label changes notify too: they are synced, acked, and emit nothing.
    EXPECT_TRUE(poll_now(runner).empty());
    EXPECT_TRUE(poll_now(runner).empty());
    s = g.stats();
    EXPECT_EQ(s["outstanding"], 0) << s.dump();
    EXPECT_GT(s["published"].get<int>(), 4);
}

TEST(GmailSource, DuplicateAndRedeliveredNotificationsEmitNothingTwice) {
    Google g;
    g.subscribe({{"ack_deadline_seconds", 1}});
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("topic: {}\nsubscription: {}\n", kTopic, kSubscription)));
    const auto d1 = g.deliver(mail(1));
    const auto d2 = g.deliver(mail(2));
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 2u);

    // The same notifications again (Pub/Sub is at-least-once), while the mail is in flight.
    for (const auto& d : {d1, d2})
        g.control("POST", "/_fake/pubsub/publish",
                  {{"topic", kTopic}, {"data", json{{"emailAddress", kUser}, {"historyId", d["historyId"]}}.dump()}});
    EXPECT_TRUE(poll_now(runner).empty());
    for (auto& item : items) item.ack(Outcome{});
    EXPECT_EQ(g.stats()["acked"], 5) << "the watch's, the two mails' and their two duplicates";

    // Our label changes notified; their acks do not reach Pub/Sub, so they come back.
    g.control("POST", "/_fake/script", {{"target", "pubsub.acknowledge"}, {"responses", {{{"status", 503}, {"count", 20}}}}});
    EXPECT_TRUE(poll_now(runner).empty());
    g.control("POST", "/_fake/reset", {{"requests_only", true}});  // drops the script
    std::this_thread::sleep_for(milliseconds(1300));
    EXPECT_TRUE(poll_now(runner).empty());
    EXPECT_TRUE(poll_now(runner).empty());
    const auto s = g.stats();
    EXPECT_GE(s["redeliveries"].get<int>(), 1) << s.dump();
    EXPECT_EQ(s["outstanding"], 0) << s.dump();
    EXPECT_TRUE(sweep(runner).empty());
    EXPECT_EQ(g.requests("gmail.get").size(), 0u) << "nothing fetched again";
}

TEST(GmailSource, NotificationsForAnotherMailboxAreAckedAndIgnored) {
    Google g;
    g.subscribe();
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("subscription: {}\n", kSubscription)));
    EXPECT_TRUE(poll_now(runner).empty());  // the first poll syncs anyway
    g.control("POST", "/_fake/pubsub/publish",
              {{"topic", kTopic}, {"data", json{{"emailAddress", "someone@else.example"}, {"historyId", 99999999}}.dump()}});
    g.control("POST", "/_fake/pubsub/publish", {{"topic", kTopic}, {"data", "not json"}});
    const auto syncs = g.requests("gmail.history").size();
    EXPECT_TRUE(poll_now(runner).empty());
    EXPECT_EQ(g.requests("gmail.history").size(), syncs) << "no sync for them";
    EXPECT_EQ(g.stats()["outstanding"], 0);
}

// A pull that fails shows in a service's health until one succeeds.
TEST(GmailSource, APullThatFailsShowsInAServicesHealthUntilOneSucceeds) {
    Google g;
    g.subscribe();
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("subscription: {}\n", kSubscription)));
    const auto poll_as_a_service = [&runner] { return runner.poll({milliseconds(0), false}); };
    EXPECT_TRUE(poll_as_a_service().empty());
    EXPECT_EQ(runner.component().health().status, Health::Healthy);
    g.control("POST", "/_fake/script", {{"target", "pubsub.pull"}, {"responses", {{{"status", 503}}}}});
    EXPECT_TRUE(poll_as_a_service().empty());
    auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Degraded);
    EXPECT_NE(h.detail.find("pull"), std::string::npos) << h.detail;
    EXPECT_TRUE(poll_as_a_service().empty());
    h = runner.component().health();
    EXPECT_EQ(h.status, Health::Healthy) << h.detail;
}

// `run --once` reads the mailbox by its history, whatever the notifications say: a pull that
// fails lost nothing, yet the run exited 2 ("a source could not read its input") and cron
// called it a failure. Health is healthy then, and says the pull fails.
TEST(GmailSource, APullThatFailsInARunOnceLosesNothingAndFailsNothing) {
    Google g;
    g.subscribe();
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("subscription: {}\n", kSubscription)));
    EXPECT_TRUE(poll_now(runner).empty());  // set up; the history starts here
    g.deliver(mail(1));
    g.control("POST", "/_fake/script", {{"target", "pubsub.pull"}, {"responses", {{{"status", 503}}}}});
    EXPECT_EQ(sweep(runner).size(), 1u) << "the mail is read by history";
    EXPECT_GE(g.requests("pubsub.pull").size(), 2u) << "the pull was tried, and failed";
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Healthy) << h.detail;
    EXPECT_NE(h.detail.find("the Pub/Sub pull fails"), std::string::npos) << h.detail;
    EXPECT_NE(h.detail.find("503"), std::string::npos) << h.detail;
}

TEST(GmailSource, FiveHundredMailsPulledWhileFourThreadsDeliverAreEachEmittedOnce) {
    Google g;
    g.subscribe();
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("topic: {}\nsubscription: {}\nmax_messages: 20\n", kTopic, kSubscription)));
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t)
        senders.emplace_back([&g, t] {
            for (int i = 0; i < 125; ++i) g.deliver(mail(1000 + t * 125 + i));
        });
    std::map<std::string, int> seen;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (seen.size() < 500 && std::chrono::steady_clock::now() < deadline) {
        runner.clock().advance(milliseconds(100));
        for (auto& item : runner.poll({milliseconds(50), false})) {
            ++seen[item.doc.attributes.at("gmail_id")];
            item.ack(Outcome{});
        }
    }
    for (auto& s : senders) s.join();
    // Our own label changes notified 500 times more: all synced, acked, and nothing emitted.
    for (int i = 0; i < 60 && g.stats()["outstanding"] != 0; ++i)
        for (auto& item : poll_now(runner)) ++seen[item.doc.attributes.at("gmail_id")];
    EXPECT_EQ(seen.size(), 500u);
    for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
    for (const auto& [id, m] : g.messages()) EXPECT_TRUE(Google::has(m, "docpipe-processed")) << id;
    EXPECT_EQ(g.stats()["outstanding"], 0) << g.stats().dump();
    expect_no_personal_data(runner);
}

TEST(GmailSource, EmulatorHostSendsPubSubCallsWithoutCredentials) {
    Google g({"--pubsub-no-auth"});
    g.subscribe();
    ::setenv("PUBSUB_EMULATOR_HOST", ("127.0.0.1:" + std::to_string(g.fake.port())).c_str(), 1);
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("topic: {}\nsubscription: {}\npubsub_url: https://pubsub.invalid\n",
                                                                 kTopic, kSubscription)));
    ::unsetenv("PUBSUB_EMULATOR_HOST");
    g.deliver(mail(1));
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 1u);
    const auto pulls = g.requests("pubsub.pull");
    ASSERT_FALSE(pulls.empty());
    for (const auto& r : pulls) EXPECT_FALSE(r["headers"].contains("authorization"));
    for (const auto& r : g.requests("gmail.getProfile")) EXPECT_TRUE(r["headers"].contains("authorization"));
}

// ---- watch ------------------------------------------------------------------------------------

TEST(GmailSource, RenewsTheWatchWhenItExpiresWithinWatchRenewBefore) {
    Google g;
    g.subscribe();
    g.control("POST", "/_fake/gmail/watch_expiration", {{"lifetime_ms", 2 * 3600 * 1000}});  // the first watch lives 2 h
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("topic: {}\nsubscription: {}\n", kTopic, kSubscription)));
    ASSERT_EQ(g.requests("gmail.watch").size(), 1u);
    const auto body = g.control("GET", "/_fake/gmail/mailbox?user=" + kUser)["watch"];
    EXPECT_EQ(body["topic"], kTopic);
    EXPECT_EQ(body["labelIds"], json::array({"INBOX"}));
    EXPECT_EQ(body["behavior"], "include");
    // docpipe_gmail_watch_expiry_timestamp_seconds: the expiry Google gave, in Unix seconds.
    auto hours_left = [&] {
        const double now_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        return (runner.context().counter("gmail_watch_expiry_timestamp_seconds") - now_s) / 3600.0;
    };
    EXPECT_NEAR(hours_left(), 2.0, 0.1);

    g.control("POST", "/_fake/gmail/watch_expiration", {{"lifetime_ms", 7LL * 24 * 3600 * 1000}});
    runner.clock().advance(std::chrono::minutes(2));
    poll_now(runner);
    EXPECT_EQ(g.requests("gmail.watch").size(), 2u) << "2 h left is within the default 1 d";
    EXPECT_NEAR(hours_left(), 7 * 24.0, 0.1) << "the gauge follows the renewed watch";
    runner.clock().advance(std::chrono::minutes(10));
    poll_now(runner);
    EXPECT_EQ(g.requests("gmail.watch").size(), 2u) << "7 d left: no renewal";
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Healthy) << h.detail;
    EXPECT_NE(h.detail.find("watch expires"), std::string::npos) << h.detail;
}

TEST(GmailSource, AWatchThatCannotBeRenewedShowsInHealth) {
    Google g;
    g.subscribe();
    g.control("POST", "/_fake/gmail/watch_expiration", {{"lifetime_ms", 60 * 1000}});
    auto runner = make_runner(g.config("pubsub_pull", fmt::format("topic: {}\nsubscription: {}\n", kTopic, kSubscription)));
    const json refusal{{"error", {{"code", 403}, {"message", "Error sending test message to Cloud PubSub"}, {"status", "PERMISSION_DENIED"}}}};
    g.control("POST", "/_fake/script", {{"target", "gmail.watch"}, {"responses", {{{"status", 403}, {"count", 10}, {"body", refusal}}}}});
    runner.clock().advance(std::chrono::minutes(5));  // the watch has expired by the runner's clock
    poll_now(runner);
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Unavailable) << h.detail;
    EXPECT_NE(h.detail.find("watch expired"), std::string::npos) << h.detail;
}

// ---- Pub/Sub push -----------------------------------------------------------------------------

TEST(GmailSource, PushesWithABadTokenAreRefusedAndChangeNothing) {
    Google g;
    auto runner = make_runner(push_config(g));
    EXPECT_TRUE(poll_now(runner).empty());  // the first poll's sync
    const auto d = g.deliver(mail(1));
    auto& hook = dynamic_cast<HttpHook&>(runner.component());
    const std::string body = push_body(d["historyId"]);
    for (const std::string& token : {g.token("bad_signature"), g.token("wrong_audience"), g.token("expired"),
                                     g.token("good", kAudience, "someone@test-project.iam.gserviceaccount.com"), std::string("a.b.c"),
                                     std::string()}) {
        const auto r = hook.handle_hook(push_request(token, body));
        EXPECT_EQ(r.status, 401) << token;
    }
    EXPECT_FALSE(runner.context().state().get(kPendingKey).has_value());
    EXPECT_TRUE(poll_now(runner).empty()) << "nothing recorded, nothing synced";
    EXPECT_EQ(g.requests("jwks").size(), 1u) << "the keys are fetched once and cached";

    const auto r = hook.handle_hook(push_request(g.token("good"), body));
    EXPECT_EQ(r.status, 204);
    EXPECT_EQ(runner.context().state().get(kPendingKey).value_or(""), std::to_string(d["historyId"].get<std::uint64_t>()))
        << "recorded durably before the 204";
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 1u);
    items[0].ack(Outcome{});
    EXPECT_FALSE(runner.context().state().get(kPendingKey).has_value()) << "the cursor has passed it";
    // A stale push (the cursor is past it) is a 204 no-op.
    EXPECT_EQ(hook.handle_hook(push_request(g.token("good"), body)).status, 204);
    EXPECT_TRUE(poll_now(runner).empty());
    // Another mailbox, or an unreadable body: acknowledged (2xx), ignored.
    EXPECT_EQ(hook.handle_hook(push_request(g.token("good"), push_body(1u << 30, "other@example.com"))).status, 204);
    EXPECT_EQ(hook.handle_hook(push_request(g.token("good"), "{}")).status, 204);
    EXPECT_TRUE(poll_now(runner).empty());
    expect_no_personal_data(runner);
}

// A recorded push (`pending_history_id`) beyond the mailbox's history (state restored from
// another mailbox, or from before the mailbox was recreated) is never passed by the cursor:
// kept, it stayed in the store for good, and every later push, lower than it, was answered 204
// without being recorded, though once Pub/Sub has its ack only that record says there is work.
// It is dropped at start.
TEST(GmailSource, ARecordedPushAheadOfTheMailboxIsDropped) {
    Google g;
    // The first setup fails, so that the record can be put in its store before the second.
    g.control("POST", "/_fake/script", {{"target", "gmail.getProfile"}, {"responses", json::array({{{"status", 503}, {"count", 1}}})}});
    auto runner = make_runner(push_config(g));
    const std::uint64_t beyond = g.mailbox_history() + 100000;
    runner.context().state().put(kPendingKey, std::to_string(beyond));
    runner.clock().advance(std::chrono::minutes(1));
    EXPECT_TRUE(poll_now(runner).empty());  // the setup, then the first poll's sync
    EXPECT_FALSE(runner.context().state().get(kPendingKey).has_value()) << "dropped at start";
    std::string warned;
    for (const auto& line : runner.context().log_lines())
        if (line.level == LogLevel::Warn) warned += line.message + "\n";
    EXPECT_NE(warned.find(fmt::format("a recorded Pub/Sub push named history {}, beyond the mailbox's", beyond)), std::string::npos)
        << warned;

    // A push after it is recorded before its 204, its mail is read, and the record is passed.
    const auto d = g.deliver(mail(1));
    const std::uint64_t history = d["historyId"].get<std::uint64_t>();
    auto& hook = dynamic_cast<HttpHook&>(runner.component());
    ASSERT_EQ(hook.handle_hook(push_request(g.token("good"), push_body(history))).status, 204);
    EXPECT_EQ(runner.context().state().get(kPendingKey).value_or(""), std::to_string(history)) << "recorded durably before the 204";
    auto items = poll_now(runner);
    ASSERT_EQ(items.size(), 1u) << "the source is not waiting for history " << beyond;
    EXPECT_EQ(bytes_of(items[0].doc), mail(1));
    items[0].ack(Outcome{});
    EXPECT_GE(cursor(runner), history);
    EXPECT_FALSE(runner.context().state().get(kPendingKey).has_value()) << "the cursor has passed it";
}

TEST(GmailSource, ANewSigningKeyIsFetchedForAnUnknownKid) {
    Google g;
    auto runner = make_runner(push_config(g));
    auto& hook = dynamic_cast<HttpHook&>(runner.component());
    const std::string body = push_body(g.deliver(mail(1))["historyId"]);
    EXPECT_EQ(hook.handle_hook(push_request(g.token("good"), body)).status, 204);
    g.control("POST", "/_fake/pubsub/rotate_key");
    runner.clock().advance(std::chrono::seconds(10));
    EXPECT_EQ(hook.handle_hook(push_request(g.token("good"), body)).status, 204);
    EXPECT_EQ(g.requests("jwks").size(), 2u);
}

TEST(GmailSource, FiveHundredPushesFromFourThreadsEmitEachMailOnce) {
    Google g;
    auto runner = make_runner(push_config(g));
    auto& hook = dynamic_cast<HttpHook&>(runner.component());
    const std::string token = g.token("good");
    std::atomic<int> refused{0};
    std::atomic<std::uint64_t> last_history{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t)
        senders.emplace_back([&, t] {
            for (int i = 0; i < 125; ++i) {
                const auto d = g.deliver(mail(2000 + t * 125 + i));
                for (auto h = last_history.load(); h < d["historyId"].get<std::uint64_t>() &&
                                                   !last_history.compare_exchange_weak(h, d["historyId"].get<std::uint64_t>());) {
                }
                // Pub/Sub duplicates: every other notification arrives twice.
                for (int copy = 0; copy < 1 + (i % 2); ++copy)
                    if (hook.handle_hook(push_request(token, push_body(d["historyId"]))).status != 204) ++refused;
            }
        });
    std::map<std::string, int> seen;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (seen.size() < 500 && std::chrono::steady_clock::now() < deadline) {
        runner.clock().advance(milliseconds(100));
        for (auto& item : runner.poll({milliseconds(50), false})) {
            ++seen[item.doc.attributes.at("gmail_id")];
            item.ack(Outcome{});
        }
    }
    for (auto& s : senders) s.join();
    for (int i = 0; i < 5; ++i)
        for (auto& item : runner.poll({milliseconds(20), false})) ++seen[item.doc.attributes.at("gmail_id")];
    EXPECT_EQ(refused.load(), 0);
    EXPECT_EQ(seen.size(), 500u);
    for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
    EXPECT_GE(cursor(runner), last_history.load()) << "everything settled: the cursor is past the last mail";
}

namespace {

// A tiny HTTP/1.1 server on a loopback port that hands every request to a hook, the way the
// admin server's /hooks/<node> route will.
class HookServer {
public:
    explicit HookServer(HttpHook& hook) : hook_(hook) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(fd_, 16);
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~HookServer() {
        stopping_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks/gmail"; }
    std::map<int, int> statuses() {
        std::lock_guard lock(mutex_);
        return statuses_;
    }

private:
    void serve() {
        while (!stopping_) {
            const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            std::string in;
            char buf[8192];
            std::size_t head_end = std::string::npos;
            while (head_end == std::string::npos) {
                const ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
                head_end = in.find("\r\n\r\n");
            }
            if (head_end == std::string::npos) {
                ::close(c);
                continue;
            }
            HookRequest req;
            std::size_t length = 0;
            std::size_t line_start = in.find("\r\n") + 2;
            req.method = in.substr(0, in.find(' '));
            while (line_start < head_end) {
                const std::size_t line_end = in.find("\r\n", line_start);
                const std::string line = in.substr(line_start, line_end - line_start);
                const auto colon = line.find(':');
                std::string name = line.substr(0, colon);
                std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
                std::string value = line.substr(colon + 1);
                while (!value.empty() && value.front() == ' ') value.erase(value.begin());
                req.headers[name] = value;
                if (name == "content-length") length = std::stoul(value);
                line_start = line_end + 2;
            }
            req.body = in.substr(head_end + 4);
            while (req.body.size() < length) {
                const ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                req.body.append(buf, static_cast<std::size_t>(n));
            }
            const auto resp = hook_.handle_hook(req);
            {
                std::lock_guard lock(mutex_);
                ++statuses_[resp.status];
            }
            const std::string out = fmt::format("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", resp.status,
                                                resp.body.size(), resp.body);
            ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    }

    HttpHook& hook_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
    std::mutex mutex_;
    std::map<int, int> statuses_;
};

}  // namespace

TEST(GmailSource, PushesFromThePubSubSenderAreVerifiedAndAckedWith204) {
    Google g;
    auto runner = make_runner(push_config(g, fmt::format("topic: {}\n", kTopic)));
    HookServer server(dynamic_cast<HttpHook&>(runner.component()));
    g.subscribe({{"push_endpoint", server.url()}, {"push_audience", kAudience}, {"push_service_account", kPushAccount}});
    EXPECT_TRUE(poll_now(runner).empty());

    // Broken tokens first: every push is refused (and retried by Pub/Sub), nothing is emitted.
    g.control("POST", "/_fake/pubsub/push_mode", {{"mode", "wrong_audience"}});
    g.deliver(mail(1));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server.statuses()[401] < 2 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
    EXPECT_GE(server.statuses()[401], 2);
    EXPECT_TRUE(runner.poll({milliseconds(100), false}).empty());

    g.control("POST", "/_fake/pubsub/push_mode", {{"mode", "good"}});
    std::vector<docpipe::testing::SourceItem> items;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (items.empty() && std::chrono::steady_clock::now() < deadline)
        for (auto& item : runner.poll({milliseconds(200), false})) items.push_back(std::move(item));
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(bytes_of(items[0].doc), mail(1));
    items[0].ack(Outcome{});
    // The hook decides on 204 before it wakes the poll that emits the mail, but this server
    // thread counts the status only after handle_hook returns, which a loaded (sanitizer) run
    // can delay past the poll: wait for the count rather than read it once.
    const auto answered = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server.statuses()[204] < 1 && std::chrono::steady_clock::now() < answered) std::this_thread::sleep_for(milliseconds(20));
    EXPECT_GE(server.statuses()[204], 1);
    const auto s = g.stats();
    EXPECT_GE(s["push_failures"].get<int>(), 2) << s.dump();
}
