// transform.word_count — the second example plugin. Where hello.cpp shows the smallest
// component, this one shows what most real components need:
//   - a config option with a default and a range (min_words), and an optional one with no
//     default that the component asks about with Config::has (long_words_from);
//   - two named output ports instead of `out`: `counted` and `empty`;
//   - BadInput for a document that can never succeed (a page image nobody read);
//   - a health probe that reports `degraded` with a detail when something upstream looks
//     wrong (many empty documents in a row usually means the OCR step reads nothing);
//   - state shared between threads, since the component declares concurrent_safe.
//
// Example config:
//   count:
//     component: transform.word_count
//     concurrency: 2
//     config: {min_words: 3, long_words_from: 12, degraded_after: 20}
//   edges:
//     - ocr -> count
//     - count.counted -> out
//     - count.empty -> review
#include "word_count.hpp"

#include <atomic>
#include <cctype>
#include <memory>
#include <mutex>
#include <string>

#include <fmt/core.h>

#include "docpipe/plugin.hpp"

namespace word_count {

namespace {

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }  // 10xxxxxx: inside a UTF-8 sequence
bool is_word_char(unsigned char c) { return c >= 0x80 || std::isalnum(c); }

bool is_text(const std::string& media_type) { return media_type.rfind("text/", 0) == 0; }

// The text a document carries: its text/* parts as they are (an HTML part's tags count
// too), then each page's OCR text, or its PDF text layer when it was not OCRed.
std::string text_of(const docpipe::Document& doc) {
    std::string text;
    for (const auto& part : doc.parts) {
        if (!is_text(part.media_type) || !part.bytes) continue;
        text.append(part.bytes->begin(), part.bytes->end());
        text += '\n';  // a word never runs from one part into the next
    }
    for (const auto& page : doc.pages) {
        if (page.ocr) {
            text += page.ocr->text;
        } else if (!page.text_layer.empty()) {
            text += page.text_layer;
        } else if (page.image.pixels) {
            // Retrying cannot help: the pipeline has no OCR step in front of this node.
            throw docpipe::BadInput(fmt::format(
                "page {} is an image that no OCR step has read; put an ocr node (e.g. ocr.tesseract) before "
                "transform.word_count", page.index + 1));
        }
        text += '\n';
    }
    return text;
}

class WordCounter : public docpipe::Transform {
public:
    static docpipe::ComponentDescriptor describe() {
        docpipe::ComponentDescriptor d;
        d.kind = docpipe::ComponentKind::Transform;
        d.name = "transform.word_count";
        d.summary = "Counts the words of a document's text (text parts, OCR or text-layer pages) into fields.word_count";
        d.concurrent_safe = true;  // the shared counters below are atomics or behind a mutex
        d.has_health_probe = true;
        d.output_ports = {
            {"counted", "documents with at least min_words words"},
            {"empty", "documents with fewer than min_words words (blank pages, OCR that read nothing)"},
        };
        d.config = docpipe::ConfigSpec{
            docpipe::Field::integer("min_words").default_value(1).min(0).max(1000000)
                .describe("Documents with fewer words go to the `empty` port (0: every document is `counted`)"),
            docpipe::Field::integer("long_words_from").min(1).max(1000)
                .describe("Also count words of at least this many characters, as fields.word_count.long_words (unset: not counted)"),
            docpipe::Field::integer("degraded_after").default_value(10).min(1)
                .describe("The health probe says `degraded` after this many `empty` documents in a row"),
        };
        return d;
    }

    WordCounter(const docpipe::Config& config, docpipe::Context& context)
        : ctx_(context),
          min_words_(config.get_int("min_words")),
          long_from_(config.has("long_words_from") ? config.get_int("long_words_from") : 0),
          degraded_after_(config.get_int("degraded_after")) {}

    void process(const docpipe::DocumentPtr& input, docpipe::Outputs& out) override {
        const Counts counts = count_text(text_of(*input), long_from_);

        auto doc = std::make_shared<docpipe::Document>(*input);  // the input is shared and immutable
        nlohmann::json result{{"words", counts.words}, {"characters", counts.characters}};
        if (long_from_ > 0) result["long_words"] = counts.long_words;
        doc->fields["word_count"] = std::move(result);

        ctx_.metrics().increment("words_total", static_cast<double>(counts.words));
        documents_.fetch_add(1, std::memory_order_relaxed);
        if (counts.words < min_words_) {
            empty_in_a_row_.fetch_add(1, std::memory_order_relaxed);
            {
                std::lock_guard lock(mutex_);
                last_empty_id_ = doc->id;  // an id, never the file name: names can carry personal data
            }
            ctx_.metrics().increment("empty_documents_total");
            out.emit(std::move(doc), "empty");
        } else {
            empty_in_a_row_.store(0, std::memory_order_relaxed);
            out.emit(std::move(doc), "counted");
        }
    }

    // Called from the admin server's threads while documents flow: reads counters, no I/O.
    docpipe::HealthReport health() override {
        const std::int64_t in_a_row = empty_in_a_row_.load(std::memory_order_relaxed);
        if (in_a_row >= degraded_after_) {
            std::string last;
            {
                std::lock_guard lock(mutex_);
                last = last_empty_id_;
            }
            return {docpipe::Health::Degraded,
                    fmt::format("the last {} documents had fewer than {} word(s) (latest: {}); is the OCR in front of this "
                                "node reading anything?", in_a_row, min_words_, last)};
        }
        return {docpipe::Health::Healthy,
                fmt::format("{} document(s) counted, {} empty in a row", documents_.load(std::memory_order_relaxed), in_a_row)};
    }

private:
    docpipe::Context& ctx_;  // owned by the runtime; outlives this component
    const std::int64_t min_words_;
    const std::int64_t long_from_;
    const std::int64_t degraded_after_;
    std::atomic<std::int64_t> documents_{0};
    std::atomic<std::int64_t> empty_in_a_row_{0};
    std::mutex mutex_;
    std::string last_empty_id_;
};

}  // namespace

Counts count_text(std::string_view text, std::int64_t long_from) {
    Counts counts;
    std::int64_t length = 0;  // code points of the current run
    bool has_word_char = false;
    auto end_run = [&] {
        if (has_word_char) {
            ++counts.words;
            if (long_from > 0 && length >= long_from) ++counts.long_words;
        }
        length = 0;
        has_word_char = false;
    };
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_space(c)) {
            end_run();
            continue;
        }
        if (is_continuation(c)) continue;  // counted with the byte that opened its sequence
        ++counts.characters;
        ++length;
        has_word_char = has_word_char || is_word_char(c);
    }
    end_run();
    return counts;
}

docpipe::ComponentDescriptor descriptor() { return docpipe::component<WordCounter>(); }

}  // namespace word_count

DOCPIPE_PLUGIN("word-count", "1.0.0", "Example out-of-tree plugin: word counts with two ports and a health probe",
               word_count::descriptor())
