// Turning a raw part (image or PDF bytes) into pages, within limits that protect the
// service from hostile or broken files. Every failure throws docpipe::BadInput whose text
// starts with the file name and says what is wrong ("receipt.pdf: encrypted PDF, no
// password"). Thread-safe: no shared state.
#pragma once

#include <string>
#include <vector>

#include "docpipe/document.hpp"

namespace docpipe::imaging {

struct DecodeLimits {
    int max_pages = 50;
    double max_megapixels = 100;   // per page, checked from the header before decoding
    std::size_t max_bytes = 50u << 20;
    int pdf_dpi = 300;
    bool pdf_text_layer = true;    // keep a born-digital page's text and skip rendering it
};

bool is_pdf(const Part& part);

// Silences Leptonica's and poppler's own stderr messages (once per process).
void quiet_libraries();

// Images: JPEG, PNG, TIFF (every page), BMP, GIF, WebP — whatever Leptonica reads.
std::vector<Page> decode_image(const Part& part, const DecodeLimits& limits);
// PDFs through poppler: each page rendered at limits.pdf_dpi, or its text layer kept.
std::vector<Page> decode_pdf(const Part& part, const DecodeLimits& limits);

}  // namespace docpipe::imaging
