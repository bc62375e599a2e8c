// The pixel and memory budget: hostile images that are tiny as files but huge as pixels
// (a 1x1500 PNG that clean-up would scale to 1000x1500000, a header claiming 100000x100000,
// an email carrying twenty of them) are refused from their sizes before anything large is
// allocated, each with a reason that names the file, the size and the limit, in seconds and
// with bounded memory. Peak memory is measured in a forked child, so the numbers are the
// scenario's own and a regression cannot take the test process down with it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/core.h>

#include "base64.hpp"
#include "budget.hpp"
#include "docpipe/testing.hpp"
#include "harness.hpp"
#include "preprocess_cpu.hpp"

using namespace docpipe;
using namespace docpipe::imaging;
using docpipe::testing::NodeRunner;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

const fs::path kPluginDir = DOCPIPE_BUILD_PLUGIN_DIR;
const fs::path kImaging = kPluginDir / "libdocpipe-imaging.so";
const fs::path kMail = kPluginDir / "libdocpipe-mail.so";
const fs::path kOcr = kPluginDir / "libdocpipe-tesseract.so";
const fs::path kReceipt = fs::path(DOCPIPE_SOURCE_DIR) / "tests/data/malaysian_receipt_test.jpg";

// ---- hostile files, built byte by byte -------------------------------------------------------

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
    const std::string body = type + data;
    const auto crc = static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
    return be32(static_cast<std::uint32_t>(data.size())) + body + be32(crc);
}

std::string png_ihdr(std::uint32_t width, std::uint32_t height) {
    return png_chunk("IHDR", be32(width) + be32(height) + std::string("\x08\x00\x00\x00\x00", 5));  // 8-bit gray
}

// A valid white 8-bit gray PNG. `padding` adds a text chunk, so an attachment is not taken
// for a logo (transform.mime skips images under 8 KiB).
std::string white_png(std::uint32_t width, std::uint32_t height, std::size_t padding = 0) {
    std::string raw;
    raw.reserve((width + 1) * static_cast<std::size_t>(height));
    for (std::uint32_t y = 0; y < height; ++y) raw += '\0' + std::string(width, '\xff');
    uLongf size = compressBound(static_cast<uLong>(raw.size()));
    std::string packed(size, '\0');
    compress2(reinterpret_cast<Bytef*>(packed.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
              static_cast<uLong>(raw.size()), 9);
    packed.resize(size);
    std::string png = "\x89PNG\r\n\x1a\n" + png_ihdr(width, height);
    if (padding) png += png_chunk("tEXt", std::string("Comment\0", 8) + std::string(padding, 'x'));
    return png + png_chunk("IDAT", packed) + png_chunk("IEND", "");
}

// A PNG whose header claims width x height; its data is a few bytes (a decompression bomb
// as seen from the header).
std::string claimed_png(std::uint32_t width, std::uint32_t height) {
    return "\x89PNG\r\n\x1a\n" + png_ihdr(width, height) + png_chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) +
           png_chunk("IEND", "");
}

std::string le16(unsigned v) { return {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)}; }
std::string le32(unsigned v) { return le16(v & 0xffff) + le16(v >> 16); }

// A GIF whose screen and only frame claim 65535x65535 (Leptonica's header reader would
// decode the whole of it to learn that).
std::string claimed_gif() {
    return std::string("GIF89a") + le16(65535) + le16(65535) + std::string("\0\0\0", 3) + "\x2c" + le16(0) + le16(0) + le16(65535) +
           le16(65535) + std::string("\0\x02\0", 3) + "\x3b";
}

// A BMP whose header claims 100000x100000 24-bit pixels.
std::string claimed_bmp() {
    std::string b = "BM" + le32(54) + le32(0) + le32(54) + le32(40) + le32(100000) + le32(100000) + le16(1) + le16(24);
    return b + std::string(54 - b.size(), '\0');
}

std::string base64(const std::string& in) { return test::base64_mime(in); }

struct Attachment {
    std::string type, name, bytes;
};

