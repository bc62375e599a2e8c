// The service date of a receipt: every date on it is a candidate. The fitted chooser
// (candidate_chooser.hpp) picks one from each candidate's evidence (label, parse, its own
// words' OCR confidence, place, repeats, a time of day after it, whether it is the latest);
// without a chooser, the hand-set score does (parse x label x OCR, earlier lines first:
// later dates are often expiry or print dates). That hand score stays the extractor's own
// confidence; repeats, rivals and a one-digit conflict become the confidence model's features.
#include <algorithm>
#include <array>
#include <chrono>
#include <regex>
#include <set>

#include <fmt/core.h>

#include "candidate_chooser.hpp"
#include "date.hpp"
#include "receipt_reading.hpp"

namespace docpipe::claims {

using namespace reading;

namespace {

// The most a date whose year's hundreds digit was mended is trusted: under the router's
// high band (0.90).
constexpr double kMendedCenturyCap = 0.85;

int this_year() {
    const auto today = std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now())};
    return static_cast<int>(today.year());
}

// A service date cannot lie in the future, so a year after this one was misread: "2047"
// for 2017, "2078" for 2018 (1 and 7, 1 and 4 look alike on thermal print), "2617" for
// 2017 (0 and 6, the hundreds). The latest past year one digit away (hundreds, tens or
// units; from 2000 on) is taken, with less confidence and a note; without one the date is
// no candidate at all. The thousands digit is never taken for a misread ("7015" stays
// unread): no receipt on file prints a look-alike of the 2 there.
std::optional<DateMatch> past_year(DateMatch d, int now) {
    if (d.year <= now) return d;
    constexpr int kEarliestYear = DateLimits{}.min_year;  // as find_dates: no claim is older
    const int read_as = d.year;
    int best = 0;
    for (int place : {100, 10, 1})
        for (int digit = 0; digit <= 9; ++digit) {
            const int year = read_as - (read_as / place % 10) * place + digit * place;
            if (year <= now && year >= kEarliestYear && year > best && valid_date(year, d.month, d.day)) best = year;
        }
    if (!best) return std::nullopt;
    d.year = best;
    d.confidence *= 0.8;
    d.note = fmt::format("the year reads {}, a future year; {} is the latest year one digit away", read_as, best);
    return d;
}

// Malaysia charged GST from 1 April 2015 to 31 August 2018, so a Malaysian receipt that
// prints GST was not issued before 2015: an earlier year was misread ("15-03-13" for
// 15-03-18: 3 and 8 look alike in dot-matrix print; "2011" for 2017). The year's units,
// then tens, digit is read as the digits it is most often mistaken for, in that order; the
// first that gives a date inside the GST period is taken, with less confidence and a note,
// as for a future year. Without one the date stands as read, at half its confidence; a date
// already repaired some other way is left alone.
DateMatch gst_era_year(DateMatch d, bool malaysian_gst) {
    constexpr int kFirstGstYear = 2015, kLastGstYear = 2018;
    if (!malaysian_gst || d.year >= kFirstGstYear || !d.note.empty()) return d;
    // Digits each digit is misread for on receipts, the likelier first.
    static const std::array<std::string_view, 10> look_alikes = {"86", "74", "7", "85", "9", "63", "85", "1", "306", "4"};
    const int read_as = d.year;
    for (int place : {1, 10}) {
        const int digit = read_as / place % 10;
        for (char other : look_alikes[static_cast<std::size_t>(digit)]) {
            const int year = read_as + ((other - '0') - digit) * place;
            const bool in_period = year >= kFirstGstYear && year <= kLastGstYear && !(year == kFirstGstYear && d.month < 4) &&
                                   !(year == kLastGstYear && d.month > 8);
            if (!in_period || !valid_date(year, d.month, d.day)) continue;
            d.year = year;
            d.confidence *= 0.8;
            d.note = fmt::format("the year reads {}, before GST began (2015) on a Malaysian receipt that prints GST; {} is the "
                                 "year it is most likely misread for", read_as, year);
            return d;
        }
    }
    // No likely misreading: kept as read, but a date GST rules out is weak evidence, so
    // another reading of it (or another date) that fits the period wins.
    d.confidence *= 0.5;
    d.note = fmt::format("the year reads {}, before GST began (2015) on a Malaysian receipt that prints GST; kept as read, "
                         "unsure", read_as);
    return d;
}

