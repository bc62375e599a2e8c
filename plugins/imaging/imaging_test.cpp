// transform.pdf_pages through the SDK testing kit against the built plugin: real images and
// PDFs decode; broken and hostile files fail with a clear reason (BadInput), never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <leptonica/allheaders.h>
#include <zlib.h>

#include "decode.hpp"
#include "docpipe/registry.hpp"
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

// A PDF file of these objects (object k + 1 is objects[k]), with its cross-reference table;
// `trailer_extra` goes into the trailer dictionary.
std::string pdf_file(const std::vector<std::string>& objects, const std::string& trailer_extra = "") {
    std::string out = "%PDF-1.4\n";
    std::vector<std::size_t> offsets;
    for (std::size_t i = 0; i < objects.size(); ++i) {
        offsets.push_back(out.size());
        out += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
    }
    const std::size_t xref = out.size();
    out += "xref\n0 " + std::to_string(offsets.size() + 1) + "\n0000000000 65535 f \n";
    for (auto o : offsets) {
        char line[32];
        std::snprintf(line, sizeof line, "%010zu 00000 n \n", o);
        out += line;
    }
    out += "trailer\n<< /Size " + std::to_string(offsets.size() + 1) + " /Root 1 0 R" + trailer_extra + " >>\nstartxref\n" +
           std::to_string(xref) + "\n%%EOF\n";
    return out;
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
    if (!encrypted) return pdf_file(objects);
    const std::string h32(64, 'A');  // O and U that no empty password matches
    objects.push_back("<< /Filter /Standard /V 1 /R 2 /O <" + h32 + "> /U <" + h32 + "> /P -44 >>");
    return pdf_file(objects, " /Encrypt " + std::to_string(objects.size()) + " 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> "
                                                                             "<0123456789ABCDEF0123456789ABCDEF>]");
}

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A PDF written by hand whose `pages` pages each draw one JPEG, the same image object /Im0
// (a scanner's PDF of a receipt photo), stored as given with /DCTDecode. The resources are
// on /Pages, inherited by every page, as scanners write them; `listed_not_drawn`, when
// given, is a second JPEG (/Im1) listed there that no page draws.
// `overlay`: text drawn over the image in Helvetica, invisible (render mode 3) as a scanner
// app's OCR layer is. `filter` "" stores the image as raw 8-bit gray samples instead.
std::string pdf_of_jpeg(const Bytes& jpeg, int width, int height, int pages = 1, const Bytes& listed_not_drawn = {},
                        const std::string& overlay = "", const std::string& filter = " /Filter /DCTDecode") {
    auto image = [&](const Bytes& bytes) {
        return "<< /Type /XObject /Subtype /Image /Width " + std::to_string(width) + " /Height " + std::to_string(height) +
               " /ColorSpace /DeviceGray /BitsPerComponent 8" + filter + " /Length " + std::to_string(bytes.size()) + " >>\nstream\n" +
               std::string(bytes.begin(), bytes.end()) + "\nendstream";
    };
    const bool second = !listed_not_drawn.empty();
    const int first_page = second ? 6 : 5;
    std::vector<std::string> objects;
    objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
    std::string kids;
    for (int i = 0; i < pages; ++i) kids += std::to_string(first_page + i) + " 0 R ";
    const std::string font = overlay.empty() ? "" : " /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >>";
    objects.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(pages) + " /Resources << /XObject << /Im0 3 0 R" +
                      (second ? " /Im1 5 0 R" : "") + " >>" + font + " >> >>");
    objects.push_back(image(jpeg));
    const std::string content =
        "q 298 0 0 420 0 0 cm /Im0 Do Q" + (overlay.empty() ? "" : " BT /F1 12 Tf 3 Tr 20 20 Td (" + overlay + ") Tj ET");
    objects.push_back("<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream");
    if (second) objects.push_back(image(listed_not_drawn));
    for (int i = 0; i < pages; ++i) objects.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 298 420] /Contents 4 0 R >>");
    return pdf_file(objects);
}

