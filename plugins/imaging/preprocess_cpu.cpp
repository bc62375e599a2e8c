#include "preprocess_cpu.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <stdexcept>
#include <tuple>
#include <vector>

#include <fmt/core.h>

#include "budget.hpp"
#include "docpipe/component.hpp"

namespace docpipe::imaging {

namespace {

Image blank_like(const Image& src, int width, int height) {
    Image out;
    out.width = width;
    out.height = height;
    out.channels = 1;
    out.dpi = src.dpi;
    out.pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(width) * height);
    return out;
}

std::vector<std::uint8_t>& mutable_pixels(Image& img) {
    // Freshly made by blank_like and not shared yet: writing is safe.
    return const_cast<std::vector<std::uint8_t>&>(*img.pixels);
}

void require_gray(const Image& img, const char* step) {
    if (img.channels != 1 || !img.pixels) throw std::invalid_argument(std::string(step) + " needs an 8-bit gray image");
}

std::uint8_t sample_bilinear(const std::vector<std::uint8_t>& px, int w, int h, double x, double y, std::uint8_t outside) {
    if (x < -0.5 || y < -0.5 || x > w - 0.5 || y > h - 0.5) return outside;
    x = std::clamp(x, 0.0, static_cast<double>(w - 1));
    y = std::clamp(y, 0.0, static_cast<double>(h - 1));
    const int x0 = static_cast<int>(x), y0 = static_cast<int>(y);
    const int x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
    const double fx = x - x0, fy = y - y0;
    const auto at = [&](int xx, int yy) { return static_cast<double>(px[static_cast<std::size_t>(yy) * w + xx]); };
    const double v = at(x0, y0) * (1 - fx) * (1 - fy) + at(x1, y0) * fx * (1 - fy) + at(x0, y1) * (1 - fx) * fy + at(x1, y1) * fx * fy;
    return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
}

}  // namespace

Image to_gray(const Image& img) {
    if (!img.pixels) throw std::invalid_argument("to_gray: empty image");
    if (img.channels == 1) return img;
    Image out = blank_like(img, img.width, img.height);
    auto& dst = mutable_pixels(out);
    const auto& src = *img.pixels;
    const std::size_t n = static_cast<std::size_t>(img.width) * img.height;
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned r = src[3 * i], g = src[3 * i + 1], b = src[3 * i + 2];
        dst[i] = static_cast<std::uint8_t>((299 * r + 587 * g + 114 * b + 500) / 1000);
    }
    return out;
}

