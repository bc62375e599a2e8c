// The page images the review UI shows for a parked document: sink.review encodes each page
// raster (the pixels the OCR read) as a PNG whose long side is at most kPreviewMaxSide, and
// stores it under its own key so the review record stays small; page_image() serves it.
//
// Contract:
// - The OCR word boxes are in raster pixels. A preview keeps the raster's aspect ratio
//   (each side scaled by `scale`, rounded), so a viewer that stretches the PNG over the
//   raster's width x height draws the boxes where the words are.
// - A page read from a born-digital PDF's text layer has no raster (and no OCR boxes): its
//   preview is rendered from the PDF itself (render_pdf_page_preview), scale 1.
// - Both functions are thread-safe (no shared state); they throw std::runtime_error with the
//   reason when Leptonica or poppler cannot read, render, scale or encode the page.
#pragma once

#include <optional>
#include <string>

#include "docpipe/document.hpp"

namespace docpipe::core::admin {

// Long enough for a receipt's small print on a laptop or a tablet, short enough that a
// review queue of many pages does not fill the state store: a 300 dpi A4 page becomes
// about 1131 x 1600, a few hundred kB as a PNG.
inline constexpr int kPreviewMaxSide = 1600;

struct PagePreview {
    std::string png;     // the PNG file's bytes
    int width = 0;       // the PNG's size in pixels
    int height = 0;
    double scale = 1.0;  // PNG pixels per raster pixel (1 when the raster was small enough)
};

// nullopt when the page has no raster (a PDF page read from its text layer).
std::optional<PagePreview> encode_page_preview(const Image& image, int max_side = kPreviewMaxSide);

// Page `page_index` (0-based) of the PDF in `pdf`, rendered so its long side is at most
// `max_side` pixels (and at most 300 dpi: a small page is not blown up past print quality).
PagePreview render_pdf_page_preview(const Bytes& pdf, int page_index, int max_side = kPreviewMaxSide);

// Keys: review_page/<job>/<doc>/<page index>. The prefix differs from review/<job>/, so a
// scan of the parked documents never meets a page image.
std::string review_page_key(const std::string& job_id, const std::string& doc_id, int page);
// Every page image of a job (doc_id empty) or of one of its documents.
std::string review_page_prefix(const std::string& job_id, const std::string& doc_id = {});

}  // namespace docpipe::core::admin
