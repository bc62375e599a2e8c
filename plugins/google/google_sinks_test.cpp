// sink.sheets and sink.drive against the fake Google APIs (tests/fakes/fake_google.py) on a
// loopback port: the real libcurl client, a real RS256-signed token request, real HTTP.
// The sinks are driven with NodeRunner on its manual clock (2024-01-01T00:00:00Z at start, so
// the month tab at +08:00 is "Claims 2024-01").
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <regex>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "docpipe/testing.hpp"
#include "fake_process.hpp"
#include "test_keys.hpp"

using namespace docpipe;
using nlohmann::json;
using std::chrono::milliseconds;

using docpipe::test::new_rsa_key_pem;
using docpipe::test::TempFile;

namespace {

std::string plugin_file() { return std::string(DOCPIPE_BUILD_PLUGIN_DIR) + "/libdocpipe-google.so"; }

std::string service_account_json(const std::string& pem, const std::string& email = "docpipe@test-project.iam.gserviceaccount.com") {
    return json{{"type", "service_account"},
                {"project_id", "test-project"},
                {"private_key_id", "k1"},
                {"private_key", pem},
                {"client_email", email},
                {"token_uri", "https://oauth2.googleapis.com/token"}}
        .dump();
}

// The fake, with the service-account file it trusts.
struct Google {
    TempFile sa{service_account_json(new_rsa_key_pem())};
    test::FakeProcess fake{{"python3", std::string(DOCPIPE_SOURCE_DIR) + "/tests/fakes/fake_google.py", "--port", "0", "--service-account",
                            sa.path.string()}};

    std::string base() const { return fake.base_url(); }
    std::string credentials(const std::filesystem::path& file) const {
        return "credentials_file: " + file.string() + "\ntoken_url: " + base() + "/token\nbreaker_threshold: 3\nbreaker_open_for: 1s\n";
    }
    std::string sheets_config(const std::string& extra = "batch_wait: 0\n") const {
        // The hold tests see Google's answers directly; the journal has tests of its own.
        const std::string journal = extra.find("journal:") == std::string::npos ? "journal: false\n" : "";
        return credentials(sa.path) + "sheets_url: " + base() + "\nspreadsheet_id: book1\n" + journal + extra;
    }
    std::string drive_config(const std::string& extra = "") const {
        return credentials(sa.path) + "drive_url: " + base() + "\ndrive_upload_url: " + base() + "/upload\nroot_folder_id: root-1\n" + extra;
    }
    json control(const std::string& method, const std::string& path, const json& body = nullptr) const {
        const std::string text = test::fake_control(base(), method, path, body.is_null() ? "" : body.dump());
        return text.empty() ? json() : json::parse(text);
    }
    void script(const std::string& target, const json& responses) const {
        control("POST", "/_fake/script", {{"target", target}, {"responses", responses}});
    }
    std::size_t requests(const std::string& target, const std::string& method = "") const {
        std::size_t n = 0;
        for (const auto& r : control("GET", "/_fake/requests?target=" + target))
            if (method.empty() || r["method"] == method) ++n;
        return n;
    }
    json tab(const std::string& title) const { return control("GET", "/_fake/sheets/book1")["tabs"].value(title, json::array()); }
    json files() const { return control("GET", "/_fake/drive/files")["files"]; }
};

docpipe::testing::NodeRunner sheets(const Google& g, const std::string& extra = "batch_wait: 0\n") {
    return docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.sheets", g.sheets_config(extra));
}

docpipe::testing::NodeRunner drive(const Google& g, const std::string& extra = "") {
    return docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.drive", g.drive_config(extra));
}

Document claim_doc(const std::string& id) {
    Document d;
    d.id = id;
    d.parent_id = "email-" + id;
    d.attributes = {{"message_id", "<m-" + id + "@mail.example>"},
                    {"from", "Siti Aminah <siti@example.my>"},
                    {"filename", "receipt-" + id + ".jpg"},
                    {"received_at", "2026-11-29T10:15:00+08:00"}};
    d.fields["claim"] = {{"total_amount", {{"value", 479.05}, {"confidence", 0.95}}},
                         {"member_id", {{"value", "MEM123456789"}, {"confidence", 0.95}}},
                         {"provider_name", {{"value", "Klinik Sejahtera"}, {"confidence", 0.9}}}};
    d.fields["confidence"] = 0.93;
    d.fields["confidence_level"] = "high";
    d.fields["warnings"] = {"date from email body", "SST not found"};
    d.fields["ncb_claim_reference"] = "NCB-000123";
    const std::string content = "receipt bytes of " + id;
    d.parts.push_back(Part{"receipt-" + id + ".jpg", "image/jpeg", std::make_shared<const Bytes>(content.begin(), content.end())});
    return d;
}

Document sized_doc(const std::string& id, std::size_t size) {
    Document d = claim_doc(id);
    Bytes bytes(size);
    std::uint64_t seed = 1469598103934665603ull;  // FNV-1a of the id: different ids, different bytes
    for (char c : id) seed = (seed ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    for (std::size_t i = 0; i < size; ++i) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        bytes[i] = static_cast<std::uint8_t>(seed >> 56);
    }
    d.parts[0].bytes = std::make_shared<const Bytes>(std::move(bytes));
    d.parts[0].media_type = "application/pdf";
    return d;
}

std::string sha256_hex(const Bytes& bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(bytes.data(), bytes.size(), digest, &n, EVP_sha256(), nullptr);
    std::string out;
    for (unsigned i = 0; i < n; ++i) out += fmt::format("{:02x}", digest[i]);
    return out;
}

const char* kTab = "Claims 2024-01";

}  // namespace

// ---- sink.sheets --------------------------------------------------------------------------

