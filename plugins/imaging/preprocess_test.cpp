// transform.preprocess: the CPU reference steps on synthetic pages with known answers, and
// the component as a pipeline uses it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "docpipe/testing.hpp"
#include "harness.hpp"
#include "preprocess_cpu.hpp"

using namespace docpipe;
using namespace docpipe::imaging;
using docpipe::testing::NodeRunner;
using ::testing::HasSubstr;
using test::read_bytes;
namespace fs = std::filesystem;

namespace {
const fs::path kImaging = fs::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-imaging.so";
const fs::path kOcr = fs::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-tesseract.so";
const char* kLines[] = {"KLINIK MEDIVIRON SDN BHD", "Receipt No INV-2024-001234", "Consultation Fee RM 50.00",
                        "Blood Test Full Panel RM 180.00", "TOTAL RM 479.05"};

// A page of text rendered by ImageMagick (installed by scripts/install-deps.sh), optionally
// rotated clockwise by `rotate` degrees, decoded by transform.pdf_pages, as gray.
Image rendered_page(const test::TempDir& dir, double rotate) {
    std::string draw;
    int y = 80;
    for (const char* line : kLines) {
        draw += fmt::format(" -annotate +60+{} '{}'", y, line);
        y += 70;
    }
    const fs::path png = dir.path() / fmt::format("page{}.png", rotate);
    const std::string cmd = fmt::format("convert -size 1200x450 xc:white -fill black -pointsize 40{} -background white -rotate {} {}",
                                        draw, rotate, png.string());
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("convert failed: " + cmd);
    auto decoder = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "");
    auto out = decoder.process(Document::from_bytes(png.filename().string(), "image/png", read_bytes(png)));
    return to_gray(out.at(0).doc->pages.at(0).image);
}

std::string ocr_text(const Image& img) {
    auto ocr = NodeRunner::from_plugin(kOcr, "ocr.tesseract", "languages: eng");
    Document doc = Document::from_bytes("page", "image/png", Bytes{1});
    doc.pages.push_back(Page{0, img, {}, std::nullopt});
    return ocr.process(std::move(doc)).at(0).doc->pages.at(0).ocr->text;
}

std::uint8_t at(const Image& img, int x, int y) { return (*img.pixels)[static_cast<std::size_t>(y) * img.width + x]; }
}  // namespace

TEST(PreprocessCpu, GrayscaleUsesIntegerBt601Weights) {
    Image rgb;
    rgb.width = 3;
    rgb.height = 1;
    rgb.channels = 3;
    rgb.pixels = std::make_shared<std::vector<std::uint8_t>>(std::vector<std::uint8_t>{255, 0, 0, 0, 255, 0, 10, 20, 30});
    Image g = to_gray(rgb);
    EXPECT_EQ(g.channels, 1);
    EXPECT_EQ(at(g, 0, 0), 76);   // (299*255 + 500) / 1000
    EXPECT_EQ(at(g, 1, 0), 150);  // (587*255 + 500) / 1000
    EXPECT_EQ(at(g, 2, 0), 18);   // (2990 + 11740 + 3420 + 500) / 1000
}

TEST(PreprocessCpu, ResizeKeepsUniformAreasAndScalesDpi) {
    Image g;
    g.width = 40;
    g.height = 20;
    g.channels = 1;
    g.dpi = 600;
    g.pixels = std::make_shared<std::vector<std::uint8_t>>(800, 77);
    Image half = resize_gray(g, 20, 10);
    EXPECT_EQ(half.width, 20);
    EXPECT_EQ(half.height, 10);
    EXPECT_EQ(half.dpi, 300);
    for (auto v : *half.pixels) ASSERT_EQ(v, 77);
}

class Deskew : public ::testing::TestWithParam<double> {};

TEST_P(Deskew, RecoversTheAngleWithinHalfADegree) {
    test::TempDir dir;
    const double clockwise = GetParam();
    Image page = rendered_page(dir, clockwise);
    // Clockwise rotation makes lines fall to the right: a negative skew in our convention.
    const double skew = estimate_skew(page, 15);
    EXPECT_NEAR(skew, -clockwise, 0.5);
    Image level = rotate_gray(page, -skew);  // clockwise by the rise: level again
    EXPECT_NEAR(estimate_skew(level, 15), 0.0, 0.5) << "after rotating by the estimate the page is level";
}

