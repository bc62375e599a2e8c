// pdf_content: what a content stream draws, and where an inline image's data ends, on
// content written by hand. The cases are those a hostile probe found wrong: "EI" or an end
// marker inside a JPEG's comment, a cut inline JPEG before a whole one, pixels that read like
// operators, names with "#xx" escapes, and images in optional content.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "docpipe/testing.hpp"
#include "harness.hpp"
#include "imaging_test_support.hpp"
#include "pdf_content.hpp"

using namespace docpipe;
using namespace docpipe::imaging;
using ::testing::ElementsAre;

namespace {

// A small gray JPEG of the receipt, as a string of its bytes.
const std::string& small_jpeg() {
    static const std::string jpeg = [] {
        test::TempDir dir;
        const auto file = dir.path() / "small.jpg";
        const std::string cmd = "convert " + imaging::test_support::kReceipt.string() + " -colorspace Gray -resize 60x84! " + file.string();
        EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
        const Bytes bytes = test::read_bytes(file);
        return std::string(bytes.begin(), bytes.end());
    }();
    return jpeg;
}

// The JPEG with a comment segment after its start marker.
std::string with_comment(const std::string& jpeg, const std::string& comment) {
    const std::size_t length = comment.size() + 2;
    std::string segment = "\xFF\xFE";
    segment += static_cast<char>(length >> 8);
    segment += static_cast<char>(length & 0xFF);
    return jpeg.substr(0, 2) + segment + comment + jpeg.substr(2);
}

std::string inline_jpeg(const std::string& bytes) { return "q 60 0 0 84 0 0 cm BI /W 60 /H 84 /CS /G /BPC 8 /F /DCT ID\n" + bytes + "\nEI Q\n"; }

}  // namespace

TEST(PdfContent, AJpegsLengthFollowsItsStructure) {
    const std::string& jpeg = small_jpeg();
    ASSERT_GT(jpeg.size(), 100u);
    std::size_t budget = 1 << 20;
    EXPECT_EQ(jpeg_length(jpeg + "\nEI Q", 0, budget), jpeg.size());
    EXPECT_EQ(jpeg_length("\r\n" + jpeg, 0, budget), jpeg.size() + 2) << "white space before the start marker is counted";
    const std::string commented = with_comment(jpeg, std::string("\xFF\xD9\nEI ") + " EI EI \n");
    EXPECT_EQ(jpeg_length(commented + "\nEI", 0, budget), commented.size()) << "an end marker inside a comment is not the end";
    const std::string cut = jpeg.substr(0, jpeg.size() / 2);
    EXPECT_EQ(jpeg_length(cut + "\nEI Q", 0, budget), 0u) << "no end marker";
    EXPECT_EQ(jpeg_length(cut + "\nEI Q BI /F /DCT ID\n" + jpeg + "\nEI", 0, budget), 0u)
        << "a cut JPEG runs into the next one's start marker: its own end is not found";
    EXPECT_EQ(jpeg_length("GIF89a", 0, budget), 0u);
    std::size_t small_budget = 10;
    EXPECT_EQ(jpeg_length(jpeg, 0, small_budget), 0u) << "past its budget, nothing is followed";
    EXPECT_EQ(small_budget, 0u);
}

TEST(PdfContent, InlineJpegsEndWhereTheirOwnDataEnds) {
    const std::string& jpeg = small_jpeg();
    const std::string cut = jpeg.substr(0, jpeg.size() * 2 / 5);
    std::string many_ei = "\xFF\xD9\nEI ";
    for (int k = 0; k < 20; ++k) many_ei += " EI ";
    const std::string commented = with_comment(jpeg, many_ei);

    // A cut one, a whole one (whose comment holds "EI" and an end marker), a cut one.
    const ContentDraws draws = content_draws(inline_jpeg(cut) + inline_jpeg(commented) + inline_jpeg(cut) + "/Im0 Do");
    ASSERT_EQ(draws.inline_jpegs.size(), 3u);
    EXPECT_EQ(draws.inline_jpegs[0].number, 1);
    EXPECT_EQ(draws.inline_jpegs[0].bytes, cut);
    EXPECT_EQ(draws.inline_jpegs[1].number, 2);
    EXPECT_EQ(draws.inline_jpegs[1].bytes, commented);
    EXPECT_EQ(draws.inline_jpegs[2].number, 3);
    EXPECT_EQ(draws.inline_jpegs[2].bytes, cut);
    ASSERT_EQ(draws.xobjects.size(), 1u) << "the operators after the images are read";
    EXPECT_EQ(draws.xobjects[0].name, "/Im0");

    // Spelled other ways: /Filter /DCTDecode, [/DCT], ID then CR LF.
    EXPECT_EQ(content_draws("BI /Filter [/DCTDecode] /Width 60 ID\r\n" + jpeg + " EI").inline_jpegs.at(0).bytes, "\n" + jpeg);
    // Behind another filter, or empty: nothing to check.
    EXPECT_TRUE(content_draws("BI /F [/AHx /DCT] ID\n" + cut + "\nEI").inline_jpegs.empty());
    EXPECT_TRUE(content_draws("BI /F /DCT ID EI BI /F /DCT ID EI Q").inline_jpegs.empty());
}

TEST(PdfContent, AnUnfilteredInlineImageIsSteppedOverByItsSize) {
    // 64 gray pixels whose bytes read like operators: an inline JPEG, a Do.
    std::string pixels = " EI BI /F /DCT ID\n\xFF\xD8 /Im9 Do ";
    pixels.resize(64, 'x');
    const ContentDraws draws = content_draws("BI /W 64 /H 1 /CS /G /BPC 8 ID\n" + pixels + "\nEI /Im1 Do");
    EXPECT_TRUE(draws.inline_jpegs.empty());
    ASSERT_EQ(draws.xobjects.size(), 1u);
    EXPECT_EQ(draws.xobjects[0].name, "/Im1");
    // An image mask: one bit a pixel, 64 x 2 is 16 bytes.
    const ContentDraws mask = content_draws("BI /W 64 /H 2 /IM true ID\n" + pixels.substr(0, 16) + "\nEI /Im2 Do");
    ASSERT_EQ(mask.xobjects.size(), 1u);
    EXPECT_EQ(mask.xobjects[0].name, "/Im2");
}

TEST(PdfContent, NamesAreDecodedAndOptionalContentIsNamed) {
    const ContentDraws draws = content_draws(
        "(a string with /Im7 Do in it) Tj % a comment /Im8 Do\n"
        "/Im#30 Do "
        "/OC /MC#30 BDC /Span << /ActualText (x) >> BDC /Im1 Do EMC /Tag BMC " + inline_jpeg(small_jpeg()) + " EMC EMC "
        "/Im2 Do EMC EMC");
    ASSERT_EQ(draws.xobjects.size(), 3u);
    EXPECT_EQ(draws.xobjects[0].name, "/Im0");
    EXPECT_TRUE(draws.xobjects[0].optional_content.empty());
    EXPECT_EQ(draws.xobjects[1].name, "/Im1");
    EXPECT_THAT(draws.xobjects[1].optional_content, ElementsAre("/MC0"));
    ASSERT_EQ(draws.inline_jpegs.size(), 1u);
    EXPECT_THAT(draws.inline_jpegs[0].optional_content, ElementsAre("/MC0"));
    EXPECT_EQ(draws.xobjects[2].name, "/Im2");
    EXPECT_TRUE(draws.xobjects[2].optional_content.empty()) << "the sections are closed; extra EMCs are ignored";
    EXPECT_EQ(decoded_pdf_name("/A#20B#2"), "/A B#2");
}