Image resize_gray(const Image& gray, int width, int height) {
    require_gray(gray, "resize");
    if (width <= 0 || height <= 0) throw std::invalid_argument("resize: target size must be positive");
    Image out = blank_like(gray, width, height);
    auto& dst = mutable_pixels(out);
    const double sx = static_cast<double>(gray.width) / width, sy = static_cast<double>(gray.height) / height;
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            dst[static_cast<std::size_t>(y) * width + x] =
                sample_bilinear(*gray.pixels, gray.width, gray.height, (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, 255);
    if (gray.dpi > 0) out.dpi = static_cast<int>(std::lround(gray.dpi / sx));
    return out;
}

int otsu_threshold(const Image& gray) {
    require_gray(gray, "otsu");
    std::array<std::uint64_t, 256> hist{};
    for (auto v : *gray.pixels) hist[v]++;
    return otsu_from_histogram(hist);
}

int otsu_from_histogram(const std::array<std::uint64_t, 256>& hist) {
    double total = 0;
    for (auto c : hist) total += static_cast<double>(c);
    double sum_all = 0;
    for (int i = 0; i < 256; ++i) sum_all += i * static_cast<double>(hist[i]);
    double sum_below = 0, weight_below = 0, best = -1;
    int threshold = 127;
    for (int t = 0; t < 256; ++t) {
        weight_below += static_cast<double>(hist[t]);
        if (weight_below == 0) continue;
        const double weight_above = total - weight_below;
        if (weight_above == 0) break;
        sum_below += t * static_cast<double>(hist[t]);
        const double mean_below = sum_below / weight_below, mean_above = (sum_all - sum_below) / weight_above;
        const double between = weight_below * weight_above * (mean_below - mean_above) * (mean_below - mean_above);
        if (between > best) {
            best = between;
            threshold = t;
        }
    }
    return threshold;
}

Image binarize_otsu(const Image& gray) {
    const int t = otsu_threshold(gray);
    Image out = blank_like(gray, gray.width, gray.height);
    auto& dst = mutable_pixels(out);
    for (std::size_t i = 0; i < dst.size(); ++i) dst[i] = (*gray.pixels)[i] > t ? 255 : 0;
    return out;
}

Image binarize_sauvola(const Image& gray, int window, double k) {
    require_gray(gray, "sauvola");
    const int w = gray.width, h = gray.height, half = std::max(1, window / 2);
    // Integral images with a zero first row/column: box sums in four reads, as on the GPU.
    std::vector<std::uint64_t> sum(static_cast<std::size_t>(w + 1) * (h + 1), 0), sq(sum.size(), 0);
    for (int y = 0; y < h; ++y) {
        std::uint64_t row_sum = 0, row_sq = 0;
        for (int x = 0; x < w; ++x) {
            const std::uint64_t v = (*gray.pixels)[static_cast<std::size_t>(y) * w + x];
            row_sum += v;
            row_sq += v * v;
            const std::size_t i = static_cast<std::size_t>(y + 1) * (w + 1) + x + 1;
            sum[i] = sum[i - (w + 1)] + row_sum;
            sq[i] = sq[i - (w + 1)] + row_sq;
        }
    }
    Image out = blank_like(gray, w, h);
    auto& dst = mutable_pixels(out);
    for (int y = 0; y < h; ++y) {
        const int y0 = std::max(0, y - half), y1 = std::min(h, y + half + 1);
        for (int x = 0; x < w; ++x) {
            const int x0 = std::max(0, x - half), x1 = std::min(w, x + half + 1);
            const auto box = [&](const std::vector<std::uint64_t>& t) {
                return static_cast<double>(t[static_cast<std::size_t>(y1) * (w + 1) + x1] - t[static_cast<std::size_t>(y0) * (w + 1) + x1] -
                                           t[static_cast<std::size_t>(y1) * (w + 1) + x0] + t[static_cast<std::size_t>(y0) * (w + 1) + x0]);
            };
            const double n = static_cast<double>((y1 - y0) * (x1 - x0));
            const double mean = box(sum) / n;
            const double var = std::max(0.0, box(sq) / n - mean * mean);
            const double threshold = mean * (1.0 + k * (std::sqrt(var) / 128.0 - 1.0));
            dst[static_cast<std::size_t>(y) * w + x] = (*gray.pixels)[static_cast<std::size_t>(y) * w + x] > threshold ? 255 : 0;
        }
    }
    return out;
}

// Gaps between text lines the profile down a page needs before the page is taken to lie sideways.
constexpr int kMinLineGaps = 20;
// How many of their own spacings long those lines must be, at least.
constexpr double kMinLineLengthInSpacings = 3;

double estimate_skew(const Image& gray, double max_degrees) {
    require_gray(gray, "deskew");
    max_degrees = std::min(max_degrees, 45.0);  // the profile is sized for shears up to tan 45
    // Work on at most ~1000 px wide: the angle does not need more, and it keeps this cheap.
    const int step = std::max(1, gray.width / 1000);
    const int threshold = otsu_threshold(gray);
    // Counted first, so the samples take exactly their size (plan_recipe's estimate) and
    // not the up to three times that of a vector growing while it is filled.
    std::size_t count = 0;
    for (int y = 0; y < gray.height; y += step)
        for (int x = 0; x < gray.width; x += step)
            count += (*gray.pixels)[static_cast<std::size_t>(y) * gray.width + x] <= threshold;
    std::vector<std::pair<int, int>> dark;
    dark.reserve(count);
    for (int y = 0; y < gray.height; y += step)
        for (int x = 0; x < gray.width; x += step)
            if ((*gray.pixels)[static_cast<std::size_t>(y) * gray.width + x] <= threshold) dark.emplace_back(x / step, y / step);
    if (dark.size() < 50) return 0.0;
    const int rows = gray.height / step + gray.width / step + 2;
    std::vector<int> profile(static_cast<std::size_t>(2 * rows));
    // Score = sum of squared counts of the sheared profile: sharpest when the text lines lie
    // along the axis. `along_rows` shears across the page, for an upright page's lines; the
    // other shear runs down it, for a page lying sideways (a phone photo whose orientation tag
    // was stripped; the OCR turns it upright later). Searched across only, such a page got an
    // angle from its character columns (a dev receipt turned a quarter: 8.5 degrees, level
    // upright), and that tilt stayed after the OCR turned it. Both shears return the angle in
    // one convention: a rotation turns both axes alike, so rotating by it levels either.
    const auto score = [&](double degrees, bool along_rows) {
        std::fill(profile.begin(), profile.end(), 0);
        const double t = std::tan(degrees * std::numbers::pi / 180.0);
        if (along_rows)
            for (const auto& [x, y] : dark) profile[static_cast<std::size_t>(std::lround(y + x * t) + rows)]++;
        else
            for (const auto& [x, y] : dark) profile[static_cast<std::size_t>(std::lround(x - y * t) + rows)]++;
        double s = 0;
        for (int v : profile) s += static_cast<double>(v) * v;
        return s;
    };
    // Text lines leave white gaps between them in the profile along their axis: runs of three
    // or more bins under a tenth of the mean count, counted inside the profile's extent, which
    // `extent` receives.
    const auto gaps = [&](double degrees, bool along_rows, double* extent) {
        score(degrees, along_rows);
        const auto first = std::find_if(profile.begin(), profile.end(), [](int v) { return v != 0; });
        const auto last = std::find_if(profile.rbegin(), profile.rend(), [](int v) { return v != 0; }).base();
        *extent = static_cast<double>(std::max<std::ptrdiff_t>(1, last - first));
        const double mean = static_cast<double>(dark.size()) / *extent;
        int runs = 0, run = 0;
        for (auto it = first; it != last; ++it) {
            if (*it < 0.1 * mean) {
                ++run;
            } else {
                runs += run >= 3;
                run = 0;
            }
        }
        return runs;
    };
    const auto coarse_best = [&](bool along_rows, double* best_score) {
        double best = 0;
        for (double a = -max_degrees; a <= max_degrees + 1e-9; a += 0.5)
            if (double s = score(a, along_rows); s > *best_score) *best_score = s, best = a;
        return best;
    };
    // Down the page wins only with many gaps (20, a short receipt's lines) and three times those
    // across, so an upright page keeps the search it always had. Measured with the shipped
    // clean-up on the 300 train and dev receipts upright and upside down: every one stays
    // across (fixed-pitch print and faint print leave gaps down the page too: train 081 had 16
    // across and 40 down, 388 none across and 17 down). And what stands between those gaps must
    // be lines, not letters or dots: each as long as three of their spacings at least (the ink
    // across runs the lines' length). A single line of text has no gaps across and a gap
    // between every letter down the page; its ink across is one line high. (A strip cut from a
    // receipt's head with a dotted rule still passes, and is searched down wrongly:
    // docs/claims-measurements.md, session 47.) Of the 40 dev receipts turned a quarter, 32 are
    // searched down; the other 8 got nearly their upright angle across (0 to 0.5 apart).
    double across_score = -1, down_score = -1;
    const double across = coarse_best(true, &across_score), down = coarse_best(false, &down_score);
    double across_extent = 0, down_extent = 0;
    const int across_gaps = gaps(across, true, &across_extent), down_gaps = gaps(down, false, &down_extent);
    const double line_spacing = down_extent / std::max(1, down_gaps);
    const bool along_rows =
        !(down_gaps >= kMinLineGaps && down_gaps >= 3 * across_gaps && across_extent >= kMinLineLengthInSpacings * line_spacing);
    double best = along_rows ? across : down, best_score = along_rows ? across_score : down_score;
    // The fine search stays inside +-max_degrees: past 45 degrees the shear would reach beyond
    // the profile (sized for |tan| <= 1), and past the limit is not what was asked.
    const double coarse = best;
    for (double a = std::max(coarse - 0.5, -max_degrees); a <= std::min(coarse + 0.5, max_degrees) + 1e-9; a += 0.05)
        if (double s = score(a, along_rows); s > best_score) best_score = s, best = a;
    return best;
}

Image rotate_gray(const Image& gray, double degrees) {
    require_gray(gray, "rotate");
    Image out = blank_like(gray, gray.width, gray.height);
    auto& dst = mutable_pixels(out);
    const double r = degrees * std::numbers::pi / 180.0, c = std::cos(r), s = std::sin(r);
    const double cx = (gray.width - 1) / 2.0, cy = (gray.height - 1) / 2.0;
    for (int y = 0; y < gray.height; ++y)
        for (int x = 0; x < gray.width; ++x) {
            // Inverse mapping: where in the source does this output pixel come from.
            const double dx = x - cx, dy = y - cy;
            const double sx = c * dx - s * dy + cx, sy = s * dx + c * dy + cy;
            dst[static_cast<std::size_t>(y) * gray.width + x] = sample_bilinear(*gray.pixels, gray.width, gray.height, sx, sy, 255);
        }
    return out;
}

namespace {
// Each output pixel from its 3x3 neighbourhood (edges replicated), row by row:
// `reduce` gets the nine values and returns the new one.
template <class Reduce>
Image filter3x3(const Image& gray, const char* step, Reduce reduce) {
    require_gray(gray, step);
    const int w = gray.width, h = gray.height;
    Image out = blank_like(gray, w, h);
    auto& dst = mutable_pixels(out);
    const auto& src = *gray.pixels;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            std::uint8_t v[9];
            int n = 0;
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) {
                    const int yy = std::clamp(y + dy, 0, h - 1), xx = std::clamp(x + dx, 0, w - 1);
                    v[n++] = src[static_cast<std::size_t>(yy) * w + xx];
                }
            dst[static_cast<std::size_t>(y) * w + x] = reduce(v);
        }
    return out;
}
}  // namespace

