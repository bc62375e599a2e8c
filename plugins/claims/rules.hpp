// The extraction rules (keywords, label phrases, patterns, weights) that transform.claims
// reads from a YAML file, so an insurer adapts them without recompiling. The shipped
// default is default-rules.yaml, compiled in as well so the plugin works without it.
//
// A Rules value is immutable once loaded and safe to share between threads.
#pragma once

#include <map>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace docpipe::claims {

class RulesError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct WeightedPhrase {
    std::string phrase;  // normalised (see normalize_label)
    double weight = 1.0;
};

struct FieldPattern {
    std::string source;  // the expression as written, for messages
    std::regex regex;
};

struct Rules {
    std::vector<WeightedPhrase> total_labels;
    std::vector<std::string> subtotal_labels, tax_labels, rounding_labels, cash_labels, change_labels, ignore_labels;
    std::vector<std::string> table_header_words, summary_headings;
    // Part of the bill paid by coupon or voucher: the claimable amount needs a person.
    std::vector<std::string> voucher_labels;
    std::map<std::string, std::vector<std::string>> field_labels;           // field -> label phrases
    std::map<std::string, std::vector<FieldPattern>> field_patterns;        // field -> free-text patterns
    std::vector<std::string> provider_markers, provider_headings, address_stops;
    // Company/tax registration labels ("CO REG", "GST ID"): stepped over between the name
    // and the address.
    std::vector<std::string> registration_labels;
    // Business words a provider name is checked against: a word one OCR slip away from one
    // of them ("ENIERPRISE") is replaced by it.
    std::vector<std::string> provider_vocabulary;
    // Street-address words (a line before the address without any is a branch name) and the
    // states/country that may follow the postcode line (optional keys; empty: no such rule).
    std::vector<std::string> address_words, address_regions;
    // Sections of the bill that some receipts name on a line of their own ("SERVICES",
    // "PARTICULARS"): such a line is where the bill starts, never the provider's name
    // (optional key; empty: no such rule).
    std::vector<std::string> provider_sections;
    // Dates on lines with these labels are never the service date (card expiry, best before).
    std::vector<std::string> date_ignore_labels;

    // `origin` names the text in errors ("rules.yaml"). Throws RulesError with
    // origin:line:column and what is wrong.
    static Rules parse(const std::string& yaml_text, const std::string& origin);
    static Rules load_file(const std::string& path);
    static const Rules& builtin();         // default-rules.yaml as compiled in
    static const char* builtin_text();
};

}  // namespace docpipe::claims
