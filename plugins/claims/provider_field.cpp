// The provider (the letterhead's company name) and its address: the first line with a
// company marker (SDN BHD ...) in the receipt's head, else the first clean letter line;
// a name wrapped onto the next line is joined, OCR slips in business words are repaired
// from the rules' vocabulary, and the address is the lines that follow until a phone, tax
// id, date or heading line.
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <regex>
#include <span>
#include <string_view>

#include <fmt/core.h>

#include "receipt_reading.hpp"
#include "text.hpp"

namespace docpipe::claims {

using namespace reading;

// A company name that ends with its legal form ("... SDN BHD", "... BERHAD").
bool legal_end(const nlohmann::json& v) {
    if (!v.is_string()) return false;
    const std::string n = " " + normalize_label(v.get<std::string>());
    for (std::string_view form : {" SDN BHD", " BHD", " BERHAD", " PLT"})
        if (n.size() >= form.size() && n.compare(n.size() - form.size(), std::string::npos, form) == 0) return true;
    return false;
}

namespace {

std::string fix_legal_suffix(std::string out) {
    const std::vector<Word> ws = words_of(out);
    if (ws.size() >= 3) {
        const Word& sdn = ws[ws.size() - 2];
        const Word& bhd = ws.back();
        // SDN keeps its three letters; BHD may lose its last one ("SON BH").
        const bool bhd_like = bhd.norm.size() == 3 ? within_one_edit(bhd.norm, "BHD") : bhd.norm == "BH";
        // "SDN BILD", "SDN BLD", "STN BHE", "SUM BHE": an S-word of three letters and a short
        // B-word with an H or a D in it are the legal form misread in its own letters.
        const bool b_word = bhd.norm.size() >= 2 && bhd.norm.size() <= 4 && bhd.norm[0] == 'B' &&
                            bhd.norm.find_first_of("HD", 1) != std::string::npos;
        const bool s_word = sdn.norm.size() == 3 && sdn.norm[0] == 'S' && (within_one_edit(sdn.norm, "SDN") || sdn.norm[2] == 'N' || sdn.norm[2] == 'M');
        const bool one_slip = sdn.norm.size() == 3 && within_one_edit(sdn.norm, "SDN") && bhd_like &&
                              (sdn.norm == "SDN" || bhd.norm == "BHD" || sdn.norm == "SON");
        // "RAPID RAIL SC): BHD", "SLI : BHD": before a BHD read right, a short S-word is the
        // SDN, whatever else the OCR made of its letters and of the space after it.
        const bool s_before_bhd = bhd.norm == "BHD" && (sdn.norm.size() == 2 || sdn.norm.size() == 3) && sdn.norm[0] == 'S' &&
                                  std::all_of(sdn.norm.begin(), sdn.norm.end(), [](unsigned char c) { return std::isalpha(c); });
        if (((s_word && b_word) || one_slip || s_before_bhd) && !(sdn.norm == "SDN" && bhd.norm == "BHD")) {
            const std::string tail = out.substr(bhd.end);
            std::string between = out.substr(sdn.end, bhd.begin - sdn.end);
            // Keep "SDN. BHD." as printed; "): " between them is the OCR's, not the shop's.
            if (s_before_bhd && between.find_first_not_of(". ") != std::string::npos) between = " ";
            out = out.substr(0, sdn.begin) + "SDN" + between + "BHD" + tail;
        }
    }
    return out;
}

// Where two words of one length differ in exactly one letter, and the two letters are a pair
// of `look_alikes` (either way round): that letter's position. The name rules below each
// bring their own pairs, since how sure a repair must be depends on the word and the source.
std::optional<std::size_t> one_look_alike_letter(std::string_view a, std::string_view b, std::span<const std::string_view> look_alikes) {
    if (a.size() != b.size()) return std::nullopt;
    std::optional<std::size_t> at;
    for (std::size_t k = 0; k < a.size(); ++k) {
        if (a[k] == b[k]) continue;
        if (at) return std::nullopt;
        at = k;
    }
    if (!at) return std::nullopt;
    const bool alike = std::any_of(look_alikes.begin(), look_alikes.end(), [&](std::string_view pair) {
        return (pair[0] == a[*at] && pair[1] == b[*at]) || (pair[0] == b[*at] && pair[1] == a[*at]);
    });
    return alike ? at : std::nullopt;
}

// The name in a web address printed on the receipt ("www.gardenia.com.my", "x@name.com"):
// group 1. Shared by the two rules below that read a shop's name from its web address.
const std::regex& web_domain() {
    static const std::regex domain(R"((?:www\.|@|^|[\s.])([A-Za-z]{4,30})\.(?:com|net|org|my|biz)\b)", std::regex::icase);
    return domain;
}

// A letterhead cut at the paper's left edge ("OPAC MARKETING SDN BHD") whose website names
// the whole brand (".vivopac.com"): the first word is completed from the domain when the
// domain ends with it. Only letters, only a longer word, only a domain on the receipt.
std::string complete_from_website(const std::string& name, const std::vector<TextLine>& lines) {
    const auto name_words = words_of(name);
    if (name_words.empty() || name_words.front().norm.size() < 3) return name;
    const std::string& first = name_words.front().norm;
    if (!std::all_of(first.begin(), first.end(), [](unsigned char c) { return std::isalpha(c); })) return name;
    const std::regex& domain = web_domain();
    for (const auto& line : lines) {
        for (auto it = std::sregex_iterator(line.text.begin(), line.text.end(), domain); it != std::sregex_iterator(); ++it) {
            const std::string label = upper_ascii((*it)[1].str());
            if (label.size() > first.size() && label.compare(label.size() - first.size(), first.size(), first) == 0 && label != "WWW")
                return name.substr(0, name_words.front().begin) + label + name.substr(name_words.front().end);
        }
    }
    return name;
}

// "SANYO STATIONERY SHOP" above "Follow us in Facebook: Sanyu.Stationery": the shop's own
// web or social name, printed small in a plain font, spells a word of the name that the
// letterhead's large print misread. A name word of 5+ letters that differs in one letter,
// and by a pair of letters OCR confuses (O/U, C/G, I/L ...), from exactly one word of such a
// name takes its spelling, in the name word's case. Business words ("STATIONERY") are left
// alone: a shop may misspell its own handle. `how` says what changed and why.
std::string spell_as_web_name(const std::string& name, const std::vector<TextLine>& lines, const Rules& rules, std::string& how) {
    const std::regex& domain = web_domain();  // names under 5 letters are left out below
    // "Facebook: Sanyu.Stationery", "IG @kedai_abc", "facebook.com/KedaiAbc": the handle after a
    // colon, an @ or the site's address, never the words of a sentence ("Like our Facebook page").
    static const std::regex social(R"(\b(?:facebook|fb|instagram|ig|twitter)(?:\.com/|\s*[:@]\s*@?)([A-Za-z0-9._]{5,60}))",
                                   std::regex::icase);
    static const std::string_view look_alikes[] = {"OU", "OD", "OQ", "OC", "CG", "CE", "IL", "IJ", "IT", "EF", "EB",
                                                   "KR", "HN", "MN", "VY", "UV", "PR", "PF", "BR"};
    std::map<std::string, std::string> web_words;  // upper-case word -> the line it came from
    auto add_words_of = [&](const std::string& handle, const std::string& line) {
        for (const auto& w : words_of(handle))
            if (w.norm.size() >= 5 && w.norm.size() <= 30 &&
                std::all_of(w.norm.begin(), w.norm.end(), [](unsigned char c) { return std::isalpha(c); }))
                web_words.emplace(w.norm, line);
    };
    for (const auto& line : lines) {
        if (line.text.size() > 200) continue;  // no printed handle line is that long
        for (auto it = std::sregex_iterator(line.text.begin(), line.text.end(), domain); it != std::sregex_iterator(); ++it)
            add_words_of((*it)[1].str(), line.text);
        for (auto it = std::sregex_iterator(line.text.begin(), line.text.end(), social); it != std::sregex_iterator(); ++it) {
            std::string handle = (*it)[1].str();
            std::replace_if(handle.begin(), handle.end(), [](char c) { return c == '.' || c == '_'; }, ' ');
            add_words_of(handle, line.text);
        }
    }
    if (web_words.empty()) return name;
    std::string out = name;
    for (const auto& w : words_of(name)) {  // each change keeps the length, so offsets hold
        if (w.norm.size() < 5 || web_words.count(w.norm) || best_hit({w}, rules.provider_vocabulary) || best_hit({w}, rules.provider_markers))
            continue;
        if (!std::all_of(w.norm.begin(), w.norm.end(), [](unsigned char c) { return std::isalpha(c); })) continue;
        const std::pair<const std::string, std::string>* only = nullptr;
        std::size_t at = 0;
        int found = 0;
        for (const auto& entry : web_words) {
            if (const auto where = one_look_alike_letter(entry.first, w.norm, look_alikes)) ++found, only = &entry, at = *where;
        }
        if (found != 1) continue;
        const char was = out[w.begin + at];
        const char now = std::islower(static_cast<unsigned char>(was)) ? static_cast<char>(std::tolower(static_cast<unsigned char>(only->first[at])))
                                                                         : only->first[at];
        out[w.begin + at] = now;
        how += fmt::format("{}{} taken as {}, as the receipt's web name spells it ('{}')", how.empty() ? "" : "; ", w.norm, only->first,
                           trim(only->second));
    }
    return out;
}

// An address line as printed, its commas and full stops kept (they are part of how the
// provider writes it), without the OCR edge noise ("! KAWASAN ...", "... JALAN PENGKALAN 5, :").
std::string clean_address_line(const std::string& raw) {
    std::string s = trim(raw);
    auto noise = [](char c) { return c == '|' || c == '!' || c == ':' || c == ';' || c == '_' || c == '~' || c == '/' || c == '\\' || c == '-' || c == '\'' || c == ' '; };
    while (!s.empty() && (noise(s.back()) || static_cast<unsigned char>(s.back()) >= 0x80)) s.pop_back();
    while (!s.empty() && (noise(s.front()) || static_cast<unsigned char>(s.front()) >= 0x80)) s.erase(s.begin());
    std::string out;
    for (char ch : s) {
        if (ch == ' ' && !out.empty() && out.back() == ' ') continue;
        out += ch;
    }
    return out;
}

// "03-41318972", "Tel: +603-3362 4137" misread as "fel: 03. 55423228": a line that is mostly a
// phone number ends the address.
bool is_phone_line(const std::string& text) {
    int digits = 0, letters = 0;
    for (unsigned char ch : text) {
        if (std::isdigit(ch)) ++digits;
        else if (std::isalpha(ch)) ++letters;
    }
    return digits >= 8 && letters <= 4 && digits >= 2 * letters;
}

// Where a phone number ("Pel: 03- 55423228", "Tel No.: 07-387 3322") or a website
// ("waw.moonlightcake.com") starts inside an address line: the address ends there. The label
// before a phone number goes with it, however the OCR spelled it.
std::optional<std::size_t> address_end_in_line(const std::string& line) {
    static const std::regex phone(R"((?:\+?6)?0\d{1,2}\s?[-.]\s?\d{3,4}\s?\d{3,5})");
    static const std::regex web(R"((?:\bw[wa]w\b|\bhttps?\b|\.com\b|\.my\b))", std::regex::icase);
    std::optional<std::size_t> end;
    if (std::smatch m; std::regex_search(line, m, phone)) end = static_cast<std::size_t>(m.position(0));
    if (std::smatch m; std::regex_search(line, m, web)) {
        // From the start of the word the website is in.
        std::size_t at = static_cast<std::size_t>(m.position(0));
        while (at > 0 && !std::isspace(static_cast<unsigned char>(line[at - 1]))) --at;
        end = std::min(end.value_or(at), at);
    }
    if (!end) return std::nullopt;
    // Drop the label words left before the cut ("Tel No.:", "Pel:", "Kax:") and stray marks.
    std::string head = line.substr(0, *end);
    while (true) {
        while (!head.empty() && std::isspace(static_cast<unsigned char>(head.back()))) head.pop_back();
        const std::size_t b = head.find_last_of(" \t");
        const std::string word = head.substr(b == std::string::npos ? 0 : b + 1);
        const std::string bare = upper_ascii(word.substr(0, word.find_first_of(".:;")));
        const bool stray = std::none_of(word.begin(), word.end(), [](unsigned char c) { return std::isalnum(c); });  // ". ", "-"
        const bool label = !word.empty() && (stray || word.back() == ':' || word.back() == ';' || bare == "TEL" || bare == "FAX" || bare == "NO" ||
                                             bare == "PHONE" || bare == "HP" || bare == "T" || bare == "F");
        if (!label) break;
        head.erase(b == std::string::npos ? 0 : b);
    }
    return head.size();
}

// "Site: 2076", "Table : Counter": a short label and one value is a receipt detail, not a
// line of the street address.
bool label_value_line(const std::string& line) {
    static const std::regex re(R"(^\s*[A-Za-z][A-Za-z .#]{0,15}\s*[:;]\s*\S*[A-Za-z0-9]\S*\s*$)");  // "Johor : -" is no value
    return std::regex_match(line, re);
}

// A five-digit Malaysian postcode before its town ("47400 Petaling Jaya", also glued:
// "Jalan SS21/39,47400 Petaling"); a lot number ("LOT P.T. 33198, BATU 4") is not one.
bool has_postcode(const std::string& line) {
    static const std::regex re(R"((?:^|[^\d/])[0-9]{5}\s+[A-Za-z]{3})");
    return std::regex_search(line, re);
}

// Brackets and initials as OCR misreads them in a company name, mended before the name is
// cut up (so a short bracket is not taken for the start of a registration number):
//   "COSWAY (Mi SDN BHD"        -> "(M)": a short bracket closed by a stroke read as i, l, J, 1, |, ]
//   "GARDENIA BAKERIES IKL) SDN" -> "(KL)": one opened by a stroke read as I, l, 1, |, [
//   "BEMED {SP} SDN. BHD."       -> "(SP)": braces are brackets (no company name has braces)
//   "MR. D.1.Y. (M) SDN BHD"     -> "D.I.Y.", "T.A.5 LEISURE" -> "T.A.S": a digit among the
//                                   dotted letters of an initialism is the letter it looks like
std::string mend_brackets_and_initials(std::string s) {
    static const std::string kCloseLike = "iIlJ1|]", kOpenLike = "Il1|[";
    static const std::map<char, char> kLetterFor = {{'1', 'I'}, {'0', 'O'}, {'5', 'S'}, {'8', 'B'}};
    static const std::regex kInitials(R"(^([A-Z0-9]\.){2,}[A-Z0-9]?\.?$)");
    for (char& ch : s) {
        if (ch == '{') ch = '(';
        if (ch == '}') ch = ')';
    }
    auto short_capitals = [](std::string_view v) {
        return !v.empty() && v.size() <= 3 && std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isupper(c); });
    };
    // Token by token (runs of characters between spaces), counting the brackets before each.
    std::size_t opened_before = 0, closed_before = 0;
    for (std::size_t from = 0; from < s.size();) {
        if (s[from] == ' ') {
            ++from;
            continue;
        }
        const std::size_t to = std::min(s.find(' ', from), s.size());
        const std::string token = s.substr(from, to - from);
        const std::string_view inner = std::string_view(token).substr(1, token.size() >= 2 ? token.size() - 2 : 0);
        if (token.size() >= 3 && token.front() == '(' && kCloseLike.find(token.back()) != std::string::npos && short_capitals(inner) &&
            to < s.size()) {
            s[to - 1] = ')';
        } else if (token.size() >= 3 && kOpenLike.find(token.front()) != std::string::npos && token.back() == ')' && short_capitals(inner) &&
                   opened_before == closed_before) {
            s[from] = '(';
        } else if (token.size() <= 16 && std::regex_match(token, kInitials)) {  // short: std::regex recurses per character
            const auto letters = std::count_if(token.begin(), token.end(), [](unsigned char c) { return std::isalpha(c); });
            const auto digits = std::count_if(token.begin(), token.end(), [](unsigned char c) { return std::isdigit(c); });
            if (digits > 0 && letters >= 2)
                for (std::size_t k = from; k < to; ++k)
                    if (auto it = kLetterFor.find(s[k]); it != kLetterFor.end()) s[k] = it->second;
        }
        opened_before += static_cast<std::size_t>(std::count(s.begin() + static_cast<long>(from), s.begin() + static_cast<long>(to), '('));
        closed_before += static_cast<std::size_t>(std::count(s.begin() + static_cast<long>(from), s.begin() + static_cast<long>(to), ')'));
        from = to;
    }
    return s;
}

