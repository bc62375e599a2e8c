// transform.ocr_lines — reads a few chosen lines of a page again, each cropped from the
// page image with a margin, scaled up and recognised as one text line (Tesseract psm 7).
//
// Why: when a receipt's total or date comes out weak, the evidence is one or two lines. A
// whole-page second reading costs as much as the first; a line is a few hundred pixels and
// reads in a fraction of that, and a single-line read of a scaled-up crop fixes misread
// digits and decimal points that the page reading lost (measured in bench/claims_eval).
//
// Contract (what the node before it and the node after it rely on):
//   in:  fields["reread_lines"] = {"reading": N, "lines": [{"page": P, "line": L,
//        "box": [x, y, width, height], "why": "total_amount"}, ...]}  (set by
//        transform.claims_reread in `mode: lines`); boxes in the page image's pixels, L the
//        index into page.ocr->lines. Pages keep their first OCR reading.
//   out: fields["line_readings"] = {"reading": N, "lines": [{"page", "line", "text",
//        "confidence", "box", "words": [{"text", "confidence"}]}]}; transform.claims puts
//        each text in place of line L for reading N and merges that reading's fields with
//        the earlier ones. A region off the page or without pixels is left out (named in
//        the trace), never an error: the first reading stands.
// A document without reread_lines passes through unchanged.
//
// Ownership/threading: the component owns its engine pool; process() may run on
// `concurrency` threads at once, each borrowing one engine.
#pragma once

#include <chrono>

#include "docpipe/component.hpp"
#include "engine_pool.hpp"

namespace docpipe::tesseract_ocr {

class LineReader : public Transform {
public:
    static ComponentDescriptor describe();
    LineReader(const Config& config, Context& context);
    void process(const DocumentPtr& input, Outputs& out) override;

    // The crop of `box` (page pixels) with a margin of a share of its height, in gray, scaled
    // so the line is about `line_height` pixels tall (never down, at most 4x). Empty when the
    // box does not overlap the image. `scale` and `origin` map crop pixels back to the page.
    struct Crop {
        Image image;
        double scale = 1;
        int origin_x = 0, origin_y = 0;
    };
    static Crop crop_line(const Image& page, const Box& box, int line_height);

private:
    Context& ctx_;
    int line_height_;
    int max_lines_;
    std::chrono::milliseconds timeout_;
    int default_dpi_;
    EnginePool pool_;
};

}  // namespace docpipe::tesseract_ocr
