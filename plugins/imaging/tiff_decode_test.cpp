// TIFF pages read with libtiff itself (tiff_decode.cpp): the same pixels Leptonica's reader
// gave for the TIFFs it could read, the pages it could not (16-bit with alpha), a fax's
// non-square pixels made square, the Orientation tag, and damaged strips kept or refused
// with libtiff's reason and the rows, nothing on stderr.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>

#include <leptonica/allheaders.h>
#include <tiffio.h>

#include "decode.hpp"
#include "imaging_test_support.hpp"
#include "docpipe/testing.hpp"
#include "harness.hpp"

using namespace docpipe;
using namespace docpipe::testing;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

using imaging::test_support::expect_leptonicas_pixels;

namespace {
using imaging::test_support::kPlugin;
using imaging::test_support::kReceipt;
using imaging::test_support::mean_difference;
using test::read_bytes;

// The receipt through ImageMagick into a TIFF, with `options` before the output name.
Bytes receipt_tiff(const test::TempDir& dir, const std::string& name, const std::string& options) {
    const fs::path file = dir.path() / name;
    const std::string cmd = "convert " + kReceipt.string() + " " + options + " " + file.string() + " 2>/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return read_bytes(file);
}

Image decode(const std::string& name, const Bytes& bytes, std::vector<std::string>* damage = nullptr) {
    const Part part{name, "image/tiff", std::make_shared<const Bytes>(bytes)};
    imaging::PartDecoder decoder(part, imaging::DecodeLimits{});
    const auto planned = decoder.plan().at(0);
    std::vector<Page> pages = decoder.decode();
    EXPECT_EQ(pages.at(0).image.width, planned.width) << "the page comes out the size its header was checked at";
    EXPECT_EQ(pages.at(0).image.height, planned.height);
    if (damage) *damage = decoder.damage();
    return pages.at(0).image;
}

std::string error_of(const std::string& name, const Bytes& bytes) {
    try {
        decode(name, bytes);
    } catch (const BadInput& e) {
        return e.what();
    }
    return "(no error)";
}

// A gray uncompressed TIFF written by hand: `rows_per_strip` rows to a strip, a dark band
// across rows 40-59, optionally a private tag libtiff does not know, and optionally an
// Orientation tag (entries in tag order), and strips whose data is said to lie past the end.
Bytes handmade_tiff(std::uint32_t width, std::uint32_t height, std::uint32_t rows_per_strip, bool unknown_tag, int orientation = -1,
                    const std::vector<std::uint32_t>& lost_strips = {}) {
    std::vector<std::uint8_t> pixels(static_cast<std::size_t>(width) * height, 255);
    for (std::uint32_t y = 40; y < 60 && y < height; ++y) std::fill_n(pixels.begin() + y * width, width, 0);
    const std::uint32_t strips = (height + rows_per_strip - 1) / rows_per_strip;
    struct Entry {
        std::uint16_t tag, type;
        std::uint32_t count, value;
    };
    std::vector<Entry> entries = {{256, 4, 1, width}, {257, 4, 1, height}, {258, 3, 1, 8}, {259, 3, 1, 1}, {262, 3, 1, 1},
                                  {273, 4, strips, 0}, {277, 3, 1, 1},     {278, 4, 1, rows_per_strip}, {279, 4, strips, 0}};
    if (orientation >= 0) entries.push_back({274, 3, 1, static_cast<std::uint32_t>(orientation)});
    if (unknown_tag) entries.push_back({65000, 3, 1, 7});
    const std::uint32_t ifd = 8, after_ifd = ifd + 2 + 12 * static_cast<std::uint32_t>(entries.size()) + 4;
    const std::uint32_t offsets_at = after_ifd, counts_at = offsets_at + 4 * strips, data_at = counts_at + 4 * strips;
    Bytes out = {'I', 'I', 42, 0};
    auto u16 = [&](std::uint32_t v) { out.insert(out.end(), {std::uint8_t(v), std::uint8_t(v >> 8)}); };
    auto u32 = [&](std::uint32_t v) { u16(v & 0xFFFF), u16(v >> 16); };
    u32(ifd);
    u16(static_cast<std::uint32_t>(entries.size()));
    for (const Entry& e : entries) {
        u16(e.tag), u16(e.type), u32(e.count);
        if (e.tag == 273) u32(strips == 1 ? data_at : offsets_at);
        else if (e.tag == 279) u32(strips == 1 ? width * height : counts_at);
        else if (e.type == 3) u16(e.value), u16(0);
        else u32(e.value);
    }
    u32(0);  // no next page
    for (std::uint32_t s = 0; s < strips; ++s)  // a lost strip's data is said to lie past the file's end
        u32(std::find(lost_strips.begin(), lost_strips.end(), s) != lost_strips.end() ? 0x7FFFFFF0u : data_at + s * rows_per_strip * width);
    for (std::uint32_t s = 0; s < strips; ++s) u32(std::min(rows_per_strip, height - s * rows_per_strip) * width);
    out.insert(out.end(), pixels.begin(), pixels.end());
    return out;
}
// A 16-bit gray TIFF with alpha written with libtiff: the gray of `plain` (8 bits, one
// channel) on the right half, opaque; the left half transparent, with black stored under it.
// `planar` and `tile` (0 for strips of 7 rows) choose the layout.
Bytes gray_alpha16_tiff(const test::TempDir& dir, const Image& plain, std::uint16_t planar, std::uint32_t tile) {
    const fs::path file = dir.path() / "gray-alpha16.tif";
    TIFF* tif = TIFFOpen(file.c_str(), "w");
    EXPECT_NE(tif, nullptr);
    if (!tif) return {};
    const auto width = static_cast<std::uint32_t>(plain.width), height = static_cast<std::uint32_t>(plain.height);
    const std::uint16_t extra[] = {EXTRASAMPLE_UNASSALPHA};
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 16);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 2);
    TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, extra);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, planar);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    auto gray = [&](std::uint32_t x, std::uint32_t y) {
        return x < width / 2 ? std::uint16_t{0} : static_cast<std::uint16_t>((*plain.pixels)[static_cast<std::size_t>(y) * width + x] * 257);
    };
    auto alpha = [&](std::uint32_t x, std::uint32_t) { return x < width / 2 ? std::uint16_t{0} : std::uint16_t{65535}; };
    // One piece (strip or tile) at x0, y0 of w x h pixels, for `sample` (-1: both, interleaved).
    auto piece = [&](std::uint32_t x0, std::uint32_t y0, std::uint32_t w, std::uint32_t h, int sample) {
        std::vector<std::uint16_t> out;
        for (std::uint32_t y = y0; y < y0 + h; ++y)
            for (std::uint32_t x = x0; x < x0 + w; ++x) {
                const bool inside = x < width && y < height;
                if (sample != 1) out.push_back(inside ? gray(x, y) : 0);
                if (sample != 0) out.push_back(inside ? alpha(x, y) : 0);
            }
        return out;
    };
    const bool separate = planar == PLANARCONFIG_SEPARATE;
    if (tile) {
        TIFFSetField(tif, TIFFTAG_TILEWIDTH, tile);
        TIFFSetField(tif, TIFFTAG_TILELENGTH, tile);
        for (std::uint32_t y = 0; y < height; y += tile)
            for (std::uint32_t x = 0; x < width; x += tile)
                for (int sample = separate ? 0 : -1; sample < (separate ? 2 : 0); ++sample) {
                    auto data = piece(x, y, tile, tile, sample);
                    EXPECT_GE(TIFFWriteTile(tif, data.data(), x, y, 0, static_cast<std::uint16_t>(std::max(sample, 0))), 0);
                }
    } else {
        const std::uint32_t rows = 7;
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rows);
        for (int sample = separate ? 0 : -1; sample < (separate ? 2 : 0); ++sample)
            for (std::uint32_t y = 0; y < height; y += rows) {
                auto data = piece(0, y, width, std::min(rows, height - y), sample);
                EXPECT_GE(TIFFWriteEncodedStrip(tif, TIFFComputeStrip(tif, y, static_cast<std::uint16_t>(std::max(sample, 0))), data.data(),
                                                static_cast<tmsize_t>(data.size() * 2)),
                          0);
            }
    }
    TIFFClose(tif);
    return read_bytes(file);
}

