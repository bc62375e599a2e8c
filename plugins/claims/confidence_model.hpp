// The calibrated confidence of a receipt's total and date: a field's confidence is the
// probability that its value is right, learned from labelled receipts instead of set by hand.
//
// How: from_receipt() records what it knows about the value it chose in the field's
// provenance ("features", below); merge_readings() adds how the OCR readings agreed. The
// model file gives, per field, a logistic regression over those features (score =
// 1 / (1 + exp(-(intercept + sum weight_i * feature_i)))) and a calibration of that score:
// sorted (score, probability) knots, linearly interpolated, flat beyond the ends, fitted by
// isotonic regression on out-of-fold predictions (scripts/fit-claims-confidence.py).
//
// Features (names are the model file's; the value is what provenance.features shows):
//   every field
//     heuristic_logit  logit of the extractor's own confidence (after merging readings),
//                      clamped to [0.01, 0.99]; kept in provenance.extractor_confidence
//     readings         OCR readings of the receipt merged (1..3)
//     agree_share      share of those readings that read this value
//     rival            support of the best other value the readings gave (0: none)
//   total_amount
//     label_weight     weight of the total label it was read under (rules file; 0: none)
//     arith_confirmed  1 when a cross-check over other lines confirms it (cash - change,
//                      subtotal + tax, items, tax summary)
//     arith_equations  equations of arithmetic.cpp that give it (0..3)
//     repaired         1 when the amount is not what OCR printed (look-alike or misread digit)
//     ocr_word_conf    Tesseract's confidence of the amount's own words (0..1)
//     largest_amount   1 when no amount with decimals outside cash/change lines is larger
//     position         line of the amount / lines on the receipt (0..1]
//     margin           its score minus the best other amount's (0..0.5; 0.5: no other)
//     candidates       distinct total candidates (1..5)
//     no_label         1 when no total label was read and cash minus change stood in
//   service_date
//     labelled         1 when a date label is on its line or the line above
//     parse_conf       how sure the date parser is (day/month order, OCR look-alikes)
//     ocr_word_conf    Tesseract's confidence of the date's own words (0..1)
//     position         line / lines (0..1]
//     repeats          other lines that read the same date (0..3)
//     other_dates      distinct other dates on the receipt (0..3)
//     margin           its score minus the best other date's (0..0.5; 0.5: none)
//     conflict         1 when another line reads a date one digit apart
//   provider_name (optional in a model file: it decides no route)
//     marker           1 when chosen by a company marker (SDN BHD ...), 0 as the first letter line
//     ocr_line_conf    Tesseract's confidence of its line (0..1)
//     legal_form       1 when it ends in a legal form (SDN BHD, BHD, BERHAD, PLT)
//     line             its line / 12 (it is looked for in the first 12 lines)
//     wrapped          1 when joined with the line above or below
//     vocabulary       1 when a word was replaced by the business vocabulary
//     website          1 when completed from the receipt's website
//
// A model file is validated when it is loaded, like a config: malformed JSON, an unknown
// format or version, a missing field, a feature the code does not compute, weights that do
// not match the features, calibration knots out of [0, 1], unsorted or not monotonic: each
// throws ConfidenceModelError naming the file, the field and the feature or knot.
//
// Immutable after loading; apply() may run on several threads at once.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "candidate_chooser.hpp"
#include "extractor.hpp"

namespace docpipe::claims {

class ConfidenceModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct FieldConfidenceModel {
    std::vector<std::string> features;
    std::vector<double> weights;
    double intercept = 0;
    std::vector<std::pair<double, double>> calibration;  // (score, probability), scores increasing

    // The logistic score of a feature vector ({name: number}); a feature the vector lacks
    // throws ConfidenceModelError.
    double score(const nlohmann::json& features) const;
    // The calibrated probability for a score.
    double calibrate(double score) const;
    double probability(const nlohmann::json& features) const { return calibrate(score(features)); }
};

class ConfidenceModel {
public:
    static constexpr int kVersion = 1;
    static constexpr const char* kFormat = "docpipe-claims-confidence";
    // The most a field gets when its feature vector lacks a feature the model uses (a reading
    // made by an older docpipe): below the high band, so a person checks it.
    static constexpr double kUncalibratedCap = 0.85;

    // `origin` names the text in errors (the file's path).
    static ConfidenceModel parse(const std::string& json_text, const std::string& origin);
    static ConfidenceModel load_file(const std::string& path);
    static const ConfidenceModel& builtin();  // confidence-model.json as compiled in
    static const char* builtin_text();

    // The fields a model file must have (provider_name may be there too), and the features
    // the code computes for each.
    static const std::vector<std::string>& modelled_fields();
    static const std::vector<std::string>& known_features(const std::string& field);

    // A field's full feature vector: provenance.features from the extractor plus the
    // readings' agreement and the extractor's confidence. Null when the field has no
    // provenance.features (not read from a receipt).
    static nlohmann::json feature_vector(const FieldValue& field);

    // Each modelled field of a receipt's (merged) fields: confidence = the calibrated
    // probability (under the field's confidence_cap, if a rule set one), the extractor's own
    // in provenance.extractor_confidence, the vector in provenance.features.
    void apply(FieldMap& receipt) const;

    // The calibrated probability that this one value of a modelled field is right, judged
    // on its own features; nullopt for a field the model does not cover or a value without
    // its features. (merge_readings' judge between readings that disagree.)
    std::optional<double> probability_of(const std::string& name, const FieldValue& value) const;

    const FieldConfidenceModel* field(const std::string& name) const;
    // The fitted chooser of a field's candidates ("choosers" in the file); null when the file
    // has none for it (the extractor then chooses by its hand-set score).
    const CandidateChooser* chooser(const std::string& field) const;
    const nlohmann::json& metadata() const { return metadata_; }
    const std::string& origin() const { return origin_; }

private:
    std::map<std::string, FieldConfidenceModel> fields_;
    std::map<std::string, CandidateChooser> choosers_;
    nlohmann::json metadata_ = nlohmann::json::object();
    std::string origin_;
};

}  // namespace docpipe::claims