// GST on the receipt, and a sign that it is Malaysia's: its 12-digit GST number, the 6%
// rate or ringgit. (Singapore's GST receipts carry none of them.)
bool prints_malaysian_gst(const std::vector<TextLine>& lines) {
    static const std::regex gst(R"((^|[^A-Za-z])GST($|[^A-Za-z]))", std::regex::icase);
    static const std::regex malaysian(R"((^|[^0-9])([0-9]{12}($|[^0-9])|6 ?%)|(^|[^A-Za-z])RM($|[^A-Za-z]))");
    bool gst_seen = false, malaysian_seen = false;
    for (const auto& l : lines) {
        if (l.text.size() > 500) continue;  // no receipt line is that long
        gst_seen = gst_seen || std::regex_search(l.text, gst);
        malaysian_seen = malaysian_seen || std::regex_search(l.text, malaysian);
    }
    return gst_seen && malaysian_seen;
}

// A date a receipt number carries in it: "Invoice No: 2018031210060010139" and
// "KPB02201605190112" (POS systems number receipts from the day's date, as yyyymmdd
// inside a run of digits). Every valid yyyymmdd from 2000 to this year in a run of 8 or
// more digits, with the number it was found in.
struct DateInNumber {
    int year = 0, month = 0, day = 0;
    std::string number;
};

std::vector<DateInNumber> dates_in_numbers(const std::vector<TextLine>& lines, int now) {
    static const std::regex digit_run(R"(\d{8,40})");
    std::vector<DateInNumber> found;
    auto value = [](const std::string& s, std::size_t at, std::size_t n) { return std::stoi(s.substr(at, n)); };
    for (const auto& l : lines) {
        if (l.text.size() > 500) continue;  // no receipt line is that long
        for (auto it = std::sregex_iterator(l.text.begin(), l.text.end(), digit_run); it != std::sregex_iterator(); ++it) {
            const std::string run = it->str();
            for (std::size_t at = 0; at + 8 <= run.size(); ++at) {
                if (run.compare(at, 2, "20") != 0) continue;
                const int year = value(run, at, 4), month = value(run, at + 4, 2), day = value(run, at + 6, 2);
                if (year >= DateLimits{}.min_year && year <= now && valid_date(year, month, day)) found.push_back({year, month, day, run});
            }
        }
    }
    return found;
}

// Train 197, 404 and 427: "12/03/2016" printed beside receipt number 2018031210060010139.
// The day and month agree with a date inside a receipt number, and the years differ in one
// digit: the printed year was misread (6 for 8, 5 for 6 on thermal print), since a number
// that holds this day and month by chance would not also hold a year one digit away. The
// number's year is taken, with a note. Only the year: a number may be dated a day apart
// from its sale (a batch opened before midnight), so other digits are left as printed.
// Nothing changes when a number holds the printed date itself, or two numbers disagree.
// The date keeps the confidence of its reading as printed: the year is not a guess.
std::optional<std::pair<DateMatch, std::string>> year_from_number(const DateMatch& d, const DateMatch& as_read, const std::vector<DateInNumber>& numbers) {
    const int year_as_read = as_read.year;
    const DateInNumber* only = nullptr;
    for (const auto& n : numbers) {
        if (n.month != d.month || n.day != d.day) continue;
        if (only && only->year != n.year) return std::nullopt;  // numbers that disagree decide nothing
        only = &n;
    }
    if (!only || only->year == year_as_read) return std::nullopt;  // none, or the printed year confirmed
    const std::string read = std::to_string(year_as_read), from_number = std::to_string(only->year);
    if (read.size() != from_number.size()) return std::nullopt;
    int differ = 0;
    for (std::size_t k = 0; k < read.size(); ++k) differ += read[k] != from_number[k];
    if (differ != 1) return std::nullopt;
    DateMatch out = d;
    out.year = only->year;
    out.confidence = as_read.confidence;  // not a guess, so not the lower confidence of one
    out.note = fmt::format("the year reads {}; receipt number {} carries this day and month in {}, one digit away, so {} is taken",
                           year_as_read, only->number, only->year, only->year);
    return std::pair{out, only->number};
}

}  // namespace