Document email_with(const std::vector<Attachment>& attachments) {
    std::string m = "From: Ahmad <ahmad@example.my>\r\nTo: claims@tpa.example.my\r\nSubject: Claim\r\n"
                    "Date: Fri, 27 Dec 2024 09:00:00 +0800\r\nMessage-ID: <strips@example>\r\n"
                    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B1\"\r\n\r\n"
                    "--B1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nReceipts attached.\r\n";
    for (const auto& a : attachments)
        m += "--B1\r\nContent-Type: " + a.type + "\r\nContent-Transfer-Encoding: base64\r\n"
             "Content-Disposition: attachment; filename=\"" + a.name + "\"\r\n\r\n" + base64(a.bytes);
    m += "--B1--\r\n";
    return Document::from_bytes("strips.eml", "message/rfc822", Bytes(m.begin(), m.end()));
}

std::vector<Attachment> twenty_strips() {
    std::vector<Attachment> strips;
    for (int i = 1; i <= 20; ++i) strips.push_back({"image/png", fmt::format("strip{}.png", i), white_png(1, 1500, 9000)});
    return strips;
}

Document file_doc(const std::string& name, const std::string& bytes) {
    return Document::from_bytes(name, media_type_for(name), Bytes(bytes.begin(), bytes.end()));
}

Document doc_with_page(int width, int height, int channels = 1) {
    Document doc = Document::from_bytes("page.png", "image/png", Bytes{1});
    Image img;
    img.width = width;
    img.height = height;
    img.channels = channels;
    img.pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(width) * height * channels, 255);
    doc.pages.push_back(Page{0, img, {}, std::nullopt});
    return doc;
}

std::string bad_input_of(NodeRunner& runner, Document doc) {
    try {
        runner.process(std::move(doc));
    } catch (const BadInput& e) {
        return e.what();
    }
    return "(no error)";
}

// The claims pipeline's extraction path, node by node: each document goes as far as it can;
// the result is "ok" or "<node>: <reason>" per document, in order.
struct Chain {
    NodeRunner mime = NodeRunner::from_plugin(kMail, "transform.mime", "{}");
    NodeRunner pages = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "{}");
    NodeRunner clean = NodeRunner::from_plugin(kImaging, "transform.preprocess", "device: cpu");
    NodeRunner ocr = NodeRunner::from_plugin(kOcr, "ocr.tesseract", "languages: eng");

    std::vector<std::string> run(Document doc) {
        std::vector<std::string> results;
        std::vector<DocumentPtr> docs;
        for (auto& e : mime.process(std::move(doc))) docs.push_back(e.doc);
        for (const auto& d : docs) {
            std::string where;
            try {
                where = "pages";
                auto p = pages.process(*d);
                where = "clean";
                auto c = clean.process(*p.at(0).doc);
                where = "ocr";
                ocr.process(*c.at(0).doc);
                results.push_back("ok");
            } catch (const std::exception& e) {
                results.push_back(where + ": " + e.what());
            }
        }
        return results;
    }
};

// ---- measuring a scenario in a child process -------------------------------------------------

long status_kb(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
    return -1;
}

struct Measured {
    long peak_growth_mb = -1;  // peak resident memory above where the scenario started
    double seconds = -1;
    std::vector<std::string> results;
    std::string failure;  // the child died or threw
};

// Runs `scenario` in a forked child: peak RSS growth (VmHWM after, reset before through
// /proc/self/clear_refs, against VmRSS before) and wall time, and what it returned.
template <typename Scenario>
Measured measure_in_child(Scenario scenario, int time_limit_s = 120) {
    int fds[2];
    Measured m;
    if (pipe(fds) != 0) {
        m.failure = "pipe failed";
        return m;
    }
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(static_cast<unsigned>(time_limit_s));  // a regression must not hang the suite
        std::string report;
        try {
            { std::ofstream("/proc/self/clear_refs") << "5"; }  // resets VmHWM to the current RSS
            const long base = status_kb("VmRSS:");
            const auto t0 = std::chrono::steady_clock::now();
            std::vector<std::string> results = scenario();
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            report = fmt::format("{} {:.3f}\n", (status_kb("VmHWM:") - base) / 1024, s);
            for (const auto& r : results) report += r + "\n";
        } catch (const std::exception& e) {
            report = std::string("-1 -1\nscenario threw: ") + e.what() + "\n";
        }
        for (std::size_t done = 0; done < report.size();) {
            const ssize_t n = write(fds[1], report.data() + done, report.size() - done);
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
        _exit(0);
    }
    close(fds[1]);
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status)) {
        m.failure = fmt::format("child ended by signal {} (SIGALRM = over {} s, SIGKILL = out of memory)", WTERMSIG(status),
                                time_limit_s);
        return m;
    }
    std::istringstream in(text);
    std::string line;
    in >> m.peak_growth_mb >> m.seconds;
    std::getline(in, line);
    while (std::getline(in, line)) m.results.push_back(line);
    if (m.peak_growth_mb < 0) m.failure = text;
    return m;
}

