// The calibrated confidence model (confidence_model.hpp): loading and validating a model
// file, the probability a known feature vector gets, monotonic calibration, the features the
// extractor records, and transform.claims' `confidence_model` key.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "docpipe/testing.hpp"
#include "claims_transform.hpp"
#include "confidence_model.hpp"
#include "extractor.hpp"

namespace {

namespace fs = std::filesystem;
using namespace docpipe;
using namespace docpipe::claims;
using nlohmann::json;

const fs::path kPlugin = fs::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-claims.so";

json field_spec(json features = {"label_weight", "repaired"}, json weights = {2.0, -3.0}, json calibration = {{0.0, 0.0}, {0.5, 0.4}, {1.0, 1.0}}) {
    return {{"features", features}, {"weights", weights}, {"intercept", -0.5}, {"calibration", calibration}};
}

json model_json() {
    return {{"format", "docpipe-claims-confidence"},
            {"version", 1},
            {"metadata", {{"fitted_on", "unit test"}}},
            {"fields", {{"total_amount", field_spec()}, {"service_date", field_spec({"labelled"}, {1.0})}}}};
}

// The error text a model gives, or "" when it loads.
std::string error_of(const json& model, const std::string& origin = "my-model.json") {
    try {
        ConfidenceModel::parse(model.dump(), origin);
        return "";
    } catch (const ConfidenceModelError& e) {
        return e.what();
    }
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "'" << (text) << "' lacks '" << (part) << "'"

TEST(ConfidenceModel, BuiltInModelLoadsAndCoversTheModelledFields) {
    const auto& m = ConfidenceModel::builtin();
    for (const auto& name : ConfidenceModel::modelled_fields()) {
        ASSERT_NE(m.field(name), nullptr) << name;
        // Every feature it uses is one the code computes (parse checks it; this states it).
        for (const auto& f : m.field(name)->features) {
            const auto& known = ConfidenceModel::known_features(name);
            EXPECT_NE(std::find(known.begin(), known.end(), f), known.end()) << name << ": " << f;
        }
    }
}

TEST(ConfidenceModel, KnownFeatureVectorGivesTheExpectedProbability) {
    const auto m = ConfidenceModel::parse(model_json().dump(), "m.json");
    const auto* total = m.field("total_amount");
    ASSERT_NE(total, nullptr);
    // z = -0.5 + 2 * 1 - 3 * 0 = 1.5; score = 1 / (1 + e^-1.5) = 0.817574;
    // calibration between (0.5, 0.4) and (1.0, 1.0): 0.4 + (0.817574 - 0.5) / 0.5 * 0.6.
    const double s = 1.0 / (1.0 + std::exp(-1.5));
    EXPECT_NEAR(total->score({{"label_weight", 1.0}, {"repaired", 0.0}}), s, 1e-12);
    EXPECT_NEAR(total->probability({{"label_weight", 1.0}, {"repaired", 0.0}}), 0.4 + (s - 0.5) / 0.5 * 0.6, 1e-12);
    EXPECT_NEAR(total->probability({{"label_weight", 1.0}, {"repaired", 0.0}}), 0.781089, 1e-6);
    // Flat beyond the ends, exact on a knot.
    EXPECT_DOUBLE_EQ(total->calibrate(0.5), 0.4);
    EXPECT_DOUBLE_EQ(total->calibrate(-1), 0.0);
    EXPECT_DOUBLE_EQ(total->calibrate(2), 1.0);
    // A feature the vector lacks is an error, not a silent 0.
    EXPECT_THROW(total->score({{"label_weight", 1.0}}), ConfidenceModelError);
}

TEST(ConfidenceModel, ShippedCalibrationIsMonotonicAndInUnitRange) {
    for (const auto& name : ConfidenceModel::modelled_fields()) {
        const auto* f = ConfidenceModel::builtin().field(name);
        ASSERT_NE(f, nullptr);
        double last = -1;
        for (int i = 0; i <= 1000; ++i) {
            const double p = f->calibrate(i / 1000.0);
            EXPECT_GE(p, last - 1e-12) << name << " at " << i / 1000.0;
            EXPECT_GE(p, 0.0);
            EXPECT_LE(p, 1.0);
            last = p;
        }
    }
}

TEST(ConfidenceModel, MalformedFilesNameTheFileTheFieldAndTheFeature) {
    EXPECT_EQ(error_of(model_json()), "");
    {
        const std::string e = [] {
            try {
                ConfidenceModel::parse("{\"format\": \"docpipe-claims-confidence\", \"version\": 1, ", "broken.json");
            } catch (const ConfidenceModelError& e) {
                return std::string(e.what());
            }
            return std::string();
        }();
        EXPECT_HAS(e, "broken.json");
        EXPECT_HAS(e, "not valid JSON");
    }
    auto with = [](auto edit) {
        json m = model_json();
        edit(m);
        return error_of(m);
    };
    std::string e = with([](json& m) { m["version"] = 2; });
    EXPECT_HAS(e, "my-model.json");
    EXPECT_HAS(e, "version 2");
    e = with([](json& m) { m["format"] = "something-else"; });
    EXPECT_HAS(e, "'format'");
    e = with([](json& m) { m["fields"].erase("service_date"); });
    EXPECT_HAS(e, "my-model.json");
    EXPECT_HAS(e, "field 'service_date' is missing");
    e = with([](json& m) { m["fields"]["member_name"] = field_spec(); });
    EXPECT_HAS(e, "field 'member_name' is not one the code computes");
    e = with([](json& m) { m["fields"]["total_amount"]["features"][1] = "shoe_size"; });
    EXPECT_HAS(e, "my-model.json: field 'total_amount'");
    EXPECT_HAS(e, "feature 'shoe_size' is not one the code computes");
    // A date feature is not a total feature.
    e = with([](json& m) { m["fields"]["total_amount"]["features"][1] = "labelled"; });
    EXPECT_HAS(e, "feature 'labelled'");
    e = with([](json& m) { m["fields"]["total_amount"]["weights"] = {1.0}; });
    EXPECT_HAS(e, "field 'total_amount'");
    EXPECT_HAS(e, "1 weights for 2 features");
    e = with([](json& m) { m["fields"]["service_date"]["weights"] = {"x"}; });
    EXPECT_HAS(e, "field 'service_date'");
    EXPECT_HAS(e, "feature 'labelled'");
    e = with([](json& m) { m["fields"]["total_amount"].erase("intercept"); });
    EXPECT_HAS(e, "field 'total_amount': 'intercept' is missing");
    e = with([](json& m) { m["fields"]["total_amount"]["features"] = {"repaired", "repaired"}; });
    EXPECT_HAS(e, "listed twice");
    // Calibration: monotonic, sorted, in [0, 1].
    e = with([](json& m) { m["fields"]["service_date"]["calibration"] = {{0.0, 0.1}, {0.5, 0.9}, {0.9, 0.6}}; });
    EXPECT_HAS(e, "my-model.json: field 'service_date'");
    EXPECT_HAS(e, "not monotonic");
    EXPECT_HAS(e, "knot 3");
    e = with([](json& m) { m["fields"]["total_amount"]["calibration"] = {{0.0, 0.1}, {0.5, 1.2}}; });
    EXPECT_HAS(e, "field 'total_amount'");
    EXPECT_HAS(e, "outside [0, 1]");
    e = with([](json& m) { m["fields"]["total_amount"]["calibration"] = {{0.5, 0.1}, {0.4, 0.2}}; });
    EXPECT_HAS(e, "scores must increase");
    e = with([](json& m) { m["fields"]["total_amount"]["calibration"] = {{0.5, 0.1}}; });
    EXPECT_HAS(e, "at least two");
    EXPECT_THROW(ConfidenceModel::load_file("/nonexistent/model.json"), ConfidenceModelError);
}

TEST(ConfidenceModel, ABadTotalChooserNamesTheFileTheChooserAndTheFeature) {
    auto with = [](json chooser, const std::string& field = "total_amount") {
        json m = model_json();
        m["choosers"][field] = std::move(chooser);
        return error_of(m);
    };
    const json good = {{"features", {"label_weight", "position"}}, {"weights", {2.0, 0.5}}, {"intercept", -1.0}};
    EXPECT_EQ(with(good), "");
    EXPECT_NE(ConfidenceModel::parse([&] { json m = model_json(); m["choosers"]["total_amount"] = good; return m.dump(); }(), "m.json")
                  .chooser("total_amount"),
              nullptr);
    // A model file without choosers leaves the choice to the hand-set score.
    EXPECT_EQ(ConfidenceModel::parse(model_json().dump(), "m.json").chooser("total_amount"), nullptr);
    std::string e = with({{"features", {"label_weight", "shoe_size"}}, {"weights", {1.0, 1.0}}, {"intercept", 0.0}});
    EXPECT_HAS(e, "my-model.json: chooser 'total_amount'");
    EXPECT_HAS(e, "feature 'shoe_size' is not one the code computes for a candidate");
    e = with({{"features", {"label_weight", "position"}}, {"weights", {1.0}}, {"intercept", 0.0}});
    EXPECT_HAS(e, "chooser 'total_amount'");
    EXPECT_HAS(e, "1 weights for 2 features");
    e = with({{"features", {"label_weight"}}, {"weights", {"heavy"}}, {"intercept", 0.0}});
    EXPECT_HAS(e, "the weight of feature 'label_weight' must be a finite number");
    e = with({{"features", {"label_weight"}}, {"weights", {1.0}}});
    EXPECT_HAS(e, "'intercept' is missing");
    e = with({{"features", {"position", "position"}}, {"weights", {1.0, 1.0}}, {"intercept", 0.0}});
    EXPECT_HAS(e, "listed twice");
    e = with(good, "provider_name");
    EXPECT_HAS(e, "chooser 'provider_name': only total_amount and service_date have a fitted candidate chooser");
    // A total feature is not a date feature.
    e = with(good, "service_date");
    EXPECT_HAS(e, "chooser 'service_date'");
    EXPECT_HAS(e, "feature 'label_weight' is not one the code computes for a candidate");
    // The shipped model carries the fitted total chooser, over features the code computes.
    const CandidateChooser* shipped = ConfidenceModel::builtin().chooser("total_amount");
    ASSERT_NE(shipped, nullptr);
    EXPECT_FALSE(shipped->features().empty());
}

std::vector<TextLine> receipt(const std::vector<std::string>& texts, double ocr = 93) {
    std::vector<TextLine> lines;
    int i = 0;
    for (const auto& l : texts) {
        TextLine t;
        t.text = l;
        t.page = 0;
        t.index = i++;
        t.ocr_confidence = ocr;
        lines.push_back(t);
    }
    return lines;
}

const std::vector<std::string> kShop = {"KEDAI ABC SDN BHD", "12 JALAN MAJU", "Date: 24/12/2024", "Bread 4.40", "Milk 3.70",
                                        "TOTAL 8.10", "CASH 10.00", "CHANGE 1.90"};

TEST(ConfidenceModel, ExtractorRecordsEveryFeatureTheModelCanUse) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto fields = extractor.from_receipt(receipt(kShop), w);
    for (const auto& name : ConfidenceModel::modelled_fields()) {
        ASSERT_TRUE(fields.count(name)) << name;
        const json x = ConfidenceModel::feature_vector(fields[name]);
        ASSERT_TRUE(x.is_object()) << name;
        for (const auto& f : ConfidenceModel::known_features(name)) EXPECT_TRUE(x.contains(f) && x[f].is_number()) << name << ": " << f;
    }
    const json t = ConfidenceModel::feature_vector(fields["total_amount"]);
    EXPECT_EQ(t["arith_confirmed"], 1.0);  // cash - change and the items give 8.10
    EXPECT_GE(t["arith_equations"].get<double>(), 1.0);
    EXPECT_EQ(t["repaired"], 0.0);
    EXPECT_EQ(t["readings"], 1.0);
    EXPECT_EQ(t["agree_share"], 1.0);
    EXPECT_NEAR(t["ocr_word_conf"].get<double>(), 0.93, 1e-9);
    const json d = ConfidenceModel::feature_vector(fields["service_date"]);
    EXPECT_EQ(d["labelled"], 1.0);
    EXPECT_EQ(d["conflict"], 0.0);
    // The company name's too (a model file may calibrate it; it decides no route).
    ASSERT_TRUE(fields.count("provider_name"));
    const json p = ConfidenceModel::feature_vector(fields["provider_name"]);
    ASSERT_TRUE(p.is_object());
    for (const auto& f : ConfidenceModel::known_features("provider_name")) EXPECT_TRUE(p.contains(f) && p[f].is_number()) << f;
    EXPECT_EQ(p["marker"], 1.0);
    EXPECT_EQ(p["legal_form"], 1.0);
}

// probability_of rates one value on its own features (merge_readings' judge): the same
// probability apply() gives a receipt read once; nothing for what the model cannot rate.
TEST(ConfidenceModel, ProbabilityOfOneValueIsWhatApplyGivesASingleReading) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto fields = extractor.from_receipt(receipt(kShop), w);
    const auto& model = ConfidenceModel::builtin();
    const auto total = model.probability_of("total_amount", fields["total_amount"]);
    const auto date = model.probability_of("service_date", fields["service_date"]);
    ASSERT_TRUE(total && date);
    FieldMap applied = fields;
    model.apply(applied);
    EXPECT_DOUBLE_EQ(*total, applied["total_amount"].confidence);
    EXPECT_DOUBLE_EQ(*date, applied["service_date"].confidence);
    EXPECT_FALSE(model.probability_of("receipt_number", fields["receipt_number"]));  // not modelled
    FieldValue bare{8.10, 0.9, "receipt", json::object()};
    EXPECT_FALSE(model.probability_of("total_amount", bare));  // no features to judge by
    FieldValue capped = fields["total_amount"];
    capped.provenance["confidence_cap"] = 0.5;
    EXPECT_LE(*model.probability_of("total_amount", capped), 0.5);
}

