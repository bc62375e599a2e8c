// Personal data never reaches the log: the logging layer (services.cpp) masks it whatever a
// component passes, in the text and the JSON format, and keeps the document id readable as
// the correlation id. A component's own credentials, echoed back by a server, are masked by
// the SDK's mask_secrets() where the component quotes the server.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "docpipe/secrets.hpp"
#include "runtime.hpp"
#include "services.hpp"
#include "state/store.hpp"

using namespace docpipe;
using namespace docpipe::core;

namespace {

const std::string kDocId = "3f9a0c2b7d41e8a95b6c0d17";  // Document::content_id: 24 hex digits

// What a claims component could be tempted to log, and the values that must not show.
struct Case {
    std::string message;
    std::vector<std::string> secrets;
    std::string placeholder;
};

const std::vector<Case> kCases = {
    {"claimant NRIC 900101-14-5678 on the form", {"900101-14-5678", "900101"}, "[nric]"},
    {"IC No: 850312105544 checked", {"850312105544"}, "[nric]"},
    {"call back on +60 12-345 6789", {"345 6789", "+60 12"}, "[phone]"},
    {"mobile 012-3456789, office 03-1234 5678", {"012-3456789", "1234 5678"}, "[phone]"},
    {"reply sent to siti.aminah+claims@gmail.com.", {"siti.aminah", "gmail.com"}, "[email]"},
    {"From: \"Tan Ah Kow\" <tan.ahkow@example.com.my>", {"Tan Ah Kow", "tan.ahkow"}, "[email]"},
    {"Member ID: M12345 found on the receipt", {"M12345"}, "[member-id]"},
    {"member id MEM123456789 and nombor ahli saya M22222", {"MEM123456789", "M22222"}, "[member-id]"},
    {"Policy POL123456789 is active", {"POL123456789"}, "[policy-no]"},
    {"policy no: AB-1234567", {"AB-1234567"}, "[policy-no]"},
    {"Name: Siti Aminah binti Abu, total RM 45.00", {"Siti", "Aminah", "Abu"}, "[name]"},
    {"name=ahmad not matched by rules", {"ahmad"}, "[name]"},
    {"patient Lim Mei Ling seen on 12 May", {"Lim", "Mei", "Ling"}, "[name]"},
    {R"(fields {"member_name": "Rajesh a/l Kumar", "total": 12.5})", {"Rajesh", "Kumar"}, "[name]"},
    {"my name is Nur Aisyah and I claim", {"Nur", "Aisyah"}, "[name]"},
};

class Capture {
public:
    explicit Capture(const std::string& format)
        : json_(format == "json"),
          logger_(make_process_logger(format, "debug", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_))),
          store_(open_store("memory", "", clock_)),
          context_("claims", logger_, json_, metrics_, *store_, clock_) {}

    // The logger a plugin gets: Context::log(), through the SDK interface only.
    Logger& plugin_log() { return static_cast<Context&>(context_).log(); }
    spdlog::logger& process_logger() { return *logger_; }
    std::string text() const { return out_.str(); }
    bool json() const { return json_; }

private:
    std::ostringstream out_;
    bool json_;
    SystemClock clock_;
    MetricsRegistry metrics_;
    std::shared_ptr<spdlog::logger> logger_;
    std::unique_ptr<Store> store_;
    NodeContext context_;
};

class LogRedaction : public ::testing::TestWithParam<std::string> {};

