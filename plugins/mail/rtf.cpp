#include "rtf.hpp"

#include "email.hpp"  // html_to_text, valid_utf8

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <map>
#include <vector>

#include <fmt/core.h>
#include <glib.h>
#include <zlib.h>

namespace docpipe::mail {

namespace {

// What every compressed RTF's dictionary holds before the first byte is read (MS-OXRTFCP
// 2.1.2.1): RTF words a writer may refer back to from its first token on.
constexpr std::string_view kPrimedDictionary =
    "{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans "
    "SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx";
static_assert(kPrimedDictionary.size() == 207);
constexpr std::size_t kDictionarySize = 4096;
constexpr std::uint32_t kCompressed = 0x75465A4C;    // "LZFu"
constexpr std::uint32_t kUncompressed = 0x414C454D;  // "MELA"

std::uint32_t le32(std::string_view s, std::size_t at) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) | static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3])) << 24;
}

// MS-OXRTFCP's CRC is CRC-32's polynomial and table without the inversion before and after;
// zlib's crc32 does both, so a start of all ones and a final inversion undo them.
std::uint32_t rtf_crc(std::string_view data) {
    const uLong zlib = crc32_z(0xFFFFFFFFul, reinterpret_cast<const Bytef*>(data.data()), data.size());
    return ~static_cast<std::uint32_t>(zlib);
}