TEST(ConfidenceModel, ProviderNameIsOptionalAndCalibratedWhenPresent) {
    json m = model_json();
    m["fields"]["provider_name"] = field_spec({"marker"}, {1.0}, {{0.0, 0.2}, {1.0, 0.2}});
    const auto model = ConfidenceModel::parse(m.dump(), "m.json");
    FieldMap fields;
    fields["provider_name"] = FieldValue{"KEDAI ABC SDN BHD", 0.85, "receipt", {{"features", {{"marker", 1.0}}}}};
    model.apply(fields);
    EXPECT_DOUBLE_EQ(fields["provider_name"].confidence, 0.2);
    m["fields"]["provider_name"]["features"] = {"label_weight"};  // a total feature
    EXPECT_HAS(error_of(m), "field 'provider_name': feature 'label_weight'");
}

TEST(ConfidenceModel, ApplySetsTheCalibratedProbabilityKeepsTheExtractorsAndHonoursCaps) {
    const auto m = ConfidenceModel::parse(model_json().dump(), "m.json");
    FieldMap fields;
    fields["total_amount"] = FieldValue{8.10, 0.97, "receipt", {{"features", {{"label_weight", 1.0}, {"repaired", 0.0}}}}};
    fields["service_date"] = FieldValue{"2024-12-24", 0.9, "receipt", {{"features", {{"labelled", 0.0}}}}};
    fields["receipt_number"] = FieldValue{"INV-1", 0.8, "receipt", json::object()};
    m.apply(fields);
    EXPECT_NEAR(fields["total_amount"].confidence, 0.781089, 1e-6);
    EXPECT_EQ(fields["total_amount"].provenance["extractor_confidence"], 0.97);
    EXPECT_TRUE(fields["total_amount"].provenance["features"].contains("heuristic_logit"));
    EXPECT_DOUBLE_EQ(fields["receipt_number"].confidence, 0.8);  // not modelled: untouched
    // Applying twice gives the same (the extractor's confidence is kept, not re-read).
    const double once = fields["total_amount"].confidence;
    m.apply(fields);
    EXPECT_DOUBLE_EQ(fields["total_amount"].confidence, once);
    // A rule's cap (a repaired total goes to a person) holds over the model.
    fields["total_amount"].provenance["features"] = {{"label_weight", 3.0}, {"repaired", 0.0}};
    fields["total_amount"].provenance["confidence_cap"] = 0.85;
    m.apply(fields);
    EXPECT_LE(fields["total_amount"].confidence, 0.85);
    // A feature vector without a feature the model uses (an older reading): not calibrated,
    // kept under the high band, and said so.
    fields["service_date"] = FieldValue{"2024-12-24", 0.97, "receipt", {{"features", {{"repeats", 1.0}}}}};
    m.apply(fields);
    EXPECT_LE(fields["service_date"].confidence, ConfidenceModel::kUncalibratedCap);
    EXPECT_TRUE(fields["service_date"].provenance.contains("calibration_skipped"));
}