// An A4 page (595 x 842 points) drawing the given gray images with `content`, each image
// /ImN (N its place in `images`), stored raw (`jpeg` false) or as a JPEG; `text` is drawn
// visibly in Helvetica at the page's foot when not empty. `form` wraps the content in a form
// XObject /Fm0 with that /Matrix ("" for none), which the page draws, or, with `stamp`, which
// a stamp annotation over the whole page shows as its appearance (the text stays on the
// page). `boxes` replaces the page's /MediaBox entry.
struct PdfImage {
    Bytes bytes;
    int width = 0, height = 0;
    bool jpeg = false;
};
std::string pdf_of_images(const std::vector<PdfImage>& images, const std::string& content, const std::string& text = "",
                          const std::string& form = "", bool stamp = false, const std::string& boxes = "/MediaBox [0 0 595 842]") {
    std::vector<std::string> objects;
    objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
    const int first_image = form.empty() ? 5 : 6;
    std::string xobjects;
    for (std::size_t i = 0; i < images.size(); ++i)
        xobjects += " /Im" + std::to_string(i) + " " + std::to_string(first_image + static_cast<int>(i)) + " 0 R";
    const std::string resources = "<< /XObject <<" + xobjects + " >> /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>";
    objects.push_back("<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    const std::string caption = text.empty() ? "" : " BT /F1 12 Tf 40 40 Td (" + text + ") Tj ET";
    objects.push_back("<< /Type /Page /Parent 2 0 R " + boxes + " /Resources " +
                      (form.empty() ? resources : stamp ? resources : "<< /XObject << /Fm0 5 0 R >> >>") + " /Contents 4 0 R" +
                      (stamp ? " /Annots [<< /Type /Annot /Subtype /Stamp /Rect [0 0 595 842] /AP << /N 5 0 R >> >>]" : "") + " >>");
    const std::string drawn = stamp ? content : content + caption;
    const std::string page_content = form.empty() ? drawn : stamp ? caption : "/Fm0 Do";
    objects.push_back("<< /Length " + std::to_string(page_content.size()) + " >>\nstream\n" + page_content + "\nendstream");
    if (!form.empty())
        objects.push_back("<< /Type /XObject /Subtype /Form /BBox [0 0 595 842] /Matrix [" + form + "] /Resources " + resources +
                          " /Length " + std::to_string(drawn.size()) + " >>\nstream\n" + drawn + "\nendstream");
    for (const PdfImage& image : images)
        objects.push_back("<< /Type /XObject /Subtype /Image /Width " + std::to_string(image.width) + " /Height " +
                          std::to_string(image.height) + " /ColorSpace /DeviceGray /BitsPerComponent 8" +
                          (image.jpeg ? " /Filter /DCTDecode" : "") + " /Length " + std::to_string(image.bytes.size()) +
                          " >>\nstream\n" + std::string(image.bytes.begin(), image.bytes.end()) + "\nendstream");
    return pdf_file(objects);
}

// The receipt as gray samples (`jpeg` false) or a gray JPEG of the given size.
PdfImage receipt_image(int width, int height, bool jpeg) {
    test::TempDir dir;
    const fs::path file = dir.path() / (jpeg ? "r.jpg" : "r.gray");
    const std::string cmd = "convert " + kReceipt.string() + " -colorspace Gray -resize " + std::to_string(width) + "x" +
                            std::to_string(height) + "! -depth 8 " + (jpeg ? "" : "gray:") + file.string();
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return PdfImage{read_bytes(file), width, height, jpeg};
}

// The receipt as a small gray JPEG, 240 x 338 (a page of that many points at 72 dpi).
Bytes small_receipt_jpeg() {
    test::TempDir dir;
    const fs::path small = dir.path() / "small.jpg";
    if (std::system(("convert " + kReceipt.string() + " -colorspace Gray -resize 240x338! " + small.string()).c_str()) != 0) return {};
    return read_bytes(small);
}

// What the node made of a one-page PDF: its `damaged page` notes, and how much ink poppler
// put on the page (so a test can tell what poppler really drew).
struct RenderedPdf {
    std::vector<std::string> notes;
    double ink = 0;  // the share of dark pixels on the rendered page
};

RenderedPdf render_pdf(NodeRunner& runner, const std::string& name, const Bytes& pdf) {
    auto out = runner.process(doc_of(name, pdf));
    RenderedPdf seen;
    for (const auto& t : out.at(0).doc->trace)
        if (t.event == kDamagedPageEvent) seen.notes.push_back(t.detail);
    const Image& img = out.at(0).doc->pages.at(0).image;
    std::size_t dark = 0;
    for (std::size_t k = 0; k < img.pixels->size(); k += static_cast<std::size_t>(img.channels)) dark += (*img.pixels)[k] < 128;
    seen.ink = static_cast<double>(dark) / (static_cast<double>(img.pixels->size()) / img.channels);
    return seen;
}

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

// A scan carrying a text layer (a scanner app's invisible OCR, or text laid over the photo on
// purpose) is not born-digital: the text was trusted over the image, and a forged "TOTAL RM
// 9,999.00" over a receipt of RM 80.90 was booked at high confidence. The image is read.
TEST(PdfPages, AScanWithATextLayerIsReadFromTheScan) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "text_layer: use");
    test::TempDir dir;
    const fs::path gray = dir.path() / "gray.jpg";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -colorspace Gray " + gray.string()).c_str()), 0);
    auto scan = runner.process(doc_of("scan.pdf", bytes_of(pdf_of_jpeg(read_bytes(gray), 1240, 1748, 1, {}, "TOTAL RM 9,999.00"))));
    ASSERT_EQ(scan.at(0).doc->pages.size(), 1u);
    EXPECT_TRUE(scan[0].doc->pages[0].text_layer.empty()) << scan[0].doc->pages[0].text_layer;
    EXPECT_TRUE(scan[0].doc->pages[0].image.pixels) << "rendered, for OCR";
    // A born-digital receipt with a small picture on it (a shop's logo) keeps its own text.
    const Bytes logo = small_receipt_jpeg();
    ASSERT_FALSE(logo.empty());
    auto invoice = runner.process(doc_of("invoice.pdf", bytes_of(pdf_of_jpeg(logo, 240, 338, 1, {}, "TOTAL RM 12.50"))));
    EXPECT_THAT(invoice.at(0).doc->pages.at(0).text_layer, HasSubstr("TOTAL RM 12.50"));
    EXPECT_FALSE(invoice[0].doc->pages[0].image.pixels);
    // A scan stored another way than JPEG (raw samples here; JBIG2, CCITT and Flate alike) is
    // told by its size too.
    const fs::path raw = dir.path() / "scan.gray";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -colorspace Gray -resize 460x930! -depth 8 gray:" + raw.string()).c_str()), 0);
    auto raw_scan = runner.process(doc_of("raw.pdf", bytes_of(pdf_of_jpeg(read_bytes(raw), 460, 930, 1, {}, "TOTAL RM 9,999.00", ""))));
    EXPECT_TRUE(raw_scan.at(0).doc->pages.at(0).text_layer.empty()) << raw_scan[0].doc->pages[0].text_layer;
    EXPECT_TRUE(raw_scan[0].doc->pages[0].image.pixels) << "rendered, for OCR";

    // What counts is the share of the page the pictures cover. A born-digital invoice whose
    // logo has many pixels (600 x 300, raw or JPEG) but is drawn small (150 x 75 points of
    // an A4 page) keeps its text.
    for (const bool jpeg : {false, true}) {
        SCOPED_TRACE(jpeg ? "JPEG logo" : "raw logo");
        const auto logo_page = runner.process(doc_of("invoice.pdf", bytes_of(pdf_of_images({receipt_image(600, 300, jpeg)},
                                                                                            "q 150 0 0 75 400 740 cm /Im0 Do Q",
                                                                                            "INVOICE 1234 TOTAL RM 12.50"))));
        EXPECT_THAT(logo_page.at(0).doc->pages.at(0).text_layer, HasSubstr("TOTAL RM 12.50"));
        EXPECT_FALSE(logo_page[0].doc->pages[0].image.pixels);
    }
    // A scan a printer driver cut into 20 bands, each too small alone, is one scan together.
    std::vector<PdfImage> bands;
    std::string banded;
    for (int k = 0; k < 20; ++k) {
        bands.push_back(receipt_image(1240, 44, false));
        banded += "q 595 0 0 42.1 0 " + std::to_string(842.0 - 42.1 * (k + 1)) + " cm /Im" + std::to_string(k) + " Do Q ";
    }
    const auto banded_scan = runner.process(doc_of("banded.pdf", bytes_of(pdf_of_images(bands, banded, "TOTAL RM 9,999.00"))));
    EXPECT_TRUE(banded_scan.at(0).doc->pages.at(0).text_layer.empty()) << banded_scan[0].doc->pages[0].text_layer;
    // And a scan drawn inside a form, scaled by the form's matrix to fill the page.
    const auto in_form = runner.process(doc_of(
        "form.pdf", bytes_of(pdf_of_images({receipt_image(460, 930, false)}, "q 297.5 0 0 421 0 0 cm /Im0 Do Q", "TOTAL RM 9,999.00", "2 0 0 2 0 0"))));
    EXPECT_TRUE(in_form.at(0).doc->pages.at(0).text_layer.empty()) << in_form[0].doc->pages[0].text_layer;
    // A page box poppler clips (a crop box past the media box), or none (US Letter then), or a
    // form matrix poppler reads as the identity (7 entries; a name), does not hide the scan.
    const std::string full_page = "q 595 0 0 842 0 0 cm /Im0 Do Q";
    for (const std::string& boxes : {std::string("/MediaBox [0 0 595 842] /CropBox [-10 -10 1200 1700]"), std::string(""),
                                    std::string("/MediaBox [0 0 595]")}) {
        SCOPED_TRACE(boxes);
        const auto scan_in_box =
            runner.process(doc_of("box.pdf", bytes_of(pdf_of_images({receipt_image(460, 930, false)}, full_page, "TOTAL RM 9,999.00", "", false, boxes))));
        EXPECT_TRUE(scan_in_box.at(0).doc->pages.at(0).text_layer.empty()) << scan_in_box[0].doc->pages[0].text_layer;
    }
    for (const std::string& matrix : {std::string("1 0 0 1 0 0 0"), std::string("1 0 0 1 0 0")}) {
        SCOPED_TRACE(matrix);
        const auto odd_form =
            runner.process(doc_of("form.pdf", bytes_of(pdf_of_images({receipt_image(460, 930, false)}, full_page, "TOTAL RM 9,999.00", matrix))));
        EXPECT_TRUE(odd_form.at(0).doc->pages.at(0).text_layer.empty()) << odd_form[0].doc->pages[0].text_layer;
    }
    // A receipt photo stamped on a typed form as an annotation is what the page shows.
    const auto stamped = runner.process(doc_of(
        "stamped.pdf", bytes_of(pdf_of_images({receipt_image(460, 930, false)}, full_page, "TOTAL RM 9,999.00", "1 0 0 1 0 0", true))));
    EXPECT_TRUE(stamped.at(0).doc->pages.at(0).text_layer.empty()) << stamped[0].doc->pages[0].text_layer;
    // The same form drawn at a tenth of that size is a picture on a born-digital page.
    const auto small_form = runner.process(doc_of(
        "form.pdf", bytes_of(pdf_of_images({receipt_image(460, 930, false)}, "q 297.5 0 0 421 0 0 cm /Im0 Do Q", "TOTAL RM 12.50", "0.2 0 0 0.2 0 0"))));
    EXPECT_THAT(small_form.at(0).doc->pages.at(0).text_layer, HasSubstr("TOTAL RM 12.50"));
}

// libjpeg's own warning ("Premature end of JPEG file") went straight to stderr, through the
// operator's progress line, because Leptonica's JPEG reader installs libjpeg's default
// message handler. JPEGs are now decoded with libjpeg directly: its warning is in the
// document's error instead, and nothing reaches stderr.
// poppler renders a truncated JPEG inside a PDF part grey and says nothing (a corrupt one
// only to stderr), so each page's JPEGs are checked as a JPEG file is, before rendering
// (pdf_jpegs.hpp). A damaged one is noted on every page that draws it; the page is still
// read, even where a JPEG file that damaged would be refused, since the rest of the page may
// hold the receipt.
TEST(PdfPages, AJpegInsideAPdfIsCheckedAndADamagedOneMarksItsPage) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    test::TempDir dir;
    const fs::path gray = dir.path() / "gray.jpg";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -colorspace Gray " + gray.string()).c_str()), 0);
    const Bytes jpeg = read_bytes(gray);
    auto damage_of = [](const std::vector<Emitted>& out) {
        std::vector<std::string> found;
        for (const auto& t : out.at(0).doc->trace)
            if (t.event == kDamagedPageEvent) found.push_back(t.detail);
        return found;
    };

    auto whole = runner.process(doc_of("scan.pdf", bytes_of(pdf_of_jpeg(jpeg, 1240, 1748))));
    ASSERT_EQ(whole.at(0).doc->pages.size(), 1u);
    EXPECT_TRUE(damage_of(whole).empty());

    // Cut at 40%: rendered all the same (the top of the receipt is there), and noted with the
    // row of the picture as stored.
    const Bytes cut(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(jpeg.size() * 2 / 5));
    auto truncated = runner.process(doc_of("cut.pdf", bytes_of(pdf_of_jpeg(cut, 1240, 1748))));
    ASSERT_EQ(truncated.at(0).doc->pages.size(), 1u);
    EXPECT_GT(truncated[0].doc->pages[0].image.width, 0);
    ASSERT_EQ(damage_of(truncated).size(), 1u);
    EXPECT_THAT(damage_of(truncated)[0], ::testing::MatchesRegex("cut\\.pdf: page 1: its image /Im0: truncated JPEG: the data ends at row "
                                                                 "[0-9]+ of 1748, so [0-9]+% of the image is missing \\(libjpeg: Premature "
                                                                 "end of JPEG file.*\\)"));
    bool warned = false;
    for (const auto& line : runner.context().log_lines())
        warned |= line.level == LogLevel::Warn && line.message.find("cut.pdf: page 1: its image /Im0: truncated JPEG") != std::string::npos;
    EXPECT_TRUE(warned);

    // Junk before the end marker, in an image two pages draw: each page says so.
    Bytes junk = jpeg;
    junk.insert(junk.end() - 2, {0x12, 0x34, 0x56, 0x78, 0x9A});
    auto both = runner.process(doc_of("two.pdf", bytes_of(pdf_of_jpeg(junk, 1240, 1748, 2))));
    ASSERT_EQ(both.at(0).doc->pages.size(), 2u);
    const auto notes = damage_of(both);
    ASSERT_EQ(notes.size(), 2u);
    EXPECT_THAT(notes[0], HasSubstr("two.pdf: page 1: its image /Im0: damaged JPEG: parts of the page may be garbled (libjpeg: Corrupt JPEG data"));
    EXPECT_THAT(notes[1], HasSubstr("two.pdf: page 2: its image /Im0: damaged JPEG: parts of the page may be garbled"));

    // Only the end marker missing, after the last row: whole, as for a JPEG file.
    const Bytes no_end_marker(jpeg.begin(), jpeg.end() - 2);
    EXPECT_TRUE(damage_of(runner.process(doc_of("no-eoi.pdf", bytes_of(pdf_of_jpeg(no_end_marker, 1240, 1748))))).empty());
    // A line break before the start marker, which poppler skips: no damage.
    Bytes padded = jpeg;
    padded.insert(padded.begin(), {0x0D, 0x0A});
    EXPECT_TRUE(damage_of(runner.process(doc_of("padded.pdf", bytes_of(pdf_of_jpeg(padded, 1240, 1748))))).empty());
    // A damaged JPEG the resources list but no page draws is not on any page: no note.
    EXPECT_TRUE(damage_of(runner.process(doc_of("listed.pdf", bytes_of(pdf_of_jpeg(jpeg, 1240, 1748, 2, cut))))).empty());
    // A progressive JPEG cut after its first scan: poppler draws none of it, and says nothing.
    const fs::path progressive = dir.path() / "progressive.jpg";
    ASSERT_EQ(std::system(("convert " + gray.string() + " -interlace JPEG " + progressive.string()).c_str()), 0);
    const Bytes whole_progressive = read_bytes(progressive);
    const Bytes half_progressive(whole_progressive.begin(), whole_progressive.begin() + static_cast<std::ptrdiff_t>(whole_progressive.size() / 2));
    const auto missing = damage_of(runner.process(doc_of("prog.pdf", bytes_of(pdf_of_jpeg(half_progressive, 1240, 1748)))));
    ASSERT_EQ(missing.size(), 1u);
    EXPECT_THAT(missing[0], ::testing::MatchesRegex("prog\\.pdf: page 1: its image /Im0: truncated JPEG of several scans \\(progressive, or one "
                                                    "scan per colour\\): the data ends in scan [0-9]+, and poppler draws none of such an "
                                                    "image, so it is missing from the page \\(libjpeg: Premature end of JPEG file.*"));
}

