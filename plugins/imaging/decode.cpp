#include "decode.hpp"

#include <leptonica/allheaders.h>
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-image.h>
#include <poppler/cpp/poppler-page-renderer.h>
#include <poppler/cpp/poppler-page.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csetjmp>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include <poppler/cpp/poppler-global.h>

// After <cstdio>: jpeglib.h uses FILE and size_t without including their headers.
#include <jpeglib.h>
#include <png.h>
// The message codes (JWRN_JPEG_EOF): jpeglib.h brings them only with its internals.
#include <jerror.h>
#include <webp/decode.h>
#include <webp/demux.h>

#include <fmt/core.h>

#include "budget.hpp"
#include "docpipe/component.hpp"
#include "heif_decode.hpp"
#include "pdf_jpegs.hpp"
#include "tiff_decode.hpp"

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

// A page's size, as it will be decoded or rendered, against the page limits.
void check_planned(const Part& part, int page, std::int64_t width, std::int64_t height, const DecodeLimits& limits) {
    check_page(fmt::format("{}: page {}", part.name, page + 1), width, height, {limits.max_megapixels, limits.max_aspect_ratio},
               "; not decoded");
}

// Leptonica only names the format here; libtiff reads the pages (tiff_decode.cpp).
bool is_tiff(l_int32 format) {
    return format == IFF_TIFF || format == IFF_TIFF_G3 || format == IFF_TIFF_G4 || format == IFF_TIFF_LZW || format == IFF_TIFF_ZIP ||
           format == IFF_TIFF_PACKBITS || format == IFF_TIFF_RLE || format == IFF_TIFF_JPEG;
}

std::uint32_t le16(const l_uint8* p) { return p[0] | (p[1] << 8); }
std::uint32_t le32(const l_uint8* p) { return le16(p) | (le16(p + 2) << 16); }

// Leptonica's header reader decodes a whole BMP or GIF to learn its size ("cheating: read
// the pix"), which is the very allocation the header check is there to avoid. Their
// sizes are read here instead, from the bytes.
struct HeaderSize {
    std::int64_t width = 0, height = 0;
    std::size_t frame_pixels = 0;  // GIF: giflib holds every frame decoded at once
    int frames = 0;                // GIF: its image descriptors
};

std::optional<HeaderSize> bmp_size(const l_uint8* d, std::size_t n) {
    if (n < 26 || d[0] != 'B' || d[1] != 'M') return std::nullopt;
    HeaderSize s;
    if (le32(d + 14) == 12) {  // OS/2 core header: 16-bit sizes
        s.width = le16(d + 18);
        s.height = le16(d + 20);
    } else {  // signed 32-bit; a negative height is a top-down bitmap
        s.width = std::llabs(static_cast<std::int32_t>(le32(d + 18)));
        s.height = std::llabs(static_cast<std::int32_t>(le32(d + 22)));
    }
    return s;
}

// The logical screen and every frame's descriptor, walking the GIF's blocks without
// decompressing them.
std::optional<HeaderSize> gif_size(const l_uint8* d, std::size_t n) {
    if (n < 13 || std::string_view(reinterpret_cast<const char*>(d), 3) != "GIF") return std::nullopt;
    HeaderSize s;
    s.width = le16(d + 6);
    s.height = le16(d + 8);
    std::size_t pos = 13;
    if (d[10] & 0x80) pos += 3u << ((d[10] & 7) + 1);  // global colour table
    const auto skip_sub_blocks = [&] {
        while (pos < n) {
            const std::size_t len = d[pos++];
            if (len == 0) return;
            pos += len;
        }
    };
    while (pos < n) {
        const l_uint8 block = d[pos++];
        if (block == 0x2C) {  // image descriptor: left, top, width, height, flags
            if (pos + 9 > n) break;
            const std::int64_t w = le16(d + pos + 4), h = le16(d + pos + 6);
            const l_uint8 flags = d[pos + 8];
            pos += 9;
            if (flags & 0x80) pos += 3u << ((flags & 7) + 1);  // local colour table
            pos += 1;                                          // LZW minimum code size
            skip_sub_blocks();
            s.width = std::max(s.width, w);
            s.height = std::max(s.height, h);
            s.frame_pixels += static_cast<std::size_t>(w * h);
            ++s.frames;
        } else if (block == 0x21) {  // extension: label, then sub-blocks
            pos += 1;
            skip_sub_blocks();
        } else {
            break;  // 0x3B trailer, or damage the decoder will report
        }
    }
    return s;
}

// An animated WebP's first frame as shown (libwebpdemux composes it on the canvas), on
// white where it is transparent (a sticker's background). Leptonica reads only still WebPs:
// an animated one failed as "truncated or corrupt". `frames` is set to its frame count.
Image decode_animated_webp(const Part& part, const std::uint8_t* data, std::size_t size, int& frames) {
    const WebPData webp{data, size};
    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options)) bad(part, "animated WebP: libwebpdemux does not match its header");
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> decoder(WebPAnimDecoderNew(&webp, &options), WebPAnimDecoderDelete);
    if (!decoder) bad(part, "animated WebP whose frames cannot be read (truncated or corrupt)");
    WebPAnimInfo info{};
    WebPAnimDecoderGetInfo(decoder.get(), &info);
    std::uint8_t* canvas = nullptr;
    int timestamp = 0;
    if (info.canvas_width == 0 || info.canvas_height == 0 || !WebPAnimDecoderGetNext(decoder.get(), &canvas, &timestamp) || !canvas)
        bad(part, "animated WebP whose first frame cannot be decoded (truncated or corrupt)");
    frames = static_cast<int>(info.frame_count);
    Image img;
    img.width = static_cast<int>(info.canvas_width);
    img.height = static_cast<int>(info.canvas_height);
    img.channels = 3;
    auto pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(img.width) * img.height * 3);
    const std::size_t count = static_cast<std::size_t>(img.width) * img.height;
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint8_t* p = canvas + i * 4;
        for (int c = 0; c < 3; ++c)  // over white: c * a + 255 * (255 - a), over 255
            (*pixels)[i * 3 + c] = static_cast<std::uint8_t>((p[c] * p[3] + 255 * (255 - p[3]) + 127) / 255);
    }
    img.pixels = std::move(pixels);
    return img;
}