TEST(SheetsSink, RowsArriveWithTheRightColumnsAndAHeaderOnANewTab) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({"Sheet1"})}});
    auto runner = sheets(g);
    auto result = runner.write(claim_doc("d1"));
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    EXPECT_EQ(result.references().at("sheets_range"), "'Claims 2024-01'!A2:L2");

    const auto rows = g.tab(kTab);
    ASSERT_EQ(rows.size(), 2u) << rows.dump();
    EXPECT_EQ(rows[0], json({"Timestamp", "Email ID", "Sender", "Attachment", "Member ID", "Provider", "Total Amount", "Confidence",
                             "Route", "NCB Reference", "Warnings", "Document ID"}));
    const auto& row = rows[1];
    EXPECT_EQ(row[0], "2024-01-01T08:00:00+08:00");
    EXPECT_EQ(row[1], "<m-d1@mail.example>");
    EXPECT_EQ(row[2], "Siti Aminah <siti@example.my>") << "the audit log keeps the sender in full";
    EXPECT_EQ(row[3], "receipt-d1.jpg");
    EXPECT_EQ(row[4], "MEM123456789");
    EXPECT_EQ(row[5], "Klinik Sejahtera");
    EXPECT_TRUE(row[6].is_number());
    EXPECT_DOUBLE_EQ(row[6].get<double>(), 479.05);
    EXPECT_DOUBLE_EQ(row[7].get<double>(), 0.93);
    EXPECT_EQ(row[8], "high");
    EXPECT_EQ(row[9], "NCB-000123");
    EXPECT_EQ(row[10], "date from email body; SST not found");
    EXPECT_EQ(row[11], "d1");

    // The sender is personal data: it never reaches the log.
    for (const auto& line : runner.context().log_lines()) EXPECT_EQ(line.message.find("siti"), std::string::npos) << line.message;

    // A low-confidence document is marked for review; the next row goes under the first.
    Document low = claim_doc("d2");
    low.fields["confidence_level"] = "low";
    low.fields.erase("ncb_claim_reference");
    result = runner.write(low);
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    EXPECT_EQ(result.references().at("sheets_range"), "'Claims 2024-01'!A3:L3");
    const auto after = g.tab(kTab);
    ASSERT_EQ(after.size(), 3u);
    EXPECT_EQ(after[2][8], "low (review)");
    EXPECT_EQ(after[2][9], "");
    EXPECT_EQ(g.requests("sheets.batchUpdate"), 1u);
    // Values go in RAW, as new rows.
    for (const auto& r : g.control("GET", "/_fake/requests?target=sheets.append")) {
        EXPECT_EQ(r["query"]["valueInputOption"], "RAW");
        EXPECT_EQ(r["query"]["insertDataOption"], "INSERT_ROWS");
    }
}

TEST(SheetsSink, ADocumentTriedAgainAfterItsRowWentInIsNotAppendedTwice) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({"Sheet1"})}});
    auto runner = sheets(g);
    auto first = runner.write(claim_doc("d1"));
    ASSERT_EQ(first.status(), SinkResult::Status::Ok) << first.reason();
    ASSERT_EQ(runner.write(claim_doc("d2")).status(), SinkResult::Status::Ok);
    // The same document again, as after a crash between the append and the delivery ledger:
    // its row is found by its id, nothing is appended.
    auto again = runner.write(claim_doc("d1"));
    ASSERT_EQ(again.status(), SinkResult::Status::Ok) << again.reason();
    EXPECT_EQ(again.references().at("sheets_range"), first.references().at("sheets_range"));
    const auto rows = g.tab(kTab);
    ASSERT_EQ(rows.size(), 3u) << "header + one row per document: " << rows.dump();
    // A first try whose append never happened (503) is appended on the next try.
    g.control("POST", "/_fake/script", {{"target", "sheets.append"}, {"responses", json::array({{{"status", 503}, {"body", "down"}}})}});
    EXPECT_EQ(runner.write(claim_doc("d3")).status(), SinkResult::Status::Hold);
    EXPECT_EQ(runner.write(claim_doc("d3")).status(), SinkResult::Status::Ok);
    EXPECT_EQ(g.tab(kTab).size(), 4u);
}

// A claim that went to review (parked there: attribute parked_by) got a row then; once a
// reviewer approves it (attribute approved_at) and NCB books it, the approval is a row of its
// own, with NCB's reference. Each row is still written once: the approved claim tried again
// finds its approval row, not the review row.
TEST(SheetsSink, AnApprovedClaimGetsARowOfItsOwnOnceAfterItsReviewRow) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({"Sheet1"})}});
    auto runner = sheets(g);
    Document claim = claim_doc("d1");
    claim.fields["confidence_level"] = "low";
    claim.fields.erase("ncb_claim_reference");
    Document in_review = claim;
    in_review.attributes["parked_by"] = "ncb_high";
    in_review.attributes["parked_reason"] = "NCB refused the claim: policy lapsed";
    const auto review_row = runner.write(in_review);
    ASSERT_EQ(review_row.status(), SinkResult::Status::Ok) << review_row.reason();
    Document approved = claim;
    approved.attributes["approved_at"] = "2024-01-15T09:00:00Z";
    approved.attributes["ncb_claim_reference"] = "NCB-000777";
    const auto approval_row = runner.write(approved);
    ASSERT_EQ(approval_row.status(), SinkResult::Status::Ok) << approval_row.reason();
    EXPECT_NE(approval_row.references().at("sheets_range"), review_row.references().at("sheets_range"));
    auto rows = g.tab(kTab);
    ASSERT_EQ(rows.size(), 3u) << "header, the review row, the approval row: " << rows.dump();
    EXPECT_EQ(rows[1][8], "low (review)");
    EXPECT_EQ(rows[1][9], "");
    EXPECT_EQ(rows[1][10], "parked by ncb_high: NCB refused the claim: policy lapsed; date from email body; SST not found")
        << "the row says why the claim is in review";
    EXPECT_EQ(rows[2][10], "date from email body; SST not found") << "the approved claim is not parked";
    EXPECT_EQ(rows[2][8], "low (approved)");
    EXPECT_EQ(rows[2][9], "NCB-000777");
    EXPECT_EQ(rows[2][11], "d1");
    // Tried again (a crash before the ledger entry): each finds its own row.
    EXPECT_EQ(runner.write(approved).references().at("sheets_range"), approval_row.references().at("sheets_range"));
    EXPECT_EQ(runner.write(in_review).references().at("sheets_range"), review_row.references().at("sheets_range"));
    EXPECT_EQ(g.tab(kTab).size(), 3u);
}