std::string clean_company(std::string s) {
    // Typographic apostrophes as plain ones: "KING’S" is "KING'S" in every record.
    for (const std::string_view curly : {"\u2019", "\u2018"})
        for (std::size_t at = s.find(curly); at != std::string::npos; at = s.find(curly, at + 1)) s.replace(at, curly.size(), "'");
    s = mend_brackets_and_initials(std::move(s));
    // Registration numbers in brackets "(001310559-U)" go; other brackets "(KL)" stay. A
    // bracket runs to the next ')' (or the end), and goes when it holds a digit and does not
    // start the name. One pass with the next ')' and the digits counted ahead, so a line full
    // of '(' costs its length, not its length squared.
    {
        const std::size_t n = s.size();
        std::vector<std::size_t> next_close(n + 1, std::string::npos), digits_before(n + 1, 0);
        for (std::size_t k = n; k-- > 0;) next_close[k] = s[k] == ')' ? k : next_close[k + 1];
        for (std::size_t k = 0; k < n; ++k) digits_before[k + 1] = digits_before[k] + (std::isdigit(static_cast<unsigned char>(s[k])) ? 1 : 0);
        std::string kept;
        kept.reserve(n);
        for (std::size_t k = 0; k < n;) {
            if (s[k] == '(') {
                const std::size_t end = next_close[k] == std::string::npos ? n : next_close[k] + 1;
                // The position in what is kept: brackets dropped before it no longer count.
                if (digits_before[end] > digits_before[k] && kept.size() > 3) {
                    k = end;
                    continue;
                }
            }
            kept += s[k++];
        }
        s = std::move(kept);
    }
    // "MYNEWS RETAIL SB FKA BISON STORES SB": the name the company was formerly known by is not its name.
    {
        const auto ws = words_of(s);
        for (std::size_t k = 2; k < ws.size(); ++k)
            if (ws[k].norm == "FKA" || ws[k].norm == "FORMERLY") {
                s.resize(ws[k].begin);
                while (!s.empty() && (s.back() == ' ' || s.back() == '(')) s.pop_back();
                break;
            }
    }
    // "OWN BY: CHEF LEE SDN BHD": a short label before a colon, the company after it.
    if (const std::size_t colon = s.find(':'); colon != std::string::npos && colon > 0 && words_of(s.substr(0, colon)).size() <= 3) {
        const std::string after = s.substr(colon + 1);
        // The name after it has words of its own besides the legal form.
        if (words_of(after).size() >= 3 && legal_end(fix_legal_suffix(trim(after)))) s = after;
    }
    // "... SDN BHD 862725-U": a registration number printed after the name without brackets
    // goes too: a short tail of digits (four or more), letters and dashes after the legal form.
    {
        const auto ws = words_of(s);
        for (std::size_t k = 0; k + 1 < ws.size(); ++k) {
            // "S/B" is the short form of SDN BHD ("KING'S CONFECTIONERY S/B 273500-U").
            const bool short_form = ws[k].norm == "B" && k > 0 && ws[k - 1].norm == "S" && ws[k - 1].end + 1 == ws[k].begin &&
                                    s[ws[k - 1].end] == '/';
            if (ws[k].norm != "BHD" && ws[k].norm != "BERHAD" && !short_form) continue;
            std::size_t cut = ws[k].end;
            if (cut < s.size() && s[cut] == '.') ++cut;  // "BHD." as printed
            const std::string tail = trim(s.substr(cut));
            const auto digits = std::count_if(tail.begin(), tail.end(), [](unsigned char c) { return std::isdigit(c); });
            const bool number_like = std::all_of(tail.begin(), tail.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == ' '; });
            // Its first word alone may be the number, with OCR letters for digits and noise or
            // a branch code after it ("80Z7Z5-U : .", "273500-U (KSB)").
            const std::string first = tail.substr(0, tail.find(' '));
            const auto first_digits = std::count_if(first.begin(), first.end(), [](unsigned char c) { return std::isdigit(c); });
            const bool registration_word = first_digits >= 3 && first.size() >= 5 && first.find('-') != std::string::npos &&
                                           std::all_of(first.begin(), first.end(), [](unsigned char c) { return std::isalnum(c) || c == '-'; });
            // "SDN. BHD. (P Y)": a bracket of stray single letters is a smudge.
            const auto tail_words = words_of(tail);
            const bool stray_bracket = tail.size() >= 3 && tail.front() == '(' && tail.back() == ')' && digits == 0 &&
                                       std::all_of(tail_words.begin(), tail_words.end(), [](const Word& w) { return w.norm.size() == 1; });
            // "(M) SDN BHD €0118-4)": a bracketed number whose opening bracket was misread.
            const bool half_bracketed = digits >= 4 && tail.size() <= 16 && tail.back() == ')' && tail.find('(') == std::string::npos;
            if ((digits >= 4 && number_like && tail.size() <= 16) || registration_word || stray_bracket || half_bracketed) s.resize(cut);
            break;
        }
    }
    s = fix_legal_suffix(s);  // before the edges are trimmed, so "SDN. BHA." keeps its dot
    // OCR edge noise: "|", ".", a lone stray letter or digit after the name ("SDN BHD I").
    auto strip_edges = [&] {
        // The dot of "BHD." is the company's own spelling; other trailing marks are noise.
        while (!s.empty() && !std::isalnum(static_cast<unsigned char>(s.back())) && s.back() != ')' &&
               !(s.back() == '.' && s.size() > 4 && upper_ascii(s.substr(s.size() - 4, 3)) == "BHD"))
            s.pop_back();
        while (!s.empty() && !std::isalnum(static_cast<unsigned char>(s.front()))) s.erase(s.begin());
    };
    strip_edges();
    // A logo or smudge read as a lone letter before the name: "a UNIHAKKA ..." (lower case
    // in a capitalised name) or "D . UNIHAKKA ..." (a letter with a stray mark after it).
    if (const auto ws = words_of(s); ws.size() >= 3 && ws[0].norm.size() == 1 && ws[0].begin == 0 && ws[1].norm.size() >= 3) {
        const std::string between = s.substr(ws[0].end, ws[1].begin - ws[0].end);
        const bool lower_in_capitals = std::islower(static_cast<unsigned char>(s[0])) &&
                                       std::none_of(s.begin() + static_cast<long>(ws[1].begin), s.end(), [](unsigned char c) { return std::islower(c); });
        const bool stray_mark = between.size() >= 3 && between.front() == ' ' && between.back() == ' ' &&
                                std::none_of(between.begin(), between.end(), [](unsigned char c) { return c == '&' || c == '(' || c == '\''; });
        if (lower_in_capitals || stray_mark) {
            s.erase(0, ws[1].begin);
            strip_edges();
        }
    }
    if (s.size() > 4 && s[s.size() - 2] == ' ' && std::isalnum(static_cast<unsigned char>(s.back()))) {
        s.resize(s.size() - 2);
        strip_edges();
    }
    std::string out;
    for (char ch : s) {
        if (ch == ' ' && !out.empty() && out.back() == ' ') continue;
        out += ch;
    }
    // Letters OCR reads as marks: "JIAWE| HOUSE", "JIAWE! HOUSE" (an I after capitals), and
    // "(SETIA ALAM}" (a closing bracket read as a brace).
    for (std::size_t k = 1; k < out.size(); ++k) {
        const bool after_capital = std::isupper(static_cast<unsigned char>(out[k - 1]));
        const bool word_ends = k + 1 == out.size() || out[k + 1] == ' ';
        if ((out[k] == '|' || out[k] == '!') && after_capital && word_ends) out[k] = 'I';
        if (out[k] == '}' && out.rfind('(', k) != std::string::npos) out[k] = ')';
    }
    // Brackets hug their words: "(KL )SDN" -> "(KL) SDN".
    {
        std::string spaced;
        for (std::size_t k = 0; k < out.size(); ++k) {
            const char ch = out[k];
            if (ch == ' ' && ((!spaced.empty() && spaced.back() == '(') || (k + 1 < out.size() && out[k + 1] == ')'))) continue;
            if (ch == '(' && !spaced.empty() && std::isalnum(static_cast<unsigned char>(spaced.back()))) spaced += ' ';
            spaced += ch;
            if (ch == ')' && k + 1 < out.size() && std::isalnum(static_cast<unsigned char>(out[k + 1]))) spaced += ' ';
        }
        out = std::move(spaced);
    }
    out = fix_legal_suffix(out);
    return trim(out);
}