// A scanner's black-and-white PDF stores the page as a CCITT fax image. Damaged, poppler
// draws what it can decode (the rest blank or smeared) and reports it only to its error
// callback, so the page comes out with words missing and, before, nothing said. The page is
// now marked damaged with poppler's words.
TEST(PdfPages, ADamagedFaxImageMarksItsPageWithPopplersReason) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    test::TempDir dir;
    const fs::path tif = dir.path() / "fax.tif", pdf = dir.path() / "fax.pdf";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -colorspace Gray -threshold 60% -compress Group4 " + tif.string()).c_str()), 0);
    ASSERT_EQ(std::system(("img2pdf " + tif.string() + " -o " + pdf.string()).c_str()), 0);
    const Bytes whole = read_bytes(pdf);
    const std::string text(whole.begin(), whole.end());
    const std::size_t filter = text.find("/CCITTFaxDecode");
    ASSERT_NE(filter, std::string::npos) << "img2pdf should keep the fax coding";
    const std::size_t data = text.find("stream\n", filter) + 7, end = text.find("endstream", data);
    ASSERT_LT(data, end);
    auto damage_of = [&](const Bytes& file, const std::string& name) {
        std::vector<std::string> found;
        auto out = runner.process(doc_of(name, file));
        EXPECT_EQ(out.at(0).doc->pages.size(), 1u);
        for (const auto& t : out.at(0).doc->trace)
            if (t.event == kDamagedPageEvent) found.push_back(t.detail);
        return found;
    };
    EXPECT_TRUE(damage_of(whole, "fax.pdf").empty());

    Bytes smeared = whole;  // 300 bytes scrambled in the middle of the coded rows
    for (std::size_t k = data + (end - data) / 2; k < data + (end - data) / 2 + 300; ++k) smeared[k] = static_cast<std::uint8_t>(smeared[k] * 7 + 13);
    const auto notes = damage_of(smeared, "smeared.pdf");
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_THAT(notes[0], ::testing::MatchesRegex("smeared\\.pdf: page 1: damaged image or content data: parts of the page may be blank or "
                                                  "garbled \\(poppler: .*CCITTFax.*\\)"));
}

