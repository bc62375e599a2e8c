// The CUDA path of transform.preprocess: the same steps as preprocess_cpu.hpp, on the GPU,
// giving the same pixels (binary output identical, gray within 1; the tests compare them).
//
// No CUDA header here, so the plugin compiles the same with and without nvcc; without it,
// preprocess_cuda_stub.cpp reports "not built" and the functions throw.
//
// Threading: every function may be called from several threads at once. Each calling
// thread gets its own stream and device buffers (created on first use, grown as pages get
// bigger, reused for every later page), so two workers overlap their copies and kernels.
// Errors (a kernel failing, out of device memory) throw std::runtime_error naming the call.
#pragma once

#include <cstddef>
#include <string>

#include "preprocess_cpu.hpp"

namespace docpipe::imaging {

struct CudaStatus {
    bool built = false;    // compiled with the CUDA kernels
    bool usable = false;   // a device answered
    int device_count = 0;
    std::string name;      // device 0
    std::size_t total_bytes = 0, free_bytes = 0;
    std::string reason;    // why not usable
    // "cuda: NVIDIA H200 (139.8 GiB, 139.1 GiB free)" or "no CUDA device (...)".
    std::string describe() const;
};
// Probes once per process (the answer is cached; the driver does not change under us).
const CudaStatus& cuda_status();

Image cuda_run_recipe(const Image& img, const Recipe& recipe, double* skew = nullptr);

// Single steps, for the tests that compare them with the CPU and for bench/preprocess.
Image cuda_to_gray(const Image& img);
Image cuda_resize(const Image& gray, int width, int height);
Image cuda_rotate(const Image& gray, double degrees);
Image cuda_binarize_sauvola(const Image& gray, int window, double k);
Image cuda_binarize_otsu(const Image& gray);
Image cuda_denoise_median3(const Image& gray);
Image cuda_thicken_min3(const Image& gray);
Image cuda_stretch_contrast(const Image& gray, int low, int high);
Image cuda_remove_border(const Image& gray);

}  // namespace docpipe::imaging
