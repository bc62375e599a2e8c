// The calibrated confidence model — see confidence_model.hpp.
#include "confidence_model.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/core.h>
#include "docpipe/document.hpp"

namespace docpipe::claims {

extern const char* const kDefaultConfidenceModelJson;  // generated from confidence-model.json

namespace {

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

double number_at(const nlohmann::json& j, const std::string& what, const std::string& where) {
    if (!j.is_number()) throw ConfidenceModelError(fmt::format("{}: {} must be a number, found {}", where, what, docpipe::json_text(j)));
    const double v = j.get<double>();
    if (!std::isfinite(v)) throw ConfidenceModelError(fmt::format("{}: {} is not a finite number", where, what));
    return v;
}

FieldConfidenceModel parse_field(const nlohmann::json& j, const std::string& name, const std::string& origin) {
    const std::string where = fmt::format("{}: field '{}'", origin, name);
    if (!j.is_object()) throw ConfidenceModelError(where + ": expected an object with features, weights, intercept, calibration");
    for (const char* key : {"features", "weights", "intercept", "calibration"})
        if (!j.contains(key)) throw ConfidenceModelError(fmt::format("{}: '{}' is missing", where, key));
    FieldConfidenceModel m;
    const auto& known = ConfidenceModel::known_features(name);
    if (!j["features"].is_array() || j["features"].empty())
        throw ConfidenceModelError(where + ": 'features' must be a non-empty list of feature names");
    std::set<std::string> seen;
    for (const auto& f : j["features"]) {
        if (!f.is_string()) throw ConfidenceModelError(fmt::format("{}: feature {} is not a name", where, docpipe::json_text(f)));
        const std::string feature = f.get<std::string>();
        if (std::find(known.begin(), known.end(), feature) == known.end())
            throw ConfidenceModelError(fmt::format("{}: feature '{}' is not one the code computes for this field (known: {})", where, feature,
                                                   join(known)));
        if (!seen.insert(feature).second) throw ConfidenceModelError(fmt::format("{}: feature '{}' is listed twice", where, feature));
        m.features.push_back(feature);
    }
    if (!j["weights"].is_array()) throw ConfidenceModelError(where + ": 'weights' must be a list of numbers");
    if (j["weights"].size() != m.features.size())
        throw ConfidenceModelError(fmt::format("{}: {} weights for {} features (one weight per feature, in the same order)", where,
                                               j["weights"].size(), m.features.size()));
    for (std::size_t i = 0; i < m.features.size(); ++i)
        m.weights.push_back(number_at(j["weights"][i], fmt::format("the weight of feature '{}'", m.features[i]), where));
    m.intercept = number_at(j["intercept"], "'intercept'", where);
    const auto& cal = j["calibration"];
    if (!cal.is_array() || cal.size() < 2)
        throw ConfidenceModelError(where + ": 'calibration' must be a list of at least two [score, probability] knots");
    for (std::size_t k = 0; k < cal.size(); ++k) {
        const std::string knot = fmt::format("calibration knot {}", k + 1);
        if (!cal[k].is_array() || cal[k].size() != 2)
            throw ConfidenceModelError(fmt::format("{}: {} must be [score, probability], found {}", where, knot, docpipe::json_text(cal[k])));
        const double s = number_at(cal[k][0], knot + " score", where);
        const double p = number_at(cal[k][1], knot + " probability", where);
        if (s < 0 || s > 1) throw ConfidenceModelError(fmt::format("{}: {}: score {} is outside [0, 1]", where, knot, s));
        if (p < 0 || p > 1) throw ConfidenceModelError(fmt::format("{}: {}: probability {} is outside [0, 1]", where, knot, p));
        if (!m.calibration.empty()) {
            const auto [ps, pp] = m.calibration.back();
            if (s <= ps)
                throw ConfidenceModelError(fmt::format("{}: {}: scores must increase (score {} after {})", where, knot, s, ps));
            if (p < pp)
                throw ConfidenceModelError(fmt::format("{}: calibration is not monotonic: {} (score {} -> {}) is below knot {} (score {} -> {})",
                                                       where, knot, s, p, k, ps, pp));
        }
        m.calibration.emplace_back(s, p);
    }
    return m;
}

}  // namespace

double FieldConfidenceModel::score(const nlohmann::json& x) const {
    double z = intercept;
    for (std::size_t i = 0; i < features.size(); ++i) {
        const auto it = x.find(features[i]);
        if (it == x.end() || !it->is_number())
            throw ConfidenceModelError(fmt::format("feature '{}' is missing from the feature vector", features[i]));
        z += weights[i] * it->get<double>();
    }
    return 1.0 / (1.0 + std::exp(-z));
}

double FieldConfidenceModel::calibrate(double s) const {
    if (calibration.empty()) return s;
    if (s <= calibration.front().first) return calibration.front().second;
    if (s >= calibration.back().first) return calibration.back().second;
    const auto hi = std::upper_bound(calibration.begin(), calibration.end(), s, [](double v, const auto& k) { return v < k.first; });
    const auto lo = hi - 1;
    const double t = (s - lo->first) / (hi->first - lo->first);
    return lo->second + t * (hi->second - lo->second);
}

const std::vector<std::string>& ConfidenceModel::modelled_fields() {
    static const std::vector<std::string> f = {"total_amount", "service_date"};
    return f;
}

const std::vector<std::string>& ConfidenceModel::known_features(const std::string& field) {
    static const std::vector<std::string> none;
    static const std::map<std::string, std::vector<std::string>> known = {
        {"total_amount",
         {"heuristic_logit", "readings", "agree_share", "rival", "label_weight", "arith_confirmed", "arith_equations", "repaired",
          "ocr_word_conf", "largest_amount", "position", "margin", "candidates", "no_label"}},
        {"service_date",
         {"heuristic_logit", "readings", "agree_share", "rival", "labelled", "parse_conf", "ocr_word_conf", "position", "repeats",
          "other_dates", "margin", "conflict"}},
        {"provider_name",
         {"heuristic_logit", "readings", "agree_share", "rival", "marker", "ocr_line_conf", "legal_form", "line", "wrapped", "vocabulary",
          "website"}},
    };
    const auto it = known.find(field);
    return it == known.end() ? none : it->second;
}

ConfidenceModel ConfidenceModel::parse(const std::string& text, const std::string& origin) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw ConfidenceModelError(fmt::format("{}: not valid JSON: {}", origin, e.what()));
    }
    if (!j.is_object()) throw ConfidenceModelError(fmt::format("{}: expected a JSON object", origin));
    if (j.value("format", std::string()) != kFormat)
        throw ConfidenceModelError(fmt::format("{}: 'format' must be \"{}\" (is this a claims confidence model?)", origin, kFormat));
    if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int>() != kVersion)
        throw ConfidenceModelError(fmt::format("{}: version {} is not supported: this docpipe reads version {} (refit with "
                                               "scripts/fit-claims-confidence.py)",
                                               origin, j.contains("version") ? docpipe::json_text(j["version"]) : "(none)", kVersion));
    if (!j.contains("fields") || !j["fields"].is_object()) throw ConfidenceModelError(fmt::format("{}: 'fields' (an object) is missing", origin));
    ConfidenceModel m;
    m.origin_ = origin;
    for (const auto& [name, spec] : j["fields"].items()) {
        if (known_features(name).empty())
            throw ConfidenceModelError(fmt::format("{}: field '{}' is not one the code computes features for (known: {}, provider_name)",
                                                   origin, name, join(modelled_fields())));
        m.fields_[name] = parse_field(spec, name, origin);
    }
    for (const auto& name : modelled_fields())
        if (!m.fields_.count(name)) throw ConfidenceModelError(fmt::format("{}: field '{}' is missing (a model needs {})", origin, name,
                                                                           join(modelled_fields())));
    // Optional: the fitted candidate choosers (candidate_chooser.hpp) of the total and the date.
    if (j.contains("choosers")) {
        if (!j["choosers"].is_object()) throw ConfidenceModelError(fmt::format("{}: 'choosers' must be an object (field -> chooser)", origin));
        for (const auto& [name, spec] : j["choosers"].items()) {
            if (name != "total_amount" && name != "service_date")
                throw ConfidenceModelError(
                    fmt::format("{}: chooser '{}': only total_amount and service_date have a fitted candidate chooser", origin, name));
            m.choosers_[name] = CandidateChooser::parse(spec, name == "total_amount" ? total_candidate_features() : date_candidate_features(),
                                                        fmt::format("{}: chooser '{}'", origin, name));
        }
    }
    m.metadata_ = j.value("metadata", nlohmann::json::object());
    return m;
}

