// source.directory and sink.files, run through the SDK testing kit against the built .so.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "docpipe/testing.hpp"
#include "harness.hpp"

using namespace docpipe;
using namespace docpipe::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {
const fs::path kPlugin = fs::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-basic.so";

void write_file(const fs::path& p, const std::string& content) { std::ofstream(p, std::ios::binary) << content; }
std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}
std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}
}  // namespace

TEST(DirectorySource, TakesCompleteFilesAndMovesThemOnAck) {
    test::TempDir dir;
    write_file(dir.path() / "a.eml", "From: x\nMessage-ID: <a@x>\n\nhello");
    write_file(dir.path() / "b.jpg", "JPEGDATA");
    write_file(dir.path() / ".hidden", "no");
    write_file(dir.path() / "c.part", "still downloading");
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory", "path: " + dir.path().string() + "\nsettle_time: 1s");

    // Just written: not yet settled on the manual clock.
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    runner.clock().advance(1500ms);
    auto items = runner.poll({0ms, false});
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].doc.attributes.at("filename"), "a.eml");
    EXPECT_EQ(items[0].doc.parts[0].media_type, "message/rfc822");
    EXPECT_EQ(items[1].doc.parts[0].media_type, "image/jpeg");
    EXPECT_EQ(items[0].doc.attributes.at("message_id"), "a@x") << "an email's, known before transform.mime parses it";
    EXPECT_EQ(items[1].doc.attributes.count("message_id"), 0u);
    // The id covers the file name and the content: a copy under another name is another job.
    EXPECT_EQ(items[1].doc.id, Document::content_id(std::string("b.jpg") + '\0' + "JPEGDATA"));
    EXPECT_EQ(items[1].doc.attributes.at("filename"), "b.jpg");
    EXPECT_TRUE(runner.poll({0ms, false}).empty()) << "in-flight files are not emitted twice";

    items[0].ack(Outcome{true, ""});
    items[1].ack(Outcome{false, "b.jpg: truncated JPEG"});
    EXPECT_EQ(names_in(dir.path() / "processed"), std::vector<std::string>{"a.eml"});
    EXPECT_EQ(names_in(dir.path() / "failed"), (std::vector<std::string>{"b.jpg", "b.jpg.reason"}));
    EXPECT_EQ(read_file(dir.path() / "failed" / "b.jpg.reason"), "b.jpg: truncated JPEG\n");
    EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{".hidden", "c.part"}));
}

TEST(DirectorySource, FileStillBeingWrittenWaitsUntilItIsStable) {
    test::TempDir dir;
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory", "path: " + dir.path().string() + "\nsettle_time: 1s");
    write_file(dir.path() / "big.pdf", "part one");
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    runner.clock().advance(800ms);
    { std::ofstream(dir.path() / "big.pdf", std::ios::app) << " and part two, written later"; }
    EXPECT_TRUE(runner.poll({0ms, false}).empty()) << "the size changed: the settle timer restarts";
    runner.clock().advance(800ms);
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    runner.clock().advance(300ms);
    auto items = runner.poll({0ms, false});
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].doc.parts[0].bytes->size(), std::string("part one and part two, written later").size());
}

