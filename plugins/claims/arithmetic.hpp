// The receipt's own arithmetic as evidence for its total: item amounts that add up to it,
// a subtotal (or an earlier total) plus tax, service charge and rounding, cash tendered
// minus change, a tax-summary row (amount + tax at a stated rate). Each equation reads
// other lines than the total's own, so when one gives the amount a total line shows, two
// independent readings agree; when one gives an amount a total line shows *misread*
// ("58.20" where the items add up to 8.20: a "$" read as a 5), the equation says what the
// printed amount was.
//
// Generic on purpose: the roles come from the extractor's labels (rules file), the
// equations only from the amounts; no shop or layout is named. Pure, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "amount.hpp"

namespace docpipe::claims {

// What a receipt line's amount is, as the extractor's labels classify it.
enum class AmountRole {
    None,         // no label: an item line, or text
    Total,        // a payable-total label
    Subtotal,     // before tax / rounding
    Tax,          // tax added to the subtotal
    TaxIncluded,  // "GST included 1.75": inside the total, not added
    Rounding,     // rounding adjustment (signed)
    Cash,         // tendered / paid
    Change,       // change given
    Summary,      // a line of a tax-summary table (after its heading)
    Ignore,       // quantities, discounts summaries, deposits ...
};

struct ArithmeticLine {
    AmountRole role = AmountRole::None;
    std::vector<Amount> amounts;  // find_amounts() of the line, left to right
    std::string text;             // the raw line (tax rates "6%" are read from it)
    int index = 0;                // the line's number as the provenance shows it
    int printed_line = -1;        // which OCR line it is (>= 0): pieces of one line (two amounts side
                                  // by side) share it; -1: not given. A piece's amount alone never
                                  // confirms its sibling.
};

struct Equation {
    std::int64_t cents = 0;          // the total the equation gives
    std::string kind;                // items | subtotal | cash-change | paid | tax-summary | tax-included
    std::string text;                // "items 4.40 + 3.70 = 8.10 (lines 12-13)"
    double weight = 0;               // how much agreement with it is worth (0..0.2)
    std::vector<std::size_t> lines;  // the input lines it reads
};

class ReceiptArithmetic {
public:
    explicit ReceiptArithmetic(std::vector<ArithmeticLine> lines);

    // The equations that give `cents` without reading line `own` (the candidate's line; nor
    // the same amount from another piece of it: ArithmeticLine::printed_line), strongest
    // first, at most one per kind.
    std::vector<Equation> confirming(std::int64_t cents, std::size_t own) const;
    // Every equation that does not read line `own`, whatever total it gives (for a total
    // label whose amount was misread past parsing: "Grand Total : 3g .60").
    std::vector<Equation> all_for(std::size_t own) const;
    // Every total the arithmetic points at, whatever line a candidate is on (for repairs
    // and for finding a total with no readable label). Chains from a subtotal are given for
    // the last line of the receipt.
    const std::vector<Equation>& equations() const { return equations_; }
    // First line of the totals block (first subtotal/total label), or the line count.
    std::size_t totals_start() const { return totals_start_; }

private:
    std::vector<Equation> chains_to(std::size_t own) const;
    // Line `i` is `own` or another piece of the same OCR line.
    bool same_printed_line(std::size_t i, std::size_t own) const;

    std::vector<ArithmeticLine> lines_;
    std::vector<Equation> equations_;  // candidate-independent ones
    std::size_t totals_start_ = 0;
};

// What a printed amount may have been when its first character was a currency sign read
// as a digit or a letter: "$8.20" read "58.20" or "S8.20" or "88.20" -> 8.20. Only the
// leading character of the token is considered, and only when a digit, the decimal point
// and two decimals remain.
struct Misreading {
    std::int64_t cents = 0;
    std::string how;  // "leading '5' taken for a currency sign"
};
std::vector<Misreading> currency_sign_misreadings(const Amount& printed);

// Sen amounts as a sum for messages: "4.40 + 3.70 - 0.01".
std::string join_amounts(const std::vector<std::int64_t>& cents);

}  // namespace docpipe::claims
