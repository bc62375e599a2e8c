// ocr.tesseract on real and rendered images, through the testing kit and the built plugins.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "docpipe/testing.hpp"
#include "harness.hpp"

using namespace docpipe;
using namespace docpipe::testing;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {
const fs::path kOcrPlugin = fs::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-tesseract.so";
const fs::path kImagingPlugin = fs::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-imaging.so";

using test::read_bytes;

// Decode with transform.pdf_pages, then OCR: the path a pipeline takes.
OcrResult ocr_file(const fs::path& file, const std::string& ocr_config = "languages: eng") {
    auto pages = NodeRunner::from_plugin(kImagingPlugin, "transform.pdf_pages", "");
    auto ocr = NodeRunner::from_plugin(kOcrPlugin, "ocr.tesseract", ocr_config);
    auto decoded = pages.process(Document::from_bytes(file.filename().string(), media_type_for(file.string()), read_bytes(file)));
    auto recognised = ocr.process(*decoded.at(0).doc);
    return *recognised.at(0).doc->pages.at(0).ocr;
}
}  // namespace

TEST(TesseractOcr, RealReceiptReadsTotalInvoiceAndDate) {
    OcrResult r = ocr_file(fs::path(DOCPIPE_SOURCE_DIR) / "tests/data/malaysian_receipt_test.jpg", "languages: eng+msa");
    EXPECT_THAT(r.text, HasSubstr("479.05"));
    EXPECT_THAT(r.text, HasSubstr("INV-2024-001234"));
    EXPECT_THAT(r.text, HasSubstr("24/12/2024"));
    EXPECT_GT(r.mean_confidence, 80);
    EXPECT_THAT(r.engine, HasSubstr("eng+msa"));
    // Words carry boxes, confidences and their line.
    auto total = std::find_if(r.words.begin(), r.words.end(), [](const OcrWord& w) { return w.text == "479.05"; });
    ASSERT_NE(total, r.words.end());
    EXPECT_GT(total->box.width, 0);
    EXPECT_GT(total->confidence, 50);
    ASSERT_GE(total->line, 0);
    EXPECT_THAT(r.lines.at(static_cast<std::size_t>(total->line)).text, HasSubstr("TOTAL"));
}

TEST(TesseractOcr, RenderedLineReadsExactly) {
    test::TempDir dir;
    const auto png = dir.path() / "line.png";
    const std::string cmd = "convert -size 600x120 xc:white -fill black -pointsize 36 -annotate +10+70 'TOTAL RM 12.50' " + png.string();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "ImageMagick (installed by scripts/install-deps.sh) renders the fixture";
    OcrResult r = ocr_file(png);
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_EQ(r.lines[0].text, "TOTAL RM 12.50");
    ASSERT_EQ(r.words.size(), 3u);
    EXPECT_EQ(r.words[2].text, "12.50");
}

TEST(TesseractOcr, MissingTraineddataNamesLanguageAndFolder) {
    try {
        NodeRunner::from_plugin(kOcrPlugin, "ocr.tesseract", "languages: eng+xyz");
        FAIL();
    } catch (const std::exception& e) {
        EXPECT_THAT(e.what(), HasSubstr("traineddata for language 'xyz' not found in /usr/share/tesseract-ocr/5/tessdata"));
    }
}

TEST(TesseractOcr, HealthSaysWhichEngine) {
    auto ocr = NodeRunner::from_plugin(kOcrPlugin, "ocr.tesseract", "languages: eng");
    auto h = ocr.component().health();
    EXPECT_EQ(h.status, Health::Healthy);
    EXPECT_THAT(h.detail, HasSubstr("tesseract 5"));
}