// A writer that pauses longer than settle_time (a slow share) gets its file read half-written.
// The half fails (a truncated photo); at that ack the file is found to have grown since it was
// read, so it is not filed in failed/ as the sender's fault: it stays, and once it settles the
// whole file is read as a document of its own.
TEST(DirectorySource, AFileThatChangedAfterItWasReadStaysToBeReadAgainWhole) {
    test::TempDir dir;
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory", "path: " + dir.path().string() + "\nsettle_time: 1s");
    write_file(dir.path() / "scan.jpg", "first half");
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    runner.clock().advance(1500ms);
    auto items = runner.poll({0ms, false});
    ASSERT_EQ(items.size(), 1u);
    const std::string first_id = items[0].doc.id;
    { std::ofstream(dir.path() / "scan.jpg", std::ios::app) << " and the rest, after a pause"; }
    items[0].ack(Outcome{false, "scan.jpg: truncated JPEG"});
    EXPECT_FALSE(fs::exists(dir.path() / "failed" / "scan.jpg")) << "not filed as the sender's fault";
    EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"scan.jpg"});
    std::string warned;
    for (const auto& line : runner.context().log_lines())
        if (line.level == LogLevel::Warn) warned += line.message;
    EXPECT_NE(warned.find("scan.jpg changed after it was read (10 bytes then, 38 now): it was still being written"), std::string::npos)
        << warned;

    EXPECT_TRUE(runner.poll({0ms, false}).empty()) << "it settles again first";
    runner.clock().advance(1500ms);
    items = runner.poll({0ms, false});
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].doc.parts[0].bytes->size(), 38u);
    EXPECT_NE(items[0].doc.id, first_id) << "the whole file is a document of its own";
    items[0].ack(Outcome{true, ""});
    EXPECT_EQ(names_in(dir.path() / "processed"), std::vector<std::string>{"scan.jpg"});

    // A file unchanged since its read is filed as before, whatever its outcome.
    write_file(dir.path() / "b.jpg", "bytes");
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    runner.clock().advance(1500ms);
    items = runner.poll({0ms, false});
    ASSERT_EQ(items.size(), 1u);
    items[0].ack(Outcome{false, "b.jpg: truncated JPEG"});
    EXPECT_TRUE(fs::exists(dir.path() / "failed" / "b.jpg"));

    // One whose job went through on what was read, and that was then saved over (a scanner
    // that always writes scan.jpg): filed unread, the next receipt was lost. It is read again.
    write_file(dir.path() / "c.jpg", "receipt 1");
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    runner.clock().advance(1500ms);
    items = runner.poll({0ms, false});
    ASSERT_EQ(items.size(), 1u);
    write_file(dir.path() / "c.jpg", "receipt number 2");
    items[0].ack(Outcome{true, ""});
    EXPECT_FALSE(fs::exists(dir.path() / "processed" / "c.jpg"));
    warned.clear();
    for (const auto& line : runner.context().log_lines())
        if (line.level == LogLevel::Warn) warned += line.message;
    EXPECT_NE(warned.find("c.jpg changed after it was read (9 bytes then, 16 now): its job went through on what was read then"),
              std::string::npos) << warned;
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    runner.clock().advance(1500ms);
    items = runner.poll({0ms, false});
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].doc.parts[0].bytes->size(), 16u) << "the second receipt, read";
}

TEST(DirectorySource, DrainModeWaitsForSettlingFiles) {
    test::TempDir dir;
    write_file(dir.path() / "x.png", "png");
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory", "path: " + dir.path().string() + "\nsettle_time: 2s");
    // The manual clock advances while the source sleeps, so this returns at once.
    auto items = runner.poll({0ms, true});
    ASSERT_EQ(items.size(), 1u);
}

// What the runtime does with a document the source rejects (a file it cannot take): a failed
// job, then the ack with the reason, which moves the file to failed/. Returns the documents
// emitted; `rejected` gets the rejected ones' reasons.
std::vector<SourceItem> settle_rejected(std::vector<SourceItem> items, std::vector<std::string>* rejected = nullptr) {
    std::vector<SourceItem> emitted;
    for (auto& item : items) {
        if (item.rejected.empty()) {
            emitted.push_back(std::move(item));
            continue;
        }
        EXPECT_TRUE(item.doc.parts.empty()) << "nothing is read from a file that is refused";
        EXPECT_FALSE(item.doc.id.empty());
        if (rejected) rejected->push_back(item.rejected);
        item.ack(Outcome{false, item.rejected});
    }
    return emitted;
}

TEST(DirectorySource, PatternsAndMaxBytes) {
    test::TempDir dir;
    write_file(dir.path() / "keep.eml", "ok");
    write_file(dir.path() / "skip.txt", "ignored");
    write_file(dir.path() / "huge.eml", std::string(100, 'x'));
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory",
                                          "path: " + dir.path().string() + "\nsettle_time: 0s\npatterns: ['*.eml']\nmax_bytes: 50");
    std::vector<std::string> rejected;
    auto items = settle_rejected(runner.poll({0ms, false}), &rejected);
    EXPECT_EQ(rejected, std::vector<std::string>{"huge.eml: file is 100 bytes, above max_bytes 50"}) << "handed to the runtime as a failure";
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].doc.attributes.at("filename"), "keep.eml");
    EXPECT_EQ(read_file(dir.path() / "failed" / "huge.eml.reason"), "huge.eml: file is 100 bytes, above max_bytes 50\n");
    EXPECT_TRUE(fs::exists(dir.path() / "skip.txt"));
}

