// CUDA kernels for transform.preprocess. Each kernel repeats the arithmetic of its CPU
// reference in preprocess_cpu.cpp in the same order and precision (double where the CPU
// uses double, integers where it uses integers; built with --fmad=false so no multiply-add
// is fused differently), which is what makes the outputs comparable pixel for pixel.
//
// Decisions that need the whole image (Otsu's threshold from the histogram, the contrast
// limits, the border runs, the skew angle) are taken on the host by the same CPU functions,
// from counts made on the GPU; only the per-pixel work runs on the device.
#include "preprocess_cuda.hpp"

#include <cuda_runtime.h>

#include <array>
#include <cstdio>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace docpipe::imaging {

namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

constexpr int kBlock = 256;
// std::numbers::pi (the CPU path uses it) is C++20; CUDA code is C++17. Same double value.
constexpr double kPi = 3.141592653589793238462643383279502884;
inline unsigned blocks_for(std::size_t n) { return static_cast<unsigned>((n + kBlock - 1) / kBlock); }

// ---- kernels ------------------------------------------------------------------------------

__global__ void gray_kernel(const std::uint8_t* rgb, std::uint8_t* gray, std::size_t n) {
    const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    const unsigned r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
    gray[i] = static_cast<std::uint8_t>((299 * r + 587 * g + 114 * b + 500) / 1000);
}

__device__ std::uint8_t sample_bilinear(const std::uint8_t* px, int w, int h, double x, double y, std::uint8_t outside) {
    if (x < -0.5 || y < -0.5 || x > w - 0.5 || y > h - 0.5) return outside;
    x = fmin(fmax(x, 0.0), static_cast<double>(w - 1));
    y = fmin(fmax(y, 0.0), static_cast<double>(h - 1));
    const int x0 = static_cast<int>(x), y0 = static_cast<int>(y);
    const int x1 = min(x0 + 1, w - 1), y1 = min(y0 + 1, h - 1);
    const double fx = x - x0, fy = y - y0;
    const auto at = [&](int xx, int yy) { return static_cast<double>(px[static_cast<std::size_t>(yy) * w + xx]); };
    const double v = at(x0, y0) * (1 - fx) * (1 - fy) + at(x1, y0) * fx * (1 - fy) + at(x0, y1) * (1 - fx) * fy + at(x1, y1) * fx * fy;
    return static_cast<std::uint8_t>(llround(fmin(fmax(v, 0.0), 255.0)));
}

__global__ void resize_kernel(const std::uint8_t* src, int sw, int sh, std::uint8_t* dst, int dw, int dh, double sx, double sy) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dw || y >= dh) return;
    dst[static_cast<std::size_t>(y) * dw + x] = sample_bilinear(src, sw, sh, (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, 255);
}

__global__ void rotate_kernel(const std::uint8_t* src, std::uint8_t* dst, int w, int h, double c, double s, double cx, double cy) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const double dx = x - cx, dy = y - cy;
    const double sx = c * dx - s * dy + cx, sy = s * dx + c * dy + cy;
    dst[static_cast<std::size_t>(y) * w + x] = sample_bilinear(src, w, h, sx, sy, 255);
}

// Histogram: per-block counts in shared memory, then one atomic per bin and block.
__global__ void histogram_kernel(const std::uint8_t* px, std::size_t n, unsigned long long* hist) {
    __shared__ unsigned int local[256];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) local[i] = 0;
    __syncthreads();
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
        atomicAdd(&local[px[i]], 1u);
    __syncthreads();
    for (int i = threadIdx.x; i < 256; i += blockDim.x)
        if (local[i]) atomicAdd(&hist[i], static_cast<unsigned long long>(local[i]));
}

__global__ void threshold_kernel(const std::uint8_t* src, std::uint8_t* dst, std::size_t n, int t) {
    const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
    if (i < n) dst[i] = src[i] > t ? 255 : 0;
}