TEST(SheetsSink, WhileSheetsIsDownRowsAreJournaledThenReplayedInOrderOnce) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({"Sheet1"})}});
    auto runner = sheets(g, "batch_wait: 0\njournal: true\njournal_retry: 100ms\n");
    ASSERT_EQ(runner.write(claim_doc("d1")).status(), SinkResult::Status::Ok);
    // Sheets answers 503 for 2 s: the documents are not held back, their rows wait in the journal.
    g.control("POST", "/_fake/script", {{"target", "sheets.append"}, {"for_seconds", 2}, {"response", {{"status", 503}, {"body", "down"}}}});
    for (const char* id : {"d2", "d3", "d4"}) {
        auto r = runner.write(claim_doc(id));
        ASSERT_EQ(r.status(), SinkResult::Status::Ok) << r.reason();
        EXPECT_EQ(r.references().at("sheets_range"), "journaled");
    }
    EXPECT_EQ(runner.component().health().status, Health::Degraded);
    EXPECT_NE(runner.component().health().detail.find("journaled"), std::string::npos);
    EXPECT_EQ(runner.context().state().keys("sheets-journal/book1/", 100).size(), 3u);
    // Back up: the replayer appends them in the order they came, and nothing twice.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (runner.context().state().keys("sheets-journal/book1/", 100).size() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(runner.context().state().keys("sheets-journal/book1/", 100).empty()) << "the journal was not replayed";
    // A row written after the recovery goes in behind the journaled ones.
    ASSERT_EQ(runner.write(claim_doc("d5")).status(), SinkResult::Status::Ok);
    const auto rows = g.tab(kTab);
    std::vector<std::string> ids;
    for (std::size_t i = 1; i < rows.size(); ++i) ids.push_back(rows[i][11].get<std::string>());
    EXPECT_EQ(ids, (std::vector<std::string>{"d1", "d2", "d3", "d4", "d5"}));
    EXPECT_EQ(runner.component().health().status, Health::Healthy) << runner.component().health().detail;
}

TEST(SheetsSink, AJournalLeftByAnEarlierRunIsReplayedFirst) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({"Sheet1"})}});
    auto runner = sheets(g, "batch_wait: 0\njournal: true\njournal_retry: 100ms\n");
    // What a process that stopped while Sheets was down leaves behind (same store, new process).
    runner.component().stop();
    auto row = [](const char* id) {
        return json{{"tab", kTab}, {"cells", json::array({"2024-01-01T08:00:00+08:00", "", "", "", "", "", "", "", "", "", "", id})}, {"doc_id", id}}
            .dump();
    };
    runner.context().state().put("sheets-journal/book1/00000000000000000007", row("old-1"));
    runner.context().state().put("sheets-journal/book1/00000000000000000008", row("old-2"));
    runner.component().start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!runner.context().state().keys("sheets-journal/book1/", 100).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(runner.write(claim_doc("new")).status(), SinkResult::Status::Ok);
    const auto rows = g.tab(kTab);
    std::vector<std::string> ids;
    for (std::size_t i = 1; i < rows.size(); ++i) ids.push_back(rows[i][11].get<std::string>());
    EXPECT_EQ(ids, (std::vector<std::string>{"old-1", "old-2", "new"}));
}

std::vector<std::string> document_ids_in(const json& rows) {
    std::vector<std::string> ids;
    for (std::size_t i = 1; i < rows.size(); ++i) ids.push_back(rows[i][11].get<std::string>());
    return ids;
}

// A --once run that journaled rows while Sheets was down left them in the store for good: the
// replay came journal_retry after the start, and the run had ended by then. At stop, after the
// drain, the journal is written out if Sheets takes it.
TEST(SheetsSink, AtStopTheJournalIsWrittenOutWhenSheetsIsBack) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g, "batch_wait: 0\njournal: true\njournal_retry: 1h\n");
    g.script("sheets.append", json::array({{{"status", 503}, {"body", "down"}}}));
    auto r = runner.write(claim_doc("d1"));
    ASSERT_EQ(r.references().at("sheets_range"), "journaled") << r.reason();
    const auto keys = runner.context().state().keys("sheets-journal/book1/", 100);
    ASSERT_EQ(keys.size(), 1u);
    // Time, sequence and the process: two processes sharing one Redis never write the same key.
    EXPECT_TRUE(std::regex_match(keys[0], std::regex(R"(sheets-journal/book1/\d{15}-\d{10}-[0-9a-f]{16})"))) << keys[0];
    runner.component().stop();
    EXPECT_EQ(document_ids_in(g.tab(kTab)), (std::vector<std::string>{"d1"}));
    EXPECT_TRUE(runner.context().state().keys("sheets-journal/book1/", 100).empty());
    // The job read "journaled": it is told where the row went (its job is its own id here,
    // a source document), and the log says it too, under the document's id.
    const auto amended = runner.context().amended_references();
    ASSERT_EQ(amended.size(), 1u);
    EXPECT_EQ(amended[0].job_id, "d1");
    EXPECT_EQ(amended[0].doc_id, "d1");
    EXPECT_EQ(amended[0].key, "sheets_range");
    EXPECT_NE(amended[0].value.find(kTab), std::string::npos) << amended[0].value;
    EXPECT_NE(amended[0].value, "journaled");
    bool said_where = false;
    for (const auto& line : runner.context().log_lines())
        said_where = said_where || (line.doc_id == "d1" && line.message.find("journaled audit row written at ") != std::string::npos &&
                                    line.message.find(kTab) != std::string::npos);
    EXPECT_TRUE(said_where);
}

// A replay that Sheets did not take left its claims for their 5 min lease: the next run (or a
// process sharing the store) could not replay those rows until then.
TEST(SheetsSink, AReplayThatFailsGivesItsClaimsBack) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g, "batch_wait: 0\njournal: true\njournal_retry: 1h\n");
    g.control("POST", "/_fake/script", {{"target", "sheets.append"}, {"for_seconds", 60}, {"response", {{"status", 503}, {"body", "down"}}}});
    ASSERT_EQ(runner.write(claim_doc("d1")).references().at("sheets_range"), "journaled");
    runner.component().stop();  // its replay meets the 503
    EXPECT_EQ(runner.context().state().keys("sheets-journal/book1/", 100).size(), 1u) << "kept for later";
    EXPECT_TRUE(runner.context().state().keys("sheets-journal-claim/", 100).empty()) << "the claim was left behind";
    bool warned = false;
    for (const auto& line : runner.context().log_lines()) warned = warned || line.message.find("stay in the journal") != std::string::npos;
    EXPECT_TRUE(warned);
}