// A page can draw a JPEG in other ways than an image XObject: as an inline image in its
// content (BI ... ID ... EI), as the soft mask of an image, inside a form it draws, or in
// an annotation's appearance (a photo stamped onto a page). poppler draws each, and says
// nothing of their damage either, so each is checked and named.
TEST(PdfPages, AJpegInlineInAMaskAFormOrAnAnnotationIsCheckedToo) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "dpi: 72");
    const Bytes jpeg = small_receipt_jpeg();
    ASSERT_FALSE(jpeg.empty());
    const Bytes cut(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(jpeg.size() * 2 / 5));
    auto text = [](const Bytes& b) { return std::string(b.begin(), b.end()); };
    auto stream = [](const std::string& dict, const std::string& data) {
        return "<< " + dict + " /Length " + std::to_string(data.size()) + " >>\nstream\n" + data + "\nendstream";
    };
    auto image = [&](const Bytes& bytes, const std::string& extra = "") {
        return stream("/Type /XObject /Subtype /Image /Width 240 /Height 338 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode" +
                          extra,
                      text(bytes));
    };
    // One page, 240 x 338 pt: `page_extra` goes into the page's dictionary; objects[k] is
    // object k + 5.
    auto one_page = [&](const std::string& page_extra, const std::string& content, const std::vector<std::string>& objects,
                        const std::string& catalog_extra = "") {
        std::vector<std::string> all = {"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + " >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 240 338] /Contents 4 0 R " + page_extra + " >>",
                                        stream("", content)};
        all.insert(all.end(), objects.begin(), objects.end());
        return bytes_of(pdf_file(all));
    };
    auto read = [&](const std::string& name, const Bytes& pdf) { return render_pdf(runner, name, pdf); };
    const std::string draw = "q 240 0 0 338 0 0 cm /Im0 Do Q";
    const std::string xobject = "/Resources << /XObject << /Im0 5 0 R >> >>";

    // Inline: poppler draws it (the receipt's print is on the page); cut, it is named by its
    // number in the content. "EI" inside the JPEG's bytes is not taken for the end of the data.
    auto inline_image = [&](const Bytes& bytes) {
        return "q 240 0 0 338 0 0 cm BI /W 240 /H 338 /CS /G /BPC 8 /F [/DCT] ID\n" + text(bytes) + "\nEI Q";
    };
    const RenderedPdf inline_whole = read("inline.pdf", one_page("", inline_image(jpeg), {}));
    EXPECT_TRUE(inline_whole.notes.empty());
    EXPECT_GT(inline_whole.ink, 0.002) << "poppler draws the inline JPEG";
    const RenderedPdf inline_cut = read("inline-cut.pdf", one_page("", "BI /W 1 /H 1 /CS /G /BPC 8 ID\n\x80\nEI " + inline_image(cut), {}));
    ASSERT_EQ(inline_cut.notes.size(), 1u);
    EXPECT_THAT(inline_cut.notes[0], HasSubstr("inline-cut.pdf: page 1: its inline image 2: truncated JPEG: the data ends at row "));
    Bytes ei_inside = jpeg;
    const std::string ei = " EI ";
    ei_inside.insert(ei_inside.end() - 2, ei.begin(), ei.end());
    const RenderedPdf inline_ei = read("inline-ei.pdf", one_page("", inline_image(ei_inside), {}));
    ASSERT_EQ(inline_ei.notes.size(), 1u);
    EXPECT_THAT(inline_ei.notes[0], HasSubstr("page 1: its inline image 1: damaged JPEG: parts of the page may be garbled"))
        << "the junk is read as part of the JPEG, not as its end";
    // An inline JPEG behind another filter is not checked here (the Flate named is not even
    // there); what poppler says of the Flate it cannot undo marks the page.
    const RenderedPdf inline_flate = read("inline-flate.pdf", one_page("", "BI /W 240 /H 338 /CS /G /BPC 8 /F [/Fl /DCT] ID\n" + text(cut) + "\nEI", {}));
    ASSERT_EQ(inline_flate.notes.size(), 1u);
    EXPECT_THAT(inline_flate.notes[0], HasSubstr("inline-flate.pdf: page 1: damaged image or content data: parts of the page may be blank or "
                                                 "garbled (poppler: "));
    // Behind a small image in a colour space of the resources, whose pixels hold " EI (".
    const RenderedPdf after_rgb = read("inline-rgb.pdf", one_page("/Resources << /ColorSpace << /CS0 [/ICCBased 5 0 R] >> >>",
                                                           "BI /W 3 /H 1 /CS /CS0 /BPC 8 ID \x01 EI (abc EI " + inline_image(cut),
                                                           {stream("/N 3 /Alternate /DeviceRGB", "")}));
    ASSERT_EQ(after_rgb.notes.size(), 1u);
    EXPECT_THAT(after_rgb.notes[0], HasSubstr("inline-rgb.pdf: page 1: its inline image 2: truncated JPEG"));

    // A soft mask: an uncompressed image whose mask is a cut JPEG.
    const std::string gray_pixels(240 * 338, '\x20');
    const Bytes masked = one_page(xobject, draw,
                                  {stream("/Type /XObject /Subtype /Image /Width 240 /Height 338 /ColorSpace /DeviceGray /BitsPerComponent 8 "
                                          "/SMask 6 0 R",
                                          gray_pixels),
                                   image(cut)});
    const RenderedPdf mask = read("mask.pdf", masked);
    ASSERT_EQ(mask.notes.size(), 1u);
    EXPECT_THAT(mask.notes[0], HasSubstr("mask.pdf: page 1: its image /Im0's soft mask: truncated JPEG"));

    // A form the page draws, which draws the image.
    const Bytes form = one_page("/Resources << /XObject << /Fm0 5 0 R >> >>", "/Fm0 Do",
                                {stream("/Type /XObject /Subtype /Form /BBox [0 0 240 338] /Resources << /XObject << /Im0 6 0 R >> >>", draw),
                                 image(cut)});
    ASSERT_EQ(read("form.pdf", form).notes.size(), 1u);
    EXPECT_THAT(read("form.pdf", form).notes[0], HasSubstr("form.pdf: page 1: its form /Fm0's image /Im0: truncated JPEG"));

    // A photo stamped on an empty page as an annotation: poppler draws its appearance. The
    // annotation is named by its place in /Annots (a null entry counts).
    const std::string layer_off = "/OCProperties << /OCGs [7 0 R] /D << /OFF [7 0 R] >> >>";
    auto stamped = [&](const Bytes& bytes, const std::string& extra, const std::string& catalog_extra = "",
                       const std::string& appearance = "/N 5 0 R") {
        return one_page("/Annots [null << /Type /Annot /Subtype /Link /Rect [0 0 1 1] >> << /Type /Annot /Subtype /Stamp /Rect [0 0 240 338] " +
                            extra + " /AP << " + appearance + " >> >>]",
                        "",
                        {stream("/Type /XObject /Subtype /Form /BBox [0 0 240 338] /Resources << /XObject << /Im0 6 0 R >> >>", draw), image(bytes),
                         "<< /Type /OCG /Name (layer) >>"},
                        catalog_extra);
    };
    const RenderedPdf stamp_whole = read("stamp.pdf", stamped(jpeg, ""));
    EXPECT_TRUE(stamp_whole.notes.empty());
    EXPECT_GT(stamp_whole.ink, 0.002) << "poppler draws the annotation's appearance";
    const RenderedPdf stamp_cut = read("stamp-cut.pdf", stamped(cut, ""));
    ASSERT_EQ(stamp_cut.notes.size(), 1u);
    EXPECT_THAT(stamp_cut.notes[0], HasSubstr("stamp-cut.pdf: page 1: its annotation 3's image /Im0: truncated JPEG"));
    // Its appearance as a dictionary of states with no /AS: poppler draws the only one.
    const RenderedPdf one_state = read("one-state.pdf", stamped(cut, "", "", "/N << /Stamped 5 0 R >>"));
    ASSERT_EQ(one_state.notes.size(), 1u);
    EXPECT_GT(one_state.ink, 0.002);
    // Hidden, or in a layer switched off, it is not drawn, and not noted.
    for (const auto& [extra, catalog] : std::vector<std::pair<std::string, std::string>>{{"/F 2", ""}, {"/OC 7 0 R", layer_off}}) {
        const RenderedPdf unseen = read("stamp-hidden.pdf", stamped(cut, extra, catalog));
        EXPECT_TRUE(unseen.notes.empty()) << extra;
        EXPECT_LT(unseen.ink, 0.0001) << extra;
    }
    // A membership dictionary over that layer: shown where its policy holds with the layer off.
    for (const auto& [policy, drawn] : std::vector<std::pair<std::string, bool>>{{"/AllOff", true}, {"/AnyOff", true}, {"/AnyOn", false}, {"/AllOn", false}}) {
        const RenderedPdf member = read("member.pdf", stamped(cut, "/OC << /Type /OCMD /OCGs [7 0 R] /P " + policy + " >>", layer_off));
        EXPECT_EQ(member.notes.size(), drawn ? 1u : 0u) << policy;
        EXPECT_EQ(member.ink > 0.002, drawn) << policy << ": poppler agrees";
    }
    // An appearance stream that does not say it is a form: poppler draws it all the same.
    const Bytes untyped = one_page("/Annots [<< /Type /Annot /Subtype /Stamp /Rect [0 0 240 338] /AP << /N 5 0 R >> >>]", "",
                                   {stream("/BBox [0 0 240 338] /Resources << /XObject << /Im0 6 0 R >> >>", draw), image(cut)});
    const RenderedPdf untyped_seen = read("untyped.pdf", untyped);
    EXPECT_EQ(untyped_seen.notes.size(), 1u);
    EXPECT_GT(untyped_seen.ink, 0.002) << "poppler draws it";
    // An appearance without resources of its own draws the page's /Im0, as poppler looks it up.
    const Bytes borrowed = one_page("/Resources << /XObject << /Im0 6 0 R >> >> /Annots [<< /Type /Annot /Subtype /Stamp /Rect [0 0 240 338] /AP << /N 5 0 R >> >>]",
                                    "", {stream("/Type /XObject /Subtype /Form /BBox [0 0 240 338]", draw), image(cut)});
    const RenderedPdf borrowing = read("borrow.pdf", borrowed);
    ASSERT_EQ(borrowing.notes.size(), 1u);
    EXPECT_THAT(borrowing.notes[0], HasSubstr("borrow.pdf: page 1: its annotation 1's image /Im0: truncated JPEG"));
    EXPECT_GT(borrowing.ink, 0.002) << "poppler draws it";
    // Nor an inline image in marked content of that layer.
    const RenderedPdf layered = read("layer.pdf", one_page("/Resources << /Properties << /MC0 5 0 R >> >>", "/OC /MC0 BDC " + inline_image(cut) + " EMC",
                                                    {"<< /Type /OCG /Name (layer) >>"},
                                                    "/OCProperties << /OCGs [5 0 R] /D << /OFF [5 0 R] >> >>"));
    EXPECT_TRUE(layered.notes.empty());
    EXPECT_LT(layered.ink, 0.0001);
}