__global__ void stretch_kernel(const std::uint8_t* src, std::uint8_t* dst, std::size_t n, int low, int high) {
    const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    const int range = max(1, high - low);
    const int v = min(max(static_cast<int>(src[i]), low), high);
    dst[i] = static_cast<std::uint8_t>(((v - low) * 255 + range / 2) / range);
}

// 3x3 minimum, as thicken_min3.
__global__ void min3_kernel(const std::uint8_t* src, std::uint8_t* dst, int w, int h) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    unsigned darkest = 255;
    for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
            const int yy = min(max(y + dy, 0), h - 1), xx = min(max(x + dx, 0), w - 1);
            darkest = min(darkest, static_cast<unsigned>(src[static_cast<std::size_t>(yy) * w + xx]));
        }
    dst[static_cast<std::size_t>(y) * w + x] = static_cast<std::uint8_t>(darkest);
}

__global__ void median3_kernel(const std::uint8_t* src, std::uint8_t* dst, int w, int h) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    std::uint8_t v[9];
    int n = 0;
    for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
            const int yy = min(max(y + dy, 0), h - 1), xx = min(max(x + dx, 0), w - 1);
            v[n++] = src[static_cast<std::size_t>(yy) * w + xx];
        }
    for (int i = 1; i < 9; ++i) {  // insertion sort of nine values; the median is v[4]
        const std::uint8_t key = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > key) {
            v[j + 1] = v[j];
            --j;
        }
        v[j + 1] = key;
    }
    dst[static_cast<std::size_t>(y) * w + x] = v[4];
}

__global__ void dark_counts_kernel(const std::uint8_t* px, int w, int h, int t, unsigned int* rows, unsigned int* cols) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    if (px[static_cast<std::size_t>(y) * w + x] <= t) {
        atomicAdd(&rows[y], 1u);
        atomicAdd(&cols[x], 1u);
    }
}

__global__ void paint_border_kernel(const std::uint8_t* src, std::uint8_t* dst, int w, int h, int top, int bottom, int left, int right) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const std::size_t i = static_cast<std::size_t>(y) * w + x;
    const bool border = y < top || y >= h - bottom || x < left || x >= w - right;
    dst[i] = border ? 255 : src[i];
}

// Integral images (sum and sum of squares) with a zero first row and column, exact in
// 64-bit integers: a prefix sum along each row, then down each column.
__global__ void integral_rows_kernel(const std::uint8_t* px, int w, int h, unsigned long long* sum, unsigned long long* sq) {
    const int y = blockIdx.x * blockDim.x + threadIdx.x;
    if (y > h) return;
    const std::size_t stride = static_cast<std::size_t>(w) + 1;
    sum[static_cast<std::size_t>(y) * stride] = 0;
    sq[static_cast<std::size_t>(y) * stride] = 0;
    if (y == 0) {
        for (int x = 0; x < w; ++x) sum[x + 1] = sq[x + 1] = 0;
        return;
    }
    unsigned long long row_sum = 0, row_sq = 0;
    for (int x = 0; x < w; ++x) {
        const unsigned long long v = px[static_cast<std::size_t>(y - 1) * w + x];
        row_sum += v;
        row_sq += v * v;
        sum[static_cast<std::size_t>(y) * stride + x + 1] = row_sum;
        sq[static_cast<std::size_t>(y) * stride + x + 1] = row_sq;
    }
}

__global__ void integral_columns_kernel(int w, int h, unsigned long long* sum, unsigned long long* sq) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    if (x > w) return;
    const std::size_t stride = static_cast<std::size_t>(w) + 1;
    for (int y = 1; y <= h; ++y) {
        sum[static_cast<std::size_t>(y) * stride + x] += sum[static_cast<std::size_t>(y - 1) * stride + x];
        sq[static_cast<std::size_t>(y) * stride + x] += sq[static_cast<std::size_t>(y - 1) * stride + x];
    }
}