const CandidateChooser* ConfidenceModel::chooser(const std::string& field) const {
    const auto it = choosers_.find(field);
    return it == choosers_.end() ? nullptr : &it->second;
}

ConfidenceModel ConfidenceModel::load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfidenceModelError(fmt::format("confidence model '{}' cannot be read (missing or no permission)", path));
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path);
}

const char* ConfidenceModel::builtin_text() { return kDefaultConfidenceModelJson; }

const ConfidenceModel& ConfidenceModel::builtin() {
    static const ConfidenceModel model = parse(kDefaultConfidenceModelJson, "confidence-model.json (built in)");
    return model;
}

const FieldConfidenceModel* ConfidenceModel::field(const std::string& name) const {
    const auto it = fields_.find(name);
    return it == fields_.end() ? nullptr : &it->second;
}

nlohmann::json ConfidenceModel::feature_vector(const FieldValue& f) {
    const auto& p = f.provenance;
    if (!p.is_object() || !p.contains("features") || !p["features"].is_object()) return nullptr;
    nlohmann::json x = p["features"];
    // The extractor's own confidence: what it was before calibration, if it was calibrated.
    const double h = std::clamp(p.contains("extractor_confidence") && p["extractor_confidence"].is_number()
                                    ? p["extractor_confidence"].get<double>()
                                    : f.confidence,
                                0.01, 0.99);
    x["heuristic_logit"] = std::log(h / (1.0 - h));
    double total = 1, agree = 1, rival = 0;
    if (p.contains("readings_total") && p["readings_total"].is_number()) total = std::max(1.0, p["readings_total"].get<double>());
    if (p.contains("readings") && p["readings"].is_array()) agree = static_cast<double>(p["readings"].size());
    if (p.contains("rival_support") && p["rival_support"].is_number()) rival = p["rival_support"].get<double>();
    x["readings"] = total;
    x["agree_share"] = std::min(1.0, agree / total);
    x["rival"] = rival;
    return x;
}