// Some PDF tools store a JPEG behind another filter ([/FlateDecode /DCTDecode]). poppler
// undoes the outer filters and hands libjpeg the JPEG, damage and all, as for any other; so
// the check undoes them too (qpdf) and looks at the same JPEG.
TEST(PdfPages, AJpegBehindAnotherFilterIsCheckedToo) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "dpi: 72");
    const Bytes jpeg = small_receipt_jpeg();
    ASSERT_FALSE(jpeg.empty());
    const Bytes cut(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(jpeg.size() * 2 / 5));
    auto deflated = [](const Bytes& b) {
        uLongf size = compressBound(static_cast<uLong>(b.size()));
        std::string packed(size, '\0');
        EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(packed.data()), &size, b.data(), static_cast<uLong>(b.size()), 9), Z_OK);
        packed.resize(size);
        return packed;
    };
    auto hex = [](const std::string& b) {
        std::string out;
        for (unsigned char c : b) {
            char two[3];
            std::snprintf(two, sizeof two, "%02X", c);
            out += two;
        }
        return out + ">";
    };
    // One page, 240 x 338 pt, drawing /Im0, which is `data` under `filter`.
    auto page_drawing = [&](const std::string& filter, const std::string& data, const std::string& extra = "") {
        const std::string draw = "q 240 0 0 338 0 0 cm /Im0 Do Q";
        return bytes_of(pdf_file({"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                  "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 240 338] /Contents 4 0 R /Resources << /XObject << /Im0 5 0 R >> >> >>",
                                  "<< /Length " + std::to_string(draw.size()) + " >>\nstream\n" + draw + "\nendstream",
                                  "<< /Type /XObject /Subtype /Image /Width 240 /Height 338 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter " +
                                      filter + extra + " /Length " + std::to_string(data.size()) + " >>\nstream\n" + data + "\nendstream"}));
    };
    auto read = [&](const std::string& name, const Bytes& pdf) { return render_pdf(runner, name, pdf); };

    const RenderedPdf whole = read("flate.pdf", page_drawing("[/FlateDecode /DCTDecode]", deflated(jpeg)));
    EXPECT_TRUE(whole.notes.empty());
    EXPECT_GT(whole.ink, 0.002) << "poppler draws the JPEG behind the Flate";
    const RenderedPdf cut_seen = read("flate-cut.pdf", page_drawing("[/FlateDecode /DCTDecode]", deflated(cut)));
    ASSERT_EQ(cut_seen.notes.size(), 1u);
    EXPECT_THAT(cut_seen.notes[0], HasSubstr("flate-cut.pdf: page 1: its image /Im0: truncated JPEG: the data ends at row "));
    // Two filters before it, with their parameters given as an array of nulls.
    const RenderedPdf two = read("hex.pdf", page_drawing("[/ASCIIHexDecode /FlateDecode /DCTDecode]", hex(deflated(cut)), " /DecodeParms [null null null]"));
    ASSERT_EQ(two.notes.size(), 1u);
    EXPECT_THAT(two.notes[0], HasSubstr("hex.pdf: page 1: its image /Im0: truncated JPEG"));
    EXPECT_TRUE(read("hex-whole.pdf", page_drawing("[/AHx /Fl /DCT]", hex(deflated(jpeg)))).notes.empty())
        << "abbreviated filter names, which poppler takes in any stream, are undone too";
    ASSERT_EQ(read("hex-cut.pdf", page_drawing("[/AHx /Fl /DCT]", hex(deflated(cut)))).notes.size(), 1u);
    ASSERT_EQ(read("dct.pdf", page_drawing("/DCT", std::string(cut.begin(), cut.end()))).notes.size(), 1u);
    // The Flate itself cut short: poppler draws what it inflates, and the JPEG is cut there.
    const std::string packed = deflated(jpeg);
    const RenderedPdf short_flate = read("flate-short.pdf", page_drawing("[/FlateDecode /DCTDecode]", packed.substr(0, packed.size() / 2)));
    ASSERT_EQ(short_flate.notes.size(), 1u);
    EXPECT_THAT(short_flate.notes[0], HasSubstr("flate-short.pdf: page 1: its image /Im0: truncated JPEG"));
    EXPECT_GT(short_flate.ink, 0.0005) << "poppler draws the top of the receipt";
    // A predictor before it belongs to image samples, not to a JPEG: left to poppler (qpdf
    // would size its rows from this /Columns).
    EXPECT_TRUE(read("predictor.pdf", page_drawing("[/FlateDecode /DCTDecode]", deflated(cut),
                                                   " /DecodeParms [<< /Predictor 12 /Columns 2000000000 >> null]"))
                    .notes.empty());
    // A JPEG before another filter is not a JPEG file: not checked, and no note.
    EXPECT_TRUE(read("dct-first.pdf", page_drawing("[/DCTDecode /FlateDecode]", deflated(cut))).notes.empty());

    // Bad data in an outer filter (a character ASCIIHex does not have): poppler's decoder
    // stops there, and so does the check, which finds the JPEG cut (qpdf throws on it; that
    // once turned the check off for the whole file).
    std::string bad_hex = hex(std::string(jpeg.begin(), jpeg.end()));
    bad_hex[bad_hex.size() / 2] = 'Z';
    const RenderedPdf bad = read("bad-hex.pdf", page_drawing("[/AHx /DCT]", bad_hex));
    ASSERT_EQ(bad.notes.size(), 1u);
    EXPECT_THAT(bad.notes[0], HasSubstr("bad-hex.pdf: page 1: its image /Im0: truncated JPEG"));
    // Fewer parameters than filters: poppler reads the missing ones as null.
    ASSERT_EQ(read("short-parms.pdf", page_drawing("[/AHx /Fl /DCT]", hex(deflated(cut)), " /DecodeParms [null null]")).notes.size(), 1u);
    // The abbreviated keys, which poppler reads in any stream when the full ones are absent.
    ASSERT_EQ(read("f-key.pdf", page_drawing("null /F [/Fl /DCT]", deflated(cut))).notes.size(), 1u);
    const RenderedPdf f_whole = read("f-key-whole.pdf", page_drawing("null /F [/Fl /DCT]", deflated(jpeg)));
    EXPECT_TRUE(f_whole.notes.empty());
    EXPECT_GT(f_whole.ink, 0.002) << "poppler draws the JPEG its /F names";
    auto said_unchecked = [&](const std::string& name) {
        for (const auto& line : runner.context().log_lines())
            if (line.message.find(name + ": 1 of its JPEGs or pages are not checked for damage") != std::string::npos) return true;
        return false;
    };
    // Left to poppler, and said in the log: a predictor (also under /DP), more than 4 filters
    // before the JPEG, and one that inflates past twice the file's size (nested Flate).
    EXPECT_TRUE(read("dp-key.pdf", page_drawing("null /F [/Fl /DCT]", deflated(cut), " /DP [<< /Predictor 12 /Columns 99 >> null]")).notes.empty());
    EXPECT_TRUE(said_unchecked("dp-key.pdf"));
    std::string five_times(cut.begin(), cut.end());
    for (int k = 0; k < 5; ++k) five_times = deflated(Bytes(five_times.begin(), five_times.end()));
    EXPECT_TRUE(read("five.pdf", page_drawing("[/Fl /Fl /Fl /Fl /Fl /DCT]", five_times)).notes.empty());
    EXPECT_TRUE(said_unchecked("five.pdf"));
    Bytes padded_jpeg = jpeg;
    padded_jpeg.resize(jpeg.size() + (4u << 20), 0);
    const std::string packed_once = deflated(padded_jpeg);
    EXPECT_TRUE(read("bomb.pdf", page_drawing("[/Fl /Fl /DCT]", deflated(Bytes(packed_once.begin(), packed_once.end())))).notes.empty());
    EXPECT_TRUE(said_unchecked("bomb.pdf"));
}

TEST(PdfPages, LibraryMessagesReachTheErrorAndTheLogNotStderr) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    Bytes receipt = read_bytes(kReceipt);
    Bytes truncated(receipt.begin(), receipt.begin() + static_cast<std::ptrdiff_t>(receipt.size() / 3));
    ::testing::internal::CaptureStderr();
    const std::string error = error_of(runner, doc_of("photo.jpg", truncated));
    // Not a JPEG at all past its first bytes: libjpeg's fatal error, in the error too.
    Bytes mangled(receipt.begin(), receipt.begin() + 600);
    mangled.resize(2000, std::uint8_t{0x41});
    const std::string fatal = error_of(runner, doc_of("mangled.jpg", mangled));
    // A PNG cut short: Leptonica's complaint goes to the node's log.
    test::TempDir dir;
    ASSERT_EQ(std::system(("convert -size 300x300 plasma:fractal " + (dir.path() / "p.png").string() + " 2>/dev/null").c_str()), 0);
    Bytes png = read_bytes(dir.path() / "p.png");
    png.resize(png.size() / 2);
    (void)error_of(runner, doc_of("cut.png", png));
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(err, "") << "nothing of libjpeg's, libpng's or Leptonica's on stderr";
    EXPECT_THAT(error, HasSubstr("photo.jpg: truncated JPEG: the data ends at row "));
    EXPECT_THAT(error, HasSubstr("(libjpeg: Premature end of JPEG file"));
    EXPECT_THAT(fatal, HasSubstr("mangled.jpg: not a readable image (corrupt JPEG header: "));
    EXPECT_THAT(fatal, HasSubstr("libjpeg)"));
    EXPECT_THAT(error_of(runner, doc_of("cut.png", png)), HasSubstr("cut.png: corrupt PNG: "));
    EXPECT_THAT(error_of(runner, doc_of("cut.png", png)), HasSubstr("(libpng)"));
    // A BMP cut short: Leptonica's own complaint goes to the node's log.
    ::testing::internal::CaptureStderr();
    ASSERT_EQ(std::system(("convert -size 300x300 xc:gray " + (dir.path() / "p.bmp").string() + " 2>/dev/null").c_str()), 0);
    Bytes bmp = read_bytes(dir.path() / "p.bmp");
    bmp.resize(bmp.size() / 2);
    (void)error_of(runner, doc_of("cut.bmp", bmp));
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    bool routed = false;
    for (const auto& line : runner.context().log_lines()) routed |= line.message.rfind("leptonica: ", 0) == 0;
    EXPECT_TRUE(routed) << "Leptonica's complaint about the cut BMP should be in the node's log";
}

namespace docpipe::imaging::test_support {
void expect_leptonicas_pixels(const Image& img, PIX* pix) {
    bool gray = pixGetDepth(pix) < 32;
    if (PIXCMAP* cmap = pixGetColormap(pix)) {
        l_int32 has_color = 0;
        pixcmapHasColor(cmap, &has_color);
        gray = has_color == 0;
    }
    PIX* converted = gray ? pixConvertTo8(pix, 0) : pixConvertTo32(pix);
    EXPECT_EQ(img.width, pixGetWidth(pix));
    EXPECT_EQ(img.height, pixGetHeight(pix));
    EXPECT_EQ(img.dpi, pixGetXRes(pix));
    EXPECT_EQ(img.channels, gray ? 1 : 3);
    std::size_t differing = 0;
    for (int y = 0; y < img.height && y < pixGetHeight(converted); ++y)
        for (int x = 0; x < img.width && x < pixGetWidth(converted); ++x) {
            l_uint32 value = 0;
            pixGetPixel(converted, x, y, &value);
            const std::uint8_t* got = img.pixels->data() + (static_cast<std::size_t>(y) * img.width + x) * img.channels;
            if (!gray) {
                l_int32 r, g, b;
                extractRGBValues(value, &r, &g, &b);
                differing += got[0] != r || got[1] != g || got[2] != b;
            } else {
                differing += got[0] != value;
            }
        }
    EXPECT_EQ(differing, 0u);
    pixDestroy(&converted);
}
}  // namespace docpipe::imaging::test_support
using docpipe::imaging::test_support::expect_leptonicas_pixels;

