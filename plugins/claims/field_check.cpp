#include "field_check.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>

#include <fmt/core.h>

#include "amount.hpp"
#include "date.hpp"

namespace docpipe::claims {

namespace {

constexpr const char* kAmountFields[] = {"total_amount", "sst_amount", "gst_amount"};
constexpr const char* kTextFields[] = {"member_id", "member_name", "policy_number", "provider_name", "provider_address",
                                       "receipt_number", "currency"};

bool one_of(const std::string& name, const auto& names) {
    for (const char* n : names)
        if (name == n) return true;
    return false;
}

// "" when `value` is an amount a receipt could state, else why not.
std::string check_amount(const nlohmann::json& value, bool must_be_positive) {
    std::int64_t cents = 0;
    if (value.is_number()) {
        const double v = value.get<double>();
        if (!std::isfinite(v)) return "must be a finite amount";
        const double scaled = v * 100.0;
        if (std::abs(scaled - std::round(scaled)) > 1e-6) return fmt::format("{} has more than two decimals (sen)", v);
        if (std::abs(v) > 1e12) return fmt::format("{} is more than any receipt states: check the digits", v);  // before llround overflows
        cents = static_cast<std::int64_t>(std::llround(scaled));
    } else if (value.is_string()) {
        // Typed by a person: the amount as a receipt writes it ("479.05", "RM 1,234.50"),
        // read by the receipt parser, and nothing else on the line.
        const std::string text = value.get<std::string>();
        const auto amounts = find_amounts(text);
        std::size_t non_space = 0;
        for (char c : text) non_space += !std::isspace(static_cast<unsigned char>(c));
        std::size_t covered = 0;
        if (amounts.size() == 1)
            for (std::size_t i = amounts[0].begin; i < amounts[0].end && i < text.size(); ++i)
                covered += !std::isspace(static_cast<unsigned char>(text[i]));
        if (amounts.size() != 1 || covered != non_space || amounts[0].repaired)
            return fmt::format("'{}' is not an amount (write it like 479.05 or RM 479.05)", text);
        cents = amounts[0].cents;
    } else {
        return "must be an amount (a number like 479.05)";
    }
    if (must_be_positive ? cents <= 0 : cents < 0) return fmt::format("{} is not a claimable amount: it must be more than 0", format_cents(cents));
    // 1e9 as a JSON number was booked at NCB as a claim of a billion ringgit.
    constexpr std::int64_t kLargestCents = 10'000'000LL * 100;
    if (cents > kLargestCents)
        return fmt::format("{} is above {}, more than any receipt states: check the digits", format_cents(cents), format_cents(kLargestCents));
    return "";
}

std::string check_date(const nlohmann::json& value) {
    if (!value.is_string()) return "must be a date written YYYY-MM-DD";
    const std::string text = value.get<std::string>();
    int year = 0, month = 0, day = 0;
    char tail = 0;
    if (text.size() != 10 || std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &year, &month, &day, &tail) != 3 || text[4] != '-' || text[7] != '-')
        return fmt::format("'{}' is not a date written YYYY-MM-DD", text);
    const DateLimits limits;
    if (year < limits.min_year || year > limits.max_year)
        return fmt::format("{} is outside the years a receipt is read with ({}..{})", text, limits.min_year, limits.max_year);
    if (!valid_date(year, month, day)) return fmt::format("{} is not a calendar date", text);
    // A receipt is never dated after today: "2099-01-01" was accepted and booked at NCB. UTC
    // plus a day, so a receipt from Malaysia's morning is never refused.
    const std::time_t now = std::time(nullptr) + 86'400;
    std::tm tomorrow{};
    gmtime_r(&now, &tomorrow);
    const std::string latest = fmt::format("{:04}-{:02}-{:02}", tomorrow.tm_year + 1900, tomorrow.tm_mon + 1, tomorrow.tm_mday);
    if (text > latest) return fmt::format("{} is in the future: a receipt's date is on or before today", text);
    return "";
}

}  // namespace

nlohmann::json normalize_claim_corrections(const nlohmann::json& corrections) {
    if (!corrections.is_object()) return corrections;
    nlohmann::json out = corrections;
    for (auto& [name, value] : out.items()) {
        if (one_of(name, kAmountFields)) {
            // "RM 1,234.50" as typed, or 1234.5 as a number: the number of sen, as a JSON number.
            std::optional<std::int64_t> cents;
            if (value.is_number()) cents = std::llround(value.get<double>() * 100.0);
            else if (value.is_string())
                if (const auto amounts = find_amounts(value.get<std::string>()); amounts.size() == 1) cents = amounts[0].cents;
            if (cents) value = static_cast<double>(*cents) / 100.0;
        } else if (value.is_string() && one_of(name, kTextFields)) {
            std::string text = value.get<std::string>();  // surrounding spaces typed by accident
            const auto first = text.find_first_not_of(" \t");
            text = first == std::string::npos ? std::string() : text.substr(first, text.find_last_not_of(" \t") - first + 1);
            value = text;
        }
    }
    return out;
}

std::map<std::string, std::string> check_claim_corrections(const nlohmann::json& corrections) {
    std::map<std::string, std::string> problems;
    if (!corrections.is_object()) return problems;
    for (const auto& [name, value] : corrections.items()) {
        std::string why;
        if (one_of(name, kAmountFields)) {
            why = check_amount(value, name == "total_amount");
        } else if (name == "service_date") {
            why = check_date(value);
        } else if (one_of(name, kTextFields)) {
            const bool needs_text = name == "policy_number" || name == "member_id" || name == "receipt_number";
            if (!value.is_string()) why = "must be text";
            else if (value.get<std::string>().size() > 500) why = "is longer than 500 characters";
            else if (needs_text && value.get<std::string>().find_first_not_of(" \t") == std::string::npos)
                why = "is blank: NCB needs it; give the number, or leave the field out to keep the one read";
            else
                for (unsigned char c : value.get<std::string>())
                    if (c < 0x20 && c != '\t') {
                        why = "must not contain control characters or line breaks";
                        break;
                    }
        } else if (name == "itemized_charges") {
            if (!value.is_array()) why = "must be a list of {description, amount}";
        } else {
            why = "is not a claim field (see docpipe/claim.hpp: total_amount, service_date, member_id, policy_number, "
                  "receipt_number, provider_name, ...)";
        }
        if (!why.empty()) problems[name] = why;
    }
    return problems;
}

}  // namespace docpipe::claims
