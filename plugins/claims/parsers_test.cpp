// Table-driven tests of the claim parsers: amounts, dates, labels and totals, in English
// and Malay, with the OCR noise seen on real receipts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <set>

#include <cctype>
#include <random>
#include <string>
#include <string_view>

#include "amount.hpp"
#include "date.hpp"
#include "extractor.hpp"
#include "field_check.hpp"
#include "text.hpp"

using namespace docpipe::claims;

namespace {

constexpr long long kNone = -999999999;  // "no amount" (-1 is a real amount: rounding)

// A case's test name: its index and its text in letters and digits ("3_TOTAL_RM_479_05").
// Without a name, ctest names a case after its raw bytes, which hold string addresses and so
// differ from build to build (scripts/run-gates.sh matches the tests of two builds by name).
std::string case_name(std::size_t index, std::string_view text) {
    std::string name = std::to_string(index);
    bool gap = true;
    for (const char ch : text) {
        if (name.size() >= 48) break;
        if (std::isalnum(static_cast<unsigned char>(ch))) {
            if (gap) name += '_';
            name += ch;
            gap = false;
        } else {
            gap = true;
        }
    }
    return name;
}
template <class Case>
std::string line_case_name(const ::testing::TestParamInfo<Case>& info) {
    return case_name(info.index, info.param.line);
}

struct AmountCase {
    const char* line;
    long long cents;  // of the last amount on the line; kNone = no amount
    bool currency;
    bool repaired;
};

class AmountTest : public ::testing::TestWithParam<AmountCase> {};

TEST_P(AmountTest, ReadsTheLastAmountOfTheLine) {
    const auto& c = GetParam();
    auto found = find_amounts(c.line);
    if (c.cents == kNone) {
        EXPECT_TRUE(found.empty()) << c.line << " -> " << (found.empty() ? 0 : found.back().cents);
        return;
    }
    ASSERT_FALSE(found.empty()) << c.line;
    EXPECT_EQ(found.back().cents, c.cents) << c.line;
    EXPECT_EQ(found.back().currency, c.currency) << c.line;
    EXPECT_EQ(found.back().repaired, c.repaired) << c.line;
}

INSTANTIATE_TEST_SUITE_P(Malaysian, AmountTest, ::testing::Values(
    AmountCase{"RM 1,234.50", 123450, true, false},
    AmountCase{"RM1234.5", 123450, true, false},
    AmountCase{"1,234.50 MYR", 123450, true, false},
    AmountCase{"RM1,234.50", 123450, true, false},
    AmountCase{"TOTAL: RM 479.05", 47905, true, false},
    AmountCase{"Subtotal: RM 435.50", 43550, true, false},
    AmountCase{"TOTAL 80.90", 8090, false, false},
    AmountCase{"Total Amount : 30.70", 3070, false, false},
    AmountCase{"ROUNDING -0.01", -1, false, false},
    AmountCase{"Rounding Adj : -0.03", -3, false, false},
    AmountCase{"CASH : 100.00", 10000, false, false},
    AmountCase{"CHANGE : 19.10", 1910, false, false},
    AmountCase{"RM 50", 5000, true, false},
    AmountCase{"RM50", 5000, true, false},
    AmountCase{"MYR 12.00", 1200, true, false},
    AmountCase{"12.00MYR", 1200, true, false},
    AmountCase{"12.00RM", 1200, true, false},
    AmountCase{"Jumlah Keseluruhan: RM 1,200.00", 120000, true, false},
    AmountCase{"Jumlah: RM 1,200.00", 120000, true, false},
    AmountCase{"Bil semua sekali RM 680.50.", 68050, true, false},
    AmountCase{"总金额 Total Amount: RM 1,850.00", 185000, true, false},
    AmountCase{"GRAND TOTAL (RM) 5,800.00", 580000, true, false},
    AmountCase{"TOTAL (RM): 12.50", 1250, false, false},
    AmountCase{"2 D15 8.90 17.80", 1780, false, false},
    AmountCase{"Total Incl GST 2.50", 250, false, false},
    AmountCase{"9556570105134 1 250 2.50", 250, false, false},
    AmountCase{"amount 1,000,000.00", 100000000, false, false},
    AmountCase{"RM 0.50", 50, true, false},
    AmountCase{"RM .50", 50, true, false},
    AmountCase{"(RM) 12.30", 1230, true, false},
    // OCR noise in numeric context.
    AmountCase{"TOTAL 8O.90", 8090, false, true},
    AmountCase{"TOTAL 1O.00", 1000, false, true},
    AmountCase{"TOTAL 4l.50", 4150, false, true},
    // A section sign before the number is read as a glued "$": the digit 5 (the arithmetic
    // may still take it for a currency sign).
    AmountCase{"Net Amt : \u00A73.55", 5355, false, true},
    AmountCase{"TOTAL 4i.50", 4150, false, true},
    AmountCase{"TOTAL 5S.00", 5500, false, true},
    AmountCase{"TOTAL B8.00", 8800, false, true},
    AmountCase{"TOTAL 3Z.40", 3240, false, true},
    AmountCase{"TOTAL 80,90", 8090, false, false},
    AmountCase{"TOTAL RM 26,00", 2600, true, false},
    AmountCase{"Total: 12.50|", 1250, false, false},
    AmountCase{"Total: 12.50:", 1250, false, false},
    AmountCase{"*12.50*", 1250, false, false},
    AmountCase{"=12.50", 1250, false, false},
    // Not amounts.
    AmountCase{"DATE 25/12/2018", kNone, false, false},
    // A space after the decimal point, and typographic quotes around the number (both seen
    // on SROIE receipts: "Total RM 14. 65", "“40.45. )”").
    AmountCase{"Total RM 14. 65", 1465, true, false},
    AmountCase{"CASH : 200. 00", 20000, false, false},
    AmountCase{"Total Inclusive GST: \u201C40.45. )\u201D", 4045, false, false},
    AmountCase{"No. 12 Jalan 3", kNone, false, false},
    AmountCase{"25.12.2018", kNone, false, false},
    AmountCase{"TIME 12:31:00", kNone, false, false},
    AmountCase{"TEL 07-3523888", kNone, false, false},
    AmountCase{"GST ID: 000849813504", kNone, false, false},
    AmountCase{"TOTAL QTY 1", kNone, false, false},
    AmountCase{"SIMPLIFIED TAX INVOICE", kNone, false, false},
    AmountCase{"INVOICE # : OR18032402170368", kNone, false, false},
    AmountCase{"CS00031663", kNone, false, false},
    AmountCase{"12.3456", kNone, false, false},
    AmountCase{"1,23.50", kNone, false, false},
    AmountCase{"SOS.OO", kNone, false, false},
    AmountCase{"RM", kNone, false, false},
    AmountCase{"Receipt Number: DT-2024-1234", kNone, false, false},
    AmountCase{"Member ID: M12345", kNone, false, false},
    AmountCase{"1.234,50", kNone, false, false},
    AmountCase{"0123", kNone, false, false}), line_case_name<AmountCase>);

TEST(Amount, FindsEveryAmountLeftToRight) {
    auto found = find_amounts("Qty 2 x RM 8.90 = RM 17.80");
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0].cents, 890);
    EXPECT_EQ(found[1].cents, 1780);
    EXPECT_LT(found[0].end, found[1].begin);
}

