// Dates as Malaysian receipts and claim emails write them: dd/mm/yyyy, dd-mm-yy,
// dd.mm.yyyy, yyyy-mm-dd, "12 Dis 2024", "12-DEC-2018", "12 December 2024", "December 12,
// 2024", with Malay (Jan Feb Mac Apr Mei Jun Jul/Julai Ogos Sep Okt Nov Dis) and English
// month names, and OCR look-alikes inside the digits.
//
// Pure functions, thread-safe. Day-first is the local convention; a reading that needs
// month-first, or that cannot tell the two apart, is returned with a lower confidence and
// a note rather than silently guessed.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace docpipe::claims {

struct DateMatch {
    int year = 0, month = 0, day = 0;
    double confidence = 1.0;     // how sure the reading is (not the OCR)
    std::string note;            // why the confidence is lower, if it is
    std::size_t begin = 0, end = 0;
    std::string text;

    std::string iso() const;     // "2024-12-24"
};

struct DateLimits {
    int min_year = 2000;
    int max_year = 2099;
};

// Every date in a line, left to right. Impossible dates (31/02/2024, month 13 both ways)
// are not returned.
std::vector<DateMatch> find_dates(std::string_view line, const DateLimits& limits = {});

// Month number for an English or Malay month name or abbreviation ("Dis", "Ogos",
// "December", "SEPT"); 0 when it is not one.
int month_from_name(std::string_view word);

bool valid_date(int year, int month, int day);

}  // namespace docpipe::claims