// Every shipped pipeline lists lower-case patterns ("*.jpg"); a phone names its photos
// IMG_0001.JPG, and such a file sat in the inbox for ever, never taken and never logged.
TEST(DirectorySource, PatternsMatchWithoutRegardToCase) {
    test::TempDir dir;
    write_file(dir.path() / "RECEIPT.JPG", "JPEGDATA");
    write_file(dir.path() / "Scan.Pdf", "%PDF");
    write_file(dir.path() / "notes.txt", "not a receipt");
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory",
                                          "path: " + dir.path().string() + "\nsettle_time: 0s\npatterns: ['*.jpg', '*.pdf']");
    auto items = runner.poll({0ms, false});
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].doc.attributes.at("filename"), "RECEIPT.JPG");
    EXPECT_EQ(items[0].doc.parts[0].media_type, "image/jpeg");
    EXPECT_EQ(items[1].doc.attributes.at("filename"), "Scan.Pdf");
    items[0].ack({true, ""});
    items[1].ack({true, ""});
    EXPECT_EQ(names_in(dir.path() / "processed"), (std::vector<std::string>{"RECEIPT.JPG", "Scan.Pdf"}));
    EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"notes.txt"});
}

// Found by a probe: a folder of scans copied into the inbox sat there for ever, with nothing
// in the log. It is named once, as a warning; the source's own folders are not.
TEST(DirectorySource, AFolderInTheInboxIsNamedOnceAsAWarning) {
    test::TempDir dir;
    fs::create_directories(dir.path() / "batch");
    write_file(dir.path() / "batch" / "083.jpg", "receipt");
    fs::create_directories(dir.path() / "trap.jpg");
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory", "path: " + dir.path().string() + "\nsettle_time: 0s");
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(runner.poll({0ms, false}).empty());
    std::vector<std::string> warnings, all;
    for (const auto& line : runner.context().log_lines()) {
        all.push_back(line.message);
        if (line.level == LogLevel::Warn) warnings.push_back(line.message);
    }
    std::sort(warnings.begin(), warnings.end());
    ASSERT_EQ(warnings.size(), 2u) << "once each, not on every poll: " << ::testing::PrintToString(all);
    EXPECT_EQ(warnings[0].rfind("batch/: a folder; the files in it are not taken (only files at the top of ", 0), 0u) << warnings[0];
    EXPECT_EQ(warnings[1].rfind("trap.jpg/: a folder", 0), 0u) << warnings[1];
    EXPECT_TRUE(fs::exists(dir.path() / "batch" / "083.jpg")) << "left where it is";
}

// A file that matches no pattern stays in the folder; the operator reads why in the log, once
// (not on every poll), and again only if it is dropped again after it went away.
TEST(DirectorySource, AFileThatMatchesNoPatternIsNamedOnceInTheLog) {
    test::TempDir dir;
    write_file(dir.path() / "IMG_0001.HEIC", "photo");
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory",
                                          "path: " + dir.path().string() + "\nsettle_time: 0s\npatterns: ['*.jpg', '*.pdf']");
    auto lines_naming = [&](std::string_view name) {
        std::vector<LogLine> out;
        for (const auto& line : runner.context().log_lines())
            if (line.message.find(name) != std::string::npos) out.push_back(line);
        return out;
    };
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(runner.poll({0ms, false}).empty());
    auto lines = lines_naming("IMG_0001.HEIC");
    ASSERT_EQ(lines.size(), 1u) << "named once, not on every poll";
    EXPECT_EQ(lines[0].level, LogLevel::Info);
    EXPECT_NE(lines[0].message.find("IMG_0001.HEIC: matches none of the patterns (*.jpg, *.pdf); left in "), std::string::npos)
        << lines[0].message;
    EXPECT_TRUE(lines_naming("processed: matches").empty()) << "the source's own folders are not files to report";
    EXPECT_TRUE(lines_naming("failed: matches").empty()) << "the source's own folders are not files to report";
    EXPECT_TRUE(fs::exists(dir.path() / "IMG_0001.HEIC"));
    fs::remove(dir.path() / "IMG_0001.HEIC");
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    write_file(dir.path() / "IMG_0001.HEIC", "photo, dropped again");
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    EXPECT_EQ(lines_naming("IMG_0001.HEIC").size(), 2u) << "dropped again after it went away: named again";
}

