#include "arithmetic.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>

#include <fmt/core.h>

namespace docpipe::claims {

namespace {

// Bounds that keep a long document (a 20-page itemised bill) linear: how many item lines a
// sum runs over, how far a subtotal may stand above the total it leads to.
constexpr std::size_t kMaxItems = 80;
constexpr std::size_t kMaxChain = 15;

bool is_start_role(AmountRole r) { return r == AmountRole::Subtotal || r == AmountRole::Total; }

std::string lines_text(const std::vector<ArithmeticLine>& lines, std::size_t first, std::size_t last) {
    return first == last ? fmt::format("line {}", lines[first].index) : fmt::format("lines {}-{}", lines[first].index, lines[last].index);
}

// A tax of `rate` percent on `base`, to the sen, within one sen (receipts round per line).
bool tax_fits(std::int64_t base, std::int64_t tax, int rate) {
    return std::llabs(std::llround(static_cast<double>(base) * rate / 100.0) - tax) <= 1;
}

}  // namespace

std::string join_amounts(const std::vector<std::int64_t>& cents) {
    std::string out;
    for (std::size_t k = 0; k < cents.size(); ++k) {
        if (k) out += cents[k] < 0 ? " - " : " + ";
        out += format_cents(k && cents[k] < 0 ? -cents[k] : cents[k]);
    }
    return out;
}

ReceiptArithmetic::ReceiptArithmetic(std::vector<ArithmeticLine> lines) : lines_(std::move(lines)) {
    const std::size_t n = lines_.size();
    // A label with its amount on the line below ("TOTAL" / "8.20"; a right-aligned amount
    // column read as its own line): the amount takes the label's role, the label line none.
    for (std::size_t i = 0; i + 1 < n; ++i) {
        const AmountRole r = lines_[i].role;
        if (r == AmountRole::None || r == AmountRole::Ignore || r == AmountRole::Summary || !lines_[i].amounts.empty()) continue;
        for (std::size_t j = i + 1; j < n && j <= i + 2; ++j) {
            if (lines_[j].role != AmountRole::None) break;
            if (lines_[j].amounts.empty()) continue;
            // A total label over a run of amount lines heads a column ("Item Qty Total").
            bool column = false;
            for (std::size_t k = j + 1; r == AmountRole::Total && k < n && k <= j + 2 && lines_[k].role == AmountRole::None; ++k)
                column = column || !lines_[k].amounts.empty();
            if (column) break;
            lines_[j].role = r;
            lines_[i].role = AmountRole::Ignore;
            break;
        }
    }
    totals_start_ = n;
    for (std::size_t i = 0; i < n; ++i)
        if (is_start_role(lines_[i].role) && !lines_[i].amounts.empty()) {
            totals_start_ = i;
            break;
        }

    // ---- items: the unlabelled amounts above the totals block add up to a total ----------
    // Each item line's rightmost amount (the line amount after quantity and unit price).
    // Header noise above the items is skipped by also trying every run that ends at the
    // last item (at least two items; one item alone is a repeat, weaker).
    std::vector<std::size_t> item_lines;
    for (std::size_t i = 0; i < totals_start_; ++i)
        if (lines_[i].role == AmountRole::None && !lines_[i].amounts.empty()) item_lines.push_back(i);
    if (item_lines.size() > kMaxItems) item_lines.erase(item_lines.begin(), item_lines.end() - static_cast<long>(kMaxItems));
    // Item amounts printed with a "$" or "S" before them ("$7.10", read as 57.10): summed
    // once as read and once without the sign.
    std::vector<std::int64_t> as_read, unsigned_sum;
    for (auto i : item_lines) {
        const Amount& a = lines_[i].amounts.back();
        as_read.push_back(a.cents);
        const bool sign = !a.text.empty() && (a.text[0] == '$' || a.text[0] == 'S' || a.text[0] == 's');
        const auto m = sign ? currency_sign_misreadings(a) : std::vector<Misreading>{};
        unsigned_sum.push_back(m.empty() ? a.cents : m.front().cents);
    }
    for (const auto* values : {&as_read, &unsigned_sum}) {
        if (item_lines.empty() || (values == &unsigned_sum && unsigned_sum == as_read)) continue;
        const char* label = values == &as_read ? "items" : "items without their currency signs";
        std::int64_t sum = 0;
        std::vector<std::int64_t> parts;
        for (std::size_t k = item_lines.size(); k-- > 0;) {
            const std::int64_t a = (*values)[k];
            sum += a;
            parts.insert(parts.begin(), a);
            const std::size_t count = item_lines.size() - k;
            if (count < 2 && item_lines.size() >= 2) continue;
            if (sum <= 0) continue;
            Equation e;
            e.cents = sum;
            e.kind = "items";
            e.weight = count >= 2 ? (k == 0 ? 0.12 : 0.1) : 0.04;
            e.lines.assign(item_lines.begin() + static_cast<long>(k), item_lines.end());
            e.text = fmt::format("{} {} = {} ({})", label, count > 8 ? fmt::format("of {} lines", count) : join_amounts(parts), format_cents(sum),
                                 lines_text(lines_, item_lines[k], item_lines.back()));
            equations_.push_back(std::move(e));
        }
    }

    // ---- cash tendered minus change -------------------------------------------------------
    std::vector<std::size_t> cash, change;
    for (std::size_t i = 0; i < n; ++i) {
        if (lines_[i].amounts.empty()) continue;
        if (lines_[i].role == AmountRole::Cash) cash.push_back(i);
        if (lines_[i].role == AmountRole::Change) change.push_back(i);
    }
    for (auto c : cash) {
        const std::int64_t paid = std::llabs(lines_[c].amounts.back().cents);
        if (change.empty() && paid > 0) {
            equations_.push_back({paid, "paid", fmt::format("paid {} (line {})", format_cents(paid), lines_[c].index), 0.05, {c}});
            continue;
        }
        for (auto ch : change) {
            const std::int64_t given = std::llabs(lines_[ch].amounts.back().cents);
            if (paid <= given) continue;
            equations_.push_back({paid - given, "cash-change",
                                  fmt::format("cash {} - change {} = {} (lines {}, {})", format_cents(paid), format_cents(given),
                                              format_cents(paid - given), lines_[c].index, lines_[ch].index),
                                  0.15, {c, ch}});
        }
    }

    // ---- tax-summary rows: amount and its tax at 6, 8 or 10 per cent ----------------------
    {
        std::int64_t total = 0;
        std::vector<std::int64_t> parts;
        std::vector<std::size_t> used;
        for (std::size_t i = 0; i < n; ++i) {
            const auto& l = lines_[i];
            if (l.amounts.size() < 2 || l.role == AmountRole::Total || l.role == AmountRole::Cash || l.role == AmountRole::Change) continue;
            const bool percent = l.text.find('%') != std::string::npos;
            if (!percent && l.role != AmountRole::Summary) continue;
            const std::size_t m = l.amounts.size();
            const std::int64_t a = l.amounts[m - 2].cents, b = l.amounts[m - 1].cents;
            std::optional<std::int64_t> row;
            // "SR 6% 7.74 0.46 8.20": the row's own total.
            if (m >= 3 && l.amounts[m - 3].cents > 0 && l.amounts[m - 3].cents + a == b) row = b;
            for (int rate : {6, 8, 10}) {
                if (row || a <= 0 || b <= 0) break;
                if (tax_fits(a, b, rate)) row = a + b;                                              // amount before tax, tax
                else if (std::llabs(std::llround(static_cast<double>(a) * rate / (100.0 + rate)) - b) <= 1) row = a;  // amount with tax in it
            }
            if (!row && b == 0 && a > 0 && l.text.find("0%") != std::string::npos) row = a;  // zero-rated row
            if (!row) continue;
            total += *row;
            parts.push_back(*row);
            used.push_back(i);
        }
        if (!used.empty() && total > 0)
            equations_.push_back({total, "tax-summary",
                                  fmt::format("tax summary {}{} ({})", parts.size() > 1 ? join_amounts(parts) + " = " : "", format_cents(total),
                                              lines_text(lines_, used.front(), used.back())),
                                  0.1, used});
    }
}

std::vector<Equation> ReceiptArithmetic::chains_to(std::size_t own) const {
    std::vector<Equation> out;
    if (own > lines_.size()) own = lines_.size();
    // A subtotal (or an earlier total) plus what follows it down to the candidate: tax,
    // service charge, rounding, discounts (the unlabelled amounts in between count too).
    for (std::size_t s = own > kMaxChain ? own - kMaxChain : 0; s < own; ++s) {
        if (!is_start_role(lines_[s].role) || lines_[s].amounts.empty()) continue;
        const std::int64_t start = lines_[s].amounts.back().cents;
        if (start <= 0) continue;
        std::int64_t sum = start;
        std::vector<std::int64_t> parts{start};
        std::vector<std::size_t> used{s};
        bool broken = false;
        for (std::size_t j = s + 1; j < own && !broken; ++j) {
            const auto& l = lines_[j];
            if (l.amounts.empty()) continue;
            switch (l.role) {
                case AmountRole::Tax:
                case AmountRole::Rounding:
                case AmountRole::None: {
                    const std::int64_t a = l.amounts.back().cents;
                    if (a == 0) break;
                    sum += a;
                    parts.push_back(a);
                    used.push_back(j);
                    break;
                }
                case AmountRole::Ignore: {
                    // "Discount -1.00": a negative amount lowers what is paid.
                    const std::int64_t a = l.amounts.back().cents;
                    if (a < 0) {
                        sum += a;
                        parts.push_back(a);
                        used.push_back(j);
                    }
                    break;
                }
                case AmountRole::TaxIncluded:
                case AmountRole::Summary: break;
                default: broken = true;  // another subtotal/total, cash, change: its own chain
            }
        }
        if (broken) continue;
        // Nothing added in between: the same amount read twice, weaker than a sum.
        Equation e;
        e.cents = sum;
        e.kind = "subtotal";
        e.lines = used;
        e.weight = parts.size() == 1 ? 0.05 : 0.12;
        const char* what = lines_[s].role == AmountRole::Subtotal ? "subtotal" : "earlier total";
        e.text = parts.size() == 1 ? fmt::format("{} {} (line {})", what, format_cents(start), lines_[s].index)
                                   : fmt::format("{} {} = {} ({})", what, join_amounts(parts), format_cents(sum), lines_text(lines_, s, used.back()));
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<Equation> ReceiptArithmetic::confirming(std::int64_t cents, std::size_t own) const {
    std::map<std::string, Equation> best;  // kind -> strongest
    for (auto& e : all_for(own)) {
        if (e.cents != cents) continue;
        auto it = best.find(e.kind);
        if (it == best.end() || e.weight > it->second.weight) best[e.kind] = std::move(e);
    }
    // "GST included 1.75": 6% (8%, 10%) of the total, tax included, to the sen.
    for (std::size_t i = 0; i < lines_.size() && !best.count("tax-included"); ++i) {
        if (lines_[i].role != AmountRole::TaxIncluded || lines_[i].amounts.empty() || i == own) continue;
        const std::int64_t t = lines_[i].amounts.back().cents;
        for (int rate : {6, 8, 10})
            if (t > 0 && std::llround(static_cast<double>(cents) * rate / (100.0 + rate)) == t) {
                best["tax-included"] = {cents, "tax-included",
                                        fmt::format("tax included {} is {}% of {} (line {})", format_cents(t), rate, format_cents(cents), lines_[i].index),
                                        0.04, {i}};
                break;
            }
    }
    std::vector<Equation> out;
    for (auto& [k, e] : best) out.push_back(std::move(e));
    std::sort(out.begin(), out.end(), [](const Equation& a, const Equation& b) { return a.weight > b.weight; });
    return out;
}

bool ReceiptArithmetic::same_printed_line(std::size_t i, std::size_t own) const {
    if (i == own) return true;
    if (i >= lines_.size() || own >= lines_.size()) return false;
    return lines_[own].printed_line >= 0 && lines_[i].printed_line == lines_[own].printed_line;
}

std::vector<Equation> ReceiptArithmetic::all_for(std::size_t own) const {
    std::vector<Equation> all;
    // Never the candidate's own line; and not the same amount read off another piece of that
    // printed line ("Total SV : 10.56  Total GV : 10.56"): that is one printing, not a check.
    // A sum that uses a sibling piece with other lines ("GST 0.60   TOTAL 10.60" under a
    // subtotal) is a check.
    auto consider = [&](Equation e) {
        if (std::find(e.lines.begin(), e.lines.end(), own) != e.lines.end()) return;
        if (e.lines.size() == 1 && same_printed_line(e.lines.front(), own)) return;
        all.push_back(std::move(e));
    };
    for (const auto& e : equations_) consider(e);
    for (const auto& e : chains_to(own)) consider(e);
    // The unlabelled amounts right above the candidate add up to it (its label unread, or
    // a layout whose totals block the labels did not find): at least two of them.
    {
        std::int64_t sum = 0;
        std::vector<std::int64_t> parts;
        std::vector<std::size_t> used;
        for (std::size_t j = std::min(own, lines_.size()); j-- > 0 && used.size() < kMaxItems;) {
            const auto& l = lines_[j];
            if (l.amounts.empty()) continue;
            if (l.role != AmountRole::None) break;
            sum += l.amounts.back().cents;
            parts.insert(parts.begin(), l.amounts.back().cents);
            used.insert(used.begin(), j);
            if (used.size() >= 2 && sum > 0)
                consider({sum, "items", fmt::format("items {} = {} ({})", used.size() > 8 ? fmt::format("of {} lines", used.size()) : join_amounts(parts),
                                                    format_cents(sum), lines_text(lines_, used.front(), used.back())),
                          0.1, used});
        }
    }
    return all;
}

std::vector<Misreading> currency_sign_misreadings(const Amount& printed) {
    std::vector<Misreading> out;
    const std::string& t = printed.text;
    if (t.size() < 5 || printed.cents <= 0) return out;
    const char c = t[0];
    // The shapes a "$" (or the "S" of a currency) takes in OCR.
    static const std::string kSignLike = "$Ss58B";
    if (kSignLike.find(c) == std::string::npos) return out;
    const std::string rest = t.substr(1);
    if (rest.empty() || !std::isdigit(static_cast<unsigned char>(rest[0]))) return out;
    auto a = parse_number_token(rest);
    if (!a || !a->decimals || a->cents <= 0) return out;
    out.push_back({a->cents, fmt::format("leading '{}' taken for a currency sign", c)});
    return out;
}

}  // namespace docpipe::claims
