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
#include <array>
#include <cctype>
#include <cmath>
#include <optional>

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
            Field::boolean("turned_page_retry").default_value(true)
                .describe("A page read with under a quarter of its words legible (a letter or digit, 3 or more characters, "
                          "word confidence 60 or more) is read again turned a quarter each way and upside down: a phone "
                          "photo taken sideways whose orientation tag was stripped (messaging apps do). The first turned "
                          "reading with a third of its words legible, and more of them than the first, is kept, and the "
                          "page image turns with it (scaled up to 1000 pixels wide if narrower, as the clean-up scales an "
                          "upright photo), so word boxes, line rereads and the review page agree; the document's trace "
                          "says so. Upright receipts mostly read 40% or more legibly; about 2 in 100 pay the turned "
                          "readings for nothing. Off for a node that reads again a page an earlier node read"),
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
          turned_page_retry_(c.get_bool("turned_page_retry")),
          pool_(c.has("tessdata_dir") ? c.get_string("tessdata_dir") : EnginePool::default_tessdata(), c.get_string("languages"),
                static_cast<int>(c.get_int("psm"))) {}

    HealthReport health() override {
        return {Health::Healthy, fmt::format("tesseract {} ({}, psm {}), {} engine(s) shared by {} node(s)", tesseract::TessBaseAPI::Version(),
                                             pool_.languages(), pool_.psm(), pool_.created(), pool_.sharing())};
    }

    // The reading as it comes, never turned: a caller that has only the page cannot take a
    // turned image back (process() does).
    OcrResult recognize(const Page& page) override { return recognize_page(page, nullptr); }

    // Ocr::process with two additions: a page read sideways is turned upright with its reading
    // (turned_page_retry), and the optional hOCR/TSV of each page goes into the trace.
    void process(const DocumentPtr& input, Outputs& out) override {
        auto doc = std::make_shared<Document>(*input);
        for (auto& page : doc->pages) {
            if (page.ocr || !page.image.pixels) continue;
            std::string layout;
            std::string* wanted_layout = trace_format_ == "none" ? nullptr : &layout;
            std::size_t unread_marks = 0;
            page.ocr = recognize_page(page, wanted_layout, &unread_marks);
            if (turned_page_retry_) {
                if (auto turned = read_turned(page, *page.ocr, unread_marks, wanted_layout)) {
                    doc->trace.push_back({ctx_.node_name(), "turned page", 0.0,
                                          fmt::format("page {} read sideways or upside down ({} of {} words legible); turned {} "
                                                      "degrees clockwise, it reads {} of {} ({} turned reading{})",
                                                      page.index + 1, legible_words(*page.ocr), page.ocr->words.size(),
                                                      turned->degrees, legible_words(turned->ocr), turned->ocr.words.size(),
                                                      turned->readings, turned->readings == 1 ? "" : "s")});
                    page.image = std::move(turned->image);
                    page.ocr = std::move(turned->ocr);
                }
            }
            if (wanted_layout)
                doc->trace.push_back({ctx_.node_name(), trace_format_, 0.0, fmt::format("page {}\n{}", page.index + 1, layout)});
        }
        out.emit(std::move(doc));
        ctx_.metrics().increment("ocr_pages_total", static_cast<double>(input->pages.size()));
    }

