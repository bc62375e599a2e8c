#include "tiff_decode.hpp"

#include <tiffio.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>

#include <fmt/core.h>
#include <fmt/format.h>

#include "decode.hpp"
#include "docpipe/component.hpp"

namespace docpipe::imaging {

namespace {

[[noreturn]] void bad(const std::string& name, const std::string& why) { throw BadInput(name + ": " + why); }

// The part's bytes as the file libtiff reads; it writes nothing and maps nothing.
struct MemoryFile {
    const std::uint8_t* data;
    toff_t size;
    toff_t at = 0;

    static MemoryFile& of(thandle_t handle) { return *static_cast<MemoryFile*>(handle); }
    static tmsize_t read(thandle_t handle, void* out, tmsize_t count) {
        MemoryFile& f = of(handle);
        if (count <= 0 || f.at >= f.size) return 0;
        const auto n = static_cast<tmsize_t>(std::min<toff_t>(static_cast<toff_t>(count), f.size - f.at));
        std::memcpy(out, f.data + f.at, static_cast<std::size_t>(n));
        f.at += static_cast<toff_t>(n);
        return n;
    }
    static tmsize_t write(thandle_t, void*, tmsize_t) { return -1; }
    static toff_t seek(thandle_t handle, toff_t offset, int whence) {
        MemoryFile& f = of(handle);
        const toff_t base = whence == SEEK_CUR ? f.at : whence == SEEK_END ? f.size : 0;
        if (offset > ~toff_t{0} - base) return static_cast<toff_t>(-1);  // past what an offset can hold
        f.at = base + offset;
        return f.at;
    }
    static int close(thandle_t) { return 0; }
    static toff_t file_size(thandle_t handle) { return of(handle).size; }
    // The bytes as libtiff's "mapped file": read in place, never written (libtiff copies a
    // strip before it changes it, e.g. to reverse its bit order). Mapped, libtiff 4.5 also
    // reads an uncompressed tile whose size is not a multiple of 1024 bytes, which its
    // unmapped path refuses ("Invalid tile byte count").
    static int map(thandle_t handle, void** base, toff_t* size) {
        MemoryFile& f = of(handle);
        *base = const_cast<std::uint8_t*>(f.data);
        *size = f.size;
        return 1;
    }
    static void unmap(thandle_t, void*, toff_t) {}
};

// libtiff's messages for one file, kept in order (the first kKept of each kind), so that a
// failure names what libtiff said while that page or band was read, not a harmless complaint
// from opening the file (a bad Orientation value). Warnings also go to the node's log: most
// say nothing of the pixels (an unknown tag), but a codec's warning while a band is decoded
// ("Premature EOL", "Premature end of JPEG file") means rows of it are lost or garbled.
struct TiffMessages {
    std::string name;
    std::vector<std::string> errors, warnings;
    int error_count = 0, warning_count = 0;

    static constexpr std::size_t kKept = 20;