// libpng's warnings (an sRGB profile it knows to be wrong, as many tools write) went to
// stderr too; now to the node's log, at debug level, and the page is read.
TEST(PdfPages, APngWarningGoesToTheLogAndThePageIsRead) {
    test::TempDir dir;
    const fs::path file = dir.path() / "w.png";
    ASSERT_EQ(std::system(("convert -size 40x30 xc:white " + file.string() + " 2>/dev/null").c_str()), 0);
    Bytes png = read_bytes(file);
    // A tEXt chunk with a bad CRC: libpng warns ("CRC error") and reads on.
    const std::string text = "tEXtComment\0hello";
    Bytes chunk = {0, 0, 0, static_cast<std::uint8_t>(text.size() - 4)};
    chunk.insert(chunk.end(), text.begin(), text.end());
    chunk.insert(chunk.end(), {0xDE, 0xAD, 0xBE, 0xEF});
    png.insert(png.begin() + 33, chunk.begin(), chunk.end());  // after the signature and IHDR
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    ::testing::internal::CaptureStderr();
    auto out = runner.process(doc_of("w.png", png));
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    EXPECT_EQ(out.at(0).doc->pages.at(0).image.width, 40);
    bool logged = false;
    for (const auto& line : runner.context().log_lines()) logged |= line.message.rfind("libpng: ", 0) == 0;
    EXPECT_TRUE(logged);
}

// The PNG decoder that replaced Leptonica's gives the pixels and the dpi Leptonica gave.
TEST(PngDecode, GivesLeptonicasPixelsAndDpi) {
    test::TempDir dir;
    const std::vector<std::pair<std::string, std::string>> variants = {
        {"rgb.png", "-density 200 -units PixelsPerInch"},
        {"rgba.png", "-alpha set -channel A -evaluate set 50% +channel"},
        {"rgb16.png", "-depth 16"},
        {"gray.png", "-colorspace Gray"},
        {"gray1.png", "-colorspace Gray -threshold 50% -type Bilevel -depth 1"},
        {"gray4.png", "-colorspace Gray -depth 4 -define png:bit-depth=4"},
        {"palette.png", "-colors 16 -type Palette PNG8:"},
        {"graypalette.png", "-colorspace Gray -colors 8 -type Palette PNG8:"},
        {"graya.png", "-colorspace Gray -alpha set -define png:color-type=4"},
        {"interlaced.png", "-interlace PNG"},
    };
    for (const auto& [name, options] : variants) {
        SCOPED_TRACE(name);
        const fs::path file = dir.path() / name;
        std::string out_spec = file.string();
        std::string opts = options;
        if (const auto at = opts.find("PNG8:"); at != std::string::npos) {  // a format prefix on the output name
            opts.erase(at);
            out_spec = "PNG8:" + out_spec;
        }
        ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -resize 15% " + opts + " " + out_spec + " 2>/dev/null").c_str()), 0);
        const Bytes bytes = read_bytes(file);
        const Part part{name, "image/png", std::make_shared<const Bytes>(bytes)};
        const Image img = imaging::decode_image(part, imaging::DecodeLimits{}).at(0).image;

        PIX* pix = pixReadMem(bytes.data(), bytes.size());
        ASSERT_NE(pix, nullptr);
        expect_leptonicas_pixels(img, pix);
        pixDestroy(&pix);
    }
}

// A JPEG cut short near its end, or with junk before its end marker, is mostly there: it
// used to fail as bad input, so a legible receipt (train 427) never reached the OCR. The
// page is now kept, and the document says what is damaged (a "damaged page" trace entry,
// which sends a claim to a person) and the log warns. A file cut early still fails.
TEST(PdfPages, AJpegDamagedNearItsEndIsKeptAndMarkedDamaged) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    const Bytes receipt = read_bytes(kReceipt);
    auto damage_of = [](const std::vector<Emitted>& out) {
        std::string found;
        for (const auto& t : out.at(0).doc->trace)
            if (t.event == kDamagedPageEvent) found += t.detail;
        return found;
    };

    Bytes nearly(receipt.begin(), receipt.end() - static_cast<std::ptrdiff_t>(receipt.size() / 50));
    auto out = runner.process(doc_of("nearly.jpg", nearly));
    ASSERT_EQ(out.at(0).doc->pages.size(), 1u);
    EXPECT_EQ(out[0].doc->pages[0].image.height, 1748);
    EXPECT_THAT(damage_of(out), ::testing::MatchesRegex(
                                    "nearly\\.jpg: page 1: damaged JPEG: the data ends at row [0-9]+ of 1748; the rows after it are blank or "
                                    "garbled \\(libjpeg: Premature end of JPEG file.*\\)"));

    Bytes junk_before_end = receipt;
    junk_before_end.insert(junk_before_end.end() - 2, {0x12, 0x34, 0x56, 0x78, 0x9A});
    auto junk = runner.process(doc_of("junk.jpg", junk_before_end));
    EXPECT_THAT(damage_of(junk), HasSubstr("junk.jpg: page 1: damaged JPEG: parts of the page may be garbled (libjpeg: Corrupt JPEG data: "));
    bool warned = false;
    for (const auto& line : runner.context().log_lines()) warned |= line.level == LogLevel::Warn && line.message.find("junk.jpg: page 1: damaged JPEG") != std::string::npos;
    EXPECT_TRUE(warned);

    // A progressive JPEG cut in half: each scan covers the whole page, so it is kept, marked.
    test::TempDir dir;
    const fs::path progressive = dir.path() / "progressive.jpg";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -interlace JPEG " + progressive.string()).c_str()), 0);
    Bytes cut = read_bytes(progressive);
    cut.resize(cut.size() / 2);
    auto blurred = runner.process(doc_of("progressive.jpg", cut));
    EXPECT_THAT(damage_of(blurred), ::testing::MatchesRegex("progressive\\.jpg: page 1: damaged JPEG: the data ends in scan [0-9]+; in a JPEG "
                                                            "of several scans that leaves the page blurred or its colours partly missing "
                                                            "\\(libjpeg: Premature end of JPEG file.*"));
    // ... but cut in its first scan, most of the page is missing.
    const Bytes whole_progressive = read_bytes(progressive);
    std::size_t first_scan = 0;
    for (std::size_t k = 2; k + 1 < whole_progressive.size(); ++k)
        if (whole_progressive[k] == 0xFF && whole_progressive[k + 1] == 0xDA) {
            first_scan = k;
            break;
        }
    ASSERT_GT(first_scan, 0u);
    const Bytes in_first_scan(whole_progressive.begin(), whole_progressive.begin() + static_cast<std::ptrdiff_t>(first_scan + 200));
    EXPECT_THAT(error_of(runner, doc_of("p1.jpg", in_first_scan)),
                HasSubstr("p1.jpg: truncated JPEG: the data ends in the first of its scans, so most of the page is missing (libjpeg: "));

    auto whole = runner.process(doc_of("whole.jpg", receipt));
    EXPECT_EQ(damage_of(whole), "") << "an undamaged JPEG has no such entry";

    // Only the end marker missing, after the last row: the page is whole.
    const Bytes no_end_marker(receipt.begin(), receipt.end() - 2);
    EXPECT_EQ(damage_of(runner.process(doc_of("no-eoi.jpg", no_end_marker))), "");
    // A warning about the header (an unknown JFIF revision) says nothing of the pixels.
    Bytes jfif2 = receipt;
    ASSERT_EQ(std::string(jfif2.begin() + 6, jfif2.begin() + 10), "JFIF");
    jfif2[11] = 2;
    EXPECT_EQ(damage_of(runner.process(doc_of("jfif2.jpg", jfif2))), "");

    // An end marker in the middle of the data: the rows after it are blank, as in a file cut
    // there ("premature end of data segment"), so it is refused the same way.
    std::size_t scan = 0;
    for (std::size_t k = 2; k + 1 < receipt.size(); ++k)
        if (receipt[k] == 0xFF && receipt[k + 1] == 0xDA) {
            scan = k;
            break;
        }
    Bytes early_end = receipt;
    early_end.insert(early_end.begin() + static_cast<std::ptrdiff_t>(scan + (receipt.size() - scan) / 5), {0xFF, 0xD9});
    EXPECT_THAT(error_of(runner, doc_of("early.jpg", early_end)),
                ::testing::MatchesRegex("early\\.jpg: corrupt JPEG: the data breaks at row [0-9]+ of 1748, so [0-9]+% of the page is missing "
                                        "\\(libjpeg: Corrupt JPEG data: .*\\)"));

    // 600 empty scans (a 200 KB file of 20,000 held a CPU for a minute): refused at once.
    Bytes endless(whole_progressive.begin(), whole_progressive.begin() + static_cast<std::ptrdiff_t>(first_scan));
    const std::size_t sos_length = (whole_progressive[first_scan + 2] << 8) | whole_progressive[first_scan + 3];
    const Bytes sos(whole_progressive.begin() + static_cast<std::ptrdiff_t>(first_scan),
                    whole_progressive.begin() + static_cast<std::ptrdiff_t>(first_scan + 2 + sos_length));
    for (int k = 0; k < 600; ++k) endless.insert(endless.end(), sos.begin(), sos.end());
    endless.insert(endless.end(), {0xFF, 0xD9});
    // (Each repeated scan also draws a warning, so the warning limit stops this one first.)
    const std::string endless_error = error_of(runner, doc_of("endless.jpg", endless));
    EXPECT_THAT(endless_error, HasSubstr("endless.jpg: corrupt JPEG: more than "));
    EXPECT_THAT(endless_error, HasSubstr("; not read further (libjpeg)"));

    Bytes half(receipt.begin(), receipt.begin() + static_cast<std::ptrdiff_t>(receipt.size() / 2));
    EXPECT_THAT(error_of(runner, doc_of("half.jpg", half)),
                ::testing::MatchesRegex("half\\.jpg: truncated JPEG: the data ends at row [0-9]+ of 1748, so [0-9]+% of the page is missing "
                                        "\\(libjpeg: Premature end of JPEG file.*\\)"));
}