Image thicken_min3(const Image& gray) {
    return filter3x3(gray, "thicken", [](std::uint8_t* v) { return *std::min_element(v, v + 9); });
}

Image denoise_median3(const Image& gray) {
    return filter3x3(gray, "denoise", [](std::uint8_t* v) {
        std::nth_element(v, v + 4, v + 9);
        return v[4];
    });
}

std::array<std::uint64_t, 256> gray_histogram(const Image& gray) {
    require_gray(gray, "histogram");
    std::array<std::uint64_t, 256> hist{};
    for (auto v : *gray.pixels) hist[v]++;
    return hist;
}

std::pair<int, int> contrast_limits(const std::array<std::uint64_t, 256>& hist, double low_share, double high_share) {
    std::uint64_t total = 0;
    for (auto c : hist) total += c;
    if (total == 0) return {0, 255};
    const auto low_count = static_cast<std::uint64_t>(low_share * static_cast<double>(total));
    const auto high_count = static_cast<std::uint64_t>(high_share * static_cast<double>(total));
    int low = 0, high = 255;
    std::uint64_t seen = 0;
    for (; low < 255; ++low) {
        seen += hist[low];
        if (seen > low_count) break;
    }
    seen = 0;
    for (; high > 0; --high) {
        seen += hist[high];
        if (seen > high_count) break;
    }
    if (high - low < 16) return {0, 255};
    return {low, high};
}

