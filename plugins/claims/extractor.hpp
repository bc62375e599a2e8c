// ClaimExtractor: claim fields from a receipt's OCR lines and the claim email's subject and
// body, each with a value, a confidence (0..1) and where it was read (provenance).
//
// Stateless apart from the Rules it holds by reference; one instance may be used from
// several threads at once. The Rules must outlive it.
#pragma once

#include <algorithm>
#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amount.hpp"
#include "date.hpp"
#include "rules.hpp"

namespace docpipe::claims {

struct TextLine {
    std::string text;
    std::string source = "receipt";  // receipt | email_subject | email_body
    int page = -1;                   // receipt page (0-based); -1 for email text
    int index = 0;                   // line number within its page or text
    std::optional<std::array<int, 4>> box;  // x, y, width, height in page pixels
    double ocr_confidence = 100;     // 0..100 (Tesseract's scale); 100 for typed email text
    // The OCR engine's confidence per word, with the word's byte range in `text`, so a value
    // is judged by its own characters and not by noise elsewhere on the line. Empty for
    // email text and text layers.
    struct WordConfidence {
        std::size_t begin = 0, end = 0;
        double confidence = 100;
    };
    std::vector<WordConfidence> word_confidences;
};

struct FieldValue {
    nlohmann::json value;
    double confidence = 0;   // 0..1
    std::string source;      // receipt | email_subject | email_body | receipt+email
    nlohmann::json provenance = nlohmann::json::object();

    // The most this value may score, if anything caps it: provenance's `confidence_cap`
    // (set by a rule, held whatever the OCR readings agree on) and `doubt_cap` (doubt about
    // one reading, such as a mended year, lifted when another reading gives the same value
    // without it: ClaimExtractor::merge_readings). The lower wins.
    std::optional<double> cap() const {
        std::optional<double> lowest;
        for (const char* key : {"confidence_cap", "doubt_cap"})
            if (const auto it = provenance.find(key); it != provenance.end() && it->is_number())
                lowest = std::min(lowest.value_or(1.0), it->get<double>());
        return lowest;
    }
};

using FieldMap = std::map<std::string, FieldValue>;

struct ClaimResult {
    FieldMap fields;
    double confidence = 0;              // overall, from the required fields
    std::vector<std::string> warnings;  // conflicts, failed cross-checks, guesses
    std::vector<std::string> missing;   // required fields with no value

    // {"claim": {name: {value, confidence, source, provenance}}, "confidence", "warnings", "missing"}
    // — the layout docpipe/claim.hpp documents.
    nlohmann::json to_json() const;
};

// The fields that decide the overall confidence. "member_id|policy_number": either one.
inline const std::vector<std::string>& required_fields() {
    static const std::vector<std::string> f = {"total_amount", "service_date", "receipt_number", "member_id|policy_number"};
    return f;
}

struct EmailContext {
    int year = 0;   // the email's year, for dates written without one ("18th of December"); 0 = unknown
    int month = 0;
    int day = 0;
};

class CandidateChooser;

class ClaimExtractor {
public:
    // `total_chooser` and `date_chooser`, when given, pick the total and the service date
    // among their candidates (candidate_chooser.hpp; weights fitted on labelled receipts);
    // without them the hand-set scores do. They must outlive the extractor, as the Rules must.
    explicit ClaimExtractor(const Rules& rules, const CandidateChooser* total_chooser = nullptr,
                            const CandidateChooser* date_chooser = nullptr)
        : rules_(rules), total_chooser_(total_chooser), date_chooser_(date_chooser) {}

    // Keep every total and date candidate with its features in the field's
    // provenance.candidates (for fitting the choosers; off in the pipeline, where nobody reads them).
    void keep_candidates(bool keep) { keep_candidates_ = keep; }

    FieldMap from_receipt(const std::vector<TextLine>& lines, std::vector<std::string>& warnings) const;
    FieldMap from_email(const std::vector<TextLine>& lines, const EmailContext& context, std::vector<std::string>& warnings) const;
    // Receipt and email fused: agreement raises confidence, a conflict lowers it and warns
    // with both values.
    ClaimResult combine(FieldMap receipt, FieldMap email, std::vector<std::string> warnings) const;

    // Several OCR readings of the same receipt (other preprocessing or segmentation), each
    // already extracted with from_receipt, into one: per field, readings that agree support
    // each other; the best-supported value wins; a disagreement lowers its confidence and
    // adds a warning naming the values. `readings` must not be empty; the first is the
    // primary reading (its fields win ties).
    //
    // `judge`, when given, breaks ties in readings instead: among the values read by the
    // most readings, it rates each as if its reading were the only one (the calibrated
    // model does: arithmetic, labels, the value's own OCR confidence), and the best rated
    // wins. Two readings that disagree have no majority, and the engine's confidence alone
    // picked the wrong one about as often as the right one (train receipts, a page and a
    // line reading). A value the judge cannot rate (nullopt) leaves it to the support.
    using ValueJudge = std::function<std::optional<double>(const std::string& field, const FieldValue& value)>;
    static FieldMap merge_readings(const std::vector<FieldMap>& readings, std::vector<std::string>& warnings,
                                   const ValueJudge& judge = {});
    // FieldMap <-> {"name": {value, confidence, source, provenance}} (the "claim" layout).
    static nlohmann::json fields_to_json(const FieldMap& fields);
    static FieldMap fields_from_json(const nlohmann::json& claim);

private:
    const Rules& rules_;
    const CandidateChooser* total_chooser_ = nullptr;
    const CandidateChooser* date_chooser_ = nullptr;
    bool keep_candidates_ = false;
};


}  // namespace docpipe::claims