// The letters Tesseract takes for one another on letterheads' capitals, for the short words
// of the vocabulary ("HART" for MART: the legs of an M closed into an H). Any other slip in a
// word this short is as likely another word, so it stays as read.
constexpr std::string_view kShortWordLookAlikes[] = {"HM", "NM", "OD", "OU", "OQ", "CG", "EF", "PF", "RK", "IL"};

// Replaces each word of six letters or more that is one OCR slip away from a vocabulary
// word ("ENIERPRISE", "BAKERIS") by that word, and a word of four or five letters that is a
// vocabulary word with one look-alike letter ("99 SPEED HART"); exact words stay.
std::string repair_vocabulary(const std::string& name, const std::vector<std::string>& vocabulary) {
    std::string out;
    std::size_t last = 0;
    for (const Word& w : words_of(name)) {
        out += name.substr(last, w.begin - last);
        std::string replacement = name.substr(w.begin, w.end - w.begin);
        const bool all_letters = std::all_of(w.norm.begin(), w.norm.end(), [](unsigned char c) { return std::isalpha(c); });
        if (w.norm.size() >= 6 && all_letters && std::find(vocabulary.begin(), vocabulary.end(), w.norm) == vocabulary.end()) {
            for (const auto& v : vocabulary)
                // A plural or singular of a vocabulary word ("SERVICE", "RESTAURANTS") is a word, not a slip.
                if (v.size() >= 6 && word_matches(w.norm, v) && w.norm + "S" != v && v + "S" != w.norm) {
                    replacement = v;
                    break;
                }
        } else if ((w.norm.size() == 4 || w.norm.size() == 5) && all_letters &&
                   std::find(vocabulary.begin(), vocabulary.end(), w.norm) == vocabulary.end()) {
            for (const auto& v : vocabulary)
                if (one_look_alike_letter(w.norm, v, kShortWordLookAlikes)) {
                    replacement = v;
                    break;
                }
        }
        out += replacement;
        last = w.end;
    }
    return out + name.substr(last);
}

