// Fuzz target: the claim parsers for money amounts (plugins/claims/amount.cpp) and dates
// (date.cpp), which read OCR text and email bodies — text nobody controls.
//
// Each input is split into lines and every line goes through find_amounts and find_dates
// (with the default and the widest year limits), every whitespace token through
// parse_number_token and month_from_name. Besides crashes and sanitizer reports, what
// callers rely on is checked and aborts when broken: a match's byte range lies inside its
// line, a returned date is a valid date, an amount's text formats back without throwing.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "amount.hpp"
#include "date.hpp"
#include "text.hpp"
#include "fuzz_check.hpp"

using namespace docpipe::claims;

namespace {

// Receipt lines are short, and run-fuzz.sh keeps generated inputs to 512 bytes; this bound
// is for corpus files, and is high enough for regress-date-whitespace-run (60,000 blanks in
// one line overflowed the regex matcher's stack before date.cpp bounded its repeats).
constexpr std::size_t kMaxInput = 64 * 1024;

void one_line(std::string_view line) {
    for (const Amount& a : find_amounts(line)) {
        FUZZ_CHECK(a.begin <= a.end && a.end <= line.size());
        FUZZ_CHECK(!format_cents(a.cents).empty());
    }
    for (const DateLimits& limits : {DateLimits{}, DateLimits{1, 9999}}) {
        for (const DateMatch& d : find_dates(line, limits)) {
            FUZZ_CHECK(d.begin <= d.end && d.end <= line.size());
            FUZZ_CHECK(valid_date(d.year, d.month, d.day));
            FUZZ_CHECK(d.year >= limits.min_year && d.year <= limits.max_year);
            FUZZ_CHECK(d.confidence >= 0 && d.confidence <= 1);
            FUZZ_CHECK(d.iso().size() >= 10);
        }
    }
    for (const Token& t : split_whitespace(line)) {
        if (auto a = parse_number_token(t.text)) FUZZ_CHECK(!format_cents(a->cents).empty());
        const int month = month_from_name(t.text);
        FUZZ_CHECK(month >= 0 && month <= 12);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > kMaxInput) return 0;
    const std::string text(reinterpret_cast<const char*>(data), size);
    one_line(text);  // the whole input as one line too: embedded '\r', '\0', no newline
    for (const std::string& line : split_lines(text)) one_line(line);
    return 0;
}
