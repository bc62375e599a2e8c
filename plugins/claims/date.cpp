#include "date.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

#include <fmt/core.h>

#include "text.hpp"

namespace docpipe::claims {

namespace {

struct MonthName {
    const char* name;
    int month;
};
// Longest first where one name is a prefix of another is not needed: matching is exact.
constexpr MonthName kMonths[] = {
    {"JAN", 1},       {"JANUARY", 1},  {"JANUARI", 1}, {"FEB", 2},       {"FEBRUARY", 2}, {"FEBRUARI", 2},
    {"MAR", 3},       {"MARCH", 3},    {"MAC", 3},     {"APR", 4},       {"APRIL", 4},    {"MAY", 5},
    {"MEI", 5},       {"JUN", 6},      {"JUNE", 6},    {"JUL", 7},       {"JULY", 7},     {"JULAI", 7},
    {"AUG", 8},       {"AUGUST", 8},   {"OGOS", 8},    {"OGO", 8},       {"SEP", 9},      {"SEPT", 9},
    {"SEPTEMBER", 9}, {"OCT", 10},     {"OCTOBER", 10}, {"OKT", 10},     {"OKTOBER", 10}, {"NOV", 11},
    {"NOVEMBER", 11}, {"DEC", 12},     {"DECEMBER", 12}, {"DIS", 12},    {"DISEMBER", 12}, {"AGO", 8},
    {"AGU", 8},       {"MAC.", 3},     {"JAN.", 1},    {"FEB.", 2},      {"DEC.", 12},    {"NOV.", 11},
    {"OCT.", 10},     {"SEP.", 9},     {"AUG.", 8},
};

// A three-letter month abbreviation one letter away from exactly one month ("dun" for JUN,
// "0CT" is not a word and stays out): 0 when none or several are that close.
int month_one_slip(std::string_view word) {
    if (word.size() != 3) return 0;
    const std::string up = upper_ascii(word);
    int found = 0;
    for (const auto& m : kMonths) {
        const std::string_view name = m.name;
        if (name.size() != 3) continue;
        if (name == up) return m.month;
        if (within_one_edit(name, up)) {
            if (found && found != m.month) return 0;
            found = m.month;
        }
    }
    return found;
}

int expand_year(int y) { return y < 100 ? 2000 + y : y; }

// Maps look-alikes to digits in a token that is mostly digits and separators.
std::string repair_digits(std::string_view s, int& repaired) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case 'O': case 'o': case 'D': case 'Q': out += '0'; ++repaired; break;
            case 'l': case 'I': case 'i': case '|': case '!': out += '1'; ++repaired; break;
            case 'S': case 's': out += '5'; ++repaired; break;
            case 'B': out += '8'; ++repaired; break;
            case 'Z': out += '2'; ++repaired; break;
            default: out += c;
        }
    }
    return out;
}

bool in_limits(int y, const DateLimits& l) { return y >= l.min_year && y <= l.max_year; }

}  // namespace

bool valid_date(int year, int month, int day) {
    if (month < 1 || month > 12 || day < 1) return false;
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int max = kDays[month - 1];
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) max = 29;
    return day <= max;
}

int month_from_name(std::string_view word) {
    const std::string up = upper_ascii(word);
    for (const auto& m : kMonths)
        if (up == m.name) return m.month;
    return 0;
}

std::string DateMatch::iso() const { return fmt::format("{:04}-{:02}-{:02}", year, month, day); }

