#include "decode.hpp"

#include <leptonica/allheaders.h>
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-image.h>
#include <poppler/cpp/poppler-page-renderer.h>
#include <poppler/cpp/poppler-page.h>

#include <cstdio>
#include <memory>
#include <mutex>

#include <poppler/cpp/poppler-global.h>

#include <fmt/core.h>

#include "docpipe/component.hpp"

namespace docpipe::imaging {

namespace {

struct PixDeleter {
    void operator()(PIX* p) const { pixDestroy(&p); }
};
using PixPtr = std::unique_ptr<PIX, PixDeleter>;

[[noreturn]] void bad(const Part& part, const std::string& why) { throw BadInput(part.name + ": " + why); }

void check_size(const Part& part, const DecodeLimits& limits) {
    if (!part.bytes || part.bytes->empty()) bad(part, "empty file (0 bytes)");
    if (part.bytes->size() > limits.max_bytes)
        bad(part, fmt::format("{} bytes, above the limit of {} bytes", part.bytes->size(), limits.max_bytes));
}

void check_megapixels(const Part& part, double width, double height, const DecodeLimits& limits, int page) {
    const double mp = width * height / 1e6;
    if (mp > limits.max_megapixels)
        bad(part, fmt::format("page {} is {:.0f}x{:.0f} pixels ({:.1f} megapixels), above the limit of {} megapixels; "
                              "not decoded", page + 1, width, height, mp, limits.max_megapixels));
}

// 8-bit gray stays gray; everything else becomes 8-bit RGB.
Image to_image(PIX* pix) {
    Image img;
    PixPtr converted;
    bool gray = pixGetDepth(pix) < 32;
    if (PIXCMAP* cmap = pixGetColormap(pix)) {
        l_int32 has_color = 0;
        pixcmapHasColor(cmap, &has_color);
        gray = has_color == 0;
    }
    converted.reset(gray ? pixConvertTo8(pix, 0) : pixConvertTo32(pix));
    if (!converted) throw std::runtime_error("pixel format conversion failed");
    img.width = pixGetWidth(converted.get());
    img.height = pixGetHeight(converted.get());
    img.channels = gray ? 1 : 3;
    img.dpi = pixGetXRes(pix);
    auto pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(img.width) * img.height * img.channels);
    const l_uint32* data = pixGetData(converted.get());
    const l_int32 wpl = pixGetWpl(converted.get());
    for (int y = 0; y < img.height; ++y) {
        const l_uint32* line = data + static_cast<std::ptrdiff_t>(y) * wpl;
        std::uint8_t* out = pixels->data() + static_cast<std::size_t>(y) * img.width * img.channels;
        for (int x = 0; x < img.width; ++x) {
            if (gray) {
                out[x] = static_cast<std::uint8_t>(GET_DATA_BYTE(line, x));
            } else {
                l_int32 r, g, b;
                extractRGBValues(line[x], &r, &g, &b);
                out[3 * x] = static_cast<std::uint8_t>(r);
                out[3 * x + 1] = static_cast<std::uint8_t>(g);
                out[3 * x + 2] = static_cast<std::uint8_t>(b);
            }
        }
    }
    img.pixels = std::move(pixels);
    return img;
}

}  // namespace

void quiet_libraries() {
    // Their own stderr chatter ("Error in pixReadStreamJpeg", "poppler/error: ...") would
    // bypass our logs; every failure is reported through BadInput instead.
    static std::once_flag once;
    std::call_once(once, [] {
        setMsgSeverity(L_SEVERITY_NONE);
        poppler::set_debug_error_function([](const std::string&, void*) {}, nullptr);
    });
}

bool is_pdf(const Part& part) {
    if (part.media_type == "application/pdf") return true;
    return part.bytes && part.bytes->size() >= 5 && std::equal(part.bytes->begin(), part.bytes->begin() + 5, "%PDF-");
}