TEST(ConfidenceModel, MergedReadingsGiveAgreementFeatures) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto a = extractor.from_receipt(receipt(kShop), w);
    auto shop2 = kShop;
    shop2[5] = "TOTAL 12.50";
    shop2[6] = "CASH 20.00";
    shop2[7] = "CHANGE 7.50";
    auto b = extractor.from_receipt(receipt(shop2), w);
    ASSERT_DOUBLE_EQ(b["total_amount"].value.get<double>(), 12.50);
    auto merged = ClaimExtractor::merge_readings({a, b, a}, w);
    ASSERT_DOUBLE_EQ(merged["total_amount"].value.get<double>(), 8.10);
    const json x = ConfidenceModel::feature_vector(merged["total_amount"]);
    EXPECT_EQ(x["readings"], 3.0);
    EXPECT_NEAR(x["agree_share"].get<double>(), 2.0 / 3.0, 1e-9);
    EXPECT_GT(x["rival"].get<double>(), 0.0);
    const json d = ConfidenceModel::feature_vector(merged["service_date"]);
    EXPECT_EQ(d["agree_share"], 1.0);
    EXPECT_EQ(d["rival"], 0.0);
}

// Train 008: two readings found 112.48 contested (the rules preferred another amount) and
// capped it under the high band; a third read the same amount cleanly and more confidently.
// The cap holds on the merged value, also after the model scores it afresh.
TEST(ConfidenceModel, ACapOnAnyReadingOfTheWinningValueHoldsAfterTheMerge) {
    ClaimExtractor extractor(Rules::builtin());
    std::vector<std::string> w;
    auto clean = extractor.from_receipt(receipt(kShop), w);
    ASSERT_FALSE(clean["total_amount"].provenance.contains("confidence_cap"));
    auto contested = clean;
    contested["total_amount"].confidence = 0.80;
    contested["total_amount"].provenance["confidence_cap"] = 0.85;
    for (const auto& readings : {std::vector<FieldMap>{clean, contested}, std::vector<FieldMap>{contested, clean, contested}}) {
        auto merged = ClaimExtractor::merge_readings(readings, w);
        ASSERT_DOUBLE_EQ(merged["total_amount"].value.get<double>(), clean["total_amount"].value.get<double>());
        ASSERT_TRUE(merged["total_amount"].provenance.contains("confidence_cap")) << merged["total_amount"].provenance.dump();
        EXPECT_DOUBLE_EQ(merged["total_amount"].provenance["confidence_cap"].get<double>(), 0.85);
        ConfidenceModel::builtin().apply(merged);
        EXPECT_LE(merged["total_amount"].confidence, 0.85);
    }
    // Readings that all agree with no cap keep none.
    auto agreed = ClaimExtractor::merge_readings({clean, clean}, w);
    EXPECT_FALSE(agreed["total_amount"].provenance.contains("confidence_cap"));
}