TEST(Text, WithinOneEdit) {
    EXPECT_TRUE(within_one_edit("TOTAL", "TOTAL"));
    EXPECT_TRUE(within_one_edit("TCTAL", "TOTAL"));     // substitution
    EXPECT_TRUE(within_one_edit("TOTL", "TOTAL"));      // deletion
    EXPECT_TRUE(within_one_edit("TOTAAL", "TOTAL"));    // insertion
    EXPECT_TRUE(within_one_edit("BH", "BHD"));
    EXPECT_TRUE(within_one_edit("590", "50"));          // "5.0" for 5.90
    EXPECT_FALSE(within_one_edit("TCTAI", "TOTAL"));    // two substitutions
    EXPECT_FALSE(within_one_edit("TOT", "TOTAL"));
    EXPECT_FALSE(within_one_edit("ATOTL", "TOTAL"));    // insertion plus deletion
    EXPECT_TRUE(within_one_edit("", "A"));
}

TEST(Amount, FormatsCents) {
    EXPECT_EQ(format_cents(47905), "479.05");
    EXPECT_EQ(format_cents(5), "0.05");
    EXPECT_EQ(format_cents(-1), "-0.01");
    EXPECT_EQ(format_cents(100000), "1000.00");
}

// -----------------------------------------------------------------------------------------
struct DateCase {
    const char* line;
    const char* iso;      // first date found; "" = none
    bool lowered;         // confidence below 0.9: ambiguous, month-first or repaired
};

class DateTest : public ::testing::TestWithParam<DateCase> {};

TEST_P(DateTest, ReadsTheFirstDate) {
    const auto& c = GetParam();
    auto found = find_dates(c.line);
    if (std::string(c.iso).empty()) {
        EXPECT_TRUE(found.empty()) << c.line << " -> " << (found.empty() ? "" : found.front().iso());
        return;
    }
    ASSERT_FALSE(found.empty()) << c.line;
    EXPECT_EQ(found.front().iso(), c.iso) << c.line;
    EXPECT_EQ(found.front().confidence < 0.9, c.lowered) << c.line << " confidence " << found.front().confidence;
}

