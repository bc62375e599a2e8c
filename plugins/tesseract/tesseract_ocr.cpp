// ocr.tesseract — Tesseract 5 LSTM OCR, one engine per concurrent call.
//
// Engines are pooled: process() borrows one (creating it on first need) and returns it,
// so `concurrency: N` means at most N engines at once for this node. Nodes with the same
// tessdata and languages (the claims pipelines' three readings) draw on one stock of
// engines (engine_pool.hpp). The runtime sets OMP_THREAD_LIMIT=1 before
// any plugin loads: Debian's Tesseract is built with OpenMP, and one engine per core with
// OpenMP threads on top oversubscribes the CPU (6x slower measured on 2 cores).
//
// Example config:
//   ocr:
//     component: ocr.tesseract
//     concurrency: 2
//     config: {languages: eng+msa, psm: 6, page_timeout: 30s, max_megapixels: 40}
#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>
#include <tesseract/ocrclass.h>

#include <algorithm>
#include <cctype>

#include <fmt/core.h>

#include "docpipe/plugin.hpp"
#include "engine_pool.hpp"
#include "line_reader.hpp"

namespace docpipe::tesseract_ocr {

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
            Field::duration("page_timeout").default_value("30s").min(0.001).max(3600)
                .describe("Longest OCR of one page; a page that takes longer is cancelled and retried (the node's retry policy), "
                          "as a starved CPU slows good pages too"),
            Field::number("max_megapixels").default_value(40).min(0.01)
                .describe("Largest page image recognised; a bigger one is refused as bad input at once instead of running "
                          "for minutes (pages come cleaned and scaled; a receipt is well under 40)"),
            Field::integer("default_dpi").default_value(300).min(50).max(1200)
                .describe("Resolution assumed for images that do not state one"),
            Field::boolean("faint_page_retry").default_value(true)
                .describe("A page read with no letter or digit on it is read once more with its gray levels stretched (1% "
                          "clipped at each end) and its strokes thickened (3x3 minimum): faint thermal print on a bright page "
                          "that Tesseract's own threshold wipes out. Not tried when the page's grays span under 32 levels "
                          "(a blank page's shading); the second reading is kept when it has text at mean word confidence 50 "
                          "or more, and its engine says so"),
            Field::enumeration("trace_format", {"none", "hocr", "tsv"}).default_value("none")
                .describe("Also put each page's hOCR or TSV (Tesseract's layout with boxes) in the document's trace; "
                          "it holds the page's text, so only for debugging"),
        };
        return d;
    }

    TesseractOcr(const Config& c, Context& ctx)
        : ctx_(ctx),
          timeout_(c.get_duration("page_timeout")),
          max_megapixels_(c.get_number("max_megapixels")),
          default_dpi_(static_cast<int>(c.get_int("default_dpi"))),
          trace_format_(c.get_string("trace_format")),
          faint_page_retry_(c.get_bool("faint_page_retry")),
          pool_(c.has("tessdata_dir") ? c.get_string("tessdata_dir") : EnginePool::default_tessdata(), c.get_string("languages"),
                static_cast<int>(c.get_int("psm"))) {}

    HealthReport health() override {
        return {Health::Healthy, fmt::format("tesseract {} ({}, psm {}), {} engine(s) shared by {} node(s)", tesseract::TessBaseAPI::Version(),
                                             pool_.languages(), pool_.psm(), pool_.created(), pool_.sharing())};
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
        auto api = pool_.acquire();
        api->SetImage(img.pixels->data(), img.width, img.height, img.channels, img.width * img.channels);
        OcrResult result = recognize_set_image(*api.get(), page, layout);
        if (!faint_page_retry_ || has_letter_or_digit(result.text)) return result;
        // Nothing read: faint print, or truly nothing there. One more look at a darkened copy;
        // a truly blank page stays blank and the first (empty) reading stands.
        PixPtr darkened = stretched_and_thickened(img);
        if (!darkened) return result;  // nearly one flat gray: a blank page, nothing to stretch
        api->SetImage(darkened.get());
        std::string retry_layout;
        OcrResult retry;
        try {
            retry = recognize_set_image(*api.get(), page, layout ? &retry_layout : nullptr);
        } catch (const std::runtime_error&) {
            return result;  // out of time on the retry: the page did read, empty; that stands
        }
        ctx_.metrics().increment("ocr_faint_page_retries_total");
        // Faint print read this way scored 64-82 on train; texture blown up into "text" scores low.
        if (!has_letter_or_digit(retry.text) || retry.mean_confidence < kFaintMinConfidence) return result;
        retry.engine += " (faint page: contrast stretched, strokes thickened)";
        if (layout) *layout = std::move(retry_layout);
        return retry;
    }

    // Recognises the image already set on `api` and reads the result; clears the engine.
    OcrResult recognize_set_image(tesseract::TessBaseAPI& api, const Page& page, std::string* layout) {
        api.SetSourceResolution(page.image.dpi > 0 ? page.image.dpi : default_dpi_);
        tesseract::ETEXT_DESC monitor;
        monitor.set_deadline_msecs(static_cast<int32_t>(timeout_.count()));
        if (api.Recognize(&monitor) != 0 || monitor.deadline_exceeded()) {
            api.Clear();
            // Not BadInput: on a machine short of CPU a good page takes longer too, and the
            // retry (with backoff) usually finishes it. A page that times out every time
            // fails after the node's attempts, with this reason.
            if (monitor.deadline_exceeded())
                // Read as the final reason too, after the last attempt: so it says what the
                // operator can do, not that it "is retried".
                throw std::runtime_error(fmt::format("page {}: OCR took longer than {} ms (page_timeout) and was cancelled (a busy "
                                                     "machine slows every page, so the node's retries try again; a page that "
                                                     "times out every time is rarely a receipt: noise, a pattern, or a huge "
                                                     "scan; look at it, or raise page_timeout)",
                                                     page.index + 1, timeout_.count()));
            throw std::runtime_error(fmt::format("page {}: tesseract recognition failed", page.index + 1));
        }
        OcrResult result = read_result(api);
        result.engine = fmt::format("tesseract {} {} psm{}", tesseract::TessBaseAPI::Version(), pool_.languages(), pool_.psm());
        if (layout) {
            std::unique_ptr<char[]> text(trace_format_ == "hocr" ? api.GetHOCRText(page.index) : api.GetTSVText(page.index));
            *layout = text ? text.get() : "";
        }
        api.Clear();
        return result;
    }

    // An ASCII letter or digit, or the first byte of a UTF-8 character outside U+2000-U+2FFF
    // (punctuation, arrows, box drawing: what noise reads as), so a page read in another
    // script is not taken for an empty one.
    static bool has_letter_or_digit(const std::string& text) {
        return std::any_of(text.begin(), text.end(), [](unsigned char c) { return std::isalnum(c) != 0 || (c >= 0xC0 && c != 0xE2); });
    }

    struct PixDeleter {
        void operator()(Pix* pix) const { pixDestroy(&pix); }
    };
    using PixPtr = std::unique_ptr<Pix, PixDeleter>;

    // A gray copy of the page with the darkest and brightest 1% of pixels clipped and the
    // levels between stretched to 0..255, then a 3x3 minimum (dark strokes one pixel
    // thicker), done by Leptonica. Same size as the page, so word boxes need no mapping.
    // Null when the page's grays span under kFaintMinRange levels (nothing to bring out).
    static PixPtr stretched_and_thickened(const Image& img) {
        PixPtr gray(pixCreate(img.width, img.height, 8));
        if (!gray) throw std::bad_alloc();
        l_uint32* data = pixGetData(gray.get());
        const int words_per_line = pixGetWpl(gray.get());
        const std::uint8_t* src = img.pixels->data();
        for (int y = 0; y < img.height; ++y) {
            l_uint32* line = data + static_cast<std::ptrdiff_t>(y) * words_per_line;
            const std::uint8_t* row = src + static_cast<std::ptrdiff_t>(y) * img.width * img.channels;
            for (int x = 0; x < img.width; ++x) {
                const std::uint8_t* p = row + static_cast<std::ptrdiff_t>(x) * img.channels;
                // RGB to luma with the Rec. 601 weights, as the clean-up's grayscale step.
                const int v = img.channels >= 3 ? (p[0] * 299 + p[1] * 587 + p[2] * 114) / 1000 : p[0];
                SET_DATA_BYTE(line, x, v);
            }
        }
        l_uint32 low = 0, high = 255;
        if (pixGetRankValue(gray.get(), 1, kFaintClip, &low) != 0 || pixGetRankValue(gray.get(), 1, 1.0f - kFaintClip, &high) != 0)
            return nullptr;
        // A narrow range is a blank page's texture (paper grain, JPEG noise): stretched, it
        // turns into letters. The faint receipts on train span 60-200 gray levels.
        if (high < low + kFaintMinRange) return nullptr;
        PixPtr stretched(pixGammaTRC(nullptr, gray.get(), 1.0f, static_cast<l_int32>(low), static_cast<l_int32>(high)));
        if (!stretched) return nullptr;
        return PixPtr(pixErodeGray(stretched.get(), 3, 3));
    }

    static constexpr float kFaintClip = 0.01f;  // share clipped at each end, as transform.preprocess's contrast_clip
    static constexpr l_uint32 kFaintMinRange = 32;  // gray levels between the 1% and 99% ranks
    static constexpr float kFaintMinConfidence = 50;  // mean word confidence of a retry that is kept

    static constexpr int kMaxSide = 32767;  // Tesseract refuses larger images ("Image too large")

    Context& ctx_;
    std::chrono::milliseconds timeout_;
    double max_megapixels_;
    int default_dpi_;
    std::string trace_format_;  // none | hocr | tsv
    bool faint_page_retry_;
    EnginePool pool_;           // `concurrency: N` borrows at most N engines
};

}  // namespace docpipe::tesseract_ocr

DOCPIPE_PLUGIN("tesseract", "0.1.0", "Tesseract OCR", docpipe::component<docpipe::tesseract_ocr::TesseractOcr>(),
               docpipe::component<docpipe::tesseract_ocr::LineReader>())
