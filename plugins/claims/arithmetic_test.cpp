// The receipt's arithmetic as evidence for the total (arithmetic.hpp), on synthetic receipt
// lines as OCR gives them: through ClaimExtractor::from_receipt with the built-in rules, and
// the equations and misreadings on their own.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "arithmetic.hpp"
#include "extractor.hpp"
#include "rules.hpp"

using namespace docpipe::claims;

namespace {

std::vector<TextLine> receipt(const std::vector<std::string>& text) {
    std::vector<TextLine> lines;
    for (const auto& t : text) lines.push_back(TextLine{t, "receipt", 0, static_cast<int>(lines.size()), std::nullopt, 90, {}});
    return lines;
}

struct Read {
    FieldMap fields;
    std::vector<std::string> warnings;
    double total() const { return fields.count("total_amount") ? fields.at("total_amount").value.get<double>() : -1; }
    double confidence() const { return fields.count("total_amount") ? fields.at("total_amount").confidence : 0; }
    std::string reason() const {
        return fields.count("total_amount") ? fields.at("total_amount").provenance.value("reason", std::string()) : std::string();
    }
    // The equations named in the total's provenance, joined.
    std::string equations() const {
        std::string out;
        if (!fields.count("total_amount")) return out;
        const auto& p = fields.at("total_amount").provenance;
        if (p.contains("arithmetic"))
            for (const auto& e : p["arithmetic"]) out += e.get<std::string>() + "; ";
        return out;
    }
    bool warned(const std::string& part) const {
        return std::any_of(warnings.begin(), warnings.end(), [&](const std::string& w) { return w.find(part) != std::string::npos; });
    }
};

Read extract(const std::vector<std::string>& text) {
    static const ClaimExtractor extractor(Rules::builtin());
    Read r;
    r.fields = extractor.from_receipt(receipt(text), r.warnings);
    return r;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

// "$8.20" printed, "58.20" read (the dollar sign taken for a 5): the items add up to 8.20,
// so 8.20 is the total, and the provenance and a warning name what was read and the sum.
TEST(ClaimsArithmetic, CurrencySignReadAsDigitIsRepairedByTheItems) {
    for (const std::string printed : {"58.20", "S8.20", "$8.20"}) {
        SCOPED_TRACE(printed);
        auto r = extract({"MAJU CAFE SDN BHD", "12/03/2018 10:31", "LATTE 4.40", "BLUEBERRY MUFFIN 3.80", "TOTAL " + printed, "THANK YOU"});
        EXPECT_DOUBLE_EQ(r.total(), 8.20);
        EXPECT_TRUE(has(r.reason(), "read as '" + printed + "'")) << r.reason();
        EXPECT_TRUE(has(r.reason(), "currency sign")) << r.reason();
        EXPECT_TRUE(has(r.equations(), "4.40 + 3.80 = 8.20")) << r.equations();
        EXPECT_TRUE(r.warned("read '" + printed + "'"));
        // Not what is printed: a person confirms it.
        EXPECT_LT(r.confidence(), 0.9);
    }
    // The items' own "$" read as 5 too ("$7.10" -> 57.10), under a misread column heading
    // whose "Total" is no total: summed without their signs, they still give 8.20.
    {
        auto r = extract({"UNI CAFE SDN BHD", "Itm Qy Total", "$7.10 1 $7.10", "$1.10 1 $1.10", "Total Amount: $8.20"});
        EXPECT_DOUBLE_EQ(r.total(), 8.20);
        EXPECT_TRUE(has(r.equations(), "items without their currency signs 7.10 + 1.10 = 8.20")) << r.equations();
    }
    // The items add up to the amount as read: nothing to repair.
    auto r = extract({"MAJU CAFE SDN BHD", "LATTE 14.40", "BLUEBERRY MUFFIN 43.80", "TOTAL 58.20"});
    EXPECT_DOUBLE_EQ(r.total(), 58.20);
}

// Subtotal + SST 6% = total: confirmed, high; with the tax label unreadable ("S5T"), the
// amount between subtotal and total still adds up.
TEST(ClaimsArithmetic, SubtotalPlusSstIsTheTotal) {
    auto r = extract({"KEDAI ABC SDN BHD", "NASI LEMAK 10.00", "TEH TARIK 20.00", "SUBTOTAL 30.00", "SST 6% 1.80", "GRAND TOTAL 31.80"});
    EXPECT_DOUBLE_EQ(r.total(), 31.80);
    EXPECT_GE(r.confidence(), 0.9);
    r = extract({"KEDAI ABC SDN BHD", "SUBTOTAL 30.00", "S5T 6% 1.80", "GRAND TOTAL 31.80"});
    EXPECT_DOUBLE_EQ(r.total(), 31.80);
    EXPECT_TRUE(has(r.equations(), "subtotal 30.00 + 1.80 = 31.80")) << r.equations();
    EXPECT_GE(r.confidence(), 0.9);
}

// Cash tendered minus change is the total: confirms a labelled total, and stands for one
// whose label was not read at all (with the items above it agreeing).
TEST(ClaimsArithmetic, CashMinusChangeIsTheTotal) {
    auto r = extract({"KEDAI ABC SDN BHD", "TOTAL 12.40", "CASH 20.00", "CHANGE 7.60"});
    EXPECT_DOUBLE_EQ(r.total(), 12.40);
    EXPECT_GE(r.confidence(), 0.9);
    EXPECT_TRUE(has(r.equations(), "cash 20.00 - change 7.60 = 12.40")) << r.equations();
    // "T0TA1" is no label: the amount the arithmetic gives is still found.
    r = extract({"KEDAI ABC SDN BHD", "MEE GORENG 5.00", "TEH TARIK 2.40", "T0TA1 :: 7.40", "CASH 10.00", "CHANGE 2.60"});
    EXPECT_DOUBLE_EQ(r.total(), 7.40);
    EXPECT_TRUE(has(r.equations(), "cash 10.00 - change 2.60 = 7.40")) << r.equations();
    EXPECT_LT(r.confidence(), 0.9);  // no label: not high on arithmetic alone
}

// "TOTAL" with its amount on the line below (a right-aligned column read as its own line).
TEST(ClaimsArithmetic, TotalOnTheLineBelowItsLabel) {
    auto r = extract({"KEDAI ABC SDN BHD", "ROTI CANAI 3.00", "MILO AIS 4.50", "TOTAL", "7.50", "CASH 10.00", "CHANGE 2.50"});
    EXPECT_DOUBLE_EQ(r.total(), 7.50);
    EXPECT_TRUE(has(r.equations(), "3.00 + 4.50 = 7.50")) << r.equations();
    EXPECT_GE(r.confidence(), 0.9);
}

// Quantity, unit price and a right-aligned amount column: the rightmost amount is the
// item's, and the items' sum repairs a total whose "$" was read as a 5.
TEST(ClaimsArithmetic, RightAlignedAmountColumnAddsUp) {
    auto r = extract({"KOPITIAM SDN BHD", "ITEM        QTY   PRICE   AMOUNT", "MILO          2    1.50     3.00", "ROTI BAKAR    1    2.00     2.00",
                      "KAYA PUFF     3    0.80     2.40", "TOTAL               $7.40"});
    EXPECT_DOUBLE_EQ(r.total(), 7.40);
    EXPECT_TRUE(has(r.equations(), "3.00 + 2.00 + 2.40 = 7.40")) << r.equations();
    // As read: the amount column adds up to the printed total.
    r = extract({"KOPITIAM SDN BHD", "ITEM        QTY   PRICE   AMOUNT", "MILO          2    1.50     3.00", "ROTI BAKAR    1    2.00     2.00",
                 "KAYA PUFF     3    0.80     2.40", "TOTAL                7.40"});
    EXPECT_DOUBLE_EQ(r.total(), 7.40);
    EXPECT_TRUE(has(r.equations(), "3.00 + 2.00 + 2.40 = 7.40")) << r.equations();
}

// Items, cash and change all disagree with the labelled total: it is reported as read,
// but not with high confidence, and no equation is claimed for it.
TEST(ClaimsArithmetic, NothingAgreesIsNotHigh) {
    auto r = extract({"KEDAI ABC SDN BHD", "ROTI CANAI 3.00", "MILO AIS 4.50", "TOTAL 9.90", "CASH 20.00", "CHANGE 5.00"});
    ASSERT_TRUE(r.fields.count("total_amount"));
    EXPECT_LT(r.confidence(), 0.9);
    EXPECT_EQ(r.equations(), "");
    // A total with no other amount on the receipt: nothing to agree with, not high either.
    r = extract({"KEDAI ABC SDN BHD", "GRAND TOTAL 9.90"});
    EXPECT_DOUBLE_EQ(r.total(), 9.90);
    EXPECT_LT(r.confidence(), 0.9);
}

// ---- the equations and misreadings on their own ------------------------------------------
ArithmeticLine line(AmountRole role, const std::string& text) { return {role, find_amounts(text), text, 0}; }

TEST(ClaimsArithmeticEquations, EachReadsOtherLinesThanTheCandidate) {
    std::vector<ArithmeticLine> lines{line(AmountRole::None, "A 4.40"), line(AmountRole::None, "B 3.80"),
                                      line(AmountRole::Subtotal, "SUBTOTAL 8.20"), line(AmountRole::Tax, "SST 6% 0.49"),
                                      line(AmountRole::Total, "TOTAL 8.69"), line(AmountRole::Cash, "CASH 10.00"),
                                      line(AmountRole::Change, "CHANGE 1.31")};
    for (std::size_t i = 0; i < lines.size(); ++i) lines[i].index = static_cast<int>(i);
    ReceiptArithmetic arith(lines);
    const auto total = arith.confirming(869, 4);
    std::vector<std::string> kinds;
    for (const auto& e : total) kinds.push_back(e.kind);
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), "subtotal"), kinds.end());
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), "cash-change"), kinds.end());
    // The items give the subtotal, not the total.
    EXPECT_EQ(std::find(kinds.begin(), kinds.end(), "items"), kinds.end());
    const auto sub = arith.confirming(820, 2);
    ASSERT_FALSE(sub.empty());
    EXPECT_EQ(sub.front().kind, "items");
    // An equation never confirms the line it reads.
    EXPECT_TRUE(arith.confirming(1000, 5).empty());
}

