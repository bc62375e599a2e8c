#include "heif_decode.hpp"

#include <libheif/heif.h>

#include <algorithm>
#include <climits>
#include <memory>

#include <fmt/core.h>

#include "docpipe/component.hpp"

namespace docpipe::imaging {

namespace {

[[noreturn]] void bad(const std::string& name, const std::string& why) { throw BadInput(name + ": " + why); }

struct ContextFree {
    void operator()(heif_context* c) const { heif_context_free(c); }
};
struct HandleRelease {
    void operator()(const heif_image_handle* h) const { heif_image_handle_release(h); }
};
struct ImageRelease {
    void operator()(const heif_image* i) const { heif_image_release(i); }
};
struct OptionsFree {
    void operator()(heif_decoding_options* o) const { heif_decoding_options_free(o); }
};

std::string reason(const heif_error& error) {
    return fmt::format("{} (libheif)", error.message && *error.message ? error.message : "no reason given");
}

// The file opened, and its primary image's handle. The context is reference-counted by the
// handle, but kept here anyway so that both go in one place.
struct Opened {
    std::unique_ptr<heif_context, ContextFree> context;
    std::unique_ptr<const heif_image_handle, HandleRelease> primary;
};

Opened open(const std::string& name, const std::uint8_t* data, std::size_t size) {
    if (size > static_cast<std::size_t>(INT_MAX)) bad(name, "a HEIF file over 2 GB");
    const heif_filetype_result kind = heif_check_filetype(data, static_cast<int>(size));
    if (kind == heif_filetype_yes_unsupported)
        bad(name, "a HEIF image in a coding this build of libheif cannot decode (neither HEVC nor AV1)");
    Opened f;
    f.context.reset(heif_context_alloc());
    if (!f.context) bad(name, "the HEIF decoder could not start (out of memory)");
    // Tiles are decoded in this thread: documents are already decoded several at a time.
    heif_context_set_max_decoding_threads(f.context.get(), 0);
    heif_error error = heif_context_read_from_memory_without_copy(f.context.get(), data, size, nullptr);
    if (error.code != heif_error_Ok) bad(name, "not a readable image (corrupt HEIF file: " + reason(error) + ")");
    heif_image_handle* handle = nullptr;
    error = heif_context_get_primary_image_handle(f.context.get(), &handle);
    if (error.code != heif_error_Ok) bad(name, "a HEIF file without a readable primary image: " + reason(error));
    f.primary.reset(handle);
    return f;
}

}  // namespace

bool is_heif(const std::uint8_t* data, std::size_t size) {
    if (size < 12) return false;
    const heif_filetype_result kind = heif_check_filetype(data, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    return kind == heif_filetype_yes_supported || kind == heif_filetype_yes_unsupported;
}

HeifSize read_heif_size(const std::string& name, const std::uint8_t* data, std::size_t size) {
    const Opened f = open(name, data, size);
    return {heif_image_handle_get_width(f.primary.get()), heif_image_handle_get_height(f.primary.get())};
}

Image decode_heif(const std::string& name, const std::uint8_t* data, std::size_t size) {
    const Opened f = open(name, data, size);
    const bool alpha = heif_image_handle_has_alpha_channel(f.primary.get()) != 0;
    std::unique_ptr<heif_decoding_options, OptionsFree> options(heif_decoding_options_alloc());
    if (options) options->convert_hdr_to_8bit = 1;  // a 10-bit photo comes out as 8 bits a sample
    heif_image* decoded = nullptr;
    const heif_error error = heif_decode_image(f.primary.get(), &decoded, heif_colorspace_RGB,
                                               alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, options.get());
    std::unique_ptr<const heif_image, ImageRelease> image(decoded);
    if (error.code != heif_error_Ok || !image) bad(name, "corrupt HEIF image: " + reason(error));
    int stride = 0;
    const std::uint8_t* plane = heif_image_get_plane_readonly(image.get(), heif_channel_interleaved, &stride);
    Image out;
    out.width = heif_image_get_width(image.get(), heif_channel_interleaved);
    out.height = heif_image_get_height(image.get(), heif_channel_interleaved);
    out.channels = 3;
    if (!plane || out.width <= 0 || out.height <= 0) bad(name, "corrupt HEIF image: libheif gave no pixels");
    // The header check sized the page from the primary image's handle; a decoder that made
    // more of it than that would slip past the pixel budget.
    const std::int64_t planned = static_cast<std::int64_t>(heif_image_handle_get_width(f.primary.get())) *
                                 heif_image_handle_get_height(f.primary.get());
    if (static_cast<std::int64_t>(out.width) * out.height > planned)
        bad(name, fmt::format("corrupt HEIF image: it decodes to {}x{} pixels, more than its header's {}x{}", out.width, out.height,
                              heif_image_handle_get_width(f.primary.get()), heif_image_handle_get_height(f.primary.get())));
    const int in_channels = alpha ? 4 : 3;
    const bool premultiplied = alpha && heif_image_handle_is_premultiplied_alpha(f.primary.get()) != 0;
    auto pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(out.width) * out.height * 3);
    for (int y = 0; y < out.height; ++y) {
        const std::uint8_t* in = plane + static_cast<std::ptrdiff_t>(y) * stride;
        std::uint8_t* row = pixels->data() + static_cast<std::size_t>(y) * out.width * 3;
        for (int x = 0; x < out.width; ++x) {
            const std::uint8_t* p = in + static_cast<std::ptrdiff_t>(x) * in_channels;
            if (!alpha) {
                std::copy_n(p, 3, row + 3 * x);
                continue;
            }
            // Laid over white paper: what alpha leaves out is white.
            const unsigned a = p[3];
            for (int c = 0; c < 3; ++c)
                row[3 * x + c] = static_cast<std::uint8_t>(premultiplied ? std::min(255u, p[c] + 255 - a) : (p[c] * a + 255 * (255 - a) + 127) / 255);
        }
    }
    out.pixels = std::move(pixels);
    return out;
}

}  // namespace docpipe::imaging
