// HEIC photos (heif_decode.cpp): an iPhone's photo as taken reaches the OCR instead of the
// dead letters. The HEIC files are made here with libheif's own HEVC encoder (x265), from the
// test receipt, so the decoded page can be compared with the pixels that went in.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <libheif/heif.h>

#include <algorithm>

#include "decode.hpp"
#include "imaging_test_support.hpp"
#include "docpipe/testing.hpp"
#include "harness.hpp"

using namespace docpipe;
using namespace docpipe::testing;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {
using imaging::test_support::kPlugin;
using imaging::test_support::kReceipt;
using imaging::test_support::mean_difference;

// The test receipt, a quarter of its size, as RGB.
Image small_receipt() {
    test::TempDir dir;
    const fs::path file = dir.path() / "small.png";
    EXPECT_EQ(std::system(("convert " + kReceipt.string() + " -resize 25% PNG24:" + file.string()).c_str()), 0);
    const Part part{"small.png", "image/png", std::make_shared<const Bytes>(test::read_bytes(file))};
    Image rgb = imaging::decode_image(part, imaging::DecodeLimits{}).at(0).image;
    EXPECT_EQ(rgb.channels, 3) << "PNG24 is RGB";
    return rgb;
}

heif_error append_to(heif_context*, const void* data, size_t size, void* out) {
    auto* bytes = static_cast<Bytes*>(out);
    bytes->insert(bytes->end(), static_cast<const std::uint8_t*>(data), static_cast<const std::uint8_t*>(data) + size);
    return {heif_error_Ok, heif_suberror_Unspecified, "ok"};
}

// `rgb` as a HEIC file (HEVC, quality 90). With `clear_band`, an alpha channel that makes
// rows 10-29 fully transparent.
Bytes encode_heic(const Image& rgb, bool clear_band) {
    Bytes out;
    heif_context* context = heif_context_alloc();
    heif_encoder* encoder = nullptr;
    EXPECT_EQ(heif_context_get_encoder_for_format(context, heif_compression_HEVC, &encoder).code, heif_error_Ok)
        << "libheif's HEVC encoder (x265; scripts/install-deps.sh installs libheif-dev, whose libheif1 has it)";
    heif_encoder_set_lossy_quality(encoder, 90);
    heif_image* image = nullptr;
    heif_image_create(rgb.width, rgb.height, heif_colorspace_RGB, clear_band ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, &image);
    heif_image_add_plane(image, heif_channel_interleaved, rgb.width, rgb.height, 8);
    int stride = 0;
    std::uint8_t* plane = heif_image_get_plane(image, heif_channel_interleaved, &stride);
    const int channels = clear_band ? 4 : 3;
    for (int y = 0; y < rgb.height; ++y)
        for (int x = 0; x < rgb.width; ++x) {
            std::uint8_t* p = plane + static_cast<std::ptrdiff_t>(y) * stride + x * channels;
            const std::uint8_t* s = rgb.pixels->data() + (static_cast<std::size_t>(y) * rgb.width + x) * 3;
            std::copy_n(s, 3, p);
            if (clear_band) p[3] = y >= 10 && y < 30 ? 0 : 255;
        }
    heif_image_handle* handle = nullptr;
    EXPECT_EQ(heif_context_encode_image(context, image, encoder, nullptr, &handle).code, heif_error_Ok);
    heif_writer writer{1, &append_to};
    EXPECT_EQ(heif_context_write(context, &writer, &out).code, heif_error_Ok);
    heif_image_handle_release(handle);
    heif_image_release(image);
    heif_encoder_release(encoder);
    heif_context_free(context);
    return out;
}

}  // namespace

TEST(HeifDecode, AnIphonesHeicPhotoIsReadAsTheImageThatWentIn) {
    EXPECT_EQ(media_type_for("IMG_0001.HEIC"), "image/heic");
    const Image receipt = small_receipt();
    ASSERT_EQ(receipt.channels, 3);
    const Bytes heic = encode_heic(receipt, false);
    ASSERT_GT(heic.size(), 100u);
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    ::testing::internal::CaptureStderr();
    auto out = runner.process(Document::from_bytes("IMG_0001.HEIC", media_type_for("IMG_0001.HEIC"), heic));
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    const Image& page = out.at(0).doc->pages.at(0).image;
    ASSERT_EQ(page.width, receipt.width);
    ASSERT_EQ(page.height, receipt.height);
    ASSERT_EQ(page.channels, 3);
    EXPECT_LT(mean_difference(page, receipt), 4.0) << "lossy at quality 90, but the same picture";
}