Image stretch_contrast(const Image& gray, int low, int high) {
    require_gray(gray, "contrast");
    if (low <= 0 && high >= 255) return gray;
    Image out = blank_like(gray, gray.width, gray.height);
    auto& dst = mutable_pixels(out);
    const int range = std::max(1, high - low);
    for (std::size_t i = 0; i < dst.size(); ++i) {
        const int v = std::clamp(static_cast<int>((*gray.pixels)[i]), low, high);
        dst[i] = static_cast<std::uint8_t>(((v - low) * 255 + range / 2) / range);
    }
    return out;
}

Borders find_borders(const std::vector<std::uint32_t>& dark_per_row, const std::vector<std::uint32_t>& dark_per_column, int width, int height) {
    Borders b;
    // A row is border when more than 60% of it is dark; stop at the first row that is not.
    const auto run = [](const std::vector<std::uint32_t>& counts, int length, bool from_start, int limit) {
        int n = 0;
        const int size = static_cast<int>(counts.size());
        while (n < limit) {
            const int i = from_start ? n : size - 1 - n;
            if (static_cast<std::uint64_t>(counts[i]) * 10 <= static_cast<std::uint64_t>(length) * 6) break;
            ++n;
        }
        return n;
    };
    b.top = run(dark_per_row, width, true, height / 5);
    b.bottom = run(dark_per_row, width, false, height / 5);
    b.left = run(dark_per_column, height, true, width / 5);
    b.right = run(dark_per_column, height, false, width / 5);
    return b;
}