// Generous bounds: before the limits, the 1x1500 PNG alone took 44-63 s and 4.5 GB.
constexpr long kMaxGrowthMb = 300;
constexpr double kMaxSeconds = 20;

}  // namespace

// ---- the budget itself ------------------------------------------------------------------------

TEST(ImageMemoryBudget, AReservationWaitsForMemoryAndIsRetriedLaterWhenItStaysTaken) {
    ImageMemory budget(100 << 20);
    auto held = budget.reserve(80 << 20, std::chrono::milliseconds(0), "a.png");
    EXPECT_EQ(budget.in_use(), std::size_t{80} << 20);
    try {
        budget.reserve(50 << 20, std::chrono::milliseconds(50), "b.png");
        FAIL() << "expected RetryLater";
    } catch (const RetryLater& e) {
        EXPECT_THAT(e.what(), HasSubstr("b.png: waited 50 ms for 50.0 MiB of image memory; 80.0 MiB of the process budget of "
                                        "100.0 MiB (process_memory_mb) is held by other documents"));
        EXPECT_GT(e.after.count(), 0);
    }
    // Given back while a second document waits: it goes ahead.
    std::atomic<bool> got{false};
    std::thread waiter([&] {
        auto lease = budget.reserve(50 << 20, std::chrono::seconds(30), "c.png");
        got = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(got);
    held = ImageMemory::Lease();
    waiter.join();
    EXPECT_TRUE(got);
    EXPECT_EQ(budget.in_use(), 0u);
}

TEST(ImageMemoryBudget, MoreThanTheWholeBudgetFailsAtOnceAsBadInput) {
    ImageMemory budget(64 << 20);
    try {
        budget.reserve(std::size_t{3} << 30, std::chrono::seconds(30), "scan.pdf");
        FAIL() << "expected BadInput";
    } catch (const BadInput& e) {
        EXPECT_THAT(e.what(), HasSubstr("scan.pdf: needs about 3.0 GiB of image memory, more than the whole process budget of "
                                        "64.0 MiB (process_memory_mb)"));
    }
    EXPECT_EQ(budget.in_use(), 0u);
}

TEST(ImageMemoryBudget, TheSmallestSettingOfTheLiveNodesApplies) {
    ImageMemory budget(1000);
    {
        auto a = budget.configure(500);
        EXPECT_EQ(budget.capacity(), 500u);
        {
            auto b = budget.configure(300);
            EXPECT_EQ(budget.capacity(), 300u);
        }
        EXPECT_EQ(budget.capacity(), 500u);
    }
    EXPECT_EQ(budget.capacity(), 1000u);
}

// ---- the size every step will make, before it makes it ---------------------------------------

TEST(PlanRecipe, ANarrowStripIsRefusedBeforeScalingItUp) {
    Recipe r;  // defaults: min_width 1000, max 40 megapixels, aspect 1:25
    EXPECT_THROW(
        {
            try {
                plan_recipe(r, 1, 1500, 1);
            } catch (const BadInput& e) {
                EXPECT_STREQ(e.what(), "1x1500 pixels, an aspect ratio of 1:1500, beyond the limit of 1:25 (max_aspect_ratio); "
                                       "not a receipt page, not cleaned");
                throw;
            }
        },
        BadInput);
    r.max_aspect_ratio = 0;  // then the scaled size is what stops it
    try {
        plan_recipe(r, 1, 90000, 1);
        FAIL() << "expected BadInput";
    } catch (const BadInput& e) {
        EXPECT_STREQ(e.what(), "1x90000 pixels would be scaled to 1000x90000000 (90000.0 megapixels), above the limit of 40 "
                               "megapixels (max_megapixels); not cleaned");
    }
    // The CPU path refuses it the same way, before allocating (recipe_input is shared with CUDA).
    Image strip;
    strip.width = 1;
    strip.height = 1500;
    strip.channels = 1;
    strip.pixels = std::make_shared<std::vector<std::uint8_t>>(1500, 255);
    EXPECT_THROW(run_recipe_cpu(strip, Recipe{}), BadInput);
}

TEST(PlanRecipe, ALongReceiptFitsAndItsMemoryIsEstimated) {
    Recipe r;
    // 80 x 600 mm at 300 dpi: 945 x 7087 (1:7.5), scaled up to 1000 wide.
    const RecipePlan plan = plan_recipe(r, 945, 7087, 3);
    EXPECT_EQ(plan.width, 1000);
    EXPECT_EQ(plan.height, 7499);
    EXPECT_EQ(plan.output_bytes, 1000u * 7499u);
    EXPECT_GT(plan.peak_bytes, 2 * plan.output_bytes);
    EXPECT_LT(plan.peak_bytes, 20 * plan.output_bytes);
    // What the CPU path really returns for a page of that shape.
    Image page;
    page.width = 60;
    page.height = 450;
    page.channels = 1;
    page.pixels = std::make_shared<std::vector<std::uint8_t>>(60 * 450, 255);
    const Image out = run_recipe_cpu(page, r);
    const RecipePlan small = plan_recipe(r, 60, 450, 1);
    EXPECT_EQ(out.width, small.width);
    EXPECT_EQ(out.height, small.height);
}

// ---- the components ---------------------------------------------------------------------------

TEST(PixelBudget, PagesRefusesHostileSizesFromTheHeaderWithTheReason) {
    auto pages = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "{}");
    EXPECT_EQ(bad_input_of(pages, file_doc("strip.png", white_png(1, 1500))),
              "strip.png: page 1 is 1x1500 pixels, an aspect ratio of 1:1500, beyond the limit of 1:25 (max_aspect_ratio); "
              "not a receipt page; not decoded");
    EXPECT_EQ(bad_input_of(pages, file_doc("huge.png", claimed_png(100000, 100000))),
              "huge.png: page 1 is 100000x100000 pixels (10000.0 megapixels), above the limit of 100 megapixels "
              "(max_megapixels); not decoded");
    EXPECT_EQ(bad_input_of(pages, file_doc("huge.gif", claimed_gif())),
              "huge.gif: page 1 is 65535x65535 pixels (4294.8 megapixels), above the limit of 100 megapixels "
              "(max_megapixels); not decoded");
    EXPECT_EQ(bad_input_of(pages, file_doc("huge.bmp", claimed_bmp())),
              "huge.bmp: page 1 is 100000x100000 pixels (10000.0 megapixels), above the limit of 100 megapixels "
              "(max_megapixels); not decoded");
    // A long receipt is not refused: 1:7.5 decodes.
    auto out = pages.process(file_doc("long.png", white_png(80, 600)));
    EXPECT_EQ(out.at(0).doc->pages.at(0).image.height, 600);
}

TEST(PixelBudget, PagesDocumentAndProcessBudgetsAreConfigurable) {
    const Bytes jpg = test::read_bytes(kReceipt);
    const std::string receipt(jpg.begin(), jpg.end());  // 1240x1748, 2.2 megapixels
    auto per_doc = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "max_document_megapixels: 2");
    EXPECT_EQ(bad_input_of(per_doc, file_doc("receipt.jpg", receipt)),
              "receipt.jpg: its pages would decode to 2.2 megapixels together, above the limit of 2 megapixels per document "
              "(max_document_megapixels); not decoded");
    auto strict = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "max_aspect_ratio: 5");
    EXPECT_THAT(bad_input_of(strict, file_doc("long.png", white_png(80, 600))), HasSubstr("1:7.5, beyond the limit of 1:5"));
    auto small = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "process_memory_mb: 16");
    EXPECT_THAT(bad_input_of(small, file_doc("receipt.jpg", receipt)),
                ::testing::AllOf(HasSubstr("receipt.jpg: needs about "),
                                 HasSubstr(" MiB of image memory, more than the whole process budget of 16.0 MiB "
                                           "(process_memory_mb)")));
}