    // libtiff's text, without the file name some of its messages start with (the name is
    // already at the head of every error docpipe gives).
    std::string text_of(const char* format, va_list args) const {
        char text[512];
        std::vsnprintf(text, sizeof text, format, args);
        std::replace(std::begin(text), std::end(text), '\n', ' ');  // one line: it goes into an error
        std::string_view t = text;
        // Reading a mapped file, libtiff reports a strip that starts past the end as "got
        // 18446744072709631818 bytes" (the file's size less the offset, wrapped around).
        if (const auto got = t.find("; got "); got != std::string_view::npos) {
            const std::size_t digits = got + 6;
            std::size_t end = digits;
            while (end < t.size() && std::isdigit(static_cast<unsigned char>(t[end]))) ++end;
            if (end - digits >= 16 && t.substr(end, 6) == " bytes")
                return fmt::format("{}: it starts past the end of the file", strip_name(t.substr(0, got)));
        }
        return std::string(strip_name(t));
    }
    std::string_view strip_name(std::string_view t) const {
        if (t.size() > name.size() + 2 && t.substr(0, name.size()) == name && t.substr(name.size(), 2) == ": ") t.remove_prefix(name.size() + 2);
        return t;
    }
    static int on_error(TIFF*, void* self_ptr, const char*, const char* format, va_list args) {
        auto& self = *static_cast<TiffMessages*>(self_ptr);
        ++self.error_count;
        try {  // nothing may unwind through libtiff's C frames
            if (self.errors.size() < kKept) self.errors.push_back(self.text_of(format, args));
        } catch (...) {
        }
        return 1;  // handled: libtiff's process-wide handler (stderr) is not called
    }
    static int on_warning(TIFF*, void* self_ptr, const char*, const char* format, va_list args) {
        auto& self = *static_cast<TiffMessages*>(self_ptr);
        try {  // nothing may unwind through libtiff's C frames
            std::string text = self.text_of(format, args);
            if (self.warnings.size() < kKept) to_library_logger("libtiff", fmt::format("{}: {}", self.name, text));
            // libtiff says this of every old-style JPEG page it decodes, sound or not: only logged.
            if (text.rfind("Deprecated and troublesome old-style JPEG", 0) == 0) return 1;
            ++self.warning_count;
            if (self.warnings.size() < kKept) self.warnings.push_back(std::move(text));
        } catch (...) {
            ++self.warning_count;
        }
        return 1;
    }

    // Where the messages stand now; what came after a mark is what a step caused.
    struct Mark {
        int errors, warnings;
    };
    Mark mark() const { return {error_count, warning_count}; }
    bool errors_since(Mark m) const { return error_count > m.errors; }
    bool warnings_since(Mark m) const { return warning_count > m.warnings; }
    // libtiff's first error after the mark (or, with none, its first warning), and how many
    // more there were: "libtiff: Read error on strip 3 ..., and 2 more error(s)".
    std::string reason_since(Mark m = Mark{0, 0}) const {
        const bool use_errors = error_count > m.errors;
        const std::vector<std::string>& kept = use_errors ? errors : warnings;
        const int from = use_errors ? m.errors : m.warnings, count = (use_errors ? error_count : warning_count) - from;
        if (count <= 0) return "libtiff gave no reason";
        const std::string first = static_cast<std::size_t>(from) < kept.size() ? kept[static_cast<std::size_t>(from)] : "(not kept)";
        return fmt::format("libtiff: {}{}", first,
                           count > 1 ? fmt::format(", and {} more {}(s)", count - 1, use_errors ? "error" : "warning") : "");
    }
};

// One libtiff handle over the bytes, with the messages above, opened for reading with the
// bytes "mapped" (MemoryFile::map).
class TiffFile {
public:
    TiffFile(const std::string& name, const std::uint8_t* data, std::size_t size) : file_{data, static_cast<toff_t>(size)} {
        messages_.name = name;
        std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> options(TIFFOpenOptionsAlloc(), &TIFFOpenOptionsFree);
        if (!options) bad(name, "the TIFF decoder could not start (out of memory)");
        TIFFOpenOptionsSetErrorHandlerExtR(options.get(), &TiffMessages::on_error, &messages_);
        TIFFOpenOptionsSetWarningHandlerExtR(options.get(), &TiffMessages::on_warning, &messages_);
        // A header can claim any strip size; no single buffer of libtiff's beyond this.
        TIFFOpenOptionsSetMaxSingleMemAlloc(options.get(), tmsize_t{1} << 30);
        tif_ = TIFFClientOpenExt(name.c_str(), "r", &file_, &MemoryFile::read, &MemoryFile::write, &MemoryFile::seek,
                                 &MemoryFile::close, &MemoryFile::file_size, &MemoryFile::map, &MemoryFile::unmap, options.get());
        if (!tif_) bad(name, fmt::format("not a readable image (corrupt TIFF header; {})", messages_.reason_since()));
    }
    ~TiffFile() { TIFFClose(tif_); }
    TiffFile(const TiffFile&) = delete;
    TiffFile& operator=(const TiffFile&) = delete;

