#include "amount.hpp"

#include <cctype>

#include "text.hpp"

namespace docpipe::claims {

namespace {

// OCR look-alikes of digits, only ever applied inside a token that is otherwise numeric.
char digit_for(char c) {
    switch (c) {
        case 'O': case 'o': case 'D': case 'Q': return '0';
        case 'S': case 's': case '$': return '5';
        case 'l': case 'I': case 'i': case '|': case '!': case 'L': return '1';
        case 'B': return '8';
        case 'Z': case 'z': return '2';
        case 'G': case 'b': return '6';
        case 'g': case 'q': return '9';
        default: return 0;
    }
}

bool is_currency_word(std::string_view up) { return up == "RM" || up == "MYR" || up == "RM:" || up == "MYR:" || up == "(RM)"; }

// Splits a leading/trailing currency marker glued to the number ("RM12.00", "12.00RM").
std::string_view strip_glued_currency(std::string_view t, bool& currency) {
    auto starts = [&](std::string_view p) {
        return t.size() > p.size() && upper_ascii(t.substr(0, p.size())) == p;
    };
    auto ends = [&](std::string_view p) {
        return t.size() > p.size() && upper_ascii(t.substr(t.size() - p.size())) == p;
    };
    for (std::string_view p : {"MYR", "RM:", "RM.", "RM"}) {
        if (starts(p) && (std::isdigit(static_cast<unsigned char>(t[p.size()])) || t[p.size()] == ' ' || t[p.size()] == '-')) {
            currency = true;
            t.remove_prefix(p.size());
            break;
        }
    }
    for (std::string_view p : {"MYR", "RM"}) {
        if (ends(p) && std::isdigit(static_cast<unsigned char>(t[t.size() - p.size() - 1]))) {
            currency = true;
            t.remove_suffix(p.size());
            break;
        }
    }
    return t;
}

}  // namespace

std::optional<Amount> parse_number_token(std::string_view token) {
    // Typographic quotes and guillemets OCR reads around numbers ("“40.45.").
    for (bool stripped = true; stripped;) {
        stripped = false;
        for (std::string_view q : {"\u201C", "\u201D", "\u2018", "\u2019", "\u00AB", "\u00BB"}) {
            if (token.size() > q.size() && token.substr(0, q.size()) == q) token.remove_prefix(q.size()), stripped = true;
            if (token.size() > q.size() && token.substr(token.size() - q.size()) == q) token.remove_suffix(q.size()), stripped = true;
        }
    }
    // Punctuation that OCR and layouts put around numbers.
    while (!token.empty() && (token.front() == '(' || token.front() == ':' || token.front() == '=' || token.front() == '*' ||
                              token.front() == '\'' || token.front() == '"'))
        token.remove_prefix(1);
    while (!token.empty() && (token.back() == ')' || token.back() == ':' || token.back() == ';' || token.back() == '*' ||
                              token.back() == '\'' || token.back() == '"' || token.back() == '|'))
        token.remove_suffix(1);
    // A trailing tax code letter glued to the amount ("2.50S" -> keep "2.50") is common.
    bool negative = false;
    if (!token.empty() && token.front() == '-') {
        negative = true;
        token.remove_prefix(1);
    }
    if (token.empty() || token.size() > 16) return std::nullopt;

    // A section sign before the number ("Net Amt : \u00A73.55") is a 5 or a "$" that OCR read
    // through: taken as "$", so it maps to 5 like a glued "$" and the receipt's arithmetic
    // can still take it for a currency sign (total_field.cpp, currency_sign_misreadings).
    const std::string_view printed = token;
    std::string with_dollar;
    if (token.size() > 2 && token.substr(0, 2) == "\u00A7") {
        with_dollar = "$" + std::string(token.substr(2));
        token = with_dollar;
    }
    Amount a;
    std::string digits;  // the token with look-alikes mapped, separators kept
    int real_digits = 0, mapped = 0;
    for (char c : token) {
        if (std::isdigit(static_cast<unsigned char>(c))) {
            digits += c;
            ++real_digits;
        } else if (c == '.' || c == ',') {
            digits += c;
        } else if (char d = digit_for(c)) {
            digits += d;
            ++mapped;
        } else {
            return std::nullopt;
        }
    }
    if (real_digits == 0 || mapped > real_digits || mapped > 2) return std::nullopt;
    // A trailing lone separator ("12.50.") is noise.
    while (!digits.empty() && (digits.back() == '.' || digits.back() == ',')) digits.pop_back();
    if (digits.empty() || digits.front() == '.' || digits.front() == ',') {
        if (digits.size() >= 2 && digits.front() == '.' && digits.size() == 3) {
            digits = "0" + digits;  // ".50"
        } else {
            return std::nullopt;
        }
    }

    const std::size_t last_sep = digits.find_last_of(".,");
    std::string integer_part = digits, fraction;
    if (last_sep != std::string::npos) {
        const std::size_t after = digits.size() - last_sep - 1;
        if (after == 2 || (after == 1 && digits[last_sep] == '.')) {
            integer_part = digits.substr(0, last_sep);
            fraction = digits.substr(last_sep + 1);
            a.decimals = true;
            a.comma_decimal = digits[last_sep] == ',';
            if (a.comma_decimal && integer_part.find('.') != std::string::npos) return std::nullopt;  // "1.234,50": not local
        } else if (after != 3) {
            return std::nullopt;  // "25.12.2018", "12.3456"
        }
    }
    // What is left of the integer part may only carry thousands separators in groups of three.
    std::string plain;
    {
        std::size_t group = 0;
        bool seen_sep = false;
        for (std::size_t i = 0; i < integer_part.size(); ++i) {
            char c = integer_part[i];
            if (c == '.' || c == ',') {
                if (seen_sep && group != 3) return std::nullopt;
                if (!seen_sep && (group == 0 || group > 3)) return std::nullopt;
                seen_sep = true;
                group = 0;
            } else {
                plain += c;
                ++group;
            }
        }
        if (seen_sep && group != 3) return std::nullopt;
    }
    if (plain.empty() || plain.size() > 9) return std::nullopt;  // > RM 10 million: an id, not an amount
    if (plain.size() > 1 && plain[0] == '0' && !a.decimals) return std::nullopt;  // "0123": a code
    while (fraction.size() < 2) fraction += '0';
    a.cents = std::stoll(plain) * 100 + std::stoll(fraction);
    if (negative) a.cents = -a.cents;
    a.repaired = mapped > 0;
    a.text = std::string(printed);
    return a;
}

std::vector<Amount> find_amounts(std::string_view line) {
    std::vector<Amount> found;
    const auto tokens = split_whitespace(line);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const Token& t = tokens[i];
        const std::string up = upper_ascii(t.text);
        bool currency = false;
        std::size_t begin = t.begin;
        std::string_view candidate = t.text;
        bool took_next = false;
        if (is_currency_word(up) && i + 1 < tokens.size()) {
            // "RM 12.00": the amount is the next token.
            currency = true;
            took_next = true;
            ++i;
            candidate = tokens[i].text;
        }
        candidate = strip_glued_currency(candidate, currency);
        // "14. 65": OCR put a space after the decimal point; the next token is the two
        // decimals and nothing else.
        std::string joined;
        if (candidate.size() >= 2 && candidate.back() == '.' && i + 1 < tokens.size() && tokens[i + 1].text.size() == 2 &&
            std::isdigit(static_cast<unsigned char>(tokens[i + 1].text[0])) &&
            std::isdigit(static_cast<unsigned char>(tokens[i + 1].text[1])) &&
            std::isdigit(static_cast<unsigned char>(candidate[candidate.size() - 2]))) {
            joined = std::string(candidate) + std::string(tokens[i + 1].text);
            if (auto merged = parse_number_token(joined); merged && merged->decimals) {
                candidate = joined;
                ++i;
            }
        }
        auto amount = parse_number_token(candidate);
        if (!amount) {
            if (took_next) --i;  // "RM" followed by a word: that word gets its own turn
            continue;
        }
        if (i + 1 < tokens.size() && is_currency_word(upper_ascii(tokens[i + 1].text))) {
            currency = true;  // "12.00 MYR"
            ++i;
        }
        amount->currency = currency;
        if (!amount->decimals && !currency) continue;  // a bare integer is a quantity or a code
        amount->begin = begin;
        amount->end = tokens[i].end;
        found.push_back(*amount);
    }
    return found;
}

std::string format_cents(std::int64_t cents) {
    const bool negative = cents < 0;
    if (negative) cents = -cents;
    std::string frac = std::to_string(cents % 100);
    if (frac.size() < 2) frac = "0" + frac;
    return (negative ? "-" : "") + std::to_string(cents / 100) + "." + frac;
}

}  // namespace docpipe::claims