// A JPEG with an EXIF APP1 segment holding only the orientation, right after SOI: as a phone
// writes a portrait photo whose pixels are stored sideways.
Bytes with_exif_orientation(const Bytes& jpeg, int orientation, bool big_endian) {
    auto u16 = [&](std::uint32_t v) {
        return big_endian ? Bytes{static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}
                          : Bytes{static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8)};
    };
    auto u32 = [&](std::uint32_t v) {
        Bytes hi = u16(v >> 16), lo = u16(v & 0xFFFF);
        Bytes out = big_endian ? hi : lo;
        const Bytes& second = big_endian ? lo : hi;
        out.insert(out.end(), second.begin(), second.end());
        return out;
    };
    Bytes tiff = big_endian ? Bytes{'M', 'M'} : Bytes{'I', 'I'};
    for (const Bytes& part : {u16(42), u32(8), u16(1), u16(0x0112), u16(3), u32(1), u16(static_cast<std::uint32_t>(orientation)), u16(0), u32(0)})
        tiff.insert(tiff.end(), part.begin(), part.end());
    Bytes app1 = {0xFF, 0xE1};
    const std::size_t length = 2 + 6 + tiff.size();
    app1.push_back(static_cast<std::uint8_t>(length >> 8));
    app1.push_back(static_cast<std::uint8_t>(length));
    for (char ch : std::string("Exif\0\0", 6)) app1.push_back(static_cast<std::uint8_t>(ch));
    app1.insert(app1.end(), tiff.begin(), tiff.end());
    Bytes out(jpeg.begin(), jpeg.begin() + 2);  // SOI
    out.insert(out.end(), app1.begin(), app1.end());
    out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
    return out;
}

// Phones store a portrait photo sideways and say so in EXIF (orientation 6); the OCR read
// such a receipt on its side. Each of the eight orientations now comes out upright, in
// either byte order, and an EXIF segment that lies about its offsets changes nothing.
TEST(JpegDecode, TheExifOrientationIsApplied) {
    test::TempDir dir;
    // The receipt through the same encoder as the variants below, so only the turn differs.
    const fs::path reference = dir.path() / "upright.jpg";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -quality 95 " + reference.string()).c_str()), 0);
    const Image upright = imaging::decode_image(Part{"r.jpg", "image/jpeg", std::make_shared<const Bytes>(read_bytes(reference))},
                                                imaging::DecodeLimits{})
                              .at(0)
                              .image;
    // How the pixels are stored for each orientation, made from the upright receipt.
    const std::map<int, std::string> stored = {{1, ""}, {2, "-flop"}, {3, "-rotate 180"}, {4, "-flip"},
                                               {5, "-transpose"}, {6, "-rotate -90"}, {7, "-transverse"}, {8, "-rotate 90"}};
    for (const auto& [orientation, op] : stored) {
        SCOPED_TRACE(orientation);
        const fs::path file = dir.path() / ("o" + std::to_string(orientation) + ".jpg");
        ASSERT_EQ(std::system(("convert " + kReceipt.string() + " " + op + " -quality 95 " + file.string()).c_str()), 0);
        const Bytes bytes = with_exif_orientation(read_bytes(file), orientation, orientation % 2 == 0);
        const Image img = imaging::decode_image(Part{"o.jpg", "image/jpeg", std::make_shared<const Bytes>(bytes)}, imaging::DecodeLimits{})
                              .at(0)
                              .image;
        ASSERT_EQ(img.width, upright.width);
        ASSERT_EQ(img.height, upright.height);
        ASSERT_EQ(img.channels, upright.channels);
        EXPECT_LT(mean_difference(img, upright), 3.0) << "not upright";
    }
    // An IFD offset past the segment's end: read as no orientation, without a crash.
    Bytes lying = with_exif_orientation(read_bytes(reference), 6, false);
    lying[2 + 4 + 6 + 4] = 0xF0;  // the IFD offset's low byte (little-endian)
    const Image img = imaging::decode_image(Part{"l.jpg", "image/jpeg", std::make_shared<const Bytes>(lying)}, imaging::DecodeLimits{})
                          .at(0)
                          .image;
    EXPECT_EQ(img.width, upright.width);
    EXPECT_EQ(mean_difference(img, upright), 0.0);
}

// The JPEG decoder that replaced Leptonica's gives the pixels and the dpi Leptonica gave, so
// the OCR reads the same page: colour, gray, CMYK (inverted, as Adobe writes it) and a
// density in dots per centimetre.
TEST(JpegDecode, GivesLeptonicasPixelsAndDpi) {
    test::TempDir dir;
    const std::vector<std::pair<std::string, std::string>> variants = {
        {"colour.jpg", "-density 200 -units PixelsPerInch"},
        {"gray.jpg", "-colorspace Gray"},
        {"cmyk.jpg", "-colorspace CMYK"},
        {"dpcm.jpg", "-units PixelsPerCentimeter -density 118"},
    };
    for (const auto& [name, options] : variants) {
        SCOPED_TRACE(name);
        const fs::path file = dir.path() / name;
        ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -resize 40% " + options + " " + file.string()).c_str()), 0);
        const Bytes bytes = read_bytes(file);
        const Part part{name, "image/jpeg", std::make_shared<const Bytes>(bytes)};
        const Image img = imaging::decode_image(part, imaging::DecodeLimits{}).at(0).image;

        PIX* pix = pixReadMemJpeg(bytes.data(), bytes.size(), 0, 1, nullptr, 0);
        ASSERT_NE(pix, nullptr);
        expect_leptonicas_pixels(img, pix);
        pixDestroy(&pix);
    }
}