    TIFF* get() const { return tif_; }
    TiffMessages& messages() { return messages_; }

private:
    MemoryFile file_;
    TiffMessages messages_;
    TIFF* tif_ = nullptr;
};

// Bilevel and gray pages, and a palette of grays only, stay one channel (as Leptonica gave them).
bool is_gray(TIFF* tif) {
    std::uint16_t photometric = 0, bits = 1;
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric)) return false;
    if (photometric == PHOTOMETRIC_MINISWHITE || photometric == PHOTOMETRIC_MINISBLACK) return true;
    if (photometric != PHOTOMETRIC_PALETTE) return false;
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    std::uint16_t *red = nullptr, *green = nullptr, *blue = nullptr;
    if (bits > 16 || !TIFFGetField(tif, TIFFTAG_COLORMAP, &red, &green, &blue)) return false;
    for (std::size_t k = 0; k < (std::size_t{1} << bits); ++k)
        if (red[k] != green[k] || green[k] != blue[k]) return false;
    return true;
}

struct Resolution {
    double x = 0, y = 0;
};
Resolution resolution_of(TIFF* tif) {
    float x = 0, y = 0;
    // Without a unit the numbers are taken as per inch, as Leptonica took them: the tools
    // that leave the unit out (ImageMagick without -units) mean dots per inch.
    std::uint16_t unit = RESUNIT_INCH;
    TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit);
    if (!TIFFGetField(tif, TIFFTAG_XRESOLUTION, &x) || !std::isfinite(x) || x <= 0) return {};
    if (!TIFFGetField(tif, TIFFTAG_YRESOLUTION, &y) || !std::isfinite(y) || y <= 0) y = x;
    const double per_inch = unit == RESUNIT_CENTIMETER ? 2.54 : 1.0;
    return {x * per_inch, y * per_inch};
}

// A gray page's alpha, as libtiff's RGBA reader gives it: 0 without alpha, else the
// ExtraSamples kind (associated: gray already multiplied by alpha; unassociated: not).
std::uint16_t gray_alpha(TIFF* tif) {
    std::uint16_t photometric = 0, count = 0;
    std::uint16_t* kinds = nullptr;
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric) || (photometric != PHOTOMETRIC_MINISWHITE && photometric != PHOTOMETRIC_MINISBLACK))
        return 0;
    if (!TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &count, &kinds) || count == 0 || !kinds) return 0;
    return kinds[0] == EXTRASAMPLE_ASSOCALPHA || kinds[0] == EXTRASAMPLE_UNASSALPHA ? kinds[0] : 0;
}

