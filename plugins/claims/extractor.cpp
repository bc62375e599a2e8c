#include "extractor.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>
#include <map>
#include <set>

#include <fmt/core.h>

#include "arithmetic.hpp"
#include "receipt_reading.hpp"
#include "text.hpp"
#include "docpipe/document.hpp"

namespace docpipe::claims {

using namespace reading;

// =========================================================================================
FieldMap ClaimExtractor::from_receipt(const std::vector<TextLine>& lines, std::vector<std::string>& warnings) const {
    FieldMap fields;
    if (lines.empty()) return fields;
    // Each line's words once; every reader below matches its labels on them.
    std::vector<std::vector<Word>> words;
    words.reserve(lines.size());
    for (const auto& l : lines) words.push_back(words_of(l.text));

    // ---- amounts: the total, subtotal, tax, items (total_field.cpp) -------------------
    read_amounts(lines, words, rules_, fields, warnings, FieldChoice{total_chooser_, keep_candidates_});

    // ---- date (date_field.cpp) ----------------------------------------------------------
    read_service_date(lines, words, rules_, fields, warnings, FieldChoice{date_chooser_, keep_candidates_});

    // ---- labelled ids and names --------------------------------------------------------
    labelled_fields(lines, words, rules_, fields);

    // ---- provider (letterhead) and its address (provider_field.cpp) --------------------
    read_provider(lines, words, rules_, fields);
    if (fields.count("total_amount")) fields["currency"] = FieldValue{"MYR", 0.99, "receipt", {{"reason", "Malaysian receipt"}}};
    return fields;
}

// =========================================================================================
FieldMap ClaimExtractor::from_email(const std::vector<TextLine>& lines, const EmailContext& context, std::vector<std::string>& warnings) const {
    FieldMap fields;
    std::vector<std::vector<Word>> words;
    for (const auto& l : lines) words.push_back(words_of(l.text));

    // Labelled lines first ("Member ID: M12345", "ID Ahli: M11111", "会员号码 Member ID: M44444").
    labelled_fields(lines, words, rules_, fields);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto& labels = rules_.field_labels.count("total_amount") ? rules_.field_labels.at("total_amount") : std::vector<std::string>{};
        auto hit = best_hit(words[i], labels);
        if (!hit || hit->first_word > 3) continue;
        auto amounts = find_amounts(lines[i].text);
        if (amounts.empty()) continue;
        // An itemised line ("- SST (10%): RM 100.00") is not the total.
        const std::string lead = trim(lines[i].text);
        if (!lead.empty() && (lead[0] == '-' || lead[0] == '*')) continue;
        keep_better(fields, "total_amount", make_field(amounts.back().value(), 0.95, lines[i]));
    }
    const auto& date_labels = rules_.field_labels.count("service_date") ? rules_.field_labels.at("service_date") : std::vector<std::string>{};
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (!best_hit(words[i], date_labels)) continue;
        auto dates = find_dates(lines[i].text);
        if (dates.empty()) continue;
        keep_better(fields, "service_date", make_field(dates.front().iso(), 0.95 * dates.front().confidence, lines[i]));
    }
    // Itemised charges and the SST line.
    {
        nlohmann::json items = nlohmann::json::array();
        for (const auto& l : lines) {
            const std::string t = trim(l.text);
            if (t.empty() || (t[0] != '-' && t[0] != '*' && t.rfind("\xE2\x80\xA2", 0) != 0)) continue;
            auto amounts = find_amounts(t);
            if (amounts.empty()) continue;
            const std::size_t start = t[0] == '-' || t[0] == '*' ? 1 : 3;  // "-", "*" or a UTF-8 bullet
            std::string desc = trim(t.substr(start, amounts.back().begin > start ? amounts.back().begin - start : 0));
            while (!desc.empty() && (desc.back() == ':' || desc.back() == ' ')) desc.pop_back();
            const std::string norm = normalize_label(desc);
            if (best_hit(words_of(desc), rules_.tax_labels)) {
                keep_better(fields, contains_words(norm, "GST") ? "gst_amount" : "sst_amount", make_field(amounts.back().value(), 0.9, l));
            }
            items.push_back({{"description", desc}, {"amount", amounts.back().value()}, {"line", l.index}});
        }
        if (!items.empty()) fields["itemized_charges"] = FieldValue{items, 0.85, "email_body", {{"source", "email_body"}}};
    }

    // Free text: the rules' patterns, for whatever labelled lines did not give.
    for (const auto& [field, patterns] : rules_.field_patterns) {
        if (fields.count(field)) continue;
        bool found = false;
        // Earlier patterns win over later ones, wherever in the text they match.
        for (const auto& p : patterns) {
            if (found) break;
            for (const auto& line : lines) {
                std::smatch m;
                if (!std::regex_search(line.text, m, p.regex) || m.size() < 2 || !m[1].matched) continue;
                std::string value = trim(m.str(1));
                FieldValue f = make_field(value, 0.8, line);
                f.provenance["pattern"] = p.source;
                if (field == "total_amount") {
                    auto amounts = find_amounts(value);
                    if (amounts.empty()) continue;
                    f.value = amounts.front().value();
                } else if (field == "service_date") {
                    auto dates = find_dates(value);
                    if (!dates.empty()) {
                        f.value = dates.front().iso();
                    } else {
                        // "18th of December": no year written; take the email's, and say so.
                        static const std::regex day_month(R"((\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([A-Za-z]{3,9}))", std::regex::icase);
                        std::smatch dm;
                        if (!std::regex_search(value, dm, day_month)) continue;
                        const int month = month_from_name(dm.str(2));
                        const int day = std::stoi(dm.str(1));
                        if (!month || context.year == 0) continue;
                        int year = context.year;
                        if (context.month && month > context.month) --year;  // December mentioned in January
                        if (!valid_date(year, month, day)) continue;
                        f.value = fmt::format("{:04}-{:02}-{:02}", year, month, day);
                        f.confidence = 0.6;
                        f.provenance["note"] = "year not written; taken from the email's date";
                        warnings.push_back(fmt::format("service_date: '{}' has no year; assumed {}", value, year));
                    }
                } else {
                    // Free-text names end at the sentence.
                    for (const char* stop : {" and ", ",", " dan "}) {
                        auto pos = value.find(stop);
                        if (pos != std::string::npos && pos > 1) value = value.substr(0, pos);
                    }
                    // A full stop ends the sentence unless it ends an abbreviation ("Dr.", "No.").
                    for (auto pos = value.find(". "); pos != std::string::npos; pos = value.find(". ", pos + 1)) {
                        const auto word_start = value.rfind(' ', pos);
                        const std::size_t len = pos - (word_start == std::string::npos ? 0 : word_start + 1);
                        if (len > 3) {
                            value = value.substr(0, pos);
                            break;
                        }
                    }
                    while (!value.empty() && (value.back() == '.' || value.back() == ',')) value.pop_back();
                    f.value = value;
                }
                fields[field] = f;
                found = true;
                break;
            }
        }
    }
    for (auto& [name, f] : fields) {
        if (f.source.empty()) f.source = "email_body";
    }
    return fields;
}