INSTANTIATE_TEST_SUITE_P(MalaysianAndEnglish, DateTest, ::testing::Values(
    DateCase{"25/12/2018", "2018-12-25", false},
    DateCase{"61/03/18 12:36 Slip No.: 9070058756", "2018-03-01", true},  // 0 read as 6 in the day
    DateCase{"12/41/2018", "2018-11-12", true},                           // 1 read as 4 in the month
    DateCase{"55/03/2018", "", false},                                    // 5 is no look-alike: not a date
    DateCase{"DATE 25/12/2018", "2018-12-25", false},
    DateCase{"Date: 24/12/2024", "2024-12-24", false},
    DateCase{"20-12-2024", "2024-12-20", false},
    DateCase{"Tarikh Perkhidmatan: 20-12-2024", "2024-12-20", false},
    DateCase{"25.12.2018", "2018-12-25", false},
    DateCase{"2024-12-24", "2024-12-24", false},
    DateCase{"2018/03/10 12:00", "2018-03-10", false},
    DateCase{"17/05/17 08:48:09", "2017-05-17", false},
    DateCase{"dd-mm-yy 24-12-24", "2024-12-24", false},
    DateCase{"12 Dis 2024", "2024-12-12", false},
    DateCase{"12 Disember 2024", "2024-12-12", false},
    DateCase{"12 December 2024", "2024-12-12", false},
    DateCase{"1 Jan 2024", "2024-01-01", false},
    DateCase{"5 Februari 2024", "2024-02-05", false},
    DateCase{"15 Mac 2024", "2024-03-15", false},
    DateCase{"3 Apr 2024", "2024-04-03", false},
    DateCase{"9 Mei 2024", "2024-05-09", false},
    DateCase{"9 May 2024", "2024-05-09", false},
    DateCase{"30 Jun 2024", "2024-06-30", false},
    DateCase{"4 Julai 2024", "2024-07-04", false},
    DateCase{"4 Jul 2024", "2024-07-04", false},
    DateCase{"31 Ogos 2024", "2024-08-31", false},
    DateCase{"31 Aug 2024", "2024-08-31", false},
    DateCase{"2 Sep 2024", "2024-09-02", false},
    DateCase{"2 Sept 2024", "2024-09-02", false},
    DateCase{"10 Okt 2024", "2024-10-10", false},
    DateCase{"10 Oct 2024", "2024-10-10", false},
    DateCase{"11 Nov 2024", "2024-11-11", false},
    DateCase{"24 MAR 2018 18:23", "2018-03-24", false},
    DateCase{"12-DEC-2018", "2018-12-12", false},
    DateCase{"12DEC2018", "2018-12-12", false},
    DateCase{"12-Dec-18", "2018-12-12", false},
    DateCase{"December 12, 2024", "2024-12-12", false},
    DateCase{"Dec 12 2024", "2024-12-12", false},
    DateCase{"the 18th of December 2024", "2024-12-18", false},
    DateCase{"29/02/2024", "2024-02-29", false},
    // Ambiguous, month-first and repaired readings: kept, but with a lower confidence.
    DateCase{"12/25/2018", "2018-12-25", true},
    DateCase{"2S/12/2018", "2018-12-25", true},
    DateCase{"25/12/2O18", "2018-12-25", true},
    DateCase{"l7/01/2018", "2018-01-17", true},
    // Impossible or not dates.
    // A refused match does not hide the date that overlaps it.
    DateCase{"ORD #95 -REG #19- 24/07/2016 14:21:51", "2016-07-24", false},
    // Month abbreviations one OCR slip away, only between matching separators.
    DateCase{"CB# : 78293759333 14/dun/2017 08:34:22", "2017-06-14", true},
    DateCase{"14 dun 2017", "", false},
    // Eight digits without separators: a real day/month/20xx, weakly.
    DateCase{"27032018 NO. CS-20242", "2018-03-27", true},
    DateCase{"Salesperson: Date: 1202/2018 .", "2018-02-12", true},
    DateCase{"INV 3513/2018", "", false},
    DateCase{"GST ID 000750673920", "", false},
    DateCase{"INV 35132018", "", false},
    DateCase{"Date/Time 20180428/191200", "2018-04-28", true},
    DateCase{"Invoice No: 20130312100680010139", "", false},  // a date inside a longer number is not one
    DateCase{"SO NO 20181342", "", false},
    DateCase{"31/02/2024", "", false},
    DateCase{"29/02/2023", "", false},
    DateCase{"13/13/2024", "", false},
    DateCase{"00/12/2024", "", false},
    DateCase{"25/12/1899", "", false},
    DateCase{"TEL 07-3523888", "", false},
    DateCase{"12:31:00", "", false},
    DateCase{"12/05-2018", "", false},
    DateCase{"32 Dis 2024", "", false},
    DateCase{"12 Foo 2024", "", false},
    DateCase{"RM 12.50", "", false}), line_case_name<DateCase>);

TEST(Date, AmbiguousDayMonthPrefersTheLocalConvention) {
    auto d = find_dates("05/06/2024");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].iso(), "2024-06-05");
    EXPECT_LT(d[0].confidence, 1.0);
}

TEST(Date, MonthFirstSaysWhy) {
    auto d = find_dates("12/25/2018");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_NE(d[0].note.find("month/day/year"), std::string::npos);
}

TEST(Date, MonthNames) {
    EXPECT_EQ(month_from_name("Dis"), 12);
    EXPECT_EQ(month_from_name("OGOS"), 8);
    EXPECT_EQ(month_from_name("mac"), 3);
    EXPECT_EQ(month_from_name("Mei"), 5);
    EXPECT_EQ(month_from_name("Julai"), 7);
    EXPECT_EQ(month_from_name("Okt"), 10);
    EXPECT_EQ(month_from_name("foo"), 0);
}

// -----------------------------------------------------------------------------------------
// Totals on receipt text: the payable amount, never the subtotal, cash or change.
struct TotalCase {
    const char* name;
    std::vector<const char*> lines;
    long long cents;  // -1 = no total
};

class TotalTest : public ::testing::TestWithParam<TotalCase> {};

std::vector<TextLine> receipt(const std::vector<const char*>& lines, double confidence = 92) {
    std::vector<TextLine> out;
    int i = 0;
    for (const char* l : lines) {
        TextLine t;
        t.text = l;
        t.page = 0;
        t.index = i++;
        t.ocr_confidence = confidence;
        out.push_back(t);
    }
    return out;
}

