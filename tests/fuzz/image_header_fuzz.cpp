// Fuzz target: the checks transform.pdf_pages runs on an image or PDF part before anything
// large is decoded (plugins/imaging/decode.cpp, PartDecoder's constructor): format sniffing,
// Leptonica's header reader, our own BMP and GIF header walkers, libtiff's TIFF page headers, and
// poppler opening a PDF, counting its pages, reading their boxes and text layers.
//
// Every failure must be BadInput (what the runtime turns into "this document is bad"); any
// other exception escapes and libFuzzer reports it. When the headers pass, the plan must
// respect the limits it was checked against, and an image (never a PDF: rendering is slow
// and not what is fuzzed here) is decoded as well, to catch a header check that let
// through a page the decoder then sizes differently. The limits are set low (a quarter
// megapixel, 4 pages, 64 KiB) so that no single input makes a 60 s run crawl.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "budget.hpp"
#include "decode.hpp"
#include "docpipe/component.hpp"
#include "fuzz_check.hpp"

using namespace docpipe;
using namespace docpipe::imaging;

namespace {

constexpr std::size_t kMaxInput = 64 * 1024;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // Leptonica and poppler print to stderr on every bad header; with no logger registered
    // the messages are dropped, which keeps the fuzzer's output readable.
    route_library_messages_to(nullptr);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > kMaxInput) return 0;
    DecodeLimits limits;
    limits.max_pages = 4;
    limits.max_megapixels = 0.25;
    limits.max_aspect_ratio = 25;
    limits.max_bytes = kMaxInput;
    limits.pdf_dpi = 72;
    limits.pdf_text_layer = true;

    Part part;
    part.name = "fuzz-input";
    part.bytes = std::make_shared<const Bytes>(data, data + size);
    try {
        PartDecoder decoder(part, limits);
        const auto& plan = decoder.plan();
        FUZZ_CHECK(!plan.empty() && plan.size() <= static_cast<std::size_t>(limits.max_pages));
        for (const PlannedPage& p : plan) {
            FUZZ_CHECK(p.width >= 0 && p.height >= 0);
            FUZZ_CHECK(static_cast<double>(p.pixels()) <= limits.max_megapixels * 1e6);
        }
        if (is_pdf(part)) return 0;
        for (const Page& page : decoder.decode()) {
            FUZZ_CHECK(page.image.width > 0 && page.image.height > 0);
            FUZZ_CHECK(static_cast<double>(page.image.width) * page.image.height <= limits.max_megapixels * 1e6);
        }
    } catch (const BadInput&) {
        // The expected answer to a broken or hostile file.
    }
    return 0;
}