// A file whose main brand is the generic 'mif1', with 'heic' among its compatible brands (as
// some tools write it), is a HEIC all the same.
TEST(HeifDecode, AGenericMainBrandWithHeicCompatibleIsRead) {
    const Image receipt = small_receipt();
    Bytes heic = encode_heic(receipt, false);
    ASSERT_EQ(std::string(heic.begin() + 4, heic.begin() + 12), "ftypheic");
    std::copy_n("mif1", 4, heic.begin() + 8);
    const Part part{"generic.heic", "image/heic", std::make_shared<const Bytes>(heic)};
    EXPECT_EQ(imaging::decode_image(part, imaging::DecodeLimits{}).at(0).image.width, receipt.width);
}

TEST(HeifDecode, TransparencyIsWhitePaper) {
    const Image receipt = small_receipt();
    const Part part{"clear.heic", "image/heic", std::make_shared<const Bytes>(encode_heic(receipt, true))};
    const Image page = imaging::decode_image(part, imaging::DecodeLimits{}).at(0).image;
    ASSERT_EQ(page.height, receipt.height);
    int darkest = 255;
    for (int y = 12; y < 28; ++y)
        for (int k = 0; k < page.width * 3; ++k) darkest = std::min<int>(darkest, (*page.pixels)[static_cast<std::size_t>(y) * page.width * 3 + k]);
    EXPECT_GE(darkest, 250) << "a transparent band is paper, not black";
}

TEST(HeifDecode, ABrokenHeicFailsWithLibheifsReason) {
    const Bytes heic = encode_heic(small_receipt(), false);
    auto error_of = [](const std::string& name, Bytes bytes) {
        try {
            imaging::decode_image(Part{name, "image/heic", std::make_shared<const Bytes>(std::move(bytes))}, imaging::DecodeLimits{});
        } catch (const BadInput& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    // Cut inside its boxes: libheif cannot read the file's structure.
    EXPECT_THAT(error_of("cut.heic", Bytes(heic.begin(), heic.begin() + 200)), HasSubstr("cut.heic: not a readable image (corrupt HEIF file: "));
    // Its coded data cut short: the structure is there, the picture is not.
    Bytes short_data = heic;
    short_data.resize(heic.size() * 2 / 3);
    EXPECT_THAT(error_of("short.heic", short_data), ::testing::MatchesRegex("short\\.heic: .*\\(libheif\\).*"));
    EXPECT_EQ(error_of("cut.heic", Bytes(heic.begin(), heic.begin() + 200)).find('\n'), std::string::npos) << "libheif's line break is not passed on";
    // A file that declares a small picture and codes a big one (the 'ispe' box says 64x64):
    // refused before the big one is decoded, not after (a hostile probe's 652-byte file
    // declaring 640x320 held a 30000x30000 canvas: 5 GB).
    // Every 'ispe' box (libheif writes one per item property set) set to the given size.
    const std::string marker = "ispe";
    auto with_ispe = [&](std::uint32_t width, std::uint32_t height) {
        Bytes b = heic;
        for (auto it = std::search(b.begin(), b.end(), marker.begin(), marker.end()); it != b.end();
             it = std::search(it + 4, b.end(), marker.begin(), marker.end())) {
            const auto at = static_cast<std::size_t>(it - b.begin()) + 8;  // after the box type and its version and flags
            for (int k = 0; k < 4; ++k) {
                b.at(at + static_cast<std::size_t>(k)) = static_cast<std::uint8_t>(width >> (24 - 8 * k));
                b.at(at + 4 + static_cast<std::size_t>(k)) = static_cast<std::uint8_t>(height >> (24 - 8 * k));
            }
        }
        return b;
    };
    ASSERT_NE(std::search(heic.begin(), heic.end(), marker.begin(), marker.end()), heic.end());
    EXPECT_THAT(error_of("small.heic", with_ispe(64, 64)),
                ::testing::AllOf(HasSubstr("small.heic: corrupt HEIF image: "), HasSubstr("exceeds the maximum image size")));
    EXPECT_EQ(error_of("none.heic", with_ispe(0, 0)), "none.heic: not a readable image (a HEIF image without a width or height)");
    // Over the page limits, from the header alone.
    imaging::DecodeLimits tight;
    tight.max_megapixels = 0.01;
    try {
        imaging::decode_image(Part{"big.heic", "image/heic", std::make_shared<const Bytes>(heic)}, tight);
        ADD_FAILURE() << "decoded past max_megapixels";
    } catch (const BadInput& e) {
        EXPECT_THAT(e.what(), HasSubstr("above the limit of 0.01 megapixels (max_megapixels)"));
    }
}