bool is_registration_line(const std::string& text) {
    // "(JM0517726)", "Co. Reg: 1241045-D", "(001310559-U)": mostly digits, short.
    int digits = 0, letters = 0;
    for (unsigned char ch : text) {
        if (std::isdigit(ch)) ++digits;
        else if (std::isalpha(ch)) ++letters;
    }
    return digits >= 5 && letters <= 4;
}

// "Y SOON FATT S/B (81497-P)": a company's registration number in brackets (digits, a dash, a
// check letter) after the letters of its name. A letterhead prints it on the name's line or
// alone under it; the name's line then is the name even when the OCR misread its legal form
// ("S/R" for S/B) and no marker word is left.
// Scanned by hand: std::regex recurses once per character and overflowed the stack on the
// long lines of Robustness.HugeTokensAndLongAmountLinesAreHandled.
bool carries_registration_number(const std::string& text) {
    const auto letter = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
    const auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
    const auto first_letter = std::find_if(text.begin(), text.end(), letter);
    if (first_letter == text.end()) return false;
    for (std::size_t open = text.find('(', static_cast<std::size_t>(first_letter - text.begin())); open != std::string::npos;
         open = text.find('(', open + 1)) {
        std::size_t at = open + 1;
        const auto skip_spaces = [&] {
            while (at < text.size() && text[at] == ' ') ++at;
        };
        skip_spaces();
        const std::size_t digits_from = at;
        while (at < text.size() && digit(text[at])) ++at;
        const std::size_t digits = at - digits_from;
        skip_spaces();
        if (digits < 4 || digits > 12 || at >= text.size() || text[at] != '-') continue;
        ++at;
        skip_spaces();
        if (at >= text.size() || !letter(text[at])) continue;
        ++at;
        skip_spaces();
        if (at < text.size() && text[at] == ')') return true;
    }
    return false;
}