// The Windows code page of an RTF font's \fcharset (0 = the document's own).
unsigned code_page_of_charset(long charset) {
    switch (charset) {
        case 0: return 1252;  // ANSI: Western, whatever the document's \ansicpg
        case 77: return 10000;
        case 128: return 932;
        case 129: return 949;
        case 130: return 1361;
        case 134: return 936;
        case 136: return 950;
        case 161: return 1253;
        case 162: return 1254;
        case 163: return 1258;
        case 177: return 1255;
        case 178: return 1256;
        case 186: return 1257;
        case 204: return 1251;
        case 222: return 874;
        case 238: return 1250;
        case 254: return 437;
        case 255: return 850;
        default: return 0;
    }
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Groups whose text is never shown: tables, pictures, fields' codes, headers, document
// properties. A group opened with \* is hidden too unless it is HTML's tag (\fromhtml1).
bool hidden_destination(std::string_view word) {
    static constexpr std::string_view kHidden[] = {
        "fonttbl", "colortbl", "stylesheet", "info",      "pict",      "object",   "header",  "headerl",   "headerr",
        "headerf", "footer",   "footerl",    "footerr",   "footerf",   "fldinst",  "filetbl", "listtable", "listoverridetable",
        "revtbl",  "xe",       "tc",         "footnote",  "annotation", "themedata", "datastore", "latentstyles", "nonshppict",
        "rsidtbl", "xmlnstbl", "generator",  "pgdsctbl",  "colorschememapping", "bkmkstart", "bkmkend", "nonesttables"};
    for (const std::string_view hidden : kHidden)
        if (word == hidden) return true;
    return false;
}

class RtfText {
public:
    explicit RtfText(std::string_view rtf) : in_(rtf) { groups_.push_back(Group{}); }

    std::string read() {
        while (at_ < in_.size()) {
            const char c = in_[at_++];
            if (c == '{') {
                open_group();
            } else if (c == '}') {
                close_group();
            } else if (c == '\\') {
                control();
            } else if (c == '\r' || c == '\n') {
                continue;  // line breaks in RTF source are not text
            } else {
                fresh_ = starred_ = false;
                byte(static_cast<unsigned char>(c));
            }
        }
        flush();
        return html_ ? html_to_text(out_) : tidy(out_);
    }

private:
    struct Group {
        bool hidden = false;       // its text is not shown
        bool font_table = false;   // inside \fonttbl: \f and \fcharset name fonts' code pages
        bool html_tag = false;     // inside {\*\htmltag}: HTML source, shown in \fromhtml1 mode
        bool html_rtf = false;     // between \htmlrtf and \htmlrtf0: RTF only, not part of the HTML
        int fallback_chars = 1;    // \ucN: characters after a \uN that stand in for it
        long font = -1;            // the font in use (\fN); -1 = the document's default (\deffN)
        bool hidden_text = false;  // \v: text formatted as hidden
    };
    static constexpr std::size_t kMostDepth = 300;

    Group& group() { return groups_.back(); }

    void open_group() {
        flush();
        skip_fallback_ = 0;
        if (groups_.size() >= kMostDepth) {
            ++too_deep_;  // read as hidden: no state grows with a hostile nesting
            return;
        }
        groups_.push_back(group());
        fresh_ = true;
        starred_ = false;
    }

    void close_group() {
        flush();
        skip_fallback_ = 0;
        fresh_ = starred_ = false;
        if (too_deep_ > 0) --too_deep_;
        else if (groups_.size() > 1) groups_.pop_back();
    }

    bool shown() const {
        const Group& g = groups_.back();
        if (too_deep_ > 0 || g.hidden || g.hidden_text) return false;
        return !(html_ && g.html_rtf);
    }

    void control() {
        if (at_ >= in_.size()) return;
        const char c = in_[at_];
        if (is_letter(c)) {
            const std::size_t start = at_;
            while (at_ < in_.size() && is_letter(in_[at_]) && at_ - start < 32) ++at_;
            const std::string_view word = in_.substr(start, at_ - start);
            bool has_value = false;
            long value = 0;
            bool negative = false;
            if (at_ < in_.size() && in_[at_] == '-') {
                negative = true;
                ++at_;
            }
            std::size_t digits = 0;
            while (at_ < in_.size() && is_digit(in_[at_])) {
                if (digits++ < 10) value = value * 10 + (in_[at_] - '0');
                has_value = true;
                ++at_;
            }
            if (negative) value = -value;
            if (at_ < in_.size() && in_[at_] == ' ') ++at_;  // the delimiter belongs to the word
            control_word(word, has_value, value);
            return;
        }
        ++at_;
        switch (c) {
            case '\'': {
                if (at_ + 2 > in_.size()) return;
                const int hi = g_ascii_xdigit_value(in_[at_]), lo = g_ascii_xdigit_value(in_[at_ + 1]);
                if (hi < 0 || lo < 0) return;
                at_ += 2;
                byte(static_cast<unsigned char>(hi * 16 + lo));
                fresh_ = false;
                return;
            }
            case '*':
                starred_ = true;
                return;
            case '\\':
            case '{':
            case '}':
                byte(static_cast<unsigned char>(c));
                break;
            case '~':
                byte(' ');
                break;
            case '_':
                byte('-');
                break;
            case '\r':
            case '\n':
                text("\n");
                break;
            default:
                break;  // \- (optional hyphen), \: and others are no text
        }
        fresh_ = false;
    }

    void control_word(std::string_view word, bool has_value, long value) {
        if (fresh_) {
            // The first word of a group names what the group is.
            fresh_ = false;
            if (word == "fonttbl") {
                group().font_table = group().hidden = true;
            } else if (html_ && starred_ && word == "htmltag") {
                group().html_tag = true;
                group().hidden = false;
            } else if (starred_ || hidden_destination(word)) {
                group().hidden = true;
            }
            starred_ = false;
        }
        if (skip_fallback_ > 0 && word != "u") {
            --skip_fallback_;  // a control word standing in for a \uN character
            return;
        }
        if (word == "fromhtml" && value == 1) html_ = true;
        else if (word == "ansicpg" && value > 0) document_code_page_ = static_cast<unsigned>(value);
        else if (word == "f" && group().font_table) font_ = value;
        else if (word == "fcharset" && group().font_table && font_code_pages_.size() < 1000) font_code_pages_[font_] = code_page_of_charset(value);
        else if (word == "f") {
            flush();
            group().font = value;
        } else if (word == "deff") default_font_ = value;
        else if (word == "plain") {
            flush();
            group().font = -1;
            group().hidden_text = false;
        } else if (word == "v") group().hidden_text = !(has_value && value == 0); else if (word == "uc" && value >= 0 && value < 10) group().fallback_chars = static_cast<int>(value);
        else if (word == "u" && has_value) unicode(value);
        else if (word == "bin" && value > 0) at_ += std::min(static_cast<std::size_t>(value), in_.size() - at_);
        else if (word == "htmlrtf") group().html_rtf = !(has_value && value == 0);
        else if (word == "par" || word == "line" || word == "row" || word == "nestrow" || word == "sect" || word == "page") text("\n");
        else if (word == "tab" || word == "cell" || word == "nestcell") text("\t");
        else if (word == "emspace" || word == "enspace" || word == "qmspace") text(" ");
        else if (word == "emdash") text("\u2014");
        else if (word == "endash") text("\u2013");
        else if (word == "bullet") text("\u2022");
        else if (word == "lquote" || word == "rquote") text("'");
        else if (word == "ldblquote" || word == "rdblquote") text("\"");
    }

    // \uN: a UTF-16 unit (negative above 32767), followed by \ucN characters for readers
    // that do not know \u, which are skipped here.
    void unicode(long value) {
        std::uint32_t unit = static_cast<std::uint32_t>(value < 0 ? value + 65536 : value) & 0xFFFF;
        skip_fallback_ = 0;
        if (high_surrogate_ && !(unit >= 0xDC00 && unit <= 0xDFFF)) {
            high_surrogate_ = 0;
            text("\uFFFD");  // a high surrogate with no low one after it
        }
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            high_surrogate_ = unit;
        } else {
            std::uint32_t cp = unit;
            if (unit >= 0xDC00 && unit <= 0xDFFF)
                cp = high_surrogate_ ? 0x10000 + ((high_surrogate_ - 0xD800) << 10) + (unit - 0xDC00) : 0xFFFD;
            high_surrogate_ = 0;
            if (cp == 0) cp = 0xFFFD;
            std::string utf8;
            append_code_point(utf8, cp);
            text(utf8);
        }
        skip_fallback_ = group().fallback_chars;
    }

    // One byte of text (a literal or \'hh), in the code page of the font in use.
    void byte(unsigned char b) {
        if (skip_fallback_ > 0) {
            --skip_fallback_;
            return;
        }
        if (!shown()) return;
        if (b < 0x80 && pending_.empty()) {
            if (b != 0) out_ += static_cast<char>(b);
            return;
        }
        const unsigned cp = code_page();
        if (!pending_.empty() && cp != pending_code_page_) flush();
        pending_code_page_ = cp;
        pending_ += static_cast<char>(b);
        // Flushed in pieces, never after a byte that may lead a two-byte character.
        if (pending_.size() > 4096 && b < 0x80) flush();
    }

    // The code page of the font in use, else of the default font, else the document's.
    unsigned code_page() const {
        const long font = groups_.back().font >= 0 ? groups_.back().font : default_font_;
        const auto known = font_code_pages_.find(font);
        return known != font_code_pages_.end() && known->second != 0 ? known->second : document_code_page_;
    }

    void text(std::string_view utf8) {
        flush();
        if (skip_fallback_ > 0) skip_fallback_ = 0;
        if (shown()) out_ += utf8;
    }

    void flush() {
        if (pending_.empty()) return;
        // Never taken as UTF-8: a few bytes of 1252 or 936 often look like it ("\'c9\'92").
        std::string decoded = decode_code_page(pending_, pending_code_page_, false);
        decoded.erase(std::remove(decoded.begin(), decoded.end(), '\0'), decoded.end());
        out_ += decoded;
        pending_.clear();
    }

    // Trailing spaces off each line, at most one blank line in a row, none at the ends.
    static std::string tidy(const std::string& text) {
        std::string out;
        std::size_t blank_run = 0;
        std::size_t begin = 0;
        while (begin <= text.size()) {
            std::size_t end = text.find('\n', begin);
            if (end == std::string::npos) end = text.size();
            std::string_view line(text.data() + begin, end - begin);
            while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
            if (line.empty()) {
                ++blank_run;
            } else {
                if (!out.empty()) out += blank_run > 0 ? "\n\n" : "\n";
                out += line;
                blank_run = 0;
            }
            begin = end + 1;
        }
        return out;
    }

    std::string_view in_;
    std::size_t at_ = 0;
    std::vector<Group> groups_;
    std::size_t too_deep_ = 0;
    bool fresh_ = false;    // the next control word is the group's first
    bool starred_ = false;  // the group began with \*
    bool html_ = false;     // \fromhtml1: the RTF wraps an HTML body
    unsigned document_code_page_ = 1252;
    std::map<long, unsigned> font_code_pages_;
    long font_ = 0;  // the font table's entry being read
    long default_font_ = -1;
    int skip_fallback_ = 0;
    std::uint32_t high_surrogate_ = 0;
    std::string pending_;  // bytes not yet decoded, all in pending_code_page_
    unsigned pending_code_page_ = 0;
    std::string out_;
};

}  // namespace