void ConfidenceModel::apply(FieldMap& receipt) const {
    for (const auto& [name, model] : fields_) {
        auto it = receipt.find(name);
        if (it == receipt.end()) continue;
        FieldValue& f = it->second;
        nlohmann::json x = feature_vector(f);
        if (x.is_null()) continue;
        const double heuristic = f.provenance.contains("extractor_confidence") ? f.provenance["extractor_confidence"].get<double>() : f.confidence;
        // Rounded as provenance shows them, so the features bench_claims_eval dumps give
        // exactly this probability.
        for (auto& [k, v] : x.items())
            if (v.is_number()) v = std::round(v.get<double>() * 10000.0) / 10000.0;
        double p = 0;
        try {
            p = model.probability(x);
        } catch (const ConfidenceModelError& e) {
            // A reading made by an older docpipe (fields.readings kept across an upgrade)
            // may lack a feature: not calibrated, so not trusted past a person either.
            f.provenance["calibration_skipped"] = e.what();
            f.confidence = std::min(f.confidence, kUncalibratedCap);
            continue;
        }
        if (const auto cap = f.cap()) p = std::min(p, *cap);
        f.provenance["extractor_confidence"] = std::round(heuristic * 1000.0) / 1000.0;
        f.provenance["features"] = std::move(x);
        f.confidence = p;
    }
}

std::optional<double> ConfidenceModel::probability_of(const std::string& name, const FieldValue& value) const {
    const auto model = fields_.find(name);
    if (model == fields_.end()) return std::nullopt;
    nlohmann::json x = feature_vector(value);
    if (x.is_null()) return std::nullopt;
    for (auto& [k, v] : x.items())
        if (v.is_number()) v = std::round(v.get<double>() * 10000.0) / 10000.0;
    try {
        double p = model->second.probability(x);
        if (const auto cap = value.cap()) p = std::min(p, *cap);
        return p;
    } catch (const ConfidenceModelError&) {
        return std::nullopt;
    }
}

}  // namespace docpipe::claims