TEST(PixelBudget, PreprocessChecksTheSizeItWillMakeAndTheDocumentsTotal) {
    auto clean = NodeRunner::from_plugin(kImaging, "transform.preprocess", "device: cpu");
    EXPECT_EQ(bad_input_of(clean, doc_with_page(1, 1500)),
              "page.png: page 1: 1x1500 pixels, an aspect ratio of 1:1500, beyond the limit of 1:25 (max_aspect_ratio); "
              "not a receipt page, not cleaned");
    auto no_aspect = NodeRunner::from_plugin(kImaging, "transform.preprocess", "{device: cpu, max_aspect_ratio: 0}");
    EXPECT_EQ(bad_input_of(no_aspect, doc_with_page(1, 1500)),
              "page.png: page 1: 1x1500 pixels would be scaled to 1000x1500000 (1500.0 megapixels), above the limit of 40 "
              "megapixels (max_megapixels); not cleaned");
    auto per_doc =
        NodeRunner::from_plugin(kImaging, "transform.preprocess", "{device: cpu, deskew: false, max_document_megapixels: 2.5}");
    Document three = doc_with_page(1000, 1000);
    three.pages.push_back(three.pages[0]);
    three.pages.push_back(three.pages[0]);
    EXPECT_EQ(bad_input_of(per_doc, three),
              "page.png: its cleaned pages would be 3.0 megapixels together, above the limit of 2.5 megapixels per document "
              "(max_document_megapixels); not cleaned");
}

