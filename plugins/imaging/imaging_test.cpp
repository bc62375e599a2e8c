// transform.pdf_pages through the SDK testing kit against the built plugin: real images and
// PDFs decode; broken and hostile files fail with a clear reason (BadInput), never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "docpipe/registry.hpp"
#include "docpipe/testing.hpp"
#include "harness.hpp"

using namespace docpipe;
using namespace docpipe::testing;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {
const fs::path kPlugin = fs::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-imaging.so";
const fs::path kReceipt = fs::path(DOCPIPE_SOURCE_DIR) / "tests/data/malaysian_receipt_test.jpg";

using test::read_bytes;

Document doc_of(const std::string& name, Bytes bytes) { return Document::from_bytes(name, media_type_for(name), std::move(bytes)); }

std::string error_of(NodeRunner& runner, Document doc) {
    try {
        runner.process(std::move(doc));
    } catch (const BadInput& e) {
        return e.what();
    }
    return "(no error)";
}

// A PDF written by hand: `pages` empty pages, optionally one line of text on each, and an
// optional /Encrypt dictionary whose password is not empty.
std::string make_pdf(int pages, bool with_text, bool encrypted) {
    std::vector<std::string> objects;
    objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
    std::string kids;
    for (int i = 0; i < pages; ++i) kids += std::to_string(4 + 2 * i) + " 0 R ";
    objects.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(pages) + " >>");
    objects.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    for (int i = 0; i < pages; ++i) {
        objects.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Resources << /Font << /F1 3 0 R >> >> /Contents " +
                          std::to_string(5 + 2 * i) + " 0 R >>");
        std::string content = with_text ? "BT /F1 12 Tf 10 50 Td (TOTAL RM 479.05) Tj ET" : "";
        objects.push_back("<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream");
    }
    std::string out = "%PDF-1.4\n";
    std::vector<std::size_t> offsets;
    for (std::size_t i = 0; i < objects.size(); ++i) {
        offsets.push_back(out.size());
        out += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
    }
    std::string encrypt;
    if (encrypted) {
        offsets.push_back(out.size());
        const std::string h32(64, 'A');  // O and U that no empty password matches
        out += std::to_string(objects.size() + 1) + " 0 obj\n<< /Filter /Standard /V 1 /R 2 /O <" + h32 + "> /U <" + h32 +
               "> /P -44 >>\nendobj\n";
        encrypt = " /Encrypt " + std::to_string(objects.size() + 1) + " 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> "
                  "<0123456789ABCDEF0123456789ABCDEF>]";
    }
    const std::size_t xref = out.size();
    out += "xref\n0 " + std::to_string(offsets.size() + 1) + "\n0000000000 65535 f \n";
    for (auto o : offsets) {
        char line[32];
        std::snprintf(line, sizeof line, "%010zu 00000 n \n", o);
        out += line;
    }
    out += "trailer\n<< /Size " + std::to_string(offsets.size() + 1) + " /Root 1 0 R" + encrypt + " >>\nstartxref\n" +
           std::to_string(xref) + "\n%%EOF\n";
    return out;
}

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

}  // namespace

TEST(PdfPages, DecodesTheRealReceipt) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "");
    auto out = runner.process(doc_of("receipt.jpg", read_bytes(kReceipt)));
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].doc->pages.size(), 1u);
    const Image& img = out[0].doc->pages[0].image;
    EXPECT_EQ(img.width, 1240);
    EXPECT_EQ(img.height, 1748);
    ASSERT_TRUE(img.pixels);
    EXPECT_EQ(img.pixels->size(), static_cast<std::size_t>(img.width) * img.height * img.channels);
}

TEST(PdfPages, MultiPageTiffGivesEveryPage) {
    test::TempDir dir;
    const auto tif = dir.path() / "multi.tif";
    const std::string cmd = "convert -size 120x60 xc:white -size 80x40 xc:gray " + tif.string() + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "ImageMagick (installed by scripts/install-deps.sh) builds the fixture";
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "");
    auto out = runner.process(doc_of("scan.tif", read_bytes(tif)));
    ASSERT_EQ(out[0].doc->pages.size(), 2u);
    EXPECT_EQ(out[0].doc->pages[0].image.width, 120);
    EXPECT_EQ(out[0].doc->pages[1].image.width, 80);
    EXPECT_EQ(out[0].doc->pages[1].index, 1);
}

TEST(PdfPages, PdfTextLayerIsKeptOrRendered) {
    auto use = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "text_layer: use");
    auto out = use.process(doc_of("invoice.pdf", bytes_of(make_pdf(2, true, false))));
    ASSERT_EQ(out[0].doc->pages.size(), 2u);
    EXPECT_THAT(out[0].doc->pages[0].text_layer, HasSubstr("TOTAL RM 479.05"));
    EXPECT_NE(out[0].doc->pages[0].text_layer.back(), '\f') << "poppler's page-end form feed is dropped";
    EXPECT_NE(out[0].doc->pages[0].text_layer.back(), '\n');
    EXPECT_FALSE(out[0].doc->pages[0].image.pixels) << "born-digital pages skip rendering";

    auto ocr = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "text_layer: ocr\ndpi: 144");
    auto rendered = ocr.process(doc_of("invoice.pdf", bytes_of(make_pdf(1, true, false))));
    const Image& img = rendered[0].doc->pages[0].image;
    EXPECT_EQ(img.width, 400) << "200 pt at 144 dpi";
    EXPECT_EQ(img.height, 200);
    EXPECT_TRUE(rendered[0].doc->pages[0].text_layer.empty());
}