// =========================================================================================
namespace {


bool same_value(const std::string& field, const nlohmann::json& a, const nlohmann::json& b) {
    if (a.is_number() && b.is_number()) return std::llround(a.get<double>() * 100) == std::llround(b.get<double>() * 100);
    if (a.is_string() && b.is_string()) {
        std::string x = normalize_label(a.get<std::string>()), y = normalize_label(b.get<std::string>());
        if (field == "provider_name" || field == "member_name")
            return x == y || (x.size() > 4 && y.size() > 4 && (x.find(y) != std::string::npos || y.find(x) != std::string::npos));
        if (field == "receipt_number") {
            // "CS00241999" and "241999" (the prefix lost to "CS) 241999"): the same number.
            const std::string& longer = x.size() >= y.size() ? x : y;
            const std::string& shorter = x.size() >= y.size() ? y : x;
            return x == y || (shorter.size() >= 5 && longer.compare(longer.size() - shorter.size(), shorter.size(), shorter) == 0);
        }
        return x == y;
    }
    return a == b;
}

std::string show(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) return format_cents(std::llround(v.get<double>() * 100));
    return docpipe::json_text(v);
}

// A number the reader recorded among the value's features (provenance.features), if any.
std::optional<double> feature_of(const FieldValue& f, const char* name) {
    if (!f.provenance.is_object() || !f.provenance.contains("features")) return std::nullopt;
    const auto& features = f.provenance["features"];
    if (!features.is_object() || !features.contains(name) || !features[name].is_number()) return std::nullopt;
    return features[name].get<double>();
}

}  // namespace