// Sets a tag's value held in its directory entry (SHORT or LONG, one value) in directory
// `page` of a little-endian TIFF, as ImageMagick writes them here: a damaged or unusual file
// made from a sound one.
void set_tag(Bytes& tiff, int page, std::uint16_t tag, std::uint32_t value) {
    auto u16 = [&](std::size_t at) { return static_cast<std::uint32_t>(tiff.at(at) | (tiff.at(at + 1) << 8)); };
    auto u32 = [&](std::size_t at) { return u16(at) | (u16(at + 2) << 16); };
    ASSERT_EQ(tiff.at(0), 'I') << "a little-endian TIFF";
    std::size_t ifd = u32(4);
    for (int k = 0; k < page; ++k) ifd = u32(ifd + 2 + 12 * u16(ifd));
    for (std::uint32_t e = 0; e < u16(ifd); ++e) {
        const std::size_t entry = ifd + 2 + 12 * e;
        if (u16(entry) != tag) continue;
        const bool is_short = u16(entry + 2) == 3;
        for (int b = 0; b < (is_short ? 2 : 4); ++b) tiff[entry + 8 + static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(value >> (8 * b));
        return;
    }
    FAIL() << "no tag " << tag << " in directory " << page;
}
}  // namespace

// For the TIFFs Leptonica could read, the pixels and the dpi are the ones it gave, so the OCR
// reads the same page as before.
TEST(TiffDecode, GivesLeptonicasPixelsAndDpi) {
    test::TempDir dir;
    const std::vector<std::pair<std::string, std::string>> variants = {
        {"rgb-lzw.tif", "-resize 20% -compress LZW -density 200 -units PixelsPerInch"},
        {"gray-zip.tif", "-resize 20% -colorspace Gray -compress Zip"},
        {"bilevel-g4.tif", "-resize 20% -colorspace Gray -threshold 50% -type Bilevel -compress Group4 -density 204x196"},
        {"palette.tif", "-resize 20% -colors 16 -type Palette"},
        {"graypalette.tif", "-resize 20% -colorspace Gray -colors 8 -type Palette"},
        {"strips.tif", "-resize 20% -colorspace Gray -define tiff:rows-per-strip=7 -compress RLE"},
        {"dpcm.tif", "-resize 20% -units PixelsPerCentimeter -density 118"},
    };
    for (const auto& [name, options] : variants) {
        SCOPED_TRACE(name);
        const Bytes bytes = receipt_tiff(dir, name, options);
        const Image img = decode(name, bytes);
        PIX* pix = pixReadMemTiff(bytes.data(), bytes.size(), 0);
        ASSERT_NE(pix, nullptr);
        expect_leptonicas_pixels(img, pix);
        pixDestroy(&pix);
    }
    // Colour, so that the RGB path is compared too (the receipt is nearly gray).
    for (const std::string& options : {std::string("-compress LZW"), std::string("-colors 16 -type Palette")}) {
        SCOPED_TRACE(options);
        const fs::path file = dir.path() / "colour.tif";
        ASSERT_EQ(std::system(("convert -size 160x120 plasma:red-blue " + options + " " + file.string()).c_str()), 0);
        const Bytes bytes = read_bytes(file);
        const Image img = decode("colour.tif", bytes);
        EXPECT_EQ(img.channels, 3);
        PIX* pix = pixReadMemTiff(bytes.data(), bytes.size(), 0);
        ASSERT_NE(pix, nullptr);
        expect_leptonicas_pixels(img, pix);
        pixDestroy(&pix);
    }
    // Leptonica could not read a tiled TIFF at all ("tiled format is not supported").
    const Image strips = decode("strips.tif", receipt_tiff(dir, "s.tif", "-resize 20% -compress LZW"));
    const Image tiles = decode("tiled.tif", receipt_tiff(dir, "t.tif", "-resize 20% -compress LZW -define tiff:tile-geometry=64x48"));
    ASSERT_EQ(tiles.width, strips.width);
    ASSERT_EQ(tiles.height, strips.height);
    EXPECT_EQ(mean_difference(tiles, strips), 0.0);
}