TEST_P(TotalTest, ChoosesThePayableAmount) {
    const auto& c = GetParam();
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> warnings;
    auto fields = extractor.from_receipt(receipt(c.lines), warnings);
    if (c.cents < 0) {
        EXPECT_FALSE(fields.count("total_amount")) << c.name;
        return;
    }
    ASSERT_TRUE(fields.count("total_amount")) << c.name;
    EXPECT_EQ(std::llround(fields["total_amount"].value.get<double>() * 100), c.cents) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Receipts, TotalTest, ::testing::Values(
    TotalCase{"clinic: total not subtotal", {"Subtotal: RM 435.50", "SST (10%): RM 43.55", "TOTAL: RM 479.05", "Payment Method: Cash"}, 47905},
    TotalCase{"subtotal after total", {"TOTAL RM 50.00", "SUB TOTAL RM 47.17"}, 5000},
    TotalCase{"grand total beats total", {"TOTAL 100.00", "SERVICE CHARGE 10.00", "GRAND TOTAL 110.00"}, 11000},
    TotalCase{"jumlah besar", {"JUMLAH KECIL 90.00", "CUKAI 5.40", "JUMLAH BESAR 95.40", "TUNAI 100.00", "BAKI 4.60"}, 9540},
    TotalCase{"jumlah", {"Ubat 20.00", "JUMLAH RM 20.00"}, 2000},
    TotalCase{"nett total", {"TOTAL 30.03", "ROUNDING -0.03", "NETT TOTAL 30.00"}, 3000},
    TotalCase{"rounded total", {"Total 41.48", "Rounding 0.02", "Rounded Total 41.50", "Cash 50.00", "Change 8.50"}, 4150},
    TotalCase{"amount due", {"Sub-Total 12.00", "SST 6% 0.72", "AMOUNT DUE 12.70"}, 1270},
    TotalCase{"total (rm)", {"TOTAL (RM) 18.80", "CASH 20.00", "CHANGE 1.20"}, 1880},
    TotalCase{"cash and change never win", {"TOTAL 80.90", "CASH 100.00", "CHANGE 19.10"}, 8090},
    TotalCase{"tendered never wins", {"TOTAL 15.00", "TENDERED 50.00", "CHANGE 35.00"}, 1500},
    TotalCase{"gst inclusive", {"TOTAL SALES (EXCLUDING GST) : 80.91", "TOTAL GST : 0.00", "ROUNDING -0.01",
                                  "TOTAL SALES (INCLUSIVE OF GST) : 80.90", "CASH : 100.00", "CHANGE : 19.10"}, 8090},
    TotalCase{"total qty is not a total", {"Total Qty 3 45.00", "TOTAL 45.00"}, 4500},
    TotalCase{"total gst is tax", {"TOTAL 106.00", "TOTAL GST 6.00"}, 10600},
    TotalCase{"value on the next line", {"TOTAL", "27.55", "CASH", "50.00"}, 2755},
    TotalCase{"ocr slip in the label", {"SUB-TCTAL 2.50", "TCTAL 2.50", "Cash 2.50"}, 250},
    TotalCase{"glued label", {"SUBTOTAL 9.43", "GST 0.57", "TOTALRM 10.00"}, 1000},
    TotalCase{"comma decimal", {"TOTAL RM 26,00", "CASH 30.00", "CHANGE 4.00"}, 2600},
    TotalCase{"total payable with supplies lines", {"Total 0% supplies: 44.76", "Total 6% supplies (excl. GST): 13.30",
                                                     "Total 0% supplies: 44.76", "Total Payable: 58.86"}, 5886},
    TotalCase{"cash rounding to 5 sen", {"Total 10.44", "Rounding 0.01", "Cash 10.45", "Change 0.00", "10.45"}, 1045},
    TotalCase{"no label: cash minus change", {"Nasi lemak 8.50", "CASH 10.00", "CHANGE 1.50"}, 850},
    // The payable label is unreadable; its amount equals cash minus change, while the only
    // labelled "Total" is a tax-summary row whose last column is the tax.
    TotalCase{"unreadable label, cash minus change", {"Total Sales (Excluding GST) . 20 60", "Total GST 120", "i Protea Sales : 21.20 Kh",
                                                       "CASH : 100.00", "Change : 78.80", "[ost SUMMARY ee", "Total : 20.00 1.20"}, 2120},
    TotalCase{"spaced decimals", {"Total RM Incl. of GST ~~ {4.64", "Rounding Adj 0.01", "Total RM 14. 65", "Cash -50. 00", "CHANGE 35. 35"}, 1465},
    TotalCase{"garbled totals, cash minus change", {"Total (Excluding GST): t4.a8", "Jotai (Inclusive of GST): a", "CASH : 200. 00", "CHANGE : 10. 00"}, 19000},
    // Per-rate totals ("supplies") add up to the payable amount, which OCR misread: one
    // look-alike digit ("5.0" for 5.90), or no amount parsed at all ("- 5128" for 51.88).
    TotalCase{"per-rate totals repair a misread total", {"Total @% supplies:  -9.62", "Total 6% supplies (exci. GST): 14.M",
                                                          "Total 6% suppires (Inc. GST): 15.52", "Total OK suppli. .  -9.62_",
                                                          "Total Payat.e: 5.0"}, 590},
    TotalCase{"per-rate totals stand in for an unparsed total", {"Total OX supplies: 19.83", "Total 6% supplies (excl. GST): 30.24",
                                                                  "GST: 181", "Total 6% supplies (Inc. GST): 32.05",
                                                                  "Total 0% supplies: 19.83", "Total Payable: - 5128"}, 5188},
    TotalCase{"per-rate totals far from the printed total change nothing", {"Total 0% supplies: 19.83",
                                                                             "Total 6% supplies (Inc. GST): 32.05", "Total Payable: 9999"}, -1},
    // The label misread by one digit, where cash minus change and the included GST (6% of
    // the total) both give another amount.
    TotalCase{"included tax and change outvote the label", {"Sub-Total : 45.70 |", "Grand Total : 30.50", "Payment : 101.00 : :",
                                                            "Change Dua > 70.10", "*€%. GST Included s 1.75"}, 3090},
    TotalCase{"included tax agreeing with the label keeps it", {"Grand Total : 30.50", "Payment : 101.00", "Change : 70.10",
                                                                "GST Included 1.73"}, 3050},
    // A misread total the tax summary repairs wins over an earlier "Total" the arithmetic
    // contradicts.
    TotalCase{"tax summary repairs the misread payable", {"2 27755 5.80 11.60", "Item Discount 10%  _ -1.16", "2 Type: 1 Total \u2014 11.60 fs 5",
                                                          "Rounding Adj NEO Ola", "Total Inclusive GST: \u201C40.45. )\u201D", "CASH [00",
                                                          "Change 9.55", "GST Summary", "Code % Net Amt GST Total", "Total 9.85 0.59 10.44"}, 1045},
    // The bill's label unread ("Due"); the only total label is the included tax, a tenth or
    // less of an unlabelled amount: not a total (train receipt 168 took 1.42 at 0.87).
    TotalCase{"included tax beside an unlabelled amount is not the total", {"Bread 12.50", "Due 20.49", "Pay 2a", "Change 0.00",
                                                                            "(Total Included GST @ 6% : 1.42)"}, -1},
    TotalCase{"an included tax total as large as the items stays the total", {"Bread 12.50", "Total Incl GST 13.25"}, 1325},
    TotalCase{"nothing", {"THANK YOU", "PLEASE COME AGAIN"}, -1},
    TotalCase{"zero total ignored", {"TOTAL 0.00"}, -1}),
    [](const auto& info) { return case_name(info.index, info.param.name); });