TEST(PdfPages, LibraryMessagesGoToTheNodesLogNotToStderr) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    Bytes receipt = read_bytes(kReceipt);
    Bytes truncated(receipt.begin(), receipt.begin() + static_cast<std::ptrdiff_t>(receipt.size() / 3));
    ::testing::internal::CaptureStderr();
    (void)error_of(runner, doc_of("photo.jpg", truncated));
    const std::string err = ::testing::internal::GetCapturedStderr();
    // Leptonica's own lines ("Error in pixReadMemJpeg: ...") no longer reach stderr. libjpeg
    // still prints its warning ("Premature end of JPEG file") itself: Leptonica installs
    // libjpeg's default message handler, which no API lets us replace.
    EXPECT_EQ(err.find("Error in"), std::string::npos) << err;
    bool routed = false;
    for (const auto& line : runner.context().log_lines()) routed |= line.message.rfind("leptonica: ", 0) == 0;
    EXPECT_TRUE(routed) << "Leptonica's complaint about the truncated JPEG should be in the node's log";
}

TEST(PdfPages, BadInputGivesClearReasons) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "max_pages: 50");
    Bytes receipt = read_bytes(kReceipt);
    Bytes truncated(receipt.begin(), receipt.begin() + static_cast<std::ptrdiff_t>(receipt.size() / 3));
    EXPECT_THAT(error_of(runner, doc_of("photo.jpg", truncated)), HasSubstr("photo.jpg: truncated or corrupt JPEG"));
    EXPECT_EQ(error_of(runner, doc_of("empty.png", Bytes{})), "empty.png: empty file (0 bytes)");
    EXPECT_THAT(error_of(runner, doc_of("noise.png", bytes_of("not an image at all, just text"))),
                HasSubstr("noise.png: not a readable image"));

    // A real PNG header whose IHDR claims 40000x40000: rejected from the header alone.
    test::TempDir dir;
    ASSERT_EQ(std::system(("convert -size 4x4 xc:white " + (dir.path() / "t.png").string()).c_str()), 0);
    Bytes png = read_bytes(dir.path() / "t.png");
    for (int i : {16, 20}) {  // IHDR width, height (big-endian)
        png[static_cast<std::size_t>(i)] = 0;
        png[static_cast<std::size_t>(i) + 1] = 0;
        png[static_cast<std::size_t>(i) + 2] = 0x9C;
        png[static_cast<std::size_t>(i) + 3] = 0x40;
    }
    EXPECT_EQ(error_of(runner, doc_of("bomb.png", png)),
              "bomb.png: page 1 is 40000x40000 pixels (1600.0 megapixels), above the limit of 100 megapixels (max_megapixels); "
              "not decoded");

    EXPECT_EQ(error_of(runner, doc_of("receipt.pdf", bytes_of(make_pdf(1, true, true)))), "receipt.pdf: encrypted PDF, no password");
    EXPECT_EQ(error_of(runner, doc_of("book.pdf", bytes_of(make_pdf(500, false, false)))),
              "book.pdf: 500 pages, above the limit of 50 pages");
    std::string pdf = make_pdf(1, true, false);
    EXPECT_THAT(error_of(runner, doc_of("cut.pdf", bytes_of(pdf.substr(0, 40)))), HasSubstr("cut.pdf: "));
}

// `docpipe plugins describe` and docs/components.md said "the document goes to review", while
// a document over max_pages fails as bad input and is dead-lettered: an operator who read
// the description looked in the review queue for it. The description says what happens.
TEST(PdfPages, MaxPagesDescriptionSaysTheDocumentFailsAsBadInput) {
    Registry registry;
    ASSERT_TRUE(registry.load_file(kPlugin));
    const ComponentDescriptor* d = registry.find("transform.pdf_pages");
    ASSERT_NE(d, nullptr);
    const Field* field = d->config.find("max_pages");
    ASSERT_NE(field, nullptr);
    EXPECT_THAT(field->description(), HasSubstr("fails the document as bad input (dead-lettered"));
    EXPECT_EQ(field->description().find("review"), std::string::npos) << field->description();
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "max_pages: 2");
    EXPECT_EQ(error_of(runner, doc_of("three.pdf", bytes_of(make_pdf(3, false, false)))), "three.pdf: 3 pages, above the limit of 2 pages");
}

TEST(PdfPages, LimitsAreConfigurable) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "max_bytes: 1000\nmax_megapixels: 1");
    EXPECT_THAT(error_of(runner, doc_of("big.jpg", read_bytes(kReceipt))), HasSubstr("big.jpg: 169200 bytes, above the limit of 1000 bytes"));
}