// "Quantity Dut : 2", "Table No: 12": a short label and a value with a digit after a colon.
bool label_value_detail(const std::string& text) {
    static const std::regex label_number(R"(^[^:]{1,24}:\s*\S*\d)");
    return std::regex_search(text, label_number);
}

// "Patient Name: Ahmad bin Abdullah", "Cashier: Siti": a label of one to three words, a colon
// and its value. A shop's name has no colon after its first words; a clinic's receipt names the
// patient under its letterhead, and with the letterhead unread the patient was taken for it.
bool labelled_value(const std::string& text) {
    const std::size_t colon = text.find(':');
    if (colon == std::string::npos) return false;
    const std::size_t label_words = words_of(text.substr(0, colon)).size();
    return label_words >= 1 && label_words <= 3 && !words_of(text.substr(colon + 1)).empty();
}

// The heading the bill starts with: every word of the line a payment, change or column label
// of the rules ("CASH", "QTY DESCRIPTION AMOUNT"), or three in four of a longer one ("DESC QTY
// PRICE AMOUNT TAXCODE": one column named in a way the rules do not list, or misread), or a
// section of the bill alone on its line ("SERVICES"; "PRODUCTS & SERVICES" may be a name).
bool bill_heading(const std::vector<Word>& words, const Rules& rules) {
    if (words.size() == 1 && std::find(rules.provider_sections.begin(), rules.provider_sections.end(), words.front().norm) !=
                                 rules.provider_sections.end())
        return true;
    auto listed = [&](const Word& word) {
        for (const auto* list : {&rules.cash_labels, &rules.change_labels, &rules.table_header_words})
            if (std::find(list->begin(), list->end(), word.norm) != list->end()) return true;
        return false;
    };
    const auto count = static_cast<std::size_t>(std::count_if(words.begin(), words.end(), listed));
    return !words.empty() && (count == words.size() || (words.size() >= 4 && 4 * count >= 3 * words.size()));
}

}  // namespace

