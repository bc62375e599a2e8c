#include "admin/page_preview.hpp"

#include <leptonica/allheaders.h>

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

}  // namespace docpipe::core::admin