bool is_animated_webp(const std::uint8_t* data, std::size_t size) {
    WebPBitstreamFeatures features{};
    return WebPGetFeatures(data, size, &features) == VP8_STATUS_OK && features.has_animation;
}

// The note on a page taken from the first frame of several: the receipt may be in another.
std::string only_the_first_frame(std::string_view what, int frames) {
    return fmt::format("page 1: {} of {} frames: only the first is read (the receipt may be in another frame); ask the sender for a "
                       "still photo",
                       what, frames);
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

// libjpeg's messages kept for the caller instead of printed. Leptonica's JPEG reader installs
// libjpeg's default handlers, which write warnings such as "Premature end of JPEG file"
// straight to stderr, through an operator's progress line and outside the node's log; so a
// JPEG is decoded here, with libjpeg itself, and its messages go into the error it causes.
//
// A warning while the header is read (an unknown JFIF revision, padding before a table) says
// nothing of the pixels: it goes to the node's log. One after it is about the image data:
// the first is kept with the row and the scan it came at. A hostile file can make libjpeg
// warn or start a scan endlessly (a 200 KB progressive file of 20,000 empty scans held a
// CPU for over a minute), so past kMaxWarnings warnings or kMaxScans scans it stops.
constexpr int kMaxWarnings = 1000;
constexpr int kMaxScans = 500;  // an ordinary progressive file has about ten

struct JpegMessages {
    jpeg_error_mgr mgr;  // libjpeg reaches this struct through cinfo->err, which points here
    jpeg_progress_mgr progress{};
    std::jmp_buf fatal;
    bool header_read = false;
    int warnings = 0;  // about the image data
    char first_warning[JMSG_LENGTH_MAX] = {};
    int first_code = 0;
    unsigned first_row = 0;  // output_scanline at the first data warning
    int first_scan = 0;      // input_scan_number at the first data warning
    char error[JMSG_LENGTH_MAX] = {};

    static JpegMessages& of(j_common_ptr cinfo) { return *reinterpret_cast<JpegMessages*>(cinfo->err); }
    static void on_error(j_common_ptr cinfo) {
        JpegMessages& self = of(cinfo);
        (*cinfo->err->format_message)(cinfo, self.error);
        std::longjmp(self.fatal, 1);
    }
    [[noreturn]] static void give_up(j_common_ptr cinfo, const char* why) {
        JpegMessages& self = of(cinfo);
        std::snprintf(self.error, sizeof self.error, "%s", why);
        std::longjmp(self.fatal, 1);
    }
    static void on_message(j_common_ptr cinfo, int level) {
        if (level >= 0) return;  // trace messages: libjpeg's debugging aid
        JpegMessages& self = of(cinfo);
        char text[JMSG_LENGTH_MAX] = {};
        (*cinfo->err->format_message)(cinfo, text);
        if (!self.header_read) {
            to_library_logger("libjpeg", text);
            return;
        }
        if (self.warnings++ == 0) {
            std::memcpy(self.first_warning, text, sizeof text);
            self.first_code = cinfo->err->msg_code;
            const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
            self.first_row = d->output_scanline;
            self.first_scan = d->input_scan_number;
        }
        if (self.warnings > kMaxWarnings) give_up(cinfo, "more than 1000 corrupt-data warnings; not read further");
    }
    static void on_progress(j_common_ptr cinfo) {
        if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxScans)
            give_up(cinfo, "more than 500 scans (an ordinary progressive JPEG has about ten); not read further");
    }
    static void print_nothing(j_common_ptr) {}

    void install(jpeg_decompress_struct& cinfo) {
        cinfo.err = jpeg_std_error(&mgr);
        mgr.error_exit = &on_error;
        mgr.emit_message = &on_message;
        mgr.output_message = &print_nothing;
        progress.progress_monitor = &on_progress;
        cinfo.progress = &progress;
    }
};

// The EXIF orientation (1-8) of a JPEG's APP1 segment, 1 when there is none or it cannot be
// read. A phone stores a portrait photo's pixels as the sensor saw them, sideways, and says
// so here (6: turn 90 degrees clockwise to view); Leptonica and libjpeg ignore it, and the
// OCR then read the receipt on its side. Every offset is checked: the segment is the
// sender's bytes.
int exif_orientation(const jpeg_decompress_struct& cinfo) {
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1 || m->data_length < 14 || std::memcmp(m->data, "Exif\0\0", 6) != 0) continue;
        const std::uint8_t* tiff = m->data + 6;
        const std::size_t size = m->data_length - 6;
        const bool big = tiff[0] == 'M' && tiff[1] == 'M';
        if (!big && !(tiff[0] == 'I' && tiff[1] == 'I')) return 1;
        auto u16 = [&](std::size_t at) -> std::uint32_t { return big ? (tiff[at] << 8) | tiff[at + 1] : tiff[at] | (tiff[at + 1] << 8); };
        auto u32 = [&](std::size_t at) -> std::uint32_t { return big ? (u16(at) << 16) | u16(at + 2) : u16(at) | (u16(at + 2) << 16); };
        if (u16(2) != 42) return 1;
        const std::size_t ifd = u32(4);
        if (ifd + 2 > size) return 1;
        const std::size_t entries = u16(ifd);
        for (std::size_t k = 0; k < entries && ifd + 2 + 12 * (k + 1) <= size; ++k) {
            const std::size_t entry = ifd + 2 + 12 * k;
            if (u16(entry) != 0x0112) continue;                            // Orientation
            if (u16(entry + 2) != 3 || u32(entry + 4) != 1) return 1;     // one SHORT
            const std::uint32_t value = u16(entry + 8);
            return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
        }
        return 1;
    }
    return 1;
}

