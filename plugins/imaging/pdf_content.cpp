#include "pdf_content.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <unordered_map>
#include <utility>

namespace docpipe::imaging {

namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\0'; }
bool is_delimiter(char c) { return std::string_view("()<>[]{}/%").find(c) != std::string_view::npos; }
bool token_ends_at(std::string_view s, std::size_t at) { return at >= s.size() || is_space(s[at]) || is_delimiter(s[at]); }

enum class Kind { Name, Word, ArrayOpen, ArrayClose, DictOpen, DictClose, String, End };

struct Token {
    Kind kind = Kind::End;
    std::string_view text;  // a name with its slash; a word (operator, number, true, false, null)
};

// The content's tokens, one at a time. A stray ")" or ">" is a word of its own: it ends
// nothing, so the tokens after it are read as they are.
class Lexer {
  public:
    explicit Lexer(std::string_view s) : s_(s) {}
    std::size_t at() const { return at_; }
    void seek(std::size_t to) { at_ = std::min(to, s_.size()); }

    Token next() {
        for (;;) {
            while (at_ < s_.size() && is_space(s_[at_])) ++at_;
            if (at_ < s_.size() && s_[at_] == '%') {
                while (at_ < s_.size() && s_[at_] != '\n' && s_[at_] != '\r') ++at_;
                continue;
            }
            break;
        }
        if (at_ >= s_.size()) return {};
        const std::size_t start = at_;
        const char c = s_[at_];
        auto two = [&](char second) { return at_ + 1 < s_.size() && s_[at_ + 1] == second; };
        if (c == '/') {
            ++at_;
            while (at_ < s_.size() && !token_ends_at(s_, at_)) ++at_;
            return {Kind::Name, s_.substr(start, at_ - start)};
        }
        if (c == '(') {
            int depth = 0;
            for (; at_ < s_.size(); ++at_) {
                if (s_[at_] == '\\') ++at_;
                else if (s_[at_] == '(') ++depth;
                else if (s_[at_] == ')' && --depth == 0) break;
            }
            at_ = std::min(at_ + 1, s_.size());
            return {Kind::String, s_.substr(start, at_ - start)};
        }
        if (c == '<' && two('<')) return at_ += 2, Token{Kind::DictOpen, s_.substr(start, 2)};
        if (c == '>' && two('>')) return at_ += 2, Token{Kind::DictClose, s_.substr(start, 2)};
        if (c == '<') {
            const std::size_t close = s_.find('>', at_);
            at_ = close == std::string_view::npos ? s_.size() : close + 1;
            return {Kind::String, s_.substr(start, at_ - start)};
        }
        if (c == '[') return ++at_, Token{Kind::ArrayOpen, s_.substr(start, 1)};
        if (c == ']') return ++at_, Token{Kind::ArrayClose, s_.substr(start, 1)};
        if (is_delimiter(c)) return ++at_, Token{Kind::Word, s_.substr(start, 1)};
        while (at_ < s_.size() && !token_ends_at(s_, at_)) ++at_;
        return {Kind::Word, s_.substr(start, at_ - start)};
    }