TEST(ConfidenceModel, TransformClaimsLoadsTheConfiguredModelAndRefusesABadOne) {
    const fs::path dir = fs::temp_directory_path() / "docpipe-claims-model-test";
    fs::create_directories(dir);
    json bad = model_json();
    bad["fields"]["total_amount"]["features"][0] = "shoe_size";
    std::ofstream(dir / "model.json") << bad.dump();
    try {
        docpipe::testing::NodeRunner::from_plugin(kPlugin, "transform.claims", "{confidence_model: " + (dir / "model.json").string() + "}");
        ADD_FAILURE() << "a model with an unknown feature must fail construction";
    } catch (const std::exception& e) {
        EXPECT_HAS(std::string(e.what()), (dir / "model.json").string());
        EXPECT_HAS(std::string(e.what()), "field 'total_amount'");
        EXPECT_HAS(std::string(e.what()), "shoe_size");
    }
    // A good one is used: every total gets probability 0.5 whatever its evidence.
    json flat = model_json();
    flat["fields"]["total_amount"] = {{"features", {"heuristic_logit"}}, {"weights", {0.0}}, {"intercept", 0.0}, {"calibration", {{0.0, 0.5}, {1.0, 0.5}}}};
    std::ofstream(dir / "model.json") << flat.dump();
    auto runner =
        docpipe::testing::NodeRunner::from_plugin(kPlugin, "transform.claims", "{confidence_model: " + (dir / "model.json").string() + "}");
    Document d;
    d.id = "doc-1";
    Page p;
    OcrResult r;
    for (const auto& l : kShop) r.lines.push_back({l, {}, 93.0f});
    p.ocr = r;
    d.pages.push_back(p);
    auto out = runner.process(d);
    ASSERT_EQ(out.size(), 1u);
    const auto& total = out[0].doc->fields["claim"]["total_amount"];
    EXPECT_DOUBLE_EQ(total["confidence"].get<double>(), 0.5);
    EXPECT_TRUE(total["provenance"].contains("extractor_confidence"));
    // The readings kept for a later merge hold the extractor's confidence, not the calibrated one.
    EXPECT_NE(out[0].doc->fields["readings"][0]["fields"]["total_amount"]["confidence"].get<double>(), 0.5);
    fs::remove_all(dir);
}