// One band of a 16-bit gray page with alpha, in the form TIFFRGBAImageGet gives (ABGR, top
// row first), with the gray as stored and the alpha beside it. libtiff's RGBA reader takes
// the gray of such a page and drops its alpha, so what is transparent would come out as
// whatever gray is stored under it, often black. The band is the rows of one strip, or of
// one row of tiles (band_rows). False when libtiff cannot read part of it.
bool read_gray_alpha16_band(TIFF* tif, std::uint32_t row, std::uint32_t rows, std::uint32_t width, std::vector<std::uint32_t>& raster) {
    std::uint16_t samples = 1, planar = PLANARCONFIG_CONTIG, photometric = PHOTOMETRIC_MINISBLACK;
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &samples);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
    if (samples < 2) return false;
    const bool separate = planar == PLANARCONFIG_SEPARATE;
    const bool tiled = TIFFIsTiled(tif);
    std::uint32_t piece_width = width;  // a tile's width, or the page's for strips
    if (tiled) TIFFGetField(tif, TIFFTAG_TILEWIDTH, &piece_width);
    const tmsize_t piece_bytes = tiled ? TIFFTileSize(tif) : TIFFStripSize(tif);
    if (piece_bytes <= 0 || piece_width == 0) return false;
    // Samples of one pixel that follow each other in a piece: all of them, or one per plane.
    const std::size_t step = separate ? 1 : samples;
    const std::size_t needed = static_cast<std::size_t>(piece_width) * rows * step * 2;
    std::vector<std::uint8_t> gray_piece(static_cast<std::size_t>(piece_bytes)), alpha_piece;
    if (separate) alpha_piece.resize(static_cast<std::size_t>(piece_bytes));
    auto read_piece = [&](std::uint32_t x, std::uint16_t sample, std::vector<std::uint8_t>& into) {
        const tmsize_t got = tiled ? TIFFReadTile(tif, into.data(), x, row, 0, sample)
                                   : TIFFReadEncodedStrip(tif, TIFFComputeStrip(tif, row, sample), into.data(), piece_bytes);
        return got >= 0 && static_cast<std::size_t>(got) >= needed;
    };
    auto to_8_bits = [](std::uint16_t v) { return static_cast<std::uint32_t>((v * 255u + 32767u) / 65535u); };
    for (std::uint32_t x0 = 0; x0 < width; x0 += piece_width) {
        if (!read_piece(x0, 0, gray_piece) || (separate && !read_piece(x0, 1, alpha_piece))) return false;
        // libtiff gives the samples in this machine's byte order; copied out, not cast, as
        // the buffer holds bytes.
        auto sample = [](const std::vector<std::uint8_t>& piece, std::size_t index) {
            std::uint16_t v = 0;
            std::memcpy(&v, piece.data() + 2 * index, sizeof v);
            return v;
        };
        const std::vector<std::uint8_t>& alpha_samples = separate ? alpha_piece : gray_piece;
        const std::size_t alpha_offset = separate ? 0 : 1;
        const std::uint32_t columns = std::min(piece_width, width - x0);
        for (std::uint32_t r = 0; r < rows; ++r)
            for (std::uint32_t c = 0; c < columns; ++c) {
                const std::size_t at = (static_cast<std::size_t>(r) * piece_width + c) * step;
                std::uint16_t g = sample(gray_piece, at);
                if (photometric == PHOTOMETRIC_MINISWHITE) g = static_cast<std::uint16_t>(65535 - g);
                const std::uint32_t g8 = to_8_bits(g);
                raster[static_cast<std::size_t>(r) * width + x0 + c] = g8 | g8 << 8 | g8 << 16 | to_8_bits(sample(alpha_samples, at + alpha_offset)) << 24;
            }
    }
    return true;
}

// Runs of rows, as a reviewer reads them: "rows 0-15, 160-175" (the first few, then a count).
struct RowRuns {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> runs;  // first and last row of each
    std::uint32_t rows = 0;
    void add(std::uint32_t first, std::uint32_t count) {
        rows += count;
        if (!runs.empty() && runs.back().second + 1 == first) {
            runs.back().second = first + count - 1;
        } else {
            runs.emplace_back(first, first + count - 1);
        }
    }
    std::string text() const {
        std::string out;
        for (std::size_t k = 0; k < runs.size() && k < 4; ++k)
            out += fmt::format("{}{}-{}", k ? ", " : "", runs[k].first, runs[k].second);
        if (runs.size() > 4) out += fmt::format(" and {} more run(s)", runs.size() - 4);
        return out;
    }
};

// Rows of one band: a strip, or a row of tiles.
std::uint32_t band_rows(TIFF* tif, std::uint32_t height) {
    std::uint32_t rows = height;
    if (TIFFIsTiled(tif)) {
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &rows);
    } else {
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rows);
    }
    return std::clamp<std::uint32_t>(rows, 1, height);
}

// A page past this share of blank rows is too damaged to read (as for a JPEG).
constexpr double kWholeEnough = 0.9;

}  // namespace

void square_size(std::int64_t& width, std::int64_t& height, double x_dpi, double y_dpi) {
    if (x_dpi <= 0 || y_dpi <= 0) return;
    const double ratio = x_dpi / y_dpi;
    if (ratio > 4 || ratio < 0.25 || std::abs(ratio - 1) < 0.1) return;
    if (ratio > 1) height = std::llround(static_cast<double>(height) * ratio);
    else width = std::llround(static_cast<double>(width) / ratio);
}

