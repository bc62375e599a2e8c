// CPU reference implementation of the page clean-up steps. Every function is pure (input
// image in, new image out) and written as the per-pixel/per-window arithmetic a CUDA kernel
// will repeat, so a GPU path can be checked against it pixel for pixel: integer grayscale,
// bilinear resampling with the same coordinate mapping, Sauvola thresholds from integral
// images, Otsu from a 256-bin histogram.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "docpipe/document.hpp"

namespace docpipe::imaging {

// RGB -> 8-bit gray with integer BT.601 weights ((299 R + 587 G + 114 B + 500) / 1000).
Image to_gray(const Image& img);
// Bilinear resampling of a gray image to the given size (pixel-centre aligned).
Image resize_gray(const Image& gray, int width, int height);
// Global Otsu threshold of a gray image: pixels above it become 255, others 0.
Image binarize_otsu(const Image& gray);
int otsu_threshold(const Image& gray);
// The same threshold from a histogram (shared with the CUDA path, which counts on the GPU).
int otsu_from_histogram(const std::array<std::uint64_t, 256>& hist);
// Sauvola local threshold T = m * (1 + k * (s / 128 - 1)) over a window x window box.
Image binarize_sauvola(const Image& gray, int window, double k);
// Skew angle in degrees (positive = text lines rise to the right) within +-max_degrees,
// from the projection profile of dark pixels; 0 when there is no text. A page whose lines run
// down it (lying sideways) gets the angle that levels it upright too.
double estimate_skew(const Image& gray, double max_degrees);
// Rotates a gray image by `degrees` (counter-clockwise positive) around its centre,
// bilinear, filling uncovered pixels with white.
Image rotate_gray(const Image& gray, double degrees);

// 3x3 median (edges replicated): removes speckle and scanner dust, keeps strokes.
Image denoise_median3(const Image& gray);
// 3x3 minimum (edges replicated): every dark stroke grows by one pixel, so the broken dots
// of dot-matrix print and faint thermal print join into strokes Tesseract can read.
Image thicken_min3(const Image& gray);
// 256-bin histogram of a gray image.
std::array<std::uint64_t, 256> gray_histogram(const Image& gray);
// Contrast stretch limits: the gray levels below which `low_share` and above which
// `high_share` of the pixels lie. {0, 255} (no change) when the range is under 16 levels.
std::pair<int, int> contrast_limits(const std::array<std::uint64_t, 256>& hist, double low_share, double high_share);
// Maps [low, high] to [0, 255] linearly (integer rounding), clamping outside: faint thermal
// print gets dark again.
Image stretch_contrast(const Image& gray, int low, int high);
// Dark borders of a scan (the scanner lid, the table around a photographed receipt): the
// runs of rows/columns from each edge that are mostly dark (> 60% below `threshold`),
// at most a fifth of the page per edge, are painted white.
struct Borders {
    int top = 0, bottom = 0, left = 0, right = 0;  // rows/columns painted from each edge
};
Borders find_borders(const std::vector<std::uint32_t>& dark_per_row, const std::vector<std::uint32_t>& dark_per_column, int width, int height);
Image remove_border(const Image& gray, Borders* found = nullptr);

// A receipt scanned on a much bigger page (a 600 dpi A4 scan with the receipt in the middle):
// the box around the largest block of print, with a margin. Found on a coarse grid of
// cells (about 400 along the long side) marked as print when a sampled pixel is dark;
// neighbouring print cells join into blocks; scattered specks stay small. std::nullopt when
// the print fills most of the page (the usual cropped scan or photo: nothing to cut).
// Works on gray or RGB input and only reads it, so the CPU and CUDA paths share it and
// start from the same pixels.
struct ContentBox {
    int x = 0, y = 0, width = 0, height = 0;
};
std::optional<ContentBox> find_content_box(const Image& img, double max_area_share = 0.4);
// The box cut out of an image of any channel count.
Image crop_image(const Image& img, const ContentBox& box);

// The whole clean-up as transform.preprocess runs it; the CUDA path runs the same steps
// and must give the same pixels (binary identical, gray within 1).
struct Recipe {
    // Cut a small receipt out of a big scanned page first (find_content_box), keeping the
    // scale the whole page would have had. Off by default: on SROIE's ten A4 scans it lowers
    // the OCR error on nine, but the claims fields came out no better (bench/ocr_eval, README).
    bool crop = false;
    int min_width = 1000, max_width = 2500;  // 0: no limit
    bool denoise = false;
    bool contrast = false;
    double contrast_low = 0.01, contrast_high = 0.01;  // shares clipped at each end
    bool deskew = true;
    double max_skew = 15;
    bool border = false;
    bool thicken = false;  // thicken_min3 after deskew, before binarising
    std::string binarize = "off";  // off | sauvola | otsu
    int sauvola_window = 25;
    double sauvola_k = 0.2;
    // What the recipe may make, checked by plan_recipe before a pixel is allocated: the
    // scaled page's megapixels (a 1x1500 strip scaled to min_width would be 1000x1500000)
    // and the input page's long side over its short side (a real receipt is long, 80 x 600
    // mm is 1:7.5, but not 1:1500). 0: no limit.
    double max_megapixels = 40;
    double max_aspect_ratio = 25;
};
// Target size for the width limits (height keeps the aspect ratio); the input size when
// inside them. Only for sizes plan_recipe accepted (larger ones would overflow int).
std::pair<int, int> recipe_size(const Recipe& r, int width, int height);

// What the recipe will make of a width x height page with `channels` channels, known
// before any pixel is allocated: the scaled size (with `crop`, an upper bound: the receipt
// cut out keeps the page's scale, so it is never bigger; deskew rotates within the same
// size and pads nothing) and the image memory the run needs at its peak (every buffer
// alive at once, the returned page included; the input page is not counted, it exists
// already). Host code shared by the CPU and CUDA paths; the CUDA path holds less host
// memory than this, and device buffers of about the same sizes.
// Throws BadInput when the input's aspect ratio or the scaled page's megapixels break the
// recipe's limits; the message starts with "WxH pixels" and the caller adds which document
// and page it is.
struct RecipePlan {
    int width = 0, height = 0;
    std::size_t output_bytes = 0;
    std::size_t peak_bytes = 0;
};
RecipePlan plan_recipe(const Recipe& r, int width, int height, int channels);
// Where both paths start: the page, or the receipt cut out of it when `r.crop` finds one,
// and the size the recipe scales it to (a crop keeps the scale the whole page would have
// had). Host code shared by the CPU and CUDA paths, so they start from the same pixels and
// both refuse, through plan_recipe, a page beyond the recipe's limits before allocating.
struct RecipeInput {
    Image image;
    int width = 0, height = 0;  // target size after scaling
};
RecipeInput recipe_input(const Image& page, const Recipe& r);

// Runs every enabled step on the CPU. `skew` receives the angle found (0 when off).
Image run_recipe_cpu(const Image& img, const Recipe& r, double* skew = nullptr);

}  // namespace docpipe::imaging
