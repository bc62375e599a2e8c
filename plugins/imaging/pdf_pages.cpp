// transform.pdf_pages — turns each document's image or PDF part into pages (rasters, or a
// PDF's own text layer), within limits checked before anything large is decoded.
//
// Before a pixel is decoded, every page's size is read from the headers (a PDF page's at
// `dpi`) and checked: `max_megapixels` and `max_aspect_ratio` per page,
// `max_document_megapixels` for the document's pages together (each failing the document
// alone as bad input). Then the image memory decoding will hold is reserved from the
// process-wide budget (`process_memory_mb`, shared with transform.preprocess), waiting up
// to `memory_wait` when other documents hold it, else retried later.
//
// Example config:
//   pages:
//     component: transform.pdf_pages
//     config: {dpi: 300, max_pages: 50, max_megapixels: 100, max_aspect_ratio: 25, text_layer: use}
#include <chrono>

#include <fmt/core.h>

#include "budget.hpp"
#include "decode.hpp"
#include "docpipe/plugin.hpp"

namespace docpipe::imaging {

class PdfPages : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.pdf_pages";
        d.summary = "Decodes image parts (JPEG, PNG, TIFF pages, HEIC and AVIF photos, BMP, GIF, WebP) and renders PDF pages into page images";
        d.concurrent_safe = true;
        d.config = ConfigSpec{
            Field::integer("dpi").default_value(300).min(50).max(1200).describe("PDF rendering resolution"),
            Field::integer("max_pages").default_value(50).min(1)
                .describe("Most pages of one PDF or TIFF; more fails the document as bad input (dead-lettered, with the page "
                          "count and the limit in the reason), before any page is decoded"),
            Field::number("max_megapixels").default_value(100).min(0.01)
                .describe("Largest page, from the image header or the PDF page box at `dpi`, checked before decoding "
                          "(decompression bombs)"),
            Field::number("max_aspect_ratio").default_value(25).min(0)
                .describe("Long side over short side of a page, checked before decoding; beyond it the page is refused as not "
                          "a receipt (a long receipt, 80 x 600 mm, is 7.5; a 1x1500 pixel strip is 1500). 0: no limit"),
            Field::integer("max_bytes").default_value(50 * 1024 * 1024).min(1).describe("Largest file accepted"),
            Field::enumeration("text_layer", {"use", "ocr"}).default_value("use")
                .describe("use: a PDF page with text keeps it and skips OCR, unless the page draws a scan or photo (images of "
                          "150,000 pixels or more, JPEG or not, covering a quarter of the page or more: its text is a scanner "
                          "app's OCR or laid over it, not what it shows), "
                          "which is rendered and OCRed; ocr: always render and OCR"),
        };
        DocumentBudget::add_fields(d.config, "All pages of one document together, checked before decoding; more fails that document alone");
        return d;
    }

    PdfPages(const Config& c, Context& ctx) : ctx_(ctx), budget_(c) {
        limits_.pdf_dpi = static_cast<int>(c.get_int("dpi"));
        limits_.max_pages = static_cast<int>(c.get_int("max_pages"));
        limits_.max_megapixels = c.get_number("max_megapixels");
        limits_.max_aspect_ratio = c.get_number("max_aspect_ratio");
        limits_.max_bytes = static_cast<std::size_t>(c.get_int("max_bytes"));
        limits_.pdf_text_layer = c.get_string("text_layer") == "use";
        route_library_messages_to(&ctx_.log());
    }
    ~PdfPages() override { stop_routing_library_messages_to(&ctx_.log()); }

    void process(const DocumentPtr& input, Outputs& out) override {
        if (input->parts.empty()) throw BadInput("document has no file to decode");
        // Every part's pages are sized from their headers first; nothing is decoded until
        // the whole document is known to fit.
        std::vector<std::unique_ptr<PartDecoder>> parts;
        double megapixels = 0;
        std::size_t kept = 0, work = 0;
        for (const auto& part : input->parts) {
            parts.push_back(std::make_unique<PartDecoder>(part, limits_));
            for (const auto& p : parts.back()->plan()) megapixels += static_cast<double>(p.pixels()) / 1e6;
            kept += parts.back()->kept_bytes();
            work = std::max(work, parts.back()->work_bytes());
        }
        const std::string& name = input->parts.front().name;
        const ImageMemory::Lease lease = budget_.admit(name, "pages would decode to", megapixels, kept + work, "; not decoded");

        auto doc = std::make_shared<Document>(*input);
        doc->pages.clear();
        std::vector<PageImages> drawn;  // per page of the document
        for (auto& decoder : parts) {
            auto pages = decoder->decode();
            const auto& pictures = decoder->page_pictures();
            for (std::size_t i = 0; i < pages.size(); ++i) {
                pages[i].index = static_cast<int>(doc->pages.size());
                doc->pages.push_back(std::move(pages[i]));
                drawn.push_back(i < pictures.size() ? pictures[i] : PageImages{});
            }
            for (const std::string& damage : decoder->damage()) {
                ctx_.log().log(LogLevel::Warn, fmt::format("{}: {}; the page is read, and what is read from it needs a check", doc->id, damage));
                doc->trace.push_back({ctx_.node_name(), std::string(kDamagedPageEvent), 0.0, damage});
                ctx_.metrics().increment("damaged_pages_total");
            }
        }
        for (const Page& page : doc->pages) {
            const Image& image = page.image;
            if (!image.pixels) continue;
            const auto& source = drawn[static_cast<std::size_t>(page.index)];
            std::string what, logged;
            if (static_cast<long long>(image.width) * image.height < kSmallestReadablePixels) {
                what = fmt::format("page {} of '{}' is only {}x{} pixels", page.index + 1, name, image.width, image.height);
                logged = fmt::format("page {} is only {}x{} pixels", page.index + 1, image.width, image.height);
            } else if (source.pixels > 0 && source.pixels < kSmallestReadablePixels && source.marks < kFewMarks && !source.incomplete) {
                // Rendered at the PDF's page size, a thumbnail is a full page of blur: what counts
                // on a page that shows only pictures is their own pixels, wherever they are drawn.
                // (A page with text drawn as outlines, or glyphs without a text layer, shows its
                // print by itself: a small logo or background on it is no thumbnail.)
                const std::string pictures = source.pixels == source.largest.pixels()
                                                 ? fmt::format("an image of only {}x{} pixels", source.largest.width, source.largest.height)
                                                 : fmt::format("images of only {} pixels together", source.pixels);
                what = fmt::format("page {} of '{}' draws its picture from {}", page.index + 1, name, pictures);
                logged = fmt::format("page {} draws its picture from {}", page.index + 1, pictures);
            } else {
                continue;
            }
            what += ": too few for a receipt's print to be read (a thumbnail or a chat app's preview sent in place of the photo?); "
                    "ask the sender for the original photo or scan";
            // The log line leaves the file name out: a name can be a person's (the trace, read by
            // the reviewer, keeps it).
            ctx_.log().log(LogLevel::Warn, fmt::format("{}: {}, too few to read a receipt from", doc->id, logged));
            doc->trace.push_back({ctx_.node_name(), std::string(kSmallPageEvent), 0.0, what});
            ctx_.metrics().increment("small_pages_total");
        }
        ctx_.metrics().increment("pages_total", static_cast<double>(doc->pages.size()));
        out.emit(std::move(doc));
    }

private:
    // Under this a page is named as too small (a 300 x 400 pixel image). The smallest of the 300
    // labelled receipts is 439 x 1004 pixels, its print about 10 pixels high.
    static constexpr long long kSmallestReadablePixels = 120'000;
    // A page drawn with fewer path-painting and text-showing operators than this shows only
    // its pictures (an image saved as a PDF has none; a line of text drawn as outlines dozens).
    static constexpr std::size_t kFewMarks = 20;

    Context& ctx_;
    DecodeLimits limits_;
    DocumentBudget budget_;
};

}  // namespace docpipe::imaging

namespace docpipe::imaging {
ComponentDescriptor pdf_pages_descriptor() { return component<PdfPages>(); }
}  // namespace docpipe::imaging