Image to_square_pixels(const Image& in, double x_dpi, double y_dpi) {
    std::int64_t width = in.width, height = in.height;
    square_size(width, height, x_dpi, y_dpi);
    if (width == in.width && height == in.height) return in;
    Image out = in;
    out.width = static_cast<int>(width);
    out.height = static_cast<int>(height);
    out.dpi = static_cast<int>(std::lround(std::max(x_dpi, y_dpi)));
    const int c = in.channels;
    auto pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(out.width) * out.height * c);
    const std::uint8_t* src = in.pixels->data();
    const bool stretch_rows = height != in.height;  // else the columns
    const int from = stretch_rows ? in.height : in.width, to = stretch_rows ? out.height : out.width;
    for (int k = 0; k < to; ++k) {
        // The centre of output line k, in the input's coordinates.
        const double at = std::clamp((k + 0.5) * from / to - 0.5, 0.0, static_cast<double>(from - 1));
        const int a = static_cast<int>(at), b = std::min(a + 1, from - 1);
        const double w = at - a;
        if (stretch_rows) {
            const std::uint8_t* ra = src + static_cast<std::size_t>(a) * in.width * c;
            const std::uint8_t* rb = src + static_cast<std::size_t>(b) * in.width * c;
            std::uint8_t* o = pixels->data() + static_cast<std::size_t>(k) * out.width * c;
            for (int i = 0; i < in.width * c; ++i) o[i] = static_cast<std::uint8_t>(std::lround(ra[i] * (1 - w) + rb[i] * w));
        } else {
            for (int y = 0; y < out.height; ++y) {
                const std::uint8_t* row = src + static_cast<std::size_t>(y) * in.width * c;
                std::uint8_t* o = pixels->data() + (static_cast<std::size_t>(y) * out.width + k) * c;
                for (int i = 0; i < c; ++i) o[i] = static_cast<std::uint8_t>(std::lround(row[a * c + i] * (1 - w) + row[b * c + i] * w));
            }
        }
    }
    out.pixels = std::move(pixels);
    return out;
}