std::string decode_code_page(std::string_view raw, unsigned code_page, bool keep_utf8) {
    if ((keep_utf8 && valid_utf8(raw) == raw) || code_page == 0 || code_page == 65001) return valid_utf8(raw);
    // Windows code page numbers as glibc's iconv names them ("CP1252", "CP936" work as is).
    const std::string from = code_page == 20127                         ? std::string("ASCII")
                             : code_page >= 28591 && code_page <= 28599 ? fmt::format("ISO-8859-{}", code_page - 28590)
                             : code_page == 28605                       ? std::string("ISO-8859-15")
                             : code_page >= 50220 && code_page <= 50222 ? std::string("ISO-2022-JP")
                             : code_page == 51932                       ? std::string("EUC-JP")
                             : code_page == 54936                       ? std::string("GB18030")
                             : code_page == 10000                       ? std::string("MACINTOSH")
                             : code_page == 1361                        ? std::string("JOHAB")
                                                                        : fmt::format("CP{}", code_page);
    GIConv converter = g_iconv_open("UTF-8", from.c_str());
    if (converter == reinterpret_cast<GIConv>(-1)) return valid_utf8(raw);  // a code page iconv does not know
    // A byte the code page does not explain (a user-defined character, a cut pair) becomes
    // '_', and the conversion goes on after it: the rest of the text is kept.
    std::string out;
    char buffer[4096];
    gchar* in = const_cast<gchar*>(raw.data());
    gsize in_left = raw.size();
    // glibc's converters for 1255 and 1258 hold a character back (it may combine with the
    // next): it is written out by a call without input, at the end and before a skipped byte.
    const auto drain_held = [&] {
        gchar* to = buffer;
        gsize to_left = sizeof buffer;
        g_iconv(converter, nullptr, nullptr, &to, &to_left);
        out.append(buffer, sizeof buffer - to_left);
    };
    while (in_left > 0) {
        gchar* to = buffer;
        gsize to_left = sizeof buffer;
        const gsize rc = g_iconv(converter, &in, &in_left, &to, &to_left);
        const int error = errno;  // before anything else may change it
        out.append(buffer, sizeof buffer - to_left);
        if (rc != static_cast<gsize>(-1)) break;
        if (error == E2BIG) continue;
        drain_held();
        out += '_';  // EILSEQ or EINVAL: skip one byte
        ++in;
        --in_left;
    }
    drain_held();
    g_iconv_close(converter);
    return valid_utf8(out);
}