TEST(PdfPages, BadInputGivesClearReasons) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "max_pages: 50");
    Bytes receipt = read_bytes(kReceipt);
    Bytes truncated(receipt.begin(), receipt.begin() + static_cast<std::ptrdiff_t>(receipt.size() / 3));
    EXPECT_THAT(error_of(runner, doc_of("photo.jpg", truncated)), HasSubstr("photo.jpg: truncated JPEG: the data ends at row "));
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
    // Cut off after its first page's objects: poppler rebuilds the index and finds no page. It
    // said "PDF without pages", and the sender was asked for nothing.
    // Laid out as img2pdf writes a scan: the image's stream before the page that draws it.
    const std::string scan = pdf_file({"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
                                       "<< /Length 20000 >>\nstream\n" + std::string(20000, 'x') + "\nendstream",
                                       "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>"});
    EXPECT_THAT(error_of(runner, doc_of("cut.pdf", bytes_of(scan.substr(0, scan.size() * 6 / 10)))),
                HasSubstr("cut.pdf: truncated PDF: the file stops before its end (no %EOF) and no page could be read; ask the sender"));
    // A photo saved under a .pdf name (or sent as application/pdf) is read as the photo it is:
    // it failed as "not a readable PDF (truncated or corrupt)".
    Document photo_as_pdf = doc_of("receipt.pdf", read_bytes(kReceipt));
    ASSERT_EQ(photo_as_pdf.parts[0].media_type, "application/pdf");
    EXPECT_EQ(error_of(runner, photo_as_pdf), "(no error)");
    // A page poppler refuses is refused with poppler's reason.
    const std::string bad_annots = pdf_file({"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                             "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Annots << /A 1 >> >>"});
    EXPECT_EQ(error_of(runner, doc_of("annots.pdf", bytes_of(bad_annots))),
              "annots.pdf: PDF page 1 cannot be read (poppler: error: Page annotations object (page 1) is wrong type (dictionary))");
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

// A thumbnail or a chat app's preview sent in place of the photo read nothing, and the claim
// said only "missing required fields". The page is now named as too small (a "small page"
// trace entry, which sends a claim to a person with the reason); a receipt photo is not.
TEST(PdfPages, APageTooSmallToReadIsNamedWithItsSize) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    const auto small_pages = [](const std::vector<Emitted>& out) {
        std::string found;
        for (const auto& t : out.at(0).doc->trace)
            if (t.event == kSmallPageEvent) found += t.detail;
        return found;
    };
    test::TempDir dir;
    const auto thumbnail = dir.path() / "thumb.jpg";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -resize 60x " + thumbnail.string()).c_str()), 0);
    auto out = runner.process(doc_of("thumb.jpg", read_bytes(thumbnail)));
    ASSERT_EQ(out.at(0).doc->pages.size(), 1u) << "still decoded and read: the reviewer sees it";
    EXPECT_EQ(small_pages(out),
              "page 1 of 'thumb.jpg' is only 60x85 pixels: too few for a receipt's print to be read (a thumbnail or a chat "
              "app's preview sent in place of the photo?); ask the sender for the original photo or scan");
    EXPECT_EQ(runner.context().counter("small_pages_total"), 1.0);

    EXPECT_EQ(small_pages(runner.process(doc_of("receipt.jpg", read_bytes(kReceipt)))), "");
    // The smallest labelled receipt, 439 x 1004 pixels, is not too small.
    const auto narrow = dir.path() / "narrow.jpg";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -resize 439x1004! " + narrow.string()).c_str()), 0);
    EXPECT_EQ(small_pages(runner.process(doc_of("narrow.jpg", read_bytes(narrow)))), "");
    EXPECT_EQ(runner.context().counter("small_pages_total"), 1.0);

    // Saved as a PDF, a thumbnail renders as a full page (here 620 x 875 at the default dpi):
    // its own pixels are what count.
    const auto gray_thumbnail = dir.path() / "thumb-gray.jpg";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -colorspace Gray -resize 200x282! " + gray_thumbnail.string()).c_str()), 0);
    auto pdf = runner.process(doc_of("thumb.pdf", bytes_of(pdf_of_jpeg(read_bytes(gray_thumbnail), 200, 282))));
    ASSERT_EQ(pdf.at(0).doc->pages.size(), 1u);
    EXPECT_GE(static_cast<long long>(pdf[0].doc->pages[0].image.width) * pdf[0].doc->pages[0].image.height, 120'000)
        << "the rendered page alone would pass";
    EXPECT_EQ(small_pages(pdf),
              "page 1 of 'thumb.pdf' draws its picture from an image of only 200x282 pixels: too few for a receipt's print to "
              "be read (a thumbnail or a chat app's preview sent in place of the photo?); ask the sender for the original "
              "photo or scan");
    EXPECT_EQ(runner.context().counter("small_pages_total"), 2.0);
    // A scan of the receipt's size in a PDF, drawn on the same page, is not named.
    const auto gray_scan = dir.path() / "scan-gray.jpg";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -colorspace Gray -resize 439x1004! " + gray_scan.string()).c_str()), 0);
    EXPECT_EQ(small_pages(runner.process(doc_of("scan.pdf", bytes_of(pdf_of_jpeg(read_bytes(gray_scan), 439, 1004))))), "");
    EXPECT_EQ(runner.context().counter("small_pages_total"), 2.0);
    // A thumbnail stored another way than JPEG is named by its stated size.
    const auto raw_thumbnail = dir.path() / "thumb.gray";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -colorspace Gray -resize 200x282! -depth 8 gray:" + raw_thumbnail.string()).c_str()), 0);
    EXPECT_THAT(small_pages(runner.process(doc_of("raw.pdf", bytes_of(pdf_of_jpeg(read_bytes(raw_thumbnail), 200, 282, 1, {}, "", ""))))),
                HasSubstr("page 1 of 'raw.pdf' draws its picture from an image of only 200x282 pixels"));
    EXPECT_EQ(runner.context().counter("small_pages_total"), 3.0);
    // A scan cut into bands, each under the limit, is not small together.
    std::vector<PdfImage> bands;
    std::string banded;
    for (int k = 0; k < 20; ++k) {
        bands.push_back(receipt_image(1240, 44, false));
        banded += "q 595 0 0 42.1 0 " + std::to_string(842.0 - 42.1 * (k + 1)) + " cm /Im" + std::to_string(k) + " Do Q ";
    }
    EXPECT_EQ(small_pages(runner.process(doc_of("banded.pdf", bytes_of(pdf_of_images(bands, banded))))), "");
    // Nor is a page of text drawn as outlines (here 30 filled boxes) beside a small logo, or
    // over a tiny background stretched across the page.
    std::string outlines;
    for (int k = 0; k < 30; ++k) outlines += std::to_string(40 + 10 * k) + " 400 6 9 re f ";
    EXPECT_EQ(small_pages(runner.process(doc_of("logo.pdf", bytes_of(pdf_of_images({receipt_image(200, 100, false)},
                                                                                      "q 150 0 0 75 400 740 cm /Im0 Do Q " + outlines))))),
              "");
    EXPECT_EQ(small_pages(runner.process(doc_of("background.pdf", bytes_of(pdf_of_images({receipt_image(60, 85, false)},
                                                                                            "q 595 0 0 842 0 0 cm /Im0 Do Q " + outlines))))),
              "");
    // A thumbnail in the middle of an A4 page, with white margins all round, is one still.
    EXPECT_THAT(small_pages(runner.process(doc_of("middle.pdf", bytes_of(pdf_of_images({receipt_image(200, 282, false)},
                                                                                          "q 200 0 0 282 197 280 cm /Im0 Do Q"))))),
                HasSubstr("page 1 of 'middle.pdf' draws its picture from an image of only 200x282 pixels"));
    // Drawn twice (two bands of one image), its pixels count once.
    EXPECT_THAT(small_pages(runner.process(doc_of("twice.pdf", bytes_of(pdf_of_images({receipt_image(250, 400, false)},
                                                                                         "q 595 0 0 421 0 421 cm /Im0 Do Q q 595 0 0 421 0 0 cm /Im0 Do Q"))))),
                HasSubstr("page 1 of 'twice.pdf' draws its picture from an image of only 250x400 pixels"));
    // A thumbnail cut in two halves is named by its pixels together.
    EXPECT_THAT(small_pages(runner.process(doc_of("halves.pdf", bytes_of(pdf_of_images(
                    {receipt_image(200, 141, false), receipt_image(200, 141, false)},
                    "q 595 0 0 421 0 421 cm /Im0 Do Q q 595 0 0 421 0 0 cm /Im1 Do Q"))))),
                HasSubstr("page 1 of 'halves.pdf' draws its picture from images of only 56400 pixels together"));
    EXPECT_EQ(runner.context().counter("small_pages_total"), 6.0);
}

// An animated WebP (a sticker, or a clip a chat app saved as one) failed as "truncated or
// corrupt": Leptonica reads still WebPs only. Its first frame is read now, as an animated
// GIF's was, and both say that there were more frames, so that a person looks at them.
TEST(PdfPages, AnAnimatedGifOrWebPGivesItsFirstFrameAndSaysThereAreMore) {
    auto runner = NodeRunner::from_plugin(kPlugin, "transform.pdf_pages", "{}");
    test::TempDir dir;
    const auto first = dir.path() / "first.png", second = dir.path() / "second.png";
    ASSERT_EQ(std::system(("convert " + kReceipt.string() + " -resize 400x564! " + first.string()).c_str()), 0);
    ASSERT_EQ(std::system(("convert -size 400x564 xc:white -fill black -draw 'rectangle 40,40 120,120' " + second.string()).c_str()), 0);
    const auto damaged_notes = [](const Document& doc) {
        std::vector<std::string> notes;
        for (const auto& t : doc.trace)
            if (t.event == kDamagedPageEvent) notes.push_back(t.detail);
        return notes;
    };
    for (const std::string ext : {"webp", "gif"}) {
        SCOPED_TRACE(ext);
        const auto animated = dir.path() / ("animated." + ext);
        ASSERT_EQ(std::system(("convert -delay 50 " + first.string() + " " + second.string() + " -loop 0 " + animated.string()).c_str()), 0);
        const auto out = runner.process(doc_of("animated." + ext, read_bytes(animated)));
        ASSERT_EQ(out.at(0).doc->pages.size(), 1u);
        const Image& image = out[0].doc->pages[0].image;
        ASSERT_TRUE(image.pixels);
        EXPECT_EQ(image.width, 400);
        EXPECT_EQ(image.height, 564);
        // The first frame, the receipt: mostly white paper with dark print, where the second
        // frame is a white canvas with one black square at its top left.
        std::size_t dark = 0;
        for (std::size_t i = 0; i < image.pixels->size(); i += static_cast<std::size_t>(image.channels)) dark += (*image.pixels)[i] < 100;
        const std::size_t count = static_cast<std::size_t>(image.width) * image.height;
        EXPECT_GT(dark, count / 100) << "the receipt's print";
        EXPECT_GT((*image.pixels)[(60 * 400 + 60) * image.channels], 100) << "not the second frame's square";
        const auto notes = damaged_notes(*out[0].doc);
        ASSERT_EQ(notes.size(), 1u);
        EXPECT_EQ(notes[0], fmt::format("animated.{}: page 1: an animated {} of 2 frames: only the first is read (the receipt may be in "
                                        "another frame); ask the sender for a still photo",
                                        ext, ext == "gif" ? "GIF" : "WebP"));
    }
    // A still one has no note.
    const auto still = dir.path() / "still.webp";
    ASSERT_EQ(std::system(("convert " + first.string() + " " + still.string()).c_str()), 0);
    const auto out = runner.process(doc_of("still.webp", read_bytes(still)));
    EXPECT_TRUE(damaged_notes(*out.at(0).doc).empty());
    EXPECT_EQ(out[0].doc->pages.at(0).image.width, 400);
}