std::vector<Page> decode_image(const Part& part, const DecodeLimits& limits) {
    check_size(part, limits);
    const l_uint8* data = part.bytes->data();
    const std::size_t size = part.bytes->size();
    l_int32 format = 0, w = 0, h = 0, bps = 0, spp = 0, cmap = 0;
    if (pixReadHeaderMem(data, size, &format, &w, &h, &bps, &spp, &cmap) != 0 || w <= 0 || h <= 0)
        bad(part, "not a readable image (unknown format, or a corrupt header)");
    check_megapixels(part, w, h, limits, 0);

    std::vector<Page> pages;
    if (format == IFF_TIFF || format == IFF_TIFF_G3 || format == IFF_TIFF_G4 || format == IFF_TIFF_LZW || format == IFF_TIFF_ZIP ||
        format == IFF_TIFF_PACKBITS || format == IFF_TIFF_RLE || format == IFF_TIFF_JPEG) {
        l_int32 count = 0;
        FILE* f = fmemopen(const_cast<l_uint8*>(data), size, "rb");
        if (!f || tiffGetCount(f, &count) != 0) {
            if (f) fclose(f);
            bad(part, "corrupt TIFF (page count unreadable)");
        }
        fclose(f);
        if (count > limits.max_pages) bad(part, fmt::format("{} pages, above the limit of {} pages", count, limits.max_pages));
        for (l_int32 i = 0; i < count; ++i) {
            PixPtr pix(pixReadMemTiff(data, size, i));
            if (!pix) bad(part, fmt::format("TIFF page {} cannot be decoded", i + 1));
            check_megapixels(part, pixGetWidth(pix.get()), pixGetHeight(pix.get()), limits, i);
            pages.push_back(Page{i, to_image(pix.get()), {}, std::nullopt});
        }
        return pages;
    }
    PixPtr pix;
    if (format == IFF_JFIF_JPEG) {
        // libjpeg only warns on a truncated file and fills the rest with gray; count the warnings.
        l_int32 warnings = 0;
        pix.reset(pixReadMemJpeg(data, size, 0, 1, &warnings, 0));
        if (!pix || warnings > 0)
            bad(part, fmt::format("truncated or corrupt JPEG (the data ends early or is damaged; {} decoder warning(s))", warnings));
    } else {
        pix.reset(pixReadMem(data, size));
    }
    if (!pix) bad(part, "the image data cannot be decoded (truncated or corrupt)");
    pages.push_back(Page{0, to_image(pix.get()), {}, std::nullopt});
    return pages;
}

std::vector<Page> decode_pdf(const Part& part, const DecodeLimits& limits) {
    check_size(part, limits);
    std::unique_ptr<poppler::document> doc(
        poppler::document::load_from_raw_data(reinterpret_cast<const char*>(part.bytes->data()), static_cast<int>(part.bytes->size())));
    if (!doc) bad(part, "not a readable PDF (truncated or corrupt)");
    if (doc->is_locked()) bad(part, "encrypted PDF, no password");
    const int count = doc->pages();
    if (count <= 0) bad(part, "PDF without pages");
    if (count > limits.max_pages) bad(part, fmt::format("{} pages, above the limit of {} pages", count, limits.max_pages));
    std::vector<Page> pages;
    poppler::page_renderer renderer;
    renderer.set_render_hint(poppler::page_renderer::antialiasing, true);
    renderer.set_render_hint(poppler::page_renderer::text_antialiasing, true);
    renderer.set_image_format(poppler::image::format_rgb24);
    for (int i = 0; i < count; ++i) {
        std::unique_ptr<poppler::page> page(doc->create_page(i));
        if (!page) bad(part, fmt::format("PDF page {} cannot be read", i + 1));
        Page out;
        out.index = i;
        if (limits.pdf_text_layer) {
            auto utf8 = page->text().to_utf8();
            std::string text(utf8.begin(), utf8.end());
            if (text.find_first_not_of(" \t\r\n\f") != std::string::npos) {
                out.text_layer = std::move(text);  // born-digital: its own text beats OCR
                pages.push_back(std::move(out));
                continue;
            }
        }
        const auto rect = page->page_rect();
        check_megapixels(part, rect.width() * limits.pdf_dpi / 72.0, rect.height() * limits.pdf_dpi / 72.0, limits, i);
        poppler::image img = renderer.render_page(page.get(), limits.pdf_dpi, limits.pdf_dpi);
        if (!img.is_valid()) bad(part, fmt::format("PDF page {} cannot be rendered", i + 1));
        Image image;
        image.width = img.width();
        image.height = img.height();
        image.channels = 3;
        image.dpi = limits.pdf_dpi;
        auto pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(image.width) * image.height * 3);
        for (int y = 0; y < image.height; ++y)
            std::copy_n(reinterpret_cast<const std::uint8_t*>(img.const_data()) + static_cast<std::ptrdiff_t>(y) * img.bytes_per_row(),
                        static_cast<std::size_t>(image.width) * 3, pixels->data() + static_cast<std::size_t>(y) * image.width * 3);
        image.pixels = std::move(pixels);
        out.image = std::move(image);
        pages.push_back(std::move(out));
    }
    return pages;
}

}  // namespace docpipe::imaging
