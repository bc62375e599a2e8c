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
    EXPECT_TRUE(sections_around(draws, draws.xobjects[0].section).empty());
    EXPECT_EQ(draws.xobjects[1].name, "/Im1");
    EXPECT_THAT(sections_around(draws, draws.xobjects[1].section), ElementsAre("/MC0"));
    ASSERT_EQ(draws.inline_jpegs.size(), 1u);
    EXPECT_THAT(sections_around(draws, draws.inline_jpegs[0].section), ElementsAre("/MC0"));
    EXPECT_EQ(draws.xobjects[2].name, "/Im2");
    EXPECT_TRUE(sections_around(draws, draws.xobjects[2].section).empty()) << "the sections are closed; extra EMCs are ignored";
    EXPECT_EQ(decoded_pdf_name("/A#20B#2"), "/A B#2");
}

// What poppler's parser does with operators that are not run: a word inside an array or a
// dictionary is a member of it; a BDC whose operands are of the wrong kind opens nothing (an
// EMC still closes); "EI" runs straight into the next operator.
TEST(PdfContent, OperatorsAreReadAsPopplerRunsThem) {
    auto names = [](const ContentDraws& draws) {
        std::vector<std::string> out;
        for (const auto& x : draws.xobjects) out.push_back(x.name + (x.section >= 0 ? "@" + draws.sections[static_cast<std::size_t>(x.section)].name : ""));
        return out;
    };
    EXPECT_THAT(names(content_draws("[/Im0 Do] /Im1 Do << /K /Im2 Do /A [1 [2] << >>] >> /Im3 Do")), ElementsAre("/Im1", "/Im3"));
    EXPECT_THAT(names(content_draws("/OC /MC0 BDC (x) /MC1 BDC EMC /Im0 Do EMC /Im1 Do")), ElementsAre("/Im0", "/Im1"));
    EXPECT_THAT(names(content_draws("/OCMD /MC1 BDC /Im3 Do EMC /Tag << /MCID 0 >> BDC /Im4 Do EMC")), ElementsAre("/Im3@/MC1", "/Im4"));

    const std::string& jpeg = small_jpeg();
    const ContentDraws touching = content_draws("BI /F /DCT ID\n" + jpeg + "\nEIBI /F /DCT ID\n" + jpeg + "\nEI/Im5 Do");
    ASSERT_EQ(touching.inline_jpegs.size(), 2u);
    EXPECT_EQ(touching.inline_jpegs[1].bytes, jpeg);
    EXPECT_THAT(names(touching), ElementsAre("/Im5"));

    // Each section is kept once, however many operators it holds.
    std::string nested;
    for (int k = 0; k < 500; ++k) nested += "/OC /L" + std::to_string(k) + " BDC ";
    for (int k = 0; k < 500; ++k) nested += "/Im9 Do ";
    const ContentDraws deep = content_draws(nested);
    EXPECT_EQ(deep.sections.size(), 500u);
    ASSERT_EQ(deep.xobjects.size(), 500u);
    EXPECT_EQ(deep.xobjects.back().section, 499);
    EXPECT_EQ(sections_around(deep, 499).size(), 500u);
    EXPECT_EQ(sections_around(deep, 499).front(), "/L0");
}

// poppler stops drawing a content stream at an operator given fewer operands than it takes.
TEST(PdfContent, ReadingStopsWherePopplerStopsDrawing) {
    auto names = [](const ContentDraws& draws) {
        std::vector<std::string> out;
        for (const auto& x : draws.xobjects) out.push_back(x.name);
        return out;
    };
    EXPECT_THAT(names(content_draws("q 1 0 0 1 0 0 cm /Im0 Do Q Do /Im1 Do")), ElementsAre("/Im0"));
    EXPECT_THAT(names(content_draws("q 1 0 0 1 0 cm /Im0 Do")), ElementsAre());
    EXPECT_THAT(names(content_draws("/MC1 BDC /Im0 Do EMC")), ElementsAre());
    // Operators of any number of operands, unknown operators and numbers are no such stop.
    EXPECT_THAT(names(content_draws("sc 1 2 scn BX xyz EX 0.5 -3 +.2 true null /Im2 Do")), ElementsAre("/Im2"));
}

