#include "docpipe/claim.hpp"

#include <cmath>
#include <ctime>

#include <fmt/core.h>

namespace docpipe::claim {

std::optional<nlohmann::json> field_value(const Document& doc, const std::string& name) {
    const auto c = doc.fields.find(kClaimKey);
    if (c == doc.fields.end() || !c->is_object()) return std::nullopt;
    const auto f = c->find(name);
    if (f == c->end() || !f->is_object() || !f->contains("value")) return std::nullopt;
    const auto& v = (*f)["value"];
    if (v.is_null() || (v.is_string() && v.get<std::string>().empty())) return std::nullopt;
    return v;
}

std::string iso8601_with_offset(std::chrono::system_clock::time_point t, int utc_offset_minutes) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t + std::chrono::minutes(utc_offset_minutes));
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const int off = std::abs(utc_offset_minutes);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                       tm.tm_min, tm.tm_sec, utc_offset_minutes < 0 ? '-' : '+', off / 60, off % 60);
}

NcbRecord ncb_record(const Document& doc, std::chrono::system_clock::time_point submitted_at, int utc_offset_minutes) {
    NcbRecord out;
    auto& r = out.record;
    auto require = [&](const char* ncb_name, const char* field, auto&& convert) {
        auto v = field_value(doc, field);
        if (!v) {
            out.missing.push_back(fmt::format("{} ({})", ncb_name, field));
            return;
        }
        auto converted = convert(*v);
        if (!converted) {
            out.missing.push_back(fmt::format("{} ({}: '{}' is not usable)", ncb_name, field, docpipe::json_text(*v)));
            return;
        }
        r[ncb_name] = *converted;
    };
    auto as_string = [](const nlohmann::json& v) -> std::optional<nlohmann::json> {
        if (v.is_string()) return v;
        if (v.is_number()) return docpipe::json_text(v);
        return std::nullopt;
    };
    require("Event date", "service_date", [](const nlohmann::json& v) -> std::optional<nlohmann::json> {
        if (!v.is_string()) return std::nullopt;
        const auto s = v.get<std::string>();
        int y = 0, m = 0, d = 0;
        if (s.size() != 10 || std::sscanf(s.c_str(), "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31) return std::nullopt;
        return v;
    });
    r["Submission Date"] = iso8601_with_offset(submitted_at, utc_offset_minutes);
    require("Claim Amount", "total_amount", [](const nlohmann::json& v) -> std::optional<nlohmann::json> {
        if (!v.is_number() || v.get<double>() <= 0) return std::nullopt;
        return std::round(v.get<double>() * 100.0) / 100.0;
    });
    require("Invoice Number", "receipt_number", as_string);
    if (field_value(doc, "policy_number")) {
        require("Policy Number", "policy_number", as_string);
    } else if (field_value(doc, "member_id")) {
        require("Policy Number", "member_id", as_string);
    } else {
        out.missing.push_back("Policy Number (policy_number or member_id)");
    }
    auto attr = [&](const char* name) {
        auto it = doc.attributes.find(name);
        return it == doc.attributes.end() ? std::string() : it->second;
    };
    r["source_email_id"] = attr("message_id");
    r["source_filename"] = attr("filename");
    r["extraction_confidence"] = doc.fields.value("confidence", 0.0);
    r["confidence_level"] = doc.fields.value("confidence_level", "");
    return out;
}

}  // namespace docpipe::claim