void read_provider(const std::vector<TextLine>& lines, const std::vector<std::vector<Word>>& words, const Rules& rules, FieldMap& fields) {
    const std::size_t head = std::min<std::size_t>(lines.size(), 12);
    std::optional<std::size_t> chosen;
    double conf = 0;
    for (std::size_t i = 0; i < head && !chosen; ++i) {
        // Judge the letters without the registration number: "AEON CO. (M) BHD. (126926-H)".
        // "COMPANY REG NO. : 75495-W" carries the marker COMPANY but is the registration line
        // (judged without brackets: "... SDN BHD (Co. No: 20154-T)" is the name).
        const std::string cleaned = clean_company(lines[i].text);
        if ((best_hit(words[i], rules.provider_markers) || carries_registration_number(lines[i].text)) &&
            !best_hit(words_of(cleaned), rules.registration_labels) && is_letter_line(cleaned, 0.6)) {
            chosen = i;
            conf = 0.85;
        }
    }
    if (!chosen) {
        for (std::size_t i = 0; i < head && !chosen; ++i) {
            const auto& w = words[i];
            // Its letters judged without a registration number ("(81497-P)"), as above; only
            // that bracket goes (clean_company drops any bracket with a digit: "Hotline
            // (1300-88-1234)" would pass as letters).
            const std::string& judged = carries_registration_number(lines[i].text) ? clean_company(lines[i].text) : lines[i].text;
            if (w.size() < 1 || !is_letter_line(judged, 0.75) || lines[i].ocr_confidence < 60) continue;
            if (best_hit(w, rules.provider_headings) || best_hit(words_of(clean_company(lines[i].text)), rules.registration_labels)) continue;
            // A line of the address ("SELANGOR DARUL EHSAN", "TEMASYA INDUSTRIAL PARK") is not the name.
            if (best_hit(w, rules.address_regions) || best_hit(w, rules.address_words)) continue;
            // Nor is a line of the bill under a letterhead the OCR could not read: a "label :
            // value" line ("Quantity Dut : 2") is stepped over, and the payment or column
            // heading ("CASH", "QTY DESCRIPTION AMOUNT", a lone "SERVICES") ends the search, since the bill's
            // item lines follow it (train 021: no name rather than "CASH", or an item).
            if (label_value_detail(lines[i].text) || labelled_value(lines[i].text)) continue;
            if (bill_heading(w, rules)) break;
            chosen = i;
            conf = 0.6;
        }
    }
    if (chosen) {
        std::size_t i = *chosen;
        std::string name = clean_company(lines[i].text);
        // "SDN BHD" alone on its line belongs to the line above; a name may also wrap
        // onto a line that starts with the marker.
        auto is_marker_word = [&](const Word& w) {
            return w.norm.size() == 1 ||  // "(M)"
                   std::find(rules.provider_markers.begin(), rules.provider_markers.end(), w.norm) != rules.provider_markers.end();
        };
        auto continues_name = [&](const std::string& above, const std::string& below) {
            const auto below_words = words_of(below);
            if (best_hit(below_words, rules.provider_markers)) return true;
            for (const auto& b : below_words)
                for (const auto& a : words_of(above))
                    if (b.norm.size() >= 3 && a.norm == b.norm) return true;
            return false;
        };
        const bool only_marker = std::all_of(words[i].begin(), words[i].end(), is_marker_word);
        // "POPULAR BOOK" / "CO. (M) SDN BHD": the legal form wrapped onto the next line.
        const bool next_is_legal_form = i + 1 < lines.size() && !words[i + 1].empty() && words[i + 1].size() <= 5 &&
                                        best_hit({words[i + 1].front()}, {"CO", "SDN", "BHD", "BERHAD", "S"}) &&
                                        std::all_of(words[i + 1].begin(), words[i + 1].end(), is_marker_word);
        if (only_marker && i > 0 && is_letter_line(lines[i - 1].text, 0.7)) name = clean_company(lines[i - 1].text) + " " + name;
        else if (i + 1 < lines.size() && (next_is_legal_form || (words[i + 1].size() <= 3 && best_hit(words[i + 1], rules.provider_markers))) &&
                 is_letter_line(clean_company(lines[i + 1].text), 0.7) && !best_hit(words[i], {"SDN BHD", "BHD", "BERHAD"})) {
            name += " " + clean_company(lines[i + 1].text);
            ++i;
        } else if (i + 2 < lines.size() && !words[i + 1].empty() && words[i + 1].size() <= 3 && !legal_end(name) &&
                   is_letter_line(clean_company(lines[i + 1].text), 0.8) && !best_hit(words[i + 1], rules.address_stops) &&
                   !best_hit(words[i + 1], rules.provider_headings) && is_registration_line(lines[i + 2].text) &&
                   continues_name(name, clean_company(lines[i + 1].text))) {
            // "RESTAURANT JIAWEI" / "JIAWEI HOUSE" / "002693074-K": the name wraps onto a
            // short line that the registration number closes, and that repeats one of its
            // words or carries a business word (a place name such as "SETIA ALAM" does not).
            name += " " + clean_company(lines[i + 1].text);
            ++i;
        }
        // "AIK HUAT HARDWARE ENTERPRISE (SETIA" / "ALAM) SDN BHD": a bracket left open is
        // closed on the next line, and the name runs on to there.
        if (std::count(name.begin(), name.end(), '(') > std::count(name.begin(), name.end(), ')') && i + 1 < lines.size()) {
            const std::string next = clean_company(lines[i + 1].text);
            const std::size_t close = next.find(')');
            if (close != std::string::npos && words_of(next.substr(0, close)).size() <= 3 && next.find('(') > close &&
                is_letter_line(next, 0.7)) {
                name += " " + next;
                ++i;
            }
        }
        // "THE COFFEE BEAN" / "& TEA LEAF (M) SDN. BHD." (or the '&' at the end of the first
        // line): a name line that ends with '&' runs on to the next line, and one that starts
        // with '&' begins on the line above.
        auto ends_with_and = [](const std::string& text) {
            const std::string t = trim(text);
            return !t.empty() && t.back() == '&';
        };
        auto starts_with_and = [](const std::string& text) {
            const std::string t = trim(text);
            return !t.empty() && t.front() == '&';
        };
        // (clean_company drops a trailing '&' as noise, so the join puts it back.)
        auto joined = [&](const std::string& first, const std::string& second) {
            return ends_with_and(first) || starts_with_and(second) ? first + " " + second : first + " & " + second;
        };
        if (!only_marker && *chosen > 0 && (ends_with_and(lines[*chosen - 1].text) || starts_with_and(lines[*chosen].text)) &&
            is_letter_line(clean_company(lines[*chosen - 1].text), 0.7))
            name = joined(clean_company(lines[*chosen - 1].text), name);
        if (ends_with_and(lines[i].text) && i + 1 < lines.size() && is_letter_line(clean_company(lines[i + 1].text), 0.7) &&
            !best_hit(words[i + 1], rules.address_words) && !best_hit(words[i + 1], rules.address_regions)) {
            name = joined(name, clean_company(lines[i + 1].text));
            ++i;
        }
        // "Banh Mi Cafe" / "Dimiliki: banh mi cafe sdn bhd": a shop name followed by the
        // company that owns it, under the same name with its legal form: the company is that.
        if (!legal_end(name)) {
            const auto name_words = words_of(name);
            for (std::size_t j = i + 1; j < lines.size() && j <= i + 2 && !name_words.empty(); ++j) {
                std::string owner = clean_company(lines[j].text);
                // After a short label ("Dimiliki:", "Owned by:").
                if (const std::size_t colon = owner.find(':'); colon != std::string::npos && words_of(owner.substr(0, colon)).size() <= 3)
                    owner = trim(owner.substr(colon + 1));
                const auto owner_words = words_of(owner);
                if (!legal_end(owner) || owner_words.size() <= name_words.size()) continue;
                // Nothing but the legal form after the name: "SUBWAY FRANCHISE SDN BHD" is
                // another company than "SUBWAY".
                const bool only_legal_form_after = std::all_of(owner_words.begin() + static_cast<long>(name_words.size()), owner_words.end(), [](const Word& w) {
                    return w.norm == "SDN" || w.norm == "BHD" || w.norm == "BERHAD" || w.norm == "M" || w.norm == "CO" || w.norm == "PLT" ||
                           w.norm == "S" || w.norm == "B";  // "(M)", "CO.", "S/B"
                });
                if (only_legal_form_after && std::equal(name_words.begin(), name_words.end(), owner_words.begin(),
                                                        [](const Word& a, const Word& b) { return a.norm == b.norm; })) {
                    name = owner;
                    chosen = j;
                    i = j;
                    break;
                }
            }
        }
        // "MR. D.I.Y. (M) SDN" with its BHD lost at the paper's edge: SDN is never alone.
        if (const auto nw = words_of(name); nw.size() >= 2 && nw.back().norm == "SDN" && trim(name.substr(nw.back().end)).empty())
            name = name.substr(0, nw.back().end) + " BHD";
        const std::string as_read = name;
        name = repair_vocabulary(name, rules.provider_vocabulary);
        const bool vocabulary = name != as_read;
        const std::string before_website = name;
        std::string web_spelling;
        name = spell_as_web_name(complete_from_website(name, lines), lines, rules, web_spelling);
        if (name.size() >= 3) {
            fields["provider_name"] = make_field(name, conf * ocr_factor(lines[*chosen]), lines[*chosen]);
            // For the confidence model (confidence_model.hpp).
            fields["provider_name"].provenance["features"] = {
                {"marker", conf >= 0.85 ? 1.0 : 0.0},
                {"ocr_line_conf", std::clamp(lines[*chosen].ocr_confidence, 0.0, 100.0) / 100.0},
                {"legal_form", legal_end(name) ? 1.0 : 0.0},
                {"line", static_cast<double>(*chosen) / 12.0},
                {"wrapped", as_read != clean_company(lines[*chosen].text) ? 1.0 : 0.0},  // joined with the line above or below
                {"vocabulary", vocabulary ? 1.0 : 0.0},
                {"website", name != before_website ? 1.0 : 0.0},
            };
            if (!web_spelling.empty()) fields["provider_name"].provenance["web_spelling"] = web_spelling;
            // Address: the lines that follow, until a phone/GST/heading line.
            std::string address;
            std::size_t used = 0, skipped = 0;
            bool postcode_read = false;
            // A street-address line: an address word ("JALAN", "LOT", "NO") or a leading
            // number ("4-20, Jalan Ria", "27, JALAN DEDAP").
            auto street_line = [&](std::size_t j) {
                const std::string t = clean_address_line(lines[j].text);
                return best_hit(words[j], rules.address_words).has_value() || (!t.empty() && std::isdigit(static_cast<unsigned char>(t[0])));
            };
            // A branch, outlet or licensee line before the street address ("MYDIN MART SRI
            // MUDA", "Licensee of McDonald's", "(TONYMOLY SHOP (95874))", "Dimiliki: banh mi
            // cafe sdn bhd 1110644-H"), when the next line is the street address.
            auto branch_line = [&](std::size_t j) {
                if (rules.address_words.empty() || j + 1 >= lines.size() || !street_line(j + 1) || street_line(j)) return false;
                const std::string t = clean_address_line(lines[j].text);
                const auto digits = std::count_if(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c); });
                const bool bracketed = !t.empty() && t.front() == '(' && t.back() == ')';
                const bool company = match_phrase(words[j], "SDN BHD") || match_phrase(words[j], "BHD") || match_phrase(words[j], "BERHAD");
                return digits <= 1 || bracketed || company;
            };
            for (std::size_t j = i + 1; j < lines.size() && used < 5; ++j) {
                // Registration lines between the name and the address ("Co-REG:860671-D",
                // "(GST ID No : 000144596992)") are stepped over; after the address has
                // begun, they end it, as phone lines and headings do.
                // A tax or company id under a label OCR misspelled ("GST REF NO : 001694261248",
                // "(GST Ree No. 001492992000)"): a stop word with a long number after it.
                static const std::regex long_number(R"(\d{8,})");
                const bool registration = is_registration_line(lines[j].text) || best_hit(words[j], rules.registration_labels) ||
                                          (best_hit(words[j], rules.address_stops) && std::regex_search(lines[j].text, long_number));
                if (address.empty() && (registration || label_value_line(lines[j].text) || branch_line(j)) && skipped < 3) {
                    ++skipped;
                    continue;
                }
                if (best_hit(words[j], rules.address_stops) || !find_dates(lines[j].text).empty() || is_phone_line(lines[j].text) ||
                    label_value_line(lines[j].text))
                    break;
                if (words[j].empty()) continue;
                std::string part = clean_address_line(lines[j].text);
                // A phone number or website inside the line: the address ends there.
                const auto cut = address_end_in_line(part);
                if (cut) part = clean_address_line(part.substr(0, *cut));
                // After the postcode line: a state or the country ("SELANGOR DARUL EHSAN"), a
                // street-address line (a branch's "1558-TMN PUSAT KEPONG"), or a town whose
                // state follows ("CAMERON HIGHLANDS," / "PAHANG"); anything else ends it.
                if (postcode_read && !rules.address_regions.empty()) {
                    auto region = [&](std::size_t k) { return k < lines.size() && best_hit(words[k], rules.address_regions).has_value(); };
                    const bool letters_only = std::none_of(part.begin(), part.end(), [](unsigned char c) { return std::isdigit(c); });
                    if (!region(j) && !best_hit(words[j], rules.address_words) && !(letters_only && region(j + 1))) break;
                }
                if (!part.empty()) {
                    address += (address.empty() ? "" : " ") + part;
                    ++used;
                    postcode_read = postcode_read || has_postcode(part);
                }
                if (cut) break;
            }
            if (!address.empty())
                fields["provider_address"] = make_field(address, 0.6 * ocr_factor(lines[i]), lines[std::min(i + 1, lines.size() - 1)]);
        }
    }
}

}  // namespace docpipe::claims