// transform.claims_reread decides on the extractor's own confidence (what the model was
// fitted on), not on the calibrated one.
TEST(ConfidenceModel, RereadGateUsesTheExtractorsConfidence) {
    auto gate = docpipe::testing::NodeRunner::from_plugin(kPlugin, "transform.claims_reread", "{}");
    auto doc = [](double calibrated, double extractor) {
        Document d;
        d.id = "doc-gate";
        Page p;
        p.image.width = p.image.height = 1;
        p.image.channels = 1;
        p.image.pixels = std::make_shared<std::vector<std::uint8_t>>(1, 0);
        p.ocr = OcrResult{};
        d.pages.push_back(p);
        d.fields["claim"] = {{"total_amount", {{"value", 8.1}, {"confidence", calibrated}, {"provenance", {{"extractor_confidence", extractor}}}}},
                             {"service_date", {{"value", "2024-12-24"}, {"confidence", 0.99}}}};
        return d;
    };
    EXPECT_EQ(gate.process(doc(0.99, 0.5))[0].port, "reread");
    EXPECT_EQ(gate.process(doc(0.5, 0.95))[0].port, "done");
    // confidence: calibrated — only what the model doubts is read again.
    auto calibrated = docpipe::testing::NodeRunner::from_plugin(kPlugin, "transform.claims_reread", "{confidence: calibrated}");
    EXPECT_EQ(calibrated.process(doc(0.99, 0.5))[0].port, "done");
    EXPECT_EQ(calibrated.process(doc(0.5, 0.95))[0].port, "reread");
}

