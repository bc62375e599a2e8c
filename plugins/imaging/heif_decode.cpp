#include "heif_decode.hpp"

#include <libheif/heif.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <string_view>

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

// libheif's message on one line (some end in a line break), and where it comes from.
std::string reason(const heif_error& error) {
    std::string text = error.message && *error.message ? error.message : "no reason given";
    std::replace(text.begin(), text.end(), '\n', ' ');
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text + " (libheif)";
}

std::uint32_t be32(const std::uint8_t* p) { return (std::uint32_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }

// The ftyp box's brands: the main one at 8, the compatible ones from 16 to the box's end.
bool has_brand(const std::uint8_t* data, std::size_t size, const std::initializer_list<std::string_view>& wanted) {
    if (size < 16 || std::memcmp(data + 4, "ftyp", 4) != 0) return false;
    const std::size_t box = std::min<std::size_t>(be32(data), std::min<std::size_t>(size, 1024));
    auto named = [&](std::size_t at) {
        const std::string_view brand(reinterpret_cast<const char*>(data + at), 4);
        return std::find(wanted.begin(), wanted.end(), brand) != wanted.end();
    };
    if (named(8)) return true;
    for (std::size_t at = 16; at + 4 <= box; at += 4)
        if (named(at)) return true;
    return false;
}

// How much wider or taller than declared a coded picture may be (HEVC and AV1 code whole
// blocks, and libheif crops them back).
constexpr std::int64_t kCodingPadding = 256;

bool is_avif(const std::uint8_t* data, std::size_t size) { return has_brand(data, size, {"avif", "avis"}); }

// The AV1 decoder to ask for: libaom, which reports through return values. dav1d, libheif's
// first choice, writes its complaints about corrupt data ("Error parsing OBU data") to stderr.
const char* quiet_av1_decoder() {
    std::array<const heif_decoder_descriptor*, 8> decoders{};
    const int count = heif_get_decoder_descriptors(heif_compression_AV1, decoders.data(), static_cast<int>(decoders.size()));
    for (int i = 0; i < count; ++i)
        if (const char* id = heif_decoder_descriptor_get_id_name(decoders[static_cast<std::size_t>(i)]); id && std::string_view(id) == "aom")
            return "aom";
    return nullptr;
}

}  // namespace

struct HeifFile::Parsed {
    std::unique_ptr<heif_context, ContextFree> context;
    std::unique_ptr<const heif_image_handle, HandleRelease> primary;
    std::int64_t width = 0, height = 0;            // after rotation and crop
    std::int64_t coded_width = 0, coded_height = 0;  // ispe: as coded, before them
    bool avif = false;
};

bool is_heif(const std::uint8_t* data, std::size_t size) {
    return has_brand(data, size, {"heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis"});
}

HeifFile::HeifFile(const std::string& name, const std::uint8_t* data, std::size_t size) : name_(name), parsed_(std::make_unique<Parsed>()) {
    if (size > static_cast<std::size_t>(INT_MAX)) bad(name, "a HEIF file over 2 GB");
    Parsed& f = *parsed_;
    f.avif = is_avif(data, size);
    f.context.reset(heif_context_alloc());
    if (!f.context) bad(name, "the HEIF decoder could not start (out of memory)");
    heif_context_set_max_decoding_threads(f.context.get(), 0);
    heif_error error = heif_context_read_from_memory_without_copy(f.context.get(), data, size, nullptr);
    if (error.code != heif_error_Ok) bad(name, "not a readable image (corrupt HEIF file: " + reason(error) + ")");
    heif_image_handle* handle = nullptr;
    error = heif_context_get_primary_image_handle(f.context.get(), &handle);
    if (error.code != heif_error_Ok) bad(name, "a HEIF file without a readable primary image: " + reason(error));
    f.primary.reset(handle);
    f.width = heif_image_handle_get_width(handle);
    f.height = heif_image_handle_get_height(handle);
    f.coded_width = std::max<std::int64_t>(heif_image_handle_get_ispe_width(handle), f.width);
    f.coded_height = std::max<std::int64_t>(heif_image_handle_get_ispe_height(handle), f.height);
    if (f.width <= 0 || f.height <= 0) bad(name, "not a readable image (a HEIF image without a width or height)");
    // libheif sizes what it decodes from the coded data (a grid's canvas, the HEVC picture),
    // not from the declared size checked against the page limits: a 652-byte file declaring
    // 640x320 held a 30000x30000 canvas. Nothing wider or taller than declared, give or take
    // the coder's padding, is decoded.
    heif_context_set_maximum_image_size_limit(
        f.context.get(), static_cast<int>(std::min<std::int64_t>(std::max(f.coded_width, f.coded_height) + kCodingPadding, INT_MAX)));
}

HeifFile::~HeifFile() = default;

std::int64_t HeifFile::width() const { return parsed_->width; }
std::int64_t HeifFile::height() const { return parsed_->height; }
// libheif's size limit is one length for both sides, so a file declaring 240x6000 may code
// up to 6256x6256 before it is refused: the budget holds room for that square, YCbCr and RGB.
std::size_t HeifFile::decoder_bytes() const {
    const auto side = static_cast<std::size_t>(std::max(parsed_->coded_width, parsed_->coded_height) + kCodingPadding);
    return side * side * 6;
}

Image HeifFile::decode() {
    Parsed& f = *parsed_;
    const bool alpha = heif_image_handle_has_alpha_channel(f.primary.get()) != 0;
    std::unique_ptr<heif_decoding_options, OptionsFree> options(heif_decoding_options_alloc());
    if (!options) bad(name_, "the HEIF decoder could not start (out of memory)");
    options->convert_hdr_to_8bit = 1;  // a 10-bit photo comes out as 8 bits a sample
    if (f.avif) options->decoder_id = quiet_av1_decoder();
    heif_image* decoded = nullptr;
    const heif_error error = heif_decode_image(f.primary.get(), &decoded, heif_colorspace_RGB,
                                               alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, options.get());
    std::unique_ptr<const heif_image, ImageRelease> image(decoded);
    if (error.code != heif_error_Ok || !image) bad(name_, "corrupt HEIF image: " + reason(error));
    int stride = 0;
    const std::uint8_t* plane = heif_image_get_plane_readonly(image.get(), heif_channel_interleaved, &stride);
    Image out;
    out.width = heif_image_get_width(image.get(), heif_channel_interleaved);
    out.height = heif_image_get_height(image.get(), heif_channel_interleaved);
    out.channels = 3;
    if (!plane || out.width <= 0 || out.height <= 0) bad(name_, "corrupt HEIF image: libheif gave no pixels");
    // The page limits were checked at the declared size; a picture bigger than that would
    // slip past the pixel budget.
    if (static_cast<std::int64_t>(out.width) * out.height > f.width * f.height)
        bad(name_, fmt::format("corrupt HEIF image: it decodes to {}x{} pixels, more than the {}x{} it declares", out.width, out.height,
                               f.width, f.height));
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
