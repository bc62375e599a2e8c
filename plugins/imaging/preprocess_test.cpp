// transform.preprocess: the CPU reference steps on synthetic pages with known answers, and
// the component as a pipeline uses it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "docpipe/testing.hpp"
#include "harness.hpp"
#include "preprocess_cpu.hpp"
#include "preprocess_cuda.hpp"
#include <cmath>
#include <random>
#include <string>

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
// `receipt_lines` > 0 draws that many lines on a receipt-shaped page (narrow and long)
// instead, centred and each different, as a receipt's are: lines that all start at one margin
// with the same words line their letters up into columns, which no receipt does.
Image rendered_page(const test::TempDir& dir, double rotate, int receipt_lines = 0) {
    std::string draw;
    int y = 80;
    if (receipt_lines == 0) {
        for (const char* line : kLines) {
            draw += fmt::format(" -annotate +60+{} '{}'", y, line);
            y += 70;
        }
    } else {
        draw = " -gravity north";
        for (int i = 0; i < receipt_lines; ++i) {
            const std::string words = kLines[i % std::size(kLines)];
            // Each line a different cut of the words, so no two lines are the same length.
            const std::string line = words.substr(static_cast<std::size_t>(i * 7) % 5, 8 + static_cast<std::size_t>(i * 5) % (words.size() - 8));
            draw += fmt::format(" -annotate +{}+{} '{}'", (i * 37) % 120 - 60, y - 30, line);
            y += 70;
        }
    }
    const fs::path png = dir.path() / fmt::format("page{}-{}.png", rotate, receipt_lines);
    const std::string size = receipt_lines > 0 ? fmt::format("900x{}", y) : "1200x450";
    const std::string cmd = fmt::format("convert -size {} xc:white -fill black -pointsize 40{} -background white -rotate {} {}", size,
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

// A phone photo taken sideways reaches the clean-up with its text lines running down the page
// (the OCR turns it upright later). Its skew is the same rotation as upright, and it is found
// from the lines, not from the character columns across them: an upright-only search found 8.5
// degrees on a dev receipt turned a quarter, whose upright skew is 0, and the OCR then read the
// turned page tilted by that.
TEST_P(Deskew, APageLyingSidewaysGetsTheSkewItHasUpright) {
    test::TempDir dir;
    const double clockwise = GetParam();
    const Image page = rendered_page(dir, clockwise, 30);
    // A quarter turn of a gray image, clockwise or counter-clockwise.
    const auto quarter_turn = [](const Image& img, bool clockwise_turn) {
        Image out = img;
        out.width = img.height;
        out.height = img.width;
        auto px = std::make_shared<std::vector<std::uint8_t>>(img.pixels->size());
        for (int y = 0; y < img.height; ++y)
            for (int x = 0; x < img.width; ++x) {
                const int nx = clockwise_turn ? img.height - 1 - y : y, ny = clockwise_turn ? x : img.width - 1 - x;
                (*px)[static_cast<std::size_t>(ny) * out.width + nx] = at(img, x, y);
            }
        out.pixels = std::move(px);
        return out;
    };
    EXPECT_NEAR(estimate_skew(page, 15), -clockwise, 0.5) << "upright";
    for (bool clockwise_turn : {true, false}) {
        const Image sideways = quarter_turn(page, clockwise_turn);
        const double skew = estimate_skew(sideways, 15);
        EXPECT_NEAR(skew, -clockwise, 0.5) << (clockwise_turn ? "turned clockwise" : "turned counter-clockwise");
        EXPECT_NEAR(estimate_skew(rotate_gray(sideways, -skew), 15), 0.0, 0.5) << "the sideways page's lines run straight down after rotating by the estimate";
    }
}

// One line of text has no gaps across it and a gap between every letter or word down it, as
// many as a page lying sideways has between its lines: the letters are not lines, though (each
// is shorter than three of its spacings), so the line is levelled as it lies.
TEST_P(Deskew, ASingleLineIsLevelledAcrossNotFromItsLetters) {
    test::TempDir dir;
    const double clockwise = GetParam();
    const fs::path png = dir.path() / "line.png";
    const std::string cmd = fmt::format(
        "convert -size 1400x180 xc:white -fill black -pointsize 40 -annotate +40+110 'KLINIK MEDIVIRON SDN BHD INV-2024-001234 "
        "TOTAL RM 479.05' -background white -rotate {} {}",
        clockwise, png.string());
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    auto decoder = NodeRunner::from_plugin(kImaging, "transform.pdf_pages", "");
    const Image line = to_gray(decoder.process(Document::from_bytes("line.png", "image/png", read_bytes(png))).at(0).doc->pages.at(0).image);
    EXPECT_NEAR(estimate_skew(line, 15), -clockwise, 0.5);
}

// The search's widest range (max_skew_degrees 45) on a page of lines at 45 degrees reaching
// its corners: the fine search once went on to 45.5 degrees, and its shear wrote past the
// profile's end (ASan: heap overflow; with _GLIBCXX_ASSERTIONS, an out-of-range index).
TEST(PreprocessCpu, TheWidestSkewSearchStaysInsideItsProfile) {
    Image page;
    page.width = page.height = 600;
    page.channels = 1;
    auto px = std::make_shared<std::vector<std::uint8_t>>(600 * 600, 255);
    for (int y = 0; y < 600; ++y)
        for (int x = 0; x < 600; ++x)
            if ((x + y + 2) % 20 < 2) (*px)[static_cast<std::size_t>(y) * 600 + x] = 0;  // rising to the right, into the corner
    page.pixels = std::move(px);
    const double skew = estimate_skew(page, 45);
    EXPECT_GE(skew, 44.5);
    EXPECT_LE(skew, 45.0) << "not past the limit asked for";
}

INSTANTIATE_TEST_SUITE_P(Angles, Deskew, ::testing::Values(7.0, -3.0, 12.0, 0.0), [](const auto& info) {
    const long degrees = std::lround(info.param);
    return (degrees < 0 ? "minus" + std::to_string(-degrees) : std::to_string(degrees)) + "deg";
});

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

TEST(PreprocessComponent, DeviceIsReportedAndCudaRefusedWithTheReasonWhenUnusable) {
    auto node = NodeRunner::from_plugin(kImaging, "transform.preprocess", "device: auto");
    const CudaStatus& cuda = cuda_status();
    if (cuda.usable) {
        EXPECT_THAT(node.component().health().detail, HasSubstr("device cuda: " + cuda.name));
        return;
    }
    // No GPU here: auto falls back and says why; cuda refuses to start with the same reason.
    EXPECT_THAT(node.component().health().detail, HasSubstr("device cpu (auto: " + cuda.reason));
    auto cpu = NodeRunner::from_plugin(kImaging, "transform.preprocess", "device: cpu");
    EXPECT_THAT(cpu.component().health().detail, HasSubstr("device cpu (configured)"));
    try {
        NodeRunner::from_plugin(kImaging, "transform.preprocess", "device: cuda");
        FAIL() << "device: cuda started without a usable GPU";
    } catch (const std::exception& e) {
        EXPECT_THAT(e.what(), HasSubstr("device: cuda requested, but " + cuda.reason));
    }
}

// ---- the extra clean-up steps ------------------------------------------------------------
Image gray_image(int w, int h, std::vector<std::uint8_t> px) {
    Image img;
    img.width = w;
    img.height = h;
    img.channels = 1;
    img.pixels = std::make_shared<std::vector<std::uint8_t>>(std::move(px));
    return img;
}

TEST(PreprocessCpu, ThickenJoinsBrokenDotsAndKeepsPaperWhite) {
    // A dot-matrix stroke: dark dots two pixels apart along a row, on white.
    std::vector<std::uint8_t> px(20 * 9, 255);
    for (int x = 2; x < 18; x += 2) px[4 * 20 + x] = 40;
    Image out = thicken_min3(gray_image(20, 9, px));
    for (int x = 1; x < 18; ++x) EXPECT_EQ(at(out, x, 4), 40) << "gap at x=" << x;  // the dots became one stroke
    EXPECT_EQ(at(out, 5, 3), 40);                                                    // one pixel thicker
    EXPECT_EQ(at(out, 5, 1), 255);                                                   // and no more
    EXPECT_EQ(at(out, 19, 8), 255);
    // In the recipe it runs after deskew; off by default.
    Recipe r;
    EXPECT_FALSE(r.thicken);
}

TEST(PreprocessCpu, MedianRemovesSpeckleAndKeepsStrokes) {
    std::vector<std::uint8_t> px(20 * 20, 255);
    px[5 * 20 + 5] = 0;                                      // a lone dark speck
    for (int y = 0; y < 20; ++y) px[y * 20 + 12] = px[y * 20 + 13] = px[y * 20 + 14] = 0;  // a 3 px stroke
    Image out = denoise_median3(gray_image(20, 20, px));
    EXPECT_EQ(at(out, 5, 5), 255);
    EXPECT_EQ(at(out, 13, 10), 0);
    EXPECT_EQ(at(out, 12, 10), 0);
}

TEST(PreprocessCpu, ContrastStretchMakesFaintPrintDark) {
    // Faint thermal print: text at 150 on paper at 210.
    std::vector<std::uint8_t> px(100 * 100, 210);
    for (int i = 0; i < 2000; ++i) px[i * 3 % px.size()] = 150;
    Image faint = gray_image(100, 100, px);
    const auto [low, high] = contrast_limits(gray_histogram(faint), 0.01, 0.01);
    EXPECT_EQ(low, 150);
    EXPECT_EQ(high, 210);
    Image out = stretch_contrast(faint, low, high);
    EXPECT_EQ(at(out, 0, 0), 0);       // the text is black now
    EXPECT_EQ(at(out, 1, 0), 255);     // the paper white
    // A flat page (range under 16 levels) is left alone.
    EXPECT_EQ(contrast_limits(gray_histogram(gray_image(4, 1, {100, 101, 102, 103})), 0.01, 0.01), std::make_pair(0, 255));
}

TEST(PreprocessCpu, DarkScanBordersArePaintedWhite) {
    // A white page with text inside a 10 px black frame on the left and top.
    const int w = 200, h = 100;
    std::vector<std::uint8_t> px(w * h, 255);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            if (x < 10 || y < 10) px[y * w + x] = 0;
    for (int x = 50; x < 150; ++x) px[50 * w + x] = 0;  // a text line: must stay
    Borders b;
    Image out = remove_border(gray_image(w, h, px), &b);
    EXPECT_EQ(b.left, 10);
    EXPECT_EQ(b.top, 10);
    EXPECT_EQ(b.right, 0);
    EXPECT_EQ(b.bottom, 0);
    EXPECT_EQ(at(out, 5, 50), 255);
    EXPECT_EQ(at(out, 100, 5), 255);
    EXPECT_EQ(at(out, 100, 50), 0);
}

TEST(PreprocessCpu, RecipeRunsTheEnabledStepsInOrder) {
    Recipe r;
    r.min_width = 0;
    r.max_width = 100;
    r.deskew = false;
    r.binarize = "otsu";
    std::vector<std::uint8_t> px(400 * 50, 200);
    for (int x = 0; x < 400; ++x) px[25 * 400 + x] = 20;
    double skew = -1;
    Image out = run_recipe_cpu(gray_image(400, 50, px), r, &skew);
    EXPECT_EQ(out.width, 100);  // scaled down to max_width, aspect kept
    EXPECT_EQ(out.height, 13);
    EXPECT_EQ(skew, 0);
    for (auto v : *out.pixels) EXPECT_TRUE(v == 0 || v == 255);  // binarised
}

// ---- CUDA against the CPU reference ------------------------------------------------------
// The same input through both paths: binary output identical, gray within 1 (bilinear
// rounding). Without a GPU these skip and say why; scripts/gpu-check.sh runs them on one.
class CudaMatchesCpu : public ::testing::Test {
protected:
    void SetUp() override {
        if (!cuda_status().usable) GTEST_SKIP() << "no usable CUDA device: " << cuda_status().reason;
    }
    // A noisy, unevenly lit page with text: the hard case for every step.
    static Image page() {
        test::TempDir dir;
        Image img = rendered_page(dir, 3.0);
        auto px = std::make_shared<std::vector<std::uint8_t>>(*img.pixels);
        std::mt19937 rng(7);
        std::uniform_int_distribution<int> noise(-25, 25);
        for (int y = 0; y < img.height; ++y)
            for (int x = 0; x < img.width; ++x) {
                auto& v = (*px)[static_cast<std::size_t>(y) * img.width + x];
                const int lit = v - 60 * x / img.width + noise(rng);  // darker to the right
                v = static_cast<std::uint8_t>(std::clamp(lit, 0, 255));
            }
        img.pixels = px;
        return img;
    }
    static int max_difference(const Image& a, const Image& b) {
        EXPECT_EQ(a.width, b.width);
        EXPECT_EQ(a.height, b.height);
        if (a.width != b.width || a.height != b.height) return 256;
        int worst = 0;
        for (std::size_t i = 0; i < a.pixels->size(); ++i) worst = std::max(worst, std::abs((*a.pixels)[i] - (*b.pixels)[i]));
        return worst;
    }
};

TEST_F(CudaMatchesCpu, Grayscale) {
    Image rgb;
    rgb.width = 64;
    rgb.height = 32;
    rgb.channels = 3;
    auto px = std::make_shared<std::vector<std::uint8_t>>(64 * 32 * 3);
    for (std::size_t i = 0; i < px->size(); ++i) (*px)[i] = static_cast<std::uint8_t>(i * 37 % 256);
    rgb.pixels = px;
    EXPECT_EQ(max_difference(cuda_to_gray(rgb), to_gray(rgb)), 0);
}

TEST_F(CudaMatchesCpu, ResizeUpAndDown) {
    Image p = page();
    EXPECT_LE(max_difference(cuda_resize(p, p.width / 2, p.height / 2), resize_gray(p, p.width / 2, p.height / 2)), 1);
    EXPECT_LE(max_difference(cuda_resize(p, p.width * 3 / 2, p.height * 3 / 2), resize_gray(p, p.width * 3 / 2, p.height * 3 / 2)), 1);
}

TEST_F(CudaMatchesCpu, Rotate) {
    Image p = page();
    EXPECT_LE(max_difference(cuda_rotate(p, -3.0), rotate_gray(p, -3.0)), 1);
}

TEST_F(CudaMatchesCpu, SauvolaAndOtsuAreIdentical) {
    Image p = page();
    EXPECT_EQ(max_difference(cuda_binarize_sauvola(p, 25, 0.2), binarize_sauvola(p, 25, 0.2)), 0);
    EXPECT_EQ(max_difference(cuda_binarize_otsu(p), binarize_otsu(p)), 0);
}

TEST_F(CudaMatchesCpu, DenoiseContrastBorder) {
    Image p = page();
    EXPECT_EQ(max_difference(cuda_denoise_median3(p), denoise_median3(p)), 0);
    EXPECT_EQ(max_difference(cuda_thicken_min3(p), thicken_min3(p)), 0);
    EXPECT_EQ(max_difference(cuda_stretch_contrast(p, 40, 220), stretch_contrast(p, 40, 220)), 0);
    EXPECT_EQ(max_difference(cuda_remove_border(p), remove_border(p)), 0);
}

TEST_F(CudaMatchesCpu, WholeRecipeAndBuffersReusedAcrossPageSizes) {
    Recipe r;
    r.denoise = r.contrast = r.border = r.thicken = true;
    r.binarize = "sauvola";
    Image p = page();
    for (int width : {p.width, p.width / 2, p.width}) {  // grow, shrink, grow: buffers reused
        Recipe sized = r;
        sized.min_width = sized.max_width = width;
        double cpu_skew = 0, gpu_skew = 0;
        Image cpu = run_recipe_cpu(p, sized, &cpu_skew);
        Image gpu = cuda_run_recipe(p, sized, &gpu_skew);
        EXPECT_DOUBLE_EQ(cpu_skew, gpu_skew);
        // Bilinear rounding may differ by one level before the threshold; allow a few pixels.
        std::size_t differing = 0;
        for (std::size_t i = 0; i < cpu.pixels->size(); ++i) differing += (*cpu.pixels)[i] != (*gpu.pixels)[i];
        EXPECT_LE(differing, cpu.pixels->size() / 1000) << "width " << width;
    }
}

TEST(CudaPath, WithoutADeviceTheCallsThrowTheReason) {
    if (cuda_status().usable) GTEST_SKIP() << "a CUDA device is present";
    EXPECT_FALSE(cuda_status().reason.empty());
    try {
        cuda_to_gray(gray_image(1, 1, {0}));
        FAIL();
    } catch (const std::exception& e) {
        EXPECT_THAT(e.what(), HasSubstr(cuda_status().reason));
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

// ---- crop: a receipt on a big scanned page -----------------------------------------------
namespace {
// A white page with specks of dust everywhere and, if `receipt` is set, a block of "text"
// lines (dark bars) covering that rectangle.
Image scanned_page(int w, int h, std::optional<ContentBox> receipt, int channels = 1) {
    std::vector<std::uint8_t> px(static_cast<std::size_t>(w) * h * channels, 255);
    auto put = [&](int x, int y) {
        for (int c = 0; c < channels; ++c) px[(static_cast<std::size_t>(y) * w + x) * channels + c] = 20;
    };
    std::mt19937 rng(7);
    for (int i = 0; i < 400; ++i) put(static_cast<int>(rng() % w), static_cast<int>(rng() % h));  // dust: single pixels
    if (receipt)
        for (int y = receipt->y; y < receipt->y + receipt->height; y += 40)      // a line of print every 40 px
            for (int dy = 0; dy < 14; ++dy)
                for (int x = receipt->x; x < receipt->x + receipt->width; ++x)
                    if ((x / 9) % 4 != 3) put(x, y + dy);                        // words with gaps
    Image img;
    img.width = w;
    img.height = h;
    img.channels = channels;
    img.pixels = std::make_shared<std::vector<std::uint8_t>>(std::move(px));
    return img;
}
}  // namespace

TEST(PreprocessCpu, CropFindsTheReceiptOnABigScannedPage) {
    const ContentBox receipt{1400, 1500, 1600, 3000};  // a third of an A4 page's width
    for (int channels : {1, 3}) {
        auto box = find_content_box(scanned_page(4960, 7016, receipt, channels));
        ASSERT_TRUE(box) << channels << " channel(s)";
        // The box holds the whole receipt, with a small margin and no more.
        EXPECT_LE(box->x, receipt.x);
        EXPECT_LE(box->y, receipt.y);
        EXPECT_GE(box->x + box->width, receipt.x + receipt.width);
        EXPECT_GE(box->y + box->height, receipt.y + receipt.height);
        EXPECT_LT(box->width, receipt.width + 300);
        EXPECT_LT(box->height, receipt.height + 400);
    }
    // With crop on, the recipe starts from the crop at the scale the whole page would have
    // had (4960 -> 2500 px: about half); off (the default), the whole page is scaled.
    Recipe r;
    r.deskew = false;
    EXPECT_FALSE(r.crop);
    EXPECT_EQ(run_recipe_cpu(scanned_page(4960, 7016, receipt), r).width, 2500);
    r.crop = true;
    const Image out = run_recipe_cpu(scanned_page(4960, 7016, receipt), r);
    EXPECT_GE(out.width, receipt.width / 2);
    EXPECT_LE(out.width, (receipt.width + 300) / 2);
}

TEST(PreprocessCpu, CropLeavesAPageThatIsAllReceipt) {
    // The usual scan: print from edge to edge (nothing to cut), a blank page, dust only.
    EXPECT_FALSE(find_content_box(scanned_page(900, 2000, ContentBox{40, 40, 820, 1900})));
    EXPECT_FALSE(find_content_box(scanned_page(900, 2000, std::nullopt)));
    // crop_image keeps the channels and the pixels.
    const Image page = scanned_page(300, 200, ContentBox{100, 50, 120, 100}, 3);
    const Image part = crop_image(page, ContentBox{100, 50, 120, 100});
    EXPECT_EQ(part.channels, 3);
    EXPECT_EQ(part.width, 120);
    EXPECT_EQ((*part.pixels)[0], (*page.pixels)[(50 * 300 + 100) * 3]);
    EXPECT_THROW(crop_image(page, ContentBox{250, 0, 100, 10}), std::invalid_argument);
}

// The crop decision is shared host code, so the CUDA path cuts the same box at the same scale.
TEST_F(CudaMatchesCpu, CropCutsTheSameBoxAtTheSameScale) {
    Recipe r;
    r.crop = true;
    r.deskew = false;
    const Image page = scanned_page(4960, 7016, ContentBox{1400, 1500, 1600, 3000});
    const Image cpu = run_recipe_cpu(page, r);
    const Image gpu = cuda_run_recipe(page, r);
    ASSERT_EQ(cpu.width, gpu.width);
    ASSERT_EQ(cpu.height, gpu.height);
    EXPECT_LE(max_difference(cpu, gpu), 1);
}

// The size limits are checked by the same shared host code (plan_recipe through
// recipe_input) before anything is uploaded: the CUDA path refuses what the CPU path does,
// with the same reason, and a page within them still matches.
TEST_F(CudaMatchesCpu, RefusesTheSameOversizedPagesBeforeUploading) {
    Image strip;
    strip.width = 1;
    strip.height = 1500;
    strip.channels = 1;
    strip.pixels = std::make_shared<std::vector<std::uint8_t>>(1500, 255);
    Recipe r;
    r.max_aspect_ratio = 0;  // so the scaled size (1000x1500000) is what stops it
    std::string cpu_reason, gpu_reason;
    try {
        run_recipe_cpu(strip, r);
    } catch (const BadInput& e) {
        cpu_reason = e.what();
    }
    try {
        cuda_run_recipe(strip, r);
    } catch (const BadInput& e) {
        gpu_reason = e.what();
    }
    EXPECT_THAT(cpu_reason, HasSubstr("would be scaled to 1000x1500000"));
    EXPECT_EQ(gpu_reason, cpu_reason);
}