DecompressedRtf decompress_rtf(std::string_view compressed, std::size_t max_bytes) {
    DecompressedRtf result;
    if (compressed.size() < 16) {
        result.problem = fmt::format("cut short: {} bytes, less than its 16-byte header", compressed.size());
        return result;
    }
    const std::uint32_t declared = le32(compressed, 0), raw_size = le32(compressed, 4), type = le32(compressed, 8),
                        crc = le32(compressed, 12);
    if (declared < 12 || declared - 12 > compressed.size() - 16) {
        result.problem = fmt::format("its header says {} bytes follow its size, and {} do: cut short or damaged", declared,
                                     compressed.size() - 4);
        return result;
    }
    const std::string_view contents = compressed.substr(16, declared - 12);
    if (type == kUncompressed) {
        if (raw_size > contents.size()) {
            result.problem = fmt::format("uncompressed RTF of {} bytes, of which {} are there: cut short", raw_size, contents.size());
            return result;
        }
        // No CRC covers RAWSIZE here either: the RTF is what COMPSIZE holds.
        result.rtf.assign(contents.substr(0, std::min(contents.size(), max_bytes)));
        if (contents.size() > max_bytes)
            result.problem = fmt::format("{} bytes of RTF, read up to the {}-byte limit", contents.size(), max_bytes);
        return result;
    }
    if (type != kCompressed) {
        result.problem = fmt::format("not compressed RTF: its type is 0x{:08X}, neither LZFu nor MELA", type);
        return result;
    }
    if (rtf_crc(contents) != crc) {
        result.problem = "damaged: its CRC does not match its bytes";
        return result;
    }
    std::array<char, kDictionarySize> dictionary{};
    std::copy(kPrimedDictionary.begin(), kPrimedDictionary.end(), dictionary.begin());
    std::size_t write = kPrimedDictionary.size();
    std::string& out = result.rtf;
    out.reserve(std::min<std::size_t>(raw_size, max_bytes));
    const auto put = [&](char c) {
        dictionary[write] = c;
        write = (write + 1) % kDictionarySize;
        out += c;
    };
    std::size_t at = 0;
    bool ended = false;
    while (at < contents.size() && !ended) {
        const auto control = static_cast<unsigned char>(contents[at++]);
        for (int bit = 0; bit < 8 && !ended; ++bit) {
            if (out.size() > max_bytes) {
                out.resize(max_bytes);
                result.problem = fmt::format("over {} bytes of RTF: read up to that limit", max_bytes);
                return result;
            }
            if ((control >> bit & 1) == 0) {
                if (at >= contents.size()) break;
                put(contents[at++]);
                continue;
            }
            if (at + 2 > contents.size()) break;
            const unsigned reference = static_cast<unsigned char>(contents[at]) << 8 | static_cast<unsigned char>(contents[at + 1]);
            at += 2;
            const std::size_t offset = reference >> 4, length = (reference & 0xF) + 2;
            if (offset == write) {
                ended = true;  // a reference to where the next byte goes: the end
                break;
            }
            for (std::size_t k = 0; k < length; ++k) put(dictionary[(offset + k) % kDictionarySize]);
        }
    }
    if (!ended) {
        result.rtf.clear();
        result.problem = "cut short: its compressed data end before their end marker";
        return result;
    }
    // RAWSIZE is not covered by the CRC, so it is not trusted to cut the RTF: the end marker
    // and the CRC say where the RTF ends.
    if (out.size() > max_bytes) {
        out.resize(max_bytes);
        result.problem = fmt::format("over {} bytes of RTF: read up to that limit", max_bytes);
    }
    return result;
}

void append_code_point(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | cp >> 6);
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | cp >> 12);
        out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | cp >> 18);
        out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
        out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

std::string rtf_to_text(std::string_view rtf) { return RtfText(rtf).read(); }

}  // namespace docpipe::mail
