// The service date of a receipt: every date on it is a candidate, scored by its parse, its
// label, its own words' OCR confidence and its place (earlier dates are the transaction's;
// later ones are often expiry or print dates); repeats, rivals and a one-digit conflict
// become the confidence model's features.
#include <algorithm>
#include <chrono>
#include <set>

#include <fmt/core.h>

#include "date.hpp"
#include "receipt_reading.hpp"

namespace docpipe::claims {

using namespace reading;

namespace {

int this_year() {
    const auto today = std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now())};
    return static_cast<int>(today.year());
}

// A service date cannot lie in the future, so a year after this one was misread: "2047"
// for 2017, "2078" for 2018 (1 and 7, 1 and 4 look alike on thermal print). The latest
// past year one digit away (tens or units) is taken, with less confidence and a note;
// without one the date is no candidate at all.
std::optional<DateMatch> past_year(DateMatch d, int now) {
    if (d.year <= now) return d;
    const int read_as = d.year;
    int best = 0;
    for (int place : {10, 1})
        for (int digit = 0; digit <= 9; ++digit) {
            const int year = read_as - (read_as / place % 10) * place + digit * place;
            if (year <= now && year > best && valid_date(year, d.month, d.day)) best = year;
        }
    if (!best) return std::nullopt;
    d.year = best;
    d.confidence *= 0.8;
    d.note = fmt::format("the year reads {}, a future year; {} is the latest year one digit away", read_as, best);
    return d;
}

}  // namespace

void read_service_date(const std::vector<TextLine>& lines, const std::vector<std::vector<Word>>& words, const Rules& rules,
                       FieldMap& fields, std::vector<std::string>& warnings) {
    const auto& date_labels = rules.field_labels.count("service_date") ? rules.field_labels.at("service_date") : std::vector<std::string>{};
    double best_conf = 0;
    std::vector<std::string> seen;  // every date read as a candidate, ISO
    std::vector<double> seen_conf;  // and its score
    nlohmann::json best_features;   // for the confidence model
    const int now = this_year();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        auto dates = find_dates(lines[i].text);
        if (dates.empty() || best_hit(words[i], rules.date_ignore_labels)) continue;
        bool labelled = best_hit(words[i], date_labels).has_value() || (i > 0 && best_hit(words[i - 1], date_labels) &&
                                                                         find_dates(lines[i - 1].text).empty());
        const auto past = past_year(dates.front(), now);
        if (!past) continue;
        const DateMatch& d = *past;
        // Earlier dates are the transaction's; later ones are often expiry or print dates.
        // Judged by the date's own words: "P9341 8055885 11/05/2018" has noise before it.
        double conf = d.confidence * (labelled ? 0.95 : 0.85) * ocr_factor_at(lines[i], d.begin, d.end) - 0.002 * static_cast<double>(i);
        seen.push_back(d.iso());
        seen_conf.push_back(conf);
        if (conf > best_conf) {
            best_conf = conf;
            best_features = {
                {"labelled", labelled ? 1.0 : 0.0},
                {"parse_conf", d.confidence},
                {"ocr_word_conf", word_confidence_at(lines[i], d.begin, d.end)},
                {"position", static_cast<double>(i + 1) / static_cast<double>(lines.size())},
            };
            FieldValue f = make_field(d.iso(), conf, lines[i]);
            f.provenance["as_written"] = d.text;
            if (!d.note.empty()) f.provenance["note"] = d.note;
            fields["service_date"] = f;
        }
    }
    if (auto it = fields.find("service_date"); it != fields.end()) {
        const std::string chosen = it->second.value.get<std::string>();
        double rival = -1;
        std::size_t repeats = 0;
        std::set<std::string> distinct(seen.begin(), seen.end());
        for (std::size_t k = 0; k < seen.size(); ++k) {
            if (seen[k] == chosen) ++repeats;
            else rival = std::max(rival, seen_conf[k]);
        }
        best_features["repeats"] = static_cast<double>(std::min<std::size_t>(repeats - 1, 3));
        best_features["other_dates"] = static_cast<double>(std::min<std::size_t>(distinct.size() - 1, 3));
        best_features["margin"] = rival < 0 ? 0.5 : std::clamp(best_conf - rival, 0.0, 0.5);
        best_features["conflict"] = 0.0;
        it->second.provenance["features"] = best_features;
    }
    if (auto it = fields.find("service_date"); it != fields.end() && it->second.provenance.contains("note"))
        warnings.push_back("service_date: " + it->second.provenance["note"].get<std::string>());
    // The same date printed twice and read differently in one digit ("11/05/2018" at the
    // top, "11/08/2018" at the bottom): one of them is misread, and nothing says which.
    if (auto it = fields.find("service_date"); it != fields.end()) {
        const std::string chosen = it->second.value.get<std::string>();
        for (const auto& other : seen) {
            if (other == chosen || other.size() != chosen.size()) continue;
            int diff = 0;
            for (std::size_t k = 0; k < other.size(); ++k) diff += other[k] != chosen[k];
            if (diff != 1) continue;
            it->second.confidence *= 0.8;
            it->second.provenance["conflict"] = other;
            it->second.provenance["features"]["conflict"] = 1.0;
            warnings.push_back(fmt::format("service_date: the receipt also reads {} (one digit apart from {}); kept {}", other, chosen, chosen));
            break;
        }
    }
}

}  // namespace docpipe::claims
