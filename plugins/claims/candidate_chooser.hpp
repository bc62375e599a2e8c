// CandidateChooser: which of a field's candidates the extractor takes, decided by a linear
// score fitted on labelled receipts (scripts/fit-claims-chooser.py) instead of weights set
// by hand.
//
// The field reader (total_field.cpp) lists each candidate's evidence as named numbers
// (CandidateFeatures; the names and what they mean are in kTotalCandidateFeatures below);
// the chooser scores each as intercept + sum weight_i * feature_i and the candidate with the
// highest score wins. The weights are a conditional logit: fitted so that, on each training
// receipt, the softmax of the scores over its candidates puts the most probability on the
// right one. A candidate's score means something only next to the other candidates of the
// same receipt; how sure the chosen value is stays the confidence model's job
// (confidence_model.hpp).
//
// The weights ship in confidence-model.json under "choosers" and are validated when loaded
// (ConfidenceModel::parse): an unknown feature, a weight count that does not match, or a
// number that is not finite throws, naming the file and the chooser.
//
// Immutable once built; score() may run on several threads at once.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace docpipe::claims {

// A candidate's evidence: (feature name, value) in the order the reader computes them.
using CandidateFeatures = std::vector<std::pair<std::string_view, double>>;

// The features total_field.cpp computes for each total candidate. Each is 0/1 unless said.
//   label_weight     weight of the total label read on its line (rules file; 0..1)
//   cash_change      equals cash minus change
//   paid             equals the amount paid when no change line was read
//   subtotal_sum     subtotal + tax and/or rounding, the tax included, or the per-rate totals give it
//   repeats          other total lines that read the same amount (0..2)
//   items_sum        the item lines add up to it (two items at least)
//   other_equations  weight of arithmetic equations not counted above (0..0.2)
//   confirmed        some cross-check above confirms it
//   other_confirmed  it is not confirmed, but another candidate is
//   checks_disagree  it is not confirmed, and the subtotal/tax arithmetic gives other amounts
//   rounded          a total rounded to 5 sen from the amount read
//   rounding_line    ... and a rounding line says so
//   repaired         a look-alike character in it was read as a digit
//   misread          one misread digit or a currency sign repaired by the arithmetic
//   comma_decimal    its decimal separator was a comma
//   summary          equals the tax summary's total
//   table_row        it is the smaller last column of a table row
//   position         its line / the receipt's lines (0..1]
//   ocr_factor       how far its own words' OCR confidence lets it be trusted (0.55..1)
//   largest          no amount with decimals outside cash/change lines is larger
//   decimals         it was printed with decimals
inline const std::vector<std::string>& total_candidate_features() {
    static const std::vector<std::string> names = {
        "label_weight", "cash_change", "paid", "subtotal_sum", "repeats", "items_sum", "other_equations",
        "confirmed", "other_confirmed", "checks_disagree", "rounded", "rounding_line", "repaired", "misread",
        "comma_decimal", "summary", "table_row", "position", "ocr_factor", "largest", "decimals"};
    return names;
}

// The features date_field.cpp computes for each service-date candidate.
//   labelled       a date label is on its line or the line above
//   parse_conf     how sure the date parser is (day/month order, OCR look-alikes; 0..1)
//   ocr_factor     how far its own words' OCR confidence lets it be trusted (0.55..1)
//   position       its line / the receipt's lines (0..1]
//   first          it is the first date on the receipt
//   repeats        other lines that read the same date (0..2)
//   has_time       a time of day follows it on its line
//   latest         it is later than every other date read (print, expiry dates are)
//   year_repaired  its year read as a future year was mended
inline const std::vector<std::string>& date_candidate_features() {
    static const std::vector<std::string> names = {"labelled", "parse_conf", "ocr_factor", "position", "first",
                                                   "repeats", "has_time", "latest", "year_repaired"};
    return names;
}

class CandidateChooser {
public:
    CandidateChooser() = default;
    // {"features": [...], "weights": [...], "intercept": x}; `where` names the file and the
    // chooser in errors (ConfidenceModelError); `known` lists the features the code computes.
    static CandidateChooser parse(const nlohmann::json& j, const std::vector<std::string>& known, const std::string& where);

    // intercept + sum weight_i * feature_i; a feature the candidate lacks counts as 0.
    double score(const CandidateFeatures& x) const;
    const std::vector<std::string>& features() const { return features_; }
    const std::vector<double>& weights() const { return weights_; }

private:
    std::vector<std::string> features_;
    std::vector<double> weights_;
    double intercept_ = 0;
};

}  // namespace docpipe::claims