// A journaled row that Sheets refused on replay (a 4xx: a cell too long, the workbook full) was
// erased with a log line: the audit row was gone, and the job said it was written.
TEST(SheetsSink, ARowSheetsRefusesOnReplayIsKeptAsideWithItsReason) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g, "batch_wait: 0\njournal: true\njournal_retry: 1h\n");
    g.script("sheets.append", json::parse(R"([{"status": 503, "body": "down"}, {"status": 400, "count": 2, "body": {"error":
        {"code": 400, "message": "This action would increase the number of cells above the limit", "status": "INVALID_ARGUMENT"}}}])"));
    ASSERT_EQ(runner.write(claim_doc("d1")).references().at("sheets_range"), "journaled");
    runner.component().stop();
    EXPECT_TRUE(runner.context().state().keys("sheets-journal/book1/", 100).empty());
    const auto aside = runner.context().state().keys("sheets-journal-refused/book1/", 100);
    ASSERT_EQ(aside.size(), 1u);
    const auto kept = json::parse(runner.context().state().get(aside[0]).value_or("{}"));
    EXPECT_EQ(kept.value("doc_id", ""), "d1");
    EXPECT_NE(kept.value("refused", "").find("above the limit"), std::string::npos) << kept.dump();
    const auto h = runner.component().health();
    EXPECT_EQ(h.status, Health::Degraded);
    EXPECT_NE(h.detail.find("refused by Sheets"), std::string::npos) << h.detail;
}

// A journal entry another process (sharing the Redis store) has claimed is left to it: both
// replaying the same entries appended each row twice.
TEST(SheetsSink, AJournalEntryAnotherProcessClaimedIsLeftToIt) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g, "batch_wait: 0\njournal: true\njournal_retry: 1h\n");
    runner.component().stop();
    auto row = [](const char* id) {
        return json{{"tab", kTab}, {"cells", json::array({"2024-01-01T08:00:00+08:00", "", "", "", "", "", "", "", "", "", "", id})}, {"doc_id", id}}
            .dump();
    };
    auto& state = runner.context().state();
    state.put("sheets-journal/book1/001700000000000-0000000001-aaaaaaaaaaaaaaaa", row("theirs"));
    state.put("sheets-journal/book1/001700000000001-0000000001-bbbbbbbbbbbbbbbb", row("ours"));
    state.put("sheets-journal-claim/book1/001700000000000-0000000001-aaaaaaaaaaaaaaaa", "another-process", std::chrono::seconds(300));
    runner.component().start();
    runner.component().stop();  // a replay at start, and one at stop
    EXPECT_EQ(document_ids_in(g.tab(kTab)), (std::vector<std::string>{"ours"}));
    EXPECT_EQ(state.keys("sheets-journal/book1/", 100), (std::vector<std::string>{"sheets-journal/book1/001700000000000-0000000001-aaaaaaaaaaaaaaaa"}));
}

// A 200 without `updates` (a proxy's or login page's answer) was taken as a written row.
TEST(SheetsSink, AnAppendAnsweredWithoutItsRangeIsNotTakenAsWritten) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g);
    g.script("sheets.append", json::array({{{"status", 200}, {"body", json::object()}}}));
    auto r = runner.write(claim_doc("d1"));
    EXPECT_EQ(r.status(), SinkResult::Status::Hold) << r.reason();
    EXPECT_NE(r.reason().find("without the appended range"), std::string::npos) << r.reason();
    r = runner.write(claim_doc("d1"));  // the next try: looked up first, then appended once
    EXPECT_EQ(r.status(), SinkResult::Status::Ok) << r.reason();
    EXPECT_EQ(document_ids_in(g.tab(kTab)), (std::vector<std::string>{"d1"}));
}

TEST(SheetsSink, FormulaLookingCellsArriveAsText) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g);
    Document d = claim_doc("f1");
    d.attributes["filename"] = "=HYPERLINK(\"x\")";
    d.attributes["from"] = "+60123";
    d.attributes["message_id"] = "@x";
    d.fields["claim"]["provider_name"]["value"] = "-5";
    d.fields["claim"]["member_id"]["value"] = "\t=1+1";
    d.fields["claim"]["total_amount"]["value"] = -5;
    auto result = runner.write(d);
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    const auto rows = g.tab(kTab);
    ASSERT_EQ(rows.size(), 2u) << "an existing empty tab gets its header, then the row: " << rows.dump();
    EXPECT_EQ(rows[0][0], "Timestamp");
    EXPECT_EQ(rows[1][1], "'@x");
    EXPECT_EQ(rows[1][2], "'+60123");
    EXPECT_EQ(rows[1][3], "'=HYPERLINK(\"x\")");
    EXPECT_EQ(rows[1][4], "'\t=1+1");
    EXPECT_EQ(rows[1][5], "'-5");
    EXPECT_EQ(rows[1][6], -5) << "numbers stay numbers";
}

// Sheets refuses a cell over 50,000 characters, and with it the row: a 60 KB From header cost
// the claim its audit row. The cell is cut, on a character boundary, and says so.
TEST(SheetsSink, ACellOverSheetsLimitIsCutAndSaysSo) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g);
    Document d = claim_doc("long");
    std::string from;
    while (from.size() < 60'000) from += "\xc3\xa9";  // é, two bytes each
    d.attributes["from"] = from;
    ASSERT_EQ(runner.write(d).status(), SinkResult::Status::Ok);
    const auto rows = g.tab(kTab);
    ASSERT_EQ(rows.size(), 2u);
    bool cut = false;
    for (const auto& cell : rows[1]) {
        if (!cell.is_string()) continue;
        const std::string text = cell.get<std::string>();
        EXPECT_LE(text.size(), 50'000u);
        if (const auto at = text.find(" [cut: over 50,000 characters]"); at != std::string::npos) {
            cut = true;
            EXPECT_EQ(at % 2, 0u) << "a character was split";
        }
    }
    EXPECT_TRUE(cut) << rows[1].dump().substr(0, 300);
}

TEST(SheetsSink, ConcurrentWritesAreBatchedAndEveryRowArrivesOnce) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({"Sheet1"})}});
    auto runner = sheets(g, "batch_wait: 1s\nbatch_rows: 20\n");
    constexpr int kDocs = 10;
    std::vector<std::optional<SinkResult>> results(kDocs);
    std::vector<std::thread> threads;
    for (int i = 0; i < kDocs; ++i)
        threads.emplace_back([&, i] { results[i] = runner.write(claim_doc("c" + std::to_string(i))); });
    for (auto& t : threads) t.join();

    std::set<std::string> ranges;
    for (const auto& r : results) {
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status(), SinkResult::Status::Ok) << r->reason();
        ranges.insert(r->references().at("sheets_range"));
    }
    EXPECT_EQ(ranges.size(), static_cast<std::size_t>(kDocs)) << "each row has its own range";
    const auto appends = g.requests("sheets.append");
    EXPECT_LT(appends, static_cast<std::size_t>(kDocs));
    EXPECT_GE(appends, 1u);
    EXPECT_EQ(g.requests("sheets.batchUpdate"), 1u) << "one tab, created once";

    const auto rows = g.tab(kTab);
    ASSERT_EQ(rows.size(), static_cast<std::size_t>(kDocs + 1));
    EXPECT_EQ(rows[0][0], "Timestamp");
    std::multiset<std::string> ids;
    for (std::size_t i = 1; i < rows.size(); ++i) ids.insert(rows[i][11].get<std::string>());
    for (int i = 0; i < kDocs; ++i) EXPECT_EQ(ids.count("c" + std::to_string(i)), 1u) << i;
}

