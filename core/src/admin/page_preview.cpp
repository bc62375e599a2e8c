#include "admin/page_preview.hpp"

#include <leptonica/allheaders.h>
#include <poppler-document.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>

#include <fmt/core.h>

namespace docpipe::core::admin {

namespace {

struct PixFree {
    void operator()(PIX* p) const { pixDestroy(&p); }
};
using PixPtr = std::unique_ptr<PIX, PixFree>;

// The raster as a Leptonica image: 8 bpp gray or 32 bpp RGB (no alpha).
PixPtr to_pix(const Image& image) {
    const int w = image.width, h = image.height, channels = image.channels;
    const std::size_t need = static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * static_cast<std::size_t>(channels);
    if (!image.pixels || image.pixels->size() < need)
        throw std::runtime_error(fmt::format("the {}x{} raster holds {} bytes, not the {} its size needs", w, h,
                                             image.pixels ? image.pixels->size() : 0, need));
    PixPtr pix(pixCreate(w, h, channels == 1 ? 8 : 32));
    if (!pix) throw std::runtime_error(fmt::format("cannot allocate a {}x{} image", w, h));
    if (channels == 3) pixSetSpp(pix.get(), 3);
    l_uint32* data = pixGetData(pix.get());
    const l_int32 wpl = pixGetWpl(pix.get());
    const std::uint8_t* src = image.pixels->data();
    for (int y = 0; y < h; ++y) {
        l_uint32* line = data + static_cast<std::ptrdiff_t>(y) * wpl;
        const std::uint8_t* row = src + static_cast<std::size_t>(y) * static_cast<std::size_t>(w) * channels;
        if (channels == 1) {
            for (int x = 0; x < w; ++x) SET_DATA_BYTE(line, x, row[x]);
        } else {
            for (int x = 0; x < w; ++x) {
                l_uint32 px = 0;
                composeRGBPixel(row[3 * x], row[3 * x + 1], row[3 * x + 2], &px);
                line[x] = px;
            }
        }
    }
    return pix;
}

}  // namespace

std::optional<PagePreview> encode_page_preview(const Image& image, int max_side) {
    if (!image.pixels || image.width <= 0 || image.height <= 0) return std::nullopt;
    if (image.channels != 1 && image.channels != 3)
        throw std::runtime_error(fmt::format("a raster with {} channels (expected 1 or 3)", image.channels));
    PixPtr pix = to_pix(image);
    PagePreview out;
    const int long_side = std::max(image.width, image.height);
    if (max_side > 0 && long_side > max_side) {
        // Both sides from one factor, rounded, so the aspect ratio (and with it where the
        // OCR boxes fall) stays the raster's.
        const double scale = static_cast<double>(max_side) / long_side;
        const int w = std::max(1, static_cast<int>(std::lround(image.width * scale)));
        const int h = std::max(1, static_cast<int>(std::lround(image.height * scale)));
        PixPtr scaled(pixScaleToSize(pix.get(), w, h));
        if (!scaled) throw std::runtime_error(fmt::format("cannot scale the {}x{} raster to {}x{}", image.width, image.height, w, h));
        pix = std::move(scaled);
        out.scale = scale;
    }
    out.width = static_cast<int>(pixGetWidth(pix.get()));
    out.height = static_cast<int>(pixGetHeight(pix.get()));
    l_uint8* data = nullptr;
    std::size_t size = 0;
    if (pixWriteMem(&data, &size, pix.get(), IFF_PNG) != 0 || !data)
        throw std::runtime_error(fmt::format("PNG encoding of the {}x{} page failed", out.width, out.height));
    out.png.assign(reinterpret_cast<const char*>(data), size);
    lept_free(data);
    return out;
}

std::string review_page_key(const std::string& job_id, const std::string& doc_id, int page) {
    return fmt::format("review_page/{}/{}/{}", job_id, doc_id, page);
}

std::string review_page_prefix(const std::string& job_id, const std::string& doc_id) {
    return doc_id.empty() ? fmt::format("review_page/{}/", job_id) : fmt::format("review_page/{}/{}/", job_id, doc_id);
}

PagePreview render_pdf_page_preview(const Bytes& pdf, int page_index, int max_side) {
    std::unique_ptr<poppler::document> doc(
        poppler::document::load_from_raw_data(reinterpret_cast<const char*>(pdf.data()), static_cast<int>(pdf.size())));
    if (!doc) throw std::runtime_error("not a readable PDF");
    if (doc->is_locked()) throw std::runtime_error("encrypted PDF");
    if (page_index < 0 || page_index >= doc->pages())
        throw std::runtime_error(fmt::format("the PDF has {} page(s), not a page {}", doc->pages(), page_index + 1));
    std::unique_ptr<poppler::page> page(doc->create_page(page_index));
    if (!page) throw std::runtime_error(fmt::format("PDF page {} cannot be read", page_index + 1));
    // The resolution that makes the long side max_side, from the page's size in points: the
    // pixel count is bounded whatever size the page claims.
    const auto rect = page->page_rect();
    const double long_points = std::max(std::abs(rect.width()), std::abs(rect.height()));
    if (!(long_points > 0)) throw std::runtime_error(fmt::format("PDF page {} has no size", page_index + 1));
    const double dpi = std::min(300.0, std::floor(72.0 * max_side / long_points));
    if (dpi < 1) throw std::runtime_error(fmt::format("PDF page {} is too large to preview ({} points)", page_index + 1, long_points));
    poppler::page_renderer renderer;
    renderer.set_render_hint(poppler::page_renderer::antialiasing, true);
    renderer.set_render_hint(poppler::page_renderer::text_antialiasing, true);
    renderer.set_image_format(poppler::image::format_rgb24);
    const poppler::image rendered = renderer.render_page(page.get(), dpi, dpi);
    if (!rendered.is_valid()) throw std::runtime_error(fmt::format("PDF page {} cannot be rendered", page_index + 1));
    Image image;
    image.width = rendered.width();
    image.height = rendered.height();
    image.channels = 3;
    auto pixels = std::make_shared<Bytes>(static_cast<std::size_t>(image.width) * image.height * 3);
    // poppler's rows are padded (bytes_per_row); the Image is packed.
    for (int y = 0; y < image.height; ++y) {
        const char* row = rendered.const_data() + static_cast<std::ptrdiff_t>(y) * rendered.bytes_per_row();
        std::copy(row, row + image.width * 3, reinterpret_cast<char*>(pixels->data()) + static_cast<std::size_t>(y) * image.width * 3);
    }
    image.pixels = std::move(pixels);
    auto out = encode_page_preview(image, max_side);
    if (!out) throw std::runtime_error(fmt::format("PDF page {} rendered empty", page_index + 1));
    out->scale = 1.0;  // there are no OCR boxes to line up with
    return *out;
}

}  // namespace docpipe::core::admin
