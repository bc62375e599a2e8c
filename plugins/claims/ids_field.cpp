// Labelled ids and names (member id, policy number, receipt number, member name), read the
// same way from a receipt's lines and from an email's text: the value after its label on
// the line, or alone on the next line.
#include <algorithm>
#include <cctype>

#include "receipt_reading.hpp"
#include "text.hpp"

namespace docpipe::claims {

using namespace reading;

namespace {

// A token that looks like a document number: has a digit, 3..30 characters of letters,
// digits, "-", "/".
std::optional<std::string> number_token(const std::string& text) {
    for (const auto& t : split_whitespace(text)) {
        std::string tok = t.text;
        while (!tok.empty() && (tok.back() == '.' || tok.back() == ',' || tok.back() == ':' || tok.back() == ')' || tok.back() == '|')) tok.pop_back();
        while (!tok.empty() && (tok.front() == ':' || tok.front() == '#' || tok.front() == '(' || tok.front() == '.')) tok.erase(tok.begin());
        if (tok.size() < 3 || tok.size() > 30) continue;
        bool ok = std::all_of(tok.begin(), tok.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '/'; });
        bool digit = std::any_of(tok.begin(), tok.end(), [](unsigned char c) { return std::isdigit(c); });
        if (ok && digit) return tok;
        if (ok) continue;  // a word between label and number ("No. Resit : ...")
        break;
    }
    return std::nullopt;
}

}  // namespace

void keep_better(FieldMap& fields, const std::string& name, FieldValue candidate) {
    auto it = fields.find(name);
    if (it == fields.end() || candidate.confidence > it->second.confidence) fields[name] = std::move(candidate);
}

// Labelled values (member id, policy, names, receipt number) common to receipts and emails.
void labelled_fields(const std::vector<TextLine>& lines, const std::vector<std::vector<Word>>& words, const Rules& rules,
                     FieldMap& fields) {
    static const std::vector<std::string> kIdFields = {"member_id", "policy_number", "receipt_number"};
    static const std::vector<std::string> kTextFields = {"member_name", "provider_name", "provider_address"};
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const TextLine& line = lines[i];
        for (const auto& field : kIdFields) {
            auto it = rules.field_labels.find(field);
            if (it == rules.field_labels.end()) continue;
            auto hit = best_hit(words[i], it->second);
            if (!hit) continue;
            // "GST REF NO : 001694261248", "CO. REG NO": a tax or company registration, not
            // the receipt's or the member's number.
            bool registration = false;
            for (std::size_t k = 0; k < hit->first_word; ++k)
                for (const char* w : {"GST", "SST", "TAX", "REG", "CO", "COMPANY", "ROC", "BUSINESS"})
                    registration = registration || words[i][k].norm == w;
            if (registration) continue;
            std::string rest = after_label(line, words[i], *hit);
            std::optional<std::string> value = number_token(rest);
            const TextLine* from = &line;
            // The value on the next line only under a label that is the whole line ("Policy
            // No:"), not one that ends a sentence ("... Data Protection Policy.").
            if (!value && rest.empty() && hit->first_word == 0 && i + 1 < lines.size()) {
                value = number_token(lines[i + 1].text);
                from = &lines[i + 1];
            }
            if (!value) continue;
            keep_better(fields, field, make_field(*value, 0.95 * ocr_factor(*from), *from));
        }
        for (const auto& field : kTextFields) {
            auto it = rules.field_labels.find(field);
            if (it == rules.field_labels.end()) continue;
            // A label must open the line and be followed by a separator ("Provider: X"). With
            // bilingual labels ("会员姓名 Member Name: ...") the one next to the colon counts.
            std::optional<PhraseHit> chosen;
            std::size_t chosen_end = 0;
            for (const auto& phrase : it->second) {
                auto hit = match_phrase(words[i], phrase);
                if (!hit || hit->first_word > 3) continue;
                const std::size_t end = words[i][hit->first_word + hit->word_count - 1].end;
                const std::string tail = line.text.substr(end);
                const auto sep = tail.find_first_not_of(" \t");
                if (sep == std::string::npos || (tail[sep] != ':' && tail.compare(sep, 3, "\xEF\xBC\x9A") != 0)) continue;
                if (!chosen || end > chosen_end) {
                    chosen = hit;
                    chosen_end = end;
                }
            }
            if (!chosen) continue;
            std::string value = after_label(line, words[i], *chosen);
            if (value.size() < 2) continue;
            keep_better(fields, field, make_field(value, 0.9 * ocr_factor(line), line));
        }
    }
}

}  // namespace docpipe::claims
