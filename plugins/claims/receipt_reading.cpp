// The reading kit shared by the receipt's field readers — see receipt_reading.hpp.
#include "receipt_reading.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/core.h>

#include "text.hpp"

namespace docpipe::claims::reading {

std::vector<Word> words_of(std::string_view raw) {
    std::vector<Word> words;
    std::size_t i = 0;
    auto is_word = [](unsigned char c) { return c >= 0x80 || std::isalnum(c); };
    while (i < raw.size()) {
        while (i < raw.size() && !is_word(static_cast<unsigned char>(raw[i]))) ++i;
        if (i >= raw.size()) break;
        std::size_t b = i;
        while (i < raw.size() && is_word(static_cast<unsigned char>(raw[i]))) ++i;
        words.push_back({upper_ascii(raw.substr(b, i - b)), b, i});
    }
    return words;
}

std::vector<std::string> split_phrase(const std::string& phrase) {
    std::vector<std::string> out;
    for (const auto& t : split_whitespace(phrase)) out.push_back(t.text);
    return out;
}

// One OCR slip (substitution, insertion, deletion) in words of five letters or more.
bool word_matches(const std::string& word, const std::string& want) {
    if (word == want) return true;
    if (want.size() < 5 || static_cast<unsigned char>(want[0]) >= 0x80) return false;
    return within_one_edit(word, want);
}

std::optional<PhraseHit> match_phrase(const std::vector<Word>& words, const std::string& phrase) {
    const auto want = split_phrase(phrase);
    if (want.empty()) return std::nullopt;
    for (std::size_t s = 0; s + want.size() <= words.size(); ++s) {
        bool ok = true;
        for (std::size_t k = 0; k < want.size() && ok; ++k) ok = word_matches(words[s + k].norm, want[k]);
        if (ok) return PhraseHit{s, want.size(), phrase.size()};
    }
    // A label glued into one word by OCR ("SUBTOTAL" for "SUB TOTAL", "TOTALRM").
    if (want.size() > 1) {
        std::string glued;
        for (const auto& w : want) glued += w;
        for (std::size_t s = 0; s < words.size(); ++s)
            if (word_matches(words[s].norm, glued)) return PhraseHit{s, 1, phrase.size()};
    }
    return std::nullopt;
}

// The longest phrase of a list found in the line.
std::optional<PhraseHit> best_hit(const std::vector<Word>& words, const std::vector<std::string>& phrases, std::size_t* which) {
    std::optional<PhraseHit> best;
    for (std::size_t i = 0; i < phrases.size(); ++i) {
        auto hit = match_phrase(words, phrases[i]);
        if (hit && (!best || hit->length > best->length)) {
            best = hit;
            if (which) *which = i;
        }
    }
    return best;
}

nlohmann::json provenance_of(const TextLine& line) {
    // Trimmed: a piece of a line (total_field.cpp's side-by-side amounts) is blanked around.
    nlohmann::json p{{"source", line.source}, {"line", line.index}, {"text", trim(line.text)}};
    if (line.page >= 0) p["page"] = line.page;
    if (line.box) p["box"] = *line.box;
    return p;
}

// How much the OCR engine's own confidence lets us trust a value read from a line.
double confidence_factor(double tesseract_confidence) {
    const double c = std::clamp(tesseract_confidence, 0.0, 100.0);
    return std::clamp(0.55 + 0.45 * (c - 40.0) / 50.0, 0.55, 1.0);
}

double ocr_factor(const TextLine& line) { return line.source == "receipt" ? confidence_factor(line.ocr_confidence) : 1.0; }

// The same, judged by the words that overlap bytes [begin, end) of the line (the value's own
// characters); the whole line when the word confidences are not known.
double ocr_factor_at(const TextLine& line, std::size_t begin, std::size_t end) {
    if (line.source != "receipt" || line.word_confidences.empty()) return ocr_factor(line);
    double lowest = 101;
    for (const auto& w : line.word_confidences)
        if (w.begin < end && begin < w.end) lowest = std::min(lowest, w.confidence);
    return lowest > 100 ? ocr_factor(line) : confidence_factor(lowest);
}

// The OCR engine's own confidence (0..1) of the words that overlap bytes [begin, end) of
// the line, the lowest of them; the line's when the word confidences are not known; 1 for
// email text. A feature of the confidence model (confidence_model.hpp).
double word_confidence_at(const TextLine& line, std::size_t begin, std::size_t end) {
    if (line.source != "receipt") return 1.0;
    double lowest = 101;
    for (const auto& w : line.word_confidences)
        if (w.begin < end && begin < w.end) lowest = std::min(lowest, w.confidence);
    if (lowest > 100) lowest = line.ocr_confidence;
    return std::clamp(lowest, 0.0, 100.0) / 100.0;
}

// Text after a label on the raw line, without the ":", "-", "#" that separate them.
std::string after_label(const TextLine& line, const std::vector<Word>& words, const PhraseHit& hit) {
    const std::size_t end = words[hit.first_word + hit.word_count - 1].end;
    std::string rest = line.text.substr(end);
    std::size_t b = 0;
    while (b < rest.size() && (std::isspace(static_cast<unsigned char>(rest[b])) || rest[b] == ':' || rest[b] == '.' || rest[b] == '#' ||
                               rest[b] == '=' || rest[b] == '-' || rest[b] == ')' || rest[b] == '|'))
        ++b;
    if (rest.compare(b, 3, "\xEF\xBC\x9A") == 0) b += 3;  // full-width colon
    return trim(rest.substr(b));
}

bool is_letter_line(const std::string& text, double min_ratio) {
    int letters = 0, counted = 0;
    for (unsigned char ch : text) {
        if (std::isspace(ch)) continue;
        ++counted;
        if (std::isalpha(ch) || ch >= 0x80) ++letters;
    }
    return counted >= 4 && letters >= min_ratio * counted;
}

// The legal suffix is the most common pair of words on a letterhead: "SON BHD", "SDN BHO",
// "SDN. BHA.", "SON BH" are all SDN BHD misread by one letter each. Dots stay as written.
FieldValue make_field(nlohmann::json value, double confidence, const TextLine& line) {
    FieldValue f;
    f.value = std::move(value);
    f.confidence = std::clamp(confidence, 0.0, 1.0);
    f.source = line.source;
    f.provenance = provenance_of(line);
    return f;
}

void add_confidence_cap(FieldValue& f, double cap) {
    f.provenance["confidence_cap"] = std::min(f.provenance.value("confidence_cap", 1.0), cap);
}

void mark_contested(FieldValue& f, std::string_view field, std::string_view chosen, int chosen_line, std::string_view preferred,
                    int preferred_line, std::string_view why, std::vector<std::string>& warnings) {
    add_confidence_cap(f, kContestedCap);
    std::string warning = fmt::format("{}: contested: chose {} on line {}, but the rules prefer {} on line {}", field, chosen, chosen_line,
                                      preferred, preferred_line);
    if (!why.empty()) warning += fmt::format(" ({})", why);
    warnings.push_back(std::move(warning));
}

}  // namespace docpipe::claims::reading