private:
    // `unread_marks`, when given, is set to the number of words the darkened copy read when its
    // reading was not kept (so low in confidence it looked like noise): the page then reads
    // empty, though there are marks on it. Faint print lying sideways reads so.
    OcrResult recognize_page(const Page& page, std::string* layout, std::size_t* unread_marks = nullptr) {
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
        if (!has_letter_or_digit(retry.text) || retry.mean_confidence < kFaintMinConfidence) {
            if (unread_marks && has_letter_or_digit(retry.text)) *unread_marks = retry.words.size();
            return result;
        }
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

    // Words that read as words: a letter or digit in 3 or more characters, at word confidence
    // kLegibleConfidence or more. A sideways page reads as many "words" as an upright one,
    // nearly all of them low-confidence shards.
    static std::size_t legible_words(const OcrResult& r) {
        return static_cast<std::size_t>(std::count_if(r.words.begin(), r.words.end(), [](const OcrWord& w) {
            return w.confidence >= kLegibleConfidence && w.text.size() >= 3 && has_letter_or_digit(w.text);
        }));
    }
    static bool reads_upright(const OcrResult& r) {
        return !r.words.empty() && static_cast<double>(legible_words(r)) >= kUprightShare * static_cast<double>(r.words.size());
    }

    struct TurnedReading {
        int degrees = 0;  // clockwise
        Image image;
        OcrResult ocr;
        std::string layout;  // its hOCR/TSV when the trace wants it
        int readings = 0;  // turned readings spent, this one's included
    };

    // A page whose first reading is mostly shards, read turned a quarter each way and a half:
    // the first turn that reads upright with more legible words than `first`, else the best
    // fair one, else nothing. Why not Tesseract's orientation detection (osd.traineddata): on
    // train receipts it told 90 from 270 degrees no better than a coin (4 turned photos, 2
    // right), and said 0 for one upside down; Leptonica's detector only orders the tries
    // (likeliest_turns_first), since a wrong guess there costs time, not the page. A turned
    // reading costs one page reading; about 2 upright receipts in 100 read poorly enough to pay
    // up to three for nothing.
    // A page that read empty is tried too when its darkened copy read `unread_marks` words the
    // faint retry did not keep, as many as a turn must read to be kept: faint print lying
    // sideways reads so (each turn has its own faint retry, so up to six readings). A blank
    // page is not: its darkened copy is not even read (too flat), or reads a shard or two.
    std::optional<TurnedReading> read_turned(const Page& page, const OcrResult& first, std::size_t unread_marks, std::string* layout) {
        const std::size_t first_legible = legible_words(first);
        if (first.words.empty() ? unread_marks < kMinTurnedLegible
                                : static_cast<double>(first_legible) >= kTryTurnedBelow * static_cast<double>(first.words.size()))
            return std::nullopt;
        ctx_.metrics().increment("ocr_turned_page_tries_total");
        std::optional<TurnedReading> best;
        int readings = 0;
        for (int degrees : likeliest_turns_first(page.image)) {
            ++readings;
            ctx_.metrics().increment("ocr_turned_readings_total");
            Page turned_page;  // the page's number and a turned image, not its first reading
            turned_page.index = page.index;
            std::string turned_layout;
            OcrResult turned;
            try {
                turned_page.image = turned_clockwise(page.image, degrees);
                turned = recognize_page(turned_page, layout ? &turned_layout : nullptr);
            } catch (const std::exception& e) {
                // Out of time (a busy machine slows every reading) or too big once scaled: the
                // next turn may still read; what was read so far stands.
                ctx_.log().log(LogLevel::Info, fmt::format("page {}: reading it turned {} degrees failed: {}", page.index + 1, degrees, e.what()));
                continue;
            }
            const std::size_t legible = legible_words(turned);
            if (legible < kMinTurnedLegible) continue;
            if (reads_upright(turned) && legible > first_legible) {
                best = TurnedReading{degrees, std::move(turned_page.image), std::move(turned), std::move(turned_layout)};
                break;
            }
            // A poor receipt upright reads under a third legibly too (dev 013, 32%); kept when no
            // turn reads upright, if it reads a quarter legibly and twice the words the first did.
            const bool fair = static_cast<double>(legible) >= kTryTurnedBelow * static_cast<double>(turned.words.size()) &&
                              legible > 2 * first_legible;
            if (fair && (!best || legible > legible_words(best->ocr)))
                best = TurnedReading{degrees, std::move(turned_page.image), std::move(turned), std::move(turned_layout)};
        }
        if (!best) return std::nullopt;
        ctx_.metrics().increment("ocr_turned_pages_total");
        best->ocr.engine += fmt::format(" (page turned {} degrees clockwise: it was read sideways or upside down)", best->degrees);
        best->readings = readings;
        if (layout) *layout = std::move(best->layout);
        return best;
    }

    // The three turns, the likeliest first, from Leptonica's orientation detector (it counts
    // the ascenders and descenders of Roman text, in the four directions). A wrong guess only
    // costs readings: every turn is still tried until one reads upright. On the 60 dev receipts
    // turned a quarter each way and upside down (cleaned as shipped), it put the right turn first
    // for 51, and the turned readings fell from 120 (90, 270, then 180, always) to 76. Where it
    // cannot tell (faint print binarises to little; a few words), photos taken sideways stay
    // likelier than upside down.
    static std::array<int, 3> likeliest_turns_first(const Image& img) {
        std::array<int, 3> turns{90, 270, 180};
        PixPtr gray = to_pix(img, true);
        PixPtr binary(pixConvertTo1(gray.get(), kOrientationThreshold));
        l_float32 upright = 0, facing_left = 0;
        if (!binary || pixOrientDetect(binary.get(), &upright, &facing_left, 0, 0) != 0) return turns;
        // facing_left > 0: the lines read upwards (a page turned a quarter counter-clockwise),
        // which a clockwise quarter turn puts right; upright < 0: upside down.
        const auto likelihood = [&](int degrees) { return degrees == 90 ? facing_left : degrees == 270 ? -facing_left : -upright; };
        std::stable_sort(turns.begin(), turns.end(), [&](int a, int b) { return likelihood(a) > likelihood(b); });
        return turns;
    }

    // The page turned by a multiple of 90 degrees clockwise. A quarter-turned page narrower
    // than kTurnedMinWidth is scaled up to it: transform.preprocess scaled the sideways page by
    // its width (the receipt's length), so upright its print is smaller than an upright
    // photo's, which the clean-up scales to at least that width (its default min_width). Dev
    // receipts turned a quarter lost 3 of 12 dates unscaled. Gray or RGB, as the page came;
    // the stated resolution scales with the pixels.
    static Image turned_clockwise(const Image& img, int degrees) {
        PixPtr pix = to_pix(img);
        PixPtr turned(pixRotateOrth(pix.get(), degrees / 90));
        if (!turned) throw std::bad_alloc();
        float factor = 1.0f;
        const int turned_width = static_cast<int>(pixGetWidth(turned.get()));
        if (degrees != 180 && turned_width < kTurnedMinWidth) {
            factor = std::min(kMaxTurnedScale, static_cast<float>(kTurnedMinWidth) / static_cast<float>(turned_width));
            turned.reset(pixScale(turned.get(), factor, factor));
            if (!turned) throw std::bad_alloc();
        }
        Image out = from_pix(turned.get(), img.channels);
        out.dpi = img.dpi > 0 ? static_cast<int>(std::lround(img.dpi * factor)) : 0;
        return out;
    }

    struct PixDeleter {
        void operator()(Pix* pix) const { pixDestroy(&pix); }
    };
    using PixPtr = std::unique_ptr<Pix, PixDeleter>;

    // The page as a Leptonica image: 8 bpp gray for one channel, 32 bpp RGB otherwise (an
    // alpha channel is dropped). With `force_gray`, always 8 bpp: RGB becomes luma with the
    // Rec. 601 weights in integer steps, as the clean-up's grayscale step computes it.
    static PixPtr to_pix(const Image& img, bool force_gray = false) {
        const bool gray = force_gray || img.channels < 3;
        PixPtr pix(pixCreate(img.width, img.height, gray ? 8 : 32));
        if (!pix) throw std::bad_alloc();
        l_uint32* data = pixGetData(pix.get());
        const int wpl = pixGetWpl(pix.get());
        const std::uint8_t* src = img.pixels->data();
        for (int y = 0; y < img.height; ++y) {
            l_uint32* line = data + static_cast<std::ptrdiff_t>(y) * wpl;
            const std::uint8_t* row = src + static_cast<std::ptrdiff_t>(y) * img.width * img.channels;
            for (int x = 0; x < img.width; ++x) {
                const std::uint8_t* p = row + static_cast<std::ptrdiff_t>(x) * img.channels;
                if (!gray) {
                    composeRGBPixel(p[0], p[1], p[2], line + x);
                } else {
                    SET_DATA_BYTE(line, x, img.channels >= 3 ? (p[0] * 299 + p[1] * 587 + p[2] * 114) / 1000 : p[0]);
                }
            }
        }
        return pix;
    }

    // Back from to_pix's layout to docpipe's, with `channels` as the page had (1 to 4; an
    // alpha channel comes back opaque).
    static Image from_pix(Pix* pix, int channels) {
        Image out;
        out.width = static_cast<int>(pixGetWidth(pix));
        out.height = static_cast<int>(pixGetHeight(pix));
        out.channels = channels;
        auto pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(out.width) * out.height * channels);
        const l_uint32* data = pixGetData(pix);
        const int wpl = pixGetWpl(pix);
        std::uint8_t* dst = pixels->data();
        for (int y = 0; y < out.height; ++y) {
            const l_uint32* line = data + static_cast<std::ptrdiff_t>(y) * wpl;
            for (int x = 0; x < out.width; ++x) {
                std::uint8_t* p = dst + (static_cast<std::ptrdiff_t>(y) * out.width + x) * channels;
                if (channels < 3) {
                    p[0] = static_cast<std::uint8_t>(GET_DATA_BYTE(line, x));
                    if (channels == 2) p[1] = 255;
                } else {
                    l_int32 r = 0, g = 0, b = 0;
                    extractRGBValues(line[x], &r, &g, &b);
                    p[0] = static_cast<std::uint8_t>(r), p[1] = static_cast<std::uint8_t>(g), p[2] = static_cast<std::uint8_t>(b);
                    if (channels == 4) p[3] = 255;
                }
            }
        }
        out.pixels = std::move(pixels);
        return out;
    }

    // A gray copy of the page with the darkest and brightest 1% of pixels clipped and the
    // levels between stretched to 0..255, then a 3x3 minimum (dark strokes one pixel
    // thicker), done by Leptonica. Same size as the page, so word boxes need no mapping.
    // Null when the page's grays span under kFaintMinRange levels (nothing to bring out).
    static PixPtr stretched_and_thickened(const Image& img) {
        PixPtr gray = to_pix(img, /*force_gray=*/true);
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

    // Measured on 12 train receipts, gray and 1500 pixels wide, read with psm 6: upright, 49-77%
    // of the words legible; turned a quarter 0-4%, upside down 6-20%.
    static constexpr float kLegibleConfidence = 60;
    static constexpr double kUprightShare = 1.0 / 3.0;
    // First readings (psm 6) of 240 train and dev receipts: 2 in 100 under a quarter legible.
    static constexpr double kTryTurnedBelow = 0.25;
    // A quarter-turned page is scaled up to this width (transform.preprocess's default
    // min_width), by at most kMaxTurnedScale (past it the page grows big for little gain).
    static constexpr int kTurnedMinWidth = 1000;
    static constexpr float kMaxTurnedScale = 3.0f;
    // A turned reading kept has at least this many legible words: a shard or two read well on
    // a page that read nothing is no reason to turn it.
    static constexpr std::size_t kMinTurnedLegible = 5;
    // Gray level under which a pixel is ink for the orientation detector.
    static constexpr int kOrientationThreshold = 128;

    static constexpr int kMaxSide = 32767;  // Tesseract refuses larger images ("Image too large")

    Context& ctx_;
    std::chrono::milliseconds timeout_;
    double max_megapixels_;
    int default_dpi_;
    std::string trace_format_;  // none | hocr | tsv
    bool faint_page_retry_;
    bool turned_page_retry_;
    EnginePool pool_;           // `concurrency: N` borrows at most N engines
};

}  // namespace docpipe::tesseract_ocr

DOCPIPE_PLUGIN("tesseract", "0.1.0", "Tesseract OCR", docpipe::component<docpipe::tesseract_ocr::TesseractOcr>(),
               docpipe::component<docpipe::tesseract_ocr::LineReader>())
