// The page images the review UI shows for a parked document: sink.review encodes each page
// raster (the pixels the OCR read) as a PNG whose long side is at most kPreviewMaxSide, and
// stores it under its own key so the review record stays small; page_image() serves it.
//
// Contract:
// - The OCR word boxes are in raster pixels. A preview keeps the raster's aspect ratio
//   (each side scaled by `scale`, rounded), so a viewer that stretches the PNG over the
//   raster's width x height draws the boxes where the words are.
// - encode_page_preview is thread-safe (no shared state); it throws std::runtime_error with
//   the reason when Leptonica cannot scale or encode the raster.
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

// Keys: review_page/<job>/<doc>/<page index>. The prefix differs from review/<job>/, so a
// scan of the parked documents never meets a page image.
std::string review_page_key(const std::string& job_id, const std::string& doc_id, int page);
// Every page image of a job (doc_id empty) or of one of its documents.
std::string review_page_prefix(const std::string& job_id, const std::string& doc_id = {});

}  // namespace docpipe::core::admin
