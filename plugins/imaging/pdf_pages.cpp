// transform.pdf_pages — turns each document's image or PDF part into pages (rasters, or a
// PDF's own text layer), within limits checked before anything large is decoded.
//
// Example config:
//   pages:
//     component: transform.pdf_pages
//     config: {dpi: 300, max_pages: 50, max_megapixels: 100, text_layer: use}
#include <fmt/core.h>

#include "decode.hpp"
#include "docpipe/plugin.hpp"

namespace docpipe::imaging {

class PdfPages : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.pdf_pages";
        d.summary = "Decodes image parts (JPEG, PNG, TIFF pages, BMP, GIF, WebP) and renders PDF pages into page images";
        d.concurrent_safe = true;
        d.config = ConfigSpec{
            Field::integer("dpi").default_value(300).min(50).max(1200).describe("PDF rendering resolution"),
            Field::integer("max_pages").default_value(50).min(1).describe("More pages than this: the document goes to review"),
            Field::number("max_megapixels").default_value(100).min(0.01)
                .describe("Largest page, checked from the header before decoding (decompression bombs)"),
            Field::integer("max_bytes").default_value(50 * 1024 * 1024).min(1).describe("Largest file accepted"),
            Field::enumeration("text_layer", {"use", "ocr"}).default_value("use")
                .describe("use: a PDF page with text keeps it and skips OCR; ocr: always render and OCR"),
        };
        return d;
    }

    PdfPages(const Config& c, Context& ctx) : ctx_(ctx) {
        limits_.pdf_dpi = static_cast<int>(c.get_int("dpi"));
        limits_.max_pages = static_cast<int>(c.get_int("max_pages"));
        limits_.max_megapixels = c.get_number("max_megapixels");
        limits_.max_bytes = static_cast<std::size_t>(c.get_int("max_bytes"));
        limits_.pdf_text_layer = c.get_string("text_layer") == "use";
        quiet_libraries();
    }

    void process(const DocumentPtr& input, Outputs& out) override {
        if (input->parts.empty()) throw BadInput("document has no file to decode");
        auto doc = std::make_shared<Document>(*input);
        doc->pages.clear();
        for (const auto& part : input->parts) {
            auto pages = is_pdf(part) ? decode_pdf(part, limits_) : decode_image(part, limits_);
            for (auto& p : pages) {
                p.index = static_cast<int>(doc->pages.size());
                doc->pages.push_back(std::move(p));
            }
        }
        ctx_.metrics().increment("pages_total", static_cast<double>(doc->pages.size()));
        out.emit(std::move(doc));
    }

private:
    Context& ctx_;
    DecodeLimits limits_;
};

}  // namespace docpipe::imaging

namespace docpipe::imaging {
ComponentDescriptor pdf_pages_descriptor() { return component<PdfPages>(); }
}  // namespace docpipe::imaging