ClaimResult ClaimExtractor::combine(FieldMap receipt, FieldMap email, std::vector<std::string> warnings) const {
    ClaimResult r;
    r.warnings = std::move(warnings);
    for (auto& [name, rv] : receipt) {
        auto it = email.find(name);
        if (it == email.end() || name == "itemized_charges") {
            r.fields[name] = std::move(rv);
            continue;
        }
        FieldValue& ev = it->second;
        if (same_value(name, rv.value, ev.value)) {
            // Two independent readings agree.
            FieldValue f = rv;
            f.confidence = std::min(0.995, 1.0 - (1.0 - rv.confidence) * (1.0 - ev.confidence * 0.9));
            f.source = "receipt+email";
            if (const auto cap = rv.cap()) f.confidence = std::min(f.confidence, *cap);
            f.provenance = {{"receipt", rv.provenance}, {"email", ev.provenance}};
            r.fields[name] = f;
        } else {
            const bool receipt_wins = name == "total_amount" || name == "service_date" || name == "receipt_number"
                                          ? rv.confidence >= ev.confidence * 0.9
                                          : rv.confidence > ev.confidence;
            FieldValue f = receipt_wins ? rv : ev;
            f.confidence = std::min(rv.confidence, ev.confidence) * 0.6;
            // The value not chosen goes along: a reviewer sees what the other source said.
            f.provenance = {{"chosen", receipt_wins ? "receipt" : "email"},
                            {"receipt", rv.provenance},
                            {"email", ev.provenance},
                            {"not_chosen", receipt_wins ? ev.value : rv.value}};
            r.warnings.push_back(fmt::format("{}: receipt says '{}', email says '{}'; kept the {} value", name, show(rv.value),
                                             show(ev.value), receipt_wins ? "receipt" : "email"));
            r.fields[name] = f;
        }
        email.erase(it);
    }
    for (auto& [name, ev] : email) r.fields[name] = std::move(ev);
    if (r.fields.count("total_amount") && !r.fields.count("currency"))
        r.fields["currency"] = FieldValue{"MYR", 0.95, "email_body", {{"reason", "amount written in RM"}}};

    // Overall: a claim is only as trustworthy as its weakest required field.
    double overall = 1.0;
    for (const auto& req : required_fields()) {
        double best = 0;
        std::string shown = req;
        for (std::size_t b = 0, e; b <= req.size(); b = e + 1) {
            e = req.find('|', b);
            if (e == std::string::npos) e = req.size();
            auto it = r.fields.find(req.substr(b, e - b));
            if (it != r.fields.end()) best = std::max(best, it->second.confidence);
        }
        if (best == 0) {
            r.missing.push_back(req == "member_id|policy_number" ? "member_id or policy_number" : req);
            best = 0.3;
        }
        overall = std::min(overall, best);
    }
    r.confidence = std::round(overall * 1000.0) / 1000.0;
    return r;
}

