#include "field_check.hpp"

#include <cmath>
#include <cstdio>

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
    return "";
}

}  // namespace

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
            if (!value.is_string()) why = "must be text";
            else if (value.get<std::string>().size() > 500) why = "is longer than 500 characters";
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