__global__ void sauvola_kernel(const std::uint8_t* px, std::uint8_t* dst, int w, int h, int half, double k, const unsigned long long* sum,
                               const unsigned long long* sq) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const std::size_t stride = static_cast<std::size_t>(w) + 1;
    const int y0 = max(0, y - half), y1 = min(h, y + half + 1), x0 = max(0, x - half), x1 = min(w, x + half + 1);
    const auto box = [&](const unsigned long long* t) {
        return static_cast<double>(t[static_cast<std::size_t>(y1) * stride + x1] - t[static_cast<std::size_t>(y0) * stride + x1] -
                                   t[static_cast<std::size_t>(y1) * stride + x0] + t[static_cast<std::size_t>(y0) * stride + x0]);
    };
    const double n = static_cast<double>((y1 - y0) * (x1 - x0));
    const double mean = box(sum) / n;
    const double var = fmax(0.0, box(sq) / n - mean * mean);
    const double threshold = mean * (1.0 + k * (sqrt(var) / 128.0 - 1.0));
    dst[static_cast<std::size_t>(y) * w + x] = px[static_cast<std::size_t>(y) * w + x] > threshold ? 255 : 0;
}

// ---- per-thread workspace ---------------------------------------------------------------

// Device memory that grows to the largest page seen and is then reused.
template <typename T>
struct DeviceBuffer {
    T* ptr = nullptr;
    std::size_t capacity = 0;
    ~DeviceBuffer() {
        if (ptr) cudaFree(ptr);
    }
    T* ensure(std::size_t count) {
        if (count > capacity) {
            if (ptr) cudaFree(ptr);
            ptr = nullptr;
            capacity = 0;
            check(cudaMalloc(&ptr, count * sizeof(T)), "cudaMalloc");
            capacity = count;
        }
        return ptr;
    }
};

struct Workspace {
    cudaStream_t stream = nullptr;
    DeviceBuffer<std::uint8_t> a, b, rgb;        // ping-pong page buffers, colour input
    DeviceBuffer<unsigned long long> sum, sq, hist;
    DeviceBuffer<unsigned int> rows, cols;
    Workspace() { check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate"); }
    ~Workspace() {
        if (stream) cudaStreamDestroy(stream);
    }
    void sync(const char* what) {
        check(cudaGetLastError(), what);
        check(cudaStreamSynchronize(stream), what);
    }
};

Workspace& workspace() {
    if (!cuda_status().usable) throw std::runtime_error("CUDA path used without a usable device: " + cuda_status().reason);
    thread_local Workspace ws;
    return ws;
}

dim3 grid2d(int w, int h) { return dim3(static_cast<unsigned>((w + 15) / 16), static_cast<unsigned>((h + 15) / 16)); }
const dim3 kBlock2d(16, 16);

// A gray page living on the device, in one of the workspace's two buffers.
struct DevicePage {
    std::uint8_t* px;
    int w, h, dpi;
};

Image download(Workspace& ws, const DevicePage& p) {
    auto pixels = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(p.w) * p.h);
    check(cudaMemcpyAsync(pixels->data(), p.px, pixels->size(), cudaMemcpyDeviceToHost, ws.stream), "copy to host");
    ws.sync("download");
    Image out;
    out.width = p.w;
    out.height = p.h;
    out.channels = 1;
    out.dpi = p.dpi;
    out.pixels = std::move(pixels);
    return out;
}

std::uint8_t* other(Workspace& ws, const std::uint8_t* current, std::size_t n) {
    return current == ws.a.ptr ? ws.b.ensure(n) : ws.a.ensure(n);
}

DevicePage upload_gray(Workspace& ws, const Image& img) {
    if (!img.pixels || img.width <= 0 || img.height <= 0) throw std::invalid_argument("CUDA preprocess: empty image");
    const std::size_t n = static_cast<std::size_t>(img.width) * img.height;
    std::uint8_t* gray = ws.a.ensure(n);
    if (img.channels == 1) {
        check(cudaMemcpyAsync(gray, img.pixels->data(), n, cudaMemcpyHostToDevice, ws.stream), "copy to device");
    } else if (img.channels == 3) {
        std::uint8_t* rgb = ws.rgb.ensure(3 * n);
        check(cudaMemcpyAsync(rgb, img.pixels->data(), 3 * n, cudaMemcpyHostToDevice, ws.stream), "copy to device");
        gray_kernel<<<blocks_for(n), kBlock, 0, ws.stream>>>(rgb, gray, n);
    } else {
        throw std::invalid_argument("CUDA preprocess: expected 1 or 3 channels, got " + std::to_string(img.channels));
    }
    return {gray, img.width, img.height, img.dpi};
}

