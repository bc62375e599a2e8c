#include "text.hpp"

#include <cctype>

namespace docpipe::claims {

namespace {
bool is_ascii_alnum(unsigned char c) { return c < 0x80 && std::isalnum(c); }
}  // namespace

std::string upper_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

std::string normalize_label(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool pending_space = false;
    for (unsigned char c : s) {
        if (is_ascii_alnum(c) || c >= 0x80) {
            if (pending_space && !out.empty()) out += ' ';
            pending_space = false;
            out += static_cast<char>(c < 0x80 ? std::toupper(c) : c);
        } else {
            pending_space = true;
        }
    }
    return out;
}

std::size_t find_words(std::string_view text, std::string_view phrase) {
    if (phrase.empty()) return std::string_view::npos;
    std::size_t pos = 0;
    while ((pos = text.find(phrase, pos)) != std::string_view::npos) {
        const bool left_ok = pos == 0 || text[pos - 1] == ' ';
        const std::size_t end = pos + phrase.size();
        const bool right_ok = end == text.size() || text[end] == ' ';
        if (left_ok && right_ok) return pos;
        ++pos;
    }
    return std::string_view::npos;
}

bool contains_words(std::string_view text, std::string_view phrase) { return find_words(text, phrase) != std::string_view::npos; }

std::vector<Token> split_whitespace(std::string_view line) {
    std::vector<Token> tokens;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
        if (i >= line.size()) break;
        std::size_t b = i;
        while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
        tokens.push_back({std::string(line.substr(b, i - b)), b, i});
    }
    return tokens;
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    std::size_t b = 0;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == '\n') {
            std::string_view l = text.substr(b, i - b);
            if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
            if (i < text.size() || !l.empty()) lines.emplace_back(l);
            b = i + 1;
        }
    }
    return lines;
}

bool within_one_edit(std::string_view a, std::string_view b) {
    if (a.size() < b.size()) std::swap(a, b);  // a is the longer
    if (a.size() - b.size() > 1) return false;
    std::size_t i = 0;
    while (i < b.size() && a[i] == b[i]) ++i;
    if (i == b.size()) return true;  // equal, or a has one more at the end
    // First difference at i: skip it in the longer (deletion) or in both (substitution).
    return a.size() != b.size() ? a.substr(i + 1) == b.substr(i) : a.substr(i + 1) == b.substr(i + 1);
}

}  // namespace docpipe::claims
