// CPU reference implementation of the page clean-up steps. Every function is pure (input
// image in, new image out) and written as the per-pixel/per-window arithmetic a CUDA kernel
// will repeat, so a GPU path can be checked against it pixel for pixel: integer grayscale,
// bilinear resampling with the same coordinate mapping, Sauvola thresholds from integral
// images, Otsu from a 256-bin histogram.
#pragma once

#include "docpipe/document.hpp"

namespace docpipe::imaging {

// RGB -> 8-bit gray with integer BT.601 weights ((299 R + 587 G + 114 B + 500) / 1000).
Image to_gray(const Image& img);
// Bilinear resampling of a gray image to the given size (pixel-centre aligned).
Image resize_gray(const Image& gray, int width, int height);
// Global Otsu threshold of a gray image: pixels above it become 255, others 0.
Image binarize_otsu(const Image& gray);
int otsu_threshold(const Image& gray);
// Sauvola local threshold T = m * (1 + k * (s / 128 - 1)) over a window x window box.
Image binarize_sauvola(const Image& gray, int window, double k);
// Skew angle in degrees (positive = text lines rise to the right) within +-max_degrees,
// from the horizontal projection profile of dark pixels; 0 when there is no text.
double estimate_skew(const Image& gray, double max_degrees);
// Rotates a gray image by `degrees` (counter-clockwise positive) around its centre,
// bilinear, filling uncovered pixels with white.
Image rotate_gray(const Image& gray, double degrees);

}  // namespace docpipe::imaging