std::vector<TiffPage> read_tiff_pages(const std::string& name, const std::uint8_t* data, std::size_t size, int max_pages) {
    TiffFile file(name, data, size);
    TIFF* tif = file.get();
    TiffMessages& messages = file.messages();
    std::vector<TiffPage> pages;
    for (tdir_t directory = 0;; ++directory) {
        const int number = static_cast<int>(pages.size()) + 1;
        // A scanner's thumbnail of the page before it, or a transparency mask: not a page.
        std::uint32_t subfile = 0;
        const bool page_itself = !TIFFGetField(tif, TIFFTAG_SUBFILETYPE, &subfile) || (subfile & (FILETYPE_REDUCEDIMAGE | FILETYPE_MASK)) == 0;
        if (page_itself) {
            if (number > max_pages) bad(name, fmt::format("more than {} pages, above the limit of {} pages", max_pages, max_pages));
            std::uint32_t width = 0, height = 0;
            if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &height) || width == 0 || height == 0)
                bad(name, fmt::format("TIFF page {} has an unreadable header (no width or height)", number));
            char why[1024] = {};
            if (!TIFFRGBAImageOK(tif, why)) bad(name, fmt::format("TIFF page {} cannot be decoded: {} (libtiff)", number, why));
            std::uint16_t compression = COMPRESSION_NONE;
            TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
            if (!TIFFIsCODECConfigured(compression)) {
                const TIFFCodec* codec = TIFFFindCODEC(compression);
                bad(name, fmt::format("TIFF page {} is compressed with {} ({}), which this libtiff cannot decode; save it again as LZW, "
                                      "Zip, JPEG or fax (G3/G4)",
                                      number, codec && codec->name ? codec->name : "an unknown scheme", compression));
            }
            if (TIFFIsTiled(tif)) {
                std::uint32_t tile_width = 0, tile_length = 0;
                TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tile_width);
                TIFFGetField(tif, TIFFTAG_TILELENGTH, &tile_length);
                if (tile_width == 0 || tile_length == 0 || tile_width > 65536 || tile_length > 65536)
                    bad(name, fmt::format("TIFF page {} has a corrupt header: tiles of {}x{} pixels", number, tile_width, tile_length));
            }
            std::uint16_t bits = 1;
            TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
            std::uint16_t sample_format = SAMPLEFORMAT_UINT;
            TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &sample_format);
            if (gray_alpha(tif) != 0 && ((bits != 8 && bits != 16) || sample_format != SAMPLEFORMAT_UINT))
                bad(name, fmt::format("TIFF page {} is {}-bit{} gray with transparency, which is read only at 8 or 16 bits (its "
                                      "transparent parts would come out black); save it at 8 bits or without transparency",
                                      number, bits, sample_format == SAMPLEFORMAT_IEEEFP ? " floating-point" : ""));
            TiffPage page;
            page.directory = static_cast<int>(directory);
            page.stored_width = page.width = width;
            page.stored_height = page.height = height;
            page.gray = is_gray(tif);
            std::uint16_t orientation = ORIENTATION_TOPLEFT;
            TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &orientation);
            page.orientation = orientation >= 1 && orientation <= 8 ? orientation : 1;
            const Resolution dpi = resolution_of(tif);
            page.x_dpi = dpi.x;
            page.y_dpi = dpi.y;
            square_size(page.width, page.height, dpi.x, dpi.y);
            if (page.orientation >= 5) std::swap(page.width, page.height);
            // One band as RGBA, and libtiff's own buffer for its encoded data.
            const std::size_t band = static_cast<std::size_t>(width) * band_rows(tif, height);
            const tmsize_t encoded = TIFFIsTiled(tif) ? TIFFTileSize(tif) : TIFFStripSize(tif);
            page.decoder_bytes = band * 4 + static_cast<std::size_t>(std::max<tmsize_t>(encoded, 0));
            pages.push_back(page);
        }
        const TiffMessages::Mark before = messages.mark();
        if (TIFFReadDirectory(tif)) continue;
        // No next page, or one libtiff could not read: the latter is not a silent end.
        if (messages.errors_since(before))
            bad(name, fmt::format("TIFF page {} has an unreadable header ({})", pages.size() + 1, messages.reason_since(before)));
        break;
    }
    if (pages.empty()) bad(name, "a TIFF file with no page, only thumbnails or masks");
    return pages;
}

