// What the imaging tests (imaging_test.cpp, tiff_decode_test.cpp, heif_decode_test.cpp) share:
// the built plugin, the sample receipt, and two ways to compare decoded pages. Test code only.
#pragma once

#include <cstdlib>
#include <filesystem>

#include <leptonica/allheaders.h>

#include "docpipe/document.hpp"

namespace docpipe::imaging::test_support {

inline const std::filesystem::path kPlugin = std::filesystem::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-imaging.so";
inline const std::filesystem::path kReceipt = std::filesystem::path(DOCPIPE_SOURCE_DIR) / "tests/data/malaysian_receipt_test.jpg";

// Mean absolute difference per sample of two pages of the same size and channel count.
inline double mean_difference(const Image& a, const Image& b) {
    double sum = 0;
    for (std::size_t k = 0; k < a.pixels->size(); ++k) sum += std::abs(int((*a.pixels)[k]) - int((*b.pixels)[k]));
    return sum / static_cast<double>(a.pixels->size());
}

// What a replaced decoder gave for the same file: Leptonica's PIX as docpipe turned it into an
// Image (gray when it has no colour, else RGB, alpha left out), expected pixel for pixel, with
// the same dpi (imaging_test.cpp).
void expect_leptonicas_pixels(const Image& img, PIX* pix);

}  // namespace docpipe::imaging::test_support