  private:
    std::string_view s_;
    std::size_t at_ = 0;
};

// A word that is an operand, not an operator: a number, true, false or null.
bool is_operand_word(std::string_view word) {
    if (word == "true" || word == "false" || word == "null") return true;
    return !word.empty() && word.find_first_not_of("+-.0123456789") == std::string_view::npos;
}

// How many operands poppler requires of an operator that takes a fixed number (Gfx.cc's
// table; 0 for the others). Given fewer, poppler stops drawing the content stream there.
int operands_required(std::string_view op) {
    static const std::unordered_map<std::string_view, int> required = {
        {"\"", 3}, {"'", 1},  {"BDC", 2}, {"BMC", 1}, {"CS", 1}, {"DP", 2}, {"Do", 1}, {"G", 1},  {"J", 1},  {"K", 4},
        {"M", 1},  {"MP", 1}, {"RG", 3},  {"TD", 2},  {"TJ", 1}, {"TL", 1}, {"Tc", 1}, {"Td", 2}, {"Tf", 2}, {"Tj", 1},
        {"Tm", 6}, {"Tr", 1}, {"Ts", 1},  {"Tw", 1},  {"Tz", 1}, {"c", 6},  {"cm", 6}, {"cs", 1}, {"d", 2},  {"d0", 2},
        {"d1", 6}, {"g", 1},  {"gs", 1},  {"i", 1},   {"j", 1},  {"k", 4},  {"l", 2},  {"m", 2},  {"re", 4}, {"rg", 3},
        {"ri", 1}, {"sh", 1}, {"v", 4},   {"w", 1},   {"y", 4}};
    const auto it = required.find(op);
    return it == required.end() ? 0 : it->second;
}

// Steps over the rest of an array or dictionary whose opening token was just read.
void skip_nested(Lexer& lexer) {
    int depth = 1;
    for (Token t = lexer.next(); t.kind != Kind::End; t = lexer.next()) {
        if (t.kind == Kind::ArrayOpen || t.kind == Kind::DictOpen) ++depth;
        else if ((t.kind == Kind::ArrayClose || t.kind == Kind::DictClose) && --depth == 0) return;
    }
}

std::optional<std::uint64_t> number_of(const Token& t) {
    if (t.kind != Kind::Word || t.text.empty() || t.text.size() > 12) return std::nullopt;
    std::uint64_t n = 0;
    for (char c : t.text) {
        if (c == '.') break;  // a real where an integer belongs: its whole part, as poppler takes it
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

// A number operand ("298", "-0.5", ".5", "+1"), as a double; nullopt for any other token.
std::optional<double> real_of(const Token& t) {
    if (t.kind != Kind::Word || t.text.empty() || t.text.size() > 64) return std::nullopt;
    const std::string text(t.text);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

// What an inline image's dictionary says of how its data is stored.
struct InlineImage {
    std::vector<std::string> filters;
    std::optional<std::uint64_t> width, height, bits;
    int components = 0;  // from its colour space: 0 where a name of the page's resources, or unknown
    bool mask = false;   // /ImageMask true: one bit a pixel
    bool ended = false;  // the content ended before ID

    bool jpeg() const { return filters.size() == 1 && (filters[0] == "/DCT" || filters[0] == "/DCTDecode"); }
    // The data's length when it is stored unfiltered and its size is known.
    std::optional<std::uint64_t> raw_length() const {
        if (!filters.empty() || !width || !height) return std::nullopt;
        const std::uint64_t bits_per_pixel = mask ? 1 : (bits && components ? *bits * static_cast<std::uint64_t>(components) : 0);
        if (bits_per_pixel == 0 || *width > (1u << 24) || *height > (1u << 24) || bits_per_pixel > 64) return std::nullopt;
        return *height * ((*width * bits_per_pixel + 7) / 8);
    }
};

// The dictionary after BI, read up to its ID operator.
InlineImage read_inline_dictionary(Lexer& lexer, const ColourSpaceComponents& components_of) {
    InlineImage image;
    std::string key;
    for (Token t = lexer.next();; t = lexer.next()) {
        if (t.kind == Kind::End) {
            image.ended = true;
            return image;
        }
        if (t.kind == Kind::Word && t.text == "ID") return image;
        if (key.empty()) {
            if (t.kind == Kind::Name) key = decoded_pdf_name(t.text);
            else if (t.kind == Kind::ArrayOpen || t.kind == Kind::DictOpen) skip_nested(lexer);
            continue;
        }
        if (key == "/F" || key == "/Filter") {
            image.filters.clear();
            if (t.kind == Kind::Name) image.filters.push_back(decoded_pdf_name(t.text));
            else if (t.kind == Kind::ArrayOpen)
                for (Token f = lexer.next(); f.kind != Kind::End && f.kind != Kind::ArrayClose; f = lexer.next()) {
                    if (f.kind == Kind::Name) image.filters.push_back(decoded_pdf_name(f.text));
                    else if (f.kind == Kind::ArrayOpen || f.kind == Kind::DictOpen) skip_nested(lexer), image.filters.push_back("?");
                    else image.filters.push_back("?");
                }
        } else if (key == "/W" || key == "/Width") {
            image.width = number_of(t);
        } else if (key == "/H" || key == "/Height") {
            image.height = number_of(t);
        } else if (key == "/BPC" || key == "/BitsPerComponent") {
            image.bits = number_of(t);
        } else if (key == "/IM" || key == "/ImageMask") {
            image.mask = t.kind == Kind::Word && t.text == "true";
        } else if (key == "/CS" || key == "/ColorSpace") {
            image.components = 0;
            if (t.kind == Kind::Name) {
                const std::string space = decoded_pdf_name(t.text);
                image.components = device_colour_components(space);
                if (image.components == 0 && components_of) image.components = components_of(space);
            } else if (t.kind == Kind::ArrayOpen) {  // [/I /RGB 255 <...>]: one index a pixel
                const Token first = lexer.next();
                if (first.kind == Kind::Name && (first.text == "/I" || first.text == "/Indexed")) image.components = 1;
                if (first.kind != Kind::ArrayClose) skip_nested(lexer);
            }
        } else if (t.kind == Kind::ArrayOpen || t.kind == Kind::DictOpen) {
            skip_nested(lexer);
        }
        key.clear();
    }
}

// The first "EI" at or after `from` that begins the data or follows white space, and ends
// a token: where poppler ends an inline image it cannot measure.
std::size_t first_ei(std::string_view content, std::size_t data, std::size_t from) {
    for (std::size_t k = from; k + 1 < content.size(); ++k)
        if (content[k] == 'E' && content[k + 1] == 'I' && token_ends_at(content, k + 2) && (k == data || is_space(content[k - 1])))
            return k;
    return content.size();
}

struct Extent {
    std::size_t data_end;  // the image's data is [data, data_end)
    std::size_t resume;    // where the operators go on: its "EI"
};

Extent inline_extent(std::string_view content, std::size_t data, const InlineImage& image, std::size_t& budget) {
    auto ei_after = [&](std::size_t end) {
        std::size_t k = end;
        while (k < content.size() && is_space(content[k])) ++k;
        if (k + 1 < content.size() && content[k] == 'E' && content[k + 1] == 'I') return k;
        const std::size_t found = content.find("EI", end);  // poppler's own search after an image it has read
        return found == std::string_view::npos ? content.size() : found;
    };
    if (image.jpeg()) {
        if (const std::size_t length = jpeg_length(content, data, budget); length > 0) return {data + length, ei_after(data + length)};
    } else if (const auto length = image.raw_length()) {
        const std::size_t end = data + static_cast<std::size_t>(std::min<std::uint64_t>(*length, content.size() - data));
        return {end, ei_after(end)};
    }
    const std::size_t ei = first_ei(content, data, data);
    std::size_t end = ei;
    while (end > data && is_space(content[end - 1])) --end;
    return {end, ei};
}

}  // namespace

int device_colour_components(std::string_view space) {
    if (space == "/G" || space == "/DeviceGray" || space == "/I" || space == "/Indexed") return 1;
    if (space == "/RGB" || space == "/DeviceRGB") return 3;
    if (space == "/CMYK" || space == "/DeviceCMYK") return 4;
    return 0;
}

std::string decoded_pdf_name(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t k = 0; k < raw.size(); ++k) {
        if (raw[k] == '#' && k + 2 < raw.size() && hex(raw[k + 1]) >= 0 && hex(raw[k + 2]) >= 0) {
            out += static_cast<char>(hex(raw[k + 1]) * 16 + hex(raw[k + 2]));
            k += 2;
        } else {
            out += raw[k];
        }
    }
    return out;
}

std::size_t jpeg_length(std::string_view bytes, std::size_t at, std::size_t& budget) {
    const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(bytes[k]); };
    std::size_t p = at;
    while (p < bytes.size() && is_space(bytes[p])) ++p;
    if (p + 1 >= bytes.size() || byte(p) != 0xFF || byte(p + 1) != 0xD8) return 0;
    p += 2;
    bool in_scan = false;
    for (;;) {
        if (budget == 0) return 0;
        --budget;
        if (in_scan) {  // entropy-coded data, to the next marker that is not a stuffed zero or a restart
            while (p + 1 < bytes.size()) {
                if (budget == 0) return 0;
                --budget;
                if (byte(p) == 0xFF) {
                    const std::uint8_t next = byte(p + 1);
                    if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
                        p += 2;
                        continue;
                    }
                    if (next != 0xFF) break;
                }
                ++p;
            }
            in_scan = false;
        }
        if (p + 1 >= bytes.size() || byte(p) != 0xFF) return 0;
        while (p + 1 < bytes.size() && byte(p + 1) == 0xFF) ++p;  // fill bytes before a marker
        if (p + 1 >= bytes.size()) return 0;
        const std::uint8_t marker = byte(p + 1);
        p += 2;
        if (marker == 0xD9) return p - at;
        if (marker == 0xD8 || marker == 0x00) return 0;  // another JPEG's start: this one was cut short
        if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue;  // no length follows
        if (p + 1 >= bytes.size()) return 0;
        const std::size_t length = static_cast<std::size_t>(byte(p)) << 8 | byte(p + 1);
        if (length < 2 || length > bytes.size() - p) return 0;
        p += length;
        in_scan = marker == 0xDA;
    }
}