// A named pipe, a device or a link never becomes a complete file: each goes to failed/ with
// its reason (it used to stay in the folder with no word), and nothing blocks on reading it.
TEST(DirectorySource, APipeADeviceOrALinkIsMovedToFailedWithItsReason) {
    test::TempDir dir;
    write_file(dir.path() / "real.in", "From: x\n\nhello");
    write_file(dir.path() / "outside.eml", "From: y\n\nnot dropped here");  // not wanted: only *.in
    ASSERT_EQ(::mkfifo((dir.path() / "pipe.in").c_str(), 0600), 0);
    fs::create_symlink("/dev/zero", dir.path() / "zero.in");
    fs::create_symlink(dir.path() / "nowhere.eml", dir.path() / "dangling.in");
    fs::create_symlink(dir.path() / "outside.eml", dir.path() / "link.in");
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory",
                                          "path: " + dir.path().string() + "\nsettle_time: 0s\npatterns: ['*.in']");
    std::vector<std::string> rejected;
    auto items = settle_rejected(runner.poll({0ms, false}), &rejected);
    EXPECT_EQ(rejected.size(), 4u) << "each refused entry is a failure the runtime counts (run --once said 0 failed)";
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].doc.attributes.at("filename"), "real.in");
    const fs::path failed = dir.path() / "failed";
    EXPECT_EQ(read_file(failed / "pipe.in.reason"), "pipe.in: a named pipe (FIFO), not a file\n");
    EXPECT_EQ(read_file(failed / "zero.in.reason"), "zero.in: a symbolic link, not followed (follow_links: false); drop the file itself\n");
    EXPECT_EQ(read_file(failed / "dangling.in.reason"), "dangling.in: a symbolic link, not followed (follow_links: false); drop the file itself\n");
    EXPECT_EQ(read_file(failed / "link.in.reason"), "link.in: a symbolic link, not followed (follow_links: false); drop the file itself\n");
    // Moved as they are: the pipe is still a pipe and the links still links, nothing read.
    EXPECT_TRUE(fs::is_fifo(fs::symlink_status(failed / "pipe.in")));
    EXPECT_TRUE(fs::is_symlink(fs::symlink_status(failed / "zero.in")));
    EXPECT_TRUE(fs::exists(dir.path() / "outside.eml"));
    EXPECT_TRUE(runner.poll({0ms, false}).empty()) << "nothing is left to take";
}

// A refused entry whose move fails (failed/ is not a folder here) is reported once, like a
// file whose move fails, not again on every scan of the run.
TEST(DirectorySource, ARefusedEntryThatCannotBeMovedIsReportedOnceNotEveryScan) {
    test::TempDir dir;
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory", "path: " + dir.path().string() + "\nsettle_time: 0s\npatterns: ['*.eml']");
    fs::remove_all(dir.path() / "failed");
    write_file(dir.path() / "failed", "a file where the failed/ folder should be");
    ASSERT_EQ(::mkfifo((dir.path() / "pipe.eml").c_str(), 0600), 0);
    auto count_lines = [&](std::string_view part) {
        std::size_t n = 0;
        for (const auto& line : runner.context().log_lines()) n += line.message.find(part) != std::string::npos;
        return n;
    };
    std::vector<std::string> rejected;
    EXPECT_TRUE(settle_rejected(runner.poll({0ms, false}), &rejected).empty());
    EXPECT_EQ(rejected.size(), 1u);
    EXPECT_EQ(count_lines("cannot move pipe.eml"), 1u);
    EXPECT_EQ(runner.component().health().status, Health::Degraded);
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    EXPECT_TRUE(runner.poll({0ms, false}).empty());
    EXPECT_EQ(count_lines("pipe.eml: a named pipe"), 1u) << "refused once in the run, not on every scan";
    EXPECT_EQ(count_lines("cannot move pipe.eml"), 1u);
    EXPECT_TRUE(fs::is_fifo(fs::symlink_status(dir.path() / "pipe.eml"))) << "left where it was, for the operator";
}

