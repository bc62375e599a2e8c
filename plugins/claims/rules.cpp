#include "rules.hpp"

#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "text.hpp"

namespace docpipe::claims {

extern const char* const kDefaultRulesYaml;  // generated from default-rules.yaml

namespace {

std::string where(const std::string& origin, const YAML::Node& node) {
    const auto m = node.Mark();
    if (m.is_null()) return origin;
    return fmt::format("{}:{}:{}", origin, m.line + 1, m.column + 1);
}

std::vector<std::string> phrase_list(const YAML::Node& node, const std::string& origin, const std::string& path) {
    if (!node) return {};
    if (!node.IsSequence()) throw RulesError(fmt::format("{}: {}: expected a list of phrases", where(origin, node), path));
    std::vector<std::string> out;
    for (const auto& item : node) {
        if (!item.IsScalar()) throw RulesError(fmt::format("{}: {}: expected a phrase, found a {}", where(origin, item), path,
                                                           item.IsMap() ? "map" : "list"));
        std::string p = normalize_label(item.as<std::string>());
        if (p.empty()) throw RulesError(fmt::format("{}: {}: empty phrase '{}'", where(origin, item), path, item.as<std::string>()));
        out.push_back(std::move(p));
    }
    return out;
}

// A section's keys: a misspelt one ("sectons") would otherwise be read as absent, silently.
void check_keys(const YAML::Node& section, const std::string& name, const std::vector<std::string>& known, const std::string& origin) {
    if (!section.IsMap()) return;
    for (const auto& kv : section) {
        const auto key = kv.first.as<std::string>();
        if (std::find(known.begin(), known.end(), key) == known.end())
            throw RulesError(fmt::format("{}: {}: unknown key '{}' (known: {})", where(origin, kv.first), name, key, fmt::join(known, ", ")));
    }
}

const std::vector<std::string> kKnownFields = {"member_id", "member_name", "policy_number", "provider_name", "provider_address",
                                               "service_date", "receipt_number", "total_amount", "currency", "sst_amount",
                                               "gst_amount", "itemized_charges"};

void check_field(const std::string& field, const YAML::Node& node, const std::string& origin, const std::string& section) {
    if (std::find(kKnownFields.begin(), kKnownFields.end(), field) == kKnownFields.end())
        throw RulesError(fmt::format("{}: {}.{}: unknown claim field (known: member_id, member_name, policy_number, provider_name, "
                                     "provider_address, service_date, receipt_number, total_amount, sst_amount, gst_amount)",
                                     where(origin, node), section, field));
}

}  // namespace

Rules Rules::parse(const std::string& yaml_text, const std::string& origin) {
    YAML::Node root;
    try {
        root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& e) {
        throw RulesError(fmt::format("{}:{}:{}: not valid YAML: {}", origin, e.mark.line + 1, e.mark.column + 1, e.msg));
    }
    if (!root.IsMap()) throw RulesError(origin + ": expected a map with total, labels, patterns, provider");
    for (const auto& kv : root) {
        const auto key = kv.first.as<std::string>();
        if (key != "version" && key != "total" && key != "labels" && key != "patterns" && key != "provider" && key != "date")
            throw RulesError(fmt::format("{}: unknown section '{}' (known: version, total, labels, patterns, provider, date)",
                                         where(origin, kv.first), key));
    }
    Rules r;
    const YAML::Node total = root["total"];
    if (!total || !total.IsMap()) throw RulesError(origin + ": section 'total' is required (labels of the payable amount)");
    const YAML::Node labels = total["labels"];
    if (!labels || !labels.IsMap() || labels.size() == 0)
        throw RulesError(fmt::format("{}: total.labels: expected a map of label: weight", where(origin, total)));
    for (const auto& kv : labels) {
        WeightedPhrase wp;
        wp.phrase = normalize_label(kv.first.as<std::string>());
        try {
            wp.weight = kv.second.as<double>();
        } catch (const YAML::Exception&) {
            throw RulesError(fmt::format("{}: total.labels.{}: weight must be a number between 0 and 1, found '{}'",
                                         where(origin, kv.second), kv.first.as<std::string>(), kv.second.as<std::string>("")));
        }
        if (wp.weight < 0 || wp.weight > 1)
            throw RulesError(fmt::format("{}: total.labels.{}: weight {} is outside 0..1", where(origin, kv.second),
                                         kv.first.as<std::string>(), wp.weight));
        r.total_labels.push_back(std::move(wp));
    }
    check_keys(total, "total",
               {"labels", "subtotal", "tax", "rounding", "cash", "change", "ignore", "table_header", "summary_headings", "voucher"}, origin);
    r.subtotal_labels = phrase_list(total["subtotal"], origin, "total.subtotal");
    r.tax_labels = phrase_list(total["tax"], origin, "total.tax");
    r.rounding_labels = phrase_list(total["rounding"], origin, "total.rounding");
    r.cash_labels = phrase_list(total["cash"], origin, "total.cash");
    r.change_labels = phrase_list(total["change"], origin, "total.change");
    r.ignore_labels = phrase_list(total["ignore"], origin, "total.ignore");
    r.table_header_words = phrase_list(total["table_header"], origin, "total.table_header");
    r.summary_headings = phrase_list(total["summary_headings"], origin, "total.summary_headings");
    if (total["voucher"]) r.voucher_labels = phrase_list(total["voucher"], origin, "total.voucher");

    if (const YAML::Node l = root["labels"]) {
        if (!l.IsMap()) throw RulesError(fmt::format("{}: labels: expected a map of field: [phrases]", where(origin, l)));
        for (const auto& kv : l) {
            const auto field = kv.first.as<std::string>();
            check_field(field, kv.first, origin, "labels");
            r.field_labels[field] = phrase_list(kv.second, origin, "labels." + field);
        }
    }
    if (const YAML::Node p = root["patterns"]) {
        if (!p.IsMap()) throw RulesError(fmt::format("{}: patterns: expected a map of field: [regular expressions]", where(origin, p)));
        for (const auto& kv : p) {
            const auto field = kv.first.as<std::string>();
            check_field(field, kv.first, origin, "patterns");
            if (!kv.second.IsSequence())
                throw RulesError(fmt::format("{}: patterns.{}: expected a list of regular expressions", where(origin, kv.second), field));
            for (const auto& item : kv.second) {
                const auto text = item.as<std::string>();
                try {
                    std::regex re(text, std::regex::ECMAScript | std::regex::icase);
                    if (re.mark_count() < 1)
                        throw RulesError(fmt::format("{}: patterns.{}: '{}' has no capture group; group 1 is the value",
                                                     where(origin, item), field, text));
                    r.field_patterns[field].push_back({text, std::move(re)});
                } catch (const std::regex_error& e) {
                    throw RulesError(fmt::format("{}: patterns.{}: '{}' is not a valid regular expression: {}", where(origin, item),
                                                 field, text, e.what()));
                }
            }
        }
    }
    if (const YAML::Node pr = root["provider"]) {
        check_keys(pr, "provider",
                   {"markers", "headings", "address_stops", "registration", "vocabulary", "address_words", "address_regions", "sections"},
                   origin);
        r.provider_markers = phrase_list(pr["markers"], origin, "provider.markers");
        r.provider_headings = phrase_list(pr["headings"], origin, "provider.headings");
        r.address_stops = phrase_list(pr["address_stops"], origin, "provider.address_stops");
        if (pr["registration"]) r.registration_labels = phrase_list(pr["registration"], origin, "provider.registration");
        if (pr["vocabulary"]) r.provider_vocabulary = phrase_list(pr["vocabulary"], origin, "provider.vocabulary");
        if (pr["address_words"]) r.address_words = phrase_list(pr["address_words"], origin, "provider.address_words");
        if (pr["address_regions"]) r.address_regions = phrase_list(pr["address_regions"], origin, "provider.address_regions");
        if (pr["sections"]) {
            r.provider_sections = phrase_list(pr["sections"], origin, "provider.sections");
            // A section is a line of one word ("SERVICES"); a phrase would never match.
            for (std::size_t k = 0; k < r.provider_sections.size(); ++k)
                if (r.provider_sections[k].find(' ') != std::string::npos)
                    throw RulesError(fmt::format("{}: provider.sections: '{}': one word per entry (a section heading is a line of one word)",
                                                 where(origin, pr["sections"][k]), pr["sections"][k].as<std::string>()));
        }
    }
    if (const YAML::Node d = root["date"]) {
        if (!d.IsMap()) throw RulesError(fmt::format("{}: date: expected a map with 'ignore: [phrases]'", where(origin, d)));
        check_keys(d, "date", {"ignore"}, origin);
        if (d["ignore"]) r.date_ignore_labels = phrase_list(d["ignore"], origin, "date.ignore");
    }
    return r;
}

Rules Rules::load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw RulesError(fmt::format("rules file '{}' cannot be read (missing or no permission)", path));
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path);
}

const char* Rules::builtin_text() { return kDefaultRulesYaml; }

const Rules& Rules::builtin() {
    static const Rules rules = parse(kDefaultRulesYaml, "default-rules.yaml (built in)");
    return rules;
}

}  // namespace docpipe::claims