std::array<std::uint64_t, 256> histogram(Workspace& ws, const DevicePage& p) {
    unsigned long long* hist = ws.hist.ensure(256);
    check(cudaMemsetAsync(hist, 0, 256 * sizeof(unsigned long long), ws.stream), "memset");
    const std::size_t n = static_cast<std::size_t>(p.w) * p.h;
    histogram_kernel<<<std::min(1024u, blocks_for(n)), kBlock, 0, ws.stream>>>(p.px, n, hist);
    unsigned long long host[256];
    check(cudaMemcpyAsync(host, hist, sizeof host, cudaMemcpyDeviceToHost, ws.stream), "copy histogram");
    ws.sync("histogram");
    std::array<std::uint64_t, 256> out{};
    for (int i = 0; i < 256; ++i) out[i] = host[i];
    return out;
}

DevicePage resize(Workspace& ws, const DevicePage& p, int w, int h) {
    std::uint8_t* dst = other(ws, p.px, static_cast<std::size_t>(w) * h);
    const double sx = static_cast<double>(p.w) / w, sy = static_cast<double>(p.h) / h;
    resize_kernel<<<grid2d(w, h), kBlock2d, 0, ws.stream>>>(p.px, p.w, p.h, dst, w, h, sx, sy);
    return {dst, w, h, p.dpi > 0 ? static_cast<int>(std::lround(p.dpi / sx)) : p.dpi};
}

DevicePage rotate(Workspace& ws, const DevicePage& p, double degrees) {
    std::uint8_t* dst = other(ws, p.px, static_cast<std::size_t>(p.w) * p.h);
    const double r = degrees * kPi / 180.0, c = std::cos(r), s = std::sin(r);
    const double cx = (p.w - 1) / 2.0, cy = (p.h - 1) / 2.0;
    rotate_kernel<<<grid2d(p.w, p.h), kBlock2d, 0, ws.stream>>>(p.px, dst, p.w, p.h, c, s, cx, cy);
    return {dst, p.w, p.h, p.dpi};
}

DevicePage threshold(Workspace& ws, const DevicePage& p, int t) {
    const std::size_t n = static_cast<std::size_t>(p.w) * p.h;
    std::uint8_t* dst = other(ws, p.px, n);
    threshold_kernel<<<blocks_for(n), kBlock, 0, ws.stream>>>(p.px, dst, n, t);
    return {dst, p.w, p.h, p.dpi};
}

DevicePage otsu(Workspace& ws, const DevicePage& p) { return threshold(ws, p, otsu_from_histogram(histogram(ws, p))); }

DevicePage stretch(Workspace& ws, const DevicePage& p, int low, int high) {
    if (low <= 0 && high >= 255) return p;
    const std::size_t n = static_cast<std::size_t>(p.w) * p.h;
    std::uint8_t* dst = other(ws, p.px, n);
    stretch_kernel<<<blocks_for(n), kBlock, 0, ws.stream>>>(p.px, dst, n, low, high);
    return {dst, p.w, p.h, p.dpi};
}

DevicePage min3(Workspace& ws, const DevicePage& p) {
    std::uint8_t* dst = other(ws, p.px, static_cast<std::size_t>(p.w) * p.h);
    min3_kernel<<<grid2d(p.w, p.h), kBlock2d, 0, ws.stream>>>(p.px, dst, p.w, p.h);
    return {dst, p.w, p.h, p.dpi};
}