void read_service_date(const std::vector<TextLine>& lines, const std::vector<std::vector<Word>>& words, const Rules& rules,
                       FieldMap& fields, std::vector<std::string>& warnings, const FieldChoice& choice) {
    const auto& date_labels = rules.field_labels.count("service_date") ? rules.field_labels.at("service_date") : std::vector<std::string>{};
    const int now = this_year();
    const bool gst = prints_malaysian_gst(lines);
    const std::vector<DateInNumber> in_numbers = dates_in_numbers(lines, now);
    // Every date on the receipt (outside ignored lines: expiry, best before) is a candidate.
    struct Candidate {
        std::size_t line;
        DateMatch date;
        bool labelled;
        double hand_score;  // the hand-set score: parse, label, own words' OCR confidence, place
        bool hundreds_mended;  // the year was read 21xx-29xx ("2617" for 2017)
        std::string year_number;  // the receipt number that settled the year, if one did
    };
    std::vector<Candidate> candidates;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        // Years up to 9999 are read, so that past_year can mend a misread one ("2617").
        auto dates = find_dates(lines[i].text, DateLimits{DateLimits{}.min_year, 9999});
        if (dates.empty() || best_hit(words[i], rules.date_ignore_labels)) continue;
        bool labelled = best_hit(words[i], date_labels).has_value() || (i > 0 && best_hit(words[i - 1], date_labels) &&
                                                                         find_dates(lines[i - 1].text).empty());
        const auto past = past_year(gst_era_year(dates.front(), gst), now);
        if (!past) continue;
        // A year a receipt number settles replaces any other mending of it ("2518" mended to
        // 2018 by past_year is no longer a guess when the number says 2018 too).
        const auto numbered = year_from_number(*past, dates.front(), in_numbers);
        const DateMatch& d = numbered ? numbered->first : *past;
        // Earlier dates are the transaction's; later ones are often expiry or print dates.
        // Judged by the date's own words: "P9341 8055885 11/05/2018" has noise before it.
        const double conf = d.confidence * (labelled ? 0.95 : 0.85) * ocr_factor_at(lines[i], d.begin, d.end) - 0.002 * static_cast<double>(i);
        candidates.push_back({i, d, labelled, conf, !numbered && d.year / 100 != dates.front().year / 100,
                              numbered ? numbered->second : std::string()});
    }
    std::vector<std::string> seen;  // every date read as a candidate, ISO
    std::vector<double> seen_conf;  // and its hand-set score
    for (const auto& c : candidates) {
        seen.push_back(c.date.iso());
        seen_conf.push_back(c.hand_score);
    }
    // The chooser (candidate_chooser.hpp) over each candidate's evidence as named numbers;
    // without one, the hand-set score.
    static const std::regex time_of_day(R"(\b\d{1,2}[:.]\d{2}(?:[:.]\d{2})?\b)");
    const Candidate* best = nullptr;
    double best_choice = -1e300;
    nlohmann::json kept = nlohmann::json::array();
    for (std::size_t k = 0; k < candidates.size(); ++k) {
        const Candidate& c = candidates[k];
        if (c.hand_score <= 0) continue;  // too unsure to be the date at all
        const std::string iso = c.date.iso();
        const auto repeats = std::count(seen.begin(), seen.end(), iso) - 1;
        const bool latest = std::all_of(seen.begin(), seen.end(), [&](const std::string& o) { return o == iso || o < iso; }) &&
                            std::any_of(seen.begin(), seen.end(), [&](const std::string& o) { return o != iso; });
        std::string rest = lines[c.line].text.substr(std::min(c.date.end, lines[c.line].text.size()));
        const CandidateFeatures fx = {
            {"labelled", c.labelled ? 1.0 : 0.0},
            {"parse_conf", c.date.confidence},
            {"ocr_factor", ocr_factor_at(lines[c.line], c.date.begin, c.date.end)},
            {"position", static_cast<double>(c.line + 1) / static_cast<double>(lines.size())},
            {"first", k == 0 ? 1.0 : 0.0},
            {"repeats", static_cast<double>(std::min<long>(repeats, 2))},
            {"has_time", std::regex_search(rest, time_of_day) ? 1.0 : 0.0},
            {"latest", latest ? 1.0 : 0.0},
            {"year_repaired", c.date.note.empty() ? 0.0 : 1.0},
        };
        const double chosen_by = choice.chooser ? choice.chooser->score(fx) : c.hand_score;
        if (choice.keep_candidates) {
            nlohmann::json named = nlohmann::json::object();
            for (const auto& [name, x] : fx) named[std::string(name)] = x;
            kept.push_back({{"iso", iso}, {"line", lines[c.line].index}, {"hand_score", c.hand_score}, {"features", named}});
        }
        if (chosen_by > best_choice) {
            best_choice = chosen_by;
            best = &c;
        }
    }
    const double best_conf = best ? best->hand_score : 0;
    if (best) {
        const DateMatch& d = best->date;
        FieldValue f = make_field(d.iso(), best->hand_score, lines[best->line]);
        f.provenance["as_written"] = d.text;
        if (!d.note.empty()) f.provenance["note"] = d.note;
        // Read by merge_readings: a year a number settled outweighs another reading's guess.
        if (!best->year_number.empty()) f.provenance["year_from_number"] = best->year_number;
        // A year whose hundreds digit was misread ("2516") comes from a reading bad enough
        // to have misread more: train's single readings gave 3 right dates and 2 wrong ones
        // (another digit misread too). It is the likeliest date, not a sure one, so the
        // claim is not sent without a person (under the high band, as for a total the
        // arithmetic repaired). Mended tens and units were right in the high band.
        if (best->hundreds_mended) {
            f.confidence = std::min(f.confidence, kMendedCenturyCap);
            f.provenance["doubt_cap"] = kMendedCenturyCap;
        }
        f.provenance["features"] = {
            {"labelled", best->labelled ? 1.0 : 0.0},
            {"parse_conf", d.confidence},
            {"ocr_word_conf", word_confidence_at(lines[best->line], d.begin, d.end)},
            {"position", static_cast<double>(best->line + 1) / static_cast<double>(lines.size())},
        };
        if (choice.keep_candidates) f.provenance["candidates"] = std::move(kept);
        // The fitted chooser and the hand-set score picked different dates: contested, so a
        // person confirms it (the same rule as for the total, total_field.cpp).
        if (choice.chooser) {
            const Candidate* hand_best = nullptr;
            for (const auto& c : candidates)
                if (c.hand_score > 0 && (!hand_best || c.hand_score > hand_best->hand_score)) hand_best = &c;
            if (hand_best && hand_best->date.iso() != d.iso() && hand_best->hand_score > best->hand_score)
                mark_contested(f, "service_date", d.iso(), lines[best->line].index, hand_best->date.iso(), lines[hand_best->line].index, "",
                               warnings);
        }
        fields["service_date"] = f;
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
        auto& best_features = it->second.provenance["features"];
        best_features["repeats"] = static_cast<double>(std::min<std::size_t>(repeats - 1, 3));
        best_features["other_dates"] = static_cast<double>(std::min<std::size_t>(distinct.size() - 1, 3));
        best_features["margin"] = rival < 0 ? 0.5 : std::clamp(best_conf - rival, 0.0, 0.5);
        best_features["conflict"] = 0.0;
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