FieldMap ClaimExtractor::merge_readings(const std::vector<FieldMap>& readings, std::vector<std::string>& warnings,
                                        const ValueJudge& judge) {
    if (readings.size() == 1) return readings.front();
    std::set<std::string> names;
    for (const auto& r : readings)
        for (const auto& [name, _] : r) names.insert(name);
    FieldMap merged;
    for (const auto& name : names) {
        // Group the readings by value; each group keeps its most confident member.
        struct Group {
            const FieldValue* best = nullptr;
            std::vector<std::size_t> passes;
        };
        std::vector<Group> groups;
        for (std::size_t i = 0; i < readings.size(); ++i) {
            auto it = readings[i].find(name);
            if (it == readings[i].end()) continue;
            auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) { return same_value(name, x.best->value, it->second.value); });
            if (g == groups.end()) {
                groups.push_back({&it->second, {i}});
            } else {
                g->passes.push_back(i);
                if (it->second.confidence > g->best->confidence) g->best = &it->second;
            }
        }
        // Support: the best confidence, raised by each other reading that agrees. Two readings
        // of one image are not independent (same paper, same print), so agreement counts
        // for less than agreement between the receipt and the email.
        auto support = [](const Group& g, const std::vector<FieldMap>& all, const std::string& field) {
            double c = g.best->confidence;
            for (std::size_t p : g.passes) {
                const double other = all[p].at(field).confidence;
                if (&all[p].at(field) != g.best) c = 1.0 - (1.0 - c) * (1.0 - 0.5 * other);
            }
            return std::min(c, 0.99);
        };
        std::size_t win = 0;
        double win_support = -1;
        for (std::size_t k = 0; k < groups.size(); ++k) {
            const double s = support(groups[k], readings, name);
            if (s > win_support + 1e-9) win = k, win_support = s;
        }
        // The judge only breaks a tie in readings: a value that more readings agree on wins
        // whatever the judge thinks (measured: overruling a majority lost more than it won).
        if (judge && groups.size() > 1) {
            std::size_t most = 0;
            for (const auto& g : groups) most = std::max(most, g.passes.size());
            std::optional<std::size_t> best;
            double best_rating = -1;
            bool rated = true;
            for (std::size_t k = 0; k < groups.size() && rated; ++k) {
                if (groups[k].passes.size() != most) continue;
                const auto r = judge(name, *groups[k].best);
                rated = r.has_value();
                if (r && *r > best_rating + 1e-9) best = k, best_rating = *r;
            }
            if (rated && best) {
                win = *best;
                win_support = support(groups[win], readings, name);
            }
        }
        // A date whose year a receipt number settled (date_field.cpp: "12/03/2518" beside
        // invoice 2018031210060010139) wins over other readings of it, whose year is a
        // misread or a guess at one (train 197: "2516" mended to 2016 in another reading),
        // when the readings agree on its day and month and only one number-settled year is
        // among them.
        if (name == "service_date" && groups.size() > 1) {
            auto settled = [&](const Group& g) {
                return std::any_of(g.passes.begin(), g.passes.end(),
                                   [&](std::size_t p) { return readings[p].at(name).provenance.contains("year_from_number"); });
            };
            auto day_and_month = [](const FieldValue& v) {
                const std::string iso = v.value.is_string() ? v.value.get<std::string>() : "";
                return iso.size() == 10 ? iso.substr(4) : iso;
            };
            std::optional<std::size_t> only;
            bool one = true, same_day = true;
            for (std::size_t k = 0; k < groups.size(); ++k) {
                same_day = same_day && day_and_month(*groups[k].best) == day_and_month(*groups[0].best);
                if (!settled(groups[k])) continue;
                one = one && !only;
                only = k;
            }
            if (only && one && same_day && *only != win) {
                win = *only;
                win_support = support(groups[win], readings, name);
            }
        }
        // Two readings of one letterhead that differ only at the end, where one has the whole
        // legal form and the other not ("BEMED (SP) SDN. fo" / "BEMED (SP) SDN. BHD."): the
        // complete one was read better, whatever the engine's confidence says.
        if (name == "provider_name" && groups.size() == 2) {
            const std::size_t other = 1 - win;
            const std::string a = normalize_label(groups[win].best->value.is_string() ? groups[win].best->value.get<std::string>() : "");
            const std::string b = normalize_label(groups[other].best->value.is_string() ? groups[other].best->value.get<std::string>() : "");
            std::size_t common = 0;
            while (common < a.size() && common < b.size() && a[common] == b[common]) ++common;
            if (!legal_end(groups[win].best->value) && legal_end(groups[other].best->value) && common * 2 >= std::min(a.size(), b.size()) &&
                common >= 4) {
                win = other;
                win_support = support(groups[win], readings, name);
            }
        }
        FieldValue f = *groups[win].best;
        // Within the winning group, a longer reading that completes a shorter one holds what
        // both saw: the receipt number that kept its prefix ("CS00241999" / "241999"), the
        // letterhead that kept its legal form ("POPULAR BOOK CO. (M) SDN BHD" / "POPULAR
        // BOOK"; "AEON CO. (M) BHD AN" only adds noise and does not count).
        if (name == "receipt_number" || name == "provider_name")
            for (std::size_t p : groups[win].passes) {
                const FieldValue& v = readings[p].at(name);
                if (v.value.is_string() && f.value.is_string() && v.value.get<std::string>().size() > f.value.get<std::string>().size() &&
                    (name == "receipt_number" || legal_end(v.value)))
                    f = v;
            }
        f.confidence = win_support;
        // A cap set by a rule (not by OCR doubt) holds whatever the readings agree on: a total
        // one reading found contested stays capped when another reading of the same amount
        // was not (train 008: 112.48 contested in two readings, clean in the third). It goes
        // into the provenance too, since the confidence model scores the merged value afresh
        // and applies the cap it finds there.
        for (std::size_t p : groups[win].passes)
            if (const auto& pv = readings[p].at(name).provenance; pv.contains("confidence_cap") && pv["confidence_cap"].is_number()) {
                const double cap = pv["confidence_cap"].get<double>();
                f.confidence = std::min(f.confidence, cap);
                add_confidence_cap(f, cap);
            }
        // A doubt about one reading (a mended year) holds only if every reading that gives
        // the value had it: one reading of the same value without it settles the doubt
        // (train 344: "Date: 05/09/2617" mended in two readings, "DD: 05/09/2017" in a third).
        f.provenance.erase("doubt_cap");
        std::optional<double> doubt;
        for (std::size_t p : groups[win].passes) {
            const auto& pv = readings[p].at(name).provenance;
            const auto it = pv.find("doubt_cap");
            if (it == pv.end() || !it->is_number()) {
                doubt.reset();
                break;
            }
            doubt = std::min(doubt.value_or(1.0), it->get<double>());
        }
        if (doubt) {
            f.confidence = std::min(f.confidence, *doubt);
            f.provenance["doubt_cap"] = *doubt;
        }
        nlohmann::json passes = nlohmann::json::array();
        for (std::size_t p : groups[win].passes) passes.push_back(p + 1);
        f.provenance["readings"] = passes;
        f.provenance["readings_total"] = readings.size();
        if (groups.size() > 1 && name != "itemized_charges") {
            double rival = 0;
            std::string others;
            for (std::size_t k = 0; k < groups.size(); ++k) {
                if (k == win) continue;
                rival = std::max(rival, support(groups[k], readings, name));
                others += fmt::format("{}'{}' (reading {})", others.empty() ? "" : ", ", show(groups[k].best->value), groups[k].passes.front() + 1);
            }
            // A close rival means the OCR could not decide: keep the value, trust it less.
            f.confidence = std::max(0.05, f.confidence - 0.5 * rival);
            f.provenance["rival_support"] = std::round(rival * 1000.0) / 1000.0;
            warnings.push_back(fmt::format("{}: OCR readings disagree: kept '{}' (reading {}), other: {}", name, show(f.value),
                                           groups[win].passes.front() + 1, others));
            // A total that no more than half the readings give, against another reading's
            // amount, with nothing on the receipt adding up to it, is the OCR's guess: on the
            // train receipts half such totals were wrong (train 398: "2,10" in one reading,
            // "2.18" in another). It goes to a person.
            const bool arithmetic = feature_of(f, "arith_confirmed").value_or(0) > 0;
            if (name == "total_amount" && 2 * groups[win].passes.size() <= readings.size() && !arithmetic) {
                f.confidence = std::min(f.confidence, kUndecidedReadingsCap);
                add_confidence_cap(f, kUndecidedReadingsCap);
                warnings.push_back(fmt::format("{}: no majority of the OCR readings and no arithmetic on the receipt confirms '{}': "
                                               "confirm the amount",
                                               name, show(f.value)));
            }
        }
        // A date that no more than half the readings give, from characters the OCR itself
        // rated under 50%, is a guess at a smudge: dev 183's "03/01/2018" (for 03/02) was read
        // with word confidence 0 in one reading, "03/0:/2018" in the other two. No reading
        // disagrees with it, so the rule above does not see it, and the date model (fitted on
        // train, where no such date was wrong) cannot. It goes to a person.
        if (const auto word_confidence = feature_of(f, "ocr_word_conf");
            name == "service_date" && 2 * groups[win].passes.size() <= readings.size() && word_confidence &&
            *word_confidence < kUnsureWordsConfidence) {
            f.confidence = std::min(f.confidence, kUndecidedReadingsCap);
            add_confidence_cap(f, kUndecidedReadingsCap);
            warnings.push_back(fmt::format("{}: '{}' was read by {} of {} OCR readings, from characters the OCR rated {:.0f}%: "
                                           "confirm the date",
                                           name, show(f.value), groups[win].passes.size(), readings.size(), 100.0 * *word_confidence));
        }
        merged[name] = std::move(f);
    }
    return merged;
}

nlohmann::json ClaimExtractor::fields_to_json(const FieldMap& fields) {
    nlohmann::json f = nlohmann::json::object();
    for (const auto& [name, v] : fields)
        f[name] = {{"value", v.value}, {"confidence", std::round(v.confidence * 1000.0) / 1000.0}, {"source", v.source}, {"provenance", v.provenance}};
    return f;
}

FieldMap ClaimExtractor::fields_from_json(const nlohmann::json& claim) {
    FieldMap fields;
    if (!claim.is_object()) return fields;
    for (const auto& [name, v] : claim.items()) {
        if (!v.is_object() || !v.contains("value")) continue;
        fields[name] = FieldValue{v["value"], v.value("confidence", 0.0), v.value("source", std::string("receipt")),
                                  v.value("provenance", nlohmann::json::object())};
    }
    return fields;
}

nlohmann::json ClaimResult::to_json() const {
    return {{"claim", ClaimExtractor::fields_to_json(fields)}, {"confidence", confidence}, {"warnings", warnings}, {"missing", missing}};
}

}  // namespace docpipe::claims
