// Turning a raw part (image or PDF bytes) into pages, within limits that protect the
// service from hostile or broken files. Every failure throws docpipe::BadInput whose text
// starts with the file name and says what is wrong ("receipt.pdf: encrypted PDF, no
// password"). Thread-safe: no shared state.
//
// Nothing large is allocated before its size is known and checked: PartDecoder first reads
// only headers (the image header, every TIFF page's header, a GIF's frame descriptors, a
// PDF's page boxes and text layer) and checks each page's size as it WILL be decoded or
// rendered; the caller then sees the whole part's pixels and memory (plan(), kept_bytes(),
// work_bytes()) before decode() makes a single page.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/context.hpp"
#include "docpipe/document.hpp"
#include "heif_decode.hpp"
#include "pdf_jpegs.hpp"
#include "tiff_decode.hpp"

namespace docpipe::imaging {

struct DecodeLimits {
    int max_pages = 50;
    double max_megapixels = 100;   // per page, from the header / at pdf_dpi, before decoding
    double max_aspect_ratio = 25;  // per page, long side / short side; 0: no limit
    std::size_t max_bytes = 50u << 20;
    int pdf_dpi = 300;
    bool pdf_text_layer = true;    // keep a born-digital page's text and skip rendering it
};

bool is_pdf(const Part& part);

// Leptonica and poppler write their own messages to stderr, past every log (libjpeg's and
// libpng's are kept by the JPEG and PNG decoders here). Route them to
// a node's logger at debug level instead (every failure also reaches the document as
// BadInput with its reason): the most recently registered logger, since each library has
// one handler per process. Unregister with the same pointer before the logger dies.
void route_library_messages_to(Logger* logger);
void stop_routing_library_messages_to(Logger* logger);
// A library's message, to that logger at debug level (the decoders in this folder).
void to_library_logger(std::string_view library, std::string_view message);

// A page as it will come out of decode(), known before decoding.
struct PlannedPage {
    int width = 0, height = 0;  // 0x0: a PDF page whose text layer is kept (nothing rendered)
    int channels = 3;           // 1 when the source is gray (an estimate: a colour map may be gray too)
    std::size_t decoder_bytes = 0;  // the libraries' own buffers while it is decoded
    std::size_t pixels() const { return static_cast<std::size_t>(width) * static_cast<std::size_t>(height); }
};

class PartDecoder {
public:
    // Images: JPEG (libjpeg), PNG (libpng), TIFF (libtiff, every page), HEIC and AVIF (libheif),
    // and BMP, GIF, WebP through Leptonica (an animated GIF or WebP: its first frame, with a
    // note that there are more; libwebpdemux composes an animated WebP's).
    // PDFs through poppler: each page rendered at limits.pdf_dpi, or its text layer kept.
    // Reads headers and checks limits only; throws BadInput naming the file and page.
    PartDecoder(const Part& part, const DecodeLimits& limits);
    ~PartDecoder();
    PartDecoder(const PartDecoder&) = delete;
    PartDecoder& operator=(const PartDecoder&) = delete;

    const std::vector<PlannedPage>& plan() const { return plan_; }
    // Bytes of the decoded pages, all kept until the document moves on.
    std::size_t kept_bytes() const;
    // The most any one page needs on top while it is decoded (the libraries' buffers).
    std::size_t work_bytes() const;

    std::vector<Page> decode();
    // After decode(): one line per page that was decoded in spite of damage the decoder
    // reported ("photo.jpg: page 1: damaged JPEG: ... (libjpeg: ...)"). Such a page is
    // kept because most of it is there; what was read from it needs a person's check.
    const std::vector<std::string>& damage() const { return damage_; }
    // After decode(): per page, the pictures a rendered PDF page draws, in their own pixels
    // (whatever size the page renders them at) and the share of the page they cover
    // (pdf_jpegs.hpp); nothing (all 0) for a page that is not a rendered PDF page, or where
    // qpdf could not tell. A thumbnail saved as a PDF renders as a full page of blur; this is
    // how it is told from a real scan.
    const std::vector<PageImages>& page_pictures() const { return pictures_; }

private:
    struct Pdf;
    const Part& part_;
    DecodeLimits limits_;
    int format_ = 0;  // Leptonica's IFF_* for images
    int gif_frames_ = 0;  // a GIF's frames (its image descriptors); only the first is read
    std::vector<PlannedPage> plan_;
    std::vector<std::string> text_layers_;  // PDF: per page, kept text ("" = render)
    std::vector<TiffPage> tiff_pages_;      // TIFF: per page, what its header says
    std::unique_ptr<HeifFile> heif_;        // a HEIC or AVIF photo (libheif), parsed once
    std::unique_ptr<Pdf> pdf_;
    std::vector<std::string> damage_;
    std::vector<PageImages> pictures_;  // per decoded page, see page_pictures()

    // PDF: the JPEGs each page draws (pdf_jpegs.hpp), read once, at the first page that needs them.
    void read_pdf_jpegs(int pages);
    // PDF: whether page `index` draws a photo or scan (a JPEG of kScanPixels or more): its
    // text layer, if any, is then not what the page shows (a scanner app's own OCR, or text
    // laid over the image on purpose), and the page is read by OCR.
    bool draws_a_scan(int index);
};

// Plan and decode in one go (tests, tools): the pages of an image or PDF part.
std::vector<Page> decode_image(const Part& part, const DecodeLimits& limits);
std::vector<Page> decode_pdf(const Part& part, const DecodeLimits& limits);

}  // namespace docpipe::imaging