// Transparency is laid over white paper: a page half transparent comes out half as dark, in
// gray (libtiff gives gray as stored) and in colour (libtiff multiplies colour by alpha). A
// 16-bit colour page with alpha (which Leptonica failed, with no reason) is read, and so is a
// 16-bit gray one, whose alpha libtiff's reader drops (its transparent parts came out black).
TEST(TiffDecode, TransparencyIsLaidOverWhitePaper) {
    test::TempDir dir;
    const Image plain = decode("gray.tif", receipt_tiff(dir, "gray.tif", "-resize 20% -colorspace Gray"));
    const Image half = decode("half.tif", receipt_tiff(dir, "half.tif", "-resize 20% -colorspace Gray -alpha set -channel A -evaluate set 50% +channel"));
    ASSERT_EQ(half.channels, 1);
    ASSERT_EQ(half.pixels->size(), plain.pixels->size());
    double off = 0;  // from the plain page laid over white at alpha 128 of 255
    for (std::size_t k = 0; k < plain.pixels->size(); ++k) off += std::abs((*half.pixels)[k] - ((*plain.pixels)[k] * 128 + 255 * 127) / 255.0);
    EXPECT_LT(off / static_cast<double>(plain.pixels->size()), 1.5);

    const fs::path colour = dir.path() / "colour.tif";
    ASSERT_EQ(std::system(("convert -size 120x80 xc:white -fill '#c03010' -draw 'rectangle 10,10 60,40' -alpha set -channel A "
                           "-evaluate set 50% +channel -depth 16 " + colour.string()).c_str()), 0);
    const Image deep = decode("colour.tif", read_bytes(colour));
    ASSERT_EQ(deep.channels, 3);
    const std::uint8_t* red = deep.pixels->data() + (20 * 120 + 30) * 3;
    EXPECT_NEAR(red[0], (0xc0 + 255) / 2.0, 2);
    EXPECT_NEAR(red[1], (0x30 + 255) / 2.0, 2);
    EXPECT_NEAR(red[2], (0x10 + 255) / 2.0, 2);
    EXPECT_NEAR(deep.pixels->at(0), 255, 1) << "white stays white";

    // 16-bit gray with alpha, whose alpha libtiff's reader drops: read by docpipe itself, as
    // ImageMagick writes it (strips; tiles with LZW; associated alpha; MinIsWhite).
    auto off_from_half = [&](const Image& got, bool inverted) {
        EXPECT_EQ(got.channels, 1);
        if (got.pixels->size() != plain.pixels->size()) return 1e9;
        double sum = 0;
        for (std::size_t k = 0; k < plain.pixels->size(); ++k) {
            const double under = inverted ? 255 - (*plain.pixels)[k] : (*plain.pixels)[k];
            sum += std::abs((*got.pixels)[k] - (under * 128 + 255 * 127) / 255.0);
        }
        return sum / static_cast<double>(plain.pixels->size());
    };
    const std::string half16 = "-resize 20% -colorspace Gray -depth 16 -alpha set -channel A -evaluate set 50% +channel";
    EXPECT_LT(off_from_half(decode("deep.tif", receipt_tiff(dir, "deep.tif", half16)), false), 1.5);
    EXPECT_LT(off_from_half(decode("tiled.tif", receipt_tiff(dir, "tiled.tif", half16 + " -compress lzw -define tiff:tile-geometry=64x64")), false), 1.5);
    EXPECT_LT(off_from_half(decode("assoc.tif", receipt_tiff(dir, "assoc.tif", half16 + " -define tiff:alpha=associated")), false), 1.5);
    Bytes white_is_zero = receipt_tiff(dir, "white0.tif", half16);
    set_tag(white_is_zero, 0, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
    EXPECT_LT(off_from_half(decode("white0.tif", white_is_zero), true), 1.5);
    // Written with libtiff: samples in planes or side by side, in strips or tiles. What is
    // transparent (black under it) is white paper; what is opaque is the page's gray.
    for (const std::uint16_t planar : {PLANARCONFIG_CONTIG, PLANARCONFIG_SEPARATE})
        for (const std::uint32_t tile : {0u, 32u}) {
            const Image got = decode("planes.tif", gray_alpha16_tiff(dir, plain, planar, tile));
            ASSERT_EQ(got.pixels->size(), plain.pixels->size());
            std::size_t wrong = 0;
            for (int y = 0; y < plain.height; ++y)
                for (int x = 0; x < plain.width; ++x) {
                    const std::size_t k = static_cast<std::size_t>(y) * plain.width + x;
                    wrong += (*got.pixels)[k] != (x < plain.width / 2 ? 255 : (*plain.pixels)[k]);
                }
            EXPECT_EQ(wrong, 0u) << "planar " << planar << ", tiles " << tile;
        }
    // Other depths libtiff itself refuses, with its reason.
    EXPECT_THAT(error_of("four.tif", receipt_tiff(dir, "four.tif", "-resize 20% -colorspace Gray -alpha set -depth 4")),
                HasSubstr("four.tif: TIFF page 1 cannot be decoded: Sorry, can not handle contiguous data with PhotometricInterpretation=1, "
                          "and Samples/pixel=2 and Bits/Sample=4 (libtiff)"));
}

// A fax at standard resolution (204 x 98 dpi) is stored at half its height: the OCR read
// squashed letters. It comes out with square pixels, as the fine-resolution fax of the same
// page, and the header check sees that size before decoding.
TEST(TiffDecode, AFaxAtStandardResolutionComesOutWithSquarePixels) {
    test::TempDir dir;
    const std::string bilevel = "-colorspace Gray -resize 1728x -threshold 60% -type Bilevel -compress Group4 -units PixelsPerInch";
    const Image fine = decode("fine.tif", receipt_tiff(dir, "fine.tif", bilevel + " -density 204x204"));
    const Bytes standard_bytes = receipt_tiff(dir, "standard.tif", bilevel + " -sample 100%x48.0392% -density 204x98");
    const Image standard = decode("standard.tif", standard_bytes);
    PIX* stored = pixReadMemTiff(standard_bytes.data(), standard_bytes.size(), 0);
    ASSERT_NE(stored, nullptr);
    EXPECT_EQ(standard.width, 1728);
    EXPECT_NEAR(standard.height, std::lround(pixGetHeight(stored) * 204.0 / 98.0), 1);
    EXPECT_EQ(standard.dpi, 204);
    pixDestroy(&stored);
    ASSERT_NEAR(standard.height, fine.height, 3);
    // The same page: compared over the rows both have, a few pixels differ along the edges.
    Image common = fine;
    common.height = std::min(fine.height, standard.height);
    auto cut = [&](const Image& img) {
        return std::make_shared<std::vector<std::uint8_t>>(img.pixels->begin(), img.pixels->begin() + static_cast<std::ptrdiff_t>(common.width) * common.height);
    };
    Image a = common, b = common;
    a.pixels = cut(fine);
    b.pixels = cut(standard);
    EXPECT_LT(mean_difference(a, b), 20.0);
    // Square or near-square pixels are left as they are.
    EXPECT_EQ(decode("near.tif", receipt_tiff(dir, "near.tif", bilevel + " -density 204x196")).height, fine.height);
}

// The Orientation tag: each of the eight comes out upright (libtiff's own reader does the
// flips but not the quarter turns).
TEST(TiffDecode, TheOrientationTagIsApplied) {
    test::TempDir dir;
    const Image upright = decode("upright.tif", receipt_tiff(dir, "upright.tif", "-resize 20%"));
    const std::map<int, std::pair<std::string, std::string>> stored = {
        {1, {"", "TopLeft"}},          {2, {"-flop", "TopRight"}},      {3, {"-rotate 180", "BottomRight"}},
        {4, {"-flip", "BottomLeft"}},  {5, {"-transpose", "LeftTop"}},  {6, {"-rotate -90", "RightTop"}},
        {7, {"-transverse", "RightBottom"}}, {8, {"-rotate 90", "LeftBottom"}}};
    for (const auto& [orientation, how] : stored) {
        SCOPED_TRACE(orientation);
        const std::string name = "o" + std::to_string(orientation) + ".tif";
        const Image img = decode(name, receipt_tiff(dir, name, "-resize 20% " + how.first + " -orient " + how.second));
        ASSERT_EQ(img.width, upright.width);
        ASSERT_EQ(img.height, upright.height);
        EXPECT_EQ(mean_difference(img, upright), 0.0) << "not upright";
    }
}

// A strip libtiff cannot read (the file cut short) leaves its rows blank. A few rows missing:
// the page is kept, and the damage is named with libtiff's reason and the rows, so the
// claim goes to a person (the "damaged page" trace entry). Most of the page missing: bad
// input naming the row. Nothing reaches stderr; libtiff's warnings reach the node's log.
TEST(TiffDecode, ADamagedStripIsBlankAndNamedOrTheFileRefused) {
    const Bytes whole = handmade_tiff(200, 400, 16, false);
    ::testing::internal::CaptureStderr();
    Bytes nearly = whole;
    nearly.resize(whole.size() - 200 * 20);  // the last 20 rows: two strips, one of them in part
    std::vector<std::string> damage;
    const Image kept = decode("nearly.tif", nearly, &damage);
    ASSERT_EQ(damage.size(), 1u);
    EXPECT_THAT(damage[0], ::testing::MatchesRegex("nearly\\.tif: page 1: damaged TIFF: 32 of its 400 rows cannot be read \\(rows 368-399\\); "
                                                   "they are left blank \\(libtiff: .*\\)"));
    EXPECT_EQ((*kept.pixels)[50 * 200], 0) << "the rows before the damage are read";
    EXPECT_EQ((*kept.pixels)[399 * 200], 255);

    Bytes half = whole;
    half.resize(whole.size() / 2);
    EXPECT_THAT(error_of("half.tif", half),
                ::testing::MatchesRegex("half\\.tif: damaged TIFF: page 1's data cannot be read from row 1[0-9][0-9] of 400, so [45][0-9]% "
                                        "of the page is missing \\(libtiff: .*\\)"));
    EXPECT_THAT(error_of("header.tif", Bytes(whole.begin(), whole.begin() + 30)), HasSubstr("header.tif: not a readable image (corrupt TIFF header; libtiff: "));

    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    auto out = runner.process(Document::from_bytes("nearly.tif", "image/tiff", nearly));
    std::string traced;
    for (const auto& t : out.at(0).doc->trace)
        if (t.event == kDamagedPageEvent) traced += t.detail;
    EXPECT_THAT(traced, HasSubstr("nearly.tif: page 1: damaged TIFF: "));
    auto tagged = runner.process(Document::from_bytes("tagged.tif", "image/tiff", handmade_tiff(200, 100, 100, true)));
    EXPECT_EQ(tagged.at(0).doc->pages.at(0).image.height, 100);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    bool logged = false;
    for (const auto& line : runner.context().log_lines()) logged |= line.message.rfind("libtiff: tagged.tif: ", 0) == 0;
    EXPECT_TRUE(logged) << "libtiff's warning about the unknown tag goes to the node's log";
}

TEST(TiffDecode, TooManyPagesIsBadInputBeforeAnyIsDecoded) {
    test::TempDir dir;
    const fs::path file = dir.path() / "three.tif";
    ASSERT_EQ(std::system(("convert -size 60x40 xc:white xc:gray xc:black " + file.string()).c_str()), 0);
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "max_pages: 2");
    try {
        runner.process(Document::from_bytes("three.tif", "image/tiff", read_bytes(file)));
        ADD_FAILURE() << "three pages went through a limit of two";
    } catch (const BadInput& e) {
        EXPECT_STREQ(e.what(), "three.tif: more than 2 pages, above the limit of 2 pages");
    }
}