TEST(Totals, CrossCheckRaisesConfidence) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto checked = extractor.from_receipt(receipt({"SUBTOTAL 100.00", "SST 6.00", "TOTAL 106.00", "CASH 110.00", "CHANGE 4.00"}), w);
    auto alone = extractor.from_receipt(receipt({"TOTAL 106.00"}), w);
    EXPECT_GT(checked["total_amount"].confidence, alone["total_amount"].confidence);
    EXPECT_NE(checked["total_amount"].provenance["reason"].get<std::string>().find("cash minus change"), std::string::npos);
}

TEST(Totals, AlternativesAreKeptForTheReviewer) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto f = extractor.from_receipt(receipt({"SUBTOTAL 100.00", "SST 6.00", "TOTAL 106.00", "AMOUNT 99.00"}), w);
    ASSERT_TRUE(f.count("total_amount"));
    EXPECT_DOUBLE_EQ(f["total_amount"].value.get<double>(), 106.0);
    const auto& alt = f["total_amount"].provenance["alternatives"];
    ASSERT_TRUE(alt.is_array());
    ASSERT_FALSE(alt.empty());
    EXPECT_DOUBLE_EQ(alt[0]["value"].get<double>(), 99.0);
    EXPECT_LT(alt[0]["score"].get<double>(), f["total_amount"].confidence);
    EXPECT_NE(alt[0]["reason"].get<std::string>().find("not what the subtotal/tax arithmetic gives"), std::string::npos);
}

TEST(Totals, CouponOrVoucherKeepsTheTotalForReview) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    const std::vector<const char*> lines = {"Sub-Total : 60.60", "Coupon Discount : 27.60", "Grand Total : 33.00", "Payment : 50.00",
                                            "Change Due : 17.00"};
    auto f = extractor.from_receipt(receipt(lines), w);
    ASSERT_TRUE(f.count("total_amount"));
    EXPECT_DOUBLE_EQ(f["total_amount"].value.get<double>(), 33.0);  // what was paid
    EXPECT_LE(f["total_amount"].confidence, 0.85);
    ASSERT_FALSE(w.empty());
    EXPECT_NE(w.back().find("coupon/voucher of 27.60"), std::string::npos) << w.back();
    // Another reading agreeing, or the email agreeing, does not lift the cap.
    std::vector<std::string> w2;
    auto merged = ClaimExtractor::merge_readings({f, extractor.from_receipt(receipt(lines), w2)}, w2);
    EXPECT_LE(merged["total_amount"].confidence, 0.85);
    FieldMap email{{"total_amount", FieldValue{33.0, 0.95, "email_body", nlohmann::json::object()}}};
    EXPECT_LE(extractor.combine(merged, email, {}).fields["total_amount"].confidence, 0.85);
    // A zero coupon line changes nothing.
    std::vector<std::string> w3;
    auto plain = extractor.from_receipt(receipt({"Sub-Total : 33.00", "Coupon Discount : 0.00", "Grand Total : 33.00", "Payment : 50.00",
                                                 "Change Due : 17.00"}), w3);
    EXPECT_GT(plain["total_amount"].confidence, 0.85);
}

TEST(Dates, ExpiryDatesAreNotTheServiceDate) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto f = extractor.from_receipt(receipt({"POPULAR BOOK CO. (M) SDN BHD", "Card Expiry: 31/05/18", "05/03/18 15:02 Slip No.: 1010104759",
                                             "TOTAL 9.90"}), w);
    ASSERT_TRUE(f.count("service_date"));
    EXPECT_EQ(f["service_date"].value.get<std::string>(), "2018-03-05");
}

TEST(Totals, LowOcrConfidenceLowersFieldConfidence) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto clear = extractor.from_receipt(receipt({"TOTAL 12.00"}, 95), w);
    auto faint = extractor.from_receipt(receipt({"TOTAL 12.00"}, 45), w);
    EXPECT_GT(clear["total_amount"].confidence, faint["total_amount"].confidence);
}

TEST(Totals, ProvenanceNamesPageLineAndBox) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto lines = receipt({"SUBTOTAL 1.00", "TOTAL 2.00"});
    lines[1].box = std::array<int, 4>{10, 200, 300, 30};
    auto f = extractor.from_receipt(lines, w);
    EXPECT_EQ(f["total_amount"].provenance["page"], 0);
    EXPECT_EQ(f["total_amount"].provenance["line"], 1);
    EXPECT_EQ(f["total_amount"].provenance["box"], nlohmann::json({10, 200, 300, 30}));
}

// -----------------------------------------------------------------------------------------
// Labels: ids and names on receipts, English and Malay.
struct LabelCase {
    const char* line;
    const char* field;
    const char* value;
};

class LabelTest : public ::testing::TestWithParam<LabelCase> {};

TEST_P(LabelTest, ReadsTheLabelledValue) {
    const auto& c = GetParam();
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto f = extractor.from_receipt(receipt({"KLINIK CONTOH SDN BHD", c.line}), w);
    ASSERT_TRUE(f.count(c.field)) << c.line;
    EXPECT_EQ(f[c.field].value, c.value) << c.line;
}