DevicePage median3(Workspace& ws, const DevicePage& p) {
    std::uint8_t* dst = other(ws, p.px, static_cast<std::size_t>(p.w) * p.h);
    median3_kernel<<<grid2d(p.w, p.h), kBlock2d, 0, ws.stream>>>(p.px, dst, p.w, p.h);
    return {dst, p.w, p.h, p.dpi};
}

DevicePage border(Workspace& ws, const DevicePage& p) {
    const int t = otsu_from_histogram(histogram(ws, p));
    unsigned int* rows = ws.rows.ensure(static_cast<std::size_t>(p.h));
    unsigned int* cols = ws.cols.ensure(static_cast<std::size_t>(p.w));
    check(cudaMemsetAsync(rows, 0, p.h * sizeof(unsigned int), ws.stream), "memset");
    check(cudaMemsetAsync(cols, 0, p.w * sizeof(unsigned int), ws.stream), "memset");
    dark_counts_kernel<<<grid2d(p.w, p.h), kBlock2d, 0, ws.stream>>>(p.px, p.w, p.h, t, rows, cols);
    std::vector<std::uint32_t> host_rows(static_cast<std::size_t>(p.h)), host_cols(static_cast<std::size_t>(p.w));
    check(cudaMemcpyAsync(host_rows.data(), rows, p.h * sizeof(unsigned int), cudaMemcpyDeviceToHost, ws.stream), "copy counts");
    check(cudaMemcpyAsync(host_cols.data(), cols, p.w * sizeof(unsigned int), cudaMemcpyDeviceToHost, ws.stream), "copy counts");
    ws.sync("border counts");
    const Borders b = find_borders(host_rows, host_cols, p.w, p.h);
    if (!b.top && !b.bottom && !b.left && !b.right) return p;
    std::uint8_t* dst = other(ws, p.px, static_cast<std::size_t>(p.w) * p.h);
    paint_border_kernel<<<grid2d(p.w, p.h), kBlock2d, 0, ws.stream>>>(p.px, dst, p.w, p.h, b.top, b.bottom, b.left, b.right);
    return {dst, p.w, p.h, p.dpi};
}

DevicePage sauvola(Workspace& ws, const DevicePage& p, int window, double k) {
    const std::size_t cells = (static_cast<std::size_t>(p.w) + 1) * (static_cast<std::size_t>(p.h) + 1);
    unsigned long long* sum = ws.sum.ensure(cells);
    unsigned long long* sq = ws.sq.ensure(cells);
    integral_rows_kernel<<<blocks_for(static_cast<std::size_t>(p.h) + 1), kBlock, 0, ws.stream>>>(p.px, p.w, p.h, sum, sq);
    integral_columns_kernel<<<blocks_for(static_cast<std::size_t>(p.w) + 1), kBlock, 0, ws.stream>>>(p.w, p.h, sum, sq);
    std::uint8_t* dst = other(ws, p.px, static_cast<std::size_t>(p.w) * p.h);
    sauvola_kernel<<<grid2d(p.w, p.h), kBlock2d, 0, ws.stream>>>(p.px, dst, p.w, p.h, std::max(1, window / 2), k, sum, sq);
    return {dst, p.w, p.h, p.dpi};
}

void require_gray(const Image& img, const char* step) {
    if (img.channels != 1 || !img.pixels) throw std::invalid_argument(std::string(step) + " needs an 8-bit gray image");
}

}  // namespace

std::string CudaStatus::describe() const {
    if (!usable) return reason;
    constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
    char text[256];
    std::snprintf(text, sizeof text, "cuda: %s (%.1f GiB, %.1f GiB free)%s", name.c_str(), total_bytes / kGiB, free_bytes / kGiB,
                  device_count > 1 ? " (device 0 of several)" : "");
    return text;
}

