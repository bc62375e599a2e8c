// Money amounts as Malaysian receipts and emails write them: "RM 1,234.50", "RM1234.5",
// "1,234.50 MYR", "-0.01", and OCR readings of them ("4i.50", "80,90", "1O.00").
//
// Pure functions, thread-safe. Amounts are kept in integer sen (cents) so that the
// arithmetic cross-checks (subtotal + SST = total) are exact.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace docpipe::claims {

struct Amount {
    std::int64_t cents = 0;
    bool currency = false;    // "RM"/"MYR" was written next to it
    bool decimals = false;    // written with a decimal part (".50"); bare integers are weaker evidence
    bool repaired = false;    // OCR look-alikes were mapped to digits (O->0, S->5, l->1, B->8 ...)
    bool comma_decimal = false;  // "80,90": a comma read where the point should be
    std::size_t begin = 0, end = 0;  // byte range in the parsed line
    std::string text;         // the characters it was read from

    double value() const { return static_cast<double>(cents) / 100.0; }
};

// One token without currency ("1,234.50", "4i.50", "-0.01"). Refuses dates ("25.12.2018"),
// times ("12:31"), long digit runs (phone and GST numbers) and words.
std::optional<Amount> parse_number_token(std::string_view token);

// Every amount in a line, left to right, with currency markers merged ("RM 12.00",
// "12.00 MYR", "RM12"). Integers count only with a currency marker ("RM 50").
std::vector<Amount> find_amounts(std::string_view line);

// "1234.50" — for records and messages.
std::string format_cents(std::int64_t cents);

}  // namespace docpipe::claims