// A weakest field with no warning of its own: the reason names its value and the runner-up.
TEST(ConfidenceModel, ReviewReasonNamesTheWeakestValueAndItsRunnerUp) {
    auto router = docpipe::testing::NodeRunner::from_plugin(kPlugin, "transform.confidence_router", "{}");
    Document d;
    d.id = "doc-reason";
    d.fields["confidence"] = 0.62;
    d.fields["missing"] = json::array();
    d.fields["warnings"] = json::array({"provider_address: OCR readings disagree"});
    json total = {{"value", 8.1}, {"confidence", 0.62}};
    total["provenance"] = {{"line", 5}};
    total["provenance"]["alternatives"] = json::array({{{"value", 8.7}, {"score", 0.6}, {"line", 7}, {"reason", "x"}}});
    d.fields["claim"] = json::object();
    d.fields["claim"]["total_amount"] = total;
    d.fields["claim"]["service_date"] = {{"value", "2024-12-24"}, {"confidence", 0.99}};
    d.fields["claim"]["receipt_number"] = {{"value", "INV-1"}, {"confidence", 0.95}};
    d.fields["claim"]["member_id"] = {{"value", "M1"}, {"confidence", 0.95}};
    const std::string why = router.process(std::move(d))[0].doc->attributes.at("review_reason");
    EXPECT_EQ(why, "confidence 0.62 below 0.75 (weakest: total_amount 0.62); provider_address: OCR readings disagree; "
                   "total_amount: 8.10, runner-up 8.70 (line 7)");
}

}  // namespace