Image remove_border(const Image& gray, Borders* found) {
    require_gray(gray, "border");
    const int w = gray.width, h = gray.height, t = otsu_threshold(gray);
    std::vector<std::uint32_t> rows(static_cast<std::size_t>(h), 0), cols(static_cast<std::size_t>(w), 0);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            if ((*gray.pixels)[static_cast<std::size_t>(y) * w + x] <= t) ++rows[y], ++cols[x];
    const Borders b = find_borders(rows, cols, w, h);
    if (found) *found = b;
    if (!b.top && !b.bottom && !b.left && !b.right) return gray;
    Image out = blank_like(gray, w, h);
    auto& dst = mutable_pixels(out);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const bool border = y < b.top || y >= h - b.bottom || x < b.left || x >= w - b.right;
            dst[static_cast<std::size_t>(y) * w + x] = border ? 255 : (*gray.pixels)[static_cast<std::size_t>(y) * w + x];
        }
    return out;
}

std::pair<int, int> recipe_size(const Recipe& r, int width, int height) {
    int target = width;
    if (r.max_width > 0 && width > r.max_width) target = r.max_width;
    if (r.min_width > 0 && width < r.min_width) target = r.min_width;
    if (target == width) return {width, height};
    return {target, std::max(1, static_cast<int>(std::lround(height * static_cast<double>(target) / width)))};
}

