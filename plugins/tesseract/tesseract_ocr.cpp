// ocr.tesseract — Tesseract 5 LSTM OCR, one engine per concurrent call.
//
// Engines are pooled: process() borrows one (creating it on first need) and returns it,
// so `concurrency: N` means at most N engines. The runtime sets OMP_THREAD_LIMIT=1 before
// any plugin loads: Debian's Tesseract is built with OpenMP, and one engine per core with
// OpenMP threads on top oversubscribes the CPU (6x slower measured on 2 cores).
//
// Example config:
//   ocr:
//     component: ocr.tesseract
//     concurrency: 2
//     config: {languages: eng+msa, psm: 6, page_timeout: 30s, max_megapixels: 40}
#include <tesseract/baseapi.h>
#include <tesseract/ocrclass.h>
#include <tesseract/resultiterator.h>
#include <leptonica/allheaders.h>

#include <filesystem>
#include <mutex>

#include <fmt/core.h>

#include "docpipe/plugin.hpp"

namespace docpipe::tesseract_ocr {

namespace fs = std::filesystem;

class TesseractOcr : public Ocr {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Ocr;
        d.name = "ocr.tesseract";
        d.summary = "Tesseract OCR: text, lines and words with boxes and confidences per page";
        d.concurrent_safe = true;
        d.has_health_probe = true;
        d.config = ConfigSpec{
            Field::string("languages").default_value("eng+msa").describe("Tesseract languages joined by '+'"),
            Field::integer("psm").default_value(6).min(0).max(13)
                .describe("Page segmentation mode; 6 (one uniform block) keeps receipt rows together"),
            Field::string("tessdata_dir").describe("Folder with <lang>.traineddata (default: Tesseract's own)"),
            Field::duration("page_timeout").default_value("30s").min(0.001)
                .describe("Longest OCR of one page; a page that takes longer is cancelled and retried (the node's retry policy), "
                          "as a starved CPU slows good pages too"),
            Field::number("max_megapixels").default_value(40).min(0.01)
                .describe("Largest page image recognised; a bigger one is refused as bad input at once instead of running "
                          "for minutes (pages come cleaned and scaled; a receipt is well under 40)"),
            Field::integer("default_dpi").default_value(300).min(50).max(1200)
                .describe("Resolution assumed for images that do not state one"),
            Field::enumeration("trace_format", {"none", "hocr", "tsv"}).default_value("none")
                .describe("Also put each page's hOCR or TSV (Tesseract's layout with boxes) in the document's trace; "
                          "it holds the page's text, so only for debugging"),
        };
        return d;
    }

    TesseractOcr(const Config& c, Context& ctx)
        : ctx_(ctx),
          languages_(c.get_string("languages")),
          psm_(static_cast<int>(c.get_int("psm"))),
          timeout_(c.get_duration("page_timeout")),
          max_megapixels_(c.get_number("max_megapixels")),
          default_dpi_(static_cast<int>(c.get_int("default_dpi"))),
          trace_format_(c.get_string("trace_format")) {
        tessdata_ = c.has("tessdata_dir") ? c.get_string("tessdata_dir") : default_tessdata();
        // Say which language is missing and where we looked, before Tesseract's own message.
        std::size_t start = 0;
        while (start <= languages_.size()) {
            std::size_t end = languages_.find('+', start);
            if (end == std::string::npos) end = languages_.size();
            const std::string lang = languages_.substr(start, end - start);
            if (!lang.empty() && !fs::exists(fs::path(tessdata_) / (lang + ".traineddata")))
                throw std::runtime_error(fmt::format("tesseract: traineddata for language '{}' not found in {} (install "
                                                     "tesseract-ocr-{} or set tessdata_dir)", lang, tessdata_, lang));
            start = end + 1;
        }
        release(acquire());  // build one engine now, so a broken setup fails at start-up
    }

    ~TesseractOcr() override {
        for (auto* api : idle_) {
            api->End();
            delete api;
        }
    }

    HealthReport health() override {
        std::lock_guard lock(mutex_);
        return {Health::Healthy, fmt::format("tesseract {} ({}, psm {}), {} engine(s)", tesseract::TessBaseAPI::Version(), languages_,
                                             psm_, created_)};
    }

    OcrResult recognize(const Page& page) override { return recognize_page(page, nullptr); }