std::vector<DateMatch> find_dates(std::string_view line, const DateLimits& limits) {
    std::vector<DateMatch> out;
    const std::string text(line);

    // Numeric forms. The character class admits OCR look-alikes; they are repaired below and
    // the result must still be a real date.
    static const std::regex numeric(R"((^|[^0-9A-Za-z])([0-9OlIDS]{1,4})\s?([/.\-])\s?([0-9OlIDS]{1,2})\s?([/.\-])\s?([0-9OlIDS]{2,4})(?![0-9]))");
    // Matches may overlap ("REG #19- 24/07/2016": "19- 24/07" is tried first and refused), so
    // after a refused match the search resumes at its first separator, never inside a number
    // ("31/02/2024" must not come back as 1/02/2024).
    std::smatch m;
    std::size_t found_before = 0;
    for (auto from = text.cbegin(); std::regex_search(from, text.cend(), m, numeric);
         from = out.size() > found_before ? m[0].second : m[3].first) {
        found_before = out.size();
        const std::size_t base = static_cast<std::size_t>(from - text.cbegin());
        if (m.str(3) != m.str(5)) continue;  // "12/05-2018" mixes separators: not a date
        int repaired = 0;
        const std::string a = repair_digits(m.str(2), repaired);
        const std::string b = repair_digits(m.str(4), repaired);
        const std::string c = repair_digits(m.str(6), repaired);
        auto all_digits = [](const std::string& s) {
            return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
        };
        if (!all_digits(a) || !all_digits(b) || !all_digits(c) || repaired > 2) continue;
        DateMatch d;
        d.begin = base + static_cast<std::size_t>(m.position(2));
        d.end = base + static_cast<std::size_t>(m.position(6) + m.length(6));
        d.text = text.substr(d.begin, d.end - d.begin);
        if (repaired) {
            d.confidence *= 0.85;
            d.note = "digits repaired from OCR look-alikes";
        }
        if (a.size() == 4) {  // yyyy-mm-dd
            if (c.size() > 2) continue;
            d.year = std::stoi(a), d.month = std::stoi(b), d.day = std::stoi(c);
            if (!valid_date(d.year, d.month, d.day) || !in_limits(d.year, limits)) continue;
            out.push_back(d);
            continue;
        }
        if (a.size() > 2 || c.size() == 3) continue;
        int first = std::stoi(a), second = std::stoi(b);
        const int year = expand_year(std::stoi(c));
        if (!in_limits(year, limits)) continue;
        bool day_first = valid_date(year, second, first);
        bool month_first = valid_date(year, first, second);
        if (!day_first && !month_first) {
            // Tesseract reads a leading 0 as 6/8/9 and a 1 as 4/7 ("61/03/18" for 01/03/18).
            // Try the look-alike in the tens digit of the day, then of the month: a date that
            // becomes real this way is kept with a low confidence and a note, never silently.
            auto swap_tens = [](const std::string& digits) -> int {
                if (digits.size() != 2) return -1;
                const char t = digits[0];
                const char fixed = (t == '6' || t == '8' || t == '9') ? '0' : (t == '4' || t == '7') ? '1' : t;
                return fixed == t ? -1 : (fixed - '0') * 10 + (digits[1] - '0');
            };
            const int day_fix = swap_tens(a), month_fix = swap_tens(b);
            if (day_fix > 0 && valid_date(year, second, day_fix)) first = day_fix;
            else if (month_fix > 0 && valid_date(year, month_fix, first)) second = month_fix;
            else continue;
            day_first = true;
            d.confidence *= 0.5;
            d.note = fmt::format("'{}' is not a date; read as {:02}/{:02} (a misread tens digit)", d.text, first, second);
        }
        if (day_first) {
            d.year = year, d.month = second, d.day = first;
            if (month_first && first != second) {
                // 05/06/2024 reads both ways; the local convention is day first.
                d.confidence *= 0.95;
            }
        } else if (month_first) {
            d.year = year, d.month = first, d.day = second;
            d.confidence *= 0.6;
            d.note = "read as month/day/year: day-first is impossible";
        } else {
            continue;
        }
        if (c.size() == 2) d.confidence *= 0.97;  // a two-digit year is a little weaker
        out.push_back(d);
    }

    // Named months: "12 Dis 2024", "12-DEC-18", "12DEC2018", "December 12, 2024".
    // Whitespace runs are bounded ({0,8}, not *): libstdc++'s regex matcher recurses once per
    // character a repeat consumes, so "12" followed by some 30,000 spaces (a broken or hostile
    // email body line) overflowed the stack and killed the process. No date is written with
    // more than 8 blanks between its parts.
    static const std::regex day_month_year(R"((^|[^0-9A-Za-z])([0-9]{1,2})(?:st|nd|rd|th)?\s{0,8}(?:of\s{1,8})?[-./ ]?\s{0,8}([A-Za-z]{3,9}\.?)\s{0,8}[-./ ,]?\s{0,8}([0-9]{2,4})(?![0-9]))",
                                              std::regex::icase);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), day_month_year); it != std::sregex_iterator(); ++it) {
        const auto& m = *it;
        const int month = month_from_name(m.str(3));
        if (!month) continue;
        DateMatch d;
        d.day = std::stoi(m.str(2));
        d.month = month;
        d.year = expand_year(std::stoi(m.str(4)));
        if (!valid_date(d.year, d.month, d.day) || !in_limits(d.year, limits)) continue;
        if (m.str(4).size() == 3) continue;
        d.begin = static_cast<std::size_t>(m.position(2));
        d.end = static_cast<std::size_t>(m.position(4) + m.length(4));
        d.text = text.substr(d.begin, d.end - d.begin);
        out.push_back(d);
    }
    // The same with the month abbreviation misread by one letter, only between matching
    // separators where nothing but a month can stand ("14/dun/2017").
    static const std::regex day_slipped_month_year(R"((^|[^0-9A-Za-z])([0-9]{1,2})\s?([/\-])\s?([A-Za-z]{3})\s?\3\s?([0-9]{4}|[0-9]{2})(?![0-9]))");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), day_slipped_month_year); it != std::sregex_iterator(); ++it) {
        const auto& m = *it;
        if (month_from_name(m.str(4))) continue;  // read exactly above
        const int month = month_one_slip(m.str(4));
        if (!month) continue;
        DateMatch d;
        d.day = std::stoi(m.str(2));
        d.month = month;
        d.year = expand_year(std::stoi(m.str(5)));
        if (!valid_date(d.year, d.month, d.day) || !in_limits(d.year, limits)) continue;
        d.begin = static_cast<std::size_t>(m.position(2));
        d.end = static_cast<std::size_t>(m.position(5) + m.length(5));
        d.text = text.substr(d.begin, d.end - d.begin);
        d.confidence = 0.7;
        d.note = fmt::format("'{}': month name read with one OCR slip", d.text);
        out.push_back(d);
    }
    // Eight digits with no separator ("27032018"), or with only the one before the year left
    // ("1202/2018", the first one lost): only day, month and a 20xx year that make a real
    // date, and weakly — a number that happens to look like a date is possible. The same
    // year first ("Date/Time 20180428/191200", ISO 8601's basic form). `day`, `month`, `year`
    // are the regex groups; group 2 starts the date and group 4 ends it in both forms.
    auto read_compact = [&](const std::regex& form, int day, int month, int year, const char* order) {
        for (auto it = std::sregex_iterator(text.begin(), text.end(), form); it != std::sregex_iterator(); ++it) {
            const auto& m = *it;
            DateMatch d;
            d.day = std::stoi(m.str(day));
            d.month = std::stoi(m.str(month));
            d.year = std::stoi(m.str(year));
            if (!valid_date(d.year, d.month, d.day) || !in_limits(d.year, limits)) continue;
            d.begin = static_cast<std::size_t>(m.position(2));
            d.end = static_cast<std::size_t>(m.position(4) + m.length(4));
            d.text = text.substr(d.begin, d.end - d.begin);
            d.confidence = 0.6;
            d.note = fmt::format("'{}' has {}; read as {}", d.text, d.text.size() == 8 ? "no separators" : "lost a separator", order);
            out.push_back(d);
        }
    };
    static const std::regex compact(R"((^|[^0-9A-Za-z])([0-9]{2})([0-9]{2})[/.\-]?(20[0-9]{2})(?![0-9]))");
    static const std::regex compact_year_first(R"((^|[^0-9A-Za-z])(20[0-9]{2})([0-9]{2})([0-9]{2})(?![0-9]))");
    read_compact(compact, 2, 3, 4, "day, month, year");
    read_compact(compact_year_first, 4, 3, 2, "year, month, day");
    static const std::regex month_day_year(R"((^|[^0-9A-Za-z])([A-Za-z]{3,9}\.?)\s{1,8}([0-9]{1,2})(?:st|nd|rd|th)?,?\s{1,8}([0-9]{4})(?![0-9]))", std::regex::icase);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), month_day_year); it != std::sregex_iterator(); ++it) {
        const auto& m = *it;
        const int month = month_from_name(m.str(2));
        if (!month) continue;
        DateMatch d;
        d.month = month;
        d.day = std::stoi(m.str(3));
        d.year = std::stoi(m.str(4));
        if (!valid_date(d.year, d.month, d.day) || !in_limits(d.year, limits)) continue;
        d.begin = static_cast<std::size_t>(m.position(2));
        d.end = static_cast<std::size_t>(m.position(4) + m.length(4));
        d.text = text.substr(d.begin, d.end - d.begin);
        out.push_back(d);
    }
    std::sort(out.begin(), out.end(), [](const DateMatch& x, const DateMatch& y) { return x.begin < y.begin; });
    return out;
}

}  // namespace docpipe::claims