TEST(DirectorySource, WithFollowLinksALinkToAFileIsReadAndALinkToADeviceIsNot) {
    test::TempDir dir;
    test::TempDir elsewhere;
    write_file(elsewhere.path() / "receipt.eml", "From: x\n\nlinked");
    fs::create_symlink(elsewhere.path() / "receipt.eml", dir.path() / "linked.eml");
    fs::create_symlink("/dev/zero", dir.path() / "zero.eml");
    fs::create_symlink(elsewhere.path() / "gone.eml", dir.path() / "dangling.eml");
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory",
                                          "path: " + dir.path().string() + "\nsettle_time: 0s\nfollow_links: true");
    auto items = settle_rejected(runner.poll({0ms, false}));
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].doc.attributes.at("filename"), "linked.eml");
    EXPECT_EQ(items[0].doc.parts[0].bytes->size(), std::string("From: x\n\nlinked").size());
    EXPECT_EQ(read_file(dir.path() / "failed" / "zero.eml.reason"), "zero.eml: a symbolic link to a named pipe, device or socket, not a file\n");
    EXPECT_EQ(read_file(dir.path() / "failed" / "dangling.eml.reason"), "dangling.eml: a symbolic link to a file that does not exist\n");
    items[0].ack({true, ""});
    EXPECT_TRUE(fs::is_symlink(fs::symlink_status(dir.path() / "processed" / "linked.eml"))) << "the link is moved, not its file";
    EXPECT_TRUE(fs::exists(elsewhere.path() / "receipt.eml"));
}

// A name near the file-name limit (255 bytes) got no .reason beside it in failed/, and one
// that also needed a ".1" could not be moved at all: it stayed in the inbox, read and failed
// again on every run. Such a name is shortened where it is filed, keeping its extension.
TEST(DirectorySource, ANameNearTheLimitIsFiledWithItsReason) {
    test::TempDir dir;
    const std::string name = std::string(236, 'r') + "\xC3\xA9" + std::string(12, 's') + ".jpg";  // 254 bytes, an é at the cut
    ASSERT_EQ(name.size(), 254u);
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory", "path: " + dir.path().string() + "\nsettle_time: 0s");
    for (int round = 0; round < 2; ++round) {  // the second finds the first's name taken
        write_file(dir.path() / name, "not a photo " + std::to_string(round));
        auto items = runner.poll({0ms, false});
        ASSERT_EQ(items.size(), 1u);
        items[0].ack(Outcome{false, name + ": not a readable image"});
        EXPECT_FALSE(fs::exists(dir.path() / name)) << "moved out of the inbox";
    }
    const auto filed = names_in(dir.path() / "failed");
    ASSERT_EQ(filed.size(), 4u) << ::testing::PrintToString(filed);
    std::size_t reasons = 0;
    for (const auto& f : filed) {
        EXPECT_LE(f.size(), 255u) << f;
        EXPECT_EQ(f.find("\xC3~"), std::string::npos) << "not cut inside the é";
        if (f.size() > 7 && f.compare(f.size() - 7, 7, ".reason") == 0) {
            ++reasons;
            EXPECT_NE(read_file(dir.path() / "failed" / f).find("not a readable image"), std::string::npos);
        } else {
            EXPECT_NE(f.find(".jpg"), std::string::npos) << "the extension is kept: " << f;
        }
    }
    EXPECT_EQ(reasons, 2u);
}

TEST(DirectorySource, NameCollisionInProcessedKeepsBoth) {
    test::TempDir dir;
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory", "path: " + dir.path().string() + "\nsettle_time: 0s");
    write_file(dir.path() / "same.eml", "first");
    auto first = runner.poll({0ms, false});
    ASSERT_EQ(first.size(), 1u);
    first[0].ack({true, ""});
    write_file(dir.path() / "same.eml", "second");
    auto second = runner.poll({0ms, false});
    ASSERT_EQ(second.size(), 1u);
    second[0].ack({true, ""});
    EXPECT_EQ(names_in(dir.path() / "processed"), (std::vector<std::string>{"same.eml", "same.eml.1"}));
}

TEST(DirectorySource, HealthProbe) {
    test::TempDir dir;
    auto runner = NodeRunner::from_plugin(kPlugin, "source.directory", "path: " + (dir.path() / "in").string());
    EXPECT_EQ(runner.component().health().status, Health::Healthy);
    fs::remove_all(dir.path() / "in");
    auto report = runner.component().health();
    EXPECT_EQ(report.status, Health::Unavailable);
    EXPECT_NE(report.detail.find("is not a folder"), std::string::npos);
}

