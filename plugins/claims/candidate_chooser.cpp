// The fitted candidate chooser — see candidate_chooser.hpp.
#include "candidate_chooser.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/core.h>

#include "confidence_model.hpp"
#include "docpipe/document.hpp"

namespace docpipe::claims {

CandidateChooser CandidateChooser::parse(const nlohmann::json& j, const std::vector<std::string>& known, const std::string& where) {
    if (!j.is_object()) throw ConfidenceModelError(where + ": expected an object with features, weights, intercept");
    for (const char* key : {"features", "weights", "intercept"})
        if (!j.contains(key)) throw ConfidenceModelError(fmt::format("{}: '{}' is missing", where, key));
    if (!j["features"].is_array() || j["features"].empty())
        throw ConfidenceModelError(where + ": 'features' must be a non-empty list of feature names");
    CandidateChooser c;
    std::set<std::string> seen;
    for (const auto& f : j["features"]) {
        if (!f.is_string()) throw ConfidenceModelError(fmt::format("{}: feature {} is not a name", where, docpipe::json_text(f)));
        const std::string name = f.get<std::string>();
        if (std::find(known.begin(), known.end(), name) == known.end()) {
            std::string list;
            for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
            throw ConfidenceModelError(fmt::format("{}: feature '{}' is not one the code computes for a candidate (known: {})", where, name, list));
        }
        if (!seen.insert(name).second) throw ConfidenceModelError(fmt::format("{}: feature '{}' is listed twice", where, name));
        c.features_.push_back(name);
    }
    const auto& w = j["weights"];
    if (!w.is_array() || w.size() != c.features_.size())
        throw ConfidenceModelError(fmt::format("{}: {} weights for {} features (one weight per feature, in the same order)", where,
                                               w.is_array() ? w.size() : 0, c.features_.size()));
    auto finite = [&](const nlohmann::json& v, const std::string& what) {
        if (!v.is_number() || !std::isfinite(v.get<double>()))
            throw ConfidenceModelError(fmt::format("{}: {} must be a finite number, found {}", where, what, docpipe::json_text(v)));
        return v.get<double>();
    };
    for (std::size_t i = 0; i < w.size(); ++i) c.weights_.push_back(finite(w[i], fmt::format("the weight of feature '{}'", c.features_[i])));
    c.intercept_ = finite(j["intercept"], "'intercept'");
    return c;
}

double CandidateChooser::score(const CandidateFeatures& x) const {
    double s = intercept_;
    for (std::size_t i = 0; i < features_.size(); ++i)
        for (const auto& [name, value] : x)
            if (name == features_[i]) {
                s += weights_[i] * value;
                break;
            }
    return s;
}

}  // namespace docpipe::claims