    // Ocr::process with the optional hOCR/TSV of each page added to the trace.
    void process(const DocumentPtr& input, Outputs& out) override {
        if (trace_format_ == "none") {
            Ocr::process(input, out);
        } else {
            auto doc = std::make_shared<Document>(*input);
            for (auto& page : doc->pages) {
                if (page.ocr || !page.image.pixels) continue;
                std::string layout;
                page.ocr = recognize_page(page, &layout);
                doc->trace.push_back({ctx_.node_name(), trace_format_, 0.0, fmt::format("page {}\n{}", page.index + 1, layout)});
            }
            out.emit(std::move(doc));
        }
        ctx_.metrics().increment("ocr_pages_total", static_cast<double>(input->pages.size()));
    }

private:
    OcrResult recognize_page(const Page& page, std::string* layout) {
        const Image& img = page.image;
        if (!img.pixels || img.width <= 0 || img.height <= 0) throw BadInput("page has no image to OCR");
        // Refused before an engine is taken: a page beyond these runs for tens of seconds
        // and then fails anyway (Tesseract itself gives up past 32767 pixels a side).
        const double mp = static_cast<double>(img.width) * img.height / 1e6;
        if (mp > max_megapixels_)
            throw BadInput(fmt::format("page {} is {}x{} pixels ({:.1f} megapixels), above ocr.tesseract's limit of {} megapixels "
                                       "(max_megapixels); not recognised",
                                       page.index + 1, img.width, img.height, mp, max_megapixels_));
        if (img.width > kMaxSide || img.height > kMaxSide)
            throw BadInput(fmt::format("page {} is {}x{} pixels, more than the {} pixels a side Tesseract can take; not recognised",
                                       page.index + 1, img.width, img.height, kMaxSide));
        tesseract::TessBaseAPI* api = acquire();
        struct Return {
            TesseractOcr* self;
            tesseract::TessBaseAPI* api;
            ~Return() { self->release(api); }
        } give_back{this, api};

        api->SetImage(img.pixels->data(), img.width, img.height, img.channels, img.width * img.channels);
        api->SetSourceResolution(img.dpi > 0 ? img.dpi : default_dpi_);
        tesseract::ETEXT_DESC monitor;
        monitor.set_deadline_msecs(static_cast<int32_t>(timeout_.count()));
        if (api->Recognize(&monitor) != 0 || monitor.deadline_exceeded()) {
            api->Clear();
            // Not BadInput: on a machine short of CPU a good page takes longer too, and the
            // retry (with backoff) usually finishes it. A page that times out every time
            // fails after the node's attempts, with this reason.
            if (monitor.deadline_exceeded())
                throw std::runtime_error(fmt::format("page {}: OCR took longer than {} ms (page_timeout) and was cancelled; it is "
                                                     "retried, as a busy machine slows every page",
                                                     page.index + 1, timeout_.count()));
            throw std::runtime_error(fmt::format("page {}: tesseract recognition failed", page.index + 1));
        }
        OcrResult result;
        result.engine = fmt::format("tesseract {} {} psm{}", tesseract::TessBaseAPI::Version(), languages_, psm_);
        std::unique_ptr<char[]> text(api->GetUTF8Text());
        result.text = text ? text.get() : "";
        result.mean_confidence = static_cast<float>(api->MeanTextConf());
        std::unique_ptr<tesseract::ResultIterator> it(api->GetIterator());
        if (it) {
            do {
                if (it->IsAtBeginningOf(tesseract::RIL_TEXTLINE)) {
                    std::unique_ptr<char[]> line(it->GetUTF8Text(tesseract::RIL_TEXTLINE));
                    OcrLine l;
                    l.text = line ? line.get() : "";
                    while (!l.text.empty() && (l.text.back() == '\n' || l.text.back() == ' ')) l.text.pop_back();
                    int x1, y1, x2, y2;
                    if (it->BoundingBox(tesseract::RIL_TEXTLINE, &x1, &y1, &x2, &y2)) l.box = {x1, y1, x2 - x1, y2 - y1};
                    l.confidence = it->Confidence(tesseract::RIL_TEXTLINE);
                    result.lines.push_back(std::move(l));
                }
                std::unique_ptr<char[]> word(it->GetUTF8Text(tesseract::RIL_WORD));
                if (!word) continue;
                OcrWord w;
                w.text = word.get();
                int x1, y1, x2, y2;
                if (it->BoundingBox(tesseract::RIL_WORD, &x1, &y1, &x2, &y2)) w.box = {x1, y1, x2 - x1, y2 - y1};
                w.confidence = it->Confidence(tesseract::RIL_WORD);
                w.line = static_cast<int>(result.lines.size()) - 1;
                result.words.push_back(std::move(w));
            } while (it->Next(tesseract::RIL_WORD));
        }
        if (layout) {
            std::unique_ptr<char[]> text(trace_format_ == "hocr" ? api->GetHOCRText(page.index) : api->GetTSVText(page.index));
            *layout = text ? text.get() : "";
        }
        api->Clear();
        return result;
    }

    static std::string default_tessdata() {
        if (const char* env = std::getenv("TESSDATA_PREFIX")) return env;
        return "/usr/share/tesseract-ocr/5/tessdata";
    }

    tesseract::TessBaseAPI* acquire() {
        {
            std::lock_guard lock(mutex_);
            if (!idle_.empty()) {
                auto* api = idle_.back();
                idle_.pop_back();
                return api;
            }
        }
        auto api = std::make_unique<tesseract::TessBaseAPI>();
        if (api->Init(tessdata_.c_str(), languages_.c_str(), tesseract::OEM_LSTM_ONLY) != 0)
            throw std::runtime_error(fmt::format("tesseract init failed for languages '{}' with tessdata {}", languages_, tessdata_));
        api->SetPageSegMode(static_cast<tesseract::PageSegMode>(psm_));
        // Tesseract prints its own diagnostics ("Detected 145 diacritics", "Image too small
        // to scale!!") straight to stderr, one per page, interleaved with docpipe's log and
        // naming no document. They say nothing an operator can act on, so they go nowhere;
        // what matters (empty pages, low confidence) is in the OCR result and our log.
        api->SetVariable("debug_file", "/dev/null");
        std::lock_guard lock(mutex_);
        ++created_;
        return api.release();
    }

    void release(tesseract::TessBaseAPI* api) {
        std::lock_guard lock(mutex_);
        idle_.push_back(api);
    }

    static constexpr int kMaxSide = 32767;  // Tesseract refuses larger images ("Image too large")

    Context& ctx_;
    std::string languages_;
    int psm_;
    std::chrono::milliseconds timeout_;
    double max_megapixels_;
    int default_dpi_;
    std::string trace_format_;  // none | hocr | tsv
    std::string tessdata_;
    std::mutex mutex_;                             // guards idle_ and created_
    std::vector<tesseract::TessBaseAPI*> idle_;    // owned; engines not in use
    int created_ = 0;
};

}  // namespace docpipe::tesseract_ocr

DOCPIPE_PLUGIN("tesseract", "0.1.0", "Tesseract OCR", docpipe::component<docpipe::tesseract_ocr::TesseractOcr>())