TEST(PixelBudget, OcrRefusesAPageBeyondASaneSizeAtOnce) {
    auto ocr = NodeRunner::from_plugin(kOcr, "ocr.tesseract", "languages: eng");
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(bad_input_of(ocr, doc_with_page(8000, 6000)),
              "page 1 is 8000x6000 pixels (48.0 megapixels), above ocr.tesseract's limit of 40 megapixels (max_megapixels); "
              "not recognised");
    EXPECT_EQ(bad_input_of(ocr, doc_with_page(100, 40000)),
              "page 1 is 100x40000 pixels, more than the 32767 pixels a side Tesseract can take; not recognised");
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

TEST(PixelBudget, TwentyStripsFailAloneAndTheRealReceiptGoesOn) {
    auto attachments = twenty_strips();
    const Bytes jpg = test::read_bytes(kReceipt);
    attachments.push_back({"image/jpeg", "receipt.jpg", std::string(jpg.begin(), jpg.end())});
    auto mime = NodeRunner::from_plugin(kMail, "transform.mime", "max_attachments: 21");
    auto pages = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "{}");
    auto clean = NodeRunner::from_plugin(kImaging, "transform.preprocess", "device: cpu");
    auto docs = mime.process(email_with(attachments));
    ASSERT_EQ(docs.size(), 21u);
    int refused = 0;
    for (const auto& d : docs) {
        const std::string name = d.doc->attributes.at("filename");
        if (name == "receipt.jpg") {
            auto cleaned = clean.process(*pages.process(*d.doc).at(0).doc);
            EXPECT_EQ(cleaned.at(0).doc->pages.at(0).image.width, 1240);
            continue;
        }
        EXPECT_EQ(bad_input_of(pages, *d.doc), name + ": page 1 is 1x1500 pixels, an aspect ratio of 1:1500, beyond the limit of "
                                                      "1:25 (max_aspect_ratio); not a receipt page; not decoded");
        ++refused;
    }
    EXPECT_EQ(refused, 20);
}

// ---- time and peak memory, measured in a child process ---------------------------------------