std::vector<std::string> sections_around(const ContentDraws& draws, int section) {
    std::vector<std::string> names;
    for (int k = section; k >= 0 && static_cast<std::size_t>(k) < draws.sections.size(); k = draws.sections[static_cast<std::size_t>(k)].parent)
        names.insert(names.begin(), draws.sections[static_cast<std::size_t>(k)].name);
    return names;
}

ContentDraws content_draws(std::string_view content, const ColourSpaceComponents& components_of) {
    ContentDraws draws;
    Lexer lexer(content);
    std::vector<Token> operands;  // since the last operator (the last few: no operator takes more)
    std::size_t operand_count = 0;  // all of them
    // The marked-content sections open here, innermost last: for each, the innermost /OC
    // section at or around it (an index into draws.sections), or -1.
    std::vector<int> marked;
    const auto innermost = [&] { return marked.empty() ? -1 : marked.back(); };
    std::size_t budget = 2 * content.size() + 4096;
    int nesting = 0;  // arrays and dictionaries open: their words are members, not operators
    int inline_images = 0;
    // The transformation's area scale (|det| of the CTM), and those `q` saved. poppler ignores
    // a `Q` with nothing saved. Past kMaxSaved (a stream of millions of `q`), a `q` is only
    // counted, and its `Q` restores nothing: what is drawn that deep is sized as it comes.
    constexpr std::size_t kMaxSaved = 4096;
    double area = 1.0;
    std::vector<double> saved_areas;
    std::size_t unsaved = 0;
    for (Token t = lexer.next(); t.kind != Kind::End; t = lexer.next()) {
        const auto push_operand = [&](const Token& operand) {
            if (operands.size() == 8) operands.erase(operands.begin());
            operands.push_back(operand);
            ++operand_count;
        };
        // An array or dictionary is one operand, which its closing token stands for.
        if (t.kind == Kind::ArrayOpen || t.kind == Kind::DictOpen) {
            ++nesting;
            continue;
        }
        if ((t.kind == Kind::ArrayClose || t.kind == Kind::DictClose) && nesting > 0) {
            if (--nesting == 0) push_operand(t);
            continue;
        }
        if (nesting > 0) continue;
        if (t.kind != Kind::Word || is_operand_word(t.text)) {
            push_operand(t);
            continue;
        }
        if (operand_count < static_cast<std::size_t>(operands_required(t.text))) break;  // poppler draws no further
        const auto operand = [&](std::size_t from_end) -> const Token* {
            return operands.size() >= from_end ? &operands[operands.size() - from_end] : nullptr;
        };
        if (t.text == "Do") {
            if (const Token* name = operand(1); name && name->kind == Kind::Name) {
                ContentXObject x;
                x.name = decoded_pdf_name(name->text);
                x.section = innermost();
                x.area = area;
                draws.xobjects.push_back(std::move(x));
            }
        } else if (t.text == "f" || t.text == "F" || t.text == "f*" || t.text == "S" || t.text == "s" || t.text == "B" ||
                   t.text == "B*" || t.text == "b" || t.text == "b*" || t.text == "Tj" || t.text == "TJ" || t.text == "'" ||
                   t.text == "\"") {
            ++draws.marks;
        } else if (t.text == "q") {
            if (saved_areas.size() < kMaxSaved) saved_areas.push_back(area);
            else ++unsaved;
        } else if (t.text == "Q") {
            if (unsaved > 0) {
                --unsaved;
            } else if (!saved_areas.empty()) {
                area = saved_areas.back();
                saved_areas.pop_back();
            }
        } else if (t.text == "cm") {
            // a b c d e f: the area scales by |ad - bc|. Operands that are not all numbers
            // make poppler skip it.
            double m[4];
            bool numbers = true;
            for (std::size_t k = 0; k < 4 && numbers; ++k) {
                const Token* v = operand(6 - k);
                const std::optional<double> x = v ? real_of(*v) : std::nullopt;
                numbers = x.has_value();
                if (numbers) m[k] = *x;
            }
            if (numbers) area *= std::abs(m[0] * m[3] - m[1] * m[2]);
            if (numbers && unsaved > 0) draws.areas_unknown = true;  // its Q will not undo it
        } else if (t.text == "BDC") {
            // A tag and its properties: a name (in /Properties) or a dictionary. A tag
            // beginning "OC" marks optional content, as poppler reads it. With operands
            // of other kinds poppler does not run it, so nothing opens (an EMC still closes).
            const Token* tag = operand(2);
            const Token* properties = operand(1);
            const bool properties_ok = properties && (properties->kind == Kind::Name || properties->kind == Kind::DictClose);
            if (tag && tag->kind == Kind::Name && properties_ok) {
                if (decoded_pdf_name(tag->text).rfind("/OC", 0) == 0 && properties->kind == Kind::Name) {
                    draws.sections.push_back({decoded_pdf_name(properties->text), innermost()});
                    marked.push_back(static_cast<int>(draws.sections.size()) - 1);
                } else {
                    marked.push_back(innermost());
                }
            }
        } else if (t.text == "BMC") {
            if (const Token* tag = operand(1); tag && tag->kind == Kind::Name) marked.push_back(innermost());
        } else if (t.text == "EMC") {
            if (!marked.empty()) marked.pop_back();
        } else if (t.text == "BI") {
            const InlineImage image = read_inline_dictionary(lexer, components_of);
            if (image.ended) break;
            ++inline_images;
            const std::size_t data = std::min(lexer.at() + 1, content.size());  // one white-space byte after ID
            const Extent extent = inline_extent(content, data, image, budget);
            if (image.jpeg() && extent.data_end > data) {
                ContentInlineJpeg jpeg;
                jpeg.number = inline_images;
                jpeg.bytes.assign(content.substr(data, extent.data_end - data));
                jpeg.section = innermost();
                jpeg.area = area;
                draws.inline_jpegs.push_back(std::move(jpeg));
            }
            ContentInlineImage sized;
            sized.width = image.width.value_or(0);
            sized.height = image.height.value_or(0);
            sized.section = innermost();
            sized.area = area;
            draws.inline_images.push_back(sized);
            lexer.seek(extent.resume + 2);  // past "EI": poppler goes on right after it ("EIBI" is two operators)
        }
        operands.clear();
        operand_count = 0;
    }
    return draws;
}

}  // namespace docpipe::imaging
