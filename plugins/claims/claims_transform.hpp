// transform.claims: fills Document::fields with the claim (see docpipe/claim.hpp for the
// layout) from the document's OCR pages (or PDF text layer) and, when transform.mime put
// them there, the email's subject and body (attributes "subject", "body_text").
//
// Ownership/threading: holds the loaded Rules (immutable) and a stateless extractor;
// process() may run on several threads at once. A rules file that cannot be read or
// parsed fails construction with file:line:column; a confidence model file that is not
// valid (confidence_model.hpp) fails it naming the file, the field and the feature.
//
// Confidence: the receipt's total and date get the calibrated probability of being right
// (confidence_model.hpp) after the readings are merged and before the email is fused in;
// the extractor's own confidence stays in provenance.extractor_confidence (and in
// fields.readings), which is what transform.claims_reread gates on.
#pragma once

#include <memory>

#include "docpipe/component.hpp"
#include "extractor.hpp"

namespace docpipe::claims {

class ConfidenceModel;

class ClaimsTransform : public Transform, public FieldChecker {
public:
    static ComponentDescriptor describe();
    ClaimsTransform(const Config& config, Context& context);
    void process(const DocumentPtr& input, Outputs& out) override;
    // A reviewer's corrections, checked with the parsers extraction uses (field_check.hpp).
    std::map<std::string, std::string> check_fields(const nlohmann::json& values) const override;
    nlohmann::json normalize_fields(const nlohmann::json& values) const override;

    // The extraction without the graph (used by the tests and bench/claims_eval).
    // Readings of the receipt by earlier OCR passes (fields.readings, one entry per pass,
    // written by this node) are merged with the current one; `readings_out` gets the list
    // including the current reading.
    ClaimResult extract(const Document& doc, nlohmann::json* readings_out = nullptr) const;
    // Which OCR reading of the receipt the pages hold (attribute "ocr_reading", set by
    // transform.claims_reread); 1 when absent.
    static int reading_number(const Document& doc);
    static std::vector<TextLine> receipt_lines(const Document& doc);
    static std::vector<TextLine> email_lines(const Document& doc);
    static EmailContext email_context(const Document& doc);

private:
    Context& ctx_;
    bool use_email_;
    std::shared_ptr<const Rules> rules_;
    // Calibrated confidence of total and date (confidence_model.hpp); immutable.
    std::shared_ptr<const ConfidenceModel> model_;
    std::unique_ptr<ClaimExtractor> extractor_;
};

}  // namespace docpipe::claims
