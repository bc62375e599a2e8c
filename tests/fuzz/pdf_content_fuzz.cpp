// Fuzz target: the content-stream reader the PDF JPEG check runs on every page, form and
// annotation appearance (plugins/imaging/pdf_content.cpp): operators, strings, comments,
// marked content, inline images and how far each one's data goes, and the walk over a JPEG's
// structure that says where an inline JPEG ends.
//
// What must hold, whatever the bytes: it returns (libFuzzer's -timeout catches a search that
// goes quadratic), each inline JPEG it gives is bytes of the content, numbered in order; each
// XObject it names is a name; a JPEG's length stays inside the bytes, ends with an end
// marker, and costs no more than the budget it was given.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pdf_content.hpp"
#include "fuzz_check.hpp"

using namespace docpipe::imaging;

namespace {

constexpr std::size_t kMaxInput = 64 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > kMaxInput) return 0;
    const std::string_view content(reinterpret_cast<const char*>(data), size);

    const ContentDraws draws = content_draws(content);
    int last = 0;
    for (const ContentInlineJpeg& jpeg : draws.inline_jpegs) {
        FUZZ_CHECK(jpeg.number > last);
        last = jpeg.number;
        FUZZ_CHECK(!jpeg.bytes.empty() && content.find(jpeg.bytes) != std::string_view::npos);
        FUZZ_CHECK(jpeg.section < static_cast<int>(draws.sections.size()));
    }
    for (const ContentXObject& x : draws.xobjects) {
        FUZZ_CHECK(!x.name.empty() && x.name[0] == '/');
        FUZZ_CHECK(x.section < static_cast<int>(draws.sections.size()));
    }
    // A section's parent comes before it, so the sections around a draw are found in order.
    for (std::size_t k = 0; k < draws.sections.size(); ++k) {
        FUZZ_CHECK(draws.sections[k].parent < static_cast<int>(k));
        FUZZ_CHECK(!draws.sections[k].name.empty() && draws.sections[k].name[0] == '/');
    }

    for (std::size_t at : {std::size_t{0}, size / 2}) {
        const std::size_t given = 2 * size + 16;
        std::size_t budget = given;
        const std::size_t length = jpeg_length(content, at, budget);
        FUZZ_CHECK(budget <= given);
        FUZZ_CHECK(length <= size - std::min(at, size));
        if (length > 0) FUZZ_CHECK(static_cast<std::uint8_t>(content[at + length - 2]) == 0xFF && static_cast<std::uint8_t>(content[at + length - 1]) == 0xD9);
    }
    return 0;
}