// An unfiltered inline image whose colour space is named in the resources is sized by it, as
// poppler sizes it: its pixels are stepped over, whatever they hold.
TEST(PdfContent, AnInlineImageInAResourceColourSpaceIsSteppedOverByItsSize) {
    const std::string nine_bytes = "\x01 EI (abc";  // three RGB pixels: " EI" and the start of a string among them
    const std::string content = "BI /W 3 /H 1 /CS /CS0 /BPC 8 ID " + nine_bytes + " EI /Im0 Do";
    const ContentDraws sized = content_draws(content, [](const std::string& name) { return name == "/CS0" ? 3 : 0; });
    ASSERT_EQ(sized.xobjects.size(), 1u);
    EXPECT_EQ(sized.xobjects[0].name, "/Im0");
    // Without knowing the space, the first "EI" ends it, and the "(" then hides the Do.
    EXPECT_TRUE(content_draws(content).xobjects.empty());
}

// The area an image covers on the page tells a scan from a logo and a thumbnail saved as a
// PDF from a scan: `cm` scales it, `q` and `Q` save and restore it, as poppler draws.
TEST(PdfContent, EachDrawCarriesTheAreaItsUnitSquareCovers) {
    const ContentDraws draws = content_draws(
        "/Im0 Do q 100 0 0 50 10 10 cm /Im1 Do q 0 2 -3 0 0 0 cm /Im2 Do Q /Im3 Do Q /Im4 Do Q Q /Im5 Do "
        "q 2 0 0 /x 0 0 cm /Im6 Do Q q 0.5 0 0 .5 0 0 cm BI /W 30 /H 20 /BPC 8 /CS /G ID\n" + std::string(600, '\x7f') + "\nEI Q");
    ASSERT_EQ(draws.xobjects.size(), 7u);
    EXPECT_DOUBLE_EQ(draws.xobjects[0].area, 1.0);
    EXPECT_DOUBLE_EQ(draws.xobjects[1].area, 5000.0);
    EXPECT_DOUBLE_EQ(draws.xobjects[2].area, 30000.0) << "turned and stretched: |ad - bc|";
    EXPECT_DOUBLE_EQ(draws.xobjects[3].area, 5000.0) << "restored by Q";
    EXPECT_DOUBLE_EQ(draws.xobjects[4].area, 1.0);
    EXPECT_DOUBLE_EQ(draws.xobjects[5].area, 1.0) << "a Q with nothing saved changes nothing";
    EXPECT_DOUBLE_EQ(draws.xobjects[6].area, 1.0) << "a cm with an operand that is no number is skipped";
    ASSERT_EQ(draws.inline_images.size(), 1u);
    EXPECT_EQ(draws.inline_images[0].width, 30u);
    EXPECT_EQ(draws.inline_images[0].height, 20u);
    EXPECT_DOUBLE_EQ(draws.inline_images[0].area, 0.25);

    // A million `q` cost no more than a few thousand saved areas; the `Q`s still pair up.
    std::string deep;
    for (int k = 0; k < 1'000'000; ++k) deep += "q ";
    deep += "2 0 0 2 0 0 cm /Deep Do ";
    for (int k = 0; k < 1'000'000; ++k) deep += "Q ";
    const ContentDraws nested = content_draws("q 3 0 0 3 0 0 cm " + deep + "/Out Do Q /Page Do");
    ASSERT_EQ(nested.xobjects.size(), 3u);
    EXPECT_DOUBLE_EQ(nested.xobjects[0].area, 36.0);
    EXPECT_DOUBLE_EQ(nested.xobjects[1].area, 9.0);
    EXPECT_DOUBLE_EQ(nested.xobjects[2].area, 1.0);
    // The cm that deep is not undone by its Q, so the areas are said to be unknown; in a
    // stream of ordinary depth they are known.
    EXPECT_TRUE(nested.areas_unknown);
    EXPECT_FALSE(draws.areas_unknown);
}