// Found by a hostile probe of the decoder: damage libtiff reports only as a codec's warning
// (a fax strip cut short: "Premature EOL"), a refusal's reason that named a harmless tag
// from the file's opening, exactly a tenth of the rows missing, a scanner's thumbnail read
// as a second page, and a sound uncompressed tiled file refused as damaged.
TEST(TiffDecode, DamageLibtiffOnlyWarnsAboutIsNamedAndThumbnailsAreNotPages) {
    test::TempDir dir;
    Bytes fax = receipt_tiff(dir, "fax.tif", "-resize 25% -colorspace Gray -threshold 50% -type Bilevel -compress Group4");
    const std::size_t whole = fax.size();
    set_tag(fax, 0, 279, static_cast<std::uint32_t>(whole / 2));  // the strip's byte count: half the data
    ::testing::internal::CaptureStderr();
    std::vector<std::string> damage;
    decode("fax.tif", fax, &damage);
    ASSERT_EQ(damage.size(), 1u) << "kept, and marked";
    EXPECT_THAT(damage[0], ::testing::MatchesRegex("fax\\.tif: page 1: damaged TIFF: rows 0-[0-9]+ of [0-9]+ were decoded with a warning, so "
                                                   "some of them may be blank or garbled \\(libtiff: .*\\)"));

    // An Orientation of 0 (libtiff complains on opening, and reads on) in a file cut in half:
    // the refusal gives libtiff's reason for the missing rows, not the complaint.
    Bytes odd_orientation = handmade_tiff(200, 400, 16, false, 0);
    odd_orientation.resize(odd_orientation.size() / 2);
    const std::string refused = error_of("half.tif", odd_orientation);
    EXPECT_THAT(refused, HasSubstr("half.tif: damaged TIFF: page 1's data cannot be read from row "));
    EXPECT_THAT(refused, ::testing::Not(HasSubstr("Orientation"))) << refused;
    EXPECT_THAT(refused, ::testing::Not(HasSubstr("libtiff: half.tif"))) << "the file name once, at the head";

    // Exactly a tenth of the rows missing: kept, as a JPEG is.
    Bytes tenth = handmade_tiff(200, 200, 20, false);
    tenth.resize(tenth.size() - 200 * 20);
    decode("tenth.tif", tenth, &damage);
    ASSERT_EQ(damage.size(), 1u);
    EXPECT_THAT(damage[0], HasSubstr("20 of its 200 rows cannot be read (rows 180-199)"));

    // Two strips apart that cannot be read: both runs are named, so a person looks at both.
    decode("two.tif", handmade_tiff(200, 400, 16, false, -1, {2, 10}), &damage);
    ASSERT_EQ(damage.size(), 1u);
    EXPECT_THAT(damage[0], HasSubstr("32 of its 400 rows cannot be read (rows 32-47, 160-175)"));
    EXPECT_THAT(damage[0], HasSubstr("(libtiff: Read error on strip 2: it starts past the end of the file)"))
        << "not libtiff's wrapped-around byte count";

    // A one-strip page that cannot be read at all (its byte count runs past the file's end)
    // says so.
    Bytes one_strip = receipt_tiff(dir, "one.tif", "-resize 25% -colorspace Gray -threshold 50% -type Bilevel -compress Group4");
    set_tag(one_strip, 0, 279, static_cast<std::uint32_t>(one_strip.size() * 2));
    EXPECT_THAT(error_of("one.tif", one_strip), HasSubstr("one.tif: damaged TIFF: page 1 is stored as one strip, and libtiff cannot read it, "
                                                          "so none of the page is read (libtiff: "));

    // A scanner's thumbnail after the page (NewSubfileType 1) is not a second page.
    const fs::path two = dir.path() / "two.tif";
    ASSERT_EQ(std::system(("convert -size 60x40 xc:white xc:gray " + two.string()).c_str()), 0);
    Bytes thumbnail = read_bytes(two);
    set_tag(thumbnail, 1, 254, 1);
    const Part part{"thumb.tif", "image/tiff", std::make_shared<const Bytes>(thumbnail)};
    EXPECT_EQ(imaging::decode_image(part, imaging::DecodeLimits{}).size(), 1u);

    // Uncompressed tiles whose size is not a multiple of 1024 bytes (16x16 gray: 256), which
    // libtiff 4.5 refuses unless the file is mapped: read, as the same page in strips.
    const Image tiles = decode("tiles.tif", receipt_tiff(dir, "tiles.tif", "-resize 10% -colorspace Gray -depth 8 -compress None "
                                                                          "-define tiff:tile-geometry=16x16"));
    const Image strips = decode("strips.tif", receipt_tiff(dir, "strips.tif", "-resize 10% -colorspace Gray -depth 8 -compress None"));
    ASSERT_EQ(tiles.height, strips.height);
    EXPECT_EQ(mean_difference(tiles, strips), 0.0);
    // A compression libtiff is not built with (JPEG 2000, 34712) is named, not "damaged".
    Bytes jpeg2000 = handmade_tiff(200, 100, 100, false);
    set_tag(jpeg2000, 0, 259, 34712);
    EXPECT_EQ(error_of("j2k.tif", jpeg2000), "j2k.tif: TIFF page 1 is compressed with an unknown scheme (34712), which this libtiff cannot "
                                             "decode; save it again as LZW, Zip, JPEG or fax (G3/G4)");
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}