// The image as it is meant to be viewed, for EXIF orientation 2-8 (the TIFF convention: 2
// and 4 are mirrored, 3 is upside down, 5-8 are turned a quarter, 5 and 7 mirrored too).
Image oriented(const Image& in, int orientation) {
    if (orientation <= 1 || orientation > 8) return in;
    const bool turned = orientation >= 5;
    Image out = in;
    out.width = turned ? in.height : in.width;
    out.height = turned ? in.width : in.height;
    auto pixels = std::make_shared<std::vector<std::uint8_t>>(in.pixels->size());
    const int c = in.channels, W = in.width, H = in.height;
    for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x) {
            int sx = x, sy = y;
            switch (orientation) {
                case 2: sx = W - 1 - x; break;
                case 3: sx = W - 1 - x, sy = H - 1 - y; break;
                case 4: sy = H - 1 - y; break;
                case 5: sx = y, sy = x; break;
                case 6: sx = y, sy = H - 1 - x; break;
                case 7: sx = W - 1 - y, sy = H - 1 - x; break;
                case 8: sx = W - 1 - y, sy = x; break;
            }
            std::memcpy(pixels->data() + (static_cast<std::size_t>(y) * out.width + x) * c,
                        in.pixels->data() + (static_cast<std::size_t>(sy) * W + sx) * c, static_cast<std::size_t>(c));
        }
    out.pixels = std::move(pixels);
    return out;
}

