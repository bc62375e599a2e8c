// transform.claims_reread: sends a receipt whose key fields came out weak back for another
// OCR reading, instead of straight to review.
//
// Why: Tesseract fails on different receipts with different settings (measured on SROIE:
// a second reading with another page segmentation fixed totals and dates the first one
// misread). A claim whose total or date is below `below` (or below the field's own threshold
// in `field_below`: {service_date: 0.87} in the shipped pipelines) leaves on port `reread` with its
// OCR cleared, so the OCR node wired after that port reads the page again its own way; the
// transform.claims after it merges the readings (ClaimExtractor::merge_readings). The
// confidence compared with `below` is the extractor's own (provenance.extractor_confidence,
// before calibration by confidence_model.hpp) when the field has one: the calibrated
// model was fitted on readings chosen that way, so the gate keeps them the same. Claims
// that are good enough, have no image to read again, or were already read `max_readings`
// times leave on `done`.
//
// Graph:   claims -> reread;  reread.done -> router;
//          reread.reread -> ocr_layout -> claims_again -> router
//
// `mode: lines` reads less: the page keeps its OCR, and fields.reread_lines names the weak
// values' lines (and their runners-up's) with their boxes for transform.ocr_lines, which
// reads each cropped line alone (psm 7); transform.claims after it puts those readings in
// place of the lines and merges only the fields that were read again, and only where the
// value came from a line it read or those lines changed it (else the value is the page
// reading's own, and that reading has no second say). The value's line is found in the
// page's current reading by its box, else its text (after a merge it may come from an
// earlier reading, numbered otherwise). A weak field with no value, or whose line
// the current reading does not have, has nothing to point at: the claim leaves on `done`
// for a page gate after it.
//   claims -> lines_gate;  lines_gate.reread -> ocr_lines -> claims_lines -> page_gate
//   lines_gate.done -> page_gate
//
// Ownership/threading: stateless after construction; process() may run concurrently.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "docpipe/component.hpp"

namespace docpipe::claims {

class RereadGate : public Transform {
public:
    static ComponentDescriptor describe();
    RereadGate(const Config& config, Context& context);
    void process(const DocumentPtr& input, Outputs& out) override;

    // The fields that are weak (missing or below the threshold), each with why; empty =
    // good enough. `names`, when given, gets the names of those below the threshold.
    std::vector<std::string> weak_fields(const Document& doc, std::vector<std::string>* names = nullptr) const;

    // lines mode: the lines to read again for these fields, as transform.ocr_lines takes
    // them ({page, line, box, why}); the value's own line first, then its runners-up'.
    // `covered` gets the fields whose own line is among them (only those are read again).
    nlohmann::json lines_to_read(const Document& doc, const std::vector<std::string>& fields,
                                 std::vector<std::string>* covered = nullptr) const;

    // The index in `ocr` (the page's current reading) of the line a field's provenance
    // names, found by the provenance's box or text when it has them; -1 when that reading
    // has no such line.
    static int line_in_current_reading(const OcrResult& ocr, const nlohmann::json& provenance);

private:
    double threshold(const std::string& field) const;  // field_below's, else below_

    Context& ctx_;
    double below_;
    std::map<std::string, double> field_below_;
    std::vector<std::string> fields_;
    int max_readings_;
    bool lines_mode_;
    bool calibrated_;  // compare the calibrated confidence, not the extractor's own
    int max_lines_;
};

}  // namespace docpipe::claims