std::optional<ContentBox> find_content_box(const Image& img, double max_area_share) {
    if (!img.pixels || img.width < 8 || img.height < 8 || (img.channels != 1 && img.channels != 3)) return std::nullopt;
    const int cell = std::max(4, std::max(img.width, img.height) / 400);
    const int gw = (img.width + cell - 1) / cell, gh = (img.height + cell - 1) / cell;
    const int step = std::max(1, cell / 4);  // 4x4 samples per cell: thin strokes still hit one
    const auto& px = *img.pixels;
    auto gray_at = [&](int x, int y) -> unsigned {
        const std::size_t i = static_cast<std::size_t>(y) * img.width + x;
        if (img.channels == 1) return px[i];
        return (299u * px[3 * i] + 587u * px[3 * i + 1] + 114u * px[3 * i + 2] + 500u) / 1000u;
    };
    std::vector<std::uint8_t> ink(static_cast<std::size_t>(gw) * gh, 0);
    std::size_t ink_cells = 0;
    for (int cy = 0; cy < gh; ++cy)
        for (int cx = 0; cx < gw; ++cx) {
            int dark = 0;
            for (int y = cy * cell; y < std::min(img.height, (cy + 1) * cell) && dark < 2; y += step)
                for (int x = cx * cell; x < std::min(img.width, (cx + 1) * cell) && dark < 2; x += step)
                    dark += gray_at(x, y) < 128;
            // Two dark samples: a single dark pixel is more often dust than print.
            if (dark >= 2) ink[static_cast<std::size_t>(cy) * gw + cx] = 1, ++ink_cells;
        }
    if (ink_cells < 30) return std::nullopt;
    // Blocks: print cells within `reach` cells of each other (the gaps between words and
    // lines) belong together. Flood fill over that neighbourhood, keeping the block with the
    // most print cells.
    // A 25th of the long side, at least 40 px: more than the blank between two printed lines
    // or sections of a receipt (up to ~250 px at 600 dpi), less than the blank around a
    // receipt on an A4 scan (1000+ px at 600 dpi).
    const int reach_px = std::max(40, std::max(img.width, img.height) / 25);
    const int reach = std::max(3, (reach_px + cell - 1) / cell);
    std::vector<int> label(ink.size(), -1);
    int best_label = -1;
    std::size_t best_count = 0;
    std::array<int, 4> best_box{}, box{};
    std::vector<int> stack;
    for (int start = 0; start < static_cast<int>(ink.size()); ++start) {
        if (!ink[start] || label[start] >= 0) continue;
        std::size_t count = 0;
        box = {gw, gh, -1, -1};
        stack.assign(1, start);
        label[start] = start;
        while (!stack.empty()) {
            const int c = stack.back();
            stack.pop_back();
            const int cx = c % gw, cy = c / gw;
            ++count;
            box = {std::min(box[0], cx), std::min(box[1], cy), std::max(box[2], cx), std::max(box[3], cy)};
            for (int ny = std::max(0, cy - reach); ny <= std::min(gh - 1, cy + reach); ++ny)
                for (int nx = std::max(0, cx - reach); nx <= std::min(gw - 1, cx + reach); ++nx) {
                    const int n = ny * gw + nx;
                    if (ink[n] && label[n] < 0) {
                        label[n] = start;
                        stack.push_back(n);
                    }
                }
        }
        if (count > best_count) best_count = count, best_label = start, best_box = box;
    }
    if (best_label < 0 || best_count < 30) return std::nullopt;
    // A margin of two cells and 1% of the page around the print, inside the page.
    const int mx = 2 * cell + img.width / 100, my = 2 * cell + img.height / 100;
    ContentBox b;
    b.x = std::max(0, best_box[0] * cell - mx);
    b.y = std::max(0, best_box[1] * cell - my);
    b.width = std::min(img.width, (best_box[2] + 1) * cell + mx) - b.x;
    b.height = std::min(img.height, (best_box[3] + 1) * cell + my) - b.y;
    const double share = static_cast<double>(b.width) * b.height / (static_cast<double>(img.width) * img.height);
    if (share >= max_area_share) return std::nullopt;
    return b;
}

Image crop_image(const Image& img, const ContentBox& box) {
    if (!img.pixels || box.x < 0 || box.y < 0 || box.width <= 0 || box.height <= 0 || box.x + box.width > img.width ||
        box.y + box.height > img.height)
        throw std::invalid_argument("crop_image: box outside the image");
    Image out;
    out.width = box.width;
    out.height = box.height;
    out.channels = img.channels;
    out.dpi = img.dpi;
    auto pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(box.width) * box.height * img.channels);
    const std::size_t row = static_cast<std::size_t>(box.width) * img.channels;
    for (int y = 0; y < box.height; ++y) {
        const auto* from = img.pixels->data() + (static_cast<std::size_t>(box.y + y) * img.width + box.x) * img.channels;
        std::copy(from, from + row, pixels->data() + static_cast<std::size_t>(y) * row);
    }
    out.pixels = std::move(pixels);
    return out;
}

