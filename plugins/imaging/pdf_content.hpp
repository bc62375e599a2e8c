// What one PDF content stream draws, read from its operators: the XObjects it names with `Do`
// and the JPEGs it holds as inline images (BI ... ID data EI), each with the /OC
// marked-content sections around it, which optional content may switch off.
//
// Why its own reader: pdf_jpegs.cpp must know which images a page draws, and where an inline
// image's data ends, which no qpdf call says without decoding the image. The rules follow
// poppler's, since what poppler draws is what is checked: a JPEG inline image ends where its
// own structure (marker segments, entropy-coded data, end marker) ends; an unfiltered one
// after its width x height x bits; any other at the first "EI" after white space.
//
// Contract: pure functions of the bytes given; thread-safe; never throw (beyond
// std::bad_alloc). The work is linear in the content's size: a JPEG's structure is followed
// within a budget of twice the content's size for the whole stream, past which an inline
// JPEG ends at its first "EI".
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace docpipe::imaging {

// An /OC marked-content section ("/OC /MC0 BDC ... EMC"): optional content, which a view
// may switch off, hiding what is inside.
struct OptionalSection {
    std::string name;  // its resource name in /Properties, "#xx" escapes decoded
    int parent = -1;   // the /OC section it is in, or -1
};

struct ContentDraw {
    // The innermost /OC section the operator is in (an index into ContentDraws::sections),
    // or -1. The sections around it follow `parent`: each section is kept once, however many
    // operators it holds, so a stream of nested sections costs no more than its length.
    int section = -1;
    // The area the operator's unit square covers, in the units of the space the stream is
    // drawn in (before the matrix of whatever draws the stream): the absolute determinant of
    // the transformation in force (`cm`, saved and restored by `q` and `Q`). An image fills
    // that unit square, so this is its size on the page, the share of it a scan takes.
    double area = 1.0;
};

struct ContentXObject : ContentDraw {
    std::string name;  // "/Im0"
};

struct ContentInlineJpeg : ContentDraw {
    int number = 0;     // the inline image's number in the stream, counting every inline image from 1
    std::string bytes;  // its stored data: a JPEG file, or what is left of one
};

// Any inline image, JPEG or not, by its stated size (0 where its dictionary does not say).
struct ContentInlineImage : ContentDraw {
    std::uint64_t width = 0, height = 0;
};

struct ContentDraws {
    // Path-painting and text-showing operators (f, S, B..., Tj, TJ, ', "): a page drawn with
    // many of them shows vector print (text drawn as outlines, or glyphs without a text layer),
    // not only its pictures.
    std::size_t marks = 0;
    // A `cm` came deeper than the saved transformations go (over 4096 `q` open): the areas
    // after it are not known.
    bool areas_unknown = false;
    std::vector<ContentXObject> xobjects;
    std::vector<ContentInlineJpeg> inline_jpegs;
    std::vector<ContentInlineImage> inline_images;
    std::vector<OptionalSection> sections;
};

// The names of the /OC sections around `section`, outermost first (for tests and logs).
std::vector<std::string> sections_around(const ContentDraws& draws, int section);

// A name token's text ("/Im#30", with its slash) with its "#xx" escapes decoded ("/Im0").
std::string decoded_pdf_name(std::string_view raw);

// How many components a device colour space has, by its name or its inline abbreviation
// ("/DeviceRGB", "/RGB": 3; an indexed space: 1); 0 for any other name.
int device_colour_components(std::string_view space);

// The length of the JPEG that starts at `at` (white space before its start marker is
// skipped, and counted), found by following its structure to its end marker; 0 when it does
// not start with a start marker, or its structure breaks before an end marker (a JPEG cut
// short runs into whatever follows it, and meets another start marker or garbage). Reads at
// most `budget` bytes and segments, taken off it; 0 when that runs out.
std::size_t jpeg_length(std::string_view bytes, std::size_t at, std::size_t& budget);

// A light tokenizer: comments, literal and hex strings and inline image data are stepped
// over, so text shown on the page or bytes of an image are not taken for an operator; an
// operator inside an array or dictionary is a member of it, not run; and, as poppler does,
// reading stops at an operator given fewer operands than it takes ("Do" alone, "cm" with
// five numbers): poppler draws nothing of the stream after it.
//
// `components_of`, when given, says how many colour components a colour space named in the
// resources has (0 when it cannot tell), so that an unfiltered inline image whose /CS is
// such a name is sized as poppler sizes it.
using ColourSpaceComponents = std::function<int(const std::string& name)>;
ContentDraws content_draws(std::string_view content, const ColourSpaceComponents& components_of = {});

}  // namespace docpipe::imaging