INSTANTIATE_TEST_SUITE_P(Angles, Deskew, ::testing::Values(7.0, -3.0, 12.0, 0.0));

TEST(PreprocessCpu, SauvolaKeepsTextOnAGradientLitPageWhereOtsuLosesIt) {
    test::TempDir dir;
    const Image clean = rendered_page(dir, 0);
    // Light falls off to the left: the page goes from 25 % to 100 % brightness.
    Image lit = clean;
    auto pixels = std::make_shared<std::vector<std::uint8_t>>(*clean.pixels);
    for (int y = 0; y < clean.height; ++y)
        for (int x = 0; x < clean.width; ++x) {
            const double light = 0.25 + 0.75 * x / (clean.width - 1);
            auto& v = (*pixels)[static_cast<std::size_t>(y) * clean.width + x];
            v = static_cast<std::uint8_t>(std::lround(v * light));
        }
    lit.pixels = pixels;
    auto score = [&](const Image& bin) {  // share of paper kept white, share of ink kept black
        std::size_t paper = 0, paper_white = 0, ink = 0, ink_black = 0;
        for (int y = 0; y < clean.height; ++y)
            for (int x = 0; x < clean.width; ++x) {
                if (at(clean, x, y) > 230) paper++, paper_white += at(bin, x, y) == 255;
                if (at(clean, x, y) < 40) ink++, ink_black += at(bin, x, y) == 0;
            }
        return std::pair{static_cast<double>(paper_white) / paper, static_cast<double>(ink_black) / ink};
    };
    const auto [sauvola_paper, sauvola_ink] = score(binarize_sauvola(lit, 25, 0.2));
    const auto [otsu_paper, otsu_ink] = score(binarize_otsu(lit));
    EXPECT_GT(sauvola_paper, 0.98);
    EXPECT_GT(sauvola_ink, 0.85);
    EXPECT_LT(otsu_paper, 0.8) << "a global threshold blackens the dim side (why Sauvola exists)";
    const std::string text = ocr_text(binarize_sauvola(lit, 25, 0.2));
    EXPECT_THAT(text, HasSubstr("TOTAL RM 479.05"));
    EXPECT_THAT(text, HasSubstr("INV-2024-001234"));
}

TEST(PreprocessComponent, CpuDeviceIsReportedAndCudaRefusedWithTheReason) {
    auto cpu = NodeRunner::from_plugin(kImaging, "transform.preprocess", "device: auto");
    EXPECT_THAT(cpu.component().health().detail, HasSubstr("device cpu (auto: the CUDA kernels are not built"));
    try {
        NodeRunner::from_plugin(kImaging, "transform.preprocess", "device: cuda");
        FAIL();
    } catch (const std::exception& e) {
        EXPECT_THAT(e.what(), HasSubstr("device: cuda requested, but this build has no CUDA kernels"));
    }
}

TEST(PreprocessComponent, DeskewsARotatedReceiptPageBeforeOcr) {
    test::TempDir dir;
    const fs::path png = dir.path() / "tilted.png";
    ASSERT_EQ(std::system(("convert " + (fs::path(DOCPIPE_SOURCE_DIR) / "tests/data/malaysian_receipt_test.jpg").string() +
                           " -background white -rotate 5 " + png.string())
                              .c_str()),
              0);
    auto decoder = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "");
    auto clean = NodeRunner::from_plugin(kImaging, "transform.preprocess", "max_width: 1400");
    auto pages = decoder.process(Document::from_bytes("tilted.png", "image/png", read_bytes(png)));
    auto cleaned = clean.process(*pages.at(0).doc);
    const auto& doc = *cleaned.at(0).doc;
    EXPECT_EQ(doc.pages[0].image.channels, 1);
    EXPECT_LE(doc.pages[0].image.width, 1400);
    ASSERT_FALSE(doc.trace.empty());
    EXPECT_THAT(doc.trace.back().detail, HasSubstr("skew -5."));
    EXPECT_NEAR(estimate_skew(doc.pages[0].image, 15), 0.0, 0.5) << "the page leaves level";
    EXPECT_THAT(ocr_text(doc.pages[0].image), HasSubstr("479.05"));
}