TEST(FilesSink, OneJsonFilePerDocumentWrittenAtomically) {
    test::TempDir dir;
    auto runner = NodeRunner::from_plugin(kPlugin, "sink.files", "path: " + dir.path().string());
    auto doc = Document::from_bytes("r.jpg", "image/jpeg", Bytes{1, 2, 3});
    doc.fields["total_amount"] = {{"value", 479.05}};
    ASSERT_EQ(runner.write(doc).status(), SinkResult::Status::Ok);
    EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{doc.id + ".json"}) << "no temp file left behind";
    auto j = nlohmann::json::parse(read_file(dir.path() / (doc.id + ".json")));
    EXPECT_EQ(j["fields"]["total_amount"]["value"], 479.05);
    EXPECT_EQ(j["parts"][0]["name"], "r.jpg");
    EXPECT_FALSE(j["parts"][0].contains("base64"));
}

TEST(FilesSink, JsonLinesAppendsOneLinePerDocument) {
    test::TempDir dir;
    auto runner = NodeRunner::from_plugin(kPlugin, "sink.files",
                                          "path: " + dir.path().string() + "\nformat: jsonl\ninclude_content: true");
    for (char c : std::string("abc")) ASSERT_EQ(runner.write(Document::from_bytes("f", "text/plain", Bytes{static_cast<std::uint8_t>(c)})).status(), SinkResult::Status::Ok);
    std::istringstream lines(read_file(dir.path() / "documents.jsonl"));
    std::string line;
    std::vector<std::string> contents;
    while (std::getline(lines, line)) contents.push_back(nlohmann::json::parse(line)["parts"][0]["base64"]);
    EXPECT_EQ(contents, (std::vector<std::string>{"YQ==", "Yg==", "Yw=="}));
}

// A drop folder's file named in Latin-1 ("r\xE9sit.txt"): nlohmann/json refuses to write such
// a string by default, and the document was retried as if the disk had failed, then lost with
// its dead letter (written the same way). Each bad byte is written as U+FFFD.
TEST(FilesSink, ANameThatIsNotUtf8IsWrittenNotRetried) {
    test::TempDir dir;
    auto runner = NodeRunner::from_plugin(kPlugin, "sink.files", "path: " + dir.path().string() + "\nformat: jsonl");
    auto doc = Document::from_bytes("r\xE9sit.txt", "text/plain", Bytes{'x'});
    doc.attributes["filename"] = "r\xE9sit.txt";
    ASSERT_EQ(runner.write(std::move(doc)).status(), SinkResult::Status::Ok);
    const auto line = nlohmann::json::parse(read_file(dir.path() / "documents.jsonl"));
    EXPECT_EQ(line["attributes"]["filename"], "r\uFFFDsit.txt");
}

TEST(FilesSink, UnwritableTargetAsksForRetryWithTheReason) {
    test::TempDir dir;
    auto runner = NodeRunner::from_plugin(kPlugin, "sink.files", "path: " + dir.path().string() + "\nfile_name: out.json");
    fs::create_directories(dir.path() / "out.json" / "occupied");  // a folder where the file should go
    auto result = runner.write(Document::from_bytes("x", "text/plain", Bytes{'x'}));
    EXPECT_EQ(result.status(), SinkResult::Status::Retry);
    EXPECT_NE(result.reason().find("out.json"), std::string::npos) << result.reason();
    EXPECT_NE(result.reason().find("Is a directory"), std::string::npos) << result.reason();
    EXPECT_EQ(runner.component().health().status, Health::Degraded);
}

TEST(FilesSink, InvalidConfigIsRejectedByTheSpec) {
    try {
        NodeRunner::from_plugin(kPlugin, "sink.files", "path: /tmp\nformat: xml\nfsink: true");
        FAIL();
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("2:9: config.format: 'xml' is not one of: json, jsonl"), std::string::npos) << what;
        EXPECT_NE(what.find("3:1: config.fsink: unknown key 'fsink' (did you mean 'fsync'?)"), std::string::npos) << what;
    }
}

TEST(NodeRunnerFromPlugin, AWrongComponentNameListsWhatTheLibraryProvides) {
    try {
        NodeRunner::from_plugin(kPlugin, "sink.file", "path: /tmp/x");
        FAIL() << "no error for a component the plugin does not have";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("does not provide component 'sink.file'"), std::string::npos) << what;
        EXPECT_NE(what.find("did you mean 'sink.files'?"), std::string::npos) << what;
        EXPECT_NE(what.find("it provides: "), std::string::npos) << what;
        EXPECT_NE(what.find("source.directory"), std::string::npos) << what;
    }
}