INSTANTIATE_TEST_SUITE_P(Labels, LabelTest, ::testing::Values(
    LabelCase{"Receipt No: INV-2024-001234", "receipt_number", "INV-2024-001234"},
    LabelCase{"RECEIPT NO. : CS-20242", "receipt_number", "CS-20242"},
    LabelCase{"No. Resit : KKP-2024-5678", "receipt_number", "KKP-2024-5678"},
    LabelCase{"Nombor Resit: PA-2024-9999", "receipt_number", "PA-2024-9999"},
    LabelCase{"INVOICE NO: 7029F711", "receipt_number", "7029F711"},
    LabelCase{"Doc No CS00031663", "receipt_number", "CS00031663"},
    LabelCase{"Bill No: 123456", "receipt_number", "123456"},
    LabelCase{"Member ID: MEM123456789", "member_id", "MEM123456789"},
    LabelCase{"ID Ahli: M11111", "member_id", "M11111"},
    LabelCase{"No. Ahli : M22222", "member_id", "M22222"},
    LabelCase{"Policy No: POL987654321", "policy_number", "POL987654321"},
    LabelCase{"No. Polisi: POL123456", "policy_number", "POL123456"},
    LabelCase{"Patient Name: Ahmad bin Abdullah", "member_name", "Ahmad bin Abdullah"},
    LabelCase{"Nama Pesakit: Siti binti Hassan", "member_name", "Siti binti Hassan"}),
    [](const auto& info) { return case_name(info.index, info.param.field); });  // not the value: names stay out of test names

}  // namespace

// ---- robustness: OCR noise never crashes the extractor ------------------------------------
// Receipts assembled at random from the pieces real OCR output is made of (labels, amounts,
// dates, look-alike digits, broken UTF-8, very long digit runs, empty lines): extraction
// must not throw, and whatever it returns must be sane.
TEST(Robustness, RandomOcrNoiseIsHandled) {
    const std::vector<std::string> pieces = {
        "TOTAL", "GRAND TOTAL", "Sub-Total", "GST", "GST Included", "Rounding", "CASH", "CHANGE", "Coupon Discount", "Total 6% supplies (Inc. GST):",
        "Total 0% supplies:", "RM", "MYR", "12.50", "-0.03", "1,234.50", "14. 65", "\u201C40.45.", "5128", "0.00", "99999999999999999999999",
        "31/02/2024", "27032018", "14/dun/2017", "12 Dis 2024", "11/05/2018", "08:35:58", "Card Expiry:", "SDN BHD", "SON BH", "(KL )",
        "JIAWE|", "www.vivopac.com", "Co-REG:860671-D", "GST REF NO :", "Policy No:", "Receipt No:", "\xff\xfe", "\xe2\x80", "|", ":", "",
        "Tota] Qty = 1.00", "Protection Policy.", "O0lSB", "..", ",,", "(", ")", "}", "-", "/"};
    ClaimExtractor extractor(Rules::builtin());
    std::mt19937 rng(20261129);
    for (int receipt_no = 0; receipt_no < 800; ++receipt_no) {
        std::vector<std::string> text;
        const int n = 1 + static_cast<int>(rng() % 25);
        for (int l = 0; l < n; ++l) {
            std::string line;
            const int words = static_cast<int>(rng() % 6);
            for (int k = 0; k < words; ++k) line += (k ? " " : "") + pieces[rng() % pieces.size()];
            text.push_back(line);
        }
        std::vector<TextLine> lines;
        for (const auto& t : text) lines.push_back(TextLine{t, "receipt", 0, static_cast<int>(lines.size()), std::nullopt, double(rng() % 101), {}});
        std::vector<std::string> warnings;
        FieldMap f;
        ASSERT_NO_THROW(f = extractor.from_receipt(lines, warnings)) << testing::PrintToString(text);
        if (f.count("total_amount")) {
            EXPECT_GT(f["total_amount"].value.get<double>(), 0) << testing::PrintToString(text);
            EXPECT_LE(f["total_amount"].confidence, 1.0);
            EXPECT_GE(f["total_amount"].confidence, 0.0);
        }
        if (f.count("service_date")) {
            EXPECT_EQ(f["service_date"].value.get<std::string>().size(), 10u);
        }
        std::vector<std::string> w2;
        ASSERT_NO_THROW(ClaimExtractor::merge_readings({f, extractor.from_receipt(lines, w2)}, w2));
        // The same noise as an email body.
        for (auto& l : lines) l.source = "email_body";
        ASSERT_NO_THROW(extractor.combine(f, extractor.from_email(lines, EmailContext{2024, 12, 1}, w2), w2)) << testing::PrintToString(text);
    }
}

// Lines no printer makes, built to hit the per-token and per-amount work of the newer rules:
// one dotted "initialism" 40,000 characters long as the company line (std::regex recurses once
// per character it repeats over), and a line of 4,000 labelled amounts side by side (each
// pair would be re-read with the whole line blanked around it).
TEST(Robustness, HugeTokensAndLongAmountLinesAreHandled) {
    std::string initials;
    for (int k = 0; k < 20000; ++k) initials += "A.";
    std::string amounts;
    for (int k = 0; k < 2000; ++k) amounts += "TOTAL 1.00 CASH 2.00 ";
    std::vector<TextLine> lines;
    // Brackets that never close and hold no digit: clean_company used to scan from each one to
    // the line's end (the length squared: 0.7 s for this line's brackets alone, optimised).
    std::string brackets = "KOPI ";
    for (int k = 0; k < 40000; ++k) brackets += "(AAAA";
    for (const std::string& t : {brackets, initials + " SDN BHD", std::string("12 JALAN MAJU"), amounts, std::string("TOTAL 12.50")})
        lines.push_back(TextLine{t, "receipt", 0, static_cast<int>(lines.size()), std::nullopt, 90, {}});
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> warnings;
    FieldMap f;
    ASSERT_NO_THROW(f = extractor.from_receipt(lines, warnings));
    ASSERT_TRUE(f.count("total_amount"));
    EXPECT_GT(f["total_amount"].value.get<double>(), 0);
}