TEST(PixelBudgetMeasured, TheProbeSeesWhatAScenarioAllocates) {
    // Keeps the bounds below honest: 200 MB touched in the child shows up as such.
    const Measured m = measure_in_child([] {
        std::vector<char> block(200u << 20);
        for (std::size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
        return std::vector<std::string>{std::to_string(block[block.size() / 2 / 4096 * 4096])};
    });
    ASSERT_TRUE(m.failure.empty()) << m.failure;
    EXPECT_GE(m.peak_growth_mb, 195);
    EXPECT_LT(m.peak_growth_mb, 260);
}

TEST(PixelBudgetMeasured, TinyTallPngFinishesInSecondsWithBoundedMemory) {
    ASSERT_LT(white_png(1, 1500).size(), 100u) << "the hostile file is tiny (84 bytes in the report)";
    const Measured m = measure_in_child([] {
        Chain chain;
        std::vector<std::string> results;
        const std::string strip = white_png(1, 1500);
        try {
            chain.pages.process(file_doc("strip.png", strip));
            results.push_back("pages: accepted");
        } catch (const std::exception& e) {
            results.push_back(std::string("pages: ") + e.what());
        }
        // Past a decoder that lets it through, clean-up refuses to scale it up.
        auto lenient = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "max_aspect_ratio: 0");
        auto decoded = lenient.process(file_doc("strip.png", strip));
        auto clean = NodeRunner::from_plugin(kImaging, "transform.preprocess", "{device: cpu, max_aspect_ratio: 0}");
        try {
            clean.process(*decoded.at(0).doc);
            results.push_back("clean: accepted");
        } catch (const std::exception& e) {
            results.push_back(std::string("clean: ") + e.what());
        }
        return results;
    });
    ASSERT_TRUE(m.failure.empty()) << m.failure;
    ASSERT_EQ(m.results.size(), 2u);
    EXPECT_THAT(m.results[0], HasSubstr("pages: strip.png: page 1 is 1x1500 pixels, an aspect ratio of 1:1500"));
    EXPECT_THAT(m.results[1], HasSubstr("clean: strip.png: page 1: 1x1500 pixels would be scaled to 1000x1500000"));
    EXPECT_LT(m.seconds, kMaxSeconds);
    EXPECT_LT(m.peak_growth_mb, kMaxGrowthMb);
    std::cout << fmt::format("1x1500 PNG: {:.2f} s, peak RSS +{} MB\n", m.seconds, m.peak_growth_mb);
}

TEST(PixelBudgetMeasured, HugeStripAndHugeHeaderFinishInSecondsWithBoundedMemory) {
    const Measured m = measure_in_child([] {
        Chain chain;
        std::vector<std::string> results;
        const std::pair<std::string, std::string> files[] = {{"strip90000.png", white_png(1, 90000)},
                                                             {"huge.png", claimed_png(100000, 100000)}};
        for (const auto& [name, bytes] : files) {
            auto r = chain.run(file_doc(name, bytes));
            results.insert(results.end(), r.begin(), r.end());
        }
        return results;
    });
    ASSERT_TRUE(m.failure.empty()) << m.failure;
    ASSERT_EQ(m.results.size(), 2u);
    EXPECT_THAT(m.results[0], HasSubstr("pages: strip90000.png: page 1 is 1x90000 pixels, an aspect ratio of 1:90000"));
    EXPECT_THAT(m.results[1], HasSubstr("pages: huge.png: page 1 is 100000x100000 pixels (10000.0 megapixels), above the limit of "
                                        "100 megapixels (max_megapixels)"));
    EXPECT_LT(m.seconds, kMaxSeconds);
    EXPECT_LT(m.peak_growth_mb, kMaxGrowthMb);
    std::cout << fmt::format("1x90000 PNG + 100000x100000 header: {:.2f} s, peak RSS +{} MB\n", m.seconds, m.peak_growth_mb);
}

TEST(PixelBudgetMeasured, EmailWithTwentyStripsFinishesInSecondsWithBoundedMemory) {
    const Measured m = measure_in_child([] {
        Chain chain;
        return chain.run(email_with(twenty_strips()));
    });
    ASSERT_TRUE(m.failure.empty()) << m.failure;
    ASSERT_EQ(m.results.size(), 20u);
    for (std::size_t i = 0; i < m.results.size(); ++i)
        EXPECT_EQ(m.results[i], fmt::format("pages: strip{}.png: page 1 is 1x1500 pixels, an aspect ratio of 1:1500, beyond the limit "
                                            "of 1:25 (max_aspect_ratio); not a receipt page; not decoded",
                                            i + 1));
    EXPECT_LT(m.seconds, kMaxSeconds);
    EXPECT_LT(m.peak_growth_mb, kMaxGrowthMb);
    std::cout << fmt::format("email with 20 strips: {:.2f} s, peak RSS +{} MB\n", m.seconds, m.peak_growth_mb);
}
