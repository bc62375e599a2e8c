// transform.word_count under the SDK testing kit. The NodeRunner is built from the
// component's descriptor (compiled into this test), so no plugin file is loaded: the config
// still goes through the same validation a pipeline applies, on a manual clock, with a
// TestContext that records metrics and logs.
#include <gtest/gtest.h>

#include <string>

#include "docpipe/testing.hpp"
#include "word_count.hpp"

using docpipe::Document;
using docpipe::testing::NodeRunner;

namespace {

Document text_document(const std::string& name, const std::string& text) {
    return Document::from_bytes(name, "text/plain", docpipe::Bytes(text.begin(), text.end()));
}

// A scanned document after OCR: no text part, one page per text.
Document ocr_document(const std::vector<std::string>& page_texts) {
    Document doc = Document::from_bytes("scan.png", "image/png", {0x89, 'P', 'N', 'G'});
    for (std::size_t i = 0; i < page_texts.size(); ++i) {
        docpipe::Page page;
        page.index = static_cast<int>(i);
        page.ocr = docpipe::OcrResult{};
        page.ocr->text = page_texts[i];
        doc.pages.push_back(std::move(page));
    }
    return doc;
}

// Builds the component the way a pipeline node would be built from `yaml` config.
NodeRunner runner_for(const std::string& yaml) { return NodeRunner(word_count::descriptor(), yaml); }

std::string config_error(const std::string& yaml) {
    try {
        runner_for(yaml);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST(WordCount, CountsTextPartsAndSendsThemToCounted) {
    auto runner = runner_for("");  // every default
    auto out = runner.process(text_document("note.txt", "Resit rasmi: RM 12.50 dibayar -"));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].port, "counted");
    // "-" alone holds no letter or digit: not a word, but it is a character.
    EXPECT_EQ(out[0].doc->fields["word_count"], (nlohmann::json{{"words", 5}, {"characters", 26}}));
    EXPECT_EQ(runner.context().counter("words_total"), 5);
}

TEST(WordCount, ReadsOcrTextAndTextLayersOfPages) {
    auto runner = runner_for("long_words_from: 6");
    Document doc = ocr_document({"TOTAL RM 8.00", "Terima kasih \xe8\xb0\xa2\xe8\xb0\xa2"});  // 谢谢
    doc.pages.push_back(docpipe::Page{2, {}, "Bayaran diterima\n\f", std::nullopt});  // a PDF page's text layer
    auto out = runner.process(std::move(doc));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].port, "counted");
    // The image part is not text; 3 + 3 + 2 words; "Terima", "Bayaran", "diterima" have 6+ characters.
    EXPECT_EQ(out[0].doc->fields["word_count"],
              (nlohmann::json{{"words", 8}, {"characters", 11 + 13 + 15}, {"long_words", 3}}));
}

TEST(WordCount, DocumentsUnderMinWordsGoToEmpty) {
    auto runner = runner_for("min_words: 3");
    auto blank = runner.process(text_document("blank.txt", "  \n\t "));
    ASSERT_EQ(blank.size(), 1u);
    EXPECT_EQ(blank[0].port, "empty");
    EXPECT_EQ(blank[0].doc->fields["word_count"]["words"], 0);

    auto short_one = runner.process(ocr_document({"RM 5"}));
    ASSERT_EQ(short_one.size(), 1u);
    EXPECT_EQ(short_one[0].port, "empty") << "2 words is under min_words 3";

    auto enough = runner.process(ocr_document({"RM 5", "terima kasih"}));
    ASSERT_EQ(enough.size(), 1u);
    EXPECT_EQ(enough[0].port, "counted");
    EXPECT_EQ(runner.context().counter("empty_documents_total"), 2);
}

TEST(WordCount, AnImagePageWithoutOcrIsBadInput) {
    auto runner = runner_for("");
    Document doc = Document::from_bytes("scan.png", "image/png", {1, 2, 3});
    docpipe::Page page;
    page.image = {2, 1, 1, 300, std::make_shared<const std::vector<std::uint8_t>>(2, 255)};
    doc.pages.push_back(page);
    try {
        runner.process(std::move(doc));
        FAIL() << "expected BadInput";
    } catch (const docpipe::BadInput& e) {
        EXPECT_NE(std::string(e.what()).find("put an ocr node"), std::string::npos) << e.what();
    }
}

TEST(WordCount, ConfigIsValidatedLikeInAPipeline) {
    EXPECT_NE(config_error("min_words: -1").find("min_words: -1 is below the minimum 0"), std::string::npos)
        << config_error("min_words: -1");
    EXPECT_NE(config_error("min_words: lots").find("expected an integer, got 'lots'"), std::string::npos);
    EXPECT_NE(config_error("min_word: 2").find("unknown key 'min_word' (did you mean 'min_words'?)"), std::string::npos)
        << config_error("min_word: 2");
    EXPECT_NE(config_error("long_words_from: 0").find("below the minimum 1"), std::string::npos);
    EXPECT_EQ(config_error("min_words: 2\nlong_words_from: 10"), "(no error)");
}

TEST(WordCount, HealthDegradesAfterEmptyDocumentsInARowAndRecovers) {
    auto runner = runner_for("degraded_after: 3");
    auto& component = runner.component();
    EXPECT_EQ(component.health().status, docpipe::Health::Healthy);

    runner.process(text_document("a.txt", ""));
    runner.process(text_document("b.txt", " "));
    EXPECT_EQ(component.health().status, docpipe::Health::Healthy) << "two in a row is under degraded_after";

    Document third = text_document("c.txt", "\n");
    const std::string third_id = third.id;
    runner.process(std::move(third));
    const auto report = component.health();
    EXPECT_EQ(report.status, docpipe::Health::Degraded);
    EXPECT_NE(report.detail.find("the last 3 documents had fewer than 1 word(s)"), std::string::npos) << report.detail;
    EXPECT_NE(report.detail.find(third_id), std::string::npos) << "names the latest empty document by id";

    runner.process(text_document("d.txt", "one word is enough"));
    EXPECT_EQ(component.health().status, docpipe::Health::Healthy) << "a counted document ends the run of empty ones";
}

TEST(WordCount, CountingRule) {
    EXPECT_EQ(word_count::count_text("", 0).words, 0);
    EXPECT_EQ(word_count::count_text("a-b c", 0).words, 2);
    EXPECT_EQ(word_count::count_text("-- ** ..", 0).words, 0);
    const auto malay_chinese = word_count::count_text("harga \xe4\xbb\xb7\xe6\xa0\xbc", 2);  // "harga 价格"
    EXPECT_EQ(malay_chinese.words, 2);
    EXPECT_EQ(malay_chinese.characters, 7);
    EXPECT_EQ(malay_chinese.long_words, 2);
}