TEST(SheetsSink, RateLimitHoldsForRetryAfterOrGooglesBackoff) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g);
    g.script("sheets.append",
             json::array({{{"status", 429},
                           {"headers", {{"Retry-After", "7"}}},
                           {"body", {{"error", {{"code", 429}, {"message", "Quota exceeded"}, {"status", "RESOURCE_EXHAUSTED"}}}}}}}));
    auto result = runner.write(claim_doc("r1"));
    EXPECT_EQ(result.status(), SinkResult::Status::Hold);
    EXPECT_EQ(result.retry_after(), milliseconds(7000));
    EXPECT_NE(result.reason().find("Quota exceeded"), std::string::npos) << result.reason();

    // The fake's own quota: no Retry-After, so Google's backoff (1 s + up to 1 s of jitter).
    g.control("POST", "/_fake/sheets_quota", {{"writes_per_minute", 1}});
    ASSERT_EQ(runner.write(claim_doc("r2")).status(), SinkResult::Status::Ok);
    result = runner.write(claim_doc("r3"));
    EXPECT_EQ(result.status(), SinkResult::Status::Hold) << result.reason();
    EXPECT_GE(result.retry_after(), milliseconds(1000));
    EXPECT_LE(result.retry_after(), milliseconds(2000));
    EXPECT_EQ(runner.component().health().status, Health::Healthy) << "a rate limit is not an outage";
    EXPECT_EQ(g.tab(kTab).size(), 2u) << "the header, then r2: " << g.tab(kTab).dump();
}

TEST(SheetsSink, AnExistingTabIsNotCreatedTwice) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({"Sheet1"})}});
    {
        auto first = sheets(g);
        ASSERT_EQ(first.write(claim_doc("a1")).status(), SinkResult::Status::Ok);
        ASSERT_EQ(first.write(claim_doc("a2")).status(), SinkResult::Status::Ok);
    }
    // A second process (a fresh cache) finds the tab instead of adding it again.
    auto second = sheets(g);
    ASSERT_EQ(second.write(claim_doc("a3")).status(), SinkResult::Status::Ok);
    EXPECT_EQ(g.requests("sheets.batchUpdate"), 1u);
    EXPECT_EQ(g.requests("sheets.get"), 2u) << "one lookup per process, then the cache";
    const auto rows = g.tab(kTab);
    ASSERT_EQ(rows.size(), 4u) << "one header, three rows: " << rows.dump();
    EXPECT_EQ(rows[0][0], "Timestamp");
    EXPECT_EQ(rows[3][11], "a3");
}

TEST(SheetsSink, AConcurrentCreatorsAlreadyExistsCountsAsSuccess) {
    Google g;
    g.control("POST", "/_fake/sheets", json::parse(R"({"spreadsheet_id": "book1", "tabs": ["Sheet1", "Claims 2024-01"]})"));
    auto runner = sheets(g);
    // The lookup misses the tab (another worker adds it right after), the add is refused.
    g.script("sheets.get", json::parse(R"([{"status": 200, "body": {"sheets": [{"properties": {"title": "Sheet1"}}]}}])"));
    g.script("sheets.batchUpdate", json::parse(R"([{"status": 400, "body": {"error": {"code": 400, "status": "INVALID_ARGUMENT",
        "message": "Invalid requests[0].addSheet: A sheet with the name \"Claims 2024-01\" already exists. Please enter another name."}}}])"));
    auto result = runner.write(claim_doc("x1"));
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    const auto rows = g.tab(kTab);
    // The creator never wrote its header (it may have stopped): the loser of the race writes it
    // in place, and the creator writing the same header later would leave just one.
    ASSERT_EQ(rows.size(), 2u) << rows.dump();
    EXPECT_EQ(rows[0][0], "Timestamp");
    EXPECT_EQ(rows[1][11], "x1");
    EXPECT_EQ(result.references().at("sheets_range"), "'Claims 2024-01'!A2:L2");
}

// A process killed between adding the month tab and writing its header left an empty tab:
// the next process writes the header before its rows, and a tab whose header is there gets
// no second one (delivery_crash.sh found the first case: the row went in as row 1).
TEST(SheetsSink, ATabLeftWithoutItsHeaderGetsItOnceAndTheHeaderIsNeverRepeated) {
    Google g;
    g.control("POST", "/_fake/sheets", json::parse(R"({"spreadsheet_id": "book1", "tabs": ["Sheet1", "Claims 2024-01"]})"));
    {
        auto first = sheets(g);
        auto result = first.write(claim_doc("k1"));
        ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
        EXPECT_EQ(result.references().at("sheets_range"), "'Claims 2024-01'!A2:L2");
    }
    EXPECT_EQ(g.requests("sheets.batchUpdate"), 0u) << "the tab exists: it is not added again";
    EXPECT_EQ(g.requests("sheets.values_update"), 1u);
    auto second = sheets(g);
    ASSERT_EQ(second.write(claim_doc("k2")).status(), SinkResult::Status::Ok);
    EXPECT_EQ(g.requests("sheets.values_update"), 1u) << "row 1 holds the header now: not written again";
    const auto rows = g.tab(kTab);
    ASSERT_EQ(rows.size(), 3u) << rows.dump();
    EXPECT_EQ(rows[0][0], "Timestamp");
    EXPECT_EQ(rows[1][11], "k1");
    EXPECT_EQ(rows[2][11], "k2");
}

TEST(SheetsSink, ATabDeletedByAPersonIsCreatedAgain) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({"Sheet1"})}});
    auto runner = sheets(g);
    ASSERT_EQ(runner.write(claim_doc("t1")).status(), SinkResult::Status::Ok);
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({"Sheet1"})}});  // the tab is gone
    auto result = runner.write(claim_doc("t2"));
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    const auto rows = g.tab(kTab);
    ASSERT_EQ(rows.size(), 2u) << rows.dump();
    EXPECT_EQ(rows[0][0], "Timestamp");
    EXPECT_EQ(rows[1][11], "t2");
}