RecipePlan plan_recipe(const Recipe& r, int width, int height, int channels) {
    if (width <= 0 || height <= 0) throw BadInput(fmt::format("{}x{} pixels: nothing to clean", width, height));
    const double ratio = aspect_ratio(width, height);
    if (r.max_aspect_ratio > 0 && ratio > r.max_aspect_ratio)
        throw BadInput(fmt::format("{}x{} pixels, an aspect ratio of {}, beyond the limit of {} (max_aspect_ratio); "
                                   "not a receipt page, not cleaned",
                                   width, height, ratio_text(ratio), ratio_text(r.max_aspect_ratio)));
    // The scaled size in floating point first: a narrow page scaled up to min_width can be
    // far beyond what an int holds (1x90000 to 1000 wide is 90 million rows).
    double target = width;
    if (r.max_width > 0 && width > r.max_width) target = r.max_width;
    if (r.min_width > 0 && width < r.min_width) target = r.min_width;
    const double scaled_height = target == width ? height : std::max(1.0, std::round(height * target / width));
    const double mp = target * scaled_height / 1e6;
    if (r.max_megapixels > 0 && mp > r.max_megapixels)
        throw BadInput(fmt::format("{}x{} pixels would be scaled to {:.0f}x{:.0f} ({:.1f} megapixels), above the limit of {} "
                                   "megapixels (max_megapixels); not cleaned",
                                   width, height, target, scaled_height, mp, r.max_megapixels));
    if (scaled_height > 2147483647.0)
        throw BadInput(fmt::format("{}x{} pixels would be scaled beyond 2^31 rows; not cleaned", width, height));
    RecipePlan plan;
    std::tie(plan.width, plan.height) = recipe_size(r, width, height);
    const std::size_t in = static_cast<std::size_t>(width) * height, out = static_cast<std::size_t>(plan.width) * plan.height;
    plan.output_bytes = out;
    // Alive at the peak, over-counted on purpose (some are gone before the next is made):
    // the cut-out receipt, the gray copy of a colour page, the page being worked on and the
    // one being made, plus the larger of the deskew samples (8 bytes per sampled dark
    // pixel, at most every one; its profile) and Sauvola's two 64-bit integral images.
    const std::size_t crop = r.crop ? in * static_cast<std::size_t>(std::max(1, channels)) : 0;
    const std::size_t gray = channels == 1 ? 0 : in;
    const std::size_t step = static_cast<std::size_t>(std::max(1, plan.width / 1000));
    const std::size_t samples = ((plan.width + step - 1) / step) * ((plan.height + step - 1) / step);
    const std::size_t deskew = r.deskew ? 8 * samples + 8 * (static_cast<std::size_t>(plan.width) + plan.height + 2) : 0;
    const std::size_t sauvola = r.binarize == "sauvola" ? 16 * (static_cast<std::size_t>(plan.width) + 1) * (plan.height + 1) : 0;
    plan.peak_bytes = crop + gray + 2 * out + std::max(deskew, sauvola);
    return plan;
}

RecipeInput recipe_input(const Image& page, const Recipe& r) {
    plan_recipe(r, page.width, page.height, page.channels);  // refuses before anything is allocated
    const std::optional<ContentBox> box = r.crop ? find_content_box(page) : std::nullopt;
    if (!box) {
        const auto [w, h] = recipe_size(r, page.width, page.height);
        return {page, w, h};
    }
    // The crop keeps the scale the whole page would have had: at full 600 dpi a faint
    // dot-matrix receipt turns into specks Tesseract reads as text (measured on SROIE).
    const double f = static_cast<double>(recipe_size(r, page.width, page.height).first) / page.width;
    return {crop_image(page, *box), std::max(1, static_cast<int>(std::lround(box->width * f))),
            std::max(1, static_cast<int>(std::lround(box->height * f)))};
}

Image run_recipe_cpu(const Image& original, const Recipe& r, double* skew) {
    const RecipeInput input = recipe_input(original, r);
    Image img = to_gray(input.image);
    if (input.width != img.width || input.height != img.height) img = resize_gray(img, input.width, input.height);
    if (r.border) img = remove_border(img);
    if (r.denoise) img = denoise_median3(img);
    if (r.contrast) {
        const auto [low, high] = contrast_limits(gray_histogram(img), r.contrast_low, r.contrast_high);
        img = stretch_contrast(img, low, high);
    }
    double angle = 0;
    if (r.deskew) {
        angle = estimate_skew(img, r.max_skew);
        if (std::abs(angle) >= 0.1) img = rotate_gray(img, -angle);  // turn the rise back to level
    }
    if (r.thicken) img = thicken_min3(img);
    if (r.binarize == "sauvola") img = binarize_sauvola(img, r.sauvola_window, r.sauvola_k);
    else if (r.binarize == "otsu") img = binarize_otsu(img);
    if (skew) *skew = angle;
    return img;
}

}  // namespace docpipe::imaging