TEST_P(LogRedaction, PluginLoggerMasksEveryKindAndKeepsTheDocumentId) {
    Capture capture(GetParam());
    Logger& log = capture.plugin_log();
    for (const auto& c : kCases) {
        log.log(LogLevel::Info, c.message, kDocId);  // with the correlation id
        log.warn("{}", c.message);                     // the format helpers, no id
    }
    const std::string out = capture.text();
    for (const auto& c : kCases) {
        for (const auto& secret : c.secrets) EXPECT_EQ(out.find(secret), std::string::npos) << "'" << secret << "' leaked from: " << c.message << "\n" << out;
        EXPECT_NE(out.find(c.placeholder), std::string::npos) << c.placeholder << " missing for: " << c.message;
    }
    // The document id is the correlation id: present, unmasked, on every line logged with it.
    std::istringstream lines(out);
    std::size_t with_id = 0, total = 0;
    for (std::string line; std::getline(lines, line);) {
        ++total;
        if (capture.json()) {
            auto j = nlohmann::json::parse(line);  // each line is one JSON object
            EXPECT_EQ(j.value("node", ""), "claims");
            if (j.contains("doc")) {
                EXPECT_EQ(j["doc"], kDocId);
                ++with_id;
            }
        } else if (line.find("(doc=" + kDocId + ")") != std::string::npos) {
            ++with_id;
        }
    }
    EXPECT_EQ(total, 2 * kCases.size()) << out;
    EXPECT_EQ(with_id, kCases.size()) << out;
}

TEST_P(LogRedaction, DirectSpdlogUseIsMaskedToo) {
    Capture capture(GetParam());
    capture.process_logger().info("member id M44444 wrote from 0198765432 as ali@example.org");
    capture.process_logger().flush();
    const std::string out = capture.text();
    EXPECT_EQ(out.find("M44444"), std::string::npos) << out;
    EXPECT_EQ(out.find("0198765432"), std::string::npos) << out;
    EXPECT_EQ(out.find("ali@example.org"), std::string::npos) << out;
    EXPECT_NE(out.find("[member-id]"), std::string::npos) << out;
}

// A file name is the sender's or the scanner's text: "x\n<a fake log line>" wrote a convincing
// false line into the text log. Each message is one line in both formats.
TEST_P(LogRedaction, AMessageWithLineBreaksStaysOneLine) {
    Capture capture(GetParam());
    capture.plugin_log().log(LogLevel::Error, "cannot read evil\n2026-12-05T12:00:00.000Z info  [runtime] stopped cleanly\tx\x1b[2J.jpg",
                             kDocId);
    const std::string out = capture.text();
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.find('\n'), out.size() - 1) << "more than one line: " << out;
    EXPECT_EQ(out.find('\x1b'), std::string::npos) << "a terminal escape went through: " << out;
    if (!capture.json()) {
        EXPECT_NE(out.find("cannot read evil\\n2026-12-05T12:00:00.000Z"), std::string::npos) << out;
        EXPECT_NE(out.find("\\x1b[2J"), std::string::npos) << out;
    }
}

INSTANTIATE_TEST_SUITE_P(Formats, LogRedaction, ::testing::Values("text", "json"),
                         [](const auto& info) { return std::string(info.param); });

TEST(Redaction, LeavesOperationalDetailAlone) {
    // Timestamps, dates, amounts, durations, ports, hex ids, component names, counts.
    for (const std::string s : {
             "Gmail watch set; it expires 2026-11-29T10:00:00.123Z",
             "total RM1,012.50 on 05/06/2026, admin API on http://127.0.0.1:8080",
             "document stuck for 60000 ms; retry policy 3 attempts, hold 3600000 ms",
             "doc 0123456789abcdef01234567 settled",
             "Gmail sync from history 220101123456: 3 new message(s)",
             "file name: receipt.jpg, node name=ocr, component name=sink.files",
             "epoch 1796148004000, version 0.1.0, 42 pages",
             "document settled: all sinks accepted",
         })
        EXPECT_EQ(redact_personal_data(s), s);
}

TEST(Redaction, IsIdempotent) {
    for (const auto& c : kCases) {
        const std::string once = redact_personal_data(c.message);
        EXPECT_EQ(redact_personal_data(once), once) << c.message;
    }
}

TEST(Redaction, UnlabelledNamesAreNotCaught) {
    // The documented limit: a name with no label, address or phrase around it is just words.
    EXPECT_EQ(redact_personal_data("sent by Siti Aminah yesterday"), "sent by Siti Aminah yesterday");
}

