// The reading kit that the receipt's field readers share (total_field.cpp, date_field.cpp,
// provider_field.cpp, ids_field.cpp; extractor.cpp runs them in turn): a line's words with their byte
// ranges, label phrases matched on them, and how far the OCR engine's confidence lets a
// value read from a line be trusted. Internal to the claims plugin.
//
// Stateless functions; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "extractor.hpp"

namespace docpipe::claims::reading {

// Words of a line with their byte ranges, so a label found on normalised words can point
// back into the raw text ("Receipt No : INV-1" -> the value starts after "No").
struct Word {
    std::string norm;  // upper-case
    std::size_t begin = 0, end = 0;
};
std::vector<Word> words_of(std::string_view raw);

// A label phrase found among a line's words.
struct PhraseHit {
    std::size_t first_word = 0, word_count = 0;
    std::size_t length = 0;  // characters of the phrase: longer = more specific
};
std::vector<std::string> split_phrase(const std::string& phrase);
bool word_matches(const std::string& word, const std::string& want);
std::optional<PhraseHit> match_phrase(const std::vector<Word>& words, const std::string& phrase);
// The longest of `phrases` found in `words`; `which`, when given, gets its index.
std::optional<PhraseHit> best_hit(const std::vector<Word>& words, const std::vector<std::string>& phrases, std::size_t* which = nullptr);
// Text after a label on the raw line, without the ":", "-", "#" that separate them.
std::string after_label(const TextLine& line, const std::vector<Word>& words, const PhraseHit& hit);

// {source, line, text, page?, box?}: where a value was read.
nlohmann::json provenance_of(const TextLine& line);
// A value read from `line` with its provenance.
FieldValue make_field(nlohmann::json value, double confidence, const TextLine& line);

// Records in `f`'s provenance that its confidence may not exceed `cap` (the lowest cap set
// wins). The confidence model applies it after scoring, and merging readings keeps it.
void add_confidence_cap(FieldValue& f, double cap);

// The most a contested value may score: below the high band (0.90), so a person confirms it.
inline constexpr double kContestedCap = 0.85;
// A total the OCR readings of a receipt do not agree on by majority, and that nothing on the
// receipt adds up to (ClaimExtractor::merge_readings): under the high band.
inline constexpr double kUndecidedReadingsCap = 0.85;
// The OCR engine's word confidence (0..1) under which a value's own characters are unsure:
// a date read from such words by no more than half the readings is capped like an undecided
// total (ClaimExtractor::merge_readings). A round number, not fitted: train has no such date.
inline constexpr double kUnsureWordsConfidence = 0.50;
// Marks `f` (field `field`, read as `chosen` on line `chosen_line`) contested: the fitted
// chooser took it where the hand-set score preferred `preferred` on `preferred_line` (for
// the reasons `why`, if given). Caps its confidence at kContestedCap and warns with both.
void mark_contested(FieldValue& f, std::string_view field, std::string_view chosen, int chosen_line, std::string_view preferred,
                    int preferred_line, std::string_view why, std::vector<std::string>& warnings);

// How much the OCR engine's confidence (0..100) lets us trust a value read from a line:
// 0.55..1; 1 for email text. ocr_factor_at judges by the words overlapping bytes [begin,
// end) only (the value's own characters).
double confidence_factor(double tesseract_confidence);
double ocr_factor(const TextLine& line);
double ocr_factor_at(const TextLine& line, std::size_t begin, std::size_t end);
// The engine's confidence (0..1) of the words overlapping [begin, end), the lowest of them;
// the line's when word confidences are unknown; 1 for email text (a model feature).
double word_confidence_at(const TextLine& line, std::size_t begin, std::size_t end);

// At least `min_ratio` of the line's characters are letters (a name or heading line).
bool is_letter_line(const std::string& text, double min_ratio);

}  // namespace docpipe::claims::reading

namespace docpipe::claims {

// How a field (the total, the date) is chosen among its candidates: by the fitted chooser
// when there is one (else the hand-set score); keep_candidates puts every candidate with its
// features in the field's provenance.candidates (for fitting: bench_claims_eval --candidates).
struct FieldChoice {
    const CandidateChooser* chooser = nullptr;
    bool keep_candidates = false;
};

// The field readers that have their own file. Each reads one field family from a receipt's
// lines (`words` = reading::words_of of each line, computed once) into `fields`.
void read_service_date(const std::vector<TextLine>& lines, const std::vector<std::vector<reading::Word>>& words, const Rules& rules,
                       FieldMap& fields, std::vector<std::string>& warnings, const FieldChoice& choice = {});                    // date_field.cpp
void read_provider(const std::vector<TextLine>& lines, const std::vector<std::vector<reading::Word>>& words, const Rules& rules,
                   FieldMap& fields);                                                              // provider_field.cpp
void read_amounts(const std::vector<TextLine>& lines, const std::vector<std::vector<reading::Word>>& words, const Rules& rules,
                  FieldMap& fields, std::vector<std::string>& warnings, const FieldChoice& choice = {});  // total_field.cpp
// Labelled ids and names (receipt and email alike), and keeping the more confident of two.
void labelled_fields(const std::vector<TextLine>& lines, const std::vector<std::vector<reading::Word>>& words, const Rules& rules,
                     FieldMap& fields);                                                          // ids_field.cpp
void keep_better(FieldMap& fields, const std::string& name, FieldValue candidate);               // ids_field.cpp
// A company name that ends with its legal form ("... SDN BHD", "... BERHAD").
bool legal_end(const nlohmann::json& v);                                                         // provider_field.cpp

}  // namespace docpipe::claims
