// Small text helpers shared by the claim parsers. Pure functions, no state, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace docpipe::claims {

// ASCII upper-case; bytes >= 0x80 (UTF-8) are left as they are.
std::string upper_ascii(std::string_view s);
std::string lower_ascii(std::string_view s);
std::string trim(std::string_view s);
// Upper-case, every run of non-alphanumeric ASCII becomes one space, trimmed. Keeps UTF-8
// bytes, so "总金额 Total Amount:" still contains "TOTAL AMOUNT".
std::string normalize_label(std::string_view s);
// Whole-word containment on normalized text ("TOTAL" is in "NET TOTAL" but not in "SUBTOTAL").
bool contains_words(std::string_view normalized_text, std::string_view normalized_phrase);
// Position of the phrase as whole words, or npos.
std::size_t find_words(std::string_view normalized_text, std::string_view normalized_phrase);

struct Token {
    std::string text;
    std::size_t begin = 0, end = 0;  // byte offsets into the line
};
std::vector<Token> split_whitespace(std::string_view line);

// At most one substitution, insertion or deletion apart ("TCTAL"/"TOTAL", "5128"/"5188",
// "BH"/"BHD"): how far one OCR slip takes a word.
bool within_one_edit(std::string_view a, std::string_view b);

// Splits text into lines (\n, \r\n), keeping empty ones so line numbers stay true.
std::vector<std::string> split_lines(std::string_view text);

}  // namespace docpipe::claims