Image decode_tiff_page(const std::string& name, const std::uint8_t* data, std::size_t size, const TiffPage& page, int number,
                       std::string& damage) {
    TiffFile file(name, data, size);
    TIFF* tif = file.get();
    TiffMessages& messages = file.messages();
    TiffMessages::Mark opened = messages.mark();
    if (!TIFFSetDirectory(tif, static_cast<tdir_t>(page.directory)))
        bad(name, fmt::format("TIFF page {} cannot be read ({})", number, messages.reason_since(opened)));
    TIFFRGBAImage reader{};
    char why[1024] = {};
    if (!TIFFRGBAImageBegin(&reader, tif, 1, why)) bad(name, fmt::format("TIFF page {} cannot be decoded: {} (libtiff)", number, why));
    std::unique_ptr<TIFFRGBAImage, void (*)(TIFFRGBAImage*)> ending(&reader, &TIFFRGBAImageEnd);
    // The rows as stored, top first: the Orientation tag is applied by the caller, for all
    // eight values (libtiff's reader would do the flips and not the quarter turns).
    reader.req_orientation = reader.orientation;

    Image img;
    img.width = static_cast<int>(reader.width);
    img.height = static_cast<int>(reader.height);
    img.channels = is_gray(tif) ? 1 : 3;
    img.dpi = static_cast<int>(std::lround(resolution_of(tif).x));
    auto pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(img.width) * img.height * img.channels, 255);
    const std::uint32_t rows_per_band = band_rows(tif, reader.height);
    std::vector<std::uint32_t> raster(static_cast<std::size_t>(reader.width) * rows_per_band);
    // Bands libtiff could not read (left blank), and bands it decoded with a codec's warning
    // (rows of them lost or garbled), with what libtiff said at the first of each.
    RowRuns blank, warned;
    std::string blank_reason, warned_reason;
    const bool unassociated_gray = gray_alpha(tif) == EXTRASAMPLE_UNASSALPHA;
    std::uint16_t bits = 8;
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    const bool gray_alpha16 = gray_alpha(tif) != 0 && bits == 16;
    for (std::uint32_t row = 0; row < reader.height; row += rows_per_band) {
        const std::uint32_t rows = std::min(rows_per_band, reader.height - row);
        reader.row_offset = static_cast<int>(row);
        reader.col_offset = 0;
        const TiffMessages::Mark before = messages.mark();
        std::fill(raster.begin(), raster.end(), 0xFFFFFFFFu);
        // A band libtiff cannot read stays white: a failed strip can leave the one before it
        // in the buffer, and a repeated "TOTAL 12.50" line is worse than a blank one.
        const bool read = gray_alpha16 ? read_gray_alpha16_band(tif, row, rows, reader.width, raster)
                                       : TIFFRGBAImageGet(&reader, raster.data(), reader.width, rows) != 0;
        if (!read || messages.errors_since(before)) {
            if (blank.rows == 0) blank_reason = messages.reason_since(before);
            blank.add(row, rows);
            continue;
        }
        if (messages.warnings_since(before)) {
            if (warned.rows == 0) warned_reason = messages.reason_since(before);
            warned.add(row, rows);
        }
        for (std::uint32_t r = 0; r < rows; ++r) {
            const std::uint32_t* in = raster.data() + static_cast<std::size_t>(r) * reader.width;
            std::uint8_t* out = pixels->data() + (static_cast<std::size_t>(row) + r) * img.width * img.channels;
            for (std::uint32_t x = 0; x < reader.width; ++x) {
                // Laid over white paper. libtiff gives colour multiplied by alpha (it does that
                // for unassociated alpha too), so what alpha leaves out is added as white; gray
                // with unassociated alpha it gives as stored, so it is multiplied here.
                const std::uint32_t abgr = in[x];
                const unsigned a = TIFFGetA(abgr), clear = 255 - a;
                if (img.channels == 1) {
                    const unsigned g = TIFFGetR(abgr);
                    out[x] = static_cast<std::uint8_t>(unassociated_gray ? (g * a + 255 * clear + 127) / 255 : std::min(255u, g + clear));
                } else {
                    out[3 * x] = static_cast<std::uint8_t>(std::min(255u, TIFFGetR(abgr) + clear));
                    out[3 * x + 1] = static_cast<std::uint8_t>(std::min(255u, TIFFGetG(abgr) + clear));
                    out[3 * x + 2] = static_cast<std::uint8_t>(std::min(255u, TIFFGetB(abgr) + clear));
                }
            }
        }
    }
    img.pixels = std::move(pixels);
    // More than a tenth of the rows blank: too little is left to read (as for a JPEG).
    if (static_cast<std::uint64_t>(blank.rows) * 10 > reader.height) {
        if (blank.rows == reader.height && rows_per_band == reader.height)
            bad(name, fmt::format("damaged TIFF: page {} is stored as one strip, and libtiff cannot read it, so none of the page is "
                                  "read ({})",
                                  number, blank_reason));
        bad(name, fmt::format("damaged TIFF: page {}'s data cannot be read from row {} of {}, so {:.0f}% of the page is missing ({})",
                              number, blank.runs.front().first, reader.height, 100.0 * blank.rows / reader.height, blank_reason));
    }
    std::vector<std::string> notes;
    if (blank.rows > 0)
        notes.push_back(fmt::format("{} of its {} rows cannot be read (rows {}); they are left blank ({})", blank.rows, reader.height,
                                    blank.text(), blank_reason));
    if (warned.rows > 0)
        notes.push_back(fmt::format("rows {} of {} were decoded with a warning, so some of them may be blank or garbled ({})",
                                    warned.text(), reader.height, warned_reason));
    if (!notes.empty()) damage = "damaged TIFF: " + fmt::format("{}", fmt::join(notes, "; "));
    return img;
}

}  // namespace docpipe::imaging