// A reviewer's corrections are read with the receipt parsers: what extraction would never
// produce is refused, each field with its reason.
// The characters the server refuses in corrections as invisible and those the review pages
// show as code points (core/src/ui/dom.js, INVISIBLE) are one list written twice, in C++ and
// in JavaScript: this keeps the two from drifting apart.
TEST(ClaimCorrections, TheInvisibleCharactersRefusedAreTheOnesTheReviewPagesShow) {
    std::ifstream in(std::string(DOCPIPE_SOURCE_DIR) + "/core/src/ui/dom.js");
    const std::string js((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string start = "const INVISIBLE = /[";
    const auto from = js.find(start);
    ASSERT_NE(from, std::string::npos) << "dom.js no longer defines INVISIBLE as a character class";
    const auto to = js.find("]/g", from);
    ASSERT_NE(to, std::string::npos);
    const std::string cls = js.substr(from + start.size(), to - from - start.size());
    std::set<char32_t> shown;
    for (std::size_t i = 0; i < cls.size();) {
        ASSERT_EQ(cls.compare(i, 2, "\\u"), 0) << "not a \\uXXXX at " << i << " of " << cls;
        const char32_t first = static_cast<char32_t>(std::stoul(cls.substr(i + 2, 4), nullptr, 16));
        char32_t last = first;
        i += 6;
        if (i < cls.size() && cls[i] == '-') {
            last = static_cast<char32_t>(std::stoul(cls.substr(i + 3, 4), nullptr, 16));
            i += 7;
        }
        for (char32_t c = first; c <= last; ++c) shown.insert(c);
    }
    ASSERT_GT(shown.size(), 20u);
    const auto utf8 = [](char32_t c) {
        std::string out;
        if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
        } else {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        }
        out += static_cast<char>(0x80 | (c & 0x3F));
        return out;
    };
    std::set<char32_t> refused;
    for (char32_t c = 0xA0; c <= 0xFFFF; ++c) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;  // surrogates are no characters
        const auto faults = docpipe::claims::check_claim_corrections({{"provider_name", "A" + utf8(c) + "B"}});
        if (faults.count("provider_name") && faults.at("provider_name").find("invisible character") != std::string::npos) refused.insert(c);
    }
    EXPECT_EQ(refused, shown) << "plugins/claims/field_check.cpp invisible() and core/src/ui/dom.js INVISIBLE differ";
}

TEST(ClaimCorrections, RefusesWhatTheParsersWouldNotRead) {
    using nlohmann::json;
    auto problems = check_claim_corrections(json{{"total_amount", "-5; rm -rf /"},
                                                 {"service_date", "not-a-date"},
                                                 {"sst_amount", 1.234},
                                                 {"member_id", "A\nB"},
                                                 {"totl_amount", 5}});
    EXPECT_EQ(problems.size(), 5u);
    EXPECT_NE(problems["total_amount"].find("not an amount"), std::string::npos);
    EXPECT_NE(problems["service_date"].find("YYYY-MM-DD"), std::string::npos);
    EXPECT_NE(problems["sst_amount"].find("two decimals"), std::string::npos);
    EXPECT_NE(problems["member_id"].find("control characters"), std::string::npos);
    EXPECT_NE(problems["totl_amount"].find("not a claim field"), std::string::npos);

    EXPECT_NE(check_claim_corrections(json{{"service_date", "2024-02-31"}})["service_date"].find("calendar"), std::string::npos);
    EXPECT_NE(check_claim_corrections(json{{"total_amount", -5}})["total_amount"].find("more than 0"), std::string::npos);
    EXPECT_NE(check_claim_corrections(json{{"total_amount", "RM 0.00"}})["total_amount"].find("more than 0"), std::string::npos);
    EXPECT_NE(check_claim_corrections(json{{"total_amount", "12.5O"}})["total_amount"].find("not an amount"), std::string::npos)
        << "OCR look-alikes are for scans, not for typed values";
}

TEST(ClaimCorrections, AcceptsWhatAReceiptWouldSay) {
    using nlohmann::json;
    EXPECT_TRUE(check_claim_corrections(json{{"total_amount", 479.05},
                                             {"sst_amount", "RM 1,234.50"},
                                             {"gst_amount", 0},
                                             {"service_date", "2024-02-29"},
                                             {"policy_number", "POL987654321"},
                                             {"itemized_charges", json::array()}})
                    .empty());
    EXPECT_TRUE(check_claim_corrections(json{{"total_amount", " 479.05 "}}).empty());
}

// What a probe of the review queue got booked at NCB, or accepted and then refused later.
TEST(ClaimCorrections, RefusesAFutureDateABillionAndABlankNumber) {
    using nlohmann::json;
    EXPECT_NE(check_claim_corrections(json{{"service_date", "2099-01-01"}})["service_date"].find("in the future"), std::string::npos);
    EXPECT_NE(check_claim_corrections(json{{"total_amount", 1e9}})["total_amount"].find("check the digits"), std::string::npos);
    EXPECT_NE(check_claim_corrections(json{{"total_amount", 1e300}})["total_amount"].find("check the digits"), std::string::npos);
    EXPECT_NE(check_claim_corrections(json{{"policy_number", "   "}})["policy_number"].find("blank"), std::string::npos);
    EXPECT_NE(check_claim_corrections(json{{"receipt_number", ""}})["receipt_number"].find("blank"), std::string::npos);
    EXPECT_TRUE(check_claim_corrections(json{{"total_amount", 9'999'999.99}, {"provider_name", ""}}).empty());
}