TEST(SheetsSink, GooglesRefusalOfARowFailsThatDocument) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g);
    g.script("sheets.append", json::array({{{"status", 400},
                                            {"body", {{"error", {{"code", 400}, {"message", "Invalid values[0][3]: too long"},
                                                                 {"status", "INVALID_ARGUMENT"}}}}}}}));
    auto result = runner.write(claim_doc("p1"));
    EXPECT_EQ(result.status(), SinkResult::Status::Fail);
    EXPECT_NE(result.reason().find("Invalid values[0][3]: too long"), std::string::npos) << result.reason();
    EXPECT_EQ(runner.component().health().status, Health::Healthy);
}

TEST(SheetsSink, ARefusedBatchIsRetriedRowByRowSoOnlyTheCulpritFails) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g, "batch_wait: 1s\n");
    // The batch's append is refused, then the first row alone is refused: the other two go in.
    g.script("sheets.append", json::parse(R"([{"status": 400, "count": 2, "body": {"error": {"code": 400,
        "message": "Invalid values[0][3]: too long", "status": "INVALID_ARGUMENT"}}}])"));
    std::vector<std::optional<SinkResult>> results(3);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) threads.emplace_back([&, i] { results[i] = runner.write(claim_doc("b" + std::to_string(i))); });
    for (auto& t : threads) t.join();
    int ok = 0, failed = 0;
    for (const auto& r : results) {
        ASSERT_TRUE(r);
        ok += r->status() == SinkResult::Status::Ok;
        failed += r->status() == SinkResult::Status::Fail;
    }
    EXPECT_EQ(ok, 2);
    EXPECT_EQ(failed, 1);
    EXPECT_EQ(g.tab(kTab).size(), 3u) << "the header, then the two rows Google took: " << g.tab(kTab).dump();
    EXPECT_EQ(g.requests("sheets.append"), 4u) << "the batch, then each row alone";
}

TEST(SheetsSink, UnavailableHoldsAndOpensTheBreaker) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g);
    g.script("sheets", json::array({{{"status", 503}, {"count", 3}}}));
    for (int i = 0; i < 3; ++i) {
        auto r = runner.write(claim_doc("u" + std::to_string(i)));
        EXPECT_EQ(r.status(), SinkResult::Status::Hold) << r.reason();
    }
    EXPECT_EQ(runner.component().health().status, Health::Degraded);
    const auto before = g.requests("sheets");
    auto refused = runner.write(claim_doc("u9"));
    EXPECT_EQ(refused.status(), SinkResult::Status::Hold);
    EXPECT_NE(refused.reason().find("circuit breaker open"), std::string::npos) << refused.reason();
    EXPECT_EQ(g.requests("sheets"), before) << "an open breaker does not call Sheets";
    runner.clock().advance(std::chrono::seconds(2));
    auto trial = runner.write(claim_doc("u10"));
    EXPECT_EQ(trial.status(), SinkResult::Status::Ok) << trial.reason();
    EXPECT_EQ(runner.component().health().status, Health::Healthy);
}

TEST(SheetsSink, InvalidCredentialsHoldWithHealthUnavailable) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    TempFile unknown(service_account_json(new_rsa_key_pem()));  // a key the fake never saw
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.sheets",
                                                   g.credentials(unknown.path) + "sheets_url: " + g.base() +
                                                       "\nspreadsheet_id: book1\nbatch_wait: 0\njournal: false\n");
    auto result = runner.write(claim_doc("k1"));
    EXPECT_EQ(result.status(), SinkResult::Status::Hold) << result.reason();
    const auto health = runner.component().health();
    EXPECT_EQ(health.status, Health::Unavailable);
    EXPECT_NE(health.detail.find("refused the credentials"), std::string::npos) << health.detail;
    EXPECT_EQ(health.detail.find("PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(g.requests("sheets"), 0u);
}

TEST(SheetsSink, A401IsRetriedOnceWithANewTokenThenHeld) {
    Google g;
    g.control("POST", "/_fake/sheets", {{"spreadsheet_id", "book1"}, {"tabs", json::array({kTab})}});
    auto runner = sheets(g);
    g.script("sheets.append", json::array({{{"status", 401}, {"body", {{"error", {{"code", 401}, {"message", "Request had invalid authentication credentials."}}}}}}}));
    auto recovered = runner.write(claim_doc("t1"));
    EXPECT_EQ(recovered.status(), SinkResult::Status::Ok) << "a new token fixed it: " << recovered.reason();
    EXPECT_EQ(g.control("GET", "/_fake/tokens")["issued"], 2);

    g.script("sheets.append", json::array({{{"status", 401}, {"count", 2}}}));
    auto held = runner.write(claim_doc("t2"));
    EXPECT_EQ(held.status(), SinkResult::Status::Hold) << held.reason();
    const auto health = runner.component().health();
    EXPECT_EQ(health.status, Health::Unavailable);
    EXPECT_NE(health.detail.find("API is enabled"), std::string::npos) << health.detail;
    ASSERT_EQ(runner.write(claim_doc("t3")).status(), SinkResult::Status::Ok);
    EXPECT_EQ(runner.component().health().status, Health::Healthy);
}

TEST(SheetsSink, AMissingCredentialsFileFailsTheStartWithItsPath) {
    try {
        docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.sheets",
                                         "credentials_file: /nonexistent/google.json\nspreadsheet_id: book1\n");
        FAIL() << "expected the start to fail";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/google.json"), std::string::npos) << e.what();
    }
}

// ---- sink.drive ---------------------------------------------------------------------------

