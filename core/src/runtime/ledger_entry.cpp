#include "ledger_entry.hpp"

namespace docpipe::core {

namespace {

std::string_view next_line(std::string_view& rest) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    return line;
}

}  // namespace

LedgerEntry parse_ledger_entry(std::string_view text) {
    LedgerEntry entry;
    std::string_view rest = text;
    const std::string_view head = next_line(rest);
    entry.parked = head.rfind("review@", 0) == 0;
    if (const auto at = head.find('@'); at != std::string_view::npos) entry.at = std::string(head.substr(at + 1));
    if (!rest.empty()) {
        const auto references = nlohmann::json::parse(next_line(rest), nullptr, false);
        if (references.is_object())
            for (const auto& [k, v] : references.items())
                if (v.is_string()) entry.references[k] = v.get<std::string>();
    }
    if (!rest.empty()) {
        auto values = nlohmann::json::parse(next_line(rest), nullptr, false);
        if (values.is_object()) entry.values = std::move(values);
    }
    return entry;
}

void append_ledger_details(std::string& entry, const std::map<std::string, std::string>& references, const nlohmann::json& values) {
    if (references.empty() && values.is_null()) return;
    entry += '\n';
    entry += references.empty() ? std::string("{}") : docpipe::json_text(nlohmann::json(references));
    if (values.is_null()) return;
    entry += '\n';
    entry += docpipe::json_text(values);
}

nlohmann::json claim_values(const Document& doc) {
    nlohmann::json values = nlohmann::json::object();
    if (!doc.fields.is_object()) return values;
    const auto claim = doc.fields.find("claim");
    const nlohmann::json& fields = claim != doc.fields.end() && claim->is_object() ? *claim : doc.fields;
    for (const auto& [name, field] : fields.items()) {
        if (&fields == &doc.fields && !field.is_object()) continue;  // a top-level flag, not a claim field
        values[name] = field.is_object() && field.contains("value") ? field["value"] : field;
    }
    return values;
}

std::string describe_value_differences(const nlohmann::json& delivered, const nlohmann::json& now) {
    return docpipe::json_differences(delivered, now, "delivered", "now");
}

}  // namespace docpipe::core