// What a probe of the review page got through: a decimal comma the page read as thousands and
// the API as sen, a date sscanf read through signs and spaces, a policy number that reads
// reversed, and item lines of any shape.
TEST(ClaimCorrections, RefusesAnAmbiguousCommaASpacedDateInvisibleFormattingAndOddItems) {
    using nlohmann::json;
    const auto why = [](const json& corrections, const std::string& field) { return check_claim_corrections(corrections)[field]; };
    const auto text_of = [](const char* json_string) { return json::parse(json_string).get<std::string>(); };  // \u escapes
    EXPECT_THAT(why(json{{"total_amount", "12,50"}}, "total_amount"), ::testing::HasSubstr("ambiguous: write decimals with a point"));
    EXPECT_THAT(why(json{{"total_amount", "1,2345.00"}}, "total_amount"), ::testing::HasSubstr("ambiguous"));
    EXPECT_TRUE(check_claim_corrections(json{{"total_amount", "RM 1,250.00"}, {"sst_amount", "1,234,567.8"}}).empty());
    for (const char* date : {"2024- 1- 5", "2024-+1-+5", "2024-01-5 ", "+024-01-05"})
        EXPECT_THAT(why(json{{"service_date", date}}, "service_date"), ::testing::HasSubstr("not a date written YYYY-MM-DD")) << date;
    EXPECT_THAT(why(json{{"policy_number", text_of(R"("POL\u202e123456789")")}}, "policy_number"), ::testing::HasSubstr("U+202E"));
    EXPECT_THAT(why(json{{"member_id", text_of(R"("M\u200b1")")}}, "member_id"), ::testing::HasSubstr("U+200B"));
    EXPECT_THAT(why(json{{"provider_name", text_of(R"("KLINIK \u2067X\u2069")")}}, "provider_name"), ::testing::HasSubstr("U+2067"));
    // More that looks like nothing (a re-probe): a word joiner, a soft hyphen, a Hangul filler;
    // and controls beyond ASCII: NEL and the line separator.
    EXPECT_THAT(why(json{{"member_id", text_of(R"("MEM\u2060123")")}}, "member_id"), ::testing::HasSubstr("U+2060"));
    EXPECT_THAT(why(json{{"member_id", text_of(R"("MEM\u00ad123")")}}, "member_id"), ::testing::HasSubstr("U+00AD"));
    EXPECT_THAT(why(json{{"member_name", text_of(R"("ALI\u3164")")}}, "member_name"), ::testing::HasSubstr("U+3164"));
    EXPECT_THAT(why(json{{"member_name", text_of(R"("ALI\u0085BAKAR")")}}, "member_name"), ::testing::HasSubstr("control characters"));
    EXPECT_THAT(why(json{{"member_name", text_of(R"("ALI\u2028BAKAR")")}}, "member_name"), ::testing::HasSubstr("control characters"));
    EXPECT_TRUE(check_claim_corrections(json{{"member_name", text_of(R"("S\u00e9bastien \u674e \ud83d\ude00")")}}).empty())
        << "accented, Chinese and four-byte characters are text";
    EXPECT_TRUE(check_claim_corrections(json{{"provider_name", text_of(R"("KLINIK AL-\u0634\u0641\u0627\u0621")")}}).empty())
        << "right-to-left letters themselves are text";
    EXPECT_THAT(why(json{{"itemized_charges", json::array({json{{"description", "<script>"}, {"amount", "lots"}}})}}, "itemized_charges"),
                ::testing::HasSubstr("item 1: amount 'lots' is not an amount"));
    EXPECT_THAT(why(json{{"itemized_charges", json::array({json{{"description", "X-ray"}, {"amount", 80}}, nullptr})}}, "itemized_charges"),
                ::testing::HasSubstr("item 2: must be an object"));
    EXPECT_THAT(why(json{{"itemized_charges", json::array({json{{"description", "X"}, {"amount", 1e300}}})}}, "itemized_charges"),
                ::testing::HasSubstr("check the digits"));
    EXPECT_THAT(why(json{{"itemized_charges", json::array({json{{"description", "  "}, {"amount", 5}}})}}, "itemized_charges"),
                ::testing::HasSubstr("item 1: needs a description"));
    EXPECT_THAT(why(json{{"itemized_charges", json::array({json{{"description", "X"}, {"amount", 5}, {"line", -1}}})}}, "itemized_charges"),
                ::testing::HasSubstr("item 1: line must be a line number"));
    EXPECT_TRUE(check_claim_corrections(json{{"itemized_charges", json::array({json{{"description", "Consultation"}, {"amount", 80}},
                                                                               json{{"description", "Discount"}, {"amount", -5.5}}})}})
                    .empty())
        << "a discount line is negative";
}

// Accepted text is stored in the form a sink sends: "RM 1,234.50" was kept as text and NCB
// could not be sent it.
TEST(ClaimCorrections, AcceptedValuesAreStoredAsNumbersAndTrimmedText) {
    using nlohmann::json;
    const json stored = normalize_claim_corrections(
        json{{"total_amount", "RM 1,234.50"}, {"sst_amount", 12.5}, {"policy_number", "  POL47 "}, {"service_date", "2024-02-29"}});
    EXPECT_EQ(stored["total_amount"], 1234.5);
    EXPECT_TRUE(stored["total_amount"].is_number());
    EXPECT_EQ(stored["sst_amount"], 12.5);
    EXPECT_EQ(stored["policy_number"], "POL47");
    EXPECT_EQ(stored["service_date"], "2024-02-29");
}
