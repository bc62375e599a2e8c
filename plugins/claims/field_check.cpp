#include "field_check.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>
#include <regex>

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
        // The receipt parser reads "12,50" as 12.50 (a decimal comma, as some tills print
        // it), and the review page read it as 1250: a person's comma is a thousands
        // separator only, so one anywhere else is refused rather than guessed.
        static const std::regex kGroupedThousands(R"(^\s*(RM|MYR)?\s*\d{1,3}(,\d{3})+(\.\d{1,2})?\s*$)", std::regex::icase);
        if (text.find(',') != std::string::npos && !std::regex_match(text, kGroupedThousands))
            return fmt::format("'{}' is ambiguous: write decimals with a point (12.50); a comma only separates thousands "
                               "(1,250.00)", text);
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
    // Digits where digits belong: sscanf alone let "2024- 1- 5" and "2024-+1-+5" through.
    bool digits = text.size() == 10;
    for (std::size_t i = 0; digits && i < text.size(); ++i)
        digits = i == 4 || i == 7 ? text[i] == '-' : std::isdigit(static_cast<unsigned char>(text[i])) != 0;
    if (!digits || std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &year, &month, &day, &tail) != 3)
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

// Characters that change how the text around them is shown without being seen themselves:
// the bidirectional controls (U+202A-U+202E, U+2066-U+2069, the marks U+200E, U+200F and
// U+061C), the zero-width and invisible characters (U+200B-U+200D, U+2060-U+2064, U+00AD,
// U+034F, U+180E, the Hangul fillers U+115F, U+1160, U+3164, U+FFA0), the interlinear
// annotations U+FFF9-U+FFFB and the byte-order mark. A policy number "POL" + U+202E + "123"
// reads reversed on the review page and at NCB; "MEM" + U+2060 + "123" looks like MEM123 and
// is not. The review pages show the same set as code points (core/src/ui/dom.js, INVISIBLE);
// ClaimCorrections.TheInvisibleCharactersRefusedAreTheOnesTheReviewPagesShow fails if the two differ.
bool invisible(char32_t c) {
    return c == 0x00AD || c == 0x034F || c == 0x061C || c == 0x115F || c == 0x1160 || c == 0x180E || (c >= 0x200B && c <= 0x200F) ||
           (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x2064) || (c >= 0x2066 && c <= 0x2069) || c == 0x3164 ||
           c == 0xFEFF || c == 0xFFA0 || (c >= 0xFFF9 && c <= 0xFFFB);
}

// A line break or control character: C0 (tab aside), DEL, C1 (U+0080-U+009F, NEL among
// them) and the Unicode line and paragraph separators.
bool control(char32_t c) { return (c < 0x20 && c != '\t') || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029; }

// The code points of valid UTF-8 (the JSON parser has checked it), one at a time.
template <typename Visit>
void for_each_code_point(const std::string& text, Visit visit) {
    for (std::size_t i = 0; i < text.size();) {
        const auto b = static_cast<unsigned char>(text[i]);
        const int length = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        char32_t c = length == 1 ? b : length == 2 ? b & 0x1F : length == 3 ? b & 0x0F : b & 0x07;
        for (int k = 1; k < length && i + k < text.size(); ++k) c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
        if (!visit(c)) return;
        i += static_cast<std::size_t>(length);
    }
}

// "" when `text` is a field's text a person may give: no line breaks or control characters,
// nothing invisible that turns what is shown around.
std::string check_text(const std::string& text) {
    if (text.size() > 500) return "is longer than 500 characters";
    std::string why;
    for_each_code_point(text, [&](char32_t c) {
        if (control(c)) why = "must not contain control characters or line breaks";
        else if (invisible(c))
            why = fmt::format("holds an invisible character (U+{:04X}) that changes how the text reads or looks like nothing; "
                              "type the value again without it",
                              static_cast<std::uint32_t>(c));
        return why.empty();
    });
    return why;
}

// An item line: {description, amount}, as the extraction writes them ("line": the OCR line it
// came from). A discount line may be negative.
std::string check_item(const nlohmann::json& item) {
    if (!item.is_object()) return "must be an object {description, amount}";
    for (const auto& [key, value] : item.items())
        if (key != "description" && key != "amount" && key != "line") return fmt::format("has an unknown key '{}' (it takes description, amount)", key);
    if (!item.contains("description") || !item["description"].is_string() ||
        item["description"].get<std::string>().find_first_not_of(" \t") == std::string::npos)
        return "needs a description (text)";
    if (std::string why = check_text(item["description"].get<std::string>()); !why.empty()) return "description " + why;
    if (!item.contains("amount")) return "needs an amount";
    const nlohmann::json& amount = item["amount"];
    const nlohmann::json magnitude = amount.is_number() ? nlohmann::json(std::abs(amount.get<double>())) : amount;
    if (std::string why = check_amount(magnitude, false); !why.empty()) return "amount " + why;
    if (item.contains("line") && (!item["line"].is_number_integer() || item["line"].get<std::int64_t>() < 0))
        return "line must be a line number (0 or more)";
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
            else if (needs_text && value.get<std::string>().find_first_not_of(" \t") == std::string::npos)
                why = "is blank: NCB needs it; give the number, or leave the field out to keep the one read";
            else
                why = check_text(value.get<std::string>());
        } else if (name == "itemized_charges") {
            if (!value.is_array()) why = "must be a list of {description, amount}";
            else if (value.size() > 500) why = "has more than 500 items";
            else
                for (std::size_t i = 0; i < value.size() && why.empty(); ++i)
                    if (std::string item = check_item(value[i]); !item.empty()) why = fmt::format("item {}: {}", i + 1, item);
        } else {
            why = "is not a claim field (see docpipe/claim.hpp: total_amount, service_date, member_id, policy_number, "
                  "receipt_number, provider_name, ...)";
        }
        if (!why.empty()) problems[name] = why;
    }
    return problems;
}

}  // namespace docpipe::claims
