// The amounts of a receipt: the total (and subtotal, tax, rounding, cash and change around
// it) and the itemised charges. Every line is classified once by its label (rules file);
// each total candidate's evidence (label weight, place, its own words' OCR confidence,
// whether the receipt's arithmetic over other lines confirms it: arithmetic.hpp) becomes
// named features, and the fitted chooser (candidate_chooser.hpp) picks one; a digit or
// currency sign misread is repaired only when that arithmetic says so. The hand-set score of
// the same evidence stays the extractor's own confidence and orders the alternatives a
// reviewer sees; the chosen total's evidence becomes the confidence model's features.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include <fmt/core.h>

#include "arithmetic.hpp"
#include "candidate_chooser.hpp"
#include "receipt_reading.hpp"
#include "text.hpp"

namespace docpipe::claims {

using namespace reading;

namespace {

// ---------------------------------------------------------------------------------------
// Receipt lines, classified once.

enum class LineKind { None, Total, Subtotal, Tax, Rounding, Cash, Change, Ignore };

struct Classified {
    LineKind kind = LineKind::None;
    double weight = 0;
    std::vector<Word> words;
    std::vector<Amount> amounts;
};

Classified classify(const TextLine& line, const std::vector<Word>& words, const Rules& rules) {
    Classified c;
    c.words = words;
    c.amounts = find_amounts(line.text);
    std::size_t best_len = 0;
    auto consider = [&](const std::vector<std::string>& phrases, LineKind kind) {
        if (auto hit = best_hit(c.words, phrases); hit && hit->length > best_len) {
            best_len = hit->length;
            c.kind = kind;
            c.weight = 0;
        }
    };
    for (const auto& wp : rules.total_labels) {
        if (auto hit = match_phrase(c.words, wp.phrase); hit && hit->length > best_len) {
            best_len = hit->length;
            c.kind = LineKind::Total;
            c.weight = wp.weight;
        }
    }
    consider(rules.subtotal_labels, LineKind::Subtotal);
    consider(rules.tax_labels, LineKind::Tax);
    consider(rules.rounding_labels, LineKind::Rounding);
    consider(rules.cash_labels, LineKind::Cash);
    consider(rules.change_labels, LineKind::Change);
    consider(rules.ignore_labels, LineKind::Ignore);
    // "Item Qty Price Amount": a column heading, whatever label it also matches.
    int heading_words = 0;
    for (const auto& phrase : rules.table_header_words)
        if (match_phrase(c.words, phrase)) ++heading_words;
    if (heading_words >= 2 && c.amounts.empty()) c.kind = LineKind::Ignore;
    return c;
}

// The amount that belongs to a labelled line: its rightmost amount, or the first amount on
// one of the next two lines when those carry no label of their own (column layouts).
std::optional<std::pair<Amount, std::size_t>> labelled_amount(const std::vector<Classified>& cls, std::size_t i) {
    if (!cls[i].amounts.empty()) return std::make_pair(cls[i].amounts.back(), i);
    for (std::size_t j = i + 1; j < cls.size() && j <= i + 2; ++j) {
        if (cls[j].kind != LineKind::None) break;
        if (!cls[j].amounts.empty()) return std::make_pair(cls[j].amounts.front(), j);
    }
    return std::nullopt;
}

// psm 6 reads a receipt's two columns as one line, so one line can hold two labelled amounts
// side by side ("TOTAL SAVING: 0.00   TOTAL 6.85", "Cash 20.00 Change 13.15"). Read whole,
// such a line takes the longest label for both amounts and the rightmost amount for it (the
// payable total read as a saving). So a line is cut after an amount when the text up to the
// next amount carries a label of its own, and each piece is classified alone. A piece keeps
// the line's text with the rest blanked out, so byte ranges (word confidences, amounts)
// stay those of the OCR line.
constexpr std::size_t kMaxSideBySide = 8;

bool has_amount_label(const std::vector<Word>& words, const Rules& rules) {
    for (const auto& wp : rules.total_labels)
        if (match_phrase(words, wp.phrase)) return true;
    for (const auto* phrases : {&rules.subtotal_labels, &rules.tax_labels, &rules.rounding_labels, &rules.cash_labels,
                                &rules.change_labels, &rules.ignore_labels})
        if (best_hit(words, *phrases)) return true;
    return false;
}

std::string blank_outside(const std::string& text, std::size_t begin, std::size_t end) {
    std::string piece(text.size(), ' ');
    for (std::size_t k = begin; k < end && k < text.size(); ++k) piece[k] = text[k];
    return piece;
}

// `origin[k]` is the position in page_lines of the line that line k is, or was cut from:
// pieces of one printed line share it.
void split_side_by_side(const std::vector<TextLine>& page_lines, const std::vector<std::vector<Word>>& page_words, const Rules& rules,
                        std::vector<TextLine>& lines, std::vector<std::vector<Word>>& words, std::vector<std::size_t>& origin) {
    for (std::size_t i = 0; i < page_lines.size(); ++i) {
        const std::string& text = page_lines[i].text;
        const auto amounts = find_amounts(text);
        std::vector<std::size_t> cuts;  // byte offsets where a new piece starts
        // A printed line holds a few amounts; a long run of them (noise, a hostile email body)
        // is left whole rather than re-read once per amount.
        const std::size_t pairs = amounts.size() <= kMaxSideBySide ? amounts.size() : 0;
        for (std::size_t k = 1; k < pairs; ++k)
            if (has_amount_label(words_of(blank_outside(text, amounts[k - 1].end, amounts[k].end)), rules))
                cuts.push_back(amounts[k - 1].end);
        if (cuts.empty()) {
            lines.push_back(page_lines[i]);
            words.push_back(page_words[i]);
            origin.push_back(i);
            continue;
        }
        cuts.push_back(text.size());
        std::size_t from = 0;
        for (const std::size_t to : cuts) {
            TextLine piece = page_lines[i];
            piece.text = blank_outside(text, from, to);
            words.push_back(words_of(piece.text));
            lines.push_back(std::move(piece));
            origin.push_back(i);
            from = to;
        }
    }
}

// Same length, one digit different, and that digit one Tesseract confuses on receipts with
// the one meant (printed 8 read as 6: "65.10" for 85.10).
bool one_look_alike(const std::string& read, const std::string& meant) {
    static const std::map<char, std::string> kReadFor = {{'1', "47"}, {'4', "1"}, {'7', "1"}, {'0', "689"}, {'6', "058"},
                                                         {'8', "0369"}, {'9', "08"}, {'3', "8"}, {'5', "6"}, {'2', "7"}};
    if (read.size() != meant.size()) return false;
    int diff = 0;
    bool alike = false;
    for (std::size_t k = 0; k < read.size(); ++k) {
        if (read[k] == meant[k]) continue;
        ++diff;
        auto it = kReadFor.find(meant[k]);
        alike = it != kReadFor.end() && it->second.find(read[k]) != std::string::npos;
    }
    return diff == 1 && alike;
}

// Items: a description and one amount, between the header and the totals.
nlohmann::json itemized(const std::vector<TextLine>& lines, const std::vector<Classified>& cls, std::size_t stop, std::int64_t& sum) {
    nlohmann::json items = nlohmann::json::array();
    sum = 0;
    for (std::size_t i = 0; i < stop && i < lines.size(); ++i) {
        if (cls[i].kind != LineKind::None || cls[i].amounts.empty()) continue;
        const Amount& a = cls[i].amounts.back();
        std::string desc = trim(lines[i].text.substr(0, cls[i].amounts.front().begin));
        while (!desc.empty() && (desc.front() == '-' || desc.front() == '*' || desc.front() == ' ')) desc.erase(desc.begin());
        while (!desc.empty() && (desc.back() == ':' || desc.back() == ' ')) desc.pop_back();
        if (!is_letter_line(desc, 0.5)) continue;
        items.push_back({{"description", desc}, {"amount", a.value()}, {"line", lines[i].index}});
        sum += a.cents;
    }
    return items;
}

}  // namespace

void read_amounts(const std::vector<TextLine>& page_lines, const std::vector<std::vector<Word>>& page_words, const Rules& rules,
                  FieldMap& fields, std::vector<std::string>& warnings, const FieldChoice& choice) {
    std::vector<TextLine> lines;
    std::vector<std::vector<Word>> words;
    std::vector<std::size_t> origin;
    split_side_by_side(page_lines, page_words, rules, lines, words, origin);
    // Where a line is on the receipt, as a share of its printed lines (a model feature: the
    // pieces of a cut line do not move the lines after them).
    auto position = [&](std::size_t k) { return static_cast<double>(origin[k] + 1) / static_cast<double>(page_lines.size()); };
    auto same_printed_line = [&](std::size_t a, std::size_t b) { return origin[a] == origin[b]; };
    std::vector<Classified> cls;
    cls.reserve(lines.size());
    for (std::size_t i = 0; i < lines.size(); ++i) cls.push_back(classify(lines[i], words[i], rules));

    // ---- amounts by role --------------------------------------------------------------
    struct Candidate {
        Amount amount;
        std::size_t line = 0;
        double weight = 0;
        std::string misread_from;  // set on a digit-repaired candidate: what the OCR printed
        std::string misread_how;   // how it was misread, when not one digit ("leading '5' taken for a currency sign")
        std::int64_t rounded_from = 0;  // set on a total rounded to 5 sen: the amount before rounding
        int rounded_at = -1;            // the line that shows the rounded amount, when one does
    };
    std::vector<Candidate> totals;
    std::vector<std::int64_t> subtotals, taxes, roundings, cash, change;
    std::optional<std::pair<Amount, std::size_t>> tax_amount;
    std::vector<std::int64_t> summary_totals;  // totals of a GST/SST summary table
    std::size_t first_total_line = lines.size();
    bool in_summary = false;
    auto contains = [](const std::vector<std::int64_t>& v, std::int64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); };
    // Whether some candidate already proposes this amount (a later source adds none twice).
    auto proposed = [&totals](std::int64_t cents) {
        return std::any_of(totals.begin(), totals.end(), [&](const Candidate& t) { return t.amount.cents == cents; });
    };
    std::vector<std::int64_t> class_totals;  // per tax rate, tax included
    std::vector<std::int64_t> included_taxes;  // "GST Included 1.75"
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (!in_summary && best_hit(words[i], rules.summary_headings)) in_summary = true;
        // "Total 0% supplies: 19.83", "Total 6% supplies (Inc. GST): 32.05": per-rate totals
        // whose sum is the payable amount (the "excl." line is before tax and left out).
        // Recognised by the word stem, since OCR mangles the rest ("suppires", "suppli.").
        {
            bool total_word = false, supply_word = false, excluding = false;
            for (const auto& w : words[i]) {
                total_word = total_word || w.norm == "TOTAL";
                supply_word = supply_word || w.norm.rfind("SUPP", 0) == 0;
                excluding = excluding || w.norm.rfind("EXC", 0) == 0;
            }
            if (total_word && supply_word) {
                if (!excluding && !cls[i].amounts.empty() && cls[i].amounts.back().decimals &&
                    !contains(class_totals, cls[i].amounts.back().cents))
                    class_totals.push_back(cls[i].amounts.back().cents);
                continue;
            }
        }
        if (cls[i].kind == LineKind::None || cls[i].kind == LineKind::Ignore) continue;
        auto a = labelled_amount(cls, i);
        if (!a) continue;
        const std::int64_t c = a->first.cents;
        switch (cls[i].kind) {
            case LineKind::Total:
                if (in_summary) {
                    if (c > 0) summary_totals.push_back(c);
                    break;
                }
                if (c > 0) totals.push_back({a->first, a->second, cls[i].weight, {}, {}, 0});
                first_total_line = std::min(first_total_line, i);
                break;
            case LineKind::Subtotal: subtotals.push_back(c); first_total_line = std::min(first_total_line, i); break;
            case LineKind::Tax:
                taxes.push_back(c);
                // "GST Included 1.75": the tax inside the total, not added to a subtotal.
                if (c > 0 && std::any_of(words[i].begin(), words[i].end(), [](const Word& w) { return w.norm.rfind("INCL", 0) == 0; }))
                    included_taxes.push_back(c);
                if (!tax_amount && c >= 0) tax_amount = a;
                break;
            case LineKind::Rounding: roundings.push_back(c); break;
            // "Cash -50.00": the sign is layout noise on tendered and change amounts.
            case LineKind::Cash: cash.push_back(c < 0 ? -c : c); break;
            case LineKind::Change: change.push_back(c < 0 ? -c : c); break;
            default: break;
        }
    }

    // "GST @6% included in total RM 0.66", "TOTAL INCLUDES 6% GST 0.53": a total label on a
    // line that says a tax is included, with an amount a tenth or less of another total,
    // subtotal or cash amount on the receipt: no tax rate makes that the total; it is the
    // tax inside it.
    std::set<std::size_t> included_tax_lines;
    {
        auto says_included_tax = [&](std::size_t i) {
            bool tax = false, incl = false;
            for (const auto& w : words[i]) {
                tax = tax || w.norm == "GST" || w.norm == "SST" || w.norm == "TAX";
                incl = incl || w.norm.rfind("INCL", 0) == 0;
            }
            return tax && incl;
        };
        // An unlabelled amount counts too ("| Due 20.49" above "(Total Included GST @ 6% :
        // 1.42)", whose label the rules do not know): an amount with decimals on a line that
        // names no tax.
        std::int64_t largest_unlabelled = 0;
        for (std::size_t i = 0; i < lines.size(); ++i)
            if (cls[i].kind == LineKind::None && !says_included_tax(i))
                for (const auto& a : cls[i].amounts)
                    if (a.decimals) largest_unlabelled = std::max(largest_unlabelled, a.cents);
        std::vector<Candidate> kept;
        for (const auto& t : totals) {
            std::int64_t larger = 0;
            for (const auto& o : totals) larger = std::max(larger, &o == &t ? 0 : o.amount.cents);
            for (auto v : subtotals) larger = std::max(larger, v);
            for (auto v : cash) larger = std::max(larger, v);
            larger = std::max(larger, largest_unlabelled);
            if (t.amount.cents > 0 && 10 * t.amount.cents <= larger && says_included_tax(t.line)) {
                included_taxes.push_back(t.amount.cents);
                included_tax_lines.insert(t.line);
                continue;
            }
            kept.push_back(t);
        }
        totals = std::move(kept);
    }

    // The receipt's arithmetic (arithmetic.hpp): each line's amounts with the role its label gives.
    const ReceiptArithmetic arith = [&] {
        std::vector<ArithmeticLine> al(lines.size());
        bool summary = false;
        for (std::size_t i = 0; i < lines.size(); ++i) {
            if (!summary && best_hit(words[i], rules.summary_headings)) summary = true;
            ArithmeticLine& a = al[i];
            a.amounts = cls[i].amounts;
            a.text = lines[i].text;
            a.index = lines[i].index;
            a.printed_line = static_cast<int>(origin[i]);
            bool total_word = false, supply_word = false;
            for (const auto& w : words[i]) {
                total_word = total_word || w.norm == "TOTAL";
                supply_word = supply_word || w.norm.rfind("SUPP", 0) == 0;
            }
            switch (cls[i].kind) {
                case LineKind::Total: a.role = summary ? AmountRole::Summary : AmountRole::Total; break;
                case LineKind::Subtotal: a.role = AmountRole::Subtotal; break;
                case LineKind::Tax:
                    a.role = std::any_of(words[i].begin(), words[i].end(), [](const Word& w) { return w.norm.rfind("INCL", 0) == 0; })
                                 ? AmountRole::TaxIncluded
                                 : AmountRole::Tax;
                    break;
                case LineKind::Rounding: a.role = AmountRole::Rounding; break;
                case LineKind::Cash: a.role = AmountRole::Cash; break;
                case LineKind::Change: a.role = AmountRole::Change; break;
                case LineKind::Ignore: a.role = AmountRole::Ignore; break;
                default: a.role = summary ? AmountRole::Summary : AmountRole::None;
            }
            if (total_word && supply_word) a.role = AmountRole::Summary;
            if (included_tax_lines.count(i)) a.role = AmountRole::TaxIncluded;
        }
        return ReceiptArithmetic(std::move(al));
    }();

    // Amounts paid minus change given: what the customer actually paid.
    std::vector<std::int64_t> paid;
    for (auto c : cash)
        for (auto ch : change)
            if (ch >= 0 && c > ch) paid.push_back(c - ch);
    for (auto c : cash)
        if (change.empty()) paid.push_back(c);  // exact payment, no change line

    std::int64_t items_sum = 0;
    nlohmann::json items = itemized(lines, cls, first_total_line, items_sum);

    // The label of the payable amount may be unreadable ("i Protea Sales : 21.20" under a
    // pen mark): an amount on an unlabelled line after the first total/subtotal that equals
    // cash minus change is a candidate too, with the weight of a weak label. It only wins
    // with that confirmation, so it needs both a cash and a change line.
    if (!change.empty()) {
        // From the first total/subtotal label, read or not ("Total Sales (Excluding GST) . 20 60").
        std::size_t block = first_total_line;
        for (std::size_t i = 0; i < first_total_line; ++i)
            if (cls[i].kind == LineKind::Total || cls[i].kind == LineKind::Subtotal) {
                block = i;
                break;
            }
        for (std::size_t i = block; i < lines.size(); ++i) {
            if (cls[i].kind != LineKind::None) continue;
            for (const auto& a : cls[i].amounts)
                if (a.cents > 0 && contains(paid, a.cents)) {
                    if (!proposed(a.cents)) totals.push_back({a, i, 0.6, {}, {}, 0});
                }
        }
    }

    // Amounts the arithmetic on the receipt points at: subtotal + tax and rounding, the tax summary's total (also rounded to 5 sen), the items' sum.
    std::vector<std::int64_t> checks;
    // (Cash minus change is left out: both are OCR readings too, and a misread cash amount
    // would "confirm" a wrong repair.)
    for (auto sub : subtotals) {
        for (auto t : taxes)
            if (t > 0) checks.push_back(sub + t);
        for (auto r : roundings)
            if (r != 0) checks.push_back(sub + r);
        for (auto t : taxes)
            for (auto r : roundings)
                if (t > 0 && r != 0) checks.push_back(sub + t + r);
    }
    for (auto st : summary_totals) {
        checks.push_back(st);
        checks.push_back((st + 2) / 5 * 5);
    }
    std::optional<std::int64_t> class_sum;
    if (class_totals.size() >= 2) {
        class_sum = 0;
        for (auto c : class_totals) *class_sum += c;
        if (*class_sum > 0) checks.push_back(*class_sum);
        else class_sum.reset();
    }
    // What was paid, where the receipt's own arithmetic gives that amount and no total line
    // reads it ("Amt Paid excl. GST RM 106.57", "GST AMT : RM5.33", "PAID BY : CC*7186:RM111.90"
    // beside a "Total SV : 10.56" of loyalty points): two independent readings agree on it, so
    // it is a candidate with the weight of a weak label. Cash that needed change is not the
    // total, so this takes a payment only where no change amount was read.
    if (change.empty() && !checks.empty()) {
        for (std::size_t i = 0; i < lines.size(); ++i) {
            if (cls[i].kind != LineKind::Cash) continue;
            auto a = labelled_amount(cls, i);
            if (!a || a->first.cents <= 0 || !a->first.decimals || !contains(checks, a->first.cents)) continue;
            if (!proposed(a->first.cents)) totals.push_back({a->first, a->second, 0.6, {}, {}, 0});
        }
    }
    // The tax a receipt says is included is 6% (GST; SST on services), 8% or 10% (SST) of
    // the total, to the sen.
    auto tax_included_fits = [&](std::int64_t v) {
        for (auto t : included_taxes)
            for (int rate : {6, 8, 10})
                if (std::llround(static_cast<double>(v) * rate / (100.0 + rate)) == t) return true;
        return false;
    };
    // A labelled total that no check confirms, but that one misread digit or a lost decimal
    // point away from a check, is that check misread ("40.45" for 10.45, "RM 7950" for 79.50):
    // Tesseract confuses 1/4/7, 0/6/8/9, 3/8 and 5/6 on receipts. Added as a repaired
    // candidate; it only wins by being confirmed.
    {
        static const std::map<char, std::string> kLookAlikes = {{'1', "47"}, {'4', "1"}, {'7', "1"}, {'0', "689"}, {'6', "058"},
                                                                {'8', "0369"}, {'9', "08"}, {'3', "8"}, {'5', "6"}, {'2', "7"}};
        // A copy of a read candidate with the amount the arithmetic gives, remembering what
        // was printed (it scores as repaired and is capped for review).
        auto add_repaired = [&totals](Candidate cand, std::int64_t cents) {
            cand.misread_from = cand.amount.text;
            cand.amount.cents = cents;
            cand.amount.repaired = true;
            totals.push_back(std::move(cand));
        };
        const std::size_t originals = totals.size();
        for (std::size_t k = 0; k < originals; ++k) {
            const Candidate cand = totals[k];
            if (checks.empty() || contains(checks, cand.amount.cents)) continue;
            std::vector<std::int64_t> variants;
            if (!cand.amount.decimals) variants.push_back(cand.amount.cents / 100);
            const std::string digits = std::to_string(cand.amount.cents);
            for (std::size_t d = 0; d < digits.size(); ++d) {
                auto alike = kLookAlikes.find(digits[d]);
                if (alike == kLookAlikes.end()) continue;
                for (char replacement : alike->second) {
                    std::string v = digits;
                    v[d] = replacement;
                    variants.push_back(std::stoll(v));
                }
            }
            for (auto v : variants)
                if (v > 0 && contains(checks, v)) {
                    add_repaired(cand, v);
                    break;
                }
        }
        // Cash minus change one digit away from the labelled total, where the tax the receipt
        // says is included fits cash minus change and not the label ("Grand Total : 30.50",
        // "Payment 101.00", "Change 70.10", "GST Included 1.75" = 6% of 30.90): two readings
        // of other lines agree against one, so the label is the misread one.
        for (std::size_t k = 0; k < originals && !change.empty(); ++k) {
            const Candidate cand = totals[k];
            if (tax_included_fits(cand.amount.cents)) continue;
            for (auto p : paid) {
                const std::string a = std::to_string(cand.amount.cents), b = std::to_string(p);
                int diff = a.size() == b.size() ? 0 : 99;
                for (std::size_t d = 0; diff < 99 && d < a.size(); ++d) diff += a[d] != b[d];
                if (diff != 1 || !tax_included_fits(p)) continue;
                add_repaired(cand, p);
                break;
            }
        }
    }

    // A strong total label whose amount did not parse at all ("Total Payable: - 5128"), while
    // the per-rate totals add up to an amount one digit away from what is printed there:
    // that sum, as a repaired candidate (it goes to review: repaired totals score low).
    if (class_sum) {
        const std::string want = std::to_string(*class_sum);
        for (std::size_t i = 0; i < lines.size(); ++i) {
            if (cls[i].kind != LineKind::Total || cls[i].weight < 0.95 || !cls[i].amounts.empty()) continue;
            std::string digits;
            for (char ch : lines[i].text)
                if (std::isdigit(static_cast<unsigned char>(ch))) digits += ch;
            if (digits.size() < 3 || !within_one_edit(digits, want)) continue;
            Candidate c{Amount{}, i, cls[i].weight, lines[i].text, {}, 0};
            c.amount.cents = *class_sum;
            c.amount.decimals = true;
            c.amount.repaired = true;
            c.amount.text = digits;
            c.amount.begin = 0;
            c.amount.end = lines[i].text.size();
            totals.push_back(c);
        }
    }

    // Agreement with the receipt's arithmetic strong enough to stand for the total: one
    // equation over several other lines, or two weaker ones.
    auto strong = [](const std::vector<Equation>& eqs) {
        double sum = 0;
        for (const auto& e : eqs) {
            if (e.weight >= 0.1) return true;
            sum += e.weight;
        }
        return eqs.size() >= 2 && sum >= 0.09;
    };
    // A total printed with a currency sign that OCR read as a digit or a letter ("$8.20"
    // read "58.20", "S8.20"): the amount without its first character, when the arithmetic
    // gives that and not what was read.
    {
        const std::size_t before = totals.size();
        for (std::size_t k = 0; k < before; ++k) {
            const Candidate cand = totals[k];
            if (!cand.misread_from.empty() || contains(checks, cand.amount.cents) || strong(arith.confirming(cand.amount.cents, cand.line)))
                continue;
            for (const auto& m : currency_sign_misreadings(cand.amount)) {
                if (!contains(checks, m.cents) && !strong(arith.confirming(m.cents, cand.line))) continue;
                Candidate r = cand;
                r.misread_from = cand.amount.text;
                r.misread_how = m.how;
                r.amount.cents = m.cents;
                r.amount.repaired = true;
                totals.push_back(std::move(r));
            }
        }
    }
    // The digits at the end of a line, over the number-like tokens there ("Grand Total : 3g .60"
    // -> "360", "TOTAL 2 50" -> "250"), with the byte range they were read from.
    auto trailing_digits = [](const std::string& text, std::size_t& begin, std::size_t& end) {
        const auto toks = split_whitespace(text);
        std::string digits;
        begin = end = text.size();
        for (std::size_t k = toks.size(); k-- > 0;) {
            int d = 0, letters = 0, other = 0;
            for (unsigned char ch : toks[k].text) {
                if (std::isdigit(ch)) ++d;
                else if (std::isalpha(ch)) ++letters;
                else if (ch != '.' && ch != ',' && ch != ':' && ch != '-') ++other;
            }
            if ((d == 0 && toks[k].text.find_first_not_of(".,:-") != std::string::npos) || letters > 1 || other > 0) break;
            if (d == 0) continue;  // a lone separator between the parts
            std::string part;
            for (unsigned char ch : toks[k].text)
                if (std::isdigit(ch)) part += static_cast<char>(ch);
            digits = part + digits;
            begin = toks[k].begin;
            if (end == text.size()) end = toks[k].end;
        }
        return digits;
    };
    // A payable-total label whose amount was misread past parsing or by a lost or added
    // digit ("Grand Total : 3g .60", "TOTAL 2 50") while an equation over other lines gives
    // an amount whose digits are those, or one slip away: that amount, as a repaired
    // candidate (a person confirms it).
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (cls[i].kind != LineKind::Total || cls[i].weight < 0.85 || included_tax_lines.count(i)) continue;
        const bool settled = std::any_of(totals.begin(), totals.end(), [&](const Candidate& t) {
            return t.line == i && (contains(checks, t.amount.cents) || strong(arith.confirming(t.amount.cents, i)));
        });
        if (settled) continue;
        std::size_t b = 0, e = 0;
        const std::string digits = trailing_digits(lines[i].text, b, e);
        if (digits.size() < 3) continue;
        // Where the amount did not parse, or parsed from part of those digits (".60" of
        // "3g .60"), one equation will do; an amount read whole is second-guessed only when
        // two kinds of equation (say cash minus change and the tax summary) agree against it.
        const bool read_whole = std::any_of(cls[i].amounts.begin(), cls[i].amounts.end(), [&](const Amount& a) {
            std::string d;
            for (unsigned char ch : a.text)
                if (std::isdigit(ch)) d += static_cast<char>(ch);
            return d.size() >= digits.size();
        });
        std::set<std::int64_t> tried;
        // What the equations over other lines give, and the per-rate totals' sum ("Total 0%
        // supplies" + "Total 6% supplies (Inc. GST)"), which no equation covers.
        std::vector<std::int64_t> wanted;
        for (const auto& eq : arith.all_for(i))
            if (eq.weight >= 0.1) wanted.push_back(eq.cents);
        if (class_sum) wanted.push_back(*class_sum);
        for (const std::int64_t cents : wanted) {
            if (cents <= 0 || !tried.insert(cents).second) continue;
            const std::string want = std::to_string(cents);
            if (want.size() < 3 || (digits != want && !within_one_edit(digits, want))) continue;
            if (read_whole && arith.confirming(cents, i).size() < 2 && !one_look_alike(digits, want)) continue;
            if (std::any_of(totals.begin(), totals.end(), [&](const Candidate& t) { return t.line == i && t.amount.cents == cents; })) continue;
            Candidate c{Amount{}, i, cls[i].weight, lines[i].text.substr(b, e - b), digits == want ? "its decimal point lost" : "one digit slip", 0};
            c.amount.cents = cents;
            c.amount.decimals = true;
            c.amount.repaired = true;
            c.amount.text = c.misread_from;
            c.amount.begin = b;
            c.amount.end = e;
            totals.push_back(std::move(c));
        }
    }
    // A strong total label whose amount has one or two characters OCR could not read in its
    // whole part ("NET TOTAL : i?.80"), with no other total candidate: the one amount printed
    // elsewhere on the receipt (an item line, cash) whose digits fit the readable ones, as a
    // repaired candidate (a person confirms it).
    if (totals.empty()) {
        static const std::regex blurred(R"((?:^|\s)(\S{1,4})[.,]([0-9]{2})\s*$)");
        for (std::size_t i = 0; i < lines.size() && totals.empty(); ++i) {
            if (cls[i].kind != LineKind::Total || cls[i].weight < 0.85 || !cls[i].amounts.empty()) continue;
            std::smatch m;
            if (!std::regex_search(lines[i].text, m, blurred)) continue;
            const std::string whole = m.str(1), cents = m.str(2);
            const auto unreadable = std::count_if(whole.begin(), whole.end(), [](unsigned char c) { return !std::isdigit(c); });
            if (unreadable == 0 || unreadable > 2) continue;
            if (std::any_of(whole.begin(), whole.end(), [](unsigned char c) { return c >= 0x80; })) continue;  // one byte per digit
            auto fits = [&](const Amount& a) {
                if (!a.decimals || a.cents <= 0) return false;
                const std::string text = std::to_string(a.cents / 100);
                if (text.size() != whole.size() || std::to_string(a.cents % 100 + 100).substr(1) != cents) return false;
                for (std::size_t k = 0; k < whole.size(); ++k)
                    if (std::isdigit(static_cast<unsigned char>(whole[k])) && whole[k] != text[k]) return false;
                return true;
            };
            std::set<std::int64_t> matches;
            std::size_t at = 0;
            for (std::size_t j = 0; j < lines.size(); ++j)
                if (j != i)
                    for (const auto& a : cls[j].amounts)
                        if (fits(a) && matches.insert(a.cents).second) at = j;
            if (matches.size() != 1) continue;
            const std::size_t b = static_cast<std::size_t>(m.position(1));
            Candidate c{Amount{}, i, cls[i].weight, lines[i].text.substr(b, static_cast<std::size_t>(m.position(2) + m.length(2)) - b),
                        fmt::format("unreadable characters; the amount on line {} fits it", lines[at].index), 0};
            c.amount.cents = *matches.begin();
            c.amount.decimals = true;
            c.amount.repaired = true;
            c.amount.text = c.misread_from;
            c.amount.begin = b;
            c.amount.end = lines[i].text.size();
            totals.push_back(std::move(c));
        }
    }
    // Cash payments are rounded to 5 sen: a total of 42.48 with a rounding line, a later
    // total line that reads 42 50, or cash minus change of 42.50, was paid as 42.50.
    bool rounding_line = false;  // a rounding adjustment that is not 0.00
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (cls[i].kind == LineKind::Rounding && (cls[i].amounts.empty() || cls[i].amounts.back().cents != 0)) rounding_line = true;
    {
        const std::size_t before = totals.size();
        for (std::size_t k = 0; k < before; ++k) {
            const Candidate cand = totals[k];
            const std::int64_t v = cand.amount.cents;
            if (!cand.misread_from.empty() || v <= 0 || v % 5 == 0) continue;
            const std::int64_t r = (v + 2) / 5 * 5;
            if (std::any_of(totals.begin(), totals.end(), [&](const Candidate& t) { return t.amount.cents == r; })) continue;
            std::optional<std::size_t> at;
            double weight = cand.weight;
            if (strong(arith.confirming(r, cand.line))) at = cand.line;
            for (std::size_t j = cand.line + 1; !at && rounding_line && j < lines.size(); ++j) {
                if (cls[j].kind != LineKind::Total && cls[j].kind != LineKind::None && cls[j].kind != LineKind::Rounding) continue;
                std::size_t b = 0, e = 0;
                const bool written = std::any_of(cls[j].amounts.begin(), cls[j].amounts.end(), [&](const Amount& a) { return a.cents == r; });
                if (written || trailing_digits(lines[j].text, b, e) == std::to_string(r)) {
                    at = j;
                    if (cls[j].kind == LineKind::Total) weight = std::max(weight, cls[j].weight);
                }
            }
            if (!at) continue;
            // Kept on the line it was read from: the rounded amount is that reading plus the
            // rounding; the line that shows it (often misread) is named in the reason.
            Candidate c = cand;
            c.amount.cents = r;
            c.weight = weight;
            c.rounded_from = v;
            if (*at != cand.line) c.rounded_at = lines[*at].index;
            totals.push_back(std::move(c));
        }
    }
    // No total label read, or none the arithmetic backs: an unlabelled amount in the totals
    // block (or the lower half, with no block) that the arithmetic gives is a candidate
    // with the weight of a weak label; it needs that agreement to be one at all.
    {
        const std::size_t from = arith.totals_start() < lines.size() ? arith.totals_start() : lines.size() / 2;
        for (std::size_t i = from; i < lines.size() && i < from + 60; ++i) {
            if (cls[i].kind != LineKind::None) continue;
            for (const auto& a : cls[i].amounts) {
                if (a.cents <= 0 || !a.decimals) continue;
                if (proposed(a.cents) || !strong(arith.confirming(a.cents, i))) continue;
                totals.push_back({a, i, 0.5, {}, {}, 0});
            }
        }
    }
    bool any_strong = false;
    for (const auto& cand : totals) any_strong = any_strong || strong(arith.confirming(cand.amount.cents, cand.line));

    // The tax summary's total (or that rounded to 5 sen) is arithmetic on the receipt too.
    auto summary_confirms = [&](std::int64_t v) {
        for (auto st : summary_totals)
            if (st == v || (st + 2) / 5 * 5 == v) return true;
        return false;
    };
    // Every candidate with its score, so a reviewer (and whoever tunes the rules) sees what
    // else was on the receipt and why it lost.
    struct Scored {
        std::int64_t cents;
        double score;
        int line;
        std::string why;
    };
    // The largest amount with decimals outside cash/change lines (a candidate feature).
    std::int64_t largest_amount = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (cls[i].kind == LineKind::Cash || cls[i].kind == LineKind::Change) continue;
        for (const auto& a : cls[i].amounts)
            if (a.decimals) largest_amount = std::max(largest_amount, a.cents);
    }
    // Whether another candidate's amount, one the tax included fits as well as `v`, is what an
    // exact equation gives: cash - change, the items, subtotal + tax or subtotal + rounding.
    auto another_fit_exactly_confirmed = [&](std::int64_t v) {
        auto exact = [&](std::int64_t u) {
            if (!change.empty() && contains(paid, u)) return true;
            if (items.size() >= 2 && items_sum == u) return true;
            for (auto st : subtotals) {
                for (auto t : taxes)
                    if (t > 0 && st + t == u) return true;
                for (auto r : roundings)
                    if (r != 0 && st + r == u) return true;
            }
            return false;
        };
        return std::any_of(totals.begin(), totals.end(),
                           [&](const Candidate& c) { return c.amount.cents != v && tax_included_fits(c.amount.cents) && exact(c.amount.cents); });
    };
    nlohmann::json kept_candidates = nlohmann::json::array();  // choice.keep_candidates
    std::vector<Scored> scored;
    auto alternatives = [&](std::int64_t chosen) {
        std::sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) { return a.score > b.score; });
        nlohmann::json out = nlohmann::json::array();
        for (const auto& s : scored)
            if (s.cents != chosen && out.size() < 3)
                out.push_back({{"value", s.cents / 100.0}, {"score", std::round(s.score * 1000) / 1000}, {"line", s.line}, {"reason", s.why}});
        return out;
    };
    double best_score = -1;   // the hand-set score of the chosen candidate
    double best_choice = -1e300;  // the chooser's score of it (the hand-set score without a chooser)
    const Candidate* best = nullptr;
    bool best_confirmed = false;  // for the confidence model's features
    std::string best_why;
    nlohmann::json best_equations = nlohmann::json::array();
    for (const auto& cand : totals) {
        double score = 0.3 + 0.55 * cand.weight;
        std::string why = fmt::format("label weight {:.2f}", cand.weight);
        const std::int64_t v = cand.amount.cents;
        if (!change.empty() && contains(paid, v)) {
            score += 0.2;
            why += ", equals cash minus change";
        } else if (change.empty() && contains(paid, v)) {
            score += 0.08;
            why += ", equals the amount paid";
        }
        bool sums = false;
        for (auto s : subtotals) {
            if (s == v && cand.weight < 0.95) continue;
            for (auto t : taxes)
                if (t > 0 && s + t == v) sums = true;
            for (auto r : roundings)
                if (r != 0 && s + r == v) sums = true;
            for (auto t : taxes)
                for (auto r : roundings)
                    if (s + t + r == v) sums = true;
        }
        // The tax included ("TOTAL INCLUDES 6% GST 1.60") fits, to the sen, every amount within
        // about 8 sen of the total, so it cannot choose between two close amounts: it confirms
        // none where another of them is exactly what cash - change, the items or subtotal +
        // tax give (dev 393: "28.29" misread beside 28.20 that the items and payment give).
        if (tax_included_fits(v) && !another_fit_exactly_confirmed(v)) {
            sums = true;
            why += ", the tax included fits it";
        }
        if (class_sum && *class_sum == v) {
            sums = true;
            why += ", the per-rate totals add up to it";
        }
        if (sums) {
            score += 0.12;
            why += ", subtotal + tax/rounding adds up";
        }
        int repeats = 0;
        // Printed again on another line; two pieces of one OCR line (side by side) are one
        // printing ("Total SV : 10.56  Total GV : 10.56" are points, not the bill twice).
        for (const auto& other : totals)
            if (&other != &cand && other.amount.cents == v && !same_printed_line(other.line, cand.line)) ++repeats;
        if (repeats) {
            score += std::min(0.1, 0.05 * repeats);
            why += ", repeated";
        }
        if (items.size() >= 2 && items_sum == v) {
            score += 0.05;
            why += ", items add up";
        }
        // The equations of arithmetic.hpp, for what the checks above did not already count.
        // A total rounded to 5 sen keeps what confirms the amount before rounding.
        auto eqs = arith.confirming(v, cand.line);
        if (cand.rounded_from)
            for (auto& e : arith.confirming(cand.rounded_from, cand.line))
                if (std::none_of(eqs.begin(), eqs.end(), [&](const Equation& x) { return x.kind == e.kind; })) eqs.push_back(std::move(e));
        nlohmann::json equations = nlohmann::json::array();
        double other_equations = 0;  // the weight of those equations (also a chooser feature)
        {
            double& extra = other_equations;
            for (const auto& e : eqs) {
                equations.push_back(e.text);
                const bool counted = (e.kind == "cash-change" && !change.empty() && contains(paid, v)) ||
                                     (e.kind == "paid" && change.empty() && contains(paid, v)) ||
                                     (e.kind == "items" && items.size() >= 2 && items_sum == v) || (e.kind == "subtotal" && sums) ||
                                     (e.kind == "tax-summary" && (summary_confirms(v) || (class_sum && *class_sum == v))) ||
                                     (e.kind == "tax-included" && tax_included_fits(v));
                if (!counted) extra += e.weight;
            }
            score += std::min(extra, 0.2);
            if (!eqs.empty()) why += ", arithmetic: " + eqs.front().text + (eqs.size() > 1 ? fmt::format(" (+{} more)", eqs.size() - 1) : "");
        }
        // Calibration on the SROIE dev split: a total that no arithmetic confirms was right
        // less often than 0.9 claims, so only a cross-checked total may score that high.
        const bool confirmed = why.find("cash minus change") != std::string::npos || sums ||
                               (items.size() >= 2 && items_sum == v) || summary_confirms(v) || strong(eqs);
        if (!confirmed) score = std::min(score, 0.88);
        // Another candidate is what the receipt's arithmetic gives; this one is not.
        if (!confirmed && any_strong) {
            score -= 0.1;
            why += ", another amount is what the arithmetic gives";
        }
        // The receipt's own arithmetic (subtotal + tax, tax summary) gives other amounts.
        if (!confirmed && !checks.empty()) {
            score -= 0.05;
            why += ", not what the subtotal/tax arithmetic gives";
        }
        if (cand.rounded_from) {
            why += fmt::format(", {} rounded to 5 sen", format_cents(cand.rounded_from));
            if (cand.rounded_at >= 0) why += fmt::format(" (line {} shows it)", cand.rounded_at);
            if (rounding_line) {
                score += 0.1;
                why += " as the rounding line says";
            }
        }
        if (cand.amount.repaired) score -= cand.misread_from.empty() ? 0.1 : 0.05;
        if (cand.amount.comma_decimal) score -= 0.05;
        // Later lines carry the final amount (after rounding); a small nudge breaks ties.
        if (!cand.misread_from.empty()) {
            if (cand.misread_how.empty()) why += fmt::format(", read as '{}', one misread digit from what the arithmetic gives", cand.misread_from);
            else why += fmt::format(", read as '{}' ({}), what the arithmetic gives", cand.misread_from, cand.misread_how);
        }
        const bool summary = summary_confirms(v);
        if (summary) {
            score += 0.08;
            why += ", equals the tax summary's total";
        }
        // "Total : 20.00 1.20" is a table row (amount, tax), not a payable line: its last
        // column is smaller than the one before it.
        if (const auto& row = cls[cand.line].amounts;
            row.size() >= 2 && row.back().cents == cand.amount.cents && cand.amount.decimals &&
            row[row.size() - 2].decimals && row[row.size() - 2].cents > cand.amount.cents) {
            score -= 0.2;
            why += ", but it is the smaller last column of a table row";
        }
        score += 0.02 * static_cast<double>(cand.line) / static_cast<double>(lines.size());
        // A repaired amount was misread, so its own word's OCR confidence is low by
        // construction; the arithmetic that repaired it carries half the weight.
        const double factor = ocr_factor_at(lines[cand.line], cand.amount.begin, cand.amount.end);
        score *= cand.misread_from.empty() ? factor : std::sqrt(factor);
        // A repaired amount is not what is printed: however well it adds up, a person confirms it.
        if (!cand.misread_from.empty()) score = std::min(score, 0.85);
        scored.push_back({cand.amount.cents, score, lines[cand.line].index, why});
        // The same evidence as named numbers, for the fitted chooser (candidate_chooser.hpp).
        const bool paid_change = !change.empty() && contains(paid, v), paid_only = change.empty() && contains(paid, v);
        const auto& row = cls[cand.line].amounts;
        const CandidateFeatures fx = {
            {"label_weight", cand.weight},
            {"cash_change", paid_change ? 1.0 : 0.0},
            {"paid", paid_only ? 1.0 : 0.0},
            {"subtotal_sum", sums ? 1.0 : 0.0},
            {"repeats", static_cast<double>(std::min(repeats, 2))},
            {"items_sum", items.size() >= 2 && items_sum == v ? 1.0 : 0.0},
            {"other_equations", std::min(other_equations, 0.2)},
            {"confirmed", confirmed ? 1.0 : 0.0},
            {"other_confirmed", !confirmed && any_strong ? 1.0 : 0.0},
            {"checks_disagree", !confirmed && !checks.empty() ? 1.0 : 0.0},
            {"rounded", cand.rounded_from ? 1.0 : 0.0},
            {"rounding_line", cand.rounded_from && rounding_line ? 1.0 : 0.0},
            {"repaired", cand.amount.repaired && cand.misread_from.empty() ? 1.0 : 0.0},
            {"misread", cand.misread_from.empty() ? 0.0 : 1.0},
            {"comma_decimal", cand.amount.comma_decimal ? 1.0 : 0.0},
            {"summary", summary ? 1.0 : 0.0},
            {"table_row", row.size() >= 2 && row.back().cents == v && cand.amount.decimals && row[row.size() - 2].decimals &&
                                  row[row.size() - 2].cents > v
                              ? 1.0
                              : 0.0},
            {"position", position(cand.line)},
            {"ocr_factor", factor},
            {"largest", v >= largest_amount ? 1.0 : 0.0},
            {"decimals", cand.amount.decimals ? 1.0 : 0.0},
        };
        const double chosen_by = choice.chooser ? choice.chooser->score(fx) : score;
        if (choice.keep_candidates) {
            nlohmann::json named = nlohmann::json::object();
            for (const auto& [name, x] : fx) named[std::string(name)] = x;
            kept_candidates.push_back({{"cents", v}, {"line", lines[cand.line].index}, {"hand_score", score}, {"features", named}});
        }
        if (chosen_by > best_choice) {
            best_choice = chosen_by;
            best_score = score;
            best = &cand;
            best_confirmed = confirmed;
            best_why = why;
            best_equations = equations;
        }
    }
    // The fitted chooser and the hand-set score are two judges of the same evidence. Where
    // they pick different amounts the total is contested (the dev receipt whose 'Total
    // Rounded 28.20' agrees with cash - change and the items, while the chooser took a
    // '28.29' read one line above): a person decides, and the review reason names the rival.
    // A copy: alternatives() sorts `scored`.
    std::optional<Scored> hand_rival;
    if (choice.chooser && best)
        for (const auto& s : scored)
            if (s.cents != best->amount.cents && s.score > best_score && (!hand_rival || s.score > hand_rival->score)) hand_rival = s;
    // Cash totals are rounded to 5 sen in Malaysia: when the chosen amount is not, and the
    // rounded amount is written on the receipt too, that is what was paid.
    std::optional<std::pair<std::int64_t, std::size_t>> rounded;
    if (best && best->amount.cents % 5 != 0) {
        const std::int64_t r = (best->amount.cents + 2) / 5 * 5;
        for (std::size_t i = best->line; i < lines.size() && !rounded; ++i)
            for (const auto& a : cls[i].amounts)
                if (a.cents == r && (cls[i].kind == LineKind::Total || cls[i].kind == LineKind::Cash || cls[i].kind == LineKind::None))
                    rounded = std::make_pair(r, i);
    }
    // What the extractor knows about the chosen total, for the confidence model
    // (confidence_model.hpp, which documents each feature; merge and calibration add the
    // readings' agreement and the extractor's confidence itself).
    auto total_features = [&](std::int64_t cents, std::size_t line, std::size_t begin, std::size_t end, double label_weight, bool confirmed,
                              std::size_t equations, bool repaired, bool fallback) {
        double rival = -1;
        std::set<std::int64_t> values;
        for (const auto& s : scored) {
            values.insert(s.cents);
            if (s.cents != cents) rival = std::max(rival, s.score);
        }
        std::int64_t largest = 0;
        for (std::size_t i = 0; i < lines.size(); ++i) {
            if (cls[i].kind == LineKind::Cash || cls[i].kind == LineKind::Change) continue;
            for (const auto& a : cls[i].amounts)
                if (a.decimals) largest = std::max(largest, a.cents);
        }
        return nlohmann::json{
            {"label_weight", label_weight},
            {"arith_confirmed", confirmed ? 1.0 : 0.0},
            {"arith_equations", static_cast<double>(std::min<std::size_t>(equations, 3))},
            {"repaired", repaired ? 1.0 : 0.0},
            {"ocr_word_conf", word_confidence_at(lines[line], begin, end)},
            {"largest_amount", cents >= largest ? 1.0 : 0.0},
            {"position", position(line)},
            {"margin", rival < 0 ? 0.5 : std::clamp(best_score - rival, 0.0, 0.5)},
            {"candidates", static_cast<double>(std::min<std::size_t>(values.size(), 5))},
            {"no_label", fallback ? 1.0 : 0.0},
        };
    };
    // Caps a contested total below the high band and says which amount the rules preferred.
    auto mark_if_contested = [&](FieldValue& f, std::int64_t chosen, int chosen_line) {
        if (hand_rival && hand_rival->cents != chosen)
            mark_contested(f, "total_amount", format_cents(chosen), chosen_line, format_cents(hand_rival->cents), hand_rival->line,
                           hand_rival->why, warnings);
    };
    if (best && rounded) {
        FieldValue f = make_field(rounded->first / 100.0, std::min(0.95, best_score), lines[rounded->second]);
        f.provenance["features"] = total_features(rounded->first, best->line, best->amount.begin, best->amount.end, best->weight, best_confirmed,
                                                  best_equations.size(), !best->misread_from.empty(), false);
        f.provenance["reason"] = best_why + ", rounded to 5 sen as written on line " + std::to_string(lines[rounded->second].index);
        if (!best_equations.empty()) f.provenance["arithmetic"] = best_equations;
        mark_if_contested(f, rounded->first, lines[rounded->second].index);
        fields["total_amount"] = f;
    } else if (best) {
        FieldValue f = make_field(best->amount.value(), std::min(0.99, best_score), lines[best->line]);
        f.provenance["features"] = total_features(best->amount.cents, best->line, best->amount.begin, best->amount.end, best->weight,
                                                  best_confirmed, best_equations.size(), !best->misread_from.empty() || best->amount.repaired,
                                                  false);
        f.provenance["reason"] = best_why;
        if (!best_equations.empty()) f.provenance["arithmetic"] = best_equations;
        if (!best->misread_from.empty()) f.provenance["confidence_cap"] = 0.85;
        if (!best->misread_how.empty()) {
            f.provenance["misread_from"] = best->misread_from;
            warnings.push_back(fmt::format("total_amount: read '{}' on line {} ({}); the receipt's arithmetic gives {}: {}", best->misread_from,
                                           lines[best->line].index, best->misread_how, format_cents(best->amount.cents),
                                           best_equations.empty() ? std::string("subtotal + tax") : best_equations.front().get<std::string>()));
        }
        mark_if_contested(f, best->amount.cents, lines[best->line].index);
        if (auto alt = alternatives(best->amount.cents); !alt.empty()) f.provenance["alternatives"] = alt;
        fields["total_amount"] = f;
        // A distinct larger labelled total that is not what was paid is worth a warning.
        for (const auto& cand : totals)
            if (cand.amount.cents != best->amount.cents && cand.weight >= 0.95 && best->weight >= 0.95)
                warnings.push_back(fmt::format("total_amount: two labelled totals disagree ({} on line {}, {} on line {}); chose {}",
                                               format_cents(best->amount.cents), lines[best->line].index, format_cents(cand.amount.cents),
                                               lines[cand.line].index, format_cents(best->amount.cents)));
    } else if (!paid.empty()) {
        // No total label read: cash minus change is the next best evidence.
        for (std::size_t i = 0; i < lines.size(); ++i)
            if (cls[i].kind == LineKind::Cash) {
                FieldValue f = make_field(paid.front() / 100.0, 0.5 * ocr_factor(lines[i]), lines[i]);
                f.provenance["features"] = total_features(paid.front(), i, 0, lines[i].text.size(), 0.0, false, 0, false, true);
                f.provenance["reason"] = "no total label; cash minus change";
                fields["total_amount"] = f;
                warnings.push_back("total_amount: no total label read; used cash minus change");
                break;
            }
    } else {
        // No total label and nothing paid read, but a subtotal: the amount due is the subtotal
        // plus the tax added to it and any rounding (receipts that print no TOTAL line, or
        // whose TOTAL line the OCR lost). Weak evidence: it goes to review.
        for (std::size_t i = lines.size(); i-- > 0;) {
            if (cls[i].kind != LineKind::Subtotal) continue;
            const auto a = labelled_amount(cls, i);
            if (!a || a->first.cents <= 0) continue;
            std::int64_t due = a->first.cents;
            std::string how = "no total label; the subtotal";
            for (std::size_t j = i + 1; j < lines.size(); ++j) {
                if (cls[j].kind != LineKind::Tax && cls[j].kind != LineKind::Rounding) continue;
                const auto extra = labelled_amount(cls, j);
                if (!extra || included_tax_lines.count(j)) continue;
                const bool included = cls[j].kind == LineKind::Tax &&
                                      std::any_of(words[j].begin(), words[j].end(), [](const Word& w) { return w.norm.rfind("INCL", 0) == 0; });
                if (included || extra->first.cents == 0) continue;
                // A tax or rounding is a small part of the bill; a larger amount is something else.
                if (std::llabs(extra->first.cents) * 4 > a->first.cents) continue;
                due += extra->first.cents;
                how += cls[j].kind == LineKind::Tax ? " + tax" : " + rounding";
            }
            FieldValue f = make_field(due / 100.0, 0.45 * ocr_factor(lines[i]), lines[i]);
            f.provenance["features"] = total_features(due, i, a->first.begin, a->first.end, 0.0, false, 0, false, true);
            f.provenance["reason"] = how;
            f.provenance["confidence_cap"] = 0.7;  // never routed past a person, whatever the model says
            fields["total_amount"] = f;
            warnings.push_back(fmt::format("total_amount: no total label read; used {} on line {}", how.substr(how.find(';') + 2), lines[i].index));
            break;
        }
    }
    if (auto t = fields.find("total_amount"); t != fields.end() && t->second.value.get<double>() <= 0) fields.erase(t);
    if (auto t = fields.find("total_amount"); t != fields.end()) {
        for (std::size_t i = 0; i < lines.size(); ++i) {
            if (!best_hit(words[i], rules.voucher_labels) || cls[i].amounts.empty()) continue;
            const std::int64_t v = cls[i].amounts.back().cents;
            if (v == 0) continue;
            t->second.confidence = std::min(t->second.confidence, 0.85);
            t->second.provenance["confidence_cap"] = 0.85;  // merging readings must not lift it again
            t->second.provenance["reason"] = t->second.provenance.value("reason", "") + ", part paid by coupon/voucher";
            warnings.push_back(fmt::format("total_amount: {} was paid after a coupon/voucher of {} (line {}): confirm which amount is claimable",
                                           format_cents(std::llround(t->second.value.get<double>() * 100)), format_cents(v < 0 ? -v : v),
                                           lines[i].index));
            break;
        }
    }

    if (choice.keep_candidates)
        if (auto t = fields.find("total_amount"); t != fields.end()) t->second.provenance["candidates"] = std::move(kept_candidates);

    if (tax_amount && tax_amount->first.cents > 0) {
        const std::string norm = normalize_label(lines[tax_amount->second].text);
        const std::string field = contains_words(norm, "GST") ? "gst_amount" : "sst_amount";
        fields[field] = make_field(tax_amount->first.value(), 0.8 * ocr_factor(lines[tax_amount->second]), lines[tax_amount->second]);
    }
    if (!items.empty()) {
        FieldValue f;
        f.value = items;
        f.confidence = items.size() >= 2 && best && items_sum == best->amount.cents ? 0.9 : 0.6;
        f.source = "receipt";
        f.provenance = {{"source", "receipt"}, {"lines", items.size()}};
        fields["itemized_charges"] = f;
    }
}

}  // namespace docpipe::claims