TEST(DriveSink, FoldersAreCreatedOnceAndFilesCarryAppProperties) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}, {"shared_drive", false}});
    auto runner = drive(g);
    auto first = runner.write(claim_doc("d1"));
    auto second = runner.write(claim_doc("d2"));
    ASSERT_EQ(first.status(), SinkResult::Status::Ok) << first.reason();
    ASSERT_EQ(second.status(), SinkResult::Status::Ok) << second.reason();
    EXPECT_NE(first.references().at("drive_file_id"), second.references().at("drive_file_id"));

    std::map<std::string, json> by_id;
    std::vector<json> folders, files;
    for (const auto& f : g.files()) {
        by_id[f["id"]] = f;
        (f["mimeType"] == "application/vnd.google-apps.folder" ? folders : files).push_back(f);
    }
    ASSERT_EQ(folders.size(), 3u) << g.files().dump();
    ASSERT_EQ(files.size(), 2u);
    // root-1/2026/11/29: the parent chain of the files.
    const auto& day = by_id.at(files[0]["parents"][0]);
    EXPECT_EQ(day["name"], "29");
    const auto& month = by_id.at(day["parents"][0]);
    EXPECT_EQ(month["name"], "11");
    const auto& year = by_id.at(month["parents"][0]);
    EXPECT_EQ(year["name"], "2026");
    EXPECT_EQ(year["parents"][0], "root-1");
    EXPECT_EQ(files[1]["parents"][0], day["id"]);

    const auto& f1 = by_id.at(first.references().at("drive_file_id"));
    EXPECT_EQ(f1["name"], "m-d1_mail.example_receipt-d1.jpg");
    EXPECT_EQ(f1["mimeType"], "image/jpeg");
    EXPECT_EQ(f1["appProperties"]["docpipe_doc_id"], "d1");
    EXPECT_EQ(f1["appProperties"]["docpipe_job"], "email-d1");
    EXPECT_EQ(f1["appProperties"]["docpipe_sha256"], f1["sha256"]);
    EXPECT_EQ(g.requests("drive.create"), 3u) << "each folder created once";

    // received_at is read in the configured offset: 23:30Z is the next day at +08:00.
    Document late = claim_doc("d3");
    late.attributes["received_at"] = "2026-11-29T23:30:00Z";
    ASSERT_EQ(runner.write(late).status(), SinkResult::Status::Ok);
    std::set<std::string> days;
    for (const auto& f : g.files())
        if (f["mimeType"] == "application/vnd.google-apps.folder" && f["parents"][0] == month["id"]) days.insert(f["name"]);
    EXPECT_EQ(days, (std::set<std::string>{"29", "30"}));
}

TEST(DriveSink, TheSameDocumentTwiceIsOneFile) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}});
    auto runner = drive(g);
    auto first = runner.write(claim_doc("s1"));
    ASSERT_EQ(first.status(), SinkResult::Status::Ok) << first.reason();
    // A redelivery, even to a restarted process (empty folder cache).
    auto again = drive(g);
    auto second = again.write(claim_doc("s1"));
    ASSERT_EQ(second.status(), SinkResult::Status::Ok) << second.reason();
    EXPECT_EQ(first.references().at("drive_file_id"), second.references().at("drive_file_id"));
    std::size_t files = 0;
    for (const auto& f : g.files()) files += f["mimeType"] != "application/vnd.google-apps.folder";
    EXPECT_EQ(files, 1u);
    EXPECT_EQ(g.requests("drive.upload"), 1u);
    EXPECT_EQ(g.requests("drive.create"), 3u) << "the second process found the folders";

    // The same bytes on two workers at once: archived once.
    auto third = drive(g);
    std::vector<std::optional<SinkResult>> results(2);
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) threads.emplace_back([&, i] { results[i] = third.write(claim_doc("s2")); });
    for (auto& t : threads) t.join();
    ASSERT_EQ(results[0]->status(), SinkResult::Status::Ok) << results[0]->reason();
    ASSERT_EQ(results[1]->status(), SinkResult::Status::Ok) << results[1]->reason();
    EXPECT_EQ(results[0]->references(), results[1]->references());
    EXPECT_EQ(g.requests("drive.upload"), 2u);
}

TEST(DriveSink, FileNamesAreSanitised) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}});
    auto runner = drive(g);
    Document d = claim_doc("n1");
    d.attributes["message_id"] = "<abc/123@mail.example.com>";
    d.attributes["filename"] = "my receipt (1).jpg";
    auto result = runner.write(d);
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    Document long_name = claim_doc("n2");
    long_name.attributes["filename"] = std::string(300, 'x') + ".pdf";
    ASSERT_EQ(runner.write(long_name).status(), SinkResult::Status::Ok);
    std::set<std::string> names;
    for (const auto& f : g.files())
        if (f["mimeType"] != "application/vnd.google-apps.folder") names.insert(f["name"]);
    EXPECT_TRUE(names.count("abc_123_mail.example.com_my_receipt_1_.jpg")) << json(names).dump();
    bool found_long = false;
    for (const auto& n : names)
        if (n.size() == 150 && n.ends_with(".pdf") && n.rfind("m-n2_mail.example_xxx", 0) == 0) found_long = true;
    EXPECT_TRUE(found_long) << json(names).dump();
}

TEST(DriveSink, ALargeFileGoesUpResumablyInChunks) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}});
    auto runner = drive(g, "resumable_above: 300KiB\nchunk_size: 256KiB\n");
    const Document d = sized_doc("big", 700 * 1024);
    auto result = runner.write(d);
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    bool found = false;
    for (const auto& f : g.files()) {
        if (f["id"] == result.references().at("drive_file_id")) {
            found = true;
            EXPECT_EQ(f["size"], 700 * 1024);
            EXPECT_EQ(f["sha256"], sha256_hex(*d.parts[0].bytes));
            EXPECT_EQ(f["mimeType"], "application/pdf");
        }
    }
    EXPECT_TRUE(found);
    EXPECT_EQ(g.requests("drive.upload"), 1u) << "one session";
    EXPECT_EQ(g.requests("drive.upload_chunk"), 3u) << "256 + 256 + 188 KiB";
    EXPECT_FALSE(runner.context().state().get("drive/session/" + sha256_hex(*d.parts[0].bytes))) << "a finished session is forgotten";

    // A small file still goes in one multipart request.
    ASSERT_EQ(runner.write(sized_doc("small", 100 * 1024)).status(), SinkResult::Status::Ok);
    EXPECT_EQ(g.requests("drive.upload_chunk"), 3u);
}

// Every chunk carries the access token to the session URL that Drive's Location (or the state
// store) names: one on another host collected it.
TEST(DriveSink, AnUploadSessionOnAnotherHostIsNotGivenTheToken) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}});
    auto runner = drive(g, "resumable_above: 300KiB\nchunk_size: 256KiB\n");
    g.script("drive.upload", json::array({{{"status", 200}, {"headers", {{"Location", "http://collector.example:8080/upload?upload_id=x"}}}, {"body", ""}}}));
    auto result = runner.write(sized_doc("elsewhere", 400 * 1024));
    EXPECT_EQ(result.status(), SinkResult::Status::Hold) << result.reason();
    EXPECT_NE(result.reason().find("is at http://collector.example:8080, not at drive_upload_url"), std::string::npos) << result.reason();
    EXPECT_EQ(g.requests("drive.upload_chunk"), 0u);
}