// A JPEG's size and components from its header, read with the handlers above: a header
// libjpeg cannot read fails with libjpeg's reason. (Warnings are left to decode_jpeg.)
struct JpegHeader {
    std::int64_t width = 0, height = 0;
    int components = 0;
    bool several_scans = false;  // progressive, or one scan per colour
};
JpegHeader read_jpeg_header(const Part& part, const std::uint8_t* data, std::size_t size) {
    jpeg_decompress_struct cinfo{};
    JpegMessages messages;
    messages.install(cinfo);
    if (setjmp(messages.fatal) != 0) {
        jpeg_destroy_decompress(&cinfo);
        bad(part, fmt::format("not a readable image (corrupt JPEG header: {}; libjpeg)", messages.error));
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
    const JpegHeader header{cinfo.image_width, cinfo.image_height, cinfo.num_components, jpeg_has_multiple_scans(&cinfo) != 0};
    jpeg_destroy_decompress(&cinfo);
    return header;
}

// The JPEG as an Image: gray stays one channel, colour becomes RGB, CMYK becomes RGB. The
// pixels and the dpi are those Leptonica's reader gives, from the same libjpeg with its
// default (accurate) settings; but for CMYK without Adobe's marker, where Leptonica left the
// black ink uninverted and turned white paper black.
//
// libjpeg decodes a damaged file with warnings rather than failing: the rows after the end
// of a truncated file are gray, and corrupt data garbles or blanks the blocks after it
// (train 427: a band under the barcode). Where the first data warning came says how much is
// whole. In a file of one scan with no restart markers, the rows from there on are lost: when
// that leaves less than `kWholeEnough` of the page, the file is bad input naming the row. A
// file of several scans (progressive, or one scan per colour) is read whole before a row
// comes out: a break in its first scan leaves most of the page missing (bad input), a later
// one leaves it whole but blurred or pale. Otherwise the page is kept, and `damage` says
// what libjpeg found, so the document carries it (a trace entry) and a person checks what
// was read from it. A file that only lacks its end marker after the last row is whole.
constexpr double kWholeEnough = 0.9;

// `scale_denom` (1, 2, 4 or 8) decodes at that fraction of the size: libjpeg still reads all
// of the coded data, so damage is found as at full size, for much less work (the check of a
// PDF's JPEGs). Rows in the messages are then rows of the smaller picture.
// `pdf_image`: the JPEG is one a PDF page draws, which poppler renders. Its damage is said
// of the image, not the page, and a JPEG of several scans that is damaged (or only lacks
// its end marker) is said to be missing, since poppler then draws none of it.
Image decode_jpeg(const Part& part, const std::uint8_t* data, std::size_t size, std::string& damage, int& orientation,
                  unsigned scale_denom = 1, bool pdf_image = false) {
    jpeg_decompress_struct cinfo{};
    JpegMessages messages;
    messages.install(cinfo);
    // Made before setjmp, so a longjmp skips no constructor or destructor; the buffers are
    // on the heap, since a local changed after setjmp is indeterminate after a longjmp.
    Image img;
    auto pixels = std::make_shared<std::vector<std::uint8_t>>();
    const auto cmyk_buffer = std::make_unique<std::vector<JSAMPLE>>();
    if (setjmp(messages.fatal) != 0) {
        jpeg_destroy_decompress(&cinfo);
        bad(part, fmt::format("corrupt JPEG: {} (libjpeg)", messages.error));
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);  // EXIF, for the orientation
    jpeg_read_header(&cinfo, TRUE);
    messages.header_read = true;
    orientation = exif_orientation(cinfo);
    const bool several_scans = jpeg_has_multiple_scans(&cinfo) != 0;
    const bool restarts = cinfo.restart_interval != 0;
    const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    const bool gray = cinfo.num_components == 1;
    cinfo.out_color_space = gray ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.scale_num = 1;
    cinfo.scale_denom = scale_denom;
    jpeg_start_decompress(&cinfo);
    img.width = static_cast<int>(cinfo.output_width);
    img.height = static_cast<int>(cinfo.output_height);
    img.channels = gray ? 1 : 3;
    // The rows one decoding step yields: a warning about the end marker may come while the
    // last of them are still being put out, though their data was all there.
    const unsigned last_step_rows = std::max(1u, static_cast<unsigned>(cinfo.max_v_samp_factor) * DCTSIZE / scale_denom);
    if (cinfo.density_unit == 1) img.dpi = cinfo.X_density;  // dots per inch
    if (cinfo.density_unit == 2) img.dpi = static_cast<int>(cinfo.X_density * 2.54 + 0.5);  // per centimetre
    pixels->resize(static_cast<std::size_t>(img.width) * img.height * img.channels);
    std::vector<JSAMPLE>& cmyk_row = *cmyk_buffer;
    if (cmyk) cmyk_row.resize(static_cast<std::size_t>(img.width) * 4);
    // Adobe's files store CMYK inverted (255 is no ink); others store ink.
    const bool inverted = cinfo.saw_Adobe_marker != 0;
    while (cinfo.output_scanline < cinfo.output_height) {
        std::uint8_t* out = pixels->data() + static_cast<std::size_t>(cinfo.output_scanline) * img.width * img.channels;
        JSAMPROW row = cmyk ? cmyk_row.data() : out;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (!cmyk) continue;
        for (int x = 0; x < img.width; ++x) {
            int ink[4];
            for (int c = 0; c < 4; ++c) ink[c] = inverted ? cmyk_row[4 * x + c] : 255 - cmyk_row[4 * x + c];
            for (int c = 0; c < 3; ++c) out[3 * x + c] = static_cast<std::uint8_t>(ink[c] * ink[3] / 255);
        }
    }
    const unsigned full_height = cinfo.image_height;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    img.pixels = std::move(pixels);
    if (messages.warnings == 0) return img;

    const std::string warnings = fmt::format("libjpeg: {}{}", messages.first_warning,
                                             messages.warnings > 1 ? fmt::format(", and {} more warning(s)", messages.warnings - 1) : "");
    const bool ended = messages.first_code == JWRN_JPEG_EOF;
    const unsigned row = messages.first_row, height = static_cast<unsigned>(img.height);
    // Messages name rows of the picture as stored, whatever scale it was decoded at.
    const unsigned shown_height = full_height, shown_row = std::min(row * scale_denom, full_height);
    if (several_scans && pdf_image) {
        damage = fmt::format("{} JPEG of several scans (progressive, or one scan per colour): the data {} in scan {}, and poppler "
                             "draws none of such an image, so it is missing from the page ({})",
                             ended ? "truncated" : "corrupt", ended ? "ends" : "breaks", messages.first_scan, warnings);
        return img;
    }
    if (several_scans) {
        if (messages.first_scan <= 1)
            bad(part, fmt::format("{} JPEG: the data {} in the first of its scans, so most of the page is missing ({})",
                                  ended ? "truncated" : "corrupt", ended ? "ends" : "breaks", warnings));
        damage = fmt::format("damaged JPEG: the data {} in scan {}; in a JPEG of several scans that leaves the page blurred or "
                             "its colours partly missing ({})",
                             ended ? "ends" : "breaks", messages.first_scan, warnings);
        return img;
    }
    if (ended && messages.warnings == 1 && row + last_step_rows >= height) {
        to_library_logger("libjpeg", fmt::format("{}: the file ends without its end marker, after its last row", part.name));
        return img;
    }
    if (row >= height) {  // after the last row: junk before the end marker, data out of step somewhere
        damage = fmt::format("damaged JPEG: parts of the page may be garbled ({})", warnings);
        return img;
    }
    if (restarts && !ended) {  // the decoder picks up again at the next restart marker
        damage = fmt::format("damaged JPEG: corrupt data from row {} of {}; a band after it may be garbled ({})", shown_row, shown_height, warnings);
        return img;
    }
    if (row < kWholeEnough * height)
        bad(part, fmt::format("{} JPEG: the data {} at row {} of {}, so {:.0f}% of the {} is missing ({})", ended ? "truncated" : "corrupt",
                              ended ? "ends" : "breaks", shown_row, shown_height, 100.0 * (height - row) / height,
                              pdf_image ? "image" : "page", warnings));
    damage = fmt::format("damaged JPEG: the data {} at row {} of {}; the rows after it are blank or garbled ({})", ended ? "ends" : "breaks",
                         shown_row, shown_height, warnings);
    return img;
}

// A PNG as an Image, decoded with libpng itself for the same reason as a JPEG: Leptonica
// installs libpng's default handlers, which print "libpng warning: iCCP: known incorrect
// sRGB profile" and the like to stderr. Warnings (about ancillary chunks: they do not touch
// the pixels) go to the node's log at debug level; an error fails the part with libpng's
// reason. The pixels and the dpi are those Leptonica's reader gave: 16-bit samples cut to
// 8, alpha left out, gray (and a palette of grays) one channel, everything else (gray with
// alpha too) RGB.
struct PngMessages {
    std::jmp_buf fatal;
    char error[256] = {};
    static void on_error(png_structp png, png_const_charp message) {
        auto* self = static_cast<PngMessages*>(png_get_error_ptr(png));
        std::snprintf(self->error, sizeof self->error, "%s", message ? message : "unknown error");
        std::longjmp(self->fatal, 1);
    }
    static void on_warning(png_structp, png_const_charp message) { to_library_logger("libpng", message ? message : ""); }
};

struct PngBytes {
    const std::uint8_t* data;
    std::size_t size, at = 0;
    static void read(png_structp png, png_bytep out, png_size_t count) {
        auto* self = static_cast<PngBytes*>(png_get_io_ptr(png));
        if (self->size - self->at < count) png_error(png, "the data ends early (truncated file)");
        std::memcpy(out, self->data + self->at, count);
        self->at += count;
    }
};

Image decode_png(const Part& part, const std::uint8_t* data, std::size_t size) {
    PngMessages messages;
    PngBytes source{data, size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &messages, &PngMessages::on_error, &PngMessages::on_warning);
    if (!png) bad(part, "the PNG decoder could not start (out of memory)");
    png_infop info = png_create_info_struct(png);
    // Made before setjmp, so a longjmp skips no constructor or destructor; the buffers are
    // on the heap, since a local changed after setjmp is indeterminate after a longjmp.
    Image img;
    auto pixels = std::make_shared<std::vector<std::uint8_t>>();
    const auto rgb_buffer = std::make_unique<std::vector<std::uint8_t>>();
    const auto row_buffer = std::make_unique<std::vector<png_bytep>>();
    if (setjmp(messages.fatal) != 0) {
        png_destroy_read_struct(&png, &info, nullptr);
        bad(part, fmt::format("corrupt PNG: {} (libpng)", messages.error));
    }
    if (!info) png_error(png, "out of memory");
    png_set_read_fn(png, &source, &PngBytes::read);
    png_read_info(png, info);
    const int color_type = png_get_color_type(png, info);
    // Gray with alpha becomes RGB, as Leptonica (which made it RGBA) gave it.
    bool gray = color_type == PNG_COLOR_TYPE_GRAY;
    if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp palette = nullptr;
        int entries = 0;
        png_get_PLTE(png, info, &palette, &entries);
        gray = true;
        for (int k = 0; k < entries; ++k) gray = gray && palette[k].red == palette[k].green && palette[k].green == palette[k].blue;
        png_set_palette_to_rgb(png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    img.width = static_cast<int>(png_get_image_width(png, info));
    img.height = static_cast<int>(png_get_image_height(png, info));
    const int decoded_channels = png_get_channels(png, info);  // 1 or 3 after the transforms above
    img.channels = gray ? 1 : 3;
    png_uint_32 x_per_metre = 0, y_per_metre = 0;
    int unit = 0;
    if (png_get_pHYs(png, info, &x_per_metre, &y_per_metre, &unit) && unit == PNG_RESOLUTION_METER)
        img.dpi = static_cast<int>(static_cast<float>(x_per_metre) / 39.37f + 0.5f);
    // A palette of grays is decoded as RGB and kept as one channel.
    std::vector<std::uint8_t>& rgb = *rgb_buffer;
    std::vector<png_bytep>& rows = *row_buffer;
    rgb.resize(static_cast<std::size_t>(img.width) * img.height * decoded_channels);
    rows.resize(static_cast<std::size_t>(img.height));
    for (int y = 0; y < img.height; ++y) rows[static_cast<std::size_t>(y)] = rgb.data() + static_cast<std::size_t>(y) * img.width * decoded_channels;
    png_read_image(png, rows.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    if (decoded_channels == img.channels) {
        *pixels = std::move(rgb);
    } else {
        pixels->resize(static_cast<std::size_t>(img.width) * img.height);
        for (std::size_t k = 0; k < pixels->size(); ++k) (*pixels)[k] = rgb[k * static_cast<std::size_t>(decoded_channels)];
    }
    img.pixels = std::move(pixels);
    return img;
}

// Decoding a page holds, besides the page we keep: Leptonica's PIX (up to 4 bytes a pixel)
// and its converted copy (as much again); rendering a PDF page, poppler's bitmap and image
// (4 bytes a pixel each). An over-estimate for gray and bilevel sources, on purpose.
constexpr std::size_t kDecoderBytesPerPixel = 8;

// What is wrong with one JPEG a PDF page draws (pdf_jpegs.hpp), or "" when nothing is: the
// judgement decode_jpeg makes of a JPEG file, at an eighth of the size. Even a JPEG that as a
// file would be refused ("truncated JPEG: ... 40% of the image is missing") is only a note
// here: the rest of the page may hold the receipt's text, so the page is read, and the note
// sends what is read from it to a person.
//
// The check costs what the picture's header declares, not what its bytes hold: a 1.5 KB
// progressive JPEG declaring 190 megapixels made libjpeg hold 1.6 GB and work for seconds.
// So a JPEG over kCheckedMegapixels (one of several scans over kCheckedMultiScanMegapixels)
// is left to poppler unchecked, as is every JPEG once a PDF's checks have declared
// kCheckedMegapixelsPerPdf together; each is said in the log. A receipt photo is 2-16 MP.
constexpr double kCheckedMegapixels = 50;
constexpr double kCheckedMultiScanMegapixels = 16;
constexpr double kCheckedMegapixelsPerPdf = 400;

struct PdfJpegVerdict {
    std::string damage;  // "" when none was found
    std::string unchecked;  // why it was not checked, when it was not
};

PdfJpegVerdict pdf_jpeg_damage(const PdfJpeg& jpeg, double& megapixels_checked) {
    Part image;
    image.name = "image";  // the caller names the PDF, the page and the image
    // Bytes before the JPEG's start marker (a line break, zero padding) are skipped, as
    // poppler's decoder skips them.
    std::size_t start = 0;
    while (start + 1 < jpeg.bytes.size() && !(jpeg.bytes[start] == 0xFF && jpeg.bytes[start + 1] == 0xD8)) ++start;
    if (start + 1 >= jpeg.bytes.size()) start = 0;  // no start marker: libjpeg says what it is not
    const std::uint8_t* data = jpeg.bytes.data() + start;
    const std::size_t size = jpeg.bytes.size() - start;
    auto without_name = [](std::string message) { return message.rfind("image: ", 0) == 0 ? message.substr(7) : message; };
    try {
        const JpegHeader header = read_jpeg_header(image, data, size);
        const double megapixels = static_cast<double>(header.width) * static_cast<double>(header.height) / 1e6;
        const double limit = header.several_scans ? kCheckedMultiScanMegapixels : kCheckedMegapixels;
        if (megapixels > limit)
            return {"", fmt::format("it declares {}x{} pixels, over the {} megapixels checked{}", header.width, header.height, limit,
                                    header.several_scans ? " for a JPEG of several scans" : "")};
        if (megapixels_checked + megapixels > kCheckedMegapixelsPerPdf)
            return {"", fmt::format("the PDF's JPEGs checked before it declare {:.0f} megapixels together, the most checked in one PDF",
                                    megapixels_checked)};
        megapixels_checked += megapixels;
        std::string damage;
        int orientation = 1;
        decode_jpeg(image, data, size, damage, orientation, 8, true);
        return {damage, ""};
    } catch (const BadInput& e) {
        return {without_name(e.what()), ""};
    }
}

PlannedPage planned(std::int64_t width, std::int64_t height, bool gray, std::size_t extra = 0) {
    PlannedPage p;
    p.width = static_cast<int>(width);
    p.height = static_cast<int>(height);
    p.channels = gray ? 1 : 3;
    p.decoder_bytes = p.pixels() * kDecoderBytesPerPixel + extra;
    return p;
}

}  // namespace

namespace {
std::atomic<Logger*> library_logger{nullptr};

// What poppler first said on this thread since it was cleared, so that a page it refuses is
// refused with its reason ("PDF page 1 cannot be read (poppler: Page annotations object (page 1) is wrong
// type (dictionary))"). Its messages are about the file's syntax, never the page's text.
thread_local std::string poppler_said;

// What poppler first said on this thread, since it was cleared, about image or content data
// it could not decode while drawing a page: a CCITT fax, JBIG2 or JPEG 2000 image, or a
// Flate, LZW or ASCIIHex stream, damaged in the file. poppler draws what it can and goes
// on, so the page comes out partly blank or garbled with nothing else saying so. (JPEG
// damage it does not report: pdf_jpegs.hpp checks those.)
thread_local std::string poppler_data_damage;

bool names_data_damage(std::string_view message) {
    static constexpr std::string_view kMarkers[] = {"CCITTFax", "JBIG2", "JPX Stream", "in flate stream", "LZW stream", "ASCIIHex stream"};
    return std::any_of(std::begin(kMarkers), std::end(kMarkers), [&](std::string_view m) { return message.find(m) != std::string_view::npos; });
}

// " (poppler: ...)" with what poppler first said since `poppler_said` was cleared, or "".
std::string poppler_reason() {
    if (poppler_said.empty()) return "";
    return fmt::format(" (poppler: {})", poppler_said);
}
}  // namespace

void to_library_logger(std::string_view library, std::string_view message) {
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.remove_suffix(1);
    if (library == "poppler" && poppler_said.empty()) poppler_said.assign(message.substr(0, 300));  // the first: the cause
    if (library == "poppler" && poppler_data_damage.empty() && names_data_damage(message)) poppler_data_damage.assign(message.substr(0, 300));
    if (Logger* logger = library_logger.load(); logger && !message.empty())
        logger->log(LogLevel::Debug, fmt::format("{}: {}", library, message));
}

void route_library_messages_to(Logger* logger) {
    static std::once_flag once;
    std::call_once(once, [] {
        // Leptonica's "Error in pixReadStreamJpeg: ..." and poppler's syntax warnings.
        setMsgSeverity(L_SEVERITY_WARNING);
        leptSetStderrHandler([](const char* text) { to_library_logger("leptonica", text ? text : ""); });
        poppler::set_debug_error_function([](const std::string& text, void*) { to_library_logger("poppler", text); }, nullptr);
    });
    library_logger.store(logger);
}

void stop_routing_library_messages_to(Logger* logger) {
    Logger* expected = logger;
    library_logger.compare_exchange_strong(expected, nullptr);
}

bool is_pdf(const Part& part) {
    if (!part.bytes) return part.media_type == "application/pdf";
    const Bytes& b = *part.bytes;
    if (b.size() >= 5 && std::equal(b.begin(), b.begin() + 5, "%PDF-")) return true;
    if (part.media_type != "application/pdf") return false;
    // Declared a PDF (a name ending .pdf, a sender's Content-Type) but holding an image's
    // bytes: a phone photo saved as receipt.pdf was refused as "not a readable PDF", and a
    // readable receipt was lost. The bytes decide; a damaged PDF still reads as a PDF.
    if (b.size() >= 12) {
        l_int32 format = IFF_UNKNOWN;
        findFileFormatBuffer(b.data(), &format);
        if (format != IFF_UNKNOWN || is_heif(b.data(), b.size())) return false;
    }
    return true;
}

struct PartDecoder::Pdf {
    std::unique_ptr<poppler::document> doc;
    // The JPEGs its pages draw (read at the first rendered page) and what was found wrong
    // with each (checked at the first page that draws it; "" for nothing).
    bool jpegs_read = false;
    std::optional<PdfJpegs> jpegs;
    std::vector<std::optional<PdfJpegVerdict>> verdicts;
    double megapixels_checked = 0;  // what the checks so far declared together
};

void PartDecoder::read_pdf_jpegs(int pages) {
    if (pdf_->jpegs_read) return;
    pdf_->jpegs_read = true;
    std::string why_not;
    pdf_->jpegs = pdf_jpegs(part_.bytes->data(), part_.bytes->size(), pages, why_not);
    if (!pdf_->jpegs) to_library_logger("qpdf", fmt::format("{}: {}", part_.name, why_not));
    else pdf_->verdicts.resize(pdf_->jpegs->images.size());
    if (pdf_->jpegs && pdf_->jpegs->unchecked > 0)
        to_library_logger("qpdf", fmt::format("{}: {} of its JPEGs or pages are not checked for damage (JPEGs over {} on a "
                                              "page or over twice the file's size together, or behind filters that "
                                              "are not undone here: a predictor, more than 4, JBIG2 or JPX; pages "
                                              "whose content is over 32 MB or whose forms nest deeper than 8)",
                                              part_.name, pdf_->jpegs->unchecked, kMaxJpegsPerPage));
}

bool PartDecoder::draws_a_scan(int index) {
    // A receipt scanned at 100 dpi (SROIE's, 460 x 930) is well over this; a shop's logo on a
    // born-digital receipt (400 x 300) is under it.
    constexpr std::int64_t kScanPixels = 150'000;
    // A narrow receipt's photo fitted to an A4 page's height covers about half of it; a logo
    // or a stamp on a born-digital invoice a few hundredths (a 600 x 300 logo drawn 150 x 75
    // points on A4: 2%), and its text layer is kept.
    constexpr double kScanCoverage = 0.25;
    read_pdf_jpegs(pdf_->doc->pages());
    if (!pdf_->jpegs || static_cast<std::size_t>(index) >= pdf_->jpegs->pages.size()) return false;
    // Pictures of any filter, by their stated sizes and the page they cover together: a
    // scanner's black-and-white page is JBIG2 or CCITT, a phone app's often Flate, and a
    // printer driver cuts a scan into bands.
    const PageImages& pictures = pdf_->jpegs->drawn[static_cast<std::size_t>(index)];
    // Where the share cannot be told (a broken page box, an annotation without one), the
    // pixels alone decide, as they did before coverage was known: the page is read by OCR.
    if (pictures.pixels >= kScanPixels && (pictures.coverage >= kScanCoverage || !pictures.coverage_known)) return true;
    for (const std::size_t k : pdf_->jpegs->pages[static_cast<std::size_t>(index)]) {
        const auto& jpeg = pdf_->jpegs->images[k].bytes;
        try {
            read_jpeg_header(part_, jpeg.data(), jpeg.size());
        } catch (const BadInput&) {
            return true;  // a damaged image: rendered, so that its damage is found and named
        }
    }
    return false;
}

PartDecoder::PartDecoder(const Part& part, const DecodeLimits& limits) : part_(part), limits_(limits) {
    check_size(part, limits);
    const l_uint8* data = part.bytes->data();
    const std::size_t size = part.bytes->size();

    if (is_pdf(part)) {
        pdf_ = std::make_unique<Pdf>();
        // A PDF ends with "%%EOF" (within its last KB): one without it stopped short on its way,
        // and the sender is asked for it again. Poppler rebuilds a cut-off file's index and
        // may find no page in it: that was called "PDF without pages".
        const std::string_view tail(reinterpret_cast<const char*>(data) + (size > 1024 ? size - 1024 : 0),
                                    std::min<std::size_t>(size, 1024));
        const bool cut_off = tail.find("%%EOF") == std::string_view::npos;
        const char* truncated = "truncated PDF: the file stops before its end (no %EOF) and no page could be read; ask the sender "
                                "to send it again";
        pdf_->doc.reset(poppler::document::load_from_raw_data(reinterpret_cast<const char*>(data), static_cast<int>(size)));
        if (!pdf_->doc) bad(part, cut_off ? truncated : "not a readable PDF (corrupt)");
        if (pdf_->doc->is_locked()) bad(part, "encrypted PDF, no password");
        const int count = pdf_->doc->pages();
        if (count <= 0) bad(part, cut_off ? truncated : "PDF without pages");
        if (count > limits.max_pages) bad(part, fmt::format("{} pages, above the limit of {} pages", count, limits.max_pages));
        for (int i = 0; i < count; ++i) {
            poppler_said.clear();
            std::unique_ptr<poppler::page> page(pdf_->doc->create_page(i));
            if (!page) bad(part, fmt::format("PDF page {} cannot be read{}", i + 1, poppler_reason()));
            std::string text;
            if (limits.pdf_text_layer) {
                auto utf8 = page->text().to_utf8();
                text.assign(utf8.begin(), utf8.end());
                // poppler ends a page's text with "\n\f" (a form feed per page): not part of the text.
                const auto last = text.find_last_not_of(" \t\r\n\f");
                text.erase(last == std::string::npos ? 0 : last + 1);
            }
            // Born-digital: its own text beats OCR, nothing is rendered. But not over a scan: a
            // scanner app's invisible OCR text, or text laid over a receipt's photo, is not what
            // the page shows (a forged "TOTAL 9,999.00" was booked at high confidence, and a
            // CamScanner footer alone stood for the whole receipt).
            if (!text.empty() && draws_a_scan(i)) {
                to_library_logger("poppler", fmt::format("{}: page {} draws a scanned image: its text layer is not used, the page is "
                                                         "read by OCR",
                                                         part.name, i + 1));
                text.clear();
            }
            if (!text.empty()) {
                plan_.push_back(PlannedPage{0, 0, 3, 0});
                text_layers_.push_back(std::move(text));
                continue;
            }
            // The size poppler will render at pdf_dpi, rounded up: checked before it renders.
            const auto rect = page->page_rect();
            const double w = std::ceil(std::abs(rect.width()) * limits.pdf_dpi / 72.0);
            const double h = std::ceil(std::abs(rect.height()) * limits.pdf_dpi / 72.0);
            if (w > 1e9 || h > 1e9) bad(part, fmt::format("PDF page {} has an absurd size ({} x {} points); not rendered", i + 1,
                                                          rect.width(), rect.height()));
            check_planned(part, i, static_cast<std::int64_t>(w), static_cast<std::int64_t>(h), limits);
            plan_.push_back(planned(static_cast<std::int64_t>(w), static_cast<std::int64_t>(h), false));
            text_layers_.emplace_back();
        }
        return;
    }

    if (is_heif(data, size)) {
        heif_ = std::make_unique<HeifFile>(part.name, data, size);
        check_planned(part, 0, heif_->width(), heif_->height(), limits);
        plan_.push_back(planned(heif_->width(), heif_->height(), false, heif_->decoder_bytes()));
        return;
    }
    l_int32 format = 0;
    findFileFormatBuffer(data, &format);
    format_ = format;
    if (is_tiff(format)) {
        tiff_pages_ = read_tiff_pages(part.name, data, size, limits.max_pages);
        for (std::size_t i = 0; i < tiff_pages_.size(); ++i) {
            const TiffPage& page = tiff_pages_[i];
            check_planned(part, static_cast<int>(i), page.width, page.height, limits);
            plan_.push_back(planned(page.width, page.height, page.gray, page.decoder_bytes));
        }
        return;
    }
    std::optional<HeaderSize> own;
    if (format == IFF_GIF) {
        own = gif_size(data, size);
        if (own) gif_frames_ = own->frames;
    }
    if (format == IFF_BMP) own = bmp_size(data, size);
    if (own) {
        if (own->width <= 0 || own->height <= 0) bad(part, "not a readable image (corrupt header: no width or height)");
        check_planned(part, 0, own->width, own->height, limits);
        const double frames_mp = static_cast<double>(own->frame_pixels) / 1e6;
        if (limits.max_megapixels > 0 && frames_mp > limits.max_megapixels)
            bad(part, fmt::format("its GIF frames hold {:.1f} megapixels together, above the limit of {} megapixels "
                                  "(max_megapixels); not decoded",
                                  frames_mp, limits.max_megapixels));
    }
    l_int32 w = 0, h = 0, bps = 0, spp = 0, cmap = 0;
    if (own) {
        w = static_cast<l_int32>(own->width);
        h = static_cast<l_int32>(own->height);
        cmap = format == IFF_GIF;
    } else if (format == IFF_JFIF_JPEG) {
        const JpegHeader header = read_jpeg_header(part, data, size);
        w = static_cast<l_int32>(header.width);
        h = static_cast<l_int32>(header.height);
        spp = header.components;
    } else if (pixReadHeaderMem(data, size, &format, &w, &h, &bps, &spp, &cmap) != 0 || w <= 0 || h <= 0) {
        bad(part, "not a readable image (unknown format, or a corrupt header)");
    }
    check_planned(part, 0, w, h, limits);
    plan_.push_back(planned(w, h, spp == 1 && !cmap, own ? own->frame_pixels : 0));
}

PartDecoder::~PartDecoder() = default;

std::size_t PartDecoder::kept_bytes() const {
    std::size_t sum = 0;
    for (const auto& p : plan_) sum += p.pixels() * static_cast<std::size_t>(p.channels);
    return sum;
}

std::size_t PartDecoder::work_bytes() const {
    std::size_t most = 0;
    for (const auto& p : plan_) most = std::max(most, p.decoder_bytes);
    return most;
}

std::vector<Page> PartDecoder::decode() {
    const l_uint8* data = part_.bytes->data();
    const std::size_t size = part_.bytes->size();
    std::vector<Page> pages;

    if (pdf_) {
        poppler::page_renderer renderer;
        renderer.set_render_hint(poppler::page_renderer::antialiasing, true);
        renderer.set_render_hint(poppler::page_renderer::text_antialiasing, true);
        renderer.set_image_format(poppler::image::format_rgb24);
        for (int i = 0; i < static_cast<int>(plan_.size()); ++i) {
            Page out;
            out.index = i;
            pictures_.emplace_back();
            if (!text_layers_[i].empty()) {
                out.text_layer = std::move(text_layers_[i]);
                pages.push_back(std::move(out));
                continue;
            }
            poppler_said.clear();
            std::unique_ptr<poppler::page> page(pdf_->doc->create_page(i));
            if (!page) bad(part_, fmt::format("PDF page {} cannot be read{}", i + 1, poppler_reason()));
            // The page's JPEGs, checked before poppler renders them (it says nothing of their
            // damage), each once however many pages draw it.
            read_pdf_jpegs(static_cast<int>(plan_.size()));
            const std::size_t notes_before = damage_.size();
            if (pdf_->jpegs) {
                pictures_.back() = pdf_->jpegs->drawn[static_cast<std::size_t>(i)];
                for (std::size_t n = 0; n < pdf_->jpegs->pages[static_cast<std::size_t>(i)].size(); ++n) {
                    const std::size_t k = pdf_->jpegs->pages[static_cast<std::size_t>(i)][n];
                    const std::string& name = pdf_->jpegs->names[static_cast<std::size_t>(i)][n];
                    std::optional<PdfJpegVerdict>& verdict = pdf_->verdicts[k];
                    if (!verdict) {
                        verdict = pdf_jpeg_damage(pdf_->jpegs->images[k], pdf_->megapixels_checked);
                        if (!verdict->unchecked.empty())
                            to_library_logger("libjpeg", fmt::format("{}: page {}: {} is not checked for damage: {}", part_.name, i + 1,
                                                                     name, verdict->unchecked));
                    }
                    if (!verdict->damage.empty())
                        damage_.push_back(fmt::format("{}: page {}: {}: {}", part_.name, i + 1, name, verdict->damage));
                }
            }
            poppler_data_damage.clear();
            poppler::image img = renderer.render_page(page.get(), limits_.pdf_dpi, limits_.pdf_dpi);
            if (!img.is_valid()) bad(part_, fmt::format("PDF page {} cannot be rendered", i + 1));
            // A JPEG found damaged above says it better (where, how much): its outer Flate's
            // complaint is the same damage.
            if (!poppler_data_damage.empty() && damage_.size() == notes_before)
                damage_.push_back(fmt::format("{}: page {}: damaged image or content data: parts of the page may be blank or garbled (poppler: {})",
                                              part_.name, i + 1, poppler_data_damage));
            Image image;
            image.width = img.width();
            image.height = img.height();
            image.channels = 3;
            image.dpi = limits_.pdf_dpi;
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

    if (heif_) {
        pages.push_back(Page{0, heif_->decode(), {}, std::nullopt});
        return pages;
    }
    if (is_tiff(format_)) {
        for (std::size_t i = 0; i < tiff_pages_.size(); ++i) {
            const TiffPage& page = tiff_pages_[i];
            std::string damage;
            const Image as_stored = decode_tiff_page(part_.name, data, size, page, static_cast<int>(i) + 1, damage);
            pages.push_back(Page{static_cast<int>(i), oriented(to_square_pixels(as_stored, page.x_dpi, page.y_dpi), page.orientation), {}, std::nullopt});
            if (!damage.empty()) damage_.push_back(fmt::format("{}: page {}: {}", part_.name, i + 1, damage));
        }
        return pages;
    }
    if (format_ == IFF_JFIF_JPEG) {
        std::string damage;
        int orientation = 1;
        Image as_stored = decode_jpeg(part_, data, size, damage, orientation);
        pages.push_back(Page{0, oriented(as_stored, orientation), {}, std::nullopt});
        if (!damage.empty()) damage_.push_back(fmt::format("{}: page 1: {}", part_.name, damage));
        return pages;
    }
    if (format_ == IFF_PNG) {
        pages.push_back(Page{0, decode_png(part_, data, size), {}, std::nullopt});
        return pages;
    }
    if (format_ == IFF_WEBP && is_animated_webp(data, size)) {
        int frames = 0;
        Image first = decode_animated_webp(part_, data, size, frames);
        check_planned(part_, 0, first.width, first.height, limits_);
        pages.push_back(Page{0, std::move(first), {}, std::nullopt});
        if (frames > 1) damage_.push_back(fmt::format("{}: {}", part_.name, only_the_first_frame("an animated WebP", frames)));
        return pages;
    }
    PixPtr pix(pixReadMem(data, size));
    if (!pix) bad(part_, "the image data cannot be decoded (truncated or corrupt)");
    check_planned(part_, 0, pixGetWidth(pix.get()), pixGetHeight(pix.get()), limits_);
    pages.push_back(Page{0, to_image(pix.get()), {}, std::nullopt});
    // Leptonica reads a GIF's first frame alone.
    if (gif_frames_ > 1) damage_.push_back(fmt::format("{}: {}", part_.name, only_the_first_frame("an animated GIF", gif_frames_)));
    return pages;
}

std::vector<Page> decode_image(const Part& part, const DecodeLimits& limits) { return PartDecoder(part, limits).decode(); }
std::vector<Page> decode_pdf(const Part& part, const DecodeLimits& limits) { return PartDecoder(part, limits).decode(); }

}  // namespace docpipe::imaging