// The SDK's mask_secrets(): the credentials a component sent, echoed back in a server's words.
TEST(MaskSecrets, MasksEveryOccurrenceOfEachSecretAndLeavesTheRestAsIs) {
    EXPECT_EQ(mask_secrets("a1 NO [AUTHENTICATIONFAILED] LOGIN alice hunter22 hunter22", {"hunter22"}),
              "a1 NO [AUTHENTICATIONFAILED] LOGIN alice [secret] [secret]");
    EXPECT_EQ(mask_secrets("Bearer tok-1 then tok-2", {"tok-1", "", "tok-2"}), "Bearer [secret] then [secret]");
    EXPECT_EQ(mask_secrets("nothing to hide here", {"hunter22"}), "nothing to hide here");
    EXPECT_EQ(mask_secrets("key=k3y-123456 refused", {"k3y-123456"}, "[api key]"), "key=[api key] refused");
}

TEST(MaskSecrets, ASecretThatHoldsAnotherIsMaskedWhole) {
    // The quoted form of a password and the password itself: the longer one goes first, so no
    // quote or escape of it is left beside a mask.
    EXPECT_EQ(mask_secrets(R"(LOGIN bob "pa\"ss" failed)", {"pa\\\"ss", R"("pa\"ss")"}), "LOGIN bob [secret] failed");
}

// A token endpoint or proxy that answers with the form body it received echoes the refresh
// token percent-encoded ("1//0g" as "1%2F%2F0g"), and a JSON encoder may write '/' as "\/":
// the raw token matched neither, and the token showed in the log, the summary and the job.
TEST(MaskSecrets, AFormEncodedOrJsonEscapedSecretIsMaskedToo) {
    const std::string token = "1//0gAbC-d_e.f~g h";
    EXPECT_EQ(mask_secrets("invalid_grant: refresh_token=1%2F%2F0gAbC-d_e.f~g+h&grant_type=refresh_token", {token}),
              "invalid_grant: refresh_token=[secret]&grant_type=refresh_token");
    EXPECT_EQ(mask_secrets("token=1%2f%2f0gAbC-d_e.f~g+h", {token}), "token=[secret]");
    EXPECT_EQ(mask_secrets(R"({"refresh_token":"1\/\/0gAbC-d_e.f~g h"})", {token}), R"({"refresh_token":"[secret]"})");
}

TEST(MaskSecrets, DoesNotLoopWhenTheMaskHoldsTheSecret) {
    EXPECT_EQ(mask_secrets("secret secret", {"secret"}), "[secret] [secret]");
    EXPECT_EQ(mask_secrets("ccc", {"c"}, "cc"), "cccccc");
}

}  // namespace

// The `run --once` summary goes where the log goes (cron's mail, the journal): file names and
// reasons from senders were printed unmasked there ("IC 850312105544 Tan.jpg") while the log
// masked the same text.
TEST(LogRedaction, TheOnceSummaryIsMaskedAsTheLogIs) {
    RunSummary summary;
    summary.taken = 2;
    summary.failed = 1;
    summary.failures.push_back({"doc-1", "IC 850312105544 Tan.jpg", "not a readable image; sender tan.ahkow@example.com.my"});
    summary.jobs.push_back({"IC 850312105544 Tan.jpg", "failed", nlohmann::json(), "Member ID: M12345678 not found"});
    const std::string text = summary.format();
    for (const char* personal : {"850312105544", "tan.ahkow@example.com.my", "M12345678"})
        EXPECT_EQ(text.find(personal), std::string::npos) << personal << " in:\n" << text;
    EXPECT_NE(text.find("FAILED IC [nric] Tan.jpg (doc-1)"), std::string::npos) << text;
    EXPECT_NE(text.find("documents: 2 taken"), std::string::npos) << text;
}