TEST(DriveSink, ABrokenUploadResumesFromWhatTheServerHas) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}});
    auto runner = drive(g, "resumable_above: 300KiB\nchunk_size: 256KiB\n");
    g.control("POST", "/_fake/drive_break", {{"after_bytes", 300000}});
    const Document d = sized_doc("broken", 700 * 1024);
    auto result = runner.write(d);
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    json file;
    for (const auto& f : g.files())
        if (f["id"] == result.references().at("drive_file_id")) file = f;
    ASSERT_FALSE(file.is_null());
    EXPECT_EQ(file["sha256"], sha256_hex(*d.parts[0].bytes)) << "every byte once, in order";
    EXPECT_EQ(file["appProperties"]["docpipe_sha256"], file["sha256"]);
    EXPECT_EQ(g.requests("drive.upload"), 1u) << "resumed in the same session";
    bool dropped = false;
    for (const auto& r : g.control("GET", "/_fake/requests?target=drive.upload_chunk")) dropped = dropped || r.value("dropped", false);
    EXPECT_TRUE(dropped);
}

TEST(DriveSink, ALostConnectionMidUploadAsksTheSessionWhatItHas) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}});
    auto runner = drive(g, "resumable_above: 300KiB\nchunk_size: 256KiB\n");
    // One drop: a PUT goes on a new connection, so libcurl does not send it again by itself
    // and the sink sees the lost answer.
    g.script("drive.upload_chunk", json::parse(R"([{"drop_connection": true, "count": 1}])"));
    const Document d = sized_doc("dropped", 600 * 1024);
    auto result = runner.write(d);
    if (result.status() == SinkResult::Status::Hold) result = runner.write(d);  // the status query itself was the one dropped
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    bool status_query = false;
    for (const auto& r : g.control("GET", "/_fake/requests?target=drive.upload_chunk"))
        status_query = status_query || (r["body_size"] == 0 && r["headers"].value("content-range", "") == "bytes */614400");
    EXPECT_TRUE(status_query) << "asked the session what it has (PUT, empty body, Content-Range: bytes */total)";
    EXPECT_EQ(g.requests("drive.upload"), 1u) << "the same session";
    for (const auto& f : g.files()) {
        if (f["id"] == result.references().at("drive_file_id")) {
            EXPECT_EQ(f["sha256"], sha256_hex(*d.parts[0].bytes));
        }
    }
}

TEST(DriveSink, ASessionKeptInTheStateStoreIsResumedOrRestarted) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}});
    const std::string config = "resumable_above: 300KiB\nchunk_size: 256KiB\n";
    const Document d = sized_doc("restart", 600 * 1024);
    const std::string key = "drive/session/" + sha256_hex(*d.parts[0].bytes);

    auto first = drive(g, config);
    // The first chunk and the status query after it fail: the write is held, the session kept.
    g.script("drive.upload_chunk", json::array({{{"status", 503}, {"count", 2}}}));
    auto held = first.write(d);
    ASSERT_EQ(held.status(), SinkResult::Status::Hold) << held.reason();
    const auto session = first.context().state().get(key);
    ASSERT_TRUE(session);

    // A restarted process with the same state store resumes that session.
    auto second = drive(g, config);
    second.context().state().put(key, *session, std::chrono::seconds(0));
    auto result = second.write(d);
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    EXPECT_EQ(g.requests("drive.upload"), 1u) << "no new session";
    EXPECT_FALSE(second.context().state().get(key));

    // An expired session (404) is replaced by a new one.
    const Document e = sized_doc("expired", 600 * 1024);
    const std::string key2 = "drive/session/" + sha256_hex(*e.parts[0].bytes);
    g.script("drive.upload_chunk", json::array({{{"status", 503}, {"count", 2}}}));
    ASSERT_EQ(second.write(e).status(), SinkResult::Status::Hold);
    ASSERT_TRUE(second.context().state().get(key2));
    g.control("POST", "/_fake/drive_expire_uploads");
    auto renewed = second.write(e);
    ASSERT_EQ(renewed.status(), SinkResult::Status::Ok) << renewed.reason();
    EXPECT_EQ(g.requests("drive.upload"), 3u);
    for (const auto& f : g.files()) {
        if (f["id"] == renewed.references().at("drive_file_id")) {
            EXPECT_EQ(f["sha256"], sha256_hex(*e.parts[0].bytes));
        }
    }
}

TEST(DriveSink, ASharedDriveRootWorks) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}, {"shared_drive", true}});
    auto runner = drive(g, "shared_drive: true\n");
    auto result = runner.write(claim_doc("sd1"));
    ASSERT_EQ(result.status(), SinkResult::Status::Ok) << result.reason();
    for (const auto& f : g.files()) EXPECT_EQ(f["driveId"], "root-1") << f.dump();
    // Found again in the shared drive: no second upload, no second set of folders.
    auto again = drive(g, "shared_drive: true\n");
    auto second = again.write(claim_doc("sd1"));
    ASSERT_EQ(second.status(), SinkResult::Status::Ok) << second.reason();
    EXPECT_EQ(second.references().at("drive_file_id"), result.references().at("drive_file_id"));
    EXPECT_EQ(g.requests("drive.upload"), 1u);
    EXPECT_EQ(g.requests("drive.create"), 3u);
    for (const auto& r : g.control("GET", "/_fake/requests?target=drive")) EXPECT_EQ(r["query"].value("supportsAllDrives", ""), "true");
}

TEST(DriveSink, AFolderTheAccountCannotSeeHoldsWithHealthUnavailable) {
    Google g;  // root-1 is not registered: the fake answers 404 for it, as Drive does
    auto runner = drive(g);
    auto result = runner.write(claim_doc("h1"));
    EXPECT_EQ(result.status(), SinkResult::Status::Hold) << result.reason();
    const auto health = runner.component().health();
    EXPECT_EQ(health.status, Health::Unavailable);
    EXPECT_NE(health.detail.find("root-1"), std::string::npos) << health.detail;
    EXPECT_NE(health.detail.find("docpipe@test-project.iam.gserviceaccount.com"), std::string::npos) << health.detail;
}

TEST(DriveSink, InvalidCredentialsHoldWithHealthUnavailable) {
    Google g;
    g.control("POST", "/_fake/drive_root", {{"id", "root-1"}});
    TempFile unknown(service_account_json(new_rsa_key_pem()));
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_file(), "sink.drive",
                                                   g.credentials(unknown.path) + "drive_url: " + g.base() + "\ndrive_upload_url: " +
                                                       g.base() + "/upload\nroot_folder_id: root-1\n");
    auto result = runner.write(claim_doc("k1"));
    EXPECT_EQ(result.status(), SinkResult::Status::Hold) << result.reason();
    EXPECT_EQ(runner.component().health().status, Health::Unavailable);
    EXPECT_EQ(g.requests("drive"), 0u);
}