const CudaStatus& cuda_status() {
    static const CudaStatus status = [] {
        CudaStatus s;
        s.built = true;
        // Without a driver the runtime answers cudaErrorInsufficientDriver, not "no device":
        // any error or a zero count means no GPU.
        const cudaError_t e = cudaGetDeviceCount(&s.device_count);
        if (e != cudaSuccess || s.device_count == 0) {
            s.reason = std::string("no CUDA device (") + (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") + ")";
            s.device_count = 0;
            return s;
        }
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
            s.reason = "CUDA device 0 did not report its properties";
            return s;
        }
        s.name = prop.name;
        s.total_bytes = prop.totalGlobalMem;
        if (cudaMemGetInfo(&s.free_bytes, &s.total_bytes) != cudaSuccess) {
            s.reason = std::string("CUDA device ") + prop.name + " cannot be used (cudaMemGetInfo failed)";
            return s;
        }
        s.usable = true;
        return s;
    }();
    return status;
}

Image cuda_run_recipe(const Image& original, const Recipe& r, double* skew) {
    Workspace& ws = workspace();
    // The crop decision and target size are host code shared with the CPU path, so both
    // paths start from the same pixels.
    const RecipeInput input = recipe_input(original, r);
    DevicePage p = upload_gray(ws, input.image);
    if (input.width != p.w || input.height != p.h) p = resize(ws, p, input.width, input.height);
    if (r.border) p = border(ws, p);
    if (r.denoise) p = median3(ws, p);
    if (r.contrast) {
        const auto [low, high] = contrast_limits(histogram(ws, p), r.contrast_low, r.contrast_high);
        p = stretch(ws, p, low, high);
    }
    double angle = 0;
    if (r.deskew) {
        // The angle search works on a sample of dark pixels; it is cheap on the host and
        // then identical to the CPU path by construction.
        angle = estimate_skew(download(ws, p), r.max_skew);
        if (std::abs(angle) >= 0.1) p = rotate(ws, p, -angle);
    }
    if (r.thicken) p = min3(ws, p);
    if (r.binarize == "sauvola") p = sauvola(ws, p, r.sauvola_window, r.sauvola_k);
    else if (r.binarize == "otsu") p = otsu(ws, p);
    if (skew) *skew = angle;
    return download(ws, p);
}

Image cuda_to_gray(const Image& img) {
    Workspace& ws = workspace();
    return download(ws, upload_gray(ws, img));
}

Image cuda_resize(const Image& gray, int width, int height) {
    require_gray(gray, "resize");
    if (width <= 0 || height <= 0) throw std::invalid_argument("resize: target size must be positive");
    Workspace& ws = workspace();
    return download(ws, resize(ws, upload_gray(ws, gray), width, height));
}

Image cuda_rotate(const Image& gray, double degrees) {
    require_gray(gray, "rotate");
    Workspace& ws = workspace();
    return download(ws, rotate(ws, upload_gray(ws, gray), degrees));
}

Image cuda_binarize_sauvola(const Image& gray, int window, double k) {
    require_gray(gray, "sauvola");
    Workspace& ws = workspace();
    return download(ws, sauvola(ws, upload_gray(ws, gray), window, k));
}

Image cuda_binarize_otsu(const Image& gray) {
    require_gray(gray, "otsu");
    Workspace& ws = workspace();
    return download(ws, otsu(ws, upload_gray(ws, gray)));
}

Image cuda_thicken_min3(const Image& gray) {
    require_gray(gray, "thicken");
    Workspace& ws = workspace();
    return download(ws, min3(ws, upload_gray(ws, gray)));
}

Image cuda_denoise_median3(const Image& gray) {
    require_gray(gray, "denoise");
    Workspace& ws = workspace();
    return download(ws, median3(ws, upload_gray(ws, gray)));
}

Image cuda_stretch_contrast(const Image& gray, int low, int high) {
    require_gray(gray, "contrast");
    Workspace& ws = workspace();
    return download(ws, stretch(ws, upload_gray(ws, gray), low, high));
}

Image cuda_remove_border(const Image& gray) {
    require_gray(gray, "border");
    Workspace& ws = workspace();
    return download(ws, border(ws, upload_gray(ws, gray)));
}

}  // namespace docpipe::imaging
