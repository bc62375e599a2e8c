// TIFF pages (one per directory) read with libtiff itself, for the reasons JPEGs and PNGs are
// read with libjpeg and libpng (decode.cpp): Leptonica's TIFF reader drops libtiff's reason
// ("TIFF page 1 cannot be decoded", not "Read error on strip 3"), cannot read a 16-bit page
// with alpha, and does not say which rows of a damaged page are whole.
//
// Contract: thread-safe, no shared state. Every libtiff message is kept per file (libtiff
// 4.5's per-handle handlers), never printed: errors go into the BadInput or the damage
// line, warnings to the node's log at debug level. The bytes are only borrowed for the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "docpipe/document.hpp"

namespace docpipe::imaging {

// What a TIFF page's header says, read before anything is decoded.
struct TiffPage {
    int directory = 0;                                 // libtiff's directory (thumbnails and masks are skipped)
    std::int64_t stored_width = 0, stored_height = 0;  // as the pixels are stored
    std::int64_t width = 0, height = 0;                // as the page will come out: square pixels, upright
    bool gray = false;                                 // bilevel or gray (with or without alpha)
    int orientation = 1;                               // the Orientation tag: 1 is as stored
    double x_dpi = 0, y_dpi = 0;                       // 0: not stated
    std::size_t decoder_bytes = 0;                     // libtiff's buffers for one strip or tile
};

// Every page's header, checked by libtiff (TIFFRGBAImageOK) so that a page it cannot decode
// fails here, with its reason. A reduced-resolution copy (a scanner's thumbnail) or a
// transparency mask is not a page. Throws BadInput ("scan.tif: corrupt TIFF: ... (libtiff: ...)")
// for a file libtiff cannot open, a page it cannot describe, or more than max_pages pages.
std::vector<TiffPage> read_tiff_pages(const std::string& name, const std::uint8_t* data, std::size_t size, int max_pages);

// A page (page number `number`, from 1, for the messages) as stored: gray stays one channel,
// everything else becomes RGB, alpha is laid over white paper. The dpi is the horizontal one.
//
// A strip or tile libtiff cannot read (a truncated file, corrupt compressed data) leaves its
// rows blank. When those rows are more than a tenth of the page, the page is bad input naming
// the first of them; otherwise it is kept and `damage` says which rows are missing, as a
// damaged JPEG is kept, so that a person checks what was read from it. A band decoded with
// a codec's warning ("Premature EOL" in a fax, "Premature end of JPEG file") is kept, and
// `damage` names its rows too: the codec lost or garbled some of them.
Image decode_tiff_page(const std::string& name, const std::uint8_t* data, std::size_t size, const TiffPage& page, int number,
                       std::string& damage);

// A fax's pixels are not square: "standard" fax resolution is 204 x 98 dpi, so the page is
// stored at half its height and the OCR sees squashed letters. The image stretched along its
// coarser axis to the finer one's dpi (linear interpolation); unchanged when the two differ
// by less than 10%, or when either is unknown or they differ more than 4-fold (no scanner
// or fax does: a header that says so is wrong, and stretching 5-fold would only waste memory).
Image to_square_pixels(const Image& in, double x_dpi, double y_dpi);
// The size to_square_pixels will give.
void square_size(std::int64_t& width, std::int64_t& height, double x_dpi, double y_dpi);

}  // namespace docpipe::imaging
