// The JPEG images that a PDF's pages draw, as the bytes stored in the file, read with qpdf.
//
// Why: poppler decodes a PDF's JPEGs (DCTDecode streams) with libjpeg's default message
// output. A truncated one renders part grey and says nothing; a corrupt one prints "Corrupt
// JPEG data: ..." to stderr and nowhere else. poppler-cpp offers no hook for either. So the
// decoder (decode.cpp) reads each page's JPEGs here and checks them itself, as it checks a
// JPEG file, before poppler renders the page; a damaged one gets the page a `damaged page`
// note instead of passing unseen.
//
// Contract: a pure function of the bytes; thread-safe (each call parses with its own qpdf
// object, which prints nothing: its warnings are suppressed). It never throws. poppler stays
// the judge of whether a PDF can be read at all, so a file qpdf cannot parse, or whose page
// count qpdf sees differently from poppler's, gives no images and a reason in `why_not`
// (for the node's log). Each image is returned once, however many pages draw it, and is
// copied out of the file, all of them together at most twice the file's size (a hostile file
// can point many image objects at one large run of bytes); the JPEGs past that, or past
// kMaxJpegsPerPage on a page, are counted in `unchecked` and left to poppler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace docpipe::imaging {

struct PdfJpeg {
    std::vector<std::uint8_t> bytes; // the JPEG file: the stream's stored data, or what qpdf undid of its other filters
};

// An image's size in its own pixels, as its dictionary states it (/Width, /Height).
struct DrawnSize {
    std::int64_t width = 0, height = 0;
    std::int64_t pixels() const { return width * height; }
};

// The pictures one page draws, whatever their filter (JPEG, Flate, JBIG2, CCITT, JPX; image
// XObjects in its content, the forms and annotation appearances it draws, and inline
// images), by their stated sizes and the share of the page each covers (its crop box clipped
// to its media box, as poppler renders it). Together, so that a scan a driver cut into bands
// counts as the one scan it is. Not looked at: clipping, and patterns.
struct PageImages {
    DrawnSize largest;          // the largest one drawn, in its own pixels
    std::int64_t pixels = 0;    // their own pixels together, each image once however often drawn
    double coverage = 0;        // the share of the page they cover together (overlaps counted twice; at most 1 each)
    bool coverage_known = true; // false where the page's size, or where an image lands, could not be told
    std::size_t marks = 0;      // path-painting and text-showing operators (pdf_content.hpp), forms' included
    bool incomplete = false;    // its content or a form was too large or nested too deep to read whole
};

struct PdfJpegs {
    std::vector<PdfJpeg> images;                   // each image once
    std::vector<std::vector<std::size_t>> pages;   // per page, in page order: indices into images
    std::vector<std::vector<std::string>> names;   // per page: each of those images, as the page's note names it:
                                                   // "its image /Im0", "its image /Im0's soft mask", "its inline
                                                   // image 2", "its form /Fm0's image /Im1", "its annotation 1's image /Im0"
    std::vector<PageImages> drawn;                 // per page: the pictures it draws
    std::size_t copied_bytes = 0;                  // the images' bytes together: at most twice the file's size
    std::size_t unchecked = 0;                     // JPEGs, and pages, left out by the limits below
};

// At most this many JPEGs are taken from one page (a receipt page draws one or two); the
// rest are left to poppler unchecked, so a page of ten thousand tiny images costs nothing.
inline constexpr std::size_t kMaxJpegsPerPage = 16;

// The JPEG images (DCTDecode streams: alone, or behind filters qpdf undoes, as in
// [/FlateDecode /DCTDecode]) each page draws: an image XObject named
// by a `Do` in its content, in a form XObject it draws, or in the normal appearance of an
// annotation shown on screen; the soft mask of such an image; and inline images (BI ... ID
// ... EI) in those contents (pdf_content.hpp reads the operators). What poppler does not
// draw is left out: an image its resources list but no content draws (scanners list every
// page's image in one shared dictionary), a hidden or no-view annotation, and optional
// content switched off in the document's default view (an annotation's or XObject's /OC, or
// an /OC marked-content section, by poppler's rules; a membership dictionary's /VE
// expression is not evaluated). Names are looked up as poppler looks them up: in a form's
// own resources, then those around it, out to the page's (an annotation's appearance too).
// Not looked at: patterns, and inline images behind another filter ([/Fl /DCT]). Counted in
// `unchecked`: image JPEGs behind filters with a predictor, behind more than 4 filters, or
// behind one qpdf does not undo (JBIG2, JPX).
// A page whose content is over 32 MB decoded, or whose forms nest deeper than 8, counts once
// in `unchecked`. std::nullopt, with `why_not` set, where qpdf cannot tell.
std::optional<PdfJpegs> pdf_jpegs(const std::uint8_t* data, std::size_t size, int expected_pages, std::string& why_not);

}  // namespace docpipe::imaging