TEST(ClaimsArithmeticEquations, TaxSummaryRowAtItsRate) {
    std::vector<ArithmeticLine> lines{line(AmountRole::Total, "TOTAL 8.20"), line(AmountRole::Summary, "GST SUMMARY"),
                                      line(AmountRole::None, "SR @ 6% 7.74 0.46")};
    ReceiptArithmetic arith(lines);
    const auto eqs = arith.confirming(820, 0);
    ASSERT_FALSE(eqs.empty());
    EXPECT_EQ(eqs.front().kind, "tax-summary");
}

TEST(ClaimsArithmeticEquations, CurrencySignMisreadings) {
    auto first = [](const std::string& token) {
        auto a = parse_number_token(token);
        if (!a) return std::int64_t{-1};
        auto m = currency_sign_misreadings(*a);
        return m.empty() ? std::int64_t{-1} : m.front().cents;
    };
    EXPECT_EQ(first("58.20"), 820);
    EXPECT_EQ(first("S8.20"), 820);
    EXPECT_EQ(first("$12.90"), 1290);
    EXPECT_EQ(first("88.20"), 820);
    EXPECT_EQ(first("12.50"), -1);  // a 1 is no currency sign
    EXPECT_EQ(first("5.20"), -1);   // nothing left before the point
}

// A long itemised document (thousands of amount lines) is read in bounded time: the sums
// run over a bounded number of lines, not every pair of them.
TEST(ClaimsArithmeticEquations, LongDocumentStaysLinear) {
    std::vector<std::string> text{"KLINIK ABC SDN BHD"};
    for (int i = 0; i < 4000; ++i) text.push_back("ITEM " + std::to_string(i) + " " + std::to_string(1 + i % 7) + ".50");
    text.push_back("SUBTOTAL 10.00");
    for (int i = 0; i < 2000; ++i) text.push_back("NOTE " + std::to_string(i) + " 2.25");
    text.push_back("TOTAL 10.60");
    auto r = extract(text);
    EXPECT_DOUBLE_EQ(r.total(), 10.60);
}
